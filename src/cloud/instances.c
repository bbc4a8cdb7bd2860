/* Instances: RunInstances, their states and transitions, backed by the real runtime. The API
 * call records the change and returns; a worker thread acts (clone, boot, stop, terminate) and
 * records the end state, which is how EC2's pending/stopping/shutting-down states arise. */
#include "internal.h"

#include "cloud/catalog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/net.h"
#include "pool/pool.h"
#include "runtime/runtime.h"
#include "store/store.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/fault.h"
#include "util/banned.h"

#define INSTANCE_STOP_TIMEOUT 10

int cloud_attach_runtime(struct cloud *c, const char *shim_path, const char *init_path,
                         struct kerr **err)
{
	_cleanup_free_ char *run = xasprintf("%s/run", c->data_dir);
	_cleanup_kerr_ struct kerr *why = NULL;

	if (runtime_open(run, shim_path, init_path, &c->rt, err) < 0)
		return -1;
	/* Before any instance starts: the host id ranges this data directory's instances hold
	 * (a killed daemon's included), and none of another's. */
	if (runtime_ids_recover(c->rt, true, &why) < 0) {
		if (why->kind != KERR_CONFLICT)
			return kerr_pass(err, steal_ptr(why));
		log_event(LOG_LEVEL_WARNING, NULL, "%s", why->msg);
	}
	return 0;
}

static void instance_from_row(sqlite3_stmt *st, struct instance *in)
{
	memset(in, 0, sizeof(*in));
	str_copy(in->id, db_text(st, 0), sizeof(in->id));
	str_copy(in->region, db_text(st, 1), sizeof(in->region));
	str_copy(in->zone, db_text(st, 2), sizeof(in->zone));
	str_copy(in->owner, db_text(st, 3), sizeof(in->owner));
	str_copy(in->image, db_text(st, 4), sizeof(in->image));
	str_copy(in->type, db_text(st, 5), sizeof(in->type));
	str_copy(in->state, db_text(st, 6), sizeof(in->state));
	str_copy(in->state_reason, db_text(st, 7), sizeof(in->state_reason));
	str_copy(in->private_ip, db_text(st, 8), sizeof(in->private_ip));
	str_copy(in->reservation, db_text(st, 9), sizeof(in->reservation));
	in->launch_index = sqlite3_column_int(st, 10);
	in->launch_ms = sqlite3_column_int64(st, 11);
	str_copy(in->root_volume, db_text(st, 12), sizeof(in->root_volume));
	in->root_size_gib = (uint64_t)sqlite3_column_int64(st, 13);
	in->delete_on_termination = sqlite3_column_int(st, 14) != 0;
	str_copy(in->key_name, db_text(st, 15), sizeof(in->key_name));
	in->disable_api_termination = sqlite3_column_int(st, 16) != 0;
	in->disable_api_stop = sqlite3_column_int(st, 17) != 0;
	str_copy(in->shutdown_behavior, db_text(st, 18), sizeof(in->shutdown_behavior));
	str_copy(in->vpc, db_text(st, 19), sizeof(in->vpc));
	str_copy(in->subnet, db_text(st, 20), sizeof(in->subnet));
	str_copy(in->public_ip, db_text(st, 21), sizeof(in->public_ip));
	str_copy(in->subnet_cidr, db_text(st, 22), sizeof(in->subnet_cidr));
	in->vpc_net = (unsigned)sqlite3_column_int64(st, 23);
	in->subnet_net = (unsigned)sqlite3_column_int64(st, 24);
	str_copy(in->md.http_tokens, db_text(st, 25), sizeof(in->md.http_tokens));
	str_copy(in->md.http_endpoint, db_text(st, 26), sizeof(in->md.http_endpoint));
	in->md.hop_limit = sqlite3_column_int(st, 27);
	str_copy(in->md.tags, db_text(st, 28), sizeof(in->md.tags));
	str_copy(in->iam_profile, db_text(st, 29), sizeof(in->iam_profile));
	str_copy(in->iam_profile_id, db_text(st, 30), sizeof(in->iam_profile_id));
	if (in->iam_profile[0])
		cloud_instance_profile_arn(in->owner, in->iam_profile, in->iam_profile_arn,
		                           sizeof(in->iam_profile_arn));
	cloud_product_codes_split(db_text(st, 31), in->product_codes, &in->nproduct_codes);
}

#define INSTANCE_COLUMNS                                                                           \
	"id, region, zone, owner, image, type, state, state_reason, private_ip, reservation, "     \
	"launch_index, launch_ms, root_volume, root_size, delete_on_termination, "                 \
	"COALESCE(key_name, ''), disable_api_termination, disable_api_stop, shutdown_behavior, "   \
	"COALESCE(vpc, ''), COALESCE(subnet, ''), public_ip, "                                     \
	"COALESCE((SELECT s.cidr FROM subnets s WHERE s.id = instances.subnet), ''), "             \
	"COALESCE((SELECT v.net FROM vpcs v WHERE v.id = instances.vpc), 0), "                     \
	"COALESCE((SELECT s.net FROM subnets s WHERE s.id = instances.subnet), 0), "               \
	"http_tokens, http_endpoint, http_hop_limit, metadata_tags, iam_profile, "                 \
	"iam_profile_id, " CLOUD_CODES_OF("instances.id") " FROM instances "

/* Terminated instances stay visible for an hour, as in EC2. */
#define TERMINATED_VISIBLE_MS (3600 * 1000)

void cloud_instances_bind_listed(sqlite3_stmt *st, const char *owner, const char *region,
                                 int64_t ended_after)
{
	db_bind_text(st, 1, owner);
	db_bind_text(st, 2, region);
	sqlite3_bind_int64(st, 3, ended_after);
}

int cloud_instances_list(struct cloud *c, const char *owner, const char *region,
                         struct instance **out, size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	struct instance *v = NULL;
	size_t count = 0;
	int64_t ended_after = cloud_now_ms() - TERMINATED_VISIBLE_MS;
	int r;

	/* The instances recorded before VPCs existed join the default VPC now. */
	if (cloud_vpc_default_ensure(c, owner, region, err) < 0)
		return -1;
	if (db_prepare(c->db,
	               "SELECT " INSTANCE_COLUMNS "WHERE " CLOUD_INSTANCES_LISTED
	               " ORDER BY launch_ms, reservation, launch_index",
	               &st, err) < 0)
		return -1;
	cloud_instances_bind_listed(st, owner, region, ended_after);
	while ((r = db_step_row(c->db, st, err)) == 1) {
		v = xreallocarray(v, count + 1, sizeof(*v));
		instance_from_row(st, &v[count++]);
	}
	if (r == 0)
		r = cloud_instances_load_groups(c, owner, region, ended_after, v, count, err);
	if (r < 0) {
		free(v);
		return -1;
	}
	*out = v;
	*n = count;
	return 0;
}

