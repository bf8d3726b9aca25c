/*
 * check_sockdir.c - the socket's directory is the broker's, and the client
 * trusts only a broker of a user it trusts. The broker refuses a socket
 * directory that another uid owns or that group or others may write, and
 * never changes the mode of whatever is at the socket path after bind (a
 * symlink swapped in right after bind is caught by tracing the broker with
 * ptrace: the swap lands exactly between bind and what follows it). The
 * client refuses a listener of an untrusted uid (SO_PEERCRED), unless
 * SHMBUS_BROKER_USER names it, and refuses memory that is unsealed or owned
 * by another uid, from a fake broker that grants it. A socket given to a
 * group (--socket-mode 0660 --socket-group, as shmbusd.service starts the
 * broker) admits that group's members and nobody else. Tests run as root;
 * other users are forked children that switch ids.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "include/shmbus/shmbus.h"
#include "ring/ring.h"
#include "tests/suites.h"
#include "tests/support/broker_harness.h"
#include "tests/support/rawclient.h"
#include "tests/support/testutil.h"

#define NOBODY 65534 /* plays the other user: a squatter, a fake broker */
#define OTHER  65533 /* a client that is neither root nor NOBODY */

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

/* ---- the broker: a socket for a group ----------------------------------- */

#define BUS_USER  2100 /* the broker's own user, as shmbusd.service's */
#define BUS_GROUP 2101 /* its group, whose members may connect */

struct peer {
	const char *name;
	uid_t uid;
	gid_t gid;
	gid_t supp; /* one supplementary group, when n_supp is 1 */
	int n_supp;
};

static const struct peer MEMBER = {"uid 1002 in group 2101", 1002, 1002,
				   BUS_GROUP, 1};
static const struct peer OUTSIDER = {"uid 1004, not in group 2101", 1004, 1004,
				     7777, 1};

/*
 * In a child that became `p`: shmbus_connect() to `path` (the public API,
 * broker trust included) with SHMBUS_BROKER_USER = `user` (NULL: unset),
 * and a plain connect(2). Returns 0 when they give `want_api` and
 * `want_connect` (0 or -errno), else a nonzero step.
 */
static int connect_as(const char *path, const struct peer *p, const char *user,
		      int want_api, int want_connect)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		shmbus *bus = NULL;
		struct sbt_rc c;
		int r;

		if (setgroups((size_t)p->n_supp, &p->supp) < 0 ||
		    setgid(p->gid) < 0 || setuid(p->uid) < 0) {
			_exit(99);
		}
		if (user != NULL) {
			setenv("SHMBUS_BROKER_USER", user, 1);
		} else {
			unsetenv("SHMBUS_BROKER_USER");
		}
		r = shmbus_connect(path, "group", &bus);
		if (r == 0) {
			shmbus_close(bus);
		}
		if (r != want_api) {
			_exit(10);
		}
		r = sbt_rc_connect(&c, path, 1000);
		if (r == 0) {
			sbt_rc_close(&c);
		}
		_exit(r == want_connect ? 0 : 20);
	}
	return sbt_wait(pid);
}

/* Starts shmbusd as `uid`/`gid` with `args`, its socket in a directory of
 * mode 0750 owned by `uid` and group `dir_gid` (what RuntimeDirectory=
 * gives the unit). Returns as sbt_broker_start_in(). */
static int start_for_group(struct sbt_broker *b, uid_t uid, gid_t gid,
			   gid_t dir_gid, const char *const *args)
{
	memset(b, 0, sizeof(*b));
	b->dir = sbt_tempdir();
	b->run_uid = uid;
	b->run_gid = gid;
	if (chown(b->dir, uid, dir_gid) < 0 || chmod(b->dir, 0750) < 0) {
		return -1000;
	}
	return sbt_broker_start_in(b, NULL, args);
}

