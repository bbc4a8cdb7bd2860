/* The instance metadata service: the accept loop over the VPCs' listeners, IMDSv2's tokens and
 * IMDSv1, the metadata options of the instance asking, and the tree (meta-data/, user-data,
 * dynamic/) rendered from what cloud_metadata_find gathers.
 *
 * Threading: libmicrohttpd with a thread per connection (handlers read the database) and no
 * listening socket; the VPCs' listeners are an api_listeners set (listeners.c), whose thread
 * hands each connection over with MHD_add_connection after noting which VPC's listener it came
 * from, by its descriptor:
 * the handler reads it back from the connection's descriptor, which stays the same while the
 * connection lives. The same notes count each instance's open connections (its VPC and address):
 * one instance cannot take the service's connections from the others. */
#include "api/imds.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/imds_token.h"
#include "api/listeners.h"
#include "api/instance_credentials.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define IP_TTL_DEFAULT 64
/* Connections the service takes, and of those, how many one instance (address in a VPC) may hold
 * open at once; more are closed as they are accepted. */
#define IMDS_MAX_CONNECTIONS  512u
#define IMDS_MAX_PER_INSTANCE 32u

/* Who is at the other end of an open connection, by its descriptor. */
struct imds_peer {
	unsigned net; /* its VPC's number; 0: no connection on this descriptor */
	struct in_addr addr;
};

struct api_imds {
	struct cloud *cloud;
	struct MHD_Daemon *daemon;
	struct imds_token_key key;
	struct api_listeners *listeners; /* tagged with their VPC's net number */
	pthread_mutex_t lock;            /* peer_of_fd */
	struct imds_peer *peer_of_fd;    /* each open connection's peer, by its descriptor */
	size_t nfds;
};

/* The versions EC2 serves; every one answers with the current tree. */
static const char *const versions[] = {
    "1.0",        "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15",
    "2008-02-01", "2008-09-01", "2009-04-04", "2011-01-01", "2011-05-01", "2012-01-12",
    "2014-02-25", "2014-11-05", "2015-10-20", "2016-04-19", "2016-06-30", "2016-09-02",
    "2018-03-28", "2018-08-17", "2018-09-24", "2019-10-01", "2020-10-27", "2021-01-03",
    "2021-03-23", "2021-07-15", "2022-09-24", "latest",
};

/* One node of the tree: a directory (kids) or a leaf (value). */
struct node {
	char *name;  /* its path component */
	char *label; /* how its directory lists it, when not name (public-keys' "0=name") */
	bool dir;
	struct buf value;
	struct node *kids;
	size_t nkids;
};

static void node_free(struct node *n)
{
	for (size_t i = 0; i < n->nkids; i++)
		node_free(&n->kids[i]);
	free(n->kids);
	free(n->name);
	free(n->label);
	buf_release(&n->value);
}

static struct node *node_add(struct node *parent, const char *name, bool dir)
{
	struct node *n;

	parent->kids = xreallocarray(parent->kids, parent->nkids + 1, sizeof(*parent->kids));
	n = memset(&parent->kids[parent->nkids++], 0, sizeof(*n));
	n->name = xstrdup(name);
	n->dir = dir;
	buf_init(&n->value, (size_t)1 << 20);
	return n;
}

/* Directories are made before their kids, and a kid is never added after a later sibling's
 * kids, so the pointers node_add returns stay valid while the caller fills one directory. */
static struct node *dir(struct node *parent, const char *name)
{
	return node_add(parent, name, true);
}

