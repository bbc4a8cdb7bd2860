/* VPCs and subnets: their records and EC2's rules (ranges, overlaps, dependencies), the default
 * VPC of each account and region made at its first use, instances' private addresses in their
 * subnet and public addresses from the host's range. The network itself is src/net's, driven
 * from the instances' records. */
#include "internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"
#include "util/cleanup.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define DEFAULT_VPC_CIDR "172.31.0.0/16"

/* The lowest net number no row of table has. */
static int next_net(struct cloud *c, const char *table, unsigned *out, struct kerr **err)
{
	_cleanup_free_ char *sql =
	    xasprintf("SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM %s WHERE net = 1) THEN 1 ELSE "
	              "(SELECT MIN(net) + 1 FROM %s WHERE net + 1 NOT IN (SELECT net FROM %s)) END",
	              table, table, table);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db, sql, &st, err) < 0)
		return -1;
	r = db_step_row(c->db, st, err);
	if (r <= 0)
		return r < 0 ? -1 : kerr_set(err, KERR_INTERNAL, "no net number for %s", table);
	*out = (unsigned)sqlite3_column_int64(st, 0);
	return 0;
}

#define VPC_COLUMNS "id, region, owner, cidr, is_default, created_ms, net FROM vpcs "

static void vpc_from_row(sqlite3_stmt *st, void *element)
{
	struct vpc *v = element;

	memset(v, 0, sizeof(*v));
	str_copy(v->id, db_text(st, 0), sizeof(v->id));
	str_copy(v->region, db_text(st, 1), sizeof(v->region));
	str_copy(v->owner, db_text(st, 2), sizeof(v->owner));
	str_copy(v->cidr, db_text(st, 3), sizeof(v->cidr));
	v->is_default = sqlite3_column_int(st, 4) != 0;
	v->created_ms = sqlite3_column_int64(st, 5);
	v->net = (unsigned)sqlite3_column_int64(st, 6);
}

#define SUBNET_COLUMNS                                                                             \
	"s.id, s.vpc, s.region, s.zone, z.zone_id, s.owner, s.cidr, s.map_public, s.is_default, "  \
	"s.created_ms, s.net, (SELECT COUNT(*) FROM instances i WHERE i.subnet = s.id AND "        \
	"i.state != 'terminated') FROM subnets s JOIN zones z ON z.name = s.zone "

/* Addresses of a prefix EC2 lets instances have: all but the first four and the last. */
static uint64_t usable(const struct net_prefix *p)
{
	uint64_t all = (uint64_t)1 << (32 - p->len);

	return all > 5 ? all - 5 : 0;
}

static void subnet_from_row(sqlite3_stmt *st, void *element)
{
	struct subnet *s = element;

	struct net_prefix p;
	uint64_t used = (uint64_t)sqlite3_column_int64(st, 11);

	memset(s, 0, sizeof(*s));
	str_copy(s->id, db_text(st, 0), sizeof(s->id));
	str_copy(s->vpc, db_text(st, 1), sizeof(s->vpc));
	str_copy(s->region, db_text(st, 2), sizeof(s->region));
	str_copy(s->zone, db_text(st, 3), sizeof(s->zone));
	str_copy(s->zone_id, db_text(st, 4), sizeof(s->zone_id));
	str_copy(s->owner, db_text(st, 5), sizeof(s->owner));
	str_copy(s->cidr, db_text(st, 6), sizeof(s->cidr));
	s->map_public = sqlite3_column_int(st, 7) != 0;
	s->is_default = sqlite3_column_int(st, 8) != 0;
	s->created_ms = sqlite3_column_int64(st, 9);
	s->net = (unsigned)sqlite3_column_int64(st, 10);
	if (net_prefix_parse(s->cidr, &p, NULL) == 0)
		s->available = usable(&p) > used ? usable(&p) - used : 0;
}

static int vpc_not_found(const char *id, struct kerr **err)
{
	return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_VPC, id, "vpc '%s' not found", id);
}

static int subnet_not_found(const char *id, struct kerr **err)
{
	return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_SUBNET, id, "subnet '%s' not found",
	                  id);
}

