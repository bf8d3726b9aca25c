/*
 * ring_layout.h - the shared-memory layout of one topic: what every process
 * that touches a topic must agree on byte for byte. This header is the
 * specification (docs/shm-layout.md says the same in prose); the other
 * files of ring/ hold the operations over it. Nothing here is trusted when
 * read: they check every value against the geometry copied at attach time.
 *
 * A topic is two segments, so that a subscriber can map the messages
 * read-only while still writing its own cursor:
 *
 *   data segment (writers: read-write, subscribers: read-only)
 *   +------------------------+ 0
 *   | struct sb_ring_header  |   identity, geometry, writer positions, stats
 *   +------------------------+ 4096 (SB_RING_HEADER_SIZE)
 *   | data area: capacity    |   records, 16-byte aligned, never wrapping;
 *   | bytes (a power of two) |   a PAD record fills the end when needed
 *   +------------------------+ 4096 + capacity
 *
 *   control segment (read-write for every process that uses the topic)
 *   +------------------------+ 0
 *   | struct sb_ring_ctl     |   locks, futex words, queue cursor
 *   +------------------------+ 1024 (SB_RING_CTL_SLOTS_OFFSET)
 *   | slot_count x           |   one 128-byte slot per subscriber: cursor,
 *   | struct sb_ring_slot    |   counters, state
 *   +------------------------+ 1024 + 128 * slot_count, rounded to a page
 *
 * Positions are free-running 64-bit byte counts; a position's offset in the
 * data area is `pos & (capacity - 1)`. Three positions describe the ring:
 *
 *   writer_oldest <= every live cursor <= writer_tail,
 *   writer_tail - writer_oldest <= capacity.
 *
 * One record (all fields little-endian, host order):
 *
 *   0        4        8                16             16 + len
 *   +--------+--------+----------------+--------------+-------+
 *   | len    | type   | seq            | payload      | pad   |  to 16 bytes
 *   +--------+--------+----------------+--------------+-------+
 *
 * In a checksummed topic (SB_RING_FLAG_CHECKSUM in the header's flags), a
 * DATA record also carries a checksum word right after its payload, and
 * its size counts those 4 bytes before rounding up to 16:
 *
 *   0        4        8                16             16 + len   + 4
 *   +--------+--------+----------------+--------------+----------+-----+
 *   | len    | type   | seq            | payload      | crc32c   | pad |
 *   +--------+--------+----------------+--------------+----------+-----+
 *
 * crc32c is the CRC-32C (ring/crc32c.h) of the 16 header bytes followed
 * by the len payload bytes, stored unaligned (memcpy). The writer stores it
 * after the payload and before the tail store that commits the record; a
 * reader that finds it wrong gets -EBADMSG for that record, which counts as
 * lost, and goes on with the next intact one. PAD records carry none (their
 * header must match the area's end exactly, which is check enough).
 *
 * Commit protocol: a writer holding writer_lock writes the record (header
 * and payload) beyond writer_tail, then stores the new writer_tail with
 * release (seq_cst) order. A reader that loads writer_tail with acquire sees
 * every byte before it. Nothing beyond writer_tail is ever read, so a writer
 * that dies mid-record exposes nothing.
 *
 * Worked example: capacity 4096, writer_tail = 4064 (offset 4064), a
 * 20-byte message. Its record needs 16 + 20 = 36 -> 48 bytes, but only 32
 * remain before the end, so the writer first writes a PAD record at 4064
 *     10 00 00 00  02 00 00 00  00 00 00 00 00 00 00 00   len 16, type PAD
 * (len 16 = 32 - 16 header bytes), then the data record at position 4096
 * (offset 0) with seq 7
 *     14 00 00 00  01 00 00 00  07 00 00 00 00 00 00 00   len 20, type DATA
 * followed by the 20 payload bytes and 12 bytes of padding, and finally
 * stores writer_tail = 4144. A reader at 4064 skips the PAD (its length must
 * be exactly 4096 - 4064 - 16) and delivers seq 7.
 */
#ifndef SB_RING_LAYOUT_H
#define SB_RING_LAYOUT_H

#include <assert.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

