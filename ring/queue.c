/*
 * queue.c - a queue's shared cursor: its lock, finding the next record no
 * other consumer took, consuming it, and repairing the cursor after a
 * consumer died.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "ring/ring_private.h"

/*
 * The queue lock's holder died. Its cursor and expected seq are written in
 * that order, so the expected seq may be one ahead of the cursor: take it
 * from the record at the cursor, which is then delivered again rather than
 * counted as lost.
 */
static void repair_queue_state(struct sb_ring *ring)
{
	struct sb_ring_ctl *ctl = ring->shm_ctl;
	uint64_t pos = load_relaxed(&ctl->queue_cursor);
	uint64_t tail = 0;
	struct rec_view rec;

	if (next_record(ring, &pos, &tail, &rec) == 0 &&
	    rec.seq < load_relaxed(&ctl->queue_expected_seq)) {
		store_relaxed(&ctl->queue_expected_seq, rec.seq);
	}
}

static int queue_lock(struct sb_ring *ring, struct sb_wait *w)
{
	int died;
	/* Bounded: a consumer that keeps the queue lock (hostile, or
	 * stopped in a peek) keeps nobody waiting past the bound; the claims
	 * keep two holders from both delivering one message. */
	int r = sbr_take_lock(&ring->shm_ctl->queue_lock, w,
			      SB_RING_QUEUE_HOLD_MS, &died);

	if (r == 0 && died) {
		repair_queue_state(ring);
	}
	return r;
}

/*
 * Queue, with the queue lock held: the next record not taken yet, from the
 * shared cursor, passing over those whose seq is below `taken`. A cursor
 * other than the one this consumer stored last (someone else moved it, or
 * set it back, or died between its stores), or one that leads to no
 * record or to one whose seq is not the shared expected one, is checked
 * against writer_oldest (a line the writer dirties at every commit, so
 * only then): behind the oldest record, its offset may hold a newer
 * record's bytes, even one being written, so the oldest record is where
 * to look. Returns as next_record() does, *pos where it stopped.
 */
static int queue_find(struct sb_ring_reader *rd, uint64_t taken, uint64_t *pos,
		      struct rec_view *rec)
{
	struct sb_ring *ring = rd->ring;
	/* relaxed: queue_cursor is written under queue_lock. */
	uint64_t c = load_relaxed(&ring->shm_ctl->queue_cursor);
	uint64_t expected = load_relaxed(&ring->shm_ctl->queue_expected_seq);
	int checked = c == rd->queue_cursor_stored;
	int fell_back = 0;
	int r;

	*pos = c;
	for (;;) {
		r = next_record(ring, pos, &rd->known_tail, rec);
		if (!fell_back &&
		    (!checked || r == -EBADMSG ||
		     (r == 0 && *pos == c && rec->seq != expected))) {
			/* acquire: as in next_record(). */
			uint64_t oldest =
			    atomic_load_explicit(&ring->shm_hdr->writer_oldest,
						 memory_order_acquire);

			checked = 1;
			if (c < oldest || r == -EBADMSG) {
				*pos = oldest;
				fell_back = 1;
				continue;
			}
		}
		if (r == 0 && rec->seq < taken) {
			*pos =
			    rec->end; /* taken already: someone set us back */
			continue;
		}
		return r;
	}
}

/* Queue: finds the next record not known to be taken. Returns 0 (or
 * REC_BAD) with the queue lock held, or an error with it released. */
int sbr_queue_next(struct sb_ring_reader *rd, struct sb_wait *w,
		   struct rec_view *rec)
{
	struct sb_ring *ring = rd->ring;
	uint64_t pos;
	int r;

	for (;;) {
		/* The claims of consumers that joined since, outside the
		 * lock: the refresh may ask the broker. */
		sbr_slot_map_refresh(ring);
		r = queue_lock(ring, w);
		if (r < 0) {
			return r;
		}
		/* relaxed: queue_taken only grows; a stale value costs a
		 * claim that finds the record taken (queue_claim()). */
		r = queue_find(
		    rd,
		    max_u64(rd->queue_hint,
			    load_relaxed(&ring->shm_hdr->queue_taken)),
		    &pos, rec);
		if (r == 0 || r == REC_BAD) {
			return r;
		}
		sbr_release_lock(&ring->shm_ctl->queue_lock);
		if (r != -EAGAIN) {
			return r;
		}
		r = sbr_wait_for_data(rd, pos, w);
		if (r < 0) {
			return r;
		}
	}
}

/*
 * Queue, with the queue lock held, after this consumer claimed `rec` and a
 * seq_cst fence (sbr_queue_consume()): whether another claim, or the broker's
 * queue_taken, goes beyond it (believably: sbr_claim_bound()). Then it was
 * taken: before, by a consumer whose take a queue position set back hides,
 * or at the same time, by one that got in because the queue lock was
 * written free (of two racing, each stores its claim before it looks, so
 * at least one sees the other). Sets rd->queue_hint past what is taken.
 */
