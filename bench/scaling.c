/*
 * scaling.c - the scaling section of shmbus-bench: many processes on one
 * shmbus ring. 1, 2, 4 producers into one broadcast topic read by one
 * subscriber; one producer and 1, 2, 4, 8 subscribers of one broadcast
 * topic; one producer and 1, 2, 4 consumers of a queue topic. It answers
 * "what does adding a writer or a reader cost the others", which the
 * two-process sections cannot.
 *
 * As in tr_shmbus.c, the ring lives in anonymous shared memory formatted
 * with sb_ring_format() before fork(): the code measured is the library's
 * publish and receive, with no broker involved. Readers wait the way the
 * public API waits (sb_ring_receive with no timeout: a short spin, then the
 * futex), so that more processes than CPUs take turns instead of spinning
 * each other out of their time slices.
 */
#include "bench/bench.h"
#include "shmbus/map.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ring/ring.h"

/* The sequence number of the message that ends a producer's stream. */
#define SEQ_STOP UINT64_MAX

/* How long past its duration cap a repetition may run before it is killed. */
#define WATCHDOG_SLACK_MS 20000

/* Messages timed per repetition, in all, when --count is not given. */
#define DEFAULT_TOTAL 500000u

enum kind { PRODUCERS, SUBSCRIBERS, QUEUE };

/* One measured case: a kind and how many of the varying processes. */
struct scase {
	enum kind kind;
	int n;
	const char *name; /* the row's name in every output */
};

static const struct scase cases[] = {
    {PRODUCERS, 1, "producers-1"},     {PRODUCERS, 2, "producers-2"},
    {PRODUCERS, 4, "producers-4"},     {SUBSCRIBERS, 1, "subscribers-1"},
    {SUBSCRIBERS, 2, "subscribers-2"}, {SUBSCRIBERS, 4, "subscribers-4"},
    {SUBSCRIBERS, 8, "subscribers-8"}, {QUEUE, 1, "queue-consumers-1"},
    {QUEUE, 2, "queue-consumers-2"},   {QUEUE, 4, "queue-consumers-4"},
};
#define NCASES ((int)(sizeof(cases) / sizeof(cases[0])))

static const char *const fig_names[BENCH_SCALE_NFIG] = {"msgs_per_s_total",
							"msgs_per_s_each"};
static const char *const fig_units[BENCH_SCALE_NFIG] = {"msg/s", "msg/s"};

/*
 * What one child hands back. Written by that child only, read by the
 * parent after it reaped the child (waitpid orders the accesses), so plain
 * fields. One cache line each, so that children writing their own results
 * never share a line.
 */
struct proc_result {
	int32_t err;
	uint32_t pad;
	uint64_t sent;	   /* producer: data messages published */
	uint64_t received; /* reader: data messages received */
	uint64_t timed;	   /* reader: those after its warm-up */
	uint64_t t_first;  /* reader: when its warm-up ended (ns) */
	uint64_t t_last;   /* reader: when its last stop message came */
	uint64_t pad2[2];
};

_Static_assert(sizeof(struct proc_result) == 64, "one line per child");

struct area {
	_Atomic uint32_t ready; /* start barrier */
	uint32_t pad[15];
	struct proc_result r[BENCH_MAX_PROCS];
};

/* One repetition of one case: what every child needs, copied by fork(). */
struct run {
	const struct bench_opts *o;
	enum kind kind;
	int nprod;
	int nread;
	size_t size;
	uint64_t per_producer;	/* messages each producer publishes, at most */
	uint64_t reader_warmup; /* messages a reader gets before timing */
	int cpus[BENCH_MAX_PROCS];
	int ncpus; /* 0: not pinned */
	void *data;
	void *ctl;
	uint64_t data_size;
	uint64_t ctl_size;
	struct area *area;
};

/* A message: its sequence number, then the producer's index. */
static void put_msg(unsigned char *msg, uint64_t seq, uint32_t producer)
{
	memcpy(msg, &seq, sizeof(seq));
	memcpy(msg + sizeof(seq), &producer, sizeof(producer));
}

