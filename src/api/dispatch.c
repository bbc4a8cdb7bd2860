/* Request flow: decode parameters, verify the signature, find the action in the action table,
 * check the region, make the checks the action's row declares and answer DryRun, run the handler,
 * render XML. Nothing here knows what an action does. */
#include "api/dispatch.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/json_proto.h"
#include "api/sigv4.h"
#include "api/peer.h"
#include "api/sts.h"
#include "util/cleanup.h"
#include "util/str.h"
#include "util/banned.h"

#define MUT              API_MUTATING
#define ACTION(n, f, fl) .name = n, .fn = f, .flags = fl
#define REQ(...)         .required = {__VA_ARGS__}
#define IDS(...)         .ids = {__VA_ARGS__}
#define TAGS(...)        .tag_types = {__VA_ARGS__}
#define ID(name, prefix)                                                                           \
	{                                                                                          \
		name, prefix, false                                                                \
	}
#define ID_LIST(name, prefix)                                                                      \
	{                                                                                          \
		name, prefix, true                                                                 \
	}

/* The actions and the checks the dispatcher makes for each before its handler (struct
 * api_action): the handlers keep only what is particular to them. */
static const struct api_action actions[] = {
    {ACTION("AuthorizeSecurityGroupEgress", api_authorize_security_group_egress, MUT),
     REQ("GroupId"), IDS(ID("GroupId", "sg"))},
    {ACTION("AuthorizeSecurityGroupIngress", api_authorize_security_group_ingress, MUT)},
    {ACTION("AttachVolume", api_attach_volume, MUT), REQ("VolumeId", "InstanceId", "Device"),
     IDS(ID("VolumeId", "vol"), ID("InstanceId", "i"))},
    {ACTION("CopyImage", api_copy_image, MUT | API_DESCRIPTION | API_UNENCRYPTED),
     REQ("SourceRegion", "SourceImageId", "Name"), IDS(ID("SourceImageId", "ami")), TAGS("image")},
    {ACTION("CreateLaunchTemplate", api_create_launch_template, MUT), REQ("LaunchTemplateName"),
     TAGS("launch-template")},
    {ACTION("CreateLaunchTemplateVersion", api_create_launch_template_version, MUT),
     IDS(ID("LaunchTemplateId", "lt"))},
    {ACTION("ConfirmProductInstance", api_confirm_product_instance, API_READ),
     REQ("InstanceId", "ProductCode"), IDS(ID("InstanceId", "i"))},
    {ACTION("CopySnapshot", api_copy_snapshot, MUT | API_DESCRIPTION | API_UNENCRYPTED),
     REQ("SourceRegion", "SourceSnapshotId"), IDS(ID("SourceSnapshotId", "snap")),
     TAGS("snapshot")},
    {ACTION("CreateDefaultVpc", api_create_default_vpc, MUT)},
    {ACTION("CreateImage", api_create_image, MUT | API_DESCRIPTION), REQ("InstanceId", "Name"),
     IDS(ID("InstanceId", "i")), TAGS("image", "snapshot")},
    {ACTION("CreateKeyPair", api_create_key_pair, MUT), REQ("KeyName"), TAGS("key-pair")},
    {ACTION("CreateSecurityGroup", api_create_security_group, MUT),
     REQ("GroupName", "GroupDescription"), IDS(ID("VpcId", "vpc")), TAGS("security-group")},
    {ACTION("CreateSnapshot", api_create_snapshot, MUT | API_DESCRIPTION), REQ("VolumeId"),
     IDS(ID("VolumeId", "vol")), TAGS("snapshot")},
    {ACTION("CreateSubnet", api_create_subnet, MUT), REQ("VpcId", "CidrBlock"),
     IDS(ID("VpcId", "vpc")), TAGS("subnet")},
    {ACTION("CreateTags", api_create_tags, MUT), REQ("ResourceId", "Tag")},
    {ACTION("CreateVolume", api_create_volume, MUT | API_UNENCRYPTED), REQ("AvailabilityZone"),
     IDS(ID("SnapshotId", "snap")), TAGS("volume")},
    {ACTION("DeleteLaunchTemplate", api_delete_launch_template, MUT),
     IDS(ID("LaunchTemplateId", "lt"))},
    {ACTION("DeleteLaunchTemplateVersions", api_delete_launch_template_versions, MUT),
     REQ("LaunchTemplateVersion"), IDS(ID("LaunchTemplateId", "lt"))},
    {ACTION("DeleteKeyPair", api_delete_key_pair, MUT), IDS(ID("KeyPairId", "key"))},
    {ACTION("CreateVpc", api_create_vpc, MUT), REQ("CidrBlock"), TAGS("vpc")},
    {ACTION("DeleteSecurityGroup", api_delete_security_group, MUT)},
    {ACTION("DeleteSnapshot", api_delete_snapshot, MUT), REQ("SnapshotId"),
     IDS(ID("SnapshotId", "snap"))},
    {ACTION("DeleteSubnet", api_delete_subnet, MUT), REQ("SubnetId"),
     IDS(ID("SubnetId", "subnet"))},
    {ACTION("DeleteTags", api_delete_tags, MUT), REQ("ResourceId")},
    {ACTION("DeleteVolume", api_delete_volume, MUT), REQ("VolumeId"), IDS(ID("VolumeId", "vol"))},
    {ACTION("DeleteVpc", api_delete_vpc, MUT), REQ("VpcId"), IDS(ID("VpcId", "vpc"))},
    {ACTION("DeregisterImage", api_deregister_image, MUT), REQ("ImageId"),
     IDS(ID("ImageId", "ami"))},
    {ACTION("DescribeAccountAttributes", api_describe_account_attributes, API_READ)},
    {ACTION("DescribeAvailabilityZones", api_describe_availability_zones, API_READ | API_CACHED)},
    {ACTION("DescribeImageAttribute", api_describe_image_attribute, API_READ | API_CACHED),
     REQ("ImageId", "Attribute"), IDS(ID("ImageId", "ami"))},
    {ACTION("DescribeImages", api_describe_images, API_READ | API_CACHED)},
    {ACTION("DescribeInstanceAttribute", api_describe_instance_attribute, API_READ),
     REQ("InstanceId", "Attribute"), IDS(ID("InstanceId", "i"))},
    {ACTION("DescribeInstanceStatus", api_describe_instance_status, API_READ)},
    {ACTION("DescribeInstanceTypeOfferings", api_describe_instance_type_offerings,
            API_READ | API_CACHED)},
    {ACTION("DescribeInstanceTypes", api_describe_instance_types, API_READ | API_CACHED)},
    {ACTION("DescribeInstances", api_describe_instances, API_READ | API_CACHED)},
    {ACTION("DescribeLaunchTemplateVersions", api_describe_launch_template_versions,
            API_READ | API_CACHED),
     IDS(ID("LaunchTemplateId", "lt"))},
    {ACTION("DescribeLaunchTemplates", api_describe_launch_templates, API_READ | API_CACHED)},
    {ACTION("DescribeKeyPairs", api_describe_key_pairs, API_READ | API_CACHED)},
    {ACTION("DescribeRegions", api_describe_regions, API_READ | API_CACHED)},
    {ACTION("DescribeSecurityGroupRules", api_describe_security_group_rules, API_READ)},
    {ACTION("DescribeSecurityGroups", api_describe_security_groups, API_READ)},
    {ACTION("DescribeSnapshotAttribute", api_describe_snapshot_attribute, API_READ | API_CACHED),
     REQ("SnapshotId", "Attribute"), IDS(ID("SnapshotId", "snap"))},
    {ACTION("DescribeSnapshots", api_describe_snapshots, API_READ | API_CACHED)},
    {ACTION("DescribeSubnets", api_describe_subnets, API_READ)},
    {ACTION("DescribeTags", api_describe_tags, API_READ | API_CACHED)},
    {ACTION("DescribeVolumeAttribute", api_describe_volume_attribute, API_READ),
     REQ("VolumeId", "Attribute"), IDS(ID("VolumeId", "vol"))},
    {ACTION("DescribeVolumeStatus", api_describe_volume_status, API_READ)},
    {ACTION("DescribeVolumes", api_describe_volumes, API_READ | API_CACHED)},
    {ACTION("DescribeVpcAttribute", api_describe_vpc_attribute, API_READ),
     REQ("VpcId", "Attribute"), IDS(ID("VpcId", "vpc"))},
    {ACTION("DescribeVpcs", api_describe_vpcs, API_READ)},
    {ACTION("DetachVolume", api_detach_volume, MUT), REQ("VolumeId"),
     IDS(ID("VolumeId", "vol"), ID("InstanceId", "i"))},
    {ACTION("DisableImage", api_disable_image, MUT), REQ("ImageId"), IDS(ID("ImageId", "ami"))},
    {ACTION("DisableImageDeprecation", api_disable_image_deprecation, MUT), REQ("ImageId"),
     IDS(ID("ImageId", "ami"))},
    {ACTION("EnableImage", api_enable_image, MUT), REQ("ImageId"), IDS(ID("ImageId", "ami"))},
    {ACTION("EnableImageDeprecation", api_enable_image_deprecation, MUT),
     REQ("ImageId", "DeprecateAt"), IDS(ID("ImageId", "ami"))},
    {ACTION("GetConsoleOutput", api_get_console_output, API_READ), REQ("InstanceId"),
     IDS(ID("InstanceId", "i"))},
    {ACTION("ImportKeyPair", api_import_key_pair, MUT), REQ("KeyName", "PublicKeyMaterial"),
     TAGS("key-pair")},
    {ACTION("ModifyImageAttribute", api_modify_image_attribute, MUT), REQ("ImageId"),
     IDS(ID("ImageId", "ami"))},
    {ACTION("ModifyInstanceAttribute", api_modify_instance_attribute, MUT), REQ("InstanceId"),
     IDS(ID("InstanceId", "i"))},
    {ACTION("ModifyInstanceMetadataOptions", api_modify_instance_metadata_options, MUT),
     REQ("InstanceId"), IDS(ID("InstanceId", "i"))},
    {ACTION("ModifyLaunchTemplate", api_modify_launch_template, MUT),
     IDS(ID("LaunchTemplateId", "lt"))},
    {ACTION("ModifySnapshotAttribute", api_modify_snapshot_attribute, MUT), REQ("SnapshotId"),
     IDS(ID("SnapshotId", "snap"))},
    {ACTION("ModifySubnetAttribute", api_modify_subnet_attribute, MUT), REQ("SubnetId"),
     IDS(ID("SubnetId", "subnet"))},
    {ACTION("RebootInstances", api_reboot_instances, MUT), REQ("InstanceId"),
     IDS(ID_LIST("InstanceId", "i"))},
    {ACTION("RegisterImage", api_register_image, MUT | API_DESCRIPTION), REQ("Name"),
     TAGS("image")},
    {ACTION("ResetImageAttribute", api_reset_image_attribute, MUT), REQ("ImageId", "Attribute"),
     IDS(ID("ImageId", "ami"))},
    {ACTION("RevokeSecurityGroupEgress", api_revoke_security_group_egress, MUT), REQ("GroupId"),
     IDS(ID("GroupId", "sg"))},
    {ACTION("RevokeSecurityGroupIngress", api_revoke_security_group_ingress, MUT)},
    {ACTION("RunInstances", api_run_instances, MUT | API_LAUNCH_TEMPLATE),
     REQ("ImageId", "MinCount", "MaxCount"), IDS(ID("ImageId", "ami"), ID("SubnetId", "subnet")),
     TAGS("instance", "volume")},
    {ACTION("StartInstances", api_start_instances, MUT), REQ("InstanceId"),
     IDS(ID_LIST("InstanceId", "i"))},
    {ACTION("StopInstances", api_stop_instances, MUT), REQ("InstanceId"),
     IDS(ID_LIST("InstanceId", "i"))},
    {ACTION("TerminateInstances", api_terminate_instances, MUT), REQ("InstanceId"),
     IDS(ID_LIST("InstanceId", "i"))},
};

