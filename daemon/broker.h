/*
 * broker.h - the broker's shared state and the interfaces between its
 * files: the server (listening socket, accept), clients (one connection
 * each: framing, outbound queue, handles), topics (the registry and the
 * shared memory of each topic) and ops (the control protocol's handlers).
 * Only daemon/ includes this header, and only daemon/ includes <uv.h>.
 *
 * Lifecycle rules (docs/architecture.md says the same in prose):
 * - A handle (pub or sub) belongs to one client and holds one reference on
 *   one topic. Closing a handle drops the reference; closing a client
 *   closes its handles, after reaping its subscriber slots.
 * - A topic is named (in the registry) from creation until topic_delete or,
 *   for an implicit topic, until its last reference goes and its linger
 *   ends. Its memory is freed when it is neither named nor referenced.
 * - uv handles embedded in a struct are closed with uv_close(); the struct
 *   is freed in the close callback, never before.
 */
#ifndef SBD_BROKER_H
#define SBD_BROKER_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "config/config.h"
#include "wire/frame.h"
#include "wire/message.h"
#include "ring/chan.h"
#include "ring/ring.h"
#include "wire/sockpath.h"
#include "wire/version.h"

#define SBD_VERSION SB_VERSION

/* Handles one client may hold at once (pub_open/sub_open answer EMFILE). */
#define SBD_MAX_HANDLES_PER_CLIENT 1024

/* How long a client may stay over limits.max_pending_bytes before the
 * broker gives up on it and closes the connection. */
#define SBD_BACKPRESSURE_TIMEOUT_MS 10000

/* How long a client may sit on part of a frame, or stay connected without
 * saying hello, before the broker closes it: a peer that stalls mid-frame
 * or never speaks must not hold a connection (and a max_clients place) for
 * ever. */
#define SBD_STALL_TIMEOUT_MS 10000

/* Longest supplementary group list read with SO_PEERGROUPS. */
#define SBD_MAX_GROUPS 64

/* Descriptors a client may have sent ahead of the request that takes
 * them (topic_adopt takes two); more closes the connection. */
#define SBD_MAX_IN_FDS 4 /* topic_adopt takes three: data, control, slot */

/* How long a restarted broker keeps the slots its predecessor gave out
 * (recorded in the ring's header) for their subscribers to hand back;
 * writers hold back for them meanwhile (slots.c). */
#define SBD_SLOT_GRACE_MS 10000

/* Descriptors one reply carries at most: a request/reply channel's five
 * (two segments, its state page, two eventfds), a sub_open's three (data,
 * control, slot), or a page of op slots. */
#define SBD_OUT_FDS 5

/* Patterns one connection may watch (topic_watch). */
#define SBD_MAX_WATCHES 16

/* Slot segments one reply of op slots carries at most. */
#define SBD_SLOTS_PAGE 4

/* Servers and requesters one connection may hold at once (services.c). */
#define SBD_MAX_RR_PER_CLIENT 256

struct sbd_broker;
struct sbd_client;
struct sbd_handle;
struct sbd_server;
struct sbd_requester;
struct sbd_service;

/* One subscriber's slot segment (slots.c). */
struct sbd_slot {
	int fd;			   /* the memfd, read-write; -1: none */
	struct sb_ring_slot *mem;  /* the broker's mapping */
	struct sbd_handle *handle; /* the subscriber's, while it has one */
	bool pending; /* given out by the previous broker, not yet back */
};

/* What the broker's sweep last saw of one subscriber slot, to tell how
 * long its position has stood still with messages waiting (stat's
 * stalled_ms, and max_stall_ms). */
struct sbd_stall {
	uint32_t state;	   /* the slot's state: a new reader starts afresh */
	uint64_t position; /* its position then */
	uint64_t since;	   /* uv_now when it was first seen stuck there */
	bool stuck;	   /* at `position` with messages to read since then */
};

