/* Regions as separate deployments: the regions file (every region's endpoint and the key the
 * deployments sign their calls to each other with), the one region this daemon serves, and the
 * source side of a copy to another deployment (what it may copy, the manifest, the chunks),
 * each call checked here for the account the destination names. */
#include "internal.h"

#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

void cloud_deployment_release(struct cloud_deployment *d)
{
	free(d->peers);
	memset(d, 0, sizeof(*d));
}

static int parse_fail(struct cloud_deployment *d, struct kerr **err, int lineno, const char *what)
{
	cloud_deployment_release(d);
	return kerr_set(err, KERR_INVALID, "regions file line %d: %s", lineno, what);
}

int cloud_deployment_parse(const char *text, const char *region, struct cloud_deployment *d,
                           struct kerr **err)
{
	_cleanup_free_ char *copy = xstrdup(text);
	char *line, *save = NULL;
	int lineno = 0;
	bool mine = false;

	memset(d, 0, sizeof(*d));
	str_copy(d->region, region, sizeof(d->region));
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *hash = strchr(line, '#'), *tsave = NULL, *kw, *a, *b;

		lineno++;
		if (hash)
			*hash = '\0';
		kw = strtok_r(line, " \t\r", &tsave);
		if (!kw)
			continue;
		a = strtok_r(NULL, " \t\r", &tsave);
		b = strtok_r(NULL, " \t\r", &tsave);
		if (!strcmp(kw, "region")) {
			struct cloud_peer *p;
			if (!a || !b || strtok_r(NULL, " \t\r", &tsave) ||
			    strlen(a) >= sizeof(p->region) || strlen(b) >= sizeof(p->endpoint) ||
			    (strncmp(b, "http://", 7) && strncmp(b, "https://", 8)))
				return parse_fail(
				    d, err, lineno,
				    "a region line is 'region NAME http://HOST:PORT'");
			for (size_t i = 0; i < d->npeers; i++)
				if (!strcmp(d->peers[i].region, a))
					return parse_fail(d, err, lineno, "a region named twice");
			d->peers = xreallocarray(d->peers, d->npeers + 1, sizeof(*d->peers));
			p = &d->peers[d->npeers++];
			str_copy(p->region, a, sizeof(p->region));
			str_copy(p->endpoint, b, sizeof(p->endpoint));
			mine |= !strcmp(a, region);
		} else if (!strcmp(kw, "internal-key")) {
			size_t n = a ? strlen(a) : 0;
			if (!a || b || n < 32 || n >= sizeof(d->key))
				return parse_fail(
				    d, err, lineno,
				    "'internal-key SECRET' takes 32 to 128 characters");
			for (const char *c = a; *c; c++)
				if (!isgraph((unsigned char)*c))
					return parse_fail(
					    d, err, lineno,
					    "the internal key has a character that is not "
					    "printable");
			str_copy(d->key, a, sizeof(d->key));
		} else {
			return parse_fail(d, err, lineno, "expected 'region' or 'internal-key'");
		}
	}
	if (!mine) {
		cloud_deployment_release(d);
		return kerr_set(err, KERR_INVALID, "the regions file does not name region '%s'",
		                region);
	}
	if (!d->key[0]) {
		cloud_deployment_release(d);
		return kerr_set(err, KERR_INVALID, "the regions file has no 'internal-key' line");
	}
	return 0;
}

int cloud_deployment_load(const char *path, const char *region, struct cloud_deployment *d,
                          struct kerr **err)
{
	_cleanup_free_ uint8_t *data = NULL;
	_cleanup_free_ char *text = NULL;
	size_t len;

	if (fs_read_file(AT_FDCWD, path, 1 << 20, &data, &len, err) < 0)
		return kerr_wrap(err, "regions file '%s'", path);
	text = xmalloc(len + 1);
	memcpy(text, data, len);
	text[len] = '\0';
	if (cloud_deployment_parse(text, region, d, err) < 0)
		return kerr_wrap(err, "regions file '%s'", path);
	return 0;
}

int cloud_deployment_set(struct cloud *c, const struct cloud_deployment *d,
                         const struct cloud_peer_ops *ops, struct kerr **err)
{
	if (!cloud_region_known(c, d->region))
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_REGION, d->region,
		                  "region '%s' is not in this data directory's topology (kiln init "
		                  "--topology)",
		                  d->region);
	c->deploy = xmalloc(sizeof(*c->deploy));
	*c->deploy = *d;
	c->deploy->peers = xcalloc(d->npeers, sizeof(*d->peers));
	memcpy(c->deploy->peers, d->peers, d->npeers * sizeof(*d->peers));
	c->peer_ops = *ops;
	return 0;
}

