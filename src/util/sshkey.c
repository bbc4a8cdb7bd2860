/* SSH key pairs: keys come from OpenSSL (EVP_PKEY_Q_keygen), digests from EVP_Digest and HMAC;
 * this file only lays out the bytes of SSH's wire formats (RFC 4253 strings and mpints), the
 * OpenSSH private key file (PROTOCOL.key) and PuTTY's .ppk version 3, none of which OpenSSL
 * writes. */
#include "sshkey.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "buf.h"
#include "cleanup.h"
#include "str.h"
#include "xalloc.h"
#include "banned.h"

#define OPENSSH_LINE 70 /* base64 characters per line of an OpenSSH private key file */
#define PPK_LINE     64 /* and of a .ppk */

static const char *const type_names[] = {[SSHKEY_RSA] = "rsa", [SSHKEY_ED25519] = "ed25519"};
static const char *const ssh_names[] = {[SSHKEY_RSA] = "ssh-rsa", [SSHKEY_ED25519] = "ssh-ed25519"};

const char *sshkey_type_name(enum sshkey_type t)
{
	return type_names[t];
}

static int ossl_fail(struct kerr **err, const char *what)
{
	char why[256];

	ERR_error_string_n(ERR_get_error(), why, sizeof(why));
	ERR_clear_error();
	return kerr_set(err, KERR_INTERNAL, "cannot %s: %s", what, why);
}

static void evp_pkey_freep(EVP_PKEY **k)
{
	EVP_PKEY_free(*k);
}
static void bn_freep(BIGNUM **b)
{
	BN_clear_free(*b);
}
#define _cleanup_pkey_ __attribute__((cleanup(evp_pkey_freep)))
#define _cleanup_bn_   __attribute__((cleanup(bn_freep)))

/* The wire format: small and internal, so a failing append (past 64 MiB) aborts. */
static void put(struct buf *b, const void *p, size_t n)
{
	if (buf_add(b, p, n, NULL) < 0)
		abort();
}

static void put_u32(struct buf *b, uint32_t v)
{
	uint8_t be[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	put(b, be, 4);
}

static void put_string(struct buf *b, const void *p, size_t n)
{
	put_u32(b, (uint32_t)n);
	put(b, p, n);
}

static void put_cstring(struct buf *b, const char *s)
{
	put_string(b, s, strlen(s));
}

/* RFC 4253 mpint of a non-negative number: big-endian, a leading zero byte when the top bit is
 * set, nothing at all for zero. */
static void put_mpint(struct buf *b, const BIGNUM *bn)
{
	int n = BN_num_bytes(bn);
	_cleanup_free_ uint8_t *v = xmalloc((size_t)n + 1);

	v[0] = 0;
	BN_bn2bin(bn, v + 1);
	if (n && (v[1] & 0x80))
		put_string(b, v, (size_t)n + 1);
	else
		put_string(b, v + 1, (size_t)n);
	OPENSSL_cleanse(v, (size_t)n + 1);
}

/* Base64 of data in one line (or wrapped at width with "\n" after each line, width > 0). */
static char *base64(const void *data, size_t len, size_t width)
{
	size_t out_len = 4 * ((len + 2) / 3);
	_cleanup_free_ char *flat = xmalloc(out_len + 1);
	struct buf b = BUF_INIT;

	EVP_EncodeBlock((unsigned char *)flat, data, (int)len);
	if (!width)
		return steal_ptr(flat);
	for (size_t at = 0; at < out_len; at += width) {
		put(&b, flat + at, out_len - at < width ? out_len - at : width);
		put(&b, "\n", 1);
	}
	return buf_detach(&b);
}

/* Strict base64 (no whitespace inside, padding only at the end); -1 when it is not. */
static int base64_decode(const char *s, size_t len, uint8_t **out, size_t *n)
{
	int got;

	if (!len || len % 4 || len > (size_t)1 << 20)
		return -1;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '=' && i < len - 2)
			return -1;
	*out = xmalloc(len / 4 * 3 + 3);
	got = EVP_DecodeBlock(*out, (const unsigned char *)s, (int)len);
	if (got < 0) {
		free(*out);
		*out = NULL;
		return -1;
	}
	/* EVP_DecodeBlock counts the padding as data */
	for (size_t i = len; i > len - 2 && s[i - 1] == '='; i--)
		got--;
	*n = (size_t)got;
	return 0;
}

