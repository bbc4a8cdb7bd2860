/* What an instance's metadata service tells it: the running instance behind an address of a
 * VPC, and the facts of its tree (src/api/imds.c renders them); each instance's metadata
 * options, checked and changed. */
#include "internal.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "net/net.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

void cloud_instance_mac(const char *id, char out[NET_MAC_STR])
{
	char host_if[NET_IFNAME_MAX];
	uint8_t mac[NET_MAC_LEN];

	/* The runtime names the host end of an instance's veth so (kv + 12 characters of the id),
	 * and the port's MAC derives from it. */
	snprintf(host_if, sizeof(host_if), "kv%.12s", id + 2);
	net_port_mac(host_if, mac);
	net_mac_format(mac, out);
}

void cloud_instance_interface_id(const char *id, char out[ID_MAX])
{
	const char *hex = strchr(id, '-');

	snprintf(out, ID_MAX, "eni-%s", hex ? hex + 1 : id);
}

static const char *const tokens_values[] = {"optional", "required"};
static const char *const switch_values[] = {"enabled", "disabled"};

static bool one_of(const char *v, const char *const *values, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v, values[i]))
			return true;
	return false;
}

int cloud_metadata_change_check(const struct metadata_change *m, struct kerr **err)
{
	if (m->http_tokens && !one_of(m->http_tokens, tokens_values, ARRAY_SIZE(tokens_values)))
		return kerr_set(err, KERR_INVALID,
		                "The value '%s' is not valid for HttpTokens: optional or required",
		                m->http_tokens);
	if (m->http_endpoint && !one_of(m->http_endpoint, switch_values, ARRAY_SIZE(switch_values)))
		return kerr_set(err, KERR_INVALID,
		                "The value '%s' is not valid for HttpEndpoint: enabled or disabled",
		                m->http_endpoint);
	if (m->tags && !one_of(m->tags, switch_values, ARRAY_SIZE(switch_values)))
		return kerr_set(err, KERR_INVALID,
		                "The value '%s' is not valid for InstanceMetadataTags: enabled or "
		                "disabled",
		                m->tags);
	if (m->protocol_ipv6 && strcmp(m->protocol_ipv6, "disabled"))
		return kerr_set(
		    err, KERR_INVALID,
		    "HttpProtocolIpv6 '%s' is not supported: kiln's instances have no "
		    "IPv6, so the metadata service has no IPv6 endpoint (disabled only)",
		    m->protocol_ipv6);
	if (m->has_hop_limit && (m->hop_limit < 1 || m->hop_limit > 64))
		return kerr_set(
		    err, KERR_INVALID,
		    "The value '%lld' is not valid for HttpPutResponseHopLimit: 1 to 64",
		    m->hop_limit);
	return 0;
}

void cloud_metadata_defaults(const struct metadata_change *m, struct metadata_options *out)
{
	str_copy(out->http_tokens, m->http_tokens ? m->http_tokens : "optional",
	         sizeof(out->http_tokens));
	str_copy(out->http_endpoint, m->http_endpoint ? m->http_endpoint : "enabled",
	         sizeof(out->http_endpoint));
	str_copy(out->tags, m->tags ? m->tags : "disabled", sizeof(out->tags));
	out->hop_limit = m->has_hop_limit ? (int)m->hop_limit : 1;
}

