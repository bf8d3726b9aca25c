/*
 * gen_ring_seeds.c - writes the seed corpus of the ring_attach fuzz target
 * (fuzz/corpus/ring_attach/): rings formatted and filled by the real ring
 * code, in every mode and policy, wrapped and overrun, plus near-valid
 * variants (not ready, other version, wrong geometry), each followed by a
 * script in the target's format. Seeds made by the code under test start
 * the fuzzer deep inside valid states instead of at the magic numbers.
 * Run by `make fuzz-seeds`; the output is committed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring/ring.h"
#include "ring/ring_layout.h"

#define CAPACITY  4096u
#define DATA_SIZE (SB_RING_HEADER_SIZE + CAPACITY)
#define CTL_SIZE  4096u

/* The target's script flags (fuzz/ring_attach.c). */
#define FLAG_FREE_LOCKS	 0x01u
#define FLAG_WRITER_DIED 0x02u
#define FLAG_QUEUE_DIED	 0x04u
#define FLAG_EARLIEST	 0x08u
#define FLAG_READ_ONLY	 0x10u
#define FLAG_CHECKSUM	 0x20u
#define FLAG_VERIFY	 0x40u
#define FLAG_HOLD_SLOT	 0x80u

static unsigned char seg[DATA_SIZE + CTL_SIZE];

static void die(const char *what, int r)
{
	fprintf(stderr, "gen_ring_seeds: %s: %d\n", what, r);
	exit(1);
}

/* Formats a ring (with ring `flags`), publishes `n` messages of growing
 * length, and lets a reader that opened first consume `consumed` of them. */
static struct sb_ring make_ring_flags(uint32_t slots, uint32_t mode,
				      uint32_t overflow, uint32_t max_message,
				      int n, int consumed, uint32_t flags)
{
	/* Inline slots: the target opens its readers in the control
	 * segment it fuzzes. */
	struct sb_ring_config cfg = {
	    CAPACITY, max_message,	   slots, mode, overflow,
	    flags,    SB_RING_SLOTS_INLINE};
	unsigned char msg[1024], buf[1024];
	struct sb_ring_reader rd;
	struct sb_ring ring;
	int r;

	memset(seg, 0, sizeof(seg));
	r = sb_ring_format(seg, DATA_SIZE, seg + DATA_SIZE, CTL_SIZE, &cfg);
	if (r == 0) {
		r = sb_ring_attach(&ring, seg, DATA_SIZE, seg + DATA_SIZE,
				   CTL_SIZE);
	}
	if (r == 0) {
		r = sb_ring_reader_open(&ring, SB_RING_START_EARLIEST, &rd);
	}
	if (r != 0) {
		die("format", r);
	}
	for (int i = 0; i < n; i++) {
		uint32_t len = (uint32_t)(i * 53) % (max_message + 1);

		memset(msg, 'a' + i % 26, len);
		r = sb_ring_publish(&ring, msg, len, 0);
		if (r == -EAGAIN && consumed > 0) {
			sb_ring_receive(&rd, buf, sizeof(buf), 0);
			consumed--;
			r = sb_ring_publish(&ring, msg, len, 0);
		}
		if (r != 0 && r != -EAGAIN) {
			die("publish", r);
		}
	}
	while (consumed-- > 0) {
		sb_ring_receive(&rd, buf, sizeof(buf), 0);
	}
	/* The reader stays in its slot: a live subscriber in the seed. */
	return ring;
}

static struct sb_ring make_ring(uint32_t slots, uint32_t mode,
				uint32_t overflow, uint32_t max_message, int n,
				int consumed)
{
	return make_ring_flags(slots, mode, overflow, max_message, n, consumed,
			       0);
}

static void write_seed(const char *dir, const char *name,
		       const unsigned char *script, size_t nscript)
{
	char path[512];
	FILE *f;

	/* Free lock cells: the ids of the process that made the seeds would
	 * mean nothing to the target. */
	memset(seg + SB_RING_WCTL_OFFSET + 128, 0, 64);
	memset(seg + DATA_SIZE + 512, 0, 64);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(seg, 1, sizeof(seg), f) != sizeof(seg) ||
	    (nscript != 0 && fwrite(script, 1, nscript, f) != nscript) ||
	    fclose(f) != 0) {
		die(path, -errno);
	}
}

