/*
 * tr_ring.c - the topic ring itself, without the library around it and
 * without a broker, as a benchmark transport labelled "internal": the rings
 * live in anonymous shared memory created before fork(), with 4 subscriber
 * slots in the control segment. Two rows: a receiver that spins
 * (ring-spin), and one that sleeps on the futex at once with no spinning
 * (ring-block: the worst case for waking, which the public API cannot ask
 * for). Read them against the shmbus-* rows (tr_shmbus.c), which go
 * through the public API on topics a broker made: the difference is what
 * the library and the broker's topic settings add. Latency runs use a
 * second ring for the way back.
 */
#include "bench/spin.h"
#include "bench/transports.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ring/ring.h"

/* One ring's two segments. */
struct ring_mem {
	void *data;
	void *ctl;
	uint64_t data_size;
	uint64_t ctl_size;
};

/* Ring 0 carries sender -> receiver, ring 1 the way back (duplex). */
struct shared {
	struct ring_mem ring[2];
	int nrings;
};

struct end {
	struct sb_ring out_ring;
	struct sb_ring in_ring;
	struct sb_ring_reader in;
	int has_in;
	int spin; /* 1: poll; 0: sleep on the futex at once */
};

static void *shared_map(uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int ring_mem_create(const struct bench_tr_config *cfg,
			   struct ring_mem *m)
{
	struct sb_ring_config rc = {
	    .capacity = cfg->ring_bytes,
	    .max_message = (uint32_t)cfg->max_message,
	    .slot_count = 4,
	    .mode = SB_RING_BROADCAST,
	    .overflow = SB_RING_BLOCK,
	};
	int r = sb_ring_layout(&rc, &m->data_size, &m->ctl_size);

	if (r < 0) {
		return r;
	}
	m->data = shared_map(m->data_size);
	m->ctl = shared_map(m->ctl_size);
	if (m->data == NULL || m->ctl == NULL) {
		return -ENOMEM;
	}
	return sb_ring_format(m->data, m->data_size, m->ctl, m->ctl_size, &rc);
}

static void ring_destroy(void *shared)
{
	struct shared *s = shared;

	if (s == NULL) {
		return;
	}
	for (int i = 0; i < s->nrings; i++) {
		if (s->ring[i].data != NULL) {
			munmap(s->ring[i].data, s->ring[i].data_size);
		}
		if (s->ring[i].ctl != NULL) {
			munmap(s->ring[i].ctl, s->ring[i].ctl_size);
		}
	}
	free(s);
}

static int ring_create(const struct bench_tr_config *cfg, void **shared)
{
	struct shared *s = calloc(1, sizeof(*s));
	int r = 0;

	if (s == NULL) {
		return -ENOMEM;
	}
	s->nrings = cfg->duplex ? 2 : 1;
	for (int i = 0; i < s->nrings && r == 0; i++) {
		r = ring_mem_create(cfg, &s->ring[i]);
	}
	if (r < 0) {
		ring_destroy(s);
		return r;
	}
	*shared = s;
	return 0;
}

static int attach(struct ring_mem *m, struct sb_ring *ring)
{
	return sb_ring_attach(ring, m->data, m->data_size, m->ctl, m->ctl_size);
}

static int open_end(void *shared, enum bench_tr_side side, int spin, void **out)
{
	struct shared *s = shared;
	struct end *e = calloc(1, sizeof(*e));
	int out_idx = side == BENCH_TR_SENDER ? 0 : 1;
	int in_idx = side == BENCH_TR_SENDER ? 1 : 0;
	int r = 0;

	if (e == NULL) {
		return -ENOMEM;
	}
	e->spin = spin;
	if (out_idx < s->nrings) {
		r = attach(&s->ring[out_idx], &e->out_ring);
	}
	if (r == 0 && in_idx < s->nrings) {
		r = attach(&s->ring[in_idx], &e->in_ring);
		if (r == 0) {
			/* The blocking form sleeps at once: it measures the
			 * futex wake, not a spin that happens to catch it. */
			e->in_ring.spin = spin ? e->in_ring.spin : 0;
			r = sb_ring_reader_open(&e->in_ring,
						SB_RING_START_LATEST, &e->in);
			e->has_in = r == 0;
		}
	}
	if (r < 0) {
		free(e);
		return r;
	}
	*out = e;
	return 0;
}

static int spin_open(void *shared, enum bench_tr_side side, void **end)
{
	return open_end(shared, side, 1, end);
}

static int block_open(void *shared, enum bench_tr_side side, void **end)
{
	return open_end(shared, side, 0, end);
}

static int ring_send(void *end, const void *buf, size_t len)
{
	struct end *e = end;

	return sb_ring_publish(&e->out_ring, buf, (uint32_t)len, -1);
}

static ssize_t ring_recv(void *end, void *buf, size_t cap)
{
	struct end *e = end;
	uint32_t spins = 0;
	ssize_t n;

	if (!e->spin) {
		return sb_ring_receive(&e->in, buf, cap, -1);
	}
	while ((n = sb_ring_receive(&e->in, buf, cap, 0)) == -EAGAIN) {
		bench_spin_step(&spins);
	}
	return n;
}

static void ring_close_end(void *end)
{
	struct end *e = end;

	if (e->has_in) {
		sb_ring_reader_close(&e->in);
	}
	free(e);
}

const struct bench_tr_ops bench_tr_ring_spin = {
    .name = "ring-spin",
    .summary = "internal: the ring alone, no library, no broker; "
	       "receiver polls",
    .flags = BENCH_TR_LATENCY | BENCH_TR_THROUGHPUT,
    .create = ring_create,
    .open_end = spin_open,
    .send = ring_send,
    .recv = ring_recv,
    .close_end = ring_close_end,
    .destroy = ring_destroy,
};

const struct bench_tr_ops bench_tr_ring_block = {
    .name = "ring-block",
    .summary = "internal: the ring alone; receiver sleeps on the futex "
	       "at once",
    .flags = BENCH_TR_LATENCY | BENCH_TR_THROUGHPUT,
    .create = ring_create,
    .open_end = block_open,
    .send = ring_send,
    .recv = ring_recv,
    .close_end = ring_close_end,
    .destroy = ring_destroy,
};
