/*
 * stats.c - what a ring's headers and slots say at one moment, for the
 * broker (stat, ls, its stall sweep, the write-back of a persistent topic)
 * and for people: the broker reads a ring only through these, and never
 * names a field of the layout. Loads are relaxed unless a comment says
 * otherwise: a snapshot, not a synchronisation. Values are passed on as
 * they are (a hostile writer can make them anything); only what would be
 * used as a size is checked here.
 */
#include <errno.h>

#include "ring/ring_private.h"

void sb_ring_header_positions(const void *data, struct sb_ring_positions *out)
{
	const struct sb_ring_header *hdr = data;

	out->tail = load_relaxed((_Atomic uint64_t *)&hdr->writer_tail);
	out->oldest = load_relaxed((_Atomic uint64_t *)&hdr->writer_oldest);
	out->next_seq = load_relaxed((_Atomic uint64_t *)&hdr->writer_next_seq);
}

uint32_t sb_ring_blocked_writers(const struct sb_ring *ring)
{
	return ring != NULL
		   ? (uint32_t)__builtin_popcountll(atomic_load_explicit(
			 &ring->shm_wctl->space_waiters, memory_order_relaxed))
		   : 0;
}

uint64_t sb_ring_slot_gen(const struct sb_ring *ring)
{
	/* seq_cst: a publisher loads it before it fetches the set, the other
	 * half of the Dekker pair with the broker's bump before it hands
	 * out a slot (sb_ring_slot_publish(), map_refresh()). */
	return atomic_load_explicit(&ring->shm_hdr->slot_gen,
				    memory_order_seq_cst);
}

int sb_ring_slot_in_use(const struct sb_ring_slot *slot)
{
	/* acquire: pairs with the release CAS of slot_state in take_slot(). */
	return (atomic_load_explicit(&slot->slot_state, memory_order_acquire) &
		1u) != 0;
}

void sb_ring_stats(const struct sb_ring *ring, struct sb_ring_stats *out)
{
	struct sb_ring_header *hdr = ring->shm_hdr;
	struct sb_ring_positions p;

	sb_ring_header_positions(hdr, &p);
	out->tail = p.tail;
	out->used_bytes =
	    p.oldest <= p.tail && p.tail - p.oldest <= ring->capacity
		? p.tail - p.oldest
		: 0;
	out->published = load_relaxed(&hdr->stat_published);
	out->bytes = load_relaxed(&hdr->stat_bytes);
	out->rejected = load_relaxed(&hdr->stat_rejected);
	out->waits = load_relaxed(&hdr->stat_waits);
	out->recoveries = load_relaxed(&hdr->stat_recoveries);
	out->blocked_writers = sb_ring_blocked_writers(ring);
	out->queue_position = load_relaxed(&ring->shm_ctl->queue_cursor);
	out->queue_lost = load_relaxed(&ring->shm_ctl->queue_lost);
}

int sb_ring_slot_view(const struct sb_ring *ring, uint32_t index,
		      struct sb_ring_slot_view *out)
{
	struct sb_ring_slot *s = sbr_slot_at(ring, index);

	if (s == NULL || out == NULL) {
		return -EINVAL;
	}
	/* acquire: pairs with the release CAS of slot_state in take_slot(),
	 * which wrote the pid first. */
	out->state = atomic_load_explicit(&s->slot_state, memory_order_acquire);
	out->in_use = (out->state & 1u) != 0;
	out->pid = atomic_load_explicit(&s->slot_pid, memory_order_relaxed);
	out->position = ring->mode == SB_RING_QUEUE
			    ? load_relaxed(&ring->shm_ctl->queue_cursor)
			    : load_relaxed(&s->sub_cursor);
	out->received = load_relaxed(&s->sub_received);
	out->lost = load_relaxed(&s->sub_lost);
	out->sleeping =
	    atomic_load_explicit(&s->sub_sleeping, memory_order_relaxed) > 0;
	return 0;
}

int sb_ring_slot_next(const struct sb_ring *ring, uint32_t *index,
		      struct sb_ring_slot_view *out)
{
	for (uint32_t i = *index; ring != NULL && i < ring->slot_count; i++) {
		if (sb_ring_slot_view(ring, i, out) == 0 && out->in_use) {
			*index = i;
			return 1;
		}
	}
	return 0;
}