/* 0 when fewer than max rows answer sql (a COUNT), else KERR_LIMIT about subject. */
int cloud_under_limit(struct cloud *c, const char *sql, const char *arg1, const char *arg2,
                      long max, enum kerr_subject subject, const char *what, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db, sql, &st, err) < 0)
		return -1;
	db_bind_text(st, 1, arg1);
	if (arg2)
		db_bind_text(st, 2, arg2);
	r = db_step_row(c->db, st, err);
	if (r < 0)
		return -1;
	if (r == 1 && sqlite3_column_int64(st, 0) >= max)
		return kerr_about(err, KERR_LIMIT, subject, NULL,
		                  "the maximum number of %s (%ld) has been reached", what, max);
	return 0;
}

/* A new VPC row and its default group, inside the caller's transaction. */
static int vpc_insert(struct cloud *c, const char *owner, const char *region, const char *cidr,
                      bool is_default, struct vpc *out, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	memset(out, 0, sizeof(*out));
	id_new("vpc", out->id);
	str_copy(out->region, region, sizeof(out->region));
	str_copy(out->owner, owner, sizeof(out->owner));
	str_copy(out->cidr, cidr, sizeof(out->cidr));
	out->is_default = is_default;
	out->created_ms = cloud_now_ms();
	if (cloud_under_limit(c, "SELECT COUNT(*) FROM vpcs WHERE owner = ? AND region = ?", owner,
	                      region, VPCS_PER_REGION, KERR_SUBJECT_VPC, "VPCs", err) < 0 ||
	    next_net(c, "vpcs", &out->net, err) < 0 ||
	    db_prepare(c->db,
	               "INSERT INTO vpcs (id, region, owner, cidr, is_default, created_ms, net) "
	               "VALUES (?, ?, ?, ?, ?, ?, ?)",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, out->id);
	db_bind_text(st, 2, region);
	db_bind_text(st, 3, owner);
	db_bind_text(st, 4, cidr);
	sqlite3_bind_int(st, 5, is_default);
	sqlite3_bind_int64(st, 6, out->created_ms);
	sqlite3_bind_int64(st, 7, out->net);
	if (db_step_done(c->db, st, err) < 0)
		return -1;
	return cloud_group_insert_default(c, out, err);
}

static int subnet_insert(struct cloud *c, const struct vpc *v, const struct zone *z,
                         const char *cidr, bool map_public, bool is_default, struct subnet *out,
                         struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	struct net_prefix p;

	memset(out, 0, sizeof(*out));
	id_new("subnet", out->id);
	str_copy(out->vpc, v->id, sizeof(out->vpc));
	str_copy(out->region, v->region, sizeof(out->region));
	str_copy(out->zone, z->name, sizeof(out->zone));
	str_copy(out->zone_id, z->zone_id, sizeof(out->zone_id));
	str_copy(out->owner, v->owner, sizeof(out->owner));
	str_copy(out->cidr, cidr, sizeof(out->cidr));
	out->map_public = map_public;
	out->is_default = is_default;
	out->created_ms = cloud_now_ms();
	if (net_prefix_parse(cidr, &p, err) < 0)
		return -1;
	out->available = usable(&p);
	if (cloud_under_limit(c, "SELECT COUNT(*) FROM subnets WHERE vpc = ?", v->id, NULL,
	                      SUBNETS_PER_VPC, KERR_SUBJECT_SUBNET, "subnets", err) < 0 ||
	    next_net(c, "subnets", &out->net, err) < 0 ||
	    db_prepare(c->db,
	               "INSERT INTO subnets (id, vpc, region, zone, owner, cidr, map_public, "
	               "is_default, created_ms, net) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, out->id);
	db_bind_text(st, 2, v->id);
	db_bind_text(st, 3, v->region);
	db_bind_text(st, 4, z->name);
	db_bind_text(st, 5, v->owner);
	db_bind_text(st, 6, cidr);
	sqlite3_bind_int(st, 7, map_public);
	sqlite3_bind_int(st, 8, is_default);
	sqlite3_bind_int64(st, 9, out->created_ms);
	sqlite3_bind_int64(st, 10, out->net);
	return db_step_done(c->db, st, err);
}

/* The default VPC, its subnets (the zones' /20s, public addresses mapped) and its group, inside
 * the caller's transaction; the instances recorded before VPCs existed join it. */
static int make_default(struct cloud *c, const char *owner, const char *region, struct vpc *out,
                        struct kerr **err)
{
	struct topology t;
	char gid[ID_MAX] = "";
	int r = 0;

	if (vpc_insert(c, owner, region, DEFAULT_VPC_CIDR, true, out, err) < 0 ||
	    cloud_regions(c, &t, err) < 0)
		return -1;
	for (size_t i = 0; i < t.nzones && r == 0; i++) {
		struct subnet s;
		if (strcmp(t.zones[i].region, region))
			continue;
		r = subnet_insert(c, out, &t.zones[i], t.zones[i].subnet, true, true, &s, err);
		if (r == 0)
			r = cloud_sql_run(
			    c, err,
			    "UPDATE instances SET vpc = ?1, subnet = ?2 WHERE owner = ?3 "
			    "AND region = ?4 AND zone = ?5 AND "
			    "(subnet IS NULL OR subnet = '')",
			    5, out->id, s.id, owner, region, t.zones[i].name);
	}
	topology_release(&t);
	if (r < 0)
		return -1;
	{
		_cleanup_stmt_ sqlite3_stmt *st = NULL;
		if (db_prepare(c->db,
		               "SELECT id FROM security_groups WHERE vpc = ? AND name = 'default'",
		               &st, err) < 0)
			return -1;
		db_bind_text(st, 1, out->id);
		r = db_step_row(c->db, st, err);
		if (r <= 0)
			return r < 0 ? -1
			             : kerr_set(err, KERR_INTERNAL, "vpc '%s' has no default group",
			                        out->id);
		str_copy(gid, db_text(st, 0), sizeof(gid));
	}
	if (cloud_sql_run(
	        c, err,
	        "INSERT OR IGNORE INTO instance_groups (instance, grp) SELECT id, ?1 FROM "
	        "instances WHERE vpc = ?2 AND id NOT IN (SELECT instance FROM "
	        "instance_groups)",
	        2, gid, out->id) < 0)
		return -1;
	return cloud_sql_run(c, err,
	                     "INSERT OR IGNORE INTO vpc_defaults (owner, region) VALUES (?, ?)", 2,
	                     owner, region);
}

int cloud_vpc_default_ensure(struct cloud *c, const char *owner, const char *region,
                             struct kerr **err)
{
	const char *sql = "SELECT 1 FROM vpc_defaults WHERE owner = ? AND region = ?";
	struct vpc v;
	int r = cloud_sql_exists(c, err, sql, 2, owner, region);

	if (r != 0)
		return r < 0 ? -1 : 0;
	if (db_begin(c->db, err) < 0)
		return -1;
	/* Another request may have made it meanwhile. */
	r = cloud_sql_exists(c, err, sql, 2, owner, region);
	if (r == 0)
		r = make_default(c, owner, region, &v, err);
	if (r < 0) {
		db_rollback(c->db);
		return -1;
	}
	return db_commit(c->db, err);
}

int cloud_vpcs_list(struct cloud *c, const char *owner, const char *region, struct vpc **out,
                    size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	void *rows;

	if (cloud_vpc_default_ensure(c, owner, region, err) < 0 ||
	    db_prepare(c->db,
	               "SELECT " VPC_COLUMNS
	               "WHERE owner = ? AND region = ? ORDER BY created_ms, id",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, owner);
	db_bind_text(st, 2, region);
	if (cloud_rows(c, st, sizeof(**out), vpc_from_row, &rows, n, err) < 0)
		return -1;
	*out = rows;
	return 0;
}

int cloud_vpc_get(struct cloud *c, const char *owner, const char *region, const char *id,
                  struct vpc *out, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db, "SELECT " VPC_COLUMNS "WHERE id = ? AND owner = ? AND region = ?",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, id);
	db_bind_text(st, 2, owner);
	db_bind_text(st, 3, region);
	r = db_step_row(c->db, st, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return vpc_not_found(id, err);
	vpc_from_row(st, out);
	return 0;
}

int cloud_vpc_default(struct cloud *c, const char *owner, const char *region, struct vpc *out,
                      struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (cloud_vpc_default_ensure(c, owner, region, err) < 0 ||
	    db_prepare(c->db, "SELECT " VPC_COLUMNS "WHERE owner = ? AND region = ? AND is_default",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, owner);
	db_bind_text(st, 2, region);
	r = db_step_row(c->db, st, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_DEFAULT_VPC, NULL,
		                  "no default VPC for this account in %s", region);
	vpc_from_row(st, out);
	return 0;
}

/* A network prefix of /min_len to /max_len (EC2: /16 to /28). */
static int block_parse(const char *cidr, enum kerr_subject subject, struct net_prefix *p,
                       struct kerr **err)
{
	if (!cidr || net_prefix_parse(cidr, p, NULL) < 0 || !net_prefix_is_network(p) ||
	    !strchr(cidr, '/'))
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_NONE, cidr,
		                  "value (%s) for parameter cidrBlock is invalid: this is not a "
		                  "valid CIDR block",
		                  cidr ? cidr : "");
	if (p->len < 16 || p->len > 28)
		return kerr_about(err, KERR_INVALID, subject, cidr,
		                  "the CIDR '%s' is invalid: a block is a /16 to a /28", cidr);
	return 0;
}

int cloud_vpc_create(struct cloud *c, const char *owner, const char *region, const char *cidr,
                     const struct tag *tags, size_t ntags, struct vpc *out, struct kerr **err)
{
	struct net_prefix p;
	char norm[24];

	if (block_parse(cidr, KERR_SUBJECT_VPC_RANGE, &p, err) < 0)
		return -1;
	net_prefix_format(&p, norm, sizeof(norm));
	if (cloud_vpc_default_ensure(c, owner, region, err) < 0 || db_begin(c->db, err) < 0)
		return -1;
	if (vpc_insert(c, owner, region, norm, false, out, err) < 0 ||
	    cloud_tags_put(c, owner, region, out->id, tags, ntags, err) < 0) {
		db_rollback(c->db);
		return -1;
	}
	return db_commit(c->db, err);
}

int cloud_vpc_create_default(struct cloud *c, const char *owner, const char *region,
                             struct vpc *out, struct kerr **err)
{
	int r;

	if (cloud_vpc_default_ensure(c, owner, region, err) < 0 || db_begin(c->db, err) < 0)
		return -1;
	r = cloud_sql_exists(c, err,
	                     "SELECT 1 FROM vpcs WHERE owner = ? AND region = ? AND is_default", 2,
	                     owner, region);
	if (r == 1)
		kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_DEFAULT_VPC, NULL,
		           "a default VPC already exists for this account in %s", region);
	if (r != 0 || make_default(c, owner, region, out, err) < 0) {
		db_rollback(c->db);
		return -1;
	}
	return db_commit(c->db, err);
}

int cloud_vpc_delete(struct cloud *c, const char *owner, const char *region, const char *id,
                     struct kerr **err)
{
	struct vpc v;
	int r;

	if (cloud_vpc_default_ensure(c, owner, region, err) < 0 || db_begin(c->db, err) < 0)
		return -1;
	if (cloud_vpc_get(c, owner, region, id, &v, err) < 0)
		goto on_error;
	r = cloud_sql_exists(
	    c, err,
	    "SELECT 1 FROM subnets WHERE vpc = ?1 UNION ALL SELECT 1 FROM instances "
	    "WHERE vpc = ?1 AND state != 'terminated' UNION ALL SELECT 1 FROM "
	    "security_groups WHERE vpc = ?1 AND name != 'default'",
	    1, id);
	if (r == 1)
		kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_VPC, id,
		           "the vpc '%s' has dependencies and cannot be deleted", id);
	if (r != 0)
		goto on_error;
	if (cloud_sql_run(c, err,
	                  "DELETE FROM tags WHERE resource = ?1 OR resource IN (SELECT id FROM "
	                  "security_groups WHERE vpc = ?1)",
	                  1, id) < 0 ||
	    cloud_sql_run(c, err,
	                  "DELETE FROM sg_rules WHERE grp IN (SELECT id FROM security_groups WHERE "
	                  "vpc = ?1)",
	                  1, id) < 0 ||
	    cloud_sql_run(c, err, "DELETE FROM security_groups WHERE vpc = ?", 1, id) < 0 ||
	    cloud_sql_run(c, err, "DELETE FROM vpcs WHERE id = ?", 1, id) < 0 ||
	    db_commit(c->db, err) < 0)
		goto on_error;
	/* Its namespace, if an instance ever made one; one left behind is taken over by the next
	 * VPC of its number. */
	{
		_cleanup_kerr_ struct kerr *why = NULL;

		if (vpc_network_delete(c, v.net, &why) < 0)
			cloud_log_failure(id, why, "cannot remove the vpc's network");
	}
	return 0;

on_error:
	db_rollback(c->db);
	return -1;
}

int cloud_subnets_list(struct cloud *c, const char *owner, const char *region, struct subnet **out,
                       size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	void *rows;

	if (cloud_vpc_default_ensure(c, owner, region, err) < 0 ||
	    db_prepare(c->db,
	               "SELECT " SUBNET_COLUMNS "WHERE s.owner = ? AND s.region = ? "
	               "ORDER BY s.created_ms, s.cidr",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, owner);
	db_bind_text(st, 2, region);
	if (cloud_rows(c, st, sizeof(**out), subnet_from_row, &rows, n, err) < 0)
		return -1;
	*out = rows;
	return 0;
}

int cloud_subnet_get(struct cloud *c, const char *owner, const char *region, const char *id,
                     struct subnet *out, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db,
	               "SELECT " SUBNET_COLUMNS "WHERE s.id = ? AND s.owner = ? AND s.region = ?",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, id);
	db_bind_text(st, 2, owner);
	db_bind_text(st, 3, region);
	r = db_step_row(c->db, st, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return subnet_not_found(id, err);
	subnet_from_row(st, out);
	return 0;
}

static bool overlap(const struct net_prefix *a, const struct net_prefix *b)
{
	return net_prefix_contains(a, b->addr) || net_prefix_contains(b, a->addr);
}

int cloud_subnet_create(struct cloud *c, const char *owner, const struct subnet_request *req,
                        struct subnet *out, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	struct net_prefix p, vp;
	struct topology t;
	struct zone z;
	struct vpc v;
	char norm[24];
	int r = -1;

	if (block_parse(req->cidr, KERR_SUBJECT_SUBNET_RANGE, &p, err) < 0)
		return -1;
	net_prefix_format(&p, norm, sizeof(norm));
	if (cloud_regions(c, &t, err) < 0)
		return -1;
	for (size_t i = 0; i < t.nzones && r < 0; i++) {
		const struct zone *it = &t.zones[i];
		if (strcmp(it->region, req->region) || (req->zone && strcmp(it->name, req->zone)) ||
		    (req->zone_id && strcmp(it->zone_id, req->zone_id)))
			continue;
		z = *it;
		r = 0;
	}
	topology_release(&t);
	if (r < 0) {
		const char *want = req->zone ? req->zone : req->zone_id;
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_ZONE, want,
		                  "invalid availability zone '%s'", want ? want : "");
	}
	if (cloud_vpc_default_ensure(c, owner, req->region, err) < 0 || db_begin(c->db, err) < 0)
		return -1;
	if (cloud_vpc_get(c, owner, req->region, req->vpc, &v, err) < 0 ||
	    net_prefix_parse(v.cidr, &vp, err) < 0)
		goto on_error;
	if (!net_prefix_contains(&vp, p.addr) || p.len < vp.len) {
		kerr_about(err, KERR_INVALID, KERR_SUBJECT_SUBNET_RANGE, norm,
		           "the CIDR '%s' is not inside the VPC's %s", norm, v.cidr);
		goto on_error;
	}
	if (db_prepare(c->db, "SELECT cidr FROM subnets WHERE vpc = ?", &st, err) < 0)
		goto on_error;
	db_bind_text(st, 1, v.id);
	while ((r = db_step_row(c->db, st, err)) == 1) {
		struct net_prefix other;
		if (net_prefix_parse(db_text(st, 0), &other, NULL) == 0 && overlap(&p, &other)) {
			kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_SUBNET_RANGE, norm,
			           "the CIDR '%s' conflicts with another subnet (%s)", norm,
			           db_text(st, 0));
			goto on_error;
		}
	}
	if (r < 0 || subnet_insert(c, &v, &z, norm, false, false, out, err) < 0 ||
	    cloud_tags_put(c, owner, req->region, out->id, req->tags, req->ntags, err) < 0)
		goto on_error;
	return db_commit(c->db, err);

on_error:
	db_rollback(c->db);
	return -1;
}

int cloud_subnet_delete(struct cloud *c, const char *owner, const char *region, const char *id,
                        struct kerr **err)
{
	struct subnet s;
	int r;

	if (db_begin(c->db, err) < 0)
		return -1;
	if (cloud_subnet_get(c, owner, region, id, &s, err) < 0)
		goto on_error;
	r = cloud_sql_exists(
	    c, err, "SELECT 1 FROM instances WHERE subnet = ? AND state != 'terminated'", 1, id);
	if (r == 1)
		kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_SUBNET, id,
		           "the subnet '%s' has dependencies and cannot be deleted", id);
	if (r != 0 || cloud_sql_run(c, err, "DELETE FROM tags WHERE resource = ?", 1, id) < 0 ||
	    cloud_sql_run(c, err, "DELETE FROM subnets WHERE id = ?", 1, id) < 0)
		goto on_error;
	return db_commit(c->db, err);

on_error:
	db_rollback(c->db);
	return -1;
}

