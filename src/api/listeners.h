/* A changing set of listening sockets with one thread accepting on all of them: each
 * connection goes to a callback with the tag of the listener it came from. The daemon's
 * services inside VPCs (the EC2 API on the router's service address) listen in each VPC's
 * namespace; the sockets are accepted on from the host's. */
#ifndef KILN_API_LISTENERS_H
#define KILN_API_LISTENERS_H

#include <stdbool.h>
#include <sys/socket.h>

#include "util/kerr.h"

/* A connection accepted (non-blocking, O_CLOEXEC) on the listener tagged tag: the callback
 * owns fd. Called on the accepting thread. */
typedef void (*api_accepted_fn)(void *ctx, unsigned tag, int fd, const struct sockaddr *sa,
                                socklen_t len);

struct api_listeners;

int api_listeners_start(const char *name, api_accepted_fn fn, void *ctx, struct api_listeners **out,
                        struct kerr **err) __attribute__((warn_unused_result));
/* Is there a listener tagged tag? */
bool api_listeners_has(struct api_listeners *l, unsigned tag);
/* Accept on fd (a listening socket, non-blocking; l takes it) as tag. */
void api_listeners_add(struct api_listeners *l, unsigned tag, int fd);
/* Close the listener tagged tag (connections accepted stay). */
void api_listeners_remove(struct api_listeners *l, unsigned tag);
/* Close every listener and stop the thread; NULL is fine. */
void api_listeners_stop(struct api_listeners *l);

#endif
