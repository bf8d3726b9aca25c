/*
 * topic_open.c - opening a topic for the bus API (bus.c): the open request
 * and its reply, the checks on the descriptors it grants, their mappings
 * (or the lingering ones of a recent close, linger.c), and the record the
 * connection keeps to hand the topic back after a broker restart.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/topic_open.h"

/* Checks that `fd` is really at least `size` bytes (a smaller object would
 * fault on access beyond its end) and notes what it is in *dev and *ino. */
static int check_segment(int fd, size_t size, dev_t *dev, ino_t *ino)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		return -errno;
	}
	if (st.st_size < 0 || (uint64_t)st.st_size < size) {
		return -EPROTO;
	}
	*dev = st.st_dev;
	*ino = st.st_ino;
	return 0;
}

/*
 * Maps the data segment (fds[0]) with the key's protection and the control
 * segment (fds[1]) read-write. On failure nothing stays mapped.
 * MAP_POPULATE: every page is entered in our page tables now, so that no
 * publish or receive of the first lap of the ring takes a page fault: a
 * first write to a page costs far more without its entry than populating
 * it here (figures: bench/README.md, "Measured figures"). The broker
 * committed the memory at creation; this only maps it.
 */
static int map_segments(const int *fds, struct sb_linger_segs *m)
{
	m->data = mmap(NULL, m->key.data_size, m->key.data_prot,
		       MAP_SHARED | MAP_POPULATE, fds[0], 0);
	if (m->data == MAP_FAILED) {
		m->data = NULL;
		return -errno;
	}
	m->ctl = mmap(NULL, m->key.ctl_size, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_POPULATE, fds[1], 0);
	if (m->ctl == MAP_FAILED) {
		int r = -errno;

		m->ctl = NULL;
		sb_linger_unmap(m);
		return r;
	}
	return 0;
}

/*
 * Maps the two segments the broker sent, or takes the mapping of the same
 * two objects that a recent close left lingering (linger.h): m->key holds
 * the sizes and the data protection on entry.
 */
static int map_grant(shmbus *bus, const int *fds, struct sb_linger_segs *m)
{
	struct sb_linger_key *k = &m->key;
	int r = check_segment(fds[0], k->data_size, &k->data_dev, &k->data_ino);

	if (r == 0) {
		r = check_segment(fds[1], k->ctl_size, &k->ctl_dev,
				  &k->ctl_ino);
	}
	if (r < 0 || sb_linger_take(sb_client_linger(bus), k, m)) {
		return r;
	}
	return map_segments(fds, m);
}

void sb_client_close_grant_fds(struct sb_client_grant *g)
{
	if (g->data_fd >= 0) {
		close(g->data_fd);
		g->data_fd = -1;
	}
	if (g->ctl_fd >= 0) {
		close(g->ctl_fd);
		g->ctl_fd = -1;
	}
	if (g->slot_fd >= 0) {
		close(g->slot_fd);
		g->slot_fd = -1;
	}
}

static int read_grant(const struct sb_client_reply *rep, int sub,
		      struct sb_client_grant *g)
{
	const cJSON *res = rep->msg.result;
	const cJSON *info;
	int64_t data_size, ctl_size;

	/* The topic's info is optional to us: it only says how to describe
	 * the topic when handing it back to a restarted broker. */
	if (sb_msg_get_object(res, "topic", &info, NULL) == 0) {
		(void)sb_msg_get_bool_opt(info, "persistent", false,
					  &g->persistent, NULL);
		(void)sb_msg_get_bool_opt(info, "explicit", false,
					  &g->is_explicit, NULL);
	}
	if (sb_msg_get_int(res, "handle", 0, SB_MSG_INT_MAX, &g->handle, NULL) <
	    0) {
		return -EPROTO;
	}
	if (sb_msg_get_int(res, "data_size", 1, SB_MSG_INT_MAX, &data_size,
			   NULL) < 0 ||
	    sb_msg_get_int(res, "ctl_size", 1, SB_MSG_INT_MAX, &ctl_size,
			   NULL) < 0 ||
	    (uint64_t)data_size > SIZE_MAX || (uint64_t)ctl_size > SIZE_MAX ||
	    rep->nfds != (sub ? 3 : 2) ||
	    (sub && sb_msg_get_int(res, "slot", 0, SB_RING_MAX_SLOTS - 1,
				   &g->slot_index, NULL) < 0)) {
		return -EPROTO;
	}
	if (!sub && (sb_msg_get_int(res, "slot_gen", 0, SB_MSG_INT_MAX,
				    &g->slot_gen, NULL) < 0 ||
		     sb_msg_get_int(res, "slots_in_use", 0, SB_RING_MAX_SLOTS,
				    &g->slots_in_use, NULL) < 0)) {
		g->slot_gen = g->slots_in_use = -1;
	}
	g->m.key.data_size = (size_t)data_size;
	g->m.key.ctl_size = (size_t)ctl_size;
	return 0;
}

