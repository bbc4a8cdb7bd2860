/* DescribeImages, RegisterImage, DeregisterImage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "util/cleanup.h"
#include "util/xalloc.h"
#include "util/banned.h"

static const char *image_public(const void *obj, char *buf, size_t size)
{
	(void)buf;
	(void)size;
	return ((const struct image *)obj)->public ? "true" : "false";
}

static const char *image_size(const void *obj, char *buf, size_t size)
{
	snprintf(buf, size, "%llu", (unsigned long long)((const struct image *)obj)->root_size_gib);
	return buf;
}

static const char *image_created(const void *obj, char *buf, size_t size)
{
	char t[25];

	if (api_xml_format_time(((const struct image *)obj)->creation_ms, t) < 0)
		t[0] = '\0';
	snprintf(buf, size, "%s", t);
	return buf;
}

/* An image has at most one code in practice (the product it came from); the filter reads the
 * first. */
static const char *image_product_code(const void *obj, char *buf, size_t size)
{
	const struct image *im = obj;

	(void)buf;
	(void)size;
	return im->nproduct_codes ? im->product_codes[0] : NULL;
}

static const char *image_product_code_type(const void *obj, char *buf, size_t size)
{
	(void)buf;
	(void)size;
	return ((const struct image *)obj)->nproduct_codes ? "marketplace" : NULL;
}

void api_write_product_codes(struct api_xml *x, const char (*codes)[PRODUCT_CODE_LEN + 1], size_t n)
{
	api_xml_open(x, "productCodes");
	for (size_t i = 0; i < n; i++) {
		api_xml_item(x);
		api_xml_elem(x, "productCode", codes[i]);
		api_xml_elem(x, "type", "marketplace");
		api_xml_close(x);
	}
	api_xml_close(x);
}

static const char *image_root_device(const void *obj, char *buf, size_t size)
{
	(void)buf;
	(void)size;
	return ((const struct image *)obj)->root_device_name;
}

static const struct api_filter_field image_fields[] = {
    API_FIELD_TEXT_OF("image-id", struct image, id),
    API_FIELD_TEXT_OF("name", struct image, name),
    API_FIELD_TEXT_OF("description", struct image, description),
    API_FIELD_TEXT_OF("state", struct image, state),
    API_FIELD_TEXT_OF("owner-id", struct image, owner),
    API_FIELD_TEXT_OF("owner-alias", struct image, owner_alias),
    API_FIELD_COMPUTED_OF("is-public", image_public),
    API_FIELD_TEXT_OF("architecture", struct image, architecture),
    API_FIELD_CONST_OF("root-device-type", "ebs"),
    API_FIELD_TEXT_OF("root-device-name", struct image, root_device_name),
    API_FIELD_CONST_OF("virtualization-type", "hvm"),
    API_FIELD_CONST_OF("platform-details", "Linux/UNIX"),
    API_FIELD_TEXT_OF("block-device-mapping.snapshot-id", struct image, root_snapshot),
    API_FIELD_COMPUTED_OF("block-device-mapping.volume-size", image_size),
    API_FIELD_CONST_OF("image-type", "machine"),
    API_FIELD_TEXT_OF("source-instance-id", struct image, source_instance),
    API_FIELD_COMPUTED_OF("creation-date", image_created),
    API_FIELD_COMPUTED_OF("block-device-mapping.device-name", image_root_device),
    API_FIELD_CONST_OF("hypervisor", "xen"),
    API_FIELD_CONST_OF("boot-mode", "uefi-preferred"),
    API_FIELD_COMPUTED_OF("product-code", image_product_code),
    API_FIELD_COMPUTED_OF("product-code.type", image_product_code_type),
};

/* Owners: self, amazon (the provider's alias), aws-marketplace, or account ids. */
static bool owned_by(const struct image *im, const char **owners, size_t n, const char *caller)
{
	if (!n)
		return true;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(owners[i], "self")
		        ? !strcmp(im->owner, caller)
		        : !strcmp(owners[i], im->owner) ||
		              (im->owner_alias[0] && !strcmp(owners[i], im->owner_alias)))
			return true;
	}
	return false;
}

/* ExecutableBy.N: all (public images), self (the caller's own and those shared with it), or
 * account ids (images shared with them; only their owner can tell, so the caller's own). */
