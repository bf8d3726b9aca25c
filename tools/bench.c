/*
 * bench.c - `shmbus bench`: a benchmark of the bus itself, through a live
 * topic on the running broker. It creates the topic when it is missing
 * (block policy, so that nothing may be lost) and removes it afterwards,
 * runs publisher and subscriber threads (bench_run.c), shows progress on
 * a terminal and prints rates, latency percentiles and any loss, as text
 * or JSON. The transport benchmark that compares shmbus with pipes and
 * sockets is the separate program shmbus-bench (`make bench`).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/request.h"
#include "wire/message.h"
#include "wire/size.h"
#include "tools/bench.h"
#include "tools/cli.h"

#define DEFAULT_COUNT 100000
#define DEFAULT_SIZE  128

/* The step of the main thread's waits, and how often the progress line is
 * rewritten. */
#define STEP_MS	    10
#define PROGRESS_MS 250

const char sb_cli_bench_usage[] =
    "usage: shmbus bench [options] TOPIC\n"
    "\n"
    "Measures the bus: publisher threads send numbered, time-stamped "
    "messages to\n"
    "TOPIC through the running broker and subscriber threads receive them "
    "all.\n"
    "Prints messages/s and MB/s of each side (in all and per thread), the "
    "latency\n"
    "from publishing to receipt (p50, p90, p99, p99.9, max; messages of 16 "
    "bytes\n"
    "or more; it includes the time a message waits in a full ring), and "
    "any\n"
    "message lost or out of order. A missing TOPIC is created with the "
    "block\n"
    "policy, so that nothing may be lost, and removed afterwards.\n"
    "\n"
    "  --count N       messages per publisher (default 100000)\n"
    "  --duration T    publish for T instead: 5s, 500ms, 2m, or seconds\n"
    "  --size SIZE     bytes per message, 8 or more (default 128); 64K "
    "and 1M\n"
    "                  mean 64KiB and 1MiB\n"
    "  --pub P         publisher threads, 1 to 64 (default 1)\n"
    "  --sub S         subscriber threads, 0 to 64 (default 1)\n"
    "  --capacity SIZE ring bytes of a topic it creates (default: the "
    "broker's)\n"
    "  --json          print the summary as one JSON object\n"
    "  --socket PATH   the broker's socket\n"
    "  --help          this text\n"
    "\n"
    "A progress line is shown while stderr is a terminal. SIGINT or "
    "SIGTERM stops\n"
    "publishing early; the summary still follows. Exit status 1 when a "
    "subscriber\n"
    "lost a message or got one out of order, 2 when SIZE is over the "
    "topic's\n"
    "max_message; see shmbus --help for the others.\n"
    "\n"
    "To compare shmbus with pipes, Unix sockets and memcpy on this machine "
    "(no\n"
    "broker needed), build and run the transport benchmark: 'make bench', "
    "then\n"
    "shmbus-bench --help.\n";

struct options {
	const char *topic;
	uint64_t count;
	double duration_s; /* 0: --count */
	uint64_t size;
	uint64_t pubs, subs;
	uint64_t capacity; /* 0: the broker's default */
	int json;
};

/* ---- options ----------------------------------------------------------- */

/* A duration as every option takes one (sb_cli_parse_duration), and more
 * than nothing. */
static int parse_duration(const char *text, double *seconds)
{
	int status =
	    sb_cli_parse_duration("bench", "--duration", text, seconds);

	if (status == 0 && *seconds <= 0) {
		status = sb_cli_fail(SB_EXIT_USAGE, "bench",
				     "--duration must be more than 0 (got "
				     "\"%s\")",
				     text);
	}
	return status;
}

