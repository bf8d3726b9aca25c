/*
 * chan.c - a request/reply channel's two single-writer rings (chan.h).
 * Records never wrap: one that does not fit before the end of the area
 * follows a PAD record to it, as in a topic's ring. Every value read from
 * the peer's segment (its tail, its head, a record's header) is copied once
 * and checked against this end's private positions before use.
 */
#include "ring/chan.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

static_assert(sizeof(struct sb_chan_hdr) <= SB_CHAN_HEADER_SIZE,
	      "channel header fits its page");
static_assert(offsetof(struct sb_chan_hdr, head) == 64, "head at 64");
static_assert(offsetof(struct sb_chan_hdr, sleeping) == 128, "sleeping at 128");
static_assert(offsetof(struct sb_chan_page, count) == 8, "count at 8");
static_assert(offsetof(struct sb_chan_page, state) == 12, "state at 12");

struct record {
	uint32_t len;
	uint32_t kind;
	uint64_t id;
};
static_assert(sizeof(struct record) == SB_CHAN_RECORD_HEADER,
	      "record header is 16 bytes");

static uint64_t record_size(uint64_t len)
{
	return (SB_CHAN_RECORD_HEADER + len + 15u) & ~(uint64_t)15u;
}

uint64_t sb_chan_segment_size(uint64_t capacity, uint64_t max_message)
{
	if (capacity < SB_CHAN_MIN_CAPACITY ||
	    capacity > SB_CHAN_MAX_CAPACITY ||
	    (capacity & (capacity - 1)) != 0 || max_message == 0 ||
	    max_message > capacity / 4) {
		return 0;
	}
	return SB_CHAN_HEADER_SIZE + capacity;
}

int sb_chan_end_init(struct sb_chan_end *e, void *own, const void *peer,
		     uint64_t capacity, uint32_t max_message)
{
	if (e == NULL || own == NULL || peer == NULL ||
	    sb_chan_segment_size(capacity, max_message) == 0) {
		return -EINVAL;
	}
	memset(e, 0, sizeof(*e));
	e->own = own;
	e->peer = peer;
	e->out = (uint8_t *)own + SB_CHAN_HEADER_SIZE;
	e->in = (const uint8_t *)peer + SB_CHAN_HEADER_SIZE;
	e->capacity = capacity;
	e->max_message = max_message;
	/* Our own segment: only we write it, so its values are ours (the
	 * broker made them zero). Checked all the same. */
	e->tail = atomic_load_explicit(&e->own->tail, memory_order_relaxed);
	e->head = atomic_load_explicit(&e->own->head, memory_order_relaxed);
	if ((e->tail | e->head) % 16u != 0) {
		return -EBADMSG;
	}
	return 0;
}

/* The peer's read position in our records, checked: between our tail
 * minus capacity and our tail, 16-aligned. */
static int peer_head(struct sb_chan_end *e, uint64_t *head)
{
	/* Pairs with the peer's release store in sb_chan_consume(): the
	 * bytes before it are no longer read. */
	uint64_t h = atomic_load_explicit(&e->peer->head, memory_order_acquire);

	if (h % 16u != 0 || h > e->tail || e->tail - h > e->capacity) {
		e->broken = true;
		return -EBADMSG;
	}
	*head = h;
	return 0;
}

int sb_chan_claim(struct sb_chan_end *e, uint64_t id, size_t len, void **buf)
{
	uint64_t head, size, off, need, at;
	struct record rec;
	int r;

	if (e->broken) {
		return -EBADMSG;
	}
	if (e->claim_next != 0) {
		return -EBUSY;
	}
	if (len > e->max_message) {
		return -EMSGSIZE;
	}
	r = peer_head(e, &head);
	if (r < 0) {
		return r;
	}
	size = record_size(len);
	off = e->tail & (e->capacity - 1);
	need = off + size > e->capacity ? e->capacity - off + size : size;
	if (e->capacity - (e->tail - head) < need) {
		return -EAGAIN;
	}
	at = e->tail;
	if (need != size) {
		rec = (struct record){
		    (uint32_t)(e->capacity - off - SB_CHAN_RECORD_HEADER),
		    SB_CHAN_KIND_PAD, 0};
		memcpy(e->out + off, &rec, sizeof(rec));
		at += e->capacity - off;
		off = 0;
	}
	rec = (struct record){(uint32_t)len, SB_CHAN_KIND_DATA, id};
	memcpy(e->out + off, &rec, sizeof(rec));
	e->claim_next = at + size;
	*buf = e->out + off + SB_CHAN_RECORD_HEADER;
	return 0;
}

