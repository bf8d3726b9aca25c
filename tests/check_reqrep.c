/*
 * check_reqrep.c - request and reply (issue 19) against a real broker:
 * servers and requesters in separate processes (fork), killed for real
 * (SIGKILL), and hostile parties that speak the protocol raw and write
 * their own segments by hand. Every test asserts codes and contents, never
 * times: a wait that should end early is given a long timeout, so that
 * its ending by timeout shows as the wrong code.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "include/shmbus/shmbus.h"
#include "ring/chan.h"
#include "tests/suites.h"
#include "tests/support/broker_harness.h"
#include "tests/support/bus.h"
#include "tests/support/rawclient.h"
#include "tests/support/testutil.h"

#define BOUND_MS SBT_BUS_BOUND_MS
#define SERVERS	 4
#define CLIENTS	 4
#define REQUESTS 10000
#define SVC	 "calc/echo"

/* What the processes of one test tell each other (shared memory). */
struct shared {
	_Atomic uint64_t ready;		    /* servers serving */
	_Atomic uint32_t stop;		    /* servers: finish */
	_Atomic uint32_t go;		    /* a step may proceed */
	_Atomic uint64_t handled;	    /* requests received, all servers */
	_Atomic uint64_t dropped;	    /* shmbus_serve_dropped(), summed */
	_Atomic uint64_t answered[CLIENTS]; /* correct replies per client */
	_Atomic uint64_t wrong;		    /* replies that did not match */
	_Atomic int32_t result;		    /* a child's outcome */
};

static struct sbt_broker broker;
static struct shared *sh;

static void setup(void)
{
	sbt_broker_up(&broker, NULL);
	sh = sbt_shared_alloc(sizeof(*sh));
	ck_assert_ptr_nonnull(sh);
}

/* The broker must end cleanly: under ASan a leak makes its exit status
 * nonzero. */
static void teardown(void)
{
	munmap(sh, sizeof(*sh));
	ck_assert_int_eq(sbt_broker_stop(&broker), 0);
}

/* A request: the client's index, its sequence number, and a pattern of a
 * length that varies with them. The reply is the request with the
 * server's index appended, so the client checks both. */
static size_t make_request(unsigned char *buf, uint32_t client, uint32_t seq)
{
	size_t len = 8 + (seq * 7 + client * 13) % 200;

	memcpy(buf, &client, 4);
	memcpy(buf + 4, &seq, 4);
	sbt_fill_pattern(buf + 8, len - 8, client * 100003u + seq);
	return len;
}

/*
 * A server process: serves SVC until sh->stop, answering each request
 * with the request and its index (`hold`: never answering). `gated`: it
 * starts only once sh->go is set. Reports what it handled and dropped.
 * Exits 0, or a step.
 *
 * Children are forked before the test's own process opens a connection
 * (whose thread a child would be forked away from): a child that exits
 * through exit() runs LeakSanitizer, which can hang in a child of a
 * process that had other threads.
 */
static int serve_loop(uint32_t index, int hold, int gated)
{
	unsigned char buf[512];
	struct shmbus_reqref ref;
	shmbus_server *srv;
	shmbus *bus;
	ssize_t n;

	if (gated && !sbt_wait_flag(&sh->go, BOUND_MS)) {
		return 4;
	}
	if (shmbus_connect(broker.socket, "server", &bus) != 0 ||
	    shmbus_serve_open(bus, SVC, &srv) != 0) {
		return 1;
	}
	atomic_fetch_add(&sh->ready, 1);
	while (!atomic_load(&sh->stop)) {
		n = shmbus_serve_receive(srv, buf, sizeof(buf) - 4, &ref, 50);
		if (n == -ETIMEDOUT) {
			continue;
		}
		if (n < 0) {
			return 2;
		}
		atomic_fetch_add(&sh->handled, 1);
		if (hold) {
			continue; /* never answers: holds every request */
		}
		memcpy(buf + n, &index, 4);
		if (shmbus_reply(srv, &ref, buf, (size_t)n + 4) != 0) {
			return 3;
		}
	}
	atomic_fetch_add(&sh->dropped, shmbus_serve_dropped(srv));
	shmbus_serve_close(srv);
	shmbus_close(bus);
	return 0;
}

static pid_t fork_server_gated(uint32_t index, int hold, int gated)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		exit(serve_loop(index, hold, gated));
	}
	return pid;
}

static pid_t fork_server(uint32_t index, int hold)
{
	return fork_server_gated(index, hold, 0);
}

static void wait_ready(uint64_t n)
{
	ck_assert_int_eq(sbt_wait_u64(&sh->ready, n, BOUND_MS), 1);
}

/* One client process: REQUESTS calls, each reply checked. */
static int client_loop(uint32_t client)
{
	unsigned char req[256], rep[512];
	shmbus_requester *rq;
	shmbus *bus;

	if (shmbus_connect(broker.socket, "client", &bus) != 0 ||
	    shmbus_requester_open(bus, SVC, &rq) != 0) {
		return 1;
	}
	for (uint32_t seq = 0; seq < REQUESTS; seq++) {
		size_t len = make_request(req, client, seq);
		ssize_t n =
		    shmbus_call(rq, req, len, rep, sizeof(rep), BOUND_MS);
		uint32_t server;

		if (n != (ssize_t)len + 4 || memcmp(rep, req, len) != 0) {
			atomic_fetch_add(&sh->wrong, 1);
			continue;
		}
		memcpy(&server, rep + len, 4);
		if (server < SERVERS) {
			atomic_fetch_add(&sh->answered[client], 1);
		}
	}
	shmbus_requester_close(rq);
	shmbus_close(bus);
	return 0;
}

START_TEST(exactly_once_four_servers_four_clients)
{
	pid_t servers[SERVERS], clients[CLIENTS];
	uint64_t total = 0;

	for (uint32_t i = 0; i < SERVERS; i++) {
		servers[i] = fork_server(i, 0);
	}
	wait_ready(SERVERS);
	for (uint32_t c = 0; c < CLIENTS; c++) {
		clients[c] = fork();
		ck_assert_int_ge(clients[c], 0);
		if (clients[c] == 0) {
			exit(client_loop(c));
		}
	}
	for (uint32_t c = 0; c < CLIENTS; c++) {
		ck_assert_int_eq(sbt_wait(clients[c]), 0);
	}
	atomic_store(&sh->stop, 1);
	for (uint32_t i = 0; i < SERVERS; i++) {
		ck_assert_int_eq(sbt_wait(servers[i]), 0);
	}
	ck_assert_uint_eq(atomic_load(&sh->wrong), 0);
	for (uint32_t c = 0; c < CLIENTS; c++) {
		ck_assert_uint_eq(atomic_load(&sh->answered[c]), REQUESTS);
		total += atomic_load(&sh->answered[c]);
	}
	/* Every request reached exactly one server once. */
	ck_assert_uint_eq(atomic_load(&sh->handled), total);
	ck_assert_uint_eq(atomic_load(&sh->dropped), 0);
}
END_TEST

