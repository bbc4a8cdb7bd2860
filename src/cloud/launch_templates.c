/* Launch templates: the templates of an account in a region, their numbered versions and each
 * version's launch parameters, kept as (name, value) rows in the order given. Version numbers
 * are never reused: a new version is numbered after every version ever made. */
#include "cloud/launch_templates.h"

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

void cloud_lt_version_release(struct launch_template_version *v)
{
	kv_release(&v->data);
}

void cloud_lt_versions_free(struct launch_template_version *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cloud_lt_version_release(&v[i]);
	free(v);
}

bool cloud_lt_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len < 3 || len > LAUNCH_TEMPLATE_NAME_MAX)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("().-/_", *p)))
			return false;
	return true;
}

/* Append without looking for the name: the names of one version are distinct already. */
static void data_append(struct kv *kv, const char *name, const char *value)
{
	kv->keys = xreallocarray(kv->keys, kv->n + 1, sizeof(char *));
	kv->values = xreallocarray(kv->values, kv->n + 1, sizeof(char *));
	kv->keys[kv->n] = xstrdup(name);
	kv->values[kv->n++] = xstrdup(value);
}

#define TEMPLATE_COLUMNS                                                                           \
	"t.id, t.region, t.owner, t.name, t.create_ms, t.default_version,"                         \
	" (SELECT MAX(version) FROM launch_template_versions v WHERE v.template = t.id)"

static void template_read(sqlite3_stmt *st, struct launch_template *t)
{
	memset(t, 0, sizeof(*t));
	str_copy(t->id, db_text(st, 0), sizeof(t->id));
	str_copy(t->region, db_text(st, 1), sizeof(t->region));
	str_copy(t->owner, db_text(st, 2), sizeof(t->owner));
	str_copy(t->name, db_text(st, 3), sizeof(t->name));
	t->create_ms = sqlite3_column_int64(st, 4);
	t->default_version = sqlite3_column_int64(st, 5);
	t->latest_version = sqlite3_column_int64(st, 6);
}

int cloud_lt_get(struct cloud *c, const char *owner, const char *region, const char *id,
                 const char *name, struct launch_template *out, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(
	        c->db,
	        "SELECT " TEMPLATE_COLUMNS " FROM launch_templates t WHERE t.owner = ?1 AND "
	        "t.region = ?2 AND (?3 IS NULL OR t.id = ?3) AND (?4 IS NULL OR t.name = ?4)",
	        &st, err) < 0)
		return -1;
	db_bind_text(st, 1, owner);
	db_bind_text(st, 2, region);
	db_bind_text(st, 3, name ? NULL : id);
	db_bind_text(st, 4, name);
	r = db_step_row(c->db, st, err);
	if (r < 0)
		return -1;
	if (r == 0) {
		if (name)
			return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_LAUNCH_TEMPLATE_NAME,
			                  name, "launch template '%s' not found", name);
		return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_LAUNCH_TEMPLATE, id,
		                  "launch template '%s' not found", id);
	}
	template_read(st, out);
	return 0;
}

