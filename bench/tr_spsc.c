/*
 * tr_spsc.c - a reference ring: a plain single-producer,
 * single-consumer ring in shared memory, with the same record shape as a
 * shmbus topic (16-byte header, payload rounded to 16 bytes, records never
 * wrapping, a PAD record at the end). It shows what this machine allows any
 * ring of that shape, so that shmbus-spin can be read against it in the
 * same run.
 *
 * It is a reference, not a product: one writer and one reader, no lock, no
 * waiter words (it only spins), no crash safety, no subscriber table, and
 * only light checks on what it reads. Latency runs use a second ring for
 * the way back.
 */
#include "bench/spin.h"
#include "bench/transports.h"

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/*
 * One ring in the shared mapping (two for ping-pong, one after the other):
 *
 *   0                 128               256            4096      4096 + cap
 *   +-----------------+-----------------+--------------+----------------+
 *   | writer_tail     | reader_head     | (unused)     | data area: cap |
 *   | (two lines)     | (two lines)     |              | bytes, 2^n     |
 *   +-----------------+-----------------+--------------+----------------+
 *
 * writer_tail and reader_head are free-running byte positions (offset in
 * the data area: pos & (cap - 1)), each 128 bytes from the other so that
 * the writer's and the reader's lines stay apart even with adjacent-line
 * prefetch, as in a shmbus topic. The data area starts on its own page.
 *
 * One record, as in a shmbus topic (ring/ring_layout.h):
 *
 *   0        4        8                16             16 + len
 *   +--------+--------+----------------+--------------+-------+
 *   | len    | type   | seq            | payload      | pad   |  to 16 bytes
 *   +--------+--------+----------------+--------------+-------+
 *
 * A record that does not fit before the end of the data area is preceded
 * by a PAD record filling the rest (its len: the bytes after its header),
 * and goes at offset 0. The writer publishes a record by storing the new
 * writer_tail with release after writing it; the reader frees one by
 * storing the new reader_head with release after reading it.
 *
 * Worked example: cap 4096, writer_tail = 4064, a 20-byte message. Its
 * record needs 16 + 20 -> 48 bytes, only 32 remain, so the writer writes
 * a PAD record at 4064 (len 16, type 2), stores writer_tail = 4096, then
 * writes the data record (len 20, type 1, seq) at offset 0 and stores
 * writer_tail = 4144.
 */
struct spsc_ctl {
	_Atomic uint64_t writer_tail; /* 0: written by the writer only */
	uint8_t reserved0[120];
	_Atomic uint64_t reader_head; /* 128: written by the reader only */
	uint8_t reserved1[120];
};

static_assert(sizeof(struct spsc_ctl) == 256, "two pairs of lines");
static_assert(offsetof(struct spsc_ctl, writer_tail) == 0, "tail at 0");
static_assert(offsetof(struct spsc_ctl, reader_head) == 128, "head at 128");
static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics are lock-free");

struct spsc_record {
	uint32_t len;  /* 0: payload bytes (DATA) or filler bytes (PAD) */
	uint32_t type; /* 4: REC_DATA or REC_PAD */
	uint64_t seq;  /* 8: the writer's record count (DATA; 0 for PAD) */
};

static_assert(sizeof(struct spsc_record) == 16, "16-byte header");
static_assert(offsetof(struct spsc_record, len) == 0, "len at 0");
static_assert(offsetof(struct spsc_record, type) == 4, "type at 4");
static_assert(offsetof(struct spsc_record, seq) == 8, "seq at 8");

#define REC_HEADER   16u
#define REC_DATA     1u
#define REC_PAD	     2u
#define DATA_OFFSET  4096u		 /* the data area, after the ctl page */
#define MIN_CAPACITY 4096u		 /* as a shmbus topic */
#define MAX_CAPACITY ((uint64_t)1 << 30) /* as a shmbus topic */

/* What create() makes and fork() copies: where the rings are. */
struct spsc_shared {
	unsigned char *shm_base; /* nrings x (DATA_OFFSET + capacity) */
	size_t map_bytes;
	uint64_t capacity;
	uint32_t max_message;
	int nrings; /* ring 0: sender -> receiver; ring 1: the way back */
};

/* The writer's side of one ring: its own tail, and the head it saw last. */
struct spsc_tx {
	struct spsc_ctl *shm_ctl;
	unsigned char *shm_data;
	uint64_t tail;
	uint64_t head_cache;
	uint64_t next_seq;
};

/* The reader's side of one ring: its own head, and the tail it saw last. */
struct spsc_rx {
	struct spsc_ctl *shm_ctl;
	const unsigned char *shm_data;
	uint64_t head;
	uint64_t tail_cache;
	uint64_t next_seq;
};

