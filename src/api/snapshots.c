/* CreateSnapshot, DescribeSnapshots, DeleteSnapshot, ModifySnapshotAttribute,
 * DescribeSnapshotAttribute (createVolumePermission). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "util/cleanup.h"
#include "util/xalloc.h"
#include "util/banned.h"

/* The members of one snapshot (an item of a list, or a whole answer). */
static void write_snapshot(struct api_xml *x, const void *item, const struct tag_set *tags)
{
	const struct snapshot *s = item;

	api_xml_elem(x, "snapshotId", s->id);
	api_xml_elem(x, "volumeId", s->volume);
	api_xml_elem(x, "status", s->state);
	if (s->state_message[0])
		api_xml_elem(x, "statusMessage", s->state_message);
	api_xml_time(x, "startTime", s->start_ms);
	api_xml_elemf(x, "progress", "%d%%", s->progress);
	api_xml_elem(x, "ownerId", s->owner);
	if (s->owner_alias[0])
		api_xml_elem(x, "ownerAlias", s->owner_alias);
	api_xml_int(x, "volumeSize", (int64_t)s->volume_size_gib);
	api_xml_elem(x, "description", s->description);
	api_xml_bool(x, "encrypted", false);
	api_xml_elem(x, "storageTier", "standard");
	if (tags)
		api_write_tag_set(x, tags, s->id);
}

int api_create_snapshot(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ struct tag *tags = NULL;
	const char *vol = api_node_str(&c->root, "VolumeId"),
	           *desc = api_node_str(&c->root, "Description");
	struct tag_set set = {0};
	struct snapshot s;
	size_t ntags;

	if (api_call_tag_specs(c, "snapshot", &tags, &ntags, e) < 0)
		return -1;
	if (cloud_snapshot_create(c->cloud, c->account.id, c->region, vol, desc, tags, ntags, &s,
	                          &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	if (cloud_tags_list(c->cloud, c->account.id, c->region, &set, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	write_snapshot(c->xml, &s, &set);
	tag_set_release(&set);
	return 0;
}

static const char *snapshot_progress(const void *obj, char *buf, size_t size)
{
	snprintf(buf, size, "%d%%", ((const struct snapshot *)obj)->progress);
	return buf;
}

static const char *snapshot_size(const void *obj, char *buf, size_t size)
{
	snprintf(buf, size, "%llu",
	         (unsigned long long)((const struct snapshot *)obj)->volume_size_gib);
	return buf;
}

static const struct api_filter_field snapshot_fields[] = {
    API_FIELD_TEXT_OF("snapshot-id", struct snapshot, id),
    API_FIELD_TEXT_OF("volume-id", struct snapshot, volume),
    API_FIELD_TEXT_OF("status", struct snapshot, state),
    API_FIELD_TEXT_OF("owner-id", struct snapshot, owner),
    API_FIELD_TEXT_OF("owner-alias", struct snapshot, owner_alias),
    API_FIELD_TEXT_OF("description", struct snapshot, description),
    API_FIELD_COMPUTED_OF("progress", snapshot_progress),
    API_FIELD_COMPUTED_OF("volume-size", snapshot_size),
    API_FIELD_CONST_OF("encrypted", "false"),
    API_FIELD_CONST_OF("storage-tier", "standard"),
};

/* Owner.N: self, an alias (amazon) or account ids. */
static bool owner_selected(const struct snapshot *s, const char **owners, size_t n,
                           const char *caller)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(owners[i], "self")
		        ? !strcmp(s->owner, caller)
		        : !strcmp(owners[i], s->owner) || !strcmp(owners[i], s->owner_alias))
			return true;
	return n == 0;
}

/* RestorableBy.N: all (public), self or the caller's id (anything it may restore), other ids
 * (only what is shared with those, which kiln answers for the caller's own snapshots). */
static bool restorable_selected(const struct snapshot *s, const char **by, size_t n,
                                const char *caller)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(by[i], "all")                              ? s->public
		    : !strcmp(by[i], "self") || !strcmp(by[i], caller) ? s->restorable
		                                                       : !strcmp(s->owner, caller))
			return true;
	return n == 0;
}

struct snapshot_selection {
	const char **owners, **by;
	size_t nowners, nby;
};

static int load_snapshots(struct api_call *c, void **items, size_t *n, struct kerr **err)
{
	return cloud_snapshots_visible(c->cloud, c->account.id, c->region,
	                               (struct snapshot **)items, n, err);
}

static bool keep_snapshot(struct api_call *c, const void *item, void *ctx)
{
	const struct snapshot_selection *sel = ctx;

	return owner_selected(item, sel->owners, sel->nowners, c->account.id) &&
	       restorable_selected(item, sel->by, sel->nby, c->account.id);
}

