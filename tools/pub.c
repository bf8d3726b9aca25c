/*
 * pub.c - `shmbus pub`: publishes arguments and -m messages, a file, each
 * line of standard input, or length-prefixed frames, optionally repeated
 * and paced. Input is bounded by the topic's max_message: a line, file or
 * frame over it is refused as soon as that is known, never read whole.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli.h"

const char sb_cli_pub_usage[] =
    "usage: shmbus pub [options] TOPIC [MESSAGE...]\n"
    "       shmbus pub [options] -t TOPIC [-m MESSAGE]... [MESSAGE...]\n"
    "\n"
    "Publishes each MESSAGE (argument or -m) as one message; with none, "
    "each line\n"
    "of standard input, without its newline. A missing topic is created "
    "with the\n"
    "broker's defaults if the broker allows it, and goes away with its "
    "last user:\n"
    "create it first (shmbus create) to keep messages for later readers.\n"
    "\n"
    "  -t, --topic TOPIC     the topic, instead of the first argument\n"
    "  -m, --message TEXT    publish TEXT (may be given more than once)\n"
    "  -n, --null-message    publish one empty message\n"
    "  -f, --file PATH       publish the file's bytes as one message "
    "(- is\n"
    "                        standard input)\n"
    "  -s, --stdin-message   all of standard input as one message "
    "(--file -)\n"
    "  -l, --lines           each line of standard input is a message "
    "(what\n"
    "                        happens anyway when no message is given)\n"
    "      --framed          read messages as frames from standard input "
    "(or\n"
    "                        --file): a length of 4 bytes, most "
    "significant\n"
    "                        first, then that many bytes; what "
    "'shmbus sub\n"
    "                        --framed' writes\n"
    "      --count N         publish each message N times in a row "
    "(default 1;\n"
    "                        --repeat N is the same)\n"
    "      --rate R          at most R messages per second, evenly paced "
    "(R may\n"
    "                        be a fraction: 0.5 is one message every 2 s)\n"
    "      --timeout TIME    when the topic is full, wait at most TIME "
    "(250ms,\n"
    "                        2s, 1m; a bare number is seconds; 0: do not "
    "wait;\n"
    "                        default: as long as it takes)\n"
    "      --socket PATH     the broker's socket\n"
    "  -h, --help            this text\n"
    "\n"
    "A line, file or frame larger than the topic's max_message is refused "
    "as soon\n"
    "as that is known, without reading the rest. Put -- before a MESSAGE "
    "that\n"
    "starts with '-'. Exit status: 0 when every message was published; 7 "
    "when the\n"
    "topic was full (after --timeout, or at once with --timeout 0 or the "
    "reject\n"
    "policy); 8 when a message is larger than the topic's max_message; "
    "130 or 143\n"
    "when SIGINT or SIGTERM ended it; see shmbus --help for the others.\n";

/* Where the messages come from. */
enum pub_source {
	FROM_ARGS,   /* MESSAGE arguments, -m, -n */
	FROM_LINES,  /* standard input, a line each */
	FROM_FILE,   /* one file (or standard input) as one message */
	FROM_FRAMES, /* frames from standard input or --file */
};

struct pub_ctx {
	const char *topic;
	shmbus_pub *pub;
	size_t max;	 /* the topic's max_message */
	uint64_t repeat; /* times each message is published */
	double rate;	 /* messages per second; 0: as fast as possible */
	int timeout_ms;
	struct timespec start; /* CLOCK_MONOTONIC, of the first message */
	uint64_t sent;
};

/* Sleeps until message number ctx->sent is due: start + sent / rate, so
 * that pacing does not drift with the time each publish takes. */
static void pace(struct pub_ctx *ctx)
{
	struct timespec due = ctx->start;
	double at;

	if (ctx->rate <= 0) {
		return;
	}
	if (ctx->sent == 0) {
		clock_gettime(CLOCK_MONOTONIC, &ctx->start);
		return;
	}
	at = (double)ctx->sent / ctx->rate;
	due.tv_sec += (time_t)at;
	due.tv_nsec += (long)((at - (double)(time_t)at) * 1e9);
	if (due.tv_nsec >= 1000000000L) {
		due.tv_sec++;
		due.tv_nsec -= 1000000000L;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL) ==
	       EINTR) {
	}
}

