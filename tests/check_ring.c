/*
 * check_ring.c - unit tests of the topic ring (ring/): geometry,
 * attach checks, copy and zero-copy paths, wrap-around at every offset near
 * the end, each overflow policy, broadcast and queue reading, slots, and
 * corrupted records. Multi-process stress and crash tests are in
 * check_ring_mp.c.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ring/ring.h"
#include "ring/ring_layout.h"
#include "tests/suites.h"
#include "tests/support/ring_segs.h"
#include "tests/support/testutil.h"

static struct sb_ring_config config(uint64_t capacity, uint32_t max_message,
				    uint32_t mode, uint32_t overflow)
{
	struct sb_ring_config cfg = {
	    .capacity = capacity,
	    .max_message = max_message,
	    .slot_count = 4,
	    .mode = mode,
	    .overflow = overflow,
	};
	return cfg;
}

/* Two fresh shared segments for a ring, formatted for `cfg`. */
static void fixture_open(struct sbt_segs *f, const struct sb_ring_config *cfg)
{
	sbt_segs_open(f, cfg);
	f->ring.spin = 10; /* tests that time out should not spin long */
}

static void publish_pattern(struct sb_ring *ring, uint32_t len, uint32_t seed)
{
	unsigned char buf[65536];

	ck_assert_uint_le(len, sizeof(buf));
	sbt_fill_pattern(buf, len, seed);
	ck_assert_int_eq(sb_ring_publish(ring, buf, len, 0), 0);
}

static void receive_pattern(struct sb_ring_reader *rd, uint32_t len,
			    uint32_t seed)
{
	unsigned char buf[65536];

	ck_assert_int_eq(sb_ring_receive(rd, buf, sizeof(buf), 0),
			 (ssize_t)len);
	ck_assert(sbt_check_pattern(buf, len, seed));
}

/* ---- geometry and attach --------------------------------------------- */

START_TEST(layout_rejects_bad_geometry)
{
	struct sb_ring_config ok =
	    config(4096, 1024, SB_RING_BROADCAST, SB_RING_BLOCK);
	struct sb_ring_config bad;
	uint64_t d, c;

	ck_assert_int_eq(sb_ring_layout(&ok, &d, &c), 0);
	ck_assert_uint_eq(d, SB_RING_HEADER_SIZE + 4096);
	ck_assert_uint_eq(c, 4096);
	bad = ok, bad.capacity = 6000;
	ck_assert_int_eq(sb_ring_layout(&bad, &d, &c), -EINVAL);
	bad = ok, bad.capacity = 2048;
	ck_assert_int_eq(sb_ring_layout(&bad, &d, &c), -EINVAL);
	bad = ok, bad.capacity = 1ull << 31;
	ck_assert_int_eq(sb_ring_layout(&bad, &d, &c), -EINVAL);
	bad = ok, bad.max_message = 1025;
	ck_assert_int_eq(sb_ring_layout(&bad, &d, &c), -EINVAL);
	bad = ok, bad.slot_count = 0;
	ck_assert_int_eq(sb_ring_layout(&bad, &d, &c), -EINVAL);
	bad = ok, bad.slot_count = SB_RING_MAX_SLOTS + 1;
	ck_assert_int_eq(sb_ring_layout(&bad, &d, &c), -EINVAL);
	bad = ok, bad.mode = 7;
	ck_assert_int_eq(sb_ring_layout(&bad, &d, &c), -EINVAL);
	bad = ok, bad.overflow = 0;
	ck_assert_int_eq(sb_ring_layout(&bad, &d, &c), -EINVAL);
	ck_assert_int_eq(sb_ring_layout(NULL, &d, &c), -EINVAL);
	ck_assert_int_eq(sb_ring_layout(&ok, NULL, &c), -EINVAL);
}
END_TEST

