/*
 * space.c - room for a record: how far the slowest cursor (or the queue's
 * taken seq) lets the writer reclaim, reclaiming, and the table of writers
 * that wait for space and their sleep.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "ring/ring_private.h"

/* Longest single futex sleep of a writer waiting for space: a writer whose
 * table entry was freed under it (a reaper in another pid namespace took
 * it for dead) or that found the table full is late by at most this. */
#define SPACE_WAIT_SLICE_MS 100
#define SPACE_POLL_MS	    1 /* sleep of a writer without a table entry */

/* The slowest of the live cursors in `slot` that lie in [oldest, tail]
 * (others are not trusted and hold nothing back), or `limit`. */
static uint64_t slot_limit(const struct sb_ring_slot *slot, uint64_t tail,
			   uint64_t oldest, uint64_t limit)
{
	uint64_t c;

	/* seq_cst: the other half of the Dekker pair with a joining
	 * reader's slot CAS (see join_reclaims()). */
	if ((atomic_load_explicit(&slot->slot_state, memory_order_seq_cst) &
	     1u) == 0) {
		return limit;
	}
	/* seq_cst: pairs with the store of sub_cursor in reader_consumed();
	 * a reader that moved on before we registered as a waiter is seen
	 * here (with the heavy fence in wait_for_space()). */
	c = atomic_load_explicit(&slot->sub_cursor, memory_order_seq_cst);
	return c >= oldest && c <= tail && c < limit ? c : limit;
}

/*
 * The slowest cursor of a ring whose slots are segments of their own, as
 * far as this process's map of them goes: brought up to date first when
 * the broker's slot_gen moved (the load is seq_cst: a joining reader's
 * Dekker pair with reclaim_seq, see join_reclaims(), covers the broker's
 * bump too, which comes before the reader is given its slot). With no map,
 * a map that cannot be refreshed, or a slot in use whose segment is not
 * mapped here, nothing may be reclaimed: `oldest`.
 */
/* Brings `map` (its lock held) up to date with the broker's slot_gen if
 * that moved or a refresh failed before. Returns map->current. */
static int map_refresh(const struct sb_ring *ring, struct sb_ring_slot_map *map)
{
	uint64_t gen = atomic_load_explicit(&ring->shm_hdr->slot_gen,
					    memory_order_seq_cst);

	if ((!map->current || map->gen != gen) && map->refresh != NULL) {
		map->current = map->refresh(map) == 0;
		map->gen = gen;
	}
	return map->current;
}

/* 1 when `map` (its lock held) is not up to date with slot_gen. */
static int map_stale(const struct sb_ring *ring,
		     const struct sb_ring_slot_map *map)
{
	return !map->current ||
	       map->gen != atomic_load_explicit(&ring->shm_hdr->slot_gen,
						memory_order_seq_cst);
}

/* Whether this process's map of the slot segments needs a refresh. */
static int slot_map_stale(const struct sb_ring *ring)
{
	struct sb_ring_slot_map *map = ring->slot_map;
	int stale;

	if (map == NULL || map->refresh == NULL) {
		return 0;
	}
	pthread_mutex_lock(&map->lock);
	stale = map_stale(ring, map);
	pthread_mutex_unlock(&map->lock);
	return stale;
}

/* Brings the map of slot segments up to date: never with writer_lock or
 * the queue lock held, since it may ask the broker (a round trip). */
void sbr_slot_map_refresh(const struct sb_ring *ring)
{
	struct sb_ring_slot_map *map = ring->slot_map;

	if (map != NULL) {
		pthread_mutex_lock(&map->lock);
		(void)map_refresh(ring, map);
		pthread_mutex_unlock(&map->lock);
	}
}

/*
 * With `refresh` 0 (writer_lock held), a map that is not up to date counts
 * as one that cannot be: nothing is reclaimed, and sbr_make_room() refreshes
 * it with the lock released and tries again.
 */
