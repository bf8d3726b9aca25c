/*
 * bridge_bench.c - build/<variant>/bridge-bench: what the way through
 * shmbus-bridge costs, next to NATS alone, in one run on one machine.
 *
 * It starts its own nats-server on a free loopback port, two shmbusd
 * (brokers A and B, two sockets in one temporary directory) and two
 * shmbus-bridge: bridge A exports topic "bt" of broker A (to subject
 * shmbus.A.bt), bridge B imports shmbus.A.bt into topic "bt" of broker B.
 * Then, for each size, in each repetition:
 *
 *   bridge  a publisher on A's "bt" -> bridge A -> nats-server -> bridge B
 *           -> a subscriber on B's "bt" (both topics block when full)
 *   nats    a cnats publisher -> nats-server -> a cnats subscriber on a
 *           connection of its own (no shmbus, no headers)
 *
 * each timed twice: N messages as fast as the publisher can send them
 * (rate = messages received / time from the first publish to the last
 * receive), and a few thousand at a low fixed rate, whose one-way times
 * (CLOCK_MONOTONIC at the publish, carried in the message, against the
 * receive on the same machine) give p50 and p99. Every message carries
 * the trial's id, its sequence number and a pattern over all its bytes;
 * the receiver checks them all, so a torn, repeated or reordered message
 * fails the run and a missing one is counted as lost. Figures are medians
 * over the repetitions, printed as a markdown table.
 *
 * The programs come from the directory this one is in (the build
 * directory) or --bindir; nats-server from $PATH or --nats-server.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/stats.h"
#include "shmbus/shmbus.h"

#define TOPIC	     "bt"
#define EXPORTED     "shmbus.A." TOPIC
#define NATS_SUBJECT "bridge-bench.plain"
#define CLIENT_NAME  "bridge-bench"

/* Every message starts with: the trial's id (u32), its sequence number
 * (u32), the publish time (u64 ns, CLOCK_MONOTONIC); the bytes after it
 * are (seq + i) mod 256. A probe carries the trial's id | PROBE_BIT. */
#define HDR	  16
#define PROBE_BIT 0x80000000u
#define MIN_SIZE  HDR
#define MAX_SIZE  (64u * 1024)

/* Both topics: 1 MiB rings (the broker's default), blocking when full. */
#define RING_BYTES (1u << 20)

/* What the bridge's import allows a subscription to hold (import.c); the
 * plain NATS subscriber gets the same. */
#define PENDING_MSGS  262144
#define PENDING_BYTES (256 * 1024 * 1024)

/* Bounds: a process to start, a path to carry its first probe, a quiet
 * path once the publisher is done (then the rest is lost), a quiet path
 * while it is not (then the trial fails), one blocked publish. */
#define START_MS	10000
#define PROBE_MS	20000
#define DRAIN_IDLE_MS	3000
#define STALL_MS	30000
#define PUBLISH_WAIT_MS 10000
#define STOP_MS		15000

enum { PATH_BRIDGE, PATH_NATS, NPATHS };
static const char *const path_names[NPATHS] = {"bridge", "nats"};

struct opts {
	int reps;
	uint64_t count;	    /* messages per throughput trial */
	uint64_t lat_count; /* messages per latency trial */
	double rate;	    /* latency trials, messages per second */
	size_t sizes[8];
	int nsizes;
	bool quick, keep;
	char bindir[PATH_MAX - 64];
	const char *nats_server;
};

/* ---- small helpers ---------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static void sleep_until(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000ull),
			      (long)(ns % 1000000000ull)};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR) {
	}
}

/* (seq + i) mod 256 for i from 0 is pattern + seq % 256. */
static unsigned char pattern[MAX_SIZE + 256];

static void fill_message(unsigned char *msg, size_t size, uint32_t id,
			 uint32_t seq)
{
	uint64_t ts;

	memcpy(msg, &id, 4);
	memcpy(msg + 4, &seq, 4);
	memcpy(msg + HDR, pattern + (seq & 255), size - HDR);
	ts = now_ns();
	memcpy(msg + 8, &ts, 8);
}

/* 1234567 as "1,234,567". */
static void thousands(char *out, size_t cap, double v)
{
	char digits[32];
	size_t n, o = 0;

	snprintf(digits, sizeof(digits), "%.0f", v < 0 ? 0 : v);
	n = strlen(digits);
	for (size_t i = 0; i < n && o + 2 < cap; i++) {
		if (i > 0 && (n - i) % 3 == 0) {
			out[o++] = ',';
		}
		out[o++] = digits[i];
	}
	out[o] = '\0';
}

/* Microseconds with three significant digits or so. */
static void micros(char *out, size_t cap, double ns)
{
	double us = ns / 1000.0, size = us < 0 ? -us : us;

	if (size < 10) {
		snprintf(out, cap, "%.2f", us);
	} else if (size < 100) {
		snprintf(out, cap, "%.1f", us);
	} else {
		snprintf(out, cap, "%.0f", us);
	}
}

/* ---- child processes -------------------------------------------------- */

struct proc {
	const char *name;
	pid_t pid; /* 0: not running */
	char log[PATH_MAX];
};

/* Forks `argv` (argv[0] a path, or a name looked up in $PATH) with its
 * output into p->log; it gets SIGTERM if this process dies first. */
static int proc_start(struct proc *p, const char *const *argv)
{
	pid_t parent = getpid();

	fflush(NULL);
	p->pid = fork();
	if (p->pid < 0) {
		p->pid = 0;
		return -errno;
	}
	if (p->pid == 0) {
		int log = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int null = open("/dev/null", O_RDONLY);

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent) {
			_exit(127);
		}
		if (log >= 0) {
			dup2(log, STDOUT_FILENO);
			dup2(log, STDERR_FILENO);
		}
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
		}
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return 0;
}

