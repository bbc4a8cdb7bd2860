/* ConfirmProductInstance: a seller asks whether an instance carries its product's code. */
#include <string.h>

#include "server.h"
#include "util/cleanup.h"
#include "util/banned.h"

int api_confirm_product_instance(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	char owner[ACCOUNT_ID_LEN + 1];
	bool ok;

	if (cloud_product_instance_confirm(
	        c->cloud, c->account.id, c->region, api_node_str(&c->root, "InstanceId"),
	        api_node_str(&c->root, "ProductCode"), &ok, owner, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	api_xml_bool(c->xml, "return", ok);
	if (ok)
		api_xml_elem(c->xml, "ownerId", owner);
	return 0;
}
