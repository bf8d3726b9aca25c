/*
 * bus_internal.h - the bus client's connection to the broker, shared by the
 * public bus API (client/bus.c) and the command-line tool: one synchronous
 * request/reply call that also collects the descriptors a reply carries.
 * Prefix: sb_client_. Not installed; not part of the public API.
 */
#ifndef SB_CLIENT_BUS_INTERNAL_H
#define SB_CLIENT_BUS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "proto/message.h"
#include "shmbus/shmbus.h"

/* Protocol version this client speaks in hello. */
#define SB_CLIENT_PROTOCOL_VERSION 1

/* Most descriptors one reply may carry; more are closed as unexpected. */
#define SB_CLIENT_MAX_FDS 4

/* How long a request waits for its reply before the connection is given
 * up as hung (-ETIMEDOUT). A healthy broker answers in microseconds. */
#define SB_CLIENT_REPLY_TIMEOUT_MS 30000

/*
 * A reply as sb_client_call() hands it over. `msg.result` (success) or
 * `msg.message` (error reply) point into `msg.root`. The caller takes a
 * descriptor by copying it and setting its entry to -1; whatever is left is
 * closed by sb_client_reply_fini().
 */
struct sb_client_reply {
	struct sb_msg_reply msg;
	int fds[SB_CLIENT_MAX_FDS];
	int nfds;
};

/* Prepares `rep` so that sb_client_reply_fini() is safe on it. */
void sb_client_reply_init(struct sb_client_reply *rep);

/* Frees the parsed reply and closes descriptors nobody took. Idempotent. */
void sb_client_reply_fini(struct sb_client_reply *rep);

/*
 * Sends `req` (a JSON object; ownership taken, freed on every path) with
 * "op": op and a fresh "id" added, and waits for the matching reply. Only
 * one request is in flight per connection: callers from several threads
 * take turns on the connection's mutex.
 *
 * Returns 0 with rep->msg.result set; the negative errno an error reply
 * named (rep->msg.message then says why, until sb_client_reply_fini());
 * or a connection error: -ECONNRESET (the broker closed the connection,
 * now or earlier), -ETIMEDOUT (no reply in SB_CLIENT_REPLY_TIMEOUT_MS),
 * -EPROTO (a reply that breaks the protocol: bad frame, bad JSON, wrong id,
 * descriptors that do not match its "fds"), -EMSGSIZE (request over the
 * broker's max_frame), -ENOMEM, -EINVAL. After a connection error every
 * later call fails at once with -ECONNRESET. Call sb_client_reply_fini()
 * in every case.
 */
int sb_client_call(shmbus *bus, const char *op, cJSON *req,
		   struct sb_client_reply *rep);

/* The result object of the broker's hello reply (version, broker, pid,
 * client, limits), owned by `bus`. */
const cJSON *sb_client_hello(const shmbus *bus);

/* Takes a reference on the connection: it stays open until the last
 * reference is dropped. For publishers and subscribers. */
void sb_client_ref(shmbus *bus);

/* Drops a reference; the last one closes the socket and frees `bus`. */
void sb_client_unref(shmbus *bus);

/* 1 while requests can still be sent (no connection error seen yet). */
int sb_client_usable(shmbus *bus);

#endif