static bool proc_exited(struct proc *p, int *status)
{
	int st;

	if (p->pid <= 0 || waitpid(p->pid, &st, WNOHANG) != p->pid) {
		return false;
	}
	p->pid = 0;
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
	return true;
}

static void proc_show_log(const struct proc *p)
{
	FILE *f = fopen(p->log, "r");
	char line[512];

	if (f == NULL) {
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		fprintf(stderr, "  %s: %s", p->name, line);
	}
	fclose(f);
}

/* `sig`, then a bounded wait and SIGKILL. The exit status, -signal, or 0
 * when it was not running. */
static int proc_stop(struct proc *p, int sig)
{
	uint64_t deadline = now_ns() + STOP_MS * 1000000ull;
	int status = 0;

	if (p->pid <= 0) {
		return 0;
	}
	kill(p->pid, sig);
	while (!proc_exited(p, &status)) {
		if (now_ns() > deadline) {
			fprintf(stderr,
				"bridge-bench: %s did not stop; "
				"killing it\n",
				p->name);
			kill(p->pid, SIGKILL);
			waitpid(p->pid, NULL, 0);
			p->pid = 0;
			return -SIGKILL;
		}
		sleep_ms(5);
	}
	return status;
}

/* ---- the set-up: nats-server, two brokers, two bridges ---------------- */

struct env {
	char dir[PATH_MAX - 64];
	char sock_a[PATH_MAX], sock_b[PATH_MAX];
	char url[64];
	struct proc nats, broker_a, broker_b, bridge_a, bridge_b;
	shmbus *bus_a, *bus_b;
	bool failed; /* a child ended badly */
};

/* A port nobody listens on now: bind to port 0 and ask which one. */
static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
		port = ntohs(a.sin_port);
	}
	if (fd >= 0) {
		close(fd);
	}
	return port;
}

static bool port_accepts(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

	if (fd >= 0) {
		close(fd);
	}
	return ok;
}

/* Says why a child that should be running is not, with its log. */
static bool gone(struct proc *p)
{
	int status;

	if (p->pid > 0 && !proc_exited(p, &status)) {
		return false;
	}
	if (p->pid > 0 || p->log[0] != '\0') {
		fprintf(stderr, "bridge-bench: %s is not running; its log:\n",
			p->name);
		proc_show_log(p);
	}
	return true;
}

static int start_nats(struct env *env, const struct opts *o)
{
	/* Another process may take the free port first: a few tries. */
	for (int attempt = 0; attempt < 3; attempt++) {
		int port = free_port();
		char text[16];
		const char *argv[] = {o->nats_server, "-a", "127.0.0.1",
				      "-p",	      text, NULL};
		uint64_t deadline = now_ns() + START_MS * 1000000ull;

		snprintf(text, sizeof(text), "%d", port);
		snprintf(env->url, sizeof(env->url), "nats://127.0.0.1:%d",
			 port);
		if (port < 0 || proc_start(&env->nats, argv) < 0) {
			continue;
		}
		while (now_ns() < deadline) {
			int status;

			if (port_accepts(port)) {
				return 0;
			}
			if (proc_exited(&env->nats, &status)) {
				break;
			}
			sleep_ms(10);
		}
		proc_stop(&env->nats, SIGKILL);
	}
	fprintf(stderr,
		"bridge-bench: %s did not start (is it installed? "
		"scripts/install-deps.sh); its log:\n",
		o->nats_server);
	proc_show_log(&env->nats);
	return -1;
}

/* shmbusd on `sock`; *bus connected to it once it accepts. */
static int start_broker(struct proc *p, const char *bindir, const char *sock,
			shmbus **bus)
{
	char path[PATH_MAX];
	const char *argv[] = {path,	     "--foreground", "--socket", sock,
			      "--log-level", "warn",	     NULL};
	uint64_t deadline = now_ns() + START_MS * 1000000ull;

	snprintf(path, sizeof(path), "%s/shmbusd", bindir);
	if (access(path, X_OK) < 0) {
		fprintf(stderr, "bridge-bench: no %s (make bench builds it)\n",
			path);
		return -1;
	}
	if (proc_start(p, argv) < 0) {
		return -1;
	}
	while (now_ns() < deadline) {
		if (shmbus_connect(sock, CLIENT_NAME, bus) == 0) {
			return 0;
		}
		if (gone(p)) {
			return -1;
		}
		sleep_ms(10);
	}
	fprintf(stderr, "bridge-bench: %s did not accept in %d ms\n", p->name,
		START_MS);
	return -1;
}

/* "bt" on a broker: made here, so that its settings are ours and not the
 * defaults a bridge would get by opening it first. */
static int make_topic(shmbus *bus, size_t max_message)
{
	struct shmbus_topic_config cfg = {.capacity = RING_BYTES,
					  .max_message = (uint32_t)max_message,
					  .mode = SHMBUS_BROADCAST,
					  .overflow = SHMBUS_BLOCK};
	int r = shmbus_topic_create(bus, TOPIC, &cfg);

	if (r < 0) {
		fprintf(stderr, "bridge-bench: creating topic %s: %s\n", TOPIC,
			shmbus_strerror(r));
	}
	return r;
}

static int start_bridge(struct proc *p, const char *bindir, const char *sock,
			const char *url, const char *origin, const char *flag,
			const char *map)
{
	char path[PATH_MAX];
	const char *argv[] = {path, "--socket",		sock,	"--nats",
			      url,  "--origin",		origin, flag,
			      map,  "--stats-interval", "1h",	NULL};

	snprintf(path, sizeof(path), "%s/shmbus-bridge", bindir);
	if (access(path, X_OK) < 0) {
		fprintf(stderr, "bridge-bench: no %s (make all builds it)\n",
			path);
		return -1;
	}
	return proc_start(p, argv);
}

