/* SigV4's shared core: UriEncode, the signing key and signature (OpenSSL HMAC-SHA256), and the
 * canonical request of a client that signs host, x-amz-content-sha256 and x-amz-date. */
#include "util/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/hash.h"
#include "util/xalloc.h"
#include "util/banned.h"

bool sigv4_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

int sigv4_uri_encode(struct buf *out, const char *s, size_t len, bool keep_slash, struct kerr **err)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t run = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[3];

		if (sigv4_unreserved(c) || (keep_slash && c == '/')) {
			run++;
			continue;
		}
		if (run && buf_add(out, s + i - run, run, err) < 0)
			return -1;
		run = 0;
		esc[0] = '%';
		esc[1] = hex[c >> 4];
		esc[2] = hex[c & 15];
		if (buf_add(out, esc, 3, err) < 0)
			return -1;
	}
	if (run && buf_add(out, s + len - run, run, err) < 0)
		return -1;
	return 0;
}

static void hmac(const void *key, size_t keylen, const char *msg, uint8_t out[32])
{
	unsigned int n = 32;

	if (!HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), out, &n))
		abort();
}

void sigv4_sign(const char *secret, const char *date, const char *region, const char *service,
                const char *string_to_sign, char out[65])
{
	size_t slen = strlen(secret);
	char *k = xmalloc(slen + 5);
	uint8_t a[32], b[32];

	memcpy(k, "AWS4", 4);
	memcpy(k + 4, secret, slen + 1);
	hmac(k, slen + 4, date, a);
	hmac(a, 32, region, b);
	hmac(b, 32, service, a);
	hmac(a, 32, SIGV4_TERMINATOR, b);
	hmac(b, 32, string_to_sign, a);
	hash_hex(a, 32, out);
	OPENSSL_cleanse(k, slen + 4);
	OPENSSL_cleanse(b, sizeof(b));
	free(k);
}

#define SIGNED_HEADERS "host;x-amz-content-sha256;x-amz-date"

int sigv4_authorization(const struct sigv4_request *r, const char *access_key, const char *secret,
                        const char *region, const char *service, struct buf *out, struct kerr **err)
{
	_cleanup_buf_ struct buf canon = BUF_INIT, sts = BUF_INIT;
	uint8_t digest[32];
	char hex[65], date[9], sig[65];

	if (strlen(r->amz_date) != 16)
		return kerr_set(err, KERR_INVALID, "invalid request date '%s'", r->amz_date);
	memcpy(date, r->amz_date, 8);
	date[8] = '\0';
	if (buf_printf(&canon, err, "%s\n", r->method) < 0 ||
	    sigv4_uri_encode(&canon, r->path, strlen(r->path), true, err) < 0 ||
	    buf_printf(&canon, err,
	               "\n%s\nhost:%s\nx-amz-content-sha256:%s\nx-amz-date:%s\n\n" SIGNED_HEADERS
	               "\n%s",
	               r->query, r->host, r->payload_hash, r->amz_date, r->payload_hash) < 0)
		return -1;
	hash_sha256(canon.data, canon.len, digest);
	hash_hex(digest, 32, hex);
	if (buf_printf(&sts, err, SIGV4_ALGORITHM "\n%s\n%s/%s/%s/" SIGV4_TERMINATOR "\n%s",
	               r->amz_date, date, region, service, hex) < 0)
		return -1;
	sigv4_sign(secret, date, region, service, sts.data, sig);
	return buf_printf(out, err,
	                  SIGV4_ALGORITHM " Credential=%s/%s/%s/%s/" SIGV4_TERMINATOR
	                                  ", SignedHeaders=" SIGNED_HEADERS ", Signature=%s",
	                  access_key, date, region, service, sig);
}