/* One topic: its name, geometry, shared memory and references. */
struct sbd_topic {
	struct sbd_broker *broker;
	struct sbd_topic *next; /* in broker->topics while named */
	char *name;
	struct sb_ring_config geo;
	uint32_t linger_ms;
	uint32_t max_stall_ms; /* 0: never evict a stalled subscriber */
	uint64_t evictions; /* subscribers evicted (sub_evict, max_stall_ms) */
	struct sbd_stall *stall; /* geo.slot_count entries */
	bool persistent;
	bool is_explicit; /* topic_create or config: stays until deleted */
	bool named;	  /* in the registry */
	bool lingering;	  /* the linger timer runs */
	bool adopted;	  /* memory handed back by clients (topic_adopt) */
	bool handed_out;  /* some client was given its descriptors */
	int data_fd;	  /* read-write; mode 0400 once ro_fd exists; -1 for
			   * a topic only subscribers handed back */
	int ro_fd;	  /* read-only reopening of data_fd, for subscribers */
	int ctl_fd;
	/* A persistent topic's file in data_dir (flock'ed), which clients
	 * never see: data_fd is a memfd the broker writes back here
	 * (persist.c). -1 for other topics, and once the topic is unnamed. */
	int file_fd;
	struct {
		bool known; /* false: the file may hold another ring */
		uint64_t oldest, tail, next_seq; /* its header, as written */
	} file;
	bool persist_warned; /* a write-back problem was logged */
	void *shm_data;
	void *shm_ctl;
	uint64_t data_size;
	uint64_t ctl_size;
	dev_t data_dev; /* identity of the memory, so that a second client */
	ino_t data_ino; /* handing a topic back is matched to the same */
	dev_t ctl_dev;	/* segments, not registered twice */
	ino_t ctl_ino;
	struct sb_ring ring; /* the broker's own attachment */
	/* The subscribers' slot segments (slots.c): geo.slot_count each. */
	struct sbd_slot *slots;
	struct sb_ring_slot_map slot_map; /* the ring's view of them */
	uint32_t slots_pending;		  /* slots awaiting their hand-back */
	uint64_t slots_since;		  /* uv_now when those were found */
	unsigned refs;			  /* handles on this topic */
	unsigned publishers;
	unsigned subscribers;
	uv_timer_t linger; /* always initialised; closed when freed */
};

/* A pub or sub handle of one client on one topic. */
struct sbd_handle {
	struct sbd_handle *next;
	uint32_t id;
	uint32_t client_id; /* its client's */
	bool sub;
	int32_t slot;		 /* a subscriber's slot segment, or -1 */
	struct sbd_topic *topic; /* holds a reference */
};

/* One client's handles (handles.c). */
struct sbd_handles {
	struct sbd_handle *head;
	uint32_t count;
	uint32_t last_id;   /* handle ids count up from 1 */
	uint32_t client_id; /* the owner's, recorded in each handle */
};

/* One queued outbound frame, with the descriptors that go with it. */

struct sbd_out {
	struct sbd_out *next;
	char *buf;
	size_t len;
	size_t off;
	int fds[SBD_OUT_FDS];
	int nfds; /* sent with the first byte, then closed here */
};

/*
 * A connection the broker closed while descriptors it sent on it may still
 * be unread: the kernel keeps charging them to the broker's uid (they sit
 * in the peer's socket) until the peer reads them or closes its end, so
 * the broker keeps its own end open, shut down, and counts it as a client
 * of its uid until then (client.c).
 */
struct sbd_drain {
	struct sbd_drain *next;
	int fd;
	uid_t uid;
	uint32_t fds; /* its part of broker->fds_unread */
};

/* Peer credentials taken at accept. */
struct sbd_cred {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	uint32_t gids[SBD_MAX_GROUPS]; /* primary first, then supplementary */
	size_t n_gids;
};

struct sbd_client {
	struct sbd_broker *broker;
	struct sbd_client *next;
	struct sbd_client *prev;
	uint32_t id; /* nonzero; also the owner token of its slots */
	int fd;
	uv_poll_t poll;
	int poll_events; /* what `poll` was last started with; 0 at first */
	struct sbd_cred cred;
	struct sb_frame_decoder dec;
	bool hello_done;
	bool closing;  /* no more reading: flush, then close */
	bool closed;   /* uv_close called */
	char name[65]; /* from hello, for logs */
	struct sbd_out *out_head;
	struct sbd_out *out_tail;
	size_t out_bytes;
	uint32_t out_frames; /* replies queued: requests not yet answered */
	uint64_t over_since; /* uv_now when a limit was passed, or 0 */
	uint64_t since;	     /* uv_now at accept */
	uint64_t last_input; /* uv_now when bytes last came in */
	/* Input read but not yet handled because the client went over its
	 * limits in the middle of a read: at most one read's worth. */
	char *held;
	size_t held_len;
	struct sbd_handles handles;
	/* A failed notice was logged at warn level: later ones go to debug. */
	bool notice_warned;
	int in_fds[SBD_MAX_IN_FDS]; /* received (SCM_RIGHTS), not yet taken */
	int n_in_fds;
	/* Descriptors given to this client (queued, or sent and maybe not
	 * yet received), and whether its requests wait for them to be read
	 * (client.c explains the estimate). */
	uint32_t fds_unread;
	bool fds_wait;
	/* topic_watch: the patterns whose topics' creation and removal this
	 * client is told of, and whether events were dropped because it did
	 * not read them (an "overflow" event then follows). */
	char *watches[SBD_MAX_WATCHES];
	uint32_t n_watches;
	bool events_dropped;
	/* Request/reply (services.c): this connection's servers and
	 * requesters, n_rr of them together. */
	struct sbd_server *servers;
	struct sbd_requester *requesters;
	uint32_t n_rr;
};

