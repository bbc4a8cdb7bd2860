/* Pack files: append-only runs of chunk records, sealed by a footer that lists them. */
#include "internal.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#define PACK_FLUSH_STEP (8u << 20)
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_getFrameHeader */
#include <zstd.h>

#include "cache.h"
#include "util/cleanup.h"
#include "util/endian.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/id.h"
#include "util/xalloc.h"
#include "util/banned.h"

static const char pack_magic[8] = "KILNPACK";
static const char pack_end_magic[8] = "KILNPEND";

void pack_entry_encode(const struct pack_entry *e, uint8_t out[PACK_ENTRY_SIZE])
{
	memcpy(out, e->hash, HASH_LEN);
	put_le64(out + 32, e->off);
	put_le32(out + 40, e->clen);
	put_le32(out + 44, e->ulen);
	put_le32(out + 48, e->flags);
	put_le32(out + 52, 0);
}

void pack_entry_decode(const uint8_t in[PACK_ENTRY_SIZE], struct pack_entry *e)
{
	memcpy(e->hash, in, HASH_LEN);
	e->off = get_le64(in + 32);
	e->clen = get_le32(in + 40);
	e->ulen = get_le32(in + 44);
	e->flags = get_le32(in + 48);
}

void pack_name(uint64_t id, char out[32])
{
	snprintf(out, 32, "%016" PRIx64 ".pack", id);
}

int pack_parse_name(const char *name, const char *suffix, uint64_t *id)
{
	uint8_t raw[8];
	char hex[17];

	if (strlen(name) != 16 + strlen(suffix) || strcmp(name + 16, suffix) != 0)
		return -1;
	memcpy(hex, name, 16);
	hex[16] = '\0';
	if (hash_unhex(hex, raw, 8) < 0)
		return -1;
	*id = 0;
	for (int i = 0; i < 8; i++)
		*id = *id << 8 | raw[i];
	return 0;
}

void pack_writer_init(struct pack_writer *w, struct blob *b, uint32_t chunk_size)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->blob = b;
	w->chunk_size = chunk_size;
	w->fd = -1;
}

static int pack_start(struct pack_writer *w, struct kerr **err)
{
	uint8_t header[PACK_HEADER_SIZE];
	char hex[17], name[32];

	for (;;) {
		id_random_hex(hex, 16);
		uint8_t raw[8];
		hash_unhex(hex, raw, 8);
		w->id = 0;
		for (int i = 0; i < 8; i++)
			w->id = w->id << 8 | raw[i];
		pack_name(w->id, name);
		_cleanup_kerr_ struct kerr *e = NULL;
		if (w->blob->ops->pack_create(w->blob, name, &w->fd, &e) == 0)
			break;
		w->fd = -1;
		if (e->kind != KERR_CONFLICT)
			return kerr_pass(err, steal_ptr(e));
	}
	memcpy(header, pack_magic, 8);
	put_le32(header + 8, 1);
	put_le32(header + 12, w->chunk_size);
	if (fs_pwrite_full(w->fd, header, sizeof(header), 0) < 0)
		return kerr_errno(err, errno, "cannot write pack '%s'", name);
	w->off = PACK_HEADER_SIZE;
	w->flushed = 0;
	w->n = 0;
	return 0;
}

/* Make sealed packs durable, taken in seal order: commit (fsync or upload), then close. */
static void *pack_syncer(void *arg)
{
	struct pack_writer *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->next == w->nsealed && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->next == w->nsealed)
			break;
		size_t i = w->next++;
		int fd = w->sealed[i].fd;
		uint64_t id = w->sealed[i].id;
		bool failed = w->sync_err != NULL;
		pthread_mutex_unlock(&w->lock);

		struct kerr *err = NULL;
		if (!failed) {
			char name[32];
			pack_name(id, name);
			w->blob->ops->pack_commit(w->blob, name, fd, &err);
		}
		if (!failed && !err) {
			fault_point("pack.synced");
			/* Durable: its pages leave the page cache, which the next packs then reuse
			 * (a store's packs are seldom read back soon). Left cached, each pack took
			 * memory the machine had not touched for a while, which in a virtual
			 * machine that hands free memory back to its host costs a fault there per
			 * page: a full snapshot of bench/store's src.img spent 1.8 s in the kernel
			 * instead of 0.6 s, most of it copying into new page-cache pages
			 * (bench/RESULTS.md). */
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		}
		close(fd);

		pthread_mutex_lock(&w->lock);
		w->sealed[i].fd = -1;
		w->synced++;
		if (err && !w->sync_err)
			w->sync_err = err;
		else
			kerr_free(err);
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* How many sealed packs may wait for their commit (open files, dirty memory), beyond those
 * being committed. */
