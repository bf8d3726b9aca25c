/*
 * check_tamper.c - a subscribe-only peer of another uid scribbles on every
 * shared byte it can write while honest processes use the topic, through a
 * real broker. The attacker knows no layout: it maps every descriptor that
 * sub_open hands it, writable where the descriptor allows, and zeroes,
 * fills and sprinkles them in turn. Whatever it can reach, the honest
 * subscribers of a lossless broadcast topic must still receive every
 * message, once, in order and intact; the honest consumers of a queue may
 * miss what the attacker makes the queue skip, but never get a message
 * twice or damaged; and the broker must live on.
 * A failure names the attacker's random seed; SHMBUS_TAMPER_SEED=SEED in
 * the environment makes the attacker scribble from it again (the timing,
 * and so the outcome, may still differ).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmbus/shmbus.h"
#include "tests/suites.h"
#include "tests/support/broker_harness.h"
#include "tests/support/msg.h"
#include "tests/support/rawclient.h"
#include "tests/support/testutil.h"

#define NOBODY	    65534
#define TOPIC	    "t/tamper"
#define MESSAGES    20000
#define READERS	    2
#define MAX_MESSAGE 1024
/* Every child gives up after this, so that a test never hangs; nothing is
 * asserted on how long anything took. */
#define DEADLINE_MS   60000
#define RECV_WAIT_MS  100
#define PUB_WAIT_MS   1000
#define READY_WAIT_MS 20000
/* How long the others may finish once one child reported a failure. */
#define GRACE_MS    3000
#define PASS_GAP_MS 3

/* Root publishes and administers; anyone may subscribe. */
static const char CONFIG[] =
    "{\"socket\": {\"mode\": \"0666\"},"
    " \"topic_defaults\": {\"access\": {\"publish\": {\"uids\": [0]},"
    "                                 \"admin\": {\"uids\": [0]}}}}";

/* ---- what the children report, in memory shared before fork ----------- */

enum outcome {
	OUT_OK,
	OUT_SETUP,   /* connect, open or the start signal failed */
	OUT_SHORT,   /* the deadline passed first */
	OUT_GAP,     /* a seq other than the next one */
	OUT_CORRUPT, /* a payload that fails sbt_check_msg */
	OUT_LOST,    /* shmbus_sub_lost() not 0 */
	OUT_BADMSG,
	OUT_IDRM,
	OUT_ERROR,   /* another error from the library */
	OUT_STOPPED, /* told to stop after another child failed */
	OUT_DUP,     /* a queue message that a consumer had already had */
};

static const char *const OUTCOME[] = {
    "ok",	"set-up failed",   "deadline passed",
    "seq gap",	"corrupt payload", "lost count not 0",
    "-EBADMSG", "-EIDRM",	   "error",
    "stopped",	"duplicate",
};

struct reader_result {
	int outcome;
	long err;	   /* the return value that ended it */
	uint64_t received; /* messages accepted */
	uint32_t expected; /* at a gap: the seq due ... */
	uint32_t got;	   /* ... and the one that came */
	uint64_t lost;
	uint64_t timeouts;
	/* Queue consumers go on past these, to count them. */
	uint64_t dups;	  /* the first one's seq is in `got` */
	uint64_t corrupt; /* including seqs never published */
	uint64_t badmsg;
};

struct pub_result {
	int outcome;
	long err;
	uint64_t published;
	uint64_t retries; /* publishes that timed out and were tried again */
};

enum attack_outcome {
	ATK_OK,		 /* stopped when told */
	ATK_NOBODY,	 /* could not become uid 65534 */
	ATK_SUB_OPEN,	 /* hello or sub_open refused */
	ATK_NO_WRITABLE, /* nothing it was given maps writable */
};

struct attack_result {
	int outcome;
	long err;
	int nfds;	/* descriptors sub_open gave */
	int writable;	/* of them mapped read-write */
	uint64_t bytes; /* writable bytes, all mappings */
	uint64_t passes;
	uint64_t seed; /* of its scribbles: SHMBUS_TAMPER_SEED replays it */
};

