/*
 * check_broker.c - integration tests of shmbusd: real brokers in temporary
 * directories (tests/support/broker_harness.h) driven by the raw client of
 * tests/support/rawclient.h (socket, frames, descriptors), so that every
 * reply code, malformed frame, descriptor and lifecycle rule of
 * docs/protocol.md and docs/operations.md is checked against the wire.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "ring/ring.h"
#include "tests/suites.h"
#include "tests/support/broker_harness.h"
#include "tests/support/rawclient.h"
#include "tests/support/testutil.h"
#include "wire/frame.h"
#include "wire/message.h"
#include "wire/topic_name.h"

#define TIMEOUT_S	30
#define RECV_TIMEOUT_MS 5000
#define NOBODY		65534

static int64_t result_int(const struct sbt_rc *c, const char *name)
{
	const cJSON *v =
	    cJSON_GetObjectItemCaseSensitive(sbt_rc_result(c), name);

	ck_assert_msg(cJSON_IsNumber(v), "no integer \"%s\"", name);
	return (int64_t)v->valuedouble;
}

static void rc_hello(struct sbt_rc *c, const char *path)
{
	ck_assert_int_eq(sbt_rc_hello(c, path, "check"), 0);
}

/* 1 when topic_list names `topic`. */
static int listed(struct sbt_rc *c, const char *topic)
{
	const cJSON *t;

	ck_assert_int_eq(sbt_rc_call(c, "{\"op\":\"topic_list\",\"id\":3}"), 0);
	cJSON_ArrayForEach(t, cJSON_GetObjectItem(sbt_rc_result(c), "topics"))
	{
		if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(t, "name")),
			   topic) == 0) {
			return 1;
		}
	}
	return 0;
}

/* A normal client can still say hello and ping: the broker survived. */
static void assert_healthy(const struct sbt_broker *b)
{
	struct sbt_rc c;

	rc_hello(&c, b->socket);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"ping\",\"id\":2}"), 0);
	sbt_rc_close(&c);
}

static void stop(struct sbt_broker *b)
{
	ck_assert_int_eq(sbt_broker_stop(b), 0);
}

/* ---- hello ---- */

START_TEST(hello_must_come_first_and_once)
{
	struct sbt_broker b;
	struct sbt_rc c;
	const cJSON *notices;

	sbt_broker_up(&b, NULL);
	ck_assert_int_eq(sbt_rc_connect(&c, b.socket, RECV_TIMEOUT_MS), 0);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"ping\",\"id\":1}"),
			 -EPROTO);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"hello\",\"id\":2,"
					 "\"version\":1,\"name\":\"x\"}"),
			 0);
	ck_assert_int_eq(result_int(&c, "version"), 1);
	ck_assert_int_eq(result_int(&c, "pid"), b.pid);
	ck_assert_int_gt(result_int(&c, "client"), 0);
	ck_assert_ptr_nonnull(cJSON_GetObjectItem(sbt_rc_result(&c), "limits"));
	/* The ops this broker takes as notices: close, and only close. */
	notices = cJSON_GetObjectItem(sbt_rc_result(&c), "notices");
	ck_assert(cJSON_IsArray(notices));
	ck_assert_int_eq(cJSON_GetArraySize(notices), 1);
	ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(notices, 0)),
			 "close");
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"hello\",\"id\":3,"
					 "\"version\":1}"),
			 -EPROTO);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"ping\",\"id\":4}"), 0);
	sbt_rc_close(&c);
	stop(&b);
}
END_TEST

START_TEST(hello_with_another_version_is_refused_and_closed)
{
	struct sbt_broker b;
	struct sbt_rc c;

	sbt_broker_up(&b, NULL);
	ck_assert_int_eq(sbt_rc_connect(&c, b.socket, RECV_TIMEOUT_MS), 0);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"hello\",\"id\":1,"
					 "\"version\":99}"),
			 -EPROTO);
	ck_assert_ptr_nonnull(strstr(sbt_rc_message(&c), "speaks 1"));
	ck_assert_int_eq(sbt_rc_recv(&c), -ECONNRESET);
	sbt_rc_close(&c);
	ck_assert_int_eq(sbt_rc_connect(&c, b.socket, RECV_TIMEOUT_MS), 0);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"hello\",\"id\":1,"
					 "\"version\":1,\"name\":\"\"}"),
			 -EINVAL);
	sbt_rc_close(&c);
	assert_healthy(&b);
	stop(&b);
}
END_TEST

/* ---- ops and their errors ---- */

START_TEST(topic_ops_and_their_errors)
{
	struct sbt_broker b;
	struct sbt_rc c;

	sbt_broker_up(&b, NULL);
	rc_hello(&c, b.socket);
	ck_assert_int_eq(sbt_rc_call(&c,
				     "{\"op\":\"topic_create\",\"id\":2,"
				     "\"topic\":\"s/imu\",\"capacity\":"
				     "\"64KiB\",\"max_message\":1024,\"mode\":"
				     "\"queue\",\"overflow\":\"reject\"}"),
			 0);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
					 "\"topic\":\"s/imu\"}"),
			 -EEXIST);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
					 "\"topic\":\"a//b\"}"),
			 -EINVAL);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
					 "\"topic\":\"x\",\"capacity\":5000}"),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(sbt_rc_message(&c), "capacity"));
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
					 "\"topic\":\"x\",\"mode\":\"fifo\"}"),
			 -EINVAL);
	ck_assert_int_eq(sbt_rc_call(&c,
				     "{\"op\":\"topic_create\",\"id\":2,"
				     "\"topic\":\"x\",\"persistent\":true}"),
			 -EINVAL);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
					 "\"topic\":7}"),
			 -EINVAL);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_stat\",\"id\":5,"
					 "\"topic\":\"s/imu\"}"),
			 0);
	ck_assert_ptr_nonnull(cJSON_GetObjectItem(sbt_rc_result(&c), "queue"));
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_stat\",\"id\":5,"
					 "\"topic\":\"none\"}"),
			 -ENOENT);
	ck_assert(listed(&c, "s/imu"));
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_delete\",\"id\":3,"
					 "\"topic\":\"s/imu\"}"),
			 0);
	ck_assert(!listed(&c, "s/imu"));
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_delete\",\"id\":3,"
					 "\"topic\":\"s/imu\"}"),
			 -ENOENT);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"close\",\"id\":8,"
					 "\"handle\":42}"),
			 -ENOENT);
	ck_assert_int_eq(sbt_rc_call(&c,
				     "{\"op\":\"sub_open\",\"id\":8,"
				     "\"topic\":\"t\",\"start\":\"middle\"}"),
			 -EINVAL);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"ping\",\"id\":9}"), 0);
	sbt_rc_close(&c);
	stop(&b);
}
END_TEST

START_TEST(auto_create_off_gives_enoent)
{
	struct sbt_broker b;
	struct sbt_rc c;

	sbt_broker_up(&b, "{\"auto_create\": false}");
	rc_hello(&c, b.socket);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"pub_open\",\"id\":2,"
					 "\"topic\":\"nope\"}"),
			 -ENOENT);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"sub_open\",\"id\":2,"
					 "\"topic\":\"nope\"}"),
			 -ENOENT);
	sbt_rc_close(&c);
	stop(&b);
}
END_TEST

/* A child that connects as nobody and tries each rule; its exit status
 * says which step disagreed. */
