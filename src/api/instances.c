/* RunInstances, DescribeInstances, StartInstances, StopInstances, TerminateInstances. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "server.h"
#include "util/cleanup.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define USER_DATA_MAX (16 << 10) /* EC2's limit, decoded */

static void write_state(struct api_xml *x, const char *name, const char *state)
{
	api_xml_open(x, name);
	api_xml_int(x, "code", cloud_instance_state_code(state));
	api_xml_elem(x, "name", state);
	api_xml_close(x);
}

static void write_instance(struct api_xml *x, const struct instance *in)
{
	char dns[96], dashed[16];
	size_t k;

	for (k = 0; in->private_ip[k] && k + 1 < sizeof(dashed); k++)
		dashed[k] = in->private_ip[k] == '.' ? '-' : in->private_ip[k];
	dashed[k] = '\0';
	if (!strcmp(in->region, "us-east-1"))
		snprintf(dns, sizeof(dns), "ip-%s.ec2.internal", dashed);
	else
		snprintf(dns, sizeof(dns), "ip-%s.%s.compute.internal", dashed, in->region);
	api_xml_item(x);
	api_xml_elem(x, "instanceId", in->id);
	api_xml_elem(x, "imageId", in->image);
	write_state(x, "instanceState", in->state);
	api_xml_elem(x, "privateDnsName", dns);
	api_xml_elem(x, "dnsName", "");
	api_xml_elem(x, "reason", in->state_reason);
	if (in->key_name[0])
		api_xml_elem(x, "keyName", in->key_name);
	api_xml_int(x, "amiLaunchIndex", in->launch_index);
	api_xml_elem(x, "instanceType", in->type);
	api_xml_time(x, "launchTime", in->launch_ms);
	api_xml_open(x, "placement");
	api_xml_elem(x, "availabilityZone", in->zone);
	api_xml_elem(x, "tenancy", "default");
	api_xml_close(x);
	api_xml_open(x, "monitoring");
	api_xml_elem(x, "state", "disabled");
	api_xml_close(x);
	if (strcmp(in->state, "terminated"))
		api_xml_elem(x, "privateIpAddress", in->private_ip);
	api_xml_elem(x, "architecture", "x86_64");
	api_xml_elem(x, "rootDeviceType", "ebs");
	api_xml_elem(x, "rootDeviceName", "/dev/xvda");
	api_xml_open(x, "blockDeviceMapping");
	if (strcmp(in->state, "terminated")) {
		api_xml_item(x);
		api_xml_elem(x, "deviceName", "/dev/xvda");
		api_xml_open(x, "ebs");
		api_xml_elem(x, "volumeId", in->root_volume);
		api_xml_elem(x, "status", "attached");
		api_xml_time(x, "attachTime", in->launch_ms);
		api_xml_bool(x, "deleteOnTermination", in->delete_on_termination);
		api_xml_close(x);
		api_xml_close(x);
	}
	api_xml_close(x);
	api_xml_elem(x, "virtualizationType", "hvm");
	api_xml_elem(x, "hypervisor", "xen");
	api_xml_bool(x, "sourceDestCheck", true);
	if (in->state_reason[0]) {
		char code[64];
		size_t n = strcspn(in->state_reason, ":");
		snprintf(code, sizeof(code), "%.*s", (int)(n < 63 ? n : 63), in->state_reason);
		api_xml_open(x, "stateReason");
		api_xml_elem(x, "code", code);
		api_xml_elem(x, "message", in->state_reason);
		api_xml_close(x);
	}
	api_xml_close(x);
}

static void write_reservation_head(struct api_xml *x, const struct instance *in)
{
	api_xml_elem(x, "reservationId", in->reservation);
	api_xml_elem(x, "ownerId", in->owner);
	api_xml_open(x, "groupSet");
	api_xml_close(x);
}

/* InstanceId.N, checked for shape: InvalidInstanceID.Malformed. */
static int instance_ids(struct api_call *c, const char ***ids, size_t *n, bool required, struct api_error *e)
{
	*n = api_node_strings(&c->root, "InstanceId", ids);
	if (required && !*n) {
		api_error_missing_parameter(e, "InstanceId");
		return -1;
	}
	for (size_t i = 0; i < *n; i++)
		if (!id_valid("i", (*ids)[i])) {
			api_error_set(e, "InvalidInstanceID.Malformed", "Invalid id: \"%s\"", (*ids)[i]);
			return -1;
		}
	return 0;
}

