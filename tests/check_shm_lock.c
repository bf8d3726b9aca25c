/*
 * check_shm_lock.c - the lock in shared memory (ring/shm_lock.c) against
 * real processes: mutual exclusion, a holder killed or a thread gone while
 * holding it, a live holder (the caller times out), hostile cell values,
 * and the attack that retired the glibc robust mutexes: a subscribe-only
 * peer of another uid rewriting the control segment of a topic a real
 * broker made while a publisher and a subscriber use it. The publisher
 * must never write outside the two segments, crash or wait past its
 * timeout.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "include/shmbus/shmbus.h"
#include "ring/ring_layout.h"
#include "ring/shm_lock.h"
#include "tests/suites.h"
#include "tests/support/broker_harness.h"
#include "tests/support/rawclient.h"
#include "tests/support/testutil.h"

#define NOBODY 65534

/* A lock and a plain counter in memory shared with forked children. */
struct shared {
	struct sb_shm_lock lock;
	uint64_t counter; /* plain: only the lock makes its updates safe */
};

static struct shared *shared_new(void)
{
	struct shared *s = sbt_shared_alloc(sizeof(*s));

	ck_assert_ptr_nonnull(s);
	return s;
}

static const struct timespec *in_ms(int ms, struct timespec *ts)
{
	return sb_deadline_init(ms, ts);
}

static uint64_t self_word(void)
{
	return (uint64_t)getpid() << 32 | (uint32_t)syscall(SYS_gettid);
}

START_TEST(a_free_lock_is_taken_released_and_not_taken_twice)
{
	struct shared *s = shared_new();
	struct timespec ts;
	pid_t pid;

	ck_assert_int_eq(sb_shm_lock_take(&s->lock, in_ms(1000, &ts)), 0);
	ck_assert(sb_shm_lock_held(&s->lock));
	ck_assert_uint_eq(atomic_load(&s->lock.owner), self_word());
	ck_assert_int_eq(sb_shm_lock_take(&s->lock, in_ms(1000, &ts)),
			 -EDEADLK);
	ck_assert_int_eq(sb_shm_lock_try(&s->lock), 0);
	sb_shm_lock_release(&s->lock);
	ck_assert(!sb_shm_lock_held(&s->lock));
	ck_assert_uint_eq(atomic_load(&s->lock.owner), 0);

	/* Another process takes it now, and not while we hold it. */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct timespec t;
		int r = sb_shm_lock_take(&s->lock, in_ms(5000, &t));

		sb_shm_lock_release(&s->lock);
		_exit(r == 0 ? 0 : 1);
	}
	ck_assert_int_eq(sbt_wait(pid), 0);
	ck_assert_int_eq(sb_shm_lock_try(&s->lock), 1);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct timespec t;

		_exit(sb_shm_lock_take(&s->lock, in_ms(50, &t)) == -ETIMEDOUT
			  ? 0
			  : 1);
	}
	ck_assert_int_eq(sbt_wait(pid), 0);
	sb_shm_lock_release(&s->lock);
	munmap(s, sizeof(*s));
}
END_TEST

#define WORKERS 4
#define ROUNDS	20000

/* Processes bump a plain counter under the lock: any overlap of two
 * holders loses an update. Yields inside sometimes, so waiters sleep. */
START_TEST(processes_exclude_each_other)
{
	struct shared *s = shared_new();
	pid_t pids[WORKERS];

	for (int w = 0; w < WORKERS; w++) {
		pids[w] = fork();
		ck_assert_int_ge(pids[w], 0);
		if (pids[w] == 0) {
			for (int i = 0; i < ROUNDS; i++) {
				if (sb_shm_lock_take(&s->lock, NULL) != 0) {
					_exit(1);
				}
				uint64_t v = s->counter;
				if (i % 512 == 0) {
					sched_yield();
				}
				s->counter = v + 1;
				sb_shm_lock_release(&s->lock);
			}
			_exit(0);
		}
	}
	for (int w = 0; w < WORKERS; w++) {
		ck_assert_int_eq(sbt_wait(pids[w]), 0);
	}
	ck_assert_uint_eq(s->counter, (uint64_t)WORKERS * ROUNDS);
	ck_assert_uint_eq(atomic_load(&s->lock.owner), 0);
	munmap(s, sizeof(*s));
}
END_TEST

