/* kiln error kinds and signature failures to EC2 codes and HTTP statuses, in tables. */
#include "api/errors.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "api/xml.h"
#include "util/str.h"
#include "util/banned.h"

/* The one table from kiln's errors to EC2's codes: a row matches the error's kind, its subject
 * (or any) and the action (or any); the most precise row wins, the subject before the action,
 * and every kind has a row for any subject and action. The message is EC2's wording with the
 * subject's id for %s, or kiln's own message when the row has none. docs/design/errors.md. */
#define ANY_SUBJECT KERR_SUBJECT__COUNT
static const struct ec2_code {
	enum kerr_kind kind;
	unsigned subject;   /* enum kerr_subject, or ANY_SUBJECT */
	const char *action; /* NULL: any */
	const char *code;
	const char *message;
} ec2_codes[] = {
    /* Each kind's default. */
    {KERR_INTERNAL, ANY_SUBJECT, NULL, "InternalError", NULL},
    {KERR_INVALID, ANY_SUBJECT, NULL, "InvalidParameterValue", NULL},
    {KERR_NOT_FOUND, ANY_SUBJECT, NULL, "InvalidParameterValue", NULL},
    {KERR_CONFLICT, ANY_SUBJECT, NULL, "IncorrectState", NULL},
    {KERR_LIMIT, ANY_SUBJECT, NULL, "ResourceLimitExceeded", NULL},
    {KERR_AUTH, ANY_SUBJECT, NULL, "UnauthorizedOperation", NULL},
    {KERR_IO, ANY_SUBJECT, NULL, "InternalError", NULL},
    {KERR_NOSPACE, ANY_SUBJECT, NULL, "InsufficientCapacity", NULL},
    {KERR_CORRUPT, ANY_SUBJECT, NULL, "InternalError", NULL},

    /* By subject, whatever the action. */
    {KERR_NOT_FOUND, KERR_SUBJECT_INSTANCE, NULL, "InvalidInstanceID.NotFound",
     "The instance ID '%s' does not exist"},
    {KERR_NOT_FOUND, KERR_SUBJECT_IMAGE, NULL, "InvalidAMIID.NotFound",
     "The image id '[%s]' does not exist"},
    {KERR_NOT_FOUND, KERR_SUBJECT_SNAPSHOT, NULL, "InvalidSnapshot.NotFound",
     "The snapshot '%s' does not exist."},
    {KERR_NOT_FOUND, KERR_SUBJECT_VOLUME, NULL, "InvalidVolume.NotFound",
     "The volume '%s' does not exist."},
    {KERR_NOT_FOUND, KERR_SUBJECT_KEY_PAIR, NULL, "InvalidKeyPair.NotFound",
     "The key pair '%s' does not exist"},
    {KERR_CONFLICT, KERR_SUBJECT_KEY_PAIR, NULL, "InvalidKeyPair.Duplicate",
     "The keypair '%s' already exists."},
    {KERR_INVALID, KERR_SUBJECT_KEY_MATERIAL, NULL, "InvalidKeyPair.Format", NULL},
    {KERR_INVALID, KERR_SUBJECT_INSTANCE_TYPE, NULL, "InvalidInstanceType",
     "The instance type '%s' does not exist"},
    {KERR_INVALID, KERR_SUBJECT_IMAGE_NAME, NULL, "InvalidAMIName.Malformed",
     "AMI names must be 3 to 128 characters of letters, numbers and ( ) [ ] . / - ' @ _ or "
     "spaces: '%s'"},
    {KERR_INVALID, KERR_SUBJECT_ZONE, NULL, "InvalidZone.NotFound",
     "Invalid availability zone: [%s]"},
    {KERR_INVALID, KERR_SUBJECT_REGION, NULL, "InvalidRegion",
     "The source region '%s' is not served here"},
    {KERR_CONFLICT, KERR_SUBJECT_INSTANCE, NULL, "IncorrectInstanceState", NULL},
    {KERR_CONFLICT, KERR_SUBJECT_IMAGE_NAME, NULL, "InvalidAMIName.Duplicate",
     "AMI name '%s' is already in use by an image you own"},
    {KERR_CONFLICT, KERR_SUBJECT_ATTACHMENT, NULL, "VolumeInUse", NULL},
    {KERR_CONFLICT, KERR_SUBJECT_CLIENT_TOKEN, NULL, "IdempotentParameterMismatch",
     "The client token '%s' was used with other parameters"},
    {KERR_NOT_FOUND, KERR_SUBJECT_LAUNCH_TEMPLATE, NULL, "InvalidLaunchTemplateId.NotFound",
     "The specified launch template, with template ID %s, does not exist."},
    {KERR_NOT_FOUND, KERR_SUBJECT_LAUNCH_TEMPLATE_NAME, NULL,
     "InvalidLaunchTemplateName.NotFoundException",
     "The specified launch template, with template name %s, does not exist."},
    {KERR_NOT_FOUND, KERR_SUBJECT_LAUNCH_TEMPLATE_VERSION, NULL,
     "InvalidLaunchTemplateId.VersionNotFound", NULL},
    {KERR_INVALID, KERR_SUBJECT_LAUNCH_TEMPLATE_NAME, NULL,
     "InvalidLaunchTemplateName.MalformedException", NULL},
    {KERR_CONFLICT, KERR_SUBJECT_LAUNCH_TEMPLATE_NAME, NULL,
     "InvalidLaunchTemplateName.AlreadyExistsException", "Launch template name already in use."},
    {KERR_AUTH, KERR_SUBJECT_IMAGE, NULL, "AuthFailure", "Not authorized for image: %s"},
    {KERR_AUTH, KERR_SUBJECT_VOLUME, NULL, "OperationNotPermitted", NULL},
    {KERR_AUTH, KERR_SUBJECT_INSTANCE, NULL, "OperationNotPermitted", NULL},
    {KERR_LIMIT, KERR_SUBJECT_TAG, NULL, "TagLimitExceeded", NULL},
    {KERR_LIMIT, KERR_SUBJECT_QUOTA_VCPUS, NULL, "VcpuLimitExceeded", NULL},
    {KERR_LIMIT, KERR_SUBJECT_QUOTA_VOLUMES, NULL, "VolumeLimitExceeded", NULL},
    {KERR_LIMIT, KERR_SUBJECT_QUOTA_VOLUME_GIB, NULL, "VolumeLimitExceeded", NULL},
    {KERR_LIMIT, KERR_SUBJECT_QUOTA_SNAPSHOTS, NULL, "SnapshotLimitExceeded", NULL},
    {KERR_LIMIT, KERR_SUBJECT_QUOTA_IMAGES, NULL, "ResourceLimitExceeded", NULL},
    {KERR_NOT_FOUND, KERR_SUBJECT_VPC, NULL, "InvalidVpcID.NotFound",
     "The vpc ID '%s' does not exist"},
    {KERR_CONFLICT, KERR_SUBJECT_VPC, NULL, "DependencyViolation",
     "The vpc '%s' has dependencies and cannot be deleted."},
    {KERR_INVALID, KERR_SUBJECT_VPC_RANGE, NULL, "InvalidVpc.Range", "The CIDR '%s' is invalid."},
    {KERR_CONFLICT, KERR_SUBJECT_DEFAULT_VPC, NULL, "DefaultVpcAlreadyExists", NULL},
    {KERR_NOT_FOUND, KERR_SUBJECT_DEFAULT_VPC, NULL, "VPCIdNotSpecified", NULL},
    {KERR_NOT_FOUND, KERR_SUBJECT_SUBNET, NULL, "InvalidSubnetID.NotFound",
     "The subnet ID '%s' does not exist"},
    {KERR_CONFLICT, KERR_SUBJECT_SUBNET, NULL, "DependencyViolation",
     "The subnet '%s' has dependencies and cannot be deleted."},
    {KERR_INVALID, KERR_SUBJECT_SUBNET_RANGE, NULL, "InvalidSubnet.Range",
     "The CIDR '%s' is invalid."},
    {KERR_CONFLICT, KERR_SUBJECT_SUBNET_RANGE, NULL, "InvalidSubnet.Conflict",
     "The CIDR '%s' conflicts with another subnet"},
    {KERR_NOT_FOUND, KERR_SUBJECT_GROUP, NULL, "InvalidGroup.NotFound",
     "The security group '%s' does not exist"},
    {KERR_CONFLICT, KERR_SUBJECT_GROUP, NULL, "DependencyViolation",
     "resource %s has a dependent object"},
    {KERR_CONFLICT, KERR_SUBJECT_GROUP_NAME, NULL, "InvalidGroup.Duplicate", NULL},
    {KERR_INVALID, KERR_SUBJECT_DEFAULT_GROUP, NULL, "CannotDelete",
     "the specified group: \"%s\" name: \"default\" cannot be deleted by a user"},
    {KERR_CONFLICT, KERR_SUBJECT_PERMISSION, NULL, "InvalidPermission.Duplicate", NULL},
    {KERR_NOT_FOUND, KERR_SUBJECT_PERMISSION, NULL, "InvalidPermission.NotFound", NULL},
    {KERR_INVALID, KERR_SUBJECT_PERMISSION, NULL, "InvalidPermission.Malformed", NULL},
    {KERR_NOT_FOUND, KERR_SUBJECT_GROUP_RULE, NULL, "InvalidSecurityGroupRuleId.NotFound",
     "The security group rule ID '%s' does not exist"},
    {KERR_LIMIT, KERR_SUBJECT_VPC, NULL, "VpcLimitExceeded", NULL},
    {KERR_LIMIT, KERR_SUBJECT_SUBNET, NULL, "SubnetLimitExceeded", NULL},
    {KERR_LIMIT, KERR_SUBJECT_GROUP, NULL, "SecurityGroupLimitExceeded", NULL},
    {KERR_LIMIT, KERR_SUBJECT_PERMISSION, NULL, "RulesPerSecurityGroupLimitExceeded", NULL},
    {KERR_INVALID, KERR_SUBJECT_COMBINATION, NULL, "InvalidParameterCombination", NULL},
    {KERR_INVALID, KERR_SUBJECT_ADDRESS, NULL, "InvalidParameterValue", NULL},
    {KERR_CONFLICT, KERR_SUBJECT_ADDRESS, NULL, "InvalidIPAddress.InUse", "Address %s is in use."},
    {KERR_LIMIT, KERR_SUBJECT_ADDRESS, "RunInstances", "InsufficientFreeAddressesInSubnet", NULL},
    {KERR_INVALID, KERR_SUBJECT_ZONE, "CreateSubnet", "InvalidParameterValue",
     "Value (%s) for parameter availabilityZone is invalid. Subnets can currently only be "
     "created in the following availability zones: see DescribeAvailabilityZones."},

    /* The marketplace (research/marketplace.md: the codes and wording AWS answers). */
    {KERR_AUTH, KERR_SUBJECT_PRODUCT_CODE, NULL, "OptInRequired",
     "In order to use this AWS Marketplace product you need to accept terms and subscribe. To "
     "do so please visit https://aws.amazon.com/marketplace/pp?sku=%s"},
    {KERR_INVALID, KERR_SUBJECT_PRODUCT_CODE, NULL, "UnsupportedOperation",
     "The instance configuration for this AWS Marketplace product is not supported. Please see "
     "http://aws.amazon.com/marketplace/pp?sku=%s for more information about supported "
     "instance types, regions, and operating systems."},
    {KERR_INVALID, KERR_SUBJECT_PRODUCT_IMAGE, NULL, "InvalidParameter", NULL},
    {KERR_INVALID, KERR_SUBJECT_PRODUCT_IMAGE, "ModifyImageAttribute", "InvalidParameter",
     "Images with an AWS Marketplace product code cannot be made public."},

/* The Agreement API and the Metering Service (awsJson): their action is the X-Amz-Target,
 * and a row for "Prefix.*" is a row for each operation of the service. */
#define AGREEMENT "AWSMPCommerceService_v20200301.*"
#define METERING  "AWSMPMeteringService.*"
    {KERR_INTERNAL, ANY_SUBJECT, AGREEMENT, "InternalServerException", NULL},
    {KERR_IO, ANY_SUBJECT, AGREEMENT, "InternalServerException", NULL},
    {KERR_INVALID, ANY_SUBJECT, AGREEMENT, "ValidationException", NULL},
    {KERR_NOT_FOUND, ANY_SUBJECT, AGREEMENT, "ResourceNotFoundException", NULL},
    {KERR_CONFLICT, ANY_SUBJECT, AGREEMENT, "ConflictException", NULL},
    {KERR_LIMIT, ANY_SUBJECT, AGREEMENT, "ServiceQuotaExceededException", NULL},
    {KERR_AUTH, ANY_SUBJECT, AGREEMENT, "AccessDeniedException", NULL},
    {KERR_INTERNAL, ANY_SUBJECT, METERING, "InternalServiceErrorException", NULL},
    {KERR_IO, ANY_SUBJECT, METERING, "InternalServiceErrorException", NULL},
    {KERR_INVALID, ANY_SUBJECT, METERING, "ValidationException", NULL},
    {KERR_NOT_FOUND, ANY_SUBJECT, METERING, "ValidationException", NULL},
    {KERR_NOT_FOUND, KERR_SUBJECT_PRODUCT_CODE, METERING, "InvalidProductCodeException",
     "The product code passed does not match the product code used for publishing the "
     "product: %s"},
    {KERR_AUTH, KERR_SUBJECT_PRODUCT_CODE, METERING, "CustomerNotEntitledException", NULL},
    {KERR_INVALID, KERR_SUBJECT_USAGE_DIMENSION, METERING, "InvalidUsageDimensionException", NULL},
    {KERR_INVALID, KERR_SUBJECT_USAGE_TIME, METERING, "TimestampOutOfBoundsException", NULL},
    {KERR_INVALID, KERR_SUBJECT_USAGE_ALLOCATION, METERING, "InvalidUsageAllocationsException",
     NULL},
    {KERR_CONFLICT, KERR_SUBJECT_USAGE_RECORD, METERING, "DuplicateRequestException", NULL},
    {KERR_INVALID, KERR_SUBJECT_REGION, METERING, "InvalidEndpointRegionException", NULL},
    {KERR_NOT_FOUND, KERR_SUBJECT_INSTANCE, METERING, "CustomerNotEntitledException", NULL},
#undef AGREEMENT
#undef METERING

    /* Where an action names the same error otherwise. */
    {KERR_NOT_FOUND, ANY_SUBJECT, "RunInstances", "InvalidAMIID.NotFound", NULL},
    {KERR_INVALID, KERR_SUBJECT_ZONE, "RunInstances", "InvalidParameterValue",
     "Invalid availability zone: [%s]"},
    {KERR_CONFLICT, ANY_SUBJECT, "RunInstances", "InvalidAMIID.Unavailable", NULL},
    {KERR_CONFLICT, KERR_SUBJECT_IMAGE, "RunInstances", "InvalidAMIID.Unavailable", NULL},
    {KERR_LIMIT, ANY_SUBJECT, "RunInstances", "InsufficientInstanceCapacity", NULL},
    /* A full disk: the host's capacity, as EC2 says it. */
    {KERR_NOSPACE, ANY_SUBJECT, "RunInstances", "InsufficientInstanceCapacity", NULL},
    {KERR_NOSPACE, ANY_SUBJECT, "StartInstances", "InsufficientInstanceCapacity", NULL},
    {KERR_NOSPACE, ANY_SUBJECT, "CreateVolume", "InsufficientVolumeCapacity", NULL},
    {KERR_INVALID, KERR_SUBJECT_INSTANCE_TYPE, "RunInstances", "InvalidParameterValue",
     "Invalid value '%s' for InstanceType."},
    {KERR_INVALID, ANY_SUBJECT, "ModifyInstanceAttribute", "InvalidInstanceAttributeValue", NULL},
    {KERR_INVALID, KERR_SUBJECT_INSTANCE_TYPE, "ModifyInstanceAttribute",
     "InvalidInstanceAttributeValue", "The instance type '%s' does not exist"},
    {KERR_AUTH, KERR_SUBJECT_IMAGE, "DeregisterImage", "AuthFailure",
     "You do not own the image '%s'"},
    {KERR_NOT_FOUND, ANY_SUBJECT, "RegisterImage", "InvalidSnapshot.NotFound", NULL},
    {KERR_AUTH, ANY_SUBJECT, "RegisterImage", "OperationNotPermitted", NULL},
    {KERR_LIMIT, ANY_SUBJECT, "RegisterImage", "InvalidParameterValue", NULL},
    {KERR_NOT_FOUND, ANY_SUBJECT, "CreateImage", "InvalidInstanceID.NotFound", NULL},
    {KERR_INVALID, ANY_SUBJECT, "CreateImage", "InvalidAMIName.Malformed", NULL},
    {KERR_CONFLICT, ANY_SUBJECT, "CreateImage", "IncorrectInstanceState", NULL},
    {KERR_AUTH, ANY_SUBJECT, "CreateImage", "OperationNotPermitted", NULL},
    {KERR_LIMIT, ANY_SUBJECT, "CreateImage", "InvalidParameterValue", NULL},
    {KERR_NOT_FOUND, ANY_SUBJECT, "CopyImage", "InvalidAMIID.NotFound", NULL},
    {KERR_INVALID, ANY_SUBJECT, "CopyImage", "InvalidRegion", NULL},
    {KERR_AUTH, ANY_SUBJECT, "CopyImage", "OperationNotPermitted", NULL},
    {KERR_LIMIT, ANY_SUBJECT, "CopyImage", "InvalidParameterValue", NULL},
    {KERR_INVALID, ANY_SUBJECT, "CopySnapshot", "InvalidRegion", NULL},
    {KERR_NOT_FOUND, ANY_SUBJECT, "CreateSnapshot", "InvalidVolume.NotFound", NULL},
    {KERR_CONFLICT, ANY_SUBJECT, "DeleteSnapshot", "InvalidSnapshot.InUse", NULL},
    {KERR_CONFLICT, KERR_SUBJECT_SNAPSHOT, "DeleteSnapshot", "InvalidSnapshot.InUse", NULL},
    {KERR_INVALID, KERR_SUBJECT_ZONE, "AttachVolume", "InvalidVolume.ZoneMismatch", NULL},
};