static const size_t actions_count = ARRAY_SIZE(actions);

/* The services on kiln's one listener, told apart by the service of the signature's credential
 * scope: each has its action table and its envelope (the members a handler writes go between
 * begin and end). */
static const struct api_service {
	const char *name;
	enum api_protocol protocol;
	const struct api_action *actions;
	const size_t *nactions;
	void (*begin)(struct api_xml *x, const char *action, const char *request_id);
	void (*end)(struct api_xml *x, const char *action, const char *request_id); /* or NULL */
	/* A service of another protocol than Query takes the authenticated request whole. */
	int (*serve)(struct api_call *call, const struct api_http_request *req, struct buf *out,
	             struct api_error *e);
} services[] = {
    {"ec2", API_PROTOCOL_EC2, actions, &actions_count, api_xml_begin, NULL, NULL},
    {"sts", API_PROTOCOL_STS, api_sts_actions, &api_sts_actions_count, api_sts_begin, api_sts_end,
     NULL},
    {"aws-marketplace", API_PROTOCOL_JSON, NULL, NULL, NULL, NULL, api_marketplace_serve},
};
static const char *const service_names[] = {"ec2", "sts", CLOUD_PEER_SERVICE, "aws-marketplace",
                                            NULL};

static const struct api_service *find_service(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(services); i++)
		if (!strcmp(services[i].name, name))
			return &services[i];
	return NULL;
}

