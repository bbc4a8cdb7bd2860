/* kiln host: what the host carries for kiln (VPC route, forwarding, the filter and NAT, bridges
 * and the routes through them, pools). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"
#include "cloud/cloud.h"
#include "daemon/daemon.h"
#include "net/net.h"
#include "pool/pool.h"
#include "runtime/runtime.h"
#include "util/cleanup.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define USAGE_HOST                                                                                 \
	"kiln host up [--vpc CIDR] [--no-nat]\n"                                                   \
	"       kiln host down [--data DIR] [--vpc CIDR] [--run DIR]... [--pool DIR]..."
#define DEFAULT_VPC DAEMON_PUBLIC_DEFAULT

static int host_up(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *vpc = DEFAULT_VPC;
	bool no_nat = false;
	const struct cli_option opts[] = {
	    OPT_STRING("vpc", "CIDR", &vpc, "the addresses of instances (" DEFAULT_VPC ")"),
	    OPT_BOOL("no-nat", &no_nat, "no NAT to the outside"),
	    OPT_END(),
	};

	if (cli_parse_options(argc, argv, opts, USAGE_HOST, 0) != 0)
		return cli_usage(USAGE_HOST, "'host up' takes no arguments");
	if (daemon_host_up(NULL, vpc, !no_nat, &err) < 0)
		return cli_fail(err);
	return 0;
}

/* Stop every instance of a run directory, forced after its stop timeout, and release their
 * host id ranges. */
static int stop_all(const char *run_dir)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ char(*ids)[ID_MAX] = NULL;
	_cleanup_free_ char *self = cli_shim_path();
	_cleanup_free_ char *init = cli_init_path();
	struct runtime *rt;
	size_t n;
	int failed = 0;

	if (runtime_open(run_dir, self, init, &rt, &err) < 0 ||
	    runtime_list(rt, &ids, &n, &err) < 0) {
		runtime_close(rt);
		return cli_fail(err);
	}
	for (size_t i = 0; i < n; i++) {
		if (rt->ops->stop(rt, ids[i], false, 10, &err) < 0) {
			cli_fail(err);
			kerr_free(err);
			err = NULL;
			failed = 1;
		}
	}
	/* The host id ranges of the stopped ones go back (each takes one at its next start). */
	if (runtime_ids_recover(rt, false, &err) < 0) {
		cli_fail(err);
		failed = 1;
	}
	runtime_close(rt);
	return failed;
}

/* Delete the host's links whose names start with one of the prefixes (NULL-terminated). */
static int links_delete(const char *const *prefixes)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct dirent *de;
	int failed = 0;
	DIR *d = opendir("/sys/class/net");

	while (d && (de = readdir(d))) {
		bool ours = false;

		for (const char *const *p = prefixes; *p && !ours; p++)
			ours = !strncmp(de->d_name, *p, strlen(*p));
		if (ours && net_link_delete(de->d_name, &err) < 0) {
			cli_fail(err);
			kerr_free(err);
			err = NULL;
			failed = 1;
		}
	}
	if (d)
		closedir(d);
	return failed;
}

/* What a data directory's daemon put on the host and nothing else: its transit links, its
 * table of the host's filter, its range routed nowhere (unless another data directory's live
 * claim shares it), its claim. */
static int data_host_down(struct cloud *cl)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *id = cloud_host_id(cl);
	char prefix[NET_IFNAME_MAX], range[24];
	const char *prefixes[] = {prefix, NULL};
	int failed;

	net_transit_prefix(id, prefix);
	failed = links_delete(prefixes);
	if (net_firewall_delete(id, &err) < 0 || cloud_public_range(cl, range, &err) < 0 ||
	    daemon_claim_release(id, &err) < 0 ||
	    (range[0] && !daemon_range_claimed(range) &&
	     net_route_unreachable(range, false, &err) < 0)) {
		cli_fail(err);
		failed = 1;
	}
	return failed;
}