/* Codes whose status is not 400 (AWS's errors-overview; botocore retries 5xx, so only the
 * server's own failures are 5xx). */
static const struct {
	const char *code;
	int status;
} code_status[] = {
    {"AuthFailure", 401},
    {"MissingAuthenticationToken", 401},
    {"OptInRequired", 401},
    {"SignatureDoesNotMatch", 403},
    {"UnauthorizedOperation", 403},
    {"Blocked", 403},
    {"DryRunOperation", 412},
    {"RequestEntityTooLarge", 413},
    {"InternalError", 500},
    {"InsufficientCapacity", 500},
    {"InsufficientInstanceCapacity", 500},
    {"Unavailable", 503},
    {"InsufficientVolumeCapacity", 500},
    {"ServiceUnavailable", 503},
    {"RequestLimitExceeded", 503},
    {"InternalServerException", 500},
    {"InternalServiceErrorException", 500},
    {"InternalFailure", 500},
};

/* Signature failures as each service tells them: EC2's codes, and STS's (as botocore and the
 * aws CLI see them from sts.amazonaws.com). */
static const struct {
	const char *code;
	int status;
} sigv4_map[API_PROTOCOL__COUNT][API_SIGV4__COUNT] = {
    [API_PROTOCOL_EC2] =
        {
            [API_SIGV4_OK] = {"InternalError", 500}, /* not an error: a caller bug */
            [API_SIGV4_MISSING] = {"MissingAuthenticationToken", 401},
            [API_SIGV4_INCOMPLETE] = {"IncompleteSignature", 400},
            [API_SIGV4_MALFORMED] = {"AuthFailure", 401},
            [API_SIGV4_UNKNOWN_KEY] = {"AuthFailure", 401},
            [API_SIGV4_MISMATCH] = {"SignatureDoesNotMatch", 403},
            [API_SIGV4_EXPIRED] = {"RequestExpired", 400},
            [API_SIGV4_INTERNAL] = {"InternalError", 500},
            [API_SIGV4_TOKEN_INVALID] = {"AuthFailure", 401},
            [API_SIGV4_TOKEN_EXPIRED] = {"RequestExpired", 400},
        },
    [API_PROTOCOL_STS] =
        {
            [API_SIGV4_OK] = {"InternalFailure", 500},
            [API_SIGV4_MISSING] = {"MissingAuthenticationToken", 403},
            [API_SIGV4_INCOMPLETE] = {"IncompleteSignature", 400},
            [API_SIGV4_MALFORMED] = {"IncompleteSignature", 400},
            [API_SIGV4_UNKNOWN_KEY] = {"InvalidClientTokenId", 403},
            [API_SIGV4_MISMATCH] = {"SignatureDoesNotMatch", 403},
            [API_SIGV4_EXPIRED] = {"SignatureDoesNotMatch", 403},
            [API_SIGV4_INTERNAL] = {"InternalFailure", 500},
            [API_SIGV4_TOKEN_INVALID] = {"InvalidClientTokenId", 403},
            [API_SIGV4_TOKEN_EXPIRED] = {"ExpiredToken", 400},
        },
    [API_PROTOCOL_JSON] =
        {
            [API_SIGV4_OK] = {"InternalFailure", 500},
            [API_SIGV4_MISSING] = {"MissingAuthenticationTokenException", 403},
            [API_SIGV4_INCOMPLETE] = {"IncompleteSignatureException", 400},
            [API_SIGV4_MALFORMED] = {"IncompleteSignatureException", 400},
            [API_SIGV4_UNKNOWN_KEY] = {"UnrecognizedClientException", 403},
            [API_SIGV4_MISMATCH] = {"InvalidSignatureException", 403},
            [API_SIGV4_EXPIRED] = {"InvalidSignatureException", 403},
            [API_SIGV4_INTERNAL] = {"InternalFailure", 500},
            [API_SIGV4_TOKEN_INVALID] = {"UnrecognizedClientException", 403},
            [API_SIGV4_TOKEN_EXPIRED] = {"ExpiredTokenException", 400},
        },
};

