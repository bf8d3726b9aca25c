/*
 * testutil.h - helpers shared by the Check suites: temporary directories,
 * unique shared-memory names, waiting for forked children, a checksum and
 * seeded byte patterns for payloads (the self-checking message built from
 * them is in msg.h). They assert nothing.
 */
#ifndef SB_TESTUTIL_H
#define SB_TESTUTIL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Creates a fresh directory under /tmp; returns its malloc'd path. */
char *sbt_tempdir(void);

/* Removes `path` and everything below it, then frees `path`. */
void sbt_rmtree(char *path);

/* Writes "<prefix>-<pid>-<counter>" into buf: a name no other test uses. */
void sbt_unique_name(char *buf, size_t size, const char *prefix);

/* Waits for `pid`. Returns its exit status (0..255), or -signal if a
 * signal killed it, or -1000 if waitpid failed. */
int sbt_wait(pid_t pid);

/* Wait (bounded: `ms` polls a millisecond apart) until *p is nonzero, or
 * until *p reaches `want`. Return 1 when it did, 0 otherwise. */
int sbt_wait_flag(_Atomic uint32_t *p, int ms);
int sbt_wait_u64(_Atomic uint64_t *p, uint64_t want, int ms);

/* Sleeps `ms` milliseconds (waiting between polls; tests assert no time). */
void sbt_sleep_ms(int ms);

/* FNV-1a over `len` bytes of `data`. */
uint32_t sbt_checksum(const void *data, size_t len);

/* A 64-bit finaliser (MurmurHash3's): every output bit depends on every
 * input bit. For seeds and deterministic choices. */
uint64_t sbt_mix64(uint64_t x);

/* Fills `buf` with `len` bytes derived from `seed`, and checks them. */
void sbt_fill_pattern(void *buf, size_t len, uint32_t seed);
int sbt_check_pattern(const void *buf, size_t len, uint32_t seed);

/* Zeroed memory of `size` bytes shared with children forked later
 * (MAP_SHARED | MAP_ANONYMOUS), for their reports; NULL if mmap failed. */
void *sbt_shared_alloc(size_t size);

/* Drops this (forked, root) process to `uid`, with gid `uid` and no
 * supplementary groups, for good: a peer of another uid. Returns 0 or
 * -errno. sbt_become_nobody() is uid 65534. */
int sbt_become(uid_t uid);
int sbt_become_nobody(void);

/* Writes `len` bytes of `data` to the file `path`, created or truncated.
 * Returns 0 or -errno. */
int sbt_write_file(const char *path, const void *data, size_t len);

/* Directory of the binaries under test (shmbusd, shmbus): $SHMBUS_TEST_BINDIR
 * set by the Makefile, or build/plain. */
const char *sbt_bindir(void);

#endif
