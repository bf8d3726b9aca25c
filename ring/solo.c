/*
 * solo.c - the solo writer (a thread that publishes without writer_lock
 * while nobody else writes) and writer_lock, whose taker revokes it.
 * The hot side (solo_enter(), solo_leave()) is inline in ring_private.h.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "ring/ring_private.h"

/* A revoker whose heavy fence the kernel refused waits this long for the
 * solo thread's busy store to leave its store buffer. */
#define SOLO_FENCE_GRACE_NS 1000000

/*
 * A thread that made SB_RING_SOLO_AFTER locked publishes in a row, with no
 * other thread taking writer_lock in between, becomes the solo writer: it
 * gets an entry of its own (solo_owner[i], kept while the thread lives),
 * wc->solo says i + 1, and it then publishes without the lock, holding
 * its own busy word solo_busy[i] around each publish. Any other thread that
 * takes writer_lock first revokes solo: it flags wc->solo as revoking and
 * waits for that entry's busy word to drop. That is a Dekker pair
 *
 *   solo thread:  store solo_busy[i] = tid;  load solo
 *   revoker:      store solo |= REVOKING;  heavy fence;  load solo_busy[i]
 *
 * so either the solo thread sees it lost solo (and takes the lock), or the
 * revoker sees it busy (and waits until its publish is out). The solo
 * side's store is a plain one, with no locked instruction: the revoker's
 * heavy fence (membarrier, sys/process.c) orders it, so solo is only given
 * to a thread of a process registered for that. A locked instruction on
 * every publish would wait for the previous publish's tail store, which
 * waits for the line the reader has just read; what that cost a stream of
 * 64-byte messages is in bench/README.md ("Measured figures").
 *
 * Why one busy word per thread: a thread revoked between its two looks at
 * solo may still store its busy mark after another thread was made solo.
 * In its own word that harms nobody; in a shared one it could overwrite the
 * new solo thread's mark, then clear it, and leave that thread unprotected.
 * An entry is given to another thread only once its owner is dead.
 *
 * A solo thread that dies busy is found by its entry's owner ids and
 * repaired like a lock holder that died.
 */

/* With writer_lock held: no thread is solo any more, and the streak that
 * would make one starts again. */
static void solo_clear(struct sb_ring_wctl *wc)
{
	atomic_store_explicit(&wc->solo, 0, memory_order_relaxed);
	atomic_store_explicit(&wc->streak, 0, memory_order_relaxed);
}

/* Whether entry i's owner is a live thread. */
static int solo_owner_alive(const struct sb_ring_wctl *wc, uint32_t i)
{
	const struct sb_ring_solo_owner *o = &wc->solo_owner[i];

	return sb_thread_alive(
	    atomic_load_explicit(&o->pid, memory_order_relaxed),
	    atomic_load_explicit(&o->tid, memory_order_relaxed));
}

/*
 * With writer_lock held: waits until the thread of entry i is out of its
 * publish (its busy word is 0), or finds it dead (then its state is
 * flagged for repair, as for a lock holder that died). Spins first: a
 * publish takes well under a microsecond.
 */
static int solo_wait_idle(struct sb_ring *ring, uint32_t i, struct sb_wait *w)
{
	struct sb_ring_wctl *wc = ring->shm_wctl;
	const struct timespec pause = {.tv_nsec = 100000};
	const struct timespec *deadline = NULL;
	struct timespec grace;

	/* acquire: pairs with the release in solo_leave(). */
	for (uint32_t n = 0;
	     atomic_load_explicit(&wc->solo_busy[i], memory_order_acquire) != 0;
	     n++) {
		if (n < ring->spin) {
			sb_cpu_relax();
			continue;
		}
		if (!solo_owner_alive(wc, i)) {
			atomic_store_explicit(&wc->writer_repair, 1,
					      memory_order_relaxed);
			atomic_store_explicit(&wc->solo_busy[i], 0,
					      memory_order_relaxed);
			break;
		}
		if (deadline == NULL) {
			deadline = sbr_lock_deadline(w, &grace);
		}
		if (sb_deadline_passed(deadline)) {
			return -ETIMEDOUT;
		}
		nanosleep(&pause, NULL);
	}
	return 0;
}

/*
 * With writer_lock held: ends another thread's solo, if there is one, and
 * waits until it is out of its publish. A revoker that times out leaves
 * solo flagged as revoking, so the next lock holder goes on waiting for the
 * same thread.
 */
static int solo_revoke(struct sb_ring *ring, struct sb_wait *w)
{
	struct sb_ring_wctl *wc = ring->shm_wctl;
	uint32_t s = atomic_load_explicit(&wc->solo, memory_order_relaxed);
	uint32_t e = s & ~SB_RING_SOLO_REVOKING;
	struct sb_self me;
	int r;

	if (s == 0) {
		return 0;
	}
	(void)sb_self(&me);
	if (solo_mine(wc, s, &me) != 0) {
		return 0; /* we are solo */
	}
	if (e == 0 || e > SB_RING_SOLO_ENTRIES) {
		solo_clear(wc); /* no such entry: nobody can be publishing */
		return 0;
	}
	if (solo_mine(wc, e, &me) != 0 &&
	    atomic_load_explicit(&wc->solo_busy[e - 1], memory_order_relaxed) ==
		me.tid) {
		return -EDEADLK; /* our own solo claim, already being revoked */
	}
	atomic_store_explicit(&wc->solo, e | SB_RING_SOLO_REVOKING,
			      memory_order_relaxed);
	atomic_store_explicit(&wc->streak, 0, memory_order_relaxed);
	/* The lock holder's half of the Dekker pair with solo_enter(): solo
	 * flagged first, then the look at busy. Run by every lock holder
	 * that finds solo set, revoking or not: an earlier revoker may have
	 * died between its flag and its fence. When the kernel refuses the
	 * fence, the solo thread's busy store may still sit in its store
	 * buffer; that drains within microseconds, so wait out a grace
	 * period before trusting a 0 (a fallback: the topic's processes are
	 * meant to agree on membarrier, docs/shm-layout.md). */
	if (sb_fence_heavy() < 0) {
		nanosleep(&(struct timespec){.tv_nsec = SOLO_FENCE_GRACE_NS},
			  NULL);
	}
	r = solo_wait_idle(ring, e - 1, w);
	if (r == 0) {
		atomic_store_explicit(&wc->solo, 0, memory_order_relaxed);
	}
	return r;
}

