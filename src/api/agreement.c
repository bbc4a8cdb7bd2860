/* The Agreement API (marketplace-agreement 2020-03-01) on kiln's subscriptions: a buyer asks for
 * a product's public offer (CreateAgreementRequest) and accepts it (AcceptAgreementRequest),
 * which subscribes it; DescribeAgreement, SearchAgreements and GetAgreementTerms read the
 * agreements of either party, CancelAgreement is the buyer's unsubscribe (new launches refused,
 * running instances keep running and keep being billed). A product has one offer, offer-CODE,
 * with one term, term-CODE: its pricing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/json_proto.h"
#include "util/cleanup.h"
#include "util/str.h"
#include "util/banned.h"

#define SEARCH_PAGE_MAX 50

static const char *status_of(const struct subscription *s)
{
	return s->end_ms ? "CANCELLED" : "ACTIVE";
}

static json_t *party(const char *account)
{
	return json_pack("{s:s}", "accountId", account);
}

static json_t *proposal_summary(const struct subscription *s)
{
	char offer[PRODUCT_CODE_LEN + 8];

	snprintf(offer, sizeof(offer), "offer-%s", s->product);
	return json_pack("{s:[{s:s, s:s}], s:s}", "resources", "id", s->product_id, "type",
	                 "AmiProduct", "offerId", offer);
}

/* The members DescribeAgreement and SearchAgreements' summaries share. */
static void agreement_members(json_t *o, const struct subscription *s)
{
	json_object_set_new(o, "agreementId", json_string(s->id));
	json_object_set_new(o, "acceptor", party(s->account));
	json_object_set_new(o, "proposer", party(s->seller));
	api_json_set_time(o, "acceptanceTime", s->start_ms);
	api_json_set_time(o, "startTime", s->start_ms);
	if (s->end_ms)
		api_json_set_time(o, "endTime", s->end_ms);
	json_object_set_new(o, "agreementType", json_string("PurchaseAgreement"));
	json_object_set_new(o, "proposalSummary", proposal_summary(s));
	json_object_set_new(o, "status", json_string(status_of(s)));
}

static int create_agreement_request(struct api_json_call *j, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ const char **terms = NULL;
	const char *intent, *proposal, *token, *source;
	char id[AGREEMENT_REQUEST_ID_MAX];
	json_t *requested = json_object_get(j->in, "requestedTerms"), *t;
	size_t i, n;

	if (api_json_str(j, j->in, "intent", true, &intent, e) < 0 ||
	    api_json_str(j, j->in, "agreementProposalIdentifier", false, &proposal, e) < 0 ||
	    api_json_str(j, j->in, "sourceAgreementIdentifier", false, &source, e) < 0 ||
	    api_json_str(j, j->in, "clientToken", false, &token, e) < 0)
		return -1;
	if (strcmp(intent, "NEW")) {
		api_error_full(e, 400, "ValidationException",
		               "intent %.20s: kiln's agreements are only made NEW (no AMEND or "
		               "REPLACE)",
		               intent);
		return -1;
	}
	if (!proposal) {
		api_error_full(e, 400, "ValidationException",
		               "agreementProposalIdentifier (the offer) is required for a NEW "
		               "agreement");
		return -1;
	}
	if (!json_is_array(requested)) {
		api_error_full(e, 400, "ValidationException", "requestedTerms is required");
		return -1;
	}
	n = json_array_size(requested);
	terms = calloc(n + 1, sizeof(*terms));
	if (!terms)
		abort();
	json_array_foreach(requested, i, t)
	{
		if (!json_is_object(t) || api_json_str(j, t, "id", true, &terms[i], e) < 0)
			return -1;
		if (json_object_get(t, "configuration")) {
			api_error_full(e, 400, "ValidationException",
			               "term %.64s takes no configuration", terms[i]);
			return -1;
		}
	}
	if (cloud_agreement_request_create(j->call->cloud, j->call->account.id, proposal, terms, n,
	                                   token, id, &err) < 0) {
		api_json_cloud_error(j, err, e);
		return -1;
	}
	json_object_set_new(j->out, "agreementRequestId", json_string(id));
	/* Hourly, usage and free offers charge nothing upfront: charges come with use. */
	json_object_set_new(j->out, "chargeSummary",
	                    json_pack("{s:s, s:s, s:[]}", "currencyCode", "USD",
	                              "newAgreementValue", "0.00", "expectedCharges"));
	return 0;
}

