/*
 * check_waiters.c - the table of writers waiting for space (space_waiters,
 * space_sleepers, space_waiter_pid in the control segment): a writer
 * SIGKILLed while it waits must not stay counted for ever. Before the
 * table, its count stayed raised: topic_stat over-counted blocked writers
 * and every reader bumped space_seq (and called FUTEX_WAKE) after every
 * message, for ever. These tests fail on that design.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ring/ring.h"
#include "ring/ring_layout.h"
#include "tests/suites.h"
#include "tests/support/ring_segs.h"
#include "tests/support/testutil.h"

#define WAIT_LIMIT_MS 10000

/* A ring in MAP_SHARED anonymous memory, so forked children share it. */
static void ring_create(struct sbt_segs *s, uint32_t overflow)
{
	struct sb_ring_config cfg = {.capacity = 4096,
				     .max_message = 1024,
				     .slot_count = 4,
				     .mode = SB_RING_BROADCAST,
				     .overflow = overflow};

	sbt_segs_open(s, &cfg);
}

/* Fills the ring until a publish without waiting fails. */
static void fill(struct sb_ring *ring)
{
	char msg[1000];

	memset(msg, 'x', sizeof(msg));
	while (sb_ring_publish(ring, msg, sizeof(msg), 0) == 0) {
	}
}

/* A child that publishes into the full ring and waits for ever. */
static pid_t blocked_writer(struct sb_ring *ring)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char msg[1000] = {0};

		_exit(sb_ring_publish(ring, msg, sizeof(msg), -1) == 0 ? 0 : 1);
	}
	return pid;
}

/* Waits (bounded) until `n` writers are asleep waiting for space. */
static void wait_sleepers(struct sb_ring_wctl *ctl, int n)
{
	for (int i = 0; i < WAIT_LIMIT_MS; i++) {
		if (__builtin_popcountll(atomic_load(&ctl->space_sleepers)) ==
		    n) {
			return;
		}
		sbt_sleep_ms(1);
	}
	ck_abort_msg("%d writer(s) never went to sleep", n);
}

static void kill_wait(pid_t pid)
{
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(sbt_wait(pid), -SIGKILL);
}

START_TEST(a_writer_killed_while_waiting_is_reaped)
{
	struct sbt_segs s;
	struct sb_ring_ctl *ctl;
	struct sb_ring_reader rd;
	char buf[1024];
	uint32_t seq_before;
	pid_t dead, alive;

	ring_create(&s, SB_RING_BLOCK);
	ctl = s.ring.shm_ctl;
	ck_assert_int_eq(
	    sb_ring_reader_open(&s.ring, SB_RING_START_EARLIEST, &rd), 0);
	fill(&s.ring);
	dead = blocked_writer(&s.ring);
	wait_sleepers(s.ring.shm_wctl, 1);
	alive = blocked_writer(&s.ring);
	wait_sleepers(s.ring.shm_wctl, 2);
	ck_assert_uint_eq(sb_ring_blocked_writers(&s.ring), 2);

	kill_wait(dead);
	/* The dead writer's bits stay until someone reaps them... */
	ck_assert_uint_eq(sb_ring_blocked_writers(&s.ring), 2);
	ck_assert_int_eq(sb_ring_reap_dead_waiters(&s.ring), 1);
	/* ...and the live one is left alone. */
	ck_assert_uint_eq(sb_ring_blocked_writers(&s.ring), 1);
	ck_assert_int_eq(sb_ring_reap_dead_waiters(&s.ring), 0);
	ck_assert_int_eq(
	    __builtin_popcountll(atomic_load(&s.ring.shm_wctl->space_sleepers)),
	    1);

	/* The live writer still gets through once the reader moves. */
	for (int i = 0; i < 4; i++) {
		ck_assert_int_gt(sb_ring_receive(&rd, buf, sizeof(buf), 0), 0);
	}
	ck_assert_int_eq(sbt_wait(alive), 0);
	ck_assert_uint_eq(atomic_load(&s.ring.shm_wctl->space_waiters), 0);
	ck_assert_uint_eq(atomic_load(&s.ring.shm_wctl->space_sleepers), 0);
	for (uint32_t i = 0; i < SB_RING_MAX_SPACE_WAITERS; i++) {
		ck_assert_uint_eq(
		    atomic_load(&s.ring.shm_wctl->space_waiter_pid[i]), 0);
	}

	/* With nobody waiting, reading no longer touches space_seq. */
	seq_before = atomic_load(&ctl->space_seq);
	while (sb_ring_receive(&rd, buf, sizeof(buf), 0) > 0) {
	}
	ck_assert_uint_eq(atomic_load(&ctl->space_seq), seq_before);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&s);
}
END_TEST

