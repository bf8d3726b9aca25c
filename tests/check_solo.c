/*
 * check_solo.c - the solo writer (ring/solo.c): a thread that published
 * SB_RING_SOLO_AFTER times in a row under writer_lock publishes without it
 * until another writer (another thread, another process, another handle)
 * takes the lock. These tests check that solo is granted and revoked, that
 * a solo writer that dies in the middle of a publish (even one nobody has
 * reaped yet) costs the next writer nothing but a repair, that hostile solo
 * fields cost at most the caller's timeout, and that two handles in one
 * thread, which share one thread id, never work on stale positions.
 *
 * Children _exit() with a status the parent asserts on.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ring/ring.h"
#include "sys/barrier.h"
#include "sys/deadline.h"
#include "sys/futex.h"
#include "sys/identity.h"
#include "ring/ring_layout.h"
#include "tests/suites.h"
#include "tests/support/ring_segs.h"
#include "tests/support/testutil.h"

#define MSG_LEN	   40u
#define TIMEOUT_MS 5000

static void segs_create(struct sbt_segs *s, uint32_t overflow)
{
	struct sb_ring_config cfg = {
	    .capacity = 1u << 16,
	    .max_message = 1024,
	    .slot_count = 4,
	    .mode = SB_RING_BROADCAST,
	    .overflow = overflow,
	};

	sbt_segs_create(s, &cfg);
}

static void segs_attach(const struct sbt_segs *s, struct sb_ring *ring)
{
	sbt_segs_attach(s, ring);
	ring->spin = 10;
}

/* A block-policy ring with `ring` attached and `rd` reading from now on. */
static void open_block_ring(struct sbt_segs *s, struct sb_ring *ring,
			    struct sb_ring_reader *rd)
{
	segs_create(s, SB_RING_BLOCK);
	segs_attach(s, ring);
	ck_assert_int_eq(sb_ring_reader_open(ring, SB_RING_START_LATEST, rd),
			 0);
}

/* What only writers write: in the data segment's header. */
static struct sb_ring_wctl *ctl_of(const struct sbt_segs *s)
{
	return &((struct sb_ring_header *)s->data)->wctl;
}

/* Message i carries i in its first 4 bytes and a pattern seeded by i. */
static int publish_nth(struct sb_ring *ring, uint32_t i)
{
	unsigned char buf[MSG_LEN];

	sbt_fill_pattern(buf, sizeof(buf), i);
	memcpy(buf, &i, sizeof(i));
	return sb_ring_publish(ring, buf, sizeof(buf), TIMEOUT_MS);
}

/* Receives messages first..last-1 in order, each exactly once, intact. */
static void receive_range(struct sb_ring_reader *rd, uint32_t first,
			  uint32_t last)
{
	unsigned char buf[MSG_LEN], want[MSG_LEN];

	for (uint32_t i = first; i < last; i++) {
		ck_assert_int_eq(sb_ring_receive(rd, buf, sizeof(buf), 0),
				 (ssize_t)MSG_LEN);
		sbt_fill_pattern(want, sizeof(want), i);
		memcpy(want, &i, sizeof(i));
		ck_assert_mem_eq(buf, want, sizeof(buf));
	}
	ck_assert_int_eq(sb_ring_receive(rd, buf, sizeof(buf), 0), -EAGAIN);
	ck_assert_uint_eq(sb_ring_reader_lost(rd), 0);
}

/* The thread id of the solo writer, 0 when there is none. */
static uint32_t solo_tid(const struct sbt_segs *s)
{
	uint32_t e = atomic_load(&ctl_of(s)->solo);

	if (e == 0 || e > SB_RING_SOLO_ENTRIES) {
		return 0;
	}
	return atomic_load(&ctl_of(s)->solo_owner[e - 1].tid);
}

/* Whether some solo entry is marked busy. */
static int any_solo_busy(const struct sbt_segs *s)
{
	for (uint32_t i = 0; i < SB_RING_SOLO_ENTRIES; i++) {
		if (atomic_load(&ctl_of(s)->solo_busy[i]) != 0) {
			return 1;
		}
	}
	return 0;
}

/* What solo_tid must say after this thread's streak. */
static uint32_t expected_solo(void)
{
	return sb_thread_id();
}

