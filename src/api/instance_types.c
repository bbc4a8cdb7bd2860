/* DescribeInstanceTypes and DescribeInstanceTypeOfferings: the runtime's table, in EC2's shape. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"
#include "server.h"
#include "util/cleanup.h"
#include "util/str.h"
#include "util/banned.h"

static bool burstable(const struct instance_type *t)
{
	return t->name[0] == 't';
}

static const char *type_name(const void *obj, char *buf, size_t size)
{
	(void)buf;
	(void)size;
	return ((const struct instance_type *)obj)->name;
}

static const char *type_vcpus(const void *obj, char *buf, size_t size)
{
	snprintf(buf, size, "%u", ((const struct instance_type *)obj)->vcpus);
	return buf;
}

static const char *type_memory(const void *obj, char *buf, size_t size)
{
	snprintf(buf, size, "%" PRIu64, ((const struct instance_type *)obj)->memory_mib);
	return buf;
}

static const char *type_burstable(const void *obj, char *buf, size_t size)
{
	(void)buf;
	(void)size;
	return burstable(obj) ? "true" : "false";
}

static const struct api_filter_field type_fields[] = {
    API_FIELD_COMPUTED_OF("instance-type", type_name),
    API_FIELD_COMPUTED_OF("vcpu-info.default-vcpus", type_vcpus),
    API_FIELD_COMPUTED_OF("memory-info.size-in-mib", type_memory),
    API_FIELD_CONST_OF("current-generation", "true"),
    API_FIELD_COMPUTED_OF("burstable-performance-supported", type_burstable),
    API_FIELD_CONST_OF("processor-info.supported-architecture", "x86_64"),
    API_FIELD_CONST_OF("supported-root-device-type", "ebs"),
    API_FIELD_CONST_OF("supported-virtualization-type", "hvm"),
};

static void write_type(struct api_xml *x, const struct instance_type *t)
{
	static const char *const usage[] = {"on-demand"};
	static const char *const roots[] = {"ebs"};
	static const char *const virt[] = {"hvm"};
	static const char *const arch[] = {"x86_64"};

	api_xml_item(x);
	api_xml_elem(x, "instanceType", t->name);
	api_xml_bool(x, "currentGeneration", true);
	api_xml_bool(x, "freeTierEligible",
	             !strcmp(t->name, "t2.micro") || !strcmp(t->name, "t3.micro"));
	api_xml_string_set(x, "supportedUsageClasses", "item", usage, 1);
	api_xml_string_set(x, "supportedRootDeviceTypes", "item", roots, 1);
	api_xml_string_set(x, "supportedVirtualizationTypes", "item", virt, 1);
	api_xml_bool(x, "bareMetal", false);
	api_xml_open(x, "processorInfo");
	api_xml_string_set(x, "supportedArchitectures", "item", arch, 1);
	api_xml_close(x);
	api_xml_open(x, "vCpuInfo");
	api_xml_int(x, "defaultVCpus", t->vcpus);
	api_xml_int(x, "defaultCores", t->vcpus);
	api_xml_int(x, "defaultThreadsPerCore", 1);
	api_xml_close(x);
	api_xml_open(x, "memoryInfo");
	api_xml_int(x, "sizeInMiB", (int64_t)t->memory_mib);
	api_xml_close(x);
	api_xml_bool(x, "instanceStorageSupported", false);
	api_xml_bool(x, "hibernationSupported", false);
	api_xml_bool(x, "burstablePerformanceSupported", burstable(t));
	api_xml_close(x);
}

int api_describe_instance_types(struct api_call *c, struct api_error *e)
{
	_cleanup_free_ const char **names = NULL;
	_cleanup_kerr_ struct kerr *err = NULL;
	struct api_filters filters = {0};
	size_t nnames = api_node_strings(&c->root, "InstanceType", &names);
	const char *token = api_node_str(&c->root, "NextToken");
	int64_t max = 100, start = 0;
	size_t shown = 0, i;
	int r = -1;

	if (api_call_filters(c, &filters, e) < 0)
		goto out;
	if (api_node_int(&c->root, "MaxResults", 5, 100, &max, &err) < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		goto out;
	}
	if (token) {
		char *end;
		start = strtoll(token, &end, 10);
		if (*end || start < 0 || start > 1000) {
			api_error_set(e, "InvalidParameterValue", "Invalid NextToken '%s'", token);
			goto out;
		}
	}
	for (size_t k = 0; k < nnames; k++) {
		if (!instance_type_find(names[k])) {
			api_error_set(e, "InvalidInstanceType",
			              "The following supplied instance types do not exist: [%s]",
			              names[k]);
			goto out;
		}
	}
	api_xml_open(c->xml, "instanceTypeSet");
	for (i = (size_t)start; instance_types[i].name && shown < (size_t)max; i++) {
		const struct instance_type *t = &instance_types[i];
		int m;

		if (!api_selected(names, nnames, t->name))
			continue;
		m = api_call_filter_match(&filters, type_fields, ARRAY_SIZE(type_fields), t, NULL,
		                          e);
		if (m < 0)
			goto out;
		if (!m)
			continue;
		write_type(c->xml, t);
		shown++;
	}
	api_xml_close(c->xml);
	/* More may follow: the token is where to go on (opaque to clients, checked on the way in).
	 */
	if (instance_types[i].name && shown == (size_t)max)
		api_xml_elemf(c->xml, "nextToken", "%zu", i);
	r = 0;
