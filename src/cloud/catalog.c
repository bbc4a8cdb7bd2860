/* The Marketplace Catalog: change sets on AmiProduct and Offer entities. StartChangeSet checks
 * the change set's form and locks the existing entities it names; a job then prepares it
 * (every change applied to copies of the entities in memory, each error kept on its change),
 * and, for APPLY, ingests the seller's images (scan, then a copy into the marketplace account
 * in each region of the product) and commits everything in one transaction: the entities, the
 * products and prices of marketplace.c, the images' product codes and who may see them. A
 * failure leaves nothing behind: copies made are deregistered, nothing else was written. */
#include "cloud/catalog.h"

#include "internal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "pool/pool.h"
#include "runtime/runtime.h"
#include "util/cleanup.h"
#include "util/spawn.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define LOWER_ALNUM   "abcdefghijklmnopqrstuvwxyz0123456789"
#define HEX           "0123456789abcdef"
#define SOURCE_REGION "us-east-1" /* where a seller's image must be, as AWS's ingestion wants */
#define SCAN_MAX      ((size_t)1 << 20)

/* The change types of each entity type (AmiProduct@1.0, Offer@1.0). */
static const char *const product_changes[] = {
    "CreateProduct",    "UpdateInformation",     "AddRegions",         "RestrictRegions",
    "AddInstanceTypes", "RestrictInstanceTypes", "AddDeliveryOptions", "RestrictDeliveryOptions",
    "AddDimensions",    "UpdateVisibility",      "ReleaseProduct",     NULL};
static const char *const offer_changes[] = {"CreateOffer",        "UpdateInformation",
                                            "UpdatePricingTerms", "UpdateLegalTerms",
                                            "ReleaseOffer",       NULL};

static bool in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return true;
	return false;
}

/* "AmiProduct@1.0" to its short type, or NULL when kiln has no such entity type. */
static const char *entity_type_of(const char *t)
{
	if (!t)
		return NULL;
	if (!strcmp(t, "AmiProduct@1.0"))
		return "AmiProduct";
	if (!strcmp(t, "Offer@1.0"))
		return "Offer";
	return NULL;
}

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static void uuid(char out[37])
{
	char hex[33];

	cloud_random_string(HEX, hex, 32);
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

static void iso_time(int64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The Details of a change: its DetailsDocument, or its Details string parsed. */
static json_t *change_details(const json_t *change, struct kerr **err)
{
	const json_t *doc = json_object_get(change, "DetailsDocument");
	const char *text = jstr(change, "Details");
	json_error_t je;
	json_t *d;

	if (doc)
		return json_incref((json_t *)doc);
	if (!text)
		return kerr_set(err, KERR_INVALID, "a change needs Details or DetailsDocument"),
		       NULL;
	d = json_loads(text, JSON_DECODE_ANY, &je);
	if (!d)
		kerr_set(err, KERR_INVALID, "the Details of a change are not JSON: %s", je.text);
	return d;
}

/* "$Name.Entity.Identifier": the name, or NULL when id is no reference. */
static bool reference_name(const char *id, char name[128])
{
	const char *suffix = ".Entity.Identifier";
	size_t len;

	if (!id || id[0] != '$')
		return false;
	len = strlen(id);
	if (len <= strlen(suffix) + 1 || strcmp(id + len - strlen(suffix), suffix) ||
	    len - strlen(suffix) - 1 >= 128)
		return false;
	memcpy(name, id + 1, len - strlen(suffix) - 1);
	name[len - strlen(suffix) - 1] = '\0';
	return true;
}

/* The form of a change set, before anything is looked up: known entity and change types,
 * Details that parse, references to earlier changes, no change type twice on one entity. */
static int check_form(const json_t *changes, struct kerr **err)
{
	_cleanup_json_ json_t *names = json_object(), *seen = json_object();
	size_t i;
	json_t *ch;

	if (!json_is_array(changes) || json_array_size(changes) == 0 ||
	    json_array_size(changes) > CATALOG_CHANGES_MAX)
		return kerr_set(err, KERR_INVALID, "ChangeSet must hold 1 to %d changes",
		                CATALOG_CHANGES_MAX);
	json_array_foreach(changes, i, ch)
	{
		const char *ctype = jstr(ch, "ChangeType"), *cname = jstr(ch, "ChangeName");
		const json_t *ent = json_object_get(ch, "Entity");
		const char *type = entity_type_of(jstr(ent, "Type")),
		           *ident = jstr(ent, "Identifier");
		_cleanup_json_ json_t *d = NULL;
		char ref[128], key[512];

		if (!ctype || !ent)
			return kerr_set(err, KERR_INVALID, "change %zu needs ChangeType and Entity",
			                i + 1);
		if (!type)
			return kerr_set(
			    err, KERR_INVALID,
			    "change %zu: entity type '%s' is none of AmiProduct@1.0 and "
			    "Offer@1.0",
			    i + 1, jstr(ent, "Type") ? jstr(ent, "Type") : "");
		if (!in_list(!strcmp(type, "Offer") ? offer_changes : product_changes, ctype))
			return kerr_set(err, KERR_INVALID,
			                "change %zu: '%s' is not a change type of %s@1.0", i + 1,
			                ctype, type);
		d = change_details(ch, err);
		if (!d)
			return -1;
		if (!strncmp(ctype, "Create", 6)) {
			if (ident)
				return kerr_set(err, KERR_INVALID,
				                "change %zu: %s takes no Entity.Identifier", i + 1,
				                ctype);
		} else if (!ident) {
			return kerr_set(err, KERR_INVALID, "change %zu: %s needs Entity.Identifier",
			                i + 1, ctype);
		} else if (ident[0] == '$') {
			if (!reference_name(ident, ref) || !json_object_get(names, ref))
				return kerr_set(err, KERR_INVALID,
				                "change %zu: '%s' names no earlier change", i + 1,
				                ident);
		}
		if (ident) {
			snprintf(key, sizeof(key), "%s %s", ctype, ident);
			if (json_object_get(seen, key))
				return kerr_set(err, KERR_INVALID,
				                "change %zu: %s twice on entity '%s'", i + 1, ctype,
				                ident);
			json_object_set_new(seen, key, json_true());
		}
		if (cname) {
			if (!*cname || strlen(cname) > 100 || json_object_get(names, cname))
				return kerr_set(err, KERR_INVALID,
				                "change %zu: ChangeName '%s' is empty, too long or "
				                "given twice",
				                i + 1, cname);
			json_object_set_new(names, cname, json_true());
		}
	}
	return 0;
}

/* Starting. */

static int change_set_job(struct cloud *c, const char *id, int kind, bool force, struct kerr **err);

int cloud_catalog_start(struct cloud *c, const struct catalog_start_request *req,
                        char id[CATALOG_ID_MAX], struct kerr **err)
{
	_cleanup_free_ char *request = NULL;
	_cleanup_json_ json_t *summaries = json_array(), *entities = json_array();
	_cleanup_free_ char *summaries_text = NULL, *entities_text = NULL;
	const char *intent = req->intent ? req->intent : "APPLY";
	char start[24];
	size_t i;
	json_t *ch;
	int r;

	if (strcmp(intent, "APPLY") && strcmp(intent, "VALIDATE"))
		return kerr_set(err, KERR_INVALID, "Intent '%s' is neither APPLY nor VALIDATE",
		                intent);
	if (req->name && (!*req->name || strlen(req->name) > 100))
		return kerr_set(err, KERR_INVALID, "ChangeSetName is 1 to 100 characters");
	if (req->token && (!*req->token || strlen(req->token) > 64))
		return kerr_set(err, KERR_INVALID, "ClientRequestToken is 1 to 64 characters");
	if (req->token) {
		_cleanup_stmt_ sqlite3_stmt *st = NULL;
		if (db_prepare(c->db,
		               "SELECT id FROM catalog_change_sets WHERE account = ? AND token = ?",
		               &st, err) < 0)
			return -1;
		db_bind_text(st, 1, req->account);
		db_bind_text(st, 2, req->token);
		r = db_step_row(c->db, st, err);
		if (r < 0)
			return -1;
		if (r == 1) {
			str_copy(id, db_text(st, 0), CATALOG_ID_MAX);
			return 0;
		}
	}
	if (check_form(req->changes, err) < 0)
		return -1;
	/* The summaries DescribeChangeSet shows, and the existing entities named. */
	json_array_foreach(req->changes, i, ch)
	{
		const json_t *ent = json_object_get(ch, "Entity");
		const char *ident = jstr(ent, "Identifier");
		json_t *s = json_pack("{s:s, s:{s:s}}", "ChangeType", jstr(ch, "ChangeType"),
		                      "Entity", "Type", jstr(ent, "Type"));
		json_t *d = json_object_get(ch, "DetailsDocument");

		if (ident)
			json_object_set_new(json_object_get(s, "Entity"), "Identifier",
			                    json_string(ident));
		if (jstr(ch, "ChangeName"))
			json_object_set_new(s, "ChangeName", json_string(jstr(ch, "ChangeName")));
		if (d) {
			_cleanup_free_ char *text = json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY);
			json_object_set(s, "DetailsDocument", d);
			json_object_set_new(s, "Details", json_string(text ? text : ""));
		} else {
			json_object_set_new(s, "Details", json_string(jstr(ch, "Details")));
		}
		json_object_set_new(s, "ErrorDetailList", json_array());
		json_array_append_new(summaries, s);
		if (ident && ident[0] != '$') {
			bool dup = false;
			size_t k;
			json_t *e;
			json_array_foreach(entities, k, e) dup |=
			    !strcmp(json_string_value(e), ident);
			if (!dup)
				json_array_append_new(entities, json_string(ident));
		}
	}
	request = json_dumps(req->changes, JSON_COMPACT);
	summaries_text = json_dumps(summaries, JSON_COMPACT);
	entities_text = json_dumps(entities, JSON_COMPACT);
	cloud_random_string(LOWER_ALNUM, id, 25);
	snprintf(start, sizeof(start), "%lld", (long long)cloud_now_ms());
	if (db_begin(c->db, err) < 0)
		return -1;
	json_array_foreach(entities, i, ch)
	{
		_cleanup_stmt_ sqlite3_stmt *st = NULL;
		const char *eid = json_string_value(ch);

		if (db_prepare(
		        c->db,
		        "SELECT locked_by FROM catalog_entities WHERE id = ? AND account = ?", &st,
		        err) < 0)
			goto on_error;
		db_bind_text(st, 1, eid);
		db_bind_text(st, 2, req->account);
		r = db_step_row(c->db, st, err);
		if (r < 0)
			goto on_error;
		if (r == 0) {
			kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_CATALOG_ENTITY, eid,
			           "entity '%s' not found", eid);
			goto on_error;
		}
		if (*db_text(st, 0)) {
			kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_CATALOG_ENTITY, eid,
			           "entity '%s' is in use by change set '%s'", eid, db_text(st, 0));
			goto on_error;
		}
		if (cloud_sql_run(c, err, "UPDATE catalog_entities SET locked_by = ? WHERE id = ?",
		                  2, id, eid) < 0)
			goto on_error;
	}
	if (cloud_sql_run(c, err,
	                  "INSERT INTO catalog_change_sets (id, account, name, token, intent, "
	                  "status, start_ms, request, changes, entities) VALUES (?, ?, ?, ?, ?, "
	                  "'PREPARING', CAST(? AS INTEGER), ?, ?, ?)",
	                  9, id, req->account, req->name ? req->name : "",
	                  req->token ? req->token : "", intent, start, request, summaries_text,
	                  entities_text) < 0)
		goto on_error;
	if (db_commit(c->db, err) < 0)
		return -1;
	if (cloud_job_start(c, "", id, change_set_job, "StartChangeSet", 0, false, err) < 0) {
		_cleanup_kerr_ struct kerr *why = NULL;
		if (cloud_sql_run(
		        c, &why,
		        "UPDATE catalog_change_sets SET status = 'FAILED', failure_code = "
		        "'SERVER_FAULT', failure = 'the daemon is stopping' WHERE id = ?",
		        1, id) < 0 ||
		    cloud_sql_run(c, &why,
		                  "UPDATE catalog_entities SET locked_by = '' WHERE locked_by = ?",
		                  1, id) < 0)
			cloud_log_failure(id, why, "cannot fail a change set");
		return -1;
	}
	return 0;
