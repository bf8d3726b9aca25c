/*
 * snapshot.c - a copy of a ring's records that can go to a file while
 * writers go on (the broker's write-back of a persistent topic,
 * daemon/persist.c, which says how the file stays valid), and the header
 * page that describes such a copy.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ring/ring_private.h"

/* Copies positions [from, from + len) of the ring's data area. */
static void copy_span(const struct sb_ring *ring, uint64_t from, uint64_t len,
		      unsigned char *out)
{
	uint64_t off = from & ring->mask;
	uint64_t first =
	    len < ring->capacity - off ? len : ring->capacity - off;

	memcpy(out, ring->shm_data + off, first);
	memcpy(out + first, ring->shm_data, len - first);
}

/* One record of the copy at position `pos`: its end, or 0 if it does not
 * parse (record_parse(), on the copy; the header must lie in the copy). */
static uint64_t record_end(const struct sb_ring *ring,
			   const struct sb_ring_snapshot *s, uint64_t pos,
			   uint64_t limit, uint32_t *type, uint64_t *seq)
{
	struct rec_view rec;

	if (limit - pos < SB_RING_RECORD_HEADER ||
	    record_parse(ring, s->bytes + (pos - s->from),
			 ring->capacity - (pos & ring->mask), pos, limit,
			 &rec) < 0) {
		return 0;
	}
	*type = rec.type;
	*seq = rec.seq;
	return rec.end;
}

/*
 * Walks the copied records from `start` to s->tail, each DATA record's seq
 * at least `floor` and above the one before: next_seq follows the newest,
 * and the snapshot ends before the first record that breaks these rules (a
 * publisher wrote garbage). Returns how many bytes it cut.
 */
static uint64_t walk_copy(const struct sb_ring *ring,
			  struct sb_ring_snapshot *s, uint64_t start,
			  uint64_t floor)
{
	uint64_t pos = start, seq, end;
	uint32_t type;
	bool seen = false;

	while (pos < s->tail) {
		end = record_end(ring, s, pos, s->tail, &type, &seq);
		if (end == 0 || (type == SB_REC_DATA && seq < floor)) {
			break;
		}
		if (type == SB_REC_DATA) {
			floor = seq + 1;
			seen = true;
		}
		pos = end;
	}
	if (seen) {
		s->next_seq = floor;
	}
	end = s->tail;
	s->tail = pos;
	return end - pos;
}

/* Positions that a ring's honest writers can have. */
static bool sane(const struct sb_ring *ring, uint64_t oldest, uint64_t tail)
{
	return oldest <= tail && tail - oldest <= ring->capacity &&
	       ((oldest | tail) & (SB_RING_RECORD_ALIGN - 1)) == 0;
}

/* Where the copy starts: where `held` ends, when it holds this stream up
 * to a tail the ring has not lost yet; else the oldest record. */
static uint64_t copy_from(const struct sb_ring_snapshot *s,
			  const struct sb_ring_positions *held)
{
	return held != NULL && held->tail >= s->oldest &&
		       held->tail <= s->tail && held->oldest <= s->oldest
		   ? held->tail
		   : s->oldest;
}

int sb_ring_snapshot_take(const struct sb_ring *ring,
			  const struct sb_ring_positions *held,
			  struct sb_ring_snapshot *s)
{
	struct sb_ring_header *hdr = ring->shm_hdr;
	uint64_t oldest2, start;
	bool incremental;

	memset(s, 0, sizeof(*s));
	/* acquire: pairs with the release store of writer_tail in
	 * commit_records(); every record before the tail is written. */
	s->tail = atomic_load_explicit(&hdr->writer_tail, memory_order_acquire);
	/* Loaded after the tail, so at most one capacity behind it. */
	s->oldest =
	    atomic_load_explicit(&hdr->writer_oldest, memory_order_acquire);
	/* For a copy without any DATA record (walk_copy). */
	s->next_seq = load_relaxed(&hdr->writer_next_seq);
	if (s->oldest > s->tail && s->oldest - s->tail <= ring->capacity) {
		return -EAGAIN;
	}
	if (!sane(ring, s->oldest, s->tail)) {
		return -EBADMSG;
	}
	s->from = copy_from(s, held);
	s->copied = s->tail - s->from;
	s->bytes = malloc(s->copied > 0 ? s->copied : 1);
	if (s->bytes == NULL) {
		return -ENOMEM;
	}
	copy_span(ring, s->from, s->copied, s->bytes);
	/* acquire fence: pairs with the release fence in reclaim(); if a
	 * byte we copied was overwritten, the oldest we load next is past
	 * it. */
	atomic_thread_fence(memory_order_acquire);
	oldest2 = load_relaxed(&hdr->writer_oldest);
	if (oldest2 > s->oldest) {
		s->oldest = oldest2;
	}
	if (s->oldest > s->tail) {
		sb_ring_snapshot_free(s);
		return -EAGAIN;
	}
	start = s->oldest > s->from ? s->oldest : s->from;
	incremental = held != NULL && start == held->tail;
	if (incremental) {
		s->next_seq = held->next_seq;
	}
	s->cut = walk_copy(ring, s, start, incremental ? held->next_seq : 0);
	return 0;
}

void sb_ring_snapshot_free(struct sb_ring_snapshot *s)
{
	free(s->bytes);
	s->bytes = NULL;
}

int sb_ring_header_image(const struct sb_ring *ring, const char *name,
			 uint64_t ctl_size, const struct sb_ring_positions *p,
			 void *page)
{
	const struct sb_ring_header *live = ring->shm_hdr;
	struct sb_ring_header *h = page;
	struct sb_ring_config cfg = {.capacity = ring->capacity,
				     .max_message = ring->max_message,
				     .slot_count = ring->slot_count,
				     .mode = ring->mode,
				     .overflow = ring->overflow,
				     .flags = ring->flags,
				     .slot_home = ring->slot_home};

	sbr_header_init(h, &cfg, ctl_size);
	if (sb_ring_set_name(h, name) < 0) {
		return -EINVAL;
	}
	atomic_store_explicit(&h->ready, SB_RING_READY, memory_order_relaxed);
	store_relaxed(&h->writer_tail, p->tail);
	store_relaxed(&h->writer_oldest, p->oldest);
	store_relaxed(&h->writer_next_seq, p->next_seq);
	/* Statistics go on from the memory's. */
	store_relaxed(&h->stat_published,
		      load_relaxed((_Atomic uint64_t *)&live->stat_published));
	store_relaxed(&h->stat_bytes,
		      load_relaxed((_Atomic uint64_t *)&live->stat_bytes));
	return 0;
}