static void hex_colons(const uint8_t *md, size_t n, char out[SSHKEY_FINGERPRINT_MAX])
{
	static const char hex[] = "0123456789abcdef";
	size_t k = 0;

	for (size_t i = 0; i < n && k + 3 < SSHKEY_FINGERPRINT_MAX; i++) {
		if (i)
			out[k++] = ':';
		out[k++] = hex[md[i] >> 4];
		out[k++] = hex[md[i] & 15];
	}
	out[k] = '\0';
}

static int digest(const EVP_MD *md, const void *data, size_t len, uint8_t *out, unsigned *n,
                  struct kerr **err)
{
	if (!EVP_Digest(data, len, out, n, md, NULL))
		return ossl_fail(err, "compute a key fingerprint");
	return 0;
}

/* Base64 SHA-256 of the public key blob, as ssh-keygen -l prints it after "SHA256:", with the
 * padding EC2 keeps. */
static int fingerprint_sha256(const struct buf *blob, char out[SSHKEY_FINGERPRINT_MAX],
                              struct kerr **err)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned n;

	if (digest(EVP_sha256(), blob->data, blob->len, md, &n, err) < 0)
		return -1;
	EVP_EncodeBlock((unsigned char *)out, md, (int)n);
	return 0;
}

static int rsa_param(const EVP_PKEY *k, const char *name, BIGNUM **out, struct kerr **err)
{
	*out = NULL;
	if (!EVP_PKEY_get_bn_param(k, name, out))
		return ossl_fail(err, "read an RSA key");
	return 0;
}

/* The public key blob (RFC 4253 6.6; RFC 8709 for Ed25519). */
static int public_blob(const EVP_PKEY *k, enum sshkey_type type, struct buf *b, struct kerr **err)
{
	put_cstring(b, ssh_names[type]);
	if (type == SSHKEY_RSA) {
		_cleanup_bn_ BIGNUM *e = NULL;
		_cleanup_bn_ BIGNUM *n = NULL;
		if (rsa_param(k, OSSL_PKEY_PARAM_RSA_E, &e, err) < 0 ||
		    rsa_param(k, OSSL_PKEY_PARAM_RSA_N, &n, err) < 0)
			return -1;
		put_mpint(b, e);
		put_mpint(b, n);
	} else {
		uint8_t pub[32];
		size_t len = sizeof(pub);
		if (!EVP_PKEY_get_raw_public_key(k, pub, &len) || len != sizeof(pub))
			return ossl_fail(err, "read an Ed25519 key");
		put_string(b, pub, len);
	}
	return 0;
}

static char *public_line(enum sshkey_type type, const struct buf *blob, const char *comment)
{
	_cleanup_free_ char *b64 = base64(blob->data, blob->len, 0);

	return comment && *comment ? xasprintf("%s %s %s", ssh_names[type], b64, comment)
	                           : xasprintf("%s %s", ssh_names[type], b64);
}

/* "-----BEGIN RSA PRIVATE KEY-----": PKCS#1, what EC2 hands out. */
static int rsa_pem(EVP_PKEY *k, char **out, struct kerr **err)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long len;

	if (!bio || !PEM_write_bio_PrivateKey_traditional(bio, k, NULL, NULL, 0, NULL, NULL)) {
		BIO_free(bio);
		return ossl_fail(err, "write an RSA private key");
	}
	len = BIO_get_mem_data(bio, &data);
	*out = xmalloc((size_t)len + 1);
	memcpy(*out, data, (size_t)len);
	(*out)[len] = '\0';
	OPENSSL_cleanse(data, (size_t)len);
	BIO_free(bio);
	return 0;
}

