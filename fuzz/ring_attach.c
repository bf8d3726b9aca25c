/*
 * ring_attach.c - libFuzzer target for attaching to and using a ring whose
 * shared memory holds arbitrary bytes: what a subscriber or producer faces
 * when another process sharing the topic is buggy or hostile. The ring code
 * promises that any bytes give an error, never a read or write outside the
 * two segments, a hang or a lock left held; this target holds it to that.
 *
 * Input layout: the bytes of the two segments of a ring with capacity 4096
 * and up to 2 slots, then an optional script (a shorter input is padded with
 * zeros, so a truncated segment reads as zeros):
 *
 *   0       4096          8192          12288      12288 + n
 *   +-------+-------------+-------------+----------+
 *   | data  | data area   | control     | script   |
 *   | header| (records)   | segment     | (flags,  |
 *   +-------+-------------+-------------+ ops...)  |
 *
 * The segments are copied into one fixed mapping where each is fenced by
 * PROT_NONE guard pages, so an access one byte outside faults. When the
 * header says the slots are segments of their own (slot_home, as in the
 * broker's topics), each slot is a guarded page of its own whose first 128
 * bytes are the input's inline slot of the same index (so the input
 * decides them too), and the writer sees them through a slot map. The
 * reader takes the last slot (the one the seeds leave free); under
 * FLAG_HOLD_SLOT slot 0 of two is held instead (in use, unmapped), as a
 * slot a restarted broker awaits is. The script's
 * first byte holds flags (see FLAG_*), each later byte is one operation
 * (see run_op()); without a script a default one runs.
 *
 * The two lock cells (writer_lock at 1024 + 128 of the data segment,
 * queue_lock at 512 of the control segment, 64 bytes each) are fuzzed like
 * every other byte: a lock naming a thread that cannot exist is taken over at
 * once, one naming a live thread makes the call time out. Flags can instead
 * free both cells (as sb_ring_format_ctl() makes them) or mark one as left by a
 * dead holder, to drive the repair paths. Only a cell naming this very thread
 * is cleared, since a call then rightly answers -EDEADLK ("you hold it
 * already").
 *
 * Checksummed rings (SB_RING_FLAG_CHECKSUM): a flag turns any input into
 * one (version 2, flags bit 0), so that every seed drives the readers'
 * verification and their search for the next intact record; another runs
 * sb_ring_verify_truncate() first, as the broker does on a persisted ring,
 * and checks that what it leaves passes its own walk unchanged.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ring/ring.h"
#include "ring/ring_layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PAGE	      4096u
#define CAPACITY      4096u
#define DATA_SIZE     (SB_RING_HEADER_SIZE + CAPACITY)
#define CTL_SIZE      PAGE /* 1024 + 2 * 128 slots, rounded to a page */
#define SEGMENTS_SIZE (DATA_SIZE + CTL_SIZE)
#define MAX_OPS	      64

/* Script flags (the script's first byte). */
#define FLAG_FREE_LOCKS	 0x01u /* both lock cells free; else the input's */
#define FLAG_WRITER_DIED 0x02u /* writer_lock's owner died holding it */
#define FLAG_QUEUE_DIED	 0x04u /* queue_lock's owner died holding it */
#define FLAG_EARLIEST	 0x08u /* open readers at the oldest message */
#define FLAG_READ_ONLY	 0x10u /* readers see the data segment read-only */
#define FLAG_CHECKSUM	 0x20u /* the header says: records are checksummed */
#define FLAG_VERIFY	 0x40u /* sb_ring_verify_truncate() before the ops */
#define FLAG_HOLD_SLOT	 0x80u /* slot segments: slot 1 in use, unmapped */

static const uint8_t DEFAULT_SCRIPT[] = {FLAG_FREE_LOCKS | FLAG_EARLIEST |
					     FLAG_READ_ONLY,
					 0x00,
					 0x00,
					 0x02,
					 0x00,
					 0x04 | 0x40,
					 0x05 | 0x80,
					 0x02,
					 0x00,
					 0x00};

/* guard | data | guard | control | guard | slot 0 | guard | slot 1 | guard */
static unsigned char *g_base;
static unsigned char *g_data;
static unsigned char *g_ctl;
static unsigned char *g_slot[2];
static int g_data_prot;