struct sbd_broker {
	uv_loop_t *loop;
	uint64_t io_events; /* client and listener events handled, for the
			     * loop's busy poll (broker.c) */
	uv_loop_t loop_store;
	struct sb_config cfg;
	const char *config_path;  /* NULL: built-in defaults only */
	const char *flag_socket;  /* --socket, or NULL; wins over the file */
	int flag_log_level;	  /* --log-level, or -1; wins over the file */
	int64_t flag_socket_mode; /* --socket-mode, or -1; wins over the file */
	int64_t flag_socket_group; /* --socket-group (a gid), or -1; likewise */
	char socket_path[SB_SOCKET_PATH_MAX + 1];
	int listen_fd;
	int reserve_fd;	  /* spare descriptor for surviving EMFILE on accept */
	dev_t socket_dev; /* identity of the socket file we bound, so that */
	ino_t socket_ino; /* we remove it only if it is still ours */
	gid_t socket_gid; /* the socket file's group, for the log */
	uv_poll_t listen_poll;
	uv_signal_t sig_term;
	uv_signal_t sig_int;
	uv_signal_t sig_hup;
	uv_timer_t sweep;   /* back-pressure, dead writers, stalled readers */
	uv_timer_t persist; /* write-back of persistent topics */
	struct sbd_client *clients;
	uint32_t n_clients;
	struct sbd_drain *drains; /* closed, with descriptors unread */
	uint32_t n_drains;
	uint64_t nofile;     /* RLIMIT_NOFILE, after raising it at start */
	uint32_t fds_budget; /* bound on fds_unread, from nofile */
	uint32_t fds_unread; /* of every client and drain together */
	uint32_t next_client_id;
	struct sbd_service *services; /* services.c */
	uint32_t n_services;
	uint32_t next_rr_id;	  /* servers' and requesters' ids */
	uint64_t next_chan_id;	  /* channels' ids */
	struct sbd_topic *topics; /* named topics */
	uint32_t n_topics;	  /* named or not, with memory */
	uint64_t ring_bytes;	  /* capacity of every topic with memory */
	bool stopping;
	char readbuf[65536];
};

/* server.c */
int sbd_server_listen(struct sbd_broker *b);
int sbd_server_start(struct sbd_broker *b);
void sbd_server_stop(struct sbd_broker *b);

/* client.c */
void sbd_client_accept(struct sbd_broker *b, int fd);
void sbd_client_close(struct sbd_client *c, const char *why);
/* Tells the clients that watch a pattern matching `name`, and may
 * subscribe to it, that the topic was created (or removed). */
void sbd_client_topic_event(struct sbd_broker *b, const char *name,
			    bool created);
void sbd_client_sweep(struct sbd_broker *b);
uint32_t sbd_client_fds_bound(const struct sbd_broker *b);
void sbd_client_drains_close(struct sbd_broker *b);

/* handles.c: one client's handles */
void sbd_handles_init(struct sbd_handles *hs, uint32_t client_id);
/* A new handle on `t`, taking a reference on it, or NULL (out of memory). */
struct sbd_handle *sbd_handle_add(struct sbd_handles *hs, struct sbd_topic *t,
				  bool sub);
/* The handle `id`, or NULL. */
struct sbd_handle *sbd_handle_find(const struct sbd_handles *hs, uint32_t id);
/* Closes handle `id` (its slot, its reference): 0, or -ENOENT. */
int sbd_handle_close(struct sbd_handles *hs, uint32_t id);
/* Closes every handle: the connection is closing. */
void sbd_handles_close_all(struct sbd_handles *hs);

/*
 * ops.c (the dispatch; the handlers in ops_*.c): what one request comes
 * to, for client.c to carry out (the ops never send, nor call into
 * client.c): the reply with the descriptors it carries, what becomes of
 * the descriptors that came with the request, and whether the connection
 * closes after.
 */
