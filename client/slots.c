/*
 * slots.c - a process's view of a topic's subscriber slot segments: see
 * slots.h and docs/shm-layout.md, "Slot segments".
 */
#include "client/slots.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

/*
 * The ring calls refresh_slots() with the map's lock held when the broker's
 * slot_gen moved: it asks the broker (op slots, page by page) for read-only
 * descriptors of every slot in use, maps the new ones, keeps the mappings
 * of those it knows (same memory object), unmaps the rest, and marks a slot
 * the broker awaits from a restart as held unless it is mapped here
 * already.
 */
struct slot_page {
	struct sb_ring_slot **fresh;
	struct sb_slots_id *ids;
	uint32_t next; /* where the next page starts; count when done */
};

/* The mapping of slot `i` already in `map` if it is of the same memory as
 * `fd`, else a new read-only one. */
static int take_slot_fd(struct sb_slots *v, uint32_t i, int fd,
			struct slot_page *pg)
{
	struct sb_ring_slot *old = v->map.slots[i];
	struct stat st;

	if (fstat(fd, &st) < 0) {
		return -errno;
	}
	pg->ids[i].dev = st.st_dev;
	pg->ids[i].ino = st.st_ino;
	if (old != NULL && old != SB_RING_SLOT_HOLD &&
	    v->ids[i].dev == st.st_dev && v->ids[i].ino == st.st_ino) {
		pg->fresh[i] = old;
		return 0;
	}
	return sb_slots_map_one(fd, PROT_READ, &pg->fresh[i]);
}

/*
 * A slot the broker awaits after a restart: the mapping this process has
 * at that index, if the reader there is still in it (the same subscriber:
 * the old broker reused an index only once its reader was gone), else a
 * hold. A stale mapping of an earlier occupant, free, would let writers
 * pass the reader the index has now.
 */
static struct sb_ring_slot *awaited_slot(const struct sb_slots *v, uint32_t i)
{
	struct sb_ring_slot *old = v->map.slots[i];

	if (old == NULL || old == SB_RING_SLOT_HOLD ||
	    !sb_ring_slot_in_use(old)) {
		return SB_RING_SLOT_HOLD;
	}
	return old;
}

/* Reads an index array of the slots reply. */
static int slot_index(const cJSON *item, uint32_t count, uint32_t *out)
{
	if (!cJSON_IsNumber(item) || item->valuedouble < 0 ||
	    item->valuedouble >= count) {
		return -EPROTO;
	}
	*out = (uint32_t)item->valuedouble;
	return 0;
}

static int read_slot_page(struct sb_slots *v, struct sb_client_reply *rep,
			  struct slot_page *pg)
{
	const cJSON *res = rep->msg.result;
	const cJSON *mapped = cJSON_GetObjectItemCaseSensitive(res, "slots");
	const cJSON *pending = cJSON_GetObjectItemCaseSensitive(res, "pending");
	uint32_t count = v->map.count;
	const cJSON *item;
	int64_t next;
	int k = 0, r = sb_client_check_memory(rep);

	if (r == 0 && (!cJSON_IsArray(mapped) || !cJSON_IsArray(pending) ||
		       cJSON_GetArraySize(mapped) != rep->nfds ||
		       sb_msg_get_int_opt(res, "next", 1, count, count, &next,
					  NULL) < 0 ||
		       next <= pg->next)) {
		r = -EPROTO;
	}
	cJSON_ArrayForEach(item, mapped)
	{
		uint32_t i;

		if (r == 0) {
			r = slot_index(item, count, &i);
		}
		if (r == 0 && pg->fresh[i] == NULL) {
			r = take_slot_fd(v, i, rep->fds[k], pg);
		}
		k++;
	}
	cJSON_ArrayForEach(item, pending)
	{
		uint32_t i;

		if (r == 0) {
			r = slot_index(item, count, &i);
		}
		if (r == 0 && pg->fresh[i] == NULL) {
			pg->fresh[i] = awaited_slot(v, i);
			pg->ids[i] = v->ids[i];
		}
	}
	if (r == 0) {
		pg->next = (uint32_t)next;
	}
	return r;
}

/* Unmaps the mappings in `a` that are not also in `b`. */
static void unmap_others(struct sb_ring_slot **a, struct sb_ring_slot **b,
			 uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (a[i] != NULL && a[i] != SB_RING_SLOT_HOLD && a[i] != b[i]) {
			munmap(a[i], SB_RING_SLOT_SEGMENT_SIZE);
		}
	}
}

