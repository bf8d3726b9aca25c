/*
 * reqrep_bench.c - build/<variant>/reqrep-bench: request/reply round trips
 * through the public API (shmbus_call on a service of a shmbusd of its
 * own, servers answering with shmbus_serve_receive + shmbus_reply), next
 * to the same request/reply over AF_UNIX stream sockets, in one run on one
 * machine.
 *
 * For each transport and each shape (1 client x 1 server, 4 x 4), in each
 * repetition: S server processes echo every request; C client processes
 * each make a warm-up of calls, wait for the others, then make N timed
 * calls, one at a time, taking CLOCK_MONOTONIC around each. A request
 * carries its client, its sequence number and bytes that follow from them;
 * the client checks that the reply is the request, byte for byte, so a
 * lost, torn, repeated or misdelivered reply fails the run. Figures:
 * round trips per second over all clients (calls / time from the first
 * client's start to the last one's end) and the p50 and p99 of the round
 * trips of all clients, each the median over the repetitions.
 *
 * The unix transport: the servers accept() on one listening socket, each
 * serving the connection it got until it closes; a request is a 4-byte
 * length and the bytes, and so is the reply. Both transports echo the
 * same bytes in the same processes and shapes.
 *
 * usage: reqrep-bench [--quick] [--reps N] [--count N] [--size BYTES]
 *   --quick  500 calls per client, one repetition: a check that every
 *            round trip arrives intact (bench/smoke.sh), not a measure
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/broker.h"
#include "bench/stats.h"
#include "shmbus/shmbus.h"

#define SERVICE	   "bench/reqrep"
#define MAX_PROCS  4
#define HDR	   8 /* client (u32), sequence number (u32) */
#define MAX_SIZE   4096
#define WARMUP	   500
#define CALL_MS	   10000 /* bound on one call: never reached when healthy */
#define DEFAULT_N  20000
#define QUICK_N	   500
#define DEFAULT_RE 5

enum transport { T_SHMBUS, T_UNIX, T_COUNT };

static const char *const transport_names[T_COUNT] = {"shmbus", "unix"};

struct shape {
	int clients, servers;
};

static const struct shape shapes[] = {{1, 1}, {4, 4}};

struct opts {
	long n; /* timed calls per client */
	int reps;
	size_t size; /* request bytes, HDR included */
	int quick;
};

/* What the processes of one trial share (MAP_SHARED, before fork). */
struct board {
	_Atomic int serving; /* servers ready */
	_Atomic int ready;   /* clients past their warm-up */
	_Atomic int go;
	_Atomic int failed; /* a client saw a wrong or missing reply */
	uint64_t start_ns[MAX_PROCS], end_ns[MAX_PROCS];
	uint64_t samples[]; /* clients * n round trips, ns */
};

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Request `seq` of client `c`: its header, then bytes that follow from
 * both, so that any mix-up shows. */
static void fill(unsigned char *m, size_t size, uint32_t c, uint32_t seq)
{
	memcpy(m, &c, 4);
	memcpy(m + 4, &seq, 4);
	for (size_t i = HDR; i < size; i++) {
		m[i] = (unsigned char)(c * 31 + seq + i);
	}
}

/* ---- shmbus ------------------------------------------------------------ */

static void serve_shmbus(const char *socket, struct board *bd)
{
	static unsigned char buf[MAX_SIZE];
	struct shmbus_reqref ref;
	shmbus_server *srv;
	shmbus *bus;

	if (shmbus_connect(socket, "reqrep-bench-srv", &bus) < 0 ||
	    shmbus_serve_open(bus, SERVICE, &srv) < 0) {
		fprintf(stderr, "reqrep-bench: cannot serve %s\n", SERVICE);
		_exit(1);
	}
	atomic_fetch_add(&bd->serving, 1);
	for (;;) {
		ssize_t n =
		    shmbus_serve_receive(srv, buf, sizeof(buf), &ref, -1);

		if (n >= 0) {
			shmbus_reply(srv, &ref, buf, (size_t)n);
		} else if (n != -ETIMEDOUT && n != -EAGAIN) {
			_exit(1);
		}
	}
}

/* The requester of a shmbus client, opened in the client's process. */
static shmbus_requester *shmbus_open_client(const char *socket)
{
	shmbus_requester *rq;
	shmbus *bus;

	if (shmbus_connect(socket, "reqrep-bench-cli", &bus) < 0 ||
	    shmbus_requester_open(bus, SERVICE, &rq) < 0) {
		return NULL;
	}
	return rq;
}

