/* The domain: regions and zones, accounts, and (to come) images, instances, volumes and
 * snapshots with EC2's rules. It decides; db records; store, pool, runtime and net act. */
#ifndef KILN_CLOUD_H
#define KILN_CLOUD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "util/kerr.h"

#define ACCOUNT_ID_LEN 12
#define ACCESS_KEY_LEN 20
#define SECRET_KEY_LEN 40
/* The account that owns the public base images; clients know it by the alias "amazon". */
#define PROVIDER_ACCOUNT_NAME "provider"
#define PROVIDER_ALIAS "amazon"

struct cloud {
	char *data_dir;
	struct db *db;
};

struct zone {
	char name[32];    /* us-east-1a */
	char region[32];  /* us-east-1 */
	char zone_id[32]; /* use1-az1 */
	char subnet[24];  /* 172.31.0.0/20 */
	char bridge[16];  /* kb-use1a */
};

struct topology {
	char (*regions)[32];
	size_t nregions;
	struct zone *zones;
	size_t nzones;
};

/* The default: us-east-1 (a, b, c) and eu-west-1 (a, b). A topology file has one line per
 * region, "us-east-1 a b c"; '#' starts a comment. Zones get /20 subnets of 172.31.0.0/16 in
 * order, as EC2's default VPC does. */
int topology_default(struct topology *t, struct kerr **err);
int topology_parse(const char *text, struct topology *t, struct kerr **err);
void topology_release(struct topology *t);

struct account {
	char id[ACCOUNT_ID_LEN + 1];
	char name[64];
	char alias[64];
	char access_key[ACCESS_KEY_LEN + 1]; /* the first key, when listed */
};

/* Create the data directory: database, topology, provider and default accounts, and the
 * default account's keys in DIR/credentials and DIR/config (the aws CLI's formats). */
int cloud_init(const char *data_dir, const char *topology_text, struct kerr **err);
int cloud_open(const char *data_dir, struct cloud **out, struct kerr **err);
void cloud_close(struct cloud *c);

int cloud_regions(struct cloud *c, struct topology *t, struct kerr **err);
/* New account; id, access key and secret are generated when NULL. */
int cloud_account_create(struct cloud *c, const char *name, const char *id, const char *access_key,
			 const char *secret, struct account *out, char secret_out[SECRET_KEY_LEN + 1],
			 struct kerr **err);
int cloud_account_list(struct cloud *c, struct account **out, size_t *n, struct kerr **err);
/* The account and secret of an access key; KERR_NOT_FOUND when unknown. */
int cloud_account_by_key(struct cloud *c, const char *access_key, struct account *acct,
			 char secret[SECRET_KEY_LEN + 1], struct kerr **err);

#endif
