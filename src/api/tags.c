/* CreateTags, DeleteTags, DescribeTags, and the tag parameters other actions share
 * (TagSpecification, tagSet). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "util/cleanup.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

int api_call_tags(struct api_call *c, const struct api_node *under, const char *name,
                  bool allow_no_value, struct tag **tags, bool **with_value, size_t *n,
                  struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	size_t count = api_node_count(under, name);

	*tags = xcalloc(count ? count : 1, sizeof(**tags));
	if (with_value)
		*with_value = xcalloc(count ? count : 1, sizeof(**with_value));
	*n = count;
	for (size_t i = 0; i < count; i++) {
		struct api_node item;
		const struct api_param *raw;
		char path[API_PARAM_NAME_MAX + 1];
		const char *key;

		api_node_item(under, name, i + 1, &item);
		key = api_node_str(&item, "Key");
		if (!key) {
			api_error_missing_parameter(e, api_node_path(&item, "Key", path));
			goto on_error;
		}
		str_copy((*tags)[i].key, key, sizeof((*tags)[i].key));
		/* An empty value is a value here ("" is a valid tag value); absent is not. */
		raw = api_params_find(c->root.params, api_node_path(&item, "Value", path));
		if (!raw && !allow_no_value) {
			api_error_missing_parameter(e, path);
			goto on_error;
		}
		if (raw)
			str_copy((*tags)[i].value, raw->value, sizeof((*tags)[i].value));
		if (with_value)
			(*with_value)[i] = raw != NULL;
		if (strlen(key) > TAG_KEY_MAX || (raw && raw->value_len > TAG_VALUE_MAX) ||
		    cloud_tag_check(&(*tags)[i], &err) < 0) {
			if (!err)
				kerr_set(&err, KERR_INVALID, "Tag %zu is too long", i + 1);
			api_error_from_kerr(e, err, "InvalidParameterValue");
			goto on_error;
		}
	}
	return 0;

on_error:
	free(*tags);
	*tags = NULL;
	if (with_value) {
		free(*with_value);
		*with_value = NULL;
	}
	return -1;
}

int api_call_tag_types(struct api_call *c, const char *const *types, size_t ntypes,
                       struct api_error *e)
{
	size_t count = api_node_count(&c->root, "TagSpecification");

	for (size_t i = 1; i <= count; i++) {
		struct api_node spec;
		const char *rt;
		bool known = false;

		api_node_item(&c->root, "TagSpecification", i, &spec);
		rt = api_node_str(&spec, "ResourceType");
		for (size_t k = 0; k < ntypes && rt; k++)
			known = known || !strcmp(types[k], rt);
		if (!known) {
			api_error_set(
			    e, "InvalidParameterValue",
			    "'%s' is not a valid taggable resource type for this operation",
			    rt ? rt : "");
			return -1;
		}
	}
	return 0;
}

int api_call_tag_specs(struct api_call *c, const char *type, struct tag **tags, size_t *n,
                       struct api_error *e)
{
	size_t count = api_node_count(&c->root, "TagSpecification");

	*tags = NULL;
	*n = 0;
	for (size_t i = 1; i <= count; i++) {
		struct api_node spec;
		struct tag *more;
		size_t nmore;
		const char *rt;

		api_node_item(&c->root, "TagSpecification", i, &spec);
		rt = api_node_str(&spec, "ResourceType");
		if (!rt || strcmp(rt, type))
			continue;
		if (api_call_tags(c, &spec, "Tag", false, &more, NULL, &nmore, e) < 0) {
			free(*tags);
			*tags = NULL;
			*n = 0;
			return -1;
		}
		*tags = xreallocarray(*tags, *n + nmore + 1, sizeof(**tags));
		memcpy(*tags + *n, more, nmore * sizeof(*more));
		*n += nmore;
		free(more);
	}
	return 0;
}

