/* SigV4 verification: parse the Authorization header or the presigned query, rebuild the
 * canonical request the way AWS (and botocore) do, derive the signing key, compare in constant
 * time. */
#include "api/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/query.h"
#include "util/cleanup.h"
#include "util/hash.h"
#include "util/sigv4.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define ALGORITHM  SIGV4_ALGORITHM
#define TERMINATOR SIGV4_TERMINATOR

static const char *const status_names[API_SIGV4__COUNT] = {
    [API_SIGV4_OK] = "ok",
    [API_SIGV4_MISSING] = "missing",
    [API_SIGV4_INCOMPLETE] = "incomplete",
    [API_SIGV4_MALFORMED] = "malformed",
    [API_SIGV4_UNKNOWN_KEY] = "unknown-key",
    [API_SIGV4_MISMATCH] = "mismatch",
    [API_SIGV4_EXPIRED] = "expired",
    [API_SIGV4_INTERNAL] = "internal",
    [API_SIGV4_TOKEN_INVALID] = "token-invalid",
    [API_SIGV4_TOKEN_EXPIRED] = "token-expired",
};

const char *api_sigv4_status_name(enum api_sigv4_status s)
{
	return (unsigned)s < API_SIGV4__COUNT ? status_names[s] : "unknown";
}

/* kerr_set plus the status, in one line: `return fail(why, API_SIGV4_X, err, KERR_Y, "...")`. */
__attribute__((format(printf, 5, 6))) static int fail(enum api_sigv4_status *why,
                                                      enum api_sigv4_status s, struct kerr **err,
                                                      enum kerr_kind kind, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	*why = s;
	return kerr_set(err, kind, "%s", msg);
}

struct seg {
	size_t off, len;
};

int api_sigv4_canonical_uri(const char *raw_path, struct buf *out, struct kerr **err)
{
	_cleanup_free_ struct seg *segs = NULL;
	size_t n = 0, cap = 0, len = raw_path ? strlen(raw_path) : 0;

	if (!len)
		return buf_add(out, "/", 1, err);
	/* botocore's remove_dot_segments: drop empty and "." segments, ".." pops one. */
	for (size_t i = 0; i <= len;) {
		size_t j = i;

		while (j < len && raw_path[j] != '/')
			j++;
		if (j > i && !(j - i == 1 && raw_path[i] == '.')) {
			if (j - i == 2 && raw_path[i] == '.' && raw_path[i + 1] == '.') {
				if (n)
					n--;
			} else {
				if (n == cap) {
					cap = cap ? 2 * cap : 8;
					segs = xreallocarray(segs, cap, sizeof(*segs));
				}
				segs[n++] = (struct seg){i, j - i};
			}
		}
		i = j + 1;
	}
	if (raw_path[0] == '/' && buf_add(out, "/", 1, err) < 0)
		return -1;
	for (size_t k = 0; k < n; k++) {
		if (k && buf_add(out, "/", 1, err) < 0)
			return -1;
		if (sigv4_uri_encode(out, raw_path + segs[k].off, segs[k].len, false, err) < 0)
			return -1;
	}
	if (n && raw_path[len - 1] == '/' && buf_add(out, "/", 1, err) < 0)
		return -1;
	return 0;
}

/* Percent-decode s[0..len) ('+' is a space) into out; -1 on an invalid escape. */
static ssize_t pct_decode(const char *s, size_t len, char *out)
{
	size_t w = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%') {
			int hi, lo;

			if (i + 2 >= len)
				return -1;
			hi = hex_digit(s[i + 1]);
			lo = hex_digit(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			out[w++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[w++] = s[i] == '+' ? ' ' : s[i];
		}
	}
	return (ssize_t)w;
}

struct qpair {
	char *name, *value; /* strictly encoded */
};