on_error:
	db_rollback(c->db);
	return -1;
}

/* Preparing: the changes applied in order to the entities in memory. */

struct work {
	struct cloud *c;
	char id[CATALOG_ID_MAX];
	char account[ACCOUNT_ID_LEN + 1];
	bool apply;
	/* id -> {Type, Visibility, Name, Details, Code (products), Product (offers), New} */
	json_t *entities;
	json_t *names;     /* ChangeName -> entity id */
	json_t *summaries; /* [ChangeSummary], as DescribeChangeSet shows them */
	/* The images to ingest: {Change, Product, Version, Source, Regions}, and the copies of
	 * a version into a region added later: {Change, Product, Version, Region}. */
	json_t *tasks;
	json_t *made; /* [{Product, Version, Region, Image}] */
	json_t *topology_regions;
};

static json_t *product_new_details(const char *code)
{
	return json_pack("{s:{s:s, s:s, s:s, s:s}, s:{s:[]}, s:{s:[], s:[]}, s:[], s:[]}",
	                 "Description", "ProductTitle", "", "ProductCode", code, "Visibility",
	                 "Draft", "ProductState", "Draft", "RegionAvailability", "Regions",
	                 "Compatibility", "AvailableInstanceTypes", "RestrictedInstanceTypes",
	                 "Dimensions", "Versions");
}

/* The entity a change is about, from memory or the database (the caller's only). */
static json_t *entity_load(struct work *w, const char *id, const char *type, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	json_t *e = json_object_get(w->entities, id);
	json_error_t je;
	json_t *details;
	int r;

	if (e) {
		if (strcmp(jstr(e, "Type"), type))
			return kerr_about(err, KERR_INVALID, KERR_SUBJECT_CATALOG_ENTITY, id,
			                  "entity '%s' is no %s", id, type),
			       NULL;
		return e;
	}
	if (db_prepare(w->c->db,
	               "SELECT type, visibility, name, details, product FROM catalog_entities "
	               "WHERE id = ? AND account = ?",
	               &st, err) < 0)
		return NULL;
	db_bind_text(st, 1, id);
	db_bind_text(st, 2, w->account);
	r = db_step_row(w->c->db, st, err);
	if (r < 0)
		return NULL;
	if (r == 0)
		return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_CATALOG_ENTITY, id,
		                  "entity '%s' not found", id),
		       NULL;
	if (strcmp(db_text(st, 0), type))
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_CATALOG_ENTITY, id,
		                  "entity '%s' is no %s", id, type),
		       NULL;
	details = json_loads(db_text(st, 3), 0, &je);
	if (!details)
		return kerr_set(err, KERR_CORRUPT, "entity '%s' has unreadable details", id), NULL;
	e = json_pack("{s:s, s:s, s:s, s:o, s:s, s:b}", "Type", type, "Visibility", db_text(st, 1),
	              "Name", db_text(st, 2), "Details", details, "Product", db_text(st, 4), "New",
	              0);
	json_object_set_new(w->entities, id, e);
	return e;
}

static int strings_of(const json_t *a, const char *what, struct kerr **err)
{
	size_t i;
	json_t *v;

	if (!json_is_array(a) || !json_array_size(a))
		return kerr_set(err, KERR_INVALID, "%s must be a list of at least one string",
		                what);
	json_array_foreach(
	    a, i, v) if (!json_is_string(v) ||
	                 !*json_string_value(v)) return kerr_set(err, KERR_INVALID,
	                                                         "%s must be a list of strings",
	                                                         what);
	return 0;
}

static bool array_has(const json_t *a, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v) if (json_is_string(v) &&
	                                !strcmp(json_string_value(v), s)) return true;
	return false;
}

static void array_remove(json_t *a, const char *s)
{
	for (size_t i = 0; i < json_array_size(a);)
		if (!strcmp(json_string_value(json_array_get(a, i)), s))
			json_array_remove(a, i);
		else
			i++;
}

/* Each change type: d is the change's details, e the entity (details in e.Details). */
typedef int (*change_fn)(struct work *w, size_t index, const char *id, json_t *e, json_t *d,
                         struct kerr **err);

static int update_information(struct work *w, size_t index, const char *id, json_t *e, json_t *d,
                              struct kerr **err)
{
	static const char *const keys[] = {"ProductTitle",
	                                   "ShortDescription",
	                                   "LongDescription",
	                                   "Sku",
	                                   "Manufacturer",
	                                   "LogoUrl",
	                                   "Highlights",
	                                   "SearchKeywords",
	                                   "Categories",
	                                   "VideoUrls",
	                                   "AdditionalResources",
	                                   "SupportDescription",
	                                   NULL};
	json_t *desc = json_object_get(json_object_get(e, "Details"), "Description");
	const char *title = jstr(d, "ProductTitle");
	const char *key;
	json_t *v;

	(void)w, (void)index, (void)id;
	if (!json_is_object(d))
		return kerr_set(err, KERR_INVALID, "UpdateInformation's details are an object");
	if (!strcmp(jstr(e, "Type"), "Offer")) {
		json_t *od = json_object_get(e, "Details");
		if (jstr(d, "Name"))
			json_object_set(od, "Name", json_object_get(d, "Name")),
			    json_object_set(e, "Name", json_object_get(d, "Name"));
		if (jstr(d, "Description"))
			json_object_set(od, "Description", json_object_get(d, "Description"));
		return 0;
	}
	if (json_object_get(d, "ProductTitle") && (!title || !*title || strlen(title) > 255))
		return kerr_set(err, KERR_INVALID, "ProductTitle is 1 to 255 characters");
	json_object_foreach(d, key, v)
	{
		if (!in_list(keys, key))
			return kerr_set(err, KERR_INVALID, "UpdateInformation has no field '%s'",
			                key);
		json_object_set(desc, key, v);
	}
	if (title)
		json_object_set_new(e, "Name", json_string(title));
	return 0;
}

static int create_product(struct work *w, size_t index, const char *id, json_t *e, json_t *d,
                          struct kerr **err)
{
	if (json_is_object(d) && json_object_size(d))
		return update_information(w, index, id, e, d, err);
	return 0;
}

static int add_regions(struct work *w, size_t index, const char *id, json_t *e, json_t *d,
                       struct kerr **err)
{
	json_t *regions = json_object_get(d, "Regions");
	json_t *have = json_object_get(
	    json_object_get(json_object_get(e, "Details"), "RegionAvailability"), "Regions");
	json_t *versions = json_object_get(json_object_get(e, "Details"), "Versions");
	size_t i, k;
	json_t *r, *v;

	if (strings_of(regions, "Regions", err) < 0)
		return -1;
	json_array_foreach(regions, i, r)
	{
		const char *name = json_string_value(r);
		if (!array_has(w->topology_regions, name))
			return kerr_about(err, KERR_INVALID, KERR_SUBJECT_REGION, name,
			                  "region '%s' is not served here", name);
		if (array_has(have, name))
			continue;
		json_array_append(have, r);
		/* The versions already published follow into the new region. */
		json_array_foreach(versions, k, v) json_array_append_new(
		    w->tasks, json_pack("{s:I, s:s, s:s, s:s}", "Change", (json_int_t)index,
		                        "Product", id, "Version", jstr(v, "Id"), "Region", name));
	}
	return 0;
}

/* Restricting: each name of the change's list key (what) moves from the product's list from to
 * its list to (made when absent) under parent; a name not in from is an error. */
static int restrict_names(const json_t *d, const char *key, const char *what, json_t *parent,
                          const char *from, const char *to, struct kerr **err)
{
	json_t *names = json_object_get(d, key), *have = json_object_get(parent, from);
	size_t i;
	json_t *n;

	if (strings_of(names, key, err) < 0)
		return -1;
	if (!json_object_get(parent, to))
		json_object_set_new(parent, to, json_array());
	json_array_foreach(names, i, n)
	{
		if (!array_has(have, json_string_value(n)))
			return kerr_set(err, KERR_INVALID, "%s '%s' is not one of the product's",
			                what, json_string_value(n));
		array_remove(have, json_string_value(n));
		json_array_append(json_object_get(parent, to), n);
	}
	return 0;
}

static int restrict_regions(struct work *w, size_t index, const char *id, json_t *e, json_t *d,
                            struct kerr **err)
{
	(void)w, (void)index, (void)id;
	return restrict_names(d, "Regions", "region",
	                      json_object_get(json_object_get(e, "Details"), "RegionAvailability"),
	                      "Regions", "Restrict", err);
}

static int add_instance_types(struct work *w, size_t index, const char *id, json_t *e, json_t *d,
                              struct kerr **err)
{
	json_t *types = json_object_get(d, "InstanceTypes");
	json_t *comp = json_object_get(json_object_get(e, "Details"), "Compatibility");
	json_t *avail = json_object_get(comp, "AvailableInstanceTypes");
	size_t i;
	json_t *t;

	(void)w, (void)index, (void)id;
	if (strings_of(types, "InstanceTypes", err) < 0)
		return -1;
	json_array_foreach(types, i, t)
	{
		const char *name = json_string_value(t);
		if (!instance_type_find(name))
			return kerr_about(err, KERR_INVALID, KERR_SUBJECT_INSTANCE_TYPE, name,
			                  "instance type '%s' not found", name);
		array_remove(json_object_get(comp, "RestrictedInstanceTypes"), name);
		if (!array_has(avail, name))
			json_array_append(avail, t);
	}
	if (json_array_size(avail) > PRODUCT_TYPES_MAX)
		return kerr_set(err, KERR_LIMIT, "a product allows at most %d instance types",
		                PRODUCT_TYPES_MAX);
	return 0;
}

