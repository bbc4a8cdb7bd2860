/* Reaching the daemon: options, credentials and region as the aws CLI finds them, calls with
 * one-line errors, and the table and JSON output of the API commands. */
#include "remote.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define DEFAULT_ENDPOINT "http://127.0.0.1:8773"

/* key in [section] of an INI file (the aws CLI's credentials and config); malloc'd or NULL. */
static char *ini_get(const char *path, const char *section, const char *key)
{
	_cleanup_free_ uint8_t *data = NULL;
	size_t len;
	bool inside = false;
	char *line, *save = NULL;

	if (!path || fs_read_file(AT_FDCWD, path, 1 << 20, &data, &len, NULL) < 0)
		return NULL;
	for (line = strtok_r((char *)data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq, *k, *v;
		line = str_trim(line);
		if (*line == '[') {
			char *end = strchr(line, ']');
			if (end)
				*end = '\0';
			inside = !strcmp(str_trim(line + 1), section);
			continue;
		}
		if (!inside || !(eq = strchr(line, '=')))
			continue;
		*eq = '\0';
		k = str_trim(line);
		v = str_trim(eq + 1);
		if (!strcmp(k, key))
			return xstrdup(v);
	}
	return NULL;
}

static char *aws_file(const char *env, const struct remote_opts *o, const char *name)
{
	const char *e = getenv(env), *home = getenv("HOME");
	char *p;

	if (e && *e)
		return xstrdup(e);
	p = xasprintf("%s/%s", cli_data_dir(o->data), name);
	if (access(p, R_OK) == 0)
		return p;
	free(p);
	return home ? xasprintf("%s/.aws/%s", home, name) : NULL;
}

static const char *first_set(const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (getenv(names[i]) && *getenv(names[i]))
			return getenv(names[i]);
	return NULL;
}

static int output_format(struct remote_opts *o, struct kerr **err)
{
	static const char *const names[] = {
	    [REMOTE_TABLE] = "table",
	    [REMOTE_JSON] = "json",
	    [REMOTE_TEXT] = "text",
	};

	o->format = o->json ? REMOTE_JSON : REMOTE_TABLE;
	if (!o->output)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (!strcmp(o->output, names[i])) {
			if (o->json && i != REMOTE_JSON)
				return kerr_set(err, KERR_INVALID,
				                "--json and --output %s contradict each other",
				                o->output);
			o->format = (enum remote_format)i;
			return 0;
		}
	return kerr_set(err, KERR_INVALID, "--output takes table, json or text, not '%s'",
	                o->output);
}

int remote_connect(struct remote_opts *o, struct api_client **out, struct kerr **err)
{
	static const char *const endpoints[] = {"KILN_ENDPOINT", "AWS_ENDPOINT_URL_EC2",
	                                        "AWS_ENDPOINT_URL"};
	const char *profile = o->profile              ? o->profile
	                      : getenv("AWS_PROFILE") ? getenv("AWS_PROFILE")
	                                              : "default";
	_cleanup_free_ char *creds = aws_file("AWS_SHARED_CREDENTIALS_FILE", o, "credentials");
	_cleanup_free_ char *config = aws_file("AWS_CONFIG_FILE", o, "config");
	_cleanup_free_ char *config_section =
	    !strcmp(profile, "default") ? xstrdup("default") : xasprintf("profile %s", profile);
	_cleanup_free_ char *key = NULL, *secret = NULL, *region = NULL;
	struct api_client_config cfg = {0};

	if (output_format(o, err) < 0)
		return -1;
	if (getenv("AWS_ACCESS_KEY_ID") && getenv("AWS_SECRET_ACCESS_KEY")) {
		key = xstrdup(getenv("AWS_ACCESS_KEY_ID"));
		secret = xstrdup(getenv("AWS_SECRET_ACCESS_KEY"));
	} else {
		key = ini_get(creds, profile, "aws_access_key_id");
		secret = ini_get(creds, profile, "aws_secret_access_key");
	}
	if (!key || !secret)
		return kerr_set(
		    err, KERR_AUTH,
		    "no keys for profile '%s' in %s (kiln init writes them to DIR/credentials)",
		    profile, creds ? creds : "~/.aws/credentials");
	cfg.region = o->region;
	if (!cfg.region)
		cfg.region = getenv("AWS_REGION") && *getenv("AWS_REGION")
		                 ? getenv("AWS_REGION")
		                 : getenv("AWS_DEFAULT_REGION");
	if (!cfg.region || !*cfg.region)
		cfg.region = region = ini_get(config, config_section, "region");
	if (!cfg.region)
		cfg.region = "us-east-1";
	cfg.endpoint = o->endpoint;
	if (!cfg.endpoint)
		cfg.endpoint = first_set(endpoints, ARRAY_SIZE(endpoints));
	if (!cfg.endpoint)
		cfg.endpoint = DEFAULT_ENDPOINT;
	cfg.access_key = key;
	cfg.secret_key = secret;
	/* A daemon that closes a kept-alive connection must not kill the command (libcurl runs
	 * without signals here and leaves SIGPIPE to the program). */
	signal(SIGPIPE, SIG_IGN);
	return api_client_open(&cfg, out, err);
}

int remote_call(struct api_client *c, const struct api_args *a, struct xml_node **doc)
{
	_cleanup_kerr_ struct kerr *err = NULL;

	if (api_client_call(c, a, doc, NULL, &err) < 0) {
		cli_fail(err);
		return -1;
	}
	return 0;
}

void table_init(struct table *t, const struct table_col *cols, size_t ncols)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	t->cols = cols;
}

