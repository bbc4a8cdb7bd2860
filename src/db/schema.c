/* kiln's metadata schema. Append a migration for every change; never edit a released one. */
#include "schema.h"

#include "util/cleanup.h"
#include "util/banned.h"

const char *const db_migrations[] = {
	/* 1: topology and accounts */
	"CREATE TABLE regions (name TEXT PRIMARY KEY, position INTEGER NOT NULL UNIQUE);\n"
	"CREATE TABLE zones (name TEXT PRIMARY KEY, region TEXT NOT NULL REFERENCES regions(name),\n"
	"  zone_id TEXT NOT NULL UNIQUE, subnet TEXT NOT NULL UNIQUE, bridge TEXT NOT NULL UNIQUE);\n"
	"CREATE TABLE accounts (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, alias TEXT,\n"
	"  created_ms INTEGER NOT NULL);\n"
	"CREATE TABLE access_keys (access_key TEXT PRIMARY KEY, secret TEXT NOT NULL,\n"
	"  account TEXT NOT NULL REFERENCES accounts(id), created_ms INTEGER NOT NULL);\n",
};

const size_t db_migrations_count = ARRAY_SIZE(db_migrations);
