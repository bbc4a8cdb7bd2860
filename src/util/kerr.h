/* The one error convention of kiln: see docs/design/errors.md. */
#ifndef KILN_KERR_H
#define KILN_KERR_H

#include <stdarg.h>

enum kerr_kind {
	KERR_INTERNAL = 0,
	KERR_INVALID,   /* bad input from the caller */
	KERR_NOT_FOUND, /* the named thing does not exist */
	KERR_CONFLICT,  /* exists already, in use, wrong state */
	KERR_LIMIT,     /* a size or count limit was reached */
	KERR_AUTH,      /* not allowed */
	KERR_IO,        /* the operating system failed us */
	KERR_NOSPACE,   /* out of disk space */
	KERR_CORRUPT,   /* stored data fails its checks */
	KERR__COUNT
};

/* What an error is about, set where the error is raised: with the kind, it is all the API needs to
 * name EC2's code (src/api/errors.c), so no one reads the message to decide. */
enum kerr_subject {
	KERR_SUBJECT_NONE = 0,
	KERR_SUBJECT_INSTANCE,
	KERR_SUBJECT_INSTANCE_TYPE,
	KERR_SUBJECT_IMAGE,
	KERR_SUBJECT_IMAGE_NAME,
	KERR_SUBJECT_SNAPSHOT,
	KERR_SUBJECT_VOLUME,
	KERR_SUBJECT_ATTACHMENT, /* a volume's attachment to an instance */
	KERR_SUBJECT_DEVICE,     /* a device name in an instance */
	KERR_SUBJECT_ZONE,
	KERR_SUBJECT_REGION,
	KERR_SUBJECT_ACCOUNT,
	KERR_SUBJECT_KEY, /* an access key */
	KERR_SUBJECT_TAG,
	KERR_SUBJECT_CLIENT_TOKEN,
	KERR_SUBJECT_ADDRESS,                 /* an instance's address in its subnet */
	KERR_SUBJECT_LAUNCH_TEMPLATE,         /* by id */
	KERR_SUBJECT_LAUNCH_TEMPLATE_NAME,    /* by name */
	KERR_SUBJECT_LAUNCH_TEMPLATE_VERSION, /* a version of one */
	KERR_SUBJECT_KEY_PAIR,                /* an SSH key pair, by name or id */
	KERR_SUBJECT_KEY_MATERIAL,            /* the public key given to ImportKeyPair */
	KERR_SUBJECT_VPC,
	KERR_SUBJECT_VPC_RANGE,   /* a VPC's CIDR block */
	KERR_SUBJECT_DEFAULT_VPC, /* the account's default VPC of the region */
	KERR_SUBJECT_SUBNET,
	KERR_SUBJECT_SUBNET_RANGE,     /* a subnet's CIDR block: outside its VPC, or overlapping */
	KERR_SUBJECT_GROUP,            /* a security group */
	KERR_SUBJECT_GROUP_NAME,       /* a security group's name in its VPC */
	KERR_SUBJECT_DEFAULT_GROUP,    /* the default group of a VPC */
	KERR_SUBJECT_PERMISSION,       /* a rule of a security group */
	KERR_SUBJECT_GROUP_RULE,       /* a rule by its sgr- id */
	KERR_SUBJECT_COMBINATION,      /* parameters that do not go together */
	KERR_SUBJECT_INSTANCE_PROFILE, /* an instance profile, by name or ARN */
	KERR_SUBJECT_SESSION_TOKEN,    /* the session token of temporary credentials */
	KERR_SUBJECT_PRODUCT_CODE,     /* a marketplace product, by its code (the id is the code) */
	KERR_SUBJECT_PRODUCT_IMAGE,    /* an image (or snapshot) with a product code */
	KERR_SUBJECT_USAGE_DIMENSION,  /* a product's usage dimension (metering) */
	KERR_SUBJECT_USAGE_TIME,       /* a metering record's timestamp */
	KERR_SUBJECT_USAGE_RECORD,     /* a metering record of the same hour */
	KERR_SUBJECT_USAGE_ALLOCATION, /* the allocations of a metered quantity */
	KERR_SUBJECT_AGREEMENT,        /* a marketplace agreement or agreement request */
	KERR_SUBJECT_CATALOG_ENTITY,   /* a Marketplace Catalog entity (prod-, offer-) */
	KERR_SUBJECT_CHANGE_SET,       /* a Marketplace Catalog change set */
	/* The quotas of the topology, one each. */
	KERR_SUBJECT_QUOTA_VCPUS,
	KERR_SUBJECT_QUOTA_VOLUMES,
	KERR_SUBJECT_QUOTA_VOLUME_GIB,
	KERR_SUBJECT_QUOTA_SNAPSHOTS,
	KERR_SUBJECT_QUOTA_IMAGES,
	KERR_SUBJECT__COUNT
};

struct kerr {
	enum kerr_kind kind;
	enum kerr_subject subject;
	int errnum;   /* errno behind it, or 0 */
	char id[128]; /* the subject's id or name as the caller wrote it, or "" */
	char msg[1024];
};

/* Set *err (when err is not NULL) and return -1: `return kerr_set(err, …);` */
int kerr_set(struct kerr **err, enum kerr_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* kerr_set for an error about a subject: `return kerr_about(err, KERR_NOT_FOUND,
 * KERR_SUBJECT_SNAPSHOT, id, "snapshot '%s' not found", id);` (id may be NULL). */
int kerr_about(struct kerr **err, enum kerr_kind kind, enum kerr_subject subject, const char *id,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Like kerr_set, with the kind taken from errnum and ": strerror" appended. */
int kerr_errno(struct kerr **err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Put context in front of an existing message: "while doing x: <old>". */
int kerr_wrap(struct kerr **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand e to the caller's err (or free it when err is NULL); returns -1. */
int kerr_pass(struct kerr **err, struct kerr *e);
void kerr_free(struct kerr *err);
const char *kerr_kind_name(enum kerr_kind kind);
const char *kerr_subject_name(enum kerr_subject subject);
/* The names back (errors carried between processes): internal / none when unknown. */
enum kerr_kind kerr_kind_parse(const char *name);
enum kerr_subject kerr_subject_parse(const char *name);

static inline void kerr_freep(struct kerr **err)
{
	kerr_free(*err);
}
#define _cleanup_kerr_ __attribute__((cleanup(kerr_freep)))

#endif
