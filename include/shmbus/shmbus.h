/*
 * shmbus/shmbus.h - the message bus: connect to the local broker (shmbusd),
 * open topics by name, publish and receive messages through shared memory.
 * After a topic is open, publishing and receiving make no system call on
 * the fast path and keep working if the broker goes away.
 *
 * Errors: 0 (or a length) on success, a negative errno on failure;
 * shmbus_strerror() (in map.h) names each. Common ones: -EINVAL (bad
 * argument: NULL, bad topic name, bad config field), -ENOENT (no such topic
 * and the broker does not create topics on open), -EACCES (the broker's
 * access rules refuse this process), -ECONNREFUSED (no broker at the socket),
 * -ECONNRESET (the broker went away during a request), -EPROTO (the broker
 * answered something that does not follow the protocol).
 *
 * Threads: a shmbus connection may be used from several threads (requests
 * are synchronous and serialised inside: one at a time per connection). A
 * shmbus_pub may publish from several threads at once with
 * shmbus_publish(); shmbus_claim() and its shmbus_commit() (or
 * shmbus_abort()) must run on one thread and a pub holds one claim at a
 * time. A shmbus_sub is used by one thread at a time (its watcher thread,
 * see shmbus_sub_fd(), is internal).
 * Closing an object must not race with its use.
 *
 * fork: a child keeps the parent's publishers and subscribers mapped and
 * may use their data path, but must open its own connection for requests
 * (and gets no watcher thread).
 */
#ifndef SHMBUS_SHMBUS_H
#define SHMBUS_SHMBUS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "shmbus/map.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Topic modes. */
#define SHMBUS_BROADCAST 1 /* every subscriber sees every message */
#define SHMBUS_QUEUE	 2 /* each message goes to one consumer */

/* What a publisher does when the ring is full. */
#define SHMBUS_BLOCK	 1 /* wait for the slowest subscriber (lossless) */
#define SHMBUS_OVERWRITE 2 /* never wait; slow readers lose the oldest */
#define SHMBUS_REJECT	 3 /* fail at once with -EAGAIN */

/* Where a new subscriber starts. */
#define SHMBUS_START_LATEST   0 /* with the next message published */
#define SHMBUS_START_EARLIEST 1 /* with the oldest message still held */

/* Longest topic name. */
#define SHMBUS_TOPIC_MAX 200

typedef struct shmbus shmbus;
typedef struct shmbus_pub shmbus_pub;
typedef struct shmbus_sub shmbus_sub;

/* Settings of a new topic. Zero fields take the broker's defaults. */
struct shmbus_topic_config {
	uint64_t capacity;    /* ring bytes: a power of two, 4 KiB..1 GiB */
	uint32_t max_message; /* largest message: up to capacity / 4 */
	int mode;	      /* SHMBUS_BROADCAST or SHMBUS_QUEUE */
	int overflow;	/* SHMBUS_BLOCK, SHMBUS_OVERWRITE, SHMBUS_REJECT */
	int persistent; /* 1: kept in a file in the broker's data dir */
	/* 1: each message carries its publish time and publisher's id
	 * (shmbus_receive_info()), in 16 bytes counted in max_message. */
	int metadata;
};

/*
 * Connects to the broker at `socket_path`, or when NULL at $SHMBUS_SOCKET,
 * else $XDG_RUNTIME_DIR/shmbus/shmbusd.sock, else
 * /tmp/shmbus-$UID/shmbusd.sock, and says hello with `client_name` (NULL:
 * the program's name, truncated to 64 characters). Returns 0 and sets
 * *bus, or -ECONNREFUSED / -ENOENT (no broker), -EACCES, -EPERM (the
 * socket is served by a process of a user the client does not trust as its
 * broker: it trusts its own euid, root, and the user $SHMBUS_BROKER_USER
 * names, a user name or a decimal uid), -EPROTO (incompatible broker or a
 * reply that breaks the protocol), -ECONNRESET (the broker closed the
 * connection during hello), -ENAMETOOLONG (path over 107 bytes), -EINVAL
 * (NULL bus, empty path, or a name that is not 1..64 printable ASCII
 * characters). *bus is NULL on failure.
 *
 * After a connection error (-ECONNRESET, -EPROTO, -ETIMEDOUT: no reply in
 * 30 s) requests fail at once with -ECONNRESET until the connection's
 * background thread has reconnected (back-off 10 ms doubling to 1 s) and
 * handed every open topic back to the broker; nothing waits for that, and
 * publishing and receiving never notice. Each open pub and sub keeps two
 * descriptors for the hand-back.
 */
