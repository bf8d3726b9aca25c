/*
 * check_hostile.c - shmbusd against broken and hostile peers, each against
 * a real broker (tests/support/broker_harness.h): a peer that sends half a
 * frame and stalls, floods of requests whose replies are never read,
 * hundreds of connections, running out of descriptors, topics bigger than
 * what the file system or the broker's file-size limit can hold, and file
 * names made from topic names. Every test asserts bounds (counts, bytes,
 * codes), never durations; the waits that are needed are polls with a
 * limit.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "include/shmbus/shmbus.h"
#include "tests/suites.h"
#include "tests/support/broker_harness.h"
#include "tests/support/rawclient.h"
#include "tests/support/testutil.h"

#define MIB (1024 * 1024)

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#else
#define UNDER_ASAN 0
#endif

static void hello(struct sbt_rc *c, const struct sbt_broker *b)
{
	ck_assert_int_eq(sbt_rc_hello(c, b->socket, "hostile"), 0);
}

static void ping_ok(struct sbt_rc *c)
{
	ck_assert_int_eq(sbt_rc_call(c, "{\"op\":\"ping\",\"id\":7}"), 0);
}

/* The broker's resident memory in KiB, from /proc/<pid>/status. */
static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) {
			break;
		}
	}
	fclose(f);
	ck_assert_int_gt(kib, 0);
	return kib;
}

/* 1 once the broker closed the connection, 0 if it is still open. Reads
 * nothing: reading a flooder's replies would relieve its back-pressure. */
static int peer_closed(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLRDHUP};

	return poll(&p, 1, 0) == 1 &&
	       (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/*
 * A flooder: frames of `json` sent without ever reading, as fast as the
 * socket takes them, until it stays full. Returns the bytes sent.
 */
static size_t flood(int fd, const char *json)
{
	static char buf[65536];
	size_t len = strlen(json), per = len + 4, fill = 0, sent = 0;
	int idle = 0;

	while (fill + per <= sizeof(buf)) {
		buf[fill] = (char)(len >> 24);
		buf[fill + 1] = (char)(len >> 16);
		buf[fill + 2] = (char)(len >> 8);
		buf[fill + 3] = (char)len;
		memcpy(buf + fill + 4, json, len);
		fill += per;
	}
	/* Whole frames only, so the stream stays well formed. */
	while (idle < 50) {
		ssize_t n = send(fd, buf, fill, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0) {
			size_t tail = (size_t)n % per;

			sent += (size_t)n;
			if (tail != 0) { /* finish the frame we cut */
				struct sbt_rc tmp = {.fd = fd};

				if (sbt_rc_send_raw(&tmp, buf + n, per - tail) <
				    0) {
					break;
				}
				sent += per - tail;
			}
			idle = 0;
		} else if (n < 0 && errno == EAGAIN) {
			idle++;
			sbt_sleep_ms(2);
		} else {
			break;
		}
	}
	return sent;
}

/* Polls (bounded) until the broker's log contains `text`. */
static int log_wait_s(const struct sbt_broker *b, const char *text, int s)
{
	for (int i = 0; i < s * 10; i++) {
		if (sbt_broker_log_contains(b, text)) {
			return 1;
		}
		sbt_sleep_ms(100);
	}
	return 0;
}

/* Largest "<N> reply bytes (<M> replies) not read" in the log. */
static void dropped_figures(const struct sbt_broker *b, uint64_t *bytes,
			    uint64_t *frames, int *drops)
{
	char line[1024];
	FILE *f = fopen(b->log, "r");

	*bytes = *frames = 0;
	*drops = 0;
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *p = strstr(line, ": client ");
		unsigned long id;
		uint64_t nb, nf;

		if (p != NULL &&
		    sscanf(p,
			   ": client %lu: %" SCNu64 " reply bytes (%" SCNu64
			   " replies) not read",
			   &id, &nb, &nf) == 3) {
			*bytes = nb > *bytes ? nb : *bytes;
			*frames = nf > *frames ? nf : *frames;
			(*drops)++;
		}
	}
	fclose(f);
}

/* ---- stalls and floods -------------------------------------------------- */

#define FLOODERS       12
#define FLOOD_TOPICS   80
#define PENDING_LIMIT  (256 * 1024)
#define FRAME_LIMIT    (64 * 1024)
#define INFLIGHT_LIMIT 32

