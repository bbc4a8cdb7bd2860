/* kiln init and kiln account: the data directory and its accounts. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cloud/cloud.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define USAGE_INIT "kiln init [--data DIR] [--topology FILE] [--images DIR | --no-images]"
#define USAGE_ACCOUNT                                                                              \
	"kiln account create NAME [--account-id ID] [--access-key KEY --secret-key SECRET] [--data DIR]\n" \
	"       kiln account ls [--data DIR]"

const char *cli_data_dir(const char *given)
{
	const char *env = getenv("KILN_DATA");

	return given ? given : env && *env ? env : "/var/lib/kiln";
}

int cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},   {"topology", required_argument, NULL, 't'},
		{"images", required_argument, NULL, 'i'}, {"no-images", no_argument, NULL, 'n'},
		{NULL, 0, NULL, 0}};
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ uint8_t *topo = NULL;
	_cleanup_free_ char *default_images = NULL;
	const char *data = NULL, *topo_file = NULL, *images = NULL;
	bool no_images = false;
	size_t len;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'd')
			data = optarg;
		else if (c == 't')
			topo_file = optarg;
		else if (c == 'i')
			images = optarg;
		else if (c == 'n')
			no_images = true;
		else
			return cli_usage(USAGE_INIT, "unknown option '%s'", argv[optind - 1]);
	}
	if (optind != argc)
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

int cmd_account(int argc, char **argv)
{
	static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
					     {"account-id", required_argument, NULL, 'i'},
					     {"access-key", required_argument, NULL, 'k'},
					     {"secret-key", required_argument, NULL, 's'},
					     {NULL, 0, NULL, 0}};
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *data = NULL, *id = NULL, *key = NULL, *secret = NULL, *sub;
	struct cloud *cl;
	int c, r;

	if (argc < 2)
		return cli_usage(USAGE_ACCOUNT, "'account' needs 'create' or 'ls'");
	sub = argv[1];
	argc--;
	argv++;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'd')
			data = optarg;
		else if (c == 'i' && !strcmp(sub, "create"))
			id = optarg;
		else if (c == 'k' && !strcmp(sub, "create"))
			key = optarg;
		else if (c == 's' && !strcmp(sub, "create"))
			secret = optarg;
		else
			return cli_usage(USAGE_ACCOUNT, "bad option '%s' for 'account %s'", argv[optind - 1], sub);
	}
	if (strcmp(sub, "create") && strcmp(sub, "ls"))
		return cli_usage(USAGE_ACCOUNT, "unknown account subcommand '%s'", sub);
	if (argc - optind != (!strcmp(sub, "create") ? 1 : 0))
		return cli_usage(USAGE_ACCOUNT, "'account %s' takes %s", sub, !strcmp(sub, "create") ? "NAME" : "no arguments");
	if (cloud_open(cli_data_dir(data), &cl, &err) < 0)
		return cli_fail(err);
	if (!strcmp(sub, "create")) {
		struct account a;
		char sec[SECRET_KEY_LEN + 1];
		r = cloud_account_create(cl, argv[optind], id, key, secret, &a, sec, &err);
		if (r == 0)
			printf("account %s (%s)\naws_access_key_id = %s\naws_secret_access_key = %s\n", a.name, a.id,
			       a.access_key, sec);
	} else {
		_cleanup_free_ struct account *v = NULL;
		size_t n;
		r = cloud_account_list(cl, &v, &n, &err);
		if (r == 0) {
			printf("%-14s %-20s %-10s %s\n", "ACCOUNT", "NAME", "ALIAS", "ACCESS KEY");
			for (size_t i = 0; i < n; i++)
				printf("%-14s %-20s %-10s %s\n", v[i].id, v[i].name, v[i].alias[0] ? v[i].alias : "-",
				       v[i].access_key);
		}
	}
	cloud_close(cl);
	return r < 0 ? cli_fail(err) : 0;
}
