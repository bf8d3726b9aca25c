/*
 * check_persist.c - persistent topics with real brokers and real processes:
 * clients get a sealed memfd, never the file, so a publisher cannot
 * truncate what others map; a broker restart never puts two control
 * segments on one data area, whoever reaches the new broker first; the
 * broker writes the memory back, so messages survive clean restarts and,
 * through the clients' hand-back, a SIGKILL; and a broker killed in the
 * middle of writing back leaves a file that holds a valid ring.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ring/ring.h"
#include "ring/ring_layout.h"
#include "shmbus/shmbus.h"
#include "tests/suites.h"
#include "tests/support/broker_harness.h"
#include "tests/support/msg.h"
#include "tests/support/rawclient.h"
#include "tests/support/testutil.h"

#define PRODUCERS 16 /* producer ids 0..PRODUCERS-1 */
#define MSG_MAX	  256
#define WAIT_MS	  20000
#define RACE_RUNS 20
#define KILL_RUNS 10

/* ---- messages: seq, producer, a pattern, a checksum --------------------- */

/* What one reader saw of each producer: consecutive seqs or an error. */
struct seen {
	_Atomic uint64_t total;
	_Atomic uint64_t count[PRODUCERS];
	_Atomic int64_t first[PRODUCERS]; /* -1 until the first message */
	_Atomic int64_t last[PRODUCERS];
	_Atomic uint32_t errors; /* bad message, gap, duplicate, EBADMSG */
};

static void seen_init(struct seen *s)
{
	memset(s, 0, sizeof(*s));
	for (int p = 0; p < PRODUCERS; p++) {
		atomic_store(&s->first[p], -1);
		atomic_store(&s->last[p], -1);
	}
}

/* Counts one received message (or an error, for len < 0). */
static void account(struct seen *s, const unsigned char *buf, ssize_t len)
{
	uint32_t seq, p;
	int64_t last;

	if (len < 0 ||
	    sbt_check_msg(buf, (size_t)len, PRODUCERS, &seq, &p) < 0) {
		atomic_fetch_add(&s->errors, 1);
		return;
	}
	last = atomic_load(&s->last[p]);
	if (last >= 0 && (int64_t)seq != last + 1) {
		atomic_fetch_add(&s->errors, 1);
	}
	if (last < 0) {
		atomic_store(&s->first[p], seq);
	}
	atomic_store(&s->last[p], seq);
	atomic_fetch_add(&s->count[p], 1);
	atomic_fetch_add(&s->total, 1);
}

/* ---- processes sharing one page of counters ---------------------------- */

struct shared {
	_Atomic uint32_t stop_pub[PRODUCERS];
	_Atomic uint32_t stop_sub[2];
	_Atomic uint32_t ready_pub[PRODUCERS];
	_Atomic uint32_t ready_sub[2];
	_Atomic uint64_t sent[PRODUCERS];
	struct seen sub[2];
};

static struct shared *sh;
static char sock_path[256];

static struct shared *shared_map(void)
{
	struct shared *p = sbt_shared_alloc(sizeof(*p));

	ck_assert_ptr_nonnull(p);
	return p;
}

static void shared_reset(void)
{
	memset(sh, 0, sizeof(*sh));
	seen_init(&sh->sub[0]);
	seen_init(&sh->sub[1]);
}

/* Producer `id`: publishes consecutive seqs on `topic` at full speed until
 * told to stop. A topic that only subscribers have handed back to a new
 * broker yet is read-only for a moment (EROFS): it tries again. */
