/*
 * bus_internal.h - the bus client's connection to the broker, shared by the
 * public bus API (client/bus.c) and the command-line tool: one synchronous
 * request/reply call that also collects the descriptors a reply carries,
 * closing handles (a notice, with no reply to wait for), and the register
 * of open topics that the connection hands back to a restarted broker when
 * it reconnects (topic_adopt). The raw request call is client/request.h.
 * Prefix: sb_client_. Not installed; not part of the public API.
 */
#ifndef SB_CLIENT_BUS_INTERNAL_H
#define SB_CLIENT_BUS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cJSON.h>

#include "client/linger.h"
#include "client/request.h"
#include "wire/message.h"
#include "ring/ring.h"
#include "wire/topic_name.h"
#include "shmbus/shmbus.h"

/* Reconnection back-off: the first attempt after a loss waits about
 * BACKOFF_MIN_MS, each failure doubles the wait up to BACKOFF_MAX_MS, and
 * every wait is jittered to between half and all of it, so that many
 * clients of one broker do not knock at the same instant. */
#define SB_CLIENT_BACKOFF_MIN_MS 10
#define SB_CLIENT_BACKOFF_MAX_MS 1000

/* Reply wait for the hello of a reconnection: shorter than a request's, so
 * that a broker that accepts but does not answer costs one back-off step,
 * not half a minute. */
#define SB_CLIENT_RECONNECT_TIMEOUT_MS 2000

/*
 * One open publisher or subscriber as the connection remembers it, so that
 * it can hand the topic back to a restarted broker (op topic_adopt). The
 * struct lives inside the shmbus_pub or shmbus_sub; bus.c fills it and owns
 * the descriptors; the connection (topic_handles.c) links it and, under
 * its lock, sets `handle` and rewrites a subscriber's slot owner. The
 * descriptors stay open for the life of the pub or sub: a subscriber's
 * data descriptor is read-only, so a topic only subscribers hand back
 * stays read-only.
 */
struct sb_client_topic {
	struct sb_client_topic *next; /* the connection's list, its lock */
	char name[SB_TOPIC_NAME_MAX + 1];
	int sub;		    /* 1: subscriber, data_fd read-only */
	int data_fd;		    /* the data segment (owned by bus.c) */
	int ctl_fd;		    /* the control segment (owned by bus.c) */
	int slot_fd;		    /* a subscriber's slot segment, else -1 */
	uint32_t slot;		    /* its index in the topic's table */
	int persistent;		    /* from the open reply's topic info */
	int is_explicit;	    /* from the open reply's topic info */
	const struct sb_ring *ring; /* geometry, for the adopt request */
	struct sb_ring_reader *rd;  /* subscribers' reader */
	int64_t handle;		    /* on the current connection, or -1 */
	int last_error;		    /* the last adoption's error, or 0 */
};

/*
 * Checks the descriptors of `rep` before anything maps them: each must be
 * owned by the broker's uid, and a memfd must be sealed against shrinking
 * and growing (a persistent topic's file is checked for its owner only).
 * Returns 0, -EPERM, or -errno of fstat.
 */
int sb_client_check_memory(const struct sb_client_reply *rep);

/*
 * Checks, before a word is sent, that whoever listens on the socket `fd`
 * runs as our own user, root or sb_client_broker_user()'s (SO_PEERCRED).
 * Returns 0 with *uid set to its uid, -EPERM, or -errno.
 */
int sb_client_check_broker(int fd, uid_t *uid);

/* The result object of the broker's hello reply (version, broker, pid,
 * client, limits), owned by `bus`; valid until the next reconnection. */
const cJSON *sb_client_hello(const shmbus *bus);

/* Takes a reference on the connection: it stays open until the last
 * reference is dropped. For publishers and subscribers. */
void sb_client_ref(shmbus *bus);

/* The broker's id of this connection now (hello's "client"); a message's
 * metadata carries its publisher's. */
uint32_t sb_client_id(shmbus *bus);

/* Drops a reference; the last one closes the socket and frees `bus`. */
void sb_client_unref(shmbus *bus);

/* 1 while requests can be sent (connected, no connection error seen). */
int sb_client_usable(shmbus *bus);

/*
 * Registers an open pub or sub whose open request was answered by
 * connection generation `gen` with handle `handle`. If the connection was
 * replaced since, the topic is handed to the new broker now (or at the next
 * reconnection when there is none yet). `t` must stay valid until
 * sb_client_topic_remove(). Returns 0 or -EINVAL.
 */
int sb_client_topic_add(shmbus *bus, struct sb_client_topic *t, int64_t handle,
			uint64_t gen);

/*
 * Unlinks `t` and, when the current connection holds a handle for it,
 * closes that handle (best effort: sent as a notice when the broker takes
 * one, so it returns without waiting for the broker; the broker does it
 * before anything this connection sends later). Afterwards the connection
 * never touches `t` again, so the caller may free the slot, unmap and
 * close descriptors.
 */
void sb_client_topic_remove(shmbus *bus, struct sb_client_topic *t);

/*
 * Sends `req` (ownership taken) as `op` with "handle": t's handle on the
 * current connection, as sb_client_call() does. -ENOTCONN when `t` has no
 * handle there (not handed back to the current broker yet).
 */
int sb_client_topic_call(shmbus *bus, const struct sb_client_topic *t,
			 const char *op, cJSON *req,
			 struct sb_client_reply *rep);

/* Closes `handle`, granted by connection generation `gen`, if that
 * connection is still the current one. Best effort, as above. */
void sb_client_close_handle(shmbus *bus, int64_t handle, uint64_t gen);

/* The connection's lingering mappings of closed topics (linger.h). */
struct sb_linger *sb_client_linger(shmbus *bus);

/* How many times the connection was re-established (for tests). */
uint64_t sb_client_reconnects(shmbus *bus);

#endif
