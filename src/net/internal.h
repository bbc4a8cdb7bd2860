/* Inside src/net: the rtnetlink plumbing (bounded request building, talking to the kernel,
 * checked parsing of replies) and the operations the public functions share. These helpers
 * return 0 or a negative errno, so that callers can tell -EEXIST or -ENODEV apart and word the
 * error themselves with nl_fail. */
#ifndef KILN_NET_INTERNAL_H
#define KILN_NET_INTERNAL_H

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"

#define NL_REQ_MAX    1024  /* our requests are a few hundred bytes at most */
#define NL_RECV_MAX   32768 /* the kernel never builds a netlink skb larger than this for us */
#define NL_TIMEOUT_S  30    /* a reply slower than this means something is badly wrong */
#define NL_EXTACK_MAX 160

/* A request under construction. Appends past NL_REQ_MAX set overflow and are refused at send. */
struct nl_req {
	union {
		struct nlmsghdr hdr;
		uint8_t buf[NL_REQ_MAX];
	} u;
	bool overflow;
	uint8_t scratch[64]; /* where reservations go once overflowed, so callers need no checks */
};

/* An rtnetlink socket, bound to the network namespace it was created in. */
struct nl {
	int fd;
	uint32_t portid;
	uint32_t seq;
	uint8_t *rbuf;              /* NL_RECV_MAX bytes */
	char extack[NL_EXTACK_MAX]; /* the kernel's words on the last failure, or "" */
};

/* A socket in the caller's network namespace, or around fd (a NETLINK_ROUTE socket, taken). */
int nl_open(struct nl *nl);
int nl_open_fd(struct nl *nl, int fd);
void nl_close(struct nl *nl);
static inline void nl_closep(struct nl *nl)
{
	nl_close(nl);
}
#define _cleanup_nl_ __attribute__((cleanup(nl_closep)))

void nl_req_init(struct nl_req *r, uint16_t type, uint16_t flags);
/* len zeroed bytes at the (aligned) end of the message, for a fixed header of at most
 * sizeof(scratch) bytes; never NULL (past the end it is scratch, and the send is refused). */
void *nl_req_put(struct nl_req *r, size_t len) __attribute__((returns_nonnull));
void nl_attr_put(struct nl_req *r, uint16_t type, const void *data, size_t len);
void nl_attr_put_u32(struct nl_req *r, uint16_t type, uint32_t v);
void nl_attr_put_str(struct nl_req *r, uint16_t type, const char *s);
struct rtattr *nl_nest_begin(struct nl_req *r, uint16_t type);
void nl_nest_end(struct nl_req *r, struct rtattr *nest);

/* Called for each reply message of the request; a negative errno stops the calls (the rest of
 * the reply is still read) and becomes nl_talk's result. */
typedef int (*nl_reply_fn)(const struct nlmsghdr *h, void *ctx);

/* Send r (NLM_F_ACK is added unless it is a dump) and read replies until the ack, the end of
 * the dump or an error. Replies of other requests are skipped. */
int nl_talk(struct nl *nl, struct nl_req *r, nl_reply_fn fn, void *ctx);
/* On a NETLINK_NETFILTER socket: r (one nf_tables change) in a batch of its own, acked. */
int nl_talk_batch(struct nl *nl, struct nl_req *r);

/* The attributes after a fixed header of hdrlen bytes: NULL when the message is too short. */
const void *nl_msg_attrs(const struct nlmsghdr *h, size_t hdrlen, size_t *attrlen);
/* Index attributes by type into tb[0..max] (later duplicates win); -EBADMSG when malformed. */
int nl_attr_parse(const void *data, size_t len, const struct rtattr **tb, unsigned max);
const void *nl_attr_data(const struct rtattr *a);
size_t nl_attr_len(const struct rtattr *a);
int nl_attr_get_u32(const struct rtattr *a, uint32_t *v);
/* A NUL-terminated string attribute that fits in size bytes. */
int nl_attr_get_str(const struct rtattr *a, char *out, size_t size);
int nl_attr_get_in4(const struct rtattr *a, struct in_addr *v);

/* kerr_errno for a negative errno from these helpers, with the kernel's extended ack (when it
 * gave one) between the message and the strerror. ENODEV and ESRCH count as not found. */
