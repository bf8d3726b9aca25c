/*
 * check_restart.c - the broker restarting under running clients: producers
 * and subscribers in their own processes keep moving checksummed messages
 * through a SIGKILL of shmbusd with nothing lost; when a new broker starts
 * on the same socket they hand their topics back (topic_adopt), so that the
 * topic is listed again, new processes join the same stream, and a client
 * that dies afterwards still has its slot freed. Also forged descriptors
 * refused, a topic only subscribers hold, and nothing left behind.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/bus_internal.h"
#include "ring/ring.h"
#include "shmbus/shmbus.h"
#include "tests/suites.h"
#include "tests/support/broker_harness.h"
#include "tests/support/msg.h"
#include "tests/support/testutil.h"
#include "wire/frame.h"
#include "wire/message.h"

#define TOPIC	  "t/restart"
#define CAPACITY  65536
#define MAX_PROCS 4
#define RESTARTS  5
#define WAIT_MS	  10000
#define MSG_MAX	  256

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- messages ---------------------------------------------------------- */

/* ---- processes sharing one page of counters ---------------------------- */

struct sub_stats {
	_Atomic uint64_t total;
	_Atomic uint64_t count[MAX_PROCS];
	_Atomic int64_t first[MAX_PROCS]; /* -1 until the first message */
	_Atomic int64_t last[MAX_PROCS];
	_Atomic uint32_t errors; /* bad checksum, gap or duplicate */
};

struct shared {
	_Atomic uint32_t stop_pub[MAX_PROCS];
	_Atomic uint32_t stop_sub[MAX_PROCS];
	_Atomic uint32_t ready[2][MAX_PROCS]; /* [0] pubs, [1] subs */
	_Atomic uint64_t sent[MAX_PROCS];
	struct sub_stats sub[MAX_PROCS];
};

static struct shared *sh;
static char sock_path[256];

static struct shared *shared_map(void)
{
	struct shared *p = sbt_shared_alloc(sizeof(*p));

	ck_assert_ptr_nonnull(p);
	for (int k = 0; k < MAX_PROCS; k++) {
		for (int p2 = 0; p2 < MAX_PROCS; p2++) {
			atomic_store(&p->sub[k].first[p2], -1);
			atomic_store(&p->sub[k].last[p2], -1);
		}
	}
	return p;
}

static void ensure_topic(shmbus *bus)
{
	struct shmbus_topic_config cfg = {.capacity = CAPACITY,
					  .mode = SHMBUS_BROADCAST,
					  .overflow = SHMBUS_BLOCK};
	int r = shmbus_topic_create(bus, TOPIC, &cfg);

	if (r != 0 && r != -EEXIST) {
		_exit(20);
	}
}

/* Producer `id`: publishes consecutive seqs until told to stop. A full
 * ring makes it wait (block policy); a bounded wait lets it see a stop. */
static void producer_main(int id)
{
	unsigned char buf[MSG_MAX];
	shmbus *bus;
	shmbus_pub *pub;
	uint32_t seq = 0;

	if (shmbus_connect(sock_path, "producer", &bus) < 0) {
		_exit(10);
	}
	ensure_topic(bus);
	if (shmbus_pub_open(bus, TOPIC, &pub) < 0) {
		_exit(11);
	}
	atomic_store(&sh->ready[0][id], 1);
	while (atomic_load(&sh->stop_pub[id]) == 0) {
		size_t len = sbt_make_msg(buf, seq, (uint32_t)id);
		int r = shmbus_publish(pub, buf, len, 200);

		if (r == -ETIMEDOUT) {
			continue;
		}
		if (r != 0) {
			_exit(12);
		}
		atomic_store(&sh->sent[id], ++seq);
		if (seq % 16 == 0) {
			usleep(200);
		}
	}
	shmbus_pub_close(pub);
	shmbus_close(bus);
	_exit(0);
}

static void account(struct sub_stats *st, uint32_t seq, uint32_t p)
{
	int64_t last = atomic_load(&st->last[p]);

	if (last >= 0 && (int64_t)seq != last + 1) {
		atomic_fetch_add(&st->errors, 1);
	}
	if (last < 0) {
		atomic_store(&st->first[p], seq);
	}
	atomic_store(&st->last[p], seq);
	atomic_fetch_add(&st->count[p], 1);
	atomic_fetch_add(&st->total, 1);
}