int api_describe_snapshots(struct api_call *c, struct api_error *e)
{
	_cleanup_free_ const char **owners = NULL, **by = NULL;
	struct snapshot_selection sel = {
	    .nowners = api_node_strings(&c->root, "Owner", &owners),
	    .nby = api_node_strings(&c->root, "RestorableBy", &by),
	};
	const struct api_list l = {
	    .id_param = "SnapshotId",
	    .prefix = "snap",
	    .max_results = 1000,
	    .clip_results = true,
	    .set = "snapshotSet",
	    .not_found_code = "InvalidSnapshot.NotFound",
	    .noun = "snapshot",
	    .fields = snapshot_fields,
	    .nfields = ARRAY_SIZE(snapshot_fields),
	    .size = sizeof(struct snapshot),
	    .load = load_snapshots,
	    .keep = keep_snapshot,
	    .write = write_snapshot,
	    .ctx = &sel,
	};

	sel.owners = owners;
	sel.by = by;
	return api_describe_list(c, &l, e);
}

int api_delete_snapshot(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *id = api_node_str(&c->root, "SnapshotId");

	if (cloud_snapshot_delete(c->cloud, c->account.id, c->region, id, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	api_xml_bool(c->xml, "return", true);
	return 0;
}

static int attribute_of(struct api_call *c, struct api_error *e)
{
	const char *a = api_node_str(&c->root, "Attribute");

	if (strcmp(a, "createVolumePermission") && strcmp(a, "productCodes")) {
		api_error_set(e, "InvalidParameterValue",
		              "Value (%s) for parameter attribute is invalid", a);
		return -1;
	}
	return !strcmp(a, "productCodes");
}

int api_modify_snapshot_attribute(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ const char **add = NULL, **remove = NULL;
	const char *id, *type = api_node_str(&c->root, "OperationType");
	size_t nadd = 0, nremove = 0;
	int attr;

	id = api_node_str(&c->root, "SnapshotId");
	if (api_node_present(&c->root, "Attribute") && (attr = attribute_of(c, e)) != 0) {
		if (attr > 0)
			api_error_set(e, "InvalidParameterValue",
			              "The attribute productCodes cannot be modified");
		return -1;
	}
	if (type && strcasecmp(type, "add") && strcasecmp(type, "remove")) {
		api_error_set(e, "InvalidParameterValue",
		              "Value (%s) for parameter operationType is invalid", type);
		return -1;
	}
	if (api_call_grantees(c, "CreateVolumePermission", "Add", &add, &nadd, e) < 0 ||
	    api_call_grantees(c, "CreateVolumePermission", "Remove", &remove, &nremove, e) < 0)
		return -1;
	if (!nadd && !nremove) {
		api_error_missing_parameter(e, "CreateVolumePermission");
		return -1;
	}
	if (cloud_snapshot_permit(c->cloud, c->account.id, c->region, id, add, nadd, remove,
	                          nremove, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	api_xml_bool(c->xml, "return", true);
	return 0;
}

int api_describe_snapshot_attribute(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ char(*who)[ACCOUNT_ID_LEN + 1] = NULL;
	const char *id;
	size_t n;
	int attr;

	id = api_node_str(&c->root, "SnapshotId");
	if ((attr = attribute_of(c, e)) < 0)
		return -1;
	if (cloud_snapshot_permissions(c->cloud, c->account.id, c->region, id, &who, &n, &err) <
	    0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	api_xml_elem(c->xml, "snapshotId", id);
	if (attr) {
		char codes[PRODUCT_CODES_MAX][PRODUCT_CODE_LEN + 1];
		size_t ncodes;
		if (cloud_product_codes(c->cloud, id, codes, &ncodes, &err) < 0) {
			api_error_from_cloud(e, c->action, err);
			return -1;
		}
		api_write_product_codes(c->xml, (const char(*)[PRODUCT_CODE_LEN + 1]) codes,
		                        ncodes);
		return 0;
	}
	api_xml_open(c->xml, "createVolumePermission");
	for (size_t i = 0; i < n && !attr; i++) {
		api_xml_item(c->xml);
		api_xml_elem(c->xml, strcmp(who[i], "all") ? "userId" : "group", who[i]);
		api_xml_close(c->xml);
	}
	api_xml_close(c->xml);
	return 0;
}

int api_copy_snapshot(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ struct tag *tags = NULL;
	const char *src_region = api_node_str(&c->root, "SourceRegion");
	const char *src = api_node_str(&c->root, "SourceSnapshotId");
	const char *dest = api_node_str(&c->root, "DestinationRegion");
	const char *desc = api_node_str(&c->root, "Description");
	char id[ID_MAX];
	size_t ntags;

	if (dest && strcmp(dest, c->region)) {
		api_error_set(e, "InvalidParameterValue",
		              "DestinationRegion '%s' is not the region of the request (%s)", dest,
		              c->region);
		return -1;
	}
	if (api_call_tag_specs(c, "snapshot", &tags, &ntags, e) < 0)
		return -1;
	if (cloud_snapshot_copy_from(c->cloud, c->account.id, c->region, src_region, src, desc,
	                             tags, ntags, id, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	api_xml_elem(c->xml, "snapshotId", id);
	return 0;
}
