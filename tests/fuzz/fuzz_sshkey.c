/* libFuzzer target: sshkey_import (ImportKeyPair's PublicKeyMaterial, decoded) must refuse, never
 * crash on, any input; what it accepts must import again to the same line and fingerprint. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/sshkey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char fp[SSHKEY_FINGERPRINT_MAX], fp2[SSHKEY_FINGERPRINT_MAX], *line = NULL, *line2 = NULL;
	enum sshkey_type t, t2;
	struct kerr *err = NULL;

	if (sshkey_import((const char *)data, size, &t, &line, fp, &err) < 0) {
		kerr_free(err);
		return 0;
	}
	if (sshkey_import(line, strlen(line), &t2, &line2, fp2, &err) < 0 || t2 != t ||
	    strcmp(line, line2) || strcmp(fp, fp2))
		abort();
	free(line);
	free(line2);
	return 0;
}
