/* The kiln daemon: what the host carries for kiln (VPC route, forwarding, the filter and NAT),
 * and the API server's life: start-up over a data directory, stop signals, and a shutdown that
 * stops taking requests, then lets the running jobs reach a checkpoint and joins them. */
#ifndef KILN_DAEMON_H
#define KILN_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "api/http.h"
#include "api/ratelimit.h"
#include "util/kerr.h"

/* Where the ranges of instances' public addresses come from unless the topology names one: a
 * /20 of it per data directory (kiln host up takes it whole). The only addresses of instances
 * the host routes (each VPC's own range stays inside its namespace). */
#define DAEMON_PUBLIC_DEFAULT "198.18.0.0/15"
#define DAEMON_PUBLIC_SLICE   20

/* The host's part, idempotent: the public range routed nowhere first (no packet for an
 * instance's address may ever take the default route), forwarding on, the filter (and NAT of
 * the public range when asked): a data directory's (host_id, net.h) or kiln host up's (NULL). */
int daemon_host_up(const char *host_id, const char *public_range, bool nat, struct kerr **err)
    __attribute__((warn_unused_result));

/* Claims on the host (claims.c): a file per host id naming its data directory and its range
 * of public addresses, from the daemon's start to kiln down. A claim is live while its data
 * directory exists and its daemon runs (holding *hold, a lock on the claim, until it closes
 * it) or its transit links exist. A daemon refuses to start (KERR_CONFLICT) where a live claim
 * of another data directory has its host id or a range overlapping its own. KILN_CLAIMS_DIR
 * moves the directory (tests). */
#define DAEMON_CLAIMS_DIR "/run/kiln/claims"
/* public_range "" (none chosen yet): the first /20 of DAEMON_PUBLIC_DEFAULT that no live claim
 * overlaps is chosen and written there. */
int daemon_claim(const char *data_dir, const char *host_id, char public_range[24], int *hold,
                 struct kerr **err) __attribute__((warn_unused_result));
int daemon_claim_release(const char *host_id, struct kerr **err);
/* Does a live claim hold addresses of range (kiln host down leaves such a route alone)? */
bool daemon_range_claimed(const char *range);

/* How long after a region's last DeleteSnapshot its store's garbage is collected (seconds). */
#define DAEMON_GC_INTERVAL_DEFAULT 60

struct daemon_config {
	const char *data_dir;
	const char *shim; /* the runtime's shim and kiln-init binaries */
	const char *init;
	struct api_http_config http; /* handle and ctx are the daemon's */
	struct api_rate_limits rate; /* per account (api/ratelimit.h); zero: none */
	int log_level;               /* an enum log_level, or -1 for log_setup's choice */
	unsigned gc_interval_s;      /* the stores' automatic gc (cloud_gc_start); 0: never */
	bool test_clock; /* for tests: 'kiln clock advance' may move the metering clock forward */
	/* One region of several deployments: the region served here and the regions file that
	 * names every region's endpoint and the deployments' key (both NULL: every region of
	 * the topology, the default). */
	const char *region;
	const char *regions_file;
};

struct daemon;

/* Block the stop signals (before any thread starts), set up the log and the host, open the
 * data directory, resume what was in flight when the daemon last stopped, and serve. */
int daemon_start(const struct daemon_config *cfg, struct daemon **out, struct kerr **err)
    __attribute__((warn_unused_result));
uint16_t daemon_port(const struct daemon *d);
/* Wait for SIGINT or SIGTERM, then shut down in order and free d. */
void daemon_wait(struct daemon *d);

#endif
