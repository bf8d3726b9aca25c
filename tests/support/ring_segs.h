/*
 * ring_segs.h - a topic ring's two segments in memory the tests map
 * themselves, for the suites that test the ring without a broker. The
 * segments live in one MAP_SHARED anonymous mapping, so children forked
 * later share them, each followed by a guard page that faults on an
 * overrun. These helpers assert with Check: for Check tests only.
 */
#ifndef SB_TESTS_RING_SEGS_H
#define SB_TESTS_RING_SEGS_H

#include <stddef.h>
#include <stdint.h>

#include "ring/ring.h"

struct sbt_segs {
	void *data;
	void *ctl;
	uint64_t data_size;
	uint64_t ctl_size;
	struct sb_ring ring; /* attached by sbt_segs_open() */
	unsigned char *base; /* guard, data, guard, ctl, guard */
	size_t map_size;
};

/* `size` zeroed bytes of MAP_SHARED anonymous memory. */
void *sbt_shared_zeroed(size_t size);

/* Maps zeroed segments for `cfg` and formats the ring in them. */
void sbt_segs_create(struct sbt_segs *s, const struct sb_ring_config *cfg);

/* Attaches `ring` to the segments (a forked child attaches its own). */
void sbt_segs_attach(const struct sbt_segs *s, struct sb_ring *ring);

/* sbt_segs_create(), then attaches s->ring (with the library's spin). */
void sbt_segs_open(struct sbt_segs *s, const struct sb_ring_config *cfg);

/* Unmaps the segments. */
void sbt_segs_destroy(struct sbt_segs *s);

#endif
