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

/* First receive buffer; it grows to the largest message seen. */
#define SUB_BUF_START (64u << 10)

const char sb_cli_sub_usage[] =
    "usage: shmbus sub [options] TOPIC\n"
    "       shmbus sub [options] -t TOPIC\n"
    "\n"
    "Prints the messages published to TOPIC, one a line: text as it is,\n"
    "anything else (invalid UTF-8, control characters) escaped C-style "
    "as \\n,\n"
    "\\t, \\\\ and \\xHH. Messages lost because the topic overwrote them "
    "before they\n"
    "were read are reported on stderr: \"shmbus: lost N messages\".\n"
    "\n"
    "  -t, --topic TOPIC     the topic, instead of the argument\n"
    "  -C, --count N         exit after N messages\n"
    "  -W, --timeout TIME    stop after TIME in all (250ms, 2s, 1m; a "
    "bare\n"
    "                        number is seconds)\n"
    "      --from WHERE      latest (default): messages published from "
    "now on;\n"
    "                        earliest: also those the ring still holds\n"
    "  -v, --print-topic     print the topic and a space before each "
    "message\n"
    "      --timestamp       print the receive time (UTC, ISO 8601, "
    "µs) and a\n"
    "                        space before each message\n"
    "  -x, --hex             print each message as lowercase hex digits\n"
    "  -N, --no-newline      print no newline after each message\n"
    "  -F, --format FMT      print each message as FMT says: %t topic, "
    "%p payload\n"
    "                        (as text, escaped), %x payload in hex, %l "
    "length,\n"
    "                        %s sequence number, %T receive time (ISO "
    "8601),\n"
    "                        %U receive time (Unix seconds.nanoseconds), "
    "%% a %;\n"
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
	const char *topic;
	shmbus_sub *sub;
	struct sb_cli_out out;
	uint64_t count; /* 0: no limit */
	uint64_t received;
	uint64_t lost; /* as last reported */
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
static void report_lost(struct sub_ctx *ctx)
{
	uint64_t lost = shmbus_sub_lost(ctx->sub);

	if (lost > ctx->lost) {
		fflush(stdout);
		fprintf(stderr, "shmbus: lost %llu message%s\n",
			(unsigned long long)(lost - ctx->lost),
			lost - ctx->lost == 1 ? "" : "s");
		ctx->lost = lost;
	}
}

/*
 * Takes the next message into ctx->buf, with its info. A message larger
 * than the buffer is read in place with a peek, the buffer grown to fit,
 * and the bytes copied before the release. Returns the length, or -EAGAIN
 * (none now), or another negative errno from the subscriber.
 */
static ssize_t next_message(struct sub_ctx *ctx, struct shmbus_msg_info *info)
{
	for (;;) {
		ssize_t n =
		    shmbus_receive_info(ctx->sub, ctx->buf, ctx->cap, info, 0);
		const void *data;
		size_t len;
		char *grown;
		int r;

		if (n != -EMSGSIZE) {
			return n;
		}
		r = shmbus_peek_info(ctx->sub, &data, &len, info, 0);
		if (r < 0) {
			return r;
		}
		if (len > ctx->cap) {
			grown = realloc(ctx->buf, len);
			if (grown == NULL) {
				shmbus_release(ctx->sub);
				return -ENOMEM;
			}
			ctx->buf = grown;
			ctx->cap = len;
		}
		memcpy(ctx->buf, data, len);
		/* -ESTALE: overwritten while we copied (overwrite policy);
		 * the copy may be torn, so take the next one instead. */
		r = shmbus_release(ctx->sub);
		if (r == 0) {
			return (ssize_t)len;
		}
		if (r != -ESTALE) {
			return r;
		}
	}
}

/*
 * Receives and prints every message waiting, up to the count. Returns 0
 * (with *finished set once the count is reached) or the exit status after
 * reporting.
 */
static int drain(struct sub_ctx *ctx, bool *finished)
{
	while (ctx->count == 0 || ctx->received < ctx->count) {
		struct shmbus_msg_info info = {.size = sizeof(info)};
		ssize_t n = next_message(ctx, &info);
		struct sb_cli_msg m = {.topic = ctx->topic, .data = ctx->buf};
		int r;

		if (n == -EAGAIN) {
			return 0;
		}
		if (n < 0) {
			return sb_cli_fail_errno("sub", ctx->topic, (int)n,
						 NULL);
		}
		clock_gettime(CLOCK_REALTIME, &m.received);
		m.len = (size_t)n;
		m.seq = info.seq;
		report_lost(ctx);
		r = sb_cli_write_message(stdout, &ctx->out, &m);
		if (r < 0) {
			return sb_cli_fail(SB_EXIT_ERROR, "sub",
					   "writing standard output: %s",
					   strerror(-r));
		}
		ctx->received++;
	}
	*finished = true;
	return 0;
}

