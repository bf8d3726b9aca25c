/*
 * check_map.c - the mapping layer (include/shmbus/map.h): one test case per
 * row of the Win32 table in DESIGN.md plus the behaviours the contract
 * promises (bounds, access, the lock surviving its holder's death), with
 * forked processes and real signals where the promise is about processes.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "shmbus/map.h"
#include "tests/suites.h"
#include "tests/support/testutil.h"

#define RW     SHMBUS_ACCESS_WRITE
#define RO     SHMBUS_ACCESS_READ
#define CP     SHMBUS_ACCESS_COPY
#define CREATE SHMBUS_MAP_CREATE
#define EXCL   SHMBUS_MAP_EXCL
#define TRUNC  SHMBUS_MAP_TRUNCATE

#define GIB (1024ull * 1024ull * 1024ull)

static size_t page;

static void setup(void)
{
	page = (size_t)sysconf(_SC_PAGESIZE);
}

static void shm_name(char *buf, size_t size)
{
	sbt_unique_name(buf, size, "sbmap");
}

/* "<dir>/<leaf>" in a malloc'd string. */
static char *join(const char *dir, const char *leaf)
{
	size_t n = strlen(dir) + strlen(leaf) + 2;
	char *path = malloc(n);

	ck_assert_ptr_nonnull(path);
	snprintf(path, n, "%s/%s", dir, leaf);
	return path;
}

static double elapsed_ms(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - since->tv_sec) * 1e3 +
	       (double)(now.tv_nsec - since->tv_nsec) / 1e6;
}

/* One byte through a pipe: the cheapest way for a forked process to say
 * "I got this far". Returns 0 on success. */
static int send_byte(int fd)
{
	char c = 'x';

	return write(fd, &c, 1) == 1 ? 0 : -1;
}

static int recv_byte(int fd)
{
	char c;

	return read(fd, &c, 1) == 1 ? 0 : -1;
}

/* A child that must die by a signal should not leave a core behind, nor be
 * caught by the sanitizer's handler. */
static void child_default_signals(void)
{
	struct rlimit no_core = {0, 0};
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	setrlimit(RLIMIT_CORE, &no_core);
}

/* Reads the line "<field> <value> ..." of the /proc/self/smaps entry that
 * contains `addr` into buf. Returns 0 when found. */
static int smaps_field(const void *addr, const char *field, char *buf,
		       size_t size)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char *line = NULL;
	size_t cap = 0;
	int inside = 0;
	int rc = -1;

	ck_assert_ptr_nonnull(f);
	while (getline(&line, &cap, f) > 0) {
		unsigned long start;
		unsigned long end;

		if (sscanf(line, "%lx-%lx ", &start, &end) == 2 &&
		    strchr(line, ':') != NULL && line[0] != 'V') {
			inside =
			    (uintptr_t)addr >= start && (uintptr_t)addr < end;
			continue;
		}
		if (inside && strncmp(line, field, strlen(field)) == 0) {
			snprintf(buf, size, "%s", line + strlen(field));
			rc = 0;
			break;
		}
	}
	free(line);
	fclose(f);
	return rc;
}

/* Does the VMA holding `addr` carry the two-letter VmFlags flag `flag`? */
static int vm_flag(const void *addr, const char *flag)
{
	char flags[512];
	char *save = NULL;

	ck_assert_int_eq(smaps_field(addr, "VmFlags:", flags, sizeof(flags)),
			 0);
	for (char *tok = strtok_r(flags, " \n", &save); tok != NULL;
	     tok = strtok_r(NULL, " \n", &save)) {
		if (strcmp(tok, flag) == 0) {
			return 1;
		}
	}
	return 0;
}

/* Dirty kB (shared + private) of the VMA holding `addr`. */
static long dirty_kb(const void *addr)
{
	char buf[128];
	long total = 0;

	ck_assert_int_eq(smaps_field(addr, "Shared_Dirty:", buf, sizeof(buf)),
			 0);
	total += strtol(buf, NULL, 10);
	ck_assert_int_eq(smaps_field(addr, "Private_Dirty:", buf, sizeof(buf)),
			 0);
	total += strtol(buf, NULL, 10);
	return total;
}

/* Forks `fn(arg)` as a process without our privileges (as "nobody" when we
 * are root: root passes every permission check) and returns its exit
 * status. */
static int run_unprivileged(int (*fn)(const void *), const void *arg)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (geteuid() == 0 &&
		    (setgid(65534) != 0 || setuid(65534) != 0)) {
			_exit(100);
		}
		_exit(fn(arg));
	}
	return sbt_wait(pid);
}

/* ---- shmbus_map_file: CreateFile + CreateFileMapping, MapFile ---- */

START_TEST(file_bytes_reach_the_file_and_survive_reopen)
{
	char *dir = sbt_tempdir();
	char *path = join(dir, "data");
	size_t len = 3 * page;
	shmbus_map *map;
	shmbus_view *view;
	unsigned char *buf = malloc(5000);
	int fd;

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(shmbus_map_file(path, len, RW | CREATE, &map), 0);
	ck_assert_int_eq(shmbus_map_size(map), (int64_t)len);
	ck_assert_int_eq(shmbus_view_map(map, 1000, 5000, RW, &view), 0);
	sbt_fill_pattern(shmbus_view_data(view), 5000, 42);
	ck_assert_int_eq(shmbus_view_flush(view, 0, 0), 0);

	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, 5000, 1000), 5000);
	ck_assert(sbt_check_pattern(buf, 5000, 42));
	ck_assert_int_eq(pread(fd, buf, 1000, 0), 1000);
	for (size_t i = 0; i < 1000; i++) {
		ck_assert_int_eq(buf[i], 0);
	}
	close(fd);
	ck_assert_int_eq(shmbus_map_close(map), 0);

	/* Size 0 = the file's own size; the bytes are still there. */
	ck_assert_int_eq(shmbus_map_file(path, 0, RO, &map), 0);
	ck_assert_int_eq(shmbus_map_size(map), (int64_t)len);
	ck_assert_int_eq(shmbus_view_map(map, 1000, 5000, RO, &view), 0);
	ck_assert(sbt_check_pattern(shmbus_view_data(view), 5000, 42));
	ck_assert_int_eq(shmbus_map_close(map), 0);

	free(buf);
	free(path);
	sbt_rmtree(dir);
}
END_TEST

START_TEST(file_truncate_empties_and_resizes)
{
	char *dir = sbt_tempdir();
	char *path = join(dir, "data");
	shmbus_map *map;
	shmbus_view *view;
	const unsigned char *p;

	ck_assert_int_eq(shmbus_map_file(path, 4 * page, RW | CREATE, &map), 0);
	ck_assert_int_eq(shmbus_view_map(map, 0, 0, RW, &view), 0);
	memset(shmbus_view_data(view), 0x5a, 4 * page);
	ck_assert_int_eq(shmbus_map_close(map), 0);

	ck_assert_int_eq(shmbus_map_file(path, 2 * page, RW | TRUNC, &map), 0);
	ck_assert_int_eq(shmbus_map_size(map), (int64_t)(2 * page));
	ck_assert_int_eq(shmbus_view_map(map, 0, 0, RO, &view), 0);
	p = shmbus_view_data(view);
	for (size_t i = 0; i < 2 * page; i++) {
		ck_assert_int_eq(p[i], 0);
	}
	ck_assert_int_eq(shmbus_map_close(map), 0);

	/* A size smaller than the file never shrinks it. */
	ck_assert_int_eq(shmbus_map_file(path, 1, RW, &map), 0);
	ck_assert_int_eq(shmbus_map_size(map), (int64_t)(2 * page));
	ck_assert_int_eq(shmbus_map_close(map), 0);

	free(path);
	sbt_rmtree(dir);
}
END_TEST