START_TEST(attach_checks_header)
{
	struct sb_ring_config cfg =
	    config(4096, 512, SB_RING_BROADCAST, SB_RING_BLOCK);
	struct sbt_segs f;
	struct sb_ring r;
	struct sb_ring_header *hdr;
	void *blank;

	fixture_open(&f, &cfg);
	hdr = f.data;
	/* Segments smaller than the geometry says. */
	ck_assert_int_eq(
	    sb_ring_attach(&r, f.data, f.data_size - 1, f.ctl, f.ctl_size),
	    -EBADMSG);
	ck_assert_int_eq(sb_ring_attach(&r, f.data, f.data_size, f.ctl, 1000),
			 -EBADMSG);
	ck_assert_int_eq(sb_ring_attach(&r, f.data, 100, f.ctl, f.ctl_size),
			 -EBADMSG);
	/* Other version, bad magic, bad geometry. */
	hdr->version = SB_RING_VERSION_FLAGS + 1;
	ck_assert_int_eq(
	    sb_ring_attach(&r, f.data, f.data_size, f.ctl, f.ctl_size),
	    -EPROTO);
	hdr->version = SB_RING_VERSION;
	hdr->magic ^= 1;
	ck_assert_int_eq(
	    sb_ring_attach(&r, f.data, f.data_size, f.ctl, f.ctl_size),
	    -EBADMSG);
	hdr->magic ^= 1;
	hdr->capacity = 8192;
	ck_assert_int_eq(
	    sb_ring_attach(&r, f.data, f.data_size, f.ctl, f.ctl_size),
	    -EBADMSG);
	hdr->capacity = 4096;
	hdr->max_message = 4096;
	ck_assert_int_eq(
	    sb_ring_attach(&r, f.data, f.data_size, f.ctl, f.ctl_size),
	    -EBADMSG);
	hdr->max_message = 512;
	ck_assert_int_eq(
	    sb_ring_attach(&r, f.data, f.data_size, f.ctl, f.ctl_size), 0);
	/* A segment nobody formatted yet. */
	blank = sbt_shared_zeroed(f.data_size);
	ck_assert_int_eq(
	    sb_ring_attach(&r, blank, f.data_size, f.ctl, f.ctl_size), -EAGAIN);
	ck_assert_int_eq(
	    sb_ring_attach(NULL, f.data, f.data_size, f.ctl, f.ctl_size),
	    -EINVAL);
	munmap(blank, f.data_size);
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(format_rejects_small_segments)
{
	struct sb_ring_config cfg =
	    config(4096, 512, SB_RING_BROADCAST, SB_RING_BLOCK);
	uint64_t d, c;
	void *data, *ctl;

	ck_assert_int_eq(sb_ring_layout(&cfg, &d, &c), 0);
	data = sbt_shared_zeroed(d);
	ctl = sbt_shared_zeroed(c);
	ck_assert_int_eq(sb_ring_format(data, d - 16, ctl, c, &cfg), -EINVAL);
	ck_assert_int_eq(sb_ring_format(data, d, ctl, c - 16, &cfg), -EINVAL);
	ck_assert_int_eq(sb_ring_format(NULL, d, ctl, c, &cfg), -EINVAL);
	munmap(data, d);
	munmap(ctl, c);
}
END_TEST

/* ---- copy and zero-copy ---------------------------------------------- */

START_TEST(publish_and_receive_round_trip)
{
	struct sb_ring_config cfg =
	    config(65536, 16384, SB_RING_BROADCAST, SB_RING_BLOCK);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	unsigned char small[8];
	unsigned char big[16385];

	fixture_open(&f, &cfg);
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	/* Nothing yet. */
	ck_assert_int_eq(sb_ring_receive(&rd, small, sizeof(small), 0),
			 -EAGAIN);
	publish_pattern(&f.ring, 0, 1);
	publish_pattern(&f.ring, 1, 2);
	publish_pattern(&f.ring, 16384, 3); /* the largest allowed */
	ck_assert_int_eq(sb_ring_publish(&f.ring, big, 16385, 0), -EMSGSIZE);
	receive_pattern(&rd, 0, 1);
	receive_pattern(&rd, 1, 2);
	/* Too small a buffer keeps the message for the next try. */
	ck_assert_int_eq(sb_ring_receive(&rd, small, sizeof(small), 0),
			 -EMSGSIZE);
	receive_pattern(&rd, 16384, 3);
	ck_assert_int_eq(sb_ring_receive(&rd, small, sizeof(small), 0),
			 -EAGAIN);
	ck_assert_uint_eq(sb_ring_reader_lost(&rd), 0);
	/* An empty message can be taken with no buffer at all. */
	publish_pattern(&f.ring, 0, 4);
	ck_assert_int_eq(sb_ring_receive(&rd, NULL, 0, 0), 0);
	ck_assert_int_eq(sb_ring_publish(&f.ring, NULL, 3, 0), -EINVAL);
	ck_assert_int_eq(sb_ring_receive(&rd, NULL, 3, 0), -EINVAL);
	ck_assert_int_eq(sb_ring_receive(&rd, small, 1, -2), -EINVAL);
	ck_assert_int_eq(sb_ring_reader_close(&rd), 0);
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(claim_commit_and_abort)
{
	struct sb_ring_config cfg =
	    config(4096, 1024, SB_RING_BROADCAST, SB_RING_BLOCK);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	struct sb_ring_claim claim;
	struct sb_ring_header *hdr;
	unsigned char buf[8] = {0};

	fixture_open(&f, &cfg);
	hdr = f.data;
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	ck_assert_int_eq(sb_ring_claim(&f.ring, 100, &claim, 0), 0);
	sbt_fill_pattern(claim.data, 100, 9);
	/* Not visible before commit. */
	ck_assert_uint_eq(atomic_load(&hdr->writer_tail), 0);
	ck_assert_int_eq(sb_ring_commit(&f.ring, &claim), 0);
	ck_assert_int_eq(sb_ring_commit(&f.ring, &claim), -EINVAL);
	receive_pattern(&rd, 100, 9);
	/* An aborted claim leaves nothing behind and frees the lock. */
	ck_assert_int_eq(sb_ring_claim(&f.ring, 50, &claim, 0), 0);
	ck_assert_int_eq(sb_ring_abort(&f.ring, &claim), 0);
	ck_assert_int_eq(sb_ring_abort(&f.ring, &claim), -EINVAL);
	publish_pattern(&f.ring, 7, 10);
	receive_pattern(&rd, 7, 10);
	ck_assert_int_eq(sb_ring_claim(&f.ring, 1025, &claim, 0), -EMSGSIZE);
	/* Publishing while this thread holds a claim cannot hang. */
	ck_assert_int_eq(sb_ring_claim(&f.ring, 8, &claim, 0), 0);
	ck_assert_int_eq(sb_ring_publish(&f.ring, buf, 8, -1), -EDEADLK);
	ck_assert_int_eq(sb_ring_abort(&f.ring, &claim), 0);
	ck_assert_int_eq(sb_ring_claim(NULL, 1, &claim, 0), -EINVAL);
	ck_assert_uint_eq(atomic_load(&hdr->stat_published), 2);
	ck_assert_uint_eq(atomic_load(&hdr->stat_bytes), 107);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(batch_publishes_in_order_all_or_nothing_checked)
{
	struct sb_ring_config cfg =
	    config(65536, 1024, SB_RING_BROADCAST, SB_RING_BLOCK);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	struct sb_ring_header *hdr;
	unsigned char bufs[100][200];
	unsigned char big[1025];
	struct iovec msgs[100];

	fixture_open(&f, &cfg);
	hdr = f.data;
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &rd), 0);
	for (int i = 0; i < 100; i++) {
		sbt_fill_pattern(bufs[i], (size_t)i * 2, (uint32_t)i + 1);
		msgs[i].iov_base = bufs[i];
		msgs[i].iov_len = (size_t)i * 2;
	}
	ck_assert_int_eq(sb_ring_publish_batch(&f.ring, msgs, 100, 0), 100);
	ck_assert_uint_eq(atomic_load(&hdr->stat_published), 100);
	ck_assert_uint_eq(atomic_load(&hdr->writer_next_seq), 100);
	for (int i = 0; i < 100; i++) {
		receive_pattern(&rd, (uint32_t)i * 2, (uint32_t)i + 1);
	}
	ck_assert_uint_eq(sb_ring_reader_lost(&rd), 0);
	/* One bad message refuses the whole batch. */
	msgs[50].iov_base = big;
	msgs[50].iov_len = sizeof(big);
	ck_assert_int_eq(sb_ring_publish_batch(&f.ring, msgs, 100, 0),
			 -EMSGSIZE);
	msgs[50].iov_base = NULL;
	msgs[50].iov_len = 1;
	ck_assert_int_eq(sb_ring_publish_batch(&f.ring, msgs, 100, 0), -EINVAL);
	ck_assert_int_eq(sb_ring_publish_batch(&f.ring, NULL, 3, 0), -EINVAL);
	ck_assert_int_eq(sb_ring_publish_batch(&f.ring, msgs, 0, 0), 0);
	ck_assert_uint_eq(atomic_load(&hdr->stat_published), 100);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

/* A batch bigger than the free space publishes what fits, then waits (or,
 * not allowed to wait, says how many went out). */
START_TEST(batch_over_a_full_ring)
{
	struct sb_ring_config cfg =
	    config(4096, 1024, SB_RING_BROADCAST, SB_RING_BLOCK);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	unsigned char buf[100];
	struct iovec msgs[200];
	pid_t child;

	fixture_open(&f, &cfg);
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &rd), 0);
	for (int i = 0; i < 200; i++) {
		msgs[i].iov_base = buf;
		msgs[i].iov_len = sizeof(buf);
	}
	memset(buf, 7, sizeof(buf));
	ck_assert_int_eq(sb_ring_publish_batch(&f.ring, msgs, 200, 0), 32);
	ck_assert_int_eq(sb_ring_publish_batch(&f.ring, msgs, 200, 0), -EAGAIN);
	/* A reader in another process drains; the batch waits pass by pass
	 * and every message arrives, in order, none lost. */
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		unsigned char got[100];
		int n = 0;

		while (n < 232 &&
		       sb_ring_receive(&rd, got, sizeof(got), 5000) == 100) {
			n++;
		}
		_exit(n == 232 && sb_ring_reader_lost(&rd) == 0 ? 0 : 1);
	}
	ck_assert_int_eq(sb_ring_publish_batch(&f.ring, msgs, 200, -1), 200);
	ck_assert_int_eq(sbt_wait(child), 0);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(peek_and_release)
{
	struct sb_ring_config cfg =
	    config(4096, 1024, SB_RING_BROADCAST, SB_RING_BLOCK);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	const void *data;
	uint32_t len;
	unsigned char buf[64];

	fixture_open(&f, &cfg);
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	ck_assert_int_eq(sb_ring_peek(&rd, &data, &len, 0), -EAGAIN);
	ck_assert_int_eq(sb_ring_release(&rd), -EINVAL);
	publish_pattern(&f.ring, 33, 4);
	publish_pattern(&f.ring, 5, 5);
	ck_assert_int_eq(sb_ring_peek(&rd, &data, &len, 0), 0);
	ck_assert_uint_eq(len, 33);
	ck_assert(sbt_check_pattern(data, len, 4));
	/* One held message at a time. */
	ck_assert_int_eq(sb_ring_peek(&rd, &data, &len, 0), -EBUSY);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EBUSY);
	ck_assert_int_eq(sb_ring_release(&rd), 0);
	receive_pattern(&rd, 5, 5);
	ck_assert_int_eq(sb_ring_peek(&rd, NULL, &len, 0), -EINVAL);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

