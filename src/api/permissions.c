/* The grantee lists of ModifySnapshotAttribute (createVolumePermission) and
 * ModifyImageAttribute (launchPermission). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server.h"
#include "util/cleanup.h"
#include "util/xalloc.h"
#include "util/banned.h"

/* A grantee: "all" or a 12-digit account id. */
static bool grantee_valid(const char *g)
{
	if (!strcmp(g, "all"))
		return true;
	if (strlen(g) != ACCOUNT_ID_LEN)
		return false;
	for (const char *p = g; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

int api_call_grantees(struct api_call *c, const char *attribute, const char *op, const char ***out,
                      size_t *n, struct api_error *e)
{
	const char *type = api_node_str(&c->root, "OperationType");
	char list[64];
	size_t count;

	snprintf(list, sizeof(list), "%s.%s", attribute, op);
	count = api_node_count(&c->root, list);
	*out = xcalloc(count + 32, sizeof(**out));
	*n = 0;
	for (size_t i = 1; i <= count; i++) {
		struct api_node item;
		const char *user, *group;

		api_node_item(&c->root, list, i, &item);
		user = api_node_str(&item, "UserId");
		group = api_node_str(&item, "Group");
		if (user || group)
			(*out)[(*n)++] = user ? user : group;
	}
	if (type && !strcasecmp(type, op)) {
		_cleanup_free_ const char **users = NULL, **groups = NULL;
		size_t nu = api_node_strings(&c->root, "UserId", &users),
		       ng = api_node_strings(&c->root, "UserGroup", &groups);
		*out = xreallocarray(*out, *n + nu + ng + 1, sizeof(**out));
		for (size_t i = 0; i < nu; i++)
			(*out)[(*n)++] = users[i];
		for (size_t i = 0; i < ng; i++)
			(*out)[(*n)++] = groups[i];
	}
	for (size_t i = 0; i < *n; i++)
		if (!grantee_valid((*out)[i])) {
			api_error_set(e, "InvalidUserID.Malformed",
			              "User ID '%s' is not a valid account id or the group 'all'",
			              (*out)[i]);
			return -1;
		}
	return 0;
}