int api_error_status_of(const char *code)
{
	for (size_t i = 0; i < sizeof(code_status) / sizeof(code_status[0]); i++)
		if (!strcmp(code_status[i].code, code))
			return code_status[i].status;
	return 400;
}

/* A row's action: the action's name, or "Prefix.*" for every "Prefix.Operation". */
static bool action_matches(const char *row, const char *action)
{
	size_t n = strlen(row);

	if (!action)
		return false;
	if (n >= 2 && !strcmp(row + n - 2, ".*"))
		return !strncmp(row, action, n - 1);
	return !strcmp(row, action);
}

/* The row for an error of kind about subject in action (NULL: no action's own rows). */
static const struct ec2_code *ec2_code_of(enum kerr_kind kind, enum kerr_subject subject,
                                          const char *action)
{
	const struct ec2_code *best = NULL;
	int best_score = -1;

	if ((unsigned)kind >= KERR__COUNT)
		kind = KERR_INTERNAL;
	for (size_t i = 0; i < sizeof(ec2_codes) / sizeof(ec2_codes[0]); i++) {
		const struct ec2_code *r = &ec2_codes[i];
		int score;

		if (r->kind != kind || (r->subject != ANY_SUBJECT && r->subject != subject) ||
		    (r->action && !action_matches(r->action, action)))
			continue;
		score = (r->subject != ANY_SUBJECT ? 2 : 0) + (r->action ? 1 : 0);
		if (score > best_score) {
			best = r;
			best_score = score;
		}
	}
	return best; /* never NULL: every kind has its default row */
}

