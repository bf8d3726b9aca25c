/*
 * futex.h - sleeping on and waking a 32-bit word in shared memory.
 */
#ifndef SB_SYS_FUTEX_H
#define SB_SYS_FUTEX_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

/*
 * Sleeps while *word == expected, until woken or `deadline` (CLOCK_MONOTONIC,
 * NULL = forever) passes. The futex is shared (not FUTEX_PRIVATE) because
 * sleepers and wakers are different processes. Returns 0 when woken or when
 * the word had already changed, -ETIMEDOUT, -EINTR, or another -errno
 * (-EFAULT if the word is not mapped).
 */
int sb_futex_wait(_Atomic uint32_t *word, uint32_t expected,
		  const struct timespec *deadline);

/* Wakes up to `count` sleepers on `word`. */
void sb_futex_wake(_Atomic uint32_t *word, int count);

#endif
