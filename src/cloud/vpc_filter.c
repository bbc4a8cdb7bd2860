/* The network side of VPCs: each VPC's namespace (pinned at DIR/run/net/vpc-N), made when its
 * first instance launches, and the policy its router enforces (src/net/vpc.c): the security
 * groups of its live instances and their public addresses, rebuilt whole from the records after
 * every change of an instance's state or groups, or of a group's rules. */
#include "internal.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/net.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

/* The states in which an instance's network is up, or about to be. */
#define LIVE_STATES "('pending', 'running', 'stopping', 'shutting-down')"
#define GROUPS_MAX  5 /* per instance, as EC2's interfaces have */

/* One writer at a time: each write is the whole policy as the records say at its moment, so the
 * last one to run has the last word. VPC namespaces are made under it too. Taken only with the
 * database held (db_hold) first: a writer reads the records under it, and a caller may already
 * hold the database in a transaction (a state change) when it asks for a write. */
static pthread_mutex_t filter_lock = PTHREAD_MUTEX_INITIALIZER;

/* Writes are coalesced: a write reads the records as they are when it begins, so it covers
 * every request asked (with its records committed) before then. A storm of twenty launches in
 * one VPC waits for one or two writes instead of queueing twenty, each over all the members.
 * filter_asked counts requests; filter_last (under filter_lock) is what the last write covered. */
static uint64_t filter_asked;
static struct {
	char vpc[ID_MAX];
	uint64_t upto;
} filter_last;

static uint64_t filter_ask(void)
{
	return __atomic_add_fetch(&filter_asked, 1, __ATOMIC_SEQ_CST);
}

/* Under filter_lock: whether a write of vpc that began after request my was asked succeeded. */
static bool filter_covered(const char *vpc, uint64_t my)
{
	return filter_last.upto >= my && !strcmp(filter_last.vpc, vpc);
}

/* Under filter_lock, before reading the records for vpc: what the write will cover. */
static uint64_t filter_begin(void)
{
	return __atomic_load_n(&filter_asked, __ATOMIC_SEQ_CST);
}

static void filter_done(const char *vpc, uint64_t upto)
{
	str_copy(filter_last.vpc, vpc, sizeof(filter_last.vpc));
	filter_last.upto = upto;
}

static char *pin_path(const struct cloud *c, unsigned net)
{
	return xasprintf("%s/run/net/vpc-%u", c->data_dir, net);
}

struct group {
	char id[ID_MAX];
	struct net_sg_rule *rules;
	size_t nrules;
};

struct member {
	size_t groups[GROUPS_MAX];
	size_t ngroups;
};

struct policy {
	struct group *groups;
	size_t ngroups;
	struct net_vpc_member *members;
	struct member *mgroups;
	size_t nmembers;
};

static void policy_release(struct policy *p)
{
	for (size_t i = 0; i < p->ngroups; i++)
		free(p->groups[i].rules);
	free(p->groups);
	free(p->members);
	free(p->mgroups);
}

static size_t group_index(struct policy *p, const char *id)
{
	for (size_t i = 0; i < p->ngroups; i++)
		if (!strcmp(p->groups[i].id, id))
			return i;
	p->groups = xreallocarray(p->groups, p->ngroups + 1, sizeof(*p->groups));
	memset(&p->groups[p->ngroups], 0, sizeof(*p->groups));
	str_copy(p->groups[p->ngroups].id, id, ID_MAX);
	return p->ngroups++;
}

/* "-1", "tcp", "udp", "icmp", or a protocol number; -2 for anything else. */
static int proto_number(const char *s)
{
	char *end;
	long v;

	if (!strcmp(s, "-1") || !strcasecmp(s, "all"))
		return NET_PROTO_ALL;
	if (!strcasecmp(s, "tcp"))
		return 6;
	if (!strcasecmp(s, "udp"))
		return 17;
	if (!strcasecmp(s, "icmp"))
		return 1;
	v = strtol(s, &end, 10);
	return (*s && !*end && v >= 0 && v <= 255) ? (int)v : -2;
}

static int load_members(struct cloud *c, const char *vpc, struct policy *p, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db,
	               "SELECT id, private_ip, public_ip FROM instances WHERE vpc = ? AND state "
	               "IN " LIVE_STATES " ORDER BY id",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, vpc);
	while ((r = db_step_row(c->db, st, err)) > 0) {
		_cleanup_stmt_ sqlite3_stmt *gs = NULL;
		struct net_vpc_member *m;
		struct member *mg;
		int g;

		p->members = xreallocarray(p->members, p->nmembers + 1, sizeof(*p->members));
		p->mgroups = xreallocarray(p->mgroups, p->nmembers + 1, sizeof(*p->mgroups));
		m = memset(&p->members[p->nmembers], 0, sizeof(*m));
		mg = memset(&p->mgroups[p->nmembers], 0, sizeof(*mg));
		if (inet_pton(AF_INET, db_text(st, 1), &m->addr) != 1)
			continue; /* no address yet: nothing to filter */
		m->has_pub = inet_pton(AF_INET, db_text(st, 2), &m->pub) == 1;
		p->nmembers++;
		if (db_prepare(c->db,
		               "SELECT grp FROM instance_groups WHERE instance = ? ORDER BY grp",
		               &gs, err) < 0)
			return -1;
		db_bind_text(gs, 1, db_text(st, 0));
		while ((g = db_step_row(c->db, gs, err)) > 0 && mg->ngroups < GROUPS_MAX)
			mg->groups[mg->ngroups++] = group_index(p, db_text(gs, 0));
		if (g < 0)
			return -1;
	}
	return r;
}