static uint64_t segments_limit(const struct sb_ring *ring, uint64_t tail,
			       uint64_t oldest, int refresh)
{
	struct sb_ring_slot_map *map = ring->slot_map;
	uint64_t limit = tail;

	if (map == NULL) {
		return oldest;
	}
	pthread_mutex_lock(&map->lock);
	if (refresh ? !map_refresh(ring, map) : map_stale(ring, map)) {
		pthread_mutex_unlock(&map->lock);
		return oldest;
	}
	for (uint32_t i = 0; i < map->count; i++) {
		const struct sb_ring_slot *slot = map->slots[i];

		if (slot == SB_RING_SLOT_HOLD) {
			limit = oldest;
			break;
		}
		if (slot != NULL) {
			limit = slot_limit(slot, tail, oldest, limit);
		}
	}
	pthread_mutex_unlock(&map->lock);
	return limit;
}

/* ---- the queue's taken seq ------------------------------------------- */

/* The largest a queue claim may be: every seq committed, with room for a
 * commit whose writer_next_seq is not stored yet (a ring's worth of the
 * smallest records). A larger value is not believed. */
uint64_t sbr_claim_bound(const struct sb_ring *ring)
{
	return load_relaxed(&ring->shm_hdr->writer_next_seq) +
	       ring->capacity / SB_RING_RECORD_ALIGN;
}

uint64_t sbr_max_claim(uint64_t e, uint64_t claim, uint64_t bound)
{
	return claim > e && claim <= bound ? claim : e;
}

/*
 * The largest believable claim (over sc->max) among the slots this process
 * can see: the inline slots, or the mapped slot segments (the map's lock
 * held; brought up to date first when `refresh`, never with the queue lock
 * held, as that may ask the broker). A slot's claim counts whether or not
 * the slot is in use: the broker keeps it (queue_taken) when it drops one.
 */
static void scan_claim(const struct sb_ring_slot *slot, uint32_t index,
		       struct claim_scan *sc)
{
	if ((int64_t)index == sc->skip) {
		return;
	}
	/* seq_cst: pairs with the claim's store in queue_claim() (Dekker:
	 * of two consumers claiming at once, one sees the other). */
	sc->max = sbr_max_claim(
	    sc->max,
	    atomic_load_explicit(&slot->queue_claim, memory_order_seq_cst),
	    sc->bound);
}

void sbr_scan_claims(const struct sb_ring *ring, int refresh,
		     struct claim_scan *sc)
{
	struct sb_ring_slot_map *map = ring->slot_map;

	if (ring->slot_home == SB_RING_SLOTS_INLINE) {
		for (uint32_t i = 0; i < ring->slot_count; i++) {
			scan_claim(&ring->shm_slots[i], i, sc);
		}
		return;
	}
	if (map == NULL) {
		return;
	}
	pthread_mutex_lock(&map->lock);
	if (refresh) {
		(void)map_refresh(ring, map);
	}
	for (uint32_t i = 0; i < map->count; i++) {
		if (map->slots[i] != NULL &&
		    map->slots[i] != SB_RING_SLOT_HOLD) {
			scan_claim(map->slots[i], i, sc);
		}
	}
	pthread_mutex_unlock(&map->lock);
}

/*
 * Queue, for writers: the seq after the last record any consumer took, by
 * what no one consumer can set back: the claims in the consumers' own
 * slots, the broker's record of the claims of consumers that left
 * (queue_taken, in the data header), and the shared queue_expected_seq,
 * each believed up to sbr_claim_bound().
 */
static uint64_t taken_seq(const struct sb_ring *ring, int refresh)
{
	struct claim_scan sc = {0, sbr_claim_bound(ring), -1};

	sc.max = sbr_max_claim(
	    0, load_relaxed(&ring->shm_ctl->queue_expected_seq), sc.bound);
	sc.max = sbr_max_claim(sc.max,
			       atomic_load_explicit(&ring->shm_hdr->queue_taken,
						    memory_order_acquire),
			       sc.bound);
	sbr_scan_claims(ring, refresh, &sc);
	return sc.max;
}