const char *api_error_code_of_kind(enum kerr_kind kind, int *status)
{
	const char *code = ec2_code_of(kind, KERR_SUBJECT_NONE, NULL)->code;

	if (status)
		*status = api_error_status_of(code);
	return code;
}

__attribute__((format(printf, 4, 0))) static void
verror(struct api_error *e, int status, const char *code, const char *fmt, va_list ap)
{
	e->status = status;
	e->has_cause = false;
	str_copy(e->code, code, sizeof(e->code));
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
}

void api_error_set(struct api_error *e, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(e, api_error_status_of(code), code, fmt, ap);
	va_end(ap);
}

void api_error_full(struct api_error *e, int status, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(e, status, code, fmt, ap);
	va_end(ap);
}

void api_error_from_kerr(struct api_error *e, const struct kerr *k, const char *code)
{
	const char *msg = k ? k->msg : "an internal error has occurred";

	if (!code)
		code = api_error_code_of_kind(k ? k->kind : KERR_INTERNAL, NULL);
	api_error_set(e, code, "%s", msg);
}

/* EC2's wording of a row with the subject's id in place of its one %s. */
static void format_message(struct api_error *e, const char *wording, const char *id)
{
	const char *at = strstr(wording, "%s");

	if (!at)
		at = wording + strlen(wording);
	snprintf(e->message, sizeof(e->message), "%.*s%s%s", (int)(at - wording), wording,
	         *at ? id : "", *at ? at + 2 : "");
}