/* The checks a's row declares, in its order, then DryRun. */
static int check_declared(const struct api_action *a, struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	bool dry = false;
	size_t ntypes = 0;

	for (size_t i = 0; i < API_ACTION_PARAMS_MAX && a->required[i]; i++)
		if (!api_node_present(&c->root, a->required[i]) &&
		    !api_node_count(&c->root, a->required[i])) {
			api_error_missing_parameter(e, a->required[i]);
			return -1;
		}
	for (size_t i = 0; i < API_ACTION_PARAMS_MAX && a->ids[i].name; i++) {
		_cleanup_free_ const char **ids = NULL;
		const char *id;
		size_t n;

		if (a->ids[i].list
		        ? api_call_id_list(c, a->ids[i].name, a->ids[i].prefix, &ids, &n, e) < 0
		        : api_call_id(c, a->ids[i].name, a->ids[i].prefix, &id, e) < 0)
			return -1;
	}
	if ((a->flags & API_DESCRIPTION) &&
	    !api_description_ok(api_node_str(&c->root, "Description"), e))
		return -1;
	if ((a->flags & API_UNENCRYPTED) && api_call_unencrypted(c, e) < 0)
		return -1;
	while (ntypes < API_ACTION_PARAMS_MAX && a->tag_types[ntypes])
		ntypes++;
	if (ntypes && api_call_tag_types(c, a->tag_types, ntypes, e) < 0)
		return -1;
	if (api_node_bool(&c->root, "DryRun", &dry, &err) < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		return -1;
	}
	if (dry) {
		api_error_dry_run(e);
		return -1;
	}
	return 0;
}

