/*
 * read.c - the read path: finding and checking the next record, waiting
 * for data, delivering it to a broadcast reader (receive, peek and
 * release), counting what was lost. The queue's shared cursor is queue.c.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "ring/ring_private.h"

/*
 * Counts a reader thread of `slot` as about to sleep (sbr_give_back_sleeper()
 * undoes it). This is the sleeper's half of the Dekker pair with
 * commit_records(): we count ourselves, then load the tail; the writer
 * stores the tail, then loads the count. Unless writers fence their
 * commits (commit_fence ARMED), the heavy fence orders the writer's side;
 * a sleeper that finds commit_fence OFF arms it ("Fenced commits").
 */
void sbr_take_sleeper(struct sb_ring *ring, struct sb_ring_slot *slot)
{
	_Atomic uint32_t *word = &ring->shm_ctl->commit_fence;
	uint32_t fence, arming = 0;

	atomic_fetch_add_explicit(&ring->shm_ctl->data_waiters, 1,
				  memory_order_seq_cst);
	atomic_fetch_add_explicit(&slot->sub_sleeping, 1, memory_order_relaxed);
	fence = atomic_load_explicit(word, memory_order_seq_cst);
	if ((fence & SB_RING_FENCE_STATE) == SB_RING_FENCE_ARMED) {
		return;
	}
	if ((fence & SB_RING_FENCE_STATE) == SB_RING_FENCE_OFF) {
		arming = (fence & ~SB_RING_FENCE_STATE) + SB_RING_FENCE_GEN +
			 SB_RING_FENCE_ARMING;
		if (!atomic_compare_exchange_strong_explicit(
			word, &fence, arming, memory_order_seq_cst,
			memory_order_relaxed)) {
			arming = 0; /* someone else moved it: just fence */
		}
	}
	/* Armed only if the heavy fence really ran: without it, a writer
	 * that saw OFF could still hold its tail store back. */
	if (sb_fence_heavy() == 0 && arming != 0) {
		atomic_compare_exchange_strong_explicit(
		    word, &arming,
		    arming - SB_RING_FENCE_ARMING + SB_RING_FENCE_ARMED,
		    memory_order_seq_cst, memory_order_relaxed);
	}
}

/*
 * Gives back one sleeper count of `slot` to data_waiters, unless a reaper
 * already took the slot's whole count (the reader died asleep): whoever
 * takes a count from sub_sleeping gives it back, so each is given once.
 */
void sbr_give_back_sleeper(struct sb_ring *ring, struct sb_ring_slot *slot)
{
	uint32_t n =
	    atomic_load_explicit(&slot->sub_sleeping, memory_order_relaxed);

	while (n > 0) {
		if (atomic_compare_exchange_weak_explicit(
			&slot->sub_sleeping, &n, n - 1, memory_order_relaxed,
			memory_order_relaxed)) {
			atomic_fetch_sub_explicit(&ring->shm_ctl->data_waiters,
						  1, memory_order_relaxed);
			return;
		}
	}
}

/*
 * Sleeps until the tail moves away from `pos`. Spins first: a reader that
 * keeps up never reaches the futex. Returns 0 (look again), -EAGAIN at once
 * when timeout_ms is 0 ("do not wait" means no spinning either), -ETIMEDOUT.
 */
int sbr_wait_for_data(struct sb_ring_reader *rd, uint64_t pos,
		      struct sb_wait *w)
{
	struct sb_ring *ring = rd->ring;
	struct sb_ring_ctl *ctl = ring->shm_ctl;
	struct sb_ring_slot *slot = rd->slot_mem;
	_Atomic uint64_t *tail = &ring->shm_hdr->writer_tail;
	const struct timespec *deadline;
	uint32_t seen;
	int r = 0;

	/* Each look again comes back here: an evicted reader stops waiting
	 * (the eviction wakes sleepers). */
	if (reader_evicted(rd)) {
		return -EIDRM;
	}
	if (w->timeout_ms == 0) {
		return -EAGAIN;
	}
	/* The call now waits: start its clock before the spin. */
	deadline = sb_wait_deadline(w);
	for (uint32_t i = 0; i < ring->spin; i++) {
		if (load_relaxed(tail) != pos) {
			return 0;
		}
		sb_cpu_relax();
	}
	if (sb_deadline_passed(deadline)) {
		return -ETIMEDOUT;
	}
	sbr_take_sleeper(ring, slot);
	seen = atomic_load_explicit(&ctl->data_seq, memory_order_acquire);
	if (atomic_load_explicit(tail, memory_order_seq_cst) == pos) {
		r = sb_futex_wait(&ctl->data_seq, seen, deadline);
	}
	sbr_give_back_sleeper(ring, slot);
	return r == -EINTR ? 0 : r;
}

