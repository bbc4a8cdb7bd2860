/* Unit tests of src/net. The process leaves the host's network namespace before the first test
 * and every test starts in a fresh namespace of its own, so nothing here touches the host's
 * links, routes or nftables, and a failing test leaves nothing behind: a namespace and all its
 * links go when its last process does. "Instances" are forked children in namespaces of their
 * own, killed in each test's teardown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/internal.h" /* nl_route_default, to give the test's host a default route */
#include "net/net.h"
#include "util/kerr.h"

#define VPC           "172.31.0.0/16"
#define BRIDGE        "kb-test"
#define GW_CIDR       "172.31.0.1/20"
#define GW            "172.31.0.1"
#define INST_CIDR     "172.31.0.10/20"
#define INST_ADDR     "172.31.0.10"
#define INST_PORT     7777
#define MAX_INSTANCES 6

static struct stat host_netns;
static struct {
	pid_t pid;
	int ctl; /* closing it tells the instance to exit */
} instances[MAX_INSTANCES];
static int n_instances;

/* Fail with the error's message when call (which takes &err) fails. */
#define OK(call)                                                                                   \
	do {                                                                                       \
		if ((call) < 0)                                                                    \
			fail_msg("%s: %s", #call, err ? err->msg : "(no error set)");              \
	} while (0)

/* The call must fail with kind; its message is left in err for the test to look at. */
#define FAILS(call, want_kind)                                                                     \
	do {                                                                                       \
		kerr_free(err);                                                                    \
		err = NULL;                                                                        \
		assert_int_equal((call), -1);                                                      \
		assert_non_null(err);                                                              \
		if (err->kind != (want_kind))                                                      \
			fail_msg("%s: kind %s, wanted %s: %s", #call, kerr_kind_name(err->kind),   \
			         kerr_kind_name(want_kind), err->msg);                             \
	} while (0)

static bool in_host_netns(void)
{
	struct stat st;

	if (stat("/proc/self/ns/net", &st) < 0)
		return true; /* cannot tell: assume the worst */
	return st.st_dev == host_netns.st_dev && st.st_ino == host_netns.st_ino;
}

static int fresh_netns(void **state)
{
	struct kerr *err = NULL;

	(void)state;
	if (unshare(CLONE_NEWNET) < 0 || in_host_netns())
		return -1;
	if (net_link_set_up("lo", &err) < 0) {
		fprintf(stderr, "setup: %s\n", err->msg);
		kerr_free(err);
		return -1;
	}
	return 0;
}

static int stop_instances(void **state)
{
	(void)state;
	for (int i = 0; i < n_instances; i++) {
		kill(instances[i].pid, SIGKILL);
		close(instances[i].ctl);
		waitpid(instances[i].pid, NULL, 0);
	}
	n_instances = 0;
	return 0;
}

/* A child in a network namespace of its own that answers "ok" to every TCP connection on port,
 * whatever address it will get. */
static pid_t instance_start(uint16_t port)
{
	int ready[2], ctl[2];
	char b;
	pid_t pid;

	assert_true(n_instances < MAX_INSTANCES);
	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	assert_int_equal(pipe2(ctl, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
		int one = 1, lfd;

		close(ready[0]);
		close(ctl[1]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(120); /* never outlive a stuck test */
		if (unshare(CLONE_NEWNET) < 0)
			_exit(2);
		lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4) < 0)
			_exit(3);
		if (write(ready[1], "r", 1) != 1)
			_exit(4);
		for (;;) {
			struct pollfd p[2] = {{.fd = lfd, .events = POLLIN},
			                      {.fd = ctl[0], .events = POLLIN}};
			int c;

			if (poll(p, 2, -1) < 0)
				continue;
			if (p[1].revents)
				_exit(0);
			if (p[0].revents & POLLIN) {
				c = accept(lfd, NULL, NULL);
				if (c >= 0) {
					if (write(c, "ok", 2) != 2)
						_exit(5);
					close(c);
				}
			}
		}
	}
	close(ready[1]);
	close(ctl[0]);
	instances[n_instances].pid = pid;
	instances[n_instances].ctl = ctl[1];
	n_instances++;
	assert_int_equal(read(ready[0], &b, 1), 1);
	close(ready[0]);
	return pid;
}

/* Connect to addr:port (inside our private namespaces only) and read what it says. */
static int tcp_probe(const char *addr, uint16_t port, char *got, size_t size)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct pollfd p;
	int fd, soerr = 0;
	socklen_t len = sizeof(soerr);
	ssize_t n;

	if (in_host_netns() || inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
		goto fail;
	p = (struct pollfd){.fd = fd, .events = POLLOUT};
	if (poll(&p, 1, 5000) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 ||
	    soerr)
		goto fail;
	p = (struct pollfd){.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 5000) != 1)
		goto fail;
	n = read(fd, got, size - 1);
	if (n < 0)
		goto fail;
	got[n] = '\0';
	close(fd);
	return 0;
fail:
	close(fd);
	return -1;
}

