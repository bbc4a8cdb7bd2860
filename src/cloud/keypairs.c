/* Key pairs: SSH public keys an account keeps per region, by name, for RunInstances' KeyName.
 * CreateKeyPair makes the key (util/sshkey.c) and hands the private key out once; only the
 * public key line and EC2's fingerprint are recorded. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/sshkey.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

static int not_found(const char *what, struct kerr **err)
{
	return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_KEY_PAIR, what,
	                  "key pair '%s' not found", what);
}

/* EC2: up to 255 ASCII characters. */
static int name_check(const char *name, struct kerr **err)
{
	size_t n = name ? strlen(name) : 0;

	if (!n || n > KEY_NAME_MAX)
		return kerr_set(err, KERR_INVALID, "key pair names must be 1 to %d characters long",
		                KEY_NAME_MAX);
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return kerr_set(err, KERR_INVALID,
			                "key pair names must be printable ASCII characters");
	return 0;
}

static int type_of(const char *s, enum sshkey_type *out, struct kerr **err)
{
	if (!s || !strcmp(s, "rsa"))
		*out = SSHKEY_RSA;
	else if (!strcmp(s, "ed25519"))
		*out = SSHKEY_ED25519;
	else
		return kerr_set(err, KERR_INVALID, "'%s' is not a valid key type: rsa or ed25519",
		                s);
	return 0;
}

static int format_of(const char *s, enum sshkey_format *out, struct kerr **err)
{
	if (!s || !strcmp(s, "pem"))
		*out = SSHKEY_PEM;
	else if (!strcmp(s, "ppk"))
		*out = SSHKEY_PPK;
	else
		return kerr_set(err, KERR_INVALID, "'%s' is not a valid key format: pem or ppk", s);
	return 0;
}

static int name_taken(struct cloud *c, const char *owner, const char *region, const char *name,
                      struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db, "SELECT 1 FROM key_pairs WHERE owner = ? AND region = ? AND name = ?",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, owner);
	db_bind_text(st, 2, region);
	db_bind_text(st, 3, name);
	r = db_step_row(c->db, st, err);
	if (r > 0)
		return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_KEY_PAIR, name,
		                  "key pair '%s' already exists", name);
	return r;
}

/* The row and its tags, in one transaction. */
static int insert(struct cloud *c, const struct key_pair *k, const struct key_pair_request *req,
                  struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (db_begin(c->db, err) < 0)
		return -1;
	if (name_taken(c, k->owner, k->region, k->name, err) < 0 ||
	    db_prepare(c->db,
	               "INSERT INTO key_pairs (id, region, owner, name, key_type, fingerprint, "
	               "public_key, create_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	               &st, err) < 0)
		goto on_error;
	db_bind_text(st, 1, k->id);
	db_bind_text(st, 2, k->region);
	db_bind_text(st, 3, k->owner);
	db_bind_text(st, 4, k->name);
	db_bind_text(st, 5, k->type);
	db_bind_text(st, 6, k->fingerprint);
	db_bind_text(st, 7, k->public_key);
	sqlite3_bind_int64(st, 8, k->create_ms);
	if (db_step_done(c->db, st, err) < 0 ||
	    cloud_tags_put(c, k->owner, k->region, k->id, req->tags, req->ntags, err) < 0)
		goto on_error;
	return db_commit(c->db, err);
on_error:
	db_rollback(c->db);
	return -1;
}

static void fill(struct key_pair *k, const char *owner, const struct key_pair_request *req,
                 enum sshkey_type type, const char *fingerprint, const char *line)
{
	memset(k, 0, sizeof(*k));
	id_new("key", k->id);
	str_copy(k->region, req->region, sizeof(k->region));
	str_copy(k->owner, owner, sizeof(k->owner));
	str_copy(k->name, req->name, sizeof(k->name));
	str_copy(k->type, sshkey_type_name(type), sizeof(k->type));
	str_copy(k->fingerprint, fingerprint, sizeof(k->fingerprint));
	str_copy(k->public_key, line, sizeof(k->public_key));
	k->create_ms = cloud_now_ms();
}

int cloud_key_pair_create(struct cloud *c, const char *owner, const struct key_pair_request *req,
                          struct key_pair *out, char **private_key, struct kerr **err)
{
	_cleanup_free_ char *material = NULL, *line = NULL;
	char fingerprint[SSHKEY_FINGERPRINT_MAX];
	enum sshkey_format format = SSHKEY_PEM;
	enum sshkey_type type = SSHKEY_RSA;

	if (name_check(req->name, err) < 0 || type_of(req->type, &type, err) < 0 ||
	    format_of(req->format, &format, err) < 0 ||
	    name_taken(c, owner, req->region, req->name, err) < 0)
		return -1;
	/* The comment of the key is its name, as the key pair's own label. */
	if (sshkey_generate(type, format, req->name, &material, &line, fingerprint, err) < 0)
		return -1;
	fill(out, owner, req, type, fingerprint, line);
	if (insert(c, out, req, err) < 0)
		return -1;
	*private_key = steal_ptr(material);
	return 0;
}

int cloud_key_pair_import(struct cloud *c, const char *owner, const struct key_pair_request *req,
                          struct key_pair *out, struct kerr **err)
{
	_cleanup_kerr_ struct kerr *why = NULL;
	_cleanup_free_ char *line = NULL;
	char fingerprint[SSHKEY_FINGERPRINT_MAX];
	enum sshkey_type type;

	if (name_check(req->name, err) < 0)
		return -1;
	if (sshkey_import((const char *)req->material, req->material_len, &type, &line, fingerprint,
	                  &why) < 0)
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_KEY_MATERIAL, req->name, "%s",
		                  why->msg);
	if (strlen(line) >= KEY_PUBLIC_MAX)
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_KEY_MATERIAL, req->name,
		                  "the public key line is longer than %d characters",
		                  KEY_PUBLIC_MAX - 1);
	fill(out, owner, req, type, fingerprint, line);
	return insert(c, out, req, err);
}

