/*
 * harness.c - runs one repetition of one measurement: creates the transport
 * in the parent, forks the two sides (each pinned to its CPU), lets them
 * meet at a start barrier, and collects what they measured from a shared
 * result area once both have exited. A watchdog kills children that hang,
 * so a broken transport costs one failed row, not the whole run.
 */
#include "bench/bench.h"
#include "bench/spin.h"
#include "ring/ring_layout.h"
#include "shmbus/map.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The sequence number that tells the other side the run is over. */
#define SEQ_STOP UINT64_MAX

/* How long past its duration cap a repetition may run before it is killed. */
#define WATCHDOG_SLACK_MS 20000

/*
 * What the children hand back, in a MAP_SHARED|MAP_ANONYMOUS mapping made
 * before fork(). Only `ready` is used while both sides run; the result
 * fields are written by one child each and read by the parent after
 * waitpid() has reaped that child, which orders the accesses, so they are
 * plain.
 */
struct run_area {
	_Atomic uint32_t ready; /* start barrier: sides that opened their end */
	int32_t err[2];		/* each side's result, 0 or a negative errno */
	uint64_t nsamples;	/* latency: round trips measured (sender) */
	uint64_t rx_msgs;	/* throughput: messages timed (receiver) */
	uint64_t rx_ns;		/* throughput: time they took (receiver) */
	uint64_t samples[];	/* latency: round-trip times in ns (sender) */
};

struct run_ctx;
typedef int (*side_fn)(struct run_ctx *c, void *end);

/* One repetition: what both children need to know, copied by fork(). */
struct run_ctx {
	const struct bench_opts *o;
	const struct bench_tr_ops *t; /* NULL for the memcpy reference */
	size_t size;
	uint64_t warmup; /* rounds or messages before timing starts */
	uint64_t count;	 /* rounds or messages timed, at most */
	int nsides;	 /* processes meeting at the start barrier */
	bool duplex;
	side_fn fn[2];
	void *shared; /* the transport's, from create() */
	struct run_area *area;
	size_t area_bytes;
};

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double bench_clock_cost(void)
{
	enum { N = 10001 };
	static uint64_t d[N];
	uint64_t prev = bench_now_ns();

	for (int i = 0; i < N; i++) {
		uint64_t now = bench_now_ns();

		d[i] = now - prev;
		prev = now;
	}
	bench_stats_sort(d, N);
	return (double)d[N / 2];
}

uint64_t bench_latency_count(const struct bench_opts *o, size_t size)
{
	(void)size;
	return o->count != 0 ? o->count : 10000;
}

uint64_t bench_throughput_count(const struct bench_opts *o, size_t size)
{
	/* About 256 MiB per repetition, within 1,000 .. 1,000,000 messages. */
	uint64_t n = (256u << 20) / size;

	if (o->count != 0) {
		return o->count;
	}
	if (n < 1000) {
		n = 1000;
	}
	if (n > 1000000) {
		n = 1000000;
	}
	return n;
}

/* A tenth of the count, at least 100, at most 10,000, is warm-up. */
static uint64_t warmup_for(uint64_t count)
{
	uint64_t w = count / 10;

	return w < 100 ? 100 : (w > 10000 ? 10000 : w);
}

/*
 * The latency warm-up goes once round a ring of --ring-bytes (records of
 * `size` bytes plus a 16-byte header, 16-byte aligned) as well, so that no
 * sample lands on a page the process touches for the first time. On a
 * virtual machine the first write to a page is dear even with its page
 * table entry present (the hypervisor fills its own tables on first
 * access), and the first lap put that in the p99 of a 64-byte ping-pong
 * (figures: bench/README.md, "Measured figures"). That is a start-up cost,
 * once per page and process; the figures are of the steady state.
 */
static uint64_t latency_warmup(const struct bench_opts *o, size_t size,
			       uint64_t count)
{
	size_t record =
	    (size + SB_RING_RECORD_HEADER + SB_RING_RECORD_ALIGN - 1) &
	    ~(size_t)(SB_RING_RECORD_ALIGN - 1);
	uint64_t lap = o->ring_bytes / record + 1;
	uint64_t w = warmup_for(count);

	return lap > w ? lap : w;
}

