/* kiln pool: operate a volume pool directly (operators, tests, benchmarks). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "pool/pool.h"
#include "util/cleanup.h"
#include "util/banned.h"

#define USAGE_POOL                                                             \
	"kiln pool open DIR [--size SIZE] [--no-loop]\n"                       \
	"       kiln pool create DIR NAME SIZE [--from DIR]\n"                 \
	"       kiln pool clone DIR SOURCE_FILE NAME\n"                        \
	"       kiln pool grow DIR NAME SIZE\n"                                \
	"       kiln pool rm DIR NAME\n"                                       \
	"       kiln pool shadow DIR NAME\n"                                   \
	"       kiln pool unmount DIR"

int cmd_pool(int argc, char **argv)
{
	static const struct option opts[] = {{"size", required_argument, NULL, 's'},
					     {"no-loop", no_argument, NULL, 'n'},
					     {"from", required_argument, NULL, 'f'},
					     {NULL, 0, NULL, 0}};
	_cleanup_kerr_ struct kerr *err = NULL;
	struct pool_opts po = {0};
	const char *from = NULL, *sub;
	struct pool *p = NULL;
	uint64_t size = 0;
	int c, r = 0, nargs;

	if (argc < 2)
		return cli_usage(USAGE_POOL, "'pool' needs a subcommand");
	sub = argv[1];
	argc--;
	argv++;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's' && !strcmp(sub, "open") && cli_parse_size(optarg, &po.loop_size) == 0)
			continue;
		if (c == 'n' && !strcmp(sub, "open"))
			po.no_loop = true;
		else if (c == 'f' && !strcmp(sub, "create"))
			from = optarg;
		else
			return cli_usage(USAGE_POOL, "bad option '%s' for 'pool %s'", argv[optind - 1], sub);
	}
	nargs = argc - optind;
	char **a = argv + optind;
	if (!strcmp(sub, "unmount")) {
		if (nargs != 1)
			return cli_usage(USAGE_POOL, "'pool unmount' takes DIR");
		return pool_unmount(a[0], &err) < 0 ? cli_fail(err) : 0;
	}
	static const struct {
		const char *name;
		int nargs;
	} shapes[] = {{"open", 1}, {"create", 3}, {"clone", 3}, {"grow", 3}, {"rm", 2}, {"shadow", 2}};
	size_t k;
	for (k = 0; k < ARRAY_SIZE(shapes); k++)
		if (!strcmp(sub, shapes[k].name))
			break;
	if (k == ARRAY_SIZE(shapes))
		return cli_usage(USAGE_POOL, "unknown pool subcommand '%s'", sub);
	if (nargs != shapes[k].nargs)
		return cli_usage(USAGE_POOL, "'pool %s' takes %d arguments", sub, shapes[k].nargs);
	if ((!strcmp(sub, "create") || !strcmp(sub, "grow")) && cli_parse_size(a[2], &size) < 0)
		return cli_usage(USAGE_POOL, "'%s' is not a size", a[2]);
	if (pool_open(a[0], &po, &p, &err) < 0)
		return cli_fail(err);
	if (!strcmp(sub, "open"))
		printf("%s: %s%s\n", a[0], p->reflink ? "reflink clones" : "copies (no reflink)",
		       p->loop_backed ? ", loop-mounted XFS" : "");
	else if (!strcmp(sub, "create"))
		r = pool_create_volume(p, a[1], size, from, &err);
	else if (!strcmp(sub, "clone"))
		r = pool_clone(p, a[1], a[2], &err);
	else if (!strcmp(sub, "grow"))
		r = pool_grow(p, a[1], size, &err);
	else if (!strcmp(sub, "shadow"))
		r = pool_take_shadow(p, a[1], &err);
	else
		r = pool_remove(p, a[1], &err);
	pool_close(p);
	return r < 0 ? cli_fail(err) : 0;
}
