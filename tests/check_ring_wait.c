/*
 * check_ring_wait.c - unit tests of the ring functions a watcher thread uses
 * to sleep on behalf of a reader (sb_ring_wait_readable, sb_ring_wake_readers,
 * sb_ring_reader_position): they wake on a commit, stop promptly on request,
 * and keep the shared sleeper counts exact even when the slot is reaped.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "proto/ring.h"
#include "tests/suites.h"
#include "tests/testutil.h"

/* Bound on every wait in this file: long enough never to fire in a healthy
 * run, short enough that a hang fails the test rather than the runner. */
#define WAIT_BOUND_MS 10000

struct fixture {
	void *data;
	void *ctl;
	uint64_t data_size;
	uint64_t ctl_size;
	struct sb_ring ring;
};

static void fixture_open(struct fixture *f, uint32_t mode)
{
	struct sb_ring_config cfg = {
	    .capacity = 4096,
	    .max_message = 1024,
	    .slot_count = 4,
	    .mode = mode,
	    .overflow = SB_RING_BLOCK,
	};

	ck_assert_int_eq(sb_ring_layout(&cfg, &f->data_size, &f->ctl_size), 0);
	f->data = mmap(NULL, f->data_size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	f->ctl = mmap(NULL, f->ctl_size, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(f->data, MAP_FAILED);
	ck_assert_ptr_ne(f->ctl, MAP_FAILED);
	ck_assert_int_eq(
	    sb_ring_format(f->data, f->data_size, f->ctl, f->ctl_size, &cfg),
	    0);
	ck_assert_int_eq(sb_ring_attach(&f->ring, f->data, f->data_size, f->ctl,
					f->ctl_size),
			 0);
}

static void fixture_close(struct fixture *f)
{
	munmap(f->data, f->data_size);
	munmap(f->ctl, f->ctl_size);
}

static uint32_t data_waiters(const struct fixture *f)
{
	return atomic_load_explicit(&f->ring.shm_ctl->data_waiters,
				    memory_order_seq_cst);
}

static uint32_t sleeping(const struct fixture *f, uint32_t slot)
{
	return atomic_load_explicit(&f->ring.shm_slots[slot].sub_sleeping,
				    memory_order_seq_cst);
}

/* Polls (bounded) until `slot` has `n` sleepers; returns 1 if it did. */
static int wait_sleepers(const struct fixture *f, uint32_t slot, uint32_t n)
{
	for (int i = 0; i < WAIT_BOUND_MS; i++) {
		if (sleeping(f, slot) == n) {
			return 1;
		}
		usleep(1000);
	}
	return 0;
}

/* A watcher thread: waits once and records the result. */
struct watch {
	pthread_t thread;
	struct sb_ring_reader view;
	uint64_t pos;
	_Atomic uint32_t stop;
	int result;
};

static void *watch_main(void *arg)
{
	struct watch *w = arg;

	w->result =
	    sb_ring_wait_readable(&w->view, w->pos, &w->stop, WAIT_BOUND_MS);
	return NULL;
}

static void watch_start(struct watch *w, const struct sb_ring_reader *rd)
{
	memset(w, 0, sizeof(*w));
	w->view = *rd;
	w->pos = sb_ring_reader_position(rd);
	ck_assert_int_eq(pthread_create(&w->thread, NULL, watch_main, w), 0);
}

START_TEST(empty_does_not_wait_with_timeout_zero)
{
	struct fixture f;
	struct sb_ring_reader rd;

	fixture_open(&f, SB_RING_BROADCAST);
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	ck_assert_int_eq(
	    sb_ring_wait_readable(&rd, sb_ring_reader_position(&rd), NULL, 0),
	    -EAGAIN);
	ck_assert_int_eq(sb_ring_publish(&f.ring, "x", 1, 0), 0);
	ck_assert_int_eq(sb_ring_wait_readable(&rd, 0, NULL, 0), 0);
	ck_assert_uint_eq(data_waiters(&f), 0);
	ck_assert_int_eq(sb_ring_reader_close(&rd), 0);
	fixture_close(&f);
}
END_TEST

START_TEST(times_out_when_nothing_comes)
{
	struct fixture f;
	struct sb_ring_reader rd;

	fixture_open(&f, SB_RING_BROADCAST);
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	ck_assert_int_eq(sb_ring_wait_readable(&rd, 0, NULL, 20), -ETIMEDOUT);
	ck_assert_uint_eq(data_waiters(&f), 0);
	ck_assert_uint_eq(sleeping(&f, rd.slot), 0);
	ck_assert_int_eq(sb_ring_reader_close(&rd), 0);
	fixture_close(&f);
}
END_TEST

START_TEST(bad_arguments)
{
	struct fixture f;
	struct sb_ring_reader rd;

	fixture_open(&f, SB_RING_BROADCAST);
	ck_assert_int_eq(sb_ring_wait_readable(NULL, 0, NULL, 0), -EINVAL);
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	ck_assert_int_eq(sb_ring_wait_readable(&rd, 0, NULL, -2), -EINVAL);
	ck_assert_int_eq(sb_ring_reader_close(&rd), 0);
	ck_assert_int_eq(sb_ring_wait_readable(&rd, 0, NULL, 0), -EINVAL);
	ck_assert_uint_eq(sb_ring_reader_position(NULL), 0);
	fixture_close(&f);
}
END_TEST

START_TEST(woken_by_a_commit)
{
	struct fixture f;
	struct sb_ring_reader rd;
	struct watch w;

	fixture_open(&f, SB_RING_BROADCAST);
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	watch_start(&w, &rd);
	ck_assert(wait_sleepers(&f, rd.slot, 1));
	ck_assert_uint_eq(data_waiters(&f), 1);
	ck_assert_int_eq(sb_ring_publish(&f.ring, "hello", 5, 0), 0);
	pthread_join(w.thread, NULL);
	ck_assert_int_eq(w.result, 0);
	ck_assert_uint_eq(data_waiters(&f), 0);
	ck_assert_uint_eq(sleeping(&f, rd.slot), 0);
	ck_assert_int_eq(sb_ring_reader_close(&rd), 0);
	fixture_close(&f);
}
END_TEST

START_TEST(stop_is_prompt)
{
	struct fixture f;
	struct sb_ring_reader rd;
	struct watch w;

	fixture_open(&f, SB_RING_BROADCAST);
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	watch_start(&w, &rd);
	ck_assert(wait_sleepers(&f, rd.slot, 1));
	atomic_store_explicit(&w.stop, 1, memory_order_seq_cst);
	sb_ring_wake_readers(&f.ring);
	pthread_join(w.thread, NULL);
	/* -ECANCELED, not -ETIMEDOUT: the stop ended the wait. */
	ck_assert_int_eq(w.result, -ECANCELED);
	ck_assert_uint_eq(data_waiters(&f), 0);
	ck_assert_int_eq(sb_ring_reader_close(&rd), 0);
	fixture_close(&f);
}
END_TEST

START_TEST(stop_set_before_the_wait)
{
	struct fixture f;
	struct sb_ring_reader rd;
	_Atomic uint32_t stop = 1;

	fixture_open(&f, SB_RING_BROADCAST);
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	ck_assert_int_eq(sb_ring_wait_readable(&rd, 0, &stop, WAIT_BOUND_MS),
			 -ECANCELED);
	ck_assert_int_eq(sb_ring_reader_close(&rd), 0);
	fixture_close(&f);
}
END_TEST

/* A reader blocked in receive and its watcher sleep on the same slot. */
struct blocked_reader {
	pthread_t thread;
	struct sb_ring_reader *rd;
	ssize_t result;
};

static void *receive_main(void *arg)
{
	struct blocked_reader *b = arg;
	char buf[16];

	b->result = sb_ring_receive(b->rd, buf, sizeof(buf), WAIT_BOUND_MS);
	return NULL;
}

START_TEST(reader_and_watcher_share_a_slot)
{
	struct fixture f;
	struct sb_ring_reader rd;
	struct watch w;
	struct blocked_reader b = {0};

	fixture_open(&f, SB_RING_BROADCAST);
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	watch_start(&w, &rd);
	b.rd = &rd;
	ck_assert_int_eq(pthread_create(&b.thread, NULL, receive_main, &b), 0);
	ck_assert(wait_sleepers(&f, rd.slot, 2));
	ck_assert_uint_eq(data_waiters(&f), 2);
	ck_assert_int_eq(sb_ring_publish(&f.ring, "abc", 3, 0), 0);
	pthread_join(w.thread, NULL);
	pthread_join(b.thread, NULL);
	ck_assert_int_eq(w.result, 0);
	ck_assert_int_eq(b.result, 3);
	ck_assert_uint_eq(data_waiters(&f), 0);
	ck_assert_uint_eq(sleeping(&f, rd.slot), 0);
	ck_assert_int_eq(sb_ring_reader_close(&rd), 0);
	fixture_close(&f);
}
END_TEST

START_TEST(reaped_slot_gives_back_once)
{
	struct fixture f;
	struct sb_ring_reader rd;
	struct watch w;

	fixture_open(&f, SB_RING_BROADCAST);
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	watch_start(&w, &rd);
	ck_assert(wait_sleepers(&f, rd.slot, 1));
	/* The broker reaps the slot while the watcher sleeps: the reaper takes
	 * the count, so the watcher must not give it back a second time. */
	ck_assert_int_eq(sb_ring_slot_reap(&f.ring, rd.slot), 0);
	ck_assert_uint_eq(data_waiters(&f), 0);
	ck_assert_int_eq(sb_ring_publish(&f.ring, "x", 1, 0), 0);
	pthread_join(w.thread, NULL);
	ck_assert_int_eq(w.result, 0);
	ck_assert_uint_eq(data_waiters(&f), 0);
	ck_assert_uint_eq(sleeping(&f, rd.slot), 0);
	fixture_close(&f);
}
END_TEST

START_TEST(position_follows_the_cursor)
{
	struct fixture f;
	struct sb_ring_reader rd, q1, q2;
	char buf[16];

	fixture_open(&f, SB_RING_BROADCAST);
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	ck_assert_uint_eq(sb_ring_reader_position(&rd), 0);
	ck_assert_int_eq(sb_ring_publish(&f.ring, "abcd", 4, 0), 0);
	ck_assert_uint_eq(sb_ring_reader_position(&rd), 0);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), 4);
	ck_assert_uint_eq(sb_ring_reader_position(&rd), 32);
	ck_assert_int_eq(sb_ring_reader_close(&rd), 0);
	fixture_close(&f);

	/* Queue: every consumer reports the shared cursor. */
	fixture_open(&f, SB_RING_QUEUE);
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &q1), 0);
	ck_assert_int_eq(sb_ring_reader_open(&f.ring, 0, &q2), 0);
	ck_assert_int_eq(sb_ring_publish(&f.ring, "abcd", 4, 0), 0);
	ck_assert_int_eq(sb_ring_receive(&q1, buf, sizeof(buf), 0), 4);
	ck_assert_uint_eq(sb_ring_reader_position(&q1), 32);
	ck_assert_uint_eq(sb_ring_reader_position(&q2), 32);
	ck_assert_int_eq(sb_ring_wait_readable(&q2, 32, NULL, 0), -EAGAIN);
	ck_assert_int_eq(sb_ring_reader_close(&q1), 0);
	ck_assert_int_eq(sb_ring_reader_close(&q2), 0);
	fixture_close(&f);
}
END_TEST

Suite *ring_wait_suite(void)
{
	Suite *s = suite_create("ring_wait");
	TCase *tc;

	tc = tcase_create("immediate");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, empty_does_not_wait_with_timeout_zero);
	tcase_add_test(tc, times_out_when_nothing_comes);
	tcase_add_test(tc, bad_arguments);
	tcase_add_test(tc, position_follows_the_cursor);
	suite_add_tcase(s, tc);

	tc = tcase_create("waking");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, woken_by_a_commit);
	tcase_add_test(tc, reader_and_watcher_share_a_slot);
	suite_add_tcase(s, tc);

	tc = tcase_create("stopping");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, stop_is_prompt);
	tcase_add_test(tc, stop_set_before_the_wait);
	suite_add_tcase(s, tc);

	tc = tcase_create("reaping");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, reaped_slot_gives_back_once);
	suite_add_tcase(s, tc);
	return s;
}
