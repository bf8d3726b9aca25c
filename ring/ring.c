/*
 * ring.c - operations over a topic ring in shared memory (layout in
 * ring_layout.h). Writers serialise on a lock of our own (shm_lock.h) and
 * publish a record by storing writer_tail; broadcast readers follow their
 * own cursor without a lock; queue consumers share one cursor under a
 * second lock.
 * Every value read from shared memory is checked before it is used.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "ring/crc32c.h"
#include "ring/ring.h"

#define DEFAULT_SPIN 4000        /* polls (~ a few µs) before a futex sleep */
#define LOCK_GRACE_MS 10         /* lock wait allowed when timeout_ms is 0 */
#define READER_OPEN_TIMEOUT_MS 5000
/* Longest single futex sleep of a writer waiting for space: a writer whose
 * table entry was freed under it (a reaper in another pid namespace took
 * it for dead) or that found the table full is late by at most this. */
#define SPACE_WAIT_SLICE_MS 100
#define SPACE_POLL_MS 1 /* sleep of a writer without a table entry */
/* A revoker whose heavy fence the kernel refused waits this long for the
 * solo thread's busy store to leave its store buffer. */
#define SOLO_FENCE_GRACE_NS 1000000

/* next_record()'s answer for a record that fails its checks in a
 * checksummed ring: the reader skips it (skip_bad_record()). */
#define REC_BAD 1

/* A checked record: where it is, where the next one starts, what it holds. */
struct rec_view {
	uint64_t pos;
	uint64_t end;
	uint32_t type;
	uint32_t len;
	uint64_t seq;
	const unsigned char *payload;
};

static inline uint64_t record_size(const struct sb_ring *ring, uint64_t len)
{
	return sb_ring_record_size(ring, len);
}

static int has_checksums(const struct sb_ring *ring)
{
	return (ring->flags & SB_RING_FLAG_CHECKSUM) != 0;
}