/* Subscriber `id`: receives and checks until told to stop, then drains. */
static void subscriber_main(int id, int start)
{
	unsigned char buf[MSG_MAX];
	struct sub_stats *st = &sh->sub[id];
	shmbus *bus;
	shmbus_sub *sub;

	if (shmbus_connect(sock_path, "subscriber", &bus) < 0) {
		_exit(10);
	}
	ensure_topic(bus);
	if (shmbus_sub_open(bus, TOPIC, start, &sub) < 0) {
		_exit(11);
	}
	atomic_store(&sh->ready[1][id], 1);
	for (;;) {
		uint32_t seq, p;
		int stopping = atomic_load(&sh->stop_sub[id]) != 0;
		ssize_t n =
		    shmbus_receive(sub, buf, sizeof(buf), stopping ? 300 : 100);

		if (n == -ETIMEDOUT || n == -EAGAIN) {
			if (stopping) {
				break;
			}
			continue;
		}
		if (n < 0 ||
		    sbt_check_msg(buf, (size_t)n, MAX_PROCS, &seq, &p) < 0) {
			atomic_fetch_add(&st->errors, 1);
			continue;
		}
		account(st, seq, p);
	}
	shmbus_sub_close(sub);
	shmbus_close(bus);
	_exit(0);
}

/* Forks with no bus open in this process (so no other thread exists). */
static pid_t spawn_producer(int id)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		producer_main(id);
	}
	return pid;
}

static pid_t spawn_subscriber(int id, int start)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		subscriber_main(id, start);
	}
	return pid;
}

/* ---- asking the broker -------------------------------------------------- */

/* The topic's publishers and subscribers as topic_list shows them, or -1
 * each when it is not listed (or no broker answers). Connects and closes a
 * bus each time, so that this process has no thread left when it forks. */
static int listed(const char *topic, int *pubs, int *subs)
{
	struct sb_client_reply rep;
	const cJSON *topics, *it;
	shmbus *bus;
	int found = 0;
	cJSON *req;

	*pubs = *subs = -1;
	if (shmbus_connect(sock_path, "lister", &bus) < 0) {
		return 0;
	}
	req = cJSON_CreateObject();
	if (sb_client_call(bus, "topic_list", req, &rep) == 0) {
		topics =
		    cJSON_GetObjectItemCaseSensitive(rep.msg.result, "topics");
		cJSON_ArrayForEach(it, topics)
		{
			const cJSON *name =
			    cJSON_GetObjectItemCaseSensitive(it, "name");

			if (cJSON_IsString(name) &&
			    strcmp(name->valuestring, topic) == 0) {
				found = 1;
				*pubs = cJSON_GetObjectItemCaseSensitive(
					    it, "publishers")
					    ->valueint;
				*subs = cJSON_GetObjectItemCaseSensitive(
					    it, "subscribers")
					    ->valueint;
			}
		}
	}
	sb_client_reply_fini(&rep);
	shmbus_close(bus);
	return found;
}

/* Polls topic_list until `topic` shows at least `pubs` publishers and
 * `subs` subscribers. Returns the milliseconds until it was first listed
 * (at all), or -1 after WAIT_MS. */
static double wait_listed(const char *topic, int want_pubs, int want_subs)
{
	double t0 = now_ms(), first = -1;

	while (now_ms() - t0 < WAIT_MS) {
		int pubs, subs;

		if (listed(topic, &pubs, &subs)) {
			if (first < 0) {
				first = now_ms() - t0;
			}
			if (pubs >= want_pubs && subs >= want_subs) {
				return first;
			}
		}
		sbt_sleep_ms(1);
	}
	return -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Counts entries of /dev/shm whose name mentions shmbus. */
static int shm_leftovers(void)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	int n = 0;

	if (d == NULL) {
		return 0;
	}
	while ((e = readdir(d)) != NULL) {
		if (strstr(e->d_name, "shmbus") != NULL) {
			n++;
		}
	}
	closedir(d);
	return n;
}