void api_write_tag_set(struct api_xml *x, const struct tag_set *tags, const char *resource)
{
	size_t n;
	const struct tag *t = tag_set_of(tags, resource, &n);

	if (!n)
		return; /* EC2 leaves tagSet out when there are none */
	api_xml_open(x, "tagSet");
	for (size_t i = 0; i < n; i++) {
		api_xml_item(x);
		api_xml_elem(x, "key", t[i].key);
		api_xml_elem(x, "value", t[i].value);
		api_xml_close(x);
	}
	api_xml_close(x);
}

static int resource_ids(struct api_call *c, const char ***ids, size_t *n, struct api_error *e)
{
	*n = api_node_strings(&c->root, "ResourceId", ids);
	for (size_t i = 0; i < *n; i++)
		if (!cloud_resource_type((*ids)[i])) {
			api_error_set(e, "InvalidID", "The ID '%s' is not valid", (*ids)[i]);
			return -1;
		}
	return 0;
}

int api_create_tags(struct api_call *c, struct api_error *e)
{
	_cleanup_free_ const char **ids = NULL;
	_cleanup_free_ struct tag *tags = NULL;
	_cleanup_kerr_ struct kerr *err = NULL;
	size_t nids, ntags;

	if (resource_ids(c, &ids, &nids, e) < 0 ||
	    api_call_tags(c, &c->root, "Tag", false, &tags, NULL, &ntags, e) < 0)
		return -1;
	if (cloud_tags_create(c->cloud, c->account.id, c->region, ids, nids, tags, ntags, &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	api_xml_bool(c->xml, "return", true);
	return 0;
}

int api_delete_tags(struct api_call *c, struct api_error *e)
{
	_cleanup_free_ const char **ids = NULL;
	_cleanup_free_ struct tag *tags = NULL;
	_cleanup_free_ bool *with_value = NULL;
	_cleanup_kerr_ struct kerr *err = NULL;
	size_t nids, ntags;

	if (resource_ids(c, &ids, &nids, e) < 0 ||
	    api_call_tags(c, &c->root, "Tag", true, &tags, &with_value, &ntags, e) < 0)
		return -1;
	if (cloud_tags_delete(c->cloud, c->account.id, c->region, ids, nids, tags, with_value,
	                      ntags, &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	api_xml_bool(c->xml, "return", true);
	return 0;
}

static const char *tag_type(const void *obj, char *buf, size_t size)
{
	const char *t = cloud_resource_type(((const struct tag *)obj)->resource);

	str_copy(buf, t ? t : "", size);
	return buf;
}

static const struct api_filter_field tag_fields[] = {
    API_FIELD_TEXT_OF("key", struct tag, key),
    API_FIELD_TEXT_OF("value", struct tag, value),
    API_FIELD_TEXT_OF("resource-id", struct tag, resource),
    API_FIELD_COMPUTED_OF("resource-type", tag_type),
};

int api_describe_tags(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct api_filters filters = {0};
	struct tag_set tags = {0};
	struct api_page page;
	int r = -1;

	if (api_call_page(c, 5, 1000, &page, e) < 0 || api_call_filters(c, &filters, e) < 0)
		return -1;
	if (cloud_tags_list(c->cloud, c->account.id, c->region, &tags, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		goto out;
	}
	api_xml_open(c->xml, "tagSet");
	for (size_t i = 0; i < tags.n; i++) {
		char type[16];
		int m = api_call_filter_match(&filters, tag_fields, ARRAY_SIZE(tag_fields),
		                              &tags.v[i], NULL, e);

		if (m < 0)
			goto out;
		if (!m || !api_page_take(&page))
			continue;
		api_xml_item(c->xml);
		api_xml_elem(c->xml, "resourceId", tags.v[i].resource);
		api_xml_elem(c->xml, "resourceType", tag_type(&tags.v[i], type, sizeof(type)));
		api_xml_elem(c->xml, "key", tags.v[i].key);
		api_xml_elem(c->xml, "value", tags.v[i].value);
		api_xml_close(c->xml);
	}
	api_xml_close(c->xml);
	api_page_end(c, &page);
	r = 0;
out:
	api_filters_release(&filters);
	tag_set_release(&tags);
	return r;
}