static int restrict_instance_types(struct work *w, size_t index, const char *id, json_t *e,
                                   json_t *d, struct kerr **err)
{
	(void)w, (void)index, (void)id;
	return restrict_names(d, "InstanceTypes", "instance type",
	                      json_object_get(json_object_get(e, "Details"), "Compatibility"),
	                      "AvailableInstanceTypes", "RestrictedInstanceTypes", err);
}

/* The delivery option of a change: {Details|DetailsDocument: {AmiDeliveryOptionDetails}}. */
static json_t *ami_option(const json_t *opt)
{
	json_t *d = json_object_get(opt, "DetailsDocument");

	if (!d)
		d = json_object_get(opt, "Details");
	return json_object_get(d, "AmiDeliveryOptionDetails");
}

/* The seller's image as ingestion wants it: in us-east-1, the seller's, available, no other
 * product's code on it. */
static int source_check(struct work *w, const char *ami, struct image *im, struct kerr **err)
{
	if (cloud_image_get(w->c, w->account, SOURCE_REGION, ami, im, err) < 0)
		return -1;
	if (strcmp(im->owner, w->account))
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_IMAGE, ami,
		                  "image '%s' is not the seller's", ami);
	if (image_state_parse(im->state) != IMAGE_AVAILABLE)
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_IMAGE, ami,
		                  "image '%s' is %s, not available", ami, im->state);
	if (im->nproduct_codes)
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_PRODUCT_IMAGE, ami,
		                  "image '%s' carries product code '%s': it is another product's",
		                  ami, im->product_codes[0]);
	return 0;
}

static int add_delivery_options(struct work *w, size_t index, const char *id, json_t *e, json_t *d,
                                struct kerr **err)
{
	json_t *details = json_object_get(e, "Details");
	json_t *version = json_object_get(d, "Version");
	json_t *options = json_object_get(d, "DeliveryOptions");
	json_t *regions =
	    json_object_get(json_object_get(details, "RegionAvailability"), "Regions");
	const char *title = jstr(version, "VersionTitle");
	json_t *opt = ami_option(json_array_get(options, 0)),
	       *src = json_object_get(opt, "AmiSource");
	const char *ami = jstr(src, "AmiId");
	char vid[37], oid[37], sid[37], alias[256];
	struct image im;
	size_t i;
	json_t *v;

	if (!title || !*title || strlen(title) > 200)
		return kerr_set(err, KERR_INVALID, "Version.VersionTitle is 1 to 200 characters");
	json_array_foreach(json_object_get(details, "Versions"), i,
	                   v) if (!strcmp(jstr(v, "VersionTitle"),
	                                  title)) return kerr_set(err, KERR_INVALID,
	                                                          "version title '%s' is the "
	                                                          "product's already",
	                                                          title);
	if (!json_is_array(options) || json_array_size(options) != 1 || !opt || !ami)
		return kerr_set(err, KERR_INVALID,
		                "DeliveryOptions is one option with "
		                "AmiDeliveryOptionDetails.AmiSource.AmiId");
	if (!jstr(src, "UserName") || !jstr(src, "OperatingSystemName") ||
	    !jstr(src, "OperatingSystemVersion"))
		return kerr_set(err, KERR_INVALID,
		                "AmiSource needs UserName, OperatingSystemName and "
		                "OperatingSystemVersion");
	if (jstr(opt, "RecommendedInstanceType") &&
	    !instance_type_find(jstr(opt, "RecommendedInstanceType")))
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_INSTANCE_TYPE,
		                  jstr(opt, "RecommendedInstanceType"),
		                  "instance type '%s' not found",
		                  jstr(opt, "RecommendedInstanceType"));
	if (!json_array_size(regions))
		return kerr_set(
		    err, KERR_INVALID,
		    "the product has no region yet: AddRegions before AddDeliveryOptions");
	if (source_check(w, ami, &im, err) < 0)
		return -1;
	uuid(vid);
	uuid(oid);
	uuid(sid);
	snprintf(alias, sizeof(alias), "/aws/service/marketplace/%s/%s", id, title);
	{
		char created[32];
		json_t *rec = json_object_get(opt, "RecommendedInstanceType");
		json_t *groups = json_object_get(opt, "SecurityGroups");
		json_t *o =
		    json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:O?}, s:{s:O?, s:O?}, s:s}", "Id", oid,
		              "Type", "AmazonMachineImage", "SourceId", sid, "Title", title,
		              "Visibility", "Public", "Instructions", "Usage",
		              json_object_get(opt, "UsageInstructions"), "Recommendations",
		              "InstanceType", rec, "SecurityGroups", groups, "AmiAlias", alias);
		json_t *s = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:O?}}", "Id",
		                      sid, "Type", "AmazonMachineImage", "Image", ami,
		                      "Architecture", im.architecture, "VirtualizationType", "hvm",
		                      "OperatingSystem", "Name", jstr(src, "OperatingSystemName"),
		                      "Version", jstr(src, "OperatingSystemVersion"), "Username",
		                      jstr(src, "UserName"), "ScanningPort",
		                      json_object_get(src, "ScanningPort"));
		iso_time(cloud_now_ms(), created);
		json_array_append_new(json_object_get(details, "Versions"),
		                      json_pack("{s:s, s:s, s:s?, s:s, s:[o], s:[o]}", "Id", vid,
		                                "VersionTitle", title, "ReleaseNotes",
		                                jstr(version, "ReleaseNotes"), "CreationDate",
		                                created, "DeliveryOptions", o, "Sources", s));
	}
	json_array_append_new(w->tasks, json_pack("{s:I, s:s, s:s, s:s, s:O}", "Change",
	                                          (json_int_t)index, "Product", id, "Version", vid,
	                                          "Source", ami, "Regions", regions));
	return 0;
}

static int restrict_delivery_options(struct work *w, size_t index, const char *id, json_t *e,
                                     json_t *d, struct kerr **err)
{
	json_t *ids = json_object_get(d, "DeliveryOptionIds");
	json_t *versions = json_object_get(json_object_get(e, "Details"), "Versions");
	size_t i, k, left = 0;
	json_t *want, *v;

	(void)w, (void)index, (void)id;
	if (strings_of(ids, "DeliveryOptionIds", err) < 0)
		return -1;
	json_array_foreach(ids, i, want)
	{
		bool found = false;
		json_array_foreach(versions, k, v)
		{
			json_t *o = json_array_get(json_object_get(v, "DeliveryOptions"), 0);
			if (!strcmp(jstr(o, "Id"), json_string_value(want))) {
				json_object_set_new(o, "Visibility", json_string("Restricted"));
				found = true;
			}
		}
		if (!found)
			return kerr_set(err, KERR_INVALID,
			                "delivery option '%s' is not the product's",
			                json_string_value(want));
	}
	json_array_foreach(versions, k, v) left += !strcmp(
	    jstr(json_array_get(json_object_get(v, "DeliveryOptions"), 0), "Visibility"), "Public");
	if (!left)
		return kerr_set(err, KERR_INVALID, "the last public version cannot be restricted");
	return 0;
}

/* The units AddDimensions takes (AWS's list), and Hrs, the unit of AMI products' hourly
 * (Metered) dimensions. */
static const char *const dimension_units[] = {
    "GB", "Gbps",    "HostHrs", "Hosts", "MB",      "Mbps",  "Requests", "TaskHrs",
    "TB", "TierHrs", "UnitHrs", "Units", "UserHrs", "Users", "Hrs",      NULL};

static bool dimension_key_ok(const char *key)
{
	size_t len = key ? strlen(key) : 0;

	return len && len <= 100 &&
	       strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") ==
	           len;
}

/* An AMI product's dimensions: Metered ones are its instance types (priced per hour), each
 * ExternallyMetered one a usage dimension MeterUsage reports (priced per unit). */
static int dimension_check(const json_t *dim, const json_t *have, struct kerr **err)
{
	const char *key = jstr(dim, "Key"), *unit = jstr(dim, "Unit"), *name = jstr(dim, "Name"),
	           *desc = jstr(dim, "Description");
	const json_t *types = json_object_get(dim, "Types");
	const char *type = json_string_value(json_array_get(types, 0));
	size_t k;
	json_t *h;

	if (!key || !unit || !name || !*unit || !*name || !json_is_array(types))
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_USAGE_DIMENSION, key ? key : "",
		                  "provide non-empty fields (Key, Unit, Name, Types) for each "
		                  "dimension");
	if (!dimension_key_ok(key))
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_USAGE_DIMENSION, key,
		                  "dimension key '%s' is not 1 to 100 of A-Z a-z 0-9 _ . -", key);
	if (strlen(name) > 500 || (desc && strlen(desc) > 1000))
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_USAGE_DIMENSION, key,
		                  "dimension '%s': Name is at most 500 characters, Description "
		                  "1000",
		                  key);
	if (!in_list(dimension_units, unit))
		return kerr_about(
		    err, KERR_INVALID, KERR_SUBJECT_USAGE_DIMENSION, key,
		    "dimension '%s': invalid Unit '%s' (GB, Gbps, HostHrs, Hosts, "
		    "MB, Mbps, Requests, TaskHrs, TB, TierHrs, UnitHrs, Units, UserHrs, "
		    "Users; Hrs for Metered)",
		    key, unit);
	if (json_array_size(types) != 1 || !type ||
	    (strcmp(type, "Metered") && strcmp(type, "ExternallyMetered")))
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_USAGE_DIMENSION, key,
		                  "dimension '%s': Types of an AMI product's dimension are "
		                  "[\"Metered\"] (an instance type's hours) or "
		                  "[\"ExternallyMetered\"] (usage reported with MeterUsage)",
		                  key);
	if (!strcmp(type, "Metered") && !instance_type_find(key))
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_USAGE_DIMENSION, key,
		                  "invalid dimension key '%s' for a Metered dimension: it is an "
		                  "instance type",
		                  key);
	if (!strcmp(type, "ExternallyMetered") && instance_type_find(key))
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_USAGE_DIMENSION, key,
		                  "dimension key '%s' is an instance type: a usage dimension needs "
		                  "another key",
		                  key);
	json_array_foreach(have, k, h)
	{
		if (!strcmp(jstr(h, "Key"), key))
			return kerr_about(err, KERR_INVALID, KERR_SUBJECT_USAGE_DIMENSION, key,
			                  "dimension '%s' is the product's already", key);
		if (jstr(h, "Name") && !strcmp(jstr(h, "Name"), name))
			return kerr_about(err, KERR_INVALID, KERR_SUBJECT_USAGE_DIMENSION, key,
			                  "dimension Name '%s' is another dimension's already",
			                  name);
	}
	return 0;
}

static size_t usage_dimensions_count(const json_t *dims)
{
	size_t i, n = 0;
	json_t *d;

	json_array_foreach(dims, i, d) n +=
	    array_has(json_object_get(d, "Types"), "ExternallyMetered");
	return n;
}

static int add_dimensions(struct work *w, size_t index, const char *id, json_t *e, json_t *d,
                          struct kerr **err)
{
	json_t *dims = json_object_get(json_object_get(e, "Details"), "Dimensions");
	size_t i;
	json_t *dim;