static bool executable_by(const struct image *im, const char **users, size_t n, const char *caller)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(users[i], "all")    ? im->public
		    : !strcmp(users[i], "self") ? !strcmp(im->owner, caller) || im->granted
		                                : !strcmp(im->owner, caller))
			return true;
	return n == 0;
}

static void write_mapping(struct api_xml *x, const char *device, const char *snapshot,
                          uint64_t size, bool dot)
{
	api_xml_item(x);
	api_xml_elem(x, "deviceName", device);
	api_xml_open(x, "ebs");
	api_xml_elem(x, "snapshotId", snapshot);
	api_xml_int(x, "volumeSize", (int64_t)size);
	api_xml_bool(x, "deleteOnTermination", dot);
	api_xml_elem(x, "volumeType", "gp3");
	api_xml_bool(x, "encrypted", false);
	api_xml_close(x);
	api_xml_close(x);
}

void api_write_image_mappings(struct api_xml *x, const struct image *im)
{
	write_mapping(x, im->root_device_name, im->root_snapshot, im->root_size_gib, true);
	for (size_t i = 0; i < im->nvolumes; i++)
		write_mapping(x, im->volumes[i].device, im->volumes[i].snapshot,
		              im->volumes[i].size_gib, im->volumes[i].delete_on_termination);
}

/* The members of one image (an item of a list, or a whole answer). */
static void write_image(struct api_xml *x, const void *item, const struct tag_set *tags)
{
	const struct image *im = item;

	api_xml_elem(x, "imageId", im->id);
	api_xml_elemf(x, "imageLocation", "%s/%s", im->owner_alias[0] ? im->owner_alias : im->owner,
	              im->name);
	api_xml_elem(x, "imageState", im->state);
	api_xml_elem(x, "imageOwnerId", im->owner);
	api_xml_time(x, "creationDate", im->creation_ms);
	api_xml_bool(x, "isPublic", im->public);
	api_xml_elem(x, "architecture", im->architecture);
	api_xml_elem(x, "imageType", "machine");
	if (im->nproduct_codes)
		api_write_product_codes(x, (const char(*)[PRODUCT_CODE_LEN + 1]) im->product_codes,
		                        im->nproduct_codes);
	if (im->owner_alias[0])
		api_xml_elem(x, "imageOwnerAlias", im->owner_alias);
	api_xml_elem(x, "name", im->name);
	api_xml_elem(x, "description", im->description);
	api_xml_elem(x, "rootDeviceType", "ebs");
	api_xml_elem(x, "rootDeviceName", im->root_device_name);
	api_xml_open(x, "blockDeviceMapping");
	api_write_image_mappings(x, im);
	api_xml_close(x);
	api_xml_elem(x, "virtualizationType", "hvm");
	api_xml_elem(x, "hypervisor", "xen");
	api_xml_elem(x, "platformDetails", "Linux/UNIX");
	api_xml_elem(x, "usageOperation", "RunInstances");
	api_xml_elem(x, "bootMode", "uefi-preferred");
	if (im->source_instance[0])
		api_xml_elem(x, "sourceInstanceId", im->source_instance);
	if (im->deprecation_ms)
		api_xml_time(x, "deprecationTime", im->deprecation_ms);
	if (im->state_reason[0]) {
		api_xml_open(x, "stateReason");
		api_xml_elemf(x, "code", "%.*s", (int)strcspn(im->state_reason, ":"),
		              im->state_reason);
		api_xml_elem(x, "message", im->state_reason);
		api_xml_close(x);
	}
	api_write_tag_set(x, tags, im->id);
}

struct image_selection {
	const char **owners, **users;
	size_t nowners, nusers;
	bool deprecated, disabled; /* IncludeDeprecated, IncludeDisabled */
	int64_t now_ms;
};

static int load_images(struct api_call *c, void **items, size_t *n, struct kerr **err)
{
	return cloud_images_visible(c->cloud, c->account.id, c->region, (struct image **)items, n,
	                            err);
}

