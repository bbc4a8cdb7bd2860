/* DescribeRegions and DescribeAvailabilityZones: the topology of this kiln. */
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "util/cleanup.h"
#include "util/str.h"
#include "util/banned.h"

/* Regions and zones need no opt-in here. */
#define OPT_IN "opt-in-not-required"

static int load_topology(struct api_call *c, struct topology *t, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;

	if (cloud_regions(c->cloud, t, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	return 0;
}

struct region_view {
	char name[32];
	char endpoint[256];
	char opt_in_status[24];
};

static const struct api_filter_field region_fields[] = {
    API_FIELD_TEXT_OF("region-name", struct region_view, name),
    API_FIELD_TEXT_OF("endpoint", struct region_view, endpoint),
    API_FIELD_TEXT_OF("opt-in-status", struct region_view, opt_in_status),
};

/* The enabled regions (the topology's and EC2's that need no opt-in: a request signed for one
 * of these makes it), or all with AllRegions, as EC2 lists them. */
int api_describe_regions(struct api_call *c, struct api_error *e)
{
	_cleanup_free_ const char **names = NULL;
	_cleanup_free_ struct region_status *v = NULL;
	_cleanup_kerr_ struct kerr *err = NULL;
	struct api_filters filters = {0};
	const char *unknown;
	size_t nnames = api_node_strings(&c->root, "RegionName", &names), n;
	bool all = false;
	int r = -1;

	if (api_node_bool(&c->root, "AllRegions", &all, &err) < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		return -1;
	}
	if (cloud_regions_all(c->cloud, &v, &n, &err) < 0) {
		api_error_from_cloud(e, c->action, err);
		return -1;
	}
	if (api_call_filters(c, &filters, e) < 0)
		goto out;
	unknown = api_first_missing(names, nnames, v, n, sizeof(*v));
	if (unknown) {
		api_error_set(e, "InvalidParameterValue", "Invalid region: %s", unknown);
		goto out;
	}
	api_xml_open(c->xml, "regionInfo");
	for (size_t i = 0; i < n; i++) {
		struct region_view rv;
		int m;

		/* A region named in RegionName is listed whatever its opt-in. */
		if (!api_selected(names, nnames, v[i].name) || (!all && !nnames && !v[i].enabled))
			continue;
		str_copy(rv.name, v[i].name, sizeof(rv.name));
		/* The host that serves it, as the caller's Host header names this one. */
		if (v[i].endpoint[0]) {
			const char *h = strstr(v[i].endpoint, "://");
			str_copy(rv.endpoint, h ? h + 3 : v[i].endpoint, sizeof(rv.endpoint));
			rv.endpoint[strcspn(rv.endpoint, "/")] = '\0';
		} else {
			str_copy(rv.endpoint, c->host ? c->host : "", sizeof(rv.endpoint));
		}
		str_copy(rv.opt_in_status, v[i].opt_in_status, sizeof(rv.opt_in_status));
		m = api_call_filter_match(&filters, region_fields, ARRAY_SIZE(region_fields), &rv,
		                          NULL, e);
		if (m < 0)
			goto out;
		if (!m)
			continue;
		api_xml_item(c->xml);
		api_xml_elem(c->xml, "regionName", rv.name);
		api_xml_elem(c->xml, "regionEndpoint", rv.endpoint);
		api_xml_elem(c->xml, "optInStatus", rv.opt_in_status);
		api_xml_close(c->xml);
	}
	api_xml_close(c->xml);
	r = 0;
out:
	api_filters_release(&filters);
	return r;
}

static const struct api_filter_field zone_fields[] = {
    API_FIELD_TEXT_OF("zone-name", struct zone, name),
    API_FIELD_TEXT_OF("zone-id", struct zone, zone_id),
    API_FIELD_TEXT_OF("region-name", struct zone, region),
    API_FIELD_TEXT_OF("group-name", struct zone, region),
    API_FIELD_TEXT_OF("network-border-group", struct zone, region),
    API_FIELD_CONST_OF("state", "available"),
    API_FIELD_CONST_OF("zone-type", "availability-zone"),
    API_FIELD_CONST_OF("opt-in-status", OPT_IN),
};

int api_describe_availability_zones(struct api_call *c, struct api_error *e)
{
	_cleanup_free_ const char **names = NULL;
	_cleanup_free_ const char **ids = NULL;
	_cleanup_kerr_ struct kerr *err = NULL;
	struct api_filters filters = {0};
	struct topology t;
	size_t nnames = api_node_strings(&c->root, "ZoneName", &names);
	size_t nids = api_node_strings(&c->root, "ZoneId", &ids);
	bool all = false;
	int r = -1;

	if (load_topology(c, &t, e) < 0)
		return -1;
	if (api_call_filters(c, &filters, e) < 0)
		goto out;
	if (api_node_bool(&c->root, "AllAvailabilityZones", &all, &err) < 0) {
		api_error_from_kerr(e, err, "InvalidParameterValue");
		goto out;
	}
	/* Every zone asked for by name or id must exist in the caller's region. */
	for (size_t i = 0; i < nnames + nids; i++) {
		const char *want = i < nnames ? names[i] : ids[i - nnames];
		bool found = false;
		for (size_t k = 0; k < t.nzones && !found; k++)
			found = !strcmp(t.zones[k].region, c->region) &&
			        !strcmp(i < nnames ? t.zones[k].name : t.zones[k].zone_id, want);
		if (!found) {
			api_error_set(e, "InvalidParameterValue", "Invalid availability zone: [%s]",
			              want);
			goto out;
		}
	}
	api_xml_open(c->xml, "availabilityZoneInfo");
	for (size_t k = 0; k < t.nzones; k++) {
		const struct zone *z = &t.zones[k];
		int m;

		if (strcmp(z->region, c->region))
			continue;
		if ((nnames || nids) && !(nnames && api_selected(names, nnames, z->name)) &&
		    !(nids && api_selected(ids, nids, z->zone_id)))
			continue;
		m = api_call_filter_match(&filters, zone_fields, ARRAY_SIZE(zone_fields), z, NULL,
		                          e);
		if (m < 0)
			goto out;
		if (!m)
			continue;
		api_xml_item(c->xml);
		api_xml_elem(c->xml, "zoneName", z->name);
		api_xml_elem(c->xml, "zoneState", "available");
		api_xml_elem(c->xml, "regionName", z->region);
		api_xml_elem(c->xml, "zoneId", z->zone_id);
		api_xml_elem(c->xml, "zoneType", "availability-zone");
		api_xml_elem(c->xml, "optInStatus", OPT_IN);
		api_xml_elem(c->xml, "groupName", z->region);
		api_xml_elem(c->xml, "networkBorderGroup", z->region);
		api_xml_open(c->xml, "messageSet");
		api_xml_close(c->xml);
		api_xml_close(c->xml);
	}
	api_xml_close(c->xml);
	r = 0;
out:
	api_filters_release(&filters);
	topology_release(&t);
	return r;
}
