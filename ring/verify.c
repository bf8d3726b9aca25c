/*
 * verify.c - checking a persisted ring before it is served again, and
 * cutting it at its first bad record.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "ring/ring_private.h"

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
	first = kept_data   ? seq_after
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
	if (p != tail || next_seq != load_relaxed(&hdr->writer_next_seq)) {
		store_relaxed(&hdr->writer_tail, p);
		store_relaxed(&hdr->writer_next_seq, next_seq);
		stat_add(&hdr->writer_epoch, 1);
	}
	return 0;
}
