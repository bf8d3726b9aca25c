/*
 * stat.c - `shmbus stat` and `shmbus top`: what the broker knows about
 * each topic (counters, subscribers, their lag and losses, blocked
 * writers) once, or sampled at an interval and turned into message and
 * byte rates. Both read topic_list and topic_stat (docs/protocol.md).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/request.h"
#include "wire/size.h"
#include "tools/cli.h"

const char sb_cli_stat_usage[] =
    "usage: shmbus stat [--json] [--socket PATH] [TOPIC]\n"
    "\n"
    "Prints TOPIC's settings and counters, or every topic's without "
    "TOPIC:\n"
    "messages and bytes published, publishes rejected (reject policy), "
    "times a\n"
    "writer waited for room, dead writers recovered from, writers "
    "blocked now;\n"
    "and for each subscriber its pid, its client (number and the name it "
    "gave),\n"
    "messages received and lost, how far it lags behind (bytes not yet "
    "read),\n"
    "whether it sleeps waiting, and how long its position has stood "
    "still with\n"
    "messages to read (STALLED, as seen by the broker's 1 s sweep; see "
    "shmbus\n"
    "evict and max_stall_ms). Also how many subscribers were evicted, "
    "and each\n"
    "client that publishes: its number (PUBLISHER), name, pid and "
    "handles.\n"
    "\n"
    "  --json          the broker's topic_stat result as JSON (without "
    "TOPIC:\n"
    "                  {\"topics\": [one result per topic]})\n"
    "  --socket PATH   the broker's socket\n"
    "  --help          this text\n"
    "\n"
    "Exit status 4 when TOPIC does not exist.\n";

const char sb_cli_top_usage[] =
    "usage: shmbus top [--interval TIME] [--iterations N] [--socket PATH]\n"
    "\n"
    "A live view of every topic: messages and bytes published per "
    "second\n"
    "(between two samples; the first sample shows -), with units "
    "(12.5k/s,\n"
    "128.6MiB/s), messages published, fill (- for a broadcast topic "
    "without\n"
    "subscribers, as in shmbus ls), publishers, subscribers and "
    "messages lost\n"
    "by subscribers. Redraws the screen on a terminal; otherwise prints "
    "one\n"
    "block per sample. Runs until SIGINT (Ctrl-C) or SIGTERM, which end "
    "it\n"
    "with status 0.\n"
    "\n"
    "  --interval TIME time between samples (250ms, 2s; a bare number is "
    "seconds;\n"
    "                  default 1s)\n"
    "  --iterations N  stop after N samples\n"
    "  --socket PATH   the broker's socket\n"
    "  --help          this text\n";

/* ---- one topic's stat -------------------------------------------------- */

/* Sends topic_stat for `topic`. Returns 0 with `rep` set, or the exit
 * status after reporting unless `quiet_enoent` and the topic is gone. */
static int topic_stat(const char *cmd, shmbus *bus, const char *topic,
		      struct sb_client_reply *rep, int quiet_enoent)
{
	cJSON *req = sb_client_topic_request(topic);
	int r;

	if (req == NULL) {
		sb_client_reply_init(rep);
		return sb_cli_fail(SB_EXIT_ERROR, cmd, "out of memory");
	}
	if (!quiet_enoent) {
		return sb_cli_request_all(cmd, bus, "topic_stat", topic, req,
					  sb_cli_stat_arrays, rep);
	}
	r = sb_client_call_all(bus, "topic_stat", req, sb_cli_stat_arrays, rep);
	if (r == -ENOENT) {
		return -1; /* removed since the list: skip it */
	}
	if (r == 0 && !cJSON_IsObject(rep->msg.result)) {
		r = -EPROTO;
	}
	return r < 0 ? sb_cli_fail_errno(cmd, topic, r, rep->msg.message) : 0;
}

static const char *yes_no(int v)
{
	return v ? "yes" : "no";
}

/* The name a subscriber's or publisher's client gave, or "-". */
static const char *client_name(const cJSON *o)
{
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");

	return cJSON_IsString(name) ? name->valuestring : "-";
}

