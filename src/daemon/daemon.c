/* The daemon's start-up and shutdown, and the host set-up it shares with kiln host up. */
#include "daemon/daemon.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "api/exec.h"
#include "api/imds.h"
#include "api/listeners.h"
#include "api/peer.h"
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
	struct api_imds *imds;        /* the metadata service inside every VPC */
	/* The EC2 API inside every VPC too, at the service address and the API's port, once it
	 * serves (api_in_vpcs, read and written under cloud's hook lock: cloud_vpc_hook_set). */
	struct api_listeners *vpc_api;
	bool api_in_vpcs;
	sigset_t stop;
	int claim; /* held while the daemon runs (daemon_claim) */
};

int daemon_host_up(const char *host_id, const char *public_range, bool nat, struct kerr **err)
{
	if (net_route_unreachable(public_range, true, err) < 0 || net_forwarding_enable(err) < 0 ||
	    net_firewall_set(host_id, public_range, nat, err) < 0)
		return -1;
	return 0;
}

/* The EC2 API inside a VPC: software in its instances reaches it at
 * http://169.254.169.254:PORT with nothing configured but that endpoint. */
static void vpc_api_up(struct daemon *d, unsigned net, const char *pin)
{
	struct kerr *err = NULL;
	uint16_t port;
	int fd;

	/* Before the API serves (the VPCs brought up at start), d->srv is not there yet. */
	if (!d->api_in_vpcs || api_listeners_has(d->vpc_api, net))
		return;
	port = api_server_port(d->srv);
	if (port == API_IMDS_PORT) {
		log_event(LOG_LEVEL_WARNING, NULL,
		          "the API is not served inside VPC %u: its port %u is the metadata "
		          "service's",
		          net, (unsigned)port);
		return;
	}
	if (net_vpc_listen(pin, NET_VPC_SERVICE_ADDR, port, &fd, &err) < 0) {
		log_event(LOG_LEVEL_ERROR, NULL, "no API in VPC %u: %s", net, err->msg);
		kerr_free(err);
		return;
	}
	api_listeners_add(d->vpc_api, net, fd);
}

/* A VPC's namespace is up (cloud's hook): the metadata service listens inside it, once, and
 * the API once it serves. */
static void vpc_up(void *ctx, unsigned net, const char *pin)
{
	struct daemon *d = ctx;
	struct kerr *err = NULL;
	int fd;

	vpc_api_up(d, net, pin);
	if (api_imds_serves(d->imds, net))
		return;
	if (net_vpc_listen(pin, NET_VPC_SERVICE_ADDR, API_IMDS_PORT, &fd, &err) < 0) {
		log_event(LOG_LEVEL_ERROR, NULL, "no metadata service in VPC %u: %s", net,
		          err->msg);
		kerr_free(err);
		return;
	}
	api_imds_add(d->imds, net, fd);
}

static void vpc_down(void *ctx, unsigned net)
{
	struct daemon *d = ctx;

	if (d->api_in_vpcs)
		api_listeners_remove(d->vpc_api, net);
	api_imds_remove(d->imds, net);
}

/* A connection to the API inside a VPC: served as the API listener's own. */
static void vpc_api_accepted(void *ctx, unsigned net, int fd, const struct sockaddr *sa,
                             socklen_t len)
{
	struct daemon *d = ctx;

	(void)net;
	api_server_add_connection(d->srv, fd, sa, len);
}

/* Turn the API inside VPCs on or off; cloud_vpc_hook_set takes the hooks' lock, so no hook runs
 * meanwhile and the next ones see it. */
static void api_in_vpcs(struct daemon *d, bool on)
{
	d->api_in_vpcs = on;
	cloud_vpc_hook_set(d->cloud, &(struct cloud_vpc_hook){vpc_up, vpc_down, d});
}

static int deployment_set(struct cloud *c, const struct daemon_config *cfg, struct kerr **err)
{
	const struct cloud_peer_ops ops = {api_peer_call, api_peer_open, api_peer_send,
	                                   api_peer_close, NULL};
	struct cloud_deployment dep;
	int r;

	if (!cfg->regions_file)
		return kerr_set(err, KERR_INVALID, "serving one region takes a regions file");
	if (cloud_deployment_load(cfg->regions_file, cfg->region, &dep, err) < 0)
		return -1;
	r = cloud_deployment_set(c, &dep, &ops, err);
	cloud_deployment_release(&dep);
	return r;
}

