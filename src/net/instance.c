/* An instance's port on one of kiln's bridges, as the host keeps it: the bridge with the gateway
 * as a /32, a /32 route to the instance through it, the rule that lets the bridges of its group
 * forward to each other, and its element of the anti-spoofing set. All the bridges of a subnet
 * carry the same gateway address, so instances of every group have the same gateway, and the
 * host reaches each instance by the route of its own.
 *
 * The set elements go to nf_tables over netlink directly: libnftables needs some 10 ms in a fresh
 * process (the shim is one per instance) where the two messages need well under one. It only
 * writes a group's chain, once per group. */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/banned.h"

/* The key of an element of the set `ports`: the concatenation ifname . ether_addr . ipv4_addr,
 * each field padded to 4 bytes as nf_tables registers hold them. */
struct port_key {
	char ifname[NET_IFNAME_MAX];
	uint8_t mac[NET_MAC_LEN];
	uint8_t pad[2];
	struct in_addr addr;
};
_Static_assert(sizeof(struct port_key) == 28, "the key of 'ports' is 28 bytes");

/* What a struct net_instance says, checked and parsed. */
struct port {
	struct net_prefix addr; /* the instance's address, with its subnet's length */
	struct net_prefix gw;   /* the gateway as a /32 */
	char group[NET_IFNAME_MAX];
	struct port_key key;
};

static int port_parse(const struct net_instance *ni, struct port *p, const char *what,
                      struct kerr **err)
{
	struct in_addr gw;

	memset(p, 0, sizeof(*p));
	/* The anti-spoofing rules filter ports of that name only: any other would send freely. */
	if (!net_ifname_valid(ni->host_if) ||
	    strncmp(ni->host_if, NET_PORT_PREFIX, strlen(NET_PORT_PREFIX)) != 0)
		return kerr_set(err, KERR_INVALID, "%s: the port's name must start with '%s'", what,
		                NET_PORT_PREFIX);
	if (!net_bridge_group(ni->bridge, p->group, sizeof(p->group)))
		return kerr_set(err, KERR_INVALID, "%s: bridge name '%.32s' is not %sGROUP-MEMBER",
		                what, ni->bridge, NET_BRIDGE_PREFIX);
	if (net_prefix_parse(ni->address, &p->addr, err) < 0 ||
	    net_addr_parse(ni->gateway, &gw, err) < 0)
		return kerr_wrap(err, "%s", what);
	if (ni->mac && ni->mac[0]) {
		if (net_mac_parse(ni->mac, p->key.mac, err) < 0)
			return kerr_wrap(err, "%s", what);
	} else {
		/* Derived, not random: detach finds the element again without being told. */
		net_name_mac("port", ni->host_if, p->key.mac);
	}
	p->gw = (struct net_prefix){.addr = gw, .len = 32};
	memcpy(p->key.ifname, ni->host_if, strlen(ni->host_if));
	p->key.addr = p->addr.addr;
	return 0;
}

static int open_nft(struct nl *nl, struct kerr **err)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER), rc;

	if (fd < 0)
		return kerr_errno(err, errno, "cannot open a netfilter netlink socket");
	rc = nl_open_fd(nl, fd);
	if (rc < 0)
		return nl_fail(NULL, err, rc, "cannot set up a netfilter netlink socket");
	return 0;
}

/* Add or delete the element key of set in kiln's table of family; with jump, the element of
 * a verdict map that jumps to that chain. */
static int set_element(struct nl *nl, uint8_t family, const char *set, const void *key,
                       size_t keylen, const char *jump, bool add)
{
	struct nl_req r;
	struct nfgenmsg *g;
	struct rtattr *list, *elem, *k;

	nl_req_init(&r, NFNL_SUBSYS_NFTABLES << 8 | (add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM),
	            add ? NLM_F_CREATE : 0);
	g = nl_req_put(&r, sizeof(*g));
	g->nfgen_family = family;
	g->version = NFNETLINK_V0;
	nl_attr_put_str(&r, NFTA_SET_ELEM_LIST_TABLE, NFT_TABLE);
	nl_attr_put_str(&r, NFTA_SET_ELEM_LIST_SET, set);
	list = nl_nest_begin(&r, NLA_F_NESTED | NFTA_SET_ELEM_LIST_ELEMENTS);
	elem = nl_nest_begin(&r, NLA_F_NESTED | NFTA_LIST_ELEM);
	k = nl_nest_begin(&r, NLA_F_NESTED | NFTA_SET_ELEM_KEY);
	nl_attr_put(&r, NFTA_DATA_VALUE, key, keylen);
	nl_nest_end(&r, k);
	if (jump) {
		struct rtattr *data = nl_nest_begin(&r, NLA_F_NESTED | NFTA_SET_ELEM_DATA);
		struct rtattr *verdict = nl_nest_begin(&r, NLA_F_NESTED | NFTA_DATA_VERDICT);

		nl_attr_put_u32(&r, NFTA_VERDICT_CODE, htonl((uint32_t)NFT_JUMP));
		nl_attr_put_str(&r, NFTA_VERDICT_CHAIN, jump);
		nl_nest_end(&r, verdict);
		nl_nest_end(&r, data);
	}
	nl_nest_end(&r, elem);
	nl_nest_end(&r, list);
	return nl_talk_batch(nl, &r);
}