START_TEST(solo_is_granted_after_a_streak_and_revoked_by_another_writer)
{
	struct sbt_segs s;
	struct sb_ring ring;
	struct sb_ring_reader rd;
	uint32_t i = 0;
	pid_t pid;

	open_block_ring(&s, &ring, &rd);
	for (; i < SB_RING_SOLO_AFTER; i++) {
		ck_assert_int_eq(publish_nth(&ring, i), 0);
		ck_assert_uint_eq(solo_tid(&s), 0);
	}
	ck_assert_int_eq(publish_nth(&ring, i++), 0);
	ck_assert_uint_eq(solo_tid(&s), expected_solo());
	/* Solo publishes go through the same ring. */
	for (; i < 200; i++) {
		ck_assert_int_eq(publish_nth(&ring, i), 0);
	}
	receive_range(&rd, 0, i);

	/* Another process publishes one message: solo ends, nothing lost. */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct sb_ring other;

		if (sb_ring_attach(&other, s.data, s.data_size, s.ctl,
				   s.ctl_size) != 0 ||
		    publish_nth(&other, 200) != 0) {
			_exit(1);
		}
		_exit(solo_tid(&s) == 0 ? 0 : 2);
	}
	ck_assert_int_eq(sbt_wait(pid), 0);
	ck_assert_uint_eq(solo_tid(&s), 0);
	/* Our next publish must see the child's record, not our own copy. */
	ck_assert_int_eq(publish_nth(&ring, 201), 0);
	receive_range(&rd, 200, 202);
	ck_assert_uint_eq(atomic_load(&ring.shm_hdr->writer_next_seq), 202);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&s);
}
END_TEST

/* The child: becomes solo, then dies "inside" a publish: busy set, half a
 * record written past the tail. With `reap` the parent reaps it first. */
static void solo_writer_dies_busy(int reap)
{
	struct sbt_segs s;
	struct sb_ring ring;
	struct sb_ring_reader rd;
	int pipefd[2];
	pid_t pid;
	char c;

	open_block_ring(&s, &ring, &rd);
	ck_assert_int_eq(pipe(pipefd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct sb_ring mine;
		struct sb_ring_wctl *ctl = ctl_of(&s);
		uint64_t tail;

		if (sb_ring_attach(&mine, s.data, s.data_size, s.ctl,
				   s.ctl_size) != 0) {
			_exit(1);
		}
		for (uint32_t i = 0; i <= SB_RING_SOLO_AFTER; i++) {
			if (publish_nth(&mine, i) != 0) {
				_exit(2);
			}
		}
		if (solo_tid(&s) != expected_solo()) {
			_exit(3);
		}
		/* What a publish cut short leaves: busy, bytes past the tail,
		 * no tail store. */
		atomic_store(&ctl->solo_busy[atomic_load(&ctl->solo) - 1],
			     sb_thread_id());
		tail = atomic_load(&mine.shm_hdr->writer_tail);
		memset(mine.shm_data + (tail & mine.mask), 0xA5, 200);
		if (write(pipefd[1], "x", 1) != 1) {
			_exit(4);
		}
		pause(); /* SIGKILLed here */
		_exit(5);
	}
	close(pipefd[1]);
	ck_assert_int_eq(read(pipefd[0], &c, 1), 1);
	close(pipefd[0]);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	if (reap) {
		ck_assert_int_eq(sbt_wait(pid), -SIGKILL);
	} else {
		/* Dead, not yet reaped: still answers signal 0. */
		siginfo_t info;

		ck_assert_int_eq(
		    waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT), 0);
		ck_assert_int_eq(kill(pid, 0), 0);
	}
	/* The next writer takes over without waiting for ever. */
	ck_assert_int_eq(publish_nth(&ring, SB_RING_SOLO_AFTER + 1), 0);
	ck_assert(!any_solo_busy(&s));
	receive_range(&rd, 0, SB_RING_SOLO_AFTER + 2);
	if (!reap) {
		ck_assert_int_eq(sbt_wait(pid), -SIGKILL);
	}
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&s);
}

START_TEST(solo_writer_killed_mid_publish_is_repaired_by_the_next)
{
	solo_writer_dies_busy(1);
}
END_TEST

START_TEST(solo_writer_killed_mid_publish_is_found_as_a_zombie)
{
	solo_writer_dies_busy(0);
}
END_TEST

/* Makes entry `e` (1-based) the solo one, owned by and busy with the
 * given ids, as a hostile process could. */
static void hostile_solo(struct sb_ring_wctl *ctl, uint32_t pid, uint32_t tid,
			 uint32_t e)
{
	atomic_store(&ctl->solo_owner[e - 1].pid, pid);
	atomic_store(&ctl->solo_owner[e - 1].tid, tid);
	atomic_store(&ctl->solo_busy[e - 1], tid);
	atomic_store(&ctl->solo, e);
}

