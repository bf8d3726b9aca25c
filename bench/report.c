/*
 * report.c - how shmbus-bench shows what it measured: a header that says
 * what machine and options produced the figures, one table per section and
 * message size (medians, the spread of the repetitions under each, ratios
 * to the section's reference), the goals of bench/README.md met or not, and the
 * same rows as CSV or JSON for tools.
 */
#include "bench/bench.h"
#include "shmbus/map.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#define CELL 48

static const char *const lat_names[BENCH_LAT_NFIG] = {"p50", "p99", "p99.9",
						      "max"};
static const char *const tput_names[BENCH_TPUT_NFIG] = {"msg/s", "GB/s"};

static bool is_latency(const char *section)
{
	return strcmp(section, "latency") == 0;
}

/* Three significant digits, without an exponent, for the tables. */
static void fmt3(char *out, size_t cap, double v)
{
	double a = v < 0 ? -v : v;

	if (a >= 100 || a == 0) {
		snprintf(out, cap, "%.0f", v);
	} else if (a >= 10) {
		snprintf(out, cap, "%.1f", v);
	} else if (a >= 1) {
		snprintf(out, cap, "%.2f", v);
	} else {
		snprintf(out, cap, "%.3f", v);
	}
}

/* A figure as printed: latencies in ns, message rates in millions. */
static double shown(const char *section, int fig, double v)
{
	if (!is_latency(section) && fig == BENCH_TPUT_MSGS) {
		return v / 1e6;
	}
	return v;
}

static void fmt_spread(char *out, size_t cap, const char *section, int fig,
		       const struct bench_agg *a)
{
	/* Sized so that "[lo..hi]" always fits a cell. */
	char lo[(CELL - 4) / 2];
	char hi[(CELL - 4) / 2];

	fmt3(lo, sizeof(lo), shown(section, fig, a->min));
	fmt3(hi, sizeof(hi), shown(section, fig, a->max));
	snprintf(out, cap, "[%s..%s]", lo, hi);
}

static void fmt_ratio(char *out, size_t cap, const struct bench_row *row,
		      const struct bench_row *ref, int fig)
{
	char num[CELL - 1];

	if (ref == NULL || ref->err != 0 || row->err != 0 ||
	    ref->fig[fig].median <= 0) {
		snprintf(out, cap, "-");
		return;
	}
	fmt3(num, sizeof(num), row->fig[fig].median / ref->fig[fig].median);
	snprintf(out, cap, "%sx", num);
}

/*
 * Why a row failed. -ECHILD is the harness's own code for a side that died
 * or exited without saying why; the message that says more is on stderr.
 */
static const char *fail_text(int err)
{
	if (err == -ECHILD) {
		return "a side died (see the message above)";
	}
	return shmbus_strerror(err);
}

static const struct bench_row *find_row(const struct bench_row *rows, int nrows,
					const char *transport)
{
	for (int i = 0; i < nrows; i++) {
		if (strcmp(rows[i].transport, transport) == 0) {
			return &rows[i];
		}
	}
	return NULL;
}

static void cpu_model(char *out, size_t cap)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];

	snprintf(out, cap, "unknown CPU");
	if (f == NULL) {
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
			colon += strspn(colon + 1, " \t") + 1;
			colon[strcspn(colon, "\n")] = '\0';
			snprintf(out, cap, "%s", colon);
			break;
		}
	}
	fclose(f);
}

void bench_report_header(const struct bench_opts *o, double clock_ns)
{
	struct utsname u;
	char model[160];

	cpu_model(model, sizeof(model));
	if (uname(&u) < 0) {
		snprintf(u.release, sizeof(u.release), "?");
	}
	printf("shmbus-bench: %s, %ld CPUs online, Linux %s\n", model,
	       sysconf(_SC_NPROCESSORS_ONLN), u.release);
	if (o->pin) {
		printf("sides pinned: sender (ping) on CPU %d, receiver (pong) "
		       "on CPU %d\n",
		       o->cpu[0], o->cpu[1]);
	} else {
		printf("sides not pinned\n");
	}
	printf("each cell: median of %d repetitions, [min..max] of them "
	       "below; ratios are of medians\n",
	       o->reps);
	printf("clock: CLOCK_MONOTONIC, %.0f ns per read; duration cap %llu "
	       "ms per repetition; ring %zu bytes\n",
	       clock_ns, (unsigned long long)o->duration_ms, o->ring_bytes);
}

