/* Instances' metadata options: RunInstances' MetadataOptions, ModifyInstanceMetadataOptions,
 * and the metadataOptions member of instances (the service itself is imds.c). */
#include "api/server.h"

#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

int api_call_metadata_change(struct api_call *c, const struct api_node *n,
                             struct metadata_change *m, struct api_error *e)
{
	struct kerr *err = NULL;
	int64_t hops = 0;
	int r;

	memset(m, 0, sizeof(*m));
	m->http_tokens = api_node_str(n, "HttpTokens");
	m->http_endpoint = api_node_str(n, "HttpEndpoint");
	m->tags = api_node_str(n, "InstanceMetadataTags");
	m->protocol_ipv6 = api_node_str(n, "HttpProtocolIpv6");
	r = api_node_present(n, "HttpPutResponseHopLimit")
	        ? api_node_int(n, "HttpPutResponseHopLimit", INT32_MIN, INT32_MAX, &hops, &err)
	        : 0;
	if (r < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		return -1;
	}
	m->has_hop_limit = r > 0;
	m->hop_limit = hops;
	if (cloud_metadata_change_check(m, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	return 0;
}

void api_write_metadata_options(struct api_xml *x, const char *name,
                                const struct metadata_options *md)
{
	api_xml_open(x, name);
	/* Each change takes effect with the next request the service answers. */
	api_xml_elem(x, "state", "applied");
	api_xml_elem(x, "httpTokens", md->http_tokens);
	api_xml_int(x, "httpPutResponseHopLimit", md->hop_limit);
	api_xml_elem(x, "httpEndpoint", md->http_endpoint);
	api_xml_elem(x, "httpProtocolIpv6", "disabled");
	api_xml_elem(x, "instanceMetadataTags", md->tags);
	api_xml_close(x);
}

int api_modify_instance_metadata_options(struct api_call *c, struct api_error *e)
{
	const char *id = api_node_str(&c->root, "InstanceId");
	struct metadata_change m;
	struct instance in;
	struct kerr *err = NULL;

	if (api_call_metadata_change(c, &c->root, &m, e) < 0)
		return -1;
	if (cloud_instance_metadata_modify(c->cloud, c->account.id, c->region, id, &m, &in, &err) <
	    0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	api_xml_elem(c->xml, "instanceId", in.id);
	api_write_metadata_options(c->xml, "instanceMetadataOptions", &in.md);
	return 0;
}
