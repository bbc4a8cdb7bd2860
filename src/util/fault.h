/* Fault injection for crash tests: KILN_FAULT=name[:N] makes the process kill itself with
 * SIGKILL the Nth time (default 1st) it passes the named point; KILN_FAULT=name@MS makes it
 * pause MS milliseconds there each time instead (to catch work in the middle, as a shutdown
 * test does). Unset, it costs one branch. */
#ifndef KILN_FAULT_H
#define KILN_FAULT_H

void fault_point(const char *name);

#endif
