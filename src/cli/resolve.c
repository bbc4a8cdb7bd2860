/* What people type for an image, instance, volume or snapshot, made an id: ids pass as they
 * are; a name is looked up through the API (an image's name, else a Name tag) and must name
 * exactly one thing the caller can see. */
#include <stdio.h>
#include <string.h>

#include "remote.h"
#include "util/cleanup.h"
#include "util/buf.h"
#include "util/banned.h"

static const struct kind {
	const char *prefix;  /* of its ids */
	const char *noun;    /* in messages */
	const char *action;  /* its Describe */
	const char *set;     /* the list in the answer */
	const char *id;      /* an item's id element */
	const char *listing; /* the kiln command that lists them */
} kinds[] = {
    [REMOTE_IMAGE] = {"ami-", "image", "DescribeImages", "imagesSet", "imageId", "kiln images"},
    [REMOTE_INSTANCE] = {"i-", "instance", "DescribeInstances", "reservationSet", "instanceId",
                         "kiln ls"},
    [REMOTE_VOLUME] = {"vol-", "volume", "DescribeVolumes", "volumeSet", "volumeId",
                       "kiln volumes"},
    [REMOTE_SNAPSHOT] = {"snap-", "snapshot", "DescribeSnapshots", "snapshotSet", "snapshotId",
                         "kiln snapshots"},
};

/* The ids of the answer's items, one per line in ids; how many. */
static size_t collect(const struct kind *k, const struct xml_node *doc, struct buf *ids)
{
	const struct xml_node *item, *inst;
	size_t n = 0;

	for (size_t i = 0; (item = xml_item(doc, k->set, i)); i++) {
		if (k == &kinds[REMOTE_INSTANCE]) { /* reservations hold the instances */
			for (size_t j = 0; (inst = xml_item(item, "instancesSet", j)); j++, n++)
				buf_addf(ids, "%s%s", n ? ", " : "", xml_text(inst, k->id, ""));
			continue;
		}
		buf_addf(ids, "%s%s", n++ ? ", " : "", xml_text(item, k->id, ""));
	}
	return n;
}

/* One Describe with a filter on name (and the owner self when mine); the ids found. */
static int lookup(struct api_client *c, const struct kind *k, const char *filter, const char *arg,
                  bool mine, struct buf *ids, size_t *n)
{
	struct xml_node *doc;
	struct api_args a;

	api_args_init(&a, k->action);
	if (mine)
		api_args_add(&a, k == &kinds[REMOTE_IMAGE] ? "Owner.1" : "OwnerId.1", "self");
	api_args_add(&a, "Filter.1.Name", filter);
	api_args_add(&a, "Filter.1.Value.1", arg);
	if (k == &kinds[REMOTE_INSTANCE]) { /* a terminated instance's name is free again */
		static const char *const live[] = {"pending", "running", "stopping", "stopped",
		                                   "shutting-down"};
		api_args_add(&a, "Filter.2.Name", "instance-state-name");
		for (size_t i = 0; i < ARRAY_SIZE(live); i++) {
			char name[32];
			snprintf(name, sizeof(name), "Filter.2.Value.%zu", i + 1);
			api_args_add(&a, name, live[i]);
		}
	}
	if (remote_call(c, &a, &doc) < 0) {
		api_args_release(&a);
		return -1;
	}
	api_args_release(&a);
	buf_reset(ids);
	*n = collect(k, doc, ids);
	xml_free(doc);
	return 0;
}

/* "vol-0123abcd" where an instance is wanted: an id of another kind, not a name; the API
 * says what is wrong with it. */
static bool id_shaped(const char *arg)
{
	const char *dash = strchr(arg, '-');
	size_t hex;

	if (!dash || dash == arg ||
	    strspn(arg, "abcdefghijklmnopqrstuvwxyz") != (size_t)(dash - arg))
		return false;
	hex = strspn(dash + 1, "0123456789abcdef");
	return hex >= 8 && hex <= 17 && !dash[1 + hex];
}

int remote_resolve(struct api_client *c, enum remote_kind kind, const char *arg, char *out,
                   size_t size)
{
	const struct kind *k = &kinds[kind];
	_cleanup_buf_ struct buf ids = BUF_INIT;
	size_t n = 0;

	if (!strncmp(arg, k->prefix, strlen(k->prefix)) || id_shaped(arg)) {
		snprintf(out, size, "%s", arg);
		return 0;
	}
	/* An image: the caller's own of that name, else anyone's the caller may launch; then
	 * for every kind the Name tag. */
	if (kind == REMOTE_IMAGE && (lookup(c, k, "name", arg, true, &ids, &n) < 0 ||
	                             (n == 0 && lookup(c, k, "name", arg, false, &ids, &n) < 0)))
		return -1;
	if (n == 0 && lookup(c, k, "tag:Name", arg, kind == REMOTE_SNAPSHOT, &ids, &n) < 0)
		return -1;
	if (n == 1) {
		snprintf(out, size, "%s", (ids.data ? ids.data : ""));
		return 0;
	}
	if (n == 0)
		fprintf(stderr, "kiln: no %s named '%s' (see %s)\n", k->noun, arg, k->listing);
	else
		fprintf(stderr, "kiln: '%s' names %zu %ss: %s; give an id\n", arg, n, k->noun,
		        (ids.data ? ids.data : ""));
	return -1;
}