SHMBUS_API int shmbus_connect(const char *socket_path, const char *client_name,
			      shmbus **bus);

/*
 * Closes the connection for the caller: `bus` must not be used again.
 * Publishers and subscribers opened through it stay usable, before or after,
 * as you like: each holds a reference on the connection, whose socket stays
 * open until the last of them is closed, so the broker keeps their slots
 * and handles until then. Returns 0 or -EINVAL.
 */
SHMBUS_API int shmbus_close(shmbus *bus);

/*
 * Creates topic `topic` explicitly: it stays until shmbus_topic_delete(),
 * even with no users. `cfg` may be NULL (all defaults). Returns 0, -EEXIST,
 * -EINVAL (bad name or setting), -EACCES, -ENOSPC (over the broker's
 * limits on topics or ring bytes), or a connection error.
 */
SHMBUS_API int shmbus_topic_create(shmbus *bus, const char *topic,
				   const struct shmbus_topic_config *cfg);

/*
 * Removes the name `topic`. Current publishers and subscribers keep working
 * until they close; the memory goes when the last one lets go. Returns 0,
 * -ENOENT, -EACCES, -EINVAL, or a connection error.
 */
SHMBUS_API int shmbus_topic_delete(shmbus *bus, const char *topic);

/*
 * OpenFileMapping for a topic, to publish: maps its ring read-write. A
 * missing topic is created with the broker's defaults (unless the broker is
 * configured not to: -ENOENT) and removed when nobody uses it any more.
 * Returns 0 and sets *pub, or -ENOENT, -EACCES, -EINVAL, -EUSERS, -ENOMEM,
 * -EROFS (after a broker restart only subscribers handed the topic back),
 * -EPERM (the broker granted memory that is not its own: owned by another
 * uid, or a memfd not sealed against shrinking and growing; not mapped).
 */
SHMBUS_API int shmbus_pub_open(shmbus *bus, const char *topic,
			       shmbus_pub **pub);

/*
 * Publishes `len` bytes. `timeout_ms` bounds the wait when the ring is full
 * under the block policy (0 = do not wait, -1 = forever). Returns 0,
 * -EMSGSIZE (over the topic's max_message), -EAGAIN (full and not waiting,
 * or the reject policy), -ETIMEDOUT, -EBADMSG (corrupted ring), -EBUSY (the
 * calling thread holds this pub's claim: commit it first), -EINVAL. Never
 * uses the broker: works after it is gone.
 */
SHMBUS_API int shmbus_publish(shmbus_pub *pub, const void *data, size_t len,
			      int timeout_ms);

/*
 * Publishes `n` messages (msgs[i].iov_base, msgs[i].iov_len) in order. As
 * many as fit go in under one lock and become visible to subscribers with
 * one store, so a producer with several messages ready pays the
 * per-message cost of locking and waking once per batch. The batch is
 * checked first: one message over max_message (-EMSGSIZE) or a NULL base
 * with a nonzero length (-EINVAL) publishes nothing. Returns how many were
 * published: n, or fewer when a wait for room failed part-way (the rest
 * were not published); a negative errno when none was. -EBUSY on the
 * thread holding a claim.
 */
SHMBUS_API ssize_t shmbus_publish_batch(shmbus_pub *pub,
					const struct iovec *msgs, size_t n,
					int timeout_ms);

/*
 * Zero-copy publishing: reserves `len` bytes in the ring and points *buf at
 * them; write the message there and call shmbus_commit() (on the same
 * thread) to publish it, or shmbus_abort() to publish nothing. Other
 * publishers wait meanwhile; if this process dies in between, nothing is
 * published and the next publisher goes on.
 * Errors as for shmbus_publish(), and -EBUSY if a claim is already held
 * (by any thread).
 */