int cloud_subnet_map_public(struct cloud *c, const char *owner, const char *region, const char *id,
                            bool map, struct kerr **err)
{
	struct subnet s;

	if (cloud_subnet_get(c, owner, region, id, &s, err) < 0)
		return -1;
	return cloud_sql_run(c, err, "UPDATE subnets SET map_public = ?1 WHERE id = ?2", 2,
	                     map ? "1" : "0", id);
}

int cloud_subnet_address(struct cloud *c, const struct subnet *s, const char *ip, char out[16],
                         struct kerr **err)
{
	const char *sql = "SELECT 1 FROM instances WHERE subnet = ? AND private_ip = ? AND "
	                  "state != 'terminated'";
	struct net_prefix p;
	uint32_t base, count;

	if (net_prefix_parse(s->cidr, &p, err) < 0)
		return -1;
	base = ntohl(p.addr.s_addr);
	count = p.len >= 32 ? 1 : (uint32_t)(1ull << (32 - p.len));
	if (ip && ip[0]) {
		struct in_addr a;
		uint32_t host;
		int r;

		if (net_addr_parse(ip, &a, NULL) < 0 || !net_prefix_contains(&p, a))
			return kerr_about(err, KERR_INVALID, KERR_SUBJECT_ADDRESS, ip,
			                  "address %s does not fall within the subnet's address "
			                  "range (%s)",
			                  ip, s->cidr);
		host = ntohl(a.s_addr) - base;
		if (host < 4 || host + 1 >= count)
			return kerr_about(err, KERR_INVALID, KERR_SUBJECT_ADDRESS, ip,
			                  "address %s is in subnet's reserved address range", ip);
		r = cloud_sql_exists(c, err, sql, 2, s->id, ip);
		if (r < 0)
			return -1;
		if (r == 1)
			return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_ADDRESS, ip,
			                  "address %s is in use", ip);
		inet_ntop(AF_INET, &a, out, 16);
		return 0;
	}
	for (uint32_t host = 4; host + 1 < count; host++) {
		struct in_addr a = {.s_addr = htonl(base + host)};
		char text[INET_ADDRSTRLEN];
		int r;

		inet_ntop(AF_INET, &a, text, sizeof(text));
		r = cloud_sql_exists(c, err, sql, 2, s->id, text);
		if (r < 0)
			return -1;
		if (r == 0) {
			str_copy(out, text, 16);
			return 0;
		}
	}
	return kerr_about(err, KERR_LIMIT, KERR_SUBJECT_ADDRESS, s->id,
	                  "no free address in subnet '%s' (%s)", s->id, s->cidr);
}