static int instance_read(struct cloud *c, const char *id, struct instance *in, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db, "SELECT " INSTANCE_COLUMNS "WHERE id = ?", &st, err) < 0)
		return -1;
	db_bind_text(st, 1, id);
	r = db_step_row(c->db, st, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return cloud_instance_not_found(id, err);
	instance_from_row(st, in);
	return cloud_instance_load_groups(c, in, err);
}

int cloud_instance_get(struct cloud *c, const char *id, struct instance *in, struct kerr **err)
{
	return instance_read(c, id, in, err);
}

/* The instances recorded before VPCs existed join their account's default VPC of their
 * region (made now when it was not), before anything reads them. */
static int adopt_instances(struct cloud *c, struct kerr **err)
{
	struct {
		char owner[ACCOUNT_ID_LEN + 1], region[32];
	} *v = NULL;
	size_t n = 0;
	int r;

	{
		_cleanup_stmt_ sqlite3_stmt *st = NULL;
		if (db_prepare(
		        c->db,
		        "SELECT DISTINCT owner, region FROM instances WHERE subnet IS NULL OR "
		        "subnet = ''",
		        &st, err) < 0)
			return -1;
		while ((r = db_step_row(c->db, st, err)) == 1) {
			v = xreallocarray(v, n + 1, sizeof(*v));
			str_copy(v[n].owner, db_text(st, 0), sizeof(v[n].owner));
			str_copy(v[n].region, db_text(st, 1), sizeof(v[n].region));
			n++;
		}
	}
	for (size_t i = 0; i < n && r == 0; i++)
		r = cloud_vpc_default_ensure(c, v[i].owner, v[i].region, err);
	free(v);
	return r;
}

int cloud_instance_not_found(const char *id, struct kerr **err)
{
	return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_INSTANCE, id, "instance '%s' not found",
	                  id);
}

/* An instance stopped or ended: its VPC's filter and public routes without it. Its port went
 * with it; a filter that cannot be written now is written again at the VPC's next change. */
static void network_gone(struct cloud *c, const char *id)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_kerr_ struct kerr *err = NULL;

	if (db_prepare(c->db, "SELECT COALESCE(vpc, '') FROM instances WHERE id = ?", &st, &err) <
	    0)
		goto fail;
	db_bind_text(st, 1, id);
	if (db_step_row(c->db, st, &err) <= 0 || vpc_filter_changed(c, db_text(st, 0), &err) == 0)
		return;
fail:
	if (err)
		log_event(LOG_LEVEL_WARNING, NULL, "instance %s: %s", id, err->msg);
}

static int set_state(struct cloud *c, const char *id, enum instance_state state, const char *reason,
                     bool ended, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (db_prepare(c->db,
	               "UPDATE instances SET state = ?1, state_reason = ?2, "
	               "ended_ms = CASE WHEN ?3 THEN ?4 ELSE ended_ms END, "
	               /* a public address that is not elastic goes at stop, as in EC2 */
	               "public_ip = CASE WHEN ?1 IN ('stopped', 'terminated') THEN '' "
	               "ELSE public_ip END WHERE id = ?5",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, instance_state_name(state));
	db_bind_text(st, 2, reason ? reason : "");
	sqlite3_bind_int(st, 3, ended);
	sqlite3_bind_int64(st, 4, cloud_now_ms());
	db_bind_text(st, 5, id);
	if (db_step_done(c->db, st, err) < 0)
		return -1;
	/* Its temporary credentials go with it. */
	if (state == INSTANCE_TERMINATED && cloud_instance_credentials_drop(c, id, err) < 0)
		return -1;
	if (state == INSTANCE_STOPPED || state == INSTANCE_TERMINATED)
		network_gone(c, id);
	return 0;
}

int cloud_find_zone(struct cloud *c, const char *region, const char *want, struct zone *out,
                    struct kerr **err)
{
	struct topology t;
	int r = -1;

	if (cloud_regions(c, &t, err) < 0)
		return -1;
	for (size_t i = 0; i < t.nzones && r < 0; i++) {
		if (strcmp(t.zones[i].region, region) || (want && strcmp(t.zones[i].name, want)))
			continue;
		*out = t.zones[i];
		r = 0;
	}
	topology_release(&t);
	if (r < 0)
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_ZONE, want,
		                  "invalid availability zone '%s'", want ? want : "");
	return 0;
}

static int public_on_start(struct cloud *c, const char *id, struct kerr **err);

enum job_kind { JOB_LAUNCH, JOB_START, JOB_STOP, JOB_TERMINATE, JOB_REBOOT };

static char *user_data_path(const struct cloud *c, const char *id)
{
	return xasprintf("%s/user-data/%s", c->data_dir, id);
}

static char *public_key_path(const struct cloud *c, const char *id)
{
	return xasprintf("%s/public-keys/%s", c->data_dir, id);
}

/* The key pair's public key the instance was launched with, as the file the runtime hands to
 * kiln-init (which puts it in the login user's authorized_keys on first boot); *path is NULL
 * when it has none. The instance keeps its key when the key pair is deleted. */
static int write_public_key(struct cloud *c, const char *id, char **path, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ char *dir = xasprintf("%s/public-keys", c->data_dir);
	_cleanup_close_ int dfd = -1;
	const char *key;
	int r;

	*path = NULL;
	if (db_prepare(c->db, "SELECT COALESCE(public_key, '') FROM instances WHERE id = ?", &st,
	               err) < 0)
		return -1;
	db_bind_text(st, 1, id);
	if ((r = db_step_row(c->db, st, err)) < 0)
		return -1;
	key = r ? db_text(st, 0) : "";
	if (!*key)
		return 0;
	if (fs_mkdir_p(dir, 0700, err) < 0)
		return -1;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kerr_errno(err, errno, "cannot open '%s'", dir);
	if (fs_write_atomic(dfd, id, key, strlen(key), "public key", err) < 0)
		return -1;
	*path = public_key_path(c, id);
	return 0;
}

void cloud_private_dns_name(const char *region, const char *ip, char *out, size_t size)
{
	char dashed[INET_ADDRSTRLEN];

	str_copy(dashed, ip, sizeof(dashed));
	for (char *p = dashed; *p; p++)
		if (*p == '.')
			*p = '-';
	if (!strcmp(region, "us-east-1"))
		snprintf(out, size, "ip-%s.ec2.internal", dashed);
	else
		snprintf(out, size, "ip-%s.%s.compute.internal", dashed, region);
}

