/* kiln images, volumes, snapshots, regions, zones: what the caller may see, as tables. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "remote.h"
#include "util/cleanup.h"
#include "util/banned.h"

/* One listing: the action, the list element, and how an item becomes a row. */
struct listing {
	const char *command, *action, *set;
	const struct table_col *cols;
	size_t ncols;
	void (*row)(struct table *t, const struct xml_node *item);
};

static void image_row(struct table *t, const struct xml_node *im)
{
	const char *alias = xml_text(im, "imageOwnerAlias", "");

	table_add(t, xml_text(im, "imageId", ""), xml_text(im, "name", ""),
	          xml_text(im, "imageState", ""),
	          alias[0] ? alias : xml_text(im, "imageOwnerId", ""), xml_text(im, "isPublic", ""),
	          xml_text(im, "blockDeviceMapping/item/ebs/volumeSize", ""),
	          xml_text(im, "creationDate", ""));
}

static void volume_row(struct table *t, const struct xml_node *v)
{
	const struct xml_node *att = xml_item(v, "attachmentSet", 0);
	char attached[96] = "";

	if (att)
		snprintf(attached, sizeof(attached), "%s %s", xml_text(att, "instanceId", ""),
		         xml_text(att, "device", ""));
	table_add(t, xml_text(v, "volumeId", ""), xml_text(v, "status", ""),
	          xml_text(v, "size", ""), xml_text(v, "availabilityZone", ""), attached,
	          xml_text(v, "snapshotId", ""), xml_text(v, "createTime", ""));
}

static void snapshot_row(struct table *t, const struct xml_node *s)
{
	table_add(t, xml_text(s, "snapshotId", ""), xml_text(s, "status", ""),
	          xml_text(s, "progress", ""), xml_text(s, "volumeId", ""),
	          xml_text(s, "volumeSize", ""), xml_text(s, "ownerId", ""),
	          xml_text(s, "startTime", ""), xml_text(s, "description", ""));
}

static void region_row(struct table *t, const struct xml_node *r)
{
	table_add(t, xml_text(r, "regionName", ""), xml_text(r, "regionEndpoint", ""),
	          xml_text(r, "optInStatus", ""));
}

static void zone_row(struct table *t, const struct xml_node *z)
{
	table_add(t, xml_text(z, "zoneName", ""), xml_text(z, "zoneId", ""),
	          xml_text(z, "zoneState", ""), xml_text(z, "regionName", ""));
}

static const struct table_col region_cols[] = {
    {"REGION", "region", TABLE_STRING},
    {"ENDPOINT", "endpoint", TABLE_STRING},
    {"OPT-IN", "opt_in", TABLE_STRING},
};
static const struct table_col zone_cols[] = {
    {"ZONE", "zone", TABLE_STRING},
    {"ZONE-ID", "zone_id", TABLE_STRING},
    {"STATE", "state", TABLE_STRING},
    {"REGION", "region", TABLE_STRING},
};
static const struct table_col image_cols[] = {
    {"ID", "id", TABLE_STRING},           {"NAME", "name", TABLE_STRING},
    {"STATE", "state", TABLE_STRING},     {"OWNER", "owner", TABLE_STRING},
    {"PUBLIC", "public", TABLE_BOOL},     {"GIB", "size_gib", TABLE_NUMBER},
    {"CREATED", "created", TABLE_STRING},
};
static const struct table_col volume_cols[] = {
    {"ID", "id", TABLE_STRING},
    {"STATE", "state", TABLE_STRING},
    {"GIB", "size_gib", TABLE_NUMBER},
    {"ZONE", "zone", TABLE_STRING},
    {"ATTACHED", "attached", TABLE_STRING},
    {"SNAPSHOT", "snapshot", TABLE_STRING},
    {"CREATED", "created", TABLE_STRING},
};
static const struct table_col snapshot_cols[] = {
    {"ID", "id", TABLE_STRING},
    {"STATE", "state", TABLE_STRING},
    {"PROGRESS", "progress", TABLE_STRING},
    {"VOLUME", "volume", TABLE_STRING},
    {"GIB", "size_gib", TABLE_NUMBER},
    {"OWNER", "owner", TABLE_STRING},
    {"STARTED", "started", TABLE_STRING},
    {"DESCRIPTION", "description", TABLE_STRING},
};

static const struct listing listings[] = {
    {"images", "DescribeImages", "imagesSet", image_cols, ARRAY_SIZE(image_cols), image_row},
    {"volumes", "DescribeVolumes", "volumeSet", volume_cols, ARRAY_SIZE(volume_cols), volume_row},
    {"snapshots", "DescribeSnapshots", "snapshotSet", snapshot_cols, ARRAY_SIZE(snapshot_cols),
     snapshot_row},
    {"regions", "DescribeRegions", "regionInfo", region_cols, ARRAY_SIZE(region_cols), region_row},
    {"zones", "DescribeAvailabilityZones", "availabilityZoneInfo", zone_cols, ARRAY_SIZE(zone_cols),
     zone_row},
};

/* images, volumes, snapshots, regions, zones: argv[0] says which. */
int cmd_list(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const struct listing *l = &listings[0];
	const struct xml_node *item;
	struct remote_opts ro = {0};
	const struct cli_option opts[] = {
	    OPT_REMOTE(&ro),
	    OPT_EXAMPLE("kiln images"),
	    OPT_EXAMPLE("kiln volumes --output json"),
	    OPT_END(),
	};
	struct api_client *cl = NULL;
	struct xml_node *doc;
	struct api_args a;
	struct table t;
	char usage[128];
	int r = 1;

	for (size_t i = 0; i < ARRAY_SIZE(listings); i++)
		if (!strcmp(listings[i].command, argv[0]))
			l = &listings[i];
	snprintf(usage, sizeof(usage), "kiln %s %s", l->command, REMOTE_USAGE);
	if (cli_parse_options(argc, argv, opts, usage, 0) != 0)
		return cli_usage(usage, "'%s' takes no arguments", l->command);
	if (remote_connect(&ro, &cl, &err) < 0)
		return cli_fail(err);
	api_args_init(&a, l->action);
	if (remote_call(cl, &a, &doc) == 0) {
		table_init(&t, l->cols, l->ncols);
		for (size_t i = 0; (item = xml_item(doc, l->set, i)); i++)
			l->row(&t, item);
		table_print(&t, ro.format);
		table_release(&t);
		xml_free(doc);
		r = 0;
	}
	api_args_release(&a);
	api_client_close(cl);
	return r;
}
