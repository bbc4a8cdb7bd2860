/* Text forms of what src/net handles: IPv4 prefixes and addresses, MAC addresses, link names.
 * Strict on purpose: these strings end up in netlink requests and nftables scripts. */
#include "net.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/str.h"
#include "util/banned.h"

#define TEXT_MAX 64 /* how much of a bad string an error message quotes */

int net_addr_parse(const char *s, struct in_addr *addr, struct kerr **err)
{
	if (strlen(s) >= INET_ADDRSTRLEN || inet_pton(AF_INET, s, addr) != 1)
		return kerr_set(err, KERR_INVALID, "invalid ipv4 address '%.*s'", TEXT_MAX, s);
	return 0;
}

int net_prefix_parse(const char *s, struct net_prefix *p, struct kerr **err)
{
	char addr[INET_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	const char *d;
	size_t alen;
	unsigned len = 0;

	if (!slash)
		goto invalid;
	alen = (size_t)(slash - s);
	if (alen == 0 || alen >= sizeof(addr))
		goto invalid;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, &p->addr) != 1)
		goto invalid;
	d = slash + 1;
	/* One or two digits, no sign, no leading zero, at most 32. */
	if (d[0] < '0' || d[0] > '9' || (d[0] == '0' && d[1] != '\0'))
		goto invalid;
	for (; *d; d++) {
		if (*d < '0' || *d > '9' || len > 3)
			goto invalid;
		len = len * 10 + (unsigned)(*d - '0');
	}
	if (len > 32)
		goto invalid;
	p->len = len;
	return 0;
invalid:
	return kerr_set(err, KERR_INVALID, "invalid ipv4 prefix '%.*s'", TEXT_MAX, s);
}

static uint32_t prefix_mask(unsigned len)
{
	return len == 0 ? 0 : htonl(0xffffffffu << (32 - len));
}

bool net_prefix_is_network(const struct net_prefix *p)
{
	return (p->addr.s_addr & ~prefix_mask(p->len)) == 0;
}

bool net_prefix_contains(const struct net_prefix *p, struct in_addr addr)
{
	uint32_t mask = prefix_mask(p->len);

	return (p->addr.s_addr & mask) == (addr.s_addr & mask);
}

void net_prefix_format(const struct net_prefix *p, char *out, size_t size)
{
	char a[INET_ADDRSTRLEN];

	if (!inet_ntop(AF_INET, &p->addr, a, sizeof(a)))
		a[0] = '\0';
	snprintf(out, size, "%s/%u", a, p->len);
}

int net_mac_parse(const char *s, uint8_t mac[NET_MAC_LEN], struct kerr **err)
{
	uint8_t m[NET_MAC_LEN];
	unsigned any = 0;
	int i;

	if (strlen(s) != NET_MAC_STR - 1)
		goto invalid;
	for (i = 0; i < NET_MAC_LEN; i++) {
		int hi = hex_digit(s[3 * i]), lo = hex_digit(s[3 * i + 1]);

		if (hi < 0 || lo < 0 || (i < NET_MAC_LEN - 1 && s[3 * i + 2] != ':'))
			goto invalid;
		m[i] = (uint8_t)(hi << 4 | lo);
		any |= m[i];
	}
	if ((m[0] & 1) || !any) /* multicast (or broadcast), or all zeros */
		goto invalid;
	memcpy(mac, m, sizeof(m));
	return 0;
invalid:
	return kerr_set(err, KERR_INVALID, "invalid mac address '%.*s'", TEXT_MAX, s);
}

void net_mac_format(const uint8_t mac[NET_MAC_LEN], char out[NET_MAC_STR])
{
	snprintf(out, NET_MAC_STR, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
	         mac[4], mac[5]);
}

bool net_ifname_valid(const char *name)
{
	size_t n = strnlen(name, NET_IFNAME_MAX);
	size_t i;

	if (n == 0 || n >= NET_IFNAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c <= ' ' || c >= 0x7f || c == '/' || c == ':')
			return false;
	}
	return true;
}

bool net_bridge_group(const char *name, char *out, size_t size)
{
	size_t pre = strlen(NET_BRIDGE_PREFIX), n = strnlen(name, NET_IFNAME_MAX), dash = 0;

	if (n >= NET_IFNAME_MAX || strncmp(name, NET_BRIDGE_PREFIX, pre) != 0)
		return false;
	for (size_t i = pre; i < n; i++) {
		char c = name[i];

		if (c == '-' && !dash)
			dash = i;
		else if (!isalnum((unsigned char)c) && c != '_' && c != '.')
			return false;
	}
	/* A group and a member, neither empty. These characters also make a valid nftables
	 * chain name of the group. */
	if (!dash || dash == pre || dash + 1 == n || dash + 2 > size)
		return false;
	memcpy(out, name, dash + 1);
	out[dash + 1] = '\0';
	return true;
}

static int prefix_cmp(const void *a, const void *b)
{
	const struct net_prefix *x = a, *y = b;
	uint32_t ax = ntohl(x->addr.s_addr), ay = ntohl(y->addr.s_addr);

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return ax < ay ? -1 : ax > ay;
}

size_t net_prefixes_merge(struct net_prefix *prefixes, size_t n)
{
	size_t kept = 0;

	/* Shortest first: a prefix is dropped when one kept before it holds it. */
	if (n)
		qsort(prefixes, n, sizeof(*prefixes), prefix_cmp);
	for (size_t i = 0; i < n; i++) {
		bool covered = false;

		for (size_t j = 0; j < kept && !covered; j++)
			covered = net_prefix_contains(&prefixes[j], prefixes[i].addr);
		if (!covered)
			prefixes[kept++] = prefixes[i];
	}
	return kept;
}