START_TEST(a_holder_killed_is_taken_over_as_died)
{
	struct shared *s = shared_new();
	struct timespec ts;
	int ready[2];
	char c;
	pid_t pid;

	ck_assert_int_eq(pipe(ready), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (sb_shm_lock_take(&s->lock, NULL) != 0 ||
		    write(ready[1], "x", 1) != 1) {
			_exit(1);
		}
		pause();
		_exit(0);
	}
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	/* Alive: we time out and the cell still names it. */
	ck_assert_int_eq(sb_shm_lock_take(&s->lock, in_ms(30, &ts)),
			 -ETIMEDOUT);
	ck_assert_uint_eq(atomic_load(&s->lock.owner) >> 32, (uint64_t)pid);
	kill(pid, SIGKILL);
	ck_assert_int_eq(sbt_wait(pid), -SIGKILL);
	ck_assert_int_eq(sb_shm_lock_take(&s->lock, in_ms(10000, &ts)),
			 SB_SHM_LOCK_OWNER_DIED);
	ck_assert(sb_shm_lock_held(&s->lock));
	sb_shm_lock_release(&s->lock);
	close(ready[0]);
	close(ready[1]);
	munmap(s, sizeof(*s));
}
END_TEST

/*
 * A bounded take gets the lock from a live holder once the caller has
 * waited the bound (without one it times out), and the holder's late
 * release leaves the new holder's lock alone.
 */
START_TEST(a_bounded_take_gets_it_from_a_live_holder)
{
	struct shared *s = shared_new();
	struct timespec ts;
	int ready[2], go[2];
	char c;
	pid_t pid;

	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(go), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (sb_shm_lock_take(&s->lock, NULL) != 0 ||
		    write(ready[1], "x", 1) != 1 || read(go[0], &c, 1) != 1) {
			_exit(1);
		}
		sb_shm_lock_release(&s->lock); /* no longer its own */
		_exit(write(ready[1], "y", 1) == 1 ? 0 : 2);
	}
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	ck_assert_int_eq(sb_shm_lock_take(&s->lock, in_ms(30, &ts)),
			 -ETIMEDOUT);
	ck_assert_int_eq(
	    sb_shm_lock_take_bounded(&s->lock, in_ms(10000, &ts), 50),
	    SB_SHM_LOCK_OVERSTAYED);
	ck_assert(sb_shm_lock_held(&s->lock));
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	ck_assert_int_eq(sbt_wait(pid), 0);
	ck_assert(sb_shm_lock_held(&s->lock));
	sb_shm_lock_release(&s->lock);
	ck_assert_uint_eq(atomic_load(&s->lock.owner), 0);
	for (int i = 0; i < 2; i++) {
		close(ready[i]);
		close(go[i]);
	}
	munmap(s, sizeof(*s));
}
END_TEST

static void *take_and_leave(void *arg)
{
	struct shared *s = arg;

	return (void *)(intptr_t)sb_shm_lock_take(&s->lock, NULL);
}

/* A thread that ends holding the lock (its process lives on) is a dead
 * holder too. */
START_TEST(a_thread_that_exits_holding_it_is_a_dead_holder)
{
	struct shared *s = shared_new();
	struct timespec ts;
	pthread_t t;
	void *r;

	ck_assert_int_eq(pthread_create(&t, NULL, take_and_leave, s), 0);
	ck_assert_int_eq(pthread_join(t, &r), 0);
	ck_assert_int_eq((int)(intptr_t)r, 0);
	ck_assert_uint_ne(atomic_load(&s->lock.owner), 0);
	ck_assert_int_eq(sb_shm_lock_take(&s->lock, in_ms(10000, &ts)),
			 SB_SHM_LOCK_OWNER_DIED);
	sb_shm_lock_release(&s->lock);
	munmap(s, sizeof(*s));
}
END_TEST

/* What the attacker aims at in the publisher (the same address in every
 * forked process); [1] because glibc's unlink also writes next to it. */
static uint64_t canary[2] = {0x5a5a5a5a5a5a5a5aULL, 0x5a5a5a5a5a5a5a5aULL};

static int canary_intact(void)
{
	return canary[0] == 0x5a5a5a5a5a5a5a5aULL &&
	       canary[1] == 0x5a5a5a5a5a5a5a5aULL;
}

/*
 * Values a hostile peer writes into a cell. Each comes with the rest of the
 * cell filled with pointers to `canary` (where glibc kept its robust-list
 * links, which it wrote through at unlock): nothing may write there.
 */
