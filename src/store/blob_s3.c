/* The S3 backend: a store is a key prefix in a bucket (s3://bucket/prefix?endpoint=...), its
 * objects "<prefix>KILNSTORE", "<prefix>packs/<id>.pack", "<prefix>index/<id>.idx",
 * "<prefix>snaps/<snap-id>". Requests are signed by util/sigv4 and carried by libcurl (one
 * keep-alive handle per request in flight, from a pool); commit points are put-if-absent
 * (If-None-Match: *); packs are uploaded whole once sealed, read back with ranged GETs.
 * Credentials come from the environment or the shared credentials file, never the URL. */
#include "blob.h"

#include <curl/curl.h>
#include <errno.h>
#include <expat.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/sigv4.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define STORE_MARKER     "KILNSTORE"
#define S3_TRIES         5
#define S3_LIST_MAX      (16u << 20) /* bytes of one ListObjectsV2 page */
#define S3_ERROR_MAX     (64u << 10)
#define S3_DEFAULT_GRACE 3600 /* seconds */
#define S3_POOL_MAX      16

static const char *const ns_prefix[BLOB__NS] = {
    [BLOB_ROOT] = "", [BLOB_PACKS] = "packs/", [BLOB_INDEX] = "index/", [BLOB_SNAPS] = "snaps/"};

struct s3 {
	struct blob_s3_url u;
	char *host; /* host[:port] of the endpoint, for the Host header */
	char *base; /* endpoint without a trailing '/' */
	char *access_key;
	char *secret;
	struct blob_io *io; /* the blob's counters */
	pthread_mutex_t lock;
	CURL *pool[S3_POOL_MAX];
	size_t npool;
};

