/* Resource ids in requests: their shape by prefix, and EC2's ….Malformed code for the wrong one. */
#include "api/server.h"

#include <string.h>

#include "util/cleanup.h"
#include "util/id.h"
#include "util/str.h"
#include "util/banned.h"

/* EC2's code for an id of the wrong shape, by prefix. */
static const struct {
	const char *prefix, *code;
} malformed[] = {
    {"ami", "InvalidAMIID.Malformed"},
    {"i", "InvalidInstanceID.Malformed"},
    {"vol", "InvalidVolumeID.Malformed"},
    {"snap", "InvalidSnapshotID.Malformed"},
    {"lt", "InvalidLaunchTemplateId.Malformed"},
    {"ami", "InvalidAMIID.Malformed"},
    {"i", "InvalidInstanceID.Malformed"},
    {"vol", "InvalidVolumeID.Malformed"},
    {"snap", "InvalidSnapshotID.Malformed"},
    {"vpc", "InvalidVpcID.Malformed"},
    {"subnet", "InvalidSubnetID.Malformed"},
    {"sg", "InvalidGroupId.Malformed"},
    {"sgr", "InvalidSecurityGroupRuleId.Malformed"},
};

bool api_id_ok(const char *prefix, const char *id, struct api_error *e)
{
	const char *code = "InvalidParameterValue";

	if (id_valid(prefix, id))
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(malformed); i++)
		if (!strcmp(malformed[i].prefix, prefix))
			code = malformed[i].code;
	api_error_set(e, code, "Invalid id: \"%s\" (expecting \"%s-...\")", id, prefix);
	return false;
}

int api_call_id(struct api_call *c, const char *name, const char *prefix, const char **id,
                struct api_error *e)
{
	*id = api_node_str(&c->root, name);
	return !*id || api_id_ok(prefix, *id, e) ? 0 : -1;
}

int api_call_id_list(struct api_call *c, const char *name, const char *prefix, const char ***ids,
                     size_t *n, struct api_error *e)
{
	*n = api_node_strings(&c->root, name, ids);
	for (size_t i = 0; i < *n; i++)
		if (!api_id_ok(prefix, (*ids)[i], e))
			return -1;
	return 0;
}
