/*
 * write.c - the publish path: placing records, committing them with one
 * tail store, waking sleeping readers; claims, batches and the one-message
 * path of the solo writer.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "ring/ring_private.h"

/*
 * With writer_lock held and room made: places a `len`-byte record at
 * *tail, first filling the end of the area with a PAD when it would not fit
 * there (records never wrap; the PAD becomes visible with the record, by
 * the one tail store). Returns the record's position and moves *tail past
 * it, or -EBADMSG for a misaligned tail (only corruption does that, and the
 * PAD would then run past the end of the area).
 */
static int place_record(struct sb_ring *ring, uint64_t *tail, uint32_t len,
			uint64_t *pos)
{
	struct sb_ring_record pad = {0};
	uint64_t size = record_size(ring, len);
	uint64_t room;

	if ((*tail & (SB_RING_RECORD_ALIGN - 1)) != 0) {
		return -EBADMSG;
	}
	room = ring->capacity - (*tail & ring->mask);
	if (size > room) {
		pad.len = (uint32_t)(room - SB_RING_RECORD_HEADER);
		pad.type = SB_REC_PAD;
		memcpy(ring->shm_data + (*tail & ring->mask), &pad,
		       sizeof(pad));
		*tail += room;
	}
	*pos = *tail;
	*tail += size;
	return 0;
}

/* Writes the header of the DATA record at `pos`; returns its payload. */
static unsigned char *write_header(struct sb_ring *ring, uint64_t pos,
				   uint32_t len, uint64_t seq)
{
	struct sb_ring_record h = {.len = len, .type = SB_REC_DATA, .seq = seq};
	unsigned char *at = ring->shm_data + (pos & ring->mask);

	memcpy(at, &h, sizeof(h));
	return at + SB_RING_RECORD_HEADER;
}

/* Copies a DATA record's payload in after its header, and in a
 * checksummed ring seals it. */
static inline void write_payload(const struct sb_ring *ring, unsigned char *at,
				 const void *buf, uint32_t len)
{
	if (len != 0) { /* memcpy must not see a NULL buf, even for 0 */
		memcpy(at, buf, len);
	}
	if (has_checksums(ring)) {
		seal_record(at, len);
	}
}

/* Wakes every sleeper on `word`, after bumping it so that a sleeper about to
 * wait with the old value does not sleep. */
void sbr_bump_and_wake(_Atomic uint32_t *word)
{
	/* release: a woken sleeper's acquire load of the word sees what we
	 * published before it. */
	atomic_fetch_add_explicit(word, 1, memory_order_release);
	sb_futex_wake(word, INT_MAX);
}

/*
 * The writer positions to work on, in this handle's copy: kept from its
 * last commit while writer_epoch says nothing changed them since, else read
 * from the header. The caller works on the copy in place (a copy of the
 * copy would read back stores still in flight, which cannot be forwarded
 * piecewise).
 */
static inline struct sb_writer_view *view_load(struct sb_ring *ring)
{
	struct sb_ring_header *hdr = ring->shm_hdr;
	struct sb_writer_view *v = &ring->own;
	uint64_t epoch = load_relaxed(&hdr->writer_epoch);

	if (!ring->own_valid || v->epoch != epoch) {
		v->tail = load_relaxed(&hdr->writer_tail);
		v->oldest = load_relaxed(&hdr->writer_oldest);
		v->next_seq = load_relaxed(&hdr->writer_next_seq);
		v->epoch = epoch;
		ring->own_valid = 1;
	}
	return v;
}

/*
 * Fenced commits. A reader that goes to sleep and a writer that commits
 * form a Dekker pair: the reader counts itself in data_waiters, then looks
 * at the tail; the writer stores the tail, then looks at data_waiters. One
 * of the two needs a full fence between its store and its load. A fence
 * on every commit waits for the tail store, whose line the polling reader
 * holds, and halves a spinning stream's rate; so by default the sleeper
 * pays instead, with the heavy fence (membarrier, which interrupts the
 * writer's CPU). When readers sleep often, as a blocking receiver does on
 * every message, that interrupt costs more: it doubled the one-way wake-up
 * on a 2-CPU virtual machine (bench/README.md, "Measured figures").
 *
 * So a sleeper arms commit_fence: OFF -> ARMING (a new generation), heavy
 * fence, ARMING -> ARMED. Every writer loads commit_fence after its tail
 * store and fences unless it is OFF; a sleeper that finds it ARMED skips
 * the heavy fence. Why that is safe: a writer whose load found it OFF
 * either made that load before the arming reader's heavy fence, which
 * then made its earlier tail store visible before ARMED was set (so a
 * sleeper that reads ARMED sees that tail), or found it OFF because a
 * writer disarmed it after the sleeper read ARMED, and then (all seq_cst)
 * its load of data_waiters comes after the sleeper's count. A writer
 * disarms (CAS, so only the state it saw) after SB_RING_FENCE_QUIET
 * commits in a row with nobody asleep, since the fence then costs for
 * nothing; it also clears an ARMING left by a reader that died.
 */