static void get_msg(const unsigned char *msg, uint64_t *seq, uint32_t *producer)
{
	memcpy(seq, msg, sizeof(*seq));
	memcpy(producer, msg + sizeof(*seq), sizeof(*producer));
}

static int producer_main(struct run *r, int idx, struct sb_ring *ring)
{
	struct proc_result *res = &r->area->r[idx];
	unsigned char *msg = calloc(1, r->size);
	uint64_t deadline = bench_now_ns() + r->o->duration_ms * 1000000u;
	/* A queue's stop message goes to one consumer: send one each. */
	int nstops = r->kind == QUEUE ? r->nread : 1;
	uint64_t i;
	int rc = 0;

	if (msg == NULL) {
		return -ENOMEM;
	}
	for (i = 0; i < r->per_producer; i++) {
		if (i % 256 == 0 && i > 0 && bench_now_ns() >= deadline) {
			break;
		}
		put_msg(msg, i, (uint32_t)idx);
		rc = sb_ring_publish(ring, msg, (uint32_t)r->size, -1);
		if (rc < 0) {
			goto out;
		}
	}
	res->sent = i;
	put_msg(msg, SEQ_STOP, (uint32_t)idx);
	for (int s = 0; s < nstops && rc == 0; s++) {
		rc = sb_ring_publish(ring, msg, (uint32_t)r->size, -1);
	}
out:
	free(msg);
	return rc;
}

/*
 * A subscriber checks that every producer's messages come in order with
 * none missing; a queue consumer, that each producer's numbers only go up
 * (the others took the gaps; the parent checks that the counts add up).
 */
static int reader_main(struct run *r, int idx, struct sb_ring_reader *rd)
{
	struct proc_result *res = &r->area->r[idx];
	unsigned char *buf = malloc(r->size);
	uint64_t next[BENCH_MAX_PROCS] = {0};
	int stops_needed = r->kind == QUEUE ? 1 : r->nprod;
	int stops = 0;
	int rc = 0;

	if (buf == NULL) {
		return -ENOMEM;
	}
	while (stops < stops_needed) {
		ssize_t n = sb_ring_receive(rd, buf, r->size, -1);
		uint32_t p;
		uint64_t seq;

		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		if ((size_t)n != r->size) {
			rc = -EPROTO;
			goto out;
		}
		get_msg(buf, &seq, &p);
		if (p >= (uint32_t)r->nprod) {
			rc = -EPROTO;
			goto out;
		}
		if (seq == SEQ_STOP) {
			stops++;
			continue;
		}
		if (r->kind == QUEUE ? seq < next[p] : seq != next[p]) {
			fprintf(stderr,
				"shmbus-bench: scaling: reader %d got message "
				"%llu of producer %u, expected %s%llu\n",
				idx - r->nprod, (unsigned long long)seq, p,
				r->kind == QUEUE ? "at least " : "",
				(unsigned long long)next[p]);
			rc = -EPROTO;
			goto out;
		}
		next[p] = seq + 1;
		if (res->received == r->reader_warmup) {
			res->t_first = bench_now_ns();
		}
		res->received++;
	}
	res->t_last = bench_now_ns();
	res->timed = res->received > r->reader_warmup
			 ? res->received - r->reader_warmup
			 : 0;
out:
	free(buf);
	return rc;
}

