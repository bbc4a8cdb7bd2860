/* A parallel loop over [0, n) on a few threads; the first error stops the others. */
#ifndef KILN_PAR_H
#define KILN_PAR_H

#include <stddef.h>

#include "kerr.h"

/* fn runs once for each i; tid < threads names the worker, for per-thread state. */
typedef int (*par_fn)(void *ctx, size_t i, unsigned tid, struct kerr **err);

/* Default worker count: online CPUs (KILN_THREADS overrides), between 1 and PAR_MAX_THREADS. */
#define PAR_MAX_THREADS 16
unsigned par_threads(void);
int par_for(size_t n, unsigned threads, par_fn fn, void *ctx, struct kerr **err);

#endif
