/*
 * check_adopt.c - topic_adopt is a hand-back, not a way in. Against a real
 * broker, with peers in forked children that switch to uid 65534 (the
 * tests run as root, the broker's uid):
 * - memory whose size changes during the broker's checks (unsealed, then
 *   shrunk and sealed right after the request) never crashes it: seals are
 *   checked before the size;
 * - refused hand-backs (a pipe for a segment, unsealed memory, a wrong
 *   geometry...) leave the broker's descriptor count where it was;
 * - a subscribe-only peer cannot replace a predeclared topic after a
 *   restart, cannot register a name the broker does not know, and memory
 *   it formatted itself is refused (not the broker's uid); a ring whose
 *   header names another topic, or none, is refused to anyone.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "include/shmbus/shmbus.h"
#include "ring/ring.h"
#include "ring/ring_layout.h"
#include "tests/suites.h"
#include "tests/support/broker_harness.h"
#include "tests/support/rawclient.h"
#include "tests/support/testutil.h"

#define NOBODY	 65534
#define CAPACITY 16384
#define MAX_MSG	 4096
/* A peer's own rings have 64 slots: a control segment of 12 KiB, of which
 * only the first 4 KiB stay after the shrink. */
#define SLOTS	   64
#define TRIES	   10000
#define SIZE_SEALS (F_SEAL_SHRINK | F_SEAL_GROW)

/* Everyone may do everything: only the checks on the memory refuse. */
static const char OPEN_CONFIG[] = "{\"socket\": {\"mode\": \"0666\"}}";

/*
 * Anyone may subscribe; publish and admin are root's, except on
 * "nobody/t", where uid 65534 may publish and administer.
 */
static const char RULES_CONFIG[] =
    "{\"socket\": {\"mode\": \"0666\"},"
    " \"topic_defaults\": {\"capacity\": 16384, \"max_message\": 4096,"
    "   \"access\": {\"publish\": {}, \"admin\": {}}},"
    " \"topics\": ["
    "  {\"name\": \"pre/t\"},"
    "  {\"name\": \"nobody/t\", \"access\": {"
    "    \"publish\": {\"uids\": [65534]},"
    "    \"admin\": {\"uids\": [65534]}}}]}";

/* Runs fn(arg) in a child, as uid 65534 or not; returns its status. */
static int in_child(int as_nobody, int (*fn)(const void *), const void *arg)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		_exit(as_nobody && sbt_become_nobody() < 0 ? 99 : fn(arg));
	}
	return sbt_wait(pid);
}

static struct sb_ring_config geometry(uint32_t slots)
{
	struct sb_ring_config cfg = {.capacity = CAPACITY,
				     .max_message = MAX_MSG,
				     .slot_count = slots,
				     .mode = SB_RING_BROADCAST,
				     .overflow = SB_RING_BLOCK,
				     .slot_home = SB_RING_SLOTS_SEGMENTS};

	return cfg;
}

/* A memfd of `size` bytes, sealed against size changes or not; -1 on
 * failure. */
static int memfd_sized(uint64_t size, int sealed)
{
	int fd = memfd_create("adopt-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0 ||
	    (sealed && fcntl(fd, F_ADD_SEALS, SIZE_SEALS) < 0)) {
		if (fd >= 0) {
			close(fd);
		}
		return -1;
	}
	return fd;
}