/* Make the root volume (a reflink clone of the zone's base of the image) and boot it. */
static int do_launch(struct cloud *c, const struct instance *in, struct kerr **err)
{
	_cleanup_free_ char *pool_dir = cloud_zone_pool_dir(c, in->region, in->zone);
	_cleanup_free_ char *vol_name = cloud_volume_file(in->root_volume);
	_cleanup_free_ char *base_path = NULL, *ud = user_data_path(c, in->id), *key = NULL;
	struct instance_spec spec = {.stop_timeout = INSTANCE_STOP_TIMEOUT};
	struct instance_status st;
	struct pool *p = NULL;
	_cleanup_free_ char *pin = NULL;
	struct image im;
	struct net_prefix net;
	bool locked = true;
	int r = -1;

	if (c->rt->ops->status(c->rt, in->id, &st, NULL) == 0 && st.state == RUN_RUNNING)
		return 0; /* resumed after a restart: it booted already */
	if (cloud_image_get(c, in->owner, in->region, in->image, &im, err) < 0)
		return -1;
	if (!in->subnet_cidr[0] || net_prefix_parse(in->subnet_cidr, &net, NULL) < 0)
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_SUBNET, in->subnet,
		                  "instance '%s' has no subnet", in->id);
	/* One launch at a time makes a zone's pool and an image's base in it (and the data
	 * volumes' bases, cloud_instance_make_volumes): the first launches of an image in a new
	 * zone would race for them. The root volume is this instance's own: its clone (and
	 * resize2fs when it grows) runs beside the other launches of a storm. */
	pthread_mutex_lock(&c->volumes_lock);
	if (pool_open(pool_dir, NULL, &p, err) < 0) {
		pthread_mutex_unlock(&c->volumes_lock);
		return -1;
	}
	if (cloud_zone_base(c, p, in->region, im.root_snapshot, &base_path, err) < 0)
		goto out;
	pthread_mutex_unlock(&c->volumes_lock);
	locked = false;
	if (!pool_exists(p, vol_name) && pool_clone(p, base_path, vol_name, err) < 0)
		goto out;
	if (in->root_size_gib > im.root_size_gib &&
	    pool_grow(p, vol_name, in->root_size_gib * GIB, err) < 0)
		goto out;
	if (cloud_instance_make_volumes(c, in, p, err) < 0)
		goto out;
	fault_point("launch.volumes");
	{
		struct in_addr gw = {.s_addr = htonl(ntohl(net.addr.s_addr) + 1)};
		_cleanup_free_ char *vol_path = pool_path(p, vol_name);
		str_copy(spec.id, in->id, sizeof(spec.id));
		str_copy(spec.image_id, in->image, sizeof(spec.image_id));
		str_copy(spec.region, in->region, sizeof(spec.region));
		str_copy(spec.zone, in->zone, sizeof(spec.zone));
		str_copy(spec.type, in->type, sizeof(spec.type));
		cloud_private_dns_name(in->region, in->private_ip, spec.hostname,
		                       sizeof(spec.hostname));
		str_copy(spec.root_volume, vol_path, sizeof(spec.root_volume));
		snprintf(spec.address, sizeof(spec.address), "%s/%u", in->private_ip, net.len);
		inet_ntop(AF_INET, &gw, spec.gateway, sizeof(spec.gateway));
		if (access(ud, R_OK) == 0)
			str_copy(spec.user_data, ud, sizeof(spec.user_data));
	}
	if (write_public_key(c, in->id, &key, err) < 0)
		goto out;
	if (key)
		str_copy(spec.public_key, key, sizeof(spec.public_key));
	/* Its port joins the subnet's bridge in the VPC's own namespace, whose filter already
	 * counts it as a member. */
	if (vpc_network_up(c, in, &pin, err) < 0 || cloud_instance_sync_volumes(c, in->id, err) < 0)
		goto out;
	str_copy(spec.netns, pin, sizeof(spec.netns));
	snprintf(spec.bridge, sizeof(spec.bridge), NET_VPC_BRIDGE "%u", in->subnet_net);
	r = c->rt->ops->start(c->rt, &spec, err);
out:
	if (locked)
		pthread_mutex_unlock(&c->volumes_lock);
	pool_close(p);
	return r;
}

static int do_terminate(struct cloud *c, const struct instance *in, struct kerr **err)
{
	_cleanup_free_ char *ud = user_data_path(c, in->id), *key = public_key_path(c, in->id);
	_cleanup_kerr_ struct kerr *why = NULL;

	/* Resumed after a restart, the runtime may have forgotten it already. */
	if (c->rt->ops->stop(c->rt, in->id, false, INSTANCE_STOP_TIMEOUT, &why) < 0 &&
	    why->kind != KERR_NOT_FOUND)
		return kerr_pass(err, steal_ptr(why));
	kerr_free(steal_ptr(why));
	fault_point("terminate.stopped");
	if (runtime_remove(c->rt, in->id, &why) < 0 && why->kind != KERR_NOT_FOUND)
		return kerr_pass(err, steal_ptr(why));
	unlink(ud);
	unlink(key);
	return cloud_instance_release_volumes(c, in, err);
}

int cloud_instance_halt(struct cloud *c, const char *id, struct kerr **err)
{
	if (set_state(c, id, INSTANCE_STOPPING, NULL, false, err) < 0 ||
	    c->rt->ops->stop(c->rt, id, false, INSTANCE_STOP_TIMEOUT, err) < 0)
		return -1;
	return set_state(c, id, INSTANCE_STOPPED,
	                 "Client.UserInitiatedShutdown: User initiated shutdown", false, err);
}

int cloud_instance_boot(struct cloud *c, const char *id, struct kerr **err)
{
	struct instance in;

	if (db_begin(c->db, err) < 0)
		return -1;
	if (public_on_start(c, id, err) < 0 ||
	    set_state(c, id, INSTANCE_PENDING, NULL, false, err) < 0) {
		db_rollback(c->db);
		return -1;
	}
	if (db_commit(c->db, err) < 0 || cloud_instance_get(c, id, &in, err) < 0)
		return -1;
	if (do_launch(c, &in, err) < 0) {
		_cleanup_kerr_ struct kerr *why = NULL;
		if (set_state(c, id, INSTANCE_STOPPED, (*err)->msg, false, &why) < 0)
			cloud_log_failure(id, why, "cannot record the failed boot");
		return -1;
	}
	return set_state(c, id, INSTANCE_RUNNING, NULL, false, err);
}

#define INSTANCE_INITIATED "Client.InstanceInitiatedShutdown"

