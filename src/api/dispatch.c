/* Request flow: decode parameters, verify the signature, find the action in the action table,
 * check the region and DryRun once for every action, run the handler, render XML. Nothing here
 * knows a resource. */
#include "api/dispatch.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/sigv4.h"
#include "util/cleanup.h"
#include "util/str.h"
#include "util/banned.h"

static const struct api_action actions[] = {
    {"AttachVolume", api_attach_volume, API_MUTATING},
    {"CopyImage", api_copy_image, API_MUTATING},
    {"CopySnapshot", api_copy_snapshot, API_MUTATING},
    {"CreateImage", api_create_image, API_MUTATING},
    {"CreateSnapshot", api_create_snapshot, API_MUTATING},
    {"CreateTags", api_create_tags, API_MUTATING},
    {"CreateVolume", api_create_volume, API_MUTATING},
    {"DeleteSnapshot", api_delete_snapshot, API_MUTATING},
    {"DeleteTags", api_delete_tags, API_MUTATING},
    {"DeleteVolume", api_delete_volume, API_MUTATING},
    {"DeregisterImage", api_deregister_image, API_MUTATING},
    {"DescribeAvailabilityZones", api_describe_availability_zones, API_READ | API_CACHED},
    {"DescribeImageAttribute", api_describe_image_attribute, API_READ | API_CACHED},
    {"DescribeImages", api_describe_images, API_READ | API_CACHED},
    {"DescribeInstanceStatus", api_describe_instance_status, API_READ},
    {"DescribeInstanceTypes", api_describe_instance_types, API_READ | API_CACHED},
    {"DescribeInstances", api_describe_instances, API_READ | API_CACHED},
    {"DescribeRegions", api_describe_regions, API_READ | API_CACHED},
    {"DescribeSnapshotAttribute", api_describe_snapshot_attribute, API_READ | API_CACHED},
    {"DescribeSnapshots", api_describe_snapshots, API_READ | API_CACHED},
    {"DescribeTags", api_describe_tags, API_READ | API_CACHED},
    {"DescribeVolumes", api_describe_volumes, API_READ | API_CACHED},
    {"DetachVolume", api_detach_volume, API_MUTATING},
    {"DisableImage", api_disable_image, API_MUTATING},
    {"DisableImageDeprecation", api_disable_image_deprecation, API_MUTATING},
    {"EnableImage", api_enable_image, API_MUTATING},
    {"EnableImageDeprecation", api_enable_image_deprecation, API_MUTATING},
    {"GetConsoleOutput", api_get_console_output, API_READ},
    {"ModifyImageAttribute", api_modify_image_attribute, API_MUTATING},
    {"ModifyInstanceAttribute", api_modify_instance_attribute, API_MUTATING},
    {"ModifySnapshotAttribute", api_modify_snapshot_attribute, API_MUTATING},
    {"RebootInstances", api_reboot_instances, API_MUTATING},
    {"RegisterImage", api_register_image, API_MUTATING},
    {"ResetImageAttribute", api_reset_image_attribute, API_MUTATING},
    {"RunInstances", api_run_instances, API_MUTATING},
    {"StartInstances", api_start_instances, API_MUTATING},
    {"StopInstances", api_stop_instances, API_MUTATING},
    {"TerminateInstances", api_terminate_instances, API_MUTATING},
};

/* What an answer depends on besides the database: the caller, the region, the host it reached
 * (DescribeRegions names it) and every parameter but the signature's. */
static char *cache_key(const struct api_call *call, const struct api_params *p)
{
	struct buf key = BUF_INIT;

	buf_addf(&key, "%s\n%s\n%s\n", call->account.id, call->region, call->host ? call->host : "");
	for (size_t i = 0; i < p->n; i++) {
		const struct api_param *it = &p->items[p->sorted[i]];
		if (strncmp(it->name, "X-Amz-", 6))
			buf_addf(&key, "%s=%s\n", it->name, it->value);
	}
	return buf_detach(&key);
}

static const struct api_action *find_action(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(actions); i++)
		if (!strcmp(actions[i].name, name))
			return &actions[i];
	return NULL;
}

struct key_lookup {
	struct cloud *cloud;
	struct account *account;
};

static int lookup_secret(void *ctx, const char *access_key, char *secret, size_t size,
                         struct kerr **err)
{
	struct key_lookup *k = ctx;
	_cleanup_kerr_ struct kerr *why = NULL;
	char s[SECRET_KEY_LEN + 1];

	if (cloud_account_by_key(k->cloud, access_key, k->account, s, &why) < 0) {
		if (why->kind == KERR_NOT_FOUND)
			return 0;
		return kerr_pass(err, steal_ptr(why));
	}
	str_copy(secret, s, size);
	return 1;
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

int api_dispatch(struct cloud *cloud, struct api_cache *cache, const struct api_http_request *req,
                 struct buf *out, const char *request_id, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct api_params params;
	struct api_call call = {.cloud = cloud};
	struct key_lookup k = {cloud, &call.account};
	struct api_sigv4_params sp = {.now = time(NULL), .lookup = lookup_secret, .lookup_ctx = &k};
	struct api_sigv4_result auth;
	const struct api_action *a;
	struct api_xml x;
	char *key = NULL;
	uint64_t gen = 0;
	bool dry = false;
	int r = -1;

	api_params_init(&params);
	if (decode_params(req, &params, &err) < 0) {
		api_error_from_kerr(e, err,
		                    err->kind == KERR_LIMIT ? "RequestLimitExceeded"
		                                            : "InvalidParameterValue");
		goto out;
	}
	if (api_sigv4_verify(req, &sp, &auth, &err) < 0) {
		api_error_from_sigv4(e, auth.status, err);
		goto out;
	}
	api_params_root(&params, &call.root);
	call.action = api_node_str(&call.root, "Action");
	if (!call.action) {
		api_error_set(e, "MissingAction", "The request must contain the parameter Action");
		goto out;
	}
	a = find_action(call.action);
	if (!a) {
		api_error_invalid_action(e, call.action);
		goto out;
	}
	if (!cloud_region_known(cloud, auth.auth.region)) {
		api_error_full(e, 401, "AuthFailure", "The region '%s' is not served here",
		               auth.auth.region);
		goto out;
	}
	if (api_node_bool(&call.root, "DryRun", &dry, &err) < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		goto out;
	}
	if (dry && !(a->flags & API_MUTATING)) {
		api_error_dry_run(e);
		goto out;
	}
	call.region = auth.auth.region;
	call.dry_run = dry;
	call.host = api_http_header(req, "Host");
	if (a->flags & API_CACHED) {
		key = cache_key(&call, &params);
		gen = db_generation(cloud->db); /* before the query: see db_generation */
		if (api_cache_get(cache, key, gen, request_id, out)) {
			r = 0;
			goto out;
		}
	}
	api_xml_init(&x, out);
	call.xml = &x;
	api_xml_begin(&x, a->name, request_id);
	if (a->fn(&call, e) < 0) {
		api_xml_release(&x);
		buf_reset(out);
		goto out;
	}
	if (api_xml_end(&x, &err) < 0) {
		api_xml_release(&x);
		buf_reset(out);
		api_error_from_kerr(e, err, NULL);
		goto out;
	}
	api_xml_release(&x);
	if (key) {
		const char *at = strstr(out->data, request_id);
		if (at)
			api_cache_put(cache, key, gen, out->data, out->len, (size_t)(at - out->data));
	}
	r = 0;
out:
	free(key);
	api_params_release(&params);
	return r;
}
