/* Random identifiers from the kernel's generator. */
#include "id.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "banned.h"

void id_random_hex(char *out, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char raw[64];
	size_t got = 0;

	if (n > 2 * sizeof(raw))
		abort();
	while (got < (n + 1) / 2) {
		ssize_t r = getrandom(raw + got, (n + 1) / 2 - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			abort();
		}
		got += (size_t)r;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = digits[(raw[i / 2] >> (i % 2 ? 0 : 4)) & 15];
	out[n] = '\0';
}

void id_new(const char *prefix, char *out)
{
	char hex[ID_HEX_DIGITS + 1];

	id_random_hex(hex, ID_HEX_DIGITS);
	snprintf(out, ID_MAX, "%s-%s", prefix, hex);
}

bool id_valid(const char *prefix, const char *s)
{
	size_t p = strlen(prefix), n;

	if (strncmp(s, prefix, p) != 0 || s[p] != '-')
		return false;
	/* EC2 still answers to the 8-digit ids it gave out before 2016 (ami-12c6146b). */
	n = strlen(s + p + 1);
	if (n != ID_HEX_DIGITS && n != ID_HEX_DIGITS_SHORT)
		return false;
	for (const char *c = s + p + 1; *c; c++)
		if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
			return false;
	return true;
}
