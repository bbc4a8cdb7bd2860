/* Security groups: their records, their rules with EC2's checks (protocols, ports, duplicates,
 * references between groups), the default group of each VPC and the groups of instances. Each
 * committed change tells the VPC's filter (vpc_filter_changed), which enforces them. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/net.h"
#include "util/cleanup.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define GROUP_COLUMNS "id, vpc, region, owner, name, description FROM security_groups "

static void group_from_row(sqlite3_stmt *st, void *element)
{
	struct security_group *g = element;

	memset(g, 0, sizeof(*g));
	str_copy(g->id, db_text(st, 0), sizeof(g->id));
	str_copy(g->vpc, db_text(st, 1), sizeof(g->vpc));
	str_copy(g->region, db_text(st, 2), sizeof(g->region));
	str_copy(g->owner, db_text(st, 3), sizeof(g->owner));
	str_copy(g->name, db_text(st, 4), sizeof(g->name));
	str_copy(g->description, db_text(st, 5), sizeof(g->description));
}

static int group_not_found(const char *what, struct kerr **err)
{
	return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_GROUP, what,
	                  "security group '%s' not found", what);
}

static int rule_insert(struct cloud *c, const char *group, const struct sg_rule *r, char id[ID_MAX],
                       struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	id_new("sgr", id);
	if (db_prepare(c->db,
	               "INSERT INTO sg_rules (id, grp, egress, protocol, from_port, to_port, cidr, "
	               "ref_group, description) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, id);
	db_bind_text(st, 2, group);
	sqlite3_bind_int(st, 3, r->egress);
	db_bind_text(st, 4, r->protocol);
	sqlite3_bind_int(st, 5, r->from_port);
	sqlite3_bind_int(st, 6, r->to_port);
	db_bind_text(st, 7, r->cidr[0] ? r->cidr : NULL);
	db_bind_text(st, 8, r->ref_group[0] ? r->ref_group : NULL);
	db_bind_text(st, 9, r->description);
	return db_step_done(c->db, st, err);
}

/* A group row with EC2's first rule (all outbound), inside the caller's transaction. */
static int group_insert(struct cloud *c, const struct vpc *v, const char *name,
                        const char *description, struct security_group *out, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	struct sg_rule all_out = {
	    .egress = true, .protocol = "-1", .from_port = -1, .to_port = -1, .cidr = "0.0.0.0/0"};
	_cleanup_kerr_ struct kerr *why = NULL;
	char rid[ID_MAX];

	memset(out, 0, sizeof(*out));
	id_new("sg", out->id);
	str_copy(out->vpc, v->id, sizeof(out->vpc));
	str_copy(out->region, v->region, sizeof(out->region));
	str_copy(out->owner, v->owner, sizeof(out->owner));
	str_copy(out->name, name, sizeof(out->name));
	str_copy(out->description, description, sizeof(out->description));
	if (cloud_under_limit(c, "SELECT COUNT(*) FROM security_groups WHERE vpc = ?", v->id, NULL,
	                      GROUPS_PER_VPC, KERR_SUBJECT_GROUP, "security groups in the VPC",
	                      err) < 0)
		return -1;
	if (db_prepare(c->db,
	               "INSERT INTO security_groups (id, vpc, region, owner, name, description) "
	               "VALUES (?, ?, ?, ?, ?, ?)",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, out->id);
	db_bind_text(st, 2, v->id);
	db_bind_text(st, 3, v->region);
	db_bind_text(st, 4, v->owner);
	db_bind_text(st, 5, name);
	db_bind_text(st, 6, description);
	if (db_step_done(c->db, st, &why) < 0) {
		if (why->kind == KERR_CONFLICT)
			return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_GROUP_NAME, name,
			                  "the security group '%s' already exists for VPC '%s'",
			                  name, v->id);
		return kerr_pass(err, steal_ptr(why));
	}
	return rule_insert(c, out->id, &all_out, rid, err);
}

int cloud_group_insert_default(struct cloud *c, const struct vpc *v, struct kerr **err)
{
	struct security_group g;
	struct sg_rule self = {.protocol = "-1", .from_port = -1, .to_port = -1};
	char rid[ID_MAX];

	if (group_insert(c, v, "default", "default VPC security group", &g, err) < 0)
		return -1;
	str_copy(self.ref_group, g.id, sizeof(self.ref_group));
	return rule_insert(c, g.id, &self, rid, err);
}

