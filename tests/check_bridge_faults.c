/*
 * check_bridge_faults.c - shmbus-bridge under faults, with real processes
 * and real signals: a real nats-server killed (SIGKILL) and started again
 * on its port in the middle of a stream between two bridges, where every
 * message published is either received or counted as a gap by the
 * importing bridge; shmbusd killed and restarted under a running bridge,
 * whose export (of a topic made again) and import go on with the restarted
 * broker; SIGTERM that drains what the exported topic still holds; SIGHUP
 * reloading the configuration file (a kept mapping keeps its sequence numbers,
 * a bad file changes nothing); and --give-up ending the bridge (exit 3) when
 * NATS goes away for good. Every wait is bounded; nothing asserts time.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cJSON.h>
#include <nats/nats.h>

#include "shmbus/shmbus.h"
#include "tests/suites.h"
#include "tests/support/broker_harness.h"
#include "tests/support/bus.h"
#include "tests/support/nats_harness.h"
#include "tests/support/testutil.h"

/* Bound on every wait: never reached in a healthy run. */
#define BOUND_MS 10000

/* A ring that holds every message of a test without blocking. */
#define RING_BYTES (4u << 20)

/* ---- the processes of a test, and their cleanup ------------------------ */

/*
 * Everything a test starts, in one place, so that a failed assertion
 * (which ends the test's process at once, without the teardown) still
 * leaves no nats-server or bridge behind: cleanup() runs at exit too. The
 * brokers die with the process that started them (the harness sets
 * PR_SET_PDEATHSIG), their directories are removed here.
 */
#define MAX_BRIDGES 2
#define MAX_BROKERS 2

static struct {
	char *dir; /* the bridges' logs and configuration files */
	struct sbt_nats nats;
	struct sbt_broker broker[MAX_BROKERS];
	struct sbt_bridge bridge[MAX_BRIDGES];
	int nbrokers, nbridges;
} rig;

static void cleanup(void)
{
	for (int i = 0; i < rig.nbridges; i++) {
		if (rig.bridge[i].pid > 0) {
			kill(rig.bridge[i].pid, SIGKILL);
			waitpid(rig.bridge[i].pid, NULL, 0);
			rig.bridge[i].pid = 0;
		}
	}
	rig.nbridges = 0;
	for (int i = 0; i < rig.nbrokers; i++) {
		if (rig.broker[i].dir != NULL) {
			sbt_broker_stop(&rig.broker[i]);
		}
	}
	rig.nbrokers = 0;
	sbt_nats_stop(&rig.nats);
	if (rig.dir != NULL) {
		sbt_rmtree(rig.dir);
		rig.dir = NULL;
	}
}

static void setup(void)
{
	memset(&rig, 0, sizeof(rig));
	rig.dir = sbt_tempdir();
	atexit(cleanup);
}

static void teardown(void)
{
	cleanup();
	nats_CloseAndWait(5000);
}

static void nats_up(void)
{
	ck_assert_msg(sbt_nats_start(&rig.nats, NULL) == 0,
		      "nats-server did not start (see %s)", rig.nats.log);
}

static struct sbt_broker *broker_up(void)
{
	struct sbt_broker *b = &rig.broker[rig.nbrokers];

	ck_assert_int_lt(rig.nbrokers, MAX_BROKERS);
	sbt_broker_up(b, NULL);
	rig.nbrokers++;
	return b;
}

/* Starts a bridge with `args` and waits until its mappings are started. */
static struct sbt_bridge *bridge_up(const char *const *args)
{
	struct sbt_bridge *b = &rig.bridge[rig.nbridges];

	ck_assert_int_lt(rig.nbridges, MAX_BRIDGES);
	ck_assert_int_eq(sbt_bridge_start(b, rig.dir, args), 0);
	rig.nbridges++;
	ck_assert_msg(sbt_bridge_log_wait(b, "INFO: origin ", BOUND_MS),
		      "the bridge did not start its mappings (see %s)", b->log);
	ck_assert_msg(
	    sbt_bridge_log_wait(b, "INFO: connected to NATS at", BOUND_MS),
	    "the bridge did not connect to NATS (see %s)", b->log);
	return b;
}

/* Whether the bridge runs (has not exited). */
static int alive(const struct sbt_bridge *b)
{
	return b->pid > 0 && waitpid(b->pid, NULL, WNOHANG) == 0;
}

/* Waits (bounded) for the bridge to exit by itself: its exit status, or
 * -signal, or -1000 if it was still running (then it is killed). */
static int wait_exit(struct sbt_bridge *b, int ms)
{
	int status;

	for (int t = 0; t < ms; t += 10) {
		if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
			b->pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status)
						 : -WTERMSIG(status);
		}
		sbt_sleep_ms(10);
	}
	kill(b->pid, SIGKILL);
	waitpid(b->pid, NULL, 0);
	b->pid = 0;
	return -1000;
}