const struct cloud_peer *cloud_peer_find(const struct cloud *c, const char *region)
{
	if (!c->deploy || !strcmp(region, c->deploy->region))
		return NULL;
	for (size_t i = 0; i < c->deploy->npeers; i++)
		if (!strcmp(c->deploy->peers[i].region, region))
			return &c->deploy->peers[i];
	return NULL;
}

const char *cloud_peer_key(const struct cloud *c)
{
	return c->deploy ? c->deploy->key : NULL;
}

/* ---- the source's side ---- */

/* What account may copy: image (and the snapshot, one of its) or a snapshot alone. */
static int source_check(struct cloud *c, const char *account, const char *region, const char *image,
                        const char *snapshot, struct image *img, uint64_t *size_gib,
                        struct kerr **err)
{
	if (image && image[0]) {
		bool found = !snapshot || !snapshot[0];
		if (cloud_image_get(c, account, region, image, img, err) < 0)
			return -1;
		if (image_state_parse(img->state) != IMAGE_AVAILABLE)
			return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_IMAGE, image,
			                  "image '%s' is %s, not available", image, img->state);
		if (img->nproduct_codes && strcmp(img->owner, account))
			return kerr_about(err, KERR_INVALID, KERR_SUBJECT_PRODUCT_IMAGE, image,
			                  "image '%s' has product code '%s': another account "
			                  "cannot copy it",
			                  image, img->product_codes[0]);
		found |= snapshot && !strcmp(snapshot, img->root_snapshot);
		for (size_t i = 0; i < img->nvolumes && !found; i++)
			found = !strcmp(snapshot, img->volumes[i].snapshot);
		if (!found)
			return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_SNAPSHOT, snapshot,
			                  "snapshot '%s' is not one of image '%s'", snapshot,
			                  image);
		return 0;
	}
	if (!snapshot || !snapshot[0])
		return kerr_set(err, KERR_INVALID, "a copy source names an image or a snapshot");
	if (cloud_snapshot_usable(c, account, region, snapshot, false, size_gib, err) < 0)
		return -1;
	return cloud_copy_product_check(c, account, snapshot, err);
}

/* One "key value" line, the value with \, newline and tab escaped. */
static void put(struct buf *out, const char *key, const char *value)
{
	buf_addf(out, "%s ", key);
	for (const char *p = value; *p; p++) {
		if (*p == '\\')
			buf_addstr(out, "\\\\");
		else if (*p == '\n')
			buf_addstr(out, "\\n");
		else if (*p == '\t')
			buf_addstr(out, "\\t");
		else
			buf_addf(out, "%c", *p);
	}
	buf_addstr(out, "\n");
}

int cloud_copy_source_describe(struct cloud *c, const char *account, const char *region,
                               const char *image, const char *snapshot, struct buf *out,
                               struct kerr **err)
{
	struct image img;
	uint64_t size = 0;
	char num[32];

	if (source_check(c, account, region, image, snapshot, &img, &size, err) < 0)
		return -1;
	if (!image || !image[0]) {
		snprintf(num, sizeof(num), "%llu", (unsigned long long)size);
		put(out, "size-gib", num);
		return 0;
	}
	put(out, "id", img.id);
	put(out, "owner", img.owner);
	put(out, "name", img.name);
	put(out, "description", img.description);
	put(out, "architecture", img.architecture);
	put(out, "root-device-name", img.root_device_name);
	put(out, "root-snapshot", img.root_snapshot);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)img.root_size_gib);
	put(out, "root-size-gib", num);
	for (size_t i = 0; i < img.nvolumes; i++) {
		const struct image_volume *v = &img.volumes[i];
		char line[160];
		snprintf(line, sizeof(line), "%s %s %llu %d", v->device, v->snapshot,
		         (unsigned long long)v->size_gib, v->delete_on_termination ? 1 : 0);
		put(out, "volume", line);
	}
	for (size_t i = 0; i < img.nproduct_codes; i++)
		put(out, "product-code", img.product_codes[i]);
	return 0;
}

static int with_store(struct cloud *c, const char *region, struct store **s, struct kerr **err)
{
	_cleanup_free_ char *dir = cloud_store_dir(c, region);

	return store_open(dir, false, s, err);
}

