/* CreateLaunchTemplate, CreateLaunchTemplateVersion, DescribeLaunchTemplates,
 * DescribeLaunchTemplateVersions, ModifyLaunchTemplate, DeleteLaunchTemplate,
 * DeleteLaunchTemplateVersions, and RunInstances' LaunchTemplate: a version's parameters are kept
 * as the request's LaunchTemplateData.* pairs, which carry RunInstances' own names, so a launch
 * from a template is those pairs added to the request where it gives no member of its own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cloud/launch_templates.h"
#include "server.h"
#include "util/cleanup.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define DATA_PREFIX "LaunchTemplateData."

/* The members of LaunchTemplateData kiln keeps: the request's name (botocore's locationName,
 * which is also RunInstances' name for it) and the response's (ResponseLaunchTemplateData). */
enum lt_kind { LT_STR, LT_BOOL, LT_INT, LT_STRUCT, LT_LIST, LT_STRINGS };

struct lt_member {
	const char *req, *resp;
	enum lt_kind kind;
	const struct lt_member *members; /* LT_STRUCT, LT_LIST; ends with a NULL req */
	const char *item;                /* the element of a list in the response ("item") */
};

#define LEAF(q, r, k)                                                                              \
	{                                                                                          \
		q, r, k, NULL, "item"                                                              \
	}
#define NODE(q, r, k, m)                                                                           \
	{                                                                                          \
		q, r, k, m, "item"                                                                 \
	}
#define END                                                                                        \
	{                                                                                          \
		NULL, NULL, LT_STR, NULL, NULL                                                     \
	}

static const struct lt_member ebs_members[] = {
    LEAF("DeleteOnTermination", "deleteOnTermination", LT_BOOL),
    LEAF("Encrypted", "encrypted", LT_BOOL),
    LEAF("Iops", "iops", LT_INT),
    LEAF("KmsKeyId", "kmsKeyId", LT_STR),
    LEAF("SnapshotId", "snapshotId", LT_STR),
    LEAF("Throughput", "throughput", LT_INT),
    LEAF("VolumeSize", "volumeSize", LT_INT),
    LEAF("VolumeType", "volumeType", LT_STR),
    END,
};

static const struct lt_member mapping_members[] = {
    LEAF("DeviceName", "deviceName", LT_STR),
    LEAF("VirtualName", "virtualName", LT_STR),
    NODE("Ebs", "ebs", LT_STRUCT, ebs_members),
    LEAF("NoDevice", "noDevice", LT_STR),
    END,
};

static const struct lt_member private_ip_members[] = {
    LEAF("Primary", "primary", LT_BOOL),
    LEAF("PrivateIpAddress", "privateIpAddress", LT_STR),
    END,
};

static const struct lt_member interface_members[] = {
    LEAF("AssociatePublicIpAddress", "associatePublicIpAddress", LT_BOOL),
    LEAF("DeleteOnTermination", "deleteOnTermination", LT_BOOL),
    LEAF("Description", "description", LT_STR),
    LEAF("DeviceIndex", "deviceIndex", LT_INT),
    {"SecurityGroupId", "groupSet", LT_STRINGS, NULL, "groupId"},
    LEAF("NetworkInterfaceId", "networkInterfaceId", LT_STR),
    LEAF("PrivateIpAddress", "privateIpAddress", LT_STR),
    NODE("PrivateIpAddresses", "privateIpAddressesSet", LT_LIST, private_ip_members),
    LEAF("SecondaryPrivateIpAddressCount", "secondaryPrivateIpAddressCount", LT_INT),
    LEAF("SubnetId", "subnetId", LT_STR),
    END,
};

static const struct lt_member placement_members[] = {
    LEAF("AvailabilityZone", "availabilityZone", LT_STR),
    LEAF("GroupName", "groupName", LT_STR),
    LEAF("Tenancy", "tenancy", LT_STR),
    END,
};

static const struct lt_member tag_members[] = {
    LEAF("Key", "key", LT_STR),
    LEAF("Value", "value", LT_STR),
    END,
};