#include "sys/barrier.h"
#include "sys/deadline.h"
#include "sys/futex.h"
#include "sys/identity.h"
#include "ring/ring.h"
#include "ring/shm_lock.h"

#define SB_RING_MAGIC	  0x52425353u /* "SSBR" in memory */
#define SB_RING_CTL_MAGIC 0x43425353u /* "SSBC" */
/* The data segment's layout version: 1 for a ring whose flags are 0
 * (every ring formatted before flags existed), 2 for one with a flag set.
 * A reader that knows only version 1 would misparse a checksummed ring's
 * records, so the formatter writes the lowest version that describes the
 * ring and such a reader refuses the rest with -EPROTO. */
#define SB_RING_VERSION	      1u
#define SB_RING_VERSION_FLAGS 2u
/* The control segment's layout version: 2 since the waiting writers are a
 * table of pids with bit masks (space_waiters, space_sleepers) instead of
 * counts that a writer killed while waiting left raised for ever; 3 with
 * the solo writer; 4 since each solo thread has its own busy word; 5 with
 * commit_fence; 6 since the two locks are our own (shm_lock.h) instead of
 * glibc robust mutexes, whose list pointers other processes could write;
 * 7 since what only writers write (writer_lock, the solo writer, the
 * waiting writers' table) lives in the data header (struct sb_ring_wctl),
 * which subscribers map read-only; 8 since a broker's topic keeps each
 * subscriber's slot in a segment of its own (sb_ring_header.slot_home),
 * which no other subscriber can write. */
#define SB_RING_CTL_VERSION 8u
#define SB_RING_READY	    0x59444552u /* "REDY": formatting finished */
/* The sizes, limits and field values that the rest of the library passes
 * to the ring are in ring.h: SB_RING_HEADER_SIZE, SB_RING_NAME_SIZE,
 * SB_RING_SLOTS_*, SB_RING_SLOT_SEGMENT_SIZE, SB_RING_RECORD_ALIGN,
 * SB_RING_{MIN,MAX}_CAPACITY, SB_RING_MAX_SLOTS, SB_RING_FLAG_*, and the
 * mode and overflow values. */

#define SB_RING_NAME_OFFSET	  512u /* sb_ring_header.topic_name */
#define SB_RING_CTL_SLOTS_OFFSET  1024u
#define SB_RING_WCTL_OFFSET	  1024u /* in the data header page */
#define SB_RING_WCTL_SIZE	  1024u
#define SB_RING_SLOT_LIVE_OFFSET  2048u /* sb_ring_header.slot_live */
#define SB_RING_RECORD_HEADER	  16u
#define SB_RING_RECORD_CHECKSUM	  4u /* the crc32c word of a checksummed DATA */
#define SB_RING_MAX_SPACE_WAITERS 64u /* one bit each in a 64-bit mask */
#define SB_RING_SOLO_AFTER	  64u /* locked publishes in a row before solo */
#define SB_RING_SOLO_ENTRIES	  8u  /* threads that can be solo over time */
#define SB_RING_SOLO_REVOKING	  0x80000000u /* flag in sb_ring_ctl.solo */
/* States of sb_ring_ctl.commit_fence (its low two bits; 3 is corruption,
 * taken as "fence" by writers and "not armed" by readers). */
#define SB_RING_FENCE_STATE  3u
#define SB_RING_FENCE_OFF    0u
#define SB_RING_FENCE_ARMING 1u
#define SB_RING_FENCE_ARMED  2u
#define SB_RING_FENCE_GEN    4u	 /* one generation */
#define SB_RING_FENCE_QUIET  64u /* commits with nobody asleep to disarm */

/* Values of sb_ring_record.type. Anything else is corruption. */
#define SB_REC_DATA 1u
#define SB_REC_PAD  2u

