/*
 * check_watch.c - topic events (topic_watch, shmbus_watch_*) against a real
 * broker: the topics that match a pattern already, then each creation and
 * removal, explicit and implicit; only topics the watching uid may
 * subscribe to (a second uid in a forked child); a watcher that does not
 * read is neither closed nor allowed to pile events up, and is told it
 * missed some; bad patterns and too many watches are refused with the
 * field named.
 */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmbus/shmbus.h"
#include "tests/suites.h"
#include "tests/support/broker_harness.h"
#include "tests/support/rawclient.h"
#include "tests/support/testutil.h"

/* Bound on every wait: never reached in a healthy run. */
#define BOUND_MS 20000

#define STRANGER 1004

/* The next event; fails the test on an error or a timeout. */
static int next_event(shmbus_watch *w, char *topic)
{
	int event = 0;
	int r =
	    shmbus_watch_next(w, &event, topic, SHMBUS_TOPIC_MAX + 1, BOUND_MS);

	ck_assert_msg(r == 0, "shmbus_watch_next: %s", shmbus_strerror(r));
	return event;
}

/* Expects `event` about `topic` next. */
static void expect_event(shmbus_watch *w, int event, const char *topic)
{
	char got[SHMBUS_TOPIC_MAX + 1];
	int e = next_event(w, got);

	ck_assert_msg(e == event && strcmp(got, topic) == 0,
		      "got event %d \"%s\", expected %d \"%s\"", e, got, event,
		      topic);
}

/* Expects nothing more waiting. */
static void expect_quiet(shmbus_watch *w)
{
	char got[SHMBUS_TOPIC_MAX + 1];
	int e;

	ck_assert_int_eq(shmbus_watch_next(w, &e, got, sizeof(got), 0),
			 -EAGAIN);
}

