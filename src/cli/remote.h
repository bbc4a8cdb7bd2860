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
	const char *endpoint; /* --endpoint, $KILN_ENDPOINT, http://127.0.0.1:8773 */
	const char *profile;  /* --profile, $AWS_PROFILE, default */
	const char
	    *data; /* --data: its credentials and config files, when the aws CLI's are unset */
	bool json;
};

/* The entries of an option table (options.h) for these options, stored in *ro. */
#define OPT_REMOTE(ro)                                                                             \
	OPT_STRING("region", "R", &(ro)->region, "the region (else $AWS_REGION, the profile's)"),  \
	    OPT_STRING("endpoint", "URL", &(ro)->endpoint,                                         \
	               "the daemon (else $KILN_ENDPOINT, http://127.0.0.1:8773)"),                 \
	    OPT_STRING("profile", "P", &(ro)->profile, "whose keys (else $AWS_PROFILE, default)"), \
	    OPT_STRING("data", "DIR", &(ro)->data, "the data directory whose credentials to use"), \
	    OPT_BOOL("json", &(ro)->json, "print JSON instead of a table")
#define REMOTE_USAGE "[--region R] [--endpoint URL] [--profile P] [--data DIR] [--json]"

/* A client for o: keys from $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY, else the profile of
 * $AWS_SHARED_CREDENTIALS_FILE, else of DATA/credentials, else of ~/.aws/credentials. */
int remote_connect(const struct remote_opts *o, struct api_client **out, struct kerr **err);
/* One call; on failure prints "kiln: Code: message" and returns -1. */
int remote_call(struct api_client *c, const struct api_args *a, struct xml_node **doc);

/* Output: a table with a header line, or with --json an array of objects. */
struct table {
	size_t ncols;
	const char *const *heads; /* "ID", "STATE"… */
	const char *const *keys;  /* their JSON names: "id", "state"… */
	char **cells;             /* nrows * ncols */
	size_t nrows;
};
void table_init(struct table *t, size_t ncols, const char *const *heads, const char *const *keys);
/* ncols values. */
void table_add(struct table *t, ...);
void table_print(const struct table *t, bool json);
void table_release(struct table *t);

#endif