struct sb_ring_record {
	uint32_t len;  /* 0: payload bytes (DATA) or filler bytes (PAD) */
	uint32_t type; /* 4: SB_REC_DATA or SB_REC_PAD */
	uint64_t seq;  /* 8: topic-wide sequence number (DATA; 0 for PAD) */
};
static_assert(sizeof(struct sb_ring_record) == SB_RING_RECORD_HEADER, "");
static_assert(offsetof(struct sb_ring_record, len) == 0, "");
static_assert(offsetof(struct sb_ring_record, type) == 4, "");
static_assert(offsetof(struct sb_ring_record, seq) == 8, "");
/* The checksum word of a checksummed DATA record: one uint32_t. */
static_assert(SB_RING_RECORD_CHECKSUM == sizeof(uint32_t), "");

/*
 * One subscriber's slot: 128 bytes, two cache lines, so that neighbouring
 * slots never share a line even with adjacent-line prefetch. Line 0 is the
 * reader's hot line; line 1 changes only on attach and release.
 */
struct sb_ring_slot {
	_Atomic uint64_t sub_cursor;   /* 0: reader: next position it reads */
	_Atomic uint64_t sub_received; /* 8: reader: messages delivered */
	_Atomic uint64_t sub_lost;     /* 16: reader: messages it missed */
	_Atomic uint32_t sub_sleeping; /* 24: reader threads in futex wait */
	uint32_t reserved0;	       /* 28: zero */
	/* 32: queue consumers: the seq after the last record this consumer
	 * took (its claim), so that a queue position set back in the shared
	 * control segment gives no message twice (space.c, taken_seq()). */
	_Atomic uint64_t queue_claim;
	uint8_t reserved0b[24];	     /* 40: zero */
	_Atomic uint32_t slot_state; /* 64: generation << 1 | 1 when in use */
	_Atomic uint32_t slot_pid;   /* 68: attaching process, for stat */
	/* 72: zero (the owner's token up to control layout 7: a slot in a
	 * segment of its own needs none) */
	uint8_t reserved1[56];
};
static_assert(sizeof(struct sb_ring_slot) == 128, "");
static_assert(offsetof(struct sb_ring_slot, sub_cursor) == 0, "");
static_assert(offsetof(struct sb_ring_slot, sub_received) == 8, "");
static_assert(offsetof(struct sb_ring_slot, sub_lost) == 16, "");
static_assert(offsetof(struct sb_ring_slot, sub_sleeping) == 24, "");
static_assert(offsetof(struct sb_ring_slot, queue_claim) == 32, "");
static_assert(offsetof(struct sb_ring_slot, slot_state) == 64, "");
static_assert(offsetof(struct sb_ring_slot, slot_pid) == 68, "");

/*
 * What only writers write, in the data segment's header page at 1024 (the
 * segment subscribers map read-only): the writers' lock, the solo writer,
 * and the table of writers waiting for space. Each group sits on its own
 * 64-byte line.
 */
struct sb_ring_wctl {
	uint32_t reserved0[3];		/* 0: zero */
	_Atomic uint32_t writer_repair; /* 12: 1: a dead writer's state awaits
					 * repair by the next writer */
	/* 16: odd while a writer scans the subscriber cursors and moves
	 * writer_oldest (reclaim); a subscriber that joins waits for an odd
	 * value to pass (see "Joining without the lock" in ring.c). */
	_Atomic uint64_t reclaim_seq;
	/* 24: pid << 32 | tid of the writer that made reclaim_seq odd last,
	 * so that a joining subscriber need not wait for a dead one. */
	_Atomic uint64_t reclaimer;
	uint8_t reserved1[32]; /* 32: zero */

	/* Line 1 (64): the solo writer. A thread that made SB_RING_SOLO_AFTER
	 * locked publishes in a row may publish without writer_lock until
	 * another thread takes the lock (see "The solo writer" in ring.c).
	 * Each thread that has been solo keeps an entry (solo_owner, below)
	 * with its own busy word here, which no other live thread writes. */
	/* 64: entry + 1 of the solo thread, 0: none; | SB_RING_SOLO_REVOKING
	 * while a revoker waits for it; written under writer_lock. */
	_Atomic uint32_t solo;
	_Atomic uint32_t streak_tid; /* 68: thread of the last locked publish */
	_Atomic uint32_t streak;     /* 72: its locked publishes in a row */
	uint32_t reserved1b;	     /* 76: zero */
	/* 80: entry i's thread id while that thread publishes (or holds a
	 * claim) without the lock, else 0; written by that thread only, and
	 * cleared by whoever finds it dead. */
	_Atomic uint32_t solo_busy[SB_RING_SOLO_ENTRIES];
	uint8_t reserved1c[16]; /* 112: zero */

