/*
 * check_checksum.c - checksummed topics (SB_RING_FLAG_CHECKSUM): the
 * CRC-32C itself, the record format, readers that meet a damaged record
 * (receive, peek, queue, overwrite: -EBADMSG once, one loss, then the next
 * intact message), the verification of a persisted ring at broker start
 * (sb_ring_verify_truncate), and a real broker restarted on a persistent
 * file with 512 bytes flipped in its middle.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ring/crc32c.h"
#include "ring/ring.h"
#include "ring/ring_layout.h"
#include "shmbus/shmbus.h"
#include "tests/suites.h"
#include "tests/support/broker_harness.h"
#include "tests/support/ring_segs.h"
#include "tests/support/testutil.h"

#define MSG	  64u /* message size of most tests */
#define REC_CRC	  96u /* its record with a checksum: 16 + 64 + 4 -> 96 */
#define REC_PLAIN 80u /* and without: 16 + 64 */

static struct sb_ring_config config(uint32_t mode, uint32_t overflow,
				    uint32_t flags)
{
	struct sb_ring_config cfg = {
	    .capacity = 4096,
	    .max_message = 1024,
	    .slot_count = 4,
	    .mode = mode,
	    .overflow = overflow,
	    .flags = flags,
	};
	return cfg;
}

static void fixture_open(struct sbt_segs *f, const struct sb_ring_config *cfg)
{
	sbt_segs_open(f, cfg);
	f->ring.spin = 10;
}

/* The data area, where the records are. */
static unsigned char *area(struct sbt_segs *f)
{
	return (unsigned char *)f->data + SB_RING_HEADER_SIZE;
}

static struct sb_ring_header *header(struct sbt_segs *f)
{
	return f->data;
}

static void publish_n(struct sb_ring *ring, uint32_t first, uint32_t n)
{
	unsigned char buf[MSG];

	for (uint32_t i = first; i < first + n; i++) {
		sbt_fill_pattern(buf, MSG, i);
		ck_assert_int_eq(sb_ring_publish(ring, buf, MSG, 0), 0);
	}
}

/* Receives message `seed`, intact. */
static void receive_intact(struct sb_ring_reader *rd, uint32_t seed)
{
	unsigned char buf[1024];

	ck_assert_int_eq(sb_ring_receive(rd, buf, sizeof(buf), 0), MSG);
	ck_assert(sbt_check_pattern(buf, MSG, seed));
}

static void peek_intact(struct sb_ring_reader *rd, uint32_t seed)
{
	const void *p;
	uint32_t len;

	ck_assert_int_eq(sb_ring_peek(rd, &p, &len, 0), 0);
	ck_assert_uint_eq(len, MSG);
	ck_assert(sbt_check_pattern(p, MSG, seed));
	ck_assert_int_eq(sb_ring_release(rd), 0);
}

static void flip(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		p[i] ^= 0xFF;
	}
}

/* ---- the CRC ---------------------------------------------------------- */

