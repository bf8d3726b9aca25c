/*
 * plot.c - the latency-distribution plot of shmbus-bench (--plot FILE.png):
 * every one-way latency sample of every repetition of each latency row,
 * drawn by gnuplot as a complementary CDF (the fraction of samples at least
 * this slow), log-log, one panel per message size. A percentile table shows
 * three points of a distribution; the plot shows its whole tail, where the
 * transports differ most.
 */
#include "bench/bench.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Points drawn per distribution, about: enough for a smooth curve. */
#define POINTS	       2000
#define MAX_PLOT_SIZES 16

/*
 * Runs argv to completion with its output on our stderr (gnuplot's chatter
 * is not part of the results on stdout). Returns its exit
 * status, 127 if it could not be run, or a negative errno.
 */
static int run_cmd(char *const argv[])
{
	pid_t pid;
	int st;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		return -errno;
	}
	if (pid == 0) {
		dup2(STDERR_FILENO, STDOUT_FILENO);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0) {
		return -errno;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* 1 when `prog` is an executable file in $PATH. */
static int in_path(const char *prog)
{
	const char *path = getenv("PATH");
	char dir[PATH_MAX];

	if (path == NULL) {
		path = "/usr/local/bin:/usr/bin:/bin";
	}
	while (*path != '\0') {
		size_t n = strcspn(path, ":");

		if (n > 0 && n + strlen(prog) + 2 < sizeof(dir)) {
			snprintf(dir, sizeof(dir), "%.*s/%s", (int)n, path,
				 prog);
			if (access(dir, X_OK) == 0) {
				return 1;
			}
		}
		path += n + (path[n] == ':' ? 1 : 0);
	}
	return 0;
}

/*
 * A program the user runs never installs packages (only the README's two
 * commands and scripts/install-deps.sh do): a missing gnuplot is said, with
 * the package that brings it.
 */
int bench_plot_check(void)
{
	if (in_path("gnuplot")) {
		return 0;
	}
	fprintf(stderr,
		"shmbus-bench: --plot needs gnuplot, which is not in PATH. "
		"On Debian it is in\nthe package gnuplot-nox:\n  sudo apt-get "
		"install gnuplot-nox\nor run without --plot.\n");
	return -ENOENT;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/*
 * Writes one distribution as "one_way_ns fraction_at_least" lines: every
 * point of the slowest POINTS samples (the tail, which a log y axis
 * spreads out), and every n/POINTS-th point below them.
 */
static int write_ccdf(const char *path, struct bench_samples *s)
{
	FILE *f = fopen(path, "w");
	size_t step = s->n / POINTS > 0 ? s->n / POINTS : 1;
	int rc = 0;

	if (f == NULL) {
		return -errno;
	}
	qsort(s->v, s->n, sizeof(s->v[0]), cmp_u64);
	for (size_t i = 0; i < s->n; i++) {
		if (s->n - i <= POINTS || i % step == 0) {
			/* RTT/2, as in the tables. */
			fprintf(f, "%.1f %.9g\n", (double)s->v[i] / 2.0,
				(double)(s->n - i) / (double)s->n);
		}
	}
	if (ferror(f)) {
		rc = -EIO;
	}
	if (fclose(f) != 0 && rc == 0) {
		rc = -errno;
	}
	return rc;
}

/* Removes dir and the files this module wrote in it. */
static void remove_dir(const char *dir, int nrows)
{
	char path[PATH_MAX];

	for (int i = 0; i < nrows; i++) {
		snprintf(path, sizeof(path), "%s/%d.dat", dir, i);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/plot.gp", dir);
	unlink(path);
	rmdir(dir);
}

/* The distinct sizes of latency rows with samples, in row order. */
static int plot_sizes(const struct bench_row *rows,
		      struct bench_samples *samples, int nrows, size_t *sizes)
{
	int n = 0;

	for (int i = 0; i < nrows; i++) {
		bool seen = false;

		if (strcmp(rows[i].section, "latency") != 0 ||
		    samples[i].n == 0 || rows[i].err != 0) {
			continue;
		}
		for (int k = 0; k < n; k++) {
			seen = seen || sizes[k] == rows[i].size;
		}
		if (!seen && n < MAX_PLOT_SIZES) {
			sizes[n++] = rows[i].size;
		}
	}
	return n;
}

/* Writes the gnuplot script: one panel per size, one line per row. */
static int write_script(const char *gp, const char *dir, const char *png,
			const struct bench_row *rows,
			struct bench_samples *samples, int nrows,
			const size_t *sizes, int nsizes)
{
	FILE *f = fopen(gp, "w");
	int rc = 0;

	if (f == NULL) {
		return -errno;
	}
	/* pngcairo draws better; plain png (libgd) is the fallback. */
	fprintf(f,
		"if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
		"  set terminal pngcairo size 1000,%d noenhanced\n"
		"} else {\n"
		"  set terminal png size 1000,%d noenhanced\n"
		"}\n"
		"set output '%s'\n"
		"set multiplot layout %d,1 title 'shmbus-bench: one-way "
		"latency (RTT/2), all samples of all repetitions'\n"
		"set logscale xy\n"
		"set grid xtics ytics mxtics\n"
		"set xlabel 'one-way latency, ns'\n"
		"set ylabel 'fraction of samples >= x'\n"
		"set key outside right top\n",
		360 * nsizes + 40, 360 * nsizes + 40, png, nsizes);
	for (int k = 0; k < nsizes; k++) {
		bool first = true;

		fprintf(f, "set title '%zu B'\nplot ", sizes[k]);
		for (int i = 0; i < nrows; i++) {
			if (strcmp(rows[i].section, "latency") != 0 ||
			    rows[i].size != sizes[k] || samples[i].n == 0 ||
			    rows[i].err != 0) {
				continue;
			}
			fprintf(f,
				"%s'%s/%d.dat' using 1:2 with lines lw 2 "
				"title '%s'",
				first ? "" : ", \\\n     ", dir, i,
				rows[i].transport);
			first = false;
		}
		fprintf(f, "\n");
	}
	fprintf(f, "unset multiplot\n");
	if (ferror(f)) {
		rc = -EIO;
	}
	if (fclose(f) != 0 && rc == 0) {
		rc = -errno;
	}
	return rc;
}

int bench_plot_latency(const char *png_path, const struct bench_row *rows,
		       struct bench_samples *samples, int nrows)
{
	const char *tmp = getenv("TMPDIR");
	char dir[PATH_MAX - 64];
	char gp[PATH_MAX];
	size_t sizes[MAX_PLOT_SIZES];
	int nsizes = plot_sizes(rows, samples, nrows, sizes);
	int rc = 0;

	if (nsizes == 0) {
		fprintf(stderr, "shmbus-bench: --plot: no latency samples "
				"to plot\n");
		return -ENODATA;
	}
	/* The path goes into the script between single quotes. */
	if (strchr(png_path, '\'') != NULL) {
		return -EINVAL;
	}
	snprintf(dir, sizeof(dir), "%s/shmbus-plot-XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		return -errno;
	}
	for (int i = 0; i < nrows && rc == 0; i++) {
		char path[PATH_MAX];

		if (strcmp(rows[i].section, "latency") != 0 ||
		    samples[i].n == 0 || rows[i].err != 0) {
			continue;
		}
		snprintf(path, sizeof(path), "%s/%d.dat", dir, i);
		rc = write_ccdf(path, &samples[i]);
	}
	snprintf(gp, sizeof(gp), "%s/plot.gp", dir);
	if (rc == 0) {
		rc = write_script(gp, dir, png_path, rows, samples, nrows,
				  sizes, nsizes);
	}
	if (rc == 0) {
		char *argv[] = {"gnuplot", gp, NULL};
		int st = run_cmd(argv);

		rc = st == 0 ? 0 : (st < 0 ? st : -EIO);
	}
	remove_dir(dir, nrows);
	return rc;
}