/* What an answer depends on besides the database: the caller, the region, the host it reached
 * (DescribeRegions names it) and every parameter but the signature's. */
static char *cache_key(const struct api_call *call, const struct api_params *p)
{
	struct buf key = BUF_INIT;

	buf_addf(&key, "%s\n%s\n%s\n", call->account.id, call->region,
	         call->host ? call->host : "");
	for (size_t i = 0; i < p->n; i++) {
		const struct api_param *it = &p->items[p->sorted[i]];
		if (strncmp(it->name, "X-Amz-", 6))
			buf_addf(&key, "%s=%s\n", it->name, it->value);
	}
	return buf_detach(&key);
}

static const struct api_action *find_action(const struct api_service *svc, const char *name)
{
	if (!svc->actions || !name)
		return NULL; /* a service routed by path (catalog.c) */
	for (size_t i = 0; i < *svc->nactions; i++)
		if (!strcmp(svc->actions[i].name, name))
			return &svc->actions[i];
	return NULL;
}

static enum api_sigv4_status lookup_secret(void *ctx, const char *access_key, const char *token,
                                           char *secret, size_t size, struct kerr **err)
{
	struct api_call *call = ctx;
	_cleanup_kerr_ struct kerr *why = NULL;
	char s[SECRET_KEY_LEN + 1];
	const char *peer_key = cloud_peer_key(call->cloud);

	/* Another deployment's call (api/peer.c): its key is none of an account's. */
	if (peer_key && !token && !strcmp(access_key, CLOUD_PEER_ACCESS_KEY)) {
		call->peer = true;
		str_copy(secret, peer_key, size);
		return API_SIGV4_OK;
	}
	if (cloud_caller_by_key(call->cloud, access_key, token, &call->account, &call->session, s,
	                        &why) < 0) {
		if (why->kind == KERR_NOT_FOUND)
			return API_SIGV4_UNKNOWN_KEY;
		if (why->subject == KERR_SUBJECT_SESSION_TOKEN)
			return why->kind == KERR_LIMIT ? API_SIGV4_TOKEN_EXPIRED
			                               : API_SIGV4_TOKEN_INVALID;
		kerr_pass(err, steal_ptr(why));
		return API_SIGV4_INTERNAL;
	}
	str_copy(secret, s, size);
	return API_SIGV4_OK;
}

