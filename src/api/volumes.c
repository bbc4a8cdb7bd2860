/* CreateVolume, DescribeVolumes, AttachVolume, DetachVolume, DeleteVolume, DescribeVolumeStatus,
 * DescribeVolumeAttribute. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "util/cleanup.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

static const char *const volume_types[] = {"gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"};

void api_write_attachment(struct api_xml *x, const struct volume *v)
{
	api_xml_elem(x, "volumeId", v->id);
	api_xml_elem(x, "instanceId", v->instance);
	api_xml_elem(x, "device", v->device);
	api_xml_elem(x, "status", v->attach_state);
	api_xml_time(x, "attachTime", v->attach_ms);
	api_xml_bool(x, "deleteOnTermination", v->delete_on_termination);
}

/* The members of one volume (an item of a list, or a whole answer). */
static void write_volume(struct api_xml *x, const void *item, const struct tag_set *tags)
{
	const struct volume *v = item;

	api_xml_elem(x, "volumeId", v->id);
	api_xml_int(x, "size", (int64_t)v->size_gib);
	api_xml_elem(x, "snapshotId", v->snapshot);
	api_xml_elem(x, "availabilityZone", v->zone);
	api_xml_elem(x, "status", v->state);
	api_xml_time(x, "createTime", v->create_ms);
	api_xml_open(x, "attachmentSet");
	if (v->instance[0]) {
		api_xml_item(x);
		api_write_attachment(x, v);
		api_xml_close(x);
	}
	api_xml_close(x);
	api_xml_elem(x, "volumeType", v->type);
	if (!strcmp(v->type, "gp3"))
		api_xml_int(x, "iops", 3000);
	api_xml_bool(x, "encrypted", false);
	api_xml_bool(x, "multiAttachEnabled", false);
	if (tags)
		api_write_tag_set(x, tags, v->id);
}

