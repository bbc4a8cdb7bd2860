/* The buyers' side of the marketplace through its APIs: agreement requests and agreements (the
 * Agreement API's names for subscriptions) and metered usage (MeterUsage, BatchMeterUsage), one
 * record per hour per dimension and per instance or customer, on the metering clock. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/str.h"
#include "util/banned.h"

#define LOWER_ALNUM "abcdefghijklmnopqrstuvwxyz0123456789"
#define HEX         "0123456789abcdef"
#define HOUR_MS     ((int64_t)3600 * 1000)

/* Agreements. */

/* The product an offer names: offer-CODE, or the product's code or prod- id. */
static int offer_product(struct cloud *c, const char *proposal, struct product *p,
                         struct kerr **err)
{
	_cleanup_kerr_ struct kerr *none = NULL;
	const char *key = !strncmp(proposal, "offer-", 6) ? proposal + 6 : proposal;

	if (cloud_product_get(c, key, p, &none) < 0) {
		if (none->kind != KERR_NOT_FOUND)
			return kerr_pass(err, steal_ptr(none));
		return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_AGREEMENT, proposal,
		                  "offer '%s' not found", proposal);
	}
	return 0;
}

int cloud_agreement_request_create(struct cloud *c, const char *account, const char *proposal,
                                   const char *const *terms, size_t nterms,
                                   const char *client_token, char id[AGREEMENT_REQUEST_ID_MAX],
                                   struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	struct product p;
	char term[PRODUCT_CODE_LEN + 8], now[24];
	int r;

	if (offer_product(c, proposal, &p, err) < 0)
		return -1;
	snprintf(term, sizeof(term), "term-%s", p.code);
	if (!nterms)
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_AGREEMENT, proposal,
		                  "requestedTerms must name the offer's term '%s'", term);
	for (size_t i = 0; i < nterms; i++)
		if (strcmp(terms[i], term))
			return kerr_about(
			    err, KERR_INVALID, KERR_SUBJECT_AGREEMENT, terms[i],
			    "term '%s' is not a term of offer 'offer-%s' (its term is "
			    "'%s')",
			    terms[i], p.code, term);
	if (client_token && client_token[0]) {
		if (db_prepare(c->db,
		               "SELECT id, product FROM agreement_requests WHERE account = ? AND "
		               "client_token = ?",
		               &st, err) < 0)
			return -1;
		db_bind_text(st, 1, account);
		db_bind_text(st, 2, client_token);
		r = db_step_row(c->db, st, err);
		if (r < 0)
			return -1;
		if (r == 1) {
			if (strcmp(db_text(st, 1), p.code))
				return kerr_about(
				    err, KERR_CONFLICT, KERR_SUBJECT_AGREEMENT, client_token,
				    "client token '%s' was used for another offer", client_token);
			str_copy(id, db_text(st, 0), AGREEMENT_REQUEST_ID_MAX);
			return 0;
		}
	}
	memcpy(id, "agreq-", 6);
	cloud_random_string(LOWER_ALNUM, id + 6, 26);
	snprintf(now, sizeof(now), "%lld", (long long)cloud_meter_now_ms(c));
	return cloud_sql_run(c, err,
	                     "INSERT INTO agreement_requests (id, account, product, client_token, "
	                     "created_ms) VALUES (?, ?, ?, ?, CAST(? AS INTEGER))",
	                     5, id, account, p.code, client_token ? client_token : "", now);
}

int cloud_agreement_request_accept(struct cloud *c, const char *account, const char *request,
                                   struct subscription *out, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	char product[PRODUCT_CODE_LEN + 1];
	int r;

	if (db_prepare(c->db,
	               "SELECT product, agreement FROM agreement_requests WHERE id = ? AND "
	               "account = ?",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, request);
	db_bind_text(st, 2, account);
	r = db_step_row(c->db, st, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_AGREEMENT, request,
		                  "agreement request '%s' not found", request);
	if (db_text(st, 1)[0])
		return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_AGREEMENT, request,
		                  "agreement request '%s' was accepted already (agreement '%s')",
		                  request, db_text(st, 1));
	str_copy(product, db_text(st, 0), sizeof(product));
	r = cloud_sql_exists(c, err,
	                     "SELECT 1 FROM subscriptions WHERE account = ? AND product = ? AND "
	                     "end_ms IS NULL",
	                     2, account, product);
	if (r < 0)
		return -1;
	if (r == 1)
		return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_AGREEMENT, request,
		                  "account '%s' has an active agreement for product '%s' already",
		                  account, product);
	if (cloud_subscribe(c, account, product, out, err) < 0)
		return -1;
	return cloud_sql_run(c, err, "UPDATE agreement_requests SET agreement = ? WHERE id = ?", 2,
	                     out->id, request);
}

