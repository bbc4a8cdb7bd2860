/* Reading EC2 responses on the client side: expat parses the document into a small tree of
 * elements (name without namespace, text, children), and lookups walk it by path. */
#ifndef KILN_API_XMLREAD_H
#define KILN_API_XMLREAD_H

#include <stddef.h>

#include "util/kerr.h"

struct xml_node {
	char *name; /* local name: "instancesSet" */
	char *text; /* the character data directly inside, "" when none */
	struct xml_node **kids;
	size_t nkids;
};

/* Parse a whole document; KERR_INVALID for what is not well-formed XML or nests too deep. */
int xml_parse(const char *data, size_t len, struct xml_node **out, struct kerr **err);
void xml_free(struct xml_node *n);

/* The first child element named name, or NULL. */
const struct xml_node *xml_child(const struct xml_node *n, const char *name);
/* Follow a "/"-separated path of child names ("instanceState/name"); NULL when absent. */
const struct xml_node *xml_path(const struct xml_node *n, const char *path);
/* The text at path, or fallback. */
const char *xml_text(const struct xml_node *n, const char *path, const char *fallback);
/* The i-th <item> under the list element at path (i from 0), or NULL past the end. */
const struct xml_node *xml_item(const struct xml_node *n, const char *path, size_t i);

#endif