/*
 * A table as a grid of strings, so that each column is as wide as its
 * widest cell: a header line, then two lines per row (medians, spreads).
 */
#define MAX_COLS 8

static void print_line(char cells[][CELL], const int *width, int ncols)
{
	for (int c = 0; c < ncols; c++) {
		if (c == 0) {
			printf("  %-*s", width[c], cells[c]);
		} else {
			printf("  %*s", width[c], cells[c]);
		}
	}
	printf("\n");
}

/*
 * Prints a header line and two lines per row (medians, spreads), each
 * column as wide as its widest cell; a failed row is one line whose
 * message spills over the columns.
 */
static void print_grid(char head[][CELL], char (*grid)[2][MAX_COLS][CELL],
		       const struct bench_row *rows, int nrows, int ncols)
{
	int width[MAX_COLS] = {0};

	for (int c = 0; c < ncols; c++) {
		width[c] = (int)strlen(head[c]);
		for (int r = 0; r < nrows; r++) {
			for (int l = 0; l < 2; l++) {
				int w = (int)strlen(grid[r][l][c]);

				/* A failure message spills over; never widen.
				 */
				if (rows[r].err != 0 && c == 1) {
					continue;
				}
				width[c] = w > width[c] ? w : width[c];
			}
		}
	}
	print_line(head, width, ncols);
	for (int r = 0; r < nrows; r++) {
		if (rows[r].err != 0) {
			/* From fail_text(), not the cell: a cell would cut
			 * a long message at CELL - 1 characters. */
			printf("  %-*s  failed: %s\n", width[0], grid[r][0][0],
			       fail_text(rows[r].err));
			continue;
		}
		print_line(grid[r][0], width, ncols);
		print_line(grid[r][1], width, ncols);
	}
	fflush(stdout);
}

void bench_report_table(const char *section, size_t size,
			const struct bench_row *rows, int nrows)
{
	bool lat = is_latency(section);
	int nfig = lat ? BENCH_LAT_NFIG : BENCH_TPUT_NFIG;
	const struct bench_row *ref = find_row(
	    rows, nrows, lat ? BENCH_REF_LATENCY : BENCH_REF_THROUGHPUT);
	const struct bench_row *mref = find_row(rows, nrows, BENCH_REF_MEMCPY);
	const struct bench_row *cref = find_row(rows, nrows, BENCH_REF_CLASSIC);
	int ncols = 1 + nfig + 3; /* name, figures, three ratios */
	char head[MAX_COLS][CELL];
	char(*grid)[2][MAX_COLS][CELL];

	grid = calloc((size_t)nrows, sizeof(*grid));
	if (grid == NULL) {
		fprintf(stderr, "shmbus-bench: out of memory for a table\n");
		return;
	}
	snprintf(head[0], CELL, "transport");
	for (int f = 0; f < nfig; f++) {
		snprintf(head[1 + f], CELL, "%s",
			 lat ? lat_names[f] : tput_names[f]);
	}
	if (lat) {
		snprintf(head[1 + nfig], CELL, "p50/floor");
		snprintf(head[2 + nfig], CELL, "p99.9/floor");
		snprintf(head[3 + nfig], CELL, "p50/classic");
	} else {
		snprintf(head[1 + BENCH_TPUT_MSGS], CELL, "M msg/s");
		snprintf(head[1 + nfig], CELL, "x unix");
		snprintf(head[2 + nfig], CELL, "x memcpy");
		snprintf(head[3 + nfig], CELL, "x classic");
	}
	for (int r = 0; r < nrows; r++) {
		const struct bench_row *row = &rows[r];

		snprintf(grid[r][0][0], CELL, "%s", row->transport);
		grid[r][1][0][0] = '\0';
		for (int c = 1; c < ncols; c++) {
			grid[r][0][c][0] = grid[r][1][c][0] = '\0';
		}
		if (row->err != 0) {
			snprintf(grid[r][0][1], CELL, "failed: %s",
				 fail_text(row->err));
			continue;
		}
		for (int f = 0; f < nfig; f++) {
			fmt3(grid[r][0][1 + f], CELL,
			     shown(section, f, row->fig[f].median));
			fmt_spread(grid[r][1][1 + f], CELL, section, f,
				   &row->fig[f]);
		}
		if (lat) {
			fmt_ratio(grid[r][0][1 + nfig], CELL, row, ref,
				  BENCH_LAT_P50);
			fmt_ratio(grid[r][0][2 + nfig], CELL, row, ref,
				  BENCH_LAT_P999);
			fmt_ratio(grid[r][0][3 + nfig], CELL, row, cref,
				  BENCH_LAT_P50);
		} else {
			fmt_ratio(grid[r][0][1 + nfig], CELL, row, ref,
				  BENCH_TPUT_MSGS);
			fmt_ratio(grid[r][0][2 + nfig], CELL, row, mref,
				  BENCH_TPUT_MSGS);
			fmt_ratio(grid[r][0][3 + nfig], CELL, row, cref,
				  BENCH_TPUT_MSGS);
		}
	}
	printf("\n%s, %zu B, %s\n", section, size,
	       lat ? "one way = RTT/2, ns" : "one way, sender to receiver");
	print_grid(head, grid, rows, nrows, ncols);
	free(grid);
}