/* A control segment for `slots`, formatted, sealed or not; -1 on failure. */
static int own_ctl(uint32_t slots, int sealed)
{
	struct sb_ring_config cfg = geometry(slots);
	uint64_t dsize, csize;
	void *c;
	int fd;

	if (sb_ring_layout(&cfg, &dsize, &csize) < 0 ||
	    (fd = memfd_sized(csize, 0)) < 0) {
		return -1;
	}
	c = mmap(NULL, csize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (c == MAP_FAILED || sb_ring_format_ctl(c, csize, &cfg, 0) < 0 ||
	    (sealed && fcntl(fd, F_ADD_SEALS, SIZE_SEALS) < 0)) {
		if (c != MAP_FAILED) {
			munmap(c, csize);
		}
		close(fd);
		return -1;
	}
	munmap(c, csize);
	return fd;
}

/* What a client hands back: data and control, and for a subscriber its
 * slot segment (fd[2], else -1) and index. */
struct held {
	int fd[3];
	int64_t slot;
};

/* A well-formed ring in this process's own sealed memfds, its header
 * naming `name` (NULL: no name, as before names were stored), and a slot
 * segment of its own as slot 0. */
static int own_ring(const char *name, uint32_t slots, struct held *h)
{
	int *fds = h->fd;
	struct sb_ring_config cfg = geometry(slots);
	uint64_t dsize, csize;
	void *d, *c;
	int r = -1;

	if (sb_ring_layout(&cfg, &dsize, &csize) < 0) {
		return -1;
	}
	fds[0] = memfd_sized(dsize, 1);
	fds[1] = memfd_sized(csize, 1);
	fds[2] = memfd_sized(SB_RING_SLOT_SEGMENT_SIZE, 1);
	h->slot = 0;
	if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0) {
		return -1;
	}
	d = mmap(NULL, dsize, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	c = mmap(NULL, csize, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
	if (d != MAP_FAILED && c != MAP_FAILED &&
	    sb_ring_format(d, dsize, c, csize, &cfg) == 0 &&
	    (name == NULL || sb_ring_set_name(d, name) == 0)) {
		r = 0;
	}
	if (d != MAP_FAILED) {
		munmap(d, dsize);
	}
	if (c != MAP_FAILED) {
		munmap(c, csize);
	}
	return r;
}

static void close_held(struct held *h)
{
	for (int i = 0; i < 3; i++) {
		if (h->fd[i] >= 0) {
			close(h->fd[i]);
		}
		h->fd[i] = -1;
	}
}

/* Sends topic_adopt for `topic` with `nfds` descriptors, naming `slot`
 * unless it is negative; does not wait. */
static int send_adopt_slot(struct sbt_rc *c, const char *topic,
			   const char *access, uint64_t capacity, int64_t slot,
			   const int *fds, int nfds)
{
	char json[512], slot_field[32] = "";

	if (slot >= 0) {
		snprintf(slot_field, sizeof(slot_field), ",\"slot\":%lld",
			 (long long)slot);
	}
	snprintf(json, sizeof(json),
		 "{\"op\":\"topic_adopt\",\"id\":7,\"topic\":\"%s\","
		 "\"access\":\"%s\",\"mode\":\"broadcast\","
		 "\"overflow\":\"block\",\"capacity\":%llu,"
		 "\"max_message\":%d,\"fds\":%d%s}",
		 topic, access, (unsigned long long)capacity, MAX_MSG,
		 slot >= 0 ? 3 : 2, slot_field);
	return sbt_rc_send_fds(c, json, fds, nfds);
}

static int send_adopt(struct sbt_rc *c, const char *topic, const char *access,
		      uint64_t capacity, const int *fds, int nfds)
{
	return send_adopt_slot(c, topic, access, capacity, -1, fds, nfds);
}

/* topic_adopt of `h` (with its slot when subscribing), and its reply's
 * code (or the exchange's -errno). */
static int adopt(struct sbt_rc *c, const char *topic, const char *access,
		 const struct held *h)
{
	int sub = strcmp(access, "subscribe") == 0;
	int r = send_adopt_slot(c, topic, access, CAPACITY, sub ? h->slot : -1,
				h->fd, sub ? 3 : 2);

	if (r == 0) {
		r = sbt_rc_recv(c);
	}
	return r < 0 ? r : sbt_rc_code(c);
}

/* A normal client still gets served: open, publish, receive. */
static void broker_serves(const struct sbt_broker *b)
{
	shmbus *bus;
	shmbus_pub *pub;
	shmbus_sub *sub;
	char buf[16];

	ck_assert_int_eq(shmbus_connect(b->socket, "normal", &bus), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, "after/attack", &pub), 0);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "after/attack", SHMBUS_START_LATEST, &sub), 0);
	ck_assert_int_eq(shmbus_publish(pub, "still", 5, 1000), 0);
	ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 1000), 5);
	ck_assert_int_eq(memcmp(buf, "still", 5), 0);
	ck_assert_int_eq(shmbus_sub_close(sub), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
}

