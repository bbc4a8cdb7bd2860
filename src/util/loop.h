/* Loop devices: attach a file with LOOP_CONFIGURE (autoclear), retrying when another user of
 * the machine takes the free device first; detach only devices we attached. */
#ifndef KILN_LOOP_H
#define KILN_LOOP_H

#include <stdbool.h>

#include "kerr.h"

/* Attach path; *fd is the open loop device (keep it open until mounted), dev its path
 * (at least 32 bytes). With autoclear the device goes away at the last close or unmount. */
int loop_attach(const char *path, bool read_only, int *fd, char *dev, struct kerr **err);
/* Wait (up to timeout_ms) until no loop device is backed by path. */
int loop_wait_released(const char *path, int timeout_ms, struct kerr **err);

#endif
