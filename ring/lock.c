/*
 * lock.c - taking and releasing the ring's two locks in shared memory
 * (shm_lock.h) with the caller's deadline, the reclaim bracket
 * (reclaim_seq), and repairing the writers' state after a holder died.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "ring/ring_private.h"

#define LOCK_GRACE_MS 10 /* lock wait allowed when timeout_ms is 0 */

void sbr_release_lock(struct sb_shm_lock *m)
{
	sb_shm_lock_release(m);
}

/*
 * The deadline for taking a lock: the caller's, or a short grace when the
 * caller will not wait at all (others hold the lock only briefly).
 */
const struct timespec *sbr_lock_deadline(struct sb_wait *w,
					 struct timespec *grace)
{
	return w->timeout_ms == 0 ? sb_deadline_init(LOCK_GRACE_MS, grace)
				  : sb_wait_deadline(w);
}

/*
 * Takes a lock of the control segment within `w`. *owner_died is set when
 * the previous holder died with it held: the caller repairs the state it
 * protects.
 */
/* Takes `m` by the caller's deadline; `hold_ms` >= 0 bounds how long a
 * live holder can keep it from us (sb_shm_lock_take_bounded()). *broken is
 * set when it was taken from a holder that died or overstayed: what it
 * protects may be half-changed. */
int sbr_take_lock(struct sb_shm_lock *m, struct sb_wait *w, int hold_ms,
		  int *broken)
{
	struct timespec grace;
	int r;

	*broken = 0;
	if (sb_shm_lock_try(m)) {
		return 0; /* the uncontended case reads no clock */
	}
	r = sb_shm_lock_take_bounded(m, sbr_lock_deadline(w, &grace), hold_ms);
	*broken = r == SB_SHM_LOCK_OWNER_DIED || r == SB_SHM_LOCK_OVERSTAYED;
	return r < 0 ? r : 0;
}

/*
 * A reclaim (the scan of the cursors and the move of writer_oldest) runs
 * between these two, which make reclaim_seq odd and then even again: a
 * subscriber that joins without the lock waits for an odd value to pass
 * (join_reclaims()). seq_cst: our scan comes after the odd value in the
 * single total order, the Dekker pair with the joiner's slot CAS.
 */
void sbr_reclaim_begin(struct sb_ring *ring)
{
	struct sb_ring_wctl *wc = ring->shm_wctl;

	atomic_store_explicit(&wc->reclaimer, sb_shm_owner_self(),
			      memory_order_relaxed);
	atomic_fetch_add_explicit(&wc->reclaim_seq, 1, memory_order_seq_cst);
}

void sbr_reclaim_end(struct sb_ring *ring)
{
	/* release: writer_oldest, stored by the reclaim, is seen by a
	 * joiner that reads the even value with acquire. */
	atomic_fetch_add_explicit(&ring->shm_wctl->reclaim_seq, 1,
				  memory_order_release);
}

/* The writer state as it must be after a writer died holding writer_lock. */
struct writer_state {
	uint64_t oldest;
	uint64_t next_seq;
};

/*
 * Committed records survive a writer's death (only the tail store exposes
 * a record, and oldest only moves past whole records), but writer_next_seq
 * may lag the last commit by one: take it from the newest record so no
 * sequence number is reused. A ring that fails the walk is emptied rather
 * than trusted. Computed without writing anything, so that a subscriber,
 * whose data mapping is read-only, can use it too.
 */
static void recovered_writer_state(const struct sb_ring *ring,
				   struct writer_state *ws)
{
	struct sb_ring_header *hdr = ring->shm_hdr;
	uint64_t tail = load_relaxed(&hdr->writer_tail);
	struct rec_view rec;

	ws->oldest = load_relaxed(&hdr->writer_oldest);
	ws->next_seq = load_relaxed(&hdr->writer_next_seq);
	if (tail < ws->oldest || tail - ws->oldest > ring->capacity) {
		ws->oldest = tail;
		ws->next_seq++;
		return;
	}
	for (uint64_t p = ws->oldest; p < tail; p = rec.end) {
		if (record_at(ring, p, tail, &rec) < 0) {
			ws->oldest = tail;
			ws->next_seq = load_relaxed(&hdr->writer_next_seq) + 1;
			return;
		}
		if (rec.type == SB_REC_DATA) {
			ws->next_seq = rec.seq + 1;
		}
	}
}

/* With writer_lock held, by a writer: applies the recovered state. */
void sbr_repair_writer_state(struct sb_ring *ring)
{
	struct sb_ring_header *hdr = ring->shm_hdr;
	struct writer_state ws;

	recovered_writer_state(ring, &ws);
	/* A writer that died inside a reclaim left reclaim_seq odd. */
	if (load_relaxed(&ring->shm_wctl->reclaim_seq) & 1u) {
		sbr_reclaim_end(ring);
	}
	store_relaxed(&hdr->writer_oldest, ws.oldest);
	store_relaxed(&hdr->writer_next_seq, ws.next_seq);
	stat_add(&hdr->writer_epoch, 1);
	stat_add(&hdr->stat_recoveries, 1);
	/* relaxed: writer_repair is only touched under writer_lock. */
	atomic_store_explicit(&ring->shm_wctl->writer_repair, 0,
			      memory_order_relaxed);
}