START_TEST(existing_topics_then_each_change)
{
	struct sbt_broker b;
	shmbus *bus;
	shmbus_watch *w, *all;
	shmbus_pub *pub;
	char got[SHMBUS_TOPIC_MAX + 1];
	int seen = 0;

	sbt_broker_up(&b, NULL);
	ck_assert_int_eq(shmbus_connect(b.socket, "check_watch", &bus), 0);
	ck_assert_int_eq(shmbus_topic_create(bus, "a/1", NULL), 0);
	ck_assert_int_eq(shmbus_topic_create(bus, "a/2/deep", NULL), 0);
	ck_assert_int_eq(shmbus_topic_create(bus, "b/1", NULL), 0);
	ck_assert_int_eq(shmbus_watch_open(bus, "a/*", &w), 0);
	ck_assert_int_eq(shmbus_watch_open(bus, "#", &all), 0);
	/* What matches already: a/1 only ("*" is one level). */
	expect_event(w, SHMBUS_WATCH_CREATED, "a/1");
	expect_event(w, SHMBUS_WATCH_LISTED, "");
	expect_quiet(w);
	for (int e; (e = next_event(all, got)) != SHMBUS_WATCH_LISTED;) {
		ck_assert_int_eq(e, SHMBUS_WATCH_CREATED);
		seen++;
	}
	ck_assert_int_eq(seen, 3);
	/* Then each change, explicit or implicit, matching or not. */
	ck_assert_int_eq(shmbus_topic_create(bus, "b/2", NULL), 0);
	ck_assert_int_eq(shmbus_topic_create(bus, "a/3", NULL), 0);
	ck_assert_int_eq(shmbus_topic_delete(bus, "a/1"), 0);
	ck_assert_int_eq(shmbus_pub_open(bus, "a/implicit", &pub), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	expect_event(w, SHMBUS_WATCH_CREATED, "a/3");
	expect_event(w, SHMBUS_WATCH_DELETED, "a/1");
	expect_event(w, SHMBUS_WATCH_CREATED, "a/implicit");
	expect_event(w, SHMBUS_WATCH_DELETED, "a/implicit");
	expect_quiet(w);
	expect_event(all, SHMBUS_WATCH_CREATED, "b/2");
	/* A buffer too small keeps the event for a larger one. */
	ck_assert_int_eq(shmbus_topic_create(bus, "a/long-name", NULL), 0);
	{
		char tiny[4];
		int e;

		ck_assert_int_eq(
		    shmbus_watch_next(w, &e, tiny, sizeof(tiny), BOUND_MS),
		    -EMSGSIZE);
	}
	expect_event(w, SHMBUS_WATCH_CREATED, "a/long-name");
	ck_assert_int_ge(shmbus_watch_fd(w), 0);
	ck_assert_int_eq(shmbus_watch_close(w), 0);
	ck_assert_int_eq(shmbus_watch_close(all), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

START_TEST(bad_patterns_and_too_many_watches)
{
	struct sbt_broker b;
	struct sbt_rc c;
	shmbus *bus;
	shmbus_watch *w;

	sbt_broker_up(&b, NULL);
	ck_assert_int_eq(shmbus_connect(b.socket, "check_watch", &bus), 0);
	ck_assert_int_eq(shmbus_watch_open(bus, "a/>/b", &w), -EINVAL);
	ck_assert_ptr_null(w);
	ck_assert_int_eq(shmbus_watch_open(bus, NULL, &w), -EINVAL);
	ck_assert_int_eq(shmbus_close(bus), 0);
	/* The broker's own checks, seen raw. */
	ck_assert_int_eq(sbt_rc_hello(&c, b.socket, "raw"), 0);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_watch\",\"id\":2,"
					 "\"pattern\":\"a/#/b\"}"),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(sbt_rc_message(&c), "field \"pattern\""));
	ck_assert_ptr_nonnull(strstr(sbt_rc_message(&c), "before its last"));
	ck_assert_int_eq(
	    sbt_rc_call(&c, "{\"op\":\"topic_watch\",\"id\":3,\"pattern\":7}"),
	    -EINVAL);
	ck_assert_ptr_nonnull(strstr(sbt_rc_message(&c), "pattern"));
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_watch\",\"id\":4,"
					 "\"pattern\":\"x\",\"other\":1}"),
			 -EINVAL);
	/* Sixteen watches on one connection, then no more. The events that
	 * follow each reply (the listing of what matches: nothing) are read
	 * before the next request. */
	for (int i = 0; i < 16; i++) {
		ck_assert_int_eq(
		    sbt_rc_call(&c,
				"{\"op\":\"topic_watch\",\"id\":%d,"
				"\"pattern\":\"w%d/>\"}",
				10 + i, i),
		    0);
		ck_assert_int_eq(sbt_rc_recv(&c), 0); /* the empty listing */
	}
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_watch\",\"id\":99,"
					 "\"pattern\":\"more\"}"),
			 -ENOSPC);
	sbt_rc_close(&c);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* A child of another uid watches "acl/>" and writes each event as a line
 * "KIND TOPIC" to `fd`, through the listing and one change after it. */
static int watch_as_stranger(const char *socket, int fd)
{
	char topic[SHMBUS_TOPIC_MAX + 1], line[512];
	shmbus *bus;
	shmbus_watch *w;
	int e, listed = 0;

	if (setgroups(0, NULL) < 0 || setgid(STRANGER) < 0 ||
	    setuid(STRANGER) < 0) {
		return 90;
	}
	e = shmbus_connect(socket, "stranger", &bus);
	if (e == 0) {
		e = shmbus_watch_open(bus, "acl/>", &w);
	}
	if (e < 0) {
		snprintf(line, sizeof(line), "open: %s\n", shmbus_strerror(e));
		(void)!write(fd, line, strlen(line));
		return 91;
	}
	for (int changes = 0; changes < 1; changes += listed) {
		if (shmbus_watch_next(w, &e, topic, sizeof(topic), BOUND_MS) <
		    0) {
			return 92;
		}
		snprintf(line, sizeof(line), "%d %s\n", e, topic);
		if (write(fd, line, strlen(line)) < 0) {
			return 93;
		}
		if (e == SHMBUS_WATCH_LISTED) {
			listed = 1;
			changes = -1; /* the listing itself is no change */
		}
	}
	shmbus_watch_close(w);
	shmbus_close(bus);
	return 0;
}

/* Reads from `fd` until `text` holds `want` or the stream ends (bounded). */
static void read_until(int fd, char *text, size_t cap, const char *want)
{
	size_t len = strlen(text);

	while (strstr(text, want) == NULL) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		ck_assert_int_eq(poll(&p, 1, BOUND_MS), 1);
		n = read(fd, text + len, cap - 1 - len);
		ck_assert_msg(n > 0, "the watcher ended; it said: %s", text);
		len += (size_t)n;
		text[len] = '\0';
	}
}

