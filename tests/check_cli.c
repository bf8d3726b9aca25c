/*
 * check_cli.c - end-to-end tests of the `shmbus` command (tools/): the real
 * binary from $SHMBUS_TEST_BINDIR run against real brokers, its output,
 * stderr and exit status captured. Covers every subcommand, the message
 * formats, the lost-message notice, rates in top, and each error case's
 * one-line report and status (permission denied with the command run as
 * uid 65534). Also the examples' argument checks (examples/). Every wait
 * is bounded; nothing asserts on time.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "client/bus_internal.h"
#include "shmbus/shmbus.h"
#include "tests/suites.h"
#include "tests/support/broker_harness.h"
#include "tests/support/testutil.h"

/* Bound on every wait: never reached in a healthy run. */
#define BOUND_MS 20000

#define NOBODY 65534

#define OUT_MAX (2 * 1024 * 1024) /* ls of 5,000 topics */
#define ERR_MAX 4096

/* ---- running the command ---------------------------------------------- */

/* How to start the command; zero is the plain case. */
struct how {
	const char *binary;	/* NULL: $SHMBUS_TEST_BINDIR/shmbus */
	const char *stdin_path; /* NULL: /dev/null */
	int as_nobody;		/* setuid(65534) before exec */
	const char *socket_env; /* sets $SHMBUS_SOCKET */
	const char *path_env;	/* sets $PATH */
};

struct proc {
	pid_t pid;
	int out_fd, err_fd;
};

/* What a finished run produced. */
struct run {
	int status; /* exit status, or -signal */
	char *out;  /* NUL-terminated (binary output: use out_len) */
	size_t out_len;
	char err[ERR_MAX];
	long maxrss_kib; /* the process's peak resident set */
};

static void child_exec(const struct how *how, const char *const *argv,
		       int out_w, int err_w)
{
	char binary[512];
	int in =
	    open(how->stdin_path ? how->stdin_path : "/dev/null", O_RDONLY);

	/* A test that fails half-way must not leave the command running. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (in < 0 || dup2(in, STDIN_FILENO) < 0 ||
	    dup2(out_w, STDOUT_FILENO) < 0 || dup2(err_w, STDERR_FILENO) < 0) {
		_exit(126);
	}
	if (how->socket_env != NULL) {
		setenv("SHMBUS_SOCKET", how->socket_env, 1);
	} else {
		unsetenv("SHMBUS_SOCKET");
	}
	if (how->path_env != NULL) {
		setenv("PATH", how->path_env, 1);
	}
	if (how->as_nobody && (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 ||
			       setuid(NOBODY) < 0)) {
		_exit(125);
	}
	if (how->binary != NULL) {
		snprintf(binary, sizeof(binary), "%s", how->binary);
	} else {
		snprintf(binary, sizeof(binary), "%s/shmbus", sbt_bindir());
	}
	execv(binary, (char *const *)argv);
	_exit(127);
}

/* Starts the command with `argv` (argv[0] is replaced by the binary). */
static void spawn(struct proc *p, const struct how *how,
		  const char *const *argv)
{
	int out[2], err[2];

	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
	p->pid = fork();
	ck_assert_int_ge(p->pid, 0);
	if (p->pid == 0) {
		child_exec(how, argv, out[1], err[1]);
	}
	close(out[1]);
	close(err[1]);
	p->out_fd = out[0];
	p->err_fd = err[0];
}

/* sbt_wait() that also reports the child's peak RSS in KiB. */
static int wait_usage(pid_t pid, long *maxrss_kib)
{
	struct rusage ru;
	int status;

	while (wait4(pid, &status, 0, &ru) < 0) {
		ck_assert_int_eq(errno, EINTR);
	}
	*maxrss_kib = ru.ru_maxrss;
	return WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
}

/* Reads both pipes to their end (bounded), then reaps the process. */
static void collect(struct proc *p, struct run *r)
{
	struct timespec t0, t1;
	size_t err_len = 0;
	int open_fds = 2;

	r->out = malloc(OUT_MAX + 1);
	ck_assert_ptr_nonnull(r->out);
	r->out_len = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (open_fds > 0) {
		struct pollfd fds[2] = {{.fd = p->out_fd, .events = POLLIN},
					{.fd = p->err_fd, .events = POLLIN}};
		long waited;

		clock_gettime(CLOCK_MONOTONIC, &t1);
		waited = (t1.tv_sec - t0.tv_sec) * 1000L +
			 (t1.tv_nsec - t0.tv_nsec) / 1000000L;
		if (waited > BOUND_MS) {
			kill(p->pid, SIGKILL);
			ck_abort_msg("the command did not finish in %d ms",
				     BOUND_MS);
		}
		if (poll(fds, 2, 100) <= 0) {
			continue;
		}
		for (int i = 0; i < 2; i++) {
			char buf[4096];
			ssize_t n;

			if (fds[i].fd < 0 || fds[i].revents == 0) {
				continue;
			}
			n = read(fds[i].fd, buf, sizeof(buf));
			if (n <= 0) {
				close(fds[i].fd);
				*(i == 0 ? &p->out_fd : &p->err_fd) = -1;
				open_fds--;
				continue;
			}
			if (i == 0) {
				size_t k = (size_t)n;

				if (k > OUT_MAX - r->out_len) {
					k = OUT_MAX - r->out_len;
				}
				memcpy(r->out + r->out_len, buf, k);
				r->out_len += k;
			} else {
				size_t k = (size_t)n;

				if (k > ERR_MAX - 1 - err_len) {
					k = ERR_MAX - 1 - err_len;
				}
				memcpy(r->err + err_len, buf, k);
				err_len += k;
			}
		}
	}
	r->out[r->out_len] = '\0';
	r->err[err_len] = '\0';
	r->status = wait_usage(p->pid, &r->maxrss_kib);
}

static void run_fini(struct run *r)
{
	free(r->out);
	r->out = NULL;
}

/* Builds an argv from a NULL-terminated list: CMD [--socket SOCK] ARGS. */
static void build_argv(const char **argv, size_t max,
		       const struct sbt_broker *b, const char *cmd, va_list ap)
{
	size_t n = 0;
	const char *a;

	argv[n++] = "shmbus";
	if (cmd != NULL) {
		argv[n++] = cmd;
	}
	if (b != NULL) {
		argv[n++] = "--socket";
		argv[n++] = b->socket;
	}
	while ((a = va_arg(ap, const char *)) != NULL && n < max - 1) {
		argv[n++] = a;
	}
	argv[n] = NULL;
}

/* Runs `shmbus CMD --socket SOCK ARGS...` (no --socket when b is NULL)
 * to completion. The list ends with NULL. */
static void clih(struct run *r, const struct how *how,
		 const struct sbt_broker *b, const char *cmd, ...)
{
	const char *argv[64];
	struct proc p;
	va_list ap;

	va_start(ap, cmd);
	build_argv(argv, 64, b, cmd, ap);
	va_end(ap);
	spawn(&p, how, argv);
	collect(&p, r);
}

#define cli(r, b, ...) clih((r), &(struct how){0}, (b), __VA_ARGS__, NULL)

/* Starts the command in the background; collect() it later. */
static void cli_bg(struct proc *p, const struct sbt_broker *b, const char *cmd,
		   ...)
{
	const char *argv[64];
	va_list ap;

	va_start(ap, cmd);
	build_argv(argv, 64, b, cmd, ap);
	va_end(ap);
	spawn(p, &(struct how){0}, argv);
}

/* A failure report: exactly one line, "shmbus: " first, containing
 * `text`, and the expected status. */
static void assert_fails(const struct run *r, int status, const char *text)
{
	const char *nl = strchr(r->err, '\n');

	ck_assert_msg(r->status == status, "status %d, expected %d; stderr: %s",
		      r->status, status, r->err);
	ck_assert_msg(strncmp(r->err, "shmbus: ", 8) == 0, "stderr: %s",
		      r->err);
	ck_assert_msg(nl != NULL && nl[1] == '\0', "not one line: %s", r->err);
	ck_assert_msg(strstr(r->err, text) != NULL, "\"%s\" not in: %s", text,
		      r->err);
}

static void assert_ok(const struct run *r)
{
	ck_assert_msg(r->status == 0, "status %d; stderr: %s", r->status,
		      r->err);
}

/* ---- asking the broker directly --------------------------------------- */

static const char *const stat_arrays[] = {"subscribers", "publishers", NULL};

/* topic_stat of `topic` through the library, or NULL if it does not
 * exist. The caller frees the result. */
static cJSON *lib_stat(const struct sbt_broker *b, const char *topic)
{
	struct sb_client_reply rep;
	shmbus *bus = NULL;
	cJSON *req = cJSON_CreateObject();
	cJSON *res = NULL;
	int r;

	ck_assert_int_eq(shmbus_connect(b->socket, "check_cli", &bus), 0);
	ck_assert_ptr_nonnull(cJSON_AddStringToObject(req, "topic", topic));
	r = sb_client_call_all(bus, "topic_stat", req, stat_arrays, &rep);
	if (r == 0) {
		res = cJSON_Duplicate(rep.msg.result, 1);
	}
	sb_client_reply_fini(&rep);
	shmbus_close(bus);
	ck_assert_msg(r == 0 || r == -ENOENT, "topic_stat: %d", r);
	return res;
}

static double jnum(const cJSON *o, const char *path)
{
	char buf[128];
	char *save = NULL, *part;
	const cJSON *v = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (part = strtok_r(buf, ".", &save); part != NULL;
	     part = strtok_r(NULL, ".", &save)) {
		if (cJSON_IsArray(v)) {
			v = cJSON_GetArrayItem(v, atoi(part));
		} else {
			v = cJSON_GetObjectItemCaseSensitive(v, part);
		}
	}
	ck_assert_msg(cJSON_IsNumber(v), "%s is not a number", path);
	return v->valuedouble;
}

/* Waits (bounded) until `path` in the topic's stat reaches `want` or
 * more (a true boolean counts as 1); returns the last stat seen (caller
 * frees). */
static cJSON *wait_stat_ge(const struct sbt_broker *b, const char *topic,
			   const char *path, double want)
{
	for (int i = 0; i < BOUND_MS / 10; i++) {
		cJSON *st = lib_stat(b, topic);
		const cJSON *v = st;
		char buf[128];
		char *save = NULL, *part;

		snprintf(buf, sizeof(buf), "%s", path);
		for (part = strtok_r(buf, ".", &save); v != NULL && part;
		     part = strtok_r(NULL, ".", &save)) {
			v = cJSON_IsArray(v)
				? cJSON_GetArrayItem(v, atoi(part))
				: cJSON_GetObjectItemCaseSensitive(v, part);
		}
		if ((cJSON_IsNumber(v) && v->valuedouble >= want) ||
		    (cJSON_IsTrue(v) && want <= 1)) {
			return st;
		}
		cJSON_Delete(st);
		sbt_sleep_ms(10);
	}
	ck_abort_msg("%s of topic %s never reached %g", path, topic, want);
	return NULL;
}

/* Waits until `n` subscribers have their ring slots open: the broker
 * counts a handle when it grants it, before the client opens its slot, and
 * a message published in between is not for that subscriber. */
static void wait_subscribers(const struct sbt_broker *b, const char *topic,
			     int n)
{
	char path[64];

	snprintf(path, sizeof(path), "subscribers.%d.slot", n - 1);
	cJSON_Delete(wait_stat_ge(b, topic, "topic.subscribers", n));
	cJSON_Delete(wait_stat_ge(b, topic, path, 0));
}

/* The topic named `name` in a topic_list result, or NULL. */
static const cJSON *find_topic(const cJSON *list, const char *name)
{
	const cJSON *t;

	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(list, "topics"))
	{
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(t, "name");

		if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0) {
			return t;
		}
	}
	return NULL;
}

/* Splits the line of `text` that starts with `first` + ' ' into words. */
static int row_words(const char *text, const char *first, char words[][64],
		     int max)
{
	const char *line = text;
	size_t flen = strlen(first);
	int n = 0;

	while (line != NULL && *line != '\0') {
		if (strncmp(line, first, flen) == 0 && line[flen] == ' ') {
			break;
		}
		line = strchr(line, '\n');
		line = line != NULL ? line + 1 : NULL;
	}
	ck_assert_msg(line != NULL && *line != '\0', "no row %s in:\n%s", first,
		      text);
	while (n < max) {
		size_t len;

		while (*line == ' ') {
			line++;
		}
		if (*line == '\n' || *line == '\0') {
			break;
		}
		len = strcspn(line, " \n");
		snprintf(words[n++], 64, "%.*s", (int)len, line);
		line += len;
	}
	return n;
}

/* ---- pub and sub ------------------------------------------------------- */

START_TEST(published_message_arrives_in_live_sub)
{
	struct sbt_broker b;
	struct proc p;
	struct run r, s;

	sbt_broker_up(&b, NULL);
	cli_bg(&p, &b, "sub", "live", "--count", "2", "--timeout", "60", NULL);
	wait_subscribers(&b, "live", 1);
	cli(&r, &b, "pub", "live", "hello", "wörld");
	assert_ok(&r);
	ck_assert_str_eq(r.out, "");
	collect(&p, &s);
	assert_ok(&s);
	ck_assert_str_eq(s.out, "hello\nwörld\n");
	ck_assert_str_eq(s.err, "");
	run_fini(&r);
	run_fini(&s);
	sbt_broker_stop(&b);
}
END_TEST

