/* kiln snapshot: a snapshot of a volume through the API, with its progress on a terminal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "remote.h"
#include "util/cleanup.h"
#include "util/banned.h"

#define USAGE_SNAPSHOT "kiln snapshot VOLUME [--description TEXT] [--no-wait] " REMOTE_USAGE
#define WAIT_SECONDS   1800

static const struct table_col cols[] = {
    {"ID", "id", TABLE_STRING},
    {"STATE", "state", TABLE_STRING},
    {"PROGRESS", "progress", TABLE_STRING},
    {"VOLUME", "volume", TABLE_STRING},
    {"GIB", "size_gib", TABLE_NUMBER},
};

/* The snapshot's row; -1 when the call failed (printed). */
static int describe(struct api_client *cl, const char *id, char *state, size_t size, int *pct,
                    struct table *t)
{
	const struct xml_node *s;
	struct xml_node *doc;
	struct api_args a;

	api_args_init(&a, "DescribeSnapshots");
	api_args_add(&a, "SnapshotId.1", id);
	if (remote_call(cl, &a, &doc) < 0) {
		api_args_release(&a);
		return -1;
	}
	api_args_release(&a);
	s = xml_item(doc, "snapshotSet", 0);
	snprintf(state, size, "%s", xml_text(s, "status", "?"));
	*pct = (int)strtol(xml_text(s, "progress", "0"), NULL, 10);
	if (!strcmp(state, "error"))
		fprintf(stderr, "kiln: %s failed: %s\n", id,
		        xml_text(s, "stateMessage", "no reason given"));
	table_release(t);
	table_add(t, id, state, xml_text(s, "progress", ""), xml_text(s, "volumeId", ""),
	          xml_text(s, "volumeSize", ""));
	xml_free(doc);
	return 0;
}

int cmd_snapshot(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct remote_opts ro = {0};
	const char *desc = NULL;
	bool no_wait = false;
	const struct cli_option opts[] = {
	    OPT_STRING("description", "TEXT", &desc, "the snapshot's description"),
	    OPT_BOOL("no-wait", &no_wait, "do not wait until it is completed"),
	    OPT_REMOTE(&ro),
	    OPT_EXAMPLE("kiln snapshot data-1 --description \"before the upgrade\""),
	    OPT_EXAMPLE("kiln snapshot vol-0123abcd --no-wait --output json"),
	    OPT_END(),
	};
	struct timespec pause = {0, 250 * 1000 * 1000};
	time_t until = time(NULL) + WAIT_SECONDS;
	struct api_client *cl = NULL;
	struct progress_bar bar;
	struct xml_node *doc;
	struct api_args a;
	struct table t;
	char vol[64], id[64], state[32] = "";
	int pct = 0, r = 1;

	if (cli_parse_options(argc, argv, opts, USAGE_SNAPSHOT, 0) != 1)
		return cli_usage(USAGE_SNAPSHOT, "'snapshot' takes one volume");
	if (remote_connect(&ro, &cl, &err) < 0)
		return cli_fail(err);
	table_init(&t, cols, ARRAY_SIZE(cols));
	if (remote_resolve(cl, REMOTE_VOLUME, argv[1], vol, sizeof(vol)) < 0)
		goto out;
	api_args_init(&a, "CreateSnapshot");
	api_args_add(&a, "VolumeId", vol);
	if (desc)
		api_args_add(&a, "Description", desc);
	if (remote_call(cl, &a, &doc) < 0) {
		api_args_release(&a);
		goto out;
	}
	api_args_release(&a);
	snprintf(id, sizeof(id), "%s", xml_text(doc, "snapshotId", ""));
	xml_free(doc);
	progress_bar_init(&bar, "snapshot", NULL);
	for (;;) {
		if (describe(cl, id, state, sizeof(state), &pct, &t) < 0)
			goto out;
		if (no_wait || strcmp(state, "pending") || time(NULL) > until)
			break;
		progress_bar_update(&bar, (uint64_t)pct, 100);
		nanosleep(&pause, NULL);
	}
	if (!strcmp(state, "completed"))
		progress_bar_update(&bar, 100, 100);
	progress_bar_finish(&bar);
	table_print(&t, ro.format);
	r = !strcmp(state, "completed") || (no_wait && !strcmp(state, "pending")) ? 0 : 1;
out:
	table_release(&t);
	api_client_close(cl);
	return r;
}
