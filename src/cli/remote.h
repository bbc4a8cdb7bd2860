/* The kiln commands that are clients of `kiln serve`: where the daemon is, whose keys to sign
 * with (the aws CLI's files and variables), and how answers are shown (tables or --json). */
#ifndef KILN_CLI_REMOTE_H
#define KILN_CLI_REMOTE_H

#include <stdbool.h>

#include "api/client.h"
#include "options.h"

/* Options every such command takes. */
struct remote_opts {
	const char
	    *region; /* --region, $AWS_REGION, $AWS_DEFAULT_REGION, the config file, us-east-1 */
	const char *endpoint; /* --endpoint-url (or --endpoint), then $KILN_ENDPOINT,
	                         $AWS_ENDPOINT_URL_EC2, $AWS_ENDPOINT_URL, http://127.0.0.1:8773 */
	const char *profile;  /* --profile, $AWS_PROFILE, default */
	const char
	    *data; /* --data: its credentials and config files, when the aws CLI's are unset */
	const char *output; /* --output table|json|text */
	bool json;          /* --json: --output json */
	enum remote_format {
		REMOTE_TABLE,
		REMOTE_JSON,
		REMOTE_TEXT,
	} format; /* from the two above, set by remote_connect */
};

/* The entries of an option table (options.h) for these options, stored in *ro. */
#define OPT_REMOTE(ro)                                                                             \
	OPT_STRING("region", "R", &(ro)->region, "the region (else $AWS_REGION, the profile's)"),  \
	    OPT_STRING("endpoint-url", "URL", &(ro)->endpoint,                                     \
	               "the daemon (else $KILN_ENDPOINT, $AWS_ENDPOINT_URL_EC2, "                  \
	               "$AWS_ENDPOINT_URL, http://127.0.0.1:8773)"),                               \
	    OPT_STRING("endpoint", "URL", &(ro)->endpoint, "the same as --endpoint-url"),          \
	    OPT_STRING("profile", "P", &(ro)->profile, "whose keys (else $AWS_PROFILE, default)"), \
	    OPT_STRING("data", "DIR", &(ro)->data, "the data directory whose credentials to use"), \
	    OPT_STRING("output", "FORMAT", &(ro)->output, "table (the default), json or text"),    \
	    OPT_BOOL("json", &(ro)->json, "the same as --output json")
#define REMOTE_USAGE                                                                               \
	"[--region R] [--endpoint-url URL] [--profile P] [--data DIR] [--output table|json|text]"

/* A client for o (whose format it sets; a bad --output is an error): keys from
 * $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY, else the profile of $AWS_SHARED_CREDENTIALS_FILE, else
 * of DATA/credentials, else of ~/.aws/credentials. */
int remote_connect(struct remote_opts *o, struct api_client **out, struct kerr **err);
/* One call; on failure prints "kiln: Code: message" and returns -1. */
int remote_call(struct api_client *c, const struct api_args *a, struct xml_node **doc);

/* IMAGE, INSTANCE, VOLUME, SNAPSHOT as people give them: an id, or a name. */
enum remote_kind {
	REMOTE_IMAGE,    /* ami-…, an image's name, or its Name tag */
	REMOTE_INSTANCE, /* i-…, or the Name tag of an instance not terminated */
	REMOTE_VOLUME,   /* vol-…, or its Name tag */
	REMOTE_SNAPSHOT, /* snap-…, or its Name tag */
};
/* The id arg names, in out; -1 with "kiln: ..." printed when no such thing is visible, or when a
 * name fits more than one (they are listed: give an id). For an image, the caller's own of that
 * name comes before those of others. */
int remote_resolve(struct api_client *c, enum remote_kind kind, const char *arg, char *out,
                   size_t size);

/* Output: a table with a header line, with --output json an array of objects (each cell with
 * its column's JSON type), with --output text tab-separated lines (the aws CLI's text). */
struct table_col {
	const char *head; /* "ID", "STATE"… */
	const char *key;  /* its JSON name: "id", "state"… */
	enum table_type {
		TABLE_STRING,
		TABLE_NUMBER, /* a number, or null when empty */
		TABLE_BOOL,   /* "true" or "false", or null when empty */
	} type;
};
struct table {
	size_t ncols;
	const struct table_col *cols;
	char **cells; /* nrows * ncols */
	size_t nrows;
};
void table_init(struct table *t, const struct table_col *cols, size_t ncols);
/* ncols values. */
void table_add(struct table *t, ...);
void table_print(const struct table *t, enum remote_format format);
void table_release(struct table *t);

#endif
