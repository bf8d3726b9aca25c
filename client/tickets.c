/*
 * tickets.c - a requester's outstanding requests (tickets.h): a chained
 * hash on the correlation id, which is random (getrandom), so its low
 * bits are the bucket; and a doubly linked list of those done.
 */
#include <errno.h>
#include <stdlib.h>

#include "client/tickets.h"

static size_t bucket(const struct sb_tickets *ts, uint64_t id)
{
	return (size_t)(id & (ts->n_buckets - 1));
}

/* Doubles the buckets (16 at first) so that chains stay about one long. */
static int grow(struct sb_tickets *ts)
{
	size_t n = ts->n_buckets != 0 ? 2 * ts->n_buckets : 16;
	struct sb_ticket **b = calloc(n, sizeof(*b));
	struct sb_tickets bigger = {b, n, 0, NULL, NULL};

	if (b == NULL) {
		return -ENOMEM;
	}
	for (size_t i = 0; i < ts->n_buckets; i++) {
		struct sb_ticket *t = ts->buckets[i];

		while (t != NULL) {
			struct sb_ticket *next = t->hnext;
			size_t k = bucket(&bigger, t->id);

			t->hnext = b[k];
			b[k] = t;
			t = next;
		}
	}
	free(ts->buckets);
	ts->buckets = b;
	ts->n_buckets = n;
	return 0;
}

int sb_tickets_add(struct sb_tickets *ts, struct sb_ticket *t)
{
	size_t k;

	if (ts->count >= ts->n_buckets && grow(ts) < 0) {
		return -ENOMEM;
	}
	k = bucket(ts, t->id);
	t->hnext = ts->buckets[k];
	ts->buckets[k] = t;
	ts->count++;
	return 0;
}

struct sb_ticket *sb_tickets_find(const struct sb_tickets *ts, uint64_t id)
{
	struct sb_ticket *t =
	    ts->n_buckets != 0 ? ts->buckets[bucket(ts, id)] : NULL;

	while (t != NULL && t->id != id) {
		t = t->hnext;
	}
	return t;
}

void sb_tickets_done(struct sb_tickets *ts, struct sb_ticket *t, int error)
{
	t->chan = NULL;
	t->done = true;
	t->error = error;
	t->dnext = NULL;
	t->dprev = ts->done_tail;
	if (ts->done_tail != NULL) {
		ts->done_tail->dnext = t;
	} else {
		ts->done_head = t;
	}
	ts->done_tail = t;
}

void sb_tickets_fail_chan(struct sb_tickets *ts, const void *chan, int error)
{
	for (size_t i = 0; i < ts->n_buckets; i++) {
		for (struct sb_ticket *t = ts->buckets[i]; t != NULL;
		     t = t->hnext) {
			if (!t->done && t->chan == chan) {
				sb_tickets_done(ts, t, error);
			}
		}
	}
}

struct sb_ticket *sb_tickets_first_done(const struct sb_tickets *ts)
{
	return ts->done_head;
}

void sb_tickets_free(struct sb_tickets *ts, struct sb_ticket *t)
{
	struct sb_ticket **pp = &ts->buckets[bucket(ts, t->id)];

	while (*pp != t) {
		pp = &(*pp)->hnext;
	}
	*pp = t->hnext;
	ts->count--;
	if (t->done) {
		*(t->dprev != NULL ? &t->dprev->dnext : &ts->done_head) =
		    t->dnext;
		*(t->dnext != NULL ? &t->dnext->dprev : &ts->done_tail) =
		    t->dprev;
	}
	free(t->reply);
	free(t);
}

void sb_tickets_fini(struct sb_tickets *ts)
{
	for (size_t i = 0; i < ts->n_buckets; i++) {
		while (ts->buckets[i] != NULL) {
			sb_tickets_free(ts, ts->buckets[i]);
		}
	}
	free(ts->buckets);
	*ts = (struct sb_tickets){NULL, 0, 0, NULL, NULL};
}