	struct sb_shm_lock writer_lock; /* 128: serialises writers */
	uint8_t reserved2[128];		/* 192: zero */

	/* 320: who owns solo entry i (tid 0: free); set under writer_lock
	 * when the entry is given out, read to check that its thread lives. */
	struct sb_ring_solo_owner {
		_Atomic uint32_t tid;
		_Atomic uint32_t pid;
	} solo_owner[SB_RING_SOLO_ENTRIES];

	uint8_t reserved3[8]; /* 384: zero */
	/* Bit i: the writer in space_waiter_pid[i] waits for space (spinning
	 * or asleep) / is in FUTEX_WAIT. Setting and clearing a bit is
	 * idempotent, so a reaper can clear a dead writer's bits without
	 * knowing how far it got: nothing leaks, nothing goes negative.
	 * Readers load them to know whether to wake a writer. */
	_Atomic uint64_t space_waiters;	 /* 392: waiting writers' bits */
	_Atomic uint64_t space_sleepers; /* 400: sleeping writers' bits */
	uint8_t reserved4[360];		 /* 408: zero */

	/* 768: the pid (getpid()) of the writer that owns bit i of the masks
	 * above, 0 when free; taken by CAS, freed by its writer or by
	 * sb_ring_reap_dead_waiters() once that pid is dead. */
	_Atomic uint32_t space_waiter_pid[SB_RING_MAX_SPACE_WAITERS];
};
static_assert(sizeof(struct sb_ring_wctl) == SB_RING_WCTL_SIZE, "");
static_assert(offsetof(struct sb_ring_wctl, writer_repair) == 12, "");
static_assert(offsetof(struct sb_ring_wctl, reclaim_seq) == 16, "");
static_assert(offsetof(struct sb_ring_wctl, reclaimer) == 24, "");
static_assert(offsetof(struct sb_ring_wctl, solo) == 64, "");
static_assert(offsetof(struct sb_ring_wctl, streak_tid) == 68, "");
static_assert(offsetof(struct sb_ring_wctl, streak) == 72, "");
static_assert(offsetof(struct sb_ring_wctl, solo_busy) == 80, "");
static_assert(offsetof(struct sb_ring_wctl, writer_lock) == 128, "");
static_assert(offsetof(struct sb_ring_wctl, solo_owner) == 320, "");
static_assert(offsetof(struct sb_ring_wctl, space_waiters) == 392, "");
static_assert(offsetof(struct sb_ring_wctl, space_sleepers) == 400, "");
static_assert(offsetof(struct sb_ring_wctl, space_waiter_pid) == 768, "");

/*
 * Page 0 of the data segment. Every field is written by writers only (the
 * creator for the geometry), so subscribers can map it read-only.
 */
struct sb_ring_header {
	/* Line 0, written once by the creator before `ready`. */
	uint32_t magic;		/* 0: SB_RING_MAGIC */
	uint32_t version;	/* 4: SB_RING_VERSION or _VERSION_FLAGS */
	_Atomic uint32_t ready; /* 8: SB_RING_READY, stored last (release) */
	uint32_t mode;		/* 12: SB_RING_BROADCAST or SB_RING_QUEUE */
	uint32_t overflow;	/* 16: SB_RING_BLOCK, _OVERWRITE or _REJECT */
	uint32_t max_message;	/* 20: largest payload accepted */
	uint64_t capacity;	/* 24: data area bytes, power of two */
	uint32_t slot_count; /* 32: subscriber slots in the control segment */
	uint32_t flags;	     /* 36: SB_RING_FLAG_*; 0 in version 1 */
	uint64_t ctl_size;   /* 40: bytes of the control segment */
	/* 48: SB_RING_SLOTS_INLINE (0: the slots follow the control
	 * segment's first 1024 bytes) or SB_RING_SLOTS_SEGMENTS (each
	 * subscriber's slot is a segment of its own; the broker's topics) */
	uint32_t slot_home;
	uint8_t reserved1[76]; /* 52: zero, pads line 0 and line 1 */

