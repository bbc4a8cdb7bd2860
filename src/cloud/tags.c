/* Tags: key/value pairs an account puts on its own instances, volumes, snapshots and images.
 * A tag belongs to the account that set it, so an image shared with others keeps its owner's
 * tags to its owner, as in EC2. */
#include "cloud.h"

#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define TAGS_PER_RESOURCE 50 /* EC2's limit */

/* The resources that take tags, by id prefix, and what EC2 calls a missing one. */
static const struct {
	const char *prefix, *table, *type;
	enum kerr_subject subject;
} taggable[] = {
    {"i", "instances", "instance", KERR_SUBJECT_INSTANCE},
    {"vol", "volumes", "volume", KERR_SUBJECT_VOLUME},
    {"snap", "snapshots", "snapshot", KERR_SUBJECT_SNAPSHOT},
    {"ami", "images", "image", KERR_SUBJECT_IMAGE},
    {"lt", "launch_templates", "launch-template", KERR_SUBJECT_LAUNCH_TEMPLATE},
    {"key", "key_pairs", "key-pair", KERR_SUBJECT_KEY_PAIR},
    {"vpc", "vpcs", "vpc", KERR_SUBJECT_VPC},
    {"subnet", "subnets", "subnet", KERR_SUBJECT_SUBNET},
    {"sg", "security_groups", "security-group", KERR_SUBJECT_GROUP},
};

const char *cloud_resource_type(const char *id)
{
	for (size_t i = 0; i < ARRAY_SIZE(taggable); i++)
		if (id_valid(taggable[i].prefix, id))
			return taggable[i].type;
	return NULL;
}

int cloud_tag_check(const struct tag *t, struct kerr **err)
{
	size_t klen = strlen(t->key);

	if (!klen || klen > TAG_KEY_MAX)
		return kerr_set(err, KERR_INVALID, "tag keys must be 1 to %d characters long",
		                TAG_KEY_MAX);
	if (!strncmp(t->key, "aws:", 4))
		return kerr_set(err, KERR_INVALID,
		                "tag keys starting with 'aws:' are reserved for internal use");
	if (strlen(t->value) > TAG_VALUE_MAX)
		return kerr_set(err, KERR_INVALID, "tag values may be at most %d characters long",
		                TAG_VALUE_MAX);
	return 0;
}

/* KERR_NOT_FOUND unless owner has id in region; KERR_INVALID for what takes no tags. */
static int resource_check(struct cloud *c, const char *owner, const char *region, const char *id,
                          struct kerr **err)
{
	for (size_t i = 0; i < ARRAY_SIZE(taggable); i++) {
		_cleanup_free_ char *sql = NULL;
		_cleanup_stmt_ sqlite3_stmt *st = NULL;
		int r;

		if (!id_valid(taggable[i].prefix, id))
			continue;
		sql = xasprintf("SELECT 1 FROM %s WHERE id = ? AND owner = ? AND region = ?",
		                taggable[i].table);
		if (db_prepare(c->db, sql, &st, err) < 0)
			return -1;
		db_bind_text(st, 1, id);
		db_bind_text(st, 2, owner);
		db_bind_text(st, 3, region);
		r = db_step_row(c->db, st, err);
		if (r < 0)
			return -1;
		if (r == 0)
			return kerr_about(err, KERR_NOT_FOUND, taggable[i].subject, id,
			                  "%s '%s' not found", taggable[i].type, id);
		return 0;
	}
	return kerr_set(err, KERR_INVALID, "invalid id '%s'", id);
}