static void test_parse(void **state)
{
	static const char *const bad_prefixes[] = {"172.31.0.1",
	                                           "172.31.0.1/",
	                                           "172.31.0.1/33",
	                                           "172.31.0.1/020",
	                                           "172.31.0.1/ 2",
	                                           "172.31.1/20",
	                                           "172.31.0.01/20",
	                                           "a.b.c.d/1",
	                                           "/20",
	                                           "172.31.0.1/20/1",
	                                           "172.31.0.1/-1",
	                                           "172.31.0.1/100",
	                                           " 172.31.0.1/20",
	                                           "",
	                                           "172.31.0.0/16; flush ruleset"};
	static const char *const bad_macs[] = {
	    "01:00:5e:00:00:01", "00:00:00:00:00:00",  "02:ab:cd:00:11",   "02-ab-cd-00-11-22",
	    "02:ab:cd:00:11:2g", "02:ab:cd:00:11:223", "ff:ff:ff:ff:ff:ff"};
	struct kerr *err = NULL;
	struct net_prefix p;
	struct in_addr a;
	uint8_t mac[NET_MAC_LEN];
	char text[128];

	(void)state;
	OK(net_prefix_parse(GW_CIDR, &p, &err));
	assert_int_equal(p.len, 20);
	assert_int_equal(ntohl(p.addr.s_addr), 0xac1f0001);
	assert_false(net_prefix_is_network(&p));
	OK(net_prefix_parse(VPC, &p, &err));
	assert_true(net_prefix_is_network(&p));
	OK(net_addr_parse("172.31.255.255", &a, &err));
	assert_true(net_prefix_contains(&p, a));
	OK(net_addr_parse("172.32.0.1", &a, &err));
	assert_false(net_prefix_contains(&p, a));
	net_prefix_format(&p, text, sizeof(text));
	assert_string_equal(text, VPC);
	OK(net_prefix_parse("0.0.0.0/0", &p, &err));
	assert_true(net_prefix_is_network(&p));
	assert_true(net_prefix_contains(&p, a));
	for (size_t i = 0; i < sizeof(bad_prefixes) / sizeof(bad_prefixes[0]); i++) {
		FAILS(net_prefix_parse(bad_prefixes[i], &p, &err), KERR_INVALID);
		snprintf(text, sizeof(text), "invalid ipv4 prefix '%s'", bad_prefixes[i]);
		assert_string_equal(err->msg, text);
	}
	FAILS(net_addr_parse("172.31.0.1/20", &a, &err), KERR_INVALID);

	OK(net_mac_parse("02:AB:cd:00:11:22", mac, &err));
	net_mac_format(mac, text);
	assert_string_equal(text, "02:ab:cd:00:11:22");
	for (size_t i = 0; i < sizeof(bad_macs) / sizeof(bad_macs[0]); i++)
		FAILS(net_mac_parse(bad_macs[i], mac, &err), KERR_INVALID);

	assert_true(net_ifname_valid("kb-use1a"));
	assert_true(net_ifname_valid("012345678901234"));
	assert_false(net_ifname_valid("0123456789abcdef"));
	assert_false(net_ifname_valid(""));
	assert_false(net_ifname_valid("a/b"));
	assert_false(net_ifname_valid("a b"));
	assert_false(net_ifname_valid("a:b"));
	assert_false(net_ifname_valid("."));
	assert_false(net_ifname_valid(".."));
	kerr_free(err);
}

static void test_bridge_group(void **state)
{
	static const char *const bad[] = {"kb-1",   "kb--0",           "kb-1-",       "kb-1-0-2",
	                                  "kv-1-0", "kb-1 -0",         "kb-1-0\"*\"", "kb-a/b-0",
	                                  "",       "kb-12345678901-0"};
	char group[NET_IFNAME_MAX];

	(void)state;
	assert_true(net_bridge_group("kb-1-0", group, sizeof(group)));
	assert_string_equal(group, "kb-1-");
	assert_true(net_bridge_group("kb-12345-15", group, sizeof(group)));
	assert_string_equal(group, "kb-12345-");
	assert_true(net_bridge_group("kb-test-a", group, sizeof(group)));
	assert_string_equal(group, "kb-test-");
	assert_false(net_bridge_group("kb-1-0", group, 5)); /* "kb-1-" and its NUL need 6 */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (net_bridge_group(bad[i], group, sizeof(group)))
			fail_msg("'%s' taken as a bridge of a group", bad[i]);
}

static void test_prefixes_merge(void **state)
{
	static const char *const in[] = {"192.0.2.0/24", "10.1.0.0/16", "10.0.0.0/8",
	                                 "192.0.2.0/24", "10.2.3.0/24", "127.0.0.0/8",
	                                 "192.0.3.0/24", "10.0.0.0/8"};
	static const char *const want[] = {"10.0.0.0/8", "127.0.0.0/8", "192.0.2.0/24",
	                                   "192.0.3.0/24"};
	struct net_prefix p[sizeof(in) / sizeof(in[0])];
	struct kerr *err = NULL;
	char text[32];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		OK(net_prefix_parse(in[i], &p[i], &err));
	n = net_prefixes_merge(p, sizeof(in) / sizeof(in[0]));
	assert_int_equal(n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < n; i++) {
		net_prefix_format(&p[i], text, sizeof(text));
		assert_string_equal(text, want[i]);
	}
	assert_int_equal(net_prefixes_merge(p, 0), 0);
	kerr_free(err);
}

static void test_bridge(void **state)
{
	struct kerr *err = NULL;
	struct net_link link, again;
	bool exists;

	(void)state;
	assert_false(in_host_netns());
	OK(net_bridge_ensure(BRIDGE, GW_CIDR, &err));
	OK(net_link_get(BRIDGE, &link, &err));
	assert_string_equal(link.kind, "bridge");
	assert_true(link.flags & IFF_UP);
	assert_int_equal(link.mac[0] & 0x03, 0x02); /* locally administered, unicast */
	OK(net_addr_exists(BRIDGE, GW_CIDR, &exists, &err));
	assert_true(exists);
	OK(net_addr_exists(BRIDGE, "172.31.0.2/20", &exists, &err));
	assert_false(exists);
	OK(net_addr_exists(BRIDGE, "172.31.0.1/16", &exists, &err));
	assert_false(exists);

	/* Idempotent: same link, same address, nothing new. */
	OK(net_bridge_ensure(BRIDGE, GW_CIDR, &err));
	OK(net_link_get(BRIDGE, &again, &err));
	assert_int_equal(again.index, link.index);
	OK(net_addr_exists(BRIDGE, GW_CIDR, &exists, &err));
	assert_true(exists);

	/* Recreated, it gets the same MAC: instances keep their ARP entry for the gateway. */
	OK(net_link_delete(BRIDGE, &err));
	OK(net_bridge_ensure(BRIDGE, GW_CIDR, &err));
	OK(net_link_get(BRIDGE, &again, &err));
	assert_int_not_equal(again.index, link.index);
	assert_memory_equal(again.mac, link.mac, NET_MAC_LEN);

	FAILS(net_bridge_ensure("lo", GW_CIDR, &err), KERR_CONFLICT);
	assert_string_equal(err->msg,
	                    "cannot create bridge 'lo': a link of kind 'device' has that name");
	FAILS(net_bridge_ensure("kb-x", "172.31.0.0/20", &err), KERR_INVALID);
	FAILS(net_bridge_ensure("kb-x", "172.31.0.1", &err), KERR_INVALID);
	assert_string_equal(err->msg,
	                    "cannot create bridge 'kb-x': invalid ipv4 prefix '172.31.0.1'");
	OK(net_link_exists("kb-x", &exists, &err));
	assert_false(exists);
	FAILS(net_bridge_ensure("kb-name-much-too-long", GW_CIDR, &err), KERR_INVALID);
	kerr_free(err);
}

