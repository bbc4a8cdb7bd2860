/* IMDSv2 tokens: hex of 8 bytes of expiry (big-endian seconds) and the first 24 bytes of
 * HMAC-SHA256(key, instance id, NUL, the expiry bytes). */
#include "api/imds_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "util/banned.h"

#define MAC_PART 24

int imds_token_key_init(struct imds_token_key *key, struct kerr **err)
{
	if (RAND_bytes(key->k, sizeof(key->k)) != 1)
		return kerr_set(err, KERR_INTERNAL, "cannot draw the metadata service's token key");
	return 0;
}

static void token_mac(const struct imds_token_key *key, const char *instance, const uint8_t when[8],
                      uint8_t out[MAC_PART])
{
	uint8_t msg[64 + 1 + 8], mac[EVP_MAX_MD_SIZE];
	size_t n = strnlen(instance, 64);
	unsigned maclen = 0;

	memcpy(msg, instance, n);
	msg[n] = 0;
	memcpy(msg + n + 1, when, 8);
	HMAC(EVP_sha256(), key->k, sizeof(key->k), msg, n + 1 + 8, mac, &maclen);
	memcpy(out, mac, MAC_PART);
}

void imds_token_make(const struct imds_token_key *key, const char *instance, int64_t expires_s,
                     char out[IMDS_TOKEN_LEN + 1])
{
	uint8_t raw[8 + MAC_PART];

	for (int i = 0; i < 8; i++)
		raw[i] = (uint8_t)((uint64_t)expires_s >> (56 - 8 * i));
	token_mac(key, instance, raw, raw + 8);
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int imds_token_check(const struct imds_token_key *key, const char *token, const char *instance,
                     int64_t now_s)
{
	uint8_t raw[8 + MAC_PART], mac[MAC_PART];
	uint64_t expires = 0;

	if (!token || strlen(token) != IMDS_TOKEN_LEN)
		return -1;
	for (size_t i = 0; i < sizeof(raw); i++) {
		int hi = hexval(token[2 * i]), lo = hexval(token[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		raw[i] = (uint8_t)(hi << 4 | lo);
	}
	token_mac(key, instance, raw, mac);
	if (CRYPTO_memcmp(mac, raw + 8, MAC_PART) != 0)
		return -1;
	for (int i = 0; i < 8; i++)
		expires = expires << 8 | raw[i];
	return (int64_t)expires > now_s ? 0 : -1;
}

int imds_ttl_parse(const char *s)
{
	long v = 0;

	if (!s || !*s || strlen(s) > 5 || (s[0] == '0'))
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v >= 1 && v <= IMDS_TTL_MAX ? (int)v : -1;
}
