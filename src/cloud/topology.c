/* Regions and zones: names, EC2-style zone ids, one /20 of the region's default VPC each; and
 * the accounts' quotas. */
#include "internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"
#include "store/store.h"
#include "util/cleanup.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define TOPOLOGY_STORE_URL_MAX 1024
#define DEFAULT_TOPOLOGY       "us-east-1 a b c\neu-west-1 a b\n"

void cloud_zone_subnet(size_t index, char *out, size_t size)
{
	snprintf(out, size, "172.31.%zu.0/20", index * 16);
}

void topology_release(struct topology *t)
{
	for (size_t i = 0; i < t->nstores; i++)
		free(t->stores[i].url);
	free(t->stores);
	free(t->regions);
	free(t->zones);
	memset(t, 0, sizeof(*t));
}

/* "us-east-1" → "use1", "ap-northeast-1" → "apne1": EC2's own for its regions, else the first
 * word, the initial of each middle word, the last word (as EC2's zone ids abbreviate regions). */
static void region_short(const char *region, char *out, size_t size)
{
	const char *first_dash = strchr(region, '-'), *last_dash = strrchr(region, '-');
	size_t n = 0;

	if (cloud_region_short_name(region, out, size))
		return;
	for (const char *p = region; p < first_dash && n + 1 < size; p++)
		out[n++] = *p;
	for (const char *p = first_dash; p && p < last_dash && n + 1 < size; p = strchr(p + 1, '-'))
		out[n++] = p[1];
	for (const char *p = last_dash + 1; *p && n + 1 < size; p++)
		out[n++] = *p;
	out[n] = '\0';
}

static bool valid_region(const char *s)
{
	size_t n = strlen(s);

	if (n < 3 || n > 24 || !islower((unsigned char)s[0]) || !isdigit((unsigned char)s[n - 1]))
		return false;
	for (const char *c = s; *c; c++)
		if (!islower((unsigned char)*c) && !isdigit((unsigned char)*c) && *c != '-')
			return false;
	return strchr(s, '-') != NULL;
}

