/* The marketplace: products (a seller's image published as the marketplace account's, with a
 * product code), their prices, subscriptions, the check RunInstances makes, and bills computed
 * from the state changes of instances. Product codes themselves follow rows by the triggers of
 * migration 16 (db/schema.c). */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloud/catalog.h"
#include "runtime/runtime.h"
#include "util/cleanup.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define LOWER_ALNUM "abcdefghijklmnopqrstuvwxyz0123456789"
#define MICROS      1000000
#define HOUR_MS     ((int64_t)3600 * 1000)

void cloud_product_codes_split(const char *text, char (*codes)[PRODUCT_CODE_LEN + 1], size_t *n)
{
	*n = 0;
	while (*text && *n < PRODUCT_CODES_MAX) {
		size_t len = strcspn(text, " ");
		if (len && len <= PRODUCT_CODE_LEN) {
			memcpy(codes[*n], text, len);
			codes[(*n)++][len] = '\0';
		}
		text += len;
		text += strspn(text, " ");
	}
}

int cloud_product_codes(struct cloud *c, const char *resource, char (*codes)[PRODUCT_CODE_LEN + 1],
                        size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	*n = 0;
	if (db_prepare(c->db, "SELECT " CLOUD_CODES_OF("?1"), &st, err) < 0)
		return -1;
	db_bind_text(st, 1, resource);
	r = db_step_row(c->db, st, err);
	if (r == 1)
		cloud_product_codes_split(db_text(st, 0), codes, n);
	return r < 0 ? -1 : 0;
}

int cloud_money_parse(const char *s, int64_t *micros, struct kerr **err)
{
	int64_t whole = 0, frac = 0, scale = MICROS;
	const char *p = s;

	if (!(*p >= '0' && *p <= '9'))
		goto bad;
	for (; *p >= '0' && *p <= '9'; p++)
		if (__builtin_mul_overflow(whole, 10, &whole) ||
		    __builtin_add_overflow(whole, *p - '0', &whole) || whole > 1000000)
			goto bad;
	if (*p == '.') {
		p++;
		if (!(*p >= '0' && *p <= '9'))
			goto bad;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (scale == 1)
				goto bad; /* more than 6 decimals */
			scale /= 10;
			frac += (*p - '0') * scale;
		}
	}
	if (*p)
		goto bad;
	*micros = whole * MICROS + frac;
	return 0;
bad:
	return kerr_set(err, KERR_INVALID,
	                "invalid price '%s': dollars with at most 6 decimals, at most 1000000", s);
}

void cloud_money_format(int64_t micros, char out[32])
{
	int64_t whole = micros / MICROS, frac = micros % MICROS;
	int digits = 6;

	while (digits > 2 && frac % 10 == 0) {
		frac /= 10;
		digits--;
	}
	char text[64];

	snprintf(text, sizeof(text), "%lld.%0*lld", (long long)whole, digits, (long long)frac);
	str_copy(out, text, 32);
}

int cloud_account_find(struct cloud *c, const char *id_or_name, struct account *out,
                       struct kerr **err)
{
	_cleanup_free_ struct account *v = NULL;
	size_t n;

	if (cloud_account_list(c, &v, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].id, id_or_name) || !strcmp(v[i].name, id_or_name)) {
			*out = v[i];
			return 0;
		}
	return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_ACCOUNT, id_or_name,
	                  "account '%s' not found", id_or_name);
}

/* Products. */

#define PRODUCT_COLUMNS                                                                            \
	"p.code, p.id, p.seller, p.title, p.pricing, p.created_ms, "                               \
	"COALESCE((SELECT pc.resource FROM product_codes pc JOIN images i ON i.id = pc.resource "  \
	"WHERE pc.code = p.code AND i.owner = '" MARKETPLACE_ACCOUNT_ID "' ORDER BY "              \
	"i.creation_ms LIMIT 1), ''), "                                                            \
	"COALESCE((SELECT i.region FROM product_codes pc JOIN images i ON i.id = pc.resource "     \
	"WHERE pc.code = p.code AND i.owner = '" MARKETPLACE_ACCOUNT_ID "' ORDER BY "              \
	"i.creation_ms LIMIT 1), '') FROM products p "