/*
 * A message buffer of len bytes (rounded up to whole cache lines, aligned
 * to one), filled with a pattern so that no page is left untouched.
 */
static unsigned char *msg_alloc(size_t len)
{
	size_t bytes = (len + 63) & ~(size_t)63;
	unsigned char *p = aligned_alloc(64, bytes);

	if (p != NULL) {
		for (size_t i = 0; i < bytes; i++) {
			p[i] = (unsigned char)(i * 7 + 1);
		}
	}
	return p;
}

static void put_seq(unsigned char *msg, uint64_t seq)
{
	memcpy(msg, &seq, sizeof(seq));
}

static uint64_t get_seq(const void *msg)
{
	uint64_t seq;

	memcpy(&seq, msg, sizeof(seq));
	return seq;
}

/*
 * Sends one message, through claim/commit when the transport has them: the
 * message is then written into the claimed space, as a producer building it
 * in place would.
 */
static int tx(const struct bench_tr_ops *t, void *end, const unsigned char *msg,
	      size_t len)
{
	void *buf;
	int rc;

	if (t->claim == NULL) {
		return t->send(end, msg, len);
	}
	rc = t->claim(end, len, &buf);
	if (rc < 0) {
		return rc;
	}
	memcpy(buf, msg, len);
	return t->commit(end);
}

/*
 * Receives one message of exactly len bytes, checks every byte after its
 * sequence number against `want` (the sender's pattern: a consumer that
 * never looked at the bytes would let an in-place transport skip moving
 * them between cores), and returns the sequence number in *seq. The
 * message is copied into buf, or read in place through peek/release.
 * -EPROTO for a wrong length or a wrong byte.
 */
static int rx(const struct bench_tr_ops *t, void *end, unsigned char *buf,
	      const unsigned char *want, size_t len, uint64_t *seq)
{
	const void *data = buf;
	int intact = 0;
	ssize_t n;

	if (t->peek != NULL) {
		n = t->peek(end, &data);
	} else {
		n = t->recv(end, buf, len);
	}
	if (n < 0) {
		return (int)n;
	}
	if ((size_t)n == len) {
		*seq = get_seq(data);
		intact = memcmp((const unsigned char *)data + sizeof(*seq),
				want + sizeof(*seq), len - sizeof(*seq)) == 0;
	}
	if (t->peek != NULL) {
		int rc = t->release(end);

		if (rc < 0) {
			return rc;
		}
	}
	if ((size_t)n != len || !intact) {
		fprintf(
		    stderr, "shmbus-bench: %s: got %zd bytes%s, expected %zu\n",
		    t->name, n, (size_t)n == len ? " not as sent" : "", len);
		return -EPROTO;
	}
	return 0;
}

static int bad_seq(const struct run_ctx *c, uint64_t got, uint64_t want)
{
	fprintf(stderr,
		"shmbus-bench: %s %zu B: message %llu arrived as %llu "
		"(lost, repeated or torn)\n",
		c->t != NULL ? c->t->name : "memcpy", c->size,
		(unsigned long long)want, (unsigned long long)got);
	return -EPROTO;
}

/* ---- latency: ping-pong ---- */

/*
 * The ping side: sends message i, waits for its echo, and stores the time
 * of each round trip after the warm-up. One clock read per round trip: the
 * time between two consecutive reads is one full round trip.
 */