static int is_power_of_two(uint64_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

/* The control segment's size: its header, then the slots when they live
 * there, rounded up to a page. */
static uint64_t ctl_bytes(uint32_t slot_home, uint32_t slot_count)
{
	uint64_t ctl = SB_RING_CTL_SLOTS_OFFSET;

	if (slot_home == SB_RING_SLOTS_INLINE) {
		ctl += (uint64_t)slot_count * sizeof(struct sb_ring_slot);
	}
	return (ctl + 4095) & ~(uint64_t)4095;
}

int sb_ring_layout(const struct sb_ring_config *cfg, uint64_t *data_size,
                   uint64_t *ctl_size)
{
	if (cfg == NULL || data_size == NULL || ctl_size == NULL) {
		return -EINVAL;
	}
	if (!is_power_of_two(cfg->capacity) ||
	    cfg->capacity < SB_RING_MIN_CAPACITY ||
	    cfg->capacity > SB_RING_MAX_CAPACITY ||
	    cfg->max_message > cfg->capacity / 4 || cfg->slot_count == 0 ||
	    cfg->slot_count > SB_RING_MAX_SLOTS) {
		return -EINVAL;
	}
	if (cfg->mode != SB_RING_BROADCAST && cfg->mode != SB_RING_QUEUE) {
		return -EINVAL;
	}
	if (cfg->overflow != SB_RING_BLOCK &&
	    cfg->overflow != SB_RING_OVERWRITE &&
	    cfg->overflow != SB_RING_REJECT) {
		return -EINVAL;
	}
	if ((cfg->flags & ~SB_RING_FLAGS_KNOWN) != 0 ||
	    (cfg->slot_home != SB_RING_SLOTS_INLINE &&
	     cfg->slot_home != SB_RING_SLOTS_SEGMENTS)) {
		return -EINVAL;
	}
	*data_size = SB_RING_HEADER_SIZE + cfg->capacity;
	*ctl_size = ctl_bytes(cfg->slot_home, cfg->slot_count);
	return 0;
}

int sb_ring_format_ctl(void *ctl, uint64_t ctl_size,
                       const struct sb_ring_config *cfg, uint64_t queue_start)
{
	struct sb_ring_ctl *c = ctl;
	uint64_t need_data, need_ctl;

	if (ctl == NULL || sb_ring_layout(cfg, &need_data, &need_ctl) < 0 ||
	    ctl_size < need_ctl) {
		return -EINVAL;
	}
	memset(c, 0, need_ctl);
	c->magic = SB_RING_CTL_MAGIC;
	c->version = SB_RING_CTL_VERSION;
	c->slot_count = cfg->slot_count;
	/* relaxed: nobody else maps this segment before it is handed out. */
	atomic_store_explicit(&c->queue_cursor, queue_start,
	                      memory_order_relaxed);
	/* Both locks are free as zeroed (shm_lock.h). */
	return 0;
}

void sb_ring_reset_writers(void *data, uint32_t slot_home)
{
	struct sb_ring_header *hdr = data;

	memset(&hdr->wctl, 0, sizeof(hdr->wctl));
	/* No slot of the old control segment survives it; a ring persisted
	 * with its slots inline moves them out (the control segment is new
	 * anyway, and only its size depends on where they live). */
	for (size_t i = 0; i < SB_RING_MAX_SLOTS / 64; i++) {
		atomic_store_explicit(&hdr->slot_live[i], 0,
		                      memory_order_relaxed);
	}
	hdr->slot_home = slot_home;
	hdr->ctl_size = ctl_bytes(slot_home, hdr->slot_count);
}

int sb_ring_format(void *data, uint64_t data_size, void *ctl,
                   uint64_t ctl_size, const struct sb_ring_config *cfg)
{
	struct sb_ring_header *hdr = data;
	uint64_t need_data, need_ctl;
	int r;

	if (data == NULL || ctl == NULL ||
	    sb_ring_layout(cfg, &need_data, &need_ctl) < 0 ||
	    data_size < need_data || ctl_size < need_ctl) {
		return -EINVAL;
	}
	memset(hdr, 0, sizeof(*hdr));
	hdr->magic = SB_RING_MAGIC;
	/* The lowest version that describes the ring (ring_layout.h). */
	hdr->version = cfg->flags != 0 ? SB_RING_VERSION_FLAGS : SB_RING_VERSION;
	hdr->flags = cfg->flags;
	hdr->mode = cfg->mode;
	hdr->overflow = cfg->overflow;
	hdr->max_message = cfg->max_message;
	hdr->capacity = cfg->capacity;
	hdr->slot_count = cfg->slot_count;
	hdr->slot_home = cfg->slot_home;
	hdr->ctl_size = need_ctl;
	r = sb_ring_format_ctl(ctl, ctl_size, cfg, 0);
	if (r < 0) {
		return r;
	}
	/* release: pairs with the acquire load of `ready` in sb_ring_attach();
	 * an attacher that sees READY sees the whole formatted header. */
	atomic_store_explicit(&hdr->ready, SB_RING_READY, memory_order_release);
	return 0;
}

int sb_ring_attach(struct sb_ring *ring, void *data, uint64_t data_size,
                   void *ctl, uint64_t ctl_size)
{
	struct sb_ring_header *hdr = data;
	struct sb_ring_ctl *c = ctl;
	struct sb_ring_config cfg;
	uint64_t need_data, need_ctl;

	if (ring == NULL || data == NULL || ctl == NULL) {
		return -EINVAL;
	}
	if (data_size < SB_RING_HEADER_SIZE ||
	    ctl_size < SB_RING_CTL_SLOTS_OFFSET) {
		return -EBADMSG;
	}
	/* acquire: pairs with the release store of `ready` in
	 * sb_ring_format(). */
	if (atomic_load_explicit(&hdr->ready, memory_order_acquire) !=
	    SB_RING_READY) {
		return -EAGAIN;
	}
	if (hdr->magic != SB_RING_MAGIC || c->magic != SB_RING_CTL_MAGIC) {
		return -EBADMSG;
	}
	if ((hdr->version != SB_RING_VERSION &&
	     hdr->version != SB_RING_VERSION_FLAGS) ||
	    c->version != SB_RING_CTL_VERSION) {
		return -EPROTO;
	}
	/* Copy the geometry once; from here on only the copy is trusted. */
	cfg.capacity = hdr->capacity;
	cfg.max_message = hdr->max_message;
	cfg.slot_count = hdr->slot_count;
	cfg.mode = hdr->mode;
	cfg.overflow = hdr->overflow;
	cfg.flags = hdr->flags;
	cfg.slot_home = hdr->slot_home;
	if ((cfg.flags & ~SB_RING_FLAGS_KNOWN) != 0) {
		return -EPROTO; /* a layout of a later version */
	}
	if (sb_ring_layout(&cfg, &need_data, &need_ctl) < 0 ||
	    (hdr->version == SB_RING_VERSION && cfg.flags != 0) ||
	    data_size < need_data || ctl_size < need_ctl ||
	    hdr->ctl_size != need_ctl || c->slot_count != cfg.slot_count) {
		return -EBADMSG;
	}
	sb_fence_init();
	memset(ring, 0, sizeof(*ring));
	ring->shm_hdr = hdr;
	ring->shm_wctl = &hdr->wctl;
	ring->shm_data = (unsigned char *)data + SB_RING_HEADER_SIZE;
	ring->shm_ctl = c;
	ring->slot_home = cfg.slot_home;
	if (cfg.slot_home == SB_RING_SLOTS_INLINE) {
		ring->shm_slots =
		    (struct sb_ring_slot *)((unsigned char *)ctl +
		                            SB_RING_CTL_SLOTS_OFFSET);
	}
	ring->capacity = cfg.capacity;
	ring->mask = cfg.capacity - 1;
	ring->max_message = cfg.max_message;
	ring->slot_count = cfg.slot_count;
	ring->mode = cfg.mode;
	ring->overflow = cfg.overflow;
	ring->flags = cfg.flags;
	ring->record_fixed = SB_RING_RECORD_HEADER + SB_RING_RECORD_ALIGN - 1 +
	                     (has_checksums(ring) ? SB_RING_RECORD_CHECKSUM : 0);
	ring->spin = DEFAULT_SPIN;
	return 0;
}

/*
 * Reads and checks the record at `pos`, which lies before `limit` (the tail
 * the caller loaded). The header is copied once, then only the copy is
 * used, so a concurrent change cannot slip past the checks. Never reads
 * outside the data area: the offset is masked, 16-aligned and the record
 * must end inside the area and at or before `limit`.
 */
static inline int record_at(const struct sb_ring *ring, uint64_t pos,
                            uint64_t limit, struct rec_view *rec)
{
	uint64_t off = pos & ring->mask;
	uint64_t room = ring->capacity - off;
	struct sb_ring_record h;
	uint64_t size;

	if ((pos & (SB_RING_RECORD_ALIGN - 1)) != 0) {
		return -EBADMSG;
	}
	memcpy(&h, ring->shm_data + off, sizeof(h));
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
	rec->payload = ring->shm_data + off + SB_RING_RECORD_HEADER;
	return 0;
}

/* The checksum of the DATA record at `at` with `len` payload bytes: the
 * CRC-32C of its header and payload, which lie together (records never
 * wrap). */
static uint32_t record_checksum(const unsigned char *at, uint32_t len)
{
	return sb_crc32c(0, at, SB_RING_RECORD_HEADER + (size_t)len);
}

/* By the writer, after the header and payload of the DATA record at
 * `payload` - 16 are written: stores its checksum word. */
static void seal_record(unsigned char *payload, uint32_t len)
{
	uint32_t crc = record_checksum(payload - SB_RING_RECORD_HEADER, len);

	memcpy(payload + len, &crc, sizeof(crc));
}

/* 1 when the checksum word of the DATA record `rec` matches its bytes as
 * they are in the ring now. Out of line: the callers' paths without
 * checksums stay short. */
__attribute__((noinline)) static int
checksum_matches(const struct rec_view *rec)
{
	uint32_t stored;

	memcpy(&stored, rec->payload + rec->len, sizeof(stored));
	return stored == record_checksum(rec->payload - SB_RING_RECORD_HEADER,
	                                 rec->len);
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
	       checksum_matches(rec);
}

/*
 * Checksummed rings only: the first position from `from` (rounded up to
 * 16) and before `limit` where a record passes every check (a DATA record
 * whose checksum matches, or a PAD that fits the area's end), or `limit`
 * when there is none. Used to go on after a bad record, whose length
 * cannot be trusted. The checksums computed cost at most `capacity` bytes
 * a call: past that the next candidate is returned unverified, the read
 * there checks it, and a later call searches on from it, so every call
 * does bounded work and moves forward.
 */
static uint64_t next_intact(const struct sb_ring *ring, uint64_t from,
                            uint64_t limit)
{
	uint64_t budget = ring->capacity;
	struct rec_view rec;
	uint64_t p;

	p = (from + SB_RING_RECORD_ALIGN - 1) &
	    ~(uint64_t)(SB_RING_RECORD_ALIGN - 1);
	for (; p < limit; p += SB_RING_RECORD_ALIGN) {
		if (record_at(ring, p, limit, &rec) < 0) {
			continue;
		}
		if (rec.type == SB_REC_PAD || budget < rec.len) {
			return p;
		}
		budget -= rec.len;
		if (record_intact(ring, &rec)) {
			return p;
		}
	}
	return limit;
}

/* Bytes the tail must advance to place a `size`-byte record: the record,
 * plus the PAD that fills the end when it would not fit there. */
static uint64_t span_needed(const struct sb_ring *ring, uint64_t tail,
                            uint64_t size)
{
	uint64_t room = ring->capacity - (tail & ring->mask);

	return size <= room ? size : room + size;
}

/* ---- locks ---------------------------------------------------------- */

static void release_lock(struct sb_shm_lock *m)
{
	sb_shm_lock_release(m);
}

/*
 * The deadline for taking a lock: the caller's, or a short grace when the
 * caller will not wait at all (others hold the lock only briefly).
 */
static const struct timespec *lock_deadline(struct sb_wait *w,
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
static int take_lock(struct sb_shm_lock *m, struct sb_wait *w, int hold_ms,
                     int *broken)
{
	struct timespec grace;
	int r;

	*broken = 0;
	if (sb_shm_lock_try(m)) {
		return 0; /* the uncontended case reads no clock */
	}
	r = sb_shm_lock_take_bounded(m, lock_deadline(w, &grace), hold_ms);
	*broken = r == SB_SHM_LOCK_OWNER_DIED || r == SB_SHM_LOCK_OVERSTAYED;
	return r < 0 ? r : 0;
}

static uint64_t load_relaxed(_Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static void store_relaxed(_Atomic uint64_t *v, uint64_t x)
{
	atomic_store_explicit(v, x, memory_order_relaxed);
}

/* Statistics are written only by the lock holder: a plain increment. */
static void stat_add(_Atomic uint64_t *v, uint64_t n)
{
	store_relaxed(v, load_relaxed(v) + n);
}

/*
 * A reclaim (the scan of the cursors and the move of writer_oldest) runs
 * between these two, which make reclaim_seq odd and then even again: a
 * subscriber that joins without the lock waits for an odd value to pass
 * (join_reclaims()). seq_cst: our scan comes after the odd value in the
 * single total order, the Dekker pair with the joiner's slot CAS.
 */
static void reclaim_begin(struct sb_ring *ring)
{
	struct sb_ring_wctl *wc = ring->shm_wctl;

	atomic_store_explicit(&wc->reclaimer, sb_shm_owner_self(),
	                      memory_order_relaxed);
	atomic_fetch_add_explicit(&wc->reclaim_seq, 1, memory_order_seq_cst);
}

static void reclaim_end(struct sb_ring *ring)
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
static void repair_writer_state(struct sb_ring *ring)
{
	struct sb_ring_header *hdr = ring->shm_hdr;
	struct writer_state ws;

	recovered_writer_state(ring, &ws);
	/* A writer that died inside a reclaim left reclaim_seq odd. */
	if (load_relaxed(&ring->shm_wctl->reclaim_seq) & 1u) {
		reclaim_end(ring);
	}
	store_relaxed(&hdr->writer_oldest, ws.oldest);
	store_relaxed(&hdr->writer_next_seq, ws.next_seq);
	stat_add(&hdr->writer_epoch, 1);
	stat_add(&hdr->stat_recoveries, 1);
	/* relaxed: writer_repair is only touched under writer_lock. */
	atomic_store_explicit(&ring->shm_wctl->writer_repair, 0,
	                      memory_order_relaxed);
}

/* ---- verifying a persisted ring --------------------------------------- */

/*
 * For the count of messages cut when no DATA record before the first bad
 * one (its header at `pos`) was kept: the seq in that header if it is no
 * more than `next_seq` and the dropped bytes could hold that many records,
 * else `next_seq` (nothing known).
 */
static uint64_t first_dropped_seq(const struct sb_ring *ring, uint64_t pos,
                                  uint64_t next_seq, uint64_t dropped_bytes)
{
	struct sb_ring_record h;

	memcpy(&h, ring->shm_data + (pos & ring->mask), sizeof(h));
	if (h.type == SB_REC_DATA && h.seq <= next_seq &&
	    next_seq - h.seq <= dropped_bytes / SB_RING_RECORD_ALIGN) {
		return h.seq;
	}
	return next_seq;
}

int sb_ring_verify_truncate(struct sb_ring *ring,
                            struct sb_ring_verify_report *report)
{
	struct sb_ring_header *hdr;
	uint64_t oldest, tail, next_seq, p, first, seq_after = 0;
	struct rec_view rec;
	int kept_data = 0;

	if (ring == NULL || report == NULL) {
		return -EINVAL;
	}
	memset(report, 0, sizeof(*report));
	hdr = ring->shm_hdr;
	/* relaxed: nobody else maps the ring yet (the contract). */
	oldest = load_relaxed(&hdr->writer_oldest);
	tail = load_relaxed(&hdr->writer_tail);
	next_seq = load_relaxed(&hdr->writer_next_seq);
	if (tail < oldest || tail - oldest > ring->capacity ||
	    ((oldest | tail) & (SB_RING_RECORD_ALIGN - 1)) != 0) {
		return -EBADMSG;
	}
	for (p = oldest; p < tail; p = rec.end) {
		if (record_at(ring, p, tail, &rec) < 0 ||
		    !record_intact(ring, &rec) ||
		    (rec.type == SB_REC_DATA && kept_data &&
		     rec.seq != seq_after)) {
			break;
		}
		if (rec.type == SB_REC_DATA) {
			seq_after = rec.seq + 1;
			kept_data = 1;
			report->kept++;
		}
	}
	report->dropped_bytes = tail - p;
	report->bad_pos = p;
	first = kept_data ? seq_after
	        : p == tail ? next_seq
	                    : first_dropped_seq(ring, p, next_seq, tail - p);
	/* The messages cut, from the seqs, when the dropped bytes can hold
	 * that many records (each takes 16 bytes at least). */
	if (next_seq >= first &&
	    next_seq - first <= report->dropped_bytes / SB_RING_RECORD_ALIGN) {
		report->dropped = next_seq - first;
	}
	/* The seqs in the ring stay consecutive, as readers and the next
	 * verification expect: the next message takes the seq after the
	 * last kept one (also when a writer died between its tail and seq
	 * stores and left writer_next_seq one short). */
	if (kept_data) {
		next_seq = seq_after;
	}
	if (p != tail ||
	    next_seq != load_relaxed(&hdr->writer_next_seq)) {
		store_relaxed(&hdr->writer_tail, p);
		store_relaxed(&hdr->writer_next_seq, next_seq);
		stat_add(&hdr->writer_epoch, 1);
	}
	return 0;
}

/* ---- the solo writer ------------------------------------------------- */

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
 * heavy fence (membarrier, fence.c) orders it, so solo is only given to a
 * thread of a process registered for that. A locked instruction on every
 * publish would wait for the previous publish's tail store, which waits
 * for the line the reader has just read; that alone held a stream of
 * 64-byte messages to ~10 M/s.
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

/* `s` (a value of wc->solo) when it names an entry this thread owns,
 * else 0 (also for a revoking flag or an entry out of range). */
static uint32_t solo_mine(const struct sb_ring_wctl *wc, uint32_t s,
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

static void solo_leave(struct sb_ring *ring)
{
	/* release: a revoker that sees 0 sees everything we published. */
	atomic_store_explicit(&ring->shm_wctl->solo_busy[ring->solo_entry - 1],
	                      0, memory_order_release);
}

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
	for (uint32_t n = 0; atomic_load_explicit(&wc->solo_busy[i],
	                                          memory_order_acquire) != 0;
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
			deadline = lock_deadline(w, &grace);
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
	    atomic_load_explicit(&wc->solo_busy[e - 1],
	                         memory_order_relaxed) == me.tid) {
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
static void solo_give_up(struct sb_ring *ring)
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
static void solo_count(struct sb_ring *ring)
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
static int writer_lock(struct sb_ring *ring, struct sb_wait *w)
{
	struct sb_ring_wctl *wc = ring->shm_wctl;
	int died;
	int r = take_lock(&wc->writer_lock, w, -1, &died);

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
		release_lock(&wc->writer_lock);
		return r;
	}
	if (atomic_load_explicit(&wc->writer_repair, memory_order_relaxed) !=
	    0) {
		repair_writer_state(ring);
	}
	return 0;
}

static void writer_unlock(struct sb_ring *ring)
{
	release_lock(&ring->shm_wctl->writer_lock);
}

/* ---- writing --------------------------------------------------------- */

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
static int map_refresh(const struct sb_ring *ring,
                       struct sb_ring_slot_map *map)
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
static void slot_map_refresh(const struct sb_ring *ring)
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
 * as one that cannot be: nothing is reclaimed, and make_room() refreshes
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
static uint64_t claim_bound(const struct sb_ring *ring)
{
	return load_relaxed(&ring->shm_hdr->writer_next_seq) +
	       ring->capacity / SB_RING_RECORD_ALIGN;
}

static inline uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static uint64_t max_claim(uint64_t e, uint64_t claim, uint64_t bound)
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
struct claim_scan {
	uint64_t max;
	uint64_t bound;
	int64_t skip; /* the index of the caller's own slot, or -1 */
};

static void scan_claim(const struct sb_ring_slot *slot, uint32_t index,
                       struct claim_scan *sc)
{
	if ((int64_t)index == sc->skip) {
		return;
	}
	/* seq_cst: pairs with the claim's store in queue_claim() (Dekker:
	 * of two consumers claiming at once, one sees the other). */
	sc->max = max_claim(sc->max,
	                    atomic_load_explicit(&slot->queue_claim,
	                                         memory_order_seq_cst),
	                    sc->bound);
}

static void scan_claims(const struct sb_ring *ring, int refresh,
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
		if (map->slots[i] != NULL && map->slots[i] != SB_RING_SLOT_HOLD) {
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
 * each believed up to claim_bound().
 */
static uint64_t taken_seq(const struct sb_ring *ring, int refresh)
{
	struct claim_scan sc = {0, claim_bound(ring), -1};

	sc.max = max_claim(0, load_relaxed(&ring->shm_ctl->queue_expected_seq),
	                   sc.bound);
	sc.max = max_claim(sc.max,
	                   atomic_load_explicit(&ring->shm_hdr->queue_taken,
	                                        memory_order_acquire),
	                   sc.bound);
	scan_claims(ring, refresh, &sc);
	return sc.max;
}

void sb_ring_keep_claim(struct sb_ring *ring,
                        const struct sb_ring_slot *slot)
{
	uint64_t cur, seq;

	if (ring == NULL || slot == NULL || ring->mode != SB_RING_QUEUE) {
		return;
	}
	cur = atomic_load_explicit(&ring->shm_hdr->queue_taken,
	                           memory_order_relaxed);
	/* seq_cst: as the consumers' loads of claims (scan_claim()). */
	seq = atomic_load_explicit(&slot->queue_claim, memory_order_seq_cst);
	if (seq > claim_bound(ring)) {
		return;
	}
	while (seq > cur &&
	       !atomic_compare_exchange_weak_explicit(
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
	 * queue_cursor in queue_consume() (Dekker with space_waiters). */
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
static int try_room(struct sb_ring *ring, uint64_t tail, uint64_t size,
                    int *ok)
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
	reclaim_begin(ring);
	limit = reclaim_limit(ring, committed, oldest, 0);
	r = reclaim(ring, committed, tail, &oldest, limit, want);
	reclaim_end(ring);
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
			/* seq_cst: Dekker with wake_writers_if_waiting(): we
			 * publish "a writer waits", then look at the cursors
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
		        &wc->space_waiter_pid[i], &pid, 0,
		        memory_order_release, memory_order_relaxed)) {
			freed++;
		}
	}
	return freed;
}

uint32_t sb_ring_blocked_writers(const struct sb_ring *ring)
{
	/* relaxed: a snapshot for people, not a synchronisation. */
	return ring != NULL ? (uint32_t)__builtin_popcountll(
	                          atomic_load_explicit(
	                              &ring->shm_wctl->space_waiters,
	                              memory_order_relaxed))
	                    : 0;
}

/*
 * The deadline of one sleep: the caller's, or SPACE_WAIT_SLICE_MS (or
 * `slice_ms`) from now if that comes first. Sleeping in slices bounds what
 * a lost wake-up can cost: a reaper cannot tell a writer in another pid
 * namespace from a dead one, and a writer without a table entry is woken
 * by nobody.
 */
static const struct timespec *slice_deadline(const struct timespec *dl,
                                             int slice_ms,
                                             struct timespec *buf)
{
	const struct timespec *slice = sb_deadline_init(slice_ms, buf);

	if (dl != NULL && (dl->tv_sec < slice->tv_sec ||
	                   (dl->tv_sec == slice->tv_sec &&
	                    dl->tv_nsec < slice->tv_nsec))) {
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
	uint64_t tail = atomic_load_explicit(&hdr->writer_tail,
	                                     memory_order_acquire);
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
	r = try_room(ring, load_relaxed(&ring->shm_hdr->writer_tail), size, ok);
	if (r < 0 || *ok) {
		waiter_leave(wc, me);
		if (r < 0) {
			writer_unlock(ring);
		}
		return r;
	}
	writer_unlock(ring);
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
	return writer_lock(ring, w);
}

/* With writer_lock held: makes room for a `size`-byte record. Returns 0
 * with the lock held, or an error with it released. */
static int make_room(struct sb_ring *ring, uint64_t size, struct sb_wait *w)
{
	int ok, r, refreshed = 0;

	for (;;) {
		r = try_room(ring, load_relaxed(&ring->shm_hdr->writer_tail),
		             size, &ok);
		if (r < 0) {
			writer_unlock(ring);
			return r;
		}
		if (ok) {
			return 0;
		}
		if (!refreshed && slot_map_stale(ring)) {
			/* The set of slots changed: learn it without holding
			 * the lock (a round trip to the broker), once. */
			refreshed = 1;
			writer_unlock(ring);
			slot_map_refresh(ring);
			r = writer_lock(ring, w);
			if (r < 0) {
				return r;
			}
			continue;
		}
		if (ring->overflow == SB_RING_REJECT || w->timeout_ms == 0) {
			stat_add(&ring->shm_hdr->stat_rejected, 1);
			writer_unlock(ring);
			return -EAGAIN;
		}
		r = wait_for_space(ring, size, w, &ok);
		if (r < 0 || ok) {
			return r;
		}
	}
}

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
		memcpy(ring->shm_data + (*tail & ring->mask), &pad, sizeof(pad));
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
static inline void write_payload(const struct sb_ring *ring,
                                 unsigned char *at, const void *buf,
                                 uint32_t len)
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
static void bump_and_wake(_Atomic uint32_t *word)
{
	/* release: a woken sleeper's acquire load of the word sees what we
	 * published before it. */
	atomic_fetch_add_explicit(word, 1, memory_order_release);
	sb_futex_wake(word, INT_MAX);
}

/*
 * The hot side of an asymmetric Dekker pair (see fence.c): a store whose
 * following load must not pass it. release when this process is
 * registered, so that the sleeper's heavy fence does the ordering; seq_cst
 * otherwise.
 */
static void store_hot(_Atomic uint64_t *word, uint64_t value)
{
	if (sb_fence_cheap_ok()) {
		atomic_store_explicit(word, value, memory_order_release);
	} else {
		atomic_store_explicit(word, value, memory_order_seq_cst);
	}
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
 * every message, that interrupt costs more: on a 2-CPU virtual machine it
 * doubled the wake-up (19 against 8 us p50 one way).
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
	uint32_t fence = atomic_load_explicit(&ctl->commit_fence,
	                                      memory_order_seq_cst);
	int fenced = (fence & SB_RING_FENCE_STATE) != SB_RING_FENCE_OFF;
	uint32_t sleepers;

	if (fenced) {
		atomic_thread_fence(memory_order_seq_cst);
	}
	sleepers = atomic_load_explicit(&ctl->data_waiters,
	                                memory_order_seq_cst);
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
	 * other half of the Dekker pair with wait_for_data(). */
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
		writer_unlock(ring);
	}
}

/* Commits, lets go of the ring, and wakes sleeping readers. Always
 * inlined: out of line (GCC's choice once commit_fence was added) it cost
 * the one-message path 34 instructions (bench/instructions.sh). */
__attribute__((always_inline)) static inline void
publish_pass(struct sb_ring *ring, struct sb_writer_view *v, uint64_t tail,
             uint64_t count, uint64_t bytes, int solo)
{
	uint32_t sleepers = commit_records(ring, v, tail, count, bytes);

	let_go(ring, solo);
	if (sleepers != 0) {
		bump_and_wake(&ring->shm_ctl->data_seq);
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
	r = try_room(ring, t, size, ok);
	v->oldest = load_relaxed(&ring->shm_hdr->writer_oldest);
	return r;
}

/* The positions in `v` can be trusted only inside these bounds. */
static int view_sane(const struct sb_ring *ring, const struct sb_writer_view *v)
{
	return v->tail >= v->oldest && v->tail - v->oldest <= ring->capacity;
}

/*
 * A claim by the solo writer: busy from here until commit or abort, like a
 * lock held. Returns 1 with *claim filled, 0 when the caller must take the
 * lock (not solo, or no room without waiting), or an error.
 */
static int solo_claim(struct sb_ring *ring, uint32_t len,
                      struct sb_ring_claim *claim)
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
	r = view_sane(ring, v)
	        ? fit_record(ring, v, t, record_size(ring, len), &ok)
	        : -EBADMSG;
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
	claim->active = 0;
	claim->solo = 0;
	if (len > ring->max_message) {
		return -EMSGSIZE;
	}
	r = solo_claim(ring, len, claim);
	if (r < 0) {
		return r;
	}
	if (r == 0) {
		r = writer_lock(ring, &w);
		if (r < 0) {
			return r;
		}
		solo_give_up(ring);
		r = make_room(ring, record_size(ring, len), &w);
		if (r < 0) {
			return r;
		}
		tail = load_relaxed(&ring->shm_hdr->writer_tail);
		r = place_record(ring, &tail, len, &claim->pos);
		if (r < 0) {
			writer_unlock(ring);
			return r;
		}
	}
	claim->len = len;
	claim->data = ring->shm_data + (claim->pos & ring->mask) +
	              SB_RING_RECORD_HEADER;
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
		solo_count(ring);
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

/*
 * Copies messages msgs[first..n) into the ring after the committed tail,
 * as long as they fit without waiting, by the one writer of the moment.
 * Returns how many it wrote (their end in *tail, their payload bytes in
 * *bytes), or -EBADMSG with nothing to commit.
 */
static ssize_t copy_in(struct sb_ring *ring, const struct iovec *msgs,
                       size_t n, size_t first, struct sb_writer_view *v,
                       uint64_t *tail, uint64_t *bytes)
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

	r = make_room(ring, record_size(ring, msgs[*done].iov_len), w);
	if (r < 0) {
		return r;
	}
	v = view_load(ring);
	count = copy_in(ring, msgs, n, *done, v, &tail, &bytes);
	if (count <= 0) {
		writer_unlock(ring);
		return count < 0 ? (int)count : -EBADMSG;
	}
	*done += (size_t)count;
	solo_count(ring);
	publish_pass(ring, v, tail, (uint64_t)count, bytes, 0);
	return 0;
}

/*
 * One pass of a batch by the solo writer, without writer_lock. Returns 1
 * when it published some, 0 when the caller must take the lock (not solo,
 * or no room without waiting), or an error with nothing published.
 */
static int solo_publish(struct sb_ring *ring, const struct iovec *msgs,
                        size_t n, size_t *done)
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
		r = solo_publish(ring, msgs, n, &done);
		if (r != 0) {
			r = r > 0 ? 0 : r;
			continue;
		}
		r = writer_lock(ring, &w);
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
static int publish_one_solo(struct sb_ring *ring, const void *buf,
                            uint32_t len)
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
	if (!view_sane(ring, v) || (t & (SB_RING_RECORD_ALIGN - 1)) != 0 ||
	    ring->capacity - (t - v->oldest) < size ||
	    ring->capacity - (t & ring->mask) < size) {
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

/* ---- reading --------------------------------------------------------- */

/*
 * Overwrite policy only: 1 when a writer reclaimed the record at `pos`
 * (and so may have overwritten what we just read from it).
 */
static int overrun(const struct sb_ring *ring, uint64_t pos)
{
	/* acquire fence: pairs with the release fence in reclaim(); if any
	 * byte we read was overwritten, the oldest we load next is past
	 * `pos`. */
	atomic_thread_fence(memory_order_acquire);
	return load_relaxed(&ring->shm_hdr->writer_oldest) > pos;
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
static int next_record(const struct sb_ring *ring, uint64_t *pos,
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
			oldest = atomic_load_explicit(
			    &ring->shm_hdr->writer_oldest, memory_order_acquire);
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

/*
 * Counts a reader thread of `slot` as about to sleep (give_back_sleeper()
 * undoes it). This is the sleeper's half of the Dekker pair with
 * commit_records(): we count ourselves, then load the tail; the writer
 * stores the tail, then loads the count. Unless writers fence their
 * commits (commit_fence ARMED), the heavy fence orders the writer's side;
 * a sleeper that finds commit_fence OFF arms it ("Fenced commits").
 */
static void take_sleeper(struct sb_ring *ring, struct sb_ring_slot *slot)
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
static void give_back_sleeper(struct sb_ring *ring, struct sb_ring_slot *slot)
{
	uint32_t n = atomic_load_explicit(&slot->sub_sleeping,
	                                  memory_order_relaxed);

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

/*
 * Sleeps until the tail moves away from `pos`. Spins first: a reader that
 * keeps up never reaches the futex. Returns 0 (look again), -EAGAIN at once
 * when timeout_ms is 0 ("do not wait" means no spinning either), -ETIMEDOUT.
 */
static int wait_for_data(struct sb_ring_reader *rd, uint64_t pos,
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
	take_sleeper(ring, slot);
	seen = atomic_load_explicit(&ctl->data_seq, memory_order_acquire);
	if (atomic_load_explicit(tail, memory_order_seq_cst) == pos) {
		r = sb_futex_wait(&ctl->data_seq, seen, deadline);
	}
	give_back_sleeper(ring, slot);
	return r == -EINTR ? 0 : r;
}

/* Counts messages skipped between the expected seq and `seq`. A seq that
 * goes backwards can only come from corrupted memory. */
static int account_seq(uint64_t *expected, uint64_t seq, uint64_t *lost)
{
	if (seq < *expected) {
		return -EBADMSG;
	}
	*lost += seq - *expected;
	*expected = seq + 1;
	return 0;
}

/*
 * Tells writers waiting for space that a reader moved from `from` to `to`.
 * A writer that is only spinning is told once per sixteenth of the ring
 * (or when the reader has caught up), so that it wakes to a batch of room
 * instead of one message at a time; a writer asleep is told at once (it
 * also checks the cursors itself before it sleeps: see wait_for_space()).
 */
static void wake_writers_if_waiting(struct sb_ring *ring, uint64_t from,
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
	sleepers = atomic_load_explicit(&wc->space_sleepers,
	                                memory_order_seq_cst);
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
	wake_writers_if_waiting(rd->ring, from, end, end == rd->known_tail);
}

/* A broadcast reader consumed the record ending at `end`. */
static inline void reader_consumed(struct sb_ring_reader *rd, uint64_t end)
{
	rd->received++;
	reader_moved(rd, end);
}

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
	int r = take_lock(&ring->shm_ctl->queue_lock, w, SB_RING_QUEUE_HOLD_MS,
	                  &died);

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
static int queue_find(struct sb_ring_reader *rd, uint64_t taken,
                      uint64_t *pos, struct rec_view *rec)
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
			uint64_t oldest = atomic_load_explicit(
			    &ring->shm_hdr->writer_oldest, memory_order_acquire);

			checked = 1;
			if (c < oldest || r == -EBADMSG) {
				*pos = oldest;
				fell_back = 1;
				continue;
			}
		}
		if (r == 0 && rec->seq < taken) {
			*pos = rec->end; /* taken already: someone set us back */
			continue;
		}
		return r;
	}
}

/* Queue: finds the next record not known to be taken. Returns 0 (or
 * REC_BAD) with the queue lock held, or an error with it released. */
static int queue_next(struct sb_ring_reader *rd, struct sb_wait *w,
                      struct rec_view *rec)
{
	struct sb_ring *ring = rd->ring;
	uint64_t pos;
	int r;

	for (;;) {
		/* The claims of consumers that joined since, outside the
		 * lock: the refresh may ask the broker. */
		slot_map_refresh(ring);
		r = queue_lock(ring, w);
		if (r < 0) {
			return r;
		}
		/* relaxed: queue_taken only grows; a stale value costs a
		 * claim that finds the record taken (queue_claim()). */
		r = queue_find(rd, max_u64(rd->queue_hint,
		                           load_relaxed(&ring->shm_hdr->queue_taken)),
		               &pos, rec);
		if (r == 0 || r == REC_BAD) {
			return r;
		}
		release_lock(&ring->shm_ctl->queue_lock);
		if (r != -EAGAIN) {
			return r;
		}
		r = wait_for_data(rd, pos, w);
		if (r < 0) {
			return r;
		}
	}
}

/*
 * Queue, with the queue lock held, after this consumer claimed `rec` and a
 * seq_cst fence (queue_consume()): whether another claim, or the broker's
 * queue_taken, goes beyond it (believably: claim_bound()). Then it was
 * taken: before, by a consumer whose take a queue position set back hides,
 * or at the same time, by one that got in because the queue lock was
 * written free (of two racing, each stores its claim before it looks, so
 * at least one sees the other). Sets rd->queue_hint past what is taken.
 */
#define REC_TAKEN 2
static int queue_taken_elsewhere(struct sb_ring_reader *rd,
                                 const struct rec_view *rec)
{
	struct sb_ring *ring = rd->ring;
	/* First without the bound, which costs a load of a line writers
	 * dirty at every commit: only a claim beyond ours needs it. */
	struct claim_scan sc = {rec->seq, UINT64_MAX, rd->slot};

	sc.max = max_u64(sc.max, atomic_load_explicit(
	                             &ring->shm_hdr->queue_taken,
	                             memory_order_acquire));
	scan_claims(ring, 0, &sc);
	if (sc.max > rec->seq) {
		sc.max = rec->seq;
		sc.bound = claim_bound(ring);
		sc.max = max_claim(sc.max,
		                   atomic_load_explicit(&ring->shm_hdr->queue_taken,
		                                        memory_order_acquire),
		                   sc.bound);
		scan_claims(ring, 0, &sc);
	}
	rd->queue_hint = sc.max > rec->seq ? sc.max : rec->seq + 1;
	return sc.max > rec->seq ? REC_TAKEN : 0;
}

/*
 * Queue: consumes `rec` (copied out, or the release of its peek) and
 * releases the queue lock. Returns 0, or REC_TAKEN when another consumer
 * turned out to have it (queue_taken_elsewhere()): then it is not this
 * consumer's to deliver.
 */
static int queue_consume(struct sb_ring_reader *rd, const struct rec_view *rec)
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
		release_lock(&ctl->queue_lock);
		return REC_TAKEN;
	}
	release_lock(&ctl->queue_lock);
	rd->lost += lost;
	rd->received++;
	store_relaxed(&slot->sub_received, rd->received);
	store_relaxed(&slot->sub_lost, rd->lost);
	wake_writers_if_waiting(ring, rec->pos, rec->end,
	                        rec->end == rd->known_tail);
	return 0;
}

/*
 * Queue, with the queue lock held: moves the shared cursor from the bad
 * record at `from` to `next`, counts one message lost (for the queue and
 * for this consumer), expects one seq more, and releases the lock.
 */
static void queue_skip_bad(struct sb_ring_reader *rd, uint64_t from,
                           uint64_t next)
{
	struct sb_ring *ring = rd->ring;
	struct sb_ring_ctl *ctl = ring->shm_ctl;

	/* Expected seq first, cursor second, as in queue_consume(). */
	store_relaxed(&ctl->queue_expected_seq,
	              load_relaxed(&ctl->queue_expected_seq) + 1);
	store_relaxed(&ctl->queue_lost, load_relaxed(&ctl->queue_lost) + 1);
	/* seq_cst: as in queue_consume(). */
	atomic_store_explicit(&ctl->queue_cursor, next, memory_order_seq_cst);
	rd->queue_cursor_stored = next;
	release_lock(&ctl->queue_lock);
	rd->lost++;
	store_relaxed(&rd->slot_mem->sub_lost, rd->lost);
	wake_writers_if_waiting(ring, from, next, next == rd->known_tail);
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
	uint64_t next = next_intact(rd->ring, pos + SB_RING_RECORD_ALIGN,
	                            rd->known_tail);

	if (rd->ring->mode == SB_RING_QUEUE) {
		queue_skip_bad(rd, pos, next);
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
		return queue_next(rd, w, rec);
	}
	for (;;) {
		r = next_record(rd->ring, &rd->cursor, &rd->known_tail, rec);
		if (r == -EBADMSG && reader_evicted(rd)) {
			return -EIDRM; /* the bytes were reused, not corrupted */
		}
		if (r != -EAGAIN) {
			return r;
		}
		r = wait_for_data(rd, rd->cursor, w);
		if (r < 0) {
			return r;
		}
	}
}

/* Gives up `rec` without consuming it. */
static void reader_skip(struct sb_ring_reader *rd)
{
	if (rd->ring->mode == SB_RING_QUEUE) {
		release_lock(&rd->ring->shm_ctl->queue_lock);
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
				reader_skip(rd);
				continue;
			}
			r = REC_BAD;
		}
		return r == REC_BAD ? skip_bad_record(rd, rec->pos) : r;
	}
}

/* Consumes `rec` (and for a queue releases the lock). */
static int reader_consume(struct sb_ring_reader *rd,
                          const struct rec_view *rec)
{
	int r;

	if (rd->ring->mode == SB_RING_QUEUE) {
		return queue_consume(rd, rec);
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

static int reader_usable(const struct sb_ring_reader *rd, int timeout_ms)
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
 * The common case of sb_ring_receive(): a broadcast reader of a ring
 * without the overwrite policy (whose copies can be torn) takes the DATA
 * record at its cursor, committed, intact (checksum) and no larger than
 * `cap`. Returns 1 with its length in *got (or -EIDRM there: evicted
 * during the copy), 0 when nothing is committed at the cursor, or -1 when
 * the general path must look (a PAD, a bad record, a seq below the
 * expected one, an error to report). Nothing but
 * known_tail has changed unless it returns 1, and next_record() would have
 * refreshed that the same way.
 */
static int receive_one(struct sb_ring_reader *rd, void *buf, size_t cap,
                       ssize_t *got)
{
	const struct sb_ring *ring = rd->ring;
	uint64_t p = rd->cursor;
	struct rec_view rec;

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
	    record_at(ring, p, rd->known_tail, &rec) < 0 ||
	    rec.type != SB_REC_DATA || rec.len > cap ||
	    !record_intact(ring, &rec)) {
		return -1;
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
			reader_skip(rd);
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
			reader_skip(rd);
			continue;
		}
		r = reader_consume(rd, &rec);
		if (r == REC_TAKEN) {
			continue; /* another consumer has it */
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
	r = reader_next(rd, &w, &rec);
	if (r < 0) {
		return r;
	}
	rd->peeking = 1;
	rd->peek_pos = rec.pos;
	rd->peek_end = rec.end;
	rd->peek_seq = rec.seq;
	*data = rec.payload;
	*len = rec.len;
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
		reader_skip(rd);
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

uint64_t sb_ring_reader_lost(const struct sb_ring_reader *rd)
{
	return rd != NULL ? rd->lost : 0;
}

/* ---- reader slots ---------------------------------------------------- */

struct sb_ring_slot sb_ring_slot_hold;

static int find_free_slot(const struct sb_ring *ring, uint32_t *index)
{
	for (uint32_t i = 0; i < ring->slot_count; i++) {
		uint32_t st = atomic_load_explicit(
		    &ring->shm_slots[i].slot_state, memory_order_relaxed);

		if ((st & 1u) == 0) {
			*index = i;
			return 0;
		}
	}
	return -EUSERS;
}

/*
 * Waits until a reclaim that made reclaim_seq odd is over: it is even
 * again, or the writer that made it odd is dead (it will move nothing
 * more, and the next writer repairs the count before it reclaims). A
 * reclaim lasts a scan of the cursors, so the reader spins a little before
 * it asks the kernel whether that writer lives. Returns 0 or -ETIMEDOUT.
 */
static int wait_reclaim_over(struct sb_ring *ring, uint64_t seq,
                             struct sb_wait *w)
{
	for (unsigned spins = 0; (seq & 1u) != 0; spins++) {
		if (spins > 64) {
			if (!sb_shm_owner_alive(atomic_load_explicit(
			        &ring->shm_wctl->reclaimer,
			        memory_order_relaxed))) {
				return 0;
			}
			if (sb_deadline_passed(sb_wait_deadline(w))) {
				return -ETIMEDOUT;
			}
		}
		sb_cpu_relax();
		seq = atomic_load_explicit(&ring->shm_wctl->reclaim_seq,
		                           memory_order_acquire);
	}
	return 0;
}

/*
 * Joining without the lock. A subscriber cannot take writer_lock (it lives
 * in the data segment, which subscribers map read-only), so a reader that
 * has made its slot live with its cursor at `*pos` must still make sure no
 * writer reclaims past that cursor without having seen it. The Dekker pair:
 * the reader CASes its slot live (seq_cst), then loads reclaim_seq; a
 * writer makes reclaim_seq odd (seq_cst), then loads the slot states. So
 * either the writer's scan sees the slot, or the reader sees the odd value
 * (or the even one after it) and waits for that reclaim to end, then reads
 * writer_oldest (acquire, after the even value's release). A cursor below
 * oldest is moved up to it and stored (seq_cst) and the check runs again,
 * since a writer that saw the old cursor below its oldest ignored it.
 */
static int join_reclaims(struct sb_ring *ring, struct sb_ring_slot *slot,
                         uint64_t *pos, struct sb_wait *w)
{
	uint64_t oldest;
	int r;

	for (;;) {
		r = wait_reclaim_over(
		    ring,
		    atomic_load_explicit(&ring->shm_wctl->reclaim_seq,
		                         memory_order_seq_cst),
		    w);
		if (r < 0) {
			return r;
		}
		oldest = atomic_load_explicit(&ring->shm_hdr->writer_oldest,
		                              memory_order_acquire);
		if (*pos >= oldest) {
			return 0;
		}
		*pos = oldest;
		atomic_store_explicit(&slot->sub_cursor, *pos,
		                      memory_order_seq_cst);
	}
}

/*
 * The seq a new broadcast reader at `pos` expects: that of the first record
 * at or after it (*known = 1). With no record there yet, the first record
 * it reads will say (*known = 0): reading writer_next_seq instead could
 * take a value a writer has not stored yet, and writers are not stopped
 * while a subscriber joins. Under overwrite a reader can be lapped before
 * its first read, so it keeps a lower bound then: the next_seq it saw
 * before looking (what it counts its losses from).
 */
static uint64_t start_seq(struct sb_ring *ring, uint64_t pos, int *known)
{
	/* acquire: a record committed after this value has a seq >= it. */
	uint64_t low = atomic_load_explicit(&ring->shm_hdr->writer_next_seq,
	                                    memory_order_acquire);
	uint64_t tail = 0;
	struct rec_view rec;

	*known = next_record(ring, &pos, &tail, &rec) == 0 &&
	         !(ring->overflow == SB_RING_OVERWRITE &&
	           overrun(ring, rec.pos));
	if (*known) {
		return rec.seq;
	}
	/* UINT64_MAX: receive_one()'s check fails, and the general path
	 * (reader_consume()) takes the first record's seq. */
	return ring->overflow == SB_RING_OVERWRITE ? low : UINT64_MAX;
}

/* Makes `slot` live for this process with its cursor at `pos`: -EBUSY when
 * another reader took it first. */
static int take_slot(struct sb_ring_slot *slot, uint64_t pos, uint32_t *state)
{
	uint32_t free_state =
	    atomic_load_explicit(&slot->slot_state, memory_order_relaxed);

	if ((free_state & 1u) != 0) {
		return -EBUSY;
	}
	store_relaxed(&slot->sub_cursor, pos);
	store_relaxed(&slot->sub_received, 0);
	store_relaxed(&slot->sub_lost, 0);
	atomic_store_explicit(&slot->sub_sleeping, 0, memory_order_relaxed);
	atomic_store_explicit(&slot->slot_pid, sb_process_id(),
	                      memory_order_relaxed);
	*state = (((free_state >> 1) + 1) << 1) | 1u;
	/* seq_cst: makes the cursor above visible before the slot counts
	 * as live (writers load the state first), and is the reader's half
	 * of the Dekker pair in join_reclaims(). */
	return atomic_compare_exchange_strong_explicit(
	           &slot->slot_state, &free_state, *state,
	           memory_order_seq_cst, memory_order_relaxed)
	           ? 0
	           : -EBUSY;
}

/* Where a new broadcast reader starts. */
static uint64_t start_pos(const struct sb_ring *ring, int start)
{
	if (ring->mode != SB_RING_BROADCAST) {
		return 0;
	}
	/* acquire: as in next_record(). */
	return atomic_load_explicit(start == SB_RING_START_EARLIEST
	                                ? &ring->shm_hdr->writer_oldest
	                                : &ring->shm_hdr->writer_tail,
	                            memory_order_acquire);
}

static int free_slot(struct sb_ring *ring, struct sb_ring_slot *slot,
                     uint32_t state);

/*
 * The rest of opening a reader once `slot` is live with its cursor at
 * `pos`: a broadcast reader makes sure no reclaim overtook it, then learns
 * the seq it expects. On failure the slot is freed again.
 */
static int join(struct sb_ring *ring, struct sb_ring_slot *slot,
                uint32_t index, uint32_t state, uint64_t pos,
                struct sb_wait *w, struct sb_ring_reader *rd)
{
	uint64_t expected = 0;
	int r = 0, seq_known = 1;

	if (ring->mode == SB_RING_BROADCAST) {
		r = join_reclaims(ring, slot, &pos, w);
		if (r < 0) {
			free_slot(ring, slot, state);
			return r;
		}
		expected = start_seq(ring, pos, &seq_known);
	}
	memset(rd, 0, sizeof(*rd));
	rd->ring = ring;
	rd->slot = index;
	rd->slot_mem = slot;
	rd->slot_state = state;
	rd->cursor = pos;
	rd->expected_seq = expected;
	rd->seq_unknown = !seq_known;
	rd->join_pos = pos;
	return 0;
}

static int check_start(const struct sb_ring *ring, int start,
                       const struct sb_ring_reader *rd)
{
	return ring == NULL || rd == NULL ||
	               (start != SB_RING_START_LATEST &&
	                start != SB_RING_START_EARLIEST)
	           ? -EINVAL
	           : 0;
}

int sb_ring_reader_open(struct sb_ring *ring, int start,
                        struct sb_ring_reader *rd)
{
	struct sb_wait w = sb_wait_start(READER_OPEN_TIMEOUT_MS);
	uint32_t index, state;
	uint64_t pos;
	int r;

	if (check_start(ring, start, rd) < 0 ||
	    ring->slot_home != SB_RING_SLOTS_INLINE) {
		return -EINVAL;
	}
	do {
		r = find_free_slot(ring, &index);
		if (r < 0) {
			return r;
		}
		pos = start_pos(ring, start);
		r = take_slot(&ring->shm_slots[index], pos, &state);
	} while (r == -EBUSY && !sb_deadline_passed(sb_wait_deadline(&w)));
	if (r < 0) {
		return r;
	}
	return join(ring, &ring->shm_slots[index], index, state, pos, &w, rd);
}

int sb_ring_reader_open_slot(struct sb_ring *ring, struct sb_ring_slot *slot,
                             uint32_t index, int start,
                             struct sb_ring_reader *rd)
{
	struct sb_wait w = sb_wait_start(READER_OPEN_TIMEOUT_MS);
	uint32_t state;
	uint64_t pos;
	int r;

	if (check_start(ring, start, rd) < 0 || slot == NULL ||
	    ring->slot_home != SB_RING_SLOTS_SEGMENTS ||
	    index >= ring->slot_count) {
		return -EINVAL;
	}
	pos = start_pos(ring, start);
	r = take_slot(slot, pos, &state);
	if (r < 0) {
		return r;
	}
	return join(ring, slot, index, state, pos, &w, rd);
}

/* Frees `slot` if its state is still `state` (a live generation), gives
 * back a sleeper count the reader may have left, and wakes writers that
 * waited for it. Returns 0, or -ENOENT when the slot already changed. */
static int free_slot(struct sb_ring *ring, struct sb_ring_slot *slot,
                     uint32_t state)
{
	uint32_t sleepers;

	/* release: our last cursor store is ordered before the slot is
	 * seen free. */
	if (!atomic_compare_exchange_strong_explicit(
	        &slot->slot_state, &state, state & ~1u, memory_order_release,
	        memory_order_relaxed)) {
		return -ENOENT;
	}
	sleepers = atomic_exchange_explicit(&slot->sub_sleeping, 0,
	                                    memory_order_relaxed);
	if (sleepers != 0) {
		atomic_fetch_sub_explicit(&ring->shm_ctl->data_waiters,
		                          sleepers, memory_order_relaxed);
	}
	bump_and_wake(&ring->shm_ctl->space_seq);
	return 0;
}

int sb_ring_reader_close(struct sb_ring_reader *rd)
{
	int r;

	if (rd == NULL || rd->ring == NULL) {
		return -EINVAL;
	}
	if (rd->peeking) {
		rd->peeking = 0;
		reader_skip(rd);
	}
	r = free_slot(rd->ring, rd->slot_mem, rd->slot_state);
	rd->ring = NULL;
	return r == -ENOENT ? 0 : r;
}

/* Slot `index` as this process maps it, or NULL (no such slot, or not
 * mapped here). */
static struct sb_ring_slot *slot_at(const struct sb_ring *ring,
                                    uint32_t index)
{
	struct sb_ring_slot *slot;

	if (ring == NULL || index >= ring->slot_count) {
		return NULL;
	}
	if (ring->slot_home == SB_RING_SLOTS_INLINE) {
		return &ring->shm_slots[index];
	}
	if (ring->slot_map == NULL || index >= ring->slot_map->count) {
		return NULL;
	}
	slot = ring->slot_map->slots[index];
	return slot == SB_RING_SLOT_HOLD ? NULL : slot;
}

int sb_ring_slot_reap(struct sb_ring *ring, uint32_t index)
{
	struct sb_ring_slot *slot = slot_at(ring, index);
	uint32_t state;

	if (slot == NULL) {
		return -EINVAL;
	}
	state = atomic_load_explicit(&slot->slot_state, memory_order_relaxed);
	if ((state & 1u) == 0) {
		return -ENOENT;
	}
	return free_slot(ring, slot, state);
}

int sb_ring_slot_view(const struct sb_ring *ring, uint32_t index,
                      struct sb_ring_slot_view *out)
{
	struct sb_ring_slot *s = slot_at(ring, index);

	if (s == NULL || out == NULL) {
		return -EINVAL;
	}
	/* acquire: pairs with the release CAS of slot_state in take_slot(),
	 * which wrote the pid first. The rest is relaxed: a snapshot for the
	 * broker, not a synchronisation. */
	out->state = atomic_load_explicit(&s->slot_state, memory_order_acquire);
	out->pid = atomic_load_explicit(&s->slot_pid, memory_order_relaxed);
	out->position =
	    ring->mode == SB_RING_QUEUE
	        ? load_relaxed(&ring->shm_ctl->queue_cursor)
	        : load_relaxed(&s->sub_cursor);
	return 0;
}

int sb_ring_slot_evict(struct sb_ring *ring, uint32_t index, uint32_t state)
{
	struct sb_ring_slot *slot = slot_at(ring, index);
	int r;

	if (slot == NULL || (state & 1u) == 0) {
		return -EINVAL;
	}
	r = free_slot(ring, slot, state);
	if (r == 0) {
		/* A reader asleep waiting for data looks again and finds its
		 * slot gone (wait_for_data(), sb_ring_wait_readable()). */
		bump_and_wake(&ring->shm_ctl->data_seq);
	}
	return r;
}

int sb_ring_reader_evicted(const struct sb_ring_reader *rd)
{
	return rd != NULL && rd->slot_mem != NULL && reader_evicted(rd);
}

int sb_ring_reader_evict(struct sb_ring_reader *rd)
{
	int r;

	if (rd == NULL || rd->ring == NULL || rd->slot_mem == NULL) {
		return -EINVAL;
	}
	r = free_slot(rd->ring, rd->slot_mem, rd->slot_state);
	if (r == 0) {
		/* As in sb_ring_slot_evict(): a sleeper looks again. */
		bump_and_wake(&rd->ring->shm_ctl->data_seq);
	}
	return r;
}

void sb_ring_set_slot_map(struct sb_ring *ring, struct sb_ring_slot_map *map)
{
	if (ring != NULL) {
		ring->slot_map = map;
	}
}

int sb_ring_slot_publish(struct sb_ring *ring, uint32_t index, int live)
{
	_Atomic uint64_t *word;
	uint64_t bit;

	if (ring == NULL || ring->slot_home != SB_RING_SLOTS_SEGMENTS ||
	    index >= ring->slot_count) {
		return -EINVAL;
	}
	word = &ring->shm_hdr->slot_live[index / 64];
	bit = UINT64_C(1) << (index % 64);
	if (live) {
		atomic_fetch_or_explicit(word, bit, memory_order_relaxed);
	} else {
		atomic_fetch_and_explicit(word, ~bit, memory_order_relaxed);
	}
	/* seq_cst: the bump comes before the new reader is told its slot
	 * (a reply on the socket), so it is ordered before the reader's
	 * slot CAS; see segments_limit() and join_reclaims(). */
	atomic_fetch_add_explicit(&ring->shm_hdr->slot_gen, 1,
	                          memory_order_seq_cst);
	if (!live) {
		bump_and_wake(&ring->shm_ctl->space_seq);
	}
	return 0;
}

int sb_ring_slot_recorded(const struct sb_ring *ring, uint32_t index)
{
	if (ring == NULL || index >= ring->slot_count) {
		return 0;
	}
	return (atomic_load_explicit(&ring->shm_hdr->slot_live[index / 64],
	                             memory_order_relaxed) >>
	        (index % 64)) &
	       1u;
}

/* ---- watching a reader from another thread --------------------------- */

uint64_t sb_ring_reader_position(const struct sb_ring_reader *rd)
{
	if (rd == NULL || rd->ring == NULL) {
		return 0;
	}
	if (rd->ring->mode == SB_RING_QUEUE) {
		/* acquire: pairs with the seq_cst store of queue_cursor in
		 * queue_consume(); a stale value only makes a watcher report
		 * a message that another consumer then takes. */
		return atomic_load_explicit(&rd->ring->shm_ctl->queue_cursor,
		                            memory_order_acquire);
	}
	return rd->cursor;
}

int sb_ring_wait_readable(const struct sb_ring_reader *rd_view, uint64_t pos,
                          _Atomic uint32_t *stop, int timeout_ms)
{
	struct sb_ring *ring;
	struct sb_ring_ctl *ctl;
	struct sb_ring_slot *slot;
	_Atomic uint64_t *tail;
	const struct timespec *deadline;
	struct timespec dl;
	uint32_t seen;
	int r;

	if (rd_view == NULL || rd_view->ring == NULL || timeout_ms < -1 ||
	    rd_view->slot >= rd_view->ring->slot_count) {
		return -EINVAL;
	}
	ring = rd_view->ring;
	ctl = ring->shm_ctl;
	slot = rd_view->slot_mem;
	tail = &ring->shm_hdr->writer_tail;
	deadline = sb_deadline_init(timeout_ms, &dl);
	for (;;) {
		/* acquire: pairs with the seq_cst store in the stopper, which
		 * comes before its sb_ring_wake_readers(). */
		if (stop != NULL &&
		    atomic_load_explicit(stop, memory_order_acquire) != 0) {
			return -ECANCELED;
		}
		/* acquire: pairs with the release store of writer_tail in
		 * commit_records(). */
		if (atomic_load_explicit(tail, memory_order_acquire) != pos) {
			return 0;
		}
		if (atomic_load_explicit(&slot->slot_state,
		                         memory_order_relaxed) !=
		    rd_view->slot_state) {
			return -EIDRM; /* evicted (sb_ring_slot_evict() woke us) */
		}
		if (timeout_ms == 0) {
			return -EAGAIN;
		}
		if (sb_deadline_passed(deadline)) {
			return -ETIMEDOUT;
		}
		take_sleeper(ring, slot);
		/* acquire: pairs with the release bump in bump_and_wake(). A
		 * stopper sets *stop before it bumps data_seq, so if we see
		 * its bump here we see its stop below; if we do not, the
		 * futex wait returns at once or is woken by it. */
		seen = atomic_load_explicit(&ctl->data_seq, memory_order_acquire);
		r = 0;
		if ((stop == NULL ||
		     atomic_load_explicit(stop, memory_order_acquire) == 0) &&
		    atomic_load_explicit(tail, memory_order_seq_cst) == pos) {
			r = sb_futex_wait(&ctl->data_seq, seen, deadline);
		}
		give_back_sleeper(ring, slot);
		if (r < 0 && r != -EINTR && r != -ETIMEDOUT) {
			return r;
		}
	}
}

void sb_ring_wake_readers(struct sb_ring *ring)
{
	if (ring != NULL) {
		bump_and_wake(&ring->shm_ctl->data_seq);
	}
}

int sb_ring_set_name(void *data, const char *name)
{
	struct sb_ring_header *hdr = data;
	size_t len;

	if (hdr == NULL || name == NULL ||
	    (len = strlen(name)) >= SB_RING_NAME_SIZE) {
		return -EINVAL;
	}
	memset(hdr->topic_name, 0, SB_RING_NAME_SIZE);
	memcpy(hdr->topic_name, name, len);
	return 0;
}

int sb_ring_name(const void *data, char out[SB_RING_NAME_SIZE])
{
	const struct sb_ring_header *hdr = data;

	if (hdr == NULL || out == NULL) {
		return -EINVAL;
	}
	/* One copy, then only the copy is looked at. */
	memcpy(out, hdr->topic_name, SB_RING_NAME_SIZE);
	if (memchr(out, '\0', SB_RING_NAME_SIZE) == NULL) {
		out[0] = '\0';
		return -EBADMSG;
	}
	return 0;
}
