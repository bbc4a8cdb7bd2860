/* AWS Signature Version 4 verification, as AWS services do it, for the Authorization header form
 * and the presigned query form (X-Amz-Algorithm, X-Amz-Credential, ... X-Amz-Signature). The
 * canonicalization steps are public for tests and fuzzing. */
#ifndef KILN_API_SIGV4_H
#define KILN_API_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "api/http.h"
#include "util/buf.h"
#include "util/kerr.h"

/* Why a request is not authenticated; errors.h maps each to EC2's code and HTTP status. */
enum api_sigv4_status {
	API_SIGV4_OK = 0,
	/* no Authorization header, no X-Amz-* query: MissingAuthenticationToken 401 */
	API_SIGV4_MISSING,
	/* Authorization/query lacks a part, or another algorithm: IncompleteSignature 400 */
	API_SIGV4_INCOMPLETE,
	/* bad date, scope or header list; both forms at once: AuthFailure 401 */
	API_SIGV4_MALFORMED,
	/* no secret for the access key: AuthFailure 401 */
	API_SIGV4_UNKNOWN_KEY,
	/* signature, a signed header or the body hash differ: SignatureDoesNotMatch 403 */
	API_SIGV4_MISMATCH,
	/* clock skew past 15 minutes, or a presigned URL expired: RequestExpired 400 */
	API_SIGV4_EXPIRED,
	/* the key lookup failed: InternalError 500 */
	API_SIGV4_INTERNAL,
	/* a temporary key without its session token, with another one, or a token with a key
	 * that takes none: AuthFailure 401 (STS: InvalidClientTokenId 403) */
	API_SIGV4_TOKEN_INVALID,
	/* a temporary key past its expiration: RequestExpired 400 (STS: ExpiredToken 400) */
	API_SIGV4_TOKEN_EXPIRED,
	API_SIGV4__COUNT
};

#define API_SIGV4_MAX_SKEW           900    /* seconds, either way */
#define API_SIGV4_MAX_EXPIRES        604800 /* seconds a presigned URL may live (7 days) */
#define API_SIGV4_KEY_MAX            128    /* access key id */
#define API_SIGV4_SECRET_MAX         128
#define API_SIGV4_SCOPE_PART_MAX     63 /* region, service */
#define API_SIGV4_SIGNED_HEADERS_MAX 1024
#define API_SIGV4_TOKEN_MAX          2048 /* X-Amz-Security-Token */

/* Secret for an access key id and the session token the request carries (NULL when none):
 * API_SIGV4_OK and secret (NUL-terminated, at most size-1 bytes) when the key is known and the
 * token is the one it takes, API_SIGV4_UNKNOWN_KEY, API_SIGV4_TOKEN_INVALID or
 * API_SIGV4_TOKEN_EXPIRED when not, API_SIGV4_INTERNAL with err when the lookup itself failed. */
typedef enum api_sigv4_status (*api_sigv4_lookup_fn)(void *ctx, const char *access_key,
                                                     const char *token, char *secret, size_t size,
                                                     struct kerr **err);

struct api_sigv4_params {
	/* the scope's service must be one of these (NULL-terminated); NULL = "ec2" alone */
	const char *const *services;
	time_t now; /* the server's clock */
	/* lowercase hex of the body's SHA-256, or NULL to hash req->body */
	const char *payload_sha256;
	api_sigv4_lookup_fn lookup;
	void *lookup_ctx;
};

/* What the request said about its signature, before any check of the signature itself. */
struct api_sigv4_auth {
	bool presigned;
	char access_key[API_SIGV4_KEY_MAX + 1];
	char date[9]; /* YYYYMMDD of the credential scope */
	char region[API_SIGV4_SCOPE_PART_MAX + 1];
	char service[API_SIGV4_SCOPE_PART_MAX + 1];
	char amz_date[17]; /* YYYYMMDDTHHMMSSZ */
	time_t signed_at;  /* amz_date as unix time */
	long expires;      /* X-Amz-Expires (presigned), else 0 */
	char signed_headers[API_SIGV4_SIGNED_HEADERS_MAX + 1]; /* canonical: sorted, ';'-joined */
	char signature[65]; /* as sent ("" when not 64 characters) */
	/* X-Amz-Security-Token (the header, or the query parameter when presigned); "" when none */
	char token[API_SIGV4_TOKEN_MAX + 1];
};

struct api_sigv4_result {
	enum api_sigv4_status status;
	struct api_sigv4_auth auth; /* filled as far as parsing got */
};

/* Verify req's signature. 0: out->status is API_SIGV4_OK and out->auth names the access key,
 * region, service and date. -1: out->status says why, err says what (KERR_AUTH for unknown key,
 * mismatch and a refused token, KERR_INVALID otherwise, the lookup's kind for API_SIGV4_INTERNAL).
 */
int api_sigv4_verify(const struct api_http_request *req, const struct api_sigv4_params *p,
                     struct api_sigv4_result *out, struct kerr **err)
    __attribute__((warn_unused_result));

/* Find and parse the Authorization header or the presigned query parameters (services as in
 * struct api_sigv4_params). Checks form, not time or signature. -1 sets *why. */
int api_sigv4_parse(const struct api_http_request *req, const char *const *services,
                    struct api_sigv4_auth *out, enum api_sigv4_status *why, struct kerr **err)
    __attribute__((warn_unused_result));

/* The canonical request (method, URI, query, headers, signed headers, payload hash). */
int api_sigv4_canonical_request(const struct api_http_request *req,
                                const struct api_sigv4_auth *auth, const char *payload_hash,
                                struct buf *out, struct kerr **err)
    __attribute__((warn_unused_result));
/* The pieces of it: a raw path with dot segments and repeated slashes removed, then every byte
 * but unreserved ones and '/' percent-encoded; a raw query decoded, re-encoded strictly, sorted
 * by name then value (X-Amz-Signature left out when presigned). */
int api_sigv4_canonical_uri(const char *raw_path, struct buf *out, struct kerr **err)
    __attribute__((warn_unused_result));
int api_sigv4_canonical_query(const char *raw_query, bool presigned, struct buf *out,
                              struct kerr **err) __attribute__((warn_unused_result));

const char *api_sigv4_status_name(enum api_sigv4_status s);

#endif