/* The server that answered a reply of make_request(): its index. */
static uint32_t answered_by(const unsigned char *rep, size_t req_len)
{
	uint32_t server;

	memcpy(&server, rep + req_len, 4);
	return server;
}

START_TEST(server_joining_later_gets_a_share)
{
	unsigned char req[256], rep[512];
	uint32_t by[2] = {0, 0};
	pid_t first = fork_server(0, 0), second = fork_server_gated(1, 0, 1);
	shmbus_requester *rq;
	shmbus *bus;

	wait_ready(1);
	bus = sbt_bus_up(&broker, "asker");
	ck_assert_int_eq(shmbus_requester_open(bus, SVC, &rq), 0);
	for (uint32_t i = 0; i < 10; i++) {
		size_t len = make_request(req, 0, i);

		ck_assert_int_eq(
		    shmbus_call(rq, req, len, rep, sizeof(rep), BOUND_MS),
		    (ssize_t)len + 4);
		ck_assert_uint_eq(answered_by(rep, len), 0);
	}
	/* The requester has its channel; a second server joins, and the
	 * requester finds it at its next request (the service's page). */
	atomic_store(&sh->go, 1);
	wait_ready(2);
	for (uint32_t i = 0; i < 20; i++) {
		size_t len = make_request(req, 0, 10 + i);

		ck_assert_int_eq(
		    shmbus_call(rq, req, len, rep, sizeof(rep), BOUND_MS),
		    (ssize_t)len + 4);
		ck_assert_mem_eq(rep, req, len);
		ck_assert_uint_le(answered_by(rep, len), 1);
		by[answered_by(rep, len)]++;
	}
	/* Both idle: they take turns. */
	ck_assert_uint_eq(by[0], 10);
	ck_assert_uint_eq(by[1], 10);
	atomic_store(&sh->stop, 1);
	ck_assert_int_eq(sbt_wait(first), 0);
	ck_assert_int_eq(sbt_wait(second), 0);
	shmbus_requester_close(rq);
	shmbus_close(bus);
}
END_TEST

/* With room for two channels only (each is 2 x 256 KiB of ring), the
 * third server's channel is refused (ENOSPC), and requests go on through
 * the two the requester has. */
START_TEST(no_room_for_a_channel_spares_the_others)
{
	static const char config[] =
	    "{\"limits\": {\"max_ring_bytes\": "
	    "\"1MiB\", \"max_topic_bytes\": \"1MiB\"}}";
	unsigned char req[256], rep[512];
	uint32_t by[3] = {0, 0, 0};
	shmbus_requester *rq;
	pid_t servers[3];
	int used = 0;
	shmbus *bus;

	ck_assert_int_eq(sbt_broker_stop(&broker), 0);
	sbt_broker_up(&broker, config);
	for (uint32_t i = 0; i < 3; i++) {
		servers[i] = fork_server(i, 0);
	}
	wait_ready(3);
	bus = sbt_bus_up(&broker, "asker");
	ck_assert_int_eq(shmbus_requester_open(bus, SVC, &rq), 0);
	for (uint32_t i = 0; i < 12; i++) {
		size_t len = make_request(req, 0, i);

		ck_assert_int_eq(
		    shmbus_call(rq, req, len, rep, sizeof(rep), BOUND_MS),
		    (ssize_t)len + 4);
		ck_assert_mem_eq(rep, req, len);
		ck_assert_uint_le(answered_by(rep, len), 2);
		by[answered_by(rep, len)]++;
	}
	for (int i = 0; i < 3; i++) {
		used += by[i] > 0;
	}
	ck_assert_int_eq(used, 2);
	atomic_store(&sh->stop, 1);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(sbt_wait(servers[i]), 0);
	}
	shmbus_requester_close(rq);
	shmbus_close(bus);
}
END_TEST

/* A server that never reads: its requests pile up in the channel. */
static int deaf_server(void)
{
	shmbus_server *srv;
	shmbus *bus;

	if (shmbus_connect(broker.socket, "deaf", &bus) != 0 ||
	    shmbus_serve_open(bus, SVC, &srv) != 0) {
		return 1;
	}
	atomic_fetch_add(&sh->ready, 1);
	(void)sbt_wait_flag(&sh->stop, BOUND_MS);
	shmbus_serve_close(srv);
	shmbus_close(bus);
	return 0;
}

START_TEST(full_channel_is_eagain_not_a_wait)
{
	pid_t server = fork();
	shmbus_requester *rq;
	unsigned char *big;
	uint64_t ticket;
	shmbus *bus;
	size_t max;
	int r = 0, sent = 0;

	ck_assert_int_ge(server, 0);
	if (server == 0) {
		exit(deaf_server());
	}
	wait_ready(1);
	bus = sbt_bus_up(&broker, "asker");
	ck_assert_int_eq(shmbus_requester_open(bus, SVC, &rq), 0);
	max = shmbus_requester_max_request(rq);
	big = calloc(1, max);
	ck_assert_ptr_nonnull(big);
	/* The ring holds a few of the largest; then sending fails at once. */
	while (sent < 1000 &&
	       (r = shmbus_request_send(rq, big, max, &ticket)) == 0) {
		sent++;
	}
	ck_assert_int_eq(r, -EAGAIN);
	ck_assert_int_gt(sent, 0);
	ck_assert_int_lt(sent, 1000);
	atomic_store(&sh->stop, 1);
	ck_assert_int_eq(sbt_wait(server), 0);
	free(big);
	shmbus_requester_close(rq);
	shmbus_close(bus);
}
END_TEST

/* A synchronous call from a child, whose code it reports. */
static pid_t fork_caller(int timeout_ms)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		unsigned char rep[64];
		shmbus_requester *rq;
		shmbus *bus;

		if (shmbus_connect(broker.socket, "caller", &bus) != 0 ||
		    shmbus_requester_open(bus, SVC, &rq) != 0) {
			_exit(1);
		}
		atomic_store(&sh->result,
			     (int32_t)shmbus_call(rq, "sync", 4, rep,
						  sizeof(rep), timeout_ms));
		shmbus_requester_close(rq);
		shmbus_close(bus);
		exit(0);
	}
	return pid;
}