static int accept_agreement_request(struct api_json_call *j, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct subscription s;
	const char *request;

	if (api_json_str(j, j->in, "agreementRequestId", true, &request, e) < 0)
		return -1;
	if (json_array_size(json_object_get(j->in, "purchaseOrders"))) {
		api_error_full(e, 400, "ValidationException",
		               "purchaseOrders: kiln's agreements have no charges to reference");
		return -1;
	}
	if (cloud_agreement_request_accept(j->call->cloud, j->call->account.id, request, &s, &err) <
	    0) {
		api_json_cloud_error(j, err, e);
		return -1;
	}
	json_object_set_new(j->out, "agreementId", json_string(s.id));
	return 0;
}

static int describe_agreement(struct api_json_call *j, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct subscription s;
	const char *id;

	if (api_json_str(j, j->in, "agreementId", true, &id, e) < 0)
		return -1;
	if (cloud_agreement_get(j->call->cloud, j->call->account.id, id, &s, &err) < 0) {
		api_json_cloud_error(j, err, e);
		return -1;
	}
	agreement_members(j->out, &s);
	json_object_set_new(
	    j->out, "estimatedCharges",
	    json_pack("{s:s, s:s}", "currencyCode", "USD", "agreementValue", "0.00"));
	return 0;
}

static int cancel_agreement(struct api_json_call *j, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *id;

	if (api_json_str(j, j->in, "agreementId", true, &id, e) < 0)
		return -1;
	if (cloud_agreement_cancel(j->call->cloud, j->call->account.id, id, &err) < 0) {
		api_json_cloud_error(j, err, e);
		return -1;
	}
	return 0;
}

static int get_agreement_terms(struct api_json_call *j, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct subscription s;
	struct product p;
	const char *id;
	char term[PRODUCT_CODE_LEN + 8], price[32];
	json_t *accepted, *t;

	if (api_json_str(j, j->in, "agreementId", true, &id, e) < 0)
		return -1;
	if (cloud_agreement_get(j->call->cloud, j->call->account.id, id, &s, &err) < 0 ||
	    cloud_product_get(j->call->cloud, s.product, &p, &err) < 0) {
		api_json_cloud_error(j, err, e);
		return -1;
	}
	snprintf(term, sizeof(term), "term-%s", p.code);
	accepted = json_array();
	if (!strcmp(p.pricing, "byol")) {
		t = json_pack("{s:{s:s, s:s}}", "byolPricingTerm", "type", "ByolPricingTerm", "id",
		              term);
	} else {
		/* Hourly (a price per instance type, 0 when free) and metered dimensions. */
		json_t *rates = json_array();
		for (size_t i = 0; i < p.ntypes; i++) {
			cloud_money_format(p.types[i].price_micros, price);
			json_array_append_new(rates, json_pack("{s:s, s:s}", "dimensionKey",
			                                       p.types[i].type, "price", price));
		}
		for (size_t i = 0; i < p.ndims; i++) {
			cloud_money_format(p.dims[i].price_micros, price);
			json_array_append_new(rates, json_pack("{s:s, s:s}", "dimensionKey",
			                                       p.dims[i].key, "price", price));
		}
		t = json_pack("{s:{s:s, s:s, s:s, s:[{s:o}]}}", "usageBasedPricingTerm", "type",
		              "UsageBasedPricingTerm", "id", term, "currencyCode", "USD",
		              "rateCards", "rateCard", rates);
	}
	json_array_append_new(accepted, t);
	json_object_set_new(j->out, "acceptedTerms", accepted);
	return 0;
}