void bench_report_cases(const char *title, const char *first_col,
			const char *const *head, const struct bench_row *rows,
			int nrows, double scale, int ratio_fig,
			const char *ratio_head)
{
	int nfig = nrows > 0 ? rows[0].nfig : 0;
	int ncols = 1 + nfig + (ratio_fig >= 0 ? 1 : 0);
	char hcells[MAX_COLS][CELL];
	char(*grid)[2][MAX_COLS][CELL];

	if (ncols > MAX_COLS) {
		return;
	}
	grid = calloc((size_t)(nrows > 0 ? nrows : 1), sizeof(*grid));
	if (grid == NULL) {
		fprintf(stderr, "shmbus-bench: out of memory for a table\n");
		return;
	}
	snprintf(hcells[0], CELL, "%s", first_col);
	for (int f = 0; f < nfig; f++) {
		snprintf(hcells[1 + f], CELL, "%s", head[f]);
	}
	if (ratio_fig >= 0) {
		snprintf(hcells[1 + nfig], CELL, "%s", ratio_head);
	}
	for (int r = 0; r < nrows; r++) {
		const struct bench_row *row = &rows[r];

		snprintf(grid[r][0][0], CELL, "%s", row->transport);
		if (row->err != 0) {
			snprintf(grid[r][0][1], CELL, "failed: %s",
				 fail_text(row->err));
			continue;
		}
		for (int f = 0; f < nfig; f++) {
			char lo[(CELL - 4) / 2];
			char hi[(CELL - 4) / 2];

			fmt3(grid[r][0][1 + f], CELL,
			     row->fig[f].median / scale);
			fmt3(lo, sizeof(lo), row->fig[f].min / scale);
			fmt3(hi, sizeof(hi), row->fig[f].max / scale);
			snprintf(grid[r][1][1 + f], CELL, "[%s..%s]", lo, hi);
		}
		if (ratio_fig >= 0) {
			fmt_ratio(grid[r][0][1 + nfig], CELL, row, &rows[0],
				  ratio_fig);
		}
	}
	printf("\n%s\n", title);
	print_grid(hcells, grid, rows, nrows, ncols);
	free(grid);
}

static const struct bench_row *find(const struct bench_row *rows, int nrows,
				    const char *section, const char *transport,
				    size_t size)
{
	for (int i = 0; i < nrows; i++) {
		if (strcmp(rows[i].section, section) == 0 &&
		    strcmp(rows[i].transport, transport) == 0 &&
		    (size == 0 || rows[i].size == size) && rows[i].err == 0) {
			return &rows[i];
		}
	}
	return NULL;
}

/*
 * One target: `num` (and `den` when it is a ratio) are rows and figures of
 * this run; the value is num or num/den scaled by `scale`, compared with
 * `goal` (at most, or at least).
 */
