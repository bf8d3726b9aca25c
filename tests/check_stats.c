/*
 * check_stats.c - what the broker reads of a ring (ring/stats.c and
 * ring/snapshot.c): the counters and positions after real publishes and
 * receives, the slot iterator, hostile positions, and the write-back's copy
 * and header page. The broker's stat and persistence suites go through
 * these too; here each value is checked against what the test did.
 */
#include <check.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "ring/ring.h"
#include "ring/ring_layout.h"
#include "tests/suites.h"
#include "tests/support/ring_segs.h"

#define SLOTS 4

static void open_ring(struct sbt_segs *s)
{
	struct sb_ring_config cfg = {.capacity = 4096,
				     .max_message = 512,
				     .slot_count = SLOTS,
				     .mode = SB_RING_BROADCAST,
				     .overflow = SB_RING_BLOCK};

	sbt_segs_open(s, &cfg);
}

/* Publishes messages of lengths 10, 20, ... (n of them); returns the
 * bytes their records take in the ring. */
static uint64_t publish_some(struct sb_ring *ring, int n)
{
	char buf[512];
	uint64_t used = 0;

	memset(buf, 'x', sizeof(buf));
	for (int i = 1; i <= n; i++) {
		ck_assert_int_eq(sb_ring_publish(ring, buf, 10u * i, 0), 0);
		used += sb_ring_record_size(ring, 10u * i);
	}
	return used;
}

START_TEST(stats_count_what_was_published)
{
	struct sbt_segs s;
	struct sb_ring_stats st;
	struct sb_ring_positions p;
	uint64_t used;

	open_ring(&s);
	used = publish_some(&s.ring, 3);
	sb_ring_stats(&s.ring, &st);
	ck_assert_uint_eq(st.published, 3);
	ck_assert_uint_eq(st.bytes, 60);
	ck_assert_uint_eq(st.used_bytes, used);
	ck_assert_uint_eq(st.rejected, 0);
	ck_assert_uint_eq(st.blocked_writers, 0);
	sb_ring_header_positions(s.data, &p);
	ck_assert_uint_eq(p.tail, st.tail);
	ck_assert_uint_eq(p.tail - p.oldest, used);
	ck_assert_uint_eq(p.next_seq, 3);
	sbt_segs_destroy(&s);
}
END_TEST

/* A writer that wrote positions no honest writer leaves: used_bytes says
 * 0 rather than a size beyond the ring. */
START_TEST(used_bytes_is_zero_for_hostile_positions)
{
	struct sbt_segs s;
	struct sb_ring_header *hdr;
	struct sb_ring_stats st;

	open_ring(&s);
	publish_some(&s.ring, 2);
	hdr = s.data;
	atomic_store(&hdr->writer_oldest, atomic_load(&hdr->writer_tail) + 16);
	sb_ring_stats(&s.ring, &st);
	ck_assert_uint_eq(st.used_bytes, 0);
	atomic_store(&hdr->writer_oldest, 0);
	atomic_store(&hdr->writer_tail, 1u << 20); /* beyond one capacity */
	sb_ring_stats(&s.ring, &st);
	ck_assert_uint_eq(st.used_bytes, 0);
	sbt_segs_destroy(&s);
}
END_TEST

START_TEST(slot_iterator_lists_the_slots_in_use)
{
	struct sbt_segs s;
	struct sb_ring_reader rd[3];
	struct sb_ring_slot_view v;
	char buf[512];
	uint32_t seen[SLOTS], n = 0;

	open_ring(&s);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(sb_ring_reader_open(
				     &s.ring, SB_RING_START_EARLIEST, &rd[i]),
				 0);
	}
	ck_assert_int_eq(sb_ring_reader_close(&rd[1]), 0);
	publish_some(&s.ring, 2);
	ck_assert_int_eq(sb_ring_receive(&rd[2], buf, sizeof(buf), 0), 10);
	ck_assert_int_eq(sb_ring_receive(&rd[2], buf, sizeof(buf), 0), 20);
	for (uint32_t i = 0; sb_ring_slot_next(&s.ring, &i, &v); i++) {
		ck_assert_uint_lt(n, SLOTS);
		ck_assert(v.in_use);
		ck_assert_uint_eq(v.pid, (uint32_t)getpid());
		seen[n++] = i;
		if (i == rd[2].slot) {
			ck_assert_uint_eq(v.received, 2);
			ck_assert_uint_eq(v.position,
					  sb_ring_reader_position(&rd[2]));
		} else {
			ck_assert_uint_eq(v.received, 0);
		}
		ck_assert_uint_eq(v.lost, 0);
		ck_assert(!v.sleeping);
	}
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(seen[0], rd[0].slot);
	ck_assert_uint_eq(seen[1], rd[2].slot);
	ck_assert_int_eq(sb_ring_slot_view(&s.ring, rd[1].slot, &v), 0);
	ck_assert(!v.in_use);
	ck_assert_int_eq(sb_ring_slot_view(&s.ring, SLOTS, &v), -EINVAL);
	sbt_segs_destroy(&s);
}
END_TEST

