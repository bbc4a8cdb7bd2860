/* kiln store: operate a block store directly (operators, benchmarks, tests). A store is a
 * directory or an S3 URL (s3://bucket/prefix?endpoint=http://host:port). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "options.h"
#include "store/store.h"
#include "util/cleanup.h"
#include "util/banned.h"

#define USAGE_STORE                                                                                \
	"kiln store init STORE\n"                                                                  \
	"       kiln store snapshot STORE VOLUME_FILE [--parent SNAP_ID] [--shadow FILE]\n"        \
	"       kiln store restore STORE SNAP_ID OUT_FILE\n"                                       \
	"       kiln store copy STORE SNAP_ID DEST_STORE [--as NEW_SNAP_ID]\n"                     \
	"       kiln store delete STORE SNAP_ID\n"                                                 \
	"       kiln store ls STORE [--json]\n"                                                    \
	"       kiln store gc STORE\n"                                                             \
	"       kiln store verify STORE\n"                                                         \
	"       kiln store stats STORE [--json]\n"                                                 \
	"STORE is a directory or s3://BUCKET/PREFIX?endpoint=http://HOST:PORT (credentials from\n" \
	"AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials)"

/* What a subcommand was given: its arguments (DIR first) and options. */
struct store_args {
	char **pos;
	const char *parent;
	const char *shadow;
	const char *as;
	bool json;
};

static int open_store(const char *dir, bool exclusive, struct store **s)
{
	_cleanup_kerr_ struct kerr *err = NULL;

	if (store_open(dir, exclusive, s, &err) < 0)
		return cli_fail(err);
	return 0;
}

static void format_time(uint64_t ns, char out[32])
{
	time_t t = (time_t)(ns / 1000000000u);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int do_init(const struct store_args *a)
{
	_cleanup_kerr_ struct kerr *err = NULL;

	if (store_init(a->pos[0], &err) < 0)
		return cli_fail(err);
	return 0;
}

static int do_snapshot(const struct store_args *a)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct store_snapshot_result res;
	struct progress_bar bar;
	struct store_progress prog = {progress_bar_update, &bar};
	struct store_snapshot_opts o = {0};
	struct store *s;
	int r;

	if (a->shadow && !a->parent)
		return cli_usage(USAGE_STORE, "--shadow needs --parent");
	if ((r = open_store(a->pos[0], false, &s)))
		return r;
	progress_bar_init(&bar, "snapshot", "chunks");
	o.parent = a->parent;
	o.shadow = a->shadow;
	o.progress = &prog;
	r = store_snapshot(s, a->pos[1], &o, &res, &err);
	progress_bar_finish(&bar);
	store_close(s);
	if (r < 0)
		return cli_fail(err);
	printf("%s\n", res.id);
	return 0;
}

static int do_restore(const struct store_args *a)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct progress_bar bar;
	struct store_progress prog = {progress_bar_update, &bar};
	struct store *s;
	int r;

	if ((r = open_store(a->pos[0], false, &s)))
		return r;
	progress_bar_init(&bar, "restore", "chunks");
	r = store_restore(s, a->pos[1], a->pos[2], &prog, &err);
	progress_bar_finish(&bar);
	store_close(s);
	return r < 0 ? cli_fail(err) : 0;
}

static int do_copy(const struct store_args *a)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct progress_bar bar;
	struct store_progress prog = {progress_bar_update, &bar};
	struct store_copy_result res;
	struct store *src, *dst;
	char id[ID_MAX];
	int r;

	if (a->as)
		snprintf(id, sizeof(id), "%s", a->as);
	else
		snprintf(id, sizeof(id), "%s", a->pos[1]);
	if ((r = open_store(a->pos[0], false, &src)))
		return r;
	if ((r = open_store(a->pos[2], false, &dst))) {
		store_close(src);
		return r;
	}
	progress_bar_init(&bar, "copy", "chunks");
	r = store_copy(src, dst, a->pos[1], id, &prog, &res, &err);
	progress_bar_finish(&bar);
	store_close(src);
	store_close(dst);
	if (r < 0)
		return cli_fail(err);
	printf("%s: sent %llu of %llu chunks, %llu bytes\n", id,
	       (unsigned long long)res.chunks_sent, (unsigned long long)res.chunks,
	       (unsigned long long)res.bytes_sent);
	return 0;
}

