/*
 * pubsub.c - `shmbus pub` and `shmbus sub`: the bus from a shell. pub
 * publishes arguments, standard-input lines or a file, optionally paced;
 * sub prints what arrives (text as text, anything else escaped, or hex or
 * raw bytes), says when messages were lost, and stops cleanly on a count,
 * a deadline or SIGINT/SIGTERM so that the broker frees its slot at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli.h"

/* Largest file `pub --file` reads: the ring holds at most 1 GiB, a
 * message a quarter of it. */
#define FILE_MAX (256u << 20)

/* First receive buffer of sub; it grows to the largest message seen. */
#define SUB_BUF_START (64u << 10)

const char sb_cli_pub_usage[] =
    "usage: shmbus pub [options] TOPIC [MESSAGE...]\n"
    "\n"
    "Publishes each MESSAGE argument as one message; with none (and no "
    "--file),\n"
    "each line of standard input, without its newline. A missing topic is\n"
    "created with the broker's defaults if the broker allows it, and goes\n"
    "away with its last user: messages nobody was subscribed to go with "
    "it.\n"
    "Create the topic first (shmbus create) to keep them for later "
    "readers.\n"
    "\n"
    "  --file PATH     publish the file's bytes as one message\n"
    "  --repeat N      publish each message N times in a row (default 1)\n"
    "  --rate R        at most R messages per second, evenly paced "
    "(R may be\n"
    "                  a fraction: 0.5 is one message every 2 s)\n"
    "  --timeout MS    when the ring is full, wait at most MS "
    "milliseconds\n"
    "                  (default: wait as long as it takes; 0: do not "
    "wait)\n"
    "  --socket PATH   the broker's socket\n"
    "  --help          this text\n"
    "\n"
    "Put -- before a MESSAGE that starts with '-'. Exit status: 0 when "
    "every\n"
    "message was published; 6 when --timeout expired on a full ring; see\n"
    "shmbus --help for the others.\n";

const char sb_cli_sub_usage[] =
    "usage: shmbus sub [options] TOPIC\n"
    "\n"
    "Prints the messages published to TOPIC, one a line: text as it is,\n"
    "anything else (invalid UTF-8, control characters) escaped C-style "
    "as \\n,\n"
    "\\t, \\\\ and \\xHH. Messages lost because the topic overwrote them "
    "before they\n"
    "were read are reported on stderr: \"shmbus: lost N messages\".\n"
    "\n"
    "  --count N       exit after N messages\n"
    "  --from WHERE    latest (default): messages published from now on;\n"
    "                  earliest: also those the ring still holds\n"
    "  --timeout S     stop after S seconds in all (fractions allowed)\n"
    "  --hex           print each message as lowercase hex digits\n"
    "  --raw           write the bytes as they are, with nothing added\n"
    "  --socket PATH   the broker's socket\n"
    "  --help          this text\n"
    "\n"
    "Exit status: 0 after --count messages, at --timeout when no --count "
    "was\n"
    "given, and on SIGINT or SIGTERM (the usual way to stop it); 6 when "
    "--timeout\n"
    "expired before --count messages arrived; see shmbus --help for the "
    "others.\n";

/* ---- pub --------------------------------------------------------------- */