START_TEST(hostile_cell_values_end_in_a_take_or_a_timeout)
{
	static const struct {
		uint64_t owner;
		int expect;
	} cases[] = {
	    {UINT64_MAX, SB_SHM_LOCK_OWNER_DIED},
	    {5, SB_SHM_LOCK_OWNER_DIED},		 /* pid 0 */
	    {(uint64_t)5 << 32, SB_SHM_LOCK_OWNER_DIED}, /* tid 0 */
	    {(uint64_t)INT32_MAX << 32 | 7, SB_SHM_LOCK_OWNER_DIED},
	    {(uint64_t)(SB_PID_MAX_LIMIT + 1) << 32 | 1,
	     SB_SHM_LOCK_OWNER_DIED},
	    /* Our own process, a thread it does not have. */
	    {0, SB_SHM_LOCK_OWNER_DIED},
	    /* init's thread: alive, so only a timeout ends the wait. */
	    {(uint64_t)1 << 32 | 1, -ETIMEDOUT},
	};
	struct shared *s = shared_new();
	uint64_t *cell = (uint64_t *)(void *)&s->lock;
	struct timespec ts;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t owner = cases[i].owner;

		if (owner == 0) {
			owner = (uint64_t)getpid() << 32 | (SB_PID_MAX_LIMIT);
		}
		for (size_t w = 1; w < sizeof(s->lock) / 8; w++) {
			cell[w] = (uint64_t)(uintptr_t)&canary[0];
		}
		atomic_store(&s->lock.owner, owner);
		ck_assert_int_eq(sb_shm_lock_take(&s->lock, in_ms(40, &ts)),
				 cases[i].expect);
		if (cases[i].expect >= 0) {
			ck_assert(sb_shm_lock_held(&s->lock));
			sb_shm_lock_release(&s->lock);
		}
		ck_assert(canary_intact());
	}
	munmap(s, sizeof(*s));
}
END_TEST

/* ---- the attack against a topic a real broker made --------------------- */

static const char CONFIG[] =
    "{\"socket\": {\"mode\": \"0666\"},"
    " \"topics\": [{\"name\": \"locked\", \"capacity\": 65536,"
    "   \"max_message\": 1024,"
    "   \"access\": {\"publish\": {\"uids\": [0]},"
    "                \"admin\": {\"uids\": [0]}}}]}";

#define VICTIM_ROUNDS 400

/*
 * The attack of issue 13 on glibc's robust mutex, as it was laid out in
 * control layouts up to 6: make the attacker's own live thread the busy
 * solo writer (offsets 64, 80, 320), so that a publisher taking
 * writer_lock waits inside it for that thread; meanwhile point the lock's
 * robust-list links (offsets 152 and 160) at `canary`, which glibc's
 * unlock wrote through. Since layout 7 those offsets are reserved: the
 * writers' state is in the data segment, which a subscriber cannot write.
 */
static void hold_publishers_in_the_lock(unsigned char *ctl, pid_t self)
{
	uint64_t link = (uint64_t)(uintptr_t)&canary[0] + 8;
	uint32_t me = (uint32_t)self, entry = 1;

	memcpy(ctl + 320, &me, 4);   /* solo_owner[0].tid */
	memcpy(ctl + 324, &me, 4);   /* solo_owner[0].pid */
	memcpy(ctl + 80, &me, 4);    /* solo_busy[0] */
	memcpy(ctl + 64, &entry, 4); /* solo */
	memcpy(ctl + 152, &link, 8);
	memcpy(ctl + 160, &link, 8);
}

/* Random words over the whole fixed part: pointers into the publisher,
 * the publisher's ids (a live thread), noise and zeros. */
static void scribble(uint64_t *ctl, uint64_t *rng, pid_t victim)
{
	for (size_t w = 0; w < SB_RING_CTL_SLOTS_OFFSET / 8; w++) {
		*rng = *rng * 6364136223846793005ULL + 1;
		switch ((*rng >> 60) % 4) {
		case 0:
			ctl[w] = (uint64_t)(uintptr_t)&canary[0];
			break;
		case 1:
			ctl[w] = (uint64_t)victim << 32 | (uint32_t)victim;
			break;
		case 2:
			ctl[w] = *rng;
			break;
		default:
			ctl[w] = 0;
			break;
		}
	}
}

/*
 * The attacker: subscribes as uid 65534, maps the control segment it was
 * given read-write (as every subscriber does), and alternates the two
 * attacks above until it is killed.
 */
static int attack(const char *socket, pid_t victim, int go_fd)
{
	struct sbt_rc c;
	uint64_t *ctl;
	uint64_t rng = 0x9e3779b97f4a7c15ULL;

	if (sbt_become_nobody() < 0) {
		return 10;
	}
	if (sbt_rc_hello(&c, socket, "attacker") != 0 ||
	    sbt_rc_call(&c, "{\"op\":\"sub_open\",\"id\":2,"
			    "\"topic\":\"locked\"}") != 0 ||
	    c.nfds != 3) {
		return 12;
	}
	/* The writers' lock and solo state are in the data segment: no
	 * writable mapping of it for a subscriber. */
	if (mmap(NULL, SB_RING_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		 c.fds[0], 0) != MAP_FAILED ||
	    errno != EACCES) {
		return 14;
	}
	ctl = mmap(NULL, SB_RING_CTL_SLOTS_OFFSET, PROT_READ | PROT_WRITE,
		   MAP_SHARED, c.fds[1], 0);
	if (ctl == MAP_FAILED) {
		return 11;
	}
	for (unsigned round = 0;; round++) {
		if (round % 64 < 48) {
			hold_publishers_in_the_lock((unsigned char *)ctl,
						    getpid());
		} else {
			scribble(ctl, &rng, victim);
		}
		if (round == 0 && write(go_fd, "go", 2) != 2) {
			return 13;
		}
		usleep(200);
	}
}