int cloud_public_range(struct cloud *c, char out[24], struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db, "SELECT value FROM settings WHERE name = 'public-addresses'", &st,
	               err) < 0)
		return -1;
	r = db_step_row(c->db, st, err);
	if (r < 0)
		return -1;
	str_copy(out, r ? db_text(st, 0) : "", 24);
	return 0;
}

int cloud_public_range_set(struct cloud *c, const char *range, struct kerr **err)
{
	return cloud_sql_run(c, err,
	                     "INSERT OR REPLACE INTO settings (name, value) VALUES "
	                     "('public-addresses', ?)",
	                     1, range);
}

int cloud_public_address_assign(struct cloud *c, const char *id, struct kerr **err)
{
	struct net_prefix p;
	char range[24];
	uint32_t base, count;

	if (cloud_public_range(c, range, err) < 0)
		return -1;
	if (!range[0])
		return kerr_set(err, KERR_LIMIT, "no range of public addresses chosen yet");
	if (net_prefix_parse(range, &p, err) < 0)
		return -1;
	base = ntohl(p.addr.s_addr);
	count = p.len >= 32 ? 1 : (uint32_t)(1ull << (32 - p.len));
	/* The first and the last address of the range are its network's and broadcast's. */
	for (uint32_t host = 1; host + 1 < count; host++) {
		struct in_addr a = {.s_addr = htonl(base + host)};
		char text[INET_ADDRSTRLEN];
		int r;

		inet_ntop(AF_INET, &a, text, sizeof(text));
		r = cloud_sql_exists(c, err, "SELECT 1 FROM instances WHERE public_ip = ?", 1,
		                     text);
		if (r < 0)
			return -1;
		if (r == 0)
			return cloud_sql_run(c, err,
			                     "UPDATE instances SET public_ip = ?1 WHERE id = ?2", 2,
			                     text, id);
	}
	/* The host's capacity, not the subnet's: RunInstances says InsufficientInstanceCapacity. */
	return kerr_set(err, KERR_LIMIT, "no free public address in the host's range %s", range);
}

