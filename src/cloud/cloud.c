/* The data directory: its database, topology and accounts, and the aws CLI files. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "net/net.h"
#include "runtime/runtime.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define DEFAULT_ACCOUNT_NAME "default"

int64_t cloud_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* n random characters of alphabet into out (n+1 bytes); unbiased by rejection. */
void cloud_random_string(const char *alphabet, char *out, size_t n)
{
	size_t k = strlen(alphabet), i = 0;
	unsigned limit = 256 - 256 % (unsigned)k;

	while (i < n) {
		unsigned char b[64];
		if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
			abort();
		for (size_t j = 0; j < sizeof(b) && i < n; j++)
			if (b[j] < limit)
				out[i++] = alphabet[b[j] % k];
	}
	out[n] = '\0';
}

static bool all_digits(const char *s, size_t n)
{
	if (strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* What SigV4 takes in a credential: letters, digits, '_' and '-'. Short, plain keys such as
 * "test" (LocalStack's) and "FOOBARKEY" (moto's) are allowed: see cloud_access_key_weak. */
static bool valid_key(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 128)
		return false;
	for (const char *c = s; *c; c++)
		if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
		      (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
			return false;
	return true;
}

static bool valid_secret(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > SECRET_KEY_LEN)
		return false;
	for (const char *c = s; *c; c++)
		if (*c <= ' ' || *c > '~')
			return false;
	return true;
}

bool cloud_access_key_weak(const char *access_key, const char *secret)
{
	bool seen[256] = {false};
	size_t distinct = 0;

	if (strlen(access_key) < ACCESS_KEY_LEN || strlen(secret) < SECRET_KEY_LEN)
		return true;
	for (const unsigned char *c = (const unsigned char *)secret; *c; c++)
		if (!seen[*c]) {
			seen[*c] = true;
			distinct++;
		}
	return distinct < 20; /* a random 40-character secret has about 30 */
}

int cloud_account_create(struct cloud *c, const char *name, const char *id, const char *access_key,
                         const char *secret, struct account *out,
                         char secret_out[SECRET_KEY_LEN + 1], struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *acct = NULL;
	_cleanup_stmt_ sqlite3_stmt *key = NULL;
	_cleanup_kerr_ struct kerr *why = NULL;
	char gen_id[ACCOUNT_ID_LEN + 1], gen_key[ACCESS_KEY_LEN + 1],
	    gen_secret[SECRET_KEY_LEN + 1];

	if (!name[0] || strlen(name) >= sizeof(out->name))
		return kerr_set(err, KERR_INVALID, "invalid account name '%s'", name);
	if (id && !all_digits(id, ACCOUNT_ID_LEN))
		return kerr_set(err, KERR_INVALID, "invalid account id '%s': 12 digits", id);
	if (!!access_key != !!secret)
		return kerr_set(err, KERR_INVALID, "an access key and its secret go together");
	if (access_key && !valid_key(access_key))
		return kerr_set(err, KERR_INVALID,
		                "invalid access key '%s': 1 to 128 of letters, digits, _ and -",
		                access_key);
	if (secret && !valid_secret(secret))
		return kerr_set(err, KERR_INVALID,
		                "invalid secret key: 1 to %d printable characters, no spaces",
		                SECRET_KEY_LEN);
	if (!id) {
		cloud_random_string("0123456789", gen_id, ACCOUNT_ID_LEN);
		gen_id[0] = (char)('1' + gen_id[0] % 9); /* no leading zero, to read well */
		id = gen_id;
	}
	if (!access_key) {
		memcpy(gen_key, "AKIA", 4);
		cloud_random_string("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", gen_key + 4,
		                    ACCESS_KEY_LEN - 4);
		cloud_random_string(
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", gen_secret,
		    SECRET_KEY_LEN);
		access_key = gen_key;
		secret = gen_secret;
	}
	if (db_begin(c->db, err) < 0)
		return -1;
	if (db_prepare(c->db,
	               "INSERT INTO accounts (id, name, alias, created_ms) VALUES (?, ?, ?, ?)",
	               &acct, err) < 0 ||
	    db_prepare(c->db,
	               "INSERT INTO access_keys (access_key, secret, account, created_ms) VALUES "
	               "(?, ?, ?, ?)",
	               &key, err) < 0)
		goto on_error;
	db_bind_text(acct, 1, id);
	db_bind_text(acct, 2, name);
	db_bind_text(acct, 3, strcmp(name, PROVIDER_ACCOUNT_NAME) ? NULL : PROVIDER_ALIAS);
	sqlite3_bind_int64(acct, 4, cloud_now_ms());
	db_bind_text(key, 1, access_key);
	db_bind_text(key, 2, secret);
	db_bind_text(key, 3, id);
	sqlite3_bind_int64(key, 4, cloud_now_ms());
	if (db_step_done(c->db, acct, &why) < 0) {
		if (why->kind == KERR_CONFLICT)
			kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_ACCOUNT, id,
			           "an account named '%s' or with id '%s' exists already", name,
			           id);
		else
			kerr_pass(err, steal_ptr(why));
		goto on_error;
	}
	if (db_step_done(c->db, key, &why) < 0) {
		if (why->kind == KERR_CONFLICT)
			kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_KEY, access_key,
			           "access key '%s' exists already", access_key);
		else
			kerr_pass(err, steal_ptr(why));
		goto on_error;
	}
	if (db_commit(c->db, err) < 0) /* it rolled back itself */
		return -1;
	if (out) {
		memset(out, 0, sizeof(*out));
		str_copy(out->id, id, sizeof(out->id));
		str_copy(out->name, name, sizeof(out->name));
		str_copy(out->access_key, access_key, sizeof(out->access_key));
	}
	if (secret_out)
		str_copy(secret_out, secret, SECRET_KEY_LEN + 1);
	return 0;

