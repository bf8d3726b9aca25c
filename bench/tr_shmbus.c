/*
 * tr_shmbus.c - the shmbus topic ring as a benchmark transport, in three
 * forms: a receiver that spins (shmbus-spin), one that sleeps on the futex at
 * once with no spinning (shmbus-block: the worst case for waking), one that
 * waits as the API does by default, spinning briefly before it sleeps
 * (shmbus-wait: after a burst, it should answer at spinning speed), and
 * zero-copy on both sides (shmbus-zerocopy: claim/commit, peek/release,
 * spinning), and a sender that publishes BENCH_BATCH_MAX messages per call
 * (shmbus-batch: sb_ring_publish_batch, one tail store per batch; the
 * receiver spins; throughput only, since a batch holds messages back),
 * and shmbus-spin on a checksummed ring (shmbus-checksum: every record
 * carries a CRC-32C that the receiver verifies; the cost of a persistent
 * topic's default next to shmbus-spin in the same run).
 * Latency runs use a second ring for the way back.
 *
 * The rings live in anonymous shared memory created before fork(), exactly
 * as they would in two memfds from the broker: the code path measured is the
 * library's publish and receive, with no broker involved.
 */
#include "bench/spin.h"
#include "bench/transports.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "ring/ring.h"

enum rx_style { RX_SPIN, RX_BLOCK, RX_WAIT, RX_ZEROCOPY, RX_BATCH };

#define BENCH_BATCH_MAX 32 /* messages per sb_ring_publish_batch() */

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
	size_t max_message;
};

struct end {
	struct sb_ring out_ring;
	struct sb_ring in_ring;
	struct sb_ring_reader in;
	struct sb_ring_claim claim;
	enum rx_style style;
	int has_out;
	int has_in;
	/* shmbus-batch: messages held until BENCH_BATCH_MAX or a flush. The
	 * harness sends from one buffer it rewrites, so each is copied here
	 * first: a real batching caller would point the iovecs at its own
	 * messages, and this copy makes the figure a little low, not high. */
	unsigned char *stage;
	size_t slot_bytes; /* one held message's room in stage */
	struct iovec batch[BENCH_BATCH_MAX];
	size_t staged;
};

static int ring_mem_create(const struct bench_tr_config *cfg, uint32_t flags,
			   struct ring_mem *m)
{
	struct sb_ring_config rc = {
	    .capacity = cfg->ring_bytes,
	    .max_message = (uint32_t)cfg->max_message,
	    .slot_count = 4,
	    .mode = SB_RING_BROADCAST,
	    .overflow = SB_RING_BLOCK,
	    .flags = flags,
	};
	int r = sb_ring_layout(&rc, &m->data_size, &m->ctl_size);

