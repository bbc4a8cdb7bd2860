/* Error values: a kind, the errno behind it, and one message built up on the way out. */
#include "kerr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

static const char *const kind_names[KERR__COUNT] = {
	[KERR_INTERNAL] = "internal", [KERR_INVALID] = "invalid",   [KERR_NOT_FOUND] = "not-found",
	[KERR_CONFLICT] = "conflict", [KERR_LIMIT] = "limit",       [KERR_AUTH] = "auth",
	[KERR_IO] = "io",             [KERR_NOSPACE] = "no-space", [KERR_CORRUPT] = "corrupt",
};

const char *kerr_kind_name(enum kerr_kind kind)
{
	return kind < KERR__COUNT ? kind_names[kind] : "unknown";
}

__attribute__((format(printf, 4, 0))) static int kerr_vset(struct kerr **err, enum kerr_kind kind,
								 int errnum, const char *fmt, va_list ap)
{
	struct kerr *e;

	if (!err)
		return -1;
	kerr_free(*err);
	e = calloc(1, sizeof(*e));
	if (!e)
		abort();
	e->kind = kind;
	e->errnum = errnum;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	*err = e;
	return -1;
}

int kerr_set(struct kerr **err, enum kerr_kind kind, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kerr_vset(err, kind, 0, fmt, ap);
	va_end(ap);
	return -1;
}

static enum kerr_kind kind_of_errno(int errnum)
{
	switch (errnum) {
	case ENOENT:
	case ENOTDIR:
		return KERR_NOT_FOUND;
	case EEXIST:
	case EBUSY:
	case ENOTEMPTY:
		return KERR_CONFLICT;
	case ENOSPC:
	case EDQUOT:
		return KERR_NOSPACE;
	case EACCES:
	case EPERM:
		return KERR_AUTH;
	case EINVAL:
	case EISDIR:
	case ENAMETOOLONG:
		return KERR_INVALID;
	case EFBIG:
	case EMFILE:
	case ENFILE:
	case ENOMEM:
		return KERR_LIMIT;
	default:
		return KERR_IO;
	}
}

int kerr_errno(struct kerr **err, int errnum, const char *fmt, ...)
{
	char head[768];
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	return kerr_set(err, kind_of_errno(errnum), "%s: %s", head, strerror(errnum));
}

int kerr_wrap(struct kerr **err, const char *fmt, ...)
{
	char head[512];
	size_t hl, ol, cap = sizeof((*err)->msg);
	char *msg;
	va_list ap;

	if (!err || !*err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	/* "<head>: <old>", the old message cut at the end when it no longer fits. */
	msg = (*err)->msg;
	hl = strlen(head);
	ol = strlen(msg);
	if (hl + 2 + ol >= cap)
		ol = cap - 1 - hl - 2;
	memmove(msg + hl + 2, msg, ol);
	msg[hl + 2 + ol] = '\0';
	memcpy(msg, head, hl);
	memcpy(msg + hl, ": ", 2);
	return -1;
}

int kerr_pass(struct kerr **err, struct kerr *e)
{
	if (!err) {
		kerr_free(e);
		return -1;
	}
	kerr_free(*err);
	*err = e;
	return -1;
}

void kerr_free(struct kerr *err)
{
	free(err);
}
