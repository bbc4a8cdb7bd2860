/* What the files of src/store share: the open store, packs, the chunk index, manifests. */
#ifndef KILN_STORE_INTERNAL_H
#define KILN_STORE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "blob.h"
#include "store.h"
#include "util/hash.h"

#define STORE_MARKER "KILNSTORE"

struct store {
	char *path; /* the location, for messages */
	struct blob *blob;
	uint32_t chunk_size;
};

/* Workers for reading chunks: one per CPU, more where reads wait on the network. */
unsigned store_read_threads(const struct store *s);

/* ---- packs (pack.c) ----
 * header "KILNPACK" u32 version u32 chunk_size; records back to back, each the first 8 bytes
 * of its chunk's hash then the payload; footer: one pack_entry per record, then count, footer
 * offset, SHA-256 of the entries, "KILNPEND". An entry's off is its record's start, clen the
 * payload's length. */
#define PACK_HEADER_SIZE   16
#define PACK_RECORD_HEADER 8
#define PACK_ENTRY_SIZE    56
#define PACK_TRAILER_SIZE  56
#define PACK_FLAG_ZSTD     1u

struct pack_entry {
	uint8_t hash[HASH_LEN];
	uint64_t off;
	uint32_t clen;
	uint32_t ulen;
	uint32_t flags;
};

void pack_entry_encode(const struct pack_entry *e, uint8_t out[PACK_ENTRY_SIZE]);
void pack_entry_decode(const uint8_t in[PACK_ENTRY_SIZE], struct pack_entry *e);
void pack_name(uint64_t id, char out[32]); /* "<16 hex>.pack" */
int pack_parse_name(const char *name, const char *suffix, uint64_t *id);

/* Appends records to packs of about PACK_TARGET_SIZE, starting a new one when full;
 * safe to call from several threads. A sealed pack is committed (fsynced, or uploaded) by
 * threads of the writer's own while the callers go on adding, so no caller waits for the disk
 * or the network until finish. */
struct pack_writer {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a pack sealed, or one synced */
	pthread_t syncer[8];
	unsigned nsyncers;     /* running */
	bool stop;             /* finish or discard: the syncers end once they have caught up */
	size_t next;           /* sealed[next] is the next one to commit */
	size_t synced;         /* how many sealed packs are durable and closed */
	size_t nindexed;       /* sealed[0..nindexed) have their index (commit_index_sealed) */
	struct kerr *sync_err; /* the first commit that failed */
	struct blob *blob;
	uint32_t chunk_size;
	int fd;      /* current pack, or -1 */
	uint64_t id; /* current pack */
	uint64_t off;
	uint64_t flushed;     /* writeback started up to here */
	struct pack_entry *e; /* records of the current pack */
	size_t n, cap;
	struct pack_sealed {
		uint64_t id;
		int fd; /* open until the syncer has made it durable */
		struct pack_entry *e;
		size_t n;
	} * sealed;
	size_t nsealed;
	uint64_t bytes; /* record bytes written, all packs */
};

void pack_writer_init(struct pack_writer *w, struct blob *b, uint32_t chunk_size);
int pack_writer_add(struct pack_writer *w, const uint8_t hash[HASH_LEN], const void *data,
                    uint32_t clen, uint32_t ulen, uint32_t flags, struct kerr **err);
/* Seal the open pack and make every pack durable. */
int pack_writer_finish(struct pack_writer *w, struct kerr **err);
/* Remove the packs of this writer that no index names yet (packs whose index exists may
 * already serve another writer's dedup: gc owns them). */
void pack_writer_discard(struct pack_writer *w);
void pack_writer_release(struct pack_writer *w);

/* Read a pack's footer; fails with KERR_CORRUPT when it is missing or damaged. */
int pack_read_footer(struct blob_file *f, uint64_t *data_end, struct pack_entry **out, size_t *n,
                     struct kerr **err);
/* Read a record's stored payload (clen bytes, as written) into out, checking that the record
 * is the entry's chunk. */
int pack_read_payload(struct blob_file *pack, const struct pack_entry *e, uint8_t *out, size_t cap,
                      struct kerr **err);
/* A record's payload holds at most a chunk, plus zstd's framing for a compressed one: a footer
 * that says more is damage. */
