/* The iam/ documents of the instance metadata service, in EC2's layout (two-space indent,
 * " : " between name and value, times to the second in UTC). */
#include "api/instance_credentials.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/banned.h"

/* "YYYY-MM-DDTHH:MM:SSZ" */
static int format_time(int64_t unix_ms, char out[21], struct kerr **err)
{
	time_t secs = (time_t)(unix_ms / 1000);
	struct tm tm;

	if (unix_ms < 0 || !gmtime_r(&secs, &tm) ||
	    strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) != 20)
		return kerr_set(err, KERR_INTERNAL, "cannot format the time %lld ms",
		                (long long)unix_ms);
	return 0;
}

/* name and value as one member, a comma before it unless first; the value escaped. */
static void member(struct buf *out, bool first, const char *name, const char *value)
{
	buf_addf(out, "%s  \"%s\" : \"", first ? "{\n" : ",\n", name);
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_addf(out, "\\%c", *p);
		else if (*p < 0x20)
			buf_addf(out, "\\u%04x", *p);
		else
			buf_addf(out, "%c", *p);
	}
	buf_addstr(out, "\"");
}

int api_iam_info_json(const struct instance_credentials *c, struct buf *out, struct kerr **err)
{
	char updated[21], arn[IAM_PROFILE_NAME_MAX + 64];

	cloud_instance_profile_arn(c->owner, c->profile, arn, sizeof(arn));
	if (format_time(c->issued_ms, updated, err) < 0)
		return -1;
	member(out, true, "Code", "Success");
	member(out, false, "LastUpdated", updated);
	member(out, false, "InstanceProfileArn", arn);
	member(out, false, "InstanceProfileId", c->profile_id);
	buf_addstr(out, "\n}");
	return 0;
}

int api_iam_credentials_json(const struct instance_credentials *c, struct buf *out,
                             struct kerr **err)
{
	char updated[21], expires[21];

	if (format_time(c->issued_ms, updated, err) < 0 ||
	    format_time(c->expires_ms, expires, err) < 0)
		return -1;
	member(out, true, "Code", "Success");
	member(out, false, "LastUpdated", updated);
	member(out, false, "Type", "AWS-HMAC");
	member(out, false, "AccessKeyId", c->access_key);
	member(out, false, "SecretAccessKey", c->secret);
	member(out, false, "Token", c->token);
	member(out, false, "Expiration", expires);
	buf_addstr(out, "\n}");
	return 0;
}