/* Prints the table of `t` (rows added; `r` the last add's result). */
static int print_table(struct sb_cli_table *t, int r)
{
	if (r < 0) {
		sb_cli_table_fini(t);
		return sb_cli_fail(SB_EXIT_ERROR, "stat", "out of memory");
	}
	sb_cli_table_print(t, stdout, 2);
	return 0;
}

/* The publishing clients: number, name, pid, handles on the topic. */
static int print_publishers(const cJSON *pubs)
{
	static const char *const header[] = {"PUBLISHER", "NAME", "PID",
					     "HANDLES"};
	struct sb_cli_table t;
	const cJSON *p;
	int r;

	if (cJSON_GetArraySize(pubs) == 0) {
		return 0;
	}
	sb_cli_table_init(&t, 4);
	t.right[0] = t.right[2] = t.right[3] = 1;
	r = sb_cli_table_add(&t, header);
	cJSON_ArrayForEach(p, pubs)
	{
		char client[24], pid[24], handles[24];
		const char *row[4] = {client, client_name(p), pid, handles};

		snprintf(client, sizeof(client), "%llu",
			 (unsigned long long)sb_cli_json_u64(p, "client"));
		snprintf(pid, sizeof(pid), "%llu",
			 (unsigned long long)sb_cli_json_u64(p, "pid"));
		snprintf(handles, sizeof(handles), "%llu",
			 (unsigned long long)sb_cli_json_u64(p, "handles"));
		if (r == 0) {
			r = sb_cli_table_add(&t, row);
		}
	}
	return print_table(&t, r);
}

/* The subscribers, one row each. */
static int print_subscribers(const cJSON *subs)
{
	static const char *const header[] = {"SLOT", "PID",	 "CLIENT",
					     "NAME", "RECEIVED", "LOST",
					     "LAG",  "STALLED",	 "SLEEPING"};
	struct sb_cli_table t;
	const cJSON *s;
	int r;

	if (cJSON_GetArraySize(subs) == 0) {
		return 0;
	}
	sb_cli_table_init(&t, 9);
	for (int c = 0; c < 8; c++) {
		t.right[c] = c != 3; /* all but NAME are numbers */
	}
	r = sb_cli_table_add(&t, header);
	cJSON_ArrayForEach(s, subs)
	{
		char cells[7][24];
		const char *row[9] = {cells[0],
				      cells[1],
				      cells[2],
				      client_name(s),
				      cells[3],
				      cells[4],
				      cells[5],
				      cells[6],
				      yes_no(sb_cli_json_bool(s, "sleeping"))};
		static const char *const keys[6] = {
		    "slot", "pid", "client", "received", "lost", "lag_bytes"};
		uint64_t stalled = sb_cli_json_u64(s, "stalled_ms");

		for (int k = 0; k < 6; k++) {
			snprintf(
			    cells[k], sizeof(cells[k]), "%llu",
			    (unsigned long long)sb_cli_json_u64(s, keys[k]));
		}
		if (stalled == 0) {
			snprintf(cells[6], sizeof(cells[6]), "-");
		} else {
			snprintf(cells[6], sizeof(cells[6]), "%llums",
				 (unsigned long long)stalled);
		}
		if (r == 0) {
			r = sb_cli_table_add(&t, row);
		}
	}
	return print_table(&t, r);
}

