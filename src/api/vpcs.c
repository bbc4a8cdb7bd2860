/* CreateVpc, DeleteVpc, DescribeVpcs, CreateDefaultVpc, DescribeVpcAttribute, CreateSubnet,
 * DeleteSubnet, DescribeSubnets, ModifySubnetAttribute, DescribeAccountAttributes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "util/cleanup.h"
#include "util/banned.h"

static void write_vpc(struct api_xml *x, const void *item, const struct tag_set *tags)
{
	const struct vpc *v = item;

	api_xml_elem(x, "vpcId", v->id);
	api_xml_elem(x, "ownerId", v->owner);
	api_xml_elem(x, "state", "available");
	api_xml_elem(x, "cidrBlock", v->cidr);
	api_xml_open(x, "cidrBlockAssociationSet");
	api_xml_item(x);
	/* One association per VPC, named after it. */
	api_xml_elemf(x, "associationId", "vpc-cidr-assoc-%s", v->id + 4);
	api_xml_elem(x, "cidrBlock", v->cidr);
	api_xml_open(x, "cidrBlockState");
	api_xml_elem(x, "state", "associated");
	api_xml_close(x);
	api_xml_close(x);
	api_xml_close(x);
	api_xml_elem(x, "dhcpOptionsId", "default");
	api_xml_elem(x, "instanceTenancy", "default");
	api_xml_bool(x, "isDefault", v->is_default);
	if (tags)
		api_write_tag_set(x, tags, v->id);
}