static int port_element(struct nl *nl, const struct port *p, bool add)
{
	return set_element(nl, NFPROTO_BRIDGE, NFT_PORTS, &p->key, sizeof(p->key), NULL, add);
}

/* The first instance of a group since the filter was written: its chain, the map's way there
 * and the port's element, in one transaction. Flushed and written again: one rule, however many
 * shims do this at the same time. Into tables that only net_firewall_set makes, so that no
 * instance is ever attached without the filter. */
static int group_create(const struct net_instance *ni, const struct port *p, const char *what,
                        struct kerr **err)
{
	_cleanup_buf_ struct buf script = BUF_INIT;
	char mac[NET_MAC_STR], ip[INET_ADDRSTRLEN];

	net_mac_format(p->key.mac, mac);
	inet_ntop(AF_INET, &p->addr.addr, ip, sizeof(ip));
	buf_addf(&script,
	         "add chain ip " NFT_TABLE " %s\n"
	         "flush chain ip " NFT_TABLE " %s\n"
	         "add rule ip " NFT_TABLE " %s oifname \"%s*\" accept\n"
	         "add element ip " NFT_TABLE " " NFT_GROUPS " { \"%s\" : jump %s }\n"
	         "add element bridge " NFT_TABLE " " NFT_PORTS " { \"%s\" . %s . %s }\n",
	         p->group, p->group, p->group, p->group, ni->bridge, p->group, ni->host_if, mac,
	         ip);
	if (nft_run(script.data, NULL, what, err) < 0) {
		if ((*err)->kind == KERR_NOT_FOUND)
			kerr_set(err, KERR_NOT_FOUND,
			         "%s: the host's filter is not set up (kiln host up)", what);
		return -1;
	}
	return 0;
}

void net_port_mac(const char *host_if, uint8_t mac[NET_MAC_LEN])
{
	net_name_mac("port", host_if, mac);
}

int net_instance_attach(const struct net_instance *ni, uint8_t mac[NET_MAC_LEN], struct kerr **err)
{
	_cleanup_nl_ struct nl nl = {.fd = -1};
	_cleanup_nl_ struct nl nft = {.fd = -1};
	char what[96], bridge_key[NET_IFNAME_MAX] = {0};
	struct port p;
	int index, rc;

	snprintf(what, sizeof(what), "cannot attach '%.16s' to bridge '%.16s'", ni->host_if,
	         ni->bridge);
	if (port_parse(ni, &p, what, err) < 0 || nl_open_kerr(&nl, err) < 0 ||
	    open_nft(&nft, err) < 0 || nl_bridge_ensure(&nl, ni->bridge, &p.gw, &index, err) < 0)
		return -1;
	/* The bridge's way to its group's chain: there is none (ENOENT) until the group's first
	 * instance has made the chain. */
	memcpy(bridge_key, ni->bridge, strlen(ni->bridge));
	rc = set_element(&nft, NFPROTO_IPV4, NFT_GROUPS, bridge_key, sizeof(bridge_key), p.group,
	                 true);
	if (rc == -ENOENT) {
		if (group_create(ni, &p, what, err) < 0)
			return -1;
	} else if (rc < 0 || (rc = port_element(&nft, &p, true)) < 0) {
		return nl_fail(&nft, err, rc, "%s", what);
	}
	rc = nl_route_host(&nl, p.addr.addr, index, true);
	if (rc < 0) {
		nl_fail(&nl, err, rc, "%s: cannot add the route to '%s'", what, ni->address);
		port_element(&nft, &p, false);
		return -1;
	}
	memcpy(mac, p.key.mac, NET_MAC_LEN);
	return 0;
}

int net_instance_detach(const struct net_instance *ni, struct kerr **err)
{
	_cleanup_nl_ struct nl nl = {.fd = -1};
	_cleanup_nl_ struct nl nft = {.fd = -1};
	struct kerr *first = NULL;
	struct net_link br;
	char what[96];
	struct port p;
	int rc;

	snprintf(what, sizeof(what), "cannot detach '%.16s' from bridge '%.16s'", ni->host_if,
	         ni->bridge);
	/* A port that does not parse was never attached, and so never got its veth either. */
	if (port_parse(ni, &p, what, err) < 0 || nl_open_kerr(&nl, err) < 0 ||
	    open_nft(&nft, err) < 0)
		return -1;
	/* Every step, whatever failed before; the first failure is the one reported. */
	rc = nl_link_delete(&nl, ni->host_if); /* with the instance gone, so is its veth */
	if (rc < 0 && rc != -ENODEV)
		nl_fail(&nl, &first, rc, "%s: cannot delete the port", what);
	rc = nl_link_get(&nl, ni->bridge, &br); /* without the bridge, its routes are gone */
	if (rc == 0)
		rc = nl_route_host(&nl, p.addr.addr, br.index, false);
	if (rc < 0 && rc != -ENODEV && rc != -ESRCH)
		nl_fail(&nl, first ? NULL : &first, rc, "%s: cannot delete the route to '%s'", what,
		        ni->address);
	rc = port_element(&nft, &p, false); /* ENOENT: no such element, or no filter at all */
	if (rc < 0 && rc != -ENOENT)
		nl_fail(&nft, first ? NULL : &first, rc, "%s: cannot delete its filter element",
		        what);
	return first ? kerr_pass(err, first) : 0;
}
