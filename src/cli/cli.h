/* The kiln command: shared helpers of the subcommands. */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "util/kerr.h"

/* Print "kiln: <message>" for err; returns the exit status for it (1). */
int cli_fail(const struct kerr *err);
/* Print "kiln: <message>" and a usage hint; returns 2. */
int cli_usage(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A progress bar on stderr, drawn only when stderr is a terminal. */
struct progress_bar {
	const char *label;
	const char *unit; /* "chunks": done/total shown with it; NULL: a percentage only */
	int enabled;
	uint64_t started_ns;
	uint64_t last_ns;
};
void progress_bar_init(struct progress_bar *p, const char *label, const char *unit);
void progress_bar_update(void *ctx, uint64_t done, uint64_t total);
void progress_bar_finish(struct progress_bar *p);

/* s as a JSON string on stdout, quoted and escaped. */
void cli_json_string(const char *s);
/* "2G", "512M", "4096": bytes; -1 when it is not a size. */
int cli_parse_size(const char *s, uint64_t *out);
/* This binary's path, and kiln-init's (beside it, or $KILN_INIT); malloc'd. */
char *cli_self_exe(void);
char *cli_init_path(void);
char *cli_shim_path(void);

int cmd_store(int argc, char **argv);
int cmd_runtime(int argc, char **argv);
int cmd_host(int argc, char **argv);
int cmd_down(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_account(int argc, char **argv);
/* --data, else $KILN_DATA, else /var/lib/kiln. */
const char *cli_data_dir(const char *given);
int cmd_image(int argc, char **argv);
/* Clients of `kiln serve` (remote.h). */
int cmd_run(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_change(int argc, char **argv);
int cmd_console(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_bake(int argc, char **argv);
int cmd_copy_image(int argc, char **argv);
int cmd_share(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_ssh(int argc, char **argv);
int cmd_pool(int argc, char **argv);
/* The marketplace's operator commands, bills and the test clock (cmd_marketplace.c). */
int cmd_marketplace(int argc, char **argv);
int cmd_bill(int argc, char **argv);
int cmd_clock(int argc, char **argv);

#endif