/* A data directory's instances (first pass) or pools and host set-up (second pass, after the
 * links are gone). The pools go whatever else fails, even with no database to read: they are
 * found in the mount table. */
static int data_down(const char *data, bool pools)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct cloud *cl;
	int failed = 0;

	if (!pools) {
		_cleanup_free_ char *run = xasprintf("%s/run", data);
		return access(run, F_OK) == 0 ? stop_all(run) : 0;
	}
	if (cloud_open(data, &cl, &err) < 0) {
		cli_fail(err);
		kerr_free(err);
		err = NULL;
		failed = 1;
	} else {
		/* The VPCs' namespaces (their transit links went with the host's links). */
		if (cloud_networks_down(cl, &err) < 0) {
			cli_fail(err);
			kerr_free(err);
			err = NULL;
			failed = 1;
		}
		failed |= data_host_down(cl);
		cloud_close(cl);
	}
	{
		/* DIR/regions/REGION/pools/ZONE: under regions, so that another data directory
		 * inside this one (DIR/sub) keeps its own. */
		_cleanup_free_ char *regions = xasprintf("%s/regions", data);
		if (pool_unmount_under(regions, &err) < 0) {
			cli_fail(err);
			failed = 1;
		}
	}
	return failed;
}

static int host_down(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *vpc = DEFAULT_VPC;
	struct cli_strings runs = {0}, pools = {0}, datas = {0};
	const struct cli_option opts[] = {
	    OPT_LIST("data", "DIR", &datas, "a data directory: its instances, pools and networks"),
	    OPT_STRING("vpc", "CIDR", &vpc, "the addresses of instances (" DEFAULT_VPC ")"),
	    OPT_LIST("run", "DIR", &runs, "a run directory whose instances stop"),
	    OPT_LIST("pool", "DIR", &pools, "a pool to unmount"),
	    OPT_END(),
	};
	static const char *const runtime_links[] = {NET_BRIDGE_PREFIX, NET_PORT_PREFIX, NULL};
	bool runtime;
	int failed = 0;

	if (cli_parse_options(argc, argv, opts, USAGE_HOST, 0) != 0)
		return cli_usage(USAGE_HOST, "'host down' takes no arguments");
	/* kiln host up's own (the runtime's bridges, its tables and route) only when asked for
	 * runs or pools, or with nothing named: --data alone touches that directory's alone. */
	runtime = runs.n || pools.n || !datas.n;
	for (size_t i = 0; i < runs.n; i++)
		failed |= stop_all(runs.items[i]);
	for (size_t i = 0; i < datas.n; i++)
		failed |= data_down(datas.items[i], false);
	/* Bridges (with the routes to instances through them), and any veth a crashed shim left.
	 * The filter and the VPC route go last of all. */
	if (runtime)
		failed |= links_delete(runtime_links);
	for (size_t i = 0; i < pools.n; i++)
		if (pool_unmount(pools.items[i], &err) < 0) {
			cli_fail(err);
			kerr_free(err);
			err = NULL;
			failed = 1;
		}
	for (size_t i = 0; i < datas.n; i++)
		failed |= data_down(datas.items[i], true);
	if (runtime &&
	    (net_firewall_delete(NULL, &err) < 0 ||
	     (!daemon_range_claimed(vpc) && net_route_unreachable(vpc, false, &err) < 0))) {
		cli_fail(err);
		failed = 1;
	}
	cli_strings_release(&runs);
	cli_strings_release(&pools);
	cli_strings_release(&datas);
	return failed;
}

/* kiln down: the same as kiln host down. */
int cmd_down(int argc, char **argv)
{
	return host_down(argc, argv);
}

int cmd_host(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "up"))
		return host_up(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "down"))
		return host_down(argc - 1, argv + 1);
	return cli_usage(USAGE_HOST, "'host' needs 'up' or 'down'");
}
