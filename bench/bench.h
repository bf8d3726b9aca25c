/*
 * bench.h - what the parts of shmbus-bench share: the parsed options, one
 * measured row of the output, and the functions that measure (harness.c)
 * and print (report.c) them. main.c ties them together.
 */
#ifndef SHMBUS_BENCH_BENCH_H
#define SHMBUS_BENCH_BENCH_H

#include "bench/stats.h"
#include "bench/transports.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SB_MAX_SIZES	  16
#define SB_MAX_TRANSPORTS 32
#define SB_MIN_REPS	  5
#define SB_MIN_SIZE	  8 /* room for the sequence number */
#define SB_MAX_SIZE	  (64u << 20)

/* The command line, after parsing and defaults. */
struct sb_opts {
	int reps;
	uint64_t count;	      /* 0: a default per section and size */
	uint64_t duration_ms; /* cap on one repetition's measuring time */
	size_t ring_bytes;    /* for buffering transports and memcpy */
	size_t sizes[SB_MAX_SIZES];
	int nsizes;
	bool latency;
	bool throughput;
	/*
	 * Selected transports, in table order, references included;
	 * requested[i] is false for a reference that was not asked for,
	 * which is then measured only in its own section.
	 */
	const struct sb_tr_ops *tr[SB_MAX_TRANSPORTS];
	bool requested[SB_MAX_TRANSPORTS];
	int ntr;
	bool pin;
	int cpu[2]; /* sender side, receiver side (when pin) */
	const char *csv_path;
	const char *json_path;
};

/* Indexes into sb_row.fig. */
enum { SB_LAT_P50, SB_LAT_P99, SB_LAT_P999, SB_LAT_MAX, SB_LAT_NFIG };
enum {
	SB_TPUT_MSGS, /* messages per second */
	SB_TPUT_GBS,  /* 10^9 bytes per second */
	SB_TPUT_NFIG
};

#define SB_NFIG_MAX 4

/* One line of a table: a transport at one size, over the repetitions. */
struct sb_row {
	const char *section; /* "latency" or "throughput" */
	const char *transport;
	size_t size;
	int err; /* 0, or the negative errno of the repetition that failed */
	int nfig;
	struct sb_agg fig[SB_NFIG_MAX];
	uint64_t count; /* fewest messages or round trips in a repetition */
};

/* The reference rows each section's ratios are taken against. */
#define SB_REF_LATENCY	  "floor"
#define SB_REF_THROUGHPUT "unix"
#define SB_REF_MEMCPY	  "memcpy"

/*
 * One repetition of one transport at one size, in freshly forked processes
 * with a fresh transport instance. Fills vals[0..SB_LAT_NFIG) (one-way ns)
 * or vals[0..SB_TPUT_NFIG), and *count with the round trips or messages
 * measured. Returns 0 or a negative errno (-ETIMEDOUT when the watchdog had
 * to kill the children, -EPROTO for a wrong or lost message).
 */
int sb_bench_latency_once(const struct sb_opts *o, const struct sb_tr_ops *t,
			  size_t size, double *vals, uint64_t *count);
int sb_bench_throughput_once(const struct sb_opts *o, const struct sb_tr_ops *t,
			     size_t size, double *vals, uint64_t *count);
/* The memcpy-bandwidth reference: one process, same sizes, into a ring. */
int sb_bench_memcpy_once(const struct sb_opts *o, size_t size, double *vals,
			 uint64_t *count);

/* Default message counts when --count is not given. */
uint64_t sb_bench_latency_count(const struct sb_opts *o, size_t size);
uint64_t sb_bench_throughput_count(const struct sb_opts *o, size_t size);

/* The cost of one clock_gettime(CLOCK_MONOTONIC) in ns (median of many). */
double sb_bench_clock_cost(void);

/* Monotonic time in nanoseconds. */
uint64_t sb_now_ns(void);

/* Writes the run's description (machine, options) to stdout. */
void sb_report_header(const struct sb_opts *o, double clock_ns);
/* Prints one size's table for a section; rows are that size's rows. */
void sb_report_table(const char *section, size_t size,
		     const struct sb_row *rows, int nrows);
/* Writes every row to a CSV or JSON file; returns 0 or a negative errno. */
int sb_report_csv(const char *path, const struct sb_opts *o,
		  const struct sb_row *rows, int nrows);
int sb_report_json(const char *path, const struct sb_opts *o, double clock_ns,
		   const struct sb_row *rows, int nrows);

#endif
