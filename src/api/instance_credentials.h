/* The instance metadata service's iam/ documents, from an instance's profile and credentials
 * (cloud_instance_credentials): what the SDKs' instance credential providers read. */
#ifndef KILN_API_INSTANCE_CREDENTIALS_H
#define KILN_API_INSTANCE_CREDENTIALS_H

#include "cloud/cloud.h"
#include "util/buf.h"

/* Appended to out; -1 only for a time that cannot be told. */
/* meta-data/iam/info: {Code, LastUpdated, InstanceProfileArn, InstanceProfileId}. */
int api_iam_info_json(const struct instance_credentials *c, struct buf *out, struct kerr **err)
    __attribute__((warn_unused_result));
/* meta-data/iam/security-credentials/PROFILE: {Code, LastUpdated, Type "AWS-HMAC", AccessKeyId,
 * SecretAccessKey, Token, Expiration}. */
int api_iam_credentials_json(const struct instance_credentials *c, struct buf *out,
                             struct kerr **err) __attribute__((warn_unused_result));

#endif