static int do_delete(const struct store_args *a)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct store *s;
	int r;

	if ((r = open_store(a->pos[0], false, &s)))
		return r;
	r = store_delete(s, a->pos[1], &err);
	store_close(s);
	return r < 0 ? cli_fail(err) : 0;
}

static int do_gc(const struct store_args *a)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct store_gc_result res;
	struct store *s;
	int r;

	if ((r = open_store(a->pos[0], true, &s)))
		return r;
	r = store_gc(s, &res, &err);
	store_close(s);
	if (r < 0)
		return cli_fail(err);
	printf("removed %llu packs, rewrote %llu, freed %llu bytes, cleared %llu leftovers\n",
	       (unsigned long long)res.packs_removed, (unsigned long long)res.packs_rewritten,
	       (unsigned long long)res.bytes_freed, (unsigned long long)res.leftovers_removed);
	return 0;
}

static void print_line(void *ctx, const char *line)
{
	(void)ctx;
	printf("%s\n", line);
	fflush(stdout);
}

static int do_verify(const struct store_args *a)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct store_verify_result res;
	struct store *s;
	int r;

	if ((r = open_store(a->pos[0], false, &s)))
		return r;
	r = store_verify(s, print_line, NULL, &res, &err);
	store_close(s);
	if (r < 0)
		return cli_fail(err);
	printf("ok: %llu chunks, %llu bytes checked\n", (unsigned long long)res.chunks_checked,
	       (unsigned long long)res.bytes_checked);
	return 0;
}

static double ratio(uint64_t a, uint64_t b)
{
	return b ? (double)a / (double)b : 0.0;
}

static void print_snap_json(const struct store_snap_info *i, int full)
{
	char when[32];

	format_time(i->created_ns, when);
	printf("{\"id\": \"%s\", \"parent\": %s%s%s, \"created\": \"%s\", \"volume_size\": %llu, "
	       "\"chunks\": %llu, \"data_bytes\": %llu",
	       i->id, i->parent[0] ? "\"" : "", i->parent[0] ? i->parent : "null",
	       i->parent[0] ? "\"" : "", when, (unsigned long long)i->volume_size,
	       (unsigned long long)i->chunks, (unsigned long long)i->data_bytes);
	if (full)
		printf(", \"stored_bytes\": %llu, \"new_bytes\": %llu",
		       (unsigned long long)i->stored_bytes, (unsigned long long)i->new_bytes);
	printf("}");
}

static int do_ls(const struct store_args *a)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ struct store_snap_info *v = NULL;
	struct store *s;
	size_t n;
	int r;

	if ((r = open_store(a->pos[0], false, &s)))
		return r;
	r = store_list(s, &v, &n, &err);
	store_close(s);
	if (r < 0)
		return cli_fail(err);
	if (a->json) {
		printf("[");
		for (size_t i = 0; i < n; i++) {
			printf(i ? ",\n " : "");
			print_snap_json(&v[i], 0);
		}
		printf("]\n");
		return 0;
	}
	printf("%-22s %-22s %-20s %12s %12s\n", "SNAPSHOT", "PARENT", "CREATED", "VOLUME", "DATA");
	for (size_t i = 0; i < n; i++) {
		char when[32];
		format_time(v[i].created_ns, when);
		printf("%-22s %-22s %-20s %12llu %12llu\n", v[i].id,
		       v[i].parent[0] ? v[i].parent : "-", when,
		       (unsigned long long)v[i].volume_size, (unsigned long long)v[i].data_bytes);
	}
	return 0;
}