/* ---- unix -------------------------------------------------------------- */

static int full_io(int fd, void *buf, size_t len, int writing)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = writing ? write(fd, (char *)buf + done, len - done)
				    : read(fd, (char *)buf + done, len - done);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

/* Serves one connection until it closes: a length, then that many bytes,
 * echoed back the same way. */
static void unix_serve_conn(int fd)
{
	static unsigned char buf[MAX_SIZE];
	uint32_t len;

	while (full_io(fd, &len, 4, 0) == 0 && len <= sizeof(buf) &&
	       full_io(fd, buf, len, 0) == 0) {
		if (full_io(fd, &len, 4, 1) < 0 ||
		    full_io(fd, buf, len, 1) < 0) {
			break;
		}
	}
	close(fd);
}

static void serve_unix(int lfd, struct board *bd)
{
	atomic_fetch_add(&bd->serving, 1);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);

		if (fd >= 0) {
			unix_serve_conn(fd);
		} else if (errno != EINTR) {
			_exit(1);
		}
	}
}

/* The address of `path`; -1 when it does not fit. */
static int unix_addr(const char *path, struct sockaddr_un *a)
{
	size_t len = strlen(path);

	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (len >= sizeof(a->sun_path)) {
		return -1;
	}
	memcpy(a->sun_path, path, len + 1);
	return 0;
}

static int unix_connect(const char *path)
{
	struct sockaddr_un a;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || unix_addr(path, &a) < 0 ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		return -1;
	}
	return fd;
}

static int unix_listen(const char *path)
{
	struct sockaddr_un a;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	unlink(path);
	if (fd < 0 || unix_addr(path, &a) < 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(fd, 64) < 0) {
		return -1;
	}
	return fd;
}

/* ---- a client ---------------------------------------------------------- */

/* A client's way to make one call: the request and where its reply goes.
 * Returns the reply's length or -1. */
struct caller {
	enum transport t;
	shmbus_requester *rq;
	int fd;
};

static ssize_t call(struct caller *c, const unsigned char *req, size_t len,
		    unsigned char *rep)
{
	uint32_t n = (uint32_t)len;

	if (c->t == T_SHMBUS) {
		return shmbus_call(c->rq, req, len, rep, MAX_SIZE, CALL_MS);
	}
	if (full_io(c->fd, &n, 4, 1) < 0 ||
	    full_io(c->fd, (void *)req, len, 1) < 0 ||
	    full_io(c->fd, &n, 4, 0) < 0 || n > MAX_SIZE ||
	    full_io(c->fd, rep, n, 0) < 0) {
		return -1;
	}
	return (ssize_t)n;
}

/* One call of request `seq`, checked: 0 when its reply is the request. */
static int checked_call(struct caller *c, const struct opts *o, uint32_t id,
			uint32_t seq)
{
	unsigned char req[MAX_SIZE], rep[MAX_SIZE];
	ssize_t n;

	fill(req, o->size, id, seq);
	n = call(c, req, o->size, rep);
	return n == (ssize_t)o->size && memcmp(req, rep, o->size) == 0 ? 0 : -1;
}

static void client(struct caller *c, const struct opts *o, uint32_t id,
		   int clients, struct board *bd)
{
	uint64_t *samples = bd->samples + (size_t)id * (size_t)o->n;

	for (uint32_t i = 0; i < WARMUP; i++) {
		if (checked_call(c, o, id, i) < 0) {
			atomic_store(&bd->failed, 1);
			_exit(1);
		}
	}
	atomic_fetch_add(&bd->ready, 1);
	while (atomic_load(&bd->ready) < clients || !atomic_load(&bd->go)) {
		sched_yield();
	}
	bd->start_ns[id] = now_ns();
	for (long i = 0; i < o->n; i++) {
		uint64_t t0 = now_ns();

		if (checked_call(c, o, id, (uint32_t)(WARMUP + i)) < 0) {
			atomic_store(&bd->failed, 1);
			_exit(1);
		}
		samples[i] = now_ns() - t0;
	}
	bd->end_ns[id] = now_ns();
	_exit(0);
}

/* ---- one trial --------------------------------------------------------- */