static void env_name(struct env *env, struct proc *p, const char *name,
		     const char *log)
{
	p->name = name;
	snprintf(p->log, sizeof(p->log), "%s/%s", env->dir, log);
}

static int env_start(struct env *env, const struct opts *o, size_t max_size)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(env->dir, sizeof(env->dir), "%s/bridge-bench-XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(env->dir) == NULL) {
		fprintf(stderr, "bridge-bench: mkdtemp %s: %s\n", env->dir,
			strerror(errno));
		env->dir[0] = '\0';
		return -1;
	}
	snprintf(env->sock_a, sizeof(env->sock_a), "%s/a.sock", env->dir);
	snprintf(env->sock_b, sizeof(env->sock_b), "%s/b.sock", env->dir);
	env_name(env, &env->nats, "nats-server", "nats.log");
	env_name(env, &env->broker_a, "shmbusd A", "shmbusd-a.log");
	env_name(env, &env->broker_b, "shmbusd B", "shmbusd-b.log");
	env_name(env, &env->bridge_a, "bridge A", "bridge-a.log");
	env_name(env, &env->bridge_b, "bridge B", "bridge-b.log");
	if (start_nats(env, o) < 0 ||
	    start_broker(&env->broker_a, o->bindir, env->sock_a, &env->bus_a) <
		0 ||
	    start_broker(&env->broker_b, o->bindir, env->sock_b, &env->bus_b) <
		0 ||
	    make_topic(env->bus_a, max_size) < 0 ||
	    make_topic(env->bus_b, max_size) < 0 ||
	    start_bridge(&env->bridge_a, o->bindir, env->sock_a, env->url, "A",
			 "--export", TOPIC) < 0 ||
	    start_bridge(&env->bridge_b, o->bindir, env->sock_b, env->url, "B",
			 "--import", EXPORTED "=" TOPIC) < 0) {
		return -1;
	}
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Stops what runs (bridges first, draining, then the brokers, then NATS),
 * each by its pid, and removes the directory unless kept. */
static void env_stop(struct env *env, bool keep)
{
	struct proc *order[] = {&env->bridge_a, &env->bridge_b};
	struct proc *brokers[] = {&env->broker_a, &env->broker_b};

	for (size_t i = 0; i < 2; i++) {
		int status = proc_stop(order[i], SIGTERM);

		if (status != 0) {
			fprintf(stderr,
				"bridge-bench: %s exited with %d; its "
				"log:\n",
				order[i]->name, status);
			proc_show_log(order[i]);
			env->failed = true;
		}
	}
	if (env->bus_a != NULL) {
		shmbus_close(env->bus_a);
	}
	if (env->bus_b != NULL) {
		shmbus_close(env->bus_b);
	}
	for (size_t i = 0; i < 2; i++) {
		int status = proc_stop(brokers[i], SIGTERM);

		if (status != 0) {
			fprintf(stderr,
				"bridge-bench: %s exited with %d; its "
				"log:\n",
				brokers[i]->name, status);
			proc_show_log(brokers[i]);
			env->failed = true;
		}
	}
	proc_stop(&env->nats, SIGTERM);
	if (env->dir[0] == '\0') {
		return;
	}
	if (keep) {
		fprintf(stderr, "bridge-bench: logs kept in %s\n", env->dir);
	} else if (nftw(env->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS) != 0) {
		fprintf(stderr, "bridge-bench: left %s behind\n", env->dir);
	}
}

/* ---- the two paths ---------------------------------------------------- */

struct path {
	int kind;
	/* bridge: a publisher on A, a subscriber on B */
	shmbus_pub *pub;
	shmbus_sub *sub;
	unsigned char *buf;
	/* nats: two connections, a synchronous subscription */
	natsConnection *pc, *sc;
	natsSubscription *ns;
	natsMsg *held;
	uint64_t slow; /* NATS_SLOW_CONSUMER reports */
};

/* `asap`: each publish is written at once, instead of after the client's
 * flusher has waited 1 ms for more (natsOptions_SetSendAsap). */
static natsStatus nats_connect(const char *url, const char *name, bool asap,
			       natsConnection **nc)
{
	natsOptions *o = NULL;
	natsStatus s = natsOptions_Create(&o);

	if (s == NATS_OK) {
		s = natsOptions_SetURL(o, url);
	}
	if (s == NATS_OK) {
		s = natsOptions_SetName(o, name);
	}
	if (s == NATS_OK) {
		s = natsOptions_SetSendAsap(o, asap);
	}
	if (s == NATS_OK) {
		s = natsConnection_Connect(nc, o);
	}
	natsOptions_Destroy(o);
	return s;
}

static void path_close(struct path *p)
{
	if (p->sub != NULL) {
		shmbus_sub_close(p->sub);
	}
	if (p->pub != NULL) {
		shmbus_pub_close(p->pub);
	}
	natsMsg_Destroy(p->held);
	natsSubscription_Destroy(p->ns);
	natsConnection_Destroy(p->pc);
	natsConnection_Destroy(p->sc);
	free(p->buf);
	memset(p, 0, sizeof(*p));
}

/* Opens the path's two ends; the subscriber first, so that it is there
 * before the first message. The NATS publisher of a paced run (`paced`)
 * sends each message at once, as one that cares for latency would: with
 * the client's default buffering, a lone message waits 1 ms. 0, or -1 with
 * the reason on stderr. */
