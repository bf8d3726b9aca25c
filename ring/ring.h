/*
 * ring.h - a topic's ring buffer in shared memory: formatting, attaching,
 * publishing (copy and claim/commit) and reading (copy and peek/release) for
 * broadcast subscribers and queue consumers. The broker and the bus client
 * are thin layers over these calls; the layout is in ring_layout.h.
 *
 * Threads: an sb_ring may be shared by threads for publishing (each claim is
 * its own sb_ring_claim, and claim and commit must run on the same thread,
 * because the claim holds writer_lock). An sb_ring_reader is
 * used by one thread at a time.
 *
 * Errors are negative errno values: -EINVAL (bad argument), -EMSGSIZE
 * (message over max_message, or a receive buffer too small: the message is
 * kept), -EAGAIN (would wait and timeout_ms is 0, or a full ring with the
 * reject policy), -ETIMEDOUT, -EBADMSG (corrupted shared memory: a value
 * outside the geometry), -EPROTO (unknown layout version), -EUSERS (no free
 * subscriber slot), -ESTALE (a peeked message was overwritten while held),
 * -ENOTRECOVERABLE (a lock left unusable), -EDEADLK (this thread holds a
 * claim on the ring and publishes or claims again), -EIDRM (the reader was
 * evicted: its slot was freed under it by sb_ring_slot_evict()).
 */
#ifndef SB_RING_H
#define SB_RING_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* The layout's structs (ring_layout.h), which only ring/ looks into. */
struct sb_ring_header;
struct sb_ring_wctl;
struct sb_ring_ctl;
struct sb_ring_slot;

/* Geometry and values the layout stores, as callers pass them. */
#define SB_RING_HEADER_SIZE	  4096u /* the data segment's header page */
#define SB_RING_NAME_SIZE	  256u	/* a topic name, with its NUL padding */
#define SB_RING_SLOTS_INLINE	  0u	/* slots in the control segment */
#define SB_RING_SLOTS_SEGMENTS	  1u	/* each slot in a segment of its own */
#define SB_RING_SLOT_SEGMENT_SIZE 4096u /* one subscriber's slot segment */
#define SB_RING_RECORD_ALIGN	  16u
#define SB_RING_MIN_CAPACITY	  4096u
#define SB_RING_MAX_CAPACITY	  (1u << 30)
#define SB_RING_MAX_SLOTS	  4096u

/* Flags, fixed by the creator. Any other bit set: a layout this code does
 * not know (-EPROTO at attach). */
#define SB_RING_FLAG_CHECKSUM 1u /* DATA records carry a crc32c word */
/* Each DATA payload starts with SB_RING_METADATA_BYTES of metadata, the
 * publish time and the publisher's id, which the library writes and
 * strips (client/bus.c); the ring itself carries them as payload. */
#define SB_RING_FLAG_METADATA  2u
#define SB_RING_FLAGS_KNOWN    (SB_RING_FLAG_CHECKSUM | SB_RING_FLAG_METADATA)
#define SB_RING_METADATA_BYTES 16u

/* Modes and overflow policies (the public enums have the same values). */
#define SB_RING_BROADCAST 1u
#define SB_RING_QUEUE	  2u
#define SB_RING_BLOCK	  1u
#define SB_RING_OVERWRITE 2u
#define SB_RING_REJECT	  3u

/* Topic geometry and policies, for sb_ring_layout() and sb_ring_format(). */
struct sb_ring_config {
	uint64_t capacity;    /* data area bytes: power of two, 4 KiB..1 GiB */
	uint32_t max_message; /* 0..capacity/4 */
	uint32_t slot_count;  /* subscriber slots: 1..SB_RING_MAX_SLOTS */
	uint32_t mode;	      /* SB_RING_BROADCAST or SB_RING_QUEUE */
	uint32_t overflow;    /* SB_RING_BLOCK, _OVERWRITE or _REJECT */
	uint32_t flags;	      /* SB_RING_FLAG_*: CHECKSUM, METADATA, or 0 */
	/* SB_RING_SLOTS_INLINE (0): the slots follow the control segment's
	 * header, for rings whose processes trust one another (tests, the
	 * benchmark's internal rows); SB_RING_SLOTS_SEGMENTS: each
	 * subscriber's slot is a segment of its own (the broker's topics). */
	uint32_t slot_home;
};

