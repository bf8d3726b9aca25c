/*
 * record.c - records' checksums: sealing one, checking one, and finding
 * the next intact record after a bad one. (Reading a record's header
 * is the inline record_at() in ring_private.h.)
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "ring/ring_private.h"

/* 1 when the checksum word of the DATA record `rec` matches its bytes as
 * they are in the ring now. Out of line: the callers' paths without
 * checksums stay short. */
__attribute__((noinline)) int sbr_checksum_matches(const unsigned char *payload,
						   uint32_t len)
{
	uint32_t stored;

	memcpy(&stored, payload + len, sizeof(stored));
	return stored == record_checksum(payload - SB_RING_RECORD_HEADER, len);
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
uint64_t sbr_next_intact(const struct sb_ring *ring, uint64_t from,
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