static void product_from_row(sqlite3_stmt *st, void *element)
{
	struct product *p = element;

	memset(p, 0, sizeof(*p));
	str_copy(p->code, db_text(st, 0), sizeof(p->code));
	str_copy(p->id, db_text(st, 1), sizeof(p->id));
	str_copy(p->seller, db_text(st, 2), sizeof(p->seller));
	str_copy(p->title, db_text(st, 3), sizeof(p->title));
	str_copy(p->pricing, db_text(st, 4), sizeof(p->pricing));
	p->created_ms = sqlite3_column_int64(st, 5);
	str_copy(p->image, db_text(st, 6), sizeof(p->image));
	str_copy(p->region, db_text(st, 7), sizeof(p->region));
}

static int load_types(struct cloud *c, struct product *p, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db,
	               "SELECT type, price_micros FROM product_types WHERE product = ? ORDER BY "
	               "type",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, p->code);
	p->ntypes = 0;
	while ((r = db_step_row(c->db, st, err)) == 1 && p->ntypes < PRODUCT_TYPES_MAX) {
		str_copy(p->types[p->ntypes].type, db_text(st, 0), sizeof(p->types[0].type));
		p->types[p->ntypes++].price_micros = sqlite3_column_int64(st, 1);
	}
	if (r < 0)
		return -1;
	sqlite3_finalize(steal_ptr(st));
	if (db_prepare(c->db,
	               "SELECT dimension, price_micros FROM product_dimensions WHERE product = ? "
	               "ORDER BY dimension",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, p->code);
	p->ndims = 0;
	while ((r = db_step_row(c->db, st, err)) == 1 && p->ndims < PRODUCT_DIMENSIONS_MAX) {
		str_copy(p->dims[p->ndims].key, db_text(st, 0), sizeof(p->dims[0].key));
		p->dims[p->ndims++].price_micros = sqlite3_column_int64(st, 1);
	}
	return r < 0 ? -1 : 0;
}

int cloud_products_list(struct cloud *c, struct product **out, size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	struct product *v = NULL;

	if (db_prepare(c->db, "SELECT " PRODUCT_COLUMNS "ORDER BY p.created_ms, p.code", &st, err) <
	        0 ||
	    cloud_rows(c, st, sizeof(*v), product_from_row, (void **)&v, n, err) < 0)
		return -1;
	for (size_t i = 0; i < *n; i++)
		if (load_types(c, &v[i], err) < 0) {
			free(v);
			return -1;
		}
	*out = v;
	return 0;
}

int cloud_product_get(struct cloud *c, const char *code_or_id, struct product *out,
                      struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db, "SELECT " PRODUCT_COLUMNS "WHERE p.code = ?1 OR p.id = ?1", &st,
	               err) < 0)
		return -1;
	db_bind_text(st, 1, code_or_id);
	r = db_step_row(c->db, st, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_PRODUCT_CODE, code_or_id,
		                  "product '%s' not found", code_or_id);
	product_from_row(st, out);
	return load_types(c, out, err);
}