/* ---- the URL ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static char *pct_decode(const char *s, size_t len)
{
	char *out = xmalloc(len + 1), *o = out;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%' && i + 2 < len + 1 && i + 2 <= len - 1 && hexval(s[i + 1]) >= 0 &&
		    hexval(s[i + 2]) >= 0) {
			*o++ = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

void blob_s3_url_release(struct blob_s3_url *u)
{
	free(u->bucket);
	free(u->prefix);
	free(u->endpoint);
	free(u->region);
	free(u->cache_dir);
	memset(u, 0, sizeof(*u));
}

int blob_s3_parse_url(const char *url, struct blob_s3_url *u, struct kerr **err)
{
	const char *p = url + 5, *q, *slash, *env;
	size_t blen;

	memset(u, 0, sizeof(*u));
	u->gc_grace = S3_DEFAULT_GRACE;
	if (strncmp(url, "s3://", 5) != 0)
		return kerr_set(err, KERR_INVALID, "'%s' is not an s3:// URL", url);
	q = strchr(p, '?');
	slash = strchr(p, '/');
	if (slash && q && slash > q)
		slash = NULL;
	blen = slash ? (size_t)(slash - p) : q ? (size_t)(q - p) : strlen(p);
	if (blen < 3 || blen > 63)
		return kerr_set(err, KERR_INVALID, "store URL '%s' has no valid bucket name", url);
	u->bucket = xasprintf("%.*s", (int)blen, p);
	for (const char *c = u->bucket; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' ||
		      *c == '.')) {
			blob_s3_url_release(u);
			return kerr_set(err, KERR_INVALID,
			                "store URL '%s' has an invalid bucket name", url);
		}
	if (slash) {
		size_t plen = q ? (size_t)(q - slash - 1) : strlen(slash + 1);
		while (plen && slash[plen] == '/')
			plen--;
		u->prefix = plen ? xasprintf("%.*s/", (int)plen, slash + 1) : xstrdup("");
	} else {
		u->prefix = xstrdup("");
	}
	for (const char *a = q ? q + 1 : NULL; a && *a;) {
		const char *amp = strchr(a, '&'), *eq;
		size_t len = amp ? (size_t)(amp - a) : strlen(a);
		_cleanup_free_ char *val = NULL;

		eq = memchr(a, '=', len);
		if (!eq) {
			blob_s3_url_release(u);
			return kerr_set(err, KERR_INVALID, "store URL '%s': '%.*s' has no value",
			                url, (int)len, a);
		}
		val = pct_decode(eq + 1, len - (size_t)(eq + 1 - a));
		if (eq - a == 8 && !strncmp(a, "endpoint", 8)) {
			free(u->endpoint);
			u->endpoint = steal_ptr(val);
		} else if (eq - a == 6 && !strncmp(a, "region", 6)) {
			free(u->region);
			u->region = steal_ptr(val);
		} else if (eq - a == 8 && !strncmp(a, "gc_grace", 8)) {
			char *end;
			errno = 0;
			u->gc_grace = strtoull(val, &end, 10);
			if (errno || *end || !*val) {
				blob_s3_url_release(u);
				return kerr_set(err, KERR_INVALID,
				                "store URL '%s': invalid gc_grace", url);
			}
		} else if (eq - a == 5 && !strncmp(a, "cache", 5) && *val) {
			free(u->cache_dir);
			u->cache_dir = steal_ptr(val);
		} else if (eq - a == 9 && !strncmp(a, "cache_max", 9)) {
			char *end;
			unsigned long long v;
			errno = 0;
			v = strtoull(val, &end, 10);
			int shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
			if (shift)
				end++;
			if (errno || *end || !*val || !v || v > (UINT64_MAX >> shift)) {
				blob_s3_url_release(u);
				return kerr_set(
				    err, KERR_INVALID,
				    "store URL '%s': invalid cache_max (bytes, or with K, M, G)",
				    url);
			}
			u->cache_max = (uint64_t)v << shift;
		} else if ((eq - a == 14 && !strncmp(a, "aws_secret_key", 14)) ||
		           strstr(a, "secret") || strstr(a, "access")) {
			blob_s3_url_release(u);
			return kerr_set(
			    err, KERR_INVALID,
			    "store URL '%s': credentials never go in the URL (use "
			    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a credentials file)",
			    url);
		} else {
			blob_s3_url_release(u);
			return kerr_set(err, KERR_INVALID,
			                "store URL '%s': unknown parameter '%.*s'", url,
			                (int)(eq - a), a);
		}
		a = amp ? amp + 1 : NULL;
	}
	if (!u->endpoint && (env = getenv("AWS_ENDPOINT_URL_S3")) && *env)
		u->endpoint = xstrdup(env);
	if (!u->endpoint && (env = getenv("AWS_ENDPOINT_URL")) && *env)
		u->endpoint = xstrdup(env);
	if (!u->endpoint) {
		blob_s3_url_release(u);
		return kerr_set(err, KERR_INVALID,
		                "store URL '%s' names no endpoint (add ?endpoint=http://host:port)",
		                url);
	}
	if (strncmp(u->endpoint, "http://", 7) && strncmp(u->endpoint, "https://", 8)) {
		blob_s3_url_release(u);
		return kerr_set(err, KERR_INVALID,
		                "store URL '%s': the endpoint must be http(s)://", url);
	}
	if (!u->cache_max)
		u->cache_max = (uint64_t)1 << 30;
	if (!u->region) {
		env = getenv("AWS_REGION");
		if (!env || !*env)
			env = getenv("AWS_DEFAULT_REGION");
		u->region = xstrdup(env && *env ? env : "us-east-1");
	}
	return 0;
}

/* ---- credentials: the environment, else the shared credentials file's profile ---- */

