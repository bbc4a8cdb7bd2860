/* DescribeInstanceAttribute: one attribute of an instance of the caller's. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "server.h"
#include "util/cleanup.h"
#include "util/xalloc.h"
#include "util/banned.h"

static void attr_value(struct api_xml *x, const char *name, const char *value)
{
	api_xml_open(x, name);
	api_xml_elem(x, "value", value);
	api_xml_close(x);
}

static void attr_bool(struct api_xml *x, const char *name, bool value)
{
	api_xml_open(x, name);
	api_xml_bool(x, "value", value);
	api_xml_close(x);
}

static int write_user_data(struct api_call *c, const char *id, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ uint8_t *ud = NULL;
	_cleanup_free_ char *b64 = NULL;
	size_t len = 0;

	if (cloud_instance_user_data(c->cloud, c->account.id, c->region, id, &ud, &len, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	api_xml_open(c->xml, "userData");
	if (len) {
		b64 = xmalloc((len + 2) / 3 * 4 + 1);
		EVP_EncodeBlock((unsigned char *)b64, ud, (int)len);
		api_xml_elem(c->xml, "value", b64);
	}
	api_xml_close(c->xml);
	return 0;
}

static int write_mappings(struct api_call *c, const char *id, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ struct volume *v = NULL;
	size_t n = 0;

	if (cloud_volumes_list(c->cloud, c->account.id, c->region, &v, &n, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	api_xml_open(c->xml, "blockDeviceMapping");
	for (size_t i = 0; i < n; i++) {
		if (strcmp(v[i].instance, id))
			continue;
		api_xml_item(c->xml);
		api_xml_elem(c->xml, "deviceName", v[i].device);
		api_xml_open(c->xml, "ebs");
		api_xml_elem(c->xml, "volumeId", v[i].id);
		api_xml_elem(c->xml, "status", v[i].attach_state);
		api_xml_time(c->xml, "attachTime", v[i].attach_ms);
		api_xml_bool(c->xml, "deleteOnTermination", v[i].delete_on_termination);
		api_xml_close(c->xml);
		api_xml_close(c->xml);
	}
	api_xml_close(c->xml);
	return 0;
}

int api_describe_instance_attribute(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ struct instance *v = NULL;
	const char *id = api_node_str(&c->root, "InstanceId"),
	           *attr = api_node_str(&c->root, "Attribute");
	const struct instance *in = NULL;
	size_t n = 0;

	if (cloud_instances_list(c->cloud, c->account.id, c->region, &v, &n, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	for (size_t i = 0; i < n && !in; i++)
		if (!strcmp(v[i].id, id))
			in = &v[i];
	if (!in) {
		api_error_set(e, "InvalidInstanceID.NotFound",
		              "The instance ID '%s' does not exist", id);
		return -1;
	}
	api_xml_elem(c->xml, "instanceId", id);
	if (!strcmp(attr, "instanceType"))
		attr_value(c->xml, "instanceType", in->type);
	else if (!strcmp(attr, "userData"))
		return write_user_data(c, id, e);
	else if (!strcmp(attr, "disableApiTermination"))
		attr_bool(c->xml, "disableApiTermination", in->disable_api_termination);
	else if (!strcmp(attr, "disableApiStop"))
		attr_bool(c->xml, "disableApiStop", in->disable_api_stop);
	else if (!strcmp(attr, "instanceInitiatedShutdownBehavior"))
		attr_value(c->xml, "instanceInitiatedShutdownBehavior", in->shutdown_behavior);
	else if (!strcmp(attr, "rootDeviceName"))
		attr_value(c->xml, "rootDeviceName", "/dev/xvda");
	else if (!strcmp(attr, "blockDeviceMapping"))
		return write_mappings(c, id, e);
	else if (!strcmp(attr, "productCodes"))
		api_write_product_codes(c->xml,
		                        (const char(*)[PRODUCT_CODE_LEN + 1]) in->product_codes,
		                        in->nproduct_codes);
	else if (!strcmp(attr, "groupSet")) {
		api_xml_open(c->xml, "groupSet");
		for (size_t i = 0; i < in->ngroups; i++) {
			api_xml_item(c->xml);
			api_xml_elem(c->xml, "groupId", in->groups[i]);
			api_xml_close(c->xml);
		}
		api_xml_close(c->xml);
	} else {
		api_error_set(
		    e, "InvalidParameterValue",
		    "Value (%s) for parameter attribute is invalid. kiln does not describe "
		    "that attribute",
		    attr);
		return -1;
	}
	return 0;
}
