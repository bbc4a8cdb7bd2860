/* What the files of the domain share among themselves, not with the API. */
#ifndef KILN_CLOUD_INTERNAL_H
#define KILN_CLOUD_INTERNAL_H

#include "cloud.h"

struct pool;
struct store;
struct store_progress;

#define GIB                  ((uint64_t)1 << 30)
#define ROOT_DEVICE          "/dev/xvda"
#define PUBLIC_RANGE_DEFAULT "198.18.0.0/15"

/* n random characters of alphabet into out (n+1 bytes); unbiased by rejection (cloud.c). */
void cloud_random_string(const char *alphabet, char *out, size_t n);
#define CLOUD_KEY_ALPHABET    "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
#define CLOUD_SECRET_ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

/* RunInstances' IamInstanceProfile (Name, or Arn in owner's account; NULL or "" for none) to
 * the profile's name in out ("" for none); KERR_INVALID about KERR_SUBJECT_INSTANCE_PROFILE. */
int cloud_iam_profile_resolve(const char *owner, const char *name, const char *arn,
                              char out[IAM_PROFILE_NAME_MAX + 1], struct kerr **err);
/* The instance's temporary credentials go with it (credentials.c): at termination. */
int cloud_instance_credentials_drop(struct cloud *c, const char *instance_id, struct kerr **err);

/* A region's default VPC is 172.31.0.0/16 with one /20 per zone, in the zones' order, as EC2's
 * is: each region numbers its own from 172.31.0.0/20 (each VPC is a network namespace of its
 * own, so they repeat across regions), and at most VPC_ZONES_MAX zones fit a region. */
#define VPC_ZONES_MAX 16
/* The /20 of the zone at index (from 0) in its region, "172.31.16.0/20", to out. */
void cloud_zone_subnet(size_t index, char *out, size_t size);

/* Background work: fn runs in a worker thread holding the job lock of lock_id (an instance
 * or volume id), so two jobs on one resource never overlap. A job records its outcome in its
 * resource (state, stateReason) and returns its error, which the worker logs. At shutdown a
 * job that sees cloud_jobs_stopping at a checkpoint returns at once, leaving its resource in
 * its transitional state for cloud_reconcile to resume. */
typedef int (*cloud_job_fn)(struct cloud *c, const char *id, int kind, bool force,
                            struct kerr **err);
int cloud_job_start(struct cloud *c, const char *lock_id, const char *id, cloud_job_fn fn,
                    const char *name, int kind, bool force, struct kerr **err);