static void producer_main(const char *topic, int id)
{
	unsigned char buf[MSG_MAX];
	shmbus *bus;
	shmbus_pub *pub;
	uint32_t seq = 0;
	int r = -1;

	if (shmbus_connect(sock_path, "producer", &bus) < 0) {
		_exit(10);
	}
	for (int i = 0; i < WAIT_MS && r != 0; i++) {
		r = shmbus_pub_open(bus, topic, &pub);
		if (r == -EROFS) {
			sbt_sleep_ms(1);
		} else if (r < 0) {
			_exit(11);
		}
	}
	if (r < 0) {
		_exit(11);
	}
	atomic_store(&sh->ready_pub[id], 1);
	while (atomic_load(&sh->stop_pub[id]) == 0) {
		size_t len = sbt_make_msg(buf, seq, (uint32_t)id);

		r = shmbus_publish(pub, buf, len, 200);
		if (r == -ETIMEDOUT) {
			continue;
		}
		if (r != 0) {
			_exit(12);
		}
		atomic_store(&sh->sent[id], ++seq);
	}
	shmbus_pub_close(pub);
	shmbus_close(bus);
	_exit(0);
}

/* Subscriber `id`: receives from the earliest message and checks each
 * until told to stop, then drains. */
static void subscriber_main(const char *topic, int id)
{
	unsigned char buf[MSG_MAX];
	shmbus *bus;
	shmbus_sub *sub;

	if (shmbus_connect(sock_path, "subscriber", &bus) < 0) {
		_exit(10);
	}
	if (shmbus_sub_open(bus, topic, SHMBUS_START_EARLIEST, &sub) < 0) {
		_exit(11);
	}
	atomic_store(&sh->ready_sub[id], 1);
	for (;;) {
		int stopping = atomic_load(&sh->stop_sub[id]) != 0;
		ssize_t n =
		    shmbus_receive(sub, buf, sizeof(buf), stopping ? 300 : 100);

		if (n == -ETIMEDOUT || n == -EAGAIN) {
			if (stopping) {
				break;
			}
			continue;
		}
		account(&sh->sub[id], buf, n);
	}
	shmbus_sub_close(sub);
	shmbus_close(bus);
	_exit(0);
}

/* Forks with no bus open in this process (so no other thread exists). */
static pid_t spawn_producer(const char *topic, int id)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		producer_main(topic, id);
	}
	ck_assert_msg(sbt_wait_flag(&sh->ready_pub[id], WAIT_MS),
		      "producer %d never opened", id);
	return pid;
}

static pid_t spawn_subscriber(const char *topic, int id)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		subscriber_main(topic, id);
	}
	ck_assert_msg(sbt_wait_flag(&sh->ready_sub[id], WAIT_MS),
		      "subscriber %d never opened", id);
	return pid;
}

/* ---- a broker with a data_dir ------------------------------------------- */

/* Starts a broker in a fresh directory that is also its data_dir, with
 * `extra` (JSON members, may be "") and one persistent topic. */
static void start_persistent(struct sbt_broker *b, char *cfg, size_t cap,
			     const char *extra, const char *topic,
			     const char *capacity, const char *overflow)
{
	memset(b, 0, sizeof(*b));
	b->dir = sbt_tempdir();
	snprintf(cfg, cap,
		 "{\"data_dir\": \"%s\", %s \"topics\": [{\"name\": \"%s\","
		 " \"persistent\": true, \"capacity\": \"%s\","
		 " \"max_message\": \"1KiB\", \"overflow\": \"%s\"}]}",
		 b->dir, extra, topic, capacity, overflow);
	ck_assert_int_eq(sbt_broker_start_in(b, cfg, NULL), 0);
	snprintf(sock_path, sizeof(sock_path), "%s", b->socket);
}

/* The ring in a persistent topic's file, read with a fresh control
 * segment the way a broker reuses it: every message checked. */
struct file_ring {
	struct seen seen;
	uint64_t messages;
	int attach; /* sb_ring_attach's result */
	int end;    /* what the last receive returned: -EAGAIN when clean */
};

static void read_file_ring(const char *dir, const char *topic,
			   struct file_ring *out)
{
	char path[512];
	struct stat st;
	const struct sb_ring_header *hdr;
	struct sb_ring_config cfg;
	struct sb_ring ring;
	struct sb_ring_reader rd;
	unsigned char buf[MSG_MAX];
	uint64_t dsize, csize;
	void *data, *ctl, *slot;
	ssize_t n;
	int fd;

