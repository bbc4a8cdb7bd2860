/* kiln error kinds and signature failures to EC2 codes and HTTP statuses, in tables. */
#include "api/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/xml.h"
#include "util/str.h"
#include "util/banned.h"

/* docs/design/errors.md: one row per kind. Handlers name precise codes (….NotFound,
 * IncorrectInstanceState) through api_error_set or api_error_from_kerr's code. */
static const struct {
	const char *code;
	int status;
} kind_map[KERR__COUNT] = {
    [KERR_INTERNAL] = {"InternalError", 500},
    [KERR_INVALID] = {"InvalidParameterValue", 400},
    [KERR_NOT_FOUND] = {"InvalidParameterValue", 400},
    [KERR_CONFLICT] = {"IncorrectState", 400},
    [KERR_LIMIT] = {"ResourceLimitExceeded", 400},
    [KERR_AUTH] = {"UnauthorizedOperation", 403},
    [KERR_IO] = {"InternalError", 500},
    [KERR_NOSPACE] = {"InsufficientCapacity", 500},
    [KERR_CORRUPT] = {"InternalError", 500},
};

/* Codes whose status is not 400 (AWS's errors-overview; botocore retries 5xx, so only the
 * server's own failures are 5xx). */
static const struct {
	const char *code;
	int status;
} code_status[] = {
    {"AuthFailure", 401},           {"MissingAuthenticationToken", 401},   {"OptInRequired", 401},
    {"SignatureDoesNotMatch", 403}, {"UnauthorizedOperation", 403},        {"Blocked", 403},
    {"DryRunOperation", 412},       {"RequestEntityTooLarge", 413},        {"InternalError", 500},
    {"InsufficientCapacity", 500},  {"InsufficientInstanceCapacity", 500}, {"Unavailable", 503},
    {"ServiceUnavailable", 503},    {"RequestLimitExceeded", 503},
};

static const struct {
	const char *code;
	int status;
} sigv4_map[API_SIGV4__COUNT] = {
    [API_SIGV4_OK] = {"InternalError", 500}, /* not an error: a caller bug */
    [API_SIGV4_MISSING] = {"MissingAuthenticationToken", 401},
    [API_SIGV4_INCOMPLETE] = {"IncompleteSignature", 400},
    [API_SIGV4_MALFORMED] = {"AuthFailure", 401},
    [API_SIGV4_UNKNOWN_KEY] = {"AuthFailure", 401},
    [API_SIGV4_MISMATCH] = {"SignatureDoesNotMatch", 403},
    [API_SIGV4_EXPIRED] = {"RequestExpired", 400},
    [API_SIGV4_INTERNAL] = {"InternalError", 500},
};

int api_error_status_of(const char *code)
{
	for (size_t i = 0; i < sizeof(code_status) / sizeof(code_status[0]); i++)
		if (!strcmp(code_status[i].code, code))
			return code_status[i].status;
	return 400;
}

const char *api_error_code_of_kind(enum kerr_kind kind, int *status)
{
	if ((unsigned)kind >= KERR__COUNT)
		kind = KERR_INTERNAL;
	if (status)
		*status = kind_map[kind].status;
	return kind_map[kind].code;
}

__attribute__((format(printf, 4, 0))) static void
verror(struct api_error *e, int status, const char *code, const char *fmt, va_list ap)
{
	e->status = status;
	str_copy(e->code, code, sizeof(e->code));
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
}

void api_error_set(struct api_error *e, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(e, api_error_status_of(code), code, fmt, ap);
	va_end(ap);
}

void api_error_full(struct api_error *e, int status, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(e, status, code, fmt, ap);
	va_end(ap);
}

void api_error_from_kerr(struct api_error *e, const struct kerr *k, const char *code)
{
	int status;
	const char *msg = k ? k->msg : "an internal error has occurred";

	if (code) {
		api_error_set(e, code, "%s", msg);
		return;
	}
	code = api_error_code_of_kind(k ? k->kind : KERR_INTERNAL, &status);
	api_error_full(e, status, code, "%s", msg);
}

void api_error_from_sigv4(struct api_error *e, enum api_sigv4_status s, const struct kerr *k)
{
	if ((unsigned)s >= API_SIGV4__COUNT)
		s = API_SIGV4_OK;
	api_error_full(e, sigv4_map[s].status, sigv4_map[s].code, "%s",
	               k ? k->msg : api_sigv4_status_name(s));
}

void api_error_invalid_action(struct api_error *e, const char *action)
{
	api_error_full(e, 400, "InvalidAction",
	               "The action %.128s is not valid for this web service.", action);
}

void api_error_missing_parameter(struct api_error *e, const char *name)
{
	api_error_full(e, 400, "MissingParameter", "The request must contain the parameter %.128s",
	               name);
}

void api_error_dry_run(struct api_error *e)
{
	api_error_full(e, 412, "DryRunOperation",
	               "Request would have succeeded, but DryRun flag is set.");
}

int api_error_render(const struct api_error *e, const char *request_id, struct buf *out,
                     struct kerr **err)
{
	return api_xml_error(out, e->code, e->message, request_id, err);
}