void api_error_from_cloud(struct api_error *e, const char *action, const struct kerr *k)
{
	const struct ec2_code *r;

	if (!k) {
		api_error_from_kerr(e, NULL, NULL);
		return;
	}
	r = ec2_code_of(k->kind, k->subject, action);
	if (r->message && k->id[0]) {
		/* The row's wording takes the subject's id, and only that. */
		e->status = api_error_status_of(r->code);
		e->has_cause = false;
		str_copy(e->code, r->code, sizeof(e->code));
		format_message(e, r->message, k->id);
		return;
	}
	api_error_set(e, r->code, "%s", k->msg);
}

void api_error_from_sigv4(struct api_error *e, enum api_sigv4_status s, const struct kerr *k)
{
	unsigned p = (unsigned)e->protocol < API_PROTOCOL__COUNT ? e->protocol : API_PROTOCOL_EC2;

	if ((unsigned)s >= API_SIGV4__COUNT)
		s = API_SIGV4_OK;
	api_error_full(e, sigv4_map[p][s].status, sigv4_map[p][s].code, "%s",
	               k ? k->msg : api_sigv4_status_name(s));
}

void api_error_invalid_action(struct api_error *e, const char *action)
{
	api_error_full(e, 400, "InvalidAction",
	               "The action %.128s is not valid for this web service.", action);
}

