/* The EC2 Query API: what handlers share (the call, the action table's row, filters, paging, ids,
 * Describe lists, tags) and the server (api_server_start). The dispatcher is dispatch.c; handlers
 * live one file per resource (regions.c, instance_types.c, ...). */
#ifndef KILN_API_SERVER_H
#define KILN_API_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "api/errors.h"
#include "api/http.h"
#include "api/query.h"
#include "api/xml.h"
#include "cloud/cloud.h"

/* One request, as a handler sees it: the dispatcher has made the checks its action declares
 * (struct api_action) and answered DryRun. */
struct api_call {
	struct cloud *cloud;
	struct account account; /* the caller */
	/* for an instance's temporary credentials, the instance and its profile; else "" */
	struct key_session session;
	const char *region; /* from the credential scope, known to the topology */
	const char *action;
	const char *host;     /* the Host header: where the client reached us */
	struct api_node root; /* the parameters */
	struct api_xml *xml;  /* the response body, inside the envelope */
	bool peer;            /* signed with the deployments' key (api/peer.c), not an account's */
};

/* 0 with the response members written, or -1 with e set (nothing of xml is sent). */
typedef int (*api_action_fn)(struct api_call *c, struct api_error *e);

enum api_action_flags {
	API_READ = 0,
	API_MUTATING = 1 << 0, /* changes something: never cached */
	API_CACHED =
	    1 << 1, /* the answer depends only on the database, the caller and the request */
	API_DESCRIPTION = 1 << 2, /* takes Description: at most 255 characters */
	API_UNENCRYPTED = 1 << 3, /* takes Encrypted: absent or false */
	API_LAUNCH_TEMPLATE =
	    1
	    << 4, /* takes LaunchTemplate.*: its parameters join the request's, before any check */
};

/* An id parameter: ids of the wrong shape are EC2's ….Malformed for the prefix. */
struct api_id_param {
	const char *name;   /* "VolumeId"; a list is name.1, name.2, … */
	const char *prefix; /* "vol" */
	bool list;
};

#define API_ACTION_PARAMS_MAX 4

/* One row of the action table: the handler and the checks the dispatcher makes before it, in
 * this order: required parameters (MissingParameter for the first absent, a list counts when it
 * has an item), id shapes, Description and Encrypted, TagSpecification resource types, DryRun. */
struct api_action {
	const char *name;
	api_action_fn fn;
	unsigned flags;
	const char *required[API_ACTION_PARAMS_MAX];
	struct api_id_param ids[API_ACTION_PARAMS_MAX];
	const char *tag_types[API_ACTION_PARAMS_MAX]; /* none: TagSpecification is ignored */
};

struct api_server;

struct api_exec_server;

struct api_rate_limits;

/* Serve on http->listen with its limits (its handler and context are the server's own), each
 * account's requests within limits (ratelimit.h; NULL: none); a request asking for an upgrade
 * goes to exec (kiln exec over the API, exec.h). */
int api_server_start(struct cloud *cloud, const struct api_http_config *http,
                     const struct api_rate_limits *limits, struct api_exec_server *exec,
                     struct api_server **out, struct kerr **err)
    __attribute__((warn_unused_result));
uint16_t api_server_port(const struct api_server *s);
/* A connection accepted elsewhere (a VPC's listener), served as the listener's own. */
void api_server_add_connection(struct api_server *s, int fd, const struct sockaddr *sa,
                               socklen_t len);
void api_server_stop(struct api_server *s);

/* Shared steps of handlers. Each sets e and returns -1 on failure. */
/* The Filter.N parameters of the request. */
int api_call_filters(struct api_call *c, struct api_filters *out, struct api_error *e);
/* What a filter name reads from a resource: a char array member, a constant, or a computed
 * value (buf has room for numbers). One table per resource type. */
