/*
 * crash_matrix.c - the crash matrix of issue 7: SIGKILL at random points,
 * many times, against real brokers and the public API, and after each kill
 * prove that nothing deadlocked (every wait is bounded: a timeout is a
 * failure), nothing torn, duplicated or corrupted was delivered (payloads
 * are patterns seeded by producer and sequence), nothing was lost between
 * live producers and subscribers (block mode: their sequences have no
 * gaps), and the broker's picture (topic_stat) matches the live processes.
 *
 *   producer-publish   a producer killed inside publish or claim/commit
 *   subscriber-peek    a broadcast subscriber killed inside peek/release
 *   queue-lock         a queue consumer killed holding the queue lock
 *   broker-storm       the broker killed and restarted on the same socket
 *                      while clients open and close topics in a storm
 *
 * Built as its own program (build/<variant>/crash-matrix); `make test`
 * runs it with small counts through tests/check_crash.c, `make soak` with
 * large ones. Prints kills survived per scenario on stderr; asserts
 * nothing about time.
 *
 * Usage: crash-matrix [--rounds N] [--seed S] [--only SCENARIO]
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "include/shmbus/shmbus.h"
#include "tests/support/broker_harness.h"
#include "tests/support/msg.h"
#include "tests/support/rawclient.h"
#include "tests/support/testutil.h"

#define IO_TIMEOUT_MS 10000 /* any single wait longer than this: deadlock */
#define MAX_PAYLOAD   400
#define END_SEQ	      UINT64_MAX
#define STORMERS      4
#define STORM_TOPICS  6

/* What children share with the parent: the first failure, progress. */
struct shared {
	_Atomic uint32_t failed;
	char why[512];
	_Atomic uint32_t stop;
	_Atomic uint64_t progress[STORMERS + 2];
};

static struct shared *sh;
static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};

	nanosleep(&ts, NULL);
}

/* Records the first failure (any process) and returns 1. */
__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
	uint32_t expected = 0;
	va_list ap;

	if (atomic_compare_exchange_strong(&sh->failed, &expected, 1)) {
		va_start(ap, fmt);
		vsnprintf(sh->why, sizeof(sh->why), fmt, ap);
		va_end(ap);
	}
	return 1;
}

/* ---- messages ------------------------------------------------------------ */

/* Builds message `seq` of `producer` (tests/support/msg.h) in buf, of a
 * length chosen by `r`; returns it. */
static size_t make_msg(unsigned char *buf, uint32_t producer, uint64_t seq,
		       uint64_t r)
{
	size_t len = SBT_MSG_HEAD + (size_t)(r % MAX_PAYLOAD);

	sbt_msg_build(buf, len, producer, seq);
	return len;
}

/* Checks a delivered message; fills *h. Returns 0 or 1 (failure noted). */
static int check_msg(const void *data, size_t len, struct sbt_msg_id *h)
{
	if (len < SBT_MSG_HEAD) {
		return fail("short message: %zu bytes", len);
	}
	if (sbt_msg_verify(data, len, UINT32_MAX, 0, h) < 0) {
		return fail("torn or corrupted message: producer %" PRIu32
			    " seq %" PRIu64 " len %zu",
			    h->producer, h->seq, len);
	}
	return 0;
}

/* Publishes one message, by copy or by claim/commit (chosen by `r`). */
static int publish_one(shmbus_pub *pub, uint32_t producer, uint64_t seq,
		       uint64_t r)
{
	unsigned char buf[SBT_MSG_HEAD + MAX_PAYLOAD];
	size_t len = make_msg(buf, producer, seq, r);
	void *dst;
	int e;

	if ((r >> 32) % 2 == 0) {
		return shmbus_publish(pub, buf, len, IO_TIMEOUT_MS);
	}
	e = shmbus_claim(pub, len, &dst, IO_TIMEOUT_MS);
	if (e < 0) {
		return e;
	}
	memcpy(dst, buf, len);
	return shmbus_commit(pub);
}

/* ---- processes ----------------------------------------------------------- */

static pid_t spawn(int (*fn)(const char *, uint32_t, int), const char *socket,
		   uint32_t id, int ready_fd)
{
	pid_t pid = fork();

	if (pid == 0) {
		rng_state ^= (uint64_t)getpid() << 17 | id;
		_exit(fn(socket, id, ready_fd));
	}
	return pid;
}