int cloud_copy_source_manifest(struct cloud *c, const char *account, const char *region,
                               const char *image, const char *snapshot, struct buf *out,
                               struct kerr **err)
{
	struct image img;
	struct store *s = NULL;
	uint64_t size;
	int r;

	if (!snapshot || !snapshot[0])
		return kerr_set(err, KERR_INVALID, "a manifest is a snapshot's");
	if (source_check(c, account, region, image, snapshot, &img, &size, err) < 0 ||
	    with_store(c, region, &s, err) < 0)
		return -1;
	r = store_export_manifest(s, snapshot, out, err);
	cloud_store_close(s, region, snapshot);
	return r;
}

/* The source's snapshots being copied, kept open between the destination's calls (a copy of
 * 1 GiB is thousands of chunks): the store, its index and packs are read once per snapshot
 * rather than once per call. Each call is still checked for its account first; an entry no
 * call used for EXPORT_IDLE seconds is closed at the next call. */
#define EXPORTS_MAX 8
#define EXPORT_IDLE 60
static struct open_export {
	char dir[PATH_MAX];
	char id[ID_MAX];
	struct store *s;
	struct store_export *ex;
	time_t used;
	int refs;
} exports[EXPORTS_MAX];
static pthread_mutex_t exports_lock = PTHREAD_MUTEX_INITIALIZER;

static void export_drop(struct open_export *e)
{
	store_export_close(e->ex);
	cloud_store_close(e->s, NULL, e->id);
	memset(e, 0, sizeof(*e));
}

/* The open export of snapshot in dir, opened when not yet: held (refs) until export_put. */
static struct open_export *export_get(const char *dir, const char *id, struct kerr **err)
{
	struct open_export *e = NULL, *free_slot = NULL;
	time_t now = time(NULL);

	pthread_mutex_lock(&exports_lock);
	for (size_t i = 0; i < EXPORTS_MAX; i++) {
		struct open_export *x = &exports[i];
		if (x->ex && !strcmp(x->dir, dir) && !strcmp(x->id, id)) {
			e = x;
			continue;
		}
		if (x->ex && !x->refs && now - x->used > EXPORT_IDLE)
			export_drop(x);
		if (!x->ex && !free_slot)
			free_slot = x;
	}
	if (!e) {
		/* Full of busy ones: the oldest idle one makes room, else none is kept. */
		for (size_t i = 0; i < EXPORTS_MAX && !free_slot; i++)
			if (!exports[i].refs)
				free_slot = &exports[i];
		if (!free_slot) {
			pthread_mutex_unlock(&exports_lock);
			kerr_set(err, KERR_LIMIT, "too many snapshots being copied at once");
			return NULL;
		}
		if (free_slot->ex)
			export_drop(free_slot);
		if (store_open(dir, false, &free_slot->s, err) < 0 ||
		    store_export_open(free_slot->s, id, &free_slot->ex, err) < 0) {
			store_close(free_slot->s);
			memset(free_slot, 0, sizeof(*free_slot));
			pthread_mutex_unlock(&exports_lock);
			return NULL;
		}
		str_copy(free_slot->dir, dir, sizeof(free_slot->dir));
		str_copy(free_slot->id, id, sizeof(free_slot->id));
		e = free_slot;
	}
	e->refs++;
	e->used = now;
	pthread_mutex_unlock(&exports_lock);
	return e;
}

static void export_put(struct open_export *e)
{
	pthread_mutex_lock(&exports_lock);
	e->refs--;
	e->used = time(NULL);
	pthread_mutex_unlock(&exports_lock);
}

int cloud_copy_source_chunks(struct cloud *c, const char *account, const char *region,
                             const char *image, const char *snapshot, const uint8_t (*hashes)[32],
                             size_t n, struct buf *out, struct kerr **err)
{
	_cleanup_free_ char *dir = NULL;
	struct open_export *e;
	struct image img;
	uint64_t size;
	int r;

	if (!snapshot || !snapshot[0])
		return kerr_set(err, KERR_INVALID, "chunks are a snapshot's");
	if (n > STORE_REMOTE_BATCH)
		return kerr_set(err, KERR_LIMIT, "at most %d chunks a call", STORE_REMOTE_BATCH);
	if (source_check(c, account, region, image, snapshot, &img, &size, err) < 0)
		return -1;
	dir = cloud_store_dir(c, region);
	e = export_get(dir, snapshot, err);
	if (!e)
		return -1;
	r = store_export_read(e->ex, hashes, n, out, err);
	export_put(e);
	return r;
}