START_TEST(sub_from_earliest_reads_what_the_ring_holds)
{
	struct sbt_broker b;
	struct run r;

	sbt_broker_up(&b, NULL);
	cli(&r, &b, "create", "held");
	assert_ok(&r);
	run_fini(&r);
	cli(&r, &b, "pub", "held", "one", "two", "three");
	assert_ok(&r);
	run_fini(&r);
	cli(&r, &b, "sub", "held", "--from", "earliest", "--count", "3");
	assert_ok(&r);
	ck_assert_str_eq(r.out, "one\ntwo\nthree\n");
	run_fini(&r);
	/* Without --count, --timeout ends it with status 0. */
	cli(&r, &b, "sub", "held", "--from", "earliest", "--timeout", "0.2");
	assert_ok(&r);
	ck_assert_str_eq(r.out, "one\ntwo\nthree\n");
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

START_TEST(pub_reads_stdin_lines)
{
	struct sbt_broker b;
	char path[512];
	struct run r;
	static const char input[] = "one\ntwo\n\nthree";

	sbt_broker_up(&b, NULL);
	snprintf(path, sizeof(path), "%s/input", b.dir);
	ck_assert_int_eq(sbt_write_file(path, input, sizeof(input) - 1), 0);
	cli(&r, &b, "create", "lines");
	run_fini(&r);
	clih(&r, &(struct how){.stdin_path = path}, &b, "pub", "lines", NULL);
	assert_ok(&r);
	run_fini(&r);
	cli(&r, &b, "sub", "lines", "--from", "earliest", "--count", "4");
	assert_ok(&r);
	ck_assert_str_eq(r.out, "one\ntwo\n\nthree\n");
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

START_TEST(pub_file_is_one_message)
{
	struct sbt_broker b;
	char path[512];
	struct run r;
	static const char body[] = "first line\nsecond line\n";

	sbt_broker_up(&b, NULL);
	snprintf(path, sizeof(path), "%s/body", b.dir);
	ck_assert_int_eq(sbt_write_file(path, body, sizeof(body) - 1), 0);
	cli(&r, &b, "create", "files");
	run_fini(&r);
	cli(&r, &b, "pub", "files", "--file", path);
	assert_ok(&r);
	run_fini(&r);
	cli(&r, &b, "sub", "files", "--from", "earliest", "--count", "1",
	    "--raw");
	assert_ok(&r);
	ck_assert_uint_eq(r.out_len, sizeof(body) - 1);
	ck_assert_mem_eq(r.out, body, sizeof(body) - 1);
	run_fini(&r);
	/* The published counter says one message. */
	cJSON *st = lib_stat(&b, "files");
	ck_assert_int_eq((int)jnum(st, "stats.published"), 1);
	ck_assert_int_eq((int)jnum(st, "stats.bytes"), sizeof(body) - 1);
	cJSON_Delete(st);
	/* A file that is not there. */
	cli(&r, &b, "pub", "files", "--file", "/nonexistent/x");
	assert_fails(&r, 1, "/nonexistent/x: No such file or directory");
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

START_TEST(pub_repeat_and_rate)
{
	struct sbt_broker b;
	struct run r;

	sbt_broker_up(&b, NULL);
	cli(&r, &b, "create", "rep");
	run_fini(&r);
	cli(&r, &b, "pub", "rep", "a", "b", "--repeat", "3");
	assert_ok(&r);
	run_fini(&r);
	/* Paced publishing delivers the same; its timing is not asserted. */
	cli(&r, &b, "pub", "rep", "c", "--repeat", "4", "--rate", "2000");
	assert_ok(&r);
	run_fini(&r);
	cli(&r, &b, "sub", "rep", "--from", "earliest", "--count", "10");
	assert_ok(&r);
	ck_assert_str_eq(r.out, "a\na\na\nb\nb\nb\nc\nc\nc\nc\n");
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

START_TEST(default_socket_from_environment)
{
	struct sbt_broker b;
	struct run r;

	sbt_broker_up(&b, NULL);
	clih(&r, &(struct how){.socket_env = b.socket}, NULL, "create",
	     "via-env", NULL);
	assert_ok(&r);
	run_fini(&r);
	clih(&r, &(struct how){.socket_env = b.socket}, NULL, "ls", NULL);
	assert_ok(&r);
	ck_assert_ptr_nonnull(strstr(r.out, "via-env "));
	run_fini(&r);
	/* --socket before the command works too. */
	cli(&r, NULL, "--socket", b.socket, "ls");
	assert_ok(&r);
	ck_assert_ptr_nonnull(strstr(r.out, "via-env "));
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

/* ---- formats ----------------------------------------------------------- */

/* Publishes `len` bytes from a file, then reads them back with `format`
 * options (NULL-terminated) and returns the run. */
static void roundtrip(struct run *r, struct sbt_broker *b, const char *topic,
		      const void *data, size_t len, const char *opt)
{
	char path[512];
	struct run p;

	snprintf(path, sizeof(path), "%s/msg-%s", b->dir, topic);
	ck_assert_int_eq(sbt_write_file(path, data, len), 0);
	cli(&p, b, "create", topic);
	run_fini(&p);
	cli(&p, b, "pub", topic, "--file", path);
	assert_ok(&p);
	run_fini(&p);
	if (opt != NULL) {
		cli(r, b, "sub", topic, "--from", "earliest", "--count", "1",
		    opt);
	} else {
		cli(r, b, "sub", topic, "--from", "earliest", "--count", "1");
	}
	assert_ok(r);
}

START_TEST(binary_is_escaped_text_is_not)
{
	static const unsigned char bin[] = {'a',  0x00, 0x01, '\n', '\\',
					    0xff, 0x7f, 'z',  '\t'};
	static const char utf8[] = "tab\there: \xc3\xa9t\xc3\xa9 \xe2\x82\xac";
	static const char bad_utf8[] = "caf\xc3";
	static const char overlong[] = "\xc0\xaf";
	struct sbt_broker b;
	struct run r;

	sbt_broker_up(&b, NULL);
	roundtrip(&r, &b, "bin", bin, sizeof(bin), NULL);
	ck_assert_str_eq(r.out, "a\\x00\\x01\\n\\\\\\xff\\x7fz\\t\n");
	run_fini(&r);
	roundtrip(&r, &b, "utf8", utf8, sizeof(utf8) - 1, NULL);
	ck_assert_str_eq(r.out, "tab\there: \xc3\xa9t\xc3\xa9 \xe2\x82\xac\n");
	run_fini(&r);
	roundtrip(&r, &b, "bad", bad_utf8, sizeof(bad_utf8) - 1, NULL);
	ck_assert_str_eq(r.out, "caf\\xc3\n");
	run_fini(&r);
	roundtrip(&r, &b, "overlong", overlong, sizeof(overlong) - 1, NULL);
	ck_assert_str_eq(r.out, "\\xc0\\xaf\n");
	run_fini(&r);
	roundtrip(&r, &b, "hex", bin, sizeof(bin), "--hex");
	ck_assert_str_eq(r.out, "6100010a5cff7f7a09\n");
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

START_TEST(raw_writes_bytes_as_they_are)
{
	static const unsigned char bin[] = {0x00, 0xff, '\n', 'x'};
	struct sbt_broker b;
	char path[512];
	struct run r;

	sbt_broker_up(&b, NULL);
	snprintf(path, sizeof(path), "%s/bin", b.dir);
	ck_assert_int_eq(sbt_write_file(path, bin, sizeof(bin)), 0);
	cli(&r, &b, "create", "raw");
	run_fini(&r);
	cli(&r, &b, "pub", "raw", "--file", path);
	run_fini(&r);
	cli(&r, &b, "pub", "raw", "ab");
	run_fini(&r);
	cli(&r, &b, "sub", "raw", "--from", "earliest", "--count", "2",
	    "--raw");
	assert_ok(&r);
	ck_assert_uint_eq(r.out_len, sizeof(bin) + 2);
	ck_assert_mem_eq(r.out, bin, sizeof(bin));
	ck_assert_mem_eq(r.out + sizeof(bin), "ab", 2);
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

START_TEST(large_message_grows_the_buffer)
{
	struct sbt_broker b;
	size_t len = 200 * 1024;
	char *big = malloc(len);
	char path[512];
	struct run r;

	ck_assert_ptr_nonnull(big);
	for (size_t i = 0; i < len; i++) {
		big[i] = (char)('a' + i % 26);
	}
	sbt_broker_up(&b, NULL);
	snprintf(path, sizeof(path), "%s/big", b.dir);
	ck_assert_int_eq(sbt_write_file(path, big, len), 0);
	cli(&r, &b, "create", "big", "--capacity", "1MiB", "--max-message",
	    "256KiB");
	assert_ok(&r);
	run_fini(&r);
	cli(&r, &b, "pub", "big", "--file", path);
	assert_ok(&r);
	run_fini(&r);
	cli(&r, &b, "sub", "big", "--from", "earliest", "--count", "1");
	assert_ok(&r);
	ck_assert_uint_eq(r.out_len, len + 1);
	ck_assert_mem_eq(r.out, big, len);
	run_fini(&r);
	free(big);
	sbt_broker_stop(&b);
}
END_TEST

/* ---- lost messages ----------------------------------------------------- */

START_TEST(lost_messages_are_reported)
{
	struct sbt_broker b;
	struct proc p;
	struct run r, s;
	const char *lost_line;
	unsigned long lost = 0;
	size_t lines = 0;
	cJSON *st;

	sbt_broker_up(&b, NULL);
	cli(&r, &b, "create", "ow", "--capacity", "4KiB", "--max-message",
	    "1KiB", "--overflow", "overwrite");
	assert_ok(&r);
	run_fini(&r);
	cli_bg(&p, &b, "sub", "ow", "--timeout", "60", NULL);
	/* Its handle counts before its slot is open: wait until the reader
	 * sleeps in its slot, so that it is behind every message below. */
	cJSON_Delete(wait_stat_ge(&b, "ow", "subscribers.0.sleeping", 1));
	/* Stopped, the subscriber cannot keep up: the writer overwrites. */
	ck_assert_int_eq(kill(p.pid, SIGSTOP), 0);
	cli(&r, &b, "pub", "ow", "--repeat", "200",
	    "a message of about forty bytes, 200x");
	assert_ok(&r);
	run_fini(&r);
	ck_assert_int_eq(kill(p.pid, SIGCONT), 0);
	/* Wait until it has read all that is left, then stop it. */
	for (int i = 0; i < BOUND_MS / 10; i++) {
		st = lib_stat(&b, "ow");
		if (jnum(st, "subscribers.0.lag_bytes") == 0 &&
		    jnum(st, "subscribers.0.lost") > 0) {
			break;
		}
		cJSON_Delete(st);
		st = NULL;
		sbt_sleep_ms(10);
	}
	ck_assert_ptr_nonnull(st);
	cJSON_Delete(st);
	ck_assert_int_eq(kill(p.pid, SIGINT), 0);
	collect(&p, &s);
	assert_ok(&s); /* SIGINT is a clean stop */
	lost_line = strstr(s.err, "shmbus: lost ");
	ck_assert_msg(lost_line != NULL, "stderr: %s", s.err);
	lost = strtoul(lost_line + 13, NULL, 10);
	for (size_t i = 0; i < s.out_len; i++) {
		lines += s.out[i] == '\n';
	}
	ck_assert_uint_gt(lost, 0);
	ck_assert_uint_eq(lines + lost, 200);
	run_fini(&s);
	sbt_broker_stop(&b);
}
END_TEST

/* ---- ls and stat ------------------------------------------------------- */

START_TEST(ls_and_stat_report_what_was_done)
{
	struct sbt_broker b;
	struct proc p;
	struct run r, s;
	char words[12][64];
	char pid[32];
	cJSON *json, *st;
	const cJSON *t;

	sbt_broker_up(&b, NULL);
	cli(&r, &b, "create", "stats/a", "--capacity", "64KiB");
	assert_ok(&r);
	run_fini(&r);
	cli(&r, &b, "create", "stats/b", "--mode", "queue");
	assert_ok(&r);
	run_fini(&r);
	cli_bg(&p, &b, "sub", "stats/a", "--timeout", "60", NULL);
	snprintf(pid, sizeof(pid), "%ld", (long)p.pid);
	wait_subscribers(&b, "stats/a", 1);
	cli(&r, &b, "pub", "stats/a", "x", "yy", "zzz");
	assert_ok(&r);
	run_fini(&r);
	cJSON_Delete(wait_stat_ge(&b, "stats/a", "subscribers.0.received", 3));

	/* ls as a table. */
	cli(&r, &b, "ls");
	assert_ok(&r);
	ck_assert_msg(strncmp(r.out, "TOPIC ", 6) == 0, "%s", r.out);
	ck_assert_int_eq(row_words(r.out, "stats/a", words, 12), 10);
	ck_assert_str_eq(words[1], "broadcast");
	ck_assert_str_eq(words[2], "block");
	ck_assert_str_eq(words[3], "64KiB");
	ck_assert_str_eq(words[7], "0"); /* publishers: pub has exited */
	ck_assert_str_eq(words[8], "1"); /* subscribers */
	ck_assert_str_eq(words[9], "3"); /* published */
	ck_assert_int_eq(row_words(r.out, "stats/b", words, 12), 10);
	ck_assert_str_eq(words[1], "queue");
	run_fini(&r);

	/* ls --json. */
	cli(&r, &b, "ls", "--json");
	assert_ok(&r);
	json = cJSON_Parse(r.out);
	ck_assert_ptr_nonnull(json);
	t = find_topic(json, "stats/a");
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq((int)jnum(t, "published"), 3);
	ck_assert_int_eq((int)jnum(t, "subscribers"), 1);
	ck_assert_int_eq((int)jnum(t, "capacity"), 65536);
	ck_assert_ptr_nonnull(find_topic(json, "stats/b"));
	cJSON_Delete(json);
	run_fini(&r);

	/* stat TOPIC as text. */
	cli(&r, &b, "stat", "stats/a");
	assert_ok(&r);
	ck_assert_ptr_nonnull(strstr(r.out, "topic stats/a: broadcast, block, "
					    "capacity 64KiB"));
	ck_assert_ptr_nonnull(strstr(r.out, "published 3 messages, 6 bytes"));
	ck_assert_ptr_nonnull(strstr(r.out, "blocked writers 0"));
	ck_assert_int_eq(row_words(r.out, "  SLOT", words, 12), 9);
	ck_assert_str_eq(words[1], "PID");
	ck_assert_str_eq(words[3], "NAME");
	ck_assert_str_eq(words[7], "STALLED");
	ck_assert_ptr_nonnull(
	    strstr(r.out, "evicted 0 subscriber(s); max_stall_ms 0 (off)"));
	ck_assert_ptr_nonnull(strstr(r.out, pid));
	run_fini(&r);

	/* stat TOPIC --json. */
	cli(&r, &b, "stat", "stats/a", "--json");
	assert_ok(&r);
	st = cJSON_Parse(r.out);
	ck_assert_ptr_nonnull(st);
	ck_assert_int_eq((int)jnum(st, "stats.published"), 3);
	ck_assert_int_eq((int)jnum(st, "stats.bytes"), 6);
	ck_assert_int_eq((int)jnum(st, "stats.blocked_writers"), 0);
	ck_assert_int_eq((int)jnum(st, "subscribers.0.pid"), (int)p.pid);
	ck_assert_int_eq((int)jnum(st, "subscribers.0.received"), 3);
	ck_assert_int_eq((int)jnum(st, "subscribers.0.lost"), 0);
	ck_assert_int_eq((int)jnum(st, "subscribers.0.lag_bytes"), 0);
	ck_assert_int_eq((int)jnum(st, "subscribers.0.stalled_ms"), 0);
	ck_assert_int_eq((int)jnum(st, "stats.evictions"), 0);
	ck_assert_int_eq((int)jnum(st, "topic.max_stall_ms"), 0);
	cJSON_Delete(st);
	run_fini(&r);

	/* stat without TOPIC: every topic. */
	cli(&r, &b, "stat");
	assert_ok(&r);
	ck_assert_ptr_nonnull(strstr(r.out, "topic stats/a:"));
	ck_assert_ptr_nonnull(strstr(r.out, "topic stats/b: queue"));
	ck_assert_ptr_nonnull(strstr(r.out, "queue: lag 0 bytes, lost 0"));
	run_fini(&r);
	cli(&r, &b, "stat", "--json");
	assert_ok(&r);
	json = cJSON_Parse(r.out);
	ck_assert_ptr_nonnull(json);
	ck_assert_int_eq(
	    cJSON_GetArraySize(cJSON_GetObjectItem(json, "topics")), 2);
	ck_assert_int_eq((int)jnum(json, "topics.0.stats.published"), 3);
	ck_assert_int_eq((int)jnum(json, "topics.1.queue.lost"), 0);
	cJSON_Delete(json);
	run_fini(&r);

	ck_assert_int_eq(kill(p.pid, SIGTERM), 0);
	collect(&p, &s);
	assert_ok(&s); /* SIGTERM is a clean stop */
	ck_assert_str_eq(s.out, "x\nyy\nzzz\n");
	run_fini(&s);
	sbt_broker_stop(&b);
}
END_TEST

/* ---- create and rm ----------------------------------------------------- */

START_TEST(create_with_every_option_then_rm)
{
	struct sbt_broker b;
	char *data = sbt_tempdir();
	char config[512];
	char words[12][64];
	struct run r;
	cJSON *json;
	const cJSON *t;

	snprintf(config, sizeof(config), "{\"data_dir\": \"%s\"}", data);
	sbt_broker_up(&b, config);
	cli(&r, &b, "create", "full", "--capacity", "64KiB", "--max-message",
	    "1KiB", "--mode", "queue", "--overflow", "reject", "--persistent",
	    "--max-stall-ms", "2500");
	assert_ok(&r);
	ck_assert_str_eq(r.out, "created topic \"full\": queue, reject, "
				"capacity 64KiB, max message 1KiB, "
				"persistent\n");
	run_fini(&r);

	cli(&r, &b, "ls", "--json");
	assert_ok(&r);
	json = cJSON_Parse(r.out);
	t = find_topic(json, "full");
	ck_assert_ptr_nonnull(t);
	ck_assert_str_eq(cJSON_GetObjectItem(t, "mode")->valuestring, "queue");
	ck_assert_str_eq(cJSON_GetObjectItem(t, "overflow")->valuestring,
			 "reject");
	ck_assert_int_eq((int)jnum(t, "capacity"), 65536);
	ck_assert_int_eq((int)jnum(t, "max_message"), 1024);
	ck_assert_int_eq((int)jnum(t, "max_stall_ms"), 2500);
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(t, "persistent")));
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(t, "explicit")));
	cJSON_Delete(json);
	run_fini(&r);

	cli(&r, &b, "ls");
	ck_assert_int_eq(row_words(r.out, "full", words, 12), 10);
	ck_assert_str_eq(words[1], "queue");
	ck_assert_str_eq(words[2], "reject");
	ck_assert_str_eq(words[3], "64KiB");
	ck_assert_str_eq(words[4], "1KiB"); /* MAX_MSG */
	run_fini(&r);

	cli(&r, &b, "create", "full");
	assert_fails(&r, 1, "topic \"full\" exists");
	run_fini(&r);

	cli(&r, &b, "rm", "full");
	assert_ok(&r);
	ck_assert_str_eq(r.out, "removed topic \"full\"\n");
	run_fini(&r);
	cli(&r, &b, "ls", "--json");
	json = cJSON_Parse(r.out);
	ck_assert_ptr_nonnull(json);
	ck_assert_ptr_null(find_topic(json, "full"));
	cJSON_Delete(json);
	run_fini(&r);
	cli(&r, &b, "rm", "full");
	assert_fails(&r, 4, "shmbus: rm: no such topic \"full\"");
	run_fini(&r);
	sbt_broker_stop(&b);
	sbt_rmtree(data);
}
END_TEST

/* ls: MAX_MSG, and FILL - for a broadcast topic that has no subscriber
 * (it keeps nothing for anyone), a share for one that has, and for a
 * queue. */
START_TEST(ls_shows_max_message_and_fill)
{
	struct sbt_broker b;
	struct proc p;
	struct run r, s;
	char words[12][64];

	sbt_broker_up(&b, NULL);
	cli(&r, &b, "create", "fill/nobody", "--max-message", "2KiB");
	assert_ok(&r);
	run_fini(&r);
	cli(&r, &b, "create", "fill/queue", "--mode", "queue");
	assert_ok(&r);
	run_fini(&r);
	cli(&r, &b, "create", "fill/read");
	assert_ok(&r);
	run_fini(&r);
	cli_bg(&p, &b, "sub", "fill/read", "--timeout", "60", NULL);
	wait_subscribers(&b, "fill/read", 1);
	cli(&r, &b, "pub", "fill/nobody", "lost to nobody");
	assert_ok(&r);
	run_fini(&r);

	cli(&r, &b, "ls");
	assert_ok(&r);
	ck_assert_int_eq(row_words(r.out, "TOPIC", words, 12), 10);
	ck_assert_str_eq(words[4], "MAX_MSG");
	ck_assert_str_eq(words[6], "FILL");
	ck_assert_int_eq(row_words(r.out, "fill/nobody", words, 12), 10);
	ck_assert_str_eq(words[4], "2KiB");
	ck_assert_str_eq(words[6], "-");
	ck_assert_int_eq(row_words(r.out, "fill/queue", words, 12), 10);
	ck_assert_str_eq(words[6], "0%");
	ck_assert_int_eq(row_words(r.out, "fill/read", words, 12), 10);
	ck_assert_str_eq(words[6], "0%");
	run_fini(&r);

	cli(&r, &b, "stat", "fill/nobody");
	assert_ok(&r);
	ck_assert_ptr_nonnull(strstr(r.out, "(fill -)"));
	run_fini(&r);
	kill(p.pid, SIGTERM);
	collect(&p, &s);
	run_fini(&s);
	sbt_broker_stop(&b);
}
END_TEST

#define STAT_SUBS 10

/*
 * stat names each subscriber's and publisher's client by the name it gave
 * in hello, and lists them all though the broker's small frames need
 * several pages.
 */
START_TEST(stat_names_every_subscriber_page_by_page)
{
	struct sbt_broker b;
	struct proc p[STAT_SUBS];
	struct run r, s;
	shmbus *bus = NULL, *wbus = NULL;
	shmbus_sub *mine = NULL;
	shmbus_pub *writer = NULL;
	char words[12][64];
	const char *at;
	int named = 0;
	cJSON *st;

	sbt_broker_up(&b, "{\"limits\": {\"max_frame\": \"1KiB\"}}");
	cli(&r, &b, "create", "crowd");
	assert_ok(&r);
	run_fini(&r);
	ck_assert_int_eq(shmbus_connect(b.socket, "imu-reader", &bus), 0);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "crowd", SHMBUS_START_LATEST, &mine), 0);
	ck_assert_int_eq(shmbus_connect(b.socket, "imu-writer", &wbus), 0);
	ck_assert_int_eq(shmbus_pub_open(wbus, "crowd", &writer), 0);
	for (int i = 0; i < STAT_SUBS; i++) {
		cli_bg(&p[i], &b, "sub", "crowd", "--timeout", "60", NULL);
	}
	wait_subscribers(&b, "crowd", STAT_SUBS + 1);

	cli(&r, &b, "stat", "crowd");
	assert_ok(&r);
	ck_assert_ptr_nonnull(strstr(r.out, " imu-reader "));
	ck_assert_int_eq(row_words(r.out, "  PUBLISHER", words, 12), 4);
	ck_assert_str_eq(words[1], "NAME");
	ck_assert_ptr_nonnull(strstr(r.out, " imu-writer "));
	for (at = r.out; (at = strstr(at, " shmbus-sub ")) != NULL; at++) {
		named++;
	}
	ck_assert_int_eq(named, STAT_SUBS);
	run_fini(&r);

	cli(&r, &b, "stat", "crowd", "--json");
	assert_ok(&r);
	st = cJSON_Parse(r.out);
	ck_assert_ptr_nonnull(st);
	ck_assert_int_eq(
	    cJSON_GetArraySize(cJSON_GetObjectItem(st, "subscribers")),
	    STAT_SUBS + 1);
	ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(st, "more")));
	cJSON_Delete(st);
	run_fini(&r);

	for (int i = 0; i < STAT_SUBS; i++) {
		kill(p[i].pid, SIGTERM);
		collect(&p[i], &s);
		run_fini(&s);
	}
	shmbus_sub_close(mine);
	shmbus_close(bus);
	shmbus_pub_close(writer);
	shmbus_close(wbus);
	sbt_broker_stop(&b);
}
END_TEST