/*
 * The slot segments of a ring whose slots live in segments of their own,
 * as one process sees them: a writer (the bus client maps the segments the
 * broker names, read-only) or the broker (its own read-write mappings). It
 * lives in the process's private memory and belongs to the caller, who
 * sets it with sb_ring_set_slot_map().
 *
 * Writers scan it when they reclaim, under `lock`: first they compare the
 * header's slot_gen with `gen` and, when it moved or `current` is 0, call
 * `refresh` (which brings `slots` up to the broker's set; 0 on success).
 * Until a refresh succeeds they reclaim nothing, so a subscriber they do
 * not know is never overtaken.
 */
struct sb_ring_slot_map {
	pthread_mutex_t lock;
	uint64_t gen;
	int current;
	int (*refresh)(struct sb_ring_slot_map *map);
	void *ctx;	/* for refresh */
	uint32_t count; /* entries in slots: the ring's slot_count */
	/* Per slot index: NULL (not in use), SB_RING_SLOT_HOLD (in use, but
	 * its segment is not mapped here: hold everything back), or this
	 * process's mapping of the slot's segment. */
	struct sb_ring_slot **slots;
};

/* The marker of a slot in use whose segment a writer has not mapped. Never
 * dereferenced. */
extern struct sb_ring_slot sb_ring_slot_hold;
#define SB_RING_SLOT_HOLD (&sb_ring_slot_hold)

/*
 * One process's handle on a ring: pointers into its mappings and a private
 * copy of the geometry, taken once at attach and never re-read from shared
 * memory (a writer with bad intent could change the shared copy).
 */
struct sb_ring {
	struct sb_ring_header *shm_hdr; /* read-only for pure subscribers */
	unsigned char *shm_data;	/* the data area */
	struct sb_ring_wctl *shm_wctl;	/* in the header: writers only */
	struct sb_ring_ctl *shm_ctl;
	struct sb_ring_slot *shm_slots;	   /* SB_RING_SLOTS_INLINE only */
	struct sb_ring_slot_map *slot_map; /* SB_RING_SLOTS_SEGMENTS */
	uint32_t slot_home;
	uint64_t ctl_size; /* the control segment's, as the header says */
	uint64_t capacity;
	uint64_t mask;
	uint32_t max_message;
	uint32_t slot_count;
	uint32_t mode;
	uint32_t overflow;
	uint32_t flags; /* SB_RING_FLAG_* */
	/* What record_size() adds to a payload length before rounding it
	 * down to 16: the header, the checksum word if any, and 15. */
	uint64_t record_fixed;
	uint32_t spin; /* polls before sleeping on a futex */
	/* This handle's copy of the writer positions as of its last commit,
	 * good while writer_epoch still says own.epoch: a writer publishing
	 * alone then never reads the line readers poll (write.c). */
	struct sb_writer_view {
		uint64_t tail;
		uint64_t oldest; /* may lag the shared one: less room only */
		uint64_t next_seq;
		uint64_t epoch;
	} own;
	int own_valid;
	/* The solo entry (+ 1) of this handle's publish or claim in
	 * progress without the lock, for solo_leave(). */
	uint32_t solo_entry;
	/* Commits in a row, by this handle, that found no reader asleep
	 * (for disarming commit_fence); touched by the one writer. */
	uint32_t quiet_commits;
};

/* Bytes a DATA record of `len` payload bytes takes in `ring`: header,
 * payload and, in a checksummed ring, the checksum word, rounded up to 16.
 * The one place this is computed (the broker's write-back walks records
 * too). */
static inline uint64_t sb_ring_record_size(const struct sb_ring *ring,
					   uint64_t len)
{
	return (len + ring->record_fixed) &
	       ~(uint64_t)(SB_RING_RECORD_ALIGN - 1);
}

/* A claimed, not yet committed record (zero-copy publishing). */
struct sb_ring_claim {
	void *data;   /* where to write the payload */
	uint32_t len; /* bytes claimed */
	uint64_t pos; /* the record's position */
	int active;   /* 1 between claim and commit/abort */
	int solo;     /* taken by the solo writer, without the lock */
};