static void expect_socket(const struct sbt_broker *b, uid_t uid, gid_t gid,
			  mode_t mode)
{
	struct stat st;

	ck_assert_int_eq(lstat(b->socket, &st), 0);
	ck_assert_msg(S_ISSOCK(st.st_mode) && st.st_uid == uid &&
			  st.st_gid == gid && (st.st_mode & 07777) == mode,
		      "socket uid %lu gid %lu mode %04o, want %lu %lu %04o",
		      (unsigned long)st.st_uid, (unsigned long)st.st_gid,
		      (unsigned)(st.st_mode & 07777), (unsigned long)uid,
		      (unsigned long)gid, (unsigned)mode);
}

/* As shmbusd.service runs it: its own user and group, the socket 0660 for
 * that group. A member connects once it trusts the broker's user; an
 * outsider cannot even connect(2). */
START_TEST(a_group_socket_admits_its_members_only)
{
	static const char *const args[] = {"--socket-mode", "0660",
					   "--socket-group", "2101", NULL};
	struct sbt_broker b;

	ck_assert_int_eq(
	    start_for_group(&b, BUS_USER, BUS_GROUP, BUS_GROUP, args), 0);
	expect_socket(&b, BUS_USER, BUS_GROUP, 0660);
	ck_assert(sbt_broker_log_wait(&b, "(mode 0660, group 2101)"));
	ck_assert_int_eq(connect_as(b.socket, &MEMBER, "2100", 0, 0), 0);
	/* Without SHMBUS_BROKER_USER the client refuses another uid's
	 * broker, though the kernel let it connect. */
	ck_assert_int_eq(connect_as(b.socket, &MEMBER, NULL, -EPERM, 0), 0);
	ck_assert_int_eq(
	    connect_as(b.socket, &OUTSIDER, "2100", -EACCES, -EACCES), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* A root broker gives the socket the group it is told (chown of the bound
 * file, never through a symlink); a broker that is not in the group may
 * not, and says so instead of starting. */
START_TEST(the_socket_group_is_set_or_the_broker_refuses)
{
	static const char *const args[] = {"--socket-mode", "0660",
					   "--socket-group", "2101", NULL};
	struct sbt_broker b;

	ck_assert_int_eq(start_for_group(&b, 0, 0, BUS_GROUP, args), 0);
	expect_socket(&b, 0, BUS_GROUP, 0660);
	ck_assert_int_eq(connect_as(b.socket, &MEMBER, NULL, 0, 0), 0);
	ck_assert_int_eq(
	    connect_as(b.socket, &OUTSIDER, NULL, -EACCES, -EACCES), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);

	ck_assert_int_eq(
	    start_for_group(&b, BUS_USER, BUS_USER, BUS_USER, args), -1);
	ck_assert(sbt_broker_log_contains(&b, "only give the socket a group "
					      "it is a member of"));
	ck_assert_int_eq(access(b.socket, F_OK), -1);
	sbt_rmtree(b.dir);
}
END_TEST

/* Bad --socket-mode and --socket-group values are usage errors (64)
 * naming the flag. */
START_TEST(bad_socket_flags_are_usage_errors)
{
	static const struct {
		const char *flag, *value;
	} cases[] = {
	    {"--socket-mode", "0800"},
	    {"--socket-mode", "1777"},
	    {"--socket-mode", "rw"},
	    {"--socket-mode", ""},
	    {"--socket-group", "no-such-group-shmbus"},
	    {"--socket-group", "4294967295"},
	    {"--socket-group", "12x"},
	    {"--socket-group", ""},
	};
	char err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *argv[] = {"shmbusd",	"--socket",
				      "/nonexistent/s", cases[i].flag,
				      cases[i].value,	NULL};

		ck_assert_int_eq(sbt_run_shmbusd(argv, err, sizeof(err)), 64);
		ck_assert_msg(strstr(err, cases[i].flag) != NULL &&
				  strstr(err, "see shmbusd --help") != NULL,
			      "%s %s: %s", cases[i].flag, cases[i].value, err);
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
		sbt_sleep_ms(10);
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

/* ---- a fake broker ------------------------------------------------------- */

/* What the fake hands out for pub_open. */
enum fake_memory {
	MEM_SEALED,   /* sealed memfds of the fake's own uid: acceptable */
	MEM_UNSEALED, /* the data memfd can still shrink */
	MEM_FOREIGN,  /* sealed, but the data memfd is owned by NOBODY */
};

struct fake {
	pid_t pid;
	int report; /* read end: 'F' a frame with descriptors, 'E' a hang-up */
};

/* Reads exactly `len` bytes, closing and counting in *nfds the
 * descriptors that come along. 0, or -1 at the end of the stream. */
static int read_full(int fd, void *buf, size_t len, int *nfds)
{
	char *p = buf;

	while (len > 0) {
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(int) * 8)];
		} control;
		struct iovec iov = {.iov_base = p, .iov_len = len};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = control.buf,
				    .msg_controllen = sizeof(control.buf)};
		ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);

		if (n <= 0) {
			return -1;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL;
		     c = CMSG_NXTHDR(&mh, c)) {
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (size_t i = 0; i < k; i++) {
				int got;

				memcpy(&got, CMSG_DATA(c) + i * sizeof(int),
				       sizeof(got));
				close(got);
				(*nfds)++;
			}
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Sends one frame holding `json`, with `nfds` descriptors. */
static int send_frame(int fd, const char *json, const int *fds, int nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 2)];
	} control;
	uint32_t len = (uint32_t)strlen(json);
	unsigned char hdr[4] = {(unsigned char)(len >> 24),
				(unsigned char)(len >> 16),
				(unsigned char)(len >> 8), (unsigned char)len};
	struct iovec iov[2] = {{hdr, 4}, {(void *)json, len}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};

	if (nfds > 0) {
		struct cmsghdr *c;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	return sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)(4 + len) ? 0 : -1;
}