__attribute__((noinline, cold)) static void
count_quiet_commit(struct sb_ring *ring, uint32_t fence)
{
	if (++ring->quiet_commits >= SB_RING_FENCE_QUIET) {
		ring->quiet_commits = 0;
		atomic_compare_exchange_strong_explicit(
		    &ring->shm_ctl->commit_fence, &fence,
		    fence & ~SB_RING_FENCE_STATE, memory_order_seq_cst,
		    memory_order_relaxed);
	}
}

static inline uint32_t sleepers_after_commit(struct sb_ring *ring)
{
	struct sb_ring_ctl *ctl = ring->shm_ctl;
	uint32_t fence =
	    atomic_load_explicit(&ctl->commit_fence, memory_order_seq_cst);
	int fenced = (fence & SB_RING_FENCE_STATE) != SB_RING_FENCE_OFF;
	uint32_t sleepers;

	if (fenced) {
		atomic_thread_fence(memory_order_seq_cst);
	}
	sleepers =
	    atomic_load_explicit(&ctl->data_waiters, memory_order_seq_cst);
	if (sleepers != 0) {
		ring->quiet_commits = 0;
	} else if (fenced) {
		count_quiet_commit(ring, fence);
	}
	return sleepers;
}

/*
 * Publishes `count` records with `bytes` payload bytes, written after
 * v->tail and ending at `tail`, with one tail store, and keeps the new
 * positions in the handle. By the one writer of the moment (writer_lock
 * holder or solo). Returns whether readers sleep: the caller wakes them
 * once it has let go of the ring.
 */
static inline uint32_t commit_records(struct sb_ring *ring,
				      struct sb_writer_view *v, uint64_t tail,
				      uint64_t count, uint64_t bytes)
{
	struct sb_ring_header *hdr = ring->shm_hdr;

	/* release: publishes the records to the acquire loads of writer_tail
	 * in next_record() and the waits; the data_waiters load below is the
	 * other half of the Dekker pair with sbr_wait_for_data(). */
	store_hot(&hdr->writer_tail, tail);
	v->tail = tail;
	v->next_seq += count;
	/* Not v->epoch + 1: a reclaim in this pass moved it on too. */
	v->epoch = load_relaxed(&hdr->writer_epoch) + 1;
	store_relaxed(&hdr->writer_next_seq, v->next_seq);
	store_relaxed(&hdr->writer_epoch, v->epoch);
	stat_add(&hdr->stat_published, count);
	stat_add(&hdr->stat_bytes, bytes);
	return sleepers_after_commit(ring);
}

/* Lets go of the ring after a publish or claim: solo_busy for the solo
 * writer, else writer_lock. */
static void let_go(struct sb_ring *ring, int solo)
{
	if (solo) {
		solo_leave(ring);
	} else {
		sbr_writer_unlock(ring);
	}
}

/* Commits, lets go of the ring, and wakes sleeping readers. Always
 * inlined: out of line (GCC's choice once commit_fence was added) it cost
 * the one-message path instructions (bench/instructions.sh counts them). */
__attribute__((always_inline)) static inline void
publish_pass(struct sb_ring *ring, struct sb_writer_view *v, uint64_t tail,
	     uint64_t count, uint64_t bytes, int solo)
{
	uint32_t sleepers = commit_records(ring, v, tail, count, bytes);

	let_go(ring, solo);
	if (sleepers != 0) {
		sbr_bump_and_wake(&ring->shm_ctl->data_seq);
	}
}

/*
 * By the one writer of the moment: sets *ok when a `size`-byte record fits
 * at the working tail `t`, reclaiming only when the oldest in `v` is not
 * enough (v->oldest then follows the header's).
 */
static int fit_record(struct sb_ring *ring, struct sb_writer_view *v,
		      uint64_t t, uint64_t size, int *ok)
{
	int r;

	*ok = 1;
	if (ring->capacity - (t - v->oldest) >= span_needed(ring, t, size)) {
		return 0;
	}
	r = sbr_try_room(ring, t, size, ok);
	v->oldest = load_relaxed(&ring->shm_hdr->writer_oldest);
	return r;
}

