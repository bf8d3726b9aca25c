/*
 * control.c - the control-plane section of shmbus-bench: how many topic
 * opens and closes, and connects and disconnects, a real broker serves per
 * second, and how long a subscriber takes to join a topic that has seen
 * 1,000 subscribers come and go. The data path never touches the broker;
 * these are the figures for everything else.
 *
 * The broker is the shmbusd built next to this program, started here on a
 * socket in a fresh temporary directory (never the user's broker), and
 * stopped with SIGTERM by its pid at the end.
 */
#include "bench/bench.h"
#include "bench/broker.h"
#include "shmbus/shmbus.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Operations per repetition of a rate figure, when --count is not given. */
#define DEFAULT_OPS 2000u
/* Subscribers that come and go on a topic before joins are timed. */
#define CHURN 1000
/* Timed joins per repetition, when --count is not given. */
#define DEFAULT_JOINS 1000u

#define CLIENT_NAME "shmbus-bench"
#define TOPIC	    "bench/control"
#define AUTO_TOPIC  "bench/control-auto"

/* The rate rows, in output order, then the join row. */
enum { PUB, SUB, AUTO_PUB, CONNECT, NRATES, JOIN = NRATES, NCASES };

static const char *const case_names[NCASES] = {
    "pub-open-close", "sub-open-close", "pub-open-close-new-topic",
    "connect-close", "join-after-churn"};

static const char *const rate_names[BENCH_CTL_NFIG_RATE] = {"ops_per_s"};
static const char *const rate_units[BENCH_CTL_NFIG_RATE] = {"op/s"};
static const char *const join_names[BENCH_CTL_NFIG_LAT] = {"p50", "p99"};
static const char *const join_units[BENCH_CTL_NFIG_LAT] = {"ns", "ns"};

/* The operations timed, one call each: an open and its close. */
static int op_pub(shmbus *bus, const char *sock, const char *topic)
{
	shmbus_pub *pub;
	int rc = shmbus_pub_open(bus, topic, &pub);

	(void)sock;
	if (rc == 0) {
		rc = shmbus_pub_close(pub);
	}
	return rc;
}

static int op_sub(shmbus *bus, const char *sock, const char *topic)
{
	shmbus_sub *sub;
	int rc = shmbus_sub_open(bus, topic, SHMBUS_START_LATEST, &sub);

	(void)sock;
	if (rc == 0) {
		rc = shmbus_sub_close(sub);
	}
	return rc;
}

static int op_connect(shmbus *bus, const char *sock, const char *topic)
{
	shmbus *b2;
	int rc = shmbus_connect(sock, CLIENT_NAME, &b2);

	(void)bus;
	(void)topic;
	if (rc == 0) {
		rc = shmbus_close(b2);
	}
	return rc;
}

typedef int (*op_fn)(shmbus *bus, const char *sock, const char *topic);

/*
 * Runs op up to `ops` times (after a tenth as warm-up), stopping early at
 * the duration cap, and returns the rate in *rate.
 */
static int time_rate(const struct bench_opts *o, op_fn op, shmbus *bus,
		     const char *sock, const char *topic, uint64_t ops,
		     double *rate, uint64_t *count)
{
	uint64_t warm = ops / 10 > 0 ? ops / 10 : 1;
	uint64_t t0, deadline, i;
	int rc;

	for (i = 0; i < warm; i++) {
		rc = op(bus, sock, topic);
		if (rc < 0) {
			return rc;
		}
	}
	t0 = bench_now_ns();
	deadline = t0 + o->duration_ms * 1000000u;
	for (i = 0; i < ops; i++) {
		rc = op(bus, sock, topic);
		if (rc < 0) {
			return rc;
		}
		if (i % 16 == 15 && bench_now_ns() >= deadline) {
			i++;
			break;
		}
	}
	*rate = (double)i / ((double)(bench_now_ns() - t0) / 1e9);
	*count = i;
	return 0;
}

