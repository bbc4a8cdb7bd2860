/* The host's chunk cache for stores in object storage: stored chunk payloads (as in the pack,
 * still compressed) in files named by their hash under DIR/<2 hex>/, bounded in bytes, least
 * recently used first out (a hit refreshes the file's mtime). Content-addressed, so nothing is
 * ever stale; a damaged entry fails the reader's checks and is dropped and fetched again.
 * Entries are written temp-then-rename without fsync: a lost entry is only a miss. */
#include "cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/xalloc.h"
#include "util/banned.h"

struct chunk_cache {
	char *dir;
	int dirfd;
	uint64_t max;
	pthread_mutex_t lock;
	uint64_t bytes; /* what the files hold, as far as this process knows */
	uint64_t added; /* put while an eviction scans: its count may have missed them */
	bool evicting;
};

struct entry {
	char name[HASH_HEX_LEN + 4];
	uint64_t size;
	struct timespec mtime;
};

/* Call f for every entry file: its subdirectory fd and name, its stat. */
static void each_entry(struct chunk_cache *c,
                       void (*f)(void *ctx, const char *sub, const char *name,
                                 const struct stat *st),
                       void *ctx)
{
	for (int i = 0; i < 256; i++) {
		char sub[3];
		struct dirent *de;
		DIR *d;
		int fd;

		snprintf(sub, sizeof(sub), "%02x", i);
		fd = openat(c->dirfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			continue;
		d = fdopendir(fd);
		if (!d) {
			close(fd);
			continue;
		}
		while ((de = readdir(d))) {
			struct stat st;
			if (strlen(de->d_name) != HASH_HEX_LEN)
				continue;
			if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISREG(st.st_mode))
				f(ctx, sub, de->d_name, &st);
		}
		closedir(d);
	}
}

static void add_size(void *ctx, const char *sub, const char *name, const struct stat *st)
{
	(void)sub;
	(void)name;
	*(uint64_t *)ctx += (uint64_t)st->st_size;
}

int chunk_cache_open(const char *dir, uint64_t max, struct chunk_cache **out, struct kerr **err)
{
	struct chunk_cache *c;

	if (fs_mkdir_p(dir, 0700, err) < 0)
		return kerr_wrap(err, "cannot create chunk cache '%s'", dir);
	c = xcalloc(1, sizeof(*c));
	c->dir = xstrdup(dir);
	c->max = max;
	pthread_mutex_init(&c->lock, NULL);
	c->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->dirfd < 0) {
		kerr_errno(err, errno, "cannot open chunk cache '%s'", dir);
		chunk_cache_close(c);
		return -1;
	}
	each_entry(c, add_size, &c->bytes);
	*out = c;
	return 0;
}

void chunk_cache_close(struct chunk_cache *c)
{
	if (!c)
		return;
	if (c->dirfd >= 0)
		close(c->dirfd);
	pthread_mutex_destroy(&c->lock);
	free(c->dir);
	free(c);
}

static void entry_path(const uint8_t hash[HASH_LEN], char out[HASH_HEX_LEN + 4])
{
	char hex[HASH_HEX_LEN + 1];

	hash_hex(hash, HASH_LEN, hex);
	snprintf(out, HASH_HEX_LEN + 4, "%.2s/%s", hex, hex);
}

int chunk_cache_get(struct chunk_cache *c, const uint8_t hash[HASH_LEN], void *buf, size_t len)
{
	char path[HASH_HEX_LEN + 4];
	_cleanup_close_ int fd = -1;
	struct stat st;

	entry_path(hash, path);
	fd = openat(c->dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || (uint64_t)st.st_size != len)
		return -1;
	if (fs_pread_full(fd, buf, len, 0) != (ssize_t)len)
		return -1;
	futimens(fd, NULL); /* most recently used */
	return 0;
}

void chunk_cache_drop(struct chunk_cache *c, const uint8_t hash[HASH_LEN])
{
	char path[HASH_HEX_LEN + 4];
	struct stat st;

	entry_path(hash, path);
	if (fstatat(c->dirfd, path, &st, 0) == 0 && unlinkat(c->dirfd, path, 0) == 0) {
		pthread_mutex_lock(&c->lock);
		c->bytes -= c->bytes < (uint64_t)st.st_size ? c->bytes : (uint64_t)st.st_size;
		pthread_mutex_unlock(&c->lock);
	}
}

struct scan {
	struct entry *v;
	size_t n, cap;
};

static void collect(void *ctx, const char *sub, const char *name, const struct stat *st)
{
	struct scan *s = ctx;

	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 1024;
		s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
	}
	snprintf(s->v[s->n].name, sizeof(s->v[s->n].name), "%s/%s", sub, name);
	s->v[s->n].size = (uint64_t)st->st_size;
	s->v[s->n].mtime = st->st_mtim;
	s->n++;
}

static int by_age(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	return (x->mtime.tv_nsec > y->mtime.tv_nsec) - (x->mtime.tv_nsec < y->mtime.tv_nsec);
}

/* Drop the least recently used entries until the cache holds at most 3/4 of its bound (so that
 * eviction, a scan of the whole cache, runs once per quarter of it filled). */
static void evict(struct chunk_cache *c)
{
	bool again;

	do {
		struct scan s = {0};
		uint64_t total = 0, goal = c->max / 4 * 3;

		pthread_mutex_lock(&c->lock);
		c->added = 0;
		pthread_mutex_unlock(&c->lock);
		each_entry(c, collect, &s);
		for (size_t i = 0; i < s.n; i++)
			total += s.v[i].size;
		qsort(s.v, s.n, sizeof(*s.v), by_age);
		for (size_t i = 0; i < s.n && total > goal; i++)
			if (unlinkat(c->dirfd, s.v[i].name, 0) == 0)
				total -= s.v[i].size;
		free(s.v);
		/* Entries put while the scan ran count again, whether it saw them or not: the
		 * count may run high (an early eviction), never low (a cache past its bound). */
		pthread_mutex_lock(&c->lock);
		c->bytes = total + c->added;
		again = c->bytes > c->max;
		c->evicting = again;
		pthread_mutex_unlock(&c->lock);
	} while (again);
}

void chunk_cache_put(struct chunk_cache *c, const uint8_t hash[HASH_LEN], const void *data,
                     size_t len)
{
	char path[HASH_HEX_LEN + 4], sub[3];
	bool full;

	if (len > c->max)
		return;
	entry_path(hash, path);
	memcpy(sub, path, 2);
	sub[2] = '\0';
	mkdirat(c->dirfd, sub, 0700);
	/* fs_write_replace: temp file, rename; no fsync (a lost entry is a miss) */
	if (fs_write_replace(c->dirfd, path, data, len, NULL) < 0)
		return;
	pthread_mutex_lock(&c->lock);
	c->bytes += len;
	c->added += len;
	full = c->bytes > c->max && !c->evicting;
	if (full)
		c->evicting = true;
	pthread_mutex_unlock(&c->lock);
	if (full)
		evict(c);
}