START_TEST(crc32c_known_values_and_both_implementations_agree)
{
	unsigned char buf[300];

	ck_assert_uint_eq(sb_crc32c(0, "123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(sb_crc32c_portable(0, "123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(sb_crc32c(0, "", 0), 0);
	sbt_fill_pattern(buf, sizeof(buf), 7);
	/* Every length and alignment the word loop and the byte tail see. */
	for (size_t off = 0; off < 8; off++) {
		for (size_t len = 0; len + off <= sizeof(buf); len += 13) {
			uint32_t whole = sb_crc32c(0, buf + off, len);

			ck_assert_uint_eq(
			    whole, sb_crc32c_portable(0, buf + off, len));
			ck_assert_uint_eq(
			    whole,
			    sb_crc32c(sb_crc32c(0, buf + off, len / 3),
				      buf + off + len / 3, len - len / 3));
		}
	}
}
END_TEST

/* ---- the format ------------------------------------------------------- */

START_TEST(a_checksummed_record_is_as_documented)
{
	struct sb_ring_config cfg =
	    config(SB_RING_BROADCAST, SB_RING_BLOCK, SB_RING_FLAG_CHECKSUM);
	struct sbt_segs f;
	uint32_t stored;

	fixture_open(&f, &cfg);
	ck_assert_uint_eq(header(&f)->version, SB_RING_VERSION_FLAGS);
	ck_assert_uint_eq(header(&f)->flags, SB_RING_FLAG_CHECKSUM);
	ck_assert_uint_eq(f.ring.flags, SB_RING_FLAG_CHECKSUM);
	publish_n(&f.ring, 0, 1);
	/* 16 + 64 + 4 rounded to 16, the word right after the payload,
	 * CRC-32C of header and payload. */
	ck_assert_uint_eq(atomic_load(&header(&f)->writer_tail), REC_CRC);
	memcpy(&stored, area(&f) + 16 + MSG, sizeof(stored));
	ck_assert_uint_eq(stored, sb_crc32c_portable(0, area(&f), 16 + MSG));
	/* A zero-copy commit seals too; so does each message of a batch. */
	{
		struct sb_ring_claim claim;
		struct iovec v[2] = {{"ab", 2}, {"cde", 3}};

		ck_assert_int_eq(sb_ring_claim(&f.ring, 5, &claim, 0), 0);
		memcpy(claim.data, "hello", 5);
		ck_assert_int_eq(sb_ring_commit(&f.ring, &claim), 0);
		memcpy(&stored, area(&f) + REC_CRC + 16 + 5, sizeof(stored));
		ck_assert_uint_eq(
		    stored, sb_crc32c_portable(0, area(&f) + REC_CRC, 16 + 5));
		ck_assert_int_eq(sb_ring_publish_batch(&f.ring, v, 2, 0), 2);
		memcpy(&stored, area(&f) + REC_CRC + 32 + 32 + 16 + 3,
		       sizeof(stored));
		ck_assert_uint_eq(
		    stored, sb_crc32c_portable(0, area(&f) + REC_CRC + 32 + 32,
					       16 + 3));
	}
	sbt_segs_destroy(&f);

	/* Without the flag nothing changes: version 1, 80-byte records. */
	cfg.flags = 0;
	fixture_open(&f, &cfg);
	ck_assert_uint_eq(header(&f)->version, SB_RING_VERSION);
	publish_n(&f.ring, 0, 1);
	ck_assert_uint_eq(atomic_load(&header(&f)->writer_tail), REC_PLAIN);
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(attach_checks_the_flags)
{
	struct sb_ring_config cfg =
	    config(SB_RING_BROADCAST, SB_RING_BLOCK, SB_RING_FLAG_CHECKSUM);
	struct sbt_segs f;
	struct sb_ring r;
	uint64_t d, c;

	/* The first bit no flag uses yet. */
	cfg.flags = (SB_RING_FLAGS_KNOWN << 1) & ~SB_RING_FLAGS_KNOWN;
	ck_assert_int_eq(sb_ring_layout(&cfg, &d, &c), -EINVAL);
	cfg.flags = SB_RING_FLAG_CHECKSUM;
	fixture_open(&f, &cfg);
	/* a flag of a later layout */
	header(&f)->flags = SB_RING_FLAG_CHECKSUM | (SB_RING_FLAGS_KNOWN + 1);
	ck_assert_int_eq(
	    sb_ring_attach(&r, f.data, f.data_size, f.ctl, f.ctl_size),
	    -EPROTO);
	/* Version 1 had the field reserved zero. */
	header(&f)->flags = SB_RING_FLAG_CHECKSUM;
	header(&f)->version = SB_RING_VERSION;
	ck_assert_int_eq(
	    sb_ring_attach(&r, f.data, f.data_size, f.ctl, f.ctl_size),
	    -EBADMSG);
	header(&f)->version = SB_RING_VERSION_FLAGS;
	ck_assert_int_eq(
	    sb_ring_attach(&r, f.data, f.data_size, f.ctl, f.ctl_size), 0);
	sbt_segs_destroy(&f);
}
END_TEST

/* ---- readers that meet a damaged record ------------------------------ */

START_TEST(a_flipped_payload_byte_is_skipped_once_and_counted_lost)
{
	struct sb_ring_config cfg =
	    config(SB_RING_BROADCAST, SB_RING_BLOCK, SB_RING_FLAG_CHECKSUM);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	unsigned char buf[1024];

	fixture_open(&f, &cfg);
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	publish_n(&f.ring, 0, 3);
	area(&f)[REC_CRC + 16 + 10] ^= 0x01; /* message 1, payload byte 10 */
	receive_intact(&rd, 0);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EBADMSG);
	ck_assert_uint_eq(sb_ring_reader_lost(&rd), 1);
	receive_intact(&rd, 2);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EAGAIN);
	/* The stream goes on, and the seqs agree with the one loss. */
	publish_n(&f.ring, 3, 1);
	receive_intact(&rd, 3);
	ck_assert_uint_eq(sb_ring_reader_lost(&rd), 1);
	ck_assert_uint_eq(atomic_load(&f.ring.shm_slots[rd.slot].sub_lost), 1);
	/* The skipped record holds nothing back: laps of the ring go on. */
	for (uint32_t i = 4; i < 200; i++) {
		publish_n(&f.ring, i, 1);
		receive_intact(&rd, i);
	}
	ck_assert_uint_eq(sb_ring_reader_lost(&rd), 1);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(peek_verifies_too)
{
	struct sb_ring_config cfg =
	    config(SB_RING_BROADCAST, SB_RING_BLOCK, SB_RING_FLAG_CHECKSUM);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	const void *p;
	uint32_t len;

	fixture_open(&f, &cfg);
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	publish_n(&f.ring, 0, 3);
	area(&f)[REC_CRC + 16 + MSG - 1] ^= 0x80;
	peek_intact(&rd, 0);
	ck_assert_int_eq(sb_ring_peek(&rd, &p, &len, 0), -EBADMSG);
	ck_assert_uint_eq(sb_ring_reader_lost(&rd), 1);
	ck_assert_int_eq(sb_ring_release(&rd), -EINVAL); /* nothing held */
	peek_intact(&rd, 2);
	ck_assert_int_eq(sb_ring_peek(&rd, &p, &len, 0), -EAGAIN);
	/* A damaged checksum word is a damaged record as well. */
	publish_n(&f.ring, 3, 2);
	area(&f)[4 * REC_CRC + 16 + MSG] ^= 0x01;
	peek_intact(&rd, 3);
	ck_assert_int_eq(sb_ring_peek(&rd, &p, &len, 0), -EBADMSG);
	ck_assert_uint_eq(sb_ring_reader_lost(&rd), 2);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(without_checksums_a_flipped_byte_is_delivered_as_before)
{
	struct sb_ring_config cfg = config(SB_RING_BROADCAST, SB_RING_BLOCK, 0);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	unsigned char buf[1024];

	fixture_open(&f, &cfg);
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	publish_n(&f.ring, 0, 2);
	area(&f)[REC_PLAIN + 16 + 10] ^= 0x01;
	receive_intact(&rd, 0);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), MSG);
	ck_assert(!sbt_check_pattern(buf, MSG, 1));
	ck_assert_uint_eq(sb_ring_reader_lost(&rd), 0);
	/* A broken header still stops the reader: nothing to resync by. */
	publish_n(&f.ring, 2, 2);
	area(&f)[2 * REC_PLAIN + 4] = 99; /* type */
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EBADMSG);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EBADMSG);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