void sb_ring_keep_claim(struct sb_ring *ring, const struct sb_ring_slot *slot)
{
	uint64_t cur, seq;

	if (ring == NULL || slot == NULL || ring->mode != SB_RING_QUEUE) {
		return;
	}
	cur = atomic_load_explicit(&ring->shm_hdr->queue_taken,
				   memory_order_relaxed);
	/* seq_cst: as the consumers' loads of claims (scan_claim()). */
	seq = atomic_load_explicit(&slot->queue_claim, memory_order_seq_cst);
	if (seq > sbr_claim_bound(ring)) {
		return;
	}
	while (seq > cur && !atomic_compare_exchange_weak_explicit(
				&ring->shm_hdr->queue_taken, &cur, seq,
				memory_order_release, memory_order_relaxed)) {
	}
}

/*
 * Queue: the position writers may reclaim up to. The shared cursor (an
 * untrusted one counts as `oldest`), and past it every record the claims
 * say was taken (taken_seq()): a cursor set back holds writers back no
 * more than consumers. (A record is claimed once it is copied out, or at
 * the release of a peek, never while it is still read in place.)
 */
static uint64_t queue_limit(const struct sb_ring *ring, uint64_t tail,
			    uint64_t oldest, int refresh)
{
	/* seq_cst: pairs with the seq_cst fence after the store of
	 * queue_cursor in sbr_queue_consume() (Dekker with space_waiters). */
	uint64_t c = atomic_load_explicit(&ring->shm_ctl->queue_cursor,
					  memory_order_seq_cst);
	uint64_t taken = taken_seq(ring, refresh);
	struct rec_view rec;

	if (c < oldest || c > tail || c % SB_RING_RECORD_ALIGN != 0) {
		c = oldest;
	}
	/* Over DATA records only: a PAD at the cursor is where the next
	 * consumer looks, and reclaiming it would leave the cursor behind
	 * the oldest record. */
	while (c < tail && record_at(ring, c, tail, &rec) == 0 &&
	       rec.type == SB_REC_DATA && rec.seq < taken) {
		c = rec.end;
	}
	return c;
}

/*
 * How far writers may reclaim: up to the slowest live cursor (block and
 * reject), the queue's position (queue mode), or the tail (overwrite).
 * Cursors outside [oldest, tail] are not trusted and hold nothing back.
 */
static uint64_t reclaim_limit(const struct sb_ring *ring, uint64_t tail,
			      uint64_t oldest, int refresh)
{
	uint64_t limit = tail;

	if (ring->overflow == SB_RING_OVERWRITE) {
		return tail;
	}
	if (ring->mode == SB_RING_QUEUE) {
		return queue_limit(ring, tail, oldest, refresh);
	}
	if (ring->slot_home == SB_RING_SLOTS_SEGMENTS) {
		return segments_limit(ring, tail, oldest, refresh);
	}
	for (uint32_t i = 0; i < ring->slot_count; i++) {
		limit = slot_limit(&ring->shm_slots[i], tail, oldest, limit);
	}
	return limit;
}

/*
 * Moves writer_oldest forward over whole committed records, no further than
 * `limit`, until `want_free` bytes are free before `tail` (the writer's
 * working tail, which may run ahead of `committed` inside a batch). Called
 * with writer_lock held.
 */
static int reclaim(struct sb_ring *ring, uint64_t committed, uint64_t tail,
		   uint64_t *oldest, uint64_t limit, uint64_t want_free)
{
	struct rec_view rec;
	uint64_t p = *oldest;

	while (ring->capacity - (tail - p) < want_free && p < limit) {
		if (record_at(ring, p, committed, &rec) < 0) {
			return -EBADMSG;
		}
		if (rec.end > limit) {
			break;
		}
		p = rec.end;
	}
	if (p != *oldest) {
		store_relaxed(&ring->shm_hdr->writer_oldest, p);
		stat_add(&ring->shm_hdr->writer_epoch, 1);
		/* release fence: pairs with the acquire fence in overrun();
		 * the new oldest is visible before any store that overwrites
		 * the bytes it gave up (the seqlock pattern). */
		atomic_thread_fence(memory_order_release);
		*oldest = p;
	}
	return 0;
}

