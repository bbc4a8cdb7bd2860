/* The host's side of instances' traffic: IPv4 forwarding, and the nftables tables `ip kiln`
 * (NAT, what may be forwarded from and to kiln's bridges, nothing from them to the host) and
 * `bridge kiln` (anti-spoofing on instance ports), written through libnftables, each change one
 * atomic script. */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <nftables/libnftables.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define IP_FORWARD    "/proc/sys/net/ipv4/ip_forward"
#define RESOLV_CONF   "/etc/resolv.conf"
#define RESOLVERS_MAX 8
#define BR            NET_BRIDGE_PREFIX "*"
#define PORT          NET_PORT_PREFIX "*"

static int read_flag(int fd, char *c)
{
	ssize_t n = fs_pread_full(fd, c, 1, 0);

	return n == 1 ? 0 : -1;
}

int net_forwarding_enable(struct kerr **err)
{
	_cleanup_close_ int fd = open(IP_FORWARD, O_RDWR | O_CLOEXEC);
	char cur = 0;

	if (fd < 0)
		return kerr_errno(err, errno, "cannot enable ip forwarding '%s'", IP_FORWARD);
	if (read_flag(fd, &cur) == 0 && cur == '1')
		return 0; /* already on: works where /proc/sys is read-only too */
	/* At offset 0: the kernel ignores sysctl writes anywhere else. */
	if (fs_pwrite_full(fd, "1\n", 2, 0) < 0)
		return kerr_errno(err, errno, "cannot enable ip forwarding '%s'", IP_FORWARD);
	if (read_flag(fd, &cur) < 0 || cur != '1')
		return kerr_set(err, KERR_IO, "cannot enable ip forwarding '%s': it stays off",
		                IP_FORWARD);
	return 0;
}

static void nft_ctx_freep(struct nft_ctx **ctx)
{
	if (*ctx)
		nft_ctx_free(*ctx);
}

/* libnftables waits for the kernel's answer with select(), which aborts the process when the
 * context's netlink socket is past FD_SETSIZE (1024), and a daemon serving many clients and
 * instances can have that many descriptors open (bench/load with 32 clients did abort). So each
 * script runs on a thread of its own with a descriptor table of its own (unshare(CLONE_FILES)),
 * emptied but for 0-2: its sockets are the lowest numbers there, whatever the rest of the
 * process holds, and die with the thread. A new thread is in its creator's network namespace,
 * so the script acts where the caller is (a VPC's filter is written from inside its namespace).
 * Scripts run one at a time: libnftables keeps process-wide state (its interface cache) that
 * two threads would share unguarded. */
static pthread_mutex_t nft_lock = PTHREAD_MUTEX_INITIALIZER;

struct nft_job {
	const char *script, *what;
	char **out;
	struct kerr *err;
	int r;
};

static int nft_job_run(struct nft_job *j)
{
	__attribute__((cleanup(nft_ctx_freep))) struct nft_ctx *nft = NULL;
	const char *msg, *eol;
	enum kerr_kind kind = KERR_IO;
	size_t n;

	if (unshare(CLONE_FILES) < 0)
		return kerr_errno(&j->err, errno, "%s: cannot separate the descriptor table",
		                  j->what);
	if (syscall(SYS_close_range, 3, ~0U, 0) < 0)
		return kerr_errno(&j->err, errno, "%s: cannot close descriptors", j->what);
	nft = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!nft)
		return kerr_set(&j->err, KERR_INTERNAL, "%s: cannot create an nftables context",
		                j->what);
	if (nft_ctx_buffer_output(nft) != 0 || nft_ctx_buffer_error(nft) != 0)
		return kerr_set(&j->err, KERR_INTERNAL, "%s: cannot buffer nftables output",
		                j->what);
	if (nft_run_cmd_from_buffer(nft, j->script) != 0) {
		msg = nft_ctx_get_error_buffer(nft);
		msg = msg ? msg : "";
		if (!strncmp(msg, "Error: ", 7))
			msg += 7;
		eol = strchr(msg, '\n');
		n = eol ? (size_t)(eol - msg) : strlen(msg);
		if (n > 400)
			n = 400;
		if (strstr(msg, "Operation not permitted"))
			kind = KERR_AUTH;
		else if (strstr(msg, "No such file or directory"))
			kind = KERR_NOT_FOUND;
		return kerr_set(&j->err, kind, "%s: %.*s", j->what, (int)n,
		                n ? msg : "nftables failed");
	}
	if (j->out) {
		msg = nft_ctx_get_output_buffer(nft);
		*j->out = xstrdup(msg ? msg : "");
	}
	return 0;
}

