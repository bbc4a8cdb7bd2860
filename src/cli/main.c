/* kiln: entry point and command table. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "util/cleanup.h"
#include "util/banned.h"

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} commands[] = {
    {"run", cmd_run, "launch instances of an image (by id or name) and wait until they run"},
    {"ls", cmd_ls, "list your instances in a region"},
    {"start", cmd_change, "start stopped instances"},
    {"stop", cmd_change, "stop instances (their volumes stay)"},
    {"reboot", cmd_change, "reboot running instances"},
    {"rm", cmd_change, "terminate instances"},
    {"console", cmd_console, "print an instance's console output"},
    {"ssh", cmd_ssh, "log in to an instance with its key pair (by its public address)"},
    {"key", cmd_key, "create, import, list and delete key pairs (private keys kept for ssh)"},
    {"exec", cmd_exec, "run a command inside one of your instances on this host"},
    {"bake", cmd_bake, "create an image of an instance and wait until it is available"},
    {"copy-image", cmd_copy_image, "copy an image to another region, with progress"},
    {"share", cmd_share, "let another account (or everyone) launch an image"},
    {"snapshot", cmd_snapshot, "snapshot a volume and wait until it is completed, with progress"},
    {"images", cmd_list, "list the images you may launch"},
    {"volumes", cmd_list, "list your volumes"},
    {"snapshots", cmd_list, "list the snapshots you may restore"},
    {"regions", cmd_list, "list the regions"},
    {"zones", cmd_list, "list the availability zones of a region"},
    {"init", cmd_init, "create a data directory: database, regions, accounts, aws CLI files"},
    {"serve", cmd_serve, "serve the EC2 Query API for every region of a data directory"},
    {"account", cmd_account, "create and list accounts and their access keys"},
    {"marketplace", cmd_marketplace,
     "publish products, subscribe accounts, a seller's report (operator, on the data dir)"},
    {"bill", cmd_bill, "an account's marketplace bill, from its instances' running hours"},
    {"clock", cmd_clock, "for tests: move the metering clock forward (kiln serve --test-clock)"},
    {"store", cmd_store, "operate a block store directly (init, snapshot, restore, ...)"},
    {"pool", cmd_pool, "operate a volume pool directly (open, create, clone, grow, rm)"},
    {"image", cmd_image, "build base image volumes (import a directory or tarball)"},
    {"runtime", cmd_runtime, "run instances directly on this host (run, stop, exec, ...)"},
    {"host", cmd_host, "set up or tear down what kiln needs on this host (up, down)"},
    {"down", cmd_down, "stop every instance and remove what kiln put on this host"},
};

int cli_fail(const struct kerr *err)
{
	fprintf(stderr, "kiln: %s\n", err ? err->msg : "unknown error");
	return 1;
}

int cli_usage(const char *usage, const char *fmt, ...)
{
	va_list ap;

	fputs("kiln: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: %s\n", usage);
	return 2;
}

static void usage(FILE *f)
{
	fputs("usage: kiln COMMAND [ARGS]\n\ncommands:\n", f);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (commands[i].help)
			fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "kiln: unknown command '%s' (see 'kiln --help')\n", argv[1]);
	return 2;
}