int main(int argc, char **argv)
{
	/* ops: low 3 bits 0 receive, 1 small receive, 2 peek+release,
	 * 3 peek across the next op, 4 publish, 5 claim+commit, 6 claim+abort,
	 * 7 reopen; the high 5 bits are the argument. */
	static const unsigned char reads[] = {FLAG_FREE_LOCKS | FLAG_EARLIEST |
						  FLAG_READ_ONLY,
					      0x00,
					      0x02,
					      0x08 | 1,
					      0x03,
					      0x00,
					      0x0f,
					      0x00,
					      0x00};
	static const unsigned char writes[] = {FLAG_FREE_LOCKS | FLAG_EARLIEST,
					       0x44,
					       0x85,
					       0x26,
					       0xfc,
					       0x00,
					       0x03,
					       0x45,
					       0x00,
					       0x07,
					       0x00};
	static const unsigned char died[] = {
	    FLAG_FREE_LOCKS | FLAG_WRITER_DIED | FLAG_QUEUE_DIED |
		FLAG_EARLIEST | FLAG_READ_ONLY,
	    0x00,
	    0x02,
	    0x44,
	    0x00,
	    0x03,
	    0x00};
	static const unsigned char zeroed[] = {FLAG_EARLIEST, 0x00, 0x44,
					       0x02,	      0x85, 0x00};
	static const unsigned char verify_reads[] = {
	    FLAG_FREE_LOCKS | FLAG_EARLIEST | FLAG_READ_ONLY | FLAG_VERIFY,
	    0x00,
	    0x02,
	    0x00,
	    0x03,
	    0x44,
	    0x00,
	    0x00};
	static const unsigned char as_checksummed[] = {
	    FLAG_FREE_LOCKS | FLAG_EARLIEST | FLAG_READ_ONLY | FLAG_CHECKSUM,
	    0x00, 0x02, 0x00, 0x00};
	static const unsigned char held[] = {
	    FLAG_FREE_LOCKS | FLAG_EARLIEST | FLAG_HOLD_SLOT,
	    0x44,
	    0x85,
	    0x00,
	    0xfc,
	    0x00};
	struct sb_ring ring;
	const char *dir = argc > 1 ? argv[1] : "fuzz/corpus/ring_attach";

	ring = make_ring(2, SB_RING_BROADCAST, SB_RING_BLOCK, 1024, 0, 0);
	write_seed(dir, "broadcast-empty", NULL, 0);
	write_seed(dir, "broadcast-empty-writes", writes, sizeof(writes));

	ring = make_ring(2, SB_RING_BROADCAST, SB_RING_BLOCK, 1024, 40, 30);
	write_seed(dir, "broadcast-block-wrapped", reads, sizeof(reads));
	write_seed(dir, "broadcast-block-writer-died", died, sizeof(died));

	ring = make_ring(2, SB_RING_BROADCAST, SB_RING_OVERWRITE, 512, 60, 3);
	write_seed(dir, "broadcast-overwrite-lapped", reads, sizeof(reads));
	write_seed(dir, "broadcast-overwrite-writes", writes, sizeof(writes));

	ring = make_ring(1, SB_RING_QUEUE, SB_RING_REJECT, 256, 30, 5);
	write_seed(dir, "queue-reject", reads, sizeof(reads));
	write_seed(dir, "queue-reject-died", died, sizeof(died));

	ring = make_ring(2, SB_RING_QUEUE, SB_RING_OVERWRITE, 1024, 20, 2);
	write_seed(dir, "queue-overwrite-zeroed-mutexes", zeroed,
		   sizeof(zeroed));

	/* Checksummed: intact, with a flipped payload byte (readers skip
	 * it; verification cuts the ring there), and a plain ring read as
	 * checksummed (every record fails its checksum). */
	ring = make_ring_flags(2, SB_RING_BROADCAST, SB_RING_BLOCK, 512, 40, 30,
			       SB_RING_FLAG_CHECKSUM);
	write_seed(dir, "checksum-broadcast-wrapped", reads, sizeof(reads));
	write_seed(dir, "checksum-broadcast-verify", verify_reads,
		   sizeof(verify_reads));
	ring = make_ring_flags(1, SB_RING_QUEUE, SB_RING_BLOCK, 256, 12, 2,
			       SB_RING_FLAG_CHECKSUM);
	seg[SB_RING_HEADER_SIZE + 3 * 64 + 20] ^= 0x01;
	write_seed(dir, "checksum-queue-damaged", reads, sizeof(reads));
	write_seed(dir, "checksum-queue-damaged-verify", verify_reads,
		   sizeof(verify_reads));
	ring = make_ring(2, SB_RING_BROADCAST, SB_RING_OVERWRITE, 512, 60, 3);
	write_seed(dir, "plain-read-as-checksummed", as_checksummed,
		   sizeof(as_checksummed));

	/* Slot segments (the broker's layout): the target makes each inline
	 * slot of the input a segment of its own; slot 0 holds a reader
	 * that has not read everything, the target's reader takes slot 1. */
	ring = make_ring(2, SB_RING_BROADCAST, SB_RING_BLOCK, 1024, 40, 30);
	ring.shm_hdr->slot_home = SB_RING_SLOTS_SEGMENTS;
	write_seed(dir, "segments-broadcast-block", writes, sizeof(writes));
	ring = make_ring(2, SB_RING_BROADCAST, SB_RING_BLOCK, 1024, 40, 30);
	ring.shm_hdr->slot_home = SB_RING_SLOTS_SEGMENTS;
	write_seed(dir, "segments-broadcast-held", held, sizeof(held));

	/* Near-valid: one field off, so attach must refuse. */
	ring = make_ring(2, SB_RING_BROADCAST, SB_RING_BLOCK, 1024, 10, 2);
	ring.shm_hdr->ready = 0;
	write_seed(dir, "bad-not-ready", NULL, 0);
	ring.shm_hdr->ready = SB_RING_READY;
	ring.shm_hdr->version = SB_RING_VERSION_FLAGS + 1;
	write_seed(dir, "bad-version", NULL, 0);
	ring.shm_hdr->version = SB_RING_VERSION;
	ring.shm_hdr->capacity = 8192;
	write_seed(dir, "bad-capacity", NULL, 0);
	ring.shm_hdr->capacity = CAPACITY;
	ring.shm_ctl->slot_count = 3;
	write_seed(dir, "bad-ctl-slot-count", NULL, 0);
	ring.shm_ctl->slot_count = 2;
	/* Valid identity, insane positions. */
	ring.shm_hdr->writer_tail = CAPACITY * 3 + 8;
	ring.shm_hdr->writer_oldest = 16;
	write_seed(dir, "bad-positions", writes, sizeof(writes));
	return 0;
}