/* The OpenSSH private key file of an Ed25519 key, unencrypted (PROTOCOL.key). */
static int ed25519_openssh(EVP_PKEY *k, const struct buf *pub_blob, const char *comment, char **out,
                           struct kerr **err)
{
	_cleanup_buf_ struct buf file = BUF_INIT;
	_cleanup_buf_ struct buf priv = BUF_INIT;
	_cleanup_free_ char *b64 = NULL;
	uint8_t seed_pub[64];
	size_t len = 32;
	uint32_t check;

	if (!EVP_PKEY_get_raw_private_key(k, seed_pub, &len) || len != 32)
		return ossl_fail(err, "read an Ed25519 key");
	len = 32;
	if (!EVP_PKEY_get_raw_public_key(k, seed_pub + 32, &len) || len != 32)
		return ossl_fail(err, "read an Ed25519 key");
	if (RAND_bytes((unsigned char *)&check, sizeof(check)) != 1)
		return ossl_fail(err, "draw random bytes");
	put_u32(&priv, check);
	put_u32(&priv, check);
	put_cstring(&priv, ssh_names[SSHKEY_ED25519]);
	put_string(&priv, seed_pub + 32, 32);
	put_string(&priv, seed_pub, 64);
	put_cstring(&priv, comment ? comment : "");
	for (uint8_t pad = 1; priv.len % 8; pad++)
		put(&priv, &pad, 1);
	OPENSSL_cleanse(seed_pub, sizeof(seed_pub));

	put(&file, "openssh-key-v1", sizeof("openssh-key-v1")); /* with its NUL */
	put_cstring(&file, "none");
	put_cstring(&file, "none");
	put_cstring(&file, "");
	put_u32(&file, 1);
	put_string(&file, pub_blob->data, pub_blob->len);
	put_string(&file, priv.data, priv.len);
	OPENSSL_cleanse(priv.data, priv.len);
	b64 = base64(file.data, file.len, OPENSSH_LINE);
	OPENSSL_cleanse(file.data, file.len);
	*out = xasprintf(
	    "-----BEGIN OPENSSH PRIVATE KEY-----\n%s-----END OPENSSH PRIVATE KEY-----\n", b64);
	OPENSSL_cleanse(b64, strlen(b64));
	return 0;
}

/* PuTTY's private key blob: RSA d, p, q, iqmp (q^-1 mod p); Ed25519 the 32-byte seed. */
static int ppk_private_blob(EVP_PKEY *k, enum sshkey_type type, struct buf *b, struct kerr **err)
{
	if (type == SSHKEY_RSA) {
		static const char *const names[] = {
		    OSSL_PKEY_PARAM_RSA_D, OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2,
		    OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
		for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
			_cleanup_bn_ BIGNUM *v = NULL;
			if (rsa_param(k, names[i], &v, err) < 0)
				return -1;
			put_mpint(b, v);
		}
	} else {
		uint8_t seed[32];
		size_t len = sizeof(seed);
		if (!EVP_PKEY_get_raw_private_key(k, seed, &len) || len != sizeof(seed))
			return ossl_fail(err, "read an Ed25519 key");
		put_string(b, seed, len);
		OPENSSL_cleanse(seed, sizeof(seed));
	}
	return 0;
}

static size_t lines_of(size_t bytes, size_t width)
{
	size_t chars = 4 * ((bytes + 2) / 3);
	return (chars + width - 1) / width;
}

/* PuTTY-User-Key-File-3, unencrypted: the MAC is HMAC-SHA-256 under an empty key over the
 * algorithm, encryption, comment, public and private blobs, each as an SSH string. */
