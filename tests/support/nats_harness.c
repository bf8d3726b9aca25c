/*
 * nats_harness.c - nats-server and shmbus-bridge processes for tests
 * (nats_harness.h).
 */
#include "tests/support/nats_harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/testutil.h"

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

static int accepts(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

	if (fd >= 0) {
		close(fd);
	}
	return ok;
}

/* Forks `argv` with stdout and stderr appended to `log`. */
static pid_t spawn(const char *const *argv, const char *log)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static int start_server(struct sbt_nats *n)
{
	const char *argv[32] = {"nats-server", "-a", "127.0.0.1", "-p"};
	char port[16];
	size_t i = 4;

	snprintf(port, sizeof(port), "%d", n->port);
	argv[i++] = port;
	for (size_t j = 0; n->args != NULL && n->args[j] != NULL && i < 31;
	     j++) {
		argv[i++] = n->args[j];
	}
	n->pid = spawn(argv, n->log);
	for (int t = 0; n->pid > 0 && t < 1000; t++) {
		if (accepts(n->port)) {
			return 0;
		}
		if (waitpid(n->pid, NULL, WNOHANG) == n->pid) {
			n->pid = 0;
			return -1;
		}
		sbt_sleep_ms(10);
	}
	return -1;
}

int sbt_nats_start(struct sbt_nats *n, const char *const *extra_args)
{
	memset(n, 0, sizeof(*n));
	n->dir = sbt_tempdir();
	n->args = extra_args;
	n->port = free_port();
	snprintf(n->url, sizeof(n->url), "nats://127.0.0.1:%d", n->port);
	snprintf(n->log, sizeof(n->log), "%s/nats.log", n->dir);
	return n->port > 0 ? start_server(n) : -1;
}

int sbt_nats_restart(struct sbt_nats *n)
{
	/* The port was ours a moment ago; wait until it can be bound. */
	for (int t = 0; t < 500 && accepts(n->port); t++) {
		sbt_sleep_ms(10);
	}
	return start_server(n);
}

void sbt_nats_kill(struct sbt_nats *n)
{
	if (n->pid > 0) {
		kill(n->pid, SIGKILL);
		waitpid(n->pid, NULL, 0);
		n->pid = 0;
	}
}

void sbt_nats_stop(struct sbt_nats *n)
{
	sbt_nats_kill(n);
	if (n->dir != NULL) {
		sbt_rmtree(n->dir);
		n->dir = NULL;
	}
}

/* ---- the bridge ------------------------------------------------------- */

static const char *bridge_binary(char *buf, size_t len)
{
	const char *dir = getenv("SHMBUS_TEST_BINDIR");

	snprintf(buf, len, "%s/shmbus-bridge",
		 dir != NULL ? dir : "build/plain");
	return buf;
}

int sbt_bridge_start(struct sbt_bridge *b, const char *dir,
		     const char *const *args)
{
	static atomic_int count;
	const char *argv[64];
	char binary[512];
	size_t i = 0;

	argv[i++] = bridge_binary(binary, sizeof(binary));
	for (size_t j = 0; args != NULL && args[j] != NULL && i < 63; j++) {
		argv[i++] = args[j];
	}
	argv[i] = NULL;
	snprintf(b->log, sizeof(b->log), "%s/bridge-%d.log", dir,
		 atomic_fetch_add(&count, 1));
	b->pid = spawn(argv, b->log);
	return b->pid > 0 ? 0 : -1;
}

static char *read_log(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t cap = 0, n = 0;

	if (f == NULL) {
		return NULL;
	}
	for (;;) {
		if (n + 4096 + 1 > cap) {
			char *p = realloc(text, cap = n + 65536);

			if (p == NULL) {
				break;
			}
			text = p;
		}
		size_t got = fread(text + n, 1, 4096, f);

		n += got;
		if (got == 0) {
			break;
		}
	}
	fclose(f);
	if (text != NULL) {
		text[n] = '\0';
	}
	return text;
}

int sbt_bridge_log_count(const struct sbt_bridge *b, const char *text)
{
	char *log = read_log(b->log);
	int count = 0;

	for (const char *p = log; p != NULL && (p = strstr(p, text)) != NULL;
	     p += strlen(text)) {
		count++;
	}
	free(log);
	return count;
}

int sbt_bridge_log_wait(const struct sbt_bridge *b, const char *text, int ms)
{
	for (int t = 0; t < ms; t += 10) {
		if (sbt_bridge_log_count(b, text) > 0) {
			return 1;
		}
		sbt_sleep_ms(10);
	}
	return sbt_bridge_log_count(b, text) > 0;
}

static int wait_bounded(pid_t pid, int ms)
{
	int status;

	for (int t = 0; t < ms; t += 10) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			return WIFEXITED(status) ? WEXITSTATUS(status)
						 : -WTERMSIG(status);
		}
		sbt_sleep_ms(10);
	}
	kill(pid, SIGKILL);
	return sbt_wait(pid);
}

int sbt_bridge_signal_wait(struct sbt_bridge *b, int sig)
{
	int status;

	kill(b->pid, sig);
	status = wait_bounded(b->pid, 20000);
	b->pid = 0;
	return status;
}

int sbt_bridge_run(const char *const *args, char *err, size_t errlen, int ms)
{
	struct sbt_bridge b;
	char *dir = sbt_tempdir(), *log;
	int status;

	if (sbt_bridge_start(&b, dir, args) < 0) {
		sbt_rmtree(dir);
		return -1000;
	}
	status = wait_bounded(b.pid, ms);
	log = read_log(b.log);
	snprintf(err, errlen, "%s", log != NULL ? log : "");
	free(log);
	sbt_rmtree(dir);
	return status;
}