/* ---- the shrink race ----------------------------------------------------- */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* An unsealed, never written control segment of the right size for
 * `slots`: it holds no pages, so shrinking it takes the kernel no time. */
static int sparse_ctl(uint32_t slots)
{
	struct sb_ring_config cfg = geometry(slots);
	uint64_t dsize, csize;

	return sb_ring_layout(&cfg, &dsize, &csize) < 0 ? -1
							: memfd_sized(csize, 0);
}

/* One hand-back whose control segment shrinks to nothing and is sealed
 * `delay_ns` after the request left (never, if negative). Returns the reply's
 * code, or the exchange's -errno (the broker gone: -ECONNRESET). */
static int shrink_try(struct sbt_rc *c, int data_fd, int64_t delay_ns)
{
	int fds[2] = {data_fd, sparse_ctl(SLOTS)};
	int64_t t0;
	int r;

	if (fds[1] < 0) {
		return -EMFILE;
	}
	t0 = now_ns();
	r = send_adopt(c, "race/t", "publish", CAPACITY, fds, 2);
	while (r == 0 && delay_ns >= 0 && now_ns() - t0 < delay_ns) {
	}
	if (r == 0 && delay_ns >= 0 &&
	    (ftruncate(fds[1], 0) < 0 ||
	     fcntl(fds[1], F_ADD_SEALS, SIZE_SEALS) < 0)) {
		r = -errno;
	}
	if (r == 0) {
		r = sbt_rc_recv(c);
	}
	close(fds[1]);
	return r < 0 ? r : sbt_rc_code(c);
}

/*
 * Hands over a good data segment with a control segment that is unsealed
 * and of the right size, then shrinks the control segment to nothing and
 * seals it. A broker that checked the size before the seals maps three
 * pages of an empty file and dies of SIGBUS at the first touch, if the
 * shrink and the seal land between its two checks: the delay after the
 * request sweeps the time the broker takes to answer (measured first), in
 * a spread that lands some tries in every part of it. Every try must be
 * refused; returns 0, or a step number.
 */
static int shrink_racer(const void *arg)
{
	const char *socket = arg;
	struct sbt_rc c;
	struct held ring;
	int64_t rtt, t0;

	if (own_ring("race/t", SLOTS, &ring) < 0) {
		return 10;
	}
	close(ring.fd[1]);
	close(ring.fd[2]);
	if (sbt_rc_hello(&c, socket, "racer") != 0) {
		return 11;
	}
	/* How long a refused hand-back takes, without any shrinking. */
	t0 = now_ns();
	for (int i = 0; i < 64; i++) {
		if (shrink_try(&c, ring.fd[0], -1) == 0) {
			return 12;
		}
	}
	rtt = (now_ns() - t0) / 64;
	for (int i = 0; i < TRIES; i++) {
		/* i * golden ratio, mod 1: a low-discrepancy sweep. */
		double frac = (double)i * 0.6180339887;
		int r =
		    shrink_try(&c, ring.fd[0],
			       (int64_t)((frac - (int64_t)frac) * (double)rtt));

		if (r == -ECONNRESET || r == -EPIPE) {
			fprintf(stderr, "adopt: the broker died at try %d\n",
				i);
			return 13;
		}
		if (r >= 0) {
			return 14; /* a shrunk ring was taken */
		}
	}
	sbt_rc_close(&c);
	close(ring.fd[0]);
	return 0;
}

