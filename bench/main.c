/*
 * main.c - shmbus-bench: measures one-way latency (ping-pong) and one-way
 * throughput of every registered transport against the baselines, in one
 * run on one machine, and prints each figure as the median of several
 * repetitions with their spread and its ratio to a reference measured in
 * the same run. See bench/README.md for what each figure means.
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
		"transport below and each message size.\n"
		"\n"
		"  --reps N          repetitions per figure (default 5, at "
		"least 5); each\n"
		"                    figure is their median, [min..max] "
		"shown below it\n"
		"  --count N         round trips (latency) or messages "
		"(throughput) timed per\n"
		"                    repetition (default: 10000 round "
		"trips; 256 MiB of\n"
		"                    messages, 1000..1000000)\n"
		"  --duration-ms N   stop a repetition's timing after N ms "
		"even if --count\n"
		"                    is not reached (default 1000)\n"
		"  --sizes LIST      message sizes in bytes, K and M "
		"suffixes allowed\n"
		"                    (default 64,1024,65536; each %d.."
		"%u)\n"
		"  --only SECTION    latency or throughput (default both)\n"
		"  --transports LIST transports to measure (default all); "
		"the references\n"
		"                    (%s for latency; %s and %s for "
		"throughput)\n"
		"                    are always measured\n"
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
		"  --help            this text\n"
		"\n"
		"transports:\n",
		SB_MIN_SIZE, SB_MAX_SIZE, SB_REF_LATENCY, SB_REF_THROUGHPUT,
		SB_REF_MEMCPY);
	for (size_t i = 0; i < sb_tr_table_len; i++) {
		const struct sb_tr_ops *t = sb_tr_table[i];

		fprintf(out, "  %-16s  %s%s\n", t->name, t->summary,
			(t->flags & SB_TR_THROUGHPUT) ? "" : " [latency only]");
	}
	fprintf(out, "  %-16s  %s\n", SB_REF_MEMCPY,
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

static int parse_sizes(char *list, struct sb_opts *o)
{
	o->nsizes = 0;
	for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		uint64_t v;

		if (parse_u64(tok, &v) < 0 || v < SB_MIN_SIZE ||
		    v > SB_MAX_SIZE) {
			fprintf(stderr,
				"shmbus-bench: --sizes: \"%s\" is not a size "
				"from %d to %u\n",
				tok, SB_MIN_SIZE, SB_MAX_SIZE);
			return -EINVAL;
		}
		if (o->nsizes == SB_MAX_SIZES) {
			fprintf(stderr, "shmbus-bench: --sizes: at most %d\n",
				SB_MAX_SIZES);
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
static int parse_transports(char *list, struct sb_opts *o)
{
	bool want[SB_MAX_TRANSPORTS] = {false};

	for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		bool found = strcmp(tok, SB_REF_MEMCPY) == 0;

		for (size_t i = 0; i < sb_tr_table_len; i++) {
			if (strcmp(sb_tr_table[i]->name, tok) == 0) {
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
	for (size_t i = 0; i < sb_tr_table_len; i++) {
		const char *name = sb_tr_table[i]->name;

		if (want[i] || strcmp(name, SB_REF_LATENCY) == 0 ||
		    strcmp(name, SB_REF_THROUGHPUT) == 0) {
			o->requested[o->ntr] = want[i];
			o->tr[o->ntr++] = sb_tr_table[i];
		}
	}
	return 0;
}

static int parse_pin(const char *s, struct sb_opts *o)
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
static void default_pin(struct sb_opts *o)
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

enum {
	OPT_REPS = 256,
	OPT_COUNT,
	OPT_DURATION,
	OPT_SIZES,
	OPT_ONLY,
	OPT_TRANSPORTS,
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
    {"only", required_argument, NULL, OPT_ONLY},
    {"transports", required_argument, NULL, OPT_TRANSPORTS},
    {"pin", required_argument, NULL, OPT_PIN},
    {"no-pin", no_argument, NULL, OPT_NO_PIN},
    {"ring-bytes", required_argument, NULL, OPT_RING},
    {"csv", required_argument, NULL, OPT_CSV},
    {"json", required_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* Fills *o from argv. Returns 0, 1 for --help, or -EINVAL. */
