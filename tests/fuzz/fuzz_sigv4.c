/* libFuzzer target: the SigV4 parser and canonicalizer must refuse, never crash on, any input.
 * The input is split on newlines into: Authorization header, raw query, raw path, X-Amz-Date,
 * an extra header "name:value", then the body. An Authorization starting with '@' is a
 * well-formed header with the rest as its SignedHeaders, so the fuzzer reaches the signature. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum api_sigv4_status lookup(void *ctx, const char *key, const char *token, char *secret,
                                    size_t n, struct kerr **err)
{
	(void)ctx;
	(void)err;
	if (key[0] == 'X')
		return API_SIGV4_UNKNOWN_KEY;
	if (key[0] == 'E') {
		kerr_set(err, KERR_IO, "lookup failed");
		return API_SIGV4_INTERNAL;
	}
	if (key[0] == 'T' && !token)
		return API_SIGV4_TOKEN_INVALID;
	memcpy(secret, "secret", n < 7 ? n : 7);
	secret[n - 1] = '\0';
	return API_SIGV4_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char e0[] = "", e1[] = "", path[] = "/", date[] = "20240101T120000Z", extra[] = "x-extra:1";
	char *copy = malloc(size + 1), *field[5] = {e0, e1, path, date, extra};
	char *p = copy, *extra_value;
	struct api_header h[5];
	struct api_http_request req = {.method = "POST", .headers = h};
	struct api_sigv4_params params = {.now = 1704110400, .lookup = lookup};
	struct api_sigv4_result res;
	struct api_sigv4_auth auth;
	enum api_sigv4_status why;
	struct buf b = BUF_INIT, auth_hdr = BUF_INIT;
	struct kerr *err = NULL;
	size_t nf = 0;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	/* NUL bytes end the header fields early, as they would in an HTTP parser's strings */
	while (nf < 5) {
		char *nl = memchr(p, '\n', size - (size_t)(p - copy));

		if (!nl)
			break;
		*nl = '\0';
		field[nf++] = p;
		p = nl + 1;
	}
	req.body = p;
	req.body_len = size - (size_t)(p - copy);
	req.query = field[1];
	req.path = field[2];
	extra_value = strchr(field[4], ':');
	if (extra_value)
		*extra_value++ = '\0';
	h[req.nheaders++] = (struct api_header){"Host", "127.0.0.1:8773"};
	h[req.nheaders++] = (struct api_header){"X-Amz-Date", field[3]};
	h[req.nheaders++] = (struct api_header){field[4], extra_value ? extra_value : ""};
	if (field[0][0] == '@') {
		buf_addf(&auth_hdr,
		         "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ec2/aws4_request, "
		         "SignedHeaders=%s, Signature=%064d",
		         field[0] + 1, 0);
		h[req.nheaders++] = (struct api_header){"Authorization", auth_hdr.data};
	} else if (field[0][0]) {
		h[req.nheaders++] = (struct api_header){"Authorization", field[0]};
	}

	if (api_sigv4_verify(&req, &params, &res, &err) < 0)
		kerr_free(err), err = NULL;
	if (api_sigv4_parse(&req, NULL, &auth, &why, &err) == 0) {
		if (api_sigv4_canonical_request(&req, &auth, "UNSIGNED", &b, &err) < 0)
			kerr_free(err), err = NULL;
		buf_release(&b);
	} else {
		kerr_free(err), err = NULL;
		/* canonicalize anyway, with the raw field as the signed header list */
		memset(&auth, 0, sizeof(auth));
		snprintf(auth.signed_headers, sizeof(auth.signed_headers), "%s", field[0]);
		if (api_sigv4_canonical_request(&req, &auth, "UNSIGNED", &b, &err) < 0)
			kerr_free(err), err = NULL;
		buf_release(&b);
	}
	if (api_sigv4_canonical_query(req.query, true, &b, &err) < 0)
		kerr_free(err), err = NULL;
	buf_release(&b);
	if (api_sigv4_canonical_uri(req.path, &b, &err) < 0)
		kerr_free(err), err = NULL;
	buf_release(&b);
	buf_release(&auth_hdr);
	free(copy);
	return 0;
}
