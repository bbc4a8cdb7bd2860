/* The signatures of instance identity documents: each region has an RSA key (2048 bits) and a
 * self-signed certificate for it, made on first use and kept in DIR/identity/REGION.key and
 * REGION.crt (a directory only root reads); `signature` is RSA with SHA-256 over the document,
 * `pkcs7` a detached PKCS #7 SignedData over it without certificates, as EC2's, both base64 in
 * lines of 64. Keys are read once and kept while the cloud is open. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

#define CERT_DAYS (365 * 30)

struct cloud_identity {
	char region[32];
	EVP_PKEY *key;
	X509 *cert;
	struct cloud_identity *next;
};

static pthread_mutex_t identity_lock = PTHREAD_MUTEX_INITIALIZER;

char *cloud_identity_cert_path(const struct cloud *c, const char *region)
{
	return xasprintf("%s/identity/%s.crt", c->data_dir, region);
}

void cloud_identity_free(struct cloud *c)
{
	while (c->identity) {
		struct cloud_identity *i = c->identity;

		c->identity = i->next;
		EVP_PKEY_free(i->key);
		X509_free(i->cert);
		free(i);
	}
}

static int openssl_fail(struct kerr **err, const char *what, const char *region)
{
	return kerr_set(err, KERR_INTERNAL, "cannot %s the identity key of '%s'", what, region);
}

/* A new key and its certificate, CN "kiln instance identity REGION". */
static int identity_make(const char *region, EVP_PKEY **key, X509 **cert, struct kerr **err)
{
	_cleanup_free_ char *cn = xasprintf("kiln instance identity %s", region);
	X509_NAME *name;
	uint8_t serial[16];
	BIGNUM *bn = NULL;
	X509 *x = NULL;
	EVP_PKEY *k = EVP_RSA_gen(2048);

	if (!k || RAND_bytes(serial, sizeof(serial)) != 1 || !(x = X509_new()))
		goto on_error;
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	name = X509_get_subject_name(x);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) || !X509_set_version(x, 2) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), (long)CERT_DAYS * 86400) ||
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"kiln", -1,
	                                -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
	                                0) ||
	    !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, k) ||
	    !X509_sign(x, k, EVP_sha256()))
		goto on_error;
	BN_free(bn);
	*key = k;
	*cert = x;
	return 0;

on_error:
	BN_free(bn);
	X509_free(x);
	EVP_PKEY_free(k);
	return openssl_fail(err, "make", region);
}

static int pem_write(int dfd, const char *name, BIO *bio, struct kerr **err)
{
	char *data = NULL;
	long len = BIO_get_mem_data(bio, &data);

	return fs_write_atomic(dfd, name, data, (size_t)len, "identity", err);
}

/* Read the region's key and certificate, or make and keep them. Under identity_lock. */
static int identity_load(struct cloud *c, const char *region, struct cloud_identity **out,
                         struct kerr **err)
{
	_cleanup_free_ char *dir = xasprintf("%s/identity", c->data_dir);
	_cleanup_free_ char *key_name = xasprintf("%s.key", region);
	_cleanup_free_ char *crt_name = xasprintf("%s.crt", region);
	_cleanup_free_ uint8_t *kdata = NULL, *cdata = NULL;
	_cleanup_close_ int dfd = -1;
	struct cloud_identity *i;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	size_t klen = 0, clen = 0;
	struct kerr *why = NULL;

