/*
 * client.c - one connection to the broker: peer credentials, reading and
 * framing requests, an outbound queue of reply frames (each with the
 * descriptors it carries) written with sendmsg when the socket is writable,
 * back-pressure, descriptors a client sends (with topic_adopt), and
 * closing, which closes the client's handles (handles.c) and with them its
 * subscriber slots, so that no writer waits on a dead reader.
 *
 * We poll our own sockets (uv_poll_t) instead of using uv_pipe_t because
 * replies must carry arbitrary descriptors (SCM_RIGHTS), which uv_write2
 * cannot send, and because we want to control each client's buffering.
 */
#include "daemon/broker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/sockios.h>

#include "daemon/log.h"
#include "wire/fdpass.h"
#include "wire/topic_name.h"

static void update_events(struct sbd_client *c);

static void read_cred(int fd, struct sbd_cred *cred)
{
	struct ucred uc = {.pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1};
	socklen_t len = sizeof(uc);
	gid_t groups[SBD_MAX_GROUPS];
	socklen_t glen = sizeof(groups);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0) {
		sbd_warn("getsockopt(SO_PEERCRED, fd %d): %s", fd,
			 strerror(errno));
	}
	cred->uid = uc.uid;
	cred->gid = uc.gid;
	cred->pid = uc.pid;
	cred->gids[0] = uc.gid;
	cred->n_gids = 1;
	/* Supplementary groups: access rules admit members of a group. A
	 * kernel without SO_PEERGROUPS leaves the primary group only. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0) {
		for (size_t i = 0;
		     i < glen / sizeof(gid_t) && cred->n_gids < SBD_MAX_GROUPS;
		     i++) {
			cred->gids[cred->n_gids++] = groups[i];
		}
	}
}

/* Answers a client we cannot take with one error frame, then closes it.
 * The socket is new and empty, so the small frame fits at once. */
