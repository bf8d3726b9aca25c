/*
 * tr_shmbus.c - shmbus as its users meet it: the public API
 * (include/shmbus/shmbus.h) on topics that a shmbusd of the benchmark's own
 * made, with the broker's default settings but the run's ring size and
 * largest message (64 subscriber slots, each in a segment of its own, the
 * real mappings). Each end connects, opens its publisher and subscriber
 * and moves messages with no broker on the path. Five rows:
 *
 *   shmbus-spin      shmbus_publish; the receiver polls shmbus_receive
 *   shmbus-wait      the receiver waits as the API does by default
 *                    (timeout -1: spins briefly, then sleeps)
 *   shmbus-zerocopy  shmbus_claim/commit; shmbus_peek/release, polling
 *   shmbus-batch     shmbus_publish_batch of BATCH_MAX held messages (one
 *                    tail store each; throughput only)
 *   shmbus-metadata  shmbus-spin on topics with metadata (each message
 *                    carries its publish time and publisher, 16 bytes)
 *   shmbus-checksum  shmbus-spin on checksummed topics (a CRC-32C in every
 *                    record, as persistent topics have by default)
 *
 * Latency runs use a second topic for the way back. A broker is started
 * for each repetition and stopped after it.
 */
#include "bench/broker.h"
#include "bench/spin.h"
#include "bench/transports.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "shmbus/shmbus.h"

enum rx_style { RX_SPIN, RX_WAIT, RX_ZEROCOPY, RX_BATCH };

#define BATCH_MAX 32 /* messages per shmbus_publish_batch() */

static const char *const topic_names[2] = {"bench/there", "bench/back"};

struct shared {
	struct bench_broker broker;
	int ntopics;
	size_t max_message;
	int metadata; /* topics with metadata (16 more bytes a message) */
};

struct end {
	shmbus *bus;
	shmbus_pub *pub;
	shmbus_sub *sub;
	enum rx_style style;
	/* shmbus-batch: messages held until BATCH_MAX or a flush, each copied
	 * first because the harness rewrites one buffer (a real batching
	 * caller would point the iovecs at its own messages, so the figure
	 * errs low). */
	unsigned char *stage;
	size_t slot_bytes;
	struct iovec batch[BATCH_MAX];
	size_t staged;
};

static void bus_destroy(void *shared)
{
	struct shared *s = shared;

	if (s != NULL) {
		bench_broker_stop(&s->broker);
		free(s);
	}
}

/* The topics, created explicitly so that they outlive this connection. */
static int create_topics(struct shared *s, const struct bench_tr_config *cfg)
{
	struct shmbus_topic_config tc = {.capacity = cfg->ring_bytes,
					 .max_message =
					     (uint32_t)cfg->max_message +
					     (s->metadata ? 16u : 0u),
					 .mode = SHMBUS_BROADCAST,
					 .overflow = SHMBUS_BLOCK,
					 .metadata = s->metadata};
	shmbus *bus;
	int r = shmbus_connect(s->broker.socket, "shmbus-bench", &bus);

	/* The metadata's 16 bytes count in max_message, which a ring holds
	 * up to a quarter of: a run whose largest message is that quarter
	 * gets twice the ring. */
	if (tc.max_message > tc.capacity / 4) {
		tc.capacity *= 2;
	}

	for (int i = 0; r == 0 && i < s->ntopics; i++) {
		r = shmbus_topic_create(bus, topic_names[i], &tc);
	}
	if (bus != NULL) {
		shmbus_close(bus);
	}
	return r;
}

static int create_with(const struct bench_tr_config *cfg, const char *config,
		       int metadata, void **shared)
{
	struct shared *s = calloc(1, sizeof(*s));
	int r;

	if (s == NULL) {
		return -ENOMEM;
	}
	s->ntopics = cfg->duplex ? 2 : 1;
	s->metadata = metadata;
	s->max_message = cfg->max_message;
	r = bench_broker_start(&s->broker, config);
	if (r < 0) {
		free(s);
		return r;
	}
	r = create_topics(s, cfg);
	if (r < 0) {
		bus_destroy(s);
		return r;
	}
	*shared = s;
	return 0;
}