int cloud_groups_list(struct cloud *c, const char *owner, const char *region,
                      struct security_group **out, size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	void *rows;

	if (cloud_vpc_default_ensure(c, owner, region, err) < 0 ||
	    db_prepare(c->db,
	               "SELECT " GROUP_COLUMNS "WHERE owner = ? AND region = ? ORDER BY rowid", &st,
	               err) < 0)
		return -1;
	db_bind_text(st, 1, owner);
	db_bind_text(st, 2, region);
	if (cloud_rows(c, st, sizeof(**out), group_from_row, &rows, n, err) < 0)
		return -1;
	*out = rows;
	return 0;
}

int cloud_group_find(struct cloud *c, const char *owner, const char *region, const char *id,
                     const char *name, const char *vpc, struct security_group *out,
                     struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	struct vpc v;
	int r;

	if (name && !vpc) {
		if (cloud_vpc_default(c, owner, region, &v, err) < 0)
			return -1;
		vpc = v.id;
	}
	if (db_prepare(c->db,
	               name ? "SELECT " GROUP_COLUMNS
	                      "WHERE name = ? AND owner = ? AND region = ? AND vpc = ?"
	                    : "SELECT " GROUP_COLUMNS "WHERE id = ? AND owner = ? AND region = ?",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, name ? name : id);
	db_bind_text(st, 2, owner);
	db_bind_text(st, 3, region);
	if (name)
		db_bind_text(st, 4, vpc);
	r = db_step_row(c->db, st, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return group_not_found(name ? name : id, err);
	group_from_row(st, out);
	return 0;
}

int cloud_group_create(struct cloud *c, const char *owner, const char *region, const char *vpc,
                       const char *name, const char *description, const struct tag *tags,
                       size_t ntags, struct security_group *out, struct kerr **err)
{
	struct vpc v;

	if (!name[0] || strlen(name) > SG_NAME_MAX || !strncmp(name, "sg-", 3))
		return kerr_set(err, KERR_INVALID,
		                "group names are 1 to 255 characters and do not start with 'sg-'");
	if (strlen(description) > SG_NAME_MAX)
		return kerr_set(err, KERR_INVALID, "group descriptions are at most 255 characters");
	if ((vpc ? cloud_vpc_get(c, owner, region, vpc, &v, err)
	         : cloud_vpc_default(c, owner, region, &v, err)) < 0 ||
	    db_begin(c->db, err) < 0)
		return -1;
	if (group_insert(c, &v, name, description, out, err) < 0 ||
	    cloud_tags_put(c, owner, region, out->id, tags, ntags, err) < 0) {
		db_rollback(c->db);
		return -1;
	}
	return db_commit(c->db, err);
}

int cloud_group_delete(struct cloud *c, const char *owner, const char *region, const char *id,
                       struct kerr **err)
{
	struct security_group g;
	int r;

	if (db_begin(c->db, err) < 0)
		return -1;
	if (cloud_group_find(c, owner, region, id, NULL, NULL, &g, err) < 0)
		goto on_error;
	if (!strcmp(g.name, "default")) {
		kerr_about(err, KERR_INVALID, KERR_SUBJECT_DEFAULT_GROUP, id,
		           "the default security group of a VPC cannot be deleted");
		goto on_error;
	}
	r = cloud_sql_exists(
	    c, err,
	    "SELECT 1 FROM instance_groups g JOIN instances i ON i.id = g.instance "
	    "WHERE g.grp = ?1 AND i.state != 'terminated' UNION ALL SELECT 1 FROM "
	    "sg_rules WHERE ref_group = ?1 AND grp != ?1",
	    1, id);
	if (r == 1)
		kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_GROUP, id,
		           "resource %s has a dependent object", id);
	if (r != 0 || cloud_sql_run(c, err, "DELETE FROM sg_rules WHERE grp = ?", 1, id) < 0 ||
	    cloud_sql_run(c, err, "DELETE FROM instance_groups WHERE grp = ?", 1, id) < 0 ||
	    cloud_sql_run(c, err, "DELETE FROM tags WHERE resource = ?", 1, id) < 0 ||
	    cloud_sql_run(c, err, "DELETE FROM security_groups WHERE id = ?", 1, id) < 0)
		goto on_error;
	if (db_commit(c->db, err) < 0)
		return -1;
	return vpc_filter_changed(c, g.vpc, err);

on_error:
	db_rollback(c->db);
	return -1;
}

#define RULE_COLUMNS                                                                               \
	"r.id, r.grp, r.egress, r.protocol, r.from_port, r.to_port, COALESCE(r.cidr, ''), "        \
	"COALESCE(r.ref_group, ''), r.description, g.owner FROM sg_rules r "

static void rule_from_row(sqlite3_stmt *st, void *element)
{
	struct sg_rule *r = element;

	memset(r, 0, sizeof(*r));
	str_copy(r->id, db_text(st, 0), sizeof(r->id));
	str_copy(r->group, db_text(st, 1), sizeof(r->group));
	r->egress = sqlite3_column_int(st, 2) != 0;
	str_copy(r->protocol, db_text(st, 3), sizeof(r->protocol));
	r->from_port = sqlite3_column_int(st, 4);
	r->to_port = sqlite3_column_int(st, 5);
	str_copy(r->cidr, db_text(st, 6), sizeof(r->cidr));
	str_copy(r->ref_group, db_text(st, 7), sizeof(r->ref_group));
	str_copy(r->description, db_text(st, 8), sizeof(r->description));
	str_copy(r->owner, db_text(st, 9), sizeof(r->owner));
}

int cloud_group_rules(struct cloud *c, const char *owner, const char *region, struct sg_rule **out,
                      size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	void *rows;

	if (db_prepare(c->db,
	               "SELECT " RULE_COLUMNS "JOIN security_groups g ON g.id = r.grp "
	               "WHERE g.owner = ? AND g.region = ? ORDER BY g.rowid, r.egress, r.rowid",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, owner);
	db_bind_text(st, 2, region);
	if (cloud_rows(c, st, sizeof(**out), rule_from_row, &rows, n, err) < 0)
		return -1;
	*out = rows;
	return 0;
}

static int malformed(struct kerr **err, const char *what)
{
	return kerr_about(err, KERR_INVALID, KERR_SUBJECT_PERMISSION, NULL, "%s", what);
}

/* EC2's normal form of a rule: the protocol's name for 6, 17 and 1, "-1" for all, ports -1
 * where the protocol has none; the cidr as a network. */
static int rule_normalize(struct sg_rule *r, struct kerr **err)
{
	static const char *const names[][2] = {
	    {"tcp", "6"}, {"udp", "17"}, {"icmp", "1"}, {"-1", "-1"}, {"-1", "all"}};
	char *end;
	long num;

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (!strcasecmp(r->protocol, names[i][0]) || !strcmp(r->protocol, names[i][1]))
			str_copy(r->protocol, names[i][0], sizeof(r->protocol));
	if (strcmp(r->protocol, "tcp") && strcmp(r->protocol, "udp") &&
	    strcmp(r->protocol, "icmp") && strcmp(r->protocol, "-1")) {
		num = strtol(r->protocol, &end, 10);
		if (!r->protocol[0] || *end || num < 0 || num > 255)
			return kerr_about(err, KERR_INVALID, KERR_SUBJECT_NONE, r->protocol,
			                  "invalid value '%s' for IP protocol: unknown protocol",
			                  r->protocol);
		snprintf(r->protocol, sizeof(r->protocol), "%ld", num);
	}
	if (!strcmp(r->protocol, "tcp") || !strcmp(r->protocol, "udp")) {
		if (r->from_port < 0 || r->to_port > 65535 || r->from_port > r->to_port)
			return malformed(err, "TCP and UDP ports are 0 to 65535, FromPort at most "
			                      "ToPort");
	} else if (!strcmp(r->protocol, "icmp")) {
		if (r->from_port < -1 || r->from_port > 255 || r->to_port < -1 || r->to_port > 255)
			return malformed(err, "ICMP types and codes are -1 (all) or 0 to 255");
	} else {
		r->from_port = r->to_port = -1; /* other protocols have no ports */
	}
	if (!!r->cidr[0] == !!r->ref_group[0])
		return malformed(err, "a rule names either a CIDR range or a group");
	if (r->cidr[0]) {
		struct net_prefix p;
		if (net_prefix_parse(r->cidr, &p, NULL) < 0 || !strchr(r->cidr, '/') ||
		    !net_prefix_is_network(&p))
			return kerr_about(err, KERR_INVALID, KERR_SUBJECT_NONE, r->cidr,
			                  "CIDR block %s is malformed", r->cidr);
	}
	return 0;
}

/* The id of the group's rule equal to r in value, or "" (*found 0). */
static int rule_find(struct cloud *c, const char *group, const struct sg_rule *r, char id[ID_MAX],
                     struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int found;

	if (db_prepare(c->db,
	               "SELECT id FROM sg_rules WHERE grp = ? AND egress = ? AND protocol = ? AND "
	               "from_port = ? AND to_port = ? AND COALESCE(cidr, '') = ? AND "
	               "COALESCE(ref_group, '') = ?",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, group);
	sqlite3_bind_int(st, 2, r->egress);
	db_bind_text(st, 3, r->protocol);
	sqlite3_bind_int(st, 4, r->from_port);
	sqlite3_bind_int(st, 5, r->to_port);
	db_bind_text(st, 6, r->cidr);
	db_bind_text(st, 7, r->ref_group);
	found = db_step_row(c->db, st, err);
	if (found == 1)
		str_copy(id, db_text(st, 0), ID_MAX);
	return found;
}

/* The referenced group of a rule: the owner's, in the same VPC. */
static int ref_check(struct cloud *c, const struct security_group *g, const struct sg_rule *r,
                     struct kerr **err)
{
	struct security_group ref;

	if (!r->ref_group[0])
		return 0;
	if (cloud_group_find(c, g->owner, g->region, r->ref_group, NULL, NULL, &ref, err) < 0)
		return -1;
	if (strcmp(ref.vpc, g->vpc))
		return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_GROUP, r->ref_group,
		                  "security group '%s' is not in the VPC of '%s'", r->ref_group,
		                  g->id);
	return 0;
}

int cloud_group_authorize(struct cloud *c, const char *owner, const char *region, const char *group,
                          bool egress, struct sg_rule *rules, size_t n, struct kerr **err)
{
	struct security_group g;

	if (!n)
		return malformed(err, "no rule given");
	for (size_t i = 0; i < n; i++) {
		rules[i].egress = egress;
		if (rule_normalize(&rules[i], err) < 0)
			return -1;
	}
	if (db_begin(c->db, err) < 0)
		return -1;
	if (cloud_group_find(c, owner, region, group, NULL, NULL, &g, err) < 0)
		goto on_error;
	for (size_t i = 0; i < n; i++) {
		char id[ID_MAX];
		int r;

		if (ref_check(c, &g, &rules[i], err) < 0)
			goto on_error;
		r = rule_find(c, g.id, &rules[i], id, err);
		if (r == 1)
			kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_PERMISSION, NULL,
			           "the specified rule (%s %d-%d %s) already exists as %s",
			           rules[i].protocol, rules[i].from_port, rules[i].to_port,
			           rules[i].cidr[0] ? rules[i].cidr : rules[i].ref_group, id);
		if (r != 0 ||
		    cloud_under_limit(
		        c, "SELECT COUNT(*) FROM sg_rules WHERE grp = ? AND egress = ?", g.id,
		        egress ? "1" : "0", RULES_PER_GROUP, KERR_SUBJECT_PERMISSION,
		        "rules of the group in that direction", err) < 0 ||
		    rule_insert(c, g.id, &rules[i], rules[i].id, err) < 0)
			goto on_error;
		str_copy(rules[i].group, g.id, sizeof(rules[i].group));
	}
	if (db_commit(c->db, err) < 0)
		return -1;
	return vpc_filter_changed(c, g.vpc, err);

on_error:
	db_rollback(c->db);
	return -1;
}

int cloud_group_revoke(struct cloud *c, const char *owner, const char *region, const char *group,
                       bool egress, const struct sg_rule *rules, size_t n, struct kerr **err)
{
	struct security_group g;

	if (!n)
		return malformed(err, "no rule given");
	if (db_begin(c->db, err) < 0)
		return -1;
	if (cloud_group_find(c, owner, region, group, NULL, NULL, &g, err) < 0)
		goto on_error;
	for (size_t i = 0; i < n; i++) {
		struct sg_rule r = rules[i];
		char id[ID_MAX];
		int found;

		r.egress = egress;
		if (r.id[0]) {
			char e[2] = {egress ? '1' : '0', 0};
			found = cloud_sql_exists(
			    c, err,
			    "SELECT 1 FROM sg_rules WHERE id = ? AND grp = ? AND egress = ?", 3,
			    r.id, g.id, e);
			if (found == 0)
				kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_GROUP_RULE, r.id,
				           "security group rule '%s' not found in '%s'", r.id,
				           g.id);
			str_copy(id, r.id, sizeof(id));
		} else {
			if (rule_normalize(&r, err) < 0)
				goto on_error;
			found = rule_find(c, g.id, &r, id, err);
			if (found == 0)
				kerr_about(
				    err, KERR_NOT_FOUND, KERR_SUBJECT_PERMISSION, NULL,
				    "the specified rule does not exist in this security group");
		}
		if (found != 1 ||
		    cloud_sql_run(c, err, "DELETE FROM sg_rules WHERE id = ?", 1, id) < 0)
			goto on_error;
	}
	if (db_commit(c->db, err) < 0)
		return -1;
	return vpc_filter_changed(c, g.vpc, err);

on_error:
	db_rollback(c->db);
	return -1;
}