struct shared {
	_Atomic int failed; /* a child saw a failure: end the run early */
	_Atomic int stop;   /* the parent ends the run */
	struct reader_result reader[READERS];
	struct pub_result pub;
	struct attack_result attack;
	_Atomic int pub_done; /* the publisher ended: queue consumers drain */
	/* Queue: a bit per seq, set by the consumer that got it. */
	_Atomic uint64_t seen[(MESSAGES + 63) / 64];
};

static struct shared *sh;
static char sock_path[256];
static int queue_mode; /* the run's topic is a queue */

static struct shared *shared_new(void)
{
	struct shared *s = sbt_shared_alloc(sizeof(*s));

	ck_assert_ptr_nonnull(s);
	return s;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for one byte on `fd` for at most `ms`. Returns 1 if it came. */
static int byte_within(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char c;

	return poll(&p, 1, ms) == 1 && read(fd, &c, 1) == 1;
}

/* A child dies with the test process, whatever ends that. Called after
 * any change of uid, which clears the setting. */
static void die_with_parent(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent) {
		_exit(99);
	}
	alarm(2 * DEADLINE_MS / 1000); /* a hang guard past every deadline */
}

static int reader_fail(struct reader_result *r, int outcome, long err)
{
	r->outcome = outcome;
	r->err = err;
	atomic_store(&sh->failed, 1);
	return outcome;
}

/* ---- the honest processes (root, public API) -------------------------- */

/*
 * A broadcast subscriber from the earliest message: receives until it has
 * every message or the deadline passes. Any gap, bad payload, loss,
 * -EBADMSG or -EIDRM ends it at once.
 */
static int broadcast_reader(int id, int ready_fd)
{
	struct reader_result *r = &sh->reader[id];
	unsigned char buf[MAX_MESSAGE];
	int64_t deadline;
	shmbus *bus;
	shmbus_sub *sub;
	long n;

	n = shmbus_connect(sock_path, "honest-reader", &bus);
	if (n == 0) {
		n = shmbus_sub_open(bus, TOPIC, SHMBUS_START_EARLIEST, &sub);
	}
	if (n != 0 || write(ready_fd, "r", 1) != 1) {
		return reader_fail(r, OUT_SETUP, n);
	}
	deadline = now_ms() + DEADLINE_MS;
	while (r->received < MESSAGES) {
		uint32_t seq, producer;

		if (atomic_load(&sh->stop) || now_ms() > deadline) {
			return reader_fail(
			    r, atomic_load(&sh->stop) ? OUT_STOPPED : OUT_SHORT,
			    0);
		}
		n = shmbus_receive(sub, buf, sizeof(buf), RECV_WAIT_MS);
		if (n == -ETIMEDOUT || n == -EAGAIN) {
			r->timeouts++;
			continue;
		}
		if (n < 0) {
			return reader_fail(r,
					   n == -EBADMSG ? OUT_BADMSG
					   : n == -EIDRM ? OUT_IDRM
							 : OUT_ERROR,
					   n);
		}
		if (sbt_check_msg(buf, (size_t)n, 1, &seq, &producer) < 0) {
			return reader_fail(r, OUT_CORRUPT, n);
		}
		if (seq != r->received) {
			r->expected = (uint32_t)r->received;
			r->got = seq;
			return reader_fail(r, OUT_GAP, n);
		}
		r->received++;
	}
	r->lost = shmbus_sub_lost(sub);
	if (r->lost != 0) {
		return reader_fail(r, OUT_LOST, 0);
	}
	shmbus_sub_close(sub);
	shmbus_close(bus);
	return OUT_OK;
}

/* The publisher: seqs 0..MESSAGES-1 once the attack runs, each retried
 * while the ring stays full, until the deadline. */