static int open_write_denied(const void *arg)
{
	shmbus_map *map = NULL;

	return shmbus_map_file(arg, 0, RW, &map) == -EACCES ? 0 : 1;
}

START_TEST(file_errors)
{
	char *dir = sbt_tempdir();
	char *path = join(dir, "data");
	char *missing = join(dir, "missing");
	char *fifo = join(dir, "fifo");
	char *empty = join(dir, "empty");
	shmbus_map *map = NULL;
	struct stat st;
	int fd;

	ck_assert_int_eq(shmbus_map_file(NULL, page, RW | CREATE, &map),
			 -EINVAL);
	ck_assert_int_eq(shmbus_map_file(path, page, RW | CREATE, NULL),
			 -EINVAL);
	ck_assert_int_eq(shmbus_map_file(path, page, CREATE, &map), -EINVAL);
	ck_assert_int_eq(shmbus_map_file(path, page, RW | RO | CREATE, &map),
			 -EINVAL);
	ck_assert_int_eq(shmbus_map_file(path, page, RW | 0x8000u, &map),
			 -EINVAL);
	ck_assert_int_eq(
	    shmbus_map_file(path, page, RW | SHMBUS_VIEW_RANDOM, &map),
	    -EINVAL);
	ck_assert_int_eq(shmbus_map_file(path, page, RW | EXCL, &map), -EINVAL);
	ck_assert_int_eq(shmbus_map_file(path, page, RO | CREATE, &map),
			 -EINVAL);
	ck_assert_int_eq(shmbus_map_file(path, page, CP | TRUNC, &map),
			 -EINVAL);
	ck_assert_int_eq(shmbus_map_file(path, 0, RW | TRUNC, &map), -EINVAL);
	ck_assert_int_eq(shmbus_map_file(path, UINT64_MAX, RW | CREATE, &map),
			 -EINVAL);
	/* A new file of size 0 would be empty: refused, and not created. */
	ck_assert_int_eq(shmbus_map_file(path, 0, RW | CREATE, &map), -EINVAL);
	ck_assert_int_eq(stat(path, &st), -1);

	ck_assert_int_eq(shmbus_map_file(missing, 0, RW, &map), -ENOENT);
	ck_assert_int_eq(shmbus_map_file(missing, page, RO, &map), -ENOENT);

	ck_assert_int_eq(shmbus_map_file(path, page, RW | CREATE, &map), 0);
	ck_assert_int_eq(shmbus_map_close(map), 0);
	ck_assert_int_eq(shmbus_map_file(path, page, RW | CREATE | EXCL, &map),
			 -EEXIST);

	/* Growing needs write access; the file is left as it was. */
	ck_assert_int_eq(shmbus_map_file(path, 2 * page, RO, &map), -EACCES);
	ck_assert_int_eq(shmbus_map_file(path, 2 * page, CP, &map), -EACCES);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, (off_t)page);

	/* The file's own permissions. */
	ck_assert_int_eq(chmod(dir, 0755), 0);
	ck_assert_int_eq(chmod(path, geteuid() == 0 ? 0600 : 0400), 0);
	ck_assert_int_eq(run_unprivileged(open_write_denied, path), 0);

	ck_assert_int_eq(shmbus_map_file(dir, 0, RO, &map), -EISDIR);
	ck_assert_int_eq(shmbus_map_file(dir, 0, RW, &map), -EISDIR);

	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	ck_assert_int_eq(shmbus_map_file(fifo, 0, RO, &map), -ENODEV);

	fd = open(empty, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(shmbus_map_file(empty, 0, RO, &map), -EINVAL);
	ck_assert_int_eq(shmbus_map_file(empty, 0, RW, &map), -EINVAL);

	free(empty);
	free(fifo);
	free(missing);
	free(path);
	sbt_rmtree(dir);
}
END_TEST

START_TEST(file_failed_create_leaves_nothing)
{
	char *dir = sbt_tempdir();
	char *path = join(dir, "huge");
	shmbus_map *map = NULL;
	struct stat st;
	int rc;

	/* 1 PiB is past the largest file ext4 (and most file systems) can
	 * hold: ftruncate fails after the file was created, and the file we
	 * created must be gone again. */
	rc = shmbus_map_file(path, 1ull << 50, RW | CREATE, &map);
	if (rc == 0) {
		shmbus_map_close(map);
	} else {
		ck_assert_int_eq(rc, -EFBIG);
		ck_assert_int_eq(stat(path, &st), -1);
		ck_assert_int_eq(errno, ENOENT);
	}
	free(path);
	sbt_rmtree(dir);
}
END_TEST

/* ---- shmbus_map_memory: MapMemory ---- */

START_TEST(memory_is_zeroed_and_shared_between_views)
{
	shmbus_map *map;
	shmbus_view *a;
	shmbus_view *b;
	const unsigned char *p;

	ck_assert_int_eq(shmbus_map_memory(8 * page + 3, &map), 0);
	ck_assert_int_eq(shmbus_map_size(map), (int64_t)(8 * page + 3));
	ck_assert_int_eq(shmbus_view_map(map, 0, 0, RW, &a), 0);
	ck_assert_uint_eq(shmbus_view_size(a), 8 * page + 3);
	p = shmbus_view_data(a);
	for (size_t i = 0; i < 8 * page + 3; i++) {
		ck_assert_int_eq(p[i], 0);
	}
	ck_assert_int_eq(shmbus_view_map(map, 2 * page, page, RO, &b), 0);
	sbt_fill_pattern((unsigned char *)shmbus_view_data(a) + 2 * page, page,
			 7);
	ck_assert(sbt_check_pattern(shmbus_view_data(b), page, 7));
	/* Flushing private memory is allowed and harmless. */
	ck_assert_int_eq(shmbus_view_flush(a, 0, 0), 0);
	ck_assert_int_eq(shmbus_map_close(map), 0);
}
END_TEST

START_TEST(memory_errors)
{
	shmbus_map *map = NULL;

	ck_assert_int_eq(shmbus_map_memory(0, &map), -EINVAL);
	ck_assert_int_eq(shmbus_map_memory(page, NULL), -EINVAL);
	ck_assert_int_eq(shmbus_map_memory(UINT64_MAX, &map), -EINVAL);
	/* More than RAM and swap together: refused at once. */
	ck_assert_int_eq(shmbus_map_memory(1ull << 50, &map), -ENOMEM);
}
END_TEST

/* ---- shmbus_map_shared: CreateFileMapping(INVALID_HANDLE_VALUE, name) ---- */

START_TEST(shared_child_opens_by_name_and_writes)
{
	char name[64];
	shmbus_map *map;
	shmbus_view *view;
	pid_t pid;

	shm_name(name, sizeof(name));
	ck_assert_int_eq(shmbus_map_shared(name, 5 * page, RW | CREATE, &map),
			 0);
	ck_assert_int_eq(shmbus_map_size(map), (int64_t)(5 * page));
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		shmbus_map *child;
		shmbus_view *cv;

		if (shmbus_map_open(name, RW, &child) != 0 ||
		    shmbus_view_map(child, page + 17, 3000, RW, &cv) != 0) {
			_exit(1);
		}
		sbt_fill_pattern(shmbus_view_data(cv), 3000, 99);
		shmbus_map_close(child);
		_exit(0);
	}
	ck_assert_int_eq(sbt_wait(pid), 0);
	ck_assert_int_eq(shmbus_view_map(map, page + 17, 3000, RO, &view), 0);
	ck_assert(sbt_check_pattern(shmbus_view_data(view), 3000, 99));
	ck_assert_int_eq(shmbus_map_close(map), 0);
	ck_assert_int_eq(shmbus_map_unlink(name), 0);
}
END_TEST

