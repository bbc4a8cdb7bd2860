/* Running helper programs (mkfs, resize2fs) without a shell, with their stderr kept for errors. */
#ifndef KILN_SPAWN_H
#define KILN_SPAWN_H

#include "kerr.h"

/* Run argv[0] (searched in PATH) with argv; fail with its last stderr line unless it exits 0. */
int spawn_run(char *const argv[], struct kerr **err);

#endif