#define RECORD_PAYLOAD_MAX(cs) ((size_t)(cs) + 1024)
/* Per-thread state for reading records; a zeroed one is ready, set up on first use. */
struct chunk_reader {
	void *dctx;
	uint8_t *cbuf;
	uint8_t *buf; /* the last chunk read, chunk_size bytes */
	uint32_t chunk_size;
};
enum chunk_check {
	CHUNK_CHECK_FAST, /* zstd's content checksum; SHA-256 only for raw records */
	CHUNK_CHECK_HASH, /* SHA-256 of every chunk against its id */
};
/* Read a record into r->buf and check it; damage is a KERR_CORRUPT error naming the chunk. */
int chunk_read(struct chunk_reader *r, uint32_t chunk_size, struct blob_file *pack,
               const struct pack_entry *e, enum chunk_check check, struct kerr **err);
void chunk_reader_release(struct chunk_reader *r);
/* The stored payload (clen bytes, as in the pack) of the chunk of e last read into r. */
static inline const void *chunk_stored(const struct chunk_reader *r, const struct pack_entry *e)
{
	return e->flags & PACK_FLAG_ZSTD ? (const void *)r->cbuf : (const void *)r->buf;
}
/* The chunk of e from the host's cache into r->buf, checked (false: not there, or damaged and
 * dropped from it). */
bool chunk_read_cached(struct chunk_reader *r, uint32_t chunk_size, struct blob *b,
                       const struct pack_entry *e);
/* The chunk of e from its record (header and payload, len bytes read from the pack at e->off)
 * into r->buf (its stored payload in r->cbuf when compressed), checked as chunk_read does
 * (CHUNK_CHECK_FAST), and with keep into the host's cache. */
int chunk_take_record(struct chunk_reader *r, uint32_t chunk_size, struct blob *b,
                      const struct pack_entry *e, const uint8_t *record, size_t len, bool keep,
                      struct kerr **err);

/* ---- reading neighbouring records together (spans.c) ----
 * Where a read is a round trip (a blob with read_span: object storage), one read of many
 * neighbouring records costs about as much as a read of one. */
struct span_item {
	struct pack_entry e;
	uint32_t pack; /* position in index.pack_ids */
	size_t entry;  /* the caller's: a manifest entry, a chunk to send */
};
struct span_group {
	size_t first, n; /* items */
};
/* Bytes between two records of one pack worth reading rather than asking twice. */
#define SPAN_GAP (256u << 10)
/* Sort items by place and group neighbouring records of one pack (at most SPAN_GAP apart, a
 * group at most span bytes, or one record when that is larger); groups has room for n.
 * Returns the number of groups. */
size_t span_plan(struct span_item *items, size_t n, uint64_t span, struct span_group *groups);
/* The item of the caller's chunk number entry, found at loc (index.c's). */
struct chunk_loc;
void span_item_set(struct span_item *it, const struct chunk_loc *loc, size_t entry);
/* Per-thread state for span_read_group; a zeroed one is ready. */
struct span_reader {
	struct chunk_reader r;
	uint8_t *buf;
	bool *cached;
	size_t ncached;
	const struct span_item *bad; /* whose chunk failed its checks in the last call, or NULL */
};
/* Hand each chunk of the group it[0..n) (one pack's, from span_plan), checked, in sr->r as
 * chunk_read leaves it, to fn: those the host's cache has from there, the others from one read
 * of pack (and with keep into the cache). Damage is a KERR_CORRUPT error naming the chunk,
 * with sr->bad its item. */
int span_read_group(struct span_reader *sr, uint32_t chunk_size, struct blob_file *pack,
                    const struct span_item *it, size_t n, bool keep,
                    int (*fn)(void *ctx, const struct span_item *it, struct chunk_reader *r,
                              struct kerr **err),
                    void *ctx, struct kerr **err);
void span_reader_release(struct span_reader *sr);

/* ---- the chunk index (index.c) ----
 * One immutable <pack>.idx per pack, sorted by hash; in memory, one sorted array of all. */
struct chunk_loc {
	uint8_t hash[HASH_LEN];
	uint32_t pack; /* position in index.pack_ids */
	uint32_t off;  /* packs stay far below 4 GiB */
	uint32_t clen;
	uint32_t ulen_flags; /* ulen << 1 | zstd */
};

struct index {
	struct chunk_loc *v;
	size_t n;
	uint64_t *pack_ids;
	size_t npacks;
};