static int cmp_qpair(const void *a, const void *b)
{
	const struct qpair *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

static char *encode_dup(const char *s, size_t len)
{
	struct buf b;

	buf_init(&b, BUF_MAX_DEFAULT);
	if (sigv4_uri_encode(&b, s, len, false, NULL) < 0)
		abort(); /* at most 3x an HTTP request line: far below the buffer's maximum */
	return buf_detach(&b);
}

int api_sigv4_canonical_query(const char *raw_query, bool presigned, struct buf *out,
                              struct kerr **err)
{
	struct qpair *pairs = NULL;
	size_t n = 0, cap = 0, len = raw_query ? strlen(raw_query) : 0;
	_cleanup_free_ char *tmp = xmalloc(len + 1);
	int r = 0;

	for (size_t i = 0; i < len;) {
		size_t j = i, eq;
		ssize_t nl, vl;
		char *name;

		while (j < len && raw_query[j] != '&')
			j++;
		if (j == i) {
			i++;
			continue;
		}
		for (eq = i; eq < j && raw_query[eq] != '='; eq++)
			;
		nl = pct_decode(raw_query + i, eq - i, tmp);
		if (nl < 0) {
			r = kerr_set(err, KERR_INVALID,
			             "invalid percent-escape in the query string");
			goto out;
		}
		if (presigned && (size_t)nl == strlen("X-Amz-Signature") &&
		    !memcmp(tmp, "X-Amz-Signature", (size_t)nl)) {
			i = j + 1;
			continue;
		}
		name = encode_dup(tmp, (size_t)nl);
		vl = eq < j ? pct_decode(raw_query + eq + 1, j - eq - 1, tmp) : 0;
		if (vl < 0) {
			free(name);
			r = kerr_set(err, KERR_INVALID,
			             "invalid percent-escape in the query string");
			goto out;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			pairs = xreallocarray(pairs, cap, sizeof(*pairs));
		}
		pairs[n].name = name;
		pairs[n].value = encode_dup(tmp, (size_t)vl);
		n++;
		i = j + 1;
	}
	if (n)
		qsort(pairs, n, sizeof(*pairs), cmp_qpair);
	for (size_t k = 0; k < n && r == 0; k++)
		r = buf_printf(out, err, "%s%s=%s", k ? "&" : "", pairs[k].name, pairs[k].value);
out:
	for (size_t k = 0; k < n; k++) {
		free(pairs[k].name);
		free(pairs[k].value);
	}
	free(pairs);
	return r;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Trimall: leading and trailing whitespace removed, inner runs collapsed to one space. */
static int add_trimmed(struct buf *out, const char *v, struct kerr **err)
{
	bool pending = false, any = false;

	for (; *v; v++) {
		if (is_space(*v)) {
			pending = any;
			continue;
		}
		if (pending && buf_add(out, " ", 1, err) < 0)
			return -1;
		if (buf_add(out, v, 1, err) < 0)
			return -1;
		pending = false;
		any = true;
	}
	return 0;
}

/* Calls fn for each name in a ';'-separated list; stops at its first non-zero answer. */
static int each_signed(const char *list, int (*fn)(void *ctx, const char *name, size_t len),
                       void *ctx)
{
	for (const char *p = list; *p;) {
		const char *e = strchr(p, ';');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		int r = fn(ctx, p, len);

		if (r)
			return r;
		p += len + (e ? 1 : 0);
	}
	return 0;
}

struct hdr_ctx {
	const struct api_http_request *req;
	struct buf *out;
	struct kerr **err;
};

static bool name_eq(const char *header, const char *name, size_t len)
{
	return strlen(header) == len && !strncasecmp(header, name, len);
}

static int add_header_line(void *arg, const char *name, size_t len)
{
	struct hdr_ctx *c = arg;
	bool first = true;

	if (buf_add(c->out, name, len, c->err) < 0 || buf_add(c->out, ":", 1, c->err) < 0)
		return -1;
	for (size_t i = 0; i < c->req->nheaders; i++) {
		if (!name_eq(c->req->headers[i].name, name, len))
			continue;
		if (!first && buf_add(c->out, ",", 1, c->err) < 0)
			return -1;
		if (add_trimmed(c->out, c->req->headers[i].value, c->err) < 0)
			return -1;
		first = false;
	}
	if (first)
		return kerr_set(c->err, KERR_INVALID, "signed header '%.*s' is not in the request",
		                (int)len, name);
	return buf_add(c->out, "\n", 1, c->err);
}

int api_sigv4_canonical_request(const struct api_http_request *req,
                                const struct api_sigv4_auth *auth, const char *payload_hash,
                                struct buf *out, struct kerr **err)
{
	struct hdr_ctx hc = {.req = req, .out = out, .err = err};

	if (buf_printf(out, err, "%s\n", req->method) < 0 ||
	    api_sigv4_canonical_uri(req->path, out, err) < 0 || buf_add(out, "\n", 1, err) < 0 ||
	    api_sigv4_canonical_query(req->query, auth->presigned, out, err) < 0 ||
	    buf_add(out, "\n", 1, err) < 0)
		return -1;
	if (each_signed(auth->signed_headers, add_header_line, &hc))
		return -1;
	return buf_printf(out, err, "\n%s\n%s", auth->signed_headers, payload_hash);
}

static size_t header_count(const struct api_http_request *req, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < req->nheaders; i++)
		n += !strcasecmp(req->headers[i].name, name);
	return n;
}

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* YYYYMMDDTHHMMSSZ to unix time; -1 when it is not exactly that or not a real instant. */
static int parse_amz_date(const char *s, time_t *out)
{
	struct tm tm = {0}, back;
	time_t t;

	if (strlen(s) != 16 || !all_digits(s, 8) || s[8] != 'T' || !all_digits(s + 9, 6) ||
	    s[15] != 'Z')
		return -1;
	tm.tm_year =
	    (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0') - 1900;
	tm.tm_mon = (s[4] - '0') * 10 + (s[5] - '0') - 1;
	tm.tm_mday = (s[6] - '0') * 10 + (s[7] - '0');
	tm.tm_hour = (s[9] - '0') * 10 + (s[10] - '0');
	tm.tm_min = (s[11] - '0') * 10 + (s[12] - '0');
	tm.tm_sec = (s[13] - '0') * 10 + (s[14] - '0');
	back = tm;
	t = timegm(&tm);
	/* timegm normalizes 20240231 to March 2nd: a round trip catches it. */
	if (t == (time_t)-1 || tm.tm_year != back.tm_year || tm.tm_mon != back.tm_mon ||
	    tm.tm_mday != back.tm_mday || tm.tm_hour != back.tm_hour || tm.tm_min != back.tm_min ||
	    tm.tm_sec != back.tm_sec)
		return -1;
	*out = t;
	return 0;
}

static bool token_ok(const char *s, size_t len, size_t max, bool (*ok)(char))
{
	if (!len || len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!ok(s[i]))
			return false;
	return true;
}

static bool key_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static bool scope_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* A lowercase HTTP token character (RFC 9110 tchar without upper case). */
static bool header_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* AKID/YYYYMMDD/region/service/aws4_request */
static int parse_credential(const char *cred, const char *const *services, struct api_sigv4_auth *a,
                            enum api_sigv4_status *why, struct kerr **err)
{
	const char *part[5];
	size_t len[5], n = 0, s = 0;
	const char *p = cred;

	while (n < 5) {
		const char *e = strchr(p, '/');

		part[n] = p;
		len[n] = e ? (size_t)(e - p) : strlen(p);
		n++;
		if (!e)
			break;
		p = e + 1;
	}
	if (n != 5 || strchr(part[4], '/'))
		return fail(
		    why, API_SIGV4_MALFORMED, err, KERR_INVALID,
		    "credential must have the form ACCESSKEY/YYYYMMDD/REGION/SERVICE/aws4_request");
	if (!token_ok(part[0], len[0], API_SIGV4_KEY_MAX, key_char))
		return fail(why, API_SIGV4_MALFORMED, err, KERR_INVALID,
		            "credential has an invalid access key id");
	if (len[1] != 8 || !all_digits(part[1], 8))
		return fail(why, API_SIGV4_MALFORMED, err, KERR_INVALID,
		            "credential date must have the form YYYYMMDD");
	if (!token_ok(part[2], len[2], API_SIGV4_SCOPE_PART_MAX, scope_char))
		return fail(why, API_SIGV4_MALFORMED, err, KERR_INVALID,
		            "credential has an invalid region");
	while (services[s] &&
	       (len[3] != strlen(services[s]) || memcmp(part[3], services[s], len[3])))
		s++;
	if (!services[s])
		return fail(why, API_SIGV4_MALFORMED, err, KERR_INVALID,
		            "credential should be scoped to correct service: '%s'", services[0]);
	if (len[4] != strlen(TERMINATOR) || memcmp(part[4], TERMINATOR, len[4]))
		return fail(why, API_SIGV4_MALFORMED, err, KERR_INVALID,
		            "credential should be scoped with a valid terminator: 'aws4_request'");
	memcpy(a->access_key, part[0], len[0]);
	a->access_key[len[0]] = '\0';
	memcpy(a->date, part[1], 8);
	a->date[8] = '\0';
	memcpy(a->region, part[2], len[2]);
	a->region[len[2]] = '\0';
	memcpy(a->service, part[3], len[3]);
	a->service[len[3]] = '\0';
	return 0;
}

struct name_list {
	const char *name[64];
	size_t len[64];
	size_t n;
	bool bad;
};

static int collect_name(void *arg, const char *name, size_t len)
{
	struct name_list *l = arg;

	if (l->n == ARRAY_SIZE(l->name) || !token_ok(name, len, 128, header_char)) {
		l->bad = true;
		return 1;
	}
	l->name[l->n] = name;
	l->len[l->n++] = len;
	return 0;
}

static int cmp_names(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	return c ? c : (al > bl) - (al < bl);
}

/* Check the SignedHeaders list and store it sorted. */
static int parse_signed_headers(const char *list, bool need_date, struct api_sigv4_auth *a,
                                enum api_sigv4_status *why, struct kerr **err)
{
	struct name_list l = {.n = 0};
	bool host = false, date = false;
	size_t w = 0;

	if (!*list || strlen(list) > API_SIGV4_SIGNED_HEADERS_MAX)
		return fail(why, API_SIGV4_MALFORMED, err, KERR_INVALID,
		            "signed headers list is empty or too long");
	each_signed(list, collect_name, &l);
	if (l.bad)
		return fail(
		    why, API_SIGV4_MALFORMED, err, KERR_INVALID,
		    "signed headers must be at most 64 lowercase header names separated by ';'");
	/* Insertion sort: at most 64 names. */
	for (size_t i = 1; i < l.n; i++) {
		for (size_t j = i;
		     j > 0 && cmp_names(l.name[j - 1], l.len[j - 1], l.name[j], l.len[j]) > 0;
		     j--) {
			const char *tn = l.name[j];
			size_t tl = l.len[j];

			l.name[j] = l.name[j - 1];
			l.len[j] = l.len[j - 1];
			l.name[j - 1] = tn;
			l.len[j - 1] = tl;
		}
	}
	for (size_t i = 0; i < l.n; i++) {
		if (i && !cmp_names(l.name[i - 1], l.len[i - 1], l.name[i], l.len[i]))
			return fail(why, API_SIGV4_MALFORMED, err, KERR_INVALID,
			            "signed header '%.*s' is listed twice", (int)l.len[i],
			            l.name[i]);
		host |= l.len[i] == 4 && !memcmp(l.name[i], "host", 4);
		date |= l.len[i] == 10 && !memcmp(l.name[i], "x-amz-date", 10);
		if (i)
			a->signed_headers[w++] = ';';
		memcpy(a->signed_headers + w, l.name[i], l.len[i]);
		w += l.len[i];
	}
	a->signed_headers[w] = '\0';
	if (!host)
		return fail(why, API_SIGV4_MALFORMED, err, KERR_INVALID,
		            "the host header must be signed");
	if (need_date && !date)
		return fail(why, API_SIGV4_MALFORMED, err, KERR_INVALID,
		            "the x-amz-date header must be signed");
	return 0;
}

static void set_signature(struct api_sigv4_auth *a, const char *sig, size_t len)
{
	a->signature[0] = '\0';
	if (len != 64)
		return;
	for (size_t i = 0; i < 64; i++)
		if (!((sig[i] >= '0' && sig[i] <= '9') || (sig[i] >= 'a' && sig[i] <= 'f')))
			return;
	memcpy(a->signature, sig, 64);
	a->signature[64] = '\0';
}

static int parse_date_into(const char *date, struct api_sigv4_auth *a, enum api_sigv4_status *why,
                           struct kerr **err)
{
	if (parse_amz_date(date, &a->signed_at) < 0)
		return fail(why, API_SIGV4_MALFORMED, err, KERR_INVALID,
		            "x-amz-date must have the form YYYYMMDDTHHMMSSZ");
	memcpy(a->amz_date, date, 16);
	a->amz_date[16] = '\0';
	if (memcmp(a->date, a->amz_date, 8))
		return fail(why, API_SIGV4_MALFORMED, err, KERR_INVALID,
		            "date in credential scope does not match YYYYMMDD from x-amz-date");
	return 0;
}

/* The session token as sent (NULL: none); longer than any kiln mints is malformed. */
static int set_token(struct api_sigv4_auth *a, const char *token, enum api_sigv4_status *why,
                     struct kerr **err)
{
	size_t n = token ? strlen(token) : 0;

	if (n > API_SIGV4_TOKEN_MAX)
		return fail(why, API_SIGV4_MALFORMED, err, KERR_INVALID,
		            "the security token is longer than %d bytes", API_SIGV4_TOKEN_MAX);
	memcpy(a->token, token ? token : "", n);
	a->token[n] = '\0';
	return 0;
}

/* "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." */
static int parse_header_form(const struct api_http_request *req, const char *hdr,
                             const char *const *services, struct api_sigv4_auth *a,
                             enum api_sigv4_status *why, struct kerr **err)
{
	static const char *const keys[3] = {"Credential", "SignedHeaders", "Signature"};
	_cleanup_free_ char *copy = NULL;
	char *val[3] = {NULL, NULL, NULL};
	const char *date;
	size_t alen = strlen(ALGORITHM);
	char *p;

	if (header_count(req, "Authorization") > 1)
		return fail(why, API_SIGV4_MALFORMED, err, KERR_INVALID,
		            "more than one authorization header");
	while (is_space(*hdr))
		hdr++;
	if (strncmp(hdr, ALGORITHM, alen) || !is_space(hdr[alen]))
		return fail(why, API_SIGV4_INCOMPLETE, err, KERR_INVALID,
		            "unsupported authorization type: only AWS4-HMAC-SHA256 is accepted");
	copy = xstrdup(hdr + alen);
	for (p = copy; p && *p;) {
		char *comma = strchr(p, ','), *eq, *end;
		size_t k;

		if (comma)
			*comma = '\0';
		while (is_space(*p))
			p++;
		for (end = p + strlen(p); end > p && is_space(end[-1]); end--)
			;
		*end = '\0';
		eq = strchr(p, '=');
		if (*p) {
			if (!eq)
				return fail(
				    why, API_SIGV4_INCOMPLETE, err, KERR_INVALID,
				    "authorization header component '%.32s' is not key=value", p);
			*eq = '\0';
			for (k = 0; k < 3 && strcmp(p, keys[k]); k++)
				;
			if (k == 3 || val[k])
				return fail(why, API_SIGV4_INCOMPLETE, err, KERR_INVALID,
				            "authorization header has an unknown or repeated "
				            "component '%.32s'",
				            p);
			val[k] = eq + 1;
		}
		p = comma ? comma + 1 : NULL;
	}
	for (size_t k = 0; k < 3; k++)
		if (!val[k] || !*val[k])
			return fail(why, API_SIGV4_INCOMPLETE, err, KERR_INVALID,
			            "authorization header requires '%s' parameter", keys[k]);
	date = api_http_header(req, "X-Amz-Date");
	if (!date)
		return fail(why, API_SIGV4_INCOMPLETE, err, KERR_INVALID,
		            "authorization header requires existence of a 'X-Amz-Date' header");
	if (header_count(req, "X-Amz-Date") > 1)
		return fail(why, API_SIGV4_MALFORMED, err, KERR_INVALID,
		            "more than one x-amz-date header");
	if (parse_credential(val[0], services, a, why, err) < 0 ||
	    parse_signed_headers(val[1], true, a, why, err) < 0 ||
	    parse_date_into(date, a, why, err) < 0)
		return -1;
	set_signature(a, val[2], strlen(val[2]));
	if (header_count(req, "X-Amz-Security-Token") > 1)
		return fail(why, API_SIGV4_MALFORMED, err, KERR_INVALID,
		            "more than one x-amz-security-token header");
	return set_token(a, api_http_header(req, "X-Amz-Security-Token"), why, err);
	return 0;
}

static bool has_presign_params(const struct api_params *q)
{
	return api_params_find(q, "X-Amz-Algorithm") || api_params_find(q, "X-Amz-Credential") ||
	       api_params_find(q, "X-Amz-Signature");
}

static int parse_query_form(const struct api_params *q, const char *const *services,
                            struct api_sigv4_auth *a, enum api_sigv4_status *why, struct kerr **err)
{
	static const char *const keys[6] = {"X-Amz-Algorithm", "X-Amz-Credential",
	                                    "X-Amz-Date",      "X-Amz-SignedHeaders",
	                                    "X-Amz-Signature", "X-Amz-Expires"};
	const struct api_param *tok;
	const char *val[6];
	char *end;
	long expires;

	for (size_t k = 0; k < 6; k++) {
		const struct api_param *p = api_params_find(q, keys[k]);

		val[k] = p ? p->value : "";
		if (!*val[k])
			return fail(why, API_SIGV4_INCOMPLETE, err, KERR_INVALID,
			            "presigned request requires the '%s' query parameter", keys[k]);
	}
	if (strcmp(val[0], ALGORITHM))
		return fail(why, API_SIGV4_INCOMPLETE, err, KERR_INVALID,
		            "unsupported X-Amz-Algorithm: only AWS4-HMAC-SHA256 is accepted");
	a->presigned = true;
	if (parse_credential(val[1], services, a, why, err) < 0 ||
	    parse_signed_headers(val[3], false, a, why, err) < 0 ||
	    parse_date_into(val[2], a, why, err) < 0)
		return -1;
	expires = strtol(val[5], &end, 10);
	if (*end || !all_digits(val[5], strlen(val[5])) || strlen(val[5]) > 7 || expires < 1 ||
	    expires > API_SIGV4_MAX_EXPIRES)
		return fail(why, API_SIGV4_MALFORMED, err, KERR_INVALID,
		            "X-Amz-Expires must be a number of seconds from 1 to %d",
		            API_SIGV4_MAX_EXPIRES);
	a->expires = expires;
	set_signature(a, val[4], strlen(val[4]));
	tok = api_params_find(q, "X-Amz-Security-Token");
	return set_token(a, tok ? tok->value : NULL, why, err);
}

int api_sigv4_parse(const struct api_http_request *req, const char *const *services,
                    struct api_sigv4_auth *out, enum api_sigv4_status *why, struct kerr **err)
{
	static const char *const ec2_only[] = {"ec2", NULL};
	struct api_params q;
	const char *hdr = api_http_header(req, "Authorization");
	bool presign;
	int r;

	memset(out, 0, sizeof(*out));
	if (!services)
		services = ec2_only;
	api_params_init(&q);
	if (req->query && *req->query &&
	    api_params_decode(&q, req->query, strlen(req->query), NULL, NULL) < 0) {
		api_params_release(&q);
		if (!hdr)
			return fail(why, API_SIGV4_MALFORMED, err, KERR_INVALID,
			            "cannot decode the query string");
		/* The header form signs the raw query; decoding problems surface later. */
	}
	presign = has_presign_params(&q);
	if (hdr && presign)
		r = fail(why, API_SIGV4_MALFORMED, err, KERR_INVALID,
		         "only one auth mechanism allowed: the authorization header or the X-Amz-* "
		         "query parameters");
	else if (hdr)
		r = parse_header_form(req, hdr, services, out, why, err);
	else if (presign)
		r = parse_query_form(&q, services, out, why, err);
	else
		r = fail(
		    why, API_SIGV4_MISSING, err, KERR_INVALID,
		    "request is not signed: it has no authorization header and no X-Amz-Signature");
	api_params_release(&q);
	return r;
}

static void fmt_time(time_t t, char out[32])
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(out, 32, "%Y%m%dT%H%M%SZ", &tm))
		str_copy(out, "?", 32);
}

