/* Metadata in SQLite (WAL): one database per data directory, migrated on open. Thin helpers
 * only; what the rows mean is src/cloud's business. */
#ifndef KILN_DB_H
#define KILN_DB_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/kerr.h"

/* One connection shared by the daemon's threads. A transaction belongs to the thread that
 * began it: the lock (recursive) is held from db_begin to db_commit/db_rollback, and every
 * statement takes it, so no other thread's statement lands inside someone's transaction. */
struct db {
	sqlite3 *h;
	char *path;
	pthread_mutex_t lock;
	_Atomic uint64_t generation; /* moves on after every write: caches of reads compare it */
};

/* Read before a query whose answer is kept: a write that lands later moves it on, so what was
 * kept under the old value is known stale. */
uint64_t db_generation(struct db *db);

/* Open (creating) path and bring its schema to the newest version. */
int db_open(const char *path, struct db **out, struct kerr **err);
void db_close(struct db *db);

/* Prepare sql; fails with the database's message. */
int db_prepare(struct db *db, const char *sql, sqlite3_stmt **stmt, struct kerr **err);
/* Run statements that return no rows (a script of several is fine). */
int db_exec(struct db *db, const char *sql, struct kerr **err);
/* Step a statement to its end, for INSERT/UPDATE/DELETE; KERR_CONFLICT on a constraint. */
int db_step_done(struct db *db, sqlite3_stmt *stmt, struct kerr **err);
/* 1 with a row, 0 at the end, -1 on error. */
int db_step_row(struct db *db, sqlite3_stmt *stmt, struct kerr **err);
int db_begin(struct db *db, struct kerr **err);
/* The connection to the caller alone (recursive; a transaction holds it too) until db_release:
 * for work that must not interleave with other threads' statements, such as a lock of the
 * caller's own taken after this one, always in that order. */
void db_hold(struct db *db);
void db_release(struct db *db);
/* A failed commit rolls back: the caller must not call db_rollback after it. */
int db_commit(struct db *db, struct kerr **err);
void db_rollback(struct db *db);
/* Bind text that may be NULL (binds SQL NULL). */
int db_bind_text(sqlite3_stmt *stmt, int idx, const char *s);
/* Column text, never NULL ("" for SQL NULL). */
const char *db_text(sqlite3_stmt *stmt, int col);

static inline void db_finalizep(sqlite3_stmt **s)
{
	sqlite3_finalize(*s);
}
#define _cleanup_stmt_ __attribute__((cleanup(db_finalizep)))

#endif
