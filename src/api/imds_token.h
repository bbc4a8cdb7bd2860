/* The metadata service's session tokens (IMDSv2): stateless, an expiry and an HMAC over the
 * instance's id and that expiry with a key the daemon draws at start, so a token names one
 * instance, ends at its TTL, and no table of tokens is kept. A restart of the daemon ends them
 * all (clients PUT a new one on a 401, as EC2's SDKs do). */
#ifndef KILN_API_IMDS_TOKEN_H
#define KILN_API_IMDS_TOKEN_H

#include <stdint.h>

#include "util/kerr.h"

#define IMDS_TOKEN_KEY_LEN 32
#define IMDS_TOKEN_LEN     64 /* hex characters, without the NUL */
#define IMDS_TTL_MAX       21600

struct imds_token_key {
	uint8_t k[IMDS_TOKEN_KEY_LEN];
};

int imds_token_key_init(struct imds_token_key *key, struct kerr **err);
/* A token for instance that ends at expires_s (seconds since the epoch). */
void imds_token_make(const struct imds_token_key *key, const char *instance, int64_t expires_s,
                     char out[IMDS_TOKEN_LEN + 1]);
/* 0 when token is one of instance's and now_s is before its end; -1 otherwise. */
int imds_token_check(const struct imds_token_key *key, const char *token, const char *instance,
                     int64_t now_s);
/* The TTL header's value: 1..IMDS_TTL_MAX in plain decimal; -1 for anything else. */
int imds_ttl_parse(const char *s);

#endif
