/* rtnetlink plumbing: raw NETLINK_ROUTE sockets, bounded requests, and replies whose every
 * length is checked before it is believed. */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "util/xalloc.h"
#include "util/banned.h"

int nl_open_fd(struct nl *nl, int fd)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	socklen_t salen = sizeof(sa);
	struct timeval tv = {.tv_sec = NL_TIMEOUT_S};
	int one = 1;

	memset(nl, 0, sizeof(*nl));
	nl->fd = fd;
	/* Errors without a copy of our request, but with the kernel's explanation. Old kernels
	 * lack either option; that only costs the explanation. */
	setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &salen) < 0) {
		int e = errno;
		close(fd);
		nl->fd = -1;
		return -e;
	}
	if (salen != sizeof(sa) || sa.nl_family != AF_NETLINK) {
		close(fd);
		nl->fd = -1;
		return -EPROTO;
	}
	nl->portid = sa.nl_pid;
	nl->rbuf = xmalloc(NL_RECV_MAX);
	return 0;
}

int nl_open(struct nl *nl)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

	if (fd < 0) {
		nl->fd = -1;
		nl->rbuf = NULL;
		return -errno;
	}
	return nl_open_fd(nl, fd);
}

void nl_close(struct nl *nl)
{
	if (nl->fd >= 0)
		close(nl->fd);
	nl->fd = -1;
	free(nl->rbuf);
	nl->rbuf = NULL;
}

void nl_req_init(struct nl_req *r, uint16_t type, uint16_t flags)
{
	memset(r->u.buf, 0, NLMSG_HDRLEN);
	r->u.hdr.nlmsg_len = NLMSG_HDRLEN;
	r->u.hdr.nlmsg_type = type;
	r->u.hdr.nlmsg_flags = NLM_F_REQUEST | flags;
	r->overflow = false;
}

/* len zeroed bytes at the end of the message, or NULL (and overflow) when they do not fit. */
static void *req_reserve(struct nl_req *r, size_t len)
{
	size_t at = NLMSG_ALIGN(r->u.hdr.nlmsg_len);
	void *p;

	if (r->overflow || len > sizeof(r->u.buf) || at > sizeof(r->u.buf) - NLMSG_ALIGN(len)) {
		r->overflow = true;
		return NULL;
	}
	p = r->u.buf + at;
	memset(p, 0, NLMSG_ALIGN(len));
	r->u.hdr.nlmsg_len =
	    (uint32_t)(at + NLMSG_ALIGN(len)); /* padding included, as the kernel does */
	return p;
}

void *nl_req_put(struct nl_req *r, size_t len)
{
	void *p;

	if (len > sizeof(r->scratch))
		abort(); /* a bug: only fixed headers (ifinfomsg, rtmsg...) are put this way */
	p = req_reserve(r, len);
	if (!p) {
		memset(r->scratch, 0, sizeof(r->scratch));
		p = r->scratch;
	}
	return p;
}

void nl_attr_put(struct nl_req *r, uint16_t type, const void *data, size_t len)
{
	struct rtattr *a;

	if (len > UINT16_MAX - RTA_LENGTH(0)) {
		r->overflow = true;
		return;
	}
	a = req_reserve(r, RTA_LENGTH(len));
	if (!a)
		return;
	a->rta_type = type;
	a->rta_len = (uint16_t)RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
}

void nl_attr_put_u32(struct nl_req *r, uint16_t type, uint32_t v)
{
	nl_attr_put(r, type, &v, sizeof(v));
}

void nl_attr_put_str(struct nl_req *r, uint16_t type, const char *s)
{
	nl_attr_put(r, type, s, strlen(s) + 1);
}

struct rtattr *nl_nest_begin(struct nl_req *r, uint16_t type)
{
	struct rtattr *a = req_reserve(r, RTA_LENGTH(0));

	if (!a)
		return NULL;
	a->rta_type = type;
	return a;
}

void nl_nest_end(struct nl_req *r, struct rtattr *nest)
{
	size_t len;

	if (!nest || r->overflow)
		return;
	len = r->u.buf + r->u.hdr.nlmsg_len - (uint8_t *)nest;
	if (len > UINT16_MAX) {
		r->overflow = true;
		return;
	}
	nest->rta_len = (uint16_t)len;
}

const void *nl_msg_attrs(const struct nlmsghdr *h, size_t hdrlen, size_t *attrlen)
{
	size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(hdrlen);

	if (h->nlmsg_len < NLMSG_HDRLEN + hdrlen)
		return NULL;
	*attrlen = h->nlmsg_len > off ? h->nlmsg_len - off : 0;
	return (const uint8_t *)h + off;
}

