/* kiln image import: a directory or tarball becomes an ext4 volume in a pool and, with a
 * store, a snapshot that the control plane can register as an image. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "options.h"
#include "pool/pool.h"
#include "store/store.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/id.h"
#include "util/spawn.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define USAGE_IMAGE                                                                                \
	"kiln image import SOURCE_DIR_OR_TARBALL --pool DIR --name NAME [--size SIZE] [--store "   \
	"DIR]"
static int import(const char *src, const char *pool_dir, const char *name, uint64_t size,
                  const char *store_dir)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct store_snapshot_result res;
	struct pool *p = NULL;
	int r = -1;

	if (pool_open(pool_dir, NULL, &p, &err) < 0)
		return cli_fail(err);
	if (pool_import(p, name, src, size, &err) < 0)
		goto out;
	if (store_dir) {
		_cleanup_free_ char *vol = pool_path(p, name);
		struct store_snapshot_opts o = {0};
		struct store *s;
		if (store_open(store_dir, false, &s, &err) < 0)
			goto out;
		r = store_snapshot(s, vol, &o, &res, &err);
		store_close(s);
		if (r < 0)
			goto out;
		printf("%s\n", res.id);
	}
	r = 0;
out:
	pool_close(p);
	return r < 0 ? cli_fail(err) : 0;
}

int cmd_image(int argc, char **argv)
{
	const char *pool = NULL, *name = NULL, *store = NULL;
	uint64_t size = 0;
	const struct cli_option opts[] = {
	    OPT_STRING("pool", "DIR", &pool, "the pool to make the volume in"),
	    OPT_STRING("name", "NAME", &name, "the volume's name in the pool"),
	    OPT_SIZE("size", "SIZE", &size, "the volume's size (else what the files need)"),
	    OPT_STRING("store", "DIR", &store, "also snapshot it into this store"),
	    OPT_END(),
	};

	if (argc < 2 || strcmp(argv[1], "import"))
		return cli_usage(USAGE_IMAGE, "'image' needs 'import'");
	if (cli_parse_options(argc - 1, argv + 1, opts, USAGE_IMAGE, 0) != 1 || !pool || !name)
		return cli_usage(USAGE_IMAGE, "'image import' takes SOURCE, --pool and --name");
	return import(argv[2], pool, name, size, store);
}
