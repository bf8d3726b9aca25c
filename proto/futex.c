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

int sb_futex_wait(_Atomic uint32_t *word, uint32_t expected,
                  const struct timespec *deadline)
{
	struct timespec rel;
	long long left;
	long r;

	if (deadline != NULL) {
		left = sb_deadline_remaining_ns(deadline);
		if (left == 0) {
			return -ETIMEDOUT;
		}
		rel.tv_sec = (time_t)(left / 1000000000LL);
		rel.tv_nsec = (long)(left % 1000000000LL);
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

long long sb_deadline_remaining_ns(const struct timespec *deadline)
{
	struct timespec now;
	long long ns;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (long long)(deadline->tv_sec - now.tv_sec) * 1000000000LL +
	     (deadline->tv_nsec - now.tv_nsec);
	return ns > 0 ? ns : 0;
}

int sb_deadline_passed(const struct timespec *deadline)
{
	return deadline != NULL && sb_deadline_remaining_ns(deadline) == 0;
}

const struct timespec *sb_wait_deadline(struct sb_wait *w)
{
	if (w->timeout_ms < 0) {
		return NULL;
	}
	if (!w->started) {
		sb_deadline_init(w->timeout_ms, &w->deadline);
		w->started = 1;
	}
	return &w->deadline;
}