int index_load(struct store *s, struct index *idx, struct kerr **err);
const struct chunk_loc *index_find(const struct index *idx, const uint8_t hash[HASH_LEN]);
void index_release(struct index *idx);
void chunk_loc_entry(const struct chunk_loc *l, struct pack_entry *e);
/* Write <pack>.idx for entries (sorted here) durably. */
int index_write(struct store *s, uint64_t pack_id, struct pack_entry *e, size_t n,
                struct kerr **err);
int index_read_file(struct store *s, const char *name, uint64_t *pack_id, struct pack_entry **out,
                    size_t *n, struct kerr **err);
/* Open, read-only, the packs holding the n chunks whose hashes start at hashes, stride bytes
 * apart (a manifest's entries, a list of hashes). files[i] matches idx->pack_ids[i]; a pack
 * none of them needs stays closed (a store has many packs, and a busy daemon restores many
 * snapshots at once). Chunks the index lacks are skipped: the caller reports them. */
int index_open_packs(struct store *s, const struct index *idx, const uint8_t *hashes, size_t stride,
                     size_t n, struct blob_file **files, struct kerr **err);
/* Every pack of the index (verify). */
int index_open_all_packs(struct store *s, const struct index *idx, struct blob_file **files,
                         struct kerr **err);
void index_close_packs(const struct index *idx, struct blob_file *files);

/* ---- manifests (manifest.c) ---- */
struct manifest_entry {
	uint64_t chunk;
	uint8_t hash[HASH_LEN];
};

struct manifest {
	char id[ID_MAX];
	char parent[ID_MAX];
	uint32_t chunk_size;
	uint64_t volume_size;
	uint64_t created_ns;
	struct manifest_entry *e; /* non-zero chunks, by increasing chunk number */
	size_t n;
};

int manifest_encode(const struct manifest *m, uint8_t **out, size_t *len, struct kerr **err);
int manifest_decode(const uint8_t *data, size_t len, struct manifest *m, struct kerr **err);
int manifest_load(struct store *s, const char *id, struct manifest *m, struct kerr **err);
/* The commit point of a snapshot: put-if-absent (write-temp, fsync, rename without replace,
 * fsync-dir; or S3's If-None-Match). Saving the same manifest again succeeds; another one under
 * the same id is KERR_CONFLICT. */
int manifest_save(struct store *s, const struct manifest *m, struct kerr **err);
void manifest_release(struct manifest *m);
/* All snapshot ids in the store, malloc'd array of ID_MAX strings. */
int manifest_list(struct store *s, char (**ids)[ID_MAX], size_t *n, struct kerr **err);

/* ---- the commit point (commit.c) ----
 * Index the packs sealed since the last call (from pw->nindexed on), each once it is durable:
 * what they hold serves dedup from then on, and is kept if the writer stops. */
int commit_index_sealed(struct store *s, struct pack_writer *pw, struct kerr **err);
/* Commit what pw wrote: every pack durable (pack_writer_finish), their indexes, the fault
 * point named fault, then m's manifest (manifest_save; none when m is NULL, as for gc's
 * repack). On failure the packs no index names are removed; indexed ones stay (gc's). */
int commit_write(struct store *s, struct pack_writer *pw, const struct manifest *m,
                 const char *fault, struct kerr **err);
/* A write that will not commit: with keep, the sealed packs are made durable and indexed
 * first, so a retry finds their chunks; the packs no index names are removed. */
void commit_abandon(struct store *s, struct pack_writer *pw, bool keep);

/* ---- a set of hashes (hashset.c) ---- */
struct hashset {
	uint8_t (*slot)[HASH_LEN];
	uint8_t *used;
	size_t cap, n;
};
void hashset_init(struct hashset *h);
void hashset_release(struct hashset *h);
/* 1 when added, 0 when it was there. */
int hashset_add(struct hashset *h, const uint8_t hash[HASH_LEN]);
int hashset_has(const struct hashset *h, const uint8_t hash[HASH_LEN]);

/* ---- which chunks to read (extents.c) ---- */
struct chunk_list {
	uint64_t *v;
	size_t n, cap;
};
void chunk_list_release(struct chunk_list *l);
/* Chunks of fd that hold data (SEEK_DATA/SEEK_HOLE; holes are never read). */
int extents_data_chunks(int fd, uint64_t size, uint32_t chunk_size, struct chunk_list *out,
                        struct kerr **err);
/* Chunks whose physical blocks differ between fd and its reflink shadow (FIEMAP). */
int extents_changed_chunks(int fd, uint64_t size, int shadow_fd, uint64_t shadow_size,
                           uint32_t chunk_size, struct chunk_list *out, struct kerr **err);

#endif
