/* struct buf: the one growable byte buffer, always NUL-terminated, never past its maximum. */
#ifndef KILN_BUF_H
#define KILN_BUF_H

#include <stdbool.h>
#include <stddef.h>

#include "kerr.h"

struct buf {
	char *data; /* NUL-terminated; "" before the first append */
	size_t len;
	size_t cap;
	size_t max; /* most bytes it may hold, not counting the NUL */
};

#define BUF_MAX_DEFAULT ((size_t)64 << 20)
#define BUF_INIT                                                                                   \
	{                                                                                          \
		.data = NULL, .len = 0, .cap = 0, .max = BUF_MAX_DEFAULT                           \
	}

void buf_init(struct buf *b, size_t max);
void buf_release(struct buf *b);
void buf_reset(struct buf *b);
/* Both fail with KERR_LIMIT past b->max and leave the buffer as it was. */
int buf_add(struct buf *b, const void *data, size_t len, struct kerr **err)
    __attribute__((warn_unused_result));
int buf_printf(struct buf *b, struct kerr **err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), warn_unused_result));
/* For callers whose content is small and internal: abort on failure. */
void buf_addstr(struct buf *b, const char *s);
void buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand the storage to the caller (free it); the buffer is empty again. */
char *buf_detach(struct buf *b);

static inline void buf_releasep(struct buf *b)
{
	buf_release(b);
}
#define _cleanup_buf_ __attribute__((cleanup(buf_releasep)))

#endif
