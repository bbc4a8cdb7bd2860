/* Links over rtnetlink: lookup, up, delete, kiln's bridges and the instances' veth pairs. */
#include "net.h"

#include <errno.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/veth.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "util/banned.h"

static int link_parse(const struct nlmsghdr *h, void *ctx)
{
	struct net_link *link = ctx;
	const struct rtattr *tb[IFLA_MAX + 1], *info[IFLA_INFO_MAX + 1];
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	const void *attrs;
	size_t len;
	uint32_t v;
	int r;

	if (h->nlmsg_type != RTM_NEWLINK)
		return 0;
	attrs = nl_msg_attrs(h, sizeof(*ifi), &len);
	if (!attrs || ifi->ifi_index <= 0)
		return -EBADMSG;
	r = nl_attr_parse(attrs, len, tb, IFLA_MAX);
	if (r < 0)
		return r;
	memset(link, 0, sizeof(*link));
	link->index = ifi->ifi_index;
	link->flags = ifi->ifi_flags;
	if (tb[IFLA_MASTER] && nl_attr_get_u32(tb[IFLA_MASTER], &v) == 0 && v <= INT32_MAX)
		link->master = (int)v;
	if (tb[IFLA_MTU] && nl_attr_get_u32(tb[IFLA_MTU], &v) == 0)
		link->mtu = v;
	if (tb[IFLA_ADDRESS] && nl_attr_len(tb[IFLA_ADDRESS]) == NET_MAC_LEN)
		memcpy(link->mac, nl_attr_data(tb[IFLA_ADDRESS]), NET_MAC_LEN);
	if (tb[IFLA_LINKINFO]) {
		r = nl_attr_parse(nl_attr_data(tb[IFLA_LINKINFO]), nl_attr_len(tb[IFLA_LINKINFO]),
		                  info, IFLA_INFO_MAX);
		if (r < 0)
			return r;
		if (info[IFLA_INFO_KIND] &&
		    nl_attr_get_str(info[IFLA_INFO_KIND], link->kind, sizeof(link->kind)) < 0)
			return -EBADMSG;
	}
	return 0;
}

