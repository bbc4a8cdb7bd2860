/* key=value files. */
#include "kv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cleanup.h"
#include "fs.h"
#include "xalloc.h"
#include "banned.h"

#define KV_MAX_BYTES (1 << 20)

void kv_set(struct kv *kv, const char *key, const char *value)
{
	for (size_t i = 0; i < kv->n; i++) {
		if (!strcmp(kv->keys[i], key)) {
			free(kv->values[i]);
			kv->values[i] = xstrdup(value);
			return;
		}
	}
	kv->keys = xreallocarray(kv->keys, kv->n + 1, sizeof(char *));
	kv->values = xreallocarray(kv->values, kv->n + 1, sizeof(char *));
	kv->keys[kv->n] = xstrdup(key);
	kv->values[kv->n++] = xstrdup(value);
}

void kv_setf(struct kv *kv, const char *key, const char *fmt, ...)
{
	_cleanup_free_ char *v = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&v, fmt, ap) < 0)
		abort();
	va_end(ap);
	kv_set(kv, key, v);
}

const char *kv_get(const struct kv *kv, const char *key, const char *fallback)
{
	for (size_t i = 0; i < kv->n; i++)
		if (!strcmp(kv->keys[i], key))
			return kv->values[i];
	return fallback;
}

int kv_save(const struct kv *kv, int dirfd, const char *name, struct kerr **err)
{
	_cleanup_buf_ struct buf b = BUF_INIT;

	for (size_t i = 0; i < kv->n; i++) {
		size_t at = b.len;
		buf_addf(&b, "%s=%s\n", kv->keys[i], kv->values[i]);
		for (size_t k = at; k + 1 < b.len; k++)
			if (b.data[k] == '\n')
				b.data[k] = ' ';
	}
	return fs_write_replace(dirfd, name, b.data, b.len, err);
}

int kv_load(struct kv *kv, int dirfd, const char *name, struct kerr **err)
{
	_cleanup_free_ uint8_t *data = NULL;
	size_t len;

	memset(kv, 0, sizeof(*kv));
	if (fs_read_file(dirfd, name, KV_MAX_BYTES, &data, &len, err) < 0)
		return -1;
	for (char *line = (char *)data, *next; line && *line; line = next) {
		char *eq;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		kv_set(kv, line, eq + 1);
	}
	return 0;
}

void kv_release(struct kv *kv)
{
	for (size_t i = 0; i < kv->n; i++) {
		free(kv->keys[i]);
		free(kv->values[i]);
	}
	free(kv->keys);
	free(kv->values);
	memset(kv, 0, sizeof(*kv));
}