START_TEST(killed_server_fails_its_requests_not_by_timeout)
{
	pid_t server = fork_server(0, 1), caller;
	uint64_t tickets[3];
	unsigned char rep[64];
	shmbus_requester *rq;
	shmbus *bus;

	wait_ready(1);
	atomic_store(&sh->result, 1);
	caller = fork_caller(60000);
	bus = sbt_bus_up(&broker, "asker");
	ck_assert_int_eq(shmbus_requester_open(bus, SVC, &rq), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(shmbus_request_send(rq, "x", 1, &tickets[i]),
				 0);
	}
	/* The server holds all four requests, then dies. */
	ck_assert_int_eq(sbt_wait_u64(&sh->handled, 4, BOUND_MS), 1);
	ck_assert_int_eq(kill(server, SIGKILL), 0);
	ck_assert_int_eq(sbt_wait(server), -SIGKILL);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(shmbus_request_take(rq, &tickets[i], rep,
						     sizeof(rep), 60000),
				 -ECONNABORTED);
	}
	ck_assert_int_eq(sbt_wait(caller), 0);
	ck_assert_int_eq(atomic_load(&sh->result), -ECONNABORTED);
	/* With no server left: no responders, at once. */
	ck_assert_int_eq(shmbus_call(rq, "y", 1, rep, sizeof(rep), 60000),
			 -EHOSTUNREACH);
	shmbus_requester_close(rq);
	shmbus_close(bus);
}
END_TEST

/* Answers the first request only after sh->go, then the rest at once. */
static int slow_first_server(void)
{
	unsigned char buf[64];
	struct shmbus_reqref ref;
	shmbus_server *srv;
	shmbus *bus;
	ssize_t n;

	if (shmbus_connect(broker.socket, "slow", &bus) != 0 ||
	    shmbus_serve_open(bus, SVC, &srv) != 0) {
		return 1;
	}
	atomic_fetch_add(&sh->ready, 1);
	for (int i = 0; i < 2; i++) {
		n = shmbus_serve_receive(srv, buf, sizeof(buf), &ref, BOUND_MS);
		if (n < 0) {
			return 2;
		}
		if (i == 0 && !sbt_wait_flag(&sh->go, BOUND_MS)) {
			return 3;
		}
		if (shmbus_reply(srv, &ref, buf, (size_t)n) != 0) {
			return 4;
		}
	}
	shmbus_serve_close(srv);
	shmbus_close(bus);
	return 0;
}

START_TEST(late_reply_is_not_taken_for_the_next)
{
	pid_t server = fork();
	unsigned char rep[64];
	shmbus_requester *rq;
	shmbus *bus;

	ck_assert_int_ge(server, 0);
	if (server == 0) {
		exit(slow_first_server());
	}
	wait_ready(1);
	bus = sbt_bus_up(&broker, "asker");
	ck_assert_int_eq(shmbus_requester_open(bus, SVC, &rq), 0);
	ck_assert_int_eq(shmbus_call(rq, "first", 5, rep, sizeof(rep), 20),
			 -ETIMEDOUT);
	atomic_store(&sh->go, 1); /* the late reply goes out now */
	ck_assert_int_eq(
	    shmbus_call(rq, "second", 6, rep, sizeof(rep), BOUND_MS), 6);
	ck_assert_mem_eq(rep, "second", 6);
	/* The late one came first on the channel, and was dropped. */
	ck_assert_uint_eq(shmbus_requester_dropped(rq), 1);
	ck_assert_int_eq(sbt_wait(server), 0);
	shmbus_requester_close(rq);
	shmbus_close(bus);
}
END_TEST

START_TEST(async_descriptor_polls_readable_with_the_reply)
{
	pid_t server = fork();
	uint64_t ticket, any = 0;
	unsigned char rep[64];
	shmbus_requester *rq;
	struct pollfd pfd;
	shmbus *bus;

	ck_assert_int_ge(server, 0);
	if (server == 0) {
		exit(slow_first_server());
	}
	wait_ready(1);
	bus = sbt_bus_up(&broker, "async");
	ck_assert_int_eq(shmbus_requester_open(bus, SVC, &rq), 0);
	ck_assert_int_eq(shmbus_request_send(rq, "ping", 4, &ticket), 0);
	ck_assert_uint_ne(ticket, 0);
	ck_assert_int_eq(shmbus_request_take(rq, &any, rep, sizeof(rep), 0),
			 -EAGAIN);
	pfd = (struct pollfd){.fd = shmbus_requester_fd(rq), .events = POLLIN};
	ck_assert_int_ge(pfd.fd, 0);
	/* The server holds the request: nothing to read yet. */
	ck_assert_int_eq(poll(&pfd, 1, 0), 0);
	atomic_store(&sh->go, 1);
	ck_assert_int_eq(poll(&pfd, 1, BOUND_MS), 1);
	ck_assert_int_eq(shmbus_request_take(rq, &any, rep, sizeof(rep), 0), 4);
	ck_assert_uint_eq(any, ticket);
	ck_assert_mem_eq(rep, "ping", 4);
	/* Nothing outstanding any more. */
	any = 0;
	ck_assert_int_eq(shmbus_request_take(rq, &any, rep, sizeof(rep), 0),
			 -ENOENT);
	ck_assert_int_eq(shmbus_call(rq, "pong", 4, rep, sizeof(rep), BOUND_MS),
			 4);
	ck_assert_int_eq(sbt_wait(server), 0);
	shmbus_requester_close(rq);
	shmbus_close(bus);
}
END_TEST

#define IN_FLIGHT 300