static int access_child(const char *socket)
{
	struct sbt_rc c;

	if (setgid(NOBODY) < 0 || setuid(NOBODY) < 0 ||
	    sbt_rc_connect(&c, socket, RECV_TIMEOUT_MS) < 0) {
		return 10;
	}
	if (sbt_rc_call(&c, "{\"op\":\"hello\",\"id\":1,\"version\":1}") != 0) {
		return 11;
	}
	if (sbt_rc_call(
		&c, "{\"op\":\"pub_open\",\"id\":2,\"topic\":\"locked\"}") !=
	    -EACCES) {
		return 12;
	}
	if (sbt_rc_call(
		&c, "{\"op\":\"sub_open\",\"id\":2,\"topic\":\"locked\"}") !=
	    0) {
		return 13;
	}
	if (sbt_rc_call(&c, "{\"op\":\"topic_delete\",\"id\":2,\"topic\":"
			    "\"locked\"}") != -EACCES) {
		return 14;
	}
	if (sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,\"topic\":"
			    "\"other\"}") != -EACCES) {
		return 15;
	}
	sbt_rc_close(&c);
	return 0;
}

START_TEST(access_rules_refuse_with_eacces)
{
	struct sbt_broker b;
	pid_t pid;

	sbt_broker_up(&b,
		      "{\"socket\": {\"mode\": \"0666\"},"
		      " \"topic_defaults\": {\"access\": {\"admin\": {}}},"
		      " \"topics\": [{\"name\": \"locked\", \"access\":"
		      " {\"publish\": {\"uids\": [4242]}, \"admin\": {}}}]}");
	chmod(b.dir, 0755);
	pid = fork();
	if (pid == 0) {
		_exit(access_child(b.socket));
	}
	ck_assert_int_eq(sbt_wait(pid), 0);
	stop(&b);
}
END_TEST

/* ---- malformed input ---- */

/* Sends raw bytes on a fresh connection, expects one error reply with
 * `code`, and then either a closed connection or a working one. */
static void malformed(const struct sbt_broker *b, const void *bytes, size_t len,
		      bool hello_first, int code, bool closes)
{
	struct sbt_rc c;

	if (hello_first) {
		rc_hello(&c, b->socket);
	} else {
		ck_assert_int_eq(sbt_rc_connect(&c, b->socket, RECV_TIMEOUT_MS),
				 0);
	}
	ck_assert_int_eq(sbt_rc_send_raw(&c, bytes, len), 0);
	ck_assert_int_eq(sbt_rc_recv(&c), 0);
	ck_assert_int_eq(sbt_rc_code(&c), code);
	if (closes) {
		ck_assert_int_eq(sbt_rc_recv(&c), -ECONNRESET);
	} else {
		ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"ping\",\"id\":2}"),
				 hello_first ? 0 : -EPROTO);
	}
	sbt_rc_close(&c);
	assert_healthy(b);
}

static void malformed_text(const struct sbt_broker *b, const char *json,
			   int code)
{
	char frame[512];
	size_t len = strlen(json);

	frame[0] = (char)(len >> 24);
	frame[1] = (char)(len >> 16);
	frame[2] = (char)(len >> 8);
	frame[3] = (char)len;
	memcpy(frame + 4, json, len);
	malformed(b, frame, len + 4, true, code, false);
}

START_TEST(framing_errors_close_only_that_connection)
{
	static const unsigned char too_big[] = {0x00, 0x10, 0x00, 0x01};
	static const unsigned char zero[] = {0, 0, 0, 0};
	struct sbt_broker b;
	struct sbt_rc other, c;

	sbt_broker_up(&b, NULL);
	rc_hello(&other, b.socket);
	malformed(&b, too_big, sizeof(too_big), true, -EMSGSIZE, true);
	malformed(&b, zero, sizeof(zero), false, -EPROTO, true);
	/* A truncated frame, then the client goes away. */
	ck_assert_int_eq(sbt_rc_connect(&c, b.socket, RECV_TIMEOUT_MS), 0);
	ck_assert_int_eq(sbt_rc_send_raw(&c, "\0\0\0\x20{\"op\":", 10), 0);
	sbt_rc_close(&c);
	assert_healthy(&b);
	ck_assert_int_eq(sbt_rc_call(&other, "{\"op\":\"ping\",\"id\":7}"), 0);
	sbt_rc_close(&other);
	stop(&b);
}
END_TEST

/* A peer's strings reach error messages, which the broker also logs:
 * they arrive escaped, so a peer cannot forge a log line. */
START_TEST(peer_strings_in_errors_are_escaped)
{
	static const char *const debug[] = {"--log-level", "debug", NULL};
	struct sbt_broker b;
	struct sbt_rc c;

	ck_assert_int_eq(sbt_broker_start(&b, NULL, debug), 0);
	rc_hello(&c, b.socket);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"evil\\nFORGED LINE\","
					 "\"id\":2}"),
			 -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(sbt_rc_message(&c), "\\nFORGED"));
	ck_assert_int_eq(
	    sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":3,"
			    "\"topic\":\"t\",\"mode\":\"x\\rFORGED\"}"),
	    -EINVAL);
	ck_assert_ptr_nonnull(strstr(sbt_rc_message(&c), "\\rFORGED"));
	ck_assert(sbt_broker_log_wait(&b, "FORGED"));
	ck_assert(!sbt_broker_log_contains(&b, "\nFORGED"));
	ck_assert(!sbt_broker_log_contains(&b, "\rFORGED"));
	sbt_rc_close(&c);
	stop(&b);
}
END_TEST

START_TEST(bad_requests_get_an_error_and_the_connection_stays)
{
	struct sbt_broker b;

	sbt_broker_up(&b, NULL);
	malformed_text(&b, "{\"op\": \"ping\", \"id\": ", -EPROTO);
	malformed_text(&b, "[1, 2]", -EPROTO);
	malformed_text(&b, "{\"op\": 5, \"id\": 1}", -EPROTO);
	malformed_text(&b, "{\"op\": \"ping\", \"id\": \"one\"}", -EPROTO);
	malformed_text(&b, "{\"op\": \"frobnicate\", \"id\": 1}", -ENOTSUP);
	malformed_text(&b, "{\"op\": \"ping\", \"id\": 1, \"colour\": 2}",
		       -EINVAL);
	malformed_text(&b, "{\"op\": \"close\", \"id\": 1, \"handle\": \"x\"}",
		       -EINVAL);
	stop(&b);
}
END_TEST

/* ---- notices: requests without an id, which get no reply ---- */

/* The last reply's "id", or -1 when it is null or missing. */
static int64_t reply_id(const struct sbt_rc *c)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(c->reply, "id");

	return cJSON_IsNumber(id) ? (int64_t)id->valuedouble : -1;
}

/* Sends `json` as a notice: nothing is read back. */
static void notice(struct sbt_rc *c, const char *json)
{
	ck_assert_int_eq(sbt_rc_send(c, json), 0);
}

/*
 * Pings with `id` and checks that the very next frame is that ping's
 * reply, and that nothing follows it: whatever was sent before the ping
 * got no reply of its own, late or early.
 */
static void ping_is_next(struct sbt_rc *c, int id)
{
	char byte;

	ck_assert_int_eq(sbt_rc_call(c, "{\"op\":\"ping\",\"id\":%d}", id), 0);
	ck_assert_int_eq(reply_id(c), id);
	ck_assert_int_eq(recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT), -1);
	ck_assert_int_eq(errno, EAGAIN);
}

/* topic_stat's publisher and subscriber counts of `topic`. */
static void assert_counts(struct sbt_rc *c, const char *topic, int pubs,
			  int subs)
{
	ck_assert_int_eq(sbt_rc_call(c,
				     "{\"op\":\"topic_stat\",\"id\":50,"
				     "\"topic\":\"%s\"}",
				     topic),
			 0);
	ck_assert_int_eq(sbt_rc_int(c, "topic.publishers", -1), pubs);
	ck_assert_int_eq(sbt_rc_int(c, "topic.subscribers", -1), subs);
}

/* An open's handle. */
static int64_t open_handle(struct sbt_rc *c, const char *op, const char *topic)
{
	ck_assert_int_eq(sbt_rc_call(c,
				     "{\"op\":\"%s\",\"id\":40,\"topic\":"
				     "\"%s\"}",
				     op, topic),
			 0);
	return result_int(c, "handle");
}