static int path_open(struct path *p, int kind, bool paced, struct env *env)
{
	natsStatus s;
	int r;

	memset(p, 0, sizeof(*p));
	p->kind = kind;
	if (kind == PATH_BRIDGE) {
		p->buf = malloc(MAX_SIZE);
		r = p->buf == NULL ? -ENOMEM : 0;
		if (r == 0) {
			r = shmbus_sub_open(env->bus_b, TOPIC,
					    SHMBUS_START_LATEST, &p->sub);
		}
		if (r == 0) {
			r = shmbus_pub_open(env->bus_a, TOPIC, &p->pub);
		}
		if (r < 0) {
			fprintf(stderr, "bridge-bench: opening %s: %s\n", TOPIC,
				shmbus_strerror(r));
			path_close(p);
			return -1;
		}
		return 0;
	}
	s = nats_connect(env->url, "bridge-bench-sub", false, &p->sc);
	if (s == NATS_OK) {
		s = natsConnection_SubscribeSync(&p->ns, p->sc, NATS_SUBJECT);
	}
	if (s == NATS_OK) {
		s = natsSubscription_SetPendingLimits(p->ns, PENDING_MSGS,
						      PENDING_BYTES);
	}
	if (s == NATS_OK) {
		/* The server has the subscription once this returns. */
		s = natsConnection_Flush(p->sc);
	}
	if (s == NATS_OK) {
		s = nats_connect(env->url, "bridge-bench-pub", paced, &p->pc);
	}
	if (s != NATS_OK) {
		fprintf(stderr, "bridge-bench: NATS at %s: %s\n", env->url,
			natsStatus_GetText(s));
		path_close(p);
		return -1;
	}
	return 0;
}

static int path_send(struct path *p, const void *msg, size_t len)
{
	natsStatus s;

	if (p->kind == PATH_BRIDGE) {
		return shmbus_publish(p->pub, msg, len, PUBLISH_WAIT_MS);
	}
	s = natsConnection_Publish(p->pc, NATS_SUBJECT, msg, (int)len);
	return s == NATS_OK ? 0 : -EIO;
}

/* The next message (valid until the next call), its length; -EAGAIN when
 * none came within `ms`, another negative errno on failure. */
static ssize_t path_recv(struct path *p, const unsigned char **data, int ms)
{
	natsStatus s;
	ssize_t n;

	if (p->kind == PATH_BRIDGE) {
		n = shmbus_receive(p->sub, p->buf, MAX_SIZE, ms);
		*data = p->buf;
		return n == -ETIMEDOUT ? -EAGAIN : n;
	}
	natsMsg_Destroy(p->held);
	p->held = NULL;
	s = natsSubscription_NextMsg(&p->held, p->ns, ms);
	if (s == NATS_SLOW_CONSUMER) {
		/* Dropped by the client library: the gap counts them. */
		p->slow++;
		s = natsSubscription_NextMsg(&p->held, p->ns, ms);
	}
	if (s == NATS_TIMEOUT) {
		return -EAGAIN;
	}
	if (s != NATS_OK) {
		fprintf(stderr, "bridge-bench: NATS receive: %s\n",
			natsStatus_GetText(s));
		return -EIO;
	}
	*data = (const unsigned char *)natsMsg_GetData(p->held);
	return natsMsg_GetDataLength(p->held);
}

/* ---- one trial -------------------------------------------------------- */

struct trial {
	struct path *p;
	size_t size;
	uint32_t id;
	uint64_t n;
	double rate; /* 0: as fast as the publisher can */
	_Atomic uint64_t t_first;
	_Atomic bool pub_done;
	int pub_err;
	uint64_t pub_at; /* the message the publisher failed at */
};

struct result {
	bool ok;       /* measured (a failed trial has no figure) */
	double rate;   /* messages per second */
	uint64_t lost; /* sent and never received */
	uint64_t bad;  /* torn, repeated, reordered, wrong length */
	double p50, p99;
	double cpu; /* bridge path: both bridges' CPU ns per message */
};

/* The CPU time all threads of `pid` have run, in ns (the first field of
 * each task's schedstat); 0 when it cannot be read. */
static uint64_t cpu_ns(pid_t pid)
{
	char path[64];
	struct dirent *de;
	uint64_t sum = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	while (d != NULL && (de = readdir(d)) != NULL) {
		char file[320];
		unsigned long long ns;
		FILE *f;

		if (de->d_name[0] == '.') {
			continue;
		}
		snprintf(file, sizeof(file), "/proc/%d/task/%s/schedstat",
			 (int)pid, de->d_name);
		f = fopen(file, "r");
		if (f != NULL && fscanf(f, "%llu", &ns) == 1) {
			sum += ns;
		}
		if (f != NULL) {
			fclose(f);
		}
	}
	if (d != NULL) {
		closedir(d);
	}
	return sum;
}

static uint64_t bridges_cpu_ns(const struct env *env)
{
	return cpu_ns(env->bridge_a.pid) + cpu_ns(env->bridge_b.pid);
}

static void *publisher(void *arg)
{
	struct trial *t = arg;
	unsigned char *msg = malloc(t->size);
	uint64_t start = now_ns();
	double period = t->rate > 0 ? 1e9 / t->rate : 0;

	for (uint64_t i = 0; msg != NULL && i < t->n; i++) {
		int r;

		if (period > 0) {
			sleep_until(start + (uint64_t)(period * (double)i));
		}
		fill_message(msg, t->size, t->id, (uint32_t)i);
		if (i == 0) {
			uint64_t ts;

			memcpy(&ts, msg + 8, 8);
			atomic_store(&t->t_first, ts);
		}
		r = path_send(t->p, msg, t->size);
		if (r < 0) {
			t->pub_err = r;
			t->pub_at = i;
			break;
		}
	}
	if (msg == NULL) {
		t->pub_err = -ENOMEM;
	}
	free(msg);
	atomic_store(&t->pub_done, true);
	return NULL;
}

