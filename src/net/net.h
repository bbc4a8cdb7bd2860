/* kiln's networking mechanisms: bridges, veth pairs, addresses and routes over rtnetlink, and
 * the host's filter, NAT and anti-spoofing through nftables. IPv4 only. Knows links, prefixes
 * and groups of bridges, nothing of VPCs, zones or accounts: src/cloud decides which bridge and
 * which address. */
#ifndef KILN_NET_H
#define KILN_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/kerr.h"

#define NET_IFNAME_MAX 16 /* IFNAMSIZ: 15 characters and the NUL */
#define NET_MAC_LEN    6
#define NET_MAC_STR    18 /* "02:00:00:00:00:00" and the NUL */
/* kiln's bridges are named with this prefix, the host ends of instances' veth pairs with the
 * other: the host's filter (net_firewall_set) matches on both. */
#define NET_BRIDGE_PREFIX "kb-"
#define NET_PORT_PREFIX   "kv"

/* What a data directory's daemon makes in the host's namespace is named after the directory's
 * host id (4 lowercase hex digits), so that two data directories on one host never touch each
 * other's: its VPCs' transit links "kt<ID>-<N>" and its table `ip kiln_<ID>` of the host's
 * filter. NULL as a host id means `kiln host up`'s own: the tables `ip kiln`, `bridge kiln`
 * and the links "kb-*", "kv*" of the runtime's bridges. */
#define NET_HOST_ID_LEN    4
#define NET_TRANSIT_PREFIX "kt"
#define NET_HOST_TABLE_MAX 16
bool net_host_id_valid(const char *id);
/* "kt<ID>-<N>", the host's end of the transit link of VPC n of data directory id. */
void net_transit_name(const char *id, unsigned n, char out[NET_IFNAME_MAX]);
/* "kt<ID>-": the prefix of every transit link of data directory id. */
void net_transit_prefix(const char *id, char out[NET_IFNAME_MAX]);

/* An IPv4 address with a prefix length, "172.31.0.1/20"; addr in network byte order. */
struct net_prefix {
	struct in_addr addr;
	unsigned len; /* 0..32 */
};

/* Strict dotted-quad "a.b.c.d/n" (no spaces, no leading zeros in n); host bits may be set. */
int net_prefix_parse(const char *s, struct net_prefix *p, struct kerr **err);
/* A dotted-quad address without a prefix length. */
int net_addr_parse(const char *s, struct in_addr *addr, struct kerr **err);
/* True when the host bits of p are zero, as a route or a NAT range must have them. */
bool net_prefix_is_network(const struct net_prefix *p);
bool net_prefix_contains(const struct net_prefix *p, struct in_addr addr);
/* "172.31.0.0/16" into out (at least INET_ADDRSTRLEN + 3 bytes). */
void net_prefix_format(const struct net_prefix *p, char *out, size_t size);
/* "02:ab:cd:ef:01:23" (either case); a multicast address is refused. */
int net_mac_parse(const char *s, uint8_t mac[NET_MAC_LEN], struct kerr **err);
void net_mac_format(const uint8_t mac[NET_MAC_LEN], char out[NET_MAC_STR]);
/* 1 to 15 characters, none of them '/', ':', whitespace or control; not "." or "..". */
bool net_ifname_valid(const char *name);
/* Bridges that instances use are named "kb-GROUP-MEMBER" (GROUP and MEMBER of letters, digits,
 * '_' and '.'): the bridges of one group forward to each other and to no other group's. Writes
 * the group's prefix, "kb-GROUP-", to out (at least NET_IFNAME_MAX bytes); false when name has
 * not that shape. */
bool net_bridge_group(const char *name, char *out, size_t size);
/* Sort prefixes (shortest first) and drop those inside another one, duplicates included;
 * returns how many are left. The host bits must be zero. */
size_t net_prefixes_merge(struct net_prefix *prefixes, size_t n);

/* What the kernel says about one link of the caller's network namespace. */
struct net_link {
	int index;
	unsigned flags; /* IFF_UP, IFF_LOWER_UP, ... */
	int master;     /* ifindex of the bridge it is enslaved to, 0 when none */
	unsigned mtu;
	char kind[16]; /* "bridge", "veth", "" for a plain device such as lo */
	uint8_t mac[NET_MAC_LEN];
};

/* Fails with KERR_NOT_FOUND when there is no such link. */
int net_link_get(const char *name, struct net_link *link, struct kerr **err);
int net_link_exists(const char *name, bool *exists, struct kerr **err);
int net_link_set_up(const char *name, struct kerr **err);
/* Deleting one end of a veth pair deletes both. A missing link is not an error. */
int net_link_delete(const char *name, struct kerr **err);

/* Create bridge name if missing (a link of that name that is not a bridge is a conflict), add
 * gw_cidr ("172.31.0.1/20", or a lone "172.31.0.1/32") to it, bring it up. Idempotent. The bridge
 * gets a fixed MAC derived from its name, so it neither follows its ports' MACs nor changes when
 * it is recreated. Other addresses already on the bridge are left alone. */
