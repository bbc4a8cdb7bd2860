/* SHA-256 through OpenSSL (SHA-NI where the CPU has it), and hex conversion. */
#ifndef KILN_HASH_H
#define KILN_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_LEN     32
#define HASH_HEX_LEN 64

void hash_sha256(const void *data, size_t len, uint8_t out[HASH_LEN]);
/* out holds 2*len+1 bytes. */
void hash_hex(const uint8_t *in, size_t len, char *out);
/* Parse exactly 2*len hex digits; -1 on anything else. */
int hash_unhex(const char *in, uint8_t *out, size_t len);

#endif
