/* The domain: regions and zones, accounts, and (to come) images, instances, volumes and
 * snapshots with EC2's rules. It decides; db records; store, pool, runtime and net act. */
#ifndef KILN_CLOUD_H
#define KILN_CLOUD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "util/buf.h"
#include "util/id.h"
#include "util/kerr.h"

#define ACCOUNT_ID_LEN 12
#define ACCESS_KEY_LEN 20
#define SECRET_KEY_LEN 40
/* The account that owns the public base images; clients know it by the alias "amazon". */
#define PROVIDER_ACCOUNT_NAME     "provider"
#define CLOUD_PROVIDER_ACCOUNT_ID "100000000001"
#define PROVIDER_ALIAS            "amazon"
/* The marketplace's system account (made by migration 14): it owns the products' images,
 * which clients find with Owners=aws-marketplace. The id is the one AWS Marketplace's images
 * have, which public Packer and Terraform configurations name. */
#define MARKETPLACE_ACCOUNT_ID "679593333241"
#define MARKETPLACE_ALIAS      "aws-marketplace"
/* A product code: 25 lowercase letters and digits, as AWS's; an image has at most a few. */
#define PRODUCT_CODE_LEN  25
#define PRODUCT_CODES_MAX 4

struct runtime;

struct cloud_peer;

struct cloud {
	char *data_dir;
	char host_id[8]; /* names what it makes on the host (cloud_host_id) */
	struct db *db;
	struct runtime *rt;              /* for instances; see cloud_attach_runtime */
	pthread_mutex_t volumes_lock;    /* making pools, bases and root volumes */
	struct cloud_jobs *jobs;         /* the background jobs running (jobs.c) */
	pthread_mutex_t regions_lock;    /* serving a region for the first time (regions.c) */
	struct cloud_watch *watch;       /* the watcher of running instances (watch.c) */
	struct cloud_gc *gc;             /* the stores' automatic garbage collection (gc.c) */
	struct cloud_vpc_hook *vpc_hook; /* the daemon's, or NULL (vpc_filter.c) */
	struct cloud_identity *identity; /* the regions' identity keys read so far (identity.c) */
	struct cloud_memo *memo;         /* keys and regions found, per generation (memo.c) */
	struct cloud_deployment *deploy; /* serving one region of several deployments, or NULL */
	struct cloud_peer_ops {
		/* POST action with params (name, value, ..., NULL) to the deployment p, signed
		 * with key under the service CLOUD_PEER_SERVICE: its answer into out, or its
		 * refusal as err (the api's transport, set by the daemon: peers.c). */
		int (*call)(void *ctx, const struct cloud_peer *p, const char *key,
		            const char *action, const char *const *params, struct buf *out,
		            struct kerr **err);
		/* The same over one connection for many calls (a copy's chunks). */
		int (*open)(void *ctx, const struct cloud_peer *p, const char *key, void **session,
		            struct kerr **err);
		int (*send)(void *session, const char *action, const char *const *params,
		            struct buf *out, struct kerr **err);
		void (*close)(void *session);
		void *ctx;
	} peer_ops;
};

/* Regions as separate deployments (peers.c). A regions file lists every region's endpoint,
 * "region us-east-1 http://10.250.0.1:8773", and the key the deployments sign their calls to
 * each other with, "internal-key SECRET" (32 to 128 printable characters; '#' comments). */
#define CLOUD_PEER_SERVICE    "kiln-peer"
#define CLOUD_PEER_ACCESS_KEY "KILNPEERDEPLOYMENT00"
struct cloud_peer {
	char region[32];
	char endpoint[256];
};
struct cloud_deployment {
	char region[32]; /* the one this daemon serves */
	struct cloud_peer *peers;
	size_t npeers;
	char key[129];
};
int cloud_deployment_parse(const char *text, const char *region, struct cloud_deployment *d,
                           struct kerr **err);
int cloud_deployment_load(const char *path, const char *region, struct cloud_deployment *d,
                          struct kerr **err);
void cloud_deployment_release(struct cloud_deployment *d);
/* From now on c serves d's region only (it must be in the topology), and reaches the others
 * with ops; before any request or job. */
int cloud_deployment_set(struct cloud *c, const struct cloud_deployment *d,
                         const struct cloud_peer_ops *ops, struct kerr **err);
/* The deployment serving region when another one does, else NULL. */
const struct cloud_peer *cloud_peer_find(const struct cloud *c, const char *region);
/* The deployments' key, or NULL when c is the only deployment. */
const char *cloud_peer_key(const struct cloud *c);
/* The source's side of a copy to another deployment, for account (checked here: it may copy the
 * image, or use the snapshot; product codes copy to their owner only). Describe: the image's
 * fields, or a snapshot's size, as "key value" lines; a snapshot's manifest; chunks of it. */
int cloud_copy_source_describe(struct cloud *c, const char *account, const char *region,
                               const char *image, const char *snapshot, struct buf *out,
                               struct kerr **err);
int cloud_copy_source_manifest(struct cloud *c, const char *account, const char *region,
                               const char *image, const char *snapshot, struct buf *out,
                               struct kerr **err);
/* Close the snapshots cloud_copy_source_chunks keeps open between calls (at shutdown). */
void cloud_copy_sources_close(void);
int cloud_copy_source_chunks(struct cloud *c, const char *account, const char *region,
                             const char *image, const char *snapshot, const uint8_t (*hashes)[32],
                             size_t n, struct buf *out, struct kerr **err);

struct zone {
	char name[32];    /* us-east-1a */
	char region[32];  /* us-east-1 */
	char zone_id[32]; /* use1-az1 */
	char subnet[24];  /* 172.31.0.0/20 */
	char bridge[16];  /* kb-use1a: recorded, no link; instances join their VPC's bridges */
};

/* Per-account quotas, each counted per region as EC2 counts them. */
enum quota {
	QUOTA_VCPUS,      /* "running-vcpus": vCPUs of instances neither stopped nor terminated */
	QUOTA_VOLUMES,    /* "volumes": how many */
	QUOTA_VOLUME_GIB, /* "volume-gib": their total size */
	QUOTA_SNAPSHOTS,  /* "snapshots" */
	QUOTA_IMAGES,     /* "images" */
	QUOTA__COUNT
};

struct topology_store {
	char region[32];
	char *url; /* s3://bucket/prefix?endpoint=... */
};

struct topology {
	char (*regions)[32];
	size_t nregions;
	struct topology_store *stores; /* regions whose store is not the data directory's */
	size_t nstores;
	struct zone *zones;
	size_t nzones;
	uint64_t quotas[QUOTA__COUNT];
	char public_range[24]; /* "public-addresses CIDR": instances' public addresses */
	char host_id[8];       /* "host-id ID", or "" for one derived from the data directory */
	bool public_named;     /* public_range is the topology's, not the default */
};

/* The default: us-east-1 (a, b, c) and eu-west-1 (a, b). A topology file has one line per
 * region, "us-east-1 a b c", and lines "quota NAME VALUE" ("quota running-vcpus 64"); '#'
 * starts a comment. A region's zones get /20 subnets of 172.31.0.0/16 in order from
 * 172.31.0.0/20, as EC2's default VPC in each region has (at most 16 zones in a region).
 * Quotas not named keep EC2's defaults (see quotas.c). A line "public-addresses CIDR" sets the
 * range of instances' public addresses (default 198.18.0.0/15); "host-id ID" (4 lowercase hex
 * digits) the data directory's host id (cloud_host_id). "store REGION
 * s3://bucket/prefix?endpoint=URL" puts a region of the topology's block store in object storage
 * (S3, as Ceph's RADOS Gateway speaks it) instead of DIR/regions/REGION/store; its credentials come
 * from the environment or the shared credentials file (AWS_ACCESS_KEY_ID...,
 * AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE), never from the URL. */
int topology_default(struct topology *t, struct kerr **err);
int topology_parse(const char *text, struct topology *t, struct kerr **err);
void topology_release(struct topology *t);

