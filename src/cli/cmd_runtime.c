/* kiln runtime: run instances directly on this host, without the control plane (operators,
 * tests, benchmarks). Addresses, bridges and ids are the caller's to choose. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"
#include "runtime/runtime.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/str.h"
#include "util/banned.h"

#define USAGE_RUNTIME                                                                              \
	"kiln runtime run RUN_DIR --volume FILE --address IP/PREFIX --gateway IP --bridge NAME\n"  \
	"                 [--id i-…] [--type t2.micro] [--zone Z] [--region R] [--image-id "     \
	"ami-…]\n"                                                                               \
	"                 [--hostname H] [--user-data FILE] [--ssh-key PUBKEY_FILE] [--mac MAC]\n" \
	"                 [--stop-timeout S]\n"                                                    \
	"       kiln runtime start|reboot RUN_DIR ID\n"                                            \
	"       kiln runtime stop RUN_DIR ID [--force] [--timeout S]\n"                            \
	"       kiln runtime exec RUN_DIR ID -- COMMAND [ARG...]\n"                                \
	"       kiln runtime status RUN_DIR [ID]\n"                                                \
	"       kiln runtime console RUN_DIR ID\n"                                                 \
	"       kiln runtime rm RUN_DIR ID\n"                                                      \
	"       kiln runtime clone-root RUN_DIR ID DEST_FILE"

static int open_runtime(const char *dir, struct runtime **rt)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ char *self = cli_shim_path();
	_cleanup_free_ char *init = cli_init_path();

	if (runtime_open(dir, self, init, rt, &err) < 0)
		return cli_fail(err);
	return 0;
}

/* "172.31.0.10/20" in region us-east-1 is "ip-172-31-0-10.ec2.internal", as EC2 names it. */
static void default_hostname(const struct instance_spec *spec, char *out, size_t size)
{
	char ip[24];

	str_copy(ip, spec->address, sizeof(ip));
	ip[strcspn(ip, "/")] = '\0';
	for (char *c = ip; *c; c++)
		if (*c == '.')
			*c = '-';
	if (!strcmp(spec->region, "us-east-1"))
		snprintf(out, size, "ip-%s.ec2.internal", ip);
	else
		snprintf(out, size, "ip-%s.%s.compute.internal", ip, spec->region);
}

static int do_run(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct instance_spec spec = {.stop_timeout = 10};
	const struct cli_option opts[] = {
	    OPT_BUF("volume", "FILE", spec.root_volume, "the root volume"),
	    OPT_BUF("address", "IP/PREFIX", spec.address, "the instance's address"),
	    OPT_BUF("gateway", "IP", spec.gateway, "its default route"),
	    OPT_BUF("bridge", "NAME", spec.bridge, "the bridge its veth joins"),
	    OPT_BUF("id", "i-…", spec.id, "its id (else a new one)"),
	    OPT_BUF("type", "T", spec.type, "instance type (t2.micro)"),
	    OPT_BUF("zone", "Z", spec.zone, "availability zone (us-east-1a)"),
	    OPT_BUF("region", "R", spec.region, "region (us-east-1)"),
	    OPT_BUF("image-id", "ami-…", spec.image_id, "the image id the instance reports"),
	    OPT_BUF("hostname", "H", spec.hostname, "host name (else EC2's name for the address)"),
	    OPT_BUF("user-data", "FILE", spec.user_data, "user data"),
	    OPT_BUF("ssh-key", "PUBKEY_FILE", spec.public_key, "public key to install"),
	    OPT_BUF("mac", "MAC", spec.mac, "the veth's MAC address"),
	    OPT_UINT("stop-timeout", "S", &spec.stop_timeout, "seconds a clean stop may take (10)"),
	    OPT_END(),
	};
	struct runtime *rt;
	int r;

	str_copy(spec.type, "t2.micro", sizeof(spec.type));
	str_copy(spec.region, "us-east-1", sizeof(spec.region));
	str_copy(spec.zone, "us-east-1a", sizeof(spec.zone));
	if (cli_parse_options(argc, argv, opts, USAGE_RUNTIME, 0) != 1)
		return cli_usage(USAGE_RUNTIME, "'runtime run' takes RUN_DIR");
	if (!spec.root_volume[0] || !spec.address[0] || !spec.gateway[0] || !spec.bridge[0])
		return cli_usage(USAGE_RUNTIME,
		                 "'runtime run' needs --volume, --address, --gateway and --bridge");
	if (!instance_type_find(spec.type))
		return cli_usage(USAGE_RUNTIME, "unknown instance type '%s'", spec.type);
	if (!spec.id[0])
		id_new("i", spec.id);
	if (!spec.hostname[0])
		default_hostname(&spec, spec.hostname, sizeof(spec.hostname));
	if (spec.root_volume[0] != '/') {
		_cleanup_free_ char *abs = realpath(spec.root_volume, NULL);
		if (!abs)
			return cli_usage(USAGE_RUNTIME, "no volume '%s'", spec.root_volume);
		str_copy(spec.root_volume, abs, sizeof(spec.root_volume));
	}
	if ((r = open_runtime(argv[1], &rt)))
		return r;
	r = rt->ops->start(rt, &spec, &err);
	runtime_close(rt);
	if (r < 0)
		return cli_fail(err);
	printf("%s\n", spec.id);
	return 0;
}

