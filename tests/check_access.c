/*
 * check_access.c - access control against a real broker: per-topic rules
 * by uid and gid (primary and supplementary) for publish, subscribe and
 * admin, checked by the broker against SO_PEERCRED / SO_PEERGROUPS. The
 * tests run as root and fork children that switch to other ids, so every
 * allow and every refusal is proved by a real peer. Also: a refused client
 * gets no descriptor, cannot reach another user's descriptors through
 * /proc, and a subscriber's mapping of the messages faults on a write.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "include/shmbus/shmbus.h"
#include "tests/suites.h"
#include "tests/support/broker_harness.h"
#include "tests/support/rawclient.h"
#include "tests/support/testutil.h"

#define NOBODY 65534
#define GROUP  2002

/*
 * acl/uid: publish by uid 1001, subscribe by nobody, admin by 1001.
 * acl/group: everything by members of group 2002.
 * Any other topic: publish and subscribe by anyone, admin by root only.
 */
static const char CONFIG[] =
    "{\"socket\": {\"mode\": \"0666\"},"
    " \"topic_defaults\": {\"access\": {\"admin\": {}}},"
    " \"topics\": ["
    "  {\"name\": \"acl/uid\", \"access\": {"
    "    \"publish\": {\"uids\": [1001]},"
    "    \"subscribe\": {\"uids\": [65534]},"
    "    \"admin\": {\"uids\": [1001]}}},"
    "  {\"name\": \"acl/group\", \"access\": {"
    "    \"publish\": {\"gids\": [2002]},"
    "    \"subscribe\": {\"gids\": [2002]},"
    "    \"admin\": {\"gids\": [2002]}}}]}";

struct who {
	const char *name;
	uid_t uid;
	gid_t gid;
	gid_t supp[2];
	int n_supp;
};

static const struct who U1001 = {"uid 1001", 1001, 1001, {0}, 0};
static const struct who NOBODY_ = {"nobody", NOBODY, NOBODY, {0}, 0};
static const struct who MEMBER = {
    "uid 1002 in group 2002 (supplementary)", 1002, 1002, {GROUP}, 1};
static const struct who PRIMARY = {
    "uid 1003 with primary group 2002", 1003, GROUP, {0}, 0};
static const struct who STRANGER = {"uid 1004", 1004, 1004, {7777}, 1};

/* Becomes `w` for good. Returns 0 or -errno. */
static int become(const struct who *w)
{
	if (setgroups((size_t)w->n_supp, w->supp) < 0 || setgid(w->gid) < 0 ||
	    setuid(w->uid) < 0) {
		return -errno;
	}
	return getuid() == w->uid && geteuid() == w->uid ? 0 : -EPERM;
}

/* Runs `fn` in a child that became `w`; returns the child's status. */
static int as(const struct who *w, int (*fn)(const void *), const void *arg)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		_exit(become(w) < 0 ? 99 : fn(arg));
	}
	return sbt_wait(pid);
}

struct case_ {
	const char *socket;
	const char *topic;
	int pub, sub, admin; /* 1: allowed, 0: refused */
};

/* One grant request: its code must match `allowed`, and descriptors come
 * with a grant only (data and control; a subscriber's slot segment too).
 * Returns 0 or a nonzero step number. */
static int check_open(struct sbt_rc *c, const char *op, const char *topic,
		      int allowed, int step)
{
	int r = sbt_rc_call(c, "{\"op\":\"%s\",\"id\":3,\"topic\":\"%s\"}", op,
			    topic);
	int granted = strcmp(op, "sub_open") == 0 ? 3 : 2;

	if (allowed) {
		return r == 0 && c->nfds == granted ? 0 : step;
	}
	return r == -EACCES && c->nfds == 0 ? 0 : step + 1;
}

