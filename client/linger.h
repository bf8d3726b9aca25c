/*
 * linger.h - a connection's closed topic mappings, kept a short while so
 * that opening the same topic again maps nothing. Unmapping a segment makes
 * the kernel flush the TLB of every CPU the process ran on, by
 * inter-processor interrupt, which on a virtual machine dominated a
 * client's open+close loop (bench/README.md, "Measured figures"). Aeron's
 * client lingers its log buffers for the same reason.
 *
 * An entry is found again only by the identity of both segments (device,
 * inode and size, as fstat() reports them for the descriptors the broker
 * sends) and the protection of the data mapping, so a deleted and
 * recreated topic (new objects, new inodes) is mapped afresh, and a
 * subscriber never inherits a writable data mapping. A mapping of the same
 * object is the same memory, so a reused one is indistinguishable from a
 * fresh one: ring attach validates it as usual.
 *
 * Bounds: at most SB_LINGER_MAX entries (the oldest is unmapped to make
 * room) and SB_LINGER_MS: an older entry is unmapped at the next open or
 * close on the connection, and every entry at its end. Until then a
 * lingering mapping holds a deleted topic's memory.
 *
 * Prefix: sb_linger_. Not installed; not part of the public API.
 */
#ifndef SB_CLIENT_LINGER_H
#define SB_CLIENT_LINGER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SB_LINGER_MAX 4
#define SB_LINGER_MS  1000

/* What a mapping must match to be reused. */
struct sb_linger_key {
	dev_t data_dev;
	ino_t data_ino;
	dev_t ctl_dev;
	ino_t ctl_ino;
	size_t data_size;
	size_t ctl_size;
	int data_prot; /* PROT_READ for subscribers, with PROT_WRITE for pubs */
};

/* A topic's two mapped segments and what they are mappings of. */
struct sb_linger_segs {
	struct sb_linger_key key;
	void *data;
	void *ctl;
};

struct sb_linger_entry {
	struct sb_linger_segs segs;
	uint64_t since_ns; /* CLOCK_MONOTONIC when it was put here */
	int used;
};

struct sb_linger {
	pthread_mutex_t lock; /* guards entries; never held while unmapping */
	struct sb_linger_entry entries[SB_LINGER_MAX];
};

/* 0, or a negative errno when the mutex cannot be made. */
int sb_linger_init(struct sb_linger *l);
/* Unmaps every entry and destroys the mutex. */
void sb_linger_fini(struct sb_linger *l);
/* Moves a lingering mapping that matches key into *out: 1 when found, else
 * 0. Entries past SB_LINGER_MS are unmapped on the way. */
int sb_linger_take(struct sb_linger *l, const struct sb_linger_key *key,
		   struct sb_linger_segs *out);
/* Keeps `segs` (both segments mapped) for a later take; unmaps whatever
 * that pushes out. */
void sb_linger_put(struct sb_linger *l, const struct sb_linger_segs *segs);
/* Unmaps both segments of `segs` now (either may be NULL). */
void sb_linger_unmap(struct sb_linger_segs *segs);
/* Entries lingering now (for tests). */
size_t sb_linger_count(struct sb_linger *l);

#endif
