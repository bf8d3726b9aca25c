/*
 * check_evict.c - removing a subscriber that stopped reading: the ring's
 * sb_ring_slot_evict() and what the evicted reader sees (-EIDRM), the
 * broker's sub_evict op (admin right, clear errors, blocked publishers go
 * on) and its max_stall_ms sweep, with real processes against a real
 * broker: a subscriber that subscribes and then sleeps, publishers that
 * block behind it, a second uid that may not evict. Every wait is bounded
 * and waits for an event (a stat value, a child's exit), never a time.
 */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "include/shmbus/shmbus.h"
#include "ring/ring.h"
#include "ring/ring_layout.h"
#include "tests/suites.h"
#include "tests/support/broker_harness.h"
#include "tests/support/rawclient.h"
#include "tests/support/ring_segs.h"
#include "tests/support/testutil.h"

#define NOBODY 65534

/* How long a child waits for anything: never reached in a healthy run. */
#define CHILD_BOUND_MS 30000

/* 4 KiB rings hold 7 messages of 512 bytes: the 8th publish blocks. */
#define MSG_LEN	 512
#define MESSAGES 20

static const char CONFIG[] =
    "{\"socket\": {\"mode\": \"0666\"},"
    " \"topic_defaults\": {\"access\": {\"admin\": {}}},"
    " \"topics\": ["
    "  {\"name\": \"stall/admin\", \"capacity\": \"4KiB\","
    "   \"max_message\": \"1KiB\"},"
    "  {\"name\": \"stall/auto\", \"capacity\": \"4KiB\","
    "   \"max_message\": \"1KiB\", \"max_stall_ms\": 1000},"
    "  {\"name\": \"stall/off\", \"capacity\": \"4KiB\","
    "   \"max_message\": \"1KiB\"}]}";

/* ---- the ring alone ------------------------------------------------------ */

static void ring_open(struct sbt_segs *f)
{
	struct sb_ring_config cfg = {.capacity = 4096,
				     .max_message = 1024,
				     .slot_count = 4,
				     .mode = SB_RING_BROADCAST,
				     .overflow = SB_RING_BLOCK};

	sbt_segs_open(f, &cfg);
	f->ring.spin = 10;
}

static uint64_t tail_of(struct sb_ring *ring)
{
	return atomic_load_explicit(&ring->shm_hdr->writer_tail,
				    memory_order_relaxed);
}

START_TEST(an_evicted_reader_gets_eidrm_and_leaves_the_slot_alone)
{
	struct sbt_segs f;
	struct sb_ring_reader rd, next;
	struct sb_ring_slot_view v;
	char msg[MSG_LEN] = "m", buf[MSG_LEN];
	const void *data;
	uint32_t len;

	ring_open(&f);
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &rd), 0);
	ck_assert_int_eq(sb_ring_slot_view(&f.ring, rd.slot, &v), 0);
	ck_assert_uint_eq(v.state, rd.slot_state);
	ck_assert_uint_eq(v.pid, (uint32_t)getpid());
	ck_assert_int_eq(sb_ring_slot_view(&f.ring, 4, &v), -EINVAL);
	ck_assert_int_eq(sb_ring_publish(&f.ring, msg, sizeof(msg), 0), 0);
	/* Held by a peek while it is evicted, then overwritten. */
	ck_assert_int_eq(sb_ring_peek(&rd, &data, &len, 0), 0);
	ck_assert_int_eq(sb_ring_slot_evict(&f.ring, rd.slot, v.state + 2),
			 -ENOENT);
	ck_assert_int_eq(sb_ring_slot_evict(&f.ring, rd.slot, rd.slot_state),
			 0);
	ck_assert_int_eq(sb_ring_slot_evict(&f.ring, rd.slot, rd.slot_state),
			 -ENOENT);
	for (int i = 0; i < 16; i++) {
		/* No reader holds the writers back any more. */
		ck_assert_int_eq(sb_ring_publish(&f.ring, msg, sizeof(msg), 0),
				 0);
	}
	ck_assert_int_eq(sb_ring_release(&rd), -EIDRM);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EIDRM);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 1000), -EIDRM);
	ck_assert_int_eq(sb_ring_peek(&rd, &data, &len, 0), -EIDRM);
	ck_assert_int_eq(
	    sb_ring_wait_readable(&rd, tail_of(&f.ring), NULL, 1000), -EIDRM);
	/* A new reader takes the slot; the old one's close leaves it be. */
	ck_assert_int_eq(
	    sb_ring_reader_open(&f.ring, SB_RING_START_LATEST, &next), 0);
	ck_assert_uint_eq(next.slot, rd.slot);
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EIDRM);
	ck_assert_int_eq(sb_ring_reader_close(&rd), 0);
	ck_assert_int_eq(sb_ring_slot_view(&f.ring, next.slot, &v), 0);
	ck_assert_uint_eq(v.state, next.slot_state);
	ck_assert_int_eq(sb_ring_publish(&f.ring, msg, sizeof(msg), 0), 0);
	ck_assert_int_eq(sb_ring_receive(&next, buf, sizeof(buf), 0), MSG_LEN);
	ck_assert_int_eq(sb_ring_reader_close(&next), 0);
	sbt_segs_destroy(&f);
}
END_TEST

