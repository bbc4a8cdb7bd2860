/* CreateSecurityGroup, DeleteSecurityGroup, DescribeSecurityGroups, DescribeSecurityGroupRules,
 * AuthorizeSecurityGroupIngress/Egress, RevokeSecurityGroupIngress/Egress: the IpPermissions
 * forms (and the legacy flat one) to rules, rules to EC2's two renderings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "util/cleanup.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

/* The group a request names: GroupId, or GroupName in the default VPC. */
static int named_group(struct api_call *c, struct security_group *g, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *id = api_node_str(&c->root, "GroupId"),
	           *name = api_node_str(&c->root, "GroupName");

	if (!id && !name) {
		api_error_missing_parameter(e, "GroupId");
		return -1;
	}
	if (id && !api_id_ok("sg", id, e))
		return -1;
	if (cloud_group_find(c->cloud, c->account.id, c->region, id, id ? NULL : name, NULL, g,
	                     &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	return 0;
}

int api_create_security_group(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ struct tag *tags = NULL;
	struct tag_set set = {0};
	struct security_group g;
	size_t ntags = 0;

	if (api_call_tag_specs(c, "security-group", &tags, &ntags, e) < 0)
		return -1;
	if (cloud_group_create(c->cloud, c->account.id, c->region, api_node_str(&c->root, "VpcId"),
	                       api_node_str(&c->root, "GroupName"),
	                       api_node_str(&c->root, "GroupDescription"), tags, ntags, &g,
	                       &err) < 0 ||
	    cloud_tags_list(c->cloud, c->account.id, c->region, &set, &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	api_xml_bool(c->xml, "return", true);
	api_xml_elem(c->xml, "groupId", g.id);
	api_write_tag_set(c->xml, &set, g.id);
	tag_set_release(&set);
	return 0;
}

int api_delete_security_group(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct security_group g;

	if (named_group(c, &g, e) < 0)
		return -1;
	if (cloud_group_delete(c->cloud, c->account.id, c->region, g.id, &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	api_xml_bool(c->xml, "return", true);
	api_xml_elem(c->xml, "groupId", g.id);
	return 0;
}

/* A rule as a SecurityGroupRule item. */
static void write_rule(struct api_xml *x, const struct sg_rule *r, const char *owner,
                       const struct tag_set *tags)
{
	api_xml_elem(x, "securityGroupRuleId", r->id);
	api_xml_elem(x, "groupId", r->group);
	api_xml_elem(x, "groupOwnerId", owner);
	api_xml_bool(x, "isEgress", r->egress);
	api_xml_elem(x, "ipProtocol", r->protocol);
	api_xml_int(x, "fromPort", r->from_port);
	api_xml_int(x, "toPort", r->to_port);
	if (r->cidr[0])
		api_xml_elem(x, "cidrIpv4", r->cidr);
	if (r->ref_group[0]) {
		api_xml_open(x, "referencedGroupInfo");
		api_xml_elem(x, "groupId", r->ref_group);
		api_xml_elem(x, "userId", owner);
		api_xml_close(x);
	}
	if (r->description[0])
		api_xml_elem(x, "description", r->description);
	if (tags)
		api_write_tag_set(x, tags, r->id);
}

/* One field of a permission, for the legacy flat form and for IpPermissions.N alike. */
static int permission_ports(const struct api_node *p, struct sg_rule *base, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *proto = api_node_str(p, "IpProtocol");
	int64_t from = -1, to = -1;

	if (!proto) {
		api_error_missing_parameter(e, "IpProtocol");
		return -1;
	}
	if ((api_node_present(p, "FromPort") &&
	     api_node_int(p, "FromPort", -1, 65535, &from, &err) < 0) ||
	    (api_node_present(p, "ToPort") &&
	     api_node_int(p, "ToPort", -1, 65535, &to, &err) < 0)) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		return -1;
	}
	if (strlen(proto) >= sizeof(base->protocol)) {
		api_error_set(e, "InvalidParameterValue",
		              "Invalid value '%.32s' for IP protocol. Unknown protocol.", proto);
		return -1;
	}
	str_copy(base->protocol, proto, sizeof(base->protocol));
	base->from_port = (int)from;
	base->to_port = (int)to;
	return 0;
}

static struct sg_rule *push(struct sg_rule **v, size_t *n, const struct sg_rule *base)
{
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[*n] = *base;
	return &(*v)[(*n)++];
}

static bool text_ok(const char *s, size_t max, struct api_error *e)
{
	if (s && strlen(s) > max) {
		api_error_set(e, "InvalidParameterValue", "'%.40s…' is too long (at most %zu)", s,
		              max);
		return false;
	}
	return true;
}

/* A referenced group by id, or by name in g's VPC. */
static int ref_group(struct api_call *c, const struct security_group *g, const char *id,
                     const char *name, struct sg_rule *r, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct security_group ref;

	if (id) {
		if (!api_id_ok("sg", id, e))
			return -1;
		str_copy(r->ref_group, id, sizeof(r->ref_group));
		return 0;
	}
	if (cloud_group_find(c->cloud, c->account.id, c->region, NULL, name, g->vpc, &ref, &err) <
	    0)
		return api_error_from_cloud(e, c->action, err), -1;
	str_copy(r->ref_group, ref.id, sizeof(r->ref_group));
	return 0;
}

/* The rules a request names: IpPermissions.N (one rule per range or group of each), the
 * legacy flat form, or (revoke) SecurityGroupRuleId.N. */
static int request_rules(struct api_call *c, const struct security_group *g, bool by_id,
                         struct sg_rule **out, size_t *n, struct api_error *e)
{
	size_t nperm = api_node_count(&c->root, "IpPermissions");
	struct sg_rule *v = NULL;
	struct sg_rule base;

	*n = 0;
	if (by_id) {
		_cleanup_free_ const char **ids = NULL;
		size_t nids;
		if (api_call_id_list(c, "SecurityGroupRuleId", "sgr", &ids, &nids, e) < 0)
			return -1;
		for (size_t i = 0; i < nids; i++) {
			memset(&base, 0, sizeof(base));
			str_copy(base.id, ids[i], sizeof(base.id));
			push(&v, n, &base);
		}
	}
	for (size_t i = 1; i <= nperm; i++) {
		struct api_node p;
		api_node_item(&c->root, "IpPermissions", i, &p);
		memset(&base, 0, sizeof(base));
		if (api_node_count(&p, "Ipv6Ranges") || api_node_count(&p, "PrefixListIds")) {
			api_error_set(e, "InvalidParameterValue",
			              "kiln's security groups take IPv4 ranges and groups only (no "
			              "IPv6 ranges, no prefix lists)");
			goto on_error;
		}
		if (permission_ports(&p, &base, e) < 0)
			goto on_error;
		for (size_t k = 1; k <= api_node_count(&p, "IpRanges"); k++) {
			struct api_node rg;
			struct sg_rule *r;
			const char *cidr, *desc;
			api_node_item(&p, "IpRanges", k, &rg);
			cidr = api_node_str(&rg, "CidrIp");
			desc = api_node_str(&rg, "Description");
			if (!cidr) {
				api_error_missing_parameter(e, "CidrIp");
				goto on_error;
			}
			if (!text_ok(cidr, 20, e) || !text_ok(desc, SG_NAME_MAX, e))
				goto on_error;
			r = push(&v, n, &base);
			str_copy(r->cidr, cidr, sizeof(r->cidr));
			str_copy(r->description, desc ? desc : "", sizeof(r->description));
		}
		for (size_t k = 1; k <= api_node_count(&p, "Groups"); k++) {
			struct api_node gp;
			struct sg_rule *r;
			const char *desc;
			api_node_item(&p, "Groups", k, &gp);
			desc = api_node_str(&gp, "Description");
			if (!text_ok(desc, SG_NAME_MAX, e))
				goto on_error;
			r = push(&v, n, &base);
			str_copy(r->description, desc ? desc : "", sizeof(r->description));
			if (!api_node_str(&gp, "GroupId") && !api_node_str(&gp, "GroupName")) {
				api_error_missing_parameter(e, "GroupId");
				goto on_error;
			}
			if (ref_group(c, g, api_node_str(&gp, "GroupId"),
			              api_node_str(&gp, "GroupName"), r, e) < 0)
				goto on_error;
		}
		if (!api_node_count(&p, "IpRanges") && !api_node_count(&p, "Groups"))
			push(&v, n, &base); /* names no source: refused as malformed */
	}
	if (!nperm && !*n &&
	    (api_node_present(&c->root, "IpProtocol") || api_node_present(&c->root, "CidrIp") ||
	     api_node_present(&c->root, "SourceSecurityGroupName"))) {
		const char *cidr = api_node_str(&c->root, "CidrIp"),
		           *src = api_node_str(&c->root, "SourceSecurityGroupName");
		struct sg_rule *r;
		memset(&base, 0, sizeof(base));
		if (src && !api_node_present(&c->root, "IpProtocol")) {
			/* A source group alone: all traffic from it, as EC2 reads it. */
			str_copy(base.protocol, "-1", sizeof(base.protocol));
			base.from_port = base.to_port = -1;
		} else if (permission_ports(&c->root, &base, e) < 0) {
			goto on_error;
		}
		if (!text_ok(cidr, 20, e))
			goto on_error;
		r = push(&v, n, &base);
		if (cidr)
			str_copy(r->cidr, cidr, sizeof(r->cidr));
		if (src && ref_group(c, g, NULL, src, r, e) < 0)
			goto on_error;
	}
	if (!*n) {
		api_error_missing_parameter(e, "IpPermissions");
		goto on_error;
	}
	*out = v;
	return 0;

on_error:
	free(v);
	*n = 0;
	return -1;
}

static int change_rules(struct api_call *c, struct api_error *e, bool egress, bool revoke)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ struct sg_rule *rules = NULL;
	struct security_group g;
	size_t n;

	if (egress && !api_node_str(&c->root, "GroupId")) {
		api_error_missing_parameter(e, "GroupId");
		return -1;
	}
	if (named_group(c, &g, e) < 0 || request_rules(c, &g, revoke, &rules, &n, e) < 0)
		return -1;
	if ((revoke ? cloud_group_revoke(c->cloud, c->account.id, c->region, g.id, egress, rules, n,
	                                 &err)
	            : cloud_group_authorize(c->cloud, c->account.id, c->region, g.id, egress, rules,
	                                    n, &err)) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	api_xml_bool(c->xml, "return", true);
	if (revoke)
		return 0;
	api_xml_open(c->xml, "securityGroupRuleSet");
	for (size_t i = 0; i < n; i++) {
		api_xml_item(c->xml);
		write_rule(c->xml, &rules[i], c->account.id, NULL);
		api_xml_open(c->xml, "tagSet");
		api_xml_close(c->xml);
		api_xml_close(c->xml);
	}
	api_xml_close(c->xml);
	return 0;
}

int api_authorize_security_group_ingress(struct api_call *c, struct api_error *e)
{
	return change_rules(c, e, false, false);
}

int api_authorize_security_group_egress(struct api_call *c, struct api_error *e)
{
	return change_rules(c, e, true, false);
}

int api_revoke_security_group_ingress(struct api_call *c, struct api_error *e)
{
	return change_rules(c, e, false, true);
}

int api_revoke_security_group_egress(struct api_call *c, struct api_error *e)
{
	return change_rules(c, e, true, true);
}

/* ipPermissions / ipPermissionsEgress: the group's rules of one direction, those with the same
 * protocol and ports as one permission with its ranges and groups. */
static void write_permissions(struct api_xml *x, const char *set, const struct sg_rule *rules,
                              size_t n, const char *group, bool egress, const char *owner)
{
	api_xml_open(x, set);
	for (size_t i = 0; i < n; i++) {
		const struct sg_rule *r = &rules[i];
		bool seen = false;

		if (strcmp(r->group, group) || r->egress != egress)
			continue;
		for (size_t k = 0; k < i && !seen; k++)
			seen = !strcmp(rules[k].group, group) && rules[k].egress == egress &&
			       !strcmp(rules[k].protocol, r->protocol) &&
			       rules[k].from_port == r->from_port && rules[k].to_port == r->to_port;
		if (seen)
			continue;
		api_xml_item(x);
		api_xml_elem(x, "ipProtocol", r->protocol);
		if (strcmp(r->protocol, "-1")) {
			api_xml_int(x, "fromPort", r->from_port);
			api_xml_int(x, "toPort", r->to_port);
		}
		for (int pass = 0; pass < 2; pass++) {
			api_xml_open(x, pass ? "ipRanges" : "groups");
			for (size_t k = i; k < n; k++) {
				const struct sg_rule *s = &rules[k];
				if (strcmp(s->group, group) || s->egress != egress ||
				    strcmp(s->protocol, r->protocol) ||
				    s->from_port != r->from_port || s->to_port != r->to_port ||
				    !(pass ? s->cidr[0] : s->ref_group[0]))
					continue;
				api_xml_item(x);
				if (pass) {
					api_xml_elem(x, "cidrIp", s->cidr);
				} else {
					api_xml_elem(x, "userId", owner);
					api_xml_elem(x, "groupId", s->ref_group);
				}
				if (s->description[0])
					api_xml_elem(x, "description", s->description);
				api_xml_close(x);
			}
			api_xml_close(x);
		}
		api_xml_open(x, "ipv6Ranges");
		api_xml_close(x);
		api_xml_open(x, "prefixListIds");
		api_xml_close(x);
		api_xml_close(x);
	}
	api_xml_close(x);
}

static const struct api_filter_field group_fields[] = {
    API_FIELD_TEXT_OF("group-id", struct security_group, id),
    API_FIELD_TEXT_OF("group-name", struct security_group, name),
    API_FIELD_TEXT_OF("vpc-id", struct security_group, vpc),
    API_FIELD_TEXT_OF("description", struct security_group, description),
    API_FIELD_TEXT_OF("owner-id", struct security_group, owner),
};

/* ip-permission.* and egress.ip-permission.*: some rule of the group in that direction has
 * the value. */
struct perm_match {
	const struct security_group *g;
	const struct sg_rule *rules;
	size_t n;
};

static int match_permission(void *ctx, const struct api_filter *f, struct kerr **err)
{
	const struct perm_match *m = ctx;
	bool egress = !strncmp(f->name, "egress.", 7);
	const char *field = f->name + (egress ? 7 : 0) + strlen("ip-permission.");

	for (size_t i = 0; i < m->n; i++) {
		const struct sg_rule *r = &m->rules[i];
		char from[16], to[16];
		const char *value;

		if (strcmp(r->group, m->g->id) || r->egress != egress)
			continue;
		snprintf(from, sizeof(from), "%d", r->from_port);
		snprintf(to, sizeof(to), "%d", r->to_port);
		if (!strcmp(field, "cidr"))
			value = r->cidr[0] ? r->cidr : NULL;
		else if (!strcmp(field, "protocol"))
			value = r->protocol;
		else if (!strcmp(field, "from-port"))
			value = from;
		else if (!strcmp(field, "to-port"))
			value = to;
		else if (!strcmp(field, "group-id"))
			value = r->ref_group[0] ? r->ref_group : NULL;
		else if (!strcmp(field, "user-id"))
			value = r->ref_group[0] ? m->g->owner : NULL;
		else
			return kerr_set(err, KERR_INVALID, "The filter '%s' is invalid", f->name);
		if (api_filter_match(f, value))
			return 1;
	}
	return 0;
}

static bool is_permission_filter(const char *name)
{
	return !strncmp(name, "ip-permission.", 14) || !strncmp(name, "egress.ip-permission.", 21);
}

int api_describe_security_groups(struct api_call *c, struct api_error *e)
{
	_cleanup_free_ const char **ids = NULL, **names = NULL;
	_cleanup_free_ struct security_group *v = NULL;
	_cleanup_free_ struct sg_rule *rules = NULL;
	_cleanup_free_ struct api_filter *perm_items = NULL, *rest_items = NULL;
	_cleanup_kerr_ struct kerr *err = NULL;
	struct api_filters filters = {0}, perm = {0}, rest = {0};
	struct tag_set tags = {0};
	struct api_page page;
	size_t nids, nnames, n = 0, nrules = 0;
	char default_vpc[ID_MAX] = "";
	int r = -1;

	if (api_call_id_list(c, "GroupId", "sg", &ids, &nids, e) < 0 ||
	    api_call_page(c, 5, 1000, &page, e) < 0 || api_call_filters(c, &filters, e) < 0)
		goto out;
	nnames = api_node_strings(&c->root, "GroupName", &names);
	perm_items = xcalloc(filters.n + 1, sizeof(*perm_items));
	rest_items = xcalloc(filters.n + 1, sizeof(*rest_items));
	for (size_t i = 0; i < filters.n; i++) {
		if (is_permission_filter(filters.items[i].name))
			perm_items[perm.n++] = filters.items[i];
		else
			rest_items[rest.n++] = filters.items[i];
	}
	perm.items = perm_items;
	rest.items = rest_items;
	if (cloud_groups_list(c->cloud, c->account.id, c->region, &v, &n, &err) < 0 ||
	    cloud_group_rules(c->cloud, c->account.id, c->region, &rules, &nrules, &err) < 0 ||
	    cloud_tags_list(c->cloud, c->account.id, c->region, &tags, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		goto out;
	}
	/* GroupName.N names groups of the default VPC, as in EC2. */
	if (nnames) {
		_cleanup_kerr_ struct kerr *why = NULL;
		struct vpc dv;
		if (cloud_vpc_default(c->cloud, c->account.id, c->region, &dv, &why) == 0)
			str_copy(default_vpc, dv.id, sizeof(default_vpc));
		else if (why->kind != KERR_NOT_FOUND) {
			api_error_from_cloud(e, c->action, why);
			goto out;
		}
	}
	{
		const char *missing = api_first_missing(ids, nids, v, n, sizeof(*v));
		for (size_t i = 0; i < nnames && !missing; i++) {
			bool found = false;
			for (size_t k = 0; k < n && !found; k++)
				found =
				    !strcmp(v[k].name, names[i]) && !strcmp(v[k].vpc, default_vpc);
			if (!found)
				missing = names[i];
		}
		if (missing) {
			api_error_set(e, "InvalidGroup.NotFound",
			              "The security group '%s' does not exist", missing);
			goto out;
		}
	}
	api_xml_open(c->xml, "securityGroupInfo");
	for (size_t k = 0; k < n; k++) {
		const struct security_group *g = &v[k];
		struct perm_match pm = {g, rules, nrules};
		int m;

		if (!api_selected(ids, nids, g->id) || !api_selected(names, nnames, g->name) ||
		    (nnames && strcmp(g->vpc, default_vpc)))
			continue;
		m = api_call_filter_match(&rest, group_fields, ARRAY_SIZE(group_fields), g, &tags,
		                          e);
		if (m > 0) {
			m = api_filters_match(&perm, match_permission, &pm, &err);
			if (m < 0)
				api_error_from_kerr(e, err, "InvalidParameterValue");
		}
		if (m < 0)
			goto out;
		if (!m || !api_page_take(&page))
			continue;
		api_xml_item(c->xml);
		api_xml_elem(c->xml, "ownerId", g->owner);
		api_xml_elem(c->xml, "groupId", g->id);
		api_xml_elem(c->xml, "groupName", g->name);
		api_xml_elem(c->xml, "groupDescription", g->description);
		api_xml_elem(c->xml, "vpcId", g->vpc);
		api_xml_elemf(c->xml, "securityGroupArn", "arn:aws:ec2:%s:%s:security-group/%s",
		              g->region, g->owner, g->id);
		write_permissions(c->xml, "ipPermissions", rules, nrules, g->id, false, g->owner);
		write_permissions(c->xml, "ipPermissionsEgress", rules, nrules, g->id, true,
		                  g->owner);
		api_write_tag_set(c->xml, &tags, g->id);
		api_xml_close(c->xml);
	}
	api_xml_close(c->xml);
	api_page_end(c, &page);
	r = 0;
out:
	api_filters_release(&filters);
	tag_set_release(&tags);
	return r;
}

static const struct api_filter_field rule_fields[] = {
    API_FIELD_TEXT_OF("security-group-rule-id", struct sg_rule, id),
    API_FIELD_TEXT_OF("group-id", struct sg_rule, group),
};

static int load_rules(struct api_call *c, void **items, size_t *n, struct kerr **err)
{
	/* The groups first: their listing makes the default VPC at first use. */
	struct security_group *g = NULL;
	size_t ng;

	if (cloud_groups_list(c->cloud, c->account.id, c->region, &g, &ng, err) < 0)
		return -1;
	free(g);
	return cloud_group_rules(c->cloud, c->account.id, c->region, (struct sg_rule **)items, n,
	                         err);
}

static void write_rule_item(struct api_xml *x, const void *item, const struct tag_set *tags)
{
	const struct sg_rule *r = item;

	write_rule(x, r, r->owner, tags);
}

int api_describe_security_group_rules(struct api_call *c, struct api_error *e)
{
	const struct api_list l = {
	    .id_param = "SecurityGroupRuleId",
	    .prefix = "sgr",
	    .max_results = 1000,
	    .set = "securityGroupRuleSet",
	    .not_found_code = "InvalidSecurityGroupRuleId.NotFound",
	    .noun = "security group rule ID",
	    .fields = rule_fields,
	    .nfields = ARRAY_SIZE(rule_fields),
	    .size = sizeof(struct sg_rule),
	    .load = load_rules,
	    .write = write_rule_item,
	};

	return api_describe_list(c, &l, e);
}