struct spsc_end {
	struct spsc_tx tx;
	struct spsc_rx rx;
	uint64_t capacity;
	uint64_t mask;
	uint32_t max_message;
	int has_tx;
	int has_rx;
};

static uint64_t record_bytes(uint64_t len)
{
	return REC_HEADER + ((len + 15) & ~(uint64_t)15);
}

static size_t ring_stride(uint64_t capacity)
{
	return DATA_OFFSET + (size_t)capacity;
}

static void spsc_destroy(void *shared)
{
	struct spsc_shared *s = shared;

	if (s == NULL) {
		return;
	}
	if (s->shm_base != NULL) {
		munmap(s->shm_base, s->map_bytes);
	}
	free(s);
}

static int spsc_create(const struct bench_tr_config *cfg, void **shared)
{
	uint64_t cap = cfg->ring_bytes;
	struct spsc_shared *s;
	void *mem;

	/* The limits of a shmbus topic (sb_ring_layout()), so that both
	 * rings run on the same geometry or fail on the same sizes. */
	if (cap < MIN_CAPACITY || cap > MAX_CAPACITY || (cap & (cap - 1))) {
		fprintf(stderr,
			"shmbus-bench: spsc: the ring needs a power of two "
			"from 4 KiB to 1 GiB (--ring-bytes %zu)\n",
			cfg->ring_bytes);
		return -EINVAL;
	}
	if (cfg->max_message > cap / 4) {
		fprintf(stderr,
			"shmbus-bench: spsc: a %zu-byte message is over a "
			"quarter of the ring (--ring-bytes %zu)\n",
			cfg->max_message, cfg->ring_bytes);
		return -EMSGSIZE;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		return -ENOMEM;
	}
	s->capacity = cap;
	s->max_message = (uint32_t)cfg->max_message;
	s->nrings = cfg->duplex ? 2 : 1;
	s->map_bytes = (size_t)s->nrings * ring_stride(cap);
	mem = mmap(NULL, s->map_bytes, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		int err = -errno;

		free(s);
		return err;
	}
	s->shm_base = mem;
	/*
	 * Touch every page now so no page fault lands in a timing (as
	 * tr_shmbus.c does). The zeroes are also the initial positions;
	 * fork() publishes them to both children.
	 */
	memset(mem, 0, s->map_bytes);
	*shared = s;
	return 0;
}

/* The start of ring i: its struct spsc_ctl, the data area DATA_OFFSET on. */
static unsigned char *ring_base(const struct spsc_shared *s, int i)
{
	return s->shm_base + (size_t)i * ring_stride(s->capacity);
}

static int spsc_open_end(void *shared, enum bench_tr_side side, void **end)
{
	struct spsc_shared *s = shared;
	struct spsc_end *e = calloc(1, sizeof(*e));
	int out_idx = side == BENCH_TR_SENDER ? 0 : 1;
	int in_idx = side == BENCH_TR_SENDER ? 1 : 0;

	if (e == NULL) {
		return -ENOMEM;
	}
	e->capacity = s->capacity;
	e->mask = s->capacity - 1;
	e->max_message = s->max_message;
	/* Every position starts at 0: nothing has been written yet. */
	if (out_idx < s->nrings) {
		e->tx.shm_ctl =
		    (struct spsc_ctl *)(void *)ring_base(s, out_idx);
		e->tx.shm_data = ring_base(s, out_idx) + DATA_OFFSET;
		e->has_tx = 1;
	}
	if (in_idx < s->nrings) {
		e->rx.shm_ctl = (struct spsc_ctl *)(void *)ring_base(s, in_idx);
		e->rx.shm_data = ring_base(s, in_idx) + DATA_OFFSET;
		e->has_rx = 1;
	}
	*end = e;
	return 0;
}

/*
 * Waits until `need` bytes beyond the writer's tail are free. The cached
 * head is re-read only when it says there is not enough room.
 */
static void wait_room(const struct spsc_end *e, struct spsc_tx *tx,
		      uint64_t need)
{
	uint32_t spins = 0;

	if (e->capacity - (tx->tail - tx->head_cache) >= need) {
		return;
	}
	for (;;) {
		/*
		 * Acquire: pairs with the release store of reader_head in
		 * spsc_recv(), so the reader has finished reading the bytes
		 * we are about to overwrite.
		 */
		tx->head_cache = atomic_load_explicit(&tx->shm_ctl->reader_head,
						      memory_order_acquire);
		if (e->capacity - (tx->tail - tx->head_cache) >= need) {
			return;
		}
		bench_spin_step(&spins);
	}
}

