/* A small LRU of whole answers behind one mutex; answers are counted references, and a
 * condition variable wakes the requests waiting for an answer being made. */
#include "cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/xml.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define CACHE_ENTRIES 64
/* How long a request waits for another's answer before making its own. */
#define WAIT_MS 5000

struct api_cache_answer {
	unsigned refs; /* atomic */
	size_t len, request_id_at;
	char body[];
};

struct entry {
	char *key;
	uint64_t gen; /* of answer */
	uint64_t born_ms, used;
	struct api_cache_answer *answer; /* NULL while the first one is made */
	bool making;                     /* a request makes the answer of generation making_gen */
	uint64_t making_gen;
};

struct api_cache {
	pthread_mutex_t lock;
	pthread_cond_t made;
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
	pthread_condattr_t ca;

	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->made, &ca);
	pthread_condattr_destroy(&ca);
	c->max_bytes = max_bytes;
	c->max_age_ms = max_age_ms;
	return c;
}

static struct api_cache_answer *ref(struct api_cache_answer *a)
{
	__atomic_add_fetch(&a->refs, 1, __ATOMIC_RELAXED);
	return a;
}

void api_cache_answer_release(struct api_cache_answer *a)
{
	if (a && __atomic_sub_fetch(&a->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(a);
}

const char *api_cache_answer_body(const struct api_cache_answer *a, size_t *len,
                                  size_t *request_id_at)
{
	*len = a->len;
	*request_id_at = a->request_id_at;
	return a->body;
}

static void drop_answer(struct api_cache *c, struct entry *e)
{
	if (!e->answer)
		return;
	c->bytes -= e->answer->len;
	api_cache_answer_release(e->answer);
	e->answer = NULL;
}

static void drop(struct api_cache *c, struct entry *e)
{
	drop_answer(c, e);
	free(e->key);
	memset(e, 0, sizeof(*e));
	pthread_cond_broadcast(&c->made); /* its waiters look again */
}

void api_cache_free(struct api_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < CACHE_ENTRIES; i++)
		if (c->e[i].key)
			drop(c, &c->e[i]);
	pthread_cond_destroy(&c->made);
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

/* A slot for key with room for len more bytes: the least recently used go first. */
static struct entry *make_room(struct api_cache *c, size_t len)
{
	for (;;) {
		struct entry *lru = NULL, *free_slot = NULL;
		for (size_t i = 0; i < CACHE_ENTRIES; i++) {
			if (!c->e[i].key)
				free_slot = free_slot ? free_slot : &c->e[i];
			else if (!lru || c->e[i].used < lru->used)
				lru = &c->e[i];
		}
		if (free_slot && c->bytes + len <= c->max_bytes)
			return free_slot;
		drop(c, lru);
	}
}

static void wait_made(struct api_cache *c, const struct timespec *until)
{
	pthread_cond_timedwait(&c->made, &c->lock, until);
}

struct api_cache_answer *api_cache_get(struct api_cache *c, const char *key, uint64_t gen)
{
	struct api_cache_answer *hit = NULL;
	struct timespec until;
	struct entry *e;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		e = find(c, key);
		if (e && e->answer && e->gen == gen) {
			/* Only its age ran out: while another request makes the next one, this
			 * one is still the database's answer, a little late. */
			if (now_ms() - e->born_ms <= c->max_age_ms || e->making) {
				hit = ref(e->answer);
				e->used = ++c->clock;
				break;
			}
		} else if (e && e->making && e->making_gen >= gen) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (now.tv_sec > until.tv_sec ||
			    (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec))
				break; /* too slow: make our own, unannounced */
			wait_made(c, &until);
			continue;
		}
		if (e && e->answer && e->gen > gen)
			break; /* a newer one is kept: make this older one unannounced */
		/* This request makes it: the others wait for it. */
		if (!e) {
			e = make_room(c, 0);
			e->key = xstrdup(key);
		}
		if (e->answer && e->gen != gen)
			drop_answer(c, e);
		if (!e->making || e->making_gen < gen) {
			e->making = true;
			e->making_gen = gen;
		}
		e->used = ++c->clock;
		break;
	}
	pthread_mutex_unlock(&c->lock);
	return hit;
}

void api_cache_put(struct api_cache *c, const char *key, uint64_t gen, const char *body, size_t len,
                   size_t request_id_at)
{
	struct api_cache_answer *a;
	struct entry *e;

	if (len > c->max_bytes / 4 || request_id_at + API_REQUEST_ID_LEN > len) {
		api_cache_abandon(c, key, gen);
		return;
	}
	a = xmalloc(sizeof(*a) + len);
	a->refs = 1;
	a->len = len;
	a->request_id_at = request_id_at;
	memcpy(a->body, body, len);
	pthread_mutex_lock(&c->lock);
	e = find(c, key);
	if (e && e->answer && e->gen > gen) { /* a newer one came first */
		api_cache_answer_release(a);
	} else {
		if (e)
			drop_answer(c, e);
		if (c->bytes + len > c->max_bytes) {
			/* Room without losing this entry's place (or its waiters). */
			bool making = e && e->making;
			uint64_t making_gen = e ? e->making_gen : 0;
			if (e)
				drop(c, e);
			e = make_room(c, len);
			e->key = xstrdup(key);
			e->making = making;
			e->making_gen = making_gen;
		} else if (!e) {
			e = make_room(c, len);
			e->key = xstrdup(key);
		}
		e->answer = a;
		e->gen = gen;
		e->born_ms = now_ms();
		e->used = ++c->clock;
		c->bytes += len;
	}
	if (e && e->making && e->making_gen <= gen)
		e->making = false;
	pthread_cond_broadcast(&c->made);
	pthread_mutex_unlock(&c->lock);
}

void api_cache_abandon(struct api_cache *c, const char *key, uint64_t gen)
{
	struct entry *e;

	pthread_mutex_lock(&c->lock);
	e = find(c, key);
	if (e && e->making && e->making_gen == gen) {
		e->making = false;
		if (!e->answer)
			drop(c, e);
	}
	pthread_cond_broadcast(&c->made);
	pthread_mutex_unlock(&c->lock);
}