struct target {
	const char *what;
	const char *num_sec, *num_tr;
	size_t num_size;
	int num_fig;
	const char *den_sec, *den_tr; /* NULL: an absolute figure */
	int den_fig;
	double scale;
	const char *unit;
	bool at_most;
	double goal;
};

static const struct target targets[] = {
    {"64 B latency p50: shmbus-spin / classic p50", "latency", "shmbus-spin",
     64, BENCH_LAT_P50, "latency", "classic", BENCH_LAT_P50, 1, "x", true, 1.3},
    {"64 B latency p99.9: shmbus-spin / floor p99.9", "latency", "shmbus-spin",
     64, BENCH_LAT_P999, "latency", "floor", BENCH_LAT_P999, 1, "x", true, 10},
    {"64 B latency p50: ring-block / pipe p50", "latency", "ring-block", 64,
     BENCH_LAT_P50, "latency", "pipe", BENCH_LAT_P50, 1, "x", true, 1},
    {"64 B latency p50: shmbus-wait / shmbus-spin p50", "latency",
     "shmbus-wait", 64, BENCH_LAT_P50, "latency", "shmbus-spin", BENCH_LAT_P50,
     1, "x", true, 1.5},
    {"64 B throughput: shmbus-spin / classic", "throughput", "shmbus-spin", 64,
     BENCH_TPUT_MSGS, "throughput", "classic", BENCH_TPUT_MSGS, 1, "x", false,
     0.25},
    {"64 B throughput: shmbus-spin / unix", "throughput", "shmbus-spin", 64,
     BENCH_TPUT_MSGS, "throughput", "unix", BENCH_TPUT_MSGS, 1, "x", false, 25},
    {"64 B throughput: shmbus-zerocopy / classic", "throughput",
     "shmbus-zerocopy", 64, BENCH_TPUT_MSGS, "throughput", "classic",
     BENCH_TPUT_MSGS, 1, "x", false, 0.5},
    {"64 B throughput: shmbus-batch / shmbus-spin", "throughput",
     "shmbus-batch", 64, BENCH_TPUT_MSGS, "throughput", "shmbus-spin",
     BENCH_TPUT_MSGS, 1, "x", false, 1},
    {"64 KiB throughput: shmbus-zerocopy / classic", "throughput",
     "shmbus-zerocopy", 65536, BENCH_TPUT_MSGS, "throughput", "classic",
     BENCH_TPUT_MSGS, 1, "x", false, 0.9},
    {"64 KiB throughput: shmbus-spin / classic", "throughput", "shmbus-spin",
     65536, BENCH_TPUT_MSGS, "throughput", "classic", BENCH_TPUT_MSGS, 1, "x",
     false, 0.5},
    {"control: topic pub open+close", "control", "pub-open-close", 0,
     BENCH_CTL_RATE, NULL, NULL, 0, 1, " /s", false, 20000},
    {"control: topic sub open+close", "control", "sub-open-close", 0,
     BENCH_CTL_RATE, NULL, NULL, 0, 1, " /s", false, 20000},
};

/*
 * Rows for context, printed under the goals with "info" for a verdict:
 * read, not judged (goal and at_most unused).
 */
#define INFO_FIG(what_, sec_, tr_, size_, fig_, scale_, unit_)                 \
	{                                                                      \
		.what = (what_), .num_sec = (sec_), .num_tr = (tr_),           \
		.num_size = (size_), .num_fig = (fig_), .scale = (scale_),     \
		.unit = (unit_)                                                \
	}
#define INFO_RATIO(what_, sec_, tr_, size_, fig_, den_tr_, scale_, unit_)      \
	{                                                                      \
		.what = (what_), .num_sec = (sec_), .num_tr = (tr_),           \
		.num_size = (size_), .num_fig = (fig_), .den_sec = (sec_),     \
		.den_tr = (den_tr_), .den_fig = (fig_), .scale = (scale_),     \
		.unit = (unit_)                                                \
	}