START_TEST(shared_create_grows_truncates_and_excludes)
{
	char name[64];
	char slashed[80];
	shmbus_map *map;
	shmbus_map *other;
	shmbus_view *view;
	const unsigned char *p;

	shm_name(name, sizeof(name));
	snprintf(slashed, sizeof(slashed), "/%s", name);
	ck_assert_int_eq(
	    shmbus_map_shared(name, page, RW | CREATE | EXCL, &map), 0);
	ck_assert_int_eq(shmbus_view_map(map, 0, 0, RW, &view), 0);
	memset(shmbus_view_data(view), 0x77, page);

	ck_assert_int_eq(
	    shmbus_map_shared(slashed, page, RW | CREATE | EXCL, &other),
	    -EEXIST);
	/* The leading '/' names the same object; a larger size grows it and
	 * keeps the bytes, a smaller one changes nothing. */
	ck_assert_int_eq(
	    shmbus_map_shared(slashed, 3 * page, RW | CREATE, &other), 0);
	ck_assert_int_eq(shmbus_map_size(map), (int64_t)(3 * page));
	ck_assert_int_eq(shmbus_map_close(other), 0);
	ck_assert_int_eq(shmbus_map_shared(name, 1, RO, &other), 0);
	ck_assert_int_eq(shmbus_map_size(other), (int64_t)(3 * page));
	ck_assert_int_eq(shmbus_view_map(other, 0, 0, RO, &view), 0);
	p = shmbus_view_data(view);
	ck_assert_int_eq(p[0], 0x77);
	ck_assert_int_eq(p[page - 1], 0x77);
	ck_assert_int_eq(p[page], 0);
	ck_assert_int_eq(shmbus_map_close(other), 0);

	/* Growing through a read-only open is refused. */
	ck_assert_int_eq(shmbus_map_shared(name, 4 * page, RO, &other),
			 -EACCES);

	ck_assert_int_eq(shmbus_map_shared(name, 2 * page, RW | TRUNC, &other),
			 0);
	ck_assert_int_eq(shmbus_map_size(other), (int64_t)(2 * page));
	ck_assert_int_eq(shmbus_view_map(other, 0, 0, RO, &view), 0);
	p = shmbus_view_data(view);
	for (size_t i = 0; i < 2 * page; i++) {
		ck_assert_int_eq(p[i], 0);
	}
	ck_assert_int_eq(shmbus_map_close(other), 0);
	ck_assert_int_eq(shmbus_map_close(map), 0);
	ck_assert_int_eq(shmbus_map_unlink(slashed), 0);
}
END_TEST

START_TEST(shared_errors)
{
	char name[64];
	shmbus_map *map = NULL;
	struct statvfs vfs;

	shm_name(name, sizeof(name));
	ck_assert_int_eq(shmbus_map_shared(name, page, RW, &map), -ENOENT);
	ck_assert_int_eq(shmbus_map_shared(name, page, RW | CREATE, NULL),
			 -EINVAL);
	ck_assert_int_eq(shmbus_map_shared(name, page, RO | CREATE, &map),
			 -EINVAL);
	ck_assert_int_eq(shmbus_map_shared(name, page, RW | EXCL, &map),
			 -EINVAL);
	ck_assert_int_eq(shmbus_map_shared(name, page, 0x10000u | RW, &map),
			 -EINVAL);
	ck_assert_int_eq(shmbus_map_shared(name, page, CREATE, &map), -EINVAL);
	/* A new object of size 0: refused, and nothing is left behind. */
	ck_assert_int_eq(shmbus_map_shared(name, 0, RW | CREATE, &map),
			 -EINVAL);
	ck_assert_int_eq(shmbus_map_open(name, RO, &map), -ENOENT);

	/* Larger than /dev/shm can ever hold: -ENOSPC at once, not a SIGBUS
	 * later, and the half-made object is removed. */
	ck_assert_int_eq(statvfs("/dev/shm", &vfs), 0);
	if (vfs.f_blocks > 0) {
		uint64_t total = (uint64_t)vfs.f_blocks * vfs.f_frsize;

		ck_assert_int_eq(
		    shmbus_map_shared(name, total + GIB, RW | CREATE, &map),
		    -ENOSPC);
		ck_assert_int_eq(shmbus_map_open(name, RO, &map), -ENOENT);
	}
}
END_TEST

START_TEST(bad_names_are_refused)
{
	static const char *const bad[] = {
	    "", "/", "a/b", "/a/b", "//a", ".", "..", "/.", "/..", "a/",
	};
	char longest[SHMBUS_MAP_NAME_MAX + 2];
	char too_long[SHMBUS_MAP_NAME_MAX + 2];
	shmbus_map *map = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(
		    shmbus_map_shared(bad[i], page, RW | CREATE, &map),
		    -EINVAL);
		ck_assert_int_eq(shmbus_map_open(bad[i], RW, &map), -EINVAL);
		ck_assert_int_eq(shmbus_map_unlink(bad[i]), -EINVAL);
	}
	ck_assert_int_eq(shmbus_map_shared(NULL, page, RW | CREATE, &map),
			 -EINVAL);
	ck_assert_int_eq(shmbus_map_open(NULL, RW, &map), -EINVAL);
	ck_assert_int_eq(shmbus_map_unlink(NULL), -EINVAL);

	memset(too_long, 'n', SHMBUS_MAP_NAME_MAX + 1);
	too_long[SHMBUS_MAP_NAME_MAX + 1] = '\0';
	ck_assert_int_eq(shmbus_map_shared(too_long, page, RW | CREATE, &map),
			 -EINVAL);

	/* Exactly SHMBUS_MAP_NAME_MAX characters after the '/' is fine. */
	snprintf(longest, sizeof(longest), "/sbmap-%ld-", (long)getpid());
	memset(longest + strlen(longest), 'x',
	       SHMBUS_MAP_NAME_MAX + 1 - strlen(longest));
	longest[SHMBUS_MAP_NAME_MAX + 1] = '\0';
	ck_assert_int_eq(shmbus_map_shared(longest, page, RW | CREATE, &map),
			 0);
	ck_assert_int_eq(shmbus_map_close(map), 0);
	ck_assert_int_eq(shmbus_map_unlink(longest), 0);
}
END_TEST

/* ---- shmbus_map_open: OpenFileMapping ---- */

static int open_shm_write_denied(const void *arg)
{
	shmbus_map *map = NULL;

	return shmbus_map_open(arg, RW, &map) == -EACCES ? 0 : 1;
}

