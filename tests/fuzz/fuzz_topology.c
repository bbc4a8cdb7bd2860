/* libFuzzer target: topology_parse and the regions file's parser (cloud_deployment_parse) must
 * refuse, never crash on, any file. */
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
	err = NULL;
	{
		struct cloud_deployment d;
		if (cloud_deployment_parse(text, "us-east-1", &d, &err) == 0)
			cloud_deployment_release(&d);
		kerr_free(err);
	}
	free(text);
	return 0;
}