#define PACK_SYNC_BACKLOG 3

/* Footer; the pack joins the sealed list and the syncers' queue (its index is written
 * later, after pack_writer_finish). Called with the lock held, which it never releases. */
static int pack_seal(struct pack_writer *w, struct kerr **err)
{
	_cleanup_free_ uint8_t *footer = NULL;
	size_t flen = w->n * PACK_ENTRY_SIZE + PACK_TRAILER_SIZE;
	uint8_t *t;
	char name[32];

	pack_name(w->id, name);
	footer = xmalloc(flen);
	for (size_t i = 0; i < w->n; i++)
		pack_entry_encode(&w->e[i], footer + i * PACK_ENTRY_SIZE);
	t = footer + w->n * PACK_ENTRY_SIZE;
	put_le64(t, w->n);
	put_le64(t + 8, w->off);
	hash_sha256(footer, w->n * PACK_ENTRY_SIZE, t + 16);
	memcpy(t + 48, pack_end_magic, 8);
	if (fs_pwrite_full(w->fd, footer, flen, (off_t)w->off) < 0)
		return kerr_errno(err, errno, "cannot write pack '%s'", name);
	sync_file_range(w->fd, (off_t)w->flushed, 0, SYNC_FILE_RANGE_WRITE);
	fault_point("pack.sealed");
	while (w->nsyncers < w->blob->pack_writers && w->nsyncers < ARRAY_SIZE(w->syncer)) {
		if (pthread_create(&w->syncer[w->nsyncers], NULL, pack_syncer, w) != 0)
			return kerr_set(err, KERR_INTERNAL, "cannot start a thread");
		w->nsyncers++;
	}
	w->sealed = xreallocarray(w->sealed, w->nsealed + 1, sizeof(*w->sealed));
	w->sealed[w->nsealed++] =
	    (struct pack_sealed){.id = w->id, .fd = w->fd, .e = w->e, .n = w->n};
	w->fd = -1;
	w->e = NULL;
	w->n = w->cap = 0;
	pthread_cond_broadcast(&w->cond);
	return 0;
}

/* Wait until the syncer has made every sealed pack durable, and end it. */
static int pack_syncer_stop(struct pack_writer *w, struct kerr **err)
{
	struct kerr *e;

	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	for (unsigned i = 0; i < w->nsyncers; i++)
		pthread_join(w->syncer[i], NULL);
	w->nsyncers = 0;
	e = w->sync_err;
	w->sync_err = NULL;
	if (e)
		return kerr_pass(err, e);
	return 0;
}

/* The record's name (the first bytes of its hash) and its payload in one write: the lock is
 * held for one system call instead of two. */
