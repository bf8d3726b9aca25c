/*
 * main.c - shmbus-bench: measures one-way latency (ping-pong) and one-way
 * throughput of every registered transport against the baselines, how one
 * ring scales with producers, subscribers and queue consumers, and the
 * broker's control plane, in one run on one machine. Each figure is the
 * median of several repetitions with their spread and, where it has one,
 * its ratio to a reference measured in the same run; the goals
 * are checked at the end. See bench/README.md for what each figure means.
 */
#include "bench/bench.h"
#include "shmbus/map.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out)
{
	fprintf(out,
		"usage: shmbus-bench [options]\n"
		"\n"
		"Measures one-way latency (ping-pong, RTT/2) and one-way "
		"throughput between\ntwo forked processes, for each "
		"transport below and each message size; how\none shmbus "
		"ring scales with producers, subscribers and queue "
		"consumers; and\nthe control plane of a shmbusd started "
		"for the run. Ends with the goals of\nbench/README.md, met or "
		"not.\n"
		"\n"
		"  --section LIST    latency, throughput, scaling, control "
		"(comma list or\n"
		"                    repeated; default all four); --only is "
		"the same\n"
		"  --reps N          repetitions per figure (default 5, at "
		"least 5); each\n"
		"                    figure is their median, [min..max] "
		"shown below it\n"
		"  --count N         round trips (latency), messages "
		"(throughput; scaling, in\n"
		"                    all) or operations (control) timed per "
		"repetition (default:\n"
		"                    10000 round trips; 256 MiB of "
		"messages, 1000..1000000;\n"
		"                    500000 messages; 2000 operations, 1000 "
		"joins)\n"
		"  --duration-ms N   stop a repetition's timing after N ms "
		"even if --count\n"
		"                    is not reached (default 1000)\n"
		"  --sizes LIST      message sizes in bytes, K and M "
		"suffixes allowed\n"
		"                    (default 64,1024,65536; each %d.."
		"%u)\n"
		"  --transports LIST transports to measure (default all); "
		"the references\n"
		"                    (%s for latency; %s and %s for "
		"throughput)\n"
		"                    are measured too, unless "
		"--no-references\n"
		"  --no-references   measure only what --transports names "
		"(ratios show -)\n"
		"  --scaling-size N  message size of the scaling section "
		"(default 64)\n"
		"  --pin A,B         pin the sender (ping) side to CPU A and "
		"the receiver\n"
		"                    (pong) side to CPU B (default: the "
		"first two CPUs\n"
		"                    this process may use, if there are two)\n"
		"  --no-pin          do not pin\n"
		"  --ring-bytes N    buffer size for ring transports and the "
		"memcpy\n"
		"                    reference (default 1M)\n"
		"  --csv FILE        also write every figure as CSV\n"
		"  --json FILE       also write every figure as JSON\n"
		"  --plot FILE.png   also plot the one-way latency "
		"distribution of every\n"
		"                    latency row (needs gnuplot: Debian "
		"package gnuplot-nox)\n"
		"  --help            this text\n"
		"\n"
		"transports:\n",
		BENCH_MIN_SIZE, BENCH_MAX_SIZE, BENCH_REF_LATENCY,
		BENCH_REF_THROUGHPUT, BENCH_REF_MEMCPY);
	for (size_t i = 0; i < bench_tr_table_len; i++) {
		const struct bench_tr_ops *t = bench_tr_table[i];

		fprintf(out, "  %-16s  %s%s\n", t->name, t->summary,
			(t->flags & BENCH_TR_THROUGHPUT) ? ""
							 : " [latency only]");
	}
	fprintf(out, "  %-16s  %s\n", BENCH_REF_MEMCPY,
		"memcpy into a ring-sized buffer, one process "
		"[throughput only]");
}

