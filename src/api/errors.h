/* EC2 errors: the one table from kiln's errors (kind, subject) to EC2 codes, wording and HTTP
 * statuses, the statuses of the codes that are not 400, and constructors for the API's own. */
#ifndef KILN_API_ERRORS_H
#define KILN_API_ERRORS_H

#include "api/sigv4.h"
#include "util/buf.h"
#include "util/kerr.h"

/* The protocol an error is told in: the service the request was signed for. */
enum api_protocol {
	API_PROTOCOL_EC2 = 0, /* <Response><Errors><Error>… */
	API_PROTOCOL_STS,     /* the Query protocol's <ErrorResponse><Error><Type>… */
	API_PROTOCOL_JSON,    /* awsJson's {"__type": …, "message": …} (json_proto.c) */
	API_PROTOCOL__COUNT
};

#define API_STS_NAMESPACE "https://sts.amazonaws.com/doc/2011-06-15/"

struct api_error {
	int status;                 /* HTTP status */
	char code[64];              /* EC2 code: "InvalidInstanceID.NotFound" */
	char message[512];          /* shown to the client */
	enum api_protocol protocol; /* EC2's when left zero */
	/* The cloud's error behind it, told to the caller as well when has_cause (calls between
	 * deployments: api/peer.c). */
	bool has_cause;
	struct kerr cause;
};

/* A specific code; the status comes from the code (api_error_status_of). */
void api_error_set(struct api_error *e, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Status, code and message all given. */
void api_error_full(struct api_error *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* From an error the API made itself (a parameter that does not parse): the code is `code` when
 * not NULL (its status from the code), else the kind's default from the table; the message is
 * k's. A NULL k is an internal error. */
void api_error_from_kerr(struct api_error *e, const struct kerr *k, const char *code);
/* From an error of the cloud in action (its name, "RunInstances"): the code and status from the
 * table of (kind, subject, action) in errors.c, EC2's wording when the table has it. */
void api_error_from_cloud(struct api_error *e, const char *action, const struct kerr *k);
/* From a failed signature check (status and message from the verifier), in the codes of
 * e->protocol's service. */
void api_error_from_sigv4(struct api_error *e, enum api_sigv4_status s, const struct kerr *k);

/* The common ones, with AWS's wording. */
void api_error_invalid_action(struct api_error *e, const char *action);  /* 400 InvalidAction */
void api_error_missing_parameter(struct api_error *e, const char *name); /* 400 MissingParameter */
void api_error_dry_run(struct api_error *e);                             /* 412 DryRunOperation */

/* HTTP status EC2 uses for a code: 400 unless the table says otherwise. */
int api_error_status_of(const char *code);
/* Default code and status for a kind. */
const char *api_error_code_of_kind(enum kerr_kind kind, int *status);

/* The error document for e in its protocol (api_xml_error, api_xml_query_error). */
int api_error_render(const struct api_error *e, const char *request_id, struct buf *out,
                     struct kerr **err) __attribute__((warn_unused_result));

#endif
