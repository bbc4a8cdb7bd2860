/* kiln pool: operate a volume pool directly (operators, tests, benchmarks). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "pool/pool.h"
#include "util/cleanup.h"
#include "util/banned.h"

#define USAGE_POOL                                                                                 \
	"kiln pool open DIR [--size SIZE] [--no-loop]\n"                                           \
	"       kiln pool create DIR NAME SIZE [--from DIR]\n"                                     \
	"       kiln pool clone DIR SOURCE_FILE NAME\n"                                            \
	"       kiln pool grow DIR NAME SIZE\n"                                                    \
	"       kiln pool rm DIR NAME\n"                                                           \
	"       kiln pool shadow DIR NAME\n"                                                       \
	"       kiln pool unmount DIR"

int cmd_pool(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct pool_opts po = {0};
	const char *from = NULL, *sub;
	const struct cli_option open_opts[] = {
	    OPT_SIZE("size", "SIZE", &po.loop_size, "the loop-mounted XFS file's size"),
	    OPT_BOOL("no-loop", &po.no_loop, "use the directory as it is, without a loop mount"),
	    OPT_END(),
	};
	const struct cli_option create_opts[] = {
	    OPT_STRING("from", "DIR", &from, "copy the files of DIR into the new volume"),
	    OPT_END(),
	};
	static const struct {
		const char *name;
		int nargs;
	} shapes[] = {{"open", 1}, {"create", 3}, {"clone", 3},  {"grow", 3},
	              {"rm", 2},   {"shadow", 2}, {"unmount", 1}};
	struct pool *p = NULL;
	uint64_t size = 0;
	int r = 0, nargs;
	char **a;
	size_t k;

	if (argc < 2)
		return cli_usage(USAGE_POOL, "'pool' needs a subcommand");
	sub = argv[1];
	for (k = 0; k < ARRAY_SIZE(shapes); k++)
		if (!strcmp(sub, shapes[k].name))
			break;
	if (k == ARRAY_SIZE(shapes))
		return cli_usage(USAGE_POOL, "unknown pool subcommand '%s'", sub);
	nargs = cli_parse_options(argc - 1, argv + 1,
	                          !strcmp(sub, "open")     ? open_opts
	                          : !strcmp(sub, "create") ? create_opts
	                                                   : cli_no_options,
	                          USAGE_POOL, 0);
	a = argv + 2;
	if (!strcmp(sub, "unmount")) {
		if (nargs != 1)
			return cli_usage(USAGE_POOL, "'pool unmount' takes DIR");
		return pool_unmount(a[0], &err) < 0 ? cli_fail(err) : 0;
	}
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