static int publisher(int ready_fd, int go_fd)
{
	struct pub_result *r = &sh->pub;
	unsigned char buf[SBT_MSG_MAX];
	int64_t deadline;
	shmbus *bus;
	shmbus_pub *pub;
	int n;

	n = shmbus_connect(sock_path, "honest-publisher", &bus);
	if (n == 0) {
		n = shmbus_pub_open(bus, TOPIC, &pub);
	}
	if (n != 0 || write(ready_fd, "p", 1) != 1 ||
	    !byte_within(go_fd, 2 * READY_WAIT_MS)) {
		r->outcome = OUT_SETUP;
		r->err = n;
		return OUT_SETUP;
	}
	deadline = now_ms() + DEADLINE_MS;
	for (uint32_t seq = 0; seq < MESSAGES; seq++) {
		size_t len = sbt_make_msg(buf, seq, 0);

		while ((n = shmbus_publish(pub, buf, len, PUB_WAIT_MS)) != 0) {
			if (n != -ETIMEDOUT && n != -EAGAIN) {
				r->outcome = OUT_ERROR;
				r->err = n;
				return OUT_ERROR;
			}
			r->retries++;
			if (atomic_load(&sh->stop) || now_ms() > deadline) {
				r->outcome = atomic_load(&sh->stop)
						 ? OUT_STOPPED
						 : OUT_SHORT;
				r->err = n;
				return r->outcome;
			}
		}
		r->published++;
	}
	shmbus_pub_close(pub);
	shmbus_close(bus);
	return OUT_OK;
}

/* Queue: a received message that is intact and published, and had by no
 * consumer before. Counts what it is not. */
static void queue_account(struct reader_result *r, const unsigned char *buf,
			  size_t len)
{
	uint32_t seq, producer;
	uint64_t bit;

	if (sbt_check_msg(buf, len, 1, &seq, &producer) < 0 ||
	    seq >= MESSAGES) {
		r->corrupt++;
		atomic_store(&sh->failed, 1);
		return;
	}
	bit = 1ULL << (seq % 64);
	if (atomic_fetch_or(&sh->seen[seq / 64], bit) & bit) {
		if (r->dups++ == 0) {
			r->got = seq;
		}
		atomic_store(&sh->failed, 1);
		return;
	}
	r->received++;
}

/*
 * A queue consumer: takes messages until the publisher has ended and the
 * queue has stayed empty for three receives. -EBADMSG (the shared queue
 * state the attacker rewrites failed its checks) is a refusal, not a
 * delivery: counted, not a failure. -EIDRM and other errors end it.
 */
static int queue_consumer(int id, int ready_fd)
{
	struct reader_result *r = &sh->reader[id];
	unsigned char buf[MAX_MESSAGE];
	int64_t deadline;
	shmbus *bus;
	shmbus_sub *sub;
	int end = OUT_OK;
	long n;

	n = shmbus_connect(sock_path, "honest-consumer", &bus);
	if (n == 0) {
		n = shmbus_sub_open(bus, TOPIC, SHMBUS_START_EARLIEST, &sub);
	}
	if (n != 0 || write(ready_fd, "r", 1) != 1) {
		return reader_fail(r, OUT_SETUP, n);
	}
	deadline = now_ms() + DEADLINE_MS;
	for (int idle = 0; idle < 3;) {
		int draining = atomic_load(&sh->pub_done);

		if (atomic_load(&sh->stop) || now_ms() > deadline) {
			end = atomic_load(&sh->stop) ? OUT_STOPPED : OUT_SHORT;
			break;
		}
		n = shmbus_receive(sub, buf, sizeof(buf), RECV_WAIT_MS);
		if (n == -ETIMEDOUT || n == -EAGAIN || n == -EBADMSG) {
			if (n == -EBADMSG) {
				r->badmsg++;
				sbt_sleep_ms(1); /* it returns at once */
			} else {
				r->timeouts++;
			}
			idle += draining;
			continue;
		}
		idle = 0;
		if (n < 0) {
			return reader_fail(
			    r, n == -EIDRM ? OUT_IDRM : OUT_ERROR, n);
		}
		queue_account(r, buf, (size_t)n);
	}
	r->lost = shmbus_sub_lost(sub);
	if (r->corrupt != 0 || r->dups != 0) {
		return reader_fail(r, r->corrupt != 0 ? OUT_CORRUPT : OUT_DUP,
				   0);
	}
	if (end != OUT_OK) {
		return reader_fail(r, end, 0);
	}
	shmbus_sub_close(sub);
	shmbus_close(bus);
	return OUT_OK;
}

/* ---- the attacker (uid 65534, raw protocol) ---------------------------- */