START_TEST(a_close_notice_gets_no_reply_and_is_applied_in_order)
{
	struct sbt_broker b;
	struct sbt_rc c;
	int64_t pub, sub, temp;
	char json[128];

	sbt_broker_up(&b, NULL);
	rc_hello(&c, b.socket);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
					 "\"topic\":\"n/t\"}"),
			 0);
	pub = open_handle(&c, "pub_open", "n/t");
	sub = open_handle(&c, "sub_open", "n/t");
	assert_counts(&c, "n/t", 1, 1);

	snprintf(json, sizeof(json), "{\"op\":\"close\",\"handle\":%lld}",
		 (long long)pub);
	notice(&c, json);
	ping_is_next(&c, 77);
	/* Frames of one connection are handled in order: the stat that
	 * follows the notice sees it done, with no waiting. */
	assert_counts(&c, "n/t", 0, 1);
	snprintf(json, sizeof(json), "{\"op\":\"close\",\"handle\":%lld}",
		 (long long)sub);
	notice(&c, json);
	assert_counts(&c, "n/t", 0, 0);
	/* The handles are gone: a close with an id says so. */
	ck_assert_int_eq(sbt_rc_call(&c,
				     "{\"op\":\"close\",\"id\":8,\"handle\":"
				     "%lld}",
				     (long long)pub),
			 -ENOENT);
	ck_assert_int_eq(reply_id(&c), 8);

	/* The last handle of an implicit topic, closed by a notice: the
	 * topic goes (linger 0) before the next request is read. */
	temp = open_handle(&c, "pub_open", "n/implicit");
	ck_assert(listed(&c, "n/implicit"));
	snprintf(json, sizeof(json), "{\"op\":\"close\",\"handle\":%lld}",
		 (long long)temp);
	notice(&c, json);
	ck_assert(!listed(&c, "n/implicit"));
	ping_is_next(&c, 78);
	sbt_rc_close(&c);
	stop(&b);
}
END_TEST

START_TEST(a_failed_notice_gets_no_reply_and_is_logged_once)
{
	struct sbt_broker b;
	struct sbt_rc c;

	sbt_broker_up(&b, NULL);
	/* Before hello: not done, not answered; the hello reply comes
	 * first. */
	ck_assert_int_eq(sbt_rc_connect(&c, b.socket, RECV_TIMEOUT_MS), 0);
	notice(&c, "{\"op\":\"close\",\"handle\":1}");
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"hello\",\"id\":1,"
					 "\"version\":1}"),
			 0);
	ck_assert_int_eq(reply_id(&c), 1);
	ck_assert(sbt_broker_log_contains(
	    &b, "notice \"close\" failed, and notices get no reply: the first "
		"request must be \"hello\""));
	/* An unknown handle, a field of the wrong type, a missing field,
	 * an unknown field: each gets no reply and the connection stays.
	 * Only the first failure of a connection is logged above debug. */
	notice(&c, "{\"op\":\"close\",\"handle\":4242}");
	notice(&c, "{\"op\":\"close\",\"handle\":\"x\"}");
	notice(&c, "{\"op\":\"close\"}");
	notice(&c, "{\"op\":\"close\",\"handle\":1,\"colour\":2}");
	ping_is_next(&c, 2);
	ck_assert(!sbt_broker_log_contains(&b, "no handle 4242"));
	sbt_rc_close(&c);

	/* A fresh connection's first failure is logged at warn level. */
	rc_hello(&c, b.socket);
	notice(&c, "{\"op\":\"close\",\"handle\":4242}");
	ping_is_next(&c, 3);
	ck_assert(sbt_broker_log_contains(&b, "no handle 4242 on this "
					      "connection"));
	sbt_rc_close(&c);
	assert_healthy(&b);
	stop(&b);
}
END_TEST

/* Ops other than close keep the envelope error for a missing id, and are
 * not run. */
START_TEST(only_close_may_come_without_an_id)
{
	static const char *const bad[] = {
	    "{\"op\":\"ping\"}",
	    "{\"op\":\"pub_open\",\"topic\":\"n/never\"}",
	    "{\"op\":\"topic_create\",\"topic\":\"n/never\"}",
	    "{\"op\":\"hello\",\"version\":1}",
	    "{\"op\":\"frobnicate\"}",
	};
	struct sbt_broker b;
	struct sbt_rc c;

	sbt_broker_up(&b, NULL);
	rc_hello(&c, b.socket);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(sbt_rc_send(&c, bad[i]), 0);
		ck_assert_int_eq(sbt_rc_recv(&c), 0);
		ck_assert_int_eq(sbt_rc_code(&c), -EPROTO);
		ck_assert(cJSON_IsNull(cJSON_GetObjectItem(c.reply, "id")));
		ck_assert_str_eq(sbt_rc_message(&c), "missing field \"id\"");
	}
	ping_is_next(&c, 5);
	ck_assert(!listed(&c, "n/never"));
	sbt_rc_close(&c);
	stop(&b);
}
END_TEST

/* ---- descriptors and the ring ---- */

/* Maps the descriptors of the last open reply and attaches, as the
 * library does (rawclient.h): two for a publisher, three for a
 * subscriber (its slot segment). */
static void map_reply(struct sbt_rc *c, bool writable, struct sbt_rc_topic *m)
{
	ck_assert_int_eq(c->nfds, writable ? 2 : 3);
	ck_assert_int_eq(result_int(c, "fds"), c->nfds);
	ck_assert_int_eq(sbt_rc_map_topic(c, writable, m), 0);
}

static void unmap(struct sbt_rc_topic *m)
{
	sbt_rc_unmap_topic(m);
}

/* As nobody, reopening the read-only descriptor for writing must fail. */
static int reopen_child(int fd)
{
	char path[64];

	if (setgid(NOBODY) < 0 || setuid(NOBODY) < 0) {
		return 10;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (open(path, O_RDWR) >= 0) {
		return 11;
	}
	return errno == EACCES ? 0 : 12;
}

START_TEST(subscriber_data_is_read_only)
{
	struct sbt_broker b;
	struct sbt_rc c;
	void *p;
	pid_t pid;

	sbt_broker_up(&b, NULL);
	rc_hello(&c, b.socket);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"sub_open\",\"id\":2,"
					 "\"topic\":\"ro\"}"),
			 0);
	ck_assert_int_eq(c.nfds, 3);
	ck_assert_int_eq(fcntl(c.fds[0], F_GETFL) & O_ACCMODE, O_RDONLY);
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, c.fds[0], 0);
	ck_assert_ptr_eq(p, MAP_FAILED);
	ck_assert_int_eq(errno, EACCES);
	pid = fork();
	if (pid == 0) {
		_exit(reopen_child(c.fds[0]));
	}
	ck_assert_int_eq(sbt_wait(pid), 0);
	sbt_rc_close(&c);
	stop(&b);
}
END_TEST

/* 1 when `fd` is open read-only and can be neither mapped writable nor
 * reopened for writing by a process of another uid. */
static int read_only_to_nobody(int fd)
{
	void *p;
	pid_t pid;

	if ((fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDONLY) {
		return 0;
	}
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED || errno != EACCES) {
		return 0;
	}
	pid = fork();
	if (pid == 0) {
		_exit(reopen_child(fd));
	}
	return sbt_wait(pid) == 0;
}

/*
 * Each subscriber gets a slot segment of its own, read-write; a publisher
 * asks for them (op slots) a page of 4 at a time, read-only; a
 * subscriber's handle gets none.
 */