/* Child idx: producers are 0..nprod-1, readers after them. */
static int child_main(int idx, void *arg)
{
	struct run *r = arg;
	struct sb_ring ring;
	struct sb_ring_reader rd;
	bool reader = idx >= r->nprod;
	int rc;

	rc = bench_pin(r->ncpus > 0 ? r->cpus[idx % r->ncpus] : -1);
	if (rc == 0) {
		rc = sb_ring_attach(&ring, r->data, r->data_size, r->ctl,
				    r->ctl_size);
	}
	if (rc == 0 && reader) {
		rc = sb_ring_reader_open(&ring, SB_RING_START_LATEST, &rd);
	}
	if (rc < 0) {
		fprintf(stderr, "shmbus-bench: scaling: child %d: %s\n", idx,
			shmbus_strerror(rc));
		r->area->r[idx].err = rc;
		return rc;
	}
	/* Every reader has its slot before the first message is sent. */
	bench_barrier(&r->area->ready, (uint32_t)(r->nprod + r->nread));
	if (reader) {
		rc = reader_main(r, idx, &rd);
		sb_ring_reader_close(&rd);
	} else {
		rc = producer_main(r, idx, &ring);
	}
	if (rc < 0 && rc != -EPROTO) {
		fprintf(stderr, "shmbus-bench: scaling: %s %d: %s\n",
			reader ? "reader" : "producer",
			reader ? idx - r->nprod : idx, shmbus_strerror(rc));
	}
	r->area->r[idx].err = rc;
	return rc;
}

/* A tenth of the messages, at least 100, at most 10,000, is warm-up. */
static uint64_t warmup_for(uint64_t count)
{
	uint64_t w = count / 10;

	return w < 100 ? 100 : (w > 10000 ? 10000 : w);
}

/*
 * The CPUs children are pinned to, round robin: the two of --pin, or every
 * CPU this process may use (so that a bigger machine spreads the readers).
 */
static int cpu_list(const struct bench_opts *o, int *cpus)
{
	cpu_set_t set;
	int n = 0;

	if (!o->pin) {
		return 0;
	}
	if (o->pin_given || sched_getaffinity(0, sizeof(set), &set) < 0) {
		cpus[n++] = o->cpu[0];
		if (o->cpu[1] != o->cpu[0]) {
			cpus[n++] = o->cpu[1];
		}
		return n;
	}
	for (int cpu = 0; cpu < CPU_SETSIZE && n < BENCH_MAX_PROCS; cpu++) {
		if (CPU_ISSET(cpu, &set)) {
			cpus[n++] = cpu;
		}
	}
	return n;
}

/*
 * One repetition of case c: a fresh ring, fresh processes. Fills
 * vals[BENCH_SCALE_*] and *count (messages timed). Returns 0 or an error.
 */
