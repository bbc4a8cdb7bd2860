/* CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPair. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "server.h"
#include "util/cleanup.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define PUBLIC_KEY_MATERIAL_MAX (16 << 10) /* decoded: a 16384-bit RSA key line fits */

static void write_key_pair(struct api_xml *x, const void *item, const struct tag_set *tags)
{
	const struct key_pair *k = item;

	api_xml_elem(x, "keyPairId", k->id);
	api_xml_elem(x, "keyFingerprint", k->fingerprint);
	api_xml_elem(x, "keyName", k->name);
	api_xml_elem(x, "keyType", k->type);
	if (tags)
		api_write_tag_set(x, tags, k->id);
	if (k->public_key[0]) /* only with IncludePublicKey */
		api_xml_elem(x, "publicKey", k->public_key);
	api_xml_time(x, "createTime", k->create_ms);
}

/* The members CreateKeyPair and ImportKeyPair answer. */
static int write_made(struct api_call *c, const struct key_pair *k, const char *material,
                      struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct tag_set set = {0};

	if (cloud_tags_list(c->cloud, c->account.id, c->region, &set, &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	api_xml_elem(c->xml, "keyName", k->name);
	api_xml_elem(c->xml, "keyFingerprint", k->fingerprint);
	if (material)
		api_xml_elem(c->xml, "keyMaterial", material);
	api_xml_elem(c->xml, "keyPairId", k->id);
	api_write_tag_set(c->xml, &set, k->id);
	tag_set_release(&set);
	return 0;
}

int api_create_key_pair(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ struct tag *tags = NULL;
	_cleanup_free_ struct key_pair *k = xmalloc(sizeof(*k));
	_cleanup_free_ char *material = NULL;
	struct key_pair_request req = {.region = c->region};
	int r;

	req.name = api_node_str(&c->root, "KeyName");
	req.type = api_node_str(&c->root, "KeyType");
	req.format = api_node_str(&c->root, "KeyFormat");
	if (api_call_tag_specs(c, "key-pair", &tags, &req.ntags, e) < 0)
		return -1;
	req.tags = tags;
	if (cloud_key_pair_create(c->cloud, c->account.id, &req, k, &material, &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	r = write_made(c, k, material, e);
	OPENSSL_cleanse(material, strlen(material));
	return r;
}

/* PublicKeyMaterial is a blob: base64 on the wire (boto3 and the aws CLI encode it). */
static int material_decode(const char *b64, uint8_t **out, size_t *n, struct api_error *e)
{
	size_t len = strlen(b64);
	int got;

	if (len > (PUBLIC_KEY_MATERIAL_MAX / 3 + 1) * 4) {
		api_error_set(e, "InvalidKeyPair.Format", "The public key is longer than %d bytes",
		              PUBLIC_KEY_MATERIAL_MAX);
		return -1;
	}
	*out = xmalloc(len / 4 * 3 + 3);
	got = EVP_DecodeBlock(*out, (const unsigned char *)b64, (int)len);
	if (got < 0 || len % 4) {
		free(*out);
		*out = NULL;
		api_error_set(e, "InvalidKeyPair.Format",
		              "Invalid BASE64 encoding of the public key material");
		return -1;
	}
	while (len && b64[len - 1] == '=' && got > 0) { /* the padding counted as data */
		len--;
		got--;
	}
	*n = (size_t)got;
	return 0;
}

int api_import_key_pair(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ struct tag *tags = NULL;
	_cleanup_free_ struct key_pair *k = xmalloc(sizeof(*k));
	_cleanup_free_ uint8_t *material = NULL;
	struct key_pair_request req = {.region = c->region};

	req.name = api_node_str(&c->root, "KeyName");
	if (material_decode(api_node_str(&c->root, "PublicKeyMaterial"), &material,
	                    &req.material_len, e) < 0 ||
	    api_call_tag_specs(c, "key-pair", &tags, &req.ntags, e) < 0)
		return -1;
	req.material = material;
	req.tags = tags;
	if (cloud_key_pair_import(c->cloud, c->account.id, &req, k, &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	return write_made(c, k, NULL, e);
}

static const struct api_filter_field key_pair_fields[] = {
    API_FIELD_TEXT_OF("key-pair-id", struct key_pair, id),
    API_FIELD_TEXT_OF("key-name", struct key_pair, name),
    API_FIELD_TEXT_OF("fingerprint", struct key_pair, fingerprint),
    API_FIELD_TEXT_OF("key-type", struct key_pair, type),
};

/* The caller's key pairs; every KeyName.N must be one (InvalidKeyPair.NotFound), and the public
 * keys are blanked unless IncludePublicKey asks for them. */
static int load_key_pairs(struct api_call *c, void **items, size_t *n, struct kerr **err)
{
	_cleanup_free_ const char **names = NULL;
	size_t nnames = api_node_strings(&c->root, "KeyName", &names);
	struct key_pair *v;
	bool include = false;

	if (api_node_bool(&c->root, "IncludePublicKey", &include, err) < 0)
		return -1;
	if (cloud_key_pairs_list(c->cloud, c->account.id, c->region, &v, n, err) < 0)
		return -1;
	for (size_t i = 0; i < nnames; i++) {
		bool found = false;
		for (size_t k = 0; k < *n && !found; k++)
			found = !strcmp(v[k].name, names[i]);
		if (!found) {
			free(v);
			return kerr_about(err, KERR_NOT_FOUND, KERR_SUBJECT_KEY_PAIR, names[i],
			                  "key pair '%s' not found", names[i]);
		}
	}
	for (size_t k = 0; k < *n && !include; k++)
		v[k].public_key[0] = '\0';
	*items = v;
	return 0;
}

static bool keep_named(struct api_call *c, const void *item, void *ctx)
{
	_cleanup_free_ const char **names = NULL;
	size_t n = api_node_strings(&c->root, "KeyName", &names);

	(void)ctx;
	return api_selected(names, n, ((const struct key_pair *)item)->name);
}

int api_describe_key_pairs(struct api_call *c, struct api_error *e)
{
	const struct api_list l = {
	    .id_param = "KeyPairId",
	    .prefix = "key",
	    .max_results = 1000,
	    .set = "keySet",
	    .not_found_code = "InvalidKeyPair.NotFound",
	    .noun = "key pair",
	    .fields = key_pair_fields,
	    .nfields = ARRAY_SIZE(key_pair_fields),
	    .size = sizeof(struct key_pair),
	    .load = load_key_pairs,
	    .keep = keep_named,
	    .write = write_key_pair,
	};

	return api_describe_list(c, &l, e);
}

int api_delete_key_pair(struct api_call *c, struct api_error *e)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *name = api_node_str(&c->root, "KeyName"),
	           *id = api_node_str(&c->root, "KeyPairId");
	char deleted[ID_MAX];

	if (!name && !id) {
		api_error_missing_parameter(e, "KeyName");
		return -1;
	}
	if (cloud_key_pair_delete(c->cloud, c->account.id, c->region, name, id, deleted, &err) < 0)
		return api_error_from_cloud(e, c->action, err), -1;
	api_xml_bool(c->xml, "return", true);
	if (deleted[0])
		api_xml_elem(c->xml, "keyPairId", deleted);
	return 0;
}