/* Reports what of the input is over the topic's max_message. */
static int too_large(const struct pub_ctx *ctx, const char *what)
{
	return sb_cli_fail(SB_EXIT_TOO_LARGE, "pub",
			   "%s is larger than the max_message of topic \"%s\" "
			   "(%zu bytes; see shmbus ls)",
			   what, ctx->topic, ctx->max);
}

/* Reports a full topic: the same status whether we waited or not. */
static int full(const struct pub_ctx *ctx)
{
	char waited[64] = "not waiting";

	if (ctx->timeout_ms > 0) {
		snprintf(waited, sizeof(waited), "after waiting %d ms",
			 ctx->timeout_ms);
	}
	return sb_cli_fail(SB_EXIT_FULL, "pub",
			   "topic \"%s\" is full (%s; %llu messages "
			   "published)",
			   ctx->topic, waited, (unsigned long long)ctx->sent);
}

/* Publishes one message ctx->repeat times. Returns 0 or the exit status
 * after reporting. */
static int publish(struct pub_ctx *ctx, const void *data, size_t len)
{
	char what[64];

	if (len > ctx->max) {
		snprintf(what, sizeof(what), "a message of %zu bytes", len);
		return too_large(ctx, what);
	}
	for (uint64_t i = 0; i < ctx->repeat; i++) {
		int r;

		pace(ctx);
		r = shmbus_publish(ctx->pub, data, len, ctx->timeout_ms);
		if (r == -ETIMEDOUT || r == -EAGAIN) {
			return full(ctx);
		}
		if (r < 0) {
			return sb_cli_fail_errno("pub", ctx->topic, r, NULL);
		}
		ctx->sent++;
	}
	return 0;
}

static int read_error(const char *path, int err)
{
	return sb_cli_fail(SB_EXIT_ERROR, "pub", "%s: %s",
			   sb_cli_input_name(path), strerror(err));
}

/* Publishes all of `path` as one message, reading one byte past the
 * topic's max_message at most. */
static int publish_file(struct pub_ctx *ctx, const char *path)
{
	char *buf;
	size_t len = 0;
	int status, r = sb_cli_read_message(path, ctx->max, &buf, &len);

	if (r == -EFBIG) {
		return too_large(ctx, sb_cli_input_name(path));
	}
	if (r < 0) {
		return read_error(path, -r);
	}
	status = publish(ctx, buf, len);
	free(buf);
	return status;
}

/*
 * Publishes each line of standard input, without its newline. A line is
 * kept in a buffer of max_message + 1 bytes at most, so a line that never
 * ends costs no more memory than the largest message.
 */
static int publish_lines(struct pub_ctx *ctx)
{
	char *line = malloc(ctx->max + 1);
	uint64_t number = 1;
	size_t len = 0;
	int status = 0, c;

	if (line == NULL) {
		return sb_cli_fail(SB_EXIT_ERROR, "pub", "out of memory");
	}
	while (status == 0 && (c = getchar()) != EOF) {
		if (c == '\n') {
			status = publish(ctx, line, len);
			len = 0;
			number++;
		} else if (len == ctx->max) {
			char what[64];

			snprintf(what, sizeof(what), "line %llu",
				 (unsigned long long)number);
			status = too_large(ctx, what);
		} else {
			line[len++] = (char)c;
		}
	}
	if (status == 0 && ferror(stdin)) {
		status = read_error("-", errno);
	} else if (status == 0 && len > 0) {
		status = publish(ctx, line, len); /* no final newline */
	}
	free(line);
	return status;
}

/* Reads one frame's length: 1 with *len, 0 at the end of input, or the
 * exit status (negated) after reporting a truncated header. */