/* Sends probes until one comes through: then every part of the path is
 * up (for the bridge: both bridges subscribed, bridge B's publisher open),
 * and the probes still on the way arrive before the trial's messages. */
static int probe(struct path *p, uint32_t id, struct env *env)
{
	uint64_t deadline = now_ns() + PROBE_MS * 1000000ull;
	unsigned char msg[HDR];

	fill_message(msg, HDR, id | PROBE_BIT, 0);
	while (now_ns() < deadline) {
		uint64_t until = now_ns() + 50 * 1000000ull;
		int r = path_send(p, msg, HDR);

		if (r < 0) {
			fprintf(stderr, "bridge-bench: probe: %s\n",
				shmbus_strerror(r));
			return -1;
		}
		while (now_ns() < until) {
			const unsigned char *d;
			ssize_t n = path_recv(p, &d, 10);
			uint32_t got;

			if (n >= HDR) {
				memcpy(&got, d, 4);
				if (got == (id | PROBE_BIT)) {
					return 0;
				}
			} else if (n != -EAGAIN && n < 0) {
				return -1;
			}
		}
		if (p->kind == PATH_BRIDGE &&
		    (gone(&env->bridge_a) || gone(&env->bridge_b))) {
			return -1;
		}
	}
	fprintf(stderr,
		"bridge-bench: nothing came through the %s path in %d s\n",
		path_names[p->kind], PROBE_MS / 1000);
	return -1;
}

/* Checks one received message; counts it as good (returns 1), lost
 * before it, or bad. `expect` is the next sequence number wanted. */
static int check_message(const struct trial *t, const unsigned char *d,
			 ssize_t n, uint64_t *expect, struct result *res)
{
	uint32_t seq;

	memcpy(&seq, d + 4, 4);
	if ((size_t)n != t->size || seq < *expect || seq >= t->n ||
	    memcmp(d + HDR, pattern + (seq & 255), t->size - HDR) != 0) {
		if (res->bad++ < 5) {
			fprintf(stderr,
				"bridge-bench: %s, message %" PRIu32
				" (%zd bytes, expected #%" PRIu64
				" of %zu bytes): %s\n",
				path_names[t->p->kind], seq, n, *expect,
				t->size,
				(size_t)n != t->size ? "wrong length"
				: seq < *expect	     ? "repeated or reordered"
				: seq >= t->n	     ? "never sent"
						     : "bytes differ");
		}
		if (seq >= *expect && seq < t->n) {
			/* Arrived, if torn: not lost too. */
			res->lost += seq - *expect;
			*expect = (uint64_t)seq + 1;
		}
		return 0;
	}
	res->lost += seq - *expect;
	*expect = (uint64_t)seq + 1;
	return 1;
}

/* Receives the trial's messages on this thread while publisher() sends
 * them on another. */
static int run_trial(struct trial *t, struct env *env, struct result *res)
{
	uint64_t *lat = t->rate > 0 ? calloc(t->n, sizeof(*lat)) : NULL;
	uint64_t expect = 0, got = 0, nlat = 0, t_last = 0, heard, cpu0;
	pthread_t thread;
	int rc = 0;

	memset(res, 0, sizeof(*res));
	if ((t->rate > 0 && lat == NULL) || probe(t->p, t->id, env) < 0) {
		free(lat);
		return -1;
	}
	cpu0 = t->p->kind == PATH_BRIDGE ? bridges_cpu_ns(env) : 0;
	if (pthread_create(&thread, NULL, publisher, t) != 0) {
		free(lat);
		return -1;
	}
	heard = now_ns();
	while (expect < t->n) {
		const unsigned char *d;
		ssize_t n = path_recv(t->p, &d, 100);
		uint64_t now = now_ns();
		uint32_t id;

		if (n == -EAGAIN) {
			bool done = atomic_load(&t->pub_done);

			if ((done &&
			     now - heard > DRAIN_IDLE_MS * 1000000ull) ||
			    now - heard > STALL_MS * 1000000ull) {
				break;
			}
			continue;
		}
		if (n < 0) {
			rc = -1;
			break;
		}
		if (n >= HDR) {
			memcpy(&id, d, 4);
		}
		if (n < HDR || id != t->id) {
			continue; /* a probe, or a leftover of another */
		}
		heard = now;
		if (check_message(t, d, n, &expect, res)) {
			uint64_t ts;

			memcpy(&ts, d + 8, 8);
			got++;
			t_last = now;
			if (lat != NULL) {
				lat[nlat++] = now - ts;
			}
		}
	}
	pthread_join(thread, NULL);
	if (t->p->kind == PATH_BRIDGE && got > 0) {
		res->cpu = (double)(bridges_cpu_ns(env) - cpu0) / (double)got;
	}
	if (t->pub_err != 0) {
		fprintf(stderr,
			"bridge-bench: %s: publishing message %" PRIu64
			" failed: %s\n",
			path_names[t->p->kind], t->pub_at,
			shmbus_strerror(t->pub_err));
		rc = -1;
	}
	res->lost += t->n - expect;
	if (got > 0 && t_last > atomic_load(&t->t_first)) {
		res->rate = (double)got * 1e9 /
			    (double)(t_last - atomic_load(&t->t_first));
	}
	if (nlat > 0) {
		bench_stats_sort(lat, nlat);
		res->p50 = (double)bench_stats_percentile(lat, nlat, 0.50);
		res->p99 = (double)bench_stats_percentile(lat, nlat, 0.99);
	}
	free(lat);
	res->ok = rc == 0 && got > 0;
	return rc;
}

/* ---- the run ---------------------------------------------------------- */

/* The figures of every repetition: [size][path][rep]. */
struct figures {
	struct result thr[8][NPATHS][64];
	struct result lat[8][NPATHS][64];
};

