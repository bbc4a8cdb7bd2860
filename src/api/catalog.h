/* The Marketplace Catalog API (marketplace-catalog, rest-json) on the API's listener. */
#ifndef KILN_API_CATALOG_H
#define KILN_API_CATALOG_H

#include <stdbool.h>

#include "api/http.h"
#include "cloud/cloud.h"

/* Whether req is the Catalog's: signed for aws-marketplace, without X-Amz-Target (the JSON
 * services of that signing name, Agreement and Metering, name their operation there). */
bool api_catalog_request(const struct api_http_request *req);
/* Authenticate req and answer it in resp (the operation's JSON, or the error's). */
void api_catalog_serve(struct cloud *cloud, const struct api_http_request *req,
                       struct api_http_response *resp);

#endif
