/* The awsJson protocol: the body read with jansson, the operation found by X-Amz-Target in its
 * service's table, the answer and the errors written as botocore reads them (json.py parser:
 * the code from "__type", after any '#'). */
#include "api/json_proto.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/cleanup.h"
#include "util/str.h"
#include "util/banned.h"

static const struct {
	const char *prefix;
	const struct api_json_op *ops;
	const size_t *nops;
} services[] = {
    {"AWSMPCommerceService_v20200301", api_agreement_ops, &api_agreement_ops_count},
    {"AWSMPMeteringService", api_metering_ops, &api_metering_ops_count},
};

static void json_freep(json_t **j)
{
	json_decref(*j);
}
#define _cleanup_json_ __attribute__((cleanup(json_freep)))

static const struct api_json_op *find_op(const char *target)
{
	const char *dot = strchr(target, '.');

	if (!dot)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(services); i++) {
		if (strlen(services[i].prefix) != (size_t)(dot - target) ||
		    strncmp(services[i].prefix, target, (size_t)(dot - target)))
			continue;
		for (size_t k = 0; k < *services[i].nops; k++)
			if (!strcmp(services[i].ops[k].name, dot + 1))
				return &services[i].ops[k];
	}
	return NULL;
}

int api_marketplace_serve(struct api_call *call, const struct api_http_request *req,
                          struct buf *out, struct api_error *e)
{
	_cleanup_json_ json_t *in = NULL, *res = NULL;
	const char *target = api_http_header(req, "X-Amz-Target");
	const struct api_json_op *op;
	struct api_json_call j = {.call = call, .target = target};
	json_error_t jerr;
	char *text;
	int r;

	if (!target) {
		/* The Catalog API (rest-json, no X-Amz-Target) is not served here. */
		api_error_full(
		    e, 404, "UnknownOperationException",
		    "no X-Amz-Target: kiln serves only the Agreement API and the Metering "
		    "Service under the signing name aws-marketplace");
		return -1;
	}
	op = find_op(target);
	if (!op || strcasecmp(req->method, "POST")) {
		api_error_full(e, 400, "UnknownOperationException", "unknown operation %.200s",
		               target);
		return -1;
	}
	in = req->body_len ? json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr)
	                   : json_object();
	if (!in || !json_is_object(in)) {
		api_error_full(e, 400, "SerializationException",
		               "the request body is not a JSON object: %.200s",
		               in ? "another JSON value" : jerr.text);
		return -1;
	}
	res = json_object();
	j.in = in;
	j.out = res;
	call->action = op->name;
	r = op->fn(&j, e);
	if (r < 0)
		return -1;
	text = json_dumps(res, JSON_COMPACT);
	if (!text) {
		api_error_full(e, 500, "InternalFailure", "cannot write the answer");
		return -1;
	}
	buf_addstr(out, text);
	free(text);
	return 0;
}

static int invalid(struct api_error *e, const char *name, const char *what)
{
	api_error_full(e, 400, "ValidationException", "%.100s %s", name, what);
	return -1;
}

int api_json_str(struct api_json_call *j, json_t *obj, const char *name, bool required,
                 const char **out, struct api_error *e)
{
	json_t *v = json_object_get(obj, name);

	(void)j;
	*out = NULL;
	if (!v || json_is_null(v))
		return required ? invalid(e, name, "is required") : 0;
	if (!json_is_string(v))
		return invalid(e, name, "must be a string");
	*out = json_string_value(v);
	return 0;
}

int api_json_int(struct api_json_call *j, json_t *obj, const char *name, bool required,
                 int64_t *out, struct api_error *e)
{
	json_t *v = json_object_get(obj, name);

	(void)j;
	if (!v || json_is_null(v))
		return required ? invalid(e, name, "is required") : 0;
	if (!json_is_integer(v))
		return invalid(e, name, "must be an integer");
	*out = (int64_t)json_integer_value(v);
	return 0;
}

int api_json_bool(struct api_json_call *j, json_t *obj, const char *name, bool *out,
                  struct api_error *e)
{
	json_t *v = json_object_get(obj, name);

	(void)j;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return invalid(e, name, "must be a boolean");
	*out = json_is_true(v);
	return 0;
}

int api_json_time(struct api_json_call *j, json_t *obj, const char *name, bool required,
                  int64_t *ms, struct api_error *e)
{
	json_t *v = json_object_get(obj, name);

	(void)j;
	if (!v || json_is_null(v))
		return required ? invalid(e, name, "is required") : 0;
	if (json_is_integer(v) && json_integer_value(v) >= 0 &&
	    json_integer_value(v) < (json_int_t)1 << 40) {
		*ms = (int64_t)json_integer_value(v) * 1000;
		return 0;
	}
	/* botocore sends fractions of a second as a JSON real: milliseconds, truncated. */
	if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 1e12) {
		*ms = (int64_t)floor(json_real_value(v) * 1000);
		return 0;
	}
	return invalid(e, name, "must be a timestamp in seconds since the epoch");
}

void api_json_set_time(json_t *obj, const char *name, int64_t ms)
{
	json_object_set_new(obj, name,
	                    ms % 1000 ? json_real((double)ms / 1000) : json_integer(ms / 1000));
}

void api_json_cloud_error(struct api_json_call *j, const struct kerr *k, struct api_error *e)
{
	api_error_from_cloud(e, j->target, k);
}
