/* The Marketplace Catalog API (marketplace-catalog 2018-09-17, rest-json) on kiln's listener:
 * requests signed for the service aws-marketplace without an X-Amz-Target are the Catalog's,
 * routed by method and path; JSON in and out with jansson; errors as rest-json tells them (the
 * status, x-amzn-ErrorType and {"message": ...}). What a change set does is cloud/catalog.c's. */
#include "api/catalog.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/dispatch.h"
#include "cloud/catalog.h"
#include "util/cleanup.h"
#include "util/str.h"
#include "util/banned.h"

#define SERVICE        "aws-marketplace"
#define LIST_MAX       20
#define ERROR_MESSAGE  512
#define CATALOG_REGION "us-east-1" /* the Catalog's one endpoint's region */

/* The errors of the model, with their statuses; every code sent is one of these (static
 * strings: the header outlives the handler). */
static const struct {
	const char *code;
	int status;
} catalog_errors[] = {
    {"ValidationException", 422},           {"ResourceNotFoundException", 404},
    {"ResourceInUseException", 423},        {"AccessDeniedException", 403},
    {"ServiceQuotaExceededException", 402}, {"ResourceNotSupportedException", 415},
    {"ThrottlingException", 429},           {"InternalServiceException", 500},
    {"UnknownOperationException", 404},     {"MissingAuthenticationTokenException", 403},
    {"IncompleteSignatureException", 400},  {"UnrecognizedClientException", 403},
    {"InvalidSignatureException", 403},     {"ExpiredTokenException", 403},
};

struct catalog_call {
	struct api_call call;
	json_t *body; /* the request's JSON (an empty object for GET and PATCH) */
	struct api_http_response *resp;
	const char *code; /* the error's, one of catalog_errors */
	char message[ERROR_MESSAGE];
};

__attribute__((format(printf, 3, 4))) static int fail(struct catalog_call *cc, const char *code,
                                                      const char *fmt, ...)
{
	va_list ap;

	cc->code = code;
	va_start(ap, fmt);
	vsnprintf(cc->message, sizeof(cc->message), fmt, ap);
	va_end(ap);
	return -1;
}

/* kiln's error kinds to the Catalog's errors: one table, by kind. */
static int fail_cloud(struct catalog_call *cc, const struct kerr *k)
{
	static const char *const by_kind[KERR__COUNT] = {
	    [KERR_INVALID] = "ValidationException",
	    [KERR_NOT_FOUND] = "ResourceNotFoundException",
	    [KERR_CONFLICT] = "ResourceInUseException",
	    [KERR_AUTH] = "AccessDeniedException",
	    [KERR_LIMIT] = "ServiceQuotaExceededException",
	};
	const char *code = k && (unsigned)k->kind < KERR__COUNT && by_kind[k->kind]
	                       ? by_kind[k->kind]
	                       : "InternalServiceException";

	return fail(cc, code, "%s", k ? k->msg : "an internal error has occurred");
}

static const char *str_member(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* A parameter: from the query string (GET, PATCH: its lowercase name) or the JSON body. */
static const char *param(struct catalog_call *cc, const char *query_name, const char *json_name)
{
	const char *v = api_node_str(&cc->call.root, query_name);

	return v ? v : str_member(cc->body, json_name);
}

static int catalog_check(struct catalog_call *cc, const char *catalog)
{
	if (!catalog)
		return fail(cc, "ValidationException", "Catalog is required");
	if (strcmp(catalog, CATALOG_NAME))
		return fail(cc, "ValidationException", "Catalog '%s' is not %s", catalog,
		            CATALOG_NAME);
	return 0;
}

static void iso(int64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *arn(const struct catalog_call *cc, const char *kind, const char *id)
{
	char text[256];

	snprintf(text, sizeof(text), "arn:aws:aws-marketplace:%s:%s:%s/%s/%s", cc->call.region,
	         cc->call.account.id, CATALOG_NAME, kind, id);
	return json_string(text);
}

static void set_time(json_t *o, const char *key, int64_t ms)
{
	char t[32];

	iso(ms, t);
	json_object_set_new(o, key, json_string(t));
}

/* Operations: each fills out (the response's JSON object) or fails. */

static int start_change_set(struct catalog_call *cc, json_t *out)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct catalog_start_request req = {
	    .account = cc->call.account.id,
	    .changes = json_object_get(cc->body, "ChangeSet"),
	    .name = str_member(cc->body, "ChangeSetName"),
	    .token = str_member(cc->body, "ClientRequestToken"),
	    .intent = str_member(cc->body, "Intent"),
	};
	char id[CATALOG_ID_MAX];

	if (catalog_check(cc, str_member(cc->body, "Catalog")) < 0)
		return -1;
	if (!req.changes)
		return fail(cc, "ValidationException", "ChangeSet is required");
	if (cloud_catalog_start(cc->call.cloud, &req, id, &err) < 0)
		return fail_cloud(cc, err);
	json_object_set_new(out, "ChangeSetId", json_string(id));
	json_object_set_new(out, "ChangeSetArn", arn(cc, "ChangeSet", id));
	return 0;
}

static void change_set_members(struct catalog_call *cc, const struct catalog_change_set *cs,
                               json_t *o)
{
	json_object_set_new(o, "ChangeSetId", json_string(cs->id));
	json_object_set_new(o, "ChangeSetArn", arn(cc, "ChangeSet", cs->id));
	if (cs->name[0])
		json_object_set_new(o, "ChangeSetName", json_string(cs->name));
	set_time(o, "StartTime", cs->start_ms);
	if (cs->end_ms)
		set_time(o, "EndTime", cs->end_ms);
	json_object_set_new(o, "Status", json_string(cs->status));
	if (cs->failure_code[0])
		json_object_set_new(o, "FailureCode", json_string(cs->failure_code));
}

static int describe_change_set(struct catalog_call *cc, json_t *out)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *id = param(cc, "changeSetId", "ChangeSetId");
	struct catalog_change_set cs;

	if (catalog_check(cc, param(cc, "catalog", "Catalog")) < 0)
		return -1;
	if (!id)
		return fail(cc, "ValidationException", "ChangeSetId is required");
	if (cloud_catalog_change_set(cc->call.cloud, cc->call.account.id, id, &cs, &err) < 0)
		return fail_cloud(cc, err);
	change_set_members(cc, &cs, out);
	if (cs.failure[0])
		json_object_set_new(out, "FailureDescription", json_string(cs.failure));
	json_object_set(out, "ChangeSet", cs.changes);
	catalog_change_set_release(&cs);
	return 0;
}

