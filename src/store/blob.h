/* Where a store's objects live: packs, index files, manifests and the marker, named within
 * four namespaces. One ops table per backend (a local directory, S3), as lxc's storage backends;
 * the rest of the store sees only these calls. */
#ifndef KILN_STORE_BLOB_H
#define KILN_STORE_BLOB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "util/kerr.h"

enum blob_ns { BLOB_ROOT, BLOB_PACKS, BLOB_INDEX, BLOB_SNAPS, BLOB__NS };

enum blob_put {
	BLOB_REPLACE, /* the new content replaces any old one, atomically */
	BLOB_CREATE,  /* fails with KERR_CONFLICT when the name exists (put-if-absent) */
};

struct blob_obj {
	char name[64];
	uint64_t size;
	uint64_t mtime; /* seconds since the epoch */
};

struct blob;

/* An object open for reads at offsets. */
struct blob_file {
	struct blob *b;
	int fd;        /* dir backend */
	char *name;    /* backend key */
	uint64_t size; /* known when has_size */
	bool has_size;
};

struct blob_ops {
	const char *name;
	/* Create an empty store location; refuse one that holds anything. */
	int (*init)(struct blob *b, struct kerr **err);
	int (*open)(struct blob *b, bool exclusive, struct kerr **err);
	void (*close)(struct blob *b);
	int (*put)(struct blob *b, enum blob_ns ns, const char *name, const void *data, size_t len,
	           enum blob_put mode, const char *fault_prefix, struct kerr **err);
	/* A missing object is KERR_NOT_FOUND. */
	int (*get)(struct blob *b, enum blob_ns ns, const char *name, size_t max, uint8_t **out,
	           size_t *len, struct kerr **err);
	/* A missing object is KERR_NOT_FOUND. */
	int (*del)(struct blob *b, enum blob_ns ns, const char *name, struct kerr **err);
	int (*list)(struct blob *b, enum blob_ns ns, struct blob_obj **out, size_t *n,
	            struct kerr **err);
	/* Make the creates and removes in ns durable. */
	int (*sync)(struct blob *b, enum blob_ns ns, struct kerr **err);
	/* A pack being written is a local file: created, then committed (made durable and
	 * visible under its name) once sealed. */
	int (*pack_create)(struct blob *b, const char *name, int *fd, struct kerr **err);
	int (*pack_commit)(struct blob *b, const char *name, int fd, struct kerr **err);
	/* Drop a pack being written (its fd is closed by the caller) or committed. */
	void (*pack_discard)(struct blob *b, const char *name);
	int (*open_file)(struct blob *b, enum blob_ns ns, const char *name, struct blob_file *f,
	                 struct kerr **err);
	int (*file_size)(struct blob_file *f, struct kerr **err);
	/* Read up to the iovecs' total at off; returns the bytes read (short at the end). */
	ssize_t (*preadv)(struct blob_file *f, const struct iovec *iov, int n, uint64_t off,
	                  struct kerr **err);
	void (*close_file)(struct blob_file *f);
};

/* What a store asked of object storage while open, counted as it goes (S3 only: a directory
 * counts nothing), and the chunks its reads found in the host's cache instead. */
struct blob_io {
	atomic_uint_fast64_t requests;   /* HTTP requests, retries included */
	atomic_uint_fast64_t gets;       /* GETs, whole or ranged */
	atomic_uint_fast64_t bytes_in;   /* response bytes of those */
	atomic_uint_fast64_t puts;       /* PUTs */
	atomic_uint_fast64_t bytes_out;  /* request bytes of those */
	atomic_uint_fast64_t cache_hits; /* chunks read from the host's cache */
};

struct blob {
	const struct blob_ops *ops;
	struct blob_io io;
	char *where;               /* the directory or URL, for messages */
	uint64_t pack_target;      /* bytes per pack */
	unsigned pack_writers;     /* packs committed in parallel */
	uint64_t gc_grace;         /* seconds an unindexed pack may belong to a running writer */
	unsigned read_threads;     /* readers in flight worth having (0: one per CPU) */
	uint64_t read_span;        /* restores read neighbouring records of a pack at once, up
	                            * to this many bytes (0: one record a read) */
	struct chunk_cache *cache; /* the host's chunk cache, or NULL */
	void *priv;
};

extern const struct blob_ops blob_dir_ops;
extern const struct blob_ops blob_s3_ops;

/* Pick the backend for a location: "s3://bucket/prefix?endpoint=..." or a directory. */
int blob_new(const char *where, struct blob **out, struct kerr **err);
void blob_free(struct blob *b);

int blob_file_open(struct blob *b, enum blob_ns ns, const char *name, struct blob_file *f,
                   struct kerr **err);
int blob_file_size(struct blob_file *f, uint64_t *size, struct kerr **err);
ssize_t blob_file_preadv(struct blob_file *f, const struct iovec *iov, int n, uint64_t off,
                         struct kerr **err);
void blob_file_close(struct blob_file *f);

/* The S3 backend's parts, for tests. */
struct blob_s3_url {
	char *bucket;
	char *prefix; /* "" or ending in '/' */
	char *endpoint;
	char *region;
	uint64_t gc_grace;
	char *cache_dir;    /* the host's chunk cache, or NULL */
	uint64_t cache_max; /* its bound in bytes */
};
int blob_s3_parse_url(const char *url, struct blob_s3_url *u, struct kerr **err);
void blob_s3_url_release(struct blob_s3_url *u);
/* One page of ListObjectsV2: appends the objects whose key is the prefix (strip bytes) and a
 * name without '/'; sets truncated and token (the next page's) for the page. */
struct blob_s3_listing {
	size_t strip;
	struct blob_obj *v;
	size_t n;
	size_t seen; /* keys of any shape */
	bool truncated;
	char *token;
};
int blob_s3_parse_listing(struct blob_s3_listing *l, const char *xml, size_t len,
                          struct kerr **err);
void blob_s3_listing_release(struct blob_s3_listing *l);

#endif
