/*
 * slots.h - a process's view of a topic's subscriber slot segments
 * (docs/shm-layout.md, "Slot segments"): each one mapped read-only as the
 * broker names them (op slots), kept up to date when the ring's slot_gen
 * moves. Publishers need it to see every cursor before they reclaim; queue
 * consumers to see each other's claims. Also the mapping of one segment,
 * for a subscriber's own slot.
 * Prefix: sb_slots_. Not installed.
 */
#ifndef SB_CLIENT_SLOTS_H
#define SB_CLIENT_SLOTS_H

#include <stdint.h>
#include <sys/types.h>

#include "client/bus_internal.h"
#include "ring/ring.h"

/* The identity of a mapped slot segment. */
struct sb_slots_id {
	dev_t dev;
	ino_t ino;
};

struct sb_slots {
	struct sb_ring_slot_map map; /* what the ring reads (map.ctx = this) */
	struct sb_slots_id *ids;     /* what each mapping is of */
	shmbus *bus;
	const struct sb_client_topic *reg; /* the handle to ask with */
	const struct sb_ring *ring;
};

/*
 * Sets up an empty view of `ring`'s slots and gives it to the ring. When
 * the broker said no slot was in use at `slot_gen` (slots_in_use 0), it is
 * current as of that; otherwise (or -1: not said) the first use asks for
 * the set. Returns 0 or -ENOMEM.
 */
int sb_slots_init(struct sb_slots *v, shmbus *bus,
		  const struct sb_client_topic *reg, struct sb_ring *ring,
		  int64_t slot_gen, int64_t slots_in_use);

/* Asks for the set now if the view is not current (the caller's handle is
 * registered): a failure leaves it to the first use. */
void sb_slots_prefetch(struct sb_slots *v);

/* Unmaps everything and frees the view (the ring must not use it again). */
void sb_slots_fini(struct sb_slots *v);

/* Maps the slot segment `fd` (its size checked first: a smaller object
 * would fault on access) with `prot`. Returns 0 with *out, or -errno. */
int sb_slots_map_one(int fd, int prot, struct sb_ring_slot **out);

/* Unmaps *slot if mapped, and clears it. */
void sb_slots_unmap_one(struct sb_ring_slot **slot);

#endif