static void test_link_delete(void **state)
{
	struct kerr *err = NULL;
	struct net_link link;
	bool exists = true;

	(void)state;
	assert_false(in_host_netns());
	OK(net_link_exists("kb-none", &exists, &err));
	assert_false(exists);
	OK(net_link_delete("kb-none", &err));
	FAILS(net_link_get("kb-none", &link, &err), KERR_NOT_FOUND);
	assert_string_equal(err->msg, "cannot look up link 'kb-none': No such device");
	FAILS(net_link_set_up("kb-none", &err), KERR_NOT_FOUND);

	OK(net_bridge_ensure(BRIDGE, GW_CIDR, &err));
	OK(net_link_exists(BRIDGE, &exists, &err));
	assert_true(exists);
	OK(net_link_delete(BRIDGE, &err));
	OK(net_link_exists(BRIDGE, &exists, &err));
	assert_false(exists);
	OK(net_link_delete(BRIDGE, &err));
	FAILS(net_link_delete("bad/name", &err), KERR_INVALID);
	kerr_free(err);
}

static void test_route_unreachable(void **state)
{
	struct kerr *err = NULL;
	struct net_route route;
	struct net_link link;
	bool exists = true;

	(void)state;
	assert_false(in_host_netns());
	OK(net_route_get(VPC, &route, &exists, &err));
	assert_false(exists);
	OK(net_route_unreachable(VPC, true, &err));
	OK(net_route_unreachable(VPC, true, &err));
	OK(net_route_get(VPC, &route, &exists, &err));
	assert_true(exists);
	assert_int_equal(route.type, RTN_UNREACHABLE);
	assert_false(route.has_gateway);

	/* A zone's bridge routes its subnet past the unreachable range. */
	OK(net_bridge_ensure(BRIDGE, GW_CIDR, &err));
	OK(net_link_get(BRIDGE, &link, &err));
	OK(net_route_get("172.31.0.0/20", &route, &exists, &err));
	assert_true(exists);
	assert_int_equal(route.type, RTN_UNICAST);
	assert_int_equal(route.oif, link.index);

	OK(net_route_unreachable(VPC, false, &err));
	OK(net_route_get(VPC, &route, &exists, &err));
	assert_false(exists);
	OK(net_route_unreachable(VPC, false, &err));

	/* Never replaced or deleted: a route for the same range that is not ours. */
	OK(net_bridge_ensure("kb-other", "10.99.0.1/16", &err));
	FAILS(net_route_unreachable("10.99.0.0/16", true, &err), KERR_CONFLICT);
	assert_string_equal(
	    err->msg, "cannot add unreachable route '10.99.0.0/16': another route for it exists");
	OK(net_route_unreachable("10.99.0.0/16", false, &err));
	OK(net_route_get("10.99.0.0/16", &route, &exists, &err));
	assert_true(exists);
	assert_int_equal(route.type, RTN_UNICAST);

	FAILS(net_route_unreachable("172.31.0.1/16", true, &err), KERR_INVALID);
	FAILS(net_route_unreachable("172.31.0.0", true, &err), KERR_INVALID);
	assert_string_equal(err->msg,
	                    "cannot add unreachable route: invalid ipv4 prefix '172.31.0.0'");
	kerr_free(err);
}

/* Read back, from inside the namespace of pid, what net_ns_configure set up. */
struct inside {
	struct net_link eth0, lo;
	bool has_addr;
	bool has_route;
	struct net_route route;
};

static void look_inside(pid_t pid, struct inside *in)
{
	struct kerr *err = NULL;
	char path[64];
	int home, fd;

	home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(home >= 0 && fd >= 0);
	assert_int_equal(setns(fd, CLONE_NEWNET), 0);
	OK(net_link_get("eth0", &in->eth0, &err));
	OK(net_link_get("lo", &in->lo, &err));
	OK(net_addr_exists("eth0", INST_CIDR, &in->has_addr, &err));
	OK(net_route_get("0.0.0.0/0", &in->route, &in->has_route, &err));
	assert_int_equal(setns(home, CLONE_NEWNET), 0);
	assert_false(in_host_netns());
	close(fd);
	close(home);
}

