/* ModifyImageAttribute, DescribeImageAttribute, ResetImageAttribute: who may launch an image
 * (launchPermission) and its description; EnableImageDeprecation, DisableImageDeprecation,
 * DisableImage, EnableImage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "server.h"
#include "util/cleanup.h"
#include "util/banned.h"

int api_modify_image_attribute(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ const char **add = NULL, **remove = NULL;
	const char *id, *attr = api_node_str(&c->root, "Attribute"),
	                *type = api_node_str(&c->root, "OperationType");
	const char *desc = api_node_str(&c->root, "Description.Value");
	size_t nadd = 0, nremove = 0;

	id = api_node_str(&c->root, "ImageId");
	if (attr && strcmp(attr, "launchPermission") && strcmp(attr, "description")) {
		api_error_set(e, "InvalidParameterValue",
		              "kiln does not change the attribute %s of an image", attr);
		return -1;
	}
	if (attr && !strcmp(attr, "description"))
		desc = api_node_str(&c->root, "Value") ? api_node_str(&c->root, "Value") : "";
	if (type && strcasecmp(type, "add") && strcasecmp(type, "remove")) {
		api_error_set(e, "InvalidParameterValue",
		              "Value (%s) for parameter operationType is invalid", type);
		return -1;
	}
	if (api_call_grantees(c, "LaunchPermission", "Add", &add, &nadd, e) < 0 ||
	    api_call_grantees(c, "LaunchPermission", "Remove", &remove, &nremove, e) < 0)
		return -1;
	if (!nadd && !nremove && !desc) {
		api_error_missing_parameter(e, "LaunchPermission");
		return -1;
	}
	if (!api_description_ok(desc, e))
		return -1;
	if ((desc &&
	     cloud_image_describe(c->cloud, c->account.id, c->region, id, desc, &err) < 0) ||
	    ((nadd || nremove) && cloud_image_permit(c->cloud, c->account.id, c->region, id, add,
	                                             nadd, remove, nremove, false, &err) < 0))
		return api_error_from_cloud(e, c->action, err), -1;
	api_xml_bool(c->xml, "return", true);
	return 0;
}

int api_reset_image_attribute(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *id, *attr = api_node_str(&c->root, "Attribute");

	id = api_node_str(&c->root, "ImageId");
	if (strcmp(attr, "launchPermission")) {
		api_error_set(e, "InvalidParameterValue",
		              "Only launchPermission can be reset, not %s", attr);
		return -1;
	}
	if (cloud_image_permit(c->cloud, c->account.id, c->region, id, NULL, 0, NULL, 0, true,
	                       &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	api_xml_bool(c->xml, "return", true);
	return 0;
}

int api_describe_image_attribute(struct api_call *c, struct api_error *e)
{
	static const char *const known[] = {
	    "description",  "launchPermission", "blockDeviceMapping",
	    "productCodes", "lastLaunchedTime", "bootMode",
	    "kernel",       "ramdisk",          "sriovNetSupport"};
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ char(*who)[ACCOUNT_ID_LEN + 1] = NULL;
	const char *id, *attr = api_node_str(&c->root, "Attribute");
	struct image im;
	bool ok = false;
	size_t n = 0;

	id = api_node_str(&c->root, "ImageId");
	for (size_t i = 0; i < ARRAY_SIZE(known); i++)
		ok = ok || !strcmp(known[i], attr);
	if (!ok) {
		api_error_set(e, "InvalidParameterValue",
		              "Value (%s) for parameter attribute is invalid", attr);
		return -1;
	}
	/* Only the owner reads an image's attributes, as in EC2. */
	if (cloud_image_permissions(c->cloud, c->account.id, c->region, id, &who, &n, &err) < 0 ||
	    cloud_image_get(c->cloud, c->account.id, c->region, id, &im, &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	api_xml_elem(c->xml, "imageId", id);
	if (!strcmp(attr, "launchPermission")) {
		api_xml_open(c->xml, "launchPermission");
		for (size_t i = 0; i < n; i++) {
			api_xml_item(c->xml);
			api_xml_elem(c->xml, strcmp(who[i], "all") ? "userId" : "group", who[i]);
			api_xml_close(c->xml);
		}
		api_xml_close(c->xml);
	} else if (!strcmp(attr, "description")) {
		api_xml_open(c->xml, "description");
		api_xml_elem(c->xml, "value", im.description);
		api_xml_close(c->xml);
	} else if (!strcmp(attr, "blockDeviceMapping")) {
		api_xml_open(c->xml, "blockDeviceMapping");
		api_write_image_mappings(c->xml, &im);
		api_xml_close(c->xml);
	} else if (!strcmp(attr, "productCodes")) {
		api_write_product_codes(c->xml,
		                        (const char(*)[PRODUCT_CODE_LEN + 1]) im.product_codes,
		                        im.nproduct_codes);
	} else if (!strcmp(attr, "bootMode")) {
		api_xml_open(c->xml, "bootMode");
		api_xml_elem(c->xml, "value", "uefi-preferred");
		api_xml_close(c->xml);
	} else {
		/* lastLaunchedTime, kernel, ramdisk, sriovNetSupport: kiln records none of them. */
		api_xml_open(c->xml, attr);
		api_xml_close(c->xml);
	}
	return 0;
}

/* "2026-12-01T10:00:00Z", with or without ".000": Unix milliseconds, or -1. */
static int64_t parse_time(const char *s)
{
	struct tm tm = {0};
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);

	if (!end)
		return -1;
	if (*end == '.')
		for (end++; *end >= '0' && *end <= '9'; end++)
			;
	if (strcmp(end, "Z") && strcmp(end, "+00:00") && *end)
		return -1;
	return (int64_t)timegm(&tm) * 1000;
}

int api_enable_image_deprecation(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *id, *at = api_node_str(&c->root, "DeprecateAt");
	int64_t ms;

	id = api_node_str(&c->root, "ImageId");
	ms = parse_time(at);
	if (ms <= 0) {
		api_error_set(e, "InvalidParameterValue",
		              "Value (%s) for parameter DeprecateAt is invalid", at);
		return -1;
	}
	if (cloud_image_deprecate(c->cloud, c->account.id, c->region, id, ms, &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	api_xml_bool(c->xml, "return", true);
	return 0;
}

int api_disable_image_deprecation(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *id = api_node_str(&c->root, "ImageId");

	if (cloud_image_deprecate(c->cloud, c->account.id, c->region, id, 0, &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	api_xml_bool(c->xml, "return", true);
	return 0;
}

static int enable(struct api_call *c, struct api_error *e, bool on)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *id = api_node_str(&c->root, "ImageId");

	if (cloud_image_enable(c->cloud, c->account.id, c->region, id, on, &err) < 0) {
		return api_error_from_cloud(e, c->action, err), -1;
	}
	api_xml_bool(c->xml, "return", true);
	return 0;
}

int api_disable_image(struct api_call *c, struct api_error *e)
{
	return enable(c, e, false);
}

int api_enable_image(struct api_call *c, struct api_error *e)
{
	return enable(c, e, true);
}