struct sbd_reply {
	struct sb_msg_request req; /* the request: its id, its op */
	bool no_reply;		   /* a notice: nothing is sent */
	cJSON *msg; /* the reply (NULL: out of memory); taken by the send */
	int fds[SBD_OUT_FDS]; /* borrowed from the topic, unless own_fds */
	int nfds;
	bool own_fds;	  /* fds are the reply's: sbd_ops_reply_fini() closes */
	bool close_after; /* close the connection once the reply is out */
	int in_taken;	  /* the first in_taken of c->in_fds are the op's now */
	bool in_close;	  /* close every one of c->in_fds: the request was
			   * refused before it knew how many it carries */
	cJSON *result;	  /* the ops' own: a handler's result, until msg */
	/* topic_watch: the pattern (the client's own copy) whose existing
	 * topics go out as events right after the reply. */
	const char *list_watch;
};
/* Runs one request (a frame's payload) and fills *rep with its outcome. */
void sbd_ops_run(struct sbd_client *c, const char *payload, size_t len,
		 struct sbd_reply *rep);
/* Frees what is left of a reply once client.c has carried it out. */
void sbd_ops_reply_fini(struct sbd_reply *rep);

/* topic.c */
struct sbd_topic *sbd_topic_find(struct sbd_broker *b, const char *name);
int sbd_topic_create(struct sbd_broker *b, const char *name,
		     const struct sb_config_topic *settings, bool is_explicit,
		     struct sbd_topic **out, struct sb_msg_error *err);
/* What a client hands back in topic_adopt (ops_adopt.c parses, topic.c checks).
 */
struct sbd_adopt {
	const char *name;
	struct sb_ring_config geo; /* slot_count unused: the ring's own */
	bool persistent;
	bool is_explicit;
	bool writable; /* "access": "publish": data_fd must be read-write */
	int data_fd;   /* owned by the request; topic.c keeps or closes */
	int ctl_fd;
	/* The peer, whose rights topic.c checks for what the hand-back
	 * would do (register a name: admin; replace memory: publish). */
	const struct sbd_client *client;
};
int sbd_topic_adopt(struct sbd_broker *b, struct sbd_adopt *a,
		    struct sbd_topic **out, const char **how,
		    struct sb_msg_error *err);
void sbd_topic_ref(struct sbd_topic *t);
void sbd_topic_unref(struct sbd_topic *t);
void sbd_topic_unname(struct sbd_topic *t);
/* Checks the topic's "publish", "subscribe" or "admin" rule against the
 * client's credentials: 0, or -EACCES with err filled and the refusal
 * logged. The rules are the config's as it is now (a reload applies). */
int sbd_topic_check_rule(const struct sbd_client *c, const char *topic,
			 const char *what, struct sb_msg_error *err);
/* The same check, quietly: whether the rule allows the client. */
bool sbd_topic_rule_allows(const struct sbd_client *c, const char *topic,
			   const char *what);
const struct sb_config_topic *sbd_config_topic(const struct sbd_broker *b,
					       const char *name);
int sbd_topic_predeclare(struct sbd_broker *b);
void sbd_topic_free_all(struct sbd_broker *b);
cJSON *sbd_topic_info(const struct sbd_topic *t);

/*
 * One page of a listing reply (page.c): the bytes and entries it may still
 * take. Entries are offered in order; the first that does not fit (or is
 * past the request's limit) ends the page with `more` set.
 */
struct sbd_page {
	size_t room;  /* bytes left for entries */
	int64_t left; /* entries left under the request's limit */
	int taken;
	bool more; /* an entry was left for the next page */
};

/* A page for a reply of at most `max_frame` bytes whose other fields print
 * as `fixed` bytes, with at most `limit` entries. */
void sbd_page_init(struct sbd_page *p, size_t max_frame, size_t fixed,
		   int64_t limit);

/* Takes `item` (not owned) when it fits, leaving room for a "next" cursor
 * of `next_cost` printed bytes after it; otherwise ends the page. */
bool sbd_page_fits(struct sbd_page *p, const cJSON *item, size_t next_cost);

/* The length of `item` printed unformatted (0 if out of memory). */
size_t sbd_page_printed(const cJSON *item);

/* Where a topic_stat page starts: after the subscriber in slot `id`, or
 * after the publishing client `id` (subscribers are listed first, then
 * publishers); id -1 with publisher false: from the start. */