int cloud_agreement_get(struct cloud *c, const char *caller, const char *id,
                        struct subscription *out, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db,
	               "SELECT " CLOUD_SUBSCRIPTION_COLUMNS
	               "WHERE s.id = ?1 AND (s.account = ?2 OR p.seller = ?2)",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, id);
	db_bind_text(st, 2, caller);
	r = db_step_row(c->db, st, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_AGREEMENT, id,
		                  "agreement '%s' not found", id);
	cloud_subscription_from_row(st, out);
	return 0;
}

int cloud_agreements_of(struct cloud *c, const char *caller, struct subscription **out, size_t *n,
                        struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (db_prepare(c->db,
	               "SELECT " CLOUD_SUBSCRIPTION_COLUMNS
	               "WHERE s.account = ?1 OR p.seller = ?1 ORDER BY s.start_ms DESC, s.id",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, caller);
	return cloud_rows(c, st, sizeof(**out), cloud_subscription_from_row, (void **)out, n, err);
}

int cloud_agreement_cancel(struct cloud *c, const char *caller, const char *id, struct kerr **err)
{
	struct subscription s;

	if (cloud_agreement_get(c, caller, id, &s, err) < 0)
		return -1;
	if (strcmp(s.account, caller))
		return kerr_about(err, KERR_AUTH, KERR_SUBJECT_AGREEMENT, id,
		                  "only the acceptor of agreement '%s' can cancel it", id);
	if (s.end_ms)
		return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_AGREEMENT, id,
		                  "agreement '%s' is cancelled already", id);
	return cloud_unsubscribe(c, caller, s.product, err);
}

/* Metering. */

static int dimension_check(const struct product *p, const char *dimension, struct kerr **err)
{
	for (size_t i = 0; i < p->ndims; i++)
		if (!strcmp(p->dims[i].key, dimension))
			return 0;
	return kerr_about(err, KERR_INVALID, KERR_SUBJECT_USAGE_DIMENSION, dimension,
	                  "usage dimension '%s' is not one of product '%s'", dimension, p->code);
}

static int time_check(struct cloud *c, const struct meter_request *r, struct kerr **err)
{
	int64_t now = cloud_meter_now_ms(c);

	if (r->timestamp_ms < now - METERING_MAX_AGE_MS ||
	    r->timestamp_ms / HOUR_MS > now / HOUR_MS)
		return kerr_about(
		    err, KERR_INVALID, KERR_SUBJECT_USAGE_TIME, NULL,
		    "timestamp %lld is out of the allowed range (at most six hours in "
		    "the past, not in a later hour)",
		    (long long)(r->timestamp_ms / 1000));
	if (r->quantity < 0 || r->quantity > 2147483647)
		return kerr_set(err, KERR_INVALID, "usage quantity %lld is not in 0..2147483647",
		                (long long)r->quantity);
	return 0;
}

static void product_not_found(const char *code, struct kerr **err)
{
	kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_PRODUCT_CODE, code,
	           "product code '%s' is not one of a product of the caller's", code);
}

/* The record of (product, dimension, account, instance, hour): 1 with id when made or the same
 * again, 0 when that hour has another quantity, -1 on error. The insert is made or ignored
 * first, so two callers of the same hour at once find one record. */