	/* Line 2 (128): writer positions, read by readers on every poll. */
	_Atomic uint64_t writer_tail;	  /* 128: end of committed records */
	_Atomic uint64_t writer_oldest;	  /* 136: first record still intact */
	_Atomic uint64_t writer_next_seq; /* 144: seq of the next record */
	uint8_t reserved2[104];		  /* 152: zero */

	/* Line 4 (256): statistics, relaxed; read by the broker for stat. */
	_Atomic uint64_t stat_published; /* 256: records committed */
	_Atomic uint64_t stat_bytes;	 /* 264: payload bytes committed */
	/* 272: bumped with every change of the three positions above (commit,
	 * reclaim, repair), so a writer that kept its own copy of them knows
	 * whether it is still current. */
	_Atomic uint64_t writer_epoch;
	_Atomic uint64_t stat_rejected;	  /* 280: publishes refused when full */
	_Atomic uint64_t stat_waits;	  /* 288: times a writer waited */
	_Atomic uint64_t stat_recoveries; /* 296: dead lock holders repaired */
	uint8_t reserved3[SB_RING_NAME_OFFSET - 304]; /* 304: zero */

	/* 512: the topic's name, NUL-padded, written by the broker that
	 * created the ring (sb_ring_set_name) before it hands the segment to
	 * anyone; a broker taking the ring back (topic_adopt) requires it to
	 * equal the name asked for. All zero in a ring made before names were
	 * stored (the bytes were reserved zero, so the version stays 1). */
	char topic_name[SB_RING_NAME_SIZE];
	/* 768: bumped by the broker after every change of the set of
	 * slot segments (a subscriber joined, left or was evicted), so that
	 * writers know to ask it for the new set before they next reclaim. */
	_Atomic uint64_t slot_gen;
	/* 776: queue topics: the largest claim (sb_ring_slot.queue_claim) of
	 * the consumers that have left, kept by the broker as it drops their
	 * slots, so that their claims still count. */
	_Atomic uint64_t queue_taken;
	uint8_t reserved4[SB_RING_WCTL_OFFSET - SB_RING_NAME_OFFSET -
			  SB_RING_NAME_SIZE - 16]; /* 784: zero */

	/* 1024: what only writers write (struct sb_ring_wctl): here, in
	 * the segment subscribers map read-only, so that none of them can
	 * take or corrupt the writers' lock or solo state. */
	struct sb_ring_wctl wctl;
	/* 2048: bit i set while slot segment i is in use, by the broker's
	 * record; a broker restarted under live clients reads it to know
	 * which subscribers may still hand their slot back. */
	_Atomic uint64_t slot_live[SB_RING_MAX_SLOTS / 64];
	uint8_t reserved5[SB_RING_HEADER_SIZE - SB_RING_SLOT_LIVE_OFFSET -
			  SB_RING_MAX_SLOTS / 8]; /* 2560: zero */
};
static_assert(sizeof(struct sb_ring_header) == SB_RING_HEADER_SIZE, "");
static_assert(offsetof(struct sb_ring_header, magic) == 0, "");
static_assert(offsetof(struct sb_ring_header, version) == 4, "");
static_assert(offsetof(struct sb_ring_header, ready) == 8, "");
static_assert(offsetof(struct sb_ring_header, mode) == 12, "");
static_assert(offsetof(struct sb_ring_header, overflow) == 16, "");
static_assert(offsetof(struct sb_ring_header, max_message) == 20, "");
static_assert(offsetof(struct sb_ring_header, capacity) == 24, "");
static_assert(offsetof(struct sb_ring_header, slot_count) == 32, "");
static_assert(offsetof(struct sb_ring_header, flags) == 36, "");
static_assert(offsetof(struct sb_ring_header, ctl_size) == 40, "");
static_assert(offsetof(struct sb_ring_header, writer_tail) == 128, "");
static_assert(offsetof(struct sb_ring_header, writer_oldest) == 136, "");
static_assert(offsetof(struct sb_ring_header, writer_next_seq) == 144, "");
static_assert(offsetof(struct sb_ring_header, stat_published) == 256, "");
static_assert(offsetof(struct sb_ring_header, stat_bytes) == 264, "");
static_assert(offsetof(struct sb_ring_header, writer_epoch) == 272, "");
static_assert(offsetof(struct sb_ring_header, stat_rejected) == 280, "");
static_assert(offsetof(struct sb_ring_header, stat_waits) == 288, "");
static_assert(offsetof(struct sb_ring_header, stat_recoveries) == 296, "");
static_assert(offsetof(struct sb_ring_header, slot_home) == 48, "");
static_assert(offsetof(struct sb_ring_header, topic_name) == 512, "");
static_assert(offsetof(struct sb_ring_header, slot_gen) == 768, "");
static_assert(offsetof(struct sb_ring_header, queue_taken) == 776, "");
static_assert(offsetof(struct sb_ring_header, slot_live) ==
		  SB_RING_SLOT_LIVE_OFFSET,
	      "");