START_TEST(hostile_solo_fields_cost_at_most_the_timeout)
{
	struct sbt_segs s;
	struct sb_ring ring;
	struct sb_ring_wctl *ctl;
	pid_t sleeper;

	segs_create(&s, SB_RING_BLOCK);
	segs_attach(&s, &ring);
	ctl = ctl_of(&s);
	/* A live process that never publishes "owns" solo and is busy. */
	sleeper = fork();
	ck_assert_int_ge(sleeper, 0);
	if (sleeper == 0) {
		pause();
		_exit(0);
	}
	hostile_solo(ctl, (uint32_t)sleeper, (uint32_t)sleeper, 1);
	ck_assert_int_eq(sb_ring_publish(&ring, "x", 1, 50), -ETIMEDOUT);
	/* Revoked, but still busy: later writers wait for it too. */
	ck_assert_uint_eq(atomic_load(&ctl->solo), 1 | SB_RING_SOLO_REVOKING);
	ck_assert_int_eq(sb_ring_publish(&ring, "x", 1, 0), -ETIMEDOUT);
	kill(sleeper, SIGKILL);
	ck_assert_int_eq(sbt_wait(sleeper), -SIGKILL);

	/* Ids no live thread has: treated as dead at once. */
	hostile_solo(ctl, 0, 12345, 2);
	ck_assert_int_eq(sb_ring_publish(&ring, "x", 1, 0), 0);
	hostile_solo(ctl, UINT32_MAX, UINT32_MAX, SB_RING_SOLO_ENTRIES);
	ck_assert_int_eq(sb_ring_publish(&ring, "x", 1, 0), 0);
	/* A solo word naming no entry, revoking or not. */
	atomic_store(&ctl->solo, SB_RING_SOLO_ENTRIES + 1);
	ck_assert_int_eq(sb_ring_publish(&ring, "x", 1, 0), 0);
	atomic_store(&ctl->solo, SB_RING_SOLO_REVOKING);
	ck_assert_int_eq(sb_ring_publish(&ring, "x", 1, 0), 0);
	ck_assert_uint_eq(atomic_load(&ctl->solo), 0);
	ck_assert_uint_eq(atomic_load(&ring.shm_hdr->writer_next_seq), 4);
	sbt_segs_destroy(&s);
}
END_TEST

/*
 * Two handles on one ring in one thread: the same thread id, so the second
 * takes the solo path too; each must notice the other's commits and
 * reclaims (writer_epoch) and never write from a stale copy. Mixed with
 * claim/commit and a reject ring that keeps reclaiming.
 */
static void two_handles_alternate(uint32_t overflow)
{
	struct sbt_segs s;
	struct sb_ring a, b;
	struct sb_ring_reader rd;
	unsigned char buf[1024], want[1024];
	uint32_t sent = 0;

	segs_create(&s, overflow);
	segs_attach(&s, &a);
	segs_attach(&s, &b);
	ck_assert_int_eq(sb_ring_reader_open(&a, SB_RING_START_LATEST, &rd), 0);
	for (uint32_t round = 0; round < 20000; round++) {
		struct sb_ring *w = (round / 3) % 2 ? &a : &b;
		uint32_t len = 4 + (round * 37) % 300;
		struct sb_ring_claim claim;

		sbt_fill_pattern(buf, len, round);
		if (round % 7 == 0) {
			ck_assert_int_eq(sb_ring_claim(w, len, &claim, 0), 0);
			memcpy(claim.data, buf, len);
			ck_assert_int_eq(sb_ring_commit(w, &claim), 0);
		} else {
			ck_assert_int_eq(sb_ring_publish(w, buf, len, 0), 0);
		}
		sent++;
		/* Read in bursts, so the ring fills and reclaims. */
		if (round % 50 == 49) {
			for (uint32_t k = round + 1 - sent; k <= round; k++) {
				uint32_t klen = 4 + (k * 37) % 300;

				ck_assert_int_eq(
				    sb_ring_receive(&rd, want, sizeof(want), 0),
				    (ssize_t)klen);
				ck_assert(sbt_check_pattern(want, klen, k));
			}
			sent = 0;
		}
	}
	ck_assert_uint_eq(sb_ring_reader_lost(&rd), 0);
	ck_assert_uint_eq(atomic_load(&a.shm_hdr->writer_next_seq), 20000);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&s);
}

START_TEST(two_handles_in_one_thread_never_use_stale_positions)
{
	two_handles_alternate(SB_RING_BLOCK);
	two_handles_alternate(SB_RING_REJECT);
}
END_TEST

/* Becomes the solo writer of `ring` (where the kernel allows), with
 * messages first..first+SB_RING_SOLO_AFTER. Returns the next number. */