/* A subscriber (broadcast) or consumer (queue) of one ring. */
struct sb_ring_reader {
	struct sb_ring *ring;
	uint32_t slot;		       /* index of its slot */
	struct sb_ring_slot *slot_mem; /* its slot (written by it alone) */
	uint32_t slot_state;	       /* the state it attached with */
	uint64_t cursor;	       /* broadcast: next position to read */
	uint64_t known_tail;	       /* the writer_tail it saw last */
	uint64_t expected_seq;	       /* broadcast: seq it expects next */
	int seq_unknown;	       /* 1: the next record's seq sets it */
	uint64_t join_pos;	       /* where it joined */
	uint64_t lost;	   /* messages it missed (overwrite policy) */
	uint64_t received; /* messages delivered */
	/* After skipping a bad record (broadcast): 1 + the position it
	 * moved to, else 0. expected_seq was then a guess, and the seq of
	 * the record found there is taken as it is. */
	uint64_t resync_pos;
	int peeking;	   /* 1 between peek and release */
	uint64_t peek_pos; /* the peeked record's position */
	uint64_t peek_end; /* position after it */
	uint64_t peek_seq;
	uint64_t last_seq; /* seq of the message last received or peeked */
	/* Queue: the seq from which records are not known to be taken, by
	 * this consumer's own takes and the others' claims it has seen. */
	uint64_t queue_hint;
	/* Queue: the cursor this consumer stored last (0: none yet). */
	uint64_t queue_cursor_stored;
};

/* The longest a queue consumer waits for another that holds the queue lock
 * (alive or not) before it takes the lock over: a peek kept longer than
 * this may have its message taken by another consumer, and its release
 * then returns -ESTALE. */
#define SB_RING_QUEUE_HOLD_MS 1000

#define SB_RING_START_LATEST   0
#define SB_RING_START_EARLIEST 1

/*
 * Checks `cfg` and computes the two segment sizes it needs. Returns 0, or
 * -EINVAL with nothing written when the geometry is out of range. This is
 * the one place the limits on capacity and max_message live.
 */
int sb_ring_layout(const struct sb_ring_config *cfg, uint64_t *data_size,
		   uint64_t *ctl_size);

/*
 * Formats fresh (zeroed) segments for `cfg` and publishes the ready word
 * last. Returns 0 or -EINVAL (bad geometry or segments smaller than
 * sb_ring_layout() says).
 */
int sb_ring_format(void *data, uint64_t data_size, void *ctl, uint64_t ctl_size,
		   const struct sb_ring_config *cfg);

/*
 * Formats only a fresh control segment for `cfg`, with the queue's shared
 * cursor at `queue_start`: for a persisted data segment that survived a
 * broker restart (its header and messages are kept; the control segment,
 * locks and slots, is always new). Then sb_ring_attach() checks the pair.
 * Returns 0 or -EINVAL.
 */
int sb_ring_format_ctl(void *ctl, uint64_t ctl_size,
		       const struct sb_ring_config *cfg, uint64_t queue_start);

/*
 * Clears what only writers write in a data segment's header (their lock,
 * the solo writer, the waiting writers' table): for a persisted data
 * segment that no process uses, reused at broker start with a fresh
 * control segment. Its messages and positions are kept. The slots of the
 * new control segment live at `slot_home` (SB_RING_SLOTS_*): the header
 * says so from then on (and its ctl_size follows), with no slot in use.
 */
void sb_ring_reset_writers(void *data, uint32_t slot_home);

/*
 * Attaches to formatted segments, checking magic, version, readiness and
 * geometry against the real mapping sizes. `data` may be a read-only
 * mapping when the process only reads. Returns 0 and fills *ring, or
 * -EBADMSG (bad magic or geometry), -EPROTO (other version), -EAGAIN (not
 * formatted yet), -EINVAL.
 */
int sb_ring_attach(struct sb_ring *ring, void *data, uint64_t data_size,
		   void *ctl, uint64_t ctl_size);

/* Copies `len` bytes of `buf` in as one message. Returns 0 or an error. */
int sb_ring_publish(struct sb_ring *ring, const void *buf, uint32_t len,
		    int timeout_ms);

/*
 * Publishes `n` messages, taking the writer lock and storing the tail once
 * for as many as fit at a time (so readers see them together and writers
 * pay for the lock once). Messages keep their order and get consecutive
 * sequence numbers within each pass. The whole batch is checked first:
 * -EMSGSIZE or -EINVAL publish nothing. Returns the number published (n
 * unless a wait for room failed part-way: then how many went out before
 * it), or the error when none did.
 */
