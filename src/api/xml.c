/* XML writer with sticky errors, EC2 envelopes and request ids. */
#include "api/xml.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/id.h"
#include "util/banned.h"

#define XML_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

void api_xml_init(struct api_xml *x, struct buf *out)
{
	memset(x, 0, sizeof(*x));
	x->out = out;
}

void api_xml_release(struct api_xml *x)
{
	kerr_free(x->err);
	x->err = NULL;
}

int api_xml_finish(struct api_xml *x, struct kerr **err)
{
	if (!x->err && x->depth)
		kerr_set(&x->err, KERR_INTERNAL, "xml: element '%s' is still open",
		         x->names + x->name_at[x->depth - 1]);
	if (x->err) {
		struct kerr *e = x->err;

		x->err = NULL;
		return kerr_pass(err, e);
	}
	return 0;
}

static bool ok(struct api_xml *x)
{
	return !x->err;
}

static void put(struct api_xml *x, const char *s, size_t len)
{
	if (ok(x) && buf_add(x->out, s, len, &x->err) < 0)
		return;
}

static void puts_(struct api_xml *x, const char *s)
{
	put(x, s, strlen(s));
}

/* Finish a pending start tag before content. */
static void content(struct api_xml *x)
{
	if (x->tag_open) {
		put(x, ">", 1);
		x->tag_open = false;
	}
}

static bool name_valid(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > API_XML_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';

		if (!alpha && (i == 0 || !((c >= '0' && c <= '9') || c == '.' || c == '-')))
			return false;
	}
	return true;
}

void api_xml_open(struct api_xml *x, const char *name)
{
	size_t n;

	if (!ok(x))
		return;
	if (!name || !name_valid(name)) {
		kerr_set(&x->err, KERR_INTERNAL, "xml: invalid element name '%.64s'",
		         name ? name : "(null)");
		return;
	}
	if (x->depth == API_XML_DEPTH_MAX) {
		kerr_set(&x->err, KERR_INTERNAL, "xml: elements nested deeper than %d",
		         API_XML_DEPTH_MAX);
		return;
	}
	content(x);
	put(x, "<", 1);
	puts_(x, name);
	n = strlen(name);
	x->name_at[x->depth++] = x->names_len;
	memcpy(x->names + x->names_len, name, n + 1);
	x->names_len += n + 1;
	x->tag_open = true;
}

void api_xml_close(struct api_xml *x)
{
	const char *name;

	if (!ok(x))
		return;
	if (!x->depth) {
		kerr_set(&x->err, KERR_INTERNAL, "xml: close without an open element");
		return;
	}
	name = x->names + x->name_at[--x->depth];
	if (x->tag_open) {
		put(x, "/>", 2);
		x->tag_open = false;
	} else {
		put(x, "</", 2);
		puts_(x, name);
		put(x, ">", 1);
	}
	x->names_len = x->name_at[x->depth];
}

/* Length of the UTF-8 character at s[0..len) and its code point, or 0 when invalid. */
static size_t utf8_decode(const unsigned char *s, size_t len, unsigned *cp)
{
	unsigned c = s[0], v;
	size_t n;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF)
		n = 2, v = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 3, v = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 4, v = c & 0x07;
	else
		return 0;
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3F);
	}
	if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || v > 0x10FFFF ||
	    (v >= 0xD800 && v <= 0xDFFF))
		return 0;
	*cp = v;
	return n;
}

