/*
 * broker_harness.c - see broker_harness.h.
 */
#include "tests/support/broker_harness.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/testutil.h"

#define MAX_ARGS 32

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL) {
		return -errno;
	}
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -EIO;
}

static int can_connect(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int ok;

	if (fd < 0 || strlen(path) >= sizeof(addr.sun_path)) {
		if (fd >= 0) {
			close(fd);
		}
		return 0;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	ok = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
	close(fd);
	return ok;
}

/* Builds argv for shmbusd: path, fixed flags, then the extras. */
static void build_argv(const char *binary, const struct sbt_broker *b,
		       const char *const *extra, const char **argv)
{
	int n = 0;

	argv[n++] = binary;
	argv[n++] = "--foreground";
	argv[n++] = "--socket";
	argv[n++] = b->socket;
	if (b->config[0] != '\0') {
		argv[n++] = "--config";
		argv[n++] = b->config;
	}
	for (int i = 0; extra != NULL && extra[i] != NULL && n < MAX_ARGS - 1;
	     i++) {
		argv[n++] = extra[i];
	}
	argv[n] = NULL;
}

static void exec_with_stderr(const struct sbt_broker *b, const char **argv)
{
	int fd = open(b->log, O_WRONLY | O_CREAT | O_APPEND, 0600);

	if (b->rlimit_value != 0) {
		struct rlimit rl = {b->rlimit_value, b->rlimit_value};

		if (setrlimit(b->rlimit_resource, &rl) < 0) {
			_exit(126);
		}
	}
	if (b->run_uid != 0 &&
	    (setgroups(0, NULL) < 0 || setgid(b->run_gid) < 0 ||
	     setuid(b->run_uid) < 0)) {
		_exit(125);
	}

	/* A test that fails half-way must not leave its broker running.
	 * After setuid: a change of credentials clears this setting. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);

	if (fd >= 0) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	execv(argv[0], (char *const *)argv);
	_exit(127);
}

int sbt_broker_start_in(struct sbt_broker *b, const char *config_json,
			const char *const *extra_args)
{
	char binary[512];
	const char *argv[MAX_ARGS];
	int status;

	snprintf(b->socket, sizeof(b->socket), "%s/shmbusd.sock", b->dir);
	snprintf(b->log, sizeof(b->log), "%s/shmbusd.log", b->dir);
	b->config[0] = '\0';
	if (config_json != NULL) {
		snprintf(b->config, sizeof(b->config), "%s/shmbusd.json",
			 b->dir);
		if (write_file(b->config, config_json) < 0) {
			return -1000;
		}
	}
	snprintf(binary, sizeof(binary), "%s/shmbusd", sbt_bindir());
	build_argv(binary, b, extra_args, argv);
	b->pid = fork();
	if (b->pid < 0) {
		return -1000;
	}
	if (b->pid == 0) {
		exec_with_stderr(b, argv);
	}
	for (int i = 0; i < 1000; i++) {
		if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
			b->pid = 0;
			return WIFEXITED(status) ? -WEXITSTATUS(status)
						 : -128 - WTERMSIG(status);
		}
		if (can_connect(b->socket)) {
			return 0;
		}
		sbt_sleep_ms(10);
	}
	sbt_broker_signal_wait(b, SIGKILL);
	return -1001;
}

int sbt_broker_start(struct sbt_broker *b, const char *config_json,
		     const char *const *extra_args)
{
	memset(b, 0, sizeof(*b));
	b->dir = sbt_tempdir();
	return sbt_broker_start_in(b, config_json, extra_args);
}

int sbt_broker_start_rlimit(struct sbt_broker *b, const char *config_json,
			    const char *const *extra_args, int resource,
			    unsigned long value)
{
	memset(b, 0, sizeof(*b));
	b->dir = sbt_tempdir();
	b->rlimit_resource = resource;
	b->rlimit_value = value;
	return sbt_broker_start_in(b, config_json, extra_args);
}

int sbt_broker_start_as(struct sbt_broker *b, const char *config_json,
			const char *const *extra_args, uid_t uid, gid_t gid,
			int resource, unsigned long value)
{
	memset(b, 0, sizeof(*b));
	b->dir = sbt_tempdir();
	b->rlimit_resource = resource;
	b->rlimit_value = value;
	b->run_uid = uid;
	b->run_gid = gid;
	if (chown(b->dir, uid, gid) < 0 || chmod(b->dir, 0755) < 0) {
		return -1000;
	}
	return sbt_broker_start_in(b, config_json, extra_args);
}

int sbt_broker_signal_wait(struct sbt_broker *b, int sig)
{
	int status;

	if (b->pid <= 0) {
		return -1000;
	}
	kill(b->pid, sig);
	for (int i = 0; i < 1000; i++) {
		pid_t r = waitpid(b->pid, &status, WNOHANG);

		if (r == b->pid) {
			b->pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status)
						 : -WTERMSIG(status);
		}
		sbt_sleep_ms(10);
	}
	kill(b->pid, SIGKILL);
	status = sbt_wait(b->pid);
	b->pid = 0;
	return status == 0 ? -1001 : status;
}

int sbt_broker_stop(struct sbt_broker *b)
{
	int status = b->pid > 0 ? sbt_broker_signal_wait(b, SIGTERM) : 0;

	sbt_rmtree(b->dir);
	b->dir = NULL;
	return status;
}

int sbt_broker_log_contains(const struct sbt_broker *b, const char *text)
{
	char buf[65536];
	FILE *f = fopen(b->log, "r");
	size_t n;

	if (f == NULL) {
		return 0;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, text) != NULL;
}

int sbt_broker_log_wait(const struct sbt_broker *b, const char *text)
{
	for (int i = 0; i < 1000; i++) {
		if (sbt_broker_log_contains(b, text)) {
			return 1;
		}
		sbt_sleep_ms(10);
	}
	return 0;
}

int sbt_run_shmbusd(const char *const *argv, char *err, size_t errlen)
{
	char binary[512];
	const char *args[MAX_ARGS];
	int pipefd[2];
	pid_t pid;
	size_t used = 0;
	ssize_t n;
	int i;

	snprintf(binary, sizeof(binary), "%s/shmbusd", sbt_bindir());
	args[0] = binary;
	for (i = 1; argv[i] != NULL && i < MAX_ARGS - 1; i++) {
		args[i] = argv[i];
	}
	args[i] = NULL;
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		return -1000;
	}
	pid = fork();
	if (pid == 0) {
		dup2(pipefd[1], STDERR_FILENO);
		execv(binary, (char *const *)args);
		_exit(127);
	}
	close(pipefd[1]);
	while (used + 1 < errlen &&
	       (n = read(pipefd[0], err + used, errlen - 1 - used)) > 0) {
		used += (size_t)n;
	}
	if (errlen > 0) {
		err[used] = '\0';
	}
	close(pipefd[0]);
	return sbt_wait(pid);
}

void sbt_broker_up(struct sbt_broker *b, const char *config_json)
{
	int r = sbt_broker_start(b, config_json, NULL);

	ck_assert_msg(r == 0, "broker did not start (%d)", r);
}

void sbt_broker_up_shared(struct sbt_broker *b, const char *config_json)
{
	sbt_broker_up(b, config_json);
	ck_assert_int_eq(chmod(b->dir, 0755), 0);
}