static int lat_ping(struct run_ctx *c, void *end)
{
	const struct bench_tr_ops *t = c->t;
	size_t len = c->size;
	unsigned char *msg = msg_alloc(len);
	unsigned char *reply = msg_alloc(len);
	uint64_t total = c->warmup + c->count;
	uint64_t deadline = UINT64_MAX;
	uint64_t n = 0;
	uint64_t prev;
	uint64_t seq = 0;
	int rc = 0;

	if (msg == NULL || reply == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	/*
	 * Fault the sample pages in now: a first touch during the timed loop
	 * would put a page fault in every 512th sample, right in p99.9.
	 */
	memset(c->area->samples, 0, c->count * sizeof(c->area->samples[0]));
	prev = bench_now_ns();
	for (uint64_t i = 0; i < total; i++) {
		uint64_t now;

		put_seq(msg, i);
		rc = tx(t, end, msg, len);
		if (rc == 0) {
			rc = rx(t, end, reply, msg, len, &seq);
		}
		if (rc < 0) {
			goto out;
		}
		if (seq != i) {
			rc = bad_seq(c, seq, i);
			goto out;
		}
		now = bench_now_ns();
		if (i == c->warmup) {
			deadline = prev + c->o->duration_ms * 1000000u;
		}
		if (i >= c->warmup) {
			c->area->samples[n++] = now - prev;
			if (now >= deadline) {
				break;
			}
		}
		prev = now;
	}
	c->area->nsamples = n;
	/* Tell the pong side to stop, and wait until it has. */
	put_seq(msg, SEQ_STOP);
	rc = tx(t, end, msg, len);
	if (rc == 0) {
		rc = rx(t, end, reply, msg, len, &seq);
	}
out:
	free(msg);
	free(reply);
	return rc;
}

/* The pong side: echoes every message (same length) until the stop one. */
static int lat_pong(struct run_ctx *c, void *end)
{
	const struct bench_tr_ops *t = c->t;
	size_t len = c->size;
	unsigned char *msg = msg_alloc(len);
	unsigned char *in = msg_alloc(len);
	uint64_t seq = 0;
	int rc = 0;

	if (msg == NULL || in == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	do {
		rc = rx(t, end, in, msg, len, &seq);
		if (rc == 0) {
			put_seq(msg, seq);
			rc = tx(t, end, msg, len);
		}
	} while (rc == 0 && seq != SEQ_STOP);
out:
	free(msg);
	free(in);
	return rc;
}

/* ---- throughput: one-way stream ---- */

/* The producer: warm-up, then up to count messages or the duration cap. */
static int tput_send(struct run_ctx *c, void *end)
{
	const struct bench_tr_ops *t = c->t;
	size_t len = c->size;
	unsigned char *msg = msg_alloc(len);
	uint64_t total = c->warmup + c->count;
	uint64_t deadline = UINT64_MAX;
	int rc = 0;

	if (msg == NULL) {
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < total; i++) {
		if (i == c->warmup) {
			deadline =
			    bench_now_ns() + c->o->duration_ms * 1000000u;
		} else if (i % 256 == 0 && i > c->warmup &&
			   bench_now_ns() >= deadline) {
			break;
		}
		put_seq(msg, i);
		rc = tx(t, end, msg, len);
		if (rc < 0) {
			goto out;
		}
	}
	put_seq(msg, SEQ_STOP);
	rc = tx(t, end, msg, len);
	if (rc == 0 && t->flush != NULL) {
		rc = t->flush(end);
	}
out:
	free(msg);
	return rc;
}

/*
 * The consumer: checks that message i carries sequence number i, and times
 * from the first message after the warm-up to the stop message. That span
 * holds exactly as many message intervals as messages were timed.
 */
static int tput_recv(struct run_ctx *c, void *end)
{
	const struct bench_tr_ops *t = c->t;
	size_t len = c->size;
	unsigned char *buf = msg_alloc(len);
	unsigned char *want = msg_alloc(len);
	uint64_t expect = 0;
	uint64_t first = 0;
	uint64_t seq = 0;
	int rc = -ENOMEM;

	if (buf == NULL || want == NULL) {
		goto out;
	}
	for (;;) {
		rc = rx(t, end, buf, want, len, &seq);
		if (rc < 0) {
			goto out;
		}
		if (seq == SEQ_STOP) {
			break;
		}
		if (seq != expect) {
			rc = bad_seq(c, seq, expect);
			goto out;
		}
		if (expect == c->warmup) {
			first = bench_now_ns();
		}
		expect++;
	}
	if (expect <= c->warmup) {
		fprintf(stderr, "shmbus-bench: %s: no message after warm-up\n",
			t->name);
		rc = -EPROTO;
		goto out;
	}
	c->area->rx_ns = bench_now_ns() - first;
	c->area->rx_msgs = expect - c->warmup;
out:
	free(buf);
	free(want);
	return rc;
}

/*
 * Keeps the compiler from treating stores through p as dead: the copies
 * into the memcpy reference's ring are never read in full, and a compiler
 * that dropped them would report a bandwidth no hardware has.
 */
static inline void keep(const void *p)
{
	__asm__ __volatile__("" : : "r"(p) : "memory");
}

/*
 * The memcpy reference: the same messages copied, in one process, into
 * consecutive cache-line-aligned slots of a ring_bytes buffer, starting
 * over at the front when the next one does not fit (as a ring whose
 * records never wrap does). The sequence number is read back from each.
 */
static int memcpy_side(struct run_ctx *c, void *end)
{
	size_t len = c->size;
	size_t ring_bytes = c->o->ring_bytes;
	size_t step = (len + 63) & ~(size_t)63;
	unsigned char *msg = msg_alloc(len);
	unsigned char *ring = aligned_alloc(64, ring_bytes);
	uint64_t total = c->warmup + c->count;
	uint64_t deadline = UINT64_MAX;
	uint64_t t0 = 0;
	uint64_t i;
	size_t off = 0;
	int rc = 0;

	(void)end;
	if (msg == NULL || ring == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	memset(ring, 0, ring_bytes); /* fault every page in, untimed */
	for (i = 0; i < total; i++) {
		if (i == c->warmup) {
			t0 = bench_now_ns();
			deadline = t0 + c->o->duration_ms * 1000000u;
		} else if (i % 256 == 0 && i > c->warmup &&
			   bench_now_ns() >= deadline) {
			break;
		}
		if (off + len > ring_bytes) {
			off = 0;
		}
		put_seq(msg, i);
		memcpy(ring + off, msg, len);
		keep(ring + off);
		if (get_seq(ring + off) != i) {
			rc = bad_seq(c, get_seq(ring + off), i);
			goto out;
		}
		off += step;
	}
	c->area->rx_ns = bench_now_ns() - t0;
	c->area->rx_msgs = i - c->warmup;
out:
	free(msg);
	free(ring);
	return rc;
}

/* ---- processes ---- */

int bench_pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0) {
		return 0;
	}
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0) {
		return -errno;
	}
	return 0;
}

