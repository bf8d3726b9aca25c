/*
 * check_sockdir.c - the socket's directory is the broker's, and the client
 * trusts only a broker of a user it trusts. The broker refuses a socket
 * directory that another uid owns or that group or others may write, and
 * never changes the mode of whatever is at the socket path after bind (a
 * symlink swapped in right after bind is caught by tracing the broker with
 * ptrace: the swap lands exactly between bind and what follows it). Tests
 * run as root.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/broker_harness.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define NOBODY 65534 /* plays the other user */

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static char *join_path(const char *dir, const char *name)
{
	char *p = NULL;

	ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
	return p;
}

/* ---- the broker: whose directory ----------------------------------------- */

/*
 * Starts a broker whose socket lives in `dir` (the harness puts its log
 * there too). A broker that starts is stopped again and reported as 0;
 * one that refuses reports its negative exit status. *found (if `found`
 * is not NULL) says whether its log contains `expect`.
 */
static int start_in(const char *dir, const char *expect, int *found)
{
	struct sbt_broker b;
	int r;

	memset(&b, 0, sizeof(b));
	b.dir = (char *)dir;
	r = sbt_broker_start_in(&b, NULL, NULL);
	if (found != NULL) {
		*found = sbt_broker_log_contains(&b, expect);
	}
	if (r == 0) {
		sbt_broker_signal_wait(&b, SIGTERM);
	}
	unlink(b.log);
	return r;
}

/* A fresh directory `base`/sock with owner `uid` and mode `mode`. */
static char *make_dir(const char *base, uid_t uid, mode_t mode)
{
	char *dir = join_path(base, "sock");

	ck_assert_int_eq(mkdir(dir, 0700), 0);
	ck_assert_int_eq(chown(dir, uid, uid), 0);
	ck_assert_int_eq(chmod(dir, mode), 0);
	return dir;
}

START_TEST(a_directory_of_another_uid_is_refused)
{
	static const mode_t modes[] = {0777, 0700};
	char *base = sbt_tempdir();

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		char *dir = make_dir(base, NOBODY, modes[i]);
		char expect[512];
		int found = 0;
		int r;

		snprintf(expect, sizeof(expect),
			 "socket directory %s is owned by uid %d (mode %04o), "
			 "not by this broker's uid 0: its owner could replace "
			 "the socket. Remove it (the broker then creates it), "
			 "chown it to uid 0, or choose another socket path",
			 dir, NOBODY, (unsigned)modes[i]);
		r = start_in(dir, expect, &found);
		ck_assert_msg(r == -1, "mode %04o: broker start gave %d",
			      (unsigned)modes[i], r);
		ck_assert_msg(found, "mode %04o: no clear message",
			      (unsigned)modes[i]);
		rmdir(dir);
		free(dir);
	}
	sbt_rmtree(base);
}
END_TEST

START_TEST(a_directory_others_may_write_is_refused)
{
	static const mode_t bad[] = {0770, 0757, 0702, 01777};
	static const mode_t good[] = {0700, 0750, 0755};
	char *base = sbt_tempdir();

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *dir = make_dir(base, 0, bad[i]);
		char expect[512];
		int found = 0;
		int r;

		snprintf(expect, sizeof(expect),
			 "socket directory %s (owner uid 0) has mode %04o: "
			 "group or others may write it and replace the "
			 "socket. Run 'chmod go-w %s', or choose another "
			 "socket path",
			 dir, (unsigned)bad[i], dir);
		r = start_in(dir, expect, &found);
		ck_assert_msg(r == -1, "mode %04o: broker start gave %d",
			      (unsigned)bad[i], r);
		ck_assert_msg(found, "mode %04o: no clear message",
			      (unsigned)bad[i]);
		rmdir(dir);
		free(dir);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char *dir = make_dir(base, 0, good[i]);

		ck_assert_msg(start_in(dir, "", NULL) == 0,
			      "mode %04o: the broker's own directory refused",
			      (unsigned)good[i]);
		rmdir(dir);
		free(dir);
	}
	sbt_rmtree(base);
}
END_TEST

/* The socket gets socket.mode whatever the umask the broker starts with. */
START_TEST(the_socket_mode_does_not_depend_on_the_umask)
{
	static const struct {
		mode_t umask;
		const char *config;
		mode_t want;
	} cases[] = {
	    {077, "{\"socket\": {\"mode\": \"0666\"}}", 0666},
	    {0, "{\"socket\": {\"mode\": \"0600\"}}", 0600},
	    {022, "{\"socket\": {\"mode\": \"0660\"}}", 0660},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sbt_broker b;
		struct stat st;
		mode_t old = umask(cases[i].umask);
		int r = sbt_broker_start(&b, cases[i].config, NULL);

		umask(old);
		ck_assert_int_eq(r, 0);
		ck_assert_int_eq(lstat(b.socket, &st), 0);
		ck_assert_msg(S_ISSOCK(st.st_mode) &&
				  (st.st_mode & 07777) == cases[i].want,
			      "umask %03o: socket mode %04o, want %04o",
			      (unsigned)cases[i].umask,
			      (unsigned)(st.st_mode & 07777),
			      (unsigned)cases[i].want);
		ck_assert_int_eq(sbt_broker_stop(&b), 0);
	}
}
END_TEST