/* Parses a decimal count with an optional K or M (binary) suffix. */
static int parse_u64(const char *s, uint64_t *out)
{
	char *endp;
	unsigned long long v;

	if (*s < '0' || *s > '9') {
		return -EINVAL;
	}
	errno = 0;
	v = strtoull(s, &endp, 10);
	if (errno != 0) {
		return -EINVAL;
	}
	if (*endp == 'K' || *endp == 'k') {
		v = v > (ULLONG_MAX >> 10) ? ULLONG_MAX : v << 10;
		endp++;
	} else if (*endp == 'M' || *endp == 'm') {
		v = v > (ULLONG_MAX >> 20) ? ULLONG_MAX : v << 20;
		endp++;
	}
	if (*endp != '\0') {
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_sizes(char *list, struct bench_opts *o)
{
	o->nsizes = 0;
	for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		uint64_t v;

		if (parse_u64(tok, &v) < 0 || v < BENCH_MIN_SIZE ||
		    v > BENCH_MAX_SIZE) {
			fprintf(stderr,
				"shmbus-bench: --sizes: \"%s\" is not a size "
				"from %d to %u\n",
				tok, BENCH_MIN_SIZE, BENCH_MAX_SIZE);
			return -EINVAL;
		}
		if (o->nsizes == BENCH_MAX_SIZES) {
			fprintf(stderr, "shmbus-bench: --sizes: at most %d\n",
				BENCH_MAX_SIZES);
			return -EINVAL;
		}
		o->sizes[o->nsizes++] = (size_t)v;
	}
	if (o->nsizes == 0) {
		fprintf(stderr, "shmbus-bench: --sizes: empty list\n");
		return -EINVAL;
	}
	return 0;
}

/*
 * Selects the named transports (and the references), keeping table order
 * so that tables read the same whatever order the names were given in.
 */
static int parse_transports(char *list, struct bench_opts *o)
{
	bool want[BENCH_MAX_TRANSPORTS] = {false};

	for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		bool found = strcmp(tok, BENCH_REF_MEMCPY) == 0;

		o->want_memcpy = o->want_memcpy || found;

		for (size_t i = 0; i < bench_tr_table_len; i++) {
			if (strcmp(bench_tr_table[i]->name, tok) == 0) {
				want[i] = true;
				found = true;
			}
		}
		if (!found) {
			fprintf(stderr,
				"shmbus-bench: --transports: no transport "
				"\"%s\" (see --help)\n",
				tok);
			return -EINVAL;
		}
	}
	o->ntr = 0;
	for (size_t i = 0; i < bench_tr_table_len; i++) {
		const char *name = bench_tr_table[i]->name;

		if (want[i] || strcmp(name, BENCH_REF_LATENCY) == 0 ||
		    strcmp(name, BENCH_REF_THROUGHPUT) == 0) {
			o->requested[o->ntr] = want[i];
			o->tr[o->ntr++] = bench_tr_table[i];
		}
	}
	return 0;
}

static int parse_pin(const char *s, struct bench_opts *o)
{
	int a, b, n = 0;

	if (sscanf(s, "%d,%d%n", &a, &b, &n) != 2 || s[n] != '\0' || a < 0 ||
	    b < 0 || a >= CPU_SETSIZE || b >= CPU_SETSIZE) {
		fprintf(stderr, "shmbus-bench: --pin: expected A,B (two CPU "
				"numbers)\n");
		return -EINVAL;
	}
	o->pin = true;
	o->cpu[0] = a;
	o->cpu[1] = b;
	return 0;
}

/* Default pinning: the first two CPUs of our affinity mask, if any. */
static void default_pin(struct bench_opts *o)
{
	cpu_set_t set;
	int n = 0;

	o->pin = false;
	if (sched_getaffinity(0, sizeof(set), &set) < 0) {
		return;
	}
	for (int cpu = 0; cpu < CPU_SETSIZE && n < 2; cpu++) {
		if (CPU_ISSET(cpu, &set)) {
			o->cpu[n++] = cpu;
		}
	}
	o->pin = n == 2;
}

/*
 * Adds the sections named in `list` (comma-separated). The first --section
 * (or --only) replaces the default of all sections; later ones add.
 */