static int parse_args(int argc, char **argv, struct sb_opts *o)
{
	char default_sizes[] = "64,1024,65536";
	bool pin_given = false;
	bool sizes_given = false;
	int opt;

	memset(o, 0, sizeof(*o));
	o->reps = SB_MIN_REPS;
	o->duration_ms = 1000;
	o->ring_bytes = 1u << 20;
	o->latency = o->throughput = true;
	/* Default: every transport. */
	o->ntr = 0;
	for (size_t i = 0; i < sb_tr_table_len && i < SB_MAX_TRANSPORTS; i++) {
		o->requested[o->ntr] = true;
		o->tr[o->ntr++] = sb_tr_table[i];
	}
	while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		uint64_t v = 0;

		switch (opt) {
		case OPT_REPS:
			if (parse_u64(optarg, &v) < 0 || v < SB_MIN_REPS ||
			    v > 1000) {
				fprintf(stderr,
					"shmbus-bench: --reps: %d to "
					"1000\n",
					SB_MIN_REPS);
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
		case OPT_ONLY:
			o->latency = strcmp(optarg, "latency") == 0;
			o->throughput = strcmp(optarg, "throughput") == 0;
			if (!o->latency && !o->throughput) {
				fprintf(stderr, "shmbus-bench: --only: latency "
						"or throughput\n");
				return -EINVAL;
			}
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
	if (!pin_given) {
		default_pin(o);
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

/* Every row measured, for --csv and --json. */
struct row_list {
	struct sb_row *v;
	int n;
	int cap;
};

static struct sb_row *rows_push(struct row_list *l)
{
	if (l->n == l->cap) {
		int cap = l->cap != 0 ? l->cap * 2 : 64;
		struct sb_row *v = realloc(l->v, (size_t)cap * sizeof(*v));

		if (v == NULL) {
			return NULL;
		}
		l->v = v;
		l->cap = cap;
	}
	memset(&l->v[l->n], 0, sizeof(l->v[0]));
	return &l->v[l->n++];
}

/* A run slot of one section at one size: its row and its raw values. */
struct slot {
	const struct sb_tr_ops *t; /* NULL: the memcpy reference */
	struct sb_row *row;
	double *vals; /* [fig][rep] */
	uint64_t min_count;
};

/*
 * Measures one section at one size. The repetitions are the outer loop,
 * so that every transport is measured across the whole span of the run
 * and a slow drift of the machine (another tenant, frequency) shows up in
 * every row's spread rather than biasing one row.
 */
static int run_size(const struct sb_opts *o, bool lat, size_t size,
		    struct row_list *all)
{
	const char *section = lat ? "latency" : "throughput";
	unsigned need = lat ? SB_TR_LATENCY : SB_TR_THROUGHPUT;
	int nfig = lat ? SB_LAT_NFIG : SB_TPUT_NFIG;
	struct slot slots[SB_MAX_TRANSPORTS + 1];
	int first = all->n;
	int n = 0;
	int rc = 0;

	const char *ref = lat ? SB_REF_LATENCY : SB_REF_THROUGHPUT;

	for (int i = 0; i < o->ntr; i++) {
		bool wanted =
		    o->requested[i] || strcmp(o->tr[i]->name, ref) == 0;

		if ((o->tr[i]->flags & need) && wanted) {
			slots[n++].t = o->tr[i];
		}
	}
	if (!lat) {
		slots[n++].t = NULL;
	}
	for (int s = 0; s < n; s++) {
		struct sb_row *row = rows_push(all);

		slots[s].vals =
		    calloc((size_t)(nfig * o->reps), sizeof(double));
		if (row == NULL || slots[s].vals == NULL) {
			for (int k = 0; k <= s; k++) {
				free(slots[k].vals);
			}
			return -ENOMEM;
		}
		row->section = section;
		row->transport =
		    slots[s].t != NULL ? slots[s].t->name : SB_REF_MEMCPY;
		row->size = size;
		row->nfig = nfig;
		slots[s].min_count = UINT64_MAX;
	}
	/* rows_push may have moved the array: take row pointers now. */
	for (int s = 0; s < n; s++) {
		slots[s].row = &all->v[first + s];
	}
	if (isatty(STDERR_FILENO)) {
		fprintf(stderr, "%s %zu B: ", section, size);
	}
	for (int rep = 0; rep < o->reps; rep++) {
		for (int s = 0; s < n; s++) {
			struct slot *sl = &slots[s];
			double vals[SB_NFIG_MAX];
			uint64_t count = 0;
			int err;

			if (sl->row->err != 0) {
				continue;
			}
			if (sl->t == NULL) {
				err =
				    sb_bench_memcpy_once(o, size, vals, &count);
			} else if (lat) {
				err = sb_bench_latency_once(o, sl->t, size,
							    vals, &count);
			} else {
				err = sb_bench_throughput_once(o, sl->t, size,
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
				sb_stats_aggregate(&sl->vals[f * o->reps],
						   o->reps, &sl->row->fig[f]);
			}
			sl->row->count = sl->min_count;
		}
		free(sl->vals);
	}
	sb_report_table(section, size, &all->v[first], n);
	return rc;
}

int main(int argc, char **argv)
{
	struct row_list rows = {NULL, 0, 0};
	struct sb_opts o;
	double clock_ns;
	int status = 0;
	int rc;

	if (sb_tr_table_len > SB_MAX_TRANSPORTS) {
		fprintf(stderr,
			"shmbus-bench: more than %d transports: raise "
			"SB_MAX_TRANSPORTS\n",
			SB_MAX_TRANSPORTS);
		return 2;
	}
	rc = parse_args(argc, argv, &o);
	if (rc != 0) {
		return rc > 0 ? 0 : 2;
	}
	clock_ns = sb_bench_clock_cost();
	sb_report_header(&o, clock_ns);
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
	for (int sec = 0; sec < 2; sec++) {
		bool lat = sec == 0;

		if (lat ? !o.latency : !o.throughput) {
			continue;
		}
		for (int i = 0; i < o.nsizes && rc == 0; i++) {
			rc = run_size(&o, lat, o.sizes[i], &rows);
		}
	}
	if (rc < 0) {
		fprintf(stderr, "shmbus-bench: %s\n", shmbus_strerror(rc));
		status = 1;
	}
	for (int i = 0; i < rows.n; i++) {
		if (rows.v[i].err != 0) {
			status = 1;
		}
	}
	if (o.csv_path != NULL) {
		rc = sb_report_csv(o.csv_path, &o, rows.v, rows.n);
		if (rc < 0) {
			fprintf(stderr, "shmbus-bench: %s: %s\n", o.csv_path,
				shmbus_strerror(rc));
			status = 1;
		}
	}
	if (o.json_path != NULL) {
		rc = sb_report_json(o.json_path, &o, clock_ns, rows.v, rows.n);
		if (rc < 0) {
			fprintf(stderr, "shmbus-bench: %s: %s\n", o.json_path,
				shmbus_strerror(rc));
			status = 1;
		}
	}
	free(rows.v);
	return status;
}
