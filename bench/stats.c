/*
 * stats.c - see stats.h. Percentiles are nearest-rank on the sorted samples
 * (no interpolation), so every percentile printed is a time that was really
 * measured.
 */
#include "bench/stats.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int bench_stats_add(struct bench_samples *s, uint64_t ns)
{
	if (s->n == s->cap) {
		size_t cap = s->cap != 0 ? s->cap * 2 : 4096;
		uint64_t *v = realloc(s->v, cap * sizeof(*v));

		if (v == NULL) {
			return -ENOMEM;
		}
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = ns;
	return 0;
}

void bench_stats_fini(struct bench_samples *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

void bench_stats_sort(uint64_t *v, size_t n)
{
	if (n > 1) {
		qsort(v, n, sizeof(*v), cmp_u64);
	}
}

uint64_t bench_stats_percentile(const uint64_t *sorted, size_t n, double p)
{
	double rank;
	size_t idx;

	if (n == 0) {
		return 0;
	}
	/* Nearest rank: ceil(p * n), 1-based; clamp against rounding. */
	rank = ceil(p * (double)n);
	idx = rank < 1.0 ? 0 : (size_t)rank - 1;
	if (idx >= n) {
		idx = n - 1;
	}
	return sorted[idx];
}

void bench_stats_summarise(uint64_t *v, size_t n, double scale,
			   struct bench_lat_summary *out)
{
	memset(out, 0, sizeof(*out));
	if (n == 0) {
		return;
	}
	bench_stats_sort(v, n);
	out->p50 = scale * (double)bench_stats_percentile(v, n, 0.50);
	out->p99 = scale * (double)bench_stats_percentile(v, n, 0.99);
	out->p999 = scale * (double)bench_stats_percentile(v, n, 0.999);
	out->max = scale * (double)v[n - 1];
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a;
	double y = *(const double *)b;

	return (x > y) - (x < y);
}

void bench_stats_aggregate(double *values, int n, struct bench_agg *out)
{
	memset(out, 0, sizeof(*out));
	if (n <= 0) {
		return;
	}
	qsort(values, (size_t)n, sizeof(*values), cmp_double);
	out->reps = n;
	out->min = values[0];
	out->max = values[n - 1];
	if (n % 2 == 1) {
		out->median = values[n / 2];
	} else {
		out->median = (values[n / 2 - 1] + values[n / 2]) / 2.0;
	}
}