/* ---- children ------------------------------------------------------------ */

/*
 * A subscriber that stops reading: subscribes to `topics`, says so on
 * `ready`, then sleeps until a byte comes on `go`. Then it receives once
 * from each topic without waiting and writes each result (an int) to
 * `ready`, checks that a second receive says the same and that the
 * library names the error, closes and exits 0 (or a step number).
 */
struct sleeper {
	pid_t pid;
	int ready; /* parent's read end */
	int go;	   /* parent's write end */
};

#define SLEEPER_MAX_TOPICS 2

static int sleeper_main(const char *socket, const char *const *topics, int n,
			int ready, int go)
{
	shmbus *bus;
	shmbus_sub *subs[SLEEPER_MAX_TOPICS];
	char buf[MSG_LEN], c;

	if (shmbus_connect(socket, "sleeper", &bus) < 0) {
		return 2;
	}
	for (int i = 0; i < n; i++) {
		if (shmbus_sub_open(bus, topics[i], SHMBUS_START_LATEST,
				    &subs[i]) < 0) {
			return 3;
		}
	}
	if (write(ready, "r", 1) != 1 || read(go, &c, 1) != 1) {
		return 4;
	}
	for (int i = 0; i < n; i++) {
		int r = (int)shmbus_receive(subs[i], buf, sizeof(buf), 0);

		if (write(ready, &r, sizeof(r)) != (ssize_t)sizeof(r)) {
			return 5;
		}
		if (r == -EIDRM &&
		    (shmbus_receive(subs[i], buf, sizeof(buf), 0) != -EIDRM ||
		     strstr(shmbus_strerror(r), "evicted") == NULL)) {
			return 6;
		}
		if (shmbus_sub_close(subs[i]) != 0) {
			return 7;
		}
	}
	shmbus_close(bus);
	return 0;
}

static void sleeper_start(struct sleeper *s, const char *socket,
			  const char *const *topics, int n)
{
	int ready[2], go[2];
	char c;

	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(go), 0);
	s->pid = fork();
	ck_assert_int_ge(s->pid, 0);
	if (s->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(ready[0]);
		close(go[1]);
		_exit(sleeper_main(socket, topics, n, ready[1], go[0]));
	}
	close(ready[1]);
	close(go[0]);
	s->ready = ready[0];
	s->go = go[1];
	ck_assert_int_eq(read(s->ready, &c, 1), 1);
}