static void say_ready(int fd)
{
	char c = 'r';

	(void)!write(fd, &c, 1);
}

/* Waits (bounded) for a child's ready byte. Returns 0 or 1. */
static int await_ready(int fd, pid_t pid)
{
	struct timespec ts = {0, 1000000};
	char c;

	for (int i = 0; i < IO_TIMEOUT_MS; i++) {
		if (read(fd, &c, 1) == 1) {
			return 0;
		}
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			return fail("child %ld exited before it was ready",
				    (long)pid);
		}
		nanosleep(&ts, NULL);
	}
	return fail("child %ld never got ready", (long)pid);
}

/* SIGKILLs a victim and checks it was still running (not failed). */
static int kill_victim(pid_t pid)
{
	int st;

	kill(pid, SIGKILL);
	st = sbt_wait(pid);
	return st == -SIGKILL ? 0
			      : fail("victim %ld ended with %d, not "
				     "SIGKILL",
				     (long)pid, st);
}

static int finish(pid_t pid, const char *what)
{
	int st = sbt_wait(pid);

	return st == 0 ? 0 : fail("%s ended with status %d", what, st);
}

/* ---- the live processes of the data-path scenarios ---------------------- */

/* Publishes producer 0's sequence until told to stop, then an end marker
 * whose payload length carries nothing: the count is the end's seq - 1. */
static int live_producer(const char *socket, uint32_t topic_id, int ready)
{
	char topic[32];
	shmbus *bus;
	shmbus_pub *pub;
	uint64_t seq = 0;
	int e;

	snprintf(topic, sizeof(topic), "cm/%" PRIu32, topic_id);
	if (shmbus_connect(socket, "live-producer", &bus) < 0 ||
	    shmbus_pub_open(bus, topic, &pub) < 0) {
		return fail("live producer: cannot open %s", topic);
	}
	say_ready(ready);
	while (atomic_load(&sh->stop) == 0) {
		e = publish_one(pub, 0, seq, rnd());
		if (e < 0) {
			return fail("live producer: publish seq %" PRIu64
				    ": %s",
				    seq, shmbus_strerror(e));
		}
		seq++;
		atomic_store(&sh->progress[0], seq);
	}
	e = publish_one(pub, 0, END_SEQ, 0);
	return e < 0 ? fail("live producer: end: %s", shmbus_strerror(e)) : 0;
}

/*
 * Receives until producer 0's end marker. Producer 0's sequence must have
 * no gap and no repeat; every other producer's must be a gapless prefix
 * (a victim loses at most the message it died in, never one before it).
 */
static int live_subscriber(const char *socket, uint32_t topic_id, int ready)
{
	static uint64_t next[65536];
	unsigned char buf[SBT_MSG_HEAD + MAX_PAYLOAD];
	char topic[32];
	shmbus *bus;
	shmbus_sub *sub;
	struct sbt_msg_id h;

	snprintf(topic, sizeof(topic), "cm/%" PRIu32, topic_id);
	if (shmbus_connect(socket, "live-subscriber", &bus) < 0 ||
	    shmbus_sub_open(bus, topic, SHMBUS_START_EARLIEST, &sub) < 0) {
		return fail("live subscriber: cannot open %s", topic);
	}
	say_ready(ready);
	for (;;) {
		ssize_t n =
		    shmbus_receive(sub, buf, sizeof(buf), IO_TIMEOUT_MS);

		if (n < 0) {
			return fail("live subscriber: receive: %s",
				    shmbus_strerror((int)n));
		}
		if (check_msg(buf, (size_t)n, &h) != 0) {
			return 1;
		}
		if (h.producer == 0 && h.seq == END_SEQ) {
			break;
		}
		if (h.producer >= 65536 || h.seq != next[h.producer]) {
			return fail("producer %" PRIu32 ": got seq %" PRIu64
				    ", expected %" PRIu64
				    " (lost or duplicated)",
				    h.producer, h.seq,
				    h.producer < 65536 ? next[h.producer] : 0);
		}
		next[h.producer]++;
		if (shmbus_sub_lost(sub) != 0) {
			return fail("block topic lost %" PRIu64 " messages",
				    shmbus_sub_lost(sub));
		}
	}
	atomic_store(&sh->progress[1], next[0]);
	return 0;
}

/* ---- victims ------------------------------------------------------------- */

