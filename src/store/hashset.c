/* An open-addressing set of chunk hashes; hashes are uniform, so their first bytes index it. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"
#include "util/banned.h"

void hashset_init(struct hashset *h)
{
	memset(h, 0, sizeof(*h));
}

void hashset_release(struct hashset *h)
{
	free(h->slot);
	free(h->used);
	memset(h, 0, sizeof(*h));
}

static size_t slot_of(const uint8_t hash[HASH_LEN], size_t cap)
{
	uint64_t v;

	memcpy(&v, hash, sizeof(v));
	return (size_t)(v & (cap - 1));
}

static void hashset_grow(struct hashset *h)
{
	struct hashset bigger = {.cap = h->cap ? h->cap * 2 : 1024};

	bigger.slot = xreallocarray(NULL, bigger.cap, HASH_LEN);
	bigger.used = xcalloc(bigger.cap, 1);
	for (size_t i = 0; i < h->cap; i++)
		if (h->used[i])
			hashset_add(&bigger, h->slot[i]);
	hashset_release(h);
	*h = bigger;
}

int hashset_add(struct hashset *h, const uint8_t hash[HASH_LEN])
{
	size_t i;

	if ((h->n + 1) * 2 > h->cap)
		hashset_grow(h);
	for (i = slot_of(hash, h->cap); h->used[i]; i = (i + 1) & (h->cap - 1))
		if (memcmp(h->slot[i], hash, HASH_LEN) == 0)
			return 0;
	h->used[i] = 1;
	memcpy(h->slot[i], hash, HASH_LEN);
	h->n++;
	return 1;
}

int hashset_has(const struct hashset *h, const uint8_t hash[HASH_LEN])
{
	if (!h->cap)
		return 0;
	for (size_t i = slot_of(hash, h->cap); h->used[i]; i = (i + 1) & (h->cap - 1))
		if (memcmp(h->slot[i], hash, HASH_LEN) == 0)
			return 1;
	return 0;
}