/*
 * With writer_lock held: reclaims what the policy allows and sets *ok when
 * a `size`-byte record fits at `tail` (the working tail: the committed one,
 * or further on inside a batch).
 */
int sbr_try_room(struct sb_ring *ring, uint64_t tail, uint64_t size, int *ok)
{
	struct sb_ring_header *hdr = ring->shm_hdr;
	/* relaxed: only writer_lock holders store these; the lock orders
	 * them between holders. */
	uint64_t committed = load_relaxed(&hdr->writer_tail);
	uint64_t oldest = load_relaxed(&hdr->writer_oldest);
	uint64_t need, want, limit;
	int r;

	*ok = 0;
	if (committed < oldest || tail < committed ||
	    tail - oldest > ring->capacity) {
		return -EBADMSG;
	}
	need = span_needed(ring, tail, size);
	if (ring->capacity - (tail - oldest) >= need) {
		*ok = 1;
		return 0;
	}
	/* Block and reject reclaim a quarter ring beyond the need, so the
	 * slot scan runs once per quarter ring, not once per message;
	 * overwrite destroys no more unread messages than it must. */
	want = need;
	if (ring->overflow != SB_RING_OVERWRITE) {
		want = need + ring->capacity / 4 > ring->capacity
			   ? ring->capacity
			   : need + ring->capacity / 4;
	}
	sbr_reclaim_begin(ring);
	limit = reclaim_limit(ring, committed, oldest, 0);
	r = reclaim(ring, committed, tail, &oldest, limit, want);
	sbr_reclaim_end(ring);
	if (r < 0) {
		return r;
	}
	*ok = ring->capacity - (tail - oldest) >= need;
	return 0;
}

/* ---- the table of writers waiting for space --------------------------- */

/*
 * Takes a free entry of space_waiter_pid for this thread and sets its bit
 * in space_waiters. Returns the entry's index, or -1 when all are taken.
 */
static int waiter_enter(struct sb_ring_wctl *wc)
{
	uint32_t pid = (uint32_t)getpid();

	for (uint32_t i = 0; i < SB_RING_MAX_SPACE_WAITERS; i++) {
		uint32_t expected = 0;

		/* acquire: pairs with the release CAS that freed the entry
		 * in waiter_leave() or sb_ring_reap_dead_waiters(), so their
		 * clearing of bit i comes before our setting of it. */
		if (atomic_compare_exchange_strong_explicit(
			&wc->space_waiter_pid[i], &expected, pid,
			memory_order_acquire, memory_order_relaxed)) {
			/* seq_cst: Dekker with sbr_wake_writers_if_waiting():
			 * we publish "a writer waits", then look at the cursors
			 * again; a reader stores its cursor, then looks at
			 * space_waiters. One of us sees the other. */
			atomic_fetch_or_explicit(&wc->space_waiters,
						 UINT64_C(1) << i,
						 memory_order_seq_cst);
			return (int)i;
		}
	}
	return -1;
}

/* Clears entry `i`'s bits, then frees the entry (if it is still ours). */
static void waiter_leave(struct sb_ring_wctl *wc, int i)
{
	uint64_t bit;
	uint32_t pid;

	if (i < 0) {
		return; /* waited without an entry: nothing to give back */
	}
	bit = UINT64_C(1) << i;
	pid = (uint32_t)getpid();
	/* relaxed: a stale bit only makes a reader bump space_seq once more;
	 * the release CAS below orders these before the entry is reused. */
	atomic_fetch_and_explicit(&wc->space_sleepers, ~bit,
				  memory_order_relaxed);
	atomic_fetch_and_explicit(&wc->space_waiters, ~bit,
				  memory_order_relaxed);
	/* release: pairs with the acquire CAS in waiter_enter(). A failed CAS
	 * means a reaper freed the entry already (and cleared our bits). */
	atomic_compare_exchange_strong_explicit(&wc->space_waiter_pid[i], &pid,
						0, memory_order_release,
						memory_order_relaxed);
}