static const struct lt_member tag_spec_members[] = {
    LEAF("ResourceType", "resourceType", LT_STR),
    NODE("Tag", "tagSet", LT_LIST, tag_members),
    END,
};

static const struct lt_member metadata_members[] = {
    LEAF("HttpTokens", "httpTokens", LT_STR),
    LEAF("HttpPutResponseHopLimit", "httpPutResponseHopLimit", LT_INT),
    LEAF("HttpEndpoint", "httpEndpoint", LT_STR),
    LEAF("HttpProtocolIpv6", "httpProtocolIpv6", LT_STR),
    LEAF("InstanceMetadataTags", "instanceMetadataTags", LT_STR),
    END,
};

/* In ResponseLaunchTemplateData's order. */
static const struct lt_member data_members[] = {
    NODE("BlockDeviceMapping", "blockDeviceMappingSet", LT_LIST, mapping_members),
    NODE("NetworkInterface", "networkInterfaceSet", LT_LIST, interface_members),
    LEAF("ImageId", "imageId", LT_STR),
    LEAF("InstanceType", "instanceType", LT_STR),
    LEAF("KeyName", "keyName", LT_STR),
    NODE("Placement", "placement", LT_STRUCT, placement_members),
    LEAF("DisableApiTermination", "disableApiTermination", LT_BOOL),
    LEAF("InstanceInitiatedShutdownBehavior", "instanceInitiatedShutdownBehavior", LT_STR),
    LEAF("UserData", "userData", LT_STR),
    NODE("TagSpecification", "tagSpecificationSet", LT_LIST, tag_spec_members),
    LEAF("SecurityGroupId", "securityGroupIdSet", LT_STRINGS),
    LEAF("SecurityGroup", "securityGroupSet", LT_STRINGS),
    NODE("MetadataOptions", "metadataOptions", LT_STRUCT, metadata_members),
    END,
};

static const struct lt_member *member_find(const struct lt_member *ms, const char *name, size_t len)
{
	for (; ms->req; ms++)
		if (strlen(ms->req) == len && !strncmp(ms->req, name, len))
			return ms;
	return NULL;
}

/* Skip a list index (1 to 999999) at *name; false when there is none. */
static bool skip_index(const char **name)
{
	size_t len = strspn(*name, "0123456789");

	if (!len || len > 6 || **name == '0')
		return false;
	*name += len;
	return true;
}

/* Does name (relative to LaunchTemplateData) name a member kiln keeps? *kind: its leaf's. */
static bool data_name_ok(const char *name, enum lt_kind *kind)
{
	const struct lt_member *ms = data_members;

	for (;;) {
		size_t len = strcspn(name, ".");
		const struct lt_member *m = member_find(ms, name, len);

		if (!m)
			return false;
		name += len;
		switch (m->kind) {
		case LT_STR:
		case LT_BOOL:
		case LT_INT:
			*kind = m->kind;
			return !*name;
		case LT_STRINGS:
			*kind = LT_STR;
			return *name++ == '.' && skip_index(&name) && !*name;
		case LT_LIST:
			if (*name++ != '.' || !skip_index(&name))
				return false;
			/* fall through */
		case LT_STRUCT:
			if (*name++ != '.')
				return false;
			ms = m->members;
			break;
		}
	}
}

static bool value_ok(enum lt_kind kind, const char *v)
{
	if (!*v || kind == LT_STR)
		return true;
	if (kind == LT_BOOL)
		return !strcasecmp(v, "true") || !strcasecmp(v, "false");
	return strlen(v) <= 18 && strspn(v, "0123456789") == strlen(v);
}

/* The request's LaunchTemplateData.* pairs, in the order received (the first of a repeated name),
 * each checked against the members kiln keeps: the others are refused, not dropped. */