/* ---- top --------------------------------------------------------------- */

static const char *const msg_units[] = {"", "k", "M", "G", NULL};
static const char *const byte_units[] = {"B", "KiB", "MiB", "GiB", "TiB", NULL};

/* 1 when `cell` is a rate for people: a number with at most one decimal,
 * one of `units`, then "/s" ("850/s", "12.5k/s", "128.6MiB/s"). */
static int human_rate(const char *cell, const char *const *units)
{
	char *end;
	const char *dot = strchr(cell, '.');

	strtod(cell, &end);
	if (end == cell || (dot != NULL && dot < end && end - dot != 2)) {
		return 0; /* not a number, or more than one decimal */
	}
	for (int i = 0; units[i] != NULL; i++) {
		size_t n = strlen(units[i]);

		if (strncmp(end, units[i], n) == 0 &&
		    strcmp(end + n, "/s") == 0) {
			return 1;
		}
	}
	return 0;
}

/* The rate formats themselves: values of every size read the same way. */
START_TEST(top_rates_have_units)
{
	ck_assert(human_rate("850/s", msg_units));
	ck_assert(human_rate("2.5/s", msg_units));
	ck_assert(human_rate("12.5k/s", msg_units));
	ck_assert(!human_rate("2106624.7", msg_units));
	ck_assert(!human_rate("2106624.75k/s", msg_units));
	ck_assert(human_rate("128.6MiB/s", byte_units));
	ck_assert(human_rate("512B/s", byte_units));
	ck_assert(!human_rate("512/s", byte_units));
}
END_TEST

START_TEST(top_shows_rates)
{
	struct sbt_broker b;
	struct proc p;
	struct run r, s;
	char words[12][64];
	const char *second;
	cJSON *st;

	sbt_broker_up(&b, NULL);
	cli(&r, &b, "create", "busy", "--overflow", "overwrite");
	run_fini(&r);
	/* A publisher that keeps publishing through both samples. */
	cli_bg(&p, &b, "pub", "busy", "--rate", "500", "--repeat", "1000000",
	       "tick", NULL);
	st = wait_stat_ge(&b, "busy", "stats.published", 1);
	cJSON_Delete(st);
	cli(&r, &b, "top", "--interval", "300ms", "--iterations", "2");
	kill(p.pid, SIGTERM);
	collect(&p, &s);
	run_fini(&s);
	assert_ok(&r);
	ck_assert_ptr_null(strchr(r.out, '\033')); /* not a terminal */
	ck_assert_ptr_nonnull(strstr(r.out, "sample 1"));
	second = strstr(r.out, "sample 2");
	ck_assert_ptr_nonnull(second);
	ck_assert_ptr_null(strstr(r.out, "sample 3"));
	/* The first sample has no rate yet; the second has one, with its
	 * unit. A broadcast topic without subscribers keeps nothing: fill -. */
	ck_assert_int_eq(row_words(r.out, "busy", words, 12), 9);
	ck_assert_str_eq(words[2], "-");
	ck_assert_str_eq(words[3], "-");
	ck_assert_str_eq(words[5], "-");
	ck_assert_int_eq(row_words(second, "busy", words, 12), 9);
	ck_assert_msg(strtod(words[2], NULL) > 0, "msg/s %s", words[2]);
	ck_assert_msg(strtod(words[3], NULL) > 0, "bytes/s %s", words[3]);
	ck_assert_msg(human_rate(words[2], msg_units), "msg/s %s", words[2]);
	ck_assert_msg(human_rate(words[3], byte_units), "bytes/s %s", words[3]);
	ck_assert_str_eq(words[5], "-");
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

/* ---- scale ------------------------------------------------------------- */

#define MANY_TOPICS 5000

/* ls with more topics than one reply can carry: every one, exactly once. */
START_TEST(ls_lists_five_thousand_topics)
{
	static bool seen[MANY_TOPICS];
	struct sbt_broker b;
	struct run r;
	shmbus *bus = NULL;
	int listed = 0;
	char *save = NULL, *line;

	memset(seen, 0, sizeof(seen));
	sbt_broker_up(&b, "{\"limits\": {\"max_topics\": 6000}}");
	ck_assert_int_eq(shmbus_connect(b.socket, "check_cli", &bus), 0);
	for (int i = 0; i < MANY_TOPICS; i++) {
		struct sb_client_reply rep;
		cJSON *req = cJSON_CreateObject();
		char name[32];

		snprintf(name, sizeof(name), "many/t%04d", i);
		ck_assert_ptr_nonnull(
		    cJSON_AddStringToObject(req, "topic", name));
		ck_assert_ptr_nonnull(
		    cJSON_AddNumberToObject(req, "capacity", 4096));
		ck_assert_int_eq(sb_client_call(bus, "topic_create", req, &rep),
				 0);
		sb_client_reply_fini(&rep);
	}
	shmbus_close(bus);

	cli(&r, &b, "ls");
	assert_ok(&r);
	ck_assert_msg(strncmp(r.out, "TOPIC ", 6) == 0, "%.200s", r.out);
	line = strtok_r(r.out, "\n", &save); /* the header */
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		int k = -1;

		ck_assert_msg(sscanf(line, "many/t%d ", &k) == 1, "line %s",
			      line);
		ck_assert_msg(k >= 0 && k < MANY_TOPICS && !seen[k], "line %s",
			      line);
		seen[k] = true;
		listed++;
	}
	ck_assert_int_eq(listed, MANY_TOPICS);
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

/* ---- errors ------------------------------------------------------------ */

START_TEST(no_broker)
{
	static const char *const cmds[][3] = {
	    {"ls", NULL, NULL}, {"stat", NULL, NULL}, {"top", NULL, NULL},
	    {"pub", "t", "x"},	{"sub", "t", NULL},   {"create", "t", NULL},
	    {"rm", "t", NULL},	{"bench", "t", NULL},
	};
	char *dir = sbt_tempdir();
	struct sbt_broker none = {0};
	struct run r;

	snprintf(none.socket, sizeof(none.socket), "%s/none.sock", dir);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		cli(&r, &none, cmds[i][0], cmds[i][1], cmds[i][2]);
		assert_fails(&r, 3, "no broker at ");
		ck_assert_ptr_nonnull(strstr(r.err, "start one with"));
		ck_assert_ptr_nonnull(strstr(r.err, none.socket));
		run_fini(&r);
	}
	sbt_rmtree(dir);
}
END_TEST