/* A producer publishing its own sequence (copy or claim/commit at random)
 * until killed. */
static int victim_producer(const char *socket, uint32_t id, int ready)
{
	shmbus *bus;
	shmbus_pub *pub;

	if (shmbus_connect(socket, "victim", &bus) < 0 ||
	    shmbus_pub_open(bus, "cm/1", &pub) < 0) {
		return fail("victim producer %" PRIu32 ": cannot open", id);
	}
	say_ready(ready);
	for (uint64_t seq = 0;; seq++) {
		int e = publish_one(pub, id, seq, rnd());

		if (e < 0) {
			return fail("victim producer %" PRIu32 ": %s", id,
				    shmbus_strerror(e));
		}
	}
}

/* A broadcast subscriber that peeks, checks and releases until killed. */
static int victim_subscriber(const char *socket, uint32_t id, int ready)
{
	shmbus *bus;
	shmbus_sub *sub;
	struct sbt_msg_id h;

	if (shmbus_connect(socket, "victim", &bus) < 0 ||
	    shmbus_sub_open(bus, "cm/2", SHMBUS_START_LATEST, &sub) < 0) {
		return fail("victim subscriber %" PRIu32 ": cannot open", id);
	}
	say_ready(ready);
	for (;;) {
		const void *data;
		size_t len;
		int e = shmbus_peek(sub, &data, &len, IO_TIMEOUT_MS);

		if (e < 0) {
			return fail("victim subscriber: peek: %s",
				    shmbus_strerror(e));
		}
		if (check_msg(data, len, &h) != 0) {
			return 1;
		}
		e = shmbus_release(sub);
		if (e < 0) {
			return fail("victim subscriber: release: %s",
				    shmbus_strerror(e));
		}
	}
}

/* A queue consumer that peeks (taking the queue lock) and holds it until
 * killed: the message must go to the live consumer, exactly once. */
static int victim_consumer(const char *socket, uint32_t id, int ready)
{
	shmbus *bus;
	shmbus_sub *sub;
	struct sbt_msg_id h;
	const void *data;
	size_t len;
	int e;

	if (shmbus_connect(socket, "victim", &bus) < 0 ||
	    shmbus_sub_open(bus, "cm/3", SHMBUS_START_LATEST, &sub) < 0) {
		return fail("victim consumer %" PRIu32 ": cannot open", id);
	}
	say_ready(ready);
	e = shmbus_peek(sub, &data, &len, IO_TIMEOUT_MS);
	if (e < 0) {
		return fail("victim consumer: peek: %s", shmbus_strerror(e));
	}
	if (check_msg(data, len, &h) != 0) {
		return 1;
	}
	for (;;) {
		pause();
	}
}

/* ---- the broker's picture ------------------------------------------------ */

/* Polls topic_stat (bounded) until the topic shows `pubs` publishers and
 * `subs` subscribers holding `subs` slots. Returns 0 or 1. */
static int picture(const char *socket, const char *topic, int64_t pubs,
		   int64_t subs)
{
	int64_t p = -1, s = -1, slots = -1;

	for (int i = 0; i < 500; i++) {
		struct sbt_rc c;

		if (sbt_rc_hello(&c, socket, "crash-matrix") != 0 ||
		    sbt_rc_call(&c,
				"{\"op\":\"topic_stat\",\"id\":2,\"topic\":"
				"\"%s\"}",
				topic) != 0) {
			sbt_rc_close(&c);
			return fail("topic_stat(%s) failed", topic);
		}
		p = sbt_rc_int(&c, "topic.publishers", -1);
		s = sbt_rc_int(&c, "topic.subscribers", -1);
		slots = cJSON_GetArraySize(
		    cJSON_GetObjectItem(sbt_rc_result(&c), "subscribers"));
		sbt_rc_close(&c);
		if (p == pubs && s == subs && slots == subs) {
			return 0;
		}
		sleep_us(10000);
	}
	return fail("topic %s: broker shows %" PRId64 " publishers, %" PRId64
		    " subscribers, %" PRId64 " slots; alive: %" PRId64
		    ", %" PRId64,
		    topic, p, s, slots, pubs, subs);
}