struct api_filter_field {
	const char *name;
	enum { API_FIELD_TEXT, API_FIELD_CONST, API_FIELD_COMPUTED } kind;
	size_t offset;
	const char *constant;
	const char *(*compute)(const void *obj, char *buf, size_t size);
};
#define API_FIELD_TEXT_OF(n, type, member)                                                         \
	{                                                                                          \
		n, API_FIELD_TEXT, offsetof(type, member), NULL, NULL                              \
	}
#define API_FIELD_CONST_OF(n, value)                                                               \
	{                                                                                          \
		n, API_FIELD_CONST, 0, value, NULL                                                 \
	}
#define API_FIELD_COMPUTED_OF(n, fn)                                                               \
	{                                                                                          \
		n, API_FIELD_COMPUTED, 0, NULL, fn                                                 \
	}

/* 1 when obj passes every filter, 0 when not; a name the table lacks is InvalidParameterValue.
 * With tags (obj then starts with its char id[ID_MAX]), tag:KEY, tag-key and tag-value work. */
int api_call_filter_match(const struct api_filters *f, const struct api_filter_field *fields,
                          size_t nfields, const void *obj, const struct tag_set *tags,
                          struct api_error *e);

/* MaxResults (min..max; absent: everything) and NextToken. Call api_page_take for each item
 * that passes the filters, in a stable order: true when it belongs on this page. api_page_end
 * writes nextToken when more follow. */
struct api_page {
	size_t start, max, seen;
	bool more;
};
int api_call_page(struct api_call *c, int64_t min, int64_t max, struct api_page *p,
                  struct api_error *e);
bool api_page_take(struct api_page *p);
void api_page_end(struct api_call *c, const struct api_page *p);

/* Tag.N.Key / Tag.N.Value under name ("Tag"); values may be absent (with_value false) when
 * allow_no_value, as DeleteTags allows. Arrays the caller frees. */
int api_call_tags(struct api_call *c, const struct api_node *under, const char *name,
                  bool allow_no_value, struct tag **tags, bool **with_value, size_t *n,
                  struct api_error *e);
/* The tags of TagSpecification.N with ResourceType type (the dispatcher has refused the types the
 * action does not declare); the array the caller frees. */
int api_call_tag_specs(struct api_call *c, const char *type, struct tag **tags, size_t *n,
                       struct api_error *e);
/* InvalidParameterValue unless every TagSpecification.N names one of the ntypes types. */
int api_call_tag_types(struct api_call *c, const char *const *types, size_t ntypes,
                       struct api_error *e);
void api_write_tag_set(struct api_xml *x, const struct tag_set *tags, const char *resource);
/* Grantees of one operation of a permission attribute: <attribute>.<op>.N.UserId / .Group
 * ("LaunchPermission", "Add"), or, when OperationType is op, UserId.N and UserGroup.N. Each
 * must be a 12-digit account id or the group all (InvalidUserID.Malformed). The array the
 * caller frees. */
int api_call_grantees(struct api_call *c, const char *attribute, const char *op, const char ***out,
                      size_t *n, struct api_error *e);

/* Ids: true when id has prefix's shape, else e is the EC2 ….Malformed error. */
bool api_id_ok(const char *prefix, const char *id, struct api_error *e);
/* The id parameter name (*id NULL when absent), checked for shape. */
int api_call_id(struct api_call *c, const char *name, const char *prefix, const char **id,
                struct api_error *e);
/* The list name.1, name.2, … (caller frees the array), each checked for shape. */
int api_call_id_list(struct api_call *c, const char *name, const char *prefix, const char ***ids,
                     size_t *n, struct api_error *e);

/* Descriptions: at most 255 characters (InvalidParameterValue). */
bool api_description_ok(const char *desc, struct api_error *e);
/* Encrypted: absent or false; kiln has no encryption to offer (InvalidParameterValue). */
int api_call_unencrypted(struct api_call *c, struct api_error *e);

/* Selection by id or name lists (ImageId.N, InstanceId.N, ZoneName.N): true when the list is
 * empty (everything is selected) or names it. */
