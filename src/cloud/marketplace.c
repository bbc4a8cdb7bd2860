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

static int atoi_month(const char *two)
{
	return (two[0] - '0') * 10 + (two[1] - '0');
}

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

/* Months are UTC calendar months, "2026-12". */
static void month_of(int64_t ms, char out[8])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	char text[32];

	gmtime_r(&t, &tm);
	snprintf(text, sizeof(text), "%04d-%02d", (tm.tm_year + 1900) % 10000, tm.tm_mon + 1);
	str_copy(out, text, 8);
}

/* The first millisecond of the month ms is in, shifted by months. */
static int64_t month_start_ms(int64_t ms, int months)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_mon += months; /* timegm carries into the year */
	return (int64_t)timegm(&tm) * 1000;
}

int cloud_month_parse(const char *s, int64_t *start_ms, struct kerr **err)
{
	struct tm tm = {0};
	char round[8];

	if (!s || strlen(s) != 7 || s[4] != '-' || strspn(s, "0123456789") != 4 ||
	    strspn(s + 5, "0123456789") != 2 || atoi_month(s + 5) < 1 || atoi_month(s + 5) > 12)
		return kerr_set(err, KERR_INVALID, "invalid month '%s': YYYY-MM", s ? s : "");
	tm.tm_year =
	    (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0') - 1900;
	tm.tm_mon = atoi_month(s + 5) - 1;
	tm.tm_mday = 1;
	*start_ms = (int64_t)timegm(&tm) * 1000;
	month_of(*start_ms, round);
	if (tm.tm_year < 70 || strcmp(round, s))
		return kerr_set(err, KERR_INVALID, "invalid month '%s': YYYY-MM from 1970", s);
	return 0;
}

static void hours_add(struct month_hours **v, size_t *n, int64_t at, uint64_t hours)
{
	char month[8];

	month_of(at, month);
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*v)[i].month, month)) {
			(*v)[i].hours += hours;
			return;
		}
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	memcpy((*v)[*n].month, month, sizeof(month));
	(*v)[(*n)++].hours = hours;
}

void cloud_run_hours(int64_t since, int64_t until, struct month_hours **v, size_t *n)
{
	while (since < until) {
		int64_t boundary = month_start_ms(since, 1);
		int64_t end = until < boundary ? until : boundary;
		uint64_t hours = (uint64_t)((end - since + HOUR_MS - 1) / HOUR_MS);

		hours_add(v, n, since, hours);
		since += (int64_t)hours * HOUR_MS;
	}
}

/* The hours billed for instance, per month: each run (from running to its next state, or
 * now) is rounded up to the hours it started; first is when the instance was made. */
static int running_hours(struct cloud *c, const char *instance, int64_t now, struct month_hours **v,
                         size_t *n, int64_t *first, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int64_t since = -1;
	int r;

	*v = NULL;
	*n = 0;
	*first = now;
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
		if (at < *first)
			*first = at;
		if (running && since < 0)
			since = at;
		else if (!running && since >= 0) {
			cloud_run_hours(since, at, v, n);
			since = -1;
		}
	}
	if (r < 0) {
		free(*v);
		*v = NULL;
		return -1;
	}
	if (since >= 0 && now > since)
		cloud_run_hours(since, now, v, n);
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

/* The metered usage: one line per product, customer, instance, dimension and month (of the
 * hours metered), its units summed, at the dimension's price per unit. */
static int usage_lines(struct cloud *c, const char *buyer, const char *seller, const char *month,
                       struct bill_line **v, size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(
	        c->db,
	        "SELECT m.instance, m.account, COALESCE(n.type, ''), m.region, p.code, "
	        "p.title, p.seller, p.pricing, COALESCE(d.price_micros, 0), m.dimension, "
	        "SUM(m.quantity), strftime('%Y-%m', m.hour_ms / 1000, 'unixepoch') AS "
	        "month FROM metering_records m JOIN products p ON p.code = m.product LEFT "
	        "JOIN product_dimensions d ON d.product = p.code AND d.dimension = "
	        "m.dimension LEFT JOIN instances n ON n.id = m.instance WHERE (?1 IS NULL OR "
	        "m.account = ?1) AND (?2 IS NULL OR p.seller = ?2) GROUP BY p.code, "
	        "m.account, m.instance, m.dimension, month HAVING ?3 IS NULL OR month = ?3 "
	        "ORDER BY p.code, m.account, m.instance, m.dimension, month",
	        &st, err) < 0)
		return -1;
	db_bind_text(st, 1, buyer);
	db_bind_text(st, 2, seller);
	db_bind_text(st, 3, month);
	while ((r = db_step_row(c->db, st, err)) == 1) {
		struct bill_line *b;
		int64_t qty = sqlite3_column_int64(st, 10);

		*v = xreallocarray(*v, *n + 1, sizeof(**v));
		b = &(*v)[(*n)++];
		bill_from_row(st, b);
		str_copy(b->dimension, db_text(st, 9), sizeof(b->dimension));
		str_copy(b->month, db_text(st, 11), sizeof(b->month));
		b->quantity = (uint64_t)qty;
		if (__builtin_mul_overflow(qty, b->price_micros, &b->amount_micros))
			return kerr_set(err, KERR_LIMIT, "the usage of product '%s' overflows",
			                b->product);
	}
	return r < 0 ? -1 : 0;
}

/* Each instance's lines: one per month with hours (or one of 0 hours in the month it was
 * made), at its price. */
