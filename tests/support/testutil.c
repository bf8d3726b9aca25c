/*
 * testutil.c - see testutil.h.
 */
#include "tests/support/testutil.h"

#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

char *sbt_tempdir(void)
{
	char tmpl[] = "/tmp/shmbus-test-XXXXXX";
	char *dir = mkdtemp(tmpl);

	if (dir == NULL) {
		perror("mkdtemp");
		abort();
	}
	return strdup(dir);
}

static int remove_entry(const char *path, const struct stat *st, int type,
			struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

void sbt_rmtree(char *path)
{
	if (path == NULL) {
		return;
	}
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(path);
}

void sbt_unique_name(char *buf, size_t size, const char *prefix)
{
	static unsigned counter;

	snprintf(buf, size, "%s-%ld-%u", prefix, (long)getpid(), counter++);
}

int sbt_wait(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			return -1000;
		}
	}
	if (WIFSIGNALED(status)) {
		return -WTERMSIG(status);
	}
	return WEXITSTATUS(status);
}

uint32_t sbt_checksum(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++) {
		h = (h ^ p[i]) * 16777619u;
	}
	return h;
}

uint64_t sbt_mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* xorshift32 stream: cheap, and every byte depends on the seed. */
static uint32_t next_word(uint32_t *state)
{
	uint32_t x = *state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*state = x;
	return x;
}

void sbt_fill_pattern(void *buf, size_t len, uint32_t seed)
{
	unsigned char *p = buf;
	uint32_t state = seed | 1u;

	for (size_t i = 0; i < len; i++) {
		p[i] = (unsigned char)next_word(&state);
	}
}

int sbt_check_pattern(const void *buf, size_t len, uint32_t seed)
{
	const unsigned char *p = buf;
	uint32_t state = seed | 1u;

	for (size_t i = 0; i < len; i++) {
		if (p[i] != (unsigned char)next_word(&state)) {
			return 0;
		}
	}
	return 1;
}

const char *sbt_bindir(void)
{
	const char *dir = getenv("SHMBUS_TEST_BINDIR");

	return dir != NULL && dir[0] != '\0' ? dir : "build/plain";
}

void *sbt_shared_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

int sbt_become(uid_t uid)
{
	if (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0) {
		return -errno;
	}
	return geteuid() == uid ? 0 : -EPERM;
}

int sbt_become_nobody(void)
{
	return sbt_become(65534);
}

int sbt_write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	int r = 0;

	if (f == NULL) {
		return -errno;
	}
	if (fwrite(data, 1, len, f) != len) {
		r = -EIO;
	}
	if (fclose(f) != 0 && r == 0) {
		r = -errno;
	}
	return r;
}

int sbt_wait_flag(_Atomic uint32_t *p, int ms)
{
	for (int i = 0; i < ms; i++) {
		if (atomic_load(p) != 0) {
			return 1;
		}
		sbt_sleep_ms(1);
	}
	return 0;
}

int sbt_wait_u64(_Atomic uint64_t *p, uint64_t want, int ms)
{
	for (int i = 0; i < ms; i++) {
		if (atomic_load(p) >= want) {
			return 1;
		}
		sbt_sleep_ms(1);
	}
	return 0;
}

void sbt_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}