int topology_parse(const char *text, struct topology *t, struct kerr **err)
{
	_cleanup_free_ char *copy = xstrdup(text);
	char *line, *save = NULL;
	int lineno = 0;

	memset(t, 0, sizeof(*t));
	cloud_quota_defaults(t->quotas);
	str_copy(t->public_range, PUBLIC_RANGE_DEFAULT, sizeof(t->public_range));
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *tok, *tsave = NULL, *hash = strchr(line, '#');
		char region[32], shortname[16];
		int zone_no = 0;

		lineno++;
		if (hash)
			*hash = '\0';
		tok = strtok_r(line, " \t\r", &tsave);
		if (!tok)
			continue;
		if (!strcmp(tok, "quota")) {
			const char *name = strtok_r(NULL, " \t\r", &tsave);
			const char *value = strtok_r(NULL, " \t\r", &tsave);
			int r =
			    strtok_r(NULL, " \t\r", &tsave)
			        ? kerr_set(err, KERR_INVALID, "a quota line is 'quota NAME VALUE'")
			        : cloud_quota_set(t->quotas, name, value, err);
			if (r < 0) {
				topology_release(t);
				return kerr_wrap(err, "topology line %d", lineno);
			}
			continue;
		}
		if (!strcmp(tok, "store")) {
			const char *name = strtok_r(NULL, " \t\r", &tsave);
			const char *url = strtok_r(NULL, " \t\r", &tsave);
			int r = 0;
			if (!name || !url || strtok_r(NULL, " \t\r", &tsave))
				r = kerr_set(err, KERR_INVALID,
				             "a store line is 'store REGION "
				             "s3://BUCKET/PREFIX?endpoint=URL'");
			else if (strlen(name) >= sizeof(t->stores->region) || !valid_region(name))
				r = kerr_set(err, KERR_INVALID, "'%s' is not a region name", name);
			else if (!store_location_is_s3(url))
				r = kerr_set(err, KERR_INVALID,
				             "the store of region '%s' must be an s3:// URL (its "
				             "directory store needs no line)",
				             name);
			else if (strlen(url) > TOPOLOGY_STORE_URL_MAX)
				r = kerr_set(err, KERR_INVALID,
				             "the store URL of region '%s' is too long", name);
			else if (store_location_check(url, err) < 0)
				r = -1;
			for (size_t i = 0; r == 0 && i < t->nstores; i++)
				if (!strcmp(t->stores[i].region, name))
					r = kerr_set(err, KERR_INVALID,
					             "two stores for region '%s'", name);
			if (r < 0) {
				topology_release(t);
				return kerr_wrap(err, "topology line %d", lineno);
			}
			t->stores = xreallocarray(t->stores, t->nstores + 1, sizeof(*t->stores));
			str_copy(t->stores[t->nstores].region, name, sizeof(t->stores->region));
			t->stores[t->nstores++].url = xstrdup(url);
			continue;
		}
		if (!strcmp(tok, "host-id")) {
			const char *id = strtok_r(NULL, " \t\r", &tsave);
			if (!id || strtok_r(NULL, " \t\r", &tsave) || !net_host_id_valid(id)) {
				topology_release(t);
				return kerr_set(
				    err, KERR_INVALID,
				    "topology line %d: 'host-id ID' takes 4 lowercase hex "
				    "digits",
				    lineno);
			}
			str_copy(t->host_id, id, sizeof(t->host_id));
			continue;
		}
		if (!strcmp(tok, "public-addresses")) {
			const char *cidr = strtok_r(NULL, " \t\r", &tsave);
			struct net_prefix p;
			if (!cidr || strtok_r(NULL, " \t\r", &tsave) ||
			    net_prefix_parse(cidr, &p, NULL) < 0 || !net_prefix_is_network(&p) ||
			    p.len < 8 || p.len > 30) {
				topology_release(t);
				return kerr_set(err, KERR_INVALID,
				                "topology line %d: 'public-addresses CIDR' takes a "
				                "network of /8 to /30",
				                lineno);
			}
			net_prefix_format(&p, t->public_range, sizeof(t->public_range));
			t->public_named = true;
			continue;
		}
		if (!valid_region(tok) || strlen(tok) >= sizeof(region)) {
			topology_release(t);
			return kerr_set(err, KERR_INVALID,
			                "topology line %d: '%s' is not a region name", lineno, tok);
		}
		for (size_t i = 0; i < t->nregions; i++)
			if (!strcmp(t->regions[i], tok)) {
				topology_release(t);
				return kerr_set(err, KERR_INVALID,
				                "topology line %d: region '%s' twice", lineno, tok);
			}
		str_copy(region, tok, sizeof(region));
		region_short(region, shortname, sizeof(shortname));
		t->regions = xreallocarray(t->regions, t->nregions + 1, sizeof(*t->regions));
		str_copy(t->regions[t->nregions++], region, sizeof(*t->regions));
		while ((tok = strtok_r(NULL, " \t\r", &tsave))) {
			struct zone *z;

			if (strlen(tok) != 1 || !islower((unsigned char)tok[0])) {
				topology_release(t);
				return kerr_set(err, KERR_INVALID,
				                "topology line %d: zone '%s' is not a letter",
				                lineno, tok);
			}
			if (zone_no == VPC_ZONES_MAX) {
				topology_release(t);
				return kerr_set(err, KERR_LIMIT,
				                "topology line %d: region '%s' has more than %d "
				                "zones, as many as fit its default VPC",
				                lineno, region, VPC_ZONES_MAX);
			}
			t->zones = xreallocarray(t->zones, t->nzones + 1, sizeof(*t->zones));
			z = &t->zones[t->nzones];
			memset(z, 0, sizeof(*z));
			snprintf(z->name, sizeof(z->name), "%.24s%c", region,
			         tok[0]); /* regions are at most 24 */
			for (size_t i = 0; i < t->nzones; i++)
				if (!strcmp(t->zones[i].name, z->name)) {
					topology_release(t);
					return kerr_set(err, KERR_INVALID,
					                "topology line %d: zone '%s' twice", lineno,
					                tok);
				}
			str_copy(z->region, region, sizeof(z->region));
			cloud_zone_subnet((size_t)zone_no, z->subnet, sizeof(z->subnet));
			snprintf(z->zone_id, sizeof(z->zone_id), "%s-az%d", shortname, ++zone_no);
			snprintf(z->bridge, sizeof(z->bridge), "kb-%.8s%c", shortname, tok[0]);
			t->nzones++;
		}
		if (!zone_no) {
			topology_release(t);
			return kerr_set(err, KERR_INVALID,
			                "topology line %d: region '%s' has no zones", lineno,
			                region);
		}
	}
	if (!t->nregions) {
		topology_release(t);
		return kerr_set(err, KERR_INVALID, "topology names no region");
	}
	for (size_t i = 0; i < t->nstores; i++) {
		bool known = false;
		for (size_t k = 0; k < t->nregions && !known; k++)
			known = !strcmp(t->regions[k], t->stores[i].region);
		if (!known) {
			kerr_set(err, KERR_INVALID,
			         "topology: a store for region '%s', which it does not list",
			         t->stores[i].region);
			topology_release(t);
			return -1;
		}
	}
	return 0;
}

int topology_default(struct topology *t, struct kerr **err)
{
	return topology_parse(DEFAULT_TOPOLOGY, t, err);
}

bool cloud_region_known(struct cloud *c, const char *region)
{
	struct topology t;
	bool found = false;

	if (c->deploy) /* the others are served elsewhere, if at all */
		return !strcmp(region, c->deploy->region);
	if (cloud_regions(c, &t, NULL) < 0)
		return false;
	for (size_t i = 0; i < t.nregions && !found; i++)
		found = !strcmp(t.regions[i], region);
	topology_release(&t);
	return found;
}
