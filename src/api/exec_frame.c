/* The frames of kiln exec over the API's listener (exec_frame.h). */
#include "api/exec_frame.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "util/banned.h"

int exec_frame_send(int fd, enum exec_frame_type type, const void *data, size_t len)
{
	uint8_t head[EXEC_FRAME_HEAD] = {(uint8_t)type, (uint8_t)(len >> 24), (uint8_t)(len >> 16),
	                                 (uint8_t)(len >> 8), (uint8_t)len};
	const uint8_t *parts[2] = {head, data};
	size_t sizes[2] = {sizeof(head), len};

	for (int i = 0; i < 2; i++)
		for (size_t off = 0; off < sizes[i];) {
			ssize_t n = send(fd, parts[i] + off, sizes[i] - off, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return -1;
			off += (size_t)n;
		}
	return 0;
}

ssize_t exec_frames_fill(struct exec_frames *r, int fd)
{
	ssize_t n = recv(fd, r->buf + r->have, sizeof(r->buf) - r->have, MSG_DONTWAIT);

	if (n > 0)
		r->have += (size_t)n;
	return n;
}

bool exec_frames_take(struct exec_frames *r, char *type, uint8_t data[EXEC_FRAME_MAX + 1],
                      size_t *len, bool *bad)
{
	size_t n;

	*bad = false;
	if (r->have < EXEC_FRAME_HEAD)
		return false;
	n = (size_t)r->buf[1] << 24 | (size_t)r->buf[2] << 16 | (size_t)r->buf[3] << 8 |
	    (size_t)r->buf[4];
	if (n > EXEC_FRAME_MAX) {
		*bad = true;
		return false;
	}
	if (r->have < EXEC_FRAME_HEAD + n)
		return false;
	*type = (char)r->buf[0];
	memcpy(data, r->buf + EXEC_FRAME_HEAD, n);
	data[n] = '\0';
	*len = n;
	r->have -= EXEC_FRAME_HEAD + n;
	memmove(r->buf, r->buf + EXEC_FRAME_HEAD + n, r->have);
	return true;
}
