/*
 * spin_pair.c - the program bench/syscalls.sh runs under strace: through
 * the public API, on a topic made by a shmbusd of its own with the
 * broker's default settings, a publisher process sends N messages of 64
 * bytes and a subscriber process spins on receive with timeout 0 until it
 * has them all, checking each. Nothing else happens in the timed part, so
 * every system call strace counts beyond set-up (the difference between
 * two values of N) belongs to the data path.
 *
 * usage: spin-pair N [copy|zerocopy|batch]
 *   copy      shmbus_publish + shmbus_receive (the default)
 *   zerocopy  shmbus_claim/shmbus_commit + shmbus_peek/shmbus_release
 *   batch     shmbus_publish_batch of 16 + shmbus_receive
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/broker.h"
#include "shmbus/shmbus.h"

#define TOPIC "bench/spin-pair"
#define MSG   64
#define BATCH 16

enum mode { COPY, ZEROCOPY, BATCHED };

/* Message i: its number, then bytes that follow from it. */
static void fill(unsigned char *m, long i)
{
	memcpy(m, &i, sizeof(i));
	for (size_t k = sizeof(i); k < MSG; k++) {
		m[k] = (unsigned char)(i + (long)k);
	}
}

static int intact(const unsigned char *m, size_t len, long i)
{
	unsigned char want[MSG];

	fill(want, i);
	return len == MSG && memcmp(m, want, MSG) == 0;
}

/* One message into `sub`, spinning: 1 when it was message i, 0 when
 * there was none yet, -1 on an error or a wrong message. */
static int take(shmbus_sub *sub, enum mode mode, long i)
{
	unsigned char buf[MSG];
	const void *data;
	size_t len;
	ssize_t r;
	int ok;

	if (mode != ZEROCOPY) {
		r = shmbus_receive(sub, buf, sizeof(buf), 0);
		if (r == -EAGAIN) {
			return 0;
		}
		return r >= 0 && intact(buf, (size_t)r, i) ? 1 : -1;
	}
	r = shmbus_peek(sub, &data, &len, 0);
	if (r == -EAGAIN) {
		return 0;
	}
	ok = r == 0 && intact(data, len, i);
	return shmbus_release(sub) == 0 && ok ? 1 : -1;
}

static int subscriber(shmbus_sub *sub, enum mode mode, long n)
{
	for (long i = 0; i < n;) {
		int r = take(sub, mode, i);

		if (r < 0) {
			return 1;
		}
		i += r;
	}
	return 0;
}

static int publish(shmbus_pub *pub, enum mode mode, long i, long n)
{
	unsigned char m[BATCH][MSG];
	struct iovec v[BATCH];
	void *buf;
	long k;

	if (mode == COPY) {
		fill(m[0], i);
		return shmbus_publish(pub, m[0], MSG, -1) == 0 ? 1 : -1;
	}
	if (mode == ZEROCOPY) {
		if (shmbus_claim(pub, MSG, &buf, -1) < 0) {
			return -1;
		}
		fill(buf, i);
		return shmbus_commit(pub) == 0 ? 1 : -1;
	}
	for (k = 0; k < BATCH && i + k < n; k++) {
		fill(m[k], i + k);
		v[k] = (struct iovec){m[k], MSG};
	}
	return shmbus_publish_batch(pub, v, (size_t)k, -1) == k ? (int)k : -1;
}

static int publisher(shmbus_pub *pub, enum mode mode, long n)
{
	for (long i = 0; i < n;) {
		int r = publish(pub, mode, i, n);

		if (r < 0) {
			return 1;
		}
		i += r;
	}
	return 0;
}

static int parse_mode(const char *s, enum mode *mode)
{
	static const char *const names[] = {"copy", "zerocopy", "batch"};

	for (int m = COPY; m <= BATCHED; m++) {
		if (s == NULL || strcmp(s, names[m]) == 0) {
			*mode = s == NULL ? COPY : (enum mode)m;
			return 0;
		}
	}
	return -1;
}

/* In the child: connects, subscribes, says so on `ready`, then reads. */
static int subscriber_main(const char *socket, enum mode mode, long n,
			   int ready)
{
	shmbus *bus;
	shmbus_sub *sub;
	int rc;

	if (shmbus_connect(socket, "spin-pair-sub", &bus) < 0 ||
	    shmbus_sub_open(bus, TOPIC, SHMBUS_START_LATEST, &sub) < 0 ||
	    write(ready, "r", 1) != 1) {
		return 1;
	}
	close(ready);
	rc = subscriber(sub, mode, n);
	shmbus_sub_close(sub);
	shmbus_close(bus);
	return rc;
}

/* Both ends, each in its own process with its own connection; the
 * publisher starts once the subscriber is in. */
static int run(const char *socket, enum mode mode, long n)
{
	shmbus *bus;
	shmbus_pub *pub;
	int fds[2], st, rc;
	char c;
	pid_t pid;

	if (shmbus_connect(socket, "spin-pair", &bus) < 0 ||
	    shmbus_topic_create(bus, TOPIC, NULL) < 0 || pipe(fds) < 0) {
		return 1;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		_exit(subscriber_main(socket, mode, n, fds[1]));
	}
	close(fds[1]);
	if (pid < 0 || read(fds[0], &c, 1) != 1 ||
	    shmbus_pub_open(bus, TOPIC, &pub) < 0) {
		return 1;
	}
	close(fds[0]);
	rc = publisher(pub, mode, n);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0) {
		rc = 1;
	}
	shmbus_pub_close(pub);
	shmbus_close(bus);
	return rc;
}

int main(int argc, char **argv)
{
	struct bench_broker b;
	long n = argc >= 2 ? atol(argv[1]) : 0;
	enum mode mode;
	int rc;

	if (n <= 0 || argc > 3 ||
	    parse_mode(argc == 3 ? argv[2] : NULL, &mode) < 0) {
		fprintf(stderr,
			"usage: spin-pair N [copy|zerocopy|batch] (N > 0)\n");
		return 2;
	}
	if (bench_broker_start(&b, NULL) < 0) {
		return 1;
	}
	rc = run(b.socket, mode, n);
	bench_broker_stop(&b);
	if (rc != 0) {
		fprintf(stderr, "spin-pair: a message went wrong\n");
	}
	return rc;
}