/*
 * Tells writers waiting for space that a reader moved from `from` to `to`.
 * A writer that is only spinning is told once per sixteenth of the ring
 * (or when the reader has caught up), so that it wakes to a batch of room
 * instead of one message at a time; a writer asleep is told at once (it
 * also checks the cursors itself before it sleeps: see wait_for_space()).
 */
void sbr_wake_writers_if_waiting(struct sb_ring *ring, uint64_t from,
				 uint64_t to, int caught_up)
{
	struct sb_ring_ctl *ctl = ring->shm_ctl;
	struct sb_ring_wctl *wc = ring->shm_wctl;
	uint64_t chunk = ring->capacity / 16;
	uint64_t sleepers;

	/* seq_cst: second half of the Dekker pairing in waiter_enter():
	 * our cursor store came first. */
	if (atomic_load_explicit(&wc->space_waiters, memory_order_seq_cst) ==
	    0) {
		return;
	}
	/* seq_cst: pairs with the writer marking itself asleep before it
	 * looks at the cursors in room_visible(). */
	sleepers =
	    atomic_load_explicit(&wc->space_sleepers, memory_order_seq_cst);
	if (sleepers == 0 && !caught_up && from / chunk == to / chunk) {
		return;
	}
	/* seq_cst: the bump comes before our look at space_sleepers, and
	 * a writer counts itself asleep before the kernel compares
	 * space_seq; so either it sees the bump or we see it asleep. */
	atomic_fetch_add_explicit(&ctl->space_seq, 1, memory_order_seq_cst);
	if (sleepers != 0 || atomic_load_explicit(&wc->space_sleepers,
						  memory_order_seq_cst) != 0) {
		sb_futex_wake(&ctl->space_seq, INT_MAX);
	}
}

/* Publishes a broadcast reader's progress after it moved to `end`. */
static inline void reader_moved(struct sb_ring_reader *rd, uint64_t end)
{
	struct sb_ring_slot *slot = rd->slot_mem;
	uint64_t from = rd->cursor;

	rd->cursor = end;
	/* release tells writers we no longer read the bytes before `end`
	 * (pairs with the load in reclaim_limit()); our load of space_waiters
	 * is the other half of the Dekker pair with wait_for_space(). */
	store_hot(&slot->sub_cursor, end);
	store_relaxed(&slot->sub_received, rd->received);
	store_relaxed(&slot->sub_lost, rd->lost);
	sbr_wake_writers_if_waiting(rd->ring, from, end, end == rd->known_tail);
}

/* A broadcast reader consumed the record ending at `end`. */
static inline void reader_consumed(struct sb_ring_reader *rd, uint64_t end)
{
	rd->received++;
	reader_moved(rd, end);
}

/*
 * Checksummed rings: the record at `pos` failed its checks. Moves the
 * reader on to the next intact record (its length may be what is broken,
 * so it is searched for from pos + 16), counts the bad one as lost and
 * returns -EBADMSG. The bad record is taken to have carried the expected
 * seq, which the next intact record's seq confirms or corrects
 * (resync_pos). For a queue, called with the queue lock held, which it
 * releases.
 */
static int skip_bad_record(struct sb_ring_reader *rd, uint64_t pos)
{
	uint64_t next = sbr_next_intact(rd->ring, pos + SB_RING_RECORD_ALIGN,
					rd->known_tail);

	if (rd->ring->mode == SB_RING_QUEUE) {
		sbr_queue_skip_bad(rd, pos, next);
	} else {
		rd->lost++;
		rd->expected_seq++;
		rd->resync_pos = next + 1;
		reader_moved(rd, next);
	}
	return -EBADMSG;
}

/* Finds the next record for `rd`, not yet verified: for a queue with the
 * queue lock held when it returns 0 or REC_BAD. */
static int reader_find(struct sb_ring_reader *rd, struct sb_wait *w,
		       struct rec_view *rec)
{
	int r;

	if (rd->ring->mode == SB_RING_QUEUE) {
		return sbr_queue_next(rd, w, rec);
	}
	for (;;) {
		r = next_record(rd->ring, &rd->cursor, &rd->known_tail, rec);
		if (r == -EBADMSG && reader_evicted(rd)) {
			return -EIDRM; /* the bytes were reused, not corrupted
					*/
		}
		if (r != -EAGAIN) {
			return r;
		}
		r = sbr_wait_for_data(rd, rd->cursor, w);
		if (r < 0) {
			return r;
		}
	}
}