static uint32_t become_solo(const struct sbt_segs *s, struct sb_ring *ring,
			    uint32_t first)
{
	uint32_t i = first;

	for (; i <= first + SB_RING_SOLO_AFTER; i++) {
		ck_assert_int_eq(publish_nth(ring, i), 0);
	}
	ck_assert_uint_eq(solo_tid(s), expected_solo());
	return i;
}

START_TEST(solo_claims_commit_abort_and_refuse_a_nested_publish)
{
	struct sbt_segs s;
	struct sb_ring ring;
	struct sb_ring_reader rd;
	struct sb_ring_claim claim;
	unsigned char buf[MSG_LEN];
	uint32_t i;

	open_block_ring(&s, &ring, &rd);
	i = become_solo(&s, &ring, 0);
	/* A claim by the solo writer, committed: in order, intact. */
	ck_assert_int_eq(sb_ring_claim(&ring, MSG_LEN, &claim, 0), 0);
	ck_assert_int_eq(claim.solo, 1);
	sbt_fill_pattern(claim.data, MSG_LEN, i);
	memcpy(claim.data, &i, sizeof(i));
	/* Publishing while holding the claim would write over it. */
	ck_assert_int_eq(sb_ring_publish(&ring, buf, 1, 0), -EDEADLK);
	ck_assert_int_eq(sb_ring_commit(&ring, &claim), 0);
	i++;
	/* Aborted: nothing published, the next message takes the place. */
	ck_assert_int_eq(sb_ring_claim(&ring, MSG_LEN, &claim, 0), 0);
	memset(claim.data, 0xEE, MSG_LEN);
	ck_assert_int_eq(sb_ring_abort(&ring, &claim), 0);
	ck_assert_int_eq(publish_nth(&ring, i++), 0);
	receive_range(&rd, 0, i);
	ck_assert_uint_eq(atomic_load(&ring.shm_hdr->writer_next_seq), i);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&s);
}
END_TEST

/* A reader thread that drains the ring once the solo writer is inside a
 * publish or claim (its busy word set), so that room appears while it
 * waits for it. */
struct late_reader {
	const struct sbt_segs *segs;
	struct sb_ring_reader *rd;
	uint32_t entry; /* the solo writer's entry + 1 */
	uint32_t count; /* messages to take */
	int result;
};

static void *late_reader_main(void *arg)
{
	struct late_reader *lr = arg;
	_Atomic uint32_t *busy = &ctl_of(lr->segs)->solo_busy[lr->entry - 1];
	struct timespec stop;
	unsigned char buf[MSG_LEN];

	/* Not a timing assertion: the bound only ends a wait for a writer
	 * that never waits solo (the test then fails on what it finds). */
	sb_deadline_init(TIMEOUT_MS, &stop);
	while (atomic_load(busy) == 0 && !sb_deadline_passed(&stop)) {
		sched_yield();
	}
	for (uint32_t i = 0; i < lr->count && lr->result == 0; i++) {
		ssize_t n =
		    sb_ring_receive(lr->rd, buf, sizeof(buf), TIMEOUT_MS);

		lr->result = n == (ssize_t)MSG_LEN ? 0 : -EPROTO;
	}
	return NULL;
}

/* Publishes messages i, i + 1, ... without waiting until the ring is
 * full; returns the number of the first one refused. */
static uint32_t fill_ring(struct sb_ring *ring, uint32_t i)
{
	unsigned char buf[MSG_LEN];
	int r;

	for (;; i++) {
		sbt_fill_pattern(buf, sizeof(buf), i);
		memcpy(buf, &i, sizeof(i));
		r = sb_ring_publish(ring, buf, sizeof(buf), 0);
		if (r != 0) {
			break;
		}
	}
	ck_assert_int_eq(r, -EAGAIN);
	return i;
}

/*
 * The solo writer that finds the ring full waits for the readers itself,
 * polling their cursors, instead of taking the locked path: a claim stays
 * solo (the locked path gives solo up), and a publish does not register as
 * a waiting writer (no stat_waits, no heavy fence). ring.spin is made
 * large so that the wait lasts until the reader thread, which starts once
 * the writer is inside, frees room.
 */
