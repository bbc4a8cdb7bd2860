/* VPCs as network namespaces of their own: creating and pinning one, its transit link to the
 * host, its base tables, and the policy table that holds its security groups and 1:1 NAT (see
 * net.h). The policy is written whole, in one nftables transaction, from what the caller says
 * the VPC's instances and groups are: nothing here remembers them, so a change of a rule, a
 * membership or a public address is the same operation as the first write. */
#include "net.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/banned.h"

#define POLICY_TABLE "kiln_vpc"
#define BR           NET_BRIDGE_PREFIX "*"
/* The daemon's services inside: address and TCP port (net_vpc_listen). */
#define SERVICES_TYPE "{ type ipv4_addr . inet_service; }"

bool net_host_id_valid(const char *id)
{
	if (!id || strlen(id) != NET_HOST_ID_LEN)
		return false;
	for (const char *c = id; *c; c++)
		if (!isdigit((unsigned char)*c) && (*c < 'a' || *c > 'f'))
			return false;
	return true;
}

void net_transit_prefix(const char *id, char out[NET_IFNAME_MAX])
{
	snprintf(out, NET_IFNAME_MAX, NET_TRANSIT_PREFIX "%.4s-", id);
}

void net_transit_name(const char *id, unsigned n, char out[NET_IFNAME_MAX])
{
	/* "kt" + 4 + "-" leave 8 digits of the 15 characters Linux allows. */
	snprintf(out, NET_IFNAME_MAX, NET_TRANSIT_PREFIX "%.4s-%u", id, n);
}

static int transit_check(const char *transit, struct kerr **err)
{
	if (!transit || !net_ifname_valid(transit))
		return kerr_set(err, KERR_INVALID, "'%s' is not a transit link's name",
		                transit ? transit : "");
	return 0;
}

int net_vpc_open(const char *pin, int *nsfd, struct kerr **err)
{
	_cleanup_close_ int fd = open(pin, O_RDONLY | O_CLOEXEC);
	struct statfs fs;

	if (fd < 0)
		return kerr_errno(err, errno, "cannot open the VPC namespace '%s'", pin);
	/* kerr_errno makes ENOENT a KERR_NOT_FOUND. */
	if (fstatfs(fd, &fs) < 0)
		return kerr_errno(err, errno, "cannot inspect '%s'", pin);
	if (fs.f_type != NSFS_MAGIC)
		return kerr_set(err, KERR_NOT_FOUND, "'%s' holds no VPC namespace", pin);
	*nsfd = steal_fd(&fd);
	return 0;
}

static int write_sysctl(const char *path, const char *value, struct kerr **err)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || fs_pwrite_full(fd, value, strlen(value), 0) < 0)
		return kerr_errno(err, errno, "cannot set '%s'", path);
	return 0;
}

/* On a thread in the new namespace: the router's settings, then the pin. /proc/sys/net is the
 * namespace of whoever opens it. */
static int vpc_create(void *ctx, struct kerr **err)
{
	static const char *const settings[][2] = {
	    {"/proc/sys/net/ipv4/ip_forward", "1"},
	    {"/proc/sys/net/ipv4/conf/all/send_redirects", "0"},
	    {"/proc/sys/net/ipv4/conf/default/send_redirects", "0"},
	    /* Bridges answer ARP for every address of their subnet: isolated ports reach each other
	     * only through the router. */
	    {"/proc/sys/net/ipv4/conf/default/proxy_arp", "1"},
	    {"/proc/sys/net/ipv4/conf/default/proxy_arp_pvlan", "1"},
	};
	const char *pin = ctx;

	for (size_t i = 0; i < ARRAY_SIZE(settings); i++)
		if (write_sysctl(settings[i][0], settings[i][1], err) < 0)
			return -1;
	if (mount("/proc/thread-self/ns/net", pin, NULL, MS_BIND, NULL) < 0)
		return kerr_errno(err, errno, "cannot pin a VPC namespace at '%s'", pin);
	return 0;
}

/* A VPC's service port: its listening socket, made in the namespace. */
struct listen_job {
	struct net_prefix addr;
	uint16_t port;
	int fd;
};

