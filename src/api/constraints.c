/* Constraints that several actions share: Description length, Encrypted false. */
#include "api/server.h"

#include <string.h>

#include "util/cleanup.h"
#include "util/banned.h"

bool api_description_ok(const char *desc, struct api_error *e)
{
	if (!desc || strlen(desc) <= 255)
		return true;
	api_error_set(e, "InvalidParameterValue",
	              "The description may be at most 255 characters long");
	return false;
}

int api_call_unencrypted(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	bool encrypted = false;

	if (api_node_bool(&c->root, "Encrypted", &encrypted, &err) < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		return -1;
	}
	if (encrypted) {
		api_error_set(
		    e, "InvalidParameterValue",
		    "kiln does not encrypt volumes or snapshots; Encrypted must be false");
		return -1;
	}
	return 0;
}
