/*
 * sub.c - `shmbus sub`: prints what arrives on a topic (as text, escaped,
 * hex, raw bytes, a --format line, JSON or frames: msgout.c), says when
 * messages were lost, and stops cleanly on a count, a deadline or
 * SIGINT/SIGTERM so that the broker frees its slot at once.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/subset.h"
#include "wire/topic_name.h"

/* First receive buffer; it grows to the largest message seen. */
#define SUB_BUF_START (64u << 10)

const char sb_cli_sub_usage[] =
    "usage: shmbus sub [options] TOPIC|PATTERN...\n"
    "       shmbus sub [options] -t TOPIC|PATTERN [-t ...]\n"
    "\n"
    "Prints the messages published to each TOPIC, and to every topic a "
    "PATTERN\n"
    "matches, now or when it appears later: levels split on '/', \"*\" "
    "any one\n"
    "level, a last \">\" one level or more (MQTT's \"+\" and \"#\" "
    "too), e.g.\n"
    "'sensors/>'. One message a line: text as it is,\n"
    "anything else (invalid UTF-8, control characters) escaped C-style "
    "as \\n,\n"
    "\\t, \\\\ and \\xHH. Messages lost because the topic overwrote them "
    "before they\n"
    "were read are reported on stderr: \"shmbus: lost N messages\".\n"
    "\n"
    "  -t, --topic TOPIC     a topic or pattern (may be given more than "
    "once)\n"
    "  -C, --count N         exit after N messages\n"
    "  -W, --timeout TIME    stop after TIME in all (250ms, 2s, 1m; a "
    "bare\n"
    "                        number is seconds)\n"
    "      --from WHERE      latest (default): messages published from "
    "now on;\n"
    "                        earliest: also those the ring still holds\n"
    "  -v, --print-topic     print the topic and a space before each "
    "message\n"
    "      --timestamp[=publish]\n"
    "                        print the receive time (UTC, ISO 8601, "
    "µs) and a\n"
    "                        space before each message; =publish: the "
    "publish\n"
    "                        time instead (a topic with metadata; else "
    "\"-\")\n"
    "  -x, --hex             print each message as lowercase hex digits\n"
    "  -N, --no-newline      print no newline after each message\n"
    "  -F, --format FMT      print each message as FMT says: %t topic, "
    "%p payload\n"
    "                        (as text, escaped), %x payload in hex, %l "
    "length,\n"
    "                        %s sequence number, %T receive time (ISO "
    "8601),\n"
    "                        %U receive time (Unix seconds.nanoseconds), "
    "%W\n"
    "                        publish time and %P publisher id (topics "
    "created with\n"
    "                        --metadata; else -), %% a %;\n"
    "                        \\n, \\t and \\\\ as in C; a newline follows "
    "unless -N\n"
    "      --json            one JSON object a line: topic, seq, "
    "received, length,\n"
    "                        and payload (text) or payload_hex (anything "
    "else)\n"
    "      --raw             write the bytes as they are, with nothing "
    "added\n"
    "      --framed          write each message as a frame: its length in "
    "4 bytes,\n"
    "                        most significant first, then its bytes (what "
    "'shmbus\n"
    "                        pub --framed' reads)\n"
    "      --socket PATH     the broker's socket\n"
    "  -h, --help            this text\n"
    "\n"
    "Exit status: 0 after --count messages, at --timeout when no --count "
    "was\n"
    "given, and on SIGINT or SIGTERM (the usual way to stop it); 6 when "
    "--timeout\n"
    "expired before --count messages arrived; see shmbus --help for the "
    "others.\n";

