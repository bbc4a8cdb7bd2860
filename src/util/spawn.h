/* Running helper programs (mkfs, resize2fs) without a shell, with their stderr kept for errors. */
#ifndef KILN_SPAWN_H
#define KILN_SPAWN_H

#include <stddef.h>

#include "buf.h"
#include "kerr.h"

/* Run argv[0] (searched in PATH) with argv; fail with its last stderr line unless it exits 0. */
int spawn_run(char *const argv[], struct kerr **err);
/* The same with its stdout appended to out (at most max bytes of it; stderr discarded). */
int spawn_output(char *const argv[], struct buf *out, size_t max, struct kerr **err);

#endif