static bool keep_image(struct api_call *c, const void *item, void *ctx)
{
	const struct image_selection *sel = ctx;

	const struct image *im = item;
	bool mine = !strcmp(im->owner, c->account.id);

	/* Deprecated images show to their owner always, to others when asked for; disabled ones
	 * (private to their owner) only when asked for. */
	if ((!sel->deprecated && !mine && im->deprecation_ms &&
	     im->deprecation_ms <= sel->now_ms) ||
	    (!sel->disabled && image_state_parse(im->state) == IMAGE_DISABLED))
		return false;
	return owned_by(item, sel->owners, sel->nowners, c->account.id) &&
	       executable_by(item, sel->users, sel->nusers, c->account.id);
}

int api_describe_images(struct api_call *c, struct api_error *e)
{
	_cleanup_free_ const char **owners = NULL, **users = NULL;
	struct image_selection sel = {
	    .nowners = api_node_strings(&c->root, "Owner", &owners),
	    .nusers = api_node_strings(&c->root, "ExecutableBy", &users),
	};
	const struct api_list l = {
	    .id_param = "ImageId",
	    .prefix = "ami",
	    .max_results = 1000,
	    .set = "imagesSet",
	    .not_found_code = "InvalidAMIID.NotFound",
	    .noun = "image id",
	    .brackets = true,
	    .fields = image_fields,
	    .nfields = ARRAY_SIZE(image_fields),
	    .size = sizeof(struct image),
	    .load = load_images,
	    .keep = keep_image,
	    .write = write_image,
	    .ctx = &sel,
	};

	_cleanup_kerr_ struct kerr *err = NULL;

	sel.owners = owners;
	sel.users = users;
	sel.now_ms = cloud_now_ms();
	if (api_node_bool(&c->root, "IncludeDeprecated", &sel.deprecated, &err) < 0 ||
	    api_node_bool(&c->root, "IncludeDisabled", &sel.disabled, &err) < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		return -1;
	}
	return api_describe_list(c, &l, e);
}

