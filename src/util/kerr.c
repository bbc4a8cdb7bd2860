/* Error values: a kind, the errno behind it, and one message built up on the way out. */
#include "kerr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

static const char *const kind_names[KERR__COUNT] = {
    [KERR_INTERNAL] = "internal",
    [KERR_INVALID] = "invalid",
    [KERR_NOT_FOUND] = "not-found",
    [KERR_CONFLICT] = "conflict",
    [KERR_LIMIT] = "limit",
    [KERR_AUTH] = "auth",
    [KERR_IO] = "io",
    [KERR_NOSPACE] = "no-space",
    [KERR_CORRUPT] = "corrupt",
};

static const char *const subject_names[KERR_SUBJECT__COUNT] = {
    [KERR_SUBJECT_NONE] = "none",
    [KERR_SUBJECT_INSTANCE] = "instance",
    [KERR_SUBJECT_INSTANCE_TYPE] = "instance-type",
    [KERR_SUBJECT_IMAGE] = "image",
    [KERR_SUBJECT_IMAGE_NAME] = "image-name",
    [KERR_SUBJECT_SNAPSHOT] = "snapshot",
    [KERR_SUBJECT_VOLUME] = "volume",
    [KERR_SUBJECT_ATTACHMENT] = "attachment",
    [KERR_SUBJECT_DEVICE] = "device",
    [KERR_SUBJECT_ZONE] = "zone",
    [KERR_SUBJECT_REGION] = "region",
    [KERR_SUBJECT_ACCOUNT] = "account",
    [KERR_SUBJECT_KEY] = "key",
    [KERR_SUBJECT_TAG] = "tag",
    [KERR_SUBJECT_CLIENT_TOKEN] = "client-token",
    [KERR_SUBJECT_ADDRESS] = "address",
    [KERR_SUBJECT_LAUNCH_TEMPLATE] = "launch-template",
    [KERR_SUBJECT_LAUNCH_TEMPLATE_NAME] = "launch-template-name",
    [KERR_SUBJECT_LAUNCH_TEMPLATE_VERSION] = "launch-template-version",
    [KERR_SUBJECT_KEY_PAIR] = "key-pair",
    [KERR_SUBJECT_KEY_MATERIAL] = "key-material",
    [KERR_SUBJECT_VPC] = "vpc",
    [KERR_SUBJECT_VPC_RANGE] = "vpc-range",
    [KERR_SUBJECT_DEFAULT_VPC] = "default-vpc",
    [KERR_SUBJECT_SUBNET] = "subnet",
    [KERR_SUBJECT_SUBNET_RANGE] = "subnet-range",
    [KERR_SUBJECT_GROUP] = "security-group",
    [KERR_SUBJECT_GROUP_NAME] = "security-group-name",
    [KERR_SUBJECT_DEFAULT_GROUP] = "default-security-group",
    [KERR_SUBJECT_PERMISSION] = "permission",
    [KERR_SUBJECT_GROUP_RULE] = "security-group-rule",
    [KERR_SUBJECT_PRODUCT_CODE] = "product-code",
    [KERR_SUBJECT_PRODUCT_IMAGE] = "product-image",
    [KERR_SUBJECT_USAGE_DIMENSION] = "usage-dimension",
    [KERR_SUBJECT_USAGE_TIME] = "usage-time",
    [KERR_SUBJECT_USAGE_RECORD] = "usage-record",
    [KERR_SUBJECT_USAGE_ALLOCATION] = "usage-allocation",
    [KERR_SUBJECT_AGREEMENT] = "agreement",
    [KERR_SUBJECT_CATALOG_ENTITY] = "catalog-entity",
    [KERR_SUBJECT_CHANGE_SET] = "change-set",
    [KERR_SUBJECT_COMBINATION] = "combination",
    [KERR_SUBJECT_INSTANCE_PROFILE] = "instance-profile",
    [KERR_SUBJECT_SESSION_TOKEN] = "session-token",
    [KERR_SUBJECT_QUOTA_VCPUS] = "quota-running-vcpus",
    [KERR_SUBJECT_QUOTA_VOLUMES] = "quota-volumes",
    [KERR_SUBJECT_QUOTA_VOLUME_GIB] = "quota-volume-gib",
    [KERR_SUBJECT_QUOTA_SNAPSHOTS] = "quota-snapshots",
    [KERR_SUBJECT_QUOTA_IMAGES] = "quota-images",
};