START_TEST(slot_segments_go_read_only_to_publishers_only)
{
	struct sbt_broker b;
	struct sbt_rc c, s;
	int64_t pub, sub = -1;
	const cJSON *item;
	int seen = 0;

	sbt_broker_up(&b, NULL);
	rc_hello(&c, b.socket);
	rc_hello(&s, b.socket);
	for (int i = 0; i < 6; i++) {
		sub = open_handle(&s, "sub_open", "pg");
		ck_assert_int_eq(s.nfds, 3);
		ck_assert_int_eq(result_int(&s, "slot"), i);
		ck_assert_int_eq(fcntl(s.fds[2], F_GETFL) & O_ACCMODE, O_RDWR);
	}
	pub = open_handle(&c, "pub_open", "pg");
	ck_assert_int_eq(result_int(&c, "slots_in_use"), 6);
	ck_assert_int_ge(result_int(&c, "slot_gen"), 6);

	ck_assert_int_eq(sbt_rc_call(&c,
				     "{\"op\":\"slots\",\"id\":5,"
				     "\"handle\":%lld}",
				     (long long)pub),
			 0);
	ck_assert_int_eq(c.nfds, 4);
	ck_assert_int_eq(result_int(&c, "next"), 4);
	cJSON_ArrayForEach(item,
			   cJSON_GetObjectItem(sbt_rc_result(&c), "slots"))
	{
		ck_assert_int_eq((int)item->valuedouble, seen);
		ck_assert(read_only_to_nobody(c.fds[seen]));
		seen++;
	}
	ck_assert_int_eq(seen, 4);
	ck_assert_int_eq(sbt_rc_call(&c,
				     "{\"op\":\"slots\",\"id\":6,"
				     "\"handle\":%lld,\"from\":4}",
				     (long long)pub),
			 0);
	ck_assert_int_eq(c.nfds, 2);
	ck_assert_int_eq(sbt_rc_int(&c, "next", -1), -1); /* the last page */

	/* A subscriber gets no other's slot; nor does a stranger. */
	ck_assert_int_eq(sbt_rc_call(&s,
				     "{\"op\":\"slots\",\"id\":7,"
				     "\"handle\":%lld}",
				     (long long)sub),
			 -EACCES);
	ck_assert_int_eq(s.nfds, 0);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"slots\",\"id\":8,"
					 "\"handle\":999}"),
			 -ENOENT);
	sbt_rc_close(&s);
	sbt_rc_close(&c);
	stop(&b);
}
END_TEST

START_TEST(publish_and_receive_through_granted_descriptors)
{
	struct sbt_broker b;
	struct sbt_rc pub, sub;
	struct sbt_rc_topic pm, sm;
	struct sb_ring_reader rd;
	char msg[100], got[100];

	sbt_broker_up(&b, NULL);
	rc_hello(&pub, b.socket);
	rc_hello(&sub, b.socket);
	ck_assert_int_eq(sbt_rc_call(&pub, "{\"op\":\"pub_open\",\"id\":2,"
					   "\"topic\":\"data\"}"),
			 0);
	map_reply(&pub, true, &pm);
	ck_assert_int_eq(sbt_rc_call(&sub, "{\"op\":\"sub_open\",\"id\":2,"
					   "\"topic\":\"data\",\"start\":"
					   "\"earliest\"}"),
			 0);
	map_reply(&sub, false, &sm);
	ck_assert_int_eq(sbt_rc_topic_reader(&sm, SB_RING_START_EARLIEST, &rd),
			 0);
	sbt_fill_pattern(msg, sizeof(msg), 7);
	ck_assert_int_eq(sb_ring_publish(&pm.ring, msg, sizeof(msg), 1000), 0);
	ck_assert_int_eq(sb_ring_receive(&rd, got, sizeof(got), 1000),
			 sizeof(got));
	ck_assert(sbt_check_pattern(got, sizeof(got), 7));
	ck_assert_int_eq(sbt_rc_call(&pub, "{\"op\":\"topic_stat\",\"id\":3,"
					   "\"topic\":\"data\"}"),
			 0);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(
			     sbt_rc_result(&pub), "subscribers")),
			 1);
	sb_ring_reader_close(&rd);
	unmap(&pm);
	unmap(&sm);
	sbt_rc_close(&pub);
	sbt_rc_close(&sub);
	stop(&b);
}
END_TEST

/* ---- paging (topic_list, topic_stat) ---- */

/* A broker whose frames are as small as the config allows, so that a few
 * entries already need more than one page. */
#define SMALL_FRAMES "{\"limits\": {\"max_frame\": \"1KiB\"}}"

/* The last reply printed, which must fit in a 1KiB frame. */
static void assert_fits_small_frame(const struct sbt_rc *c)
{
	char *text = cJSON_PrintUnformatted(c->reply);

	ck_assert_ptr_nonnull(text);
	ck_assert_msg(strlen(text) <= 1024, "reply of %zu bytes", strlen(text));
	cJSON_free(text);
}

/* The last reply's "next" as a JSON value, printed into `buf`. */
static const char *next_of(const struct sbt_rc *c, char *buf, size_t len)
{
	const cJSON *next =
	    cJSON_GetObjectItemCaseSensitive(sbt_rc_result(c), "next");
	char *text = cJSON_PrintUnformatted(next);

	ck_assert_ptr_nonnull(text);
	snprintf(buf, len, "%s", text);
	cJSON_free(text);
	return buf;
}

static bool more_of(const struct sbt_rc *c)
{
	const cJSON *more =
	    cJSON_GetObjectItemCaseSensitive(sbt_rc_result(c), "more");

	ck_assert_msg(cJSON_IsBool(more), "no \"more\"");
	return cJSON_IsTrue(more);
}

/*
 * topic_list without paging fields gets a first page and "more"; passing
 * each "next" back as "after" walks every topic once, in name order, each
 * reply within max_frame; "limit" caps a page; an "after" that names a
 * topic no longer there still resumes at the right place.
 */
START_TEST(topic_list_pages_every_topic_once)
{
	struct sbt_broker b;
	struct sbt_rc c;
	char after[256] = "", last[64] = "";
	int seen = 0, pages = 0;
	const cJSON *t;

	sbt_broker_up(&b, SMALL_FRAMES);
	rc_hello(&c, b.socket);
	for (int i = 0; i < 40; i++) {
		ck_assert_int_eq(
		    sbt_rc_call(&c,
				"{\"op\":\"topic_create\",\"id\":2,"
				"\"topic\":\"page/t%02d\","
				"\"capacity\":4096}",
				i),
		    0);
	}
	do {
		ck_assert_int_eq(
		    sbt_rc_call(&c, "{\"op\":\"topic_list\",\"id\":3%s%s}",
				after[0] ? ",\"after\":" : "", after),
		    0);
		assert_fits_small_frame(&c);
		pages++;
		cJSON_ArrayForEach(
		    t, cJSON_GetObjectItem(sbt_rc_result(&c), "topics"))
		{
			const char *name = cJSON_GetStringValue(
			    cJSON_GetObjectItem(t, "name"));
			char want[32];

			snprintf(want, sizeof(want), "page/t%02d", seen++);
			ck_assert_str_eq(name, want);
			snprintf(last, sizeof(last), "\"%s\"", name);
		}
		if (more_of(&c)) {
			ck_assert_str_eq(next_of(&c, after, sizeof(after)),
					 last);
		}
	} while (more_of(&c));
	ck_assert_int_eq(seen, 40);
	ck_assert_int_gt(pages, 2);

	ck_assert_int_eq(sbt_rc_call(&c,
				     "{\"op\":\"topic_list\",\"id\":4,"
				     "\"limit\":3,\"after\":\"page/t10x\"}"),
			 0);
	ck_assert_int_eq(cJSON_GetArraySize(
			     cJSON_GetObjectItem(sbt_rc_result(&c), "topics")),
			 3);
	ck_assert(more_of(&c));
	ck_assert_str_eq(next_of(&c, after, sizeof(after)), "\"page/t13\"");
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_list\",\"id\":5,"
					 "\"after\":\"page/t39\"}"),
			 0);
	ck_assert_int_eq(cJSON_GetArraySize(
			     cJSON_GetObjectItem(sbt_rc_result(&c), "topics")),
			 0);
	ck_assert(!more_of(&c));
	ck_assert_ptr_null(cJSON_GetObjectItem(sbt_rc_result(&c), "next"));
	sbt_rc_close(&c);
	stop(&b);
}
END_TEST