int cloud_instance_load_groups(struct cloud *c, struct instance *in, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	in->ngroups = 0;
	if (db_prepare(c->db, "SELECT grp FROM instance_groups WHERE instance = ? ORDER BY rowid",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, in->id);
	while ((r = db_step_row(c->db, st, err)) == 1)
		if (in->ngroups < SG_PER_INSTANCE)
			str_copy(in->groups[in->ngroups++], db_text(st, 0), ID_MAX);
	return r < 0 ? -1 : 0;
}

static int by_id(const void *a, const void *b)
{
	const struct instance *const *x = a, *const *y = b;

	return strcmp((*x)->id, (*y)->id);
}

/* One query for the groups of every instance of the list, not one per instance: a whole list
 * of 1,000 instances made 1,000 statements each time the Describe answer was made again. */
int cloud_instances_load_groups(struct cloud *c, const char *owner, const char *region,
                                int64_t ended_after, struct instance *v, size_t n,
                                struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ struct instance **by = NULL;
	struct instance key, *kp = &key, **hit = NULL;
	int r;

	if (!n)
		return 0;
	by = xcalloc(n, sizeof(*by));
	for (size_t i = 0; i < n; i++) {
		v[i].ngroups = 0;
		by[i] = &v[i];
	}
	qsort(by, n, sizeof(*by), by_id);
	if (db_prepare(c->db,
	               "SELECT g.instance, g.grp FROM instance_groups g JOIN instances ON "
	               "instances.id = g.instance WHERE " CLOUD_INSTANCES_LISTED
	               " ORDER BY g.instance, g.rowid",
	               &st, err) < 0)
		return -1;
	cloud_instances_bind_listed(st, owner, region, ended_after);
	while ((r = db_step_row(c->db, st, err)) == 1) {
		const char *id = db_text(st, 0);
		struct instance *in;

		if (!hit || strcmp((*hit)->id, id)) {
			str_copy(key.id, id, sizeof(key.id));
			hit = bsearch(&kp, by, n, sizeof(*by), by_id);
		}
		if (!hit)
			continue; /* ended between the two queries */
		in = *hit;
		if (in->ngroups < SG_PER_INSTANCE)
			str_copy(in->groups[in->ngroups++], db_text(st, 1), ID_MAX);
	}
	return r < 0 ? -1 : 0;
}

int cloud_instance_set_groups(struct cloud *c, const char *owner, const char *region,
                              const char *instance, const char *const *groups, size_t n,
                              struct kerr **err)
{
	struct instance in;

	if (!n || n > SG_PER_INSTANCE)
		return kerr_set(err, KERR_INVALID, "an instance has 1 to %d security groups",
		                SG_PER_INSTANCE);
	if (cloud_instance_get(c, instance, &in, err) < 0)
		return -1;
	if (strcmp(in.owner, owner) || strcmp(in.region, region) ||
	    instance_state_parse(in.state) == INSTANCE_TERMINATED)
		return cloud_instance_not_found(instance, err);
	if (db_begin(c->db, err) < 0)
		return -1;
	if (cloud_sql_run(c, err, "DELETE FROM instance_groups WHERE instance = ?", 1, instance) <
	    0)
		goto on_error;
	for (size_t i = 0; i < n; i++) {
		struct security_group g;
		if (cloud_group_find(c, owner, region, groups[i], NULL, NULL, &g, err) < 0)
			goto on_error;
		if (strcmp(g.vpc, in.vpc)) {
			kerr_about(
			    err, KERR_INVALID, KERR_SUBJECT_NONE, g.id,
			    "security group '%s' and instance '%s' belong to different networks",
			    g.id, instance);
			goto on_error;
		}
		if (cloud_sql_run(
		        c, err,
		        "INSERT OR IGNORE INTO instance_groups (instance, grp) VALUES (?, ?)", 2,
		        instance, g.id) < 0)
			goto on_error;
	}
	if (db_commit(c->db, err) < 0)
		return -1;
	return vpc_filter_changed(c, in.vpc, err);

on_error:
	db_rollback(c->db);
	return -1;
}
