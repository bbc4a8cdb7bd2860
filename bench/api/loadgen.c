/* A load generator for EC2 Query endpoints: N threads, each with its own keep-alive connection,
 * send one signed action for S seconds; prints requests, errors, requests per second and
 * latency percentiles as one JSON object. The same client measures kiln and its peers. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/client.h"
#include "util/xalloc.h"

#define HEAD_BYTES 4096 /* of each answer kept: an error document fits */

struct worker {
	const struct api_client_config *cfg;
	const char *action;
	char **params; /* name=value */
	size_t nparams;
	double deadline;
	double *lat; /* seconds */
	size_t n, cap, errors, bytes;
	pthread_t tid;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	struct api_client *c = NULL;
	struct kerr *err = NULL;
	struct api_args a;

	if (api_client_open(w->cfg, &c, &err) < 0) {
		fprintf(stderr, "loadgen: %s\n", err->msg);
		exit(1);
	}
	api_args_init(&a, w->action);
	for (size_t i = 0; i < w->nparams; i++) {
		/* The threads share argv: split a copy of each Name=Value. */
		char *pair = xstrdup(w->params[i]), *eq = strchr(pair, '=');
		if (eq) {
			*eq = '\0';
			api_args_add(&a, pair, eq + 1);
		}
		free(pair);
	}
	struct buf body = BUF_INIT; /* reused: its room stays between answers */

	while (now_s() < w->deadline) {
		long status = 0;
		size_t received = 0;
		double t0 = now_s();
		/* Counted, not kept: the clients share the cores with the server they measure. */
		int r = api_client_send_head(c, &a, HEAD_BYTES, &status, &body, &received, &err);

		if (r < 0 || status != 200) {
			w->errors++;
			kerr_free(err);
			err = NULL;
		}
		if (w->n == w->cap) {
			w->cap = w->cap ? w->cap * 2 : 4096;
			w->lat = xreallocarray(w->lat, w->cap, sizeof(*w->lat));
		}
		w->lat[w->n++] = now_s() - t0;
		w->bytes += received;
		buf_reset(&body);
	}
	buf_release(&body);
	api_args_release(&a);
	api_client_close(c);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct api_client_config cfg = {.endpoint = "http://127.0.0.1:8773", .region = "us-east-1"};
	const char *action = "DescribeInstances";
	int clients = 1, opt;
	double seconds = 5, start;
	struct worker *w;
	double *all;
	size_t total = 0, errors = 0, bytes = 0;

	while ((opt = getopt(argc, argv, "e:r:k:s:a:c:t:")) != -1) {
		switch (opt) {
		case 'e':
			cfg.endpoint = optarg;
			break;
		case 'r':
			cfg.region = optarg;
			break;
		case 'k':
			cfg.access_key = optarg;
			break;
		case 's':
			cfg.secret_key = optarg;
			break;
		case 'a':
			action = optarg;
			break;
		case 'c':
			clients = atoi(optarg);
			break;
		case 't':
			seconds = atof(optarg);
			break;
		default:
			fprintf(stderr, "usage: loadgen -e URL -k KEY -s SECRET [-r REGION] -a "
			                "ACTION [-c CLIENTS] "
			                "[-t SECONDS] [Name=Value ...]\n");
			return 2;
		}
	}
	if (!cfg.access_key || !cfg.secret_key || clients < 1)
		return fprintf(stderr, "loadgen: -k and -s are needed, -c at least 1\n"), 2;
	/* A server that closes a kept-alive connection must not kill the run with SIGPIPE (libcurl
	 * leaves that to the program when it runs without signals). */
	signal(SIGPIPE, SIG_IGN);
	w = xcalloc((size_t)clients, sizeof(*w));
	start = now_s();
	for (int i = 0; i < clients; i++) {
		w[i] = (struct worker){.cfg = &cfg,
		                       .action = action,
		                       .params = argv + optind,
		                       .nparams = (size_t)(argc - optind),
		                       .deadline = start + seconds};
		pthread_create(&w[i].tid, NULL, work, &w[i]);
	}
	for (int i = 0; i < clients; i++) {
		pthread_join(w[i].tid, NULL);
		total += w[i].n;
		errors += w[i].errors;
		bytes += w[i].bytes;
	}
	seconds = now_s() - start;
	all = xcalloc(total ? total : 1, sizeof(*all));
	total = 0;
	for (int i = 0; i < clients; i++) {
		memcpy(all + total, w[i].lat, w[i].n * sizeof(*all));
		total += w[i].n;
		free(w[i].lat);
	}
	qsort(all, total, sizeof(*all), cmp);
	printf("{\"action\": \"%s\", \"clients\": %d, \"requests\": %zu, \"errors\": %zu, "
	       "\"seconds\": %.3f, "
	       "\"rps\": %.1f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"bytes_per_response\": %zu}\n",
	       action, clients, total, errors, seconds, (double)total / seconds,
	       total ? all[total / 2] * 1e3 : 0.0,
	       total ? all[(size_t)((double)(total - 1) * 0.99)] * 1e3 : 0.0,
	       total ? bytes / total : 0);
	free(all);
	free(w);
	return errors ? 1 : 0;
}