/* Polls between two looks at the readers' cursors in solo_wait_room(). */
#define SOLO_ROOM_POLLS 16u

/*
 * By the solo writer, when a `size`-byte record does not fit at `t` even
 * after a reclaim: waits for the readers to free room, polling their
 * cursors for up to ring->spin polls, as a plain ring's producer waits for
 * its consumer. Without it every full ring sent the solo writer down the
 * locked path, whose wait fences every CPU (membarrier) and, for a claim,
 * gives solo up for the next SB_RING_SOLO_AFTER messages: a subscriber a
 * little slower than its publisher paid for that once per quarter ring.
 * Only for the block policy and a caller that may wait; stops at once
 * when another writer revokes solo. Returns 1 when the record now fits.
 */
static int solo_wait_room(struct sb_ring *ring, struct sb_writer_view *v,
			  uint64_t t, uint64_t size, int may_wait)
{
	const _Atomic uint32_t *solo = &ring->shm_wctl->solo;
	int ok = 0;

	if (!may_wait || ring->overflow != SB_RING_BLOCK) {
		return 0;
	}
	for (uint32_t i = 0; i < ring->spin && !ok; i += SOLO_ROOM_POLLS) {
		for (uint32_t j = 0; j < SOLO_ROOM_POLLS; j++) {
			sb_cpu_relax();
		}
		if (atomic_load_explicit(solo, memory_order_relaxed) !=
			ring->solo_entry ||
		    fit_record(ring, v, t, size, &ok) < 0) {
			return 0;
		}
	}
	return ok;
}

/* The positions in `v` can be trusted only inside these bounds. */
static int view_sane(const struct sb_ring *ring, const struct sb_writer_view *v)
{
	return v->tail >= v->oldest && v->tail - v->oldest <= ring->capacity;
}

/*
 * Readers keep the lines they read in their caches, so each line a writer
 * comes back to a lap later must first be taken from them; asking for it
 * PREFETCH_AHEAD bytes early lets that happen while the writer does other
 * work. Only free space is asked for, never a line with unread records.
 */
#define PREFETCH_AHEAD 1024u

static void prefetch_ahead(const struct sb_ring *ring, uint64_t tail,
			   uint64_t oldest)
{
	uint64_t ahead = tail + PREFETCH_AHEAD;

	if (ring->capacity - (tail - oldest) >= PREFETCH_AHEAD + 128) {
		sb_prefetch_for_write(ring->shm_data + (ahead & ring->mask));
		sb_prefetch_for_write(ring->shm_data +
				      ((ahead + 64) & ring->mask));
	}
}

/* 1 when a `size`-byte record fits at the working tail `t` with no
 * reclaim and no PAD before it, in positions that can be trusted: what the
 * one-message paths take; anything else goes to the general path. */
static inline int fits_as_is(const struct sb_ring *ring,
			     const struct sb_writer_view *v, uint64_t t,
			     uint64_t size)
{
	return view_sane(ring, v) && (t & (SB_RING_RECORD_ALIGN - 1)) == 0 &&
	       ring->capacity - (t - v->oldest) >= size &&
	       ring->capacity - (t & ring->mask) >= size;
}

/*
 * A claim by the solo writer: busy from here until commit or abort, like a
 * lock held. Returns 1 with *claim filled, 0 when the caller must take the
 * lock (not solo, or no room without waiting), or an error.
 */
static int solo_claim(struct sb_ring *ring, uint32_t len,
		      struct sb_ring_claim *claim, int may_wait)
{
	struct sb_writer_view *v;
	uint64_t t;
	int ok, r;

	r = solo_enter(ring);
	if (r <= 0) {
		return r;
	}
	v = view_load(ring);
	t = v->tail;
	if (fits_as_is(ring, v, t, record_size(ring, len))) {
		/* The common case, as publish_one_solo() takes it. */
		claim->pos = t;
		prefetch_ahead(ring, t + record_size(ring, len), v->oldest);
		claim->solo = 1;
		return 1;
	}
	r = view_sane(ring, v)
		? fit_record(ring, v, t, record_size(ring, len), &ok)
		: -EBADMSG;
	if (r == 0 && !ok) {
		ok = solo_wait_room(ring, v, t, record_size(ring, len),
				    may_wait);
	}
	if (r == 0 && ok) {
		r = place_record(ring, &t, len, &claim->pos);
	}
	if (r < 0 || !ok) {
		solo_leave(ring);
		return r;
	}
	claim->solo = 1;
	return 1;
}