/*
 * One broker, three kinds of bad peer at once: a half frame that stalls, a
 * ping flooder (held by max_requests_in_flight: tiny replies), and
 * topic_list flooders (big replies: held by max_pending_bytes). Another
 * client's requests all complete meanwhile; the broker's memory stays
 * under a bound and comes back down; every bad peer is dropped.
 */
START_TEST(stalls_and_floods_are_bounded_and_dropped)
{
	char config[512];
	struct sbt_broker b;
	struct sbt_rc other, staller, pinger, flooders[FLOODERS];
	long base, peak, after;
	uint64_t max_bytes, max_frames;
	int drops, closed = 0;
	size_t flooded = 0;
	long bound;

	snprintf(config, sizeof(config),
		 "{\"limits\": {\"max_pending_bytes\": %d, \"max_frame\": %d,"
		 " \"max_requests_in_flight\": %d},"
		 " \"topic_defaults\": {\"capacity\": \"4KiB\","
		 " \"max_message\": \"1KiB\"}}",
		 PENDING_LIMIT, FRAME_LIMIT, INFLIGHT_LIMIT);
	ck_assert_int_eq(sbt_broker_start(&b, config, NULL), 0);
	hello(&other, &b);
	for (int i = 0; i < FLOOD_TOPICS; i++) {
		ck_assert_int_eq(
		    sbt_rc_call(&other,
				"{\"op\":\"topic_create\",\"id\":2,\"topic\":"
				"\"flood/a-rather-long-topic-name-to-make-"
				"topic-list-replies-big/%03d\"}",
				i),
		    0);
	}
	sbt_sleep_ms(200);
	base = rss_kib(b.pid);

	/* Half a frame: a header announcing 100 bytes, and 10 of them. */
	hello(&staller, &b);
	ck_assert_int_eq(
	    sbt_rc_send_raw(&staller, "\0\0\0\x64{\"op\":\"pi", 14), 0);

	hello(&pinger, &b);
	flooded += flood(pinger.fd, "{\"op\":\"ping\",\"id\":1}");
	for (int i = 0; i < FLOODERS; i++) {
		hello(&flooders[i], &b);
		flooded +=
		    flood(flooders[i].fd, "{\"op\":\"topic_list\",\"id\":1}");
	}
	/* All of them stall now; the other client is served meanwhile. */
	for (int i = 0; i < 100; i++) {
		ping_ok(&other);
	}
	ck_assert_int_eq(sbt_rc_call(&other, "{\"op\":\"pub_open\",\"id\":3,"
					     "\"topic\":\"still/served\"}"),
			 0);
	ck_assert_int_eq(other.nfds, 2);
	peak = rss_kib(b.pid);

	/* Every bad peer goes within the back-pressure and stall timeouts
	 * (10 s each, checked by a 1 s sweep): poll, bounded. */
	for (int i = 0; i < 300 && closed < FLOODERS + 2; i++) {
		long now = rss_kib(b.pid);

		peak = now > peak ? now : peak;
		closed = peer_closed(staller.fd) + peer_closed(pinger.fd);
		for (int k = 0; k < FLOODERS; k++) {
			closed += peer_closed(flooders[k].fd);
		}
		ping_ok(&other);
		sbt_sleep_ms(100);
	}
	ck_assert_int_eq(closed, FLOODERS + 2);
	ck_assert(log_wait_s(&b, "stalled in the middle of a frame", 5));
	sbt_sleep_ms(300);
	after = rss_kib(b.pid);
	dropped_figures(&b, &max_bytes, &max_frames, &drops);
	fprintf(stderr,
		"hostile: flood of %zu request bytes from %d clients: broker "
		"VmRSS %ld KiB before, %ld KiB peak, %ld KiB after; largest "
		"backlog dropped %" PRIu64 " bytes / %" PRIu64 " replies\n",
		flooded, FLOODERS + 1, base, peak, after, max_bytes,
		max_frames);

	/* Each client's backlog: under the limits plus one reply. */
	ck_assert_int_eq(drops, FLOODERS + 1);
	ck_assert_uint_le(max_bytes, PENDING_LIMIT + FRAME_LIMIT + 4);
	ck_assert_uint_le(max_frames, INFLIGHT_LIMIT);
	/* Memory: per client, the reply backlog (max_pending_bytes + one
	 * frame), held input (one 64 KiB read), the decoder (max_frame) and
	 * the replies' bookkeeping; plus 8 MiB for the allocator. Under ASan
	 * the broker's RSS is its quarantine of freed memory (the JSON of
	 * every request it handled, up to 256 MiB), not what it holds: the
	 * backlog bounds above still apply there, these not. */
	bound = base +
		(FLOODERS + 2) *
		    (PENDING_LIMIT + 2 * FRAME_LIMIT + 65536 + 65536) / 1024 +
		8192;
	if (!UNDER_ASAN) {
		ck_assert_int_le(peak, bound);
		ck_assert_int_le(after, base + 8192);
	}
	sbt_rc_close(&staller);
	sbt_rc_close(&pinger);
	for (int i = 0; i < FLOODERS; i++) {
		sbt_rc_close(&flooders[i]);
	}
	ping_ok(&other);
	sbt_rc_close(&other);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* A peer that connects and never says hello does not keep its place. */
START_TEST(a_silent_peer_is_dropped)
{
	struct sbt_broker b;
	struct sbt_rc silent, other;

	ck_assert_int_eq(sbt_broker_start(&b, NULL, NULL), 0);
	ck_assert_int_eq(sbt_rc_connect(&silent, b.socket, 0), 0);
	hello(&other, &b);
	for (int i = 0; i < 150 && !peer_closed(silent.fd); i++) {
		ping_ok(&other);
		sbt_sleep_ms(100);
	}
	ck_assert(peer_closed(silent.fd));
	ck_assert(sbt_broker_log_contains(&b, "no hello"));
	sbt_rc_close(&silent);
	sbt_rc_close(&other);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- many connections --------------------------------------------------- */

#define MANY_LIMIT 200
#define MANY_EXTRA 60

START_TEST(connections_past_max_clients_get_eusers_the_rest_work)
{
	static struct sbt_rc c[MANY_LIMIT + MANY_EXTRA];
	struct sbt_broker b;
	char config[128];
	int ok = 0, refused = 0;

	/* All of one uid here: its quota must not come first. */
	snprintf(config, sizeof(config),
		 "{\"limits\": {\"max_clients\": %d, "
		 "\"max_clients_per_uid\": %d}}",
		 MANY_LIMIT, MANY_LIMIT);
	ck_assert_int_eq(sbt_broker_start(&b, config, NULL), 0);
	for (int i = 0; i < MANY_LIMIT + MANY_EXTRA; i++) {
		int r = sbt_rc_hello_or_refusal(&c[i], b.socket);

		if (r == 0) {
			ok++;
		} else {
			ck_assert_int_eq(r, -EUSERS);
			ck_assert_int_eq(sbt_rc_recv(&c[i]), -ECONNRESET);
			refused++;
			sbt_rc_close(&c[i]);
		}
	}
	ck_assert_int_eq(ok, MANY_LIMIT);
	ck_assert_int_eq(refused, MANY_EXTRA);
	for (int i = 0; i < MANY_LIMIT; i++) {
		ping_ok(&c[i]);
	}
	/* Places free up as clients leave. */
	for (int i = 0; i < 10; i++) {
		sbt_rc_close(&c[i]);
	}
	for (int i = 0; i < 10; i++) {
		int r = -EUSERS;

		for (int k = 0; k < 100 && r == -EUSERS; k++) {
			r = sbt_rc_hello(&c[i], b.socket, "again");
			if (r != 0) {
				sbt_rc_close(&c[i]);
				sbt_sleep_ms(10);
			}
		}
		ck_assert_int_eq(r, 0);
	}
	for (int i = 0; i < MANY_LIMIT; i++) {
		ping_ok(&c[i]);
		sbt_rc_close(&c[i]);
	}
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- descriptors -------------------------------------------------------- */

#define NOFILE_LIMIT 48
#define NOFILE_TRIES 80

/*
 * The broker runs with 48 descriptors. Connections past that are shed
 * (accepted and closed at once), requests that need descriptors get an
 * error reply instead of none, and once clients leave it serves again.
 */
START_TEST(running_out_of_descriptors_is_survived)
{
	static struct sbt_rc c[NOFILE_TRIES];
	struct sbt_broker b;
	struct sbt_rc first, again;
	int ok = 0, shed = 0, granted = 0, refused = 0;

	ck_assert_int_eq(sbt_broker_start_rlimit(&b, NULL, NULL, RLIMIT_NOFILE,
						 NOFILE_LIMIT),
			 0);
	hello(&first, &b);
	for (int i = 0; i < NOFILE_TRIES; i++) {
		int r = sbt_rc_hello_or_refusal(&c[i], b.socket);

		if (r == 0) {
			ok++;
		} else {
			ck_assert_msg(r == -ECONNRESET || r == -EPIPE,
				      "hello %d: %s", i, strerror(-r));
			shed++;
			sbt_rc_close(&c[i]);
		}
	}
	ck_assert_int_gt(shed, 0);
	ck_assert_int_lt(ok, NOFILE_LIMIT);
	ck_assert(sbt_broker_log_contains(&b, "refusing a connection"));
	/* With no descriptor to spare, opening topics fails with a reply. */
	for (int i = 0; i < 8; i++) {
		int r = sbt_rc_call(&first,
				    "{\"op\":\"pub_open\",\"id\":5,\"topic\":"
				    "\"fd/%d\"}",
				    i);

		ck_assert_msg(r == 0 || r == -EMFILE || r == -ENFILE,
			      "pub_open: %s", strerror(-r));
		granted += r == 0;
		refused += r != 0;
	}
	ck_assert_int_gt(refused, 0);
	/* Descriptors come back as clients leave; the broker serves again. */
	for (int i = 0; i < NOFILE_TRIES; i++) {
		if (c[i].fd >= 0) {
			sbt_rc_close(&c[i]);
		}
	}
	sbt_rc_close(&first);
	for (int k = 0; k < 100; k++) {
		if (sbt_rc_hello(&again, b.socket, "again") == 0) {
			break;
		}
		sbt_rc_close(&again);
		sbt_sleep_ms(20);
	}
	ping_ok(&again);
	ck_assert_int_eq(sbt_rc_call(&again, "{\"op\":\"pub_open\",\"id\":5,"
					     "\"topic\":\"fd/after\"}"),
			 0);
	ck_assert_int_eq(again.nfds, 2);
	fprintf(stderr,
		"hostile: RLIMIT_NOFILE %d: %d connections served, %d shed; "
		"pub_open %d granted, %d refused while full\n",
		NOFILE_LIMIT, ok + 1, shed, granted, refused);
	sbt_rc_close(&again);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- memory the topics cannot get --------------------------------------- */

/* Under RLIMIT_FSIZE a topic's memfd cannot grow: a clear error for that
 * topic (the broker ignores SIGXFSZ), smaller topics still work. */
START_TEST(a_topic_over_the_file_size_limit_is_refused)
{
	struct sbt_broker b;
	struct sbt_rc c;

	ck_assert_int_eq(
	    sbt_broker_start_rlimit(&b, NULL, NULL, RLIMIT_FSIZE, 1 * MIB), 0);
	hello(&c, &b);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
					 "\"topic\":\"huge\",\"capacity\":"
					 "\"4MiB\"}"),
			 -EFBIG);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
					 "\"topic\":\"small\",\"capacity\":"
					 "\"64KiB\"}"),
			 0);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"pub_open\",\"id\":3,"
					 "\"topic\":\"small\"}"),
			 0);
	ping_ok(&c);
	sbt_rc_close(&c);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/*
 * A persistent topic bigger than its file system's free space: ENOSPC in
 * the reply, twice (no half-made file that passes for a ring the second
 * time), and a sparse file of the right size left there by someone else is
 * allocated, not mapped with holes: never SIGBUS. Needs a small tmpfs
 * (mount, as root); skipped where mounting is not allowed.
 */