int cloud_lt_list(struct cloud *c, const char *owner, const char *region,
                  struct launch_template **out, size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	*out = NULL;
	*n = 0;
	if (db_prepare(c->db,
	               "SELECT " TEMPLATE_COLUMNS " FROM launch_templates t WHERE t.owner = ? AND "
	               "t.region = ? ORDER BY t.create_ms, t.id",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, owner);
	db_bind_text(st, 2, region);
	while ((r = db_step_row(c->db, st, err)) == 1) {
		*out = xreallocarray(*out, *n + 1, sizeof(**out));
		template_read(st, &(*out)[(*n)++]);
	}
	if (r < 0) {
		free(*out);
		*out = NULL;
		*n = 0;
		return -1;
	}
	return 0;
}

/* KERR_LIMIT when sql (a count with ?1 bound to a) has reached limit; inside the caller's
 * transaction. */
static int count_check(struct cloud *c, const char *sql, const char *a, const char *b,
                       int64_t limit, const char *what, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (db_prepare(c->db, sql, &st, err) < 0)
		return -1;
	db_bind_text(st, 1, a);
	db_bind_text(st, 2, b);
	if (db_step_row(c->db, st, err) < 0)
		return -1;
	if (sqlite3_column_int64(st, 0) >= limit)
		return kerr_set(err, KERR_LIMIT, "you have reached the limit of %lld %s",
		                (long long)limit, what);
	return 0;
}

/* The rows of a new version (inside the caller's transaction). */
static int version_insert(struct cloud *c, const char *id, int64_t number, const char *description,
                          const char *client_token, int64_t now, const struct kv *data,
                          struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *ver = NULL, *put = NULL;

	if (data->n > LAUNCH_TEMPLATE_DATA_MAX)
		return kerr_set(err, KERR_LIMIT,
		                "a launch template version holds at most %d parameters",
		                LAUNCH_TEMPLATE_DATA_MAX);
	if (db_prepare(c->db,
	               "INSERT INTO launch_template_versions (template, version, description, "
	               "create_ms, client_token) VALUES (?, ?, ?, ?, ?)",
	               &ver, err) < 0 ||
	    db_prepare(c->db,
	               "INSERT INTO launch_template_data (template, version, seq, name, value) "
	               "VALUES (?, ?, ?, ?, ?)",
	               &put, err) < 0)
		return -1;
	db_bind_text(ver, 1, id);
	sqlite3_bind_int64(ver, 2, number);
	db_bind_text(ver, 3, description ? description : "");
	sqlite3_bind_int64(ver, 4, now);
	db_bind_text(ver, 5, client_token);
	if (db_step_done(c->db, ver, err) < 0)
		return -1;
	for (size_t i = 0; i < data->n; i++) {
		sqlite3_reset(put);
		db_bind_text(put, 1, id);
		sqlite3_bind_int64(put, 2, number);
		sqlite3_bind_int64(put, 3, (sqlite3_int64)i);
		db_bind_text(put, 4, data->keys[i]);
		db_bind_text(put, 5, data->values[i]);
		if (db_step_done(c->db, put, err) < 0)
			return -1;
	}
	return 0;
}

int cloud_lt_create(struct cloud *c, const char *owner, const struct lt_create_request *req,
                    struct launch_template *out, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *ins = NULL;
	char id[ID_MAX];
	int64_t now = cloud_now_ms();
	int r;

	if (!cloud_lt_name_valid(req->name))
		return kerr_about(
		    err, KERR_INVALID, KERR_SUBJECT_LAUNCH_TEMPLATE_NAME, req->name,
		    "launch template names are 3 to 128 letters, digits and ( ) . - / _: "
		    "'%s'",
		    req->name);
	if (req->client_token) {
		r = cloud_token_id(c, "launch_templates", owner, req->region, req->client_token, id,
		                   err);
		if (r < 0)
			return -1;
		if (r == 1) {
			return cloud_lt_get(c, owner, req->region, id, NULL, out, err);
		}
	}
	id_new("lt", id);
	if (db_prepare(
	        c->db,
	        "INSERT INTO launch_templates (id, region, owner, name, create_ms, "
	        "default_version, next_version, client_token) VALUES (?, ?, ?, ?, ?, 1, 2, ?)",
	        &ins, err) < 0 ||
	    db_begin(c->db, err) < 0)
		return -1;
	db_bind_text(ins, 1, id);
	db_bind_text(ins, 2, req->region);
	db_bind_text(ins, 3, owner);
	db_bind_text(ins, 4, req->name);
	sqlite3_bind_int64(ins, 5, now);
	db_bind_text(ins, 6, req->client_token);
	if (count_check(c, "SELECT COUNT(*) FROM launch_templates WHERE owner = ?1 AND region = ?2",
	                owner, req->region, LAUNCH_TEMPLATES_MAX, "launch templates in this region",
	                err) < 0)
		goto on_error;
	if (db_step_done(c->db, ins, err) < 0) {
		if ((*err)->kind == KERR_CONFLICT)
			kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_LAUNCH_TEMPLATE_NAME, req->name,
			           "launch template name '%s' is already in use", req->name);
		goto on_error;
	}
	if (version_insert(c, id, 1, req->description, NULL, now, req->data, err) < 0 ||
	    cloud_tags_put(c, owner, req->region, id, req->tags, req->ntags, err) < 0)
		goto on_error;
	if (db_commit(c->db, err) < 0)
		return -1;
	return cloud_lt_get(c, owner, req->region, id, NULL, out, err);

on_error:
	db_rollback(c->db);
	return -1;
}

