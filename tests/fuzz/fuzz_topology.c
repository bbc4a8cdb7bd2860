/* libFuzzer target: topology_parse must refuse, never crash on, any topology file. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloud/cloud.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct topology t;
	struct kerr *err = NULL;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (topology_parse(text, &t, &err) == 0)
		topology_release(&t);
	kerr_free(err);
	free(text);
	return 0;
}