	memset(out, 0, sizeof(*out));
	seen_init(&out->seen);
	snprintf(path, sizeof(path), "%s/%s", dir, topic);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	data = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE, fd, 0);
	close(fd);
	ck_assert_ptr_ne(data, MAP_FAILED);
	hdr = data;
	cfg.capacity = hdr->capacity;
	cfg.max_message = hdr->max_message;
	cfg.slot_count = hdr->slot_count;
	cfg.mode = hdr->mode;
	cfg.overflow = hdr->overflow;
	cfg.flags = hdr->flags;
	cfg.slot_home = hdr->slot_home;
	ck_assert_int_eq(sb_ring_layout(&cfg, &dsize, &csize), 0);
	ck_assert_uint_eq(dsize, (uint64_t)st.st_size);
	ctl = aligned_alloc(4096, csize);
	ck_assert_ptr_nonnull(ctl);
	ck_assert_int_eq(sb_ring_format_ctl(ctl, csize, &cfg,
					    atomic_load(&hdr->writer_oldest)),
			 0);
	/* A slot segment of this test's own (zeroed, as a broker gives
	 * them): the file's ring keeps its slots in segments. */
	slot = aligned_alloc(4096, SB_RING_SLOT_SEGMENT_SIZE);
	ck_assert_ptr_nonnull(slot);
	memset(slot, 0, SB_RING_SLOT_SEGMENT_SIZE);
	out->attach = sb_ring_attach(&ring, data, dsize, ctl, csize);
	if (out->attach == 0) {
		ck_assert_int_eq(
		    sb_ring_reader_open_slot(&ring, slot, 0,
					     SB_RING_START_EARLIEST, &rd),
		    0);
		while ((n = sb_ring_receive(&rd, buf, sizeof(buf), 0)) >= 0) {
			account(&out->seen, buf, n);
			out->messages++;
		}
		out->end = (int)n;
		sb_ring_reader_close(&rd);
	}
	free(slot);
	free(ctl);
	munmap(data, (size_t)st.st_size);
}

/* Asserts the file holds a valid ring of good messages, each producer's
 * consecutive. */
static void check_file_ring(const char *dir, const char *topic,
			    struct file_ring *fr)
{
	read_file_ring(dir, topic, fr);
	ck_assert_int_eq(fr->attach, 0);
	ck_assert_int_eq(fr->end, -EAGAIN);
	ck_assert_uint_eq(atomic_load(&fr->seen.errors), 0);
}

/* ---- a publisher cannot truncate the memory ------------------------------ */

/* Receives `n` messages from the earliest, each the pattern of its index;
 * exits 0 when all were right (a SIGBUS shows as the signal). */
static void pattern_reader(const char *topic, int n)
{
	unsigned char buf[MSG_MAX];
	shmbus *bus;
	shmbus_sub *sub;

	if (shmbus_connect(sock_path, "reader", &bus) < 0 ||
	    shmbus_sub_open(bus, topic, SHMBUS_START_EARLIEST, &sub) < 0) {
		_exit(10);
	}
	for (int i = 0; i < n; i++) {
		ssize_t len = shmbus_receive(sub, buf, sizeof(buf), 5000);

		if (len != 100 || !sbt_check_pattern(buf, 100, (uint32_t)i)) {
			_exit(20);
		}
	}
	shmbus_close(bus);
	_exit(0);
}