int sb_ring_claim(struct sb_ring *ring, uint32_t len,
		  struct sb_ring_claim *claim, int timeout_ms)
{
	struct sb_wait w = sb_wait_start(timeout_ms);
	uint64_t tail;
	int r;

	if (ring == NULL || claim == NULL || timeout_ms < -1) {
		return -EINVAL;
	}
	if (len > ring->max_message) {
		return -EMSGSIZE;
	}
	r = solo_claim(ring, len, claim, timeout_ms != 0);
	if (r < 0) {
		return r;
	}
	if (r == 0) {
		r = sbr_writer_lock(ring, &w);
		if (r < 0) {
			return r;
		}
		sbr_solo_give_up(ring);
		r = sbr_make_room(ring, record_size(ring, len), &w);
		if (r < 0) {
			return r;
		}
		tail = load_relaxed(&ring->shm_hdr->writer_tail);
		r = place_record(ring, &tail, len, &claim->pos);
		if (r < 0) {
			sbr_writer_unlock(ring);
			return r;
		}
		claim->solo = 0;
	}
	claim->len = len;
	claim->data =
	    ring->shm_data + (claim->pos & ring->mask) + SB_RING_RECORD_HEADER;
	claim->active = 1;
	return 0;
}

int sb_ring_commit(struct sb_ring *ring, struct sb_ring_claim *claim)
{
	struct sb_writer_view *v;
	unsigned char *at;

	if (ring == NULL || claim == NULL || !claim->active) {
		return -EINVAL;
	}
	v = view_load(ring);
	at = write_header(ring, claim->pos, claim->len, v->next_seq);
	if (has_checksums(ring)) {
		/* The payload is in: the caller wrote it at claim->data. */
		seal_record(at, claim->len);
	}
	claim->active = 0;
	if (!claim->solo) {
		sbr_solo_count(ring);
	}
	publish_pass(ring, v, claim->pos + record_size(ring, claim->len), 1,
		     claim->len, claim->solo);
	return 0;
}

int sb_ring_abort(struct sb_ring *ring, struct sb_ring_claim *claim)
{
	if (ring == NULL || claim == NULL || !claim->active) {
		return -EINVAL;
	}
	claim->active = 0;
	let_go(ring, claim->solo);
	return 0;
}

/* Checks a batch before any of it is published: all or nothing. */
static int check_batch(const struct sb_ring *ring, const struct iovec *msgs,
		       size_t n)
{
	if (msgs == NULL && n != 0) {
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (msgs[i].iov_base == NULL && msgs[i].iov_len != 0) {
			return -EINVAL;
		}
		if (msgs[i].iov_len > ring->max_message) {
			return -EMSGSIZE;
		}
	}
	return 0;
}

/*
 * Copies messages msgs[first..n) into the ring after the committed tail,
 * as long as they fit without waiting, by the one writer of the moment.
 * Returns how many it wrote (their end in *tail, their payload bytes in
 * *bytes), or -EBADMSG with nothing to commit.
 */
static ssize_t copy_in(struct sb_ring *ring, const struct iovec *msgs, size_t n,
		       size_t first, struct sb_writer_view *v, uint64_t *tail,
		       uint64_t *bytes)
{
	uint64_t t = v->tail;
	uint64_t pos;
	size_t i;
	int ok, r;

	if (!view_sane(ring, v)) {
		return -EBADMSG;
	}
	for (i = first; i < n; i++) {
		uint32_t len = (uint32_t)msgs[i].iov_len;
		unsigned char *at;

		r = fit_record(ring, v, t, record_size(ring, len), &ok);
		if (r < 0) {
			return r;
		}
		if (!ok) {
			break;
		}
		r = place_record(ring, &t, len, &pos);
		if (r < 0) {
			return r;
		}
		at = write_header(ring, pos, len, v->next_seq + (i - first));
		write_payload(ring, at, msgs[i].iov_base, len);
		*bytes += len;
		prefetch_ahead(ring, t, v->oldest);
	}
	*tail = t;
	return (ssize_t)(i - first);
}

/*
 * One pass of a batch, under writer_lock: waits for room for the first
 * message, copies in as many as fit, publishes them with one tail store
 * and releases the lock. Returns 0, or an error with nothing of this pass
 * published and the lock released.
 */
