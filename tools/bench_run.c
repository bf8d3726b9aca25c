/*
 * bench_run.c - the threads of `shmbus bench`: each publisher sends its
 * numbered, time-stamped messages as fast as the topic takes them; each
 * subscriber receives every message, checks that each publisher's arrive
 * in order, counts what is missing and records the latency in a
 * histogram. The main thread (bench.c) watches and reports.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tools/bench.h"

/* How long one publish or receive waits before looking at the flags. */
#define WAIT_MS 50

#define SEQ_BITS 48
#define SEQ_MASK ((UINT64_C(1) << SEQ_BITS) - 1)

/* ---- histogram --------------------------------------------------------- */

/* Values below 128 have a bucket each; above, 64 buckets per power of
 * two, so a bucket is at most 1/64 of its value wide. */
static unsigned hist_index(uint64_t v)
{
	unsigned msb, shift;

	if (v < 128) {
		return (unsigned)v;
	}
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - 6;
	return shift * 64 + (unsigned)(v >> shift);
}

/* The middle of the bucket `i`. */
static uint64_t hist_value(unsigned i)
{
	unsigned shift;
	uint64_t m;

	if (i < 128) {
		return i;
	}
	shift = i / 64 - 1;
	m = i % 64 + 64;
	return (m << shift) + ((UINT64_C(1) << shift) >> 1);
}

static void hist_add(struct sb_bench_hist *h, uint64_t v)
{
	h->bucket[hist_index(v)]++;
	h->n++;
	if (v > h->max) {
		h->max = v;
	}
}

uint64_t sb_bench_hist_percentile(const struct sb_bench_hist *h,
				  double fraction)
{
	uint64_t want = (uint64_t)(fraction * (double)h->n + 0.5);
	uint64_t seen = 0;

	if (want < 1) {
		want = 1;
	}
	for (unsigned i = 0; i < SB_BENCH_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= want) {
			uint64_t v = hist_value(i);

			/* The middle of the last bucket may lie past the
			 * largest sample, which is known exactly. */
			return v < h->max ? v : h->max;
		}
	}
	return h->max;
}

void sb_bench_hist_merge(struct sb_bench_hist *to,
			 const struct sb_bench_hist *from)
{
	for (unsigned i = 0; i < SB_BENCH_HIST_BUCKETS; i++) {
		to->bucket[i] += from->bucket[i];
	}
	to->n += from->n;
	if (from->max > to->max) {
		to->max = from->max;
	}
}

/* ---- time -------------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double sb_bench_elapsed(const struct timespec *start)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)(ts.tv_sec - start->tv_sec) +
	       (double)(ts.tv_nsec - start->tv_nsec) / 1e9;
}

/* ---- publishers -------------------------------------------------------- */

struct worker {
	struct sb_bench *b;
	unsigned index;
};

static struct worker workers[2 * SB_BENCH_THREADS_MAX];

/* Publishes `msg`, waiting for room in short steps so that a stop or an
 * abort is seen while the ring is full. */
static int publish_one(struct sb_bench *b, shmbus_pub *pub, const void *msg)
{
	for (;;) {
		int r = shmbus_publish(pub, msg, b->size, WAIT_MS);

		if (r != -ETIMEDOUT) {
			return r;
		}
		if (atomic_load(&b->stop) || atomic_load(&b->abort)) {
			return -ECANCELED;
		}
	}
}

static void *publisher(void *arg)
{
	const struct worker *w = arg;
	struct sb_bench *b = w->b;
	struct sb_bench_pub *p = &b->pubs[w->index];
	unsigned char *msg = calloc(1, b->size);
	uint64_t seq;

	if (msg == NULL) {
		p->err = -ENOMEM;
		atomic_store(&b->abort, true);
	}
	for (seq = 0; msg != NULL && (b->count == 0 || seq < b->count) &&
		      !atomic_load_explicit(&b->stop, memory_order_relaxed) &&
		      !atomic_load_explicit(&b->abort, memory_order_relaxed);
	     seq++) {
		uint64_t tag = (uint64_t)w->index << SEQ_BITS | seq;
		int r;

		memcpy(msg, &tag, sizeof(tag));
		if (b->size >= SB_BENCH_LATENCY_SIZE) {
			uint64_t t = now_ns();

			memcpy(msg + 8, &t, sizeof(t));
		}
		r = publish_one(b, p->pub, msg);
		if (r == -ECANCELED) {
			break;
		}
		if (r < 0) {
			p->err = r;
			atomic_store(&b->abort, true);
			break;
		}
		atomic_store_explicit(&p->sent, seq + 1, memory_order_relaxed);
	}
	p->seconds = sb_bench_elapsed(&b->start);
	free(msg);
	atomic_fetch_sub(&b->pubs_running, 1);
	return NULL;
}

/* ---- subscribers ------------------------------------------------------- */

