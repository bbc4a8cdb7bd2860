/* Who else may use a resource: rows (resource, grantee) of a permissions table, where a grantee
 * is an account id or "all". Snapshots (createVolumePermission) and images (launchPermission)
 * keep theirs the same way. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

int cloud_grants_list(struct cloud *c, const struct grant_table *t, const char *id,
                      char (**grantees)[ACCOUNT_ID_LEN + 1], size_t *n, struct kerr **err)
{
	_cleanup_free_ char *sql =
	    xasprintf("SELECT grantee FROM %s WHERE %s = ? ORDER BY grantee", t->table, t->column);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	*grantees = NULL;
	*n = 0;
	if (db_prepare(c->db, sql, &st, err) < 0)
		return -1;
	db_bind_text(st, 1, id);
	while ((r = db_step_row(c->db, st, err)) == 1) {
		*grantees = xreallocarray(*grantees, *n + 1, sizeof(**grantees));
		str_copy((*grantees)[(*n)++], db_text(st, 0), ACCOUNT_ID_LEN + 1);
	}
	if (r < 0) {
		free(*grantees);
		*grantees = NULL;
		return -1;
	}
	return 0;
}

int cloud_grants_change(struct cloud *c, const struct grant_table *t, const char *id,
                        const char *const *add, size_t nadd, const char *const *remove,
                        size_t nremove, bool reset, struct kerr **err)
{
	_cleanup_free_ char *ins_sql =
	    xasprintf("INSERT OR IGNORE INTO %s (%s, grantee) VALUES (?, ?)", t->table, t->column);
	_cleanup_free_ char *del_sql = xasprintf(
	    "DELETE FROM %s WHERE %s = ?1 AND (?2 IS NULL OR grantee = ?2)", t->table, t->column);
	_cleanup_stmt_ sqlite3_stmt *ins = NULL, *del = NULL;

	if (db_prepare(c->db, ins_sql, &ins, err) < 0 ||
	    db_prepare(c->db, del_sql, &del, err) < 0 || db_begin(c->db, err) < 0)
		return -1;
	if (reset) {
		db_bind_text(del, 1, id);
		db_bind_text(del, 2, NULL);
		if (db_step_done(c->db, del, err) < 0)
			goto on_error;
	}
	for (size_t i = 0; i < nadd + nremove; i++) {
		sqlite3_stmt *st = i < nadd ? ins : del;
		sqlite3_reset(st);
		db_bind_text(st, 1, id);
		db_bind_text(st, 2, i < nadd ? add[i] : remove[i - nadd]);
		if (db_step_done(c->db, st, err) < 0)
			goto on_error;
	}
	if (t->after) {
		_cleanup_stmt_ sqlite3_stmt *after = NULL;
		if (db_prepare(c->db, t->after, &after, err) < 0)
			goto on_error;
		db_bind_text(after, 1, id);
		if (db_step_done(c->db, after, err) < 0)
			goto on_error;
	}
	return db_commit(c->db, err);

on_error:
	db_rollback(c->db);
	return -1;
}