/* A bad paging field is a field error that names it. */
START_TEST(bad_paging_fields_are_field_errors)
{
	static const struct {
		const char *request, *message;
	} cases[] = {
	    {"{\"op\":\"topic_list\",\"id\":2,\"after\":5}",
	     "field \"after\" must be a string (got number)"},
	    {"{\"op\":\"topic_list\",\"id\":2,\"after\":null}",
	     "field \"after\" must be a string (got null)"},
	    {"{\"op\":\"topic_list\",\"id\":2,\"after\":\"a//b\"}",
	     "field \"after\": invalid topic name"},
	    {"{\"op\":\"topic_list\",\"id\":2,\"after\":\"\"}",
	     "field \"after\": invalid topic name"},
	    {"{\"op\":\"topic_list\",\"id\":2,\"limit\":-1}",
	     "field \"limit\" must be from 1 to"},
	    {"{\"op\":\"topic_list\",\"id\":2,\"limit\":0}",
	     "field \"limit\" must be from 1 to"},
	    {"{\"op\":\"topic_list\",\"id\":2,\"limit\":\"10\"}",
	     "field \"limit\" must be an integer (got string)"},
	    {"{\"op\":\"topic_list\",\"id\":2,\"limit\":1.5}",
	     "field \"limit\" must be an integer (got 1.5)"},
	    {"{\"op\":\"topic_stat\",\"id\":2,\"topic\":\"p\",\"after\":3}",
	     "field \"after\" must be an object (got number)"},
	    {"{\"op\":\"topic_stat\",\"id\":2,\"topic\":\"p\",\"after\":"
	     "{\"subscriber\":-1}}",
	     "field \"after\": field \"subscriber\" must be from 0 to"},
	    {"{\"op\":\"topic_stat\",\"id\":2,\"topic\":\"p\",\"after\":"
	     "{\"publisher\":\"7\"}}",
	     "field \"after\": field \"publisher\" must be an integer"},
	    {"{\"op\":\"topic_stat\",\"id\":2,\"topic\":\"p\",\"after\":"
	     "{\"slot\":1}}",
	     "field \"after\": unknown field \"slot\""},
	    {"{\"op\":\"topic_stat\",\"id\":2,\"topic\":\"p\",\"after\":{}}",
	     "field \"after\" must have one of \"subscriber\" and "
	     "\"publisher\""},
	    {"{\"op\":\"topic_stat\",\"id\":2,\"topic\":\"p\",\"after\":"
	     "{\"subscriber\":1,\"publisher\":2}}",
	     "field \"after\" must have one of"},
	    {"{\"op\":\"topic_stat\",\"id\":2,\"topic\":\"p\",\"limit\":-5}",
	     "field \"limit\" must be from 1 to"},
	    {"{\"op\":\"topic_stat\",\"id\":2,\"topic\":\"p\",\"limit\":true}",
	     "field \"limit\" must be an integer (got bool"},
	    {"{\"op\":\"topic_list\",\"id\":2,\"cursor\":\"x\"}",
	     "unknown field \"cursor\""},
	};
	struct sbt_broker b;
	struct sbt_rc c;

	sbt_broker_up(&b, NULL);
	rc_hello(&c, b.socket);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":1,"
					 "\"topic\":\"p\"}"),
			 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(sbt_rc_call(&c, "%s", cases[i].request),
				 -EINVAL);
		ck_assert_msg(
		    strstr(sbt_rc_message(&c), cases[i].message) != NULL,
		    "%s: got \"%s\"", cases[i].request, sbt_rc_message(&c));
	}
	assert_healthy(&b);
	sbt_rc_close(&c);
	stop(&b);
}
END_TEST

#define PAGED_SUBS 12
#define PAGED_PUBS 6

/* Checks one topic_stat page's "subscribers" (slots rising past
 * *last_slot, names reader-N seen once) and "publishers" (clients rising
 * past *last_client, names writer-N seen once). Returns the entries. */
static int check_stat_page(const struct sbt_rc *c, bool *readers, bool *writers,
			   int64_t *last_slot, int64_t *last_client)
{
	const cJSON *res = sbt_rc_result(c), *e;
	int n = 0;

	cJSON_ArrayForEach(e, cJSON_GetObjectItem(res, "subscribers"))
	{
		int64_t slot = (int64_t)cJSON_GetNumberValue(
		    cJSON_GetObjectItem(e, "slot"));
		const char *name =
		    cJSON_GetStringValue(cJSON_GetObjectItem(e, "name"));
		int k = -1;

		ck_assert_int_eq(*last_client, -1); /* subscribers first */
		ck_assert_int_gt(slot, *last_slot);
		*last_slot = slot;
		ck_assert_int_eq(sscanf(name ? name : "", "reader-%d", &k), 1);
		ck_assert(k >= 0 && k < PAGED_SUBS && !readers[k]);
		readers[k] = true;
		n++;
	}
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(res, "publishers"))
	{
		int64_t client = (int64_t)cJSON_GetNumberValue(
		    cJSON_GetObjectItem(e, "client"));
		const char *name =
		    cJSON_GetStringValue(cJSON_GetObjectItem(e, "name"));
		int k = -1;

		ck_assert_int_gt(client, *last_client);
		*last_client = client;
		ck_assert_int_eq((int)cJSON_GetNumberValue(
				     cJSON_GetObjectItem(e, "handles")),
				 1);
		ck_assert_int_eq(sscanf(name ? name : "", "writer-%d", &k), 1);
		ck_assert(k >= 0 && k < PAGED_PUBS && !writers[k]);
		writers[k] = true;
		n++;
	}
	return n;
}

/*
 * topic_stat with more subscribers and publishers than fit in one small
 * frame: each page fits and repeats the topic's settings and counters, and
 * passing "next" back as "after" lists every subscriber, then every
 * publishing client, once, each with the name its client gave in hello.
 */
