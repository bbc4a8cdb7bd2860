/* UserData: EC2's base64 decoded, within EC2's limit, with EC2's errors. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "api/user_data.h"
#include "util/xalloc.h"
#include "util/banned.h"

/* EVP_DecodeBlock skips leading and trailing blanks and takes '=' anywhere as a zero: only the
 * base64 alphabet, with at most two '=' at the end, is base64 here. */
static bool user_data_is_base64(const char *s, size_t len)
{
	size_t data = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");

	if (len % 4)
		return false;
	return data == len || (len - data <= 2 && strspn(s + data, "=") == len - data);
}

int user_data_decode(const char *b64, uint8_t **out, size_t *n, struct api_error *e)
{
	size_t len = strlen(b64);
	int got;

	*out = NULL;
	/* Anything longer decodes to more than the limit: no need to decode it to say so. */
	if (len > (USER_DATA_MAX + 2) / 3 * 4)
		goto too_long;
	if (!user_data_is_base64(b64, len))
		goto not_base64;
	*out = xmalloc(len / 4 * 3 + 1);
	got = EVP_DecodeBlock(*out, (const unsigned char *)b64, (int)len);
	if (got < 0)
		goto not_base64;
	/* EVP_DecodeBlock counts the padding as data: take it back off. */
	for (size_t i = len; i && b64[i - 1] == '='; i--)
		got--;
	if (got > USER_DATA_MAX)
		goto too_long;
	*n = (size_t)got;
	return 0;

too_long:
	api_error_set(e, "InvalidParameterValue", "User data is limited to %d bytes",
	              USER_DATA_MAX);
	goto fail;
not_base64:
	api_error_set(e, "InvalidParameterValue", "Invalid BASE64 encoding of user data");
fail:
	free(*out);
	*out = NULL;
	return -1;
}