static void test_veth_into_namespace(void **state)
{
	static const uint8_t mac[NET_MAC_LEN] = {0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc};
	struct kerr *err = NULL;
	struct net_link br, host;
	struct inside in;
	struct in_addr gw;
	char got[8];
	bool exists = true;
	pid_t pid;
	int i;

	(void)state;
	assert_false(in_host_netns());
	/* The order kiln keeps on a real host: the range goes nowhere before anything in it exists.
	 */
	OK(net_route_unreachable(VPC, true, &err));
	OK(net_bridge_ensure(BRIDGE, GW_CIDR, &err));
	OK(net_link_get(BRIDGE, &br, &err));
	pid = instance_start(INST_PORT);

	OK(net_veth_create("kv-test", BRIDGE, pid, "eth0", mac, &err));
	OK(net_link_get("kv-test", &host, &err));
	assert_string_equal(host.kind, "veth");
	assert_int_equal(host.master, br.index);
	assert_true(host.flags & IFF_UP);
	OK(net_link_exists("eth0", &exists, &err)); /* born in the instance's namespace, not here */
	assert_false(exists);

	OK(net_ns_configure(pid, "eth0", INST_CIDR, GW, &err));
	OK(net_ns_configure(pid, "eth0", INST_CIDR, GW, &err)); /* idempotent */
	look_inside(pid, &in);
	assert_string_equal(in.eth0.kind, "veth");
	assert_memory_equal(in.eth0.mac, mac, NET_MAC_LEN);
	assert_true(in.eth0.flags & IFF_UP);
	assert_true(in.lo.flags & IFF_UP);
	assert_true(in.has_addr);
	assert_true(in.has_route);
	assert_int_equal(in.route.type, RTN_UNICAST);
	assert_true(in.route.has_gateway);
	assert_int_equal(inet_pton(AF_INET, GW, &gw), 1);
	assert_int_equal(in.route.gateway.s_addr, gw.s_addr);
	assert_int_equal(in.route.oif, in.eth0.index);

	/* Bridge side to instance, over the instance's address. */
	assert_int_equal(tcp_probe(INST_ADDR, INST_PORT, got, sizeof(got)), 0);
	assert_string_equal(got, "ok");

	/* Refusals. */
	FAILS(net_veth_create("kv-test", BRIDGE, pid, "eth1", NULL, &err), KERR_CONFLICT);
	FAILS(net_veth_create("kv-two", "kb-none", pid, "eth1", NULL, &err), KERR_NOT_FOUND);
	assert_string_equal(err->msg,
	                    "cannot create veth 'kv-two': cannot look up bridge 'kb-none': "
	                    "No such device");
	FAILS(net_veth_create("kv-two", "lo", pid, "eth1", NULL, &err), KERR_INVALID);
	FAILS(net_ns_configure(pid, "eth0", INST_CIDR, "10.0.0.1", &err), KERR_INVALID);
	FAILS(net_ns_configure(pid, "eth0", "172.31.0.0/20", GW, &err), KERR_INVALID);
	FAILS(net_ns_configure(pid, "eth9", INST_CIDR, GW, &err), KERR_NOT_FOUND);
	OK(net_link_exists("kv-two", &exists, &err));
	assert_false(exists);

	/* Without a MAC, into a second instance; then the first one ends and its pair goes with
	 * its namespace. */
	OK(net_veth_create("kv-two", BRIDGE, instance_start(INST_PORT + 1), "eth0", NULL, &err));
	OK(net_link_get("kv-two", &host, &err));
	assert_int_equal(host.master, br.index);
	kill(pid, SIGKILL);
	for (i = 0; i < 100; i++) {
		OK(net_link_exists("kv-test", &exists, &err));
		if (!exists)
			break;
		usleep(50 * 1000);
	}
	assert_false(exists);
	OK(net_link_delete("kv-two", &err));
	OK(net_link_exists("kv-two", &exists, &err));
	assert_false(exists);
	kerr_free(err);
}

static void test_forwarding(void **state)
{
	struct kerr *err = NULL;
	char v[8] = "";
	int fd;

	(void)state;
	assert_false(in_host_netns()); /* the sysctl is per namespace */
	OK(net_forwarding_enable(&err));
	OK(net_forwarding_enable(&err));
	fd = open("/proc/sys/net/ipv4/ip_forward", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_true(read(fd, v, sizeof(v) - 1) > 0);
	close(fd);
	assert_string_equal(v, "1\n");
}

static void test_firewall(void **state)
{
	struct kerr *err = NULL;
	char *rules = NULL;

	(void)state;
	assert_false(in_host_netns());
	OK(net_firewall_dump(NULL, &rules, &err));
	assert_null(rules);
	/* A link of the host's own (not kiln's) whose network instances must never reach. */
	OK(net_bridge_ensure("up0", "192.0.2.2/24", &err));
	OK(net_bridge_ensure("kb-1-0", "172.31.0.1/32", &err)); /* kiln's: not a host network */
	/* Inside the link-local range and inside another network: merged, not refused by nft. */
	OK(net_bridge_ensure("up1", "169.254.7.1/24", &err));
	OK(net_bridge_ensure("up2", "192.0.2.130/25", &err));

	OK(net_firewall_set(NULL, VPC, true, &err));
	OK(net_firewall_set(NULL, VPC, true, &err));
	OK(net_firewall_dump(NULL, &rules, &err));
	assert_non_null(rules);
	assert_non_null(strstr(rules, "table ip kiln"));
	assert_non_null(strstr(rules, "type nat hook postrouting"));
	assert_non_null(
	    strstr(rules, "ip saddr 172.31.0.0/16 ip daddr != 172.31.0.0/16 masquerade"));
	assert_non_null(strstr(rules, "type filter hook forward"));
	assert_non_null(strstr(rules, "ct state established,related accept"));
	assert_non_null(strstr(rules, "iifname \"kb-*\" oifname \"kb-*\" iifname vmap @groups"));
	assert_non_null(strstr(rules, "iifname \"kb-*\" oifname \"kb-*\" drop"));
	assert_non_null(strstr(rules, "169.254.0.0/16"));
	assert_non_null(strstr(rules, "192.0.2.0/24"));
	assert_null(strstr(rules, "169.254.7.0/24"));
	assert_null(strstr(rules, "192.0.2.128/25"));
	assert_null(strstr(rules, "172.31.0.1"));
	assert_non_null(strstr(rules, "iifname \"kb-*\" accept"));
	assert_non_null(strstr(rules, "oifname \"kb-*\" drop"));
	assert_non_null(strstr(rules, "type filter hook input"));
	assert_non_null(strstr(rules, "iifname \"kb-*\" ct state established,related accept"));
	assert_non_null(strstr(rules, "table bridge kiln"));
	assert_non_null(strstr(rules, "type ifname . ether_addr . ipv4_addr"));
	assert_non_null(strstr(rules, "iifname != \"kv*\" accept"));
	assert_non_null(strstr(rules, "iifname . ether saddr . ip saddr @ports accept"));
	/* One of each, however often it is set. */
	assert_null(strstr(strstr(rules, "masquerade") + 1, "masquerade"));
	assert_null(strstr(strstr(rules, "table bridge kiln") + 1, "table bridge kiln"));
	free(rules);

	/* Set again for another range, without NAT: replaced, not added to; nothing leaves. */
	OK(net_firewall_set(NULL, "10.200.0.0/16", false, &err));
	OK(net_firewall_dump(NULL, &rules, &err));
	assert_non_null(rules);
	assert_null(strstr(rules, "masquerade"));
	assert_null(strstr(rules, "iifname \"kb-*\" accept"));
	free(rules);

	OK(net_firewall_delete(NULL, &err));
	OK(net_firewall_dump(NULL, &rules, &err));
	assert_null(rules);
	OK(net_firewall_delete(NULL, &err));

	FAILS(net_firewall_set(NULL, "172.31.0.1/16", true, &err), KERR_INVALID);
	FAILS(net_firewall_set(NULL, "172.31.0.0/16; flush ruleset", true, &err), KERR_INVALID);
	FAILS(net_firewall_set(NULL, "0.0.0.0/0", true, &err), KERR_INVALID);
	OK(net_firewall_dump(NULL, &rules, &err));
	assert_null(rules);
	kerr_free(err);
}

/* libnftables select()s on its netlink socket, which aborts the process past descriptor 1024:
 * scripts must work however many descriptors the process holds (a busy daemon holds many). */
static void test_firewall_many_descriptors(void **state)
{
	struct rlimit old, lim;
	struct kerr *err = NULL;
	char *rules = NULL;
	int fds[1100], n = 0;

	(void)state;
	assert_false(in_host_netns());
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	lim = old;
	if (lim.rlim_cur < 2048)
		lim.rlim_cur = lim.rlim_max < 2048 ? lim.rlim_max : 2048;
	if (lim.rlim_cur < 1200)
		skip(); /* the hard limit does not allow it here */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
	while (n < 1100 && (fds[n] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
		if (fds[n++] >= 1050)
			break;
	assert_true(n > 0 && fds[n - 1] >= 1024);
	OK(net_firewall_set(NULL, VPC, true, &err));
	OK(net_firewall_dump(NULL, &rules, &err));
	assert_non_null(rules);
	assert_non_null(strstr(rules, "table ip kiln"));
	free(rules);
	OK(net_firewall_delete(NULL, &err));
	while (n > 0)
		close(fds[--n]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	kerr_free(err);
}

/* Work inside the network namespace of pid, on a thread of its own (setns changes only the
 * calling thread), as an instance would. */
struct inside_job {
	pid_t pid;
	const char *src, *dst; /* the address to send from (NULL: any), and where to connect */
	uint16_t port;
	const uint8_t *mac; /* when set: eth0 gets this MAC instead */
	int r;
};

static void *inside_thread(void *arg)
{
	struct inside_job *j = arg;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(j->port)};
	struct sockaddr_in from = {.sin_family = AF_INET};
	char path[64];
	struct pollfd p;
	int nsfd, fd, soerr = 1;
	socklen_t len = sizeof(soerr);

	j->r = -1;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)j->pid);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0)
		return NULL;
	close(nsfd);
	if (j->mac) {
		struct ifreq ifr = {0};

		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "eth0");
		ifr.ifr_hwaddr.sa_family = 1; /* ARPHRD_ETHER */
		memcpy(ifr.ifr_hwaddr.sa_data, j->mac, NET_MAC_LEN);
		j->r = ioctl(fd, SIOCSIFHWADDR, &ifr);
		close(fd);
		return NULL;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || inet_pton(AF_INET, j->dst, &sa.sin_addr) != 1)
		return NULL;
	if (j->src && (inet_pton(AF_INET, j->src, &from.sin_addr) != 1 ||
	               bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0))
		goto out;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
		goto out;
	/* A dropped SYN is retried after a second: 2.5 s tell "dropped" from "slow". */
	p = (struct pollfd){.fd = fd, .events = POLLOUT};
	if (poll(&p, 1, 2500) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 &&
	    soerr == 0)
		j->r = 0;