int cloud_tags_put(struct cloud *c, const char *owner, const char *region, const char *id,
                   const struct tag *tags, size_t n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *put = NULL, *count = NULL;

	if (!n)
		return 0;
	if (db_prepare(c->db,
	               "INSERT OR REPLACE INTO tags (resource, owner, region, key, value) VALUES "
	               "(?, ?, ?, ?, ?)",
	               &put, err) < 0 ||
	    db_prepare(c->db, "SELECT COUNT(*) FROM tags WHERE resource = ? AND owner = ?", &count,
	               err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (cloud_tag_check(&tags[i], err) < 0)
			return -1;
		sqlite3_reset(put);
		db_bind_text(put, 1, id);
		db_bind_text(put, 2, owner);
		db_bind_text(put, 3, region);
		db_bind_text(put, 4, tags[i].key);
		db_bind_text(put, 5, tags[i].value);
		if (db_step_done(c->db, put, err) < 0)
			return -1;
	}
	db_bind_text(count, 1, id);
	db_bind_text(count, 2, owner);
	if (db_step_row(c->db, count, err) < 0)
		return -1;
	if (sqlite3_column_int(count, 0) > TAGS_PER_RESOURCE)
		return kerr_about(err, KERR_LIMIT, KERR_SUBJECT_TAG, id,
		                  "'%s' would have more than %d tags", id, TAGS_PER_RESOURCE);
	return 0;
}

int cloud_tags_create(struct cloud *c, const char *owner, const char *region, const char **ids,
                      size_t nids, const struct tag *tags, size_t ntags, struct kerr **err)
{
	for (size_t i = 0; i < nids; i++)
		if (resource_check(c, owner, region, ids[i], err) < 0)
			return -1;
	if (db_begin(c->db, err) < 0)
		return -1;
	for (size_t i = 0; i < nids; i++)
		if (cloud_tags_put(c, owner, region, ids[i], tags, ntags, err) < 0) {
			db_rollback(c->db);
			return -1;
		}
	return db_commit(c->db, err);
}

int cloud_tags_delete(struct cloud *c, const char *owner, const char *region, const char **ids,
                      size_t nids, const struct tag *tags, const bool *with_value, size_t ntags,
                      struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *del = NULL;

	for (size_t i = 0; i < nids; i++)
		if (resource_check(c, owner, region, ids[i], err) < 0)
			return -1;
	if (db_prepare(
	        c->db,
	        "DELETE FROM tags WHERE resource = ?1 AND owner = ?2 AND (?3 IS NULL OR key = ?3) "
	        "AND (?4 IS NULL OR value = ?4)",
	        &del, err) < 0 ||
	    db_begin(c->db, err) < 0)
		return -1;
	for (size_t i = 0; i < nids; i++)
		for (size_t k = 0; k < (ntags ? ntags : 1); k++) {
			sqlite3_reset(del);
			db_bind_text(del, 1, ids[i]);
			db_bind_text(del, 2, owner);
			db_bind_text(del, 3, ntags ? tags[k].key : NULL);
			db_bind_text(del, 4, ntags && with_value[k] ? tags[k].value : NULL);
			if (db_step_done(c->db, del, err) < 0) {
				db_rollback(c->db);
				return -1;
			}
		}
	return db_commit(c->db, err);
}

int cloud_tags_list(struct cloud *c, const char *owner, const char *region, struct tag_set *out,
                    struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if (db_prepare(c->db,
	               "SELECT resource, key, value FROM tags WHERE owner = ? AND region = ? ORDER "
	               "BY resource, key",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, owner);
	db_bind_text(st, 2, region);
	while ((r = db_step_row(c->db, st, err)) == 1) {
		struct tag *t;

		out->v = xreallocarray(out->v, out->n + 1, sizeof(*out->v));
		t = &out->v[out->n++];
		str_copy(t->resource, db_text(st, 0), sizeof(t->resource));
		str_copy(t->key, db_text(st, 1), sizeof(t->key));
		str_copy(t->value, db_text(st, 2), sizeof(t->value));
	}
	if (r < 0) {
		tag_set_release(out);
		return -1;
	}
	return 0;
}

void tag_set_release(struct tag_set *s)
{
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

const struct tag *tag_set_of(const struct tag_set *s, const char *resource, size_t *n)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) { /* the first tag of resource, by binary search */
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(s->v[mid].resource, resource) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (hi = lo; hi < s->n && !strcmp(s->v[hi].resource, resource); hi++)
		;
	*n = hi - lo;
	return *n ? &s->v[lo] : NULL;
}
