/*
 * check_bus.c - integration tests of the bus API (client/bus.c, conn.c)
 * against a real shmbusd and real processes: pub/sub across processes on
 * both copy and zero-copy paths with checksummed payloads, start positions,
 * a queue with three consumers, crashes of subscribers, producers and the
 * broker, every documented error code, the pollable descriptor, publishing
 * from two threads, and closes sent as notices (with no reply to wait for)
 * that the broker really applies. Lingering mappings: check_linger.c.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "client/bus_internal.h"
#include "shmbus/shmbus.h"
#include "tests/suites.h"
#include "tests/support/broker_harness.h"
#include "tests/support/bus.h"
#include "tests/support/rawclient.h"
#include "tests/support/testutil.h"

/* Bound on every wait: never reached in a healthy run. */
#define BOUND_MS SBT_BUS_BOUND_MS

#define MAX_PAYLOAD SBT_BUS_MAX_PAYLOAD

/* ---- helpers ---------------------------------------------------------- */

/*
 * Creates `topic` through a connection of its own, closed again before
 * returning, so that the test process runs no connection watcher thread
 * when it forks the children that come next. A child of a multithreaded
 * process inherits whatever lock another thread held at the fork: under
 * ASan, children forked just after sbt_bus_up() hung now and then (about
 * one run in fifty), their watcher thread waiting for ever on a lock of the
 * sanitizer's allocator that no thread of the child held.
 */
static void create_topic_before_fork(const struct sbt_broker *b,
				     const char *topic, uint64_t capacity,
				     int mode)
{
	shmbus *bus = sbt_bus_up(b, "check_bus");

	sbt_bus_topic(bus, topic, capacity, mode, SHMBUS_BLOCK);
	/* The last reference: the watcher thread is joined. */
	ck_assert_int_eq(shmbus_close(bus), 0);
}

/* A child process and a pipe it reports readiness on. */
struct child {
	pid_t pid;
	int ready_fd; /* parent's read end */
};

typedef int (*child_fn)(void *arg, int ready_fd);

static struct child spawn(child_fn fn, void *arg)
{
	struct child c;
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	c.pid = fork();
	ck_assert_int_ge(c.pid, 0);
	if (c.pid == 0) {
		close(p[0]);
		_exit(fn(arg, p[1]));
	}
	close(p[1]);
	c.ready_fd = p[0];
	return c;
}

static void tell_ready(int fd)
{
	char x = 'r';

	if (write(fd, &x, 1) != 1) {
		_exit(90);
	}
}

/* Waits (bounded) for the child's ready byte. */
static void await_ready(const struct child *c)
{
	struct pollfd pfd = {.fd = c->ready_fd, .events = POLLIN};
	char x;

	ck_assert_int_eq(poll(&pfd, 1, BOUND_MS), 1);
	ck_assert_int_eq(read(c->ready_fd, &x, 1), 1);
}

static int reap(struct child *c)
{
	close(c->ready_fd);
	return sbt_wait(c->pid);
}

/* What children need to reach the broker and the topic. */
struct job {
	const char *socket;
	const char *topic;
	uint32_t count;
	uint32_t producer;
	int start;
	_Atomic uint32_t *seen; /* shared: per-seq delivery counts */
};

/* ---- pub/sub across processes --------------------------------------- */

/* Subscriber child: `count` messages from producer 0 in order, alternating
 * copy and zero-copy receives. */
static int subscriber_main(void *arg, int ready_fd)
{
	struct job *j = arg;
	shmbus *bus;
	shmbus_sub *sub;
	uint32_t seq, producer;

	if (shmbus_connect(j->socket, "sub", &bus) < 0) {
		return 10;
	}
	if (shmbus_sub_open(bus, j->topic, j->start, &sub) < 0) {
		return 11;
	}
	tell_ready(ready_fd);
	for (uint32_t i = 0; i < j->count; i++) {
		if (sbt_bus_receive(sub, (i / 3) % 2, &seq, &producer) < 0) {
			return 12;
		}
		if (seq != i || producer != 0) {
			return 13;
		}
	}
	if (shmbus_sub_lost(sub) != 0) {
		return 14;
	}
	shmbus_sub_close(sub);
	shmbus_close(bus);
	return 0;
}

