/* Instance profiles and temporary credentials. kiln has no IAM: a profile is a name an instance
 * is launched with, and its credentials (ASIA keys with a session token) act as the launching
 * account, with all its rights, until they expire or the instance terminates. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "db/db.h"
#include "internal.h"
#include "util/cleanup.h"
#include "util/str.h"
#include "util/banned.h"

void cloud_instance_profile_arn(const char *owner, const char *profile, char *out, size_t size)
{
	snprintf(out, size, "arn:aws:iam::%s:instance-profile/%s", owner, profile);
}

/* IAM's names: letters, digits and +=,.@_- (paths add '/'). */
static bool iam_name_ok(const char *s, size_t n, bool path)
{
	if (n < 1 || n > IAM_PROFILE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || strchr("+=,.@_-", s[i]) ||
		      (path && s[i] == '/')))
			return false;
	return true;
}

int cloud_iam_profile_resolve(const char *owner, const char *name, const char *arn,
                              char out[IAM_PROFILE_NAME_MAX + 1], struct kerr **err)
{
	static const char prefix[] = "arn:aws:iam::";
	static const char kind[] = ":instance-profile/";
	const char *from_arn = NULL;

	out[0] = '\0';
	if (name && !name[0])
		name = NULL; /* Packer sends IamInstanceProfile.Name="" for none */
	if (arn && !arn[0])
		arn = NULL;
	if (name && !iam_name_ok(name, strlen(name), false))
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_INSTANCE_PROFILE, name,
		                  "Value (%s) for parameter iamInstanceProfile.name is invalid. "
		                  "Invalid IAM Instance Profile name",
		                  name);
	if (arn) {
		const char *rest = arn + strlen(prefix);
		if (strncmp(arn, prefix, strlen(prefix)) || strncmp(rest, owner, strlen(owner)) ||
		    strncmp(rest + strlen(owner), kind, strlen(kind)) ||
		    !iam_name_ok(rest + strlen(owner) + strlen(kind),
		                 strlen(rest + strlen(owner) + strlen(kind)), true))
			return kerr_about(
			    err, KERR_INVALID, KERR_SUBJECT_INSTANCE_PROFILE, arn,
			    "Value (%s) for parameter iamInstanceProfile.arn is invalid: "
			    "arn:aws:iam::%s:instance-profile/NAME",
			    arn, owner);
		from_arn = strrchr(arn, '/') + 1;
		if (!iam_name_ok(from_arn, strlen(from_arn), false))
			return kerr_about(
			    err, KERR_INVALID, KERR_SUBJECT_INSTANCE_PROFILE, arn,
			    "Value (%s) for parameter iamInstanceProfile.arn is invalid", arn);
		if (name && strcmp(name, from_arn))
			return kerr_about(err, KERR_INVALID, KERR_SUBJECT_COMBINATION, NULL,
			                  "iamInstanceProfile.name '%s' and iamInstanceProfile.arn "
			                  "'%s' name different profiles",
			                  name, arn);
	}
	str_copy(out, name ? name : from_arn ? from_arn : "", IAM_PROFILE_NAME_MAX + 1);
	return 0;
}

static int account_row(struct cloud *c, const char *id, struct account *acct, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db, "SELECT id, name, COALESCE(alias, '') FROM accounts WHERE id = ?",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, id);
	r = db_step_row(c->db, st, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_ACCOUNT, id,
		                  "account '%s' is not known", id);
	cloud_account_from_row(st, acct);
	return 0;
}

