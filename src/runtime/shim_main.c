/* kiln-shim: the small supervisor of one instance (see shim.c), and the entry of `kiln exec`
 * (exec.c). A binary of its own so that it starts fast: it loads only what the runtime needs,
 * not the whole kiln command.
 * usage: kiln-shim __shim DIR READY_FD INIT_PATH (the marker lets the runtime recognize it)
 *        kiln-shim __exec DIR COMMAND [ARG...] */
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "util/banned.h"

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "__exec"))
		return runtime_exec_main(argv[2], argv + 3);
	if (argc != 5 || strcmp(argv[1], "__shim") != 0)
		return 2;
	return runtime_shim_main(argv[2], argv[4], (int)strtol(argv[3], NULL, 10));
}