/* ---- wrap-around ----------------------------------------------------- */

/* Moves the tail forward by `distance` bytes (a multiple of 16) with
 * records that each fit before the end, reading each back. */
static void advance_tail(struct sbt_segs *f, struct sb_ring_reader *rd,
			 uint64_t distance, uint32_t *seed)
{
	struct sb_ring_header *hdr = f->data;

	while (distance > 0) {
		uint64_t tail = atomic_load(&hdr->writer_tail);
		uint64_t room = f->ring.capacity - (tail & f->ring.mask);
		uint64_t step = distance;

		if (step > 16 + f->ring.max_message) {
			step = 16 + f->ring.max_message;
		}
		if (step > room) {
			step = room;
		}
		publish_pattern(&f->ring, (uint32_t)(step - 16), *seed);
		receive_pattern(rd, (uint32_t)(step - 16), (*seed)++);
		distance -= step;
	}
}

/*
 * Puts the tail at every 16-byte offset in the last 256 bytes of the ring
 * and publishes lengths that straddle the end there: each message must come
 * back intact, and a PAD must appear exactly when the record does not fit
 * before the end.
 */
START_TEST(wrap_at_every_offset_near_the_end)
{
	struct sb_ring_config cfg =
	    config(4096, 1024, SB_RING_BROADCAST, SB_RING_BLOCK);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	struct sb_ring_header *hdr;
	uint32_t seed = 100;

	fixture_open(&f, &cfg);
	hdr = f.data;
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	for (uint64_t gap = 16; gap <= 256; gap += 16) {
		for (uint32_t len = 0; len <= 300; len++) {
			uint64_t tail = atomic_load(&hdr->writer_tail);
			uint64_t room = 4096 - (tail & 4095);
			uint64_t size = (16 + len + 15) & ~15ull;

			advance_tail(&f, &rd,
				     room >= gap ? room - gap
						 : room + 4096 - gap,
				     &seed);
			tail = atomic_load(&hdr->writer_tail);
			ck_assert_uint_eq(4096 - (tail & 4095), gap);
			publish_pattern(&f.ring, len, seed);
			receive_pattern(&rd, len, seed++);
			ck_assert_uint_eq(atomic_load(&hdr->writer_tail) - tail,
					  size <= gap ? size : gap + size);
		}
	}
	ck_assert_uint_eq(sb_ring_reader_lost(&rd), 0);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

/* ---- overflow policies ----------------------------------------------- */

static int fill_until_full(struct sb_ring *ring, uint32_t len, int *count)
{
	unsigned char buf[1024];
	int r;

	sbt_fill_pattern(buf, len, 77);
	*count = 0;
	while ((r = sb_ring_publish(ring, buf, len, 0)) == 0) {
		(*count)++;
	}
	return r;
}

START_TEST(block_policy_waits_for_slowest_reader)
{
	struct sb_ring_config cfg =
	    config(4096, 1024, SB_RING_BROADCAST, SB_RING_BLOCK);
	struct sbt_segs f;
	struct sb_ring_reader fast, slow;
	unsigned char buf[1024];
	int count;

	fixture_open(&f, &cfg);
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &fast), 0);
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &slow), 0);
	ck_assert_int_eq(fill_until_full(&f.ring, 100, &count), -EAGAIN);
	ck_assert_int_eq(count, 4096 / 128);
	ck_assert_int_eq(sb_ring_publish(&f.ring, buf, 100, 20), -ETIMEDOUT);
	/* The fast reader draining does not free space: the slow one
	 * still holds it. */
	for (int i = 0; i < count; i++) {
		ck_assert_int_eq(sb_ring_receive(&fast, buf, sizeof(buf), 0),
				 100);
	}
	ck_assert_int_eq(sb_ring_publish(&f.ring, buf, 100, 0), -EAGAIN);
	ck_assert_int_eq(sb_ring_receive(&slow, buf, sizeof(buf), 0), 100);
	ck_assert_int_eq(sb_ring_publish(&f.ring, buf, 100, 0), 0);
	ck_assert_uint_eq(sb_ring_reader_lost(&slow), 0);
	/* A departed reader holds nothing back: the ring is full again,
	 * and only `slow` has not read the newest message. */
	ck_assert_int_eq(sb_ring_publish(&f.ring, buf, 100, 0), -EAGAIN);
	ck_assert_int_eq(sb_ring_receive(&fast, buf, sizeof(buf), 0), 100);
	ck_assert_int_eq(sb_ring_receive(&fast, buf, sizeof(buf), 0), -EAGAIN);
	ck_assert_int_eq(sb_ring_publish(&f.ring, buf, 100, 0), -EAGAIN);
	ck_assert_int_eq(sb_ring_reader_close(&slow), 0);
	ck_assert_int_eq(sb_ring_publish(&f.ring, buf, 100, 0), 0);
	sb_ring_reader_close(&fast);
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(block_policy_without_readers_never_blocks)
{
	struct sb_ring_config cfg =
	    config(4096, 1024, SB_RING_BROADCAST, SB_RING_BLOCK);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	unsigned char buf[1024];

	fixture_open(&f, &cfg);
	for (int i = 0; i < 1000; i++) {
		ck_assert_int_eq(sb_ring_publish(&f.ring, buf, 100, 0), 0);
	}
	/* An earliest subscriber still finds recent history in the ring. */
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_EARLIEST, &rd), 0);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), 100);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(reject_policy_fails_at_once)
{
	struct sb_ring_config cfg =
	    config(4096, 1024, SB_RING_BROADCAST, SB_RING_REJECT);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	struct sb_ring_header *hdr;
	unsigned char buf[1024];
	int count;

	fixture_open(&f, &cfg);
	hdr = f.data;
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &rd), 0);
	ck_assert_int_eq(fill_until_full(&f.ring, 100, &count), -EAGAIN);
	/* Even a caller willing to wait forever is refused. */
	ck_assert_int_eq(sb_ring_publish(&f.ring, buf, 100, -1), -EAGAIN);
	ck_assert_uint_eq(atomic_load(&hdr->stat_rejected), 2);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), 100);
	ck_assert_int_eq(sb_ring_publish(&f.ring, buf, 100, -1), 0);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(overwrite_policy_counts_exactly_what_was_lost)
{
	struct sb_ring_config cfg =
	    config(4096, 1024, SB_RING_BROADCAST, SB_RING_OVERWRITE);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	unsigned char buf[1024];
	uint32_t last = 0;
	int received = 0;
	ssize_t n;

	fixture_open(&f, &cfg);
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &rd), 0);
	for (uint32_t i = 1; i <= 1000; i++) {
		memcpy(buf, &i, sizeof(i));
		ck_assert_int_eq(sb_ring_publish(&f.ring, buf, 100, 0), 0);
	}
	while ((n = sb_ring_receive(&rd, buf, sizeof(buf), 0)) > 0) {
		uint32_t v;

		memcpy(&v, buf, sizeof(v));
		ck_assert_uint_gt(v, last); /* in order, no duplicates */
		last = v;
		received++;
	}
	ck_assert_int_eq(n, -EAGAIN);
	ck_assert_uint_eq(last, 1000); /* the newest survives */
	ck_assert_uint_eq(received + sb_ring_reader_lost(&rd), 1000);
	ck_assert_int_lt(received, 1000);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(overwrite_while_peeking_reports_stale)
{
	struct sb_ring_config cfg =
	    config(4096, 1024, SB_RING_BROADCAST, SB_RING_OVERWRITE);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	unsigned char buf[1024] = {0};
	const void *data;
	uint32_t len;

	fixture_open(&f, &cfg);
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &rd), 0);
	ck_assert_int_eq(sb_ring_publish(&f.ring, buf, 100, 0), 0);
	ck_assert_int_eq(sb_ring_peek(&rd, &data, &len, 0), 0);
	for (int i = 0; i < 100; i++) {
		ck_assert_int_eq(sb_ring_publish(&f.ring, buf, 100, 0), 0);
	}
	ck_assert_int_eq(sb_ring_release(&rd), -ESTALE);
	/* The stale message counts as lost at the next read. */
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), 100);
	ck_assert_uint_gt(sb_ring_reader_lost(&rd), 1);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

