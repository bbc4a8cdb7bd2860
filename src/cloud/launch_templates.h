/* Launch templates: named, numbered versions of launch parameters that RunInstances can start
 * from. The domain keeps the versions and their parameters as (name, value) pairs, opaque to it:
 * the API decides what the names mean. */
#ifndef KILN_CLOUD_LAUNCH_TEMPLATES_H
#define KILN_CLOUD_LAUNCH_TEMPLATES_H

#include "cloud/cloud.h"
#include "util/kv.h"

#define LAUNCH_TEMPLATE_NAME_MAX 128
#define LAUNCH_TEMPLATE_DATA_MAX 2000 /* parameters of one version */
/* EC2's quotas: templates per account and region, versions per template (KERR_LIMIT). */
#define LAUNCH_TEMPLATES_MAX         5000
#define LAUNCH_TEMPLATE_VERSIONS_MAX 10000
#define LT_VERSION_LATEST            (-1) /* $Latest */
#define LT_VERSION_DEFAULT           0    /* $Default */

struct launch_template {
	char id[ID_MAX]; /* first: the Describe helpers select by it */
	char region[32];
	char owner[ACCOUNT_ID_LEN + 1];
	char name[LAUNCH_TEMPLATE_NAME_MAX + 1];
	int64_t create_ms;
	int64_t default_version;
	int64_t latest_version; /* the highest version that exists */
};

struct launch_template_version {
	char template_id[ID_MAX];
	char template_name[LAUNCH_TEMPLATE_NAME_MAX + 1];
	int64_t number;
	char description[256];
	int64_t create_ms;
	bool is_default;
	struct kv data; /* the launch parameters, in the order given */
};

void cloud_lt_version_release(struct launch_template_version *v);
void cloud_lt_versions_free(struct launch_template_version *v, size_t n);

/* EC2's rule for names: 3 to 128 of letters, digits and ( ) . - / _ */
bool cloud_lt_name_valid(const char *name);

/* CreateLaunchTemplate: the template and its version 1 (the default). KERR_INVALID about
 * KERR_SUBJECT_LAUNCH_TEMPLATE_NAME for a bad name, KERR_CONFLICT about it for a name the owner
 * has in the region. A client token seen before answers the template it made. */
struct lt_create_request {
	const char *region, *name, *description, *client_token;
	const struct kv *data;
	const struct tag *tags;
	size_t ntags;
};
int cloud_lt_create(struct cloud *c, const char *owner, const struct lt_create_request *req,
                    struct launch_template *out, struct kerr **err);
/* The owner's template by id (name NULL) or by name: KERR_NOT_FOUND about
 * KERR_SUBJECT_LAUNCH_TEMPLATE or KERR_SUBJECT_LAUNCH_TEMPLATE_NAME. */
int cloud_lt_get(struct cloud *c, const char *owner, const char *region, const char *id,
                 const char *name, struct launch_template *out, struct kerr **err);
/* The owner's templates in region, oldest first. */
int cloud_lt_list(struct cloud *c, const char *owner, const char *region,
                  struct launch_template **out, size_t *n, struct kerr **err);
/* CreateLaunchTemplateVersion: a new version numbered after every one made before; with
 * source (a version number, 0: none) it starts from that version's parameters, each member
 * (the first part of a name) given in data replacing the source's. A client token seen before
 * for the template answers the version it made. */
int cloud_lt_version_create(struct cloud *c, const char *owner, const char *region, const char *id,
                            int64_t source, const char *description, const char *client_token,
                            const struct kv *data, struct launch_template_version *out,
                            struct kerr **err);
/* One version: a number, LT_VERSION_LATEST or LT_VERSION_DEFAULT; KERR_NOT_FOUND about
 * KERR_SUBJECT_LAUNCH_TEMPLATE_VERSION. */
int cloud_lt_version_get(struct cloud *c, const char *owner, const char *region, const char *id,
                         int64_t version, struct launch_template_version *out, struct kerr **err);
/* Every version of a template, the newest first. */
int cloud_lt_versions(struct cloud *c, const char *owner, const char *region, const char *id,
                      struct launch_template_version **out, size_t *n, struct kerr **err);
/* ModifyLaunchTemplate: the default version. */
int cloud_lt_set_default(struct cloud *c, const char *owner, const char *region, const char *id,
                         int64_t version, struct launch_template *out, struct kerr **err);
/* DeleteLaunchTemplate: the template, its versions and its tags; *out is what it was. */
int cloud_lt_delete(struct cloud *c, const char *owner, const char *region, const char *id,
                    struct launch_template *out, struct kerr **err);
/* DeleteLaunchTemplateVersions, one version: KERR_NOT_FOUND about
 * KERR_SUBJECT_LAUNCH_TEMPLATE_VERSION, KERR_CONFLICT about it for the default version. */
int cloud_lt_version_delete(struct cloud *c, const char *owner, const char *region, const char *id,
                            int64_t version, struct kerr **err);

#endif
