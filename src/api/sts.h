/* STS on kiln's one listener: requests signed for the service "sts" are STS requests, in the
 * Query protocol (Version 2011-06-15) with STS's namespace. GetCallerIdentity only. */
#ifndef KILN_API_STS_H
#define KILN_API_STS_H

#include "api/server.h"

extern const struct api_action api_sts_actions[];
extern const size_t api_sts_actions_count;

/* The envelope around a handler's members: `<{Action}Response xmlns=…><{Action}Result>` before,
 * `</{Action}Result><ResponseMetadata><RequestId>…` after (api_xml_end closes the root). */
void api_sts_begin(struct api_xml *x, const char *action, const char *request_id);
void api_sts_end(struct api_xml *x, const char *action, const char *request_id);

#endif