static void restart_broker(struct sbt_broker *b, double *reconnect_ms, int pubs,
			   int subs)
{
	ck_assert_int_eq(sbt_broker_signal_wait(b, SIGKILL), -SIGKILL);
	ck_assert_int_eq(sbt_broker_start_in(b, NULL, NULL), 0);
	*reconnect_ms = wait_listed(TOPIC, 0, 0);
	ck_assert(*reconnect_ms >= 0);
	/* Every client has handed the topic back. */
	ck_assert(wait_listed(TOPIC, pubs, subs) >= 0);
}

/* ---- the stream across restarts ---------------------------------------- */

START_TEST(stream_survives_restarts)
{
	struct sbt_broker b;
	double times[RESTARTS + 1];
	pid_t p0, p1, s1, s2, victim;
	int leftovers = shm_leftovers();
	uint64_t before;

	sh = shared_map();
	ck_assert_int_eq(sbt_broker_start(&b, NULL, NULL), 0);
	snprintf(sock_path, sizeof(sock_path), "%s", b.socket);

	/* The old subscriber (checks everything), a subscriber that will be
	 * killed after the restarts, then the producer. */
	s1 = spawn_subscriber(0, SHMBUS_START_EARLIEST);
	ck_assert(sbt_wait_flag(&sh->ready[1][0], WAIT_MS));
	victim = spawn_subscriber(2, SHMBUS_START_LATEST);
	ck_assert(sbt_wait_flag(&sh->ready[1][2], WAIT_MS));
	p0 = spawn_producer(0);
	ck_assert(sbt_wait_flag(&sh->ready[0][0], WAIT_MS));
	ck_assert(sbt_wait_u64(&sh->sub[0].total, 1000, WAIT_MS));

	/* The broker dies: messages keep moving. */
	ck_assert_int_eq(sbt_broker_signal_wait(&b, SIGKILL), -SIGKILL);
	before = atomic_load(&sh->sub[0].total);
	ck_assert(sbt_wait_u64(&sh->sub[0].total, before + 2000, WAIT_MS));

	/* A new broker on the same socket: the topic comes back. */
	ck_assert_int_eq(sbt_broker_start_in(&b, NULL, NULL), 0);
	times[0] = wait_listed(TOPIC, 0, 0);
	ck_assert(times[0] >= 0);
	ck_assert(wait_listed(TOPIC, 1, 2) >= 0);
	ck_assert(sbt_broker_log_wait(&b, "handed back"));

	/* A new subscriber joins the same stream by name. */
	s2 = spawn_subscriber(1, SHMBUS_START_LATEST);
	ck_assert(sbt_wait_flag(&sh->ready[1][1], WAIT_MS));
	ck_assert(sbt_wait_u64(&sh->sub[1].count[0], 500, WAIT_MS));
	/* A new publisher reaches the old subscriber. */
	p1 = spawn_producer(1);
	ck_assert(sbt_wait_flag(&sh->ready[0][1], WAIT_MS));
	ck_assert(sbt_wait_u64(&sh->sub[0].count[1], 500, WAIT_MS));
	ck_assert(sbt_wait_u64(&sh->sub[1].count[1], 500, WAIT_MS));

	/* More restarts, with the stream moving through each. */
	for (int i = 1; i <= RESTARTS; i++) {
		before = atomic_load(&sh->sub[0].total);
		restart_broker(&b, &times[i], 2, 3);
		ck_assert(
		    sbt_wait_u64(&sh->sub[0].total, before + 1000, WAIT_MS));
	}

	/* The victim's slot was handed back to the new broker with its
	 * connection: killing it frees the slot, so the block-policy writers
	 * go on far past one ring's worth. */
	kill(victim, SIGKILL);
	ck_assert_int_eq(sbt_wait(victim), -SIGKILL);
	ck_assert(sbt_broker_log_wait(&b, "of topic \"" TOPIC "\": its "
					  "subscriber's connection closed"));
	before = atomic_load(&sh->sub[0].total);
	ck_assert(sbt_wait_u64(&sh->sub[0].total, before + 5000, WAIT_MS));

	/* Stop producers, then let the subscribers drain, then check that
	 * every message arrived exactly once, in order. */
	atomic_store(&sh->stop_pub[0], 1);
	atomic_store(&sh->stop_pub[1], 1);
	ck_assert_int_eq(sbt_wait(p0), 0);
	ck_assert_int_eq(sbt_wait(p1), 0);
	atomic_store(&sh->stop_sub[0], 1);
	atomic_store(&sh->stop_sub[1], 1);
	ck_assert_int_eq(sbt_wait(s1), 0);
	ck_assert_int_eq(sbt_wait(s2), 0);
	for (int k = 0; k < 2; k++) {
		ck_assert_uint_eq(atomic_load(&sh->sub[k].errors), 0);
		for (int p = 0; p < 2; p++) {
			ck_assert_int_eq(atomic_load(&sh->sub[k].last[p]),
					 (int64_t)atomic_load(&sh->sent[p]) -
					     1);
		}
	}
	/* The old subscriber saw both streams from their first message. */
	ck_assert_int_eq(atomic_load(&sh->sub[0].first[0]), 0);
	ck_assert_int_eq(atomic_load(&sh->sub[0].first[1]), 0);
	ck_assert_uint_eq(atomic_load(&sh->sub[0].count[0]),
			  atomic_load(&sh->sent[0]));
	ck_assert_int_eq(atomic_load(&sh->sub[1].first[1]), 0);

	qsort(times, RESTARTS + 1, sizeof(times[0]), cmp_double);
	fprintf(stderr,
		"restart: topic listed again %.1f ms (median) / %.1f ms (max) "
		"after the new broker accepted, over %d restarts; %llu "
		"messages from the first producer\n",
		times[(RESTARTS + 1) / 2], times[RESTARTS], RESTARTS + 1,
		(unsigned long long)atomic_load(&sh->sent[0]));

	/* A SIGKILLed broker's stale socket does not stop the next one;
	 * nothing is left in /dev/shm. */
	ck_assert_int_eq(sbt_broker_signal_wait(&b, SIGKILL), -SIGKILL);
	ck_assert_int_eq(sbt_broker_start_in(&b, NULL, NULL), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
	ck_assert_int_eq(shm_leftovers(), leftovers);
	munmap(sh, sizeof(*sh));
}
END_TEST

/* ---- a topic only subscribers hold -------------------------------------- */

START_TEST(subscriber_only_topic_is_read_only)
{
	struct sbt_broker b;
	shmbus *bus, *other;
	shmbus_sub *sub, *sub2;
	shmbus_pub *pub;
	unsigned char buf[MSG_MAX];

	ck_assert_int_eq(sbt_broker_start(&b, NULL, NULL), 0);
	snprintf(sock_path, sizeof(sock_path), "%s", b.socket);
	ck_assert_int_eq(shmbus_connect(b.socket, "ro", &bus), 0);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/ro", SHMBUS_START_LATEST, &sub), 0);
	ck_assert_int_eq(sbt_broker_signal_wait(&b, SIGKILL), -SIGKILL);
	ck_assert_int_eq(sbt_broker_start_in(&b, NULL, NULL), 0);
	ck_assert(wait_listed("t/ro", 0, 1) >= 0);
	ck_assert_int_eq(shmbus_connect(b.socket, "other", &other), 0);
	/* No writable memory came back: publishing is refused... */
	ck_assert_int_eq(shmbus_pub_open(other, "t/ro", &pub), -EROFS);
	/* ...subscribing joins the same memory. */
	ck_assert_int_eq(
	    shmbus_sub_open(other, "t/ro", SHMBUS_START_LATEST, &sub2), 0);
	ck_assert_int_eq(shmbus_receive(sub2, buf, sizeof(buf), 0), -EAGAIN);
	ck_assert_int_eq(shmbus_sub_close(sub2), 0);
	ck_assert_int_eq(shmbus_close(other), 0);
	ck_assert_int_eq(shmbus_sub_close(sub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- a subscriber that comes back too late ------------------------------ */

#define LATE_TOPIC "t/late"

/* Subscribes, says so, waits for "go", then receives until its library
 * reports the subscription ended (-EIDRM): 0, or a step number. */
static int late_subscriber(const char *topic, int ready_fd, int go_fd)
{
	shmbus *bus;
	shmbus_sub *sub;
	unsigned char buf[MSG_MAX];
	char c;

	if (shmbus_connect(sock_path, "late", &bus) != 0 ||
	    shmbus_sub_open(bus, topic, SHMBUS_START_EARLIEST, &sub) != 0) {
		return 10;
	}
	if (write(ready_fd, "r", 1) != 1 || read(go_fd, &c, 1) != 1) {
		return 11;
	}
	for (double until = now_ms() + 2 * WAIT_MS; now_ms() < until;) {
		/* Messages, or -EBADMSG once overrun, may come first. */
		if (shmbus_receive(sub, buf, sizeof(buf), 100) == -EIDRM) {
			return 0;
		}
	}
	return 12;
}

/* Publishes 16-byte messages until one fails; returns that result and
 * counts the successes in *n (at most `max`). */
static int publish_until_refused(shmbus_pub *pub, int timeout_ms, int max,
				 int *n)
{
	char msg[16] = "late";
	int r = 0;

	for (*n = 0; *n < max; (*n)++) {
		r = shmbus_publish(pub, msg, sizeof(msg), timeout_ms);
		if (r != 0) {
			break;
		}
	}
	return r;
}

/* A subscriber process kept stopped through a broker restart. */
struct stopped_sub {
	pid_t pid;
	int ready[2]; /* it says "subscribed" on [1] */
	int go[2];    /* it waits for "go" on [0] */
};

/* Forks `fn` on `topic`, waits until it has subscribed and stops it
 * (SIGSTOP), then kills the broker and starts a new one on the same
 * socket, to which this process's publisher hands the topic back. */
static void stop_through_restart(struct sbt_broker *b, const char *topic,
				 int (*fn)(const char *, int, int),
				 struct stopped_sub *s)
{
	int st;
	char c;

	ck_assert_int_eq(pipe(s->ready), 0);
	ck_assert_int_eq(pipe(s->go), 0);
	s->pid = fork();
	ck_assert_int_ge(s->pid, 0);
	if (s->pid == 0) {
		_exit(fn(topic, s->ready[1], s->go[0]));
	}
	ck_assert_int_eq(read(s->ready[0], &c, 1), 1);
	ck_assert_int_eq(kill(s->pid, SIGSTOP), 0);
	ck_assert_int_eq(waitpid(s->pid, &st, WUNTRACED), s->pid);
	ck_assert(WIFSTOPPED(st));
	ck_assert_int_eq(sbt_broker_signal_wait(b, SIGKILL), -SIGKILL);
	ck_assert_int_eq(sbt_broker_start_in(b, NULL, NULL), 0);
	ck_assert(wait_listed(topic, 1, 0) >= 0);
}

/* Lets the subscriber go on. */
static void resume(const struct stopped_sub *s)
{
	ck_assert_int_eq(kill(s->pid, SIGCONT), 0);
	ck_assert_int_eq(write(s->go[1], "g", 1), 1);
}

/* Waits for the subscriber to end; returns its exit status. */
static int reap_sub(struct stopped_sub *s)
{
	int r = sbt_wait(s->pid);

	for (int i = 0; i < 2; i++) {
		close(s->ready[i]);
		close(s->go[i]);
	}
	return r;
}

/*
 * A subscriber stopped through a broker restart: the new broker waits for
 * its slot (its writer holds back, block policy) for the grace period, then
 * gives it up, and writers go on; the subscriber that comes back after that
 * is refused its slot and its library ends the subscription (-EIDRM),
 * rather than leaving it to read a ring writers no longer wait for.
 */
START_TEST(a_slot_not_handed_back_in_time_is_given_up)
{
	struct shmbus_topic_config cfg = {.capacity = 4096,
					  .mode = SHMBUS_BROADCAST,
					  .overflow = SHMBUS_BLOCK};
	struct sbt_broker b;
	struct stopped_sub late;
	shmbus *bus;
	shmbus_pub *pub;
	int n;

	ck_assert_int_eq(sbt_broker_start(&b, NULL, NULL), 0);
	snprintf(sock_path, sizeof(sock_path), "%s", b.socket);
	ck_assert_int_eq(shmbus_connect(b.socket, "pub", &bus), 0);
	ck_assert_int_eq(shmbus_topic_create(bus, LATE_TOPIC, &cfg), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, LATE_TOPIC, &pub), 0);
	stop_through_restart(&b, LATE_TOPIC, late_subscriber, &late);
	/* The stopped subscriber's slot still holds the ring: less than a
	 * ring's worth goes in. */
	ck_assert_int_eq(publish_until_refused(pub, 50, 1000, &n), -ETIMEDOUT);
	ck_assert_int_lt(n, 4096 / 16);
	/* (the log wait is bounded at 10 s; the grace is as long) */
	ck_assert(sbt_broker_log_wait(&b, "were not handed back within") ||
		  sbt_broker_log_wait(&b, "were not handed back within"));
	/* Given up: writers go on, far past a ring's worth. */
	ck_assert_int_eq(publish_until_refused(pub, 1000, 1000, &n), 0);
	ck_assert_int_eq(n, 1000);

	resume(&late);
	ck_assert_int_eq(reap_sub(&late), 0);
	ck_assert(sbt_broker_log_wait(&b, "is not one this broker waits for"));
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* Subscribes to `topic`, says so, waits for "go", then receives until
 * `want` messages came, none lost: 0, or a step number. */
static int counting_subscriber(const char *topic, int ready_fd, int go_fd)
{
	const int want = 1000;
	shmbus *bus;
	shmbus_sub *sub;
	unsigned char buf[MSG_MAX];
	int got = 0;
	char c;

	if (shmbus_connect(sock_path, "counting", &bus) != 0 ||
	    shmbus_sub_open(bus, topic, SHMBUS_START_LATEST, &sub) != 0) {
		return 10;
	}
	if (write(ready_fd, "r", 1) != 1 || read(go_fd, &c, 1) != 1) {
		return 11;
	}
	for (double until = now_ms() + 2 * WAIT_MS;
	     got < want && now_ms() < until;) {
		ssize_t n = shmbus_receive(sub, buf, sizeof(buf), 100);

		if (n >= 0) {
			got++;
		} else if (n != -ETIMEDOUT) {
			return 12; /* -EBADMSG: overwritten under it */
		}
	}
	return got == want && shmbus_sub_lost(sub) == 0 ? 0 : 13;
}

/*
 * A publisher that mapped slot 0 while subscriber A had it, and never
 * reclaimed while B took slot 0 over, is then told after a broker restart
 * that slot 0 is awaited: it must not take its mapping of A's freed segment
 * for B's slot (and so write over what B has not read), but hold back until
 * B hands its slot back, after which B gets everything.
 */
START_TEST(an_awaited_slot_is_not_a_stale_mapping)
{
	struct shmbus_topic_config cfg = {.capacity = 4096,
					  .mode = SHMBUS_BROADCAST,
					  .overflow = SHMBUS_BLOCK};
	struct sbt_broker b;
	struct stopped_sub b_sub;
	shmbus *bus;
	shmbus_pub *pub;
	shmbus_sub *a;
	int n, more;

	ck_assert_int_eq(sbt_broker_start(&b, NULL, NULL), 0);
	snprintf(sock_path, sizeof(sock_path), "%s", b.socket);
	ck_assert_int_eq(shmbus_connect(b.socket, "pub", &bus), 0);
	ck_assert_int_eq(shmbus_topic_create(bus, "t/stale", &cfg), 0);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/stale", SHMBUS_START_LATEST, &a), 0);
	/* The publisher maps A's slot 0 as it opens. */
	ck_assert_int_eq(shmbus_pub_open(bus, "t/stale", &pub), 0);
	ck_assert_int_eq(shmbus_sub_close(a), 0);
	/* B takes slot 0 and is stopped through the restart. */
	stop_through_restart(&b, "t/stale", counting_subscriber, &b_sub);
	/* Less than a ring's worth goes in: B's unread place holds. */
	ck_assert_int_eq(publish_until_refused(pub, 50, 1000, &n), -ETIMEDOUT);
	ck_assert_int_lt(n, 4096 / 16);
	/* B comes back and hands its slot in: it gets them all, then the
	 * rest, nothing lost. */
	resume(&b_sub);
	ck_assert_int_eq(publish_until_refused(pub, 5000, 1000 - n, &more), 0);
	ck_assert_int_eq(reap_sub(&b_sub), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- forged descriptors -------------------------------------------------- */

/* A raw connection: says hello, then sends one topic_adopt request with
 * `nfds` descriptors and returns the reply's code. */
static int raw_adopt(const char *path, const char *topic, uint64_t capacity,
		     const int *fds, int nfds)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct sb_frame_decoder dec;
	const char *reqs[2];
	char hello[] = "{\"op\":\"hello\",\"id\":1,\"version\":1}";
	char adopt[512];
	char rbuf[4096];
	int fd, code = -1000;

	snprintf(adopt, sizeof(adopt),
		 "{\"op\":\"topic_adopt\",\"id\":2,\"topic\":\"%s\","
		 "\"access\":\"publish\",\"mode\":\"broadcast\","
		 "\"overflow\":\"block\",\"capacity\":%llu,"
		 "\"max_message\":%llu,\"explicit\":true,\"fds\":2}",
		 topic, (unsigned long long)capacity,
		 (unsigned long long)capacity / 4);
	reqs[0] = hello;
	reqs[1] = adopt;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memcpy(addr.sun_path, path, strlen(path) + 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		return -1001;
	}
	sb_frame_decoder_init(&dec, 1 << 20);
	for (int i = 0; i < 2; i++) {
		char frame[600];
		ssize_t len = sb_frame_encode(reqs[i], strlen(reqs[i]), 1 << 20,
					      frame, sizeof(frame));
		struct iovec iov = {frame, (size_t)len};
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(int) * 2)];
		} control;
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		const char *payload, *in;
		size_t plen, inlen;
		struct sb_msg_reply rep;
		ssize_t n;

		if (i == 1 && nfds > 0) {
			struct cmsghdr *cm;

			memset(&control, 0, sizeof(control));
			mh.msg_control = control.buf;
			mh.msg_controllen =
			    CMSG_SPACE(sizeof(int) * (size_t)nfds);
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
			memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
		}
		ck_assert_int_gt(len, 0);
		ck_assert_int_eq(sendmsg(fd, &mh, MSG_NOSIGNAL), len);
		n = recv(fd, rbuf, sizeof(rbuf), 0);
		ck_assert_int_gt(n, 0);
		in = rbuf;
		inlen = (size_t)n;
		ck_assert_int_eq(
		    sb_frame_decoder_next(&dec, &in, &inlen, &payload, &plen),
		    1);
		ck_assert_int_eq(sb_msg_parse_reply(payload, plen, &rep, NULL),
				 0);
		code = rep.code;
		sb_msg_reply_fini(&rep);
		if (i == 0) {
			ck_assert_int_eq(code, 0);
		}
	}
	sb_frame_decoder_fini(&dec);
	close(fd);
	return code;
}

/* A memfd of `size` bytes, sealed against shrinking and growing or not. */
static int memfd_of(uint64_t size, int sealed)
{
	int fd = memfd_create("forged", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	if (sealed) {
		ck_assert_int_eq(
		    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
	}
	return fd;
}

/* A well-formed ring in two sealed memfds, as a broker would make it for
 * topic `name` (the test runs as the broker's uid, so its memory passes the
 * owner check). */
static void good_ring(const char *name, uint64_t capacity, int fds[2])
{
	struct sb_ring_config cfg = {.capacity = capacity,
				     .max_message = (uint32_t)(capacity / 4),
				     .slot_count = 8,
				     .mode = SB_RING_BROADCAST,
				     .overflow = SB_RING_BLOCK,
				     .slot_home = SB_RING_SLOTS_SEGMENTS};
	uint64_t dsize, csize;
	void *d, *c;

	ck_assert_int_eq(sb_ring_layout(&cfg, &dsize, &csize), 0);
	fds[0] = memfd_of(dsize, 1);
	fds[1] = memfd_of(csize, 1);
	d = mmap(NULL, dsize, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	c = mmap(NULL, csize, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
	ck_assert_ptr_ne(d, MAP_FAILED);
	ck_assert_ptr_ne(c, MAP_FAILED);
	ck_assert_int_eq(sb_ring_format(d, dsize, c, csize, &cfg), 0);
	ck_assert_int_eq(sb_ring_set_name(d, name), 0);
	munmap(d, dsize);
	munmap(c, csize);
}

START_TEST(forged_descriptors_refused)
{
	struct sbt_broker b;
	const uint64_t cap = 4096;
	int good[2], other[2], fds[2], pubs, subs;
	char path[300];
	shmbus *bus;
	shmbus_pub *pub;

	ck_assert_int_eq(sbt_broker_start(&b, NULL, NULL), 0);
	snprintf(sock_path, sizeof(sock_path), "%s", b.socket);
	good_ring("t/forged", cap, good);

	/* Unsealed memfd: it could shrink under a mapping (SIGBUS). */
	fds[0] = memfd_of(4096 + cap, 0);
	fds[1] = good[1];
	ck_assert_int_eq(raw_adopt(b.socket, "t/forged", cap, fds, 2), -EPERM);
	close(fds[0]);
	/* Sealed but too small for the claimed capacity. */
	fds[0] = memfd_of(4096, 1);
	ck_assert_int_eq(raw_adopt(b.socket, "t/forged", cap, fds, 2),
			 -EBADMSG);
	close(fds[0]);
	/* Right size and sealed, but no ring in it. */
	fds[0] = memfd_of(4096 + cap, 1);
	ck_assert_int_eq(raw_adopt(b.socket, "t/forged", cap, fds, 2),
			 -EBADMSG);
	close(fds[0]);
	/* Not a memfd: a plain file. */
	snprintf(path, sizeof(path), "%s/plain", b.dir);
	fds[0] = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	ck_assert_int_ge(fds[0], 0);
	ck_assert_int_eq(ftruncate(fds[0], 4096 + cap), 0);
	ck_assert_int_eq(raw_adopt(b.socket, "t/forged", cap, fds, 2), -EPERM);
	close(fds[0]);
	/* Claims publish with a read-only data descriptor. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", good[0]);
	fds[0] = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(raw_adopt(b.socket, "t/forged", cap, fds, 2), -EBADF);
	close(fds[0]);
	/* One descriptor where two are needed; a bad name. */
	ck_assert_int_eq(raw_adopt(b.socket, "t/forged", cap, good, 1),
			 -EINVAL);
	ck_assert_int_eq(raw_adopt(b.socket, "bad name", cap, good, 2),
			 -EINVAL);
	ck_assert(!listed("t/forged", &pubs, &subs));

	/* A good ring is registered, and a second adopter of the same
	 * memory joins it instead of registering it twice. */
	ck_assert_int_eq(raw_adopt(b.socket, "t/forged", cap, good, 2), 0);
	ck_assert_int_eq(raw_adopt(b.socket, "t/forged", cap, good, 2), 0);
	ck_assert(sbt_broker_log_wait(&b, "topic \"t/forged\" handed back"));
	ck_assert(listed("t/forged", &pubs, &subs));

	/* Other memory under a name in use is refused, and logged. */
	ck_assert_int_eq(shmbus_connect(b.socket, "real", &bus), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, "t/real", &pub), 0);
	good_ring("t/real", cap, other);
	ck_assert_int_eq(raw_adopt(b.socket, "t/real", cap, other, 2), -EEXIST);
	ck_assert(sbt_broker_log_wait(&b, "topic_adopt \"t/real\" refused"));
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	for (int i = 0; i < 2; i++) {
		close(good[i]);
		close(other[i]);
	}
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

Suite *restart_suite(void)
{
	Suite *s = suite_create("restart");
	TCase *tc = tcase_create("restart");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, stream_survives_restarts);
	tcase_add_test(tc, subscriber_only_topic_is_read_only);
	tcase_add_test(tc, a_slot_not_handed_back_in_time_is_given_up);
	tcase_add_test(tc, an_awaited_slot_is_not_a_stale_mapping);
	suite_add_tcase(s, tc);

	tc = tcase_create("forged");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, forged_descriptors_refused);
	suite_add_tcase(s, tc);
	return s;
}