static int run_once(const struct bench_opts *o, const struct scase *c,
		    double *vals, uint64_t *count)
{
	struct run r = {
	    .o = o,
	    .kind = c->kind,
	    .nprod = c->kind == PRODUCERS ? c->n : 1,
	    .nread = c->kind == PRODUCERS ? 1 : c->n,
	    .size = o->scaling_size,
	};
	uint64_t total = o->count != 0 ? o->count : DEFAULT_TOTAL;
	uint64_t warmup = warmup_for(total);
	struct sb_ring_config cfg = {
	    .capacity = o->ring_bytes,
	    .max_message = (uint32_t)o->scaling_size,
	    .mode = c->kind == QUEUE ? SB_RING_QUEUE : SB_RING_BROADCAST,
	    .overflow = SB_RING_BLOCK,
	};
	uint64_t timeout_ms = 2 * o->duration_ms + WATCHDOG_SLACK_MS;
	uint64_t sent = 0, got = 0, timed = 0;
	uint64_t first = UINT64_MAX, last = 0;
	double sum_rates = 0;
	int rc;

	cfg.slot_count = (uint32_t)r.nread + 1;
	/* Every producer's share of the timed messages and of the warm-up. */
	r.per_producer =
	    (total + warmup + (uint64_t)r.nprod - 1) / (uint64_t)r.nprod;
	r.reader_warmup =
	    c->kind == QUEUE ? warmup / (uint64_t)r.nread : warmup;
	r.ncpus = cpu_list(o, r.cpus);
	rc = sb_ring_layout(&cfg, &r.data_size, &r.ctl_size);
	if (rc < 0) {
		return rc;
	}
	r.data = mmap(NULL, r.data_size, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	r.ctl = mmap(NULL, r.ctl_size, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	r.area = mmap(NULL, sizeof(*r.area), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r.data == MAP_FAILED || r.ctl == MAP_FAILED ||
	    r.area == MAP_FAILED) {
		rc = -ENOMEM;
		goto out;
	}
	/* Touch the data area now so no page fault lands in a timing. */
	memset(r.data, 0, r.data_size);
	rc = sb_ring_format(r.data, r.data_size, r.ctl, r.ctl_size, &cfg);
	if (rc == 0) {
		rc = bench_spawn(r.nprod + r.nread, child_main, &r, timeout_ms);
	}
	for (int i = 0; i < r.nprod + r.nread; i++) {
		/* A child's own error says more than "a child failed". */
		if (r.area->r[i].err < 0 && rc != -ETIMEDOUT) {
			rc = r.area->r[i].err;
			break;
		}
	}
	if (rc < 0) {
		goto out;
	}
	for (int i = 0; i < r.nprod; i++) {
		sent += r.area->r[i].sent;
	}
	for (int i = r.nprod; i < r.nprod + r.nread; i++) {
		const struct proc_result *p = &r.area->r[i];

		got += p->received;
		if (r.kind != QUEUE && p->received != sent) {
			rc = -EPROTO; /* a subscriber must see every message */
		}
		if (p->timed == 0 || p->t_last <= p->t_first) {
			continue;
		}
		timed += p->timed;
		sum_rates +=
		    (double)p->timed / ((double)(p->t_last - p->t_first) / 1e9);
		first = p->t_first < first ? p->t_first : first;
		last = p->t_last > last ? p->t_last : last;
	}
	if (r.kind == QUEUE && got != sent) {
		fprintf(stderr,
			"shmbus-bench: scaling: queue consumers got %llu "
			"messages, producers sent %llu\n",
			(unsigned long long)got, (unsigned long long)sent);
		rc = -EPROTO;
	}
	if (rc == 0 && (timed == 0 || last <= first)) {
		rc = -EPROTO; /* nothing after the warm-up: nothing to time */
	}
	if (rc < 0) {
		goto out;
	}
	if (r.kind == SUBSCRIBERS) {
		/* Each subscriber's own rate; the total is deliveries/s. */
		vals[BENCH_SCALE_TOTAL] = sum_rates;
		vals[BENCH_SCALE_EACH] = sum_rates / r.nread;
	} else {
		/* Messages through the topic over the readers' whole span
		 * (CLOCK_MONOTONIC is one clock for every process). */
		double rate = (double)timed / ((double)(last - first) / 1e9);

		vals[BENCH_SCALE_TOTAL] = rate;
		vals[BENCH_SCALE_EACH] = rate / c->n;
	}
	*count = timed;
out:
	if (r.data != MAP_FAILED && r.data != NULL) {
		munmap(r.data, r.data_size);
	}
	if (r.ctl != MAP_FAILED && r.ctl != NULL) {
		munmap(r.ctl, r.ctl_size);
	}
	if (r.area != MAP_FAILED && r.area != NULL) {
		munmap(r.area, sizeof(*r.area));
	}
	return rc;
}

static void print_tables(const struct bench_opts *o,
			 const struct bench_row *rows)
{
	static const char *const prod_head[] = {"total M msg/s",
						"per producer"};
	static const char *const sub_head[] = {"total M msg/s",
					       "per subscriber"};
	static const char *const queue_head[] = {"total M msg/s",
						 "per consumer"};
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	char title[160];
	int i = 0;

	printf("\nscaling, %zu B, one shmbus ring (no broker); readers wait "
	       "as the API does:\nspin briefly, then sleep on the futex. "
	       "Each figure: median over repetitions.\n",
	       o->scaling_size);
	if (ncpu < 9) {
		printf("This machine has %ld CPUs: rows with more than %ld "
		       "processes measure contention\n(processes taking "
		       "turns on the CPUs), not parallel speed-up.\n",
		       ncpu, ncpu);
	}
	for (int k = 0; k < 3; k++) {
		int first = i;
		const char *const *head;

		while (i < NCASES && (int)cases[i].kind == k) {
			i++;
		}
		if (k == PRODUCERS) {
			snprintf(title, sizeof(title),
				 "producers into one broadcast topic, 1 "
				 "subscriber (processes = producers + 1)");
			head = prod_head;
		} else if (k == SUBSCRIBERS) {
			snprintf(title, sizeof(title),
				 "subscribers of one broadcast topic, 1 "
				 "producer (processes = subscribers + 1);\n"
				 "total = deliveries/s, the sum of every "
				 "subscriber's rate");
			head = sub_head;
		} else {
			snprintf(title, sizeof(title),
				 "consumers of one queue topic, 1 producer "
				 "(processes = consumers + 1);\neach message "
				 "goes to one consumer");
			head = queue_head;
		}
		bench_report_cases(title,
				   k == PRODUCERS     ? "producers"
				   : k == SUBSCRIBERS ? "subscribers"
						      : "consumers",
				   head, &rows[first], i - first, 1e6,
				   k == SUBSCRIBERS ? BENCH_SCALE_EACH
						    : BENCH_SCALE_TOTAL,
				   k == SUBSCRIBERS ? "each x 1" : "total x 1");
	}
}

int bench_scaling_run(const struct bench_opts *o, struct bench_rows *rows)
{
	double *vals = calloc((size_t)(NCASES * BENCH_SCALE_NFIG * o->reps),
			      sizeof(double));
	uint64_t min_count[NCASES];
	int first = rows->n;

	if (vals == NULL) {
		return -ENOMEM;
	}
	for (int c = 0; c < NCASES; c++) {
		struct bench_row *row = bench_rows_push(rows);

		if (row == NULL) {
			free(vals);
			return -ENOMEM;
		}
		row->section = "scaling";
		row->transport = cases[c].name;
		row->size = o->scaling_size;
		row->nfig = BENCH_SCALE_NFIG;
		row->fig_names = fig_names;
		row->fig_units = fig_units;
		row->procs = cases[c].n;
		min_count[c] = UINT64_MAX;
	}
	if (isatty(STDERR_FILENO)) {
		fprintf(stderr, "scaling %zu B: ", o->scaling_size);
	}
	/* Repetitions outer, as in main.c: drift shows in every spread. */
	for (int rep = 0; rep < o->reps; rep++) {
		for (int c = 0; c < NCASES; c++) {
			struct bench_row *row = &rows->v[first + c];
			double v[BENCH_SCALE_NFIG];
			uint64_t count = 0;
			int err;

			if (row->err != 0) {
				continue;
			}
			err = run_once(o, &cases[c], v, &count);
			if (err < 0) {
				row->err = err;
				continue;
			}
			for (int f = 0; f < BENCH_SCALE_NFIG; f++) {
				vals[(c * BENCH_SCALE_NFIG + f) * o->reps +
				     rep] = v[f];
			}
			if (count < min_count[c]) {
				min_count[c] = count;
			}
		}
		if (isatty(STDERR_FILENO)) {
			fprintf(stderr, ".");
		}
	}
	if (isatty(STDERR_FILENO)) {
		fprintf(stderr, "\n");
	}
	for (int c = 0; c < NCASES; c++) {
		struct bench_row *row = &rows->v[first + c];

		if (row->err != 0) {
			continue;
		}
		for (int f = 0; f < BENCH_SCALE_NFIG; f++) {
			bench_stats_aggregate(
			    &vals[(c * BENCH_SCALE_NFIG + f) * o->reps],
			    o->reps, &row->fig[f]);
		}
		row->count = min_count[c];
	}
	free(vals);
	print_tables(o, &rows->v[first]);
	return 0;
}