int cloud_launch_network(struct cloud *c, const char *owner, const struct run_request *req,
                         struct launch_net *out, struct kerr **err)
{
	struct subnet *s = &out->subnet;
	struct vpc v;

	memset(out, 0, sizeof(*out));
	if (req->private_ip && req->private_ip[0] && req->max_count > 1)
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_COMBINATION, NULL,
		                  "a private IP address can be given for one instance only "
		                  "(MaxCount 1)");
	if (cloud_vpc_default_ensure(c, owner, req->region, err) < 0)
		return -1;
	if (req->subnet) {
		if (cloud_subnet_get(c, owner, req->region, req->subnet, s, err) < 0)
			return -1;
		if (req->zone && strcmp(req->zone, s->zone))
			return kerr_about(err, KERR_INVALID, KERR_SUBJECT_COMBINATION, NULL,
			                  "subnet '%s' is in %s, not in %s", s->id, s->zone,
			                  req->zone);
	} else {
		_cleanup_stmt_ sqlite3_stmt *st = NULL;
		struct zone z;
		int r;

		if (cloud_vpc_default(c, owner, req->region, &v, err) < 0 ||
		    cloud_find_zone(c, req->region, req->zone, &z, err) < 0 ||
		    db_prepare(c->db,
		               "SELECT id FROM subnets WHERE vpc = ? AND zone = ? AND is_default",
		               &st, err) < 0)
			return -1;
		db_bind_text(st, 1, v.id);
		db_bind_text(st, 2, z.name);
		r = db_step_row(c->db, st, err);
		if (r < 0)
			return -1;
		if (r == 0)
			return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_DEFAULT_VPC, NULL,
			                  "no default subnet for availability zone %s", z.name);
		if (cloud_subnet_get(c, owner, req->region, db_text(st, 0), s, err) < 0)
			return -1;
	}
	if (cloud_vpc_get(c, owner, req->region, s->vpc, &v, err) < 0)
		return -1;
	if (req->ngroup_names && !v.is_default)
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_COMBINATION, NULL,
		                  "security group names are for the default VPC; name the groups "
		                  "of %s by id (SecurityGroupId)",
		                  v.id);
	for (size_t i = 0; i < req->ngroup_ids + req->ngroup_names; i++) {
		bool by_id = i < req->ngroup_ids;
		const char *want =
		    by_id ? req->group_ids[i] : req->group_names[i - req->ngroup_ids];
		struct security_group g;
		bool again = false;

		if (cloud_group_find(c, owner, req->region, by_id ? want : NULL,
		                     by_id ? NULL : want, v.id, &g, err) < 0)
			return -1;
		if (strcmp(g.vpc, v.id))
			return kerr_about(err, KERR_INVALID, KERR_SUBJECT_NONE, g.id,
			                  "security group '%s' and subnet '%s' belong to different "
			                  "networks",
			                  g.id, s->id);
		for (size_t k = 0; k < out->ngroups; k++)
			again = again || !strcmp(out->groups[k], g.id);
		if (again)
			continue;
		if (out->ngroups == SG_PER_INSTANCE)
			return kerr_set(err, KERR_INVALID,
			                "an instance has at most %d security groups",
			                SG_PER_INSTANCE);
		str_copy(out->groups[out->ngroups++], g.id, ID_MAX);
	}
	if (!out->ngroups) {
		struct security_group g;
		if (cloud_group_find(c, owner, req->region, NULL, "default", v.id, &g, err) < 0)
			return -1;
		str_copy(out->groups[out->ngroups++], g.id, ID_MAX);
	}
	out->public_ip = req->public_ip >= 0 ? req->public_ip > 0 : s->map_public;
	return 0;
}