int nl_link_get(struct nl *nl, const char *name, struct net_link *link)
{
	struct nl_req r;
	struct ifinfomsg *ifi;
	int rc;

	nl_req_init(&r, RTM_GETLINK, 0);
	ifi = nl_req_put(&r, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	nl_attr_put_str(&r, IFLA_IFNAME, name);
	nl_attr_put_u32(&r, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	link->index = 0;
	rc = nl_talk(nl, &r, link_parse, link);
	if (rc == 0 && link->index <= 0)
		rc = -EBADMSG; /* acknowledged without an answer */
	return rc;
}

static int link_set_flags(struct nl *nl, const char *name, unsigned flags, unsigned change)
{
	struct nl_req r;
	struct ifinfomsg *ifi;

	nl_req_init(&r, RTM_NEWLINK, 0);
	ifi = nl_req_put(&r, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_flags = flags;
	ifi->ifi_change = change;
	nl_attr_put_str(&r, IFLA_IFNAME, name);
	return nl_talk(nl, &r, NULL, NULL);
}

int nl_link_set_up(struct nl *nl, const char *name)
{
	return link_set_flags(nl, name, IFF_UP, IFF_UP);
}

static int check_name(const char *name, const char *what, struct kerr **err)
{
	if (!net_ifname_valid(name))
		return kerr_set(err, KERR_INVALID, "invalid %s name '%.*s'", what,
		                NET_IFNAME_MAX * 2, name);
	return 0;
}

int net_link_get(const char *name, struct net_link *link, struct kerr **err)
{
	_cleanup_nl_ struct nl nl = {.fd = -1};
	int rc;

	if (check_name(name, "link", err) < 0 || nl_open_kerr(&nl, err) < 0)
		return -1;
	rc = nl_link_get(&nl, name, link);
	if (rc < 0)
		return nl_fail(&nl, err, rc, "cannot look up link '%s'", name);
	return 0;
}

int net_link_exists(const char *name, bool *exists, struct kerr **err)
{
	_cleanup_nl_ struct nl nl = {.fd = -1};
	struct net_link link;
	int rc;

	if (check_name(name, "link", err) < 0 || nl_open_kerr(&nl, err) < 0)
		return -1;
	rc = nl_link_get(&nl, name, &link);
	if (rc < 0 && rc != -ENODEV)
		return nl_fail(&nl, err, rc, "cannot look up link '%s'", name);
	*exists = rc == 0;
	return 0;
}

int net_link_set_up(const char *name, struct kerr **err)
{
	_cleanup_nl_ struct nl nl = {.fd = -1};
	int rc;

	if (check_name(name, "link", err) < 0 || nl_open_kerr(&nl, err) < 0)
		return -1;
	rc = nl_link_set_up(&nl, name);
	if (rc < 0)
		return nl_fail(&nl, err, rc, "cannot bring up link '%s'", name);
	return 0;
}

int nl_link_delete(struct nl *nl, const char *name)
{
	struct nl_req r;
	struct ifinfomsg *ifi;

	nl_req_init(&r, RTM_DELLINK, 0);
	ifi = nl_req_put(&r, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	nl_attr_put_str(&r, IFLA_IFNAME, name);
	return nl_talk(nl, &r, NULL, NULL);
}

int net_link_delete(const char *name, struct kerr **err)
{
	_cleanup_nl_ struct nl nl = {.fd = -1};
	int rc;

	if (check_name(name, "link", err) < 0 || nl_open_kerr(&nl, err) < 0)
		return -1;
	rc = nl_link_delete(&nl, name);
	if (rc < 0 && rc != -ENODEV)
		return nl_fail(&nl, err, rc, "cannot delete link '%s'", name);
	return 0;
}

void net_name_mac(const char *kind, const char *name, uint8_t mac[NET_MAC_LEN])
{
	char seed[64];
	int n = snprintf(seed, sizeof(seed), "kiln %s %s", kind, name);
	uint64_t h = 0xcbf29ce484222325u;

	/* FNV-1a and murmur3's finaliser: a name's MAC needs spreading, not secrecy (and the shim
	 * would otherwise set up OpenSSL for this alone). */
	for (int i = 0; i < n && i < (int)sizeof(seed); i++)
		h = (h ^ (uint8_t)seed[i]) * 0x100000001b3u;
	h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdu;
	h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53u;
	h ^= h >> 33;
	for (int i = 0; i < NET_MAC_LEN; i++)
		mac[i] = (uint8_t)(h >> (8 * i));
	mac[0] = (uint8_t)((mac[0] & 0xfc) | 0x02);
}

static int bridge_create(struct nl *nl, const char *name)
{
	struct nl_req r;
	struct ifinfomsg *ifi;
	struct rtattr *linkinfo;
	uint8_t mac[NET_MAC_LEN];

	/* A bridge takes the lowest MAC of its ports unless it has one of its own, and every
	 * change of it makes the instances' ARP entries for the gateway stale. */
	net_name_mac("bridge", name, mac);
	nl_req_init(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
	ifi = nl_req_put(&r, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	nl_attr_put_str(&r, IFLA_IFNAME, name);
	nl_attr_put(&r, IFLA_ADDRESS, mac, sizeof(mac));
	linkinfo = nl_nest_begin(&r, IFLA_LINKINFO);
	nl_attr_put_str(&r, IFLA_INFO_KIND, "bridge");
	nl_nest_end(&r, linkinfo);
	return nl_talk(nl, &r, NULL, NULL);
}

int nl_bridge_ensure(struct nl *nl, const char *name, const struct net_prefix *gw, int *index,
                     struct kerr **err)
{
	char gw_cidr[32];
	struct net_link link;
	int rc = bridge_create(nl, name);

	if (rc < 0 && rc != -EEXIST)
		return nl_fail(nl, err, rc, "cannot create bridge '%s'", name);
	rc = nl_link_get(nl, name, &link);
	if (rc < 0)
		return nl_fail(nl, err, rc, "cannot look up bridge '%s'", name);
	if (strcmp(link.kind, "bridge") != 0)
		return kerr_set(err, KERR_CONFLICT,
		                "cannot create bridge '%s': a link of kind '%s' has that name",
		                name, link.kind[0] ? link.kind : "device");
	rc = nl_addr_add(nl, link.index, gw);
	if (rc < 0) {
		net_prefix_format(gw, gw_cidr, sizeof(gw_cidr));
		return nl_fail(nl, err, rc, "cannot add address '%s' to bridge '%s'", gw_cidr,
		               name);
	}
	rc = nl_link_set_up(nl, name);
	if (rc < 0)
		return nl_fail(nl, err, rc, "cannot bring up bridge '%s'", name);
	*index = link.index;
	return 0;
}

int net_bridge_ensure(const char *name, const char *gw_cidr, struct kerr **err)
{
	_cleanup_nl_ struct nl nl = {.fd = -1};
	struct net_prefix gw;
	int index;

	if (check_name(name, "bridge", err) < 0)
		return -1;
	if (net_prefix_parse(gw_cidr, &gw, err) < 0)
		return kerr_wrap(err, "cannot create bridge '%s'", name);
	/* A host address in a subnet, or alone as a /32. */
	if (gw.len == 31 || (gw.len < 31 && net_prefix_is_network(&gw)))
		return kerr_set(err, KERR_INVALID,
		                "cannot create bridge '%s': '%s' is not a host address in a subnet",
		                name, gw_cidr);
	if (nl_open_kerr(&nl, err) < 0)
		return -1;
	return nl_bridge_ensure(&nl, name, &gw, &index, err);
}

/* A veth pair whose host end is host_if (a port of master, when master is not 0) and whose peer
 * end is peer_if, born in the namespace that ns_attr (IFLA_NET_NS_PID or IFLA_NET_NS_FD) names. */
static int veth_create(struct nl *nl, const char *host_if, int master, const char *peer_if,
                       uint16_t ns_attr, uint32_t ns, const uint8_t *mac)
{
	struct nl_req r;
	struct ifinfomsg *ifi, *peer;
	struct rtattr *linkinfo, *data, *peerinfo;

	nl_req_init(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
	ifi = nl_req_put(&r, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	nl_attr_put_str(&r, IFLA_IFNAME, host_if);
	if (master)
		nl_attr_put_u32(&r, IFLA_MASTER, (uint32_t)master);
	linkinfo = nl_nest_begin(&r, IFLA_LINKINFO);
	nl_attr_put_str(&r, IFLA_INFO_KIND, "veth");
	data = nl_nest_begin(&r, IFLA_INFO_DATA);
	/* The peer is an ifinfomsg with its own attributes; born in the other namespace, it
	 * never exists in ours, so no name clash or half-moved state is possible. */
	peerinfo = nl_nest_begin(&r, VETH_INFO_PEER);
	peer = nl_req_put(&r, sizeof(*peer));
	peer->ifi_family = AF_UNSPEC;
	nl_attr_put_str(&r, IFLA_IFNAME, peer_if);
	nl_attr_put_u32(&r, ns_attr, ns);
	if (mac)
		nl_attr_put(&r, IFLA_ADDRESS, mac, NET_MAC_LEN);
	nl_nest_end(&r, peerinfo);
	nl_nest_end(&r, data);
	nl_nest_end(&r, linkinfo);
	return nl_talk(nl, &r, NULL, NULL);
}

int net_veth_create(const char *host_if, const char *bridge, pid_t ns_pid, const char *peer_if,
                    const uint8_t mac[NET_MAC_LEN], struct kerr **err)
{
	_cleanup_nl_ struct nl nl = {.fd = -1};
	struct net_link br;
	int rc;

	if (check_name(host_if, "veth", err) < 0 || check_name(bridge, "bridge", err) < 0 ||
	    check_name(peer_if, "veth", err) < 0)
		return -1;
	if (ns_pid <= 0)
		return kerr_set(err, KERR_INVALID, "cannot create veth '%s': invalid pid %d",
		                host_if, (int)ns_pid);
	if (mac && (mac[0] & 1))
		return kerr_set(err, KERR_INVALID, "cannot create veth '%s': multicast mac address",
		                host_if);
	if (nl_open_kerr(&nl, err) < 0)
		return -1;
	rc = nl_link_get(&nl, bridge, &br);
	if (rc < 0)
		return nl_fail(&nl, err, rc, "cannot create veth '%s': cannot look up bridge '%s'",
		               host_if, bridge);
	if (strcmp(br.kind, "bridge") != 0)
		return kerr_set(err, KERR_INVALID, "cannot create veth '%s': '%s' is not a bridge",
		                host_if, bridge);
	rc = veth_create(&nl, host_if, br.index, peer_if, IFLA_NET_NS_PID, (uint32_t)ns_pid, mac);
	if (rc < 0)
		return nl_fail(&nl, err, rc, "cannot create veth '%s' for pid %d", host_if,
		               (int)ns_pid);
	rc = nl_link_set_up(&nl, host_if);
	if (rc < 0) {
		nl_fail(&nl, err, rc, "cannot bring up veth '%s'", host_if);
		goto on_error;
	}
	return 0;
on_error:
	nl_link_delete(&nl, host_if); /* takes the peer with it */
	return -1;
}

int nl_veth_pair(struct nl *nl, const char *host_if, const char *peer_if, int peer_nsfd)
{
	return veth_create(nl, host_if, 0, peer_if, IFLA_NET_NS_FD, (uint32_t)peer_nsfd, NULL);
}

int nl_port_isolate(struct nl *nl, int ifindex)
{
	struct nl_req r;
	struct ifinfomsg *ifi;
	struct rtattr *protinfo;
	uint8_t on = 1;

	nl_req_init(&r, RTM_SETLINK, 0);
	ifi = nl_req_put(&r, sizeof(*ifi));
	ifi->ifi_family = AF_BRIDGE;
	ifi->ifi_index = ifindex;
	protinfo = nl_nest_begin(&r, NLA_F_NESTED | IFLA_PROTINFO);
	nl_attr_put(&r, IFLA_BRPORT_ISOLATED, &on, sizeof(on));
	nl_nest_end(&r, protinfo);
	return nl_talk(nl, &r, NULL, NULL);
}

int net_port_isolate(const char *name, struct kerr **err)
{
	_cleanup_nl_ struct nl nl = {.fd = -1};
	struct net_link link;
	int rc;

	if (check_name(name, "port", err) < 0 || nl_open_kerr(&nl, err) < 0)
		return -1;
	rc = nl_link_get(&nl, name, &link);
	if (rc == 0)
		rc = nl_port_isolate(&nl, link.index);
	if (rc < 0)
		return nl_fail(&nl, err, rc, "cannot isolate port '%s'", name);
	return 0;
}
