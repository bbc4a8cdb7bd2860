/* The security groups of a VPC as the filter of its network. */
#include "internal.h"

#include "util/banned.h"

/* the lead's branch i-net replaces this file */
int vpc_filter_changed(struct cloud *c, const char *vpc_id, struct kerr **err)
{
	(void)c;
	(void)vpc_id;
	(void)err;
	return 0;
}
