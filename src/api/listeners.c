/* One thread polls every listener and an eventfd that says the set changed (or stop). Listeners
 * removed are closed by that thread, after its poll, so it never polls a closed descriptor. */
#include "api/listeners.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define LISTENERS_MAX 1024

struct listener {
	unsigned tag;
	int fd;
};

struct api_listeners {
	char name[64]; /* for the log */
	api_accepted_fn fn;
	void *ctx;
	pthread_t thread;
	int wake;
	pthread_mutex_t lock;
	struct listener *set;
	size_t n;
	int *closing;
	size_t nclosing;
	bool stopping;
};

static void accept_one(struct api_listeners *l, int lfd, unsigned tag)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd >= 0)
		l->fn(l->ctx, tag, fd, (struct sockaddr *)&ss, len);
}

static void *accept_loop(void *arg)
{
	struct api_listeners *l = arg;
	struct pollfd *pfd = NULL;
	unsigned *tags = NULL;

	for (;;) {
		size_t n = 0;

		pthread_mutex_lock(&l->lock);
		for (size_t i = 0; i < l->nclosing; i++)
			close(l->closing[i]);
		l->nclosing = 0;
		if (l->stopping) {
			pthread_mutex_unlock(&l->lock);
			break;
		}
		pfd = xreallocarray(pfd, l->n + 1, sizeof(*pfd));
		tags = xreallocarray(tags, l->n + 1, sizeof(*tags));
		pfd[n++] = (struct pollfd){.fd = l->wake, .events = POLLIN};
		for (size_t i = 0; i < l->n; i++) {
			tags[n] = l->set[i].tag;
			pfd[n++] = (struct pollfd){.fd = l->set[i].fd, .events = POLLIN};
		}
		pthread_mutex_unlock(&l->lock);
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_event(LOG_LEVEL_ERROR, NULL, "%s: poll: %s", l->name, strerror(errno));
			break;
		}
		if (pfd[0].revents) {
			uint64_t v;
			if (read(l->wake, &v, sizeof(v)) < 0 && errno != EAGAIN)
				break;
		}
		for (size_t i = 1; i < n; i++)
			if (pfd[i].revents & POLLIN)
				accept_one(l, pfd[i].fd, tags[i]);
	}
	free(pfd);
	free(tags);
	return NULL;
}

static void wake(struct api_listeners *l)
{
	uint64_t one = 1;

	if (write(l->wake, &one, sizeof(one)) < 0)
		log_event(LOG_LEVEL_WARNING, NULL, "%s: cannot wake its thread: %s", l->name,
		          strerror(errno));
}

int api_listeners_start(const char *name, api_accepted_fn fn, void *ctx, struct api_listeners **out,
                        struct kerr **err)
{
	struct api_listeners *l = xcalloc(1, sizeof(*l));
	int rc;

	*out = NULL;
	str_copy(l->name, name, sizeof(l->name));
	l->fn = fn;
	l->ctx = ctx;
	pthread_mutex_init(&l->lock, NULL);
	l->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->wake < 0) {
		kerr_errno(err, errno, "cannot make an eventfd");
		goto on_error;
	}
	rc = pthread_create(&l->thread, NULL, accept_loop, l);
	if (rc != 0) {
		kerr_errno(err, rc, "cannot start the thread of %s", name);
		goto on_error;
	}
	*out = l;
	return 0;

on_error:
	if (l->wake >= 0)
		close(l->wake);
	pthread_mutex_destroy(&l->lock);
	free(l);
	return -1;
}

bool api_listeners_has(struct api_listeners *l, unsigned tag)
{
	bool found = false;

	pthread_mutex_lock(&l->lock);
	for (size_t i = 0; i < l->n && !found; i++)
		found = l->set[i].tag == tag;
	pthread_mutex_unlock(&l->lock);
	return found;
}

void api_listeners_add(struct api_listeners *l, unsigned tag, int fd)
{
	pthread_mutex_lock(&l->lock);
	if (l->n >= LISTENERS_MAX || l->stopping) {
		pthread_mutex_unlock(&l->lock);
		close(fd);
		log_event(LOG_LEVEL_WARNING, NULL, "%s: cannot take another listener", l->name);
		return;
	}
	l->set = xreallocarray(l->set, l->n + 1, sizeof(*l->set));
	l->set[l->n++] = (struct listener){.tag = tag, .fd = fd};
	pthread_mutex_unlock(&l->lock);
	wake(l);
}

void api_listeners_remove(struct api_listeners *l, unsigned tag)
{
	pthread_mutex_lock(&l->lock);
	for (size_t i = 0; i < l->n;) {
		if (l->set[i].tag != tag) {
			i++;
			continue;
		}
		l->closing = xreallocarray(l->closing, l->nclosing + 1, sizeof(*l->closing));
		l->closing[l->nclosing++] = l->set[i].fd;
		l->set[i] = l->set[--l->n];
	}
	pthread_mutex_unlock(&l->lock);
	wake(l);
}

void api_listeners_stop(struct api_listeners *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	l->stopping = true;
	pthread_mutex_unlock(&l->lock);
	wake(l);
	pthread_join(l->thread, NULL);
	for (size_t i = 0; i < l->n; i++)
		close(l->set[i].fd);
	for (size_t i = 0; i < l->nclosing; i++)
		close(l->closing[i]);
	close(l->wake);
	pthread_mutex_destroy(&l->lock);
	free(l->set);
	free(l->closing);
	free(l);
}