out:
	close(fd);
	return NULL;
}

static int inside(struct inside_job *j)
{
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, inside_thread, j), 0);
	pthread_join(t, NULL);
	return j->r;
}

/* Can the instance pid open a TCP connection to dst:port (from src, when not NULL)? */
static bool reaches(pid_t pid, const char *src, const char *dst, uint16_t port)
{
	struct inside_job j = {.pid = pid, .src = src, .dst = dst, .port = port};

	return inside(&j) == 0;
}

struct test_instance {
	const char *host_if, *bridge, *cidr, *addr, *gw;
	pid_t pid;
	uint8_t mac[NET_MAC_LEN];
};

static void attach(struct test_instance *ti, uint16_t port)
{
	const struct net_instance ni = {
	    .host_if = ti->host_if, .bridge = ti->bridge, .address = ti->cidr, .gateway = ti->gw};
	struct kerr *err = NULL;

	ti->pid = instance_start(port);
	OK(net_instance_attach(&ni, ti->mac, &err));
	OK(net_instance_attach(&ni, ti->mac, &err)); /* idempotent */
	OK(net_veth_create(ti->host_if, ti->bridge, ti->pid, "eth0", ti->mac, &err));
	OK(net_ns_configure(ti->pid, "eth0", ti->cidr, ti->gw, &err));
	kerr_free(err);
}

