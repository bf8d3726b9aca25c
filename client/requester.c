/*
 * requester.c - the requester's side of request and reply (shmbus.h):
 * channels asked of the broker when the service's page says its servers
 * changed, each request sent on the live channel with the fewest
 * outstanding (round robin among equals) with a random correlation id, and
 * replies matched to tickets by channel and id. A channel whose server
 * went (its state page) fails the tickets it holds with -ECONNABORTED; one
 * that breaks the layout, with -EBADMSG. Nothing here trusts the server:
 * it can write only its reply segment, whose records are checked
 * (ring/chan.c), and a reply it makes up matches no ticket of another
 * channel.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "client/bus_internal.h"
#include "client/reqrep.h"
#include "client/tickets.h"
#include "wire/topic_name.h"

#define RANDOM_BATCH 32

struct shmbus_requester {
	struct sb_rr_party p;	   /* page: the service's (gen: servers) */
	size_t rr;		   /* where the round robin goes on */
	struct sb_tickets tickets; /* outstanding, by correlation id */
	uint64_t dropped;
	uint64_t random[RANDOM_BATCH]; /* correlation ids to come */
	unsigned n_random;
};

/* A random correlation id: getrandom once per RANDOM_BATCH requests, so
 * that sending makes no system call most of the time. Nonzero, and none
 * of another outstanding request's. */
static int next_corr(shmbus_requester *rq, uint64_t *out)
{
	do {
		if (rq->n_random == 0) {
			if (getrandom(rq->random, sizeof(rq->random), 0) !=
			    (ssize_t)sizeof(rq->random)) {
				return -EAGAIN;
			}
			rq->n_random = RANDOM_BATCH;
		}
		*out = rq->random[--rq->n_random];
		rq->random[rq->n_random] = 0; /* used once */
	} while (*out == 0 || sb_tickets_find(&rq->tickets, *out) != NULL);
	return 0;
}

/* Every ticket still waiting on channel `i` gets `error`; the channel is
 * used no more and goes. */
static void chan_fail(shmbus_requester *rq, size_t i, int error)
{
	struct sb_rr_chan *ch = rq->p.v[i];

	sb_tickets_fail_chan(&rq->tickets, ch, error);
	sb_rr_drop(&rq->p, i);
}

/* Files one reply: to its ticket, which must wait on this very channel
 * (a server sees only its own requests' ids), or dropped. */
static void file_reply(shmbus_requester *rq, struct sb_rr_chan *ch,
		       uint64_t corr, const void *data, size_t len)
{
	struct sb_ticket *t = sb_tickets_find(&rq->tickets, corr);

	if (t == NULL || t->done || t->chan != ch) {
		rq->dropped++;
		return;
	}
	ch->outstanding--;
	t->reply = malloc(len != 0 ? len : 1);
	if (t->reply == NULL) {
		sb_tickets_done(&rq->tickets, t, -ENOMEM);
		return;
	}
	memcpy(t->reply, data, len);
	t->len = len;
	sb_tickets_done(&rq->tickets, t, 0);
}

/* Reads the replies channel `i` holds: at most a ring's worth of records
 * (capacity / 16), so that a server writing replies as fast as they are
 * read cannot keep the requester here. Returns -EBADMSG when it broke. */
static int drain(shmbus_requester *rq, size_t i)
{
	struct sb_rr_chan *ch = rq->p.v[i];
	uint64_t left = ch->end.capacity / 16;
	const void *data;
	uint64_t corr;
	size_t len;
	int r = 0;

	while (left-- > 0 &&
	       (r = sb_chan_peek(&ch->end, &corr, &data, &len)) == 0) {
		file_reply(rq, ch, corr, data, len);
		sb_chan_consume(&ch->end);
	}
	return r == -EAGAIN ? 0 : r;
}

/* Takes in every reply that arrived and every server that went. */
static void dispatch(shmbus_requester *rq)
{
	for (size_t i = 0; i < rq->p.n;) {
		int r = drain(rq, i);

		if (r == 0 && sb_rr_chan_state(rq->p.v[i]) != SB_CHAN_OPEN) {
			/* Replies the server committed before it went are
			 * answers all the same: read them first. */
			r = drain(rq, i);
			if (r == 0) {
				r = -ECONNABORTED;
			}
		}
		if (r < 0) {
			chan_fail(rq, i, r);
			continue; /* another channel moved into i */
		}
		i++;
	}
}

