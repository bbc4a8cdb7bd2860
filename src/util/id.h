/* Resource ids as EC2 spells them: a prefix, a dash, 17 random lowercase hex digits. */
#ifndef KILN_ID_H
#define KILN_ID_H

#include <stdbool.h>
#include <stddef.h>

#define ID_HEX_DIGITS       17
#define ID_HEX_DIGITS_SHORT 8 /* the older ids, still valid in requests */
#define ID_MAX              32

/* out: at least ID_MAX bytes. prefix like "snap". */
void id_new(const char *prefix, char *out);
/* True when s is prefix-<17 or 8 lowercase hex>. */
bool id_valid(const char *prefix, const char *s);
/* n random hex digits into out (n+1 bytes). */
void id_random_hex(char *out, size_t n);

#endif
