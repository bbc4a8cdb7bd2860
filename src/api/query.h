/* EC2 Query parameters: form/query-string decoding into ordered (name, value) pairs, and the
 * accessors every action uses: scalars, booleans, bounded integers, `Prefix.N` lists and nested
 * members (`Filter.N.Value.M`), plus EC2 filter matching with `*`/`?` wildcards. */
#ifndef KILN_API_QUERY_H
#define KILN_API_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/kerr.h"

/* Longest parameter name kiln accepts (and longest path a node can address). */
#define API_PARAM_NAME_MAX 255

struct api_param {
	const char *name;  /* decoded, NUL-terminated, printable ASCII */
	const char *value; /* decoded, NUL-terminated, valid UTF-8 without NUL; may be "" */
	size_t value_len;
};

/* Limits on what one request may carry; a decode past any of them fails with KERR_LIMIT. */
struct api_query_limits {
	size_t max_pairs;
	size_t max_name;  /* decoded bytes; capped at API_PARAM_NAME_MAX */
	size_t max_value; /* decoded bytes */
	size_t max_total; /* encoded bytes over all decode calls */
};

#define API_QUERY_LIMITS_DEFAULT                                                                   \
	{                                                                                          \
		.max_pairs = 10000, .max_name = API_PARAM_NAME_MAX, .max_value = 64 << 10,         \
		.max_total = 1 << 20                                                               \
	}

struct api_params {
	struct api_param *items; /* in the order received */
	size_t n;
	size_t total;     /* encoded bytes decoded so far (for max_total) */
	uint32_t *sorted; /* indices into items sorted by name, first occurrence first */
	char **arenas;    /* the decoded strings, one block per decode call */
	size_t narenas;
};

void api_params_init(struct api_params *p);
void api_params_release(struct api_params *p);

/* Decode application/x-www-form-urlencoded data (a POST body or a raw query string) and append
 * its pairs to p: '&' separates pairs (empty ones are skipped), the first '=' splits name from
 * value (none means an empty value), '+' is a space, %XX a byte. Invalid escapes, NUL bytes, empty
 * or non-printable names and values that are not UTF-8 fail with KERR_INVALID; limits (lim NULL =
 * API_QUERY_LIMITS_DEFAULT) with KERR_LIMIT. On failure p is left as it was. */
int api_params_decode(struct api_params *p, const char *data, size_t len,
                      const struct api_query_limits *lim, struct kerr **err)
    __attribute__((warn_unused_result));

/* Append n pairs (copied) as if received after the others: a launch template's parameters
 * joining a request's, a stored parameter list read back through the accessors. */
void api_params_append(struct api_params *p, const char *const *names, const char *const *values,
                       size_t n);

/* The first pair with exactly this name (duplicates: the first one received wins), or NULL. */
const struct api_param *api_params_find(const struct api_params *p, const char *name);

/*
 * A node names a place in the parameter tree: the root, `Filter.2`, `BlockDeviceMapping.1.Ebs`.
 * Accessors take a node and a member name relative to it ("Name", "Ebs.VolumeSize", or NULL/""
 * for the node itself), so one small API covers every shape:
 *
 *	struct api_node root, f;
 *	api_params_root(&params, &root);
 *	for (size_t i = 1; i <= api_node_count(&root, "Filter"); i++) {
 *		api_node_item(&root, "Filter", i, &f);
 *		name = api_node_str(&f, "Name");
 *		for (size_t j = 1; j <= api_node_count(&f, "Value"); j++) ...
 *	}
 *
 * Nodes are plain values (copy them freely); they point into the params, which must outlive them.
 * A path longer than API_PARAM_NAME_MAX names nothing: every lookup under it finds nothing.
 */
struct api_node {
	const struct api_params *params;
	size_t len;    /* strlen(path) */
	bool overflow; /* the path did not fit: nothing is there */
	char path[API_PARAM_NAME_MAX + 1];
};

void api_params_root(const struct api_params *p, struct api_node *out);
/* out = n.name ("Ebs" under "BlockDeviceMapping.1"). */
void api_node_child(const struct api_node *n, const char *name, struct api_node *out);
/* out = n.name.i; i counts from 1. */
void api_node_item(const struct api_node *n, const char *name, size_t i, struct api_node *out);
/* The full parameter name of n.name, for messages ("Filter.1.Name"); "" for the root. */
const char *api_node_path(const struct api_node *n, const char *name,
                          char out[API_PARAM_NAME_MAX + 1]);

/* True when n.name has a non-empty value or any member of n.name.* has one. */
bool api_node_present(const struct api_node *n, const char *name);
/* Items of the list n.name: the number of consecutive indices 1, 2, ... that are present;
 * counting stops at the first missing index, as AWS and botocore do. */
size_t api_node_count(const struct api_node *n, const char *name);

/* The value of n.name; NULL when absent or empty (EC2 treats an empty value as absent). */
const char *api_node_str(const struct api_node *n, const char *name);
/* 1 and *out set when present, 0 when absent (*out untouched), -1 (KERR_INVALID) when the value
 * is not "true"/"false" (any case). */
int api_node_bool(const struct api_node *n, const char *name, bool *out, struct kerr **err)
    __attribute__((warn_unused_result));
/* Same for a decimal integer in [min, max]. */
int api_node_int(const struct api_node *n, const char *name, int64_t min, int64_t max, int64_t *out,
                 struct kerr **err) __attribute__((warn_unused_result));
/* The values of the scalar list n.name.1, n.name.2, ... up to the first absent one. *out is an
 * array the caller frees (its strings belong to the params); returns the count. */
size_t api_node_strings(const struct api_node *n, const char *name, const char ***out);

/*
 * EC2 filters, `Filter.N.Name` + `Filter.N.Value.M`: AND across filters, OR across the values of
 * one filter; values are globs (api_glob_match).
 */
struct api_filter {
	const char *name;
	const char **values;
	size_t nvalues;
};

struct api_filters {
	struct api_filter *items;
	size_t n;
};

/* Collect the filters under n.name (usually root, "Filter"). A filter without a name or without
 * values fails with KERR_INVALID. */
int api_filters_parse(const struct api_node *n, const char *name, struct api_filters *out,
                      struct kerr **err) __attribute__((warn_unused_result));
void api_filters_release(struct api_filters *f);
/* The filter by name, or NULL. */
const struct api_filter *api_filters_find(const struct api_filters *f, const char *name);
/* True when one of the filter's patterns matches value (NULL never matches). */
bool api_filter_match(const struct api_filter *f, const char *value);

/* Called once per filter for one resource: return 1 when the resource matches (typically
 * api_filter_match on each of its values for that filter name), 0 when not, -1 with err for a
 * filter name the resource type does not know. */
typedef int (*api_filter_test_fn)(void *ctx, const struct api_filter *f, struct kerr **err);
/* 1 when every filter matches (and when there are none), 0 when one does not, -1 on error. */
int api_filters_match(const struct api_filters *f, api_filter_test_fn test, void *ctx,
                      struct kerr **err);

/* EC2 filter wildcards: '*' any run (also empty), '?' exactly one character (UTF-8 aware), '\'
 * makes the next character literal. Case-sensitive, whole-value match. */
bool api_glob_match(const char *pattern, const char *value);

/* True when s[0..len) is valid UTF-8 (no overlongs, surrogates or values past U+10FFFF). */
bool api_utf8_valid(const char *s, size_t len);

#endif