	(void)w, (void)index, (void)id;
	if (!json_is_array(d) || !json_array_size(d))
		return kerr_about(err, KERR_INVALID, KERR_SUBJECT_USAGE_DIMENSION, "",
		                  "AddDimensions' details are a list of at least 1 dimension");
	json_array_foreach(d, i, dim)
	{
		if (dimension_check(dim, dims, err) < 0)
			return -1;
		json_array_append_new(dims, json_pack("{s:s, s:s, s:s, s:O, s:s?}", "Key",
		                                      jstr(dim, "Key"), "Name", jstr(dim, "Name"),
		                                      "Unit", jstr(dim, "Unit"), "Types",
		                                      json_object_get(dim, "Types"), "Description",
		                                      jstr(dim, "Description")));
	}
	if (usage_dimensions_count(dims) > PRODUCT_DIMENSIONS_MAX)
		return kerr_about(err, KERR_LIMIT, KERR_SUBJECT_USAGE_DIMENSION, "",
		                  "a product has at most %d usage (ExternallyMetered) dimensions",
		                  PRODUCT_DIMENSIONS_MAX);
	return 0;
}

static int update_visibility(struct work *w, size_t index, const char *id, json_t *e, json_t *d,
                             struct kerr **err)
{
	const char *to = jstr(d, "TargetVisibility");
	json_t *desc = json_object_get(json_object_get(e, "Details"), "Description");

	(void)w, (void)index, (void)id;
	if (!to || (strcmp(to, "Limited") && strcmp(to, "Public") && strcmp(to, "Restricted")))
		return kerr_set(err, KERR_INVALID,
		                "TargetVisibility is one of Limited, Public and Restricted");
	if (!strcmp(jstr(e, "Visibility"), "Draft"))
		return kerr_set(err, KERR_INVALID,
		                "a Draft product is released first (ReleaseProduct)");
	if (!strcmp(to, "Public") &&
	    !json_array_size(json_object_get(json_object_get(e, "Details"), "Versions")))
		return kerr_set(err, KERR_INVALID, "a product without a version cannot be Public");
	json_object_set_new(e, "Visibility", json_string(to));
	json_object_set_new(desc, "Visibility", json_string(to));
	return 0;
}

static int release_product(struct work *w, size_t index, const char *id, json_t *e, json_t *d,
                           struct kerr **err)
{
	json_t *desc = json_object_get(json_object_get(e, "Details"), "Description");

	(void)w, (void)index, (void)id, (void)d;
	if (strcmp(jstr(e, "Visibility"), "Draft"))
		return kerr_set(err, KERR_INVALID, "product '%s' is released already", id);
	if (!*jstr(desc, "ProductTitle"))
		return kerr_set(err, KERR_INVALID, "a product needs a ProductTitle to be released");
	json_object_set_new(e, "Visibility", json_string("Limited"));
	json_object_set_new(desc, "Visibility", json_string("Limited"));
	json_object_set_new(desc, "ProductState", json_string("Active"));
	return 0;
}

static int create_offer(struct work *w, size_t index, const char *id, json_t *e, json_t *d,
                        struct kerr **err)
{
	const char *product = jstr(d, "ProductId");
	char ref[128];
	json_t *p;

	(void)index, (void)id;
	if (!product)
		return kerr_set(err, KERR_INVALID, "CreateOffer needs ProductId");
	if (reference_name(product, ref)) {
		product = jstr(w->names, ref);
		if (!product)
			return kerr_set(err, KERR_INVALID, "'%s' names no earlier change",
			                jstr(d, "ProductId"));
	}
	p = entity_load(w, product, "AmiProduct", err);
	if (!p)
		return -1;
	json_object_set_new(e, "Product", json_string(product));
	json_object_set_new(json_object_get(e, "Details"), "ProductId", json_string(product));
	return 0;
}

/* An offer's prices as marketplace.c keeps them. */
struct offer_prices {
	char pricing[8]; /* free, byol or hourly */
	struct product_type types[PRODUCT_TYPES_MAX];
	size_t ntypes;
	struct usage_dimension dims[PRODUCT_DIMENSIONS_MAX];
	size_t ndims;
};

/* A rate's key and price into the next of max slots (count of them used). */
static int rate_put(const char *key, const char *price, char *slot_key, size_t key_size,
                    int64_t *slot_price, size_t *count, size_t max, const char *what,
                    struct kerr **err)
{
	if (*count == max)
		return kerr_set(err, KERR_LIMIT, "an offer prices at most %zu %s", max, what);
	if (cloud_money_parse(price, slot_price, err) < 0)
		return -1;
	str_copy(slot_key, key, key_size);
	++*count;
	return 0;
}

/* One rate of a rate card: the hourly price of an instance type or the price per unit of one
 * of the product's usage (ExternallyMetered) dimensions; any other key is an error. */
static int offer_rate(const json_t *rate, const char *pid, const json_t *dims,
                      struct offer_prices *o, struct kerr **err)
{
	const char *key = jstr(rate, "DimensionKey"), *price = jstr(rate, "Price");
	size_t i;
	json_t *d;

	if (!key || !price)
		return kerr_set(err, KERR_INVALID,
		                "a rate needs DimensionKey and Price (a string)");
	if (instance_type_find(key)) {
		struct product_type *t = &o->types[o->ntypes < PRODUCT_TYPES_MAX ? o->ntypes : 0];
		return rate_put(key, price, t->type, sizeof(t->type), &t->price_micros, &o->ntypes,
		                PRODUCT_TYPES_MAX, "instance types", err);
	}
	json_array_foreach(dims, i, d)
	{
		struct usage_dimension *u =
		    &o->dims[o->ndims < PRODUCT_DIMENSIONS_MAX ? o->ndims : 0];
		if (!strcmp(jstr(d, "Key"), key) &&
		    array_has(json_object_get(d, "Types"), "ExternallyMetered"))
			return rate_put(key, price, u->key, sizeof(u->key), &u->price_micros,
			                &o->ndims, PRODUCT_DIMENSIONS_MAX, "usage dimensions", err);
	}
	return kerr_about(err, KERR_INVALID, KERR_SUBJECT_USAGE_DIMENSION, key,
	                  "DimensionKey '%s' is neither an instance type nor a usage dimension of "
	                  "product '%s' (AddDimensions with Types [\"ExternallyMetered\"] adds "
	                  "one)",
	                  key, pid);
}

/* An offer's pricing from its terms: free, byol or hourly with the prices of its rate card.
 * dims are the Dimensions of product pid, the offer's. */
static int offer_pricing(const json_t *offer, const char *pid, const json_t *dims,
                         struct offer_prices *o, struct kerr **err)
{
	const json_t *terms = json_object_get(offer, "Terms");
	size_t i;
	json_t *t;

	memset(o, 0, sizeof(*o));
	str_copy(o->pricing, "free", sizeof(o->pricing));
	json_array_foreach(terms, i, t)
	{
		const char *type = jstr(t, "Type");
		if (type && !strcmp(type, "ByolPricingTerm")) {
			str_copy(o->pricing, "byol", sizeof(o->pricing));
		} else if (type && !strcmp(type, "UsageBasedPricingTerm")) {
			const json_t *card = json_object_get(
			    json_array_get(json_object_get(t, "RateCards"), 0), "RateCard");
			size_t k;
			json_t *rate;

			if (jstr(t, "CurrencyCode") && strcmp(jstr(t, "CurrencyCode"), "USD"))
				return kerr_set(err, KERR_INVALID, "CurrencyCode is USD");
			if (!json_array_size(card))
				return kerr_set(
				    err, KERR_INVALID,
				    "UsageBasedPricingTerm needs RateCards[0].RateCard");
			str_copy(o->pricing, "hourly", sizeof(o->pricing));
			json_array_foreach(card, k, rate) if (offer_rate(rate, pid, dims, o, err) <
			                                      0) return -1;
		} else if (!type || (strcmp(type, "LegalTerm") && strcmp(type, "SupportTerm") &&
		                     strcmp(type, "FreeTrialPricingTerm"))) {
			return kerr_set(err, KERR_INVALID,
			                "pricing term '%s' is none of UsageBasedPricingTerm, "
			                "ByolPricingTerm, LegalTerm and SupportTerm",
			                type ? type : "");
		}
	}
	return 0;
}

static int update_terms(json_t *e, json_t *d, const char *keep, struct kerr **err)
{
	json_t *od = json_object_get(e, "Details");
	json_t *terms = json_object_get(d, "Terms"), *have = json_object_get(od, "Terms");
	json_t *next = json_array();
	size_t i;
	json_t *t;

	if (!json_is_array(terms)) {
		json_decref(next);
		return kerr_set(err, KERR_INVALID, "the change needs Terms, a list");
	}
	/* The terms of the other kind stay. */
	json_array_foreach(have, i, t)
	{
		bool legal = jstr(t, "Type") && !strcmp(jstr(t, "Type"), "LegalTerm");
		if (legal == !strcmp(keep, "legal"))
			json_array_append(next, t);
	}
	json_array_foreach(terms, i, t) json_array_append(next, t);
	json_object_set_new(od, "Terms", next);
	return 0;
}

static int update_pricing_terms(struct work *w, size_t index, const char *id, json_t *e, json_t *d,
                                struct kerr **err)
{
	const char *model = jstr(d, "PricingModel");
	struct offer_prices o;
	json_t *product, *t;
	size_t i;

	(void)index, (void)id;
	json_array_foreach(
	    json_object_get(d, "Terms"), i,
	    t) if (jstr(t, "Type") &&
	           !strcmp(
	               jstr(t, "Type"),
	               "LegalTerm")) return kerr_set(err, KERR_INVALID,
	                                             "legal terms are changed by UpdateLegalTerms");
	product = entity_load(w, jstr(e, "Product"), "AmiProduct", err);
	if (!product)
		return -1;
	if (update_terms(e, d, "legal", err) < 0 ||
	    offer_pricing(json_object_get(e, "Details"), jstr(e, "Product"),
	                  json_object_get(json_object_get(product, "Details"), "Dimensions"), &o,
	                  err) < 0)
		return -1;
	if (model && !((!strcmp(model, "Usage") && !strcmp(o.pricing, "hourly")) ||
	               (!strcmp(model, "Free") && !strcmp(o.pricing, "free")) ||
	               (!strcmp(model, "Byol") && !strcmp(o.pricing, "byol"))))
		return kerr_set(err, KERR_INVALID,
		                "PricingModel '%s' does not match the terms (Usage: a "
		                "UsageBasedPricingTerm, Byol: a ByolPricingTerm, Free: neither)",
		                model);
	return 0;
}

static int update_legal_terms(struct work *w, size_t index, const char *id, json_t *e, json_t *d,
                              struct kerr **err)
{
	size_t i;
	json_t *t;

