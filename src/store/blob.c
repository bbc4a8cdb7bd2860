/* Choosing a backend for a store location, and the calls common to every backend. */
#include "blob.h"

#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define DIR_PACK_TARGET (64u << 20)
#define S3_PACK_TARGET  (8u << 20)

int blob_new(const char *where, struct blob **out, struct kerr **err)
{
	struct blob *b = xcalloc(1, sizeof(*b));

	b->where = xstrdup(where);
	if (!strncmp(where, "s3://", 5)) {
		struct blob_s3_url u;
		if (blob_s3_parse_url(where, &u, err) < 0) {
			blob_free(b);
			return -1;
		}
		b->ops = &blob_s3_ops;
		b->pack_target = S3_PACK_TARGET;
		b->pack_writers = 4;
		b->gc_grace = u.gc_grace;
		b->read_threads = 16; /* ranged GETs wait on the network, not the CPU */
		/* A ranged GET costs about as much as 100 KiB of its body: one GET for many
		 * neighbouring records (bench/RESULTS.md: 128 KiB GETs 38 MB/s, whole 122 MB/s). */
		b->read_span = 4u << 20;
		if (u.cache_dir && chunk_cache_open(u.cache_dir, u.cache_max, &b->cache, err) < 0) {
			blob_s3_url_release(&u);
			blob_free(b);
			return -1;
		}
		blob_s3_url_release(&u);
	} else if (strstr(where, "://")) {
		blob_free(b);
		return kerr_set(err, KERR_INVALID,
		                "unknown store location '%s' (a directory or s3://)", where);
	} else {
		b->ops = &blob_dir_ops;
		b->pack_target = DIR_PACK_TARGET;
		b->pack_writers = 1;
		b->gc_grace = 0; /* gc holds the directory's lock alone */
	}
	*out = b;
	return 0;
}

void blob_free(struct blob *b)
{
	if (!b)
		return;
	if (b->ops && b->priv)
		b->ops->close(b);
	chunk_cache_close(b->cache);
	free(b->where);
	free(b);
}

int blob_file_open(struct blob *b, enum blob_ns ns, const char *name, struct blob_file *f,
                   struct kerr **err)
{
	memset(f, 0, sizeof(*f));
	f->b = b;
	f->fd = -1;
	f->name = xstrdup(name);
	if (b->ops->open_file(b, ns, name, f, err) < 0) {
		free(f->name);
		f->name = NULL;
		return -1;
	}
	return 0;
}

int blob_file_size(struct blob_file *f, uint64_t *size, struct kerr **err)
{
	if (!f->has_size) {
		if (f->b->ops->file_size(f, err) < 0)
			return -1;
		f->has_size = true;
	}
	*size = f->size;
	return 0;
}

ssize_t blob_file_preadv(struct blob_file *f, const struct iovec *iov, int n, uint64_t off,
                         struct kerr **err)
{
	return f->b->ops->preadv(f, iov, n, off, err);
}

void blob_file_close(struct blob_file *f)
{
	if (!f->b)
		return;
	f->b->ops->close_file(f);
	free(f->name);
	memset(f, 0, sizeof(*f));
	f->fd = -1;
}