int nl_attr_parse(const void *data, size_t len, const struct rtattr **tb, unsigned max)
{
	const uint8_t *p = data;

	memset(tb, 0, (max + 1) * sizeof(*tb));
	while (len >= sizeof(struct rtattr)) {
		const struct rtattr *a = (const struct rtattr *)p;
		size_t step;
		unsigned type;

		if (a->rta_len < sizeof(struct rtattr) || a->rta_len > len)
			return -EBADMSG;
		type = a->rta_type & NLA_TYPE_MASK;
		if (type <= max)
			tb[type] = a;
		step = RTA_ALIGN(a->rta_len);
		if (step >= len)
			break;
		p += step;
		len -= step;
	}
	return 0;
}

const void *nl_attr_data(const struct rtattr *a)
{
	return (const uint8_t *)a + RTA_LENGTH(0);
}

size_t nl_attr_len(const struct rtattr *a)
{
	return a->rta_len - RTA_LENGTH(0);
}

int nl_attr_get_u32(const struct rtattr *a, uint32_t *v)
{
	if (nl_attr_len(a) < sizeof(*v))
		return -EBADMSG;
	memcpy(v, nl_attr_data(a), sizeof(*v));
	return 0;
}

int nl_attr_get_in4(const struct rtattr *a, struct in_addr *v)
{
	if (nl_attr_len(a) != sizeof(*v))
		return -EBADMSG;
	memcpy(v, nl_attr_data(a), sizeof(*v));
	return 0;
}

int nl_attr_get_str(const struct rtattr *a, char *out, size_t size)
{
	const char *s = nl_attr_data(a);
	size_t n = nl_attr_len(a);
	const char *nul = memchr(s, '\0', n);

	if (!nul || (size_t)(nul - s) >= size)
		return -EBADMSG;
	memcpy(out, s, (size_t)(nul - s) + 1);
	return 0;
}

/* Keep the kernel's extended-ack message, printable characters only. */
static void save_extack(struct nl *nl, const struct nlmsghdr *h, const struct nlmsgerr *e)
{
	const struct rtattr *tb[NLMSGERR_ATTR_MAX + 1];
	size_t off = NLMSG_HDRLEN + sizeof(*e), i, n;
	const uint8_t *tlvs;
	const char *s;

	nl->extack[0] = '\0';
	if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (!(h->nlmsg_flags & NLM_F_CAPPED)) {
		/* The whole request follows; never trust its length beyond the message. */
		if (e->msg.nlmsg_len < NLMSG_HDRLEN)
			return;
		off += NLMSG_ALIGN(e->msg.nlmsg_len) - NLMSG_HDRLEN;
	}
	if (off >= h->nlmsg_len)
		return;
	tlvs = (const uint8_t *)h + off;
	if (nl_attr_parse(tlvs, h->nlmsg_len - off, tb, NLMSGERR_ATTR_MAX) < 0 ||
	    !tb[NLMSGERR_ATTR_MSG])
		return;
	s = nl_attr_data(tb[NLMSGERR_ATTR_MSG]);
	n = strnlen(s, nl_attr_len(tb[NLMSGERR_ATTR_MSG]));
	if (n >= sizeof(nl->extack))
		n = sizeof(nl->extack) - 1;
	for (i = 0; i < n; i++)
		nl->extack[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	nl->extack[n] = '\0';
}

/* Read replies to the request of seq until its ack, the end of its dump or an error. */
static int nl_wait(struct nl *nl, uint32_t seq, nl_reply_fn fn, void *ctx)
{
	int result = 0;
	ssize_t n;

	for (;;) {
		struct sockaddr_nl from;
		struct iovec iov = {.iov_base = nl->rbuf, .iov_len = NL_RECV_MAX};
		struct msghdr mh = {.msg_name = &from,
		                    .msg_namelen = sizeof(from),
		                    .msg_iov = &iov,
		                    .msg_iovlen = 1};
		const uint8_t *p = nl->rbuf;
		size_t left;

		n = recvmsg(nl->fd, &mh, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		if (mh.msg_flags & MSG_TRUNC)
			return -EMSGSIZE;
		if (mh.msg_namelen != sizeof(from) || from.nl_family != AF_NETLINK ||
		    from.nl_pid != 0)
			continue; /* not from the kernel */
		left = (size_t)n;
		while (left >= NLMSG_HDRLEN) {
			const struct nlmsghdr *h = (const struct nlmsghdr *)p;
			size_t step;

			if (h->nlmsg_len < NLMSG_HDRLEN || h->nlmsg_len > left)
				return -EBADMSG;
			step = NLMSG_ALIGN(h->nlmsg_len);
			p += step < left ? step : left;
			left -= step < left ? step : left;
			if (h->nlmsg_seq != seq || h->nlmsg_pid != nl->portid)
				continue; /* a late reply to an earlier request */
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);

				if (h->nlmsg_len < NLMSG_HDRLEN + sizeof(*e))
					return -EBADMSG;
				if (e->error == 0)
					return result;
				if (e->error > 0 || e->error < -4095)
					return -EBADMSG;
				save_extack(nl, h, e);
				return e->error;
			}
			if (h->nlmsg_type == NLMSG_DONE) {
				int32_t v;

				/* A dump may end with an error in place of its last part. */
				if (h->nlmsg_len >= NLMSG_HDRLEN + sizeof(v)) {
					memcpy(&v, NLMSG_DATA(h), sizeof(v));
					if (v < 0 && v >= -4095)
						return v;
				}
				return result;
			}
			if (h->nlmsg_type < NLMSG_MIN_TYPE)
				continue; /* NOOP, OVERRUN */
			if (h->nlmsg_flags & NLM_F_DUMP_INTR)
				result = result ? result
				                : -EINTR; /* inconsistent: let the caller retry */
			if (!result && fn)
				result = fn(h, ctx);
		}
	}
}