static int check_case(const void *arg)
{
	const struct case_ *k = arg;
	struct sbt_rc c;
	int r;

	if (sbt_rc_hello(&c, k->socket, "acl") != 0) {
		return 1;
	}
	if ((r = check_open(&c, "pub_open", k->topic, k->pub, 10)) != 0 ||
	    (r = check_open(&c, "sub_open", k->topic, k->sub, 20)) != 0) {
		return r;
	}
	/* admin: creating the existing topic passes the rule (EEXIST) or
	 * not (EACCES); deleting would change the fixture. */
	r = sbt_rc_call(&c,
			"{\"op\":\"topic_create\",\"id\":4,\"topic\":\"%s\"}",
			k->topic);
	if (r != (k->admin ? -EEXIST : -EACCES)) {
		return 30;
	}
	sbt_rc_close(&c);
	return 0;
}

static void expect(const struct sbt_broker *b, const struct who *w,
		   const char *topic, int pub, int sub, int admin)
{
	struct case_ k = {b->socket, topic, pub, sub, admin};
	int st = as(w, check_case, &k);

	ck_assert_msg(st == 0,
		      "%s on %s: step %d failed (expected publish %s, "
		      "subscribe %s, admin %s)",
		      w->name, topic, st, pub ? "yes" : "no",
		      sub ? "yes" : "no", admin ? "yes" : "no");
}