static int product_request_check(const struct product_request *req, struct kerr **err)
{
	bool hourly = !strcmp(req->pricing, "hourly");

	if (!hourly && strcmp(req->pricing, "free") && strcmp(req->pricing, "byol"))
		return kerr_set(err, KERR_INVALID, "pricing '%s' is none of free, byol and hourly",
		                req->pricing);
	if (!req->title[0] || strlen(req->title) > 255)
		return kerr_set(err, KERR_INVALID, "a product's title is 1 to 255 characters");
	if (hourly && !req->ntypes)
		return kerr_set(err, KERR_INVALID,
		                "an hourly product needs a price for each instance type it allows");
	if (req->ntypes > PRODUCT_TYPES_MAX)
		return kerr_set(err, KERR_LIMIT, "a product allows at most %d instance types",
		                PRODUCT_TYPES_MAX);
	for (size_t i = 0; i < req->ntypes; i++) {
		if (!instance_type_find(req->types[i].type))
			return kerr_about(err, KERR_INVALID, KERR_SUBJECT_INSTANCE_TYPE,
			                  req->types[i].type, "instance type '%s' not found",
			                  req->types[i].type);
		if (req->types[i].price_micros < 0 || (!hourly && req->types[i].price_micros))
			return kerr_set(err, KERR_INVALID,
			                "only an hourly product has prices (instance type '%s')",
			                req->types[i].type);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(req->types[i].type, req->types[j].type))
				return kerr_set(err, KERR_INVALID, "instance type '%s' given twice",
				                req->types[i].type);
	}
	if (req->ndims > PRODUCT_DIMENSIONS_MAX)
		return kerr_set(err, KERR_LIMIT, "a product has at most %d usage dimensions",
		                PRODUCT_DIMENSIONS_MAX);
	for (size_t i = 0; i < req->ndims; i++) {
		if (!req->dims[i].key[0] || req->dims[i].price_micros < 0)
			return kerr_set(err, KERR_INVALID,
			                "a usage dimension needs a name and a price");
		for (size_t j = 0; j < i; j++)
			if (!strcmp(req->dims[i].key, req->dims[j].key))
				return kerr_set(err, KERR_INVALID,
				                "usage dimension '%s' given twice",
				                req->dims[i].key);
	}
	return 0;
}

/* The marketplace's copy of the seller's image, waited for (same region: only its manifests
 * are written, the chunks are there already). */
static int marketplace_copy(struct cloud *c, const struct image *src, const char *code,
                            const char *title, struct image *out, struct kerr **err)
{
	char name[129];
	const char *const mp[] = {MARKETPLACE_ACCOUNT_ID};
	struct copy_image_request cr = {.region = src->region,
	                                .src_region = src->region,
	                                .src_image = src->id,
	                                .name = name,
	                                .description = title};

	snprintf(name, sizeof(name), "%.100s-%s", src->name, code);
	if (cloud_image_permit(c, src->owner, src->region, src->id, mp, 1, NULL, 0, false, err) <
	        0 ||
	    cloud_image_copy(c, MARKETPLACE_ACCOUNT_ID, &cr, out, err) < 0)
		return -1;
	for (;;) {
		const struct timespec tick = {0, 50 * 1000 * 1000};
		if (cloud_image_get(c, MARKETPLACE_ACCOUNT_ID, src->region, out->id, out, err) < 0)
			return -1;
		if (image_state_parse(out->state) != IMAGE_PENDING)
			break;
		nanosleep(&tick, NULL);
	}
	if (image_state_parse(out->state) != IMAGE_AVAILABLE)
		return kerr_set(err, KERR_INTERNAL,
		                "the marketplace's copy of image '%s' failed: %s", src->id,
		                out->state_reason);
	return 0;
}

static int code_attach(struct cloud *c, const char *resource, const char *code, struct kerr **err)
{
	return cloud_sql_run(c, err,
	                     "INSERT OR IGNORE INTO product_codes (resource, code) VALUES (?, ?)",
	                     2, resource, code);
}

