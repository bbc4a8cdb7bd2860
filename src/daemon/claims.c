/* Which data directory uses which host id and range of public addresses on this host: one
 * file per host id under DAEMON_CLAIMS_DIR, written at a daemon's start and removed by kiln
 * down, so that a second daemon refuses to start where it would take another's names or
 * addresses instead of quietly breaking its instances. */
#include "daemon/daemon.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "net/net.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

struct claim {
	char id[NET_HOST_ID_LEN + 1];
	char data[PATH_MAX];
	char range[24];
};

static const char *claims_dir(void)
{
	const char *d = getenv("KILN_CLAIMS_DIR"); /* tests: a directory of their own */

	return d && *d ? d : DAEMON_CLAIMS_DIR;
}

/* "DATA\nRANGE\n" of the claim named id; false when there is none or it is malformed. */
static bool claim_read(int dfd, const char *id, struct claim *c)
{
	if (!net_host_id_valid(id) ||
	    fs_read_two_lines(dfd, id, c->data, sizeof(c->data), c->range, sizeof(c->range)) < 0)
		return false;
	str_copy(c->id, id, sizeof(c->id));
	return true;
}

/* A claim holds while its data directory exists and either its daemon runs (it holds a lock
 * on the claim) or its VPCs' transit links are there (instances, or what a killed daemon left
 * until its kiln down). */
static bool claim_live(int dfd, const struct claim *c)
{
	_cleanup_free_ char *db = xasprintf("%s/kiln.db", c->data);
	_cleanup_close_ int fd = -1;
	char prefix[NET_IFNAME_MAX];
	struct dirent *de;
	bool live = false;
	DIR *d;

	if (access(db, F_OK) < 0)
		return false;
	fd = openat(dfd, c->id, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK)
		return true;
	net_transit_prefix(c->id, prefix);
	d = opendir("/sys/class/net");
	while (d && !live && (de = readdir(d)))
		live = !strncmp(de->d_name, prefix, strlen(prefix));
	if (d)
		closedir(d);
	return live;
}

static bool ranges_overlap(const char *a, const char *b)
{
	struct net_prefix pa, pb;

	if (net_prefix_parse(a, &pa, NULL) < 0 || net_prefix_parse(b, &pb, NULL) < 0)
		return false;
	return net_prefix_contains(&pa, pb.addr) || net_prefix_contains(&pb, pa.addr);
}

static int claims_open(int *dfd, int *lockfd, struct kerr **err)
{
	return fs_dir_lock(claims_dir(), dfd, lockfd, err);
}

/* The first /20 of the default range that no live claim of another data directory overlaps. */
static int range_pick(int dfd, const char *real, char out[24], struct kerr **err)
{
	struct net_prefix all, slice;

	if (net_prefix_parse(DAEMON_PUBLIC_DEFAULT, &all, err) < 0)
		return -1;
	for (uint32_t k = 0; k < (1u << (DAEMON_PUBLIC_SLICE - all.len)); k++) {
		struct dirent *de;
		DIR *d;
		bool taken = false;
		char cand[24];

		slice.len = DAEMON_PUBLIC_SLICE;
		slice.addr.s_addr =
		    htonl(ntohl(all.addr.s_addr) + (k << (32 - DAEMON_PUBLIC_SLICE)));
		net_prefix_format(&slice, cand, sizeof(cand));
		d = fs_opendir_dup(dfd);
		while (d && !taken && (de = readdir(d))) {
			struct claim c;

			taken = claim_read(dfd, de->d_name, &c) && strcmp(c.data, real) &&
			        ranges_overlap(c.range, cand) && claim_live(dfd, &c);
		}
		if (d)
			closedir(d);
		if (!taken) {
			str_copy(out, cand, 24);
			return 0;
		}
	}
	return kerr_set(err, KERR_LIMIT,
	                "every /%u of %s is another data directory's: give this one a range "
	                "with a 'public-addresses' line in its topology",
	                DAEMON_PUBLIC_SLICE, DAEMON_PUBLIC_DEFAULT);
}

int daemon_claim(const char *data_dir, const char *host_id, char public_range[24], int *hold,
                 struct kerr **err)
{
	_cleanup_close_ int dfd = -1, lockfd = -1;
	_cleanup_free_ char *real = realpath(data_dir, NULL);
	_cleanup_free_ char *text = NULL;
	struct dirent *de;
	DIR *d;
	int r = 0;

	*hold = -1;
	if (!real)
		return kerr_errno(err, errno, "cannot resolve '%s'", data_dir);
	if (claims_open(&dfd, &lockfd, err) < 0)
		return -1;
	if (!public_range[0] && range_pick(dfd, real, public_range, err) < 0)
		return -1;
	d = fs_opendir_dup(dfd);
	if (!d)
		return kerr_errno(err, errno, "cannot read '%s'", claims_dir());
	while (r == 0 && (de = readdir(d))) {
		struct claim c;

		if (!claim_read(dfd, de->d_name, &c) || !strcmp(c.data, real) ||
		    !claim_live(dfd, &c))
			continue;
		if (!strcmp(c.id, host_id))
			r = kerr_set(
			    err, KERR_CONFLICT,
			    "cannot serve '%s': its host id '%s' is the one of the data "
			    "directory '%s' on this host (a copy? initialize one of them with "
			    "another 'host-id' line in its topology)",
			    data_dir, host_id, c.data);
		else if (ranges_overlap(c.range, public_range))
			r = kerr_set(
			    err, KERR_CONFLICT,
			    "cannot serve '%s': its public addresses %s overlap %s of the data "
			    "directory '%s' on this host (kiln down --data that one, or give "
			    "this one another range with a 'public-addresses' line in its "
			    "topology)",
			    data_dir, public_range, c.range, c.data);
	}
	closedir(d);
	if (r < 0)
		return -1;
	text = xasprintf("%s\n%s\n", real, public_range);
	if (fs_write_atomic(dfd, host_id, text, strlen(text), "claim", err) < 0)
		return -1;
	*hold = openat(dfd, host_id, O_RDONLY | O_CLOEXEC);
	if (*hold < 0 || flock(*hold, LOCK_SH) < 0)
		return kerr_errno(err, errno, "cannot hold the claim '%s/%s'", claims_dir(),
		                  host_id);
	return 0;
}

int daemon_claim_release(const char *host_id, struct kerr **err)
{
	_cleanup_close_ int dfd = -1, lockfd = -1;

	if (!net_host_id_valid(host_id))
		return kerr_set(err, KERR_INVALID, "'%s' is not a host id", host_id);
	if (claims_open(&dfd, &lockfd, err) < 0)
		return -1;
	if (unlinkat(dfd, host_id, 0) < 0 && errno != ENOENT)
		return kerr_errno(err, errno, "cannot remove the host claim '%s/%s'", claims_dir(),
		                  host_id);
	return 0;
}

bool daemon_range_claimed(const char *range)
{
	_cleanup_close_ int dfd = -1, lockfd = -1;
	struct dirent *de;
	bool claimed = false;
	DIR *d;

	if (claims_open(&dfd, &lockfd, NULL) < 0)
		return false;
	d = fs_opendir_dup(dfd);
	while (d && !claimed && (de = readdir(d))) {
		struct claim c;

		claimed = claim_read(dfd, de->d_name, &c) && ranges_overlap(c.range, range) &&
		          claim_live(dfd, &c);
	}
	if (d)
		closedir(d);
	return claimed;
}
