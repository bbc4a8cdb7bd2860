/* What the resource files share to read and write their rows: a statement run with text
 * parameters, and rows collected into an array. */
#include "internal.h"

#include <stdarg.h>
#include <stdlib.h>

#include "util/cleanup.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

static int prepare(struct cloud *c, const char *sql, sqlite3_stmt **st, int nargs, va_list ap,
                   struct kerr **err)
{
	if (db_prepare(c->db, sql, st, err) < 0)
		return -1;
	for (int i = 1; i <= nargs; i++)
		db_bind_text(*st, i, va_arg(ap, const char *));
	return 0;
}

int cloud_sql_run(struct cloud *c, struct kerr **err, const char *sql, int nargs, ...)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	va_list ap;
	int r;

	va_start(ap, nargs);
	r = prepare(c, sql, &st, nargs, ap, err);
	va_end(ap);
	return r < 0 ? -1 : db_step_done(c->db, st, err);
}

int cloud_sql_exists(struct cloud *c, struct kerr **err, const char *sql, int nargs, ...)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	va_list ap;
	int r;

	va_start(ap, nargs);
	r = prepare(c, sql, &st, nargs, ap, err);
	va_end(ap);
	return r < 0 ? -1 : db_step_row(c->db, st, err);
}

int cloud_rows(struct cloud *c, sqlite3_stmt *st, size_t size, cloud_row_fn from_row, void **out,
               size_t *n, struct kerr **err)
{
	char *v = NULL;
	size_t count = 0;
	int r;

	while ((r = db_step_row(c->db, st, err)) == 1) {
		v = xreallocarray(v, count + 1, size);
		from_row(st, v + count++ * size);
	}
	if (r < 0) {
		free(v);
		return -1;
	}
	*out = v;
	*n = count;
	return 0;
}

int cloud_token_id(struct cloud *c, const char *table, const char *owner, const char *region,
                   const char *token, char id[ID_MAX], struct kerr **err)
{
	_cleanup_free_ char *sql = xasprintf(
	    "SELECT id FROM %s WHERE owner = ? AND region = ? AND client_token = ?", table);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db, sql, &st, err) < 0)
		return -1;
	db_bind_text(st, 1, owner);
	db_bind_text(st, 2, region);
	db_bind_text(st, 3, token);
	r = db_step_row(c->db, st, err);
	if (r == 1)
		str_copy(id, db_text(st, 0), ID_MAX);
	return r;
}