static int write_record(int fd, const uint8_t *hash, const void *data, uint32_t clen, off_t off)
{
	struct iovec iov[2] = {{(void *)hash, PACK_RECORD_HEADER}, {(void *)data, clen}};
	size_t left = PACK_RECORD_HEADER + (size_t)clen;
	int k = 0;

	while (left) {
		ssize_t n = pwritev(fd, iov + k, 2 - k, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		off += n;
		left -= (size_t)n;
		while (k < 2 && (size_t)n >= iov[k].iov_len) {
			n -= (ssize_t)iov[k].iov_len;
			k++;
		}
		if (k < 2) {
			iov[k].iov_base = (uint8_t *)iov[k].iov_base + n;
			iov[k].iov_len -= (size_t)n;
		}
	}
	return 0;
}

int pack_writer_add(struct pack_writer *w, const uint8_t hash[HASH_LEN], const void *data,
                    uint32_t clen, uint32_t ulen, uint32_t flags, struct kerr **err)
{
	int r = -1;

	pthread_mutex_lock(&w->lock);
	/* Wait for room in the backlog before sealing, not in the middle of it: the lock is
	 * released while waiting, and another adder must not find a half-sealed pack open. */
	while (w->fd >= 0 && w->off + PACK_RECORD_HEADER + clen > w->blob->pack_target) {
		if (w->nsealed - w->synced >= PACK_SYNC_BACKLOG + w->nsyncers) {
			pthread_cond_wait(&w->cond, &w->lock);
			continue;
		}
		if (pack_seal(w, err) < 0)
			goto out;
	}
	if (w->fd < 0 && pack_start(w, err) < 0)
		goto out;
	if (write_record(w->fd, hash, data, clen, (off_t)w->off) < 0) {
		char name[32];
		pack_name(w->id, name);
		kerr_errno(err, errno, "cannot write pack '%s'", name);
		goto out;
	}
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 256;
		w->e = xreallocarray(w->e, w->cap, sizeof(*w->e));
	}
	w->e[w->n] = (struct pack_entry){.off = w->off, .clen = clen, .ulen = ulen, .flags = flags};
	memcpy(w->e[w->n].hash, hash, HASH_LEN);
	w->n++;
	w->off += PACK_RECORD_HEADER + clen;
	w->bytes += PACK_RECORD_HEADER + clen;
	/* Start writeback as the pack grows, so the fsync at commit finds little left to do. */
	if (w->off - w->flushed >= PACK_FLUSH_STEP) {
		sync_file_range(w->fd, (off_t)w->flushed, (off_t)(w->off - w->flushed),
		                SYNC_FILE_RANGE_WRITE);
		w->flushed = w->off;
	}
	r = 0;
	fault_point("pack.append");
out:
	pthread_mutex_unlock(&w->lock);
	return r;
}

int pack_writer_finish(struct pack_writer *w, struct kerr **err)
{
	int r = 0;

	pthread_mutex_lock(&w->lock);
	if (w->fd >= 0)
		r = pack_seal(w, err);
	pthread_mutex_unlock(&w->lock);
	if (r < 0) {
		pack_syncer_stop(w, NULL);
		return -1;
	}
	if (pack_syncer_stop(w, err) < 0)
		return -1;
	if (w->nsealed)
		return w->blob->ops->sync(w->blob, BLOB_PACKS, err);
	return 0;
}

void pack_writer_discard(struct pack_writer *w)
{
	char name[32];

	pack_syncer_stop(w, NULL);
	if (w->fd >= 0) {
		close(w->fd);
		w->fd = -1;
		pack_name(w->id, name);
		w->blob->ops->pack_discard(w->blob, name);
	}
	for (size_t i = w->nindexed; i < w->nsealed; i++) {
		pack_name(w->sealed[i].id, name);
		w->blob->ops->pack_discard(w->blob, name);
		free(w->sealed[i].e);
	}
	/* Gone: nothing may index them later (commit_abandon after a failed commit_write). */
	w->nsealed = w->nindexed;
	if (w->synced > w->nsealed)
		w->synced = w->nsealed;
	if (w->next > w->nsealed)
		w->next = w->nsealed;
}

void pack_writer_release(struct pack_writer *w)
{
	pack_syncer_stop(w, NULL);
	if (w->fd >= 0)
		close(w->fd);
	for (size_t i = 0; i < w->nsealed; i++)
		free(w->sealed[i].e);
	free(w->sealed);
	free(w->e);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
}

static ssize_t file_pread(struct blob_file *f, void *buf, size_t len, uint64_t off,
                          struct kerr **err)
{
	struct iovec iov = {buf, len};

	return blob_file_preadv(f, &iov, 1, off, err);
}

int pack_read_footer(struct blob_file *f, uint64_t *data_end, struct pack_entry **out, size_t *n,
                     struct kerr **err)
{
	_cleanup_free_ uint8_t *raw = NULL;
	_cleanup_free_ struct pack_entry *e = NULL;
	uint8_t t[PACK_TRAILER_SIZE], sum[HASH_LEN];
	uint64_t count, foff, flen, size;
	ssize_t got;