ssize_t sb_ring_publish_batch(struct sb_ring *ring, const struct iovec *msgs,
			      size_t n, int timeout_ms);

/*
 * Reserves space for a `len`-byte message and takes the writer lock; write
 * the payload at claim->data, then sb_ring_commit() or sb_ring_abort() on
 * the same thread. A writer that dies in between exposes nothing and the
 * next writer recovers the lock. Returns 0 or an error (nothing held).
 * *claim is written only once this thread is the ring's one writer, so
 * that a claim struct shared by several threads (one at a time, as
 * shmbus_pub's is) is never written by a claim that waits or fails.
 */
int sb_ring_claim(struct sb_ring *ring, uint32_t len,
		  struct sb_ring_claim *claim, int timeout_ms);
int sb_ring_commit(struct sb_ring *ring, struct sb_ring_claim *claim);
int sb_ring_abort(struct sb_ring *ring, struct sb_ring_claim *claim);

/*
 * Opens a reader. Broadcast: takes a free slot and starts at the newest
 * position (SB_RING_START_LATEST) or at the oldest message still in the
 * ring (SB_RING_START_EARLIEST). Queue: takes a slot for bookkeeping and
 * shares the queue's one cursor with the other consumers (`start` is
 * ignored). Returns 0, -EUSERS (no free slot), -EINVAL, or a lock error.
 */
int sb_ring_reader_open(struct sb_ring *ring, int start,
			struct sb_ring_reader *reader);

/*
 * As sb_ring_reader_open(), for a ring whose slots are segments of their
 * own: `slot` is this process's read-write mapping of the slot segment the
 * broker gave it (SB_RING_SLOT_SEGMENT_SIZE bytes, zeroed by the broker),
 * `index` its place in the broker's table. Returns 0, -EBUSY (the slot is
 * in use already), -EINVAL, or -ETIMEDOUT.
 */
int sb_ring_reader_open_slot(struct sb_ring *ring, struct sb_ring_slot *slot,
			     uint32_t index, int start,
			     struct sb_ring_reader *reader);

/* Releases the reader's slot (and a held peek). Returns 0 or -EINVAL. */
int sb_ring_reader_close(struct sb_ring_reader *reader);

/*
 * Ends the reader as an eviction would, from any thread: its slot is freed
 * (if still in the state it attached with) and every later receive, peek or
 * wait on it returns -EIDRM. For a client whose slot no broker watches any
 * more (not handed back in time after a restart), so that its subscriber
 * hears of it rather than being overrun unawares. Returns 0, -ENOENT (the
 * slot was freed already) or -EINVAL.
 */
int sb_ring_reader_evict(struct sb_ring_reader *reader);

/* 1 when the reader's slot is no longer the one it took (evicted, or
 * freed by anyone), else 0. */
int sb_ring_reader_evicted(const struct sb_ring_reader *reader);

/*
 * Copies the next message into `buf` (capacity `cap`) and returns its
 * length. -EMSGSIZE when `cap` is too small: the message stays unread.
 *
 * In a checksummed ring (SB_RING_FLAG_CHECKSUM) each record is verified
 * before it is delivered: a record whose checksum or structure is wrong
 * gives -EBADMSG once, counts as one lost message, and the reader goes on
 * at the next intact record (found by a bounded search when the bad
 * record's length cannot be trusted). Without checksums -EBADMSG means
 * the reader cannot go on, as before.
 */
ssize_t sb_ring_receive(struct sb_ring_reader *reader, void *buf, size_t cap,
			int timeout_ms);

/*
 * Zero-copy read: points *data at the next message in the shared memory,
 * without consuming it; sb_ring_release() consumes it. For a queue the
 * queue lock is held in between (other consumers wait). With the overwrite
 * policy the bytes may be overwritten while held: release then returns
 * -ESTALE and counts the message as lost.
 */
int sb_ring_peek(struct sb_ring_reader *reader, const void **data,
		 uint32_t *len, int timeout_ms);
/* (peek verifies a checksummed record as receive does: -EBADMSG, lost
 * + 1, and the next peek looks at the next intact record.) */
int sb_ring_release(struct sb_ring_reader *reader);

/* Gives a peeked message back unconsumed: the next peek or receive
 * returns it again. -EINVAL when none is held. */
int sb_ring_unpeek(struct sb_ring_reader *rd);

/* The topic-wide sequence number of the message this reader last received
 * or peeked (0 before the first). */
