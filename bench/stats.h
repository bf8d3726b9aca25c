/*
 * stats.h - sample collection and summaries for the benchmark: latency
 * samples are sorted once and read off as percentiles, and every figure the
 * benchmark prints is the median over repetitions with the spread (minimum
 * and maximum of the repetitions) beside it, so that one noisy run cannot
 * pass for a result.
 */
#ifndef SHMBUS_BENCH_STATS_H
#define SHMBUS_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

/*
 * A growable array of samples in nanoseconds. Zero-initialise it, add with
 * bench_stats_add(), free with bench_stats_fini(). Not thread-safe.
 */
struct bench_samples {
	uint64_t *v;
	size_t n;
	size_t cap;
};

/* The percentiles one latency run is reduced to, in nanoseconds. */
struct bench_lat_summary {
	double p50;
	double p99;
	double p999;
	double max;
};

/* One figure over the repetitions: median, and the min..max spread. */
struct bench_agg {
	double median;
	double min;
	double max;
	int reps;
};

/*
 * Appends one sample, growing the array as needed. Returns 0 or -ENOMEM
 * (the array is unchanged then).
 */
int bench_stats_add(struct bench_samples *s, uint64_t ns);

/* Frees the array and leaves *s empty and reusable. */
void bench_stats_fini(struct bench_samples *s);

/* Sorts n samples in place, ascending. */
void bench_stats_sort(uint64_t *v, size_t n);

/*
 * The nearest-rank percentile p (0 < p <= 1) of n sorted samples: the
 * smallest sample with at least p*n samples at or below it. Returns 0 for
 * n == 0.
 */
uint64_t bench_stats_percentile(const uint64_t *sorted, size_t n, double p);

/*
 * Sorts n samples in place and summarises them; each sample is multiplied
 * by scale first (0.5 turns round-trip times into one-way times). All
 * fields are 0 for n == 0.
 */
void bench_stats_summarise(uint64_t *v, size_t n, double scale,
			   struct bench_lat_summary *out);

/*
 * Reduces one figure measured in n repetitions to its median (the mean of
 * the two middle values when n is even) and its min..max spread. Sorts the
 * values in place. n <= 0 gives all zeros.
 */
void bench_stats_aggregate(double *values, int n, struct bench_agg *out);

#endif