START_TEST(open_access_and_errors)
{
	char name[64];
	shmbus_map *map;
	shmbus_map *ro;
	shmbus_map *cp;
	shmbus_view *view;

	shm_name(name, sizeof(name));
	ck_assert_int_eq(shmbus_map_open(name, RW, &ro), -ENOENT);
	ck_assert_int_eq(shmbus_map_shared(name, page, RW | CREATE, &map), 0);

	ck_assert_int_eq(shmbus_map_open(name, 0, &ro), -EINVAL);
	ck_assert_int_eq(shmbus_map_open(name, RO | RW, &ro), -EINVAL);
	ck_assert_int_eq(shmbus_map_open(name, RO | CREATE, &ro), -EINVAL);
	ck_assert_int_eq(shmbus_map_open(name, RO, NULL), -EINVAL);

	/* READ gives read-only and copy views, never a write view. */
	ck_assert_int_eq(shmbus_map_open(name, RO, &ro), 0);
	ck_assert_int_eq(shmbus_view_map(ro, 0, 0, RW, &view), -EACCES);
	ck_assert_int_eq(shmbus_view_map(ro, 0, 0, RO, &view), 0);
	ck_assert_int_eq(shmbus_view_map(ro, 0, 0, CP, &view), 0);
	ck_assert_int_eq(shmbus_map_open(name, CP, &cp), 0);
	ck_assert_int_eq(shmbus_view_map(cp, 0, 0, RW, &view), -EACCES);
	ck_assert_int_eq(shmbus_view_map(cp, 0, 0, CP, &view), 0);
	ck_assert_int_eq(shmbus_map_close(cp), 0);
	ck_assert_int_eq(shmbus_map_close(ro), 0);

	/* Shared memory is created 0600: another user gets -EACCES. */
	if (geteuid() != 0) {
		ck_assert_int_eq(fchmod(shmbus_map_fd(map), 0400), 0);
	}
	ck_assert_int_eq(run_unprivileged(open_shm_write_denied, name), 0);

	ck_assert_int_eq(shmbus_map_close(map), 0);
	ck_assert_int_eq(shmbus_map_unlink(name), 0);
}
END_TEST

START_TEST(open_takes_an_empty_object_as_it_is)
{
	char name[64];
	char path[80];
	shmbus_map *map;
	shmbus_map *other = NULL;
	shmbus_view *view = NULL;
	int fd;

	/* What another process sees between creating an object and sizing
	 * it: the open works, views are refused instead of faulting. */
	shm_name(name, sizeof(name));
	snprintf(path, sizeof(path), "/%s", name);
	fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(shmbus_map_open(name, RW, &map), 0);
	ck_assert_int_eq(shmbus_map_size(map), 0);
	ck_assert_int_eq(shmbus_view_map(map, 0, 0, RO, &view), -ERANGE);
	ck_assert_int_eq(shmbus_view_map(map, 0, 1, RO, &view), -ERANGE);
	ck_assert_int_eq(shmbus_map_shared(name, 0, RW, &other), -EINVAL);
	ck_assert_int_eq(shmbus_map_shared(name, 0, RW | CREATE, &other),
			 -EINVAL);

	/* Once sized, the same mapping maps it. */
	ck_assert_int_eq(ftruncate(fd, (off_t)page), 0);
	ck_assert_int_eq(shmbus_view_map(map, 0, 0, RO, &view), 0);
	ck_assert_uint_eq(shmbus_view_size(view), page);
	close(fd);
	ck_assert_int_eq(shmbus_map_close(map), 0);
	ck_assert_int_eq(shmbus_map_unlink(name), 0);
}
END_TEST

/* ---- shmbus_map_unlink ---- */

START_TEST(unlink_keeps_open_mappings_valid)
{
	char name[64];
	shmbus_map *map;
	shmbus_map *again = NULL;
	shmbus_view *a;
	shmbus_view *b;

	shm_name(name, sizeof(name));
	ck_assert_int_eq(shmbus_map_shared(name, 2 * page, RW | CREATE, &map),
			 0);
	ck_assert_int_eq(shmbus_view_map(map, 0, 0, RW, &a), 0);
	sbt_fill_pattern(shmbus_view_data(a), 2 * page, 5);
	ck_assert_int_eq(shmbus_map_unlink(name), 0);
	ck_assert_int_eq(shmbus_map_open(name, RO, &again), -ENOENT);
	ck_assert_int_eq(shmbus_map_unlink(name), -ENOENT);

	/* The mapping lives on: old and new views still share the bytes. */
	ck_assert(sbt_check_pattern(shmbus_view_data(a), 2 * page, 5));
	ck_assert_int_eq(shmbus_view_map(map, 0, 0, RO, &b), 0);
	sbt_fill_pattern(shmbus_view_data(a), 2 * page, 6);
	ck_assert(sbt_check_pattern(shmbus_view_data(b), 2 * page, 6));
	ck_assert_int_eq(shmbus_map_size(map), (int64_t)(2 * page));
	ck_assert_int_eq(shmbus_map_close(map), 0);
}
END_TEST

/* ---- shmbus_view_map: MapViewOfFile ---- */

START_TEST(view_unaligned_windows_read_the_right_bytes)
{
	size_t len = 4 * page;
	shmbus_map *map;
	shmbus_view *all;
	shmbus_view *v;
	const unsigned char *ref;
	const struct {
		uint64_t offset;
		size_t length;
	} windows[] = {
	    {page + 1, 1},    {1, page - 1}, {page - 1, 2},
	    {page + 1, 0},    {3, 3 * page}, {len - 1, 1},
	    {2 * page, page}, {0, len},	     {page / 2, 2 * page},
	};

	ck_assert_int_eq(shmbus_map_memory(len, &map), 0);
	ck_assert_int_eq(shmbus_view_map(map, 0, 0, RW, &all), 0);
	sbt_fill_pattern(shmbus_view_data(all), len, 1234);
	ref = shmbus_view_data(all);
	for (size_t i = 0; i < sizeof(windows) / sizeof(windows[0]); i++) {
		size_t want = windows[i].length != 0
				  ? windows[i].length
				  : (size_t)(len - windows[i].offset);

		ck_assert_int_eq(shmbus_view_map(map, windows[i].offset,
						 windows[i].length, RO, &v),
				 0);
		ck_assert_uint_eq(shmbus_view_size(v), want);
		ck_assert_int_eq(
		    memcmp(shmbus_view_data(v), ref + windows[i].offset, want),
		    0);
		ck_assert_int_eq(shmbus_view_unmap(v), 0);
	}
	ck_assert_int_eq(shmbus_map_close(map), 0);
}
END_TEST

START_TEST(view_bounds_and_flags)
{
	size_t len = 2 * page;
	shmbus_map *map;
	shmbus_view *v = NULL;

	ck_assert_int_eq(shmbus_map_memory(len, &map), 0);
	ck_assert_int_eq(shmbus_view_map(map, 0, len + 1, RO, &v), -ERANGE);
	ck_assert_int_eq(shmbus_view_map(map, 1, len, RO, &v), -ERANGE);
	ck_assert_int_eq(shmbus_view_map(map, len, 0, RO, &v), -ERANGE);
	ck_assert_int_eq(shmbus_view_map(map, len, 1, RO, &v), -ERANGE);
	ck_assert_int_eq(shmbus_view_map(map, len + page, 1, RO, &v), -ERANGE);
	ck_assert_int_eq(shmbus_view_map(map, 1, SIZE_MAX, RO, &v), -ERANGE);
	ck_assert_int_eq(shmbus_view_map(map, UINT64_MAX, 1, RO, &v), -ERANGE);

	ck_assert_int_eq(shmbus_view_map(NULL, 0, 0, RO, &v), -EINVAL);
	ck_assert_int_eq(shmbus_view_map(map, 0, 0, RO, NULL), -EINVAL);
	ck_assert_int_eq(shmbus_view_map(map, 0, 0, 0, &v), -EINVAL);
	ck_assert_int_eq(shmbus_view_map(map, 0, 0, RO | RW, &v), -EINVAL);
	ck_assert_int_eq(shmbus_view_map(map, 0, 0, RW | CP, &v), -EINVAL);
	ck_assert_int_eq(shmbus_view_map(map, 0, 0, RO | CREATE, &v), -EINVAL);
	ck_assert_int_eq(shmbus_view_map(map, 0, 0, SHMBUS_VIEW_RANDOM, &v),
			 -EINVAL);
	ck_assert_int_eq(
	    shmbus_view_map(map, 0, 0,
			    RO | SHMBUS_VIEW_SEQUENTIAL | SHMBUS_VIEW_RANDOM,
			    &v),
	    -EINVAL);
	ck_assert_ptr_null(shmbus_view_data(NULL));
	ck_assert_uint_eq(shmbus_view_size(NULL), 0);
	ck_assert_int_eq(shmbus_map_close(map), 0);
}
END_TEST