	for (i = c->identity; i; i = i->next)
		if (!strcmp(i->region, region)) {
			*out = i;
			return 0;
		}
	if (fs_mkdir_p(dir, 0700, err) < 0)
		return -1;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kerr_errno(err, errno, "cannot open '%s'", dir);
	if (fs_read_file(dfd, key_name, 1 << 16, &kdata, &klen, &why) == 0 &&
	    fs_read_file(dfd, crt_name, 1 << 16, &cdata, &clen, &why) == 0) {
		BIO *kb = BIO_new_mem_buf(kdata, (int)klen),
		    *cb = BIO_new_mem_buf(cdata, (int)clen);

		key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
		cert = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
		BIO_free(kb);
		BIO_free(cb);
		if (!key || !cert) {
			EVP_PKEY_free(key);
			X509_free(cert);
			return kerr_set(err, KERR_CORRUPT,
			                "cannot read the identity key of '%s' in '%s'", region,
			                dir);
		}
	} else if (why->kind != KERR_NOT_FOUND) {
		return kerr_pass(err, why);
	} else {
		BIO *kb, *cb;
		int r = 0;

		kerr_free(why);
		if (identity_make(region, &key, &cert, err) < 0)
			return -1;
		kb = BIO_new(BIO_s_mem());
		cb = BIO_new(BIO_s_mem());
		if (!kb || !cb || !PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) ||
		    !PEM_write_bio_X509(cb, cert))
			r = openssl_fail(err, "write", region);
		/* The key first: a certificate is never without its key. */
		if (r == 0)
			r = pem_write(dfd, key_name, kb, err);
		if (r == 0)
			r = pem_write(dfd, crt_name, cb, err);
		BIO_free(kb);
		BIO_free(cb);
		if (r < 0) {
			EVP_PKEY_free(key);
			X509_free(cert);
			return -1;
		}
	}
	i = xcalloc(1, sizeof(*i));
	str_copy(i->region, region, sizeof(i->region));
	i->key = key;
	i->cert = cert;
	i->next = c->identity;
	c->identity = i;
	*out = i;
	return 0;
}

/* Base64 of data in lines of 64, malloc'd. */
static char *base64_lines(const uint8_t *data, size_t len)
{
	struct buf b = BUF_INIT;
	char line[65 + 1];

	for (size_t off = 0; off < len; off += 48) {
		size_t n = len - off < 48 ? len - off : 48;

		EVP_EncodeBlock((unsigned char *)line, data + off, (int)n);
		buf_addf(&b, "%s%s", off ? "\n" : "", line);
	}
	if (!b.data)
		buf_addstr(&b, "");
	return buf_detach(&b);
}

int cloud_identity_sign(struct cloud *c, const char *region, const char *doc, size_t len,
                        char **signature, char **pkcs7, struct kerr **err)
{
	struct cloud_identity *i;
	EVP_MD_CTX *md = NULL;
	uint8_t *sig = NULL, *der = NULL;
	size_t siglen = 0;
	BIO *in = NULL;
	PKCS7 *p7 = NULL;
	int derlen, r = -1;

	*signature = *pkcs7 = NULL;
	pthread_mutex_lock(&identity_lock);
	if (identity_load(c, region, &i, err) < 0)
		goto out;
	md = EVP_MD_CTX_new();
	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, i->key) != 1 ||
	    EVP_DigestSign(md, NULL, &siglen, (const uint8_t *)doc, len) != 1) {
		openssl_fail(err, "sign with", region);
		goto out;
	}
	sig = xmalloc(siglen);
	if (EVP_DigestSign(md, sig, &siglen, (const uint8_t *)doc, len) != 1) {
		openssl_fail(err, "sign with", region);
		goto out;
	}
	in = BIO_new_mem_buf(doc, (int)len);
	p7 = in ? PKCS7_sign(i->cert, i->key, NULL, in,
	                     PKCS7_DETACHED | PKCS7_BINARY | PKCS7_NOCERTS | PKCS7_NOSMIMECAP)
	        : NULL;
	if (!p7 || (derlen = i2d_PKCS7(p7, &der)) <= 0) {
		openssl_fail(err, "sign with", region);
		goto out;
	}
	*signature = base64_lines(sig, siglen);
	*pkcs7 = base64_lines(der, (size_t)derlen);
	r = 0;
out:
	pthread_mutex_unlock(&identity_lock);
	OPENSSL_free(der);
	PKCS7_free(p7);
	BIO_free(in);
	free(sig);
	EVP_MD_CTX_free(md);
	return r;
}