/* A size as for every command, plus K and M for KiB and MiB. */
static int parse_size(const char *option, const char *text, uint64_t *out)
{
	size_t len = strlen(text);
	char spelled[64];

	if (len > 1 && len < sizeof(spelled) - 3 &&
	    (text[len - 1] == 'K' || text[len - 1] == 'M') &&
	    text[len - 2] >= '0' && text[len - 2] <= '9') {
		snprintf(spelled, sizeof(spelled), "%siB", text);
		text = spelled;
	}
	return sb_cli_parse_size("bench", option, text, out);
}

/* One option of the command's own. Returns 0 or the exit status. */
static int take_option(int c, struct options *o)
{
	switch (c) {
	case 'c':
		return sb_cli_parse_u64("bench", "--count", optarg, 1,
					UINT64_C(1) << 40, &o->count);
	case 'd':
		return parse_duration(optarg, &o->duration_s);
	case 's':
		return parse_size("--size", optarg, &o->size);
	case 'p':
		return sb_cli_parse_u64("bench", "--pub", optarg, 1,
					SB_BENCH_THREADS_MAX, &o->pubs);
	case 'S':
		return sb_cli_parse_u64("bench", "--sub", optarg, 0,
					SB_BENCH_THREADS_MAX, &o->subs);
	case 'C':
		return parse_size("--capacity", optarg, &o->capacity);
	case 'j':
		o->json = 1;
		return 0;
	default:
		return 0;
	}
}

