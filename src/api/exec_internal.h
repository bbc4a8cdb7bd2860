/* What the two transports of kiln exec share (exec.h): the server, and a request's checks. */
#ifndef KILN_API_EXEC_INTERNAL_H
#define KILN_API_EXEC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "api/errors.h"
#include "api/exec.h"
#include "api/http.h"
#include "cloud/cloud.h"

struct session;

struct api_exec_server {
	struct cloud *cloud;
	char *path;
	int listen_fd;
	int stop_fd; /* an eventfd, readable once shutdown began */
	atomic_bool stopping;
	pthread_t thread;
	pthread_mutex_t lock;
	struct session *sessions; /* of the Unix socket */
	size_t nsessions;
};

/* An ExecInstance request, authenticated and checked: whose, where, what. */
struct exec_request {
	char *account, *region, *id;
	char **argv; /* NULL-terminated */
};
/* Authenticate req as every API request is (api_authenticate) and check it is ExecInstance with
 * an instance id and a command; -1 with e. */
int exec_request_check(struct cloud *cloud, const struct api_http_request *req,
                       struct exec_request *rq, struct api_error *e);
/* Start the command in the caller's running instance with stdio; -1 with e. */
int exec_request_run(struct cloud *cloud, const struct exec_request *rq, const int stdio[3],
                     struct cloud_exec **x, struct api_error *e);
void exec_request_release(struct exec_request *rq);

#endif
