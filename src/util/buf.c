/* Growable NUL-terminated buffer with a hard maximum and overflow-checked growth. */
#include "buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"
#include "banned.h"

static char empty_[1];

void buf_init(struct buf *b, size_t max)
{
	b->data = empty_;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void buf_release(struct buf *b)
{
	if (b->cap)
		free(b->data);
	buf_init(b, b->max);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->cap)
		b->data[0] = '\0';
}

static int buf_grow(struct buf *b, size_t extra, struct kerr **err)
{
	size_t need, cap;

	if (!b->data)
		buf_init(b, b->max ? b->max : BUF_MAX_DEFAULT);
	if (__builtin_add_overflow(b->len, extra, &need) || need > b->max)
		return kerr_set(err, KERR_LIMIT, "buffer would exceed its limit of %zu bytes",
		                b->max);
	if (need + 1 <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need + 1)
		cap = cap > SIZE_MAX / 2 ? need + 1 : cap * 2;
	if (b->cap) {
		b->data = xrealloc(b->data, cap);
	} else {
		b->data = xmalloc(cap);
		b->data[0] = '\0';
	}
	b->cap = cap;
	return 0;
}

int buf_add(struct buf *b, const void *data, size_t len, struct kerr **err)
{
	if (buf_grow(b, len, err) < 0)
		return -1;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

__attribute__((format(printf, 3, 0))) static int buf_vprintf(struct buf *b, struct kerr **err,
                                                             const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return kerr_set(err, KERR_INTERNAL, "cannot format '%s'", fmt);
	if (buf_grow(b, (size_t)n, err) < 0)
		return -1;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int buf_printf(struct buf *b, struct kerr **err, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = buf_vprintf(b, err, fmt, ap);
	va_end(ap);
	return r;
}

void buf_addstr(struct buf *b, const char *s)
{
	if (buf_add(b, s, strlen(s), NULL) < 0)
		abort();
}

void buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = buf_vprintf(b, NULL, fmt, ap);
	va_end(ap);
	if (r < 0)
		abort();
}

char *buf_detach(struct buf *b)
{
	char *p = b->cap ? b->data : xstrdup("");

	buf_init(b, b->max);
	return p;
}