START_TEST(usage_errors)
{
	struct sbt_broker b;
	struct run r;

	sbt_broker_up(&b, NULL);
	cli(&r, &b, "pub", "a//b", "x");
	assert_fails(&r, 2, "shmbus: pub: bad topic name \"a//b\"");
	run_fini(&r);
	cli(&r, &b, "sub", "with space");
	assert_fails(&r, 2, "bad topic name");
	run_fini(&r);
	cli(&r, &b, "create", "t", "--capacity", "64KB");
	assert_fails(&r, 2, "--capacity: KB, MB and GB are ambiguous");
	run_fini(&r);
	cli(&r, &b, "create", "t", "--max-message", "lots");
	assert_fails(&r, 2, "--max-message: must be a size");
	run_fini(&r);
	/* A size the broker refuses: its own explanation. */
	cli(&r, &b, "create", "t", "--capacity", "1000");
	assert_fails(&r, 2, "--capacity must be a power of two");
	run_fini(&r);
	/* In the command line's words, not the config file's. */
	cli(&r, &b, "create", "t", "--max-message", "1GiB");
	assert_fails(&r, 2, "shmbus: create: --max-message must be from 1");
	ck_assert_ptr_null(strstr(r.err, "field"));
	run_fini(&r);
	cli(&r, &b, "create", "t", "--mode", "fanout");
	assert_fails(&r, 2, "--mode must be broadcast or queue");
	run_fini(&r);
	cli(&r, &b, "create", "t", "--max-stall-ms", "86400001");
	assert_fails(
	    &r, 2, "--max-stall-ms must be a whole number from 0 to 86400000");
	run_fini(&r);
	cli(&r, &b, "ls", "--frob");
	assert_fails(&r, 2, "shmbus: ls: unknown option --frob");
	run_fini(&r);
	cli(&r, &b, "sub", "t", "--count");
	assert_fails(&r, 2, "option --count needs a value");
	run_fini(&r);
	cli(&r, &b, "sub", "t", "--count", "0");
	assert_fails(&r, 2, "--count must be a whole number");
	run_fini(&r);
	cli(&r, &b, "sub", "t", "--from", "middle");
	assert_fails(&r, 2, "--from must be latest or earliest");
	run_fini(&r);
	cli(&r, &b, "pub", "t", "--rate", "-1", "x");
	assert_fails(&r, 2, "--rate must be a positive number");
	run_fini(&r);
	cli(&r, &b, "pub");
	assert_fails(&r, 2, "no TOPIC given");
	run_fini(&r);
	cli(&r, &b, "rm");
	assert_fails(&r, 2,
		     "shmbus: rm: no TOPIC given (try 'shmbus rm --help')");
	run_fini(&r);
	cli(&r, &b, "create", "a", "b");
	assert_fails(
	    &r, 2,
	    "shmbus: create: one TOPIC only (try 'shmbus create --help')");
	run_fini(&r);
	cli(&r, &b, "sub", "a//b");
	assert_fails(&r, 2,
		     "shmbus: sub: bad topic name \"a//b\": has an empty "
		     "segment");
	run_fini(&r);
	cli(&r, &b, "pub", "t", "--file", "/dev/null", "x");
	assert_fails(&r, 2, "--file or --lines: one of them");
	run_fini(&r);
	cli(&r, NULL, "frobnicate");
	assert_fails(&r, 2, "shmbus: frobnicate: unknown command");
	run_fini(&r);
	cli(&r, NULL, NULL);
	assert_fails(&r, 2, "no command given");
	run_fini(&r);
	cli(&r, NULL, "--frob");
	assert_fails(&r, 2, "unknown option");
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

START_TEST(no_such_topic)
{
	struct sbt_broker b;
	struct run r;

	sbt_broker_up(&b, "{\"auto_create\": false}");
	cli(&r, &b, "stat", "nosuch");
	assert_fails(&r, 4, "shmbus: stat: no such topic \"nosuch\"");
	run_fini(&r);
	cli(&r, &b, "rm", "nosuch");
	assert_fails(&r, 4, "shmbus: rm: no such topic \"nosuch\"");
	run_fini(&r);
	cli(&r, &b, "pub", "nosuch", "x");
	assert_fails(&r, 4, "shmbus: pub: no such topic \"nosuch\"");
	run_fini(&r);
	cli(&r, &b, "sub", "nosuch");
	assert_fails(&r, 4, "shmbus: sub: no such topic \"nosuch\"");
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

START_TEST(full_ring_and_oversized_message)
{
	struct sbt_broker b;
	shmbus *bus = NULL;
	shmbus_sub *sub = NULL, *sub2 = NULL;
	char big[2000];
	struct proc p;
	struct run r;

	memset(big, 'm', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sbt_broker_up(&b, NULL);
	cli(&r, &b, "create", "blk", "--capacity", "4KiB", "--max-message",
	    "1KiB");
	run_fini(&r);
	cli(&r, &b, "create", "rej", "--capacity", "4KiB", "--max-message",
	    "1KiB", "--overflow", "reject");
	run_fini(&r);
	/* Subscribers that never read hold the rings. */
	ck_assert_int_eq(shmbus_connect(b.socket, "check_cli", &bus), 0);
	ck_assert_int_eq(shmbus_sub_open(bus, "blk", SHMBUS_START_LATEST, &sub),
			 0);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "rej", SHMBUS_START_LATEST, &sub2), 0);
	/* A full topic is status 7 however the publisher did not wait:
	 * --timeout expired, --timeout 0, or the reject policy. */
	cli(&r, &b, "pub", "blk", "--timeout", "100ms", "--count", "20",
	    big + 1200);
	assert_fails(&r, 7, "topic \"blk\" is full (after waiting 100 ms");
	run_fini(&r);
	cli(&r, &b, "pub", "blk", "--timeout", "0", big + 1200);
	assert_fails(&r, 7, "topic \"blk\" is full (not waiting");
	run_fini(&r);
	/* Without --timeout the publisher waits: stat counts it blocked. */
	cli_bg(&p, &b, "pub", "blk", "--repeat", "20", big + 1200, NULL);
	cJSON_Delete(wait_stat_ge(&b, "blk", "stats.blocked_writers", 1));
	cli(&r, &b, "stat", "blk");
	assert_ok(&r);
	ck_assert_ptr_nonnull(strstr(r.out, "blocked writers 1"));
	run_fini(&r);
	kill(p.pid, SIGKILL);
	collect(&p, &r);
	run_fini(&r);
	cli(&r, &b, "pub", "rej", "--repeat", "20", big + 1200);
	assert_fails(&r, 7, "topic \"rej\" is full");
	run_fini(&r);
	cli(&r, &b, "pub", "rej", big);
	assert_fails(&r, 8,
		     "a message of 1999 bytes is larger than the max_message "
		     "of topic \"rej\" (1024 bytes");
	run_fini(&r);
	/* sub --timeout before --count messages: status 6. */
	cli(&r, &b, "sub", "rej", "--count", "1", "--timeout", "0.1");
	assert_fails(&r, 6, "timed out with 0 of 1 messages");
	run_fini(&r);
	shmbus_sub_close(sub);
	shmbus_sub_close(sub2);
	shmbus_close(bus);
	sbt_broker_stop(&b);
}
END_TEST

START_TEST(permission_denied)
{
	static const char config[] =
	    "{\"socket\": {\"mode\": \"0666\"},"
	    " \"topics\": [{\"name\": \"secret\","
	    "  \"access\": {\"publish\": {}, \"subscribe\": {}, "
	    "\"admin\": {}}}]}";
	struct how nobody = {.as_nobody = 1};
	struct sbt_broker b, closed;
	struct run r;

	sbt_broker_up(&b, config);
	/* Let uid 65534 reach the socket; the topic's rules still refuse. */
	ck_assert_int_eq(chmod(b.dir, 0755), 0);
	clih(&r, &nobody, &b, "ls", NULL);
	assert_ok(&r);
	ck_assert_ptr_nonnull(strstr(r.out, "secret "));
	run_fini(&r);
	clih(&r, &nobody, &b, "pub", "secret", "x", NULL);
	assert_fails(&r, 5, "shmbus: pub: permission denied");
	ck_assert_ptr_nonnull(strstr(r.err, "uid 65534"));
	run_fini(&r);
	clih(&r, &nobody, &b, "sub", "secret", NULL);
	assert_fails(&r, 5, "shmbus: sub: permission denied");
	run_fini(&r);
	clih(&r, &nobody, &b, "rm", "secret", NULL);
	assert_fails(&r, 5,
		     "the admin rule of topic \"secret\" refuses uid "
		     "65534");
	run_fini(&r);
	clih(&r, &nobody, &b, "create", "secret2", NULL);
	ck_assert_int_eq(r.status, 0); /* no rule on new topics */
	run_fini(&r);
	/* Root may. */
	cli(&r, &b, "rm", "secret");
	assert_ok(&r);
	run_fini(&r);
	sbt_broker_stop(&b);

	/* The socket itself (default mode 0600) refuses other users. */
	sbt_broker_up(&closed, NULL);
	ck_assert_int_eq(chmod(closed.dir, 0755), 0);
	clih(&r, &nobody, &closed, "ls", NULL);
	assert_fails(&r, 5, "permission denied connecting to");
	run_fini(&r);
	sbt_broker_stop(&closed);
}
END_TEST

/* ---- evict ------------------------------------------------------------- */

START_TEST(evict_removes_a_subscriber)
{
	static const char config[] =
	    "{\"socket\": {\"mode\": \"0666\"},"
	    " \"topics\": [{\"name\": \"held\", \"access\": {\"admin\": {}}}]}";
	struct how nobody = {.as_nobody = 1};
	struct sbt_broker b;
	struct proc p;
	struct run r;
	char slot[16], want[128];
	cJSON *st;

	sbt_broker_up(&b, config);
	ck_assert_int_eq(chmod(b.dir, 0755), 0);
	/* A `shmbus sub` asleep in poll() on its subscriber's descriptor. */
	cli_bg(&p, &b, "sub", "held", NULL);
	st = wait_stat_ge(&b, "held", "subscribers.0.sleeping", 1);
	snprintf(slot, sizeof(slot), "%.0f", jnum(st, "subscribers.0.slot"));
	ck_assert_int_eq((pid_t)jnum(st, "subscribers.0.pid"), p.pid);
	cJSON_Delete(st);

	cli(&r, &b, "evict", "held");
	assert_fails(&r, 2, "shmbus: evict: TOPIC and SLOT expected");
	run_fini(&r);
	cli(&r, &b, "evict", "held", "x");
	assert_fails(&r, 2, "SLOT must be a whole number");
	run_fini(&r);
	cli(&r, &b, "evict", "held", "64");
	assert_fails(&r, 2, "topic \"held\" has slots 0 to 63 (got 64)");
	run_fini(&r);
	cli(&r, &b, "evict", "nosuch", "0");
	assert_fails(&r, 4, "no such topic \"nosuch\"");
	run_fini(&r);
	clih(&r, &nobody, &b, "evict", "held", slot, NULL);
	assert_fails(&r, 5,
		     "the admin rule of topic \"held\" refuses uid 65534");
	run_fini(&r);

	cli(&r, &b, "evict", "held", slot);
	assert_ok(&r);
	snprintf(want, sizeof(want),
		 "evicted the subscriber in slot %s of topic \"held\" (pid "
		 "%ld)\n",
		 slot, (long)p.pid);
	ck_assert_str_eq(r.out, want);
	run_fini(&r);
	/* The evicted `shmbus sub` wakes and says why it stops. */
	collect(&p, &r);
	assert_fails(&r, 1, "shmbus: sub: topic \"held\": subscriber evicted");
	run_fini(&r);

	cli(&r, &b, "evict", "held", slot);
	assert_fails(&r, 4, "holds no subscriber");
	run_fini(&r);
	cli(&r, &b, "stat", "held");
	assert_ok(&r);
	ck_assert_ptr_nonnull(
	    strstr(r.out, "evicted 1 subscriber(s); max_stall_ms 0 (off)"));
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

/* ---- help and version -------------------------------------------------- */

START_TEST(help_and_version)
{
	static const char *const cmds[] = {"pub",   "sub",    "ls",   "stat",
					   "top",   "create", "rm",   "evict",
					   "bench", "req",    "reply"};
	char want[64];
	struct run r;

	cli(&r, NULL, "--help");
	assert_ok(&r);
	ck_assert_ptr_nonnull(strstr(r.out, "usage: shmbus"));
	ck_assert_ptr_nonnull(strstr(r.out, "Exit status:"));
	ck_assert_ptr_nonnull(strstr(r.out, "3  no broker"));
	run_fini(&r);
	cli(&r, NULL, "--version");
	assert_ok(&r);
	ck_assert_str_eq(r.out, "shmbus 0.1.0\n");
	run_fini(&r);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		snprintf(want, sizeof(want), "usage: shmbus %s", cmds[i]);
		cli(&r, NULL, "help", cmds[i]);
		assert_ok(&r);
		ck_assert_msg(strncmp(r.out, want, strlen(want)) == 0, "%s",
			      r.out);
		run_fini(&r);
		cli(&r, NULL, cmds[i], "--help");
		assert_ok(&r);
		ck_assert_msg(strncmp(r.out, want, strlen(want)) == 0, "%s",
			      r.out);
		run_fini(&r);
	}
	cli(&r, NULL, "help", "frob");
	assert_fails(&r, 2, "unknown command");
	run_fini(&r);
	/* The transport benchmark stays within reach. */
	cli(&r, NULL, "bench", "--help");
	assert_ok(&r);
	ck_assert_ptr_nonnull(strstr(r.out, "'make bench'"));
	ck_assert_ptr_nonnull(strstr(r.out, "shmbus-bench --help"));
	run_fini(&r);
}
END_TEST

/* ---- the examples (examples/) ------------------------------------------ */

/* A refused argument: nothing on stdout, status 2, and on stderr what was
 * wrong (`text`) followed by the usage (`usage`). */
static void assert_refused(const struct run *r, const char *text,
			   const char *usage)
{
	ck_assert_msg(r->status == 2, "status %d, expected 2; stderr: %s",
		      r->status, r->err);
	ck_assert_msg(r->out_len == 0, "stdout: %s", r->out);
	ck_assert_msg(strstr(r->err, text) != NULL, "\"%s\" not in: %s", text,
		      r->err);
	ck_assert_msg(strstr(r->err, usage) != NULL, "no usage in: %s", r->err);
}

/*
 * Each example takes [TOPIC [COUNT]] and --help/-h, nothing else. No broker
 * listens on the socket they are given: arguments that pass the check make
 * the example fail to connect (status 1), never publish or wait.
 */
START_TEST(examples_check_their_arguments)
{
	static const char *const names[] = {"producer", "consumer",
					    "uv_consumer"};
	static const char *const bad[][4] = {
	    /* arguments..., what stderr says */
	    {"--frob", NULL, NULL, "unknown option '--frob'"},
	    {"-x", "5", NULL, "unknown option '-x'"},
	    {"demo", "abc", NULL, "COUNT must be a whole number"},
	    {"demo", "-1", NULL, "COUNT must be a whole number"},
	    {"demo", "5x", NULL, "COUNT must be a whole number"},
	    {"demo", "5", "extra", "unexpected argument 'extra'"},
	};
	char *dir = sbt_tempdir();
	char sock[512], binary[512], usage[64];
	struct how how = {.binary = binary, .socket_env = sock};
	struct run r;

	snprintf(sock, sizeof(sock), "%s/none.sock", dir);
	for (size_t e = 0; e < sizeof(names) / sizeof(names[0]); e++) {
		snprintf(binary, sizeof(binary), "%s/examples/%s", sbt_bindir(),
			 names[e]);
		snprintf(usage, sizeof(usage), "usage: %s [TOPIC [COUNT]]\n",
			 names[e]);
		clih(&r, &how, NULL, "--help", NULL);
		assert_ok(&r);
		ck_assert_msg(strncmp(r.out, usage, strlen(usage)) == 0,
			      "%s --help: %s", names[e], r.out);
		ck_assert_str_eq(r.err, "");
		run_fini(&r);
		clih(&r, &how, NULL, "demo", "5", "-h", NULL);
		assert_ok(&r);
		ck_assert_msg(strncmp(r.out, usage, strlen(usage)) == 0,
			      "%s -h: %s", names[e], r.out);
		run_fini(&r);
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			clih(&r, &how, NULL, bad[i][0], bad[i][1], bad[i][2],
			     NULL);
			assert_refused(&r, bad[i][3], usage);
			run_fini(&r);
		}
		clih(&r, &how, NULL, "demo", "3", NULL);
		ck_assert_msg(r.status == 1 && strstr(r.err, "connect") != NULL,
			      "%s demo 3: status %d, stderr: %s", names[e],
			      r.status, r.err);
		run_fini(&r);
	}
	/* Only the consumers take 0 (until Ctrl-C); it passes their check. */
	snprintf(binary, sizeof(binary), "%s/examples/producer", sbt_bindir());
	clih(&r, &how, NULL, "demo", "0", NULL);
	assert_refused(&r, "COUNT must be a whole number >= 1, not '0'",
		       "usage: producer");
	run_fini(&r);
	snprintf(binary, sizeof(binary), "%s/examples/consumer", sbt_bindir());
	clih(&r, &how, NULL, "demo", "0", NULL);
	ck_assert_msg(r.status == 1, "consumer demo 0: status %d, stderr: %s",
		      r.status, r.err);
	run_fini(&r);
	sbt_rmtree(dir);
}
END_TEST

