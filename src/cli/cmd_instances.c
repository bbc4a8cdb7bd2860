/* kiln run, ls, start, stop, reboot, rm, console: instances through the API, for people. */
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "remote.h"
#include "api/exec.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define USAGE_RUN                                                                                  \
	"kiln run IMAGE [--type T] [--zone Z] [--count N] [--name NAME] [--user-data FILE] "       \
	"[--size GiB]\n"                                                                           \
	"                [--key NAME] [--no-wait] " REMOTE_USAGE
#define USAGE_LS      "kiln ls [--all] " REMOTE_USAGE
#define USAGE_CHANGE  "kiln start|stop|reboot|rm INSTANCE... [--wait] [--force] " REMOTE_USAGE
#define USAGE_CONSOLE "kiln console INSTANCE [--follow] " REMOTE_USAGE
#define USAGE_EXEC    "kiln exec INSTANCE [--] COMMAND [ARG...] " REMOTE_USAGE
#define WAIT_SECONDS  300

static const struct table_col cols[] = {
    {"ID", "id", TABLE_STRING},       {"NAME", "name", TABLE_STRING},
    {"STATE", "state", TABLE_STRING}, {"TYPE", "type", TABLE_STRING},
    {"ZONE", "zone", TABLE_STRING},   {"ADDRESS", "address", TABLE_STRING},
    {"IMAGE", "image", TABLE_STRING}, {"LAUNCHED", "launched", TABLE_STRING},
};

static const char *name_tag(const struct xml_node *inst)
{
	const struct xml_node *t;

	for (size_t i = 0; (t = xml_item(inst, "tagSet", i)); i++)
		if (!strcmp(xml_text(t, "key", ""), "Name"))
			return xml_text(t, "value", "");
	return "";
}

static void add_instance(struct table *t, const struct xml_node *inst)
{
	table_add(t, xml_text(inst, "instanceId", ""), name_tag(inst),
	          xml_text(inst, "instanceState/name", ""), xml_text(inst, "instanceType", ""),
	          xml_text(inst, "placement/availabilityZone", ""),
	          xml_text(inst, "privateIpAddress", ""), xml_text(inst, "imageId", ""),
	          xml_text(inst, "launchTime", ""));
}

/* Each instance of a DescribeInstances or RunInstances answer. */
static void each_instance(const struct xml_node *doc,
                          void (*fn)(void *ctx, const struct xml_node *inst), void *ctx)
{
	const struct xml_node *res, *inst;

	if (xml_child(doc, "reservationSet")) {
		for (size_t r = 0; (res = xml_item(doc, "reservationSet", r)); r++)
			for (size_t i = 0; (inst = xml_item(res, "instancesSet", i)); i++)
				fn(ctx, inst);
	} else {
		for (size_t i = 0; (inst = xml_item(doc, "instancesSet", i)); i++)
			fn(ctx, inst);
	}
}

struct collect {
	struct table *t;
	bool all;
	char **ids;
	size_t n;
	const char *want; /* for waits: the state every one must reach */
	size_t reached;
	bool failed;
};

static void collect_one(void *ctx, const struct xml_node *inst)
{
	struct collect *c = ctx;
	const char *state = xml_text(inst, "instanceState/name", "");

	if (c->want) {
		c->reached += !strcmp(state, c->want);
		c->failed =
		    c->failed || (strcmp(c->want, "terminated") && !strcmp(state, "terminated"));
	}
	if (c->ids) {
		c->ids = xreallocarray(c->ids, c->n + 1, sizeof(*c->ids));
		c->ids[c->n++] = xstrdup(xml_text(inst, "instanceId", ""));
	}
	if (c->t && (c->all || strcmp(state, "terminated")))
		add_instance(c->t, inst);
}