/* Gives up `rec` without consuming it. */
void sbr_reader_skip(struct sb_ring_reader *rd)
{
	if (rd->ring->mode == SB_RING_QUEUE) {
		sbr_release_lock(&rd->ring->shm_ctl->queue_lock);
	}
}

/*
 * Finds the next message for `rd`: for a queue with the queue lock held on
 * success. Shared by receive and peek. In a checksummed ring the record is
 * verified in place first; a bad one is skipped with -EBADMSG.
 */
static int reader_next(struct sb_ring_reader *rd, struct sb_wait *w,
		       struct rec_view *rec)
{
	int r;

	for (;;) {
		r = reader_find(rd, w, rec);
		if (r == 0 && !record_intact(rd->ring, rec)) {
			if (rd->ring->overflow == SB_RING_OVERWRITE &&
			    overrun(rd->ring, rec->pos)) {
				/* Overwritten while we summed it: look
				 * again; next_record() resyncs. */
				sbr_reader_skip(rd);
				continue;
			}
			r = REC_BAD;
		}
		return r == REC_BAD ? skip_bad_record(rd, rec->pos) : r;
	}
}

/* Consumes `rec` (and for a queue releases the lock). */
static int reader_consume(struct sb_ring_reader *rd, const struct rec_view *rec)
{
	int r;

	if (rd->ring->mode == SB_RING_QUEUE) {
		return sbr_queue_consume(rd, rec);
	}
	if (reader_evicted(rd)) {
		return -EIDRM; /* the copy may be torn; the slot is not ours */
	}
	if (rd->seq_unknown) {
		/* The first record: where it joined, its seq is the one
		 * expected; further on (lapped under overwrite), what lies
		 * between was lost, counted from the lower bound. */
		if (rec->pos == rd->join_pos ||
		    rd->ring->overflow != SB_RING_OVERWRITE) {
			rd->expected_seq = rec->seq;
		}
		rd->seq_unknown = 0;
	}
	if (rd->resync_pos == rec->pos + 1 && rec->seq < rd->expected_seq) {
		/* The record just skipped was taken to carry the expected
		 * seq; this one passed its checksum, so its seq is the
		 * truth. (receive_one() leaves this case to us.) */
		rd->expected_seq = rec->seq;
	}
	r = account_seq(&rd->expected_seq, rec->seq, &rd->lost);
	if (r < 0) {
		return r;
	}
	reader_consumed(rd, rec->end);
	return 0;
}

__attribute__((always_inline)) static inline int
reader_usable(const struct sb_ring_reader *rd, int timeout_ms)
{
	if (rd == NULL || rd->ring == NULL || timeout_ms < -1) {
		return -EINVAL;
	}
	if (reader_evicted(rd)) {
		return -EIDRM;
	}
	return rd->peeking ? -EBUSY : 0;
}

/*
 * The common case of reading: a broadcast reader of a ring without the
 * overwrite policy (whose copies can be torn) finds the DATA record at its
 * cursor, committed, intact (checksum) and no larger than `cap`. Returns 1
 * with *rec, 0 when nothing is committed at the cursor, or -1 when the
 * general path must look (a PAD, a bad record, another mode). Nothing but
 * known_tail has changed, and next_record() would have refreshed that the same
 * way.
 */
__attribute__((always_inline)) static inline int
next_simple(struct sb_ring_reader *rd, size_t cap, struct rec_view *rec)
{
	const struct sb_ring *ring = rd->ring;
	uint64_t p = rd->cursor;

	if (ring->mode != SB_RING_BROADCAST ||
	    ring->overflow == SB_RING_OVERWRITE) {
		return -1;
	}
	if (p >= rd->known_tail) {
		/* acquire: as in next_record(). */
		rd->known_tail = atomic_load_explicit(
		    &ring->shm_hdr->writer_tail, memory_order_acquire);
		if (p == rd->known_tail) {
			return 0;
		}
	}
	if (p > rd->known_tail || rd->known_tail - p > ring->capacity ||
	    record_at(ring, p, rd->known_tail, rec) < 0 ||
	    rec->type != SB_REC_DATA || rec->len > cap ||
	    !record_intact(ring, rec)) {
		return -1;
	}
	return 1;
}

/*
 * sb_ring_receive() of next_simple()'s record.
 * Returns 1 with its length in *got (or -EIDRM there: evicted during the
 * copy), 0 when nothing is committed at the cursor, or -1 when the general
 * path must look (also for a seq below the expected one, or an error to
 * report).
 */
