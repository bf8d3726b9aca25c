/*
 * runcmd.c - runs the command of `shmbus reply --exec` for one request:
 * the request goes to its standard input through a pipe and its standard
 * output comes back as the answer. The request is only ever data: the
 * command is started with execvp() from the argv the user gave, with no
 * shell, so nothing in a request can become part of a command line. The
 * run is bounded in time and in output, and a SIGINT or SIGTERM for us
 * stops it; in each case the command's whole process group is killed, so
 * that what it started does not outlive the request either.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli.h"

/* The pipes of one run; -1 once closed. */
struct run_fds {
	int in_w;   /* the command's standard input, our end */
	int out_r;  /* its standard output, our end */
	int exec_r; /* its exec() error, if any (closed on success) */
	int pidfd;  /* readable once it has exited */
};

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* In the child: the request pipe on 0, the output pipe on 1, the signal
 * state of a fresh process (ours blocks SIGINT and SIGTERM for a signalfd
 * and ignores SIGPIPE, and both would pass through exec), then exec. On
 * failure the errno goes to `exec_w`, which exec closes when it works.
 * If we are killed (SIGKILL: no chance to kill the group), the kernel
 * kills the command with us rather than leave it running unanswered. */
static void child(char *const argv[], pid_t parent, int in_r, int out_w,
		  int exec_w)
{
	sigset_t none;
	int err;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent) {
		_exit(127); /* we died before the line above */
	}
	setpgid(0, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (dup2(in_r, STDIN_FILENO) >= 0 && dup2(out_w, STDOUT_FILENO) >= 0) {
		execvp(argv[0], argv);
	}
	err = errno;
	if (write(exec_w, &err, sizeof(err)) < 0) {
		/* nothing more to say: the parent sees status 127 */
	}
	_exit(127);
}

/* Starts the command. Returns its pid with `f` filled, or -errno. */
static pid_t start(char *const argv[], struct run_fds *f)
{
	int in[2], out[2], ex[2];
	pid_t parent = getpid(), pid;

	if (pipe2(in, O_CLOEXEC) < 0) {
		return -errno;
	}
	if (pipe2(out, O_CLOEXEC) < 0) {
		int err = errno;

		close(in[0]);
		close(in[1]);
		return -err;
	}
	if (pipe2(ex, O_CLOEXEC) < 0) {
		int err = errno;

		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		return -err;
	}
	pid = fork();
	if (pid == 0) {
		child(argv, parent, in[0], out[1], ex[1]);
	}
	close(in[0]);
	close(out[1]);
	close(ex[1]);
	f->in_w = in[1];
	f->out_r = out[0];
	f->exec_r = ex[0];
	f->pidfd = -1;
	if (pid < 0) {
		int err = errno;

		close_fd(&f->in_w);
		close_fd(&f->out_r);
		close_fd(&f->exec_r);
		return -err;
	}
	setpgid(pid, pid); /* also here: no window before the child's own */
	fcntl(f->in_w, F_SETFL, O_NONBLOCK);
	fcntl(f->out_r, F_SETFL, O_NONBLOCK);
	f->pidfd = pidfd_open(pid, 0);
	return pid;
}

static long ms_until(const struct timespec *deadline)
{
	struct timespec now;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long)(deadline->tv_sec - now.tv_sec) * 1000L +
	     (deadline->tv_nsec - now.tv_nsec) / 1000000L;
	return ms < 0 ? 0 : ms;
}

/* Writes what the pipe takes of the rest of the request; closes our end
 * when all is written or the command stopped reading (EPIPE: it need not
 * read everything). */
static void feed(struct run_fds *f, const char *in, size_t in_len,
		 size_t *written)
{
	ssize_t n = in_len > *written
			? write(f->in_w, in + *written, in_len - *written)
			: 0;

	if (n > 0) {
		*written += (size_t)n;
	}
	if (*written == in_len ||
	    (n < 0 && errno != EAGAIN && errno != EINTR)) {
		close_fd(&f->in_w);
	}
}

