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
#include <math.h>
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

/* 1 when rows[i] is a latency row with samples to draw. */
static bool plotted(const struct bench_row *rows,
		    const struct bench_samples *samples, int i)
{
	return strcmp(rows[i].section, "latency") == 0 && samples[i].n > 0 &&
	       rows[i].err == 0;
}

/* A round-trip time in ns as the plotted one-way time in µs (RTT/2). */
static double one_way_us(uint64_t rtt_ns)
{
	return (double)rtt_ns / 2000.0;
}

/*
 * Writes one sorted distribution as "one_way_us percent_at_least" lines:
 * every point of the slowest POINTS samples (the tail, which a log y axis
 * spreads out), and every n/POINTS-th point below them.
 */
static int write_ccdf(const char *path, const struct bench_samples *s)
{
	FILE *f = fopen(path, "w");
	size_t step = s->n / POINTS > 0 ? s->n / POINTS : 1;
	int rc = 0;

	if (f == NULL) {
		return -errno;
	}
	for (size_t i = 0; i < s->n; i++) {
		if (s->n - i <= POINTS || i % step == 0) {
			fprintf(f, "%.6g %.9g\n", one_way_us(s->v[i]),
				100.0 * (double)(s->n - i) / (double)s->n);
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

/* One panel: a message size, and the extent of its rows' samples. */
struct panel {
	size_t size;
	double fastest_us;
	double slowest_us;
	size_t most_samples;
};

/*
 * The panels: the distinct sizes of the plotted rows, in row order, from
 * samples write_data has sorted.
 */
static int plot_panels(const struct bench_row *rows,
		       const struct bench_samples *samples, int nrows,
		       struct panel *panels)
{
	int n = 0;

	for (int i = 0; i < nrows; i++) {
		const struct bench_samples *s = &samples[i];
		int k = 0;

		if (!plotted(rows, samples, i)) {
			continue;
		}
		while (k < n && panels[k].size != rows[i].size) {
			k++;
		}
		if (k == MAX_PLOT_SIZES) {
			continue;
		}
		if (k == n) {
			panels[n++] =
			    (struct panel){rows[i].size, HUGE_VAL, 0.0, 0};
		}
		/* Sorted: the fastest sample first, the slowest last. */
		if (one_way_us(s->v[0]) < panels[k].fastest_us) {
			panels[k].fastest_us = one_way_us(s->v[0]);
		}
		if (one_way_us(s->v[s->n - 1]) > panels[k].slowest_us) {
			panels[k].slowest_us = one_way_us(s->v[s->n - 1]);
		}
		if (s->n > panels[k].most_samples) {
			panels[k].most_samples = s->n;
		}
	}
	return n;
}

static double pow10_int(int e)
{
	double d = 1.0;

	for (; e > 0; e--) {
		d *= 10.0;
	}
	for (; e < 0; e++) {
		d /= 10.0;
	}
	return d;
}

/* The exponent of the largest power of ten <= x (x > 0). */
static int decade_below(double x)
{
	int e = 0;

	while (e > -12 && pow10_int(e) > x) {
		e--;
	}
	while (e < 12 && pow10_int(e + 1) <= x) {
		e++;
	}
	return e;
}

/* The exponent of the smallest power of ten >= x (x > 0). */
static int decade_above(double x)
{
	int e = decade_below(x);

	return pow10_int(e) < x ? e + 1 : e;
}

/*
 * Sets a log axis from 10^lo to 10^hi with its tics spelled out: a plain
 * decimal at each power of ten ("0.1", "1000", never "1e+03", which
 * gnuplot's own formats print), and unlabelled minor tics between them.
 */
static void write_log_axis(FILE *f, const char *axis, int lo, int hi,
			   const char *unit)
{
	fprintf(f, "set %srange [%g:%g]\nset %stics (", axis, pow10_int(lo),
		pow10_int(hi), axis);
	for (int e = lo; e <= hi; e++) {
		double d = pow10_int(e);

		fprintf(f, "%s\"%.*f%s\" %g", e == lo ? "" : ", ",
			e < 0 ? -e : 0, d, unit, d);
		for (int m = 2; m <= 9 && e < hi; m++) {
			fprintf(f, ", \"\" %g 1", m * d);
		}
	}
	fprintf(f, ")\n");
}

/*
 * Marks the percentiles the tables report: on this plot the p-th
 * percentile is where a curve crosses (100 - p) % of samples, so each is a
 * dotted horizontal line there, named in the right margin. p50 and p99 are
 * always marked; p99.9 only when at least 10 samples lie beyond it, since
 * a crossing drawn by one or two samples says little.
 */
static void write_percentile_marks(FILE *f, size_t most_samples)
{
	static const struct {
		const char *name;
		double percent_beyond;
		double min_samples_beyond;
	} marks[] = {{"p50", 50.0, 0}, {"p99", 1.0, 0}, {"p99.9", 0.1, 10}};

	fprintf(f, "unset arrow\nunset label\n");
	for (size_t m = 0; m < sizeof(marks) / sizeof(marks[0]); m++) {
		double beyond = marks[m].percent_beyond;

		if ((double)most_samples * beyond / 100.0 <
		    marks[m].min_samples_beyond) {
			continue;
		}
		fprintf(f,
			"set arrow from graph 0, first %g to graph 1, first "
			"%g nohead back dt 3 lw 1.5 lc rgb '#505050'\n"
			"set label '%s' at graph 1, first %g offset 1,0 left "
			"textcolor rgb '#303030'\n",
			beyond, beyond, marks[m].name, beyond);
	}
}

/*
 * One colour per transport of the table, in table order; the dash type
 * changes from one transport to the next too, so that two curves are told
 * apart by either. Past the colours, the colours repeat with other dashes.
 */
static const char *const colours[] = {
    "#000000", "#7f7f7f", "#8c564b", "#d62728", "#ff7f0e", "#e377c2",
    "#bcbd22", "#9467bd", "#1f77b4", "#17becf", "#2ca02c", "#b8860b",
};
#define NCOLOURS (sizeof(colours) / sizeof(colours[0]))
#define NDASHES	 4

/* Line style i + 1 for transport i of the table; the last for others. */
static void write_styles(FILE *f)
{
	for (size_t i = 0; i <= bench_tr_table_len; i++) {
		fprintf(f, "set style line %zu lw 2 lc rgb '%s' dt %zu\n",
			i + 1, colours[i % NCOLOURS],
			1 + (i + i / NCOLOURS) % NDASHES);
	}
}

static size_t style_of(const char *transport)
{
	size_t i = 0;

	while (i < bench_tr_table_len &&
	       strcmp(bench_tr_table[i]->name, transport) != 0) {
		i++;
	}
	return i + 1;
}

/* "64 B", or "65536 B (64 KiB)" where KiB or MiB say it better. */
static void size_title(char *out, size_t cap, size_t size)
{
	if (size >= 1024 * 1024 && size % (1024 * 1024) == 0) {
		snprintf(out, cap, "%zu B (%zu MiB)", size, size >> 20);
	} else if (size >= 1024 && size % 1024 == 0) {
		snprintf(out, cap, "%zu B (%zu KiB)", size, size >> 10);
	} else {
		snprintf(out, cap, "%zu B", size);
	}
}

/* One panel: its axes, its percentile marks, one line per row. */
static void write_panel(FILE *f, const char *dir, const struct panel *p,
			const struct bench_row *rows,
			const struct bench_samples *samples, int nrows)
{
	char title[64];
	bool first = true;

	size_title(title, sizeof(title), p->size);
	fprintf(f, "set title '%s, %zu samples per transport'\n", title,
		p->most_samples);
	write_log_axis(f, "x", decade_below(p->fastest_us),
		       decade_above(p->slowest_us), "");
	write_log_axis(f, "y", decade_below(100.0 / (double)p->most_samples), 2,
		       " %%"); /* a tic label is a format */
	write_percentile_marks(f, p->most_samples);
	fprintf(f, "plot ");
	for (int i = 0; i < nrows; i++) {
		if (!plotted(rows, samples, i) || rows[i].size != p->size) {
			continue;
		}
		fprintf(f,
			"%s'%s/%d.dat' using 1:2 with lines ls %zu title '%s'",
			first ? "" : ", \\\n     ", dir, i,
			style_of(rows[i].transport), rows[i].transport);
		first = false;
	}
	fprintf(f, "\n");
}

/*
 * Writes the gnuplot script: one panel per size, each with its legend
 * below it in rows of four, so that the curves have the whole width.
 */
static int write_script(const char *gp, const char *dir, const char *png,
			const struct bench_row *rows,
			const struct bench_samples *samples, int nrows,
			const struct panel *panels, int npanels)
{
	FILE *f = fopen(gp, "w");
	int rc = 0;

	if (f == NULL) {
		return -errno;
	}
	/* pngcairo draws better; plain png (libgd) is the fallback. */
	fprintf(f,
		"set encoding utf8\n"
		"if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
		"  set terminal pngcairo size 1100,%d noenhanced "
		"font 'sans,10'\n"
		"} else {\n"
		"  set terminal png size 1100,%d noenhanced\n"
		"}\n"
		"set output '%s'\n"
		"set multiplot layout %d,1 title 'shmbus-bench: one-way "
		"latency (RTT/2), all samples of all repetitions'\n"
		"set logscale xy\n"
		"set grid xtics ytics mxtics mytics lt 1 lc rgb '#c8c8c8', "
		"lt 1 lc rgb '#ececec'\n"
		"set xlabel 'one-way latency (µs)'\n"
		"set ylabel 'samples at least this slow'\n"
		"set rmargin 8\n"
		"set key outside below center horizontal maxcols 4 "
		"Left reverse samplen 4 width 3 height 1\n",
		500 * npanels + 40, 500 * npanels + 40, png, npanels);
	write_styles(f);
	for (int k = 0; k < npanels; k++) {
		write_panel(f, dir, &panels[k], rows, samples, nrows);
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

/* Sorts each plotted row's samples and writes them to dir/<row>.dat. */
static int write_data(const char *dir, const struct bench_row *rows,
		      struct bench_samples *samples, int nrows)
{
	int rc = 0;

	for (int i = 0; i < nrows && rc == 0; i++) {
		char path[PATH_MAX];

		if (!plotted(rows, samples, i)) {
			continue;
		}
		qsort(samples[i].v, samples[i].n, sizeof(samples[i].v[0]),
		      cmp_u64);
		snprintf(path, sizeof(path), "%s/%d.dat", dir, i);
		rc = write_ccdf(path, &samples[i]);
	}
	return rc;
}

int bench_plot_latency(const char *png_path, const struct bench_row *rows,
		       struct bench_samples *samples, int nrows)
{
	const char *tmp = getenv("TMPDIR");
	char dir[PATH_MAX - 64];
	char gp[PATH_MAX];
	struct panel panels[MAX_PLOT_SIZES];
	int npanels;
	int rc;

	/* The path goes into the script between single quotes. */
	if (strchr(png_path, '\'') != NULL) {
		return -EINVAL;
	}
	snprintf(dir, sizeof(dir), "%s/shmbus-plot-XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		return -errno;
	}
	rc = write_data(dir, rows, samples, nrows);
	npanels = plot_panels(rows, samples, nrows, panels);
	if (rc == 0 && npanels == 0) {
		fprintf(stderr, "shmbus-bench: --plot: no latency samples "
				"to plot\n");
		rc = -ENODATA;
	}
	snprintf(gp, sizeof(gp), "%s/plot.gp", dir);
	if (rc == 0) {
		rc = write_script(gp, dir, png_path, rows, samples, nrows,
				  panels, npanels);
	}
	if (rc == 0) {
		char *argv[] = {"gnuplot", gp, NULL};
		int st = run_cmd(argv);

		rc = st == 0 ? 0 : (st < 0 ? st : -EIO);
	}
	remove_dir(dir, nrows);
	return rc;
}