/* ---- the broker: a symlink swapped in right after bind ------------------- */

/*
 * Runs the traced broker up to the return of its first successful bind.
 * Returns 0 with the broker stopped there, or -1 if it exited first.
 */
static int run_to_bind_return(pid_t pid)
{
	int status, sig = 0, in_bind = 0;

	for (;;) {
		struct __ptrace_syscall_info info;

		if (ptrace(PTRACE_SYSCALL, pid, 0, sig) < 0 ||
		    waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status)) {
			return -1;
		}
		sig = 0;
		if (WSTOPSIG(status) != (SIGTRAP | 0x80)) {
			/* A signal: pass it on; but a SIGTRAP is ptrace's
			 * own (an exec), not the broker's. */
			sig =
			    WSTOPSIG(status) == SIGTRAP ? 0 : WSTOPSIG(status);
			continue;
		}
		if (ptrace(PTRACE_GET_SYSCALL_INFO, pid, sizeof(info), &info) <
		    0) {
			return -1;
		}
		if (info.op == PTRACE_SYSCALL_INFO_ENTRY) {
			in_bind = info.entry.nr == SYS_bind;
		} else if (info.op == PTRACE_SYSCALL_INFO_EXIT && in_bind) {
			if (info.exit.rval == 0) {
				return 0;
			}
			in_bind = 0;
		}
	}
}

/* Starts shmbusd traced from its exec on; returns its pid. */
static pid_t spawn_traced(const char *socket, const char *config,
			  const char *log)
{
	char binary[512];
	pid_t pid;
	int status;

	snprintf(binary, sizeof(binary), "%s/shmbusd", sbt_bindir());
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0 ||
		    ptrace(PTRACE_TRACEME, 0, 0, 0) < 0) {
			_exit(126);
		}
		execl(binary, binary, "--foreground", "--socket", socket,
		      "--config", config, (char *)NULL);
		_exit(127);
	}
	/* The exec stops the child with SIGTRAP. */
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSTOPPED(status) && WSTOPSIG(status) == SIGTRAP);
	ck_assert_int_eq(ptrace(PTRACE_SETOPTIONS, pid, 0,
				PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL),
			 0);
	return pid;
}

/* Waits (bounded) until the broker exits or says it listens. */
static void await_outcome(pid_t pid, const char *log, int *exited)
{
	struct sbt_broker view;
	int status;

	memset(&view, 0, sizeof(view));
	snprintf(view.log, sizeof(view.log), "%s", log);
	*exited = 0;
	for (int i = 0; i < 1000; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			*exited = 1;
			return;
		}
		if (sbt_broker_log_contains(&view, "listening on")) {
			return;
		}
		sleep_ms(10);
	}
}

START_TEST(a_symlink_swapped_in_after_bind_is_not_followed)
{
	char *base = sbt_tempdir();
	char *socket = join_path(base, "shmbusd.sock");
	char *moved = join_path(base, "moved.sock");
	char *victim = join_path(base, "victim");
	char *config = join_path(base, "shmbusd.json");
	char *log = join_path(base, "shmbusd.log");
	struct stat st;
	FILE *f = fopen(config, "w");
	pid_t pid;
	int fd, exited;

	ck_assert_ptr_nonnull(f);
	fputs("{\"socket\": {\"mode\": \"0666\"}}", f);
	ck_assert_int_eq(fclose(f), 0);
	fd = open(victim, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);

	pid = spawn_traced(socket, config, log);
	ck_assert_int_eq(run_to_bind_return(pid), 0);
	/* What an attacker with a foothold at the path would do now. */
	ck_assert_int_eq(rename(socket, moved), 0);
	ck_assert_int_eq(symlink(victim, socket), 0);
	ck_assert_int_eq(ptrace(PTRACE_DETACH, pid, 0, 0), 0);
	await_outcome(pid, log, &exited);
	if (!exited) {
		kill(pid, SIGKILL);
		sbt_wait(pid);
	}

	ck_assert_int_eq(stat(victim, &st), 0);
	ck_assert_msg((st.st_mode & 07777) == 0600,
		      "the broker changed the symlink's target to %04o",
		      (unsigned)(st.st_mode & 07777));
	ck_assert_msg(exited, "the broker went on with a symlink at its "
			      "socket path");
	ck_assert_int_eq(lstat(socket, &st), 0);
	ck_assert(S_ISLNK(st.st_mode)); /* not the broker's to remove */
	free(socket);
	free(moved);
	free(victim);
	free(config);
	free(log);
	sbt_rmtree(base);
}
END_TEST

Suite *sockdir_suite(void)
{
	Suite *s = suite_create("sockdir");
	TCase *tc = tcase_create("broker");

	tcase_add_test(tc, a_directory_of_another_uid_is_refused);
	tcase_add_test(tc, a_directory_others_may_write_is_refused);
	tcase_add_test(tc, the_socket_mode_does_not_depend_on_the_umask);
	tcase_add_test(tc, a_symlink_swapped_in_after_bind_is_not_followed);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}