/*
 * With writer_lock held, before a claim that keeps it: a solo writer gives
 * solo up, so that a publish of its own while it holds the claim does not
 * take the solo path around the lock (it gets -EDEADLK from the lock).
 */
void sbr_solo_give_up(struct sb_ring *ring)
{
	struct sb_ring_wctl *wc = ring->shm_wctl;
	uint32_t s = atomic_load_explicit(&wc->solo, memory_order_relaxed);
	struct sb_self me;

	(void)sb_self(&me);
	if (solo_mine(wc, s, &me) != 0) {
		solo_clear(wc);
	}
}

/*
 * With writer_lock held and no thread solo: the entry + 1 this thread owns,
 * else a free one (or one whose owner died) given to it; 0 when every
 * entry belongs to a live thread.
 */
static uint32_t solo_entry_for(struct sb_ring *ring, const struct sb_self *me)
{
	struct sb_ring_wctl *wc = ring->shm_wctl;
	uint32_t spare = 0;

	for (uint32_t i = 0; i < SB_RING_SOLO_ENTRIES; i++) {
		if (solo_mine(wc, i + 1, me) != 0) {
			return i + 1;
		}
		if (spare == 0 &&
		    (atomic_load_explicit(&wc->solo_owner[i].tid,
					  memory_order_relaxed) == 0 ||
		     !solo_owner_alive(wc, i))) {
			spare = i + 1;
		}
	}
	if (spare != 0) {
		struct sb_ring_solo_owner *o = &wc->solo_owner[spare - 1];

		/* A thread that died between its looks at solo may have
		 * left its busy word set; nobody was protected by it. */
		atomic_store_explicit(&wc->solo_busy[spare - 1], 0,
				      memory_order_relaxed);
		atomic_store_explicit(&o->pid, me->pid, memory_order_relaxed);
		atomic_store_explicit(&o->tid, me->tid, memory_order_relaxed);
	}
	return spare;
}

/* With writer_lock held, after a publish: counts this thread's streak and
 * makes it the solo writer when the streak is long enough (and when its
 * process may use the plain busy store: see above). */
void sbr_solo_count(struct sb_ring *ring)
{
	struct sb_ring_wctl *wc = ring->shm_wctl;
	struct sb_self me;
	int registered = sb_self(&me);
	uint32_t n = atomic_load_explicit(&wc->streak, memory_order_relaxed);
	uint32_t e;

	if (atomic_load_explicit(&wc->streak_tid, memory_order_relaxed) !=
	    me.tid) {
		atomic_store_explicit(&wc->streak_tid, me.tid,
				      memory_order_relaxed);
		n = 0;
	}
	if (n < SB_RING_SOLO_AFTER) {
		atomic_store_explicit(&wc->streak, n + 1, memory_order_relaxed);
		return;
	}
	if (!registered ||
	    atomic_load_explicit(&wc->solo, memory_order_relaxed) != 0) {
		return;
	}
	e = solo_entry_for(ring, &me);
	if (e != 0) {
		/* relaxed: the unlock that follows publishes it. */
		atomic_store_explicit(&wc->solo, e, memory_order_relaxed);
	} else {
		/* Every entry is a live thread's: try again a streak later,
		 * not at each publish (the look costs a system call each). */
		atomic_store_explicit(&wc->streak, 0, memory_order_relaxed);
	}
}

/*
 * Locks writer_lock and ends another thread's solo. When the previous
 * holder (or the solo writer) died, the repair is flagged (writer_repair)
 * and carried out at once. Only writers take it: it lives in the data
 * segment, which subscribers map read-only.
 */
int sbr_writer_lock(struct sb_ring *ring, struct sb_wait *w)
{
	struct sb_ring_wctl *wc = ring->shm_wctl;
	int died;
	int r = sbr_take_lock(&wc->writer_lock, w, -1, &died);

	if (r < 0) {
		return r;
	}
	if (died) {
		atomic_store_explicit(&wc->writer_repair, 1,
				      memory_order_relaxed);
		/* A process died inside the ring: it may have been a waiting
		 * writer too (in another thread), so free what it left. */
		sb_ring_reap_dead_waiters(ring);
	}
	r = solo_revoke(ring, w);
	if (r < 0) {
		sbr_release_lock(&wc->writer_lock);
		return r;
	}
	if (atomic_load_explicit(&wc->writer_repair, memory_order_relaxed) !=
	    0) {
		sbr_repair_writer_state(ring);
	}
	return 0;
}

void sbr_writer_unlock(struct sb_ring *ring)
{
	sbr_release_lock(&ring->shm_wctl->writer_lock);
}
