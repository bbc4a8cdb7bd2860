/* SQLite handle, WAL mode, busy timeout, migrations by PRAGMA user_version. */
#include "db.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "schema.h"
#include "util/cleanup.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define DB_BUSY_TIMEOUT_MS 5000

static int db_fail(struct db *db, const char *what, struct kerr **err)
{
	int code = sqlite3_extended_errcode(db->h);
	enum kerr_kind kind = (code & 0xff) == SQLITE_CONSTRAINT ? KERR_CONFLICT
	                      : (code & 0xff) == SQLITE_FULL     ? KERR_NOSPACE
	                      : (code & 0xff) == SQLITE_CORRUPT  ? KERR_CORRUPT
	                                                         : KERR_IO;

	return kerr_set(err, kind, "%s in '%s': %s", what, db->path, sqlite3_errmsg(db->h));
}

uint64_t db_generation(struct db *db)
{
	return atomic_load(&db->generation);
}

/* After a write has happened (or committed): never before, or a reader could keep the old
 * answer under the new generation. */
static void moved_on(struct db *db)
{
	atomic_fetch_add(&db->generation, 1);
}

int db_exec(struct db *db, const char *sql, struct kerr **err)
{
	int r = 0;

	pthread_mutex_lock(&db->lock);
	if (sqlite3_exec(db->h, sql, NULL, NULL, NULL) != SQLITE_OK)
		r = db_fail(db, "cannot run a statement", err);
	moved_on(db);
	pthread_mutex_unlock(&db->lock);
	return r;
}

int db_prepare(struct db *db, const char *sql, sqlite3_stmt **stmt, struct kerr **err)
{
	if (sqlite3_prepare_v2(db->h, sql, -1, stmt, NULL) != SQLITE_OK)
		return db_fail(db, "cannot prepare a statement", err);
	return 0;
}

int db_step_done(struct db *db, sqlite3_stmt *stmt, struct kerr **err)
{
	int r;

	pthread_mutex_lock(&db->lock);
	r = sqlite3_step(stmt);
	if (r != SQLITE_DONE && r != SQLITE_ROW)
		r = db_fail(db, "cannot write", err);
	else
		r = 0;
	if (!sqlite3_stmt_readonly(stmt))
		moved_on(db);
	pthread_mutex_unlock(&db->lock);
	return r;
}

int db_step_row(struct db *db, sqlite3_stmt *stmt, struct kerr **err)
{
	int r;

	pthread_mutex_lock(&db->lock);
	r = sqlite3_step(stmt);
	r = r == SQLITE_ROW ? 1 : r == SQLITE_DONE ? 0 : db_fail(db, "cannot read", err);
	if (!sqlite3_stmt_readonly(stmt))
		moved_on(db);
	pthread_mutex_unlock(&db->lock);
	return r;
}

void db_hold(struct db *db)
{
	pthread_mutex_lock(&db->lock);
}

void db_release(struct db *db)
{
	pthread_mutex_unlock(&db->lock);
}

int db_begin(struct db *db, struct kerr **err)
{
	pthread_mutex_lock(&db->lock);
	if (db_exec(db, "BEGIN IMMEDIATE", err) < 0) {
		pthread_mutex_unlock(&db->lock);
		return -1;
	}
	return 0; /* held until db_commit or db_rollback */
}

int db_commit(struct db *db, struct kerr **err)
{
	int r = db_exec(db, "COMMIT", err);

	if (r < 0)
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	moved_on(db);
	pthread_mutex_unlock(&db->lock);
	return r;
}

void db_rollback(struct db *db)
{
	sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_unlock(&db->lock);
}

int db_bind_text(sqlite3_stmt *stmt, int idx, const char *s)
{
	return s ? sqlite3_bind_text(stmt, idx, s, -1, SQLITE_TRANSIENT)
	         : sqlite3_bind_null(stmt, idx);
}

const char *db_text(sqlite3_stmt *stmt, int col)
{
	const unsigned char *t = sqlite3_column_text(stmt, col);

	return t ? (const char *)t : "";
}