START_TEST(a_segment_shrunk_during_the_checks_never_crashes_the_broker)
{
	struct sbt_broker b;

	sbt_broker_up_shared(&b, OPEN_CONFIG);
	/* A peer of another uid, then one of the broker's own uid (whose
	 * memory passes the owner check, so that the order of the seal and
	 * size checks alone must hold). */
	ck_assert_int_eq(in_child(1, shrink_racer, b.socket), 0);
	ck_assert_int_eq(in_child(0, shrink_racer, b.socket), 0);
	broker_serves(&b);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- no descriptor leaks on refusal -------------------------------------- */

static int broker_fd_count(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL) {
		n += e->d_name[0] != '.';
	}
	closedir(d);
	return n;
}

/*
 * TRIES hand-backs that must all be refused, cycling through bad pairs: a
 * pipe for either segment, unsealed memory for either, a geometry other
 * than the ring's, a read-only data descriptor claiming publish, a single
 * descriptor, three; a subscriber's hand-back whose slot is a pipe, or an
 * unsealed memfd, or that names a slot no broker gave out, or is missing.
 * Returns 0 or a step number.
 */
static int refused_adopter(const void *arg)
{
	const char *socket = arg;
	int pipe_fds[2], unsealed_data, unsealed_ctl, ro_data, unsealed_slot;
	struct held held;
	int *ring = held.fd;
	char path[64];
	struct sbt_rc c;

	if (own_ring("leak/t", SLOTS, &held) < 0 || pipe(pipe_fds) < 0) {
		return 10;
	}
	unsealed_slot = memfd_sized(SB_RING_SLOT_SEGMENT_SIZE, 0);
	unsealed_data = memfd_sized(4096 + CAPACITY, 0);
	unsealed_ctl = own_ctl(SLOTS, 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", ring[0]);
	ro_data = open(path, O_RDONLY | O_CLOEXEC);
	if (unsealed_data < 0 || unsealed_ctl < 0 || ro_data < 0 ||
	    unsealed_slot < 0 || sbt_rc_hello(&c, socket, "refused") != 0) {
		return 11;
	}
	for (int i = 0; i < TRIES; i++) {
		int three[3] = {ring[0], ring[1], pipe_fds[0]};
		int bad_slot[3][3] = {{ring[0], ring[1], pipe_fds[0]},
				      {ring[0], ring[1], unsealed_slot},
				      {ring[0], ring[1], ring[2]}};
		int bad[7][2] = {
		    {ring[0], pipe_fds[0]},    {pipe_fds[0], ring[1]},
		    {unsealed_data, ring[1]},  {ring[0], unsealed_ctl},
		    {ro_data, ring[1]},	       {ring[0], ring[1]},
		    {pipe_fds[1], pipe_fds[0]}};
		int k = i % 13;
		int r;

		if (k >= 9 && k <= 11) {
			/* No slot of a fresh ring is one a broker waits
			 * for: slot 0 is refused even when its memory
			 * passes (k == 11). */
			r = send_adopt_slot(&c, "leak/t", "subscribe", CAPACITY,
					    0, bad_slot[k - 9], 3);
		} else if (k == 12) {
			r = send_adopt_slot(&c, "leak/t", "subscribe", CAPACITY,
					    0, ring, 2);
		} else if (k == 7) {
			r = send_adopt(&c, "leak/t", "publish", CAPACITY, ring,
				       1);
		} else if (k == 8) {
			r = send_adopt(&c, "leak/t", "publish", 2 * CAPACITY,
				       three, 3);
		} else {
			/* k == 5: a good pair, but the claimed capacity is
			 * not the ring's. */
			r = send_adopt(&c, "leak/t", "publish",
				       k == 5 ? 2 * CAPACITY : CAPACITY, bad[k],
				       2);
		}
		if (r < 0 || sbt_rc_recv(&c) < 0) {
			return 12;
		}
		if (sbt_rc_code(&c) == 0) {
			return 20 + k;
		}
	}
	sbt_rc_close(&c);
	return 0;
}

START_TEST(refused_hand_backs_leave_no_descriptor_behind)
{
	struct sbt_broker b;
	struct sbt_rc c;
	int before, after = -1;

	sbt_broker_up_shared(&b, OPEN_CONFIG);
	ck_assert_int_eq(sbt_rc_hello(&c, b.socket, "counter"), 0);
	/* A round trip first: the broker may still hold a descriptor of
	 * the hello's own work for a moment after its reply. */
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"ping\",\"id\":8}"), 0);
	before = broker_fd_count(b.pid);
	ck_assert_int_eq(in_child(0, refused_adopter, b.socket), 0);
	ck_assert_int_eq(in_child(1, refused_adopter, b.socket), 0);
	/* The children's connections close as they exit; the broker closes
	 * its end when it sees that. No slack: every refused descriptor must
	 * be closed. */
	for (int i = 0; i < 500 && after != before; i++) {
		ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"ping\",\"id\":9}"),
				 0);
		after = broker_fd_count(b.pid);
		if (after != before) {
			sbt_sleep_ms(10);
		}
	}
	ck_assert_int_eq(after, before);
	sbt_rc_close(&c);
	broker_serves(&b);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- squatting -------------------------------------------------------- */