int nl_fail(struct nl *nl, struct kerr **err, int negerr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Shared operations on an open socket, in whatever namespace it lives. */
int nl_link_get(struct nl *nl, const char *name, struct net_link *link);
int nl_link_set_up(struct nl *nl, const char *name);
int nl_link_delete(struct nl *nl, const char *name);
int nl_addr_add(struct nl *nl, int ifindex, const struct net_prefix *p);
int nl_route_default(struct nl *nl, int oif, struct in_addr gateway);
/* Add (replacing) or delete the main-table route for exactly dst/32 through oif. */
int nl_route_host(struct nl *nl, struct in_addr dst, int oif, bool add);
/* The networks of the IPv4 addresses on links not named "kb-*" or "kv*" (kiln's), malloc'd;
 * some may repeat or hold others (net_prefixes_merge), as when a dump is read again after an
 * interruption. */
int nl_host_networks(struct nl *nl, struct net_prefix **out, size_t *n);

/* Run fn(ctx) on a short-lived thread inside the network namespace nsfd (setns changes only the
 * calling thread), or inside a new one when nsfd is -1; what fn creates there (sockets, an
 * nftables context) stays bound to it. */
int net_ns_run(int nsfd, int (*fn)(void *ctx, struct kerr **err), void *ctx, struct kerr **err);
/* A netlink socket of protocol (NETLINK_ROUTE, NETLINK_NETFILTER) living in namespace nsfd. */
int nl_open_in(struct nl *nl, int nsfd, int protocol, struct kerr **err);
/* A /32 route to dst through gateway gw on oif, which need not share a prefix with it
 * (onlink); add replaces, delete tolerates nothing (-ESRCH when absent). */
int nl_route_via(struct nl *nl, struct in_addr dst, struct in_addr gw, int oif, bool add);
/* The default route through gw on oif, onlink. */
int nl_route_default_onlink(struct nl *nl, int oif, struct in_addr gw);
/* Add (EXCL: -EEXIST when any route for p exists) or delete the unreachable route of p. */
int nl_route_unreachable(struct nl *nl, const struct net_prefix *p, bool add);
/* The destinations of the main table's /32 routes through oif, malloc'd. */
int nl_routes_through(struct nl *nl, int oif, struct in_addr **out, size_t *n);
/* Create the veth pair host_if <-> peer_if, peer_if born in the namespace peer_nsfd, neither
 * end enslaved nor up; no addresses. */
int nl_veth_pair(struct nl *nl, const char *host_if, const char *peer_if, int peer_nsfd);
/* Mark a bridge port isolated: it forwards to no other isolated port of its bridge, so all
 * traffic between instances goes through the router above the bridge. */
int nl_port_isolate(struct nl *nl, int ifindex);

/* The same, wording their own errors. */
int nl_open_kerr(struct nl *nl, struct kerr **err);
/* net_bridge_ensure on an open socket; *index gets the bridge's. */
int nl_bridge_ensure(struct nl *nl, const char *name, const struct net_prefix *gw, int *index,
                     struct kerr **err);

/* A locally administered unicast MAC, the same for the same (kind, name) every time. */
void net_name_mac(const char *kind, const char *name, uint8_t mac[NET_MAC_LEN]);

/* nftables (nat.c): kiln's tables and the names inside them that attach and detach use. */
#define NFT_TABLE    "kiln"
#define NFT_SERVICES "services" /* ip kiln of a VPC: the ports the daemon serves inside */
#define NFT_GROUPS   "groups"   /* ip kiln: bridge name -> jump to the chain of its group */
#define NFT_PORTS    "ports"    /* bridge kiln: host_if . MAC . address an instance may send from */
/* Run script in one transaction; on success *out (when asked) gets nft's output, malloc'd. On
 * failure the message is what, then the first line of nft's complaint; a missing table, chain
 * or element is KERR_NOT_FOUND. */
int nft_run(const char *script, char **out, const char *what, struct kerr **err);
struct buf;
/* The table `bridge kiln` (anti-spoofing on ports "kv*", the set `ports`), as a script that
 * keeps the set's elements. */
void nft_bridge_ports(struct buf *script);

#endif