	(void)w, (void)index, (void)id;
	json_array_foreach(json_object_get(d, "Terms"), i,
	                   t) if (!jstr(t, "Type") || strcmp(jstr(t, "Type"), "LegalTerm") ||
	                          !json_is_array(json_object_get(
	                              t, "Documents"))) return kerr_set(err, KERR_INVALID,
	                                                                "UpdateLegalTerms "
	                                                                "takes LegalTerms "
	                                                                "with Documents");
	return update_terms(e, d, "pricing", err);
}

static int release_offer(struct work *w, size_t index, const char *id, json_t *e, json_t *d,
                         struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	const char *product = jstr(e, "Product");
	const char *key;
	json_t *other;
	int r;

	(void)index, (void)d;
	if (!strcmp(jstr(e, "Visibility"), "Released"))
		return kerr_set(err, KERR_INVALID, "offer '%s' is released already", id);
	if (!json_object_get(json_object_get(e, "Details"), "Terms"))
		return kerr_set(err, KERR_INVALID,
		                "an offer needs its pricing terms to be released");
	/* One public offer per product. */
	json_object_foreach(w->entities, key,
	                    other) if (strcmp(key, id) && !strcmp(jstr(other, "Type"), "Offer") &&
	                               !strcmp(jstr(other, "Product"), product) &&
	                               !strcmp(jstr(other, "Visibility"),
	                                       "Released")) return kerr_set(err, KERR_INVALID,
	                                                                    "product '%s' has a "
	                                                                    "released offer "
	                                                                    "already",
	                                                                    product);
	if (db_prepare(w->c->db,
	               "SELECT id FROM catalog_entities WHERE type = 'Offer' AND product = ? AND "
	               "visibility = 'Released' AND id != ?",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, product);
	db_bind_text(st, 2, id);
	r = db_step_row(w->c->db, st, err);
	if (r < 0)
		return -1;
	if (r == 1 && !json_object_get(w->entities, db_text(st, 0)))
		return kerr_set(err, KERR_INVALID, "product '%s' has a released offer already",
		                product);
	json_object_set_new(e, "Visibility", json_string("Released"));
	json_object_set_new(json_object_get(e, "Details"), "State", json_string("Released"));
	return 0;
}

static const struct {
	const char *type, *change;
	change_fn fn;
} change_table[] = {
    {"AmiProduct", "CreateProduct", create_product},
    {"AmiProduct", "UpdateInformation", update_information},
    {"AmiProduct", "AddRegions", add_regions},
    {"AmiProduct", "RestrictRegions", restrict_regions},
    {"AmiProduct", "AddInstanceTypes", add_instance_types},
    {"AmiProduct", "RestrictInstanceTypes", restrict_instance_types},
    {"AmiProduct", "AddDeliveryOptions", add_delivery_options},
    {"AmiProduct", "RestrictDeliveryOptions", restrict_delivery_options},
    {"AmiProduct", "AddDimensions", add_dimensions},
    {"AmiProduct", "UpdateVisibility", update_visibility},
    {"AmiProduct", "ReleaseProduct", release_product},
    {"Offer", "CreateOffer", create_offer},
    {"Offer", "UpdateInformation", update_information},
    {"Offer", "UpdatePricingTerms", update_pricing_terms},
    {"Offer", "UpdateLegalTerms", update_legal_terms},
    {"Offer", "ReleaseOffer", release_offer},
};

static void change_error(struct work *w, size_t index, const char *code, const char *message)
{
	json_t *s = json_array_get(w->summaries, index);

	json_array_append_new(json_object_get(s, "ErrorDetailList"),
	                      json_pack("{s:s, s:s}", "ErrorCode", code, "ErrorMessage", message));
}

static const char *error_code_of(const struct kerr *k)
{
	/* AWS's code for the errors of a dimension (AddDimensions, or a rate card's key). */
	if (k->subject == KERR_SUBJECT_USAGE_DIMENSION && k->kind != KERR_INTERNAL)
		return "INVALID_DIMENSION";
	switch (k->kind) {
	case KERR_NOT_FOUND:
		return "RESOURCE_NOT_FOUND";
	case KERR_INVALID:
	case KERR_LIMIT:
		return "INVALID_INPUT";
	case KERR_CONFLICT:
		return "RESOURCE_IN_USE";
	default:
		return "INTERNAL_FAILURE";
	}
}

/* One change: its entity (made for Create*, found otherwise), then its table entry. */
static int prepare_change(struct work *w, size_t index, const json_t *ch, struct kerr **err)
{
	const char *ctype = jstr(ch, "ChangeType");
	const json_t *ent = json_object_get(ch, "Entity");
	const char *type = entity_type_of(jstr(ent, "Type"));
	const char *ident = jstr(ent, "Identifier");
	_cleanup_json_ json_t *d = change_details(ch, err);
	char id[CATALOG_ID_MAX], ref[128];
	json_t *e;

	if (!d)
		return -1;
	if (!strncmp(ctype, "Create", 6)) {
		bool product = !strcmp(type, "AmiProduct");
		char code[PRODUCT_CODE_LEN + 1];

		memcpy(id, product ? "prod-" : "offer-", product ? 5 : 6);
		cloud_random_string(LOWER_ALNUM, id + (product ? 5 : 6), 13);
		cloud_random_string(LOWER_ALNUM, code, PRODUCT_CODE_LEN);
		e = json_pack("{s:s, s:s, s:s, s:o, s:s, s:b}", "Type", type, "Visibility", "Draft",
		              "Name", "", "Details",
		              product ? product_new_details(code)
		                      : json_pack("{s:s, s:s}", "State", "Draft", "Name", ""),
		              "Product", product ? code : "", "New", 1);
		json_object_set_new(w->entities, id, e);
	} else {
		if (ident[0] == '$') {
			if (!reference_name(ident, ref) || !jstr(w->names, ref))
				return kerr_set(err, KERR_INVALID, "'%s' names no earlier change",
				                ident);
			ident = jstr(w->names, ref);
		}
		str_copy(id, ident, sizeof(id));
		e = entity_load(w, id, type, err);
		if (!e)
			return -1;
	}
	json_object_set_new(json_object_get(json_array_get(w->summaries, index), "Entity"),
	                    "Identifier", json_string(id));
	if (jstr(ch, "ChangeName"))
		json_object_set_new(w->names, jstr(ch, "ChangeName"), json_string(id));
	for (size_t i = 0; i < sizeof(change_table) / sizeof(change_table[0]); i++)
		if (!strcmp(change_table[i].type, type) && !strcmp(change_table[i].change, ctype))
			return change_table[i].fn(w, index, id, e, d, err);
	return kerr_set(err, KERR_INVALID, "'%s' is not a change type of %s", ctype, type);
}

/* Ingestion: the scan of the seller's root filesystem, read by debugfs from the snapshot's
 * base file (read-only, in user space: the seller's file system is never mounted). */

static int debugfs(const char *file, const char *command, struct buf *out, struct kerr **err)
{
	char *const argv[] = {"debugfs", "-c", "-R", (char *)command, (char *)file, NULL};

	buf_reset(out);
	return spawn_output(argv, out, SCAN_MAX, err);
}

/* The names in directory path (none when it is absent), from "ls -p": /ino/mode/uid/gid/name/size/
 */
static int dir_names(const char *file, const char *path, json_t *names, struct kerr **err)
{
	struct buf out = BUF_INIT;
	char cmd[600];
	int r;

	snprintf(cmd, sizeof(cmd), "ls -p \"%s\"", path);
	r = debugfs(file, cmd, &out, err);
	for (char *line = out.data; r == 0 && line && *line;) {
		char *next = strchr(line, '\n'), *f = line;
		if (next)
			*next++ = '\0';
		for (int k = 0; k < 4 && f; k++) /* to the slash before the name */
			f = strchr(f + 1, '/');
		if (f) {
			char *end = strchr(f + 1, '/');
			if (end) {
				*end = '\0';
				if (strcmp(f + 1, ".") && strcmp(f + 1, ".."))
					json_array_append_new(names, json_string(f + 1));
			}
		}
		line = next;
	}
	buf_release(&out);
	return r;
}

static bool private_key_name(const char *n)
{
	static const char *const keys[] = {"id_rsa",      "id_dsa",        "id_ecdsa", "id_ed25519",
	                                   "id_ecdsa_sk", "id_ed25519_sk", NULL};

	return in_list(keys, n);
}

/* What a login directory may not hold: authorized_keys, private keys. */
static int scan_ssh_dir(const char *file, const char *home, struct buf *why, struct kerr **err)
{
	_cleanup_json_ json_t *names = json_array();
	char path[512];
	size_t i;
	json_t *n;

	snprintf(path, sizeof(path), "%s/.ssh", home);
	if (dir_names(file, path, names, err) < 0)
		return -1;
	json_array_foreach(names, i, n)
	{
		const char *name = json_string_value(n);
		if (!strncmp(name, "authorized_keys", 15))
			buf_addf(why, "%s%s/%s is left in the image", why->len ? "; " : "", path,
			         name);
		else if (private_key_name(name))
			buf_addf(why, "%sprivate key %s/%s is in the image", why->len ? "; " : "",
			         path, name);
	}
	return 0;
}

/* 0 with why empty when the image passes; reasons in why otherwise. SSH host keys are not
 * looked for: kiln-init deletes the ones an image inherits at its first boot. */
int catalog_scan_root(const char *file, struct buf *why, struct kerr **err)
{
	_cleanup_json_ json_t *homes = json_array();
	struct buf out = BUF_INIT;
	size_t i;
	json_t *h;
	int r = -1;

	if (scan_ssh_dir(file, "/root", why, err) < 0 || dir_names(file, "/home", homes, err) < 0)
		goto out;
	json_array_foreach(homes, i, h)
	{
		char home[300];
		snprintf(home, sizeof(home), "/home/%s", json_string_value(h));
		if (scan_ssh_dir(file, home, why, err) < 0)
			goto out;
	}
	/* Password hashes: every login's password field locked (! or *). */
	if (debugfs(file, "cat /etc/shadow", &out, err) < 0)
		goto out;
	for (char *line = out.data; line && *line;) {
		char *next = strchr(line, '\n'), *colon;
		if (next)
			*next++ = '\0';
		colon = strchr(line, ':');
		if (colon && colon[1] != '!' && colon[1] != '*' && *line)
			buf_addf(why, "%s/etc/shadow has a password for user '%.*s'",
			         why->len ? "; " : "", (int)(colon - line), line);
		line = next;
	}
	/* sshd: the first PasswordAuthentication is the one sshd takes. */
	if (debugfs(file, "cat /etc/ssh/sshd_config", &out, err) < 0)
		goto out;
	for (char *line = out.data; line && *line;) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		line += strspn(line, " \t");
		if (!strncasecmp(line, "PasswordAuthentication", 22) &&
		    (line[22] == ' ' || line[22] == '\t')) {
			char *v = line + 22 + strspn(line + 22, " \t");
			if (!strncasecmp(v, "yes", 3))
				buf_addf(
				    why,
				    "%ssshd allows password logins (PasswordAuthentication yes)",
				    why->len ? "; " : "");
			break;
		}
		line = next;
	}
	r = 0;
out:
	buf_release(&out);
	return r;
}