int daemon_start(const struct daemon_config *cfg, struct daemon **out, struct kerr **err)
{
	struct daemon *d = xcalloc(1, sizeof(*d));
	char public_range[24], *exec_path;

	*out = NULL;
	d->claim = -1;
	/* Block the stop signals before any thread starts, so that only sigwait sees them. */
	sigemptyset(&d->stop);
	sigaddset(&d->stop, SIGINT);
	sigaddset(&d->stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &d->stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* The daemon's live heap is a few megabytes; what grew under load was memory freed but
	 * kept by malloc: every thread's arena held its high-water mark (glibc trims an arena
	 * only past the trim threshold, and a freed megabyte answer raises that threshold to
	 * twice its size). Bound it: blocks of a megabyte and more are mapped and given back
	 * when freed, an arena gives back a free top past 2 MiB, and four arenas serve all
	 * threads. bench/load's RSS column shows the effect (bench/RESULTS.md). */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	mallopt(M_TRIM_THRESHOLD, 2 << 20);
	mallopt(M_ARENA_MAX, 4);
	log_setup();
	if (cfg->log_level >= 0)
		log_set_level((enum log_level)cfg->log_level);
	if (cloud_open(cfg->data_dir, &d->cloud, err) < 0 ||
	    cloud_test_clock_enable(d->cloud, cfg->test_clock, err) < 0)
		goto on_error;
	/* Before anything resumes: a copy in flight may be from another deployment. */
	if (cfg->region && deployment_set(d->cloud, cfg, err) < 0)
		goto on_error;
	if (cloud_stores_check(d->cloud, err) < 0)
		goto on_error;
	/* The host first (the public range routed nowhere before any instance exists), then
	 * whatever was in flight when the daemon last stopped. */
	if (cloud_public_range(d->cloud, public_range, err) < 0 ||
	    daemon_claim(cfg->data_dir, cloud_host_id(d->cloud), public_range, &d->claim, err) <
	        0 ||
	    cloud_public_range_set(d->cloud, public_range, err) < 0 ||
	    daemon_host_up(cloud_host_id(d->cloud), public_range, true, err) < 0 ||
	    cloud_attach_runtime(d->cloud, cfg->shim, cfg->init, err) < 0)
		goto on_error;
	/* The metadata service before any instance boots: every VPC namespace that is up, and
	 * each one as it comes. */
	if (api_imds_start(d->cloud, &d->imds, err) < 0)
		goto on_error;
	cloud_vpc_hook_set(d->cloud, &(struct cloud_vpc_hook){vpc_up, vpc_down, d});
	if (cloud_vpc_networks_up(d->cloud, err) < 0 || cloud_reconcile(d->cloud, err) < 0 ||
	    cloud_watch_start(d->cloud, err) < 0 ||
	    cloud_gc_start(d->cloud, cfg->gc_interval_s, err) < 0)
		goto on_error;
	exec_path = xasprintf("%s/run/" API_EXEC_SOCKET, cfg->data_dir);
	if (api_exec_start(d->cloud, exec_path, &d->exec, err) < 0) {
		free(exec_path);
		goto on_error;
	}
	free(exec_path);
	if (api_server_start(d->cloud, &cfg->http, &cfg->rate, d->exec, &d->srv, err) < 0) {
		api_exec_stop(d->exec);
		goto on_error;
	}
	/* The API inside every VPC that is up, and each one as it comes. */
	if (api_listeners_start("the API inside VPCs", vpc_api_accepted, d, &d->vpc_api, err) < 0) {
		api_server_stop(d->srv);
		api_exec_stop(d->exec);
		goto on_error;
	}
	api_in_vpcs(d, true);
	if (cloud_vpc_networks_up(d->cloud, err) < 0) {
		api_in_vpcs(d, false);
		api_listeners_stop(d->vpc_api);
		api_server_stop(d->srv);
		api_exec_stop(d->exec);
		goto on_error;
	}
	log_event(LOG_LEVEL_INFO, NULL, "serving %s on port %u", cfg->data_dir,
	          (unsigned)api_server_port(d->srv));
	*out = d;
	return 0;

on_error:
	if (d->cloud)
		cloud_vpc_hook_set(d->cloud, NULL);
	api_imds_stop(d->imds);
	cloud_close(d->cloud);
	if (d->claim >= 0)
		close(d->claim);
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
	/* No new request, then no new job; the running ones stop at their next checkpoint. The
	 * commands of kiln exec run in the API server's threads too: they end first. */
	api_exec_shutdown(d->exec);
	api_in_vpcs(d, false);
	api_listeners_stop(d->vpc_api);
	api_server_stop(d->srv);
	api_exec_stop(d->exec);
	cloud_watch_stop(d->cloud);
	cloud_gc_stop(d->cloud);
	cloud_jobs_stop(d->cloud);
	cloud_vpc_hook_set(d->cloud, NULL);
	api_imds_stop(d->imds);
	cloud_close(d->cloud);
	if (d->claim >= 0)
		close(d->claim);
	log_event(LOG_LEVEL_INFO, NULL, "stopped");
	free(d);
}
