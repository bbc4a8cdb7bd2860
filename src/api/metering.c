/* The Metering Service (meteringmarketplace 2016-01-14): MeterUsage, called from a buyer's
 * instance with its instance profile's credentials (the instance is the customer), and
 * BatchMeterUsage, the seller's report per customer account. The records go into bills and
 * reports (cloud/metering.c). RegisterUsage and ResolveCustomer (containers and SaaS) are not
 * served. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/json_proto.h"
#include "util/cleanup.h"
#include "util/str.h"
#include "util/banned.h"

#define BATCH_MAX 25

/* UsageAllocations: their quantities add up to the record's (tags are not kept). */
static int allocations_check(json_t *rec, int64_t quantity, struct api_error *e)
{
	json_t *list = json_object_get(rec, "UsageAllocations"), *a;
	int64_t sum = 0;
	size_t i;

	if (!list)
		return 0;
	if (!json_is_array(list) || !json_array_size(list) || json_array_size(list) > 2500)
		goto bad;
	json_array_foreach(list, i, a)
	{
		json_t *q = json_object_get(a, "AllocatedUsageQuantity");
		if (!json_is_integer(q) || json_integer_value(q) < 0)
			goto bad;
		sum += (int64_t)json_integer_value(q);
	}
	if (sum == quantity)
		return 0;
bad:
	api_error_full(e, 400, "InvalidUsageAllocationsException",
	               "the allocated quantities must add up to the usage quantity %lld",
	               (long long)quantity);
	return -1;
}

static int meter_usage(struct api_json_call *j, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct meter_request r = {0};
	char id[METERING_RECORD_ID_MAX];
	bool dry = false;

	if (api_json_str(j, j->in, "ProductCode", true, &r.product, e) < 0 ||
	    api_json_time(j, j->in, "Timestamp", true, &r.timestamp_ms, e) < 0 ||
	    api_json_str(j, j->in, "UsageDimension", true, &r.dimension, e) < 0 ||
	    api_json_int(j, j->in, "UsageQuantity", false, &r.quantity, e) < 0 ||
	    api_json_bool(j, j->in, "DryRun", &dry, e) < 0 ||
	    allocations_check(j->in, r.quantity, e) < 0)
		return -1;
	if (cloud_meter_usage(j->call->cloud, j->call->account.id, j->call->session.instance,
	                      j->call->region, &r, dry, id, &err) < 0) {
		api_json_cloud_error(j, err, e);
		return -1;
	}
	if (dry) {
		api_error_dry_run(e);
		return -1;
	}
	json_object_set_new(j->out, "MeteringRecordId", json_string(id));
	return 0;
}

static const char *const status_names[] = {
    [METER_SUCCESS] = "Success",
    [METER_NOT_SUBSCRIBED] = "CustomerNotSubscribed",
    [METER_DUPLICATE] = "DuplicateRecord",
};

static int batch_meter_usage(struct api_json_call *j, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ struct meter_request *recs = NULL;
	_cleanup_free_ const char **customers = NULL;
	_cleanup_free_ enum meter_status *status = NULL;
	_cleanup_free_ char(*ids)[METERING_RECORD_ID_MAX] = NULL;
	json_t *list = json_object_get(j->in, "UsageRecords"), *rec, *results;
	const char *product;
	size_t i, n;

	if (api_json_str(j, j->in, "ProductCode", true, &product, e) < 0)
		return -1;
	if (!json_is_array(list) || json_array_size(list) > BATCH_MAX) {
		api_error_full(e, 400, "ValidationException",
		               "UsageRecords is a list of at most %d records", BATCH_MAX);
		return -1;
	}
	n = json_array_size(list);
	recs = calloc(n + 1, sizeof(*recs));
	customers = calloc(n + 1, sizeof(*customers));
	status = calloc(n + 1, sizeof(*status));
	ids = calloc(n + 1, sizeof(*ids));
	if (!recs || !customers || !status || !ids)
		abort();
	json_array_foreach(list, i, rec)
	{
		const char *legacy, *account;

		recs[i].product = product;
		if (!json_is_object(rec) ||
		    api_json_time(j, rec, "Timestamp", true, &recs[i].timestamp_ms, e) < 0 ||
		    api_json_str(j, rec, "Dimension", true, &recs[i].dimension, e) < 0 ||
		    api_json_int(j, rec, "Quantity", false, &recs[i].quantity, e) < 0 ||
		    api_json_str(j, rec, "CustomerIdentifier", false, &legacy, e) < 0 ||
		    api_json_str(j, rec, "CustomerAWSAccountId", false, &account, e) < 0 ||
		    allocations_check(rec, recs[i].quantity, e) < 0)
			return -1;
		if (json_object_get(rec, "LicenseArn")) {
			api_error_full(e, 400, "InvalidLicenseException",
			               "kiln has no License Manager: LicenseArn is not served");
			return -1;
		}
		/* kiln's customer identifier is the customer's account id. */
		customers[i] = account ? account : legacy;
		if (!customers[i] || (legacy && account && strcmp(legacy, account))) {
			api_error_full(e, 400, "InvalidCustomerIdentifierException",
			               "a usage record names its customer once: "
			               "CustomerAWSAccountId (or CustomerIdentifier)");
			return -1;
		}
	}
	if (cloud_batch_meter_usage(j->call->cloud, j->call->account.id, j->call->region, product,
	                            recs, customers, n, status, ids, &err) < 0) {
		api_json_cloud_error(j, err, e);
		return -1;
	}
	results = json_array();
	json_array_foreach(list, i, rec)
	{
		json_t *res =
		    json_pack("{s:O, s:s}", "UsageRecord", rec, "Status", status_names[status[i]]);
		if (ids[i][0])
			json_object_set_new(res, "MeteringRecordId", json_string(ids[i]));
		json_array_append_new(results, res);
	}
	json_object_set_new(j->out, "Results", results);
	json_object_set_new(j->out, "UnprocessedRecords", json_array());
	return 0;
}

const struct api_json_op api_metering_ops[] = {
    {"BatchMeterUsage", batch_meter_usage},
    {"MeterUsage", meter_usage},
};
const size_t api_metering_ops_count = sizeof(api_metering_ops) / sizeof(api_metering_ops[0]);
