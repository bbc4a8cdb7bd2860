/* What the files of the domain share among themselves, not with the API. */
#ifndef KILN_CLOUD_INTERNAL_H
#define KILN_CLOUD_INTERNAL_H

#include "cloud.h"

struct pool;

#define GIB         ((uint64_t)1 << 30)
#define ROOT_DEVICE "/dev/xvda"

/* Background work: fn runs in a worker thread holding the job lock of lock_id (an instance
 * or volume id), so two jobs on one resource never overlap. */
typedef void (*cloud_job_fn)(struct cloud *c, const char *id, int kind, bool force);
int cloud_submit(struct cloud *c, const char *lock_id, const char *id, cloud_job_fn fn, int kind,
                 bool force, struct kerr **err);
pthread_mutex_t *cloud_job_lock(const char *id);

/* Any instance by id, whoever owns it. */
int cloud_instance_get(struct cloud *c, const char *id, struct instance *in, struct kerr **err);
/* The zone of region named want (NULL: the region's first). */
int cloud_find_zone(struct cloud *c, const char *region, const char *want, struct zone *out,
                    struct kerr **err);
/* The pool's base file of a snapshot, restored from the region's store the first time; the
 * caller holds volumes_lock. *path is malloc'd. */
int cloud_zone_base(struct cloud *c, struct pool *p, const char *region, const char *snapshot,
                    char **path, struct kerr **err);
/* The volume file of an id in its zone's pool: "<id>.img". */
char *cloud_volume_file(const char *id);

/* May owner use snapshot (its own, shared with it, or public)? KERR_NOT_FOUND when not,
 * KERR_CONFLICT while it is not completed; *size_gib is its volume's size. */
int cloud_snapshot_usable(struct cloud *c, const char *owner, const char *region, const char *id,
			  uint64_t *size_gib, struct kerr **err);

/* Volumes of instances. */
/* The root volume's record, inside the caller's transaction. */
int cloud_volume_insert_root(struct cloud *c, const struct instance *in, const char *snapshot,
                             const struct tag *tags, size_t ntags, struct kerr **err);
/* Tell the runtime which data volumes the instance has (before a boot, after a change). */
int cloud_instance_sync_volumes(struct cloud *c, const char *instance, struct kerr **err);
/* After a terminate: volumes marked DeleteOnTermination go, the others become available. */
int cloud_instance_release_volumes(struct cloud *c, const struct instance *in, struct kerr **err);
/* After a restart: finish volume and snapshot work that was in flight. */
int cloud_volumes_reconcile(struct cloud *c, struct kerr **err);
int cloud_snapshots_reconcile(struct cloud *c, struct kerr **err);

#endif