START_TEST(a_full_ring_keeps_the_solo_writer_solo)
{
	struct sbt_segs s;
	struct sb_ring ring;
	struct sb_ring_reader rd;
	struct sb_ring_claim claim;
	struct late_reader lr = {.segs = &s, .rd = &rd};
	pthread_t th;
	uint64_t waits;
	uint32_t i;

	open_block_ring(&s, &ring, &rd);
	i = become_solo(&s, &ring, 0);
	receive_range(&rd, 0, i);
	ring.spin = UINT32_MAX;
	lr.entry = atomic_load(&ctl_of(&s)->solo);
	for (int use_claim = 0; use_claim <= 1; use_claim++) {
		uint32_t first = i;

		i = fill_ring(&ring, i);
		waits = atomic_load(&ring.shm_hdr->stat_waits);
		lr.count = i - first;
		lr.result = 0;
		ck_assert_int_eq(
		    pthread_create(&th, NULL, late_reader_main, &lr), 0);
		if (use_claim) {
			ck_assert_int_eq(
			    sb_ring_claim(&ring, MSG_LEN, &claim, -1), 0);
			ck_assert_int_eq(claim.solo, 1);
			sbt_fill_pattern(claim.data, MSG_LEN, i);
			memcpy(claim.data, &i, sizeof(i));
			ck_assert_int_eq(sb_ring_commit(&ring, &claim), 0);
		} else {
			ck_assert_int_eq(publish_nth(&ring, i), 0);
		}
		ck_assert_int_eq(pthread_join(th, NULL), 0);
		ck_assert_int_eq(lr.result, 0);
		ck_assert_uint_eq(atomic_load(&ring.shm_hdr->stat_waits),
				  waits);
		ck_assert_uint_eq(solo_tid(&s), expected_solo());
		receive_range(&rd, i, i + 1);
		i++;
	}
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&s);
}
END_TEST

/* A second thread's claim on the same handle and the same claim struct. */
struct rival_claim {
	struct sb_ring *ring;
	struct sb_ring_claim *claim;
	int result;
};

static void *rival_claim_main(void *arg)
{
	struct rival_claim *rc = arg;

	rc->result = sb_ring_claim(rc->ring, MSG_LEN, rc->claim, 100);
	return NULL;
}

/*
 * A claim that waits for the ring (and here times out) leaves the claim
 * struct alone: the library shares one struct per publisher between its
 * threads and decides who holds it only once the ring has chosen its
 * writer, so a write before that would undo the holder's claim. Both ways
 * of holding: solo, and under writer_lock.
 */
START_TEST(a_waiting_claim_leaves_the_held_one_alone)
{
	struct sbt_segs s;
	struct sb_ring ring;
	struct sb_ring_reader rd;
	struct sb_ring_claim claim, held;
	struct rival_claim rival = {.ring = &ring, .claim = &claim};
	pthread_t th;
	uint32_t i;

	open_block_ring(&s, &ring, &rd);
	i = 0;
	for (int solo = 0; solo <= 1; solo++) {
		if (solo) {
			i = become_solo(&s, &ring, i);
		}
		ck_assert_int_eq(sb_ring_claim(&ring, MSG_LEN, &claim, 0), 0);
		ck_assert_int_eq(claim.solo, solo);
		held = claim;
		ck_assert_int_eq(
		    pthread_create(&th, NULL, rival_claim_main, &rival), 0);
		ck_assert_int_eq(pthread_join(th, NULL), 0);
		ck_assert_int_eq(rival.result, -ETIMEDOUT);
		ck_assert_mem_eq(&claim, &held, sizeof(claim));
		sbt_fill_pattern(claim.data, MSG_LEN, i);
		memcpy(claim.data, &i, sizeof(i));
		ck_assert_int_eq(sb_ring_commit(&ring, &claim), 0);
		i++;
	}
	receive_range(&rd, 0, i);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&s);
}
END_TEST

/*
 * A solo writer trusts its own copy of the positions only while
 * writer_epoch stands; once it moves, the header's positions are checked
 * like any other shared value: a misaligned tail is refused by publish and
 * claim alike, and nothing is written.
 */
START_TEST(solo_writer_refuses_a_misaligned_tail)
{
	struct sbt_segs s;
	struct sb_ring ring;
	struct sb_ring_reader rd;
	struct sb_ring_claim claim;
	struct sb_ring_header *hdr;
	uint64_t tail, published;
	uint32_t i;

	open_block_ring(&s, &ring, &rd);
	hdr = ring.shm_hdr;
	i = become_solo(&s, &ring, 0);
	tail = atomic_load(&hdr->writer_tail);
	published = atomic_load(&hdr->stat_published);
	atomic_store(&hdr->writer_tail, tail + 8);
	atomic_fetch_add(&hdr->writer_epoch, 1);
	ck_assert_int_eq(publish_nth(&ring, i), -EBADMSG);
	ck_assert_int_eq(sb_ring_claim(&ring, MSG_LEN, &claim, 0), -EBADMSG);
	ck_assert_uint_eq(atomic_load(&hdr->stat_published), published);
	/* Put right, the same message goes out, after everything before. */
	atomic_store(&hdr->writer_tail, tail);
	atomic_fetch_add(&hdr->writer_epoch, 1);
	ck_assert_int_eq(publish_nth(&ring, i), 0);
	receive_range(&rd, 0, i + 1);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&s);
}
END_TEST