/* A writer that recovers writer_lock from a dead holder reaps dead
 * waiters on the way, without any broker. */
START_TEST(a_lock_recovery_reaps_dead_waiters)
{
	struct sbt_segs s;
	struct sb_ring_reader rd;
	struct sb_ring_claim claim;
	char buf[1024];
	pid_t waiter, holder;
	int fds[2];
	char c;

	ring_create(&s, SB_RING_BLOCK);
	ck_assert_int_eq(
	    sb_ring_reader_open(&s.ring, SB_RING_START_EARLIEST, &rd), 0);
	fill(&s.ring);
	waiter = blocked_writer(&s.ring);
	wait_sleepers(s.ring.shm_wctl, 1);
	kill_wait(waiter);
	/* Room for one claim, then a holder that dies inside it. */
	ck_assert_int_gt(sb_ring_receive(&rd, buf, sizeof(buf), 0), 0);
	ck_assert_int_eq(pipe(fds), 0);
	holder = fork();
	ck_assert_int_ge(holder, 0);
	if (holder == 0) {
		if (sb_ring_claim(&s.ring, 100, &claim, 1000) < 0) {
			_exit(1);
		}
		(void)!write(fds[1], "k", 1);
		pause();
		_exit(0);
	}
	ck_assert_int_eq(read(fds[0], &c, 1), 1);
	kill_wait(holder);
	ck_assert_uint_eq(sb_ring_blocked_writers(&s.ring), 1);
	/* The next writer takes the lock with EOWNERDEAD and reaps. */
	ck_assert_int_eq(sb_ring_publish(&s.ring, "x", 1, 0), 0);
	ck_assert_uint_eq(sb_ring_blocked_writers(&s.ring), 0);
	ck_assert_uint_eq(atomic_load(&s.ring.shm_wctl->space_sleepers), 0);
	close(fds[0]);
	close(fds[1]);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&s);
}
END_TEST

/* More waiting writers than table entries: the extra ones poll, and all
 * get through once the reader drains the ring. */
START_TEST(more_waiters_than_entries_all_get_through)
{
	enum { WRITERS = SB_RING_MAX_SPACE_WAITERS + 6 };
	struct sbt_segs s;
	struct sb_ring_reader rd;
	char buf[1024];
	pid_t pids[WRITERS];
	int got = 0;

	ring_create(&s, SB_RING_BLOCK);
	ck_assert_int_eq(
	    sb_ring_reader_open(&s.ring, SB_RING_START_EARLIEST, &rd), 0);
	fill(&s.ring);
	for (int i = 0; i < WRITERS; i++) {
		pids[i] = blocked_writer(&s.ring);
	}
	wait_sleepers(s.ring.shm_wctl, SB_RING_MAX_SPACE_WAITERS);
	for (int i = 0; i < WAIT_LIMIT_MS && got < WRITERS + 3; i++) {
		ssize_t n = sb_ring_receive(&rd, buf, sizeof(buf), 1);

		got += n > 0;
	}
	ck_assert_int_ge(got, WRITERS);
	for (int i = 0; i < WRITERS; i++) {
		ck_assert_int_eq(sbt_wait(pids[i]), 0);
	}
	ck_assert_uint_eq(atomic_load(&s.ring.shm_wctl->space_waiters), 0);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&s);
}
END_TEST

Suite *waiters_suite(void)
{
	Suite *s = suite_create("waiters");
	TCase *tc = tcase_create("dead_waiters");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, a_writer_killed_while_waiting_is_reaped);
	tcase_add_test(tc, a_lock_recovery_reaps_dead_waiters);
	tcase_add_test(tc, more_waiters_than_entries_all_get_through);
	suite_add_tcase(s, tc);
	return s;
}