/* Reads the sleeper's next receive result (after sleeper_go()). */
static int sleeper_result(struct sleeper *s)
{
	struct pollfd p = {.fd = s->ready, .events = POLLIN};
	int r = 0;

	ck_assert_int_eq(poll(&p, 1, CHILD_BOUND_MS), 1);
	ck_assert_int_eq(read(s->ready, &r, sizeof(r)), (ssize_t)sizeof(r));
	return r;
}

static void sleeper_go(struct sleeper *s)
{
	ck_assert_int_eq(write(s->go, "g", 1), 1);
}

static void sleeper_end(struct sleeper *s)
{
	int st = sbt_wait(s->pid);

	ck_assert_msg(st == 0, "the sleeper failed at step %d", st);
	close(s->ready);
	close(s->go);
}

/* A publisher of MESSAGES messages to `topic`, each allowed to wait up to
 * CHILD_BOUND_MS for room: it fills the ring, then blocks. Exits 0 when
 * all went out, else 10 + the failed publish's errno. */
static pid_t publisher_start(const char *socket, const char *topic)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		shmbus *bus;
		shmbus_pub *pub;
		char msg[MSG_LEN];

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		memset(msg, 'p', sizeof(msg));
		if (shmbus_connect(socket, "blocked", &bus) < 0 ||
		    shmbus_pub_open(bus, topic, &pub) < 0) {
			_exit(2);
		}
		for (int i = 0; i < MESSAGES; i++) {
			int r = shmbus_publish(pub, msg, sizeof(msg),
					       CHILD_BOUND_MS);

			if (r < 0) {
				_exit(10 + -r);
			}
		}
		_exit(0);
	}
	return pid;
}

/* ---- asking the broker --------------------------------------------------- */

/* Sends one request on a fresh connection; returns its code, with the reply
 * left in *c (close it). */
__attribute__((format(printf, 3, 4))) static int
call(struct sbt_rc *c, const struct sbt_broker *b, const char *fmt, ...)
{
	char json[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(json, sizeof(json), fmt, ap);
	va_end(ap);
	ck_assert_int_eq(sbt_rc_hello(c, b->socket, "check_evict"), 0);
	return sbt_rc_call(c, "%s", json);
}

static int64_t stat_int(const struct sbt_broker *b, const char *topic,
			const char *path)
{
	struct sbt_rc c;
	int64_t v;

	ck_assert_int_eq(call(&c, b,
			      "{\"op\":\"topic_stat\",\"id\":2,"
			      "\"topic\":\"%s\"}",
			      topic),
			 0);
	v = sbt_rc_int(&c, path, -1);
	sbt_rc_close(&c);
	return v;
}

/* A number of the first subscriber in the topic's stat, or -1 if none. */
static int64_t first_sub_int(const struct sbt_broker *b, const char *topic,
			     const char *key)
{
	struct sbt_rc c;
	const cJSON *subs, *v;
	int64_t n = -1;

	ck_assert_int_eq(call(&c, b,
			      "{\"op\":\"topic_stat\",\"id\":2,"
			      "\"topic\":\"%s\"}",
			      topic),
			 0);
	subs =
	    cJSON_GetObjectItemCaseSensitive(sbt_rc_result(&c), "subscribers");
	v = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(subs, 0), key);
	if (cJSON_IsNumber(v)) {
		n = (int64_t)v->valuedouble;
	} else if (cJSON_IsBool(v)) {
		n = cJSON_IsTrue(v);
	}
	sbt_rc_close(&c);
	return n;
}

/* Polls (bounded, 10 s) until `get` is at least `want`; returns it. */
static int64_t wait_ge(const struct sbt_broker *b, const char *topic,
		       const char *what, int64_t want,
		       int64_t (*get)(const struct sbt_broker *, const char *,
				      const char *))
{
	int64_t v = get(b, topic, what);

	for (int i = 0; i < 1000 && v < want; i++) {
		sbt_sleep_ms(10);
		v = get(b, topic, what);
	}
	return v;
}

