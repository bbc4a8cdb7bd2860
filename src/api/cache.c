/* A small LRU of whole answers behind one mutex. */
#include "cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/xml.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define CACHE_ENTRIES 64

struct entry {
	char *key;
	uint64_t gen;
	uint64_t born_ms, used;
	char *body;
	size_t len, request_id_at;
};

struct api_cache {
	pthread_mutex_t lock;
	struct entry e[CACHE_ENTRIES];
	size_t bytes, max_bytes;
	unsigned max_age_ms;
	uint64_t clock; /* use counter for LRU */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct api_cache *api_cache_new(size_t max_bytes, unsigned max_age_ms)
{
	struct api_cache *c = xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->lock, NULL);
	c->max_bytes = max_bytes;
	c->max_age_ms = max_age_ms;
	return c;
}

static void drop(struct api_cache *c, struct entry *e)
{
	c->bytes -= e->len;
	free(e->key);
	free(e->body);
	memset(e, 0, sizeof(*e));
}

void api_cache_free(struct api_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < CACHE_ENTRIES; i++)
		if (c->e[i].key)
			drop(c, &c->e[i]);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static struct entry *find(struct api_cache *c, const char *key)
{
	for (size_t i = 0; i < CACHE_ENTRIES; i++)
		if (c->e[i].key && !strcmp(c->e[i].key, key))
			return &c->e[i];
	return NULL;
}

bool api_cache_get(struct api_cache *c, const char *key, uint64_t gen, const char *request_id,
                   struct buf *out)
{
	struct entry *e;
	bool hit = false;

	pthread_mutex_lock(&c->lock);
	e = find(c, key);
	if (e && (e->gen != gen || now_ms() - e->born_ms > c->max_age_ms)) {
		drop(c, e);
		e = NULL;
	}
	if (e && buf_add(out, e->body, e->len, NULL) == 0) {
		memcpy(out->data + out->len - e->len + e->request_id_at, request_id,
		       API_REQUEST_ID_LEN);
		e->used = ++c->clock;
		hit = true;
	}
	pthread_mutex_unlock(&c->lock);
	return hit;
}

void api_cache_put(struct api_cache *c, const char *key, uint64_t gen, const char *body, size_t len,
                   size_t request_id_at)
{
	struct entry *e;

	if (len > c->max_bytes / 4 || request_id_at + API_REQUEST_ID_LEN > len)
		return;
	pthread_mutex_lock(&c->lock);
	if ((e = find(c, key)))
		drop(c, e);
	/* Room: the least recently used go first, until the new one fits. */
	for (;;) {
		struct entry *lru = NULL, *free_slot = NULL;
		for (size_t i = 0; i < CACHE_ENTRIES; i++) {
			if (!c->e[i].key)
				free_slot = free_slot ? free_slot : &c->e[i];
			else if (!lru || c->e[i].used < lru->used)
				lru = &c->e[i];
		}
		if (free_slot && c->bytes + len <= c->max_bytes) {
			e = free_slot;
			break;
		}
		drop(c, lru);
	}
	e->key = xstrdup(key);
	e->gen = gen;
	e->born_ms = now_ms();
	e->used = ++c->clock;
	e->body = xmalloc(len);
	memcpy(e->body, body, len);
	e->len = len;
	e->request_id_at = request_id_at;
	c->bytes += len;
	pthread_mutex_unlock(&c->lock);
}
