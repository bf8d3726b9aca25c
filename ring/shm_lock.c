/*
 * shm_lock.c - the lock of shm_lock.h. Why not a pthread mutex: a robust
 * process-shared mutex links its holder's list through pointers inside the
 * cell, which glibc writes through at unlock and the kernel walks at thread
 * exit, so anyone who can write the cell can make the holder write where it
 * chooses (and other bytes make glibc abort). Here the cell holds ids only,
 * and the only system calls it leads to are FUTEX_WAIT/FUTEX_WAKE on its own
 * word and signal 0 to the id it names.
 *
 * Sleeping and waking form a Dekker pair: a waiter adds itself to
 * `sleepers` and then looks at `owner`; a releaser clears `owner` and then
 * looks at `sleepers` (all seq_cst). Either the waiter sees the lock free
 * and does not sleep, or the releaser sees the sleeper and bumps `wake_seq`,
 * which the waiter read before counting itself, so the kernel's compare in
 * FUTEX_WAIT fails. Values another process writes into `sleepers` or
 * `wake_seq` can cost a spurious wake-up or a missed one; a waiter never
 * sleeps longer than SB_SHM_LOCK_SLICE_MS, so a missed wake-up costs a slice.
 */
#include <errno.h>
#include <limits.h>

#include "ring/shm_lock.h"

/* Pauses a waiter spends on a held lock before it sleeps: holders keep the
 * lock for a copy at most, so a short spin usually sees it free. */
#define SPIN_TRIES 100

uint64_t sb_shm_owner_self(void)
{
	struct sb_self me;

	/* Once per process (a load after the first): the cached ids must
	 * be forgotten in a forked child, which the fence's fork handlers
	 * do. Two processes with one identity would both hold the lock. */
	sb_fence_init();
	sb_self(&me);
	return (uint64_t)me.pid << 32 | me.tid;
}

/* 1 when `word` holds ids a thread can have: 1 to the kernel's largest
 * pid_max (PID_MAX_LIMIT, 4 Mi on 64-bit). Anything else is corruption,
 * and its "holder" need not be waited for. */
static int plausible_owner(uint64_t word)
{
	uint32_t pid = (uint32_t)(word >> 32), tid = (uint32_t)word;

	return pid != 0 && tid != 0 && pid <= SB_PID_MAX_LIMIT &&
	       tid <= SB_PID_MAX_LIMIT;
}

int sb_shm_owner_alive(uint64_t word)
{
	return plausible_owner(word) &&
	       sb_thread_alive((uint32_t)(word >> 32), (uint32_t)word);
}

/* Takes the lock from `expected` (0: free, else a dead holder). On failure
 * *expected is what the cell holds now. */
static int take_from(struct sb_shm_lock *l, uint64_t *expected, uint64_t me)
{
	/* acquire: what the previous holder wrote under the lock is seen. */
	return atomic_compare_exchange_strong_explicit(&l->owner, expected, me,
						       memory_order_acquire,
						       memory_order_relaxed);
}

/* The earlier of the caller's deadline and one slice from now. */
static const struct timespec *slice_end(const struct timespec *deadline,
					struct timespec *slice)
{
	sb_deadline_init(SB_SHM_LOCK_SLICE_MS, slice);
	if (deadline != NULL && (deadline->tv_sec < slice->tv_sec ||
				 (deadline->tv_sec == slice->tv_sec &&
				  deadline->tv_nsec < slice->tv_nsec))) {
		return deadline;
	}
	return slice;
}

/*
 * Sleeps while `held` still holds the lock, for one slice at most. Returns
 * -ETIMEDOUT when the slice (or deadline) ran out with no wake-up.
 */
static int sleep_while_held(struct sb_shm_lock *l, uint64_t held,
			    const struct timespec *deadline)
{
	struct timespec slice;
	/* Read before counting ourselves: a release after our count bumps
	 * it, and the kernel then refuses to sleep on this value. */
	uint32_t seq = atomic_load_explicit(&l->wake_seq, memory_order_relaxed);
	int r = 0;

	atomic_fetch_add_explicit(&l->sleepers, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&l->owner, memory_order_seq_cst) == held) {
		r = sb_futex_wait(&l->wake_seq, seq,
				  slice_end(deadline, &slice));
	}
	atomic_fetch_sub_explicit(&l->sleepers, 1, memory_order_relaxed);
	return r == -ETIMEDOUT ? r : 0;
}

int sb_shm_lock_try(struct sb_shm_lock *l)
{
	uint64_t free_word = 0;

	return take_from(l, &free_word, sb_shm_owner_self());
}

int sb_shm_lock_take(struct sb_shm_lock *l, const struct timespec *deadline)
{
	return sb_shm_lock_take_bounded(l, deadline, -1);
}

int sb_shm_lock_take_bounded(struct sb_shm_lock *l,
			     const struct timespec *deadline, int hold_ms)
{
	uint64_t me = sb_shm_owner_self();
	uint64_t seen = 0;
	int spins = 0;
	int slept_out = 0;
	/* The bound counts this waiter's own wait, not any one owner's:
	 * whoever can write the cell can also change the owner it shows,
	 * or fake releases. */
	struct timespec bound;
	const struct timespec *until =
	    hold_ms >= 0 ? sb_deadline_init(hold_ms, &bound) : NULL;

	for (;;) {
		if (take_from(l, &seen, me)) {
			return 0;
		}
		if (seen == me) {
			return -EDEADLK;
		}
		if (spins < SPIN_TRIES) {
			spins++;
			sb_cpu_relax();
			seen = 0;
			continue;
		}
		/* Nobody released it for a whole slice (or it names no
		 * possible thread): is its holder still there? Taking over
		 * from the exact value we judged means no two waiters take
		 * it from one dead holder. */
		if ((slept_out || !plausible_owner(seen)) &&
		    !sb_shm_owner_alive(seen)) {
			if (take_from(l, &seen, me)) {
				return SB_SHM_LOCK_OWNER_DIED;
			}
			seen = 0;
			continue;
		}
		/* A live holder past the bound is taken over the same way,
		 * from the exact value judged. */
		if (until != NULL && sb_deadline_passed(until)) {
			if (take_from(l, &seen, me)) {
				return SB_SHM_LOCK_OVERSTAYED;
			}
			seen = 0;
			continue;
		}
		if (sb_deadline_passed(deadline)) {
			return -ETIMEDOUT;
		}
		slept_out = sleep_while_held(l, seen, deadline) != 0;
		seen = 0;
	}
}

void sb_shm_lock_release(struct sb_shm_lock *l)
{
	uint64_t me = sb_shm_owner_self();

	/* seq_cst: releases what we wrote under the lock, and is the first
	 * half of the Dekker pair with sleep_while_held(). */
	if (!atomic_compare_exchange_strong_explicit(&l->owner, &me, 0,
						     memory_order_seq_cst,
						     memory_order_relaxed)) {
		return;
	}
	if (atomic_load_explicit(&l->sleepers, memory_order_seq_cst) != 0) {
		atomic_fetch_add_explicit(&l->wake_seq, 1,
					  memory_order_relaxed);
		/* All of them: one woken waiter that then gives up (its
		 * deadline) must not leave the others asleep for a slice. */
		sb_futex_wake(&l->wake_seq, INT_MAX);
	}
}

int sb_shm_lock_held(struct sb_shm_lock *l)
{
	return atomic_load_explicit(&l->owner, memory_order_relaxed) ==
	       sb_shm_owner_self();
}
