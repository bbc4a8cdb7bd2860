/* A volume pool: one per availability zone, a directory of sparse raw volume files on a
 * filesystem with reflinks, so that clones take constant time. Where the directory's own
 * filesystem has none (ext4), the pool is a loop-mounted XFS file that kiln creates. */
#ifndef KILN_POOL_H
#define KILN_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/kerr.h"

#define POOL_DEFAULT_LOOP_SIZE ((uint64_t)64 << 30)

struct pool {
	char *dir;
	int dirfd;
	bool reflink;     /* FICLONE works here */
	bool loop_backed; /* dir is the mount point of <dir>.xfs */
};

struct pool_opts {
	uint64_t loop_size; /* size of <dir>.xfs when it must be made; 0: the default */
	bool no_loop;       /* never make a loop-backed pool: copy instead of reflink */
};

int pool_open(const char *dir, const struct pool_opts *opts, struct pool **out, struct kerr **err);
void pool_close(struct pool *p);
/* Unmount a loop-backed pool (its loop device goes with it); a plain directory is left. */
int pool_unmount(const char *dir, struct kerr **err);
/* Unmount every loop-backed pool mounted anywhere under root, as the mount table has them (not
 * as a database says: one that a killed process mounted before recording it goes too). */
int pool_unmount_under(const char *root, struct kerr **err);

/* Files of the pool are named by the caller: "vol-….img", "base-snap-….img", "vol-….shadow". */
char *pool_path(const struct pool *p, const char *name);
bool pool_exists(const struct pool *p, const char *name);
/* A sparse file of size bytes holding a new ext4 filesystem, filled from populate_dir when
 * it is not NULL (mke2fs -d: owners, modes, links and special files kept). */
int pool_create_volume(struct pool *p, const char *name, uint64_t size, const char *populate_dir,
                       struct kerr **err);
/* A volume from a root filesystem tree: a directory, or a tarball unpacked first (numeric
 * owners kept). size 0: room for the files and growth (1.5x + 256 MiB, whole GiB, >= 1 GiB). */
int pool_import(struct pool *p, const char *name, const char *source, uint64_t size,
                struct kerr **err);
/* dst becomes a copy of src (a path, in this pool or not): FICLONE when both are on one reflink
 * filesystem (constant time), a sparse copy otherwise. The copy appears under its name only
 * when complete. */
int pool_clone(struct pool *p, const char *src_path, const char *dst, struct kerr **err);
/* Grow the file to size bytes and its ext4 filesystem with it (never shrinks). */
int pool_grow(struct pool *p, const char *name, uint64_t size, struct kerr **err);
int pool_remove(struct pool *p, const char *name, struct kerr **err);
/* Remove what a killed writer left half made: ".NAME.tmp-HEX" files (volumes, clones, shadows,
 * restores) and ".import-HEX" trees. Only while nothing writes to the pool (at start). */
int pool_clean(struct pool *p, size_t *removed, struct kerr **err);
/* Take the reflink shadow of a volume that the block store compares against at the next
 * snapshot (store_snapshot's shadow): "<name>.shadow", replaced atomically. Needs reflinks. */
char *pool_shadow_name(const char *name);
int pool_take_shadow(struct pool *p, const char *name, struct kerr **err);

#endif