bool api_selected(const char *const *list, size_t n, const char *name);
/* The first id of the list that none of the n items (each starting with its char id[ID_MAX],
 * size bytes apart) has, or NULL: EC2 answers ….NotFound for it. */
const char *api_first_missing(const char *const *list, size_t nlist, const void *items, size_t n,
                              size_t size);

/* The body of a Describe action: the Id.N selection (unknown ids are not-found errors),
 * MaxResults/NextToken, filters (tags included), one <item> per resource. */
struct api_list {
	const char *id_param, *prefix; /* "VolumeId", "vol" */
	int64_t max_results;           /* the largest MaxResults */
	bool clip_results; /* a larger MaxResults is taken as max_results (EC2 documents it so) */
	const char *set;   /* "volumeSet" */
	const char *not_found_code; /* "InvalidVolume.NotFound" */
	const char *noun;           /* "The volume 'vol-…' does not exist" */
	bool brackets;              /* "The image id '[ami-…]' does not exist" */
	const struct api_filter_field *fields;
	size_t nfields;
	size_t size; /* of one item; each starts with its char id[ID_MAX] */
	/* What the caller may see: a malloc'd array of n items. */
	int (*load)(struct api_call *c, void **items, size_t *n, struct kerr **err);
	/* Further selection (owners, …), or NULL. */
	bool (*keep)(struct api_call *c, const void *item, void *ctx);
	/* The members of one item. */
	void (*write)(struct api_xml *x, const void *item, const struct tag_set *tags);
	void *ctx;
};
int api_describe_list(struct api_call *c, const struct api_list *l, struct api_error *e);

/* The handlers (one file per resource). */
int api_describe_regions(struct api_call *c, struct api_error *e);
int api_describe_images(struct api_call *c, struct api_error *e);
int api_register_image(struct api_call *c, struct api_error *e);
int api_create_image(struct api_call *c, struct api_error *e);
int api_copy_image(struct api_call *c, struct api_error *e);
int api_copy_snapshot(struct api_call *c, struct api_error *e);
int api_modify_image_attribute(struct api_call *c, struct api_error *e);
int api_describe_image_attribute(struct api_call *c, struct api_error *e);
int api_reset_image_attribute(struct api_call *c, struct api_error *e);
int api_enable_image_deprecation(struct api_call *c, struct api_error *e);
int api_disable_image_deprecation(struct api_call *c, struct api_error *e);
int api_disable_image(struct api_call *c, struct api_error *e);
int api_enable_image(struct api_call *c, struct api_error *e);
/* The items of an image's blockDeviceMapping: the root, then the other volumes. */
void api_write_image_mappings(struct api_xml *x, const struct image *im);
/* productCodes: each code with its type (marketplace). */
void api_write_product_codes(struct api_xml *x, const char (*codes)[PRODUCT_CODE_LEN + 1],
                             size_t n);