int api_run_instances(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ struct instance *v = NULL;
	_cleanup_free_ uint8_t *ud = NULL;
	struct run_request req = {.region = c->region};
	struct api_node bdm;
	int64_t min = 0, max = 0, size = 0;
	size_t n = 0;

	req.image = api_node_str(&c->root, "ImageId");
	req.type = api_node_str(&c->root, "InstanceType");
	req.zone = api_node_str(&c->root, "Placement.AvailabilityZone");
	req.key_name = api_node_str(&c->root, "KeyName");
	if (!req.image) {
		api_error_missing_parameter(e, "ImageId");
		return -1;
	}
	if (!id_valid("ami", req.image)) {
		api_error_set(e, "InvalidAMIID.Malformed", "Invalid id: \"%s\" (expecting \"ami-...\")", req.image);
		return -1;
	}
	if (!req.type)
		req.type = "t2.micro";
	if (!api_node_present(&c->root, "MinCount") || !api_node_present(&c->root, "MaxCount")) {
		api_error_missing_parameter(e, !api_node_present(&c->root, "MinCount") ? "MinCount" : "MaxCount");
		return -1;
	}
	if (api_node_int(&c->root, "MinCount", 1, 20, &min, &err) < 0 ||
	    api_node_int(&c->root, "MaxCount", 1, 20, &max, &err) < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		return -1;
	}
	if (max < min) {
		api_error_set(e, "InvalidParameterValue", "MinCount (%lld) is larger than MaxCount (%lld)",
			      (long long)min, (long long)max);
		return -1;
	}
	req.min_count = (int)min;
	req.max_count = (int)max;
	api_node_item(&c->root, "BlockDeviceMapping", 1, &bdm);
	if (api_node_present(&bdm, "Ebs.VolumeSize") &&
	    api_node_int(&bdm, "Ebs.VolumeSize", 1, 16384, &size, &err) < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		return -1;
	}
	req.root_size_gib = (uint64_t)size;
	if (api_node_str(&c->root, "UserData")) {
		const char *b64 = api_node_str(&c->root, "UserData");
		size_t len = strlen(b64);
		int out;
		if (len > (USER_DATA_MAX / 3 + 1) * 4) {
			api_error_set(e, "InvalidParameterValue", "User data is limited to %d bytes", USER_DATA_MAX);
			return -1;
		}
		ud = xmalloc(len / 4 * 3 + 3);
		out = EVP_DecodeBlock(ud, (const unsigned char *)b64, (int)len);
		if (out < 0 || len % 4) {
			api_error_set(e, "InvalidParameterValue", "Invalid BASE64 encoding of user data");
			return -1;
		}
		/* EVP_DecodeBlock counts the padding as data: take it back off. */
		while (len && b64[len - 1] == '=' && out > 0) {
			len--;
			out--;
		}
		req.user_data = ud;
		req.user_data_len = (size_t)out;
	}
	if (c->dry_run) {
		api_error_dry_run(e);
		return -1;
	}
	if (cloud_run_instances(c->cloud, c->account.id, &req, &v, &n, &err) < 0) {
		api_error_from_kerr(e, err, err->kind == KERR_NOT_FOUND  ? "InvalidAMIID.NotFound"
					    : strstr(err->msg, "instance type") ? "InvalidInstanceType"
					    : strstr(err->msg, "availability zone") ? "InvalidParameterValue"
					    : err->kind == KERR_LIMIT ? "InsufficientInstanceCapacity"
								       : NULL);
		return -1;
	}
	write_reservation_head(c->xml, &v[0]);
	api_xml_open(c->xml, "instancesSet");
	for (size_t i = 0; i < n; i++)
		write_instance(c->xml, &v[i]);
	api_xml_close(c->xml);
	return 0;
}

static const struct api_filter_field instance_fields[] = {
	API_FIELD_TEXT_OF("instance-id", struct instance, id),
	API_FIELD_TEXT_OF("instance-state-name", struct instance, state),
	API_FIELD_TEXT_OF("image-id", struct instance, image),
	API_FIELD_TEXT_OF("availability-zone", struct instance, zone),
	API_FIELD_TEXT_OF("instance-type", struct instance, type),
	API_FIELD_TEXT_OF("private-ip-address", struct instance, private_ip),
	API_FIELD_TEXT_OF("reservation-id", struct instance, reservation),
	API_FIELD_TEXT_OF("key-name", struct instance, key_name),
};