START_TEST(claims_alone_earn_solo)
{
	struct sbt_segs s;
	struct sb_ring ring;
	struct sb_ring_reader rd;
	struct sb_ring_claim claim;
	uint32_t i;

	open_block_ring(&s, &ring, &rd);
	for (i = 0; i <= SB_RING_SOLO_AFTER + 1; i++) {
		ck_assert_int_eq(sb_ring_claim(&ring, MSG_LEN, &claim, 0), 0);
		/* Locked until the streak is long enough, then solo. */
		ck_assert_int_eq(claim.solo, i > SB_RING_SOLO_AFTER);
		sbt_fill_pattern(claim.data, MSG_LEN, i);
		memcpy(claim.data, &i, sizeof(i));
		ck_assert_int_eq(sb_ring_commit(&ring, &claim), 0);
	}
	ck_assert_uint_eq(solo_tid(&s), expected_solo());
	receive_range(&rd, 0, i);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&s);
}
END_TEST

START_TEST(a_locked_claim_by_the_solo_writer_gives_solo_up)
{
	struct sbt_segs s;
	struct sb_ring ring;
	struct sb_ring_reader rd;
	struct sb_ring_claim claim;
	unsigned char buf[MSG_LEN];

	open_block_ring(&s, &ring, &rd);
	memset(buf, 0, sizeof(buf));
	become_solo(&s, &ring, 0);
	/* Full: the solo path cannot fit a claim, which goes the locked way
	 * (failing at once with timeout 0) and gives solo up on the way. */
	while (sb_ring_publish(&ring, buf, MSG_LEN, 0) == 0) {
	}
	ck_assert_int_eq(sb_ring_claim(&ring, MSG_LEN, &claim, 0), -EAGAIN);
	ck_assert_uint_eq(solo_tid(&s), 0);
	/* Room again: a claim now holds writer_lock, and a publish of the
	 * same thread is refused, not slipped around the lock. */
	while (sb_ring_receive(&rd, buf, sizeof(buf), 0) >= 0) {
	}
	ck_assert_int_eq(sb_ring_claim(&ring, MSG_LEN, &claim, 0), 0);
	ck_assert_int_eq(claim.solo, 0);
	ck_assert_int_eq(sb_ring_publish(&ring, buf, 1, 0), -EDEADLK);
	ck_assert_int_eq(sb_ring_abort(&ring, &claim), 0);
	ck_assert_int_eq(sb_ring_publish(&ring, buf, 1, 0), 0);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&s);
}
END_TEST

/*
 * Writers that keep taking solo from each other, on more processes than
 * CPUs so that they are preempted at every point of the hand-over: each
 * publishes bursts long enough to become solo, then yields. Every message
 * must arrive once, in its writer's order, intact. (A solo thread that
 * marked itself busy with a plain store, once revoked, could erase the mark
 * of the next solo writer: this test found that in CI.)
 */
#define HANDOVER_WRITERS 4
#define HANDOVER_EACH	 30000u
#define HANDOVER_BURST	 (SB_RING_SOLO_AFTER + 36)

static void handover_writer(const struct sbt_segs *s, uint32_t w)
{
	struct sb_ring ring;
	unsigned char buf[MSG_LEN];

	if (sb_ring_attach(&ring, s->data, s->data_size, s->ctl, s->ctl_size) !=
	    0) {
		_exit(1);
	}
	for (uint32_t i = 0; i < HANDOVER_EACH; i++) {
		uint32_t tag = w << 24 | i;

		sbt_fill_pattern(buf, sizeof(buf), tag);
		memcpy(buf, &tag, sizeof(tag));
		if (sb_ring_publish(&ring, buf, sizeof(buf), TIMEOUT_MS) != 0) {
			_exit(2);
		}
		if (i % HANDOVER_BURST == HANDOVER_BURST - 1) {
			sched_yield();
		}
	}
	_exit(0);
}