	if (blob_file_size(f, &size, err) < 0)
		return -1;
	if (size < PACK_HEADER_SIZE + PACK_TRAILER_SIZE)
		return kerr_set(err, KERR_CORRUPT, "pack has no footer");
	got = file_pread(f, t, sizeof(t), size - PACK_TRAILER_SIZE, err);
	if (got < 0)
		return -1;
	if (got != sizeof(t) || memcmp(t + 48, pack_end_magic, 8) != 0)
		return kerr_set(err, KERR_CORRUPT, "pack has no footer");
	count = get_le64(t);
	foff = get_le64(t + 8);
	if (__builtin_mul_overflow(count, PACK_ENTRY_SIZE, &flen) || foff < PACK_HEADER_SIZE ||
	    foff + flen + PACK_TRAILER_SIZE != size)
		return kerr_set(err, KERR_CORRUPT, "pack footer has an impossible size");
	raw = xmalloc(flen ? flen : 1);
	got = file_pread(f, raw, flen, foff, err);
	if (got < 0)
		return kerr_wrap(err, "cannot read pack footer");
	if (got != (ssize_t)flen)
		return kerr_set(err, KERR_CORRUPT, "pack footer is truncated");
	hash_sha256(raw, flen, sum);
	if (memcmp(sum, t + 16, HASH_LEN) != 0)
		return kerr_set(err, KERR_CORRUPT, "pack footer checksum does not match");
	e = xcalloc(count, sizeof(*e));
	for (uint64_t i = 0; i < count; i++) {
		pack_entry_decode(raw + i * PACK_ENTRY_SIZE, &e[i]);
		if (e[i].off < PACK_HEADER_SIZE || e[i].off + PACK_RECORD_HEADER + e[i].clen > foff)
			return kerr_set(err, KERR_CORRUPT,
			                "pack footer entry %" PRIu64 " is out of range", i);
	}
	*data_end = foff;
	*out = steal_ptr(e);
	*n = count;
	return 0;
}