static int check_time(const struct api_sigv4_auth *a, time_t now, enum api_sigv4_status *why,
                      struct kerr **err)
{
	char snow[32];

	fmt_time(now, snow);
	if (a->signed_at > now && a->signed_at - now > API_SIGV4_MAX_SKEW)
		return fail(
		    why, API_SIGV4_EXPIRED, err, KERR_INVALID,
		    "request signed at %s is more than 15 minutes ahead of the server time %s",
		    a->amz_date, snow);
	if (a->presigned) {
		if (now - a->signed_at > a->expires)
			return fail(why, API_SIGV4_EXPIRED, err, KERR_INVALID,
			            "presigned request signed at %s expired after %ld seconds "
			            "(server time %s)",
			            a->amz_date, a->expires, snow);
	} else if (now > a->signed_at && now - a->signed_at > API_SIGV4_MAX_SKEW) {
		return fail(
		    why, API_SIGV4_EXPIRED, err, KERR_INVALID,
		    "request signed at %s is more than 15 minutes behind the server time %s",
		    a->amz_date, snow);
	}
	return 0;
}

struct present_ctx {
	const struct api_http_request *req;
	const char *missing;
	size_t missing_len;
};

static int check_present(void *arg, const char *name, size_t len)
{
	struct present_ctx *c = arg;

	for (size_t i = 0; i < c->req->nheaders; i++)
		if (name_eq(c->req->headers[i].name, name, len))
			return 0;
	c->missing = name;
	c->missing_len = len;
	return 1;
}