/* The parameters of one version, in their order. */
static int data_load(struct cloud *c, const char *id, int64_t number, struct kv *out,
                     struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if (db_prepare(c->db,
	               "SELECT name, value FROM launch_template_data WHERE template = ? AND "
	               "version = ? ORDER BY seq",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, number);
	while ((r = db_step_row(c->db, st, err)) == 1)
		data_append(out, db_text(st, 0), db_text(st, 1));
	if (r < 0) {
		kv_release(out);
		return -1;
	}
	return 0;
}

/* The member of a parameter name: what comes before its first dot. */
static size_t member_len(const char *name)
{
	return strcspn(name, ".");
}

static bool has_member(const struct kv *data, const char *name)
{
	size_t len = member_len(name);

	for (size_t i = 0; i < data->n; i++)
		if (member_len(data->keys[i]) == len && !strncmp(data->keys[i], name, len))
			return true;
	return false;
}

int cloud_lt_version_create(struct cloud *c, const char *owner, const char *region, const char *id,
                            int64_t source, const char *description, const char *client_token,
                            const struct kv *data, struct launch_template_version *out,
                            struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *next = NULL, *bump = NULL, *tok = NULL;
	struct launch_template t;
	struct kv merged = {0};
	int64_t number, now = cloud_now_ms();
	int r;

	memset(out, 0, sizeof(*out));
	if (cloud_lt_get(c, owner, region, id, NULL, &t, err) < 0)
		return -1;
	if (client_token) {
		if (db_prepare(
		        c->db,
		        "SELECT version FROM launch_template_versions WHERE template = ? AND "
		        "client_token = ?",
		        &tok, err) < 0)
			return -1;
		db_bind_text(tok, 1, id);
		db_bind_text(tok, 2, client_token);
		r = db_step_row(c->db, tok, err);
		if (r < 0)
			return -1;
		if (r == 1)
			return cloud_lt_version_get(c, owner, region, id,
			                            sqlite3_column_int64(tok, 0), out, err);
	}
	if (source) {
		struct launch_template_version src;

		if (cloud_lt_version_get(c, owner, region, id, source, &src, err) < 0)
			return -1;
		for (size_t i = 0; i < src.data.n; i++)
			if (!has_member(data, src.data.keys[i]))
				data_append(&merged, src.data.keys[i], src.data.values[i]);
		cloud_lt_version_release(&src);
	}
	for (size_t i = 0; i < data->n; i++)
		data_append(&merged, data->keys[i], data->values[i]);
	if (db_prepare(c->db, "SELECT next_version FROM launch_templates WHERE id = ?", &next,
	               err) < 0 ||
	    db_prepare(c->db, "UPDATE launch_templates SET next_version = ? WHERE id = ?", &bump,
	               err) < 0 ||
	    db_begin(c->db, err) < 0)
		goto out;
	db_bind_text(next, 1, id);
	r = db_step_row(c->db, next, err);
	if (r != 1) {
		if (r == 0) /* deleted since cloud_lt_get */
			kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_LAUNCH_TEMPLATE, id,
			           "launch template '%s' not found", id);
		db_rollback(c->db);
		goto out;
	}
	if (count_check(c, "SELECT COUNT(*) FROM launch_template_versions WHERE template = ?1", id,
	                NULL, LAUNCH_TEMPLATE_VERSIONS_MAX, "versions of a launch template",
	                err) < 0) {
		db_rollback(c->db);
		goto out;
	}
	number = sqlite3_column_int64(next, 0);
	sqlite3_bind_int64(bump, 1, number + 1);
	db_bind_text(bump, 2, id);
	if (db_step_done(c->db, bump, err) < 0 ||
	    version_insert(c, id, number, description, client_token, now, &merged, err) < 0) {
		db_rollback(c->db);
		goto out;
	}
	if (db_commit(c->db, err) < 0)
		goto out;
	kv_release(&merged);
	return cloud_lt_version_get(c, owner, region, id, number, out, err);

out:
	kv_release(&merged);
	return -1;
}