static int read_credentials(struct s3 *s, struct kerr **err)
{
	const char *id = getenv("AWS_ACCESS_KEY_ID"), *sec = getenv("AWS_SECRET_ACCESS_KEY");
	const char *file = getenv("AWS_SHARED_CREDENTIALS_FILE"), *profile = getenv("AWS_PROFILE");
	_cleanup_free_ char *path = NULL;
	_cleanup_free_ uint8_t *data = NULL;
	size_t len;
	bool in = false;

	if (id && *id && sec && *sec) {
		s->access_key = xstrdup(id);
		s->secret = xstrdup(sec);
		return 0;
	}
	if (!file || !*file) {
		const char *home = getenv("HOME");
		path = xasprintf("%s/.aws/credentials", home ? home : "/root");
	} else {
		path = xstrdup(file);
	}
	if (!profile || !*profile)
		profile = "default";
	if (fs_read_file(AT_FDCWD, path, 1 << 20, &data, &len, NULL) == 0) {
		for (char *line = (char *)data, *next; line && *line; line = next) {
			next = strchr(line, '\n');
			if (next)
				*next++ = '\0';
			char *l = line;
			while (*l == ' ' || *l == '\t')
				l++;
			size_t n = strlen(l);
			while (n && (l[n - 1] == '\r' || l[n - 1] == ' '))
				l[--n] = '\0';
			if (l[0] == '[') {
				in = n >= 2 && l[n - 1] == ']' && n - 2 == strlen(profile) &&
				     !strncmp(l + 1, profile, n - 2);
				continue;
			}
			char *eq = strchr(l, '=');
			if (!in || !eq)
				continue;
			char *k = l, *v = eq + 1;
			*eq = '\0';
			for (char *e = eq - 1; e >= k && (*e == ' ' || *e == '\t'); e--)
				*e = '\0';
			while (*v == ' ' || *v == '\t')
				v++;
			if (!strcmp(k, "aws_access_key_id")) {
				free(s->access_key);
				s->access_key = xstrdup(v);
			} else if (!strcmp(k, "aws_secret_access_key")) {
				free(s->secret);
				s->secret = xstrdup(v);
			}
		}
	}
	if (s->access_key && s->secret)
		return 0;
	return kerr_set(err, KERR_AUTH,
	                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
	                "profile '%s' in '%s'",
	                profile, path);
}

/* ---- requests ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static CURL *handle_get(struct s3 *s)
{
	CURL *h = NULL;

	pthread_mutex_lock(&s->lock);
	if (s->npool)
		h = s->pool[--s->npool];
	pthread_mutex_unlock(&s->lock);
	if (!h && !(h = curl_easy_init()))
		abort();
	return h;
}

static void handle_put(struct s3 *s, CURL *h)
{
	pthread_mutex_lock(&s->lock);
	if (s->npool < S3_POOL_MAX) {
		s->pool[s->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	if (h)
		curl_easy_cleanup(h);
}

struct s3_req {
	const char *method;
	const char *key; /* object key (without the bucket), NULL for the bucket */
	const char *query;
	const void *body;
	size_t body_len;
	const char *header; /* one extra, unsigned header: If-None-Match, Range */
	/* the response body goes to resp (bounded), or is scattered into iov */
	struct buf *resp;
	const struct iovec *iov;
	int niov;
	/* out */
	long status;
	size_t got;
	uint64_t length; /* Content-Length of a HEAD */
};

struct sink {
	struct s3_req *r;
	bool overflow;
	size_t bytes; /* of the body, whatever became of them */
};

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
	struct sink *k = arg;
	struct s3_req *r = k->r;
	size_t len = size * n, done = 0;

	k->bytes += len;
	if (r->iov && r->status / 100 == 2) {
		size_t at = r->got;
		for (int i = 0; i < r->niov && done < len; i++) {
			if (at >= r->iov[i].iov_len) {
				at -= r->iov[i].iov_len;
				continue;
			}
			size_t take = r->iov[i].iov_len - at;
			if (take > len - done)
				take = len - done;
			memcpy((char *)r->iov[i].iov_base + at, data + done, take);
			done += take;
			at = 0;
		}
		if (done < len) {
			k->overflow = true;
			return 0;
		}
		r->got += len;
		return len;
	}
	if (r->resp && buf_add(r->resp, data, len, NULL) < 0) {
		k->overflow = true;
		return 0;
	}
	r->got += len;
	return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct sink *k = arg;
	size_t len = size * n;

	/* Learn the status before the body arrives, so on_data knows where to put it. */
	if (len > 9 && !strncmp(data, "HTTP/", 5)) {
		const char *sp = memchr(data, ' ', len);
		if (sp)
			k->r->status = strtol(sp + 1, NULL, 10);
		k->r->got = 0;
		if (k->r->resp)
			buf_reset(k->r->resp);
	} else if (len > 15 && !strncasecmp(data, "content-length:", 15)) {
		k->r->length = strtoull(data + 15, NULL, 10);
	}
	return len;
}