void cloud_copy_sources_close(void)
{
	pthread_mutex_lock(&exports_lock);
	for (size_t i = 0; i < EXPORTS_MAX; i++)
		if (exports[i].ex && !exports[i].refs)
			export_drop(&exports[i]);
	pthread_mutex_unlock(&exports_lock);
}

/* ---- the destination's side ---- */

/* Call the deployment of region: its answer in out, or its refusal (with the subject). */
static int peer_call(struct cloud *c, const struct cloud_peer *p, void *session, const char *action,
                     const char *const *params, struct buf *out, enum kerr_subject subject,
                     const char *id, struct kerr **err)
{
	_cleanup_kerr_ struct kerr *why = NULL;

	if (!c->peer_ops.call)
		return kerr_set(err, KERR_INTERNAL, "no transport to other deployments");
	if ((session ? c->peer_ops.send(session, action, params, out, &why)
	             : c->peer_ops.call(c->peer_ops.ctx, p, c->deploy->key, action, params, out,
	                                &why)) == 0)
		return 0;
	/* The source's own error (kind, subject, id) when it told it: the caller's code is the
	 * one the source's refusal has in this deployment's table. */
	if (why->subject != KERR_SUBJECT_NONE) {
		subject = why->subject;
		id = why->id;
	}
	return kerr_about(err, why->kind, subject, id, "region '%s' (%s): %s", p->region,
	                  p->endpoint, why->msg);
}