/* Parses argv into `o`. Returns -1 to go on, else the exit status. */
static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option options[] = {
	    {"count", required_argument, NULL, 'c'},
	    {"duration", required_argument, NULL, 'd'},
	    {"size", required_argument, NULL, 's'},
	    {"pub", required_argument, NULL, 'p'},
	    {"sub", required_argument, NULL, 'S'},
	    {"capacity", required_argument, NULL, 'C'},
	    {"json", no_argument, NULL, 'j'},
	    SB_CLI_COMMON_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	int done = -1, c, given_count = 0;

	opterr = 0;
	while (done < 0 &&
	       (c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		if (sb_cli_common_option("bench", c, argv, sb_cli_bench_usage,
					 &done)) {
			continue;
		}
		given_count |= c == 'c';
		done = take_option(c, o);
		done = done == 0 ? -1 : done;
	}
	if (done >= 0) {
		return done;
	}
	if (given_count && o->duration_s > 0) {
		return sb_cli_fail(SB_EXIT_USAGE, "bench",
				   "give --count or --duration, not both");
	}
	if (o->size < SB_BENCH_MIN_SIZE || o->size > (uint64_t)SB_MSG_INT_MAX) {
		return sb_cli_fail(SB_EXIT_USAGE, "bench",
				   "--size must be at least %d bytes (the "
				   "publisher and sequence number)",
				   SB_BENCH_MIN_SIZE);
	}
	if (o->capacity > (uint64_t)SB_MSG_INT_MAX) {
		return sb_cli_fail(SB_EXIT_USAGE, "bench",
				   "--capacity is too large");
	}
	if (o->duration_s > 0) {
		o->count = 0;
	}
	done = sb_cli_one_topic("bench", argc, argv, &o->topic);
	return done == 0 ? -1 : done;
}

/* ---- the topic --------------------------------------------------------- */

/* Asks the broker to create the topic. Returns 0 (created, `rep` holding
 * the reply), 1 when it exists already, or the exit status. */
static int create_topic(shmbus *bus, const struct options *o,
			struct sb_client_reply *rep)
{
	cJSON *req = sb_client_topic_request(o->topic);
	int r;

	if (req == NULL ||
	    cJSON_AddStringToObject(req, "overflow", "block") == NULL ||
	    sb_msg_add_int(req, "max_message", (int64_t)o->size) == NULL ||
	    (o->capacity > 0 &&
	     sb_msg_add_int(req, "capacity", (int64_t)o->capacity) == NULL)) {
		cJSON_Delete(req);
		sb_client_reply_init(rep);
		return sb_cli_fail(SB_EXIT_ERROR, "bench", "out of memory");
	}
	r = sb_client_call(bus, "topic_create", req, rep);
	if (r == -EEXIST) {
		sb_client_reply_fini(rep);
		return 1;
	}
	if (r == 0 && !cJSON_IsObject(rep->msg.result)) {
		r = -EPROTO;
	}
	if (r == -EINVAL && rep->msg.message != NULL) {
		/* Mostly a --size over a quarter of the ring. */
		return sb_cli_fail(SB_EXIT_USAGE, "bench",
				   "cannot create topic \"%s\" for messages of "
				   "%llu bytes: %s (--capacity sets the ring's "
				   "size)",
				   o->topic, (unsigned long long)o->size,
				   rep->msg.message);
	}
	return r < 0 ? sb_cli_fail_errno("bench", o->topic, r, rep->msg.message)
		     : 0;
}

/* Checks that an existing topic can carry the run. */
static int check_topic(const struct options *o, const cJSON *info)
{
	uint64_t max = sb_cli_json_u64(info, "max_message");
	char a[32], b[32];

	if (strcmp(sb_cli_json_str(info, "mode"), "queue") == 0) {
		return sb_cli_fail(SB_EXIT_USAGE, "bench",
				   "topic \"%s\" is a queue; bench measures "
				   "broadcast topics (every subscriber gets "
				   "every message)",
				   o->topic);
	}
	if (o->size > max) {
		return sb_cli_fail(SB_EXIT_USAGE, "bench",
				   "--size %s is larger than the max_message "
				   "of topic \"%s\", %s",
				   sb_size_format(o->size, a, sizeof(a)),
				   o->topic, sb_size_format(max, b, sizeof(b)));
	}
	return 0;
}

/*
 * Creates the topic, or finds the existing one and checks it. Sets
 * *created and fills `about` with a description for the summary ("block,
 * capacity 1MiB, created"). Returns 0 or the exit status.
 */
static int prepare_topic(shmbus *bus, const struct options *o, int *created,
			 char *about, size_t aboutlen)
{
	struct sb_client_reply rep;
	const cJSON *info;
	char cap[32];
	int status = create_topic(bus, o, &rep);

	*created = status == 0;
	if (status == 1) {
		status =
		    sb_cli_request("bench", bus, "topic_stat", o->topic,
				   sb_client_topic_request(o->topic), &rep);
	}
	if (status != 0) {
		sb_client_reply_fini(&rep);
		return status;
	}
	info = cJSON_GetObjectItemCaseSensitive(rep.msg.result, "topic");
	status = check_topic(o, info);
	snprintf(
	    about, aboutlen, "%s, capacity %s%s",
	    sb_cli_json_str(info, "overflow"),
	    sb_size_format(sb_cli_json_u64(info, "capacity"), cap, sizeof(cap)),
	    *created ? ", created" : "");
	sb_client_reply_fini(&rep);
	return status;
}

/* ---- opening and closing ----------------------------------------------- */

static int open_handles(shmbus *bus, const struct options *o,
			struct sb_bench *b)
{
	for (unsigned i = 0; i < b->nsubs; i++) {
		int r = shmbus_sub_open(bus, o->topic, SHMBUS_START_LATEST,
					&b->subs[i].sub);

		if (r < 0) {
			return sb_cli_fail_errno("bench", o->topic, r, NULL);
		}
	}
	for (unsigned i = 0; i < b->npubs; i++) {
		int r = shmbus_pub_open(bus, o->topic, &b->pubs[i].pub);

		if (r < 0) {
			return sb_cli_fail_errno("bench", o->topic, r, NULL);
		}
	}
	return 0;
}

static void close_handles(struct sb_bench *b)
{
	for (unsigned i = 0; i < b->npubs; i++) {
		if (b->pubs[i].pub != NULL) {
			shmbus_pub_close(b->pubs[i].pub);
		}
	}
	for (unsigned i = 0; i < b->nsubs; i++) {
		if (b->subs[i].sub != NULL) {
			shmbus_sub_close(b->subs[i].sub);
		}
	}
}

/* ---- the run ----------------------------------------------------------- */

static uint64_t total_sent(struct sb_bench *b)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < b->npubs; i++) {
		n += atomic_load_explicit(&b->pubs[i].sent,
					  memory_order_relaxed);
	}
	return n;
}