static void *nft_thread(void *arg)
{
	struct nft_job *j = arg;

	j->r = nft_job_run(j);
	return NULL;
}

int nft_run(const char *script, char **out, const char *what, struct kerr **err)
{
	struct nft_job j = {.script = script, .what = what, .out = out, .r = -1};
	pthread_t t;
	int rc;

	pthread_mutex_lock(&nft_lock);
	rc = pthread_create(&t, NULL, nft_thread, &j);
	if (rc == 0)
		pthread_join(t, NULL);
	pthread_mutex_unlock(&nft_lock);
	if (rc != 0)
		return kerr_errno(err, rc, "%s: cannot start a thread", what);
	return j.r < 0 ? kerr_pass(err, j.err) : 0;
}

/* The IPv4 name servers of the host's resolv.conf but loopback ones, as "a.b.c.d, …" (empty
 * when none): instances share the host's resolver (src/runtime/boot.c), through the NAT. */
static void resolvers(struct buf *out)
{
	_cleanup_free_ uint8_t *conf = NULL;
	char *line, *save = NULL;
	size_t len, n = 0;

	if (fs_read_file(AT_FDCWD, RESOLV_CONF, 65536, &conf, &len, NULL) < 0)
		return;
	for (line = strtok_r((char *)conf, "\n", &save); line && n < RESOLVERS_MAX;
	     line = strtok_r(NULL, "\n", &save)) {
		char word[16], addr[INET_ADDRSTRLEN];
		struct in_addr a;

		if (sscanf(line, " %15s %15s", word, addr) != 2 || strcmp(word, "nameserver") ||
		    inet_pton(AF_INET, addr, &a) != 1 || (ntohl(a.s_addr) >> 24) == 127)
			continue;
		/* Re-printed: nothing raw reaches nft. */
		inet_ntop(AF_INET, &a, addr, sizeof(addr));
		buf_addf(out, "%s%s", n++ ? ", " : "", addr);
	}
}

/* "169.254.0.0/16, 192.0.2.0/24, …": where instances' traffic may never go: the link-local
 * range (a cloud's metadata service) and the networks of the host's own addresses. */
static int forbidden(struct buf *out, struct kerr **err)
{
	_cleanup_nl_ struct nl nl = {.fd = -1};
	_cleanup_free_ struct net_prefix *v = NULL;
	size_t n;
	int rc;

	if (nl_open_kerr(&nl, err) < 0)
		return -1;
	rc = nl_host_networks(&nl, &v, &n);
	if (rc < 0)
		return nl_fail(&nl, err, rc, "cannot list the host's addresses");
	/* Merged (a host address may be link-local): the rule says each network once. */
	v = xreallocarray(v, n + 1, sizeof(*v));
	v[n++] = (struct net_prefix){.addr.s_addr = htonl(0xa9fe0000), .len = 16};
	n = net_prefixes_merge(v, n);
	for (size_t i = 0; i < n; i++) {
		char p[32];

		net_prefix_format(&v[i], p, sizeof(p));
		buf_addf(out, "%s%s", i ? ", " : "", p);
	}
	return 0;
}

