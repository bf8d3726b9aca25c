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
 * sb_stats_add(), free with sb_stats_fini(). Not thread-safe.
 */
struct sb_samples {
	uint64_t *v;
	size_t n;
	size_t cap;
};

/* The percentiles one latency run is reduced to, in nanoseconds. */
struct sb_lat_summary {
	double p50;
	double p99;
	double p999;
	double max;
};

/* One figure over the repetitions: median, and the min..max spread. */
struct sb_agg {
	double median;
	double min;
	double max;
	int reps;
};

/*
 * Appends one sample, growing the array as needed. Returns 0 or -ENOMEM
 * (the array is unchanged then).
 */
int sb_stats_add(struct sb_samples *s, uint64_t ns);

/* Frees the array and leaves *s empty and reusable. */
void sb_stats_fini(struct sb_samples *s);

/* Sorts n samples in place, ascending. */
void sb_stats_sort(uint64_t *v, size_t n);

/*
 * The nearest-rank percentile p (0 < p <= 1) of n sorted samples: the
 * smallest sample with at least p*n samples at or below it. Returns 0 for
 * n == 0.
 */
uint64_t sb_stats_percentile(const uint64_t *sorted, size_t n, double p);

/*
 * Sorts n samples in place and summarises them; each sample is multiplied
 * by scale first (0.5 turns round-trip times into one-way times). All
 * fields are 0 for n == 0.
 */
void sb_stats_summarise(uint64_t *v, size_t n, double scale,
			struct sb_lat_summary *out);

/*
 * Reduces one figure measured in n repetitions to its median (the mean of
 * the two middle values when n is even) and its min..max spread. Sorts the
 * values in place. n <= 0 gives all zeros.
 */
void sb_stats_aggregate(double *values, int n, struct sb_agg *out);

#endif