/* The live channel with the fewest outstanding requests, starting the
 * search where the last one ended so that equals take turns. */
static size_t pick(shmbus_requester *rq)
{
	size_t best = rq->rr % rq->p.n;

	for (size_t k = 1; k < rq->p.n; k++) {
		size_t i = (rq->rr + k) % rq->p.n;

		if (rq->p.v[i]->outstanding < rq->p.v[best]->outstanding) {
			best = i;
		}
	}
	rq->rr = best + 1;
	return best;
}

/* Writes the request on channel `i`: 0, or -EAGAIN (full), -EBADMSG (the
 * server broke its side: noted in the end, failed at the next dispatch),
 * -EMSGSIZE. */
static int send_on(shmbus_requester *rq, size_t i, uint64_t corr,
		   const void *req, size_t len)
{
	struct sb_rr_chan *ch = rq->p.v[i];
	void *buf;
	int r = sb_chan_claim(&ch->end, corr, len, &buf);

	if (r == 0) {
		if (len > 0) {
			memcpy(buf, req, len);
		}
		sb_rr_chan_commit(ch);
		ch->outstanding++;
	}
	return r;
}

/* Writes the request on the chosen channel, or when that one is full on
 * the others in turn: -EHOSTUNREACH with no channel, -EAGAIN when all are
 * full. */
static int send_on_a_chan(shmbus_requester *rq, uint64_t corr, const void *req,
			  size_t len, struct sb_rr_chan **out)
{
	size_t first;
	int r;

	if (rq->p.n == 0) {
		return -EHOSTUNREACH;
	}
	first = pick(rq);
	for (size_t k = 0; k < rq->p.n; k++) {
		size_t i = (first + k) % rq->p.n;

		r = send_on(rq, i, corr, req, len);
		if (r == 0) {
			*out = rq->p.v[i];
			return 0;
		}
		if (r == -EMSGSIZE) {
			return r;
		}
	}
	return -EAGAIN;
}

SHMBUS_API int shmbus_request_send(shmbus_requester *rq, const void *req,
				   size_t len, uint64_t *ticket)
{
	struct sb_rr_chan *ch;
	struct sb_ticket *t;
	int r;

	if (rq == NULL || ticket == NULL || (req == NULL && len != 0)) {
		return -EINVAL;
	}
	if (len > rq->p.max_message) {
		return -EMSGSIZE;
	}
	/* A server's channel the broker cannot give now (a lost connection,
	 * its limits) fails the request only when no other server is there
	 * to take it; the next request asks again. */
	r = sb_rr_refresh(&rq->p);
	dispatch(rq);
	if (r < 0 && rq->p.n == 0) {
		return r;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		return -ENOMEM;
	}
	r = next_corr(rq, &t->id);
	if (r == 0) {
		r = sb_tickets_add(&rq->tickets, t);
	}
	if (r < 0) {
		free(t);
		return r;
	}
	r = send_on_a_chan(rq, t->id, req, len, &ch);
	if (r < 0) {
		sb_tickets_free(&rq->tickets, t);
		return r;
	}
	t->chan = ch;
	*ticket = t->id;
	return 0;
}

/* Forgets `t`: its channel no longer counts it. */
static void ticket_free(shmbus_requester *rq, struct sb_ticket *t)
{
	if (!t->done && t->chan != NULL) {
		((struct sb_rr_chan *)t->chan)->outstanding--;
	}
	sb_tickets_free(&rq->tickets, t);
}

/* The ticket `want` (0: the oldest with its outcome). */
static struct sb_ticket *find_ticket(shmbus_requester *rq, uint64_t want)
{
	return want != 0 ? sb_tickets_find(&rq->tickets, want)
			 : sb_tickets_first_done(&rq->tickets);
}

/* Hands over a ticket's outcome: the reply's length or its error. */
static ssize_t deliver(shmbus_requester *rq, struct sb_ticket *t, void *reply,
		       size_t cap, uint64_t *ticket)
{
	ssize_t r = t->error;

	*ticket = t->id;
	if (r == 0) {
		if (t->len > cap) {
			return -EMSGSIZE; /* kept */
		}
		if (t->len > 0) {
			memcpy(reply, t->reply, t->len);
		}
		r = (ssize_t)t->len;
	}
	ticket_free(rq, t);
	return r;
}