/* Poll until every instance is in state want; prints the table at the end. */
static int wait_for(struct api_client *cl, char **ids, size_t n, const char *want, struct table *t)
{
	struct timespec pause = {0, 200 * 1000 * 1000};
	time_t until = time(NULL) + WAIT_SECONDS;
	bool tty = isatty(STDERR_FILENO);

	for (;;) {
		struct collect c = {.want = want, .all = true};
		struct xml_node *doc;
		struct api_args a;

		api_args_init(&a, "DescribeInstances");
		api_args_list(&a, "InstanceId", ids, n);
		if (remote_call(cl, &a, &doc) < 0) {
			api_args_release(&a);
			return -1;
		}
		api_args_release(&a);
		c.t = t;
		if (t)
			table_release(t);
		each_instance(doc, collect_one, &c);
		xml_free(doc);
		if (c.reached == n || c.failed || time(NULL) > until) {
			if (tty)
				fputs("\r\033[K", stderr);
			if (c.reached == n)
				return 0;
			fprintf(stderr, "kiln: %s\n",
			        c.failed ? "an instance ended terminated (see kiln ls --all and "
			                   "kiln console)"
			                 : "gave up waiting");
			return -1;
		}
		if (tty)
			fprintf(stderr, "\rwaiting: %zu of %zu %s", c.reached, n, want);
		nanosleep(&pause, NULL);
	}
}

int cmd_run(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct remote_opts ro = {0};
	const char *type = "t2.micro", *zone = NULL, *count = "1", *name = NULL, *ud = NULL,
	           *size = NULL, *key = NULL;
	bool no_wait = false;
	const struct cli_option opts[] = {
	    OPT_STRING("type", "T", &type, "instance type (t2.micro)"),
	    OPT_STRING("zone", "Z", &zone, "availability zone"),
	    OPT_STRING("count", "N", &count, "how many instances (1)"),
	    OPT_STRING("name", "NAME", &name, "their Name tag"),
	    OPT_STRING("user-data", "FILE", &ud, "user data (at most 16 KiB)"),
	    OPT_STRING("size", "GiB", &size, "root volume size"),
	    OPT_STRING("key", "NAME", &key, "key pair whose public key to install"),
	    OPT_BOOL("no-wait", &no_wait, "do not wait until they run"),
	    OPT_REMOTE(&ro),
	    OPT_EXAMPLE("kiln run kiln-debian-12 --name web --key mykey --user-data setup.sh"),
	    OPT_EXAMPLE(
	        "kiln run kiln-busybox --count 5 --type t2.nano --zone us-east-1b --output json"),
	    OPT_END(),
	};
	struct api_client *cl = NULL;
	struct collect c = {0};
	struct table t;
	struct xml_node *doc = NULL;
	struct api_args a;
	char image[64];
	int r = 1;

	if (cli_parse_options(argc, argv, opts, USAGE_RUN, 0) != 1)
		return cli_usage(USAGE_RUN, "'run' takes one image (an id or a name)");
	if (remote_connect(&ro, &cl, &err) < 0)
		return cli_fail(err);
	if (remote_resolve(cl, REMOTE_IMAGE, argv[1], image, sizeof(image)) < 0)
		goto out;
	api_args_init(&a, "RunInstances");
	api_args_add(&a, "ImageId", image);
	api_args_add(&a, "InstanceType", type);
	api_args_add(&a, "MinCount", count);
	api_args_add(&a, "MaxCount", count);
	if (zone)
		api_args_add(&a, "Placement.AvailabilityZone", zone);
	if (key)
		api_args_add(&a, "KeyName", key);
	if (size)
		api_args_add(&a, "BlockDeviceMapping.1.Ebs.VolumeSize", size);
	if (name) {
		api_args_add(&a, "TagSpecification.1.ResourceType", "instance");
		api_args_add(&a, "TagSpecification.1.Tag.1.Key", "Name");
		api_args_add(&a, "TagSpecification.1.Tag.1.Value", name);
	}
	if (ud) {
		_cleanup_free_ uint8_t *data = NULL;
		_cleanup_free_ char *b64 = NULL;
		size_t len;
		if (fs_read_file(AT_FDCWD, ud, 16 << 10, &data, &len, &err) < 0) {
			api_args_release(&a);
			cli_fail(err);
			goto out;
		}
		b64 = xmalloc((len + 2) / 3 * 4 + 1);
		EVP_EncodeBlock((unsigned char *)b64, data, (int)len);
		api_args_add(&a, "UserData", b64);
	}
	if (remote_call(cl, &a, &doc) < 0) {
		api_args_release(&a);
		goto out;
	}
	api_args_release(&a);
	table_init(&t, cols, ARRAY_SIZE(cols));
	c.t = &t;
	c.all = true;
	c.ids = xcalloc(1, sizeof(*c.ids));
	each_instance(doc, collect_one, &c);
	xml_free(doc);
	r = 0;
	if (!no_wait && wait_for(cl, c.ids, c.n, "running", &t) < 0)
		r = 1;
	table_print(&t, ro.format);
	table_release(&t);
	for (size_t i = 0; i < c.n; i++)
		free(c.ids[i]);
	free(c.ids);
out:
	api_client_close(cl);
	return r;
}