/*
 * Asks for `op` on `topic`, maps the two segments it grants (data with
 * `data_prot`, control read-write) and attaches `ring`. On failure nothing
 * is left: mappings undone, descriptors closed, the handle given back.
 */
int sb_client_open_topic(shmbus *bus, const char *op, cJSON *req, int data_prot,
			 int sub, struct sb_client_grant *g,
			 struct sb_ring *ring)
{
	struct sb_client_reply rep;
	int r, have_handle = 0;

	memset(g, 0, sizeof(*g));
	g->handle = -1;
	g->data_fd = g->ctl_fd = g->slot_fd = -1;
	r = sb_client_call(bus, op, req, &rep);
	g->gen = rep.gen;
	if (r == 0) {
		r = read_grant(&rep, sub, g);
		have_handle = g->handle >= 0;
	}
	if (r == 0) {
		r = sb_client_check_memory(&rep);
	}
	if (r == 0) {
		g->m.key.data_prot = data_prot;
		r = map_grant(bus, rep.fds, &g->m);
	}
	if (r == 0) {
		/* Kept, not closed: a restarted broker gets them back. */
		g->data_fd = rep.fds[0];
		g->ctl_fd = rep.fds[1];
		rep.fds[0] = rep.fds[1] = -1;
		if (sub) {
			g->slot_fd = rep.fds[2];
			rep.fds[2] = -1;
			r = sb_slots_map_one(g->slot_fd, PROT_READ | PROT_WRITE,
					     &g->slot);
		}
	}
	sb_client_reply_fini(&rep);
	if (r == 0) {
		r = sb_ring_attach(ring, g->m.data, g->m.key.data_size,
				   g->m.ctl, g->m.key.ctl_size);
	}
	if (r < 0) {
		sb_linger_unmap(&g->m);
		sb_slots_unmap_one(&g->slot);
		sb_client_close_grant_fds(g);
		if (have_handle) {
			sb_client_close_handle(bus, g->handle, g->gen);
		}
	}
	return r;
}

/* Fills the connection's record of an open pub or sub from its grant and
 * registers it (the descriptors pass to `reg`). */
void sb_client_register_topic(shmbus *bus, struct sb_client_topic *reg,
			      const char *topic, int sub,
			      struct sb_client_grant *g,
			      const struct sb_ring *ring,
			      struct sb_ring_reader *rd)
{
	snprintf(reg->name, sizeof(reg->name), "%s", topic);
	reg->sub = sub;
	reg->data_fd = g->data_fd;
	reg->ctl_fd = g->ctl_fd;
	reg->slot_fd = g->slot_fd;
	reg->slot = (uint32_t)g->slot_index;
	reg->persistent = g->persistent;
	reg->is_explicit = g->is_explicit;
	reg->ring = ring;
	reg->rd = rd;
	reg->handle = -1;
	g->data_fd = g->ctl_fd = g->slot_fd = -1;
	(void)sb_client_topic_add(bus, reg, g->handle, g->gen);
}

/* Unregisters (closing the handle on the current connection) and closes
 * the kept descriptors. */
void sb_client_unregister_topic(shmbus *bus, struct sb_client_topic *reg)
{
	sb_client_topic_remove(bus, reg);
	close(reg->data_fd);
	close(reg->ctl_fd);
	if (reg->slot_fd >= 0) {
		close(reg->slot_fd);
	}
	reg->data_fd = reg->ctl_fd = reg->slot_fd = -1;
}
