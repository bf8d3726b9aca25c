/*
 * tr_floor.c - the latency floor: two processes spinning on one 64-byte
 * cache line in shared memory, handing it back and forth with a sequence
 * word. Nothing that moves a message between two cores can be faster than
 * this, so every latency figure is read as a multiple of it.
 *
 * The line carries the sequence word and the first 56 bytes of the message
 * (for a 64-byte message that is nearly all of it, in the one line); the
 * rest of a larger message is not moved, so the floor is the same at every
 * size: it is the cost of the hand-off alone, and a transport's ratio to it
 * at 1 KiB or 64 KiB shows what moving the bytes costs on top. It supports
 * strict alternation only (ping-pong), which is all it is measured on.
 */
#include "bench/spin.h"
#include "bench/transports.h"

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define LINE_BYTES   64
#define LINE_PAYLOAD (LINE_BYTES - 8)

/*
 * The shared line. Byte layout:
 *
 *   0         8                                                    64
 *   +---------+-----------------------------------------------------+
 *   | turn_seq| payload: the first 56 bytes of the current message  |
 *   +---------+-----------------------------------------------------+
 *
 * turn_seq: written by whichever side holds the turn. The sender end
 * writes odd values (1, 3, 5, ...), the receiver end even ones (2, 4, ...);
 * each side waits for the value its peer writes next. The payload is
 * written before, and read after, the turn_seq store/load that hands it
 * over, so it needs no atomics of its own.
 */
struct floor_line {
	_Atomic uint64_t turn_seq;
	unsigned char payload[LINE_PAYLOAD];
};

static_assert(sizeof(struct floor_line) == LINE_BYTES, "one cache line");
static_assert(offsetof(struct floor_line, turn_seq) == 0, "turn_seq at 0");
static_assert(offsetof(struct floor_line, payload) == 8, "payload at 8");
static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics are lock-free");

struct floor_end {
	struct floor_line *shm_line;
	uint64_t next_out; /* the turn_seq value our next send writes */
	uint64_t next_in;  /* the turn_seq value our next recv waits for */
};

static int floor_create(const struct bench_tr_config *cfg, void **shared)
{
	/*
	 * A whole page, so the line shares its cache line (and its page)
	 * with nothing else; anonymous and shared so it survives fork().
	 */
	void *mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct floor_line *line;

	(void)cfg;
	if (mem == MAP_FAILED) {
		return -errno;
	}
	line = mem;
	/* Relaxed: no other process exists yet; fork() publishes it. */
	atomic_store_explicit(&line->turn_seq, 0, memory_order_relaxed);
	*shared = line;
	return 0;
}

static int floor_open_end(void *shared, enum bench_tr_side side, void **end)
{
	struct floor_end *e = malloc(sizeof(*e));

	if (e == NULL) {
		return -ENOMEM;
	}
	e->shm_line = shared;
	e->next_out = side == BENCH_TR_SENDER ? 1 : 2;
	e->next_in = side == BENCH_TR_SENDER ? 2 : 1;
	*end = e;
	return 0;
}

static int floor_send(void *end, const void *buf, size_t len)
{
	struct floor_end *e = end;

	memcpy(e->shm_line->payload, buf,
	       len < LINE_PAYLOAD ? len : LINE_PAYLOAD);
	/*
	 * Release: pairs with the acquire load of turn_seq in floor_recv()
	 * of the peer, which then reads the payload written above.
	 */
	atomic_store_explicit(&e->shm_line->turn_seq, e->next_out,
			      memory_order_release);
	e->next_out += 2;
	return 0;
}

static ssize_t floor_recv(void *end, void *buf, size_t cap)
{
	struct floor_end *e = end;
	uint32_t spins = 0;

	/*
	 * Acquire: pairs with the release store of turn_seq in the peer's
	 * floor_send(), so the payload read below is the one it wrote.
	 */
	while (atomic_load_explicit(&e->shm_line->turn_seq,
				    memory_order_acquire) != e->next_in) {
		bench_spin_step(&spins);
	}
	memcpy(buf, e->shm_line->payload,
	       cap < LINE_PAYLOAD ? cap : LINE_PAYLOAD);
	e->next_in += 2;
	/* Only the hand-off is measured: report the whole message. */
	return (ssize_t)cap;
}

static void floor_close_end(void *end)
{
	free(end);
}

static void floor_destroy(void *shared)
{
	if (shared != NULL) {
		munmap(shared, 4096);
	}
}

const struct bench_tr_ops bench_tr_floor = {
    .name = "floor",
    .summary = "two processes spinning on one shared cache line",
    .flags = BENCH_TR_LATENCY,
    .create = floor_create,
    .open_end = floor_open_end,
    .send = floor_send,
    .recv = floor_recv,
    .close_end = floor_close_end,
    .destroy = floor_destroy,
};