static void test_instances_isolated(void **state)
{
	/* Accounts 1 and 2 in zone 0 (172.31.0.0/20), account 1 also in zone 1. */
	struct test_instance a1 = {"kv-a1", "kb-1-0", "172.31.0.10/20", "172.31.0.10", GW, 0, {0}};
	struct test_instance a2 = {"kv-a2", "kb-1-0", "172.31.0.11/20", "172.31.0.11", GW, 0, {0}};
	struct test_instance b1 = {"kv-b1", "kb-2-0", "172.31.0.12/20", "172.31.0.12", GW, 0, {0}};
	struct test_instance a3 = {
	    "kv-a3", "kb-1-1", "172.31.16.10/20", "172.31.16.10", "172.31.16.1", 0, {0}};
	const struct net_instance a2_port = {
	    .host_if = "kv-a2", .bridge = "kb-1-0", .address = a2.cidr, .gateway = GW};
	static const uint8_t other_mac[NET_MAC_LEN] = {0x02, 0, 0, 0, 0, 0x99};
	const char *const all[] = {a1.addr, a2.addr, b1.addr, a3.addr, NULL};
	struct kerr *err = NULL;
	struct inside_job j;
	struct net_route route;
	char *rules = NULL, got[8];
	const char *once;
	uint8_t mac[NET_MAC_LEN];
	bool exists;
	int lfd, one = 1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(INST_PORT + 10)};

	(void)state;
	assert_false(in_host_netns());
	OK(net_route_unreachable(VPC, true, &err));
	OK(net_forwarding_enable(&err));
	OK(net_bridge_ensure("up0", "192.0.2.2/24", &err)); /* stands for the host's own network */
	/* Never an instance without the filter. */
	FAILS(net_instance_attach(&a2_port, mac, &err), KERR_NOT_FOUND);
	assert_non_null(strstr(err->msg, "the host's filter is not set up"));
	OK(net_route_get("172.31.0.11/32", &route, &exists, &err));
	assert_false(exists);

	OK(net_firewall_set(NULL, VPC, true, &err));
	attach(&a1, INST_PORT);
	attach(&a2, INST_PORT);
	attach(&b1, INST_PORT);
	attach(&a3, INST_PORT);
	/* The host reaches each, through the /32 route of its own. */
	OK(net_route_get("172.31.0.12/32", &route, &exists, &err));
	assert_true(exists);
	assert_int_equal(route.type, RTN_UNICAST);
	for (const char *const *addr = all; *addr; addr++) {
		assert_int_equal(tcp_probe(*addr, INST_PORT, got, sizeof(got)), 0);
		assert_string_equal(got, "ok");
	}
	/* An account's instances reach each other, in a zone and across zones. */
	assert_true(reaches(a1.pid, NULL, a2.addr, INST_PORT));
	assert_true(reaches(a1.pid, NULL, a3.addr, INST_PORT));
	assert_true(reaches(a3.pid, NULL, a1.addr, INST_PORT));
	/* Another account's, neither. */
	assert_false(reaches(a1.pid, NULL, b1.addr, INST_PORT));
	assert_false(reaches(b1.pid, NULL, a1.addr, INST_PORT));
	assert_false(reaches(b1.pid, NULL, a3.addr, INST_PORT));
	/* The host's services, on no address of it. */
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 8), 0);
	assert_true(reaches(a1.pid, NULL, "127.0.0.1", INST_PORT)); /* its own, not the host's */
	assert_false(reaches(a1.pid, NULL, GW, INST_PORT + 10));
	assert_false(reaches(a1.pid, NULL, "172.31.16.1", INST_PORT + 10));
	assert_false(reaches(a1.pid, NULL, "192.0.2.2", INST_PORT + 10));
	close(lfd);
	/* Not from an address or a MAC of someone else's. */
	OK(net_ns_configure(a1.pid, "eth0", "172.31.0.99/20", GW, &err));
	assert_false(reaches(a1.pid, "172.31.0.99", a2.addr, INST_PORT));
	assert_true(reaches(a1.pid, a1.addr, a2.addr, INST_PORT));
	j = (struct inside_job){.pid = a1.pid, .mac = other_mac};
	assert_int_equal(inside(&j), 0);
	assert_false(reaches(a1.pid, a1.addr, a2.addr, INST_PORT));
	j.mac = a1.mac;
	assert_int_equal(inside(&j), 0);
	assert_true(reaches(a1.pid, a1.addr, a2.addr, INST_PORT));

	/* Detached: route, element and veth go; the others stay as they were. */
	OK(net_instance_detach(&a2_port, &err));
	OK(net_instance_detach(&a2_port, &err));
	OK(net_route_get("172.31.0.11/32", &route, &exists, &err));
	assert_false(exists);
	OK(net_link_exists("kv-a2", &exists, &err));
	assert_false(exists);
	OK(net_firewall_dump(NULL, &rules, &err));
	assert_null(strstr(rules, "\"kv-a2\""));
	assert_non_null(strstr(rules, "\"kv-a1\""));
	assert_non_null(strstr(rules, "jump kb-1-"));
	free(rules);
	/* A restart of the daemon sets the filter again: running instances keep theirs. */
	OK(net_firewall_set(NULL, VPC, true, &err));
	OK(net_firewall_dump(NULL, &rules, &err));
	assert_non_null(strstr(rules, "\"kv-b1\""));
	/* The group's rule once, however many instances attached. */
	once = strstr(rules, "oifname \"kb-1-*\" accept");
	assert_non_null(once);
	assert_null(strstr(once + 1, "oifname \"kb-1-*\""));
	free(rules);
	assert_false(reaches(a3.pid, NULL, b1.addr, INST_PORT));
	assert_true(reaches(a3.pid, NULL, a1.addr, INST_PORT));
	assert_int_equal(tcp_probe(b1.addr, INST_PORT, got, sizeof(got)), 0);

	/* Refusals: a port the filter would not see, a bridge of no group. */
	FAILS(net_instance_attach(
	          &(struct net_instance){
	              .host_if = "veth9", .bridge = "kb-1-0", .address = a2.cidr, .gateway = GW},
	          mac, &err),
	      KERR_INVALID);
	FAILS(net_instance_attach(
	          &(struct net_instance){
	              .host_if = "kv-x", .bridge = "kb-use1a", .address = a2.cidr, .gateway = GW},
	          mac, &err),
	      KERR_INVALID);
	kerr_free(err);
}

/* Out through the host's default route, masqueraded; never to the host's own network or to
 * 169.254.0.0/16. The world outside is a child "router" on the host's network up0 that also
 * holds a far address and a link-local one, and can answer only the host's own address. */