void nft_bridge_ports(struct buf *script)
{
	buf_addstr(script,
	           "add table bridge " NFT_TABLE "\n"
	           "add set bridge " NFT_TABLE " " NFT_PORTS
	           " { type ifname . ether_addr . ipv4_addr; }\n"
	           "add chain bridge " NFT_TABLE " prerouting"
	           " { type filter hook prerouting priority filter; policy accept; }\n"
	           "flush chain bridge " NFT_TABLE " prerouting\n"
	           "add rule bridge " NFT_TABLE " prerouting iifname != \"" PORT "\" accept\n"
	           /* ARP: the frame's and ARP's sender MAC, both the port's, and its address. */
	           "add rule bridge " NFT_TABLE " prerouting ether type arp"
	           " iifname . ether saddr . arp saddr ip @" NFT_PORTS
	           " iifname . arp saddr ether . arp saddr ip @" NFT_PORTS " accept\n"
	           "add rule bridge " NFT_TABLE " prerouting ether type ip"
	           " iifname . ether saddr . ip saddr @" NFT_PORTS " accept\n"
	           /* Anything else from an instance port: other addresses, IPv6, the rest. */
	           "add rule bridge " NFT_TABLE " prerouting drop\n");
}

/* The names of host_id's tables and links (net.h): "kiln" and "kb-*" for NULL. */
struct host_names {
	char table[NET_HOST_TABLE_MAX];
	char links[NET_IFNAME_MAX + 1]; /* an nft wildcard: "kb-*", "kt1a2b-*" */
};

static int host_names(const char *host_id, struct host_names *h, struct kerr **err)
{
	if (!host_id) {
		str_copy(h->table, NFT_TABLE, sizeof(h->table));
		str_copy(h->links, BR, sizeof(h->links));
		return 0;
	}
	if (!net_host_id_valid(host_id))
		return kerr_set(err, KERR_INVALID, "'%s' is not a host id", host_id);
	snprintf(h->table, sizeof(h->table), NFT_TABLE "_%s", host_id);
	snprintf(h->links, sizeof(h->links), NET_TRANSIT_PREFIX "%s-*", host_id);
	return 0;
}