/* ---- bench ------------------------------------------------------------ */

/* The JSON object `path` (dots between keys, numbers index arrays). */
static const cJSON *jget(const cJSON *o, const char *path)
{
	char buf[128];
	char *save = NULL, *part;
	const cJSON *v = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (part = strtok_r(buf, ".", &save); v != NULL && part != NULL;
	     part = strtok_r(NULL, ".", &save)) {
		v = cJSON_IsArray(v)
			? cJSON_GetArrayItem(v, atoi(part))
			: cJSON_GetObjectItemCaseSensitive(v, part);
	}
	return v;
}

/* The rates of one side (or one thread) of the summary are positive. */
static void assert_rates(const cJSON *summary, const char *side)
{
	char path[96];

	snprintf(path, sizeof(path), "%s.msgs_per_sec", side);
	ck_assert_msg(jnum(summary, path) > 0, "%s", path);
	snprintf(path, sizeof(path), "%s.mb_per_sec", side);
	ck_assert_msg(jnum(summary, path) > 0, "%s", path);
}

START_TEST(bench_json_counts_every_message)
{
	static const char *const lat[] = {"p50", "p90", "p99", "p99_9", "max"};
	char path[96];
	struct sbt_broker b;
	struct run r;
	cJSON *j, *st;

	sbt_broker_up(&b, NULL);
	cli(&r, &b, "bench", "--count", "20000", "--size", "64", "--pub", "2",
	    "--sub", "2", "--json", "bench/t");
	assert_ok(&r);
	j = cJSON_Parse(r.out);
	ck_assert_msg(cJSON_IsObject(j), "not JSON: %s", r.out);
	ck_assert_str_eq(cJSON_GetStringValue(jget(j, "topic")), "bench/t");
	ck_assert(cJSON_IsTrue(jget(j, "created")));
	ck_assert_double_eq(jnum(j, "size"), 64);
	ck_assert_double_eq(jnum(j, "publishers.messages"), 40000);
	ck_assert_double_eq(jnum(j, "subscribers.messages"), 80000);
	ck_assert_double_eq(jnum(j, "lost"), 0);
	ck_assert_double_eq(jnum(j, "out_of_order"), 0);
	ck_assert_double_eq(jnum(j, "malformed"), 0);
	assert_rates(j, "publishers");
	assert_rates(j, "subscribers");
	ck_assert_int_eq(cJSON_GetArraySize(jget(j, "publishers.each")), 2);
	ck_assert_int_eq(cJSON_GetArraySize(jget(j, "subscribers.each")), 2);
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "publishers.each.%d", i);
		assert_rates(j, path);
		ck_assert_double_eq(jnum(jget(j, path), "messages"), 20000);
		snprintf(path, sizeof(path), "subscribers.each.%d", i);
		assert_rates(j, path);
		ck_assert_double_eq(jnum(jget(j, path), "messages"), 40000);
	}
	/* Percentiles in order, each a number. */
	for (size_t i = 1; i < sizeof(lat) / sizeof(*lat); i++) {
		char lo[32], hi[32];

		snprintf(lo, sizeof(lo), "latency_us.%s", lat[i - 1]);
		snprintf(hi, sizeof(hi), "latency_us.%s", lat[i]);
		ck_assert_msg(jnum(j, lo) <= jnum(j, hi), "%s > %s", lo, hi);
	}
	ck_assert(jnum(j, "latency_us.max") > 0);
	cJSON_Delete(j);
	run_fini(&r);
	/* The topic it created is gone. */
	st = lib_stat(&b, "bench/t");
	ck_assert_ptr_null(st);
	sbt_broker_stop(&b);
}
END_TEST

START_TEST(bench_text_on_an_existing_topic)
{
	struct sbt_broker b;
	struct run r;
	cJSON *j, *st;

	sbt_broker_up(&b, NULL);
	cli(&r, &b, "create", "kept", "--max-message", "1KiB");
	assert_ok(&r);
	run_fini(&r);
	cli(&r, &b, "bench", "--count", "500", "--size", "1K", "--sub", "3",
	    "kept");
	assert_ok(&r);
	ck_assert_ptr_nonnull(strstr(r.out, "topic \"kept\" (block"));
	ck_assert_ptr_nonnull(
	    strstr(r.out, "1 publisher, 3 subscribers, messages of 1KiB"));
	ck_assert_ptr_null(strstr(r.out, "created"));
	ck_assert_ptr_nonnull(strstr(r.out, "\npublishers   500 msgs in "));
	ck_assert_ptr_nonnull(strstr(r.out, "\nsubscribers  1.5K msgs in "));
	ck_assert_ptr_nonnull(strstr(r.out, "\n  sub 3      500 msgs in "));
	ck_assert_ptr_nonnull(strstr(r.out, "\nlatency      p50 "));
	ck_assert_ptr_nonnull(
	    strstr(r.out, "\nlost         0, out of order 0\n"));
	ck_assert_str_eq(r.err, "");
	run_fini(&r);
	/* Not created by bench, so not removed by it. */
	st = lib_stat(&b, "kept");
	ck_assert_ptr_nonnull(st);
	cJSON_Delete(st);
	/* Under 16 bytes a message has no time stamp: no latency. */
	cli(&r, &b, "bench", "--count", "100", "--size", "8", "--json", "tiny");
	assert_ok(&r);
	j = cJSON_Parse(r.out);
	ck_assert_msg(cJSON_IsObject(j), "not JSON: %s", r.out);
	ck_assert(cJSON_IsNull(jget(j, "latency_us")));
	ck_assert_double_eq(jnum(j, "subscribers.messages"), 100);
	cJSON_Delete(j);
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

/* A message that is not the publisher's next one is a loss, reported as
 * an error after the summary; SIGINT ends a --duration run early. */
START_TEST(bench_reports_losses)
{
	struct sbt_broker b;
	shmbus *bus = NULL;
	shmbus_pub *pub = NULL;
	/* Publisher 0, a sequence number it will never reach. */
	uint64_t fake[2] = {UINT64_C(1) << 46, 0};
	struct proc p;
	struct run r;

	sbt_broker_up(&b, NULL);
	cli(&r, &b, "create", "lossy");
	assert_ok(&r);
	run_fini(&r);
	cli_bg(&p, &b, "bench", "--duration", "1m", "--size", "16", "lossy",
	       NULL);
	wait_subscribers(&b, "lossy", 1);
	ck_assert_int_eq(shmbus_connect(b.socket, "check_cli", &bus), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, "lossy", &pub), 0);
	ck_assert_int_eq(shmbus_publish(pub, fake, sizeof(fake), -1), 0);
	kill(p.pid, SIGINT);
	collect(&p, &r);
	assert_fails(&r, 1, "topic \"lossy\": subscribers lost ");
	ck_assert_ptr_nonnull(strstr(r.out, "\npublishers   "));
	run_fini(&r);
	shmbus_pub_close(pub);
	shmbus_close(bus);
	sbt_broker_stop(&b);
}
END_TEST

START_TEST(bench_usage_errors)
{
	static const char *const bad[][4] = {
	    {"--count", "0", "t", "--count must be a whole number from 1"},
	    {"--pub", "0", "t", "--pub must be a whole number from 1 to 64"},
	    {"--sub", "65", "t", "--sub must be a whole number from 0 to 64"},
	    {"--size", "4", "t", "--size must be at least 8 bytes"},
	    {"--size", "64KB", "t", "--size: KB, MB and GB are ambiguous"},
	    {"--duration", "5x", "t", "--duration must be a duration such as"},
	    {"--duration", "0s", "t", "--duration must be more than 0"},
	    {"--frob", "1", "t", "unknown option --frob"},
	    {"a//b", NULL, NULL, "bad topic name \"a//b\""},
	};
	struct sbt_broker b;
	struct run r;

	sbt_broker_up(&b, NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		cli(&r, &b, "bench", bad[i][0], bad[i][1], bad[i][2]);
		assert_fails(&r, 2, bad[i][3]);
		ck_assert_ptr_nonnull(strstr(r.err, "shmbus: bench: "));
		run_fini(&r);
	}
	cli(&r, &b, "bench", "--count", "5", "--duration", "1s", "t");
	assert_fails(&r, 2, "give --count or --duration, not both");
	run_fini(&r);
	cli(&r, &b, "bench", "--count");
	assert_fails(&r, 2, "option --count needs a value");
	run_fini(&r);
	cli(&r, &b, "bench");
	assert_fails(&r, 2, "no TOPIC given (try 'shmbus bench --help')");
	run_fini(&r);
	/* Over a quarter of the ring of the topic it would create. */
	cli(&r, &b, "bench", "--size", "1M", "--capacity", "1MiB", "big");
	assert_fails(&r, 2, "cannot create topic \"big\"");
	ck_assert_ptr_nonnull(strstr(r.err, "--capacity"));
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

START_TEST(bench_refuses_what_the_topic_cannot_carry)
{
	struct sbt_broker b;
	struct run r;
	cJSON *st;

	sbt_broker_up(&b, NULL);
	cli(&r, &b, "create", "small", "--capacity", "4KiB", "--max-message",
	    "1KiB");
	assert_ok(&r);
	run_fini(&r);
	cli(&r, &b, "bench", "--size", "2K", "small");
	assert_fails(&r, 2,
		     "shmbus: bench: --size 2KiB is larger than the "
		     "max_message of topic \"small\", 1KiB");
	run_fini(&r);
	cli(&r, &b, "create", "q", "--mode", "queue");
	assert_ok(&r);
	run_fini(&r);
	cli(&r, &b, "bench", "q");
	assert_fails(&r, 2, "topic \"q\" is a queue");
	run_fini(&r);
	/* Both stay: bench did not create them. */
	st = lib_stat(&b, "small");
	ck_assert_ptr_nonnull(st);
	cJSON_Delete(st);
	sbt_broker_stop(&b);
}
END_TEST

/* ---- the habits of mosquitto and NATS users; output formats ---------- */

/* The string `key` of `o`, or "" when it is not one. */
static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : "";
}

/* Publishes `msgs` (n of them, lengths in `lens`) to `topic` through the
 * library, so that what the command prints can be checked byte for byte. */