struct pub_ctx {
	const char *topic;
	shmbus_pub *pub;
	uint64_t repeat;
	double rate; /* messages per second; 0: as fast as possible */
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

/* Publishes one message ctx->repeat times. Returns 0 or the exit status
 * after reporting. */
static int publish(struct pub_ctx *ctx, const void *data, size_t len)
{
	for (uint64_t i = 0; i < ctx->repeat; i++) {
		int r;

		pace(ctx);
		r = shmbus_publish(ctx->pub, data, len, ctx->timeout_ms);
		switch (r) {
		case 0:
			ctx->sent++;
			continue;
		case -EMSGSIZE:
			return sb_cli_fail(
			    SB_EXIT_ERROR, "pub",
			    "message of %zu bytes is larger than the "
			    "max_message of topic \"%s\" (see shmbus ls)",
			    len, ctx->topic);
		case -ETIMEDOUT:
			return sb_cli_fail(SB_EXIT_TIMEOUT, "pub",
					   "topic \"%s\" stayed full for %d ms "
					   "(%llu messages published)",
					   ctx->topic, ctx->timeout_ms,
					   (unsigned long long)ctx->sent);
		case -EAGAIN:
			return sb_cli_fail(SB_EXIT_ERROR, "pub",
					   "topic \"%s\" is full (%llu "
					   "messages published)",
					   ctx->topic,
					   (unsigned long long)ctx->sent);
		default:
			return sb_cli_fail_errno("pub", ctx->topic, r, NULL);
		}
	}
	return 0;
}

/* Reads the whole of `path` (a regular file, a pipe, /dev/stdin...) into
 * a malloc'd buffer. Returns 0 or the exit status after reporting. */
static int read_file(const char *path, char **data, size_t *len)
{
	size_t cap = 4096, used = 0;
	char *buf = malloc(cap);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0 || buf == NULL) {
		int e = errno;

		free(buf);
		if (fd >= 0) {
			close(fd);
		}
		return sb_cli_fail(SB_EXIT_ERROR, "pub", "%s: %s", path,
				   strerror(e));
	}
	for (;;) {
		if (used == cap) {
			char *grown =
			    cap < FILE_MAX ? realloc(buf, cap * 2) : NULL;

			if (grown == NULL) {
				free(buf);
				close(fd);
				return sb_cli_fail(SB_EXIT_ERROR, "pub",
						   "%s: larger than %u MiB",
						   path, FILE_MAX >> 20);
			}
			buf = grown;
			cap *= 2;
		}
		n = read(fd, buf + used, cap - used);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			break;
		}
		used += (size_t)n;
	}
	if (n < 0) {
		int e = errno;

		free(buf);
		close(fd);
		return sb_cli_fail(SB_EXIT_ERROR, "pub", "%s: %s", path,
				   strerror(e));
	}
	close(fd);
	*data = buf;
	*len = used;
	return 0;
}

/* Publishes each line of standard input, without its newline. */
static int publish_lines(struct pub_ctx *ctx)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int status = 0;

	while (status == 0 && (n = getline(&line, &cap, stdin)) >= 0) {
		size_t len = (size_t)n;

		if (len > 0 && line[len - 1] == '\n') {
			len--;
		}
		status = publish(ctx, line, len);
	}
	if (status == 0 && ferror(stdin)) {
		status =
		    sb_cli_fail(SB_EXIT_ERROR, "pub",
				"reading standard input: %s", strerror(errno));
	}
	free(line);
	return status;
}