/* A memfd of `size` bytes, sealed against size changes if `seal`. */
static int fake_memfd(uint64_t size, int seal)
{
	int fd = memfd_create("fake", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0 ||
	    (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)) {
		_exit(90);
	}
	return fd;
}

/* A formatted ring in two memfds, as `how` says: a ring the old client
 * accepts and maps, so that only the new checks tell it apart. */
static void fake_ring(enum fake_memory how, int fds[2], uint64_t *data_size,
		      uint64_t *ctl_size)
{
	const struct sb_ring_config cfg = {4096,
					   1024,
					   4,
					   SB_RING_BROADCAST,
					   SB_RING_OVERWRITE,
					   0,
					   SB_RING_SLOTS_SEGMENTS};
	void *data, *ctl;

	if (sb_ring_layout(&cfg, data_size, ctl_size) < 0) {
		_exit(91);
	}
	if (how == MEM_FOREIGN) {
		setfsuid(NOBODY); /* a memfd belongs to its creator's fsuid */
	}
	fds[0] = fake_memfd(*data_size, how != MEM_UNSEALED);
	setfsuid(geteuid());
	fds[1] = fake_memfd(*ctl_size, 1);
	data = mmap(NULL, *data_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		    fds[0], 0);
	ctl = mmap(NULL, *ctl_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1],
		   0);
	if (data == MAP_FAILED || ctl == MAP_FAILED ||
	    sb_ring_format(data, *data_size, ctl, *ctl_size, &cfg) < 0) {
		_exit(92);
	}
	munmap(data, *data_size);
	munmap(ctl, *ctl_size);
}

/* Answers one request: hello, pub_open with the fake's memory, and an
 * empty result for anything else (close). */
