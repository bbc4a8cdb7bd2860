/* Request flow: decode parameters, verify the signature, find the action, check the region and
 * DryRun once for every action, run the handler, render XML. Nothing here knows a resource. */
#include "server.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/cache.h"
#include "api/http.h"
#include "api/sigv4.h"
#include "util/cleanup.h"
#include "util/str.h"
#include "util/xalloc.h"
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

struct api_server {
	struct cloud *cloud;
	struct api_http_server *http;
	struct api_cache *cache;
};

#define CACHE_BYTES ((size_t)64 << 20)
#define CACHE_MAX_AGE_MS 1000

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

/* Authenticate, dispatch, render: 0 with the body in resp; e set (and -1) on an EC2 error. */
static int serve(struct api_server *s, const struct api_http_request *req, struct buf *out,
                 const char *request_id, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct api_params params;
	struct api_call call = {.cloud = s->cloud};
	struct key_lookup k = {s->cloud, &call.account};
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
	if (!cloud_region_known(s->cloud, auth.auth.region)) {
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
		gen = db_generation(s->cloud->db); /* before the query: see db_generation */
		if (api_cache_get(s->cache, key, gen, request_id, out)) {
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
			api_cache_put(s->cache, key, gen, out->data, out->len, (size_t)(at - out->data));
	}
	r = 0;
out:
	free(key);
	api_params_release(&params);
	return r;
}

int api_call_filters(struct api_call *c, struct api_filters *out, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;

	if (api_filters_parse(&c->root, "Filter", out, &err) < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		return -1;
	}
	return 0;
}

struct field_match {
	const struct api_filter_field *fields;
	size_t n;
	const void *obj;
	const struct tag *tags;
	size_t ntags;
};

/* tag:KEY (the value of that tag), tag-key and tag-value (any of the resource's tags). */
static int match_tag(const struct field_match *m, const struct api_filter *f)
{
	bool key = !strcmp(f->name, "tag-key");

	for (size_t i = 0; i < m->ntags; i++) {
		if (!strncmp(f->name, "tag:", 4)) {
			if (!strcmp(m->tags[i].key, f->name + 4))
				return api_filter_match(f, m->tags[i].value);
		} else if (api_filter_match(f, key ? m->tags[i].key : m->tags[i].value)) {
			return 1;
		}
	}
	return 0;
}

static int match_field(void *ctx, const struct api_filter *f, struct kerr **err)
{
	const struct field_match *m = ctx;
	char buf[64];

	if (!strncmp(f->name, "tag:", 4) || !strcmp(f->name, "tag-key") || !strcmp(f->name, "tag-value"))
		return match_tag(m, f);
	for (size_t i = 0; i < m->n; i++) {
		const struct api_filter_field *fd = &m->fields[i];
		if (strcmp(fd->name, f->name))
			continue;
		return api_filter_match(f, fd->kind == API_FIELD_TEXT    ? (const char *)m->obj + fd->offset
					   : fd->kind == API_FIELD_CONST ? fd->constant
									 : fd->compute(m->obj, buf, sizeof(buf)));
	}
	return kerr_set(err, KERR_INVALID, "The filter '%s' is invalid", f->name);
}

int api_call_filter_match(const struct api_filters *f, const struct api_filter_field *fields, size_t nfields,
			  const void *obj, const struct tag_set *tags, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct field_match ctx = {fields, nfields, obj, NULL, 0};
	int m;

	if (tags)
		ctx.tags = tag_set_of(tags, (const char *)obj, &ctx.ntags);
	m = api_filters_match(f, match_field, &ctx, &err);
	if (m < 0)
		api_error_from_kerr(e, err, "InvalidParameterValue");
	return m;
}

/* Pages of a list: NextToken is the position of the first item of the page, as "p<N>". */
int api_call_page(struct api_call *c, int64_t min, int64_t max, struct api_page *p, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *token = api_node_str(&c->root, "NextToken");
	int64_t size = 0;

	memset(p, 0, sizeof(*p));
	if (api_node_int(&c->root, "MaxResults", min, max, &size, &err) < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		return -1;
	}
	p->max = (size_t)size;
	if (token) {
		char *end;
		unsigned long long at = token[0] == 'p' ? strtoull(token + 1, &end, 10) : 0;
		if (token[0] != 'p' || !token[1] || *end || token[1] < '0' || token[1] > '9') {
			api_error_set(e, "InvalidParameterValue", "The token '%s' is invalid", token);
			return -1;
		}
		p->start = (size_t)at;
	}
	return 0;
}

bool api_page_take(struct api_page *p)
{
	size_t at = p->seen++;

	if (at < p->start)
		return false;
	if (p->max && at >= p->start + p->max) {
		p->more = true;
		return false;
	}
	return true;
}

void api_page_end(struct api_call *c, const struct api_page *p)
{
	if (p->more)
		api_xml_elemf(c->xml, "nextToken", "p%zu", p->start + p->max);
}

/* EC2's code for an id of the wrong shape, by prefix. */
static const struct {
	const char *prefix, *code;
} malformed[] = {
	{"ami", "InvalidAMIID.Malformed"},
	{"i", "InvalidInstanceID.Malformed"},
	{"vol", "InvalidVolumeID.Malformed"},
	{"snap", "InvalidSnapshotID.Malformed"},
};

bool api_id_ok(const char *prefix, const char *id, struct api_error *e)
{
	const char *code = "InvalidParameterValue";

	if (id_valid(prefix, id))
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(malformed); i++)
		if (!strcmp(malformed[i].prefix, prefix))
			code = malformed[i].code;
	api_error_set(e, code, "Invalid id: \"%s\" (expecting \"%s-...\")", id, prefix);
	return false;
}

