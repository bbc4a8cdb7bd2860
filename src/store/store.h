/* The regional block store: content-addressed, compressed, crash-safe volume snapshots.
 * It knows volumes as files and snapshots as manifests of chunk hashes; nothing of EC2. */
#ifndef KILN_STORE_H
#define KILN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/id.h"
#include "util/kerr.h"

#define STORE_CHUNK_SIZE (128u * 1024)

struct store;

/* Called from worker threads, serialized, with the work done so far. */
struct store_progress {
	void (*fn)(void *ctx, uint64_t done, uint64_t total);
	void *ctx;
};

/* A store lives in a directory or in object storage, "s3://bucket/prefix?endpoint=URL" (see
 * blob.h; credentials from the environment or the shared credentials file, never the URL). */
bool store_location_is_s3(const char *where);
/* Is where a location kiln can open (without touching it)? */
int store_location_check(const char *where, struct kerr **err);
int store_init(const char *dir, struct kerr **err);
/* exclusive: keep every other user of the store out (gc); others share. */
int store_open(const char *dir, bool exclusive, struct store **out, struct kerr **err);
void store_close(struct store *s);

/* What an open store asked of object storage so far (all zero for a directory), and the chunks
 * its reads took from the host's chunk cache instead. */
struct store_io {
	uint64_t requests; /* HTTP requests, retries included */
	uint64_t gets;
	uint64_t bytes_in;
	uint64_t puts;
	uint64_t bytes_out;
	uint64_t cache_hits;
};
void store_io(const struct store *s, struct store_io *out);

struct store_snapshot_opts {
	const char *parent; /* snapshot id the volume descends from, or NULL */
	const char *shadow; /* reflink clone of the volume taken at the parent's snapshot */
	const struct store_progress *progress;
	const char *id; /* the new snapshot's id (snap-…), or NULL for a fresh one */
};

struct store_snapshot_result {
	char id[ID_MAX];
	uint64_t volume_size;
	uint64_t chunks_read;  /* chunks read from the volume */
	uint64_t chunks_new;   /* chunks the store did not have */
	uint64_t bytes_stored; /* bytes appended to packs for them */
};

int store_snapshot(struct store *s, const char *volume, const struct store_snapshot_opts *opts,
                   struct store_snapshot_result *res, struct kerr **err);
/* Write a sparse file byte-identical to the volume at snapshot time; every chunk is
 * checked against its hash first, so damage fails the restore instead of writing it. */
int store_restore(struct store *s, const char *snap_id, const char *out,
                  const struct store_progress *progress, struct kerr **err);
int store_delete(struct store *s, const char *snap_id, struct kerr **err);

/* Copy snapshot id of src into dst as new_id, sending only the chunks dst lacks (read as stored,
 * compressed, and checked first). The manifest written last is the commit point. */
struct store_copy_result {
	uint64_t chunks;      /* non-zero chunks of the snapshot */
	uint64_t chunks_sent; /* of those, the ones dst lacked */
	uint64_t bytes_sent;  /* their stored (compressed) bytes */
};
int store_copy(struct store *src, struct store *dst, const char *id, const char *new_id,
               const struct store_progress *progress, struct store_copy_result *res,
               struct kerr **err);

/* Copies between hosts (remote.c). The source's side: a snapshot's manifest, and chunks of it
 * by hash, as stored and checked, each as hash, flags, ulen, clen (u32 LE) then the payload;
 * a hash the snapshot does not use is KERR_NOT_FOUND. */
int store_export_manifest(struct store *s, const char *id, struct buf *out, struct kerr **err);
int store_export_chunks(struct store *s, const char *id, const uint8_t (*hashes)[32], size_t n,
                        struct buf *out, struct kerr **err);
/* The same, kept open across calls (a copy's many): the snapshot's manifest, the index and its
 * packs open, read by any number of threads at once (store_export_read does not change it).
 * Safe across gc and writers: a snapshot's chunks stay where its index said while a pack is
 * open (an unlinked pack is still read through its descriptor). */
struct store_export;
int store_export_open(struct store *s, const char *id, struct store_export **out,
                      struct kerr **err);
int store_export_read(const struct store_export *ex, const uint8_t (*hashes)[32], size_t n,
                      struct buf *out, struct kerr **err);
void store_export_close(struct store_export *ex);
/* The destination's: where those come from (another host's store_export_*, over a transport
 * of the caller's), and store_copy from it: the same promises as store_copy (only missing
 * chunks asked for, at most STORE_REMOTE_BATCH at a time, each checked against its hash;
 * manifest last), and packs indexed as they seal, so a copy that stops resumes. */
#define STORE_REMOTE_BATCH 64
struct store_source {
	int (*manifest)(void *ctx, const char *id, struct buf *out, struct kerr **err);
	int (*chunks)(void *ctx, const char *id, const uint8_t (*hashes)[32], size_t n,
	              struct buf *out, struct kerr **err);
	void *ctx;
};
int store_copy_remote(struct store *dst, const struct store_source *src, const char *id,
                      const char *new_id, const struct store_progress *progress,
                      struct store_copy_result *res, struct kerr **err);

struct store_snap_info {
	char id[ID_MAX];
	char parent[ID_MAX];
	uint64_t created_ns;
	uint64_t volume_size;
	uint64_t chunks;       /* non-zero chunks */
	uint64_t data_bytes;   /* bytes those chunks cover */
	uint64_t stored_bytes; /* compressed bytes of its distinct chunks */
	uint64_t new_bytes;    /* of those, the ones its parent does not use */
};

struct store_stats {
	uint64_t snapshots;
	uint64_t volume_bytes;         /* sum of volume sizes */
	uint64_t logical_bytes;        /* sum of non-zero data the snapshots describe */
	uint64_t unique_chunks;        /* chunks the snapshots use, once each */
	uint64_t unique_bytes;         /* their uncompressed size */
	uint64_t stored_bytes;         /* their compressed size */
	uint64_t pack_bytes;           /* size of all pack files, garbage included */
	uint64_t garbage_bytes;        /* stored bytes no snapshot uses (gc frees them) */
	struct store_snap_info *snaps; /* sorted by creation time */
	size_t nsnaps;
};

/* Snapshots sorted by creation time; only the header fields of store_snap_info. */
int store_list(struct store *s, struct store_snap_info **out, size_t *n, struct kerr **err);
int store_stats(struct store *s, struct store_stats *st, struct kerr **err);
void store_stats_release(struct store_stats *st);

struct store_gc_result {
	uint64_t packs_removed;
	uint64_t packs_rewritten;
	uint64_t bytes_freed;
	uint64_t leftovers_removed; /* temp files and packs of interrupted writers */
};
int store_gc(struct store *s, struct store_gc_result *res, struct kerr **err);

/* report gets one line per problem. Returns 0 when the store is sound, else a
 * KERR_CORRUPT error counting the problems. */
struct store_verify_result {
	uint64_t chunks_checked;
	uint64_t bytes_checked;
	uint64_t problems;
};
int store_verify(struct store *s, void (*report)(void *ctx, const char *line), void *ctx,
                 struct store_verify_result *res, struct kerr **err);

#endif