START_TEST(a_publisher_cannot_truncate_a_persistent_topic)
{
	struct sbt_broker b;
	struct sbt_rc c;
	struct sb_ring ring;
	char cfg[1024], path[512], msg[100];
	struct stat fst, dst;
	uint64_t dsize, csize;
	void *data, *ctl;
	pid_t reader;
	int fd;

	start_persistent(&b, cfg, sizeof(cfg), "", "pt", "64KiB", "block");
	ck_assert_int_eq(sbt_rc_hello(&c, b.socket, "attacker"), 0);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"pub_open\",\"id\":2,"
					 "\"topic\":\"pt\"}"),
			 0);
	ck_assert_int_eq(c.nfds, 2);
	dsize = (uint64_t)sbt_rc_int(&c, "data_size", 0);
	csize = (uint64_t)sbt_rc_int(&c, "ctl_size", 0);
	data =
	    mmap(NULL, dsize, PROT_READ | PROT_WRITE, MAP_SHARED, c.fds[0], 0);
	ctl =
	    mmap(NULL, csize, PROT_READ | PROT_WRITE, MAP_SHARED, c.fds[1], 0);
	ck_assert_ptr_ne(data, MAP_FAILED);
	ck_assert_ptr_ne(ctl, MAP_FAILED);
	ck_assert_int_eq(sb_ring_attach(&ring, data, dsize, ctl, csize), 0);
	for (int i = 0; i < 50; i++) {
		sbt_fill_pattern(msg, sizeof(msg), (uint32_t)i);
		ck_assert_int_eq(sb_ring_publish(&ring, msg, sizeof(msg), 1000),
				 0);
	}

	/* The attack: shrink what everybody maps, by the descriptor, by a
	 * reopening through /proc, and by undoing the seals. */
	ck_assert_int_eq(ftruncate(c.fds[0], 0), -1);
	ck_assert_int_eq(errno, EPERM);
	ck_assert_int_eq(ftruncate(c.fds[0], 4096), -1);
	ck_assert_int_eq(errno, EPERM);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", c.fds[0]);
	fd = open(path, O_RDWR | O_TRUNC | O_CLOEXEC);
	ck_assert_int_eq(fd, -1);
	ck_assert_int_eq(errno, EPERM);
	ck_assert_int_eq(fcntl(c.fds[0], F_GET_SEALS),
			 F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	/* And the descriptor is not the file in data_dir. */
	snprintf(path, sizeof(path), "%s/pt", b.dir);
	ck_assert_int_eq(stat(path, &fst), 0);
	ck_assert_int_eq(fstat(c.fds[0], &dst), 0);
	ck_assert(fst.st_dev != dst.st_dev || fst.st_ino != dst.st_ino);

	/* Everyone keeps working: the publisher, a subscriber, the broker
	 * (which reads the header for topic_stat and writes it back). */
	for (int i = 50; i < 100; i++) {
		sbt_fill_pattern(msg, sizeof(msg), (uint32_t)i);
		ck_assert_int_eq(sb_ring_publish(&ring, msg, sizeof(msg), 1000),
				 0);
	}
	reader = fork();
	ck_assert_int_ge(reader, 0);
	if (reader == 0) {
		pattern_reader("pt", 100);
	}
	ck_assert_int_eq(sbt_wait(reader), 0);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_stat\",\"id\":3,"
					 "\"topic\":\"pt\"}"),
			 0);
	ck_assert_int_eq(sbt_rc_int(&c, "stats.published", -1), 100);
	munmap(data, dsize);
	munmap(ctl, csize);
	sbt_rc_close(&c);
	ck_assert_int_eq(sbt_broker_signal_wait(&b, SIGTERM), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- the hand-back race -------------------------------------------------- */

/* 1 when topic_list shows `topic` with at least `pubs` publishers and
 * `subs` subscribers. */
static int listed_with(const char *topic, int pubs, int subs)
{
	struct sbt_rc c;
	const cJSON *t;
	int found = 0;

	if (sbt_rc_hello(&c, sock_path, "lister") < 0) {
		return 0;
	}
	if (sbt_rc_call(&c, "{\"op\":\"topic_list\",\"id\":2}") == 0) {
		cJSON_ArrayForEach(
		    t, cJSON_GetObjectItem(sbt_rc_result(&c), "topics"))
		{
			const char *name = cJSON_GetStringValue(
			    cJSON_GetObjectItem(t, "name"));

			found |=
			    name != NULL && strcmp(name, topic) == 0 &&
			    cJSON_GetObjectItem(t, "publishers")->valueint >=
				pubs &&
			    cJSON_GetObjectItem(t, "subscribers")->valueint >=
				subs;
		}
	}
	sbt_rc_close(&c);
	return found;
}

static void stop_and_reap(pid_t *pubs, pid_t *subs)
{
	for (int i = 0; i < 2; i++) {
		atomic_store(&sh->stop_pub[i], 1);
	}
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(sbt_wait(pubs[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		atomic_store(&sh->stop_sub[i], 1);
	}
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(sbt_wait(subs[i]), 0);
	}
}

/*
 * One run: an old publisher (0) and block-mode subscriber (0) at full
 * speed; the broker is SIGKILLed and restarted; a new subscriber (1) and
 * publisher (1) open the topic on the new broker before (the old ones
 * stopped meanwhile), while or after the old ones hand it back (`run`
 * picks). Returns 1 when the old memory
 * won (the streams joined), 0 when the old clients were refused.
 */
static int race_once(int run)
{
	struct sbt_broker b;
	struct file_ring fr;
	char cfg[1024];
	pid_t pubs[2], subs[2];
	uint64_t at_kill, before;
	int joined;

	shared_reset();
	start_persistent(&b, cfg, sizeof(cfg), "", "race", "64KiB", "block");
	subs[0] = spawn_subscriber("race", 0);
	pubs[0] = spawn_producer("race", 0);
	ck_assert(sbt_wait_u64(&sh->sub[0].total, 300, WAIT_MS));

	if (run % 3 == 0) {
		/* Held until the new clients are in: the new broker has
		 * handed its own memory out before they come back. */
		kill(pubs[0], SIGSTOP);
		kill(subs[0], SIGSTOP);
	}
	ck_assert_int_eq(sbt_broker_signal_wait(&b, SIGKILL), -SIGKILL);
	at_kill = atomic_load(&sh->sent[0]);
	ck_assert_int_eq(sbt_broker_start_in(&b, cfg, NULL), 0);
	if (run % 3 == 1) {
		sbt_sleep_ms(run % 7 * 3);
	} else if (run % 3 == 2) {
		for (int i = 0; i < WAIT_MS && !listed_with("race", 1, 1);
		     i++) {
			sbt_sleep_ms(1);
		}
	}
	subs[1] = spawn_subscriber("race", 1);
	pubs[1] = spawn_producer("race", 1);
	if (run % 3 == 0) {
		kill(subs[0], SIGCONT);
		kill(pubs[0], SIGCONT);
	}
	ck_assert_msg(sbt_wait_u64(&sh->sub[1].count[1], 300, WAIT_MS),
		      "run %d: the new subscriber stalled (%u errors)", run,
		      atomic_load(&sh->sub[1].errors));
	before = atomic_load(&sh->sub[0].count[0]);
	ck_assert_msg(sbt_wait_u64(&sh->sub[0].count[0], before + 300, WAIT_MS),
		      "run %d: the old subscriber stalled (%u errors)", run,
		      atomic_load(&sh->sub[0].errors));
	stop_and_reap(pubs, subs);

	/* Each subscriber's stream is whole: no loss (block), no tear, no
	 * EBADMSG, from the first message of each producer it shares. */
	for (int k = 0; k < 2; k++) {
		ck_assert_msg(atomic_load(&sh->sub[k].errors) == 0,
			      "run %d: subscriber %d: %u errors", run, k,
			      atomic_load(&sh->sub[k].errors));
	}
	ck_assert_int_eq(atomic_load(&sh->sub[0].first[0]), 0);
	ck_assert_int_eq(atomic_load(&sh->sub[0].last[0]),
			 (int64_t)atomic_load(&sh->sent[0]) - 1);
	ck_assert_int_eq(atomic_load(&sh->sub[1].first[1]), 0);
	ck_assert_int_eq(atomic_load(&sh->sub[1].last[1]),
			 (int64_t)atomic_load(&sh->sent[1]) - 1);
	joined = atomic_load(&sh->sub[0].count[1]) > 0;
	if (joined) {
		ck_assert_int_eq(atomic_load(&sh->sub[0].last[1]),
				 (int64_t)atomic_load(&sh->sent[1]) - 1);
		ck_assert_int_eq(atomic_load(&sh->sub[1].last[0]),
				 (int64_t)atomic_load(&sh->sent[0]) - 1);
	} else {
		/* Apart: the new stream holds no message the old publisher
		 * sent after the old broker died. */
		ck_assert_int_le(atomic_load(&sh->sub[1].last[0]),
				 (int64_t)at_kill);
	}

	/* The file holds the end of the registered stream, and only it:
	 * a producer of that stream found there has its last message
	 * there (later ones would follow it); the old publisher of a
	 * refused stream has nothing there it sent after the kill. */
	ck_assert_int_eq(sbt_broker_signal_wait(&b, SIGTERM), 0);
	check_file_ring(b.dir, "race", &fr);
	ck_assert_uint_gt(fr.messages, 0);
	if (joined && atomic_load(&fr.seen.count[0]) > 0) {
		ck_assert_int_eq(atomic_load(&fr.seen.last[0]),
				 (int64_t)atomic_load(&sh->sent[0]) - 1);
	} else if (!joined) {
		ck_assert_int_le(atomic_load(&fr.seen.last[0]),
				 (int64_t)at_kill);
		ck_assert_uint_gt(atomic_load(&fr.seen.count[1]), 0);
	}
	if (atomic_load(&fr.seen.count[1]) > 0) {
		ck_assert_int_eq(atomic_load(&fr.seen.last[1]),
				 (int64_t)atomic_load(&sh->sent[1]) - 1);
	}
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
	return joined;
}

START_TEST(the_hand_back_race_never_shares_a_data_area)
{
	int joined = 0;

	sh = shared_map();
	for (int run = 0; run < RACE_RUNS; run++) {
		joined += race_once(run);
	}
	fprintf(stderr,
		"persist: hand-back race: the old clients' memory won %d of "
		"%d runs, the new broker's %d\n",
		joined, RACE_RUNS, RACE_RUNS - joined);
	munmap(sh, sizeof(*sh));
}
END_TEST

/* ---- messages survive restarts ------------------------------------------ */

/* Publishes `text` on `topic`, then waits for the go flag (stop_pub[id])
 * and publishes `then`, then closes. */
static void holder_main(const char *topic, int id, const char *text,
			const char *then)
{
	shmbus *bus;
	shmbus_pub *pub;

	if (shmbus_connect(sock_path, "holder", &bus) < 0 ||
	    shmbus_pub_open(bus, topic, &pub) < 0 ||
	    shmbus_publish(pub, text, strlen(text), 1000) < 0) {
		_exit(10);
	}
	atomic_store(&sh->ready_pub[id], 1);
	while (then != NULL && atomic_load(&sh->stop_pub[id]) == 0) {
		sbt_sleep_ms(1);
	}
	if (then != NULL && shmbus_publish(pub, then, strlen(then), 1000) < 0) {
		_exit(11);
	}
	shmbus_close(bus);
	_exit(0);
}

static pid_t spawn_holder(const char *topic, int id, const char *text,
			  const char *then)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		holder_main(topic, id, text, then);
	}
	ck_assert(sbt_wait_flag(&sh->ready_pub[id], WAIT_MS));
	return pid;
}