static void refuse(struct sbd_broker *b, int fd, int code, const char *why)
{
	cJSON *msg = sb_msg_reply_error(false, 0, code, why);
	char *frame = NULL;
	ssize_t n = msg != NULL
			? sb_msg_to_frame(msg, b->cfg.limits.max_frame, &frame)
			: -ENOMEM;

	if (n > 0 &&
	    send(fd, frame, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		sbd_debug("send(refusal, fd %d): %s", fd, strerror(errno));
	}
	free(frame);
	cJSON_Delete(msg);
	close(fd);
}

static void on_poll(uv_poll_t *poll, int status, int events);

/* Connections of `uid`: clients, and closed ones still draining. */
static uint32_t connections_of(const struct sbd_broker *b, uid_t uid)
{
	uint32_t n = 0;

	for (const struct sbd_client *c = b->clients; c != NULL; c = c->next) {
		n += c->cred.uid == uid;
	}
	for (const struct sbd_drain *d = b->drains; d != NULL; d = d->next) {
		n += d->uid == uid;
	}
	return n;
}

/*
 * The one place that decides whether a new connection is taken: NULL, or
 * the reason for its EUSERS refusal (logged here). Draining connections
 * count, in both limits: they still hold descriptors the broker sent, so
 * a peer cannot free its place by leaving replies unread until dropped.
 */
static const char *refusal(const struct sbd_broker *b, uid_t uid, char *why,
			   size_t len)
{
	const struct sb_config_limits *lim = &b->cfg.limits;

	if (b->n_clients + b->n_drains >= lim->max_clients) {
		sbd_warn("refusing a client of uid %lu: limits.max_clients "
			 "(%" PRIu32 ") reached",
			 (unsigned long)uid, lim->max_clients);
		return "too many clients";
	}
	if (connections_of(b, uid) >= lim->max_clients_per_uid) {
		sbd_warn("refusing a client of uid %lu: "
			 "limits.max_clients_per_uid (%" PRIu32
			 ") reached for that uid",
			 (unsigned long)uid, lim->max_clients_per_uid);
		snprintf(why, len,
			 "too many clients of uid %lu "
			 "(limits.max_clients_per_uid)",
			 (unsigned long)uid);
		return why;
	}
	return NULL;
}

void sbd_client_accept(struct sbd_broker *b, int fd)
{
	struct sbd_client *c;
	struct sbd_cred cred;
	char buf[96];
	const char *why;

	read_cred(fd, &cred);
	why = refusal(b, cred.uid, buf, sizeof(buf));
	if (why != NULL) {
		refuse(b, fd, -EUSERS, why);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL ||
	    sb_frame_decoder_init(&c->dec, b->cfg.limits.max_frame) < 0 ||
	    uv_poll_init(b->loop, &c->poll, fd) < 0) {
		sbd_error("accepting a client: out of memory");
		free(c);
		refuse(b, fd, -ENOMEM, "out of memory");
		return;
	}
	c->broker = b;
	c->fd = fd;
	c->poll.data = c;
	c->since = c->last_input = uv_now(b->loop);
	c->id = ++b->next_client_id;
	if (c->id == 0) { /* 2^32 clients later: 0 means "no client" */
		c->id = ++b->next_client_id;
	}
	c->cred = cred;
	sbd_handles_init(&c->handles, c->id);
	c->next = b->clients;
	if (b->clients != NULL) {
		b->clients->prev = c;
	}
	b->clients = c;
	b->n_clients++;
	sbd_info("client %" PRIu32 " connected (pid %ld, uid %lu, gid %lu)",
		 c->id, (long)c->cred.pid, (unsigned long)c->cred.uid,
		 (unsigned long)c->cred.gid);
	update_events(c);
}

static void free_out(struct sbd_out *o)
{
	for (int i = 0; i < o->nfds; i++) {
		close(o->fds[i]);
	}
	free(o->buf);
	free(o);
}

/*
 * Descriptors in flight. A descriptor sent with SCM_RIGHTS is "in flight"
 * from sendmsg until the peer receives it (or closes its socket, which
 * discards it), and the kernel counts every one against the SENDER's uid:
 * once that uid has more in flight than the sender's RLIMIT_NOFILE, each
 * sendmsg carrying descriptors fails with ETOOMANYREFS (root, with
 * CAP_SYS_RESOURCE or CAP_SYS_ADMIN, is exempt). Peers that ask for
 * grants and never read the replies would use the broker's whole
 * allowance, and every later grant, to anyone, would fail.
 *
 * So the broker bounds them itself: broker->fds_budget for all clients
 * together (broker.c sets it from RLIMIT_NOFILE), and a share of it,
 * sbd_client_fds_bound(), for each client, which is the budget divided by
 * max_clients, so that clients at their own bound can never use up the
 * budget of the others. A client at its bound is the one that waits: the
 * broker handles no more of its requests (what it already read is held)
 * until it reads its replies, and one that waits 10 s is dropped like any
 * client too slow to read (SBD_BACKPRESSURE_TIMEOUT_MS).
 *
 * The broker cannot see when a peer receives a descriptor, so it counts
 * conservatively. c->fds_unread counts every descriptor given to the client
 * (queued here, or sent), and drops to what is still queued once SIOCOUTQ
 * says the socket has nothing unread: on a Unix stream socket that is the
 * memory of every message this socket sent and the peer has not consumed
 * yet, so 0 means each of them was received, descriptors included. While
 * anything is unread, every descriptor sent counts as in flight (more than
 * the truth, never less). SIOCOUTQ is asked only when a count would stop a
 * request, and by the 1 s sweep.
 *
 * A dropped connection's descriptors stay in flight while the peer holds
 * its socket, so the broker keeps its end (shut down) as a "drain" that
 * still counts in the budget, in max_clients and in its uid's
 * max_clients_per_uid, until SIOCOUTQ says they were read or discarded.
 */

/* Bytes this socket sent that its peer has not consumed, or -errno. */
static int unsent_bytes(int fd)
{
	int n = 0;

	return ioctl(fd, SIOCOUTQ, &n) == 0 ? n : -errno;
}

/* Descriptors of the replies still queued here (not sent yet). */
static uint32_t queued_fds(const struct sbd_client *c)
{
	uint32_t n = 0;

	for (const struct sbd_out *o = c->out_head; o != NULL; o = o->next) {
		n += (uint32_t)o->nfds;
	}
	return n;
}

static void add_unread(struct sbd_client *c, int nfds)
{
	c->fds_unread += (uint32_t)nfds;
	c->broker->fds_unread += (uint32_t)nfds;
}

/* Forgets `n` of the client's descriptors: received, or closed here. */
static void forget_unread(struct sbd_client *c, uint32_t n)
{
	c->fds_unread -= n;
	c->broker->fds_unread -= n;
}

/* Forgets what was sent, when the peer has read all of it. */
static void refresh_unread(struct sbd_client *c)
{
	uint32_t queued;

	if (c->fds_unread == 0 || unsent_bytes(c->fd) != 0) {
		return;
	}
	queued = queued_fds(c);
	forget_unread(c, c->fds_unread - queued);
}

uint32_t sbd_client_fds_bound(const struct sbd_broker *b)
{
	uint32_t n = b->fds_budget / b->cfg.limits.max_clients;

	return n > SBD_OUT_FDS ? n : SBD_OUT_FDS;
}

/* Whether one more reply's descriptors would pass the client's bound. */
static bool own_fds_full(const struct sbd_client *c)
{
	return c->fds_unread + SBD_OUT_FDS > sbd_client_fds_bound(c->broker);
}

static bool all_fds_full(const struct sbd_broker *b)
{
	return b->fds_unread + SBD_OUT_FDS > b->fds_budget;
}

static void sweep_drains(struct sbd_broker *b);

/* Whether the client's next request must wait for descriptors to be read:
 * its own, or (only when max_clients is too large for the budget, which
 * the broker warns of at start) everyone's. Counts are refreshed first. */
static bool fds_full(struct sbd_client *c)
{
	struct sbd_broker *b = c->broker;

	if (own_fds_full(c)) {
		refresh_unread(c);
	}
	if (!own_fds_full(c) && all_fds_full(b)) {
		for (struct sbd_client *o = b->clients; o != NULL;
		     o = o->next) {
			refresh_unread(o);
		}
		sweep_drains(b);
	}
	return own_fds_full(c) || all_fds_full(b);
}

/* Keeps the closed client's socket open until the descriptors sent on it
 * are read. Returns 0, or -ENOMEM (the caller closes it then). */
static int start_drain(struct sbd_client *c)
{
	struct sbd_drain *d = calloc(1, sizeof(*d));

	if (d == NULL) {
		return -ENOMEM;
	}
	/* The peer can still read what was sent, then sees end of file; it
	 * can send nothing more. */
	shutdown(c->fd, SHUT_RDWR);
	d->fd = c->fd;
	d->uid = c->cred.uid;
	d->fds = c->fds_unread;
	d->next = c->broker->drains;
	c->broker->drains = d;
	c->broker->n_drains++;
	c->fds_unread = 0; /* now the drain's, still in broker->fds_unread */
	c->fd = -1;
	sbd_info("client %" PRIu32 ": %" PRIu32 " descriptor(s) sent to it "
		 "may be unread; its socket stays open, and counts as a "
		 "client of uid %lu, until they are read",
		 c->id, d->fds, (unsigned long)d->uid);
	return 0;
}

/* Closes the drains whose peers have read everything (or left). */
static void sweep_drains(struct sbd_broker *b)
{
	struct sbd_drain **p = &b->drains;

	while (*p != NULL) {
		struct sbd_drain *d = *p;

		if (unsent_bytes(d->fd) > 0) {
			p = &d->next;
			continue;
		}
		*p = d->next;
		b->n_drains--;
		b->fds_unread -= d->fds;
		sbd_debug("a closed connection of uid %lu: its %" PRIu32
			  " descriptor(s) were read; closing it",
			  (unsigned long)d->uid, d->fds);
		close(d->fd);
		free(d);
	}
}

void sbd_client_drains_close(struct sbd_broker *b)
{
	while (b->drains != NULL) {
		struct sbd_drain *d = b->drains;

		b->drains = d->next;
		b->fds_unread -= d->fds;
		close(d->fd);
		free(d);
	}
	b->n_drains = 0;
}

/* Descriptor passing is wire/fdpass.c's, within its limits. */
static_assert(SBD_OUT_FDS <= SB_FDPASS_MAX, "a reply's descriptors fit");
static_assert(SBD_MAX_IN_FDS <= SB_FDPASS_ROOM_MAX, "a request's too");

/* One sendmsg of `len` bytes with `nfds` descriptors (SCM_RIGHTS) on the
 * first of them. Returns bytes sent, or -errno. */
static ssize_t send_bytes(const struct sbd_client *c, const char *buf,
			  size_t len, const int *fds, int nfds)
{
	return sb_fdpass_send(c->fd, buf, len, fds, nfds);
}

/* Sends the head of the queue once. Returns bytes sent, or -errno. */
static ssize_t send_head(struct sbd_client *c, struct sbd_out *o)
{
	return send_bytes(c, o->buf + o->off, o->len - o->off, o->fds,
			  o->off == 0 ? o->nfds : 0);
}

/* Writes queued frames until the socket is full. Returns 0 or -errno. */
static int flush(struct sbd_client *c)
{
	while (c->out_head != NULL) {
		struct sbd_out *o = c->out_head;
		ssize_t n = send_head(c, o);

		if (n == -EAGAIN || n == -EINTR) {
			return n == -EAGAIN ? 0 : flush(c);
		}
		if (n < 0) {
			return (int)n;
		}
		if (o->off == 0) { /* the descriptors went with these bytes */
			for (int i = 0; i < o->nfds; i++) {
				close(o->fds[i]);
			}
			o->nfds = 0;
		}
		o->off += (size_t)n;
		c->out_bytes -= (size_t)n;
		if (o->off == o->len) {
			c->out_head = o->next;
			if (c->out_head == NULL) {
				c->out_tail = NULL;
			}
			c->out_frames--;
			free_out(o);
		}
	}
	return 0;
}

/*
 * Whether the client has too many unread replies: more bytes than
 * limits.max_pending_bytes, or limits.max_requests_in_flight frames (each
 * request gets exactly one reply, queued as soon as it is handled, so the
 * replies a client has not read are its requests in flight). Over either,
 * the broker handles no more of its requests until it reads.
 */
static bool over_limits(const struct sbd_client *c)
{
	const struct sb_config_limits *lim = &c->broker->cfg.limits;

	return c->out_bytes > lim->max_pending_bytes ||
	       c->out_frames >= lim->max_requests_in_flight;
}

/* Whether the client waits for its requests to be handled: over its
 * limits, or its next request must wait for descriptors to be read. Held
 * input is what waits (the last check in handle_input() set fds_wait). */
static bool must_wait(struct sbd_client *c)
{
	c->fds_wait = fds_full(c);
	return over_limits(c) || c->fds_wait;
}

/* Whether the client is held back by its own doing, which counts towards
 * SBD_BACKPRESSURE_TIMEOUT_MS: not by the broker-wide budget alone. */
static bool held_by_itself(const struct sbd_client *c)
{
	return over_limits(c) || (c->fds_wait && own_fds_full(c));
}

/* Chooses what to poll for, and notes when a client stalls. */
static void update_events(struct sbd_client *c)
{
	struct sbd_broker *b = c->broker;
	bool over = over_limits(c);
	bool stuck = held_by_itself(c);
	int events = 0;

	if (c->closed) {
		return;
	}
	if (c->closing && c->out_head == NULL) {
		sbd_client_close(c, "closed by the broker");
		return;
	}
	if (!c->closing && !over && c->held == NULL) {
		events |= UV_READABLE;
	}
	/* Held input is handled from on_poll(); a writable socket (the usual
	 * state) brings us there at once. Input held for descriptors is not:
	 * nothing signals that the peer read them, so the sweep looks. */
	if (c->out_head != NULL ||
	    (c->held != NULL && !over && !c->fds_wait && !c->closing)) {
		events |= UV_WRITABLE;
	}
	if ((stuck || c->closing) && c->over_since == 0) {
		c->over_since = uv_now(b->loop) | 1;
	} else if (!stuck && !c->closing) {
		c->over_since = 0;
	}
	/* Only on a change: libuv's uv_poll_start() takes the descriptor out
	 * of epoll and puts it back (epoll_ctl DEL, then ADD) even when the
	 * events are the same, three system calls per request for nothing. */
	if (events != c->poll_events) {
		c->poll_events = events;
		uv_poll_start(&c->poll, events, on_poll);
	}
}

/*
 * Sends a frame at once with the caller's own descriptors (nothing may be
 * queued before it). Returns how many bytes went (all of them, some with
 * the descriptors, or 0 when the socket is full and it must be queued
 * whole), or -errno.
 */
static ssize_t send_now(struct sbd_client *c, const char *buf, size_t len,
			const int *fds, int nfds)
{
	ssize_t n;

	do {
		n = send_bytes(c, buf, len, fds, nfds);
	} while (n == -EINTR);
	return n == -EAGAIN ? 0 : n;
}

/* Queues the unsent part of a frame: `buf` (taken) from `off` on, with
 * copies of the descriptors if none of it went yet (the caller's may be
 * closed before the socket takes them). */
static int enqueue(struct sbd_client *c, char *buf, size_t len, size_t off,
		   const int *fds, int nfds)
{
	struct sbd_out *o = calloc(1, sizeof(*o));

	if (o == NULL) {
		free(buf);
		return -ENOMEM;
	}
	o->buf = buf;
	o->len = len;
	o->off = off;
	for (int i = 0; off == 0 && i < nfds; i++) {
		o->fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
		if (o->fds[i] < 0) {
			int r = -errno;

			free_out(o);
			return r;
		}
		o->nfds++;
	}
	if (c->out_tail != NULL) {
		c->out_tail->next = o;
	} else {
		c->out_head = o;
	}
	c->out_tail = o;
	c->out_bytes += len - off;
	c->out_frames++;
	return 0;
}

/* Sends `msg` (taken) with `fds` (the caller's: copies go into the queue
 * when it must wait), or queues it. 0, or -errno (the client may be closed
 * then). */
static int send_msg(struct sbd_client *c, cJSON *msg, const int *fds, int nfds)
{
	char *buf = NULL;
	ssize_t n, sent = 0;
	bool behind;
	int r;

	if (c->closed || msg == NULL || nfds < 0 || nfds > SBD_OUT_FDS) {
		cJSON_Delete(msg);
		return c->closed     ? -ECONNRESET
		       : msg == NULL ? -ENOMEM
				     : -EINVAL;
	}
	n = sb_msg_to_frame(msg, c->broker->cfg.limits.max_frame, &buf);
	cJSON_Delete(msg);
	if (n < 0) {
		return (int)n;
	}
	/* Behind queued frames it waits its turn, in order. */
	behind = c->out_head != NULL;
	if (!behind) {
		sent = send_now(c, buf, (size_t)n, fds, nfds);
	}
	if (sent == -ETOOMANYREFS) {
		/* Nothing went. Within our budget only other processes of
		 * our uid can have caused it: no reason to drop the client;
		 * the caller answers with an error, as when no descriptor
		 * is left to duplicate. */
		sbd_warn("client %" PRIu32 ": a reply's descriptors: the "
			 "kernel's limit on descriptors in flight of our uid "
			 "(RLIMIT_NOFILE %" PRIu64 ") is reached; other "
			 "processes of this uid must be sending descriptors",
			 c->id, c->broker->nofile);
		free(buf);
		return -EMFILE;
	}
	if (sent < 0) {
		free(buf);
		sbd_client_close(c, strerror((int)-sent));
		return (int)sent;
	}
	if (sent > 0) { /* the descriptors went with the first byte */
		add_unread(c, nfds);
	}
	if (sent == n) {
		free(buf);
		update_events(c);
		return 0;
	}
	r = enqueue(c, buf, (size_t)n, (size_t)sent, fds, nfds);
	if (r < 0 && sent == 0) {
		return r; /* nothing went: the caller can still answer */
	}
	if (r == 0 && sent == 0) { /* queued with copies of them */
		add_unread(c, nfds);
	}
	/* Only a queue that was already there may have room to use now: our
	 * own try has just found the socket full, and on_poll() flushes when
	 * it is writable again. */
	if (r == 0 && behind) {
		r = flush(c);
	}
	if (r < 0) {
		sbd_client_close(c, strerror(-r));
		return r;
	}
	update_events(c);
	return 0;
}

/* ---- topic events (topic_watch) ------------------------------------ */

/*
 * Whether an event may be queued now: a watcher that lets events pile up
 * must not be closed for it nor crowd out its replies, so past half of
 * either bound on unread replies events are dropped instead, and an
 * "overflow" event follows once it has read them all (the sweep sends it).
 */
static bool event_room(const struct sbd_client *c)
{
	const struct sb_config_limits *lim = &c->broker->cfg.limits;

	return c->out_bytes < lim->max_pending_bytes / 2 &&
	       c->out_frames < lim->max_requests_in_flight / 2;
}

/* Queues an event `msg` (taken; NULL or `complete` false: it could not
 * be built, out of memory), or drops it when there is no room; a dropped
 * event is said later with "overflow". */
static void queue_event(struct sbd_client *c, cJSON *msg, bool complete)
{
	if (msg == NULL || !complete || !event_room(c)) {
		cJSON_Delete(msg);
		c->events_dropped = true;
		return;
	}
	(void)send_msg(c, msg, NULL, 0);
}

/* Queues {"event": EVENT[, "topic": TOPIC]}, a frame with no id. */
static void send_event(struct sbd_client *c, const char *event,
		       const char *topic)
{
	cJSON *msg = cJSON_CreateObject();

	queue_event(c, msg,
		    msg != NULL &&
			cJSON_AddStringToObject(msg, "event", event) != NULL &&
			(topic == NULL ||
			 cJSON_AddStringToObject(msg, "topic", topic) != NULL));
}

static bool watches(const struct sbd_client *c, const char *name)
{
	for (uint32_t i = 0; i < c->n_watches; i++) {
		if (sb_topic_pattern_match(c->watches[i], name)) {
			return true;
		}
	}
	return false;
}

void sbd_client_topic_event(struct sbd_broker *b, const char *name,
			    bool created)
{
	struct sbd_client *c = b->clients;

	while (c != NULL && !b->stopping) {
		/* send_event() may close the client (a broken socket). */
		struct sbd_client *next = c->next;

		if (!c->closing && watches(c, name) &&
		    sbd_topic_rule_allows(c, name, "subscribe")) {
			send_event(c,
				   created ? "topic_created" : "topic_deleted",
				   name);
		}
		c = next;
	}
}

/* The sweep's part: tells a watcher that dropped events, once it has read
 * everything, to list the topics again. */
static void send_overflow(struct sbd_client *c)
{
	if (c->events_dropped && c->out_head == NULL && !c->closing) {
		c->events_dropped = false;
		send_event(c, "overflow", NULL);
	}
}

/* Sends one "topics" event with `names` (taken); NULL is out of memory. */
static void send_topics(struct sbd_client *c, cJSON *names)
{
	cJSON *msg = names != NULL ? cJSON_CreateObject() : NULL;

	if (msg == NULL ||
	    cJSON_AddStringToObject(msg, "event", "topics") == NULL ||
	    !cJSON_AddItemToObject(msg, "topics", names)) {
		cJSON_Delete(names); /* not taken by msg */
		cJSON_Delete(msg);
		queue_event(c, NULL, false);
		return;
	}
	queue_event(c, msg, true);
}

/*
 * After a topic_watch reply: the topics that already match `pattern` and
 * that the client may subscribe to, as "topics" events of a quarter
 * frame each, then one "topics" event with an empty list to say the
 * listing is complete.
 */
static void send_existing(struct sbd_client *c, const char *pattern)
{
	/* A quarter frame of names each, so that a frame holds them with
	 * room to spare (a name is at most 200 bytes, max_frame 1 KiB). */
	size_t batch = c->broker->cfg.limits.max_frame / 4;
	cJSON *names = cJSON_CreateArray();
	size_t bytes = 0;

	for (struct sbd_topic *t = c->broker->topics; t != NULL && !c->closed;
	     t = t->next) {
		if (!sb_topic_pattern_match(pattern, t->name) ||
		    !sbd_topic_rule_allows(c, t->name, "subscribe")) {
			continue;
		}
		if (names != NULL &&
		    !cJSON_AddItemToArray(names, cJSON_CreateString(t->name))) {
			cJSON_Delete(names);
			names = NULL;
		}
		bytes += strlen(t->name) + 3;
		if (bytes >= batch) {
			send_topics(c, names);
			names = cJSON_CreateArray();
			bytes = 0;
		}
	}
	if (bytes > 0) {
		send_topics(c, names);
		names = cJSON_CreateArray();
	}
	if (!c->closed) {
		send_topics(c, names); /* empty: the listing is complete */
	} else {
		cJSON_Delete(names);
	}
}

static void free_watches(struct sbd_client *c)
{
	for (uint32_t i = 0; i < c->n_watches; i++) {
		free(c->watches[i]);
	}
	c->n_watches = 0;
}

static void close_after_flush(struct sbd_client *c)
{
	c->closing = true;
	update_events(c);
}

/* Keeps the rest of a chunk for when the client is under its limits. */
static void hold_input(struct sbd_client *c, const char *in, size_t inlen)
{
	c->held = malloc(inlen);
	if (c->held == NULL) {
		sbd_error("client %" PRIu32 ": holding %zu input bytes: out "
			  "of memory",
			  c->id, inlen);
		sbd_client_close(c, "out of memory");
		return;
	}
	memcpy(c->held, in, inlen);
	c->held_len = inlen;
}

/* Closes the descriptors received and not yet taken by a request. */
static void close_in_fds(struct sbd_client *c)
{
	for (int i = 0; i < c->n_in_fds; i++) {
		close(c->in_fds[i]);
	}
	c->n_in_fds = 0;
}

/* Forgets the received descriptors the request took (now the op's), or
 * closes them all when it asked so. */
static void settle_in_fds(struct sbd_client *c, const struct sbd_reply *rep)
{
	if (rep->in_close) {
		close_in_fds(c);
		return;
	}
	c->n_in_fds -= rep->in_taken;
	memmove(c->in_fds, c->in_fds + rep->in_taken,
		sizeof(int) * (size_t)c->n_in_fds);
}

/*
 * Sends the reply to one request. Every request gets exactly one reply, so
 * that its client does not wait for ever: one that cannot go (larger than
 * max_frame, no descriptor left to duplicate the grant, no memory) is
 * replaced by an error saying so.
 */
static void send_reply(struct sbd_client *c, struct sbd_reply *rep)
{
	const struct sb_msg_request *req = &rep->req;
	int r = send_msg(c, rep->msg, rep->fds, rep->nfds);

	rep->msg = NULL; /* sent, queued or freed */
	if (r == -EMSGSIZE) {
		send_msg(c,
			 sb_msg_reply_error(req->has_id, req->id, -EMSGSIZE,
					    "reply larger than "
					    "limits.max_frame"),
			 NULL, 0);
	} else if (r < 0 && !c->closed) {
		sbd_warn("client %" PRIu32 ": reply to \"%s\": %s", c->id,
			 req->op != NULL ? req->op : "request", strerror(-r));
		send_msg(c,
			 sb_msg_reply_error(req->has_id, req->id, r,
					    "the broker could not send the "
					    "reply"),
			 NULL, 0);
	}
}

/* Runs one request (ops.c) and carries out what it comes to. */
static void answer(struct sbd_client *c, const char *payload, size_t len)
{
	struct sbd_reply rep;

	sbd_ops_run(c, payload, len, &rep);
	/* Before sending: a send that fails closes the client, and with it
	 * the descriptors still in c->in_fds, which the op's may not be. */
	settle_in_fds(c, &rep);
	if (!rep.no_reply) {
		send_reply(c, &rep);
	}
	if (rep.list_watch != NULL && !c->closed) {
		send_existing(c, rep.list_watch);
	}
	if (rep.close_after && !c->closed) {
		close_after_flush(c);
	}
	sbd_ops_reply_fini(&rep);
}

/*
 * Hands each frame of the chunk just read to the op handlers, as long as
 * the client stays under its limits: one read of many small requests must
 * not queue an unbounded number of replies. What is left waits in c->held.
 */
static void handle_input(struct sbd_client *c, const char *in, size_t inlen)
{
	const char *payload;
	size_t len;
	int r = 0;

	while (!c->closing && !c->closed) {
		if (inlen > 0 && must_wait(c)) {
			hold_input(c, in, inlen);
			return;
		}
		r = sb_frame_decoder_next(&c->dec, &in, &inlen, &payload, &len);
		if (r != 1) {
			break;
		}
		answer(c, payload, len);
	}
	if (!c->closing && !c->closed && r < 0) {
		char msg[128];

		snprintf(msg, sizeof(msg), "%s",
			 r == -EMSGSIZE ? "frame larger than limits.max_frame"
			 : r == -EPROTO ? "frame of length 0"
					: strerror(-r));
		sbd_warn("client %" PRIu32 ": framing error: %s; closing",
			 c->id, msg);
		send_msg(c, sb_msg_reply_error(false, 0, r, msg), NULL, 0);
		if (!c->closed) {
			close_after_flush(c);
		}
	}
}

/* One recvmsg into the broker's read buffer. Its descriptors are kept for
 * the request that takes them (close-on-exec: they never reach a child).
 * Returns bytes received, or -errno; *fds_bad is set when they were cut
 * off or too many (all are closed then). */
static ssize_t recv_bytes(struct sbd_client *c, bool *fds_bad)
{
	struct sb_fdpass_in in = {.fds = c->in_fds,
				  .n = c->n_in_fds,
				  .max = SBD_MAX_IN_FDS,
				  .room = SBD_MAX_IN_FDS};
	ssize_t n = sb_fdpass_recv(c->fd, c->broker->readbuf,
				   sizeof(c->broker->readbuf), &in);

	c->n_in_fds = in.n;
	*fds_bad = in.truncated || in.extra > 0;
	if (*fds_bad) {
		close_in_fds(c);
	}
	return n;
}

static void read_client(struct sbd_client *c)
{
	struct sbd_broker *b = c->broker;
	bool fds_bad;
	ssize_t n = recv_bytes(c, &fds_bad);

	if (n == -EAGAIN || n == -EINTR) {
		return;
	}
	if (n < 0) {
		sbd_client_close(c, strerror((int)-n));
		return;
	}
	if (fds_bad) {
		sbd_warn("client %" PRIu32 ": descriptors cut off or more "
			 "than %d at once; closing",
			 c->id, SBD_MAX_IN_FDS);
		sbd_client_close(c, "too many descriptors");
		return;
	}
	if (n == 0) {
		sbd_client_close(c, sb_frame_decoder_eof(&c->dec) < 0
					? "connection closed mid-frame "
					  "(truncated frame)"
					: "connection closed");
		return;
	}
	c->last_input = uv_now(b->loop);
	handle_input(c, b->readbuf, (size_t)n);
	/* Descriptors belong to the request whose first byte they came
	 * with; at a frame boundary, any left were sent with a request that
	 * takes none. */
	if (!c->closed && c->n_in_fds > 0 &&
	    sb_frame_decoder_eof(&c->dec) == 0) {
		sbd_debug("client %" PRIu32 ": closing %d descriptor(s) no "
			  "request took",
			  c->id, c->n_in_fds);
		close_in_fds(c);
	}
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
	struct sbd_client *c = poll->data;
	int r;

	c->broker->io_events++;
	if (status < 0) {
		sbd_client_close(c, uv_strerror(status));
		return;
	}
	if ((events & UV_WRITABLE) != 0) {
		r = flush(c);
		if (r < 0) {
			sbd_client_close(c, strerror(-r));
			return;
		}
	}
	if (c->held != NULL && !c->closing && !over_limits(c)) {
		char *held = c->held;

		c->held = NULL;
		handle_input(c, held, c->held_len);
		free(held);
	}
	if ((events & UV_READABLE) != 0 && !c->closing && !c->closed &&
	    c->held == NULL) {
		read_client(c);
	}
	update_events(c);
}

static void on_client_closed(uv_handle_t *handle)
{
	struct sbd_client *c = handle->data;

	if (c->fd >= 0) { /* -1: a drain took it */
		close(c->fd);
	}
	free(c);
}

void sbd_client_close(struct sbd_client *c, const char *why)
{
	struct sbd_broker *b = c->broker;

	if (c->closed) {
		return;
	}
	c->closed = true;
	sbd_info("client %" PRIu32 " (%s, pid %ld) disconnected: %s", c->id,
		 c->name[0] != '\0' ? c->name : "no name", (long)c->cred.pid,
		 why);
	sbd_handles_close_all(&c->handles);
	sbd_services_client_gone(c);
	close_in_fds(c);
	/* Queued copies close with the queue; what was sent may still be
	 * unread in the peer's socket, and a drain keeps it counted. */
	forget_unread(c, queued_fds(c));
	while (c->out_head != NULL) {
		struct sbd_out *o = c->out_head;

		c->out_head = o->next;
		free_out(o);
	}
	c->out_tail = NULL;
	c->out_frames = 0;
	refresh_unread(c);
	if (c->fds_unread > 0 && (b->stopping || start_drain(c) < 0)) {
		forget_unread(c, c->fds_unread);
	}
	free(c->held);
	c->held = NULL;
	free_watches(c);
	sb_frame_decoder_fini(&c->dec);
	if (c->prev != NULL) {
		c->prev->next = c->next;
	} else {
		b->clients = c->next;
	}
	if (c->next != NULL) {
		c->next->prev = c->prev;
	}
	b->n_clients--;
	uv_close((uv_handle_t *)&c->poll, on_client_closed);
}

/* Why a client that is not held back by its limits counts as stalled, or
 * NULL: part of a frame and nothing more, or no hello, for too long. */
static const char *stalled(const struct sbd_client *c, uint64_t now)
{
	bool mid_frame = c->dec.hdr_have != 0 || c->dec.want != 0;

	if (c->closing) {
		return NULL;
	}
	if (mid_frame && now - c->last_input > SBD_STALL_TIMEOUT_MS) {
		return "stalled in the middle of a frame";
	}
	if (!c->hello_done && now - c->since > SBD_STALL_TIMEOUT_MS) {
		return "no hello";
	}
	return NULL;
}

/* Frees the waiter-table entries of writers that died waiting for space,
 * in every topic with memory: named ones, and unnamed ones still held
 * (the broker maps every data header writable, handed-back ones too). */
static void reap_dead_waiters(struct sbd_broker *b)
{
	for (struct sbd_topic *t = b->topics; t != NULL; t = t->next) {
		int n = sb_ring_reap_dead_waiters(&t->ring);

		if (n > 0) {
			sbd_info("topic \"%s\": freed %d waiting writer(s) "
				 "that died",
				 t->name, n);
		}
	}
	for (struct sbd_client *c = b->clients; c != NULL; c = c->next) {
		for (struct sbd_handle *h = c->handles.head; h != NULL;
		     h = h->next) {
			if (!h->topic->named) {
				sb_ring_reap_dead_waiters(&h->topic->ring);
			}
		}
	}
}

/* Closes clients that stayed stalled (over max_pending_bytes, or unable to
 * take their last replies before a close) for too long, and reaps dead
 * writers' waiter entries. Runs once a second. */
void sbd_client_sweep(struct sbd_broker *b)
{
	uint64_t now = uv_now(b->loop);
	struct sbd_client *c;

	reap_dead_waiters(b);
	sweep_drains(b);
	/* Descriptors read since: clients that waited for them go on. */
	for (c = b->clients; c != NULL; c = c->next) {
		refresh_unread(c);
		if (c->fds_wait && !fds_full(c)) {
			c->fds_wait = false;
			update_events(c);
		}
	}
	for (c = b->clients; c != NULL;) {
		struct sbd_client *next = c->next;

		send_overflow(c);
		c = next;
	}
	c = b->clients;

	while (c != NULL) {
		struct sbd_client *next = c->next;

		if (c->over_since != 0 &&
		    now - c->over_since > SBD_BACKPRESSURE_TIMEOUT_MS) {
			sbd_warn("client %" PRIu32 ": %zu reply bytes (%" PRIu32
				 " replies, %" PRIu32 " descriptors) not read "
				 "for %d ms; closing",
				 c->id, c->out_bytes, c->out_frames,
				 c->fds_unread, SBD_BACKPRESSURE_TIMEOUT_MS);
			sbd_client_close(c, "too slow to read its replies");
		} else if (c->over_since == 0 && stalled(c, now) != NULL) {
			sbd_warn("client %" PRIu32 ": %s for %d ms; closing",
				 c->id, stalled(c, now), SBD_STALL_TIMEOUT_MS);
			sbd_client_close(c, stalled(c, now));
		}
		c = next;
	}
}
