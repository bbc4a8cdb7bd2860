/* File helpers: EINTR-safe full reads and writes, durable replace, directory sync. */
#ifndef KILN_FS_H
#define KILN_FS_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kerr.h"

/* pread/pwrite the whole range; a short read past EOF returns the bytes read. */
ssize_t fs_pread_full(int fd, void *buf, size_t len, off_t off);
int fs_pwrite_full(int fd, const void *buf, size_t len, off_t off);
int fs_write_full(int fd, const void *buf, size_t len);
/* fsync the directory dirfd or path, so that a rename or create in it is durable. */
int fs_fsync_dir(int dirfd, struct kerr **err);
/* Write data to NAME in dirfd durably: NAME.tmp.<pid>, fsync, rename, fsync dir. The file is
 * the owner's alone (0600) from its creation on: credentials and user data go this way.
 * fault_prefix names the fault points "<prefix>.tmp" and "<prefix>.renamed". */
int fs_write_atomic(int dirfd, const char *name, const void *data, size_t len,
                    const char *fault_prefix, struct kerr **err);
/* Replace NAME in dirfd atomically (readers see the old or the new content, never a part) but
 * without fsync: for state that is rebuilt after a crash, where the sync would only cost time. */
int fs_write_replace(int dirfd, const char *name, const void *data, size_t len, struct kerr **err);
/* Read a whole file of at most max bytes; *out is malloc'd. */
int fs_read_file(int dirfd, const char *name, size_t max, uint8_t **out, size_t *len,
                 struct kerr **err);
/* Open the directory path (made 0700, with its parents, when missing) and wait for an exclusive
 * lock on its file ".lock": for files of a host-wide directory changed by several processes. */
int fs_dir_lock(const char *path, int *dfd, int *lockfd, struct kerr **err);
/* A file that is two lines "A\nB\n": a and b (NUL-terminated); -1 when it is missing, is
 * not so, or a line does not fit. */
int fs_read_two_lines(int dirfd, const char *name, char *a, size_t asize, char *b, size_t bsize);
/* A listing of the directory dirfd from its first entry, on a duplicate of dirfd (closedir
 * leaves dirfd open); NULL with errno when it cannot be made. Duplicates share one offset, so
 * without the rewind a listing after another that read to the end would see nothing. */
DIR *fs_opendir_dup(int dirfd);
/* Make a directory and its parents; existing ones are fine. */
int fs_mkdir_p(const char *path, mode_t mode, struct kerr **err);
/* Remove a directory tree without following links; a missing path is fine. */
int fs_remove_tree(const char *path, struct kerr **err);
/* Bytes allocated by the files below path (like du). */
int fs_tree_bytes(const char *path, uint64_t *bytes, struct kerr **err);
/* True when name ends in suffix. */
int fs_has_suffix(const char *name, const char *suffix);

#endif