static int publish_some(struct sb_ring *ring, const struct iovec *msgs,
			size_t n, size_t *done, struct sb_wait *w)
{
	struct sb_writer_view *v;
	uint64_t tail, bytes = 0;
	ssize_t count;
	int r;

	r = sbr_make_room(ring, record_size(ring, msgs[*done].iov_len), w);
	if (r < 0) {
		return r;
	}
	v = view_load(ring);
	count = copy_in(ring, msgs, n, *done, v, &tail, &bytes);
	if (count <= 0) {
		sbr_writer_unlock(ring);
		return count < 0 ? (int)count : -EBADMSG;
	}
	*done += (size_t)count;
	sbr_solo_count(ring);
	publish_pass(ring, v, tail, (uint64_t)count, bytes, 0);
	return 0;
}

/*
 * One pass of a batch by the solo writer, without writer_lock. Returns 1
 * when it published some, 0 when the caller must take the lock (not solo,
 * or no room without waiting), or an error with nothing published.
 */
static int solo_publish(struct sb_ring *ring, const struct iovec *msgs,
			size_t n, size_t *done, int may_wait)
{
	struct sb_writer_view *v;
	uint64_t tail, bytes = 0;
	ssize_t count;
	int r = solo_enter(ring);

	if (r <= 0) {
		return r;
	}
	v = view_load(ring);
	count = copy_in(ring, msgs, n, *done, v, &tail, &bytes);
	if (count == 0 &&
	    solo_wait_room(ring, v, v->tail,
			   record_size(ring, (uint32_t)msgs[*done].iov_len),
			   may_wait)) {
		count = copy_in(ring, msgs, n, *done, v, &tail, &bytes);
	}
	if (count <= 0) {
		solo_leave(ring);
		return (int)count;
	}
	*done += (size_t)count;
	publish_pass(ring, v, tail, (uint64_t)count, bytes, 1);
	return 1;
}

ssize_t sb_ring_publish_batch(struct sb_ring *ring, const struct iovec *msgs,
			      size_t n, int timeout_ms)
{
	struct sb_wait w = sb_wait_start(timeout_ms);
	size_t done = 0;
	int r;

	if (ring == NULL || timeout_ms < -1 || n > SSIZE_MAX) {
		return -EINVAL;
	}
	r = check_batch(ring, msgs, n);
	while (r == 0 && done < n) {
		r = solo_publish(ring, msgs, n, &done, timeout_ms != 0);
		if (r != 0) {
			r = r > 0 ? 0 : r;
			continue;
		}
		r = sbr_writer_lock(ring, &w);
		if (r == 0) {
			r = publish_some(ring, msgs, n, &done, &w);
		}
	}
	return done > 0 ? (ssize_t)done : r;
}

/*
 * The common case of sb_ring_publish(), by the solo writer: one message
 * that fits before the end of the area, in the room its own copy of the
 * positions already shows. Returns 1 when published, 0 when the general
 * path must do it (not solo, a PAD or a reclaim needed, a copy it cannot
 * trust), or -EDEADLK (a claim is held). Same steps as copy_in() without
 * the batch's bookkeeping, which is most of a small message's cost.
 */
static int publish_one_solo(struct sb_ring *ring, const void *buf, uint32_t len)
{
	uint64_t size = record_size(ring, len);
	struct sb_writer_view *v;
	uint64_t t, end;
	unsigned char *at;
	int r = solo_enter(ring);

	if (r <= 0) {
		return r;
	}
	v = view_load(ring);
	t = v->tail;
	end = t + size;
	if (!fits_as_is(ring, v, t, size)) {
		solo_leave(ring);
		return 0;
	}
	at = write_header(ring, t, len, v->next_seq);
	write_payload(ring, at, buf, len);
	prefetch_ahead(ring, end, v->oldest);
	publish_pass(ring, v, end, 1, len, 1);
	return 1;
}

int sb_ring_publish(struct sb_ring *ring, const void *buf, uint32_t len,
		    int timeout_ms)
{
	struct iovec msg = {.iov_base = (void *)buf, .iov_len = len};
	ssize_t r;

	if (ring != NULL && timeout_ms >= -1 && (buf != NULL || len == 0) &&
	    len <= ring->max_message) {
		r = publish_one_solo(ring, buf, len);
		if (r != 0) {
			return r > 0 ? 0 : (int)r;
		}
	}
	r = sb_ring_publish_batch(ring, &msg, 1, timeout_ms);
	return r == 1 ? 0 : (int)r;
}