on_error:
	db_rollback(c->db);
	return -1;
}

int cloud_account_list(struct cloud *c, struct account **out, size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	struct account *v = NULL;
	size_t count = 0;
	int r;

	if (db_prepare(c->db,
	               "SELECT a.id, a.name, COALESCE(a.alias, ''), COALESCE(MIN(k.access_key), "
	               "'') FROM accounts a "
	               "LEFT JOIN access_keys k ON k.account = a.id GROUP BY a.id ORDER BY "
	               "a.created_ms, a.name",
	               &st, err) < 0)
		return -1;
	while ((r = db_step_row(c->db, st, err)) == 1) {
		v = xreallocarray(v, count + 1, sizeof(*v));
		memset(&v[count], 0, sizeof(*v));
		str_copy(v[count].id, db_text(st, 0), sizeof(v->id));
		str_copy(v[count].name, db_text(st, 1), sizeof(v->name));
		str_copy(v[count].alias, db_text(st, 2), sizeof(v->alias));
		str_copy(v[count].access_key, db_text(st, 3), sizeof(v->access_key));
		count++;
	}
	if (r < 0) {
		free(v);
		return -1;
	}
	*out = v;
	*n = count;
	return 0;
}

void cloud_account_from_row(sqlite3_stmt *st, struct account *acct)
{
	memset(acct, 0, sizeof(*acct));
	str_copy(acct->id, db_text(st, 0), sizeof(acct->id));
	str_copy(acct->name, db_text(st, 1), sizeof(acct->name));
	str_copy(acct->alias, db_text(st, 2), sizeof(acct->alias));
}