int cmd_ls(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct remote_opts ro = {0};
	struct collect c = {0};
	const struct cli_option opts[] = {
	    OPT_BOOL("all", &c.all, "terminated instances too"),
	    OPT_REMOTE(&ro),
	    OPT_EXAMPLE("kiln ls"),
	    OPT_EXAMPLE("kiln ls --all --region eu-west-1 --output text"),
	    OPT_END(),
	};
	struct api_client *cl = NULL;
	struct xml_node *doc;
	struct api_args a;
	struct table t;
	int r = 1;

	if (cli_parse_options(argc, argv, opts, USAGE_LS, 0) != 0)
		return cli_usage(USAGE_LS, "'ls' takes no arguments");
	if (remote_connect(&ro, &cl, &err) < 0)
		return cli_fail(err);
	api_args_init(&a, "DescribeInstances");
	if (remote_call(cl, &a, &doc) == 0) {
		table_init(&t, cols, ARRAY_SIZE(cols));
		c.t = &t;
		each_instance(doc, collect_one, &c);
		xml_free(doc);
		table_print(&t, ro.format);
		table_release(&t);
		r = 0;
	}
	api_args_release(&a);
	api_client_close(cl);
	return r;
}

/* start, stop, reboot, rm: argv[0] says which. */
int cmd_change(int argc, char **argv)
{
	static const struct {
		const char *command, *action, *set, *settles;
	} kinds[] = {
	    {"start", "StartInstances", "instancesSet", "running"},
	    {"stop", "StopInstances", "instancesSet", "stopped"},
	    {"reboot", "RebootInstances", NULL, "running"},
	    {"rm", "TerminateInstances", "instancesSet", "terminated"},
	};
	_cleanup_kerr_ struct kerr *err = NULL;
	struct remote_opts ro = {0};
	bool wait = false, force = false;
	const struct cli_option opts[] = {
	    OPT_BOOL("wait", &wait, "wait until they settle (running, stopped, terminated)"),
	    OPT_BOOL("force", &force, "stop: do not wait for a clean shutdown"),
	    OPT_REMOTE(&ro),
	    OPT_EXAMPLE("kiln stop web --wait"),
	    OPT_EXAMPLE("kiln rm web i-0123abcd"),
	    OPT_END(),
	};
	struct api_client *cl = NULL;
	struct xml_node *doc;
	struct api_args a;
	char **ids = NULL;
	size_t k = 0, n;
	int r = 1;

	while (k < ARRAY_SIZE(kinds) && strcmp(kinds[k].command, argv[0]))
		k++;
	n = (size_t)cli_parse_options(argc, argv, opts, USAGE_CHANGE, 0);
	if (n == 0)
		return cli_usage(USAGE_CHANGE, "'%s' needs at least one instance", argv[0]);
	if (remote_connect(&ro, &cl, &err) < 0)
		return cli_fail(err);
	ids = xcalloc(n, sizeof(*ids));
	for (size_t i = 0; i < n; i++) {
		char id[64];
		if (remote_resolve(cl, REMOTE_INSTANCE, argv[i + 1], id, sizeof(id)) < 0)
			goto out;
		ids[i] = xstrdup(id);
	}
	api_args_init(&a, kinds[k].action);
	api_args_list(&a, "InstanceId", ids, n);
	if (force && k == 1)
		api_args_add(&a, "Force", "true");
	if (remote_call(cl, &a, &doc) == 0) {
		const struct xml_node *ch;
		for (size_t i = 0; kinds[k].set && (ch = xml_item(doc, kinds[k].set, i)); i++)
			if (ro.format == REMOTE_TABLE)
				printf("%s: %s -> %s\n", xml_text(ch, "instanceId", ""),
				       xml_text(ch, "previousState/name", ""),
				       xml_text(ch, "currentState/name", ""));
		xml_free(doc);
		r = wait && wait_for(cl, ids, n, kinds[k].settles, NULL) < 0 ? 1 : 0;
		if (ro.format != REMOTE_TABLE) {
			static const struct table_col id_col[] = {{"ID", "id", TABLE_STRING}};
			struct table t;
			table_init(&t, id_col, 1);
			for (size_t i = 0; i < n; i++)
				table_add(&t, ids[i]);
			table_print(&t, ro.format);
			table_release(&t);
		}
	}
	api_args_release(&a);
out:
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	api_client_close(cl);
	return r;
}

