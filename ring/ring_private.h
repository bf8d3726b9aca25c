/*
 * ring_private.h - what the files of ring/ share and nobody outside ring/
 * includes: the checked view of a record, the helpers of the hot paths
 * (static inline, so that splitting the ring into files costs the publish
 * and receive paths nothing), and the sbr_ functions one file of the ring
 * calls in another. The layout they work on is ring_layout.h; the API for
 * the rest of the library is ring.h.
 *
 * Every value read from shared memory is checked before it is used.
 * Writers serialise on writer_lock (lock.c) or publish alone (solo.c) and
 * publish a record by storing writer_tail (write.c); broadcast readers
 * follow their own cursor without a lock (read.c); queue consumers share
 * one cursor under a second lock (queue.c).
 */
#ifndef SB_RING_PRIVATE_H
#define SB_RING_PRIVATE_H

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "ring/crc32c.h"
#include "ring/ring.h"
#include "ring/ring_layout.h"
#include "sys/barrier.h"
#include "sys/deadline.h"
#include "sys/futex.h"
#include "sys/identity.h"

/* next_record()'s answer for a record that fails its checks in a
 * checksummed ring: the reader skips it (skip_bad_record()). */
#define REC_BAD 1
/* queue_taken_elsewhere()'s answer: another consumer had the record. */
#define REC_TAKEN 2

/* A checked record: where it is, where the next one starts, what it holds. */
struct rec_view {
	uint64_t pos;
	uint64_t end;
	uint32_t type;
	uint32_t len;
	uint64_t seq;
	const unsigned char *payload;
};

/* A scan of the queue claims in the slots (scan_claims()): the largest
 * believable claim so far, the bound beyond which a claim is not believed,
 * and the caller's own slot, which is not looked at. */
struct claim_scan {
	uint64_t max;
	uint64_t bound;
	int64_t skip; /* the index of the caller's own slot, or -1 */
};

/* format.c */
/* Zeroes the data segment's header `hdr` and writes the geometry of `cfg`
 * and `ctl_size` into it, with the lowest version that describes it;
 * `ready` stays 0. */
void sbr_header_init(struct sb_ring_header *hdr,
		     const struct sb_ring_config *cfg, uint64_t ctl_size);

/* record.c */
int sbr_checksum_matches(const unsigned char *payload, uint32_t len);
uint64_t sbr_next_intact(const struct sb_ring *ring, uint64_t from,
			 uint64_t limit);

/* lock.c */
const struct timespec *sbr_lock_deadline(struct sb_wait *w,
					 struct timespec *grace);
void sbr_reclaim_begin(struct sb_ring *ring);
void sbr_reclaim_end(struct sb_ring *ring);
void sbr_release_lock(struct sb_shm_lock *m);
void sbr_repair_writer_state(struct sb_ring *ring);
int sbr_take_lock(struct sb_shm_lock *m, struct sb_wait *w, int hold_ms,
		  int *broken);

/* solo.c */
void sbr_solo_count(struct sb_ring *ring);
void sbr_solo_give_up(struct sb_ring *ring);
int sbr_writer_lock(struct sb_ring *ring, struct sb_wait *w);
void sbr_writer_unlock(struct sb_ring *ring);

/* space.c */
uint64_t sbr_claim_bound(const struct sb_ring *ring);
int sbr_make_room(struct sb_ring *ring, uint64_t size, struct sb_wait *w);
uint64_t sbr_max_claim(uint64_t e, uint64_t claim, uint64_t bound);
void sbr_scan_claims(const struct sb_ring *ring, int refresh,
		     struct claim_scan *sc);
void sbr_slot_map_refresh(const struct sb_ring *ring);
int sbr_try_room(struct sb_ring *ring, uint64_t tail, uint64_t size, int *ok);

/* write.c */
void sbr_bump_and_wake(_Atomic uint32_t *word);

/* read.c */
void sbr_give_back_sleeper(struct sb_ring *ring, struct sb_ring_slot *slot);
void sbr_reader_skip(struct sb_ring_reader *rd);
void sbr_take_sleeper(struct sb_ring *ring, struct sb_ring_slot *slot);
int sbr_wait_for_data(struct sb_ring_reader *rd, uint64_t pos,
		      struct sb_wait *w);
