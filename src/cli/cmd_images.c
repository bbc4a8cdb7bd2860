/* kiln bake, copy-image, share: the image workflow through the API, with progress. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "remote.h"
#include "util/cleanup.h"
#include "util/banned.h"

#define USAGE_BAKE                                                                                 \
	"kiln bake INSTANCE --name NAME [--description TEXT] [--no-reboot] "                       \
	"[--no-wait] " REMOTE_USAGE
#define USAGE_COPY   "kiln copy-image IMAGE --to REGION [--name NAME] [--no-wait] " REMOTE_USAGE
#define USAGE_SHARE  "kiln share IMAGE ACCOUNT|all [--remove] " REMOTE_USAGE
#define WAIT_SECONDS 1800

static const struct table_col cols[] = {
    {"ID", "id", TABLE_STRING},
    {"NAME", "name", TABLE_STRING},
    {"STATE", "state", TABLE_STRING},
    {"REGION", "region", TABLE_STRING},
    {"SNAPSHOTS", "snapshots", TABLE_STRING},
};

/* The image's state, and the mean progress of its snapshots (percent). */
static int image_progress(struct api_client *cl, const char *ami, char *state, size_t size,
                          char *name, size_t nsize, char *snaps, size_t ssize, int *pct)
{
	const struct xml_node *im, *m, *s;
	struct xml_node *doc = NULL, *sdoc = NULL;
	struct api_args a;
	size_t n = 0;
	int sum = 0, r = -1;

	api_args_init(&a, "DescribeImages");
	api_args_add(&a, "ImageId.1", ami);
	if (remote_call(cl, &a, &doc) < 0)
		goto out;
	im = xml_item(doc, "imagesSet", 0);
	snprintf(state, size, "%s", xml_text(im, "imageState", "?"));
	snprintf(name, nsize, "%s", xml_text(im, "name", ""));
	if (!strcmp(state, "failed"))
		fprintf(stderr, "kiln: %s failed: %s\n", ami,
		        xml_text(im, "stateReason/message", "no reason given"));
	api_args_release(&a);
	api_args_init(&a, "DescribeSnapshots");
	snaps[0] = '\0';
	for (size_t i = 0; (m = xml_item(im, "blockDeviceMapping", i)); i++) {
		char pname[32];
		snprintf(pname, sizeof(pname), "SnapshotId.%zu", i + 1);
		api_args_add(&a, pname, xml_text(m, "ebs/snapshotId", ""));
		snprintf(snaps + strlen(snaps), ssize - strlen(snaps), "%s%s", i ? " " : "",
		         xml_text(m, "ebs/snapshotId", ""));
	}
	if (remote_call(cl, &a, &sdoc) < 0)
		goto out;
	for (size_t i = 0; (s = xml_item(sdoc, "snapshotSet", i)); i++, n++)
		sum += (int)strtol(xml_text(s, "progress", "0"), NULL, 10);
	*pct = n ? sum / (int)n : 0;
	r = 0;
out:
	api_args_release(&a);
	xml_free(doc);
	xml_free(sdoc);
	return r;
}

/* Wait for the image with a progress bar (on a terminal); print it as a table. */
static int wait_image(struct api_client *cl, const char *ami, const char *region, const char *label,
                      bool wait, enum remote_format format)
{
	struct timespec pause = {0, 250 * 1000 * 1000};
	time_t until = time(NULL) + WAIT_SECONDS;
	struct progress_bar bar;
	char state[32], name[160], snaps[512];
	struct table t;
	int pct = 0;

	progress_bar_init(&bar, label, NULL);
	for (;;) {
		if (image_progress(cl, ami, state, sizeof(state), name, sizeof(name), snaps,
		                   sizeof(snaps), &pct) < 0)
			return 1;
		if (!wait || strcmp(state, "pending") || time(NULL) > until)
			break;
		progress_bar_update(&bar, (uint64_t)pct, 100);
		nanosleep(&pause, NULL);
	}
	if (wait && !strcmp(state, "available"))
		progress_bar_update(&bar, 100, 100);
	progress_bar_finish(&bar);
	table_init(&t, cols, ARRAY_SIZE(cols));
	table_add(&t, ami, name, state, region, snaps);
	table_print(&t, format);
	table_release(&t);
	return !strcmp(state, "failed") || (wait && strcmp(state, "available")) ? 1 : 0;
}

static int one_call(struct api_client *cl, struct api_args *a, const char *element, char *out,
                    size_t size)
{
	struct xml_node *doc;

	if (remote_call(cl, a, &doc) < 0)
		return -1;
	snprintf(out, size, "%s", xml_text(doc, element, ""));
	xml_free(doc);
	return 0;
}

