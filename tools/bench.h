/*
 * bench.h - the engine of `shmbus bench` (bench_run.c): publisher and
 * subscriber threads on one topic, each message stamped with its
 * publisher, a sequence number and (from 16 bytes on) the CLOCK_MONOTONIC
 * time it was sent, so that subscribers count losses and reorderings and
 * measure latency. bench.c parses options, prepares the topic and prints
 * the results. Prefix: sb_bench_.
 */
#ifndef SB_TOOLS_BENCH_H
#define SB_TOOLS_BENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "shmbus/shmbus.h"

/* Most publishers or subscribers one run starts. */
#define SB_BENCH_THREADS_MAX 64

/* A message carries (publisher << 48 | sequence) in its first 8 bytes and
 * the send time in nanoseconds in the next 8, when it has them. */
#define SB_BENCH_MIN_SIZE     8
#define SB_BENCH_LATENCY_SIZE 16

/*
 * Latencies in nanoseconds, counted in buckets of about 1.5% width: exact
 * below 128 ns, then 64 buckets per power of two. Fixed size, so that a
 * long --duration run keeps no sample.
 */
#define SB_BENCH_HIST_BUCKETS 3776
struct sb_bench_hist {
	uint64_t n;
	uint64_t max;
	uint64_t bucket[SB_BENCH_HIST_BUCKETS];
};

/* The value below which `fraction` (0..1) of the samples lie, in ns. */
uint64_t sb_bench_hist_percentile(const struct sb_bench_hist *h,
				  double fraction);

/* Adds the samples of `from` to `to`. */
void sb_bench_hist_merge(struct sb_bench_hist *to,
			 const struct sb_bench_hist *from);

/* One publisher thread's work. `sent` is read by the progress line while
 * the thread runs. */
struct sb_bench_pub {
	shmbus_pub *pub;
	_Atomic uint64_t sent;
	double seconds; /* from the common start to its last message */
	int err;	/* 0, or the negative errno that stopped it */
};

/* One subscriber thread's work. */
struct sb_bench_sub {
	shmbus_sub *sub;
	_Atomic uint64_t received;
	uint64_t lost;	    /* sequence numbers that never arrived */
	uint64_t disorder;  /* arrived after a later one of its publisher */
	uint64_t malformed; /* not a message of this run */
	double seconds;	    /* from the common start to its last message */
	int err;
	uint64_t *next_seq; /* per publisher: the sequence number expected */
	struct sb_bench_hist *latency;
};

struct sb_bench {
	/* Set by the caller before sb_bench_start(). */
	uint64_t count; /* messages per publisher; 0: until stopped */
	uint64_t size;	/* bytes per message */
	unsigned npubs, nsubs;
	struct sb_bench_pub pubs[SB_BENCH_THREADS_MAX];
	struct sb_bench_sub subs[SB_BENCH_THREADS_MAX];

	/* Shared with the threads. */
	struct timespec start;	  /* CLOCK_MONOTONIC, when the threads began */
	atomic_bool stop;	  /* publishers: send no more */
	atomic_bool pubs_done;	  /* subscribers: what is left is all */
	atomic_bool abort;	  /* a thread failed: everyone stops */
	atomic_uint pubs_running; /* threads not yet finished */
	atomic_uint subs_running;
	pthread_t pub_threads[SB_BENCH_THREADS_MAX];
	pthread_t sub_threads[SB_BENCH_THREADS_MAX];
	unsigned pubs_started, subs_started;
};

/* Seconds since `start` on CLOCK_MONOTONIC. */
double sb_bench_elapsed(const struct timespec *start);

/*
 * Starts the subscriber threads, then the publisher threads (their pubs
 * and subs already open). Returns 0 or a negative errno, with b->abort
 * set so that what had started stops; join both kinds in either case.
 */
int sb_bench_start(struct sb_bench *b);

/* Waits for the publishers and tells the subscribers that nothing more
 * is coming; then waits for those and counts, for each, the messages it
 * never received. */
void sb_bench_join_publishers(struct sb_bench *b);
void sb_bench_join_subscribers(struct sb_bench *b);

/* Frees what sb_bench_start() allocated for the subscribers. */
void sb_bench_fini(struct sb_bench *b);

#endif
