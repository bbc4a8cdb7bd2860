/* kiln serve: the EC2 Query API daemon for every region of a data directory (src/daemon). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "daemon/daemon.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/banned.h"

#define USAGE_SERVE                                                                                \
	"kiln serve [--data DIR] [--listen 127.0.0.1:8773] [--max-connections N]\n"                \
	"       [--max-connections-per-ip N] [--timeout SECONDS] [--log-level LEVEL]"

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
	static const struct option opts[] = {
	    {"data", required_argument, NULL, 'd'},
	    {"listen", required_argument, NULL, 'l'},
	    {"max-connections", required_argument, NULL, 'c'},
	    {"max-connections-per-ip", required_argument, NULL, 'p'},
	    {"timeout", required_argument, NULL, 't'},
	    {"log-level", required_argument, NULL, 'L'},
	    {NULL, 0, NULL, 0}};
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ char *shim = cli_shim_path();
	_cleanup_free_ char *init = cli_init_path();
	struct daemon_config cfg = {
	    .http = {.listen = "127.0.0.1:8773"}, .shim = shim, .init = init, .log_level = -1};
	const char *data = NULL;
	struct daemon *d;
	int c, idx = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
		unsigned *limit = c == 'c'   ? &cfg.http.max_connections
		                  : c == 'p' ? &cfg.http.max_per_ip
		                  : c == 't' ? &cfg.http.timeout_s
		                             : NULL;
		if (c == 'd')
			data = optarg;
		else if (c == 'l')
			cfg.http.listen = optarg;
		else if (c == 'L' && (cfg.log_level = log_level_parse(optarg)) < 0)
			return cli_usage(
			    USAGE_SERVE,
			    "bad value '%s' for '--log-level' (error, warning, info, debug)",
			    optarg);
		else if (c == 'L')
			continue;
		else if (!limit)
			return cli_usage(USAGE_SERVE, "unknown option '%s'", argv[optind - 1]);
		else if (limit_arg(optarg, c == 't' ? 86400 : 65536, limit) < 0)
			return cli_usage(USAGE_SERVE, "bad value '%s' for '--%s'", optarg,
			                 opts[idx].name);
	}
	if (optind != argc)
		return cli_usage(USAGE_SERVE, "'serve' takes no arguments");
	cfg.data_dir = cli_data_dir(data);
	if (daemon_start(&cfg, &d, &err) < 0)
		return cli_fail(err);
	printf("kiln: serving %s on port %u\n", cfg.data_dir, (unsigned)daemon_port(d));
	fflush(stdout);
	daemon_wait(d);
	return 0;
}
