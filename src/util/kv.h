/* Small "key=value" files (instance spec and state): one pair a line, written atomically. */
#ifndef KILN_KV_H
#define KILN_KV_H

#include <stddef.h>

#include "kerr.h"

struct kv {
	char **keys;
	char **values;
	size_t n;
};

void kv_set(struct kv *kv, const char *key, const char *value);
void kv_setf(struct kv *kv, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *kv_get(const struct kv *kv, const char *key, const char *fallback);
/* Replaced atomically but not synced (state that is rebuilt after a crash). Values may not hold
 * newlines: they are replaced by spaces. */
int kv_save(const struct kv *kv, int dirfd, const char *name, struct kerr **err);
int kv_load(struct kv *kv, int dirfd, const char *name, struct kerr **err);
void kv_release(struct kv *kv);

#endif