int cloud_account_by_key(struct cloud *c, const char *access_key, struct account *acct,
                         char secret[SECRET_KEY_LEN + 1], struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	uint64_t gen = db_generation(c->db); /* before the query: see memo.c */
	int r;

	if (cloud_memo_key(c, gen, access_key, acct, secret))
		return 0;
	if (db_prepare(c->db,
	               "SELECT a.id, a.name, COALESCE(a.alias, ''), k.secret FROM access_keys k "
	               "JOIN accounts a ON a.id = k.account WHERE k.access_key = ?",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, access_key);
	r = db_step_row(c->db, st, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_KEY, access_key,
		                  "access key '%s' is not known", access_key);
	cloud_account_from_row(st, acct);
	str_copy(acct->access_key, access_key, sizeof(acct->access_key));
	str_copy(secret, db_text(st, 3), SECRET_KEY_LEN + 1);
	cloud_memo_put_key(c, gen, access_key, acct, secret);
	return 0;
}

int cloud_regions(struct cloud *c, struct topology *t, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *rs = NULL;
	_cleanup_stmt_ sqlite3_stmt *zs = NULL;
	int r;

	memset(t, 0, sizeof(*t));
	if (db_prepare(c->db, "SELECT name FROM regions ORDER BY position", &rs, err) < 0 ||
	    db_prepare(c->db,
	               "SELECT z.name, z.region, z.zone_id, z.subnet, z.bridge FROM zones z "
	               "JOIN regions r ON r.name = z.region ORDER BY r.position, z.name",
	               &zs, err) < 0)
		return -1;
	while ((r = db_step_row(c->db, rs, err)) == 1) {
		t->regions = xreallocarray(t->regions, t->nregions + 1, sizeof(*t->regions));
		str_copy(t->regions[t->nregions++], db_text(rs, 0), sizeof(*t->regions));
	}
	for (; r == 0 && (r = db_step_row(c->db, zs, err)) == 1; r = 0) {
		struct zone *z;
		t->zones = xreallocarray(t->zones, t->nzones + 1, sizeof(*t->zones));
		z = &t->zones[t->nzones++];
		str_copy(z->name, db_text(zs, 0), sizeof(z->name));
		str_copy(z->region, db_text(zs, 1), sizeof(z->region));
		str_copy(z->zone_id, db_text(zs, 2), sizeof(z->zone_id));
		str_copy(z->subnet, db_text(zs, 3), sizeof(z->subnet));
		str_copy(z->bridge, db_text(zs, 4), sizeof(z->bridge));
	}
	if (r < 0) {
		topology_release(t);
		return -1;
	}
	return 0;
}

static int save_topology(struct cloud *c, const struct topology *t, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *rs = NULL;
	_cleanup_stmt_ sqlite3_stmt *zs = NULL;

	if (db_prepare(c->db, "INSERT INTO regions (name, position) VALUES (?, ?)", &rs, err) < 0 ||
	    db_prepare(
	        c->db,
	        "INSERT INTO zones (name, region, zone_id, subnet, bridge) VALUES (?, ?, ?, ?, ?)",
	        &zs, err) < 0)
		return -1;
	for (size_t i = 0; i < t->nregions; i++) {
		sqlite3_reset(rs);
		db_bind_text(rs, 1, t->regions[i]);
		sqlite3_bind_int(rs, 2, (int)i);
		if (db_step_done(c->db, rs, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < t->nzones; i++) {
		const struct zone *z = &t->zones[i];
		sqlite3_reset(zs);
		db_bind_text(zs, 1, z->name);
		db_bind_text(zs, 2, z->region);
		db_bind_text(zs, 3, z->zone_id);
		db_bind_text(zs, 4, z->subnet);
		db_bind_text(zs, 5, z->bridge);
		if (db_step_done(c->db, zs, err) < 0)
			return -1;
	}
	if (t->public_named) {
		_cleanup_stmt_ sqlite3_stmt *ps = NULL;
		if (db_prepare(c->db,
		               "INSERT INTO settings (name, value) VALUES ('public-addresses', ?)",
		               &ps, err) < 0)
			return -1;
		db_bind_text(ps, 1, t->public_range);
		if (db_step_done(c->db, ps, err) < 0)
			return -1;
	}
	if (t->host_id[0] && cloud_sql_run(c, err,
	                                   "INSERT INTO settings (name, value) VALUES "
	                                   "('host-id', ?)",
	                                   1, t->host_id) < 0)
		return -1;
	for (size_t i = 0; i < t->nstores; i++) {
		_cleanup_free_ char *name = xasprintf("store:%s", t->stores[i].region);
		if (cloud_sql_run(c, err, "INSERT INTO settings (name, value) VALUES (?, ?)", 2,
		                  name, t->stores[i].url) < 0)
			return -1;
	}
	return 0;
}

/* The data directory's host id: recorded, or made once from a hash of its real path (two
 * directories rarely share one; a daemon refuses to start when they do, see src/daemon). */
static int host_id_load(struct cloud *c, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ char *real = NULL;
	uint8_t h[HASH_LEN];
	int r;

	if (db_prepare(c->db, "SELECT value FROM settings WHERE name = 'host-id'", &st, err) < 0)
		return -1;
	r = db_step_row(c->db, st, err);
	if (r < 0)
		return -1;
	if (r > 0 && net_host_id_valid(db_text(st, 0))) {
		str_copy(c->host_id, db_text(st, 0), sizeof(c->host_id));
		return 0;
	}
	real = realpath(c->data_dir, NULL);
	if (!real)
		return kerr_errno(err, errno, "cannot resolve '%s'", c->data_dir);
	hash_sha256(real, strlen(real), h);
	snprintf(c->host_id, sizeof(c->host_id), "%02x%02x", h[0], h[1]);
	return cloud_sql_run(c, err,
	                     "INSERT OR REPLACE INTO settings (name, value) VALUES ('host-id', ?)",
	                     1, c->host_id);
}

const char *cloud_host_id(const struct cloud *c)
{
	return c->host_id;
}

void cloud_transit_name(const struct cloud *c, unsigned net, char out[16])
{
	net_transit_name(c->host_id, net, out);
}

/* DIR/credentials and DIR/config in the aws CLI's formats, readable by the owner only (from
 * their creation on: fs_write_atomic makes them 0600). */
static int write_cli_files(const char *dir, const char *key, const char *secret, const char *region,
                           struct kerr **err)
{
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_buf_ struct buf cred = BUF_INIT;
	_cleanup_buf_ struct buf conf = BUF_INIT;

	if (dfd < 0)
		return kerr_errno(err, errno, "cannot open '%s'", dir);
	buf_addf(&cred, "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", key,
	         secret);
	buf_addf(&conf, "[default]\nregion = %s\noutput = json\n", region);
	if (fs_write_atomic(dfd, "credentials", cred.data, cred.len, "credentials", err) < 0)
		return -1;
	return fs_write_atomic(dfd, "config", conf.data, conf.len, "config", err);
}

int cloud_init(const char *data_dir, const char *topology_text, const char *images_dir,
               struct kerr **err)
{
	_cleanup_free_ char *dbpath = xasprintf("%s/kiln.db", data_dir);
	struct cloud c = {.data_dir = (char *)data_dir};
	struct topology t = {0};
	struct account def;
	char secret[SECRET_KEY_LEN + 1];
	int r = -1;

	if (access(dbpath, F_OK) == 0)
		return kerr_set(err, KERR_CONFLICT, "'%s' is initialized already", data_dir);
	/* The directory holds every account's keys: kiln's alone, even when it existed before. */
	if (fs_mkdir_p(data_dir, 0700, err) < 0)
		return -1;
	if (chmod(data_dir, 0700) < 0)
		return kerr_errno(err, errno, "cannot make '%s' private", data_dir);
	if ((topology_text ? topology_parse(topology_text, &t, err) : topology_default(&t, err)) <
	    0)
		return -1;
	if (db_open(dbpath, &c.db, err) < 0)
		goto out;
	if (db_begin(c.db, err) < 0)
		goto out;
	if (save_topology(&c, &t, err) < 0 || host_id_load(&c, err) < 0 ||
	    cloud_quota_save(&c, t.quotas, err) < 0) {
		db_rollback(c.db);
		goto out;
	}
	if (db_commit(c.db, err) < 0)
		goto out;
	for (size_t i = 0; i < t.nregions; i++) {
		_cleanup_free_ char *store = cloud_store_dir(&c, t.regions[i]);
		if (cloud_store_make(store, err) < 0) {
			kerr_wrap(err, "cannot make the store of region '%s'", t.regions[i]);
			goto out;
		}
	}
	if (cloud_account_create(&c, PROVIDER_ACCOUNT_NAME, CLOUD_PROVIDER_ACCOUNT_ID, NULL, NULL,
	                         NULL, NULL, err) < 0 ||
	    cloud_account_create(&c, DEFAULT_ACCOUNT_NAME, NULL, NULL, NULL, &def, secret, err) <
	        0 ||
	    write_cli_files(data_dir, def.access_key, secret, t.regions[0], err) < 0)
		goto out;
	if (images_dir && cloud_import_public_images(&c, images_dir, err) < 0)
		goto out;
	r = 0;
out:
	db_close(c.db);
	topology_release(&t);
	if (r < 0) { /* leave nothing half made: a second init must be able to start over */
		static const char *const files[] = {"kiln.db", "kiln.db-wal", "kiln.db-shm",
		                                    "credentials", "config"};
		_cleanup_free_ char *regions = xasprintf("%s/regions", data_dir);
		for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
			_cleanup_free_ char *f = xasprintf("%s/%s", data_dir, files[i]);
			unlink(f);
		}
		fs_remove_tree(regions, NULL);
	}
	return r;
}

int cloud_open(const char *data_dir, struct cloud **out, struct kerr **err)
{
	_cleanup_free_ char *dbpath = xasprintf("%s/kiln.db", data_dir);
	struct cloud *c;

	if (access(dbpath, F_OK) < 0)
		return kerr_set(err, KERR_NOT_FOUND,
		                "'%s' is not a kiln data directory (run 'kiln init')", data_dir);
	c = xcalloc(1, sizeof(*c));
	c->data_dir = xstrdup(data_dir);
	pthread_mutex_init(&c->volumes_lock, NULL);
	pthread_mutex_init(&c->regions_lock, NULL);
	cloud_memo_init(c);
	cloud_jobs_init(c);
	if (db_open(dbpath, &c->db, err) < 0 || host_id_load(c, err) < 0) {
		cloud_close(c);
		return -1;
	}
	*out = c;
	return 0;
}

void cloud_close(struct cloud *c)
{
	if (!c)
		return;
	cloud_watch_stop(c);
	cloud_gc_stop(c);
	cloud_jobs_stop(c);
	cloud_jobs_free(c);
	runtime_close(c->rt);
	pthread_mutex_destroy(&c->volumes_lock);
	pthread_mutex_destroy(&c->regions_lock);
	db_close(c->db);
	free(c->vpc_hook);
	cloud_identity_free(c);
	cloud_memo_free(c);
	if (c->deploy) {
		cloud_copy_sources_close();
		cloud_deployment_release(c->deploy);
	}
	free(c->deploy);
	free(c->data_dir);
	free(c);
}