/* The root snapshot's base file in the region's first zone (restored once if needed). */
static int scan_image(struct cloud *c, const struct image *im, struct buf *why, struct kerr **err)
{
	_cleanup_free_ char *dir = NULL, *base = NULL;
	struct pool *p = NULL;
	struct zone z;
	int r;

	if (cloud_find_zone(c, im->region, NULL, &z, err) < 0)
		return -1;
	dir = cloud_zone_pool_dir(c, im->region, z.name);
	pthread_mutex_lock(&c->volumes_lock);
	r = pool_open(dir, NULL, &p, err);
	if (r == 0)
		r = cloud_zone_base(c, p, im->region, im->root_snapshot, &base, err);
	pthread_mutex_unlock(&c->volumes_lock);
	if (r == 0)
		r = catalog_scan_root(base, why, err);
	pool_close(p);
	return r;
}

/* The marketplace's copy of image src_id of src_region into region, waited for. */
static int copy_into(struct cloud *c, const char *src_owner, const char *src_region,
                     const char *src_id, const char *region, const char *name,
                     const char *description, char image[ID_MAX], struct kerr **err)
{
	const char *const mp[] = {MARKETPLACE_ACCOUNT_ID};
	struct copy_image_request cr = {.region = region,
	                                .src_region = src_region,
	                                .src_image = src_id,
	                                .name = name,
	                                .description = description};
	struct image out;

	if (strcmp(src_owner, MARKETPLACE_ACCOUNT_ID) &&
	    cloud_image_permit(c, src_owner, src_region, src_id, mp, 1, NULL, 0, false, err) < 0)
		return -1;
	if (cloud_image_copy(c, MARKETPLACE_ACCOUNT_ID, &cr, &out, err) < 0)
		return -1;
	str_copy(image, out.id, ID_MAX);
	for (;;) {
		const struct timespec tick = {0, 50 * 1000 * 1000};
		if (cloud_image_get(c, MARKETPLACE_ACCOUNT_ID, region, out.id, &out, err) < 0)
			return -1;
		if (image_state_parse(out.state) != IMAGE_PENDING)
			break;
		if (cloud_jobs_stopping(c))
			return kerr_set(err, KERR_INTERNAL, "the daemon is stopping");
		nanosleep(&tick, NULL);
	}
	if (image_state_parse(out.state) != IMAGE_AVAILABLE)
		return kerr_set(err, KERR_INTERNAL, "the copy of image '%s' into %s failed: %s",
		                src_id, region, out.state_reason);
	return 0;
}

static void made_add(struct work *w, const char *product, const char *version, const char *region,
                     const char *image)
{
	json_array_append_new(w->made,
	                      json_pack("{s:s, s:s, s:s, s:s}", "Product", product, "Version",
	                                version, "Region", region, "Image", image));
}

/* An image of version in any region (made now or before), as a source for a new region. */
static int version_image(struct work *w, const char *product, const char *version, char region[32],
                         char image[ID_MAX], struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	size_t i;
	json_t *m;
	int r;

	json_array_foreach(w->made, i, m) if (!strcmp(jstr(m, "Product"), product) &&
	                                      !strcmp(jstr(m, "Version"), version))
	{
		str_copy(region, jstr(m, "Region"), 32);
		str_copy(image, jstr(m, "Image"), ID_MAX);
		return 1;
	}
	if (db_prepare(w->c->db,
	               "SELECT region, image FROM catalog_version_images WHERE product = ? AND "
	               "version = ? LIMIT 1",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, product);
	db_bind_text(st, 2, version);
	r = db_step_row(w->c->db, st, err);
	if (r == 1) {
		str_copy(region, db_text(st, 0), 32);
		str_copy(image, db_text(st, 1), ID_MAX);
	}
	return r;
}

static int run_task(struct work *w, const json_t *t, struct kerr **err)
{
	const char *product = jstr(t, "Product"), *version = jstr(t, "Version");
	json_t *e = json_object_get(w->entities, product);
	const char *title =
	    jstr(json_object_get(json_object_get(e, "Details"), "Description"), "ProductTitle");
	char name[128], image[ID_MAX];
	size_t i;
	json_t *r;

	snprintf(name, sizeof(name), "%s-%s", product, version);
	if (jstr(t, "Source")) {
		_cleanup_buf_ struct buf why = BUF_INIT;
		struct image im;

		if (source_check(w, jstr(t, "Source"), &im, err) < 0 ||
		    scan_image(w->c, &im, &why, err) < 0)
			return -1;
		if (why.len)
			return kerr_about(err, KERR_INVALID, KERR_SUBJECT_IMAGE, im.id,
			                  "the scan of image '%s' failed: %s", im.id, why.data);
		json_array_foreach(json_object_get(t, "Regions"), i, r)
		{
			if (copy_into(w->c, w->account, SOURCE_REGION, im.id, json_string_value(r),
			              name, title, image, err) < 0)
				return -1;
			made_add(w, product, version, json_string_value(r), image);
		}
		return 0;
	}
	{
		char from_region[32], from[ID_MAX];
		int found = version_image(w, product, version, from_region, from, err);
		if (found < 0)
			return -1;
		if (found == 0)
			return 0; /* a version whose images are all gone */
		if (copy_into(w->c, MARKETPLACE_ACCOUNT_ID, from_region, from, jstr(t, "Region"),
		              name, title, image, err) < 0)
			return -1;
		made_add(w, product, version, jstr(t, "Region"), image);
	}
	return 0;
}

static void unmake(struct work *w)
{
	size_t i;
	json_t *m;

	json_array_foreach(w->made, i, m)
	{
		_cleanup_kerr_ struct kerr *why = NULL;
		if (cloud_image_deregister(w->c, MARKETPLACE_ACCOUNT_ID, jstr(m, "Region"),
		                           jstr(m, "Image"), &why) < 0)
			cloud_log_failure(jstr(m, "Image"), why,
			                  "cannot remove the copy of a failed change set");
	}
}

/* Committing. */

static int code_attach(struct cloud *c, const char *resource, const char *code, struct kerr **err)
{
	return cloud_sql_run(c, err,
	                     "INSERT OR IGNORE INTO product_codes (resource, code) VALUES (?, ?)",
	                     2, resource, code);
}

static json_t *entity_details_db(struct cloud *c, const char *id, char product[CATALOG_ID_MAX],
                                 char visibility[16], struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db,
	               "SELECT details, product, visibility FROM catalog_entities WHERE id = ?",
	               &st, err) < 0)
		return NULL;
	db_bind_text(st, 1, id);
	r = db_step_row(c->db, st, err);
	if (r <= 0)
		return r == 0 ? (kerr_set(err, KERR_INTERNAL, "entity '%s' is gone", id), NULL)
		              : NULL;
	if (product)
		str_copy(product, db_text(st, 1), CATALOG_ID_MAX);
	if (visibility)
		str_copy(visibility, db_text(st, 2), 16);
	return json_loads(db_text(st, 0), 0, NULL);
}

/* The product's pricing, instance types and usage dimensions, as marketplace.c keeps them,
 * from its released offer (none: free) and its Compatibility and Dimensions. Instance types
 * the rate card does not price (all of them for free, BYOL and an offer of usage dimensions
 * only) are allowed at 0; usage dimensions it does not price cost 0 per unit. */