/*
 * A damaged header (type, length) or a damaged span of several records:
 * the reader cannot trust the length to find the next record, so it
 * searches for the next one whose checksum holds. One -EBADMSG, and the
 * seqs of the next intact record count what the span held.
 */
START_TEST(a_damaged_header_or_span_is_skipped_to_the_next_intact_record)
{
	struct sb_ring_config cfg =
	    config(SB_RING_BROADCAST, SB_RING_BLOCK, SB_RING_FLAG_CHECKSUM);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	unsigned char buf[1024];
	uint32_t len;

	fixture_open(&f, &cfg);
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	publish_n(&f.ring, 0, 12);
	/* Message 1: a length that still fits (the checksum catches it). */
	len = 48;
	memcpy(area(&f) + REC_CRC, &len, sizeof(len));
	/* Message 3: an unknown type. */
	area(&f)[3 * REC_CRC + 4] = 7;
	/* Messages 5 to 8: 300 bytes flipped from the middle of 5. */
	flip(area(&f) + 5 * REC_CRC + 40, 300);
	receive_intact(&rd, 0);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EBADMSG);
	receive_intact(&rd, 2);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EBADMSG);
	receive_intact(&rd, 4);
	ck_assert_uint_eq(sb_ring_reader_lost(&rd), 2);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EBADMSG);
	/* 5 + 40 + 300 ends inside message 8: 5, 6, 7, 8 lost. */
	receive_intact(&rd, 9);
	ck_assert_uint_eq(sb_ring_reader_lost(&rd), 2 + 4);
	receive_intact(&rd, 10);
	receive_intact(&rd, 11);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EAGAIN);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