struct account {
	char id[ACCOUNT_ID_LEN + 1];
	char name[64];
	char alias[64];
	char access_key[ACCESS_KEY_LEN + 1]; /* the first key, when listed */
};

/* Create the data directory: database, topology, provider and default accounts, the default
 * account's keys in DIR/credentials and DIR/config (the aws CLI's formats), and, from images_dir
 * when not NULL, the public base images in every region. */
int cloud_init(const char *data_dir, const char *topology_text, const char *images_dir,
               struct kerr **err);
int cloud_open(const char *data_dir, struct cloud **out, struct kerr **err);
/* Waits for the jobs still running (cloud_jobs_stop), then frees c. */
void cloud_close(struct cloud *c);
/* Shutdown: refuse new jobs, let the running ones reach their next checkpoint and join them.
 * What a job leaves unfinished stays recorded in its resource's state; cloud_reconcile resumes
 * it at the next start. */
void cloud_jobs_stop(struct cloud *c);

/* The regions and zones (not the quotas: see cloud_quota_check). */
int cloud_regions(struct cloud *c, struct topology *t, struct kerr **err);
/* The quota a request went past, when err is that refusal (KERR_LIMIT); -1 otherwise. */
/* A quota's limit (what the topology set, or EC2's default). */
int cloud_quota_limit(struct cloud *c, enum quota q, uint64_t *limit, struct kerr **err);

bool cloud_region_known(struct cloud *c, const char *region);
/* Would a given access key and secret be easy to guess: shorter than EC2's 20 and 40
 * characters, or a secret of few distinct characters? Accepted all the same (test suites
 * written for LocalStack and moto sign with "test"/"test" or "FOOBARKEY"/"FOOBARSECRET"). */
bool cloud_access_key_weak(const char *access_key, const char *secret);

/* A region of EC2's list or of the topology, served yet or not (regions.c). */
struct region_status {
	char name[32];
	const char *opt_in_status; /* opt-in-not-required, opted-in, not-opted-in */
	bool enabled;              /* requests signed for it are served */
	bool served;               /* its zones, store and public images exist */
	char endpoint[256];        /* served by another deployment: its endpoint; else "" */
};
/* The topology's regions, then the rest of EC2's commercial regions; serving one region of
 * several deployments, the regions file's, in its order. */
int cloud_regions_all(struct cloud *c, struct region_status **out, size_t *n, struct kerr **err);
/* Ready to serve requests signed for region: at once when it is served; a region of EC2's that
 * needs no opt-in is made now (its zones, its store, a store copy of the public base images
 * from the region served first), once, while concurrent first requests wait. KERR_NOT_FOUND
 * (subject region) for a name EC2 does not have, KERR_AUTH for an opt-in region the topology
 * does not name, KERR_LIMIT when it has more zones than its default VPC holds (16: none of
 * EC2's has). */
int cloud_region_open(struct cloud *c, const char *region, struct kerr **err);
/* The short form of an EC2 region in its zone ids ("apne1"); false for a name EC2 lacks. */
bool cloud_region_short_name(const char *region, char *out, size_t size);
/* New account; id, access key and secret are generated when NULL. */
int cloud_account_create(struct cloud *c, const char *name, const char *id, const char *access_key,
                         const char *secret, struct account *out,
                         char secret_out[SECRET_KEY_LEN + 1], struct kerr **err);
int cloud_account_list(struct cloud *c, struct account **out, size_t *n, struct kerr **err);
/* The account and secret of an access key; KERR_NOT_FOUND when unknown. */
int cloud_account_by_key(struct cloud *c, const char *access_key, struct account *acct,
                         char secret[SECRET_KEY_LEN + 1], struct kerr **err);

/* Instance profiles and their temporary credentials (credentials.c). kiln has no IAM: a profile
 * is a name the launch records, and its credentials act as the launching account, with all its
 * rights, until they expire or the instance terminates. */
#define IAM_PROFILE_NAME_MAX 128
#define IAM_PROFILE_ID_LEN   21 /* AIPA and 17 characters, as IAM's ids */
#define SESSION_KEY_LEN      20 /* ASIA and 16 */
#define SESSION_TOKEN_LEN    128
#define SESSION_LIFETIME_MS  ((int64_t)6 * 3600 * 1000)
#define SESSION_RENEW_MS     ((int64_t)15 * 60 * 1000) /* a fresh set when less remains */

/* Who temporary credentials speak for, besides the account: "" for an account's own keys. */
struct key_session {
	char instance[32];
	char profile[IAM_PROFILE_NAME_MAX + 1];
	char profile_id[IAM_PROFILE_ID_LEN + 1];
};

/* The caller behind an access key presented with a session token (NULL: none), and the secret
 * to check the signature with. KERR_NOT_FOUND: no such key (or its instance is gone).
 * KERR_AUTH about KERR_SUBJECT_SESSION_TOKEN: a temporary key without its token or with
 * another, or a token with an account's own key. KERR_LIMIT about KERR_SUBJECT_SESSION_TOKEN:
 * the temporary key has expired. */
int cloud_caller_by_key(struct cloud *c, const char *access_key, const char *token,
                        struct account *acct, struct key_session *session,
                        char secret[SECRET_KEY_LEN + 1], struct kerr **err);

/* An instance's profile and its current credentials, as its metadata service serves them. */
struct instance_credentials {
	char owner[ACCOUNT_ID_LEN + 1];
	char profile[IAM_PROFILE_NAME_MAX + 1];
	char profile_id[IAM_PROFILE_ID_LEN + 1];
	char access_key[SESSION_KEY_LEN + 1];
	char secret[SECRET_KEY_LEN + 1];
	char token[SESSION_TOKEN_LEN + 1];
	int64_t issued_ms, expires_ms; /* unix milliseconds */
};
/* The credentials of a pending or running instance launched with a profile: the current set
 * while more than SESSION_RENEW_MS of it remains, else a fresh one (SESSION_LIFETIME_MS; the
 * older stays valid until it expires, as EC2 rotates them). KERR_NOT_FOUND about
 * KERR_SUBJECT_INSTANCE_PROFILE when the instance has no profile, about KERR_SUBJECT_INSTANCE
 * when there is no such instance; KERR_CONFLICT when it is neither pending nor running. */
int cloud_instance_credentials(struct cloud *c, const char *instance_id,
                               struct instance_credentials *out, struct kerr **err);
/* The ARN of an account's instance profile, "arn:aws:iam::ACCOUNT:instance-profile/NAME". */
void cloud_instance_profile_arn(const char *owner, const char *profile, char *out, size_t size);

/* Where things live in the data directory (paths.c); malloc'd. */
char *cloud_zone_pool_dir(const struct cloud *c, const char *region, const char *zone);
/* KERR_NOSPACE (about the zone) when the zone's pool has less than CLOUD_POOL_SPACE_MIN
 * free: a launch or a new volume there would fail on its first writes, so RunInstances and
 * CreateVolume refuse at once (InsufficientInstanceCapacity, InsufficientVolumeCapacity). */
#define CLOUD_POOL_SPACE_MIN (64ull << 20)
int cloud_zone_space_check(const struct cloud *c, const char *region, const char *zone,
                           struct kerr **err);
/* Where region's block store is: DIR/regions/REGION/store, or the topology's s3:// URL with
 * the host's chunk cache of the region (DIR/regions/REGION/chunk-cache) added. */
char *cloud_store_dir(const struct cloud *c, const char *region);
/* Make a region's store: a new directory, or in object storage a store made there before
 * (by another host or data directory of the region) as it is, else a new one. */
int cloud_store_make(const char *where, struct kerr **err);
/* Open the stores in object storage of the regions served here: a store that cannot be reached
 * or read (no credentials, refused, not a store) fails the daemon's start, not a request. */
int cloud_stores_check(struct cloud *c, struct kerr **err);
/* The pool file that holds a snapshot's content, for reflink launches. */
char *cloud_base_name(const char *snapshot_id);
/* The wall clock in milliseconds since the epoch (cloud.c). */
int64_t cloud_now_ms(void);