static int data_collect(struct api_call *c, struct kv *out, struct api_error *e)
{
	const struct api_params *p = c->root.params;
	size_t plen = strlen(DATA_PREFIX);

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < p->n; i++) {
		const struct api_param *it = &p->items[i];
		const char *name = it->name + plen;
		enum lt_kind kind;

		if (strncmp(it->name, DATA_PREFIX, plen) || api_params_find(p, it->name) != it)
			continue;
		if (!data_name_ok(name, &kind)) {
			api_error_set(e, "InvalidParameterValue",
			              "kiln does not support the launch template parameter %s",
			              it->name);
			goto on_error;
		}
		if (!value_ok(kind, it->value)) {
			api_error_set(e, "InvalidParameterValue", "Invalid value '%s' for %s",
			              it->value, it->name);
			goto on_error;
		}
		if (out->n == LAUNCH_TEMPLATE_DATA_MAX) {
			api_error_set(e, "InvalidParameterValue",
			              "a launch template version holds at most %d parameters",
			              LAUNCH_TEMPLATE_DATA_MAX);
			goto on_error;
		}
		out->keys = xreallocarray(out->keys, out->n + 1, sizeof(char *));
		out->values = xreallocarray(out->values, out->n + 1, sizeof(char *));
		out->keys[out->n] = xstrdup(name);
		out->values[out->n++] = xstrdup(it->value);
	}
	return 0;

on_error:
	kv_release(out);
	return -1;
}

/* The members of node as the response names them. */
static void data_write(struct api_xml *x, const struct api_node *node, const struct lt_member *ms)
{
	for (; ms->req; ms++) {
		char path[API_PARAM_NAME_MAX + 1];
		const struct api_param *p;
		struct api_node child, item;
		const char *v;
		size_t n;

		switch (ms->kind) {
		case LT_STR: /* "" is kept too: a tag's value may be empty */
			if ((p = api_params_find(node->params, api_node_path(node, ms->req, path))))
				api_xml_elem(x, ms->resp, p->value);
			break;
		case LT_INT:
			if ((v = api_node_str(node, ms->req)))
				api_xml_elem(x, ms->resp, v);
			break;
		case LT_BOOL:
			if ((v = api_node_str(node, ms->req)))
				api_xml_bool(x, ms->resp, !strcasecmp(v, "true"));
			break;
		case LT_STRUCT:
			if (!api_node_present(node, ms->req))
				break;
			api_node_child(node, ms->req, &child);
			api_xml_open(x, ms->resp);
			data_write(x, &child, ms->members);
			api_xml_close(x);
			break;
		case LT_STRINGS:
		case LT_LIST:
			if (!(n = api_node_count(node, ms->req)))
				break;
			api_xml_open(x, ms->resp);
			for (size_t i = 1; i <= n; i++) {
				api_node_item(node, ms->req, i, &item);
				if (ms->kind == LT_STRINGS) {
					api_xml_elem(x, ms->item, api_node_str(&item, NULL));
					continue;
				}
				api_xml_open(x, ms->item);
				data_write(x, &item, ms->members);
				api_xml_close(x);
			}
			api_xml_close(x);
			break;
		}
	}
}

static void write_launch_template_data(struct api_xml *x, const struct kv *data)
{
	struct api_params p;
	struct api_node root;

	api_params_init(&p);
	api_params_append(&p, (const char *const *)data->keys, (const char *const *)data->values,
	                  data->n);
	api_params_root(&p, &root);
	api_xml_open(x, "launchTemplateData");
	data_write(x, &root, data_members);
	api_xml_close(x);
	api_params_release(&p);
}

static void created_by(const char *owner, char *out, size_t size)
{
	snprintf(out, size, "arn:aws:iam::%s:root", owner);
}

static void write_template(struct api_xml *x, const struct launch_template *t,
                           const struct tag_set *tags)
{
	char by[64];

	created_by(t->owner, by, sizeof(by));
	api_xml_elem(x, "launchTemplateId", t->id);
	api_xml_elem(x, "launchTemplateName", t->name);
	api_xml_time(x, "createTime", t->create_ms);
	api_xml_elem(x, "createdBy", by);
	api_xml_int(x, "defaultVersionNumber", t->default_version);
	api_xml_int(x, "latestVersionNumber", t->latest_version);
	if (tags)
		api_write_tag_set(x, tags, t->id);
}