struct region {
	uint64_t *words;
	size_t len; /* bytes, a multiple of the page size */
};

/* Maps read-write each descriptor open for writing (and whose mapping the
 * kernel allows so); read-only ones are left alone. */
static int map_writable(const struct sbt_rc *c, struct region *rg)
{
	int n = 0;

	for (int i = 0; i < c->nfds; i++) {
		struct stat st;
		int fl = fcntl(c->fds[i], F_GETFL);
		void *p;

		if (fl < 0 || (fl & O_ACCMODE) != O_RDWR ||
		    fstat(c->fds[i], &st) != 0 || st.st_size <= 0) {
			continue;
		}
		p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, c->fds[i], 0);
		if (p == MAP_FAILED) {
			continue;
		}
		rg[n].words = p;
		rg[n].len = (size_t)st.st_size;
		sh->attack.bytes += rg[n].len;
		n++;
	}
	return n;
}

static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* One pass over one mapping: zeroes, ones, noise, or small values (the
 * size of positions, counts and ids) in random words. */
static void scribble(const struct region *rg, uint64_t pass, uint64_t *rng)
{
	size_t words = rg->len / 8;

	switch (pass % 4) {
	case 0:
		memset(rg->words, 0, rg->len);
		break;
	case 1:
		memset(rg->words, 0xff, rg->len);
		break;
	case 2:
		for (size_t w = 0; w < words; w++) {
			rg->words[w] = next_rand(rng);
		}
		break;
	default:
		for (size_t k = 0; k < words / 8; k++) {
			uint64_t at = next_rand(rng) % words;

			rg->words[at] = next_rand(rng) % 4096;
		}
		break;
	}
}

/* Subscribes without taking a slot, maps what it can write and scribbles
 * on it until told to stop; it never receives. Says it is running after
 * its first pass. */
static int attacker(pid_t parent, int ready_fd, int stop_fd)
{
	struct attack_result *a = &sh->attack;
	struct region rg[4];
	const char *replay = getenv("SHMBUS_TAMPER_SEED");
	uint64_t rng = replay != NULL
			   ? strtoull(replay, NULL, 0)
			   : 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
	struct sbt_rc c;
	int n;

	a->seed = rng;

	if (sbt_become_nobody() < 0) {
		return a->outcome = ATK_NOBODY;
	}
	die_with_parent(parent);
	a->err = sbt_rc_hello(&c, sock_path, "attacker");
	if (a->err == 0) {
		a->err = sbt_rc_call(&c,
				     "{\"op\":\"sub_open\",\"id\":2,"
				     "\"topic\":\"%s\",\"start\":\"earliest\"}",
				     TOPIC);
	}
	if (a->err != 0) {
		return a->outcome = ATK_SUB_OPEN;
	}
	a->nfds = c.nfds;
	n = a->writable = map_writable(&c, rg);
	if (n == 0) {
		return a->outcome = ATK_NO_WRITABLE;
	}
	for (;;) {
		for (int i = 0; i < n; i++) {
			scribble(&rg[i], a->passes, &rng);
		}
		if (a->passes++ == 0 && write(ready_fd, "a", 1) != 1) {
			return a->outcome = ATK_SUB_OPEN;
		}
		if (byte_within(stop_fd, PASS_GAP_MS) ||
		    atomic_load(&sh->stop)) {
			return a->outcome = ATK_OK;
		}
	}
}

/* ---- the run ----------------------------------------------------------- */

enum { P_READER0, P_READER1, P_PUB, P_ATTACKER, PROCS };

static const char *const PROC_NAME[PROCS] = {"reader 0", "reader 1",
					     "publisher", "attacker"};

struct run {
	struct sbt_broker b;
	pid_t pid[PROCS];
	int status[PROCS]; /* sbt_wait()'s convention */
	int done[PROCS];
	int ready[2], go[2], stop[2];
	const char *setup_error; /* a stage of the set-up that failed */
	int broker_answered;	 /* topic_stat round trip after the run */
	int broker_alive;
	int broker_exit;
	int64_t published; /* topic_stat's count */
	int distinct;	   /* queue: seqs some consumer got */
	int64_t elapsed_ms;
};