static const struct target beside_spsc[] = {
    INFO_RATIO("64 B latency p50: classic / floor p50", "latency", "classic",
	       64, BENCH_LAT_P50, "floor", 1, "x"),
    INFO_RATIO("64 B latency p50: shmbus-spin / ring-spin p50", "latency",
	       "shmbus-spin", 64, BENCH_LAT_P50, "ring-spin", 1, "x"),
    INFO_FIG("64 B throughput: classic", "throughput", "classic", 64,
	     BENCH_TPUT_MSGS, 1e-6, " M msg/s"),
    INFO_RATIO("64 B throughput: shmbus-spin / ring-spin", "throughput",
	       "shmbus-spin", 64, BENCH_TPUT_MSGS, "ring-spin", 1, "x"),
    INFO_RATIO("64 B throughput: shmbus-spin / spsc", "throughput",
	       "shmbus-spin", 64, BENCH_TPUT_MSGS, "spsc", 1, "x"),
    INFO_FIG("64 KiB throughput: classic", "throughput", "classic", 65536,
	     BENCH_TPUT_GBS, 1, " GB/s"),
    INFO_RATIO("64 KiB throughput: classic / memcpy", "throughput", "classic",
	       65536, BENCH_TPUT_MSGS, "memcpy", 1, "x"),
};

#define NTARGETS     (sizeof(targets) / sizeof(targets[0]))
#define NBESIDE_SPSC (sizeof(beside_spsc) / sizeof(beside_spsc[0]))

/*
 * Prints one line of the targets table, `w` wide in its first column: the
 * measured value and, for a target, its goal and whether it is met; for a
 * row for context (`info`), no goal and "info".
 */
static void print_target(const struct target *t, bool info,
			 const struct bench_row *rows, int nrows, int w)
{
	const struct bench_row *num =
	    find(rows, nrows, t->num_sec, t->num_tr, t->num_size);
	const struct bench_row *den =
	    t->den_sec != NULL
		? find(rows, nrows, t->den_sec, t->den_tr, t->num_size)
		: NULL;
	char val[CELL], goal[CELL], m[CELL / 2];
	const char *verdict;
	double v;

	if (info) {
		snprintf(goal, sizeof(goal), "-");
	} else {
		fmt3(m, sizeof(m), t->goal);
		snprintf(goal, sizeof(goal), "%s %s%s",
			 t->at_most ? "<=" : ">=", m, t->unit);
	}
	if (num == NULL || (t->den_sec != NULL && den == NULL) ||
	    (den != NULL && den->fig[t->den_fig].median <= 0)) {
		printf("  %-*s  %14s  %12s  %s\n", w, t->what, "-", goal,
		       "not measured in this run");
		return;
	}
	v = num->fig[t->num_fig].median;
	if (den != NULL) {
		v /= den->fig[t->den_fig].median;
	}
	v *= t->scale;
	if (info) {
		verdict = "info";
	} else if (t->at_most ? v <= t->goal : v >= t->goal) {
		verdict = "met";
	} else {
		verdict = "NOT MET";
	}
	fmt3(m, sizeof(m), v);
	snprintf(val, sizeof(val), "%s%s", m, t->unit);
	printf("  %-*s  %14s  %12s  %s\n", w, t->what, val, goal, verdict);
}

void bench_report_targets(const struct bench_row *rows, int nrows)
{
	int w = 0;

	for (size_t i = 0; i < NTARGETS + NBESIDE_SPSC; i++) {
		const struct target *t =
		    i < NTARGETS ? &targets[i] : &beside_spsc[i - NTARGETS];
		int l = (int)strlen(t->what);

		w = l > w ? l : w;
	}
	printf("\ngoals (bench/README.md), from the medians of this run "
	       "(ratios hold;\nabsolute figures drift with the machine)\n");
	printf("  %-*s  %14s  %12s  %s\n", w, "goal", "measured", "goal",
	       "verdict");
	for (size_t i = 0; i < NTARGETS; i++) {
		print_target(&targets[i], false, rows, nrows, w);
	}
	printf("  %-*s  %14s  %12s  %s\n", w,
	       "fan-out: reader cost alone vs "
	       "one of 8",
	       "-", "same", "run bench/instructions.sh");
	printf("  %-*s  %14s  %12s  %s\n", w, "syscalls per message, spinning",
	       "-", "0", "run bench/syscalls.sh");
	printf("  for context, without a goal: the references, and what the "
	       "library and the\n  broker's topic add to the ring alone\n");
	for (size_t i = 0; i < NBESIDE_SPSC; i++) {
		print_target(&beside_spsc[i], true, rows, nrows, w);
	}
	fflush(stdout);
}