#define IMAGE_VOLUMES_MAX 8
struct image_volume {
	char device[32];
	char snapshot[ID_MAX];
	uint64_t size_gib;
	bool delete_on_termination;
};

/* The states of an image (states.c); the name is the text the database keeps. EC2 names
 * IMAGE_DEREGISTERED; kiln removes the row instead, so no image is found in it. */
enum image_state {
	IMAGE_STATE_UNKNOWN = -1,
	IMAGE_PENDING,
	IMAGE_AVAILABLE,
	IMAGE_FAILED,
	IMAGE_DEREGISTERED,
	IMAGE_DISABLED,
};
const char *image_state_name(enum image_state s);
/* IMAGE_STATE_UNKNOWN for a name that is none. */
enum image_state image_state_parse(const char *name);

struct image {
	char id[ID_MAX];
	char region[32];
	char owner[ACCOUNT_ID_LEN + 1];
	char owner_alias[64];
	char name[128];
	char description[256];
	char state[16];
	bool public;
	char architecture[16];
	char root_device_name[32];
	char root_snapshot[ID_MAX];
	uint64_t root_size_gib;
	int64_t creation_ms;
	char source_instance[ID_MAX];                   /* CreateImage's, or "" */
	char state_reason[512];                         /* why it failed */
	struct image_volume volumes[IMAGE_VOLUMES_MAX]; /* mappings beside the root */
	size_t nvolumes;
	bool granted;           /* launch permission given to the caller by account id */
	int64_t deprecation_ms; /* when it is (or was) deprecated, 0: never */
	char product_codes[PRODUCT_CODES_MAX][PRODUCT_CODE_LEN + 1]; /* marketplace.c */
	size_t nproduct_codes;
};

/* Import a root filesystem (directory or tarball) as a public image of the provider account in
 * region: a volume in the region's first zone pool (kept as that zone's base), a snapshot in the
 * region's store, and the image and snapshot records. */
int cloud_import_public_image(struct cloud *c, const char *region, const char *name,
                              const char *description, const char *source, struct kerr **err);
/* busybox.tar and debian-12.tar from images_dir (those present) into every region. */
int cloud_import_public_images(struct cloud *c, const char *images_dir, struct kerr **err);
/* Images account may see in region: its own and the public ones, oldest first. */
int cloud_images_visible(struct cloud *c, const char *account, const char *region,
                         struct image **out, size_t *n, struct kerr **err);
/* One image, if account may see it; KERR_NOT_FOUND otherwise. */
int cloud_image_get(struct cloud *c, const char *account, const char *region, const char *id,
                    struct image *out, struct kerr **err);

/* RegisterImage from snapshots the caller owns: a private image, available at once.
 * KERR_INVALID for a bad name or size, KERR_CONFLICT for a name the owner has in the region
 * already, KERR_NOT_FOUND for a snapshot it cannot see, KERR_AUTH for one only shared with it
 * (CopySnapshot makes it the caller's), KERR_LIMIT past the images quota. */
struct image_request {
	const char *region, *name, *description, *root_device_name;
	const char *root_snapshot;
	uint64_t root_size_gib; /* 0: the snapshot's */
	struct image_volume
	    volumes[IMAGE_VOLUMES_MAX]; /* further mappings (size 0: the snapshot's) */
	size_t nvolumes;
	const struct tag *tags;
	size_t ntags;
};
/* "/dev/sdb" .. "/dev/sdz", "/dev/xvdb" .. "/dev/xvdz": the names EC2 takes for data volumes. */
bool cloud_device_name_valid(const char *device);
int cloud_image_register(struct cloud *c, const char *owner, const struct image_request *req,
                         struct image *out, struct kerr **err);
/* CreateImage: every volume attached to the instance (but those named in no_device) becomes a
 * snapshot. The image is "pending" at once; a worker stops a running instance (unless
 * no_reboot: then the root is frozen only while its copy is taken), takes the copies, starts it
 * again, stores the snapshots and makes the image "available", or "failed" with a reason. */
struct create_image_request {
	const char *region, *instance, *name, *description;
	bool no_reboot;
	const char *const *no_device; /* device names not to include */
	size_t nno_device;
	const struct tag *image_tags, *snapshot_tags;
	size_t nimage_tags, nsnapshot_tags;
};
int cloud_image_create(struct cloud *c, const char *owner, const struct create_image_request *req,
                       struct image *out, struct kerr **err);
/* launchPermission of the owner's image: account ids, and "all" when it is public. A shared
 * image is visible to and launchable by the grantee; KERR_AUTH for another's image. */
int cloud_image_permissions(struct cloud *c, const char *owner, const char *region, const char *id,
                            char (**grantees)[ACCOUNT_ID_LEN + 1], size_t *n, struct kerr **err);
/* Add and remove grantees ("all" makes it public); reset first removes them all. */
int cloud_image_permit(struct cloud *c, const char *owner, const char *region, const char *id,
                       const char *const *add, size_t nadd, const char *const *remove,
                       size_t nremove, bool reset, struct kerr **err);
int cloud_image_describe(struct cloud *c, const char *owner, const char *region, const char *id,
                         const char *description, struct kerr **err);
/* CopyImage into req->region from another region: the image and a copy of each of its
 * snapshots, pending at once; a worker moves only the chunks this region's store lacks. A
 * client token seen before answers the image it made. */
struct copy_image_request {
	const char *region, *src_region, *src_image, *name, *description, *client_token;
	const struct tag *tags;
	size_t ntags;
};
int cloud_image_copy(struct cloud *c, const char *owner, const struct copy_image_request *req,
                     struct image *out, struct kerr **err);
/* CopySnapshot into region of a snapshot of src_region the owner may restore. */
int cloud_snapshot_copy_from(struct cloud *c, const char *owner, const char *region,
                             const char *src_region, const char *src, const char *description,
                             const struct tag *tags, size_t ntags, char id[ID_MAX],
                             struct kerr **err);
/* EnableImageDeprecation (at_ms) and DisableImageDeprecation (0): the owner's image only. */
int cloud_image_deprecate(struct cloud *c, const char *owner, const char *region, const char *id,
                          int64_t at_ms, struct kerr **err);
/* DisableImage: "disabled", private again (every grant goes) and not launchable; EnableImage
 * makes it "available" again. The owner's image only; KERR_CONFLICT from the wrong state. */
int cloud_image_enable(struct cloud *c, const char *owner, const char *region, const char *id,
                       bool enable, struct kerr **err);
/* DeregisterImage: the image goes; its snapshots stay, as in EC2. KERR_AUTH when not the owner's.
 */
int cloud_image_deregister(struct cloud *c, const char *owner, const char *region, const char *id,
                           struct kerr **err);

/* Instances. */
/* The states of an instance (states.c); the name is the text the database keeps. */
enum instance_state {
	INSTANCE_STATE_UNKNOWN = -1,
	INSTANCE_PENDING,
	INSTANCE_RUNNING,
	INSTANCE_SHUTTING_DOWN,
	INSTANCE_TERMINATED,
	INSTANCE_STOPPING,
	INSTANCE_STOPPED,
};
const char *instance_state_name(enum instance_state s);
/* INSTANCE_STATE_UNKNOWN for a name that is none. */
enum instance_state instance_state_parse(const char *name);
/* Running or stopped: in no transition. */
bool instance_state_stable(enum instance_state s);
#define SG_PER_INSTANCE 5 /* EC2's security groups per network interface */

/* An instance's metadata options, as EC2 names their values. */
struct metadata_options {
	char http_tokens[16];   /* optional, required */
	char http_endpoint[16]; /* enabled, disabled */
	int hop_limit;          /* 1..64: the IP TTL of the token's answer */
	char tags[16];          /* enabled, disabled: tags/instance served */
};