static int decode_params(const struct api_http_request *req, struct api_params *params,
                         struct kerr **err)
{
	const char *ctype = api_http_header(req, "Content-Type");

	if (req->query[0] &&
	    api_params_decode(params, req->query, strlen(req->query), NULL, err) < 0)
		return -1;
	if (!strcasecmp(req->method, "POST") && req->body_len &&
	    (!ctype || !strncasecmp(ctype, "application/x-www-form-urlencoded", 33)) &&
	    api_params_decode(params, req->body, req->body_len, NULL, err) < 0)
		return -1;
	return 0;
}

int api_authenticate(struct cloud *cloud, const struct api_http_request *req,
                     const char *const *accept, struct api_params *params,
                     struct api_sigv4_result *auth, struct api_call *call, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct api_sigv4_params sp = {
	    .services = accept, .now = time(NULL), .lookup = lookup_secret, .lookup_ctx = call};
	const struct api_service *svc;
	int r;

	call->cloud = cloud;
	if (decode_params(req, params, &err) < 0) {
		api_error_from_kerr(e, err,
		                    err->kind == KERR_LIMIT ? "RequestLimitExceeded"
		                                            : "InvalidParameterValue");
		return -1;
	}
	r = api_sigv4_verify(req, &sp, auth, &err);
	/* Errors are told in the protocol of the service the request was signed for. */
	svc = find_service(auth->auth.service);
	e->protocol = svc ? svc->protocol : API_PROTOCOL_EC2;
	if (r < 0) {
		api_error_from_sigv4(e, auth->status, err);
		return -1;
	}
	/* The deployments' key signs their calls to each other, and nothing else does. */
	if (call->peer != !strcmp(auth->auth.service, CLOUD_PEER_SERVICE)) {
		api_error_full(e, 403, "AuthFailure",
		               call->peer
		                   ? "the deployments' key signs only their calls to each other"
		                   : "only the deployments' key signs calls between them");
		return -1;
	}
	api_params_root(params, &call->root);
	call->action = api_node_str(&call->root, "Action");
	if (!call->action && !(svc && svc->serve)) {
		api_error_set(e, "MissingAction", "The request must contain the parameter Action");
		return -1;
	}
	/* A region of EC2's that kiln does not serve yet is made on its first request. */
	if (cloud_region_open(cloud, auth->auth.region, &err) < 0) {
		if (err->kind == KERR_NOT_FOUND || err->kind == KERR_AUTH ||
		    err->kind == KERR_LIMIT)
			api_error_full(e, 401, "AuthFailure", "%s", err->msg);
		else
			api_error_from_kerr(e, err, NULL);
		return -1;
	}
	call->region = auth->auth.region;
	return 0;
}