/* Receives everything from the earliest message into `out` as one
 * "a,b,c" string. */
static void read_all(const char *topic, char *out, size_t cap)
{
	char buf[MSG_MAX];
	shmbus *bus;
	shmbus_sub *sub;
	ssize_t n;
	size_t used = 0;

	out[0] = '\0';
	ck_assert_int_eq(shmbus_connect(sock_path, "check", &bus), 0);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, topic, SHMBUS_START_EARLIEST, &sub), 0);
	while ((n = shmbus_receive(sub, buf, sizeof(buf) - 1, 0)) >= 0) {
		buf[n] = '\0';
		used += (size_t)snprintf(out + used, cap - used, "%s%s",
					 used > 0 ? "," : "", buf);
		ck_assert_uint_lt(used, cap);
	}
	ck_assert_int_eq(n, -EAGAIN);
	shmbus_close(bus);
}

START_TEST(messages_survive_clean_restarts_and_a_sigkill)
{
	struct sbt_broker b;
	char cfg[1024], got[256];
	pid_t holder;

	sh = shared_map();
	shared_reset();
	/* No periodic write-back during the test: what reaches the file
	 * goes there at a close, a shutdown or a hand-back. */
	start_persistent(&b, cfg, sizeof(cfg),
			 "\"persist_interval_ms\": 3600000,", "keep", "64KiB",
			 "block");
	holder = spawn_holder("keep", 0, "one", NULL);
	ck_assert_int_eq(sbt_wait(holder), 0);

	/* A clean restart: written back at the last close. */
	ck_assert_int_eq(sbt_broker_signal_wait(&b, SIGTERM), 0);
	ck_assert_int_eq(sbt_broker_start_in(&b, cfg, NULL), 0);
	ck_assert(sbt_broker_log_wait(&b, "reusing its persisted ring"));

	/* A SIGKILL while a client holds the topic: "two" is only in the
	 * memory that client holds, until it hands it back. */
	holder = spawn_holder("keep", 1, "two", "three");
	ck_assert_int_eq(sbt_broker_signal_wait(&b, SIGKILL), -SIGKILL);
	ck_assert_int_eq(sbt_broker_start_in(&b, cfg, NULL), 0);
	ck_assert(sbt_broker_log_wait(
	    &b, "topic \"keep\": replaced by the memory its clients"));
	atomic_store(&sh->stop_pub[1], 1);
	ck_assert_int_eq(sbt_wait(holder), 0);

	/* A third broker, with no client left to hand anything back. */
	ck_assert_int_eq(sbt_broker_signal_wait(&b, SIGTERM), 0);
	ck_assert_int_eq(sbt_broker_start_in(&b, cfg, NULL), 0);
	ck_assert(sbt_broker_log_wait(&b, "reusing its persisted ring"));
	read_all("keep", got, sizeof(got));
	ck_assert_str_eq(got, "one,two,three");
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
	munmap(sh, sizeof(*sh));
}
END_TEST

