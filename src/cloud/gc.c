/* The stores' automatic garbage collection: DeleteSnapshot only removes a manifest; the chunks
 * no other snapshot uses stay in their packs until a gc. One thread collects a region's store
 * once deletions there have been quiet for the interval, and at most once per interval, so a
 * burst of deletions costs one gc and launches are not held up by a gc after every delete.
 * gc takes the store for itself (store_open exclusive): it waits for the snapshots, restores
 * and copies running, and they wait for it. `kiln store gc` stays for operators. */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define GC_REGIONS_MAX 64

struct cloud_gc {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;
	uint64_t interval_ns;
	struct gc_region {
		char name[32];
		uint64_t deleted_ns; /* the last deletion not collected yet; 0: none */
		uint64_t done_ns;    /* the last gc's end */
	} regions[GC_REGIONS_MAX];
	size_t nregions;
};

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void collect(struct cloud *c, const char *region)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ char *dir = cloud_store_dir(c, region);
	struct log_ctx ctx = {.resource = region};
	struct store_gc_result res;
	struct store *s;
	int r;

	if (store_open(dir, true, &s, &err) < 0) {
		log_kerr(LOG_LEVEL_WARNING, &ctx, err, "cannot collect the store's garbage");
		return;
	}
	r = store_gc(s, &res, &err);
	cloud_store_close(s, region, "gc");
	if (r < 0)
		log_kerr(LOG_LEVEL_WARNING, &ctx, err, "cannot collect the store's garbage");
	else
		log_event(LOG_LEVEL_INFO, &ctx,
		          "gc: %llu bytes freed, %llu packs removed, %llu rewritten",
		          (unsigned long long)res.bytes_freed,
		          (unsigned long long)res.packs_removed,
		          (unsigned long long)res.packs_rewritten);
}

/* The region due first, or NULL; *wait_ns: how long until one is due (0: none waits). */
static struct gc_region *due(struct cloud_gc *g, uint64_t now, uint64_t *wait_ns)
{
	*wait_ns = 0;
	for (size_t i = 0; i < g->nregions; i++) {
		struct gc_region *r = &g->regions[i];
		uint64_t at;
		if (!r->deleted_ns)
			continue;
		at = r->deleted_ns + g->interval_ns;
		if (r->done_ns && r->done_ns + g->interval_ns > at)
			at = r->done_ns + g->interval_ns;
		if (at <= now)
			return r;
		if (!*wait_ns || at - now < *wait_ns)
			*wait_ns = at - now;
	}
	return NULL;
}

static void *gc_main(void *arg)
{
	struct cloud *c = arg;
	struct cloud_gc *g = c->gc;

	pthread_mutex_lock(&g->lock);
	while (!g->stopping) {
		uint64_t wait_ns;
		struct gc_region *r = due(g, now_ns(), &wait_ns);
		if (r) {
			char name[sizeof(r->name)];
			str_copy(name, r->name, sizeof(name));
			r->deleted_ns = 0;
			pthread_mutex_unlock(&g->lock);
			collect(c, name);
			pthread_mutex_lock(&g->lock);
			r->done_ns = now_ns();
			continue;
		}
		if (!wait_ns) {
			pthread_cond_wait(&g->wake, &g->lock);
		} else {
			struct timespec at;
			clock_gettime(CLOCK_MONOTONIC, &at);
			at.tv_sec += (time_t)(wait_ns / 1000000000u);
			at.tv_nsec += (long)(wait_ns % 1000000000u);
			at.tv_sec += at.tv_nsec / 1000000000L;
			at.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&g->wake, &g->lock, &at);
		}
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

int cloud_gc_start(struct cloud *c, unsigned interval_s, struct kerr **err)
{
	struct cloud_gc *g;
	pthread_condattr_t attr;
	int r;

	if (!interval_s)
		return 0;
	g = xcalloc(1, sizeof(*g));
	g->interval_ns = (uint64_t)interval_s * 1000000000u;
	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&g->wake, &attr);
	pthread_condattr_destroy(&attr);
	c->gc = g;
	r = pthread_create(&g->thread, NULL, gc_main, c);
	if (r != 0) {
		c->gc = NULL;
		pthread_cond_destroy(&g->wake);
		pthread_mutex_destroy(&g->lock);
		free(g);
		return kerr_errno(err, r, "cannot start the stores' garbage collector");
	}
	return 0;
}

void cloud_gc_request(struct cloud *c, const char *region)
{
	struct cloud_gc *g = c->gc;
	size_t i;

	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	for (i = 0; i < g->nregions && strcmp(g->regions[i].name, region); i++)
		;
	if (i == g->nregions && i < GC_REGIONS_MAX)
		str_copy(g->regions[g->nregions++].name, region, sizeof(g->regions[i].name));
	if (i < g->nregions) {
		g->regions[i].deleted_ns = now_ns();
		pthread_cond_signal(&g->wake);
	}
	pthread_mutex_unlock(&g->lock);
}

void cloud_gc_stop(struct cloud *c)
{
	struct cloud_gc *g = c->gc;

	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->stopping = true;
	pthread_cond_signal(&g->wake);
	pthread_mutex_unlock(&g->lock);
	pthread_join(g->thread, NULL);
	pthread_cond_destroy(&g->wake);
	pthread_mutex_destroy(&g->lock);
	free(g);
	c->gc = NULL;
}
