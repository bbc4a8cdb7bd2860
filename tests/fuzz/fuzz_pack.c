/* libFuzzer target: pack_read_footer must refuse, never crash on, any pack file (a memfd holds
 * the input as the file). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "store/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pack_entry *e = NULL;
	struct kerr *err = NULL;
	uint64_t end;
	size_t n;
	int fd = memfd_create("pack", MFD_CLOEXEC);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size && pack_read_footer(fd, &end, &e, &n, &err) == 0)
		free(e);
	kerr_free(err);
	close(fd);
	return 0;
}