struct sbd_stat_cursor {
	bool publisher;
	int64_t id;
};

/* topic_stat's result, with at most `limit` of its subscribers and
 * publishers from `from` on, as many as fit in a reply of `max_frame`
 * bytes, and "more" and "next" (protocol.md, Paging). `page` tells what
 * was taken. NULL when out of memory. */
cJSON *sbd_topic_stat(const struct sbd_topic *t, struct sbd_stat_cursor from,
		      int64_t limit, size_t max_frame, struct sbd_page *page);
int sbd_topic_evict(struct sbd_topic *t, uint32_t slot, uint32_t state,
		    const char *why);
void sbd_topic_sweep(struct sbd_broker *b);

/* The name of a memfd of topic `topic`: "shmbus:<topic><suffix>". */
void sbd_memfd_name(const char *topic, const char *suffix, char *out,
		    size_t len);

/* A sealed memfd of `size` bytes for topic `topic`, named by
 * sbd_memfd_name() (`what` names it in logs), with its memory committed.
 * Returns 0 with *out set, or -errno. */
int sbd_memfd(const char *topic, const char *suffix, uint64_t size,
	      const char *what, int *out);

/* A new read-only descriptor of what `fd` is open on (through
 * /proc/self/fd), or -errno. */
int sbd_reopen_read_only(int fd);

/* ---- slots.c: the subscribers' slot segments ---- */

/* After the ring is attached: the table of slot segments, with the slots
 * the ring's header records as in use (a ring handed back after a
 * restart) awaiting their subscribers from `now` on. 0 or -ENOMEM. */
int sbd_slots_init(struct sbd_topic *t, uint64_t now);
void sbd_slots_fini(struct sbd_topic *t);
/* A new slot segment for subscriber handle `h`: returns its index, or an
 * error (EUSERS: none free). */
int sbd_slot_open(struct sbd_topic *t, struct sbd_handle *h,
		  struct sb_msg_error *err);
/* Frees `h`'s slot: in the ring if its reader did not, then here. */
void sbd_slot_close(struct sbd_topic *t, struct sbd_handle *h);
/* Drops slot `i` from the set writers wait for (after an eviction). */
void sbd_slot_forget(struct sbd_topic *t, uint32_t i);
/* The id of the client whose subscriber holds slot `i`, or 0. */
uint32_t sbd_slot_client(const struct sbd_topic *t, uint32_t i);
/* Takes back slot `index`, awaited since a restart, for `h`: `fd` (taken)
 * must be a sealed read-write memfd of the broker's uid. */
int sbd_slot_adopt(struct sbd_topic *t, struct sbd_handle *h, int64_t index,
		   int fd, struct sb_msg_error *err);
/* Ends the wait for slots not handed back within SBD_SLOT_GRACE_MS. */
void sbd_slots_sweep(struct sbd_topic *t, uint64_t now);
/* The result of op slots from index `from`: "gen", "slots" (indexes whose
 * read-only descriptors are put in fds, at most SBD_SLOTS_PAGE), "pending",
 * "next" when more follow, "fds". NULL when out of memory or descriptors. */
cJSON *sbd_slots_page(const struct sbd_topic *t, uint32_t from, int *fds,
		      int *nfds);

/* persist.c: a persistent topic's file (see the top of persist.c). */
/* Opens (creating) and locks the file, sized to t->data_size; *existed
 * when it had that size already. Sets t->file_fd. */
int sbd_persist_open(struct sbd_topic *t, bool *existed);
/* Reads the whole file into t->shm_data. */
int sbd_persist_load(struct sbd_topic *t);
/* After a ring loaded from the file was kept: the file holds it. */
void sbd_persist_loaded(struct sbd_topic *t);
/* Writes what changed since the last time to the file. Returns 0 (also
 * when nothing changed or the topic has no file), -EAGAIN (writers lapped
 * the copy), or another negative errno (logged). */
int sbd_persist_write_back(struct sbd_topic *t);
/* The last write-back, then the file is closed (and unlocked). */
void sbd_persist_close(struct sbd_topic *t);
/* Writes back every named topic: the persist_interval_ms timer. */
void sbd_persist_sweep(struct sbd_broker *b);