static int version_read(struct cloud *c, sqlite3_stmt *st, struct launch_template_version *v,
                        struct kerr **err)
{
	memset(v, 0, sizeof(*v));
	str_copy(v->template_id, db_text(st, 0), sizeof(v->template_id));
	str_copy(v->template_name, db_text(st, 1), sizeof(v->template_name));
	v->number = sqlite3_column_int64(st, 2);
	str_copy(v->description, db_text(st, 3), sizeof(v->description));
	v->create_ms = sqlite3_column_int64(st, 4);
	v->is_default = sqlite3_column_int64(st, 5) == v->number;
	return data_load(c, v->template_id, v->number, &v->data, err);
}

#define VERSION_QUERY                                                                              \
	"SELECT t.id, t.name, v.version, v.description, v.create_ms, t.default_version FROM "      \
	"launch_template_versions v JOIN launch_templates t ON t.id = v.template WHERE t.owner = " \
	"?1 AND t.region = ?2 AND t.id = ?3"

int cloud_lt_version_get(struct cloud *c, const char *owner, const char *region, const char *id,
                         int64_t version, struct launch_template_version *out, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	struct launch_template t;
	int64_t number = version;
	int r;

	memset(out, 0, sizeof(*out));
	if (cloud_lt_get(c, owner, region, id, NULL, &t, err) < 0)
		return -1;
	if (version == LT_VERSION_LATEST)
		number = t.latest_version;
	else if (version == LT_VERSION_DEFAULT)
		number = t.default_version;
	if (db_prepare(c->db, VERSION_QUERY " AND v.version = ?4", &st, err) < 0)
		return -1;
	db_bind_text(st, 1, owner);
	db_bind_text(st, 2, region);
	db_bind_text(st, 3, id);
	sqlite3_bind_int64(st, 4, number);
	r = db_step_row(c->db, st, err);
	if (r < 0)
		return -1;
	if (r == 0) {
		char num[24];

		snprintf(num, sizeof(num), "%lld", (long long)version);
		return kerr_about(
		    err, KERR_NOT_FOUND, KERR_SUBJECT_LAUNCH_TEMPLATE_VERSION, num,
		    "could not find the specified version %lld for the launch template "
		    "with ID %s",
		    (long long)version, id);
	}
	return version_read(c, st, out, err);
}

int cloud_lt_versions(struct cloud *c, const char *owner, const char *region, const char *id,
                      struct launch_template_version **out, size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	*out = NULL;
	*n = 0;
	if (db_prepare(c->db, VERSION_QUERY " ORDER BY v.version DESC", &st, err) < 0)
		return -1;
	db_bind_text(st, 1, owner);
	db_bind_text(st, 2, region);
	db_bind_text(st, 3, id);
	while ((r = db_step_row(c->db, st, err)) == 1) {
		*out = xreallocarray(*out, *n + 1, sizeof(**out));
		(*n)++;
		if (version_read(c, st, &(*out)[*n - 1], err) < 0) {
			r = -1;
			break;
		}
	}
	if (r < 0) {
		cloud_lt_versions_free(*out, *n);
		*out = NULL;
		*n = 0;
		return -1;
	}
	return 0;
}

