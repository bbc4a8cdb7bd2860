/* IPv4 addresses and main-table routes over rtnetlink: the gateway address of a bridge, an
 * instance's default route, the host routes to instances, the `unreachable` route that keeps
 * the VPC range on the host, and the networks of the host's own addresses. */
#include "net.h"

#include <errno.h>
#include <linux/if_addr.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define DUMP_TRIES 3 /* a dump interrupted by a concurrent change is read again */

int nl_addr_add(struct nl *nl, int ifindex, const struct net_prefix *p)
{
	struct nl_req r;
	struct ifaddrmsg *ifa;

	/* REPLACE: adding the same address again is success, not EEXIST. */
	nl_req_init(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
	ifa = nl_req_put(&r, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (uint8_t)p->len;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (uint32_t)ifindex;
	nl_attr_put(&r, IFA_LOCAL, &p->addr, sizeof(p->addr));
	nl_attr_put(&r, IFA_ADDRESS, &p->addr, sizeof(p->addr));
	if (p->len <= 30) {
		struct in_addr brd = p->addr;

		brd.s_addr |= p->len ? htonl(0xffffffffu >> p->len) : 0xffffffffu;
		nl_attr_put(&r, IFA_BROADCAST, &brd, sizeof(brd));
	}
	return nl_talk(nl, &r, NULL, NULL);
}

int nl_route_default(struct nl *nl, int oif, struct in_addr gateway)
{
	struct nl_req r;
	struct rtmsg *rtm;

	nl_req_init(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE);
	rtm = nl_req_put(&r, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_STATIC;
	rtm->rtm_scope = RT_SCOPE_UNIVERSE;
	rtm->rtm_type = RTN_UNICAST;
	nl_attr_put(&r, RTA_GATEWAY, &gateway, sizeof(gateway));
	nl_attr_put_u32(&r, RTA_OIF, (uint32_t)oif);
	return nl_talk(nl, &r, NULL, NULL);
}

static int route_gw(struct nl *nl, const struct net_prefix *dst, struct in_addr gw, int oif,
                    bool add)
{
	struct nl_req r;
	struct rtmsg *rtm;

	nl_req_init(&r, add ? RTM_NEWROUTE : RTM_DELROUTE, add ? NLM_F_CREATE | NLM_F_REPLACE : 0);
	rtm = nl_req_put(&r, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = (uint8_t)dst->len;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_type = RTN_UNICAST;
	rtm->rtm_protocol = add ? RTPROT_STATIC : RTPROT_UNSPEC;
	rtm->rtm_scope = add ? RT_SCOPE_UNIVERSE : RT_SCOPE_NOWHERE;
	rtm->rtm_flags = RTNH_F_ONLINK;
	if (dst->len)
		nl_attr_put(&r, RTA_DST, &dst->addr, sizeof(dst->addr));
	nl_attr_put(&r, RTA_GATEWAY, &gw, sizeof(gw));
	nl_attr_put_u32(&r, RTA_OIF, (uint32_t)oif);
	return nl_talk(nl, &r, NULL, NULL);
}

int nl_route_via(struct nl *nl, struct in_addr dst, struct in_addr gw, int oif, bool add)
{
	struct net_prefix p = {.addr = dst, .len = 32};

	return route_gw(nl, &p, gw, oif, add);
}

int nl_route_default_onlink(struct nl *nl, int oif, struct in_addr gw)
{
	struct net_prefix p = {.len = 0};

	return route_gw(nl, &p, gw, oif, true);
}

int nl_route_host(struct nl *nl, struct in_addr dst, int oif, bool add)
{
	struct nl_req r;
	struct rtmsg *rtm;

	/* REPLACE: a route that a crashed shim left for the address is taken over. */
	nl_req_init(&r, add ? RTM_NEWROUTE : RTM_DELROUTE, add ? NLM_F_CREATE | NLM_F_REPLACE : 0);
	rtm = nl_req_put(&r, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = 32;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_type = RTN_UNICAST;
	/* Deleting: any protocol and scope, but only the route of this address through oif. */
	rtm->rtm_protocol = add ? RTPROT_STATIC : RTPROT_UNSPEC;
	rtm->rtm_scope = add ? RT_SCOPE_LINK : RT_SCOPE_NOWHERE;
	nl_attr_put(&r, RTA_DST, &dst, sizeof(dst));
	nl_attr_put_u32(&r, RTA_OIF, (uint32_t)oif);
	return nl_talk(nl, &r, NULL, NULL);
}

/* Dump kind (RTM_GETADDR or RTM_GETROUTE) for AF_INET, reading again when interrupted. */
static int dump_inet(struct nl *nl, uint16_t kind, nl_reply_fn fn, void *ctx, bool *found)
{
	int rc = 0, i;

	for (i = 0; i < DUMP_TRIES; i++) {
		struct nl_req r;

		*found = false;
		nl_req_init(&r, kind, NLM_F_DUMP);
		if (kind == RTM_GETADDR) {
			struct ifaddrmsg *ifa = nl_req_put(&r, sizeof(*ifa));
			ifa->ifa_family = AF_INET;
		} else {
			struct rtmsg *rtm = nl_req_put(&r, sizeof(*rtm));
			rtm->rtm_family = AF_INET;
		}
		rc = nl_talk(nl, &r, fn, ctx);
		if (rc != -EINTR)
			break;
	}
	return rc;
}

/* One address of an RTM_GETADDR dump. */
struct addr_info {
	int index;
	unsigned len;
	struct in_addr addr;
	char label[NET_IFNAME_MAX + 8]; /* the link's name (":alias" after it for an old alias) */
};

/* 0 for an IPv4 address, 1 for a message to skip, or -EBADMSG. */
static int addr_parse(const struct nlmsghdr *h, struct addr_info *a)
{
	const struct ifaddrmsg *ifa = NLMSG_DATA(h);
	const struct rtattr *tb[IFA_MAX + 1], *local;
	const void *attrs;
	size_t len;

	if (h->nlmsg_type != RTM_NEWADDR)
		return 1;
	attrs = nl_msg_attrs(h, sizeof(*ifa), &len);
	if (!attrs || nl_attr_parse(attrs, len, tb, IFA_MAX) < 0)
		return -EBADMSG;
	if (ifa->ifa_family != AF_INET)
		return 1;
	local = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!local || nl_attr_get_in4(local, &a->addr) < 0 || ifa->ifa_prefixlen > 32 ||
	    ifa->ifa_index > INT32_MAX)
		return -EBADMSG;
	a->index = (int)ifa->ifa_index;
	a->len = ifa->ifa_prefixlen;
	a->label[0] = '\0';
	if (tb[IFA_LABEL] && nl_attr_get_str(tb[IFA_LABEL], a->label, sizeof(a->label)) < 0)
		return -EBADMSG;
	return 0;
}

struct addr_find {
	int index;
	struct net_prefix want;
	bool found;
};

static int addr_match(const struct nlmsghdr *h, void *ctx)
{
	struct addr_find *f = ctx;
	struct addr_info a;
	int rc = addr_parse(h, &a);

	if (rc == 0 && a.index == f->index && a.len == f->want.len &&
	    a.addr.s_addr == f->want.addr.s_addr)
		f->found = true;
	return rc < 0 ? rc : 0;
}

int net_addr_exists(const char *ifname, const char *addr_cidr, bool *exists, struct kerr **err)
{
	_cleanup_nl_ struct nl nl = {.fd = -1};
	struct addr_find f = {0};
	struct net_link link;
	int rc;

	if (!net_ifname_valid(ifname))
		return kerr_set(err, KERR_INVALID, "invalid link name '%.32s'", ifname);
	if (net_prefix_parse(addr_cidr, &f.want, err) < 0 || nl_open_kerr(&nl, err) < 0)
		return -1;
	rc = nl_link_get(&nl, ifname, &link);
	if (rc < 0)
		return nl_fail(&nl, err, rc, "cannot look up link '%s'", ifname);
	f.index = link.index;
	rc = dump_inet(&nl, RTM_GETADDR, addr_match, &f, &f.found);
	if (rc < 0)
		return nl_fail(&nl, err, rc, "cannot list the addresses of '%s'", ifname);
	*exists = f.found;
	return 0;
}

struct route_find {
	struct net_prefix want;
	struct net_route *route;
	bool found;
};

static int route_match(const struct nlmsghdr *h, void *ctx)
{
	struct route_find *f = ctx;
	const struct rtmsg *rtm = NLMSG_DATA(h);
	const struct rtattr *tb[RTA_MAX + 1];
	struct in_addr dst = {0};
	uint32_t table, oif;
	const void *attrs;
	size_t len;

	if (h->nlmsg_type != RTM_NEWROUTE || f->found)
		return 0;
	attrs = nl_msg_attrs(h, sizeof(*rtm), &len);
	if (!attrs || nl_attr_parse(attrs, len, tb, RTA_MAX) < 0)
		return -EBADMSG;
	if (rtm->rtm_family != AF_INET || rtm->rtm_dst_len != f->want.len || rtm->rtm_tos != 0)
		return 0;
	table = rtm->rtm_table;
	if (tb[RTA_TABLE] && nl_attr_get_u32(tb[RTA_TABLE], &table) < 0)
		return -EBADMSG;
	if (table != RT_TABLE_MAIN)
		return 0;
	if (tb[RTA_DST] && nl_attr_get_in4(tb[RTA_DST], &dst) < 0)
		return -EBADMSG;
	if (dst.s_addr != f->want.addr.s_addr)
		return 0;
	memset(f->route, 0, sizeof(*f->route));
	f->route->type = rtm->rtm_type;
	if (tb[RTA_GATEWAY]) {
		if (nl_attr_get_in4(tb[RTA_GATEWAY], &f->route->gateway) < 0)
			return -EBADMSG;
		f->route->has_gateway = true;
	}
	if (tb[RTA_OIF]) {
		if (nl_attr_get_u32(tb[RTA_OIF], &oif) < 0 || oif > INT32_MAX)
			return -EBADMSG;
		f->route->oif = (int)oif;
	}
	f->found = true;
	return 0;
}

static int route_find(struct nl *nl, const struct net_prefix *p, struct net_route *route,
                      bool *exists)
{
	struct route_find f = {.want = *p, .route = route};
	int rc = dump_inet(nl, RTM_GETROUTE, route_match, &f, &f.found);

	*exists = f.found;
	return rc;
}

int net_route_get(const char *cidr, struct net_route *route, bool *exists, struct kerr **err)
{
	_cleanup_nl_ struct nl nl = {.fd = -1};
	struct net_prefix p;
	int rc;

	if (net_prefix_parse(cidr, &p, err) < 0)
		return -1;
	if (!net_prefix_is_network(&p))
		return kerr_set(err, KERR_INVALID, "invalid route destination '%s': host bits set",
		                cidr);
	if (nl_open_kerr(&nl, err) < 0)
		return -1;
	rc = route_find(&nl, &p, route, exists);
	if (rc < 0)
		return nl_fail(&nl, err, rc, "cannot look up route '%s'", cidr);
	return 0;
}

int nl_route_unreachable(struct nl *nl, const struct net_prefix *p, bool add)
{
	struct nl_req r;
	struct rtmsg *rtm;

	if (add)
		nl_req_init(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
	else
		nl_req_init(&r, RTM_DELROUTE, 0);
	rtm = nl_req_put(&r, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = (uint8_t)p->len;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_type = RTN_UNREACHABLE;
	/* Deleting: any protocol and scope, but only the unreachable route of this prefix. */
	rtm->rtm_protocol = add ? RTPROT_STATIC : RTPROT_UNSPEC;
	rtm->rtm_scope = add ? RT_SCOPE_UNIVERSE : RT_SCOPE_NOWHERE;
	nl_attr_put(&r, RTA_DST, &p->addr, sizeof(p->addr));
	return nl_talk(nl, &r, NULL, NULL);
}

int net_route_unreachable(const char *cidr, bool add, struct kerr **err)
{
	_cleanup_nl_ struct nl nl = {.fd = -1};
	const char *op = add ? "add" : "delete";
	struct net_route route;
	struct net_prefix p;
	bool exists;
	int rc;

	if (net_prefix_parse(cidr, &p, err) < 0)
		return kerr_wrap(err, "cannot %s unreachable route", op);
	if (!net_prefix_is_network(&p))
		return kerr_set(err, KERR_INVALID,
		                "cannot %s unreachable route '%s': host bits set", op, cidr);
	if (nl_open_kerr(&nl, err) < 0)
		return -1;
	rc = nl_route_unreachable(&nl, &p, add);
	if (add && rc == -EEXIST) {
		/* Already there is fine; never replace a route someone else made for the range. */
		rc = route_find(&nl, &p, &route, &exists);
		if (rc < 0)
			return nl_fail(&nl, err, rc, "cannot look up route '%s'", cidr);
		if (exists && route.type == RTN_UNREACHABLE)
			return 0;
		return kerr_set(err, KERR_CONFLICT,
		                "cannot add unreachable route '%s': another route for it exists",
		                cidr);
	}
	if (!add && rc == -ESRCH)
		return 0;
	if (rc < 0)
		return nl_fail(&nl, err, rc, "cannot %s unreachable route '%s'", op, cidr);
	return 0;
}

struct host_networks {
	struct net_prefix *v;
	size_t n;
	bool unused; /* dump_inet's "found" */
};

static bool kiln_link(const char *name)
{
	return !strncmp(name, NET_BRIDGE_PREFIX, strlen(NET_BRIDGE_PREFIX)) ||
	       !strncmp(name, NET_PORT_PREFIX, strlen(NET_PORT_PREFIX)) ||
	       !strncmp(name, NET_TRANSIT_PREFIX, strlen(NET_TRANSIT_PREFIX));
}

static int host_network_add(const struct nlmsghdr *h, void *ctx)
{
	struct host_networks *hn = ctx;
	struct addr_info a;
	int rc = addr_parse(h, &a);

	if (rc != 0 || kiln_link(a.label))
		return rc < 0 ? rc : 0;
	a.addr.s_addr &= a.len ? htonl(0xffffffffu << (32 - a.len)) : 0;
	hn->v = xreallocarray(hn->v, hn->n + 1, sizeof(*hn->v));
	hn->v[hn->n++] = (struct net_prefix){.addr = a.addr, .len = a.len};
	return 0;
}

int nl_host_networks(struct nl *nl, struct net_prefix **out, size_t *n)
{
	struct host_networks hn = {0};
	int rc = dump_inet(nl, RTM_GETADDR, host_network_add, &hn, &hn.unused);

	if (rc < 0) {
		free(hn.v);
		return rc;
	}
	*n = hn.n;
	*out = hn.v;
	return 0;
}

struct routes_through {
	int oif;
	struct in_addr *v;
	size_t n;
	bool unused;
};

static int route_through_add(const struct nlmsghdr *h, void *ctx)
{
	struct routes_through *rt = ctx;
	const struct rtmsg *rtm = NLMSG_DATA(h);
	const struct rtattr *tb[RTA_MAX + 1];
	struct in_addr dst;
	uint32_t table, oif;
	const void *attrs;
	size_t len;

	if (h->nlmsg_type != RTM_NEWROUTE)
		return 0;
	attrs = nl_msg_attrs(h, sizeof(*rtm), &len);
	if (!attrs || nl_attr_parse(attrs, len, tb, RTA_MAX) < 0)
		return -EBADMSG;
	table = rtm->rtm_table;
	if (tb[RTA_TABLE] && nl_attr_get_u32(tb[RTA_TABLE], &table) < 0)
		return -EBADMSG;
	if (rtm->rtm_family != AF_INET || rtm->rtm_dst_len != 32 || table != RT_TABLE_MAIN ||
	    rtm->rtm_type != RTN_UNICAST || !tb[RTA_DST] || !tb[RTA_OIF])
		return 0;
	if (nl_attr_get_in4(tb[RTA_DST], &dst) < 0 || nl_attr_get_u32(tb[RTA_OIF], &oif) < 0)
		return -EBADMSG;
	if ((int)oif != rt->oif)
		return 0;
	rt->v = xreallocarray(rt->v, rt->n + 1, sizeof(*rt->v));
	rt->v[rt->n++] = dst;
	return 0;
}

int nl_routes_through(struct nl *nl, int oif, struct in_addr **out, size_t *n)
{
	struct routes_through rt = {.oif = oif};
	int rc = dump_inet(nl, RTM_GETROUTE, route_through_add, &rt, &rt.unused);

	if (rc < 0) {
		free(rt.v);
		return rc;
	}
	*out = rt.v;
	*n = rt.n;
	return 0;
}