/* ---- the bridge's counters --------------------------------------------- */

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t n = 0, cap = 0, got;

	ck_assert_ptr_nonnull(f);
	do {
		if (n + 4096 + 1 > cap) {
			text = realloc(text, cap = 2 * cap + 65536);
			ck_assert_ptr_nonnull(text);
		}
		got = fread(text + n, 1, 4096, f);
		n += got;
	} while (got > 0);
	fclose(f);
	text[n] = '\0';
	return text;
}

/* The last counters the bridge logged (after SIGTERM: the final ones). */
static cJSON *last_stats(const struct sbt_bridge *b)
{
	static const char tag[] = "INFO: stats ";
	char *log = read_text(b->log), *last = NULL, *end;
	cJSON *stats;

	for (char *p = log; (p = strstr(p, tag)) != NULL; p += sizeof(tag)) {
		last = p + sizeof(tag) - 1;
	}
	ck_assert_msg(last != NULL, "no stats line in %s", b->log);
	end = strchr(last, '\n');
	stats = cJSON_ParseWithLength(last, end != NULL ? (size_t)(end - last)
							: strlen(last));
	ck_assert_msg(stats != NULL, "a stats line that is not JSON in %s",
		      b->log);
	free(log);
	return stats;
}

/* Counter `name` of `obj` ("nats", "totals"; or "export"/"import" with
 * the first mapping's counters). */
static long long counter(const cJSON *stats, const char *obj, const char *name)
{
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(stats, obj);
	const cJSON *v;

	if (cJSON_IsArray(o)) {
		o = cJSON_GetArrayItem(o, 0);
	}
	v = cJSON_GetObjectItemCaseSensitive(o, name);
	ck_assert_msg(cJSON_IsNumber(v), "no counter %s.%s", obj, name);
	return (long long)v->valuedouble;
}

/* The export mapping of `topic` in `stats`. */
static const cJSON *export_of(const cJSON *stats, const char *topic)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(stats, "export"))
	{
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "topic");

		if (cJSON_IsString(t) && strcmp(t->valuestring, topic) == 0) {
			return e;
		}
	}
	ck_abort_msg("no export of topic %s in the stats", topic);
	return NULL;
}

/* ---- NATS and shmbus helpers ------------------------------------------- */

static natsConnection *nats_client(void)
{
	natsConnection *nc = NULL;
	natsStatus s = natsConnection_ConnectTo(&nc, rig.nats.url);

	ck_assert_msg(s == NATS_OK, "connect to %s: %s", rig.nats.url,
		      natsStatus_GetText(s));
	return nc;
}

static natsSubscription *nats_sub(natsConnection *nc, const char *subject)
{
	natsSubscription *sub = NULL;

	ck_assert_int_eq(natsConnection_SubscribeSync(&sub, nc, subject),
			 NATS_OK);
	/* The server has the subscription before anything is published. */
	ck_assert_int_eq(natsConnection_FlushTimeout(nc, BOUND_MS), NATS_OK);
	return sub;
}

static void nats_send(natsConnection *nc, const char *subject, const char *text)
{
	ck_assert_int_eq(natsConnection_PublishString(nc, subject, text),
			 NATS_OK);
	ck_assert_int_eq(natsConnection_FlushTimeout(nc, BOUND_MS), NATS_OK);
}

/* The value of header `name` of `m` as a number; 0 when absent. */
static unsigned long long header_num(natsMsg *m, const char *name)
{
	const char *v = NULL;

	if (natsMsgHeader_Get(m, name, &v) != NATS_OK || v == NULL) {
		return 0;
	}
	return strtoull(v, NULL, 10);
}

/* Waits (bounded: `ms`) for a message on `sub` whose text starts with
 * `prefix`, passing over others. The message, or NULL. */
static natsMsg *nats_wait_for(natsSubscription *sub, const char *prefix, int ms)
{
	for (int t = 0; t < ms; t += 50) {
		natsMsg *m = NULL;

		if (natsSubscription_NextMsg(&m, sub, 50) != NATS_OK) {
			continue;
		}
		if (strncmp(natsMsg_GetData(m), prefix, strlen(prefix)) == 0 &&
		    natsMsg_GetDataLength(m) >= (int)strlen(prefix)) {
			return m;
		}
		natsMsg_Destroy(m);
	}
	return NULL;
}

static void topic_create(shmbus *bus, const char *topic, int metadata)
{
	struct shmbus_topic_config cfg = {.capacity = RING_BYTES,
					  .overflow = SHMBUS_BLOCK,
					  .metadata = metadata};
	int r = shmbus_topic_create(bus, topic, &cfg);

	ck_assert_msg(r == 0, "create %s: %s", topic, shmbus_strerror(r));
}

static void publish_text(shmbus_pub *pub, const char *text)
{
	int r = shmbus_publish(pub, text, strlen(text), BOUND_MS);

	ck_assert_msg(r == 0, "publish: %s", shmbus_strerror(r));
}

/* Receives one message (bounded) as text into buf; 0, or a code. */
static int receive_text(shmbus_sub *sub, char *buf, size_t cap, int ms)
{
	ssize_t n = shmbus_receive(sub, buf, cap - 1, ms);

	if (n < 0) {
		return (int)n;
	}
	buf[n] = '\0';
	return 0;
}