struct result {
	double rate, p50, p99; /* round trips/s, ns, ns */
};

static pid_t spawn(void)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent) {
			_exit(1);
		}
	}
	return pid;
}

static void start_servers(enum transport t, int n, const char *socket, int lfd,
			  struct board *bd, pid_t *pids)
{
	for (int i = 0; i < n; i++) {
		pids[i] = spawn();
		if (pids[i] == 0) {
			if (t == T_SHMBUS) {
				serve_shmbus(socket, bd);
			}
			serve_unix(lfd, bd);
		}
	}
	while (atomic_load(&bd->serving) < n) {
		usleep(1000);
	}
}

static void start_clients(enum transport t, int n, const char *socket,
			  const char *upath, const struct opts *o,
			  struct board *bd, pid_t *pids)
{
	for (int i = 0; i < n; i++) {
		pids[i] = spawn();
		if (pids[i] == 0) {
			struct caller c = {.t = t, .fd = -1};

			if (t == T_SHMBUS) {
				c.rq = shmbus_open_client(socket);
			} else {
				c.fd = unix_connect(upath);
			}
			if (c.rq == NULL && c.fd < 0) {
				atomic_store(&bd->failed, 1);
				_exit(1);
			}
			client(&c, o, (uint32_t)i, n, bd);
		}
	}
}

/* Waits for the clients; 0 when every one exited 0. */
static int wait_clients(const pid_t *pids, int n)
{
	int bad = 0;

	for (int i = 0; i < n; i++) {
		int st;

		while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR) {
		}
		bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}
	return bad ? -1 : 0;
}

static void stop(const pid_t *pids, int n)
{
	for (int i = 0; i < n; i++) {
		kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
	}
}

static void summarise(struct board *bd, const struct shape *sh,
		      const struct opts *o, struct result *r)
{
	size_t total = (size_t)sh->clients * (size_t)o->n;
	uint64_t first = UINT64_MAX, last = 0;

	for (int i = 0; i < sh->clients; i++) {
		first = bd->start_ns[i] < first ? bd->start_ns[i] : first;
		last = bd->end_ns[i] > last ? bd->end_ns[i] : last;
	}
	r->rate = (double)total / ((double)(last - first) / 1e9);
	bench_stats_sort(bd->samples, total);
	r->p50 = (double)bench_stats_percentile(bd->samples, total, 0.50);
	r->p99 = (double)bench_stats_percentile(bd->samples, total, 0.99);
}

/* One repetition of one transport and shape. Returns 0, or -1 when a
 * round trip failed (reported). */
static int trial(enum transport t, const struct shape *sh, const char *socket,
		 const char *upath, const struct opts *o, struct result *r)
{
	size_t bytes = sizeof(struct board) +
		       (size_t)sh->clients * (size_t)o->n * sizeof(uint64_t);
	struct board *bd = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t servers[MAX_PROCS], clients[MAX_PROCS];
	int lfd = -1, status;

	if (bd == MAP_FAILED) {
		return -1;
	}
	if (t == T_UNIX && (lfd = unix_listen(upath)) < 0) {
		fprintf(stderr, "reqrep-bench: cannot listen on %s\n", upath);
		munmap(bd, bytes);
		return -1;
	}
	start_servers(t, sh->servers, socket, lfd, bd, servers);
	start_clients(t, sh->clients, socket, upath, o, bd, clients);
	atomic_store(&bd->go, 1);
	status = wait_clients(clients, sh->clients);
	stop(servers, sh->servers);
	if (lfd >= 0) {
		close(lfd);
	}
	if (status < 0 || atomic_load(&bd->failed)) {
		fprintf(stderr,
			"reqrep-bench: %s %dx%d: a round trip failed (an "
			"error, or a reply that was not the request)\n",
			transport_names[t], sh->clients, sh->servers);
		munmap(bd, bytes);
		return -1;
	}
	summarise(bd, sh, o, r);
	munmap(bd, bytes);
	return 0;
}

/* ---- the run ----------------------------------------------------------- */

/* "median [min..max]" of one figure over the repetitions, scaled, with
 * `decimals` digits after the point. */