START_TEST(many_requests_in_flight)
{
	pid_t server = fork_server(0, 0);
	unsigned char req[256], rep[512];
	static uint64_t tickets[IN_FLIGHT];
	int answered = 0;
	shmbus_requester *rq;
	shmbus *bus;

	wait_ready(1);
	bus = sbt_bus_up(&broker, "asker");
	ck_assert_int_eq(shmbus_requester_open(bus, SVC, &rq), 0);
	for (uint32_t i = 0; i < IN_FLIGHT; i++) {
		size_t len = make_request(req, 3, i);

		ck_assert_int_eq(shmbus_request_send(rq, req, len, &tickets[i]),
				 0);
		for (uint32_t j = 0; j < i; j++) {
			ck_assert_uint_ne(tickets[j], tickets[i]);
		}
	}
	/* One taken by its ticket, one cancelled, the rest in any order. */
	{
		size_t len = make_request(req, 3, 7);

		ck_assert_int_eq(shmbus_request_take(rq, &tickets[7], rep,
						     sizeof(rep), BOUND_MS),
				 (ssize_t)len + 4);
		ck_assert_mem_eq(rep, req, len);
		ck_assert_int_eq(shmbus_request_cancel(rq, tickets[8]), 0);
		ck_assert_int_eq(shmbus_request_cancel(rq, tickets[8]),
				 -ENOENT);
		ck_assert_int_eq(
		    shmbus_request_take(rq, &tickets[8], rep, sizeof(rep), 0),
		    -ENOENT);
	}
	for (;;) {
		uint64_t any = 0;
		ssize_t n =
		    shmbus_request_take(rq, &any, rep, sizeof(rep), BOUND_MS);
		uint32_t i = 0;
		size_t len;

		if (n == -ENOENT) {
			break; /* none outstanding */
		}
		ck_assert_int_gt(n, 0);
		while (i < IN_FLIGHT && tickets[i] != any) {
			i++;
		}
		ck_assert_uint_lt(i, IN_FLIGHT);
		ck_assert(i != 7 && i != 8);
		len = make_request(req, 3, i);
		ck_assert_int_eq(n, (ssize_t)len + 4);
		ck_assert_mem_eq(rep, req, len);
		tickets[i] = 0;
		answered++;
	}
	ck_assert_int_eq(answered, IN_FLIGHT - 2);
	atomic_store(&sh->stop, 1);
	ck_assert_int_eq(sbt_wait(server), 0);
	shmbus_requester_close(rq);
	shmbus_close(bus);
}
END_TEST

START_TEST(no_responders_and_oversized_requests)
{
	pid_t server = fork_server_gated(0, 0, 1);
	shmbus *bus = sbt_bus_up(&broker, "asker");
	shmbus_requester *rq;
	unsigned char rep[64];
	unsigned char *big;
	size_t max;

	ck_assert_int_eq(shmbus_requester_open(bus, SVC, &rq), 0);
	ck_assert_int_eq(shmbus_call(rq, "x", 1, rep, sizeof(rep), BOUND_MS),
			 -EHOSTUNREACH);
	ck_assert_int_eq(
	    shmbus_request(bus, SVC, "x", 1, rep, sizeof(rep), BOUND_MS),
	    -EHOSTUNREACH);
	max = shmbus_requester_max_request(rq);
	ck_assert_uint_gt(max, 0);
	big = calloc(1, max + 1);
	ck_assert_ptr_nonnull(big);
	ck_assert_int_eq(shmbus_call(rq, big, max + 1, rep, sizeof(rep), 0),
			 -EMSGSIZE);
	atomic_store(&sh->go, 1);
	wait_ready(1);
	/* A server joined: the requester finds it, and a reply too big for
	 * the buffer is -EMSGSIZE. */
	ck_assert_int_eq(shmbus_call(rq, big, 100, rep, 10, BOUND_MS),
			 -EMSGSIZE);
	ck_assert_int_eq(shmbus_call(rq, "abc", 3, rep, sizeof(rep), BOUND_MS),
			 7);
	ck_assert_int_eq(
	    shmbus_request(bus, SVC, "abc", 3, rep, sizeof(rep), BOUND_MS), 7);
	ck_assert_int_eq(shmbus_request(bus, "bad//name", "abc", 3, rep,
					sizeof(rep), BOUND_MS),
			 -EINVAL);
	atomic_store(&sh->stop, 1);
	ck_assert_int_eq(sbt_wait(server), 0);
	ck_assert_int_eq(shmbus_call(rq, "x", 1, rep, sizeof(rep), BOUND_MS),
			 -EHOSTUNREACH);
	free(big);
	shmbus_requester_close(rq);
	shmbus_close(bus);
}
END_TEST

START_TEST(unknown_service_without_auto_create)
{
	static const char config[] =
	    "{\"auto_create\": false,"
	    " \"services\": [{\"name\": \"declared\"}]}";
	struct sbt_broker b;
	shmbus_requester *rq;
	shmbus_server *srv;
	unsigned char rep[16];
	shmbus *bus;

	sbt_broker_up(&b, config);
	bus = sbt_bus_up(&b, "asker");
	ck_assert_int_eq(shmbus_requester_open(bus, "undeclared", &rq),
			 -ENOENT);
	ck_assert_ptr_null(rq);
	ck_assert_int_eq(shmbus_serve_open(bus, "undeclared", &srv), -ENOENT);
	ck_assert_int_eq(shmbus_request(bus, "undeclared", "x", 1, rep,
					sizeof(rep), BOUND_MS),
			 -ENOENT);
	/* A declared service exists without servers: no responders. */
	ck_assert_int_eq(
	    shmbus_request(bus, "declared", "x", 1, rep, sizeof(rep), BOUND_MS),
	    -EHOSTUNREACH);
	ck_assert_int_eq(shmbus_serve_open(bus, "declared", &srv), 0);
	shmbus_serve_close(srv);
	shmbus_close(bus);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- access rules ---------------------------------------------------- */

struct rights {
	const char *socket;
	int serve, request; /* expected codes */
};

static int try_rights(const void *arg)
{
	const struct rights *k = arg;
	shmbus_requester *rq = NULL;
	shmbus_server *srv = NULL;
	shmbus *bus;

	if (shmbus_connect(k->socket, "acl", &bus) != 0) {
		return 1;
	}
	if (shmbus_serve_open(bus, "rr/locked", &srv) != k->serve) {
		return 2;
	}
	if (shmbus_requester_open(bus, "rr/locked", &rq) != k->request) {
		return 3;
	}
	if ((srv == NULL) != (k->serve != 0) ||
	    (rq == NULL) != (k->request != 0)) {
		return 4;
	}
	/* A topic of the same name is another namespace: allowed. */
	{
		shmbus_pub *pub;

		if (shmbus_pub_open(bus, "rr/locked", &pub) != 0) {
			return 5;
		}
		shmbus_pub_close(pub);
	}
	shmbus_serve_close(srv);
	shmbus_requester_close(rq);
	shmbus_close(bus);
	return 0;
}

static int as_uid(uid_t uid, const struct rights *k)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		exit(sbt_become(uid) < 0 ? 99 : try_rights(k));
	}
	return sbt_wait(pid);
}