static int status_of(int ws)
{
	if (WIFEXITED(ws)) {
		return WEXITSTATUS(ws);
	}
	return WIFSIGNALED(ws) ? -WTERMSIG(ws) : -1000;
}

/* Reaps whichever of the children have ended. Returns how many are left
 * among those in [from, to). */
static int reap(struct run *r, int from, int to)
{
	int left = 0;

	for (int i = from; i < to; i++) {
		int ws;

		if (r->pid[i] <= 0 || r->done[i]) {
			continue;
		}
		if (waitpid(r->pid[i], &ws, WNOHANG) == r->pid[i]) {
			r->status[i] = status_of(ws);
			r->done[i] = 1;
		} else {
			left++;
		}
	}
	return left;
}

/* Tells everyone to stop, gives them GRACE_MS, then kills and reaps the
 * rest: no child outlives the test. */
static void end_children(struct run *r)
{
	int64_t until = now_ms() + GRACE_MS;

	atomic_store(&sh->stop, 1);
	if (write(r->stop[1], "s", 1) != 1) {
		/* the flag above stops the attacker too */
	}
	while (reap(r, 0, PROCS) > 0 && now_ms() < until) {
		sbt_sleep_ms(5);
	}
	for (int i = 0; i < PROCS; i++) {
		if (r->pid[i] > 0 && !r->done[i]) {
			kill(r->pid[i], SIGKILL);
			r->status[i] = sbt_wait(r->pid[i]);
			r->done[i] = 1;
		}
	}
}

static pid_t spawn(struct run *r, int which)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid != 0) {
		return pid;
	}
	if (which == P_ATTACKER) {
		_exit(attacker(parent, r->ready[1], r->stop[0]));
	}
	die_with_parent(parent);
	if (which == P_PUB) {
		_exit(publisher(r->ready[1], r->go[0]));
	}
	_exit(queue_mode ? queue_consumer(which - P_READER0, r->ready[1])
			 : broadcast_reader(which - P_READER0, r->ready[1]));
}

/*
 * Starts the honest processes, waits until each has opened the topic,
 * starts the attacker and lets the publisher go once the attacker's first
 * pass is done. Returns 0, or -1 with r->setup_error set.
 */
static int start_children(struct run *r)
{
	static const int honest[] = {P_READER0, P_READER1, P_PUB};

	for (size_t k = 0; k < sizeof(honest) / sizeof(honest[0]); k++) {
		r->pid[honest[k]] = spawn(r, honest[k]);
		if (r->pid[honest[k]] < 0) {
			r->setup_error = "fork";
			return -1;
		}
	}
	for (size_t k = 0; k < sizeof(honest) / sizeof(honest[0]); k++) {
		if (!byte_within(r->ready[0], READY_WAIT_MS)) {
			r->setup_error = "an honest process did not open";
			return -1;
		}
	}
	r->pid[P_ATTACKER] = spawn(r, P_ATTACKER);
	if (r->pid[P_ATTACKER] < 0) {
		r->setup_error = "fork";
		return -1;
	}
	if (!byte_within(r->ready[0], READY_WAIT_MS)) {
		r->setup_error = "the attacker did not start";
		return -1;
	}
	if (write(r->go[1], "g", 1) != 1) {
		r->setup_error = "go";
		return -1;
	}
	return 0;
}

/* Waits until the honest processes [0, P_ATTACKER) end, or for GRACE_MS
 * more once one of them reported a failure, or (a guard only: each
 * child has its own deadline) until well past DEADLINE_MS. Tells queue
 * consumers when the publisher has ended. */
static void wait_honest(struct run *r)
{
	int64_t guard = now_ms() + DEADLINE_MS + 2 * READY_WAIT_MS;
	int64_t until = -1;

	while (reap(r, 0, P_ATTACKER) > 0 && now_ms() < guard) {
		if (r->done[P_PUB]) {
			atomic_store(&sh->pub_done, 1);
		}
		if (until < 0 && atomic_load(&sh->failed)) {
			until = now_ms() + GRACE_MS;
		}
		if (until >= 0 && now_ms() > until) {
			break;
		}
		sbt_sleep_ms(5);
	}
}