int api_sigv4_verify(const struct api_http_request *req, const struct api_sigv4_params *p,
                     struct api_sigv4_result *out, struct kerr **err)
{
	struct api_sigv4_auth *a = &out->auth;
	enum api_sigv4_status *why = &out->status;
	struct present_ctx pc = {.req = req};
	char body_hash[HASH_HEX_LEN + 1], secret[API_SIGV4_SECRET_MAX + 1], sig[65];
	char sts_hash[HASH_HEX_LEN + 1];
	uint8_t h[HASH_LEN];
	const char *payload, *declared;
	struct kerr *lookup_err = NULL;
	_cleanup_buf_ struct buf canon = BUF_INIT, sts = BUF_INIT;
	enum api_sigv4_status r;

	memset(out, 0, sizeof(*out));
	if (api_sigv4_parse(req, p->services, a, why, err) < 0)
		return -1;
	if (check_time(a, p->now, why, err) < 0)
		return -1;
	if (each_signed(a->signed_headers, check_present, &pc))
		return fail(why, API_SIGV4_MISMATCH, err, KERR_AUTH,
		            "signed header '%.*s' is not in the request", (int)pc.missing_len,
		            pc.missing);

	payload = p->payload_sha256;
	if (!payload) {
		hash_sha256(req->body ? req->body : "", req->body ? req->body_len : 0, h);
		hash_hex(h, HASH_LEN, body_hash);
		payload = body_hash;
	}
	declared = api_http_header(req, "X-Amz-Content-Sha256");
	if (declared && strcmp(declared, payload))
		return fail(why, API_SIGV4_MISMATCH, err, KERR_AUTH,
		            "x-amz-content-sha256 does not match the SHA-256 of the body (unsigned "
		            "payloads are refused)");