static uint64_t total_received(struct sb_bench *b)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < b->nsubs; i++) {
		n += atomic_load_explicit(&b->subs[i].received,
					  memory_order_relaxed);
	}
	return n;
}

/* "1.23M", "45.6K", "789": counts and rates for the eye. */
static const char *si(double v, char *buf, size_t buflen)
{
	if (v >= 1e9) {
		snprintf(buf, buflen, "%.2fG", v / 1e9);
	} else if (v >= 1e6) {
		snprintf(buf, buflen, "%.2fM", v / 1e6);
	} else if (v >= 1e3) {
		snprintf(buf, buflen, "%.1fK", v / 1e3);
	} else {
		snprintf(buf, buflen, "%.0f", v);
	}
	return buf;
}

/* Rewrites the progress line on stderr. */
static void show_progress(struct sb_bench *b, const struct options *o)
{
	uint64_t sent = total_sent(b), received = total_received(b);
	double t = sb_bench_elapsed(&b->start);
	char x[32], y[32], z[32], w[32];

	if (o->count > 0) {
		fprintf(
		    stderr, "\r\033[Ksent %s/%s, received %s/%s, %.1f s",
		    si((double)sent, x, sizeof(x)),
		    si((double)(o->count * b->npubs), y, sizeof(y)),
		    si((double)received, z, sizeof(z)),
		    si((double)(o->count * b->npubs * b->nsubs), w, sizeof(w)),
		    t);
	} else {
		fprintf(stderr, "\r\033[Ksent %s, received %s, %.1f of %.1f s",
			si((double)sent, x, sizeof(x)),
			si((double)received, y, sizeof(y)), t, o->duration_s);
	}
	fflush(stderr);
}

/*
 * Waits until `running` reaches 0, showing progress, stopping the
 * publishers at the deadline (0: none) or on SIGINT/SIGTERM.
 */
static void watch(struct sb_bench *b, const struct options *o, int sigfd,
		  atomic_uint *running, int tty)
{
	struct pollfd pfd = {.fd = sigfd, .events = POLLIN};
	double shown = 0;

	while (atomic_load(running) > 0) {
		if (poll(&pfd, 1, STEP_MS) > 0 && (pfd.revents & POLLIN)) {
			atomic_store(&b->stop, true);
			pfd.fd = -1; /* stopped: stop watching it */
		}
		if (o->duration_s > 0 &&
		    sb_bench_elapsed(&b->start) >= o->duration_s) {
			atomic_store(&b->stop, true);
		}
		if (tty && sb_bench_elapsed(&b->start) >=
			       shown + 0.001 * PROGRESS_MS) {
			show_progress(b, o);
			shown = sb_bench_elapsed(&b->start);
		}
	}
}

/* Runs the threads to their end. Returns 0 or the exit status. */
static int run(struct sb_bench *b, const struct options *o, int sigfd)
{
	int tty = isatty(STDERR_FILENO);
	int r = sb_bench_start(b);

	if (r == 0) {
		watch(b, o, sigfd, &b->pubs_running, tty);
	}
	sb_bench_join_publishers(b);
	if (r == 0) {
		watch(b, o, sigfd, &b->subs_running, tty);
	}
	sb_bench_join_subscribers(b);
	if (tty) {
		fputs("\r\033[K", stderr);
	}
	if (r < 0) {
		return sb_cli_fail(SB_EXIT_ERROR, "bench",
				   "cannot start a thread: %s", strerror(-r));
	}
	return 0;
}