/* Why a stop or termination ends: the reason cloud_instance_ended recorded when the instance
 * shut itself down, else the user's request (whose transition cleared the reason). */
static const char *end_reason(const struct instance *in)
{
	return in->state_reason[0] ? in->state_reason
	                           : "Client.UserInitiatedShutdown: User initiated shutdown";
}

static int job_run(struct cloud *c, const char *id, int kind, bool force, struct kerr **err)
{
	_cleanup_kerr_ struct kerr *why = NULL;
	struct instance in;
	int r = 0;

	if (cloud_instance_get(c, id, &in, err) < 0)
		return -1;
	switch ((enum job_kind)kind) {
	case JOB_LAUNCH:
	case JOB_START:
		if ((r = do_launch(c, &in, err)) == 0) {
			fault_point("launch.started");
			r = set_state(c, in.id, INSTANCE_RUNNING, NULL, false, err);
		} else if (kind == JOB_START) {
			if (set_state(c, in.id, INSTANCE_STOPPED, (*err)->msg, false, &why) < 0)
				cloud_log_failure(in.id, why, "cannot record the failed start");
		} else {
			/* A launch that cannot boot ends terminated, as in EC2, and leaves nothing.
			 */
			char reason[1100];
			snprintf(reason, sizeof(reason), "Server.%s: %s",
			         (*err)->kind == KERR_NOSPACE ? "InsufficientInstanceCapacity"
			                                      : "InternalError",
			         (*err)->msg);
			if (do_terminate(c, &in, &why) < 0)
				cloud_log_failure(in.id, why, "cannot clean up the failed launch");
			kerr_free(steal_ptr(why));
			if (set_state(c, in.id, INSTANCE_TERMINATED, reason, true, &why) < 0)
				cloud_log_failure(in.id, why, "cannot record the failed launch");
		}
		break;
	case JOB_REBOOT:
		/* EC2 shows a rebooting instance as running throughout. */
		if ((r = c->rt->ops->stop(c->rt, in.id, false, INSTANCE_STOP_TIMEOUT, err)) < 0 ||
		    (r = do_launch(c, &in, err)) < 0)
			if (set_state(c, in.id, INSTANCE_STOPPED,
			              *err ? (*err)->msg : "reboot failed", false, &why) < 0)
				cloud_log_failure(in.id, why, "cannot record the failed reboot");
		break;
	case JOB_STOP:
		if ((r = c->rt->ops->stop(c->rt, in.id, force, INSTANCE_STOP_TIMEOUT, err)) == 0)
			r = set_state(c, in.id, INSTANCE_STOPPED, end_reason(&in), false, err);
		break;
	case JOB_TERMINATE:
		if ((r = do_terminate(c, &in, err)) == 0) {
			fault_point("terminate.released");
			r = set_state(c, in.id, INSTANCE_TERMINATED, end_reason(&in), true, err);
		}
		break;
	}
	return r;
}

static int submit(struct cloud *c, const char *id, enum job_kind kind, bool force,
                  struct kerr **err)
{
	return cloud_submit(c, id, id, job_run, kind, force, err);
}

/* The data volumes of the image's mappings, one new volume each. */
static int insert_mapped(struct cloud *c, const struct instance *in, const struct image *im,
                         const struct run_request *req, struct kerr **err)
{
	for (size_t k = 0; k < im->nvolumes; k++) {
		char vol[ID_MAX];
		id_new("vol", vol);
		if (cloud_volume_insert_attached(c, in, vol, im->volumes[k].device,
		                                 im->volumes[k].snapshot, im->volumes[k].size_gib,
		                                 im->volumes[k].delete_on_termination,
		                                 req->volume_tags, req->nvolume_tags, err) < 0)
			return -1;
	}
	return 0;
}

/* ClientToken: a request seen before answers what it did then. 1 with *out set (or -1 when the
 * parameters differ), 0 for a new token. */
static int token_replay(struct cloud *c, const char *owner, const struct run_request *req,
                        struct instance **out, size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	struct instance *v = NULL;
	size_t count = 0;
	int r;

	if (db_prepare(c->db,
	               "SELECT " INSTANCE_COLUMNS
	               "WHERE owner = ? AND region = ? AND client_token = ? "
	               "ORDER BY launch_index",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, owner);
	db_bind_text(st, 2, req->region);
	db_bind_text(st, 3, req->client_token);
	while ((r = db_step_row(c->db, st, err)) == 1) {
		v = xreallocarray(v, count + 1, sizeof(*v));
		instance_from_row(st, &v[count++]);
	}
	if (r < 0 || !count) {
		free(v);
		return r;
	}
	if (strcmp(v[0].image, req->image) || strcmp(v[0].type, req->type) ||
	    count < (size_t)req->min_count || count > (size_t)req->max_count) {
		free(v);
		return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_CLIENT_TOKEN, req->client_token,
		                  "client token '%s' was used with other parameters",
		                  req->client_token);
	}
	*out = v;
	*n = count;
	return 1;
}

/* Inside the launch's transaction: the instance's groups and, when it gets one, its public
 * address (read back into in). */
static int instance_network(struct cloud *c, struct instance *in, bool public_ip, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	for (size_t k = 0; k < in->ngroups; k++)
		if (cloud_sql_run(c, err,
		                  "INSERT INTO instance_groups (instance, grp) VALUES (?, ?)", 2,
		                  in->id, in->groups[k]) < 0)
			return -1;
	if (!public_ip)
		return 0;
	if (cloud_public_address_assign(c, in->id, err) < 0 ||
	    db_prepare(c->db, "SELECT public_ip FROM instances WHERE id = ?", &st, err) < 0)
		return -1;
	db_bind_text(st, 1, in->id);
	if (db_step_row(c->db, st, err) != 1)
		return kerr_set(err, KERR_INTERNAL, "instance '%s' vanished", in->id);
	str_copy(in->public_ip, db_text(st, 0), sizeof(in->public_ip));
	return 0;
}

/* A stopped instance that had a public address gets a new one when it starts, as in EC2. */
static int public_on_start(struct cloud *c, const char *id, struct kerr **err)
{
	int r = cloud_sql_exists(c, err,
	                         "SELECT 1 FROM instances WHERE id = ? AND wants_public_ip AND "
	                         "public_ip = ''",
	                         1, id);

	return r <= 0 ? r : cloud_public_address_assign(c, id, err);
}