SHMBUS_API int shmbus_claim(shmbus_pub *pub, size_t len, void **buf,
			    int timeout_ms);

/* Publishes the claimed message. Returns 0, or -EINVAL when the calling
 * thread holds no claim on `pub`. */
SHMBUS_API int shmbus_commit(shmbus_pub *pub);

/* Drops the claimed message instead: nothing is published, and the next
 * publisher goes on as if there had been no claim (for a producer that
 * fails while it fills the buffer). Returns 0, or -EINVAL when the calling
 * thread holds no claim on `pub`. */
SHMBUS_API int shmbus_abort(shmbus_pub *pub);

/* The largest message this topic takes (its max_message), so that a
 * publisher can refuse a larger one before reading or building all of it.
 * 0 when `pub` is NULL. */
SHMBUS_API size_t shmbus_pub_max_message(const shmbus_pub *pub);

/* The publisher id this handle writes into each message's metadata (the
 * shmbus_msg_info.publisher its subscribers read), or 0 when its topic was
 * not created with metadata (or `pub` is NULL). It stays the same for the
 * handle's life, across reconnections, so that a process that both
 * publishes and subscribes can tell its own messages (shmbus-bridge skips
 * them to prevent loops). */
SHMBUS_API uint64_t shmbus_pub_id(const shmbus_pub *pub);

/* Drops a held claim (if any; call it on the claiming thread), unmaps the
 * topic and tells the broker if it is still there. Returns 0 or -EINVAL. */
SHMBUS_API int shmbus_pub_close(shmbus_pub *pub);

/*
 * Opens a topic to receive from: the messages are mapped read-only. `start`
 * is SHMBUS_START_LATEST or SHMBUS_START_EARLIEST (ignored for a queue,
 * whose consumers share one position). A missing topic is created as for
 * shmbus_pub_open(). Returns 0 and sets *sub, or -ENOENT, -EACCES, -EINVAL,
 * -EUSERS (the topic has no free subscriber slot), -EPERM (as for
 * shmbus_pub_open()).
 */
SHMBUS_API int shmbus_sub_open(shmbus *bus, const char *topic, int start,
			       shmbus_sub **sub);

/*
 * Copies the next message into `buf` (capacity `cap`) and returns its
 * length. -EMSGSIZE when `cap` is too small (the message stays: peek at it
 * or receive with a bigger buffer), -EAGAIN (none and timeout_ms is 0),
 * -ETIMEDOUT, -EBADMSG, -EBUSY (a peek is held), -EINVAL, -EIDRM (this
 * subscriber was evicted by the broker: an admin's `shmbus evict`, or the
 * topic's max_stall_ms; every later call returns it too, and its descriptor
 * from shmbus_sub_fd() polls readable: close it, and open again to go on
 * from the newest message).
 */
SHMBUS_API ssize_t shmbus_receive(shmbus_sub *sub, void *buf, size_t cap,
				  int timeout_ms);

/*
 * Zero-copy receiving: points *data at the next message in shared memory
 * (read-only) and *len at its length, without consuming it;
 * shmbus_release() consumes it. Under the overwrite policy the bytes may be
 * overwritten while held, and shmbus_release() then returns -ESTALE; if
 * the subscriber is evicted while it holds a message, shmbus_release()
 * returns -EIDRM (and the bytes may have been reused). A queue consumer
 * holds the queue while it peeks: after a second (SB_RING_QUEUE_HOLD_MS)
 * another consumer may take the queue over and the message with it, and
 * shmbus_release() then returns -ESTALE (the message is another's).
 * Errors as for shmbus_receive().
 */
SHMBUS_API int shmbus_peek(shmbus_sub *sub, const void **data, size_t *len,
			   int timeout_ms);
SHMBUS_API int shmbus_release(shmbus_sub *sub);

/*
 * What a message carries besides its bytes. The caller sets `size` to
 * sizeof(struct shmbus_msg_info) before the call: fields added in later
 * versions go after the ones here, and the library fills only those that
 * fit in `size` (the way Win32 structures carry cbSize).
 */
