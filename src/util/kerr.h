/* The one error convention of kiln: see docs/design/errors.md. */
#ifndef KILN_KERR_H
#define KILN_KERR_H

#include <stdarg.h>

enum kerr_kind {
	KERR_INTERNAL = 0,
	KERR_INVALID,   /* bad input from the caller */
	KERR_NOT_FOUND, /* the named thing does not exist */
	KERR_CONFLICT,  /* exists already, in use, wrong state */
	KERR_LIMIT,     /* a size or count limit was reached */
	KERR_AUTH,      /* not allowed */
	KERR_IO,        /* the operating system failed us */
	KERR_NOSPACE,   /* out of disk space */
	KERR_CORRUPT,   /* stored data fails its checks */
	KERR__COUNT
};

struct kerr {
	enum kerr_kind kind;
	int errnum; /* errno behind it, or 0 */
	char msg[1024];
};

/* Set *err (when err is not NULL) and return -1: `return kerr_set(err, …);` */
int kerr_set(struct kerr **err, enum kerr_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Like kerr_set, with the kind taken from errnum and ": strerror" appended. */
int kerr_errno(struct kerr **err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Put context in front of an existing message: "while doing x: <old>". */
int kerr_wrap(struct kerr **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand e to the caller's err (or free it when err is NULL); returns -1. */
int kerr_pass(struct kerr **err, struct kerr *e);
void kerr_free(struct kerr *err);
const char *kerr_kind_name(enum kerr_kind kind);

static inline void kerr_freep(struct kerr **err)
{
	kerr_free(*err);
}
#define _cleanup_kerr_ __attribute__((cleanup(kerr_freep)))

#endif
