/*
 * fanout_cost.c - the program bench/instructions.sh runs under callgrind:
 * through the public API, on a topic a shmbusd of its own made (the
 * broker's default slot count, each subscriber's slot a segment of its
 * own), one publisher sends N messages and K subscribers, all in this one
 * process and taken in turn, receive every one. The instructions spent
 * inside reader_receive() per message and subscriber show whether a
 * subscriber costs the same alone as one of eight, which wall time on two
 * cores cannot show; writer_publish() shows what each added subscriber
 * costs the publisher. (The broker runs outside callgrind: valgrind does
 * not follow the exec.)
 *
 * usage: fanout-cost N K [SIZE [checksum|zerocopy]]   (N messages, K
 * subscribers 1..64, SIZE bytes; "checksum": the broker's topics carry a
 * CRC-32C in each record, as persistent topics do by default; "zerocopy":
 * shmbus_claim/commit and shmbus_peek/release, each message still copied
 * in and out so that the count compares with the copy path's)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/broker.h"
#include "shmbus/shmbus.h"

#define MAX_READERS 64
#define TOPIC	    "bench/fanout-cost"

/*
 * The two calls whose instructions instructions.sh reads off (callgrind
 * inclusive cost, by function name): kept out of line so that they exist
 * as functions in the profile.
 */
static int zerocopy; /* claim/commit and peek/release instead of copies */

__attribute__((noinline)) static int writer_publish(shmbus_pub *pub,
						    const void *msg, size_t len)
{
	void *dst;
	int r;

	if (!zerocopy) {
		return shmbus_publish(pub, msg, len, 0);
	}
	r = shmbus_claim(pub, len, &dst, 0);
	if (r == 0) {
		memcpy(dst, msg, len);
		r = shmbus_commit(pub);
	}
	return r;
}

__attribute__((noinline)) static ssize_t reader_receive(shmbus_sub *sub,
							void *buf, size_t cap)
{
	const void *data;
	size_t len;
	int r;

	if (!zerocopy) {
		return shmbus_receive(sub, buf, cap, 0);
	}
	r = shmbus_peek(sub, &data, &len, 0);
	if (r < 0) {
		return r;
	}
	memcpy(buf, data, len < cap ? len : cap);
	r = shmbus_release(sub);
	return r < 0 ? r : (ssize_t)len;
}

static int parse(const char *s, unsigned long lo, unsigned long hi,
		 unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || s[0] < '0' || s[0] > '9' || v < lo ||
	    v > hi) {
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* The topic, its publisher and K subscribers on one connection. */
static int open_all(shmbus *bus, unsigned long size, unsigned long k,
		    shmbus_pub **pub, shmbus_sub **subs)
{
	struct shmbus_topic_config cfg = {.capacity = 1u << 20,
					  .max_message = (uint32_t)size,
					  .mode = SHMBUS_BROADCAST,
					  .overflow = SHMBUS_BLOCK};
	int rc = shmbus_topic_create(bus, TOPIC, &cfg);

	for (unsigned long r = 0; rc == 0 && r < k; r++) {
		rc = shmbus_sub_open(bus, TOPIC, SHMBUS_START_LATEST, &subs[r]);
	}
	return rc == 0 ? shmbus_pub_open(bus, TOPIC, pub) : rc;
}

/*
 * One message at a time, then every subscriber takes it: the ring never
 * fills, so no call ever waits, and every instruction counted is the fast
 * path. Returns 0, or 1 with the reason on stderr.
 */
static int move(shmbus_pub *pub, shmbus_sub **subs, unsigned long n,
		unsigned long k, unsigned long size)
{
	unsigned char *msg = calloc(1, size), *buf = malloc(size);
	int rc = msg == NULL || buf == NULL;

	for (uint64_t i = 0; rc == 0 && i < n; i++) {
		memcpy(msg, &i, sizeof(i));
		if (writer_publish(pub, msg, size) < 0) {
			fprintf(stderr, "fanout-cost: publish %llu failed\n",
				(unsigned long long)i);
			rc = 1;
		}
		for (unsigned long r = 0; rc == 0 && r < k; r++) {
			ssize_t got = reader_receive(subs[r], buf, size);
			uint64_t seq;

			memcpy(&seq, buf, sizeof(seq));
			if (got != (ssize_t)size || seq != i) {
				fprintf(stderr,
					"fanout-cost: subscriber %lu, message "
					"%llu: got %zd bytes, seq %llu\n",
					r, (unsigned long long)i, got,
					(unsigned long long)seq);
				rc = 1;
			}
		}
	}
	free(msg);
	free(buf);
	return rc;
}

int main(int argc, char **argv)
{
	static shmbus_sub *subs[MAX_READERS];
	unsigned long n, k, size = 64;
	struct bench_broker b;
	shmbus_pub *pub = NULL;
	shmbus *bus = NULL;
	int rc;

	if (argc < 3 || argc > 5 || parse(argv[1], 1, 1000000000ul, &n) < 0 ||
	    parse(argv[2], 1, MAX_READERS, &k) < 0 ||
	    (argc >= 4 && parse(argv[3], 8, 65536, &size) < 0) ||
	    (argc == 5 && strcmp(argv[4], "checksum") != 0 &&
	     strcmp(argv[4], "zerocopy") != 0)) {
		fprintf(stderr,
			"usage: fanout-cost N K [SIZE [checksum|zerocopy]]\n"
			"  N messages (1..10^9), K subscribers "
			"(1..64), SIZE bytes (8..65536, default 64);\n"
			"  checksum: records carry a CRC-32C; "
			"zerocopy: claim/commit, peek/release\n");
		return 2;
	}
	zerocopy = argc == 5 && strcmp(argv[4], "zerocopy") == 0;
	if (bench_broker_start(&b, argc == 5 && !zerocopy
				       ? "{\"topic_defaults\": "
					 "{\"checksum\": true}}"
				       : NULL) < 0) {
		return 1;
	}
	rc = shmbus_connect(b.socket, "fanout-cost", &bus);
	if (rc == 0) {
		rc = open_all(bus, size, k, &pub, subs);
	}
	if (rc < 0) {
		fprintf(stderr, "fanout-cost: setting up the topic: %s\n",
			shmbus_strerror(rc));
		rc = 1;
	} else {
		rc = move(pub, subs, n, k, size);
	}
	for (unsigned long r = 0; r < k; r++) {
		shmbus_sub_close(subs[r]);
	}
	shmbus_pub_close(pub);
	shmbus_close(bus);
	bench_broker_stop(&b);
	if (rc == 0) {
		printf("fanout-cost: %lu messages of %lu B, %lu subscribers: "
		       "all received in order\n",
		       n, size, k);
	}
	return rc;
}