int sb_ring_reap_dead_waiters(struct sb_ring *ring)
{
	struct sb_ring_wctl *wc;
	int freed = 0;

	if (ring == NULL) {
		return -EINVAL;
	}
	wc = ring->shm_wctl;
	for (uint32_t i = 0; i < SB_RING_MAX_SPACE_WAITERS; i++) {
		uint64_t bit = UINT64_C(1) << i;
		/* relaxed: only the value matters; the CAS below decides. */
		uint32_t pid = atomic_load_explicit(&wc->space_waiter_pid[i],
						    memory_order_relaxed);

		if (pid == 0 || pid > INT_MAX || kill((pid_t)pid, 0) == 0 ||
		    errno != ESRCH) {
			continue;
		}
		/* The writer is dead: clearing its bits is idempotent, so it
		 * does not matter how far it got in waiter_enter(). relaxed:
		 * the release CAS below orders them before any reuse. */
		atomic_fetch_and_explicit(&wc->space_sleepers, ~bit,
					  memory_order_relaxed);
		atomic_fetch_and_explicit(&wc->space_waiters, ~bit,
					  memory_order_relaxed);
		/* release: pairs with the acquire CAS in waiter_enter(). */
		if (atomic_compare_exchange_strong_explicit(
			&wc->space_waiter_pid[i], &pid, 0, memory_order_release,
			memory_order_relaxed)) {
			freed++;
		}
	}
	return freed;
}

/*
 * The deadline of one sleep: the caller's, or SPACE_WAIT_SLICE_MS (or
 * `slice_ms`) from now if that comes first. Sleeping in slices bounds what
 * a lost wake-up can cost: a reaper cannot tell a writer in another pid
 * namespace from a dead one, and a writer without a table entry is woken
 * by nobody.
 */
static const struct timespec *slice_deadline(const struct timespec *dl,
					     int slice_ms, struct timespec *buf)
{
	const struct timespec *slice = sb_deadline_init(slice_ms, buf);

	if (dl != NULL &&
	    (dl->tv_sec < slice->tv_sec ||
	     (dl->tv_sec == slice->tv_sec && dl->tv_nsec < slice->tv_nsec))) {
		return dl;
	}
	return slice;
}

/*
 * Without writer_lock: 1 when the readers have freed room for a `size`-byte
 * record at the committed tail. An estimate (another writer may move the
 * tail meanwhile): the caller looks again under the lock. Its cursor loads
 * are seq_cst, so a writer that first marks itself asleep and then finds no
 * room here is seen asleep by any reader that moves on afterwards.
 */
static int room_visible(const struct sb_ring *ring, uint64_t size)
{
	struct sb_ring_header *hdr = ring->shm_hdr;
	uint64_t tail =
	    atomic_load_explicit(&hdr->writer_tail, memory_order_acquire);
	uint64_t oldest = load_relaxed(&hdr->writer_oldest);
	uint64_t limit;

	if (tail < oldest || tail - oldest > ring->capacity) {
		return 1; /* let the locked path report the corruption */
	}
	/* Without writer_lock: the map of slots may be refreshed here. */
	limit = reclaim_limit(ring, tail, oldest, 1);
	return ring->capacity - (tail - limit) >= span_needed(ring, tail, size);
}

/*
 * Waits until a reader frees space, then retakes writer_lock. Called with
 * the lock held; returns 0 with it held (*ok set when room appeared while
 * registering), or an error with it released. A waiting writer takes an
 * entry in the waiter table (its bit in space_waiters), then spins on
 * space_seq, which readers bump while space_waiters is nonzero; only if
 * that stays still does it set its bit in space_sleepers and sleep, so
 * readers make a FUTEX_WAKE call only for a writer that is really asleep.
 */
