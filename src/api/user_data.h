/* UserData of RunInstances and ModifyInstanceAttribute: base64 of at most 16 KiB, decoded once
 * at the door (the cloud keeps the bytes). */
#ifndef KILN_API_USER_DATA_H
#define KILN_API_USER_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "api/errors.h"
#include "runtime/runtime.h" /* USER_DATA_MAX */

/* Decodes b64 (canonical base64: A-Z a-z 0-9 + /, '=' only as the last one or two of a length
 * that is a multiple of 4) into *out (malloc'd, *n bytes; an empty string gives 0 bytes). On error
 * (InvalidParameterValue: too long, not base64) *out is NULL. */
int user_data_decode(const char *b64, uint8_t **out, size_t *n, struct api_error *e);

#endif