/* RUN_DIR ID, with --force/--timeout for stop. */
static int simple(int argc, char **argv, const char *what)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct instance_spec spec;
	struct runtime *rt;
	unsigned timeout = 0;
	bool force = false;
	const struct cli_option stop_opts[] = {
	    OPT_BOOL("force", &force, "kill at once, without a clean shutdown"),
	    OPT_UINT("timeout", "S", &timeout, "seconds a clean stop may take (the instance's)"),
	    OPT_END(),
	};
	const char *id;
	int r;

	if (cli_parse_options(argc, argv, strcmp(what, "stop") ? cli_no_options : stop_opts,
	                      USAGE_RUNTIME, 0) != 2)
		return cli_usage(USAGE_RUNTIME, "'runtime %s' takes RUN_DIR ID", what);
	if ((r = open_runtime(argv[1], &rt)))
		return r;
	id = argv[2];
	if (!strcmp(what, "rm")) {
		r = runtime_remove(rt, id, &err);
	} else if (runtime_spec_load(rt, id, &spec, &err) < 0) {
		r = -1;
	} else {
		if (!timeout)
			timeout = spec.stop_timeout ? spec.stop_timeout : 10;
		if (!strcmp(what, "start"))
			r = rt->ops->start(rt, &spec, &err);
		else if (!strcmp(what, "stop"))
			r = rt->ops->stop(rt, id, force, timeout, &err);
		else /* reboot */
			r = rt->ops->stop(rt, id, false, timeout, &err) < 0
			        ? -1
			        : rt->ops->start(rt, &spec, &err);
	}
	runtime_close(rt);
	return r < 0 ? cli_fail(err) : 0;
}

static int do_exec(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct runtime *rt;
	int status = 0, r, cmd = 3;

	/* Nothing after RUN_DIR is an option: the command's arguments follow. */
	argc = 1 + cli_parse_options(argc, argv, cli_no_options, USAGE_RUNTIME, CLI_STOP_AT_ARG);
	if (argc >= 4 && !strcmp(argv[3], "--"))
		cmd = 4;
	if (argc <= cmd)
		return cli_usage(USAGE_RUNTIME, "'runtime exec' takes RUN_DIR ID -- COMMAND");
	if ((r = open_runtime(argv[1], &rt)))
		return r;
	fflush(stdout);
	{
		struct runtime_exec x;
		r = rt->ops->exec(rt, argv[2], argv + cmd, NULL, &x, &err);
		if (r == 0)
			r = runtime_exec_wait(&x, &status, &err);
	}
	runtime_close(rt);
	return r < 0 ? cli_fail(err) : status;
}