struct instance {
	char id[ID_MAX];
	char region[32];
	char zone[32];
	char owner[ACCOUNT_ID_LEN + 1];
	char image[ID_MAX];
	char type[32];
	char state[16];
	char state_reason[1100];
	char private_ip[16];
	char reservation[ID_MAX];
	int launch_index;
	int64_t launch_ms;
	char root_volume[ID_MAX];
	uint64_t root_size_gib;
	bool delete_on_termination;
	char key_name[256];
	bool disable_api_termination; /* TerminateInstances refused */
	bool disable_api_stop;        /* StopInstances refused */
	char shutdown_behavior[16];   /* stop or terminate: what a shutdown inside it leads to */
	/* Its network (vpcs.c): filled when read. */
	char vpc[ID_MAX], subnet[ID_MAX], subnet_cidr[24], public_ip[16]; /* "" when none */
	unsigned vpc_net, subnet_net;         /* the VPC's and the subnet's net numbers */
	char groups[SG_PER_INSTANCE][ID_MAX]; /* its security groups */
	size_t ngroups;
	/* Its instance profile (credentials.c): "" when launched without one. */
	char iam_profile[IAM_PROFILE_NAME_MAX + 1], iam_profile_id[IAM_PROFILE_ID_LEN + 1];
	char iam_profile_arn[IAM_PROFILE_NAME_MAX + 64];
	struct metadata_options md; /* what its metadata service answers */
	char product_codes[PRODUCT_CODES_MAX][PRODUCT_CODE_LEN + 1]; /* its image's */
	size_t nproduct_codes;
};

/* A change of metadata options: NULL or has_hop_limit false where nothing changes. */
struct metadata_change {
	const char *http_tokens, *http_endpoint, *tags, *protocol_ipv6;
	bool has_hop_limit;
	long long hop_limit;
};

struct run_request {
	const char *region;
	const char *subnet;     /* NULL: the default subnet of the zone */
	const char *private_ip; /* NULL: the lowest free of the subnet (one instance only) */
	const char *const *group_ids, *const *group_names; /* none: the VPC's default group */
	size_t ngroup_ids, ngroup_names;
	int public_ip; /* 1: a public address, 0: none, -1: as the subnet maps them */
	const char *image;
	const char *type;
	const char *zone; /* NULL: the region's first */
	int min_count, max_count;
	const char *key_name;
	const uint8_t *user_data; /* decoded */
	size_t user_data_len;
	uint64_t root_size_gib; /* 0: the image's */
	bool keep_root; /* DeleteOnTermination false: the root volume outlives the instance */
	const char *client_token; /* NULL, or: a repeat answers what the first request did */
	const struct tag *instance_tags, *volume_tags; /* TagSpecification */
	size_t ninstance_tags, nvolume_tags;
	bool disable_api_termination, disable_api_stop;
	const char *shutdown_behavior; /* NULL: stop */
	/* IamInstanceProfile: a name, or an ARN of the caller's account; "" or NULL: none */
	const char *iam_profile_name, *iam_profile_arn;
	struct metadata_change md; /* MetadataOptions: what is not given keeps EC2's default */
};

struct state_change {
	char id[ID_MAX];
	char previous[16];
	char current[16];
};

/* The private DNS name of an address, as EC2 names it: ip-172-31-0-4.ec2.internal in
 * us-east-1, ip-….REGION.compute.internal elsewhere. */
void cloud_private_dns_name(const char *region, const char *ip, char *out, size_t size);
/* Metadata options (metadata.c). KERR_INVALID for a value EC2 does not take, and for
 * HttpProtocolIpv6 other than disabled (kiln's instances have no IPv6). */
int cloud_metadata_change_check(const struct metadata_change *m, struct kerr **err);
/* What a launch gets: m's values, EC2's defaults (optional, enabled, 1, disabled) elsewhere. */
void cloud_metadata_defaults(const struct metadata_change *m, struct metadata_options *out);
/* ModifyInstanceMetadataOptions: *out is the instance as it now is. */
int cloud_instance_metadata_modify(struct cloud *c, const char *owner, const char *region,
                                   const char *id, const struct metadata_change *m,
                                   struct instance *out, struct kerr **err);
/* The MAC of an instance's interface ("02:…", 18 bytes with the NUL), and its id ("eni-" and
 * the instance id's digits: an instance has one interface, made and gone with it). */
void cloud_instance_mac(const char *id, char out[18]);
void cloud_instance_interface_id(const char *id, char out[ID_MAX]);

/* What the metadata service tells an instance. */
struct instance_metadata {
	struct instance in;
	char mac[18];
	char hostname[80]; /* its private DNS name */
	char zone_id[32];
	char vpc_cidr[24];
	char group_names[SG_PER_INSTANCE][256]; /* in.groups' names */
	char architecture[16];
	char *public_key;   /* the key pair's OpenSSH line it was launched with, or NULL */
	uint8_t *user_data; /* as given at launch, or NULL */
	size_t user_data_len;
	struct tag *tags; /* its tags, by key */
	size_t ntags;
	char (*devices)[32]; /* its volumes' devices but the root's */
	size_t ndevices;
};
/* The running (or booting: pending) instance at private address addr of the VPC numbered vpc_net
 * (the VPCs' ranges overlap: the address alone names none); KERR_NOT_FOUND when there is none. */
int cloud_metadata_find(struct cloud *c, unsigned vpc_net, const char *addr,
                        struct instance_metadata *m, struct kerr **err);
void instance_metadata_release(struct instance_metadata *m);

/* The signatures of an identity document made for region (identity.c): RSA SHA-256 and a
 * detached PKCS #7 SignedData, both base64 (malloc'd), with the region's key, made on first use
 * with its self-signed certificate at cloud_identity_cert_path. */
int cloud_identity_sign(struct cloud *c, const char *region, const char *doc, size_t len,
                        char **signature, char **pkcs7, struct kerr **err);
char *cloud_identity_cert_path(const struct cloud *c, const char *region);

/* The daemon's hook on VPC namespaces (vpc_filter.c): up after a VPC's namespace is made or
 * brought back (every launch in it: the hook ignores what it knows), down before it goes. Both
 * run with cloud's locks held: they may not call back into cloud. */
struct cloud_vpc_hook {
	void (*up)(void *ctx, unsigned net, const char *pin);
	void (*down)(void *ctx, unsigned net);
	void *ctx;
};
void cloud_vpc_hook_set(struct cloud *c, const struct cloud_vpc_hook *h);
/* At the daemon's start: each VPC namespace there is brought up to date (net_vpc_ensure), then
 * hook->up for it. */
int cloud_vpc_networks_up(struct cloud *c, struct kerr **err);

/* EC2's numeric state codes (pending 0, running 16, ...; states.c). */
int cloud_instance_state_code(const char *state);
/* Instances need the runtime: kiln-shim and kiln-init, and DIR/run for their state. */
int cloud_attach_runtime(struct cloud *c, const char *shim_path, const char *init_path,
                         struct kerr **err);
/* Record the instances as pending and start booting them; *out lists them. */
int cloud_run_instances(struct cloud *c, const char *owner, const struct run_request *req,
                        struct instance **out, size_t *n, struct kerr **err);
/* The caller's instances in region (terminated ones for an hour), oldest first. */
int cloud_instances_list(struct cloud *c, const char *owner, const char *region,
                         struct instance **out, size_t *n, struct kerr **err);
/* action: "start", "stop", "reboot" or "terminate"; all ids are checked before any changes. */
int cloud_instances_change(struct cloud *c, const char *owner, const char *region,
                           const char *action, const char **ids, size_t n, bool force,
                           struct state_change **out, struct kerr **err);
/* The console output of an instance (all of it; the API keeps the last 64 KiB). */
int cloud_instance_console(struct cloud *c, const char *owner, const char *region, const char *id,
                           uint8_t **out, size_t *len, struct kerr **err);
/* A command running in an instance (kiln exec). */
struct cloud_exec;
/* Start argv in the caller's running instance with stdio[0..2] as its stdin, stdout and stderr
 * (not found for another account's or region's; KERR_CONFLICT unless running). */
