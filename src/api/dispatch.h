/* The dispatcher: authenticates a request, finds its action in the action table, makes the checks
 * every action shares, and runs the handler. */
#ifndef KILN_API_DISPATCH_H
#define KILN_API_DISPATCH_H

#include "api/cache.h"
#include "api/ratelimit.h"
#include "api/server.h"
#include "api/sigv4.h"

/* The first steps of every request, whatever its transport: its parameters decoded into params
 * (which the caller initialized and releases), its signature verified for one of services
 * (NULL-terminated; NULL: "ec2" alone), its account, region (made on first use) and Action in
 * call (pointing into auth and params). -1 with e set, in the protocol of the service the
 * request was signed for. */
int api_authenticate(struct cloud *cloud, const struct api_http_request *req,
                     const char *const *services, struct api_params *params,
                     struct api_sigv4_result *auth, struct api_call *call, struct api_error *e);

/* 0 with the response body in out, or in *hit: a kept answer (when the action allows one) whose
 * request id the caller replaces with request_id and releases once sent; -1 with e set (503
 * RequestLimitExceeded when the caller's bucket in limits, which may be NULL, is empty). */
int api_dispatch(struct cloud *cloud, struct api_cache *cache, struct api_ratelimit *limits,
                 const struct api_http_request *req, struct buf *out, struct api_cache_answer **hit,
                 const char *request_id, struct api_error *e);

#endif
