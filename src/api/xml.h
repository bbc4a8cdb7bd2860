/* A small XML writer for EC2 responses over struct buf: elements, escaped text, the EC2 shapes
 * (`<xxxSet><item>…</item></xxxSet>`, booleans, timestamps), the success and error envelopes, and
 * request ids.
 *
 * Errors are sticky: the first failure (a bad element name, text that XML cannot carry, the
 * buffer's limit) is kept, later calls do nothing, and api_xml_finish/api_xml_end reports it. So
 * a handler writes its whole response and checks once. An element with no content is written
 * `<name/>`, which makes an empty set `<xxxSet/>` as EC2 sends it. */
#ifndef KILN_API_XML_H
#define KILN_API_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/kerr.h"

#define API_XML_DEPTH_MAX    32
#define API_XML_NAME_MAX     128
#define API_XML_NAMESPACE    "http://ec2.amazonaws.com/doc/2016-11-15/"
#define API_XML_CONTENT_TYPE "text/xml;charset=UTF-8"
#define API_REQUEST_ID_LEN   36 /* 8-4-4-4-12 */

struct api_xml {
	struct buf *out;
	struct kerr *err; /* the first failure */
	bool tag_open;    /* "<name" written, '>' not yet */
	unsigned depth;
	size_t name_at[API_XML_DEPTH_MAX]; /* offsets into names */
	char names[API_XML_DEPTH_MAX * (API_XML_NAME_MAX + 1)];
	size_t names_len;
};

void api_xml_init(struct api_xml *x, struct buf *out);
/* Frees a failure nobody collected. */
void api_xml_release(struct api_xml *x);
/* 0, or -1 with the first failure; also fails when elements are left open. */
int api_xml_finish(struct api_xml *x, struct kerr **err) __attribute__((warn_unused_result));

/* Names: [A-Za-z_][A-Za-z0-9_.-]*, at most API_XML_NAME_MAX bytes, nested at most
 * API_XML_DEPTH_MAX deep. */
void api_xml_open(struct api_xml *x, const char *name);
void api_xml_close(struct api_xml *x);
/* Escaped character data: & < > " ' as entities, tab/LF/CR as &#9; &#10; &#13;; other control
 * characters, U+FFFE/U+FFFF and invalid UTF-8 are refused (KERR_INVALID): XML 1.0 cannot hold
 * them. */
void api_xml_text(struct api_xml *x, const char *s);
void api_xml_textn(struct api_xml *x, const char *s, size_t len);

/* <name>text</name>; nothing at all when text is NULL (an absent optional member). */
void api_xml_elem(struct api_xml *x, const char *name, const char *text);
void api_xml_elemf(struct api_xml *x, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void api_xml_bool(struct api_xml *x, const char *name, bool v);
void api_xml_int(struct api_xml *x, const char *name, int64_t v);
/* YYYY-MM-DDTHH:MM:SS.mmmZ (UTC) from unix milliseconds: ".000Z" for whole seconds, as AWS
 * sends; years 1970-9999. */
void api_xml_time(struct api_xml *x, const char *name, int64_t unix_ms);
/* The same text into out (25 bytes); -1 outside the range. */
int api_xml_format_time(int64_t unix_ms, char out[25]);

/* EC2 lists: api_xml_open(x, "imagesSet"), then per member api_xml_item(x) ... api_xml_close(x),
 * then api_xml_close(x). */
void api_xml_item(struct api_xml *x);
/* <set><item><member>v</member></item>...</set>, or <set/> when n is 0. */
void api_xml_string_set(struct api_xml *x, const char *set, const char *member,
                        const char *const *values, size_t n);

/* `<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="…/2016-11-15/">
 * <requestId>{id}</requestId>`; the handler writes the members, api_xml_end closes the root and
 * finishes. */
void api_xml_begin(struct api_xml *x, const char *action, const char *request_id);
int api_xml_end(struct api_xml *x, struct kerr **err) __attribute__((warn_unused_result));

/* The whole error document into out (appended):
 * <?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>c</Code><Message>m
 * </Message></Error></Errors><RequestID>id</RequestID></Response>. Text XML cannot hold is
 * replaced by U+FFFD rather than refused, so an error can always be told. */
int api_xml_error(struct buf *out, const char *code, const char *message, const char *request_id,
                  struct kerr **err) __attribute__((warn_unused_result));

/* api_xml_error with the kiln error behind it (kind, subject, its id, kiln's message) as
 * <Kind>, <Subject>, <SubjectId>, <Cause> in <Error>: what calls between deployments answer, so
 * that the caller has the error itself, not only its EC2 code (api/peer.c). */
int api_xml_error_cause(struct buf *out, const char *code, const char *message,
                        const struct kerr *cause, const char *request_id, struct kerr **err)
    __attribute__((warn_unused_result));
/* The Query protocol's envelope (STS): `<?xml …?>\n<{action}Response xmlns="{xmlns}">`; the
 * handler writes `<{action}Result>` and `<ResponseMetadata>`, api_xml_end closes the root. */
void api_xml_begin_query(struct api_xml *x, const char *action, const char *xmlns);

/* The Query protocol's error document (STS), appended to out, as api_xml_error does:
 * <ErrorResponse xmlns="{xmlns}"><Error><Type>Sender|Receiver</Type><Code>c</Code><Message>m
 * </Message></Error><RequestId>id</RequestId></ErrorResponse>; Receiver when status >= 500. */
int api_xml_query_error(struct buf *out, const char *xmlns, int status, const char *code,
                        const char *message, const char *request_id, struct kerr **err)
    __attribute__((warn_unused_result));

/* A random UUID version 4, lowercase: out holds API_REQUEST_ID_LEN + 1 bytes. */
void api_request_id(char out[API_REQUEST_ID_LEN + 1]);

#endif