SHMBUS_API ssize_t shmbus_request_take(shmbus_requester *rq, uint64_t *ticket,
				       void *reply, size_t cap, int timeout_ms)
{
	struct sb_wait w = sb_wait_start(timeout_ms);
	struct sb_ticket *t;
	int r;

	if (rq == NULL || ticket == NULL || (reply == NULL && cap != 0)) {
		return -EINVAL;
	}
	sb_rr_disarm(&rq->p);
	for (;;) {
		dispatch(rq);
		t = find_ticket(rq, *ticket);
		if (t == NULL && (*ticket != 0 || rq->tickets.count == 0)) {
			return -ENOENT;
		}
		if (t != NULL && t->done) {
			return deliver(rq, t, reply, cap, ticket);
		}
		if (timeout_ms == 0) {
			/* Armed for the caller's poll of shmbus_requester_fd()
			 * unless news came meanwhile. */
			if (sb_rr_arm(&rq->p)) {
				sb_rr_disarm(&rq->p);
				continue;
			}
			return -EAGAIN;
		}
		r = sb_rr_sleep(&rq->p, &w);
		if (r < 0) {
			return r;
		}
	}
}

SHMBUS_API int shmbus_request_cancel(shmbus_requester *rq, uint64_t ticket)
{
	struct sb_ticket *t;

	if (rq == NULL || ticket == 0) {
		return rq == NULL ? -EINVAL : -ENOENT;
	}
	t = find_ticket(rq, ticket);
	if (t == NULL) {
		return -ENOENT;
	}
	ticket_free(rq, t);
	return 0;
}

SHMBUS_API ssize_t shmbus_call(shmbus_requester *rq, const void *req,
			       size_t len, void *reply, size_t cap,
			       int timeout_ms)
{
	uint64_t ticket;
	ssize_t r = shmbus_request_send(rq, req, len, &ticket);

	if (r < 0) {
		return r;
	}
	r = shmbus_request_take(rq, &ticket, reply, cap, timeout_ms);
	if (r == -ETIMEDOUT || r == -EMSGSIZE) {
		shmbus_request_cancel(rq, ticket);
	}
	return r;
}

SHMBUS_API int shmbus_requester_open(shmbus *bus, const char *service,
				     shmbus_requester **out)
{
	struct sb_client_reply rep;
	shmbus_requester *rq;
	int r;

	if (out != NULL) {
		*out = NULL;
	}
	if (bus == NULL || out == NULL || service == NULL ||
	    sb_topic_name_check(service, NULL, 0) < 0) {
		return -EINVAL;
	}
	rq = calloc(1, sizeof(*rq));
	if (rq == NULL) {
		return -ENOMEM;
	}
	r = sb_rr_party_init(&rq->p, bus, "request_channel", "requester",
			     false);
	sb_client_reply_init(&rep);
	if (r == 0) {
		r = sb_rr_party_open(&rq->p, "request_open", service, 1, &rep);
	}
	sb_client_reply_fini(&rep);
	if (r < 0) {
		shmbus_requester_close(rq);
		return r;
	}
	*out = rq;
	return 0;
}

SHMBUS_API int shmbus_requester_fd(const shmbus_requester *rq)
{
	return rq != NULL ? rq->p.epfd : -EINVAL;
}

SHMBUS_API size_t shmbus_requester_max_request(const shmbus_requester *rq)
{
	return rq != NULL ? rq->p.max_message : 0;
}

SHMBUS_API size_t shmbus_requester_max_reply(const shmbus_requester *rq)
{
	return rq != NULL ? rq->p.max_message : 0;
}

SHMBUS_API uint64_t shmbus_requester_dropped(const shmbus_requester *rq)
{
	return rq != NULL ? rq->dropped : 0;
}

SHMBUS_API int shmbus_requester_close(shmbus_requester *rq)
{
	if (rq == NULL) {
		return -EINVAL;
	}
	sb_tickets_fini(&rq->tickets);
	sb_rr_party_close(&rq->p, "request_close");
	free(rq);
	return 0;
}

SHMBUS_API ssize_t shmbus_request(shmbus *bus, const char *service,
				  const void *req, size_t len, void *reply,
				  size_t cap, int timeout_ms)
{
	shmbus_requester *rq;
	ssize_t r = shmbus_requester_open(bus, service, &rq);

	if (r < 0) {
		return r;
	}
	r = shmbus_call(rq, req, len, reply, cap, timeout_ms);
	shmbus_requester_close(rq);
	return r;
}
