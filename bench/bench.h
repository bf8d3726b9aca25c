/*
 * bench.h - what the parts of shmbus-bench share: the parsed options, the
 * table of measured rows (rows.h), and the functions that measure
 * (harness.c: two-sided latency and throughput; scaling.c: many processes
 * on one ring; control.c: the broker's control plane), plot (plot.c) and
 * print (report.c) them. main.c ties them together and nothing calls back
 * into it.
 */
#ifndef SHMBUS_BENCH_BENCH_H
#define SHMBUS_BENCH_BENCH_H

#include "bench/rows.h"
#include "bench/stats.h"
#include "bench/transports.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_SIZES	     16
#define BENCH_MAX_TRANSPORTS 32
#define BENCH_MIN_REPS	     5
#define BENCH_MIN_SIZE	     8 /* room for the sequence number */
#define BENCH_MAX_SIZE	     (64u << 20)
#define BENCH_MAX_PROCS	     16 /* children of one repetition */

/* The command line, after parsing and defaults. */
struct bench_opts {
	int reps;
	uint64_t count;	      /* 0: a default per section and size */
	uint64_t duration_ms; /* cap on one repetition's measuring time */
	size_t ring_bytes;    /* for buffering transports and memcpy */
	size_t sizes[BENCH_MAX_SIZES];
	int nsizes;
	/* The sections to run (--section). */
	bool latency;
	bool throughput;
	bool scaling;
	bool control;
	bool references;       /* false: --no-references */
	size_t scaling_size;   /* message size of the scaling section */
	const char *plot_path; /* --plot FILE.png, or NULL */
	/*
	 * Selected transports, in table order, references included;
	 * requested[i] is false for a reference that was not asked for,
	 * which is then measured only in its own section.
	 */
	const struct bench_tr_ops *tr[BENCH_MAX_TRANSPORTS];
	bool requested[BENCH_MAX_TRANSPORTS];
	int ntr;
	bool want_memcpy; /* --transports named memcpy */
	bool pin;
	bool pin_given; /* --pin or --no-pin; else the default pinning */
	int cpu[2];	/* sender side, receiver side (when pin) */
	const char *csv_path;
	const char *json_path;
};

/* Indexes into bench_row.fig. */
enum {
	BENCH_LAT_P50,
	BENCH_LAT_P99,
	BENCH_LAT_P999,
	BENCH_LAT_MAX,
	BENCH_LAT_NFIG
};
enum {
	BENCH_TPUT_MSGS, /* messages per second */
	BENCH_TPUT_GBS,	 /* 10^9 bytes per second */
	BENCH_TPUT_NFIG
};

/* Indexes into bench_row.fig for the scaling and control sections. */
enum {
	BENCH_SCALE_TOTAL, /* msg/s through the topic (deliveries for fan-out)
			    */
	BENCH_SCALE_EACH,  /* msg/s per producer, subscriber or consumer */
	BENCH_SCALE_NFIG
};
enum { BENCH_CTL_RATE, BENCH_CTL_NFIG_RATE }; /* operations per second */
enum { BENCH_CTL_P50, BENCH_CTL_P99, BENCH_CTL_NFIG_LAT }; /* ns per join */

/* The reference rows each section's ratios are taken against. */
#define BENCH_REF_LATENCY    "floor"
#define BENCH_REF_THROUGHPUT "unix"
#define BENCH_REF_MEMCPY     "memcpy"
#define BENCH_REF_CLASSIC    "classic" /* the plain ring read against */

/*
 * One repetition of one transport at one size, in freshly forked processes
 * with a fresh transport instance. Fills vals[0..BENCH_LAT_NFIG) (one-way ns)
 * or vals[0..BENCH_TPUT_NFIG), and *count with the round trips or messages
 * measured. Returns 0 or a negative errno (-ETIMEDOUT when the watchdog had
 * to kill the children, -EPROTO for a wrong or lost message).
 */
int bench_latency_once(const struct bench_opts *o, const struct bench_tr_ops *t,
		       size_t size, double *vals, uint64_t *count,
		       struct bench_samples *keep);
int bench_throughput_once(const struct bench_opts *o,
			  const struct bench_tr_ops *t, size_t size,
			  double *vals, uint64_t *count);