static void lib_publish(const struct sbt_broker *b, const char *topic,
			const char *const *msgs, const size_t *lens, size_t n)
{
	shmbus *bus;
	shmbus_pub *pub;

	ck_assert_int_eq(shmbus_connect(b->socket, "check_cli", &bus), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, topic, &pub), 0);
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(shmbus_publish(pub, msgs[i], lens[i], 0), 0);
	}
	shmbus_pub_close(pub);
	shmbus_close(bus);
}

/* mosquitto_pub's -t -m -n -f -s -l, --count as --repeat, --file - */
START_TEST(short_flags_and_message_sources)
{
	static const char input[] = "from stdin\nsecond";
	struct sbt_broker b;
	char path[512];
	struct run r;

	sbt_broker_up(&b, NULL);
	snprintf(path, sizeof(path), "%s/input", b.dir);
	ck_assert_int_eq(sbt_write_file(path, input, sizeof(input) - 1), 0);
	cli(&r, &b, "create", "src");
	run_fini(&r);
	cli(&r, &b, "pub", "-t", "src", "-m", "one", "-n", "-m", "two",
	    "three");
	assert_ok(&r);
	run_fini(&r);
	cli(&r, &b, "pub", "src", "--count", "2", "-m", "twice");
	assert_ok(&r);
	run_fini(&r);
	clih(&r, &(struct how){.stdin_path = path}, &b, "pub", "src", "-s",
	     NULL);
	assert_ok(&r);
	run_fini(&r);
	clih(&r, &(struct how){.stdin_path = path}, &b, "pub", "src", "--file",
	     "-", NULL);
	assert_ok(&r);
	run_fini(&r);
	clih(&r, &(struct how){.stdin_path = path}, &b, "pub", "-t", "src",
	     "-l", NULL);
	assert_ok(&r);
	run_fini(&r);
	cli(&r, &b, "sub", "-t", "src", "--from", "earliest", "-C", "10", "-v");
	assert_ok(&r);
	ck_assert_str_eq(r.out, "src one\nsrc \nsrc two\nsrc three\n"
				"src twice\nsrc twice\n"
				"src from stdin\\nsecond\n"
				"src from stdin\\nsecond\n"
				"src from stdin\nsrc second\n");
	run_fini(&r);
	cli(&r, &b, "pub", "-t", "src", "-m", "x", "-l");
	assert_fails(&r, 2, "one of them");
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

/* One duration syntax: 250ms, 2s, 1m; a bare number is seconds. */
START_TEST(durations_everywhere)
{
	static const char *const bad[] = {"1x", "-1", "", "ms", "1e999", " 1"};
	struct sbt_broker b;
	struct run r;

	sbt_broker_up(&b, NULL);
	cli(&r, &b, "sub", "dur", "-W", "200ms");
	assert_ok(&r);
	run_fini(&r);
	cli(&r, &b, "sub", "dur", "--count", "1", "--timeout", "0.2");
	assert_fails(&r, 6, "timed out with 0 of 1 messages");
	run_fini(&r);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cli(&r, &b, "sub", "dur", "-W", bad[i]);
		assert_fails(&r, 2, "--timeout must be a duration such as");
		run_fini(&r);
		cli(&r, &b, "pub", "dur", "--timeout", bad[i], "x");
		assert_fails(&r, 2, "a bare number is seconds");
		run_fini(&r);
	}
	cli(&r, &b, "pub", "dur", "--timeout", "1000h", "x");
	assert_fails(&r, 2, "--timeout: at most");
	run_fini(&r);
	cli(&r, &b, "top", "--interval", "1x");
	assert_fails(&r, 2, "--interval must be a duration such as");
	run_fini(&r);
	cli(&r, &b, "top", "--interval", "0");
	assert_fails(&r, 2, "--interval must be more than 0");
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

/* -v, --timestamp, -x, -N and --format, on the same three messages. */
START_TEST(sub_line_and_format_output)
{
	static const char *const msgs[] = {"hi", "", "a\001"};
	static const size_t lens[] = {2, 0, 2};
	struct sbt_broker b;
	struct run r;
	const char *p;

	sbt_broker_up(&b, NULL);
	cli(&r, &b, "create", "fmt");
	run_fini(&r);
	lib_publish(&b, "fmt", msgs, lens, 3);
	cli(&r, &b, "sub", "fmt", "--from", "earliest", "-C", "3", "-x", "-N");
	assert_ok(&r);
	ck_assert_str_eq(r.out, "68696101");
	run_fini(&r);
	cli(&r, &b, "sub", "fmt", "--from", "earliest", "-C", "3", "-F",
	    "%s|%l|%x|%t|%p|%%\\t.");
	assert_ok(&r);
	ck_assert_str_eq(r.out, "0|2|6869|fmt|hi|%\t.\n"
				"1|0||fmt||%\t.\n"
				"2|2|6101|fmt|a\\x01|%\t.\n");
	run_fini(&r);
	/* Receive times: ISO 8601 UTC with microseconds, then Unix. */
	cli(&r, &b, "sub", "fmt", "--from", "earliest", "-C", "1",
	    "--timestamp", "-v");
	assert_ok(&r);
	ck_assert_int_eq(strlen(r.out), strlen("2026-12-05T13:20:24.123456Z "
					       "fmt hi\n"));
	ck_assert_int_eq(r.out[10], 'T');
	ck_assert_str_eq(r.out + 26, "Z fmt hi\n");
	run_fini(&r);
	cli(&r, &b, "sub", "fmt", "--from", "earliest", "-C", "1", "-F", "%U");
	assert_ok(&r);
	p = strchr(r.out, '.');
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(strlen(p), 1 + 9 + 1); /* .nnnnnnnnn\n */
	ck_assert(strtoll(r.out, NULL, 10) > 1700000000);
	run_fini(&r);
	cli(&r, &b, "sub", "fmt", "-F", "%q");
	assert_fails(&r, 2, "--format: unknown field \"%q\"");
	run_fini(&r);
	cli(&r, &b, "sub", "fmt", "-F", "\\z");
	assert_fails(&r, 2, "--format: unknown escape");
	run_fini(&r);
	cli(&r, &b, "sub", "fmt", "--json", "--hex");
	assert_fails(&r, 2, "one of them at most");
	run_fini(&r);
	cli(&r, &b, "sub", "fmt", "--json", "-v");
	assert_fails(&r, 2, "-v and --timestamp go with text or --hex");
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

/* --json: one object a line that a JSON parser reads back. */
START_TEST(sub_json_output)
{
	static const char *const msgs[] = {"caf\xc3\xa9 \"q\"", "\x00\xff"};
	static const size_t lens[] = {9, 2};
	struct sbt_broker b;
	struct run r;
	char *line, *save = NULL;
	int i = 0;

	sbt_broker_up(&b, NULL);
	cli(&r, &b, "create", "js");
	run_fini(&r);
	lib_publish(&b, "js", msgs, lens, 2);
	cli(&r, &b, "sub", "js", "--from", "earliest", "-C", "2", "--json");
	assert_ok(&r);
	for (line = strtok_r(r.out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save), i++) {
		cJSON *o = cJSON_Parse(line);

		ck_assert_msg(o != NULL, "not JSON: %s", line);
		ck_assert_str_eq(jstr(o, "topic"), "js");
		ck_assert_int_eq(jnum(o, "seq"), i);
		ck_assert_int_eq(jnum(o, "length"), (double)lens[i]);
		ck_assert_int_eq(strlen(jstr(o, "received")), 27);
		if (i == 0) {
			ck_assert_str_eq(jstr(o, "payload"), msgs[0]);
		} else {
			ck_assert_str_eq(jstr(o, "payload_hex"), "00ff");
		}
		cJSON_Delete(o);
	}
	ck_assert_int_eq(i, 2);
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

/* sub --framed writes frames that pub --framed publishes again, byte for
 * byte: empty messages, NULs and newlines included. */
START_TEST(framed_round_trip)
{
	static const char *const msgs[] = {"one", "", "a\0b\n", "last"};
	static const size_t lens[] = {3, 0, 4, 4};
	static const unsigned char truncated[] = {0, 0, 0, 5, 'a', 'b'};
	static const unsigned char huge[] = {0x7f, 0xff, 0xff, 0xff};
	struct sbt_broker b;
	char path[512];
	struct run r;

	sbt_broker_up(&b, NULL);
	cli(&r, &b, "create", "fa", "--max-message", "1KiB");
	run_fini(&r);
	cli(&r, &b, "create", "fb", "--max-message", "1KiB");
	run_fini(&r);
	lib_publish(&b, "fa", msgs, lens, 4);
	cli(&r, &b, "sub", "fa", "--from", "earliest", "-C", "4", "--framed");
	assert_ok(&r);
	ck_assert_uint_eq(r.out_len, 4 * 4 + 3 + 0 + 4 + 4);
	ck_assert_mem_eq(r.out, "\0\0\0\003one\0\0\0\0\0\0\0\004a\0b\n", 19);
	snprintf(path, sizeof(path), "%s/frames", b.dir);
	ck_assert_int_eq(sbt_write_file(path, r.out, r.out_len), 0);
	run_fini(&r);
	clih(&r, &(struct how){.stdin_path = path}, &b, "pub", "fb", "--framed",
	     NULL);
	assert_ok(&r);
	run_fini(&r);
	cli(&r, &b, "pub", "fb", "--framed", "--file", path);
	assert_ok(&r);
	run_fini(&r);
	cli(&r, &b, "sub", "fb", "--from", "earliest", "-C", "8", "-x");
	assert_ok(&r);
	ck_assert_str_eq(r.out, "6f6e65\n\n6100620a\n6c617374\n"
				"6f6e65\n\n6100620a\n6c617374\n");
	run_fini(&r);
	/* A frame cut short; a length over max_message, refused before its
	 * bytes are read (there are none). */
	ck_assert_int_eq(sbt_write_file(path, truncated, sizeof(truncated)), 0);
	cli(&r, &b, "pub", "fb", "--framed", "--file", path);
	assert_fails(&r, 1, "frame 1 (5 bytes): input ends after 2 bytes");
	run_fini(&r);
	ck_assert_int_eq(sbt_write_file(path, huge, sizeof(huge)), 0);
	cli(&r, &b, "pub", "fb", "--framed", "--file", path);
	assert_fails(&r, 8,
		     "frame 1 (2147483647 bytes) is larger than the "
		     "max_message of topic \"fb\" (1024 bytes");
	run_fini(&r);
	cli(&r, &b, "pub", "fb", "--framed", "x");
	assert_fails(&r, 2, "--framed reads standard input or --file");
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

/* create --metadata: sub shows each message's publisher and publish
 * time (%P, %W, --json); a topic without them shows "-". */
START_TEST(metadata_in_sub_output)
{
	struct sbt_broker b;
	struct run r;
	cJSON *o;
	char *end;

	sbt_broker_up(&b, NULL);
	cli(&r, &b, "create", "md", "--metadata", "--max-message", "1KiB");
	assert_ok(&r);
	ck_assert_ptr_nonnull(strstr(r.out, ", metadata"));
	run_fini(&r);
	cli(&r, &b, "pub", "md", "one");
	assert_ok(&r);
	run_fini(&r);
	cli(&r, &b, "sub", "md", "--from", "earliest", "-C", "1", "-F",
	    "%P|%W|%p");
	assert_ok(&r);
	ck_assert(strtoull(r.out, &end, 10) > 0);
	ck_assert_int_eq(end[0], '|');
	ck_assert_int_eq(strlen(end),
			 strlen("|2026-12-05T13:20:24.123456Z|one\n"));
	ck_assert_str_eq(end + 28, "|one\n");
	/* --timestamp=publish prints that same time (not the receive time,
	 * which differs from one sub to the next). */
	{
		char published[28];
		struct run r2;

		memcpy(published, end + 1, 27);
		published[27] = '\0';
		cli(&r2, &b, "sub", "md", "--from", "earliest", "-C", "1",
		    "--timestamp=publish", "-v");
		assert_ok(&r2);
		ck_assert_int_eq(strncmp(r2.out, published, 27), 0);
		ck_assert_str_eq(r2.out + 27, " md one\n");
		run_fini(&r2);
	}
	run_fini(&r);
	cli(&r, &b, "sub", "md", "--from", "earliest", "-C", "1", "--json");
	assert_ok(&r);
	o = cJSON_Parse(r.out);
	ck_assert_ptr_nonnull(o);
	ck_assert(jnum(o, "publisher") > 0);
	ck_assert_int_eq(strlen(jstr(o, "published")), 27);
	ck_assert_str_eq(jstr(o, "payload"), "one");
	cJSON_Delete(o);
	run_fini(&r);
	/* The 16 bytes count in max_message. */
	{
		char big[1024 - 16 + 2];

		memset(big, 'b', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		cli(&r, &b, "pub", "md", big);
		assert_fails(&r, 8, "(1008 bytes");
		run_fini(&r);
	}
	cli(&r, &b, "pub", "nomd", "two");
	run_fini(&r);
	cli(&r, &b, "create", "nomd2");
	run_fini(&r);
	cli(&r, &b, "pub", "nomd2", "two");
	run_fini(&r);
	cli(&r, &b, "sub", "nomd2", "--from", "earliest", "-C", "1", "-F",
	    "%P|%W|%p");
	assert_ok(&r);
	ck_assert_str_eq(r.out, "-|-|two\n");
	run_fini(&r);
	cli(&r, &b, "sub", "nomd2", "--from", "earliest", "-C", "1",
	    "--timestamp=publish");
	assert_ok(&r);
	ck_assert_str_eq(r.out, "- two\n");
	run_fini(&r);
	cli(&r, &b, "sub", "nomd2", "--timestamp=sent");
	assert_fails(&r, 2, "--timestamp must be receive or publish");
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

/* Whether `line` (with its newline) is one of the lines of `text`. */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; p != NULL && *p != '\0';
	     p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, line, n) == 0 && p[n] == '\n') {
			return true;
		}
	}
	return false;
}

/*
 * Several topics and patterns on one sub: named topics, a pattern's
 * topics that exist, one created after the sub started, and one removed
 * and created again; a topic the pattern does not match stays out.
 */
START_TEST(sub_follows_topics_and_patterns)
{
	struct sbt_broker b;
	struct proc p;
	struct run r, s;
	shmbus *bus;

	sbt_broker_up(&b, NULL);
	ck_assert_int_eq(shmbus_connect(b.socket, "check_cli", &bus), 0);
	ck_assert_int_eq(shmbus_topic_create(bus, "plain", NULL), 0);
	ck_assert_int_eq(shmbus_topic_create(bus, "sensors/a", NULL), 0);
	ck_assert_int_eq(shmbus_topic_create(bus, "sensors/gone", NULL), 0);
	cli_bg(&p, &b, "sub", "-v", "-C", "5", "-W", "60", "plain", "sensors/+",
	       "-t", "logs/#", NULL);
	wait_subscribers(&b, "plain", 1);
	wait_subscribers(&b, "sensors/a", 1);
	wait_subscribers(&b, "sensors/gone", 1);
	/* Appearing later: explicitly, and implicitly by a publisher. */
	ck_assert_int_eq(shmbus_topic_create(bus, "sensors/b", NULL), 0);
	wait_subscribers(&b, "sensors/b", 1);
	ck_assert_int_eq(shmbus_topic_delete(bus, "sensors/gone"), 0);
	ck_assert_int_eq(shmbus_topic_create(bus, "sensors/gone", NULL), 0);
	wait_subscribers(&b, "sensors/gone", 1);
	cli(&r, &b, "pub", "plain", "p1");
	assert_ok(&r);
	run_fini(&r);
	cli(&r, &b, "pub", "other/x", "never");
	run_fini(&r);
	cli(&r, &b, "pub", "sensors/a", "a1");
	run_fini(&r);
	cli(&r, &b, "pub", "sensors/b", "b1");
	run_fini(&r);
	cli(&r, &b, "pub", "sensors/gone", "back");
	run_fini(&r);
	ck_assert_int_eq(shmbus_topic_create(bus, "logs/app/1", NULL), 0);
	wait_subscribers(&b, "logs/app/1", 1);
	cli(&r, &b, "pub", "logs/app/1", "deep");
	run_fini(&r);
	collect(&p, &s);
	assert_ok(&s);
	ck_assert_msg(has_line(s.out, "plain p1") &&
			  has_line(s.out, "sensors/a a1") &&
			  has_line(s.out, "sensors/b b1") &&
			  has_line(s.out, "sensors/gone back") &&
			  has_line(s.out, "logs/app/1 deep"),
		      "got: %s", s.out);
	ck_assert_ptr_null(strstr(s.out, "never"));
	run_fini(&s);
	cli(&r, &b, "sub", "a/#/b");
	assert_fails(&r, 2, "bad pattern \"a/#/b\": has '#' before its last");
	run_fini(&r);
	ck_assert_int_eq(shmbus_close(bus), 0);
	sbt_broker_stop(&b);
}
END_TEST

/* Writes `total` bytes of 'a' (no newline) into the FIFO at `path`, then
 * exits; stops early, quietly, when the reader goes away. */
static pid_t feed_fifo(const char *path, size_t total)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		static char chunk[64 * 1024];
		int fd;

		signal(SIGPIPE, SIG_IGN);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		memset(chunk, 'a', sizeof(chunk));
		fd = open(path, O_WRONLY);
		for (size_t sent = 0; fd >= 0 && sent < total;) {
			ssize_t n = write(fd, chunk, sizeof(chunk));

			if (n <= 0) {
				break;
			}
			sent += (size_t)n;
		}
		_exit(0);
	}
	return pid;
}