void chunk_reader_release(struct chunk_reader *r)
{
	ZSTD_freeDCtx(r->dctx);
	free(r->cbuf);
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

int pack_read_payload(struct blob_file *pack, const struct pack_entry *e, uint8_t *out, size_t cap,
                      struct kerr **err)
{
	uint8_t head[PACK_RECORD_HEADER];
	struct iovec iov[2] = {{head, sizeof(head)}, {out, e->clen}};
	ssize_t n;

	if (e->clen > cap)
		return kerr_set(err, KERR_CORRUPT, "its record has an impossible size");
	n = blob_file_preadv(pack, iov, 2, e->off, err);
	if (n < 0)
		return kerr_wrap(err, "cannot read its record");
	if ((size_t)n != PACK_RECORD_HEADER + e->clen)
		return kerr_set(err, KERR_CORRUPT, "its record is truncated");
	/* The record names its chunk: an index entry pointing at another record is caught here. */
	if (memcmp(head, e->hash, PACK_RECORD_HEADER) != 0)
		return kerr_set(err, KERR_CORRUPT, "its record belongs to another chunk");
	return 0;
}

/* Check a payload read into r (cbuf when compressed, else buf): 0, or why it is damaged. */
static int check_payload(struct chunk_reader *r, const struct pack_entry *e, enum chunk_check check,
                         struct kerr **why)
{
	bool zstd = e->flags & PACK_FLAG_ZSTD;
	uint8_t sum[HASH_LEN];

	if (zstd) {
		/* The frame carries a checksum of its content: decompression checks it. */
		size_t got = ZSTD_decompressDCtx(r->dctx, r->buf, r->chunk_size, r->cbuf, e->clen);
		ZSTD_frameHeader fh;
		if (ZSTD_isError(got) || got != e->ulen)
			return kerr_set(why, KERR_CORRUPT, "it does not decompress");
		/* Trust the frame's checksum only if the (possibly damaged) header still has one.
		 */
		if (check == CHUNK_CHECK_FAST && ZSTD_getFrameHeader(&fh, r->cbuf, e->clen) == 0 &&
		    fh.checksumFlag)
			return 0;
	}
	hash_sha256(r->buf, e->ulen, sum);
	if (memcmp(sum, e->hash, HASH_LEN) == 0)
		return 0;
	return kerr_set(why, KERR_CORRUPT, "its content does not match its hash");
}

static void reader_setup(struct chunk_reader *r, uint32_t chunk_size)
{
	if (r->buf)
		return;
	r->chunk_size = chunk_size;
	r->buf = xmalloc(chunk_size);
	r->cbuf = xmalloc(RECORD_PAYLOAD_MAX(chunk_size));
	r->dctx = ZSTD_createDCtx();
	if (!r->dctx)
		abort();
}

static int chunk_damaged(const struct pack_entry *e, struct kerr *why, struct kerr **err)
{
	char hex[HASH_HEX_LEN + 1];

	hash_hex(e->hash, HASH_LEN, hex);
	if (why->kind != KERR_CORRUPT)
		return kerr_set(err, why->kind, "cannot read chunk %s: %s", hex, why->msg);
	return kerr_set(err, KERR_CORRUPT, "chunk %s is damaged: %s", hex, why->msg);
}

bool chunk_read_cached(struct chunk_reader *r, uint32_t chunk_size, struct blob *b,
                       const struct pack_entry *e)
{
	bool zstd = e->flags & PACK_FLAG_ZSTD;
	uint8_t *payload;

	if (!b->cache)
		return false;
	reader_setup(r, chunk_size);
	if (e->ulen > r->chunk_size || (!zstd && e->clen != e->ulen) ||
	    e->clen > RECORD_PAYLOAD_MAX(r->chunk_size))
		return false;
	payload = zstd ? r->cbuf : r->buf;
	if (chunk_cache_get(b->cache, e->hash, payload, e->clen) < 0)
		return false;
	if (check_payload(r, e, CHUNK_CHECK_FAST, NULL) == 0) {
		atomic_fetch_add(&b->io.cache_hits, 1);
		return true;
	}
	chunk_cache_drop(b->cache, e->hash); /* damaged in the cache: fetch it again */
	return false;
}

int chunk_take_record(struct chunk_reader *r, uint32_t chunk_size, struct blob *b,
                      const struct pack_entry *e, const uint8_t *record, size_t len, bool keep,
                      struct kerr **err)
{
	_cleanup_kerr_ struct kerr *why = NULL;
	bool zstd = e->flags & PACK_FLAG_ZSTD;
	uint8_t *payload;

	reader_setup(r, chunk_size);
	if (e->ulen > r->chunk_size || (!zstd && e->clen != e->ulen) ||
	    e->clen > RECORD_PAYLOAD_MAX(r->chunk_size)) {
		kerr_set(&why, KERR_CORRUPT, "its record has an impossible size");
		return chunk_damaged(e, why, err);
	}
	if (len < PACK_RECORD_HEADER + (size_t)e->clen) {
		kerr_set(&why, KERR_CORRUPT, "its record is truncated");
		return chunk_damaged(e, why, err);
	}
	if (memcmp(record, e->hash, PACK_RECORD_HEADER) != 0) {
		kerr_set(&why, KERR_CORRUPT, "its record belongs to another chunk");
		return chunk_damaged(e, why, err);
	}
	payload = zstd ? r->cbuf : r->buf;
	memcpy(payload, record + PACK_RECORD_HEADER, e->clen);
	if (check_payload(r, e, CHUNK_CHECK_FAST, &why) < 0)
		return chunk_damaged(e, why, err);
	if (keep && b->cache)
		chunk_cache_put(b->cache, e->hash, payload, e->clen);
	return 0;
}

int chunk_read(struct chunk_reader *r, uint32_t chunk_size, struct blob_file *pack,
               const struct pack_entry *e, enum chunk_check check, struct kerr **err)
{
	_cleanup_kerr_ struct kerr *why = NULL;
	bool zstd = e->flags & PACK_FLAG_ZSTD;
	/* verify (CHUNK_CHECK_HASH) judges the store itself: never through the cache */
	struct chunk_cache *cache = check == CHUNK_CHECK_FAST ? pack->b->cache : NULL;
	uint8_t *payload;

	reader_setup(r, chunk_size);
	if (e->ulen > r->chunk_size || (!zstd && e->clen != e->ulen)) {
		kerr_set(&why, KERR_CORRUPT, "its record has an impossible size");
		return chunk_damaged(e, why, err);
	}
	if (cache && chunk_read_cached(r, chunk_size, pack->b, e))
		return 0;
	payload = zstd ? r->cbuf : r->buf;
	if (pack_read_payload(pack, e, payload, RECORD_PAYLOAD_MAX(r->chunk_size), &why) < 0 ||
	    check_payload(r, e, check, &why) < 0)
		return chunk_damaged(e, why, err);
	if (cache)
		chunk_cache_put(cache, e->hash, payload, e->clen);
	return 0;
}