int cloud_product_create(struct cloud *c, const struct product_request *req, struct product *out,
                         struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *prod = NULL, *type = NULL, *dim = NULL;
	struct image src, copy;
	char code[PRODUCT_CODE_LEN + 1], id[PRODUCT_ID_MAX];

	if (product_request_check(req, err) < 0)
		return -1;
	if (cloud_image_get(c, req->seller, req->region, req->image, &src, err) < 0)
		return -1;
	if (strcmp(src.owner, req->seller))
		return kerr_about(err, KERR_AUTH, KERR_SUBJECT_IMAGE, src.id,
		                  "image '%s' is not the seller's", src.id);
	if (image_state_parse(src.state) != IMAGE_AVAILABLE)
		return kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_IMAGE, src.id,
		                  "image '%s' is %s, not available", src.id, src.state);
	if (src.nproduct_codes)
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_PRODUCT_IMAGE, src.id,
		                  "image '%s' carries product code '%s': it is another product's",
		                  src.id, src.product_codes[0]);
	cloud_random_string(LOWER_ALNUM, code, PRODUCT_CODE_LEN);
	memcpy(id, "prod-", 5);
	cloud_random_string(LOWER_ALNUM, id + 5, 13);
	if (marketplace_copy(c, &src, code, req->title, &copy, err) < 0)
		return -1;
	if (db_prepare(c->db,
	               "INSERT INTO products (code, id, seller, title, pricing, created_ms) VALUES "
	               "(?, ?, ?, ?, ?, ?)",
	               &prod, err) < 0 ||
	    db_prepare(c->db,
	               "INSERT INTO product_types (product, type, price_micros) VALUES (?, ?, ?)",
	               &type, err) < 0 ||
	    db_prepare(c->db,
	               "INSERT INTO product_dimensions (product, dimension, price_micros) VALUES "
	               "(?, ?, ?)",
	               &dim, err) < 0)
		goto on_copy;
	db_bind_text(prod, 1, code);
	db_bind_text(prod, 2, id);
	db_bind_text(prod, 3, req->seller);
	db_bind_text(prod, 4, req->title);
	db_bind_text(prod, 5, req->pricing);
	sqlite3_bind_int64(prod, 6, cloud_now_ms());
	if (db_begin(c->db, err) < 0)
		goto on_copy;
	if (db_step_done(c->db, prod, err) < 0)
		goto on_error;
	for (size_t i = 0; i < req->ntypes; i++) {
		sqlite3_reset(type);
		db_bind_text(type, 1, code);
		db_bind_text(type, 2, req->types[i].type);
		sqlite3_bind_int64(type, 3, req->types[i].price_micros);
		if (db_step_done(c->db, type, err) < 0)
			goto on_error;
	}
	for (size_t i = 0; i < req->ndims; i++) {
		sqlite3_reset(dim);
		db_bind_text(dim, 1, code);
		db_bind_text(dim, 2, req->dims[i].key);
		sqlite3_bind_int64(dim, 3, req->dims[i].price_micros);
		if (db_step_done(c->db, dim, err) < 0)
			goto on_error;
	}
	/* The code on the image and its snapshots, then public: the marketplace's images are
	 * everyone's to find. */
	if (code_attach(c, copy.id, code, err) < 0 ||
	    code_attach(c, copy.root_snapshot, code, err) < 0)
		goto on_error;
	for (size_t i = 0; i < copy.nvolumes; i++)
		if (code_attach(c, copy.volumes[i].snapshot, code, err) < 0)
			goto on_error;
	if (cloud_sql_run(
	        c, err,
	        "INSERT OR IGNORE INTO image_permissions (image, grantee) VALUES (?, 'all')", 1,
	        copy.id) < 0 ||
	    cloud_sql_run(c, err, "UPDATE images SET public = 1 WHERE id = ?", 1, copy.id) < 0)
		goto on_error;
	if (db_commit(c->db, err) < 0)
		goto on_copy;
	return cloud_product_get(c, code, out, err);

on_error:
	db_rollback(c->db);
on_copy : /* the copy goes (its snapshots stay, as after any DeregisterImage) */
{
	_cleanup_kerr_ struct kerr *why = NULL;
	if (cloud_image_deregister(c, MARKETPLACE_ACCOUNT_ID, copy.region, copy.id, &why) < 0)
		cloud_log_failure(copy.id, why, "cannot remove the copy of a failed product");
}
	return -1;
}

/* Subscriptions. */

/* 1 when subscribed, 0 when not, -1 on error. */
static int subscribed(struct cloud *c, const char *account, const char *code, struct kerr **err)
{
	return cloud_sql_exists(c, err,
	                        "SELECT 1 FROM subscriptions WHERE account = ? AND product = ? AND "
	                        "end_ms IS NULL",
	                        2, account, code);
}

int cloud_marketplace_launch_check(struct cloud *c, const char *owner, const struct image *im,
                                   const char *type, struct kerr **err)
{
	for (size_t i = 0; i < im->nproduct_codes; i++) {
		const char *code = im->product_codes[i];
		struct product p;
		bool allowed;
		int r = subscribed(c, owner, code, err);

		if (r < 0)
			return -1;
		if (r == 0) {
			return kerr_about(err, KERR_AUTH, KERR_SUBJECT_PRODUCT_CODE, code,
			                  "product '%s' needs a subscription before a launch of "
			                  "image '%s'",
			                  code, im->id);
		}
		if (cloud_product_get(c, code, &p, err) < 0)
			return -1;
		allowed = p.ntypes == 0;
		for (size_t k = 0; k < p.ntypes && !allowed; k++)
			allowed = !strcmp(p.types[k].type, type);
		if (!allowed)
			return kerr_about(err, KERR_INVALID, KERR_SUBJECT_PRODUCT_CODE, code,
			                  "product '%s' does not allow instance type '%s'", code,
			                  type);
	}
	return 0;
}

