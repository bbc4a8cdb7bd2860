/* Token buckets per account and class behind one mutex, in a small hash table: accounts are few
 * and known (a request is charged only once its signature checked), so the table only grows. */
#include "api/ratelimit.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/xalloc.h"
#include "util/banned.h"

#define SLOTS 256

struct bucket {
	struct bucket *next;
	char *account;
	double tokens[API_RATE_CLASSES];
	double at[API_RATE_CLASSES]; /* when tokens were counted, seconds (monotonic) */
};

struct api_ratelimit {
	pthread_mutex_t lock;
	struct api_rate_limits limits;
	struct bucket *slot[SLOTS];
};

static int parse_uint(const char *s, char **end, unsigned *v)
{
	unsigned long n;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtoul(s, end, 10);
	if (errno || n > 1000000)
		return -1;
	*v = (unsigned)n;
	return 0;
}

int api_rate_limit_parse(const char *s, struct api_rate_limit *l, struct kerr **err)
{
	char *end;

	l->burst = 0;
	errno = 0;
	l->rate = strtod(s, &end);
	if (*s < '0' || *s > '9' || errno || !(l->rate >= 0 && l->rate <= 1000000) ||
	    (*end == ':' && parse_uint(end + 1, &end, &l->burst) < 0) || *end)
		return kerr_set(err, KERR_INVALID,
		                "bad rate limit '%s' (requests per second, optionally ':' and the "
		                "burst, at most 1000000 each)",
		                s);
	return 0;
}

struct api_ratelimit *api_ratelimit_new(const struct api_rate_limits *limits)
{
	struct api_ratelimit *r;
	bool any = false;

	for (size_t c = 0; c < API_RATE_CLASSES; c++)
		any |= limits->cls[c].rate > 0;
	if (!any)
		return NULL;
	r = xcalloc(1, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->limits = *limits;
	for (size_t c = 0; c < API_RATE_CLASSES; c++)
		if (!r->limits.cls[c].burst)
			r->limits.cls[c].burst =
			    r->limits.cls[c].rate < 1 ? 1 : (unsigned)r->limits.cls[c].rate;
	return r;
}

void api_ratelimit_free(struct api_ratelimit *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < SLOTS; i++)
		for (struct bucket *b = r->slot[i], *next; b; b = next) {
			next = b->next;
			free(b->account);
			free(b);
		}
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t slot_of(const char *account)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)account; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % SLOTS;
}

/* account's buckets, made full on first use; under r->lock. */
static struct bucket *bucket_of(struct api_ratelimit *r, const char *account, double now)
{
	size_t i = slot_of(account);
	struct bucket *b;

	for (b = r->slot[i]; b; b = b->next)
		if (!strcmp(b->account, account))
			return b;
	b = xcalloc(1, sizeof(*b));
	b->account = xstrdup(account);
	for (size_t c = 0; c < API_RATE_CLASSES; c++) {
		b->tokens[c] = r->limits.cls[c].burst;
		b->at[c] = now;
	}
	b->next = r->slot[i];
	r->slot[i] = b;
	return b;
}

bool api_ratelimit_take(struct api_ratelimit *r, const char *account, enum api_rate_class c)
{
	const struct api_rate_limit *l;
	struct bucket *b;
	double now, t;
	bool ok;

	if (!r || !r->limits.cls[c].rate)
		return true;
	l = &r->limits.cls[c];
	now = now_s();
	pthread_mutex_lock(&r->lock);
	b = bucket_of(r, account, now);
	t = b->tokens[c] + (now - b->at[c]) * l->rate;
	b->tokens[c] = t < l->burst ? t : l->burst;
	b->at[c] = now;
	ok = b->tokens[c] >= 1.0;
	if (ok)
		b->tokens[c] -= 1.0;
	pthread_mutex_unlock(&r->lock);
	return ok;
}