int cloud_instance_metadata_modify(struct cloud *c, const char *owner, const char *region,
                                   const char *id, const struct metadata_change *m,
                                   struct instance *out, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (cloud_metadata_change_check(m, err) < 0)
		return -1;
	if (cloud_instance_get(c, id, out, err) < 0 || strcmp(out->owner, owner) ||
	    strcmp(out->region, region) || !strcmp(out->state, "terminated"))
		return cloud_instance_not_found(id, err);
	if (db_prepare(c->db,
	               "UPDATE instances SET http_tokens = COALESCE(?1, http_tokens), "
	               "http_endpoint = COALESCE(?2, http_endpoint), "
	               "metadata_tags = COALESCE(?3, metadata_tags), "
	               "http_hop_limit = COALESCE(?4, http_hop_limit) WHERE id = ?5",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, m->http_tokens);
	db_bind_text(st, 2, m->http_endpoint);
	db_bind_text(st, 3, m->tags);
	if (m->has_hop_limit)
		sqlite3_bind_int(st, 4, (int)m->hop_limit);
	db_bind_text(st, 5, id);
	if (db_step_done(c->db, st, err) < 0)
		return -1;
	return cloud_instance_get(c, id, out, err);
}

void instance_metadata_release(struct instance_metadata *m)
{
	free(m->public_key);
	free(m->user_data);
	free(m->tags);
	free(m->devices);
	memset(m, 0, sizeof(*m));
}

static int load_extras(struct cloud *c, struct instance_metadata *m, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ char *ud = xasprintf("%s/user-data/%s", c->data_dir, m->in.id);
	_cleanup_kerr_ struct kerr *why = NULL;
	struct utsname u;
	int r;

	/* The VPC's range, the zone's id, the key launched with. */
	if (db_prepare(c->db,
	               "SELECT COALESCE((SELECT cidr FROM vpcs WHERE id = n.vpc), ''), "
	               "COALESCE((SELECT zone_id FROM zones WHERE name = n.zone), ''), "
	               "COALESCE(n.public_key, '') FROM instances n WHERE n.id = ?",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, m->in.id);
	if ((r = db_step_row(c->db, st, err)) <= 0)
		return r < 0 ? -1 : cloud_instance_not_found(m->in.id, err);
	str_copy(m->vpc_cidr, db_text(st, 0), sizeof(m->vpc_cidr));
	str_copy(m->zone_id, db_text(st, 1), sizeof(m->zone_id));
	if (db_text(st, 2)[0])
		m->public_key = xstrdup(db_text(st, 2));
	sqlite3_finalize(steal_ptr(st));

	for (size_t i = 0; i < m->in.ngroups; i++) {
		if (db_prepare(c->db, "SELECT name FROM security_groups WHERE id = ?", &st, err) <
		    0)
			return -1;
		db_bind_text(st, 1, m->in.groups[i]);
		if ((r = db_step_row(c->db, st, err)) < 0)
			return -1;
		str_copy(m->group_names[i], r ? db_text(st, 0) : "", sizeof(m->group_names[i]));
		sqlite3_finalize(steal_ptr(st));
	}

	if (db_prepare(c->db, "SELECT key, value FROM tags WHERE resource = ? ORDER BY key", &st,
	               err) < 0)
		return -1;
	db_bind_text(st, 1, m->in.id);
	while ((r = db_step_row(c->db, st, err)) > 0) {
		struct tag *t;

		m->tags = xreallocarray(m->tags, m->ntags + 1, sizeof(*m->tags));
		t = memset(&m->tags[m->ntags++], 0, sizeof(*t));
		str_copy(t->key, db_text(st, 0), sizeof(t->key));
		str_copy(t->value, db_text(st, 1), sizeof(t->value));
	}
	if (r < 0)
		return -1;
	sqlite3_finalize(steal_ptr(st));

	/* Its volumes other than the root, in the order they were attached. */
	if (db_prepare(c->db,
	               "SELECT device FROM volumes WHERE instance = ? AND device != ? "
	               "ORDER BY attach_ms, device",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, m->in.id);
	db_bind_text(st, 2, ROOT_DEVICE);
	while ((r = db_step_row(c->db, st, err)) > 0) {
		m->devices = xreallocarray(m->devices, m->ndevices + 1, sizeof(*m->devices));
		str_copy(m->devices[m->ndevices++], db_text(st, 0), sizeof(*m->devices));
	}
	if (r < 0)
		return -1;

	if (fs_read_file(AT_FDCWD, ud, (size_t)64 << 10, &m->user_data, &m->user_data_len, &why) <
	    0) {
		if (why->kind != KERR_NOT_FOUND)
			return kerr_pass(err, steal_ptr(why));
		m->user_data = NULL;
		m->user_data_len = 0;
	}
	cloud_instance_mac(m->in.id, m->mac);
	cloud_private_dns_name(m->in.region, m->in.private_ip, m->hostname, sizeof(m->hostname));
	/* Instances run on the host's processor, whatever their image says. */
	str_copy(m->architecture, "x86_64", sizeof(m->architecture));
	if (uname(&u) == 0 && !strcmp(u.machine, "aarch64"))
		str_copy(m->architecture, "arm64", sizeof(m->architecture));
	return 0;
}

int cloud_metadata_find(struct cloud *c, unsigned vpc_net, const char *addr,
                        struct instance_metadata *m, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	char id[ID_MAX];
	int r;

	memset(m, 0, sizeof(*m));
	/* pending counts: an instance is pending until its boot returns, and its software
	 * (cloud-init) asks from its first second, as on EC2, whose instances are pending while
	 * they boot. */
	if (db_prepare(c->db,
	               "SELECT n.id FROM instances n JOIN vpcs v ON v.id = n.vpc WHERE v.net = ? "
	               "AND n.private_ip = ? AND n.state IN ('pending', 'running')",
	               &st, err) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, vpc_net);
	db_bind_text(st, 2, addr);
	r = db_step_row(c->db, st, err);
	if (r <= 0)
		return r < 0 ? -1
		             : kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_INSTANCE, NULL,
		                          "no running instance at '%s' in VPC %u", addr, vpc_net);
	str_copy(id, db_text(st, 0), sizeof(id));
	if (cloud_instance_get(c, id, &m->in, err) < 0 || load_extras(c, m, err) < 0) {
		instance_metadata_release(m);
		return -1;
	}
	return 0;
}