/* Prints one topic_stat result for people. */
static int print_stat(const cJSON *res)
{
	const cJSON *info = cJSON_GetObjectItemCaseSensitive(res, "topic");
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(res, "stats");
	const cJSON *queue = cJSON_GetObjectItemCaseSensitive(res, "queue");
	uint64_t cap = sb_cli_json_u64(info, "capacity");
	uint64_t used = sb_cli_json_u64(info, "used_bytes");
	char a[32], b[32], fill[16];

	printf(
	    "topic %s: %s, %s, capacity %s, max message %s%s%s\n",
	    sb_cli_json_str(info, "name"), sb_cli_json_str(info, "mode"),
	    sb_cli_json_str(info, "overflow"),
	    sb_size_format(cap, a, sizeof(a)),
	    sb_size_format(sb_cli_json_u64(info, "max_message"), b, sizeof(b)),
	    sb_cli_json_bool(info, "explicit") ? ", explicit" : "",
	    sb_cli_json_bool(info, "persistent") ? ", persistent" : "");
	printf("  publishers %llu, subscribers %llu, holding %llu bytes "
	       "(fill %s)\n",
	       (unsigned long long)sb_cli_json_u64(info, "publishers"),
	       (unsigned long long)sb_cli_json_u64(info, "subscribers"),
	       (unsigned long long)used,
	       sb_cli_fill(sb_cli_json_str(info, "mode"),
			   sb_cli_json_u64(info, "subscribers"), used, cap,
			   fill, sizeof(fill)));
	printf("  published %llu messages, %llu bytes\n",
	       (unsigned long long)sb_cli_json_u64(st, "published"),
	       (unsigned long long)sb_cli_json_u64(st, "bytes"));
	printf("  rejected %llu, waits %llu, recoveries %llu, blocked "
	       "writers %llu\n",
	       (unsigned long long)sb_cli_json_u64(st, "rejected"),
	       (unsigned long long)sb_cli_json_u64(st, "waits"),
	       (unsigned long long)sb_cli_json_u64(st, "recoveries"),
	       (unsigned long long)sb_cli_json_u64(st, "blocked_writers"));
	printf("  evicted %llu subscriber(s); max_stall_ms %llu%s\n",
	       (unsigned long long)sb_cli_json_u64(st, "evictions"),
	       (unsigned long long)sb_cli_json_u64(info, "max_stall_ms"),
	       sb_cli_json_u64(info, "max_stall_ms") == 0 ? " (off)" : "");
	if (cJSON_IsObject(queue)) {
		printf("  queue: lag %llu bytes, lost %llu\n",
		       (unsigned long long)sb_cli_json_u64(queue, "lag_bytes"),
		       (unsigned long long)sb_cli_json_u64(queue, "lost"));
	}
	if (print_publishers(
		cJSON_GetObjectItemCaseSensitive(res, "publishers")) != 0) {
		return SB_EXIT_ERROR;
	}
	return print_subscribers(
	    cJSON_GetObjectItemCaseSensitive(res, "subscribers"));
}

/* ---- listing ----------------------------------------------------------- */