START_TEST(topic_stat_pages_its_subscribers)
{
	struct sbt_broker b;
	struct sbt_rc subs[PAGED_SUBS], pubs[PAGED_PUBS], c;
	struct sbt_rc_topic maps[PAGED_SUBS];
	struct sb_ring_reader rds[PAGED_SUBS];
	bool readers[PAGED_SUBS] = {false}, writers[PAGED_PUBS] = {false};
	char after[64] = "";
	int pages = 0, total = 0;
	int64_t last_slot = -1, last_client = -1;

	sbt_broker_up(&b, SMALL_FRAMES);
	for (int i = 0; i < PAGED_SUBS; i++) {
		char name[32];

		snprintf(name, sizeof(name), "reader-%d", i);
		ck_assert_int_eq(sbt_rc_hello(&subs[i], b.socket, name), 0);
		ck_assert_int_eq(sbt_rc_call(&subs[i],
					     "{\"op\":\"sub_open\",\"id\":2,"
					     "\"topic\":\"many\"}"),
				 0);
		map_reply(&subs[i], false, &maps[i]);
		ck_assert_int_eq(sbt_rc_topic_reader(
				     &maps[i], SB_RING_START_LATEST, &rds[i]),
				 0);
	}
	for (int i = 0; i < PAGED_PUBS; i++) {
		char name[32];

		snprintf(name, sizeof(name), "writer-%d", i);
		ck_assert_int_eq(sbt_rc_hello(&pubs[i], b.socket, name), 0);
		ck_assert_int_eq(sbt_rc_call(&pubs[i],
					     "{\"op\":\"pub_open\",\"id\":2,"
					     "\"topic\":\"many\"}"),
				 0);
	}
	rc_hello(&c, b.socket);
	do {
		ck_assert_int_eq(sbt_rc_call(&c,
					     "{\"op\":\"topic_stat\",\"id\":3,"
					     "\"topic\":\"many\"%s%s}",
					     after[0] ? ",\"after\":" : "",
					     after),
				 0);
		assert_fits_small_frame(&c);
		ck_assert_int_eq(sbt_rc_int(&c, "topic.subscribers", -1),
				 PAGED_SUBS);
		ck_assert_int_eq(sbt_rc_int(&c, "topic.publishers", -1),
				 PAGED_PUBS);
		pages++;
		ck_assert_int_gt(check_stat_page(&c, readers, writers,
						 &last_slot, &last_client),
				 0);
		if (more_of(&c)) {
			next_of(&c, after, sizeof(after));
		}
	} while (more_of(&c));
	for (int i = 0; i < PAGED_SUBS; i++) {
		total += readers[i];
	}
	for (int i = 0; i < PAGED_PUBS; i++) {
		total += writers[i];
	}
	ck_assert_int_eq(total, PAGED_SUBS + PAGED_PUBS);
	ck_assert_int_gt(pages, 2);

	/* "limit" caps a page; its "next" names the last entry. */
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_stat\",\"id\":4,"
					 "\"topic\":\"many\",\"limit\":1}"),
			 0);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(
			     sbt_rc_result(&c), "subscribers")),
			 1);
	ck_assert(more_of(&c));
	ck_assert_int_eq(
	    sbt_rc_int(&c, "next.subscriber", -1),
	    (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(
		cJSON_GetArrayItem(
		    cJSON_GetObjectItem(sbt_rc_result(&c), "subscribers"), 0),
		"slot")));
	for (int i = 0; i < PAGED_SUBS; i++) {
		sb_ring_reader_close(&rds[i]);
		unmap(&maps[i]);
		sbt_rc_close(&subs[i]);
	}
	for (int i = 0; i < PAGED_PUBS; i++) {
		sbt_rc_close(&pubs[i]);
	}
	sbt_rc_close(&c);
	stop(&b);
}
END_TEST

/* Holds a sub handle and a slot, tells the parent, and waits to die. */
static void slot_holder(const char *socket, int ready_fd)
{
	struct sbt_rc c;
	struct sbt_rc_topic m;
	struct sb_ring_reader rd;

	rc_hello(&c, socket);
	if (sbt_rc_call(
		&c, "{\"op\":\"sub_open\",\"id\":2,\"topic\":\"slow\"}") != 0) {
		_exit(20);
	}
	map_reply(&c, false, &m);
	if (sbt_rc_topic_reader(&m, SB_RING_START_LATEST, &rd) < 0) {
		_exit(21);
	}
	if (write(ready_fd, "r", 1) != 1) {
		_exit(22);
	}
	for (;;) {
		pause();
	}
}

START_TEST(a_dead_subscriber_frees_its_slot_and_the_writer_goes_on)
{
	struct sbt_broker b;
	struct sbt_rc c;
	struct sbt_rc_topic m;
	char msg[512], r;
	int pipefd[2];
	pid_t holder, writer;

	sbt_broker_up(&b, NULL);
	rc_hello(&c, b.socket);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
					 "\"topic\":\"slow\",\"capacity\":4096,"
					 "\"max_message\":1024}"),
			 0);
	ck_assert_int_eq(pipe(pipefd), 0);
	holder = fork();
	if (holder == 0) {
		slot_holder(b.socket, pipefd[1]);
	}
	ck_assert_int_eq(read(pipefd[0], &r, 1), 1);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"pub_open\",\"id\":3,"
					 "\"topic\":\"slow\"}"),
			 0);
	map_reply(&c, true, &m);
	memset(msg, 'x', sizeof(msg));
	while (sb_ring_publish(&m.ring, msg, sizeof(msg), 0) == 0) {
	}
	ck_assert_int_eq(sb_ring_publish(&m.ring, msg, sizeof(msg), 0),
			 -EAGAIN);
	writer = fork();
	if (writer == 0) {
		/* Blocks behind the holder until the broker frees its slot. */
		_exit(sb_ring_publish(&m.ring, msg, sizeof(msg), 20000) == 0
			  ? 0
			  : 1);
	}
	kill(holder, SIGKILL);
	ck_assert_int_eq(sbt_wait(holder), -SIGKILL);
	ck_assert_int_eq(sbt_wait(writer), 0);
	unmap(&m);
	sbt_rc_close(&c);
	close(pipefd[0]);
	close(pipefd[1]);
	stop(&b);
}
END_TEST

/* ---- lifecycle ---- */

START_TEST(implicit_topics_go_with_their_last_user_explicit_stay)
{
	struct sbt_broker b;
	struct sbt_rc c, d;
	int64_t h;

	sbt_broker_up(&b, NULL);
	rc_hello(&c, b.socket);
	rc_hello(&d, b.socket);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
					 "\"topic\":\"kept\"}"),
			 0);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"pub_open\",\"id\":2,"
					 "\"topic\":\"kept\"}"),
			 0);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"pub_open\",\"id\":2,"
					 "\"topic\":\"temp\"}"),
			 0);
	h = result_int(&c, "handle");
	ck_assert_int_eq(sbt_rc_call(&d, "{\"op\":\"sub_open\",\"id\":2,"
					 "\"topic\":\"temp\"}"),
			 0);
	ck_assert_int_eq(sbt_rc_call(&c,
				     "{\"op\":\"close\",\"id\":2,\"handle\":"
				     "%lld}",
				     (long long)h),
			 0);
	ck_assert(listed(&c, "temp"));
	sbt_rc_close(&d); /* the last user: the connection closes */
	sbt_rc_close(&c);
	rc_hello(&c, b.socket);
	for (int i = 0; i < 500 && listed(&c, "temp"); i++) {
		sbt_sleep_ms(10);
	}
	ck_assert(!listed(&c, "temp"));
	ck_assert(listed(&c, "kept"));
	sbt_rc_close(&c);
	stop(&b);
}
END_TEST

START_TEST(deleting_a_topic_in_use_keeps_its_users_working)
{
	struct sbt_broker b;
	struct sbt_rc c;
	struct sbt_rc_topic pm, sm;
	struct sb_ring_reader rd;
	char got[16];

	sbt_broker_up(&b, NULL);
	rc_hello(&c, b.socket);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
					 "\"topic\":\"doomed\"}"),
			 0);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"pub_open\",\"id\":2,"
					 "\"topic\":\"doomed\"}"),
			 0);
	map_reply(&c, true, &pm);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"sub_open\",\"id\":2,"
					 "\"topic\":\"doomed\"}"),
			 0);
	map_reply(&c, false, &sm);
	ck_assert_int_eq(sbt_rc_topic_reader(&sm, SB_RING_START_LATEST, &rd),
			 0);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_delete\",\"id\":3,"
					 "\"topic\":\"doomed\"}"),
			 0);
	ck_assert(!listed(&c, "doomed"));
	ck_assert_int_eq(sb_ring_publish(&pm.ring, "after", 5, 1000), 0);
	ck_assert_int_eq(sb_ring_receive(&rd, got, sizeof(got), 1000), 5);
	ck_assert_int_eq(memcmp(got, "after", 5), 0);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_stat\",\"id\":3,"
					 "\"topic\":\"doomed\"}"),
			 -ENOENT);
	sb_ring_reader_close(&rd);
	unmap(&pm);
	unmap(&sm);
	sbt_rc_close(&c);
	assert_healthy(&b);
	stop(&b);
}
END_TEST

/* ---- limits ---- */