/* The first value of the filter named name in FilterList, or NULL. */
static const char *filter_value(const json_t *filters, const char *name)
{
	size_t i;
	json_t *f;

	json_array_foreach(
	    filters, i,
	    f) if (str_member(f, "Name") &&
	           !strcmp(
	               str_member(f, "Name"),
	               name)) return json_string_value(json_array_get(json_object_get(f,
	                                                                              "ValueList"),
	                                                              0));
	return NULL;
}

/* MaxResults and NextToken (an offset kiln made) to the page's first and count. */
static int page_of(struct catalog_call *cc, size_t *first, size_t *count)
{
	const json_t *max = json_object_get(cc->body, "MaxResults");
	const char *token = str_member(cc->body, "NextToken");
	char *end;

	*first = 0;
	*count = LIST_MAX;
	if (max) {
		json_int_t m = json_integer_value(max);
		if (!json_is_integer(max) || m < 1 || m > LIST_MAX)
			return fail(cc, "ValidationException", "MaxResults is 1 to %d", LIST_MAX);
		*count = (size_t)m;
	}
	if (token) {
		unsigned long v = strtoul(token, &end, 10);
		if (!*token || *end || v > 1000000)
			return fail(cc, "ValidationException",
			            "NextToken '%.64s' is not one of kiln's", token);
		*first = v;
	}
	return 0;
}

static bool descending(const json_t *body)
{
	const char *order = str_member(json_object_get(body, "Sort"), "SortOrder");

	return !order || strcmp(order, "ASCENDING");
}

static void next_token(json_t *out, size_t first, size_t count, size_t n)
{
	char t[24];

	if (first + count < n) {
		snprintf(t, sizeof(t), "%zu", first + count);
		json_object_set_new(out, "NextToken", json_string(t));
	}
}

static int list_change_sets(struct catalog_call *cc, json_t *out)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const json_t *filters = json_object_get(cc->body, "FilterList");
	struct catalog_change_set_filter f = {
	    .name = filter_value(filters, "ChangeSetName"),
	    .status = filter_value(filters, "Status"),
	    .entity = filter_value(filters, "EntityId"),
	};
	struct catalog_change_set *v = NULL;
	json_t *list = json_array();
	size_t n, first, count;

	json_object_set_new(out, "ChangeSetSummaryList", list);
	if (catalog_check(cc, str_member(cc->body, "Catalog")) < 0 ||
	    page_of(cc, &first, &count) < 0)
		return -1;
	if (cloud_catalog_change_sets(cc->call.cloud, cc->call.account.id, &f, &v, &n, &err) < 0)
		return fail_cloud(cc, err);
	for (size_t k = 0; k < n; k++) {
		size_t i = descending(cc->body) ? k : n - 1 - k;
		if (k >= first && k < first + count) {
			json_t *o = json_object();
			change_set_members(cc, &v[i], o);
			json_object_set(o, "EntityIdList", v[i].entity_ids);
			json_array_append_new(list, o);
		}
	}
	next_token(out, first, count, n);
	for (size_t i = 0; i < n; i++)
		catalog_change_set_release(&v[i]);
	free(v);
	return 0;
}

