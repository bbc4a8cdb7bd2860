/* kiln serve: the EC2 Query API daemon for every region of a data directory (src/daemon). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "daemon/daemon.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/banned.h"

#define USAGE_SERVE                                                                                \
	"kiln serve [--data DIR] [--listen 127.0.0.1:8773] [--max-connections N]\n"                \
	"       [--max-connections-per-ip N] [--timeout SECONDS] [--log-level LEVEL]\n"            \
	"       [--gc-interval SECONDS] [--rate-limit RATE[:BURST]]\n"                             \
	"       [--rate-limit-mutating RATE[:BURST]] [--test-clock]\n"                             \
	"       [--region NAME --regions FILE]"

int cmd_serve(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ char *shim = cli_shim_path();
	_cleanup_free_ char *init = cli_init_path();
	struct daemon_config cfg = {.http = {.listen = "127.0.0.1:8773"},
	                            .shim = shim,
	                            .init = init,
	                            .log_level = -1,
	                            .gc_interval_s = DAEMON_GC_INTERVAL_DEFAULT};
	const char *data = NULL, *level = NULL, *rate[API_RATE_CLASSES] = {NULL};
	const struct cli_option opts[] = {
	    OPT_STRING("data", "DIR", &data, "the data directory"),
	    OPT_STRING("listen", "ADDR:PORT", &cfg.http.listen, "where to listen (127.0.0.1:8773)"),
	    OPT_LIMIT("max-connections", "N", &cfg.http.max_connections, 65536,
	              "connections at once, in all"),
	    OPT_LIMIT("max-connections-per-ip", "N", &cfg.http.max_per_ip, 65536,
	              "connections at once from one address"),
	    OPT_LIMIT("timeout", "SECONDS", &cfg.http.timeout_s, 86400,
	              "how long a connection may idle or a request take to arrive"),
	    OPT_STRING("log-level", "LEVEL", &level, "error, warning, info or debug"),
	    OPT_UINT("gc-interval", "SECONDS", &cfg.gc_interval_s,
	             "collect a store's garbage this long after its last deletion, and at most "
	             "this often (60; 0: never)"),
	    OPT_STRING("region", "NAME", &cfg.region,
	               "serve this region only: one of several deployments"),
	    OPT_STRING("regions", "FILE", &cfg.regions_file,
	               "with --region: every region's endpoint and the deployments' key"),
	    OPT_STRING("rate-limit", "RATE[:BURST]", &rate[API_RATE_DESCRIBE],
	               "per account, requests per second of actions that change nothing, and "
	               "how many may come at once (RATE); beyond: 503 RequestLimitExceeded "
	               "(0: no limit, the default)"),
	    OPT_STRING("rate-limit-mutating", "RATE[:BURST]", &rate[API_RATE_MUTATING],
	               "the same for actions that change something (0: no limit, the default)"),
	    OPT_BOOL("test-clock", &cfg.test_clock,
	             "for tests only: let 'kiln clock advance' move the metering clock forward"),
	    OPT_END(),
	};
	struct daemon *d;

	if (cli_parse_options(argc, argv, opts, USAGE_SERVE, 0) != 0)
		return cli_usage(USAGE_SERVE, "'serve' takes no arguments");
	if (level && (cfg.log_level = log_level_parse(level)) < 0)
		return cli_usage(USAGE_SERVE,
		                 "bad value '%s' for '--log-level' (error, warning, info, debug)",
		                 level);
	if (!cfg.region != !cfg.regions_file)
		return cli_usage(USAGE_SERVE, "'--region' and '--regions' go together");
	for (size_t c = 0; c < API_RATE_CLASSES; c++)
		if (rate[c] && api_rate_limit_parse(rate[c], &cfg.rate.cls[c], &err) < 0)
			return cli_usage(USAGE_SERVE, "%s", err->msg);
	cfg.data_dir = cli_data_dir(data);
	if (daemon_start(&cfg, &d, &err) < 0)
		return cli_fail(err);
	printf("kiln: serving %s on port %u\n", cfg.data_dir, (unsigned)daemon_port(d));
	fflush(stdout);
	daemon_wait(d);
	return 0;
}