START_TEST(limits_give_their_errors)
{
	struct sbt_broker b;
	struct sbt_rc c, d, e;

	sbt_broker_up(
	    &b, "{\"limits\": {\"max_clients\": 2, \"max_topics\": 3,"
		" \"max_ring_bytes\": \"8KiB\", \"max_topic_bytes\": \"4KiB\"},"
		" \"topic_defaults\": {\"capacity\": \"4KiB\","
		" \"max_message\": \"1KiB\"}}");
	rc_hello(&c, b.socket);
	rc_hello(&d, b.socket);
	ck_assert_int_eq(sbt_rc_connect(&e, b.socket, RECV_TIMEOUT_MS), 0);
	ck_assert_int_eq(sbt_rc_recv(&e), 0);
	ck_assert_int_eq(sbt_rc_code(&e), -EUSERS);
	ck_assert_int_eq(sbt_rc_recv(&e), -ECONNRESET);
	sbt_rc_close(&e);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
					 "\"topic\":\"a\"}"),
			 0);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
					 "\"topic\":\"b\"}"),
			 0);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
					 "\"topic\":\"c\"}"),
			 -ENOSPC);
	ck_assert_ptr_nonnull(strstr(sbt_rc_message(&c), "max_ring_bytes"));
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
					 "\"topic\":\"c\",\"capacity\":8192}"),
			 -EINVAL);
	sbt_rc_close(&c);
	sbt_rc_close(&d);
	stop(&b);

	sbt_broker_up(&b, "{\"limits\": {\"max_topics\": 1}}");
	rc_hello(&c, b.socket);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":2,"
					 "\"topic\":\"a\"}"),
			 0);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"pub_open\",\"id\":2,"
					 "\"topic\":\"b\"}"),
			 -ENOSPC);
	ck_assert_ptr_nonnull(strstr(sbt_rc_message(&c), "max_topics"));
	sbt_rc_close(&c);
	stop(&b);
}
END_TEST

/* ---- start-up, signals, config ---- */

static void expect_config_error(const char *json, const char *field)
{
	struct sbt_broker b;
	char err[1024];
	const char *argv[] = {"shmbusd",  "--config", b.config,
			      "--socket", b.socket,   NULL};
	FILE *f;

	memset(&b, 0, sizeof(b));
	b.dir = sbt_tempdir();
	snprintf(b.config, sizeof(b.config), "%s/bad.json", b.dir);
	snprintf(b.socket, sizeof(b.socket), "%s/s.sock", b.dir);
	f = fopen(b.config, "w");
	ck_assert_ptr_nonnull(f);
	fputs(json, f);
	fclose(f);
	ck_assert_int_eq(sbt_run_shmbusd(argv, err, sizeof(err)), 2);
	ck_assert_msg(strstr(err, "bad.json") != NULL &&
			  strstr(err, field) != NULL,
		      "message \"%s\" lacks the file or \"%s\"", err, field);
	sbt_rmtree(b.dir);
}

START_TEST(bad_config_files_are_refused_naming_the_field)
{
	char err[1024];
	const char *bad_flag[] = {"shmbusd", "--bogus", NULL};
	const char *bad_level[] = {"shmbusd", "--log-level", "loud", NULL};
	const char *missing[] = {"shmbusd", "--config", "/nonexistent/x.json",
				 NULL};

	expect_config_error("{\"limits\": {", "invalid JSON");
	expect_config_error("{\"max_client\": 3}", "max_client");
	expect_config_error("{\"limits\": {\"max_clients\": \"many\"}}",
			    "limits.max_clients");
	expect_config_error("{\"limits\": {\"max_clients\": 0}}",
			    "limits.max_clients");
	expect_config_error("{\"topics\": [{\"name\": \"a\", \"capacity\":"
			    " 5000}]}",
			    "topics[0].capacity");
	ck_assert_int_eq(sbt_run_shmbusd(bad_flag, err, sizeof(err)), 64);
	ck_assert_ptr_nonnull(strstr(err, "--bogus"));
	ck_assert_int_eq(sbt_run_shmbusd(bad_level, err, sizeof(err)), 64);
	ck_assert_ptr_nonnull(strstr(err, "--log-level"));
	ck_assert_int_eq(sbt_run_shmbusd(missing, err, sizeof(err)), 2);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/x.json"));
}
END_TEST

static void rewrite_config(const struct sbt_broker *b, const char *json)
{
	char tmp[300];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.new", b->config);
	f = fopen(tmp, "w");
	ck_assert_ptr_nonnull(f);
	fputs(json, f);
	fclose(f);
	ck_assert_int_eq(rename(tmp, b->config), 0);
}

START_TEST(sighup_reloads_a_good_file_and_keeps_the_old_on_a_bad_one)
{
	struct sbt_broker b;
	struct sbt_rc c;
	int i;

	sbt_broker_up(&b, "{\"topics\": [{\"name\": \"first\"}]}");
	rc_hello(&c, b.socket);
	ck_assert(listed(&c, "first"));
	rewrite_config(&b, "{\"topics\": [{\"name\": \"first\"},"
			   " {\"name\": \"second\"}]}");
	kill(b.pid, SIGHUP);
	for (i = 0; i < 500 && !listed(&c, "second"); i++) {
		sbt_sleep_ms(10);
	}
	ck_assert(listed(&c, "second"));
	rewrite_config(&b, "{\"limits\": {\"max_frame\": \"lots\"}}");
	kill(b.pid, SIGHUP);
	for (i = 0; i < 500 && !sbt_broker_log_contains(
				   &b, "keeping the previous configuration");
	     i++) {
		sbt_sleep_ms(10);
	}
	ck_assert(sbt_broker_log_contains(&b, "limits.max_frame"));
	ck_assert(listed(&c, "second"));
	sbt_rc_close(&c);
	assert_healthy(&b);
	stop(&b);
}
END_TEST

START_TEST(a_second_broker_on_the_same_socket_is_refused)
{
	struct sbt_broker b;
	char err[1024];
	const char *argv[] = {"shmbusd", "--socket", b.socket, NULL};

	sbt_broker_up(&b, NULL);
	ck_assert_int_eq(sbt_run_shmbusd(argv, err, sizeof(err)), 1);
	ck_assert_msg(strstr(err, "another shmbusd is listening") != NULL,
		      "unexpected message \"%s\"", err);
	assert_healthy(&b);
	stop(&b);
}
END_TEST

START_TEST(a_stale_socket_file_is_replaced)
{
	struct sbt_broker b;
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd;

	memset(&b, 0, sizeof(b));
	b.dir = sbt_tempdir();
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/shmbusd.sock",
		 b.dir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	close(fd); /* a socket file nobody listens on: stale */
	ck_assert_int_eq(sbt_broker_start_in(&b, NULL, NULL), 0);
	ck_assert(sbt_broker_log_contains(&b, "removed stale socket"));
	assert_healthy(&b);
	stop(&b);
}
END_TEST

/* Counts the entries of /dev/shm that could be the broker's (what a crash
 * would leave behind); other tests' names do not contain "shmbus". */
static int dev_shm_entries(void)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL) {
		n += strstr(e->d_name, "shmbus") != NULL;
	}
	closedir(d);
	return n;
}