uint64_t sb_ring_reader_seq(const struct sb_ring_reader *rd);

/* Messages this reader missed: overwritten by writers, or skipped as
 * corrupted in a checksummed ring. */
uint64_t sb_ring_reader_lost(const struct sb_ring_reader *reader);

/*
 * Frees slot `slot` on behalf of a reader that died (the broker calls this
 * when a client's connection closes), and wakes writers blocked behind it.
 * Returns 0, -EINVAL (no such slot), -ENOENT (slot not in use).
 */
int sb_ring_slot_reap(struct sb_ring *ring, uint32_t slot);

/*
 * For a persisted ring about to be served again, before any other process
 * maps it: resets the writers' part of the data segment's header
 * (sb_ring_reset_writers(), slots at cfg->slot_home) and formats a new
 * control segment whose queue starts at the ring's oldest record. Returns
 * 0 or -EINVAL.
 */
int sb_ring_reformat_ctl(void *data, void *ctl, uint64_t ctl_size,
			 const struct sb_ring_config *cfg);

/* The smallest control segment any ring has. */
uint64_t sb_ring_min_ctl_size(void);

/*
 * Reads the slot state in the slot segment open as `fd` (a descriptor a
 * client handed back): 1 when the slot says it is in use, 0 when not,
 * -EIO when the segment is too short to hold one.
 */
int sb_ring_slot_segment_in_use(int fd);

/*
 * Gives `ring` (attached to a ring with SB_RING_SLOTS_SEGMENTS) the map of
 * its slot segments, which the caller keeps valid and owns.
 */
void sb_ring_set_slot_map(struct sb_ring *ring, struct sb_ring_slot_map *map);

/*
 * The broker, for a ring with slot segments: records that slot `index` is
 * in use (`live` 1) or no longer (0) in the header's slot_live bits, then
 * bumps slot_gen, so that writers ask for the new set before they next
 * reclaim; a slot going away also wakes writers waiting for room. Returns
 * 0 or -EINVAL.
 */
int sb_ring_slot_publish(struct sb_ring *ring, uint32_t index, int live);

/*
 * The broker, before it drops a queue consumer's slot segment: keeps the
 * slot's claim (the seq after the last record that consumer took) in the
 * header's queue_taken, so that records it took still count as taken when
 * nobody maps its slot any more. Nothing for other rings.
 */
void sb_ring_keep_claim(struct sb_ring *ring, const struct sb_ring_slot *slot);

/* 1 when the header's slot_live bit `index` is set (a restarted broker
 * asks which slots its predecessor gave out), else 0. */
int sb_ring_slot_recorded(const struct sb_ring *ring, uint32_t index);

/*
 * Evicts the reader in slot `slot`, if the slot is still in `state` (as
 * read by sb_ring_slot_view(): a reader that closed, or a new one in the
 * same slot, is left alone). Frees the slot as sb_ring_slot_reap() does,
 * waking writers blocked behind it, and wakes sleeping readers. The evicted
 * reader, if it lives, then gets -EIDRM from its next receive, peek,
 * release or wait, and never writes the slot again (a receive already
 * past that check when the slot is freed may store its cursor once more:
 * harmless unless a new reader took the slot in that instant; a new reader
 * rewrites its own cursor at its next message). Returns 0, -EINVAL, or
 * -ENOENT (the slot is not in `state`).
 */
int sb_ring_slot_evict(struct sb_ring *ring, uint32_t slot, uint32_t state);

/*
 * Frees the waiter-table entries (docs/shm-layout.md, space_waiter_pid) of
 * writers that died while waiting for space, so that space_waiters and
 * space_sleepers stop counting them: readers then stop bumping space_seq
 * (and calling FUTEX_WAKE) after every message, and blocked_writers is
 * right again. A pid is dead when kill(pid, 0) fails with ESRCH, so the
 * caller must share the writers' pid namespace (a live writer taken for
 * dead only sleeps one wait slice longer). The broker calls this once a
 * second for every topic; a writer calls it when it recovers the lock
 * from a dead holder. Returns how many entries were freed, or -EINVAL.
 */
int sb_ring_reap_dead_waiters(struct sb_ring *ring);

/* ---- statistics (stats.c) ----------------------------------------------
 * What the broker reads of a ring, at one moment: relaxed loads, values as
 * shared memory holds them (a hostile writer can make them anything), so
 * they are for reports and heuristics, never sizes or positions to act on
 * without checking.
 */