/* What a publish or receive on a topic under attack may answer. */
static int survivable(long r)
{
	return r >= 0 || r == -EBADMSG || r == -ETIMEDOUT || r == -EAGAIN ||
	       r == -EPROTO || r == -EUSERS || r == -ESTALE || r == -EDEADLK;
}

/* The publisher: every publish returns within its timeout (a hang ends in
 * SIGALRM), and `canary` is never written. */
static int publish_under_attack(const char *socket, int ready_fd, int go_fd)
{
	shmbus *bus;
	shmbus_pub *pub;
	char msg[64];

	alarm(120); /* a hang guard, far beyond any timeout below */
	if (shmbus_connect(socket, "victim", &bus) != 0 ||
	    shmbus_pub_open(bus, "locked", &pub) != 0) {
		return 20;
	}
	if (write(ready_fd, "x", 1) != 1 || read(go_fd, msg, 1) != 1) {
		return 21;
	}
	for (int i = 0; i < VICTIM_ROUNDS; i++) {
		int r;

		memset(msg, i, sizeof(msg));
		r = shmbus_publish(pub, msg, sizeof(msg), 10);
		if (!survivable(r)) {
			return 22;
		}
		if (!canary_intact()) {
			return 23;
		}
	}
	shmbus_pub_close(pub);
	shmbus_close(bus);
	return 0;
}

static int receive_under_attack(const char *socket, int ready_fd, int go_fd)
{
	shmbus *bus;
	shmbus_sub *sub;
	char buf[256];

	alarm(120);
	if (shmbus_connect(socket, "reader", &bus) != 0 ||
	    shmbus_sub_open(bus, "locked", SHMBUS_START_LATEST, &sub) != 0) {
		return 30;
	}
	if (write(ready_fd, "x", 1) != 1 || read(go_fd, buf, 1) != 1) {
		return 33;
	}
	for (int i = 0; i < VICTIM_ROUNDS; i++) {
		ssize_t n = shmbus_receive(sub, buf, sizeof(buf), 5);

		if (!survivable(n)) {
			return 31;
		}
	}
	shmbus_sub_close(sub);
	shmbus_close(bus);
	return canary_intact() ? 0 : 32;
}

START_TEST(a_subscriber_rewriting_the_control_segment_cannot_reach_others)
{
	struct sbt_broker b;
	int ready[2], go[2];
	pid_t victim, reader, attacker;
	char c;

	ck_assert_int_eq(sbt_broker_start(&b, CONFIG, NULL), 0);
	/* Let uid 65534 reach the socket (the test directory is root's). */
	ck_assert_int_eq(chmod(b.dir, 0755), 0);
	ck_assert_int_eq(pipe(ready), 0);
	/* The attacker writes one byte for each of the others once it has
	 * started, so that they use the topic while it is under attack. */
	ck_assert_int_eq(pipe(go), 0);
	victim = fork();
	ck_assert_int_ge(victim, 0);
	if (victim == 0) {
		_exit(publish_under_attack(b.socket, ready[1], go[0]));
	}
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	reader = fork();
	ck_assert_int_ge(reader, 0);
	if (reader == 0) {
		_exit(receive_under_attack(b.socket, ready[1], go[0]));
	}
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	attacker = fork();
	ck_assert_int_ge(attacker, 0);
	if (attacker == 0) {
		_exit(attack(b.socket, victim, go[1]));
	}
	ck_assert_int_eq(sbt_wait(victim), 0);
	ck_assert_int_eq(sbt_wait(reader), 0);
	/* It attacks until killed: still running means it got that far. */
	ck_assert_int_eq(kill(attacker, SIGKILL), 0);
	ck_assert_int_eq(sbt_wait(attacker), -SIGKILL);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

Suite *shm_lock_suite(void)
{
	Suite *s = suite_create("shm_lock");
	TCase *tc = tcase_create("lock");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, a_free_lock_is_taken_released_and_not_taken_twice);
	tcase_add_test(tc, processes_exclude_each_other);
	tcase_add_test(tc, a_holder_killed_is_taken_over_as_died);
	tcase_add_test(tc, a_bounded_take_gets_it_from_a_live_holder);
	tcase_add_test(tc, a_thread_that_exits_holding_it_is_a_dead_holder);
	tcase_add_test(tc, hostile_cell_values_end_in_a_take_or_a_timeout);
	tcase_add_test(
	    tc, a_subscriber_rewriting_the_control_segment_cannot_reach_others);
	suite_add_tcase(s, tc);
	return s;
}
