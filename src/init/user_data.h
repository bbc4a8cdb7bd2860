/* What kiln-init makes of an instance's user data, from its first bytes: the one check kiln-init
 * runs, which the unit tests and the fuzz target call too. Header-only and plain libc, as
 * kiln-init is (a static program with no kiln library). */
#ifndef KILN_INIT_USER_DATA_H
#define KILN_INIT_USER_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

enum user_data_kind {
	USER_DATA_EMPTY,  /* nothing to run */
	USER_DATA_SHELL,  /* anything else: run with /bin/sh (#cloud-boothook included) */
	USER_DATA_SCRIPT, /* #!: an executable copy, run directly */
	/* cloud-init's own formats, which kiln-init does not interpret: skipped, with a log line
	 * naming them (images with cloud-init leave the user data to it instead). */
	USER_DATA_CLOUD_CONFIG, /* #cloud-config (and its -archive, -jsonp) */
	USER_DATA_INCLUDE,      /* #include, #include-once: URLs to fetch */
	USER_DATA_PART_HANDLER, /* #part-handler: Python */
	USER_DATA_UPSTART_JOB,  /* #upstart-job */
	USER_DATA_TEMPLATE,     /* ## template: jinja */
	USER_DATA_GZIP,         /* gzip-compressed */
	USER_DATA_MIME,         /* a MIME (multi-part) message */
	USER_DATA_KIND__COUNT
};

/* How many first bytes user_data_kind looks at, at most: read this many, or all when shorter. */
#define USER_DATA_HEAD 32

/* What cloud-init's format is named in kiln-init's log, for the kinds it does not interpret. */
static inline const char *user_data_kind_name(enum user_data_kind k)
{
	static const char *const names[USER_DATA_KIND__COUNT] = {
	    [USER_DATA_CLOUD_CONFIG] = "#cloud-config", [USER_DATA_INCLUDE] = "#include",
	    [USER_DATA_PART_HANDLER] = "#part-handler", [USER_DATA_UPSTART_JOB] = "#upstart-job",
	    [USER_DATA_TEMPLATE] = "a jinja template",  [USER_DATA_GZIP] = "gzip-compressed",
	    [USER_DATA_MIME] = "a MIME message",
	};
	return (unsigned)k < USER_DATA_KIND__COUNT ? names[k] : NULL;
}

/* The kind of user data that begins with the n bytes at head (n may be less than the whole). */
static inline enum user_data_kind user_data_kind(const void *head, size_t n)
{
	/* The headers of cloud-init's formats; a MIME message begins with one of its headers,
	 * in any case (write-mime-multipart and Terraform's cloudinit_config begin with
	 * Content-Type). No prefix begins another. */
	static const struct {
		const char *prefix;
		bool anycase;
		enum user_data_kind kind;
	} prefixes[] = {
	    {"#cloud-config", false, USER_DATA_CLOUD_CONFIG},
	    {"#include", false, USER_DATA_INCLUDE},
	    {"#part-handler", false, USER_DATA_PART_HANDLER},
	    {"#upstart-job", false, USER_DATA_UPSTART_JOB},
	    {"## template: jinja", false, USER_DATA_TEMPLATE},
	    {"\x1f\x8b", false, USER_DATA_GZIP},
	    {"content-type:", true, USER_DATA_MIME},
	    {"mime-version:", true, USER_DATA_MIME},
	    {"#!", false, USER_DATA_SCRIPT},
	};
	const char *s = head;

	if (!n)
		return USER_DATA_EMPTY;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t len = strlen(prefixes[i].prefix);
		if (n >= len && !(prefixes[i].anycase ? strncasecmp(s, prefixes[i].prefix, len)
		                                      : memcmp(s, prefixes[i].prefix, len)))
			return prefixes[i].kind;
	}
	return USER_DATA_SHELL;
}

#endif