int cloud_run_instances(struct cloud *c, const char *owner, const struct run_request *req,
                        struct instance **out, size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *ins = NULL;
	_cleanup_free_ char *public_key = NULL;
	const struct instance_type *type = instance_type_find(req->type);
	uint64_t need[QUOTA__COUNT] = {0};
	struct instance *v = NULL;
	struct launch_net net;
	struct image im;
	struct zone z;
	char reservation[ID_MAX], profile[IAM_PROFILE_NAME_MAX + 1];
	int64_t now = cloud_now_ms();

	*n = 0;
	if (!type)
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_INSTANCE_TYPE, req->type,
		                  "instance type '%s' not found", req->type);
	if (cloud_metadata_change_check(&req->md, err) < 0)
		return -1;
	if (req->shutdown_behavior && !cloud_shutdown_behavior_valid(req->shutdown_behavior))
		return kerr_set(err, KERR_INVALID,
		                "Value (%s) for parameter instanceInitiatedShutdownBehavior is "
		                "invalid: stop or terminate",
		                req->shutdown_behavior);
	if (req->min_count < 1 || req->max_count < req->min_count || req->max_count > 20)
		return kerr_set(err, KERR_INVALID,
		                "MinCount and MaxCount must be 1 to 20, MinCount at most MaxCount");
	if (cloud_image_get(c, owner, req->region, req->image, &im, err) < 0)
		return -1;
	if (image_state_parse(im.state) != IMAGE_AVAILABLE)
		return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_IMAGE, im.id,
		                  "image '%s' is %s, not available", im.id, im.state);
	if (req->root_size_gib && req->root_size_gib < im.root_size_gib)
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_SNAPSHOT, im.root_snapshot,
		                  "volume of %llu GiB is smaller than snapshot '%s' (%llu GiB)",
		                  (unsigned long long)req->root_size_gib, im.root_snapshot,
		                  (unsigned long long)im.root_size_gib);
	if (cloud_iam_profile_resolve(owner, req->iam_profile_name, req->iam_profile_arn, profile,
	                              err) < 0)
		return -1;
	if (req->client_token && token_replay(c, owner, req, out, n, err) != 0)
		return *n ? 0 : -1;
	if (cloud_marketplace_launch_check(c, owner, &im, req->type, err) < 0)
		return -1;
	if (req->key_name) {
		public_key = xmalloc(KEY_PUBLIC_MAX);
		if (cloud_key_pair_public_key(c, owner, req->region, req->key_name, public_key,
		                              KEY_PUBLIC_MAX, err) < 0)
			return -1;
	}
	if (cloud_launch_network(c, owner, req, &net, err) < 0 ||
	    cloud_find_zone(c, req->region, net.subnet.zone, &z, err) < 0 ||
	    cloud_zone_space_check(c, req->region, z.name, err) < 0)
		return -1;
	/* What each instance takes of the quotas: its vCPUs, its root and mapped volumes. */
	need[QUOTA_VCPUS] = type->vcpus;
	need[QUOTA_VOLUMES] = 1 + im.nvolumes;
	need[QUOTA_VOLUME_GIB] = req->root_size_gib ? req->root_size_gib : im.root_size_gib;
	for (size_t k = 0; k < im.nvolumes; k++)
		need[QUOTA_VOLUME_GIB] += im.volumes[k].size_gib;
	id_new("r", reservation);
	if (db_begin(c->db, err) < 0)
		return -1;
	if (db_prepare(
	        c->db,
	        "INSERT INTO instances (id, region, zone, owner, image, type, state, private_ip, "
	        "reservation, launch_index, launch_ms, key_name, root_volume, root_size, "
	        "delete_on_termination, client_token, public_key, disable_api_termination, "
	        "disable_api_stop, shutdown_behavior, vpc, subnet, wants_public_ip, http_tokens, "
	        "http_endpoint, http_hop_limit, metadata_tags, iam_profile, iam_profile_id) VALUES "
	        "(?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
	        "?, ?, ?, ?, ?, ?, ?)",
	        &ins, err) < 0)
		goto on_error;
	v = xcalloc((size_t)req->max_count, sizeof(*v));
	for (int i = 0; i < req->max_count; i++) {
		struct instance *in = &v[i];
		str_copy(in->region, req->region, sizeof(in->region));
		str_copy(in->zone, z.name, sizeof(in->zone));
		str_copy(in->owner, owner, sizeof(in->owner));
		str_copy(in->image, im.id, sizeof(in->image));
		memcpy(in->product_codes, im.product_codes, sizeof(in->product_codes));
		in->nproduct_codes = im.nproduct_codes; /* the row's trigger records them */
		str_copy(in->type, req->type, sizeof(in->type));
		str_copy(in->state, instance_state_name(INSTANCE_PENDING), sizeof(in->state));
		str_copy(in->reservation, reservation, sizeof(in->reservation));
		str_copy(in->key_name, req->key_name ? req->key_name : "", sizeof(in->key_name));
		in->launch_index = i;
		in->launch_ms = now;
		in->root_size_gib = req->root_size_gib ? req->root_size_gib : im.root_size_gib;
		in->delete_on_termination = !req->keep_root;
		in->disable_api_termination = req->disable_api_termination;
		in->disable_api_stop = req->disable_api_stop;
		str_copy(in->shutdown_behavior,
		         req->shutdown_behavior ? req->shutdown_behavior : "stop",
		         sizeof(in->shutdown_behavior));
		id_new("i", in->id);
		id_new("vol", in->root_volume);
		if (profile[0]) {
			str_copy(in->iam_profile, profile, sizeof(in->iam_profile));
			cloud_instance_profile_arn(owner, profile, in->iam_profile_arn,
			                           sizeof(in->iam_profile_arn));
			memcpy(in->iam_profile_id, "AIPA", 4);
			cloud_random_string(CLOUD_KEY_ALPHABET, in->iam_profile_id + 4,
			                    IAM_PROFILE_ID_LEN - 4);
		}
		if (cloud_quota_check(c, owner, req->region, need, err) < 0 ||
		    cloud_subnet_address(c, &net.subnet, req->private_ip, in->private_ip, err) <
		        0) {
			if (i >= req->min_count)
				break; /* EC2 launches as many as fit between MinCount and MaxCount
				        */
			goto on_error;
		}
		sqlite3_reset(ins);
		db_bind_text(ins, 1, in->id);
		db_bind_text(ins, 2, in->region);
		db_bind_text(ins, 3, in->zone);
		db_bind_text(ins, 4, owner);
		db_bind_text(ins, 5, in->image);
		db_bind_text(ins, 6, in->type);
		db_bind_text(ins, 7, in->private_ip);
		db_bind_text(ins, 8, reservation);
		sqlite3_bind_int(ins, 9, i);
		sqlite3_bind_int64(ins, 10, now);
		db_bind_text(ins, 11, req->key_name);
		db_bind_text(ins, 12, in->root_volume);
		sqlite3_bind_int64(ins, 13, (sqlite3_int64)in->root_size_gib);
		sqlite3_bind_int(ins, 14, in->delete_on_termination);
		db_bind_text(ins, 15, req->client_token);
		db_bind_text(ins, 16, public_key);
		sqlite3_bind_int(ins, 17, req->disable_api_termination);
		sqlite3_bind_int(ins, 18, req->disable_api_stop);
		db_bind_text(ins, 19, in->shutdown_behavior);
		db_bind_text(ins, 20, net.subnet.vpc);
		db_bind_text(ins, 21, net.subnet.id);
		sqlite3_bind_int(ins, 22, net.public_ip);
		cloud_metadata_defaults(&req->md, &in->md);
		db_bind_text(ins, 23, in->md.http_tokens);
		db_bind_text(ins, 24, in->md.http_endpoint);
		sqlite3_bind_int(ins, 25, in->md.hop_limit);
		db_bind_text(ins, 26, in->md.tags);
		db_bind_text(ins, 27, in->iam_profile);
		db_bind_text(ins, 28, in->iam_profile_id);
		str_copy(in->vpc, net.subnet.vpc, sizeof(in->vpc));
		str_copy(in->subnet, net.subnet.id, sizeof(in->subnet));
		str_copy(in->subnet_cidr, net.subnet.cidr, sizeof(in->subnet_cidr));
		in->subnet_net = net.subnet.net;
		memcpy(in->groups, net.groups, sizeof(in->groups));
		in->ngroups = net.ngroups;
		if (db_step_done(c->db, ins, err) < 0 ||
		    instance_network(c, in, net.public_ip, err) < 0 ||
		    cloud_volume_insert_attached(
		        c, in, in->root_volume, ROOT_DEVICE, im.root_snapshot, in->root_size_gib,
		        in->delete_on_termination, req->volume_tags, req->nvolume_tags, err) < 0 ||
		    insert_mapped(c, in, &im, req, err) < 0 ||
		    cloud_tags_put(c, owner, in->region, in->id, req->instance_tags,
		                   req->ninstance_tags, err) < 0)
			goto on_error;
		*n = (size_t)i + 1;
	}
	if (db_commit(c->db, err) < 0) { /* it rolled back itself */
		free(v);
		*n = 0;
		return -1;
	}
	/* The VPC's filter counts them as members when each boots (vpc_network_up): nothing
	 * to write here, in the request. */
	for (size_t i = 0; i < *n; i++) {
		_cleanup_kerr_ struct kerr *why = NULL;
		if (req->user_data && req->user_data_len) {
			_cleanup_free_ char *dir = xasprintf("%s/user-data", c->data_dir);
			_cleanup_close_ int dfd = -1;
			if (fs_mkdir_p(dir, 0700, &why) < 0 ||
			    (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
			    fs_write_atomic(dfd, v[i].id, req->user_data, req->user_data_len,
			                    "user-data", &why) < 0)
				cloud_log_failure(v[i].id, why,
				                  "cannot keep the user data of the instance");
			kerr_free(steal_ptr(why));
		}
		/* Refused only at shutdown: the next start boots it (it is pending). */
		if (submit(c, v[i].id, JOB_LAUNCH, false, &why) < 0)
			cloud_log_failure(v[i].id, why, "cannot start the launch");
	}
	*out = v;
	return 0;

on_error:
	db_rollback(c->db);
	free(v);
	*n = 0;
	return -1;
}