START_TEST(view_larger_than_address_space_is_enomem)
{
	char name[64];
	char *path;
	shmbus_map *map;
	shmbus_view *v = NULL;

	/* A sparse tmpfs file of 4 EiB: bigger than any address space, so
	 * the view of all of it cannot be placed. */
	shm_name(name, sizeof(name));
	path = join("/dev/shm", name);
	ck_assert_int_eq(shmbus_map_file(path, 1ull << 62, RW | CREATE, &map),
			 0);
	ck_assert_int_eq(shmbus_view_map(map, 0, 0, RO, &v), -ENOMEM);
	/* A small window deep inside it works. */
	ck_assert_int_eq(shmbus_view_map(map, (1ull << 61) + 3, 10, RW, &v), 0);
	memcpy(shmbus_view_data(v), "deep", 4);
	ck_assert_int_eq(shmbus_map_close(map), 0);
	ck_assert_int_eq(unlink(path), 0);
	free(path);
}
END_TEST

START_TEST(view_deep_inside_a_sparse_file)
{
	char *dir = sbt_tempdir();
	char *path = join(dir, "sparse");
	uint64_t offset = 12 * GIB + page + 5;
	uint64_t size = 12 * GIB + 16 * page;
	unsigned char buf[10000];
	shmbus_map *map;
	shmbus_view *v;
	struct stat st;
	int fd;

	ck_assert_int_eq(shmbus_map_file(path, size, RW | CREATE, &map), 0);
	ck_assert_int_eq(shmbus_map_size(map), (int64_t)size);
	ck_assert_int_eq(shmbus_view_map(map, offset, sizeof(buf), RW, &v), 0);
	sbt_fill_pattern(shmbus_view_data(v), sizeof(buf), 12);
	ck_assert_int_eq(shmbus_view_flush(v, 0, 0), 0);

	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), (off_t)offset),
			 (ssize_t)sizeof(buf));
	ck_assert(sbt_check_pattern(buf, sizeof(buf), 12));
	/* Sparse: far less than 12 GiB of disk is in use. */
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_lt((long long)st.st_blocks * 512, 64ll << 20);
	close(fd);
	ck_assert_int_eq(shmbus_map_close(map), 0);
	free(path);
	sbt_rmtree(dir);
}
END_TEST

/* ---- shmbus_view_map_at: MapViewOfFileEx ---- */

START_TEST(view_at_free_and_used_addresses)
{
	size_t len = 4 * page;
	shmbus_map *map;
	shmbus_view *all;
	shmbus_view *v = NULL;
	unsigned char *hole;
	unsigned char *used;

	ck_assert_int_eq(shmbus_map_memory(len, &map), 0);
	ck_assert_int_eq(shmbus_view_map(map, 0, 0, RW, &all), 0);
	sbt_fill_pattern(shmbus_view_data(all), len, 77);

	/* A free address: reserve a range, give it back, map there. */
	hole =
	    mmap(NULL, 3 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(hole, MAP_FAILED);
	ck_assert_int_eq(munmap(hole, 3 * page), 0);
	ck_assert_int_eq(
	    shmbus_view_map_at(map, page + 5, page, RO, hole + 5, &v), 0);
	ck_assert_ptr_eq(shmbus_view_data(v), hole + 5);
	ck_assert_int_eq(
	    memcmp(hole + 5, (unsigned char *)shmbus_view_data(all) + page + 5,
		   page),
	    0);

	/* An address in use is never replaced. */
	used = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(used, MAP_FAILED);
	memset(used, 0xab, 2 * page);
	ck_assert_int_eq(shmbus_view_map_at(map, 0, page, RO, used, &v),
			 -EEXIST);
	ck_assert_int_eq(
	    shmbus_view_map_at(map, 0, 2 * page, RO, used + page, &v), -EEXIST);
	ck_assert_int_eq(used[0], 0xab);
	ck_assert_int_eq(used[2 * page - 1], 0xab);
	ck_assert_int_eq(munmap(used, 2 * page), 0);

	/* The address must sit at the offset's place within a page. */
	ck_assert_int_eq(shmbus_view_map_at(map, 0, page, RO, hole + 1, &v),
			 -EINVAL);
	ck_assert_int_eq(shmbus_view_map_at(map, 3, page, RO, hole, &v),
			 -EINVAL);
	ck_assert_int_eq(shmbus_view_map_at(map, 0, page, RO, NULL, &v),
			 -EINVAL);
	ck_assert_int_eq(shmbus_view_map_at(map, len, 1, RO, hole, &v),
			 -ERANGE);
	ck_assert_int_eq(shmbus_map_close(map), 0);
}
END_TEST

/* ---- shmbus_view_unmap: UnmapViewOfFile ---- */

START_TEST(unmap_releases_the_window)
{
	shmbus_map *map;
	shmbus_view *v;
	void *addr;

	ck_assert_int_eq(shmbus_map_memory(page, &map), 0);
	ck_assert_int_eq(shmbus_view_map(map, 0, 0, RW, &v), 0);
	addr = shmbus_view_data(v);
	ck_assert_int_eq(shmbus_view_unmap(v), 0);
	/* The address range is free again: mapping there succeeds. */
	ck_assert_int_eq(shmbus_view_map_at(map, 0, 0, RW, addr, &v), 0);
	ck_assert_int_eq(shmbus_view_unmap(v), 0);
	ck_assert_int_eq(shmbus_view_unmap(NULL), -EINVAL);
	ck_assert_int_eq(shmbus_map_close(map), 0);
}
END_TEST

/* ---- shmbus_view_flush: FlushViewOfFile ---- */

START_TEST(flush_writes_back_exactly_the_range)
{
	char *dir = sbt_tempdir();
	char *path = join(dir, "data");
	size_t len = 8 * page;
	shmbus_map *map;
	shmbus_view *v;
	unsigned char *p;

	ck_assert_int_eq(shmbus_map_file(path, len + page, RW | CREATE, &map),
			 0);
	ck_assert_int_eq(shmbus_view_map(map, 100, len, RW, &v), 0);
	p = shmbus_view_data(v);
	memset(p, 1, len);
	/* The view starts 100 bytes into a page, so it spans 9 pages. */
	ck_assert_int_eq(dirty_kb(p), (long)(9 * page / 1024));
	/* A range flush writes back exactly the pages it covers: bytes
	 * [10, 10 + 2 pages) of the view touch the mapping's pages 0-2. */
	ck_assert_int_eq(shmbus_view_flush(v, 10, 2 * page), 0);
	ck_assert_int_eq(dirty_kb(p), (long)(6 * page / 1024));
	ck_assert_int_eq(shmbus_view_flush(v, len - 1, 1), 0);
	ck_assert_int_eq(dirty_kb(p), (long)(5 * page / 1024));
	/* Length 0 = from the offset to the end of the view: pages 4-8,
	 * which leaves page 3 the only dirty one. */
	ck_assert_int_eq(shmbus_view_flush(v, 4 * page, 0), 0);
	ck_assert_int_eq(dirty_kb(p), (long)(page / 1024));
	ck_assert_int_eq(shmbus_view_flush(v, 0, 0), 0);
	ck_assert_int_eq(dirty_kb(p), 0);

	ck_assert_int_eq(shmbus_view_flush(v, 0, len + 1), -ERANGE);
	ck_assert_int_eq(shmbus_view_flush(v, len, 0), -ERANGE);
	ck_assert_int_eq(shmbus_view_flush(v, len - 1, 2), -ERANGE);
	ck_assert_int_eq(shmbus_view_flush(v, 1, SIZE_MAX), -ERANGE);
	ck_assert_int_eq(shmbus_view_flush(NULL, 0, 0), -EINVAL);
	ck_assert_int_eq(shmbus_map_close(map), 0);
	free(path);
	sbt_rmtree(dir);
}
END_TEST

/* ---- shmbus_map_close: CloseHandle / Unmap ---- */

START_TEST(close_unmaps_remaining_views)
{
	shmbus_map *map;
	shmbus_view *v[4];
	char name[64];

	ck_assert_int_eq(shmbus_map_memory(4 * page, &map), 0);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(
		    shmbus_view_map(map, (uint64_t)i * page, page, RW, &v[i]),
		    0);
	}
	ck_assert_int_eq(shmbus_view_unmap(v[2]), 0);
	ck_assert_int_eq(shmbus_map_close(map), 0);
	ck_assert_int_eq(shmbus_map_close(NULL), -EINVAL);

	/* A mapping closed while holding its lock lets the lock go. */
	shm_name(name, sizeof(name));
	ck_assert_int_eq(shmbus_map_shared(name, page, RW | CREATE, &map), 0);
	{
		shmbus_map *other;

		ck_assert_int_eq(shmbus_map_open(name, RO, &other), 0);
		ck_assert_int_eq(shmbus_map_lock(map, 0), 0);
		ck_assert_int_eq(shmbus_map_lock(other, 0), -ETIMEDOUT);
		ck_assert_int_eq(shmbus_map_close(map), 0);
		ck_assert_int_eq(shmbus_map_lock(other, 0), 0);
		ck_assert_int_eq(shmbus_map_close(other), 0);
	}
	ck_assert_int_eq(shmbus_map_unlink(name), 0);
}
END_TEST

