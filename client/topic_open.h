/*
 * topic_open.h - opening a topic (topic_open.c), for shmbus_pub_open and
 * shmbus_sub_open in bus.c. Not installed.
 */
#ifndef SB_CLIENT_TOPIC_OPEN_H
#define SB_CLIENT_TOPIC_OPEN_H

#include <stdbool.h>
#include <stdint.h>

#include <cJSON.h>

#include "client/bus_internal.h"
#include "client/linger.h"
#include "client/slots.h"
#include "ring/ring.h"

/* What an open reply told us. */
struct sb_client_grant {
	int64_t handle;
	int64_t slot_index; /* sub_open only */
	/* pub_open only: the slot set's generation and how many slots were
	 * in use when the broker replied (-1: not said). */
	int64_t slot_gen;
	int64_t slots_in_use;
	uint64_t gen; /* the connection that granted it */
	struct sb_linger_segs m;
	int data_fd; /* kept open for handing the topic back */
	int ctl_fd;
	int slot_fd;		   /* sub_open only */
	struct sb_ring_slot *slot; /* its mapping (read-write) */
	bool persistent;
	bool is_explicit;
};

/*
 * Asks for `op` (pub_open, sub_open; `sub` 1 for the latter) with `req`,
 * maps what it grants into `g` and attaches `ring`. On failure nothing is
 * left. Returns 0 or a negative errno.
 */
int sb_client_open_topic(shmbus *bus, const char *op, cJSON *req, int data_prot,
			 int sub, struct sb_client_grant *g,
			 struct sb_ring *ring);

/* Closes the descriptors `g` still holds. */
void sb_client_close_grant_fds(struct sb_client_grant *g);

/* Hands the grant's descriptors to `reg` and registers it with `bus`. */
void sb_client_register_topic(shmbus *bus, struct sb_client_topic *reg,
			      const char *topic, int sub,
			      struct sb_client_grant *g,
			      const struct sb_ring *ring,
			      struct sb_ring_reader *rd);

/* Unregisters `reg` and closes its descriptors. */
void sb_client_unregister_topic(shmbus *bus, struct sb_client_topic *reg);

#endif