/* States from which each change may start, as EC2 allows them. */
static bool allowed(enum job_kind kind, enum instance_state state)
{
	switch (kind) {
	case JOB_START:
		return state == INSTANCE_STOPPED || state == INSTANCE_PENDING ||
		       state == INSTANCE_RUNNING;
	case JOB_STOP:
		return state == INSTANCE_RUNNING || state == INSTANCE_STOPPING ||
		       state == INSTANCE_STOPPED;
	case JOB_TERMINATE:
		return true;
	case JOB_REBOOT:
		return state == INSTANCE_RUNNING;
	case JOB_LAUNCH:
		break;
	}
	return false;
}

/* Is the change already where it leads (a start of a running instance, …)? */
static bool settled(enum job_kind kind, enum instance_state state)
{
	return (kind == JOB_START && (state == INSTANCE_RUNNING || state == INSTANCE_PENDING)) ||
	       (kind == JOB_STOP && (state == INSTANCE_STOPPED || state == INSTANCE_STOPPING)) ||
	       (kind == JOB_TERMINATE && state == INSTANCE_TERMINATED);
}

/* Does the change need a job? A forced stop does even when stopping. */
static bool acts(enum job_kind kind, enum instance_state state, bool force)
{
	return !settled(kind, state) || (kind == JOB_STOP && force);
}

/* The vCPUs that starting these instances adds: those of the stopped ones, each id once. */
static uint64_t start_vcpus(const struct instance *in, size_t n)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < n; i++) {
		const struct instance_type *t = instance_type_find(in[i].type);
		bool again = false;

		for (size_t j = 0; j < i && !again; j++)
			again = !strcmp(in[j].id, in[i].id);
		if (!again && instance_state_parse(in[i].state) == INSTANCE_STOPPED)
			sum += t ? t->vcpus : 1;
	}
	return sum;
}

int cloud_instances_change(struct cloud *c, const char *owner, const char *region,
                           const char *action, const char **ids, size_t n, bool force,
                           struct state_change **out, struct kerr **err)
{
	enum job_kind kind = !strcmp(action, "start")    ? JOB_START
	                     : !strcmp(action, "stop")   ? JOB_STOP
	                     : !strcmp(action, "reboot") ? JOB_REBOOT
	                                                 : JOB_TERMINATE;
	enum instance_state next = kind == JOB_START    ? INSTANCE_PENDING
	                           : kind == JOB_STOP   ? INSTANCE_STOPPING
	                           : kind == JOB_REBOOT ? INSTANCE_RUNNING
	                                                : INSTANCE_SHUTTING_DOWN;
	struct state_change *v = xcalloc(n ? n : 1, sizeof(*v));
	struct instance *in = xcalloc(n ? n : 1, sizeof(*in));
	uint64_t need[QUOTA__COUNT] = {0};
	int r = -1;

