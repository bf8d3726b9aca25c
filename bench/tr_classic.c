/*
 * tr_classic.c - the reference a single-producer ring is usually judged
 * by: fixed slots of the run's message size rounded up to 64 bytes, the
 * producer's head and the consumer's tail each on a cache line of its own,
 * each side caching the other's index and reading it again only when the
 * cached one says full (or empty), and messages written and read in place
 * (claim/commit, peek/release). It has no variable lengths, no readers
 * but one, no locks, no checks of what the other side wrote, no waiting
 * but spinning: the plain ring shmbus is read against ("classic").
 * Latency runs use a second ring for the way back.
 */
#include "bench/spin.h"
#include "bench/transports.h"

#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define LINE 64

/* One ring: the two indices on lines of their own, then the slots. */
struct classic_ring {
	alignas(LINE) _Atomic uint64_t head; /* written by the producer */
	alignas(LINE) _Atomic uint64_t tail; /* written by the consumer */
	alignas(LINE) unsigned char slots[];
};

struct shared {
	void *map;
	size_t map_bytes;
	size_t ring_bytes; /* one ring's, header included */
	size_t slot_bytes;
	uint64_t nslots; /* a power of two */
	size_t msg_len;	 /* the run's one message size */
	int nrings;
};

struct end {
	struct classic_ring *out, *in;
	size_t slot_bytes;
	uint64_t mask;
	uint64_t nslots;
	size_t msg_len;
	uint64_t head, cached_tail; /* the producer's side */
	uint64_t tail, cached_head; /* the consumer's side */
};

static struct classic_ring *ring_at(const struct shared *s, int i)
{
	return (struct classic_ring *)((unsigned char *)s->map +
				       (size_t)i * s->ring_bytes);
}

static void classic_destroy(void *shared)
{
	struct shared *s = shared;

	if (s != NULL) {
		munmap(s->map, s->map_bytes);
		free(s);
	}
}

static int classic_create(const struct bench_tr_config *cfg, void **shared)
{
	struct shared *s = calloc(1, sizeof(*s));
	uint64_t n = 1;

	if (s == NULL) {
		return -ENOMEM;
	}
	s->msg_len = cfg->max_message;
	s->slot_bytes = (cfg->max_message + LINE - 1) / LINE * LINE;
	if (s->slot_bytes == 0) {
		s->slot_bytes = LINE;
	}
	/* As many slots as the ring's bytes hold, a power of two, at least
	 * two. */
	while (n * 2 * s->slot_bytes <= cfg->ring_bytes) {
		n *= 2;
	}
	s->nslots = n < 2 ? 2 : n;
	s->ring_bytes = sizeof(struct classic_ring) + s->nslots * s->slot_bytes;
	s->nrings = cfg->duplex ? 2 : 1;
	s->map_bytes = s->ring_bytes * (size_t)s->nrings;
	s->map = mmap(NULL, s->map_bytes, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s->map == MAP_FAILED) {
		free(s);
		return -ENOMEM;
	}
	*shared = s;
	return 0;
}

static int classic_open(void *shared, enum bench_tr_side side, void **out)
{
	struct shared *s = shared;
	struct end *e = calloc(1, sizeof(*e));
	int out_idx = side == BENCH_TR_SENDER ? 0 : 1;
	int in_idx = side == BENCH_TR_SENDER ? 1 : 0;

	if (e == NULL) {
		return -ENOMEM;
	}
	e->slot_bytes = s->slot_bytes;
	e->nslots = s->nslots;
	e->mask = s->nslots - 1;
	e->msg_len = s->msg_len;
	e->out = out_idx < s->nrings ? ring_at(s, out_idx) : NULL;
	e->in = in_idx < s->nrings ? ring_at(s, in_idx) : NULL;
	*out = e;
	return 0;
}

static int classic_claim(void *end, size_t len, void **buf)
{
	struct end *e = end;
	uint32_t spins = 0;

	if (len > e->slot_bytes) {
		return -EMSGSIZE;
	}
	while (e->head - e->cached_tail == e->nslots) {
		/* acquire: the consumer is done with the slot we reuse. */
		e->cached_tail =
		    atomic_load_explicit(&e->out->tail, memory_order_acquire);
		if (e->head - e->cached_tail == e->nslots) {
			bench_spin_step(&spins);
		}
	}
	*buf = e->out->slots + (e->head & e->mask) * e->slot_bytes;
	return 0;
}

static int classic_commit(void *end)
{
	struct end *e = end;

	/* release: the message is written before the consumer sees it. */
	atomic_store_explicit(&e->out->head, ++e->head, memory_order_release);
	return 0;
}

static ssize_t classic_peek(void *end, const void **data)
{
	struct end *e = end;
	uint32_t spins = 0;

	while (e->tail == e->cached_head) {
		/* acquire: pairs with the producer's release of head. */
		e->cached_head =
		    atomic_load_explicit(&e->in->head, memory_order_acquire);
		if (e->tail == e->cached_head) {
			bench_spin_step(&spins);
		}
	}
	*data = e->in->slots + (e->tail & e->mask) * e->slot_bytes;
	return (ssize_t)e->msg_len;
}

static int classic_release(void *end)
{
	struct end *e = end;

	/* release: our reads of the slot are done before it is reused. */
	atomic_store_explicit(&e->in->tail, ++e->tail, memory_order_release);
	return 0;
}

static int classic_send(void *end, const void *buf, size_t len)
{
	void *slot;
	int r = classic_claim(end, len, &slot);

	if (r == 0) {
		memcpy(slot, buf, len);
		r = classic_commit(end);
	}
	return r;
}

static ssize_t classic_recv(void *end, void *buf, size_t cap)
{
	const void *slot;
	ssize_t n = classic_peek(end, &slot);

	if ((size_t)n > cap) {
		return -EMSGSIZE;
	}
	memcpy(buf, slot, (size_t)n);
	classic_release(end);
	return n;
}

static void classic_close_end(void *end)
{
	free(end);
}

const struct bench_tr_ops bench_tr_classic = {
    .name = "classic",
    .summary = "reference: fixed-slot SPSC ring, cached indices, "
	       "in place",
    .flags = BENCH_TR_LATENCY | BENCH_TR_THROUGHPUT,
    .create = classic_create,
    .open_end = classic_open,
    .send = classic_send,
    .recv = classic_recv,
    .claim = classic_claim,
    .commit = classic_commit,
    .peek = classic_peek,
    .release = classic_release,
    .close_end = classic_close_end,
    .destroy = classic_destroy,
};