START_TEST(rules_by_uid_and_gid_for_each_operation)
{
	struct sbt_broker b;

	sbt_broker_up_shared(&b, CONFIG);
	/*                        topic        pub sub admin */
	expect(&b, &U1001, "acl/uid", 1, 0, 1);
	expect(&b, &NOBODY_, "acl/uid", 0, 1, 0);
	expect(&b, &STRANGER, "acl/uid", 0, 0, 0);
	expect(&b, &MEMBER, "acl/uid", 0, 0, 0);
	expect(&b, &MEMBER, "acl/group", 1, 1, 1);
	expect(&b, &PRIMARY, "acl/group", 1, 1, 1);
	expect(&b, &STRANGER, "acl/group", 0, 0, 0);
	expect(&b, &U1001, "acl/group", 0, 0, 0);
	/* Topics without their own rules: open to all, admin root only. */
	expect(&b, &STRANGER, "open/topic", 1, 1, 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- descriptors that were not granted ---------------------------------- */

/* Holds a publisher on acl/uid (as uid 1001) until killed. */
static int holder(const void *arg)
{
	const char *socket = arg;
	shmbus *bus;
	shmbus_pub *pub;

	if (shmbus_connect(socket, "holder", &bus) < 0 ||
	    shmbus_pub_open(bus, "acl/uid", &pub) < 0) {
		return 1;
	}
	for (;;) {
		pause();
	}
}

/* As another user: no descriptor of the broker or of the holder can be
 * opened, or even listed, through /proc. */
static int snoop(const void *arg)
{
	const pid_t *pids = arg;

	for (int i = 0; i < 2; i++) {
		char path[64];
		DIR *d;

		snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pids[i]);
		d = opendir(path);
		if (d != NULL) {
			closedir(d);
			return 10 + i;
		}
		for (int fd = 0; fd < 64; fd++) {
			int got;

			snprintf(path, sizeof(path), "/proc/%ld/fd/%d",
				 (long)pids[i], fd);
			got = open(path, O_RDONLY);
			if (got >= 0) {
				return 20 + i;
			}
			snprintf(path, sizeof(path), "/proc/%ld/map_files",
				 (long)pids[i]);
			if (opendir(path) != NULL) {
				return 30 + i;
			}
		}
	}
	return 0;
}

/* topic_stat's publisher count, polled (bounded) until it is `want`. */
static int64_t publishers(const char *socket, const char *topic, int64_t want)
{
	struct timespec ts = {0, 10000000};
	int64_t n = -1;

	for (int i = 0; i < 500 && n != want; i++) {
		struct sbt_rc c;

		ck_assert_int_eq(sbt_rc_hello(&c, socket, "watch"), 0);
		ck_assert_int_eq(sbt_rc_call(&c,
					     "{\"op\":\"topic_stat\",\"id\":2,"
					     "\"topic\":\"%s\"}",
					     topic),
				 0);
		n = sbt_rc_int(&c, "topic.publishers", -1);
		sbt_rc_close(&c);
		if (n != want) {
			nanosleep(&ts, NULL);
		}
	}
	return n;
}

START_TEST(a_topic_is_unreachable_without_a_grant)
{
	struct sbt_broker b;
	pid_t hold, pids[2];

	sbt_broker_up_shared(&b, CONFIG);
	hold = fork();
	ck_assert_int_ge(hold, 0);
	if (hold == 0) {
		_exit(become(&U1001) < 0 ? 99 : holder(b.socket));
	}
	/* Wait (bounded) until the holder has its grant. */
	ck_assert_int_eq(publishers(b.socket, "acl/uid", 1), 1);
	pids[0] = b.pid;
	pids[1] = hold;
	ck_assert_int_eq(as(&NOBODY_, snoop, pids), 0);
	ck_assert_int_eq(as(&STRANGER, snoop, pids), 0);
	kill(hold, SIGKILL);
	ck_assert_int_eq(sbt_wait(hold), -SIGKILL);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- a subscriber cannot write the messages ----------------------------- */

/* As nobody: subscribes, peeks the message, tries to make the page
 * writable (refused), then writes to it: the write must fault. */
static int scribbler(const void *arg)
{
	const char *socket = arg;
	shmbus *bus;
	shmbus_sub *sub;
	const void *data;
	size_t len;
	void *page;

	if (shmbus_connect(socket, "scribbler", &bus) < 0 ||
	    shmbus_sub_open(bus, "acl/uid", SHMBUS_START_EARLIEST, &sub) < 0 ||
	    shmbus_peek(sub, &data, &len, 5000) < 0 || len != 5) {
		return 1;
	}
	page = (void *)((uintptr_t)data & ~(uintptr_t)4095);
	if (mprotect(page, 4096, PROT_READ | PROT_WRITE) == 0) {
		return 2;
	}
	signal(SIGSEGV, SIG_DFL);
	*(volatile char *)data = 'X'; /* faults: SIGSEGV */
	return 3;
}

START_TEST(a_subscriber_write_to_the_messages_faults)
{
	struct sbt_broker b;
	shmbus *bus;
	shmbus_pub *pub;
	shmbus_sub *sub;
	char buf[16];

	sbt_broker_up_shared(&b, CONFIG);
	ck_assert_int_eq(shmbus_connect(b.socket, "root", &bus), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, "acl/uid", &pub), 0);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "acl/uid", SHMBUS_START_EARLIEST, &sub), 0);
	ck_assert_int_eq(shmbus_publish(pub, "hello", 5, 1000), 0);
	ck_assert_int_eq(as(&NOBODY_, scribbler, b.socket), -SIGSEGV);
	/* The message is intact for everyone else. */
	ck_assert_int_eq(shmbus_receive(sub, buf, sizeof(buf), 1000), 5);
	ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
	shmbus_sub_close(sub);
	shmbus_pub_close(pub);
	shmbus_close(bus);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

Suite *access_suite(void)
{
	Suite *s = suite_create("access");
	TCase *tc = tcase_create("rules");

	tcase_set_timeout(tc, 60);
	if (geteuid() != 0) {
		/* Switching users needs root; the suite says so and passes
		 * nothing off as proved. */
		fprintf(stderr, "access: not root, access tests skipped\n");
		suite_add_tcase(s, tc);
		return s;
	}
	tcase_add_test(tc, rules_by_uid_and_gid_for_each_operation);
	tcase_add_test(tc, a_topic_is_unreachable_without_a_grant);
	tcase_add_test(tc, a_subscriber_write_to_the_messages_faults);
	suite_add_tcase(s, tc);
	return s;
}
