/*
 * chan.h - a request/reply channel between one requester and one server
 * (docs/shm-layout.md, "Request/reply channels"), and the broker's pages
 * that the parties only read. A channel is two segments: each party maps
 * its own read-write (its outgoing records, and its read position in the
 * other's) and the other's read-only, so that every shared word has
 * exactly one writer. Each side keeps private copies of its own positions
 * and checks every value it reads from the other's segment before use: a
 * hostile peer can break only its own channel (-EBADMSG), never make a
 * reader read or write outside its mappings.
 *
 * An end (struct sb_chan_end) is used by one thread at a time. Errors:
 * -EAGAIN (no record, or no room), -EMSGSIZE (over max_message), -EBADMSG
 * (the peer broke the layout rules: the channel is unusable from now on),
 * -EINVAL.
 */
#ifndef SB_RING_CHAN_H
#define SB_RING_CHAN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A segment: this header page, then `capacity` bytes of records. */
#define SB_CHAN_HEADER_SIZE 4096u
/* A record's header: len (4), kind (4), correlation id (8). */
#define SB_CHAN_RECORD_HEADER 16u
#define SB_CHAN_KIND_DATA     1u
#define SB_CHAN_KIND_PAD      2u
/* Geometry the broker may give a channel. */
#define SB_CHAN_MIN_CAPACITY 4096u
#define SB_CHAN_MAX_CAPACITY (1u << 30)

/* The header page of one party's segment. Written only by its owner. */
struct sb_chan_hdr {
	/* 0: end of the records committed in this segment (the owner's
	 * outgoing ring); stored release after the record. */
	_Atomic uint64_t tail;
	uint8_t pad0[56];
	/* 64: how far the owner has read the other segment's records, so
	 * that the other's writer knows its room; stored release after the
	 * reader is done with the bytes. */
	_Atomic uint64_t head;
	uint8_t pad1[56];
	/* 128: nonzero while the owner is (about to be) asleep on its
	 * eventfd: the other side then writes that eventfd after a commit. */
	_Atomic uint32_t sleeping;
	uint8_t pad2[60];
};

/* A page the broker writes and the parties map read-only (4096 bytes). One
 * for each service (gen: bumped when its set of servers changes; count:
 * its servers), each server (gen: bumped when the broker gives it a new
 * channel) and each channel (state). */
struct sb_chan_page {
	_Atomic uint64_t gen;	/* 0 */
	_Atomic uint32_t count; /* 8 */
	_Atomic uint32_t state; /* 12: a channel's, SB_CHAN_* below */
};
#define SB_CHAN_PAGE_SIZE 4096u

/* A channel's state, in its page. */
#define SB_CHAN_OPEN	       1u
#define SB_CHAN_SERVER_GONE    2u /* the server's connection closed */
#define SB_CHAN_REQUESTER_GONE 3u /* the requester closed or died */

/* One party's view of a channel. */
struct sb_chan_end {
	struct sb_chan_hdr *own;	/* read-write */
	const struct sb_chan_hdr *peer; /* read-only */
	uint8_t *out;			/* own records */
	const uint8_t *in;		/* the peer's records */
	uint64_t capacity;		/* a power of two */
	uint32_t max_message;		/* <= capacity / 4 */
	uint64_t tail;			/* private copy of own->tail */
	uint64_t head;			/* private copy of own->head */
	uint64_t claim_next; /* the tail after the held claim, or 0 */
	uint64_t peek_next;  /* the head after the peeked record, or 0 */
	bool broken;	     /* the peer broke the rules: -EBADMSG */
};

/* Bytes of a segment of `capacity`; 0 for a capacity or max_message the
 * channel does not take. */
uint64_t sb_chan_segment_size(uint64_t capacity, uint64_t max_message);

/* Sets up `e` over the mappings of the two segments (each
 * sb_chan_segment_size() bytes); starts from the positions the owner's
 * segment holds, which the broker made zero. */
int sb_chan_end_init(struct sb_chan_end *e, void *own, const void *peer,
		     uint64_t capacity, uint32_t max_message);

/* Reserves a record of `len` bytes with correlation id `id` and points
 * *buf at its payload. -EAGAIN when the peer has not read enough for it
 * (never waits), -EMSGSIZE, -EBADMSG, -EBUSY (a claim is held). */
int sb_chan_claim(struct sb_chan_end *e, uint64_t id, size_t len, void **buf);

/* Commits the held claim. Returns true when the peer sleeps and must be
 * woken (its eventfd written). */
bool sb_chan_commit(struct sb_chan_end *e);

/* The next record of the peer, not consumed: its id, its payload (in the
 * peer's read-only memory: copy it, the peer may change it) and length.
 * 0, -EAGAIN (none), -EBADMSG. */
int sb_chan_peek(struct sb_chan_end *e, uint64_t *id, const void **data,
		 size_t *len);

/* Consumes the peeked record (its bytes may be reused by the peer). */
void sb_chan_consume(struct sb_chan_end *e);

/* Whether the peer has committed records this end has not read (a look at
 * its tail only). */
bool sb_chan_pending(const struct sb_chan_end *e);

/* Marks this end asleep (or awake): before it sleeps, the caller marks,
 * looks again at every channel (sb_chan_pending()), and only then sleeps:
 * the seq_cst fence here and in sb_chan_commit() make either the look see
 * the record or the writer see the mark. */
void sb_chan_set_sleeping(struct sb_chan_end *e, bool on);

#endif