START_TEST(a_persistent_topic_bigger_than_its_disk_gets_enospc)
{
	struct sbt_broker b;
	struct sbt_rc c;
	char dir[256], config[512], path[300];
	char *tmp = sbt_tempdir();
	int fd;

	snprintf(dir, sizeof(dir), "%s/small", tmp);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	if (mount("tmpfs", dir, "tmpfs", 0, "size=1m") < 0) {
		fprintf(stderr,
			"hostile: cannot mount a tmpfs (%s): "
			"ENOSPC test skipped\n",
			strerror(errno));
		sbt_rmtree(tmp);
		return;
	}
	snprintf(config, sizeof(config), "{\"data_dir\": \"%s\"}", dir);
	ck_assert_int_eq(sbt_broker_start(&b, config, NULL), 0);
	hello(&c, &b);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(
		    sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
				    "\"topic\":\"big\",\"capacity\":\"4MiB\","
				    "\"persistent\":true}"),
		    -ENOSPC);
	}
	snprintf(path, sizeof(path), "%s/sparse", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 4096 + 4 * MIB), 0);
	close(fd);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
					 "\"topic\":\"sparse\",\"capacity\":"
					 "\"4MiB\",\"persistent\":true}"),
			 -ENOSPC);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
					 "\"topic\":\"fits\",\"capacity\":"
					 "\"64KiB\",\"persistent\":true}"),
			 0);
	ping_ok(&c);
	sbt_rc_close(&c);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
	umount2(dir, MNT_DETACH);
	sbt_rmtree(tmp);
}
END_TEST