static int ppk(EVP_PKEY *k, enum sshkey_type type, const struct buf *pub_blob, const char *comment,
               char **out, struct kerr **err)
{
	static const unsigned char no_key[1];
	_cleanup_buf_ struct buf priv = BUF_INIT;
	_cleanup_buf_ struct buf mac_data = BUF_INIT;
	_cleanup_free_ char *pub64 = NULL, *priv64 = NULL;
	uint8_t mac[EVP_MAX_MD_SIZE];
	char mac_hex[2 * EVP_MAX_MD_SIZE + 1];
	unsigned mac_len = 0;

	if (ppk_private_blob(k, type, &priv, err) < 0)
		return -1;
	if (!comment)
		comment = "";
	put_cstring(&mac_data, ssh_names[type]);
	put_cstring(&mac_data, "none");
	put_cstring(&mac_data, comment);
	put_string(&mac_data, pub_blob->data, pub_blob->len);
	put_string(&mac_data, priv.data, priv.len);
	if (!HMAC(EVP_sha256(), no_key, 0, (const unsigned char *)mac_data.data, mac_data.len, mac,
	          &mac_len)) {
		OPENSSL_cleanse(mac_data.data, mac_data.len);
		return ossl_fail(err, "compute the MAC of a PuTTY key");
	}
	OPENSSL_cleanse(mac_data.data, mac_data.len);
	for (unsigned i = 0; i < mac_len; i++)
		snprintf(mac_hex + 2 * i, 3, "%02x", mac[i]);
	pub64 = base64(pub_blob->data, pub_blob->len, PPK_LINE);
	priv64 = base64(priv.data, priv.len, PPK_LINE);
	*out = xasprintf("PuTTY-User-Key-File-3: %s\nEncryption: none\nComment: %s\n"
	                 "Public-Lines: %zu\n%sPrivate-Lines: %zu\n%sPrivate-MAC: %s\n",
	                 ssh_names[type], comment, lines_of(pub_blob->len, PPK_LINE), pub64,
	                 lines_of(priv.len, PPK_LINE), priv64, mac_hex);
	OPENSSL_cleanse(priv.data, priv.len);
	OPENSSL_cleanse(priv64, strlen(priv64));
	return 0;
}

/* SHA-1 of the DER PKCS#8 PrivateKeyInfo, as `openssl pkcs8 -topk8 -nocrypt -outform DER`. */
static int fingerprint_pkcs8(EVP_PKEY *k, char out[SSHKEY_FINGERPRINT_MAX], struct kerr **err)
{
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(k);
	unsigned char *der = NULL;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned n;
	int len, r;

	if (!p8)
		return ossl_fail(err, "encode an RSA private key");
	len = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
	PKCS8_PRIV_KEY_INFO_free(p8);
	if (len <= 0)
		return ossl_fail(err, "encode an RSA private key");
	r = digest(EVP_sha1(), der, (size_t)len, md, &n, err);
	OPENSSL_clear_free(der, (size_t)len);
	if (r < 0)
		return -1;
	hex_colons(md, n, out);
	return 0;
}

int sshkey_generate(enum sshkey_type type, enum sshkey_format format, const char *comment,
                    char **material, char **line, char fingerprint[SSHKEY_FINGERPRINT_MAX],
                    struct kerr **err)
{
	_cleanup_pkey_ EVP_PKEY *k = NULL;
	_cleanup_buf_ struct buf blob = BUF_INIT;
	_cleanup_free_ char *mat = NULL;

	k = type == SSHKEY_RSA ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)SSHKEY_RSA_BITS)
	                       : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!k)
		return ossl_fail(err, "generate a key");
	if (public_blob(k, type, &blob, err) < 0)
		return -1;
	if (format == SSHKEY_PPK) {
		if (ppk(k, type, &blob, comment, &mat, err) < 0)
			return -1;
	} else if (type == SSHKEY_RSA ? rsa_pem(k, &mat, err) < 0
	                              : ed25519_openssh(k, &blob, comment, &mat, err) < 0) {
		return -1;
	}
	if (type == SSHKEY_RSA ? fingerprint_pkcs8(k, fingerprint, err) < 0
	                       : fingerprint_sha256(&blob, fingerprint, err) < 0)
		return -1;
	*line = public_line(type, &blob, comment);
	*material = steal_ptr(mat);
	return 0;
}