	/* All or nothing: every id must exist, be the caller's and be in a state that allows it. */
	for (size_t i = 0; i < n; i++) {
		if (cloud_instance_get(c, ids[i], &in[i], err) < 0 || strcmp(in[i].owner, owner) ||
		    strcmp(in[i].region, region)) {
			cloud_instance_not_found(ids[i], err);
			goto out;
		}
		if ((kind == JOB_TERMINATE && in[i].disable_api_termination) ||
		    (kind == JOB_STOP && in[i].disable_api_stop)) {
			kerr_about(err, KERR_AUTH, KERR_SUBJECT_INSTANCE, ids[i],
			           "The instance '%s' may not be %s. Modify its '%s' instance "
			           "attribute and try again.",
			           ids[i], kind == JOB_STOP ? "stopped" : "terminated",
			           kind == JOB_STOP ? "disableApiStop" : "disableApiTermination");
			goto out;
		}
		if (!allowed(kind, instance_state_parse(in[i].state))) {
			kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_INSTANCE, ids[i],
			           "instance '%s' is not in a state from which it can be %s",
			           ids[i],
			           kind == JOB_START    ? "started"
			           : kind == JOB_REBOOT ? "rebooted"
			                                : "stopped");
			goto out;
		}
	}
	/* The new states and the quota check in one transaction; the jobs after it. */
	if (db_begin(c->db, err) < 0)
		goto out;
	need[QUOTA_VCPUS] = kind == JOB_START ? start_vcpus(in, n) : 0;
	if (cloud_quota_check(c, owner, region, need, err) < 0) {
		db_rollback(c->db);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		enum instance_state now = instance_state_parse(in[i].state);
		str_copy(v[i].id, ids[i], sizeof(v[i].id));
		str_copy(v[i].previous, in[i].state, sizeof(v[i].previous));
		str_copy(v[i].current, settled(kind, now) ? in[i].state : instance_state_name(next),
		         sizeof(v[i].current));
		if (!acts(kind, now, force) || kind == JOB_REBOOT)
			continue;
		if (set_state(c, ids[i], next, NULL, false, err) < 0 ||
		    (kind == JOB_START && public_on_start(c, ids[i], err) < 0)) {
			db_rollback(c->db);
			goto out;
		}
	}
	if (db_commit(c->db, err) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (acts(kind, instance_state_parse(in[i].state), force) &&
		    submit(c, ids[i], kind, force, err) < 0)
			goto out;
	*out = v;
	v = NULL;
	r = 0;
out:
	free(v);
	free(in);
	return r;
}

int cloud_reconcile(struct cloud *c, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	cloud_leftovers_clean(c);
	if (adopt_instances(c, err) < 0)
		return -1;
	if (db_prepare(c->db,
	               "SELECT id, state FROM instances WHERE state IN ('pending', 'stopping', "
	               "'shutting-down', 'running')",
	               &st, err) < 0)
		return -1;
	while ((r = db_step_row(c->db, st, err)) == 1) {
		const char *id = db_text(st, 0);
		enum instance_state state = instance_state_parse(db_text(st, 1));
		struct instance_status rs;

		if (state == INSTANCE_RUNNING) {
			/* After a host restart the instance is gone: say so, as a stop. One that
			 * shut itself down while the daemon was away is left to the watcher, which
			 * applies its shutdown behaviour. */
			if (c->rt->ops->status(c->rt, id, &rs, NULL) == 0 &&
			    rs.state != RUN_RUNNING &&
			    !(rs.state == RUN_STOPPED && !strncmp(rs.reason, INSTANCE_INITIATED,
			                                          strlen(INSTANCE_INITIATED))) &&
			    set_state(c, id, INSTANCE_STOPPED,
			              "Server.InternalError: the host restarted", false, err) < 0)
				return -1;
			continue;
		}
		if (submit(c, id,
		           state == INSTANCE_PENDING    ? JOB_START
		           : state == INSTANCE_STOPPING ? JOB_STOP
		                                        : JOB_TERMINATE,
		           false, err) < 0)
			return -1;
	}
	if (r < 0 || cloud_volumes_reconcile(c, err) < 0 || cloud_snapshots_reconcile(c, err) < 0 ||
	    cloud_images_reconcile(c, err) < 0 || cloud_copies_reconcile(c, err) < 0 ||
	    cloud_catalog_reconcile(c, err) < 0)
		return -1;
	return 0;
}

int cloud_instance_console(struct cloud *c, const char *owner, const char *region, const char *id,
                           uint8_t **out, size_t *len, struct kerr **err)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_kerr_ struct kerr *why = NULL;
	struct instance in;

	if (cloud_instance_get(c, id, &in, err) < 0)
		return -1;
	if (strcmp(in.owner, owner) || strcmp(in.region, region))
		return cloud_instance_not_found(id, err);
	path = runtime_instance_path(c->rt, id, "console.log");
	if (fs_read_file(AT_FDCWD, path, (size_t)64 << 20, out, len, &why) < 0) {
		if (why->kind != KERR_NOT_FOUND)
			return kerr_pass(err, steal_ptr(why));
		*out = xcalloc(1, 1); /* never booted: no output yet */
		*len = 0;
	}
	return 0;
}

struct cloud_exec {
	struct runtime_exec proc;
};

int cloud_instance_exec(struct cloud *c, const char *owner, const char *region, const char *id,
                        char *const argv[], const int stdio[3], struct cloud_exec **out,
                        struct kerr **err)
{
	_cleanup_kerr_ struct kerr *why = NULL;
	pthread_mutex_t *lock = cloud_job_lock(id);
	struct cloud_exec *x;
	struct instance in;
	int r = -1;

	*out = NULL;
	/* No start or stop runs between the check and the command's start. */
	pthread_mutex_lock(lock);
	if (cloud_instance_get(c, id, &in, err) < 0 || strcmp(in.owner, owner) ||
	    strcmp(in.region, region)) {
		cloud_instance_not_found(id, err);
		goto out;
	}
	if (instance_state_parse(in.state) != INSTANCE_RUNNING) {
		kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_INSTANCE, id,
		           "instance '%s' is %s, not running", id, in.state);
		goto out;
	}
	x = xcalloc(1, sizeof(*x));
	if (c->rt->ops->exec(c->rt, id, argv, stdio, &x->proc, &why) < 0) {
		free(x);
		if (why->kind == KERR_CONFLICT)
			kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_INSTANCE, id, "%s", why->msg);
		else
			kerr_pass(err, steal_ptr(why));
		goto out;
	}
	*out = x;
	r = 0;
out:
	pthread_mutex_unlock(lock);
	return r;
}

int cloud_exec_fd(const struct cloud_exec *x)
{
	return x->proc.pidfd;
}

int cloud_exec_signal(struct cloud_exec *x, int sig, struct kerr **err)
{
	return runtime_exec_signal(&x->proc, sig, err);
}

int cloud_exec_end(struct cloud_exec *x, int *exit_status, struct kerr **err)
{
	int r = 0;

	if (exit_status)
		r = runtime_exec_wait(&x->proc, exit_status, err);
	else
		runtime_exec_release(&x->proc);

	free(x);
	return r;
}