int cloud_instance_exec(struct cloud *c, const char *owner, const char *region, const char *id,
                        char *const argv[], const int stdio[3], struct cloud_exec **out,
                        struct kerr **err) __attribute__((warn_unused_result));
/* Readable once the command has ended. */
int cloud_exec_fd(const struct cloud_exec *x);
/* SIGINT, SIGTERM or SIGHUP to the command's process group inside the instance. */
int cloud_exec_signal(struct cloud_exec *x, int sig, struct kerr **err);
/* Wait for the end and free x: *exit_status as from a shell (128 + signal when killed); with
 * exit_status NULL, free x at once and leave the command running. */
int cloud_exec_end(struct cloud_exec *x, int *exit_status, struct kerr **err);
/* ModifyInstanceAttribute: a stopped instance's type (NULL: unchanged) and user data (NULL:
 * unchanged; empty: removed). KERR_CONFLICT unless stopped. */
/* What a shutdown inside an instance leads to: "stop" or "terminate". */
bool cloud_shutdown_behavior_valid(const char *s);
/* ModifyInstanceAttribute's flags, in any state but terminated. */
struct instance_flags {
	int disable_api_termination, disable_api_stop; /* 0 or 1; -1: unchanged */
	const char *shutdown_behavior;                 /* NULL: unchanged */
};
int cloud_instance_set_flags(struct cloud *c, const char *owner, const char *region, const char *id,
                             const struct instance_flags *f, struct kerr **err);
/* The instance's user data, decoded (*out NULL and *len 0 when it has none). */
int cloud_instance_user_data(struct cloud *c, const char *owner, const char *region, const char *id,
                             uint8_t **out, size_t *len, struct kerr **err);
/* Watching running instances (watch.c): a PID 1 that ended of itself stops or terminates its
 * instance, as its shutdown behaviour says. The daemon starts it after cloud_reconcile. */
int cloud_watch_start(struct cloud *c, struct kerr **err);
void cloud_watch_stop(struct cloud *c);
/* The stores' automatic gc (gc.c): a region's store is collected once its deletions have been
 * quiet for interval_s, and at most once per interval_s; 0: never (kiln store gc by hand). */
int cloud_gc_start(struct cloud *c, unsigned interval_s, struct kerr **err);
/* A snapshot of region's store was deleted: its chunks may be garbage now. */
void cloud_gc_request(struct cloud *c, const char *region);
void cloud_gc_stop(struct cloud *c);
int cloud_instance_modify(struct cloud *c, const char *owner, const char *region, const char *id,
                          const char *type, const uint8_t *user_data, size_t user_data_len,
                          struct kerr **err);
/* The status checks: "ok" or "impaired" for a running instance (system: its shim holds it;
 * instance: its PID 1 lives), "not-applicable" otherwise. */
void cloud_instance_health(struct cloud *c, const struct instance *in, const char **system,
                           const char **instance);
/* After a (re)start of the daemon: finish every change that was in flight. */
int cloud_reconcile(struct cloud *c, struct kerr **err);

/* Volumes (EBS): files in a zone's pool; root volumes of instances are volumes too. */
/* The states of a volume (states.c); the name is the text the database keeps. */
enum volume_state {
	VOLUME_STATE_UNKNOWN = -1,
	VOLUME_CREATING,
	VOLUME_AVAILABLE,
	VOLUME_IN_USE,
	VOLUME_DELETING,
	VOLUME_DELETED,
	VOLUME_ERROR,
};
const char *volume_state_name(enum volume_state s);
/* VOLUME_STATE_UNKNOWN for a name that is none. */
enum volume_state volume_state_parse(const char *name);

struct volume {
	char id[ID_MAX];
	char region[32];
	char zone[32];
	char owner[ACCOUNT_ID_LEN + 1];
	uint64_t size_gib;
	char snapshot[ID_MAX]; /* what it was made from, or "" */
	char type[16];
	char state[16]; /* creating, available, in-use, deleting, error */
	char state_reason[512];
	int64_t create_ms;
	char instance[ID_MAX]; /* attachment, or "" */
	char device[32];
	char attach_state[16]; /* attaching, attached, detaching */
	int64_t attach_ms;
	bool delete_on_termination;
	char last_snapshot[ID_MAX]; /* the newest snapshot, the parent of the next */
};

struct volume_request {
	const char *region, *zone;
	uint64_t size_gib;        /* 0: the snapshot's */
	const char *snapshot;     /* or NULL for a blank volume */
	const char *type;         /* NULL: gp3 */
	const char *client_token; /* NULL, or: a repeat answers the volume it made */
	const struct tag *tags;
	size_t ntags;
};

/* For DescribeVolumeStatus: io_ok[i] says whether v[i]'s block file is there in its zone's pool,
 * where its I/O goes. */
void cloud_volumes_io_check(struct cloud *c, const struct volume *v, size_t n, bool *io_ok);
int cloud_volumes_list(struct cloud *c, const char *owner, const char *region, struct volume **out,
                       size_t *n, struct kerr **err);
int cloud_volume_get(struct cloud *c, const char *owner, const char *region, const char *id,
                     struct volume *out, struct kerr **err);
/* The new volume is "creating"; a worker makes its file (a clone of the zone's base of the
 * snapshot, or a blank sparse file) and makes it "available". */
int cloud_volume_create(struct cloud *c, const char *owner, const struct volume_request *req,
                        struct volume *out, struct kerr **err);
/* device: "/dev/sdf" or "/dev/xvdf". On failure the error's subject says which rule refused it
 * (the volume, the instance, the device or the zone). */
int cloud_volume_attach(struct cloud *c, const char *owner, const char *region, const char *volume,
                        const char *instance, const char *device, struct volume *out,
                        struct kerr **err);
int cloud_volume_detach(struct cloud *c, const char *owner, const char *region, const char *volume,
                        const char *instance, bool force, struct volume *out, struct kerr **err);
int cloud_volume_delete(struct cloud *c, const char *owner, const char *region, const char *volume,
                        struct kerr **err);

/* Snapshots (EBS): manifests in the region's block store, each incremental against the
 * volume's previous one; only the blocks that changed since are read (the pool's shadow). */
/* The states of a snapshot (states.c); the name is the text the database keeps. */
enum snapshot_state {
	SNAPSHOT_STATE_UNKNOWN = -1,
	SNAPSHOT_PENDING,
	SNAPSHOT_COMPLETED,
	SNAPSHOT_ERROR,
};
const char *snapshot_state_name(enum snapshot_state s);
/* SNAPSHOT_STATE_UNKNOWN for a name that is none. */
enum snapshot_state snapshot_state_parse(const char *name);

struct snapshot {
	char id[ID_MAX];
	char region[32];
	char owner[ACCOUNT_ID_LEN + 1];
	char owner_alias[64];
	char volume[ID_MAX];
	uint64_t volume_size_gib;
	char state[16]; /* pending, completed, error */
	int progress;   /* percent */
	char description[256];
	char state_message[512];
	int64_t start_ms;
	bool public;     /* createVolumePermission has the group all */
	bool restorable; /* by the caller: its own, shared with it, or public */
};

/* The snapshot is "pending" at once and a point-in-time copy of the volume (a frozen reflink
 * of a running root, a reflink otherwise); a worker stores it and makes it "completed". */
int cloud_snapshot_create(struct cloud *c, const char *owner, const char *region,
                          const char *volume, const char *description, const struct tag *tags,
                          size_t ntags, struct snapshot *out, struct kerr **err);
/* What the caller may see in region: its own, those shared with it, the public ones. */
int cloud_snapshots_visible(struct cloud *c, const char *caller, const char *region,
                            struct snapshot **out, size_t *n, struct kerr **err);
/* KERR_CONFLICT with the image's id in the message when an image uses it. */
int cloud_snapshot_delete(struct cloud *c, const char *owner, const char *region, const char *id,
                          struct kerr **err);
