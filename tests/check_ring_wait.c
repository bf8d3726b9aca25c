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

#include "ring/ring.h"
#include "ring/ring_layout.h"
#include "tests/suites.h"
#include "tests/support/ring_segs.h"
#include "tests/support/testutil.h"

/* Bound on every wait in this file: long enough never to fire in a healthy
 * run, short enough that a hang fails the test rather than the runner. */
#define WAIT_BOUND_MS 10000

static void fixture_open(struct sbt_segs *f, uint32_t mode)
{
	struct sb_ring_config cfg = {
	    .capacity = 4096,
	    .max_message = 1024,
	    .slot_count = 4,
	    .mode = mode,
	    .overflow = SB_RING_BLOCK,
	};

	sbt_segs_open(f, &cfg);
}

static uint32_t data_waiters(const struct sbt_segs *f)
{
	return atomic_load_explicit(&f->ring.shm_ctl->data_waiters,
				    memory_order_seq_cst);
}

static uint32_t sleeping(const struct sbt_segs *f, uint32_t slot)
{
	return atomic_load_explicit(&f->ring.shm_slots[slot].sub_sleeping,
				    memory_order_seq_cst);
}

/* Polls (bounded) until `slot` has `n` sleepers; returns 1 if it did. */
static int wait_sleepers(const struct sbt_segs *f, uint32_t slot, uint32_t n)
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
	struct sbt_segs f;
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
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(times_out_when_nothing_comes)
{
	struct sbt_segs f;
	struct sb_ring_reader rd;

	fixture_open(&f, SB_RING_BROADCAST);
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	ck_assert_int_eq(sb_ring_wait_readable(&rd, 0, NULL, 20), -ETIMEDOUT);
	ck_assert_uint_eq(data_waiters(&f), 0);
	ck_assert_uint_eq(sleeping(&f, rd.slot), 0);
	ck_assert_int_eq(sb_ring_reader_close(&rd), 0);
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(bad_arguments)
{
	struct sbt_segs f;
	struct sb_ring_reader rd;

	fixture_open(&f, SB_RING_BROADCAST);
	ck_assert_int_eq(sb_ring_wait_readable(NULL, 0, NULL, 0), -EINVAL);
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	ck_assert_int_eq(sb_ring_wait_readable(&rd, 0, NULL, -2), -EINVAL);
	ck_assert_int_eq(sb_ring_reader_close(&rd), 0);
	ck_assert_int_eq(sb_ring_wait_readable(&rd, 0, NULL, 0), -EINVAL);
	ck_assert_uint_eq(sb_ring_reader_position(NULL), 0);
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(woken_by_a_commit)
{
	struct sbt_segs f;
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
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(stop_is_prompt)
{
	struct sbt_segs f;
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
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(stop_set_before_the_wait)
{
	struct sbt_segs f;
	struct sb_ring_reader rd;
	_Atomic uint32_t stop = 1;

	fixture_open(&f, SB_RING_BROADCAST);
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	ck_assert_int_eq(sb_ring_wait_readable(&rd, 0, &stop, WAIT_BOUND_MS),
			 -ECANCELED);
	ck_assert_int_eq(sb_ring_reader_close(&rd), 0);
	sbt_segs_destroy(&f);
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
	struct sbt_segs f;
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
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(reaped_slot_gives_back_once)
{
	struct sbt_segs f;
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
	sbt_segs_destroy(&f);
}
END_TEST

START_TEST(position_follows_the_cursor)
{
	struct sbt_segs f;
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
	sbt_segs_destroy(&f);

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
	sbt_segs_destroy(&f);
}
END_TEST

/* ---- fenced commits (commit_fence, "Fenced commits" in ring.c) ---- */

static uint32_t commit_fence(const struct sbt_segs *f)
{
	return atomic_load_explicit(&f->ring.shm_ctl->commit_fence,
				    memory_order_seq_cst);
}

/*
 * A reader that goes to sleep arms fenced commits once its heavy fence
 * has run; SB_RING_FENCE_QUIET commits in a row with nobody asleep disarm
 * them, keeping the generation; the next sleep arms a new generation.
 */
START_TEST(a_sleeper_arms_fenced_commits_and_quiet_commits_disarm)
{
	struct sbt_segs f;
	struct sb_ring_reader rd;
	char buf[16];

	fixture_open(&f, SB_RING_BROADCAST);
	f.ring.spin = 0;
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	ck_assert_uint_eq(commit_fence(&f), SB_RING_FENCE_OFF);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 1), -ETIMEDOUT);
	ck_assert_uint_eq(commit_fence(&f),
			  SB_RING_FENCE_GEN | SB_RING_FENCE_ARMED);
	for (uint32_t i = 0; i < SB_RING_FENCE_QUIET - 1; i++) {
		ck_assert_int_eq(sb_ring_publish(&f.ring, "m", 1, 0), 0);
	}
	ck_assert_uint_eq(commit_fence(&f),
			  SB_RING_FENCE_GEN | SB_RING_FENCE_ARMED);
	ck_assert_int_eq(sb_ring_publish(&f.ring, "m", 1, 0), 0);
	ck_assert_uint_eq(commit_fence(&f),
			  SB_RING_FENCE_GEN | SB_RING_FENCE_OFF);
	for (uint32_t i = 0; i < SB_RING_FENCE_QUIET; i++) {
		ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), 1);
	}
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 1), -ETIMEDOUT);
	ck_assert_uint_eq(commit_fence(&f),
			  2 * SB_RING_FENCE_GEN | SB_RING_FENCE_ARMED);
	ck_assert_int_eq(sb_ring_reader_close(&rd), 0);
	sbt_segs_destroy(&f);
}
END_TEST