static void amz_now(char out[17])
{
	struct tm tm;
	time_t t = time(NULL);

	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* The <Code> and <Message> of an S3 error body, for messages. */
static void error_text(const struct buf *b, char *out, size_t size)
{
	const char *c, *m;
	size_t cl = 0, ml = 0;

	out[0] = '\0';
	if (!b || !b->len)
		return;
	c = strstr(b->data, "<Code>");
	m = strstr(b->data, "<Message>");
	if (c) {
		c += 6;
		cl = strcspn(c, "<");
	}
	if (m) {
		m += 9;
		ml = strcspn(m, "<");
	}
	if (c && m && ml)
		snprintf(out, size, "%.*s: %.*s", (int)cl, c, (int)ml, m);
	else if (c)
		snprintf(out, size, "%.*s", (int)cl, c);
}

static int s3_do(struct s3 *s, struct s3_req *r, struct kerr **err)
{
	_cleanup_buf_ struct buf path = BUF_INIT, url = BUF_INIT, auth = BUF_INIT;
	_cleanup_buf_ struct buf errbody = BUF_INIT;
	char amz_date[17], hash_hex_s[65];
	const char *hash = SIGV4_EMPTY_SHA256;

	pthread_once(&curl_once, curl_setup);
	buf_addf(&path, "/%s", s->u.bucket);
	if (r->key) {
		buf_addstr(&path, "/");
		buf_addstr(&path, r->key);
	}
	if (r->body_len) {
		uint8_t d[32];
		hash_sha256(r->body, r->body_len, d);
		hash_hex(d, 32, hash_hex_s);
		hash = hash_hex_s;
	}
	buf_addstr(&url, s->base);
	if (sigv4_uri_encode(&url, path.data, path.len, true, err) < 0)
		return -1;
	if (r->query && *r->query)
		buf_addf(&url, "?%s", r->query);
	if (!r->resp)
		buf_init(&errbody, S3_ERROR_MAX);

	for (int attempt = 0;; attempt++) {
		struct curl_slist *hdrs = NULL;
		struct s3_req saved = *r;
		struct sink sink = {.r = r};
		CURL *h = handle_get(s);
		CURLcode cc;
		char line[4200];

		if (!r->resp)
			r->resp = &errbody;
		amz_now(amz_date);
		buf_reset(&auth);
		struct sigv4_request sr = {.method = r->method,
		                           .path = path.data,
		                           .query = r->query ? r->query : "",
		                           .host = s->host,
		                           .amz_date = amz_date,
		                           .payload_hash = hash};
		if (sigv4_authorization(&sr, s->access_key, s->secret, s->u.region, "s3", &auth,
		                        err) < 0) {
			handle_put(s, h);
			return -1;
		}
		snprintf(line, sizeof(line), "Authorization: %s", auth.data);
		hdrs = curl_slist_append(hdrs, line);
		snprintf(line, sizeof(line), "x-amz-date: %s", amz_date);
		hdrs = curl_slist_append(hdrs, line);
		snprintf(line, sizeof(line), "x-amz-content-sha256: %s", hash);
		hdrs = curl_slist_append(hdrs, line);
		hdrs = curl_slist_append(hdrs, "Expect:");
		if (r->header)
			hdrs = curl_slist_append(hdrs, r->header);

		curl_easy_reset(h);
		curl_easy_setopt(h, CURLOPT_URL, url.data);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
		curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(h, CURLOPT_HEADERDATA, &sink);
		if (!strcmp(r->method, "HEAD")) {
			curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
		} else if (!strcmp(r->method, "PUT") || !strcmp(r->method, "POST")) {
			curl_easy_setopt(h, CURLOPT_POST, 1L);
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body ? r->body : "");
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
		} else if (strcmp(r->method, "GET")) {
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
		}
		cc = curl_easy_perform(h);
		if (cc == CURLE_OK)
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
		atomic_fetch_add(&s->io->requests, 1);
		if (!strcmp(r->method, "GET")) {
			atomic_fetch_add(&s->io->gets, 1);
			atomic_fetch_add(&s->io->bytes_in, sink.bytes);
		} else if (!strcmp(r->method, "PUT")) {
			atomic_fetch_add(&s->io->puts, 1);
			atomic_fetch_add(&s->io->bytes_out, r->body_len);
		}
		curl_slist_free_all(hdrs);
		handle_put(s, h);
		if (r->resp == &errbody)
			r->resp = NULL;

		bool retry = (cc != CURLE_OK && !sink.overflow) || r->status == 500 ||
		             r->status == 502 || r->status == 503 || r->status == 504;
		if (retry && attempt + 1 < S3_TRIES) {
			struct timespec ts = {0, (long)(100000000L << attempt)};
			while (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			nanosleep(&ts, NULL);
			*r = saved;
			r->status = 0;
			r->got = 0;
			buf_reset(&errbody);
			continue;
		}
		if (cc != CURLE_OK)
			return kerr_set(err, KERR_IO, "%s %s: %s", r->method, url.data,
			                sink.overflow ? "response too large"
			                              : curl_easy_strerror(cc));
		break;
	}
	if (r->status / 100 == 2)
		return 0;
	{
		char text[512];
		enum kerr_kind kind = KERR_IO;

		error_text(r->resp ? r->resp : &errbody, text, sizeof(text));
		if (r->status == 404)
			kind = KERR_NOT_FOUND;
		else if (r->status == 412 || r->status == 409)
			kind = KERR_CONFLICT;
		else if (r->status == 403 || r->status == 401)
			kind = KERR_AUTH;
		else if (r->status == 416)
			kind = KERR_INVALID;
		return kerr_set(err, kind, "%s %s: HTTP %ld%s%s", r->method, path.data, r->status,
		                text[0] ? " " : "", text);
	}
}

static char *key_of(struct s3 *s, enum blob_ns ns, const char *name)
{
	return xasprintf("%s%s%s", s->u.prefix, ns_prefix[ns], name);
}

/* ---- listing (ListObjectsV2, parsed with expat) ---- */

struct list_parse {
	struct buf text;
	bool in_contents;
	struct blob_obj cur;
	bool cur_ok;
	struct blob_s3_listing *l;
};

static void on_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	struct list_parse *p = arg;

	(void)attrs;
	buf_reset(&p->text);
	if (!strcmp(name, "Contents")) {
		p->in_contents = true;
		memset(&p->cur, 0, sizeof(p->cur));
		p->cur_ok = false;
	}
}