void sbr_wake_writers_if_waiting(struct sb_ring *ring, uint64_t from,
				 uint64_t to, int caught_up);

/* slots.c */
/* Slot `index` as this process maps it, or NULL (no such slot, or not
 * mapped here). */
struct sb_ring_slot *sbr_slot_at(const struct sb_ring *ring, uint32_t index);

/* queue.c */
int sbr_queue_consume(struct sb_ring_reader *rd, const struct rec_view *rec);
int sbr_queue_next(struct sb_ring_reader *rd, struct sb_wait *w,
		   struct rec_view *rec);
void sbr_queue_skip_bad(struct sb_ring_reader *rd, uint64_t from,
			uint64_t next);

static inline uint64_t record_size(const struct sb_ring *ring, uint64_t len)
{
	return sb_ring_record_size(ring, len);
}

static inline int has_checksums(const struct sb_ring *ring)
{
	return (ring->flags & SB_RING_FLAG_CHECKSUM) != 0;
}

static inline uint64_t load_relaxed(_Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static inline void store_relaxed(_Atomic uint64_t *v, uint64_t x)
{
	atomic_store_explicit(v, x, memory_order_relaxed);
}

/* Statistics are written only by the lock holder: a plain increment. */
static inline void stat_add(_Atomic uint64_t *v, uint64_t n)
{
	store_relaxed(v, load_relaxed(v) + n);
}

/*
 * Checks the record at position `pos`, which lies before `limit` (the tail
 * the caller loaded), whose bytes are at `at` (in the ring's data area or
 * in a copy of it), with `room` bytes from there to the area's end. The header
 * is copied once, then only the copy is used, so a concurrent change cannot
 * slip past the checks. The record must start 16-aligned and end inside the
 * area and at or before `limit`.
 */
__attribute__((always_inline)) static inline int
record_parse(const struct sb_ring *ring, const unsigned char *at, uint64_t room,
	     uint64_t pos, uint64_t limit, struct rec_view *rec)
{
	struct sb_ring_record h;
	uint64_t size;

	if ((pos & (SB_RING_RECORD_ALIGN - 1)) != 0) {
		return -EBADMSG;
	}
	memcpy(&h, at, sizeof(h));
	if (h.type == SB_REC_PAD) {
		if (h.len != room - SB_RING_RECORD_HEADER) {
			return -EBADMSG;
		}
		size = room;
	} else if (h.type == SB_REC_DATA) {
		if (h.len > ring->max_message) {
			return -EBADMSG;
		}
		size = record_size(ring, h.len);
		if (size > room) {
			return -EBADMSG;
		}
	} else {
		return -EBADMSG;
	}
	if (limit - pos < size) {
		return -EBADMSG;
	}
	rec->pos = pos;
	rec->end = pos + size;
	rec->type = h.type;
	rec->len = h.len;
	rec->seq = h.seq;
	rec->payload = at + SB_RING_RECORD_HEADER;
	return 0;
}

/* record_parse() of the record at `pos` in the ring itself. Never reads
 * outside the data area: the offset is masked. */
static inline int record_at(const struct sb_ring *ring, uint64_t pos,
			    uint64_t limit, struct rec_view *rec)
{
	uint64_t off = pos & ring->mask;

	return record_parse(ring, ring->shm_data + off, ring->capacity - off,
			    pos, limit, rec);
}

/* The checksum of the DATA record at `at` with `len` payload bytes: the
 * CRC-32C of its header and payload, which lie together (records never
 * wrap). */
static inline uint32_t record_checksum(const unsigned char *at, uint32_t len)
{
	return sb_crc32c(0, at, SB_RING_RECORD_HEADER + (size_t)len);
}

/* By the writer, after the header and payload of the DATA record at
 * `payload` - 16 are written: stores its checksum word. */
static inline void seal_record(unsigned char *payload, uint32_t len)
{
	uint32_t crc = record_checksum(payload - SB_RING_RECORD_HEADER, len);

	memcpy(payload + len, &crc, sizeof(crc));
}

/*
 * 1 when `rec` (checked by record_at()) may be delivered: always without
 * checksums or for a PAD, else when its checksum matches. The header is
 * read again with the payload, so a header that changed since record_at()
 * copied it shows as a bad checksum too.
 */
static inline int record_intact(const struct sb_ring *ring,
				const struct rec_view *rec)
{
	return !has_checksums(ring) || rec->type != SB_REC_DATA ||
	       sbr_checksum_matches(rec->payload, rec->len);
}

/* Bytes the tail must advance to place a `size`-byte record: the record,
 * plus the PAD that fills the end when it would not fit there. */
static inline uint64_t span_needed(const struct sb_ring *ring, uint64_t tail,
				   uint64_t size)
{
	uint64_t room = ring->capacity - (tail & ring->mask);

	return size <= room ? size : room + size;
}

static inline uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* `s` (a value of wc->solo) when it names an entry this thread owns,
 * else 0 (also for a revoking flag or an entry out of range). */
static inline uint32_t solo_mine(const struct sb_ring_wctl *wc, uint32_t s,
				 const struct sb_self *me)
{
	const struct sb_ring_solo_owner *o;

	if (s == 0 || s > SB_RING_SOLO_ENTRIES) {
		return 0;
	}
	o = &wc->solo_owner[s - 1];
	return atomic_load_explicit(&o->tid, memory_order_relaxed) == me->tid &&
		       atomic_load_explicit(&o->pid, memory_order_relaxed) ==
			   me->pid
		   ? s
		   : 0;
}

/*
 * 1 when this thread may publish without writer_lock; it is then busy until
 * solo_leave(). 0 when it must take the lock. -EDEADLK when it is busy
 * already: it holds a claim (as taking writer_lock again would say).
 */
static inline int solo_enter(struct sb_ring *ring)
{
	struct sb_ring_wctl *wc = ring->shm_wctl;
	uint32_t s = atomic_load_explicit(&wc->solo, memory_order_relaxed);
	struct sb_self me;
	_Atomic uint32_t *busy;
	uint32_t e;

	if (s == 0) {
		return 0;
	}
	/* Not in a process revokers' fence reaches: no solo path. */
	if (!sb_self(&me)) {
		return 0;
	}
	e = solo_mine(wc, s & ~SB_RING_SOLO_REVOKING, &me);
	if (e == 0) {
		return 0;
	}
	busy = &wc->solo_busy[e - 1];
	if (atomic_load_explicit(busy, memory_order_relaxed) == me.tid) {
		return -EDEADLK; /* our own claim, revoking or not */
	}
	if (s != e) {
		return 0; /* being revoked: take the lock */
	}
	atomic_store_explicit(busy, me.tid, memory_order_relaxed);
	/* The solo thread's half of the Dekker pair with solo_revoke():
	 * busy first, then the look at solo. The revoker's heavy fence
	 * orders our store before our load; the compiler must not swap
	 * them. */
	atomic_signal_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&wc->solo, memory_order_relaxed) == e) {
		/* acquire: what the lock holders wrote before us is visible. */
		atomic_thread_fence(memory_order_acquire);
		ring->solo_entry = e;
		return 1;
	}
	atomic_store_explicit(busy, 0, memory_order_release);
	return 0;
}