/* createVolumePermission: the grantees (account ids, or "all" for the public). */
int cloud_snapshot_permissions(struct cloud *c, const char *owner, const char *region,
                               const char *id, char (**grantees)[ACCOUNT_ID_LEN + 1], size_t *n,
                               struct kerr **err);
int cloud_snapshot_permit(struct cloud *c, const char *owner, const char *region, const char *id,
                          const char *const *add, size_t nadd, const char *const *remove,
                          size_t nremove, struct kerr **err);

/* VPCs and subnets (vpcs.c). Every account has a default VPC 172.31.0.0/16 in each region
 * with a default subnet per zone (the zone's /20), made at its first use there. A VPC's net and
 * a subnet's net are small numbers unique on the host (lowest free), fixed for the row's life:
 * they name the VPC's network namespace and the subnet's bridge. */
struct vpc {
	char id[ID_MAX];
	char region[32];
	char owner[ACCOUNT_ID_LEN + 1];
	char cidr[24];
	bool is_default;
	int64_t created_ms;
	unsigned net;
};

struct subnet {
	char id[ID_MAX];
	char vpc[ID_MAX];
	char region[32];
	char zone[32];
	char zone_id[32];
	char owner[ACCOUNT_ID_LEN + 1];
	char cidr[24];
	bool map_public, is_default;
	int64_t created_ms;
	unsigned net;
	uint64_t available; /* addresses free: all but EC2's five reserved and the instances' */
};

/* The account's default VPC in region, made (with its subnets and default group, and adopting
 * the instances recorded before VPCs existed) when it has never had one. Not inside a
 * transaction. */
int cloud_vpc_default_ensure(struct cloud *c, const char *owner, const char *region,
                             struct kerr **err);
int cloud_vpcs_list(struct cloud *c, const char *owner, const char *region, struct vpc **out,
                    size_t *n, struct kerr **err);
int cloud_vpc_get(struct cloud *c, const char *owner, const char *region, const char *id,
                  struct vpc *out, struct kerr **err);
/* The default VPC; KERR_NOT_FOUND about KERR_SUBJECT_DEFAULT_VPC when the account deleted it. */
int cloud_vpc_default(struct cloud *c, const char *owner, const char *region, struct vpc *out,
                      struct kerr **err);
/* CreateVpc: cidr a /16 to /28 (KERR_INVALID about KERR_SUBJECT_VPC_RANGE), with its default
 * security group. */
int cloud_vpc_create(struct cloud *c, const char *owner, const char *region, const char *cidr,
                     const struct tag *tags, size_t ntags, struct vpc *out, struct kerr **err);
/* CreateDefaultVpc: KERR_CONFLICT about KERR_SUBJECT_DEFAULT_VPC when there is one. */
int cloud_vpc_create_default(struct cloud *c, const char *owner, const char *region,
                             struct vpc *out, struct kerr **err);
/* KERR_CONFLICT about KERR_SUBJECT_VPC while it has subnets, instances or groups but its
 * default one. */
int cloud_vpc_delete(struct cloud *c, const char *owner, const char *region, const char *id,
                     struct kerr **err);
int cloud_subnets_list(struct cloud *c, const char *owner, const char *region, struct subnet **out,
                       size_t *n, struct kerr **err);
int cloud_subnet_get(struct cloud *c, const char *owner, const char *region, const char *id,
                     struct subnet *out, struct kerr **err);
struct subnet_request {
	const char *region, *vpc, *cidr;
	const char *zone, *zone_id; /* at most one; neither: the region's first zone */
	const struct tag *tags;
	size_t ntags;
};
/* CreateSubnet: the cidr inside the VPC's (KERR_INVALID about KERR_SUBJECT_SUBNET_RANGE), /16
 * to /28, overlapping no other subnet of it (KERR_CONFLICT about KERR_SUBJECT_SUBNET_RANGE). */
int cloud_subnet_create(struct cloud *c, const char *owner, const struct subnet_request *req,
                        struct subnet *out, struct kerr **err);
/* KERR_CONFLICT about KERR_SUBJECT_SUBNET while instances use it. */
int cloud_subnet_delete(struct cloud *c, const char *owner, const char *region, const char *id,
                        struct kerr **err);
int cloud_subnet_map_public(struct cloud *c, const char *owner, const char *region, const char *id,
                            bool map, struct kerr **err);
/* The range of instances' public addresses of the data directory (topology line
 * "public-addresses CIDR"); "" when the topology named none and no daemon has chosen one yet
 * (the daemon picks a /20 of 198.18.0.0/15 that no other data directory of the host uses, and
 * records it with cloud_public_range_set). */
int cloud_public_range(struct cloud *c, char out[24], struct kerr **err);
int cloud_public_range_set(struct cloud *c, const char *range, struct kerr **err);
/* The data directory's host id (settings 'host-id': the topology's, or made from a hash of the
 * directory's real path when it is first opened): its transit links and its table of the
 * host's filter are named after it (net.h), so that data directories on one host never touch
 * each other's. */
const char *cloud_host_id(const struct cloud *c);
/* The host's end of the transit link of VPC net. */
void cloud_transit_name(const struct cloud *c, unsigned net, char out[16]);
/* kiln host down: every VPC's namespace goes (with the instances' ports in it). */
int cloud_networks_down(struct cloud *c, struct kerr **err);

/* Security groups (security_groups.c). Every VPC has a group "default": all inbound from its
 * own members, all outbound. A new group allows nothing inbound and everything outbound. */
#define SG_NAME_MAX 255
struct security_group {
	char id[ID_MAX];
	char vpc[ID_MAX];
	char region[32];
	char owner[ACCOUNT_ID_LEN + 1];
	char name[SG_NAME_MAX + 1];
	char description[SG_NAME_MAX + 1];
};

struct sg_rule {
	char id[ID_MAX]; /* sgr- */
	char group[ID_MAX];
	char owner[ACCOUNT_ID_LEN + 1]; /* the group's (filled when listed) */
	bool egress;
	char protocol[8];       /* "-1", "tcp", "udp", "icmp", or a protocol number */
	int from_port, to_port; /* -1 for all (icmp: type and code) */
	char cidr[24];          /* or "" */
	char ref_group[ID_MAX]; /* or "" */
	char description[SG_NAME_MAX + 1];
};

int cloud_groups_list(struct cloud *c, const char *owner, const char *region,
                      struct security_group **out, size_t *n, struct kerr **err);
/* By id (name NULL) or by name in vpc (NULL: the default VPC). */
int cloud_group_find(struct cloud *c, const char *owner, const char *region, const char *id,
                     const char *name, const char *vpc, struct security_group *out,
                     struct kerr **err);
/* KERR_CONFLICT about KERR_SUBJECT_GROUP_NAME when the VPC has that name. */
int cloud_group_create(struct cloud *c, const char *owner, const char *region, const char *vpc,
                       const char *name, const char *description, const struct tag *tags,
                       size_t ntags, struct security_group *out, struct kerr **err);
/* KERR_INVALID about KERR_SUBJECT_DEFAULT_GROUP for a default group; KERR_CONFLICT about
 * KERR_SUBJECT_GROUP while instances or other groups' rules use it. */
int cloud_group_delete(struct cloud *c, const char *owner, const char *region, const char *id,
                       struct kerr **err);
/* The rules of the owner's groups in region, by group. */
int cloud_group_rules(struct cloud *c, const char *owner, const char *region, struct sg_rule **out,
                      size_t *n, struct kerr **err);
/* Authorize: every rule new (KERR_CONFLICT about KERR_SUBJECT_PERMISSION otherwise); their
 * ids are written back into rules. Revoke: every rule present (KERR_NOT_FOUND), matched by
 * value, or by id when a rule has one. A rule's group field is ignored: group names them. */
int cloud_group_authorize(struct cloud *c, const char *owner, const char *region, const char *group,
                          bool egress, struct sg_rule *rules, size_t n, struct kerr **err);