/*
 * A fresh topic gets CHURN subscribers that open and close one after the
 * other; then each of `joins` subscribers is timed from the call of
 * shmbus_sub_open() to its return, and closed (untimed).
 */
static int time_joins(const struct bench_opts *o, shmbus *bus, int rep,
		      uint64_t joins, double *p50, double *p99, uint64_t *count)
{
	char topic[64];
	uint64_t *t = calloc(joins, sizeof(*t));
	uint64_t deadline;
	uint64_t n = 0;
	bool created;
	int rc;

	if (t == NULL) {
		return -ENOMEM;
	}
	snprintf(topic, sizeof(topic), "bench/control-join-%d", rep);
	rc = shmbus_topic_create(bus, topic, NULL);
	created = rc == 0;
	for (int i = 0; rc == 0 && i < CHURN; i++) {
		rc = op_sub(bus, NULL, topic);
	}
	deadline = bench_now_ns() + o->duration_ms * 1000000u;
	while (rc == 0 && n < joins) {
		shmbus_sub *sub;
		uint64_t t0 = bench_now_ns();

		rc = shmbus_sub_open(bus, topic, SHMBUS_START_LATEST, &sub);
		if (rc < 0) {
			break;
		}
		t[n++] = bench_now_ns() - t0;
		rc = shmbus_sub_close(sub);
		if (bench_now_ns() >= deadline) {
			break;
		}
	}
	if (created) {
		int drc = shmbus_topic_delete(bus, topic);

		rc = rc < 0 ? rc : drc;
	}
	if (rc == 0) {
		bench_stats_sort(t, n);
		*p50 = (double)bench_stats_percentile(t, n, 0.50);
		*p99 = (double)bench_stats_percentile(t, n, 0.99);
		*count = n;
	}
	free(t);
	return rc;
}

/* One repetition of every case; vals[case][fig]. */
static int run_rep(const struct bench_opts *o, const struct bench_broker *b,
		   int rep, double vals[NCASES][BENCH_NFIG_MAX],
		   uint64_t *counts, int *errs)
{
	uint64_t ops = o->count != 0 ? o->count : DEFAULT_OPS;
	uint64_t joins = o->count != 0 ? o->count : DEFAULT_JOINS;
	shmbus *bus = NULL;
	int rc = shmbus_connect(b->socket, CLIENT_NAME, &bus);

	if (rc < 0) {
		return rc;
	}
	/* An explicit topic stays between opens: handles alone are timed. */
	if (rep == 0) {
		rc = shmbus_topic_create(bus, TOPIC, NULL);
		if (rc < 0) {
			shmbus_close(bus);
			return rc;
		}
	}
	for (int c = 0; c < NCASES; c++) {
		if (errs[c] != 0) {
			continue;
		}
		switch (c) {
		case PUB:
			rc = time_rate(o, op_pub, bus, b->socket, TOPIC, ops,
				       &vals[c][BENCH_CTL_RATE], &counts[c]);
			break;
		case SUB:
			rc = time_rate(o, op_sub, bus, b->socket, TOPIC, ops,
				       &vals[c][BENCH_CTL_RATE], &counts[c]);
			break;
		case AUTO_PUB:
			/* No such topic: every open creates it and every
			 * close removes it (linger 0 by default). */
			rc = time_rate(o, op_pub, bus, b->socket, AUTO_TOPIC,
				       ops, &vals[c][BENCH_CTL_RATE],
				       &counts[c]);
			break;
		case CONNECT:
			rc = time_rate(o, op_connect, bus, b->socket, NULL, ops,
				       &vals[c][BENCH_CTL_RATE], &counts[c]);
			break;
		default:
			rc = time_joins(o, bus, rep, joins,
					&vals[c][BENCH_CTL_P50],
					&vals[c][BENCH_CTL_P99], &counts[c]);
			break;
		}
		if (rc < 0) {
			fprintf(stderr, "shmbus-bench: control: %s: %s\n",
				case_names[c], shmbus_strerror(rc));
			errs[c] = rc;
		}
	}
	shmbus_close(bus);
	return 0;
}