/* ---- broadcast and queue --------------------------------------------- */

START_TEST(broadcast_every_subscriber_sees_every_message)
{
	struct sb_ring_config cfg =
	    config(8192, 1024, SB_RING_BROADCAST, SB_RING_BLOCK);
	struct sbt_segs f;
	struct sb_ring_reader early, a, b;

	fixture_open(&f, &cfg);
	publish_pattern(&f.ring, 10, 1);
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_EARLIEST, &early), 0);
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &a),
			 0);
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &b),
			 0);
	publish_pattern(&f.ring, 20, 2);
	publish_pattern(&f.ring, 30, 3);
	receive_pattern(&early, 10, 1);
	receive_pattern(&early, 20, 2);
	receive_pattern(&early, 30, 3);
	receive_pattern(&a, 20, 2);
	receive_pattern(&a, 30, 3);
	receive_pattern(&b, 20, 2);
	receive_pattern(&b, 30, 3);
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 5, &a), -EINVAL);
	sb_ring_reader_close(&early);
	sb_ring_reader_close(&a);
	sb_ring_reader_close(&b);
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(queue_consumers_take_each_message_once)
{
	struct sb_ring_config cfg =
	    config(8192, 1024, SB_RING_QUEUE, SB_RING_BLOCK);
	struct sbt_segs f;
	struct sb_ring_reader a, b;
	unsigned char buf[64];
	int seen[200] = {0};
	const void *data;
	uint32_t len;

	fixture_open(&f, &cfg);
	/* Messages published before any consumer exists are kept. */
	for (int i = 0; i < 200; i++) {
		memcpy(buf, &i, sizeof(i));
		ck_assert_int_eq(sb_ring_publish(&f.ring, buf, sizeof(i), -1),
				 0);
	}
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &a), 0);
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &b), 0);
	for (int i = 0; i < 200; i++) {
		struct sb_ring_reader *rd = i % 3 == 0 ? &a : &b;
		int v;

		if (i % 5 == 0) {
			ck_assert_int_eq(sb_ring_peek(rd, &data, &len, 0), 0);
			memcpy(&v, data, sizeof(v));
			ck_assert_int_eq(sb_ring_release(rd), 0);
		} else {
			ck_assert_int_eq(
			    sb_ring_receive(rd, buf, sizeof(buf), 0),
			    (ssize_t)sizeof(v));
			memcpy(&v, buf, sizeof(v));
		}
		ck_assert_int_eq(v, i); /* queue order, each once */
		seen[v]++;
	}
	for (int i = 0; i < 200; i++) {
		ck_assert_int_eq(seen[i], 1);
	}
	ck_assert_int_eq(sb_ring_receive(&a, buf, sizeof(buf), 0), -EAGAIN);
	ck_assert_int_eq(sb_ring_receive(&b, buf, sizeof(buf), 0), -EAGAIN);
	sb_ring_reader_close(&a);
	sb_ring_reader_close(&b);
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(queue_without_consumers_blocks_when_full)
{
	struct sb_ring_config cfg =
	    config(4096, 1024, SB_RING_QUEUE, SB_RING_BLOCK);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	unsigned char buf[1024];
	int count;

	fixture_open(&f, &cfg);
	ck_assert_int_eq(fill_until_full(&f.ring, 100, &count), -EAGAIN);
	ck_assert_int_eq(count, 32);
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &rd), 0);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), 100);
	ck_assert_int_eq(sb_ring_publish(&f.ring, buf, 100, 0), 0);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

