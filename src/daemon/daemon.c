/* The daemon's start-up and shutdown, and the host set-up it shares with kiln host up. */
#include "daemon/daemon.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "api/exec.h"
#include "api/server.h"
#include "cloud/cloud.h"
#include "net/net.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "util/banned.h"

struct daemon {
	struct cloud *cloud;
	struct api_server *srv;
	struct api_exec_server *exec; /* kiln exec's socket */
	sigset_t stop;
};

int daemon_host_up(const char *public_range, bool nat, struct kerr **err)
{
	if (net_route_unreachable(public_range, true, err) < 0 || net_forwarding_enable(err) < 0 ||
	    net_firewall_set(public_range, nat, err) < 0)
		return -1;
	return 0;
}

int daemon_start(const struct daemon_config *cfg, struct daemon **out, struct kerr **err)
{
	struct daemon *d = xcalloc(1, sizeof(*d));
	char public_range[24], *exec_path;

	*out = NULL;
	/* Block the stop signals before any thread starts, so that only sigwait sees them. */
	sigemptyset(&d->stop);
	sigaddset(&d->stop, SIGINT);
	sigaddset(&d->stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &d->stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	log_setup();
	if (cfg->log_level >= 0)
		log_set_level((enum log_level)cfg->log_level);
	/* Answers of a megabyte come and go all the time: keep such blocks in the heap for reuse
	 * instead of mapping (and faulting in) fresh pages for each. */
	mallopt(M_MMAP_THRESHOLD, 64 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	if (cloud_open(cfg->data_dir, &d->cloud, err) < 0 ||
	    cloud_test_clock_enable(d->cloud, cfg->test_clock, err) < 0)
		goto on_error;
	/* The host first (the public range routed nowhere before any instance exists), then
	 * whatever was in flight when the daemon last stopped. */
	if (cloud_public_range(d->cloud, public_range, err) < 0 ||
	    daemon_host_up(public_range, true, err) < 0 ||
	    cloud_attach_runtime(d->cloud, cfg->shim, cfg->init, err) < 0 ||
	    cloud_reconcile(d->cloud, err) < 0 || cloud_watch_start(d->cloud, err) < 0 ||
	    api_server_start(d->cloud, &cfg->http, &d->srv, err) < 0)
		goto on_error;
	exec_path = xasprintf("%s/run/" API_EXEC_SOCKET, cfg->data_dir);
	if (api_exec_start(d->cloud, exec_path, &d->exec, err) < 0) {
		free(exec_path);
		api_server_stop(d->srv);
		goto on_error;
	}
	free(exec_path);
	log_event(LOG_LEVEL_INFO, NULL, "serving %s on port %u", cfg->data_dir,
	          (unsigned)api_server_port(d->srv));
	*out = d;
	return 0;

on_error:
	cloud_close(d->cloud);
	free(d);
	return -1;
}

uint16_t daemon_port(const struct daemon *d)
{
	return api_server_port(d->srv);
}

void daemon_wait(struct daemon *d)
{
	int sig = 0;

	sigwait(&d->stop, &sig);
	log_event(LOG_LEVEL_INFO, NULL, "stopping on signal %d", sig);
	/* No new request, then no new job; the running ones stop at their next checkpoint. */
	api_server_stop(d->srv);
	api_exec_stop(d->exec);
	cloud_watch_stop(d->cloud);
	cloud_jobs_stop(d->cloud);
	cloud_close(d->cloud);
	log_event(LOG_LEVEL_INFO, NULL, "stopped");
	free(d);
}
