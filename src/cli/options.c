/* One option parser for every kiln command: the tables of options.h in, the values and the
 * arguments out; --help, and the one-line errors with exit status 2. */
#include "options.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

const struct cli_option cli_no_options[] = {
    OPT_END(),
};

static void help(const struct cli_option *opts, const char *usage)
{
	bool any = false;

	printf("usage: %s\n", usage);
	for (const struct cli_option *o = opts; o->type != CLI_OPT_END; o++) {
		char head[64];
		if (o->type == CLI_OPT_EXAMPLE)
			continue;
		if (!any)
			fputs("\noptions:\n", stdout);
		any = true;
		snprintf(head, sizeof(head), "--%s%s%s", o->name, o->argh ? " " : "",
		         o->argh ? o->argh : "");
		printf("  %-24s %s\n", head, o->help ? o->help : "");
	}
	any = false;
	for (const struct cli_option *o = opts; o->type != CLI_OPT_END; o++) {
		if (o->type != CLI_OPT_EXAMPLE)
			continue;
		if (!any)
			fputs("\nexamples:\n", stdout);
		any = true;
		printf("  %s\n", o->help);
	}
	exit(0);
}

static __attribute__((noreturn, format(printf, 2, 3))) void fail(const char *usage, const char *fmt,
                                                                 ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	exit(cli_usage(usage, "%s", msg));
}

/* The option named by the len bytes at name: an exact name, else the only one it begins. */
static const struct cli_option *find_long(const struct cli_option *opts, const char *name,
                                          size_t len, bool *ambiguous)
{
	const struct cli_option *found = NULL;

	*ambiguous = false;
	for (const struct cli_option *o = opts; o->type != CLI_OPT_END; o++) {
		if (o->type == CLI_OPT_EXAMPLE || strncmp(o->name, name, len))
			continue;
		if (!o->name[len])
			return o;
		*ambiguous = found != NULL;
		found = o;
	}
	return *ambiguous ? NULL : found;
}

static const struct cli_option *find_short(const struct cli_option *opts, char c)
{
	for (const struct cli_option *o = opts; o->type != CLI_OPT_END; o++)
		if (o->short_name && o->short_name == c)
			return o;
	return NULL;
}

void cli_strings_release(struct cli_strings *s)
{
	free(s->items);
	s->items = NULL;
	s->n = 0;
}

static void store(const struct cli_option *o, const char *arg, const char *usage)
{
	struct cli_strings *list;
	char *end;
	unsigned long v;

	switch (o->type) {
	case CLI_OPT_BOOL:
		*(bool *)o->value = true;
		return;
	case CLI_OPT_STRING:
		*(const char **)o->value = arg;
		return;
	case CLI_OPT_BUF:
		str_copy(o->value, arg, o->size);
		return;
	case CLI_OPT_SIZE:
		if (cli_parse_size(arg, o->value) < 0)
			fail(usage, "bad value '%s' for '--%s'", arg, o->name);
		return;
	case CLI_OPT_UINT:
	case CLI_OPT_LIMIT:
		errno = 0;
		v = strtoul(arg, &end, 10);
		if (errno || end == arg || *end || *arg == '-' || v > UINT32_MAX ||
		    (o->type == CLI_OPT_LIMIT && (v == 0 || v > o->size)))
			fail(usage, "bad value '%s' for '--%s'", arg, o->name);
		*(unsigned *)o->value = (unsigned)v;
		return;
	case CLI_OPT_LIST:
		list = o->value;
		list->items = xreallocarray(list->items, list->n + 1, sizeof(*list->items));
		list->items[list->n++] = arg;
		return;
	case CLI_OPT_EXAMPLE:
	case CLI_OPT_END:
		break;
	}
}

int cli_parse_options(int argc, char **argv, const struct cli_option *opts, const char *usage,
                      unsigned flags)
{
	int n = 0, i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *value = NULL;
		const struct cli_option *o;
		bool ambiguous = false;

		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (a[0] != '-' || !a[1]) {
			if (flags & CLI_STOP_AT_ARG)
				break;
			argv[++n] = argv[i];
			continue;
		}
		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			help(opts, usage);
		if (a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
			o = find_long(opts, a + 2, len, &ambiguous);
			if (eq)
				value = eq + 1;
		} else {
			o = a[2] ? NULL : find_short(opts, a[1]);
		}
		if (ambiguous)
			fail(usage, "ambiguous option '%s'", a);
		if (!o)
			fail(usage, "unknown option '%s'", a);
		if (o->type == CLI_OPT_BOOL && value)
			fail(usage, "option '--%s' takes no value", o->name);
		if (o->type != CLI_OPT_BOOL && !value) {
			if (i + 1 == argc)
				fail(usage, "option '--%s' needs a value", o->name);
			value = argv[++i];
		}
		store(o, value, usage);
	}
	while (i < argc)
		argv[++n] = argv[i++];
	argv[n + 1] = NULL;
	return n;
}
