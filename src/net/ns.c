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

struct ns_socket {
	int nsfd;
	int fd;     /* the socket, or -1 */
	int errnum; /* why not */
	bool entered;
};

static void *ns_socket_thread(void *arg)
{
	struct ns_socket *s = arg;

	if (setns(s->nsfd, CLONE_NEWNET) < 0) {
		s->errnum = errno;
		return NULL;
	}
	s->entered = true;
	s->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (s->fd < 0)
		s->errnum = errno;
	return NULL;
}

/* A netlink socket living in the network namespace of pid. */
static int nl_open_in_ns(struct nl *nl, pid_t pid, struct kerr **err)
{
	char path[64];
	_cleanup_close_ int nsfd = -1;
	struct ns_socket s = {.fd = -1};
	pthread_t t;
	int rc;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		return kerr_errno(err, errno, "cannot open the network namespace of pid %d",
		                  (int)pid);
	s.nsfd = nsfd;
	rc = pthread_create(&t, NULL, ns_socket_thread, &s);
	if (rc != 0)
		return kerr_errno(err, rc, "cannot start a thread for the namespace of pid %d",
		                  (int)pid);
	pthread_join(t, NULL);
	if (s.fd < 0)
		return kerr_errno(err, s.errnum, "cannot %s the network namespace of pid %d",
		                  s.entered ? "open a netlink socket in" : "enter", (int)pid);
	rc = nl_open_fd(nl, s.fd);
	if (rc < 0)
		return nl_fail(NULL, err, rc, "cannot set up a netlink socket for pid %d",
		               (int)pid);
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