/*
 * Publishes "<prefix> 1", "<prefix> 2"... into `pub` until one comes out
 * of `sub` on NATS (each waited for a while): the bridge's export of that
 * topic is open. Returns the message (the caller destroys it).
 */
static natsMsg *prime_export(shmbus_pub *pub, natsSubscription *sub,
			     const char *prefix)
{
	char text[64];

	for (int i = 1; i <= 50; i++) {
		natsMsg *m;

		snprintf(text, sizeof(text), "%s %d", prefix, i);
		publish_text(pub, text);
		m = nats_wait_for(sub, prefix, 200);
		if (m != NULL) {
			return m;
		}
	}
	ck_abort_msg("nothing published as \"%s\" came out on NATS", prefix);
	return NULL;
}

/* Likewise for an import: publishes on `subject` until `sub` receives. */
static void prime_import(natsConnection *nc, const char *subject,
			 shmbus_sub *sub)
{
	char text[64], got[256];

	for (int i = 1; i <= 50; i++) {
		snprintf(text, sizeof(text), "prime %d", i);
		nats_send(nc, subject, text);
		if (receive_text(sub, got, sizeof(got), 200) == 0) {
			return;
		}
	}
	ck_abort_msg("nothing published on %s reached its topic", subject);
}

/* ---- 1. nats-server killed and restarted mid-stream -------------------- */

/* Messages of the stream: 'W' warm-ups, 'N' the numbered stream, 'K' the
 * tail markers, each with its number. */
#define STREAM_M 20000

struct stream {
	shmbus_pub *pub; /* topic s on broker A */
	shmbus_sub *sub; /* topic s on broker B */
	_Atomic int stop_reader;
	_Atomic int killed; /* the publisher's gate at 3/4 of the stream */
	_Atomic int pub_error;
	/* What the reader on B saw. */
	_Atomic long n_numbered, last_numbered, disorder;
	_Atomic long n_warm, first_warm, last_warm;
	_Atomic long n_marks, last_mark;
	_Atomic long bad;
};

static void *stream_reader(void *arg)
{
	struct stream *st = arg;
	char buf[128];

	while (!atomic_load(&st->stop_reader)) {
		long n;
		char kind;
		int r = receive_text(st->sub, buf, sizeof(buf), 100);

		if (r == -ETIMEDOUT || r == -EAGAIN) {
			continue;
		}
		if (r < 0 || sscanf(buf, "%c %ld", &kind, &n) != 2) {
			atomic_fetch_add(&st->bad, 1);
			continue;
		}
		if (kind == 'N') {
			/* Strictly increasing: no duplicate, no reordering. */
			if (n <= atomic_load(&st->last_numbered) ||
			    atomic_load(&st->n_marks) > 0) {
				atomic_fetch_add(&st->disorder, 1);
			}
			atomic_store(&st->last_numbered, n);
			atomic_fetch_add(&st->n_numbered, 1);
		} else if (kind == 'W') {
			if (atomic_load(&st->n_warm) == 0) {
				atomic_store(&st->first_warm, n);
			}
			if (n <= atomic_load(&st->last_warm) ||
			    atomic_load(&st->n_numbered) > 0) {
				atomic_fetch_add(&st->disorder, 1);
			}
			atomic_store(&st->last_warm, n);
			atomic_fetch_add(&st->n_warm, 1);
		} else if (kind == 'K') {
			if (n <= atomic_load(&st->last_mark)) {
				atomic_fetch_add(&st->disorder, 1);
			}
			atomic_store(&st->last_mark, n);
			atomic_fetch_add(&st->n_marks, 1);
		} else {
			atomic_fetch_add(&st->bad, 1);
		}
	}
	return NULL;
}

/* The numbered stream, paced (a short sleep every few messages) so that
 * the test kills nats-server while it flows; it waits at three quarters
 * for the kill, so that the rest is published while NATS is away or
 * coming back. */
static void *stream_publisher(void *arg)
{
	struct stream *st = arg;
	char text[32];

	for (long i = 0; i < STREAM_M; i++) {
		if (i == STREAM_M * 3 / 4) {
			for (int t = 0;
			     t < 2 * BOUND_MS && !atomic_load(&st->killed);
			     t++) {
				sbt_sleep_ms(1);
			}
		}
		snprintf(text, sizeof(text), "N %ld", i);
		if (shmbus_publish(st->pub, text, strlen(text), BOUND_MS) !=
		    0) {
			atomic_store(&st->pub_error, 1);
			return NULL;
		}
		if (i % 16 == 15) {
			sbt_sleep_ms(1);
		}
	}
	return NULL;
}

/* Publishes "<kind> 1", "<kind> 2"... until the reader on B has the one
 * just published; returns how many were published. Once the last one
 * published is received, every one before it was received or lost on the
 * way, and a loss shows in the importer's gaps. */