	if (r < 0) {
		return r;
	}
	m->data = mmap(NULL, m->data_size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	m->ctl = mmap(NULL, m->ctl_size, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m->data == MAP_FAILED || m->ctl == MAP_FAILED) {
		return -ENOMEM;
	}
	/* Touch the data area now so no page fault lands in a timing. */
	memset(m->data, 0, m->data_size);
	return sb_ring_format(m->data, m->data_size, m->ctl, m->ctl_size, &rc);
}

static void ring_mem_destroy(struct ring_mem *m)
{
	if (m->data != NULL && m->data != MAP_FAILED) {
		munmap(m->data, m->data_size);
	}
	if (m->ctl != NULL && m->ctl != MAP_FAILED) {
		munmap(m->ctl, m->ctl_size);
	}
}

static void shmbus_destroy(void *shared)
{
	struct shared *s = shared;

	if (s == NULL) {
		return;
	}
	for (int i = 0; i < s->nrings; i++) {
		ring_mem_destroy(&s->ring[i]);
	}
	free(s);
}

static int create_rings(const struct bench_tr_config *cfg, uint32_t flags,
			void **shared)
{
	struct shared *s = calloc(1, sizeof(*s));
	int r = 0;

	if (s == NULL) {
		return -ENOMEM;
	}
	s->nrings = cfg->duplex ? 2 : 1;
	s->max_message = cfg->max_message;
	for (int i = 0; i < s->nrings && r == 0; i++) {
		r = ring_mem_create(cfg, flags, &s->ring[i]);
	}
	if (r < 0) {
		shmbus_destroy(s);
		return r;
	}
	*shared = s;
	return 0;
}

static int shmbus_create(const struct bench_tr_config *cfg, void **shared)
{
	return create_rings(cfg, 0, shared);
}

static int checksum_create(const struct bench_tr_config *cfg, void **shared)
{
	return create_rings(cfg, SB_RING_FLAG_CHECKSUM, shared);
}

static int attach(struct ring_mem *m, struct sb_ring *ring)
{
	return sb_ring_attach(ring, m->data, m->data_size, m->ctl, m->ctl_size);
}

static int open_end(void *shared, enum bench_tr_side side, enum rx_style style,
		    void **out)
{
	struct shared *s = shared;
	struct end *e = calloc(1, sizeof(*e));
	int out_idx = side == BENCH_TR_SENDER ? 0 : 1;
	int in_idx = side == BENCH_TR_SENDER ? 1 : 0;
	int r = 0;

	if (e == NULL) {
		return -ENOMEM;
	}
	e->style = style;
	if (style == RX_BATCH) {
		/* One byte more than the largest message: a zero-length
		 * message still gets its own non-NULL address. */
		e->slot_bytes = s->max_message + 1;
		e->stage = malloc(BENCH_BATCH_MAX * e->slot_bytes);
		if (e->stage == NULL) {
			free(e);
			return -ENOMEM;
		}
	}
	if (out_idx < s->nrings) {
		r = attach(&s->ring[out_idx], &e->out_ring);
		e->has_out = r == 0;
	}
	if (r == 0 && in_idx < s->nrings) {
		r = attach(&s->ring[in_idx], &e->in_ring);
		if (r == 0) {
			/* The blocking form sleeps at once: it measures the
			 * futex wake, not a spin that happens to catch it. */
			e->in_ring.spin =
			    style == RX_BLOCK ? 0 : e->in_ring.spin;
			r = sb_ring_reader_open(&e->in_ring,
						SB_RING_START_LATEST, &e->in);
			e->has_in = r == 0;
		}
	}
	if (r < 0) {
		free(e->stage);
		free(e);
		return r;
	}
	*out = e;
	return 0;
}

static int spin_open(void *shared, enum bench_tr_side side, void **end)
{
	return open_end(shared, side, RX_SPIN, end);
}

static int block_open(void *shared, enum bench_tr_side side, void **end)
{
	return open_end(shared, side, RX_BLOCK, end);
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

/* Publishes every held message. */
static int batch_flush(void *end)
{
	struct end *e = end;
	size_t done = 0;

	while (done < e->staged) {
		ssize_t n = sb_ring_publish_batch(&e->out_ring, e->batch + done,
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
	return e->staged == BENCH_BATCH_MAX ? batch_flush(e) : 0;
}

static int shmbus_send(void *end, const void *buf, size_t len)
{
	struct end *e = end;

	return sb_ring_publish(&e->out_ring, buf, (uint32_t)len, -1);
}

static ssize_t shmbus_recv(void *end, void *buf, size_t cap)
{
	struct end *e = end;
	uint32_t spins = 0;
	ssize_t n;

	if (e->style == RX_BLOCK || e->style == RX_WAIT) {
		return sb_ring_receive(&e->in, buf, cap, -1);
	}
	while ((n = sb_ring_receive(&e->in, buf, cap, 0)) == -EAGAIN) {
		bench_spin_step(&spins);
	}
	return n;
}

static int shmbus_claim(void *end, size_t len, void **buf)
{
	struct end *e = end;
	int r = sb_ring_claim(&e->out_ring, (uint32_t)len, &e->claim, -1);

	if (r == 0) {
		*buf = e->claim.data;
	}
	return r;
}

static int shmbus_commit(void *end)
{
	struct end *e = end;

	return sb_ring_commit(&e->out_ring, &e->claim);
}

static ssize_t shmbus_peek(void *end, const void **data)
{
	struct end *e = end;
	uint32_t spins = 0;
	uint32_t len;
	int r;

	while ((r = sb_ring_peek(&e->in, data, &len, 0)) == -EAGAIN) {
		bench_spin_step(&spins);
	}
	return r < 0 ? r : (ssize_t)len;
}

static int shmbus_release(void *end)
{
	struct end *e = end;

	return sb_ring_release(&e->in);
}

static void shmbus_close_end(void *end)
{
	struct end *e = end;

	if (e->has_in) {
		sb_ring_reader_close(&e->in);
	}
	free(e->stage);
	free(e);
}

const struct bench_tr_ops bench_tr_shmbus_spin = {
    .name = "shmbus-spin",
    .summary = "shmbus ring, receiver polls (copy both sides)",
    .flags = BENCH_TR_LATENCY | BENCH_TR_THROUGHPUT,
    .create = shmbus_create,
    .open_end = spin_open,
    .send = shmbus_send,
    .recv = shmbus_recv,
    .close_end = shmbus_close_end,
    .destroy = shmbus_destroy,
};

const struct bench_tr_ops bench_tr_shmbus_block = {
    .name = "shmbus-block",
    .summary = "shmbus ring, receiver sleeps on the futex at once",
    .flags = BENCH_TR_LATENCY | BENCH_TR_THROUGHPUT,
    .create = shmbus_create,
    .open_end = block_open,
    .send = shmbus_send,
    .recv = shmbus_recv,
    .close_end = shmbus_close_end,
    .destroy = shmbus_destroy,
};

const struct bench_tr_ops bench_tr_shmbus_wait = {
    .name = "shmbus-wait",
    .summary = "shmbus ring, receiver spins briefly, then sleeps (the default)",
    .flags = BENCH_TR_LATENCY | BENCH_TR_THROUGHPUT,
    .create = shmbus_create,
    .open_end = wait_open,
    .send = shmbus_send,
    .recv = shmbus_recv,
    .close_end = shmbus_close_end,
    .destroy = shmbus_destroy,
};

const struct bench_tr_ops bench_tr_shmbus_zerocopy = {
    .name = "shmbus-zerocopy",
    .summary = "shmbus ring, claim/commit and peek/release, polling",
    .flags = BENCH_TR_LATENCY | BENCH_TR_THROUGHPUT,
    .create = shmbus_create,
    .open_end = zerocopy_open,
    .send = shmbus_send,
    .recv = shmbus_recv,
    .claim = shmbus_claim,
    .commit = shmbus_commit,
    .peek = shmbus_peek,
    .release = shmbus_release,
    .close_end = shmbus_close_end,
    .destroy = shmbus_destroy,
};

const struct bench_tr_ops bench_tr_shmbus_batch = {
    .name = "shmbus-batch",
    .summary = "shmbus ring, 32 messages per publish call, receiver polls",
    .flags = BENCH_TR_THROUGHPUT,
    .create = shmbus_create,
    .open_end = batch_open,
    .send = batch_send,
    .flush = batch_flush,
    .recv = shmbus_recv,
    .close_end = shmbus_close_end,
    .destroy = shmbus_destroy,
};

const struct bench_tr_ops bench_tr_shmbus_checksum = {
    .name = "shmbus-checksum",
    .summary = "shmbus-spin on a checksummed ring (CRC-32C per record)",
    .flags = BENCH_TR_LATENCY | BENCH_TR_THROUGHPUT,
    .create = checksum_create,
    .open_end = spin_open,
    .send = shmbus_send,
    .recv = shmbus_recv,
    .close_end = shmbus_close_end,
    .destroy = shmbus_destroy,
};