/* RegisterImage from a snapshot: one block-device mapping, the root. */
int api_register_image(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ struct tag *tags = NULL;
	struct image_request req = {.region = c->region};
	const char *arch = api_node_str(&c->root, "Architecture"),
	           *virt = api_node_str(&c->root, "VirtualizationType");
	struct api_node bdm;
	struct image im;
	int64_t size = 0;
	size_t nbdm = api_node_count(&c->root, "BlockDeviceMapping");

	req.name = api_node_str(&c->root, "Name");
	req.description = api_node_str(&c->root, "Description");
	req.root_device_name = api_node_str(&c->root, "RootDeviceName");
	if (api_node_present(&c->root, "ImageLocation")) {
		api_error_set(e, "InvalidParameterValue",
		              "kiln registers images from snapshots, not from ImageLocation");
		return -1;
	}
	if ((arch && strcmp(arch, "x86_64")) || (virt && strcmp(virt, "hvm"))) {
		api_error_set(e, "InvalidParameterValue",
		              "kiln runs x86_64 hvm images only (asked: %s %s)",
		              arch ? arch : "x86_64", virt ? virt : "hvm");
		return -1;
	}
	if (!req.root_device_name)
		req.root_device_name = "/dev/xvda";
	/* The root device's mapping, and further ones from snapshots (NoDevice ones are left out).
	 */
	for (size_t i = 1; i <= nbdm; i++) {
		const char *dev, *snap;
		bool dot = true;
		api_node_item(&c->root, "BlockDeviceMapping", i, &bdm);
		dev = api_node_str(&bdm, "DeviceName");
		snap = api_node_str(&bdm, "Ebs.SnapshotId");
		if (!dev) {
			api_error_missing_parameter(e, "BlockDeviceMapping.DeviceName");
			return -1;
		}
		{
			/* NoDevice comes with an empty value: its presence is what counts. */
			char path[API_PARAM_NAME_MAX + 1];
			if (api_params_find(c->root.params, api_node_path(&bdm, "NoDevice", path)))
				continue;
		}
		if (!snap || api_node_present(&bdm, "VirtualName")) {
			api_error_set(e, "InvalidParameterValue",
			              "kiln maps volumes from snapshots: %s needs Ebs.SnapshotId "
			              "(instance stores are refused)",
			              dev);
			return -1;
		}
		if (!api_id_ok("snap", snap, e))
			return -1;
		if (api_node_int(&bdm, "Ebs.VolumeSize", 1, 16384, &size, &err) < 0 ||
		    api_node_bool(&bdm, "Ebs.DeleteOnTermination", &dot, &err) < 0) {
			api_error_from_kerr(e, err, "InvalidParameterValue");
			return -1;
		}
		if (!strcmp(dev, req.root_device_name)) {
			req.root_snapshot = snap;
			req.root_size_gib = (uint64_t)size;
		} else if (req.nvolumes == IMAGE_VOLUMES_MAX) {
			api_error_set(e, "InvalidParameterValue",
			              "kiln images have at most %d volumes besides the root",
			              IMAGE_VOLUMES_MAX);
			return -1;
		} else {
			struct image_volume *iv = &req.volumes[req.nvolumes++];
			snprintf(iv->device, sizeof(iv->device), "%s", dev);
			snprintf(iv->snapshot, sizeof(iv->snapshot), "%s", snap);
			iv->size_gib = (uint64_t)size;
			iv->delete_on_termination = dot;
		}
		size = 0;
	}
	if (!req.root_snapshot) {
		api_error_missing_parameter(e, "BlockDeviceMapping.1.Ebs.SnapshotId");
		return -1;
	}
	if (api_call_tag_specs(c, "image", &tags, &req.ntags, e) < 0)
		return -1;
	req.tags = tags;
	if (cloud_image_register(c->cloud, c->account.id, &req, &im, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	api_xml_elem(c->xml, "imageId", im.id);
	return 0;
}

int api_deregister_image(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *id = api_node_str(&c->root, "ImageId");

	if (cloud_image_deregister(c->cloud, c->account.id, c->region, id, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	api_xml_bool(c->xml, "return", true);
	return 0;
}

int api_create_image(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ struct tag *itags = NULL, *stags = NULL;
	_cleanup_free_ const char **no_device = NULL;
	struct create_image_request req = {.region = c->region};
	size_t nbdm = api_node_count(&c->root, "BlockDeviceMapping");
	struct image im;

	req.instance = api_node_str(&c->root, "InstanceId");
	req.name = api_node_str(&c->root, "Name");
	req.description = api_node_str(&c->root, "Description");
	if (api_node_bool(&c->root, "NoReboot", &req.no_reboot, &err) < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		return -1;
	}
	/* BlockDeviceMapping: NoDevice leaves a data volume out; nothing else changes here. */
	no_device = xcalloc(nbdm + 1, sizeof(*no_device));
	for (size_t i = 1; i <= nbdm; i++) {
		struct api_node bdm;
		const char *dev;
		api_node_item(&c->root, "BlockDeviceMapping", i, &bdm);
		dev = api_node_str(&bdm, "DeviceName");
		if (!dev) {
			api_error_missing_parameter(e, "BlockDeviceMapping.DeviceName");
			return -1;
		}
		if (!api_node_present(&bdm, "NoDevice") && api_node_present(&bdm, "Ebs")) {
			api_error_set(e, "InvalidParameterValue",
			              "kiln images take the instance's volumes as they are; only "
			              "NoDevice is accepted for %s",
			              dev);
			return -1;
		}
		no_device[req.nno_device++] = dev;
	}
	req.no_device = no_device;
	if (api_call_tag_specs(c, "image", &itags, &req.nimage_tags, e) < 0 ||
	    api_call_tag_specs(c, "snapshot", &stags, &req.nsnapshot_tags, e) < 0)
		return -1;
	req.image_tags = itags;
	req.snapshot_tags = stags;
	if (cloud_image_create(c->cloud, c->account.id, &req, &im, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	api_xml_elem(c->xml, "imageId", im.id);
	return 0;
}

int api_copy_image(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ struct tag *tags = NULL;
	struct copy_image_request req = {.region = c->region};
	struct image im;

	req.src_region = api_node_str(&c->root, "SourceRegion");
	req.src_image = api_node_str(&c->root, "SourceImageId");
	req.name = api_node_str(&c->root, "Name");
	req.description = api_node_str(&c->root, "Description");
	req.client_token = api_node_str(&c->root, "ClientToken");
	if (api_call_tag_specs(c, "image", &tags, &req.ntags, e) < 0)
		return -1;
	req.tags = tags;
	if (cloud_image_copy(c->cloud, c->account.id, &req, &im, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	api_xml_elem(c->xml, "imageId", im.id);
	return 0;
}