START_TEST(pubsub_across_processes)
{
	struct sbt_broker b;
	struct job j = {.topic = "t/pubsub", .count = 3000};
	struct child c;
	shmbus *bus;
	shmbus_pub *pub;

	sbt_broker_up(&b, NULL);
	j.socket = b.socket;
	/* A small ring, so that the run wraps many times and the producer
	 * blocks on the subscriber. */
	create_topic_before_fork(&b, j.topic, 8192, SHMBUS_BROADCAST);
	c = spawn(subscriber_main, &j);
	await_ready(&c);
	bus = sbt_bus_up(&b, "check_bus");
	ck_assert_int_eq(shmbus_pub_open(bus, j.topic, &pub), 0);
	for (uint32_t i = 0; i < j.count; i++) {
		ck_assert_int_eq(sbt_bus_publish(pub, i, 0, (i / 5) % 2), 0);
	}
	ck_assert_int_eq(reap(&c), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

START_TEST(start_earliest_and_latest)
{
	struct sbt_broker b;
	shmbus *bus;
	shmbus_pub *pub;
	shmbus_sub *latest, *earliest;
	uint32_t seq, producer;
	char buf[8];

	sbt_broker_up(&b, NULL);
	bus = sbt_bus_up(&b, "check_bus");
	sbt_bus_topic(bus, "t/start", 65536, SHMBUS_BROADCAST, SHMBUS_BLOCK);
	ck_assert_int_eq(shmbus_pub_open(bus, "t/start", &pub), 0);
	for (uint32_t i = 0; i < 3; i++) {
		ck_assert_int_eq(sbt_bus_publish(pub, i, 0, 0), 0);
	}
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/start", SHMBUS_START_LATEST, &latest), 0);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/start", SHMBUS_START_EARLIEST, &earliest),
	    0);
	ck_assert_int_eq(shmbus_receive(latest, buf, sizeof(buf), 0), -EAGAIN);
	for (uint32_t i = 0; i < 3; i++) {
		ck_assert_int_eq(sbt_bus_receive(earliest, 0, &seq, &producer),
				 0);
		ck_assert_uint_eq(seq, i);
	}
	ck_assert_int_eq(sbt_bus_publish(pub, 3, 0, 1), 0);
	ck_assert_int_eq(sbt_bus_receive(latest, 1, &seq, &producer), 0);
	ck_assert_uint_eq(seq, 3);
	ck_assert_int_eq(sbt_bus_receive(earliest, 0, &seq, &producer), 0);
	ck_assert_uint_eq(seq, 3);
	ck_assert_int_eq(shmbus_sub_close(latest), 0);
	ck_assert_int_eq(shmbus_sub_close(earliest), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- a queue with three consumers ------------------------------------ */

#define STOP_SEQ 0xffffffffu

static int consumer_main(void *arg, int ready_fd)
{
	struct job *j = arg;
	shmbus *bus;
	shmbus_sub *sub;
	unsigned char buf[MAX_PAYLOAD];
	uint32_t seq, producer;
	ssize_t n;

	if (shmbus_connect(j->socket, "consumer", &bus) < 0) {
		return 10;
	}
	if (shmbus_sub_open(bus, j->topic, SHMBUS_START_LATEST, &sub) < 0) {
		return 11;
	}
	tell_ready(ready_fd);
	for (;;) {
		n = shmbus_receive(sub, buf, sizeof(buf), BOUND_MS);
		if (n == 4) {
			break; /* a stop message: each consumer takes one */
		}
		if (n < 0) {
			return 12;
		}
		if (!sbt_bus_msg_check(buf, (size_t)n, &seq, &producer) ||
		    seq >= j->count) {
			return 13;
		}
		atomic_fetch_add_explicit(&j->seen[seq], 1,
					  memory_order_relaxed);
	}
	shmbus_sub_close(sub);
	shmbus_close(bus);
	return 0;
}

START_TEST(queue_three_consumers_exactly_once)
{
	struct sbt_broker b;
	struct job j = {.topic = "t/queue", .count = 3000};
	struct child c[3];
	shmbus *bus;
	shmbus_pub *pub;
	uint32_t stop = STOP_SEQ;
	size_t seen_size = j.count * sizeof(*j.seen);

	j.seen = mmap(NULL, seen_size, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(j.seen, MAP_FAILED);
	sbt_broker_up(&b, NULL);
	j.socket = b.socket;
	create_topic_before_fork(&b, j.topic, 16384, SHMBUS_QUEUE);
	for (int i = 0; i < 3; i++) {
		c[i] = spawn(consumer_main, &j);
	}
	for (int i = 0; i < 3; i++) {
		await_ready(&c[i]);
	}
	bus = sbt_bus_up(&b, "check_bus");
	ck_assert_int_eq(shmbus_pub_open(bus, j.topic, &pub), 0);
	for (uint32_t i = 0; i < j.count; i++) {
		ck_assert_int_eq(sbt_bus_publish(pub, i, 0, i % 2), 0);
	}
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(shmbus_publish(pub, &stop, 4, BOUND_MS), 0);
	}
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(reap(&c[i]), 0);
	}
	for (uint32_t i = 0; i < j.count; i++) {
		ck_assert_msg(j.seen[i] == 1, "message %u delivered %u times",
			      i, (unsigned)j.seen[i]);
	}
	munmap(j.seen, seen_size);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- crashes ---------------------------------------------------------- */

/* Subscribes and then never reads: holds writers back until killed. */
static int stalled_subscriber_main(void *arg, int ready_fd)
{
	struct job *j = arg;
	shmbus *bus;
	shmbus_sub *sub;

	if (shmbus_connect(j->socket, "stalled", &bus) < 0 ||
	    shmbus_sub_open(bus, j->topic, SHMBUS_START_LATEST, &sub) < 0) {
		return 10;
	}
	tell_ready(ready_fd);
	for (;;) {
		pause();
	}
}

/* Publishes one message into the full ring, waiting (bounded). */
static int blocked_publisher_main(void *arg, int ready_fd)
{
	struct job *j = arg;
	shmbus *bus;
	shmbus_pub *pub;
	int r;

	if (shmbus_connect(j->socket, "blocked", &bus) < 0 ||
	    shmbus_pub_open(bus, j->topic, &pub) < 0) {
		return 10;
	}
	tell_ready(ready_fd);
	r = sbt_bus_publish(pub, j->count, 0, 0);
	shmbus_pub_close(pub);
	shmbus_close(bus);
	return r == 0 ? 0 : 11;
}

START_TEST(dead_subscriber_releases_blocked_producer)
{
	struct sbt_broker b;
	struct job j = {.topic = "t/stall"};
	struct child stalled, blocked;
	shmbus *bus;
	shmbus_pub *pub;
	uint32_t n = 0;
	int r;

	sbt_broker_up(&b, NULL);
	j.socket = b.socket;
	bus = sbt_bus_up(&b, "check_bus");
	sbt_bus_topic(bus, j.topic, 4096, SHMBUS_BROADCAST, SHMBUS_BLOCK);
	stalled = spawn(stalled_subscriber_main, &j);
	await_ready(&stalled);
	ck_assert_int_eq(shmbus_pub_open(bus, j.topic, &pub), 0);
	/* Fill the ring: the stalled subscriber holds every byte. */
	for (;;) {
		unsigned char buf[MAX_PAYLOAD];
		size_t len = sbt_bus_msg_make(buf, n, 0);

		r = shmbus_publish(pub, buf, len, 0);
		if (r == -EAGAIN) {
			break;
		}
		ck_assert_int_eq(r, 0);
		n++;
	}
	ck_assert_uint_gt(n, 0);
	j.count = n;
	blocked = spawn(blocked_publisher_main, &j);
	await_ready(&blocked);
	/* Give the publisher time to go to sleep on the full ring; the test
	 * passes whether or not it already sleeps. */
	usleep(100 * 1000);
	kill(stalled.pid, SIGKILL);
	ck_assert_int_eq(reap(&stalled), -SIGKILL);
	/* The broker reaps the dead connection's slot: the producer goes on. */
	ck_assert_int_eq(reap(&blocked), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* Claims, writes half the message, reports, and waits to be killed. */
static int dying_claimer_main(void *arg, int ready_fd)
{
	struct job *j = arg;
	shmbus *bus;
	shmbus_pub *pub;
	void *dst;

	if (shmbus_connect(j->socket, "claimer", &bus) < 0 ||
	    shmbus_pub_open(bus, j->topic, &pub) < 0 ||
	    shmbus_claim(pub, 500, &dst, BOUND_MS) < 0) {
		return 10;
	}
	memset(dst, 0xee, 250);
	tell_ready(ready_fd);
	for (;;) {
		pause();
	}
}

START_TEST(producer_killed_between_claim_and_commit)
{
	struct sbt_broker b;
	struct job j = {.topic = "t/claim"};
	struct child claimer;
	shmbus *bus;
	shmbus_pub *pub;
	shmbus_sub *sub;
	uint32_t seq, producer;
	char buf[8];

	sbt_broker_up(&b, NULL);
	j.socket = b.socket;
	bus = sbt_bus_up(&b, "check_bus");
	sbt_bus_topic(bus, j.topic, 65536, SHMBUS_BROADCAST, SHMBUS_BLOCK);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, j.topic, SHMBUS_START_LATEST, &sub), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, j.topic, &pub), 0);
	ck_assert_int_eq(sbt_bus_publish(pub, 0, 1, 0), 0);
	claimer = spawn(dying_claimer_main, &j);
	await_ready(&claimer);
	kill(claimer.pid, SIGKILL);
	ck_assert_int_eq(reap(&claimer), -SIGKILL);
	/* The next producer recovers the writer lock, both paths. */
	ck_assert_int_eq(sbt_bus_publish(pub, 1, 1, 0), 0);
	ck_assert_int_eq(sbt_bus_publish(pub, 2, 1, 1), 0);
	/* The subscriber sees exactly the committed messages, whole. */
	for (uint32_t i = 0; i < 3; i++) {
		ck_assert_int_eq(sbt_bus_receive(sub, i % 2, &seq, &producer),
				 0);
		ck_assert_uint_eq(seq, i);
		ck_assert_uint_eq(producer, 1);
	}
	ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0), -EAGAIN);
	ck_assert_int_eq(shmbus_sub_close(sub), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

START_TEST(data_path_survives_broker_kill)
{
	struct sbt_broker b;
	shmbus *bus;
	shmbus_pub *pub;
	shmbus_sub *sub;
	uint32_t seq, producer;
	pid_t pid;

	sbt_broker_up(&b, NULL);
	bus = sbt_bus_up(&b, "check_bus");
	sbt_bus_topic(bus, "t/survive", 8192, SHMBUS_BROADCAST, SHMBUS_BLOCK);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/survive", SHMBUS_START_LATEST, &sub), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, "t/survive", &pub), 0);
	ck_assert_int_eq(sbt_broker_signal_wait(&b, SIGKILL), -SIGKILL);

	/* Same process, both paths. */
	for (uint32_t i = 0; i < 50; i++) {
		ck_assert_int_eq(sbt_bus_publish(pub, i, 0, i % 2), 0);
		ck_assert_int_eq(
		    sbt_bus_receive(sub, (i / 2) % 2, &seq, &producer), 0);
		ck_assert_uint_eq(seq, i);
	}
	/* Another process, through the inherited mapping: it publishes more
	 * than the ring holds, so it only finishes if we keep reading. */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		for (uint32_t i = 50; i < 500; i++) {
			if (sbt_bus_publish(pub, i, 0, i % 2) != 0) {
				_exit(1);
			}
		}
		_exit(0);
	}
	for (uint32_t i = 50; i < 500; i++) {
		ck_assert_int_eq(sbt_bus_receive(sub, i % 2, &seq, &producer),
				 0);
		ck_assert_uint_eq(seq, i);
	}
	ck_assert_int_eq(sbt_wait(pid), 0);
	/* Requests fail with a connection error; closing still works. */
	ck_assert_int_eq(shmbus_topic_delete(bus, "t/survive"), -ECONNRESET);
	ck_assert_int_eq(shmbus_topic_delete(bus, "t/survive"), -ECONNRESET);
	ck_assert_int_eq(shmbus_sub_close(sub), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- lifetimes -------------------------------------------------------- */

START_TEST(pub_and_sub_outlive_the_bus)
{
	struct sbt_broker b;
	shmbus *bus, *other;
	shmbus_pub *pub;
	shmbus_sub *sub;
	uint32_t seq, producer;

	sbt_broker_up(&b, NULL);
	bus = sbt_bus_up(&b, "check_bus");
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/outlive", SHMBUS_START_LATEST, &sub), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, "t/outlive", &pub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	for (uint32_t i = 0; i < 10; i++) {
		ck_assert_int_eq(sbt_bus_publish(pub, i, 0, i % 2), 0);
		ck_assert_int_eq(sbt_bus_receive(sub, i % 2, &seq, &producer),
				 0);
		ck_assert_uint_eq(seq, i);
	}
	ck_assert_int_ge(shmbus_sub_fd(sub), 0);
	ck_assert_int_eq(shmbus_sub_close(sub), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	/* The broker is fine and the implicit topic is usable again. */
	other = sbt_bus_up(&b, "check_bus");
	ck_assert_int_eq(shmbus_pub_open(other, "t/outlive", &pub), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_close(other), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

START_TEST(close_everything_after_broker_death)
{
	struct sbt_broker b;
	shmbus *bus;
	shmbus_pub *pub;
	shmbus_sub *sub;
	uint32_t seq, producer;

	sbt_broker_up(&b, NULL);
	bus = sbt_bus_up(&b, "check_bus");
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/orphan", SHMBUS_START_LATEST, &sub), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, "t/orphan", &pub), 0);
	ck_assert_int_ge(shmbus_sub_fd(sub), 0);
	ck_assert_int_eq(sbt_broker_signal_wait(&b, SIGKILL), -SIGKILL);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_bus_publish(pub, 7, 0, 1), 0);
	ck_assert_int_eq(sbt_bus_receive(sub, 1, &seq, &producer), 0);
	ck_assert_uint_eq(seq, 7);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_sub_close(sub), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- errors ----------------------------------------------------------- */

static void set_sun_path(struct sockaddr_un *addr, const char *path)
{
	size_t len = strlen(path);

	ck_assert_uint_lt(len, sizeof(addr->sun_path));
	memcpy(addr->sun_path, path, len + 1);
}

START_TEST(no_broker)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	char *dir = sbt_tempdir();
	char path[256];
	shmbus *bus = (shmbus *)1;
	int fd;

	snprintf(path, sizeof(path), "%s/none.sock", dir);
	ck_assert_int_eq(shmbus_connect(path, NULL, &bus), -ENOENT);
	ck_assert_ptr_null(bus);
	/* A socket file nobody listens on (a dead broker's). */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	set_sun_path(&addr, path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	close(fd);
	ck_assert_int_eq(shmbus_connect(path, NULL, &bus), -ECONNREFUSED);
	ck_assert_int_eq(shmbus_connect(path, NULL, NULL), -EINVAL);
	ck_assert_int_eq(shmbus_connect("", NULL, &bus), -EINVAL);
	sbt_rmtree(dir);
}
END_TEST

START_TEST(bad_names_and_arguments)
{
	struct sbt_broker b;
	shmbus *bus;
	shmbus_pub *pub = (shmbus_pub *)1;
	shmbus_sub *sub = (shmbus_sub *)1;
	struct shmbus_topic_config bad_mode = {.mode = 7};
	char long_name[SHMBUS_TOPIC_MAX + 2];
	char long_client[80];

	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	memset(long_client, 'c', sizeof(long_client) - 1);
	long_client[sizeof(long_client) - 1] = '\0';
	sbt_broker_up(&b, NULL);
	ck_assert_int_eq(shmbus_connect(b.socket, long_client, &bus), -EINVAL);
	ck_assert_int_eq(shmbus_connect(b.socket, "tab\there", &bus), -EINVAL);
	bus = sbt_bus_up(&b, "check_bus");
	ck_assert_int_eq(shmbus_topic_create(bus, "a//b", NULL), -EINVAL);
	ck_assert_int_eq(shmbus_topic_create(bus, "a/../b", NULL), -EINVAL);
	ck_assert_int_eq(shmbus_topic_create(bus, "sp ace", NULL), -EINVAL);
	ck_assert_int_eq(shmbus_topic_create(bus, long_name, NULL), -EINVAL);
	ck_assert_int_eq(shmbus_topic_create(bus, NULL, NULL), -EINVAL);
	ck_assert_int_eq(shmbus_topic_create(bus, "ok", &bad_mode), -EINVAL);
	ck_assert_int_eq(shmbus_topic_create(NULL, "ok", NULL), -EINVAL);
	ck_assert_int_eq(shmbus_topic_delete(bus, "/x"), -EINVAL);
	ck_assert_int_eq(shmbus_pub_open(bus, "", &pub), -EINVAL);
	ck_assert_ptr_null(pub);
	ck_assert_int_eq(shmbus_sub_open(bus, "a\nb", 0, &sub), -EINVAL);
	ck_assert_ptr_null(sub);
	ck_assert_int_eq(shmbus_sub_open(bus, "ok", 5, &sub), -EINVAL);
	ck_assert_int_eq(shmbus_pub_open(bus, "ok", NULL), -EINVAL);
	ck_assert_int_eq(shmbus_publish(NULL, "x", 1, 0), -EINVAL);
	ck_assert_int_eq(shmbus_receive(NULL, NULL, 0, 0), -EINVAL);
	ck_assert_int_eq(shmbus_sub_fd(NULL), -EINVAL);
	ck_assert_int_eq(shmbus_pub_close(NULL), -EINVAL);
	ck_assert_int_eq(shmbus_sub_close(NULL), -EINVAL);
	ck_assert_int_eq(shmbus_close(NULL), -EINVAL);
	ck_assert_uint_eq(shmbus_sub_lost(NULL), 0);
	/* The connection is still fine after all the refusals. */
	ck_assert_int_eq(shmbus_topic_create(bus, "ok", NULL), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

START_TEST(create_and_delete_codes)
{
	struct sbt_broker b;
	shmbus *bus;
	struct shmbus_topic_config bad_capacity = {.capacity = 5000};

	sbt_broker_up(&b, NULL);
	bus = sbt_bus_up(&b, "check_bus");
	ck_assert_int_eq(shmbus_topic_create(bus, "t/x", NULL), 0);
	ck_assert_int_eq(shmbus_topic_create(bus, "t/x", NULL), -EEXIST);
	ck_assert_int_eq(shmbus_topic_create(bus, "t/y", &bad_capacity),
			 -EINVAL);
	ck_assert_int_eq(shmbus_topic_delete(bus, "t/x"), 0);
	ck_assert_int_eq(shmbus_topic_delete(bus, "t/x"), -ENOENT);
	ck_assert_int_eq(shmbus_topic_delete(bus, "t/never"), -ENOENT);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

START_TEST(no_auto_create)
{
	struct sbt_broker b;
	shmbus *bus;
	shmbus_pub *pub;
	shmbus_sub *sub;

	sbt_broker_up(&b, "{\"auto_create\": false}");
	bus = sbt_bus_up(&b, "check_bus");
	ck_assert_int_eq(shmbus_pub_open(bus, "t/missing", &pub), -ENOENT);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/missing", SHMBUS_START_LATEST, &sub),
	    -ENOENT);
	ck_assert_int_eq(shmbus_topic_create(bus, "t/missing", NULL), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, "t/missing", &pub), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

START_TEST(too_many_subscribers)
{
	struct sbt_broker b;
	shmbus *bus;
	shmbus_sub *s1, *s2;

	sbt_broker_up(&b, "{\"limits\": {\"max_subscribers\": 1}}");
	bus = sbt_bus_up(&b, "check_bus");
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/one", SHMBUS_START_LATEST, &s1), 0);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/one", SHMBUS_START_LATEST, &s2), -EUSERS);
	ck_assert_int_eq(shmbus_sub_close(s1), 0);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/one", SHMBUS_START_LATEST, &s2), 0);
	ck_assert_int_eq(shmbus_sub_close(s2), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/*
 * The message's sequence number and the topic's max_message, as the CLI
 * uses them: shmbus_receive_info() and shmbus_peek_info() report the seq
 * of the message they return, consecutive over publishers and counting
 * what a late subscriber never saw; an info struct without room for seq
 * is refused before anything is consumed.
 */
START_TEST(message_info_and_max_message)
{
	struct shmbus_topic_config cfg = {.capacity = 65536,
					  .max_message = 1000};
	struct shmbus_msg_info info = {.size = sizeof(info)};
	struct shmbus_msg_info tiny = {.size = sizeof(size_t)};
	struct sbt_broker b;
	shmbus *bus;
	shmbus_pub *p1, *p2;
	shmbus_sub *sub;
	const void *data;
	char buf[16];
	size_t len;

	sbt_broker_up(&b, NULL);
	bus = sbt_bus_up(&b, "check_bus");
	ck_assert_int_eq(shmbus_topic_create(bus, "t/info", &cfg), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, "t/info", &p1), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, "t/info", &p2), 0);
	ck_assert_uint_eq(shmbus_pub_max_message(p1), 1000);
	ck_assert_uint_eq(shmbus_pub_max_message(NULL), 0);
	/* Three messages before the subscriber joins: seqs 0..2. */
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(shmbus_publish(p1, "early", 5, 0), 0);
	}
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/info", SHMBUS_START_LATEST, &sub), 0);
	ck_assert_int_eq(shmbus_publish(p1, "a", 1, 0), 0);
	ck_assert_int_eq(shmbus_publish(p2, "bb", 2, 0), 0);
	ck_assert_int_eq(shmbus_receive_info(sub, buf, sizeof(buf), &tiny, 0),
			 -EINVAL);
	ck_assert_int_eq(shmbus_receive_info(sub, buf, sizeof(buf), NULL, 0),
			 -EINVAL);
	ck_assert_int_eq(shmbus_receive_info(sub, buf, sizeof(buf), &info, 0),
			 1);
	ck_assert_uint_eq(info.seq, 3);
	ck_assert_int_eq(shmbus_peek_info(sub, &data, &len, &tiny, 0), -EINVAL);
	ck_assert_int_eq(shmbus_peek_info(sub, &data, &len, &info, 0), 0);
	ck_assert_uint_eq(len, 2);
	ck_assert_uint_eq(info.seq, 4);
	ck_assert_int_eq(shmbus_release(sub), 0);
	info.seq = 99;
	ck_assert_int_eq(shmbus_receive_info(sub, buf, sizeof(buf), &info, 0),
			 -EAGAIN);
	ck_assert_uint_eq(info.seq, 99); /* untouched on failure */
	ck_assert_int_eq(shmbus_sub_close(sub), 0);
	ck_assert_int_eq(shmbus_pub_close(p1), 0);
	ck_assert_int_eq(shmbus_pub_close(p2), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

static int64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Receives one message with its info; checks its bytes and metadata. */
static void expect_meta(shmbus_sub *sub, const char *want, int64_t after,
			uint64_t publisher)
{
	struct shmbus_msg_info info = {.size = sizeof(info)};
	char buf[128];
	ssize_t n = shmbus_receive_info(sub, buf, sizeof(buf), &info, 0);

	ck_assert_int_eq(n, (ssize_t)strlen(want));
	ck_assert_mem_eq(buf, want, (size_t)n);
	ck_assert_uint_eq(info.flags, SHMBUS_MSG_METADATA);
	ck_assert_uint_eq(info.publisher, publisher);
	ck_assert(info.publish_time_ns >= after);
	ck_assert(info.publish_time_ns <= realtime_ns());
}

/*
 * A topic with metadata: every way of publishing stamps each message with
 * its publish time and the publisher's client id, every way of receiving
 * reports them and hands over the message without them; the 16 bytes
 * count in max_message; a topic without gets flags 0.
 */
START_TEST(metadata_travels_with_each_message)
{
	struct shmbus_topic_config cfg = {
	    .capacity = 65536, .max_message = 100, .metadata = 1};
	struct shmbus_msg_info info = {.size = sizeof(info)};
	struct iovec batch[2] = {{"b1", 2}, {"b22", 3}};
	char big[85], buf[4];
	struct sbt_broker b;
	shmbus *bus;
	shmbus_pub *pub, *plain_pub;
	shmbus_sub *sub, *plain;
	const void *data;
	uint64_t me;
	int64_t t0;
	size_t len;
	void *dst;

	memset(big, 'x', sizeof(big));
	sbt_broker_up(&b, NULL);
	bus = sbt_bus_up(&b, "check_bus");
	ck_assert_int_eq(shmbus_topic_create(bus, "t/meta", &cfg), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, "t/meta", &pub), 0);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/meta", SHMBUS_START_LATEST, &sub), 0);
	me = sb_client_id(bus);
	ck_assert_uint_ne(me, 0);
	ck_assert_uint_eq(shmbus_pub_max_message(pub), 84);
	ck_assert_uint_eq(shmbus_pub_id(pub), me);
	ck_assert_int_eq(shmbus_publish(pub, big, 85, 0), -EMSGSIZE);
	ck_assert_int_eq(shmbus_claim(pub, 85, &dst, 0), -EMSGSIZE);
	t0 = realtime_ns();
	ck_assert_int_eq(shmbus_publish(pub, big, 84, 0), 0);
	ck_assert_int_eq(shmbus_publish(pub, "hello", 5, 0), 0);
	ck_assert_int_eq(shmbus_claim(pub, 4, &dst, 0), 0);
	memcpy(dst, "zero", 4);
	ck_assert_int_eq(shmbus_commit(pub), 0);
	ck_assert_int_eq(shmbus_publish_batch(pub, batch, 2, 0), 2);
	/* Too small a buffer: the message stays for a larger one. */
	ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0), -EMSGSIZE);
	{
		char whole[84];

		ck_assert_int_eq(shmbus_receive(sub, whole, sizeof(whole), 0),
				 84);
		ck_assert_mem_eq(whole, big, 84);
	}
	expect_meta(sub, "hello", t0, me);
	ck_assert_int_eq(shmbus_peek_info(sub, &data, &len, &info, 0), 0);
	ck_assert_uint_eq(len, 4);
	ck_assert_mem_eq(data, "zero", 4);
	ck_assert_uint_eq(info.publisher, me);
	ck_assert_int_eq(shmbus_release(sub), 0);
	expect_meta(sub, "b1", t0, me);
	expect_meta(sub, "b22", t0, me);
	ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0), -EAGAIN);
	/* Without metadata: flags 0, nothing stripped. */
	ck_assert_int_eq(shmbus_pub_open(bus, "t/plain", &plain_pub), 0);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/plain", SHMBUS_START_LATEST, &plain), 0);
	ck_assert_int_eq(shmbus_publish(plain_pub, "p", 1, 0), 0);
	ck_assert_int_eq(shmbus_receive_info(plain, buf, sizeof(buf), &info, 0),
			 1);
	ck_assert_uint_eq(info.flags, 0);
	ck_assert_uint_eq(shmbus_pub_id(plain_pub), 0);
	ck_assert_uint_eq(shmbus_pub_id(NULL), 0);
	ck_assert_int_eq(shmbus_sub_close(plain), 0);
	ck_assert_int_eq(shmbus_pub_close(plain_pub), 0);
	ck_assert_int_eq(shmbus_sub_close(sub), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/*
 * A publisher that writes the ring without the library (here through the
 * raw protocol) can put a record too short for the metadata into a
 * metadata topic: the subscriber refuses it with -EBADMSG, once, and goes
 * on with the next message. What the metadata says is the publisher's
 * word: it is not checked.
 */
START_TEST(a_record_without_metadata_is_refused)
{
	struct shmbus_topic_config cfg = {.capacity = 65536, .metadata = 1};
	struct sbt_broker b;
	struct sbt_rc rc;
	struct sbt_rc_topic raw;
	shmbus *bus;
	shmbus_pub *pub;
	shmbus_sub *sub;
	char buf[64];

	sbt_broker_up(&b, NULL);
	bus = sbt_bus_up(&b, "check_bus");
	ck_assert_int_eq(shmbus_topic_create(bus, "t/hostile", &cfg), 0);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/hostile", SHMBUS_START_LATEST, &sub), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, "t/hostile", &pub), 0);
	ck_assert_int_eq(sbt_rc_hello(&rc, b.socket, "raw"), 0);
	ck_assert_int_eq(sbt_rc_call(&rc, "{\"op\":\"pub_open\",\"id\":2,"
					  "\"topic\":\"t/hostile\"}"),
			 0);
	ck_assert_int_eq(sbt_rc_map_topic(&rc, 1, &raw), 0);
	ck_assert_uint_ne(raw.ring.flags & SB_RING_FLAG_METADATA, 0);
	ck_assert_int_eq(sb_ring_publish(&raw.ring, "short", 5, 0), 0);
	ck_assert_int_eq(shmbus_publish(pub, "fine", 4, 0), 0);
	ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0), -EBADMSG);
	ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0), 4);
	ck_assert_mem_eq(buf, "fine", 4);
	sbt_rc_unmap_topic(&raw);
	sbt_rc_close(&rc);
	ck_assert_int_eq(shmbus_sub_close(sub), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

START_TEST(data_path_codes)
{
	struct sbt_broker b;
	shmbus *bus;
	shmbus_pub *pub;
	shmbus_sub *sub;
	unsigned char big[MAX_PAYLOAD + 100];
	char small[4], buf[64];
	const void *data;
	size_t len;
	void *dst;

	memset(big, 1, sizeof(big));
	sbt_broker_up(&b, NULL);
	bus = sbt_bus_up(&b, "check_bus");
	sbt_bus_topic(bus, "t/codes", 65536, SHMBUS_BROADCAST, SHMBUS_BLOCK);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/codes", SHMBUS_START_LATEST, &sub), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, "t/codes", &pub), 0);

	/* Over the topic's max_message, both paths. */
	ck_assert_int_eq(shmbus_publish(pub, big, sizeof(big), 0), -EMSGSIZE);
	ck_assert_int_eq(shmbus_claim(pub, sizeof(big), &dst, 0), -EMSGSIZE);
	ck_assert_int_eq(shmbus_publish(pub, NULL, 3, 0), -EINVAL);
	ck_assert_int_eq(shmbus_publish(pub, "x", 1, -2), -EINVAL);

	/* A batch: all of it in order, or nothing when one is too big. */
	{
		struct iovec batch[3] = {{"one", 3}, {"", 0}, {"three", 5}};
		struct iovec bad[2] = {{"ok", 2}, {big, sizeof(big)}};

		ck_assert_int_eq(shmbus_publish_batch(pub, batch, 3, 0), 3);
		ck_assert_int_eq(shmbus_publish_batch(pub, bad, 2, 0),
				 -EMSGSIZE);
		ck_assert_int_eq(shmbus_publish_batch(pub, NULL, 2, 0),
				 -EINVAL);
		ck_assert_int_eq(shmbus_publish_batch(NULL, batch, 3, 0),
				 -EINVAL);
		ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0), 3);
		ck_assert_int_eq(memcmp(buf, "one", 3), 0);
		ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0), 0);
		ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0), 5);
		ck_assert_int_eq(memcmp(buf, "three", 5), 0);
	}

	/* One claim at a time; no publish on the claiming thread. */
	ck_assert_int_eq(shmbus_commit(pub), -EINVAL);
	ck_assert_int_eq(shmbus_claim(pub, 8, &dst, 0), 0);
	ck_assert_int_eq(shmbus_claim(pub, 8, &dst, 0), -EBUSY);
	ck_assert_int_eq(shmbus_publish(pub, "x", 1, 0), -EBUSY);
	{
		struct iovec one = {"x", 1};

		ck_assert_int_eq(shmbus_publish_batch(pub, &one, 1, 0), -EBUSY);
	}
	memcpy(dst, "claimed!", 8);
	ck_assert_int_eq(shmbus_commit(pub), 0);
	ck_assert_int_eq(shmbus_commit(pub), -EINVAL);

	/* A buffer too small keeps the message. */
	ck_assert_int_eq(shmbus_receive(sub, small, sizeof(small), 0),
			 -EMSGSIZE);
	ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0), 8);
	ck_assert_int_eq(memcmp(buf, "claimed!", 8), 0);

	/* Empty: -EAGAIN, or -ETIMEDOUT after a wait. */
	ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0), -EAGAIN);
	ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 10), -ETIMEDOUT);
	ck_assert_int_eq(shmbus_peek(sub, &data, &len, 0), -EAGAIN);
	ck_assert_int_eq(shmbus_release(sub), -EINVAL);

	/* A held peek blocks receive until released. */
	ck_assert_int_eq(shmbus_publish(pub, "peek", 4, 0), 0);
	ck_assert_int_eq(shmbus_peek(sub, &data, &len, 0), 0);
	ck_assert_uint_eq(len, 4);
	ck_assert_int_eq(memcmp(data, "peek", 4), 0);
	ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0), -EBUSY);
	ck_assert_int_eq(shmbus_peek(sub, &data, &len, 0), -EBUSY);
	ck_assert_int_eq(shmbus_release(sub), 0);
	ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0), -EAGAIN);
	ck_assert_uint_eq(shmbus_sub_lost(sub), 0);

	/* A pub closed with a claim held gives the writer lock back. */
	ck_assert_int_eq(shmbus_claim(pub, 8, &dst, 0), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, "t/codes", &pub), 0);
	ck_assert_int_eq(shmbus_publish(pub, "after", 5, BOUND_MS), 0);
	ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0), 5);

	ck_assert_int_eq(shmbus_sub_close(sub), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/*
 * shmbus_abort() drops a claim: its bytes never reach a subscriber, the
 * next publish and claim go on (the writer lock was given back), and only
 * the holder can abort. Also on a topic with metadata, whose claim has
 * room for it before the message.
 */
static void *probe_abort(void *arg)
{
	return (void *)(intptr_t)shmbus_abort(arg);
}

START_TEST(abort_drops_the_claim)
{
	struct shmbus_topic_config meta = {
	    .capacity = 65536, .max_message = 100, .metadata = 1};
	const char *topics[2] = {"t/abort", "t/abort-meta"};
	struct sbt_broker b;
	shmbus *bus;
	char buf[64];
	void *dst;

	sbt_broker_up(&b, NULL);
	bus = sbt_bus_up(&b, "check_bus");
	sbt_bus_topic(bus, topics[0], 65536, SHMBUS_BROADCAST, SHMBUS_BLOCK);
	ck_assert_int_eq(shmbus_topic_create(bus, topics[1], &meta), 0);
	ck_assert_int_eq(shmbus_abort(NULL), -EINVAL);
	for (int i = 0; i < 2; i++) {
		shmbus_pub *pub;
		shmbus_sub *sub;
		pthread_t th;
		void *other;

		ck_assert_int_eq(
		    shmbus_sub_open(bus, topics[i], SHMBUS_START_LATEST, &sub),
		    0);
		ck_assert_int_eq(shmbus_pub_open(bus, topics[i], &pub), 0);
		ck_assert_int_eq(shmbus_abort(pub), -EINVAL);
		ck_assert_int_eq(shmbus_claim(pub, 7, &dst, 0), 0);
		memcpy(dst, "dropped", 7);
		ck_assert_int_eq(
		    pthread_create(&th, NULL, probe_abort, (void *)pub), 0);
		ck_assert_int_eq(pthread_join(th, &other), 0);
		ck_assert_int_eq((int)(intptr_t)other, -EINVAL);
		ck_assert_int_eq(shmbus_abort(pub), 0);
		ck_assert_int_eq(shmbus_abort(pub), -EINVAL);
		ck_assert_int_eq(shmbus_commit(pub), -EINVAL);
		ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0),
				 -EAGAIN);
		ck_assert_int_eq(shmbus_publish(pub, "next", 4, BOUND_MS), 0);
		ck_assert_int_eq(shmbus_claim(pub, 5, &dst, BOUND_MS), 0);
		memcpy(dst, "kept!", 5);
		ck_assert_int_eq(shmbus_commit(pub), 0);
		ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0), 4);
		ck_assert_mem_eq(buf, "next", 4);
		ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0), 5);
		ck_assert_mem_eq(buf, "kept!", 5);
		ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0),
				 -EAGAIN);
		ck_assert_uint_eq(shmbus_sub_lost(sub), 0);
		ck_assert_int_eq(shmbus_sub_close(sub), 0);
		ck_assert_int_eq(shmbus_pub_close(pub), 0);
	}
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* Another thread's claim attempt while one is held. */
struct claim_probe {
	shmbus_pub *pub;
	int claim, commit, publish;
};