/* ---- one file, one topic, one broker ------------------------------------ */

/*
 * A deleted topic is written back and lets go of its file, so a topic of
 * the same name created next loads it (even while the deleted one is
 * still held); a second broker given the same data_dir cannot take a file
 * the first one holds.
 */
START_TEST(a_file_belongs_to_one_topic_of_one_broker)
{
	struct sbt_broker b, other;
	struct sbt_rc c, o;
	struct sb_ring ring;
	struct stat st;
	char cfg[1024], path[600], got[64];
	uint64_t dsize, csize;
	void *data, *ctl;

	start_persistent(&b, cfg, sizeof(cfg),
			 "\"persist_interval_ms\": 3600000,", "p", "64KiB",
			 "block");
	ck_assert_int_eq(sbt_rc_hello(&c, b.socket, "check"), 0);
	ck_assert_int_eq(sbt_rc_call(&c,
				     "{\"op\":\"topic_create\",\"id\":2,"
				     "\"topic\":\"del\",\"persistent\":true,"
				     "\"capacity\":\"64KiB\"}"),
			 0);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"pub_open\",\"id\":3,"
					 "\"topic\":\"del\"}"),
			 0);
	dsize = (uint64_t)sbt_rc_int(&c, "data_size", 0);
	csize = (uint64_t)sbt_rc_int(&c, "ctl_size", 0);
	data =
	    mmap(NULL, dsize, PROT_READ | PROT_WRITE, MAP_SHARED, c.fds[0], 0);
	ctl =
	    mmap(NULL, csize, PROT_READ | PROT_WRITE, MAP_SHARED, c.fds[1], 0);
	ck_assert_ptr_ne(data, MAP_FAILED);
	ck_assert_ptr_ne(ctl, MAP_FAILED);
	ck_assert_int_eq(sb_ring_attach(&ring, data, dsize, ctl, csize), 0);
	ck_assert_int_eq(sb_ring_publish(&ring, "kept", 4, 1000), 0);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_delete\",\"id\":4,"
					 "\"topic\":\"del\"}"),
			 0);
	/* After the delete: still held, but no longer written back. */
	ck_assert_int_eq(sb_ring_publish(&ring, "dropped", 7, 1000), 0);
	ck_assert_int_eq(sbt_rc_call(&c,
				     "{\"op\":\"topic_create\",\"id\":5,"
				     "\"topic\":\"del\",\"persistent\":true,"
				     "\"capacity\":\"64KiB\"}"),
			 0);
	munmap(data, dsize);
	munmap(ctl, csize);
	read_all("del", got, sizeof(got));
	ck_assert_str_eq(got, "kept");

	/* Another broker on the same data_dir: the files are taken. */
	memset(&other, 0, sizeof(other));
	other.dir = sbt_tempdir();
	snprintf(cfg, sizeof(cfg), "{\"data_dir\": \"%s\"}", b.dir);
	ck_assert_int_eq(sbt_broker_start_in(&other, cfg, NULL), 0);
	ck_assert_int_eq(sbt_rc_hello(&o, other.socket, "other"), 0);
	ck_assert_int_eq(sbt_rc_call(&o,
				     "{\"op\":\"topic_create\",\"id\":2,"
				     "\"topic\":\"del\",\"persistent\":true,"
				     "\"capacity\":\"64KiB\"}"),
			 -EBUSY);
	ck_assert(sbt_broker_log_wait(&other, "in use by another broker"));
	snprintf(path, sizeof(path), "%s/del", b.dir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq((uint64_t)st.st_size, dsize);
	sbt_rc_close(&o);
	ck_assert_int_eq(sbt_broker_stop(&other), 0);
	sbt_rc_close(&c);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- a broker killed while it writes back -------------------------------- */

START_TEST(a_broker_killed_while_writing_back_leaves_a_valid_ring)
{
	struct sbt_broker b;
	struct file_ring fr;
	char cfg[1024];
	uint64_t total = 0;

	sh = shared_map();
	shared_reset();
	/* A write-back every 10 ms of a ring that an overwrite publisher
	 * laps continually: kills land in the middle of write-backs. */
	start_persistent(&b, cfg, sizeof(cfg), "\"persist_interval_ms\": 10,",
			 "crash", "4MiB", "overwrite");
	srand((unsigned)getpid());
	for (int run = 0; run < KILL_RUNS; run++) {
		pid_t pub;

		if (run > 0) {
			ck_assert_int_eq(sbt_broker_start_in(&b, cfg, NULL), 0);
			ck_assert(sbt_broker_log_wait(
			    &b, "reusing its persisted ring"));
		}
		pub = spawn_producer("crash", run);
		ck_assert(sbt_wait_u64(&sh->sent[run], 20000, WAIT_MS));
		sbt_sleep_ms(rand() % 40);
		ck_assert_int_eq(sbt_broker_signal_wait(&b, SIGKILL), -SIGKILL);
		kill(pub, SIGKILL);
		ck_assert_int_eq(sbt_wait(pub), -SIGKILL);
		check_file_ring(b.dir, "crash", &fr);
		total += fr.messages;
	}
	ck_assert_uint_gt(total, 0);
	ck_assert_int_eq(sbt_broker_start_in(&b, cfg, NULL), 0);
	ck_assert_int_eq(sbt_broker_signal_wait(&b, SIGTERM), 0);
	/* Every broker found a ring it could reuse in the file. */
	ck_assert(!sbt_broker_log_contains(&b, "does not match"));
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
	munmap(sh, sizeof(*sh));
}
END_TEST

Suite *persist_suite(void)
{
	Suite *s = suite_create("persist");
	TCase *tc = tcase_create("persist");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, a_publisher_cannot_truncate_a_persistent_topic);
	tcase_add_test(tc, the_hand_back_race_never_shares_a_data_area);
	tcase_add_test(tc, messages_survive_clean_restarts_and_a_sigkill);
	tcase_add_test(tc, a_file_belongs_to_one_topic_of_one_broker);
	tcase_add_test(tc,
		       a_broker_killed_while_writing_back_leaves_a_valid_ring);
	suite_add_tcase(s, tc);
	return s;
}
