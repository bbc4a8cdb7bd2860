/* Errors of the cloud as EC2 codes: a quota passed has its own code. */
#include "api/server.h"

#include "util/banned.h"

/* EC2's codes for its quotas, whichever action went past one. */
static const char *const quota_codes[QUOTA__COUNT] = {
    [QUOTA_VCPUS] = "VcpuLimitExceeded",         [QUOTA_VOLUMES] = "VolumeLimitExceeded",
    [QUOTA_VOLUME_GIB] = "VolumeLimitExceeded",  [QUOTA_SNAPSHOTS] = "SnapshotLimitExceeded",
    [QUOTA_IMAGES] = "ResourceLimitExceeded",
};

void api_error_from_cloud(struct api_error *e, const struct kerr *err, const char *code)
{
	int q = cloud_quota_of(err);

	api_error_from_kerr(e, err, q < 0 ? code : quota_codes[q]);
}