static const char *spread(double *v, int n, double scale, int decimals,
			  char *buf, size_t len)
{
	struct bench_agg a;
	char lo[32], mid[32], hi[32];

	bench_stats_aggregate(v, n, &a);
	snprintf(mid, sizeof(mid), "%.*f", decimals, a.median * scale);
	if (n == 1) {
		snprintf(buf, len, "%s", mid);
		return buf;
	}
	snprintf(lo, sizeof(lo), "%.*f", decimals, a.min * scale);
	snprintf(hi, sizeof(hi), "%.*f", decimals, a.max * scale);
	snprintf(buf, len, "%s [%s..%s]", mid, lo, hi);
	return buf;
}

/* Every repetition of one transport and shape; prints its table row and
 * gives the median rate. */
static int measure(enum transport t, const struct shape *sh, const char *socket,
		   const char *upath, const struct opts *o, double *rate_out)
{
	double rate[64], p50[64], p99[64];
	char r1[100], r2[100], r3[100];
	struct bench_agg a;
	struct result r;

	for (int i = 0; i < o->reps; i++) {
		if (trial(t, sh, socket, upath, o, &r) < 0) {
			return -1;
		}
		rate[i] = r.rate;
		p50[i] = r.p50;
		p99[i] = r.p99;
	}
	printf("| %d x %d | %s | %s | %s | %s | %ld |\n", sh->clients,
	       sh->servers, transport_names[t],
	       spread(rate, o->reps, 1, 0, r1, sizeof(r1)),
	       spread(p50, o->reps, 1e-3, 1, r2, sizeof(r2)),
	       spread(p99, o->reps, 1e-3, 1, r3, sizeof(r3)),
	       (long)sh->clients * o->n * o->reps);
	bench_stats_aggregate(rate, o->reps, &a);
	*rate_out = a.median;
	return 0;
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option options[] = {
	    {"quick", no_argument, NULL, 'q'},
	    {"reps", required_argument, NULL, 'r'},
	    {"count", required_argument, NULL, 'n'},
	    {"size", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case 'q':
			o->quick = 1;
			o->n = QUICK_N;
			o->reps = 1;
			break;
		case 'r':
			o->reps = atoi(optarg);
			break;
		case 'n':
			o->n = atol(optarg);
			break;
		case 's':
			o->size = (size_t)atol(optarg);
			break;
		default:
			printf("usage: reqrep-bench [--quick] [--reps N (1-64, "
			       "default %d)] [--count N (calls per client, "
			       "default %d)] [--size BYTES (%d-%d, default "
			       "64)]\n",
			       DEFAULT_RE, DEFAULT_N, HDR, MAX_SIZE);
			return c == 'h' ? 0 : 2;
		}
	}
	if (o->reps < 1 || o->reps > 64 || o->n < 1 || o->size < HDR ||
	    o->size > MAX_SIZE) {
		fprintf(stderr,
			"reqrep-bench: --reps 1-64, --count >= 1, "
			"--size %d-%d\n",
			HDR, MAX_SIZE);
		return 2;
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct opts o = {.n = DEFAULT_N, .reps = DEFAULT_RE, .size = 64};
	struct bench_broker b;
	char upath[PATH_MAX + 16];
	int status = parse(argc, argv, &o);

	if (status >= 0) {
		return status;
	}
	if (bench_broker_start(&b, NULL) < 0) {
		return 1;
	}
	snprintf(upath, sizeof(upath), "%s/unix.sock", b.dir);
	printf("%s: %ld calls of %zu B per client, medians of %d "
	       "repetition(s)\n\n",
	       o.quick ? "quick check" : "request/reply round trips", o.n,
	       o.size, o.reps);
	printf("| clients x servers | transport | round trips/s | p50 µs | "
	       "p99 µs | intact |\n|---|---|---|---|---|---|\n");
	status = 0;
	for (size_t s = 0; status == 0 && s < sizeof(shapes) / sizeof(*shapes);
	     s++) {
		double rate[T_COUNT];

		for (int t = 0; status == 0 && t < T_COUNT; t++) {
			status = measure((enum transport)t, &shapes[s],
					 b.socket, upath, &o, &rate[t]);
		}
		if (status == 0) {
			printf("| %d x %d | shmbus / unix | %.2fx | | | |\n",
			       shapes[s].clients, shapes[s].servers,
			       rate[T_SHMBUS] / rate[T_UNIX]);
		}
	}
	fflush(stdout);
	unlink(upath);
	bench_broker_stop(&b);
	return status == 0 ? 0 : 1;
}
