/* libFuzzer target: the S3 store's outside input, a store URL (first byte even) or a
 * ListObjectsV2 page from the object store (odd): refused or parsed, never a crash. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/blob.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kerr *err = NULL;
	char *text;

	if (!size)
		return 0;
	text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (data[0] & 1) {
		struct blob_s3_listing l = {.strip = data[0] >> 4};
		blob_s3_parse_listing(&l, text, size - 1, &err);
		blob_s3_listing_release(&l);
	} else {
		struct blob_s3_url u;
		if (blob_s3_parse_url(text, &u, &err) == 0)
			blob_s3_url_release(&u);
	}
	kerr_free(err);
	free(text);
	return 0;
}