static void check_broker(struct run *r)
{
	struct sbt_rc c;

	r->broker_alive =
	    kill(r->b.pid, 0) == 0 && waitpid(r->b.pid, NULL, WNOHANG) == 0;
	if (sbt_rc_hello(&c, r->b.socket, "checker") == 0 &&
	    sbt_rc_call(&c, "{\"op\":\"topic_stat\",\"id\":2,\"topic\":\"%s\"}",
			TOPIC) == 0) {
		r->broker_answered = 1;
		r->published = sbt_rc_int(&c, "stats.published", -1);
	}
	sbt_rc_close(&c);
}

/* Everything the run saw, for the failure messages. */
static void describe(const struct run *r, char *out, size_t len)
{
	const struct pub_result *p = &sh->pub;
	const struct attack_result *a = &sh->attack;
	size_t at;

	at = (size_t)snprintf(out, len, "set-up: %s; exit statuses:",
			      r->setup_error ? r->setup_error : "ok");
	for (int i = 0; i < PROCS && at < len; i++) {
		at += (size_t)snprintf(out + at, len - at, " %s %d%s",
				       PROC_NAME[i], r->status[i],
				       i + 1 < PROCS ? "," : ";");
	}
	for (int i = 0; i < READERS && at < len; i++) {
		const struct reader_result *x = &sh->reader[i];

		at += (size_t)snprintf(
		    out + at, len - at,
		    " reader %d: %s (%ld) after %llu messages, expected seq "
		    "%u got %u, lost %llu, %llu timeouts, %llu duplicates, "
		    "%llu corrupt, %llu -EBADMSG;",
		    i, OUTCOME[x->outcome], x->err,
		    (unsigned long long)x->received, x->expected, x->got,
		    (unsigned long long)x->lost,
		    (unsigned long long)x->timeouts,
		    (unsigned long long)x->dups, (unsigned long long)x->corrupt,
		    (unsigned long long)x->badmsg);
	}
	if (queue_mode && at < len) {
		at += (size_t)snprintf(out + at, len - at,
				       " %d of %d seqs received;", r->distinct,
				       MESSAGES);
	}
	if (at < len) {
		snprintf(out + at, len - at,
			 " publisher: %s (%ld) after %llu, %llu retries;"
			 " attacker: outcome %d (%ld), %d fds, %d writable, "
			 "%llu bytes, %llu passes, seed %#llx; broker answered "
			 "%d alive "
			 "%d exit %d, published %lld; %lld ms",
			 OUTCOME[p->outcome], p->err,
			 (unsigned long long)p->published,
			 (unsigned long long)p->retries, a->outcome, a->err,
			 a->nfds, a->writable, (unsigned long long)a->bytes,
			 (unsigned long long)a->passes,
			 (unsigned long long)a->seed, r->broker_answered,
			 r->broker_alive, r->broker_exit,
			 (long long)r->published, (long long)r->elapsed_ms);
	}
}

/* Starts a broker, creates the topic (through the wire, so that this
 * process has no library threads when it forks) and runs the children to
 * the end. Everything is cleaned up before anything is asserted. */
static void run(struct run *r, const char *mode)
{
	struct sbt_rc c;
	int64_t start = now_ms();
	int created;

	memset(r, 0, sizeof(*r));
	queue_mode = strcmp(mode, "queue") == 0;
	sh = shared_new();
	ck_assert_int_eq(sbt_broker_start(&r->b, CONFIG, NULL), 0);
	snprintf(sock_path, sizeof(sock_path), "%s", r->b.socket);
	/* Let uid 65534 reach the socket (the test directory is root's). */
	created = chmod(r->b.dir, 0755) == 0 &&
		  sbt_rc_hello(&c, r->b.socket, "creator") == 0 &&
		  sbt_rc_call(&c,
			      "{\"op\":\"topic_create\",\"id\":2,"
			      "\"topic\":\"%s\",\"capacity\":65536,"
			      "\"max_message\":%d,\"mode\":\"%s\","
			      "\"overflow\":\"block\"}",
			      TOPIC, MAX_MESSAGE, mode) == 0;
	sbt_rc_close(&c);
	if (!created || pipe(r->ready) != 0 || pipe(r->go) != 0 ||
	    pipe(r->stop) != 0) {
		r->setup_error = "broker, topic or pipes";
	} else if (start_children(r) == 0) {
		wait_honest(r);
	}
	end_children(r);
	r->elapsed_ms = now_ms() - start;
	for (size_t w = 0; w < sizeof(sh->seen) / sizeof(sh->seen[0]); w++) {
		r->distinct += __builtin_popcountll(atomic_load(&sh->seen[w]));
	}
	check_broker(r);
	r->broker_exit = sbt_broker_stop(&r->b);
	for (int i = 0; i < 2; i++) {
		close(r->ready[i]);
		close(r->go[i]);
		close(r->stop[i]);
	}
}