/* Checks one received message against what its publisher sent before. */
static void check_message(struct sb_bench *b, struct sb_bench_sub *s,
			  const unsigned char *msg, size_t len)
{
	uint64_t tag, sent_at, now = now_ns();
	unsigned from;

	s->seconds = sb_bench_elapsed(&b->start);
	if (len != b->size) {
		s->malformed++;
		return;
	}
	memcpy(&tag, msg, sizeof(tag));
	from = (unsigned)(tag >> SEQ_BITS);
	if (from >= b->npubs) {
		s->malformed++;
		return;
	}
	if ((tag & SEQ_MASK) < s->next_seq[from]) {
		s->disorder++;
	} else {
		s->lost += (tag & SEQ_MASK) - s->next_seq[from];
		s->next_seq[from] = (tag & SEQ_MASK) + 1;
	}
	if (b->size >= SB_BENCH_LATENCY_SIZE) {
		memcpy(&sent_at, msg + 8, sizeof(sent_at));
		hist_add(s->latency, now > sent_at ? now - sent_at : 0);
	}
}

/* Takes a message longer than expected off the ring (someone else
 * publishes to the topic): counted, not read. */
static int skip_long(struct sb_bench_sub *s)
{
	const void *data;
	size_t len;
	int r = shmbus_peek(s->sub, &data, &len, 0);

	if (r == 0) {
		s->malformed++;
		r = shmbus_release(s->sub);
	}
	return r == -ESTALE ? 0 : r;
}

static void *subscriber(void *arg)
{
	const struct worker *w = arg;
	struct sb_bench *b = w->b;
	struct sb_bench_sub *s = &b->subs[w->index];
	unsigned char *msg = malloc(b->size);

	while (msg != NULL && !atomic_load(&b->abort)) {
		/* Read before receiving: once every publisher has returned,
		 * an empty ring means that everything has arrived. */
		bool done = atomic_load(&b->pubs_done);
		ssize_t n =
		    shmbus_receive(s->sub, msg, b->size, done ? 0 : WAIT_MS);

		if (n >= 0) {
			check_message(b, s, msg, (size_t)n);
			atomic_fetch_add_explicit(&s->received, 1,
						  memory_order_relaxed);
			continue;
		}
		if (n == -EAGAIN || n == -ETIMEDOUT) {
			if (done) {
				break;
			}
			continue;
		}
		if (n == -EMSGSIZE && skip_long(s) == 0) {
			continue;
		}
		s->err = (int)n;
		atomic_store(&b->abort, true);
		break;
	}
	if (msg == NULL) {
		s->err = -ENOMEM;
		atomic_store(&b->abort, true);
	}
	free(msg);
	atomic_fetch_sub(&b->subs_running, 1);
	return NULL;
}

/* ---- starting and stopping --------------------------------------------- */

static int start_thread(struct sb_bench *b, pthread_t *t, unsigned slot,
			unsigned index, void *(*fn)(void *))
{
	int r;

	workers[slot] = (struct worker){.b = b, .index = index};
	r = pthread_create(t, NULL, fn, &workers[slot]);
	if (r != 0) {
		atomic_store(&b->abort, true);
		return -r;
	}
	return 0;
}

static int start_subscribers(struct sb_bench *b)
{
	for (unsigned i = 0; i < b->nsubs; i++) {
		struct sb_bench_sub *s = &b->subs[i];
		int r;

		s->next_seq = calloc(b->npubs, sizeof(*s->next_seq));
		s->latency = calloc(1, sizeof(*s->latency));
		if (s->next_seq == NULL || s->latency == NULL) {
			atomic_store(&b->abort, true);
			return -ENOMEM;
		}
		atomic_fetch_add(&b->subs_running, 1);
		r = start_thread(b, &b->sub_threads[i], i, i, subscriber);
		if (r < 0) {
			atomic_fetch_sub(&b->subs_running, 1);
			return r;
		}
		b->subs_started++;
	}
	return 0;
}

int sb_bench_start(struct sb_bench *b)
{
	int r;

	/* Set before any thread starts, as every thread reads it; the
	 * subscribers' start-up is counted in, a matter of microseconds. */
	clock_gettime(CLOCK_MONOTONIC, &b->start);
	r = start_subscribers(b);
	for (unsigned i = 0; r == 0 && i < b->npubs; i++) {
		atomic_fetch_add(&b->pubs_running, 1);
		r = start_thread(b, &b->pub_threads[i],
				 SB_BENCH_THREADS_MAX + i, i, publisher);
		if (r < 0) {
			atomic_fetch_sub(&b->pubs_running, 1);
			break;
		}
		b->pubs_started++;
	}
	return r;
}

void sb_bench_join_publishers(struct sb_bench *b)
{
	for (unsigned i = 0; i < b->pubs_started; i++) {
		pthread_join(b->pub_threads[i], NULL);
	}
	b->pubs_started = 0;
	atomic_store(&b->pubs_done, true);
}

void sb_bench_join_subscribers(struct sb_bench *b)
{
	for (unsigned i = 0; i < b->subs_started; i++) {
		struct sb_bench_sub *s = &b->subs[i];

		pthread_join(b->sub_threads[i], NULL);
		/* Messages after the last one that arrived: a gap at the end
		 * that no later message revealed. */
		for (unsigned p = 0; p < b->npubs; p++) {
			uint64_t sent = atomic_load(&b->pubs[p].sent);

			if (sent > s->next_seq[p]) {
				s->lost += sent - s->next_seq[p];
			}
		}
	}
	b->subs_started = 0;
}

void sb_bench_fini(struct sb_bench *b)
{
	for (unsigned i = 0; i < b->nsubs; i++) {
		free(b->subs[i].next_seq);
		free(b->subs[i].latency);
		b->subs[i].next_seq = NULL;
		b->subs[i].latency = NULL;
	}
}