/* A subscriber that opens at the oldest message, which is damaged: its
 * first seq was a guess, and the next intact record corrects it. */
START_TEST(a_damaged_first_record_does_not_wedge_a_new_subscriber)
{
	struct sb_ring_config cfg =
	    config(SB_RING_BROADCAST, SB_RING_BLOCK, SB_RING_FLAG_CHECKSUM);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	unsigned char buf[1024];

	fixture_open(&f, &cfg);
	publish_n(&f.ring, 0, 3);
	area(&f)[8] ^= 0x10; /* message 0's seq */
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_EARLIEST, &rd), 0);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EBADMSG);
	receive_intact(&rd, 1);
	receive_intact(&rd, 2);
	publish_n(&f.ring, 3, 1);
	receive_intact(&rd, 3);
	ck_assert_uint_eq(sb_ring_reader_lost(&rd), 1);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(queue_consumers_skip_a_damaged_record_once)
{
	struct sb_ring_config cfg =
	    config(SB_RING_QUEUE, SB_RING_BLOCK, SB_RING_FLAG_CHECKSUM);
	struct sbt_segs f;
	struct sb_ring_reader a, b;
	unsigned char buf[1024];

	fixture_open(&f, &cfg);
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &a), 0);
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &b), 0);
	publish_n(&f.ring, 0, 3);
	area(&f)[REC_CRC + 16 + 3] ^= 0x04;
	receive_intact(&a, 0);
	ck_assert_int_eq(sb_ring_receive(&a, buf, sizeof(buf), 0), -EBADMSG);
	/* The other consumer is not shown the bad record again. */
	receive_intact(&b, 2);
	ck_assert_int_eq(sb_ring_receive(&a, buf, sizeof(buf), 0), -EAGAIN);
	ck_assert_uint_eq(atomic_load(&f.ring.shm_ctl->queue_lost), 1);
	ck_assert_uint_eq(sb_ring_reader_lost(&a), 1);
	ck_assert_uint_eq(sb_ring_reader_lost(&b), 0);
	publish_n(&f.ring, 3, 1);
	peek_intact(&b, 3);
	ck_assert_uint_eq(atomic_load(&f.ring.shm_ctl->queue_lost), 1);
	sb_ring_reader_close(&a);
	sb_ring_reader_close(&b);
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(overwrite_readers_skip_a_damaged_record_once)
{
	struct sb_ring_config cfg =
	    config(SB_RING_BROADCAST, SB_RING_OVERWRITE, SB_RING_FLAG_CHECKSUM);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	unsigned char buf[1024];

	fixture_open(&f, &cfg);
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	publish_n(&f.ring, 0, 3);
	area(&f)[2 * REC_CRC + 16] ^= 0x01;
	receive_intact(&rd, 0);
	receive_intact(&rd, 1);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EBADMSG);
	ck_assert_uint_eq(sb_ring_reader_lost(&rd), 1);
	/* Lapped afterwards: the gap counts as before. 4096 / 96 = 42. */
	publish_n(&f.ring, 3, 100);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), MSG);
	ck_assert_uint_gt(sb_ring_reader_lost(&rd), 1);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

/* ---- verifying a persisted ring --------------------------------------- */