int api_create_volume(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ struct tag *tags = NULL;
	struct volume_request req = {.region = c->region};
	struct tag_set set = {0};
	struct volume v;
	int64_t size = 0;
	bool known = false;

	req.zone = api_node_str(&c->root, "AvailabilityZone");
	req.snapshot = api_node_str(&c->root, "SnapshotId");
	req.type = api_node_str(&c->root, "VolumeType");
	req.client_token = api_node_str(&c->root, "ClientToken");
	if (api_node_int(&c->root, "Size", 1, 16384, &size, &err) < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		return -1;
	}
	req.size_gib = (uint64_t)size;
	if (!req.size_gib && !req.snapshot) {
		api_error_missing_parameter(e, "size");
		return -1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(volume_types) && req.type; i++)
		known = known || !strcmp(volume_types[i], req.type);
	if (req.type && !known) {
		api_error_set(e, "InvalidParameterValue",
		              "Value (%s) for parameter volumeType is invalid", req.type);
		return -1;
	}
	if (api_call_tag_specs(c, "volume", &tags, &req.ntags, e) < 0)
		return -1;
	req.tags = tags;
	if (cloud_volume_create(c->cloud, c->account.id, &req, &v, &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	if (cloud_tags_list(c->cloud, c->account.id, c->region, &set, &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	write_volume(c->xml, &v, &set);
	tag_set_release(&set);
	return 0;
}

static const char *volume_size(const void *obj, char *buf, size_t size)
{
	snprintf(buf, size, "%llu", (unsigned long long)((const struct volume *)obj)->size_gib);
	return buf;
}

static const char *volume_dot(const void *obj, char *buf, size_t size)
{
	(void)buf;
	(void)size;
	return ((const struct volume *)obj)->delete_on_termination ? "true" : "false";
}

static const struct api_filter_field volume_fields[] = {
    API_FIELD_TEXT_OF("volume-id", struct volume, id),
    API_FIELD_TEXT_OF("status", struct volume, state),
    API_FIELD_TEXT_OF("availability-zone", struct volume, zone),
    API_FIELD_COMPUTED_OF("size", volume_size),
    API_FIELD_TEXT_OF("snapshot-id", struct volume, snapshot),
    API_FIELD_TEXT_OF("volume-type", struct volume, type),
    API_FIELD_TEXT_OF("attachment.instance-id", struct volume, instance),
    API_FIELD_TEXT_OF("attachment.device", struct volume, device),
    API_FIELD_TEXT_OF("attachment.status", struct volume, attach_state),
    API_FIELD_COMPUTED_OF("attachment.delete-on-termination", volume_dot),
    API_FIELD_CONST_OF("encrypted", "false"),
    API_FIELD_CONST_OF("multi-attach-enabled", "false"),
};

static int load_volumes(struct api_call *c, void **items, size_t *n, struct kerr **err)
{
	return cloud_volumes_list(c->cloud, c->account.id, c->region, (struct volume **)items, n,
	                          err);
}

int api_describe_volumes(struct api_call *c, struct api_error *e)
{
	const struct api_list l = {
	    .id_param = "VolumeId",
	    .prefix = "vol",
	    .max_results = 500,
	    .clip_results = true,
	    .set = "volumeSet",
	    .not_found_code = "InvalidVolume.NotFound",
	    .noun = "volume",
	    .fields = volume_fields,
	    .nfields = ARRAY_SIZE(volume_fields),
	    .size = sizeof(struct volume),
	    .load = load_volumes,
	    .write = write_volume,
	};

	return api_describe_list(c, &l, e);
}

int api_attach_volume(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *vol = api_node_str(&c->root, "VolumeId"),
	           *inst = api_node_str(&c->root, "InstanceId"),
	           *device = api_node_str(&c->root, "Device");
	struct volume v;

	if (cloud_volume_attach(c->cloud, c->account.id, c->region, vol, inst, device, &v, &err) <
	    0)
		return api_error_from_cloud(e, c->action, err), -1;
	api_write_attachment(c->xml, &v);
	return 0;
}

int api_detach_volume(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *vol = api_node_str(&c->root, "VolumeId"),
	           *inst = api_node_str(&c->root, "InstanceId");
	bool force = false;
	struct volume v;

	if (api_node_bool(&c->root, "Force", &force, &err) < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		return -1;
	}
	if (cloud_volume_detach(c->cloud, c->account.id, c->region, vol, inst, force, &v, &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	api_write_attachment(c->xml, &v);
	return 0;
}

int api_delete_volume(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *vol = api_node_str(&c->root, "VolumeId");

	if (cloud_volume_delete(c->cloud, c->account.id, c->region, vol, &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	api_xml_bool(c->xml, "return", true);
	return 0;
}

/* DescribeVolumeStatus: a volume in use or available whose block file is there is "ok" (check
 * io-enabled passed); one being made or deleted has insufficient data; an error or a missing
 * file is "impaired". kiln schedules no events and suggests no actions. */
struct volume_status_view {
	char id[ID_MAX];
	char zone[32];
	char status[24];
	char io[24];
};

static const struct api_filter_field volume_status_fields[] = {
    API_FIELD_TEXT_OF("volume-status.status", struct volume_status_view, status),
    API_FIELD_TEXT_OF("availability-zone", struct volume_status_view, zone),
    API_FIELD_CONST_OF("volume-status.details-name", "io-enabled"),
    API_FIELD_TEXT_OF("volume-status.details-status", struct volume_status_view, io),
};

static int load_volume_status(struct api_call *c, void **items, size_t *n, struct kerr **err)
{
	_cleanup_free_ struct volume *v = NULL;
	_cleanup_free_ bool *io_ok = NULL;
	struct volume_status_view *out;

	if (cloud_volumes_list(c->cloud, c->account.id, c->region, &v, n, err) < 0)
		return -1;
	io_ok = xcalloc(*n ? *n : 1, sizeof(*io_ok));
	cloud_volumes_io_check(c->cloud, v, *n, io_ok);
	out = xcalloc(*n ? *n : 1, sizeof(*out));
	for (size_t i = 0; i < *n; i++) {
		bool usable = !strcmp(v[i].state, "available") || !strcmp(v[i].state, "in-use");
		const char *status = usable && io_ok[i]                       ? "ok"
		                     : usable || !strcmp(v[i].state, "error") ? "impaired"
		                                                              : "insufficient-data";
		str_copy(out[i].id, v[i].id, sizeof(out[i].id));
		str_copy(out[i].zone, v[i].zone, sizeof(out[i].zone));
		str_copy(out[i].status, status, sizeof(out[i].status));
		str_copy(out[i].io,
		         !strcmp(status, "ok")         ? "passed"
		         : !strcmp(status, "impaired") ? "failed"
		                                       : "insufficient-data",
		         sizeof(out[i].io));
	}
	*items = out;
	return 0;
}

static void write_volume_status(struct api_xml *x, const void *item, const struct tag_set *tags)
{
	const struct volume_status_view *v = item;

	(void)tags;
	api_xml_elem(x, "volumeId", v->id);
	api_xml_elem(x, "availabilityZone", v->zone);
	api_xml_open(x, "volumeStatus");
	api_xml_elem(x, "status", v->status);
	api_xml_open(x, "details");
	api_xml_item(x);
	api_xml_elem(x, "name", "io-enabled");
	api_xml_elem(x, "status", v->io);
	api_xml_close(x);
	api_xml_item(x);
	api_xml_elem(x, "name", "io-performance");
	api_xml_elem(x, "status", "not-applicable");
	api_xml_close(x);
	api_xml_close(x);
	api_xml_close(x);
	api_xml_open(x, "actionsSet");
	api_xml_close(x);
	api_xml_open(x, "eventsSet");
	api_xml_close(x);
}

int api_describe_volume_status(struct api_call *c, struct api_error *e)
{
	const struct api_list l = {
	    .id_param = "VolumeId",
	    .prefix = "vol",
	    .max_results = 1000,
	    .clip_results = true,
	    .set = "volumeStatusSet",
	    .not_found_code = "InvalidVolume.NotFound",
	    .noun = "volume",
	    .fields = volume_status_fields,
	    .nfields = ARRAY_SIZE(volume_status_fields),
	    .size = sizeof(struct volume_status_view),
	    .load = load_volume_status,
	    .write = write_volume_status,
	};

	return api_describe_list(c, &l, e);
}

/* DescribeVolumeAttribute: autoEnableIO (kiln never suspends a volume's I/O, so it is false, as
 * EC2's default) and productCodes (those of the snapshot it was restored from). */
int api_describe_volume_attribute(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *id = api_node_str(&c->root, "VolumeId"),
	           *attr = api_node_str(&c->root, "Attribute");
	struct volume v;

	if (strcmp(attr, "autoEnableIO") && strcmp(attr, "productCodes")) {
		api_error_set(e, "InvalidParameterValue",
		              "Value (%s) for parameter attribute is invalid: autoEnableIO or "
		              "productCodes",
		              attr);
		return -1;
	}
	if (cloud_volume_get(c->cloud, c->account.id, c->region, id, &v, &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	api_xml_elem(c->xml, "volumeId", v.id);
	if (!strcmp(attr, "autoEnableIO")) {
		api_xml_open(c->xml, "autoEnableIO");
		api_xml_bool(c->xml, "value", false);
		api_xml_close(c->xml);
	} else {
		char codes[PRODUCT_CODES_MAX][PRODUCT_CODE_LEN + 1];
		size_t n;
		if (cloud_product_codes(c->cloud, v.id, codes, &n, &err) < 0)
			return api_error_from_cloud(e, c->action, err), -1;
		api_write_product_codes(c->xml, (const char(*)[PRODUCT_CODE_LEN + 1]) codes, n);
	}
	return 0;
}
