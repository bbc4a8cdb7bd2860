/* kiln serve: the EC2 Query API daemon for every region of a data directory. */
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "api/server.h"
#include "cli.h"
#include "net/net.h"
#include "util/cleanup.h"
#include "util/banned.h"

#define VPC_CIDR "172.31.0.0/16"
#define USAGE_SERVE                                                                                \
	"kiln serve [--data DIR] [--listen 127.0.0.1:8773] [--max-connections N]\n"                 \
	"       [--max-connections-per-ip N] [--timeout SECONDS]"

/* The number of a limit option: 1 to max. */
static int limit_arg(const char *s, unsigned max, unsigned *out)
{
	uint64_t v;

	if (cli_parse_size(s, &v) < 0 || !v || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
					     {"listen", required_argument, NULL, 'l'},
					     {"max-connections", required_argument, NULL, 'c'},
					     {"max-connections-per-ip", required_argument, NULL, 'p'},
					     {"timeout", required_argument, NULL, 't'},
					     {NULL, 0, NULL, 0}};
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *data = NULL;
	struct api_http_config http = {.listen = "127.0.0.1:8773"};
	struct api_server *srv;
	struct cloud *cloud;
	sigset_t stop;
	int c, sig, idx = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
		unsigned *limit = c == 'c'   ? &http.max_connections
				  : c == 'p' ? &http.max_per_ip
				  : c == 't' ? &http.timeout_s
					     : NULL;
		if (c == 'd')
			data = optarg;
		else if (c == 'l')
			http.listen = optarg;
		else if (!limit)
			return cli_usage(USAGE_SERVE, "unknown option '%s'", argv[optind - 1]);
		else if (limit_arg(optarg, c == 't' ? 86400 : 65536, limit) < 0)
			return cli_usage(USAGE_SERVE, "bad value '%s' for '--%s'", optarg, opts[idx].name);
	}
	if (optind != argc)
		return cli_usage(USAGE_SERVE, "'serve' takes no arguments");
	/* Block the stop signals before any thread starts, so that only sigwait sees them. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Answers of a megabyte come and go all the time: keep such blocks in the heap for reuse
	 * instead of mapping (and faulting in) fresh pages for each. */
	mallopt(M_MMAP_THRESHOLD, 64 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	if (cloud_open(cli_data_dir(data), &cloud, &err) < 0)
		return cli_fail(err);
	{
		_cleanup_free_ char *shim = cli_shim_path();
		_cleanup_free_ char *init = cli_init_path();
		/* The host first (the VPC range routed nowhere before any instance exists), then
		 * whatever was in flight when the daemon last stopped. */
		if (net_route_unreachable(VPC_CIDR, true, &err) < 0 || net_forwarding_enable(&err) < 0 ||
		    net_firewall_set(VPC_CIDR, true, &err) < 0 || cloud_attach_runtime(cloud, shim, init, &err) < 0 ||
		    cloud_reconcile(cloud, &err) < 0) {
			cloud_close(cloud);
			return cli_fail(err);
		}
	}
	if (api_server_start(cloud, &http, &srv, &err) < 0) {
		cloud_close(cloud);
		return cli_fail(err);
	}
	printf("kiln: serving %s on port %u\n", cli_data_dir(data), (unsigned)api_server_port(srv));
	fflush(stdout);
	sigwait(&stop, &sig);
	api_server_stop(srv);
	cloud_close(cloud);
	return 0;
}