/* Reading the wire format. */
struct cursor {
	const uint8_t *p;
	size_t n;
};

static int get_string(struct cursor *c, const uint8_t **s, size_t *len)
{
	uint32_t l;

	if (c->n < 4)
		return -1;
	l = (uint32_t)c->p[0] << 24 | (uint32_t)c->p[1] << 16 | (uint32_t)c->p[2] << 8 | c->p[3];
	if (l > c->n - 4)
		return -1;
	*s = c->p + 4;
	*len = l;
	c->p += 4 + (size_t)l;
	c->n -= 4 + (size_t)l;
	return 0;
}

/* A positive mpint, as RSA's e and n are. */
static int get_positive_mpint(struct cursor *c, BIGNUM **out)
{
	const uint8_t *s;
	size_t len;

	if (get_string(c, &s, &len) < 0 || !len || (s[0] & 0x80) ||
	    len > SSHKEY_RSA_MAX_BITS / 8 + 1)
		return -1;
	*out = BN_bin2bn(s, (int)len, NULL);
	return *out && !BN_is_zero(*out) ? 0 : -1;
}

static int invalid(struct kerr **err)
{
	return kerr_set(err, KERR_INVALID, "key is not in valid OpenSSH public key format");
}

static int import_rsa(struct cursor *c, char fingerprint[SSHKEY_FINGERPRINT_MAX], struct kerr **err)
{
	_cleanup_bn_ BIGNUM *e = NULL;
	_cleanup_bn_ BIGNUM *n = NULL;
	_cleanup_pkey_ EVP_PKEY *k = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	unsigned char *der = NULL;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdn;
	int bits, len, r = -1;

	if (get_positive_mpint(c, &e) < 0 || get_positive_mpint(c, &n) < 0 || c->n)
		return invalid(err);
	bld = OSSL_PARAM_BLD_new();
	if (!bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld)) ||
	    !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		ERR_clear_error();
		invalid(err);
		goto out;
	}
	bits = EVP_PKEY_get_bits(k);
	if (bits < SSHKEY_RSA_MIN_BITS || bits > SSHKEY_RSA_MAX_BITS || !BN_is_odd(e)) {
		kerr_set(err, KERR_INVALID, "RSA keys must have %d to %d bits; this one has %d",
		         SSHKEY_RSA_MIN_BITS, SSHKEY_RSA_MAX_BITS, bits);
		goto out;
	}
	/* MD5 of the DER SubjectPublicKeyInfo, as `openssl pkey -pubout -outform DER | openssl
	 * md5 -c` */
	len = i2d_PUBKEY(k, &der);
	if (len <= 0) {
		ossl_fail(err, "encode an RSA public key");
		goto out;
	}
	if (digest(EVP_md5(), der, (size_t)len, md, &mdn, err) < 0)
		goto out;
	hex_colons(md, mdn, fingerprint);
	r = 0;
out:
	OPENSSL_free(der);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return r;
}

/* The public key blob of an OpenSSH line, an RFC 4716 file or a DER SubjectPublicKeyInfo,
 * checked: its type, the key (RSA 2048 to 16384 bits, Ed25519 32 bytes), no trailing bytes;
 * EC2's fingerprint of it as imported, and the OpenSSH line with comment (may be ""). */