static_assert(offsetof(struct sb_ring_header, wctl) == SB_RING_WCTL_OFFSET, "");

/*
 * The control segment's fixed part: what readers write too (every process
 * that uses the topic maps it read-write). Each group sits on its own
 * 128-byte block: the futex words are written only when someone sleeps,
 * so in steady state their lines stay shared and cost nothing. The offsets
 * the writers' fields had up to layout 6 are reserved.
 */
struct sb_ring_ctl {
	uint32_t magic;		/* 0: SB_RING_CTL_MAGIC, creator */
	uint32_t version;	/* 4: SB_RING_CTL_VERSION, creator */
	uint32_t slot_count;	/* 8: copy of the header's, creator */
	uint8_t reserved1[244]; /* 12: zero */

	_Atomic uint32_t data_seq;     /* 256: writers bump after a commit */
	_Atomic uint32_t data_waiters; /* 260: readers asleep on data_seq */
	/* 264: generation << 2 | SB_RING_FENCE_OFF, _ARMING or _ARMED: while
	 * not OFF, writers fence between their tail store and their look at
	 * data_waiters, and while ARMED a reader going to sleep needs no
	 * heavy fence ("Fenced commits" in write.c). Readers arm it, writers
	 * disarm it after SB_RING_FENCE_QUIET commits with nobody asleep. */
	_Atomic uint32_t commit_fence;
	uint8_t reserved3[116]; /* 268: zero */

	_Atomic uint32_t space_seq; /* 384: readers bump after consuming */
	uint8_t reserved4[124];	    /* 388: zero */

	struct sb_shm_lock queue_lock; /* 512: serialises queue consumers */
	uint8_t reserved5[64];	       /* 576: zero */

	/* 640: the queue's shared read state, under queue_lock. */
	_Atomic uint64_t queue_cursor;	     /* 640: next position to take */
	_Atomic uint64_t queue_expected_seq; /* 648: seq expected there */
	_Atomic uint64_t queue_lost;	     /* 656: messages nobody took */
	uint8_t reserved6[360];		     /* 664: zero */
};
static_assert(sizeof(struct sb_ring_ctl) == SB_RING_CTL_SLOTS_OFFSET, "");
static_assert(offsetof(struct sb_ring_ctl, magic) == 0, "");
static_assert(offsetof(struct sb_ring_ctl, version) == 4, "");
static_assert(offsetof(struct sb_ring_ctl, slot_count) == 8, "");
static_assert(offsetof(struct sb_ring_ctl, data_seq) == 256, "");
static_assert(offsetof(struct sb_ring_ctl, data_waiters) == 260, "");
static_assert(offsetof(struct sb_ring_ctl, commit_fence) == 264, "");
static_assert(offsetof(struct sb_ring_ctl, space_seq) == 384, "");
static_assert(offsetof(struct sb_ring_ctl, queue_lock) == 512, "");
static_assert(offsetof(struct sb_ring_ctl, queue_cursor) == 640, "");
static_assert(offsetof(struct sb_ring_ctl, queue_expected_seq) == 648, "");
static_assert(offsetof(struct sb_ring_ctl, queue_lost) == 656, "");

#endif
