/* Filter.N of Describe actions: parsing them, and matching a resource through its table of
 * fields (tag:KEY, tag-key and tag-value for every resource). */
#include "api/server.h"

#include <string.h>

#include "util/cleanup.h"
#include "util/banned.h"

int api_call_filters(struct api_call *c, struct api_filters *out, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;

	if (api_filters_parse(&c->root, "Filter", out, &err) < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		return -1;
	}
	return 0;
}

struct field_match {
	const struct api_filter_field *fields;
	size_t n;
	const void *obj;
	const struct tag *tags;
	size_t ntags;
};

/* tag:KEY (the value of that tag), tag-key and tag-value (any of the resource's tags). */
static int match_tag(const struct field_match *m, const struct api_filter *f)
{
	bool key = !strcmp(f->name, "tag-key");

	for (size_t i = 0; i < m->ntags; i++) {
		if (!strncmp(f->name, "tag:", 4)) {
			if (!strcmp(m->tags[i].key, f->name + 4))
				return api_filter_match(f, m->tags[i].value);
		} else if (api_filter_match(f, key ? m->tags[i].key : m->tags[i].value)) {
			return 1;
		}
	}
	return 0;
}

static int match_field(void *ctx, const struct api_filter *f, struct kerr **err)
{
	const struct field_match *m = ctx;
	char buf[64];

	if (!strncmp(f->name, "tag:", 4) || !strcmp(f->name, "tag-key") ||
	    !strcmp(f->name, "tag-value"))
		return match_tag(m, f);
	for (size_t i = 0; i < m->n; i++) {
		const struct api_filter_field *fd = &m->fields[i];
		if (strcmp(fd->name, f->name))
			continue;
		return api_filter_match(
		    f, fd->kind == API_FIELD_TEXT    ? (const char *)m->obj + fd->offset
		       : fd->kind == API_FIELD_CONST ? fd->constant
		                                     : fd->compute(m->obj, buf, sizeof(buf)));
	}
	return kerr_set(err, KERR_INVALID, "The filter '%s' is invalid", f->name);
}

int api_call_filter_match(const struct api_filters *f, const struct api_filter_field *fields,
                          size_t nfields, const void *obj, const struct tag_set *tags,
                          struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct field_match ctx = {fields, nfields, obj, NULL, 0};
	int m;

	if (tags)
		ctx.tags = tag_set_of(tags, (const char *)obj, &ctx.ntags);
	m = api_filters_match(f, match_field, &ctx, &err);
	if (m < 0)
		api_error_from_kerr(e, err, "InvalidParameterValue");
	return m;
}