static int nl_send(struct nl *nl, struct iovec *iov, size_t niov)
{
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	struct msghdr mh = {
	    .msg_name = &kernel, .msg_namelen = sizeof(kernel), .msg_iov = iov, .msg_iovlen = niov};
	size_t total = 0;
	ssize_t n;

	for (size_t i = 0; i < niov; i++)
		total += iov[i].iov_len;
	do
		n = sendmsg(nl->fd, &mh, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == total ? 0 : -EMSGSIZE;
}

int nl_talk(struct nl *nl, struct nl_req *r, nl_reply_fn fn, void *ctx)
{
	bool dump = (r->u.hdr.nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
	struct iovec iov = {.iov_base = r->u.buf, .iov_len = r->u.hdr.nlmsg_len};
	int rc;

	nl->extack[0] = '\0';
	if (r->overflow)
		return -EMSGSIZE;
	if (!dump)
		r->u.hdr.nlmsg_flags |= NLM_F_ACK;
	r->u.hdr.nlmsg_seq = ++nl->seq;
	r->u.hdr.nlmsg_pid = 0;
	rc = nl_send(nl, &iov, 1);
	return rc < 0 ? rc : nl_wait(nl, r->u.hdr.nlmsg_seq, fn, ctx);
}

int nl_talk_batch(struct nl *nl, struct nl_req *r)
{
	/* nf_tables takes changes only between these two; all three carry the request's
	 * sequence number, so that an error about any of them ends the wait. */
	struct {
		struct nlmsghdr h;
		struct nfgenmsg g;
	} begin = {.h = {.nlmsg_len = NLMSG_LENGTH(sizeof(struct nfgenmsg)),
	                 .nlmsg_type = NFNL_MSG_BATCH_BEGIN,
	                 .nlmsg_flags = NLM_F_REQUEST},
	           .g = {.version = NFNETLINK_V0, .res_id = htons(NFNL_SUBSYS_NFTABLES)}},
	  end = begin;
	struct iovec iov[3] = {{&begin, sizeof(begin)}, {r->u.buf, 0}, {&end, sizeof(end)}};
	int rc;

	nl->extack[0] = '\0';
	if (r->overflow)
		return -EMSGSIZE;
	r->u.hdr.nlmsg_flags |= NLM_F_ACK;
	r->u.hdr.nlmsg_seq = begin.h.nlmsg_seq = end.h.nlmsg_seq = ++nl->seq;
	r->u.hdr.nlmsg_pid = 0;
	end.h.nlmsg_type = NFNL_MSG_BATCH_END;
	iov[1].iov_len = r->u.hdr.nlmsg_len;
	rc = nl_send(nl, iov, 3);
	return rc < 0 ? rc : nl_wait(nl, r->u.hdr.nlmsg_seq, NULL, NULL);
}

int nl_fail(struct nl *nl, struct kerr **err, int negerr, const char *fmt, ...)
{
	char head[640];
	int errnum = negerr < 0 ? -negerr : EIO;
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	if (nl && nl->extack[0])
		kerr_errno(err, errnum, "%s: %s", head, nl->extack);
	else
		kerr_errno(err, errnum, "%s", head);
	if (errnum == ENODEV || errnum == ESRCH)
		(*err)->kind = KERR_NOT_FOUND;
	return -1;
}

int nl_open_kerr(struct nl *nl, struct kerr **err)
{
	int rc = nl_open(nl);

	if (rc < 0)
		return nl_fail(NULL, err, rc, "cannot open a netlink socket");
	return 0;
}