static int bus_create(const struct bench_tr_config *cfg, void **shared)
{
	return create_with(cfg, NULL, 0, shared);
}

static int checksum_create(const struct bench_tr_config *cfg, void **shared)
{
	return create_with(cfg, "{\"topic_defaults\": {\"checksum\": true}}", 0,
			   shared);
}

static int metadata_create(const struct bench_tr_config *cfg, void **shared)
{
	return create_with(cfg, NULL, 1, shared);
}

static void bus_close_end(void *end)
{
	struct end *e = end;

	if (e->sub != NULL) {
		shmbus_sub_close(e->sub);
	}
	if (e->pub != NULL) {
		shmbus_pub_close(e->pub);
	}
	if (e->bus != NULL) {
		shmbus_close(e->bus);
	}
	free(e->stage);
	free(e);
}

static int open_end(void *shared, enum bench_tr_side side, enum rx_style style,
		    void **out)
{
	struct shared *s = shared;
	struct end *e = calloc(1, sizeof(*e));
	int out_idx = side == BENCH_TR_SENDER ? 0 : 1;
	int in_idx = side == BENCH_TR_SENDER ? 1 : 0;
	int r;

	if (e == NULL) {
		return -ENOMEM;
	}
	e->style = style;
	r = shmbus_connect(s->broker.socket, "shmbus-bench", &e->bus);
	if (r == 0 && style == RX_BATCH) {
		/* One byte more than the largest message: a zero-length
		 * message still gets its own non-NULL address. */
		e->slot_bytes = s->max_message + 1;
		e->stage = malloc(BATCH_MAX * e->slot_bytes);
		r = e->stage == NULL ? -ENOMEM : 0;
	}
	if (r == 0 && out_idx < s->ntopics) {
		r = shmbus_pub_open(e->bus, topic_names[out_idx], &e->pub);
	}
	if (r == 0 && in_idx < s->ntopics) {
		r = shmbus_sub_open(e->bus, topic_names[in_idx],
				    SHMBUS_START_LATEST, &e->sub);
	}
	if (r < 0) {
		bus_close_end(e);
		return r;
	}
	*out = e;
	return 0;
}

static int spin_open(void *shared, enum bench_tr_side side, void **end)
{
	return open_end(shared, side, RX_SPIN, end);
}

static int wait_open(void *shared, enum bench_tr_side side, void **end)
{
	return open_end(shared, side, RX_WAIT, end);
}

static int zerocopy_open(void *shared, enum bench_tr_side side, void **end)
{
	return open_end(shared, side, RX_ZEROCOPY, end);
}

static int batch_open(void *shared, enum bench_tr_side side, void **end)
{
	return open_end(shared, side, RX_BATCH, end);
}

static int bus_send(void *end, const void *buf, size_t len)
{
	struct end *e = end;

	return shmbus_publish(e->pub, buf, len, -1);
}

/* Publishes every held message. */
static int batch_flush(void *end)
{
	struct end *e = end;
	size_t done = 0;

	while (done < e->staged) {
		ssize_t n = shmbus_publish_batch(e->pub, e->batch + done,
						 e->staged - done, -1);

		if (n < 0) {
			return (int)n;
		}
		done += (size_t)n;
	}
	e->staged = 0;
	return 0;
}

static int batch_send(void *end, const void *buf, size_t len)
{
	struct end *e = end;
	unsigned char *slot = e->stage + e->staged * e->slot_bytes;

	memcpy(slot, buf, len);
	e->batch[e->staged].iov_base = slot;
	e->batch[e->staged].iov_len = len;
	e->staged++;
	return e->staged == BATCH_MAX ? batch_flush(e) : 0;
}

