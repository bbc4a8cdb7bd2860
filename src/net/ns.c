/* Configuring the inside of an instance's network namespace from the host.
 *
 * A netlink socket belongs to the namespace it was created in, for its whole life. So a short-
 * lived thread enters the instance's namespace (setns(CLONE_NEWNET) changes only the calling
 * thread), creates the socket and ends; the caller's thread then does all the work on that
 * socket with ordinary code and errors. Why not fork a child that setns()es: the daemon is
 * multi-threaded, and a forked child may only do async-signal-safe work (no malloc, so no kerr),
 * and needs a pipe back for its error; the thread needs neither, and never changes the
 * namespace of any thread but itself, which is gone before we return. */
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "util/cleanup.h"
#include "util/banned.h"

struct ns_call {
	int nsfd;
	int (*fn)(void *ctx, struct kerr **err);
	void *ctx;
	struct kerr *err;
	int r;
};

static void *ns_call_thread(void *arg)
{
	struct ns_call *c = arg;

	if (c->nsfd >= 0 ? setns(c->nsfd, CLONE_NEWNET) : unshare(CLONE_NEWNET))
		c->r = kerr_errno(&c->err, errno, "cannot %s a network namespace",
		                  c->nsfd >= 0 ? "enter" : "create");
	else
		c->r = c->fn(c->ctx, &c->err);
	return NULL;
}

int net_ns_run(int nsfd, int (*fn)(void *ctx, struct kerr **err), void *ctx, struct kerr **err)
{
	struct ns_call c = {.nsfd = nsfd, .fn = fn, .ctx = ctx, .r = -1};
	pthread_t t;
	int rc = pthread_create(&t, NULL, ns_call_thread, &c);

	if (rc != 0)
		return kerr_errno(err, rc, "cannot start a thread for a network namespace");
	pthread_join(t, NULL);
	if (c.r < 0)
		return c.err ? kerr_pass(err, c.err) : kerr_set(err, KERR_INTERNAL, "failed");
	return 0;
}

struct ns_socket {
	int protocol;
	int fd;
};

static int ns_socket(void *ctx, struct kerr **err)
{
	struct ns_socket *s = ctx;

	s->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, s->protocol);
	if (s->fd < 0)
		return kerr_errno(err, errno, "cannot open a netlink socket");
	return 0;
}

int nl_open_in(struct nl *nl, int nsfd, int protocol, struct kerr **err)
{
	struct ns_socket s = {.protocol = protocol, .fd = -1};
	int rc;

	if (net_ns_run(nsfd, ns_socket, &s, err) < 0)
		return -1;
	rc = nl_open_fd(nl, s.fd);
	if (rc < 0)
		return nl_fail(NULL, err, rc, "cannot set up a netlink socket");
	return 0;
}

/* A netlink socket living in the network namespace of pid. */
static int nl_open_in_ns(struct nl *nl, pid_t pid, struct kerr **err)
{
	char path[64];
	_cleanup_close_ int nsfd = -1;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		return kerr_errno(err, errno, "cannot open the network namespace of pid %d",
		                  (int)pid);
	if (nl_open_in(nl, nsfd, NETLINK_ROUTE, err) < 0)
		return kerr_wrap(err, "the namespace of pid %d", (int)pid);
	return 0;
}

int net_ns_configure(pid_t ns_pid, const char *ifname, const char *addr_cidr, const char *gateway,
                     struct kerr **err)
{
	_cleanup_nl_ struct nl nl = {.fd = -1};
	struct net_prefix addr;
	struct in_addr gw;
	struct net_link link;
	int rc;

	if (ns_pid <= 0)
		return kerr_set(err, KERR_INVALID,
		                "cannot configure the network of pid %d: invalid pid", (int)ns_pid);
	if (!net_ifname_valid(ifname))
		return kerr_set(err, KERR_INVALID, "invalid link name '%.32s'", ifname);
	if (net_prefix_parse(addr_cidr, &addr, err) < 0 || net_addr_parse(gateway, &gw, err) < 0)
		return kerr_wrap(err, "cannot configure '%s' in the namespace of pid %d", ifname,
		                 (int)ns_pid);
	if (addr.len == 0 || addr.len > 30 || net_prefix_is_network(&addr))
		return kerr_set(err, KERR_INVALID,
		                "cannot configure '%s': '%s' is not a host address in a subnet",
		                ifname, addr_cidr);
	if (!net_prefix_contains(&addr, gw) || gw.s_addr == addr.addr.s_addr)
		return kerr_set(
		    err, KERR_INVALID,
		    "cannot configure '%s': gateway '%s' is not another address in '%s'", ifname,
		    gateway, addr_cidr);
	if (nl_open_in_ns(&nl, ns_pid, err) < 0)
		return -1;

	rc = nl_link_set_up(&nl, "lo");
	if (rc < 0)
		return nl_fail(&nl, err, rc, "cannot bring up 'lo' in the namespace of pid %d",
		               (int)ns_pid);
	rc = nl_link_get(&nl, ifname, &link);
	if (rc < 0)
		return nl_fail(&nl, err, rc, "cannot look up '%s' in the namespace of pid %d",
		               ifname, (int)ns_pid);
	rc = nl_addr_add(&nl, link.index, &addr);
	if (rc < 0)
		return nl_fail(&nl, err, rc,
		               "cannot add address '%s' to '%s' in the namespace of pid %d",
		               addr_cidr, ifname, (int)ns_pid);
	/* Up before the route: the kernel adds the subnet route (through which the gateway is
	 * reached) only once the link is up. */
	rc = nl_link_set_up(&nl, ifname);
	if (rc < 0)
		return nl_fail(&nl, err, rc, "cannot bring up '%s' in the namespace of pid %d",
		               ifname, (int)ns_pid);
	rc = nl_route_default(&nl, link.index, gw);
	if (rc < 0)
		return nl_fail(&nl, err, rc,
		               "cannot add default route via '%s' in the namespace of pid %d",
		               gateway, (int)ns_pid);
	return 0;
}