static int cancel_change_set(struct catalog_call *cc, json_t *out)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *id = param(cc, "changeSetId", "ChangeSetId");

	if (catalog_check(cc, param(cc, "catalog", "Catalog")) < 0)
		return -1;
	if (!id)
		return fail(cc, "ValidationException", "ChangeSetId is required");
	if (cloud_catalog_cancel(cc->call.cloud, cc->call.account.id, id, &err) < 0)
		return fail_cloud(cc, err);
	json_object_set_new(out, "ChangeSetId", json_string(id));
	json_object_set_new(out, "ChangeSetArn", arn(cc, "ChangeSet", id));
	return 0;
}

static int describe_entity(struct catalog_call *cc, json_t *out)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *id = param(cc, "entityId", "EntityId");
	struct catalog_entity e;
	char type[32], ident[64];
	char *details;

	if (catalog_check(cc, param(cc, "catalog", "Catalog")) < 0)
		return -1;
	if (!id)
		return fail(cc, "ValidationException", "EntityId is required");
	if (cloud_catalog_entity(cc->call.cloud, cc->call.account.id, id, &e, &err) < 0)
		return fail_cloud(cc, err);
	snprintf(type, sizeof(type), "%s@1.0", e.type);
	snprintf(ident, sizeof(ident), "%s@%d", e.id, e.revision);
	json_object_set_new(out, "EntityType", json_string(type));
	json_object_set_new(out, "EntityIdentifier", json_string(ident));
	json_object_set_new(out, "EntityArn", arn(cc, e.type, e.id));
	set_time(out, "LastModifiedDate", e.modified_ms);
	details = json_dumps(e.details, JSON_COMPACT);
	json_object_set_new(out, "Details", json_string(details ? details : "{}"));
	free(details);
	json_object_set(out, "DetailsDocument", e.details);
	catalog_entity_release(&e);
	return 0;
}

/* A filter's values: FilterList's {Name, ValueList}, or EntityTypeFilters' {ValueList}. */
static json_t *values_of(const json_t *body, const char *list_name, const char *type_name)
{
	const json_t *filters = json_object_get(body, "FilterList");
	const json_t *typed =
	    json_object_get(json_object_get(body, "EntityTypeFilters"), "AmiProductFilters");
	json_t *typed_values = json_object_get(json_object_get(typed, type_name), "ValueList");
	size_t i;
	json_t *f;

	if (typed_values)
		return typed_values;
	json_array_foreach(filters, i,
	                   f) if (str_member(f, "Name") &&
	                          !strcmp(str_member(f, "Name"),
	                                  list_name)) return json_object_get(f, "ValueList");
	return NULL;
}

static int list_entities(struct catalog_call *cc, json_t *out)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *type = str_member(cc->body, "EntityType");
	const char *owner = str_member(cc->body, "OwnershipType");
	json_t *names = values_of(cc->body, "Name", "ProductTitle");
	struct catalog_entity_filter f = {
	    .type = type,
	    .shared = owner && !strcmp(owner, "SHARED"),
	    .ids = values_of(cc->body, "EntityId", "EntityId"),
	    .names = names ? names : values_of(cc->body, "ProductTitle", "ProductTitle"),
	    .visibilities = values_of(cc->body, "Visibility", "Visibility"),
	};
	struct catalog_entity *v = NULL;
	json_t *list = json_array();
	size_t n, first, count;

	json_object_set_new(out, "EntitySummaryList", list);
	if (catalog_check(cc, str_member(cc->body, "Catalog")) < 0 ||
	    page_of(cc, &first, &count) < 0)
		return -1;
	if (!type)
		return fail(cc, "ValidationException", "EntityType is required");
	if (owner && strcmp(owner, "SELF") && strcmp(owner, "SHARED"))
		return fail(cc, "ValidationException", "OwnershipType is SELF or SHARED");
	if (cloud_catalog_entities(cc->call.cloud, cc->call.account.id, &f, &v, &n, &err) < 0)
		return fail_cloud(cc, err);
	for (size_t k = 0; k < n; k++) {
		size_t i = descending(cc->body) ? k : n - 1 - k;
		if (k >= first && k < first + count) {
			char t[32];
			json_t *o = json_object();

			snprintf(t, sizeof(t), "%s@1.0", v[i].type);
			json_object_set_new(o, "Name", json_string(v[i].name));
			json_object_set_new(o, "EntityType", json_string(v[i].type));
			json_object_set_new(o, "EntityId", json_string(v[i].id));
			json_object_set_new(o, "EntityArn", arn(cc, v[i].type, v[i].id));
			set_time(o, "LastModifiedDate", v[i].modified_ms);
			json_object_set_new(o, "Visibility", json_string(v[i].visibility));
			if (!strcmp(v[i].type, "AmiProduct"))
				json_object_set_new(o, "AmiProductSummary",
				                    json_pack("{s:s, s:s}", "ProductTitle",
				                              v[i].name, "Visibility",
				                              v[i].visibility));
			json_array_append_new(list, o);
		}
	}
	next_token(out, first, count, n);
	for (size_t i = 0; i < n; i++)
		catalog_entity_release(&v[i]);
	free(v);
	return 0;
}

