/* DescribeImages: the images the caller may see in the region, with EC2's selectors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "util/cleanup.h"
#include "util/banned.h"

static int image_filter(void *ctx, const struct api_filter *f, struct kerr **err)
{
	const struct image *im = ctx;
	char size[24];

	if (!strcmp(f->name, "image-id"))
		return api_filter_match(f, im->id);
	if (!strcmp(f->name, "name"))
		return api_filter_match(f, im->name);
	if (!strcmp(f->name, "description"))
		return api_filter_match(f, im->description);
	if (!strcmp(f->name, "state"))
		return api_filter_match(f, im->state);
	if (!strcmp(f->name, "owner-id"))
		return api_filter_match(f, im->owner);
	if (!strcmp(f->name, "owner-alias"))
		return api_filter_match(f, im->owner_alias);
	if (!strcmp(f->name, "is-public"))
		return api_filter_match(f, im->public ? "true" : "false");
	if (!strcmp(f->name, "architecture"))
		return api_filter_match(f, im->architecture);
	if (!strcmp(f->name, "root-device-type"))
		return api_filter_match(f, "ebs");
	if (!strcmp(f->name, "root-device-name"))
		return api_filter_match(f, im->root_device_name);
	if (!strcmp(f->name, "virtualization-type"))
		return api_filter_match(f, "hvm");
	if (!strcmp(f->name, "platform-details"))
		return api_filter_match(f, "Linux/UNIX");
	if (!strcmp(f->name, "block-device-mapping.snapshot-id"))
		return api_filter_match(f, im->root_snapshot);
	if (!strcmp(f->name, "block-device-mapping.volume-size")) {
		snprintf(size, sizeof(size), "%llu", (unsigned long long)im->root_size_gib);
		return api_filter_match(f, size);
	}
	if (!strcmp(f->name, "image-type"))
		return api_filter_match(f, "machine");
	return kerr_set(err, KERR_INVALID, "The filter '%s' is invalid", f->name);
}

/* Owners: self, amazon (the provider's alias), aws-marketplace, or account ids. */
static bool owned_by(const struct image *im, const char **owners, size_t n, const char *caller)
{
	if (!n)
		return true;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(owners[i], "self") ? !strcmp(im->owner, caller)
		    : !strcmp(owners[i], im->owner) || (im->owner_alias[0] && !strcmp(owners[i], im->owner_alias)))
			return true;
	}
	return false;
}

static void write_image(struct api_xml *x, const struct image *im)
{
	api_xml_item(x);
	api_xml_elem(x, "imageId", im->id);
	api_xml_elemf(x, "imageLocation", "%s/%s", im->owner_alias[0] ? im->owner_alias : im->owner, im->name);
	api_xml_elem(x, "imageState", im->state);
	api_xml_elem(x, "imageOwnerId", im->owner);
	api_xml_time(x, "creationDate", im->creation_ms);
	api_xml_bool(x, "isPublic", im->public);
	api_xml_elem(x, "architecture", im->architecture);
	api_xml_elem(x, "imageType", "machine");
	if (im->owner_alias[0])
		api_xml_elem(x, "imageOwnerAlias", im->owner_alias);
	api_xml_elem(x, "name", im->name);
	api_xml_elem(x, "description", im->description);
	api_xml_elem(x, "rootDeviceType", "ebs");
	api_xml_elem(x, "rootDeviceName", im->root_device_name);
	api_xml_open(x, "blockDeviceMapping");
	api_xml_item(x);
	api_xml_elem(x, "deviceName", im->root_device_name);
	api_xml_open(x, "ebs");
	api_xml_elem(x, "snapshotId", im->root_snapshot);
	api_xml_int(x, "volumeSize", (int64_t)im->root_size_gib);
	api_xml_bool(x, "deleteOnTermination", true);
	api_xml_elem(x, "volumeType", "gp3");
	api_xml_bool(x, "encrypted", false);
	api_xml_close(x);
	api_xml_close(x);
	api_xml_close(x);
	api_xml_elem(x, "virtualizationType", "hvm");
	api_xml_elem(x, "hypervisor", "xen");
	api_xml_elem(x, "platformDetails", "Linux/UNIX");
	api_xml_elem(x, "usageOperation", "RunInstances");
	api_xml_elem(x, "bootMode", "uefi-preferred");
	api_xml_close(x);
}

int api_describe_images(struct api_call *c, struct api_error *e)
{
	_cleanup_free_ const char **ids = NULL;
	_cleanup_free_ const char **owners = NULL;
	_cleanup_free_ struct image *v = NULL;
	_cleanup_kerr_ struct kerr *err = NULL;
	struct api_filters filters = {0};
	const char *missing;
	size_t nids = api_node_strings(&c->root, "ImageId", &ids);
	size_t nowners = api_node_strings(&c->root, "Owner", &owners);
	size_t n;
	int r = -1;

	for (size_t i = 0; i < nids; i++)
		if (!id_valid("ami", ids[i])) {
			api_error_set(e, "InvalidAMIID.Malformed", "Invalid id: \"%s\" (expecting \"ami-...\")", ids[i]);
			return -1;
		}
	if (api_call_filters(c, &filters, e) < 0)
		return -1;
	if (cloud_images_visible(c->cloud, c->account.id, c->region, &v, &n, &err) < 0) {
		api_error_from_kerr(e, err, NULL);
		goto out;
	}
	/* Every id asked for must be visible, as EC2 answers. */
	if ((missing = api_first_missing(ids, nids, v, n, sizeof(*v)))) {
		api_error_set(e, "InvalidAMIID.NotFound", "The image id '[%s]' does not exist", missing);
		goto out;
	}
	api_xml_open(c->xml, "imagesSet");
	for (size_t k = 0; k < n; k++) {
		int m;

		if (!api_selected(ids, nids, v[k].id) || !owned_by(&v[k], owners, nowners, c->account.id))
			continue;
		m = api_call_filter_match(&filters, image_filter, &v[k], e);
		if (m < 0)
			goto out;
		if (m)
			write_image(c->xml, &v[k]);
	}
	api_xml_close(c->xml);
	r = 0;
out:
	api_filters_release(&filters);
	return r;
}
