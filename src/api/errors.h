/* EC2 errors: the one table from kiln's error kinds to EC2 codes and HTTP statuses, the statuses
 * of the codes that are not 400, and constructors so a handler can name a precise code. */
#ifndef KILN_API_ERRORS_H
#define KILN_API_ERRORS_H

#include "api/sigv4.h"
#include "util/buf.h"
#include "util/kerr.h"

struct api_error {
	int status;        /* HTTP status */
	char code[64];     /* EC2 code: "InvalidInstanceID.NotFound" */
	char message[512]; /* shown to the client */
};

/* A specific code; the status comes from the code (api_error_status_of). */
void api_error_set(struct api_error *e, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Status, code and message all given. */
void api_error_full(struct api_error *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* From a kiln error: the code is `code` when not NULL (its status from the code), else the
 * kind's default from the table; the message is k's. A NULL k is an internal error. */
void api_error_from_kerr(struct api_error *e, const struct kerr *k, const char *code);
/* From a failed signature check (status and message from the verifier). */
void api_error_from_sigv4(struct api_error *e, enum api_sigv4_status s, const struct kerr *k);

/* The common ones, with AWS's wording. */
void api_error_invalid_action(struct api_error *e, const char *action);  /* 400 InvalidAction */
void api_error_missing_parameter(struct api_error *e, const char *name); /* 400 MissingParameter */
void api_error_dry_run(struct api_error *e);                             /* 412 DryRunOperation */

/* HTTP status EC2 uses for a code: 400 unless the table says otherwise. */
int api_error_status_of(const char *code);
/* Default code and status for a kind. */
const char *api_error_code_of_kind(enum kerr_kind kind, int *status);

/* The EC2 error document for e (api_xml_error). */
int api_error_render(const struct api_error *e, const char *request_id, struct buf *out,
                     struct kerr **err) __attribute__((warn_unused_result));

#endif