/* Receives one 4-byte message and returns the int in it. */
static int receive_int(struct sb_ring_reader *rd)
{
	unsigned char buf[64];
	int v;

	ck_assert_int_eq(sb_ring_receive(rd, buf, sizeof(buf), 0),
			 (ssize_t)sizeof(v));
	memcpy(&v, buf, sizeof(v));
	return v;
}

static void publish_ints(struct sb_ring *ring, int from, int to)
{
	for (int i = from; i < to; i++) {
		ck_assert_int_eq(sb_ring_publish(ring, &i, sizeof(i), 0), 0);
	}
}

/* What a hostile consumer can write in the control segment: the queue's
 * cursor and expected seq, set back to the start. */
static void set_queue_back(struct sbt_segs *f)
{
	atomic_store(&f->ring.shm_ctl->queue_cursor,
		     atomic_load(&f->ring.shm_hdr->writer_oldest));
	atomic_store(&f->ring.shm_ctl->queue_expected_seq, 0);
}

/*
 * A queue position set back in the control segment gives no consumer a
 * message again: the consumers' claims in their own slots say what was
 * taken, and writers reclaim past it too.
 */
/*
 * A claim that a hostile consumer writes in its slot and takes back again
 * leaves no queue stuck. A consumer that saw the claim goes on passing
 * over the records below it (they were taken, as far as it knows); the
 * writer must be able to reclaim those records, or the ring fills with
 * records nobody will take and both sides wait for ever (seen once in the
 * tamper suite: consumers got nothing, the publisher stalled).
 */
START_TEST(a_claim_taken_back_stalls_no_queue)
{
	struct sb_ring_config cfg =
	    config(4096, 64, SB_RING_QUEUE, SB_RING_BLOCK);
	struct sbt_segs f;
	struct sb_ring_reader a;
	unsigned char buf[64];
	int count, got = 0;

	fixture_open(&f, &cfg);
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &a), 0);
	publish_ints(&f.ring, 0, 1);
	/* Believable: within a ring's worth of the next seq (1 + 4096 / 16),
	 * and beyond what the ring holds of 4-byte messages (128). */
	atomic_store(&f.ring.shm_slots[3].queue_claim, 250);
	ck_assert_int_eq(sb_ring_receive(&a, buf, sizeof(buf), 0), -EAGAIN);
	atomic_store(&f.ring.shm_slots[3].queue_claim, 0);
	/* The ring fills (block: no waiting with timeout 0); then the
	 * consumer, passing over what it takes for taken, must reach a
	 * message, and until it does the writer must find room again. */
	ck_assert_int_eq(fill_until_full(&f.ring, 4, &count), -EAGAIN);
	ck_assert_int_gt(count, 0);
	for (int i = 0; i < 400 && !got; i++) {
		ssize_t n = sb_ring_receive(&a, buf, sizeof(buf), 0);

		if (n == 4) {
			got = 1;
		} else {
			ck_assert_int_eq(n, -EAGAIN);
			ck_assert_int_eq(
			    sb_ring_publish(&f.ring, &i, sizeof(i), 0), 0);
		}
	}
	ck_assert(got);
	sb_ring_reader_close(&a);
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(a_queue_set_back_gives_nothing_twice)
{
	struct sb_ring_config cfg =
	    config(4096, 64, SB_RING_QUEUE, SB_RING_REJECT);
	struct sbt_segs f;
	struct sb_ring_reader a, b;
	int count;

	fixture_open(&f, &cfg);
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &a), 0);
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &b), 0);
	publish_ints(&f.ring, 0, 10);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(receive_int(&a), i);
	}
	set_queue_back(&f);
	ck_assert_int_eq(receive_int(&b), 3);
	ck_assert_int_eq(receive_int(&a), 4);
	/* Nothing claimed beyond what was published counts (slot 3 holds
	 * no consumer; a claim counts whether or not its slot is in use). */
	atomic_store(&f.ring.shm_slots[3].queue_claim, UINT64_MAX);
	set_queue_back(&f);
	ck_assert_int_eq(receive_int(&b), 5);
	/* Everything taken, then set back: writers find the whole ring
	 * free again (reject: no waiting). */
	for (int i = 6; i < 10; i++) {
		ck_assert_int_eq(receive_int(i % 2 ? &a : &b), i);
	}
	set_queue_back(&f);
	ck_assert_int_eq(fill_until_full(&f.ring, 4, &count), -EAGAIN);
	ck_assert_int_eq(count, 4096 / 32);
	ck_assert_uint_eq(atomic_load(&f.ring.shm_ctl->queue_lost), 0);
	sb_ring_reader_close(&a);
	sb_ring_reader_close(&b);
	sbt_segs_destroy(&f);
}
END_TEST

/*
 * With slot segments, a consumer that leaves takes its claim with its
 * slot: the broker keeps it in the header (sb_ring_keep_claim()) before it
 * drops the slot, so what it took still counts.
 */
START_TEST(a_departed_consumers_claim_is_kept)
{
	struct sb_ring_config cfg =
	    config(4096, 64, SB_RING_QUEUE, SB_RING_BLOCK);
	struct sb_ring_slot *slots[2];
	struct sb_ring_slot_map map = {
	    .lock = PTHREAD_MUTEX_INITIALIZER, .current = 1, .count = 4};
	struct sb_ring_slot *table[4] = {NULL};
	struct sbt_segs f;
	struct sb_ring_reader a, b;

	cfg.slot_home = SB_RING_SLOTS_SEGMENTS;
	fixture_open(&f, &cfg);
	for (int i = 0; i < 2; i++) {
		slots[i] = sbt_shared_zeroed(SB_RING_SLOT_SEGMENT_SIZE);
		table[i] = slots[i];
	}
	map.slots = table;
	sb_ring_set_slot_map(&f.ring, &map);
	ck_assert_int_eq(sb_ring_reader_open_slot(&f.ring, slots[0], 0, 0, &a),
			 0);
	ck_assert_int_eq(sb_ring_reader_open_slot(&f.ring, slots[1], 1, 0, &b),
			 0);
	publish_ints(&f.ring, 0, 6);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(receive_int(&a), i);
	}
	ck_assert_int_eq(sb_ring_reader_close(&a), 0);
	sb_ring_keep_claim(&f.ring, slots[0]);
	table[0] = NULL; /* the broker drops it; writers and b see it gone */
	ck_assert_uint_eq(atomic_load(&f.ring.shm_hdr->queue_taken), 3);
	set_queue_back(&f);
	ck_assert_int_eq(receive_int(&b), 3);
	sb_ring_reader_close(&b);
	munmap(slots[0], SB_RING_SLOT_SEGMENT_SIZE);
	munmap(slots[1], SB_RING_SLOT_SEGMENT_SIZE);
	sbt_segs_destroy(&f);
}
END_TEST

/*
 * A consumer that keeps the queue lock (here: a peek it does not release)
 * keeps the others waiting no longer than SB_RING_QUEUE_HOLD_MS: another
 * takes the lock over and the message; the peek's late release then finds
 * the message taken (-ESTALE) instead of taking it a second time.
 */