static const struct {
	const char *method, *path;
	int (*fn)(struct catalog_call *cc, json_t *out);
} routes[] = {
    {"POST", "/StartChangeSet", start_change_set},
    {"GET", "/DescribeChangeSet", describe_change_set},
    {"POST", "/ListChangeSets", list_change_sets},
    {"PATCH", "/CancelChangeSet", cancel_change_set},
    {"GET", "/DescribeEntity", describe_entity},
    {"POST", "/ListEntities", list_entities},
};

bool api_catalog_request(const struct api_http_request *req)
{
	const char *auth = api_http_header(req, "Authorization");

	return auth && strstr(auth, "/" SERVICE "/aws4_request") &&
	       !api_http_header(req, "X-Amz-Target");
}

static void render_error(struct api_http_response *resp, const char *code, const char *message)
{
	const char *type = "InternalServiceException";
	int status = 500;
	char *text;
	json_t *body;

	for (size_t i = 0; i < sizeof(catalog_errors) / sizeof(catalog_errors[0]); i++)
		if (!strcmp(catalog_errors[i].code, code)) {
			type = catalog_errors[i].code;
			status = catalog_errors[i].status;
		}
	body = json_pack("{s:s}", "message", message);
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	buf_reset(&resp->body);
	buf_addstr(&resp->body, text ? text : "{}");
	free(text);
	resp->status = status;
	str_copy(resp->content_type, "application/json", sizeof(resp->content_type));
	resp->headers[0] = (struct api_header){"x-amzn-ErrorType", type};
	resp->nheaders = 1;
}

/* Codes of the shared authentication (EC2's, for a region it refuses, parameters it cannot
 * decode) as the Catalog tells them. */
static const char *auth_code(const struct api_error *e)
{
	for (size_t i = 0; i < sizeof(catalog_errors) / sizeof(catalog_errors[0]); i++)
		if (!strcmp(catalog_errors[i].code, e->code))
			return catalog_errors[i].code;
	if (e->status == 401 || e->status == 403)
		return "AccessDeniedException";
	return e->status >= 500 ? "InternalServiceException" : "ValidationException";
}

void api_catalog_serve(struct cloud *cloud, const struct api_http_request *req,
                       struct api_http_response *resp)
{
	static const char *const services[] = {SERVICE, NULL};
	struct catalog_call cc = {.resp = resp};
	struct api_params params;
	struct api_sigv4_result auth;
	struct api_error e = {0};
	json_t *out = NULL;
	json_error_t je;
	size_t i;

	api_params_init(&params);
	if (api_authenticate(cloud, req, services, &params, &auth, &cc.call, &e) < 0) {
		render_error(resp, auth_code(&e), e.message);
		goto done;
	}
	/* AWS's Catalog has one endpoint, in us-east-1 (botocore's endpoint data): a request
	 * signed for another region is refused there for its credential scope. */
	if (strcmp(cc.call.region, CATALOG_REGION)) {
		char text[160];
		snprintf(text, sizeof(text),
		         "Credential should be scoped to a valid region, not '%s'. ",
		         cc.call.region);
		render_error(resp, "InvalidSignatureException", text);
		goto done;
	}
	if (req->body_len) {
		cc.body = json_loadb(req->body, req->body_len, 0, &je);
		if (!json_is_object(cc.body)) {
			render_error(resp, "ValidationException",
			             "the request body is not a JSON object");
			goto done;
		}
	} else {
		cc.body = json_object();
	}
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (!strcmp(routes[i].path, req->path) &&
		    !strcasecmp(routes[i].method, req->method))
			break;
	if (i == sizeof(routes) / sizeof(routes[0])) {
		render_error(resp, "UnknownOperationException",
		             "kiln's Marketplace Catalog has no such operation");
		goto done;
	}
	out = json_object();
	if (routes[i].fn(&cc, out) < 0) {
		render_error(resp, cc.code, cc.message);
	} else {
		char *text = json_dumps(out, JSON_COMPACT);
		buf_reset(&resp->body);
		buf_addstr(&resp->body, text ? text : "{}");
		free(text);
		resp->status = 200;
		str_copy(resp->content_type, "application/json", sizeof(resp->content_type));
	}
done:
	json_decref(out);
	json_decref(cc.body);
	api_params_release(&params);
}