static const char *side_name(int side)
{
	return side == BENCH_TR_SENDER ? "sender" : "receiver";
}

/*
 * Waits for the children in pids[0..n), at most timeout_ms in all. A child
 * that fails gets its siblings killed at once (they would wait for it
 * forever); at the deadline, every child left is killed. SIGCHLD is blocked
 * by the caller, so sigtimedwait() sleeps until a child exits. Returns 0 if
 * all exited with status 0, -ETIMEDOUT, or -ECHILD for any other failure.
 */
static int reap(pid_t *pids, int n, uint64_t timeout_ms)
{
	uint64_t deadline = bench_now_ns() + timeout_ms * 1000000u;
	sigset_t chld;
	int left = n;
	int rc = 0;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	while (left > 0) {
		uint64_t now;
		struct timespec ts;

		for (int i = 0; i < n; i++) {
			int st;

			if (pids[i] <= 0 ||
			    waitpid(pids[i], &st, WNOHANG) <= 0) {
				continue;
			}
			pids[i] = -1;
			left--;
			if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
				continue;
			}
			if (WIFSIGNALED(st) && rc == 0) {
				fprintf(stderr,
					"shmbus-bench: child killed by signal "
					"%d\n",
					WTERMSIG(st));
			}
			if (rc == 0) {
				rc = -ECHILD;
			}
			for (int j = 0; j < n; j++) {
				if (pids[j] > 0) {
					kill(pids[j], SIGKILL);
				}
			}
		}
		if (left == 0) {
			break;
		}
		now = bench_now_ns();
		if (now >= deadline) {
			fprintf(stderr, "shmbus-bench: watchdog: repetition "
					"hung, killing it\n");
			for (int i = 0; i < n; i++) {
				if (pids[i] > 0) {
					kill(pids[i], SIGKILL);
					waitpid(pids[i], NULL, 0);
					pids[i] = -1;
				}
			}
			return -ETIMEDOUT;
		}
		ts.tv_sec = (time_t)((deadline - now) / 1000000000u);
		ts.tv_nsec = (long)((deadline - now) % 1000000000u);
		sigtimedwait(&chld, NULL, &ts);
	}
	return rc;
}