/* The descriptors a subscriber of `topic` holds (broker-made memory). */
/* Writes `state` into the slot_state of a held slot segment (bit 0: in
 * use), as its reader would. */
static void set_slot_state(const struct held *h, uint32_t state)
{
	struct sb_ring_slot *slot =
	    mmap(NULL, SB_RING_SLOT_SEGMENT_SIZE, PROT_READ | PROT_WRITE,
		 MAP_SHARED, h->fd[2], 0);

	ck_assert_ptr_ne(slot, MAP_FAILED);
	atomic_store(&slot->slot_state, state);
	munmap(slot, SB_RING_SLOT_SEGMENT_SIZE);
}

static void subscribe_fds(struct sbt_rc *c, const char *topic, struct held *h)
{
	int *fds = h->fd;

	ck_assert_int_eq(sbt_rc_call(c,
				     "{\"op\":\"sub_open\",\"id\":3,"
				     "\"topic\":\"%s\"}",
				     topic),
			 0);
	ck_assert_int_eq(c->nfds, 3);
	h->slot = sbt_rc_int(c, "slot", -1);
	ck_assert_int_ge(h->slot, 0);
	for (int i = 0; i < 3; i++) {
		fds[i] = dup(c->fds[i]);
		ck_assert_int_ge(fds[i], 0);
	}
	set_slot_state(h, 1); /* taken, as a reader does (generation 0) */
}

struct squat {
	const char *socket;
	const char *topic;
	const char *access;
	const struct held *held; /* NULL: a ring of the child's own, named
				  * `topic` */
	int expect;		 /* the code the hand-back must get */
};

static int squatter(const void *arg)
{
	const struct squat *s = arg;
	struct sbt_rc c;
	struct held own = {{-1, -1, -1}, -1};
	int r;

	if (s->held == NULL && own_ring(s->topic, SLOTS, &own) < 0) {
		return 10;
	}
	if (sbt_rc_hello(&c, s->socket, "squatter") != 0) {
		return 11;
	}
	r = adopt(&c, s->topic, s->access, s->held != NULL ? s->held : &own);
	if (r != s->expect) {
		fprintf(stderr,
			"adopt: topic_adopt \"%s\" as uid %d: got %d "
			"(%s), expected %d\n",
			s->topic, (int)geteuid(), r, sbt_rc_message(&c),
			s->expect);
		return 12;
	}
	sbt_rc_close(&c);
	close_held(&own);
	return 0;
}

