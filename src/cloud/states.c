/* The states of the domain's resources: each an enum (cloud.h) whose names are the text the
 * database keeps and the wire shows. Code that decides compares the enums. */
#include "cloud.h"

#include <string.h>

#include "util/cleanup.h"
#include "util/banned.h"

static int state_parse(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] && !strcmp(names[i], name))
			return (int)i;
	return -1;
}

static const char *state_name(const char *const *names, size_t n, int s)
{
	return s >= 0 && (size_t)s < n && names[s] ? names[s] : "unknown";
}

static const char *const instance_states[] = {
    [INSTANCE_PENDING] = "pending",
    [INSTANCE_RUNNING] = "running",
    [INSTANCE_SHUTTING_DOWN] = "shutting-down",
    [INSTANCE_TERMINATED] = "terminated",
    [INSTANCE_STOPPING] = "stopping",
    [INSTANCE_STOPPED] = "stopped",
};

/* EC2's numeric codes of the instance states. */
static const int instance_codes[] = {
    [INSTANCE_PENDING] = 0,     [INSTANCE_RUNNING] = 16,  [INSTANCE_SHUTTING_DOWN] = 32,
    [INSTANCE_TERMINATED] = 48, [INSTANCE_STOPPING] = 64, [INSTANCE_STOPPED] = 80,
};

const char *instance_state_name(enum instance_state s)
{
	return state_name(instance_states, ARRAY_SIZE(instance_states), (int)s);
}

enum instance_state instance_state_parse(const char *name)
{
	return (enum instance_state)state_parse(instance_states, ARRAY_SIZE(instance_states), name);
}

static const char *const volume_states[] = {
    [VOLUME_CREATING] = "creating", [VOLUME_AVAILABLE] = "available", [VOLUME_IN_USE] = "in-use",
    [VOLUME_DELETING] = "deleting", [VOLUME_DELETED] = "deleted",     [VOLUME_ERROR] = "error",
};

const char *volume_state_name(enum volume_state s)
{
	return state_name(volume_states, ARRAY_SIZE(volume_states), (int)s);
}

enum volume_state volume_state_parse(const char *name)
{
	return (enum volume_state)state_parse(volume_states, ARRAY_SIZE(volume_states), name);
}

static const char *const snapshot_states[] = {
    [SNAPSHOT_PENDING] = "pending",
    [SNAPSHOT_COMPLETED] = "completed",
    [SNAPSHOT_ERROR] = "error",
};

const char *snapshot_state_name(enum snapshot_state s)
{
	return state_name(snapshot_states, ARRAY_SIZE(snapshot_states), (int)s);
}

enum snapshot_state snapshot_state_parse(const char *name)
{
	return (enum snapshot_state)state_parse(snapshot_states, ARRAY_SIZE(snapshot_states), name);
}

static const char *const image_states[] = {
    [IMAGE_PENDING] = "pending",   [IMAGE_AVAILABLE] = "available",
    [IMAGE_FAILED] = "failed",     [IMAGE_DEREGISTERED] = "deregistered",
    [IMAGE_DISABLED] = "disabled",
};

const char *image_state_name(enum image_state s)
{
	return state_name(image_states, ARRAY_SIZE(image_states), (int)s);
}

enum image_state image_state_parse(const char *name)
{
	return (enum image_state)state_parse(image_states, ARRAY_SIZE(image_states), name);
}

bool instance_state_stable(enum instance_state s)
{
	return s == INSTANCE_RUNNING || s == INSTANCE_STOPPED;
}

int cloud_instance_state_code(const char *state)
{
	enum instance_state s = instance_state_parse(state);

	return s == INSTANCE_STATE_UNKNOWN ? 0 : instance_codes[s];
}