static ssize_t bus_recv(void *end, void *buf, size_t cap)
{
	struct end *e = end;
	uint32_t spins = 0;
	ssize_t n;

	if (e->style == RX_WAIT) {
		return shmbus_receive(e->sub, buf, cap, -1);
	}
	while ((n = shmbus_receive(e->sub, buf, cap, 0)) == -EAGAIN) {
		bench_spin_step(&spins);
	}
	return n;
}

static int bus_claim(void *end, size_t len, void **buf)
{
	struct end *e = end;

	return shmbus_claim(e->pub, len, buf, -1);
}

static int bus_commit(void *end)
{
	struct end *e = end;

	return shmbus_commit(e->pub);
}

static ssize_t bus_peek(void *end, const void **data)
{
	struct end *e = end;
	uint32_t spins = 0;
	size_t len;
	int r;

	while ((r = shmbus_peek(e->sub, data, &len, 0)) == -EAGAIN) {
		bench_spin_step(&spins);
	}
	return r < 0 ? r : (ssize_t)len;
}

static int bus_release(void *end)
{
	struct end *e = end;

	return shmbus_release(e->sub);
}

const struct bench_tr_ops bench_tr_shmbus_spin = {
    .name = "shmbus-spin",
    .summary = "public API, broker-made topic; publish, receiver polls",
    .flags = BENCH_TR_LATENCY | BENCH_TR_THROUGHPUT,
    .create = bus_create,
    .open_end = spin_open,
    .send = bus_send,
    .recv = bus_recv,
    .close_end = bus_close_end,
    .destroy = bus_destroy,
};

const struct bench_tr_ops bench_tr_shmbus_wait = {
    .name = "shmbus-wait",
    .summary = "public API; receiver waits as the API does by default",
    .flags = BENCH_TR_LATENCY | BENCH_TR_THROUGHPUT,
    .create = bus_create,
    .open_end = wait_open,
    .send = bus_send,
    .recv = bus_recv,
    .close_end = bus_close_end,
    .destroy = bus_destroy,
};

const struct bench_tr_ops bench_tr_shmbus_zerocopy = {
    .name = "shmbus-zerocopy",
    .summary = "public API; claim/commit and peek/release, polling",
    .flags = BENCH_TR_LATENCY | BENCH_TR_THROUGHPUT,
    .create = bus_create,
    .open_end = zerocopy_open,
    .send = bus_send,
    .recv = bus_recv,
    .claim = bus_claim,
    .commit = bus_commit,
    .peek = bus_peek,
    .release = bus_release,
    .close_end = bus_close_end,
    .destroy = bus_destroy,
};

const struct bench_tr_ops bench_tr_shmbus_batch = {
    .name = "shmbus-batch",
    .summary = "public API; publish_batch of 32, receiver polls",
    .flags = BENCH_TR_THROUGHPUT,
    .create = bus_create,
    .open_end = batch_open,
    .send = batch_send,
    .recv = bus_recv,
    .flush = batch_flush,
    .close_end = bus_close_end,
    .destroy = bus_destroy,
};

const struct bench_tr_ops bench_tr_shmbus_checksum = {
    .name = "shmbus-checksum",
    .summary = "public API, checksummed topics; receiver polls",
    .flags = BENCH_TR_LATENCY | BENCH_TR_THROUGHPUT,
    .create = checksum_create,
    .open_end = spin_open,
    .send = bus_send,
    .recv = bus_recv,
    .close_end = bus_close_end,
    .destroy = bus_destroy,
};

const struct bench_tr_ops bench_tr_shmbus_metadata = {
    .name = "shmbus-metadata",
    .summary = "public API, topics with metadata; receiver polls",
    .flags = BENCH_TR_LATENCY | BENCH_TR_THROUGHPUT,
    .create = metadata_create,
    .open_end = spin_open,
    .send = bus_send,
    .recv = bus_recv,
    .close_end = bus_close_end,
    .destroy = bus_destroy,
};