static void *probe_claim(void *arg)
{
	struct claim_probe *p = arg;
	void *dst;

	p->claim = shmbus_claim(p->pub, 8, &dst, 0);
	p->commit = shmbus_commit(p->pub);
	p->publish = shmbus_publish(p->pub, "x", 1, 0);
	return NULL;
}

/*
 * A claim belongs to the thread that made it, and the ownership checks
 * know threads apart without asking the kernel each time (the id is
 * cached): another thread cannot claim again or commit it, and its publish
 * is not refused as the holder's would be (it waits for the writer lock
 * instead). A forked child is another thread too, even though it starts as
 * a copy of the holder: its commit is refused and the claim stays the
 * parent's.
 */
START_TEST(a_claim_belongs_to_its_thread)
{
	struct sbt_broker b;
	struct claim_probe probe = {0};
	pthread_t th;
	shmbus *bus;
	shmbus_pub *pub;
	shmbus_sub *sub;
	char buf[64];
	void *dst;
	pid_t pid;
	int status;

	sbt_broker_up(&b, NULL);
	bus = sbt_bus_up(&b, "check_bus");
	sbt_bus_topic(bus, "t/owner", 65536, SHMBUS_BROADCAST, SHMBUS_BLOCK);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/owner", SHMBUS_START_LATEST, &sub), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, "t/owner", &pub), 0);
	ck_assert_int_eq(shmbus_claim(pub, 8, &dst, 0), 0);

	probe.pub = pub;
	ck_assert_int_eq(pthread_create(&th, NULL, probe_claim, &probe), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(probe.claim, -EBUSY);
	ck_assert_int_eq(probe.commit, -EINVAL);
	ck_assert_int_ne(probe.publish, -EBUSY);
	ck_assert_int_ne(probe.publish, 0);

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* 0: refused as not the holder; 1: taken for the holder. */
		_exit(shmbus_commit(pub) == -EINVAL ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);

	memcpy(dst, "mine!!!!", 8);
	ck_assert_int_eq(shmbus_commit(pub), 0);
	ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), BOUND_MS), 8);
	ck_assert_int_eq(memcmp(buf, "mine!!!!", 8), 0);
	ck_assert_int_eq(shmbus_sub_close(sub), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

START_TEST(reject_and_overwrite_policies)
{
	struct sbt_broker b;
	shmbus *bus;
	shmbus_pub *pub;
	shmbus_sub *sub;
	unsigned char buf[MAX_PAYLOAD];
	uint32_t seq, producer, n = 0;
	int r;

	sbt_broker_up(&b, NULL);
	bus = sbt_bus_up(&b, "check_bus");
	sbt_bus_topic(bus, "t/reject", 4096, SHMBUS_BROADCAST, SHMBUS_REJECT);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/reject", SHMBUS_START_LATEST, &sub), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, "t/reject", &pub), 0);
	/* The reject policy fails at once even with a timeout. */
	while ((r = shmbus_publish(pub, buf, sbt_bus_msg_make(buf, n, 0),
				   BOUND_MS)) == 0) {
		n++;
	}
	ck_assert_int_eq(r, -EAGAIN);
	ck_assert_int_eq(shmbus_sub_close(sub), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);

	sbt_bus_topic(bus, "t/over", 4096, SHMBUS_BROADCAST, SHMBUS_OVERWRITE);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/over", SHMBUS_START_LATEST, &sub), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, "t/over", &pub), 0);
	for (n = 0; n < 100; n++) {
		ck_assert_int_eq(sbt_bus_publish(pub, n, 0, 0), 0);
	}
	ck_assert_int_eq(sbt_bus_receive(sub, 0, &seq, &producer), 0);
	ck_assert_uint_gt(seq, 0);
	ck_assert_uint_eq(shmbus_sub_lost(sub), seq);
	ck_assert_int_eq(shmbus_sub_close(sub), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- a fake broker, for replies a real one never sends ----------------- */

struct fake {
	char *dir;
	char path[300];
	int listen_fd;
	pthread_t thread;
	const char *reply; /* JSON payload sent for the hello, or NULL */
};

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	char buf[4096];
	int fd = accept(f->listen_fd, NULL, NULL);

	if (fd < 0) {
		return NULL;
	}
	if (read(fd, buf, sizeof(buf)) > 0 && f->reply != NULL) {
		uint32_t len = (uint32_t)strlen(f->reply);
		unsigned char hdr[4] = {
		    (unsigned char)(len >> 24), (unsigned char)(len >> 16),
		    (unsigned char)(len >> 8), (unsigned char)len};

		if (write(fd, hdr, 4) != 4 ||
		    write(fd, f->reply, len) != (ssize_t)len) {
			perror("fake broker write");
		}
	}
	close(fd);
	return NULL;
}

/* Listens on a fresh socket and starts `fn(arg)` to serve it. */
static void fake_listen(struct fake *f, void *(*fn)(void *), void *arg)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};

	f->dir = sbt_tempdir();
	snprintf(f->path, sizeof(f->path), "%s/fake.sock", f->dir);
	set_sun_path(&addr, f->path);
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(f->listen_fd, 0);
	ck_assert_int_eq(
	    bind(f->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	ck_assert_int_eq(listen(f->listen_fd, 1), 0);
	ck_assert_int_eq(pthread_create(&f->thread, NULL, fn, arg), 0);
}

static void fake_start(struct fake *f, const char *reply)
{
	f->reply = reply;
	fake_listen(f, fake_main, f);
}

static void fake_stop(struct fake *f)
{
	pthread_join(f->thread, NULL);
	close(f->listen_fd);
	sbt_rmtree(f->dir);
}

static int connect_to_fake(const char *reply)
{
	struct fake f;
	shmbus *bus = NULL;
	int r;

	fake_start(&f, reply);
	r = shmbus_connect(f.path, NULL, &bus);
	fake_stop(&f);
	if (r == 0) {
		shmbus_close(bus);
	}
	return r;
}

START_TEST(bad_broker_replies)
{
	/* Closes without answering. */
	ck_assert_int_eq(connect_to_fake(NULL), -ECONNRESET);
	/* Not JSON; wrong id; wrong version; no limits; error by name. */
	ck_assert_int_eq(connect_to_fake("nonsense"), -EPROTO);
	ck_assert_int_eq(connect_to_fake("{\"id\": 9, \"result\": {}}"),
			 -EPROTO);
	ck_assert_int_eq(
	    connect_to_fake("{\"id\": 1, \"result\": {\"version\": 2, "
			    "\"limits\": {\"max_frame\": 65536}}}"),
	    -EPROTO);
	ck_assert_int_eq(
	    connect_to_fake("{\"id\": 1, \"result\": {\"version\": 1}}"),
	    -EPROTO);
	ck_assert_int_eq(
	    connect_to_fake("{\"id\": 1, \"error\": {\"code\": \"EACCES\", "
			    "\"message\": \"no\"}}"),
	    -EACCES);
	/* "notices" present but not an array of op names. */
	ck_assert_int_eq(
	    connect_to_fake("{\"id\": 1, \"result\": {\"version\": 1, "
			    "\"limits\": {\"max_frame\": 65536}, "
			    "\"notices\": \"close\"}}"),
	    -EPROTO);
	ck_assert_int_eq(
	    connect_to_fake("{\"id\": 1, \"result\": {\"version\": 1, "
			    "\"limits\": {\"max_frame\": 65536}, "
			    "\"notices\": [1]}}"),
	    -EPROTO);
	/* A good hello; the connection then closes under the next request. */
	ck_assert_int_eq(
	    connect_to_fake("{\"id\": 1, \"result\": {\"version\": 1, "
			    "\"limits\": {\"max_frame\": 65536}}}"),
	    0);
}
END_TEST

/* ---- close as a notice ------------------------------------------------ */

/* topic_stat of `topic` on `bus`: its publisher and subscriber counts and
 * how many subscriber slots are taken. */
static void stat_counts(shmbus *bus, const char *topic, int *pubs, int *subs,
			int *slots)
{
	struct sb_client_reply rep;
	cJSON *req = cJSON_CreateObject();
	const cJSON *info;
	int r;

	ck_assert_ptr_nonnull(cJSON_AddStringToObject(req, "topic", topic));
	r = sb_client_call(bus, "topic_stat", req, &rep);
	ck_assert_msg(r == 0, "topic_stat: %s", shmbus_strerror(r));
	info = cJSON_GetObjectItem(rep.msg.result, "topic");
	*pubs =
	    (int)cJSON_GetNumberValue(cJSON_GetObjectItem(info, "publishers"));
	*subs =
	    (int)cJSON_GetNumberValue(cJSON_GetObjectItem(info, "subscribers"));
	*slots = cJSON_GetArraySize(
	    cJSON_GetObjectItem(rep.msg.result, "subscribers"));
	sb_client_reply_fini(&rep);
}

static void assert_stat(shmbus *bus, const char *topic, int pubs, int subs)
{
	int p, s, slots;

	stat_counts(bus, topic, &p, &s, &slots);
	ck_assert_int_eq(p, pubs);
	ck_assert_int_eq(s, subs);
	ck_assert_int_eq(slots, subs);
}

/*
 * Opens and closes a publisher and a subscriber many times on one
 * connection: every close (a notice, not waited for) must reach the broker
 * and be applied, or its counts would grow and the connection would run
 * into its 1024-handle limit; and every open after a close must still get
 * its own reply. The connection's own topic_stat needs no waiting (the
 * broker handles a connection's frames in order); another connection that
 * asks afterwards sees the same.
 */
START_TEST(open_close_loop_leaves_nothing_open)
{
	struct sbt_broker b;
	shmbus *bus, *other;
	shmbus_pub *keep, *pub;
	shmbus_sub *sub;
	uint32_t seq, producer;

	sbt_broker_up(&b, NULL);
	bus = sbt_bus_up(&b, "check_bus");
	sbt_bus_topic(bus, "t/churn", 65536, SHMBUS_BROADCAST, SHMBUS_BLOCK);
	ck_assert_int_eq(shmbus_pub_open(bus, "t/churn", &keep), 0);
	for (uint32_t i = 0; i < 1500; i++) {
		ck_assert_int_eq(shmbus_pub_open(bus, "t/churn", &pub), 0);
		ck_assert_int_eq(
		    shmbus_sub_open(bus, "t/churn", SHMBUS_START_LATEST, &sub),
		    0);
		if (i == 0) {
			assert_stat(bus, "t/churn", 2, 1);
		}
		if (i % 100 == 0) {
			ck_assert_int_eq(sbt_bus_publish(pub, i, 0, 0), 0);
			ck_assert_int_eq(
			    sbt_bus_receive(sub, 1, &seq, &producer), 0);
			ck_assert_uint_eq(seq, i);
		}
		/* Closed in both orders. */
		if (i % 2 == 0) {
			ck_assert_int_eq(shmbus_sub_close(sub), 0);
			ck_assert_int_eq(shmbus_pub_close(pub), 0);
		} else {
			ck_assert_int_eq(shmbus_pub_close(pub), 0);
			ck_assert_int_eq(shmbus_sub_close(sub), 0);
		}
	}
	assert_stat(bus, "t/churn", 1, 0);
	other = sbt_bus_up(&b, "check_bus");
	assert_stat(other, "t/churn", 1, 0);
	ck_assert_int_eq(shmbus_pub_close(keep), 0);
	assert_stat(bus, "t/churn", 0, 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	assert_stat(other, "t/churn", 0, 0);
	ck_assert_int_eq(shmbus_close(other), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/*
 * A scripted broker that answers hello with `hello` (a result object's
 * JSON) and every other request with an id with an empty result, never
 * a notice, and records each payload it received, in order.
 */
#define SCRIPT_MAX 8

struct script {
	struct fake f;
	const char *hello;
	cJSON *got[SCRIPT_MAX];
	int n_got;
};

/* Reads exactly `len` bytes; 0 at the end of the stream or an error. */
static int read_exact(int fd, void *buf, size_t len)
{
	size_t have = 0;

	while (have < len) {
		ssize_t n = read(fd, (char *)buf + have, len - have);

		if (n <= 0) {
			return 0;
		}
		have += (size_t)n;
	}
	return 1;
}

static void *script_main(void *arg)
{
	struct script *sc = arg;
	int fd = accept(sc->f.listen_fd, NULL, NULL);
	unsigned char hdr[4];
	char buf[4096], out[4200];

	while (fd >= 0 && read_exact(fd, hdr, 4)) {
		uint32_t len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
			       (uint32_t)hdr[2] << 8 | hdr[3];
		const cJSON *id, *op;
		cJSON *msg;
		int n;

		if (len >= sizeof(buf) || !read_exact(fd, buf, len)) {
			break;
		}
		msg = cJSON_ParseWithLength(buf, len);
		if (msg == NULL || sc->n_got == SCRIPT_MAX) {
			cJSON_Delete(msg);
			break;
		}
		sc->got[sc->n_got++] = msg;
		id = cJSON_GetObjectItem(msg, "id");
		op = cJSON_GetObjectItem(msg, "op");
		if (!cJSON_IsNumber(id)) {
			continue; /* a notice: no reply */
		}
		n = snprintf(
		    out + 4, sizeof(out) - 4, "{\"id\":%lld,\"result\":%s}",
		    (long long)id->valuedouble,
		    strcmp(cJSON_GetStringValue(op), "hello") == 0 ? sc->hello
								   : "{}");
		out[0] = (char)(n >> 24);
		out[1] = (char)(n >> 16);
		out[2] = (char)(n >> 8);
		out[3] = (char)n;
		if (write(fd, out, (size_t)n + 4) != n + 4) {
			break;
		}
	}
	if (fd >= 0) {
		close(fd);
	}
	return NULL;
}

/* 1 when recorded payload `i` is op `op` with an integer "id"; 0 when it
 * is `op` without any "id". */
static int recorded_has_id(const struct script *sc, int i, const char *op)
{
	ck_assert_int_gt(sc->n_got, i);
	ck_assert_str_eq(
	    cJSON_GetStringValue(cJSON_GetObjectItem(sc->got[i], "op")), op);
	if (cJSON_GetObjectItem(sc->got[i], "id") == NULL) {
		return 0;
	}
	ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(sc->got[i], "id")));
	return 1;
}

/*
 * Closes handle 7 on a connection to a scripted broker whose hello says
 * `hello`, between two pings, and returns what the broker received.
 */
static void close_between_pings(struct script *sc, const char *hello)
{
	struct sb_client_reply rep;
	shmbus *bus;
	uint64_t gen;

	memset(sc, 0, sizeof(*sc));
	sc->hello = hello;
	fake_listen(&sc->f, script_main, sc);
	ck_assert_int_eq(shmbus_connect(sc->f.path, "check_bus", &bus), 0);
	ck_assert_int_eq(
	    sb_client_call(bus, "ping", cJSON_CreateObject(), &rep), 0);
	gen = rep.gen;
	sb_client_reply_fini(&rep);
	sb_client_close_handle(bus, 7, gen);
	/* The reply to this ping must be the next frame either way. */
	ck_assert_int_eq(
	    sb_client_call(bus, "ping", cJSON_CreateObject(), &rep), 0);
	sb_client_reply_fini(&rep);
	ck_assert_int_eq(shmbus_close(bus), 0);
	fake_stop(&sc->f);
	ck_assert_int_eq(sc->n_got, 4);
	ck_assert(recorded_has_id(sc, 0, "hello"));
	ck_assert(recorded_has_id(sc, 1, "ping"));
	ck_assert(recorded_has_id(sc, 3, "ping"));
	ck_assert_int_eq((int)cJSON_GetNumberValue(
			     cJSON_GetObjectItem(sc->got[2], "handle")),
			 7);
}

static void script_fini(struct script *sc)
{
	for (int i = 0; i < sc->n_got; i++) {
		cJSON_Delete(sc->got[i]);
	}
}

/* A broker that names close in "notices" gets it without an id (and
 * sends nothing back); one that does not (older than notices) gets it as
 * a request, whose reply the client reads, so the next call stays in
 * step. */
START_TEST(close_is_a_notice_only_where_the_broker_takes_one)
{
	struct script sc;

	close_between_pings(&sc, "{\"version\": 1, \"limits\": "
				 "{\"max_frame\": 65536}, "
				 "\"notices\": [\"close\"]}");
	ck_assert(!recorded_has_id(&sc, 2, "close"));
	script_fini(&sc);
	close_between_pings(&sc, "{\"version\": 1, \"limits\": "
				 "{\"max_frame\": 65536}}");
	ck_assert(recorded_has_id(&sc, 2, "close"));
	script_fini(&sc);
	close_between_pings(&sc, "{\"version\": 1, \"limits\": "
				 "{\"max_frame\": 65536}, "
				 "\"notices\": [\"other\"]}");
	ck_assert(recorded_has_id(&sc, 2, "close"));
	script_fini(&sc);
}
END_TEST

/* ---- the pollable descriptor ---------------------------------------- */

static int poll_readable(int fd, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	int r = poll(&pfd, 1, timeout_ms);

	return r == 1 && (pfd.revents & POLLIN) != 0;
}

/*
 * Publishes in rounds: reads a count byte from go_fd, publishes that many
 * messages, reports on ready_fd; a zero byte ends it. One child forked
 * before the watcher thread exists, because a child of a multithreaded
 * process may only rely on async-signal-safe calls (ours connect and
 * allocate).
 */
struct poke {
	const char *socket;
	const char *topic;
	int go_fd;
};

static int poke_main(void *arg, int ready_fd)
{
	struct poke *p = arg;
	shmbus *bus;
	shmbus_pub *pub;
	uint32_t seq = 0;
	unsigned char count;

	if (shmbus_connect(p->socket, "poke", &bus) < 0 ||
	    shmbus_pub_open(bus, p->topic, &pub) < 0) {
		return 10;
	}
	tell_ready(ready_fd);
	for (;;) {
		if (read(p->go_fd, &count, 1) != 1) {
			return 11;
		}
		if (count == 0) {
			break;
		}
		for (unsigned i = 0; i < count; i++, seq++) {
			if (sbt_bus_publish(pub, seq, 2, 0) != 0) {
				return 12;
			}
		}
		tell_ready(ready_fd);
	}
	shmbus_pub_close(pub);
	shmbus_close(bus);
	return 0;
}

/* Has the poke child publish `count` messages and waits until it did. */
static void poke(const struct child *c, int go_fd, unsigned char count)
{
	ck_assert_int_eq(write(go_fd, &count, 1), 1);
	if (count != 0) {
		await_ready(c);
	}
}

START_TEST(sub_fd_with_poll)
{
	struct sbt_broker b;
	struct poke p = {.topic = "t/poll"};
	struct child c;
	shmbus *bus;
	shmbus_sub *sub;
	uint32_t seq, producer;
	char buf[MAX_PAYLOAD];
	const void *data;
	size_t len;
	int go[2], fd;

	sbt_broker_up(&b, NULL);
	p.socket = b.socket;
	ck_assert_int_eq(pipe(go), 0);
	p.go_fd = go[0];
	c = spawn(poke_main, &p);
	await_ready(&c);

	bus = sbt_bus_up(&b, "check_bus");
	ck_assert_int_eq(
	    shmbus_sub_open(bus, p.topic, SHMBUS_START_LATEST, &sub), 0);
	fd = shmbus_sub_fd(sub);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(shmbus_sub_fd(sub), fd);
	ck_assert(!poll_readable(fd, 0));

	/* Readable after another process publishes; level, not edge: it
	 * stays readable while messages wait. */
	poke(&c, go[1], 3);
	ck_assert(poll_readable(fd, BOUND_MS));
	for (uint32_t i = 0; i < 3; i++) {
		ck_assert(poll_readable(fd, 0));
		ck_assert_int_eq(sbt_bus_receive(sub, i % 2, &seq, &producer),
				 0);
		ck_assert_uint_eq(seq, i);
	}
	/* Drained: readable until a receive has found the topic empty. */
	ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0), -EAGAIN);
	ck_assert(!poll_readable(fd, 0));

	/* Again, with peek finding it empty. */
	poke(&c, go[1], 1);
	ck_assert(poll_readable(fd, BOUND_MS));
	ck_assert_int_eq(sbt_bus_receive(sub, 1, &seq, &producer), 0);
	ck_assert_uint_eq(seq, 3);
	ck_assert_int_eq(shmbus_peek(sub, &data, &len, 0), -EAGAIN);
	ck_assert(!poll_readable(fd, 0));

	/* A receive that waits and gets its message leaves the descriptor
	 * as it was; the empty receive after it clears it. */
	poke(&c, go[1], 1);
	ck_assert_int_eq(sbt_bus_receive(sub, 0, &seq, &producer), 0);
	ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0), -EAGAIN);
	ck_assert(!poll_readable(fd, 0));

	poke(&c, go[1], 0);
	ck_assert_int_eq(reap(&c), 0);
	close(go[0]);
	close(go[1]);
	/* Closing with the watcher asleep is prompt (the test's timeout
	 * would catch a hang). */
	ck_assert_int_eq(shmbus_sub_close(sub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

START_TEST(sub_fd_on_a_queue)
{
	struct sbt_broker b;
	shmbus *bus;
	shmbus_pub *pub;
	shmbus_sub *sub;
	char buf[16];
	int fd;

	sbt_broker_up(&b, NULL);
	bus = sbt_bus_up(&b, "check_bus");
	sbt_bus_topic(bus, "t/qpoll", 8192, SHMBUS_QUEUE, SHMBUS_BLOCK);
	ck_assert_int_eq(shmbus_pub_open(bus, "t/qpoll", &pub), 0);
	ck_assert_int_eq(shmbus_publish(pub, "early", 5, 0), 0);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/qpoll", SHMBUS_START_LATEST, &sub), 0);
	fd = shmbus_sub_fd(sub);
	ck_assert_int_ge(fd, 0);
	/* A message already waiting makes it readable at once. */
	ck_assert(poll_readable(fd, BOUND_MS));
	ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0), 5);
	ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0), -EAGAIN);
	ck_assert(!poll_readable(fd, 0));
	ck_assert_int_eq(shmbus_publish(pub, "late", 4, 0), 0);
	ck_assert(poll_readable(fd, BOUND_MS));
	ck_assert_int_eq(shmbus_sub_close(sub), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- threads ---------------------------------------------------------- */

#define THREAD_MSGS 2000

struct pub_thread {
	pthread_t thread;
	shmbus_pub *pub;
	uint32_t producer;
	int zero_copy;
	int result;
};

static void *pub_thread_main(void *arg)
{
	struct pub_thread *t = arg;

	for (uint32_t i = 0; i < THREAD_MSGS; i++) {
		int r;

		/* A claim the other thread holds is refused, not waited
		 * for: try again until it is committed. */
		while ((r = sbt_bus_publish(t->pub, i, t->producer,
					    t->zero_copy)) == -EBUSY &&
		       t->zero_copy) {
			sched_yield();
		}
		if (r != 0) {
			t->result = r;
			return NULL;
		}
	}
	return NULL;
}

/* Two threads publish on one pub (with publish, or each with its own
 * claims and commits) while this one receives: every message arrives
 * intact, once, in its thread's order, and no call fails but a claim
 * refused while the other thread holds one. */
static void two_threads_on_one_pub(int zero_copy)
{
	struct sbt_broker b;
	struct pub_thread t[2];
	shmbus *bus;
	shmbus_pub *pub;
	shmbus_sub *sub;
	uint32_t next[2] = {0, 0}, seq, producer;

	sbt_broker_up(&b, NULL);
	bus = sbt_bus_up(&b, "check_bus");
	sbt_bus_topic(bus, "t/threads", 8192, SHMBUS_BROADCAST, SHMBUS_BLOCK);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/threads", SHMBUS_START_LATEST, &sub), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, "t/threads", &pub), 0);
	for (uint32_t i = 0; i < 2; i++) {
		t[i].pub = pub;
		t[i].producer = i;
		t[i].zero_copy = zero_copy;
		t[i].result = 0;
		ck_assert_int_eq(
		    pthread_create(&t[i].thread, NULL, pub_thread_main, &t[i]),
		    0);
	}
	for (uint32_t i = 0; i < 2 * THREAD_MSGS; i++) {
		ck_assert_int_eq(sbt_bus_receive(sub, i % 2, &seq, &producer),
				 0);
		ck_assert_uint_lt(producer, 2);
		/* Each thread's messages arrive in its own order. */
		ck_assert_uint_eq(seq, next[producer]);
		next[producer]++;
	}
	for (uint32_t i = 0; i < 2; i++) {
		pthread_join(t[i].thread, NULL);
		ck_assert_int_eq(t[i].result, 0);
	}
	ck_assert_uint_eq(next[0], THREAD_MSGS);
	ck_assert_uint_eq(next[1], THREAD_MSGS);
	ck_assert_int_eq(shmbus_sub_close(sub), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}

START_TEST(two_threads_publish_on_one_pub)
{
	two_threads_on_one_pub(0);
}
END_TEST

/* Claims race: ownership is decided inside the ring's writer exclusion
 * (client/bus.c), so a claim that waits there must not touch the holder's
 * claim, and the holder's commit must still find it. */
START_TEST(two_threads_claim_on_one_pub)
{
	two_threads_on_one_pub(1);
}
END_TEST

/* Several threads share one connection for requests. */
struct req_thread {
	pthread_t thread;
	shmbus *bus;
	int index;
	int result;
};

static void *req_thread_main(void *arg)
{
	struct req_thread *t = arg;
	char name[32];

	for (int i = 0; i < 50 && t->result == 0; i++) {
		snprintf(name, sizeof(name), "t/req%d/%d", t->index, i);
		t->result = shmbus_topic_create(t->bus, name, NULL);
		if (t->result == 0) {
			t->result = shmbus_topic_delete(t->bus, name);
		}
	}
	return NULL;
}

START_TEST(threads_share_a_connection)
{
	struct sbt_broker b;
	struct req_thread t[4];
	shmbus *bus;

	sbt_broker_up(&b, NULL);
	bus = sbt_bus_up(&b, "check_bus");
	for (int i = 0; i < 4; i++) {
		t[i].bus = bus;
		t[i].index = i;
		t[i].result = 0;
		ck_assert_int_eq(
		    pthread_create(&t[i].thread, NULL, req_thread_main, &t[i]),
		    0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i].thread, NULL);
		ck_assert_int_eq(t[i].result, 0);
	}
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/*
 * Every page of both segments is mapped at open (MAP_POPULATE), so that no
 * publish or receive of the first lap takes a page fault: in
 * /proc/self/smaps each of the topic's mappings is resident in full.
 * Returns how many mappings of "memfd:shmbus:<topic>" it checked.
 */
static int assert_fully_mapped(const char *topic)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512], name[128];
	long size = -1;
	int in_topic = 0, checked = 0;

	ck_assert_ptr_nonnull(f);
	snprintf(name, sizeof(name), "memfd:shmbus:%s ", topic);
	while (fgets(line, sizeof(line), f) != NULL) {
		long kb;

		if (strchr(line, '-') != NULL && strstr(line, " kB") == NULL) {
			in_topic = strstr(line, name) != NULL; /* a header */
		} else if (in_topic && sscanf(line, "Size: %ld kB", &kb) == 1) {
			size = kb;
		} else if (in_topic && sscanf(line, "Rss: %ld kB", &kb) == 1) {
			ck_assert_int_gt(size, 0);
			ck_assert_int_eq(kb, size);
			checked++;
		}
	}
	fclose(f);
	return checked;
}