static void leaf(struct node *parent, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void leaf(struct node *parent, const char *name, const char *fmt, ...)
{
	struct node *n = node_add(parent, name, false);
	char *s = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	buf_addstr(&n->value, s);
	free(s);
}

static void format_time(int64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void identity_document(const struct instance_metadata *m, struct buf *b)
{
	char pending[32];
	struct buf codes = BUF_INIT;

	format_time(m->in.launch_ms, pending);
	/* Product codes are [a-z0-9]: no JSON escaping needed. */
	if (m->in.nproduct_codes) {
		buf_addstr(&codes, "[ ");
		for (size_t i = 0; i < m->in.nproduct_codes; i++)
			buf_addf(&codes, "%s\"%s\"", i ? ", " : "", m->in.product_codes[i]);
		buf_addstr(&codes, " ]");
	} else {
		buf_addstr(&codes, "null");
	}
	buf_addf(b,
	         "{\n"
	         "  \"accountId\" : \"%s\",\n"
	         "  \"architecture\" : \"%s\",\n"
	         "  \"availabilityZone\" : \"%s\",\n"
	         "  \"billingProducts\" : null,\n"
	         "  \"devpayProductCodes\" : null,\n"
	         "  \"marketplaceProductCodes\" : %s,\n"
	         "  \"imageId\" : \"%s\",\n"
	         "  \"instanceId\" : \"%s\",\n"
	         "  \"instanceType\" : \"%s\",\n"
	         "  \"kernelId\" : null,\n"
	         "  \"pendingTime\" : \"%s\",\n"
	         "  \"privateIp\" : \"%s\",\n"
	         "  \"ramdiskId\" : null,\n"
	         "  \"region\" : \"%s\",\n"
	         "  \"version\" : \"2017-09-30\"\n"
	         "}",
	         m->in.owner, m->architecture, m->in.zone, codes.data, m->in.image, m->in.id,
	         m->in.type, pending, m->in.private_ip, m->in.region);
	buf_release(&codes);
}

static void interface_tree(struct node *macs, const struct instance_metadata *m)
{
	struct node *i = dir(macs, m->mac);
	char eni[ID_MAX];

	cloud_instance_interface_id(m->in.id, eni);
	leaf(i, "device-number", "0");
	leaf(i, "interface-id", "%s", eni);
	leaf(i, "local-hostname", "%s", m->hostname);
	leaf(i, "local-ipv4s", "%s", m->in.private_ip);
	leaf(i, "mac", "%s", m->mac);
	leaf(i, "owner-id", "%s", m->in.owner);
	if (m->in.public_ip[0])
		leaf(i, "public-ipv4s", "%s", m->in.public_ip);
	{
		struct node *ids = node_add(i, "security-group-ids", false);
		struct node *names;

		for (size_t g = 0; g < m->in.ngroups; g++)
			buf_addf(&ids->value, "%s%s", g ? "\n" : "", m->in.groups[g]);
		names = node_add(i, "security-groups", false);
		for (size_t g = 0; g < m->in.ngroups; g++)
			buf_addf(&names->value, "%s%s", g ? "\n" : "", m->group_names[g]);
	}
	leaf(i, "subnet-id", "%s", m->in.subnet);
	leaf(i, "subnet-ipv4-cidr-block", "%s", m->in.subnet_cidr);
	leaf(i, "vpc-id", "%s", m->in.vpc);
	leaf(i, "vpc-ipv4-cidr-block", "%s", m->vpc_cidr);
	leaf(i, "vpc-ipv4-cidr-blocks", "%s", m->vpc_cidr);
}

/* meta-data/iam/, for an instance launched with a profile: info and
 * security-credentials/PROFILE, the instance's current credentials (minted when none is fresh).
 * They are looked up only when the request asks under iam/ (creds); else the leaves stay empty,
 * for listings. */
static int iam_tree(struct api_imds *s, struct node *md, const struct instance_metadata *m,
                    bool creds, struct kerr **err)
{
	struct node *iam = dir(md, "iam"), *info, *n;
	struct instance_credentials c;

	node_add(iam, "info", false);
	n = node_add(dir(iam, "security-credentials"), m->in.iam_profile, false);
	info = &iam->kids[0]; /* after iam's last kid: the array moved */

	if (!creds)
		return 0;
	if (cloud_instance_credentials(s->cloud, m->in.id, &c, err) < 0 ||
	    api_iam_info_json(&c, &info->value, err) < 0 ||
	    api_iam_credentials_json(&c, &n->value, err) < 0)
		return -1;
	OPENSSL_cleanse(&c, sizeof(c));
	return 0;
}

/* meta-data/: one entry per line of EC2's list that kiln has. */
static int meta_data_tree(struct api_imds *s, struct node *md, const struct instance_metadata *m,
                          bool creds, struct kerr **err)
{
	struct node *n;

	leaf(md, "ami-id", "%s", m->in.image);
	leaf(md, "ami-launch-index", "%d", m->in.launch_index);
	leaf(md, "ami-manifest-path", "(unknown)");
	n = dir(md, "block-device-mapping");
	leaf(n, "ami", "%s", "/dev/xvda");
	for (size_t i = 0; i < m->ndevices; i++) {
		char name[32];
		const char *dev = m->devices[i];

		snprintf(name, sizeof(name), "ebs%zu", i + 1);
		leaf(n, name, "%s", !strncmp(dev, "/dev/", 5) ? dev + 5 : dev);
	}
	leaf(n, "root", "%s", "/dev/xvda");
	leaf(md, "hostname", "%s", m->hostname);
	if (m->in.iam_profile[0] && iam_tree(s, md, m, creds, err) < 0)
		return -1;
	leaf(md, "instance-action", "none");
	leaf(md, "instance-id", "%s", m->in.id);
	leaf(md, "instance-life-cycle", "on-demand");
	leaf(md, "instance-type", "%s", m->in.type);
	leaf(md, "local-hostname", "%s", m->hostname);
	leaf(md, "local-ipv4", "%s", m->in.private_ip);
	leaf(md, "mac", "%s", m->mac);
	n = dir(dir(dir(md, "network"), "interfaces"), "macs");
	interface_tree(n, m);
	n = dir(md, "placement");
	leaf(n, "availability-zone", "%s", m->in.zone);
	if (m->zone_id[0])
		leaf(n, "availability-zone-id", "%s", m->zone_id);
	leaf(n, "region", "%s", m->in.region);
	if (m->in.nproduct_codes) {
		n = node_add(md, "product-codes", false);
		for (size_t i = 0; i < m->in.nproduct_codes; i++)
			buf_addf(&n->value, "%s%s", i ? "\n" : "", m->in.product_codes[i]);
	}
	if (m->in.public_ip[0])
		leaf(md, "public-ipv4", "%s", m->in.public_ip);
	if (m->public_key) {
		struct node *k = dir(dir(md, "public-keys"), "0");

		k->label = xasprintf("0=%s", m->in.key_name);
		leaf(k, "openssh-key", "%s\n", m->public_key);
	}
	leaf(md, "reservation-id", "%s", m->in.reservation);
	n = node_add(md, "security-groups", false);
	for (size_t g = 0; g < m->in.ngroups; g++)
		buf_addf(&n->value, "%s%s", g ? "\n" : "", m->group_names[g]);
	n = dir(md, "services");
	leaf(n, "domain", "amazonaws.com");
	leaf(n, "partition", "aws");
	if (!strcmp(m->in.md.tags, "enabled")) {
		n = dir(dir(md, "tags"), "instance");
		/* EC2 refuses to serve tags whose keys hold '/' (or are "." or ".."). */
		for (size_t t = 0; t < m->ntags; t++)
			if (!strchr(m->tags[t].key, '/') && strcmp(m->tags[t].key, ".") &&
			    strcmp(m->tags[t].key, ".."))
				leaf(n, m->tags[t].key, "%s", m->tags[t].value);
	}
	return 0;
}

/* dynamic/instance-identity/: the document, and its signatures when sign (asked for: they
 * cost two RSA signatures). */
static int identity_tree(struct api_imds *s, struct node *n, const struct instance_metadata *m,
                         bool sign, struct kerr **err)
{
	struct node *doc, *pkcs7, *signature;
	_cleanup_free_ char *sig = NULL, *p7 = NULL;

	/* All three first: adding a kid may move its siblings. */
	node_add(n, "document", false);
	node_add(n, "pkcs7", false);
	node_add(n, "signature", false);
	doc = &n->kids[0];
	pkcs7 = &n->kids[1];
	signature = &n->kids[2];

	identity_document(m, &doc->value);
	if (!sign)
		return 0;
	if (cloud_identity_sign(s->cloud, m->in.region, doc->value.data, doc->value.len, &sig, &p7,
	                        err) < 0)
		return -1;
	buf_addstr(&signature->value, sig);
	buf_addstr(&pkcs7->value, p7);
	return 0;
}

static int version_tree(struct api_imds *s, struct node *root, const struct instance_metadata *m,
                        bool sign, bool creds, struct kerr **err)
{
	struct node *n = dir(dir(root, "dynamic"), "instance-identity");

	if (identity_tree(s, n, m, sign, err) < 0 ||
	    meta_data_tree(s, dir(root, "meta-data"), m, creds, err) < 0)
		return -1;
	if (m->user_data) {
		n = node_add(root, "user-data", false);
		if (buf_add(&n->value, m->user_data, m->user_data_len, NULL) < 0)
			abort(); /* 64 KiB at most, under the buffer's MiB */
	}
	return 0;
}

static const struct node *node_find(const struct node *n, const char *name)
{
	for (size_t i = 0; i < n->nkids; i++)
		if (!strcmp(n->kids[i].name, name))
			return &n->kids[i];
	return NULL;
}

/* A directory's listing: its kids by line, directories with '/' (but at a version's top and
 * public-keys/, which EC2 lists without). */
static void node_list(const struct node *n, bool slashes, struct buf *out)
{
	for (size_t i = 0; i < n->nkids; i++) {
		const struct node *k = &n->kids[i];

		buf_addf(out, "%s%s%s", i ? "\n" : "", k->label ? k->label : k->name,
		         k->dir && slashes && !k->label ? "/" : "");
	}
}

/* The answer to path (below the version) in the tree; false for 404. */
static bool tree_answer(const struct node *root, const char *path, struct buf *out)
{
	_cleanup_free_ char *copy = xstrdup(path);
	const struct node *n = root;
	char *save = NULL;
	int depth = 0;

	for (char *p = strtok_r(copy, "/", &save); p; p = strtok_r(NULL, "/", &save), depth++) {
		if (!n->dir || !(n = node_find(n, p)))
			return false;
	}
	if (n->dir)
		node_list(n, depth > 0, out);
	else if (buf_add(out, n->value.data, n->value.len, NULL) < 0)
		return false;
	return true;
}

static const char *const reasons[] = {
    [200] = "OK",        [400] = "Bad Request", [401] = "Unauthorized",
    [403] = "Forbidden", [404] = "Not Found",   [405] = "Method Not Allowed",
};

struct answer {
	unsigned status;
	struct buf body;
	const char *type;
	int ttl_header; /* > 0: X-aws-ec2-metadata-token-ttl-seconds */
	int ip_ttl;     /* the IP TTL its packets go with */
};

static void answer_error(struct answer *a, unsigned status)
{
	const char *reason =
	    status < ARRAY_SIZE(reasons) && reasons[status] ? reasons[status] : "Error";

	a->status = status;
	buf_reset(&a->body);
	/* EC2 answers errors with a small HTML page. */
	buf_addf(&a->body,
	         "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n"
	         "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\"\n"
	         "\t\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n"
	         "<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n"
	         " <head>\n  <title>%u - %s</title>\n </head>\n <body>\n  <h1>%u - %s</h1>\n"
	         " </body>\n</html>\n",
	         status, reason, status, reason);
	a->type = "text/html";
}

static bool version_known(const char *v)
{
	for (size_t i = 0; i < ARRAY_SIZE(versions); i++)
		if (!strcmp(versions[i], v))
			return true;
	return false;
}

struct request {
	const char *method;
	const char *url;
	const char *token; /* X-aws-ec2-metadata-token */
	const char *ttl;   /* X-aws-ec2-metadata-token-ttl-seconds */
	bool forwarded;    /* X-Forwarded-For present */
};

static void imds_answer(struct api_imds *s, const struct instance_metadata *m,
                        const struct request *r, struct answer *a)
{
	_cleanup_free_ char *first = NULL;
	const char *path = r->url, *rest, *slash;
	bool get = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");
	bool put = !strcmp(r->method, "PUT");
	int64_t now = cloud_now_ms() / 1000;

	a->type = "text/plain";
	a->ip_ttl = IP_TTL_DEFAULT;
	if (strcmp(m->in.md.http_endpoint, "enabled"))
		return answer_error(a, 403);
	while (*path == '/')
		path++;
	slash = strchr(path, '/');
	first = xstrdup(path);
	if (slash)
		first[slash - path] = 0;
	rest = slash ? slash + 1 : "";
	if (put) {
		int ttl;

		if (!first[0] || !version_known(first) || strcmp(rest, "api/token"))
			return answer_error(a, first[0] && version_known(first) ? 403 : 404);
		if (strcmp(first, "latest") || r->forwarded)
			return answer_error(a, 403);
		if ((ttl = imds_ttl_parse(r->ttl)) < 0)
			return answer_error(a, 400);
		{
			char token[IMDS_TOKEN_LEN + 1];

			imds_token_make(&s->key, m->in.id, now + ttl, token);
			buf_addstr(&a->body, token);
		}
		a->status = 200;
		a->ttl_header = ttl;
		a->ip_ttl = m->in.md.hop_limit;
		return;
	}
	if (!get)
		return answer_error(a, 405);
	/* A token given must be good, whatever HttpTokens says. */
	if (r->token ? imds_token_check(&s->key, r->token, m->in.id, now) < 0
	             : !strcmp(m->in.md.http_tokens, "required"))
		return answer_error(a, 401);
	a->status = 200;
	if (!first[0]) {
		for (size_t i = 0; i < ARRAY_SIZE(versions); i++)
			buf_addf(&a->body, "%s%s", i ? "\n" : "", versions[i]);
		return;
	}
	if (!version_known(first))
		return answer_error(a, 404);
	if (!strcmp(rest, "api/token") || !strcmp(rest, "api/token/"))
		return answer_error(a, 405);
	{
		struct node root = {.dir = true};
		bool sign = strstr(rest, "instance-identity/signature") ||
		            strstr(rest, "instance-identity/pkcs7");
		bool creds = strstr(rest, "meta-data/iam/") != NULL;
		struct kerr *err = NULL;

		buf_init(&root.value, 1);
		if (version_tree(s, &root, m, sign, creds, &err) < 0) {
			log_event(LOG_LEVEL_ERROR, NULL, "metadata service: %s", err->msg);
			kerr_free(err);
			answer_error(a, 500);
		} else if (!tree_answer(&root, rest, &a->body))
			answer_error(a, 404);
		else if (!strcmp(rest, "user-data"))
			a->type = "application/octet-stream";
		node_free(&root);
	}
}

static unsigned conn_net(struct api_imds *s, struct MHD_Connection *c, bool *known)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	unsigned net = 0;

	*known = false;
	if (!ci)
		return 0;
	pthread_mutex_lock(&s->lock);
	if (ci->connect_fd >= 0 && (size_t)ci->connect_fd < s->nfds) {
		net = s->peer_of_fd[ci->connect_fd].net;
		*known = net != 0;
	}
	pthread_mutex_unlock(&s->lock);
	return net;
}

static int conn_fd(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

	return ci ? ci->connect_fd : -1;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
	struct api_imds *s = cls;
	struct answer a = {.status = 500, .body = BUF_INIT};
	struct instance_metadata m;
	struct MHD_Response *resp;
	const union MHD_ConnectionInfo *ci;
	char addr[INET_ADDRSTRLEN] = "";
	struct kerr *err = NULL;
	enum MHD_Result ret;
	unsigned net;
	bool known;
	int fd;

	(void)version;
	(void)upload_data;
	if (!*req_cls) {
		*req_cls = s; /* the headers came: wait for the body, which nothing here reads */
		return MHD_YES;
	}
	if (*upload_data_size) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	net = conn_net(s, c, &known);
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, addr,
		          sizeof(addr));
	if (!known || !addr[0] || cloud_metadata_find(s->cloud, net, addr, &m, &err) < 0) {
		/* No running instance there: no data. */
		if (err && err->kind != KERR_NOT_FOUND)
			log_event(LOG_LEVEL_WARNING, NULL, "metadata service: %s", err->msg);
		kerr_free(err);
		answer_error(&a, 404);
	} else {
		struct request r = {
		    .method = method,
		    .url = url,
		    .token =
		        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-aws-ec2-metadata-token"),
		    .ttl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		                                       "X-aws-ec2-metadata-token-ttl-seconds"),
		    .forwarded =
		        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-For") != NULL,
		};

		imds_answer(s, &m, &r, &a);
		instance_metadata_release(&m);
	}
	fd = conn_fd(c);
	if (fd >= 0) {
		int ttl = a.ip_ttl > 0 ? a.ip_ttl : IP_TTL_DEFAULT;

		setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl));
	}
	resp = MHD_create_response_from_buffer(a.body.len, a.body.len ? a.body.data : (void *)"",
	                                       MHD_RESPMEM_MUST_COPY);
	buf_release(&a.body);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a.type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_SERVER, "EC2ws");
	if (a.status == 405)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "OPTIONS, GET, HEAD, PUT");
	if (a.ttl_header > 0) {
		char v[16];

		snprintf(v, sizeof(v), "%d", a.ttl_header);
		MHD_add_response_header(resp, "X-aws-ec2-metadata-token-ttl-seconds", v);
	}
	ret = MHD_queue_response(c, a.status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Note the connection on fd as one of (net, addr)'s, unless that peer holds its share already. */
static bool note_fd(struct api_imds *s, int fd, unsigned net, struct in_addr addr)
{
	unsigned open = 0;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nfds; i++)
		if (s->peer_of_fd[i].net == net && s->peer_of_fd[i].addr.s_addr == addr.s_addr)
			open++;
	if (open >= IMDS_MAX_PER_INSTANCE) {
		pthread_mutex_unlock(&s->lock);
		return false;
	}
	if ((size_t)fd >= s->nfds) {
		size_t n = (size_t)fd + 64;

		s->peer_of_fd = xreallocarray(s->peer_of_fd, n, sizeof(*s->peer_of_fd));
		memset(s->peer_of_fd + s->nfds, 0, (n - s->nfds) * sizeof(*s->peer_of_fd));
		s->nfds = n;
	}
	s->peer_of_fd[fd] = (struct imds_peer){.net = net, .addr = addr};
	pthread_mutex_unlock(&s->lock);
	return true;
}