static int prices_sync(struct cloud *c, const char *pid, struct kerr **err)
{
	_cleanup_json_ json_t *pd = NULL, *od = NULL;
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ struct offer_prices *o = xcalloc(1, sizeof(*o));
	char code[CATALOG_ID_MAX], price[24];
	const json_t *comp, *dims;
	size_t i, k;
	json_t *t;
	int r;

	pd = entity_details_db(c, pid, code, NULL, err);
	if (!pd)
		return -1;
	comp = json_object_get(pd, "Compatibility");
	dims = json_object_get(pd, "Dimensions");
	str_copy(o->pricing, "free", sizeof(o->pricing));
	if (db_prepare(c->db,
	               "SELECT details FROM catalog_entities WHERE type = 'Offer' AND product = ? "
	               "AND visibility = 'Released'",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, pid);
	r = db_step_row(c->db, st, err);
	if (r < 0)
		return -1;
	if (r == 1) {
		od = json_loads(db_text(st, 0), 0, NULL);
		if (offer_pricing(od, pid, dims, o, err) < 0)
			return -1;
	}
	if (!o->ntypes)
		json_array_foreach(json_object_get(comp, "AvailableInstanceTypes"), i,
		                   t) if (o->ntypes < PRODUCT_TYPES_MAX)
		{
			str_copy(o->types[o->ntypes].type, json_string_value(t),
			         sizeof(o->types[0].type));
			o->types[o->ntypes++].price_micros = 0;
		}
	if (cloud_sql_run(c, err, "UPDATE products SET pricing = ? WHERE code = ?", 2, o->pricing,
	                  code) < 0 ||
	    cloud_sql_run(c, err, "DELETE FROM product_types WHERE product = ?", 1, code) < 0 ||
	    cloud_sql_run(c, err, "DELETE FROM product_dimensions WHERE product = ?", 1, code) < 0)
		return -1;
	for (i = 0; i < o->ntypes; i++) {
		if (array_has(json_object_get(comp, "RestrictedInstanceTypes"), o->types[i].type))
			continue;
		snprintf(price, sizeof(price), "%lld", (long long)o->types[i].price_micros);
		if (cloud_sql_run(c, err,
		                  "INSERT INTO product_types (product, type, price_micros) VALUES "
		                  "(?, ?, CAST(? AS INTEGER))",
		                  3, code, o->types[i].type, price) < 0)
			return -1;
	}
	json_array_foreach(dims, i, t)
	{
		int64_t micros = 0;

		if (!array_has(json_object_get(t, "Types"), "ExternallyMetered"))
			continue;
		for (k = 0; k < o->ndims; k++)
			if (!strcmp(o->dims[k].key, jstr(t, "Key")))
				micros = o->dims[k].price_micros;
		snprintf(price, sizeof(price), "%lld", (long long)micros);
		if (cloud_sql_run(
		        c, err,
		        "INSERT INTO product_dimensions (product, dimension, price_micros) "
		        "VALUES (?, ?, CAST(? AS INTEGER))",
		        3, code, jstr(t, "Key"), price) < 0)
			return -1;
	}
	return 0;
}

/* Who sees each image of the product: everyone when the product is Public and the version and
 * region are not restricted; else the seller, and, once the product was public, the accounts
 * subscribed now (restricting hides from new buyers, not from existing ones). */
static int images_sync(struct cloud *c, const char *pid, const char *seller, struct kerr **err)
{
	_cleanup_json_ json_t *pd = NULL;
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	char code[CATALOG_ID_MAX], vis[16];
	int r;

	pd = entity_details_db(c, pid, code, vis, err);
	if (!pd)
		return -1;
	if (db_prepare(
	        c->db,
	        "SELECT version, region, image FROM catalog_version_images WHERE product = ?", &st,
	        err) < 0)
		return -1;
	db_bind_text(st, 1, pid);
	while ((r = db_step_row(c->db, st, err)) == 1) {
		const char *version = db_text(st, 0), *region = db_text(st, 1),
		           *image = db_text(st, 2);
		bool open =
		    !strcmp(vis, "Public") &&
		    array_has(json_object_get(json_object_get(pd, "RegionAvailability"), "Regions"),
		              region);
		size_t i;
		json_t *v;

		json_array_foreach(json_object_get(pd, "Versions"), i,
		                   v) if (!strcmp(jstr(v, "Id"), version)) open &=
		    !strcmp(jstr(json_array_get(json_object_get(v, "DeliveryOptions"), 0),
		                 "Visibility"),
		            "Public");
		if (cloud_sql_run(c, err, "DELETE FROM image_permissions WHERE image = ?", 1,
		                  image) < 0 ||
		    cloud_sql_run(c, err, "UPDATE images SET public = ? WHERE id = ?", 2,
		                  open ? "1" : "0", image) < 0)
			return -1;
		if (open) {
			if (cloud_sql_run(
			        c, err,
			        "INSERT INTO image_permissions (image, grantee) VALUES (?, "
			        "'all')",
			        1, image) < 0)
				return -1;
			continue;
		}
		if (cloud_sql_run(c, err,
		                  "INSERT OR IGNORE INTO image_permissions (image, grantee) VALUES "
		                  "(?, ?)",
		                  2, image, seller) < 0)
			return -1;
		if (strcmp(vis, "Draft") && strcmp(vis, "Limited") &&
		    cloud_sql_run(c, err,
		                  "INSERT OR IGNORE INTO image_permissions (image, grantee) SELECT "
		                  "?1, account FROM subscriptions WHERE product = ?2 AND end_ms IS "
		                  "NULL",
		                  2, image, code) < 0)
			return -1;
	}
	return r < 0 ? -1 : 0;
}

static int commit_work(struct work *w, struct kerr **err)
{
	_cleanup_json_ json_t *products = json_object();
	char now[24];
	const char *id;
	size_t i;
	json_t *e, *m;

	snprintf(now, sizeof(now), "%lld", (long long)cloud_now_ms());
	json_object_foreach(w->entities, id, e)
	{
		_cleanup_free_ char *details =
		    json_dumps(json_object_get(e, "Details"), JSON_COMPACT);
		const char *type = jstr(e, "Type");

		if (cloud_sql_run(
		        w->c, err,
		        "INSERT INTO catalog_entities (id, type, account, name, visibility, "
		        "modified_ms, details, product) VALUES (?, ?, ?, ?, ?, CAST(? AS "
		        "INTEGER), ?, ?) ON CONFLICT (id) DO UPDATE SET name = "
		        "excluded.name, visibility = excluded.visibility, revision = "
		        "revision + 1, modified_ms = excluded.modified_ms, details = "
		        "excluded.details, product = excluded.product",
		        8, id, type, w->account, jstr(e, "Name"), jstr(e, "Visibility"), now,
		        details, jstr(e, "Product")) < 0)
			return -1;
		if (!strcmp(type, "AmiProduct")) {
			if (cloud_sql_run(
			        w->c, err,
			        "INSERT INTO products (code, id, seller, title, pricing, "
			        "created_ms) VALUES (?, ?, ?, ?, 'free', CAST(? AS INTEGER)) "
			        "ON CONFLICT (code) DO UPDATE SET title = excluded.title",
			        5, jstr(e, "Product"), id, w->account, jstr(e, "Name"), now) < 0)
				return -1;
			json_object_set_new(products, id, json_true());
		} else {
			json_object_set_new(products, jstr(e, "Product"), json_true());
		}
	}
	json_array_foreach(w->made, i, m)
	{
		const char *pid = jstr(m, "Product");
		const char *code = jstr(json_object_get(w->entities, pid), "Product");
		struct image im;

		if (cloud_sql_run(
		        w->c, err,
		        "INSERT OR REPLACE INTO catalog_version_images (product, version, "
		        "region, image) VALUES (?, ?, ?, ?)",
		        4, pid, jstr(m, "Version"), jstr(m, "Region"), jstr(m, "Image")) < 0 ||
		    cloud_image_get(w->c, MARKETPLACE_ACCOUNT_ID, jstr(m, "Region"),
		                    jstr(m, "Image"), &im, err) < 0 ||
		    code_attach(w->c, im.id, code, err) < 0 ||
		    code_attach(w->c, im.root_snapshot, code, err) < 0)
			return -1;
		for (size_t k = 0; k < im.nvolumes; k++)
			if (code_attach(w->c, im.volumes[k].snapshot, code, err) < 0)
				return -1;
	}
	json_object_foreach(products, id, e)
	{
		char seller[CATALOG_ID_MAX];
		_cleanup_json_ json_t *pd = entity_details_db(w->c, id, NULL, NULL, err);

		if (!pd)
			return -1;
		str_copy(seller, w->account, sizeof(seller));
		if (prices_sync(w->c, id, err) < 0 || images_sync(w->c, id, seller, err) < 0)
			return -1;
	}
	return 0;
}

/* The change set's end: its status, the summaries with their errors, the entities it touched,
 * and its locks released. */
static int finish(struct work *w, const char *status, const char *code, const char *failure,
                  struct kerr **err)
{
	_cleanup_json_ json_t *ids = json_array();
	_cleanup_free_ char *summaries = NULL, *entities = NULL;
	char end[24];
	const char *id;
	json_t *e;

	json_object_foreach(w->entities, id, e)
	{
		if (strcmp(status, "SUCCEEDED") && json_is_true(json_object_get(e, "New")))
			continue; /* never made */
		json_array_append_new(ids, json_string(id));
	}
	summaries = json_dumps(w->summaries, JSON_COMPACT);
	entities = json_dumps(ids, JSON_COMPACT);
	snprintf(end, sizeof(end), "%lld", (long long)cloud_now_ms());
	if (cloud_sql_run(w->c, err,
	                  "UPDATE catalog_change_sets SET status = ?, failure_code = ?, failure = "
	                  "?, end_ms = CAST(? AS INTEGER), changes = ?, entities = ? WHERE id = ?",
	                  7, status, code, failure, end, summaries, entities, w->id) < 0)
		return -1;
	return cloud_sql_run(
	    w->c, err, "UPDATE catalog_entities SET locked_by = '' WHERE locked_by = ?", 1, w->id);
}

static int status_of(struct cloud *c, const char *id, char status[16], struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db, "SELECT status FROM catalog_change_sets WHERE id = ?", &st, err) < 0)
		return -1;
	db_bind_text(st, 1, id);
	r = db_step_row(c->db, st, err);
	if (r == 1)
		str_copy(status, db_text(st, 0), 16);
	return r == 1 ? 0
	              : (r == 0 ? kerr_set(err, KERR_INTERNAL, "change set '%s' is gone", id) : -1);
}

/* PREPARING to APPLYING unless cancelled meanwhile: 1 when it moved, 0 when cancelled. */
static int to_applying(struct cloud *c, const char *id, struct kerr **err)
{
	char status[16];

	if (db_begin(c->db, err) < 0)
		return -1;
	if (status_of(c, id, status, err) < 0)
		goto on_error;
	if (strcmp(status, "PREPARING")) {
		db_rollback(c->db);
		return 0;
	}
	if (cloud_sql_run(c, err, "UPDATE catalog_change_sets SET status = 'APPLYING' WHERE id = ?",
	                  1, id) < 0)
		goto on_error;
	return db_commit(c->db, err) < 0 ? -1 : 1;
on_error:
	db_rollback(c->db);
	return -1;
}

static int run_work(struct work *w, const json_t *changes, const char *intent, struct kerr **err)
{
	size_t i;
	json_t *ch;
	int r;

	json_array_foreach(changes, i, ch)
	{
		_cleanup_kerr_ struct kerr *why = NULL;
		if (prepare_change(w, i, ch, &why) < 0) {
			change_error(w, i, error_code_of(why), why->msg);
			return finish(w, "FAILED", "CLIENT_ERROR",
			              "the change set has errors: see "
			              "ErrorDetailList of its changes",
			              err);
		}
	}
	if (!strcmp(intent, "VALIDATE")) {
		/* Nothing changes: the entities are unlocked as they were. */
		json_object_clear(w->entities);
		return finish(w, "SUCCEEDED", "", "", err);
	}
	r = to_applying(w->c, w->id, err);
	if (r <= 0) {
		if (r == 0)
			json_object_clear(w->entities);
		return r < 0 ? -1 : finish(w, "CANCELLED", "", "", err);
	}
	json_array_foreach(w->tasks, i, ch)
	{
		_cleanup_kerr_ struct kerr *why = NULL;
		if (run_task(w, ch, &why) < 0) {
			bool client = why->kind == KERR_INVALID || why->kind == KERR_NOT_FOUND;
			unmake(w);
			change_error(w, (size_t)json_integer_value(json_object_get(ch, "Change")),
			             why->kind == KERR_INVALID && why->subject == KERR_SUBJECT_IMAGE
			                 ? "SCAN_FAILED"
			                 : error_code_of(why),
			             why->msg);
			return finish(
			    w, "FAILED", client ? "CLIENT_ERROR" : "SERVER_FAULT",
			    "the change set has errors: see ErrorDetailList of its changes", err);
		}
	}
	if (db_begin(w->c->db, err) < 0)
		goto on_unmake;
	{
		_cleanup_kerr_ struct kerr *why = NULL;
		if (commit_work(w, &why) < 0 || finish(w, "SUCCEEDED", "", "", &why) < 0 ||
		    db_commit(w->c->db, &why) < 0) {
			db_rollback(w->c->db);
			unmake(w);
			json_object_clear(w->entities);
			return finish(w, "FAILED", "SERVER_FAULT", why->msg, err);
		}
	}
	return 0;
on_unmake:
	unmake(w);
	return -1;
}

