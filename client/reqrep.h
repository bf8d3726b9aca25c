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
 * Before a party sleeps or lets its caller poll its descriptor: clears its
 * eventfds, marks every live channel of `v` asleep (so that the other side
 * writes its eventfd after a commit) and looks once more at each (records,
 * state) and at gen_page->gen against `known_gen` (a broker page whose gen
 * moving is news; NULL: none). Returns true when there is news: then do
 * not sleep. The marks stay until sb_rr_disarm().
 */
bool sb_rr_arm(struct sb_rr_chan **v, size_t n, int epfd,
	       const struct sb_chan_page *gen_page, uint64_t known_gen);
void sb_rr_disarm(struct sb_rr_chan **v, size_t n);

/*
 * Sleeps until an eventfd of `epfd` is written or the wait `w` ends: marks
 * every live channel of `v` asleep, looks once more at each (records,
 * state) and at *gen_page against `known_gen` (a broker page whose gen
 * moving is news; NULL: none), and only then waits. Returns 0 (look
 * again) or -ETIMEDOUT (the deadline passed, news or not).
 */
int sb_rr_sleep(struct sb_rr_chan **v, size_t n, int epfd,
		const struct sb_chan_page *gen_page, uint64_t known_gen,
		struct sb_wait *w);

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