	r = p->lookup(p->lookup_ctx, a->access_key, a->token[0] ? a->token : NULL, secret,
	              sizeof(secret), &lookup_err);
	switch (r) {
	case API_SIGV4_OK:
		break;
	case API_SIGV4_UNKNOWN_KEY:
		kerr_free(lookup_err);
		return fail(why, API_SIGV4_UNKNOWN_KEY, err, KERR_AUTH,
		            "AWS was not able to validate the provided access credentials: unknown "
		            "access key '%s'",
		            a->access_key);
	case API_SIGV4_TOKEN_INVALID:
		kerr_free(lookup_err);
		return fail(why, API_SIGV4_TOKEN_INVALID, err, KERR_AUTH,
		            "The security token included in the request is invalid");
	case API_SIGV4_TOKEN_EXPIRED:
		kerr_free(lookup_err);
		return fail(why, API_SIGV4_TOKEN_EXPIRED, err, KERR_AUTH,
		            "The security token included in the request is expired");
	default:
		*why = API_SIGV4_INTERNAL;
		if (!lookup_err)
			return kerr_set(err, KERR_INTERNAL, "cannot look up access key '%s'",
			                a->access_key);
		kerr_wrap(&lookup_err, "cannot look up access key '%s'", a->access_key);
		return kerr_pass(err, lookup_err);
	}
	kerr_free(lookup_err);
	secret[sizeof(secret) - 1] = '\0';

	buf_init(&canon, 1 << 20);
	if (api_sigv4_canonical_request(req, a, payload, &canon, err) < 0) {
		OPENSSL_cleanse(secret, sizeof(secret));
		*why = API_SIGV4_MALFORMED;
		return kerr_wrap(err, "cannot build the canonical request");
	}
	hash_sha256(canon.data, canon.len, h);
	hash_hex(h, HASH_LEN, sts_hash);
	buf_addf(&sts, ALGORITHM "\n%s\n%s/%s/%s/" TERMINATOR "\n%s", a->amz_date, a->date,
	         a->region, a->service, sts_hash);
	sigv4_sign(secret, a->date, a->region, a->service, sts.data, sig);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (strlen(a->signature) != 64 || CRYPTO_memcmp(sig, a->signature, 64))
		return fail(why, API_SIGV4_MISMATCH, err, KERR_AUTH,
		            "the request signature we calculated does not match the signature you "
		            "provided; "
		            "check your secret access key and signing method");
	*why = API_SIGV4_OK;
	return 0;
}