int cloud_instance_modify(struct cloud *c, const char *owner, const char *region, const char *id,
                          const char *type, const uint8_t *user_data, size_t user_data_len,
                          struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	pthread_mutex_t *lock = cloud_job_lock(id);
	struct instance in;
	int r = -1;

	if (type && !instance_type_find(type))
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_INSTANCE_TYPE, type,
		                  "instance type '%s' not found", type);
	/* No start may begin while the change is made. */
	pthread_mutex_lock(lock);
	if (cloud_instance_get(c, id, &in, err) < 0 || strcmp(in.owner, owner) ||
	    strcmp(in.region, region)) {
		cloud_instance_not_found(id, err);
		goto out;
	}
	if (instance_state_parse(in.state) != INSTANCE_STOPPED) {
		kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_INSTANCE, id,
		           "instance '%s' is not stopped", id);
		goto out;
	}
	if (type) {
		if (db_prepare(c->db, "UPDATE instances SET type = ? WHERE id = ?", &st, err) < 0)
			goto out;
		db_bind_text(st, 1, type);
		db_bind_text(st, 2, id);
		if (db_step_done(c->db, st, err) < 0)
			goto out;
	}
	if (user_data) {
		_cleanup_free_ char *dir = xasprintf("%s/user-data", c->data_dir);
		_cleanup_close_ int dfd = -1;
		if (fs_mkdir_p(dir, 0700, err) < 0)
			goto out;
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0) {
			kerr_errno(err, errno, "cannot open '%s'", dir);
			goto out;
		}
		if (user_data_len &&
		    fs_write_atomic(dfd, id, user_data, user_data_len, "user-data", err) < 0)
			goto out;
		if (!user_data_len && unlinkat(dfd, id, 0) < 0 && errno != ENOENT) {
			kerr_errno(err, errno, "cannot remove the user data of '%s'", id);
			goto out;
		}
	}
	r = 0;
out:
	pthread_mutex_unlock(lock);
	return r;
}

void cloud_instance_health(struct cloud *c, const struct instance *in, const char **system,
                           const char **instance)
{
	struct instance_status st;

	*system = *instance = "not-applicable";
	if (instance_state_parse(in->state) != INSTANCE_RUNNING)
		return;
	if (c->rt->ops->status(c->rt, in->id, &st, NULL) < 0 || st.state != RUN_RUNNING) {
		*system = *instance = "impaired";
		return;
	}
	*system = "ok"; /* the shim holds the instance */
	*instance = st.init_pid > 0 && kill(st.init_pid, 0) == 0 ? "ok" : "impaired";
}

bool cloud_shutdown_behavior_valid(const char *s)
{
	return !strcmp(s, "stop") || !strcmp(s, "terminate");
}

int cloud_instance_set_flags(struct cloud *c, const char *owner, const char *region, const char *id,
                             const struct instance_flags *f, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	struct instance in;

	if (f->shutdown_behavior && !cloud_shutdown_behavior_valid(f->shutdown_behavior))
		return kerr_set(err, KERR_INVALID,
		                "Value (%s) for parameter instanceInitiatedShutdownBehavior is "
		                "invalid: stop or terminate",
		                f->shutdown_behavior);
	if (cloud_instance_get(c, id, &in, err) < 0 || strcmp(in.owner, owner) ||
	    strcmp(in.region, region))
		return cloud_instance_not_found(id, err);
	if (instance_state_parse(in.state) == INSTANCE_TERMINATED)
		return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_INSTANCE, id,
		                  "instance '%s' is terminated", id);
	if (db_prepare(
	        c->db,
	        "UPDATE instances SET disable_api_termination = COALESCE(?1, "
	        "disable_api_termination), disable_api_stop = COALESCE(?2, disable_api_stop), "
	        "shutdown_behavior = COALESCE(?3, shutdown_behavior) WHERE id = ?4",
	        &st, err) < 0)
		return -1;
	if (f->disable_api_termination >= 0)
		sqlite3_bind_int(st, 1, f->disable_api_termination);
	if (f->disable_api_stop >= 0)
		sqlite3_bind_int(st, 2, f->disable_api_stop);
	db_bind_text(st, 3, f->shutdown_behavior);
	db_bind_text(st, 4, id);
	return db_step_done(c->db, st, err);
}

int cloud_instance_user_data(struct cloud *c, const char *owner, const char *region, const char *id,
                             uint8_t **out, size_t *len, struct kerr **err)
{
	_cleanup_free_ char *path = user_data_path(c, id);
	_cleanup_kerr_ struct kerr *why = NULL;
	struct instance in;

	if (cloud_instance_get(c, id, &in, err) < 0 || strcmp(in.owner, owner) ||
	    strcmp(in.region, region))
		return cloud_instance_not_found(id, err);
	if (fs_read_file(AT_FDCWD, path, (size_t)64 << 10, out, len, &why) < 0) {
		if (why->kind != KERR_NOT_FOUND)
			return kerr_pass(err, steal_ptr(why));
		*out = NULL; /* none */
		*len = 0;
	}
	return 0;
}

void cloud_instance_ended(struct cloud *c, const char *id)
{
	_cleanup_kerr_ struct kerr *why = NULL;
	pthread_mutex_t *lock = cloud_job_lock(id);
	struct instance_status rs;
	struct instance in;
	bool terminate;
	int r;

	/* A job on the instance (a stop, a reboot) is the one ending it: it decides. */
	if (pthread_mutex_trylock(lock) != 0)
		return;
	r = cloud_instance_get(c, id, &in, &why);
	if (r < 0 || instance_state_parse(in.state) != INSTANCE_RUNNING ||
	    c->rt->ops->status(c->rt, id, &rs, NULL) < 0 || rs.state != RUN_STOPPED) {
		pthread_mutex_unlock(lock);
		if (r < 0)
			cloud_log_failure(id, why, "cannot read the instance whose init ended");
		return;
	}
	/* Its PID 1 ended of itself (a poweroff inside): the shutdown behaviour decides. */
	terminate = !strcmp(in.shutdown_behavior, "terminate");
	r = set_state(c, id, terminate ? INSTANCE_SHUTTING_DOWN : INSTANCE_STOPPING,
	              rs.reason[0] ? rs.reason : INSTANCE_INITIATED ": Instance initiated shutdown",
	              false, &why);
	pthread_mutex_unlock(lock);
	if (r < 0 || submit(c, id, terminate ? JOB_TERMINATE : JOB_STOP, false, &why) < 0)
		cloud_log_failure(id, why, "cannot end the instance whose init ended");
}