/* Escape s into out. Characters XML 1.0 cannot carry fail, or become U+FFFD when lossy. */
static int escape(struct buf *out, const char *s, size_t len, bool lossy, struct kerr **err)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run = 0;

	while (i < len) {
		const char *rep = NULL;
		unsigned cp;
		size_t n = utf8_decode(u + i, len - i, &cp);
		char num[8];

		if (n == 1) {
			switch (cp) {
			case '&':
				rep = "&amp;";
				break;
			case '<':
				rep = "&lt;";
				break;
			case '>':
				rep = "&gt;";
				break;
			case '"':
				rep = "&quot;";
				break;
			case '\'':
				rep = "&apos;";
				break;
			case '\t':
			case '\n':
			case '\r':
				snprintf(num, sizeof(num), "&#%u;", cp);
				rep = num;
				break;
			default:
				if (cp < 0x20)
					n = 0;
			}
		} else if (n && (cp == 0xFFFE || cp == 0xFFFF)) {
			n = 0;
		}
		if (n && !rep) {
			run += n;
			i += n;
			continue;
		}
		if (run && buf_add(out, s + i - run, run, err) < 0)
			return -1;
		run = 0;
		if (!n) {
			if (!lossy)
				return kerr_set(
				    err, KERR_INVALID,
				    "text has a control character or invalid UTF-8 at byte %zu", i);
			rep = "\xEF\xBF\xBD";
			n = 1;
		}
		if (buf_add(out, rep, strlen(rep), err) < 0)
			return -1;
		i += n;
	}
	if (run && buf_add(out, s + len - run, run, err) < 0)
		return -1;
	return 0;
}

void api_xml_textn(struct api_xml *x, const char *s, size_t len)
{
	if (!ok(x))
		return;
	content(x);
	if (ok(x))
		(void)escape(x->out, s, len, false, &x->err);
}

void api_xml_text(struct api_xml *x, const char *s)
{
	api_xml_textn(x, s, strlen(s));
}

void api_xml_elem(struct api_xml *x, const char *name, const char *text)
{
	if (!text)
		return;
	api_xml_open(x, name);
	if (*text)
		api_xml_text(x, text);
	api_xml_close(x);
}