/* The rules of every group the members have, and of the groups those rules name (whose members
 * are then peers; their own rules are loaded too, and unused). */
static int load_rules(struct cloud *c, struct policy *p, struct kerr **err)
{
	for (size_t i = 0; i < p->ngroups; i++) {
		_cleanup_stmt_ sqlite3_stmt *st = NULL;
		int r;

		if (db_prepare(c->db,
		               "SELECT egress, protocol, from_port, to_port, COALESCE(cidr, ''), "
		               "COALESCE(ref_group, '') FROM sg_rules WHERE grp = ? ORDER BY id",
		               &st, err) < 0)
			return -1;
		db_bind_text(st, 1, p->groups[i].id);
		while ((r = db_step_row(c->db, st, err)) > 0) {
			struct net_sg_rule rule = {
			    .egress = sqlite3_column_int(st, 0) != 0,
			    .proto = proto_number(db_text(st, 1)),
			    .from = sqlite3_column_int(st, 2),
			    .to = sqlite3_column_int(st, 3),
			    .ref = -1,
			};
			struct group *g;

			if (rule.proto < NET_PROTO_ALL)
				continue; /* refused at the API; never widen what a rule allows */
			if (db_text(st, 5)[0])
				rule.ref = (int)group_index(p, db_text(st, 5));
			else if (net_prefix_parse(db_text(st, 4), &rule.peer, NULL) < 0)
				continue;
			g = &p->groups[i]; /* after group_index, which may move them */
			g->rules = xreallocarray(g->rules, g->nrules + 1, sizeof(*g->rules));
			g->rules[g->nrules++] = rule;
		}
		if (r < 0)
			return -1;
	}
	return 0;
}

/* Called with the database held once by the caller (db_hold) and filter_lock: the records are
 * read, then that hold is let go (*held false) before the nftables transaction, which takes a
 * while; filter_lock alone keeps the writes in the order of their reads. The caller must not
 * hold the database again before it lets filter_lock go. */
static int filter_write(struct cloud *c, const char *vpc, bool *held, struct kerr **err)
{
	sqlite3_stmt *st = NULL;
	_cleanup_free_ char *pin = NULL;
	_cleanup_free_ struct net_sg *groups = NULL;
	_cleanup_close_ int nsfd = -1;
	struct policy p = {0};
	struct net_vpc_policy np;
	unsigned net;
	int r;

	if (db_prepare(c->db, "SELECT net FROM vpcs WHERE id = ?", &st, err) < 0)
		return -1;
	db_bind_text(st, 1, vpc);
	r = db_step_row(c->db, st, err);
	if (r > 0)
		net = (unsigned)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (r <= 0)
		return r; /* a VPC that is gone has no filter to write */
	pin = pin_path(c, net);
	/* No namespace yet: its first instance's launch makes it, then writes the filter. */
	if (net_vpc_open(pin, &nsfd, NULL) < 0)
		return 0;
	r = load_members(c, vpc, &p, err);
	if (r == 0)
		r = load_rules(c, &p, err);
	if (r == 0) {
		groups = xcalloc(p.ngroups ? p.ngroups : 1, sizeof(*groups));
		for (size_t i = 0; i < p.ngroups; i++)
			groups[i] = (struct net_sg){p.groups[i].rules, p.groups[i].nrules};
		for (size_t i = 0; i < p.nmembers; i++) {
			p.members[i].groups = p.mgroups[i].groups;
			p.members[i].ngroups = p.mgroups[i].ngroups;
		}
		np = (struct net_vpc_policy){groups, p.ngroups, p.members, p.nmembers};
		char transit[NET_IFNAME_MAX];

		cloud_transit_name(c, net, transit);
		db_release(c->db);
		*held = false;
		r = net_vpc_policy_set(pin, transit, &np, err);
	}
	policy_release(&p);
	return r;
}

int vpc_filter_changed(struct cloud *c, const char *vpc_id, struct kerr **err)
{
	uint64_t my, upto;
	bool held = true;
	int r = 0;

	if (!vpc_id || !vpc_id[0])
		return 0;
	my = filter_ask();
	db_hold(c->db);
	pthread_mutex_lock(&filter_lock);
	if (!filter_covered(vpc_id, my)) {
		upto = filter_begin();
		if ((r = filter_write(c, vpc_id, &held, err)) == 0)
			filter_done(vpc_id, upto);
	}
	pthread_mutex_unlock(&filter_lock);
	if (held)
		db_release(c->db);
	return r < 0 ? kerr_wrap(err, "cannot write the filter of '%s'", vpc_id) : 0;
}