START_TEST(access_rules_serve_and_request)
{
	static const char config[] =
	    "{\"socket\": {\"mode\": \"0666\"},"
	    " \"services\": [{\"name\": \"rr/locked\", \"access\": {"
	    "   \"serve\": {\"uids\": [1001]},"
	    "   \"request\": {\"uids\": [1002]}}}]}";
	struct sbt_broker b;
	struct rights k;

	if (geteuid() != 0) {
		return; /* needs other uids */
	}
	sbt_broker_up_shared(&b, config);
	k = (struct rights){b.socket, 0, -EACCES};
	ck_assert_int_eq(as_uid(1001, &k), 0);
	k = (struct rights){b.socket, -EACCES, 0};
	ck_assert_int_eq(as_uid(1002, &k), 0);
	k = (struct rights){b.socket, -EACCES, -EACCES};
	ck_assert_int_eq(as_uid(65534, &k), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- who may write which object -------------------------------------- */

/* 0 when `fd` can be mapped for writing or not, as `writable` says, and a
 * read-only one cannot be reopened for writing through /proc either;
 * nobody can resize any (seals). */
static int check_fd(int fd, size_t size, int writable)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	char path[64];
	int again;

	if ((p != MAP_FAILED) != writable) {
		return 1;
	}
	if (p != MAP_FAILED) {
		munmap(p, size);
	} else if (errno != EACCES) {
		return 2;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	again = open(path, O_RDWR);
	if (!writable && (again >= 0 || errno != EACCES)) {
		return 3;
	}
	if (again >= 0) {
		close(again);
	}
	return ftruncate(fd, 0) == 0 ? 4 : 0;
}

/* Checks the five descriptors of a channel grant: its own segment
 * writable, the other's segment and the state page not. */
static int check_grant(struct sbt_rc *c, int step)
{
	size_t seg = (size_t)sbt_rc_int(c, "capacity", 0) + SB_CHAN_HEADER_SIZE;

	if (c->nfds != 5 || check_fd(c->fds[0], seg, 1) != 0 ||
	    check_fd(c->fds[1], seg, 0) != 0 ||
	    check_fd(c->fds[2], SB_CHAN_PAGE_SIZE, 0) != 0) {
		return step;
	}
	return 0;
}

/* As another uid (root would pass every permission check): a server and
 * a requester on two raw connections, looking at what they are given. */
static int check_who_writes(const char *socket)
{
	struct sbt_rc srv, rq;
	int64_t sid, rid;
	int r = 0;

	if (sbt_rc_hello(&srv, socket, "srv") != 0 ||
	    sbt_rc_hello(&rq, socket, "rq") != 0 ||
	    sbt_rc_call(&srv, "{\"op\":\"serve_open\",\"id\":1,"
			      "\"service\":\"" SVC "\"}") != 0) {
		return 10;
	}
	sid = sbt_rc_int(&srv, "server", -1);
	if (srv.nfds != 2 || check_fd(srv.fds[0], SB_CHAN_PAGE_SIZE, 0) != 0 ||
	    sbt_rc_call(&rq, "{\"op\":\"request_open\",\"id\":1,"
			     "\"service\":\"" SVC "\"}") != 0 ||
	    rq.nfds != 1 || check_fd(rq.fds[0], SB_CHAN_PAGE_SIZE, 0) != 0) {
		return 11;
	}
	rid = sbt_rc_int(&rq, "requester", -1);
	if (sbt_rc_call(&rq,
			"{\"op\":\"request_channel\",\"id\":2,"
			"\"requester\":%lld}",
			(long long)rid) != 0 ||
	    (r = check_grant(&rq, 20)) != 0) {
		return r != 0 ? r : 12;
	}
	if (sbt_rc_call(&srv,
			"{\"op\":\"serve_channel\",\"id\":2,"
			"\"server\":%lld}",
			(long long)sid) != 0 ||
	    (r = check_grant(&srv, 30)) != 0) {
		return r != 0 ? r : 13;
	}
	sbt_rc_close(&srv);
	sbt_rc_close(&rq);
	return 0;
}

START_TEST(each_party_writes_only_its_own_segment)
{
	struct sbt_broker b;
	pid_t pid;

	if (geteuid() != 0) {
		return; /* needs another uid */
	}
	sbt_broker_up_shared(&b, "{\"socket\": {\"mode\": \"0666\"}}");
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		exit(sbt_become(1001) < 0 ? 99 : check_who_writes(b.socket));
	}
	ck_assert_int_eq(sbt_wait(pid), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* ---- hostile parties, raw ------------------------------------------- */

/* A channel mapped by hand from a request_channel or serve_channel reply
 * on a raw connection: the end a library would build, for a test to
 * misuse. */
struct raw_chan {
	struct sb_chan_end end;
	void *own, *peer;
	size_t size;
	int wake_fd; /* the other side's eventfd */
};

static int raw_map(struct sbt_rc *c, struct raw_chan *ch)
{
	uint64_t cap = (uint64_t)sbt_rc_int(c, "capacity", 0);
	uint32_t max = (uint32_t)sbt_rc_int(c, "max_message", 0);

	if (c->nfds != 5) {
		return -EPROTO;
	}
	ch->size = sb_chan_segment_size(cap, max);
	ch->own = mmap(NULL, ch->size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       c->fds[0], 0);
	ch->peer = mmap(NULL, ch->size, PROT_READ, MAP_SHARED, c->fds[1], 0);
	if (ch->own == MAP_FAILED || ch->peer == MAP_FAILED) {
		return -ENOMEM;
	}
	ch->wake_fd = dup(c->fds[3]);
	return sb_chan_end_init(&ch->end, ch->own, ch->peer, cap, max);
}

static void raw_wake(const struct raw_chan *ch)
{
	uint64_t one = 1;

	(void)!write(ch->wake_fd, &one, sizeof(one));
}

/* The hostile server's misdeeds. */
enum { FORGE_IDS, GARBAGE_TAIL, FLOOD };

/*
 * A server that speaks the protocol raw: serve_open, then waits for its
 * first channel and answers each request on it wrongly: with a forged
 * correlation id (FORGE_IDS) or by writing a misaligned tail into its
 * reply segment (GARBAGE_TAIL). Runs until sh->stop.
 */
static int hostile_server(int how)
{
	struct raw_chan ch;
	struct sbt_rc c;
	int64_t id;
	int tries = 0;

	if (sbt_rc_hello(&c, broker.socket, "hostile") != 0 ||
	    sbt_rc_call(&c, "{\"op\":\"serve_open\",\"id\":1,"
			    "\"service\":\"" SVC "\"}") != 0) {
		return 1;
	}
	id = sbt_rc_int(&c, "server", -1);
	atomic_fetch_add(&sh->ready, 1);
	do { /* until the requester's channel exists */
		sbt_sleep_ms(1);
		if (sbt_rc_call(&c,
				"{\"op\":\"serve_channel\",\"id\":2,"
				"\"server\":%lld}",
				(long long)id) != 0) {
			return 2;
		}
	} while (c.nfds == 0 && ++tries < BOUND_MS);
	if (raw_map(&c, &ch) != 0) {
		return 3;
	}
	while (!atomic_load(&sh->stop)) {
		const void *data;
		uint64_t corr;
		size_t len;
		void *buf;

		if (how == FLOOD) {
			/* Well-formed replies nobody asked for, as fast as
			 * the requester takes them. */
			if (sb_chan_claim(&ch.end, ++tries, 8, &buf) == 0) {
				memset(buf, 'f', 8);
				sb_chan_commit(&ch.end);
				raw_wake(&ch);
			}
			continue;
		}
		if (sb_chan_peek(&ch.end, &corr, &data, &len) != 0) {
			sbt_sleep_ms(1);
			continue;
		}
		sb_chan_consume(&ch.end);
		atomic_fetch_add(&sh->handled, 1);
		if (how == GARBAGE_TAIL) {
			atomic_store(&ch.end.own->tail, 8 + 3);
		} else if (sb_chan_claim(&ch.end, corr ^ 1, len, &buf) == 0) {
			memcpy(buf, data, len);
			sb_chan_commit(&ch.end);
		}
		raw_wake(&ch);
	}
	sbt_rc_close(&c);
	return 0;
}

static pid_t fork_hostile_server(int how)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		exit(hostile_server(how));
	}
	return pid;
}

/* With one honest and one hostile server, every reply the requester gets
 * is the right one: the hostile server's requests fail (-ETIMEDOUT for a
 * forger, -EBADMSG for garbage) and the honest one's are answered. */
static void one_honest_one_hostile(int how)
{
	pid_t honest = fork_server(0, 0), hostile;
	unsigned char req[256], rep[512];
	uint64_t tickets[10];
	int ok = 0, failed = 0;
	shmbus_requester *rq;
	shmbus *bus;

	wait_ready(1);
	hostile = fork_hostile_server(how);
	wait_ready(2);
	bus = sbt_bus_up(&broker, "asker");
	ck_assert_int_eq(shmbus_requester_open(bus, SVC, &rq), 0);
	for (uint32_t i = 0; i < 10; i++) {
		size_t len = make_request(req, 0, i);

		ck_assert_int_eq(shmbus_request_send(rq, req, len, &tickets[i]),
				 0);
	}
	for (uint32_t i = 0; i < 10; i++) {
		size_t len = make_request(req, 0, i);
		ssize_t n =
		    shmbus_request_take(rq, &tickets[i], rep, sizeof(rep), 300);

		if (n >= 0) {
			ck_assert_int_eq(n, (ssize_t)len + 4);
			ck_assert_mem_eq(rep, req, len);
			ok++;
		} else {
			ck_assert_int_eq(n, how == GARBAGE_TAIL ? -EBADMSG
								: -ETIMEDOUT);
			shmbus_request_cancel(rq, tickets[i]);
			failed++;
		}
	}
	/* The requests were spread over both servers. */
	ck_assert_int_gt(ok, 0);
	ck_assert_int_gt(failed, 0);
	if (how != GARBAGE_TAIL) {
		ck_assert_uint_ge(shmbus_requester_dropped(rq), 1);
	}
	/* After garbage the broken channel is gone: all to the honest one.
	 * After forgeries the forger still gets its share, and fails it. */
	for (uint32_t i = 0; how == GARBAGE_TAIL && i < 20; i++) {
		size_t len = make_request(req, 1, i);

		ck_assert_int_eq(
		    shmbus_call(rq, req, len, rep, sizeof(rep), BOUND_MS),
		    (ssize_t)len + 4);
		ck_assert_mem_eq(rep, req, len);
	}
	atomic_store(&sh->stop, 1);
	ck_assert_int_eq(sbt_wait(honest), 0);
	ck_assert_int_eq(sbt_wait(hostile), 0);
	shmbus_requester_close(rq);
	shmbus_close(bus);
}

START_TEST(hostile_server_forging_ids)
{
	one_honest_one_hostile(FORGE_IDS);
}
END_TEST

/* A flood of replies keeps nobody past a timeout. */
START_TEST(hostile_server_flooding_replies)
{
	one_honest_one_hostile(FLOOD);
}
END_TEST

START_TEST(hostile_server_garbage_in_its_reply_ring)
{
	one_honest_one_hostile(GARBAGE_TAIL);
}
END_TEST

/* A requester that writes garbage into its request segment: a record
 * whose length is beyond max_message, then a misaligned tail. */
static int hostile_requester(void)
{
	struct raw_chan ch;
	struct sbt_rc c;
	int64_t id;
	uint32_t bad[4] = {0xfffffff0u, SB_CHAN_KIND_DATA, 0, 0};

	if (sbt_rc_hello(&c, broker.socket, "hostile") != 0 ||
	    sbt_rc_call(&c, "{\"op\":\"request_open\",\"id\":1,"
			    "\"service\":\"" SVC "\"}") != 0) {
		return 1;
	}
	id = sbt_rc_int(&c, "requester", -1);
	if (sbt_rc_call(&c,
			"{\"op\":\"request_channel\",\"id\":2,"
			"\"requester\":%lld}",
			(long long)id) != 0 ||
	    raw_map(&c, &ch) != 0) {
		return 2;
	}
	memcpy(ch.end.out, bad, sizeof(bad));
	atomic_store(&ch.end.own->tail, 64);
	raw_wake(&ch);
	atomic_store(&sh->go, 1);
	(void)sbt_wait_flag(&sh->stop, BOUND_MS);
	sbt_rc_close(&c);
	return 0;
}

START_TEST(hostile_requester_garbage_in_its_request_ring)
{
	pid_t server = fork_server(0, 0), hostile;
	unsigned char req[256], rep[512];
	shmbus_requester *rq;
	shmbus *bus;

	wait_ready(1);
	hostile = fork();
	ck_assert_int_ge(hostile, 0);
	if (hostile == 0) {
		exit(hostile_requester());
	}
	ck_assert_int_eq(sbt_wait_flag(&sh->go, BOUND_MS), 1);
	bus = sbt_bus_up(&broker, "asker");
	ck_assert_int_eq(shmbus_requester_open(bus, SVC, &rq), 0);
	for (uint32_t i = 0; i < 100; i++) {
		size_t len = make_request(req, 2, i);

		ck_assert_int_eq(
		    shmbus_call(rq, req, len, rep, sizeof(rep), BOUND_MS),
		    (ssize_t)len + 4);
		ck_assert_mem_eq(rep, req, len);
	}
	atomic_store(&sh->stop, 1);
	ck_assert_int_eq(sbt_wait(server), 0);
	ck_assert_int_eq(sbt_wait(hostile), 0);
	/* The garbage was seen and the channel dropped, not served. */
	ck_assert_uint_eq(atomic_load(&sh->dropped), 1);
	ck_assert_uint_eq(atomic_load(&sh->handled), 100);
	shmbus_requester_close(rq);
	shmbus_close(bus);
}
END_TEST

/* A requester child: once sh->go is set, one call of "abcdef"; exits 0
 * when the reply is "XYZ". */
static int ask_for_xyz(void)
{
	unsigned char rep[16];
	shmbus *bus;
	ssize_t n;

	if (!sbt_wait_flag(&sh->go, BOUND_MS) ||
	    shmbus_connect(broker.socket, "asker", &bus) != 0) {
		return 1;
	}
	n = shmbus_request(bus, SVC, "abcdef", 6, rep, sizeof(rep), BOUND_MS);
	shmbus_close(bus);
	return n == 3 && memcmp(rep, "XYZ", 3) == 0 ? 0 : 2;
}

START_TEST(zero_copy_reply_small_buffers_and_the_server_fd)
{
	pid_t asker = fork();
	struct shmbus_reqref ref;
	unsigned char buf[64];
	shmbus_server *srv;
	void *out, *again;
	struct pollfd pfd;
	shmbus *bus;
	ssize_t n;

	ck_assert_int_ge(asker, 0);
	if (asker == 0) {
		exit(ask_for_xyz());
	}
	bus = sbt_bus_up(&broker, "server");
	ck_assert_int_eq(shmbus_serve_open(bus, SVC, &srv), 0);
	ck_assert_uint_gt(shmbus_serve_max_reply(srv), 0);
	/* The server's descriptor: quiet until a request may be there. */
	ck_assert_int_eq(shmbus_serve_receive(srv, buf, sizeof(buf), &ref, 0),
			 -EAGAIN);
	pfd = (struct pollfd){.fd = shmbus_serve_fd(srv), .events = POLLIN};
	ck_assert_int_ge(pfd.fd, 0);
	ck_assert_int_eq(poll(&pfd, 1, 0), 0);
	atomic_store(&sh->go, 1);
	/* Too small a buffer leaves the request where it is. */
	do {
		ck_assert_int_eq(poll(&pfd, 1, BOUND_MS), 1);
		n = shmbus_serve_receive(srv, buf, 2, &ref, 0);
	} while (n == -EAGAIN);
	ck_assert_int_eq(n, -EMSGSIZE);
	ck_assert_int_eq(shmbus_serve_receive(srv, buf, sizeof(buf), &ref, 0),
			 6);
	ck_assert_mem_eq(buf, "abcdef", 6);
	ck_assert_int_eq(shmbus_reply_claim(srv, &ref, 3, &out), 0);
	ck_assert_int_eq(shmbus_reply_claim(srv, &ref, 3, &again), -EBUSY);
	ck_assert_int_eq(shmbus_reply(srv, &ref, "no", 2), -EBUSY);
	memcpy(out, "XYZ", 3);
	ck_assert_int_eq(shmbus_reply_commit(srv), 0);
	ck_assert_int_eq(shmbus_reply_commit(srv), -EINVAL);
	ck_assert_int_eq(shmbus_reply_claim(
			     srv, &ref, shmbus_serve_max_reply(srv) + 1, &out),
			 -EMSGSIZE);
	ck_assert_int_eq(sbt_wait(asker), 0);
	shmbus_serve_close(srv);
	shmbus_close(bus);
}
END_TEST

/* ---- a requester that dies ------------------------------------------ */

START_TEST(dead_requester_never_blocks_the_server)
{
	shmbus *bus = sbt_bus_up(&broker, "server");
	struct shmbus_reqref ref;
	unsigned char buf[64];
	shmbus_server *srv;
	pid_t asker;
	int r = 0;

	ck_assert_int_eq(shmbus_serve_open(bus, SVC, &srv), 0);
	asker = fork();
	ck_assert_int_ge(asker, 0);
	if (asker == 0) {
		shmbus_requester *rq;
		shmbus *b;
		uint64_t t;

		if (shmbus_connect(broker.socket, "doomed", &b) != 0 ||
		    shmbus_requester_open(b, SVC, &rq) != 0 ||
		    shmbus_request_send(rq, "hi", 2, &t) != 0) {
			_exit(1);
		}
		pause();
		_exit(2);
	}
	ck_assert_int_eq(
	    shmbus_serve_receive(srv, buf, sizeof(buf), &ref, BOUND_MS), 2);
	ck_assert_int_eq(kill(asker, SIGKILL), 0);
	ck_assert_int_eq(sbt_wait(asker), -SIGKILL);
	/* Replies never wait: they go into the ring until it is full
	 * (-EAGAIN) and fail with -EPIPE once the broker has closed the
	 * channel, which it does as soon as it sees the connection go. */
	for (int i = 0; i < BOUND_MS && r != -EPIPE; i++) {
		r = shmbus_reply(srv, &ref, buf, 2);
		ck_assert(r == 0 || r == -EAGAIN || r == -EPIPE);
		if (r == -EAGAIN) {
			sbt_sleep_ms(1);
		}
	}
	ck_assert_int_eq(r, -EPIPE);
	/* And the server goes on serving others. */
	ck_assert_int_eq(shmbus_serve_receive(srv, buf, sizeof(buf), &ref, 0),
			 -EAGAIN);
	shmbus_serve_close(srv);
	shmbus_close(bus);
}
END_TEST

/* ---- the channel's rings alone (ring/chan.c), no broker -------------- */

#define CHAN_CAP 4096u
#define CHAN_MAX 1024u

/* Two segments and the two ends over them: `a` writes what `b` reads
 * and the other way round. */
struct pair {
	void *seg_a, *seg_b;
	struct sb_chan_end a, b;
};

static void pair_init(struct pair *p)
{
	size_t size = sb_chan_segment_size(CHAN_CAP, CHAN_MAX);

	ck_assert_uint_eq(size, 4096 + CHAN_CAP);
	p->seg_a = aligned_alloc(4096, size);
	p->seg_b = aligned_alloc(4096, size);
	ck_assert(p->seg_a != NULL && p->seg_b != NULL);
	memset(p->seg_a, 0, size);
	memset(p->seg_b, 0, size);
	ck_assert_int_eq(
	    sb_chan_end_init(&p->a, p->seg_a, p->seg_b, CHAN_CAP, CHAN_MAX), 0);
	ck_assert_int_eq(
	    sb_chan_end_init(&p->b, p->seg_b, p->seg_a, CHAN_CAP, CHAN_MAX), 0);
}

static void pair_fini(struct pair *p)
{
	free(p->seg_a);
	free(p->seg_b);
}

static int put(struct sb_chan_end *e, uint64_t id, uint32_t seed, size_t len)
{
	void *buf;
	int r = sb_chan_claim(e, id, len, &buf);

	if (r == 0) {
		sbt_fill_pattern(buf, len, seed);
		sb_chan_commit(e);
	}
	return r;
}

START_TEST(chan_records_wrap_and_fill)
{
	struct pair p;
	const void *data;
	uint64_t id;
	size_t len;
	int n = 0;

	pair_init(&p);
	ck_assert_int_eq(sb_chan_peek(&p.b, &id, &data, &len), -EAGAIN);
	ck_assert_int_eq(put(&p.a, 1, 1, CHAN_MAX + 1), -EMSGSIZE);
	/* Many laps of records of varying lengths, PADs included. */
	for (uint32_t i = 0; i < 2000; i++) {
		size_t want = (i * 37) % CHAN_MAX;

		ck_assert_int_eq(put(&p.a, 1000 + i, i, want), 0);
		ck_assert_int_eq(sb_chan_peek(&p.b, &id, &data, &len), 0);
		ck_assert_uint_eq(id, 1000 + i);
		ck_assert_uint_eq(len, want);
		ck_assert(sbt_check_pattern(data, len, i));
		sb_chan_consume(&p.b);
	}
	/* Full: the writer never waits, and room comes back as read. */
	while (put(&p.a, 7, 7, 100) == 0) {
		n++;
	}
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(put(&p.a, 7, 7, 100), -EAGAIN);
	ck_assert_int_eq(sb_chan_peek(&p.b, &id, &data, &len), 0);
	sb_chan_consume(&p.b);
	ck_assert_int_eq(put(&p.a, 7, 7, 100), 0);
	/* The sleeping mark tells the writer to wake the reader. */
	ck_assert(!sb_chan_commit(&p.a)); /* no claim: nothing */
	sb_chan_set_sleeping(&p.b, true);
	ck_assert_int_eq(sb_chan_claim(&p.b, 1, 0, &(void *){NULL}), 0);
	ck_assert(!sb_chan_commit(&p.b)); /* a is awake */
	while (sb_chan_peek(&p.b, &id, &data, &len) == 0) {
		sb_chan_consume(&p.b);
	}
	ck_assert_int_eq(sb_chan_claim(&p.a, 1, 0, &(void *){NULL}), 0);
	ck_assert(sb_chan_commit(&p.a));
	pair_fini(&p);
}
END_TEST

/* What a hostile writer can put in its segment, each on a fresh pair
 * with one good record written first: the reader gets -EBADMSG, never
 * reads outside the area, and stays broken. */
START_TEST(chan_hostile_writer)
{
	for (int k = 0; k < 7; k++) {
		struct sb_chan_hdr *ha;
		uint32_t *rec;
		struct pair p;
		const void *data;
		uint64_t id;
		size_t len;

		pair_init(&p);
		ha = p.seg_a;
		rec = (uint32_t *)((char *)p.seg_a + SB_CHAN_HEADER_SIZE);
		ck_assert_int_eq(put(&p.a, 5, 5, 40), 0); /* 64 bytes */
		switch (k) {
		case 0: /* misaligned tail */
			atomic_store(&ha->tail, 63);
			break;
		case 1: /* more than a ring ahead */
			atomic_store(&ha->tail, CHAN_CAP + 16);
			break;
		case 2: /* an unknown kind */
			rec[1] = 7;
			break;
		case 3: /* over max_message */
			rec[0] = CHAN_MAX + 1;
			break;
		case 4: /* a record beyond the tail */
			rec[0] = 100;
			break;
		case 5: /* a PAD that does not reach the end */
			rec[1] = SB_CHAN_KIND_PAD;
			break;
		case 6: /* a huge length */
			rec[0] = 0xfffffff0u;
			break;
		}
		ck_assert_int_eq(sb_chan_peek(&p.b, &id, &data, &len),
				 -EBADMSG);
		ck_assert_int_eq(sb_chan_peek(&p.b, &id, &data, &len),
				 -EBADMSG);
		ck_assert(!sb_chan_pending(&p.b));
		pair_fini(&p);
	}
}
END_TEST

/* What a hostile reader can put in its read position: the writer takes
 * the channel as broken instead of writing over unread records. */
START_TEST(chan_hostile_reader)
{
	static const uint64_t heads[] = {8, 4096, 48};

	for (int k = 0; k < 3; k++) {
		struct sb_chan_hdr *hb;
		struct pair p;
		void *buf;

		pair_init(&p);
		hb = p.seg_b;
		ck_assert_int_eq(put(&p.a, 5, 5, 16), 0); /* tail 32 */
		atomic_store(&hb->head, heads[k]);
		ck_assert_int_eq(sb_chan_claim(&p.a, 6, 16, &buf), -EBADMSG);
		ck_assert_int_eq(sb_chan_claim(&p.a, 6, 16, &buf), -EBADMSG);
		pair_fini(&p);
	}
}
END_TEST

Suite *reqrep_suite(void)
{
	Suite *s = suite_create("reqrep");
	TCase *tc = tcase_create("reqrep");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, exactly_once_four_servers_four_clients);
	tcase_add_test(tc, server_joining_later_gets_a_share);
	tcase_add_test(tc, full_channel_is_eagain_not_a_wait);
	tcase_add_test(tc, no_room_for_a_channel_spares_the_others);
	tcase_add_test(tc, killed_server_fails_its_requests_not_by_timeout);
	tcase_add_test(tc, late_reply_is_not_taken_for_the_next);
	tcase_add_test(tc, async_descriptor_polls_readable_with_the_reply);
	tcase_add_test(tc, many_requests_in_flight);
	tcase_add_test(tc, no_responders_and_oversized_requests);
	tcase_add_test(tc, unknown_service_without_auto_create);
	tcase_add_test(tc, access_rules_serve_and_request);
	tcase_add_test(tc, each_party_writes_only_its_own_segment);
	tcase_add_test(tc, hostile_server_forging_ids);
	tcase_add_test(tc, hostile_server_flooding_replies);
	tcase_add_test(tc, hostile_server_garbage_in_its_reply_ring);
	tcase_add_test(tc, hostile_requester_garbage_in_its_request_ring);
	tcase_add_test(tc, dead_requester_never_blocks_the_server);
	tcase_add_test(tc, zero_copy_reply_small_buffers_and_the_server_fd);
	suite_add_tcase(s, tc);
	tc = tcase_create("chan");
	tcase_add_test(tc, chan_records_wrap_and_fill);
	tcase_add_test(tc, chan_hostile_writer);
	tcase_add_test(tc, chan_hostile_reader);
	suite_add_tcase(s, tc);
	return s;
}