bool sb_chan_commit(struct sb_chan_end *e)
{
	if (e->claim_next == 0) {
		return false;
	}
	e->tail = e->claim_next;
	e->claim_next = 0;
	/* Pairs with the reader's acquire load in sb_chan_peek(): the record
	 * is written before the tail says so. */
	atomic_store_explicit(&e->own->tail, e->tail, memory_order_release);
	/* Dekker with sb_chan_set_sleeping(): our tail store, then our look
	 * at the peer's mark; its mark, then its look at our tail. */
	atomic_thread_fence(memory_order_seq_cst);
	return atomic_load_explicit(&e->peer->sleeping, memory_order_relaxed) !=
	       0;
}

/* The peer's tail, checked: at or after our head, at most a capacity
 * ahead, 16-aligned. */
static int peer_tail(struct sb_chan_end *e, uint64_t *tail)
{
	/* Pairs with the release store in sb_chan_commit(). */
	uint64_t t = atomic_load_explicit(&e->peer->tail, memory_order_acquire);

	if (t % 16u != 0 || t < e->head || t - e->head > e->capacity) {
		e->broken = true;
		return -EBADMSG;
	}
	*tail = t;
	return 0;
}

/* Checks the record at e->head (tail: the peer's, checked): a PAD must end
 * exactly at the end of the area, a DATA record fit before it and before
 * the tail, within max_message. */
static int check_record(struct sb_chan_end *e, const struct record *rec,
			uint64_t tail)
{
	uint64_t off = e->head & (e->capacity - 1);
	uint64_t room = e->capacity - off; /* to the end of the area */

	if (rec->kind == SB_CHAN_KIND_PAD) {
		if (rec->len != room - SB_CHAN_RECORD_HEADER ||
		    tail - e->head < room) {
			return -EBADMSG;
		}
		return 0;
	}
	if (rec->kind != SB_CHAN_KIND_DATA || rec->len > e->max_message ||
	    record_size(rec->len) > room ||
	    record_size(rec->len) > tail - e->head) {
		return -EBADMSG;
	}
	return 0;
}

int sb_chan_peek(struct sb_chan_end *e, uint64_t *id, const void **data,
		 size_t *len)
{
	struct record rec;
	uint64_t tail;
	int r;

	if (e->broken) {
		return -EBADMSG;
	}
	r = peer_tail(e, &tail);
	/* At most one PAD precedes a record: the loop runs twice at most. */
	for (int pass = 0; r == 0 && pass < 2; pass++) {
		if (tail == e->head) {
			return -EAGAIN;
		}
		/* One copy of the header, checked, then used: the peer may
		 * rewrite it meanwhile. */
		memcpy(&rec, e->in + (e->head & (e->capacity - 1)),
		       sizeof(rec));
		if (check_record(e, &rec, tail) < 0) {
			break;
		}
		if (rec.kind == SB_CHAN_KIND_DATA) {
			*id = rec.id;
			*data = e->in + (e->head & (e->capacity - 1)) +
				SB_CHAN_RECORD_HEADER;
			*len = rec.len;
			e->peek_next = e->head + record_size(rec.len);
			return 0;
		}
		e->head += e->capacity - (e->head & (e->capacity - 1));
		atomic_store_explicit(&e->own->head, e->head,
				      memory_order_release);
	}
	e->broken = true;
	return -EBADMSG;
}

void sb_chan_consume(struct sb_chan_end *e)
{
	if (e->peek_next == 0) {
		return;
	}
	e->head = e->peek_next;
	e->peek_next = 0;
	/* Pairs with the writer's acquire load in peer_head(). */
	atomic_store_explicit(&e->own->head, e->head, memory_order_release);
}

bool sb_chan_pending(const struct sb_chan_end *e)
{
	return !e->broken &&
	       atomic_load_explicit(&e->peer->tail, memory_order_relaxed) !=
		   e->head;
}

void sb_chan_set_sleeping(struct sb_chan_end *e, bool on)
{
	atomic_store_explicit(&e->own->sleeping, on ? 1u : 0u,
			      memory_order_relaxed);
	if (on) {
		/* Dekker with sb_chan_commit(), see there. */
		atomic_thread_fence(memory_order_seq_cst);
	}
}