int api_call_id(struct api_call *c, const char *name, const char *prefix, bool required, const char **id,
		struct api_error *e)
{
	*id = api_node_str(&c->root, name);
	if (!*id) {
		if (!required)
			return 0;
		api_error_missing_parameter(e, name);
		return -1;
	}
	return api_id_ok(prefix, *id, e) ? 0 : -1;
}

int api_call_id_list(struct api_call *c, const char *name, const char *prefix, const char ***ids, size_t *n,
		     struct api_error *e)
{
	*n = api_node_strings(&c->root, name, ids);
	for (size_t i = 0; i < *n; i++)
		if (!api_id_ok(prefix, (*ids)[i], e))
			return -1;
	return 0;
}

bool api_description_ok(const char *desc, struct api_error *e)
{
	if (!desc || strlen(desc) <= 255)
		return true;
	api_error_set(e, "InvalidParameterValue", "The description may be at most 255 characters long");
	return false;
}

int api_call_unencrypted(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	bool encrypted = false;

	if (api_node_bool(&c->root, "Encrypted", &encrypted, &err) < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		return -1;
	}
	if (encrypted) {
		api_error_set(e, "InvalidParameterValue", "kiln does not encrypt volumes or snapshots; Encrypted must be false");
		return -1;
	}
	return 0;
}

/* EC2's codes for its quotas, whichever action went past one. */
static const char *const quota_codes[QUOTA__COUNT] = {
    [QUOTA_VCPUS] = "VcpuLimitExceeded",         [QUOTA_VOLUMES] = "VolumeLimitExceeded",
    [QUOTA_VOLUME_GIB] = "VolumeLimitExceeded",  [QUOTA_SNAPSHOTS] = "SnapshotLimitExceeded",
    [QUOTA_IMAGES] = "ResourceLimitExceeded",
};

void api_error_from_cloud(struct api_error *e, const struct kerr *err, const char *code)
{
	int q = cloud_quota_of(err);

	api_error_from_kerr(e, err, q < 0 ? code : quota_codes[q]);
}

bool api_selected(const char *const *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i], name))
			return true;
	return n == 0;
}

const char *api_first_missing(const char *const *list, size_t nlist, const void *items, size_t n, size_t size)
{
	for (size_t i = 0; i < nlist; i++) {
		bool found = false;
		for (size_t k = 0; k < n && !found; k++)
			found = !strcmp((const char *)items + k * size, list[i]);
		if (!found)
			return list[i];
	}
	return NULL;
}

int api_describe_list(struct api_call *c, const struct api_list *l, struct api_error *e)
{
	_cleanup_free_ const char **ids = NULL;
	_cleanup_kerr_ struct kerr *err = NULL;
	struct api_filters filters = {0};
	struct tag_set tags = {0};
	struct api_page page;
	const char *missing;
	void *items = NULL;
	size_t nids, n = 0;
	int r = -1;

	if (api_call_id_list(c, l->id_param, l->prefix, &ids, &nids, e) < 0 ||
	    api_call_page(c, 5, l->max_results, &page, e) < 0 || api_call_filters(c, &filters, e) < 0)
		goto out;
	if (l->load(c, &items, &n, &err) < 0 || cloud_tags_list(c->cloud, c->account.id, c->region, &tags, &err) < 0) {
		api_error_from_kerr(e, err, NULL);
		goto out;
	}
	/* Every id asked for must be there, as EC2 answers. */
	if ((missing = api_first_missing(ids, nids, items, n, l->size))) {
		api_error_set(e, l->not_found_code, "The %s '%s%s%s' does not exist", l->noun, l->brackets ? "[" : "",
			      missing, l->brackets ? "]" : "");
		goto out;
	}
	api_xml_open(c->xml, l->set);
	for (size_t k = 0; k < n; k++) {
		const void *item = (const char *)items + k * l->size;
		int m;

		if (!api_selected(ids, nids, item) || (l->keep && !l->keep(c, item, l->ctx)))
			continue;
		m = api_call_filter_match(&filters, l->fields, l->nfields, item, &tags, e);
		if (m < 0)
			goto out;
		if (!m || !api_page_take(&page))
			continue;
		api_xml_item(c->xml);
		l->write(c->xml, item, &tags);
		api_xml_close(c->xml);
	}
	api_xml_close(c->xml);
	api_page_end(c, &page);
	r = 0;
out:
	free(items);
	api_filters_release(&filters);
	tag_set_release(&tags);
	return r;
}

static int handle(void *ctx, const struct api_http_request *req, struct api_http_response *resp)
{
	struct api_error e = {0};
	char request_id[API_REQUEST_ID_LEN + 1];

	api_request_id(request_id);
	if (serve(ctx, req, &resp->body, request_id, &e) == 0) {
		resp->status = 200;
		return 0;
	}
	buf_reset(&resp->body);
	resp->status = e.status;
	return api_error_render(&e, request_id, &resp->body, NULL) < 0 ? -1 : 0;
}

int api_server_start(struct cloud *cloud, const struct api_http_config *http,
                     struct api_server **out, struct kerr **err)
{
	struct api_server *s = xcalloc(1, sizeof(*s));
	struct api_http_config cfg = *http;

	cfg.handle = handle;
	cfg.ctx = s;

	s->cloud = cloud;
	s->cache = api_cache_new(CACHE_BYTES, CACHE_MAX_AGE_MS);
	if (api_http_start(&cfg, &s->http, err) < 0) {
		api_cache_free(s->cache);
		free(s);
		return -1;
	}
	*out = s;
	return 0;
}

uint16_t api_server_port(const struct api_server *s)
{
	return api_http_port(s->http);
}

void api_server_stop(struct api_server *s)
{
	if (!s)
		return;
	api_http_stop(s->http, 5000);
	api_cache_free(s->cache);
	free(s);
}
