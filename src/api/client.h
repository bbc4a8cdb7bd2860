/* A client of the EC2 Query API: form-encoded POSTs signed with SigV4 (the same code that
 * verifies them on the server builds the canonical request), sent with libcurl, answered with a
 * parsed XML tree or the EC2 error. What the kiln CLI uses to talk to `kiln serve`. */
#ifndef KILN_API_CLIENT_H
#define KILN_API_CLIENT_H

#include <stddef.h>

#include "api/xmlread.h"
#include "util/buf.h"
#include "util/kerr.h"

struct api_client_config {
	const char *endpoint; /* "http://127.0.0.1:8773" */
	const char *region;
	const char *access_key;
	const char *secret_key;
	const char *service; /* the signature's service; NULL: "ec2" */
};

struct api_client;

int api_client_open(const struct api_client_config *cfg, struct api_client **out,
                    struct kerr **err);
void api_client_close(struct api_client *c);
/* The region the client signs for, and the endpoint it calls. */
const char *api_client_region(const struct api_client *c);
const char *api_client_endpoint(const struct api_client *c);

/* The parameters of one call, form-encoded as they are added. */
struct api_args {
	struct buf body;
};
void api_args_init(struct api_args *a, const char *action);
void api_args_add(struct api_args *a, const char *name, const char *value);
void api_args_addf(struct api_args *a, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* prefix.1, prefix.2, ... = values. */
void api_args_list(struct api_args *a, const char *prefix, char *const *values, size_t n);
void api_args_release(struct api_args *a);

/* An EC2 error answer: its code is in code (a KERR_INVALID/KERR_NOT_FOUND/... error whose
 * message is "Code: message"). */
struct api_client_error {
	int status;
	char code[64];
};

/* The headers a POST of a to the endpoint carries, signed now, as "Name: value\n" lines:
 * Content-Type, Host, X-Amz-Date, Authorization (for transports other than HTTP: exec.h). */
int api_client_signed_headers(struct api_client *c, const struct api_args *a, struct buf *out,
                              struct kerr **err) __attribute__((warn_unused_result));

/* Send and keep the raw answer: 0 with *status and body (appended), -1 when no answer came. */
int api_client_send(struct api_client *c, const struct api_args *a, long *status, struct buf *body,
                    struct kerr **err);
/* The same, keeping only the answer's first keep bytes in body (enough for an error document)
 * and its whole length in *received: a load generator's call, which copies no answer. */
int api_client_send_head(struct api_client *c, const struct api_args *a, size_t keep, long *status,
                         struct buf *body, size_t *received, struct kerr **err);
/* Send; 0 with *doc the response (the caller frees it with xml_free), -1 with err (and, for an
 * EC2 error answer, ec filled when not NULL). */
int api_client_call(struct api_client *c, const struct api_args *a, struct xml_node **doc,
                    struct api_client_error *ec, struct kerr **err);
/* An answer other than 200 (an EC2 error document) as err, "Code: message"; always -1. */
int api_client_answer_error(const struct api_client *c, long status, const char *body, size_t len,
                            struct api_client_error *ec, struct kerr **err);

#endif