static int create_topic(const char *socket, uint32_t id, int mode)
{
	struct shmbus_topic_config cfg = {.capacity = 16384,
					  .max_message = 1024,
					  .mode = mode,
					  .overflow = SHMBUS_BLOCK};
	char topic[32];
	shmbus *bus;
	int e;

	snprintf(topic, sizeof(topic), "cm/%" PRIu32, id);
	e = shmbus_connect(socket, "crash-matrix", &bus);
	if (e == 0) {
		e = shmbus_topic_create(bus, topic, &cfg);
		shmbus_close(bus);
	}
	return e < 0 ? fail("topic_create(%s): %s", topic, shmbus_strerror(e))
		     : 0;
}

/* ---- scenarios 1-3: data-path victims ------------------------------------ */

struct data_scenario {
	const char *name;
	uint32_t topic;
	int mode;
	int (*victim)(const char *, uint32_t, int);
	long max_delay_us; /* the kill lands 0..this after the victim is up */
};

static int run_data(const struct data_scenario *sc, int rounds)
{
	struct sbt_broker b;
	pid_t prod, sub;
	int fds[2], kills = 0, bad = 0;
	char topic[32];

	snprintf(topic, sizeof(topic), "cm/%" PRIu32, sc->topic);
	atomic_store(&sh->stop, 0);
	if (sbt_broker_start(&b, NULL, NULL) != 0 || pipe(fds) < 0) {
		return fail("%s: broker start", sc->name);
	}
	bad = create_topic(b.socket, sc->topic, sc->mode);
	sub = spawn(live_subscriber, b.socket, sc->topic, fds[1]);
	bad = bad || await_ready(fds[0], sub);
	prod = spawn(live_producer, b.socket, sc->topic, fds[1]);
	bad = bad || await_ready(fds[0], prod);
	for (int i = 1; !bad && i <= rounds; i++) {
		pid_t v = spawn(sc->victim, b.socket, (uint32_t)i, fds[1]);

		bad = await_ready(fds[0], v);
		if (!bad) {
			sleep_us((long)(rnd() % (uint64_t)sc->max_delay_us));
			bad = kill_victim(v);
			kills += !bad;
		}
		/* The broker saw the victim go: only the live ones remain. */
		if (!bad && (i % 10 == 0 || i == rounds)) {
			bad = picture(b.socket, topic, 1, 1);
		}
	}
	atomic_store(&sh->stop, 1);
	bad = finish(prod, "live producer") || bad;
	bad = finish(sub, "live subscriber") || bad;
	fprintf(
	    stderr,
	    "crash-matrix: %-16s %4d kills survived; live producer's %" PRIu64
	    " messages all delivered once, in order\n",
	    sc->name, kills, atomic_load(&sh->progress[1]));
	close(fds[0]);
	close(fds[1]);
	sbt_broker_stop(&b);
	return bad;
}

/* ---- scenario 4: the broker killed during open/close storms ------------- */

/* Opens and closes handles on a few topics as fast as the broker answers,
 * reconnecting whenever it is gone, until told to stop. */
static int stormer(const char *socket, uint32_t id, int ready)
{
	say_ready(ready);
	while (atomic_load(&sh->stop) == 0) {
		shmbus *bus;
		shmbus_pub *pub = NULL;
		shmbus_sub *sub = NULL;
		char topic[32];

		if (shmbus_connect(socket, "stormer", &bus) < 0) {
			sleep_us(2000);
			continue;
		}
		for (int i = 0; i < 8 && atomic_load(&sh->stop) == 0; i++) {
			snprintf(topic, sizeof(topic), "storm/%d",
				 (int)(rnd() % STORM_TOPICS));
			if (rnd() % 2 == 0) {
				if (shmbus_pub_open(bus, topic, &pub) < 0) {
					break;
				}
				shmbus_pub_close(pub);
			} else {
				if (shmbus_sub_open(bus, topic,
						    SHMBUS_START_LATEST,
						    &sub) < 0) {
					break;
				}
				shmbus_sub_close(sub);
			}
			atomic_fetch_add(&sh->progress[id], 1);
		}
		shmbus_close(bus);
	}
	return 0;
}

/* Polls (bounded) until every stormer has moved on since `before`. */
static int storms_move(const uint64_t *before)
{
	for (int i = 0; i < 1000; i++) {
		int moved = 0;

		for (int k = 0; k < STORMERS; k++) {
			moved += atomic_load(&sh->progress[k]) > before[k];
		}
		if (moved == STORMERS) {
			return 0;
		}
		sleep_us(10000);
	}
	return fail("a stormer made no progress after a broker restart "
		    "(deadlock?)");
}

