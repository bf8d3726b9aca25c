/*
 * check_inflight.c - descriptors in flight and per-uid connection quotas,
 * against a real broker that runs as uid 65534: the kernel charges every
 * descriptor sent over a Unix socket and not yet received to the sender's
 * uid, up to its RLIMIT_NOFILE, and exempts root, so a root broker would
 * prove nothing. Peers that never read the replies carrying descriptors
 * must not lock out a client that does; one uid filling its
 * limits.max_clients_per_uid must not lock out another uid, and gets
 * EUSERS, which the CLI reports as such; a connection the broker dropped
 * keeps its uid's place while the descriptors sent on it are unread.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sockios.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "include/shmbus/shmbus.h"
#include "tests/suites.h"
#include "tests/support/broker_harness.h"
#include "tests/support/rawclient.h"
#include "tests/support/testutil.h"

#define BROKER_UID 65534
#define UID_A	   1001
#define UID_B	   1002

/* The broker's descriptor limit: small, so that a few peers could put
 * more descriptors in flight than the kernel lets the broker's uid have. */
#define NOFILE 256

#define FLOODERS	8
#define OPENS_PER_FLOOD 100

static int start_broker(struct sbt_broker *b, const char *config)
{
	/* The library trusts a broker of its own uid or root only, unless
	 * told otherwise (SHMBUS_BROKER_USER); forked clients inherit it. */
	if (setenv("SHMBUS_BROKER_USER", "65534", 1) != 0) {
		return -errno;
	}
	return sbt_broker_start_as(b, config, NULL, BROKER_UID, BROKER_UID,
				   RLIMIT_NOFILE, NOFILE);
}

/* Sends `n` sub_open requests on `topic` in one write, reading nothing. */
static int flood_sub_opens(struct sbt_rc *c, const char *topic, int n)
{
	static char buf[OPENS_PER_FLOOD * 128];
	size_t fill = 0;

	for (int i = 0; i < n && i < OPENS_PER_FLOOD; i++) {
		int len = snprintf(buf + fill + 4, 120,
				   "{\"op\":\"sub_open\",\"id\":%d,"
				   "\"topic\":\"%s\"}",
				   i + 2, topic);

		buf[fill] = 0;
		buf[fill + 1] = 0;
		buf[fill + 2] = (char)(len >> 8);
		buf[fill + 3] = (char)len;
		fill += 4 + (size_t)len;
	}
	return sbt_rc_send_raw(c, buf, fill);
}

/* Waits (bounded) until the broker has read everything sent on `fd` or
 * closed it: whatever it will do with the requests is then done or held. */
static void wait_consumed(int fd)
{
	for (int i = 0; i < 1000; i++) {
		struct pollfd p = {fd, POLLRDHUP, 0};
		int unsent = -1;

		if (ioctl(fd, SIOCOUTQ, &unsent) == 0 && unsent == 0) {
			return;
		}
		if (poll(&p, 1, 0) == 1) {
			return;
		}
		sbt_sleep_ms(10);
	}
}

/* A client of the bus library opens, publishes and receives on `topic`.
 * Returns 0, or the step that failed. */
static int legit_round_trip(const char *socket, const char *topic)
{
	shmbus *bus = NULL;
	shmbus_pub *pub = NULL;
	shmbus_sub *sub = NULL;
	char buf[16];
	int step = 0;

	if (shmbus_connect(socket, "legit", &bus) < 0) {
		return 1;
	}
	if (shmbus_pub_open(bus, topic, &pub) < 0) {
		step = 2;
	} else if (shmbus_sub_open(bus, topic, SHMBUS_START_EARLIEST, &sub) <
		   0) {
		step = 3;
	} else if (shmbus_publish(pub, "hello", 5, 1000) < 0) {
		step = 4;
	} else if (shmbus_receive(sub, buf, sizeof(buf), 1000) != 5 ||
		   memcmp(buf, "hello", 5) != 0) {
		step = 5;
	}
	if (sub != NULL) {
		shmbus_sub_close(sub);
	}
	if (pub != NULL) {
		shmbus_pub_close(pub);
	}
	shmbus_close(bus);
	return step;
}

/* ---- replies nobody reads ------------------------------------------------ */

static const char FLOOD_CONFIG[] =
    "{\"limits\": {\"max_clients\": 16, \"max_subscribers\": 128},"
    " \"topic_defaults\": {\"capacity\": \"4KiB\", \"max_message\": "
    "\"1KiB\"}}";

/*
 * Eight peers send 100 sub_open requests each and never read a reply:
 * 1600 descriptors, where the broker's uid may have 256 in flight. A
 * client that reads its replies still opens, publishes and receives.
 */
