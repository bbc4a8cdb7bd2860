/* kiln init: a new data directory (database, regions, accounts, the aws CLI's files). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"
#include "cloud/cloud.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define USAGE_INIT "kiln init [--data DIR] [--topology FILE] [--images DIR | --no-images]"

const char *cli_data_dir(const char *given)
{
	const char *env = getenv("KILN_DATA");

	return given ? given : env && *env ? env : "/var/lib/kiln";
}

int cmd_init(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ uint8_t *topo = NULL;
	_cleanup_free_ char *default_images = NULL;
	const char *data = NULL, *topo_file = NULL, *images = NULL;
	bool no_images = false;
	const struct cli_option opts[] = {
	    OPT_STRING("data", "DIR", &data, "the data directory (else $KILN_DATA, /var/lib/kiln)"),
	    OPT_STRING("topology", "FILE", &topo_file, "regions, zones and limits"),
	    OPT_STRING("images", "DIR", &images,
	               "base images to register (else those built or installed)"),
	    OPT_BOOL("no-images", &no_images, "register no base images"),
	    OPT_END(),
	};
	size_t len;

	if (cli_parse_options(argc, argv, opts, USAGE_INIT, 0) != 0)
		return cli_usage(USAGE_INIT, "'init' takes no arguments");
	data = cli_data_dir(data);
	if (topo_file && fs_read_file(AT_FDCWD, topo_file, 1 << 20, &topo, &len, &err) < 0)
		return cli_fail(err);
	if (!images && !no_images) {
		/* The images `make images` built beside this binary, or those an install put in
		 * PREFIX/share/kiln/images, when there are any. */
		_cleanup_free_ char *self = cli_self_exe();
		_cleanup_free_ char *installed = NULL;
		char *slash = strrchr(self, '/');
		if (slash)
			*slash = '\0';
		default_images = xasprintf("%s/images", slash ? self : ".");
		installed = xasprintf("%s/../share/kiln/images", slash ? self : ".");
		if (access(default_images, R_OK) < 0) {
			free(default_images);
			default_images = steal_ptr(installed);
		}
		if (access(default_images, R_OK) == 0)
			images = default_images;
	}
	if (cloud_init(data, (const char *)topo, no_images ? NULL : images, &err) < 0)
		return cli_fail(err);
	printf("initialized %s\n"
	       "  export AWS_SHARED_CREDENTIALS_FILE=%s/credentials AWS_CONFIG_FILE=%s/config\n",
	       data, data, data);
	return 0;
}