static int write_one_vpc(struct api_call *c, const struct vpc *v, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct tag_set set = {0};

	if (cloud_tags_list(c->cloud, c->account.id, c->region, &set, &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	api_xml_open(c->xml, "vpc");
	write_vpc(c->xml, v, &set);
	api_xml_close(c->xml);
	tag_set_release(&set);
	return 0;
}

int api_create_vpc(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ struct tag *tags = NULL;
	const char *tenancy = api_node_str(&c->root, "InstanceTenancy");
	bool ipv6 = false;
	size_t ntags = 0;
	struct vpc v;

	if (tenancy && strcmp(tenancy, "default")) {
		api_error_set(e, "InvalidParameterValue",
		              "kiln offers the instance tenancy 'default' only, not '%s'", tenancy);
		return -1;
	}
	if (api_node_bool(&c->root, "AmazonProvidedIpv6CidrBlock", &ipv6, &err) < 0 || ipv6 ||
	    api_node_present(&c->root, "Ipv4IpamPoolId") ||
	    api_node_present(&c->root, "Ipv6CidrBlock")) {
		api_error_set(e, "InvalidParameterValue",
		              "kiln's VPCs take an IPv4 CidrBlock only (no IPv6, no IPAM pools)");
		return -1;
	}
	if (api_call_tag_specs(c, "vpc", &tags, &ntags, e) < 0)
		return -1;
	if (cloud_vpc_create(c->cloud, c->account.id, c->region,
	                     api_node_str(&c->root, "CidrBlock"), tags, ntags, &v, &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	return write_one_vpc(c, &v, e);
}

int api_create_default_vpc(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct vpc v;

	if (cloud_vpc_create_default(c->cloud, c->account.id, c->region, &v, &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	return write_one_vpc(c, &v, e);
}

int api_delete_vpc(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;

	if (cloud_vpc_delete(c->cloud, c->account.id, c->region, api_node_str(&c->root, "VpcId"),
	                     &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	api_xml_bool(c->xml, "return", true);
	return 0;
}

static const char *vpc_is_default(const void *obj, char *buf, size_t size)
{
	(void)buf;
	(void)size;
	return ((const struct vpc *)obj)->is_default ? "true" : "false";
}

static const struct api_filter_field vpc_fields[] = {
    API_FIELD_TEXT_OF("vpc-id", struct vpc, id),
    API_FIELD_TEXT_OF("cidr", struct vpc, cidr),
    API_FIELD_TEXT_OF("cidr-block-association.cidr-block", struct vpc, cidr),
    API_FIELD_TEXT_OF("owner-id", struct vpc, owner),
    API_FIELD_COMPUTED_OF("is-default", vpc_is_default),
    API_FIELD_CONST_OF("state", "available"),
    API_FIELD_CONST_OF("dhcp-options-id", "default"),
};

static int load_vpcs(struct api_call *c, void **items, size_t *n, struct kerr **err)
{
	return cloud_vpcs_list(c->cloud, c->account.id, c->region, (struct vpc **)items, n, err);
}

int api_describe_vpcs(struct api_call *c, struct api_error *e)
{
	const struct api_list l = {
	    .id_param = "VpcId",
	    .prefix = "vpc",
	    .max_results = 1000,
	    .set = "vpcSet",
	    .not_found_code = "InvalidVpcID.NotFound",
	    .noun = "vpc ID",
	    .fields = vpc_fields,
	    .nfields = ARRAY_SIZE(vpc_fields),
	    .size = sizeof(struct vpc),
	    .load = load_vpcs,
	    .write = write_vpc,
	};

	return api_describe_list(c, &l, e);
}

int api_describe_vpc_attribute(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *id = api_node_str(&c->root, "VpcId"),
	           *attr = api_node_str(&c->root, "Attribute");
	struct vpc v;
	bool value;

	if (cloud_vpc_get(c->cloud, c->account.id, c->region, id, &v, &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	/* Instances are named by their private DNS names in every VPC (their hostname); EC2
	 * gives default VPCs DNS hostnames and new ones none until asked. */
	if (!strcmp(attr, "enableDnsSupport"))
		value = true;
	else if (!strcmp(attr, "enableDnsHostnames"))
		value = v.is_default;
	else if (!strcmp(attr, "enableNetworkAddressUsageMetrics"))
		value = false;
	else {
		api_error_set(e, "InvalidParameterValue",
		              "Value (%s) for parameter attribute is invalid", attr);
		return -1;
	}
	api_xml_elem(c->xml, "vpcId", v.id);
	api_xml_open(c->xml, attr);
	api_xml_bool(c->xml, "value", value);
	api_xml_close(c->xml);
	return 0;
}

static void write_subnet(struct api_xml *x, const void *item, const struct tag_set *tags)
{
	const struct subnet *s = item;

	api_xml_elem(x, "subnetId", s->id);
	api_xml_elemf(x, "subnetArn", "arn:aws:ec2:%s:%s:subnet/%s", s->region, s->owner, s->id);
	api_xml_elem(x, "state", "available");
	api_xml_elem(x, "vpcId", s->vpc);
	api_xml_elem(x, "ownerId", s->owner);
	api_xml_elem(x, "cidrBlock", s->cidr);
	api_xml_open(x, "ipv6CidrBlockAssociationSet");
	api_xml_close(x);
	api_xml_int(x, "availableIpAddressCount", (int64_t)s->available);
	api_xml_elem(x, "availabilityZone", s->zone);
	api_xml_elem(x, "availabilityZoneId", s->zone_id);
	api_xml_bool(x, "defaultForAz", s->is_default);
	api_xml_bool(x, "mapPublicIpOnLaunch", s->map_public);
	api_xml_bool(x, "assignIpv6AddressOnCreation", false);
	if (tags)
		api_write_tag_set(x, tags, s->id);
}

int api_create_subnet(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ struct tag *tags = NULL;
	struct subnet_request req = {.region = c->region};
	struct tag_set set = {0};
	struct subnet s;

	req.vpc = api_node_str(&c->root, "VpcId");
	req.cidr = api_node_str(&c->root, "CidrBlock");
	req.zone = api_node_str(&c->root, "AvailabilityZone");
	req.zone_id = api_node_str(&c->root, "AvailabilityZoneId");
	if (req.zone && req.zone_id) {
		api_error_set(e, "InvalidParameterCombination",
		              "Give AvailabilityZone or AvailabilityZoneId, not both");
		return -1;
	}
	if (api_node_present(&c->root, "Ipv6CidrBlock") ||
	    api_node_present(&c->root, "Ipv6Native") || api_node_present(&c->root, "OutpostArn")) {
		api_error_set(e, "InvalidParameterValue",
		              "kiln's subnets take an IPv4 CidrBlock only (no IPv6, no Outposts)");
		return -1;
	}
	if (api_call_tag_specs(c, "subnet", &tags, &req.ntags, e) < 0)
		return -1;
	req.tags = tags;
	if (cloud_subnet_create(c->cloud, c->account.id, &req, &s, &err) < 0 ||
	    cloud_tags_list(c->cloud, c->account.id, c->region, &set, &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	api_xml_open(c->xml, "subnet");
	write_subnet(c->xml, &s, &set);
	api_xml_close(c->xml);
	tag_set_release(&set);
	return 0;
}

int api_delete_subnet(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;

	if (cloud_subnet_delete(c->cloud, c->account.id, c->region,
	                        api_node_str(&c->root, "SubnetId"), &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	api_xml_bool(c->xml, "return", true);
	return 0;
}

static const char *subnet_default(const void *obj, char *buf, size_t size)
{
	(void)buf;
	(void)size;
	return ((const struct subnet *)obj)->is_default ? "true" : "false";
}

static const char *subnet_map_public(const void *obj, char *buf, size_t size)
{
	(void)buf;
	(void)size;
	return ((const struct subnet *)obj)->map_public ? "true" : "false";
}

static const char *subnet_available(const void *obj, char *buf, size_t size)
{
	snprintf(buf, size, "%llu", (unsigned long long)((const struct subnet *)obj)->available);
	return buf;
}

static const struct api_filter_field subnet_fields[] = {
    API_FIELD_TEXT_OF("subnet-id", struct subnet, id),
    API_FIELD_TEXT_OF("vpc-id", struct subnet, vpc),
    API_FIELD_TEXT_OF("availability-zone", struct subnet, zone),
    API_FIELD_TEXT_OF("availability-zone-id", struct subnet, zone_id),
    API_FIELD_TEXT_OF("cidr-block", struct subnet, cidr),
    API_FIELD_TEXT_OF("cidr", struct subnet, cidr),
    API_FIELD_TEXT_OF("cidrBlock", struct subnet, cidr),
    API_FIELD_TEXT_OF("owner-id", struct subnet, owner),
    API_FIELD_COMPUTED_OF("default-for-az", subnet_default),
    API_FIELD_COMPUTED_OF("defaultForAz", subnet_default),
    API_FIELD_COMPUTED_OF("map-public-ip-on-launch", subnet_map_public),
    API_FIELD_COMPUTED_OF("available-ip-address-count", subnet_available),
    API_FIELD_CONST_OF("state", "available"),
};

static int load_subnets(struct api_call *c, void **items, size_t *n, struct kerr **err)
{
	return cloud_subnets_list(c->cloud, c->account.id, c->region, (struct subnet **)items, n,
	                          err);
}

int api_describe_subnets(struct api_call *c, struct api_error *e)
{
	const struct api_list l = {
	    .id_param = "SubnetId",
	    .prefix = "subnet",
	    .max_results = 1000,
	    .set = "subnetSet",
	    .not_found_code = "InvalidSubnetID.NotFound",
	    .noun = "subnet ID",
	    .fields = subnet_fields,
	    .nfields = ARRAY_SIZE(subnet_fields),
	    .size = sizeof(struct subnet),
	    .load = load_subnets,
	    .write = write_subnet,
	};

	return api_describe_list(c, &l, e);
}

int api_modify_subnet_attribute(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	static const char *const refused[] = {"AssignIpv6AddressOnCreation",
	                                      "MapCustomerOwnedIpOnLaunch",
	                                      "CustomerOwnedIpv4Pool",
	                                      "EnableDns64",
	                                      "PrivateDnsHostnameTypeOnLaunch",
	                                      "EnableResourceNameDnsARecordOnLaunch",
	                                      "EnableResourceNameDnsAAAARecordOnLaunch",
	                                      "EnableLniAtDeviceIndex",
	                                      "DisableLniAtDeviceIndex"};
	bool map = false;

	for (size_t i = 0; i < ARRAY_SIZE(refused); i++)
		if (api_node_present(&c->root, refused[i])) {
			api_error_set(e, "InvalidParameterValue",
			              "kiln does not change the subnet attribute %s", refused[i]);
			return -1;
		}
	if (!api_node_present(&c->root, "MapPublicIpOnLaunch.Value")) {
		api_error_missing_parameter(e, "MapPublicIpOnLaunch");
		return -1;
	}
	if (api_node_bool(&c->root, "MapPublicIpOnLaunch.Value", &map, &err) < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		return -1;
	}
	if (cloud_subnet_map_public(c->cloud, c->account.id, c->region,
	                            api_node_str(&c->root, "SubnetId"), map, &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	api_xml_bool(c->xml, "return", true);
	return 0;
}

/* DescribeAccountAttributes: what the account's VPC platform offers. kiln has no Elastic IP
 * addresses, so their limits are 0. */
int api_describe_account_attributes(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ const char **names = NULL;
	_cleanup_kerr_ struct kerr *why = NULL;
	size_t nnames = api_node_strings(&c->root, "AttributeName", &names);
	char max_instances[24], sg_per_if[8];
	struct vpc v;
	const char *default_vpc = "none";
	uint64_t vcpus = 0;

	if (cloud_vpc_default(c->cloud, c->account.id, c->region, &v, &why) == 0)
		default_vpc = v.id;
	else if (why->kind != KERR_NOT_FOUND)
		return api_error_from_cloud(e, c->action, why), -1;
	if (cloud_quota_limit(c->cloud, QUOTA_VCPUS, &vcpus, &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	/* Instances of the smallest type (one vCPU) that fit the running-vCPUs quota. */
	snprintf(max_instances, sizeof(max_instances), "%llu", (unsigned long long)vcpus);
	snprintf(sg_per_if, sizeof(sg_per_if), "%d", SG_PER_INSTANCE);
	const char *const attrs[][2] = {
	    {"supported-platforms", "VPC"},   {"default-vpc", default_vpc},
	    {"max-instances", max_instances}, {"vpc-max-security-groups-per-interface", sg_per_if},
	    {"max-elastic-ips", "0"},         {"vpc-max-elastic-ips", "0"},
	};
	for (size_t i = 0; i < nnames; i++) {
		bool known = false;
		for (size_t k = 0; k < ARRAY_SIZE(attrs); k++)
			known = known || !strcmp(attrs[k][0], names[i]);
		if (!known) {
			api_error_set(e, "InvalidParameterValue",
			              "Value (%s) for parameter attributeName is invalid",
			              names[i]);
			return -1;
		}
	}
	api_xml_open(c->xml, "accountAttributeSet");
	for (size_t k = 0; k < ARRAY_SIZE(attrs); k++) {
		if (!api_selected(names, nnames, attrs[k][0]))
			continue;
		api_xml_item(c->xml);
		api_xml_elem(c->xml, "attributeName", attrs[k][0]);
		api_xml_open(c->xml, "attributeValueSet");
		api_xml_item(c->xml);
		api_xml_elem(c->xml, "attributeValue", attrs[k][1]);
		api_xml_close(c->xml);
		api_xml_close(c->xml);
		api_xml_close(c->xml);
	}
	api_xml_close(c->xml);
	return 0;
}