int api_describe_instances(struct api_call *c, struct api_error *e)
{
	_cleanup_free_ const char **ids = NULL;
	_cleanup_free_ struct instance *v = NULL;
	_cleanup_kerr_ struct kerr *err = NULL;
	struct api_filters filters = {0};
	const char *open_reservation = NULL, *missing;
	size_t nids, n;
	int r = -1;

	if (instance_ids(c, &ids, &nids, false, e) < 0 || api_call_filters(c, &filters, e) < 0)
		goto out;
	if (cloud_instances_list(c->cloud, c->account.id, c->region, &v, &n, &err) < 0) {
		api_error_from_kerr(e, err, NULL);
		goto out;
	}
	if ((missing = api_first_missing(ids, nids, v, n, sizeof(*v)))) {
		api_error_set(e, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", missing);
		goto out;
	}
	api_xml_open(c->xml, "reservationSet");
	for (size_t k = 0; k < n; k++) {
		int m;

		if (!api_selected(ids, nids, v[k].id))
			continue;
		m = api_call_filter_match(&filters, instance_fields, ARRAY_SIZE(instance_fields), &v[k], e);
		if (m < 0)
			goto out;
		if (!m)
			continue;
		/* Instances come grouped by reservation (the list is ordered that way). */
		if (!open_reservation || strcmp(open_reservation, v[k].reservation)) {
			if (open_reservation) {
				api_xml_close(c->xml); /* instancesSet */
				api_xml_close(c->xml); /* item */
			}
			api_xml_item(c->xml);
			write_reservation_head(c->xml, &v[k]);
			api_xml_open(c->xml, "instancesSet");
			open_reservation = v[k].reservation;
		}
		write_instance(c->xml, &v[k]);
	}
	if (open_reservation) {
		api_xml_close(c->xml);
		api_xml_close(c->xml);
	}
	api_xml_close(c->xml);
	r = 0;
out:
	api_filters_release(&filters);
	return r;
}

static int change(struct api_call *c, struct api_error *e, const char *action, const char *set)
{
	_cleanup_free_ const char **ids = NULL;
	_cleanup_free_ struct state_change *v = NULL;
	_cleanup_kerr_ struct kerr *err = NULL;
	bool force = false;
	size_t n;

	if (instance_ids(c, &ids, &n, true, e) < 0)
		return -1;
	if (!strcmp(action, "stop") && api_node_bool(&c->root, "Force", &force, &err) < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		return -1;
	}
	if (c->dry_run) {
		api_error_dry_run(e);
		return -1;
	}
	if (cloud_instances_change(c->cloud, c->account.id, c->region, action, ids, n, force, &v, &err) < 0) {
		api_error_from_kerr(e, err, err->kind == KERR_NOT_FOUND ? "InvalidInstanceID.NotFound"
					    : err->kind == KERR_CONFLICT ? "IncorrectInstanceState"
									: NULL);
		return -1;
	}
	api_xml_open(c->xml, set);
	for (size_t i = 0; i < n; i++) {
		api_xml_item(c->xml);
		api_xml_elem(c->xml, "instanceId", v[i].id);
		write_state(c->xml, "currentState", v[i].current);
		write_state(c->xml, "previousState", v[i].previous);
		api_xml_close(c->xml);
	}
	api_xml_close(c->xml);
	return 0;
}

int api_start_instances(struct api_call *c, struct api_error *e)
{
	return change(c, e, "start", "instancesSet");
}

int api_stop_instances(struct api_call *c, struct api_error *e)
{
	return change(c, e, "stop", "instancesSet");
}

int api_reboot_instances(struct api_call *c, struct api_error *e)
{
	_cleanup_free_ const char **ids = NULL;
	_cleanup_free_ struct state_change *v = NULL;
	_cleanup_kerr_ struct kerr *err = NULL;
	size_t n;

	if (instance_ids(c, &ids, &n, true, e) < 0)
		return -1;
	if (c->dry_run) {
		api_error_dry_run(e);
		return -1;
	}
	if (cloud_instances_change(c->cloud, c->account.id, c->region, "reboot", ids, n, false, &v, &err) < 0) {
		api_error_from_kerr(e, err, err->kind == KERR_NOT_FOUND ? "InvalidInstanceID.NotFound"
					    : err->kind == KERR_CONFLICT ? "IncorrectInstanceState"
									: NULL);
		return -1;
	}
	api_xml_bool(c->xml, "return", true);
	return 0;
}

#define CONSOLE_MAX (64 << 10) /* EC2 returns the last 64 KiB */

int api_get_console_output(struct api_call *c, struct api_error *e)
{
	_cleanup_free_ uint8_t *out = NULL;
	_cleanup_free_ char *b64 = NULL;
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *id = api_node_str(&c->root, "InstanceId");
	size_t len, from;

	if (!id) {
		api_error_missing_parameter(e, "InstanceId");
		return -1;
	}
	if (!id_valid("i", id)) {
		api_error_set(e, "InvalidInstanceID.Malformed", "Invalid id: \"%s\"", id);
		return -1;
	}
	if (cloud_instance_console(c->cloud, c->account.id, c->region, id, &out, &len, &err) < 0) {
		api_error_from_kerr(e, err, err->kind == KERR_NOT_FOUND ? "InvalidInstanceID.NotFound" : NULL);
		return -1;
	}
	from = len > CONSOLE_MAX ? len - CONSOLE_MAX : 0;
	b64 = xmalloc((len - from + 2) / 3 * 4 + 1);
	EVP_EncodeBlock((unsigned char *)b64, out + from, (int)(len - from));
	api_xml_elem(c->xml, "instanceId", id);
	api_xml_time(c->xml, "timestamp", cloud_now_ms());
	api_xml_elem(c->xml, "output", b64);
	return 0;
}

int api_terminate_instances(struct api_call *c, struct api_error *e)
{
	return change(c, e, "terminate", "instancesSet");
}