int bench_spawn(int n, bench_child_fn fn, void *arg, uint64_t timeout_ms)
{
	sigset_t chld, oldmask, pending;
	pid_t pids[BENCH_MAX_PROCS];
	int rc = 0;

	if (n < 1 || n > BENCH_MAX_PROCS) {
		return -EINVAL;
	}
	for (int i = 0; i < n; i++) {
		pids[i] = -1;
	}
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &oldmask);
	/* The last index first: callers put the receiving side there, so
	 * that it is waiting when the sending side starts. */
	for (int i = n - 1; i >= 0; i--) {
		pid_t pid;

		fflush(NULL); /* nothing buffered may be written twice */
		pid = fork();
		if (pid == 0) {
			/* Die with the parent (Ctrl-C). */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			sigprocmask(SIG_SETMASK, &oldmask, NULL);
			signal(SIGPIPE, SIG_IGN);
			rc = fn(i, arg);
			/* _exit: the parent's stdio buffers and atexit
			 * handlers are not ours. */
			_exit(rc == 0 ? 0 : 1);
		}
		if (pid < 0) {
			rc = -errno;
			for (int j = 0; j < n; j++) {
				if (pids[j] > 0) {
					kill(pids[j], SIGKILL);
					waitpid(pids[j], NULL, 0);
				}
			}
			goto out;
		}
		pids[i] = pid;
	}
	rc = reap(pids, n, timeout_ms);
out:
	/* Drop the SIGCHLDs this run left pending before unblocking. */
	sigpending(&pending);
	while (sigismember(&pending, SIGCHLD)) {
		struct timespec zero = {0, 0};

		sigtimedwait(&chld, NULL, &zero);
		sigpending(&pending);
	}
	sigprocmask(SIG_SETMASK, &oldmask, NULL);
	return rc;
}

void bench_barrier(_Atomic uint32_t *ready, uint32_t n)
{
	uint32_t spins = 0;

	/*
	 * Release: pairs with the acquire loads below, in the other
	 * processes, so that each starts only once all have finished what
	 * they did before arriving (opened their end: a subscriber must
	 * exist before the first message, for instance).
	 */
	atomic_fetch_add_explicit(ready, 1, memory_order_release);
	while (atomic_load_explicit(ready, memory_order_acquire) < n) {
		bench_spin_step(&spins);
	}
}

/* The body of one side of a two-sided run (an bench_child_fn). */
static int side_main(int side, void *arg)
{
	struct run_ctx *c = arg;
	const char *name = c->t != NULL ? c->t->name : "memcpy";
	void *end = NULL;
	int rc;

	rc = bench_pin(c->o->pin ? c->o->cpu[side] : -1);
	if (rc < 0) {
		fprintf(stderr, "shmbus-bench: sched_setaffinity(CPU %d): %s\n",
			c->o->cpu[side], shmbus_strerror(rc));
		c->area->err[side] = rc;
		return rc;
	}
	if (c->t != NULL) {
		rc = c->t->open_end(c->shared, (enum bench_tr_side)side, &end);
		if (rc < 0) {
			fprintf(stderr, "shmbus-bench: %s %s: open_end: %s\n",
				name, side_name(side), shmbus_strerror(rc));
			c->area->err[side] = rc;
			return rc;
		}
	}
	bench_barrier(&c->area->ready, (uint32_t)c->nsides);
	rc = c->fn[side](c, end);
	if (rc < 0 && rc != -EPROTO) {
		fprintf(stderr, "shmbus-bench: %s %s, %zu B: %s\n", name,
			side_name(side), c->size, shmbus_strerror(rc));
	}
	if (c->t != NULL) {
		c->t->close_end(end);
	}
	c->area->err[side] = rc;
	return rc;
}

/*
 * Runs one repetition: the transport (if any) is created here, before the
 * forks, so that both children inherit it; it is destroyed once they are
 * gone. Returns 0, or the first side's error, or what reaping reports.
 */
