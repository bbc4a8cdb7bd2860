/* Answers of read actions, kept while nothing was written since: each entry remembers the
 * database generation it was computed under and is used only while the generation is the same
 * and the entry is younger than its time limit (answers that depend on the clock, such as the
 * hour terminated instances stay visible, are at most that late). Waiters and dashboards that
 * poll the same Describe call get it without a query; any write makes the next one fresh. */
#ifndef KILN_API_CACHE_H
#define KILN_API_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct api_cache;

/* max_bytes: the most the kept answers may take together. */
struct api_cache *api_cache_new(size_t max_bytes, unsigned max_age_ms);
void api_cache_free(struct api_cache *c);

/* The answer kept for key under generation gen, appended to out with the request id at
 * *request_id_at replaced by request_id (same length); false when there is none. */
bool api_cache_get(struct api_cache *c, const char *key, uint64_t gen, const char *request_id,
                   struct buf *out);
/* Keep body (whose request id starts at request_id_at) for key under generation gen. */
void api_cache_put(struct api_cache *c, const char *key, uint64_t gen, const char *body, size_t len,
                   size_t request_id_at);

#endif
