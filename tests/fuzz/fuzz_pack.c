/* libFuzzer target: pack_read_footer must refuse, never crash on, any pack file (a memfd holds
 * the input as the file, read through the directory backend's reads). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "store/blob.h"
#include "store/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct blob dir = {.ops = &blob_dir_ops};
	char name[] = "fuzz.pack";
	struct pack_entry *e = NULL;
	struct kerr *err = NULL;
	uint64_t end;
	size_t n;
	int fd = memfd_create("pack", MFD_CLOEXEC);
	struct blob_file f = {.b = &dir, .fd = fd, .name = name, .size = size, .has_size = true};

	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size && pack_read_footer(&f, &end, &e, &n, &err) == 0)
		free(e);
	kerr_free(err);
	close(fd);
	return 0;
}