/* The first error a thread met, reported. Returns the exit status. */
static int thread_error(const struct sb_bench *b, const char *topic)
{
	for (unsigned i = 0; i < b->npubs; i++) {
		if (b->pubs[i].err != 0) {
			return sb_cli_fail_errno("bench", topic, b->pubs[i].err,
						 NULL);
		}
	}
	for (unsigned i = 0; i < b->nsubs; i++) {
		if (b->subs[i].err != 0) {
			return sb_cli_fail_errno("bench", topic, b->subs[i].err,
						 NULL);
		}
	}
	return 0;
}

/* ---- the summary ------------------------------------------------------- */

/* The figures of the run, added up. */
struct totals {
	uint64_t sent, received, lost, disorder, malformed;
	double pub_seconds, sub_seconds; /* the slowest thread's */
	struct sb_bench_hist latency;
};

/* The larger of two times (fmax without libm, which shmbus does not link). */
static double later(double a, double b)
{
	return a > b ? a : b;
}

static void add_up(const struct sb_bench *b, struct totals *t)
{
	for (unsigned i = 0; i < b->npubs; i++) {
		t->sent += b->pubs[i].sent;
		t->pub_seconds = later(t->pub_seconds, b->pubs[i].seconds);
	}
	for (unsigned i = 0; i < b->nsubs; i++) {
		const struct sb_bench_sub *s = &b->subs[i];

		t->received += s->received;
		t->lost += s->lost;
		t->disorder += s->disorder;
		t->malformed += s->malformed;
		t->sub_seconds = later(t->sub_seconds, s->seconds);
		sb_bench_hist_merge(&t->latency, s->latency);
	}
}

static double rate(uint64_t n, double seconds)
{
	return seconds > 0 ? (double)n / seconds : 0;
}

/* A line of rates: "40.0K msgs in 0.031 s: 1.29M msgs/s, 82.6 MB/s". */
static void print_rates(const char *label, uint64_t n, double seconds,
			uint64_t size)
{
	char a[32], b[32];

	printf("%s%s msgs in %.3f s: %s msgs/s, %.1f MB/s\n", label,
	       si((double)n, a, sizeof(a)), seconds,
	       si(rate(n, seconds), b, sizeof(b)),
	       rate(n, seconds) * (double)size / 1e6);
}

static void print_text(const struct sb_bench *b, const struct options *o,
		       const struct totals *t, const char *about)
{
	const struct sb_bench_hist *h = &t->latency;
	char label[32], sz[32];

	printf("topic \"%s\" (%s): %u publisher%s, %u subscriber%s, "
	       "messages of %s%s\n",
	       o->topic, about, b->npubs, b->npubs == 1 ? "" : "s", b->nsubs,
	       b->nsubs == 1 ? "" : "s",
	       sb_size_format(o->size, sz, sizeof(sz)),
	       o->size % 1024 != 0 ? " bytes" : "");
	print_rates("publishers   ", t->sent, t->pub_seconds, o->size);
	for (unsigned i = 0; b->npubs > 1 && i < b->npubs; i++) {
		snprintf(label, sizeof(label), "  pub %-6u ", i + 1);
		print_rates(label, b->pubs[i].sent, b->pubs[i].seconds,
			    o->size);
	}
	if (b->nsubs == 0) {
		return;
	}
	print_rates("subscribers  ", t->received, t->sub_seconds, o->size);
	for (unsigned i = 0; b->nsubs > 1 && i < b->nsubs; i++) {
		snprintf(label, sizeof(label), "  sub %-6u ", i + 1);
		print_rates(label, b->subs[i].received, b->subs[i].seconds,
			    o->size);
	}
	if (h->n > 0) {
		printf("latency      p50 %.1f us, p90 %.1f us, p99 %.1f us, "
		       "p99.9 %.1f us, max %.1f us\n",
		       (double)sb_bench_hist_percentile(h, 0.50) / 1e3,
		       (double)sb_bench_hist_percentile(h, 0.90) / 1e3,
		       (double)sb_bench_hist_percentile(h, 0.99) / 1e3,
		       (double)sb_bench_hist_percentile(h, 0.999) / 1e3,
		       (double)h->max / 1e3);
	}
	printf("lost         %llu, out of order %llu\n",
	       (unsigned long long)t->lost, (unsigned long long)t->disorder);
}

