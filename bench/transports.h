/*
 * transports.h - the interface every transport measured by shmbus-bench
 * implements, and the table that registers them. The harness knows nothing
 * about sockets, pipes or rings: it creates a transport in the parent, forks
 * two processes that each open one end, and moves messages through the
 * operations below. Adding a transport (the shmbus ring, a message queue,
 * ...) is one new file and one line in the table; see bench/README.md.
 */
#ifndef SHMBUS_BENCH_TRANSPORTS_H
#define SHMBUS_BENCH_TRANSPORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The two ends. In ping-pong the sender end sends first and gets the echo. */
enum bench_tr_side {
	BENCH_TR_SENDER = 0,  /* ping side; the producer in throughput runs */
	BENCH_TR_RECEIVER = 1 /* pong side; the consumer in throughput runs */
};

/* What a transport can be measured on (bench_tr_ops.flags). */
#define BENCH_TR_LATENCY    0x1u /* ping-pong: needs messages both ways */
#define BENCH_TR_THROUGHPUT 0x2u /* one-way stream from sender to receiver */

/* What the harness asks of one transport instance. */
struct bench_tr_config {
	size_t max_message; /* largest message of the run, in bytes */
	size_t ring_bytes;  /* capacity a buffering transport should use */
	bool duplex;	    /* true for ping-pong: the receiver sends back */
};

/*
 * One transport. Lifecycle, all driven by the harness:
 *
 *   parent:   create(cfg, &shared)
 *   fork twice; in each child:
 *             open_end(shared, side, &end)   (the child's own copy of shared)
 *             send/recv (or claim/commit, peek/release) ... many times
 *             close_end(end)
 *   parent:   waits for both children, then destroy(shared)
 *
 * `shared` is whatever the transport needs to hand to both children across
 * fork(): descriptors, a MAP_SHARED mapping. open_end() may close the
 * descriptors that belong to the other end. The harness never runs two ends
 * in one process, and never calls one end from two threads.
 *
 * Messages. The harness sends messages of one size per run, and passes that
 * size as `cap` to recv(): a message transport returns the length of the
 * next message (at most cap; -EMSGSIZE if it is larger), a stream transport
 * (no boundaries) reads exactly cap bytes. Every message starts with a
 * 64-bit sequence number that the harness checks, so a short read, a lost
 * or a duplicated message is caught, not timed.
 *
 * Zero copy. A transport whose claim is non-NULL is sent to with
 * claim(end, len, &buf) + the harness writing the message into buf +
 * commit(end); one whose peek is non-NULL is read with peek(end, &data)
 * (returns the length) + the harness reading in place + release(end);
 * peek has no cap, so it is for message transports, not byte streams.
 * Otherwise send and recv are used. A zero-copy transport registers as its
 * own entry (e.g. "shmbus-zerocopy") so that both figures appear.
 *
 * Waiting. send, claim, recv and peek wait as long as they must (a spinning
 * transport spins, a blocking one sleeps); the harness's watchdog kills the
 * children if a run hangs. All functions return 0 (recv/peek: a length) or a
 * negative errno; a child that gets an error reports it and exits.
 */
struct bench_tr_ops {
	const char *name;    /* for --transports and the tables */
	const char *summary; /* one line for --help */
	unsigned flags;	     /* BENCH_TR_LATENCY | BENCH_TR_THROUGHPUT */

	int (*create)(const struct bench_tr_config *cfg, void **shared);
	int (*open_end)(void *shared, enum bench_tr_side side, void **end);

	/* Copy interface: both required. */
	int (*send)(void *end, const void *buf, size_t len);
	ssize_t (*recv)(void *end, void *buf, size_t cap);

	/* Zero-copy interface: optional, each pair all or nothing. */
	int (*claim)(void *end, size_t len, void **buf);
	int (*commit)(void *end);
	ssize_t (*peek)(void *end, const void **data);
	int (*release)(void *end);

	/* Optional: a transport that holds sent messages back (to send them
	 * several at a time) sends what it holds. The harness calls it after
	 * the last message of a throughput run. */
	int (*flush)(void *end);

	void (*close_end)(void *end);
	void (*destroy)(void *shared);
};

/*
 * The registered transports, in table order (which is also the order of the
 * rows in the output). Each is defined in its own bench/tr_*.c file.
 */
extern const struct bench_tr_ops bench_tr_floor;	   /* tr_floor.c */
extern const struct bench_tr_ops bench_tr_spsc;		   /* tr_spsc.c */
extern const struct bench_tr_ops bench_tr_unix;		   /* tr_stream.c */
extern const struct bench_tr_ops bench_tr_pipe;		   /* tr_stream.c */
extern const struct bench_tr_ops bench_tr_classic;	   /* tr_classic.c */
extern const struct bench_tr_ops bench_tr_ring_spin;	   /* tr_ring.c */
extern const struct bench_tr_ops bench_tr_ring_block;	   /* tr_ring.c */
extern const struct bench_tr_ops bench_tr_shmbus_spin;	   /* tr_shmbus.c */
extern const struct bench_tr_ops bench_tr_shmbus_wait;	   /* tr_shmbus.c */
extern const struct bench_tr_ops bench_tr_shmbus_zerocopy; /* tr_shmbus.c */
extern const struct bench_tr_ops bench_tr_shmbus_batch;	   /* tr_shmbus.c */
extern const struct bench_tr_ops bench_tr_shmbus_checksum; /* tr_shmbus.c */
extern const struct bench_tr_ops bench_tr_shmbus_metadata; /* tr_shmbus.c */

extern const struct bench_tr_ops *const bench_tr_table[];
extern const size_t bench_tr_table_len;

/* The entry named `name`, or NULL. */
const struct bench_tr_ops *bench_tr_find(const char *name);

#endif