static int record(struct cloud *c, const char *account, const char *instance, const char *region,
                  const struct meter_request *r, char id[METERING_RECORD_ID_MAX], struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	char hour[24], qty[24], now[24], fresh[METERING_RECORD_ID_MAX];
	int found;

	snprintf(hour, sizeof(hour), "%lld", (long long)(r->timestamp_ms / HOUR_MS * HOUR_MS));
	snprintf(qty, sizeof(qty), "%lld", (long long)r->quantity);
	snprintf(now, sizeof(now), "%lld", (long long)cloud_meter_now_ms(c));
	/* A UUID's shape, as AWS's record ids. */
	cloud_random_string(HEX, fresh, 36);
	fresh[8] = fresh[13] = fresh[18] = fresh[23] = '-';
	if (cloud_sql_run(
	        c, err,
	        "INSERT OR IGNORE INTO metering_records (id, product, dimension, account, "
	        "instance, region, hour_ms, quantity, at_ms) VALUES (?, ?, ?, ?, ?, ?, "
	        "CAST(? AS INTEGER), CAST(? AS INTEGER), CAST(? AS INTEGER))",
	        9, fresh, r->product, r->dimension, account, instance, region, hour, qty, now) < 0)
		return -1;
	if (db_prepare(c->db,
	               "SELECT id, quantity FROM metering_records WHERE product = ? AND "
	               "dimension = ? AND account = ? AND instance = ? AND hour_ms = CAST(? AS "
	               "INTEGER)",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, r->product);
	db_bind_text(st, 2, r->dimension);
	db_bind_text(st, 3, account);
	db_bind_text(st, 4, instance);
	db_bind_text(st, 5, hour);
	found = db_step_row(c->db, st, err);
	if (found < 0)
		return -1;
	if (found == 0)
		return kerr_set(err, KERR_INTERNAL, "the metering record just made is gone");
	if (sqlite3_column_int64(st, 1) != r->quantity)
		return 0;
	str_copy(id, db_text(st, 0), METERING_RECORD_ID_MAX);
	return 1;
}

int cloud_meter_usage(struct cloud *c, const char *caller, const char *instance, const char *region,
                      const struct meter_request *req, bool dry_run,
                      char id[METERING_RECORD_ID_MAX], struct kerr **err)
{
	_cleanup_kerr_ struct kerr *none = NULL;
	struct instance in; /* its owner is the caller's account when an instance meters */
	struct product p;
	int r;

	id[0] = '\0';
	if (cloud_product_get(c, req->product, &p, &none) < 0 || strcmp(p.code, req->product)) {
		if (none && none->kind != KERR_NOT_FOUND)
			return kerr_pass(err, steal_ptr(none));
		product_not_found(req->product, err);
		return -1;
	}
	if (time_check(c, req, err) < 0 || dimension_check(&p, req->dimension, err) < 0)
		return -1;
	if (instance[0]) {
		bool carries = false;

		if (cloud_instance_get(c, instance, &in, err) < 0)
			return -1;
		if (strcmp(in.region, region))
			return kerr_about(
			    err, KERR_INVALID, KERR_SUBJECT_REGION, region,
			    "instance '%s' is in region '%s': meter its usage at that "
			    "region's endpoint, not '%s'",
			    instance, in.region, region);
		for (size_t i = 0; i < in.nproduct_codes; i++)
			carries = carries || !strcmp(in.product_codes[i], p.code);
		if (!carries)
			return kerr_about(err, KERR_AUTH, KERR_SUBJECT_PRODUCT_CODE, p.code,
			                  "instance '%s' does not run product '%s'", instance,
			                  p.code);
		caller = in.owner;
	} else {
		r = cloud_sql_exists(
		    c, err,
		    "SELECT 1 FROM subscriptions WHERE account = ? AND product = ? "
		    "AND end_ms IS NULL",
		    2, caller, p.code);
		if (r < 0)
			return -1;
		if (r == 0)
			return kerr_about(err, KERR_AUTH, KERR_SUBJECT_PRODUCT_CODE, p.code,
			                  "account '%s' has no subscription to product '%s'",
			                  caller, p.code);
	}
	if (dry_run)
		return 0;
	r = record(c, caller, instance, region, req, id, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_USAGE_RECORD, req->dimension,
		                  "usage of dimension '%s' for this hour was metered already with "
		                  "another quantity",
		                  req->dimension);
	return 0;
}

int cloud_batch_meter_usage(struct cloud *c, const char *caller, const char *region,
                            const char *product, const struct meter_request *records,
                            const char *const *customers, size_t n, enum meter_status *status,
                            char (*ids)[METERING_RECORD_ID_MAX], struct kerr **err)
{
	_cleanup_kerr_ struct kerr *none = NULL;
	struct product p;

	if (cloud_product_get(c, product, &p, &none) < 0 || strcmp(p.code, product) ||
	    strcmp(p.seller, caller)) {
		if (none && none->kind != KERR_NOT_FOUND)
			return kerr_pass(err, steal_ptr(none));
		product_not_found(product, err);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (time_check(c, &records[i], err) < 0 ||
		    dimension_check(&p, records[i].dimension, err) < 0)
			return -1;
	for (size_t i = 0; i < n; i++) {
		int r =
		    cloud_sql_exists(c, err,
		                     "SELECT 1 FROM subscriptions WHERE account = ? AND product "
		                     "= ? AND end_ms IS NULL",
		                     2, customers[i], p.code);
		ids[i][0] = '\0';
		if (r < 0)
			return -1;
		if (r == 0) {
			status[i] = METER_NOT_SUBSCRIBED;
			continue;
		}
		r = record(c, customers[i], "", region, &records[i], ids[i], err);
		if (r < 0)
			return -1;
		status[i] = r == 1 ? METER_SUCCESS : METER_DUPLICATE;
	}
	return 0;
}