static int import_blob(const uint8_t *blob, size_t blob_len, const char *comment,
                       enum sshkey_type *type, char **line,
                       char fingerprint[SSHKEY_FINGERPRINT_MAX], struct kerr **err)
{
	_cleanup_free_ char *b64 = NULL;
	struct cursor c = {blob, blob_len};
	const uint8_t *s;
	size_t slen;
	int t = -1;

	if (get_string(&c, &s, &slen) < 0)
		return invalid(err);
	for (size_t i = 0; i < ARRAY_SIZE(ssh_names); i++)
		if (slen == strlen(ssh_names[i]) && !memcmp(s, ssh_names[i], slen))
			t = (int)i;
	if (t < 0)
		return kerr_set(err, KERR_INVALID,
		                "key type '%.*s' is not supported: only ssh-rsa and ssh-ed25519",
		                (int)(slen < 64 ? slen : 64), (const char *)s);
	if (t == SSHKEY_RSA) {
		if (import_rsa(&c, fingerprint, err) < 0)
			return -1;
	} else {
		uint8_t md[EVP_MAX_MD_SIZE];
		unsigned n;
		EVP_PKEY *k;
		if (get_string(&c, &s, &slen) < 0 || slen != 32 || c.n)
			return invalid(err);
		k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, s, slen);
		if (!k) {
			ERR_clear_error();
			return invalid(err);
		}
		EVP_PKEY_free(k);
		if (digest(EVP_sha256(), blob, blob_len, md, &n, err) < 0)
			return -1;
		EVP_EncodeBlock((unsigned char *)fingerprint, md, (int)n);
	}
	for (const char *p = comment; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return invalid(err);
	*type = (enum sshkey_type)t;
	b64 = base64(blob, blob_len, 0);
	*line = *comment ? xasprintf("%s %s %s", ssh_names[t], b64, comment)
	                 : xasprintf("%s %s", ssh_names[t], b64);
	return 0;
}

/* "ssh-ed25519 AAAA… comment": the type named must be the blob's. */
static int import_openssh(char *text, enum sshkey_type *type, char **line,
                          char fingerprint[SSHKEY_FINGERPRINT_MAX], struct kerr **err)
{
	_cleanup_free_ uint8_t *blob = NULL;
	char *name = text, *b64, *comment, *end;
	size_t blob_len, nlen;

	if (strpbrk(name, "\r\n"))
		return invalid(err);
	b64 = strchr(name, ' ');
	if (!b64)
		return invalid(err);
	*b64++ = '\0';
	while (*b64 == ' ')
		b64++;
	end = b64 + strcspn(b64, " \t");
	comment = *end ? end + 1 : end;
	*end = '\0';
	while (*comment == ' ' || *comment == '\t')
		comment++;
	if (base64_decode(b64, strlen(b64), &blob, &blob_len) < 0)
		return strcmp(name, ssh_names[SSHKEY_RSA]) &&
		               strcmp(name, ssh_names[SSHKEY_ED25519])
		           ? kerr_set(err, KERR_INVALID,
		                      "key type '%.64s' is not supported: only ssh-rsa and "
		                      "ssh-ed25519",
		                      name)
		           : invalid(err);
	nlen = strlen(name);
	if (blob_len < 4 + nlen || blob[0] || blob[1] || blob[2] || blob[3] != nlen ||
	    memcmp(blob + 4, name, nlen))
		return invalid(err);
	return import_blob(blob, blob_len, comment, type, line, fingerprint, err);
}

/* Base64 of a DER SubjectPublicKeyInfo (RSA or Ed25519), as EC2 also takes it. */
static int import_der(const char *b64, enum sshkey_type *type, char **line,
                      char fingerprint[SSHKEY_FINGERPRINT_MAX], struct kerr **err)
{
	_cleanup_free_ uint8_t *der = NULL;
	_cleanup_pkey_ EVP_PKEY *k = NULL;
	_cleanup_buf_ struct buf blob = BUF_INIT;
	const unsigned char *p;
	size_t len;
	int id;

	if (base64_decode(b64, strlen(b64), &der, &len) < 0 || len > LONG_MAX)
		return invalid(err);
	p = der;
	k = d2i_PUBKEY(NULL, &p, (long)len);
	if (!k || p != der + len) {
		ERR_clear_error();
		return invalid(err);
	}
	id = EVP_PKEY_get_base_id(k);
	if (id != EVP_PKEY_RSA && id != EVP_PKEY_ED25519)
		return kerr_set(err, KERR_INVALID,
		                "key type '%s' is not supported: only RSA and Ed25519",
		                OBJ_nid2sn(id));
	if (public_blob(k, id == EVP_PKEY_RSA ? SSHKEY_RSA : SSHKEY_ED25519, &blob, err) < 0)
		return -1;
	return import_blob((const uint8_t *)blob.data, blob.len, "", type, line, fingerprint, err);
}