/* ---- shmbus_map_size: GetFileSize; shmbus_map_fd: GetFileHandle ---- */

START_TEST(size_and_fd_describe_the_object)
{
	char *dir = sbt_tempdir();
	char *path = join(dir, "data");
	char name[64];
	char *shm_path;
	char link[64];
	char target[256];
	shmbus_map *file;
	shmbus_map *bigger;
	shmbus_map *mem;
	shmbus_map *shm;
	struct stat a;
	struct stat b;
	ssize_t n;

	ck_assert_int_eq(shmbus_map_file(path, 1000, RW | CREATE, &file), 0);
	ck_assert_int_eq(shmbus_map_size(file), 1000);
	ck_assert_int_eq(shmbus_map_file(path, 5000, RW, &bigger), 0);
	/* GetFileSize reports the object as it is now. */
	ck_assert_int_eq(shmbus_map_size(file), 5000);
	ck_assert_int_eq(shmbus_map_close(bigger), 0);
	ck_assert_int_eq(fstat(shmbus_map_fd(file), &a), 0);
	ck_assert_int_eq(stat(path, &b), 0);
	ck_assert(a.st_ino == b.st_ino && a.st_dev == b.st_dev);

	ck_assert_int_eq(shmbus_map_memory(page, &mem), 0);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", shmbus_map_fd(mem));
	n = readlink(link, target, sizeof(target) - 1);
	ck_assert_int_gt(n, 0);
	target[n] = '\0';
	ck_assert_msg(strncmp(target, "/memfd:", 7) == 0, "%s", target);

	shm_name(name, sizeof(name));
	shm_path = join("/dev/shm", name);
	ck_assert_int_eq(shmbus_map_shared(name, page, RW | CREATE, &shm), 0);
	ck_assert_int_eq(fstat(shmbus_map_fd(shm), &a), 0);
	ck_assert_int_eq(stat(shm_path, &b), 0);
	ck_assert(a.st_ino == b.st_ino);
	ck_assert_int_eq(b.st_mode & 0777, 0600);

	/* Every descriptor is close-on-exec. */
	ck_assert(fcntl(shmbus_map_fd(file), F_GETFD) & FD_CLOEXEC);
	ck_assert(fcntl(shmbus_map_fd(mem), F_GETFD) & FD_CLOEXEC);
	ck_assert(fcntl(shmbus_map_fd(shm), F_GETFD) & FD_CLOEXEC);

	ck_assert_int_eq(shmbus_map_size(NULL), -EINVAL);
	ck_assert_int_eq(shmbus_map_fd(NULL), -EINVAL);

	ck_assert_int_eq(shmbus_map_close(shm), 0);
	ck_assert_int_eq(shmbus_map_unlink(name), 0);
	ck_assert_int_eq(shmbus_map_close(mem), 0);
	ck_assert_int_eq(shmbus_map_close(file), 0);
	free(shm_path);
	free(path);
	sbt_rmtree(dir);
}
END_TEST

/* ---- access: PAGE_READONLY / PAGE_READWRITE / FILE_MAP_COPY ---- */

START_TEST(read_only_view_faults_on_write)
{
	char name[64];
	shmbus_map *map;
	shmbus_map *ro;
	shmbus_view *v;
	shmbus_view *w;
	pid_t pid;

	shm_name(name, sizeof(name));
	ck_assert_int_eq(shmbus_map_shared(name, page, RW | CREATE, &map), 0);
	ck_assert_int_eq(shmbus_map_open(name, RO, &ro), 0);
	/* A read view of a writable mapping and a view of a read-only
	 * mapping: both must fault. */
	ck_assert_int_eq(shmbus_view_map(map, 10, 100, RO, &v), 0);
	ck_assert_int_eq(shmbus_view_map(ro, 10, 100, RO, &w), 0);
	for (int i = 0; i < 2; i++) {
		unsigned char *p = shmbus_view_data(i == 0 ? v : w);

		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			child_default_signals();
			p[0] = 1; /* must fault */
			_exit(0);
		}
		ck_assert_int_eq(sbt_wait(pid), -SIGSEGV);
	}
	ck_assert_int_eq(((unsigned char *)shmbus_view_data(v))[0], 0);
	ck_assert_int_eq(shmbus_map_close(ro), 0);
	ck_assert_int_eq(shmbus_map_close(map), 0);
	ck_assert_int_eq(shmbus_map_unlink(name), 0);
}
END_TEST

START_TEST(copy_view_stays_private)
{
	char *dir = sbt_tempdir();
	char *path = join(dir, "data");
	size_t len = 2 * page;
	unsigned char *buf = malloc(len);
	shmbus_map *map;
	shmbus_map *ro;
	shmbus_view *shared;
	shmbus_view *copy;
	shmbus_view *rocopy;
	uint32_t sum;
	int fd;

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(shmbus_map_file(path, len, RW | CREATE, &map), 0);
	ck_assert_int_eq(shmbus_view_map(map, 0, 0, RW, &shared), 0);
	sbt_fill_pattern(shmbus_view_data(shared), len, 3);
	sum = sbt_checksum(shmbus_view_data(shared), len);

	ck_assert_int_eq(shmbus_view_map(map, 1, len - 1, CP, &copy), 0);
	memset(shmbus_view_data(copy), 0xee, len - 1);
	ck_assert_int_eq(shmbus_view_flush(copy, 0, 0), 0);
	/* A copy-on-write view may also come from a read-only mapping. */
	ck_assert_int_eq(shmbus_map_file(path, 0, RO, &ro), 0);
	ck_assert_int_eq(shmbus_view_map(ro, 0, 0, CP, &rocopy), 0);
	memset(shmbus_view_data(rocopy), 0xdd, len);

	ck_assert_uint_eq(sbt_checksum(shmbus_view_data(shared), len), sum);
	ck_assert_int_eq(shmbus_view_flush(shared, 0, 0), 0);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, len, 0), (ssize_t)len);
	ck_assert_uint_eq(sbt_checksum(buf, len), sum);
	close(fd);
	ck_assert_int_eq(((unsigned char *)shmbus_view_data(copy))[0], 0xee);
	ck_assert_int_eq(shmbus_map_close(ro), 0);
	ck_assert_int_eq(shmbus_map_close(map), 0);
	free(buf);
	free(path);
	sbt_rmtree(dir);
}
END_TEST