/* As uid 65534: sub_evict must be refused with EACCES. */
static int evict_as_nobody(const struct sbt_broker *b, int64_t slot)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct sbt_rc c;
		int r;

		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 ||
		    setuid(NOBODY) < 0 ||
		    sbt_rc_hello(&c, b->socket, "nobody") != 0) {
			_exit(99);
		}
		r = sbt_rc_call(&c,
				"{\"op\":\"sub_evict\",\"id\":2,"
				"\"topic\":\"stall/admin\",\"slot\":%lld}",
				(long long)slot);
		_exit(r == -EACCES ? 0 : 1);
	}
	return sbt_wait(pid);
}

/* The error's message of the last reply contains `text`. */
static void assert_message(const struct sbt_rc *c, const char *text)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(c->reply, "error");
	const char *m = cJSON_GetStringValue(
	    cJSON_GetObjectItemCaseSensitive(e, "message"));

	ck_assert_msg(m != NULL && strstr(m, text) != NULL,
		      "\"%s\" not in the error message \"%s\"", text,
		      m != NULL ? m : "(none)");
}

/* ---- sub_evict ----------------------------------------------------------- */

START_TEST(an_admin_evicts_a_stalled_subscriber_and_publishers_go_on)
{
	static const char *const topics[] = {"stall/admin"};
	struct sbt_broker b;
	struct sleeper s;
	struct sbt_rc c;
	int64_t slot;
	pid_t pub;

	sbt_broker_up_shared(&b, CONFIG);
	sleeper_start(&s, b.socket, topics, 1);
	pub = publisher_start(b.socket, "stall/admin");
	ck_assert_int_eq(
	    wait_ge(&b, "stall/admin", "stats.blocked_writers", 1, stat_int),
	    1);
	/* The sweep sees it stand still with messages to read. */
	ck_assert_int_gt(
	    wait_ge(&b, "stall/admin", "stalled_ms", 1, first_sub_int), 0);
	slot = first_sub_int(&b, "stall/admin", "slot");
	ck_assert_int_ge(slot, 0);

	/* Refusals change nothing. */
	ck_assert_int_eq(evict_as_nobody(&b, slot), 0);
	ck_assert_int_eq(call(&c, &b,
			      "{\"op\":\"sub_evict\",\"id\":3,"
			      "\"topic\":\"stall/admin\",\"slot\":64}"),
			 -EINVAL);
	assert_message(&c, "topic \"stall/admin\" has slots 0 to 63 (got 64)");
	sbt_rc_close(&c);
	ck_assert_int_eq(call(&c, &b,
			      "{\"op\":\"sub_evict\",\"id\":3,"
			      "\"topic\":\"stall/admin\",\"slot\":%lld}",
			      (long long)(slot == 5 ? 6 : 5)),
			 -ENOENT);
	assert_message(&c, "holds no subscriber");
	sbt_rc_close(&c);
	ck_assert_int_eq(call(&c, &b,
			      "{\"op\":\"sub_evict\",\"id\":3,"
			      "\"topic\":\"stall/none\",\"slot\":0}"),
			 -ENOENT);
	assert_message(&c, "no such topic \"stall/none\"");
	sbt_rc_close(&c);
	ck_assert_int_eq(call(&c, &b,
			      "{\"op\":\"sub_evict\",\"id\":3,"
			      "\"topic\":\"stall/admin\"}"),
			 -EINVAL);
	assert_message(&c, "\"slot\"");
	sbt_rc_close(&c);
	ck_assert_int_eq(stat_int(&b, "stall/admin", "stats.blocked_writers"),
			 1);
	ck_assert_int_eq(stat_int(&b, "stall/admin", "stats.evictions"), 0);

	/* The admin (root) may: the publisher goes on and finishes. */
	ck_assert_int_eq(call(&c, &b,
			      "{\"op\":\"sub_evict\",\"id\":4,"
			      "\"topic\":\"stall/admin\",\"slot\":%lld}",
			      (long long)slot),
			 0);
	ck_assert_int_eq(sbt_rc_int(&c, "slot", -1), slot);
	ck_assert_int_eq(sbt_rc_int(&c, "pid", -1), s.pid);
	sbt_rc_close(&c);
	ck_assert_int_eq(sbt_wait(pub), 0);
	ck_assert_int_eq(stat_int(&b, "stall/admin", "stats.evictions"), 1);
	ck_assert_int_eq(first_sub_int(&b, "stall/admin", "slot"), -1);
	ck_assert(sbt_broker_log_wait(&b, "evicted by client"));
	ck_assert(sbt_broker_log_contains(&b, "\"sleeper\""));

	/* The evicted subscriber learns it at its next receive. */
	sleeper_go(&s);
	ck_assert_int_eq(sleeper_result(&s), -EIDRM);
	sleeper_end(&s);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/*
 * A subscriber asleep in a receive, or in poll() on its descriptor, when it
 * is evicted: it wakes with EIDRM rather than sleeping to its timeout.
 * `use_fd` picks the descriptor. Exits 0, or 10 + the errno it got.
 */
static int waiting_subscriber(const char *socket, int use_fd, int ready)
{
	shmbus *bus;
	shmbus_sub *sub;
	char buf[MSG_LEN];
	int r;

	if (shmbus_connect(socket, "waiter", &bus) < 0 ||
	    shmbus_sub_open(bus, "stall/admin", SHMBUS_START_LATEST, &sub) <
		0) {
		return 2;
	}
	if (use_fd) {
		struct pollfd p = {.fd = shmbus_sub_fd(sub), .events = POLLIN};

		if (p.fd < 0 || write(ready, "r", 1) != 1 ||
		    poll(&p, 1, CHILD_BOUND_MS) != 1) {
			return 3;
		}
		r = (int)shmbus_receive(sub, buf, sizeof(buf), 0);
	} else {
		if (write(ready, "r", 1) != 1) {
			return 3;
		}
		r = (int)shmbus_receive(sub, buf, sizeof(buf), CHILD_BOUND_MS);
	}
	shmbus_sub_close(sub);
	shmbus_close(bus);
	return r == -EIDRM ? 0 : 10 + (r < 0 ? -r : 0);
}

static void evict_a_waiting_subscriber(int use_fd)
{
	struct sbt_broker b;
	struct sbt_rc c;
	int ready[2];
	pid_t pid;
	char ch;

	sbt_broker_up_shared(&b, CONFIG);
	ck_assert_int_eq(pipe(ready), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(waiting_subscriber(b.socket, use_fd, ready[1]));
	}
	close(ready[1]);
	ck_assert_int_eq(read(ready[0], &ch, 1), 1);
	close(ready[0]);
	/* Asleep on the ring (the receive, or the descriptor's watcher). */
	ck_assert_int_eq(
	    wait_ge(&b, "stall/admin", "sleeping", 1, first_sub_int), 1);
	ck_assert_int_eq(
	    call(&c, &b,
		 "{\"op\":\"sub_evict\",\"id\":4,"
		 "\"topic\":\"stall/admin\",\"slot\":%lld}",
		 (long long)first_sub_int(&b, "stall/admin", "slot")),
	    0);
	sbt_rc_close(&c);
	ck_assert_int_eq(sbt_wait(pid), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}

START_TEST(a_subscriber_asleep_in_receive_wakes_evicted)
{
	evict_a_waiting_subscriber(0);
}
END_TEST

START_TEST(a_subscriber_polling_its_descriptor_wakes_evicted)
{
	evict_a_waiting_subscriber(1);
}
END_TEST

/* ---- max_stall_ms -------------------------------------------------------- */

START_TEST(max_stall_ms_evicts_without_an_admin_and_0_never_does)
{
	static const char *const topics[] = {"stall/auto", "stall/off"};
	struct sbt_broker b;
	struct sleeper s;
	pid_t pub_auto, pub_off;

	sbt_broker_up_shared(&b, CONFIG);
	ck_assert_int_eq(stat_int(&b, "stall/auto", "topic.max_stall_ms"),
			 1000);
	ck_assert_int_eq(stat_int(&b, "stall/off", "topic.max_stall_ms"), 0);
	sleeper_start(&s, b.socket, topics, 2);
	pub_auto = publisher_start(b.socket, "stall/auto");
	pub_off = publisher_start(b.socket, "stall/off");
	/* Nobody evicts: the sweep does, and the publisher finishes. */
	ck_assert_int_eq(sbt_wait(pub_auto), 0);
	ck_assert_int_eq(stat_int(&b, "stall/auto", "stats.evictions"), 1);
	ck_assert(sbt_broker_log_wait(&b, "evicted by max_stall_ms (1000)"));
	/* With max_stall_ms 0, a subscriber stalled three times as long
	 * stays, and so does the writer it holds back. */
	ck_assert_int_ge(
	    wait_ge(&b, "stall/off", "stalled_ms", 3000, first_sub_int), 3000);
	ck_assert_int_eq(stat_int(&b, "stall/off", "stats.evictions"), 0);
	ck_assert_int_eq(stat_int(&b, "stall/off", "stats.blocked_writers"), 1);
	ck_assert_int_eq(first_sub_int(&b, "stall/off", "pid"), s.pid);
	/* The sleeper: evicted from one topic, still reading the other;
	 * its close frees the publisher of the other. */
	sleeper_go(&s);
	ck_assert_int_eq(sleeper_result(&s), -EIDRM);
	ck_assert_int_eq(sleeper_result(&s), MSG_LEN);
	sleeper_end(&s);
	ck_assert_int_eq(sbt_wait(pub_off), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

START_TEST(topic_create_takes_max_stall_ms_in_range)
{
	struct sbt_broker b;
	struct sbt_rc c;

	sbt_broker_up_shared(&b, CONFIG);
	ck_assert_int_eq(call(&c, &b,
			      "{\"op\":\"topic_create\",\"id\":2,"
			      "\"topic\":\"made\",\"max_stall_ms\":86400001}"),
			 -EINVAL);
	assert_message(&c, "\"max_stall_ms\" must be from 0 to 86400000");
	sbt_rc_close(&c);
	ck_assert_int_eq(call(&c, &b,
			      "{\"op\":\"topic_create\",\"id\":2,"
			      "\"topic\":\"made\",\"max_stall_ms\":2500}"),
			 0);
	ck_assert_int_eq(sbt_rc_int(&c, "topic.max_stall_ms", -1), 2500);
	sbt_rc_close(&c);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

Suite *evict_suite(void)
{
	Suite *s = suite_create("evict");
	TCase *tc = tcase_create("ring");

	tcase_add_test(tc,
		       an_evicted_reader_gets_eidrm_and_leaves_the_slot_alone);
	suite_add_tcase(s, tc);

	tc = tcase_create("broker");
	tcase_set_timeout(tc, 120);
	if (geteuid() != 0) {
		/* The refusal needs a second uid, and so root. */
		fprintf(stderr, "evict: not root, broker tests skipped\n");
		suite_add_tcase(s, tc);
		return s;
	}
	tcase_add_test(
	    tc, an_admin_evicts_a_stalled_subscriber_and_publishers_go_on);
	tcase_add_test(tc, a_subscriber_asleep_in_receive_wakes_evicted);
	tcase_add_test(tc, a_subscriber_polling_its_descriptor_wakes_evicted);
	tcase_add_test(tc,
		       max_stall_ms_evicts_without_an_admin_and_0_never_does);
	tcase_add_test(tc, topic_create_takes_max_stall_ms_in_range);
	suite_add_tcase(s, tc);
	return s;
}
