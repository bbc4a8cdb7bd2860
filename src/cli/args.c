/* Argument helpers shared by the subcommands. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util/xalloc.h"
#include "util/banned.h"

int cli_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (toupper((unsigned char)*end)) {
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	case 'T':
		shift = 40;
		break;
	case '\0':
		break;
	default:
		return -1;
	}
	if (*end && end[1] &&
	    !(toupper((unsigned char)end[1]) == 'I' && toupper((unsigned char)end[2]) == 'B' &&
	      !end[3]) &&
	    !(toupper((unsigned char)end[1]) == 'B' && !end[2]))
		return -1;
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

char *cli_self_exe(void)
{
	char buf[4096];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

	if (n <= 0)
		return xstrdup("kiln");
	buf[n] = '\0';
	return xstrdup(buf);
}

/* A helper binary: $ENV_VAR, or NAME beside this binary. */
static char *helper_path(const char *name, const char *env_var)
{
	const char *env = getenv(env_var);
	char *self, *slash, *p;

	if (env && *env)
		return xstrdup(env);
	self = cli_self_exe();
	slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	p = xasprintf("%s/%s", slash ? self : ".", name);
	free(self);
	return p;
}

char *cli_init_path(void)
{
	return helper_path("kiln-init", "KILN_INIT");
}

char *cli_shim_path(void)
{
	return helper_path("kiln-shim", "KILN_SHIM");
}

void cli_json_string(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}