START_TEST(a_held_queue_lock_is_taken_over_and_nothing_is_taken_twice)
{
	struct sb_ring_config cfg =
	    config(4096, 64, SB_RING_QUEUE, SB_RING_BLOCK);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	int ready[2], go[2];
	char c;
	pid_t pid;

	fixture_open(&f, &cfg);
	publish_ints(&f.ring, 0, 2);
	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(go), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct sb_ring_reader mine;
		const void *data;
		uint32_t len;

		if (sb_ring_reader_open(&f.ring, 0, &mine) != 0 ||
		    sb_ring_peek(&mine, &data, &len, 0) != 0 ||
		    write(ready[1], "p", 1) != 1 || read(go[0], &c, 1) != 1) {
			_exit(1);
		}
		_exit(sb_ring_release(&mine) == -ESTALE ? 0 : 2);
	}
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &rd), 0);
	{
		unsigned char buf[64];
		int v;

		ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 10000),
				 (ssize_t)sizeof(v));
		memcpy(&v, buf, sizeof(v));
		ck_assert_int_eq(v, 0);
	}
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	ck_assert_int_eq(sbt_wait(pid), 0);
	ck_assert_int_eq(receive_int(&rd), 1);
	{
		unsigned char buf[64];

		ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0),
				 -EAGAIN);
	}
	sb_ring_reader_close(&rd);
	for (int i = 0; i < 2; i++) {
		close(ready[i]);
		close(go[i]);
	}
	sbt_segs_destroy(&f);
}
END_TEST

/*
 * Writers reclaim past the queue's cursor only over records the claims say
 * were taken, never over a PAD the cursor stands on: the cursor stays at or
 * after the oldest record, or the next take would read whatever a later
 * lap wrote at its offset (the crash matrix found that).
 */
START_TEST(writers_keep_the_pad_at_the_queue_cursor)
{
	struct sb_ring_config cfg =
	    config(4096, 64, SB_RING_QUEUE, SB_RING_REJECT);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	unsigned char buf[64], msg[32] = {0};
	int count;

	fixture_open(&f, &cfg);
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &rd), 0);
	/* 85 records of 48 bytes end at 4080: a PAD comes next. */
	for (int i = 0; i < 85; i++) {
		ck_assert_int_eq(sb_ring_publish(&f.ring, msg, sizeof(msg), 0),
				 0);
		ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0),
				 (ssize_t)sizeof(msg));
	}
	ck_assert_uint_eq(atomic_load(&f.ring.shm_ctl->queue_cursor), 4080);
	ck_assert_int_eq(fill_until_full(&f.ring, sizeof(msg), &count),
			 -EAGAIN);
	ck_assert_int_gt(count, 0);
	ck_assert_uint_le(atomic_load(&f.ring.shm_hdr->writer_oldest),
			  atomic_load(&f.ring.shm_ctl->queue_cursor));
	for (int i = 0; i < count; i++) {
		ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0),
				 (ssize_t)sizeof(msg));
	}
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EAGAIN);
	ck_assert_uint_eq(sb_ring_reader_lost(&rd), 0);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

/* ---- slots ----------------------------------------------------------- */

START_TEST(slots_run_out_and_come_back)
{
	struct sb_ring_config cfg =
	    config(4096, 1024, SB_RING_BROADCAST, SB_RING_BLOCK);
	struct sbt_segs f;
	struct sb_ring_reader rd[5];
	unsigned char buf[1024];
	int count;

	fixture_open(&f, &cfg);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &rd[i]), 0);
	}
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &rd[4]), -EUSERS);
	/* Reaping a reader (as the broker does for a dead one) frees its
	 * slot and everything it held back. */
	ck_assert_int_eq(fill_until_full(&f.ring, 100, &count), -EAGAIN);
	for (int i = 0; i < 3; i++) {
		for (int j = 0; j < count; j++) {
			ck_assert_int_eq(
			    sb_ring_receive(&rd[i], buf, sizeof(buf), 0), 100);
		}
	}
	ck_assert_int_eq(sb_ring_publish(&f.ring, buf, 100, 0), -EAGAIN);
	ck_assert_int_eq(sb_ring_slot_reap(&f.ring, rd[3].slot), 0);
	ck_assert_int_eq(sb_ring_slot_reap(&f.ring, rd[3].slot), -ENOENT);
	ck_assert_int_eq(sb_ring_slot_reap(&f.ring, 4), -EINVAL);
	ck_assert_int_eq(sb_ring_publish(&f.ring, buf, 100, 0), 0);
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &rd[4]), 0);
	/* The reaped reader's own close is harmless. */
	ck_assert_int_eq(sb_ring_reader_close(&rd[3]), 0);
	for (int i = 0; i < 3; i++) {
		sb_ring_reader_close(&rd[i]);
	}
	sb_ring_reader_close(&rd[4]);
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(bogus_cursor_in_a_slot_holds_nothing_back)
{
	struct sb_ring_config cfg =
	    config(4096, 1024, SB_RING_BROADCAST, SB_RING_BLOCK);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	unsigned char buf[1024] = {0};

	fixture_open(&f, &cfg);
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &rd), 0);
	atomic_store(&f.ring.shm_slots[rd.slot].sub_cursor, 1ull << 60);
	for (int i = 0; i < 200; i++) {
		ck_assert_int_eq(sb_ring_publish(&f.ring, buf, 100, 0), 0);
	}
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

/* ---- waiting --------------------------------------------------------- */

START_TEST(receive_times_out_and_wakes_across_processes)
{
	struct sb_ring_config cfg =
	    config(4096, 1024, SB_RING_BROADCAST, SB_RING_BLOCK);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	struct sb_ring_ctl *ctl;
	unsigned char buf[64];
	uint32_t seq_before;
	pid_t child;

	fixture_open(&f, &cfg);
	ctl = f.ctl;
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &rd), 0);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 30),
			 -ETIMEDOUT);
	ck_assert_uint_eq(atomic_load(&ctl->data_waiters), 0);
	/* No sleeper: publishing must not touch the futex word. */
	seq_before = atomic_load(&ctl->data_seq);
	publish_pattern(&f.ring, 8, 1);
	ck_assert_uint_eq(atomic_load(&ctl->data_seq), seq_before);
	receive_pattern(&rd, 8, 1);

	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		/* Sleeps (no timeout) until the parent publishes. */
		ssize_t n = sb_ring_receive(&rd, buf, sizeof(buf), -1);

		_exit(n == 12 && sbt_check_pattern(buf, 12, 2) ? 0 : 1);
	}
	/* Publish only once the child sleeps, so the wake path is taken. */
	while (atomic_load(&ctl->data_waiters) == 0) {
		usleep(1000);
	}
	publish_pattern(&f.ring, 12, 2);
	ck_assert_int_eq(sbt_wait(child), 0);
	ck_assert_uint_ne(atomic_load(&ctl->data_seq), seq_before);
	ck_assert_uint_eq(atomic_load(&ctl->data_waiters), 0);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