/* The lines of text between its first line and end_mark, base64 joined; with headers
 * ("Tag: value", continued by a final backslash) when headers is true (RFC 4716), whose
 * Comment goes to *comment. */
static int armored_body(char *text, const char *end_mark, bool headers, char **b64, char **comment)
{
	struct buf body = BUF_INIT;
	char *line = strchr(text, '\n'), *next;
	bool continued = false, ended = false;

	*comment = NULL;
	for (line = line ? line + 1 : NULL; line && !ended; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		line[strcspn(line, "\r")] = '\0';
		if (!strcmp(line, end_mark)) {
			ended = true;
		} else if (continued || (headers && strchr(line, ':'))) {
			size_t n = strlen(line);
			if (!continued && !strncasecmp(line, "Comment:", 8) && !*comment) {
				char *v = line + 8 + strspn(line + 8, " ");
				size_t vl = strlen(v);
				if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
					v[vl - 1] = '\0';
					v++;
				}
				*comment = xasprintf("%s", str_trim(v));
			}
			continued = n && line[n - 1] == '\\';
		} else {
			put(&body, line, strlen(line));
		}
	}
	if (!ended || (line && *line)) {
		buf_release(&body);
		free(*comment);
		*comment = NULL;
		return -1;
	}
	*b64 = buf_detach(&body);
	return 0;
}

int sshkey_import(const char *text, size_t len, enum sshkey_type *type, char **line,
                  char fingerprint[SSHKEY_FINGERPRINT_MAX], struct kerr **err)
{
	static const char rfc4716[] = "---- BEGIN SSH2 PUBLIC KEY ----";
	static const char pem[] = "-----BEGIN PUBLIC KEY-----";
	_cleanup_free_ char *copy = NULL, *b64 = NULL, *comment = NULL;
	_cleanup_free_ uint8_t *blob = NULL;
	size_t blob_len;
	char *s;

	if (len > 64 * 1024 || memchr(text, '\0', len))
		return invalid(err);
	copy = xmalloc(len + 1);
	memcpy(copy, text, len);
	copy[len] = '\0';
	while (len && (copy[len - 1] == '\n' || copy[len - 1] == '\r' || copy[len - 1] == ' ' ||
	               copy[len - 1] == '\t'))
		copy[--len] = '\0';
	s = copy + strspn(copy, " \t\r\n");
	if (!strncmp(s, rfc4716, sizeof(rfc4716) - 1)) {
		if (armored_body(s, "---- END SSH2 PUBLIC KEY ----", true, &b64, &comment) < 0 ||
		    base64_decode(b64, strlen(b64), &blob, &blob_len) < 0)
			return invalid(err);
		return import_blob(blob, blob_len, comment ? comment : "", type, line, fingerprint,
		                   err);
	}
	if (!strncmp(s, pem, sizeof(pem) - 1)) {
		if (armored_body(s, "-----END PUBLIC KEY-----", false, &b64, &comment) < 0)
			return invalid(err);
		return import_der(b64, type, line, fingerprint, err);
	}
	if (!strpbrk(s, " \t\r\n"))
		return import_der(s, type, line, fingerprint, err);
	return import_openssh(s, type, line, fingerprint, err);
}