static int parse_sections(char *list, struct bench_opts *o, bool *given)
{
	if (!*given) {
		o->latency = o->throughput = o->scaling = o->control = false;
		*given = true;
	}
	for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		bool all = strcmp(tok, "all") == 0;
		bool known = all;

		if (all || strcmp(tok, "latency") == 0) {
			o->latency = known = true;
		}
		if (all || strcmp(tok, "throughput") == 0) {
			o->throughput = known = true;
		}
		if (all || strcmp(tok, "scaling") == 0) {
			o->scaling = known = true;
		}
		if (all || strcmp(tok, "control") == 0) {
			o->control = known = true;
		}
		if (!known) {
			fprintf(stderr,
				"shmbus-bench: --section: \"%s\" is not "
				"latency, throughput, scaling, control or "
				"all\n",
				tok);
			return -EINVAL;
		}
	}
	return 0;
}

enum {
	OPT_REPS = 256,
	OPT_COUNT,
	OPT_DURATION,
	OPT_SIZES,
	OPT_SECTION,
	OPT_TRANSPORTS,
	OPT_NO_REFS,
	OPT_SCALING_SIZE,
	OPT_PLOT,
	OPT_PIN,
	OPT_NO_PIN,
	OPT_RING,
	OPT_CSV,
	OPT_JSON,
	OPT_HELP
};