int cmd_bake(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct remote_opts ro = {0};
	const char *name = NULL, *desc = NULL;
	bool no_reboot = false, no_wait = false;
	const struct cli_option opts[] = {
	    OPT_STRING("name", "NAME", &name, "the image's name"),
	    OPT_STRING("description", "TEXT", &desc, "the image's description"),
	    OPT_BOOL("no-reboot", &no_reboot, "do not stop the instance for a consistent image"),
	    OPT_BOOL("no-wait", &no_wait, "do not wait until the image is available"),
	    OPT_REMOTE(&ro),
	    OPT_EXAMPLE("kiln bake web --name web-2026-12-06"),
	    OPT_EXAMPLE("kiln bake i-0123abcd --name base --no-reboot --no-wait"),
	    OPT_END(),
	};
	struct api_client *cl = NULL;
	struct api_args a;
	char ami[64], id[64];
	int r = 1;

	if (cli_parse_options(argc, argv, opts, USAGE_BAKE, 0) != 1 || !name)
		return cli_usage(USAGE_BAKE, "'bake' takes one instance and --name");
	if (remote_connect(&ro, &cl, &err) < 0)
		return cli_fail(err);
	if (remote_resolve(cl, REMOTE_INSTANCE, argv[1], id, sizeof(id)) < 0) {
		api_client_close(cl);
		return 1;
	}
	api_args_init(&a, "CreateImage");
	api_args_add(&a, "InstanceId", id);
	api_args_add(&a, "Name", name);
	if (desc)
		api_args_add(&a, "Description", desc);
	if (no_reboot)
		api_args_add(&a, "NoReboot", "true");
	if (one_call(cl, &a, "imageId", ami, sizeof(ami)) == 0)
		r = wait_image(cl, ami, api_client_region(cl), "baking", !no_wait, ro.format);
	api_args_release(&a);
	api_client_close(cl);
	return r;
}

int cmd_copy_image(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct remote_opts ro = {0}, dest;
	const char *to = NULL, *name = NULL;
	bool no_wait = false;
	const struct cli_option opts[] = {
	    OPT_STRING("to", "REGION", &to, "the region to copy to"),
	    OPT_STRING("name", "NAME", &name, "the copy's name (else the source's)"),
	    OPT_BOOL("no-wait", &no_wait, "do not wait until the copy is available"),
	    OPT_REMOTE(&ro),
	    OPT_EXAMPLE("kiln copy-image web-2026-12-06 --to eu-west-1"),
	    OPT_EXAMPLE("kiln copy-image ami-0123abcd --to eu-west-1 --name web-eu --no-wait"),
	    OPT_END(),
	};
	struct api_client *src = NULL, *dst = NULL;
	struct xml_node *doc = NULL;
	struct api_args a;
	char ami[64], id[64];
	int r = 1;

	if (cli_parse_options(argc, argv, opts, USAGE_COPY, 0) != 1 || !to)
		return cli_usage(USAGE_COPY, "'copy-image' takes one image and --to REGION");
	dest = ro;
	dest.region = to;
	if (remote_connect(&ro, &src, &err) < 0 || remote_connect(&dest, &dst, &err) < 0) {
		api_client_close(src);
		return cli_fail(err);
	}
	if (remote_resolve(src, REMOTE_IMAGE, argv[1], id, sizeof(id)) < 0) {
		api_client_close(src);
		api_client_close(dst);
		return 1;
	}
	/* The name stays unless another is given: the source image's. */
	api_args_init(&a, "DescribeImages");
	api_args_add(&a, "ImageId.1", id);
	if (remote_call(src, &a, &doc) == 0) {
		char src_name[160];
		snprintf(src_name, sizeof(src_name), "%s",
		         xml_text(xml_item(doc, "imagesSet", 0), "name", ""));
		api_args_release(&a);
		api_args_init(&a, "CopyImage");
		api_args_add(&a, "SourceRegion", api_client_region(src));
		api_args_add(&a, "SourceImageId", id);
		api_args_add(&a, "Name", name ? name : src_name);
		if (one_call(dst, &a, "imageId", ami, sizeof(ami)) == 0)
			r = wait_image(dst, ami, to, "copying", !no_wait, ro.format);
	}
	xml_free(doc);
	api_args_release(&a);
	api_client_close(src);
	api_client_close(dst);
	return r;
}

int cmd_share(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct remote_opts ro = {0};
	bool remove = false;
	const struct cli_option opts[] = {
	    OPT_BOOL("remove", &remove, "take the permission away"),
	    OPT_REMOTE(&ro),
	    OPT_EXAMPLE("kiln share web-2026-12-06 222233334444"),
	    OPT_EXAMPLE("kiln share web-2026-12-06 all --remove"),
	    OPT_END(),
	};
	struct api_client *cl = NULL;
	struct xml_node *doc;
	struct api_args a;
	char id[64];
	int r = 1;

	if (cli_parse_options(argc, argv, opts, USAGE_SHARE, 0) != 2)
		return cli_usage(USAGE_SHARE, "'share' takes an image and an account id (or all)");
	if (remote_connect(&ro, &cl, &err) < 0)
		return cli_fail(err);
	if (remote_resolve(cl, REMOTE_IMAGE, argv[1], id, sizeof(id)) < 0) {
		api_client_close(cl);
		return 1;
	}
	api_args_init(&a, "ModifyImageAttribute");
	api_args_add(&a, "ImageId", id);
	api_args_add(
	    &a, remove ? "LaunchPermission.Remove.1.Group" : "LaunchPermission.Add.1.Group", "all");
	if (strcmp(argv[2], "all")) {
		api_args_release(&a);
		api_args_init(&a, "ModifyImageAttribute");
		api_args_add(&a, "ImageId", id);
		api_args_add(&a,
		             remove ? "LaunchPermission.Remove.1.UserId"
		                    : "LaunchPermission.Add.1.UserId",
		             argv[2]);
	}
	if (remote_call(cl, &a, &doc) == 0) {
		xml_free(doc);
		if (ro.format == REMOTE_TABLE)
			printf("%s: %s %s\n", id, remove ? "no longer shared with" : "shared with",
			       strcmp(argv[2], "all") ? argv[2] : "everyone (public)");
		r = 0;
	}
	api_args_release(&a);
	api_client_close(cl);
	return r;
}