static void test_instances_go_out_by_nat(void **state)
{
	struct test_instance a1 = {"kv-a1", "kb-1-0", "172.31.0.10/20", "172.31.0.10", GW, 0, {0}};
	struct kerr *err = NULL;
	struct net_link up;
	struct nl nl;
	char got[8];
	pid_t router;

	(void)state;
	assert_false(in_host_netns());
	OK(net_route_unreachable(VPC, true, &err));
	OK(net_forwarding_enable(&err));
	OK(net_bridge_ensure("up0", "192.0.2.2/24", &err));
	router = instance_start(INST_PORT);
	OK(net_veth_create("up-r", "up0", router, "eth0", NULL, &err));
	/* Its default route goes nowhere: it answers 192.0.2.2, and nothing in 172.31.0.0/16. */
	OK(net_ns_configure(router, "eth0", "192.0.2.1/24", "192.0.2.254", &err));
	OK(net_ns_configure(router, "eth0", "198.51.100.7/24", "198.51.100.254", &err));
	OK(net_ns_configure(router, "eth0", "169.254.1.1/16", "169.254.0.254", &err));
	assert_int_equal(nl_open(&nl), 0);
	assert_int_equal(nl_link_get(&nl, "up0", &up), 0);
	assert_int_equal(nl_route_default(&nl, up.index, (struct in_addr){htonl(0xc0000201)}), 0);
	nl_close(&nl);
	/* The host itself reaches all three. */
	assert_int_equal(tcp_probe("198.51.100.7", INST_PORT, got, sizeof(got)), 0);
	assert_int_equal(tcp_probe("169.254.1.1", INST_PORT, got, sizeof(got)), 0);
	assert_int_equal(tcp_probe("192.0.2.1", INST_PORT, got, sizeof(got)), 0);

	OK(net_firewall_set(NULL, VPC, true, &err));
	attach(&a1, INST_PORT);
	assert_true(reaches(a1.pid, NULL, "198.51.100.7", INST_PORT));
	assert_false(reaches(a1.pid, NULL, "192.0.2.1", INST_PORT));
	assert_false(reaches(a1.pid, NULL, "169.254.1.1", INST_PORT));
	/* Without NAT nothing leaves (not even unmasqueraded). */
	OK(net_firewall_set(NULL, VPC, false, &err));
	assert_false(reaches(a1.pid, NULL, "198.51.100.7", INST_PORT));
	assert_int_equal(tcp_probe(a1.addr, INST_PORT, got, sizeof(got)), 0);
	kerr_free(err);
}

/* VPCs: namespaces of their own pinned under /tmp; the test's teardown unpins them whatever
 * happened. (Not in a mount namespace of the test's own: that would hold a copy of every mount
 * of the host, other tests' pools included, until the test ends.) */
/* The host's end of test VPC n's transit link, as a data directory with host id 0fff has it. */
static const char *transit(unsigned n)
{
	static char names[3][NET_IFNAME_MAX];

	net_transit_name("0fff", n, names[n % 3]);
	return names[n % 3];
}

static void vpc_pin(char *out, size_t size, unsigned n)
{
	snprintf(out, size, "/tmp/kiln-test-vpc-%d-%u", (int)getpid(), n);
}

/* Two data directories' filters side by side: each its own table for its own links; deleting
 * one leaves the other whole. */
static void test_firewall_per_host(void **state)
{
	char *a = NULL, *b = NULL, *gone = NULL;
	char name[NET_IFNAME_MAX];
	struct kerr *err = NULL;

	(void)state;
	net_transit_name("0aaa", 12345678, name);
	assert_string_equal(name, "kt0aaa-12345678");
	OK(net_firewall_set("0aaa", "198.18.0.0/16", true, &err));
	OK(net_firewall_set("0bbb", "198.19.0.0/16", true, &err));
	OK(net_firewall_dump("0aaa", &a, &err));
	OK(net_firewall_dump("0bbb", &b, &err));
	assert_non_null(strstr(a, "table ip kiln_0aaa"));
	assert_non_null(strstr(a, "\"kt0aaa-*\""));
	assert_null(strstr(a, "kt0bbb"));
	assert_null(strstr(a, "table bridge"));
	assert_non_null(strstr(b, "198.19.0.0/16"));
	OK(net_firewall_delete("0aaa", &err));
	OK(net_firewall_delete("0aaa", &err));
	OK(net_firewall_dump("0aaa", &gone, &err));
	assert_null(gone);
	free(b);
	OK(net_firewall_dump("0bbb", &b, &err));
	assert_non_null(b);
	FAILS(net_firewall_set("KILN", "198.18.0.0/16", true, &err), KERR_INVALID);
	FAILS(net_firewall_set("0aa; flush ruleset", "198.18.0.0/16", true, &err), KERR_INVALID);
	OK(net_firewall_delete("0bbb", &err));
	free(a);
	free(b);
	kerr_free(err);
}

static int vpc_teardown(void **state)
{
	char pin[96];

	stop_instances(state);
	for (unsigned n = 1; n <= 2; n++) {
		vpc_pin(pin, sizeof(pin), n);
		net_vpc_delete(pin, transit(n), NULL);
	}
	return 0;
}

struct vpc_instance {
	const char *host_if, *bridge, *cidr, *addr, *gw, *pub;
	pid_t pid;
};

static void vpc_attach(const char *pin, struct vpc_instance *vi)
{
	const struct net_instance ni = {
	    .host_if = vi->host_if, .bridge = vi->bridge, .address = vi->cidr, .gateway = vi->gw};
	struct kerr *err = NULL;

	vi->pid = instance_start(INST_PORT);
	OK(net_vpc_port_attach(pin, &ni, vi->pid, "eth0", &err));
	kerr_free(err);
}

static struct net_vpc_member vpc_member(const struct vpc_instance *vi, const size_t *groups,
                                        size_t n)
{
	struct net_vpc_member m = {.groups = groups, .ngroups = n, .has_pub = vi->pub != NULL};

	inet_pton(AF_INET, vi->addr, &m.addr);
	if (vi->pub)
		inet_pton(AF_INET, vi->pub, &m.pub);
	return m;
}

static bool host_reaches(const char *addr)
{
	char got[8];

	return tcp_probe(addr, INST_PORT, got, sizeof(got)) == 0 && !strcmp(got, "ok");
}

