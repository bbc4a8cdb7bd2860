/* libFuzzer target: manifest_decode must refuse, never crash on, any input. */
#include <stddef.h>
#include <stdint.h>

#include "store/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest m;
	struct kerr *err = NULL;

	if (manifest_decode(data, size, &m, &err) == 0)
		manifest_release(&m);
	kerr_free(err);
	return 0;
}
