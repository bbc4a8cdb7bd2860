/* The instance metadata service (IMDS) on 169.254.169.254:80 inside every VPC: one
 * libmicrohttpd daemon without a listening socket of its own, fed by an accept loop over one
 * listener per VPC (the daemon makes them inside each VPC's namespace). Which listener accepted
 * a connection and the peer's address name the instance. */
#ifndef KILN_API_IMDS_H
#define KILN_API_IMDS_H

#include <stdbool.h>

#include "cloud/cloud.h"

#define API_IMDS_PORT 80

struct api_imds;

int api_imds_start(struct cloud *cloud, struct api_imds **out, struct kerr **err)
    __attribute__((warn_unused_result));
/* Is VPC net served already? */
bool api_imds_serves(struct api_imds *s, unsigned net);
/* Serve VPC net's listener fd (the service takes it). */
void api_imds_add(struct api_imds *s, unsigned net, int fd);
/* Stop serving VPC net: its listener closes. */
void api_imds_remove(struct api_imds *s, unsigned net);
void api_imds_stop(struct api_imds *s);

#endif