static int do_stats(const struct store_args *a)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct store_stats st;
	struct store *s;
	int r;

	if ((r = open_store(a->pos[0], false, &s)))
		return r;
	r = store_stats(s, &st, &err);
	store_close(s);
	if (r < 0)
		return cli_fail(err);
	if (a->json) {
		printf("{\"total\": {\"snapshots\": %llu, \"volume_bytes\": %llu, "
		       "\"logical_bytes\": %llu, "
		       "\"unique_chunks\": %llu, \"unique_bytes\": %llu, \"stored_bytes\": %llu, "
		       "\"pack_bytes\": %llu, \"garbage_bytes\": %llu, \"dedup_ratio\": %.3f, "
		       "\"compression_ratio\": %.3f},\n \"snapshots\": [",
		       (unsigned long long)st.snapshots, (unsigned long long)st.volume_bytes,
		       (unsigned long long)st.logical_bytes, (unsigned long long)st.unique_chunks,
		       (unsigned long long)st.unique_bytes, (unsigned long long)st.stored_bytes,
		       (unsigned long long)st.pack_bytes, (unsigned long long)st.garbage_bytes,
		       ratio(st.logical_bytes, st.unique_bytes),
		       ratio(st.unique_bytes, st.stored_bytes));
		for (size_t i = 0; i < st.nsnaps; i++) {
			printf(i ? ",\n  " : "\n  ");
			print_snap_json(&st.snaps[i], 1);
		}
		printf("]}\n");
	} else {
		printf("%-22s %12s %12s %12s %12s\n", "SNAPSHOT", "VOLUME", "DATA", "STORED",
		       "NEW");
		for (size_t i = 0; i < st.nsnaps; i++)
			printf("%-22s %12llu %12llu %12llu %12llu\n", st.snaps[i].id,
			       (unsigned long long)st.snaps[i].volume_size,
			       (unsigned long long)st.snaps[i].data_bytes,
			       (unsigned long long)st.snaps[i].stored_bytes,
			       (unsigned long long)st.snaps[i].new_bytes);
		printf("\nsnapshots %llu, logical %llu bytes, unique %llu chunks (%llu bytes), "
		       "stored %llu bytes\n"
		       "dedup %.2fx, compression %.2fx, packs %llu bytes (%llu garbage)\n",
		       (unsigned long long)st.snapshots, (unsigned long long)st.logical_bytes,
		       (unsigned long long)st.unique_chunks, (unsigned long long)st.unique_bytes,
		       (unsigned long long)st.stored_bytes,
		       ratio(st.logical_bytes, st.unique_bytes),
		       ratio(st.unique_bytes, st.stored_bytes), (unsigned long long)st.pack_bytes,
		       (unsigned long long)st.garbage_bytes);
	}
	store_stats_release(&st);
	return 0;
}

int cmd_store(int argc, char **argv)
{
	struct store_args a = {0};
	const struct cli_option snapshot_opts[] = {
	    OPT_STRING("parent", "SNAP_ID", &a.parent, "store only what changed since SNAP_ID"),
	    OPT_STRING("shadow", "FILE", &a.shadow,
	               "a reflink copy of the volume taken at --parent: read only moved extents"),
	    OPT_END(),
	};
	const struct cli_option copy_opts[] = {
	    OPT_STRING("as", "NEW_SNAP_ID", &a.as, "the copy's id (default: the same id)"),
	    OPT_END(),
	};
	const struct cli_option json_opts[] = {
	    OPT_BOOL("json", &a.json, "print JSON"),
	    OPT_END(),
	};
	const struct {
		const char *name;
		int (*fn)(const struct store_args *a);
		int nargs;
		const struct cli_option *opts;
	} subcommands[] = {
	    {"init", do_init, 1, cli_no_options},       {"snapshot", do_snapshot, 2, snapshot_opts},
	    {"restore", do_restore, 3, cli_no_options}, {"copy", do_copy, 3, copy_opts},
	    {"delete", do_delete, 2, cli_no_options},   {"ls", do_ls, 1, json_opts},
	    {"gc", do_gc, 1, cli_no_options},           {"verify", do_verify, 1, cli_no_options},
	    {"stats", do_stats, 1, json_opts},
	};

	if (argc < 2)
		return cli_usage(USAGE_STORE, "'store' needs a subcommand");
	for (size_t i = 0; i < ARRAY_SIZE(subcommands); i++) {
		int want = subcommands[i].nargs;
		if (strcmp(argv[1], subcommands[i].name))
			continue;
		if (cli_parse_options(argc - 1, argv + 1, subcommands[i].opts, USAGE_STORE, 0) !=
		    want)
			return cli_usage(USAGE_STORE, "'store %s' takes %d argument%s", argv[1],
			                 want, want == 1 ? "" : "s");
		a.pos = argv + 2;
		return subcommands[i].fn(&a);
	}
	return cli_usage(USAGE_STORE, "unknown store subcommand '%s'", argv[1]);
}