/* The writers' positions in the header of data segment `data`. */
struct sb_ring_positions {
	uint64_t oldest;   /* the oldest record still counted */
	uint64_t tail;	   /* where the next record goes */
	uint64_t next_seq; /* the seq the next record gets */
};

/* Reads them from `data` (a mapped data segment, attached or not). */
void sb_ring_header_positions(const void *data, struct sb_ring_positions *out);

struct sb_ring_stats {
	uint64_t tail;
	uint64_t used_bytes;	  /* tail - oldest; 0 when no honest writer left
				   * those positions */
	uint64_t published;	  /* messages, since the ring was formatted */
	uint64_t bytes;		  /* their payload bytes */
	uint64_t rejected;	  /* publishes refused for want of room */
	uint64_t waits;		  /* publishes that waited for room */
	uint64_t recoveries;	  /* locks taken over from a dead holder */
	uint32_t blocked_writers; /* writers waiting for room now */
	uint64_t queue_position;  /* a queue's shared cursor */
	uint64_t queue_lost;	  /* messages the queue lost */
};

void sb_ring_stats(const struct sb_ring *ring, struct sb_ring_stats *out);

/* Writers waiting for space now. */
uint32_t sb_ring_blocked_writers(const struct sb_ring *ring);

/* The generation of the set of slots, which sb_ring_slot_publish() bumps
 * (publishers compare it to know when to fetch the set again). */
uint64_t sb_ring_slot_gen(const struct sb_ring *ring);

/* Whether the slot at `slot` (a slot segment this process maps) says it
 * is in use. */
int sb_ring_slot_in_use(const struct sb_ring_slot *slot);

/* One subscriber slot. */
struct sb_ring_slot_view {
	uint32_t state; /* generation << 1 | in use: what evict takes */
	int in_use;
	uint32_t pid;	   /* the attaching process */
	uint64_t position; /* its cursor; a queue's shared cursor for a queue */
	uint64_t received; /* messages delivered to it */
	uint64_t lost;	   /* messages it missed */
	int sleeping;	   /* one of its threads waits for data */
};

/* Fills *out with slot `slot`. Returns 0 or -EINVAL (no such slot, or not
 * mapped in this process). */
int sb_ring_slot_view(const struct sb_ring *ring, uint32_t slot,
		      struct sb_ring_slot_view *out);

/* The slot iterator: the first slot in use at or after *index, with *index
 * set to it and *out filled: 1; 0 when there is none. Go on from
 * *index + 1. */
int sb_ring_slot_next(const struct sb_ring *ring, uint32_t *index,
		      struct sb_ring_slot_view *out);

/* ---- a copy of the records for a file (snapshot.c) ----------------------
 * What a persistent topic's write-back takes from the live ring while
 * writers go on, and the header page that describes it in the file.
 */
struct sb_ring_snapshot {
	uint64_t oldest; /* the first record counted */
	uint64_t tail;	 /* the end of the records counted */
	uint64_t next_seq;
	uint64_t from;	 /* the first position copied into `bytes` */
	uint64_t copied; /* bytes copied: positions [from, from + copied) */
	unsigned char *bytes;
	uint64_t cut; /* bytes of records that did not parse, left out */
};

/*
 * Copies the records of `ring` between its oldest and its tail, from where
 * `held` (what the file holds already, or NULL when unknown) ends if it
 * holds this stream up to a tail the ring has not lost yet; then walks the
 * copy with the readers' checks, each DATA seq above the one before, and
 * ends it before the first record that fails (s->cut says how much was
 * left out). What a writer reclaimed during the copy is dropped (oldest is
 * read before and after it). Returns 0 (free it with
 * sb_ring_snapshot_free()), -EAGAIN (writers lapped the copy: try later),
 * -EBADMSG (positions no honest writer leaves) or -ENOMEM.
 */
int sb_ring_snapshot_take(const struct sb_ring *ring,
			  const struct sb_ring_positions *held,
			  struct sb_ring_snapshot *s);
void sb_ring_snapshot_free(struct sb_ring_snapshot *s);

/*
 * Fills `page` (SB_RING_HEADER_SIZE bytes) with the data segment header of
 * a ring of `ring`'s geometry (the handle's, never what a writer may have
 * put in the memory's header), named `name`, with `ctl_size` and the
 * positions `p`, its statistics taken from the memory's. Returns 0 or
 * -EINVAL (name too long).
 */
