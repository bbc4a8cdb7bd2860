/* libFuzzer target: user data. The input as the base64 UserData of RunInstances must decode only
 * within EC2's limit and encode back to itself; the input as the bytes of an instance's user data
 * must get a kind from its first USER_DATA_HEAD bytes alone, never read past the end. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "api/user_data.h"
#include "init/user_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int b64_value(char c)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c ? strchr(alphabet, c) : NULL;
	return p ? (int)(p - alphabet) : -1;
}

static void check_decode(const uint8_t *data, size_t size)
{
	char *b64 = malloc(size + 1), *again;
	struct api_error e = {0};
	uint8_t *out = (uint8_t *)b64;
	size_t len, n = 0, pad = 0;

	memcpy(b64, data, size);
	b64[size] = '\0'; /* a parameter's value is a string: what comes after a NUL is not seen */
	len = strlen(b64);
	if (user_data_decode(b64, &out, &n, &e) < 0) {
		if (out || strcmp(e.code, "InvalidParameterValue"))
			abort();
		free(b64);
		return;
	}
	if (!out || n > USER_DATA_MAX)
		abort();
	/* Encoded again: the same string, but for the bits of the last character that padding
	 * leaves unused (decoders ignore them; encoders write zeros). */
	again = malloc((n + 2) / 3 * 4 + 1);
	if ((size_t)EVP_EncodeBlock((unsigned char *)again, out, (int)n) != len)
		abort();
	while (pad < len && b64[len - 1 - pad] == '=')
		pad++;
	if (pad > 2 || memcmp(again + len - pad, b64 + len - pad, pad))
		abort();
	if (pad) {
		size_t last = len - pad - 1;
		int mask = pad == 1 ? 0x3c : 0x30, a = b64_value(again[last]),
		    b = b64_value(b64[last]);
		if (memcmp(again, b64, last) || a < 0 || b < 0 || a != (b & mask))
			abort();
	} else if (memcmp(again, b64, len)) {
		abort();
	}
	free(again);
	free(out);
	free(b64);
}

static void check_kind(const uint8_t *data, size_t size)
{
	/* An exact copy, so that ASan sees a read past the end. */
	uint8_t *copy = malloc(size ? size : 1);
	enum user_data_kind k;

	memcpy(copy, data, size);
	k = user_data_kind(copy, size);
	if ((unsigned)k >= USER_DATA_KIND__COUNT || (k == USER_DATA_EMPTY) != (size == 0))
		abort();
	/* kiln-init reads only the head: the kind must not depend on what comes after. */
	if (size > USER_DATA_HEAD && user_data_kind(copy, USER_DATA_HEAD) != k)
		abort();
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_decode(data, size);
	check_kind(data, size);
	return 0;
}