static int frame_length(int fd, const char *path, uint64_t number,
			uint32_t *len)
{
	unsigned char h[4];
	ssize_t n = sb_cli_read_full(fd, h, sizeof(h));

	if (n == 0) {
		return 0;
	}
	if (n < 0) {
		return -read_error(path, (int)-n);
	}
	if (n < (ssize_t)sizeof(h)) {
		return -sb_cli_fail(SB_EXIT_ERROR, "pub",
				    "frame %llu: input ends inside its "
				    "4-byte length",
				    (unsigned long long)number);
	}
	*len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
	       (uint32_t)h[2] << 8 | h[3];
	return 1;
}

/* Publishes each frame of `path` (- is standard input); a frame larger
 * than max_message is refused from its length, before its bytes. */
static int publish_frames(struct pub_ctx *ctx, const char *path)
{
	int fd = sb_cli_open_input(path);
	char *buf = malloc(ctx->max > 0 ? ctx->max : 1);
	uint64_t number = 1;
	int status = 0;

	if (fd < 0 || buf == NULL) {
		status =
		    fd < 0 ? read_error(path, errno)
			   : sb_cli_fail(SB_EXIT_ERROR, "pub", "out of memory");
	}
	while (status == 0) {
		uint32_t len = 0;
		int r = frame_length(fd, path, number, &len);
		ssize_t n;
		char what[64];

		if (r <= 0) {
			status = -r;
			break;
		}
		snprintf(what, sizeof(what), "frame %llu (%u bytes)",
			 (unsigned long long)number, len);
		if (len > ctx->max) {
			status = too_large(ctx, what);
			break;
		}
		n = sb_cli_read_full(fd, buf, len);
		if (n < 0) {
			status = read_error(path, (int)-n);
		} else if ((size_t)n < len) {
			status = sb_cli_fail(SB_EXIT_ERROR, "pub",
					     "%s: input ends after %zd bytes",
					     what, n);
		} else {
			status = publish(ctx, buf, len);
		}
		number++;
	}
	free(buf);
	if (fd >= 0) {
		sb_cli_close_input(fd);
	}
	return status;
}

/* What the options said, before the topic is open. */
struct pub_opts {
	struct pub_ctx ctx;
	const char *topic; /* -t */
	const char *file;  /* -f, -s */
	bool lines;	   /* -l */
	bool framed;	   /* --framed */
	const char **messages;
	size_t nmessages;
};

enum {
	OPT_FRAMED = 1100,
	OPT_COUNT,
	OPT_RATE,
	OPT_TIMEOUT,
};

/* Handles one option (not the common ones). Returns 0 or the exit status. */
static int pub_option(struct pub_opts *o, int c)
{
	switch (c) {
	case 't':
		o->topic = optarg;
		return 0;
	case 'm':
		return sb_cli_append_arg("pub", &o->messages, &o->nmessages,
					 optarg);
	case 'n':
		return sb_cli_append_arg("pub", &o->messages, &o->nmessages,
					 "");
	case 'f':
		o->file = optarg;
		return 0;
	case 's':
		o->file = "-";
		return 0;
	case 'l':
		o->lines = true;
		return 0;
	case OPT_FRAMED:
		o->framed = true;
		return 0;
	case OPT_COUNT:
		return sb_cli_parse_u64("pub", "--count", optarg, 1, UINT64_MAX,
					&o->ctx.repeat);
	case OPT_RATE:
		return sb_cli_parse_positive("pub", "--rate", optarg,
					     &o->ctx.rate);
	case OPT_TIMEOUT:
		return sb_cli_parse_timeout_ms("pub", "--timeout", optarg,
					       &o->ctx.timeout_ms);
	default:
		return SB_EXIT_USAGE;
	}
}

