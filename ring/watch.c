/*
 * watch.c - watching a reader from another thread: its position, and
 * waiting until it has something to read (what the library's pollable
 * descriptor runs on).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "ring/ring_private.h"

uint64_t sb_ring_reader_position(const struct sb_ring_reader *rd)
{
	if (rd == NULL || rd->ring == NULL) {
		return 0;
	}
	if (rd->ring->mode == SB_RING_QUEUE) {
		/* acquire: pairs with the seq_cst store of queue_cursor in
		 * sbr_queue_consume(); a stale value only makes a watcher
		 * report a message that another consumer then takes. */
		return atomic_load_explicit(&rd->ring->shm_ctl->queue_cursor,
					    memory_order_acquire);
	}
	return rd->cursor;
}

int sb_ring_wait_readable(const struct sb_ring_reader *rd_view, uint64_t pos,
			  _Atomic uint32_t *stop, int timeout_ms)
{
	struct sb_ring *ring;
	struct sb_ring_ctl *ctl;
	struct sb_ring_slot *slot;
	_Atomic uint64_t *tail;
	const struct timespec *deadline;
	struct timespec dl;
	uint32_t seen;
	int r;

	if (rd_view == NULL || rd_view->ring == NULL || timeout_ms < -1 ||
	    rd_view->slot >= rd_view->ring->slot_count) {
		return -EINVAL;
	}
	ring = rd_view->ring;
	ctl = ring->shm_ctl;
	slot = rd_view->slot_mem;
	tail = &ring->shm_hdr->writer_tail;
	deadline = sb_deadline_init(timeout_ms, &dl);
	for (;;) {
		/* acquire: pairs with the seq_cst store in the stopper, which
		 * comes before its sb_ring_wake_readers(). */
		if (stop != NULL &&
		    atomic_load_explicit(stop, memory_order_acquire) != 0) {
			return -ECANCELED;
		}
		/* acquire: pairs with the release store of writer_tail in
		 * commit_records(). */
		if (atomic_load_explicit(tail, memory_order_acquire) != pos) {
			return 0;
		}
		if (atomic_load_explicit(&slot->slot_state,
					 memory_order_relaxed) !=
		    rd_view->slot_state) {
			return -EIDRM; /* evicted (sb_ring_slot_evict() woke us)
					*/
		}
		if (timeout_ms == 0) {
			return -EAGAIN;
		}
		if (sb_deadline_passed(deadline)) {
			return -ETIMEDOUT;
		}
		sbr_take_sleeper(ring, slot);
		/* acquire: pairs with the release bump in sbr_bump_and_wake().
		 * A stopper sets *stop before it bumps data_seq, so if we see
		 * its bump here we see its stop below; if we do not, the
		 * futex wait returns at once or is woken by it. */
		seen =
		    atomic_load_explicit(&ctl->data_seq, memory_order_acquire);
		r = 0;
		if ((stop == NULL ||
		     atomic_load_explicit(stop, memory_order_acquire) == 0) &&
		    atomic_load_explicit(tail, memory_order_seq_cst) == pos) {
			r = sb_futex_wait(&ctl->data_seq, seen, deadline);
		}
		sbr_give_back_sleeper(ring, slot);
		if (r < 0 && r != -EINTR && r != -ETIMEDOUT) {
			return r;
		}
	}
}

void sb_ring_wake_readers(struct sb_ring *ring)
{
	if (ring != NULL) {
		sbr_bump_and_wake(&ring->shm_ctl->data_seq);
	}
}