int sb_ring_header_image(const struct sb_ring *ring, const char *name,
			 uint64_t ctl_size, const struct sb_ring_positions *p,
			 void *page);

/* ---- watching a reader from another thread ------------------------------
 * For a descriptor that polls readable while messages wait (the bus
 * client's shmbus_sub_fd()): a watcher thread sleeps on the ring on behalf
 * of a reader. It shares the reader's slot, whose sub_sleeping is a count
 * so that the reader and its watcher may both be asleep at once.
 */

/*
 * The position past which `rd` would find its next message: its own cursor
 * (broadcast) or the queue's shared cursor (queue). Called by the reader's
 * thread after a read found nothing, to tell a watcher where it stood.
 * Returns 0 for a NULL or closed reader.
 */
uint64_t sb_ring_reader_position(const struct sb_ring_reader *rd);

/*
 * Sleeps until writer_tail differs from `pos`, or `*stop` (may be NULL)
 * becomes nonzero, or the timeout passes. `rd_view` is a copy of the
 * reader taken after it opened: only its ring and slot are used, so the
 * reader itself may go on reading meanwhile. Uses the same waiter-count and
 * futex protocol as a blocked reader, so writers wake it. Returns 0 (the
 * tail moved away from `pos`), -ECANCELED (*stop set), -EAGAIN (timeout_ms
 * 0 and the tail is still `pos`), -ETIMEDOUT, -EINVAL.
 */
int sb_ring_wait_readable(const struct sb_ring_reader *rd_view, uint64_t pos,
			  _Atomic uint32_t *stop, int timeout_ms);

/*
 * Wakes every thread asleep waiting for data on `ring` (they look again and,
 * finding nothing new, sleep again). A watcher's owner sets the watcher's
 * stop flag first, then calls this, so the watcher cannot miss the stop.
 */
void sb_ring_wake_readers(struct sb_ring *ring);

/*
 * Writes `name` (shorter than SB_RING_NAME_SIZE) into the data segment's
 * header, NUL-padded: the broker names each ring it creates, before anyone
 * else maps it, so that a later broker knows which topic a ring handed back
 * to it was made for. Returns 0 or -EINVAL (NULL, or too long).
 */
int sb_ring_set_name(void *data, const char *name);

/*
 * Copies the name stored in the data segment's header into `out` (always
 * NUL-terminated; "" when none was stored). The field is read once, so a
 * writer changing it meanwhile cannot make the copy overrun. Returns 0, or
 * -EBADMSG (the field holds no NUL: `out` is then "") or -EINVAL.
 */
int sb_ring_name(const void *data, char out[SB_RING_NAME_SIZE]);

/* What sb_ring_verify_truncate() found. */
struct sb_ring_verify_report {
	uint64_t kept;		/* DATA records kept */
	uint64_t dropped;	/* DATA records dropped (from the seqs) */
	uint64_t dropped_bytes; /* old writer_tail - new writer_tail */
	uint64_t bad_pos;	/* the first bad record's position (the new
				 * writer_tail when something was dropped) */
};

/*
 * For a persisted ring about to be reused, before any other process maps
 * it (the broker at start; `ring` attached with its data writable). Walks
 * the records from writer_oldest to writer_tail with the readers' checks
 * (type, length, place), plus: DATA seqs follow one another, and in a
 * checksummed ring every DATA record's checksum matches. At the first
 * record that fails, the ring is cut back to the end of the last good one:
 * writer_tail moves there, writer_next_seq becomes the last good seq + 1
 * (so the seqs in the ring stay consecutive; this also repairs a
 * writer_next_seq left one short by a writer that died), writer_epoch is
 * bumped. With no good DATA record the ring is emptied and
 * writer_next_seq kept. report->dropped counts the messages cut from the
 * seqs (writer_next_seq before the cut minus the seq after the last kept
 * record, or the first dropped record's own seq when none was kept), or 0
 * when the dropped bytes could not hold that many.
 * Returns 0 with *report filled, -EBADMSG when the positions break the
 * ring's invariants (nothing written: format the ring anew), or -EINVAL.
 */
int sb_ring_verify_truncate(struct sb_ring *ring,
			    struct sb_ring_verify_report *report);

#endif