START_TEST(verify_truncates_to_the_last_good_record)
{
	struct sb_ring_config cfg =
	    config(SB_RING_BROADCAST, SB_RING_BLOCK, SB_RING_FLAG_CHECKSUM);
	struct sb_ring_verify_report v;
	struct sbt_segs f;
	struct sb_ring_reader rd;
	unsigned char buf[1024];

	fixture_open(&f, &cfg);
	publish_n(&f.ring, 0, 10);
	/* Intact: nothing to do. */
	ck_assert_int_eq(sb_ring_verify_truncate(&f.ring, &v), 0);
	ck_assert_uint_eq(v.kept, 10);
	ck_assert_uint_eq(v.dropped, 0);
	ck_assert_uint_eq(v.dropped_bytes, 0);
	ck_assert_uint_eq(atomic_load(&header(&f)->writer_tail), 10 * REC_CRC);
	/* One payload byte of message 4. */
	area(&f)[4 * REC_CRC + 16 + 20] ^= 0x02;
	ck_assert_int_eq(sb_ring_verify_truncate(&f.ring, &v), 0);
	ck_assert_uint_eq(v.kept, 4);
	ck_assert_uint_eq(v.dropped, 6);
	ck_assert_uint_eq(v.dropped_bytes, 6 * REC_CRC);
	ck_assert_uint_eq(v.bad_pos, 4 * REC_CRC);
	ck_assert_uint_eq(atomic_load(&header(&f)->writer_tail), 4 * REC_CRC);
	/* The seqs stay consecutive: a reader from the oldest gets 0..3,
	 * then the next message, seq 4, with nothing counted lost. */
	ck_assert_uint_eq(atomic_load(&header(&f)->writer_next_seq), 4);
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_EARLIEST, &rd), 0);
	for (uint32_t i = 0; i < 4; i++) {
		receive_intact(&rd, i);
	}
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EAGAIN);
	publish_n(&f.ring, 10, 1);
	receive_intact(&rd, 10);
	ck_assert_uint_eq(sb_ring_reader_lost(&rd), 0);
	/* The cut ring passes a second verification whole. */
	ck_assert_int_eq(sb_ring_verify_truncate(&f.ring, &v), 0);
	ck_assert_uint_eq(v.kept, 5);
	ck_assert_uint_eq(v.dropped_bytes, 0);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(verify_checks_structure_and_seqs_without_checksums)
{
	struct sb_ring_config cfg = config(SB_RING_BROADCAST, SB_RING_BLOCK, 0);
	struct sb_ring_verify_report v;
	struct sbt_segs f;
	uint64_t seq = 1000;

	fixture_open(&f, &cfg);
	publish_n(&f.ring, 0, 10);
	/* A payload byte cannot be seen without checksums... */
	area(&f)[2 * REC_PLAIN + 16] ^= 0x01;
	ck_assert_int_eq(sb_ring_verify_truncate(&f.ring, &v), 0);
	ck_assert_uint_eq(v.kept, 10);
	/* ...a seq out of step can. */
	memcpy(area(&f) + 6 * REC_PLAIN + 8, &seq, sizeof(seq));
	ck_assert_int_eq(sb_ring_verify_truncate(&f.ring, &v), 0);
	ck_assert_uint_eq(v.kept, 6);
	ck_assert_uint_eq(v.dropped, 4);
	ck_assert_uint_eq(atomic_load(&header(&f)->writer_tail), 6 * REC_PLAIN);
	/* A type that is no record's. */
	area(&f)[3 * REC_PLAIN + 4] = 0;
	ck_assert_int_eq(sb_ring_verify_truncate(&f.ring, &v), 0);
	ck_assert_uint_eq(v.kept, 3);
	ck_assert_uint_eq(v.dropped, 3);
	ck_assert_uint_eq(atomic_load(&header(&f)->writer_tail), 3 * REC_PLAIN);
	ck_assert_uint_eq(atomic_load(&header(&f)->writer_next_seq), 3);
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(verify_repairs_a_lagging_next_seq_and_refuses_bad_positions)
{
	struct sb_ring_config cfg =
	    config(SB_RING_BROADCAST, SB_RING_BLOCK, SB_RING_FLAG_CHECKSUM);
	struct sb_ring_verify_report v;
	struct sbt_segs f;

	fixture_open(&f, &cfg);
	publish_n(&f.ring, 0, 5);
	/* A writer that died between its tail store and its seq store. */
	atomic_store(&header(&f)->writer_next_seq, 4);
	ck_assert_int_eq(sb_ring_verify_truncate(&f.ring, &v), 0);
	ck_assert_uint_eq(v.dropped, 0);
	ck_assert_uint_eq(atomic_load(&header(&f)->writer_next_seq), 5);
	/* A next seq far ahead: the seqs in the ring say what comes next. */
	atomic_store(&header(&f)->writer_next_seq, 1u << 30);
	ck_assert_int_eq(sb_ring_verify_truncate(&f.ring, &v), 0);
	ck_assert_uint_eq(v.dropped, 0);
	ck_assert_uint_eq(atomic_load(&header(&f)->writer_next_seq), 5);
	/* Everything damaged: the ring is emptied, seqs go on. */
	flip(area(&f), 5 * REC_CRC);
	ck_assert_int_eq(sb_ring_verify_truncate(&f.ring, &v), 0);
	ck_assert_uint_eq(v.kept, 0);
	ck_assert_uint_eq(atomic_load(&header(&f)->writer_tail),
			  atomic_load(&header(&f)->writer_oldest));
	ck_assert_uint_eq(atomic_load(&header(&f)->writer_next_seq), 5);
	/* Positions that break the invariants: refused, nothing written. */
	atomic_store(&header(&f)->writer_tail, 8);
	ck_assert_int_eq(sb_ring_verify_truncate(&f.ring, &v), -EBADMSG);
	ck_assert_uint_eq(atomic_load(&header(&f)->writer_tail), 8);
	atomic_store(&header(&f)->writer_tail, 1ull << 40);
	ck_assert_int_eq(sb_ring_verify_truncate(&f.ring, &v), -EBADMSG);
	ck_assert_int_eq(sb_ring_verify_truncate(NULL, &v), -EINVAL);
	sbt_segs_destroy(&f);
}
END_TEST

/* ---- a real broker on a damaged persistent file ----------------------- */

#define TOPIC	   "durable"
#define N_MESSAGES 500u

static void publish_through_broker(const char *socket, uint32_t first,
				   uint32_t n)
{
	unsigned char buf[MSG];
	shmbus *bus;
	shmbus_pub *pub;

	ck_assert_int_eq(shmbus_connect(socket, "ck-pub", &bus), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, TOPIC, &pub), 0);
	for (uint32_t i = first; i < first + n; i++) {
		sbt_fill_pattern(buf, MSG, i);
		ck_assert_int_eq(shmbus_publish(pub, buf, MSG, 1000), 0);
	}
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
}