int sb_cli_pub(int argc, char **argv)
{
	static const struct option options[] = {
	    {"file", required_argument, NULL, 'f'},
	    {"repeat", required_argument, NULL, 'n'},
	    {"rate", required_argument, NULL, 'r'},
	    {"timeout", required_argument, NULL, 't'},
	    SB_CLI_COMMON_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	struct pub_ctx ctx = {.repeat = 1, .timeout_ms = -1};
	const char *file = NULL;
	shmbus *bus = NULL;
	int done = -1, status, c, r;
	uint64_t v;

	opterr = 0;
	while (done < 0 &&
	       (c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		if (sb_cli_common_option("pub", c, argv, sb_cli_pub_usage,
					 &done)) {
			continue;
		}
		switch (c) {
		case 'f':
			file = optarg;
			break;
		case 'n':
			done = sb_cli_parse_u64("pub", "--repeat", optarg, 1,
						UINT64_MAX, &ctx.repeat);
			break;
		case 'r':
			done = sb_cli_parse_positive("pub", "--rate", optarg,
						     &ctx.rate);
			break;
		case 't':
			done = sb_cli_parse_u64("pub", "--timeout", optarg, 0,
						INT_MAX, &v);
			ctx.timeout_ms = (int)v;
			break;
		}
		done = done == 0 ? -1 : done;
	}
	if (done >= 0) {
		return done;
	}
	if (optind >= argc) {
		return sb_cli_fail(SB_EXIT_USAGE, "pub",
				   "no TOPIC given (try 'shmbus pub --help')");
	}
	ctx.topic = argv[optind++];
	if (file != NULL && optind < argc) {
		return sb_cli_fail(
		    SB_EXIT_USAGE, "pub",
		    "give MESSAGE arguments or --file, not both");
	}
	status = sb_cli_check_topic("pub", ctx.topic);
	if (status == 0) {
		status = sb_cli_connect("pub", &bus);
	}
	if (status != 0) {
		return status;
	}
	r = shmbus_pub_open(bus, ctx.topic, &ctx.pub);
	shmbus_close(bus); /* the pub keeps the connection it needs */
	if (r < 0) {
		return sb_cli_fail_errno("pub", ctx.topic, r, NULL);
	}
	if (file != NULL) {
		char *data = NULL;
		size_t len = 0;

		status = read_file(file, &data, &len);
		if (status == 0) {
			status = publish(&ctx, data, len);
		}
		free(data);
	} else if (optind < argc) {
		for (int i = optind; status == 0 && i < argc; i++) {
			status = publish(&ctx, argv[i], strlen(argv[i]));
		}
	} else {
		status = publish_lines(&ctx);
	}
	shmbus_pub_close(ctx.pub);
	return status;
}

/* ---- sub --------------------------------------------------------------- */

struct sub_ctx {
	const char *topic;
	shmbus_sub *sub;
	enum sb_cli_format format;
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
 * Takes the next message into ctx->buf. A message larger than the buffer
 * is read in place with a peek, the buffer grown to fit, and the bytes
 * copied before the release. Returns the length, or -EAGAIN (none now),
 * or another negative errno from the subscriber.
 */
static ssize_t next_message(struct sub_ctx *ctx)
{
	for (;;) {
		ssize_t n = shmbus_receive(ctx->sub, ctx->buf, ctx->cap, 0);
		const void *data;
		size_t len;
		char *grown;
		int r;

		if (n != -EMSGSIZE) {
			return n;
		}
		r = shmbus_peek(ctx->sub, &data, &len, 0);
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
		ssize_t n = next_message(ctx);

		if (n == -EAGAIN) {
			return 0;
		}
		if (n < 0) {
			return sb_cli_fail_errno("sub", ctx->topic, (int)n,
						 NULL);
		}
		report_lost(ctx);
		if (sb_cli_print_message(stdout, ctx->buf, (size_t)n,
					 ctx->format) < 0) {
			return sb_cli_fail(SB_EXIT_ERROR, "sub",
					   "writing standard output: %s",
					   strerror(errno));
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

int sb_cli_sub(int argc, char **argv)
{
	static const struct option options[] = {
	    {"count", required_argument, NULL, 'c'},
	    {"from", required_argument, NULL, 'F'},
	    {"timeout", required_argument, NULL, 't'},
	    {"hex", no_argument, NULL, 'x'},
	    {"raw", no_argument, NULL, 'R'},
	    SB_CLI_COMMON_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	struct sub_ctx ctx = {.format = SB_CLI_TEXT};
	int start = SHMBUS_START_LATEST;
	double timeout_s = 0, deadline = 0;
	shmbus *bus = NULL;
	int done = -1, status, c, r, sigfd;

	opterr = 0;
	while (done < 0 &&
	       (c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		if (sb_cli_common_option("sub", c, argv, sb_cli_sub_usage,
					 &done)) {
			continue;
		}
		switch (c) {
		case 'c':
			done = sb_cli_parse_u64("sub", "--count", optarg, 1,
						UINT64_MAX, &ctx.count);
			break;
		case 'F':
			if (strcmp(optarg, "latest") == 0) {
				start = SHMBUS_START_LATEST;
			} else if (strcmp(optarg, "earliest") == 0) {
				start = SHMBUS_START_EARLIEST;
			} else {
				done = sb_cli_fail(SB_EXIT_USAGE, "sub",
						   "--from must be latest or "
						   "earliest (got \"%s\")",
						   optarg);
			}
			break;
		case 't':
			done = sb_cli_parse_positive("sub", "--timeout", optarg,
						     &timeout_s);
			break;
		case 'x':
			ctx.format = SB_CLI_HEX;
			break;
		case 'R':
			ctx.format = SB_CLI_RAW;
			break;
		}
		done = done == 0 ? -1 : done;
	}
	if (done >= 0) {
		return done;
	}
	status = sb_cli_one_topic("sub", argc, argv, &ctx.topic);
	if (status != 0) {
		return status;
	}
	if (timeout_s > 0) {
		deadline = now_s() + timeout_s;
	}
	sigfd = sb_cli_stop_signals();
	if (sigfd < 0) {
		return sb_cli_fail(SB_EXIT_ERROR, "sub", "signalfd: %s",
				   strerror(-sigfd));
	}
	status = sb_cli_connect("sub", &bus);
	if (status != 0) {
		close(sigfd);
		return status;
	}
	r = shmbus_sub_open(bus, ctx.topic, start, &ctx.sub);
	shmbus_close(bus); /* the sub keeps the connection it needs */
	if (r < 0) {
		close(sigfd);
		return sb_cli_fail_errno("sub", ctx.topic, r, NULL);
	}
	ctx.cap = SUB_BUF_START;
	ctx.buf = malloc(ctx.cap);
	if (ctx.buf == NULL) {
		status = sb_cli_fail(SB_EXIT_ERROR, "sub", "out of memory");
	} else {
		status = listen_loop(&ctx, sigfd, deadline);
	}
	free(ctx.buf);
	shmbus_sub_close(ctx.sub);
	close(sigfd);
	return status;
}