struct shmbus_msg_info {
	size_t size;  /* set by the caller, see above */
	uint64_t seq; /* the topic's sequence number: consecutive over all
		       * publishers, so a gap is messages this subscriber
		       * did not get */
	/* Topics created with metadata (flags has SHMBUS_MSG_METADATA): what
	 * the publisher's library wrote before the message. Written by the
	 * publisher itself, so a hostile one can say anything here. 0 on
	 * other topics. */
	uint32_t flags;
	int64_t publish_time_ns; /* CLOCK_REALTIME at the publish (commit) */
	uint64_t publisher;	 /* the publisher's client id at the
				  * broker (its connection's, at pub open;
				  * shmbus stat shows it) */
};

/* shmbus_msg_info.flags */
#define SHMBUS_MSG_METADATA 1u

/*
 * shmbus_receive() and shmbus_peek() that also fill *info for the message
 * they return (on success only). -EINVAL when `info` is NULL or its size
 * is too small for `seq`; otherwise as shmbus_receive() and shmbus_peek().
 */
SHMBUS_API ssize_t shmbus_receive_info(shmbus_sub *sub, void *buf, size_t cap,
				       struct shmbus_msg_info *info,
				       int timeout_ms);
SHMBUS_API int shmbus_peek_info(shmbus_sub *sub, const void **data, size_t *len,
				struct shmbus_msg_info *info, int timeout_ms);

/*
 * Watching topics: the topics whose names match `pattern` (levels split on
 * '/': "*" matches any one level, a last ">" one level or more, as in NATS;
 * MQTT's "+" and "#" mean the same; a plain name matches itself), as they
 * are created and removed, restricted to those this process may subscribe
 * to. A watch has its own connection to the broker. shmbus_watch_next()
 * first reports every topic that matches already (SHMBUS_WATCH_CREATED
 * each), then SHMBUS_WATCH_LISTED once, then each creation and removal as
 * it happens. A topic created while the watch opens may be reported twice:
 * treat events as idempotent. SHMBUS_WATCH_OVERFLOW says the broker dropped
 * events because they were not read in time: close the watch and open it
 * again to learn the current set.
 */
typedef struct shmbus_watch shmbus_watch;

enum {
	SHMBUS_WATCH_CREATED = 1,  /* a matching topic exists (now) */
	SHMBUS_WATCH_DELETED = 2,  /* a matching topic was removed */
	SHMBUS_WATCH_LISTED = 3,   /* the topics that existed are all told */
	SHMBUS_WATCH_OVERFLOW = 4, /* events were lost: open the watch again */
};

/* Opens a watch. Returns 0 and sets *w, or -EINVAL (a bad pattern),
 * -ENOTSUP (a broker without topic_watch), -ENOSPC, or a connection
 * error as for shmbus_connect(). */
SHMBUS_API int shmbus_watch_open(shmbus *bus, const char *pattern,
				 shmbus_watch **w);

/*
 * The next event: its kind in *event and the topic's name in `topic`
 * (`cap` bytes; SHMBUS_TOPIC_MAX + 1 always suffice; "" for LISTED and
 * OVERFLOW). Returns 0, -EAGAIN (none and timeout_ms is 0), -ETIMEDOUT,
 * -EMSGSIZE (`cap` too small; the event stays), -ECONNRESET (the broker
 * went away: open the watch again once it is back), -EPROTO.
 */
SHMBUS_API int shmbus_watch_next(shmbus_watch *w, int *event, char *topic,
				 size_t cap, int timeout_ms);

/* A descriptor that polls readable when events arrive, for poll or an event
 * loop: call shmbus_watch_next() with timeout 0 until -EAGAIN before
 * polling it (events already read are not signalled). Owned by `w`. */
SHMBUS_API int shmbus_watch_fd(const shmbus_watch *w);

/* Closes the watch's connection and frees it. Returns 0 or -EINVAL. */
SHMBUS_API int shmbus_watch_close(shmbus_watch *w);

/* How many messages this subscriber missed: overwritten before it read
 * them (overwrite policy), or damaged in a checksummed topic and skipped
 * with -EBADMSG. */
