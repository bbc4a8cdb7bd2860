/* Calls between deployments of kiln (regions served by separate daemons): requests signed with
 * the deployments' own key under the service "kiln-peer" on the API's listener, answered with
 * bytes (a store's read API: what an account may copy, a snapshot's manifest, its chunks by
 * hash); and the transport cloud uses to make them (cloud_peer_ops). */
#include "api/peer.h"

#include <stdlib.h>
#include <string.h>

#include "api/client.h"
#include "api/errors.h"
#include "store/store.h"
#include "util/cleanup.h"
#include "util/hash.h"
#include "api/xmlread.h"
#include "util/xalloc.h"
#include "util/banned.h"

static bool account_ok(const char *a)
{
	if (!a || strlen(a) != ACCOUNT_ID_LEN)
		return false;
	for (const char *p = a; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

int api_peer_dispatch(struct api_call *c, struct buf *out, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *account = api_node_str(&c->root, "Account");
	const char *image = api_node_str(&c->root, "ImageId");
	const char *snapshot = api_node_str(&c->root, "SnapshotId");
	int r;

	if (!account_ok(account)) {
		api_error_set(e, "InvalidParameterValue", "Account is a 12-digit account id");
		return -1;
	}
	if (!strcmp(c->action, "DescribeCopySource")) {
		r = cloud_copy_source_describe(c->cloud, account, c->region, image, snapshot, out,
		                               &err);
	} else if (!strcmp(c->action, "GetSnapshotManifest")) {
		r = cloud_copy_source_manifest(c->cloud, account, c->region, image, snapshot, out,
		                               &err);
	} else if (!strcmp(c->action, "GetSnapshotChunks")) {
		const char *list = api_node_str(&c->root, "Hashes");
		size_t n = 0, len = list ? strlen(list) : 0;
		_cleanup_free_ uint8_t(*hashes)[HASH_LEN] = NULL;

		/* 64 hex digits each, separated by commas */
		if (!len || (len + 1) % (2 * HASH_LEN + 1) ||
		    (len + 1) / (2 * HASH_LEN + 1) > STORE_REMOTE_BATCH) {
			api_error_set(e, "InvalidParameterValue",
			              "Hashes is 1 to %d SHA-256 hashes in hex, comma-separated",
			              STORE_REMOTE_BATCH);
			return -1;
		}
		n = (len + 1) / (2 * HASH_LEN + 1);
		hashes = xcalloc(n, HASH_LEN);
		for (size_t i = 0; i < n; i++) {
			char hex[2 * HASH_LEN + 1];
			memcpy(hex, list + i * (2 * HASH_LEN + 1), 2 * HASH_LEN);
			hex[2 * HASH_LEN] = '\0';
			if ((i + 1 < n && list[i * (2 * HASH_LEN + 1) + 2 * HASH_LEN] != ',') ||
			    hash_unhex(hex, hashes[i], HASH_LEN) < 0) {
				api_error_set(e, "InvalidParameterValue",
				              "Hashes is SHA-256 hashes in hex, comma-separated");
				return -1;
			}
		}
		r = cloud_copy_source_chunks(c->cloud, account, c->region, image, snapshot,
		                             (const uint8_t(*)[HASH_LEN])hashes, n, out, &err);
	} else {
		api_error_invalid_action(e, c->action);
		return -1;
	}
	if (r < 0) {
		api_error_from_cloud(e, c->action, err);
		/* The error itself too: the destination tells its caller by its own table. */
		if (err) {
			e->has_cause = true;
			e->cause = *err;
		}
		return -1;
	}
	return 0;
}

/* A deployment's refusal as the error behind it (kind, subject, id: api_xml_error_cause), so
 * that the destination's table gives its caller the code; an answer without them (not from a
 * deployment of kiln, or before it got to the cloud: a signature refused) by its EC2 code. */
static int answer_error(const struct api_client *client, long status, const struct buf *body,
                        struct kerr **err)
{
	struct xml_node *root = NULL;
	const char *kind;

	if (xml_parse(body->data ? body->data : "", body->len, &root, NULL) < 0 ||
	    !(kind = xml_text(root, "Errors/Error/Kind", NULL))) {
		xml_free(root);
		return api_client_answer_error(client, status, body->data ? body->data : "",
		                               body->len, NULL, err);
	}
	kerr_about(err, kerr_kind_parse(kind),
	           kerr_subject_parse(xml_text(root, "Errors/Error/Subject", "none")),
	           xml_text(root, "Errors/Error/SubjectId", ""), "%s: %s",
	           xml_text(root, "Errors/Error/Code", "InternalError"),
	           xml_text(root, "Errors/Error/Cause", ""));
	xml_free(root);
	return -1;
}

int api_peer_open(void *ctx, const struct cloud_peer *p, const char *key, void **session,
                  struct kerr **err)
{
	const struct api_client_config cfg = {.endpoint = p->endpoint,
	                                      .region = p->region,
	                                      .access_key = CLOUD_PEER_ACCESS_KEY,
	                                      .secret_key = key,
	                                      .service = CLOUD_PEER_SERVICE};
	struct api_client *client = NULL;

	(void)ctx;
	if (api_client_open(&cfg, &client, err) < 0)
		return -1;
	*session = client;
	return 0;
}

void api_peer_close(void *session)
{
	if (session)
		api_client_close(session);
}

int api_peer_send(void *session, const char *action, const char *const *params, struct buf *out,
                  struct kerr **err)
{
	struct api_client *client = session;
	_cleanup_buf_ struct buf body = BUF_INIT;
	struct api_args a;
	long status = 0;
	int r;

	api_args_init(&a, action);
	for (size_t i = 0; params[i] && params[i + 1]; i += 2)
		if (params[i + 1][0])
			api_args_add(&a, params[i], params[i + 1]);
	/* One client, one libcurl handle: its connection is kept alive from call to call. */
	r = api_client_send(client, &a, &status, &body, err);
	if (r == 0)
		r = status == 200 ? buf_add(out, body.data ? body.data : "", body.len, err)
		                  : answer_error(client, status, &body, err);
	api_args_release(&a);
	return r;
}

int api_peer_call(void *ctx, const struct cloud_peer *p, const char *key, const char *action,
                  const char *const *params, struct buf *out, struct kerr **err)
{
	void *session = NULL;
	int r;

	if (api_peer_open(ctx, p, key, &session, err) < 0)
		return -1;
	r = api_peer_send(session, action, params, out, err);
	api_peer_close(session);
	return r;
}