/* Tokens are compared in constant time: they are secrets. */
static bool token_equal(const char *a, const char *b)
{
	size_t n = strlen(a);

	return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

int cloud_caller_by_key(struct cloud *c, const char *access_key, const char *token,
                        struct account *acct, struct key_session *session,
                        char secret[SECRET_KEY_LEN + 1], struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_kerr_ struct kerr *why = NULL;
	int r;

	memset(session, 0, sizeof(*session));
	if (cloud_account_by_key(c, access_key, acct, secret, &why) == 0) {
		if (token)
			return kerr_about(err, KERR_AUTH, KERR_SUBJECT_SESSION_TOKEN, NULL,
			                  "access key '%s' takes no session token", access_key);
		return 0;
	}
	if (why->kind != KERR_NOT_FOUND)
		return kerr_pass(err, steal_ptr(why));
	/* A temporary key counts while its instance lives; termination deletes it. */
	if (db_prepare(
	        c->db,
	        "SELECT k.secret, k.token, k.account, k.instance, k.expires_ms, i.iam_profile, "
	        "i.iam_profile_id FROM session_keys k JOIN instances i ON i.id = k.instance "
	        "WHERE k.access_key = ? AND i.state NOT IN ('shutting-down', 'terminated')",
	        &st, err) < 0)
		return -1;
	db_bind_text(st, 1, access_key);
	r = db_step_row(c->db, st, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return kerr_pass(err, steal_ptr(why));
	if (!token || !token_equal(token, db_text(st, 1)))
		return kerr_about(err, KERR_AUTH, KERR_SUBJECT_SESSION_TOKEN, NULL,
		                  "the security token included in the request is invalid");
	if (sqlite3_column_int64(st, 4) <= cloud_now_ms())
		return kerr_about(err, KERR_LIMIT, KERR_SUBJECT_SESSION_TOKEN, NULL,
		                  "the security token included in the request is expired");
	if (account_row(c, db_text(st, 2), acct, err) < 0)
		return -1;
	str_copy(acct->access_key, access_key, sizeof(acct->access_key));
	str_copy(secret, db_text(st, 0), SECRET_KEY_LEN + 1);
	str_copy(session->instance, db_text(st, 3), sizeof(session->instance));
	str_copy(session->profile, db_text(st, 5), sizeof(session->profile));
	str_copy(session->profile_id, db_text(st, 6), sizeof(session->profile_id));
	return 0;
}

/* The instance's newest set into out: 1 when found, 0 when none. */
static int newest_set(struct cloud *c, const char *instance_id, struct instance_credentials *out,
                      struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db,
	               "SELECT access_key, secret, token, issued_ms, expires_ms FROM session_keys "
	               "WHERE instance = ? ORDER BY expires_ms DESC LIMIT 1",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, instance_id);
	r = db_step_row(c->db, st, err);
	if (r <= 0)
		return r;
	str_copy(out->access_key, db_text(st, 0), sizeof(out->access_key));
	str_copy(out->secret, db_text(st, 1), sizeof(out->secret));
	str_copy(out->token, db_text(st, 2), sizeof(out->token));
	out->issued_ms = sqlite3_column_int64(st, 3);
	out->expires_ms = sqlite3_column_int64(st, 4);
	return 1;
}

/* A fresh set for the instance; the expired ones of it go. */
static int mint_set(struct cloud *c, const char *instance_id, int64_t now,
                    struct instance_credentials *out, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *del = NULL;
	_cleanup_stmt_ sqlite3_stmt *ins = NULL;

	memcpy(out->access_key, "ASIA", 4);
	cloud_random_string(CLOUD_KEY_ALPHABET, out->access_key + 4, SESSION_KEY_LEN - 4);
	cloud_random_string(CLOUD_SECRET_ALPHABET, out->secret, SECRET_KEY_LEN);
	cloud_random_string(CLOUD_SECRET_ALPHABET, out->token, SESSION_TOKEN_LEN);
	out->issued_ms = now;
	out->expires_ms = now + SESSION_LIFETIME_MS;
	if (db_prepare(c->db, "DELETE FROM session_keys WHERE instance = ? AND expires_ms <= ?",
	               &del, err) < 0 ||
	    db_prepare(c->db,
	               "INSERT INTO session_keys (access_key, secret, token, account, instance, "
	               "issued_ms, expires_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
	               &ins, err) < 0)
		return -1;
	db_bind_text(del, 1, instance_id);
	sqlite3_bind_int64(del, 2, now);
	db_bind_text(ins, 1, out->access_key);
	db_bind_text(ins, 2, out->secret);
	db_bind_text(ins, 3, out->token);
	db_bind_text(ins, 4, out->owner);
	db_bind_text(ins, 5, instance_id);
	sqlite3_bind_int64(ins, 6, out->issued_ms);
	sqlite3_bind_int64(ins, 7, out->expires_ms);
	return db_step_done(c->db, del, err) < 0 || db_step_done(c->db, ins, err) < 0 ? -1 : 0;
}

int cloud_instance_credentials(struct cloud *c, const char *instance_id,
                               struct instance_credentials *out, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int64_t now = cloud_now_ms();
	int r;

	memset(out, 0, sizeof(*out));
	if (db_begin(c->db, err) < 0)
		return -1;
	if (db_prepare(
	        c->db,
	        "SELECT owner, state, iam_profile, iam_profile_id FROM instances WHERE id = ?", &st,
	        err) < 0)
		goto on_error;
	db_bind_text(st, 1, instance_id);
	r = db_step_row(c->db, st, err);
	if (r < 0)
		goto on_error;
	if (r == 0) {
		kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_INSTANCE, instance_id,
		           "instance '%s' does not exist", instance_id);
		goto on_error;
	}
	if (!db_text(st, 2)[0]) {
		kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_INSTANCE_PROFILE, instance_id,
		           "instance '%s' has no instance profile", instance_id);
		goto on_error;
	}
	/* The metadata service answers a booting instance too. */
	if (instance_state_parse(db_text(st, 1)) != INSTANCE_RUNNING &&
	    instance_state_parse(db_text(st, 1)) != INSTANCE_PENDING) {
		kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_INSTANCE, instance_id,
		           "instance '%s' is %s, not running", instance_id, db_text(st, 1));
		goto on_error;
	}
	str_copy(out->owner, db_text(st, 0), sizeof(out->owner));
	str_copy(out->profile, db_text(st, 2), sizeof(out->profile));
	str_copy(out->profile_id, db_text(st, 3), sizeof(out->profile_id));
	r = newest_set(c, instance_id, out, err);
	if (r < 0 || ((r == 0 || out->expires_ms - now < SESSION_RENEW_MS) &&
	              mint_set(c, instance_id, now, out, err) < 0))
		goto on_error;
	return db_commit(c->db, err);

on_error:
	db_rollback(c->db);
	return -1;
}

int cloud_instance_credentials_drop(struct cloud *c, const char *instance_id, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (db_prepare(c->db, "DELETE FROM session_keys WHERE instance = ?", &st, err) < 0)
		return -1;
	db_bind_text(st, 1, instance_id);
	return db_step_done(c->db, st, err);
}