struct sub_ctx {
	struct sb_cli_subset set;
	struct sb_cli_out out;
	bool many;	/* more than one topic possible: name it when lost */
	uint64_t count; /* 0: no limit */
	uint64_t received;
	char *buf;
	size_t cap;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Says how many messages were lost since the last report, if any. */
static void report_lost(const struct sub_ctx *ctx, struct sb_cli_sub *e)
{
	uint64_t lost = shmbus_sub_lost(e->sub);

	if (lost > e->lost) {
		fflush(stdout);
		fprintf(stderr, "shmbus: lost %llu message%s%s%s%s\n",
			(unsigned long long)(lost - e->lost),
			lost - e->lost == 1 ? "" : "s",
			ctx->many ? " on topic \"" : "",
			ctx->many ? e->topic : "", ctx->many ? "\"" : "");
		e->lost = lost;
	}
}

/*
 * Takes the next message of `sub` into ctx->buf, with its info. A message
 * larger than the buffer is read in place with a peek, the buffer grown to
 * fit, and the bytes copied before the release. Returns the length, or
 * -EAGAIN (none now), or another negative errno from the subscriber.
 */
static ssize_t next_message(struct sub_ctx *ctx, shmbus_sub *sub,
			    struct shmbus_msg_info *info)
{
	for (;;) {
		ssize_t n =
		    shmbus_receive_info(sub, ctx->buf, ctx->cap, info, 0);
		const void *data;
		size_t len;
		char *grown;
		int r;

		if (n != -EMSGSIZE) {
			return n;
		}
		r = shmbus_peek_info(sub, &data, &len, info, 0);
		if (r < 0) {
			return r;
		}
		if (len > ctx->cap) {
			grown = realloc(ctx->buf, len);
			if (grown == NULL) {
				shmbus_release(sub);
				return -ENOMEM;
			}
			ctx->buf = grown;
			ctx->cap = len;
		}
		memcpy(ctx->buf, data, len);
		/* -ESTALE: overwritten while we copied (overwrite policy);
		 * the copy may be torn, so take the next one instead. */
		r = shmbus_release(sub);
		if (r == 0) {
			return (ssize_t)len;
		}
		if (r != -ESTALE) {
			return r;
		}
	}
}

/*
 * Receives and prints every message waiting on `e`, up to the count.
 * Returns 0 or the exit status after reporting.
 */
static int drain_one(struct sub_ctx *ctx, struct sb_cli_sub *e)
{
	while (ctx->count == 0 || ctx->received < ctx->count) {
		struct shmbus_msg_info info = {.size = sizeof(info)};
		ssize_t n = next_message(ctx, e->sub, &info);
		struct sb_cli_msg m = {.topic = e->topic, .data = ctx->buf};
		int r;

		if (n == -EAGAIN) {
			return 0;
		}
		if (n < 0) {
			return sb_cli_fail_errno("sub", e->topic, (int)n, NULL);
		}
		clock_gettime(CLOCK_REALTIME, &m.received);
		m.len = (size_t)n;
		m.seq = info.seq;
		m.has_meta = (info.flags & SHMBUS_MSG_METADATA) != 0;
		m.published.tv_sec =
		    (time_t)(info.publish_time_ns / 1000000000);
		m.published.tv_nsec = (long)(info.publish_time_ns % 1000000000);
		m.publisher = info.publisher;
		report_lost(ctx, e);
		r = sb_cli_write_message(stdout, &ctx->out, &m);
		if (r < 0) {
			return sb_cli_fail(SB_EXIT_ERROR, "sub",
					   "writing standard output: %s",
					   strerror(-r));
		}
		ctx->received++;
	}
	return 0;
}

/* Takes the watches' events, then every message waiting, closing the
 * subscribers of removed topics once drained. Returns 0 (with *finished
 * set once the count is reached) or the exit status. */
static int drain(struct sub_ctx *ctx, bool *finished)
{
	struct sb_cli_subset *set = &ctx->set;
	int r = sb_cli_subset_events(set);

	for (size_t i = 0; r == 0 && i < set->n; i++) {
		r = drain_one(ctx, &set->subs[i]);
	}
	for (size_t i = set->n; r == 0 && i-- > 0;) {
		if (set->subs[i].gone) {
			sb_cli_subset_retire(set, &set->subs[i]);
		}
	}
	*finished = ctx->count != 0 && ctx->received >= ctx->count;
	return r;
}

/* Waits for messages and prints them until the count, the deadline (0:
 * none) or a signal on `sigfd`. Returns the exit status. */
static int listen_loop(struct sub_ctx *ctx, int sigfd, double deadline)
{
	struct pollfd *fds = NULL;

	for (;;) {
		bool finished = false;
		int r = drain(ctx, &finished);
		size_t max = ctx->set.n + ctx->set.nwatches + 1, n;
		int wait_ms = -1;
		struct pollfd *grown;

		if (r != 0 || finished) {
			free(fds);
			return r;
		}
		if (deadline > 0) {
			double left = deadline - now_s();

			if (left <= 0) {
				break;
			}
			wait_ms = (int)(left * 1000) + 1;
		}
		grown = realloc(fds, max * sizeof(*fds));
		if (grown == NULL) {
			free(fds);
			return sb_cli_fail(SB_EXIT_ERROR, "sub",
					   "out of memory");
		}
		fds = grown;
		fds[0] = (struct pollfd){.fd = sigfd, .events = POLLIN};
		n = 1 + sb_cli_subset_pollfds(&ctx->set, fds + 1, max - 1);
		r = poll(fds, (nfds_t)n, wait_ms);
		if (r < 0 && errno != EINTR) {
			free(fds);
			return sb_cli_fail(SB_EXIT_ERROR, "sub", "poll: %s",
					   strerror(errno));
		}
		if (r > 0 && (fds[0].revents & POLLIN) != 0) {
			free(fds);
			return SB_EXIT_OK; /* SIGINT or SIGTERM: stop */
		}
	}
	free(fds);
	if (ctx->count != 0) {
		return sb_cli_fail(SB_EXIT_TIMEOUT, "sub",
				   "timed out with %llu of %llu messages",
				   (unsigned long long)ctx->received,
				   (unsigned long long)ctx->count);
	}
	return SB_EXIT_OK;
}

/* What the options said. */
struct sub_opts {
	const char **topics; /* -t and the arguments: names and patterns */
	size_t ntopics;
	int start;
	double timeout_s;
	uint64_t count;
	enum sb_cli_stamp stamp;
	bool print_topic, hex, no_newline, raw, json, framed;
	const char *format;
};

enum {
	OPT_FROM = 1200,
	OPT_TIMESTAMP,
	OPT_JSON,
	OPT_RAW,
	OPT_FRAMED,
};

static int parse_from(const char *text, int *start)
{
	if (strcmp(text, "latest") == 0) {
		*start = SHMBUS_START_LATEST;
	} else if (strcmp(text, "earliest") == 0) {
		*start = SHMBUS_START_EARLIEST;
	} else {
		return sb_cli_fail(SB_EXIT_USAGE, "sub",
				   "--from must be latest or earliest "
				   "(got \"%s\")",
				   text);
	}
	return 0;
}

/* --timestamp[=receive|publish]: which time goes before each message. */
static int parse_stamp(const char *text, enum sb_cli_stamp *stamp)
{
	if (text == NULL || strcmp(text, "receive") == 0) {
		*stamp = SB_CLI_STAMP_RECEIVE;
	} else if (strcmp(text, "publish") == 0) {
		*stamp = SB_CLI_STAMP_PUBLISH;
	} else {
		return sb_cli_fail(SB_EXIT_USAGE, "sub",
				   "--timestamp must be receive or publish "
				   "(got \"%s\")",
				   text);
	}
	return 0;
}

/* Appends a topic or pattern given by -t or as an argument. */
static int add_topic(struct sub_opts *o, const char *topic)
{
	return sb_cli_append_arg("sub", &o->topics, &o->ntopics, topic);
}

/* Handles one option (not the common ones). Returns 0 or the exit status. */
static int sub_option(struct sub_opts *o, int c)
{
	switch (c) {
	case 't':
		return add_topic(o, optarg);
	case 'C':
		return sb_cli_parse_u64("sub", "--count", optarg, 1, UINT64_MAX,
					&o->count);
	case 'W':
		return sb_cli_parse_duration("sub", "--timeout", optarg,
					     &o->timeout_s);
	case OPT_FROM:
		return parse_from(optarg, &o->start);
	case 'v':
		o->print_topic = true;
		return 0;
	case OPT_TIMESTAMP:
		return parse_stamp(optarg, &o->stamp);
	case 'x':
		o->hex = true;
		return 0;
	case 'N':
		o->no_newline = true;
		return 0;
	case 'F':
		o->format = optarg;
		return 0;
	case OPT_JSON:
		o->json = true;
		return 0;
	case OPT_RAW:
		o->raw = true;
		return 0;
	case OPT_FRAMED:
		o->framed = true;
		return 0;
	default:
		return SB_EXIT_USAGE;
	}
}

static int parse_sub(int argc, char **argv, struct sub_opts *o)
{
	static const struct option options[] = {
	    {"topic", required_argument, NULL, 't'},
	    {"count", required_argument, NULL, 'C'},
	    {"timeout", required_argument, NULL, 'W'},
	    {"from", required_argument, NULL, OPT_FROM},
	    {"print-topic", no_argument, NULL, 'v'},
	    {"timestamp", optional_argument, NULL, OPT_TIMESTAMP},
	    {"hex", no_argument, NULL, 'x'},
	    {"no-newline", no_argument, NULL, 'N'},
	    {"format", required_argument, NULL, 'F'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"raw", no_argument, NULL, OPT_RAW},
	    {"framed", no_argument, NULL, OPT_FRAMED},
	    SB_CLI_COMMON_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	int done = -1, c;

	opterr = 0;
	while (done < 0 &&
	       (c = getopt_long(argc, argv, ":ht:C:W:vxNF:", options, NULL)) !=
		   -1) {
		if (sb_cli_common_option("sub", c, argv, sb_cli_sub_usage,
					 &done)) {
			continue; /* --help, --socket, or a parse error */
		}
		done = sub_option(o, c);
		done = done == 0 ? -1 : done;
	}
	return done;
}

/*
 * Turns the output options into how messages are written: at most one of
 * --hex, --raw, --format, --json and --framed; the topic, time and
 * newline options only where they mean something.
 */
static int output_style(const struct sub_opts *o, struct sb_cli_out *out)
{
	char why[256];
	int styles =
	    o->hex + o->raw + (o->format != NULL) + o->json + o->framed;
	bool whole = o->json || o->framed || o->raw;

	if (styles > 1) {
		return sb_cli_fail(SB_EXIT_USAGE, "sub",
				   "--hex, --raw, --format, --json and "
				   "--framed: one of them at most");
	}
	if ((o->print_topic || o->stamp != SB_CLI_STAMP_NONE) &&
	    (whole || o->format)) {
		return sb_cli_fail(SB_EXIT_USAGE, "sub",
				   "-v and --timestamp go with text or --hex "
				   "output (--format has %%t and %%T; --json "
				   "has both)");
	}
	if (o->no_newline && (o->json || o->framed)) {
		return sb_cli_fail(SB_EXIT_USAGE, "sub",
				   "-N goes with text, --hex or --format");
	}
	if (o->format != NULL &&
	    sb_cli_format_check(o->format, why, sizeof(why)) < 0) {
		return sb_cli_fail(SB_EXIT_USAGE, "sub", "--format: %s", why);
	}
	*out = (struct sb_cli_out){
	    .style = o->json	 ? SB_CLI_STYLE_JSON
		     : o->framed ? SB_CLI_STYLE_FRAMED
		     : o->format ? SB_CLI_STYLE_FORMAT
				 : SB_CLI_STYLE_LINE,
	    .payload = o->hex	? SB_CLI_HEX
		       : o->raw ? SB_CLI_RAW
				: SB_CLI_TEXT,
	    .format = o->format,
	    .print_topic = o->print_topic,
	    .stamp = o->stamp,
	    .newline = !o->no_newline && !whole,
	};
	return 0;
}

/* The topic: -t, or the one argument left. */
/* The topics and patterns: -t, then the arguments; each checked. */
static int sub_topics(struct sub_opts *o, int argc, char **argv)
{
	char why[128];
	int status = 0;

	for (int i = optind; status == 0 && i < argc; i++) {
		status = add_topic(o, argv[i]);
	}
	if (status == 0 && o->ntopics == 0) {
		return sb_cli_fail(SB_EXIT_USAGE, "sub",
				   "no TOPIC given (try 'shmbus sub --help')");
	}
	for (size_t i = 0; status == 0 && i < o->ntopics; i++) {
		const char *t = o->topics[i];

		if (!sb_topic_is_pattern(t)) {
			status = sb_cli_check_topic("sub", t);
		} else if (sb_topic_pattern_check(t, why, sizeof(why)) < 0) {
			status = sb_cli_fail(SB_EXIT_USAGE, "sub",
					     "bad pattern \"%s\": %s", t, why);
		}
	}
	return status;
}

/* Subscribes to the named topics and watches the patterns. */
static int open_all(struct sub_ctx *ctx, const struct sub_opts *o)
{
	int status = 0;

	for (size_t i = 0; status == 0 && i < o->ntopics; i++) {
		status =
		    sb_topic_is_pattern(o->topics[i])
			? sb_cli_subset_add_pattern(&ctx->set, o->topics[i])
			: sb_cli_subset_add_topic(&ctx->set, o->topics[i]);
	}
	return status;
}

/* Opens the subscribers and prints until done. Returns the exit status. */
static int run_sub(struct sub_ctx *ctx, const struct sub_opts *o)
{
	double deadline = o->timeout_s > 0 ? now_s() + o->timeout_s : 0;
	int sigfd = sb_cli_stop_signals();
	int status;

	if (sigfd < 0) {
		return sb_cli_fail(SB_EXIT_ERROR, "sub", "signalfd: %s",
				   strerror(-sigfd));
	}
	ctx->set.start = o->start;
	status = sb_cli_connect("sub", &ctx->set.bus);
	if (status == 0) {
		status = open_all(ctx, o);
	}
	if (status == 0) {
		ctx->cap = SUB_BUF_START;
		ctx->buf = malloc(ctx->cap);
		status = ctx->buf == NULL ? sb_cli_fail(SB_EXIT_ERROR, "sub",
							"out of memory")
					  : listen_loop(ctx, sigfd, deadline);
		free(ctx->buf);
	}
	sb_cli_subset_fini(&ctx->set);
	close(sigfd);
	return status;
}

int sb_cli_sub(int argc, char **argv)
{
	struct sub_opts o = {.start = SHMBUS_START_LATEST};
	struct sub_ctx ctx = {0};
	int status = parse_sub(argc, argv, &o);

	if (status < 0) {
		status = sub_topics(&o, argc, argv);
		if (status == 0) {
			status = output_style(&o, &ctx.out);
		}
		if (status == 0) {
			ctx.count = o.count;
			ctx.many =
			    o.ntopics > 1 || sb_topic_is_pattern(o.topics[0]);
			status = run_sub(&ctx, &o);
		}
	}
	free(o.topics);
	return status;
}