static int parse_pub(int argc, char **argv, struct pub_opts *o)
{
	static const struct option options[] = {
	    {"topic", required_argument, NULL, 't'},
	    {"message", required_argument, NULL, 'm'},
	    {"null-message", no_argument, NULL, 'n'},
	    {"file", required_argument, NULL, 'f'},
	    {"stdin-message", no_argument, NULL, 's'},
	    {"lines", no_argument, NULL, 'l'},
	    {"framed", no_argument, NULL, OPT_FRAMED},
	    {"count", required_argument, NULL, OPT_COUNT},
	    {"repeat", required_argument, NULL, OPT_COUNT},
	    {"rate", required_argument, NULL, OPT_RATE},
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},
	    SB_CLI_COMMON_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	int done = -1, c;

	opterr = 0;
	while (done < 0 && (c = getopt_long(argc, argv, ":ht:m:nf:sl", options,
					    NULL)) != -1) {
		if (sb_cli_common_option("pub", c, argv, sb_cli_pub_usage,
					 &done)) {
			continue; /* --help, --socket, or a parse error */
		}
		done = pub_option(o, c);
		done = done == 0 ? -1 : done;
	}
	return done;
}

/* Which source the options name, or the exit status of a conflict. */
static int pick_source(const struct pub_opts *o, bool have_args,
		       enum pub_source *src)
{
	int sources =
	    (have_args || o->nmessages > 0) + (o->file != NULL) + o->lines;

	if (o->framed && (have_args || o->nmessages > 0 || o->lines)) {
		return sb_cli_fail(SB_EXIT_USAGE, "pub",
				   "--framed reads standard input or --file, "
				   "not messages or lines");
	}
	if (sources > 1) {
		return sb_cli_fail(SB_EXIT_USAGE, "pub",
				   "give messages (arguments, -m, -n), --file "
				   "or --lines: one of them");
	}
	*src = o->framed		   ? FROM_FRAMES
	       : o->file != NULL	   ? FROM_FILE
	       : have_args || o->nmessages ? FROM_ARGS
					   : FROM_LINES;
	return 0;
}

static int run_pub(struct pub_opts *o, enum pub_source src, int argc,
		   char **argv)
{
	struct pub_ctx *ctx = &o->ctx;
	int status = 0;

	switch (src) {
	case FROM_ARGS:
		for (size_t i = 0; status == 0 && i < o->nmessages; i++) {
			status = publish(ctx, o->messages[i],
					 strlen(o->messages[i]));
		}
		for (int i = optind; status == 0 && i < argc; i++) {
			status = publish(ctx, argv[i], strlen(argv[i]));
		}
		return status;
	case FROM_LINES:
		return publish_lines(ctx);
	case FROM_FILE:
		return publish_file(ctx, o->file);
	case FROM_FRAMES:
		return publish_frames(ctx, o->file != NULL ? o->file : "-");
	}
	return status;
}

/* Opens the topic and publishes. Returns the exit status. */
static int open_and_publish(struct pub_opts *o, enum pub_source src, int argc,
			    char **argv)
{
	shmbus *bus = NULL;
	int status = sb_cli_connect("pub", &bus);
	int r;

	if (status != 0) {
		return status;
	}
	r = shmbus_pub_open(bus, o->topic, &o->ctx.pub);
	shmbus_close(bus); /* the pub keeps the connection it needs */
	if (r < 0) {
		return sb_cli_fail_errno("pub", o->topic, r, NULL);
	}
	o->ctx.topic = o->topic;
	o->ctx.max = shmbus_pub_max_message(o->ctx.pub);
	status = run_pub(o, src, argc, argv);
	shmbus_pub_close(o->ctx.pub);
	return status;
}

int sb_cli_pub(int argc, char **argv)
{
	struct pub_opts o = {.ctx = {.repeat = 1, .timeout_ms = -1}};
	enum pub_source src = FROM_ARGS;
	int status = parse_pub(argc, argv, &o);

	if (status < 0 && o.topic == NULL && optind >= argc) {
		status = sb_cli_fail(SB_EXIT_USAGE, "pub",
				     "no TOPIC given (try 'shmbus pub "
				     "--help')");
	}
	if (status < 0) {
		if (o.topic == NULL) {
			o.topic = argv[optind++];
		}
		status = pick_source(&o, optind < argc, &src);
		if (status == 0) {
			status = sb_cli_check_topic("pub", o.topic);
		}
		if (status == 0) {
			status = open_and_publish(&o, src, argc, argv);
		}
	}
	free(o.messages);
	return status;
}