#define SUBSCRIPTION_COLUMNS CLOUD_SUBSCRIPTION_COLUMNS

void cloud_subscription_from_row(sqlite3_stmt *st, void *element)
{
	struct subscription *s = element;

	memset(s, 0, sizeof(*s));
	str_copy(s->id, db_text(st, 0), sizeof(s->id));
	str_copy(s->account, db_text(st, 1), sizeof(s->account));
	str_copy(s->product, db_text(st, 2), sizeof(s->product));
	str_copy(s->title, db_text(st, 3), sizeof(s->title));
	s->start_ms = sqlite3_column_int64(st, 4);
	s->end_ms = sqlite3_column_int64(st, 5);
	str_copy(s->product_id, db_text(st, 6), sizeof(s->product_id));
	str_copy(s->seller, db_text(st, 7), sizeof(s->seller));
}

static int active_subscription(struct cloud *c, const char *account, const char *code,
                               struct subscription *out, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db,
	               "SELECT " SUBSCRIPTION_COLUMNS
	               "WHERE s.account = ? AND s.product = ? AND s.end_ms IS NULL",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, account);
	db_bind_text(st, 2, code);
	r = db_step_row(c->db, st, err);
	if (r == 1)
		cloud_subscription_from_row(st, out);
	return r;
}

int cloud_subscribe(struct cloud *c, const char *account, const char *product,
                    struct subscription *out, struct kerr **err)
{
	struct product p;
	char id[AGREEMENT_ID_MAX], start[24];
	int r;

	if (cloud_product_get(c, product, &p, err) < 0)
		return -1;
	r = active_subscription(c, account, p.code, out, err);
	if (r != 0)
		return r < 0 ? -1 : 0;
	if (cloud_catalog_subscribable(c, p.id, account, err) < 0)
		return -1;
	memcpy(id, "agmt-", 5);
	cloud_random_string(LOWER_ALNUM, id + 5, 26);
	snprintf(start, sizeof(start), "%lld", (long long)cloud_meter_now_ms(c));
	if (cloud_sql_run(
	        c, err,
	        "INSERT INTO subscriptions (id, account, product, start_ms) VALUES (?, ?, "
	        "?, CAST(? AS INTEGER))",
	        4, id, account, p.code, start) < 0)
		return -1;
	return active_subscription(c, account, p.code, out, err) < 0 ? -1 : 0;
}

int cloud_unsubscribe(struct cloud *c, const char *account, const char *product, struct kerr **err)
{
	struct product p;
	struct subscription s;
	char end[24];
	int r;

	if (cloud_product_get(c, product, &p, err) < 0)
		return -1;
	r = active_subscription(c, account, p.code, &s, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_PRODUCT_CODE, p.code,
		                  "account '%s' has no subscription to product '%s'", account,
		                  p.code);
	snprintf(end, sizeof(end), "%lld", (long long)cloud_meter_now_ms(c));
	return cloud_sql_run(c, err,
	                     "UPDATE subscriptions SET end_ms = CAST(? AS INTEGER) WHERE id = ?", 2,
	                     end, s.id);
}

