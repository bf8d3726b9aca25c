/*
 * spin_pair.c - the program bench/syscalls.sh runs under strace: a writer
 * process publishes N messages of 64 bytes into a shmbus ring (block
 * policy) and a reader process spins on receive with timeout 0 until it has
 * them all. Nothing else happens, so every system call strace counts
 * beyond set-up belongs to the fast path.
 *
 * usage: spin-pair N
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ring/ring.h"

static void *shared(uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int reader(struct sb_ring_reader *rd, long n)
{
	char buf[64];
	long got = 0;

	while (got < n) {
		ssize_t r = sb_ring_receive(rd, buf, sizeof(buf), 0);

		if (r == (ssize_t)sizeof(buf)) {
			got++;
		} else if (r != -EAGAIN) {
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sb_ring_config cfg = {1u << 20,
				     4096,
				     4,
				     SB_RING_BROADCAST,
				     SB_RING_BLOCK,
				     0,
				     SB_RING_SLOTS_INLINE};
	struct sb_ring ring;
	struct sb_ring_reader rd;
	uint64_t ds, cs;
	char msg[64] = {0};
	long n = argc == 2 ? atol(argv[1]) : 0;
	void *data, *ctl;
	pid_t pid;
	int status;

	if (n <= 0 || sb_ring_layout(&cfg, &ds, &cs) < 0 ||
	    (data = shared(ds)) == NULL || (ctl = shared(cs)) == NULL ||
	    sb_ring_format(data, ds, ctl, cs, &cfg) < 0 ||
	    sb_ring_attach(&ring, data, ds, ctl, cs) < 0 ||
	    sb_ring_reader_open(&ring, SB_RING_START_LATEST, &rd) < 0) {
		fprintf(stderr, "usage: spin-pair N (N > 0)\n");
		return 2;
	}
	pid = fork();
	if (pid == 0) {
		_exit(reader(&rd, n));
	}
	for (long i = 0; i < n; i++) {
		if (sb_ring_publish(&ring, msg, sizeof(msg), -1) < 0) {
			return 1;
		}
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || status != 0) {
		return 1;
	}
	return 0;
}