static const char *fig_name(const struct bench_row *row, int f)
{
	if (row->fig_names != NULL) {
		return row->fig_names[f];
	}
	if (is_latency(row->section)) {
		return lat_names[f];
	}
	return f == BENCH_TPUT_MSGS ? "msgs_per_s" : "gb_per_s";
}

static const char *fig_unit(const struct bench_row *row, int f)
{
	if (row->fig_units != NULL) {
		return row->fig_units[f];
	}
	if (is_latency(row->section)) {
		return "ns_one_way";
	}
	return f == BENCH_TPUT_MSGS ? "msg/s" : "GB/s";
}

int bench_report_csv(const char *path, const struct bench_opts *o,
		     const struct bench_row *rows, int nrows)
{
	FILE *f = fopen(path, "w");
	int rc = 0;

	(void)o;
	if (f == NULL) {
		return -errno;
	}
	fprintf(f, "section,transport,size_bytes,metric,unit,median,min,max,"
		   "reps,count,error\n");
	for (int r = 0; r < nrows; r++) {
		const struct bench_row *row = &rows[r];

		if (row->err != 0) {
			fprintf(f, "%s,%s,%zu,,,,,,0,0,\"%s\"\n", row->section,
				row->transport, row->size, fail_text(row->err));
			continue;
		}
		for (int i = 0; i < row->nfig; i++) {
			fprintf(f, "%s,%s,%zu,%s,%s,%.9g,%.9g,%.9g,%d,%llu,\n",
				row->section, row->transport, row->size,
				fig_name(row, i), fig_unit(row, i),
				row->fig[i].median, row->fig[i].min,
				row->fig[i].max, row->fig[i].reps,
				(unsigned long long)row->count);
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

int bench_report_json(const char *path, const struct bench_opts *o,
		      double clock_ns, const struct bench_row *rows, int nrows)
{
	FILE *f = fopen(path, "w");
	int rc = 0;

	if (f == NULL) {
		return -errno;
	}
	/* Every string written is ours (names, strerror): nothing to escape. */
	fprintf(f, "{\n  \"tool\": \"shmbus-bench\",\n  \"reps\": %d,\n",
		o->reps);
	if (o->pin) {
		fprintf(f, "  \"pin\": [%d, %d],\n", o->cpu[0], o->cpu[1]);
	} else {
		fprintf(f, "  \"pin\": null,\n");
	}
	fprintf(f,
		"  \"duration_ms\": %llu,\n  \"ring_bytes\": %zu,\n"
		"  \"clock_ns\": %.1f,\n  \"results\": [",
		(unsigned long long)o->duration_ms, o->ring_bytes, clock_ns);
	for (int r = 0; r < nrows; r++) {
		const struct bench_row *row = &rows[r];

		fprintf(f,
			"%s\n    {\"section\": \"%s\", \"transport\": \"%s\", "
			"\"size\": %zu, \"count\": %llu, ",
			r == 0 ? "" : ",", row->section, row->transport,
			row->size, (unsigned long long)row->count);
		if (row->err != 0) {
			fprintf(f, "\"error\": \"%s\"}", fail_text(row->err));
			continue;
		}
		fprintf(f, "\"error\": null, \"unit\": {");
		for (int i = 0; i < row->nfig; i++) {
			fprintf(f, "%s\"%s\": \"%s\"", i == 0 ? "" : ", ",
				fig_name(row, i), fig_unit(row, i));
		}
		fprintf(f, "}, \"figures\": {");
		for (int i = 0; i < row->nfig; i++) {
			fprintf(f,
				"%s\"%s\": {\"median\": %.9g, \"min\": %.9g, "
				"\"max\": %.9g, \"reps\": %d}",
				i == 0 ? "" : ", ", fig_name(row, i),
				row->fig[i].median, row->fig[i].min,
				row->fig[i].max, row->fig[i].reps);
		}
		fprintf(f, "}}");
	}
	fprintf(f, "\n  ]\n}\n");
	if (ferror(f)) {
		rc = -EIO;
	}
	if (fclose(f) != 0 && rc == 0) {
		rc = -errno;
	}
	return rc;
}
