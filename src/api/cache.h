/* Answers of read actions, kept while nothing was written since: each entry remembers the
 * database generation it was computed under and is used only while the generation is the same
 * and the entry is younger than its time limit (answers that depend on the clock, such as the
 * hour terminated instances stay visible, are at most that late). Waiters and dashboards that
 * poll the same Describe call get it without a query; any write makes the next one fresh.
 *
 * An answer is made once per generation: while one request computes it, the others asking for
 * the same answer wait for it (or, when only its age ran out, get the kept one meanwhile).
 * Kept answers are shared, read-only and counted: a request holds one while its bytes are sent
 * (api_cache_answer_release after), so no request copies them. */
#ifndef KILN_API_CACHE_H
#define KILN_API_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct api_cache;
struct api_cache_answer;

/* max_bytes: the most the kept answers may take together. */
struct api_cache *api_cache_new(size_t max_bytes, unsigned max_age_ms);
void api_cache_free(struct api_cache *c);

/* The answer kept for key under generation gen (a reference), or NULL: then the caller computes
 * it and must end with api_cache_put or api_cache_abandon for the same key and gen, which wakes
 * the requests that waited for it. */
struct api_cache_answer *api_cache_get(struct api_cache *c, const char *key, uint64_t gen);
/* Keep body (whose request id starts at request_id_at) for key under generation gen. */
void api_cache_put(struct api_cache *c, const char *key, uint64_t gen, const char *body, size_t len,
                   size_t request_id_at);
/* The answer for key under gen could not be made: the requests waiting for it make their own. */
void api_cache_abandon(struct api_cache *c, const char *key, uint64_t gen);

/* A kept answer's bytes; its request id (API_REQUEST_ID_LEN bytes) starts at *request_id_at. */
const char *api_cache_answer_body(const struct api_cache_answer *a, size_t *len,
                                  size_t *request_id_at);
void api_cache_answer_release(struct api_cache_answer *a);

#endif
