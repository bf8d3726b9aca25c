/*
 * futex.c - sleeping and waking on 32-bit words in shared memory.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sys/deadline.h"
#include "sys/futex.h"

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
	 * the waiter-count protocols of ring/ free of lost wake-ups. */
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