/*
 * A writer that waits without sleeping is told once per sixteenth of the
 * ring, not once per message; a sleeping one at every message.
 */
START_TEST(spinning_writers_are_told_once_per_chunk)
{
	struct sb_ring_config cfg =
	    config(4096, 1024, SB_RING_BROADCAST, SB_RING_BLOCK);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	struct sb_ring_ctl *ctl;
	unsigned char buf[1024] = {0};
	uint32_t seq;

	fixture_open(&f, &cfg);
	ctl = f.ctl;
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &rd), 0);
	for (int i = 0; i < 9; i++) {
		ck_assert_int_eq(sb_ring_publish(&f.ring, buf, 100, 0), 0);
	}
	/* As a spinning writer looks: its bit in space_waiters only. */
	atomic_store(&f.ring.shm_wctl->space_waiters, 1);
	seq = atomic_load(&ctl->space_seq);
	/* Records are 128 bytes, a chunk 256: 0 -> 128 stays in chunk 0. */
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), 100);
	ck_assert_uint_eq(atomic_load(&ctl->space_seq), seq);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), 100);
	ck_assert_uint_eq(atomic_load(&ctl->space_seq), seq + 1);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), 100);
	ck_assert_uint_eq(atomic_load(&ctl->space_seq), seq + 1);
	/* Asleep: told at every message. */
	atomic_store(&f.ring.shm_wctl->space_sleepers, 1);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), 100);
	ck_assert_uint_eq(atomic_load(&ctl->space_seq), seq + 2);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), 100);
	ck_assert_uint_eq(atomic_load(&ctl->space_seq), seq + 3);
	/* Spinning again: 640 -> 768 crosses into chunk 3, 768 -> 896 does
	 * not, 896 -> 1024 does; 1024 -> 1152 does not, but catches up
	 * with the tail, which tells the writer too. */
	atomic_store(&f.ring.shm_wctl->space_sleepers, 0);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), 100);
	ck_assert_uint_eq(atomic_load(&ctl->space_seq), seq + 4);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), 100);
	ck_assert_uint_eq(atomic_load(&ctl->space_seq), seq + 4);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), 100);
	ck_assert_uint_eq(atomic_load(&ctl->space_seq), seq + 5);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), 100);
	ck_assert_uint_eq(atomic_load(&ctl->space_seq), seq + 6);
	atomic_store(&f.ring.shm_wctl->space_waiters, 0);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(blocked_writer_wakes_when_reader_consumes)
{
	struct sb_ring_config cfg =
	    config(4096, 1024, SB_RING_BROADCAST, SB_RING_BLOCK);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	struct sb_ring_header *hdr;
	unsigned char buf[1024] = {0};
	int count;
	pid_t child;

	fixture_open(&f, &cfg);
	hdr = f.data;
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &rd), 0);
	ck_assert_int_eq(fill_until_full(&f.ring, 100, &count), -EAGAIN);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		_exit(sb_ring_publish(&f.ring, buf, 100, -1) == 0 ? 0 : 1);
	}
	while (atomic_load(&f.ring.shm_wctl->space_waiters) == 0) {
		usleep(1000);
	}
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), 100);
	ck_assert_int_eq(sbt_wait(child), 0);
	ck_assert_uint_ge(atomic_load(&hdr->stat_waits), 1);
	ck_assert_uint_eq(atomic_load(&f.ring.shm_wctl->space_waiters), 0);
	ck_assert_uint_eq(atomic_load(&f.ring.shm_wctl->space_sleepers), 0);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

/* ---- a writer's death seen by a read-only subscriber ------------------- */

/*
 * Forks a subscriber that maps the data segment read-only (as a pure
 * subscriber does) and opens a reader at `start`; it then waits for a
 * byte on `go`, receives one message and exits 0 if it was message
 * `want` (publish_pattern's) with nothing lost.
 */
static pid_t read_only_reader(struct sbt_segs *f, int start, int ready, int go,
			      uint32_t want)
{
	pid_t child = fork();

	ck_assert_int_ge(child, 0);
	if (child == 0) {
		struct sb_ring_reader rd;
		unsigned char buf[64];
		char c;

		if (mprotect(f->data, f->data_size, PROT_READ) < 0 ||
		    sb_ring_reader_open(&f->ring, start, &rd) != 0 ||
		    write(ready, "r", 1) != 1 || read(go, &c, 1) != 1) {
			_exit(2);
		}
		_exit(sb_ring_receive(&rd, buf, sizeof(buf), 0) == 8 &&
			      sbt_check_pattern(buf, 8, want) &&
			      sb_ring_reader_lost(&rd) == 0
			  ? 0
			  : 1);
	}
	return child;
}

/* Runs read_only_reader() to the end: `publish` runs once it has opened. */
static int with_read_only_reader(struct sbt_segs *f, int start, uint32_t want,
				 uint32_t publish)
{
	int ready[2], go[2];
	char c;
	pid_t child;
	int st;

	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(go), 0);
	child = read_only_reader(f, start, ready[1], go[0], want);
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	if (publish != 0) {
		publish_pattern(&f->ring, 8, publish);
	}
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	st = sbt_wait(child);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
	return st;
}

START_TEST(a_subscriber_neither_takes_nor_repairs_a_dead_writers_lock)
{
	struct sb_ring_config cfg =
	    config(4096, 1024, SB_RING_BROADCAST, SB_RING_BLOCK);
	struct sbt_segs f;
	struct sb_ring_header *hdr;
	struct sb_ring_reader rd;
	pid_t writer;

	fixture_open(&f, &cfg);
	hdr = f.data;
	publish_pattern(&f.ring, 8, 1);
	writer = fork();
	ck_assert_int_ge(writer, 0);
	if (writer == 0) {
		struct sb_ring_claim claim;

		if (sb_ring_claim(&f.ring, 16, &claim, 0) == 0) {
			memset(claim.data, 0xAB, 16);
			raise(SIGKILL);
		}
		_exit(1);
	}
	ck_assert_int_eq(sbt_wait(writer), -SIGKILL);
	/* The subscriber joins past the dead writer's lock without taking
	 * it (it could not: the lock is in the data segment, read-only to
	 * it) and reads the message committed before the death. */
	ck_assert_int_eq(
	    with_read_only_reader(&f, SB_RING_START_EARLIEST, 1, 0), 0);
	ck_assert_uint_ne(atomic_load(&f.ring.shm_wctl->writer_lock.owner), 0);
	ck_assert_uint_eq(atomic_load(&hdr->stat_recoveries), 0);
	/* The next writer repairs, and nothing of the dead claim shows. */
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_EARLIEST, &rd), 0);
	publish_pattern(&f.ring, 9, 2);
	ck_assert_uint_eq(atomic_load(&f.ring.shm_wctl->writer_repair), 0);
	ck_assert_uint_eq(atomic_load(&hdr->stat_recoveries), 1);
	receive_pattern(&rd, 8, 1);
	receive_pattern(&rd, 9, 2);
	ck_assert_uint_eq(sb_ring_reader_lost(&rd), 0);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