int net_bridge_ensure(const char *name, const char *gw_cidr, struct kerr **err);

/* Create the veth pair host_if <-> peer_if with peer_if made directly in the network namespace
 * of ns_pid (with mac, when not NULL), host_if enslaved to bridge and up. On failure nothing is
 * left behind. */
int net_veth_create(const char *host_if, const char *bridge, pid_t ns_pid, const char *peer_if,
                    const uint8_t mac[NET_MAC_LEN], struct kerr **err);

/* Inside the network namespace of ns_pid: lo up, addr_cidr on ifname, ifname up, default route
 * via gateway (which must lie inside addr_cidr). Idempotent. Safe in a multi-threaded caller. */
int net_ns_configure(pid_t ns_pid, const char *ifname, const char *addr_cidr, const char *gateway,
                     struct kerr **err);

/* Is exactly addr_cidr ("172.31.0.1/20") an IPv4 address of link ifname? */
int net_addr_exists(const char *ifname, const char *addr_cidr, bool *exists, struct kerr **err);

/* A route of the main table, as net_route_get finds it. */
struct net_route {
	unsigned type; /* RTN_UNICAST, RTN_UNREACHABLE, ... (<linux/rtnetlink.h>) */
	bool has_gateway;
	struct in_addr gateway;
	int oif; /* ifindex of the output link, 0 when none */
};

/* The main-table route whose destination is exactly cidr ("0.0.0.0/0" for the default route). */
int net_route_get(const char *cidr, struct net_route *route, bool *exists, struct kerr **err);
/* Add (idempotent) or delete (absence tolerated) an `unreachable` route for cidr in the main
 * table. Adding fails with KERR_CONFLICT when another kind of route for exactly cidr exists. */
int net_route_unreachable(const char *cidr, bool add, struct kerr **err);

/* net.ipv4.ip_forward = 1 in the caller's network namespace. */
int net_forwarding_enable(struct kerr **err);
/* The host's filter, in the nftables tables `ip kiln` and `bridge kiln`, for bridges "kb-*" and
 * instance ports "kv*" (host_id NULL); or for a data directory's daemon (host_id its id), the
 * table `ip kiln_<ID>` alone for its transit links "kt<ID>-*", which carry no instance port:
 * - forward: established traffic passes; between bridges only within a group (the rules that
 *   net_instance_attach adds); from the bridges, never to 169.254.0.0/16 or to the networks of
 *   the host's own addresses (read now, on every link but kiln's; the DNS servers of
 *   /etc/resolv.conf stay reachable on port 53), and the rest out, masqueraded from vpc_cidr
 *   when nat (dropped without); nothing new from elsewhere into the bridges;
 * - input: nothing from the bridges but replies to what the host opened;
 * - bridge prerouting: an instance port sends only IPv4 and ARP from the MAC and address of its
 *   element in the set `ports`.
 * Set again (a restart), it rewrites its chains but keeps the set's elements and the groups'
 * rules, so that running instances stay as they were. One transaction; idempotent. */
int net_firewall_set(const char *host_id, const char *vpc_cidr, bool nat, struct kerr **err);
/* Delete the tables of host_id (absence is fine). */
int net_firewall_delete(const char *host_id, struct kerr **err);
/* The tables of host_id as `nft list` prints them, malloc'd; *ruleset is NULL when none
 * exists. */
int net_firewall_dump(const char *host_id, char **ruleset, struct kerr **err);

/* An instance's port on a bridge of kiln's, as the host sees it. Strings, as an instance spec
 * has them. */
struct net_instance {
	const char *host_if; /* "kv…": the host end of the instance's veth pair */
	const char *bridge;  /* "kb-GROUP-MEMBER" (net_bridge_group) */
	const char *address; /* the instance's "172.31.0.10/20" */
	const char *gateway; /* "172.31.0.1": the bridge carries it as a /32 */
	const char *mac;     /* the instance's "02:…"; NULL or "" for one derived from host_if */
};
/* Before the instance's veth pair exists: the bridge (up, with the gateway as a /32), the rule
 * that lets the bridges of its group forward to each other, the anti-spoofing element
 * (host_if, MAC, address) and a /32 route to the address through the bridge. *mac gets the MAC
 * the instance's end must have. Fails when net_firewall_set has not run: instances are never
 * unfiltered. Idempotent; on failure the element and route are gone again. */
int net_instance_attach(const struct net_instance *ni, uint8_t mac[NET_MAC_LEN], struct kerr **err);
/* Undo it for one instance: its veth pair (if still there), element and route. The bridge and
 * its group's rule stay. What is already gone is no error. */
int net_instance_detach(const struct net_instance *ni, struct kerr **err);

