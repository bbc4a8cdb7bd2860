/* kiln key create|import|ls|rm, and kiln ssh: key pairs through the API, their private keys
 * kept where kiln ssh finds them again, and a login to an instance with its key pair. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cli.h"
#include "remote.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define USAGE_KEY                                                                                  \
	"kiln key create NAME [--type rsa|ed25519] [--save FILE]\n"                                \
	"       kiln key import NAME PUBLIC_KEY_FILE\n"                                            \
	"       kiln key ls\n"                                                                     \
	"       kiln key rm NAME\n"                                                                \
	"       (each with " REMOTE_USAGE ")"
#define USAGE_SSH  "kiln ssh INSTANCE [--user USER] [--identity FILE] [-- COMMAND...] " REMOTE_USAGE
#define LOGIN_USER "admin" /* of kiln's debian image, as in Debian's own cloud images */

static const struct table_col key_cols[] = {
    {"NAME", "name", TABLE_STRING},
    {"TYPE", "type", TABLE_STRING},
    {"FINGERPRINT", "fingerprint", TABLE_STRING},
    {"ID", "id", TABLE_STRING},
};

/* Where kiln keeps private keys: $KILN_KEYS, else ~/.ssh/kiln; malloc'd. */
static char *keys_dir(void)
{
	const char *d = getenv("KILN_KEYS"), *home = getenv("HOME");

	if (d && *d)
		return xstrdup(d);
	return xasprintf("%s/.ssh/kiln", home && *home ? home : "/root");
}

/* The private key of key pair name in region: DIR/REGION/NAME.pem; malloc'd. */
static char *key_file(const char *region, const char *name)
{
	_cleanup_free_ char *dir = keys_dir();

	return xasprintf("%s/%s/%s.pem", dir, region, name);
}

/* Write the private key, 0600, in a 0700 directory; never over an existing file. */
static int save_key(const char *path, const char *material, struct kerr **err)
{
	_cleanup_free_ char *dir = xstrdup(path);
	_cleanup_close_ int fd = -1;
	size_t len = strlen(material);

	*strrchr(dir, '/') = '\0';
	if (fs_mkdir_p(dir, 0700, err) < 0)
		return -1;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return kerr_errno(err, errno, "cannot save the private key to '%s'", path);
	if (write(fd, material, len) != (ssize_t)len ||
	    (len && material[len - 1] != '\n' && write(fd, "\n", 1) != 1) || fsync(fd) < 0) {
		unlink(path);
		return kerr_errno(err, errno, "cannot save the private key to '%s'", path);
	}
	return 0;
}

static void key_row(struct table *t, const struct xml_node *k)
{
	table_add(t, xml_text(k, "keyName", ""), xml_text(k, "keyType", ""),
	          xml_text(k, "keyFingerprint", ""), xml_text(k, "keyPairId", ""));
}

static int key_create(struct api_client *cl, const struct remote_opts *ro, const char *name,
                      const char *type, const char *save)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ char *path = save ? xstrdup(save) : key_file(api_client_region(cl), name);
	struct xml_node *doc;
	struct api_args a;
	struct table t;

	/* Before the key pair exists: a file in the way would lose its private key. */
	if (access(path, F_OK) == 0) {
		fprintf(stderr, "kiln: '%s' exists already (give --save FILE)\n", path);
		return 1;
	}
	api_args_init(&a, "CreateKeyPair");
	api_args_add(&a, "KeyName", name);
	if (type)
		api_args_add(&a, "KeyType", type);
	if (remote_call(cl, &a, &doc) < 0) {
		api_args_release(&a);
		return 1;
	}
	api_args_release(&a);
	if (save_key(path, xml_text(doc, "keyMaterial", ""), &err) < 0) {
		/* Its private key is lost: the key pair goes too. */
		api_args_init(&a, "DeleteKeyPair");
		api_args_add(&a, "KeyName", name);
		xml_free(doc);
		if (remote_call(cl, &a, &doc) == 0)
			xml_free(doc);
		api_args_release(&a);
		return cli_fail(err);
	}
	/* CreateKeyPair's answer has no type: the one asked for (rsa unless said). */
	table_init(&t, key_cols, ARRAY_SIZE(key_cols));
	table_add(&t, xml_text(doc, "keyName", ""), type ? type : "rsa",
	          xml_text(doc, "keyFingerprint", ""), xml_text(doc, "keyPairId", ""));
	table_print(&t, ro->format);
	table_release(&t);
	if (ro->format == REMOTE_TABLE)
		printf("private key: %s\n", path);
	xml_free(doc);
	return 0;
}