static uint64_t parse_iso_time(const char *s)
{
	struct tm tm = {0};

	if (sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
	           &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (uint64_t)timegm(&tm);
}

static void on_end(void *arg, const XML_Char *name)
{
	struct list_parse *p = arg;
	const char *t = p->text.data ? p->text.data : "";

	struct blob_s3_listing *l = p->l;

	if (p->in_contents && !strcmp(name, "Key")) {
		size_t len = strlen(t);
		l->seen++;
		if (len > l->strip && len - l->strip < sizeof(p->cur.name) &&
		    !strchr(t + l->strip, '/')) {
			memcpy(p->cur.name, t + l->strip, len - l->strip + 1);
			p->cur_ok = true;
		}
	} else if (p->in_contents && !strcmp(name, "Size")) {
		p->cur.size = strtoull(t, NULL, 10);
	} else if (p->in_contents && !strcmp(name, "LastModified")) {
		p->cur.mtime = parse_iso_time(t);
	} else if (!strcmp(name, "Contents")) {
		p->in_contents = false;
		if (p->cur_ok) {
			l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
			l->v[l->n++] = p->cur;
		}
	} else if (!strcmp(name, "IsTruncated")) {
		l->truncated = !strcmp(t, "true");
	} else if (!strcmp(name, "NextContinuationToken")) {
		free(l->token);
		l->token = xstrdup(t);
	}
	buf_reset(&p->text);
}

static void on_text(void *arg, const XML_Char *s, int len)
{
	struct list_parse *p = arg;

	if (buf_add(&p->text, s, (size_t)len, NULL) < 0)
		buf_reset(&p->text);
}

int blob_s3_parse_listing(struct blob_s3_listing *l, const char *xml, size_t len, struct kerr **err)
{
	struct list_parse p = {.text = BUF_INIT, .l = l};
	XML_Parser x;
	int r = 0;

	free(l->token);
	l->token = NULL;
	l->truncated = false;
	if (len > INT32_MAX)
		return kerr_set(err, KERR_LIMIT, "listing is too large");
	x = XML_ParserCreate(NULL);
	if (!x)
		abort();
	XML_SetUserData(x, &p);
	XML_SetElementHandler(x, on_start, on_end);
	XML_SetCharacterDataHandler(x, on_text);
	if (XML_Parse(x, xml, (int)len, 1) != XML_STATUS_OK)
		r = kerr_set(err, KERR_IO, "cannot parse a listing: %s",
		             XML_ErrorString(XML_GetErrorCode(x)));
	else if (l->truncated && !l->token)
		r = kerr_set(err, KERR_IO, "a listing is truncated without a token");
	XML_ParserFree(x);
	buf_release(&p.text);
	return r;
}

void blob_s3_listing_release(struct blob_s3_listing *l)
{
	free(l->v);
	free(l->token);
	memset(l, 0, sizeof(*l));
}

/* Every object whose key is prefix + a name without '/'. */
static int list_prefix(struct s3 *s, const char *prefix, size_t max_keys, bool delimit,
                       struct blob_obj **out, size_t *n, size_t *seen, struct kerr **err)
{
	struct blob_s3_listing l = {.strip = strlen(prefix)};
	int r = -1;

	do {
		_cleanup_buf_ struct buf q = BUF_INIT, body = BUF_INIT;

		buf_init(&body, S3_LIST_MAX);
		/* Sorted by name, values encoded (the canonical query is the query sent). */
		if (l.token) {
			buf_addstr(&q, "continuation-token=");
			if (sigv4_uri_encode(&q, l.token, strlen(l.token), false, err) < 0)
				goto out;
			buf_addstr(&q, "&");
		}
		buf_addstr(&q, delimit ? "delimiter=%2F&list-type=2" : "list-type=2");
		if (max_keys)
			buf_addf(&q, "&max-keys=%zu", max_keys);
		buf_addstr(&q, "&prefix=");
		if (sigv4_uri_encode(&q, prefix, strlen(prefix), false, err) < 0)
			goto out;
		struct s3_req rq = {.method = "GET", .query = q.data, .resp = &body};
		if (s3_do(s, &rq, err) < 0)
			goto out;
		if (blob_s3_parse_listing(&l, body.data ? body.data : "", body.len, err) < 0) {
			kerr_wrap(err, "cannot list '%s'", prefix);
			goto out;
		}
	} while (l.truncated && !max_keys);
	*out = steal_ptr(l.v);
	*n = l.n;
	if (seen)
		*seen = l.seen;
	r = 0;
out:
	blob_s3_listing_release(&l);
	return r;
}

/* ---- the ops ---- */

static int s3_connect(struct blob *b, struct kerr **err)
{
	struct s3 *s = xcalloc(1, sizeof(*s));
	const char *h;
	size_t hl;

	b->priv = s;
	s->io = &b->io;
	pthread_mutex_init(&s->lock, NULL);
	if (blob_s3_parse_url(b->where, &s->u, err) < 0)
		return -1;
	s->base = xstrdup(s->u.endpoint);
	while (strlen(s->base) > 8 && s->base[strlen(s->base) - 1] == '/')
		s->base[strlen(s->base) - 1] = '\0';
	h = strstr(s->base, "://") + 3;
	hl = strcspn(h, "/");
	if (h[hl] == '/')
		s->base[h - s->base + hl] = '\0';
	s->host = xasprintf("%.*s", (int)hl, h);
	return read_credentials(s, err);
}

static int s3_init(struct blob *b, struct kerr **err)
{
	_cleanup_free_ struct blob_obj *v = NULL;
	_cleanup_kerr_ struct kerr *e = NULL;
	struct s3 *s;
	size_t n;

	if (s3_connect(b, err) < 0)
		return -1;
	s = b->priv;
	struct s3_req head = {.method = "HEAD"};
	if (s3_do(s, &head, &e) < 0) {
		if (e->kind != KERR_NOT_FOUND)
			return kerr_pass(err, steal_ptr(e));
		struct s3_req mk = {.method = "PUT"};
		if (s3_do(s, &mk, err) < 0)
			return kerr_wrap(err, "cannot create bucket '%s'", s->u.bucket);
	}
	size_t seen;
	if (list_prefix(s, s->u.prefix, 1, false, &v, &n, &seen, err) < 0)
		return -1;
	if (seen) {
		for (size_t i = 0; i < n; i++)
			if (!strcmp(v[i].name, STORE_MARKER))
				return kerr_set(err, KERR_CONFLICT, "'%s' is a store already",
				                b->where);
		return kerr_set(err, KERR_CONFLICT,
		                "cannot create a store in '%s': it is not empty", b->where);
	}
	return 0;
}

static int s3_open(struct blob *b, bool exclusive, struct kerr **err)
{
	/* S3 has no locks: gc's exclusion is its grace time for unindexed packs (see gc.c). */
	(void)exclusive;
	return s3_connect(b, err);
}

static void s3_close(struct blob *b)
{
	struct s3 *s = b->priv;

	if (!s)
		return;
	for (size_t i = 0; i < s->npool; i++)
		curl_easy_cleanup(s->pool[i]);
	pthread_mutex_destroy(&s->lock);
	blob_s3_url_release(&s->u);
	free(s->host);
	free(s->base);
	free(s->access_key);
	if (s->secret) {
		explicit_bzero(s->secret, strlen(s->secret));
		free(s->secret);
	}
	free(s);
	b->priv = NULL;
}

static int put_object(struct s3 *s, const char *key, const void *data, size_t len,
                      enum blob_put mode, struct kerr **err)
{
	struct s3_req r = {.method = "PUT",
	                   .key = key,
	                   .body = data,
	                   .body_len = len,
	                   .header = mode == BLOB_CREATE ? "If-None-Match: *" : NULL};
	_cleanup_kerr_ struct kerr *e = NULL;

	if (s3_do(s, &r, &e) == 0)
		return 0;
	if (e->kind == KERR_CONFLICT && mode == BLOB_CREATE)
		return kerr_set(err, KERR_CONFLICT, "'%s' exists", key);
	return kerr_pass(err, steal_ptr(e));
}

static int s3_put(struct blob *b, enum blob_ns ns, const char *name, const void *data, size_t len,
                  enum blob_put mode, const char *fault_prefix, struct kerr **err)
{
	_cleanup_free_ char *key = key_of(b->priv, ns, name);
	char point[128];

	/* The same fault points as the directory's write-temp and rename. */
	snprintf(point, sizeof(point), "%s.tmp", fault_prefix);
	fault_point(point);
	if (put_object(b->priv, key, data, len, mode, err) < 0)
		return -1;
	snprintf(point, sizeof(point), "%s.renamed", fault_prefix);
	fault_point(point);
	return 0;
}

static int s3_get(struct blob *b, enum blob_ns ns, const char *name, size_t max, uint8_t **out,
                  size_t *len, struct kerr **err)
{
	_cleanup_free_ char *key = key_of(b->priv, ns, name);
	_cleanup_buf_ struct buf body = BUF_INIT;
	_cleanup_kerr_ struct kerr *e = NULL;

	buf_init(&body, max + 1);
	struct s3_req r = {.method = "GET", .key = key, .resp = &body};
	if (s3_do(b->priv, &r, &e) < 0) {
		if (e->kind == KERR_NOT_FOUND)
			return kerr_set(err, KERR_NOT_FOUND, "'%s' not found", key);
		return kerr_pass(err, steal_ptr(e));
	}
	if (body.len > max)
		return kerr_set(err, KERR_LIMIT, "'%s' is larger than %zu bytes", key, max);
	*len = body.len;
	if (!body.data)
		buf_addstr(&body, "");
	*out = (uint8_t *)buf_detach(&body);
	return 0;
}

static int s3_del(struct blob *b, enum blob_ns ns, const char *name, struct kerr **err)
{
	_cleanup_free_ char *key = key_of(b->priv, ns, name);
	_cleanup_kerr_ struct kerr *e = NULL;
	struct s3_req head = {.method = "HEAD", .key = key};
	struct s3_req del = {.method = "DELETE", .key = key};

	/* DELETE answers 204 for a missing key too; callers want to know. */
	if (s3_do(b->priv, &head, &e) < 0) {
		if (e->kind == KERR_NOT_FOUND)
			return kerr_set(err, KERR_NOT_FOUND, "'%s' not found", name);
		return kerr_pass(err, steal_ptr(e));
	}
	return s3_do(b->priv, &del, err);
}

static int s3_list(struct blob *b, enum blob_ns ns, struct blob_obj **out, size_t *n,
                   struct kerr **err)
{
	struct s3 *s = b->priv;
	_cleanup_free_ char *prefix = xasprintf("%s%s", s->u.prefix, ns_prefix[ns]);

	return list_prefix(s, prefix, 0, true, out, n, NULL, err);
}

static int s3_sync(struct blob *b, enum blob_ns ns, struct kerr **err)
{
	/* A PUT or DELETE that S3 answered is durable. */
	(void)b;
	(void)ns;
	(void)err;
	return 0;
}

static int s3_pack_create(struct blob *b, const char *name, int *fd, struct kerr **err)
{
	const char *dir = getenv("TMPDIR");

	(void)b;
	if (!dir || !*dir)
		dir = "/tmp";
	/* Staged in an unnamed file: nothing is left behind when the writer dies. */
	*fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (*fd < 0)
		return kerr_errno(err, errno, "cannot stage pack '%s' in '%s'", name, dir);
	return 0;
}

static int s3_pack_commit(struct blob *b, const char *name, int fd, struct kerr **err)
{
	_cleanup_free_ char *key = key_of(b->priv, BLOB_PACKS, name);
	_cleanup_free_ uint8_t *data = NULL;
	struct stat st;

	if (fstat(fd, &st) < 0)
		return kerr_errno(err, errno, "cannot stat pack '%s'", name);
	data = xmalloc((size_t)st.st_size + 1);
	if (fs_pread_full(fd, data, (size_t)st.st_size, 0) != st.st_size)
		return kerr_errno(err, errno ? errno : EIO, "cannot read staged pack '%s'", name);
	if (put_object(b->priv, key, data, (size_t)st.st_size, BLOB_CREATE, err) < 0)
		return kerr_wrap(err, "cannot upload pack '%s'", name);
	return 0;
}

static void s3_pack_discard(struct blob *b, const char *name)
{
	_cleanup_free_ char *key = key_of(b->priv, BLOB_PACKS, name);
	struct s3_req del = {.method = "DELETE", .key = key};

	s3_do(b->priv, &del, NULL);
}

static int s3_open_file(struct blob *b, enum blob_ns ns, const char *name, struct blob_file *f,
                        struct kerr **err)
{
	(void)err;
	free(f->name);
	f->name = key_of(b->priv, ns, name);
	return 0;
}

static int s3_file_size(struct blob_file *f, struct kerr **err)
{
	struct s3_req r = {.method = "HEAD", .key = f->name};

	if (s3_do(f->b->priv, &r, err) < 0)
		return -1;
	f->size = r.length;
	return 0;
}

static ssize_t s3_preadv(struct blob_file *f, const struct iovec *iov, int n, uint64_t off,
                         struct kerr **err)
{
	_cleanup_kerr_ struct kerr *e = NULL;
	size_t total = 0;
	char range[80];

	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (!total)
		return 0;
	snprintf(range, sizeof(range), "Range: bytes=%" PRIu64 "-%" PRIu64, off, off + total - 1);
	struct s3_req r = {.method = "GET", .key = f->name, .header = range, .iov = iov, .niov = n};
	if (s3_do(f->b->priv, &r, &e) < 0) {
		if (r.status == 416)
			return 0; /* the range starts past the end */
		return kerr_pass(err, steal_ptr(e));
	}
	/* 200 instead of 206 would be the whole object from 0: only right when off is 0. */
	if (r.status == 200 && off != 0)
		return kerr_set(err, KERR_IO, "'%s': the server ignored a range request", f->name);
	return (ssize_t)(r.got < total ? r.got : total);
}

static void s3_close_file(struct blob_file *f)
{
	(void)f;
}

const struct blob_ops blob_s3_ops = {
    .name = "s3",
    .init = s3_init,
    .open = s3_open,
    .close = s3_close,
    .put = s3_put,
    .get = s3_get,
    .del = s3_del,
    .list = s3_list,
    .sync = s3_sync,
    .pack_create = s3_pack_create,
    .pack_commit = s3_pack_commit,
    .pack_discard = s3_pack_discard,
    .open_file = s3_open_file,
    .file_size = s3_file_size,
    .preadv = s3_preadv,
    .close_file = s3_close_file,
};
