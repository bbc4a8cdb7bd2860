/* libFuzzer target: what a peer of kiln exec sends (exec_frame.h), taken frame by frame in
 * pieces of any size, never reads past what came nor crashes. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/exec_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct exec_frames r;
	static uint8_t out[EXEC_FRAME_MAX + 1];
	int sv[2];
	size_t len;
	char type;
	bool bad = false;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	r.have = 0;
	/* The first byte sets the size of the pieces the stream arrives in. */
	for (size_t off = 1, piece = size ? (size_t)data[0] % 64 + 1 : 1; off < size && !bad;
	     off += piece) {
		size_t n = size - off < piece ? size - off : piece;
		if (write(sv[0], data + off, n) != (ssize_t)n || exec_frames_fill(&r, sv[1]) <= 0)
			break;
		while (exec_frames_take(&r, &type, out, &len, &bad))
			if (len > EXEC_FRAME_MAX || out[len] != '\0')
				__builtin_trap();
	}
	close(sv[0]);
	close(sv[1]);
	return 0;
}