static int one_trial(struct env *env, int kind, size_t size, uint64_t n,
		     double rate, uint32_t id, struct result *res)
{
	struct trial t = {.size = size, .id = id, .n = n, .rate = rate};
	struct path p;
	int rc;

	if (path_open(&p, kind, rate > 0, env) < 0) {
		memset(res, 0, sizeof(*res));
		return -1;
	}
	t.p = &p;
	rc = run_trial(&t, env, res);
	if (p.slow > 0) {
		fprintf(stderr,
			"bridge-bench: the NATS subscriber was a slow "
			"consumer %" PRIu64 " times\n",
			p.slow);
	}
	path_close(&p);
	return rc;
}

static void say_trial(int rep, const struct opts *o, size_t size, int kind,
		      const char *what, const struct result *r)
{
	char a[32], b[32], cpu[64] = "";

	if (!r->ok) {
		fprintf(stderr, "  rep %d/%d, %zu B, %s, %s: failed\n", rep + 1,
			o->reps, size, path_names[kind], what);
		return;
	}
	if (kind == PATH_BRIDGE) {
		snprintf(cpu, sizeof(cpu), ", bridges' CPU %.2f us/msg",
			 r->cpu / 1000);
	}
	if (r->p50 > 0) {
		micros(a, sizeof(a), r->p50);
		micros(b, sizeof(b), r->p99);
		fprintf(stderr,
			"  rep %d/%d, %zu B, %s, %s: p50 %s us, p99 %s us, "
			"lost %" PRIu64 "%s\n",
			rep + 1, o->reps, size, path_names[kind], what, a, b,
			r->lost, cpu);
	} else {
		thousands(a, sizeof(a), r->rate);
		fprintf(stderr,
			"  rep %d/%d, %zu B, %s, %s: %s msg/s, lost %" PRIu64
			"%s\n",
			rep + 1, o->reps, size, path_names[kind], what, a,
			r->lost, cpu);
	}
}

/* Repetitions outside, sizes and paths inside, so that a drift of the
 * machine shows in every row's spread; the two paths take turns going
 * first. Returns the number of failed trials. */
static int measure(struct env *env, const struct opts *o, struct figures *f)
{
	uint32_t id = 1;
	int failed = 0;

	for (int rep = 0; rep < o->reps; rep++) {
		for (int s = 0; s < o->nsizes; s++) {
			size_t size = o->sizes[s];

			for (int i = 0; i < NPATHS; i++) {
				int kind = (i + rep) % NPATHS;
				struct result *r = &f->thr[s][kind][rep];

				failed += one_trial(env, kind, size, o->count,
						    0, id++, r) < 0;
				say_trial(rep, o, size, kind, "throughput", r);
			}
			for (int i = 0; i < NPATHS; i++) {
				int kind = (i + rep) % NPATHS;
				struct result *r = &f->lat[s][kind][rep];

				failed +=
				    one_trial(env, kind, size, o->lat_count,
					      o->rate, id++, r) < 0;
				say_trial(rep, o, size, kind, "latency", r);
			}
		}
	}
	return failed;
}

/* ---- the table -------------------------------------------------------- */

/* Median and spread of one field over the repetitions that measured it. */
static bool aggregate(const struct result *v, int reps, int field,
		      struct bench_agg *out)
{
	double x[64];
	int n = 0;

	for (int i = 0; i < reps; i++) {
		if (v[i].ok) {
			x[n++] = field == 0   ? v[i].rate
				 : field == 1 ? v[i].p50
				 : field == 2 ? v[i].p99
					      : v[i].cpu;
		}
	}
	bench_stats_aggregate(x, n, out);
	return n > 0;
}

static void cell_rate(char *out, size_t cap, const struct bench_agg *a,
		      int reps)
{
	char m[32], lo[32], hi[32];

	thousands(m, sizeof(m), a->median);
	if (reps == 1) {
		snprintf(out, cap, "%s", m);
		return;
	}
	thousands(lo, sizeof(lo), a->min);
	thousands(hi, sizeof(hi), a->max);
	snprintf(out, cap, "%s [%s..%s]", m, lo, hi);
}

static void cell_micros(char *out, size_t cap, const struct bench_agg *a,
			int reps)
{
	char m[32], lo[32], hi[32];

	micros(m, sizeof(m), a->median);
	if (reps == 1) {
		snprintf(out, cap, "%s", m);
		return;
	}
	micros(lo, sizeof(lo), a->min);
	micros(hi, sizeof(hi), a->max);
	snprintf(out, cap, "%s [%s..%s]", m, lo, hi);
}

static const char *const path_rows[NPATHS] = {
    "bridge: shmbus A -> bridge -> NATS -> bridge -> shmbus B",
    "nats: NATS pub -> sub",
};

static uint64_t lost_sum(const struct result *thr, const struct result *lat,
			 int reps)
{
	uint64_t n = 0;

	for (int i = 0; i < reps; i++) {
		n += thr[i].lost + lat[i].lost;
	}
	return n;
}