static int refresh_slots(struct sb_ring_slot_map *map)
{
	struct sb_slots *v = map->ctx;
	struct slot_page pg = {calloc(map->count, sizeof(*pg.fresh)),
			       calloc(map->count, sizeof(*pg.ids)), 0};
	struct sb_client_reply rep;
	int r = pg.fresh != NULL && pg.ids != NULL ? 0 : -ENOMEM;

	while (r == 0 && pg.next < map->count) {
		cJSON *req = cJSON_CreateObject();

		if (req != NULL &&
		    sb_msg_add_int(req, "from", pg.next) == NULL) {
			cJSON_Delete(req);
			req = NULL;
		}
		r = sb_client_topic_call(v->bus, v->reg, "slots", req, &rep);
		if (r == 0) {
			r = read_slot_page(v, &rep, &pg);
		}
		sb_client_reply_fini(&rep);
	}
	if (r == 0) {
		unmap_others(map->slots, pg.fresh, map->count);
		free(map->slots);
		free(v->ids);
		map->slots = pg.fresh;
		v->ids = pg.ids;
		return 0;
	}
	if (pg.fresh != NULL) {
		unmap_others(pg.fresh, map->slots, map->count);
	}
	free(pg.fresh);
	free(pg.ids);
	return r;
}

int sb_slots_init(struct sb_slots *v, shmbus *bus,
		  const struct sb_client_topic *reg, struct sb_ring *ring,
		  int64_t slot_gen, int64_t slots_in_use)
{
	struct sb_ring_slot_map *map = &v->map;

	memset(v, 0, sizeof(*v));
	map->count = ring->slot_count;
	map->slots = calloc(map->count, sizeof(*map->slots));
	v->ids = calloc(map->count, sizeof(*v->ids));
	if (map->slots == NULL || v->ids == NULL ||
	    pthread_mutex_init(&map->lock, NULL) != 0) {
		free(map->slots);
		free(v->ids);
		return -ENOMEM;
	}
	v->bus = bus;
	v->reg = reg;
	v->ring = ring;
	map->refresh = refresh_slots;
	map->ctx = v;
	if (slots_in_use == 0 && slot_gen >= 0) {
		map->gen = (uint64_t)slot_gen;
		map->current = 1;
	}
	sb_ring_set_slot_map(ring, map);
	return 0;
}

void sb_slots_prefetch(struct sb_slots *v)
{
	struct sb_ring_slot_map *map = &v->map;

	pthread_mutex_lock(&map->lock);
	if (!map->current) {
		/* Before the fetch, as in the ring's own check. */
		uint64_t gen = sb_ring_slot_gen(v->ring);

		map->current = refresh_slots(map) == 0;
		map->gen = gen;
	}
	pthread_mutex_unlock(&map->lock);
}

void sb_slots_fini(struct sb_slots *v)
{
	struct sb_ring_slot_map *map = &v->map;

	for (uint32_t i = 0; i < map->count; i++) {
		if (map->slots[i] != NULL &&
		    map->slots[i] != SB_RING_SLOT_HOLD) {
			munmap(map->slots[i], SB_RING_SLOT_SEGMENT_SIZE);
		}
	}
	pthread_mutex_destroy(&map->lock);
	free(map->slots);
	free(v->ids);
	map->slots = NULL;
	v->ids = NULL;
}

int sb_slots_map_one(int fd, int prot, struct sb_ring_slot **out)
{
	struct stat st;
	void *p;

	if (fstat(fd, &st) < 0) {
		return -errno;
	}
	if (st.st_size != SB_RING_SLOT_SEGMENT_SIZE) {
		return -EPROTO;
	}
	p = mmap(NULL, SB_RING_SLOT_SEGMENT_SIZE, prot,
		 MAP_SHARED | MAP_POPULATE, fd, 0);
	if (p == MAP_FAILED) {
		return -errno;
	}
	*out = p;
	return 0;
}

void sb_slots_unmap_one(struct sb_ring_slot **slot)
{
	if (*slot != NULL) {
		munmap(*slot, SB_RING_SLOT_SEGMENT_SIZE);
		*slot = NULL;
	}
}
