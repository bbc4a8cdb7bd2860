/* SSH key pairs through OpenSSL: new RSA and Ed25519 keys, their private key files (PEM, the
 * OpenSSH format, PuTTY's .ppk), OpenSSH public key lines and EC2's fingerprints of them. */
#ifndef KILN_SSHKEY_H
#define KILN_SSHKEY_H

#include <stdbool.h>
#include <stddef.h>

#include "kerr.h"

enum sshkey_type { SSHKEY_RSA, SSHKEY_ED25519 };
enum sshkey_format { SSHKEY_PEM, SSHKEY_PPK };

#define SSHKEY_FINGERPRINT_MAX 64 /* "xx:" x 20, or 44 characters of base64 */
#define SSHKEY_RSA_BITS        2048
#define SSHKEY_RSA_MIN_BITS    2048
#define SSHKEY_RSA_MAX_BITS    16384

/* "rsa", "ed25519" */
const char *sshkey_type_name(enum sshkey_type t);

/* A new key pair: *material is the private key file (RSA PEM "BEGIN RSA PRIVATE KEY", Ed25519
 * "BEGIN OPENSSH PRIVATE KEY", or a PuTTY v3 .ppk), *public_line "ssh-… BASE64 comment", and
 * fingerprint what EC2 shows for a key pair it made: RSA, SHA-1 of the DER PKCS#8 private key as
 * colon-separated hex; Ed25519, base64 SHA-256 of the public key blob (with its padding). */
int sshkey_generate(enum sshkey_type type, enum sshkey_format format, const char *comment,
                    char **material, char **public_line, char fingerprint[SSHKEY_FINGERPRINT_MAX],
                    struct kerr **err);

/* A public key as ImportKeyPair takes it: an OpenSSH public key line ("ssh-rsa AAAA… comment", a
 * final newline allowed), an RFC 4716 file ("---- BEGIN SSH2 PUBLIC KEY ----"), or a DER
 * SubjectPublicKeyInfo in base64 (bare, or as a "-----BEGIN PUBLIC KEY-----" PEM). Its type,
 * its OpenSSH line, and EC2's fingerprint of an imported key: RSA, MD5 of the DER
 * SubjectPublicKeyInfo as colon-separated hex; Ed25519, base64 SHA-256 of the blob. KERR_INVALID
 * for anything else, RSA keys under 2048 bits among it. */
int sshkey_import(const char *text, size_t len, enum sshkey_type *type, char **public_line,
                  char fingerprint[SSHKEY_FINGERPRINT_MAX], struct kerr **err);

#endif