/* ---- a writer killed while blocked -------------------------------------- */

/* Publishes into a full block topic until killed. */
static void blocked_publisher(const char *socket, const char *topic)
{
	char msg[512] = {0};
	shmbus *bus;
	shmbus_pub *pub;

	if (shmbus_connect(socket, "blocked", &bus) < 0 ||
	    shmbus_pub_open(bus, topic, &pub) < 0) {
		_exit(1);
	}
	for (;;) {
		shmbus_publish(pub, msg, sizeof(msg), -1);
	}
}

/* topic_stat's blocked_writers, polled (bounded) until it is `want`. */
static int64_t blocked_writers(struct sbt_rc *c, const char *topic,
			       int64_t want)
{
	int64_t n = -1;

	for (int i = 0; i < 100; i++) {
		ck_assert_int_eq(sbt_rc_call(c,
					     "{\"op\":\"topic_stat\",\"id\":4,"
					     "\"topic\":\"%s\"}",
					     topic),
				 0);
		n = sbt_rc_int(c, "stats.blocked_writers", -1);
		if (n == want) {
			break;
		}
		sbt_sleep_ms(50);
	}
	return n;
}

START_TEST(a_writer_killed_while_blocked_leaves_the_stat)
{
	struct sbt_broker b;
	struct sbt_rc c;
	shmbus *bus;
	shmbus_sub *sub;
	pid_t w1, w2;

	ck_assert_int_eq(sbt_broker_start(&b, NULL, NULL), 0);
	hello(&c, &b);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
					 "\"topic\":\"full\",\"capacity\":"
					 "\"4KiB\",\"max_message\":\"1KiB\"}"),
			 0);
	ck_assert_int_eq(shmbus_connect(b.socket, "stalled", &bus), 0);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "full", SHMBUS_START_EARLIEST, &sub), 0);
	w1 = fork();
	if (w1 == 0) {
		blocked_publisher(b.socket, "full");
	}
	w2 = fork();
	if (w2 == 0) {
		blocked_publisher(b.socket, "full");
	}
	ck_assert_int_eq(blocked_writers(&c, "full", 2), 2);
	kill(w1, SIGKILL);
	ck_assert_int_eq(sbt_wait(w1), -SIGKILL);
	/* The broker's 1 s sweep reaps the dead writer's entry. */
	ck_assert_int_eq(blocked_writers(&c, "full", 1), 1);
	kill(w2, SIGKILL);
	ck_assert_int_eq(sbt_wait(w2), -SIGKILL);
	ck_assert_int_eq(blocked_writers(&c, "full", 0), 0);
	ck_assert(sbt_broker_log_contains(&b, "waiting writer(s) that died"));
	shmbus_sub_close(sub);
	shmbus_close(bus);
	sbt_rc_close(&c);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- paths from names --------------------------------------------------- */