int cloud_lt_set_default(struct cloud *c, const char *owner, const char *region, const char *id,
                         int64_t version, struct launch_template *out, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	struct launch_template_version v;

	/* Inside one transaction so that the version cannot go between the check and the change. */
	if (db_begin(c->db, err) < 0)
		return -1;
	if (cloud_lt_version_get(c, owner, region, id, version, &v, err) < 0)
		goto on_error;
	cloud_lt_version_release(&v);
	if (db_prepare(c->db, "UPDATE launch_templates SET default_version = ? WHERE id = ?", &st,
	               err) < 0)
		goto on_error;
	sqlite3_bind_int64(st, 1, v.number);
	db_bind_text(st, 2, id);
	if (db_step_done(c->db, st, err) < 0)
		goto on_error;
	if (db_commit(c->db, err) < 0)
		return -1;
	return cloud_lt_get(c, owner, region, id, NULL, out, err);

on_error:
	db_rollback(c->db);
	return -1;
}

/* Runs each statement with the template's id as ?1 and, when version is not 0, the version as
 * ?2. */
static int run_deletes(struct cloud *c, const char *const *statements, size_t n, const char *id,
                       int64_t version, struct kerr **err)
{
	for (size_t i = 0; i < n; i++) {
		_cleanup_stmt_ sqlite3_stmt *st = NULL;

		if (db_prepare(c->db, statements[i], &st, err) < 0)
			return -1;
		db_bind_text(st, 1, id);
		if (version)
			sqlite3_bind_int64(st, 2, version);
		if (db_step_done(c->db, st, err) < 0)
			return -1;
	}
	return 0;
}

int cloud_lt_delete(struct cloud *c, const char *owner, const char *region, const char *id,
                    struct launch_template *out, struct kerr **err)
{
	static const char *const statements[] = {
	    "DELETE FROM launch_template_data WHERE template = ?1",
	    "DELETE FROM launch_template_versions WHERE template = ?1",
	    "DELETE FROM tags WHERE resource = ?1",
	    "DELETE FROM launch_templates WHERE id = ?1",
	};

	if (db_begin(c->db, err) < 0)
		return -1;
	if (cloud_lt_get(c, owner, region, id, NULL, out, err) < 0 ||
	    run_deletes(c, statements, ARRAY_SIZE(statements), id, 0, err) < 0)
		goto on_error;
	return db_commit(c->db, err);

on_error:
	db_rollback(c->db);
	return -1;
}

int cloud_lt_version_delete(struct cloud *c, const char *owner, const char *region, const char *id,
                            int64_t version, struct kerr **err)
{
	static const char *const statements[] = {
	    "DELETE FROM launch_template_data WHERE template = ?1 AND version = ?2",
	    "DELETE FROM launch_template_versions WHERE template = ?1 AND version = ?2",
	};
	struct launch_template_version v;

	if (db_begin(c->db, err) < 0)
		return -1;
	if (cloud_lt_version_get(c, owner, region, id, version, &v, err) < 0)
		goto on_error;
	cloud_lt_version_release(&v);
	if (v.is_default) {
		char num[24];

		snprintf(num, sizeof(num), "%lld", (long long)version);
		kerr_about(
		    err, KERR_CONFLICT, KERR_SUBJECT_LAUNCH_TEMPLATE_VERSION, num,
		    "cannot delete the default version %lld of launch template %s: make another "
		    "version the default first, or delete the launch template",
		    (long long)version, id);
		goto on_error;
	}
	if (run_deletes(c, statements, ARRAY_SIZE(statements), id, version, err) < 0)
		goto on_error;
	return db_commit(c->db, err);

on_error:
	db_rollback(c->db);
	return -1;
}