/* ---- stream / random access views: madvise ---- */

START_TEST(view_hints_reach_the_kernel)
{
	shmbus_map *map;
	shmbus_view *seq;
	shmbus_view *rnd;
	shmbus_view *plain;

	ck_assert_int_eq(shmbus_map_memory(16 * page, &map), 0);
	ck_assert_int_eq(shmbus_view_map(map, 0, 4 * page,
					 RO | SHMBUS_VIEW_SEQUENTIAL, &seq),
			 0);
	ck_assert_int_eq(shmbus_view_map(map, 5 * page + 9, 2 * page,
					 RW | SHMBUS_VIEW_RANDOM, &rnd),
			 0);
	ck_assert_int_eq(shmbus_view_map(map, 8 * page, page, RO, &plain), 0);
	ck_assert(vm_flag(shmbus_view_data(seq), "sr"));
	ck_assert(!vm_flag(shmbus_view_data(seq), "rr"));
	ck_assert(vm_flag(shmbus_view_data(rnd), "rr"));
	ck_assert(!vm_flag(shmbus_view_data(rnd), "sr"));
	ck_assert(!vm_flag(shmbus_view_data(plain), "sr"));
	ck_assert(!vm_flag(shmbus_view_data(plain), "rr"));
	ck_assert_int_eq(shmbus_map_close(map), 0);
}
END_TEST

/* ---- several views, in one process or many, see the same bytes ---- */

START_TEST(views_share_bytes_across_processes)
{
	char name[64];
	shmbus_map *map;
	shmbus_view *a;
	shmbus_view *b;
	int up[2];
	int down[2];
	pid_t pid;

	shm_name(name, sizeof(name));
	ck_assert_int_eq(shmbus_map_shared(name, 4 * page, RW | CREATE, &map),
			 0);
	ck_assert_int_eq(shmbus_view_map(map, 0, 0, RW, &a), 0);
	ck_assert_int_eq(shmbus_view_map(map, page + 3, page, RW, &b), 0);
	sbt_fill_pattern((unsigned char *)shmbus_view_data(a) + page + 3, page,
			 10);
	ck_assert(sbt_check_pattern(shmbus_view_data(b), page, 10));

	ck_assert_int_eq(pipe(up), 0);
	ck_assert_int_eq(pipe(down), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		shmbus_map *cm;
		shmbus_view *cv;

		/* The child's own mapping, and the one it inherited. */
		if (shmbus_map_open(name, RW, &cm) != 0 ||
		    shmbus_view_map(cm, 2 * page, page, RW, &cv) != 0 ||
		    !sbt_check_pattern(shmbus_view_data(b), page, 10)) {
			_exit(1);
		}
		sbt_fill_pattern(shmbus_view_data(cv), page, 11);
		if (send_byte(up[1]) != 0 || recv_byte(down[0]) != 0) {
			_exit(2);
		}
		if (!sbt_check_pattern(shmbus_view_data(cv), page, 12)) {
			_exit(3);
		}
		shmbus_map_close(cm);
		shmbus_map_close(map);
		_exit(0);
	}
	ck_assert_int_eq(recv_byte(up[0]), 0);
	ck_assert(sbt_check_pattern(
	    (unsigned char *)shmbus_view_data(a) + 2 * page, page, 11));
	sbt_fill_pattern((unsigned char *)shmbus_view_data(a) + 2 * page, page,
			 12);
	ck_assert_int_eq(send_byte(down[1]), 0);
	ck_assert_int_eq(sbt_wait(pid), 0);
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
	ck_assert_int_eq(shmbus_map_close(map), 0);
	ck_assert_int_eq(shmbus_map_unlink(name), 0);
}
END_TEST

/* ---- shmbus_map_lock / _unlock: AccessData / UnaccessData ---- */

START_TEST(lock_errors)
{
	shmbus_map *map;

	ck_assert_int_eq(shmbus_map_memory(page, &map), 0);
	ck_assert_int_eq(shmbus_map_lock(NULL, 0), -EINVAL);
	ck_assert_int_eq(shmbus_map_lock(map, -2), -EINVAL);
	ck_assert_int_eq(shmbus_map_unlock(NULL), -EINVAL);
	ck_assert_int_eq(shmbus_map_unlock(map), -EPERM);
	ck_assert_int_eq(shmbus_map_lock(map, 0), 0);
	ck_assert_int_eq(shmbus_map_lock(map, 0), -EDEADLK);
	ck_assert_int_eq(shmbus_map_lock(map, 100), -EDEADLK);
	ck_assert_int_eq(shmbus_map_lock(map, -1), -EDEADLK);
	ck_assert_int_eq(shmbus_map_unlock(map), 0);
	ck_assert_int_eq(shmbus_map_unlock(map), -EPERM);
	ck_assert_int_eq(shmbus_map_lock(map, -1), 0);
	ck_assert_int_eq(shmbus_map_unlock(map), 0);
	ck_assert_int_eq(shmbus_map_close(map), 0);
}
END_TEST

struct thread_arg {
	shmbus_map *map;
	int timed;   /* result of lock(map, 50) */
	int unlock;  /* result of unlock while the other thread holds it */
	int forever; /* result of lock(map, -1) */
};

static void *lock_thread(void *p)
{
	struct thread_arg *arg = p;

	arg->timed = shmbus_map_lock(arg->map, 50);
	arg->unlock = shmbus_map_unlock(arg->map);
	arg->forever = shmbus_map_lock(arg->map, -1);
	if (arg->forever == 0) {
		shmbus_map_unlock(arg->map);
	}
	return NULL;
}

START_TEST(lock_excludes_threads_of_one_mapping)
{
	struct thread_arg arg = {NULL, 1, 1, 1};
	struct timespec nap = {0, 200 * 1000000L};
	pthread_t thread;

	ck_assert_int_eq(shmbus_map_memory(page, &arg.map), 0);
	ck_assert_int_eq(shmbus_map_lock(arg.map, 0), 0);
	ck_assert_int_eq(pthread_create(&thread, NULL, lock_thread, &arg), 0);
	nanosleep(&nap, NULL);
	ck_assert_int_eq(shmbus_map_unlock(arg.map), 0);
	ck_assert_int_eq(pthread_join(thread, NULL), 0);
	ck_assert_int_eq(arg.timed, -ETIMEDOUT);
	ck_assert_int_eq(arg.unlock, -EPERM);
	ck_assert_int_eq(arg.forever, 0);
	ck_assert_int_eq(shmbus_map_lock(arg.map, 0), 0);
	ck_assert_int_eq(shmbus_map_close(arg.map), 0);
}
END_TEST