void api_error_missing_parameter(struct api_error *e, const char *name)
{
	api_error_full(e, 400, "MissingParameter", "The request must contain the parameter %.128s",
	               name);
}

void api_error_dry_run(struct api_error *e)
{
	api_error_full(e, 412, "DryRunOperation",
	               "Request would have succeeded, but DryRun flag is set.");
}

/* awsJson's error document: {"__type": code, "message": message}. */
static int json_error(const struct api_error *e, struct buf *out, struct kerr **err)
{
	json_t *doc = json_pack("{s:s, s:s}", "__type", e->code, "message", e->message);
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;

	json_decref(doc);
	if (!text)
		return kerr_set(err, KERR_INTERNAL, "cannot write the error document");
	buf_addstr(out, text);
	free(text);
	return 0;
}

int api_error_render(const struct api_error *e, const char *request_id, struct buf *out,
                     struct kerr **err)
{
	if (e->protocol == API_PROTOCOL_JSON)
		return json_error(e, out, err);
	if (e->protocol == API_PROTOCOL_STS)
		return api_xml_query_error(out, API_STS_NAMESPACE, e->status, e->code, e->message,
		                           request_id, err);
	return api_xml_error_cause(out, e->code, e->message, e->has_cause ? &e->cause : NULL,
	                           request_id, err);
}
