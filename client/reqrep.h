/*
 * reqrep.h - what the two sides of request and reply share in the library:
 * a channel as one party holds it (its mappings, its end of the two rings,
 * the eventfds), taking one from the broker's reply, and the wait that
 * sleeps on a party's epoll set of eventfds without losing a wake-up.
 * serve.c is the server's side, requester.c the requester's. Prefix:
 * sb_rr_. Not installed.
 */
#ifndef SB_CLIENT_REQREP_H
#define SB_CLIENT_REQREP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/request.h"
#include "shmbus/shmbus.h"
#include "ring/chan.h"
#include "sys/deadline.h"

/* One channel as one of its parties holds it. */
struct sb_rr_chan {
	uint64_t id; /* the broker's */
	struct sb_chan_end end;
	void *own;  /* our segment, read-write */
	void *peer; /* the other's, read-only */
	size_t seg_size;
	const struct sb_chan_page *state; /* the broker's, read-only */
	int wake_fd;			  /* the other's eventfd: we write it */
	int sleep_fd;			  /* ours, in our epoll set */
	uint32_t outstanding; /* a requester's requests waiting on it */
	bool dead;	      /* broken, or the other end gone: no more use */
};

/* Takes the channel a request_channel or serve_channel reply carries (its
 * five descriptors, checked before they are mapped) and adds its eventfd
 * to `epfd`. Returns 0 with *out set, -EPROTO, -EPERM, -ENOMEM or -errno. */
int sb_rr_chan_open(struct sb_client_reply *rep, int epfd,
		    struct sb_rr_chan **out);

/* Unmaps and frees `ch` (NULL: nothing). */
void sb_rr_chan_close(struct sb_rr_chan *ch, int epfd);

/* The channel's state as the broker last wrote it (SB_CHAN_*). */
uint32_t sb_rr_chan_state(const struct sb_rr_chan *ch);

/* Commits the held claim on `ch` and wakes the other side if it sleeps. */
void sb_rr_chan_commit(struct sb_rr_chan *ch);

/*
 * What a server and a requester share (reqrep_party.c): the channels the
 * party holds, the epoll set of their eventfds it sleeps on, and how it
 * asks the broker for new ones when its page's gen moves (a server's own
 * page, a requester's service page).
 */
struct sb_rr_party {
	shmbus *bus;
	const char *op;	      /* "serve_channel" or "request_channel" */
	const char *field;    /* "server" or "requester" */
	int64_t id;	      /* the broker's id of the party; 0: none yet */
	uint32_t max_message; /* the service's, for requests and replies */
	bool have_ref;	      /* on the connection, once the open succeeded */
	int epfd;
	const struct sb_chan_page *page;
	bool page_wakes; /* a sleep ends when the page's gen moves */
	uint64_t known_gen;
	bool have_gen;
	struct sb_rr_chan **v;
	size_t n, cap;
};

/* Sets up `p` with a fresh epoll set: 0 or -errno. */
int sb_rr_party_init(struct sb_rr_party *p, shmbus *bus, const char *op,
		     const char *field, bool page_wakes);

/* Closes every channel, unmaps the page, closes the epoll set. */
void sb_rr_party_fini(struct sb_rr_party *p);

/*
 * Opens the party at the broker: `open_op` ("serve_open" or
 * "request_open") for `service`, whose reply names the party's id (in
 * p->field) and the service's geometry, and carries `nfds` descriptors,
 * the first the party's page, which is mapped. `rep` is the caller's, to
 * take more descriptors from and to finish. Takes a reference on the
 * connection on success. 0, -ENOMEM, -EPROTO, -EPERM or the call's error.
 */
int sb_rr_party_open(struct sb_rr_party *p, const char *open_op,
		     const char *service, int nfds,
		     struct sb_client_reply *rep);

/*
 * Tells the broker the party is gone with `close_op` (best effort: a
 * broker that went away has let go of it already; nothing is sent when the
 * open failed before an id), then sb_rr_party_fini() and drops the
 * connection's reference if it was taken.
 */
void sb_rr_party_close(struct sb_rr_party *p, const char *close_op);

/* Asks the broker for the channels it has for the party (one per
 * request, while it says more) if the page's gen moved since the last
 * time. 0, or the error of a request. */
int sb_rr_refresh(struct sb_rr_party *p);

/* Closes channel `i`; the last channel moves into its place. */
void sb_rr_drop(struct sb_rr_party *p, size_t i);

/*
 * Before a party sleeps or lets its caller poll its descriptor: clears its
 * eventfds, marks every live channel asleep (so that the other side writes
 * its eventfd after a commit) and looks once more at each (records,
 * state) and, when page_wakes, at the page's gen. Returns true when there
 * is news: then do not sleep. The marks stay until sb_rr_disarm().
 */
bool sb_rr_arm(struct sb_rr_party *p);
void sb_rr_disarm(struct sb_rr_party *p);

/*
 * Waits for news until the wait `w` ends: polls a few microseconds, then
 * arms and sleeps on the epoll set. Returns 0 (look again) or -ETIMEDOUT
 * (the deadline passed, news or not).
 */
int sb_rr_sleep(struct sb_rr_party *p, struct sb_wait *w);

/* A fresh epoll descriptor, or -errno. */
int sb_rr_epoll(void);
/* Adds eventfd `fd` to the epoll set `epfd` (readable: a wake). */
int sb_rr_epoll_add(int epfd, int fd);

/* Checks that the first descriptor of `rep` is a broker page (the
 * broker's sealed memfd, a page long) and maps it read-only. Returns 0
 * with *page set, -EPERM, -EPROTO or -errno. */
int sb_rr_take_page(const struct sb_client_reply *rep,
		    const struct sb_chan_page **page);
void sb_rr_unmap_page(const struct sb_chan_page *page);

/* Reads the geometry every service reply carries. */
int sb_rr_geometry(const struct sb_client_reply *rep, uint64_t *capacity,
		   uint32_t *max_message);

#endif