static void expect_nobody(const struct sbt_broker *b, const char *topic,
			  const char *access, const struct held *held, int code)
{
	struct squat s = {b->socket, topic, access, held, code};

	ck_assert_msg(in_child(1, squatter, &s) == 0,
		      "uid 65534 topic_adopt \"%s\" (%s): not %d", topic,
		      access, code);
}

START_TEST(a_subscribe_only_peer_cannot_squat_a_topic)
{
	struct sbt_broker b;
	struct sbt_rc c;
	struct held pre, pre2, free_x, free_x2, named_a, nameless, swapped;

	/* The first broker's memory, as its subscribers hold it (two on
	 * "pre/t" and "free/x", each with its own slot). */
	sbt_broker_up_shared(&b, RULES_CONFIG);
	ck_assert_int_eq(sbt_rc_hello(&c, b.socket, "old"), 0);
	subscribe_fds(&c, "pre/t", &pre);
	subscribe_fds(&c, "pre/t", &pre2);
	subscribe_fds(&c, "free/x", &free_x);
	subscribe_fds(&c, "free/x", &free_x2);
	subscribe_fds(&c, "named/a", &named_a);
	sbt_rc_close(&c);
	ck_assert_int_eq(sbt_broker_signal_wait(&b, SIGKILL), -SIGKILL);
	/* A new broker: "pre/t" and "nobody/t" are fresh, nobody opened
	 * them yet; "free/x" and "named/a" it does not know. */
	ck_assert_int_eq(sbt_broker_start_in(&b, RULES_CONFIG, NULL), 0);

	/* Replacing the predeclared topic's memory needs the publish right,
	 * even with the topic's own memory: the subscriber does not win the
	 * race against the real clients. */
	expect_nobody(&b, "pre/t", "subscribe", &pre, -EACCES);
	/* Registering a name the broker does not know needs the admin
	 * right. */
	expect_nobody(&b, "free/x", "subscribe", &free_x, -EACCES);
	/* Memory the peer made itself is refused, even where its rights
	 * would allow the replacement: it is not the broker's uid's. */
	expect_nobody(&b, "nobody/t", "publish", NULL, -EPERM);
	expect_nobody(&b, "nobody/t", "subscribe", NULL, -EPERM);

	/* A ring whose header names another topic, or none (made before
	 * names were stored), is refused even to root. */
	ck_assert_int_eq(sbt_rc_hello(&c, b.socket, "root"), 0);
	ck_assert_int_eq(adopt(&c, "named/b", "subscribe", &named_a), -EPERM);
	ck_assert_msg(strstr(sbt_rc_message(&c), "named/a") != NULL, "%s",
		      sbt_rc_message(&c));
	ck_assert_int_eq(own_ring(NULL, SLOTS, &nameless), 0);
	ck_assert_int_eq(adopt(&c, "free/n", "publish", &nameless), -EPERM);
	ck_assert_msg(strstr(sbt_rc_message(&c), "no topic name") != NULL, "%s",
		      sbt_rc_message(&c));

	/* A slot segment is bound to its index: one subscriber's segment
	 * handed back as another's slot is refused. */
	swapped = pre;
	swapped.slot = pre2.slot;
	ck_assert_int_eq(adopt(&c, "pre/t", "subscribe", &swapped), -EPERM);
	ck_assert_msg(strstr(sbt_rc_message(&c), "segment of slot") != NULL,
		      "%s", sbt_rc_message(&c));

	/* The real hand-backs still work: with the rights they need, then
	 * the subscriber joins the same memory with its subscribe right. */
	ck_assert_int_eq(adopt(&c, "pre/t", "subscribe", &pre), 0);
	ck_assert_int_eq(adopt(&c, "free/x", "subscribe", &free_x), 0);
	/* A slot its reader freed is nobody's to hand back. */
	set_slot_state(&named_a, 2);
	ck_assert_int_eq(adopt(&c, "named/a", "subscribe", &named_a), -EPERM);
	set_slot_state(&named_a, 3);
	ck_assert_int_eq(adopt(&c, "named/a", "subscribe", &named_a), 0);
	/* (root's connection holds the implicit topics while they join) */
	expect_nobody(&b, "pre/t", "subscribe", &pre2, 0);
	expect_nobody(&b, "free/x", "subscribe", &free_x2, 0);
	/* A slot is handed back once: a second claim on it is refused. */
	ck_assert_int_eq(adopt(&c, "pre/t", "subscribe", &pre), -ESTALE);
	sbt_rc_close(&c);

	close_held(&pre);
	close_held(&pre2);
	close_held(&free_x);
	close_held(&free_x2);
	close_held(&named_a);
	close_held(&nameless);
	broker_serves(&b);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- the name field itself ------------------------------------------- */

START_TEST(the_ring_name_is_stored_bounded_and_read_once)
{
	struct sb_ring_config cfg = geometry(1);
	uint64_t dsize, csize;
	char name[SB_RING_NAME_SIZE], too_long[SB_RING_NAME_SIZE + 1];
	unsigned char *d, *c;

	ck_assert_int_eq(sb_ring_layout(&cfg, &dsize, &csize), 0);
	d = calloc(1, dsize);
	c = calloc(1, csize);
	ck_assert_ptr_nonnull(d);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(sb_ring_format(d, dsize, c, csize, &cfg), 0);
	/* A fresh ring, like one from before names: empty. */
	ck_assert_int_eq(sb_ring_name(d, name), 0);
	ck_assert_str_eq(name, "");
	ck_assert_int_eq(sb_ring_set_name(d, "sensors/imu"), 0);
	ck_assert_int_eq(sb_ring_name(d, name), 0);
	ck_assert_str_eq(name, "sensors/imu");
	ck_assert_int_eq(memcmp(d + SB_RING_NAME_OFFSET, "sensors/imu", 12), 0);
	/* A shorter name leaves nothing of the longer one behind. */
	ck_assert_int_eq(sb_ring_set_name(d, "a"), 0);
	ck_assert_int_eq(sb_ring_name(d, name), 0);
	ck_assert_str_eq(name, "a");
	ck_assert_int_eq(d[SB_RING_NAME_OFFSET + 2], 0);
	memset(too_long, 'x', SB_RING_NAME_SIZE);
	too_long[SB_RING_NAME_SIZE] = '\0';
	ck_assert_int_eq(sb_ring_set_name(d, too_long), -EINVAL);
	ck_assert_int_eq(sb_ring_set_name(d, NULL), -EINVAL);
	/* A field without a NUL (a writer filled it) reads as no name. */
	memset(d + SB_RING_NAME_OFFSET, 'x', SB_RING_NAME_SIZE);
	ck_assert_int_eq(sb_ring_name(d, name), -EBADMSG);
	ck_assert_str_eq(name, "");
	/* The field is beside the header's other fields, not over them. */
	ck_assert_int_eq(
	    sb_ring_attach(&(struct sb_ring){0}, d, dsize, c, csize), 0);
	free(d);
	free(c);
}
END_TEST

Suite *adopt_suite(void)
{
	Suite *s = suite_create("adopt");
	TCase *tc = tcase_create("name");

	tcase_add_test(tc, the_ring_name_is_stored_bounded_and_read_once);
	suite_add_tcase(s, tc);
	tc = tcase_create("adopt");

	tcase_set_timeout(tc, 120);
	if (geteuid() != 0) {
		fprintf(stderr, "adopt: not root, adopt tests skipped\n");
		suite_add_tcase(s, tc);
		return s;
	}
	tcase_add_test(
	    tc, a_segment_shrunk_during_the_checks_never_crashes_the_broker);
	tcase_add_test(tc, refused_hand_backs_leave_no_descriptor_behind);
	tcase_add_test(tc, a_subscribe_only_peer_cannot_squat_a_topic);
	suite_add_tcase(s, tc);
	return s;
}