int cloud_subscriptions_list(struct cloud *c, const char *account, struct subscription **out,
                             size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (db_prepare(c->db,
	               "SELECT " SUBSCRIPTION_COLUMNS
	               "WHERE s.account = ? ORDER BY s.start_ms, s.id",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, account);
	return cloud_rows(c, st, sizeof(**out), cloud_subscription_from_row, (void **)out, n, err);
}

int cloud_product_instance_confirm(struct cloud *c, const char *caller, const char *region,
                                   const char *instance, const char *code, bool *ok,
                                   char owner[ACCOUNT_ID_LEN + 1], struct kerr **err)
{
	_cleanup_kerr_ struct kerr *none = NULL;
	struct instance in;
	struct product p;

	*ok = false;
	owner[0] = '\0';
	if (cloud_instance_get(c, instance, &in, err) < 0)
		return -1;
	if (strcmp(in.region, region))
		return cloud_instance_not_found(instance, err);
	if (cloud_product_get(c, code, &p, &none) < 0 || strcmp(p.seller, caller) ||
	    strcmp(p.code, code))
		return 0; /* not a product of the caller's: false, as EC2 answers */
	for (size_t i = 0; i < in.nproduct_codes && !*ok; i++)
		*ok = !strcmp(in.product_codes[i], code);
	if (*ok)
		str_copy(owner, in.owner, ACCOUNT_ID_LEN + 1);
	return 0;
}

/* The metering clock. */

#define TEST_CLOCK_OFFSET "test-clock-offset-ms"
#define TEST_CLOCK_ON     "test-clock"

int64_t cloud_meter_now_ms(struct cloud *c)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int64_t offset = 0;

	if (db_prepare(c->db,
	               "SELECT CAST(value AS INTEGER) FROM settings WHERE name = "
	               "'" TEST_CLOCK_OFFSET "'",
	               &st, NULL) == 0 &&
	    db_step_row(c->db, st, NULL) == 1)
		offset = sqlite3_column_int64(st, 0);
	return cloud_now_ms() + offset;
}

int cloud_test_clock_enable(struct cloud *c, bool on, struct kerr **err)
{
	if (on)
		return cloud_sql_run(c, err,
		                     "INSERT OR REPLACE INTO settings (name, value) VALUES "
		                     "('" TEST_CLOCK_ON "', 'on')",
		                     0);
	return cloud_sql_run(c, err, "DELETE FROM settings WHERE name = '" TEST_CLOCK_ON "'", 0);
}

int cloud_test_clock_advance(struct cloud *c, int64_t ms, struct kerr **err)
{
	char by[24];
	int r;

	if (ms <= 0)
		return kerr_set(err, KERR_INVALID, "the test clock only moves forward");
	r = cloud_sql_exists(c, err, "SELECT 1 FROM settings WHERE name = '" TEST_CLOCK_ON "'", 0);
	if (r < 0)
		return -1;
	if (r == 0)
		return kerr_set(err, KERR_AUTH,
		                "the test clock is off: the daemon runs with it only when started "
		                "with 'kiln serve --test-clock'");
	snprintf(by, sizeof(by), "%lld", (long long)ms);
	return cloud_sql_run(
	    c, err,
	    "INSERT INTO settings (name, value) VALUES ('" TEST_CLOCK_OFFSET "', ?1) "
	    "ON CONFLICT (name) DO UPDATE SET value = CAST(value AS INTEGER) + CAST(?1 AS INTEGER)",
	    1, by);
}

/* Bills. */

/* The whole hours billed for instance: each run (from running to its next state, or now) is
 * rounded up to the hours it started. */
static int running_hours(struct cloud *c, const char *instance, int64_t now, uint64_t *hours,
                         struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int64_t since = -1;
	int r;

	*hours = 0;
	if (db_prepare(
	        c->db,
	        "SELECT at_ms, state FROM instance_states WHERE instance = ? ORDER BY at_ms, "
	        "rowid",
	        &st, err) < 0)
		return -1;
	db_bind_text(st, 1, instance);
	while ((r = db_step_row(c->db, st, err)) == 1) {
		int64_t at = sqlite3_column_int64(st, 0);
		bool running = !strcmp(db_text(st, 1), "running");
		if (running && since < 0)
			since = at;
		else if (!running && since >= 0) {
			*hours += (uint64_t)((at - since + HOUR_MS - 1) / HOUR_MS);
			since = -1;
		}
	}
	if (r < 0)
		return -1;
	if (since >= 0 && now > since)
		*hours += (uint64_t)((now - since + HOUR_MS - 1) / HOUR_MS);
	return 0;
}