START_TEST(solo_hand_over_under_contention_loses_nothing)
{
	struct sbt_segs s;
	struct sb_ring ring;
	struct sb_ring_reader rd;
	uint32_t next[HANDOVER_WRITERS] = {0};
	pid_t pids[HANDOVER_WRITERS];
	unsigned char buf[MSG_LEN], want[MSG_LEN];

	open_block_ring(&s, &ring, &rd);
	for (uint32_t w = 0; w < HANDOVER_WRITERS; w++) {
		pids[w] = fork();
		ck_assert_int_ge(pids[w], 0);
		if (pids[w] == 0) {
			handover_writer(&s, w);
		}
	}
	for (uint32_t n = 0; n < HANDOVER_WRITERS * HANDOVER_EACH; n++) {
		uint32_t tag, w;

		ck_assert_int_eq(
		    sb_ring_receive(&rd, buf, sizeof(buf), TIMEOUT_MS),
		    (ssize_t)MSG_LEN);
		memcpy(&tag, buf, sizeof(tag));
		w = tag >> 24;
		ck_assert_uint_lt(w, HANDOVER_WRITERS);
		ck_assert_uint_eq(tag & 0xFFFFFF, next[w]);
		next[w]++;
		sbt_fill_pattern(want, sizeof(want), tag);
		memcpy(want, &tag, sizeof(tag));
		ck_assert_mem_eq(buf, want, sizeof(buf));
	}
	for (uint32_t w = 0; w < HANDOVER_WRITERS; w++) {
		ck_assert_int_eq(sbt_wait(pids[w]), 0);
	}
	ck_assert_uint_eq(sb_ring_reader_lost(&rd), 0);
	ck_assert_uint_eq(atomic_load(&ring.shm_hdr->writer_next_seq),
			  HANDOVER_WRITERS * HANDOVER_EACH);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&s);
}
END_TEST

/*
 * Solo entries are given to threads for as long as they live: a dead
 * owner's entry goes to the next thread, and a thread that finds every
 * entry held by a live one publishes under the lock instead.
 */
START_TEST(solo_entries_are_reused_once_their_owner_is_dead)
{
	struct sbt_segs s;
	struct sb_ring ring;
	struct sb_ring_reader rd;
	struct sb_ring_wctl *ctl;
	uint32_t i = 0;
	pid_t sleeper;

	open_block_ring(&s, &ring, &rd);
	ctl = ctl_of(&s);
	/* More processes than entries, one after another, each solo. */
	for (uint32_t c = 0; c < SB_RING_SOLO_ENTRIES + 2; c++) {
		pid_t pid = fork();

		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			struct sb_ring mine;

			if (sb_ring_attach(&mine, s.data, s.data_size, s.ctl,
					   s.ctl_size) != 0) {
				_exit(1);
			}
			for (uint32_t k = 0; k <= SB_RING_SOLO_AFTER; k++) {
				if (publish_nth(&mine, i + k) != 0) {
					_exit(2);
				}
			}
			_exit(solo_tid(&s) == expected_solo() ? 0 : 3);
		}
		ck_assert_int_eq(sbt_wait(pid), 0);
		receive_range(&rd, i, i + SB_RING_SOLO_AFTER + 1);
		i += SB_RING_SOLO_AFTER + 1;
	}
	/* Every entry held by a live thread (one sleeping process). */
	sleeper = fork();
	ck_assert_int_ge(sleeper, 0);
	if (sleeper == 0) {
		pause();
		_exit(0);
	}
	for (uint32_t e = 0; e < SB_RING_SOLO_ENTRIES; e++) {
		atomic_store(&ctl->solo_owner[e].pid, (uint32_t)sleeper);
		atomic_store(&ctl->solo_owner[e].tid, (uint32_t)sleeper);
	}
	atomic_store(&ctl->solo, 0);
	for (uint32_t k = 0; k <= SB_RING_SOLO_AFTER + 8; k++) {
		ck_assert_int_eq(publish_nth(&ring, i++), 0);
	}
	ck_assert_uint_eq(solo_tid(&s), 0);
	/* Once it is gone, its entries are free again (looked at once a
	 * streak, not at every publish). */
	kill(sleeper, SIGKILL);
	ck_assert_int_eq(sbt_wait(sleeper), -SIGKILL);
	for (uint32_t k = 0; k <= SB_RING_SOLO_AFTER; k++) {
		ck_assert_int_eq(publish_nth(&ring, i++), 0);
	}
	ck_assert_uint_eq(solo_tid(&s), expected_solo());
	ck_assert_int_eq(publish_nth(&ring, i++), 0);
	receive_range(&rd, i - 2 * SB_RING_SOLO_AFTER - 11, i);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&s);
}
END_TEST

/*
 * A solo thread that holds a solo claim and publishes again is refused
 * with -EDEADLK, also while another thread waits to revoke its solo (the
 * REVOKING flag is set): it must not block on writer_lock, which that
 * thread holds while it waits for the claim (with -1 on both sides, for
 * ever).
 */