static int receive_one(struct sb_ring_reader *rd, void *buf, size_t cap,
		       ssize_t *got)
{
	struct rec_view rec;
	int r = next_simple(rd, cap, &rec);

	if (r <= 0) {
		return r;
	}
	if (rec.len != 0) {
		memcpy(buf, rec.payload, rec.len);
	}
	if (reader_evicted(rd)) {
		*got = -EIDRM; /* the copy may be torn; the slot is not ours */
		return 1;
	}
	if (account_seq(&rd->expected_seq, rec.seq, &rd->lost) < 0) {
		return -1; /* changed nothing: the general path says so */
	}
	reader_consumed(rd, rec.end);
	rd->last_seq = rec.seq;
	*got = rec.len;
	return 1;
}

ssize_t sb_ring_receive(struct sb_ring_reader *rd, void *buf, size_t cap,
			int timeout_ms)
{
	struct sb_wait w = sb_wait_start(timeout_ms);
	struct rec_view rec;
	ssize_t got;
	int r = reader_usable(rd, timeout_ms);

	if (r < 0) {
		return r;
	}
	if (buf == NULL && cap != 0) {
		return -EINVAL;
	}
	r = receive_one(rd, buf, cap, &got);
	if (r > 0) {
		return got;
	}
	if (r == 0 && timeout_ms == 0) {
		/* A poll that found nothing: what the general path would
		 * say, without looking at writer_tail a second time. */
		return -EAGAIN;
	}
	for (;;) {
		r = reader_next(rd, &w, &rec);
		if (r < 0) {
			return r;
		}
		if (rec.len > cap) {
			sbr_reader_skip(rd);
			return -EMSGSIZE;
		}
		if (rec.len != 0) {
			/* receive(NULL, 0) is a valid way to take an empty
			 * message; memcpy must not see the NULL. */
			memcpy(buf, rec.payload, rec.len);
		}
		if (rd->ring->overflow == SB_RING_OVERWRITE &&
		    overrun(rd->ring, rec.pos)) {
			/* Torn copy: look again; next_record() resyncs and the
			 * seq gap counts what was lost. */
			sbr_reader_skip(rd);
			continue;
		}
		r = reader_consume(rd, &rec);
		if (r == REC_TAKEN) {
			continue; /* another consumer has it */
		}
		if (r == 0) {
			rd->last_seq = rec.seq;
		}
		return r < 0 ? r : (ssize_t)rec.len;
	}
}

int sb_ring_peek(struct sb_ring_reader *rd, const void **data, uint32_t *len,
		 int timeout_ms)
{
	struct sb_wait w = sb_wait_start(timeout_ms);
	struct rec_view rec;
	int r = reader_usable(rd, timeout_ms);

	if (r < 0) {
		return r;
	}
	if (data == NULL || len == NULL) {
		return -EINVAL;
	}
	/* The record at the cursor when it is simply there; its release
	 * does the rest, as for one the general path found. */
	r = next_simple(rd, SIZE_MAX, &rec);
	if (r == 0 && timeout_ms == 0) {
		return -EAGAIN;
	}
	if (r <= 0) {
		r = reader_next(rd, &w, &rec);
		if (r < 0) {
			return r;
		}
	}
	rd->peeking = 1;
	rd->peek_pos = rec.pos;
	rd->peek_end = rec.end;
	rd->peek_seq = rec.seq;
	rd->last_seq = rec.seq;
	*data = rec.payload;
	*len = rec.len;
	return 0;
}

int sb_ring_unpeek(struct sb_ring_reader *rd)
{
	if (rd == NULL || rd->ring == NULL || !rd->peeking) {
		return -EINVAL;
	}
	rd->peeking = 0;
	sbr_reader_skip(rd);
	return 0;
}

int sb_ring_release(struct sb_ring_reader *rd)
{
	struct rec_view rec;
	int r;

	if (rd == NULL || rd->ring == NULL || !rd->peeking) {
		return -EINVAL;
	}
	rd->peeking = 0;
	if (rd->ring->overflow == SB_RING_OVERWRITE &&
	    overrun(rd->ring, rd->peek_pos)) {
		/* Not consumed: the next read resyncs and counts it lost. */
		sbr_reader_skip(rd);
		return -ESTALE;
	}
	memset(&rec, 0, sizeof(rec));
	rec.pos = rd->peek_pos;
	rec.end = rd->peek_end;
	rec.seq = rd->peek_seq;
	/* A queue's peeked record is claimed at its release, so that one
	 * whose consumer dies holding the peek goes to the next. */
	r = reader_consume(rd, &rec);
	return r == REC_TAKEN ? -ESTALE /* another consumer had it */ : r;
}

uint64_t sb_ring_reader_seq(const struct sb_ring_reader *rd)
{
	return rd != NULL ? rd->last_seq : 0;
}

uint64_t sb_ring_reader_lost(const struct sb_ring_reader *rd)
{
	return rd != NULL ? rd->lost : 0;
}
