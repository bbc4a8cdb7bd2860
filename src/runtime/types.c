/* Instance types: EC2's names with their vCPUs and memory; vCPUs become a CPU quota and the
 * memory a hard limit. */
#include <string.h>

#include "runtime.h"
#include "util/banned.h"

const struct instance_type instance_types[] = {
    {"t2.nano", 1, 512},   {"t2.micro", 1, 1024},   {"t2.small", 1, 2048}, {"t2.medium", 2, 4096},
    {"t2.large", 2, 8192}, {"t2.xlarge", 4, 16384}, {"t3.nano", 2, 512},   {"t3.micro", 2, 1024},
    {"t3.small", 2, 2048}, {"t3.medium", 2, 4096},  {"t3.large", 2, 8192}, {"t3.xlarge", 4, 16384},
    {"m5.large", 2, 8192}, {"m5.xlarge", 4, 16384}, {"c5.large", 2, 4096}, {"c5.xlarge", 4, 8192},
    {NULL, 0, 0},
};

const struct instance_type *instance_type_find(const char *name)
{
	for (const struct instance_type *t = instance_types; t->name; t++)
		if (!strcmp(t->name, name))
			return t;
	return NULL;
}

/* Enough for a busy server of that size; a fork bomb stops there, inside the instance. */
uint64_t instance_type_pids(const struct instance_type *t)
{
	return t->memory_mib < 512 ? 256 : t->memory_mib / 2;
}