int api_dispatch(struct cloud *cloud, struct api_cache *cache, struct api_ratelimit *limits,
                 const struct api_http_request *req, struct buf *out, struct api_cache_answer **hit,
                 const char *request_id, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct api_params params;
	struct api_call call = {.cloud = cloud};
	struct api_sigv4_result auth;
	const struct api_service *svc;
	const struct api_action *a;
	struct api_xml x;
	char *key = NULL;
	uint64_t gen = 0;
	int r = -1;

	*hit = NULL;
	api_params_init(&params);
	if (api_authenticate(cloud, req, service_names, &params, &auth, &call, e) < 0)
		goto out;
	if (call.peer) {
		r = api_peer_dispatch(&call, out, e);
		if (r < 0)
			buf_reset(out);
		goto out;
	}
	svc = find_service(auth.auth.service);
	call.host = api_http_header(req, "Host");
	if (svc && svc->serve) {
		r = svc->serve(&call, req, out, e);
		goto out;
	}
	a = svc ? find_action(svc, call.action) : NULL;
	if (!a) {
		api_error_invalid_action(e, call.action);
		goto out;
	}
	/* Throttled as EC2 does: per account, mutating actions apart from the others. */
	if (!api_ratelimit_take(limits, call.account.id,
	                        (a->flags & API_MUTATING) ? API_RATE_MUTATING
	                                                  : API_RATE_DESCRIBE)) {
		api_error_full(e, 503, "RequestLimitExceeded", "Request limit exceeded.");
		goto out;
	}
	/* A launch template's parameters join the request's first: the checks see them all
	 * (ImageId may come from the template; MissingParameter when neither gives it). */
	if ((a->flags & API_LAUNCH_TEMPLATE) && api_call_launch_template(&call, &params, e) < 0)
		goto out;
	if (check_declared(a, &call, e) < 0)
		goto out;
	if (a->flags & API_CACHED) {
		key = cache_key(&call, &params);
		gen = db_generation(cloud->db); /* before the query: see db_generation */
		if ((*hit = api_cache_get(cache, key, gen))) {
			free(steal_ptr(key)); /* kept: nothing to make */
			r = 0;
			goto out;
		}
	}
	api_xml_init(&x, out);
	call.xml = &x;
	svc->begin(&x, a->name, request_id);
	if (a->fn(&call, e) < 0) {
		api_xml_release(&x);
		buf_reset(out);
		goto out;
	}
	if (svc->end)
		svc->end(&x, a->name, request_id);
	if (api_xml_end(&x, &err) < 0) {
		api_xml_release(&x);
		buf_reset(out);
		api_error_from_kerr(e, err, NULL);
		goto out;
	}
	api_xml_release(&x);
	if (key) {
		const char *at = strstr(out->data, request_id);
		api_cache_put(cache, key, gen, out->data, out->len,
		              at ? (size_t)(at - out->data) : out->len);
		free(steal_ptr(key));
	}
	r = 0;
out:
	if (key) /* made by nobody: those waiting for it make their own */
		api_cache_abandon(cache, key, gen);
	free(key);
	api_params_release(&params);
	return r;
}
