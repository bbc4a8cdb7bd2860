/* Fault injection for crash tests: KILN_FAULT=name[:N] makes the process kill itself with
 * SIGKILL the Nth time (default 1st) it passes the named point. Unset, it costs one branch. */
#ifndef KILN_FAULT_H
#define KILN_FAULT_H

void fault_point(const char *name);

#endif