static long publish_until_seen(struct stream *st, char kind,
			       _Atomic long *last_seen)
{
	char text[32];

	for (long i = 1; i <= 20; i++) {
		snprintf(text, sizeof(text), "%c %ld", kind, i);
		publish_text(st->pub, text);
		for (int t = 0; t < 500 && atomic_load(last_seen) != i; t++) {
			sbt_sleep_ms(1);
		}
		if (atomic_load(last_seen) == i) {
			return i;
		}
	}
	ck_abort_msg("no '%c' message reached broker B", kind);
	return 0;
}

/* Whether both bridges have connected to NATS a second time. */
static int reconnected(const struct sbt_bridge *a, const struct sbt_bridge *b)
{
	return sbt_bridge_log_count(a, "INFO: connected to NATS at") >= 2 &&
	       sbt_bridge_log_count(b, "INFO: connected to NATS at") >= 2;
}

START_TEST(nats_killed_mid_stream_every_message_received_or_a_gap)
{
	struct sbt_broker *a = broker_up(), *b = broker_up();
	struct stream st = {.last_numbered = -1};
	struct sbt_bridge *exporter, *importer;
	shmbus *bus_a, *bus_b;
	pthread_t reader, publisher;
	cJSON *sa, *sb;
	long warm_sent, marks_sent, at_kill;
	long long gaps, lost_warm, lost_marks, numbered_gaps;

	nats_up();
	bus_a = sbt_bus_up(a, "faults-pub");
	bus_b = sbt_bus_up(b, "faults-sub");
	topic_create(bus_a, "s", 0);
	topic_create(bus_b, "s", 1);
	ck_assert_int_eq(shmbus_pub_open(bus_a, "s", &st.pub), 0);
	ck_assert_int_eq(
	    shmbus_sub_open(bus_b, "s", SHMBUS_START_LATEST, &st.sub), 0);
	importer = bridge_up((const char *const[]){
	    "--socket", b->socket, "--nats", rig.nats.url, "--origin", "B",
	    "--import", "shmbus.A.s=s", "--stats-interval", "1s", NULL});
	exporter = bridge_up((const char *const[]){
	    "--socket", a->socket, "--nats", rig.nats.url, "--origin", "A",
	    "--export", "s", "--stats-interval", "1s", NULL});
	ck_assert_int_eq(pthread_create(&reader, NULL, stream_reader, &st), 0);

	/* Warm-ups until one crosses: both bridges' mappings are live. */
	warm_sent = publish_until_seen(&st, 'W', &st.last_warm);

	ck_assert_int_eq(
	    pthread_create(&publisher, NULL, stream_publisher, &st), 0);
	for (int t = 0;
	     t < 2 * BOUND_MS && atomic_load(&st.n_numbered) < STREAM_M / 4 &&
	     !atomic_load(&st.pub_error);
	     t += 5) {
		sbt_sleep_ms(5);
	}
	at_kill = atomic_load(&st.n_numbered);
	ck_assert_msg(at_kill >= STREAM_M / 4,
		      "the stream did not flow (%ld messages)", at_kill);
	sbt_nats_kill(&rig.nats);
	/* Mid-stream: the publisher waits at 3/4 until now. */
	ck_assert_int_lt(at_kill, STREAM_M);
	atomic_store(&st.killed, 1);
	ck_assert(sbt_bridge_log_wait(exporter, "WARN: disconnected from NATS",
				      BOUND_MS));
	ck_assert(sbt_bridge_log_wait(importer, "WARN: disconnected from NATS",
				      BOUND_MS));
	ck_assert_msg(sbt_nats_restart(&rig.nats) == 0,
		      "nats-server did not start again (see %s)", rig.nats.log);
	pthread_join(publisher, NULL);
	ck_assert_int_eq(atomic_load(&st.pub_error), 0);

	/* Both reconnect; then markers until one crosses, so that losses at
	 * the end of the stream are followed by a message that shows them. */
	for (int t = 0; t < BOUND_MS && !reconnected(exporter, importer);
	     t += 10) {
		sbt_sleep_ms(10);
	}
	ck_assert_msg(reconnected(exporter, importer),
		      "the bridges did not reconnect (see %s, %s)",
		      exporter->log, importer->log);
	marks_sent = publish_until_seen(&st, 'K', &st.last_mark);

	ck_assert_int_eq(sbt_bridge_signal_wait(importer, SIGTERM), 0);
	ck_assert_int_eq(sbt_bridge_signal_wait(exporter, SIGTERM), 0);
	atomic_store(&st.stop_reader, 1);
	pthread_join(reader, NULL);
	sa = last_stats(exporter);
	sb = last_stats(importer);

	ck_assert_int_eq(atomic_load(&st.bad), 0);
	ck_assert_int_eq(atomic_load(&st.disorder), 0);
	ck_assert_int_ge(counter(sa, "nats", "reconnects"), 1);
	ck_assert_int_ge(counter(sb, "nats", "reconnects"), 1);
	/* Nothing lost where the test cannot see it: in A's ring, or between
	 * the importer and B's ring. */
	ck_assert_int_eq(counter(sa, "export", "lost"), 0);
	ck_assert_int_eq(counter(sb, "import", "reordered"), 0);
	ck_assert_int_eq(counter(sb, "import", "full"), 0);
	ck_assert_int_eq(counter(sb, "import", "dropped"), 0);
	ck_assert_int_eq(counter(sb, "import", "failed"), 0);
	ck_assert_int_eq(counter(sb, "import", "received"),
			 counter(sb, "import", "delivered"));

	/*
	 * The importer's gaps count the messages missing after the first it
	 * saw (a warm-up): warm-ups after it, the numbered stream and the
	 * markers. Those of the warm-ups and markers are known from what
	 * was sent and received; the rest are the stream's.
	 */
	gaps = counter(sb, "import", "gaps");
	lost_warm = (warm_sent - atomic_load(&st.first_warm) + 1) -
		    atomic_load(&st.n_warm);
	lost_marks = marks_sent - atomic_load(&st.n_marks);
	ck_assert_int_ge(lost_warm, 0);
	ck_assert_int_ge(lost_marks, 0);
	numbered_gaps = gaps - lost_warm - lost_marks;
	ck_assert_msg(atomic_load(&st.n_numbered) + numbered_gaps == STREAM_M,
		      "received %ld + gaps %lld != %d (all gaps %lld, "
		      "warm-ups lost %lld, markers lost %lld)",
		      atomic_load(&st.n_numbered), numbered_gaps, STREAM_M,
		      gaps, lost_warm, lost_marks);
	cJSON_Delete(sa);
	cJSON_Delete(sb);
	shmbus_sub_close(st.sub);
	shmbus_pub_close(st.pub);
	shmbus_close(bus_a);
	shmbus_close(bus_b);
}
END_TEST