/* Parse one line of a describe answer: key into *key, the unescaped value in place. */
static char *next_line(char **cursor, char **key)
{
	char *line = *cursor, *sp, *w;

	if (!line || !*line)
		return NULL;
	*cursor = strchr(line, '\n');
	if (*cursor)
		*(*cursor)++ = '\0';
	sp = strchr(line, ' ');
	if (!sp)
		return NULL;
	*sp = '\0';
	*key = line;
	w = sp + 1;
	for (char *r = sp + 1; *r; r++) {
		if (*r == '\\' && r[1]) {
			r++;
			*w++ = *r == 'n' ? '\n' : *r == 't' ? '\t' : *r;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	return sp + 1;
}

int cloud_peer_image(struct cloud *c, const struct cloud_peer *p, const char *account,
                     const char *image, struct image *out, struct kerr **err)
{
	_cleanup_buf_ struct buf b = BUF_INIT;
	const char *params[] = {"Account", account, "ImageId", image, NULL};
	char *cursor, *key, *value;

	if (peer_call(c, p, NULL, "DescribeCopySource", params, &b, KERR_SUBJECT_IMAGE, image,
	              err) < 0)
		return -1;
	memset(out, 0, sizeof(*out));
	str_copy(out->region, p->region, sizeof(out->region));
	str_copy(out->state, image_state_name(IMAGE_AVAILABLE), sizeof(out->state));
	cursor = b.data;
	while (cursor && (value = next_line(&cursor, &key))) {
		if (!strcmp(key, "id"))
			str_copy(out->id, value, sizeof(out->id));
		else if (!strcmp(key, "owner"))
			str_copy(out->owner, value, sizeof(out->owner));
		else if (!strcmp(key, "name"))
			str_copy(out->name, value, sizeof(out->name));
		else if (!strcmp(key, "description"))
			str_copy(out->description, value, sizeof(out->description));
		else if (!strcmp(key, "architecture"))
			str_copy(out->architecture, value, sizeof(out->architecture));
		else if (!strcmp(key, "root-device-name"))
			str_copy(out->root_device_name, value, sizeof(out->root_device_name));
		else if (!strcmp(key, "root-snapshot"))
			str_copy(out->root_snapshot, value, sizeof(out->root_snapshot));
		else if (!strcmp(key, "root-size-gib"))
			out->root_size_gib = strtoull(value, NULL, 10);
		else if (!strcmp(key, "volume") && out->nvolumes < IMAGE_VOLUMES_MAX) {
			struct image_volume *v = &out->volumes[out->nvolumes];
			char dev[32], snap[ID_MAX];
			unsigned long long size;
			int dot;
			if (sscanf(value, "%31s %31s %llu %d", dev, snap, &size, &dot) != 4)
				continue;
			str_copy(v->device, dev, sizeof(v->device));
			str_copy(v->snapshot, snap, sizeof(v->snapshot));
			v->size_gib = size;
			v->delete_on_termination = dot != 0;
			out->nvolumes++;
		} else if (!strcmp(key, "product-code") &&
		           out->nproduct_codes < PRODUCT_CODES_MAX) {
			str_copy(out->product_codes[out->nproduct_codes++], value,
			         sizeof(out->product_codes[0]));
		}
	}
	if (!id_valid("ami", out->id) || !id_valid("snap", out->root_snapshot))
		return kerr_about(err, KERR_IO, KERR_SUBJECT_IMAGE, image,
		                  "region '%s' (%s) described image '%s' without its snapshots",
		                  p->region, p->endpoint, image);
	return 0;
}

int cloud_peer_snapshot_size(struct cloud *c, const struct cloud_peer *p, const char *account,
                             const char *snapshot, uint64_t *size_gib, struct kerr **err)
{
	_cleanup_buf_ struct buf b = BUF_INIT;
	const char *params[] = {"Account", account, "SnapshotId", snapshot, NULL};
	char *cursor, *key, *value;

	if (peer_call(c, p, NULL, "DescribeCopySource", params, &b, KERR_SUBJECT_SNAPSHOT, snapshot,
	              err) < 0)
		return -1;
	cursor = b.data;
	while (cursor && (value = next_line(&cursor, &key)))
		if (!strcmp(key, "size-gib")) {
			*size_gib = strtoull(value, NULL, 10);
			return 0;
		}
	return kerr_about(err, KERR_IO, KERR_SUBJECT_SNAPSHOT, snapshot,
	                  "region '%s' (%s) did not tell the size of snapshot '%s'", p->region,
	                  p->endpoint, snapshot);
}

struct peer_source {
	struct cloud *c;
	const struct cloud_peer *p;
	const char *account, *image; /* image: the source image the copy is of, or "" */
	void *session;               /* one connection for the copy's calls, or NULL */
};

static int source_manifest(void *ctx, const char *id, struct buf *out, struct kerr **err)
{
	struct peer_source *s = ctx;
	const char *params[] = {"Account", s->account, "ImageId", s->image, "SnapshotId", id, NULL};

	return peer_call(s->c, s->p, s->session, "GetSnapshotManifest", params, out,
	                 KERR_SUBJECT_SNAPSHOT, id, err);
}

static int source_chunks(void *ctx, const char *id, const uint8_t (*hashes)[32], size_t n,
                         struct buf *out, struct kerr **err)
{
	struct peer_source *s = ctx;
	_cleanup_buf_ struct buf list = BUF_INIT;
	const char *params[] = {"Account", s->account, "ImageId", s->image, "SnapshotId",
	                        id,        "Hashes",   NULL,      NULL};

	/* The hashes in hex, comma-separated: one parameter, whatever the batch. */
	for (size_t i = 0; i < n; i++) {
		char hex[2 * HASH_LEN + 1];
		hash_hex(hashes[i], HASH_LEN, hex);
		buf_addf(&list, "%s%s", i ? "," : "", hex);
	}
	params[7] = list.data ? list.data : "";
	return peer_call(s->c, s->p, s->session, "GetSnapshotChunks", params, out,
	                 KERR_SUBJECT_SNAPSHOT, id, err);
}

int cloud_peer_copy_store(struct cloud *c, const struct cloud_peer *p, const char *account,
                          const char *src_image, const char *src_id, const char *id,
                          const char *region, const struct store_progress *progress,
                          uint64_t *bytes_sent, struct kerr **err)
{
	_cleanup_free_ char *dst_dir = cloud_store_dir(c, region);
	struct peer_source ps = {c, p, account, src_image ? src_image : "", NULL};
	const struct store_source src = {source_manifest, source_chunks, &ps};
	struct store_copy_result res;
	struct store *dst = NULL;
	int r;

	if (store_open(dst_dir, false, &dst, err) < 0)
		return -1;
	/* One connection for the whole copy (kept alive); without one, a call each. */
	if (c->peer_ops.open) {
		_cleanup_kerr_ struct kerr *why = NULL;
		if (c->peer_ops.open(c->peer_ops.ctx, p, c->deploy->key, &ps.session, &why) < 0)
			ps.session = NULL;
	}
	r = store_copy_remote(dst, &src, src_id, id, progress, &res, err);
	if (ps.session)
		c->peer_ops.close(ps.session);
	cloud_store_close(dst, region, id);
	if (r == 0)
		*bytes_sent = res.bytes_sent;
	return r;
}