static int run(struct run_ctx *c)
{
	struct bench_tr_config cfg = {
	    .max_message = c->size,
	    .ring_bytes = c->o->ring_bytes,
	    .duplex = c->duplex,
	};
	uint64_t timeout_ms = 2 * c->o->duration_ms + WATCHDOG_SLACK_MS;
	int rc;

	c->area = mmap(NULL, c->area_bytes, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c->area == MAP_FAILED) {
		c->area = NULL;
		return -errno;
	}
	c->shared = NULL;
	if (c->t != NULL) {
		rc = c->t->create(&cfg, &c->shared);
		if (rc < 0) {
			fprintf(stderr, "shmbus-bench: %s: create: %s\n",
				c->t->name, shmbus_strerror(rc));
			munmap(c->area, c->area_bytes);
			c->area = NULL;
			return rc;
		}
	}
	rc = bench_spawn(c->nsides, side_main, c, timeout_ms);
	for (int side = 0; side < c->nsides; side++) {
		/* The side's own error says more than "a child failed". */
		if (c->area->err[side] < 0 && rc != -ETIMEDOUT) {
			rc = c->area->err[side];
			break;
		}
	}
	if (c->t != NULL) {
		c->t->destroy(c->shared);
	}
	return rc;
}

static void run_done(struct run_ctx *c)
{
	if (c->area != NULL) {
		munmap(c->area, c->area_bytes);
		c->area = NULL;
	}
}

int bench_latency_once(const struct bench_opts *o, const struct bench_tr_ops *t,
		       size_t size, double *vals, uint64_t *count,
		       struct bench_samples *keep)
{
	struct run_ctx c = {
	    .o = o,
	    .t = t,
	    .size = size,
	    .count = bench_latency_count(o, size),
	    .nsides = 2,
	    .duplex = true,
	    .fn = {lat_ping, lat_pong},
	};
	struct bench_lat_summary s;
	int rc;

	c.warmup = latency_warmup(o, size, c.count);
	c.area_bytes = sizeof(struct run_area) + c.count * sizeof(uint64_t);
	rc = run(&c);
	if (rc == 0 && c.area->nsamples == 0) {
		rc = -EPROTO;
	}
	for (uint64_t i = 0; rc == 0 && keep != NULL && i < c.area->nsamples;
	     i++) {
		if (bench_stats_add(keep, c.area->samples[i]) < 0) {
			break; /* the plot loses samples, not the figures */
		}
	}
	if (rc == 0) {
		/* RTT/2: the one-way time of a message that went both ways. */
		bench_stats_summarise(c.area->samples, c.area->nsamples, 0.5,
				      &s);
		vals[BENCH_LAT_P50] = s.p50;
		vals[BENCH_LAT_P99] = s.p99;
		vals[BENCH_LAT_P999] = s.p999;
		vals[BENCH_LAT_MAX] = s.max;
		*count = c.area->nsamples;
	}
	run_done(&c);
	return rc;
}

static void rate_of(const struct run_area *a, size_t size, double *vals)
{
	double secs = (double)a->rx_ns / 1e9;
	double msgs = secs > 0 ? (double)a->rx_msgs / secs : 0.0;

	vals[BENCH_TPUT_MSGS] = msgs;
	vals[BENCH_TPUT_GBS] = msgs * (double)size / 1e9;
}

int bench_throughput_once(const struct bench_opts *o,
			  const struct bench_tr_ops *t, size_t size,
			  double *vals, uint64_t *count)
{
	struct run_ctx c = {
	    .o = o,
	    .t = t,
	    .size = size,
	    .count = bench_throughput_count(o, size),
	    .nsides = 2,
	    .duplex = false,
	    .fn = {tput_send, tput_recv},
	    .area_bytes = sizeof(struct run_area),
	};
	int rc;

	c.warmup = warmup_for(c.count);
	rc = run(&c);
	if (rc == 0) {
		rate_of(c.area, size, vals);
		*count = c.area->rx_msgs;
	}
	run_done(&c);
	return rc;
}

int bench_memcpy_once(const struct bench_opts *o, size_t size, double *vals,
		      uint64_t *count)
{
	struct run_ctx c = {
	    .o = o,
	    .t = NULL,
	    .size = size,
	    .count = bench_throughput_count(o, size),
	    .nsides = 1,
	    .fn = {memcpy_side, NULL},
	    .area_bytes = sizeof(struct run_area),
	};
	int rc;

	c.warmup = warmup_for(c.count);
	rc = run(&c);
	if (rc == 0) {
		rate_of(c.area, size, vals);
		*count = c.area->rx_msgs;
	}
	run_done(&c);
	return rc;
}
