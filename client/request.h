/*
 * request.h - one raw request to the broker and its reply, for the bus
 * client and for the command-line tool's control subcommands (ls, stat,
 * top, create, rm), which pass the broker's own explanation of a refusal
 * on to the user. The only part of the client's private side that tools/
 * may include (scripts/check-deps.sh). Prefix: sb_client_. Not installed;
 * not part of the public API.
 */
#ifndef SB_CLIENT_REQUEST_H
#define SB_CLIENT_REQUEST_H

#include <stdint.h>
#include <sys/types.h>

#include <cJSON.h>

#include "shmbus/shmbus.h"
#include "wire/message.h"

/* Most descriptors one reply may carry; more are closed as unexpected. */
#define SB_CLIENT_MAX_FDS 5

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
	uint64_t gen;	  /* the connection generation that answered */
	uid_t broker_uid; /* the answering broker's uid (SO_PEERCRED) */
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
 * later call fails at once with -ECONNRESET until the connection's watcher
 * thread has reconnected (never waiting for it). Call
 * sb_client_reply_fini() in every case.
 */
int sb_client_call(shmbus *bus, const char *op, cJSON *req,
		   struct sb_client_reply *rep);

/*
 * The uid $SHMBUS_BROKER_USER names (a user name or a decimal uid), whom
 * the client trusts as its broker besides itself and root. Returns 1 with
 * *uid set, 0 when it is unset or empty (or the program is set-user-ID),
 * -EINVAL when it names no user, -ENOMEM.
 */
int sb_client_broker_user(uid_t *uid);

/*
 * sb_client_call() for a listing op that pages (topic_list, topic_stat;
 * docs/protocol.md, "Paging"): while a reply says "more", sends `req` again
 * with "after" set to that reply's "next", and appends each of the page's
 * `arrays` (NULL-terminated names: "topics"; "subscribers" and
 * "publishers") to the first reply's. Returns as sb_client_call() does,
 * with `rep` holding the first reply, the whole arrays in it and "more"
 * false; -EPROTO when a page that says "more" lists nothing or gives no
 * "next". Call sb_client_reply_fini() in every case.
 */
int sb_client_call_all(shmbus *bus, const char *op, cJSON *req,
		       const char *const *arrays, struct sb_client_reply *rep);

/* A new request object {"topic": topic} (the op is added by
 * sb_client_call), or NULL when out of memory. */
cJSON *sb_client_topic_request(const char *topic);

#endif
