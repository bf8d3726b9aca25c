/*
 * format.c - a ring's geometry, formatting its two segments, attaching to
 * them (every header field is checked once and copied into the handle),
 * the topic name in the header, and the names of modes and policies.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "ring/ring_private.h"

#define DEFAULT_SPIN 4000 /* polls (~ a few µs) before a futex sleep */

static int is_power_of_two(uint64_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

/* The control segment's size: its header, then the slots when they live
 * there, rounded up to a page. */
static uint64_t ctl_bytes(uint32_t slot_home, uint32_t slot_count)
{
	uint64_t ctl = SB_RING_CTL_SLOTS_OFFSET;

	if (slot_home == SB_RING_SLOTS_INLINE) {
		ctl += (uint64_t)slot_count * sizeof(struct sb_ring_slot);
	}
	return (ctl + 4095) & ~(uint64_t)4095;
}

int sb_ring_layout(const struct sb_ring_config *cfg, uint64_t *data_size,
		   uint64_t *ctl_size)
{
	if (cfg == NULL || data_size == NULL || ctl_size == NULL) {
		return -EINVAL;
	}
	if (!is_power_of_two(cfg->capacity) ||
	    cfg->capacity < SB_RING_MIN_CAPACITY ||
	    cfg->capacity > SB_RING_MAX_CAPACITY ||
	    cfg->max_message > cfg->capacity / 4 || cfg->slot_count == 0 ||
	    cfg->slot_count > SB_RING_MAX_SLOTS) {
		return -EINVAL;
	}
	if (cfg->mode != SB_RING_BROADCAST && cfg->mode != SB_RING_QUEUE) {
		return -EINVAL;
	}
	if (cfg->overflow != SB_RING_BLOCK &&
	    cfg->overflow != SB_RING_OVERWRITE &&
	    cfg->overflow != SB_RING_REJECT) {
		return -EINVAL;
	}
	if ((cfg->flags & ~SB_RING_FLAGS_KNOWN) != 0 ||
	    (cfg->slot_home != SB_RING_SLOTS_INLINE &&
	     cfg->slot_home != SB_RING_SLOTS_SEGMENTS)) {
		return -EINVAL;
	}
	*data_size = SB_RING_HEADER_SIZE + cfg->capacity;
	*ctl_size = ctl_bytes(cfg->slot_home, cfg->slot_count);
	return 0;
}

int sb_ring_format_ctl(void *ctl, uint64_t ctl_size,
		       const struct sb_ring_config *cfg, uint64_t queue_start)
{
	struct sb_ring_ctl *c = ctl;
	uint64_t need_data, need_ctl;

	if (ctl == NULL || sb_ring_layout(cfg, &need_data, &need_ctl) < 0 ||
	    ctl_size < need_ctl) {
		return -EINVAL;
	}
	memset(c, 0, need_ctl);
	c->magic = SB_RING_CTL_MAGIC;
	c->version = SB_RING_CTL_VERSION;
	c->slot_count = cfg->slot_count;
	/* relaxed: nobody else maps this segment before it is handed out. */
	atomic_store_explicit(&c->queue_cursor, queue_start,
			      memory_order_relaxed);
	/* Both locks are free as zeroed (shm_lock.h). */
	return 0;
}

void sb_ring_reset_writers(void *data, uint32_t slot_home)
{
	struct sb_ring_header *hdr = data;

	memset(&hdr->wctl, 0, sizeof(hdr->wctl));
	/* No slot of the old control segment survives it; a ring persisted
	 * with its slots inline moves them out (the control segment is new
	 * anyway, and only its size depends on where they live). */
	for (size_t i = 0; i < SB_RING_MAX_SLOTS / 64; i++) {
		atomic_store_explicit(&hdr->slot_live[i], 0,
				      memory_order_relaxed);
	}
	hdr->slot_home = slot_home;
	hdr->ctl_size = ctl_bytes(slot_home, hdr->slot_count);
}

int sb_ring_reformat_ctl(void *data, void *ctl, uint64_t ctl_size,
			 const struct sb_ring_config *cfg)
{
	struct sb_ring_positions p;

	if (data == NULL || cfg == NULL) {
		return -EINVAL;
	}
	/* relaxed: no other process maps the memory yet. */
	sb_ring_header_positions(data, &p);
	sb_ring_reset_writers(data, cfg->slot_home);
	return sb_ring_format_ctl(ctl, ctl_size, cfg, p.oldest);
}

uint64_t sb_ring_min_ctl_size(void)
{
	return SB_RING_CTL_SLOTS_OFFSET;
}

void sbr_header_init(struct sb_ring_header *hdr,
		     const struct sb_ring_config *cfg, uint64_t ctl_size)
{
	memset(hdr, 0, sizeof(*hdr));
	hdr->magic = SB_RING_MAGIC;
	/* The lowest version that describes the ring (ring_layout.h). */
	hdr->version =
	    cfg->flags != 0 ? SB_RING_VERSION_FLAGS : SB_RING_VERSION;
	hdr->flags = cfg->flags;
	hdr->mode = cfg->mode;
	hdr->overflow = cfg->overflow;
	hdr->max_message = cfg->max_message;
	hdr->capacity = cfg->capacity;
	hdr->slot_count = cfg->slot_count;
	hdr->slot_home = cfg->slot_home;
	hdr->ctl_size = ctl_size;
}

int sb_ring_format(void *data, uint64_t data_size, void *ctl, uint64_t ctl_size,
		   const struct sb_ring_config *cfg)
{
	struct sb_ring_header *hdr = data;
	uint64_t need_data, need_ctl;
	int r;

	if (data == NULL || ctl == NULL ||
	    sb_ring_layout(cfg, &need_data, &need_ctl) < 0 ||
	    data_size < need_data || ctl_size < need_ctl) {
		return -EINVAL;
	}
	sbr_header_init(hdr, cfg, need_ctl);
	r = sb_ring_format_ctl(ctl, ctl_size, cfg, 0);
	if (r < 0) {
		return r;
	}
	/* release: pairs with the acquire load of `ready` in sb_ring_attach();
	 * an attacher that sees READY sees the whole formatted header. */
	atomic_store_explicit(&hdr->ready, SB_RING_READY, memory_order_release);
	return 0;
}

int sb_ring_attach(struct sb_ring *ring, void *data, uint64_t data_size,
		   void *ctl, uint64_t ctl_size)
{
	struct sb_ring_header *hdr = data;
	struct sb_ring_ctl *c = ctl;
	struct sb_ring_config cfg;
	uint64_t need_data, need_ctl;

	if (ring == NULL || data == NULL || ctl == NULL) {
		return -EINVAL;
	}
	if (data_size < SB_RING_HEADER_SIZE ||
	    ctl_size < SB_RING_CTL_SLOTS_OFFSET) {
		return -EBADMSG;
	}
	/* acquire: pairs with the release store of `ready` in
	 * sb_ring_format(). */
	if (atomic_load_explicit(&hdr->ready, memory_order_acquire) !=
	    SB_RING_READY) {
		return -EAGAIN;
	}
	if (hdr->magic != SB_RING_MAGIC || c->magic != SB_RING_CTL_MAGIC) {
		return -EBADMSG;
	}
	if ((hdr->version != SB_RING_VERSION &&
	     hdr->version != SB_RING_VERSION_FLAGS) ||
	    c->version != SB_RING_CTL_VERSION) {
		return -EPROTO;
	}
	/* Copy the geometry once; from here on only the copy is trusted. */
	cfg.capacity = hdr->capacity;
	cfg.max_message = hdr->max_message;
	cfg.slot_count = hdr->slot_count;
	cfg.mode = hdr->mode;
	cfg.overflow = hdr->overflow;
	cfg.flags = hdr->flags;
	cfg.slot_home = hdr->slot_home;
	if ((cfg.flags & ~SB_RING_FLAGS_KNOWN) != 0) {
		return -EPROTO; /* a layout of a later version */
	}
	if (sb_ring_layout(&cfg, &need_data, &need_ctl) < 0 ||
	    (hdr->version == SB_RING_VERSION && cfg.flags != 0) ||
	    data_size < need_data || ctl_size < need_ctl ||
	    hdr->ctl_size != need_ctl || c->slot_count != cfg.slot_count) {
		return -EBADMSG;
	}
	sb_fence_init();
	memset(ring, 0, sizeof(*ring));
	ring->shm_hdr = hdr;
	ring->shm_wctl = &hdr->wctl;
	ring->shm_data = (unsigned char *)data + SB_RING_HEADER_SIZE;
	ring->shm_ctl = c;
	ring->slot_home = cfg.slot_home;
	ring->ctl_size = need_ctl;
	if (cfg.slot_home == SB_RING_SLOTS_INLINE) {
		ring->shm_slots =
		    (struct sb_ring_slot *)((unsigned char *)ctl +
					    SB_RING_CTL_SLOTS_OFFSET);
	}
	ring->capacity = cfg.capacity;
	ring->mask = cfg.capacity - 1;
	ring->max_message = cfg.max_message;
	ring->slot_count = cfg.slot_count;
	ring->mode = cfg.mode;
	ring->overflow = cfg.overflow;
	ring->flags = cfg.flags;
	ring->record_fixed =
	    SB_RING_RECORD_HEADER + SB_RING_RECORD_ALIGN - 1 +
	    (has_checksums(ring) ? SB_RING_RECORD_CHECKSUM : 0);
	ring->spin = DEFAULT_SPIN;
	return 0;
}

int sb_ring_set_name(void *data, const char *name)
{
	struct sb_ring_header *hdr = data;
	size_t len;

	if (hdr == NULL || name == NULL ||
	    (len = strlen(name)) >= SB_RING_NAME_SIZE) {
		return -EINVAL;
	}
	memset(hdr->topic_name, 0, SB_RING_NAME_SIZE);
	memcpy(hdr->topic_name, name, len);
	return 0;
}

int sb_ring_name(const void *data, char out[SB_RING_NAME_SIZE])
{
	const struct sb_ring_header *hdr = data;

	if (hdr == NULL || out == NULL) {
		return -EINVAL;
	}
	/* One copy, then only the copy is looked at. */
	memcpy(out, hdr->topic_name, SB_RING_NAME_SIZE);
	if (memchr(out, '\0', SB_RING_NAME_SIZE) == NULL) {
		out[0] = '\0';
		return -EBADMSG;
	}
	return 0;
}