START_TEST(snapshot_copies_the_records_and_the_header_describes_them)
{
	struct sbt_segs s;
	struct sb_ring_snapshot snap;
	struct sb_ring_positions p, back;
	static unsigned char page[SB_RING_HEADER_SIZE];
	char name[SB_RING_NAME_SIZE];
	uint64_t used;

	open_ring(&s);
	used = publish_some(&s.ring, 4);
	sb_ring_header_positions(s.data, &p);
	ck_assert_int_eq(sb_ring_snapshot_take(&s.ring, NULL, &snap), 0);
	ck_assert_uint_eq(snap.oldest, p.oldest);
	ck_assert_uint_eq(snap.tail, p.tail);
	ck_assert_uint_eq(snap.next_seq, 4);
	ck_assert_uint_eq(snap.copied, used);
	ck_assert_uint_eq(snap.cut, 0);
	ck_assert_mem_eq(snap.bytes,
			 (unsigned char *)s.data + SB_RING_HEADER_SIZE +
			     (snap.from & (4096 - 1)),
			 used);
	ck_assert_int_eq(
	    sb_ring_header_image(&s.ring, "a/b", s.ctl_size, &p, page), 0);
	sb_ring_header_positions(page, &back);
	ck_assert_uint_eq(back.tail, p.tail);
	ck_assert_uint_eq(back.oldest, p.oldest);
	ck_assert_uint_eq(back.next_seq, p.next_seq);
	ck_assert_int_eq(sb_ring_name(page, name), 0);
	ck_assert_str_eq(name, "a/b");
	sb_ring_snapshot_free(&snap);
	ck_assert_ptr_null(snap.bytes);
	sbt_segs_destroy(&s);
}
END_TEST

/* A record a publisher wrote garbage into ends the copy before it. */
START_TEST(snapshot_stops_before_a_record_that_does_not_parse)
{
	struct sbt_segs s;
	struct sb_ring_snapshot snap;
	struct sb_ring_positions p;
	struct sb_ring_record *third;
	uint64_t before_third;

	open_ring(&s);
	publish_some(&s.ring, 2);
	sb_ring_header_positions(s.data, &p);
	before_third = p.tail;
	publish_some(&s.ring, 3);
	third = (struct sb_ring_record *)((unsigned char *)s.data +
					  SB_RING_HEADER_SIZE +
					  (before_third & (4096 - 1)));
	third->type = 77;
	ck_assert_int_eq(sb_ring_snapshot_take(&s.ring, NULL, &snap), 0);
	ck_assert_uint_eq(snap.tail, before_third);
	ck_assert_uint_gt(snap.cut, 0);
	ck_assert_uint_eq(snap.next_seq, 2);
	sb_ring_snapshot_free(&snap);
	sbt_segs_destroy(&s);
}
END_TEST

/* The copy starts where the file ends when the file holds this stream. */
START_TEST(snapshot_copies_only_what_the_file_lacks)
{
	struct sbt_segs s;
	struct sb_ring_snapshot snap;
	struct sb_ring_positions held;
	uint64_t more;

	open_ring(&s);
	publish_some(&s.ring, 2);
	sb_ring_header_positions(s.data, &held);
	more = publish_some(&s.ring, 3);
	ck_assert_int_eq(sb_ring_snapshot_take(&s.ring, &held, &snap), 0);
	ck_assert_uint_eq(snap.from, held.tail);
	ck_assert_uint_eq(snap.copied, more);
	ck_assert_uint_eq(snap.next_seq, 5);
	sb_ring_snapshot_free(&snap);
	sbt_segs_destroy(&s);
}
END_TEST

Suite *stats_suite(void)
{
	Suite *s = suite_create("stats");
	TCase *tc = tcase_create("stats");

	tcase_add_test(tc, stats_count_what_was_published);
	tcase_add_test(tc, used_bytes_is_zero_for_hostile_positions);
	tcase_add_test(tc, slot_iterator_lists_the_slots_in_use);
	tcase_add_test(
	    tc, snapshot_copies_the_records_and_the_header_describes_them);
	tcase_add_test(tc, snapshot_stops_before_a_record_that_does_not_parse);
	tcase_add_test(tc, snapshot_copies_only_what_the_file_lacks);
	suite_add_tcase(s, tc);
	return s;
}