SHMBUS_API uint64_t shmbus_sub_lost(const shmbus_sub *sub);

/*
 * A descriptor that polls readable while messages wait, for epoll, poll or
 * a libuv loop (level-triggered). On readable, receive with timeout 0 until
 * -EAGAIN: the descriptor stays readable until a receive or peek has found
 * the topic empty (-EAGAIN or -ETIMEDOUT), and is then not readable until
 * another message is published. On a queue, another consumer may take the
 * message first: the receive returns -EAGAIN, which clears the descriptor.
 * Owned by `sub`; do not read or close it. The first call creates it and a
 * watcher thread that sleeps on the ring (no polling); later calls return
 * the same descriptor. Returns the descriptor, or -EINVAL, -EMFILE, -ENOMEM,
 * -EAGAIN (no thread could be started).
 */
SHMBUS_API int shmbus_sub_fd(shmbus_sub *sub);

/* Stops the watcher thread (if any, promptly), releases the subscriber's
 * slot, unmaps the topic and tells the broker if it is still there. Works
 * when the broker is gone. Returns 0 or -EINVAL. */
SHMBUS_API int shmbus_sub_close(shmbus_sub *sub);

/*
 * Request and reply. A server serves a named service; a requester asks it
 * and waits for the answer. Service names follow the topic name rules
 * (SHMBUS_SERVICE_MAX) in a namespace of their own: a service and a topic
 * may share a name. The broker makes a private channel for each pair of
 * requester and server (docs/shm-layout.md, "Request/reply channels"):
 * requests and replies then go through shared memory with no system call
 * unless the other side sleeps, and the broker is only asked when the set
 * of servers or requesters changes. Several servers of one service share
 * its requests: a requester sends each to the server with the fewest of
 * its requests outstanding, in turn among equals. Each request is answered
 * at most once, and its reply reaches only the requester that sent it.
 *
 * Correlation: each request carries a random 64-bit id (getrandom), which
 * the server's reply must repeat; a reply whose id matches no outstanding
 * request of its channel (a late answer to a cancelled or timed-out
 * request, or a server's forgery) is dropped and counted
 * (shmbus_requester_dropped()).
 *
 * Errors of a request, each distinct: -EHOSTUNREACH (the service has no
 * server: at once, like NATS's "no responders"), -ECONNABORTED (the server
 * holding the request went away -- its connection to the broker closed,
 * e.g. it was killed -- before it answered: as soon as the broker sees it,
 * not at the timeout), -EBADMSG (that server's channel broke the layout
 * rules: the requester stops using it), -ETIMEDOUT (no answer in time;
 * the server may still answer, and that late reply is dropped).
 *
 * Threads: a shmbus_server is used by one thread at a time; so is a
 * shmbus_requester (each thread that asks concurrently opens its own, or
 * uses the asynchronous calls from one thread). fork: a child must not
 * use its parent's servers and requesters (it would share their channels
 * with the parent); it opens its own on a connection of its own.
 */

/* Longest service name. */
#define SHMBUS_SERVICE_MAX 200

typedef struct shmbus_server shmbus_server;
typedef struct shmbus_requester shmbus_requester;

/* Which request a reply answers: filled by shmbus_serve_receive(), passed
 * to shmbus_reply() or shmbus_reply_claim(). The fields are the library's
 * (a channel and the request's correlation id); copy it freely. */
struct shmbus_reqref {
	uint64_t channel;
	uint64_t id;
};

/*
 * Serves `service`: requests sent to it may now come to this server. The
 * broker must allow the caller the service's `serve` right. Returns 0 and
 * sets *srv, or -EINVAL (bad name, NULL), -EACCES, -ENOENT (the broker
 * does not know the service and does not create one on demand: auto_create
 * off and not in its config), -EMFILE (the connection holds 256 servers
 * and requesters), -ENOSPC (the broker's limit on services), -ENOTSUP (a
 * broker without request/reply), -ENOMEM, or a connection error as for
 * shmbus_connect(). The server lives
 * as long as its connection: when the process dies the broker tells its
 * requesters at once (-ECONNABORTED for the requests it held).
 */