/* ---- 2. shmbusd killed and restarted under the bridge ------------------ */

/*
 * Whether `topic` is a topic of the broker at `socket` now: a watch on its
 * name lists it (a watch only reads; opening the topic would create it).
 */
static int listed(const char *socket, const char *topic)
{
	char name[SHMBUS_TOPIC_MAX + 1];
	shmbus *bus = NULL;
	shmbus_watch *w = NULL;
	int found = 0, event;

	if (shmbus_connect(socket, "faults-watch", &bus) < 0) {
		return 0;
	}
	if (shmbus_watch_open(bus, topic, &w) == 0) {
		while (shmbus_watch_next(w, &event, name, sizeof(name), 1000) ==
			   0 &&
		       event == SHMBUS_WATCH_CREATED) {
			found |= strcmp(name, topic) == 0;
		}
		shmbus_watch_close(w);
	}
	shmbus_close(bus);
	return found;
}

static int wait_listed(const char *socket, const char *topic, int ms)
{
	for (int t = 0; t < ms; t += 50) {
		if (listed(socket, topic)) {
			return 1;
		}
		sbt_sleep_ms(50);
	}
	return 0;
}

/* Receives "<prefix> 0".."<prefix> n-1" on NATS, in order, passing over
 * what came before the first. */
static void nats_expect_series(natsSubscription *sub, const char *prefix, int n)
{
	char want[64];

	for (int i = 0; i < n; i++) {
		natsMsg *m = nats_wait_for(sub, prefix, BOUND_MS);

		ck_assert_msg(m != NULL, "\"%s %d\" did not come out on NATS",
			      prefix, i);
		snprintf(want, sizeof(want), "%s %d", prefix, i);
		ck_assert_int_eq(natsMsg_GetDataLength(m), (int)strlen(want));
		ck_assert(memcmp(natsMsg_GetData(m), want, strlen(want)) == 0);
		natsMsg_Destroy(m);
	}
}