/* Reads what the command wrote. Returns 1 while it may write more, 0 at
 * the end of its output, -1 when the output went over `cap`. */
static int drain(struct run_fds *f, char *out, size_t cap, size_t *len)
{
	char chunk[16384];
	ssize_t n = read(f->out_r, chunk, sizeof(chunk));

	if (n < 0) {
		return errno == EAGAIN || errno == EINTR ? 1 : 0;
	}
	if (n == 0) {
		close_fd(&f->out_r);
		return 0;
	}
	if ((size_t)n > cap - *len) {
		return -1;
	}
	memcpy(out + *len, chunk, (size_t)n);
	*len += (size_t)n;
	return 1;
}

/* Waits for the command and fills res->end and res->status from how it
 * ended, unless we killed it (`killed` says why). */
static void reap(pid_t pid, enum sb_cli_cmd_end killed, bool was_killed,
		 struct sb_cli_cmd_result *res)
{
	int status = 0;

	while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
	}
	if (was_killed) {
		res->end = killed;
	} else if (WIFSIGNALED(status)) {
		res->end = SB_CLI_CMD_SIGNALED;
		res->status = WTERMSIG(status);
	} else {
		res->end = SB_CLI_CMD_EXITED;
		res->status = WEXITSTATUS(status);
	}
}

/* 1 when the process behind `pidfd` has exited (or we cannot tell: then
 * the end of its output is taken as its end). */
static bool exited(int pidfd)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};

	return pidfd < 0 || poll(&p, 1, 0) == 1;
}

int sb_cli_run_cmd(char *const argv[], const void *in, size_t in_len, void *out,
		   size_t out_cap, int timeout_ms, int sigfd,
		   struct sb_cli_cmd_result *res)
{
	struct run_fds f;
	struct timespec deadline;
	enum sb_cli_cmd_end why = SB_CLI_CMD_TIMED_OUT;
	bool kill_it = false;
	size_t written = 0;
	int err = 0;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pid = start(argv, &f);
	if (pid < 0) {
		return (int)pid;
	}
	/* exec() worked when the error pipe closes with nothing in it. */
	if (sb_cli_read_full(f.exec_r, &err, sizeof(err)) ==
	    (ssize_t)sizeof(err)) {
		res->err = err;
		why = SB_CLI_CMD_EXEC_FAILED;
		kill_it = true;
	}
	close_fd(&f.exec_r);
	while (!kill_it && (f.out_r >= 0 || !exited(f.pidfd))) {
		struct pollfd p[4] = {
		    {.fd = f.in_w, .events = POLLOUT},
		    {.fd = f.out_r, .events = POLLIN},
		    {.fd = f.out_r < 0 ? f.pidfd : -1, .events = POLLIN},
		    {.fd = sigfd, .events = POLLIN},
		};
		long wait = ms_until(&deadline);
		int r;

		if (wait == 0) {
			break; /* timed out: kill_it with why as set */
		}
		r = poll(p, 4, (int)wait);
		if (r < 0 && errno != EINTR) {
			break;
		}
		if (p[3].revents != 0) {
			why = SB_CLI_CMD_STOPPED;
			kill_it = true;
			break;
		}
		if (p[0].revents != 0) {
			feed(&f, in, in_len, &written);
		}
		if (p[1].revents != 0 &&
		    drain(&f, out, out_cap, &res->out_len) < 0) {
			why = SB_CLI_CMD_TOO_LONG;
			kill_it = true;
		}
	}
	if (f.out_r >= 0 || !exited(f.pidfd)) {
		kill_it = true; /* the deadline (or poll failed) */
	}
	if (kill_it) {
		kill(-pid, SIGKILL);
	}
	close_fd(&f.in_w);
	close_fd(&f.out_r);
	close_fd(&f.pidfd);
	reap(pid, why, kill_it, res);
	return 0;
}
