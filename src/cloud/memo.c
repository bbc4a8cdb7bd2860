/* What every request reads and nothing changes, kept in memory: the account behind an access
 * key, and that a region is served. Each request authenticates before anything else; with
 * these two lookups in SQLite, 16 clients of a whole cached list saw one request in six spend
 * over 3 ms authenticating, queued on the one connection's lock while its holder waited for a
 * core (bench/RESULTS.md, whole lists). Keys, accounts and regions are only ever added, but an
 * entry still belongs to the database generation read before its query and is used only while
 * that generation is the current one (db_generation), as the answers of api/cache.c are: a write
 * forgets them all, so a key a later change removes is not kept. Only what was found is kept;
 * an unknown key asks SQLite each time. A cloud without a memo (cloud_init's) keeps nothing. */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define MEMO_KEYS    16
#define MEMO_REGIONS 16

struct memo_key {
	char access_key[ACCESS_KEY_LEN + 1];
	struct account acct;
	char secret[SECRET_KEY_LEN + 1];
};

struct cloud_memo {
	pthread_mutex_t lock;
	bool made;    /* gen holds the generation of what follows */
	uint64_t gen; /* the generation every entry belongs to */
	struct memo_key keys[MEMO_KEYS];
	size_t nkeys, next_key; /* next_key: the one a new key replaces when full */
	char regions[MEMO_REGIONS][32];
	size_t nregions;
};

void cloud_memo_init(struct cloud *c)
{
	c->memo = xcalloc(1, sizeof(*c->memo));
	pthread_mutex_init(&c->memo->lock, NULL);
}

static void forget(struct cloud_memo *m)
{
	explicit_bzero(m->keys, sizeof(m->keys));
	m->nkeys = m->next_key = m->nregions = 0;
}

void cloud_memo_free(struct cloud *c)
{
	if (!c->memo)
		return;
	forget(c->memo);
	pthread_mutex_destroy(&c->memo->lock);
	free(c->memo);
	c->memo = NULL;
}

/* Locked, and true when an entry made under gen may be added: what an older generation made is
 * forgotten first, and one made under an older generation than the kept ones is not added. */
static bool lock_for(struct cloud_memo *m, uint64_t gen)
{
	pthread_mutex_lock(&m->lock);
	if (m->made && gen < m->gen)
		return false;
	if (!m->made || gen != m->gen) {
		forget(m);
		m->gen = gen;
		m->made = true;
	}
	return true;
}

/* The memo, locked, when it holds what generation gen found; else NULL. */
static struct cloud_memo *current(struct cloud *c, uint64_t gen)
{
	struct cloud_memo *m = c->memo;

	if (!m)
		return NULL;
	pthread_mutex_lock(&m->lock);
	if (m->made && m->gen == gen)
		return m;
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

bool cloud_memo_key(struct cloud *c, uint64_t gen, const char *access_key, struct account *acct,
                    char secret[SECRET_KEY_LEN + 1])
{
	struct cloud_memo *m = current(c, gen);
	bool found = false;

	if (!m)
		return false;
	for (size_t i = 0; i < m->nkeys && !found; i++)
		if (!strcmp(m->keys[i].access_key, access_key)) {
			*acct = m->keys[i].acct;
			memcpy(secret, m->keys[i].secret, SECRET_KEY_LEN + 1);
			found = true;
		}
	pthread_mutex_unlock(&m->lock);
	return found;
}

void cloud_memo_put_key(struct cloud *c, uint64_t gen, const char *access_key,
                        const struct account *acct, const char *secret)
{
	struct cloud_memo *m = c->memo;
	struct memo_key *k;

	if (!m || strlen(access_key) > ACCESS_KEY_LEN || strlen(secret) > SECRET_KEY_LEN)
		return;
	if (lock_for(m, gen)) {
		if (m->nkeys < MEMO_KEYS) {
			k = &m->keys[m->nkeys++];
		} else {
			k = &m->keys[m->next_key];
			m->next_key = (m->next_key + 1) % MEMO_KEYS;
		}
		str_copy(k->access_key, access_key, sizeof(k->access_key));
		k->acct = *acct;
		str_copy(k->secret, secret, sizeof(k->secret));
	}
	pthread_mutex_unlock(&m->lock);
}

bool cloud_memo_region(struct cloud *c, uint64_t gen, const char *region)
{
	struct cloud_memo *m = current(c, gen);
	bool found = false;

	if (!m)
		return false;
	for (size_t i = 0; i < m->nregions && !found; i++)
		found = !strcmp(m->regions[i], region);
	pthread_mutex_unlock(&m->lock);
	return found;
}

void cloud_memo_put_region(struct cloud *c, uint64_t gen, const char *region)
{
	struct cloud_memo *m = c->memo;

	if (!m || strlen(region) >= sizeof(m->regions[0]))
		return;
	if (lock_for(m, gen) && m->nregions < MEMO_REGIONS)
		str_copy(m->regions[m->nregions++], region, sizeof(m->regions[0]));
	pthread_mutex_unlock(&m->lock);
}