static void forget_fd(struct api_imds *s, int fd)
{
	pthread_mutex_lock(&s->lock);
	if (fd >= 0 && (size_t)fd < s->nfds)
		s->peer_of_fd[fd] = (struct imds_peer){0};
	pthread_mutex_unlock(&s->lock);
}

/* libmicrohttpd tells of a connection's end before it closes the descriptor, so no new
 * connection can have the same descriptor yet. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
	(void)socket_context;
	if (code == MHD_CONNECTION_NOTIFY_CLOSED)
		forget_fd(cls, conn_fd(c));
}

/* A connection on the listener of VPC net (the listeners' thread). */
static void accepted(void *ctx, unsigned net, int fd, const struct sockaddr *sa, socklen_t len)
{
	struct api_imds *s = ctx;
	struct in_addr addr = {0};

	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
		addr = ((const struct sockaddr_in *)sa)->sin_addr;
	if (!note_fd(s, fd, net, addr)) {
		close(fd);
		return;
	}
	/* On failure MHD closes the socket, and this thread accepts nothing meanwhile. */
	if (MHD_add_connection(s->daemon, fd, sa, len) != MHD_YES)
		forget_fd(s, fd);
}

int api_imds_start(struct cloud *cloud, struct api_imds **out, struct kerr **err)
{
	struct api_imds *s = xcalloc(1, sizeof(*s));

	*out = NULL;
	s->cloud = cloud;
	pthread_mutex_init(&s->lock, NULL);
	if (imds_token_key_init(&s->key, err) < 0)
		goto on_error;
	s->daemon = MHD_start_daemon(
	    MHD_USE_NO_LISTEN_SOCKET | MHD_USE_INTERNAL_POLLING_THREAD |
	        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL | MHD_USE_ITC,
	    0, NULL, NULL, on_request, s, MHD_OPTION_CONNECTION_LIMIT, IMDS_MAX_CONNECTIONS,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)10, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 << 10), MHD_OPTION_END);
	if (!s->daemon) {
		kerr_set(err, KERR_INTERNAL, "cannot start the metadata service's HTTP server");
		goto on_error;
	}
	if (api_listeners_start("metadata service", accepted, s, &s->listeners, err) < 0) {
		MHD_stop_daemon(s->daemon);
		goto on_error;
	}
	*out = s;
	return 0;

on_error:
	pthread_mutex_destroy(&s->lock);
	free(s);
	return -1;
}

bool api_imds_serves(struct api_imds *s, unsigned net)
{
	return api_listeners_has(s->listeners, net);
}

void api_imds_add(struct api_imds *s, unsigned net, int fd)
{
	api_listeners_add(s->listeners, net, fd);
}

void api_imds_remove(struct api_imds *s, unsigned net)
{
	api_listeners_remove(s->listeners, net);
}

void api_imds_stop(struct api_imds *s)
{
	if (!s)
		return;
	api_listeners_stop(s->listeners);
	MHD_stop_daemon(s->daemon);
	free(s->peer_of_fd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