static int key_import(struct api_client *cl, const struct remote_opts *ro, const char *name,
                      const char *file)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ uint8_t *data = NULL;
	_cleanup_free_ char *b64 = NULL;
	struct xml_node *doc;
	struct api_args a;
	struct table t;
	size_t len;

	if (fs_read_file(AT_FDCWD, file, 16 << 10, &data, &len, &err) < 0)
		return cli_fail(err);
	b64 = xmalloc((len + 2) / 3 * 4 + 1);
	EVP_EncodeBlock((unsigned char *)b64, data, (int)len);
	api_args_init(&a, "ImportKeyPair");
	api_args_add(&a, "KeyName", name);
	api_args_add(&a, "PublicKeyMaterial", b64);
	if (remote_call(cl, &a, &doc) < 0) {
		api_args_release(&a);
		return 1;
	}
	api_args_release(&a);
	table_init(&t, key_cols, ARRAY_SIZE(key_cols));
	key_row(&t, doc);
	table_print(&t, ro->format);
	table_release(&t);
	xml_free(doc);
	return 0;
}

static int key_list(struct api_client *cl, const struct remote_opts *ro)
{
	const struct xml_node *k;
	struct xml_node *doc;
	struct api_args a;
	struct table t;

	api_args_init(&a, "DescribeKeyPairs");
	if (remote_call(cl, &a, &doc) < 0) {
		api_args_release(&a);
		return 1;
	}
	api_args_release(&a);
	table_init(&t, key_cols, ARRAY_SIZE(key_cols));
	for (size_t i = 0; (k = xml_item(doc, "keySet", i)); i++)
		key_row(&t, k);
	table_print(&t, ro->format);
	table_release(&t);
	xml_free(doc);
	return 0;
}

static int key_remove(struct api_client *cl, const char *name)
{
	_cleanup_free_ char *path = key_file(api_client_region(cl), name);
	struct xml_node *doc;
	struct api_args a;

	api_args_init(&a, "DeleteKeyPair");
	api_args_add(&a, "KeyName", name);
	if (remote_call(cl, &a, &doc) < 0) {
		api_args_release(&a);
		return 1;
	}
	api_args_release(&a);
	xml_free(doc);
	/* The private key kiln kept for it: instances launched with it still take it. */
	if (access(path, F_OK) == 0)
		fprintf(stderr,
		        "kiln: the private key stays in '%s' for the instances that have it\n",
		        path);
	return 0;
}

int cmd_key(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct remote_opts ro = {0};
	const char *type = NULL, *save = NULL;
	const struct cli_option opts[] = {
	    OPT_STRING("type", "rsa|ed25519", &type, "create: the key's type (rsa)"),
	    OPT_STRING("save", "FILE", &save, "create: where the private key goes"),
	    OPT_REMOTE(&ro),
	    OPT_EXAMPLE("kiln key create mykey --type ed25519"),
	    OPT_EXAMPLE("kiln key import laptop ~/.ssh/id_ed25519.pub"),
	    OPT_EXAMPLE("kiln key ls --region eu-west-1"),
	    OPT_END(),
	};
	static const struct {
		const char *name;
		int nargs;
	} subs[] = {{"create", 1}, {"import", 2}, {"ls", 0}, {"rm", 1}};
	struct api_client *cl = NULL;
	size_t k;
	int n, r;

	n = cli_parse_options(argc, argv, opts, USAGE_KEY, 0);
	for (k = 0; n >= 1 && k < ARRAY_SIZE(subs) && strcmp(argv[1], subs[k].name); k++)
		;
	if (n < 1 || k == ARRAY_SIZE(subs))
		return cli_usage(USAGE_KEY, "'key' takes create, import, ls or rm");
	if (n - 1 != subs[k].nargs)
		return cli_usage(USAGE_KEY, "'key %s' takes %d argument%s", subs[k].name,
		                 subs[k].nargs, subs[k].nargs == 1 ? "" : "s");
	if (remote_connect(&ro, &cl, &err) < 0)
		return cli_fail(err);
	switch (k) {
	case 0:
		r = key_create(cl, &ro, argv[2], type, save);
		break;
	case 1:
		r = key_import(cl, &ro, argv[2], argv[3]);
		break;
	case 2:
		r = key_list(cl, &ro);
		break;
	default:
		r = key_remove(cl, argv[2]);
		break;
	}
	api_client_close(cl);
	return r;
}