START_TEST(shmbusd_killed_and_restarted_under_the_bridge)
{
	struct sbt_broker *x = broker_up();
	natsConnection *nc;
	natsSubscription *from_e;
	struct sbt_bridge *br;
	shmbus *bus;
	shmbus_pub *pub;
	shmbus_sub *sub;
	struct shmbus_msg_info info = {.size = sizeof(info)};
	char text[64], got[256];
	cJSON *stats;
	int seen, r;

	nats_up();
	nc = nats_client();
	from_e = nats_sub(nc, "shmbus.X.e");
	bus = sbt_bus_up(x, "faults");
	/* Not persistent: after the restart they exist again only because
	 * the bridge, which holds them open, hands them back. */
	topic_create(bus, "e", 0);
	topic_create(bus, "i1", 1);
	br = bridge_up((const char *const[]){
	    "--socket", x->socket, "--nats", rig.nats.url, "--origin", "X",
	    "--export", "e", "--import", "shmbus.Y.>", "--stats-interval", "1s",
	    NULL});

	/* Both ways work before the restart; then only the bridge holds the
	 * two topics. */
	ck_assert_int_eq(shmbus_pub_open(bus, "e", &pub), 0);
	natsMsg_Destroy(prime_export(pub, from_e, "before"));
	ck_assert_int_eq(shmbus_sub_open(bus, "i1", SHMBUS_START_LATEST, &sub),
			 0);
	prime_import(nc, "shmbus.Y.i1", sub);
	shmbus_pub_close(pub);
	shmbus_sub_close(sub);
	shmbus_close(bus);

	ck_assert_int_eq(sbt_broker_signal_wait(x, SIGKILL), -SIGKILL);
	ck_assert_int_eq(sbt_broker_start_in(x, NULL, NULL), 0);
	ck_assert(alive(br));
	/* The bridge's connection comes back and hands both topics back to
	 * the new broker; opening them before that would make new ones, a
	 * stream of their own that the bridge does not read. */
	ck_assert_msg(wait_listed(x->socket, "e", BOUND_MS),
		      "the exported topic was not handed back");
	ck_assert_msg(wait_listed(x->socket, "i1", BOUND_MS),
		      "the imported topic was not handed back");
	ck_assert(alive(br));

	/*
	 * Export. Handed back by a subscriber only, the topic takes no
	 * publisher (docs/operations.md, "When the broker restarts"): a new
	 * client deletes it and makes it again, and the bridge, told of the
	 * deletion by its watch (back with shmbusd), follows the name, from
	 * the new topic's first message.
	 */
	ck_assert_msg(sbt_bridge_log_wait(br,
					  "INFO: shmbusd: watching topics "
					  "again",
					  BOUND_MS),
		      "the bridge's topic watch did not come back (see %s)",
		      br->log);
	bus = sbt_bus_up(x, "faults-after");
	ck_assert_int_eq(shmbus_pub_open(bus, "e", &pub), -EROFS);
	ck_assert_int_eq(shmbus_topic_delete(bus, "e"), 0);
	/* The bridge waits a second before it opens the name again (and
	 * would make the topic): on a slow machine it may come first. */
	r = shmbus_topic_create(bus, "e", NULL);
	ck_assert_msg(r == 0 || r == -EEXIST, "create e: %s",
		      shmbus_strerror(r));
	ck_assert_int_eq(shmbus_pub_open(bus, "e", &pub), 0);
	for (int i = 0; i < 100; i++) {
		snprintf(text, sizeof(text), "after %d", i);
		publish_text(pub, text);
	}
	nats_expect_series(from_e, "after", 100);
	ck_assert_int_eq(sbt_bridge_log_count(br, "export e: topic deleted"),
			 1);

	/* Import into the handed-back topic... */
	ck_assert_int_eq(shmbus_sub_open(bus, "i1", SHMBUS_START_LATEST, &sub),
			 0);
	for (int i = 0; i < 100; i++) {
		snprintf(text, sizeof(text), "in %d", i);
		nats_send(nc, "shmbus.Y.i1", text);
	}
	for (int i = 0; i < 100; i++) {
		ck_assert_int_eq(receive_text(sub, got, sizeof(got), BOUND_MS),
				 0);
		snprintf(text, sizeof(text), "in %d", i);
		ck_assert_str_eq(got, text);
	}
	shmbus_sub_close(sub);

	/* ...and into a topic the bridge creates on the new broker (with
	 * metadata, as it creates those it imports into). */
	for (int i = 0; i < 50 && !listed(x->socket, "i2"); i++) {
		nats_send(nc, "shmbus.Y.i2", "new");
		sbt_sleep_ms(100);
	}
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "i2", SHMBUS_START_EARLIEST, &sub), 0);
	seen = 0;
	while (shmbus_receive_info(sub, got, sizeof(got), &info, 500) >= 0) {
		ck_assert_int_eq(memcmp(got, "new", 3), 0);
		ck_assert_uint_ne(info.flags & SHMBUS_MSG_METADATA, 0);
		seen++;
	}
	ck_assert_int_ge(seen, 1);
	shmbus_sub_close(sub);
	shmbus_pub_close(pub);
	shmbus_close(bus);

	ck_assert(alive(br));
	ck_assert_int_eq(sbt_bridge_signal_wait(br, SIGTERM), 0);
	stats = last_stats(br);
	ck_assert_int_ge(counter(stats, "export", "sent"), 101);
	ck_assert_int_eq(counter(stats, "totals", "export_losses"), 0);
	ck_assert_int_ge(counter(stats, "import", "delivered"), 102);
	ck_assert_int_eq(counter(stats, "import", "failed"), 0);
	cJSON_Delete(stats);
	natsSubscription_Destroy(from_e);
	natsConnection_Destroy(nc);
}
END_TEST

/* ---- 3. SIGTERM drains the exported topic ------------------------------ */

#define DRAIN_N	  2000
#define DRAIN_LEN 200

/* Message i of the burst: "D <i>" and a pattern seeded by i. */
static size_t drain_msg(char *buf, int i)
{
	int head = snprintf(buf, DRAIN_LEN, "D %d ", i);

	sbt_fill_pattern(buf + head, DRAIN_LEN - (size_t)head, (uint32_t)i);
	return DRAIN_LEN;
}