static void print_status(struct runtime *rt, const char *id)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct instance_status st;
	struct instance_spec spec;

	if (rt->ops->status(rt, id, &st, &err) < 0 || runtime_spec_load(rt, id, &spec, &err) < 0) {
		printf("%-21s %-9s %s\n", id, "unknown", err->msg);
		return;
	}
	printf("%-21s %-9s %-8d %-12s %-18s %s\n", id, instance_run_state_names[st.state],
	       (int)st.init_pid, spec.type, spec.address, st.reason);
}

static int do_status(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ char(*ids)[ID_MAX] = NULL;
	struct runtime *rt;
	size_t n = 0;
	int r;

	argc = 1 + cli_parse_options(argc, argv, cli_no_options, USAGE_RUNTIME, 0);
	if (argc != 2 && argc != 3)
		return cli_usage(USAGE_RUNTIME, "'runtime status' takes RUN_DIR [ID]");
	if ((r = open_runtime(argv[1], &rt)))
		return r;
	if (argc == 3) {
		struct instance_status st;
		r = rt->ops->status(rt, argv[2], &st, &err);
		if (r == 0)
			printf("%s\n", instance_run_state_names[st.state]);
	} else if ((r = runtime_list(rt, &ids, &n, &err)) == 0) {
		printf("%-21s %-9s %-8s %-12s %-18s %s\n", "INSTANCE", "STATE", "PID", "TYPE",
		       "ADDRESS", "REASON");
		for (size_t i = 0; i < n; i++)
			print_status(rt, ids[i]);
	}
	runtime_close(rt);
	return r < 0 ? cli_fail(err) : 0;
}

static int do_console(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ uint8_t *data = NULL;
	_cleanup_free_ char *dir = NULL;
	struct runtime *rt;
	size_t len;
	int r;

	argc = 1 + cli_parse_options(argc, argv, cli_no_options, USAGE_RUNTIME, 0);
	if (argc != 3)
		return cli_usage(USAGE_RUNTIME, "'runtime console' takes RUN_DIR ID");
	if ((r = open_runtime(argv[1], &rt)))
		return r;
	dir = runtime_instance_path(rt, argv[2], "console.log");
	runtime_close(rt);
	if (!id_valid("i", argv[2]))
		return cli_usage(USAGE_RUNTIME, "invalid instance id '%s'", argv[2]);
	if (fs_read_file(AT_FDCWD, dir, 64u << 20, &data, &len, &err) < 0)
		return cli_fail(err);
	fwrite(data, 1, len, stdout);
	return 0;
}

static int do_clone_root(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct runtime *rt;
	int r;

	argc = 1 + cli_parse_options(argc, argv, cli_no_options, USAGE_RUNTIME, 0);
	if (argc != 4)
		return cli_usage(USAGE_RUNTIME, "'runtime clone-root' takes RUN_DIR ID DEST_FILE");
	if ((r = open_runtime(argv[1], &rt)))
		return r;
	r = runtime_clone_root(rt, argv[2], argv[3], &err);
	runtime_close(rt);
	return r < 0 ? cli_fail(err) : 0;
}

static int do_start(int argc, char **argv)
{
	return simple(argc, argv, "start");
}
static int do_stop(int argc, char **argv)
{
	return simple(argc, argv, "stop");
}
static int do_reboot(int argc, char **argv)
{
	return simple(argc, argv, "reboot");
}
static int do_rm(int argc, char **argv)
{
	return simple(argc, argv, "rm");
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} subcommands[] = {
    {"run", do_run},         {"start", do_start}, {"stop", do_stop},
    {"reboot", do_reboot},   {"exec", do_exec},   {"status", do_status},
    {"console", do_console}, {"rm", do_rm},       {"clone-root", do_clone_root},
};

int cmd_runtime(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(USAGE_RUNTIME, "'runtime' needs a subcommand");
	for (size_t i = 0; i < ARRAY_SIZE(subcommands); i++)
		if (!strcmp(argv[1], subcommands[i].name))
			return subcommands[i].fn(argc - 1, argv + 1);
	return cli_usage(USAGE_RUNTIME, "unknown runtime subcommand '%s'", argv[1]);
}
