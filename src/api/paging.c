/* MaxResults and NextToken: which items of a list belong on this page. */
#include "api/server.h"

#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/banned.h"

/* Pages of a list: NextToken is the position of the first item of the page, as "p<N>". */
int api_call_page(struct api_call *c, int64_t min, int64_t max, struct api_page *p,
                  struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *token = api_node_str(&c->root, "NextToken");
	int64_t size = 0;

	memset(p, 0, sizeof(*p));
	if (api_node_int(&c->root, "MaxResults", min, max, &size, &err) < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		return -1;
	}
	p->max = (size_t)size;
	if (token) {
		char *end;
		unsigned long long at = token[0] == 'p' ? strtoull(token + 1, &end, 10) : 0;
		if (token[0] != 'p' || !token[1] || *end || token[1] < '0' || token[1] > '9') {
			api_error_set(e, "InvalidParameterValue", "The token '%s' is invalid",
			              token);
			return -1;
		}
		p->start = (size_t)at;
	}
	return 0;
}

bool api_page_take(struct api_page *p)
{
	size_t at = p->seen++;

	if (at < p->start)
		return false;
	if (p->max && at >= p->start + p->max) {
		p->more = true;
		return false;
	}
	return true;
}

void api_page_end(struct api_call *c, const struct api_page *p)
{
	if (p->more)
		api_xml_elemf(c->xml, "nextToken", "p%zu", p->start + p->max);
}