static void print_tables(const struct bench_row *rows)
{
	static const char *const rate_head[] = {"op/s"};
	static const char *const join_head[] = {"p50 us", "p99 us"};

	printf("\ncontrol plane through a real shmbusd (started for this "
	       "run; neither it nor\nthe client is pinned). One connection; "
	       "each op/s figure times an open and its\nclose (or a connect "
	       "and its close) in a loop; the topic exists unless said.\n");
	bench_report_cases("operations per second", "operation", rate_head,
			   rows, NRATES, 1, -1, NULL);
	printf("  goal (bench/README.md): >= 20,000 topic open+close per "
	       "second (pub-open-close, sub-open-close)\n");
	bench_report_cases(
	    "a subscriber joining (shmbus_sub_open) a topic after "
	    "1,000 subscribers came and went",
	    "operation", join_head, &rows[JOIN], 1, 1e3, -1, NULL);
}

int bench_control_run(const struct bench_opts *o, struct bench_rows *rows)
{
	double(*vals)[NCASES][BENCH_NFIG_MAX] =
	    calloc((size_t)o->reps, sizeof(*vals));
	uint64_t counts[NCASES];
	uint64_t min_count[NCASES];
	int errs[NCASES] = {0};
	struct bench_broker b;
	int first = rows->n;
	int rc;

	if (vals == NULL) {
		return -ENOMEM;
	}
	for (int c = 0; c < NCASES; c++) {
		struct bench_row *row = bench_rows_push(rows);

		if (row == NULL) {
			free(vals);
			return -ENOMEM;
		}
		row->section = "control";
		row->transport = case_names[c];
		row->nfig =
		    c == JOIN ? BENCH_CTL_NFIG_LAT : BENCH_CTL_NFIG_RATE;
		row->fig_names = c == JOIN ? join_names : rate_names;
		row->fig_units = c == JOIN ? join_units : rate_units;
		min_count[c] = UINT64_MAX;
	}
	rc = bench_broker_start(&b, NULL);
	if (rc < 0) {
		for (int c = 0; c < NCASES; c++) {
			rows->v[first + c].err = rc;
		}
		free(vals);
		print_tables(&rows->v[first]);
		return rc;
	}
	if (isatty(STDERR_FILENO)) {
		fprintf(stderr, "control: ");
	}
	for (int rep = 0; rep < o->reps; rep++) {
		memset(counts, 0, sizeof(counts));
		rc = run_rep(o, &b, rep, vals[rep], counts, errs);
		if (rc < 0) {
			fprintf(stderr, "shmbus-bench: control: connect: %s\n",
				shmbus_strerror(rc));
			for (int c = 0; c < NCASES; c++) {
				errs[c] = errs[c] != 0 ? errs[c] : rc;
			}
			break;
		}
		for (int c = 0; c < NCASES; c++) {
			if (counts[c] < min_count[c]) {
				min_count[c] = counts[c];
			}
		}
		if (isatty(STDERR_FILENO)) {
			fprintf(stderr, ".");
		}
	}
	if (isatty(STDERR_FILENO)) {
		fprintf(stderr, "\n");
	}
	bench_broker_stop(&b);
	for (int c = 0; c < NCASES; c++) {
		struct bench_row *row = &rows->v[first + c];

		row->err = errs[c];
		if (row->err != 0) {
			continue;
		}
		for (int f = 0; f < row->nfig; f++) {
			double *v = calloc((size_t)o->reps, sizeof(*v));

			if (v == NULL) {
				free(vals);
				return -ENOMEM;
			}
			for (int rep = 0; rep < o->reps; rep++) {
				v[rep] = vals[rep][c][f];
			}
			bench_stats_aggregate(v, o->reps, &row->fig[f]);
			free(v);
		}
		row->count = min_count[c];
	}
	free(vals);
	print_tables(&rows->v[first]);
	return 0;
}