START_TEST(sigterm_drains_what_the_topic_holds)
{
	struct sbt_broker *x = broker_up();
	natsConnection *nc;
	natsSubscription *from_d;
	struct sbt_bridge *br;
	shmbus *bus;
	shmbus_pub *pub;
	char buf[DRAIN_LEN], want[DRAIN_LEN];
	long warm = 0;
	int status;
	cJSON *stats;

	nats_up();
	nc = nats_client();
	from_d = nats_sub(nc, "shmbus.X.d");
	bus = sbt_bus_up(x, "faults");
	topic_create(bus, "d", 0);
	ck_assert_int_eq(shmbus_pub_open(bus, "d", &pub), 0);
	br = bridge_up((const char *const[]){
	    "--socket", x->socket, "--nats", rig.nats.url, "--origin", "X",
	    "--export", "d", "--stats-interval", "1s", NULL});
	natsMsg_Destroy(prime_export(pub, from_d, "warm"));

	/*
	 * The bridge stopped, the burst goes into the topic, SIGTERM waits
	 * for it: when the bridge runs again it has all of the burst still
	 * to read, and the signal.
	 */
	ck_assert_int_eq(kill(br->pid, SIGSTOP), 0);
	for (int t = 0; t < BOUND_MS; t += 10) {
		if (waitpid(br->pid, &status, WNOHANG | WUNTRACED) == br->pid &&
		    WIFSTOPPED(status)) {
			break;
		}
		sbt_sleep_ms(10);
	}
	for (int i = 0; i < DRAIN_N; i++) {
		ck_assert_int_eq(shmbus_publish(pub, buf, drain_msg(buf, i), 0),
				 0);
	}
	ck_assert_int_eq(kill(br->pid, SIGTERM), 0);
	ck_assert_int_eq(sbt_bridge_signal_wait(br, SIGCONT), 0);

	/* All of it on NATS, whole and in order, after the warm-ups. */
	for (int i = 0; i < DRAIN_N; i++) {
		natsMsg *m = NULL;

		ck_assert_msg(natsSubscription_NextMsg(&m, from_d, BOUND_MS) ==
				  NATS_OK,
			      "message %d of %d did not come out", i, DRAIN_N);
		if (memcmp(natsMsg_GetData(m), "warm", 4) == 0) {
			warm++;
			i--;
			natsMsg_Destroy(m);
			continue;
		}
		ck_assert_int_eq(natsMsg_GetDataLength(m), DRAIN_LEN);
		drain_msg(want, i);
		ck_assert_msg(memcmp(natsMsg_GetData(m), want, DRAIN_LEN) == 0,
			      "message %d is not the one published", i);
		natsMsg_Destroy(m);
	}
	stats = last_stats(br);
	/* The first warm-up came out before the stop (prime_export). */
	ck_assert_int_eq(counter(stats, "export", "sent"), 1 + warm + DRAIN_N);
	ck_assert_int_eq(counter(stats, "totals", "export_losses"), 0);
	ck_assert_int_eq(sbt_bridge_log_count(br, "INFO: Terminated: draining"),
			 1);
	/* Its own close at the end is no loss of NATS to warn about. */
	ck_assert_int_eq(sbt_bridge_log_count(br, "disconnected from NATS"), 0);
	cJSON_Delete(stats);
	shmbus_pub_close(pub);
	shmbus_close(bus);
	natsSubscription_Destroy(from_d);
	natsConnection_Destroy(nc);
}
END_TEST

/* ---- 4. SIGHUP reloads the configuration file -------------------------- */

static void write_config(const char *path, const char *json)
{
	ck_assert_int_eq(sbt_write_file(path, json, strlen(json)), 0);
}

/* Publishes `text` into `pub` and returns its Shmbus-Seq on NATS (`sub`),
 * after checking its Shmbus-Run is `run` (when given). */
static unsigned long long seq_of(shmbus_pub *pub, natsSubscription *sub,
				 const char *text, const char *run)
{
	natsMsg *m;
	const char *r = NULL;
	unsigned long long seq;

	publish_text(pub, text);
	m = nats_wait_for(sub, text, BOUND_MS);
	ck_assert_msg(m != NULL, "\"%s\" did not come out on NATS", text);
	ck_assert_int_eq(natsMsgHeader_Get(m, "Shmbus-Run", &r), NATS_OK);
	if (run != NULL) {
		ck_assert_str_eq(r, run);
	}
	seq = header_num(m, "Shmbus-Seq");
	natsMsg_Destroy(m);
	return seq;
}