static void put_header(unsigned char *at, uint32_t len, uint32_t type,
		       uint64_t seq)
{
	struct spsc_record h = {.len = len, .type = type, .seq = seq};

	memcpy(at, &h, sizeof(h));
}

static int spsc_send(void *end, const void *buf, size_t len)
{
	struct spsc_end *e = end;
	struct spsc_tx *tx = &e->tx;
	uint64_t need = record_bytes(len);
	uint64_t off = tx->tail & e->mask;
	uint64_t room = e->capacity - off;

	if (!e->has_tx) {
		return -EINVAL;
	}
	if (len > e->max_message) {
		return -EMSGSIZE;
	}
	if (room < need) {
		/*
		 * Fill the end with a PAD record and publish it on its own,
		 * so that the reader can step over it (and free the end)
		 * while we wait for room at the front.
		 */
		wait_room(e, tx, room);
		put_header(tx->shm_data + off, (uint32_t)(room - REC_HEADER),
			   REC_PAD, 0);
		tx->tail += room;
		/* Release: pairs with the acquire load of writer_tail in
		 * spsc_recv(), which then reads the PAD header above. */
		atomic_store_explicit(&tx->shm_ctl->writer_tail, tx->tail,
				      memory_order_release);
		off = 0;
	}
	wait_room(e, tx, need);
	put_header(tx->shm_data + off, (uint32_t)len, REC_DATA, tx->next_seq++);
	memcpy(tx->shm_data + off + REC_HEADER, buf, len);
	tx->tail += need;
	/* Release: pairs with the acquire load of writer_tail in
	 * spsc_recv(), which then reads the record written above. */
	atomic_store_explicit(&tx->shm_ctl->writer_tail, tx->tail,
			      memory_order_release);
	return 0;
}

/*
 * Waits until the writer has published something beyond the reader's head.
 * The cached tail is re-read only when everything up to it was consumed.
 */
static void wait_data(struct spsc_rx *rx)
{
	uint32_t spins = 0;

	if (rx->head != rx->tail_cache) {
		return;
	}
	for (;;) {
		/*
		 * Acquire: pairs with the release store of writer_tail in
		 * spsc_send(), so every byte of the records before it is
		 * visible here.
		 */
		rx->tail_cache = atomic_load_explicit(&rx->shm_ctl->writer_tail,
						      memory_order_acquire);
		if (rx->head != rx->tail_cache) {
			return;
		}
		bench_spin_step(&spins);
	}
}

/* Frees everything before the reader's head for the writer. */
static void let_go(struct spsc_rx *rx)
{
	/* Release: pairs with the acquire load of reader_head in
	 * wait_room(): our reads of the record come before its reuse. */
	atomic_store_explicit(&rx->shm_ctl->reader_head, rx->head,
			      memory_order_release);
}

static ssize_t spsc_recv(void *end, void *buf, size_t cap)
{
	struct spsc_end *e = end;
	struct spsc_rx *rx = &e->rx;

	if (!e->has_rx) {
		return -EINVAL;
	}
	for (;;) {
		uint64_t off, room, avail, need;
		struct spsc_record h;

		wait_data(rx);
		off = rx->head & e->mask;
		room = e->capacity - off;
		avail = rx->tail_cache - rx->head;
		memcpy(&h, rx->shm_data + off, sizeof(h));
		if (h.type == REC_PAD) {
			if (h.len != room - REC_HEADER || avail < room) {
				return -EBADMSG;
			}
			rx->head += room;
			let_go(rx);
			continue;
		}
		/* Checked before use, as a shmbus reader does: a bad length
		 * is an error, never a read outside the ring. */
		need = record_bytes(h.len);
		if (h.type != REC_DATA || h.len > e->max_message ||
		    need > room || need > avail || h.seq != rx->next_seq) {
			return -EBADMSG;
		}
		if (h.len > cap) {
			return -EMSGSIZE; /* the message stays unread */
		}
		memcpy(buf, rx->shm_data + off + REC_HEADER, h.len);
		rx->head += need;
		rx->next_seq++;
		let_go(rx);
		return (ssize_t)h.len;
	}
}

static void spsc_close_end(void *end)
{
	free(end);
}

const struct bench_tr_ops bench_tr_spsc = {
    .name = "spsc",
    .summary = "plain one-writer one-reader ring, same records, spins",
    .flags = BENCH_TR_LATENCY | BENCH_TR_THROUGHPUT,
    .create = spsc_create,
    .open_end = spsc_open_end,
    .send = spsc_send,
    .recv = spsc_recv,
    .close_end = spsc_close_end,
    .destroy = spsc_destroy,
};