void table_add(struct table *t, ...)
{
	va_list ap;

	t->cells = xreallocarray(t->cells, (t->nrows + 1) * t->ncols, sizeof(*t->cells));
	va_start(ap, t);
	for (size_t i = 0; i < t->ncols; i++) {
		const char *v = va_arg(ap, const char *);
		t->cells[t->nrows * t->ncols + i] = xstrdup(v ? v : "");
	}
	va_end(ap);
	t->nrows++;
}

/* A cell as its column's JSON type: what is not a number or a boolean stays a string. */
static void json_value(enum table_type type, const char *v)
{
	char *end;

	if (type != TABLE_STRING && !*v) {
		fputs("null", stdout);
		return;
	}
	if (type == TABLE_BOOL && (!strcmp(v, "true") || !strcmp(v, "false"))) {
		fputs(v, stdout);
		return;
	}
	if (type == TABLE_NUMBER) {
		(void)strtod(v, &end);
		if (end != v && !*end && *v != '+' && *v != '.') {
			fputs(v, stdout);
			return;
		}
	}
	cli_json_string(v);
}

static void print_json(const struct table *t)
{
	fputs("[", stdout);
	for (size_t r = 0; r < t->nrows; r++) {
		fputs(r ? ",\n {" : "\n {", stdout);
		for (size_t i = 0; i < t->ncols; i++) {
			if (i)
				fputs(", ", stdout);
			cli_json_string(t->cols[i].key);
			fputs(": ", stdout);
			json_value(t->cols[i].type, t->cells[r * t->ncols + i]);
		}
		fputs("}", stdout);
	}
	fputs(t->nrows ? "\n]\n" : "]\n", stdout);
}

void table_print(const struct table *t, enum remote_format format)
{
	size_t *width;

	if (format == REMOTE_JSON) {
		print_json(t);
		return;
	}
	if (format == REMOTE_TEXT) {
		for (size_t r = 0; r < t->nrows; r++)
			for (size_t i = 0; i < t->ncols; i++)
				printf("%s%c", t->cells[r * t->ncols + i],
				       i + 1 < t->ncols ? '\t' : '\n');
		return;
	}
	width = xcalloc(t->ncols, sizeof(*width));
	for (size_t i = 0; i < t->ncols; i++) {
		width[i] = strlen(t->cols[i].head);
		for (size_t r = 0; r < t->nrows; r++)
			if (strlen(t->cells[r * t->ncols + i]) > width[i])
				width[i] = strlen(t->cells[r * t->ncols + i]);
	}
	for (size_t r = 0; r <= t->nrows; r++)
		for (size_t i = 0; i < t->ncols; i++) {
			const char *v = r ? t->cells[(r - 1) * t->ncols + i] : t->cols[i].head;
			if (i + 1 < t->ncols)
				printf("%-*s  ", (int)width[i], v);
			else
				printf("%s\n", v);
		}
	free(width);
}

void table_release(struct table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = 0;
}
