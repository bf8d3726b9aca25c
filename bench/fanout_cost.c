/*
 * fanout_cost.c - the program bench/instructions.sh runs under callgrind:
 * one writer publishes N messages into a broadcast shmbus ring and K
 * readers, all in this one process and taken in turn, receive every one.
 * The instructions spent inside reader_receive() per message and reader
 * show whether a reader costs the same alone as one of eight, which wall
 * time on two cores cannot show; writer_publish() shows what each added
 * reader costs the writer. The ring has the broker's layout: each reader's
 * slot is a segment of its own, which the writer sees through a slot map
 * (one that never needs refreshing: no broker here).
 *
 * usage: fanout-cost N K [SIZE [checksum]]   (N messages, K readers 1..64,
 * SIZE bytes; "checksum" formats the ring with SB_RING_FLAG_CHECKSUM)
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ring/ring.h"
#include "shmbus/map.h"

#define MAX_READERS 64

/*
 * The two calls whose instructions instructions.sh reads off (callgrind
 * inclusive cost, by function name): kept out of line so that they exist
 * as functions in the profile.
 */
__attribute__((noinline)) static int
writer_publish(struct sb_ring *ring, const void *msg, uint32_t len)
{
	return sb_ring_publish(ring, msg, len, 0);
}

__attribute__((noinline)) static ssize_t
reader_receive(struct sb_ring_reader *rd, void *buf, size_t cap)
{
	return sb_ring_receive(rd, buf, cap, 0);
}

static int parse(const char *s, unsigned long lo, unsigned long hi,
		 unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || s[0] < '0' || s[0] > '9' || v < lo ||
	    v > hi) {
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* K slot segments, zeroed as the broker makes them, and the writer's map
 * of them. NULL when out of memory. */
static struct sb_ring_slot **make_slots(struct sb_ring_slot_map *map,
					unsigned long k)
{
	static struct sb_ring_slot *slots[MAX_READERS];

	for (unsigned long r = 0; r < k; r++) {
		slots[r] = mmap(NULL, SB_RING_SLOT_SEGMENT_SIZE,
				PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (slots[r] == MAP_FAILED) {
			return NULL;
		}
	}
	pthread_mutex_init(&map->lock, NULL);
	map->gen = 0; /* the header's slot_gen, which nobody bumps here */
	map->current = 1;
	map->count = (uint32_t)k;
	map->slots = slots;
	return slots;
}

int main(int argc, char **argv)
{
	static struct sb_ring_reader rd[MAX_READERS];
	static struct sb_ring_slot_map map;
	struct sb_ring_slot **slots;
	unsigned long n, k, size = 64;
	struct sb_ring_config cfg = {
	    .capacity = 1u << 20,
	    .mode = SB_RING_BROADCAST,
	    .overflow = SB_RING_BLOCK,
	    .slot_home = SB_RING_SLOTS_SEGMENTS,
	};
	struct sb_ring ring;
	uint64_t data_size, ctl_size;
	unsigned char *msg, *buf;
	void *data, *ctl;
	int rc;

	if (argc < 3 || argc > 5 || parse(argv[1], 1, 1000000000ul, &n) < 0 ||
	    parse(argv[2], 1, MAX_READERS, &k) < 0 ||
	    (argc >= 4 && parse(argv[3], 8, 65536, &size) < 0) ||
	    (argc == 5 && strcmp(argv[4], "checksum") != 0)) {
		fprintf(stderr, "usage: fanout-cost N K [SIZE [checksum]]\n"
				"  N messages (1..10^9), K readers (1..64), "
				"SIZE bytes (8..65536, default 64);\n"
				"  checksum: records carry a CRC-32C\n");
		return 2;
	}
	cfg.flags = argc == 5 ? SB_RING_FLAG_CHECKSUM : 0;
	cfg.max_message = (uint32_t)size;
	cfg.slot_count = (uint32_t)k;
	rc = sb_ring_layout(&cfg, &data_size, &ctl_size);
	if (rc < 0) {
		fprintf(stderr, "fanout-cost: sb_ring_layout: %s\n",
			shmbus_strerror(rc));
		return 1;
	}
	/* Shared memory as the broker would hand out, though one process. */
	data = mmap(NULL, data_size, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ctl = mmap(NULL, ctl_size, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	msg = calloc(1, size);
	buf = malloc(size);
	slots = make_slots(&map, k);
	if (data == MAP_FAILED || ctl == MAP_FAILED || msg == NULL ||
	    buf == NULL || slots == NULL) {
		fprintf(stderr, "fanout-cost: out of memory\n");
		return 1;
	}
	rc = sb_ring_format(data, data_size, ctl, ctl_size, &cfg);
	if (rc == 0) {
		rc = sb_ring_attach(&ring, data, data_size, ctl, ctl_size);
	}
	if (rc == 0) {
		sb_ring_set_slot_map(&ring, &map);
	}
	for (unsigned long r = 0; rc == 0 && r < k; r++) {
		rc = sb_ring_reader_open_slot(&ring, slots[r], (uint32_t)r,
					      SB_RING_START_LATEST, &rd[r]);
	}
	if (rc < 0) {
		fprintf(stderr, "fanout-cost: setting up the ring: %s\n",
			shmbus_strerror(rc));
		return 1;
	}
	/*
	 * One message at a time, then every reader takes it: the ring never
	 * fills, so no call ever waits, and every instruction counted is
	 * the fast path.
	 */
	for (uint64_t i = 0; i < n; i++) {
		memcpy(msg, &i, sizeof(i));
		rc = writer_publish(&ring, msg, (uint32_t)size);
		if (rc < 0) {
			fprintf(stderr, "fanout-cost: publish %llu: %s\n",
				(unsigned long long)i, shmbus_strerror(rc));
			return 1;
		}
		for (unsigned long r = 0; r < k; r++) {
			ssize_t got = reader_receive(&rd[r], buf, size);
			uint64_t seq;

			memcpy(&seq, buf, sizeof(seq));
			if (got != (ssize_t)size || seq != i) {
				fprintf(stderr,
					"fanout-cost: reader %lu, message "
					"%llu: got %zd bytes, seq %llu\n",
					r, (unsigned long long)i, got,
					(unsigned long long)seq);
				return 1;
			}
		}
	}
	for (unsigned long r = 0; r < k; r++) {
		sb_ring_reader_close(&rd[r]);
	}
	printf("fanout-cost: %lu messages of %lu B, %lu readers: all "
	       "received in order\n",
	       n, size, k);
	free(msg);
	free(buf);
	for (unsigned long r = 0; r < k; r++) {
		munmap(slots[r], SB_RING_SLOT_SEGMENT_SIZE);
	}
	munmap(data, data_size);
	munmap(ctl, ctl_size);
	return 0;
}