/* The memcpy-bandwidth reference: one process, same sizes, into a ring. */
int bench_memcpy_once(const struct bench_opts *o, size_t size, double *vals,
		      uint64_t *count);

/*
 * `keep` (may be NULL) receives a copy of every round-trip time measured,
 * in ns, for the latency plot; a failure to grow it only loses the plot.
 */

/* Default message counts when --count is not given. */
uint64_t bench_latency_count(const struct bench_opts *o, size_t size);
uint64_t bench_throughput_count(const struct bench_opts *o, size_t size);

/* The cost of one clock_gettime(CLOCK_MONOTONIC) in ns (median of many). */
double bench_clock_cost(void);

/* Monotonic time in nanoseconds. */
uint64_t bench_now_ns(void);

/* Pins the calling process to `cpu` (nothing when cpu < 0); 0 or -errno. */
int bench_pin(int cpu);

/*
 * The body of child `idx` of bench_spawn(): returns 0 or a negative
 * errno, which becomes the child's exit status (0 or 1).
 */
typedef int (*bench_child_fn)(int idx, void *arg);

/*
 * Forks n (1..BENCH_MAX_PROCS) children, the highest index first, each running
 * fn(idx, arg) and exiting, and waits for all of them, at most timeout_ms:
 * a child that fails gets the others killed, and at the deadline all are
 * killed. Children die with the parent. Returns 0 when every child exited
 * with status 0, -ETIMEDOUT, -ECHILD (a child failed or died), -EINVAL, or
 * fork()'s error.
 */
int bench_spawn(int n, bench_child_fn fn, void *arg, uint64_t timeout_ms);

/*
 * A start barrier in shared memory: counts the caller in and spins until
 * `n` processes have arrived. *ready starts at zero.
 */
void bench_barrier(_Atomic uint32_t *ready, uint32_t n);

/*
 * The scaling section (scaling.c): measures and prints every case, adding
 * its rows to *rows (rows.h).
 * Returns 0 or -ENOMEM; a failed case is a row with err set.
 */
int bench_scaling_run(const struct bench_opts *o, struct bench_rows *rows);

/*
 * The control-plane section (control.c): starts shmbusd from the directory
 * of this program, measures, stops it, prints, and adds its rows. Returns
 * 0, or a negative errno when the broker could not be started (rows are
 * then added with err set), or -ENOMEM.
 */
int bench_control_run(const struct bench_opts *o, struct bench_rows *rows);

/*
 * Checks that gnuplot is in PATH. Returns 0, or -ENOENT with a message on
 * stderr that names the Debian package (nothing is installed from here).
 */
int bench_plot_check(void);

/*
 * Writes the latency distribution plot: for each size, the complementary
 * CDF of the one-way latency samples of each transport, log-log. samples[i]
 * holds the round-trip times kept for rows[i] (a latency row), or is empty.
 * Returns 0 or a negative errno (gnuplot failed: its messages are on
 * stderr).
 */
int bench_plot_latency(const char *png_path, const struct bench_row *rows,
		       struct bench_samples *samples, int nrows);

/* Writes the run's description (machine, options) to stdout. */
void bench_report_header(const struct bench_opts *o, double clock_ns);
/* Prints one size's table for a section; rows are that size's rows. */
void bench_report_table(const char *section, size_t size,
			const struct bench_row *rows, int nrows);
/* Writes every row to a CSV or JSON file; returns 0 or a negative errno. */
int bench_report_csv(const char *path, const struct bench_opts *o,
		     const struct bench_row *rows, int nrows);
int bench_report_json(const char *path, const struct bench_opts *o,
		      double clock_ns, const struct bench_row *rows, int nrows);

/*
 * Prints a scaling or control-plane table: `title`, then one line per row
 * with its figures (median, spread below), `head` naming the columns after
 * the first. A ratio column to the first row of the table is added when
 * ratio_fig >= 0. `scale` divides every figure for display (1e6 for M
 * msg/s, 1e3 for us).
 */
void bench_report_cases(const char *title, const char *first_col,
			const char *const *head, const struct bench_row *rows,
			int nrows, double scale, int ratio_fig,
			const char *ratio_head);

/*
 * Prints the goals of bench/README.md that this run measured: each with its
 * measured value (from the medians above), the target, and met / not met.
 */
void bench_report_targets(const struct bench_row *rows, int nrows);

#endif
