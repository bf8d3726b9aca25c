/*
 * tickets.h - a requester's outstanding requests (requester.c), indexed by
 * their correlation id, which is also the ticket the caller holds: a reply
 * is matched in constant time however many requests are in flight, and
 * the requests that have their outcome wait in a list, oldest first, for
 * shmbus_request_take() of any ticket. Prefix: sb_tickets_. Not installed.
 */
#ifndef SB_CLIENT_TICKETS_H
#define SB_CLIENT_TICKETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sb_ticket {
	struct sb_ticket *hnext; /* in its bucket */
	struct sb_ticket *dprev; /* in the done list, once done */
	struct sb_ticket *dnext;
	uint64_t id;	  /* the correlation id, and the caller's ticket */
	const void *chan; /* the channel it waits on; NULL once done */
	bool done;	  /* has its outcome: */
	int error;	  /* 0 (a reply) or a negative errno */
	void *reply;	  /* the reply's copy (malloc'd) */
	size_t len;
};

struct sb_tickets {
	struct sb_ticket **buckets;
	size_t n_buckets; /* a power of two, or 0 */
	size_t count;
	struct sb_ticket *done_head;
	struct sb_ticket *done_tail;
};

/* Adds `t` (its id set, not yet present): 0, or -ENOMEM. */
int sb_tickets_add(struct sb_tickets *ts, struct sb_ticket *t);

/* The ticket `id`, or NULL. */
struct sb_ticket *sb_tickets_find(const struct sb_tickets *ts, uint64_t id);

/* Gives `t` its outcome and queues it for sb_tickets_first_done(). */
void sb_tickets_done(struct sb_tickets *ts, struct sb_ticket *t, int error);

/* Every ticket waiting on `chan` gets `error`. */
void sb_tickets_fail_chan(struct sb_tickets *ts, const void *chan, int error);

/* The oldest ticket that has its outcome, or NULL. */
struct sb_ticket *sb_tickets_first_done(const struct sb_tickets *ts);

/* Unlinks and frees `t` (and its reply). */
void sb_tickets_free(struct sb_tickets *ts, struct sb_ticket *t);

/* Frees every ticket and the index. */
void sb_tickets_fini(struct sb_tickets *ts);

#endif
