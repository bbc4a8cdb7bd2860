/* RunInstances, DescribeInstances, StartInstances, StopInstances, TerminateInstances. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "server.h"
#include "api/user_data.h"
#include "util/cleanup.h"
#include "util/xalloc.h"
#include "util/banned.h"

static void write_state(struct api_xml *x, const char *name, const char *state)
{
	api_xml_open(x, name);
	api_xml_int(x, "code", cloud_instance_state_code(state));
	api_xml_elem(x, "name", state);
	api_xml_close(x);
}

/* What DescribeInstances shows beside each instance: its tags and attached volumes. */
struct instance_extras {
	struct tag_set tags;
	struct volume *volumes;
	size_t nvolumes;
	struct security_group *groups; /* for their names */
	size_t ngroups;
};

static int by_instance(const void *a, const void *b)
{
	const struct volume *x = a, *y = b;
	int c = strcmp(x->instance, y->instance);

	return c ? c : strcmp(x->device, y->device);
}

static int extras_load(struct api_call *c, struct instance_extras *x, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;

	memset(x, 0, sizeof(*x));
	if (cloud_tags_list(c->cloud, c->account.id, c->region, &x->tags, &err) < 0 ||
	    cloud_volumes_list(c->cloud, c->account.id, c->region, &x->volumes, &x->nvolumes,
	                       &err) < 0 ||
	    cloud_groups_list(c->cloud, c->account.id, c->region, &x->groups, &x->ngroups, &err) <
	        0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	if (x->nvolumes) /* qsort of no array at all (NULL) is undefined */
		qsort(x->volumes, x->nvolumes, sizeof(*x->volumes), by_instance);
	return 0;
}

/* The volumes attached to instance id: a run of the sorted list. */
static const struct volume *volumes_of(const struct instance_extras *x, const char *id, size_t *n)
{
	size_t lo = 0, hi = x->nvolumes;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(x->volumes[mid].instance, id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (hi = lo; hi < x->nvolumes && !strcmp(x->volumes[hi].instance, id); hi++)
		;
	*n = hi - lo;
	return x->volumes + lo;
}

static void extras_release(struct instance_extras *x)
{
	tag_set_release(&x->tags);
	free(x->volumes);
	free(x->groups);
}

static const char *group_name(const struct instance_extras *x, const char *id)
{
	for (size_t i = 0; i < x->ngroups; i++)
		if (!strcmp(x->groups[i].id, id))
			return x->groups[i].name;
	return "";
}

static void write_groups(struct api_xml *x, const struct instance *in,
                         const struct instance_extras *ex)
{
	api_xml_open(x, "groupSet");
	for (size_t i = 0; i < in->ngroups; i++) {
		api_xml_item(x);
		api_xml_elem(x, "groupId", in->groups[i]);
		api_xml_elem(x, "groupName", group_name(ex, in->groups[i]));
		api_xml_close(x);
	}
	api_xml_close(x);
}

static void write_association(struct api_xml *x, const struct instance *in)
{
	api_xml_open(x, "association");
	api_xml_elem(x, "publicIp", in->public_ip);
	api_xml_elem(x, "publicDnsName", "");
	api_xml_elem(x, "ipOwnerId", "amazon");
	api_xml_close(x);
}

/* The instance's one network interface, as EC2 renders it; its ids follow the instance's. */
static void write_interface(struct api_xml *x, const struct instance *in,
                            const struct instance_extras *ex, const char *dns)
{
	const char *hex = strchr(in->id, '-') + 1;
	char eni[ID_MAX], mac[18];

	cloud_instance_interface_id(in->id, eni);
	cloud_instance_mac(in->id, mac);
	api_xml_open(x, "networkInterfaceSet");
	if (instance_state_parse(in->state) != INSTANCE_TERMINATED && in->subnet[0]) {
		api_xml_item(x);
		api_xml_elem(x, "networkInterfaceId", eni);
		api_xml_elem(x, "subnetId", in->subnet);
		api_xml_elem(x, "vpcId", in->vpc);
		api_xml_elem(x, "description", "");
		api_xml_elem(x, "ownerId", in->owner);
		api_xml_elem(x, "status", "in-use");
		api_xml_elem(x, "macAddress", mac);
		api_xml_elem(x, "privateIpAddress", in->private_ip);
		api_xml_elem(x, "privateDnsName", dns);
		api_xml_bool(x, "sourceDestCheck", true);
		write_groups(x, in, ex);
		api_xml_open(x, "attachment");
		api_xml_elemf(x, "attachmentId", "eni-attach-%s", hex);
		api_xml_int(x, "deviceIndex", 0);
		api_xml_elem(x, "status", "attached");
		api_xml_time(x, "attachTime", in->launch_ms);
		api_xml_bool(x, "deleteOnTermination", true);
		api_xml_int(x, "networkCardIndex", 0);
		api_xml_close(x);
		if (in->public_ip[0])
			write_association(x, in);
		api_xml_open(x, "privateIpAddressesSet");
		api_xml_item(x);
		api_xml_elem(x, "privateIpAddress", in->private_ip);
		api_xml_elem(x, "privateDnsName", dns);
		api_xml_bool(x, "primary", true);
		if (in->public_ip[0])
			write_association(x, in);
		api_xml_close(x);
		api_xml_close(x);
		api_xml_open(x, "ipv6AddressesSet");
		api_xml_close(x);
		api_xml_elem(x, "interfaceType", "interface");
		api_xml_close(x);
	}
	api_xml_close(x);
}

static void write_instance(struct api_xml *x, const struct instance *in,
                           const struct instance_extras *ex)
{
	const struct volume *vols;
	char dns[96];
	size_t nvols;

	cloud_private_dns_name(in->region, in->private_ip, dns, sizeof(dns));
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
	api_write_product_codes(x, (const char(*)[PRODUCT_CODE_LEN + 1]) in->product_codes,
	                        in->nproduct_codes);
	api_xml_elem(x, "instanceType", in->type);
	api_xml_time(x, "launchTime", in->launch_ms);
	api_xml_open(x, "placement");
	api_xml_elem(x, "availabilityZone", in->zone);
	api_xml_elem(x, "tenancy", "default");
	api_xml_close(x);
	api_xml_open(x, "monitoring");
	api_xml_elem(x, "state", "disabled");
	api_xml_close(x);
	if (instance_state_parse(in->state) != INSTANCE_TERMINATED) {
		api_xml_elem(x, "privateIpAddress", in->private_ip);
		if (in->public_ip[0])
			api_xml_elem(x, "ipAddress", in->public_ip);
		api_xml_elem(x, "subnetId", in->subnet);
		api_xml_elem(x, "vpcId", in->vpc);
	}
	write_groups(x, in, ex);
	if (in->iam_profile[0]) {
		api_xml_open(x, "iamInstanceProfile");
		api_xml_elem(x, "arn", in->iam_profile_arn);
		api_xml_elem(x, "id", in->iam_profile_id);
		api_xml_close(x);
	}
	api_xml_elem(x, "architecture", "x86_64");
	api_xml_elem(x, "rootDeviceType", "ebs");
	api_xml_elem(x, "rootDeviceName", "/dev/xvda");
	api_xml_open(x, "blockDeviceMapping");
	vols = volumes_of(ex, in->id, &nvols);
	for (size_t i = 0; i < nvols; i++) {
		const struct volume *v = &vols[i];
		api_xml_item(x);
		api_xml_elem(x, "deviceName", v->device);
		api_xml_open(x, "ebs");
		api_xml_elem(x, "volumeId", v->id);
		api_xml_elem(x, "status", v->attach_state);
		api_xml_time(x, "attachTime", v->attach_ms);
		api_xml_bool(x, "deleteOnTermination", v->delete_on_termination);
		api_xml_close(x);
		api_xml_close(x);
	}
	api_xml_close(x);
	api_xml_elem(x, "virtualizationType", "hvm");
	api_xml_elem(x, "hypervisor", "xen");
	api_xml_bool(x, "sourceDestCheck", true);
	write_interface(x, in, ex, dns);
	api_write_metadata_options(x, "metadataOptions", &in->md);
	if (in->state_reason[0]) {
		char code[64];
		size_t n = strcspn(in->state_reason, ":");
		snprintf(code, sizeof(code), "%.*s", (int)(n < 63 ? n : 63), in->state_reason);
		api_xml_open(x, "stateReason");
		api_xml_elem(x, "code", code);
		api_xml_elem(x, "message", in->state_reason);
		api_xml_close(x);
	}
	api_write_tag_set(x, &ex->tags, in->id);
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
static int instance_ids(struct api_call *c, const char ***ids, size_t *n, struct api_error *e)
{
	return api_call_id_list(c, "InstanceId", "i", ids, n, e);
}

/* What RunInstances says of the network: SubnetId, PrivateIpAddress, SecurityGroupId.N,
 * SecurityGroup.N, or one NetworkInterface.N (device index 0) with the same and
 * AssociatePublicIpAddress. kiln's instances have exactly one interface, made with them. */
static int run_network(struct api_call *c, struct run_request *req, const char ***ids,
                       const char ***names, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	static const char *const refused[] = {"NetworkInterfaceId",
	                                      "PrivateIpAddresses",
	                                      "SecondaryPrivateIpAddressCount",
	                                      "Ipv6Addresses",
	                                      "Ipv6AddressCount",
	                                      "Ipv4Prefixes",
	                                      "Ipv4PrefixCount",
	                                      "Ipv6Prefixes",
	                                      "Ipv6PrefixCount",
	                                      "InterfaceType",
	                                      "NetworkCardIndex",
	                                      "Description",
	                                      "AssociateCarrierIpAddress",
	                                      "ConnectionTrackingSpecification",
	                                      "EnaSrdSpecification"};
	size_t nif = api_node_count(&c->root, "NetworkInterface");
	struct api_node ni;
	const struct api_node *from = &c->root;

	if (api_node_count(&c->root, "Ipv6Address") ||
	    api_node_present(&c->root, "Ipv6AddressCount")) {
		api_error_set(e, "InvalidParameterValue", "kiln's subnets have no IPv6 addresses");
		return -1;
	}
	if (nif > 1) {
		api_error_set(e, "InvalidParameterCombination",
		              "kiln's instances have one network interface (device index 0); "
		              "attach no more at launch");
		return -1;
	}
	if (nif) {
		int64_t index = 0;
		bool assoc = false, dot = true;

		api_node_item(&c->root, "NetworkInterface", 1, &ni);
		if (api_node_str(&c->root, "SubnetId") ||
		    api_node_count(&c->root, "SecurityGroupId") ||
		    api_node_count(&c->root, "SecurityGroup") ||
		    api_node_str(&c->root, "PrivateIpAddress")) {
			api_error_set(
			    e, "InvalidParameterCombination",
			    "Network interfaces and an instance-level subnet ID, security "
			    "groups or private IP address may not be specified on the same "
			    "request");
			return -1;
		}
		if (api_node_int(&ni, "DeviceIndex", 0, 64, &index, &err) < 0 ||
		    api_node_bool(&ni, "DeleteOnTermination", &dot, &err) < 0 ||
		    api_node_bool(&ni, "AssociatePublicIpAddress", &assoc, &err) < 0) {
			api_error_from_kerr(e, err, "InvalidParameterValue");
			return -1;
		}
		if (index != 0 || !dot) {
			api_error_set(
			    e, "InvalidParameterCombination",
			    "kiln makes the one interface of an instance at device index 0 "
			    "and deletes it with the instance (DeviceIndex 0, "
			    "DeleteOnTermination true)");
			return -1;
		}
		for (size_t i = 0; i < ARRAY_SIZE(refused); i++)
			if (api_node_present(&ni, refused[i]) || api_node_count(&ni, refused[i])) {
				api_error_set(e, "InvalidParameterValue",
				              "kiln does not take NetworkInterface.1.%s",
				              refused[i]);
				return -1;
			}
		if (api_node_present(&ni, "AssociatePublicIpAddress"))
			req->public_ip = assoc;
		from = &ni;
	}
	req->subnet = api_node_str(from, "SubnetId");
	req->private_ip = api_node_str(from, "PrivateIpAddress");
	if (req->subnet && !api_id_ok("subnet", req->subnet, e))
		return -1;
	req->ngroup_ids = api_node_strings(from, "SecurityGroupId", ids);
	for (size_t i = 0; i < req->ngroup_ids; i++)
		if (!api_id_ok("sg", (*ids)[i], e))
			return -1;
	req->group_ids = *ids;
	req->ngroup_names = nif ? 0 : api_node_strings(&c->root, "SecurityGroup", names);
	req->group_names = *names;
	return 0;
}

int api_run_instances(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ struct instance *v = NULL;
	_cleanup_free_ uint8_t *ud = NULL;
	_cleanup_free_ struct tag *itags = NULL, *vtags = NULL;
	_cleanup_free_ const char **group_ids = NULL, **group_names = NULL;
	struct run_request req = {.region = c->region, .public_ip = -1};
	struct instance_extras ex;
	struct api_node bdm;
	int64_t min = 0, max = 0, size = 0;
	size_t n = 0;

	req.image = api_node_str(&c->root, "ImageId");
	req.type = api_node_str(&c->root, "InstanceType");
	req.zone = api_node_str(&c->root, "Placement.AvailabilityZone");
	req.key_name = api_node_str(&c->root, "KeyName");
	req.iam_profile_name = api_node_str(&c->root, "IamInstanceProfile.Name");
	req.iam_profile_arn = api_node_str(&c->root, "IamInstanceProfile.Arn");
	if (!req.type)
		req.type = "t2.micro";
	if (api_node_int(&c->root, "MinCount", 1, 20, &min, &err) < 0 ||
	    api_node_int(&c->root, "MaxCount", 1, 20, &max, &err) < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		return -1;
	}
	if (max < min) {
		api_error_set(e, "InvalidParameterValue",
		              "MinCount (%lld) is larger than MaxCount (%lld)", (long long)min,
		              (long long)max);
		return -1;
	}
	req.min_count = (int)min;
	req.max_count = (int)max;
	/* BlockDeviceMapping: the root's size and DeleteOnTermination (the image's mappings come
	 * as they are; volumes beyond them are CreateVolume and AttachVolume). */
	for (size_t i = 1; i <= api_node_count(&c->root, "BlockDeviceMapping"); i++) {
		const char *dev;
		bool dot = true;
		api_node_item(&c->root, "BlockDeviceMapping", i, &bdm);
		dev = api_node_str(&bdm, "DeviceName");
		if (dev && strcmp(dev, "/dev/xvda") && strcmp(dev, "/dev/sda1")) {
			api_error_set(e, "InvalidParameterValue",
			              "kiln maps the root device (/dev/xvda) at launch; attach %s "
			              "with CreateVolume and "
			              "AttachVolume",
			              dev);
			return -1;
		}
		if ((api_node_present(&bdm, "Ebs.VolumeSize") &&
		     api_node_int(&bdm, "Ebs.VolumeSize", 1, 16384, &size, &err) < 0) ||
		    api_node_bool(&bdm, "Ebs.DeleteOnTermination", &dot, &err) < 0) {
			api_error_from_kerr(e, err, "InvalidParameterValue");
			return -1;
		}
		req.keep_root = !dot;
	}
	req.root_size_gib = (uint64_t)size;
	if (api_node_str(&c->root, "UserData") &&
	    user_data_decode(api_node_str(&c->root, "UserData"), &ud, &req.user_data_len, e) < 0)
		return -1;
	req.user_data = ud;
	if (api_node_bool(&c->root, "DisableApiTermination", &req.disable_api_termination, &err) <
	        0 ||
	    api_node_bool(&c->root, "DisableApiStop", &req.disable_api_stop, &err) < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		return -1;
	}
	{
		struct api_node mo;

		api_node_child(&c->root, "MetadataOptions", &mo);
		if (api_call_metadata_change(c, &mo, &req.md, e) < 0)
			return -1;
	}
	req.shutdown_behavior = api_node_str(&c->root, "InstanceInitiatedShutdownBehavior");
	if (req.shutdown_behavior && !cloud_shutdown_behavior_valid(req.shutdown_behavior)) {
		api_error_set(
		    e, "InvalidParameterValue",
		    "Value (%s) for parameter instanceInitiatedShutdownBehavior is invalid. "
		    "Valid values are stop and terminate.",
		    req.shutdown_behavior);
		return -1;
	}
	if (run_network(c, &req, &group_ids, &group_names, e) < 0)
		return -1;
	req.client_token = api_node_str(&c->root, "ClientToken");
	if (req.client_token && strlen(req.client_token) > 64) {
		api_error_set(e, "InvalidParameterValue",
		              "ClientToken may be at most 64 characters long");
		return -1;
	}
	if (api_call_tag_specs(c, "instance", &itags, &req.ninstance_tags, e) < 0 ||
	    api_call_tag_specs(c, "volume", &vtags, &req.nvolume_tags, e) < 0)
		return -1;
	req.instance_tags = itags;
	req.volume_tags = vtags;
	if (cloud_run_instances(c->cloud, c->account.id, &req, &v, &n, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	if (extras_load(c, &ex, e) < 0)
		return -1;
	write_reservation_head(c->xml, &v[0]);
	api_xml_open(c->xml, "instancesSet");
	for (size_t i = 0; i < n; i++)
		write_instance(c->xml, &v[i], &ex);
	api_xml_close(c->xml);
	extras_release(&ex);
	return 0;
}

/* The code of the product its image had (the first, as for images). */
static const char *instance_product_code(const void *obj, char *buf, size_t size)
{
	const struct instance *in = obj;

	(void)buf;
	(void)size;
	return in->nproduct_codes ? in->product_codes[0] : NULL;
}

static const char *instance_product_code_type(const void *obj, char *buf, size_t size)
{
	(void)buf;
	(void)size;
	return ((const struct instance *)obj)->nproduct_codes ? "marketplace" : NULL;
}

static const struct api_filter_field instance_fields[] = {
    API_FIELD_TEXT_OF("vpc-id", struct instance, vpc),
    API_FIELD_TEXT_OF("subnet-id", struct instance, subnet),
    API_FIELD_TEXT_OF("ip-address", struct instance, public_ip),
    API_FIELD_TEXT_OF("network-interface.subnet-id", struct instance, subnet),
    API_FIELD_TEXT_OF("network-interface.vpc-id", struct instance, vpc),
    API_FIELD_TEXT_OF("instance-id", struct instance, id),
    API_FIELD_TEXT_OF("instance-state-name", struct instance, state),
    API_FIELD_TEXT_OF("image-id", struct instance, image),
    API_FIELD_TEXT_OF("availability-zone", struct instance, zone),
    API_FIELD_TEXT_OF("instance-type", struct instance, type),
    API_FIELD_TEXT_OF("private-ip-address", struct instance, private_ip),
    API_FIELD_TEXT_OF("reservation-id", struct instance, reservation),
    API_FIELD_TEXT_OF("key-name", struct instance, key_name),
    API_FIELD_TEXT_OF("iam-instance-profile.arn", struct instance, iam_profile_arn),
    API_FIELD_COMPUTED_OF("product-code", instance_product_code),
    API_FIELD_COMPUTED_OF("product-code.type", instance_product_code_type),
};

/* instance.group-id, instance.group-name (and group-id, group-name): any of its groups. */
struct group_match {
	const struct instance *in;
	const struct instance_extras *ex;
};

static bool group_filter(const char *name)
{
	return !strcmp(name, "instance.group-id") || !strcmp(name, "instance.group-name") ||
	       !strcmp(name, "group-id") || !strcmp(name, "group-name");
}

static int match_group(void *ctx, const struct api_filter *f, struct kerr **err)
{
	const struct group_match *m = ctx;
	bool by_name = !strcmp(f->name, "group-name") || !strcmp(f->name, "instance.group-name");

	(void)err;
	for (size_t i = 0; i < m->in->ngroups; i++)
		if (api_filter_match(f, by_name ? group_name(m->ex, m->in->groups[i])
		                                : m->in->groups[i]))
			return 1;
	return 0;
}

int api_describe_instances(struct api_call *c, struct api_error *e)
{
	_cleanup_free_ const char **ids = NULL;
	_cleanup_free_ struct instance *v = NULL;
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ struct api_filter *plain_items = NULL, *group_items = NULL;
	struct api_filters filters = {0}, plain = {0}, by_group = {0};
	struct instance_extras ex = {0};
	struct api_page page;
	const char *open_reservation = NULL, *missing;
	size_t nids, n;
	int r = -1;

	if (instance_ids(c, &ids, &nids, e) < 0 || api_call_filters(c, &filters, e) < 0 ||
	    api_call_page(c, 5, 1000, &page, e) < 0)
		goto out;
	/* The group filters match any of an instance's groups; the others, its fields. */
	plain_items = xcalloc(filters.n + 1, sizeof(*plain_items));
	group_items = xcalloc(filters.n + 1, sizeof(*group_items));
	for (size_t i = 0; i < filters.n; i++) {
		if (group_filter(filters.items[i].name))
			group_items[by_group.n++] = filters.items[i];
		else
			plain_items[plain.n++] = filters.items[i];
	}
	plain.items = plain_items;
	by_group.items = group_items;
	if (nids && page.max) {
		api_error_set(
		    e, "InvalidParameterCombination",
		    "The parameter instancesSet cannot be used with the parameter maxResults");
		goto out;
	}
	if (cloud_instances_list(c->cloud, c->account.id, c->region, &v, &n, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		goto out;
	}
	if (extras_load(c, &ex, e) < 0)
		goto out;
	if ((missing = api_first_missing(ids, nids, v, n, sizeof(*v)))) {
		api_error_set(e, "InvalidInstanceID.NotFound",
		              "The instance ID '%s' does not exist", missing);
		goto out;
	}
	api_xml_open(c->xml, "reservationSet");
	for (size_t k = 0; k < n; k++) {
		int m;

		if (!api_selected(ids, nids, v[k].id))
			continue;
		m = api_call_filter_match(&plain, instance_fields, ARRAY_SIZE(instance_fields),
		                          &v[k], &ex.tags, e);
		if (m > 0) {
			struct group_match gm = {&v[k], &ex};
			m = api_filters_match(&by_group, match_group, &gm, &err);
			if (m < 0)
				api_error_from_kerr(e, err, "InvalidParameterValue");
		}
		if (m < 0)
			goto out;
		if (!m || !api_page_take(&page))
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
		write_instance(c->xml, &v[k], &ex);
	}
	if (open_reservation) {
		api_xml_close(c->xml);
		api_xml_close(c->xml);
	}
	api_xml_close(c->xml);
	api_page_end(c, &page);
	r = 0;
out:
	api_filters_release(&filters);
	extras_release(&ex);
	return r;
}

static int change(struct api_call *c, struct api_error *e, const char *action, const char *set)
{
	_cleanup_free_ const char **ids = NULL;
	_cleanup_free_ struct state_change *v = NULL;
	_cleanup_kerr_ struct kerr *err = NULL;
	bool force = false;
	size_t n;

	n = api_node_strings(&c->root, "InstanceId", &ids);
	if (!strcmp(action, "stop") && api_node_bool(&c->root, "Force", &force, &err) < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		return -1;
	}
	if (cloud_instances_change(c->cloud, c->account.id, c->region, action, ids, n, force, &v,
	                           &err) < 0) {
		api_error_from_cloud(e, c->action, err);
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

	n = api_node_strings(&c->root, "InstanceId", &ids);
	if (cloud_instances_change(c->cloud, c->account.id, c->region, "reboot", ids, n, false, &v,
	                           &err) < 0) {
		api_error_from_cloud(e, c->action, err);
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

	if (cloud_instance_console(c->cloud, c->account.id, c->region, id, &out, &len, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
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

static const struct api_filter_field status_fields[] = {
    API_FIELD_TEXT_OF("availability-zone", struct instance, zone),
    API_FIELD_TEXT_OF("instance-state-name", struct instance, state),
};

int api_describe_instance_status(struct api_call *c, struct api_error *e)
{
	_cleanup_free_ const char **ids = NULL;
	_cleanup_free_ struct instance *v = NULL;
	_cleanup_kerr_ struct kerr *err = NULL;
	struct api_filters filters = {0};
	struct api_page page;
	const char *missing;
	bool all = false;
	size_t nids, n;
	int r = -1;

	if (instance_ids(c, &ids, &nids, e) < 0 || api_call_page(c, 5, 1000, &page, e) < 0)
		return -1;
	if (api_node_bool(&c->root, "IncludeAllInstances", &all, &err) < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		return -1;
	}
	if (api_call_filters(c, &filters, e) < 0)
		return -1;
	if (cloud_instances_list(c->cloud, c->account.id, c->region, &v, &n, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		goto out;
	}
	if ((missing = api_first_missing(ids, nids, v, n, sizeof(*v)))) {
		api_error_set(e, "InvalidInstanceID.NotFound",
		              "The instance ID '%s' does not exist", missing);
		goto out;
	}
	api_xml_open(c->xml, "instanceStatusSet");
	for (size_t k = 0; k < n; k++) {
		const char *sys, *inst;
		int m;

		/* Without IncludeAllInstances, only running instances have a status, as in EC2. */
		if (!api_selected(ids, nids, v[k].id) ||
		    (!all && instance_state_parse(v[k].state) != INSTANCE_RUNNING))
			continue;
		m = api_call_filter_match(&filters, status_fields, ARRAY_SIZE(status_fields), &v[k],
		                          NULL, e);
		if (m < 0)
			goto out;
		if (!m || !api_page_take(&page))
			continue;
		cloud_instance_health(c->cloud, &v[k], &sys, &inst);
		api_xml_item(c->xml);
		api_xml_elem(c->xml, "instanceId", v[k].id);
		api_xml_elem(c->xml, "availabilityZone", v[k].zone);
		write_state(c->xml, "instanceState", v[k].state);
		for (int i = 0; i < 2; i++) {
			const char *status = i ? inst : sys;
			api_xml_open(c->xml, i ? "instanceStatus" : "systemStatus");
			api_xml_elem(c->xml, "status", status);
			api_xml_open(c->xml, "details");
			if (strcmp(status, "not-applicable")) {
				api_xml_item(c->xml);
				api_xml_elem(c->xml, "name", "reachability");
				api_xml_elem(c->xml, "status",
				             strcmp(status, "ok") ? "failed" : "passed");
				api_xml_close(c->xml);
			}
			api_xml_close(c->xml);
			api_xml_close(c->xml);
		}
		api_xml_open(c->xml, "eventsSet");
		api_xml_close(c->xml);
		api_xml_close(c->xml);
	}
	api_xml_close(c->xml);
	api_page_end(c, &page);
	r = 0;
out:
	api_filters_release(&filters);
	return r;
}

/* The attributes ModifyInstanceAttribute changes in any state, as boto3 sends them (Name.Value)
 * and as Attribute + Value. */
static const struct {
	const char *param, *attr;
} flag_attrs[] = {
    {"DisableApiTermination.Value", "disableApiTermination"},
    {"DisableApiStop.Value", "disableApiStop"},
    {"InstanceInitiatedShutdownBehavior.Value", "instanceInitiatedShutdownBehavior"},
};

/* 1 when the request changes one of flag_attrs (done), 0 when none, -1 on error. */
static int modify_flags(struct api_call *c, const char *id, const char *attr, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct instance_flags f = {-1, -1, NULL};
	bool any = false;

	for (size_t k = 0; k < ARRAY_SIZE(flag_attrs); k++) {
		const char *param = flag_attrs[k].param;
		bool on = false;

		if (!api_node_present(&c->root, param)) {
			if (!attr || strcmp(attr, flag_attrs[k].attr))
				continue;
			param = "Value";
			if (!api_node_present(&c->root, param)) {
				api_error_missing_parameter(e, "Value");
				return -1;
			}
		}
		any = true;
		if (k == 2) {
			f.shutdown_behavior = api_node_str(&c->root, param);
			if (!f.shutdown_behavior ||
			    !cloud_shutdown_behavior_valid(f.shutdown_behavior)) {
				api_error_set(
				    e, "InvalidParameterValue",
				    "Value (%s) for parameter instanceInitiatedShutdownBehavior "
				    "is invalid. Valid values are stop and terminate.",
				    f.shutdown_behavior ? f.shutdown_behavior : "");
				return -1;
			}
			continue;
		}
		if (api_node_bool(&c->root, param, &on, &err) < 0) {
			api_error_from_kerr(e, err, "InvalidParameterValue");
			return -1;
		}
		*(k == 0 ? &f.disable_api_termination : &f.disable_api_stop) = on;
	}
	if (!any)
		return 0;
	if (api_node_present(&c->root, "InstanceType") || api_node_present(&c->root, "UserData")) {
		api_error_set(e, "InvalidParameterCombination",
		              "ModifyInstanceAttribute changes one attribute per request");
		return -1;
	}
	if (cloud_instance_set_flags(c->cloud, c->account.id, c->region, id, &f, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	api_xml_bool(c->xml, "return", true);
	return 1;
}

/* ModifyInstanceAttribute: disableApiTermination, disableApiStop and
 * instanceInitiatedShutdownBehavior in any state; instanceType and userData of a stopped
 * instance, given as InstanceType.Value / UserData.Value or as Attribute + Value. */
int api_modify_instance_attribute(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ uint8_t *ud = NULL;
	const char *id = api_node_str(&c->root, "InstanceId"),
	           *attr = api_node_str(&c->root, "Attribute");
	const char *type = api_node_str(&c->root, "InstanceType.Value");
	const char *user_data = api_node_str(&c->root, "UserData.Value");
	static const char *const refused[] = {
	    "SourceDestCheck", "EbsOptimized",    "EnaSupport",        "Kernel",
	    "Ramdisk",         "SriovNetSupport", "BlockDeviceMapping"};
	size_t ud_len = 0;
	int flags;

	if (api_node_count(&c->root, "GroupId")) {
		_cleanup_free_ const char **groups = NULL;
		size_t n;
		if (api_call_id_list(c, "GroupId", "sg", &groups, &n, e) < 0)
			return -1;
		if (cloud_instance_set_groups(c->cloud, c->account.id, c->region, id, groups, n,
		                              &err) < 0) {
			api_error_from_cloud(e, c->action, err);
			return -1;
		}
		api_xml_bool(c->xml, "return", true);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++)
		if (api_node_present(&c->root, refused[i])) {
			api_error_set(e, "InvalidParameterValue",
			              "kiln does not change the attribute %s", refused[i]);
			return -1;
		}
	if ((flags = modify_flags(c, id, attr, e)) != 0)
		return flags < 0 ? -1 : 0;
	if (attr) {
		const char *value = api_node_str(&c->root, "Value");
		if (strcmp(attr, "instanceType") && strcmp(attr, "userData")) {
			api_error_set(e, "InvalidParameterValue",
			              "kiln does not change the attribute %s", attr);
			return -1;
		}
		if (!value && strcmp(attr, "userData")) {
			api_error_missing_parameter(e, "Value");
			return -1;
		}
		if (!strcmp(attr, "instanceType"))
			type = value;
		else
			user_data = value ? value : "";
	}
	if (!type && !user_data && !api_node_present(&c->root, "UserData")) {
		api_error_missing_parameter(e, "Attribute");
		return -1;
	}
	if (user_data && user_data[0] && user_data_decode(user_data, &ud, &ud_len, e) < 0)
		return -1;
	if (!user_data && api_node_present(&c->root, "UserData"))
		user_data = ""; /* UserData with an empty value removes it */
	if (cloud_instance_modify(c->cloud, c->account.id, c->region, id, type,
	                          user_data ? (ud ? ud : (const uint8_t *)"") : NULL, ud_len,
	                          &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	api_xml_bool(c->xml, "return", true);
	return 0;
}
