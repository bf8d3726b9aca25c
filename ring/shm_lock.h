/*
 * shm_lock.h - a lock in memory that other processes can write, and so
 * hostile: unlike a pthread mutex it holds no pointer and nothing libc or
 * the kernel follows. Every value read from it is checked; whatever its
 * bytes hold, taking it ends within the caller's deadline, and no value
 * makes the caller write anywhere but the lock's own cell.
 *
 * One 64-byte cell:
 *
 *   0  owner     pid << 32 | tid of the holder, 0 when free
 *   8  wake_seq  futex word: bumped by a release that saw sleepers
 *   12 sleepers  threads in (or about to enter) FUTEX_WAIT on wake_seq
 *   16 reserved, zero
 *
 * A holder that dies leaves its ids behind. A waiter that finds the owner
 * unchanged after a wait slice asks the kernel whether that thread lives
 * (sb_thread_alive) and, if not, takes the lock over from that exact value
 * (compare-and-swap), so two waiters cannot both take it, and reports that
 * the state the lock protects may be half-changed.
 */
#ifndef SB_SHM_LOCK_H
#define SB_SHM_LOCK_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "sys/barrier.h"
#include "sys/deadline.h"
#include "sys/futex.h"
#include "sys/identity.h"

struct sb_shm_lock {
	_Atomic uint64_t owner;	   /* 0: pid << 32 | tid, 0: free */
	_Atomic uint32_t wake_seq; /* 8: futex word sleepers wait on */
	_Atomic uint32_t sleepers; /* 12: waiters that may be asleep */
	uint8_t reserved[48];	   /* 16: zero */
};
static_assert(sizeof(struct sb_shm_lock) == 64, "");
static_assert(offsetof(struct sb_shm_lock, owner) == 0, "");
static_assert(offsetof(struct sb_shm_lock, wake_seq) == 8, "");
static_assert(offsetof(struct sb_shm_lock, sleepers) == 12, "");

/* How long a waiter sleeps before it looks at whether the owner lives
 * (and so the longest a missed wake-up can delay it). */
#define SB_SHM_LOCK_SLICE_MS 10

/* The kernel's PID_MAX_LIMIT on 64-bit: no thread id is larger. */
#define SB_PID_MAX_LIMIT (4u * 1024 * 1024)

/* Results of sb_shm_lock_take() beyond 0 (taken) and negative errnos. */
#define SB_SHM_LOCK_OWNER_DIED 1 /* taken from a holder that died */
#define SB_SHM_LOCK_OVERSTAYED 2 /* taken from a live holder past the bound */

/* The calling thread's ids as the cell holds them: pid << 32 | tid. */
uint64_t sb_shm_owner_self(void);

/* 1 when the thread an ids word names may still run: ids no thread can
 * have (0, above SB_PID_MAX_LIMIT) are dead at once, others are asked of
 * the kernel (sb_thread_alive). */
int sb_shm_owner_alive(uint64_t word);

/* Takes the lock if it is free at once, reading no clock: 1 when taken. */
int sb_shm_lock_try(struct sb_shm_lock *l);

/*
 * Takes the lock by `deadline` (NULL: no limit). Returns 0, or
 * SB_SHM_LOCK_OWNER_DIED when the previous holder died holding it (the
 * caller repairs what the lock protects), -EDEADLK when the calling thread
 * holds it already, -ETIMEDOUT.
 */
int sb_shm_lock_take(struct sb_shm_lock *l, const struct timespec *deadline);

/*
 * As sb_shm_lock_take(), but once this caller has waited `hold_ms`, it
 * takes the lock over from whoever holds it, alive or not, and returns
 * SB_SHM_LOCK_OVERSTAYED. For a lock whose holders may be hostile and
 * whose protected state survives two holders at once (the queue lock:
 * docs/shm-layout.md, "The queue's position"). hold_ms -1: no bound.
 */
int sb_shm_lock_take_bounded(struct sb_shm_lock *l,
			     const struct timespec *deadline, int hold_ms);

/* Releases a lock the calling thread holds. A cell that no longer names the
 * caller (another process overwrote it) is left alone. */
void sb_shm_lock_release(struct sb_shm_lock *l);

/* 1 when the calling thread holds the lock. */
int sb_shm_lock_held(struct sb_shm_lock *l);

#endif