/* Polls (bounded) until the broker lists no topic: every stormer closed
 * everything, so every implicit topic must be gone. */
static int no_topics_left(const char *socket)
{
	int n = -1;

	for (int i = 0; i < 500; i++) {
		struct sbt_rc c;

		if (sbt_rc_hello(&c, socket, "crash-matrix") == 0 &&
		    sbt_rc_call(&c, "{\"op\":\"topic_list\",\"id\":2}") == 0) {
			n = cJSON_GetArraySize(
			    cJSON_GetObjectItem(sbt_rc_result(&c), "topics"));
		}
		sbt_rc_close(&c);
		if (n == 0) {
			return 0;
		}
		sleep_us(10000);
	}
	return fail("broker-storm: %d topics left with no user alive", n);
}

static int run_storm(int rounds)
{
	struct sbt_broker b;
	pid_t storm[STORMERS];
	uint64_t before[STORMERS];
	int fds[2], kills = 0, bad = 0;
	uint64_t ops;

	atomic_store(&sh->stop, 0);
	for (int k = 0; k < STORMERS; k++) {
		atomic_store(&sh->progress[k], 0);
	}
	if (sbt_broker_start(&b, NULL, NULL) != 0 || pipe(fds) < 0) {
		return fail("broker-storm: broker start");
	}
	for (int k = 0; k < STORMERS; k++) {
		storm[k] = spawn(stormer, b.socket, (uint32_t)k, fds[1]);
		bad = bad || await_ready(fds[0], storm[k]);
	}
	for (int i = 0; !bad && i < rounds; i++) {
		sleep_us(20000 + (long)(rnd() % 80000));
		for (int k = 0; k < STORMERS; k++) {
			before[k] = atomic_load(&sh->progress[k]);
		}
		sbt_broker_signal_wait(&b, SIGKILL);
		if (sbt_broker_start_in(&b, NULL, NULL) != 0) {
			bad = fail("broker-storm: restart %d failed", i + 1);
			break;
		}
		kills++;
		bad = storms_move(before);
	}
	atomic_store(&sh->stop, 1);
	ops = 0;
	for (int k = 0; k < STORMERS; k++) {
		bad = finish(storm[k], "stormer") || bad;
		ops += atomic_load(&sh->progress[k]);
	}
	bad = bad || no_topics_left(b.socket);
	fprintf(stderr,
		"crash-matrix: %-16s %4d kills survived; %" PRIu64
		" opens and closes by %d clients, no topic left behind\n",
		"broker-storm", kills, ops, STORMERS);
	close(fds[0]);
	close(fds[1]);
	sbt_broker_stop(&b);
	return bad;
}

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
	static const struct data_scenario data[] = {
	    {"producer-publish", 1, SHMBUS_BROADCAST, victim_producer, 3000},
	    {"subscriber-peek", 2, SHMBUS_BROADCAST, victim_subscriber, 3000},
	    {"queue-lock", 3, SHMBUS_QUEUE, victim_consumer, 2000},
	};
	const char *only = NULL;
	int rounds = 100, bad = 0;

	rng_state = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
			rounds = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
			rng_state = strtoull(argv[++i], NULL, 0);
		} else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
			only = argv[++i];
		} else {
			fprintf(stderr,
				"usage: %s [--rounds N] [--seed S] "
				"[--only SCENARIO]\n",
				argv[0]);
			return 2;
		}
	}
	rng_state |= 1;
	fprintf(stderr, "crash-matrix: seed %" PRIu64 ", %d rounds\n",
		rng_state, rounds);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; !bad && i < sizeof(data) / sizeof(data[0]); i++) {
		if (only == NULL || strcmp(only, data[i].name) == 0) {
			bad = run_data(&data[i], rounds);
		}
	}
	if (!bad && (only == NULL || strcmp(only, "broker-storm") == 0)) {
		bad = run_storm(rounds / 10 > 3 ? rounds / 10 : 3);
	}
	if (atomic_load(&sh->failed) != 0) {
		fprintf(stderr, "crash-matrix: FAILED: %s\n", sh->why);
		return 1;
	}
	fprintf(stderr, "crash-matrix: all scenarios passed\n");
	return bad;
}
