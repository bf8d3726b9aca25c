/*
 * rows.h - the table of measured rows that shmbus-bench fills section by
 * section (main.c, scaling.c, control.c) and reports at the end (the
 * targets, --csv, --json, --plot). It depends on nothing but the stats,
 * so the sections add to it without calling back into main.c.
 */
#ifndef SHMBUS_BENCH_ROWS_H
#define SHMBUS_BENCH_ROWS_H

#include "bench/stats.h"

#include <stddef.h>
#include <stdint.h>

#define BENCH_NFIG_MAX 4

/*
 * One line of a table: a transport (or a scaling or control-plane case) at
 * one size, over the repetitions. fig_names and fig_units name each figure
 * in the CSV and JSON output (static strings).
 */
struct bench_row {
	const char *section; /* "latency", "throughput", "scaling", "control" */
	const char *transport; /* or the case: "producers-2", "connect-close" */
	size_t size;
	int err; /* 0, or the negative errno of the repetition that failed */
	int nfig;
	struct bench_agg fig[BENCH_NFIG_MAX];
	const char *const *fig_names;
	const char *const *fig_units;
	uint64_t count; /* fewest messages, round trips or operations */
	int procs;	/* scaling: the number that varies (producers...) */
};

/*
 * Every row of a run, in the order measured. Zero-initialise it; v moves
 * when a push grows it, so hold indexes across pushes, not pointers.
 */
struct bench_rows {
	struct bench_row *v;
	int n;
	int cap;
};

/* Appends a zeroed row; NULL when out of memory. */
struct bench_row *bench_rows_push(struct bench_rows *rows);

/* Frees the rows; the table is empty again. */
void bench_rows_free(struct bench_rows *rows);

#endif