START_TEST(sighup_reloads_mappings_and_keeps_a_bad_file_out)
{
	struct sbt_broker *x = broker_up();
	natsConnection *nc;
	natsSubscription *from_x, *from_y;
	struct sbt_bridge *br;
	shmbus *bus;
	shmbus_pub *px, *py;
	shmbus_sub *sz;
	natsMsg *m;
	char path[512], run[32], got[256];
	const char *r = NULL;
	unsigned long long sx, sy;
	cJSON *stats;

	nats_up();
	nc = nats_client();
	from_x = nats_sub(nc, "shmbus.R.x");
	from_y = nats_sub(nc, "shmbus.R.y");
	bus = sbt_bus_up(x, "faults");
	topic_create(bus, "x", 0);
	topic_create(bus, "y", 0);
	topic_create(bus, "z", 1);
	ck_assert_int_eq(shmbus_pub_open(bus, "x", &px), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, "y", &py), 0);
	ck_assert_int_eq(shmbus_sub_open(bus, "z", SHMBUS_START_LATEST, &sz),
			 0);
	snprintf(path, sizeof(path), "%s/bridge.json", rig.dir);
	write_config(path, "{\"export\": [{\"topic\": \"x\"}]}");
	br = bridge_up((const char *const[]){
	    "--config", path, "--socket", x->socket, "--nats", rig.nats.url,
	    "--origin", "R", "--stats-interval", "1s", NULL});

	m = prime_export(px, from_x, "x-warm");
	ck_assert_int_eq(natsMsgHeader_Get(m, "Shmbus-Run", &r), NATS_OK);
	snprintf(run, sizeof(run), "%s", r);
	natsMsg_Destroy(m);
	sx = seq_of(px, from_x, "x-1", run);

	/* x kept, y and an import added. */
	write_config(path, "{\"export\": [{\"topic\": \"x\"}, {\"topic\": "
			   "\"y\"}],\n \"import\": [{\"subject\": \"in.z\", "
			   "\"topic\": \"z\"}]}");
	ck_assert_int_eq(kill(br->pid, SIGHUP), 0);
	ck_assert_msg(sbt_bridge_log_wait(br,
					  "INFO: reload: 2 exports, "
					  "1 imports",
					  BOUND_MS),
		      "no reload line in %s", br->log);
	natsMsg_Destroy(prime_export(py, from_y, "y-warm"));
	sy = seq_of(py, from_y, "y-1", run);
	/* The kept mapping goes on counting: its thread was not restarted. */
	ck_assert_uint_eq(seq_of(px, from_x, "x-2", run), sx + 1);
	prime_import(nc, "in.z", sz);

	/* A file that does not parse: logged, and nothing changes. */
	write_config(path, "{\"export\": [{\"topic\": ");
	ck_assert_int_eq(kill(br->pid, SIGHUP), 0);
	ck_assert_msg(sbt_bridge_log_wait(br, "the running configuration stays",
					  BOUND_MS),
		      "no reload error in %s", br->log);
	ck_assert_int_eq(sbt_bridge_log_count(br, "ERROR: reload: "), 1);
	ck_assert_int_eq(sbt_bridge_log_count(br, "INFO: reload: "), 1);
	ck_assert_uint_eq(seq_of(px, from_x, "x-3", run), sx + 2);
	ck_assert_uint_eq(seq_of(py, from_y, "y-2", run), sy + 1);
	nats_send(nc, "in.z", "after the bad file");
	ck_assert_int_eq(receive_text(sz, got, sizeof(got), BOUND_MS), 0);
	ck_assert_str_eq(got, "after the bad file");
	ck_assert(alive(br));

	ck_assert_int_eq(sbt_bridge_signal_wait(br, SIGTERM), 0);
	stats = last_stats(br);
	ck_assert_int_eq(cJSON_GetArraySize(
			     cJSON_GetObjectItemCaseSensitive(stats, "export")),
			 2);
	ck_assert_int_eq((long long)cJSON_GetObjectItemCaseSensitive(
			     export_of(stats, "x"), "sent")
			     ->valuedouble,
			 (long long)sx + 2);
	ck_assert_int_ge(counter(stats, "import", "delivered"), 2);
	cJSON_Delete(stats);
	shmbus_sub_close(sz);
	shmbus_pub_close(px);
	shmbus_pub_close(py);
	shmbus_close(bus);
	natsSubscription_Destroy(from_x);
	natsSubscription_Destroy(from_y);
	natsConnection_Destroy(nc);
}
END_TEST

/* ---- 5. --give-up while running ---------------------------------------- */

START_TEST(give_up_when_nats_stays_away)
{
	struct sbt_broker *x = broker_up();
	struct sbt_bridge *br;

	nats_up();
	br = bridge_up((const char *const[]){
	    "--socket", x->socket, "--nats", rig.nats.url, "--origin", "X",
	    "--export", "g", "--give-up", "1s", NULL});
	sbt_nats_kill(&rig.nats);
	ck_assert_int_eq(wait_exit(br, 3 * BOUND_MS), 3);
	ck_assert_int_eq(sbt_bridge_log_count(br, "WARN: disconnected from "
						  "NATS"),
			 1);
	ck_assert_int_eq(sbt_bridge_log_count(br, "giving up"), 1);
}
END_TEST

Suite *bridge_faults_suite(void)
{
	Suite *s = suite_create("bridge_faults");
	TCase *tc = tcase_create("nats");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 40);
	tcase_add_test(tc,
		       nats_killed_mid_stream_every_message_received_or_a_gap);
	tcase_add_test(tc, give_up_when_nats_stays_away);
	suite_add_tcase(s, tc);

	tc = tcase_create("shmbusd");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 40);
	tcase_add_test(tc, shmbusd_killed_and_restarted_under_the_bridge);
	suite_add_tcase(s, tc);

	tc = tcase_create("signals");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 40);
	tcase_add_test(tc, sigterm_drains_what_the_topic_holds);
	tcase_add_test(tc, sighup_reloads_mappings_and_keeps_a_bad_file_out);
	suite_add_tcase(s, tc);
	return s;
}