int api_deregister_image(struct api_call *c, struct api_error *e);
int api_run_instances(struct api_call *c, struct api_error *e);
int api_describe_instances(struct api_call *c, struct api_error *e);
int api_start_instances(struct api_call *c, struct api_error *e);
int api_stop_instances(struct api_call *c, struct api_error *e);
int api_terminate_instances(struct api_call *c, struct api_error *e);
int api_reboot_instances(struct api_call *c, struct api_error *e);
int api_get_console_output(struct api_call *c, struct api_error *e);
int api_describe_availability_zones(struct api_call *c, struct api_error *e);
int api_describe_instance_types(struct api_call *c, struct api_error *e);
int api_describe_instance_status(struct api_call *c, struct api_error *e);
int api_describe_instance_attribute(struct api_call *c, struct api_error *e);
int api_confirm_product_instance(struct api_call *c, struct api_error *e);
int api_describe_instance_type_offerings(struct api_call *c, struct api_error *e);
int api_describe_volume_status(struct api_call *c, struct api_error *e);
int api_describe_volume_attribute(struct api_call *c, struct api_error *e);
int api_modify_instance_attribute(struct api_call *c, struct api_error *e);
int api_create_tags(struct api_call *c, struct api_error *e);
int api_delete_tags(struct api_call *c, struct api_error *e);
int api_describe_tags(struct api_call *c, struct api_error *e);
int api_create_volume(struct api_call *c, struct api_error *e);
int api_describe_volumes(struct api_call *c, struct api_error *e);
int api_attach_volume(struct api_call *c, struct api_error *e);
int api_detach_volume(struct api_call *c, struct api_error *e);
int api_delete_volume(struct api_call *c, struct api_error *e);
int api_create_snapshot(struct api_call *c, struct api_error *e);
int api_describe_snapshots(struct api_call *c, struct api_error *e);
int api_delete_snapshot(struct api_call *c, struct api_error *e);
int api_modify_snapshot_attribute(struct api_call *c, struct api_error *e);
int api_describe_snapshot_attribute(struct api_call *c, struct api_error *e);
int api_create_key_pair(struct api_call *c, struct api_error *e);
int api_import_key_pair(struct api_call *c, struct api_error *e);
int api_describe_key_pairs(struct api_call *c, struct api_error *e);
int api_delete_key_pair(struct api_call *c, struct api_error *e);
int api_create_vpc(struct api_call *c, struct api_error *e);
int api_create_default_vpc(struct api_call *c, struct api_error *e);
int api_delete_vpc(struct api_call *c, struct api_error *e);
int api_describe_vpcs(struct api_call *c, struct api_error *e);
int api_describe_vpc_attribute(struct api_call *c, struct api_error *e);
int api_create_subnet(struct api_call *c, struct api_error *e);
int api_delete_subnet(struct api_call *c, struct api_error *e);
int api_describe_subnets(struct api_call *c, struct api_error *e);
int api_modify_subnet_attribute(struct api_call *c, struct api_error *e);
int api_describe_account_attributes(struct api_call *c, struct api_error *e);
int api_create_security_group(struct api_call *c, struct api_error *e);
int api_delete_security_group(struct api_call *c, struct api_error *e);
int api_describe_security_groups(struct api_call *c, struct api_error *e);
int api_describe_security_group_rules(struct api_call *c, struct api_error *e);
int api_authorize_security_group_ingress(struct api_call *c, struct api_error *e);
int api_authorize_security_group_egress(struct api_call *c, struct api_error *e);
int api_revoke_security_group_ingress(struct api_call *c, struct api_error *e);
int api_revoke_security_group_egress(struct api_call *c, struct api_error *e);

/* Metadata options (instance_metadata.c): MetadataOptions' members under n into m, checked;
 * the metadataOptions member called name. */
int api_call_metadata_change(struct api_call *c, const struct api_node *n,
                             struct metadata_change *m, struct api_error *e);
void api_write_metadata_options(struct api_xml *x, const char *name,
                                const struct metadata_options *md);
int api_modify_instance_metadata_options(struct api_call *c, struct api_error *e);

/* Launch templates (launch_templates.c). */
int api_create_launch_template(struct api_call *c, struct api_error *e);
int api_create_launch_template_version(struct api_call *c, struct api_error *e);
int api_describe_launch_templates(struct api_call *c, struct api_error *e);
int api_describe_launch_template_versions(struct api_call *c, struct api_error *e);
int api_modify_launch_template(struct api_call *c, struct api_error *e);
int api_delete_launch_template(struct api_call *c, struct api_error *e);
int api_delete_launch_template_versions(struct api_call *c, struct api_error *e);
/* LaunchTemplate.LaunchTemplateId or .LaunchTemplateName and .Version ($Default when absent):
 * the version's parameters are added to p (the request's), each member the request does not
 * give itself. Nothing happens without LaunchTemplate. */
int api_call_launch_template(struct api_call *c, struct api_params *p, struct api_error *e);

/* The members of a VolumeAttachment (AttachVolume, DetachVolume, instances' mappings). */
void api_write_attachment(struct api_xml *x, const struct volume *v);

#endif
