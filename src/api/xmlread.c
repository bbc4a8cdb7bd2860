/* A document tree from expat's events. */
#include "xmlread.h"

#include <expat.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define XML_DEPTH_MAX 64

struct builder {
	XML_Parser parser;
	struct xml_node *root;
	struct xml_node *stack[XML_DEPTH_MAX];
	size_t depth;
	size_t text_len[XML_DEPTH_MAX];
	bool too_deep;
};

static void on_start(void *ctx, const XML_Char *name, const XML_Char **attrs)
{
	struct builder *b = ctx;
	const char *local = strrchr(name, ' '); /* namespace-separated: "uri name" */
	struct xml_node *n;

	(void)attrs;
	if (b->depth == XML_DEPTH_MAX) {
		b->too_deep = true;
		XML_StopParser(b->parser, XML_FALSE);
		return;
	}
	n = xcalloc(1, sizeof(*n));
	n->name = xstrdup(local ? local + 1 : name);
	n->text = xstrdup("");
	if (b->depth) {
		struct xml_node *p = b->stack[b->depth - 1];
		p->kids = xreallocarray(p->kids, p->nkids + 1, sizeof(*p->kids));
		p->kids[p->nkids++] = n;
	} else if (!b->root) {
		b->root = n;
	}
	b->text_len[b->depth] = 0;
	b->stack[b->depth++] = n;
}

static void on_end(void *ctx, const XML_Char *name)
{
	struct builder *b = ctx;

	(void)name;
	if (b->depth)
		b->depth--;
}

static void on_text(void *ctx, const XML_Char *s, int len)
{
	struct builder *b = ctx;
	struct xml_node *n;
	size_t *have;

	if (!b->depth || len <= 0)
		return;
	n = b->stack[b->depth - 1];
	have = &b->text_len[b->depth - 1];
	n->text = xrealloc(n->text, *have + (size_t)len + 1);
	memcpy(n->text + *have, s, (size_t)len);
	*have += (size_t)len;
	n->text[*have] = '\0';
}

int xml_parse(const char *data, size_t len, struct xml_node **out, struct kerr **err)
{
	struct builder b = {0};
	int ok;

	*out = NULL;
	b.parser = XML_ParserCreateNS(NULL, ' ');
	if (!b.parser)
		return kerr_set(err, KERR_INTERNAL, "out of memory for the XML parser");
	XML_SetUserData(b.parser, &b);
	XML_SetElementHandler(b.parser, on_start, on_end);
	XML_SetCharacterDataHandler(b.parser, on_text);
	ok = XML_Parse(b.parser, data, (int)len, XML_TRUE) == XML_STATUS_OK;
	if (!ok || !b.root) {
		if (b.too_deep)
			kerr_set(err, KERR_INVALID, "the response nests deeper than %d elements",
			         XML_DEPTH_MAX);
		else
			kerr_set(err, KERR_INVALID, "the response is not XML: %s at line %lu",
			         XML_ErrorString(XML_GetErrorCode(b.parser)),
			         (unsigned long)XML_GetCurrentLineNumber(b.parser));
		XML_ParserFree(b.parser);
		xml_free(b.root);
		return -1;
	}
	XML_ParserFree(b.parser);
	*out = b.root;
	return 0;
}

void xml_free(struct xml_node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		xml_free(n->kids[i]);
	free(n->kids);
	free(n->name);
	free(n->text);
	free(n);
}

const struct xml_node *xml_child(const struct xml_node *n, const char *name)
{
	for (size_t i = 0; n && i < n->nkids; i++)
		if (!strcmp(n->kids[i]->name, name))
			return n->kids[i];
	return NULL;
}

const struct xml_node *xml_path(const struct xml_node *n, const char *path)
{
	char part[128];

	while (n && *path) {
		size_t len = strcspn(path, "/");
		if (len >= sizeof(part))
			return NULL;
		memcpy(part, path, len);
		part[len] = '\0';
		n = xml_child(n, part);
		path += len + (path[len] == '/');
	}
	return n;
}

const char *xml_text(const struct xml_node *n, const char *path, const char *fallback)
{
	const struct xml_node *at = xml_path(n, path);

	return at ? at->text : fallback;
}

const struct xml_node *xml_item(const struct xml_node *n, const char *path, size_t i)
{
	const struct xml_node *list = xml_path(n, path);

	for (size_t k = 0; list && k < list->nkids; k++)
		if (!strcmp(list->kids[k]->name, "item") && i-- == 0)
			return list->kids[k];
	return NULL;
}
