/* Where the domain's files live in the data directory: each zone's pool of volume files, each
 * region's block store, and the names of the files inside a pool. */
#include "internal.h"

#include <ctype.h>
#include <pthread.h>
#include <string.h>
#include <sys/statvfs.h>

#include "store/store.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/cleanup.h"
#include "util/xalloc.h"
#include "util/banned.h"

char *cloud_zone_pool_dir(const struct cloud *c, const char *region, const char *zone)
{
	return xasprintf("%s/regions/%s/pools/%s", c->data_dir, region, zone);
}

int cloud_zone_space_check(const struct cloud *c, const char *region, const char *zone,
                           struct kerr **err)
{
	_cleanup_free_ char *dir = cloud_zone_pool_dir(c, region, zone);
	struct statvfs fs;
	uint64_t avail;

	/* A pool is made on first use: until then it has the room of a new one. */
	if (statvfs(dir, &fs) < 0)
		return 0;
	avail = (uint64_t)fs.f_bavail * fs.f_frsize;
	if (avail < CLOUD_POOL_SPACE_MIN)
		return kerr_about(err, KERR_NOSPACE, KERR_SUBJECT_ZONE, zone,
		                  "the pool of zone '%s' has %llu MiB free, less than the %llu MiB "
		                  "a new volume needs",
		                  zone, (unsigned long long)(avail >> 20),
		                  (unsigned long long)(CLOUD_POOL_SPACE_MIN >> 20));
	return 0;
}

/* A URL's query value: everything but unreserved characters and '/' percent-encoded. */
static void add_query_value(struct buf *b, const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (isalnum(*p) || strchr("-._~/", *p))
			buf_addf(b, "%c", *p);
		else
			buf_addf(b, "%%%02X", *p);
	}
}

char *cloud_store_dir(const struct cloud *c, const char *region)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ char *name = xasprintf("store:%s", region);
	struct buf url = BUF_INIT;

	if (db_prepare(c->db, "SELECT value FROM settings WHERE name = ?", &st, NULL) < 0)
		return xasprintf("%s/regions/%s/store", c->data_dir, region);
	db_bind_text(st, 1, name);
	if (db_step_row(c->db, st, NULL) != 1)
		return xasprintf("%s/regions/%s/store", c->data_dir, region);
	buf_addstr(&url, db_text(st, 0));
	/* Restores read through the host's chunk cache (bounded, LRU), one per region. */
	if (!strstr(url.data, "?cache=") && !strstr(url.data, "&cache=")) {
		buf_addstr(&url, strchr(url.data, '?') ? "&cache=" : "?cache=");
		add_query_value(&url, c->data_dir);
		buf_addstr(&url, "/regions/");
		add_query_value(&url, region);
		buf_addstr(&url, "/chunk-cache");
	}
	return buf_detach(&url);
}

int cloud_store_open(struct cloud *c, const char *region, bool exclusive, struct store **s,
                     struct kerr **err)
{
	_cleanup_free_ char *where = cloud_store_dir(c, region);

	return store_open(where, exclusive, s, err);
}

/* What every store of the process asked of object storage, for the log. */
static pthread_mutex_t io_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store_io io_total;

void cloud_store_close(struct store *s, const char *region, const char *what)
{
	struct log_ctx ctx = {.resource = region};
	struct store_io io, t;

	if (!s)
		return;
	store_io(s, &io);
	store_close(s);
	if (!io.requests && !io.cache_hits)
		return;
	pthread_mutex_lock(&io_lock);
	io_total.requests += io.requests;
	io_total.gets += io.gets;
	io_total.bytes_in += io.bytes_in;
	io_total.puts += io.puts;
	io_total.bytes_out += io.bytes_out;
	io_total.cache_hits += io.cache_hits;
	t = io_total;
	pthread_mutex_unlock(&io_lock);
	log_event(LOG_LEVEL_INFO, &ctx,
	          "store io (%s): %llu requests, %llu GETs of %llu bytes, %llu PUTs of %llu "
	          "bytes, %llu chunks from the host's cache; since start: %llu requests, %llu "
	          "GETs of %llu bytes, %llu PUTs of %llu bytes, %llu chunks from the cache",
	          what, (unsigned long long)io.requests, (unsigned long long)io.gets,
	          (unsigned long long)io.bytes_in, (unsigned long long)io.puts,
	          (unsigned long long)io.bytes_out, (unsigned long long)io.cache_hits,
	          (unsigned long long)t.requests, (unsigned long long)t.gets,
	          (unsigned long long)t.bytes_in, (unsigned long long)t.puts,
	          (unsigned long long)t.bytes_out, (unsigned long long)t.cache_hits);
}

int cloud_stores_check(struct cloud *c, struct kerr **err)
{
	struct topology t;
	int r = 0;

	if (cloud_regions(c, &t, err) < 0)
		return -1;
	for (size_t i = 0; i < t.nregions && r == 0; i++) {
		_cleanup_free_ char *where = NULL;
		struct store *s;

		if (c->deploy && strcmp(t.regions[i], c->deploy->region))
			continue;
		where = cloud_store_dir(c, t.regions[i]);
		if (!store_location_is_s3(where))
			continue;
		r = store_open(where, false, &s, err);
		if (r < 0)
			kerr_wrap(err, "cannot open the store of region '%s'", t.regions[i]);
		else
			cloud_store_close(s, t.regions[i], "the check at start");
	}
	topology_release(&t);
	return r;
}

int cloud_store_make(const char *where, struct kerr **err)
{
	_cleanup_kerr_ struct kerr *e = NULL;
	struct store *s;

	if (!store_location_is_s3(where))
		return store_init(where, err);
	/* Object storage outlives a data directory: a store there already (of another host of
	 * the region, or of an earlier data directory) is used as it is. */
	if (store_open(where, false, &s, &e) == 0) {
		store_close(s);
		return 0;
	}
	if (e->kind != KERR_INVALID) /* unreachable, refused: not "no store there" */
		return kerr_pass(err, steal_ptr(e));
	return store_init(where, err);
}

char *cloud_base_name(const char *snapshot_id)
{
	return xasprintf("base-%s.img", snapshot_id);
}

char *cloud_volume_file(const char *id)
{
	return xasprintf("%s.img", id);
}

char *cloud_shadow_file(const char *volume, const char *snapshot)
{
	return xasprintf("%s.%s.shadow", volume, snapshot);
}