/* Persistent topics' files stay directly in data_dir whatever the name,
 * and a symlink planted under a topic's file name is not followed. */
START_TEST(persistent_file_names_stay_in_data_dir)
{
	static const char *const names[] = {
	    "a/b", "...", ".hidden", "a..b/..c", "x/y/z", "-dash", "a./b"};
	struct sbt_broker b;
	struct sbt_rc c;
	char *tmp = sbt_tempdir();
	char data[256], outside[300], link[300], config[512];
	struct stat st;
	DIR *d;
	struct dirent *e;
	int files = 0, fd;

	snprintf(data, sizeof(data), "%s/data", tmp);
	snprintf(outside, sizeof(outside), "%s/outside", tmp);
	ck_assert_int_eq(mkdir(data, 0700), 0);
	fd = open(outside, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	snprintf(link, sizeof(link), "%s/trap", data);
	ck_assert_int_eq(symlink(outside, link), 0);
	snprintf(config, sizeof(config), "{\"data_dir\": \"%s\"}", data);
	ck_assert_int_eq(sbt_broker_start(&b, config, NULL), 0);
	hello(&c, &b);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		ck_assert_int_eq(
		    sbt_rc_call(&c,
				"{\"op\":\"topic_create\",\"id\":2,\"topic\":"
				"\"%s\",\"persistent\":true}",
				names[i]),
		    0);
	}
	/* Names that would climb out are refused before any path. */
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
					 "\"topic\":\"../x\",\"persistent\":"
					 "true}"),
			 -EINVAL);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
					 "\"topic\":\"a/../../x\","
					 "\"persistent\":true}"),
			 -EINVAL);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
					 "\"topic\":\"/abs\",\"persistent\":"
					 "true}"),
			 -EINVAL);
	/* The planted symlink: refused (O_NOFOLLOW), its target untouched. */
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
					 "\"topic\":\"trap\",\"persistent\":"
					 "true}"),
			 -ELOOP);
	ck_assert_int_eq(stat(outside, &st), 0);
	ck_assert_int_eq(st.st_size, 0);
	/* Every file is a plain file directly in data_dir. */
	d = opendir(data);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL) {
		char p[600];

		if (strcmp(e->d_name, ".") == 0 ||
		    strcmp(e->d_name, "..") == 0 ||
		    strcmp(e->d_name, "trap") == 0) {
			continue;
		}
		snprintf(p, sizeof(p), "%s/%s", data, e->d_name);
		ck_assert_int_eq(lstat(p, &st), 0);
		ck_assert_msg(S_ISREG(st.st_mode), "%s is not a file", p);
		ck_assert_ptr_null(strchr(e->d_name, '/'));
		files++;
	}
	closedir(d);
	ck_assert_int_eq(files, (int)(sizeof(names) / sizeof(names[0])));
	sbt_rc_close(&c);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
	sbt_rmtree(tmp);
}
END_TEST