int vpc_network_up(struct cloud *c, const struct instance *in, char **pin, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ char *dir = xasprintf("%s/run/net", c->data_dir);
	char cidr[64], transit[NET_IFNAME_MAX];
	bool covered, held = true;
	uint64_t my, upto;
	int r;

	*pin = NULL;
	cloud_transit_name(c, in->vpc_net, transit);
	if (db_prepare(c->db, "SELECT cidr FROM vpcs WHERE id = ?", &st, err) < 0)
		return -1;
	db_bind_text(st, 1, in->vpc);
	r = db_step_row(c->db, st, err);
	if (r <= 0)
		return r < 0 ? -1
		             : kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_VPC, in->vpc,
		                          "vpc '%s' not found", in->vpc);
	str_copy(cidr, db_text(st, 0), sizeof(cidr));
	if (fs_mkdir_p(dir, 0700, err) < 0)
		return -1;
	*pin = pin_path(c, in->vpc_net);
	my = filter_ask();
	/* The namespace first, under filter_lock alone: it needs no records. A write that began
	 * after this launch asked made the namespace and counted it. */
	pthread_mutex_lock(&filter_lock);
	covered = filter_covered(in->vpc, my);
	r = covered ? 0 : net_vpc_ensure(*pin, transit, cidr, err);
	if (r == 0 && !covered && c->vpc_hook)
		c->vpc_hook->up(c->vpc_hook->ctx, in->vpc_net, *pin);
	pthread_mutex_unlock(&filter_lock);
	if (r == 0 && !covered) {
		db_hold(c->db);
		pthread_mutex_lock(&filter_lock);
		if (!filter_covered(in->vpc, my)) {
			upto = filter_begin();
			if ((r = filter_write(c, in->vpc, &held, err)) == 0)
				filter_done(in->vpc, upto);
		}
		pthread_mutex_unlock(&filter_lock);
		if (held)
			db_release(c->db);
	}
	if (r < 0) {
		free(*pin);
		*pin = NULL;
	}
	return r;
}

int vpc_network_delete(struct cloud *c, unsigned net, struct kerr **err)
{
	_cleanup_free_ char *pin = pin_path(c, net);
	char transit[NET_IFNAME_MAX];
	int r;

	cloud_transit_name(c, net, transit);
	db_hold(c->db);
	pthread_mutex_lock(&filter_lock);
	if (c->vpc_hook)
		c->vpc_hook->down(c->vpc_hook->ctx, net);
	r = net_vpc_delete(pin, transit, err);
	filter_last.upto = 0; /* its namespace is gone: the next launch makes it again */
	pthread_mutex_unlock(&filter_lock);
	db_release(c->db);
	return r;
}

int cloud_networks_down(struct cloud *c, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db, "SELECT net FROM vpcs ORDER BY net", &st, err) < 0)
		return -1;
	while ((r = db_step_row(c->db, st, err)) > 0)
		if (vpc_network_delete(c, (unsigned)sqlite3_column_int64(st, 0), err) < 0)
			return -1;
	return r;
}

void cloud_vpc_hook_set(struct cloud *c, const struct cloud_vpc_hook *h)
{
	pthread_mutex_lock(&filter_lock);
	free(c->vpc_hook);
	c->vpc_hook = NULL;
	if (h) {
		c->vpc_hook = xmalloc(sizeof(*h));
		*c->vpc_hook = *h;
	}
	pthread_mutex_unlock(&filter_lock);
}

int cloud_vpc_networks_up(struct cloud *c, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db, "SELECT net, cidr FROM vpcs ORDER BY net", &st, err) < 0)
		return -1;
	db_hold(c->db);
	pthread_mutex_lock(&filter_lock);
	while ((r = db_step_row(c->db, st, err)) > 0) {
		unsigned net = (unsigned)sqlite3_column_int64(st, 0);
		_cleanup_free_ char *pin = pin_path(c, net);
		_cleanup_close_ int nsfd = -1;
		_cleanup_kerr_ struct kerr *why = NULL;
		char transit[NET_IFNAME_MAX];

		if (net_vpc_open(pin, &nsfd, NULL) < 0)
			continue; /* none yet: its first launch makes it */
		cloud_transit_name(c, net, transit);
		/* Its base set-up as this kiln writes it (a namespace an older one made lacks the
		 * newer parts), then the daemon's hook. */
		if (net_vpc_ensure(pin, transit, db_text(st, 1), &why) < 0)
			cloud_log_failure(pin, why, "cannot bring the VPC's namespace up to date");
		if (c->vpc_hook)
			c->vpc_hook->up(c->vpc_hook->ctx, net, pin);
	}
	pthread_mutex_unlock(&filter_lock);
	db_release(c->db);
	return r;
}
