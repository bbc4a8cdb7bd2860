/* Per-account request rate limits, as EC2's: a token bucket for each account and class of
 * action (describe and other reads, mutating), refilled at a steady rate up to its size. A
 * request that finds its bucket empty is refused with 503 RequestLimitExceeded, which the aws
 * CLI, boto3 and the other SDKs retry with backoff as throttling; other accounts' buckets are
 * untouched, so one busy client cannot starve another. Off unless configured. */
#ifndef KILN_API_RATELIMIT_H
#define KILN_API_RATELIMIT_H

#include <stdbool.h>

#include "util/kerr.h"

enum api_rate_class {
	API_RATE_DESCRIBE, /* actions that change nothing */
	API_RATE_MUTATING,
	API_RATE_CLASSES,
};

struct api_rate_limit {
	double rate;    /* requests per second refilled; 0: no limit for the class */
	unsigned burst; /* the bucket's size (0: rate, at least 1) */
};

struct api_rate_limits {
	struct api_rate_limit cls[API_RATE_CLASSES];
};

/* "RATE" or "RATE:BURST" (requests per second, may be a fraction such as 0.5; the bucket's
 * size) into l; "0" is no limit. */
int api_rate_limit_parse(const char *s, struct api_rate_limit *l, struct kerr **err)
    __attribute__((warn_unused_result));

struct api_ratelimit;

/* NULL when no class has a limit (then every request passes). */
struct api_ratelimit *api_ratelimit_new(const struct api_rate_limits *limits);
void api_ratelimit_free(struct api_ratelimit *r);

/* Take a token from account's bucket of class c: false when it is empty. r may be NULL. */
bool api_ratelimit_take(struct api_ratelimit *r, const char *account, enum api_rate_class c);

#endif
