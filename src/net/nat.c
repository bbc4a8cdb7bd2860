/* The host side of instances' outbound traffic: IPv4 forwarding, and the nftables table
 * `ip kiln` (masquerade out of the VPC range, forwarding rules for kiln's bridges), written
 * through libnftables as one atomic script each time. */
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/fs.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define IP_FORWARD "/proc/sys/net/ipv4/ip_forward"
#define NFT_TABLE  "kiln"

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

/* Run script in one transaction; on success *out (when asked) gets nft's output, malloc'd. On
 * failure the message is what, then the first line of nft's complaint. */
static int nft_run(const char *script, char **out, const char *what, struct kerr **err)
{
	__attribute__((cleanup(nft_ctx_freep))) struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
	const char *msg, *eol;
	size_t n;

	if (!nft)
		return kerr_set(err, KERR_INTERNAL, "%s: cannot create an nftables context", what);
	if (nft_ctx_buffer_output(nft) != 0 || nft_ctx_buffer_error(nft) != 0)
		return kerr_set(err, KERR_INTERNAL, "%s: cannot buffer nftables output", what);
	if (nft_run_cmd_from_buffer(nft, script) != 0) {
		msg = nft_ctx_get_error_buffer(nft);
		msg = msg ? msg : "";
		if (!strncmp(msg, "Error: ", 7))
			msg += 7;
		eol = strchr(msg, '\n');
		n = eol ? (size_t)(eol - msg) : strlen(msg);
		if (n > 400)
			n = 400;
		return kerr_set(err, strstr(msg, "Operation not permitted") ? KERR_AUTH : KERR_IO,
				"%s: %.*s", what, (int)n, n ? msg : "nftables failed");
	}
	if (out) {
		msg = nft_ctx_get_output_buffer(nft);
		*out = xstrdup(msg ? msg : "");
	}
	return 0;
}

int net_nat_set(const char *vpc_cidr, bool enable, struct kerr **err)
{
	char what[128], cidr[32], script[1536];
	struct net_prefix p;

	snprintf(what, sizeof(what), "cannot %s nat for '%.64s'", enable ? "enable" : "disable",
		 vpc_cidr);
	if (net_prefix_parse(vpc_cidr, &p, err) < 0)
		return kerr_wrap(err, "%s", what);
	if (!net_prefix_is_network(&p) || p.len == 0)
		return kerr_set(err, KERR_INVALID, "%s: not a network prefix", what);
	/* Re-printed from the parsed value: nothing from the caller reaches the script as is. */
	net_prefix_format(&p, cidr, sizeof(cidr));

	/* "add" then "delete" makes the delete succeed whether or not the table was there; the
	 * new definition follows in the same transaction, so there is no moment without it. */
	if (!enable)
		return nft_run("add table ip " NFT_TABLE "\ndelete table ip " NFT_TABLE "\n", NULL,
			       what, err);
	snprintf(script, sizeof(script),
		 "add table ip " NFT_TABLE "\n"
		 "delete table ip " NFT_TABLE "\n"
		 "table ip " NFT_TABLE " {\n"
		 "\tchain postrouting {\n"
		 "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
		 "\t\tip saddr %s ip daddr != %s masquerade\n"
		 "\t}\n"
		 "\tchain forward {\n"
		 "\t\ttype filter hook forward priority filter; policy accept;\n"
		 "\t\tct state established,related accept\n"
		 "\t\tiifname \"" NET_BRIDGE_PREFIX "*\" oifname \"" NET_BRIDGE_PREFIX
		 "*\" accept\n"
		 /* Instances' own connections out, to be masqueraded. */
		 "\t\tiifname \"" NET_BRIDGE_PREFIX "*\" accept\n"
		 /* Like EC2 private addresses: nothing outside the host opens a connection in. */
		 "\t\toifname \"" NET_BRIDGE_PREFIX "*\" drop\n"
		 "\t}\n"
		 "}\n",
		 cidr, cidr);
	return nft_run(script, NULL, what, err);
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

int net_nat_dump(char **ruleset, struct kerr **err)
{
	_cleanup_free_ char *tables = NULL;

	*ruleset = NULL;
	if (nft_run("list tables ip", &tables, "cannot list nftables tables", err) < 0)
		return -1;
	if (!has_line(tables, "table ip " NFT_TABLE))
		return 0;
	return nft_run("list table ip " NFT_TABLE, ruleset, "cannot list nftables table 'ip kiln'",
		       err);
}