int cloud_group_revoke(struct cloud *c, const char *owner, const char *region, const char *group,
                       bool egress, const struct sg_rule *rules, size_t n, struct kerr **err);
/* ModifyInstanceAttribute GroupId.N: the instance's groups become these (1 to 5, of its VPC). */
int cloud_instance_set_groups(struct cloud *c, const char *owner, const char *region,
                              const char *instance, const char *const *groups, size_t n,
                              struct kerr **err);

/* Tags. */
#define TAG_KEY_MAX   128
#define TAG_VALUE_MAX 256

struct tag {
	char resource[ID_MAX]; /* unused where tags are given for a resource */
	char key[TAG_KEY_MAX + 1];
	char value[TAG_VALUE_MAX + 1];
};

struct tag_set {
	struct tag *v; /* by resource, then key */
	size_t n;
};

/* "instance", "volume", "snapshot", "image", "launch-template", or NULL for an id of nothing
 * taggable. */
const char *cloud_resource_type(const char *id);
/* KERR_INVALID for a key or value EC2 refuses. */
int cloud_tag_check(const struct tag *t, struct kerr **err);
/* Set tags on one resource known to be the owner's (inside the caller's transaction or not):
 * KERR_LIMIT past 50 tags. */
int cloud_tags_put(struct cloud *c, const char *owner, const char *region, const char *id,
                   const struct tag *tags, size_t n, struct kerr **err);
/* CreateTags: every id must be the owner's (KERR_NOT_FOUND names the first that is not). */
int cloud_tags_create(struct cloud *c, const char *owner, const char *region, const char **ids,
                      size_t nids, const struct tag *tags, size_t ntags, struct kerr **err);
/* DeleteTags: a key removes its tag, with_value[k] only when the value matches too; no tags
 * at all removes every tag of the resources. */
int cloud_tags_delete(struct cloud *c, const char *owner, const char *region, const char **ids,
                      size_t nids, const struct tag *tags, const bool *with_value, size_t ntags,
                      struct kerr **err);
/* Every tag the owner has set in region. */
int cloud_tags_list(struct cloud *c, const char *owner, const char *region, struct tag_set *out,
                    struct kerr **err);
void tag_set_release(struct tag_set *s);
/* The tags of one resource (n of them, or NULL). */
const struct tag *tag_set_of(const struct tag_set *s, const char *resource, size_t *n);

/* Key pairs (keypairs.c): SSH public keys an account keeps per region under a name. kiln keeps
 * no private key: CreateKeyPair hands it out once. */
#define KEY_NAME_MAX   255
#define KEY_PUBLIC_MAX 8192 /* an OpenSSH public key line */

struct key_pair {
	char id[ID_MAX]; /* key-… */
	char region[32];
	char owner[ACCOUNT_ID_LEN + 1];
	char name[KEY_NAME_MAX + 1];
	char type[16];        /* rsa, ed25519 */
	char fingerprint[64]; /* EC2's: see util/sshkey.h */
	char public_key[KEY_PUBLIC_MAX];
	int64_t create_ms;
};

struct key_pair_request {
	const char *region, *name;
	const char *type;        /* "rsa" (NULL) or "ed25519" */
	const char *format;      /* "pem" (NULL) or "ppk": CreateKeyPair's private key file */
	const uint8_t *material; /* ImportKeyPair: an OpenSSH public key line */
	size_t material_len;
	const struct tag *tags;
	size_t ntags;
};

/* CreateKeyPair: a new key; *private_key (malloc'd) is its private key file, kept nowhere.
 * KERR_CONFLICT about KERR_SUBJECT_KEY_PAIR for a name the owner has in the region. */
int cloud_key_pair_create(struct cloud *c, const char *owner, const struct key_pair_request *req,
                          struct key_pair *out, char **private_key, struct kerr **err);
/* ImportKeyPair: KERR_INVALID about KERR_SUBJECT_KEY_MATERIAL for what is not an RSA (2048 bits
 * or more) or Ed25519 OpenSSH public key. */
int cloud_key_pair_import(struct cloud *c, const char *owner, const struct key_pair_request *req,
                          struct key_pair *out, struct kerr **err);
/* The owner's key pairs in region, oldest first. */
int cloud_key_pairs_list(struct cloud *c, const char *owner, const char *region,
                         struct key_pair **out, size_t *n, struct kerr **err);
/* DeleteKeyPair by id (KERR_NOT_FOUND when the owner has none such) or by name (a name it does
 * not have is no error, as in EC2); deleted is the id removed, or "". Instances launched with
 * the key keep it. */
int cloud_key_pair_delete(struct cloud *c, const char *owner, const char *region, const char *name,
                          const char *id, char deleted[ID_MAX], struct kerr **err);

/* The marketplace (marketplace.c). A product is a seller's image published by the operator
 * (until the Catalog API exists): the marketplace account gets its own copy of the image, made
 * public, with the product's code on it and its snapshots, and the product's one public offer
 * is its pricing with a price per allowed instance type. */
#define PRODUCT_TYPES_MAX 16
#define PRODUCT_ID_MAX    32
#define AGREEMENT_ID_MAX  40
/* Money is kept in millionths of a dollar (integers: no binary floating point in money). */
struct product_type {
	char type[32];
	int64_t price_micros; /* per instance-hour (0 for free and BYOL) */
};
/* A usage dimension: what MeterUsage reports, at a price per unit. */
#define PRODUCT_DIMENSIONS_MAX 24
#define USAGE_DIMENSION_MAX    256
struct usage_dimension {
	char key[USAGE_DIMENSION_MAX];
	int64_t price_micros; /* per unit */
};
struct product {
	char code[PRODUCT_CODE_LEN + 1];
	char id[PRODUCT_ID_MAX]; /* prod-… */
	char seller[ACCOUNT_ID_LEN + 1];
	char title[256];
	char pricing[8];                              /* free, byol or hourly */
	struct product_type types[PRODUCT_TYPES_MAX]; /* none: every instance type */
	size_t ntypes;
	int64_t created_ms;
	char image[ID_MAX]; /* the marketplace's image of the product, in region */
	char region[32];
	struct usage_dimension dims[PRODUCT_DIMENSIONS_MAX];
	size_t ndims;
};
struct product_request {
	const char *seller, *region, *image, *title;
	const char *pricing; /* free, byol or hourly (which needs a price for every type) */
	const struct product_type *types;
	size_t ntypes;
	const struct usage_dimension *dims; /* metered with MeterUsage, any pricing */
	size_t ndims;
};
/* Publish the seller's available image as a product: the marketplace account copies it
 * (the seller's image is shared with it for that, as AWS's ingestion reads it through the
 * seller's role), the copy is made public with a new product code on it and its snapshots,
 * and the product and its prices are recorded. Waits for the copy. */
int cloud_product_create(struct cloud *c, const struct product_request *req, struct product *out,
                         struct kerr **err);
/* Every product, oldest first; by code or prod- id (KERR_NOT_FOUND). */
int cloud_products_list(struct cloud *c, struct product **out, size_t *n, struct kerr **err);
int cloud_product_get(struct cloud *c, const char *code_or_id, struct product *out,
                      struct kerr **err);
/* The product codes of an image, snapshot, volume or instance. */
int cloud_product_codes(struct cloud *c, const char *resource, char (*codes)[PRODUCT_CODE_LEN + 1],
                        size_t *n, struct kerr **err);
/* A price "0.15" (at most 6 decimals) to micro-dollars, and back ("0.15", at least 2
 * decimals). */
int cloud_money_parse(const char *s, int64_t *micros, struct kerr **err);
void cloud_money_format(int64_t micros, char out[32]);
/* Subscriptions of an account to products: one active at most per product. Subscribing again
 * while subscribed answers the active one; cancelling stops new launches (running instances
 * keep running and keep being billed). */