SHMBUS_API int shmbus_serve_open(shmbus *bus, const char *service,
				 shmbus_server **srv);

/*
 * A descriptor that polls readable when requests may be waiting (or the
 * set of requesters changed): then call shmbus_serve_receive() with
 * timeout 0 until -EAGAIN. Owned by `srv`; do not read or close it.
 * Returns the descriptor or -EINVAL.
 */
SHMBUS_API int shmbus_serve_fd(const shmbus_server *srv);

/*
 * Copies the next request into `buf` (capacity `cap`), fills *req for the
 * reply and returns the request's length. Requests come from every
 * requester's channel in turn. -EMSGSIZE when `cap` is too small (the
 * request stays: shmbus_serve_max_request() bytes always suffice), -EAGAIN
 * (none and timeout_ms is 0), -ETIMEDOUT, -EINVAL, -ECONNRESET or another
 * connection error (the broker could not be asked for a new requester's
 * channel). A requester's channel that breaks the layout rules (garbage
 * written by a hostile requester) is dropped and counted
 * (shmbus_serve_dropped()), never returned as an error: the other
 * requesters go on being served.
 */
SHMBUS_API ssize_t shmbus_serve_receive(shmbus_server *srv, void *buf,
					size_t cap, struct shmbus_reqref *req,
					int timeout_ms);

/*
 * Answers `req` with a copy of `len` bytes. Never waits: returns 0,
 * -EMSGSIZE (over shmbus_serve_max_reply(); nothing sent), -EAGAIN (the
 * requester's reply channel is full because it does not read: the reply
 * is dropped and counted), -EPIPE (the requester went away, or its channel
 * was dropped, or `req` names no channel of this server: the reply is
 * dropped and counted), -EBUSY (a reply claim is held), -EINVAL (NULL).
 * Answering a request twice sends two replies, and the requester drops
 * the second.
 */
SHMBUS_API int shmbus_reply(shmbus_server *srv, const struct shmbus_reqref *req,
			    const void *data, size_t len);

/*
 * Zero-copy reply: reserves `len` bytes in the requester's reply channel
 * and points *buf at them; write the answer there and call
 * shmbus_reply_commit() to send it. Errors as for shmbus_reply(). One
 * claim at a time per server; nothing is sent if it is never committed.
 */
SHMBUS_API int shmbus_reply_claim(shmbus_server *srv,
				  const struct shmbus_reqref *req, size_t len,
				  void **buf);

/* Sends the claimed reply. Returns 0, or -EINVAL when no claim is held. */
SHMBUS_API int shmbus_reply_commit(shmbus_server *srv);

/* The largest request a requester may send this server, and the largest
 * reply it may send back (0 when `srv` is NULL). */
SHMBUS_API size_t shmbus_serve_max_request(const shmbus_server *srv);
SHMBUS_API size_t shmbus_serve_max_reply(const shmbus_server *srv);

/* Requests skipped and channels dropped because a requester broke the
 * layout rules, and replies dropped because a requester's channel was full
 * or gone. */
SHMBUS_API uint64_t shmbus_serve_dropped(const shmbus_server *srv);

/*
 * Stops serving: tells the broker (its requesters then see -ECONNABORTED
 * for requests this server held and did not answer), unmaps every channel
 * and frees `srv`. Returns 0 or -EINVAL.
 */
SHMBUS_API int shmbus_serve_close(shmbus_server *srv);

/*
 * Opens a requester of `service`. The broker must allow the caller the
 * service's `request` right. Returns 0 and sets *rq, or -EINVAL, -EACCES,
 * -ENOENT (no such service and the broker does not create services on
 * demand: auto_create off), -EMFILE, -ENOSPC (as for shmbus_serve_open()),
 * -ENOTSUP, -ENOMEM, or a connection error. A
 * service with no server yet is fine: requests then fail with
 * -EHOSTUNREACH until one serves it.
 */
SHMBUS_API int shmbus_requester_open(shmbus *bus, const char *service,
				     shmbus_requester **rq);