/* Waits for messages and prints them until the count, the deadline (0:
 * none) or a signal on `sigfd`. Returns the exit status. */
static int listen_loop(struct sub_ctx *ctx, int sigfd, double deadline)
{
	struct pollfd fds[2] = {
	    {.fd = shmbus_sub_fd(ctx->sub), .events = POLLIN},
	    {.fd = sigfd, .events = POLLIN},
	};

	if (fds[0].fd < 0) {
		return sb_cli_fail_errno("sub", ctx->topic, fds[0].fd, NULL);
	}
	for (;;) {
		bool finished = false;
		int r = drain(ctx, &finished);
		int wait_ms = -1;

		if (r != 0 || finished) {
			return r;
		}
		if (deadline > 0) {
			double left = deadline - now_s();

			if (left <= 0) {
				break;
			}
			wait_ms = (int)(left * 1000) + 1;
		}
		r = poll(fds, 2, wait_ms);
		if (r < 0 && errno != EINTR) {
			return sb_cli_fail(SB_EXIT_ERROR, "sub", "poll: %s",
					   strerror(errno));
		}
		if (r > 0 && (fds[1].revents & POLLIN) != 0) {
			return SB_EXIT_OK; /* SIGINT or SIGTERM: stop */
		}
	}
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
	const char *topic; /* -t */
	int start;
	double timeout_s;
	uint64_t count;
	bool print_topic, timestamp, hex, no_newline, raw, json, framed;
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

/* Handles one option (not the common ones). Returns 0 or the exit status. */
static int sub_option(struct sub_opts *o, int c)
{
	switch (c) {
	case 't':
		o->topic = optarg;
		return 0;
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
		o->timestamp = true;
		return 0;
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
	    {"timestamp", no_argument, NULL, OPT_TIMESTAMP},
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
	if ((o->print_topic || o->timestamp) && (whole || o->format)) {
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
	    .timestamp = o->timestamp,
	    .newline = !o->no_newline && !whole,
	};
	return 0;
}

/* The topic: -t, or the one argument left. */
static int sub_topic(struct sub_opts *o, int argc, char **argv)
{
	if (o->topic == NULL) {
		return sb_cli_one_topic("sub", argc, argv, &o->topic);
	}
	if (optind < argc) {
		return sb_cli_fail(SB_EXIT_USAGE, "sub",
				   "one TOPIC only (given with -t and as an "
				   "argument)");
	}
	return sb_cli_check_topic("sub", o->topic);
}

/* Opens the subscriber and prints until done. Returns the exit status. */
static int run_sub(struct sub_ctx *ctx, int start, double timeout_s)
{
	double deadline = timeout_s > 0 ? now_s() + timeout_s : 0;
	shmbus *bus = NULL;
	int sigfd = sb_cli_stop_signals();
	int status, r;

	if (sigfd < 0) {
		return sb_cli_fail(SB_EXIT_ERROR, "sub", "signalfd: %s",
				   strerror(-sigfd));
	}
	status = sb_cli_connect("sub", &bus);
	if (status == 0) {
		r = shmbus_sub_open(bus, ctx->topic, start, &ctx->sub);
		shmbus_close(bus); /* the sub keeps the connection it needs */
		status =
		    r < 0 ? sb_cli_fail_errno("sub", ctx->topic, r, NULL) : 0;
	}
	if (status == 0) {
		ctx->cap = SUB_BUF_START;
		ctx->buf = malloc(ctx->cap);
		status = ctx->buf == NULL ? sb_cli_fail(SB_EXIT_ERROR, "sub",
							"out of memory")
					  : listen_loop(ctx, sigfd, deadline);
		free(ctx->buf);
		shmbus_sub_close(ctx->sub);
	}
	close(sigfd);
	return status;
}

int sb_cli_sub(int argc, char **argv)
{
	struct sub_opts o = {.start = SHMBUS_START_LATEST};
	struct sub_ctx ctx = {0};
	int status = parse_sub(argc, argv, &o);

	if (status >= 0) {
		return status;
	}
	status = sub_topic(&o, argc, argv);
	if (status == 0) {
		status = output_style(&o, &ctx.out);
	}
	if (status != 0) {
		return status;
	}
	ctx.topic = o.topic;
	ctx.count = o.count;
	return run_sub(&ctx, o.start, o.timeout_s);
}
