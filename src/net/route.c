/* IPv4 addresses and main-table routes over rtnetlink: the gateway address of a bridge, an
 * instance's default route, and the `unreachable` route that keeps the VPC range on the host. */
#include "net.h"

#include <errno.h>
#include <linux/if_addr.h>
#include <string.h>

#include "internal.h"
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

static int open_nl(struct nl *nl, struct kerr **err)
{
	int rc = nl_open(nl);

	if (rc < 0)
		return nl_fail(NULL, err, rc, "cannot open a netlink socket");
	return 0;
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

struct addr_find {
	int index;
	struct net_prefix want;
	bool found;
};

static int addr_match(const struct nlmsghdr *h, void *ctx)
{
	struct addr_find *f = ctx;
	const struct ifaddrmsg *ifa = NLMSG_DATA(h);
	const struct rtattr *tb[IFA_MAX + 1], *local;
	struct in_addr a;
	const void *attrs;
	size_t len;

	if (h->nlmsg_type != RTM_NEWADDR)
		return 0;
	attrs = nl_msg_attrs(h, sizeof(*ifa), &len);
	if (!attrs || nl_attr_parse(attrs, len, tb, IFA_MAX) < 0)
		return -EBADMSG;
	if (ifa->ifa_family != AF_INET || ifa->ifa_index != (uint32_t)f->index ||
	    ifa->ifa_prefixlen != f->want.len)
		return 0;
	local = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!local || nl_attr_get_in4(local, &a) < 0)
		return -EBADMSG;
	if (a.s_addr == f->want.addr.s_addr)
		f->found = true;
	return 0;
}

int net_addr_exists(const char *ifname, const char *addr_cidr, bool *exists, struct kerr **err)
{
	_cleanup_nl_ struct nl nl = {.fd = -1};
	struct addr_find f = {0};
	struct net_link link;
	int rc;

	if (!net_ifname_valid(ifname))
		return kerr_set(err, KERR_INVALID, "invalid link name '%.32s'", ifname);
	if (net_prefix_parse(addr_cidr, &f.want, err) < 0 || open_nl(&nl, err) < 0)
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
	if (open_nl(&nl, err) < 0)
		return -1;
	rc = route_find(&nl, &p, route, exists);
	if (rc < 0)
		return nl_fail(&nl, err, rc, "cannot look up route '%s'", cidr);
	return 0;
}

static int route_unreachable(struct nl *nl, const struct net_prefix *p, bool add)
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
	if (open_nl(&nl, err) < 0)
		return -1;
	rc = route_unreachable(&nl, &p, add);
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