static int wait_for_space(struct sb_ring *ring, uint64_t size,
			  struct sb_wait *w, int *ok)
{
	struct sb_ring_ctl *ctl = ring->shm_ctl;
	struct sb_ring_wctl *wc = ring->shm_wctl;
	const struct timespec *dl;
	struct timespec slice;
	uint32_t seen;
	int me, r = 0;

	/* Counted before anyone can see us wait (a reader that makes room
	 * at once still made us wait for it). */
	stat_add(&ring->shm_hdr->stat_waits, 1);
	me = waiter_enter(wc);
	/* Readers store their cursors with release only (reader_consumed()):
	 * the heavy fence makes every store before it visible before we look
	 * at the cursors, and every reader after it sees our bit. */
	sb_fence_heavy();
	seen = atomic_load_explicit(&ctl->space_seq, memory_order_acquire);
	r = sbr_try_room(ring, load_relaxed(&ring->shm_hdr->writer_tail), size,
			 ok);
	if (r < 0 || *ok) {
		waiter_leave(wc, me);
		if (r < 0) {
			sbr_writer_unlock(ring);
		}
		return r;
	}
	sbr_writer_unlock(ring);
	for (uint32_t i = 0; me >= 0 && i < ring->spin; i++) {
		if (atomic_load_explicit(&ctl->space_seq,
					 memory_order_relaxed) != seen) {
			break;
		}
		sb_cpu_relax();
	}
	dl = sb_wait_deadline(w);
	if (me >= 0) {
		/* seq_cst: Dekker with the reader's bump then sleepers load;
		 * the kernel compares space_seq with `seen` as it queues us. */
		atomic_fetch_or_explicit(&wc->space_sleepers, UINT64_C(1) << me,
					 memory_order_seq_cst);
	}
	sb_fence_heavy(); /* as above, for the sleepers bit */
	/* Readers bump space_seq only once per chunk for a writer that is
	 * not asleep, so look at their cursors ourselves before sleeping. */
	if (atomic_load_explicit(&ctl->space_seq, memory_order_seq_cst) ==
		seen &&
	    !room_visible(ring, size)) {
		r = sb_futex_wait(&ctl->space_seq, seen,
				  slice_deadline(dl,
						 me >= 0 ? SPACE_WAIT_SLICE_MS
							 : SPACE_POLL_MS,
						 &slice));
	}
	waiter_leave(wc, me);
	if (r == -ETIMEDOUT && !sb_deadline_passed(dl)) {
		r = 0; /* only the slice ended: look again */
	}
	if (r < 0 && r != -EINTR) {
		return r;
	}
	return sbr_writer_lock(ring, w);
}

/* With writer_lock held: makes room for a `size`-byte record. Returns 0
 * with the lock held, or an error with it released. */
int sbr_make_room(struct sb_ring *ring, uint64_t size, struct sb_wait *w)
{
	int ok, r, refreshed = 0;

	for (;;) {
		r = sbr_try_room(
		    ring, load_relaxed(&ring->shm_hdr->writer_tail), size, &ok);
		if (r < 0) {
			sbr_writer_unlock(ring);
			return r;
		}
		if (ok) {
			return 0;
		}
		if (!refreshed && slot_map_stale(ring)) {
			/* The set of slots changed: learn it without holding
			 * the lock (a round trip to the broker), once. */
			refreshed = 1;
			sbr_writer_unlock(ring);
			sbr_slot_map_refresh(ring);
			r = sbr_writer_lock(ring, w);
			if (r < 0) {
				return r;
			}
			continue;
		}
		if (ring->overflow == SB_RING_REJECT || w->timeout_ms == 0) {
			stat_add(&ring->shm_hdr->stat_rejected, 1);
			sbr_writer_unlock(ring);
			return -EAGAIN;
		}
		r = wait_for_space(ring, size, w, &ok);
		if (r < 0 || ok) {
			return r;
		}
	}
}