START_TEST(open_maps_every_page_at_once)
{
	struct sbt_broker b;
	shmbus *bus;
	shmbus_pub *pub;
	shmbus_sub *sub;

	sbt_broker_up(&b, NULL);
	bus = sbt_bus_up(&b, "check_bus");
	sbt_bus_topic(bus, "t/populate", 1 << 20, SHMBUS_BROADCAST,
		      SHMBUS_BLOCK);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/populate", SHMBUS_START_LATEST, &sub), 0);
	ck_assert_int_eq(assert_fully_mapped("t/populate"), 2);
	ck_assert_int_eq(assert_fully_mapped("t/populate:slot:0"), 1);
	ck_assert_int_eq(shmbus_pub_open(bus, "t/populate", &pub), 0);
	ck_assert_int_eq(assert_fully_mapped("t/populate"), 4);
	/* The publisher maps the subscriber's slot at open. */
	ck_assert_int_eq(assert_fully_mapped("t/populate:slot:0"), 2);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_sub_close(sub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

Suite *bus_suite(void)
{
	Suite *s = suite_create("bus");
	TCase *tc;

	tc = tcase_create("pubsub");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, pubsub_across_processes);
	tcase_add_test(tc, start_earliest_and_latest);
	tcase_add_test(tc, queue_three_consumers_exactly_once);
	suite_add_tcase(s, tc);

	tc = tcase_create("crash");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, dead_subscriber_releases_blocked_producer);
	tcase_add_test(tc, producer_killed_between_claim_and_commit);
	tcase_add_test(tc, data_path_survives_broker_kill);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifetime");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, pub_and_sub_outlive_the_bus);
	tcase_add_test(tc, close_everything_after_broker_death);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, no_broker);
	tcase_add_test(tc, bad_names_and_arguments);
	tcase_add_test(tc, create_and_delete_codes);
	tcase_add_test(tc, no_auto_create);
	tcase_add_test(tc, too_many_subscribers);
	tcase_add_test(tc, data_path_codes);
	tcase_add_test(tc, message_info_and_max_message);
	tcase_add_test(tc, metadata_travels_with_each_message);
	tcase_add_test(tc, a_record_without_metadata_is_refused);
	tcase_add_test(tc, a_claim_belongs_to_its_thread);
	tcase_add_test(tc, abort_drops_the_claim);
	tcase_add_test(tc, reject_and_overwrite_policies);
	tcase_add_test(tc, bad_broker_replies);
	suite_add_tcase(s, tc);

	tc = tcase_create("close");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, open_close_loop_leaves_nothing_open);
	tcase_add_test(tc, close_is_a_notice_only_where_the_broker_takes_one);
	suite_add_tcase(s, tc);

	tc = tcase_create("sub_fd");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, sub_fd_with_poll);
	tcase_add_test(tc, sub_fd_on_a_queue);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, two_threads_publish_on_one_pub);
	tcase_add_test(tc, two_threads_claim_on_one_pub);
	tcase_add_test(tc, threads_share_a_connection);
	suite_add_tcase(s, tc);

	tc = tcase_create("mappings");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, open_maps_every_page_at_once);
	suite_add_tcase(s, tc);
	return s;
}