int cmd_ssh(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	_cleanup_free_ char *identity_kept = NULL, *known = NULL, *dir = NULL, *target = NULL;
	struct remote_opts ro = {0};
	const char *user = LOGIN_USER, *identity = NULL;
	const struct cli_option opts[] = {
	    OPT_STRING("user", "USER", &user, "who logs in (admin)"),
	    OPT_STRING("identity", "FILE", &identity,
	               "the private key (else the one kiln key create kept for its key pair)"),
	    OPT_REMOTE(&ro),
	    OPT_EXAMPLE("kiln ssh web"),
	    OPT_EXAMPLE("kiln ssh web -- sudo apt-get install -y nginx"),
	    OPT_END(),
	};
	const struct xml_node *inst;
	struct api_client *cl = NULL;
	struct xml_node *doc = NULL;
	struct api_args a;
	char id[64], addr[64] = "", key[256] = "";
	char **args;
	int n, nargs = 0;

	n = cli_parse_options(argc, argv, opts, USAGE_SSH, CLI_STOP_AT_ARG);
	if (n < 1)
		return cli_usage(USAGE_SSH, "'ssh' takes an instance");
	if (remote_connect(&ro, &cl, &err) < 0)
		return cli_fail(err);
	if (remote_resolve(cl, REMOTE_INSTANCE, argv[1], id, sizeof(id)) < 0) {
		api_client_close(cl);
		return 1;
	}
	api_args_init(&a, "DescribeInstances");
	api_args_add(&a, "InstanceId.1", id);
	if (remote_call(cl, &a, &doc) < 0) {
		api_args_release(&a);
		api_client_close(cl);
		return 1;
	}
	api_args_release(&a);
	inst = xml_item(xml_item(doc, "reservationSet", 0), "instancesSet", 0);
	snprintf(addr, sizeof(addr), "%s", xml_text(inst, "ipAddress", ""));
	snprintf(key, sizeof(key), "%s", xml_text(inst, "keyName", ""));
	xml_free(doc);
	if (!addr[0]) {
		fprintf(stderr,
		        "kiln: %s has no public address (kiln ssh reaches instances by it)\n", id);
		api_client_close(cl);
		return 1;
	}
	if (!identity) {
		if (!key[0]) {
			fprintf(stderr,
			        "kiln: %s was launched without a key pair (give --identity)\n", id);
			api_client_close(cl);
			return 1;
		}
		identity = identity_kept = key_file(api_client_region(cl), key);
		if (access(identity, R_OK) < 0) {
			fprintf(stderr,
			        "kiln: no private key of key pair '%s' at '%s' (give --identity)\n",
			        key, identity);
			api_client_close(cl);
			return 1;
		}
	}
	api_client_close(cl);
	/* Host keys by instance, not by address: public addresses are handed out again. */
	dir = keys_dir();
	if (fs_mkdir_p(dir, 0700, &err) < 0)
		return cli_fail(err);
	known = xasprintf("UserKnownHostsFile=%s/known_hosts", dir);
	target = xasprintf("%s@%s", user, addr);
	args = xcalloc((size_t)argc + 20, sizeof(*args));
	args[nargs++] = "ssh";
	args[nargs++] = "-i";
	args[nargs++] = (char *)identity;
	args[nargs++] = "-o";
	args[nargs++] = "IdentitiesOnly=yes";
	args[nargs++] = "-o";
	args[nargs++] = "StrictHostKeyChecking=accept-new";
	args[nargs++] = "-o";
	args[nargs++] = known;
	args[nargs++] = "-o";
	args[nargs++] = xasprintf("HostKeyAlias=%s", id);
	args[nargs++] = target;
	/* What follows the instance (after an optional "--") is the command. */
	for (int i = n >= 2 && !strcmp(argv[2], "--") ? 3 : 2; i <= n; i++)
		args[nargs++] = argv[i];
	args[nargs] = NULL;
	fflush(stdout);
	execvp("ssh", args);
	fprintf(stderr, "kiln: cannot run ssh: %s\n", strerror(errno));
	return 1;
}