/*
 * ---- services.c: request and reply (docs/protocol.md, "Request and
 * reply"; docs/shm-layout.md, "Request/reply channels") ----
 *
 * A service is a name with servers and requesters; it exists while it has
 * either, or for ever when the config declares it. Each (requester,
 * server) pair gets a channel the first time the requester asks for the
 * servers it has none with. A channel belongs to both its ends: whichever
 * goes first marks it in its state page (which only the broker writes),
 * wakes the other end through its eventfd and frees it.
 */
struct sbd_chan {
	uint64_t id;
	struct sbd_server *srv;
	struct sbd_requester *rq;
	struct sbd_chan *snext;	    /* in srv->chans */
	struct sbd_chan *rnext;	    /* in rq->chans */
	int req_fd, rep_fd;	    /* the two segments, until the server has
				     * its end; then -1 */
	int st_fd;		    /* the state page, likewise */
	int to_server;		    /* eventfd the requester writes */
	int to_requester;	    /* eventfd the server writes */
	struct sb_chan_page *state; /* the broker's mapping */
	uint64_t bytes;		    /* of ring, counted in ring_bytes */
	bool server_has;	    /* the server was given its end */
};

struct sbd_server {
	struct sbd_server *next;  /* in the service's list */
	struct sbd_server *cnext; /* in the client's list */
	struct sbd_service *svc;
	struct sbd_client *client;
	uint32_t id;
	int efd;		   /* the broker wakes it: a new channel */
	int page_fd;		   /* its page (gen: channels given) */
	struct sb_chan_page *page; /* the broker's mapping */
	struct sbd_chan *chans;
};

struct sbd_requester {
	struct sbd_requester *next;
	struct sbd_requester *cnext;
	struct sbd_service *svc;
	struct sbd_client *client;
	uint32_t id;
	struct sbd_chan *chans;
};

struct sbd_service {
	struct sbd_broker *broker;
	struct sbd_service *next;
	char *name;
	bool declared; /* in the config: kept without users */
	uint64_t capacity;
	uint32_t max_message;
	int page_fd;		   /* gen: servers changed; count: servers */
	struct sb_chan_page *page; /* the broker's mapping */
	struct sbd_server *servers;
	struct sbd_requester *requesters;
	uint32_t n_servers;
};

/* The service `name`, made if the config declares it or auto_create is on
 * (-ENOENT otherwise). */
int sbd_service_get(struct sbd_broker *b, const char *name,
		    struct sbd_service **out, struct sb_msg_error *err);
/* Checks the service's "serve" or "request" rule: 0, or -EACCES. */
int sbd_service_check_rule(const struct sbd_client *c, const char *name,
			   const char *what, struct sb_msg_error *err);
int sbd_server_add(struct sbd_client *c, struct sbd_service *svc,
		   struct sbd_server **out, struct sb_msg_error *err);
int sbd_requester_add(struct sbd_client *c, struct sbd_service *svc,
		      struct sbd_requester **out, struct sb_msg_error *err);
struct sbd_server *sbd_server_find(const struct sbd_client *c, uint32_t id);
struct sbd_requester *sbd_requester_find(const struct sbd_client *c,
					 uint32_t id);
/* Ends a server: its channels are marked SB_CHAN_SERVER_GONE and their
 * requesters woken. */
void sbd_server_remove(struct sbd_server *srv);
/* Ends a requester: its channels are marked SB_CHAN_REQUESTER_GONE. */
void sbd_requester_remove(struct sbd_requester *rq);
/* A new channel between `rq` and a server of its service it has none
 * with: 0 with *out set, 0 with *out NULL when it has one with every
 * server, or an error (ENOSPC: over max_ring_bytes). */
int sbd_chan_make(struct sbd_requester *rq, struct sbd_chan **out,
		  struct sb_msg_error *err);
/* The server's first channel it was not given yet, or NULL. */
struct sbd_chan *sbd_chan_next_for_server(const struct sbd_server *srv);
/* The server was sent its end: the broker's copies of the segments go. */
void sbd_chan_given_to_server(struct sbd_chan *ch);
/* Whether `srv` has channels it was not given yet. */
bool sbd_server_has_new(const struct sbd_server *srv);
/* The connection closed: every server and requester of it ends. */
void sbd_services_client_gone(struct sbd_client *c);
/* At exit: the declared services' memory. */
void sbd_services_free_all(struct sbd_broker *b);

/* broker.c */
int sbd_broker_socket_path(const struct sbd_broker *b,
			   const struct sb_config *cfg, char *buf, size_t len);
void sbd_broker_apply_flags(struct sbd_broker *b, struct sb_config *cfg);
int sbd_broker_run(struct sbd_broker *b);

#endif
