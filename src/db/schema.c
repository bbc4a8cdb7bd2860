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
	/* 2: snapshots, images, instances */
	"CREATE TABLE snapshots (id TEXT PRIMARY KEY, region TEXT NOT NULL REFERENCES regions(name),\n"
	"  owner TEXT NOT NULL REFERENCES accounts(id), volume_id TEXT, volume_size INTEGER NOT NULL,\n"
	"  state TEXT NOT NULL, progress INTEGER NOT NULL, description TEXT NOT NULL DEFAULT '',\n"
	"  start_ms INTEGER NOT NULL);\n"
	"CREATE TABLE images (id TEXT PRIMARY KEY, region TEXT NOT NULL REFERENCES regions(name),\n"
	"  owner TEXT NOT NULL REFERENCES accounts(id), name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',\n"
	"  state TEXT NOT NULL, public INTEGER NOT NULL DEFAULT 0, architecture TEXT NOT NULL DEFAULT 'x86_64',\n"
	"  root_device_name TEXT NOT NULL DEFAULT '/dev/xvda', root_snapshot TEXT NOT NULL REFERENCES snapshots(id),\n"
	"  root_size INTEGER NOT NULL, creation_ms INTEGER NOT NULL, UNIQUE (region, owner, name));\n"
	"CREATE TABLE instances (id TEXT PRIMARY KEY, region TEXT NOT NULL REFERENCES regions(name),\n"
	"  zone TEXT NOT NULL REFERENCES zones(name), owner TEXT NOT NULL REFERENCES accounts(id),\n"
	"  image TEXT NOT NULL, type TEXT NOT NULL, state TEXT NOT NULL, state_reason TEXT NOT NULL DEFAULT '',\n"
	"  private_ip TEXT NOT NULL, reservation TEXT NOT NULL, launch_index INTEGER NOT NULL,\n"
	"  launch_ms INTEGER NOT NULL, ended_ms INTEGER, key_name TEXT, user_data TEXT,\n"
	"  root_volume TEXT NOT NULL, root_size INTEGER NOT NULL, delete_on_termination INTEGER NOT NULL,\n"
	"  client_token TEXT);\n"
	"CREATE UNIQUE INDEX instances_address ON instances (zone, private_ip) WHERE state != 'terminated';\n"
	"CREATE INDEX instances_owner ON instances (owner, region);\n",
};

const size_t db_migrations_count = ARRAY_SIZE(db_migrations);