static int hour_lines(struct cloud *c, const struct bill_line *inst, size_t ninst,
                      const char *month, int64_t now, struct bill_line **v, size_t *n,
                      struct kerr **err)
{
	for (size_t i = 0; i < ninst; i++) {
		_cleanup_free_ struct month_hours *h = NULL;
		struct month_hours none = {.hours = 0};
		size_t nh;
		int64_t first;

		if (running_hours(c, inst[i].instance, now, &h, &nh, &first, err) < 0)
			return -1;
		if (!nh)
			month_of(first, none.month);
		for (size_t k = 0; k < (nh ? nh : 1); k++) {
			const struct month_hours *m = nh ? &h[k] : &none;
			struct bill_line *b;

			if (month && strcmp(month, m->month))
				continue;
			*v = xreallocarray(*v, *n + 1, sizeof(**v));
			b = &(*v)[(*n)++];
			*b = inst[i];
			memcpy(b->month, m->month, sizeof(b->month));
			b->hours = m->hours;
			if (__builtin_mul_overflow((int64_t)b->hours, b->price_micros,
			                           &b->amount_micros))
				return kerr_set(err, KERR_LIMIT,
				                "the bill of instance '%s' overflows", b->instance);
		}
	}
	return 0;
}

int cloud_bill(struct cloud *c, const char *buyer, const char *seller, const char *month,
               struct bill_line **out, size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ struct bill_line *inst = NULL;
	struct bill_line *v = NULL;
	int64_t now = cloud_meter_now_ms(c), start;
	size_t ninst;

	*n = 0;
	if (month && cloud_month_parse(month, &start, err) < 0)
		return -1;
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
	if (cloud_rows(c, st, sizeof(*inst), bill_from_row, (void **)&inst, &ninst, err) < 0)
		return -1;
	if (hour_lines(c, inst, ninst, month, now, &v, n, err) < 0 ||
	    usage_lines(c, buyer, seller, month, &v, n, err) < 0) {
		free(v);
		return -1;
	}
	*out = v;
	return 0;
}

/* Reports. */

static struct report_row *report_row_of(struct report_row **v, size_t *n, const char *month,
                                        const char *product, const char *title)
{
	struct report_row *r;

	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*v)[i].month, month) && !strcmp((*v)[i].product, product))
			return &(*v)[i];
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	r = &(*v)[(*n)++];
	memset(r, 0, sizeof(*r));
	str_copy(r->month, month, sizeof(r->month));
	str_copy(r->product, product, sizeof(r->product));
	str_copy(r->title, title, sizeof(r->title));
	return r;
}

static int report_row_cmp(const void *a, const void *b)
{
	const struct report_row *x = a, *y = b;
	int d = strcmp(x->month, y->month);

	return d ? d : strcmp(x->product, y->product);
}

/* The subscribers of each row: the accounts subscribed at any time in its month. */
static int report_subscribers(struct cloud *c, struct report_row *v, size_t n, struct kerr **err)
{
	for (size_t i = 0; i < n; i++) {
		_cleanup_stmt_ sqlite3_stmt *st = NULL;
		int64_t start;

		if (cloud_month_parse(v[i].month, &start, err) < 0 ||
		    db_prepare(
		        c->db,
		        "SELECT COUNT(DISTINCT account) FROM subscriptions WHERE product = ? "
		        "AND start_ms < ? AND (end_ms IS NULL OR end_ms >= ?)",
		        &st, err) < 0)
			return -1;
		db_bind_text(st, 1, v[i].product);
		sqlite3_bind_int64(st, 2, month_start_ms(start, 1));
		sqlite3_bind_int64(st, 3, start);
		if (db_step_row(c->db, st, err) < 0)
			return -1;
		v[i].subscribers = (uint64_t)sqlite3_column_int64(st, 0);
	}
	return 0;
}

int cloud_marketplace_report(struct cloud *c, const char *seller, const char *month,
                             const struct bill_line *lines, size_t nlines, struct report_row **out,
                             size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	struct report_row *v = NULL;
	int64_t now = cloud_meter_now_ms(c);
	int r;

	*n = 0;
	for (size_t i = 0; i < nlines; i++) {
		struct report_row *row =
		    report_row_of(&v, n, lines[i].month, lines[i].product, lines[i].title);
		row->hours += lines[i].hours;
		row->usage += lines[i].quantity;
		if (__builtin_add_overflow(row->revenue_micros, lines[i].amount_micros,
		                           &row->revenue_micros)) {
			free(v);
			return kerr_set(err, KERR_LIMIT, "the revenue of product '%s' overflows",
			                lines[i].product);
		}
	}
	/* The months in which the products had subscribers, with or without use. */
	if (db_prepare(c->db,
	               "SELECT p.code, p.title, s.start_ms, COALESCE(s.end_ms, ?2) FROM "
	               "subscriptions s JOIN products p ON p.code = s.product WHERE p.seller = ?1",
	               &st, err) < 0)
		goto on_error;
	db_bind_text(st, 1, seller);
	sqlite3_bind_int64(st, 2, now);
	while ((r = db_step_row(c->db, st, err)) == 1) {
		int64_t from = sqlite3_column_int64(st, 2), to = sqlite3_column_int64(st, 3);

		for (int64_t m = month_start_ms(from, 0); m <= to; m = month_start_ms(m, 1)) {
			char name[8];

			month_of(m, name);
			if (!month || !strcmp(month, name))
				report_row_of(&v, n, name, db_text(st, 0), db_text(st, 1));
		}
	}
	if (r < 0 || report_subscribers(c, v, *n, err) < 0)
		goto on_error;
	if (*n)
		qsort(v, *n, sizeof(*v), report_row_cmp);
	*out = v;
	return 0;
on_error:
	free(v);
	*n = 0;
	return -1;
}