/* {"messages", "seconds", "msgs_per_sec", "mb_per_sec"} added to `obj`.
 * Returns 0, or -1 when out of memory. */
static int add_rates(cJSON *obj, uint64_t n, double seconds, uint64_t size)
{
	double r = rate(n, seconds);
	bool ok =
	    cJSON_AddNumberToObject(obj, "messages", (double)n) &&
	    cJSON_AddNumberToObject(obj, "seconds", seconds) &&
	    cJSON_AddNumberToObject(obj, "msgs_per_sec", r) &&
	    cJSON_AddNumberToObject(obj, "mb_per_sec", r * (double)size / 1e6);

	return ok ? 0 : -1;
}

static cJSON *json_side(const struct options *o, uint64_t n, double seconds)
{
	cJSON *side = cJSON_CreateObject();

	if (side == NULL || add_rates(side, n, seconds, o->size) < 0 ||
	    cJSON_AddArrayToObject(side, "each") == NULL) {
		cJSON_Delete(side);
		return NULL;
	}
	return side;
}

/* One entry of a side's "each" array. */
static int json_each(cJSON *side, const struct options *o, uint64_t n,
		     double seconds)
{
	cJSON *one = cJSON_CreateObject();

	if (one == NULL || add_rates(one, n, seconds, o->size) < 0) {
		cJSON_Delete(one);
		return -1;
	}
	cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(side, "each"),
			     one);
	return 0;
}

static cJSON *json_latency(const struct sb_bench_hist *h)
{
	static const struct {
		const char *name;
		double fraction;
	} points[] = {
	    {"p50", 0.50}, {"p90", 0.90}, {"p99", 0.99}, {"p99_9", 0.999}};
	cJSON *lat;

	if (h->n == 0) {
		return cJSON_CreateNull();
	}
	lat = cJSON_CreateObject();
	for (size_t i = 0; lat != NULL && i < sizeof(points) / sizeof(*points);
	     i++) {
		double us =
		    (double)sb_bench_hist_percentile(h, points[i].fraction) /
		    1e3;

		if (cJSON_AddNumberToObject(lat, points[i].name, us) == NULL) {
			cJSON_Delete(lat);
			return NULL;
		}
	}
	if (lat != NULL &&
	    cJSON_AddNumberToObject(lat, "max", (double)h->max / 1e3) == NULL) {
		cJSON_Delete(lat);
		return NULL;
	}
	return lat;
}

/* Builds the JSON summary, or NULL when out of memory. */
static cJSON *json_summary(const struct sb_bench *b, const struct options *o,
			   const struct totals *t, int created)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *pubs = json_side(o, t->sent, t->pub_seconds);
	cJSON *subs = json_side(o, t->received, t->sub_seconds);
	int bad = root == NULL || pubs == NULL || subs == NULL;

	for (unsigned i = 0; !bad && i < b->npubs; i++) {
		bad = json_each(pubs, o, b->pubs[i].sent, b->pubs[i].seconds);
	}
	for (unsigned i = 0; !bad && i < b->nsubs; i++) {
		bad =
		    json_each(subs, o, b->subs[i].received, b->subs[i].seconds);
	}
	bad = bad || cJSON_AddStringToObject(root, "topic", o->topic) == NULL ||
	      cJSON_AddBoolToObject(root, "created", created) == NULL ||
	      cJSON_AddNumberToObject(root, "size", (double)o->size) == NULL ||
	      cJSON_AddNumberToObject(root, "lost", (double)t->lost) == NULL ||
	      cJSON_AddNumberToObject(root, "out_of_order",
				      (double)t->disorder) == NULL ||
	      cJSON_AddNumberToObject(root, "malformed",
				      (double)t->malformed) == NULL;
	if (bad) {
		cJSON_Delete(root);
		cJSON_Delete(pubs);
		cJSON_Delete(subs);
		return NULL;
	}
	cJSON_AddItemToObject(root, "publishers", pubs);
	cJSON_AddItemToObject(root, "subscribers", subs);
	cJSON_AddItemToObject(root, "latency_us", json_latency(&t->latency));
	return root;
}

