/* A bounded, least-recently-used cache of stored chunk payloads on the host, keyed by hash, so
 * that restoring the same snapshot twice from object storage fetches nothing the second time. */
#ifndef KILN_STORE_CACHE_H
#define KILN_STORE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/hash.h"
#include "util/kerr.h"

struct chunk_cache;

int chunk_cache_open(const char *dir, uint64_t max_bytes, struct chunk_cache **out,
                     struct kerr **err);
void chunk_cache_close(struct chunk_cache *c);
/* 0 and len bytes in buf when the chunk is there with exactly len stored bytes, else -1. */
int chunk_cache_get(struct chunk_cache *c, const uint8_t hash[HASH_LEN], void *buf, size_t len);
void chunk_cache_put(struct chunk_cache *c, const uint8_t hash[HASH_LEN], const void *data,
                     size_t len);
/* Forget an entry that failed its checks. */
void chunk_cache_drop(struct chunk_cache *c, const uint8_t hash[HASH_LEN]);

#endif