/* One filter of SearchAgreements on one agreement. */
static bool filter_matches(const struct subscription *s, const char *caller, const char *name,
                           json_t *values, struct api_error *e, bool *ok)
{
	size_t i;
	json_t *v;
	char offer[PRODUCT_CODE_LEN + 8];

	snprintf(offer, sizeof(offer), "offer-%s", s->product);
	*ok = json_is_array(values) && json_array_size(values);
	if (!*ok) {
		api_error_full(e, 400, "ValidationException", "filter %.64s needs values", name);
		return false;
	}
	json_array_foreach(values, i, v)
	{
		const char *x = json_string_value(v);
		bool m;

		if (!x) {
			api_error_full(e, 400, "ValidationException", "filter values are strings");
			*ok = false;
			return false;
		}
		if (!strcmp(name, "PartyType"))
			m = !strcmp(x, "Acceptor")   ? !strcmp(s->account, caller)
			    : !strcmp(x, "Proposer") ? !strcmp(s->seller, caller)
			                             : false;
		else if (!strcmp(name, "AgreementType"))
			m = !strcmp(x, "PurchaseAgreement");
		else if (!strcmp(name, "Status"))
			m = !strcmp(x, status_of(s));
		else if (!strcmp(name, "ResourceIdentifier"))
			m = !strcmp(x, s->product_id);
		else if (!strcmp(name, "ResourceType"))
			m = !strcmp(x, "AmiProduct");
		else if (!strcmp(name, "AcceptorAccountId"))
			m = !strcmp(x, s->account);
		else if (!strcmp(name, "OfferId"))
			m = !strcmp(x, offer);
		else {
			api_error_full(
			    e, 400, "ValidationException",
			    "filter %.64s is none of PartyType, AgreementType, Status, "
			    "ResourceIdentifier, ResourceType, AcceptorAccountId, OfferId",
			    name);
			*ok = false;
			return false;
		}
		if (m)
			return true;
	}
	return false;
}

static int search_agreements(struct api_json_call *j, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ struct subscription *v = NULL;
	json_t *filters = json_object_get(j->in, "filters"), *list;
	const char *catalog, *token;
	int64_t max = SEARCH_PAGE_MAX, skip = 0, shown = 0;
	size_t n;

	if (api_json_str(j, j->in, "catalog", false, &catalog, e) < 0 ||
	    api_json_str(j, j->in, "nextToken", false, &token, e) < 0 ||
	    api_json_int(j, j->in, "maxResults", false, &max, e) < 0)
		return -1;
	if (catalog && strcmp(catalog, "AWSMarketplace")) {
		api_error_full(e, 400, "ValidationException", "catalog %.64s: only AWSMarketplace",
		               catalog);
		return -1;
	}
	if (max < 1 || max > SEARCH_PAGE_MAX) {
		api_error_full(e, 400, "ValidationException", "maxResults is 1 to %d",
		               SEARCH_PAGE_MAX);
		return -1;
	}
	if (token) {
		char *end;
		skip = strtoll(token, &end, 10);
		if (*end || skip < 0 || end == token) {
			api_error_full(e, 400, "ValidationException",
			               "nextToken is not one of ours");
			return -1;
		}
	}
	if (filters && !json_is_array(filters)) {
		api_error_full(e, 400, "ValidationException", "filters is a list");
		return -1;
	}
	if (cloud_agreements_of(j->call->cloud, j->call->account.id, &v, &n, &err) < 0) {
		api_json_cloud_error(j, err, e);
		return -1;
	}
	list = json_array();
	json_object_set_new(j->out, "agreementViewSummaries", list);
	for (size_t i = 0; i < n; i++) {
		bool keep = true;
		size_t k;
		json_t *f;

		json_array_foreach(filters, k, f)
		{
			const char *name = json_string_value(json_object_get(f, "name"));
			bool ok;

			if (!name) {
				api_error_full(e, 400, "ValidationException",
				               "a filter needs a name");
				return -1;
			}
			keep = filter_matches(&v[i], j->call->account.id, name,
			                      json_object_get(f, "values"), e, &ok) &&
			       keep;
			if (!ok)
				return -1;
		}
		if (!keep || skip-- > 0)
			continue;
		if (shown == max) {
			char next[24];
			snprintf(next, sizeof(next), "%lld",
			         (long long)(shown + (token ? strtoll(token, NULL, 10) : 0)));
			json_object_set_new(j->out, "nextToken", json_string(next));
			break;
		}
		json_t *o = json_object();
		agreement_members(o, &v[i]);
		json_array_append_new(list, o);
		shown++;
	}
	return 0;
}

const struct api_json_op api_agreement_ops[] = {
    {"AcceptAgreementRequest", accept_agreement_request}, {"CancelAgreement", cancel_agreement},
    {"CreateAgreementRequest", create_agreement_request}, {"DescribeAgreement", describe_agreement},
    {"GetAgreementTerms", get_agreement_terms},           {"SearchAgreements", search_agreements},
};
const size_t api_agreement_ops_count = sizeof(api_agreement_ops) / sizeof(api_agreement_ops[0]);
