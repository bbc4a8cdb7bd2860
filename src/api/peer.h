/* Calls between deployments of kiln, each serving one region: the service "kiln-peer" on the
 * API's listener, signed with the deployments' own key (never an account's), and the transport
 * that makes them for cloud (struct cloud_peer_ops). */
#ifndef KILN_API_PEER_H
#define KILN_API_PEER_H

#include "api/server.h"

/* A request signed with the deployments' key for the service "kiln-peer": the answer's bytes
 * into out, or e. Actions (each for Account, checked by cloud: it may copy the image or use the
 * snapshot): DescribeCopySource (ImageId or SnapshotId), GetSnapshotManifest (SnapshotId,
 * ImageId when the copy is of an image), GetSnapshotChunks (the same, and Hashes: hex,
 * comma-separated, at most STORE_REMOTE_BATCH). */
int api_peer_dispatch(struct api_call *c, struct buf *out, struct api_error *e);

/* cloud_peer_ops.call: a POST with libcurl, signed as SigV4 under "kiln-peer". */
/* The same over one connection kept for many calls (a copy's): open, send..., close. */
int api_peer_open(void *ctx, const struct cloud_peer *p, const char *key, void **session,
                  struct kerr **err);
int api_peer_send(void *session, const char *action, const char *const *params, struct buf *out,
                  struct kerr **err);
void api_peer_close(void *session);
int api_peer_call(void *ctx, const struct cloud_peer *p, const char *key, const char *action,
                  const char *const *params, struct buf *out, struct kerr **err);

#endif
