/* kiln account: create and list the accounts of a data directory and their access keys. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cloud/cloud.h"
#include "options.h"
#include "util/cleanup.h"
#include "util/banned.h"

#define USAGE_ACCOUNT                                                                              \
	"kiln account create NAME [--account-id ID] [--access-key KEY --secret-key SECRET] "       \
	"[--data DIR]\n"                                                                           \
	"       kiln account ls [--data DIR]"

int cmd_account(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *data = NULL, *id = NULL, *key = NULL, *secret = NULL;
	const struct cli_option create_opts[] = {
	    OPT_STRING("account-id", "ID", &id, "the 12-digit id (else a new one)"),
	    OPT_STRING("access-key", "KEY", &key, "the access key id (else a new one)"),
	    OPT_STRING("secret-key", "SECRET", &secret, "the secret key (with --access-key)"),
	    OPT_STRING("data", "DIR", &data, "the data directory"),
	    OPT_END(),
	};
	const struct cli_option ls_opts[] = {
	    OPT_STRING("data", "DIR", &data, "the data directory"),
	    OPT_END(),
	};
	bool create;
	struct cloud *cl;
	int r;

	if (argc < 2)
		return cli_usage(USAGE_ACCOUNT, "'account' needs 'create' or 'ls'");
	create = !strcmp(argv[1], "create");
	if (!create && strcmp(argv[1], "ls"))
		return cli_usage(USAGE_ACCOUNT, "unknown account subcommand '%s'", argv[1]);
	if (cli_parse_options(argc - 1, argv + 1, create ? create_opts : ls_opts, USAGE_ACCOUNT,
	                      0) != (create ? 1 : 0))
		return cli_usage(USAGE_ACCOUNT, "'account %s' takes %s", argv[1],
		                 create ? "NAME" : "no arguments");
	if (cloud_open(cli_data_dir(data), &cl, &err) < 0)
		return cli_fail(err);
	if (create) {
		struct account a;
		char sec[SECRET_KEY_LEN + 1];
		r = cloud_account_create(cl, argv[2], id, key, secret, &a, sec, &err);
		if (r == 0 && key && cloud_access_key_weak(key, secret))
			fprintf(
			    stderr,
			    "kiln: warning: the keys of account '%s' are easy to guess (EC2's are "
			    "20 and 40 random characters): keep this endpoint to yourself\n",
			    a.name);
		if (r == 0)
			printf(
			    "account %s (%s)\naws_access_key_id = %s\naws_secret_access_key = %s\n",
			    a.name, a.id, a.access_key, sec);
	} else {
		_cleanup_free_ struct account *v = NULL;
		size_t n;
		r = cloud_account_list(cl, &v, &n, &err);
		if (r == 0) {
			printf("%-14s %-20s %-10s %s\n", "ACCOUNT", "NAME", "ALIAS", "ACCESS KEY");
			for (size_t i = 0; i < n; i++)
				printf("%-14s %-20s %-10s %s\n", v[i].id, v[i].name,
				       v[i].alias[0] ? v[i].alias : "-", v[i].access_key);
		}
	}
	cloud_close(cl);
	return r < 0 ? cli_fail(err) : 0;
}
