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
    "  owner TEXT NOT NULL REFERENCES accounts(id), name TEXT NOT NULL, description TEXT NOT NULL "
    "DEFAULT '',\n"
    "  state TEXT NOT NULL, public INTEGER NOT NULL DEFAULT 0, architecture TEXT NOT NULL DEFAULT "
    "'x86_64',\n"
    "  root_device_name TEXT NOT NULL DEFAULT '/dev/xvda', root_snapshot TEXT NOT NULL REFERENCES "
    "snapshots(id),\n"
    "  root_size INTEGER NOT NULL, creation_ms INTEGER NOT NULL, UNIQUE (region, owner, name));\n"
    "CREATE TABLE instances (id TEXT PRIMARY KEY, region TEXT NOT NULL REFERENCES regions(name),\n"
    "  zone TEXT NOT NULL REFERENCES zones(name), owner TEXT NOT NULL REFERENCES accounts(id),\n"
    "  image TEXT NOT NULL, type TEXT NOT NULL, state TEXT NOT NULL, state_reason TEXT NOT NULL "
    "DEFAULT '',\n"
    "  private_ip TEXT NOT NULL, reservation TEXT NOT NULL, launch_index INTEGER NOT NULL,\n"
    "  launch_ms INTEGER NOT NULL, ended_ms INTEGER, key_name TEXT, user_data TEXT,\n"
    "  root_volume TEXT NOT NULL, root_size INTEGER NOT NULL, delete_on_termination INTEGER NOT "
    "NULL,\n"
    "  client_token TEXT);\n"
    "CREATE UNIQUE INDEX instances_address ON instances (zone, private_ip) WHERE state != "
    "'terminated';\n"
    "CREATE INDEX instances_owner ON instances (owner, region);\n",
    /* 3: tags, volumes (root volumes of live instances included), snapshot permissions */
    "CREATE TABLE tags (resource TEXT NOT NULL, owner TEXT NOT NULL REFERENCES accounts(id),\n"
    "  region TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (resource, owner, "
    "key));\n"
    "CREATE INDEX tags_owner ON tags (owner, region);\n"
    "CREATE TABLE volumes (id TEXT PRIMARY KEY, region TEXT NOT NULL REFERENCES regions(name),\n"
    "  zone TEXT NOT NULL REFERENCES zones(name), owner TEXT NOT NULL REFERENCES accounts(id),\n"
    "  size INTEGER NOT NULL, snapshot TEXT NOT NULL DEFAULT '', volume_type TEXT NOT NULL DEFAULT "
    "'gp3',\n"
    "  state TEXT NOT NULL, state_reason TEXT NOT NULL DEFAULT '', create_ms INTEGER NOT NULL,\n"
    "  instance TEXT, device TEXT, attach_state TEXT, attach_ms INTEGER,\n"
    "  delete_on_termination INTEGER NOT NULL DEFAULT 0, last_snapshot TEXT NOT NULL DEFAULT '',\n"
    "  client_token TEXT);\n"
    "CREATE INDEX volumes_owner ON volumes (owner, region);\n"
    "CREATE UNIQUE INDEX volumes_device ON volumes (instance, device) WHERE instance IS NOT NULL;\n"
    "INSERT INTO volumes (id, region, zone, owner, size, snapshot, state, create_ms, instance, "
    "device,\n"
    "  attach_state, attach_ms, delete_on_termination, last_snapshot)\n"
    "  SELECT n.root_volume, n.region, n.zone, n.owner, n.root_size, COALESCE(i.root_snapshot, "
    "''), 'in-use',\n"
    "  n.launch_ms, n.id, '/dev/xvda', 'attached', n.launch_ms, n.delete_on_termination,\n"
    "  COALESCE(i.root_snapshot, '') FROM instances n LEFT JOIN images i ON i.id = n.image\n"
    "  WHERE n.state != 'terminated';\n"
    "ALTER TABLE snapshots ADD COLUMN state_message TEXT NOT NULL DEFAULT '';\n"
    "ALTER TABLE snapshots ADD COLUMN parent TEXT NOT NULL DEFAULT '';\n"
    "ALTER TABLE snapshots ADD COLUMN client_token TEXT;\n"
    "ALTER TABLE snapshots ADD COLUMN source TEXT NOT NULL DEFAULT '';\n"
    "CREATE TABLE snapshot_permissions (snapshot TEXT NOT NULL REFERENCES snapshots(id) ON DELETE "
    "CASCADE,\n"
    "  grantee TEXT NOT NULL, PRIMARY KEY (snapshot, grantee));\n",
    /* 4: CreateImage, images with several volumes, launch permissions */
    "ALTER TABLE images ADD COLUMN source_instance TEXT NOT NULL DEFAULT '';\n"
    "ALTER TABLE images ADD COLUMN state_reason TEXT NOT NULL DEFAULT '';\n"
    "ALTER TABLE images ADD COLUMN no_reboot INTEGER NOT NULL DEFAULT 0;\n"
    "ALTER TABLE images ADD COLUMN restart_instance INTEGER NOT NULL DEFAULT 0;\n"
    "ALTER TABLE snapshots ADD COLUMN for_image TEXT NOT NULL DEFAULT '';\n"
    "CREATE TABLE image_volumes (image TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,\n"
    "  device TEXT NOT NULL, snapshot TEXT NOT NULL REFERENCES snapshots(id), size INTEGER NOT "
    "NULL,\n"
    "  delete_on_termination INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (image, device));\n"
    "CREATE TABLE image_permissions (image TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,\n"
    "  grantee TEXT NOT NULL, PRIMARY KEY (image, grantee));\n",
    /* 5: copies across regions */
    "ALTER TABLE snapshots ADD COLUMN copy_of TEXT NOT NULL DEFAULT '';\n"
    "ALTER TABLE snapshots ADD COLUMN bytes_sent INTEGER NOT NULL DEFAULT 0;\n"
    "ALTER TABLE images ADD COLUMN copy_of TEXT NOT NULL DEFAULT '';\n"
    "ALTER TABLE images ADD COLUMN client_token TEXT;\n",
    /* 6: image deprecation */
    "ALTER TABLE images ADD COLUMN deprecation_ms INTEGER NOT NULL DEFAULT 0;\n",
    /* 7: per-account quotas of the topology (a quota without a row has its default) */
    "CREATE TABLE quotas (name TEXT PRIMARY KEY, value INTEGER NOT NULL);\n",
    /* 8: launch templates, their versions and each version's parameters (name, value) in the
     * order given */
    "CREATE TABLE launch_templates (id TEXT PRIMARY KEY, region TEXT NOT NULL REFERENCES "
    "regions(name),\n"
    "  owner TEXT NOT NULL REFERENCES accounts(id), name TEXT NOT NULL, create_ms INTEGER NOT "
    "NULL,\n"
    "  default_version INTEGER NOT NULL, next_version INTEGER NOT NULL, client_token TEXT,\n"
    "  UNIQUE (region, owner, name));\n"
    "CREATE TABLE launch_template_versions (template TEXT NOT NULL REFERENCES "
    "launch_templates(id),\n"
    "  version INTEGER NOT NULL, description TEXT NOT NULL DEFAULT '', create_ms INTEGER NOT "
    "NULL,\n"
    "  client_token TEXT, PRIMARY KEY (template, version));\n"
    "CREATE TABLE launch_template_data (template TEXT NOT NULL, version INTEGER NOT NULL,\n"
    "  seq INTEGER NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,\n"
    "  PRIMARY KEY (template, version, seq));\n",
    /* 9: a copy's source region in its own column; copy_of keeps the source's id alone */
    "ALTER TABLE snapshots ADD COLUMN copy_region TEXT NOT NULL DEFAULT '';\n"
    "ALTER TABLE images ADD COLUMN copy_region TEXT NOT NULL DEFAULT '';\n"
    "UPDATE snapshots SET copy_region = substr(copy_of, 1, instr(copy_of, '/') - 1),\n"
    "  copy_of = substr(copy_of, instr(copy_of, '/') + 1) WHERE instr(copy_of, '/') > 0;\n"
    "UPDATE images SET copy_region = substr(copy_of, 1, instr(copy_of, '/') - 1),\n"
    "  copy_of = substr(copy_of, instr(copy_of, '/') + 1) WHERE instr(copy_of, '/') > 0;\n",
    /* 10: key pairs (public keys only), and the public key each instance was launched with */
    "CREATE TABLE key_pairs (id TEXT PRIMARY KEY, region TEXT NOT NULL REFERENCES regions(name),\n"
    "  owner TEXT NOT NULL REFERENCES accounts(id), name TEXT NOT NULL, key_type TEXT NOT NULL,\n"
    "  fingerprint TEXT NOT NULL, public_key TEXT NOT NULL, create_ms INTEGER NOT NULL,\n"
    "  UNIQUE (owner, region, name));\n"
    "ALTER TABLE instances ADD COLUMN public_key TEXT;\n",
    /* 11: instance attributes: termination and stop protection, the shutdown behaviour */
    "ALTER TABLE instances ADD COLUMN disable_api_termination INTEGER NOT NULL DEFAULT 0;\n"
    "ALTER TABLE instances ADD COLUMN disable_api_stop INTEGER NOT NULL DEFAULT 0;\n"
    "ALTER TABLE instances ADD COLUMN shutdown_behavior TEXT NOT NULL DEFAULT 'stop';\n",
    /* 12: VPCs, subnets, security groups; instances in a subnet with groups and a public
     * address. net numbers a VPC's namespace and a subnet's bridge, host-wide, for the row's
     * life. Instances from before stay without a subnet until their account's default VPC is
     * made in their region (cloud_vpc_default_ensure adopts them). */
    "CREATE TABLE vpcs (id TEXT PRIMARY KEY, region TEXT NOT NULL REFERENCES regions(name),\n"
    "  owner TEXT NOT NULL REFERENCES accounts(id), cidr TEXT NOT NULL,\n"
    "  is_default INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL,\n"
    "  net INTEGER NOT NULL UNIQUE);\n"
    "CREATE INDEX vpcs_owner ON vpcs (owner, region);\n"
    "CREATE UNIQUE INDEX vpcs_default ON vpcs (owner, region) WHERE is_default;\n"
    "CREATE TABLE vpc_defaults (owner TEXT NOT NULL, region TEXT NOT NULL,\n"
    "  PRIMARY KEY (owner, region));\n"
    "CREATE TABLE subnets (id TEXT PRIMARY KEY, vpc TEXT NOT NULL REFERENCES vpcs(id),\n"
    "  region TEXT NOT NULL, zone TEXT NOT NULL REFERENCES zones(name),\n"
    "  owner TEXT NOT NULL REFERENCES accounts(id), cidr TEXT NOT NULL,\n"
    "  map_public INTEGER NOT NULL DEFAULT 0, is_default INTEGER NOT NULL DEFAULT 0,\n"
    "  created_ms INTEGER NOT NULL, net INTEGER NOT NULL UNIQUE);\n"
    "CREATE INDEX subnets_vpc ON subnets (vpc);\n"
    "CREATE TABLE security_groups (id TEXT PRIMARY KEY, vpc TEXT NOT NULL REFERENCES vpcs(id),\n"
    "  region TEXT NOT NULL, owner TEXT NOT NULL REFERENCES accounts(id), name TEXT NOT NULL,\n"
    "  description TEXT NOT NULL DEFAULT '', UNIQUE (vpc, name));\n"
    "CREATE TABLE sg_rules (id TEXT PRIMARY KEY, grp TEXT NOT NULL REFERENCES "
    "security_groups(id),\n"
    "  egress INTEGER NOT NULL, protocol TEXT NOT NULL, from_port INTEGER NOT NULL,\n"
    "  to_port INTEGER NOT NULL, cidr TEXT, ref_group TEXT, description TEXT NOT NULL DEFAULT "
    "'');\n"
    "CREATE INDEX sg_rules_grp ON sg_rules (grp);\n"
    "CREATE INDEX sg_rules_ref ON sg_rules (ref_group) WHERE ref_group IS NOT NULL;\n"
    "CREATE TABLE instance_groups (instance TEXT NOT NULL, grp TEXT NOT NULL,\n"
    "  PRIMARY KEY (instance, grp));\n"
    "CREATE INDEX instance_groups_grp ON instance_groups (grp);\n"
    "ALTER TABLE instances ADD COLUMN vpc TEXT;\n"
    "ALTER TABLE instances ADD COLUMN subnet TEXT;\n"
    "ALTER TABLE instances ADD COLUMN public_ip TEXT NOT NULL DEFAULT '';\n"
    "ALTER TABLE instances ADD COLUMN wants_public_ip INTEGER NOT NULL DEFAULT 0;\n"
    "DROP INDEX instances_address;\n"
    "CREATE UNIQUE INDEX instances_address ON instances (subnet, private_ip) WHERE state != "
    "'terminated';\n"
    "CREATE UNIQUE INDEX instances_public_ip ON instances (public_ip) WHERE public_ip != '';\n"
    "CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);\n",
    /* 13: each region numbers its zones' /20s from 172.31.0.0/20 (each VPC is a network
     * namespace of its own), so a zone's subnet is unique in its region only. The zones of
     * existing data directories keep theirs. */
    "CREATE TABLE zones_new (name TEXT PRIMARY KEY, region TEXT NOT NULL REFERENCES "
    "regions(name),\n"
    "  zone_id TEXT NOT NULL UNIQUE, subnet TEXT NOT NULL, bridge TEXT NOT NULL UNIQUE,\n"
    "  UNIQUE (region, subnet));\n"
    "INSERT INTO zones_new (name, region, zone_id, subnet, bridge)\n"
    "  SELECT name, region, zone_id, subnet, bridge FROM zones;\n"
    "DROP TABLE zones;\n"
    "ALTER TABLE zones_new RENAME TO zones;\n",
    /* 14: each instance's metadata options (RunInstances MetadataOptions,
     * ModifyInstanceMetadataOptions) */
    "ALTER TABLE instances ADD COLUMN http_tokens TEXT NOT NULL DEFAULT 'optional';\n"
    "ALTER TABLE instances ADD COLUMN http_endpoint TEXT NOT NULL DEFAULT 'enabled';\n"
    "ALTER TABLE instances ADD COLUMN http_hop_limit INTEGER NOT NULL DEFAULT 1;\n"
    "ALTER TABLE instances ADD COLUMN metadata_tags TEXT NOT NULL DEFAULT 'disabled';\n",
    /* 15: instance profiles (a name only: kiln has no IAM) and the temporary credentials of
     * the instances launched with one, which act as the launching account until they expire
     * or the instance terminates. The secret is kept as account keys' are: SigV4 needs it. */
    "ALTER TABLE instances ADD COLUMN iam_profile TEXT NOT NULL DEFAULT '';\n"
    "ALTER TABLE instances ADD COLUMN iam_profile_id TEXT NOT NULL DEFAULT '';\n"
    "CREATE TABLE session_keys (access_key TEXT PRIMARY KEY, secret TEXT NOT NULL,\n"
    "  token TEXT NOT NULL, account TEXT NOT NULL REFERENCES accounts(id),\n"
    "  instance TEXT NOT NULL, issued_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL);\n"
    "CREATE INDEX session_keys_instance ON session_keys (instance);\n",
    /* 16: the marketplace. Its system account (alias aws-marketplace, as the provider's is
     * amazon) owns the products' images. Product codes sit on images, snapshots, volumes and
     * instances; the triggers carry them to every row made from one that has them (a snapshot
     * of a volume, a copy, a volume restored from a snapshot, an image registered from
     * snapshots or created from an instance, an instance launched from an image), so no path
     * that makes a row can forget them. Products, their price per instance type (the public
     * offer) and subscriptions; each instance's state changes, with the metering clock's
     * time (the wall clock plus the test clock's offset, see cloud_meter_now_ms), which bills
     * are computed from. Each statement may run again (a database set back to an older
     * user_version, as the migration tests do, keeps what it has). */
    "INSERT OR IGNORE INTO accounts (id, name, alias, created_ms) VALUES ('679593333241',\n"
    "  'aws-marketplace', 'aws-marketplace', 0);\n"
    "CREATE TABLE IF NOT EXISTS product_codes (resource TEXT NOT NULL, code TEXT NOT NULL,\n"
    "  PRIMARY KEY (resource, code));\n"
    "CREATE TRIGGER IF NOT EXISTS codes_snapshots AFTER INSERT ON snapshots BEGIN\n"
    "  INSERT OR IGNORE INTO product_codes (resource, code) SELECT NEW.id, code FROM\n"
    "  product_codes WHERE resource IN (NEW.volume_id, NEW.copy_of); END;\n"
    "CREATE TRIGGER IF NOT EXISTS codes_volumes AFTER INSERT ON volumes WHEN NEW.snapshot != '' "
    "BEGIN\n"
    "  INSERT OR IGNORE INTO product_codes (resource, code) SELECT NEW.id, code FROM\n"
    "  product_codes WHERE resource = NEW.snapshot; END;\n"
    "CREATE TRIGGER IF NOT EXISTS codes_images AFTER INSERT ON images BEGIN\n"
    "  INSERT OR IGNORE INTO product_codes (resource, code) SELECT NEW.id, code FROM\n"
    "  product_codes WHERE resource IN (NEW.root_snapshot, NEW.copy_of, NEW.source_instance);\n"
    "  END;\n"
    "CREATE TRIGGER IF NOT EXISTS codes_image_volumes AFTER INSERT ON image_volumes BEGIN\n"
    "  INSERT OR IGNORE INTO product_codes (resource, code) SELECT NEW.image, code FROM\n"
    "  product_codes WHERE resource = NEW.snapshot; END;\n"
    "CREATE TRIGGER IF NOT EXISTS codes_instances AFTER INSERT ON instances BEGIN\n"
    "  INSERT OR IGNORE INTO product_codes (resource, code) SELECT NEW.id, code FROM\n"
    "  product_codes WHERE resource = NEW.image; END;\n"
    "CREATE TRIGGER IF NOT EXISTS codes_images_gone AFTER DELETE ON images BEGIN\n"
    "  DELETE FROM product_codes WHERE resource = OLD.id; END;\n"
    "CREATE TRIGGER IF NOT EXISTS codes_snapshots_gone AFTER DELETE ON snapshots BEGIN\n"
    "  DELETE FROM product_codes WHERE resource = OLD.id; END;\n"
    "CREATE TRIGGER IF NOT EXISTS codes_volumes_gone AFTER DELETE ON volumes BEGIN\n"
    "  DELETE FROM product_codes WHERE resource = OLD.id; END;\n"
    "CREATE TABLE IF NOT EXISTS products (code TEXT PRIMARY KEY, id TEXT NOT NULL UNIQUE,\n"
    "  seller TEXT NOT NULL REFERENCES accounts(id), title TEXT NOT NULL,\n"
    "  pricing TEXT NOT NULL, created_ms INTEGER NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS product_types (product TEXT NOT NULL REFERENCES products(code),\n"
    "  type TEXT NOT NULL, price_micros INTEGER NOT NULL DEFAULT 0,\n"
    "  PRIMARY KEY (product, type));\n"
    "CREATE TABLE IF NOT EXISTS subscriptions (id TEXT PRIMARY KEY, account TEXT NOT NULL "
    "REFERENCES\n"
    "  accounts(id), product TEXT NOT NULL REFERENCES products(code), start_ms INTEGER NOT\n"
    "  NULL, end_ms INTEGER);\n"
    "CREATE UNIQUE INDEX IF NOT EXISTS subscriptions_active ON subscriptions (account, product)\n"
    "  WHERE end_ms IS NULL;\n"
    "CREATE TABLE IF NOT EXISTS instance_states (instance TEXT NOT NULL, at_ms INTEGER NOT NULL,\n"
    "  state TEXT NOT NULL);\n"
    "CREATE INDEX IF NOT EXISTS instance_states_instance ON instance_states (instance, at_ms);\n"
    "CREATE TRIGGER IF NOT EXISTS states_new AFTER INSERT ON instances BEGIN\n"
    "  INSERT INTO instance_states (instance, at_ms, state) VALUES (NEW.id,\n"
    "  CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) + COALESCE((SELECT\n"
    "  CAST(value AS INTEGER) FROM settings WHERE name = 'test-clock-offset-ms'), 0),\n"
    "  NEW.state); END;\n"
    "CREATE TRIGGER IF NOT EXISTS states_change AFTER UPDATE OF state ON instances\n"
    "  WHEN NEW.state != OLD.state BEGIN\n"
    "  INSERT INTO instance_states (instance, at_ms, state) VALUES (NEW.id,\n"
    "  CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) + COALESCE((SELECT\n"
    "  CAST(value AS INTEGER) FROM settings WHERE name = 'test-clock-offset-ms'), 0),\n"
    "  NEW.state); END;\n",
    /* 17: usage dimensions of products (a price per unit), the usage metered for them
     * (MeterUsage: per instance, instance ''  for BatchMeterUsage's per customer; one record per
     * hour, the hour being the timestamp rounded down) and the buyers' agreement requests
     * (CreateAgreementRequest; accepting one makes the subscription, its agreement). */
    "CREATE TABLE IF NOT EXISTS product_dimensions (product TEXT NOT NULL REFERENCES\n"
    "  products(code), dimension TEXT NOT NULL, price_micros INTEGER NOT NULL DEFAULT 0,\n"
    "  PRIMARY KEY (product, dimension));\n"
    "CREATE TABLE IF NOT EXISTS metering_records (id TEXT PRIMARY KEY, product TEXT NOT NULL,\n"
    "  dimension TEXT NOT NULL, account TEXT NOT NULL, instance TEXT NOT NULL, region TEXT NOT\n"
    "  NULL, hour_ms INTEGER NOT NULL, quantity INTEGER NOT NULL, at_ms INTEGER NOT NULL,\n"
    "  UNIQUE (product, dimension, account, instance, hour_ms));\n"
    "CREATE TABLE IF NOT EXISTS agreement_requests (id TEXT PRIMARY KEY, account TEXT NOT NULL,\n"
    "  product TEXT NOT NULL REFERENCES products(code), client_token TEXT NOT NULL,\n"
    "  created_ms INTEGER NOT NULL, agreement TEXT NOT NULL DEFAULT '');\n",
    /* 18: the Marketplace Catalog (cloud/catalog.c): change sets with their request, the
     * summaries of their changes and the entities they touched; entities (AmiProduct, Offer)
     * with their details in AWS's JSON shape, the change set that holds their lock, and for
     * a product its code (for an offer, its product's id); and the marketplace's image of each
     * version of a product in each region. */
    "CREATE TABLE IF NOT EXISTS catalog_change_sets (id TEXT PRIMARY KEY, account TEXT NOT\n"
    "  NULL REFERENCES accounts(id), name TEXT NOT NULL DEFAULT '', token TEXT NOT NULL\n"
    "  DEFAULT '', intent TEXT NOT NULL, status TEXT NOT NULL, failure_code TEXT NOT NULL\n"
    "  DEFAULT '', failure TEXT NOT NULL DEFAULT '', start_ms INTEGER NOT NULL, end_ms\n"
    "  INTEGER NOT NULL DEFAULT 0, request TEXT NOT NULL, changes TEXT NOT NULL, entities\n"
    "  TEXT NOT NULL DEFAULT '[]');\n"
    "CREATE UNIQUE INDEX IF NOT EXISTS catalog_change_sets_token ON catalog_change_sets\n"
    "  (account, token) WHERE token != '';\n"
    "CREATE TABLE IF NOT EXISTS catalog_entities (id TEXT PRIMARY KEY, type TEXT NOT NULL,\n"
    "  account TEXT NOT NULL REFERENCES accounts(id), name TEXT NOT NULL DEFAULT '',\n"
    "  visibility TEXT NOT NULL, revision INTEGER NOT NULL DEFAULT 1, modified_ms INTEGER NOT\n"
    "  NULL, details TEXT NOT NULL, product TEXT NOT NULL DEFAULT '', locked_by TEXT NOT NULL\n"
    "  DEFAULT '');\n"
    "CREATE TABLE IF NOT EXISTS catalog_version_images (product TEXT NOT NULL, version TEXT\n"
    "  NOT NULL, region TEXT NOT NULL, image TEXT NOT NULL, PRIMARY KEY (product, version,\n"
    "  region));\n",
};

const size_t db_migrations_count = ARRAY_SIZE(db_migrations);