static const struct option long_opts[] = {
    {"reps", required_argument, NULL, OPT_REPS},
    {"count", required_argument, NULL, OPT_COUNT},
    {"duration-ms", required_argument, NULL, OPT_DURATION},
    {"sizes", required_argument, NULL, OPT_SIZES},
    {"section", required_argument, NULL, OPT_SECTION},
    {"only", required_argument, NULL, OPT_SECTION},
    {"transports", required_argument, NULL, OPT_TRANSPORTS},
    {"no-references", no_argument, NULL, OPT_NO_REFS},
    {"scaling-size", required_argument, NULL, OPT_SCALING_SIZE},
    {"plot", required_argument, NULL, OPT_PLOT},
    {"pin", required_argument, NULL, OPT_PIN},
    {"no-pin", no_argument, NULL, OPT_NO_PIN},
    {"ring-bytes", required_argument, NULL, OPT_RING},
    {"csv", required_argument, NULL, OPT_CSV},
    {"json", required_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* Fills *o from argv. Returns 0, 1 for --help, or -EINVAL. */
static int parse_args(int argc, char **argv, struct bench_opts *o)
{
	char default_sizes[] = "64,1024,65536";
	bool pin_given = false;
	bool sizes_given = false;
	bool sections_given = false;
	int opt;

	memset(o, 0, sizeof(*o));
	o->reps = BENCH_MIN_REPS;
	o->duration_ms = 1000;
	o->ring_bytes = 1u << 20;
	o->latency = o->throughput = o->scaling = o->control = true;
	o->references = true;
	o->scaling_size = 64;
	/* Default: every transport. */
	o->ntr = 0;
	for (size_t i = 0; i < bench_tr_table_len && i < BENCH_MAX_TRANSPORTS;
	     i++) {
		o->requested[o->ntr] = true;
		o->tr[o->ntr++] = bench_tr_table[i];
	}
	while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		uint64_t v = 0;

		switch (opt) {
		case OPT_REPS:
			if (parse_u64(optarg, &v) < 0 || v < BENCH_MIN_REPS ||
			    v > 1000) {
				fprintf(stderr,
					"shmbus-bench: --reps: %d to "
					"1000\n",
					BENCH_MIN_REPS);
				return -EINVAL;
			}
			o->reps = (int)v;
			break;
		case OPT_COUNT:
			if (parse_u64(optarg, &v) < 0 || v < 1 ||
			    v > 1000000000u) {
				fprintf(stderr, "shmbus-bench: --count: 1 to "
						"10^9\n");
				return -EINVAL;
			}
			o->count = v;
			break;
		case OPT_DURATION:
			if (parse_u64(optarg, &v) < 0 || v < 1 ||
			    v > 3600000u) {
				fprintf(stderr, "shmbus-bench: --duration-ms: "
						"1 to 3600000\n");
				return -EINVAL;
			}
			o->duration_ms = v;
			break;
		case OPT_SIZES:
			if (parse_sizes(optarg, o) < 0) {
				return -EINVAL;
			}
			sizes_given = true;
			break;
		case OPT_SECTION:
			if (parse_sections(optarg, o, &sections_given) < 0) {
				return -EINVAL;
			}
			break;
		case OPT_NO_REFS:
			o->references = false;
			break;
		case OPT_SCALING_SIZE:
			if (parse_u64(optarg, &v) < 0 || v < 16 ||
			    v > BENCH_MAX_SIZE) {
				fprintf(stderr,
					"shmbus-bench: --scaling-size: 16 to "
					"%u\n",
					BENCH_MAX_SIZE);
				return -EINVAL;
			}
			o->scaling_size = (size_t)v;
			break;
		case OPT_PLOT:
			o->plot_path = optarg;
			break;
		case OPT_TRANSPORTS:
			if (parse_transports(optarg, o) < 0) {
				return -EINVAL;
			}
			break;
		case OPT_PIN:
			if (parse_pin(optarg, o) < 0) {
				return -EINVAL;
			}
			pin_given = true;
			break;
		case OPT_NO_PIN:
			o->pin = false;
			pin_given = true;
			break;
		case OPT_RING:
			if (parse_u64(optarg, &v) < 0 || v < 4096 ||
			    v > (1u << 30)) {
				fprintf(stderr, "shmbus-bench: --ring-bytes: "
						"4K to 1G\n");
				return -EINVAL;
			}
			o->ring_bytes = (size_t)v;
			break;
		case OPT_CSV:
			o->csv_path = optarg;
			break;
		case OPT_JSON:
			o->json_path = optarg;
			break;
		case OPT_HELP:
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "shmbus-bench: unexpected argument \"%s\"\n",
			argv[optind]);
		return -EINVAL;
	}
	if (!sizes_given && parse_sizes(default_sizes, o) < 0) {
		return -EINVAL;
	}
	o->pin_given = pin_given;
	if (!pin_given) {
		default_pin(o);
	}
	if (o->scaling && o->scaling_size > o->ring_bytes / 4) {
		fprintf(stderr,
			"shmbus-bench: --scaling-size %zu is over a quarter of "
			"the ring (--ring-bytes %zu)\n",
			o->scaling_size, o->ring_bytes);
		return -EINVAL;
	}
	if (o->plot_path != NULL && !o->latency) {
		fprintf(stderr, "shmbus-bench: --plot needs the latency "
				"section\n");
		return -EINVAL;
	}
	for (int i = 0; i < o->nsizes; i++) {
		if (o->sizes[i] > o->ring_bytes) {
			fprintf(stderr,
				"shmbus-bench: size %zu does not fit the ring "
				"(--ring-bytes %zu)\n",
				o->sizes[i], o->ring_bytes);
			return -EINVAL;
		}
	}
	return 0;
}

/* The latency samples kept for --plot: the row they belong to, and them. */
struct kept {
	int row;
	struct bench_samples s;
};

struct kept_list {
	struct kept *v;
	int n;
	int cap;
};

static struct bench_samples *kept_push(struct kept_list *k, int row)
{
	if (k->n == k->cap) {
		int cap = k->cap != 0 ? k->cap * 2 : 16;
		struct kept *v = realloc(k->v, (size_t)cap * sizeof(*v));

		if (v == NULL) {
			return NULL;
		}
		k->v = v;
		k->cap = cap;
	}
	memset(&k->v[k->n], 0, sizeof(k->v[0]));
	k->v[k->n].row = row;
	return &k->v[k->n++].s;
}

/* A run slot of one section at one size: its row and its raw values. */
struct slot {
	const struct bench_tr_ops *t; /* NULL: the memcpy reference */
	struct bench_row *row;
	double *vals; /* [fig][rep] */
	uint64_t min_count;
	int keep; /* index in the kept list, or -1 */
};

/*
 * Measures one section at one size. The repetitions are the outer loop,
 * so that every transport is measured across the whole span of the run
 * and a slow drift of the machine (another tenant, frequency) shows up in
 * every row's spread rather than biasing one row.
 */
static int run_size(const struct bench_opts *o, bool lat, size_t size,
		    struct bench_rows *all, struct kept_list *kept)
{
	const char *section = lat ? "latency" : "throughput";
	unsigned need = lat ? BENCH_TR_LATENCY : BENCH_TR_THROUGHPUT;
	int nfig = lat ? BENCH_LAT_NFIG : BENCH_TPUT_NFIG;
	struct slot slots[BENCH_MAX_TRANSPORTS + 1];
	int first = all->n;
	int n = 0;
	int rc = 0;

	const char *ref = lat ? BENCH_REF_LATENCY : BENCH_REF_THROUGHPUT;

	for (int i = 0; i < o->ntr; i++) {
		bool wanted =
		    o->requested[i] ||
		    (o->references && strcmp(o->tr[i]->name, ref) == 0);

		if ((o->tr[i]->flags & need) && wanted) {
			slots[n++].t = o->tr[i];
		}
	}
	if (!lat && (o->references || o->want_memcpy)) {
		slots[n++].t = NULL;
	}
	for (int s = 0; s < n; s++) {
		struct bench_row *row = bench_rows_push(all);

		slots[s].vals =
		    calloc((size_t)(nfig * o->reps), sizeof(double));
		slots[s].keep = -1;
		if (row == NULL || slots[s].vals == NULL) {
			for (int k = 0; k <= s; k++) {
				free(slots[k].vals);
			}
			return -ENOMEM;
		}
		row->section = section;
		row->transport =
		    slots[s].t != NULL ? slots[s].t->name : BENCH_REF_MEMCPY;
		row->size = size;
		row->nfig = nfig;
		slots[s].min_count = UINT64_MAX;
		if (lat && o->plot_path != NULL &&
		    kept_push(kept, first + s) != NULL) {
			slots[s].keep = kept->n - 1;
		}
	}
	/* bench_rows_push may have moved the array: take row pointers now. */
	for (int s = 0; s < n; s++) {
		slots[s].row = &all->v[first + s];
	}
	if (isatty(STDERR_FILENO)) {
		fprintf(stderr, "%s %zu B: ", section, size);
	}
	for (int rep = 0; rep < o->reps; rep++) {
		for (int s = 0; s < n; s++) {
			struct slot *sl = &slots[s];
			double vals[BENCH_NFIG_MAX];
			uint64_t count = 0;
			int err;

			if (sl->row->err != 0) {
				continue;
			}
			if (sl->t == NULL) {
				err = bench_memcpy_once(o, size, vals, &count);
			} else if (lat) {
				err = bench_latency_once(
				    o, sl->t, size, vals, &count,
				    sl->keep >= 0 ? &kept->v[sl->keep].s
						  : NULL);
			} else {
				err = bench_throughput_once(o, sl->t, size,
							    vals, &count);
			}
			if (err < 0) {
				sl->row->err = err;
				continue;
			}
			for (int f = 0; f < nfig; f++) {
				sl->vals[f * o->reps + rep] = vals[f];
			}
			if (count < sl->min_count) {
				sl->min_count = count;
			}
		}
		if (isatty(STDERR_FILENO)) {
			fprintf(stderr, ".");
		}
	}
	if (isatty(STDERR_FILENO)) {
		fprintf(stderr, "\n");
	}
	for (int s = 0; s < n; s++) {
		struct slot *sl = &slots[s];

		if (sl->row->err == 0) {
			for (int f = 0; f < nfig; f++) {
				bench_stats_aggregate(&sl->vals[f * o->reps],
						      o->reps,
						      &sl->row->fig[f]);
			}
			sl->row->count = sl->min_count;
		}
		free(sl->vals);
	}
	bench_report_table(section, size, &all->v[first], n);
	return rc;
}

/* Writes the plot from the kept samples. Returns 0 or a negative errno. */
static int plot(const struct bench_opts *o, const struct bench_rows *rows,
		struct kept_list *kept)
{
	struct bench_samples *by_row =
	    calloc((size_t)rows->n + 1, sizeof(*by_row));
	int rc;

	if (by_row == NULL) {
		return -ENOMEM;
	}
	/* Borrowed, not copied: the kept list still owns the arrays. */
	for (int i = 0; i < kept->n; i++) {
		by_row[kept->v[i].row] = kept->v[i].s;
	}
	rc = bench_plot_latency(o->plot_path, rows->v, by_row, rows->n);
	free(by_row);
	return rc;
}

int main(int argc, char **argv)
{
	/* Every row measured, for --csv, --json and the targets. */
	struct bench_rows rows = {NULL, 0, 0};
	struct kept_list kept = {NULL, 0, 0};
	struct bench_opts o;
	double clock_ns;
	int status = 0;
	int rc;

	if (bench_tr_table_len > BENCH_MAX_TRANSPORTS) {
		fprintf(stderr,
			"shmbus-bench: more than %d transports: raise "
			"BENCH_MAX_TRANSPORTS\n",
			BENCH_MAX_TRANSPORTS);
		return 2;
	}
	rc = parse_args(argc, argv, &o);
	if (rc != 0) {
		return rc > 0 ? 0 : 2;
	}
	/* Before measuring: a missing gnuplot should not cost a whole run. */
	if (o.plot_path != NULL && bench_plot_check() < 0) {
		return 2;
	}
	clock_ns = bench_clock_cost();
	bench_report_header(&o, clock_ns);
	if (!o.pin) {
		fprintf(stderr, "shmbus-bench: warning: sides not pinned; "
				"spinning transports suffer most\n");
	} else if (o.cpu[0] == o.cpu[1]) {
		fprintf(stderr,
			"shmbus-bench: warning: both sides on CPU %d; "
			"a spinning side only runs when the other "
			"yields\n",
			o.cpu[0]);
	}
	rc = 0;
	for (int sec = 0; sec < 2; sec++) {
		bool lat = sec == 0;

		if (lat ? !o.latency : !o.throughput) {
			continue;
		}
		for (int i = 0; i < o.nsizes && rc == 0; i++) {
			rc = run_size(&o, lat, o.sizes[i], &rows, &kept);
		}
	}
	if (rc == 0 && o.scaling) {
		rc = bench_scaling_run(&o, &rows);
	}
	if (rc == 0 && o.control) {
		/* A broker that would not start fails its rows, not the run. */
		rc = bench_control_run(&o, &rows);
		rc = rc == -ENOMEM ? rc : 0;
	}
	if (rc < 0) {
		fprintf(stderr, "shmbus-bench: %s\n", shmbus_strerror(rc));
		status = 1;
	}
	if (o.latency || o.throughput || o.control) {
		bench_report_targets(rows.v, rows.n);
	}
	for (int i = 0; i < rows.n; i++) {
		if (rows.v[i].err != 0) {
			status = 1;
		}
	}
	if (o.csv_path != NULL) {
		rc = bench_report_csv(o.csv_path, &o, rows.v, rows.n);
		if (rc < 0) {
			fprintf(stderr, "shmbus-bench: %s: %s\n", o.csv_path,
				shmbus_strerror(rc));
			status = 1;
		}
	}
	if (o.json_path != NULL) {
		rc = bench_report_json(o.json_path, &o, clock_ns, rows.v,
				       rows.n);
		if (rc < 0) {
			fprintf(stderr, "shmbus-bench: %s: %s\n", o.json_path,
				shmbus_strerror(rc));
			status = 1;
		}
	}
	if (o.plot_path != NULL) {
		rc = plot(&o, &rows, &kept);
		if (rc < 0) {
			fprintf(stderr, "shmbus-bench: --plot %s: %s\n",
				o.plot_path, shmbus_strerror(rc));
			status = 1;
		} else {
			printf("\nlatency distribution plotted to %s\n",
			       o.plot_path);
		}
	}
	for (int i = 0; i < kept.n; i++) {
		bench_stats_fini(&kept.v[i].s);
	}
	free(kept.v);
	bench_rows_free(&rows);
	return status;
}