/* The instance's console output now (decoded), in *out; -1 when the call failed (printed). */
static int console_now(struct api_client *cl, const char *id, unsigned char **out, size_t *n)
{
	struct xml_node *doc;
	struct api_args a;
	const char *b64;
	size_t len;
	int got;

	api_args_init(&a, "GetConsoleOutput");
	api_args_add(&a, "InstanceId", id);
	if (remote_call(cl, &a, &doc) < 0) {
		api_args_release(&a);
		return -1;
	}
	api_args_release(&a);
	b64 = xml_text(doc, "output", "");
	len = strlen(b64);
	*out = xmalloc(len / 4 * 3 + 3);
	got = EVP_DecodeBlock(*out, (const unsigned char *)b64, (int)len);
	while (got > 0 && len && b64[len - 1] == '=') { /* the padding is not output */
		got--;
		len--;
	}
	*n = got > 0 ? (size_t)got : 0;
	xml_free(doc);
	return 0;
}

/* Where what is new in cur starts, given what was printed before (prev): the console keeps
 * only its last MiB, so the old output may have lost its head; its tail is looked for. */
static size_t console_new_from(const unsigned char *prev, size_t plen, const unsigned char *cur,
                               size_t clen)
{
	size_t tail = plen < 256 ? plen : 256;

	if (!plen)
		return 0;
	if (clen >= plen && !memcmp(prev, cur, plen))
		return plen;
	for (size_t at = clen >= tail ? clen - tail + 1 : 0; at-- > 0;)
		if (!memcmp(cur + at, prev + plen - tail, tail))
			return at + tail;
	return 0;
}

static const char *instance_state_of(struct api_client *cl, const char *id, char *state,
                                     size_t size)
{
	struct xml_node *doc;
	struct api_args a;

	snprintf(state, size, "%s", "");
	api_args_init(&a, "DescribeInstances");
	api_args_add(&a, "InstanceId.1", id);
	if (remote_call(cl, &a, &doc) == 0) {
		const struct xml_node *res = xml_item(doc, "reservationSet", 0);
		snprintf(state, size, "%s",
		         xml_text(xml_item(res, "instancesSet", 0), "instanceState/name", ""));
		xml_free(doc);
	}
	api_args_release(&a);
	return state;
}