/* 0 when no row refers to one that is not there, as PRAGMA foreign_key_check finds. */
static int references_hold(struct db *db, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(db, "PRAGMA foreign_key_check", &st, err) < 0)
		return -1;
	r = db_step_row(db, st, err);
	if (r == 1)
		return kerr_set(err, KERR_INVALID,
		                "a row of table '%s' refers to a row of '%s' that is not there",
		                db_text(st, 0), db_text(st, 2));
	return r;
}

/* With foreign keys off (a migration may rebuild a table that others refer to, as SQLite's
 * ALTER TABLE procedure does: make the new one, copy, drop the old, rename), each migration in
 * a transaction of its own that commits only when every reference still holds. */
static int migrate(struct db *db, struct kerr **err)
{
	sqlite3_stmt *stmt;
	int version;

	if (db_prepare(db, "PRAGMA user_version", &stmt, err) < 0)
		return -1;
	version = db_step_row(db, stmt, err) == 1 ? sqlite3_column_int(stmt, 0) : 0;
	sqlite3_finalize(stmt);
	if ((size_t)version > db_migrations_count)
		return kerr_set(err, KERR_INVALID,
		                "'%s' has schema version %d, newer than this kiln (%zu)", db->path,
		                version, db_migrations_count);
	for (size_t v = (size_t)version; v < db_migrations_count; v++) {
		char pragma[64];

		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %zu", v + 1);
		if (db_begin(db, err) < 0)
			return -1;
		if (db_exec(db, db_migrations[v], err) < 0 || references_hold(db, err) < 0 ||
		    db_exec(db, pragma, err) < 0) {
			db_rollback(db);
			return kerr_wrap(err, "cannot migrate to schema version %zu", v + 1);
		}
		if (db_commit(db, err) < 0)
			return -1;
	}
	return 0;
}

/* The database holds every account's secret keys: it is the owner's alone (0600) from its
 * first byte, made so before SQLite creates it. SQLite gives the -wal, -shm and -journal files
 * it creates the database's mode; those an older kiln left are tightened too. */
static int make_private(const char *path, struct kerr **err)
{
	static const char *const sidecars[] = {"-wal", "-shm", "-journal"};
	_cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0 || fchmod(fd, 0600) < 0)
		return kerr_errno(err, errno, "cannot open database '%s'", path);
	for (size_t i = 0; i < ARRAY_SIZE(sidecars); i++) {
		_cleanup_free_ char *side = xasprintf("%s%s", path, sidecars[i]);
		if (chmod(side, 0600) < 0 && errno != ENOENT)
			return kerr_errno(err, errno, "cannot make '%s' private", side);
	}
	return 0;
}

int db_open(const char *path, struct db **out, struct kerr **err)
{
	struct db *db;

	if (make_private(path, err) < 0)
		return -1;
	db = xcalloc(1, sizeof(*db));
	db->path = xstrdup(path);
	{
		pthread_mutexattr_t a;
		pthread_mutexattr_init(&a);
		pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
		pthread_mutex_init(&db->lock, &a);
		pthread_mutexattr_destroy(&a);
	}
	if (sqlite3_open_v2(path, &db->h,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
	                    NULL) != SQLITE_OK) {
		kerr_set(err, KERR_IO, "cannot open database '%s': %s", path,
		         db->h ? sqlite3_errmsg(db->h) : "out of memory");
		goto on_error;
	}
	sqlite3_busy_timeout(db->h, DB_BUSY_TIMEOUT_MS);
	if (db_exec(
	        db,
	        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF",
	        err) < 0 ||
	    migrate(db, err) < 0 || db_exec(db, "PRAGMA foreign_keys = ON", err) < 0)
		goto on_error;
	*out = db;
	return 0;

on_error:
	db_close(db);
	return -1;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	sqlite3_close(db->h);
	pthread_mutex_destroy(&db->lock);
	free(db->path);
	free(db);
}
