/* The options of the kiln commands, declared as tables (as git's parse-options): each command
 * lists its options and where they go, and one parser reads them, answers --help and reports a
 * bad command line in one line followed by the usage. */
#ifndef KILN_CLI_OPTIONS_H
#define KILN_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cli_opt_type {
	CLI_OPT_END,
	CLI_OPT_BOOL,    /* bool *: set to true */
	CLI_OPT_STRING,  /* const char **: the argument itself */
	CLI_OPT_BUF,     /* char[size]: a copy of the argument */
	CLI_OPT_SIZE,    /* uint64_t *: "2G", "512M", "4096" (cli_parse_size) */
	CLI_OPT_UINT,    /* unsigned *: a decimal number */
	CLI_OPT_LIMIT,   /* unsigned *: a decimal number from 1 to size */
	CLI_OPT_LIST,    /* struct cli_strings *: every argument of a repeated option, in order */
	CLI_OPT_EXAMPLE, /* no option: a command line shown under "examples:" in --help */
};

/* The values of a CLI_OPT_LIST option; items is malloc'd (cli_strings_release). */
struct cli_strings {
	const char **items;
	size_t n;
};
void cli_strings_release(struct cli_strings *s);

struct cli_option {
	enum cli_opt_type type;
	const char *name; /* the long name, without "--" */
	char short_name;  /* -x, or 0 */
	const char *argh; /* the value's name in the help ("DIR"); NULL for a flag */
	void *value;      /* where the option goes, by type */
	size_t size;      /* CLI_OPT_BUF: the buffer's size; CLI_OPT_LIMIT: the maximum */
	const char *help;
};

/* clang-format off */
#define OPT_BOOL(n, v, h)      {CLI_OPT_BOOL, (n), 0, NULL, (v), 0, (h)}
#define OPT_STRING(n, a, v, h) {CLI_OPT_STRING, (n), 0, (a), (v), 0, (h)}
#define OPT_BUF(n, a, v, h)    {CLI_OPT_BUF, (n), 0, (a), (v), sizeof(v), (h)}
#define OPT_SIZE(n, a, v, h)   {CLI_OPT_SIZE, (n), 0, (a), (v), 0, (h)}
#define OPT_UINT(n, a, v, h)   {CLI_OPT_UINT, (n), 0, (a), (v), 0, (h)}
#define OPT_LIMIT(n, a, v, max, h) {CLI_OPT_LIMIT, (n), 0, (a), (v), (max), (h)}
#define OPT_LIST(n, a, v, h)   {CLI_OPT_LIST, (n), 0, (a), (v), 0, (h)}
#define OPT_EXAMPLE(line)      {CLI_OPT_EXAMPLE, NULL, 0, NULL, NULL, 0, (line)}
#define OPT_END()              {CLI_OPT_END, NULL, 0, NULL, NULL, 0, NULL}
/* clang-format on */

/* The table of a command that takes no options. */
extern const struct cli_option cli_no_options[];

/* Options end at the first argument: what follows is a command's (kiln exec). */
#define CLI_STOP_AT_ARG 1u

/* Read argv[1..argc) against opts (ended by OPT_END()): options may come anywhere ("--name
 * V", "--name=V", a unique prefix of a name), "--" ends them. The arguments are moved to
 * argv[1..n] and n is returned. --help (or -h) prints the usage and the options and exits 0;
 * a bad option prints "kiln: <what>" and the usage and exits 2. */
int cli_parse_options(int argc, char **argv, const struct cli_option *opts, const char *usage,
                      unsigned flags);

#endif