/*
 * A writer that dies between storing the tail and writer_next_seq leaves
 * next_seq one behind (simulated: the window is a few instructions). A
 * subscriber joining at the latest position must not take the stale value
 * for the next record's seq: it takes the seq of the first record it reads,
 * and counts nothing lost.
 */
START_TEST(a_stale_next_seq_does_not_mislead_a_joining_subscriber)
{
	struct sb_ring_config cfg =
	    config(4096, 1024, SB_RING_BROADCAST, SB_RING_BLOCK);
	struct sbt_segs f;
	struct sb_ring_header *hdr;

	fixture_open(&f, &cfg);
	hdr = f.data;
	publish_pattern(&f.ring, 8, 1);
	publish_pattern(&f.ring, 8, 2);
	atomic_store(&hdr->writer_next_seq, 1); /* stale by one */
	atomic_store(&f.ring.shm_wctl->writer_repair, 1);
	ck_assert_int_eq(with_read_only_reader(&f, SB_RING_START_LATEST, 3, 3),
			 0);
	ck_assert_uint_eq(atomic_load(&hdr->writer_next_seq), 3);
	sbt_segs_destroy(&f);
}
END_TEST

/* ---- corruption ------------------------------------------------------ */

START_TEST(corrupted_record_gives_ebadmsg)
{
	struct sb_ring_config cfg =
	    config(4096, 1024, SB_RING_BROADCAST, SB_RING_BLOCK);
	struct sbt_segs f;
	struct sb_ring_reader rd;
	struct sb_ring_record *rec;
	unsigned char buf[1024];
	unsigned char *area;
	uint64_t seq;

	fixture_open(&f, &cfg);
	area = (unsigned char *)f.data + SB_RING_HEADER_SIZE;
	rec = (struct sb_ring_record *)area;
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &rd), 0);
	publish_pattern(&f.ring, 40, 1);
	rec->type = 99;
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EBADMSG);
	rec->type = SB_REC_DATA;
	rec->len = 2000; /* over max_message */
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EBADMSG);
	rec->len = 1000; /* runs past the tail */
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EBADMSG);
	rec->type = SB_REC_PAD; /* a PAD must reach the end exactly */
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EBADMSG);
	rec->type = SB_REC_DATA;
	rec->len = 40;
	receive_pattern(&rd, 40, 1);
	/* A seq lower than one already delivered: refused, not delivered,
	 * and the record is still there once it is sane again. */
	publish_pattern(&f.ring, 40, 2);
	rec = (struct sb_ring_record *)(area + 64);
	seq = rec->seq;
	rec->seq = 0;
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EBADMSG);
	rec->seq = seq;
	receive_pattern(&rd, 40, 2);
	/* A tail behind the reader's cursor is corruption, not "nothing new",
	 * even for a poll that does not wait. */
	atomic_store(&((struct sb_ring_header *)f.data)->writer_tail, 64);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EBADMSG);
	atomic_store(&((struct sb_ring_header *)f.data)->writer_tail, 128);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EAGAIN);
	/* A tail beyond the capacity from the reader's cursor. */
	atomic_store(&((struct sb_ring_header *)f.data)->writer_tail,
		     1ull << 40);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EBADMSG);
	/* Writers refuse a header whose positions disagree. */
	ck_assert_int_eq(sb_ring_publish(&f.ring, buf, 10, 0), -EBADMSG);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&f);
}
END_TEST

Suite *ring_suite(void)
{
	Suite *s = suite_create("ring");
	TCase *tc;

	tc = tcase_create("geometry");
	tcase_add_test(tc, layout_rejects_bad_geometry);
	tcase_add_test(tc, attach_checks_header);
	tcase_add_test(tc, format_rejects_small_segments);
	suite_add_tcase(s, tc);

	tc = tcase_create("copy_and_zero_copy");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, publish_and_receive_round_trip);
	tcase_add_test(tc, claim_commit_and_abort);
	tcase_add_test(tc, peek_and_release);
	tcase_add_test(tc, batch_publishes_in_order_all_or_nothing_checked);
	tcase_add_test(tc, batch_over_a_full_ring);
	suite_add_tcase(s, tc);

	tc = tcase_create("wrap");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, wrap_at_every_offset_near_the_end);
	suite_add_tcase(s, tc);

	tc = tcase_create("overflow");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, block_policy_waits_for_slowest_reader);
	tcase_add_test(tc, block_policy_without_readers_never_blocks);
	tcase_add_test(tc, reject_policy_fails_at_once);
	tcase_add_test(tc, overwrite_policy_counts_exactly_what_was_lost);
	tcase_add_test(tc, overwrite_while_peeking_reports_stale);
	suite_add_tcase(s, tc);

	tc = tcase_create("modes");
	tcase_add_test(tc, broadcast_every_subscriber_sees_every_message);
	tcase_add_test(tc, queue_consumers_take_each_message_once);
	tcase_add_test(tc, queue_without_consumers_blocks_when_full);
	tcase_add_test(tc, a_queue_set_back_gives_nothing_twice);
	tcase_add_test(tc, a_claim_taken_back_stalls_no_queue);
	tcase_add_test(tc, a_departed_consumers_claim_is_kept);
	tcase_add_test(tc, writers_keep_the_pad_at_the_queue_cursor);
	tcase_add_test(
	    tc, a_held_queue_lock_is_taken_over_and_nothing_is_taken_twice);
	suite_add_tcase(s, tc);

	tc = tcase_create("slots");
	tcase_add_test(tc, slots_run_out_and_come_back);
	tcase_add_test(tc, bogus_cursor_in_a_slot_holds_nothing_back);
	suite_add_tcase(s, tc);

	tc = tcase_create("waiting");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, receive_times_out_and_wakes_across_processes);
	tcase_add_test(tc, blocked_writer_wakes_when_reader_consumes);
	tcase_add_test(tc, spinning_writers_are_told_once_per_chunk);
	suite_add_tcase(s, tc);

	tc = tcase_create("writer_death");
	tcase_set_timeout(tc, 30);
	tcase_add_test(
	    tc, a_subscriber_neither_takes_nor_repairs_a_dead_writers_lock);
	tcase_add_test(tc,
		       a_stale_next_seq_does_not_mislead_a_joining_subscriber);
	suite_add_tcase(s, tc);

	tc = tcase_create("corruption");
	tcase_add_test(tc, corrupted_record_gives_ebadmsg);
	suite_add_tcase(s, tc);
	return s;
}