/* Any value in commit_fence (another process wrote it) still wakes a
 * sleeper: an unknown state makes writers fence and readers use the heavy
 * fence; quiet commits bring it back to a known state. */
START_TEST(a_garbage_commit_fence_still_wakes_sleepers)
{
	struct sbt_segs f;
	struct sb_ring_reader rd;
	struct watch w;

	fixture_open(&f, SB_RING_BROADCAST);
	atomic_store(&f.ring.shm_ctl->commit_fence, 0xffffffffu);
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	watch_start(&w, &rd);
	ck_assert(wait_sleepers(&f, rd.slot, 1));
	ck_assert_uint_eq(commit_fence(&f), 0xffffffffu); /* not re-armed */
	ck_assert_int_eq(sb_ring_publish(&f.ring, "hello", 5, 0), 0);
	pthread_join(w.thread, NULL);
	ck_assert_int_eq(w.result, 0);
	for (uint32_t i = 0; i < SB_RING_FENCE_QUIET; i++) {
		ck_assert_int_eq(sb_ring_publish(&f.ring, "m", 1, 0), 0);
	}
	ck_assert_uint_eq(commit_fence(&f) & SB_RING_FENCE_STATE,
			  SB_RING_FENCE_OFF);
	ck_assert_int_eq(sb_ring_reader_close(&rd), 0);
	sbt_segs_destroy(&f);
}
END_TEST

enum { PP_ROUNDS = 60000, PP_BURST_EVERY = 256, PP_BURST = 80 };

/* A ping-pong message: its kind ('P' ping, 'B' burst, 'E' end) and round. */
struct pp_msg {
	char kind;
	uint32_t round;
};

/* The child: answers each ping on `back`, swallows bursts, ends at 'E'.
 * Its receiver sleeps at once on two rounds of three, else spins first. */
