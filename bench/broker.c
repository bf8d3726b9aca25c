/*
 * broker.c - a shmbusd of the benchmark's own: the one built next to the
 * running program, started on a socket in a fresh temporary directory
 * (never the user's broker), and stopped with SIGTERM by its pid. The
 * control-plane section and the data-path transports (tr_bus.c) use it.
 */
#include "bench/broker.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmbus/shmbus.h"

/* How long the broker may take to accept connections, or to exit. */
#define BROKER_WAIT_MS 10000
#define CLIENT_NAME    "shmbus-bench"

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

/* Copies the broker's log to stderr: it says why the broker failed. */
static void show_log(const struct bench_broker *b)
{
	FILE *f = fopen(b->log, "r");
	char line[512];

	if (f == NULL) {
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		fprintf(stderr, "  shmbusd: %s", line);
	}
	fclose(f);
}

/* The shmbusd next to this program (build/<variant>/shmbusd). */
static int broker_path(char *out, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n < 0) {
		return -errno;
	}
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash == NULL) {
		return -ENOENT;
	}
	*slash = '\0';
	if ((size_t)snprintf(out, cap, "%s/shmbusd", exe) >= cap) {
		return -ENAMETOOLONG;
	}
	if (access(out, X_OK) < 0) {
		return -errno;
	}
	return 0;
}

/* Writes `text` to a new file at `path`. */
static int write_config(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (f == NULL) {
		return -errno;
	}
	ok = fputs(text, f) >= 0;
	if (fclose(f) != 0 || !ok) {
		fprintf(stderr, "shmbus-bench: writing %s failed\n", path);
		return -EIO;
	}
	return 0;
}

/* In the child: becomes shmbusd, logging to b->log. Never returns. */
static void broker_exec(const struct bench_broker *b, const char *path)
{
	int log = open(b->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

	/* A broker outliving an interrupted benchmark would be litter. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (log >= 0) {
		dup2(log, STDOUT_FILENO);
		dup2(log, STDERR_FILENO);
	}
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
	}
	if (b->config[0] != '\0') {
		execl(path, "shmbusd", "--foreground", "--socket", b->socket,
		      "--log-level", "warn", "--config", b->config,
		      (char *)NULL);
	} else {
		execl(path, "shmbusd", "--foreground", "--socket", b->socket,
		      "--log-level", "warn", (char *)NULL);
	}
	fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
	_exit(127);
}

static void broker_cleanup_dir(const struct bench_broker *b)
{
	unlink(b->socket);
	unlink(b->log);
	if (b->config[0] != '\0') {
		unlink(b->config);
	}
	if (rmdir(b->dir) < 0) {
		fprintf(stderr, "shmbus-bench: left %s behind: %s\n", b->dir,
			strerror(errno));
	}
}

/*
 * Starts shmbusd and waits (bounded) until it accepts a connection.
 * Returns 0, or a negative errno with the reason on stderr (then nothing
 * is left running or on disk).
 */
int bench_broker_start(struct bench_broker *b, const char *config)
{
	const char *tmp = getenv("TMPDIR");
	char path[PATH_MAX];
	uint64_t deadline;
	int rc;

	memset(b, 0, sizeof(*b));
	b->pid = -1;
	rc = broker_path(path, sizeof(path));
	if (rc < 0) {
		fprintf(stderr,
			"shmbus-bench: no runnable shmbusd next to "
			"this program (%s); `make bench` builds it\n",
			shmbus_strerror(rc));
		return rc;
	}
	snprintf(b->dir, sizeof(b->dir), "%s/shmbus-bench-XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(b->dir) == NULL) {
		rc = -errno;
		fprintf(stderr, "shmbus-bench: mkdtemp(%s): %s\n", b->dir,
			strerror(errno));
		return rc;
	}
	snprintf(b->socket, sizeof(b->socket), "%s/shmbusd.sock", b->dir);
	snprintf(b->log, sizeof(b->log), "%s/shmbusd.log", b->dir);
	if (config != NULL) {
		snprintf(b->config, sizeof(b->config), "%s/shmbusd.json",
			 b->dir);
		rc = write_config(b->config, config);
		if (rc < 0) {
			broker_cleanup_dir(b);
			return rc;
		}
	}
	fflush(NULL);
	b->pid = fork();
	if (b->pid < 0) {
		rc = -errno;
		broker_cleanup_dir(b);
		return rc;
	}
	if (b->pid == 0) {
		broker_exec(b, path);
	}
	deadline = now_ns() + BROKER_WAIT_MS * 1000000ull;
	for (;;) {
		shmbus *bus = NULL;
		int st;

		if (shmbus_connect(b->socket, CLIENT_NAME, &bus) == 0) {
			shmbus_close(bus);
			return 0;
		}
		if (waitpid(b->pid, &st, WNOHANG) == b->pid) {
			fprintf(stderr,
				"shmbus-bench: shmbusd exited at "
				"start-up (status %d):\n",
				WIFEXITED(st) ? WEXITSTATUS(st) : -1);
			show_log(b);
			b->pid = -1;
			broker_cleanup_dir(b);
			return -ECHILD;
		}
		if (now_ns() >= deadline) {
			fprintf(stderr, "shmbus-bench: shmbusd did "
					"not accept connections in 10 s\n");
			show_log(b);
			kill(b->pid, SIGKILL);
			waitpid(b->pid, NULL, 0);
			b->pid = -1;
			broker_cleanup_dir(b);
			return -ETIMEDOUT;
		}
		sleep_ms(10);
	}
}

/* SIGTERM by pid, wait (bounded, then SIGKILL), remove the directory. */
void bench_broker_stop(struct bench_broker *b)
{
	uint64_t deadline = now_ns() + BROKER_WAIT_MS * 1000000ull;
	int st = 0;

	if (b->pid <= 0) {
		return;
	}
	kill(b->pid, SIGTERM);
	while (waitpid(b->pid, &st, WNOHANG) == 0) {
		if (now_ns() >= deadline) {
			fprintf(stderr, "shmbus-bench: shmbusd did "
					"not stop on SIGTERM; killing it\n");
			kill(b->pid, SIGKILL);
			waitpid(b->pid, &st, 0);
			break;
		}
		sleep_ms(5);
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "shmbus-bench: shmbusd ended badly "
				"(its log follows)\n");
		show_log(b);
	}
	b->pid = -1;
	broker_cleanup_dir(b);
}