out:
	api_filters_release(&filters);
	return r;
}

/* DescribeInstanceTypeOfferings: every type is offered in the region and in each of its zones
 * (one machine serves them all). */
struct offering {
	char type[32];
	char location[32];
};

static const struct api_filter_field offering_fields[] = {
    API_FIELD_TEXT_OF("instance-type", struct offering, type),
    API_FIELD_TEXT_OF("location", struct offering, location),
};

static const char *const location_types[] = {"region", "availability-zone", "availability-zone-id"};

int api_describe_instance_type_offerings(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *ltype = api_node_str(&c->root, "LocationType");
	struct api_filters filters = {0};
	struct topology t = {0};
	struct api_page page;
	size_t kind = 0;
	int r = -1;

	if (ltype) {
		while (kind < ARRAY_SIZE(location_types) && strcmp(location_types[kind], ltype))
			kind++;
		if (kind == ARRAY_SIZE(location_types)) {
			api_error_set(e, "InvalidParameterValue",
			              "Value (%s) for parameter locationType is invalid: region, "
			              "availability-zone or availability-zone-id",
			              ltype);
			return -1;
		}
	}
	if (api_call_filters(c, &filters, e) < 0 || api_call_page(c, 5, 1000, &page, e) < 0)
		goto out;
	if (cloud_regions(c->cloud, &t, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		goto out;
	}
	api_xml_open(c->xml, "instanceTypeOfferingSet");
	for (size_t z = 0; z < (kind ? t.nzones : 1); z++) {
		if (kind && strcmp(t.zones[z].region, c->region))
			continue;
		for (size_t i = 0; instance_types[i].name; i++) {
			struct offering o;
			int m;

			str_copy(o.type, instance_types[i].name, sizeof(o.type));
			str_copy(o.location,
			         kind == 0   ? c->region
			         : kind == 1 ? t.zones[z].name
			                     : t.zones[z].zone_id,
			         sizeof(o.location));
			m = api_call_filter_match(&filters, offering_fields,
			                          ARRAY_SIZE(offering_fields), &o, NULL, e);
			if (m < 0)
				goto out;
			if (!m || !api_page_take(&page))
				continue;
			api_xml_item(c->xml);
			api_xml_elem(c->xml, "instanceType", o.type);
			api_xml_elem(c->xml, "locationType", location_types[kind]);
			api_xml_elem(c->xml, "location", o.location);
			api_xml_close(c->xml);
		}
	}
	api_xml_close(c->xml);
	api_page_end(c, &page);
	r = 0;
out:
	api_filters_release(&filters);
	topology_release(&t);
	return r;
}
