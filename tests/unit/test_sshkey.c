/* Unit tests of src/util/sshkey.c: EC2's fingerprints of imported keys, in each form ImportKeyPair
 * takes (the expected values are
 * what `ssh-keygen -l` and `openssl pkey -pubout -outform DER | openssl md5 -c` print for the
 * same keys), refusals, and new keys whose public half imports back to the same key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "util/sshkey.h"

static const char ed_line[] =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC4mnKmAokDAyh5P4QtM+ftk6jWdDGBqAKDI6mV21uYL mykey\n";
static const char rsa_line[] =
    "ssh-rsa "
    "AAAAB3NzaC1yc2EAAAADAQABAAABAQDnhbs7iMMkZOl5oDjnRVjbt4AqKGHuaJeFCMBFC0awHLir7Py/"
    "mudvmkSzWUZWP76eIp45LCQiCgShnKJ4Ds4HsFsMMGEkQvAqrrk1vrOIUdKapTfy+E5+"
    "oGqAkzVmZtyjUmBQpCDAYg9uj1SkKcHcPGl8msmsugFExgNMnZEVxPEoAyoIvvNUFJiadD2PGpiVli+"
    "mZ7FbZOhsc7wAAQRLyxNdOob4WYF7UCLXzrmxS2R3xVTeAGpM8wxufRu7bkJul50WSe98i5M0mJok4PHyS0Wfg3I+"
    "9kqdToeP17gZuKy1OHR7YZqDJKwdCemI/4Ka+juFRom8VQU0BhDTLzoF\n";

/* The same keys as ssh-keygen -e writes them (RFC 4716), and the RSA key as the base64 of its
 * DER SubjectPublicKeyInfo (ssh-keygen -e -m PKCS8 without its armor). */
static const char ed_rfc4716[] =
    "---- BEGIN SSH2 PUBLIC KEY ----\n"
    "Comment: \"256-bit ED25519, converted by root@vm from OpenSSH\"\n"
    "AAAAC3NzaC1lZDI1NTE5AAAAIC4mnKmAokDAyh5P4QtM+ftk6jWdDGBqAKDI6mV21uYL\n"
    "---- END SSH2 PUBLIC KEY ----\n";
static const char rsa_der[] =
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA54W7O4jDJGTpeaA450VY27eAKihh7miXhQjARQtGsBy4q+"
    "z8v5rnb5pEs1lGVj++"
    "niKeOSwkIgoEoZyieA7OB7BbDDBhJELwKq65Nb6ziFHSmqU38vhOfqBqgJM1Zmbco1JgUKQgwGIPbo9UpCnB3DxpfJrJrL"
    "oBRMYDTJ2RFcTxKAMqCL7zVBSYmnQ9jxqYlZYvpmexW2TobHO8AAEES8sTXTqG+"
    "FmBe1Ai1865sUtkd8VU3gBqTPMMbn0bu25CbpedFknvfIuTNJiaJODx8ktFn4NyPvZKnU6Hj9e4GbistTh0e2GagySsHQn"
    "piP+Cmvo7hUaJvFUFNAYQ0y86BQIDAQAB";

static int import(const char *text, enum sshkey_type *t, char **line, char *fp)
{
	struct kerr *err = NULL;
	int r = sshkey_import(text, strlen(text), t, line, fp, &err);

	if (r < 0) {
		assert_int_equal(err->kind, KERR_INVALID);
		kerr_free(err);
	}
	return r;
}