/* Prints the summary; then says what went wrong, if anything did.
 * Returns the exit status. */
static int summarize(const struct sb_bench *b, const struct options *o,
		     int created, const char *about)
{
	struct totals *t = calloc(1, sizeof(*t));
	int status = 0;

	if (t == NULL) {
		return sb_cli_fail(SB_EXIT_ERROR, "bench", "out of memory");
	}
	add_up(b, t);
	if (o->json) {
		cJSON *root = json_summary(b, o, t, created);

		status = root != NULL ? sb_cli_print_json("bench", root)
				      : sb_cli_fail(SB_EXIT_ERROR, "bench",
						    "out of memory");
		cJSON_Delete(root);
	} else {
		print_text(b, o, t, about);
	}
	if (status == 0 && (t->lost > 0 || t->disorder > 0 || t->malformed)) {
		status = sb_cli_fail(
		    SB_EXIT_ERROR, "bench",
		    "topic \"%s\": subscribers lost %llu messages, got %llu "
		    "out of order and %llu not of this run",
		    o->topic, (unsigned long long)t->lost,
		    (unsigned long long)t->disorder,
		    (unsigned long long)t->malformed);
	}
	free(t);
	return status;
}

/* ---- the command ------------------------------------------------------- */

/* Everything after the options: the broker, the topic, the run. */
static int bench_topic(shmbus *bus, const struct options *o, int sigfd,
		       struct sb_bench *b)
{
	char about[128];
	int created = 0;
	int status = prepare_topic(bus, o, &created, about, sizeof(about));

	if (status == 0) {
		status = open_handles(bus, o, b);
	}
	if (status == 0) {
		status = run(b, o, sigfd);
	}
	close_handles(b);
	if (created) {
		shmbus_topic_delete(bus, o->topic);
	}
	if (status == 0) {
		status = thread_error(b, o->topic);
	}
	if (status == 0) {
		status = summarize(b, o, created, about);
	}
	return status;
}

int sb_cli_bench(int argc, char **argv)
{
	struct options o = {
	    .count = DEFAULT_COUNT, .size = DEFAULT_SIZE, .pubs = 1, .subs = 1};
	struct sb_bench *b;
	shmbus *bus = NULL;
	int status = parse_options(argc, argv, &o), sigfd;

	if (status >= 0) {
		return status;
	}
	sigfd = sb_cli_stop_signals();
	if (sigfd < 0) {
		return sb_cli_fail(SB_EXIT_ERROR, "bench", "signalfd: %s",
				   strerror(-sigfd));
	}
	status = sb_cli_connect("bench", &bus);
	if (status != 0) {
		close(sigfd);
		return status;
	}
	b = calloc(1, sizeof(*b));
	if (b == NULL) {
		status = sb_cli_fail(SB_EXIT_ERROR, "bench", "out of memory");
	} else {
		b->count = o.count;
		b->size = o.size;
		b->npubs = (unsigned)o.pubs;
		b->nsubs = (unsigned)o.subs;
		status = bench_topic(bus, &o, sigfd, b);
		sb_bench_fini(b);
		free(b);
	}
	shmbus_close(bus);
	close(sigfd);
	return status;
}
