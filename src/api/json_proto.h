/* The awsJson protocol (1.0 and 1.1) on kiln's one listener: a POST whose JSON body is the
 * operation's input, the operation named by the X-Amz-Target header ("Prefix.Operation"), the
 * answer a JSON object, errors {"__type": code, "message": …} with their HTTP status. Requests
 * signed for the service "aws-marketplace" with an X-Amz-Target are the Agreement API
 * (AWSMPCommerceService_v20200301) and the Metering Service (AWSMPMeteringService). */
#ifndef KILN_API_JSON_PROTO_H
#define KILN_API_JSON_PROTO_H

#include <jansson.h>

#include "api/server.h"

#define API_JSON_CONTENT_TYPE "application/x-amz-json-1.1"

/* One operation's call: the input object (never NULL), the output object its handler fills,
 * and the target ("AWSMPMeteringService.MeterUsage"), which is the action errors.c's table
 * knows the operation by. */
struct api_json_call {
	struct api_call *call;
	json_t *in, *out;
	const char *target;
};
struct api_json_op {
	const char *name;
	int (*fn)(struct api_json_call *j, struct api_error *e);
};

extern const struct api_json_op api_agreement_ops[];
extern const size_t api_agreement_ops_count;
extern const struct api_json_op api_metering_ops[];
extern const size_t api_metering_ops_count;

/* A request signed for "aws-marketplace" (call authenticated): the awsJson services by their
 * X-Amz-Target. 0 with the answer in out, or -1 with e set. */
int api_marketplace_serve(struct api_call *call, const struct api_http_request *req,
                          struct buf *out, struct api_error *e);

/* Input members: a string (NULL when absent; -1 with ValidationException when required and
 * absent, or not a string), an integer, a boolean, a timestamp (epoch seconds, as botocore
 * sends them, to milliseconds). */
int api_json_str(struct api_json_call *j, json_t *obj, const char *name, bool required,
                 const char **out, struct api_error *e);
int api_json_int(struct api_json_call *j, json_t *obj, const char *name, bool required,
                 int64_t *out, struct api_error *e);
int api_json_bool(struct api_json_call *j, json_t *obj, const char *name, bool *out,
                  struct api_error *e);
int api_json_time(struct api_json_call *j, json_t *obj, const char *name, bool required,
                  int64_t *ms, struct api_error *e);
/* A timestamp member of the output, in epoch seconds. */
void api_json_set_time(json_t *obj, const char *name, int64_t ms);
/* The error of the cloud in this operation (errors.c's table, by the target). */
void api_json_cloud_error(struct api_json_call *j, const struct kerr *k, struct api_error *e);

#endif