/* Mark an instance's port (a veth end enslaved to a bridge) isolated: it reaches no other
 * isolated port of the bridge directly, only the router above it (see VPCs below). */
int net_port_isolate(const char *name, struct kerr **err);

/* VPCs. Each is a network namespace of its own (its router), pinned at a file of the caller's
 * choosing, so that addresses may repeat between VPCs. Inside: a bridge per subnet carrying the
 * subnet's gateway as a /32, instances' ports isolated on them (the router answers ARP for the
 * whole subnet, so instance to instance traffic is routed, and filtered, like any other), the
 * same `ip kiln` and `bridge kiln` tables as the host's (anti-spoofing), the VPC's range routed
 * `unreachable`, and a veth pair to the host: NET_VPC_UPLINK inside, transit (net_transit_name)
 * on the host
 * (NET_TRANSIT_HOST there, NET_TRANSIT_VPC inside). Public addresses are the instances' by 1:1
 * NAT inside the VPC, /32 routes through the transit link on the host. */
#define NET_VPC_UPLINK   "up0"
#define NET_TRANSIT_HOST "169.254.0.1"
#define NET_TRANSIT_VPC  "169.254.0.2"
#define NET_VPC_BRIDGE   NET_BRIDGE_PREFIX "v-" /* + the subnet's number: "kb-v-12" */

/* Create the VPC pinned at pin whose host end of the transit link is named transit, or bring
 * one that exists back to its full set-up. cidr: the VPC's range. Idempotent. */
int net_vpc_ensure(const char *pin, const char *transit, const char *cidr, struct kerr **err);
/* The services the daemon offers inside every VPC (the instance metadata service, ...) listen
 * on this address, on the router's lo (net_vpc_listen takes any address). */
#define NET_VPC_SERVICE_ADDR "169.254.169.254"
/* A listening TCP socket (non-blocking, O_CLOEXEC) on addr:port made inside the VPC pinned at
 * pin, with addr on the router's lo and addr:port open to the VPC's bridges in its filter: the
 * daemon accepts on it from the host's namespace. Instances reach no other link-local address
 * of the router, and the router forwards nothing to 169.254.0.0/16. */
int net_vpc_listen(const char *pin, const char *addr, uint16_t port, int *fd, struct kerr **err);
/* The MAC of an instance's port whose host end is named host_if (as net_instance_attach gives
 * it when ni->mac is empty). */
void net_port_mac(const char *host_if, uint8_t mac[NET_MAC_LEN]);
/* The transit link and the pin go; the namespace with them once no instance holds it. Missing
 * parts are no error. */
int net_vpc_delete(const char *pin, const char *transit, struct kerr **err);
/* Open the namespace pinned at pin (O_CLOEXEC): KERR_NOT_FOUND when there is none. */
int net_vpc_open(const char *pin, int *nsfd, struct kerr **err);

/* An instance's port on a bridge inside the VPC pinned at pin: net_instance_attach there, its
 * veth pair (peer_if born in the namespace of pid) isolated on the bridge, the instance's end
 * configured (net_ns_configure). On failure nothing is left. Detach undoes it; a VPC that is
 * gone took the port with it. */
int net_vpc_port_attach(const char *pin, const struct net_instance *ni, pid_t pid,
                        const char *peer_if, struct kerr **err);
int net_vpc_port_detach(const char *pin, const struct net_instance *ni, struct kerr **err);

/* What a VPC's security groups allow, and its public addresses. */
#define NET_PROTO_ALL (-1)
struct net_sg_rule {
	bool egress;
	int proto;    /* an IP protocol number, or NET_PROTO_ALL */
	int from, to; /* ports (tcp, udp), ICMP type and code (-1: any); others ignore them */
	struct net_prefix peer; /* where from (ingress) or to (egress), unless ref >= 0 */
	int ref;                /* the index of a group whose members are the peers, or -1 */
};
struct net_sg {
	const struct net_sg_rule *rules;
	size_t nrules;
};
struct net_vpc_member {
	struct in_addr addr; /* its private address */
	struct in_addr pub;  /* its public address, when has_pub */
	bool has_pub;
	const size_t *groups; /* indexes into the policy's groups */
	size_t ngroups;
};
struct net_vpc_policy {
	const struct net_sg *groups;
	size_t ngroups;
	const struct net_vpc_member *members; /* the instances whose network is up or coming up */
	size_t nmembers;
};
/* Write the policy of the VPC pinned at pin (transit: its link on the host) in one transaction
 * (table `ip kiln_vpc` of its namespace): stateful; a member's traffic out must match one of its
 * groups' egress rules, traffic to it one of their ingress rules; an address no member has neither
 * sends nor receives; a member without a public address sends nothing out of the VPC. Then the
 * host's /32 routes of the public addresses through the transit link are made to match. */
int net_vpc_policy_set(const char *pin, const char *transit, const struct net_vpc_policy *policy,
                       struct kerr **err);

#endif