static inline void solo_leave(struct sb_ring *ring)
{
	/* release: a revoker that sees 0 sees everything we published. */
	atomic_store_explicit(&ring->shm_wctl->solo_busy[ring->solo_entry - 1],
			      0, memory_order_release);
}

/*
 * The hot side of an asymmetric Dekker pair (see sys/process.c): a store whose
 * following load must not pass it. release when this process is
 * registered, so that the sleeper's heavy fence does the ordering; seq_cst
 * otherwise.
 */
static inline void store_hot(_Atomic uint64_t *word, uint64_t value)
{
	if (sb_fence_cheap_ok()) {
		atomic_store_explicit(word, value, memory_order_release);
	} else {
		atomic_store_explicit(word, value, memory_order_seq_cst);
	}
}

/*
 * Overwrite policy only: 1 when a writer reclaimed the record at `pos`
 * (and so may have overwritten what we just read from it).
 */
static inline int overrun(const struct sb_ring *ring, uint64_t pos)
{
	/* acquire fence: pairs with the release fence in reclaim(); if any
	 * byte we read was overwritten, the oldest we load next is past
	 * `pos`. */
	atomic_thread_fence(memory_order_acquire);
	return load_relaxed(&ring->shm_hdr->writer_oldest) > pos;
}

/*
 * Has the broker evicted this reader (sb_ring_slot_evict()): is its slot no
 * longer in the state it attached with? Then writers no longer wait for it,
 * so bytes it looked at may have been reused, and it must not write its
 * slot, which may be another reader's by now. The acquire fence orders the
 * reader's earlier loads of a record before this look (the seqlock pattern,
 * as in overrun()): a copy that saw bytes stored by a writer that reclaimed
 * past the freed slot also sees the slot changed.
 */