START_TEST(sigterm_exits_zero_and_removes_the_socket)
{
	struct sbt_broker b;
	struct sbt_rc c;
	struct stat st;
	int shm_before = dev_shm_entries();

	sbt_broker_up(&b, NULL);
	rc_hello(&c, b.socket);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"pub_open\",\"id\":2,"
					 "\"topic\":\"held\"}"),
			 0);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"topic_create\",\"id\":3,"
					 "\"topic\":\"made\"}"),
			 0);
	ck_assert_int_eq(sbt_broker_signal_wait(&b, SIGTERM), 0);
	/* Topic memory is memfd: nothing is ever named in /dev/shm. */
	ck_assert_int_eq(dev_shm_entries(), shm_before);
	ck_assert_int_eq(lstat(b.socket, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(sbt_rc_recv(&c), -ECONNRESET);
	sbt_rc_close(&c);
	stop(&b);
}
END_TEST

START_TEST(a_persistent_topic_keeps_its_messages_across_restarts)
{
	struct sbt_broker b;
	struct sbt_rc c;
	struct sbt_rc_topic m;
	struct sb_ring_reader rd;
	char cfg[512], got[16];

	memset(&b, 0, sizeof(b));
	b.dir = sbt_tempdir();
	snprintf(cfg, sizeof(cfg),
		 "{\"data_dir\": \"%s\", \"topics\": [{\"name\": \"keep/me\","
		 " \"persistent\": true, \"capacity\": \"64KiB\","
		 " \"max_message\": \"1KiB\"}]}",
		 b.dir);
	ck_assert_int_eq(sbt_broker_start_in(&b, cfg, NULL), 0);
	rc_hello(&c, b.socket);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"pub_open\",\"id\":2,"
					 "\"topic\":\"keep/me\"}"),
			 0);
	map_reply(&c, true, &m);
	ck_assert_int_eq(sb_ring_publish(&m.ring, "durable", 7, 1000), 0);
	unmap(&m);
	sbt_rc_close(&c);
	ck_assert_int_eq(sbt_broker_signal_wait(&b, SIGTERM), 0);
	ck_assert_int_eq(sbt_broker_start_in(&b, cfg, NULL), 0);
	ck_assert(sbt_broker_log_wait(&b, "reusing its persisted ring"));
	rc_hello(&c, b.socket);
	ck_assert_int_eq(sbt_rc_call(&c, "{\"op\":\"sub_open\",\"id\":2,"
					 "\"topic\":\"keep/me\"}"),
			 0);
	map_reply(&c, false, &m);
	ck_assert_int_eq(sbt_rc_topic_reader(&m, SB_RING_START_EARLIEST, &rd),
			 0);
	ck_assert_int_eq(sb_ring_receive(&rd, got, sizeof(got), 1000), 7);
	ck_assert_int_eq(memcmp(got, "durable", 7), 0);
	sb_ring_reader_close(&rd);
	unmap(&m);
	sbt_rc_close(&c);
	stop(&b);
}
END_TEST

/*
 * A grant that has to wait in the broker's queue (the client reads nothing
 * until the socket is full) goes out with copies of the topic's
 * descriptors: the topic itself is gone by then (implicit, closed by a
 * notice right after the open), yet the reply still carries both
 * segments, whole.
 */
START_TEST(a_queued_grant_keeps_its_descriptors)
{
	enum { TOPICS = 100, LISTS = 20 };
	struct sbt_broker b;
	struct sbt_rc c;
	struct sbt_rc_topic m;
	char name[SB_TOPIC_NAME_MAX + 1];
	size_t listed_bytes = 0;
	long wmem = 0;
	FILE *f;
	char pad[191];

	sbt_broker_up(&b, NULL);
	rc_hello(&c, b.socket);
	memset(pad, 'n', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	for (int i = 0; i < TOPICS; i++) {
		snprintf(name, sizeof(name), "q%05d%s", i, pad);
		ck_assert_int_eq(
		    sbt_rc_call(&c,
				"{\"op\":\"topic_create\",\"id\":1,"
				"\"topic\":\"%s\"}",
				name),
		    0);
	}
	for (int i = 0; i < LISTS; i++) {
		ck_assert_int_eq(
		    sbt_rc_send(&c, "{\"op\":\"topic_list\",\"id\":2}"), 0);
	}
	ck_assert_int_eq(
	    sbt_rc_send(&c,
			"{\"op\":\"pub_open\",\"id\":3,\"topic\":\"gone\"}"),
	    0);
	notice(&c, "{\"op\":\"close\",\"handle\":1}");
	sbt_sleep_ms(300); /* the broker handles all of it; "gone" goes */

	for (int i = 0; i < LISTS; i++) {
		char *text;

		ck_assert_int_eq(sbt_rc_recv(&c), 0);
		ck_assert_int_eq(reply_id(&c), 2);
		text = cJSON_PrintUnformatted(c.reply);
		listed_bytes += strlen(text);
		free(text);
	}
	/* More than the socket holds: the grant had to be queued. */
	f = fopen("/proc/sys/net/core/wmem_default", "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%ld", &wmem), 1);
	fclose(f);
	ck_assert_uint_gt(listed_bytes, 2 * (size_t)wmem);

	ck_assert_int_eq(sbt_rc_recv(&c), 0);
	ck_assert_int_eq(reply_id(&c), 3);
	ck_assert_int_eq(result_int(&c, "handle"), 1);
	map_reply(&c, true, &m);
	ck_assert_int_eq(sb_ring_publish(&m.ring, "x", 1, 0), 0);
	unmap(&m);
	ck_assert_int_eq(listed(&c, "gone"), 0);
	sbt_rc_close(&c);
	stop(&b);
}
END_TEST

static TCase *tcase(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, TIMEOUT_S);
	suite_add_tcase(s, tc);
	return tc;
}

Suite *broker_suite(void)
{
	Suite *s = suite_create("broker");
	TCase *tc;

	tc = tcase(s, "hello");
	tcase_add_test(tc, hello_must_come_first_and_once);
	tcase_add_test(tc, hello_with_another_version_is_refused_and_closed);
	tc = tcase(s, "ops");
	tcase_add_test(tc, topic_ops_and_their_errors);
	tcase_add_test(tc, auto_create_off_gives_enoent);
	tcase_add_test(tc, access_rules_refuse_with_eacces);
	tc = tcase(s, "malformed");
	tcase_add_test(tc, framing_errors_close_only_that_connection);
	tcase_add_test(tc, bad_requests_get_an_error_and_the_connection_stays);
	tcase_add_test(tc, peer_strings_in_errors_are_escaped);
	tc = tcase(s, "notices");
	tcase_add_test(tc,
		       a_close_notice_gets_no_reply_and_is_applied_in_order);
	tcase_add_test(tc, a_failed_notice_gets_no_reply_and_is_logged_once);
	tcase_add_test(tc, only_close_may_come_without_an_id);
	tc = tcase(s, "descriptors");
	tcase_add_test(tc, subscriber_data_is_read_only);
	tcase_add_test(tc, slot_segments_go_read_only_to_publishers_only);
	tcase_add_test(tc, publish_and_receive_through_granted_descriptors);
	tcase_add_test(tc, topic_list_pages_every_topic_once);
	tcase_add_test(tc, bad_paging_fields_are_field_errors);
	tcase_add_test(tc, topic_stat_pages_its_subscribers);
	tcase_add_test(tc, a_queued_grant_keeps_its_descriptors);
	tc = tcase(s, "lifecycle");
	tcase_add_test(tc,
		       a_dead_subscriber_frees_its_slot_and_the_writer_goes_on);
	tcase_add_test(tc,
		       implicit_topics_go_with_their_last_user_explicit_stay);
	tcase_add_test(tc, deleting_a_topic_in_use_keeps_its_users_working);
	tcase_add_test(tc,
		       a_persistent_topic_keeps_its_messages_across_restarts);
	tc = tcase(s, "limits");
	tcase_add_test(tc, limits_give_their_errors);
	tc = tcase(s, "process");
	tcase_add_test(tc, bad_config_files_are_refused_naming_the_field);
	tcase_add_test(
	    tc, sighup_reloads_a_good_file_and_keeps_the_old_on_a_bad_one);
	tcase_add_test(tc, a_second_broker_on_the_same_socket_is_refused);
	tcase_add_test(tc, a_stale_socket_file_is_replaced);
	tcase_add_test(tc, sigterm_exits_zero_and_removes_the_socket);
	return s;
}