/* A symlink where the socket's directory should be is refused. */
START_TEST(a_symlinked_socket_directory_is_refused)
{
	char *tmp = sbt_tempdir();
	char real[256], link[256], sock[300], err[2048];
	const char *argv[] = {"shmbusd", "--foreground", "--socket", sock,
			      NULL};
	struct stat st;

	snprintf(real, sizeof(real), "%s/real", tmp);
	snprintf(link, sizeof(link), "%s/link", tmp);
	snprintf(sock, sizeof(sock), "%s/shmbusd.sock", link);
	ck_assert_int_eq(mkdir(real, 0700), 0);
	ck_assert_int_eq(symlink(real, link), 0);
	ck_assert_int_ne(sbt_run_shmbusd(argv, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "symlink") != NULL, "stderr: %s", err);
	snprintf(sock, sizeof(sock), "%s/shmbusd.sock", real);
	ck_assert_int_ne(lstat(sock, &st), 0);
	sbt_rmtree(tmp);
}
END_TEST

Suite *hostile_suite(void)
{
	Suite *s = suite_create("hostile");
	TCase *tc = tcase_create("peers");

	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, stalls_and_floods_are_bounded_and_dropped);
	tcase_add_test(tc, a_silent_peer_is_dropped);
	tcase_add_test(tc,
		       connections_past_max_clients_get_eusers_the_rest_work);
	tcase_add_test(tc, running_out_of_descriptors_is_survived);
	suite_add_tcase(s, tc);

	tc = tcase_create("resources");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, a_topic_over_the_file_size_limit_is_refused);
	tcase_add_test(tc, a_persistent_topic_bigger_than_its_disk_gets_enospc);
	tcase_add_test(tc, a_writer_killed_while_blocked_leaves_the_stat);
	suite_add_tcase(s, tc);

	tc = tcase_create("paths");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, persistent_file_names_stay_in_data_dir);
	tcase_add_test(tc, a_symlinked_socket_directory_is_refused);
	suite_add_tcase(s, tc);
	return s;
}