static inline int reader_evicted(const struct sb_ring_reader *rd)
{
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&rd->slot_mem->slot_state,
				    memory_order_relaxed) != rd->slot_state;
}

/* Counts messages skipped between the expected seq and `seq`. A seq that
 * goes backwards can only come from corrupted memory. */
static inline int account_seq(uint64_t *expected, uint64_t seq, uint64_t *lost)
{
	if (seq < *expected) {
		return -EBADMSG;
	}
	*lost += seq - *expected;
	*expected = seq + 1;
	return 0;
}

/*
 * Finds the next DATA record at or after *pos: skips PAD records and, with
 * the overwrite policy, jumps to the oldest intact record when lapped.
 * *known_tail is the caller's last view of writer_tail (0 when it has none),
 * refreshed here when needed.
 * Returns 0 with *rec, -EAGAIN when nothing is committed beyond *pos, or
 * -EBADMSG. *pos moves past what was skipped. In a checksummed ring a
 * record that fails record_at() gives REC_BAD with rec->pos set, so that
 * the reader can skip it; a bad checksum is found by the caller.
 */
static inline int next_record(const struct sb_ring *ring, uint64_t *pos,
			      uint64_t *known_tail, struct rec_view *rec)
{
	int overwrite = ring->overflow == SB_RING_OVERWRITE;
	uint64_t p, tail, oldest;
	int r;

	for (;;) {
		p = *pos;
		tail = *known_tail;
		/* The tail seen last time still covers every record before
		 * it; look at writer_tail (a line the writer dirties on each
		 * commit) only when caught up with it, or when the view is
		 * off (a resync went past it, or it says we were lapped). */
		if (p >= tail || tail - p > ring->capacity) {
			/* acquire: pairs with the release store of
			 * writer_tail in commit_records(); every byte before
			 * the tail is visible. */
			tail = atomic_load_explicit(&ring->shm_hdr->writer_tail,
						    memory_order_acquire);
			*known_tail = tail;
		}
		if (p == tail) {
			return -EAGAIN;
		}
		if (tail - p > ring->capacity) {
			if (!overwrite || p > tail) {
				return -EBADMSG;
			}
			oldest =
			    atomic_load_explicit(&ring->shm_hdr->writer_oldest,
						 memory_order_acquire);
			if (oldest == p) {
				/* The oldest itself is over a ring behind the
				 * tail (loaded after it): corrupted, and
				 * retrying would loop for ever. */
				return -EBADMSG;
			}
			*pos = oldest;
			continue;
		}
		r = record_at(ring, p, tail, rec);
		if (overwrite && overrun(ring, p)) {
			*pos = load_relaxed(&ring->shm_hdr->writer_oldest);
			continue;
		}
		if (r < 0) {
			rec->pos = p;
			return has_checksums(ring) ? REC_BAD : r;
		}
		if (rec->type == SB_REC_PAD) {
			*pos = rec->end;
			continue;
		}
		return 0;
	}
}

#endif