/*
 * Sends `len` bytes to a server of the service and waits up to timeout_ms
 * (-1: forever) for the reply, which is copied into `reply` (capacity
 * `cap`). Returns the reply's length, or -EHOSTUNREACH, -ECONNABORTED,
 * -EBADMSG, -ETIMEDOUT (see above), -EMSGSIZE (the request is over
 * shmbus_requester_max_request(): nothing sent; or the reply is bigger
 * than `cap`: the reply is dropped), -EAGAIN (every server's channel is
 * full of this requester's outstanding requests), -EINVAL, -ENOSPC (the
 * broker's limits.max_ring_bytes leaves no room for a new server's
 * channel), or a connection error (the broker could not be asked for a
 * new server's channel); those two only when no server's channel is
 * there to take the request instead.
 */
SHMBUS_API ssize_t shmbus_call(shmbus_requester *rq, const void *req,
			       size_t len, void *reply, size_t cap,
			       int timeout_ms);

/*
 * One request without keeping a requester: shmbus_requester_open(),
 * shmbus_call(), shmbus_requester_close(). For a single request (a
 * command line); a program that asks a service again keeps a requester,
 * which saves the broker's making its channels each time. Returns as
 * shmbus_requester_open() and shmbus_call() do.
 */
SHMBUS_API ssize_t shmbus_request(shmbus *bus, const char *service,
				  const void *req, size_t len, void *reply,
				  size_t cap, int timeout_ms);

/*
 * Asynchronous form: sends the request and returns at once with *ticket
 * set (nonzero, unique within `rq`). Returns 0, or -EHOSTUNREACH,
 * -EMSGSIZE, -EAGAIN, -EINVAL or a connection error as shmbus_call().
 */
SHMBUS_API int shmbus_request_send(shmbus_requester *rq, const void *req,
				   size_t len, uint64_t *ticket);

/*
 * Takes the reply to ticket *ticket, or when *ticket is 0 to any
 * outstanding request that has its outcome (and sets *ticket to it),
 * waiting up to timeout_ms. Returns the reply's length, copied into
 * `reply`; or that request's failure: -ECONNABORTED or -EBADMSG (the
 * ticket is then done), or -EMSGSIZE (the reply is bigger than `cap`: it
 * is kept, take it again with a bigger buffer; shmbus_requester_max_reply()
 * always suffices); or -EAGAIN (no outcome yet and timeout_ms is 0),
 * -ETIMEDOUT (none in time: the request stays outstanding), -ENOENT (no
 * such ticket: taken, cancelled, or none outstanding when *ticket is 0),
 * -EINVAL.
 */
SHMBUS_API ssize_t shmbus_request_take(shmbus_requester *rq, uint64_t *ticket,
				       void *reply, size_t cap, int timeout_ms);

/*
 * Forgets ticket `ticket`: its reply, if one comes, is dropped. Returns 0
 * or -ENOENT.
 */
SHMBUS_API int shmbus_request_cancel(shmbus_requester *rq, uint64_t ticket);

/*
 * A descriptor that polls readable when a reply or a server's departure
 * may be waiting: then call shmbus_request_take() with timeout 0 (and
 * *ticket 0) until -EAGAIN or -ENOENT. Owned by `rq`; do not read or close
 * it. Returns the descriptor or -EINVAL.
 */
SHMBUS_API int shmbus_requester_fd(const shmbus_requester *rq);

/* The largest request this requester may send and the largest reply a
 * server may send back (0 when `rq` is NULL). */
SHMBUS_API size_t shmbus_requester_max_request(const shmbus_requester *rq);
SHMBUS_API size_t shmbus_requester_max_reply(const shmbus_requester *rq);

/* Replies dropped: their id matched no outstanding request (late, cancelled
 * or forged). */
SHMBUS_API uint64_t shmbus_requester_dropped(const shmbus_requester *rq);

/*
 * Closes the requester: outstanding requests are forgotten, its channels
 * closed (the broker tells their servers, whose replies are then dropped)
 * and `rq` freed. Returns 0 or -EINVAL.
 */
SHMBUS_API int shmbus_requester_close(shmbus_requester *rq);

#ifdef __cplusplus
}
#endif

#endif /* SHMBUS_SHMBUS_H */