static int pong(struct sb_ring_reader *in, struct sb_ring *back)
{
	struct pp_msg m = {.kind = 0, .round = 0};

	for (;;) {
		in->ring->spin = m.round % 3 == 0 ? 4000 : 0;
		if (sb_ring_receive(in, &m, sizeof(m), WAIT_BOUND_MS) !=
		    (ssize_t)sizeof(m)) {
			return 1;
		}
		if (m.kind == 'E') {
			return 0;
		}
		if (m.kind == 'P' &&
		    sb_ring_publish(back, &m, sizeof(m), WAIT_BOUND_MS) < 0) {
			return 2;
		}
	}
}

/*
 * Two processes play ping-pong over two rings, receivers sleeping at once
 * or after a spin, with bursts that leave the receiver awake in between,
 * so fenced commits are armed and disarmed over and over. A lost wake-up
 * (a commit that neither fenced nor saw the sleeper) would leave a
 * receive waiting until WAIT_BOUND_MS: every one must come back in time.
 */
START_TEST(blocking_ping_pong_loses_no_wakeup)
{
	struct sbt_segs there, back;
	struct sb_ring_reader to_child, to_parent;
	uint32_t armed_seen = 0;
	struct pp_msg m = {.kind = 'P', .round = 0};
	pid_t pid;

	fixture_open(&there, SB_RING_BROADCAST);
	fixture_open(&back, SB_RING_BROADCAST);
	ck_assert_int_eq(
	    sb_ring_reader_open(&there.ring, SB_RING_START_LATEST, &to_child),
	    0);
	ck_assert_int_eq(
	    sb_ring_reader_open(&back.ring, SB_RING_START_LATEST, &to_parent),
	    0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		_exit(pong(&to_child, &back.ring));
	}
	for (uint32_t r = 0; r < PP_ROUNDS; r++) {
		struct pp_msg got;
		uint32_t state;

		m.kind = 'P';
		m.round = r;
		ck_assert_int_eq(
		    sb_ring_publish(&there.ring, &m, sizeof(m), WAIT_BOUND_MS),
		    0);
		back.ring.spin = r % 2 == 0 ? 0 : 4000;
		ck_assert_int_eq(sb_ring_receive(&to_parent, &got, sizeof(got),
						 WAIT_BOUND_MS),
				 (ssize_t)sizeof(got));
		ck_assert_int_eq(got.kind, 'P');
		ck_assert_uint_eq(got.round, r);
		state = commit_fence(&there) & SB_RING_FENCE_STATE;
		armed_seen += state == SB_RING_FENCE_ARMED;
		for (uint32_t i = 0; r % PP_BURST_EVERY == 0 && i < PP_BURST;
		     i++) {
			m.kind = 'B';
			ck_assert_int_eq(sb_ring_publish(&there.ring, &m,
							 sizeof(m),
							 WAIT_BOUND_MS),
					 0);
		}
	}
	m.kind = 'E';
	ck_assert_int_eq(
	    sb_ring_publish(&there.ring, &m, sizeof(m), WAIT_BOUND_MS), 0);
	ck_assert_int_eq(sbt_wait(pid), 0);
	/* Both modes were really used: armed, and disarmed then armed
	 * again (each arming starts a new generation). */
	ck_assert_uint_gt(armed_seen, 0);
	ck_assert_uint_gt(commit_fence(&there) / SB_RING_FENCE_GEN, 1);
	ck_assert_int_eq(sb_ring_reader_close(&to_child), 0);
	ck_assert_int_eq(sb_ring_reader_close(&to_parent), 0);
	sbt_segs_destroy(&there);
	sbt_segs_destroy(&back);
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

	tc = tcase_create("fenced");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc,
		       a_sleeper_arms_fenced_commits_and_quiet_commits_disarm);
	tcase_add_test(tc, a_garbage_commit_fence_still_wakes_sleepers);
	tcase_add_test(tc, blocking_ping_pong_loses_no_wakeup);
	suite_add_tcase(s, tc);

	tc = tcase_create("reaping");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, reaped_slot_gives_back_once);
	suite_add_tcase(s, tc);
	return s;
}