/* On a thread in the VPC's namespace: the address on lo, the port open in the filter, the
 * socket. The socket stays bound to the namespace it was made in. */
static int vpc_listen(void *ctx, struct kerr **err)
{
	struct listen_job *j = ctx;
	_cleanup_nl_ struct nl nl = {.fd = -1};
	_cleanup_buf_ struct buf script = BUF_INIT;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(j->port)};
	char addr[INET_ADDRSTRLEN];
	struct net_link lo;
	int one = 1, rc;

	inet_ntop(AF_INET, &j->addr.addr, addr, sizeof(addr));
	if (nl_open_kerr(&nl, err) < 0)
		return -1;
	rc = nl_link_get(&nl, "lo", &lo);
	if (rc == 0)
		rc = nl_addr_add(&nl, lo.index, &j->addr);
	if (rc < 0 && rc != -EEXIST)
		return nl_fail(&nl, err, rc, "cannot put the service address on 'lo'");
	buf_addf(&script, "add set ip " NFT_TABLE " " NFT_SERVICES " " SERVICES_TYPE "\n");
	buf_addf(&script, "add element ip " NFT_TABLE " " NFT_SERVICES " { %s . %u }\n", addr,
	         j->port);
	if (nft_run(script.data, NULL, "cannot open the service port", err) < 0)
		return -1;
	sa.sin_addr = j->addr.addr;
	j->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (j->fd < 0)
		return kerr_errno(err, errno, "cannot open a socket");
	if (setsockopt(j->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(j->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(j->fd, 128) < 0) {
		rc = errno;
		close(j->fd);
		j->fd = -1;
		return kerr_errno(err, rc, "cannot listen on port %u", j->port);
	}
	return 0;
}

int net_vpc_listen(const char *pin, const char *addr, uint16_t port, int *fd, struct kerr **err)
{
	struct listen_job j = {.addr.len = 32, .port = port, .fd = -1};
	_cleanup_close_ int nsfd = -1;

	*fd = -1;
	if (net_addr_parse(addr, &j.addr.addr, err) < 0)
		return -1;
	if (net_vpc_open(pin, &nsfd, err) < 0 || net_ns_run(nsfd, vpc_listen, &j, err) < 0)
		return kerr_wrap(err, "cannot serve %s:%u in '%s'", addr, port, pin);
	*fd = j.fd;
	return 0;
}

/* On a thread in the VPC's namespace: lo, the base tables, the range routed nowhere. */
static int vpc_base(void *ctx, struct kerr **err)
{
	const struct net_prefix *cidr = ctx;
	_cleanup_nl_ struct nl nl = {.fd = -1};
	_cleanup_buf_ struct buf script = BUF_INIT;
	int rc;

	if (nl_open_kerr(&nl, err) < 0)
		return -1;
	rc = nl_link_set_up(&nl, "lo");
	if (rc < 0)
		return nl_fail(&nl, err, rc, "cannot bring up 'lo'");
	rc = nl_route_unreachable(&nl, cidr, true);
	if (rc < 0 && rc != -EEXIST)
		return nl_fail(&nl, err, rc, "cannot route the VPC's range nowhere");
	buf_addstr(&script,
	           "add table ip " NFT_TABLE "\n"
	           "add set ip " NFT_TABLE " " NFT_SERVICES " " SERVICES_TYPE "\n"
	           "add map ip " NFT_TABLE " " NFT_GROUPS " { type ifname : verdict; }\n"
	           "add chain ip " NFT_TABLE " forward"
	           " { type filter hook forward priority filter; policy accept; }\n"
	           "flush chain ip " NFT_TABLE " forward\n"
	           "add rule ip " NFT_TABLE " forward ct state established,related accept\n"
	           "add rule ip " NFT_TABLE " forward iifname \"" BR "\" oifname \"" BR "\""
	           " iifname vmap @" NFT_GROUPS "\n"
	           "add rule ip " NFT_TABLE " forward iifname \"" BR "\" oifname \"" BR "\" drop\n"
	           /* Link-local addresses are the router's own: never forwarded to (the transit
	            * link's far end is the host). */
	           "add rule ip " NFT_TABLE " forward iifname \"" BR "\" ip daddr 169.254.0.0/16"
	           " drop\n"
	           "add chain ip " NFT_TABLE " input"
	           " { type filter hook input priority filter; policy accept; }\n"
	           "flush chain ip " NFT_TABLE " input\n"
	           "add rule ip " NFT_TABLE " input ct state established,related accept\n"
	           /* The router: a ping to the gateway, nothing else of it... */
	           "add rule ip " NFT_TABLE " input iifname \"" BR "\" icmp type echo-request"
	           " ip daddr != 169.254.0.0/16 accept\n"
	           /* and the services the daemon serves inside (net_vpc_listen) */
	           "add rule ip " NFT_TABLE " input iifname \"" BR
	           "\" ip daddr . tcp dport @" NFT_SERVICES " accept\n"
	           "add rule ip " NFT_TABLE " input iifname \"" BR "\" drop\n"
	           "add rule ip " NFT_TABLE " input iifname \"" NET_VPC_UPLINK "\" drop\n");
	nft_bridge_ports(&script);
	return nft_run(script.data, NULL, "cannot set up the VPC's filter", err);
}

/* The VPC's end of the transit link: address, up, the default route to the host. */
static int vpc_uplink(void *ctx, struct kerr **err)
{
	_cleanup_nl_ struct nl nl = {.fd = -1};
	struct net_prefix mine = {.len = 32};
	struct in_addr host;
	struct net_link link;
	int rc;

	(void)ctx;
	inet_pton(AF_INET, NET_TRANSIT_VPC, &mine.addr);
	inet_pton(AF_INET, NET_TRANSIT_HOST, &host);
	if (nl_open_kerr(&nl, err) < 0)
		return -1;
	rc = nl_link_get(&nl, NET_VPC_UPLINK, &link);
	if (rc == 0)
		rc = nl_addr_add(&nl, link.index, &mine);
	if (rc == 0)
		rc = nl_link_set_up(&nl, NET_VPC_UPLINK);
	if (rc == 0)
		rc = nl_route_default_onlink(&nl, link.index, host);
	if (rc < 0)
		return nl_fail(&nl, err, rc, "cannot set up the VPC's uplink");
	return 0;
}

int net_vpc_ensure(const char *pin, const char *transit, const char *cidr, struct kerr **err)
{
	_cleanup_nl_ struct nl nl = {.fd = -1};
	_cleanup_close_ int nsfd = -1;
	struct net_prefix range;
	struct net_prefix host = {.len = 32};
	struct net_link link;
	int rc;

	if (transit_check(transit, err) < 0)
		return -1;
	if (net_prefix_parse(cidr, &range, err) < 0)
		return kerr_wrap(err, "cannot set up the VPC of '%s'", transit);
	if (!net_prefix_is_network(&range))
		return kerr_set(err, KERR_INVALID, "cannot set up the VPC of '%s': bad range '%s'",
		                transit, cidr);
	if (net_vpc_open(pin, &nsfd, NULL) < 0) {
		/* Made anew: whatever transit link an earlier namespace had is stale. */
		_cleanup_close_ int fd = open(pin, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

		if (fd < 0)
			return kerr_errno(err, errno, "cannot create the pin '%s'", pin);
		if (net_ns_run(-1, vpc_create, (void *)pin, err) < 0 ||
		    net_vpc_open(pin, &nsfd, err) < 0)
			return kerr_wrap(err, "cannot create the VPC of '%s'", transit);
		net_link_delete(transit, NULL);
	}
	if (net_ns_run(nsfd, vpc_base, &range, err) < 0 || nl_open_kerr(&nl, err) < 0)
		return kerr_wrap(err, "cannot set up the VPC of '%s'", transit);
	rc = nl_link_get(&nl, transit, &link);
	if (rc == -ENODEV) {
		rc = nl_veth_pair(&nl, transit, NET_VPC_UPLINK, nsfd);
		if (rc == 0)
			rc = nl_link_get(&nl, transit, &link);
	}
	inet_pton(AF_INET, NET_TRANSIT_HOST, &host.addr);
	if (rc == 0)
		rc = nl_addr_add(&nl, link.index, &host);
	if (rc == 0)
		rc = nl_link_set_up(&nl, transit);
	if (rc < 0)
		return nl_fail(&nl, err, rc, "cannot set up the transit link '%s'", transit);
	if (net_ns_run(nsfd, vpc_uplink, NULL, err) < 0)
		return kerr_wrap(err, "cannot set up the VPC of '%s'", transit);
	return 0;
}

int net_vpc_delete(const char *pin, const char *transit, struct kerr **err)
{
	if (transit_check(transit, err) < 0 || net_link_delete(transit, err) < 0)
		return -1;
	if (umount2(pin, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		return kerr_errno(err, errno, "cannot unpin the VPC namespace '%s'", pin);
	if (unlink(pin) < 0 && errno != ENOENT)
		return kerr_errno(err, errno, "cannot remove '%s'", pin);
	return 0;
}

static void addr_str(struct in_addr a, char out[INET_ADDRSTRLEN])
{
	inet_ntop(AF_INET, &a, out, INET_ADDRSTRLEN);
}

/* The match of one rule: the peer, then the protocol and its ports or ICMP type and code. */
static void rule_match(struct buf *b, const struct net_sg_rule *r)
{
	const char *dir = r->egress ? "daddr" : "saddr";

	if (r->ref >= 0) {
		buf_addf(b, " ip %s @m%d", dir, r->ref);
	} else if (r->peer.len > 0) {
		char p[32];

		net_prefix_format(&r->peer, p, sizeof(p));
		buf_addf(b, " ip %s %s", dir, p);
	}
	if (r->proto == NET_PROTO_ALL)
		return;
	if (r->proto == 6 || r->proto == 17) {
		const char *l4 = r->proto == 6 ? "tcp" : "udp";

		if (r->from < 0 || (r->from == 0 && r->to >= 65535))
			buf_addf(b, " meta l4proto %s", l4);
		else if (r->from == r->to)
			buf_addf(b, " %s dport %d", l4, r->from);
		else
			buf_addf(b, " %s dport %d-%d", l4, r->from, r->to);
	} else if (r->proto == 1) {
		buf_addstr(b, " meta l4proto icmp");
		if (r->from >= 0)
			buf_addf(b, " icmp type %d", r->from);
		if (r->from >= 0 && r->to >= 0)
			buf_addf(b, " icmp code %d", r->to);
	} else {
		buf_addf(b, " meta l4proto %d", r->proto);
	}
}

static bool policy_valid(const struct net_vpc_policy *p)
{
	for (size_t g = 0; g < p->ngroups; g++)
		for (size_t i = 0; i < p->groups[g].nrules; i++) {
			const struct net_sg_rule *r = &p->groups[g].rules[i];

			if (r->ref >= (int)p->ngroups || r->proto < NET_PROTO_ALL ||
			    r->proto > 255 || r->from < -1 || r->from > 65535 || r->to < -1 ||
			    r->to > 65535 || r->peer.len > 32)
				return false;
		}
	for (size_t m = 0; m < p->nmembers; m++)
		for (size_t i = 0; i < p->members[m].ngroups; i++)
			if (p->members[m].groups[i] >= p->ngroups)
				return false;
	return true;
}

static void policy_script(struct buf *b, const struct net_vpc_policy *p)
{
	const char *t = "ip " POLICY_TABLE;
	char a[INET_ADDRSTRLEN], pub[INET_ADDRSTRLEN];

	/* Whole: the table goes and comes back in the same transaction. */
	buf_addf(b, "add table %s\ndelete table %s\nadd table %s\n", t, t, t);
	buf_addf(b,
	         "add map %s pub { type ipv4_addr : ipv4_addr; }\n"
	         "add map %s priv { type ipv4_addr : ipv4_addr; }\n"
	         "add set %s public { type ipv4_addr; }\n"
	         "add map %s egress { type ipv4_addr : verdict; }\n"
	         "add map %s ingress { type ipv4_addr : verdict; }\n",
	         t, t, t, t, t);
	for (size_t g = 0; g < p->ngroups; g++) {
		buf_addf(b, "add set %s m%zu { type ipv4_addr; }\n", t, g);
		buf_addf(b, "add chain %s g%zui\nadd chain %s g%zuo\n", t, g, t, g);
		for (size_t i = 0; i < p->groups[g].nrules; i++) {
			const struct net_sg_rule *r = &p->groups[g].rules[i];

			buf_addf(b, "add rule %s g%zu%c", t, g, r->egress ? 'o' : 'i');
			rule_match(b, r);
			buf_addstr(b, " accept\n");
		}
	}
	for (size_t m = 0; m < p->nmembers; m++) {
		const struct net_vpc_member *mb = &p->members[m];

		addr_str(mb->addr, a);
		buf_addf(b, "add chain %s e%zu\nadd chain %s i%zu\n", t, m, t, m);
		for (size_t i = 0; i < mb->ngroups; i++) {
			buf_addf(b, "add rule %s e%zu jump g%zuo\n", t, m, mb->groups[i]);
			buf_addf(b, "add rule %s i%zu jump g%zui\n", t, m, mb->groups[i]);
			buf_addf(b, "add element %s m%zu { %s }\n", t, mb->groups[i], a);
		}
		buf_addf(b, "add rule %s e%zu drop\nadd rule %s i%zu drop\n", t, m, t, m);
		buf_addf(b, "add element %s egress { %s : jump e%zu }\n", t, a, m);
		buf_addf(b, "add element %s ingress { %s : jump i%zu }\n", t, a, m);
		if (mb->has_pub) {
			addr_str(mb->pub, pub);
			buf_addf(b, "add element %s pub { %s : %s }\n", t, pub, a);
			buf_addf(b, "add element %s priv { %s : %s }\n", t, a, pub);
			buf_addf(b, "add element %s public { %s }\n", t, a);
		}
	}
	buf_addf(b,
	         "add chain %s prerouting { type nat hook prerouting priority dstnat; }\n"
	         "add rule %s prerouting iifname \"" NET_VPC_UPLINK "\" dnat to ip daddr map @pub\n"
	         "add chain %s postrouting { type nat hook postrouting priority srcnat; }\n"
	         "add rule %s postrouting oifname \"" NET_VPC_UPLINK
	         "\" snat to ip saddr map @priv\n",
	         t, t, t, t);
	/* Two base chains of the forward hook: an accept ends only its own chain, so a packet
	 * between two members passes the sender's egress rules, then the receiver's ingress. */
	buf_addf(b,
	         "add chain %s egress { type filter hook forward priority -10; policy accept; }\n"
	         "add rule %s egress ct state established,related accept\n"
	         "add rule %s egress ct state invalid drop\n"
	         "add rule %s egress iifname \"" BR "\" oifname \"" NET_VPC_UPLINK "\""
	         " ip saddr != @public drop\n"
	         "add rule %s egress iifname \"" BR "\" ip saddr vmap @egress\n"
	         "add rule %s egress iifname \"" BR "\" drop\n"
	         "add chain %s ingress { type filter hook forward priority -5; policy accept; }\n"
	         "add rule %s ingress ct state established,related accept\n"
	         "add rule %s ingress ct state invalid drop\n"
	         "add rule %s ingress oifname \"" BR "\" ip daddr vmap @ingress\n"
	         "add rule %s ingress oifname \"" BR "\" drop\n",
	         t, t, t, t, t, t, t, t, t, t, t);
}

static int policy_write(void *ctx, struct kerr **err)
{
	return nft_run(ctx, NULL, "cannot write the VPC's security groups", err);
}

/* The host's /32 routes through the transit link: one per public address, no others. */
static int public_routes(const char *transit, const struct net_vpc_policy *p, struct kerr **err)
{
	_cleanup_nl_ struct nl nl = {.fd = -1};
	_cleanup_free_ struct in_addr *have = NULL;
	struct in_addr gw;
	struct net_link link;
	size_t nhave = 0;
	int rc;

	inet_pton(AF_INET, NET_TRANSIT_VPC, &gw);
	if (nl_open_kerr(&nl, err) < 0)
		return -1;
	rc = nl_link_get(&nl, transit, &link);
	if (rc == 0)
		rc = nl_routes_through(&nl, link.index, &have, &nhave);
	if (rc < 0)
		return nl_fail(&nl, err, rc, "cannot read the routes of '%s'", transit);
	for (size_t m = 0; m < p->nmembers; m++) {
		if (!p->members[m].has_pub)
			continue;
		rc = nl_route_via(&nl, p->members[m].pub, gw, link.index, true);
		if (rc < 0)
			return nl_fail(&nl, err, rc, "cannot route a public address to '%s'",
			               transit);
	}
	for (size_t i = 0; i < nhave; i++) {
		bool keep = false;

		for (size_t m = 0; m < p->nmembers && !keep; m++)
			keep = p->members[m].has_pub && p->members[m].pub.s_addr == have[i].s_addr;
		rc = keep ? 0 : nl_route_via(&nl, have[i], gw, link.index, false);
		if (rc < 0 && rc != -ESRCH)
			return nl_fail(&nl, err, rc, "cannot remove a public route from '%s'",
			               transit);
	}
	return 0;
}

int net_vpc_policy_set(const char *pin, const char *transit, const struct net_vpc_policy *policy,
                       struct kerr **err)
{
	_cleanup_buf_ struct buf script = BUF_INIT;
	_cleanup_close_ int nsfd = -1;

	if (transit_check(transit, err) < 0)
		return -1;
	if (!policy_valid(policy))
		return kerr_set(err, KERR_INVALID,
		                "cannot write the policy of the VPC of '%s': malformed", transit);
	if (net_vpc_open(pin, &nsfd, err) < 0)
		return -1;
	policy_script(&script, policy);
	if (net_ns_run(nsfd, policy_write, script.data, err) < 0)
		return kerr_wrap(err, "the VPC of '%s'", transit);
	return public_routes(transit, policy, err);
}

struct port_job {
	const struct net_instance *ni;
	pid_t pid;
	const char *peer_if;
	bool attach;
};

/* On a thread in the VPC's namespace: the host side of the port, as for a bridge of the host's,
 * then isolated; or all of it undone. */
static int port_job(void *ctx, struct kerr **err)
{
	const struct port_job *j = ctx;
	uint8_t mac[NET_MAC_LEN];

	char path[96];

	if (!j->attach)
		return net_instance_detach(j->ni, err);
	/* The bridge's proxy ARP answers at once: it would otherwise wait up to 0.8 s, on both
	 * ends of a first connection (a new namespace has no neigh/default to set once). */
	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/neigh/%s/proxy_delay", j->ni->bridge);
	if (net_instance_attach(j->ni, mac, err) < 0 || write_sysctl(path, "0", err) < 0 ||
	    net_veth_create(j->ni->host_if, j->ni->bridge, j->pid, j->peer_if, mac, err) < 0 ||
	    net_port_isolate(j->ni->host_if, err) < 0)
		return -1;
	return 0;
}

int net_vpc_port_attach(const char *pin, const struct net_instance *ni, pid_t pid,
                        const char *peer_if, struct kerr **err)
{
	struct port_job j = {.ni = ni, .pid = pid, .peer_if = peer_if, .attach = true};
	_cleanup_close_ int nsfd = -1;

	if (net_vpc_open(pin, &nsfd, err) < 0 || net_ns_run(nsfd, port_job, &j, err) < 0)
		return -1;
	/* The instance's end, from its own namespace. */
	if (net_ns_configure(pid, peer_if, ni->address, ni->gateway, err) < 0) {
		j.attach = false;
		net_ns_run(nsfd, port_job, &j, NULL);
		return -1;
	}
	return 0;
}

int net_vpc_port_detach(const char *pin, const struct net_instance *ni, struct kerr **err)
{
	struct port_job j = {.ni = ni};
	_cleanup_close_ int nsfd = -1;
	struct kerr *why = NULL;

	if (net_vpc_open(pin, &nsfd, &why) < 0) {
		/* No VPC: nothing of the port is left either. */
		if (why->kind == KERR_NOT_FOUND) {
			kerr_free(why);
			return 0;
		}
		return kerr_pass(err, why);
	}
	return net_ns_run(nsfd, port_job, &j, err);
}