/* The job's name in the log is its function's. */
#define cloud_submit(c, lock_id, id, fn, kind, force, err)                                         \
	cloud_job_start(c, lock_id, id, fn, #fn, kind, force, err)
pthread_mutex_t *cloud_job_lock(const char *id);
void cloud_jobs_init(struct cloud *c);
void cloud_jobs_free(struct cloud *c);
/* Shutdown has begun: a job should stop at its next checkpoint. */
bool cloud_jobs_stopping(struct cloud *c);
/* A job of the background that fails where nobody waits for it: log what failed (resource id
 * and error), for calls whose failure is not otherwise recorded. */
/* Open region's block store (cloud_store_dir); close it with cloud_store_close, which logs
 * what it asked of object storage (nothing for a directory) for what it was opened for, and
 * the totals since the daemon started: a store in S3 shows what each use fetched. */
int cloud_store_open(struct cloud *c, const char *region, bool exclusive, struct store **s,
                     struct kerr **err);
void cloud_store_close(struct store *s, const char *region, const char *what);
void cloud_log_failure(const char *resource, const struct kerr *e, const char *what);

/* The watcher saw instance id's PID 1 end while it is running: stop or terminate it, as its
 * shutdown behaviour says (nothing when a job holds it: that job is ending it). */
void cloud_instance_ended(struct cloud *c, const char *id);
/* Any instance by id, whoever owns it. */
int cloud_instance_get(struct cloud *c, const char *id, struct instance *in, struct kerr **err);
/* With the instance's job lock held: stop it now (stopping, then stopped), or boot it
 * (pending, then running; stopped with the reason when it cannot). */
int cloud_instance_halt(struct cloud *c, const char *id, struct kerr **err);
int cloud_instance_boot(struct cloud *c, const char *id, struct kerr **err);
/* EC2's rule for AMI names: 3 to 128 of letters, digits and ( ) [ ] space . / - ' @ _ */
bool cloud_image_name_valid(const char *name);
/* 0, or KERR_INVALID about KERR_SUBJECT_IMAGE_NAME when not valid. */
int cloud_image_name_check(const char *name, struct kerr **err);
/* KERR_NOT_FOUND about the instance, snapshot or volume id; each returns -1. */
int cloud_instance_not_found(const char *id, struct kerr **err);
int cloud_snapshot_not_found(const char *id, struct kerr **err);
/* The row of snapshot id with columns (SQL), stepped onto: KERR_NOT_FOUND when there is none. */
int cloud_snapshot_row(struct cloud *c, const char *columns, const char *id, sqlite3_stmt **st,
                       struct kerr **err);
int cloud_volume_not_found(const char *id, struct kerr **err);
/* The creation time of a new image: now, or just after the newest (inside the caller's
 * transaction, so dates stay distinct and increasing and "most recent" is well defined). */
int64_t cloud_next_creation_ms(struct cloud *c);
/* The rows of a new image (its state as im says, its mappings beside the root), inside the
 * caller's transaction; KERR_CONFLICT for a name the owner has in the region. */
struct image_origin {
	const char *instance; /* CreateImage's */
	bool no_reboot;
	const char *copy_of;      /* CopyImage's source image… */
	const char *copy_region;  /* …and its region */
	const char *client_token; /* CopyImage's, or NULL */
};
int cloud_image_insert(struct cloud *c, const struct image *im, const struct image_origin *from,
                       struct kerr **err);
/* The snapshots made for image (CreateImage's or CopyImage's), pending or not; *ids is
 * malloc'd. */
int cloud_image_snapshots(struct cloud *c, const char *image, char (**ids)[ID_MAX], size_t *n,
                          struct kerr **err);
/* After a restart: finish every CreateImage and CopyImage in flight. */
int cloud_images_reconcile(struct cloud *c, struct kerr **err);
int cloud_copies_reconcile(struct cloud *c, struct kerr **err);
/* The zone of region named want (NULL: the region's first). */
int cloud_find_zone(struct cloud *c, const char *region, const char *want, struct zone *out,
                    struct kerr **err);
/* The launch cache (bases.c). The pool's base file of a snapshot, restored from the region's
 * store the first time; the caller holds volumes_lock. *path is malloc'd. */
int cloud_zone_base(struct cloud *c, struct pool *p, const char *region, const char *snapshot,
                    char **path, struct kerr **err);
/* Make the base of snapshot in every zone pool of region that lacks it (restored from the
 * store, renamed into place when whole), so that launches there are clones. */
int cloud_zone_prewarm(struct cloud *c, const char *region, const char *snapshot,
                       struct kerr **err);
/* After an image becomes available: its bases in every zone of its region, in the background. */
void cloud_image_prewarm(struct cloud *c, const char *image);
/* A snapshot of an image just stored from copy (a file of the pool in dir): copy becomes the
 * zone's base of it, a reflink. */
void cloud_base_keep(struct cloud *c, const char *id, const char *dir, const char *copy);
/* An account from a row whose first columns are id, name, COALESCE(alias, ''). */
void cloud_account_from_row(sqlite3_stmt *st, struct account *acct);
/* At start, before any job: the temporaries a killed daemon left in the zones' pools. */
void cloud_leftovers_clean(struct cloud *c);
/* A deleted snapshot: its base goes from every zone pool of region. */
void cloud_bases_remove(struct cloud *c, const char *region, const char *id);
/* The volume file of an id in its zone's pool: "<id>.img" (paths.c). */
char *cloud_volume_file(const char *id);

/* May owner use snapshot (its own, shared with it, or public)? KERR_NOT_FOUND when not,
 * KERR_CONFLICT while it is not completed, KERR_AUTH when own_only and it is another's;
 * *size_gib is its volume's size. */
int cloud_snapshot_usable(struct cloud *c, const char *owner, const char *region, const char *id,
                          bool own_only, uint64_t *size_gib, struct kerr **err);

/* Quotas (quotas.c). EC2's defaults into limits; one "quota NAME VALUE" of a topology. */
void cloud_quota_defaults(uint64_t limits[QUOTA__COUNT]);
int cloud_quota_set(uint64_t limits[QUOTA__COUNT], const char *name, const char *value,
                    struct kerr **err);
/* Record the limits (cloud_init, in its transaction). */
int cloud_quota_save(struct cloud *c, const uint64_t limits[QUOTA__COUNT], struct kerr **err);
/* Would need[q] more of each quota fit what owner has in region? KERR_LIMIT naming the first
 * that would not. Call it inside the transaction that adds them. */
int cloud_quota_check(struct cloud *c, const char *owner, const char *region,
                      const uint64_t need[QUOTA__COUNT], struct kerr **err);

/* Snapshots in steps, for CreateImage: a pending row (inside the caller's transaction), the
 * point-in-time copy (cloud_point_in_time_for_snapshot), the store (0 when completed; error
 * recorded on the snapshot otherwise). */
int cloud_snapshot_insert(struct cloud *c, const char *owner, const struct volume *v,
                          const char *description, const char *for_image, char id[ID_MAX],
                          struct kerr **err);
int cloud_snapshot_store(struct cloud *c, const char *id, struct kerr **err);
/* A pending snapshot that will not be stored: error with reason, its copy removed. */
void cloud_snapshot_abandon(struct cloud *c, const char *id, const char *reason);
/* The lock of a volume's chain of snapshots (innermost: never held around a job lock; jobs.c). */
pthread_mutex_t *cloud_chain_lock(const char *volume);

/* Point-in-time copies (point_in_time.c): a reflink of v's file now into its pool's
 * cloud_shadow_file(v, snapshot), taking the job lock of v's instance. */
int cloud_point_in_time_take(struct cloud *c, const struct volume *v, const char *snapshot,
                             struct kerr **err);
/* The same for the volume of a pending snapshot row, for CreateImage (the caller holds the job
 * lock of the volume's instance); resumed after a crash, a whole copy taken then is kept. */
int cloud_point_in_time_for_snapshot(struct cloud *c, const char *snapshot, struct kerr **err);
/* The copy goes, if it is there. */
void cloud_point_in_time_drop(struct cloud *c, const char *region, const char *zone,
                              const char *volume, const char *snapshot);
/* The point-in-time copy of volume taken for snapshot, later the volume's shadow (paths.c). */
char *cloud_shadow_file(const char *volume, const char *snapshot);

/* Cross-region copies (copies.c): store the pending copy id of src_region's snapshot src_id
 * into region's store; *bytes_sent is what moved. */
/* The destination's side of a copy from another deployment (peers.c): the source image as that
 * deployment describes it to account, a snapshot's size, and the store work (only missing
 * chunks asked for, checked, manifest last; src_image: the image the copy is of, or NULL). */
int cloud_peer_image(struct cloud *c, const struct cloud_peer *p, const char *account,
                     const char *image, struct image *out, struct kerr **err);
int cloud_peer_snapshot_size(struct cloud *c, const struct cloud_peer *p, const char *account,
                             const char *snapshot, uint64_t *size_gib, struct kerr **err);
int cloud_peer_copy_store(struct cloud *c, const struct cloud_peer *p, const char *account,
                          const char *src_image, const char *src_id, const char *id,
                          const char *region, const struct store_progress *progress,
                          uint64_t *bytes_sent, struct kerr **err);
/* A snapshot with a product code is copied by its owner only (copies.c). */
int cloud_copy_product_check(struct cloud *c, const char *owner, const char *snapshot,
                             struct kerr **err);
int cloud_copy_store(struct cloud *c, const char *id, const char *region, const char *src_region,
                     const char *src_id, const struct store_progress *progress,
                     uint64_t *bytes_sent, struct kerr **err);
/* The volume EC2 shows for a copied snapshot: a copy comes from no volume of this region. */
#define CLOUD_COPY_VOLUME_ID "vol-ffffffff"

/* Permission rows (grants.c): table (resource column, grantee), and a statement run after each
 * change with ?1 the resource (NULL: none). */
struct grant_table {
	const char *table, *column, *after;
};
int cloud_grants_list(struct cloud *c, const struct grant_table *t, const char *id,
                      char (**grantees)[ACCOUNT_ID_LEN + 1], size_t *n, struct kerr **err);
/* Add and remove grantees (after removing them all, with reset), in one transaction. */
int cloud_grants_change(struct cloud *c, const struct grant_table *t, const char *id,
                        const char *const *add, size_t nadd, const char *const *remove,
                        size_t nremove, bool reset, struct kerr **err);

/* Volumes of instances. */
/* The record of a volume attached at launch (the root, or a mapping of the image), inside the
 * caller's transaction; its file is made by cloud_instance_make_volumes. */
int cloud_volume_insert_attached(struct cloud *c, const struct instance *in, const char *id,
                                 const char *device, const char *snapshot, uint64_t size_gib,
                                 bool delete_on_termination, const struct tag *tags, size_t ntags,
                                 struct kerr **err);
/* The files of an instance's mapped data volumes that do not exist yet: clones of the zone's
 * bases of their snapshots (each made under volumes_lock, which the caller must not hold). */
int cloud_instance_make_volumes(struct cloud *c, const struct instance *in, struct pool *p,
                                struct kerr **err);
/* The volumes attached to an instance, the root among them. */
int cloud_instance_volumes(struct cloud *c, const char *instance, struct volume **out, size_t *n,
                           struct kerr **err);
/* Tell the runtime which data volumes the instance has (before a boot, after a change). */
int cloud_instance_sync_volumes(struct cloud *c, const char *instance, struct kerr **err);
/* After a terminate: volumes marked DeleteOnTermination go, the others become available. */
int cloud_instance_release_volumes(struct cloud *c, const struct instance *in, struct kerr **err);
/* After a restart: finish volume and snapshot work that was in flight. */
int cloud_volumes_reconcile(struct cloud *c, struct kerr **err);
int cloud_snapshots_reconcile(struct cloud *c, struct kerr **err);

/* The OpenSSH public key line of the owner's key pair name in region, for RunInstances;
 * KERR_NOT_FOUND about KERR_SUBJECT_KEY_PAIR when it has none. */
int cloud_key_pair_public_key(struct cloud *c, const char *owner, const char *region,
                              const char *name, char *out, size_t size, struct kerr **err);
/* Networks (vpcs.c, security_groups.c, vpc_filter.c). EC2's default limits: VPCs per account
 * and region, subnets per VPC, security groups per VPC, rules per group and direction. */
#define VPCS_PER_REGION 5
#define SUBNETS_PER_VPC 200
#define GROUPS_PER_VPC  2500
#define RULES_PER_GROUP 60
/* 0 when the count sql answers (with arg1, and arg2 unless NULL) is under max, else KERR_LIMIT
 * about subject naming what. */
int cloud_under_limit(struct cloud *c, const char *sql, const char *arg1, const char *arg2,
                      long max, enum kerr_subject subject, const char *what, struct kerr **err);
/* n random characters of alphabet into out (n+1 bytes); unbiased by rejection. */
void cloud_random_string(const char *alphabet, char *out, size_t n);
/* The product codes of a resource, as the row readers select them (space-separated, from
 * CLOUD_CODES_OF), into codes (marketplace.c). */
#define CLOUD_CODES_OF(id)                                                                         \
	"COALESCE((SELECT group_concat(pc.code, ' ') FROM product_codes pc WHERE pc.resource "     \
	"= " id "), '')"
void cloud_product_codes_split(const char *text, char (*codes)[PRODUCT_CODE_LEN + 1], size_t *n);
/* RunInstances of im by owner with instance type: every product code of the image needs the
 * owner's subscription to its product (KERR_AUTH about KERR_SUBJECT_PRODUCT_CODE) and a type
 * the product allows (KERR_INVALID about it). */
int cloud_marketplace_launch_check(struct cloud *c, const char *owner, const struct image *im,
                                   const char *type, struct kerr **err);
/* Run sql with nargs text parameters (const char *, NULL binds NULL): db_step_done's result,
 * or db_step_row's (1: a row) for cloud_sql_exists. */
int cloud_sql_run(struct cloud *c, struct kerr **err, const char *sql, int nargs, ...);
int cloud_sql_exists(struct cloud *c, struct kerr **err, const char *sql, int nargs, ...);
/* Every row of st (its parameters bound) made an element of size bytes by from_row, in a
 * malloc'd array *out of *n (rows.c); nothing is kept when a step fails. */
/* ClientToken: the id of what owner made in region with token before, in table (a constant of
 * the caller's with columns id, owner, region, client_token): 1 with id, 0 when none, or -1. */
int cloud_token_id(struct cloud *c, const char *table, const char *owner, const char *region,
                   const char *token, char id[ID_MAX], struct kerr **err);
typedef void (*cloud_row_fn)(sqlite3_stmt *st, void *element);
int cloud_rows(struct cloud *c, sqlite3_stmt *st, size_t size, cloud_row_fn from_row, void **out,
               size_t *n, struct kerr **err);
/* After a committed change of what a VPC's security groups allow (rules, groups, instances'
 * groups): the VPC's filter follows it. */
int vpc_filter_changed(struct cloud *c, const char *vpc_id, struct kerr **err);
/* The network of in's VPC up for its launch (vpc_filter.c): the VPC's namespace made or brought
 * back, and its filter written with in as a member; *pin (malloc'd) names the namespace. */
int vpc_network_up(struct cloud *c, const struct instance *in, char **pin, struct kerr **err);
/* The identity keys kept in memory go (cloud_close). */
void cloud_identity_free(struct cloud *c);
/* Keys and regions found, kept while the database generation gen is the current one (memo.c):
 * the lookups are true when the entry is kept, and the puts keep what a query under gen (read
 * before it) found. */
void cloud_memo_init(struct cloud *c);
void cloud_memo_free(struct cloud *c);
bool cloud_memo_key(struct cloud *c, uint64_t gen, const char *access_key, struct account *acct,
                    char secret[SECRET_KEY_LEN + 1]);
void cloud_memo_put_key(struct cloud *c, uint64_t gen, const char *access_key,
                        const struct account *acct, const char *secret);
bool cloud_memo_region(struct cloud *c, uint64_t gen, const char *region);
void cloud_memo_put_region(struct cloud *c, uint64_t gen, const char *region);
/* A deleted VPC's namespace and transit link go. */
int vpc_network_delete(struct cloud *c, unsigned net, struct kerr **err);
/* Inside the caller's transaction: a VPC's default group "default" (with its rules). */
int cloud_group_insert_default(struct cloud *c, const struct vpc *v, struct kerr **err);
/* Inside the caller's transaction: address ip in the subnet for an instance, free and not
 * reserved (KERR_INVALID / KERR_CONFLICT about KERR_SUBJECT_ADDRESS), or the lowest free from
 * .4 (the last address excluded) when ip is NULL or "". */
int cloud_subnet_address(struct cloud *c, const struct subnet *s, const char *ip, char out[16],
                         struct kerr **err);
/* Inside the caller's transaction: a free public address of the host's range for instance
 * id (recorded in its row). */
int cloud_public_address_assign(struct cloud *c, const char *id, struct kerr **err);
/* Where RunInstances puts its instances: the subnet (asked for, or the default one of the zone
 * asked for or the region's first), their groups (asked for, or the VPC's default group) and
 * whether they get a public address. Not inside a transaction. */
struct launch_net {
	struct subnet subnet;
	char groups[SG_PER_INSTANCE][ID_MAX];
	size_t ngroups;
	bool public_ip;
};
int cloud_launch_network(struct cloud *c, const char *owner, const struct run_request *req,
                         struct launch_net *out, struct kerr **err);
/* The groups of an instance, filled into in->groups. */
int cloud_instance_load_groups(struct cloud *c, struct instance *in, struct kerr **err);
/* The instances a list shows: the owner's in the region, ended ones until ended_after (unix
 * ms). The condition on table `instances`; its three parameters bound by
 * cloud_instances_bind_listed from parameter 1. */
#define CLOUD_INSTANCES_LISTED                                                                     \
	"instances.owner = ? AND instances.region = ? AND "                                        \
	"(instances.ended_ms IS NULL OR instances.ended_ms > ?)"
void cloud_instances_bind_listed(sqlite3_stmt *st, const char *owner, const char *region,
                                 int64_t ended_after);
/* The groups of every instance of v (those CLOUD_INSTANCES_LISTED selects), in one query. */
int cloud_instances_load_groups(struct cloud *c, const char *owner, const char *region,
                                int64_t ended_after, struct instance *v, size_t n,
                                struct kerr **err);

/* Subscriptions' rows (marketplace.c): "SELECT " CLOUD_SUBSCRIPTION_COLUMNS "WHERE …", read by
 * cloud_subscription_from_row into a struct subscription. */
#define CLOUD_SUBSCRIPTION_COLUMNS                                                                 \
	"s.id, s.account, s.product, p.title, s.start_ms, COALESCE(s.end_ms, 0), p.id, p.seller "  \
	"FROM subscriptions s JOIN products p ON p.code = s.product "
void cloud_subscription_from_row(sqlite3_stmt *st, void *element);

#endif