static int change_set_job(struct cloud *c, const char *id, int kind, bool force, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_json_ json_t *changes = NULL;
	struct work w = {.c = c};
	struct topology t;
	char intent[16];
	int r;

	(void)kind, (void)force;
	if (db_prepare(c->db,
	               "SELECT account, intent, request, changes FROM catalog_change_sets WHERE id "
	               "= ? AND status = 'PREPARING'",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, id);
	r = db_step_row(c->db, st, err);
	if (r <= 0)
		return r; /* cancelled already */
	str_copy(w.id, id, sizeof(w.id));
	str_copy(w.account, db_text(st, 0), sizeof(w.account));
	str_copy(intent, db_text(st, 1), sizeof(intent));
	changes = json_loads(db_text(st, 2), 0, NULL);
	w.summaries = json_loads(db_text(st, 3), 0, NULL);
	w.entities = json_object();
	w.names = json_object();
	w.tasks = json_array();
	w.made = json_array();
	w.topology_regions = json_array();
	if (cloud_regions(c, &t, err) == 0) {
		for (size_t i = 0; i < t.nregions; i++)
			json_array_append_new(w.topology_regions, json_string(t.regions[i]));
		topology_release(&t);
		r = changes && w.summaries
		        ? run_work(&w, changes, intent, err)
		        : kerr_set(err, KERR_CORRUPT, "change set '%s' is unreadable", id);
	} else {
		r = -1;
	}
	if (r < 0) {
		_cleanup_kerr_ struct kerr *why = NULL;
		json_object_clear(w.entities);
		if (finish(&w, "FAILED", "SERVER_FAULT", (*err)->msg, &why) < 0)
			cloud_log_failure(id, why, "cannot fail a change set");
	}
	json_decref(w.summaries);
	json_decref(w.entities);
	json_decref(w.names);
	json_decref(w.tasks);
	json_decref(w.made);
	json_decref(w.topology_regions);
	return r;
}

/* Reading. */

void catalog_change_set_release(struct catalog_change_set *cs)
{
	json_decref(cs->changes);
	json_decref(cs->entity_ids);
	cs->changes = cs->entity_ids = NULL;
}

void catalog_entity_release(struct catalog_entity *e)
{
	json_decref(e->details);
	e->details = NULL;
}

/* The columns of a row reader, in the order its SELECT names them: where each goes in the
 * struct. JSON columns that do not parse read as an empty array or object. */
enum column_kind { COL_TEXT, COL_INT64, COL_INT, COL_JSON_ARRAY, COL_JSON_OBJECT };
struct column {
	enum column_kind kind;
	size_t offset, size;
};
#define TEXT_COLUMN(type, field)                                                                   \
	{                                                                                          \
		COL_TEXT, offsetof(type, field), sizeof(((type *)0)->field)                        \
	}
#define OTHER_COLUMN(kind, type, field)                                                            \
	{                                                                                          \
		kind, offsetof(type, field), 0                                                     \
	}

static void columns_read(sqlite3_stmt *st, void *out, size_t size, const struct column *cols,
                         size_t n)
{
	char *base = out;

	memset(out, 0, size);
	for (size_t i = 0; i < n; i++) {
		void *at = base + cols[i].offset;
		json_t *j;

		switch (cols[i].kind) {
		case COL_TEXT:
			str_copy(at, db_text(st, (int)i), cols[i].size);
			break;
		case COL_INT64:
			*(int64_t *)at = sqlite3_column_int64(st, (int)i);
			break;
		case COL_INT:
			*(int *)at = sqlite3_column_int(st, (int)i);
			break;
		case COL_JSON_ARRAY:
		case COL_JSON_OBJECT:
			j = json_loads(db_text(st, (int)i), 0, NULL);
			if (!j)
				j = cols[i].kind == COL_JSON_ARRAY ? json_array() : json_object();
			*(json_t **)at = j;
			break;
		}
	}
}

#define CHANGE_SET_COLUMNS                                                                         \
	"id, account, name, status, failure_code, failure, start_ms, end_ms, changes, entities "   \
	"FROM catalog_change_sets "

static void change_set_from_row(sqlite3_stmt *st, void *element)
{
	static const struct column cols[] = {
	    TEXT_COLUMN(struct catalog_change_set, id),
	    TEXT_COLUMN(struct catalog_change_set, account),
	    TEXT_COLUMN(struct catalog_change_set, name),
	    TEXT_COLUMN(struct catalog_change_set, status),
	    TEXT_COLUMN(struct catalog_change_set, failure_code),
	    TEXT_COLUMN(struct catalog_change_set, failure),
	    OTHER_COLUMN(COL_INT64, struct catalog_change_set, start_ms),
	    OTHER_COLUMN(COL_INT64, struct catalog_change_set, end_ms),
	    OTHER_COLUMN(COL_JSON_ARRAY, struct catalog_change_set, changes),
	    OTHER_COLUMN(COL_JSON_ARRAY, struct catalog_change_set, entity_ids),
	};

	columns_read(st, element, sizeof(struct catalog_change_set), cols, ARRAY_SIZE(cols));
}

/* The row of the account's change set or entity id (select ends in "WHERE id = ? AND account =
 * ?"), read by from_row into out; KERR_NOT_FOUND about subject when there is none. */
static int row_of(struct cloud *c, const char *select, const char *account, const char *id,
                  enum kerr_subject subject, const char *what,
                  void (*from_row)(sqlite3_stmt *, void *), void *out, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db, select, &st, err) < 0)
		return -1;
	db_bind_text(st, 1, id);
	db_bind_text(st, 2, account);
	r = db_step_row(c->db, st, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return kerr_about(err, KERR_NOT_FOUND, subject, id, "%s '%s' not found", what, id);
	from_row(st, out);
	return 0;
}

int cloud_catalog_change_set(struct cloud *c, const char *account, const char *id,
                             struct catalog_change_set *out, struct kerr **err)
{
	return row_of(c, "SELECT " CHANGE_SET_COLUMNS "WHERE id = ? AND account = ?", account, id,
	              KERR_SUBJECT_CHANGE_SET, "change set", change_set_from_row, out, err);
}

int cloud_catalog_change_sets(struct cloud *c, const char *account,
                              const struct catalog_change_set_filter *f,
                              struct catalog_change_set **out, size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (db_prepare(c->db,
	               "SELECT " CHANGE_SET_COLUMNS
	               "WHERE account = ?1 AND (?2 IS NULL OR name = ?2) AND (?3 IS NULL OR "
	               "status = ?3) AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(entities) "
	               "WHERE value = ?4)) ORDER BY start_ms DESC, rowid DESC",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, account);
	db_bind_text(st, 2, f->name);
	db_bind_text(st, 3, f->status);
	db_bind_text(st, 4, f->entity);
	return cloud_rows(c, st, sizeof(**out), change_set_from_row, (void **)out, n, err);
}

int cloud_catalog_cancel(struct cloud *c, const char *account, const char *id, struct kerr **err)
{
	struct catalog_change_set cs;
	int r = -1;

	if (db_begin(c->db, err) < 0)
		return -1;
	if (cloud_catalog_change_set(c, account, id, &cs, err) < 0)
		goto out;
	catalog_change_set_release(&cs);
	if (strcmp(cs.status, "PREPARING")) {
		kerr_about(err, KERR_CONFLICT, KERR_SUBJECT_CHANGE_SET, id,
		           "change set '%s' is %s: only a PREPARING one can be cancelled", id,
		           cs.status);
		goto out;
	}
	{
		char end[24];
		snprintf(end, sizeof(end), "%lld", (long long)cloud_now_ms());
		if (cloud_sql_run(
		        c, err,
		        "UPDATE catalog_change_sets SET status = 'CANCELLED', end_ms = CAST(? "
		        "AS INTEGER) WHERE id = ?",
		        2, end, id) < 0 ||
		    cloud_sql_run(c, err,
		                  "UPDATE catalog_entities SET locked_by = '' WHERE locked_by = ?",
		                  1, id) < 0)
			goto out;
	}
	r = db_commit(c->db, err);
	return r;
out:
	db_rollback(c->db);
	return r;
}

#define ENTITY_COLUMNS                                                                             \
	"id, type, account, name, visibility, revision, modified_ms, details FROM "                \
	"catalog_entities "

static void entity_from_row(sqlite3_stmt *st, void *element)
{
	static const struct column cols[] = {
	    TEXT_COLUMN(struct catalog_entity, id),
	    TEXT_COLUMN(struct catalog_entity, type),
	    TEXT_COLUMN(struct catalog_entity, account),
	    TEXT_COLUMN(struct catalog_entity, name),
	    TEXT_COLUMN(struct catalog_entity, visibility),
	    OTHER_COLUMN(COL_INT, struct catalog_entity, revision),
	    OTHER_COLUMN(COL_INT64, struct catalog_entity, modified_ms),
	    OTHER_COLUMN(COL_JSON_OBJECT, struct catalog_entity, details),
	};

	columns_read(st, element, sizeof(struct catalog_entity), cols, ARRAY_SIZE(cols));
}

int cloud_catalog_entity(struct cloud *c, const char *account, const char *id,
                         struct catalog_entity *out, struct kerr **err)
{
	return row_of(c, "SELECT " ENTITY_COLUMNS "WHERE id = ? AND account = ?", account, id,
	              KERR_SUBJECT_CATALOG_ENTITY, "entity", entity_from_row, out, err);
}

static bool selected(const json_t *values, const char *v)
{
	return !json_array_size(values) || array_has(values, v);
}

int cloud_catalog_entities(struct cloud *c, const char *account,
                           const struct catalog_entity_filter *f, struct catalog_entity **out,
                           size_t *n, struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	struct catalog_entity *v = NULL;
	size_t all, k = 0;

	*out = NULL;
	*n = 0;
	if (f->shared)
		return 0; /* kiln shares no entity with other accounts */
	if (db_prepare(c->db,
	               "SELECT " ENTITY_COLUMNS
	               "WHERE account = ? AND type = ? ORDER BY modified_ms DESC, id",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, account);
	db_bind_text(st, 2, f->type);
	if (cloud_rows(c, st, sizeof(*v), entity_from_row, (void **)&v, &all, err) < 0)
		return -1;
	for (size_t i = 0; i < all; i++) {
		if (selected(f->ids, v[i].id) && selected(f->names, v[i].name) &&
		    selected(f->visibilities, v[i].visibility))
			v[k++] = v[i];
		else
			catalog_entity_release(&v[i]);
	}
	*out = v;
	*n = k;
	return 0;
}

int cloud_catalog_reconcile(struct cloud *c, struct kerr **err)
{
	if (cloud_sql_run(
	        c, err,
	        "UPDATE catalog_entities SET locked_by = '' WHERE locked_by IN (SELECT id "
	        "FROM catalog_change_sets WHERE status IN ('PREPARING', 'APPLYING'))",
	        0) < 0)
		return -1;
	return cloud_sql_run(c, err,
	                     "UPDATE catalog_change_sets SET status = 'FAILED', failure_code = "
	                     "'SERVER_FAULT', failure = 'the daemon stopped while it ran' WHERE "
	                     "status IN ('PREPARING', 'APPLYING')",
	                     0);
}

int cloud_catalog_subscribable(struct cloud *c, const char *product_id, const char *account,
                               struct kerr **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(c->db,
	               "SELECT visibility, account, EXISTS (SELECT 1 FROM catalog_entities o WHERE "
	               "o.type = 'Offer' AND o.product = p.id AND o.visibility = 'Released') FROM "
	               "catalog_entities p WHERE p.id = ? AND p.type = 'AmiProduct'",
	               &st, err) < 0)
		return -1;
	db_bind_text(st, 1, product_id);
	r = db_step_row(c->db, st, err);
	if (r <= 0)
		return r; /* none: a product the operator published */
	if (!sqlite3_column_int(st, 2))
		return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_PRODUCT_CODE, product_id,
		                  "product '%s' has no released offer", product_id);
	if (!strcmp(db_text(st, 0), "Public") || !strcmp(db_text(st, 1), account))
		return 0;
	return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_PRODUCT_CODE, product_id,
	                  "product '%s' is %s: not open to new subscribers", product_id,
	                  db_text(st, 0));
}