START_TEST(only_topics_the_watcher_may_subscribe_to)
{
	static const char config[] =
	    "{\"socket\": {\"mode\": \"0666\"},"
	    " \"topics\": ["
	    "  {\"name\": \"acl/closed\", \"access\": {"
	    "    \"subscribe\": {\"uids\": [1001]}}},"
	    "  {\"name\": \"acl/later-closed\", \"access\": {"
	    "    \"subscribe\": {\"uids\": [1001]}}}]}";
	struct sbt_broker b;
	char text[4096] = "";
	shmbus *bus;
	int fds[2];
	pid_t pid;

	sbt_broker_up_shared(&b, config);
	ck_assert_int_eq(shmbus_connect(b.socket, "check_watch", &bus), 0);
	ck_assert_int_eq(shmbus_topic_create(bus, "acl/open", NULL), 0);
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		_exit(watch_as_stranger(b.socket, fds[1]));
	}
	close(fds[1]);
	/* The listing: acl/closed exists (predeclared) but is not shown. */
	read_until(fds[0], text, sizeof(text), "3 \n");
	ck_assert_str_eq(text, "1 acl/open\n3 \n");
	/* Changes it may not see (a removal, a removal and a creation with
	 * the config's rules), then one it may. */
	ck_assert_int_eq(shmbus_topic_delete(bus, "acl/closed"), 0);
	ck_assert_int_eq(shmbus_topic_delete(bus, "acl/later-closed"), 0);
	ck_assert_int_eq(shmbus_topic_create(bus, "acl/later-closed", NULL), 0);
	ck_assert_int_eq(shmbus_topic_create(bus, "acl/later-open", NULL), 0);
	read_until(fds[0], text, sizeof(text), "acl/later-open\n");
	ck_assert_str_eq(text, "1 acl/open\n3 \n1 acl/later-open\n");
	ck_assert_int_eq(sbt_wait(pid), 0);
	close(fds[0]);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/*
 * A watcher that does not read: the broker neither closes it nor queues
 * without bound; it drops events once half its bound on unread replies is
 * queued, and says so with "overflow" once the rest is read. Five thousand
 * topics created and removed make ten thousand events, more than the
 * socket holds.
 */
START_TEST(an_unread_watch_overflows_and_is_told)
{
	static const char config[] =
	    "{\"limits\": {\"max_topics\": 6000, \"max_pending_bytes\": "
	    "\"256KiB\"}}";
	struct shmbus_topic_config small = {.capacity = 4096};
	struct sbt_broker b;
	char name[64], got[SHMBUS_TOPIC_MAX + 1];
	shmbus *bus;
	shmbus_watch *w;
	int e, overflow = 0, events = 0;

	sbt_broker_up(&b, config);
	ck_assert_int_eq(shmbus_connect(b.socket, "check_watch", &bus), 0);
	ck_assert_int_eq(shmbus_watch_open(bus, "t/>", &w), 0);
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "t/%d", i);
		ck_assert_int_eq(shmbus_topic_create(bus, name, &small), 0);
		ck_assert_int_eq(shmbus_topic_delete(bus, name), 0);
	}
	/* The connection survived; read until the overflow notice. */
	while (!overflow) {
		e = next_event(w, got);
		overflow = e == SHMBUS_WATCH_OVERFLOW;
		events++;
	}
	ck_assert_int_lt(events, 10000 + 1);
	ck_assert_int_eq(shmbus_watch_close(w), 0);
	/* Opened again, it lists the current set: none. */
	ck_assert_int_eq(shmbus_watch_open(bus, "t/>", &w), 0);
	expect_event(w, SHMBUS_WATCH_LISTED, "");
	ck_assert_int_eq(shmbus_watch_close(w), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

Suite *watch_suite(void)
{
	Suite *s = suite_create("watch");
	TCase *tc = tcase_create("events");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, existing_topics_then_each_change);
	tcase_add_test(tc, bad_patterns_and_too_many_watches);
	tcase_add_test(tc, an_unread_watch_overflows_and_is_told);
	if (geteuid() == 0) {
		tcase_add_test(tc, only_topics_the_watcher_may_subscribe_to);
	}
	suite_add_tcase(s, tc);
	return s;
}