int net_firewall_set(const char *host_id, const char *vpc_cidr, bool nat, struct kerr **err)
{
	_cleanup_buf_ struct buf script = BUF_INIT, dns = BUF_INIT, never = BUF_INIT;
	char what[128], cidr[32];
	struct host_names h;
	const char *t, *l;
	struct net_prefix p;

	snprintf(what, sizeof(what), "cannot set up the host's filter for '%.64s'", vpc_cidr);
	if (host_names(host_id, &h, err) < 0 || net_prefix_parse(vpc_cidr, &p, err) < 0)
		return kerr_wrap(err, "%s", what);
	if (!net_prefix_is_network(&p) || p.len == 0)
		return kerr_set(err, KERR_INVALID, "%s: not a network prefix", what);
	/* Re-printed from the parsed value: nothing from the caller reaches the script as is. */
	net_prefix_format(&p, cidr, sizeof(cidr));
	if (forbidden(&never, err) < 0)
		return kerr_wrap(err, "%s", what);
	resolvers(&dns);
	t = h.table;
	l = h.links;

	/* "add" leaves what exists (the set's elements, the groups' chains and the map that leads
	 * to them: the state of running instances); each hook's chain is flushed and written anew
	 * in the same transaction, so no packet sees it half done. */
	buf_addf(&script,
	         "add table ip %s\n"
	         "add map ip %s " NFT_GROUPS " { type ifname : verdict; }\n"
	         "add chain ip %s postrouting"
	         " { type nat hook postrouting priority srcnat; policy accept; }\n"
	         "flush chain ip %s postrouting\n",
	         t, t, t, t);
	if (nat)
		buf_addf(&script,
		         "add rule ip %s postrouting"
		         " ip saddr %s ip daddr != %s masquerade\n",
		         t, cidr, cidr);
	buf_addf(&script,
	         "add chain ip %s forward"
	         " { type filter hook forward priority filter; policy accept; }\n"
	         "flush chain ip %s forward\n"
	         "add rule ip %s forward ct state established,related accept\n"
	         /* Between bridges: within a group (its chain accepts), else nothing. */
	         "add rule ip %s forward iifname \"%s\" oifname \"%s\""
	         " iifname vmap @" NFT_GROUPS "\n"
	         "add rule ip %s forward iifname \"%s\" oifname \"%s\" drop\n",
	         t, t, t, t, l, l, t, l, l);
	if (dns.len)
		buf_addf(&script,
		         "add rule ip %s forward iifname \"%s\" ip daddr { %s }"
		         " meta l4proto { tcp, udp } th dport 53 accept\n",
		         t, l, dns.data);
	buf_addf(&script,
	         "add rule ip %s forward iifname \"%s\" ip daddr { %s } drop\n"
	         /* Instances' own connections out (masqueraded), unless NAT is off. */
	         "add rule ip %s forward iifname \"%s\" %s\n"
	         /* Like EC2 private addresses: nothing outside the host opens a connection in. */
	         "add rule ip %s forward oifname \"%s\" drop\n"
	         "add chain ip %s input"
	         " { type filter hook input priority filter; policy accept; }\n"
	         "flush chain ip %s input\n"
	         /* Replies to what the host opened (ssh to an instance), and nothing else. */
	         "add rule ip %s input iifname \"%s\" ct state established,related"
	         " accept\n"
	         "add rule ip %s input iifname \"%s\" drop\n",
	         t, l, never.data, t, l, nat ? "accept" : "drop", t, l, t, t, t, l, t, l);
	/* Instance ports on the host's own bridges are the runtime's alone (kiln host up). */
	if (!host_id)
		nft_bridge_ports(&script);
	return nft_run(script.data, NULL, what, err);
}

int net_firewall_delete(const char *host_id, struct kerr **err)
{
	_cleanup_buf_ struct buf script = BUF_INIT;
	struct host_names h;

	if (host_names(host_id, &h, err) < 0)
		return -1;
	/* "add" then "delete" makes the delete succeed whether or not the table was there. */
	buf_addf(&script, "add table ip %s\ndelete table ip %s\n", h.table, h.table);
	if (!host_id)
		buf_addstr(&script,
		           "add table bridge " NFT_TABLE "\ndelete table bridge " NFT_TABLE "\n");
	return nft_run(script.data, NULL, "cannot delete the host's filter", err);
}

static bool has_line(const char *text, const char *want)
{
	size_t n = strlen(want);
	const char *l = text;

	while (l && *l) {
		const char *eol = strchr(l, '\n');
		size_t len = eol ? (size_t)(eol - l) : strlen(l);

		if (len == n && !memcmp(l, want, n))
			return true;
		l = eol ? eol + 1 : NULL;
	}
	return false;
}

int net_firewall_dump(const char *host_id, char **ruleset, struct kerr **err)
{
	static const char *const families[] = {"ip", "bridge"};
	_cleanup_free_ char *tables = NULL;
	_cleanup_buf_ struct buf all = BUF_INIT;
	struct host_names h;

	*ruleset = NULL;
	if (host_names(host_id, &h, err) < 0)
		return -1;
	if (nft_run("list tables", &tables, "cannot list nftables tables", err) < 0)
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(families); i++) {
		_cleanup_free_ char *one = NULL;
		char want[64], cmd[64];

		snprintf(want, sizeof(want), "table %s %s", families[i], h.table);
		if (!has_line(tables, want))
			continue;
		snprintf(cmd, sizeof(cmd), "list table %s %s", families[i], h.table);
		if (nft_run(cmd, &one, "cannot list kiln's nftables tables", err) < 0)
			return -1;
		buf_addstr(&all, one);
	}
	if (all.len)
		*ruleset = buf_detach(&all);
	return 0;
}
