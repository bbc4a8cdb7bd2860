/* AWS Signature Version 4, the part both sides share: AWS's UriEncode, the day-scoped signing
 * key and the signature, and a client's Authorization header. The server's verifier
 * (api/sigv4.c) and the store's S3 client (store/blob_s3.c) both build on it. */
#ifndef KILN_UTIL_SIGV4_H
#define KILN_UTIL_SIGV4_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/kerr.h"

#define SIGV4_ALGORITHM  "AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR "aws4_request"
/* The hex SHA-256 of an empty body. */
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

bool sigv4_unreserved(unsigned char c);
/* AWS's UriEncode: every byte but the unreserved ones (and '/' when keep_slash) as %XX. */
int sigv4_uri_encode(struct buf *out, const char *s, size_t len, bool keep_slash,
                     struct kerr **err);
/* The signature (64 lowercase hex digits + NUL) of string_to_sign under secret and the scope. */
void sigv4_sign(const char *secret, const char *date, const char *region, const char *service,
                const char *string_to_sign, char out[65]);

/* A client request to sign: it sends Host, X-Amz-Date and X-Amz-Content-Sha256 and signs
 * exactly those three. path is the raw path (encoded here, '/' kept); query is canonical
 * already (sorted, encoded, "key=" for sub-resources) or "". */
struct sigv4_request {
	const char *method;
	const char *path;
	const char *query;
	const char *host;         /* as in the Host header: "127.0.0.1:7480" */
	const char *amz_date;     /* YYYYMMDDTHHMMSSZ */
	const char *payload_hash; /* lowercase hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
};
/* The Authorization header's value into out. */
int sigv4_authorization(const struct sigv4_request *r, const char *access_key, const char *secret,
                        const char *region, const char *service, struct buf *out,
                        struct kerr **err);

#endif