/* The publisher got every message in, the attacker scribbled while the
 * others worked and stopped when told, the broker lived on; then the
 * shared page goes. */
static void assert_others(const struct run *r, const char *what)
{
	ck_assert_msg(r->status[P_PUB] == OUT_OK &&
			  sh->pub.published == MESSAGES,
		      "publisher: %s", what);
	ck_assert_msg(r->status[P_ATTACKER] == ATK_OK &&
			  sh->attack.writable > 0 && sh->attack.passes > 0,
		      "attacker: %s", what);
	ck_assert_msg(r->broker_answered && r->broker_alive &&
			  r->broker_exit == 0,
		      "broker: %s", what);
	munmap(sh, sizeof(*sh));
}

/*
 * Broadcast, block: two honest subscribers each receive all MESSAGES, in
 * order and intact, with nothing counted lost, while the attacker rewrites
 * everything it can write. Up to control layout 7 it can write every
 * subscriber's slot (one control segment holds them all): a zeroed or
 * rewritten slot looks free or evicted, and writers reclaim past it.
 */
START_TEST(broadcast_subscribers_get_everything_while_a_peer_scribbles)
{
	struct run r;
	char what[4096];

	run(&r, "broadcast");
	describe(&r, what, sizeof(what));
	ck_assert_msg(r.setup_error == NULL, "%s", what);
	for (int i = 0; i < READERS; i++) {
		ck_assert_msg(r.status[P_READER0 + i] == OUT_OK &&
				  sh->reader[i].outcome == OUT_OK &&
				  sh->reader[i].received == MESSAGES,
			      "reader %d: %s", i, what);
	}
	assert_others(&r, what);
}
END_TEST

/*
 * Queue, block: two honest consumers and the attacker's subscription on
 * one queue. The attacker also rewrites the queue's shared cursor and
 * lock: it may make the queue skip messages (a consumer may take messages),
 * but no message may reach the honest consumers twice or damaged, and the
 * publisher must get all its messages in. Before the consumers' claims
 * (control layout 8 at 48471ea) this failed: the shared queue state the
 * attacker rewrote gave every receive -EBADMSG and stalled the publisher.
 */
START_TEST(queue_consumers_get_nothing_twice_while_a_peer_scribbles)
{
	struct run r;
	char what[4096];

	run(&r, "queue");
	describe(&r, what, sizeof(what));
	ck_assert_msg(r.setup_error == NULL, "%s", what);
	for (int i = 0; i < READERS; i++) {
		ck_assert_msg(r.status[P_READER0 + i] == OUT_OK &&
				  sh->reader[i].outcome == OUT_OK &&
				  sh->reader[i].dups == 0 &&
				  sh->reader[i].corrupt == 0,
			      "consumer %d: %s", i, what);
	}
	assert_others(&r, what);
}
END_TEST

Suite *tamper_suite(void)
{
	Suite *s = suite_create("tamper");
	TCase *tc = tcase_create("scribbling_peer");

	/* Children end by DEADLINE_MS at the latest; this is only the
	 * guard against a hang of the test process itself. */
	tcase_set_timeout(tc, 2 * DEADLINE_MS / 1000 + 60);
	tcase_add_test(
	    tc, broadcast_subscribers_get_everything_while_a_peer_scribbles);
	tcase_add_test(
	    tc, queue_consumers_get_nothing_twice_while_a_peer_scribbles);
	suite_add_tcase(s, tc);
	return s;
}