void api_xml_elemf(struct api_xml *x, const char *name, const char *fmt, ...)
{
	char small[256], *s = small;
	va_list ap;
	int n;

	if (!ok(x))
		return;
	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		kerr_set(&x->err, KERR_INTERNAL, "xml: cannot format '%s'", fmt);
		return;
	}
	if ((size_t)n >= sizeof(small)) {
		s = malloc((size_t)n + 1);
		if (!s)
			abort();
		va_start(ap, fmt);
		vsnprintf(s, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	api_xml_elem(x, name, s);
	if (s != small)
		free(s);
}

void api_xml_bool(struct api_xml *x, const char *name, bool v)
{
	api_xml_elem(x, name, v ? "true" : "false");
}

void api_xml_int(struct api_xml *x, const char *name, int64_t v)
{
	api_xml_elemf(x, name, "%lld", (long long)v);
}

int api_xml_format_time(int64_t unix_ms, char out[25])
{
	time_t secs;
	struct tm tm;

	/* 253402300800000 ms is 10000-01-01T00:00:00Z. */
	if (unix_ms < 0 || unix_ms >= INT64_C(253402300800000))
		return -1;
	secs = (time_t)(unix_ms / 1000);
	if (!gmtime_r(&secs, &tm))
		return -1;
	if (strftime(out, 25, "%Y-%m-%dT%H:%M:%S", &tm) != 19)
		return -1;
	snprintf(out + 19, 6, ".%03dZ", (int)(unix_ms % 1000));
	return 0;
}

void api_xml_time(struct api_xml *x, const char *name, int64_t unix_ms)
{
	char s[25];

	if (!ok(x))
		return;
	if (api_xml_format_time(unix_ms, s) < 0) {
		kerr_set(&x->err, KERR_INVALID, "xml: time %lld ms is outside years 1970-9999",
		         (long long)unix_ms);
		return;
	}
	api_xml_elem(x, name, s);
}

void api_xml_item(struct api_xml *x)
{
	api_xml_open(x, "item");
}

void api_xml_string_set(struct api_xml *x, const char *set, const char *member,
                        const char *const *values, size_t n)
{
	api_xml_open(x, set);
	for (size_t i = 0; i < n; i++) {
		api_xml_item(x);
		api_xml_elem(x, member, values[i]);
		api_xml_close(x);
	}
	api_xml_close(x);
}

void api_xml_begin_query(struct api_xml *x, const char *action, const char *xmlns)
{
	char root[API_XML_NAME_MAX + 1];
	int n = snprintf(root, sizeof(root), "%s%s", action, "Response");

	if (!ok(x))
		return;
	if (n < 0 || (size_t)n >= sizeof(root) || x->depth || x->tag_open) {
		kerr_set(&x->err, KERR_INTERNAL, "xml: cannot begin a response for action '%.64s'",
		         action);
		return;
	}
	puts_(x, XML_DECL);
	api_xml_open(x, root);
	puts_(x, " xmlns=\"");
	puts_(x, xmlns);
	puts_(x, "\"");
}

void api_xml_begin(struct api_xml *x, const char *action, const char *request_id)
{
	api_xml_begin_query(x, action, API_XML_NAMESPACE);
	api_xml_elem(x, "requestId", request_id);
}

int api_xml_end(struct api_xml *x, struct kerr **err)
{
	if (ok(x) && x->depth != 1)
		kerr_set(&x->err, KERR_INTERNAL, "xml: %u elements open at the end of the response",
		         x->depth);
	api_xml_close(x);
	return api_xml_finish(x, err);
}

int api_xml_error(struct buf *out, const char *code, const char *message, const char *request_id,
                  struct kerr **err)
{
	return api_xml_error_cause(out, code, message, NULL, request_id, err);
}

int api_xml_error_cause(struct buf *out, const char *code, const char *message,
                        const struct kerr *cause, const char *request_id, struct kerr **err)
{
	size_t start = out->len;

#define ADD(lit) buf_add(out, lit, strlen(lit), err)
#define ESC(s)   escape(out, s, strlen(s), true, err)
	if (ADD(XML_DECL "<Response><Errors><Error><Code>") < 0 || ESC(code) < 0 ||
	    ADD("</Code><Message>") < 0 || ESC(message) < 0 || ADD("</Message>") < 0 ||
	    (cause &&
	     (ADD("<Kind>") < 0 || ESC(kerr_kind_name(cause->kind)) < 0 ||
	      ADD("</Kind><Subject>") < 0 || ESC(kerr_subject_name(cause->subject)) < 0 ||
	      ADD("</Subject><SubjectId>") < 0 || ESC(cause->id) < 0 ||
	      ADD("</SubjectId><Cause>") < 0 || ESC(cause->msg) < 0 || ADD("</Cause>") < 0)) ||
	    ADD("</Error></Errors><RequestID>") < 0 || ESC(request_id) < 0 ||
	    ADD("</RequestID></Response>") < 0) {
#undef ESC
#undef ADD
		out->len = start;
		if (out->cap)
			out->data[start] = '\0';
		return -1;
	}
	return 0;
}

int api_xml_query_error(struct buf *out, const char *xmlns, int status, const char *code,
                        const char *message, const char *request_id, struct kerr **err)
{
	size_t start = out->len;

#define ADD(lit) buf_add(out, lit, strlen(lit), err)
	if (ADD(XML_DECL "<ErrorResponse xmlns=\"") < 0 ||
	    escape(out, xmlns, strlen(xmlns), true, err) < 0 || ADD("\"><Error><Type>") < 0 ||
	    ADD(status >= 500 ? "Receiver" : "Sender") < 0 || ADD("</Type><Code>") < 0 ||
	    escape(out, code, strlen(code), true, err) < 0 || ADD("</Code><Message>") < 0 ||
	    escape(out, message, strlen(message), true, err) < 0 ||
	    ADD("</Message></Error><RequestId>") < 0 ||
	    escape(out, request_id, strlen(request_id), true, err) < 0 ||
	    ADD("</RequestId></ErrorResponse>") < 0) {
#undef ADD
		out->len = start;
		if (out->cap)
			out->data[start] = '\0';
		return -1;
	}
	return 0;
}

void api_request_id(char out[API_REQUEST_ID_LEN + 1])
{
	char hex[33];

	id_random_hex(hex, 32);
	hex[12] = '4'; /* version 4 */
	hex[16] =
	    "89ab"[(hex[16] <= '9' ? hex[16] - '0' : hex[16] - 'a' + 10) & 3]; /* variant 10xx */
	snprintf(out, API_REQUEST_ID_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
	         hex + 16, hex + 20);
}
