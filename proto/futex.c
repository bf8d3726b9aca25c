/*
 * futex.c - sleeping and waking on 32-bit words in shared memory, and the
 * timeout arithmetic shared by every blocking call in the library.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "proto/atomics.h"

static void timespec_sub(const struct timespec *a, const struct timespec *b,
                         struct timespec *out)
{
	out->tv_sec = a->tv_sec - b->tv_sec;
	out->tv_nsec = a->tv_nsec - b->tv_nsec;
	if (out->tv_nsec < 0) {
		out->tv_sec--;
		out->tv_nsec += 1000000000L;
	}
}

int sb_futex_wait(_Atomic uint32_t *word, uint32_t expected,
                  const struct timespec *deadline)
{
	struct timespec now, rel;
	long r;

	if (deadline != NULL) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		timespec_sub(deadline, &now, &rel);
		if (rel.tv_sec < 0) {
			return -ETIMEDOUT;
		}
	}
	/* FUTEX_WAIT takes a relative timeout; the kernel re-checks *word
	 * against `expected` atomically with queueing us, which is what makes
	 * the waiter-count protocols in ring.c free of lost wake-ups. */
	r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected,
	            deadline != NULL ? &rel : NULL, NULL, 0);
	if (r == 0 || errno == EAGAIN) {
		return 0;
	}
	return -errno;
}

void sb_futex_wake(_Atomic uint32_t *word, int count)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, count, NULL, NULL, 0);
}

const struct timespec *sb_deadline_init(int timeout_ms,
                                        struct timespec *deadline)
{
	if (timeout_ms < 0) {
		return NULL;
	}
	clock_gettime(CLOCK_MONOTONIC, deadline);
	deadline->tv_sec += timeout_ms / 1000;
	deadline->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline->tv_nsec >= 1000000000L) {
		deadline->tv_sec++;
		deadline->tv_nsec -= 1000000000L;
	}
	return deadline;
}

int sb_deadline_passed(const struct timespec *deadline)
{
	struct timespec now;

	if (deadline == NULL) {
		return 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > deadline->tv_sec ||
	       (now.tv_sec == deadline->tv_sec &&
	        now.tv_nsec >= deadline->tv_nsec);
}
