/* The AWS Marketplace Catalog of sellers (catalog.c): change sets that create and change
 * AmiProduct and Offer entities, run as background jobs, and the ingestion of a seller's image
 * into the marketplace's account (copies in the product's regions, a scan, the product code).
 * Products made here are the products of marketplace.c: the same rows, prices, subscriptions
 * and bills. Entity details are JSON documents in AWS's shapes (jansson values). */
#ifndef KILN_CLOUD_CATALOG_H
#define KILN_CLOUD_CATALOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cloud/cloud.h"
#include "util/buf.h"

static inline void catalog_json_decrefp(json_t **j)
{
	json_decref(*j);
}
#define _cleanup_json_ __attribute__((cleanup(catalog_json_decrefp)))

#define CATALOG_NAME        "AWSMarketplace"
#define CATALOG_ID_MAX      40
#define CATALOG_CHANGES_MAX 20

/* StartChangeSet. changes is the request's ChangeSet (borrowed): each {ChangeType, Entity{Type,
 * Identifier}, Details (a JSON string) or DetailsDocument, ChangeName}. The change set is
 * checked whole here (KERR_INVALID: ValidationException), its existing entities must be the
 * caller's (KERR_NOT_FOUND) and not locked by another running change set (KERR_CONFLICT), then
 * they are locked and the job runs it. A token already used by the caller answers the change
 * set it started. */
struct catalog_start_request {
	const char *account;
	json_t *changes;
	const char *name;   /* or NULL */
	const char *token;  /* ClientRequestToken, or NULL */
	const char *intent; /* APPLY (NULL) or VALIDATE */
};
int cloud_catalog_start(struct cloud *c, const struct catalog_start_request *req,
                        char id[CATALOG_ID_MAX], struct kerr **err);

/* A change set as DescribeChangeSet and ListChangeSets tell it. */
struct catalog_change_set {
	char id[CATALOG_ID_MAX];
	char account[ACCOUNT_ID_LEN + 1];
	char name[128];
	char status[16];          /* PREPARING APPLYING SUCCEEDED CANCELLED FAILED */
	char failure_code[16];    /* CLIENT_ERROR SERVER_FAULT, or "" */
	char failure[512];        /* FailureDescription, or "" */
	int64_t start_ms, end_ms; /* end_ms 0: not ended */
	json_t *changes;          /* [ChangeSummary] (owned) */
	json_t *entity_ids;       /* [id] (owned) */
};
void catalog_change_set_release(struct catalog_change_set *cs);
int cloud_catalog_change_set(struct cloud *c, const char *account, const char *id,
                             struct catalog_change_set *out, struct kerr **err);
/* The caller's change sets, newest first, selected by name, status and entity id (NULL: any). */
struct catalog_change_set_filter {
	const char *name, *status, *entity;
};
int cloud_catalog_change_sets(struct cloud *c, const char *account,
                              const struct catalog_change_set_filter *f,
                              struct catalog_change_set **out, size_t *n, struct kerr **err);
/* CancelChangeSet: only while PREPARING (KERR_CONFLICT after). */
int cloud_catalog_cancel(struct cloud *c, const char *account, const char *id, struct kerr **err);

struct catalog_entity {
	char id[CATALOG_ID_MAX];
	char type[16]; /* AmiProduct, Offer */
	char account[ACCOUNT_ID_LEN + 1];
	char name[256];
	char visibility[16]; /* Draft Limited Public Restricted (offers: Draft, Released) */
	int revision;
	int64_t modified_ms;
	json_t *details; /* owned */
};
void catalog_entity_release(struct catalog_entity *e);
/* DescribeEntity: the caller's entity (KERR_NOT_FOUND otherwise). */
int cloud_catalog_entity(struct cloud *c, const char *account, const char *id,
                         struct catalog_entity *out, struct kerr **err);
/* ListEntities of type: SELF are the caller's; SHARED, the ones shared with it (kiln shares
 * none). ids, titles and visibilities (NULL or empty arrays: any) select. */
struct catalog_entity_filter {
	const char *type;
	bool shared;
	json_t *ids, *names, *visibilities; /* arrays of strings, borrowed */
};
int cloud_catalog_entities(struct cloud *c, const char *account,
                           const struct catalog_entity_filter *f, struct catalog_entity **out,
                           size_t *n, struct kerr **err);

/* Whether account may subscribe to the product (its prod- id) now: one made by the Catalog
 * needs a released offer and is Public (Limited, Draft and Restricted ones only for their
 * seller), KERR_NOT_FOUND otherwise; products the operator published always. */
int cloud_catalog_subscribable(struct cloud *c, const char *product_id, const char *account,
                               struct kerr **err);

/* The ingestion's scan of an ext4 image file (read with debugfs, never mounted): 0 with why
 * empty when it passes, with the reasons in why ("; "-separated) when it fails. */
int catalog_scan_root(const char *file, struct buf *why, struct kerr **err);

/* At start: change sets a stopped daemon left running fail (SERVER_FAULT), their locks go. */
int cloud_catalog_reconcile(struct cloud *c, struct kerr **err);

#endif