START_TEST(unread_replies_do_not_lock_out_a_reading_client)
{
	static struct sbt_rc flooder[FLOODERS];
	struct sbt_broker b;

	ck_assert_int_eq(start_broker(&b, FLOOD_CONFIG), 0);
	for (int i = 0; i < FLOODERS; i++) {
		char topic[32];

		snprintf(topic, sizeof(topic), "flood/%d", i);
		ck_assert_int_eq(sbt_rc_hello(&flooder[i], b.socket, "flood"),
				 0);
		ck_assert_int_eq(
		    flood_sub_opens(&flooder[i], topic, OPENS_PER_FLOOD), 0);
	}
	for (int i = 0; i < FLOODERS; i++) {
		wait_consumed(flooder[i].fd);
	}
	ck_assert_int_eq(legit_round_trip(b.socket, "legit/a"), 0);
	/* And again, on a new connection and topic. */
	ck_assert_int_eq(legit_round_trip(b.socket, "legit/b"), 0);
	for (int i = 0; i < FLOODERS; i++) {
		sbt_rc_close(&flooder[i]);
	}
	ck_assert(!sbt_broker_log_contains(&b, "Too many references"));
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- per-uid quota ------------------------------------------------------- */

#define QUOTA 3

static const char QUOTA_CONFIG[] =
    "{\"socket\": {\"mode\": \"0666\"},"
    " \"limits\": {\"max_clients\": 16, \"max_clients_per_uid\": 3}}";

/* Runs `shmbus --socket S ls` as `uid`; its stderr into `err`. Returns
 * its exit status, or -signal. */
static int cli_ls_as(uid_t uid, const char *socket, char *err, size_t errlen)
{
	char binary[512];
	const char *argv[] = {binary, "--socket", socket, "ls", NULL};
	int pipefd[2];
	size_t used = 0;
	ssize_t n;
	pid_t pid;

	snprintf(binary, sizeof(binary), "%s/shmbus", sbt_bindir());
	ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null < 0 || dup2(null, STDOUT_FILENO) < 0 ||
		    dup2(pipefd[1], STDERR_FILENO) < 0 || sbt_become(uid) < 0) {
			_exit(126);
		}
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execv(binary, (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	while (used + 1 < errlen &&
	       (n = read(pipefd[0], err + used, errlen - 1 - used)) > 0) {
		used += (size_t)n;
	}
	err[used] = '\0';
	close(pipefd[0]);
	return sbt_wait(pid);
}

/* As uid A: fills the quota, checks that one more connection is refused
 * with EUSERS (raw, then through the library), tells the parent, and
 * holds its connections until the parent closes `go`. */
static int fill_quota(const char *socket, int ready, int go)
{
	struct sbt_rc c[QUOTA], extra;
	shmbus *bus = NULL;
	char byte = 0;

	if (sbt_become(UID_A) < 0) {
		return 99;
	}
	for (int i = 0; i < QUOTA; i++) {
		if (sbt_rc_hello(&c[i], socket, "quota") != 0) {
			return 10 + i;
		}
	}
	if (sbt_rc_hello_or_refusal(&extra, socket) != -EUSERS ||
	    sbt_rc_recv(&extra) != -ECONNRESET) {
		return 20;
	}
	sbt_rc_close(&extra);
	if (shmbus_connect(socket, "one-too-many", &bus) != -EUSERS) {
		return 21;
	}
	if (write(ready, "1", 1) != 1) {
		return 30;
	}
	/* Holds its places until the parent closes its end. */
	while (read(go, &byte, 1) > 0) {
	}
	return 0;
}

/* As uid B: connects and says hello while A holds its quota. */
static int other_uid_connects(const char *socket)
{
	struct sbt_rc c;
	int r;

	if (sbt_become(UID_B) < 0) {
		return 99;
	}
	r = sbt_rc_hello(&c, socket, "other");
	if (r == 0) {
		r = sbt_rc_call(&c, "{\"op\":\"topic_list\",\"id\":2}");
	}
	sbt_rc_close(&c);
	return r == 0 ? 0 : 1;
}

START_TEST(one_uid_at_its_quota_does_not_lock_out_another)
{
	struct sbt_broker b;
	int ready[2], go[2];
	char err[1024], byte;
	pid_t a, other;
	int status = -1;

	ck_assert_int_eq(start_broker(&b, QUOTA_CONFIG), 0);
	ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(go, O_CLOEXEC), 0);
	a = fork();
	ck_assert_int_ge(a, 0);
	if (a == 0) {
		close(ready[0]);
		close(go[1]);
		_exit(fill_quota(b.socket, ready[1], go[0]));
	}
	close(ready[1]);
	close(go[0]);
	/* A's report, or end of file if it failed before. */
	ck_assert_int_eq(read(ready[0], &byte, 1), 1);

	other = fork();
	ck_assert_int_ge(other, 0);
	if (other == 0) {
		_exit(other_uid_connects(b.socket));
	}
	ck_assert_int_eq(sbt_wait(other), 0);
	ck_assert_int_eq(cli_ls_as(UID_A, b.socket, err, sizeof(err)), 1);
	ck_assert_msg(strstr(err, "too many clients") != NULL,
		      "the CLI said: %s", err);
	ck_assert_msg(strstr(err, "protocol error") == NULL, "the CLI said: %s",
		      err);
	ck_assert(sbt_broker_log_contains(&b, "max_clients_per_uid"));

	/* A leaves: its places free (the broker sees the closes soon). */
	close(go[1]);
	ck_assert_int_eq(sbt_wait(a), 0);
	for (int i = 0; i < 500 && status != 0; i++) {
		status = cli_ls_as(UID_A, b.socket, err, sizeof(err));
		if (status != 0) {
			sbt_sleep_ms(10);
		}
	}
	ck_assert_msg(status == 0, "the CLI said: %s", err);
	close(ready[0]);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- a dropped connection keeps its place while its replies are unread -- */

static const char DRAIN_CONFIG[] =
    "{\"socket\": {\"mode\": \"0666\"},"
    " \"limits\": {\"max_clients\": 16, \"max_clients_per_uid\": 2},"
    " \"topic_defaults\": {\"capacity\": \"4KiB\", \"max_message\": "
    "\"1KiB\"}}";

/* How many times `text` occurs in the broker's log (first 256 KiB). */
static int log_count(const struct sbt_broker *b, const char *text)
{
	static char buf[256 * 1024];
	FILE *f = fopen(b->log, "r");
	size_t n;
	int count = 0;

	if (f == NULL) {
		return 0;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (const char *p = strstr(buf, text); p != NULL;
	     p = strstr(p + 1, text)) {
		count++;
	}
	return count;
}

/* As uid A: two connections flood sub_open and never read. Once the
 * parent has seen the broker drop both (it closes `go` then), a third
 * connection is still refused, because the descriptors sent on the two
 * are unread; after A closes them, its places come back. */
static int flood_then_reconnect(const char *socket, int ready, int go)
{
	struct sbt_rc c[2], extra;
	char byte = 0;
	int r = -EUSERS;

	if (sbt_become(UID_A) < 0) {
		return 99;
	}
	for (int i = 0; i < 2; i++) {
		if (sbt_rc_hello(&c[i], socket, "flood") != 0 ||
		    flood_sub_opens(&c[i], "drain", OPENS_PER_FLOOD) != 0) {
			return 10 + i;
		}
		wait_consumed(c[i].fd);
	}
	if (write(ready, "1", 1) != 1) {
		return 20;
	}
	while (read(go, &byte, 1) > 0) {
	}
	if (sbt_rc_hello_or_refusal(&extra, socket) != -EUSERS) {
		return 30;
	}
	sbt_rc_close(&extra);
	sbt_rc_close(&c[0]);
	sbt_rc_close(&c[1]);
	/* The broker notices within its 1 s sweep. */
	for (int i = 0; i < 500 && r != 0; i++) {
		r = sbt_rc_hello_or_refusal(&extra, socket);
		sbt_rc_close(&extra);
		if (r != 0) {
			sbt_sleep_ms(10);
		}
	}
	return r == 0 ? 0 : 40;
}

START_TEST(a_dropped_connection_keeps_its_place_until_its_replies_are_read)
{
	struct sbt_broker b;
	int ready[2], go[2];
	char byte;
	pid_t a;

	ck_assert_int_eq(start_broker(&b, DRAIN_CONFIG), 0);
	ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(go, O_CLOEXEC), 0);
	a = fork();
	ck_assert_int_ge(a, 0);
	if (a == 0) {
		close(ready[0]);
		close(go[1]);
		_exit(flood_then_reconnect(b.socket, ready[1], go[0]));
	}
	close(ready[1]);
	close(go[0]);
	ck_assert_int_eq(read(ready[0], &byte, 1), 1);
	/* The broker drops a client that leaves its replies unread for 10 s
	 * (operations.md); bounded wait for both. */
	for (int i = 0; i < 3000 && log_count(&b, "too slow to read") < 2;
	     i++) {
		sbt_sleep_ms(10);
	}
	ck_assert_int_eq(log_count(&b, "too slow to read"), 2);
	close(go[1]);
	ck_assert_int_eq(sbt_wait(a), 0);
	close(ready[0]);
	ck_assert_int_eq(legit_round_trip(b.socket, "after/drain"), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

Suite *inflight_suite(void)
{
	Suite *s = suite_create("inflight");
	TCase *tc = tcase_create("inflight");

	tcase_set_timeout(tc, 90);
	if (geteuid() != 0) {
		/* Running the broker as another uid needs root. */
		fprintf(stderr, "inflight: not root, tests skipped\n");
		suite_add_tcase(s, tc);
		return s;
	}
	tcase_add_test(tc, unread_replies_do_not_lock_out_a_reading_client);
	tcase_add_test(tc, one_uid_at_its_quota_does_not_lock_out_another);
	tcase_add_test(
	    tc,
	    a_dropped_connection_keeps_its_place_until_its_replies_are_read);
	suite_add_tcase(s, tc);
	return s;
}