static int fake_answer(int fd, const cJSON *req, enum fake_memory how)
{
	const cJSON *op = cJSON_GetObjectItemCaseSensitive(req, "op");
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(req, "id");
	long long n = cJSON_IsNumber(id) ? (long long)id->valuedouble : 0;
	char reply[512];
	int fds[2], r;
	uint64_t data_size, ctl_size;

	if (!cJSON_IsString(op)) {
		return -1;
	}
	if (strcmp(op->valuestring, "hello") == 0) {
		snprintf(reply, sizeof(reply),
			 "{\"id\":%lld,\"result\":{\"version\":1,\"broker\":"
			 "\"fake\",\"client\":1,\"limits\":{\"max_frame\":"
			 "65536}}}",
			 n);
		return send_frame(fd, reply, NULL, 0);
	}
	if (strcmp(op->valuestring, "pub_open") != 0) {
		snprintf(reply, sizeof(reply), "{\"id\":%lld,\"result\":{}}",
			 n);
		return id == NULL ? 0 : send_frame(fd, reply, NULL, 0);
	}
	fake_ring(how, fds, &data_size, &ctl_size);
	snprintf(reply, sizeof(reply),
		 "{\"id\":%lld,\"result\":{\"handle\":1,\"data_size\":%llu,"
		 "\"ctl_size\":%llu,\"fds\":2}}",
		 n, (unsigned long long)data_size,
		 (unsigned long long)ctl_size);
	r = send_frame(fd, reply, fds, 2);
	close(fds[0]);
	close(fds[1]);
	return r;
}

/* Serves one connection until it ends, reporting to `report`. */
static void fake_serve(int fd, enum fake_memory how, int report)
{
	for (;;) {
		unsigned char hdr[4];
		char *payload;
		cJSON *req;
		int nfds = 0;
		uint32_t len;

		if (read_full(fd, hdr, 4, &nfds) < 0) {
			break;
		}
		len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
		      (uint32_t)hdr[2] << 8 | hdr[3];
		payload = calloc(1, (size_t)len + 1);
		if (len == 0 || len > 65536 || payload == NULL ||
		    read_full(fd, payload, len, &nfds) < 0) {
			free(payload);
			break;
		}
		if (nfds > 0 && write(report, "F", 1) != 1) {
			_exit(93);
		}
		req = cJSON_Parse(payload);
		free(payload);
		if (req == NULL || fake_answer(fd, req, how) < 0) {
			cJSON_Delete(req);
			break;
		}
		cJSON_Delete(req);
	}
	close(fd);
	if (write(report, "E", 1) != 1) {
		_exit(93);
	}
}

/* Starts a fake broker as `uid` listening on `path` (socket mode 0777). */
static struct fake fake_start(const char *path, uid_t uid, enum fake_memory how)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int ready[2], report[2];
	struct fake f;
	char c;

	ck_assert_int_lt(strlen(path), sizeof(addr.sun_path));
	memcpy(addr.sun_path, path, strlen(path) + 1);
	ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(report, O_CLOEXEC), 0);
	f.pid = fork();
	ck_assert_int_ge(f.pid, 0);
	if (f.pid == 0) {
		int lfd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(ready[0]);
		close(report[0]);
		if (uid != 0) {
			if (sbt_become(uid) < 0) {
				_exit(99);
			}
		}
		umask(0);
		lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (lfd < 0 ||
		    bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
		    listen(lfd, 8) < 0 || write(ready[1], "R", 1) != 1) {
			_exit(94);
		}
		for (;;) {
			int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

			if (fd >= 0) {
				fake_serve(fd, how, report[1]);
			}
		}
	}
	close(ready[1]);
	close(report[1]);
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	close(ready[0]);
	f.report = report[0];
	return f;
}

static void fake_stop(struct fake *f)
{
	kill(f->pid, SIGKILL);
	sbt_wait(f->pid);
	close(f->report);
}

/* ---- the client: whom it takes for its broker --------------------------- */

/* As OTHER: connects to `path` with SHMBUS_BROKER_USER = `user` (NULL:
 * unset) and exits with 0 when the result is `want`. */
static int connect_as_other(const char *path, const char *user, int want)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		shmbus *bus = NULL;
		int r;

		if (sbt_become(OTHER) < 0) {
			_exit(99);
		}
		if (user != NULL) {
			setenv("SHMBUS_BROKER_USER", user, 1);
		} else {
			unsetenv("SHMBUS_BROKER_USER");
		}
		r = shmbus_connect(path, "client", &bus);
		if (r == 0) {
			shmbus_close(bus);
		}
		_exit(r == want ? 0 : 100 - r);
	}
	return sbt_wait(pid);
}