static void test_import_fingerprints(void **state)
{
	char fp[SSHKEY_FINGERPRINT_MAX], *line;
	enum sshkey_type t;

	(void)state;
	assert_int_equal(import(ed_line, &t, &line, fp), 0);
	assert_int_equal(t, SSHKEY_ED25519);
	assert_string_equal(fp, "6xfjsmrLGGeAMuSQf+sQURknpJIdk7+aiWwPFy5tRls=");
	assert_int_equal(strncmp(line, ed_line, strlen(line)), 0);
	assert_int_equal(strlen(line), strlen(ed_line) - 1); /* the newline trimmed */
	free(line);
	assert_int_equal(import(rsa_line, &t, &line, fp), 0);
	assert_int_equal(t, SSHKEY_RSA);
	assert_string_equal(fp, "9a:79:87:3f:bf:24:f5:e3:46:1b:6c:97:74:79:a7:71");
	free(line);
	assert_int_equal(import(ed_rfc4716, &t, &line, fp), 0);
	assert_string_equal(fp, "6xfjsmrLGGeAMuSQf+sQURknpJIdk7+aiWwPFy5tRls=");
	assert_string_equal(line,
	                    "ssh-ed25519 "
	                    "AAAAC3NzaC1lZDI1NTE5AAAAIC4mnKmAokDAyh5P4QtM+ftk6jWdDGBqAKDI6mV21uYL "
	                    "256-bit ED25519, converted by root@vm from OpenSSH");
	free(line);
	assert_int_equal(import(rsa_der, &t, &line, fp), 0);
	assert_int_equal(t, SSHKEY_RSA);
	assert_string_equal(fp, "9a:79:87:3f:bf:24:f5:e3:46:1b:6c:97:74:79:a7:71");
	assert_int_equal(strncmp(line, rsa_line, strlen(line)), 0);
	free(line);
}

static void test_import_refusals(void **state)
{
	static const char *const bad[] = {
	    "",
	    "ssh-ed25519",
	    "ssh-dss AAAAB3NzaC1kc3MAAACBAP",
	    "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIC4mnKmAokDAyh5P4QtM+ftk6jWdDGBqAKDI6mV21uYL",
	    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC4mnKmAokDAyh5P4QtM+ftk6jWdDGBqAKDI6mV21u",
	    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC4mnKmAokDAyh5P4QtM+ftk6jWdDGBqAKDI6mV21uYL\nx",
	    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC4m=nKmAokDAyh5P4QtM+ftk6jWdDGBqAKDI6mV21uY",
	    "---- BEGIN SSH2 PUBLIC KEY ----\nAAAAC3NzaC1lZDI1NTE5AAAAIC4mnKmAokDAyh5P4QtM+ftk",
	    "---- BEGIN SSH2 PUBLIC KEY ----\n---- END SSH2 PUBLIC KEY ----",
	    "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----",
	    "MCowBQYDK2VwAyEA",
	};
	char fp[SSHKEY_FINGERPRINT_MAX], *line;
	enum sshkey_type t;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(import(bad[i], &t, &line, fp), -1);
}

static void test_generate_round_trip(void **state)
{
	static const struct {
		enum sshkey_type type;
		enum sshkey_format format;
		const char *head;
	} cases[] = {
	    {SSHKEY_RSA, SSHKEY_PEM, "-----BEGIN RSA PRIVATE KEY-----\n"},
	    {SSHKEY_ED25519, SSHKEY_PEM, "-----BEGIN OPENSSH PRIVATE KEY-----\n"},
	    {SSHKEY_RSA, SSHKEY_PPK, "PuTTY-User-Key-File-3: ssh-rsa\n"},
	    {SSHKEY_ED25519, SSHKEY_PPK, "PuTTY-User-Key-File-3: ssh-ed25519\n"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char fp[SSHKEY_FINGERPRINT_MAX], fp2[SSHKEY_FINGERPRINT_MAX], *mat, *line, *line2;
		struct kerr *err = NULL;
		enum sshkey_type t;

		assert_int_equal(
		    sshkey_generate(cases[i].type, cases[i].format, "k", &mat, &line, fp, &err), 0);
		assert_int_equal(strncmp(mat, cases[i].head, strlen(cases[i].head)), 0);
		assert_int_equal(import(line, &t, &line2, fp2), 0);
		assert_int_equal(t, cases[i].type);
		assert_string_equal(line, line2);
		/* Ed25519: the same fingerprint made or imported; RSA: SHA-1 of the private key
		 * when made, MD5 of the public key when imported */
		if (t == SSHKEY_ED25519)
			assert_string_equal(fp, fp2);
		else
			assert_true(strlen(fp) == 59 && strlen(fp2) == 47);
		free(mat);
		free(line);
		free(line2);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_import_fingerprints),
	    cmocka_unit_test(test_import_refusals),
	    cmocka_unit_test(test_generate_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