/*
 * A line that never ends is refused once it passes max_message, without
 * reading the rest: 100 MB without a newline leave the publisher's peak
 * RSS far below them. (Unbounded, it grew to 207 MB for 200 MB.)
 */
START_TEST(a_line_over_max_message_is_refused_without_reading_it)
{
	struct sbt_broker b;
	char fifo[512];
	struct run r;
	pid_t feeder;

	sbt_broker_up(&b, NULL);
	cli(&r, &b, "create", "big", "--capacity", "4MiB", "--max-message",
	    "1MiB");
	run_fini(&r);
	snprintf(fifo, sizeof(fifo), "%s/endless", b.dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	feeder = feed_fifo(fifo, 100u << 20);
	clih(&r, &(struct how){.stdin_path = fifo}, &b, "pub", "big", NULL);
	assert_fails(&r, 8,
		     "line 1 is larger than the max_message of topic \"big\" "
		     "(1048576 bytes");
	/* ru_maxrss counts the forked test runner's pages before the exec
	 * too (large under AddressSanitizer): what the publisher adds is
	 * measured against a command that reads nothing, forked alike. */
	{
		long pub_kib = r.maxrss_kib;
		struct run base;

		cli(&base, &b, "pub", "--help");
		assert_ok(&base);
		ck_assert_msg(pub_kib - base.maxrss_kib < 48 * 1024,
			      "pub's peak RSS was %ld KiB (a command that "
			      "reads nothing: %ld KiB) for a 1 MiB "
			      "max_message",
			      pub_kib, base.maxrss_kib);
		run_fini(&base);
	}
	run_fini(&r);
	ck_assert_int_eq(sbt_wait(feeder), 0);
	sbt_broker_stop(&b);
}
END_TEST

/* ---- request and reply: shmbus req and shmbus reply ------------------- */

/*
 * Reads the background command's stderr until it contains `text` (bounded):
 * `shmbus reply -v` says "serving" once its server is open, so that a
 * request sent after that finds it. What was read is kept in `seen`.
 */
static void wait_stderr(struct proc *p, const char *text, char *seen,
			size_t cap)
{
	size_t len = strlen(seen);

	for (int waited = 0; strstr(seen, text) == NULL; waited += 100) {
		struct pollfd fd = {.fd = p->err_fd, .events = POLLIN};
		ssize_t n;

		ck_assert_msg(waited < BOUND_MS,
			      "\"%s\" never came; stderr: %s", text, seen);
		if (poll(&fd, 1, 100) <= 0) {
			continue;
		}
		n = read(p->err_fd, seen + len, cap - 1 - len);
		ck_assert_msg(n > 0, "stderr ended before \"%s\": %s", text,
			      seen);
		len += (size_t)n;
		seen[len] = '\0';
	}
}

/* A `shmbus reply -v SERVICE ARGS...` serving in the background. */
struct server {
	struct proc p;
	char err[ERR_MAX]; /* its stderr up to "serving" */
};

static void server_up(struct server *s, const struct sbt_broker *b,
		      const char *const *args)
{
	const char *argv[32] = {"shmbus", "reply", "--socket", b->socket, "-v"};
	size_t n = 5;

	for (; *args != NULL && n < 31; args++) {
		argv[n++] = *args;
	}
	argv[n] = NULL;
	s->err[0] = '\0';
	spawn(&s->p, &(struct how){0}, argv);
	wait_stderr(&s->p, "serving", s->err, sizeof(s->err));
}

/* Stops the server (SIGTERM, or `sig`, 0: none: it ends by itself) and
 * collects it; its whole stderr is in r->err. */
static void server_down(struct server *s, int sig, struct run *r)
{
	size_t had = strlen(s->err);

	if (sig != 0) {
		kill(s->p.pid, sig);
	}
	collect(&s->p, r);
	if (had + strlen(r->err) < ERR_MAX) {
		memmove(r->err + had, r->err, strlen(r->err) + 1);
		memcpy(r->err, s->err, had);
	}
}

#define SERVER(s, b, ...)                                                      \
	server_up((s), (b), (const char *[]){__VA_ARGS__, NULL})

/* Every byte value, newlines and NULs included: a request or a reply is
 * bytes, not a line. */
static size_t all_bytes(char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		buf[i] = (char)(i * 7 + 3);
	}
	return n;
}

