/* The frames of `kiln exec` over the API's own listener (exec.h): after the 101 answer, both
 * sides send frames of one type byte, a 4-byte big-endian length and that many bytes (at most
 * EXEC_FRAME_MAX). Client to daemon: stdin data, the end of stdin, a signal (its number in
 * decimal). Daemon to client: stdout data, stderr data, then the exit status (decimal) or an
 * error ("Code: message") as the last frame. */
#ifndef KILN_API_EXEC_FRAME_H
#define KILN_API_EXEC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum exec_frame_type {
	EXEC_STDIN = 'i',
	EXEC_STDIN_END = 'e',
	EXEC_SIGNAL = 's',
	EXEC_STDOUT = 'o',
	EXEC_STDERR = 'r',
	EXEC_EXIT = 'x',
	EXEC_ERROR = 'E',
};

#define EXEC_FRAME_MAX  65536u
#define EXEC_FRAME_HEAD 5u

/* The whole frame, blocking; -1 with errno when the peer is gone. */
int exec_frame_send(int fd, enum exec_frame_type type, const void *data, size_t len);

/* What came from the peer so far: frames are taken from the front as they complete. */
struct exec_frames {
	uint8_t buf[EXEC_FRAME_HEAD + EXEC_FRAME_MAX];
	size_t have;
};
/* One recv: > 0 bytes added, 0 at the end of the stream, -1 with errno (EINTR and EAGAIN
 * included: try again). */
ssize_t exec_frames_fill(struct exec_frames *r, int fd);
/* The first complete frame, moved out (its data NUL-terminated in data[len]); false when none
 * is complete yet. *bad when the peer sent a frame longer than EXEC_FRAME_MAX. */
bool exec_frames_take(struct exec_frames *r, char *type, uint8_t data[EXEC_FRAME_MAX + 1],
                      size_t *len, bool *bad);

#endif