static void bill_from_row(sqlite3_stmt *st, void *element)
{
	struct bill_line *b = element;

	memset(b, 0, sizeof(*b));
	str_copy(b->instance, db_text(st, 0), sizeof(b->instance));
	str_copy(b->buyer, db_text(st, 1), sizeof(b->buyer));
	str_copy(b->type, db_text(st, 2), sizeof(b->type));
	str_copy(b->region, db_text(st, 3), sizeof(b->region));
	str_copy(b->product, db_text(st, 4), sizeof(b->product));
	str_copy(b->title, db_text(st, 5), sizeof(b->title));
	str_copy(b->seller, db_text(st, 6), sizeof(b->seller));
	str_copy(b->pricing, db_text(st, 7), sizeof(b->pricing));
	b->price_micros = sqlite3_column_int64(st, 8);
}

/* The metered usage: one line per product, customer, instance and dimension, its units summed,
 * at the dimension's price per unit. */
static int usage_lines(struct cloud *c, const char *buyer, const char *seller, struct bill_line **v,
                       size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db,
	               "SELECT m.instance, m.account, COALESCE(n.type, ''), m.region, p.code, "
	               "p.title, p.seller, p.pricing, COALESCE(d.price_micros, 0), m.dimension, "
	               "SUM(m.quantity) FROM metering_records m JOIN products p ON p.code = "
	               "m.product LEFT JOIN product_dimensions d ON d.product = p.code AND "
	               "d.dimension = m.dimension LEFT JOIN instances n ON n.id = m.instance WHERE "
	               "(?1 IS NULL OR m.account = ?1) AND (?2 IS NULL OR p.seller = ?2) GROUP BY "
	               "p.code, m.account, m.instance, m.dimension ORDER BY p.code, m.account, "
	               "m.instance, m.dimension",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, buyer);
	db_bind_text(st, 2, seller);
	while ((r = db_step_row(c->db, st, err)) == 1) {
		struct bill_line *b;
		int64_t qty = sqlite3_column_int64(st, 10);

		*v = xreallocarray(*v, *n + 1, sizeof(**v));
		b = &(*v)[(*n)++];
		bill_from_row(st, b);
		str_copy(b->dimension, db_text(st, 9), sizeof(b->dimension));
		b->quantity = (uint64_t)qty;
		if (__builtin_mul_overflow(qty, b->price_micros, &b->amount_micros))
			return kerr_set(err, KERR_LIMIT, "the usage of product '%s' overflows",
			                b->product);
	}
	return r < 0 ? -1 : 0;
}

int cloud_bill(struct cloud *c, const char *buyer, const char *seller, struct bill_line **out,
               size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	struct bill_line *v = NULL;
	int64_t now = cloud_meter_now_ms(c);

	if (db_prepare(c->db,
	               "SELECT n.id, n.owner, n.type, n.region, p.code, p.title, p.seller, "
	               "p.pricing, CASE p.pricing WHEN 'hourly' THEN COALESCE(t.price_micros, 0) "
	               "ELSE 0 END FROM product_codes pc JOIN instances n ON n.id = pc.resource "
	               "JOIN products p ON p.code = pc.code LEFT JOIN product_types t ON "
	               "t.product = p.code AND t.type = n.type WHERE (?1 IS NULL OR n.owner = ?1) "
	               "AND (?2 IS NULL OR p.seller = ?2) ORDER BY p.code, n.launch_ms, n.id",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, buyer);
	db_bind_text(st, 2, seller);
	if (cloud_rows(c, st, sizeof(*v), bill_from_row, (void **)&v, n, err) < 0)
		return -1;
	for (size_t i = 0; i < *n; i++) {
		if (running_hours(c, v[i].instance, now, &v[i].hours, err) < 0) {
			free(v);
			return -1;
		}
		if (__builtin_mul_overflow((int64_t)v[i].hours, v[i].price_micros,
		                           &v[i].amount_micros)) {
			free(v);
			return kerr_set(err, KERR_LIMIT, "the bill of instance '%s' overflows",
			                v[i].instance);
		}
	}
	if (usage_lines(c, buyer, seller, &v, n, err) < 0) {
		free(v);
		return -1;
	}
	*out = v;
	return 0;
}
