/*
 * bench.c - `shmbus bench`: runs the benchmark program, shmbus-bench, so
 * that one command reaches everything. The program is looked for beside
 * this binary first (the build directory, or the install's bin), then on
 * PATH; it is built separately (`make bench`) because it is not a tool
 * most users need.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli.h"

#define BENCH_NAME "shmbus-bench"

const char sb_cli_bench_usage[] =
    "usage: shmbus bench [ARGS...]\n"
    "\n"
    "Runs the benchmark program " BENCH_NAME " with ARGS: one-way "
    "latency and\n"
    "throughput of shmbus topics against pipes, Unix sockets and memcpy, "
    "on this\n"
    "machine. It needs no broker. " BENCH_NAME " is found beside the "
    "shmbus binary,\n"
    "else on PATH; build it with 'make bench'.\n"
    "\n"
    "  --help          this text; 'shmbus bench -- --help' shows the "
    "benchmark's\n"
    "                  own options (a first -- is dropped)\n";

/* Writes "<directory of this binary>/shmbus-bench" into `out`. Returns 0,
 * or -1 when the binary's own path cannot be read. */
static int beside_self(char *out, size_t outlen)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0) {
		return -1;
	}
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash == NULL) {
		return -1;
	}
	*slash = '\0';
	if ((size_t)snprintf(out, outlen, "%s/%s", self, BENCH_NAME) >=
	    outlen) {
		return -1;
	}
	return 0;
}

int sb_cli_bench(int argc, char **argv)
{
	char path[PATH_MAX];
	char **args;
	int first = 1;

	if (argc > 1 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(sb_cli_bench_usage, stdout);
		return SB_EXIT_OK;
	}
	if (argc > 1 && strcmp(argv[1], "--") == 0) {
		first = 2;
	}
	args = calloc((size_t)(argc - first) + 2, sizeof(*args));
	if (args == NULL) {
		return sb_cli_fail(SB_EXIT_ERROR, "bench", "out of memory");
	}
	args[0] = BENCH_NAME;
	for (int i = first; i < argc; i++) {
		args[i - first + 1] = argv[i];
	}
	fflush(stdout);
	if (beside_self(path, sizeof(path)) == 0 && access(path, X_OK) == 0) {
		execv(path, args);
		free(args);
		return sb_cli_fail(SB_EXIT_ERROR, "bench", "%s: %s", path,
				   strerror(errno));
	}
	execvp(BENCH_NAME, args);
	free(args);
	if (errno == ENOENT) {
		return sb_cli_fail(SB_EXIT_ERROR, "bench",
				   BENCH_NAME " is not built or installed "
					      "(build it with 'make bench')");
	}
	return sb_cli_fail(SB_EXIT_ERROR, "bench", BENCH_NAME ": %s",
			   strerror(errno));
}
