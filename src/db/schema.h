/* The schema, as an ordered list of migrations: a database at user_version N runs N+1.. on open. */
#ifndef KILN_DB_SCHEMA_H
#define KILN_DB_SCHEMA_H

#include <stddef.h>

extern const char *const db_migrations[];
extern const size_t db_migrations_count;

#endif