static void write_version(struct api_xml *x, const char *owner,
                          const struct launch_template_version *v)
{
	char by[64];

	created_by(owner, by, sizeof(by));
	api_xml_elem(x, "launchTemplateId", v->template_id);
	api_xml_elem(x, "launchTemplateName", v->template_name);
	api_xml_int(x, "versionNumber", v->number);
	if (v->description[0])
		api_xml_elem(x, "versionDescription", v->description);
	api_xml_time(x, "createTime", v->create_ms);
	api_xml_elem(x, "createdBy", by);
	api_xml_bool(x, "defaultVersion", v->is_default);
	write_launch_template_data(x, &v->data);
}

/* "$Latest", "$Default" or a version number; false for anything else. */
static bool version_parse(const char *s, int64_t *out)
{
	const char *p = s;

	if (!strcmp(s, "$Latest")) {
		*out = LT_VERSION_LATEST;
		return true;
	}
	if (!strcmp(s, "$Default")) {
		*out = LT_VERSION_DEFAULT;
		return true;
	}
	if (!skip_index(&p) || *p)
		return false;
	*out = strtoll(s, NULL, 10);
	return true;
}

static bool version_ok(const char *s, int64_t *out, struct api_error *e)
{
	if (version_parse(s, out))
		return true;
	api_error_set(e, "InvalidLaunchTemplateId.VersionNotFound",
	              "The launch template version %s is not found for the specified launch "
	              "template",
	              s);
	return false;
}

/* The template the request names under node: LaunchTemplateId or LaunchTemplateName, one of
 * them. */
