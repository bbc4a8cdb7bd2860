/* STS's GetCallerIdentity: who signed the request. An account's own keys are its root user
 * (kiln's accounts have no IAM users); an instance's temporary credentials are the role session
 * of its instance profile, named after the instance, as EC2's are. Every other STS action is
 * InvalidAction: kiln has no IAM, so no role to assume and no token to federate. */
#include "api/sts.h"

#include <stdio.h>
#include <string.h>

#include "util/banned.h"

static int get_caller_identity(struct api_call *c, struct api_error *e)
{
	const struct key_session *s = &c->session;
	char arn[IAM_PROFILE_NAME_MAX + 128], user_id[IAM_PROFILE_ID_LEN + 64];

	(void)e;
	if (s->instance[0]) {
		/* The role's id is IAM's AROA… beside the profile's AIPA…, with the same tail. */
		snprintf(arn, sizeof(arn), "arn:aws:sts::%s:assumed-role/%s/%s", c->account.id,
		         s->profile, s->instance);
		snprintf(user_id, sizeof(user_id), "AROA%s:%s",
		         strlen(s->profile_id) > 4 ? s->profile_id + 4 : "", s->instance);
	} else {
		snprintf(arn, sizeof(arn), "arn:aws:iam::%s:root", c->account.id);
		snprintf(user_id, sizeof(user_id), "%s", c->account.id);
	}
	api_xml_elem(c->xml, "Arn", arn);
	api_xml_elem(c->xml, "UserId", user_id);
	api_xml_elem(c->xml, "Account", c->account.id);
	return 0;
}

const struct api_action api_sts_actions[] = {
    {.name = "GetCallerIdentity", .fn = get_caller_identity, .flags = API_READ},
};
const size_t api_sts_actions_count = sizeof(api_sts_actions) / sizeof(api_sts_actions[0]);

void api_sts_begin(struct api_xml *x, const char *action, const char *request_id)
{
	char result[API_XML_NAME_MAX + 1];

	(void)request_id;
	snprintf(result, sizeof(result), "%.100sResult", action);
	api_xml_begin_query(x, action, API_STS_NAMESPACE);
	api_xml_open(x, result);
}

void api_sts_end(struct api_xml *x, const char *action, const char *request_id)
{
	(void)action;
	api_xml_close(x);
	api_xml_open(x, "ResponseMetadata");
	api_xml_elem(x, "RequestId", request_id);
	api_xml_close(x);
}