START_TEST(req_gets_the_reply_byte_for_byte)
{
	struct sbt_broker b;
	struct server echo, fixed;
	char path[512], bin[3000];
	struct run r;

	sbt_broker_up(&b, NULL);
	SERVER(&echo, &b, "echo");
	SERVER(&fixed, &b, "fixed", "the answer");

	cli(&r, &b, "req", "--raw", "echo", "hello, world");
	assert_ok(&r);
	ck_assert_uint_eq(r.out_len, 12);
	ck_assert_str_eq(r.out, "hello, world");
	run_fini(&r);
	/* Without --raw a newline follows, unless the reply ends with one. */
	cli(&r, &b, "req", "echo", "hi");
	assert_ok(&r);
	ck_assert_str_eq(r.out, "hi\n");
	run_fini(&r);
	cli(&r, &b, "req", "echo", "line\n");
	assert_ok(&r);
	ck_assert_str_eq(r.out, "line\n");
	run_fini(&r);
	/* A file, and standard input, as one request of any bytes. */
	snprintf(path, sizeof(path), "%s/bin", b.dir);
	ck_assert_int_eq(sbt_write_file(path, bin, all_bytes(bin, sizeof(bin))),
			 0);
	cli(&r, &b, "req", "--raw", "echo", "-f", path);
	assert_ok(&r);
	ck_assert_uint_eq(r.out_len, sizeof(bin));
	ck_assert_mem_eq(r.out, bin, sizeof(bin));
	run_fini(&r);
	clih(&r, &(struct how){.stdin_path = path}, &b, "req", "--raw", "echo",
	     NULL);
	assert_ok(&r);
	ck_assert_uint_eq(r.out_len, sizeof(bin));
	ck_assert_mem_eq(r.out, bin, sizeof(bin));
	run_fini(&r);
	/* An empty request is a request too. */
	cli(&r, &b, "req", "--raw", "echo", "");
	assert_ok(&r);
	ck_assert_uint_eq(r.out_len, 0);
	run_fini(&r);
	/* --count asks again; a fixed MESSAGE answers whatever is asked. */
	cli(&r, &b, "req", "--count", "3", "fixed", "question");
	assert_ok(&r);
	ck_assert_str_eq(r.out, "the answer\nthe answer\nthe answer\n");
	run_fini(&r);

	server_down(&echo, SIGTERM, &r);
	assert_ok(&r); /* SIGTERM ends serving cleanly */
	ck_assert_ptr_nonnull(strstr(r.err, "request 6: 0 bytes"));
	run_fini(&r);
	server_down(&fixed, SIGINT, &r);
	assert_ok(&r);
	run_fini(&r);
	/* Its server closed, the service has none. */
	cli(&r, &b, "req", "echo", "anyone?");
	assert_fails(&r, 9, "no server serves \"echo\"");
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

/* --count N: the server answers N requests and exits 0 by itself. */
START_TEST(reply_count_stops_after_n_requests)
{
	struct sbt_broker b;
	struct server s;
	struct run r;

	sbt_broker_up(&b, NULL);
	SERVER(&s, &b, "--count", "2", "twice");
	cli(&r, &b, "req", "twice", "one");
	assert_ok(&r);
	run_fini(&r);
	cli(&r, &b, "req", "twice", "two");
	assert_ok(&r);
	ck_assert_str_eq(r.out, "two\n");
	run_fini(&r);
	server_down(&s, 0, &r);
	assert_ok(&r);
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

/*
 * --exec: the request reaches the command on its standard input, byte for
 * byte, and never as part of a command line. A request made of shell
 * syntax is answered as data, by cat and by a shell the user wrote, and
 * nothing in it runs: the files it names stay as they were.
 */
START_TEST(reply_exec_takes_the_request_on_stdin)
{
	struct sbt_broker b;
	struct server cat, shell, upper;
	char evil[4096], keep[512], made[512], bin[5000], path[512];
	struct stat st;
	struct run r;

	sbt_broker_up(&b, NULL);
	snprintf(keep, sizeof(keep), "%s/keep", b.dir);
	snprintf(made, sizeof(made), "%s/made", b.dir);
	ck_assert_int_eq(sbt_write_file(keep, "kept", 4), 0);
	snprintf(evil, sizeof(evil),
		 "$(touch %s); rm -f %s; `touch %s` && echo x > %s | "
		 "rm %s\n'; rm -f %s; '",
		 made, keep, made, made, keep, keep);
	SERVER(&cat, &b, "cat", "--exec", "cat");
	SERVER(&shell, &b, "shell", "--exec", "sh", "-c",
	       "read -r line; printf '%s' \"$line\"");
	SERVER(&upper, &b, "upper", "--exec", "tr", "a-z", "A-Z");

	cli(&r, &b, "req", "--raw", "cat", evil);
	assert_ok(&r);
	ck_assert_str_eq(r.out, evil);
	run_fini(&r);
	cli(&r, &b, "req", "--raw", "shell", evil);
	assert_ok(&r);
	ck_assert_uint_eq(r.out_len, (size_t)(strchr(evil, '\n') - evil));
	ck_assert_mem_eq(r.out, evil, r.out_len);
	run_fini(&r);
	ck_assert_int_eq(stat(made, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(stat(keep, &st), 0);
	ck_assert_int_eq((int)st.st_size, 4);

	/* Binary data, larger than one pipe write, comes back whole. */
	snprintf(path, sizeof(path), "%s/bin", b.dir);
	ck_assert_int_eq(sbt_write_file(path, bin, all_bytes(bin, sizeof(bin))),
			 0);
	cli(&r, &b, "req", "--raw", "cat", "-f", path);
	assert_ok(&r);
	ck_assert_uint_eq(r.out_len, sizeof(bin));
	ck_assert_mem_eq(r.out, bin, sizeof(bin));
	run_fini(&r);
	/* A command that reads none of a request larger than a pipe holds
	 * still answers: the write's EPIPE is not the server's death. */
	{
		struct server deaf;
		char *big = malloc(65536);

		ck_assert_ptr_nonnull(big);
		memset(big, 'r', 65536);
		ck_assert_int_eq(sbt_write_file(path, big, 65536), 0);
		free(big);
		SERVER(&deaf, &b, "deaf", "--exec", "echo", "not listening");
		cli(&r, &b, "req", "deaf", "-f", path);
		assert_ok(&r);
		ck_assert_str_eq(r.out, "not listening\n");
		run_fini(&r);
		server_down(&deaf, SIGTERM, &r);
		assert_ok(&r);
		run_fini(&r);
	}
	/* The command's arguments are its own, not ours (-z, A-Z). */
	cli(&r, &b, "req", "upper", "shout");
	assert_ok(&r);
	ck_assert_str_eq(r.out, "SHOUT\n");
	run_fini(&r);

	server_down(&cat, SIGTERM, &r);
	assert_ok(&r);
	run_fini(&r);
	server_down(&shell, SIGTERM, &r);
	assert_ok(&r);
	run_fini(&r);
	server_down(&upper, SIGTERM, &r);
	assert_ok(&r);
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

/*
 * How --exec ends: a status other than 0 still answers with the output
 * (and says so); a command killed at --exec-timeout, one that writes more
 * than the largest reply and one killed by a signal send no answer (the
 * requester times out: status 6) and serving goes on; a command that
 * cannot be started ends the server (1), and its requester learns that
 * the server went away (10).
 */
START_TEST(reply_exec_failures)
{
	struct sbt_broker b;
	struct server s;
	struct run r;

	sbt_broker_up(&b, NULL);
	SERVER(&s, &b, "--exec-timeout", "300ms", "svc", "--exec", "sh", "-c",
	       "read -r x; case $x in "
	       "fail) echo partial; exit 3;; "
	       "hang) exec sleep 60;; "
	       "flood) exec cat /dev/zero;; "
	       "die) kill -9 $$;; "
	       "*) echo \"ok $x\";; esac");
	cli(&r, &b, "req", "svc", "fail");
	assert_ok(&r);
	ck_assert_str_eq(r.out, "partial\n");
	run_fini(&r);
	cli(&r, &b, "req", "--timeout", "2s", "svc", "hang");
	assert_fails(&r, 6, "no reply from \"svc\"");
	run_fini(&r);
	cli(&r, &b, "req", "--timeout", "2s", "svc", "flood");
	assert_fails(&r, 6, "no reply from \"svc\"");
	run_fini(&r);
	cli(&r, &b, "req", "--timeout", "2s", "svc", "die");
	assert_fails(&r, 6, "no reply from \"svc\"");
	run_fini(&r);
	cli(&r, &b, "req", "svc", "again");
	assert_ok(&r);
	ck_assert_str_eq(r.out, "ok again\n");
	run_fini(&r);
	server_down(&s, SIGTERM, &r);
	assert_ok(&r);
	ck_assert_ptr_nonnull(strstr(r.err, "sh exited with status 3"));
	ck_assert_ptr_nonnull(
	    strstr(r.err, "sh did not finish within 300 ms: killed"));
	ck_assert_ptr_nonnull(strstr(
	    r.err, "sh wrote more than the largest reply (65536 bytes)"));
	ck_assert_ptr_nonnull(strstr(r.err, "sh was killed by signal 9"));
	run_fini(&r);

	SERVER(&s, &b, "svc", "--exec", "/nonexistent/command");
	cli(&r, &b, "req", "svc", "x");
	assert_fails(&r, 10,
		     "the server of \"svc\" went away before it "
		     "answered");
	run_fini(&r);
	server_down(&s, 0, &r);
	ck_assert_int_eq(r.status, 1);
	ck_assert_ptr_nonnull(
	    strstr(r.err, "cannot run /nonexistent/command: No such file"));
	run_fini(&r);
	sbt_broker_stop(&b);
}
END_TEST

/* Waits (bounded) until the file `path` holds at least `len` bytes. */
static void wait_file(const char *path, off_t len)
{
	struct stat st;

	for (int i = 0; stat(path, &st) < 0 || st.st_size < len; i++) {
		ck_assert_msg(i < BOUND_MS / 10, "%s never came", path);
		sbt_sleep_ms(10);
	}
}

/* The pid the command wrote to `path`; waits (bounded) until no such
 * process is left: it was killed and reaped. */
static void wait_gone(const char *path)
{
	char buf[32] = "";
	FILE *f = fopen(path, "r");
	long pid;

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
	fclose(f);
	pid = strtol(buf, NULL, 10);
	ck_assert_int_gt(pid, 1);
	for (int i = 0; kill((pid_t)pid, 0) == 0; i++) {
		ck_assert_msg(i < BOUND_MS / 10,
			      "the command (pid %ld) lives on", pid);
		sbt_sleep_ms(10);
	}
	ck_assert_int_eq(errno, ESRCH);
}

/*
 * The statuses a script tells apart: no server (9), a server killed
 * holding the request (10, not a timeout), no answer in time (6). The
 * command writes its pid, then the request to a file once it has it, so
 * the kill comes while the server holds the request; the command must not
 * outlive its server, whether it ends by SIGTERM or is SIGKILLed.
 */
START_TEST(req_exit_statuses)
{
	struct sbt_broker b;
	struct server s;
	struct proc asker;
	char started[512], pidfile[512], script[1200];
	struct run r;

	sbt_broker_up(&b, NULL);
	cli(&r, &b, "req", "nobody", "hello");
	assert_fails(&r, 9, "no server serves \"nobody\"");
	ck_assert_uint_eq(r.out_len, 0);
	run_fini(&r);

	snprintf(started, sizeof(started), "%s/started", b.dir);
	snprintf(pidfile, sizeof(pidfile), "%s/pid", b.dir);
	snprintf(script, sizeof(script), "echo $$ >%s; cat >%s; exec sleep 60",
		 pidfile, started);
	SERVER(&s, &b, "--exec-timeout", "1m", "slow", "--exec", "sh", "-c",
	       script);
	cli(&r, &b, "req", "--timeout", "200ms", "slow", "first");
	assert_fails(&r, 6, "no reply from \"slow\" within 200 ms");
	run_fini(&r);
	wait_file(started, 5);
	server_down(&s, SIGTERM, &r); /* also kills its command */
	assert_ok(&r);
	run_fini(&r);
	wait_gone(pidfile);
	ck_assert_int_eq(unlink(started), 0);
	ck_assert_int_eq(unlink(pidfile), 0);

	SERVER(&s, &b, "--exec-timeout", "1m", "slow", "--exec", "sh", "-c",
	       script);
	cli_bg(&asker, &b, "req", "--timeout", "1m", "slow", "second", NULL);
	wait_file(started, 6);
	server_down(&s, SIGKILL, &r);
	ck_assert_int_eq(r.status, -SIGKILL);
	run_fini(&r);
	collect(&asker, &r);
	assert_fails(&r, 10,
		     "the server of \"slow\" went away before it "
		     "answered");
	run_fini(&r);
	wait_gone(pidfile); /* PR_SET_PDEATHSIG */
	sbt_broker_stop(&b);
}
END_TEST

/* Bad input: a request over the service's largest (refused before it is
 * sent, 8), a service the broker does not know when it creates none on
 * demand (4, for both commands), and usage errors (2). */
START_TEST(req_and_reply_bad_input)
{
	struct sbt_broker b;
	struct server s;
	char path[512], *big;
	size_t len = 64 * 1024 + 1;
	struct run r;

	sbt_broker_up(&b, NULL);
	SERVER(&s, &b, "svc");
	big = malloc(len + 1);
	ck_assert_ptr_nonnull(big);
	memset(big, 'x', len);
	big[len] = '\0';
	snprintf(path, sizeof(path), "%s/big", b.dir);
	ck_assert_int_eq(sbt_write_file(path, big, len), 0);
	cli(&r, &b, "req", "svc", "-f", path);
	assert_fails(&r, 8,
		     "is larger than the largest request of service "
		     "\"svc\" (65536 bytes)");
	run_fini(&r);
	cli(&r, &b, "req", "svc", big);
	assert_fails(&r, 8, "the MESSAGE is larger than the largest request");
	run_fini(&r);
	clih(&r, &(struct how){.stdin_path = path}, &b, "req", "svc", NULL);
	assert_fails(&r, 8, "standard input is larger than the largest");
	run_fini(&r);
	cli(&r, &b, "req", "svc", "fine");
	assert_ok(&r);
	run_fini(&r);
	server_down(&s, SIGTERM, &r);
	assert_ok(&r);
	/* Only the one request that fits ever reached the server. */
	ck_assert_ptr_nonnull(strstr(r.err, "request 1: 4 bytes"));
	ck_assert_ptr_null(strstr(r.err, "request 2"));
	run_fini(&r);
	/* A fixed answer over the largest reply is refused at start. */
	cli(&r, &b, "reply", "svc", big);
	assert_fails(&r, 8, "MESSAGE is larger than the largest reply");
	run_fini(&r);
	free(big);
	sbt_broker_stop(&b);

	sbt_broker_up(&b, "{\"auto_create\": false}");
	cli(&r, &b, "req", "unknown", "x");
	assert_fails(&r, 4, "no such service \"unknown\"");
	run_fini(&r);
	cli(&r, &b, "reply", "unknown");
	assert_fails(&r, 4, "no such service \"unknown\"");
	run_fini(&r);
	sbt_broker_stop(&b);

	cli(&r, NULL, "req");
	assert_fails(&r, 2, "no SERVICE given");
	run_fini(&r);
	cli(&r, NULL, "req", "a//b", "x");
	assert_fails(&r, 2, "bad service name \"a//b\"");
	run_fini(&r);
	cli(&r, NULL, "req", "svc", "x", "y");
	assert_fails(&r, 2, "one SERVICE and one MESSAGE at most");
	run_fini(&r);
	cli(&r, NULL, "req", "--timeout", "0", "svc", "x");
	assert_fails(&r, 2, "--timeout must be more than 0");
	run_fini(&r);
	cli(&r, NULL, "req", "--timeout", "soon", "svc", "x");
	assert_fails(&r, 2, "--timeout must be a duration");
	run_fini(&r);
	cli(&r, NULL, "req", "-f", "/dev/null", "svc", "x");
	assert_fails(&r, 2, "give a MESSAGE or --file, not both");
	run_fini(&r);
	cli(&r, NULL, "reply", "svc", "--exec");
	assert_fails(&r, 2, "--exec needs a COMMAND");
	run_fini(&r);
	cli(&r, NULL, "reply", "svc", "answer", "--exec", "cat");
	assert_fails(&r, 2, "give a MESSAGE or --exec, not both");
	run_fini(&r);
	cli(&r, NULL, "reply", "--exec-timeout", "0", "svc");
	assert_fails(&r, 2, "--exec-timeout must be more than 0");
	run_fini(&r);
}
END_TEST

/* A service's rules refuse uid 65534 both rights: status 5 for each
 * command, with the service and the uid named. */
START_TEST(req_and_reply_permission_denied)
{
	static const char config[] =
	    "{\"socket\": {\"mode\": \"0666\"},"
	    " \"services\": [{\"name\": \"private\","
	    "  \"access\": {\"serve\": {}, \"request\": {}}}]}";
	struct how nobody = {.as_nobody = 1};
	struct sbt_broker b;
	struct run r;

	sbt_broker_up(&b, config);
	ck_assert_int_eq(chmod(b.dir, 0755), 0);
	clih(&r, &nobody, &b, "req", "private", "x", NULL);
	assert_fails(&r, 5,
		     "permission denied: the access rules of service "
		     "\"private\" refuse uid 65534");
	run_fini(&r);
	clih(&r, &nobody, &b, "reply", "private", NULL);
	assert_fails(&r, 5,
		     "permission denied: the access rules of service "
		     "\"private\" refuse uid 65534");
	run_fini(&r);
	/* Root may, and the two meet. */
	{
		struct server s;

		SERVER(&s, &b, "private", "granted");
		cli(&r, &b, "req", "private", "x");
		assert_ok(&r);
		ck_assert_str_eq(r.out, "granted\n");
		run_fini(&r);
		server_down(&s, SIGTERM, &r);
		assert_ok(&r);
		run_fini(&r);
	}
	sbt_broker_stop(&b);
}
END_TEST

Suite *cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *tc;

	tc = tcase_create("pubsub");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, published_message_arrives_in_live_sub);
	tcase_add_test(tc, sub_from_earliest_reads_what_the_ring_holds);
	tcase_add_test(tc, pub_reads_stdin_lines);
	tcase_add_test(tc, pub_file_is_one_message);
	tcase_add_test(tc, pub_repeat_and_rate);
	tcase_add_test(tc, default_socket_from_environment);
	suite_add_tcase(s, tc);

	tc = tcase_create("formats");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, binary_is_escaped_text_is_not);
	tcase_add_test(tc, raw_writes_bytes_as_they_are);
	tcase_add_test(tc, large_message_grows_the_buffer);
	suite_add_tcase(s, tc);

	tc = tcase_create("lost");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, lost_messages_are_reported);
	suite_add_tcase(s, tc);

	tc = tcase_create("inspect");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, ls_and_stat_report_what_was_done);
	tcase_add_test(tc, create_with_every_option_then_rm);
	tcase_add_test(tc, top_shows_rates);
	tcase_add_test(tc, top_rates_have_units);
	tcase_add_test(tc, ls_shows_max_message_and_fill);
	tcase_add_test(tc, stat_names_every_subscriber_page_by_page);
	suite_add_tcase(s, tc);

	tc = tcase_create("scale");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, ls_lists_five_thousand_topics);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, no_broker);
	tcase_add_test(tc, usage_errors);
	tcase_add_test(tc, no_such_topic);
	tcase_add_test(tc, full_ring_and_oversized_message);
	tcase_add_test(tc, permission_denied);
	suite_add_tcase(s, tc);

	tc = tcase_create("evict");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, evict_removes_a_subscriber);
	suite_add_tcase(s, tc);

	tc = tcase_create("help");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, help_and_version);
	tcase_add_test(tc, examples_check_their_arguments);
	suite_add_tcase(s, tc);

	tc = tcase_create("io");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, short_flags_and_message_sources);
	tcase_add_test(tc, durations_everywhere);
	tcase_add_test(tc, sub_line_and_format_output);
	tcase_add_test(tc, sub_json_output);
	tcase_add_test(tc, framed_round_trip);
	tcase_add_test(tc, sub_follows_topics_and_patterns);
	tcase_add_test(tc, metadata_in_sub_output);
	tcase_add_test(tc,
		       a_line_over_max_message_is_refused_without_reading_it);
	suite_add_tcase(s, tc);

	tc = tcase_create("reqrep");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, req_gets_the_reply_byte_for_byte);
	tcase_add_test(tc, reply_count_stops_after_n_requests);
	tcase_add_test(tc, reply_exec_takes_the_request_on_stdin);
	tcase_add_test(tc, reply_exec_failures);
	tcase_add_test(tc, req_exit_statuses);
	tcase_add_test(tc, req_and_reply_bad_input);
	tcase_add_test(tc, req_and_reply_permission_denied);
	suite_add_tcase(s, tc);

	tc = tcase_create("bench");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, bench_json_counts_every_message);
	tcase_add_test(tc, bench_text_on_an_existing_topic);
	tcase_add_test(tc, bench_reports_losses);
	tcase_add_test(tc, bench_usage_errors);
	tcase_add_test(tc, bench_refuses_what_the_topic_cannot_carry);
	suite_add_tcase(s, tc);
	return s;
}