const char *kerr_kind_name(enum kerr_kind kind)
{
	return kind < KERR__COUNT ? kind_names[kind] : "unknown";
}

const char *kerr_subject_name(enum kerr_subject subject)
{
	return subject < KERR_SUBJECT__COUNT ? subject_names[subject] : "unknown";
}

enum kerr_kind kerr_kind_parse(const char *name)
{
	for (unsigned k = 0; name && k < KERR__COUNT; k++)
		if (!strcmp(name, kind_names[k]))
			return (enum kerr_kind)k;
	return KERR_INTERNAL;
}

enum kerr_subject kerr_subject_parse(const char *name)
{
	for (unsigned s = 0; name && s < KERR_SUBJECT__COUNT; s++)
		if (subject_names[s] && !strcmp(name, subject_names[s]))
			return (enum kerr_subject)s;
	return KERR_SUBJECT_NONE;
}

__attribute__((format(printf, 4, 0))) static int kerr_vset(struct kerr **err, enum kerr_kind kind,
                                                           int errnum, const char *fmt, va_list ap)
{
	struct kerr *e;

	if (!err)
		return -1;
	kerr_free(*err);
	e = calloc(1, sizeof(*e));
	if (!e)
		abort();
	e->kind = kind;
	e->errnum = errnum;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	*err = e;
	return -1;
}

int kerr_set(struct kerr **err, enum kerr_kind kind, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kerr_vset(err, kind, 0, fmt, ap);
	va_end(ap);
	return -1;
}

int kerr_about(struct kerr **err, enum kerr_kind kind, enum kerr_subject subject, const char *id,
               const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kerr_vset(err, kind, 0, fmt, ap);
	va_end(ap);
	if (err && *err) {
		(*err)->subject = subject;
		snprintf((*err)->id, sizeof((*err)->id), "%s", id ? id : "");
	}
	return -1;
}

static enum kerr_kind kind_of_errno(int errnum)
{
	switch (errnum) {
	case ENOENT:
	case ENOTDIR:
		return KERR_NOT_FOUND;
	case EEXIST:
	case EBUSY:
	case ENOTEMPTY:
		return KERR_CONFLICT;
	case ENOSPC:
	case EDQUOT:
		return KERR_NOSPACE;
	case EACCES:
	case EPERM:
		return KERR_AUTH;
	case EINVAL:
	case EISDIR:
	case ENAMETOOLONG:
		return KERR_INVALID;
	case EFBIG:
	case EMFILE:
	case ENFILE:
	case ENOMEM:
		return KERR_LIMIT;
	default:
		return KERR_IO;
	}
}

int kerr_errno(struct kerr **err, int errnum, const char *fmt, ...)
{
	char head[768];
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	return kerr_set(err, kind_of_errno(errnum), "%s: %s", head, strerror(errnum));
}

int kerr_wrap(struct kerr **err, const char *fmt, ...)
{
	char head[512];
	size_t hl, ol, cap = sizeof((*err)->msg);
	char *msg;
	va_list ap;

	if (!err || !*err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	/* "<head>: <old>", the old message cut at the end when it no longer fits. */
	msg = (*err)->msg;
	hl = strlen(head);
	ol = strlen(msg);
	if (hl + 2 + ol >= cap)
		ol = cap - 1 - hl - 2;
	memmove(msg + hl + 2, msg, ol);
	msg[hl + 2 + ol] = '\0';
	memcpy(msg, head, hl);
	memcpy(msg + hl, ": ", 2);
	return -1;
}

int kerr_pass(struct kerr **err, struct kerr *e)
{
	if (!err) {
		kerr_free(e);
		return -1;
	}
	kerr_free(*err);
	*err = e;
	return -1;
}

void kerr_free(struct kerr *err)
{
	free(err);
}