START_TEST(lock_excludes_two_mappings_of_one_object)
{
	char *dir = sbt_tempdir();
	char *path = join(dir, "data");
	shmbus_map *a;
	shmbus_map *b;
	int fd;

	ck_assert_int_eq(shmbus_map_file(path, page, RW | CREATE, &a), 0);
	ck_assert_int_eq(shmbus_map_file(path, 0, RO, &b), 0);
	ck_assert_int_eq(shmbus_map_lock(a, 0), 0);
	ck_assert_int_eq(shmbus_map_lock(b, 20), -ETIMEDOUT);
	ck_assert_int_eq(shmbus_map_unlock(a), 0);
	ck_assert_int_eq(shmbus_map_lock(b, 0), 0);
	ck_assert_int_eq(shmbus_map_lock(a, 0), -ETIMEDOUT);
	ck_assert_int_eq(shmbus_map_unlock(b), 0);

	/* The documented limit: it is flock(), so anyone else flocking the
	 * file takes part. */
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(flock(fd, LOCK_EX), 0);
	ck_assert_int_eq(shmbus_map_lock(a, 0), -ETIMEDOUT);
	close(fd);
	ck_assert_int_eq(shmbus_map_lock(a, 0), 0);

	ck_assert_int_eq(shmbus_map_close(b), 0);
	ck_assert_int_eq(shmbus_map_close(a), 0);
	free(path);
	sbt_rmtree(dir);
}
END_TEST

/*
 * Forks a child that takes the lock of `inherited`, or of its own mapping
 * opened by `name` when `inherited` is NULL, reports it and waits to be
 * killed. Returns the child's pid once it holds the lock.
 */
static pid_t fork_lock_holder(shmbus_map *inherited, const char *name)
{
	int ready[2];
	pid_t pid;

	ck_assert_int_eq(pipe(ready), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		shmbus_map *map = inherited;

		close(ready[0]);
		if (map == NULL && shmbus_map_open(name, RO, &map) != 0) {
			_exit(1);
		}
		if (shmbus_map_lock(map, 5000) != 0 ||
		    send_byte(ready[1]) != 0) {
			_exit(2);
		}
		for (;;) {
			pause();
		}
	}
	close(ready[1]);
	ck_assert_int_eq(recv_byte(ready[0]), 0);
	close(ready[0]);
	return pid;
}

/* The lock is held by a live child: -ETIMEDOUT after about the timeout.
 * Once the child is SIGKILLed, the lock comes free within the timeout. */
static void assert_lock_follows_child(shmbus_map *map, pid_t pid)
{
	struct timespec t0;
	double ms;

	ck_assert_int_eq(shmbus_map_lock(map, 0), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(shmbus_map_lock(map, 150), -ETIMEDOUT);
	ms = elapsed_ms(&t0);
	ck_assert_msg(ms >= 149.0 && ms < 1000.0, "waited %.1f ms", ms);

	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(shmbus_map_lock(map, 5000), 0);
	ck_assert_double_lt(elapsed_ms(&t0), 5000.0);
	ck_assert_int_eq(sbt_wait(pid), -SIGKILL);
	ck_assert_int_eq(shmbus_map_unlock(map), 0);
}

START_TEST(lock_dies_with_a_child_that_opened_its_own_mapping)
{
	char name[64];
	shmbus_map *map;
	pid_t pid;

	shm_name(name, sizeof(name));
	ck_assert_int_eq(shmbus_map_shared(name, page, RW | CREATE, &map), 0);
	pid = fork_lock_holder(NULL, name);
	assert_lock_follows_child(map, pid);
	ck_assert_int_eq(shmbus_map_close(map), 0);
	ck_assert_int_eq(shmbus_map_unlink(name), 0);
}
END_TEST

START_TEST(lock_dies_with_a_child_that_inherited_the_mapping)
{
	shmbus_map *map;
	pid_t pid;

	ck_assert_int_eq(shmbus_map_memory(page, &map), 0);
	/* Lock once first, so that the child inherits this process's lock
	 * descriptor and must make its own. */
	ck_assert_int_eq(shmbus_map_lock(map, 0), 0);
	ck_assert_int_eq(shmbus_map_unlock(map), 0);
	pid = fork_lock_holder(map, NULL);
	assert_lock_follows_child(map, pid);
	ck_assert_int_eq(shmbus_map_close(map), 0);
}
END_TEST

START_TEST(lock_is_not_inherited_by_a_child)
{
	shmbus_map *map;
	pid_t pid;

	ck_assert_int_eq(shmbus_map_memory(page, &map), 0);
	ck_assert_int_eq(shmbus_map_lock(map, 0), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* The parent holds it; the child does not. */
		if (shmbus_map_lock(map, 0) != -ETIMEDOUT) {
			_exit(1);
		}
		if (shmbus_map_unlock(map) != -EPERM) {
			_exit(2);
		}
		_exit(0);
	}
	ck_assert_int_eq(sbt_wait(pid), 0);
	ck_assert_int_eq(shmbus_map_unlock(map), 0);
	ck_assert_int_eq(shmbus_map_close(map), 0);
}
END_TEST

static void add_case(Suite *s, const char *name, const TTest *test, int timeout)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test);
	tcase_set_timeout(tc, timeout);
	suite_add_tcase(s, tc);
}

Suite *map_suite(void)
{
	Suite *s = suite_create("map");

	add_case(s, "file_persisted",
		 file_bytes_reach_the_file_and_survive_reopen, 10);
	add_case(s, "file_truncate", file_truncate_empties_and_resizes, 10);
	add_case(s, "file_errors", file_errors, 10);
	add_case(s, "file_failed_create", file_failed_create_leaves_nothing,
		 10);
	add_case(s, "memory", memory_is_zeroed_and_shared_between_views, 10);
	add_case(s, "memory_errors", memory_errors, 10);
	add_case(s, "shared_by_name", shared_child_opens_by_name_and_writes,
		 10);
	add_case(s, "shared_create", shared_create_grows_truncates_and_excludes,
		 10);
	add_case(s, "shared_errors", shared_errors, 10);
	add_case(s, "names", bad_names_are_refused, 10);
	add_case(s, "open", open_access_and_errors, 10);
	add_case(s, "open_empty", open_takes_an_empty_object_as_it_is, 10);
	add_case(s, "unlink", unlink_keeps_open_mappings_valid, 10);
	add_case(s, "view_unaligned",
		 view_unaligned_windows_read_the_right_bytes, 10);
	add_case(s, "view_bounds", view_bounds_and_flags, 10);
	add_case(s, "view_enomem", view_larger_than_address_space_is_enomem,
		 10);
	add_case(s, "view_sparse", view_deep_inside_a_sparse_file, 20);
	add_case(s, "view_at", view_at_free_and_used_addresses, 10);
	add_case(s, "unmap", unmap_releases_the_window, 10);
	add_case(s, "flush", flush_writes_back_exactly_the_range, 10);
	add_case(s, "close", close_unmaps_remaining_views, 10);
	add_case(s, "size_fd", size_and_fd_describe_the_object, 10);
	add_case(s, "read_only_faults", read_only_view_faults_on_write, 10);
	add_case(s, "copy_private", copy_view_stays_private, 10);
	add_case(s, "hints", view_hints_reach_the_kernel, 10);
	add_case(s, "shared_bytes", views_share_bytes_across_processes, 10);
	add_case(s, "lock_errors", lock_errors, 10);
	add_case(s, "lock_threads", lock_excludes_threads_of_one_mapping, 10);
	add_case(s, "lock_two_mappings",
		 lock_excludes_two_mappings_of_one_object, 10);
	add_case(s, "lock_own_child_dies",
		 lock_dies_with_a_child_that_opened_its_own_mapping, 20);
	add_case(s, "lock_inherited_child_dies",
		 lock_dies_with_a_child_that_inherited_the_mapping, 20);
	add_case(s, "lock_not_inherited", lock_is_not_inherited_by_a_child, 10);
	return s;
}