static int by_string(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Asks for the topic list and returns the names sorted, in *names (a
 * malloc'd array of malloc'd strings, *n of them). Returns 0 or the exit
 * status after reporting.
 */
static int list_names(const char *cmd, shmbus *bus, char ***names, int *n)
{
	struct sb_client_reply rep;
	const cJSON *topics, *it;
	char **out;
	int status = sb_cli_request_all(cmd, bus, "topic_list", NULL, NULL,
					sb_cli_list_arrays, &rep);
	int k = 0;

	*names = NULL;
	*n = 0;
	if (status != 0) {
		sb_client_reply_fini(&rep);
		return status;
	}
	topics = cJSON_GetObjectItemCaseSensitive(rep.msg.result, "topics");
	out = calloc((size_t)cJSON_GetArraySize(topics) + 1, sizeof(*out));
	if (out == NULL) {
		sb_client_reply_fini(&rep);
		return sb_cli_fail(SB_EXIT_ERROR, cmd, "out of memory");
	}
	cJSON_ArrayForEach(it, topics)
	{
		const cJSON *name =
		    cJSON_GetObjectItemCaseSensitive(it, "name");

		if (!cJSON_IsString(name)) {
			continue;
		}
		out[k] = strdup(name->valuestring);
		if (out[k] == NULL) {
			status =
			    sb_cli_fail(SB_EXIT_ERROR, cmd, "out of memory");
			break;
		}
		k++;
	}
	sb_client_reply_fini(&rep);
	qsort(out, (size_t)k, sizeof(*out), by_string);
	*names = out;
	*n = k;
	return status;
}

static void free_names(char **names, int n)
{
	for (int i = 0; i < n; i++) {
		free(names[i]);
	}
	free(names);
}

/* ---- stat -------------------------------------------------------------- */

/* stat without TOPIC: every topic, in name order. */
static int stat_all(shmbus *bus, int json)
{
	char **names;
	int n, status = list_names("stat", bus, &names, &n);
	cJSON *all = NULL, *arr = NULL;

	if (status == 0 && json) {
		all = cJSON_CreateObject();
		arr = cJSON_AddArrayToObject(all, "topics");
		if (arr == NULL) {
			status =
			    sb_cli_fail(SB_EXIT_ERROR, "stat", "out of memory");
		}
	}
	for (int i = 0; status == 0 && i < n; i++) {
		struct sb_client_reply rep;
		int r = topic_stat("stat", bus, names[i], &rep, 1);

		if (r > 0) {
			status = r;
		} else if (r == 0 && json) {
			cJSON *copy = cJSON_Duplicate(rep.msg.result, 1);

			if (copy == NULL || !cJSON_AddItemToArray(arr, copy)) {
				cJSON_Delete(copy);
				status = sb_cli_fail(SB_EXIT_ERROR, "stat",
						     "out of memory");
			}
		} else if (r == 0) {
			if (i > 0) {
				putchar('\n');
			}
			status = print_stat(rep.msg.result);
		}
		sb_client_reply_fini(&rep);
	}
	if (status == 0 && json) {
		status = sb_cli_print_json("stat", all);
	}
	cJSON_Delete(all);
	free_names(names, n);
	return status;
}

int sb_cli_stat(int argc, char **argv)
{
	static const struct option options[] = {
	    {"json", no_argument, NULL, 'j'},
	    SB_CLI_COMMON_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	struct sb_client_reply rep;
	const char *topic = NULL;
	shmbus *bus = NULL;
	int json = 0, done = -1, status, c;

	opterr = 0;
	while (done < 0 &&
	       (c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		if (!sb_cli_common_option("stat", c, argv, sb_cli_stat_usage,
					  &done) &&
		    c == 'j') {
			json = 1;
		}
	}
	if (done >= 0) {
		return done;
	}
	if (argc - optind > 1) {
		return sb_cli_fail(SB_EXIT_USAGE, "stat",
				   "one TOPIC at most (try 'shmbus stat "
				   "--help')");
	}
	if (optind < argc) {
		topic = argv[optind];
		status = sb_cli_check_topic("stat", topic);
		if (status != 0) {
			return status;
		}
	}
	status = sb_cli_connect("stat", &bus);
	if (status != 0) {
		return status;
	}
	if (topic == NULL) {
		status = stat_all(bus, json);
	} else {
		status = topic_stat("stat", bus, topic, &rep, 0);
		if (status == 0) {
			status = json
				     ? sb_cli_print_json("stat", rep.msg.result)
				     : print_stat(rep.msg.result);
		}
		sb_client_reply_fini(&rep);
	}
	shmbus_close(bus);
	return status;
}

/* ---- top --------------------------------------------------------------- */

/* One topic in one sample. */
struct sample {
	char *name;
	const char *mode; /* static */
	uint64_t published, bytes, used, capacity, pubs, subs, lost;
};

struct samples {
	struct sample *v;
	int n;
	double at; /* CLOCK_MONOTONIC seconds */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void samples_free(struct samples *s)
{
	for (int i = 0; i < s->n; i++) {
		free(s->v[i].name);
	}
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

/* Lost messages of all of a topic_stat result's subscribers. */
static uint64_t total_lost(const cJSON *res)
{
	const cJSON *s;
	uint64_t lost = sb_cli_json_u64(
	    cJSON_GetObjectItemCaseSensitive(res, "queue"), "lost");

	cJSON_ArrayForEach(s,
			   cJSON_GetObjectItemCaseSensitive(res, "subscribers"))
	{
		lost += sb_cli_json_u64(s, "lost");
	}
	return lost;
}

static const char *mode_name(const char *mode)
{
	return strcmp(mode, "queue") == 0 ? "queue" : "broadcast";
}

/* Takes one sample of every topic. Returns 0 or the exit status. */
static int take_sample(shmbus *bus, struct samples *out)
{
	char **names;
	int n, status = list_names("top", bus, &names, &n);

	out->v = NULL;
	out->n = 0;
	out->at = now_s();
	if (status == 0 && n > 0) {
		out->v = calloc((size_t)n, sizeof(*out->v));
		if (out->v == NULL) {
			status =
			    sb_cli_fail(SB_EXIT_ERROR, "top", "out of memory");
		}
	}
	for (int i = 0; status == 0 && i < n; i++) {
		struct sb_client_reply rep;
		int r = topic_stat("top", bus, names[i], &rep, 1);

		if (r > 0) {
			status = r;
		} else if (r == 0) {
			const cJSON *res = rep.msg.result;
			const cJSON *info =
			    cJSON_GetObjectItemCaseSensitive(res, "topic");
			const cJSON *st =
			    cJSON_GetObjectItemCaseSensitive(res, "stats");
			struct sample *s = &out->v[out->n++];

			s->name = names[i];
			names[i] = NULL; /* the sample owns it now */
			s->mode = mode_name(sb_cli_json_str(info, "mode"));
			s->published = sb_cli_json_u64(st, "published");
			s->bytes = sb_cli_json_u64(st, "bytes");
			s->used = sb_cli_json_u64(info, "used_bytes");
			s->capacity = sb_cli_json_u64(info, "capacity");
			s->pubs = sb_cli_json_u64(info, "publishers");
			s->subs = sb_cli_json_u64(info, "subscribers");
			s->lost = total_lost(res);
		}
		sb_client_reply_fini(&rep);
	}
	free_names(names, n);
	return status;
}

/* The same topic in the previous sample, or NULL (both are sorted). */
static const struct sample *find_prev(const struct samples *prev,
				      const char *name)
{
	for (int i = 0; i < prev->n; i++) {
		if (strcmp(prev->v[i].name, name) == 0) {
			return &prev->v[i];
		}
	}
	return NULL;
}

/* Per second from two counters, or -1 when there is no earlier sample
 * or the counter went back (the topic was removed and made anew). */
static double rate(uint64_t now, uint64_t before, double dt, int have)
{
	if (!have || now < before || dt <= 0) {
		return -1;
	}
	return (double)(now - before) / dt;
}

/* Messages per second for people: "2.5/s", "850/s", "12.5k/s", "2.1M/s";
 * "-" when unknown (negative). */
static const char *msg_rate(double per_second, char *buf, size_t buflen)
{
	static const char *const units[] = {"", "k", "M", "G"};
	double v = per_second;
	int u = 0;

	if (per_second < 0) {
		snprintf(buf, buflen, "-");
		return buf;
	}
	while (v >= 1000 && u < 3) {
		v /= 1000;
		u++;
	}
	/* One decimal where it tells something: 2.5/s, 12.5k/s; not 850.0/s. */
	snprintf(buf, buflen, u == 0 && v >= 10 ? "%.0f%s/s" : "%.1f%s/s", v,
		 units[u]);
	return buf;
}

/* Bytes per second for people: "512B/s", "128.6MiB/s"; "-" when unknown. */
static const char *byte_rate(double per_second, char *buf, size_t buflen)
{
	char n[24];

	if (per_second < 0) {
		snprintf(buf, buflen, "-");
		return buf;
	}
	sb_cli_human_size(per_second < 1024 ? (double)(uint64_t)per_second
					    : per_second,
			  n, sizeof(n));
	snprintf(buf, buflen, "%s%s/s", n, per_second < 1024 ? "B" : "");
	return buf;
}

static int print_sample(const struct samples *cur, const struct samples *prev,
			int number, int interval_ms)
{
	static const char *const header[] = {"TOPIC",	"MODE",	     "MSG/S",
					     "BYTES/S", "PUBLISHED", "FILL",
					     "PUBS",	"SUBS",	     "LOST"};
	double dt = cur->at - prev->at;
	struct sb_cli_table t;
	int r;

	printf("shmbus top: %d topic%s, sample %d, every %d ms\n", cur->n,
	       cur->n == 1 ? "" : "s", number, interval_ms);
	sb_cli_table_init(&t, 9);
	for (int c = 2; c < 9; c++) {
		t.right[c] = 1;
	}
	r = sb_cli_table_add(&t, header);
	for (int i = 0; r == 0 && i < cur->n; i++) {
		const struct sample *s = &cur->v[i];
		const struct sample *p = find_prev(prev, s->name);
		double msgs =
		    rate(s->published, p ? p->published : 0, dt, p != NULL);
		double bytes = rate(s->bytes, p ? p->bytes : 0, dt, p != NULL);
		char m[32], b[40], pub[24], fill[16], pubs[24], subs[24],
		    lost[24];
		const char *row[9] = {s->name, s->mode, m,    b,   pub,
				      fill,    pubs,	subs, lost};

		msg_rate(msgs, m, sizeof(m));
		byte_rate(bytes, b, sizeof(b));
		snprintf(pub, sizeof(pub), "%llu",
			 (unsigned long long)s->published);
		sb_cli_fill(s->mode, s->subs, s->used, s->capacity, fill,
			    sizeof(fill));
		snprintf(pubs, sizeof(pubs), "%llu",
			 (unsigned long long)s->pubs);
		snprintf(subs, sizeof(subs), "%llu",
			 (unsigned long long)s->subs);
		snprintf(lost, sizeof(lost), "%llu",
			 (unsigned long long)s->lost);
		r = sb_cli_table_add(&t, row);
	}
	if (r < 0) {
		sb_cli_table_fini(&t);
		return sb_cli_fail(SB_EXIT_ERROR, "top", "out of memory");
	}
	sb_cli_table_print(&t, stdout, 0);
	fflush(stdout);
	return 0;
}

/* Samples until the iterations are done or a signal arrives on `sigfd`. */
static int top_loop(shmbus *bus, int sigfd, int interval_ms,
		    uint64_t iterations)
{
	struct samples prev = {0}, cur = {0};
	int tty = isatty(STDOUT_FILENO);
	double next = now_s();
	int status = 0;

	for (uint64_t k = 1; status == 0; k++) {
		struct pollfd pfd = {.fd = sigfd, .events = POLLIN};

		status = take_sample(bus, &cur);
		if (status != 0) {
			break;
		}
		if (tty) {
			fputs("\033[H\033[2J", stdout); /* home, clear */
		} else if (k > 1) {
			putchar('\n');
		}
		status = print_sample(&cur, &prev, (int)k, interval_ms);
		samples_free(&prev);
		prev = cur;
		cur.v = NULL;
		cur.n = 0;
		if (status != 0 || (iterations != 0 && k >= iterations)) {
			break;
		}
		/* Samples are due at fixed times, so the interval does not
		 * drift with the time a sample takes. */
		next += interval_ms / 1000.0;
		for (;;) {
			double left = next - now_s();
			int r;

			if (left <= 0) {
				break;
			}
			r = poll(&pfd, 1, (int)(left * 1000) + 1);
			if (r > 0) {
				samples_free(&prev);
				return SB_EXIT_OK; /* SIGINT or SIGTERM */
			}
		}
	}
	samples_free(&prev);
	samples_free(&cur);
	return status;
}

int sb_cli_top(int argc, char **argv)
{
	static const struct option options[] = {
	    {"interval", required_argument, NULL, 'i'},
	    {"iterations", required_argument, NULL, 'n'},
	    SB_CLI_COMMON_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	uint64_t iterations = 0;
	int interval_ms = 1000;
	shmbus *bus = NULL;
	int done = -1, status, c, sigfd;

	opterr = 0;
	while (done < 0 &&
	       (c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		if (sb_cli_common_option("top", c, argv, sb_cli_top_usage,
					 &done)) {
			continue;
		}
		if (c == 'i') {
			done = sb_cli_parse_timeout_ms("top", "--interval",
						       optarg, &interval_ms);
			if (done == 0 && interval_ms == 0) {
				done = sb_cli_fail(SB_EXIT_USAGE, "top",
						   "--interval must be more "
						   "than 0 (got \"%s\")",
						   optarg);
			}
		} else if (c == 'n') {
			done = sb_cli_parse_u64("top", "--iterations", optarg,
						1, INT_MAX, &iterations);
		}
		done = done == 0 ? -1 : done;
	}
	if (done >= 0) {
		return done;
	}
	if (optind < argc) {
		return sb_cli_fail(SB_EXIT_USAGE, "top",
				   "unexpected argument \"%s\"", argv[optind]);
	}
	sigfd = sb_cli_stop_signals();
	if (sigfd < 0) {
		return sb_cli_fail(SB_EXIT_ERROR, "top", "signalfd: %s",
				   strerror(-sigfd));
	}
	status = sb_cli_connect("top", &bus);
	if (status == 0) {
		status = top_loop(bus, sigfd, interval_ms, iterations);
		shmbus_close(bus);
	}
	close(sigfd);
	return status;
}