static void print_table(const struct opts *o, const struct figures *f)
{
	puts("| size | path | msg/s | MB/s | lost | latency p50 (us) | "
	     "latency p99 (us) | bridges' CPU/msg, full speed (us) | "
	     "bridges' CPU/msg, paced (us) |");
	puts("|---|---|---|---|---|---|---|---|---|");
	for (int s = 0; s < o->nsizes; s++) {
		struct bench_agg rate[NPATHS], p50[NPATHS], p99[NPATHS], cpu;
		bool have_r[NPATHS], have_l[NPATHS];

		for (int k = 0; k < NPATHS; k++) {
			char c_rate[128] = "failed", c_mb[32] = "-";
			char c_50[128] = "failed", c_99[128] = "failed";
			char c_cpu_r[128] = "-", c_cpu_l[128] = "-";

			have_r[k] =
			    aggregate(f->thr[s][k], o->reps, 0, &rate[k]);
			have_l[k] =
			    aggregate(f->lat[s][k], o->reps, 1, &p50[k]) &&
			    aggregate(f->lat[s][k], o->reps, 2, &p99[k]);
			if (have_r[k]) {
				cell_rate(c_rate, sizeof(c_rate), &rate[k],
					  o->reps);
				snprintf(c_mb, sizeof(c_mb), "%.1f",
					 rate[k].median * (double)o->sizes[s] /
					     1e6);
			}
			if (have_l[k]) {
				cell_micros(c_50, sizeof(c_50), &p50[k],
					    o->reps);
				cell_micros(c_99, sizeof(c_99), &p99[k],
					    o->reps);
			}
			if (k == PATH_BRIDGE && have_r[k] &&
			    aggregate(f->thr[s][k], o->reps, 3, &cpu)) {
				cell_micros(c_cpu_r, sizeof(c_cpu_r), &cpu,
					    o->reps);
			}
			if (k == PATH_BRIDGE && have_l[k] &&
			    aggregate(f->lat[s][k], o->reps, 3, &cpu)) {
				cell_micros(c_cpu_l, sizeof(c_cpu_l), &cpu,
					    o->reps);
			}
			printf("| %zu B | %s | %s | %s | %" PRIu64
			       " | %s | %s | %s | %s |\n",
			       o->sizes[s], path_rows[k], c_rate, c_mb,
			       lost_sum(f->thr[s][k], f->lat[s][k], o->reps),
			       c_50, c_99, c_cpu_r, c_cpu_l);
		}
		if (have_r[PATH_BRIDGE] && have_r[PATH_NATS] &&
		    have_l[PATH_BRIDGE] && have_l[PATH_NATS]) {
			char d50[32], d99[32];

			micros(d50, sizeof(d50),
			       p50[PATH_BRIDGE].median - p50[PATH_NATS].median);
			micros(d99, sizeof(d99),
			       p99[PATH_BRIDGE].median - p99[PATH_NATS].median);
			printf("| %zu B | bridge / nats | %.2fx | | | %s%s | "
			       "%s%s | | |\n",
			       o->sizes[s],
			       rate[PATH_BRIDGE].median /
				   rate[PATH_NATS].median,
			       d50[0] == '-' ? "" : "+", d50,
			       d99[0] == '-' ? "" : "+", d99);
		}
	}
}

static void print_header(const struct opts *o, int argc, char **argv)
{
	char model[256] = "unknown CPU", line[512], date[32], server[128] = "";
	char count[32], lat[32], rate[32];
	FILE *f = fopen("/proc/cpuinfo", "r");
	time_t now = time(NULL);
	FILE *v;

	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
			snprintf(model, sizeof(model), "%s", colon + 2);
			model[strcspn(model, "\n")] = '\0';
			break;
		}
	}
	if (f != NULL) {
		fclose(f);
	}
	v = popen("nats-server --version 2>/dev/null", "r");
	if (v != NULL) {
		if (fgets(server, sizeof(server), v) != NULL) {
			server[strcspn(server, "\n")] = '\0';
		}
		pclose(v);
	}
	strftime(date, sizeof(date), "%Y-%m-%d", localtime(&now));
	printf("bridge-bench %s: %s, %ld CPUs; %s, cnats %s\n", date, model,
	       sysconf(_SC_NPROCESSORS_ONLN),
	       server[0] != '\0' ? server : "nats-server", nats_GetVersion());
	printf("command:");
	for (int i = 0; i < argc; i++) {
		printf(" %s", argv[i]);
	}
	thousands(count, sizeof(count), (double)o->count);
	thousands(lat, sizeof(lat), (double)o->lat_count);
	thousands(rate, sizeof(rate), o->rate);
	printf("\nmsg/s: %s messages as fast as the publisher sends them, "
	       "received / (last receive - first publish); latency: %s "
	       "messages at %s msg/s, one way (the NATS publisher sending "
	       "each at once); ",
	       count, lat, rate);
	if (o->reps == 1) {
		printf("one run\n\n");
	} else {
		printf("medians [min..max] of %d runs, lost summed\n\n",
		       o->reps);
	}
}

/* ---- options ---------------------------------------------------------- */

static const char usage_text[] =
    "usage: bridge-bench [--reps N] [--count N] [--sizes LIST] [--rate R]\n"
    "                    [--lat-count N] [--quick] [--bindir DIR]\n"
    "                    [--nats-server PATH] [--keep]\n"
    "\n"
    "Messages per second and one-way latency through shmbus A -> "
    "shmbus-bridge\n"
    "-> nats-server -> shmbus-bridge -> shmbus B, next to a plain NATS\n"
    "publisher -> subscriber pair, in one run with its own nats-server, "
    "two\n"
    "shmbusd and two bridges. Prints a markdown table of medians.\n"
    "\n"
    "  --reps N         repetitions (default 3)\n"
    "  --count N        messages per throughput run (default 100000)\n"
    "  --sizes LIST     message sizes, 16..64K (default 64,4K)\n"
    "  --rate R         latency runs: messages per second (default 2000)\n"
    "  --lat-count N    latency runs: messages (default 4000)\n"
    "  --quick          2000 messages, 200 for latency, one run: checks "
    "that\n"
    "                   every message arrives intact (bench/smoke.sh)\n"
    "  --bindir DIR     where shmbusd and shmbus-bridge are (default: this\n"
    "                   program's directory)\n"
    "  --nats-server P  the nats-server to run (default: from $PATH)\n"
    "  --keep           keep the temporary directory with the logs (kept\n"
    "                   anyway when a run failed)\n"
    "\n"
    "Exit status: 0 every message measured arrived intact (some may be "
    "lost\n"
    "under load, counted; none with --quick), 1 a run failed or a message "
    "was\n"
    "torn, repeated or reordered, 2 bad flags.\n";

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mult = 1;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end == 'K' || *end == 'k') {
		mult = 1024;
		end++;
	}
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' ||
	    v * mult < lo || v * mult > hi) {
		return -1;
	}
	*out = v * mult;
	return 0;
}

