/* libFuzzer target: api_params_decode and the list/nesting/filter accessors must refuse, never
 * crash on, any input. The first byte picks small limits sometimes, so limit paths run too. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int any_filter(void *ctx, const struct api_filter *f, struct kerr **err)
{
	const char *value = ctx;

	(void)err;
	return api_filter_match(f, value);
}

static void walk(const struct api_node *n, const char *list, int depth)
{
	size_t count = api_node_count(n, list);
	struct kerr *err = NULL;

	for (size_t i = 1; i <= count && i <= 8; i++) {
		struct api_node item, child;
		const char **values;
		bool b;
		int64_t v;
		size_t nv;

		api_node_item(n, list, i, &item);
		(void)api_node_str(&item, NULL);
		(void)api_node_str(&item, "Name");
		if (api_node_bool(&item, "Ebs.DeleteOnTermination", &b, &err) < 0)
			kerr_free(err), err = NULL;
		if (api_node_int(&item, "Ebs.VolumeSize", 1, 16384, &v, &err) < 0)
			kerr_free(err), err = NULL;
		nv = api_node_strings(&item, "Value", &values);
		for (size_t k = 0; k < nv; k++)
			(void)api_glob_match(values[k], "web-2024-01");
		free(values);
		api_node_child(&item, "Ebs", &child);
		(void)api_node_present(&child, NULL);
		if (depth < 3) {
			walk(&item, "Tag", depth + 1);
			walk(&item, "Value", depth + 1);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_query_limits lim = API_QUERY_LIMITS_DEFAULT;
	struct api_params p;
	struct api_node root;
	struct api_filters f;
	struct kerr *err = NULL;

	if (size && data[0] == '!') {
		lim.max_pairs = 4;
		lim.max_name = 8;
		lim.max_value = 8;
		lim.max_total = 64;
	}
	api_params_init(&p);
	if (api_params_decode(&p, (const char *)data, size, &lim, &err) < 0) {
		kerr_free(err);
		api_params_release(&p);
		return 0;
	}
	api_params_root(&p, &root);
	walk(&root, "Filter", 0);
	walk(&root, "TagSpecification", 0);
	walk(&root, "BlockDeviceMapping", 0);
	if (p.n) {
		/* every received name as a list prefix, and every value as a glob against every
		 * value */
		for (size_t i = 0; i < p.n && i < 16; i++) {
			(void)api_node_count(&root, p.items[i].name);
			for (size_t j = 0; j < p.n && j < 16; j++)
				(void)api_glob_match(p.items[i].value, p.items[j].value);
		}
	}
	if (api_filters_parse(&root, "Filter", &f, &err) == 0) {
		if (api_filters_match(&f, any_filter, (void *)"web-2024", &err) < 0)
			kerr_free(err), err = NULL;
		api_filters_release(&f);
	} else {
		kerr_free(err);
	}
	api_params_release(&p);
	return 0;
}