static void test_vpc_security_groups(void **state)
{
	struct vpc_instance a = {"kv-a",       "kb-v-1", "10.0.1.10/24", "10.0.1.10", "10.0.1.1",
	                         "198.18.0.5", 0};
	struct vpc_instance b = {"kv-b", "kb-v-2", "10.0.2.10/24", "10.0.2.10", "10.0.2.1",
	                         NULL,   0};
	struct vpc_instance c = {"kv-c",       "kb-v-1", "10.0.1.11/24", "10.0.1.11", "10.0.1.1",
	                         "198.18.0.7", 0};
	/* Another VPC with the same range, and an instance with a's very address. */
	struct vpc_instance d = {"kv-d",       "kb-v-3", "10.0.1.10/24", "10.0.1.10", "10.0.1.1",
	                         "198.18.0.9", 0};
	struct net_sg_rule def_rules[] = {
	    {.egress = false, .proto = NET_PROTO_ALL, .ref = 0},
	    {.egress = true, .proto = NET_PROTO_ALL, .ref = -1},
	};
	struct net_sg_rule web_rules[] = {
	    {.egress = false, .proto = 6, .from = INST_PORT, .to = INST_PORT, .ref = -1},
	    {.egress = true, .proto = NET_PROTO_ALL, .ref = -1},
	};
	struct net_sg groups[] = {{def_rules, 2}, {web_rules, 2}};
	static const size_t g_def[] = {0}, g_web[] = {1};
	struct net_vpc_member members[3];
	struct net_vpc_policy policy = {groups, 2, members, 3};
	char pin1[96], pin2[96];
	struct kerr *err = NULL;

	(void)state;
	vpc_pin(pin1, sizeof(pin1), 1);
	vpc_pin(pin2, sizeof(pin2), 2);
	OK(net_route_unreachable("198.18.0.0/15", true, &err));
	OK(net_forwarding_enable(&err));
	OK(net_firewall_set("0fff", "198.18.0.0/15", true, &err));
	OK(net_vpc_ensure(pin1, transit(1), "10.0.0.0/16", &err));
	OK(net_vpc_ensure(pin1, transit(1), "10.0.0.0/16", &err)); /* idempotent */
	OK(net_vpc_ensure(pin2, transit(2), "10.0.0.0/16", &err));
	vpc_attach(pin1, &a);
	vpc_attach(pin1, &b);
	vpc_attach(pin1, &c);
	vpc_attach(pin2, &d);
	members[0] = vpc_member(&a, g_def, 1);
	members[1] = vpc_member(&b, g_def, 1);
	members[2] = vpc_member(&c, g_web, 1);
	OK(net_vpc_policy_set(pin1, transit(1), &policy, &err));

	/* The default group: its members reach each other, across subnets and on one. */
	assert_true(reaches(a.pid, NULL, "10.0.2.10", INST_PORT));
	assert_true(reaches(b.pid, NULL, "10.0.1.10", INST_PORT));
	/* web: the port from anywhere, nothing else; not a member of default. */
	assert_true(reaches(a.pid, NULL, "10.0.1.11", INST_PORT));
	assert_false(reaches(c.pid, NULL, "10.0.1.10", INST_PORT));
	assert_false(reaches(c.pid, NULL, "10.0.2.10", INST_PORT));
	/* From the host, by public address only where a rule lets it. */
	assert_true(host_reaches("198.18.0.7"));
	assert_false(host_reaches("198.18.0.5"));
	assert_false(host_reaches("10.0.1.10"));

	/* A rule added: in effect at once; a public address gone: its route too. */
	web_rules[0].from = web_rules[0].to = -1;
	web_rules[0].proto = NET_PROTO_ALL;
	members[0].groups = (const size_t[]){0, 1};
	members[0].ngroups = 2;
	members[2].has_pub = false;
	OK(net_vpc_policy_set(pin1, transit(1), &policy, &err));
	assert_true(host_reaches("198.18.0.5"));
	assert_false(host_reaches("198.18.0.7"));
	assert_true(reaches(c.pid, NULL, "10.0.1.10", INST_PORT));
	/* Without a public address, c sends nothing out of the VPC. */
	assert_false(reaches(c.pid, NULL, "198.18.0.5", INST_PORT));

	/* The other VPC: the same addresses, nothing crosses. */
	{
		struct net_sg open[] = {{web_rules, 2}};
		static const size_t g0[] = {0};
		struct net_vpc_member dm = vpc_member(&d, g0, 1);
		struct net_vpc_policy p2 = {open, 1, &dm, 1};

		OK(net_vpc_policy_set(pin2, transit(2), &p2, &err));
	}
	assert_true(host_reaches("198.18.0.9"));
	assert_false(reaches(d.pid, NULL, "198.18.0.5", INST_PORT));
	assert_false(reaches(a.pid, NULL, "198.18.0.9", INST_PORT));
	assert_false(reaches(d.pid, NULL, "10.0.2.10", INST_PORT));

	/* Detached ports and deleted VPCs leave nothing. */
	{
		const struct net_instance ni = {
		    .host_if = d.host_if, .bridge = d.bridge, .address = d.cidr, .gateway = d.gw};

		OK(net_vpc_port_detach(pin2, &ni, &err));
		OK(net_vpc_port_detach(pin2, &ni, &err));
	}
	OK(net_vpc_delete(pin2, transit(2), &err));
	OK(net_vpc_delete(pin2, transit(2), &err));
	assert_false(host_reaches("198.18.0.9"));
	OK(net_vpc_delete(pin1, transit(1), &err));
	kerr_free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_bridge_group),
	    cmocka_unit_test(test_prefixes_merge),
	    cmocka_unit_test_setup_teardown(test_bridge, fresh_netns, stop_instances),
	    cmocka_unit_test_setup_teardown(test_link_delete, fresh_netns, stop_instances),
	    cmocka_unit_test_setup_teardown(test_route_unreachable, fresh_netns, stop_instances),
	    cmocka_unit_test_setup_teardown(test_veth_into_namespace, fresh_netns, stop_instances),
	    cmocka_unit_test_setup_teardown(test_forwarding, fresh_netns, stop_instances),
	    cmocka_unit_test_setup_teardown(test_firewall, fresh_netns, stop_instances),
	    cmocka_unit_test_setup_teardown(test_firewall_many_descriptors, fresh_netns,
	                                    stop_instances),
	    cmocka_unit_test_setup_teardown(test_instances_isolated, fresh_netns, stop_instances),
	    cmocka_unit_test_setup_teardown(test_firewall_per_host, fresh_netns, stop_instances),
	    cmocka_unit_test_setup_teardown(test_vpc_security_groups, fresh_netns, vpc_teardown),
	    cmocka_unit_test_setup_teardown(test_instances_go_out_by_nat, fresh_netns,
	                                    stop_instances),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_net: needs root, skipped\n");
		return 77;
	}
	if (stat("/proc/self/ns/net", &host_netns) < 0)
		return 1;
	/* Out of the host's namespace before anything else happens. */
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "test_net: cannot unshare a network namespace: %s\n",
		        strerror(errno));
		return errno == EPERM ? 77 : 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