static struct sbt_segs revoke_segs;

static void *publish_waiting_for_ever(void *arg)
{
	struct sb_ring r;

	(void)arg;
	segs_attach(&revoke_segs, &r);
	return (void *)(intptr_t)sb_ring_publish(&r, "R", 1, -1);
}

START_TEST(a_nested_publish_is_refused_while_solo_is_being_revoked)
{
	struct sb_ring ring;
	struct sb_ring_claim claim, nested;
	pthread_t t;
	void *ret;

	segs_create(&revoke_segs, SB_RING_BLOCK);
	segs_attach(&revoke_segs, &ring);
	become_solo(&revoke_segs, &ring, 0);
	ck_assert_int_eq(sb_ring_claim(&ring, MSG_LEN, &claim, 0), 0);
	ck_assert_int_eq(claim.solo, 1);
	ck_assert_int_eq(
	    pthread_create(&t, NULL, publish_waiting_for_ever, NULL), 0);
	while ((atomic_load(&ctl_of(&revoke_segs)->solo) &
		SB_RING_SOLO_REVOKING) == 0) {
		usleep(100);
	}
	ck_assert_int_eq(sb_ring_publish(&ring, "x", 1, 1000), -EDEADLK);
	ck_assert_int_eq(sb_ring_claim(&ring, MSG_LEN, &nested, 1000),
			 -EDEADLK);
	ck_assert_int_eq(sb_ring_commit(&ring, &claim), 0);
	ck_assert_int_eq(pthread_join(t, &ret), 0);
	ck_assert_int_eq((int)(intptr_t)ret, 0);
	sbt_segs_destroy(&revoke_segs);
}
END_TEST

/*
 * A child forked without the pthread_atfork handlers (_Fork(), a raw fork)
 * must not go on with its parent's thread id: it would take the parent's
 * solo path and publish alongside it without the lock.
 */
START_TEST(a_child_forked_without_atfork_handlers_is_not_solo)
{
	struct sbt_segs s;
	struct sb_ring ring;
	struct sb_ring_reader rd;
	uint32_t i;
	pid_t pid;

	open_block_ring(&s, &ring, &rd);
	i = become_solo(&s, &ring, 0);
	pid = (pid_t)syscall(SYS_fork);
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (sb_thread_id() != (uint32_t)syscall(SYS_gettid) ||
		    sb_process_id() != (uint32_t)getpid()) {
			_exit(1);
		}
		if (publish_nth(&ring, i) != 0) {
			_exit(2);
		}
		/* It took the lock and so revoked the parent's solo. */
		_exit(solo_tid(&s) == 0 ? 0 : 3);
	}
	ck_assert_int_eq(sbt_wait(pid), 0);
	receive_range(&rd, 0, i + 1);
	sb_ring_reader_close(&rd);
	sbt_segs_destroy(&s);
}
END_TEST

Suite *solo_suite(void)
{
	Suite *s = suite_create("solo");
	TCase *tc = tcase_create("solo");

	tcase_set_timeout(tc, 60);
	tcase_add_test(
	    tc, solo_is_granted_after_a_streak_and_revoked_by_another_writer);
	tcase_add_test(tc,
		       solo_writer_killed_mid_publish_is_repaired_by_the_next);
	tcase_add_test(tc, solo_writer_killed_mid_publish_is_found_as_a_zombie);
	tcase_add_test(tc, hostile_solo_fields_cost_at_most_the_timeout);
	tcase_add_test(tc, two_handles_in_one_thread_never_use_stale_positions);
	tcase_add_test(tc,
		       solo_claims_commit_abort_and_refuse_a_nested_publish);
	tcase_add_test(tc, solo_writer_refuses_a_misaligned_tail);
	tcase_add_test(tc, a_waiting_claim_leaves_the_held_one_alone);
	tcase_add_test(tc, a_full_ring_keeps_the_solo_writer_solo);
	tcase_add_test(tc, claims_alone_earn_solo);
	tcase_add_test(tc, a_locked_claim_by_the_solo_writer_gives_solo_up);
	tcase_add_test(tc, solo_hand_over_under_contention_loses_nothing);
	tcase_add_test(tc, solo_entries_are_reused_once_their_owner_is_dead);
	tcase_add_test(tc,
		       a_nested_publish_is_refused_while_solo_is_being_revoked);
	tcase_add_test(tc, a_child_forked_without_atfork_handlers_is_not_solo);
	suite_add_tcase(s, tc);
	return s;
}