static int template_of(struct api_call *c, const struct api_node *node, struct launch_template *t,
                       struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *id = api_node_str(node, "LaunchTemplateId");
	const char *name = api_node_str(node, "LaunchTemplateName");

	if (id && name) {
		api_error_set(
		    e, "InvalidParameterCombination",
		    "You must specify either the launch template ID or the launch template "
		    "name, but not both");
		return -1;
	}
	if (!id && !name) {
		api_error_missing_parameter(e, "LaunchTemplateId or LaunchTemplateName");
		return -1;
	}
	if (id && !api_id_ok("lt", id, e))
		return -1;
	if (cloud_lt_get(c->cloud, c->account.id, c->region, id, name, t, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	return 0;
}

static bool version_description_ok(const char *d, struct api_error *e)
{
	if (!d || strlen(d) <= 255)
		return true;
	api_error_set(e, "InvalidParameterValue",
	              "VersionDescription may be at most 255 characters long");
	return false;
}

static bool client_token_ok(const char *token, struct api_error *e)
{
	if (!token || strlen(token) <= 128)
		return true;
	api_error_set(e, "InvalidParameterValue", "ClientToken may be at most 128 characters long");
	return false;
}

int api_create_launch_template(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ struct tag *tags = NULL;
	struct lt_create_request req = {.region = c->region};
	struct launch_template t;
	struct tag_set set = {0};
	struct kv data;
	int r;

	req.name = api_node_str(&c->root, "LaunchTemplateName");
	req.description = api_node_str(&c->root, "VersionDescription");
	req.client_token = api_node_str(&c->root, "ClientToken");
	if (!version_description_ok(req.description, e))
		return -1;
	if (!client_token_ok(req.client_token, e))
		return -1;
	if (api_call_tag_specs(c, "launch-template", &tags, &req.ntags, e) < 0 ||
	    data_collect(c, &data, e) < 0)
		return -1;
	req.tags = tags;
	req.data = &data;
	r = cloud_lt_create(c->cloud, c->account.id, &req, &t, &err);
	kv_release(&data);
	if (r < 0 || cloud_tags_list(c->cloud, c->account.id, c->region, &set, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	api_xml_open(c->xml, "launchTemplate");
	write_template(c->xml, &t, &set);
	api_xml_close(c->xml);
	tag_set_release(&set);
	return 0;
}

int api_create_launch_template_version(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *desc = api_node_str(&c->root, "VersionDescription");
	const char *source = api_node_str(&c->root, "SourceVersion");
	const char *token = api_node_str(&c->root, "ClientToken");
	struct launch_template_version v;
	struct launch_template t;
	int64_t from = 0;
	struct kv data;
	int r;

	if (!version_description_ok(desc, e) || !client_token_ok(token, e) ||
	    template_of(c, &c->root, &t, e) < 0)
		return -1;
	if (source && (!version_parse(source, &from) || from <= 0)) {
		api_error_set(e, "InvalidLaunchTemplateId.VersionNotFound",
		              "The source version %s is not a version number of %s", source, t.id);
		return -1;
	}
	if (data_collect(c, &data, e) < 0)
		return -1;
	r = cloud_lt_version_create(c->cloud, c->account.id, c->region, t.id, from, desc, token,
	                            &data, &v, &err);
	kv_release(&data);
	if (r < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	api_xml_open(c->xml, "launchTemplateVersion");
	write_version(c->xml, c->account.id, &v);
	api_xml_close(c->xml);
	cloud_lt_version_release(&v);
	return 0;
}

static const char *create_time(const void *obj, char *buf, size_t size)
{
	char t[25];

	api_xml_format_time(((const struct launch_template *)obj)->create_ms, t);
	str_copy(buf, t, size);
	return buf;
}

static const struct api_filter_field template_fields[] = {
    API_FIELD_TEXT_OF("launch-template-name", struct launch_template, name),
    API_FIELD_COMPUTED_OF("create-time", create_time),
};

static int templates_load(struct api_call *c, void **items, size_t *n, struct kerr **err)
{
	return cloud_lt_list(c->cloud, c->account.id, c->region, (struct launch_template **)items,
	                     n, err);
}

struct name_selection {
	const char **names;
	size_t n;
};

static bool template_named(struct api_call *c, const void *item, void *ctx)
{
	const struct name_selection *s = ctx;

	(void)c;
	return api_selected(s->names, s->n, ((const struct launch_template *)item)->name);
}

static void template_write(struct api_xml *x, const void *item, const struct tag_set *tags)
{
	write_template(x, item, tags);
}

int api_describe_launch_templates(struct api_call *c, struct api_error *e)
{
	_cleanup_free_ const char **names = NULL;
	_cleanup_free_ struct launch_template *all = NULL;
	_cleanup_kerr_ struct kerr *err = NULL;
	struct name_selection sel;
	size_t n;
	struct api_list l = {
	    .id_param = "LaunchTemplateId",
	    .prefix = "lt",
	    .max_results = 200,
	    .set = "launchTemplates",
	    .not_found_code = "InvalidLaunchTemplateId.NotFound",
	    .noun = "launch template ID",
	    .fields = template_fields,
	    .nfields = ARRAY_SIZE(template_fields),
	    .size = sizeof(struct launch_template),
	    .load = templates_load,
	    .keep = template_named,
	    .write = template_write,
	    .ctx = &sel,
	};

	sel.n = api_node_strings(&c->root, "LaunchTemplateName", &names);
	sel.names = names;
	if (sel.n) { /* every name asked for must be there, as EC2 answers */
		if (cloud_lt_list(c->cloud, c->account.id, c->region, &all, &n, &err) < 0) {
			api_error_from_cloud(e, c->action, err);
			return -1;
		}
		for (size_t i = 0; i < sel.n; i++) {
			bool found = false;

			for (size_t k = 0; k < n && !found; k++)
				found = !strcmp(all[k].name, sel.names[i]);
			if (!found) {
				api_error_set(
				    e, "InvalidLaunchTemplateName.NotFoundException",
				    "At least one of the launch templates specified in the "
				    "request does not exist.");
				return -1;
			}
		}
	}
	return api_describe_list(c, &l, e);
}

/* What the filters of DescribeLaunchTemplateVersions read: a parameter of the version. */
static const struct {
	const char *filter, *param;
} version_params[] = {
    {"image-id", "ImageId"},
    {"instance-type", "InstanceType"},
    {"http-endpoint", "MetadataOptions.HttpEndpoint"},
    {"http-tokens", "MetadataOptions.HttpTokens"},
};

static int version_match(const struct api_filters *f, const struct launch_template_version *v,
                         struct api_error *e)
{
	for (size_t i = 0; i < f->n; i++) {
		const struct api_filter *fi = &f->items[i];
		const char *value = NULL;
		bool known = false;
		char t[25];

		if (!strcmp(fi->name, "is-default-version")) {
			known = true;
			value = v->is_default ? "true" : "false";
		} else if (!strcmp(fi->name, "create-time")) {
			known = true;
			api_xml_format_time(v->create_ms, t);
			value = t;
		}
		for (size_t k = 0; k < ARRAY_SIZE(version_params) && !known; k++)
			if (!strcmp(fi->name, version_params[k].filter)) {
				known = true;
				value = kv_get(&v->data, version_params[k].param, NULL);
			}
		if (!known) {
			api_error_set(e, "InvalidParameterValue", "The filter '%s' is invalid",
			              fi->name);
			return -1;
		}
		if (!value || !*value || !api_filter_match(fi, value))
			return 0;
	}
	return 1;
}

/* Versions.N (numbers, $Latest, $Default), MinVersion and MaxVersion of one template. */
struct version_selection {
	int64_t *numbers;
	size_t n;
	bool latest, is_default;
	int64_t min, max; /* 0: no bound */
};

static bool version_selected(const struct version_selection *s,
                             const struct launch_template_version *v, int64_t latest)
{
	bool any = !s->n && !s->latest && !s->is_default;

	for (size_t i = 0; i < s->n && !any; i++)
		any = s->numbers[i] == v->number;
	if ((s->latest && v->number == latest) || (s->is_default && v->is_default))
		any = true;
	return any && (!s->min || v->number >= s->min) && (!s->max || v->number <= s->max);
}

static int versions_of(struct api_call *c, const char *id, struct launch_template_version **out,
                       size_t *n, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;

	if (cloud_lt_versions(c->cloud, c->account.id, c->region, id, out, n, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	return 0;
}

int api_describe_launch_template_versions(struct api_call *c, struct api_error *e)
{
	_cleanup_free_ const char **asked = NULL;
	_cleanup_free_ struct launch_template *all = NULL;
	_cleanup_free_ int64_t *numbers = NULL;
	_cleanup_kerr_ struct kerr *err = NULL;
	struct version_selection sel = {0};
	struct api_filters filters = {0};
	struct launch_template one;
	struct api_page page;
	const char *minv = api_node_str(&c->root, "MinVersion");
	const char *maxv = api_node_str(&c->root, "MaxVersion");
	bool by_template = api_node_str(&c->root, "LaunchTemplateId") ||
	                   api_node_str(&c->root, "LaunchTemplateName");
	size_t nasked, ntemplates = 1;
	int r = -1;

	nasked = api_node_strings(&c->root, "LaunchTemplateVersion", &asked);
	numbers = xcalloc(nasked ? nasked : 1, sizeof(*numbers));
	for (size_t i = 0; i < nasked; i++) {
		int64_t v;

		if (!version_ok(asked[i], &v, e))
			return -1;
		if (v == LT_VERSION_LATEST)
			sel.latest = true;
		else if (v == LT_VERSION_DEFAULT)
			sel.is_default = true;
		else if (!by_template) {
			api_error_set(e, "InvalidParameterValue",
			              "Version numbers need a launch template: without one, only "
			              "$Latest and $Default are valid");
			return -1;
		} else
			numbers[sel.n++] = v;
	}
	sel.numbers = numbers;
	if ((minv && (!version_parse(minv, &sel.min) || sel.min <= 0)) ||
	    (maxv && (!version_parse(maxv, &sel.max) || sel.max <= 0))) {
		api_error_set(e, "InvalidParameterValue",
		              "MinVersion and MaxVersion are version numbers");
		return -1;
	}
	if (!by_template && !sel.latest && !sel.is_default) {
		api_error_set(
		    e, "InvalidParameterValue",
		    "Without a launch template, the versions must be $Latest or $Default");
		return -1;
	}
	if (by_template) {
		if (template_of(c, &c->root, &one, e) < 0)
			return -1;
	} else if (cloud_lt_list(c->cloud, c->account.id, c->region, &all, &ntemplates, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	if (api_call_page(c, 1, 200, &page, e) < 0 || api_call_filters(c, &filters, e) < 0)
		goto out;
	api_xml_open(c->xml, "launchTemplateVersionSet");
	for (size_t k = 0; k < ntemplates; k++) {
		const struct launch_template *t = by_template ? &one : &all[k];
		struct launch_template_version *v = NULL;
		size_t n = 0;

		if (versions_of(c, t->id, &v, &n, e) < 0)
			goto out;
		/* Every version number asked for must exist. */
		for (size_t i = 0; i < sel.n; i++) {
			bool found = false;

			for (size_t j = 0; j < n && !found; j++)
				found = v[j].number == sel.numbers[i];
			if (!found) {
				api_error_set(
				    e, "InvalidLaunchTemplateId.VersionNotFound",
				    "Could not find the specified version %lld for the launch "
				    "template with ID %s.",
				    (long long)sel.numbers[i], t->id);
				cloud_lt_versions_free(v, n);
				goto out;
			}
		}
		for (size_t j = 0; j < n; j++) {
			int m;

			if (!version_selected(&sel, &v[j], t->latest_version))
				continue;
			m = version_match(&filters, &v[j], e);
			if (m < 0) {
				cloud_lt_versions_free(v, n);
				goto out;
			}
			if (!m || !api_page_take(&page))
				continue;
			api_xml_item(c->xml);
			write_version(c->xml, t->owner, &v[j]);
			api_xml_close(c->xml);
		}
		cloud_lt_versions_free(v, n);
	}
	api_xml_close(c->xml);
	api_page_end(c, &page);
	r = 0;
out:
	api_filters_release(&filters);
	return r;
}

int api_modify_launch_template(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *def = api_node_str(&c->root, "SetDefaultVersion");
	struct launch_template t;
	struct tag_set set = {0};
	int64_t v;

	if (template_of(c, &c->root, &t, e) < 0)
		return -1;
	if (def) {
		if (!version_ok(def, &v, e))
			return -1;
		if (cloud_lt_set_default(c->cloud, c->account.id, c->region, t.id, v, &t, &err) <
		    0) {
			api_error_from_cloud(e, c->action, err);
			return -1;
		}
	}
	if (cloud_tags_list(c->cloud, c->account.id, c->region, &set, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	api_xml_open(c->xml, "launchTemplate");
	write_template(c->xml, &t, &set);
	api_xml_close(c->xml);
	tag_set_release(&set);
	return 0;
}

int api_delete_launch_template(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct launch_template t;

	if (template_of(c, &c->root, &t, e) < 0)
		return -1;
	if (cloud_lt_delete(c->cloud, c->account.id, c->region, t.id, &t, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	api_xml_open(c->xml, "launchTemplate");
	write_template(c->xml, &t, NULL);
	api_xml_close(c->xml);
	return 0;
}

/* ResponseError's code for a version that could not go (LaunchTemplateErrorCode has no code of
 * its own for the default version: EC2 answers unexpectedError with its reason). */
static const char *delete_error_code(const struct kerr *err)
{
	if (err->kind == KERR_NOT_FOUND && err->subject == KERR_SUBJECT_LAUNCH_TEMPLATE_VERSION)
		return "launchTemplateVersionDoesNotExist";
	return "unexpectedError";
}

int api_delete_launch_template_versions(struct api_call *c, struct api_error *e)
{
	_cleanup_free_ const char **asked = NULL;
	_cleanup_free_ int64_t *numbers = NULL;
	_cleanup_free_ struct kerr **errors = NULL;
	struct launch_template t;
	size_t n;

	if (template_of(c, &c->root, &t, e) < 0)
		return -1;
	n = api_node_strings(&c->root, "LaunchTemplateVersion", &asked);
	if (n > 200) {
		api_error_set(e, "InvalidParameterValue",
		              "At most 200 launch template versions can be deleted in one request");
		return -1;
	}
	numbers = xcalloc(n ? n : 1, sizeof(*numbers));
	errors = xcalloc(n ? n : 1, sizeof(*errors));
	for (size_t i = 0; i < n; i++) {
		if (!version_parse(asked[i], &numbers[i]) || numbers[i] <= 0) {
			kerr_about(&errors[i], KERR_NOT_FOUND, KERR_SUBJECT_LAUNCH_TEMPLATE_VERSION,
			           asked[i],
			           "The specified launch template version %s is not a "
			           "version number",
			           asked[i]);
			continue;
		}
		cloud_lt_version_delete(c->cloud, c->account.id, c->region, t.id, numbers[i],
		                        &errors[i]);
	}
	api_xml_open(c->xml, "successfullyDeletedLaunchTemplateVersionSet");
	for (size_t i = 0; i < n; i++) {
		if (errors[i])
			continue;
		api_xml_item(c->xml);
		api_xml_elem(c->xml, "launchTemplateId", t.id);
		api_xml_elem(c->xml, "launchTemplateName", t.name);
		api_xml_int(c->xml, "versionNumber", numbers[i]);
		api_xml_close(c->xml);
	}
	api_xml_close(c->xml);
	api_xml_open(c->xml, "unsuccessfullyDeletedLaunchTemplateVersionSet");
	for (size_t i = 0; i < n; i++) {
		if (!errors[i])
			continue;
		api_xml_item(c->xml);
		api_xml_elem(c->xml, "launchTemplateId", t.id);
		api_xml_elem(c->xml, "launchTemplateName", t.name);
		api_xml_int(c->xml, "versionNumber", numbers[i]);
		api_xml_open(c->xml, "responseError");
		api_xml_elem(c->xml, "code", delete_error_code(errors[i]));
		api_xml_elem(c->xml, "message", errors[i]->msg);
		api_xml_close(c->xml);
		api_xml_close(c->xml);
		kerr_free(errors[i]);
	}
	api_xml_close(c->xml);
	return 0;
}

int api_call_launch_template(struct api_call *c, struct api_params *p, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ const char **names = NULL, **values = NULL;
	_cleanup_free_ char *members = NULL;
	struct launch_template_version v;
	struct launch_template t;
	struct api_node spec;
	const char *ver;
	int64_t number = LT_VERSION_DEFAULT;
	size_t n = 0, w = 0;

	if (!api_node_present(&c->root, "LaunchTemplate"))
		return 0;
	api_node_child(&c->root, "LaunchTemplate", &spec);
	if (template_of(c, &spec, &t, e) < 0)
		return -1;
	ver = api_node_str(&spec, "Version");
	if (ver && !version_ok(ver, &number, e))
		return -1;
	if (cloud_lt_version_get(c->cloud, c->account.id, c->region, t.id, number, &v, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	/* A member the request gives (a scalar, a structure, a whole list) replaces the template's;
	 * decided on the request alone, before anything is added. */
	names = xcalloc(v.data.n ? v.data.n : 1, sizeof(*names));
	values = xcalloc(v.data.n ? v.data.n : 1, sizeof(*values));
	members = xmalloc(API_PARAM_NAME_MAX + 1);
	for (size_t i = 0; i < v.data.n; i++) {
		size_t len = strcspn(v.data.keys[i], ".");

		snprintf(members, API_PARAM_NAME_MAX + 1, "%.*s", (int)len, v.data.keys[i]);
		if (api_node_present(&c->root, members))
			continue;
		names[w] = v.data.keys[i];
		values[w++] = v.data.values[i];
	}
	n = w;
	api_params_append(p, names, values, n);
	cloud_lt_version_release(&v);
	return 0;
}