/* The writer's view of the slot segments, for a ring that has them. */
static struct sb_ring_slot *g_slot_list[2];
static struct sb_ring_slot_map g_slot_map = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .slots = g_slot_list,
};

static void die_if(int bad)
{
	if (bad) {
		abort();
	}
}

static void map_once(void)
{
	size_t total = 7 * PAGE + DATA_SIZE + CTL_SIZE;

	g_base = mmap(NULL, total, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	die_if(g_base == MAP_FAILED);
	g_data = g_base + PAGE;
	g_ctl = g_data + DATA_SIZE + PAGE;
	g_slot[0] = g_ctl + CTL_SIZE + PAGE;
	g_slot[1] = g_slot[0] + 2 * PAGE;
	die_if(mprotect(g_base, PAGE, PROT_NONE) != 0);
	die_if(mprotect(g_data + DATA_SIZE, PAGE, PROT_NONE) != 0);
	die_if(mprotect(g_ctl + CTL_SIZE, PAGE, PROT_NONE) != 0);
	die_if(mprotect(g_slot[0] + PAGE, PAGE, PROT_NONE) != 0);
	die_if(mprotect(g_slot[1] + PAGE, PAGE, PROT_NONE) != 0);
	g_data_prot = PROT_READ | PROT_WRITE;
}

/* Maps the data segment read-only while readers work (as a pure subscriber
 * maps it), read-write while writers do; a write by a reader faults. */
static void data_prot(int prot)
{
	if (prot != g_data_prot) {
		die_if(mprotect(g_data, DATA_SIZE, prot) != 0);
		g_data_prot = prot;
	}
}

/* The ids of this thread as a lock cell holds them. */
static uint64_t self_word(void)
{
	return (uint64_t)getpid() << 32 | (uint32_t)gettid();
}

/*
 * Sets up a lock cell: free, left by a holder that died (ids no live
 * thread has: the next taker repairs), or as the input has it, unless it
 * names this thread.
 */
static void prepare_lock(struct sb_shm_lock *l, int free_it, int died)
{
	if (free_it) {
		memset(l, 0, sizeof(*l));
	}
	if (died) {
		atomic_store(&l->owner, (uint64_t)INT32_MAX << 32 | 1u);
	}
	if (atomic_load(&l->owner) == self_word()) {
		atomic_store(&l->owner, 0);
	}
}

/* No call may return with a lock still held by this thread: a topic would
 * be wedged. */
static void assert_locks_free(struct sb_ring_ctl *ctl)
{
	struct sb_ring_header *hdr = (struct sb_ring_header *)g_data;

	die_if(sb_shm_lock_held(&hdr->wctl.writer_lock) ||
	       sb_shm_lock_held(&ctl->queue_lock));
}

/* Errors a call on a corrupted ring may return (ring.h's list). */
static void assert_result(long r)
{
	die_if(!(r >= 0 || r == -EBADMSG || r == -EPROTO || r == -EAGAIN ||
		 r == -EMSGSIZE || r == -EUSERS || r == -ESTALE ||
		 r == -EBUSY || r == -ENOENT || r == -ETIMEDOUT ||
		 r == -EIDRM));
}

struct state {
	struct sb_ring ring;
	struct sb_ring_reader rd;
	int opened;
	int peeking;
	int start;
	int read_only;
	unsigned char buf[CAPACITY];
};

static void reader_prot(struct state *st)
{
	data_prot(st->read_only ? PROT_READ : PROT_READ | PROT_WRITE);
}

/* For a ring with slot segments: each slot's page from the input's inline
 * slot of that index, and the writer's map of them (current: nothing to
 * refresh). */
static void set_up_slot_segments(struct sb_ring *ring, int hold)
{
	const struct sb_ring_header *hdr = (const void *)g_data;

	for (uint32_t i = 0; i < 2; i++) {
		memset(g_slot[i], 0, PAGE);
		memcpy(g_slot[i],
		       g_ctl + SB_RING_CTL_SLOTS_OFFSET +
			   i * sizeof(struct sb_ring_slot),
		       sizeof(struct sb_ring_slot));
		g_slot_list[i] = i < ring->slot_count
				     ? (struct sb_ring_slot *)g_slot[i]
				     : NULL;
	}
	if (hold && ring->slot_count == 2) {
		g_slot_list[0] = SB_RING_SLOT_HOLD;
	}
	g_slot_map.count = ring->slot_count;
	g_slot_map.gen = atomic_load(&hdr->slot_gen);
	g_slot_map.current = 1;
	sb_ring_set_slot_map(ring, &g_slot_map);
}

static void open_reader(struct state *st)
{
	int r;

	reader_prot(st);
	if (st->ring.slot_home == SB_RING_SLOTS_SEGMENTS) {
		uint32_t last = st->ring.slot_count - 1;

		r = sb_ring_reader_open_slot(
		    &st->ring, (struct sb_ring_slot *)g_slot[last], last,
		    st->start, &st->rd);
	} else {
		r = sb_ring_reader_open(&st->ring, st->start, &st->rd);
	}
	assert_result(r);
	st->opened = r == 0;
}

static void check_payload(const struct state *st, const void *p, uint32_t len)
{
	const unsigned char *area = g_data + SB_RING_HEADER_SIZE;

	die_if(len > st->ring.max_message);
	die_if((const unsigned char *)p < area ||
	       (const unsigned char *)p + len > area + CAPACITY);
}

/* One operation; the low 3 bits choose it, the rest is its argument. */
static void run_op(struct state *st, uint8_t op)
{
	struct sb_ring_claim claim;
	const void *p;
	uint32_t len = (uint32_t)(op >> 3) * 37u;
	ssize_t n;
	int r;

	switch (op & 7u) {
	case 0: /* receive into a buffer large enough for anything */
	case 1: /* receive into a small one: -EMSGSIZE keeps the message */
		if (!st->opened) {
			return;
		}
		reader_prot(st);
		n = sb_ring_receive(&st->rd, st->buf,
				    (op & 7u) == 0 ? sizeof(st->buf) : op >> 3,
				    0);
		assert_result(n);
		die_if(n > (ssize_t)st->ring.max_message);
		break;
	case 2: /* peek and release */
	case 3: /* peek, and release only after the next operation */
		if (!st->opened || st->peeking) {
			return;
		}
		reader_prot(st);
		r = sb_ring_peek(&st->rd, &p, &len, 0);
		assert_result(r);
		if (r == 0) {
			check_payload(st, p, len);
			memcpy(st->buf, p, len);
			if ((op & 7u) == 2) {
				assert_result(sb_ring_release(&st->rd));
			} else {
				st->peeking = 1;
			}
		}
		return; /* a held queue peek holds queue_lock */
	case 4:		/* publish */
		data_prot(PROT_READ | PROT_WRITE);
		len %= st->ring.max_message + 1;
		memset(st->buf, op, len);
		r = sb_ring_publish(&st->ring, st->buf, len, 0);
		die_if(r == -EDEADLK);
		assert_result(r);
		break;
	case 5: /* claim and commit */
	case 6: /* claim and abort */
		data_prot(PROT_READ | PROT_WRITE);
		len %= st->ring.max_message + 1;
		r = sb_ring_claim(&st->ring, len, &claim, 0);
		assert_result(r);
		if (r == 0) {
			check_payload(st, claim.data, len);
			memset(claim.data, op, len);
			r = (op & 7u) == 5 ? sb_ring_commit(&st->ring, &claim)
					   : sb_ring_abort(&st->ring, &claim);
			assert_result(r);
		}
		break;
	default: /* close the reader and open another */
		if (st->peeking) {
			return;
		}
		if (st->opened) {
			assert_result(sb_ring_reader_close(&st->rd));
		}
		st->start = (op >> 3) & 1 ? SB_RING_START_EARLIEST
					  : SB_RING_START_LATEST;
		open_reader(st);
		break;
	}
	if (st->peeking) {
		reader_prot(st);
		r = sb_ring_release(&st->rd);
		assert_result(r);
		st->peeking = 0;
	}
	assert_locks_free(st->ring.shm_ctl);
}

/*
 * As the broker does with a persisted ring before reusing it. What it
 * leaves must be a ring that a second walk keeps whole: positions within
 * the invariants, nothing more to drop.
 */
static void verify_persisted(struct sb_ring *ring)
{
	struct sb_ring_verify_report v;
	uint64_t tail, oldest;
	int r;

	data_prot(PROT_READ | PROT_WRITE);
	r = sb_ring_verify_truncate(ring, &v);
	die_if(r != 0 && r != -EBADMSG);
	if (r != 0) {
		return;
	}
	tail = atomic_load(&ring->shm_hdr->writer_tail);
	oldest = atomic_load(&ring->shm_hdr->writer_oldest);
	die_if(tail < oldest || tail - oldest > CAPACITY || tail % 16 != 0);
	die_if(sb_ring_verify_truncate(ring, &v) != 0 || v.dropped_bytes != 0 ||
	       v.dropped != 0 ||
	       atomic_load(&ring->shm_hdr->writer_tail) != tail);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct state st;
	struct sb_ring_ctl *ctl;
	const uint8_t *script = DEFAULT_SCRIPT;
	size_t nscript = sizeof(DEFAULT_SCRIPT);
	uint8_t flags;
	int r;

	if (g_base == NULL) {
		map_once();
	}
	data_prot(PROT_READ | PROT_WRITE);
	memset(g_data, 0, DATA_SIZE);
	memset(g_ctl, 0, CTL_SIZE);
	if (size > SEGMENTS_SIZE) {
		script = data + SEGMENTS_SIZE;
		nscript = size - SEGMENTS_SIZE;
		size = SEGMENTS_SIZE;
	}
	memcpy(g_data, data, size < DATA_SIZE ? size : DATA_SIZE);
	if (size > DATA_SIZE) {
		memcpy(g_ctl, data + DATA_SIZE, size - DATA_SIZE);
	}
	flags = script[0];
	if (flags & FLAG_CHECKSUM) {
		struct sb_ring_header *hdr = (struct sb_ring_header *)g_data;

		hdr->version = SB_RING_VERSION_FLAGS;
		hdr->flags = SB_RING_FLAG_CHECKSUM;
	}
	ctl = (struct sb_ring_ctl *)g_ctl;
	prepare_lock(&((struct sb_ring_header *)g_data)->wctl.writer_lock,
		     flags & FLAG_FREE_LOCKS, flags & FLAG_WRITER_DIED);
	prepare_lock(&ctl->queue_lock, flags & FLAG_FREE_LOCKS,
		     flags & FLAG_QUEUE_DIED);

	memset(&st, 0, sizeof(st));
	st.read_only = (flags & FLAG_READ_ONLY) != 0;
	st.start = flags & FLAG_EARLIEST ? SB_RING_START_EARLIEST
					 : SB_RING_START_LATEST;
	reader_prot(&st);
	r = sb_ring_attach(&st.ring, g_data, DATA_SIZE, g_ctl, CTL_SIZE);
	die_if(!(r == 0 || r == -EBADMSG || r == -EPROTO || r == -EAGAIN));
	if (getenv("SB_FUZZ_VERBOSE") != NULL) {
		/* For whoever writes seeds: did this one get past attach? */
		fprintf(stderr, "ring_attach: attach %d, script %zu bytes\n", r,
			nscript);
	}
	if (r != 0) {
		return 0;
	}
	die_if(st.ring.capacity != CAPACITY || st.ring.slot_count == 0 ||
	       st.ring.slot_count > 2);
	st.ring.spin = 0; /* timeouts are 0: nothing may spin anyway */
	if (flags & FLAG_VERIFY) {
		verify_persisted(&st.ring);
	}

	if (st.ring.slot_home == SB_RING_SLOTS_SEGMENTS) {
		set_up_slot_segments(&st.ring, flags & FLAG_HOLD_SLOT);
	}
	open_reader(&st);
	assert_locks_free(ctl);
	for (size_t i = 1; i < nscript && i <= MAX_OPS; i++) {
		run_op(&st, script[i]);
	}
	if (st.opened) {
		reader_prot(&st);
		assert_result(sb_ring_reader_close(&st.rd));
	}
	assert_locks_free(ctl);
	return 0;
}