int cmd_console(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct remote_opts ro = {0};
	bool follow = false;
	const struct cli_option opts[] = {
	    OPT_BOOL("follow", &follow, "keep printing what comes, until the instance stops"),
	    OPT_REMOTE(&ro),
	    OPT_EXAMPLE("kiln console web"),
	    OPT_EXAMPLE("kiln console web --follow"),
	    OPT_END(),
	};
	struct timespec pause = {0, 500 * 1000 * 1000};
	struct api_client *cl = NULL;
	unsigned char *prev = NULL;
	size_t plen = 0;
	char id[64], state[32];
	int r = 1;

	if (cli_parse_options(argc, argv, opts, USAGE_CONSOLE, 0) != 1)
		return cli_usage(USAGE_CONSOLE, "'console' takes one instance");
	if (remote_connect(&ro, &cl, &err) < 0)
		return cli_fail(err);
	if (remote_resolve(cl, REMOTE_INSTANCE, argv[1], id, sizeof(id)) < 0)
		goto out;
	for (;;) {
		unsigned char *cur;
		size_t clen, from;
		bool ended;
		/* The state before the output: what an ended instance wrote is all there then. */
		ended = follow &&
		        (!strcmp(instance_state_of(cl, id, state, sizeof(state)), "stopped") ||
		         !strcmp(state, "terminated") || !*state);
		if (console_now(cl, id, &cur, &clen) < 0)
			goto out;
		from = console_new_from(prev, plen, cur, clen);
		fwrite(cur + from, 1, clen - from, stdout);
		fflush(stdout);
		free(prev);
		prev = cur;
		plen = clen;
		if (!follow || ended)
			break;
		nanosleep(&pause, NULL);
	}
	r = 0;
out:
	free(prev);
	api_client_close(cl);
	return r;
}

/* exec: a signed ExecInstance request, through the daemon's exec socket (with this process's
 * stdio) or through the API's listener (stdio relayed); the daemon checks the account and the
 * instance. */
int cmd_exec(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ char *sock = NULL;
	struct remote_opts ro = {0};
	const struct cli_option opts[] = {
	    OPT_REMOTE(&ro),
	    OPT_EXAMPLE("kiln exec web -- cat /etc/os-release"),
	    OPT_EXAMPLE("kiln exec web -- sh -c \"apt-get install -y nginx\""),
	    OPT_END(),
	};
	struct api_client *cl = NULL;
	char **cmd, id[64];
	int n, status = 1;

	/* Options stop at the instance id: what follows (after an optional "--") is the
	 * command's. */
	n = cli_parse_options(argc, argv, opts, USAGE_EXEC, CLI_STOP_AT_ARG);
	cmd = argv + (n >= 2 && !strcmp(argv[2], "--") ? 3 : 2);
	if (n < 2 || !*cmd)
		return cli_usage(USAGE_EXEC, "'exec' takes an instance and a command");
	if (remote_connect(&ro, &cl, &err) < 0)
		return cli_fail(err);
	if (remote_resolve(cl, REMOTE_INSTANCE, argv[1], id, sizeof(id)) < 0) {
		api_client_close(cl);
		return 1;
	}
	fflush(stdout);
	/* With a data directory named, its daemon's socket: the command gets this process's own
	 * descriptors (a terminal stays one). Else through the API, from wherever it is reached. */
	if (ro.data || (getenv("KILN_DATA") && *getenv("KILN_DATA"))) {
		sock = xasprintf("%s/run/" API_EXEC_SOCKET, cli_data_dir(ro.data));
		if (api_exec_run(cl, sock, id, cmd, &status, &err) < 0)
			status = cli_fail(err);
	} else if (api_exec_run_remote(cl, id, cmd, &status, &err) < 0) {
		status = cli_fail(err);
	}
	api_client_close(cl);
	return status;
}