/* Flips `n` bytes from `off` of the file at `path`. */
static void flip_file(const char *path, off_t off, size_t n)
{
	unsigned char buf[512];
	int fd = open(path, O_RDWR | O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_uint_le(n, sizeof(buf));
	ck_assert_int_eq(pread(fd, buf, n, off), (ssize_t)n);
	flip(buf, n);
	ck_assert_int_eq(pwrite(fd, buf, n, off), (ssize_t)n);
	close(fd);
}

START_TEST(a_damaged_persistent_file_is_cut_back_at_broker_start)
{
	enum { CAPACITY = 65536 };
	struct sbt_broker b;
	char cfg[512], path[512];
	unsigned char buf[1024];
	uint32_t kept = 0;
	shmbus *bus;
	shmbus_sub *sub;
	ssize_t n;

	memset(&b, 0, sizeof(b));
	b.dir = sbt_tempdir();
	snprintf(cfg, sizeof(cfg),
		 "{\"data_dir\": \"%s\", \"topics\": [{\"name\": \"" TOPIC
		 "\", \"persistent\": true, \"capacity\": %d,"
		 " \"max_message\": \"1KiB\"}]}",
		 b.dir, CAPACITY);
	ck_assert_int_eq(sbt_broker_start_in(&b, cfg, NULL), 0);
	publish_through_broker(b.socket, 0, N_MESSAGES);
	ck_assert_int_eq(sbt_broker_signal_wait(&b, SIGTERM), 0);

	/* 512 bytes in the middle of the file: records 320 to 325 (the
	 * data area starts at 4096, records are 96 bytes). */
	snprintf(path, sizeof(path), "%s/" TOPIC, b.dir);
	flip_file(path, (SB_RING_HEADER_SIZE + CAPACITY) / 2, 512);
	ck_assert_int_eq(sbt_broker_start_in(&b, cfg, NULL), 0);
	ck_assert(sbt_broker_log_wait(&b, "dropped 180 records"));
	ck_assert(sbt_broker_log_contains(&b, "kept 320"));

	ck_assert_int_eq(shmbus_connect(b.socket, "ck-sub", &bus), 0);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, TOPIC, SHMBUS_START_EARLIEST, &sub), 0);
	while ((n = shmbus_receive(sub, buf, sizeof(buf), 0)) >= 0) {
		/* Only intact messages, in order, all before the damage. */
		ck_assert_int_eq(n, MSG);
		ck_assert(sbt_check_pattern(buf, MSG, kept));
		kept++;
	}
	ck_assert_int_eq(n, -EAGAIN);
	ck_assert_uint_eq(kept, 320);
	/* Publishing and receiving work on: no lasting -EBADMSG. */
	publish_through_broker(b.socket, N_MESSAGES, 300);
	for (uint32_t i = N_MESSAGES; i < N_MESSAGES + 300; i++) {
		ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 1000),
				 MSG);
		ck_assert(sbt_check_pattern(buf, MSG, i));
	}
	ck_assert_uint_eq(shmbus_sub_lost(sub), 0);
	ck_assert_int_eq(shmbus_sub_close(sub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	/* After another restart the cut ring is whole: 320 old messages and
	 * the 300 new ones, nothing dropped. */
	ck_assert_int_eq(sbt_broker_signal_wait(&b, SIGTERM), 0);
	ck_assert_int_eq(sbt_broker_start_in(&b, cfg, NULL), 0);
	ck_assert_int_eq(shmbus_connect(b.socket, "ck-sub", &bus), 0);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, TOPIC, SHMBUS_START_EARLIEST, &sub), 0);
	for (uint32_t i = 0; i < 620; i++) {
		ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0), MSG);
		ck_assert(sbt_check_pattern(
		    buf, MSG, i < 320 ? i : N_MESSAGES + i - 320));
	}
	ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0), -EAGAIN);
	ck_assert_uint_eq(shmbus_sub_lost(sub), 0);
	ck_assert_int_eq(shmbus_sub_close(sub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

Suite *checksum_suite(void)
{
	Suite *s = suite_create("checksum");
	TCase *tc;

	tc = tcase_create("crc");
	tcase_add_test(tc, crc32c_known_values_and_both_implementations_agree);
	suite_add_tcase(s, tc);

	tc = tcase_create("format");
	tcase_add_test(tc, a_checksummed_record_is_as_documented);
	tcase_add_test(tc, attach_checks_the_flags);
	suite_add_tcase(s, tc);

	tc = tcase_create("readers");
	tcase_add_test(tc,
		       a_flipped_payload_byte_is_skipped_once_and_counted_lost);
	tcase_add_test(tc, peek_verifies_too);
	tcase_add_test(tc,
		       without_checksums_a_flipped_byte_is_delivered_as_before);
	tcase_add_test(
	    tc, a_damaged_header_or_span_is_skipped_to_the_next_intact_record);
	tcase_add_test(tc,
		       a_damaged_first_record_does_not_wedge_a_new_subscriber);
	tcase_add_test(tc, queue_consumers_skip_a_damaged_record_once);
	tcase_add_test(tc, overwrite_readers_skip_a_damaged_record_once);
	suite_add_tcase(s, tc);

	tc = tcase_create("verify");
	tcase_add_test(tc, verify_truncates_to_the_last_good_record);
	tcase_add_test(tc, verify_checks_structure_and_seqs_without_checksums);
	tcase_add_test(
	    tc, verify_repairs_a_lagging_next_seq_and_refuses_bad_positions);
	suite_add_tcase(s, tc);

	tc = tcase_create("broker");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc,
		       a_damaged_persistent_file_is_cut_back_at_broker_start);
	suite_add_tcase(s, tc);
	return s;
}