START_TEST(a_broker_of_an_untrusted_uid_is_refused)
{
	char *base = sbt_tempdir();
	char *dir = make_dir(base, NOBODY, 0755);
	char *path = join_path(dir, "shmbusd.sock");
	struct fake f;

	ck_assert_int_eq(chmod(base, 0755), 0);
	f = fake_start(path, NOBODY, MEM_SEALED);
	/* Neither OTHER's own uid nor root: refused before hello. */
	ck_assert_int_eq(connect_as_other(path, NULL, -EPERM), 0);
	ck_assert_int_eq(connect_as_other(path, "65533", -EPERM), 0);
	ck_assert_int_eq(connect_as_other(path, "no-such-user-shmbus", -EPERM),
			 0);
	/* Named by the environment, as a uid or a user name: accepted. */
	ck_assert_int_eq(connect_as_other(path, "65534", 0), 0);
	ck_assert_int_eq(connect_as_other(path, "nobody", 0), 0);
	fake_stop(&f);
	free(path);
	free(dir);
	sbt_rmtree(base);
}
END_TEST

/* Runs `shmbus --socket PATH ls` with SHMBUS_BROKER_USER = `user`;
 * returns its exit status with its stderr in `err`. */
static int cli_ls(const char *path, const char *user, char *err, size_t len)
{
	char binary[512];
	int p[2];
	size_t used = 0;
	ssize_t n;
	pid_t pid;

	snprintf(binary, sizeof(binary), "%s/shmbus", sbt_bindir());
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(p[1], STDERR_FILENO);
		setenv("SHMBUS_BROKER_USER", user, 1);
		execl(binary, binary, "--socket", path, "ls", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while (used + 1 < len &&
	       (n = read(p[0], err + used, len - 1 - used)) > 0) {
		used += (size_t)n;
	}
	err[used] = '\0';
	close(p[0]);
	return sbt_wait(pid);
}

/* Root trusts itself only: a listener of another uid is refused too, and
 * the command-line tool says who listens and how to trust it. */
START_TEST(root_refuses_a_broker_of_another_uid)
{
	char *base = sbt_tempdir();
	char *dir = make_dir(base, NOBODY, 0755);
	char *path = join_path(dir, "shmbusd.sock");
	struct fake f;
	shmbus *bus = NULL;
	char err[1024], want[1024];

	ck_assert_int_eq(chmod(base, 0755), 0);
	f = fake_start(path, NOBODY, MEM_SEALED);
	unsetenv("SHMBUS_BROKER_USER");
	ck_assert_int_eq(shmbus_connect(path, "root", &bus), -EPERM);
	ck_assert_ptr_null(bus);
	snprintf(want, sizeof(want),
		 "shmbus: ls: %s is served by uid 65534, which this client "
		 "does not trust as its broker (only its own uid 0, root, and "
		 "$SHMBUS_BROKER_USER); if that is your broker, set "
		 "SHMBUS_BROKER_USER=65534\n",
		 path);
	ck_assert_int_eq(cli_ls(path, "", err, sizeof(err)), 5);
	ck_assert_str_eq(err, want);
	snprintf(want, sizeof(want),
		 "shmbus: ls: %s is served by uid 65534, which this client "
		 "does not trust as its broker (only its own uid 0, root, and "
		 "$SHMBUS_BROKER_USER); SHMBUS_BROKER_USER=\"nobody-at-all\" "
		 "names no user\n",
		 path);
	ck_assert_int_eq(cli_ls(path, "nobody-at-all", err, sizeof(err)), 5);
	ck_assert_str_eq(err, want);
	fake_stop(&f);
	free(path);
	free(dir);
	sbt_rmtree(base);
}
END_TEST

/*
 * The attack this guards against: the broker goes away, a squatter who can
 * write the socket's directory listens in its place, and every client that
 * reconnects hands it its topics' writable memory (topic_adopt). The
 * client's reconnection must not say a word to it.
 */
START_TEST(a_reconnection_hands_nothing_to_a_squatter)
{
	struct sbt_broker b;
	shmbus *bus;
	shmbus_pub *pub;
	struct fake f;
	char what;

	ck_assert_int_eq(sbt_broker_start(&b, NULL, NULL), 0);
	ck_assert_int_eq(shmbus_connect(b.socket, "victim", &bus), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, "held", &pub), 0);
	ck_assert_int_eq(sbt_broker_signal_wait(&b, SIGTERM), 0);
	/* A directory the squatter may write (what the broker now refuses
	 * to listen in; here the real broker is already gone). */
	ck_assert_int_eq(chmod(b.dir, 0777), 0);
	f = fake_start(b.socket, NOBODY, MEM_SEALED);
	/* The watcher reconnects on its own; the first thing the squatter
	 * learns is either descriptors ('F') or a hang-up ('E'). */
	ck_assert_int_eq(read(f.report, &what, 1), 1);
	ck_assert_msg(what == 'E', "the squatter received descriptors");
	fake_stop(&f);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- the client: whose memory it maps ----------------------------------- */

static int open_from_fake(enum fake_memory how)
{
	char *base = sbt_tempdir();
	char *path = join_path(base, "fake.sock");
	struct fake f = fake_start(path, 0, how);
	shmbus *bus;
	shmbus_pub *pub = NULL;
	int r;

	ck_assert_int_eq(shmbus_connect(path, "client", &bus), 0);
	r = shmbus_pub_open(bus, "t", &pub);
	if (r == 0) {
		ck_assert_int_eq(shmbus_publish(pub, "x", 1, 0), 0);
		ck_assert_int_eq(shmbus_pub_close(pub), 0);
	} else {
		ck_assert_ptr_null(pub);
	}
	ck_assert_int_eq(shmbus_close(bus), 0);
	fake_stop(&f);
	free(path);
	sbt_rmtree(base);
	return r;
}

START_TEST(memory_must_be_sealed_and_the_brokers)
{
	/* The fake is good enough to be believed... */
	ck_assert_int_eq(open_from_fake(MEM_SEALED), 0);
	/* ...but not with memory that can shrink under our mapping... */
	ck_assert_int_eq(open_from_fake(MEM_UNSEALED), -EPERM);
	/* ...or that another user made (and formatted) itself. */
	ck_assert_int_eq(open_from_fake(MEM_FOREIGN), -EPERM);
}
END_TEST

/* A persistent topic's data is a file (linked, so it cannot be a sealed
 * memfd): its owner, the broker, is all the client checks. */
START_TEST(a_persistent_topic_still_opens)
{
	struct shmbus_topic_config cfg = {.persistent = 1};
	char *tmp = sbt_tempdir();
	char *data = join_path(tmp, "data");
	char config[512], buf[16];
	struct sbt_broker b;
	shmbus *bus;
	shmbus_pub *pub;
	shmbus_sub *sub;

	ck_assert_int_eq(mkdir(data, 0700), 0);
	snprintf(config, sizeof(config), "{\"data_dir\": \"%s\"}", data);
	ck_assert_int_eq(sbt_broker_start(&b, config, NULL), 0);
	ck_assert_int_eq(shmbus_connect(b.socket, "persist", &bus), 0);
	ck_assert_int_eq(shmbus_topic_create(bus, "kept", &cfg), 0);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "kept", SHMBUS_START_EARLIEST, &sub), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, "kept", &pub), 0);
	ck_assert_int_eq(shmbus_publish(pub, "hello", 5, 0), 0);
	ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 0), 5);
	ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_sub_close(sub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
	free(data);
	sbt_rmtree(tmp);
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
	tcase_add_test(tc, a_group_socket_admits_its_members_only);
	tcase_add_test(tc, the_socket_group_is_set_or_the_broker_refuses);
	tcase_add_test(tc, bad_socket_flags_are_usage_errors);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("client");
	tcase_add_test(tc, a_broker_of_an_untrusted_uid_is_refused);
	tcase_add_test(tc, root_refuses_a_broker_of_another_uid);
	tcase_add_test(tc, a_reconnection_hands_nothing_to_a_squatter);
	tcase_add_test(tc, memory_must_be_sealed_and_the_brokers);
	tcase_add_test(tc, a_persistent_topic_still_opens);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}