struct subscription {
	char id[AGREEMENT_ID_MAX]; /* agmt-… */
	char account[ACCOUNT_ID_LEN + 1];
	char product[PRODUCT_CODE_LEN + 1];
	char product_id[PRODUCT_ID_MAX];
	char seller[ACCOUNT_ID_LEN + 1];
	char title[256];
	int64_t start_ms, end_ms; /* end_ms 0: active */
};
int cloud_subscribe(struct cloud *c, const char *account, const char *product,
                    struct subscription *out, struct kerr **err);
int cloud_unsubscribe(struct cloud *c, const char *account, const char *product, struct kerr **err);
/* The account's subscriptions, cancelled ones included, oldest first. */
int cloud_subscriptions_list(struct cloud *c, const char *account, struct subscription **out,
                             size_t *n, struct kerr **err);
/* The Agreement API's view of subscriptions (metering.c). A product's one public offer is
 * offer-CODE, its one term (its pricing) term-CODE. CreateAgreementRequest: a request of
 * account for the offer (or the product's code or prod- id) with those terms, idempotent by
 * client_token; KERR_NOT_FOUND about KERR_SUBJECT_AGREEMENT for an unknown offer, KERR_INVALID
 * for a term that is not the offer's. */
#define AGREEMENT_REQUEST_ID_MAX 40
int cloud_agreement_request_create(struct cloud *c, const char *account, const char *proposal,
                                   const char *const *terms, size_t nterms,
                                   const char *client_token, char id[AGREEMENT_REQUEST_ID_MAX],
                                   struct kerr **err);
/* AcceptAgreementRequest: the account's request becomes a subscription (its agreement).
 * KERR_CONFLICT about KERR_SUBJECT_AGREEMENT when the request was accepted already or the
 * account has an active agreement for the product. */
int cloud_agreement_request_accept(struct cloud *c, const char *account, const char *request,
                                   struct subscription *out, struct kerr **err);
/* An agreement the caller is a party to (acceptor or the product's seller), else
 * KERR_NOT_FOUND about KERR_SUBJECT_AGREEMENT. */
int cloud_agreement_get(struct cloud *c, const char *caller, const char *id,
                        struct subscription *out, struct kerr **err);
/* Every agreement the caller is a party to, newest first. */
int cloud_agreements_of(struct cloud *c, const char *caller, struct subscription **out, size_t *n,
                        struct kerr **err);
/* CancelAgreement by its acceptor: as cloud_unsubscribe (KERR_CONFLICT when not active). */
int cloud_agreement_cancel(struct cloud *c, const char *caller, const char *id, struct kerr **err);

/* Metering (metering.c): usage of a product's dimension, one record per hour (the timestamp
 * rounded down) per dimension and per instance (MeterUsage) or customer (BatchMeterUsage).
 * The same record again answers the same id; another quantity for the same hour is
 * KERR_CONFLICT about KERR_SUBJECT_USAGE_RECORD. Timestamps more than 6 hours before the
 * metering clock, or in a later hour, are KERR_INVALID about KERR_SUBJECT_USAGE_TIME; an
 * unknown product KERR_NOT_FOUND about KERR_SUBJECT_PRODUCT_CODE; a dimension the product does
 * not have KERR_INVALID about KERR_SUBJECT_USAGE_DIMENSION. */
#define METERING_RECORD_ID_MAX 48
#define METERING_MAX_AGE_MS    ((int64_t)6 * 3600 * 1000)
struct meter_request {
	const char *product, *dimension;
	int64_t timestamp_ms;
	int64_t quantity; /* 0 .. 2147483647 */
};
/* MeterUsage from caller in region: with an instance's credentials (instance not ""), the
 * instance is the customer's (its owner's) and must carry the product's code (else KERR_AUTH
 * about KERR_SUBJECT_PRODUCT_CODE) and be in region (else KERR_INVALID about
 * KERR_SUBJECT_REGION); with an account's keys, the account needs an active subscription.
 * dry_run: every check, nothing recorded, id left "". */
int cloud_meter_usage(struct cloud *c, const char *caller, const char *instance, const char *region,
                      const struct meter_request *req, bool dry_run,
                      char id[METERING_RECORD_ID_MAX], struct kerr **err);
/* BatchMeterUsage by the product's seller (else KERR_NOT_FOUND about the product code): one
 * status per record, customers[i] the account; every timestamp and dimension is checked before
 * any record is made (one bad: the whole batch refused). */
enum meter_status { METER_SUCCESS, METER_NOT_SUBSCRIBED, METER_DUPLICATE };
int cloud_batch_meter_usage(struct cloud *c, const char *caller, const char *region,
                            const char *product, const struct meter_request *records,
                            const char *const *customers, size_t n, enum meter_status *status,
                            char (*ids)[METERING_RECORD_ID_MAX], struct kerr **err);

/* ConfirmProductInstance: *ok when caller is the seller of code and the instance (of any
 * account, in region) carries it; then owner is the instance's owner. */
int cloud_product_instance_confirm(struct cloud *c, const char *caller, const char *region,
                                   const char *instance, const char *code, bool *ok,
                                   char owner[ACCOUNT_ID_LEN + 1], struct kerr **err);
/* The metering clock: the wall clock plus the test clock's offset. The test clock can only be
 * moved forward while the daemon runs with --test-clock (cloud_test_clock_enable). */
int64_t cloud_meter_now_ms(struct cloud *c);
int cloud_test_clock_enable(struct cloud *c, bool on, struct kerr **err);
int cloud_test_clock_advance(struct cloud *c, int64_t ms, struct kerr **err);
/* Bills from the recorded state changes: per instance of a product and month, its hours of
 * running, each run rounded up to whole started hours, at its offer's price for the instance
 * type (free and BYOL: 0). A run's started hours are counted from its start, each billed in
 * the (UTC) month in which it starts: a run over a month's end is split there without adding
 * an hour. buyer and seller (NULL: any) select the lines, month ("2026-12", NULL: all) their
 * month. */
struct bill_line {
	char product[PRODUCT_CODE_LEN + 1];
	char title[256];
	char seller[ACCOUNT_ID_LEN + 1];
	char buyer[ACCOUNT_ID_LEN + 1];
	char instance[ID_MAX];
	char region[32];
	char type[32];
	char pricing[8];
	char month[8]; /* 2026-12 */
	uint64_t hours;
	int64_t price_micros, amount_micros;
	/* A line of metered usage (else ""): its dimension and units, at price_micros each;
	 * instance is "" for usage metered per customer. Usage is in the month of its hour. */
	char dimension[USAGE_DIMENSION_MAX];
	uint64_t quantity;
};
int cloud_bill(struct cloud *c, const char *buyer, const char *seller, const char *month,
               struct bill_line **out, size_t *n, struct kerr **err);
/* A run from since to until: its started hours (the first from since, each next one an hour
 * later), each added to the month in which it starts (v grows). The total is the run rounded
 * up to whole hours, as without months. */
struct month_hours {
	char month[8];
	uint64_t hours;
};
void cloud_run_hours(int64_t since, int64_t until, struct month_hours **v, size_t *n);
/* "2026-12" to the first millisecond of that month (UTC); KERR_INVALID when it is no month. */
int cloud_month_parse(const char *s, int64_t *start_ms, struct kerr **err);
/* A seller's report: per month and product, the accounts subscribed at any time in the month,
 * and the instance-hours, usage units and revenue of the seller's bill lines (cloud_bill with
 * seller and month); months with subscribers and no use are rows too. Oldest month first. */
struct report_row {
	char month[8];
	char product[PRODUCT_CODE_LEN + 1];
	char title[256];
	uint64_t subscribers, hours, usage;
	int64_t revenue_micros;
};
int cloud_marketplace_report(struct cloud *c, const char *seller, const char *month,
                             const struct bill_line *lines, size_t nlines, struct report_row **out,
                             size_t *n, struct kerr **err);
/* An account by id or name (KERR_NOT_FOUND about KERR_SUBJECT_ACCOUNT). */
int cloud_account_find(struct cloud *c, const char *id_or_name, struct account *out,
                       struct kerr **err);

#endif