static int queue_taken_elsewhere(struct sb_ring_reader *rd,
				 const struct rec_view *rec)
{
	struct sb_ring *ring = rd->ring;
	/* First without the bound, which costs a load of a line writers
	 * dirty at every commit: only a claim beyond ours needs it. */
	struct claim_scan sc = {rec->seq, UINT64_MAX, rd->slot};

	sc.max =
	    max_u64(sc.max, atomic_load_explicit(&ring->shm_hdr->queue_taken,
						 memory_order_acquire));
	sbr_scan_claims(ring, 0, &sc);
	if (sc.max > rec->seq) {
		sc.max = rec->seq;
		sc.bound = sbr_claim_bound(ring);
		sc.max = sbr_max_claim(
		    sc.max,
		    atomic_load_explicit(&ring->shm_hdr->queue_taken,
					 memory_order_acquire),
		    sc.bound);
		sbr_scan_claims(ring, 0, &sc);
	}
	if (sc.max <= rec->seq) {
		rd->queue_hint = rec->seq + 1;
		return 0;
	}
	rd->queue_hint = sc.max;
	/* What we now pass over as taken we record as taken, in our own
	 * claim, so that writers reclaim it too: a claim seen once and then
	 * written back (a hostile consumer's) must not leave records that we
	 * skip and writers wait for. seq_cst: before our look at
	 * space_waiters (sbr_wake_writers_if_waiting(), Dekker with a writer
	 * that waits for space and then scans the claims). */
	atomic_store_explicit(&rd->slot_mem->queue_claim, sc.max,
			      memory_order_seq_cst);
	return REC_TAKEN;
}

/*
 * Queue: consumes `rec` (copied out, or the release of its peek) and
 * releases the queue lock. Returns 0, or REC_TAKEN when another consumer
 * turned out to have it (queue_taken_elsewhere()): then it is not this
 * consumer's to deliver.
 */
int sbr_queue_consume(struct sb_ring_reader *rd, const struct rec_view *rec)
{
	struct sb_ring *ring = rd->ring;
	struct sb_ring_ctl *ctl = ring->shm_ctl;
	struct sb_ring_slot *slot = rd->slot_mem;
	/* The shared expected seq only counts what nobody took before
	 * writers overwrote it (the overwrite policy; nothing else loses a
	 * queue message). The claims decide what is taken: a value a
	 * consumer wrote here can skew that count, never a delivery. */
	uint64_t expected = load_relaxed(&ctl->queue_expected_seq);
	uint64_t lost = 0;

	if (expected > rec->seq) {
		expected = rec->seq;
	}
	(void)account_seq(&expected, rec->seq, &lost);
	if (ring->overflow != SB_RING_OVERWRITE) {
		lost = 0;
	}
	/* The claim first: what this consumer took, where only it writes
	 * (docs/shm-layout.md, "The queue's position"). */
	store_relaxed(&slot->queue_claim, rec->seq + 1);
	/* The expected seq goes before the cursor: see repair_queue_state()
	 * for why that order is recoverable. */
	store_relaxed(&ctl->queue_expected_seq, expected);
	store_relaxed(&ctl->queue_lost, load_relaxed(&ctl->queue_lost) + lost);
	store_relaxed(&ctl->queue_cursor, rec->end);
	rd->queue_cursor_stored = rec->end;
	/* seq_cst fence: the claim and the cursor before our loads of the
	 * others' claims (Dekker with a consumer claiming at the same time)
	 * and of space_waiters (with the writers' seq_cst load of the cursor
	 * in queue_limit()). */
	atomic_thread_fence(memory_order_seq_cst);
	if (queue_taken_elsewhere(rd, rec) == REC_TAKEN) {
		sbr_release_lock(&ctl->queue_lock);
		/* Our claim may have grown past records writers wait for. */
		sbr_wake_writers_if_waiting(ring, rec->pos, rec->end, 1);
		return REC_TAKEN;
	}
	sbr_release_lock(&ctl->queue_lock);
	rd->lost += lost;
	rd->received++;
	store_relaxed(&slot->sub_received, rd->received);
	store_relaxed(&slot->sub_lost, rd->lost);
	sbr_wake_writers_if_waiting(ring, rec->pos, rec->end,
				    rec->end == rd->known_tail);
	return 0;
}

/*
 * Queue, with the queue lock held: moves the shared cursor from the bad
 * record at `from` to `next`, counts one message lost (for the queue and
 * for this consumer), expects one seq more, and releases the lock.
 */
void sbr_queue_skip_bad(struct sb_ring_reader *rd, uint64_t from, uint64_t next)
{
	struct sb_ring *ring = rd->ring;
	struct sb_ring_ctl *ctl = ring->shm_ctl;

	/* Expected seq first, cursor second, as in sbr_queue_consume(). */
	store_relaxed(&ctl->queue_expected_seq,
		      load_relaxed(&ctl->queue_expected_seq) + 1);
	store_relaxed(&ctl->queue_lost, load_relaxed(&ctl->queue_lost) + 1);
	/* seq_cst: as in sbr_queue_consume(). */
	atomic_store_explicit(&ctl->queue_cursor, next, memory_order_seq_cst);
	rd->queue_cursor_stored = next;
	sbr_release_lock(&ctl->queue_lock);
	rd->lost++;
	store_relaxed(&rd->slot_mem->sub_lost, rd->lost);
	sbr_wake_writers_if_waiting(ring, from, next, next == rd->known_tail);
}
