/* The body of every Describe action: selection by id, paging, filters, one item per resource. */
#include "api/server.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/banned.h"

bool api_selected(const char *const *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i], name))
			return true;
	return n == 0;
}

const char *api_first_missing(const char *const *list, size_t nlist, const void *items, size_t n,
                              size_t size)
{
	for (size_t i = 0; i < nlist; i++) {
		bool found = false;
		for (size_t k = 0; k < n && !found; k++)
			found = !strcmp((const char *)items + k * size, list[i]);
		if (!found)
			return list[i];
	}
	return NULL;
}

int api_describe_list(struct api_call *c, const struct api_list *l, struct api_error *e)
{
	_cleanup_free_ const char **ids = NULL;
	_cleanup_kerr_ struct kerr *err = NULL;
	struct api_filters filters = {0};
	struct tag_set tags = {0};
	struct api_page page;
	const char *missing;
	void *items = NULL;
	size_t nids, n = 0;
	int r = -1;

	if (api_call_id_list(c, l->id_param, l->prefix, &ids, &nids, e) < 0 ||
	    api_call_page(c, 5, l->clip_results ? INT32_MAX : l->max_results, &page, e) < 0 ||
	    api_call_filters(c, &filters, e) < 0)
		goto out;
	if (l->clip_results && page.max > (size_t)l->max_results)
		page.max = (size_t)l->max_results;
	if (l->load(c, &items, &n, &err) < 0 ||
	    cloud_tags_list(c->cloud, c->account.id, c->region, &tags, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		goto out;
	}
	/* Every id asked for must be there, as EC2 answers. */
	if ((missing = api_first_missing(ids, nids, items, n, l->size))) {
		api_error_set(e, l->not_found_code, "The %s '%s%s%s' does not exist", l->noun,
		              l->brackets ? "[" : "", missing, l->brackets ? "]" : "");
		goto out;
	}
	api_xml_open(c->xml, l->set);
	for (size_t k = 0; k < n; k++) {
		const void *item = (const char *)items + k * l->size;
		int m;

		if (!api_selected(ids, nids, item) || (l->keep && !l->keep(c, item, l->ctx)))
			continue;
		m = api_call_filter_match(&filters, l->fields, l->nfields, item, &tags, e);
		if (m < 0)
			goto out;
		if (!m || !api_page_take(&page))
			continue;
		api_xml_item(c->xml);
		l->write(c->xml, item, &tags);
		api_xml_close(c->xml);
	}
	api_xml_close(c->xml);
	api_page_end(c, &page);
	r = 0;
out:
	free(items);
	api_filters_release(&filters);
	tag_set_release(&tags);
	return r;
}