static int parse_sizes(const char *text, struct opts *o)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", text);
	o->nsizes = 0;
	for (char *tok = strtok_r(buf, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		uint64_t v;

		if (o->nsizes == 8 ||
		    parse_u64(tok, MIN_SIZE, MAX_SIZE, &v) < 0) {
			return -1;
		}
		o->sizes[o->nsizes++] = (size_t)v;
	}
	return o->nsizes > 0 ? 0 : -1;
}

/* The directory of this program: where make put shmbusd and the bridge. */
static int own_dir(char *out, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n < 0) {
		return -1;
	}
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash == NULL) {
		return -1;
	}
	*slash = '\0';
	if ((size_t)(slash - exe) >= cap) {
		return -1;
	}
	memcpy(out, exe, (size_t)(slash - exe) + 1);
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longs[] = {
	    {"reps", required_argument, NULL, 'r'},
	    {"count", required_argument, NULL, 'n'},
	    {"sizes", required_argument, NULL, 's'},
	    {"rate", required_argument, NULL, 'R'},
	    {"lat-count", required_argument, NULL, 'l'},
	    {"quick", no_argument, NULL, 'q'},
	    {"bindir", required_argument, NULL, 'b'},
	    {"nats-server", required_argument, NULL, 'N'},
	    {"keep", no_argument, NULL, 'k'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool set_reps = false, set_count = false, set_lat = false;
	uint64_t v;
	int c;

	*o = (struct opts){.reps = 3,
			   .count = 100000,
			   .lat_count = 4000,
			   .rate = 2000,
			   .sizes = {64, 4096},
			   .nsizes = 2,
			   .nats_server = "nats-server"};
	if (own_dir(o->bindir, sizeof(o->bindir)) < 0) {
		snprintf(o->bindir, sizeof(o->bindir), "build/plain");
	}
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (parse_u64(optarg, 1, 64, &v) < 0) {
				goto bad;
			}
			o->reps = (int)v;
			set_reps = true;
			break;
		case 'n':
			if (parse_u64(optarg, 1, UINT32_MAX / 2, &o->count) <
			    0) {
				goto bad;
			}
			set_count = true;
			break;
		case 'l':
			if (parse_u64(optarg, 1, 10000000, &o->lat_count) < 0) {
				goto bad;
			}
			set_lat = true;
			break;
		case 'R':
			if (parse_u64(optarg, 1, 1000000, &v) < 0) {
				goto bad;
			}
			o->rate = (double)v;
			break;
		case 's':
			if (parse_sizes(optarg, o) < 0) {
				goto bad;
			}
			break;
		case 'q':
			o->quick = true;
			break;
		case 'b':
			snprintf(o->bindir, sizeof(o->bindir), "%s", optarg);
			break;
		case 'N':
			o->nats_server = optarg;
			break;
		case 'k':
			o->keep = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 1;
		default:
			goto bad;
		}
	}
	if (optind < argc) {
		goto bad;
	}
	if (o->quick) {
		o->reps = set_reps ? o->reps : 1;
		o->count = set_count ? o->count : 2000;
		o->lat_count = set_lat ? o->lat_count : 200;
	}
	return 0;
bad:
	fprintf(stderr, "bridge-bench: bad arguments (see --help)\n");
	return -1;
}

int main(int argc, char **argv)
{
	static struct figures fig;
	struct env env = {0};
	size_t max_size = 0;
	uint64_t lost = 0, bad = 0;
	struct opts o;
	int failed, r = parse_args(argc, argv, &o);

	if (r != 0) {
		return r < 0 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof(pattern); i++) {
		pattern[i] = (unsigned char)i;
	}
	for (int i = 0; i < o.nsizes; i++) {
		max_size = o.sizes[i] > max_size ? o.sizes[i] : max_size;
	}
	signal(SIGPIPE, SIG_IGN);
	if (nats_Open(-1) != NATS_OK) {
		fprintf(stderr, "bridge-bench: nats_Open failed\n");
		return 1;
	}
	if (env_start(&env, &o, max_size) < 0) {
		env_stop(&env, o.keep);
		nats_Close();
		return 1;
	}
	failed = measure(&env, &o, &fig);
	env_stop(&env, o.keep || failed > 0);
	nats_CloseAndWait(2000);
	for (int s = 0; s < o.nsizes; s++) {
		for (int k = 0; k < NPATHS; k++) {
			for (int i = 0; i < o.reps; i++) {
				lost += fig.thr[s][k][i].lost +
					fig.lat[s][k][i].lost;
				bad +=
				    fig.thr[s][k][i].bad + fig.lat[s][k][i].bad;
			}
		}
	}
	print_header(&o, argc, argv);
	print_table(&o, &fig);
	if (failed > 0 || bad > 0 || env.failed) {
		fprintf(stderr,
			"bridge-bench: %d runs failed, %" PRIu64
			" messages torn, repeated or reordered\n",
			failed, bad);
		return 1;
	}
	if (o.quick && lost > 0) {
		fprintf(stderr, "bridge-bench: %" PRIu64 " messages lost\n",
			lost);
		return 1;
	}
	if (o.quick) {
		fprintf(stderr, "bridge-bench: every message arrived intact\n");
	}
	return 0;
}
