/*
 * slots.c - subscriber slots: joining (taking a free slot and a start
 * position while writers may reclaim), leaving, reaping and evicting, and
 * the writers' map of slots that live in segments of their own.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "ring/ring_private.h"

#define READER_OPEN_TIMEOUT_MS 5000

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
			if (!sb_shm_owner_alive(
				atomic_load_explicit(&ring->shm_wctl->reclaimer,
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

	*known =
	    next_record(ring, &pos, &tail, &rec) == 0 &&
	    !(ring->overflow == SB_RING_OVERWRITE && overrun(ring, rec.pos));
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
		   &slot->slot_state, &free_state, *state, memory_order_seq_cst,
		   memory_order_relaxed)
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
static int join(struct sb_ring *ring, struct sb_ring_slot *slot, uint32_t index,
		uint32_t state, uint64_t pos, struct sb_wait *w,
		struct sb_ring_reader *rd)
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
	sbr_bump_and_wake(&ring->shm_ctl->space_seq);
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
		sbr_reader_skip(rd);
	}
	r = free_slot(rd->ring, rd->slot_mem, rd->slot_state);
	rd->ring = NULL;
	return r == -ENOENT ? 0 : r;
}

/* Slot `index` as this process maps it, or NULL (no such slot, or not
 * mapped here). */
struct sb_ring_slot *sbr_slot_at(const struct sb_ring *ring, uint32_t index)
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
	struct sb_ring_slot *slot = sbr_slot_at(ring, index);
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

int sb_ring_slot_evict(struct sb_ring *ring, uint32_t index, uint32_t state)
{
	struct sb_ring_slot *slot = sbr_slot_at(ring, index);
	int r;

	if (slot == NULL || (state & 1u) == 0) {
		return -EINVAL;
	}
	r = free_slot(ring, slot, state);
	if (r == 0) {
		/* A reader asleep waiting for data looks again and finds its
		 * slot gone (sbr_wait_for_data(), sb_ring_wait_readable()). */
		sbr_bump_and_wake(&ring->shm_ctl->data_seq);
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
		sbr_bump_and_wake(&rd->ring->shm_ctl->data_seq);
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
		sbr_bump_and_wake(&ring->shm_ctl->space_seq);
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

int sb_ring_slot_segment_in_use(int fd)
{
	uint32_t state;

	if (pread(fd, &state, sizeof(state),
		  offsetof(struct sb_ring_slot, slot_state)) !=
	    (ssize_t)sizeof(state)) {
		return -EIO;
	}
	return (state & 1u) != 0;
}