#define KEY_PAIR_COLUMNS                                                                           \
	"id, region, owner, name, key_type, fingerprint, public_key, create_ms FROM key_pairs "

static void from_row(sqlite3_stmt *st, void *element)
{
	struct key_pair *k = element;

	memset(k, 0, sizeof(*k));
	str_copy(k->id, db_text(st, 0), sizeof(k->id));
	str_copy(k->region, db_text(st, 1), sizeof(k->region));
	str_copy(k->owner, db_text(st, 2), sizeof(k->owner));
	str_copy(k->name, db_text(st, 3), sizeof(k->name));
	str_copy(k->type, db_text(st, 4), sizeof(k->type));
	str_copy(k->fingerprint, db_text(st, 5), sizeof(k->fingerprint));
	str_copy(k->public_key, db_text(st, 6), sizeof(k->public_key));
	k->create_ms = sqlite3_column_int64(st, 7);
}

int cloud_key_pairs_list(struct cloud *c, const char *owner, const char *region,
                         struct key_pair **out, size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	void *rows;

	if (db_prepare(c->db,
	               "SELECT " KEY_PAIR_COLUMNS "WHERE owner = ? AND region = ? "
	               "ORDER BY create_ms, id",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, owner);
	db_bind_text(st, 2, region);
	if (cloud_rows(c, st, sizeof(**out), from_row, &rows, n, err) < 0)
		return -1;
	*out = rows;
	return 0;
}

int cloud_key_pair_public_key(struct cloud *c, const char *owner, const char *region,
                              const char *name, char *out, size_t size, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(
	        c->db,
	        "SELECT public_key FROM key_pairs WHERE owner = ? AND region = ? AND name = ?", &st,
	        err) < 0)
		return -1;
	db_bind_text(st, 1, owner);
	db_bind_text(st, 2, region);
	db_bind_text(st, 3, name);
	r = db_step_row(c->db, st, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return not_found(name, err);
	str_copy(out, db_text(st, 0), size);
	return 0;
}

int cloud_key_pair_delete(struct cloud *c, const char *owner, const char *region, const char *name,
                          const char *id, char deleted[ID_MAX], struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *find = NULL, *del = NULL, *tags = NULL;
	int r;

	deleted[0] = '\0';
	if (db_begin(c->db, err) < 0)
		return -1;
	if (db_prepare(c->db,
	               "SELECT id FROM key_pairs WHERE owner = ?1 AND region = ?2 AND "
	               "(?3 IS NULL OR id = ?3) AND (?4 IS NULL OR name = ?4)",
	               &find, err) < 0)
		goto on_error;
	db_bind_text(find, 1, owner);
	db_bind_text(find, 2, region);
	db_bind_text(find, 3, id);
	db_bind_text(find, 4, name);
	r = db_step_row(c->db, find, err);
	if (r < 0)
		goto on_error;
	if (r == 0) {
		db_rollback(c->db);
		return id ? not_found(id, err) : 0;
	}
	str_copy(deleted, db_text(find, 0), ID_MAX);
	if (db_prepare(c->db, "DELETE FROM key_pairs WHERE id = ?", &del, err) < 0 ||
	    db_prepare(c->db, "DELETE FROM tags WHERE resource = ?", &tags, err) < 0)
		goto on_error;
	db_bind_text(del, 1, deleted);
	db_bind_text(tags, 1, deleted);
	if (db_step_done(c->db, del, err) < 0 || db_step_done(c->db, tags, err) < 0)
		goto on_error;
	return db_commit(c->db, err);
on_error:
	db_rollback(c->db);
	return -1;
}
