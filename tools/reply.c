/*
 * reply.c - `shmbus reply`: serves a service, like `nats reply`. Each
 * request is answered with a fixed MESSAGE, with the request itself (an
 * echo), or with the standard output of a command run for it (--exec,
 * runcmd.c: the request on the command's standard input, never on its
 * command line). One request at a time; several `shmbus reply` of one
 * service share its requests. It stops after --count requests or on
 * SIGINT or SIGTERM, closing its server so that the broker knows at once.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli.h"

/* What --exec-timeout is when not given. */
#define REPLY_DEFAULT_EXEC_TIMEOUT_MS 10000

const char sb_cli_reply_usage[] =
    "usage: shmbus reply [options] SERVICE [MESSAGE]\n"
    "       shmbus reply [options] SERVICE --exec COMMAND [ARG...]\n"
    "\n"
    "Serves SERVICE: answers each request sent to it (shmbus req, "
    "shmbus_call())\n"
    "with MESSAGE, or without MESSAGE with the request itself (an echo). "
    "Several\n"
    "servers of one service share its requests. Runs until --count "
    "requests or\n"
    "SIGINT or SIGTERM.\n"
    "\n"
    "  -e, --exec COMMAND [ARG...]\n"
    "                        for each request, run COMMAND with its "
    "ARGs (found\n"
    "                        on $PATH; no shell) with the request on its "
    "standard\n"
    "                        input, and answer with its standard output. "
    "Every\n"
    "                        argument after --exec belongs to COMMAND, so "
    "it comes\n"
    "                        last. The request is never put on a command "
    "line:\n"
    "                        for a shell, write one (--exec sh -c "
    "'...'), which\n"
    "                        reads the request on its standard input.\n"
    "      --exec-timeout TIME\n"
    "                        kill COMMAND (and its process group) when it "
    "has\n"
    "                        not finished after TIME (250ms, 2s, 1m; a "
    "bare\n"
    "                        number is seconds; default 10s)\n"
    "      --count N         exit after N requests\n"
    "  -v, --verbose         say on standard error when serving starts, "
    "and a\n"
    "                        line for each request\n"
    "      --socket PATH     the broker's socket\n"
    "  -h, --help            this text\n"
    "\n"
    "With --exec, COMMAND's standard output is the answer whatever its "
    "exit\n"
    "status; a status other than 0 is also reported on standard error. "
    "No answer\n"
    "is sent, and the failure is reported on standard error, when "
    "COMMAND is\n"
    "killed (--exec-timeout, or by a signal) or writes more than the "
    "service's\n"
    "largest reply (it is then killed): a part of an answer would pass "
    "for all of\n"
    "it. The requester then sees its own timeout. Likewise a request "
    "that cannot\n"
    "be answered (an echo over the largest reply, a requester that went "
    "away) is\n"
    "reported and skipped; serving goes on. COMMAND's standard error is "
    "shmbus's.\n"
    "Put -- before a MESSAGE that starts with '-'.\n"
    "\n"
    "Exit status: 0 after --count requests or on SIGINT or SIGTERM; 1 "
    "when\n"
    "COMMAND cannot be started (not found, not executable); 4 no such "
    "service\n"
    "(the broker creates none on demand); 5 the service's rules refuse "
    "the serve\n"
    "right; 8 MESSAGE is larger than the service's largest reply; see "
    "shmbus\n"
    "--help for the others.\n";

struct reply_opts {
	const char *service;
	const char *message; /* the fixed answer; NULL: echo or --exec */
	char **exec_argv;    /* --exec COMMAND ARG... (NULL-terminated) */
	uint64_t count;	     /* 0: no limit */
	int exec_timeout_ms;
	bool verbose;
};

/* A server at work. */
struct reply_ctx {
	const struct reply_opts *o;
	shmbus_server *srv;
	int sigfd;
	char *req;   /* a request, up to shmbus_serve_max_request() */
	char *out;   /* --exec's output, up to shmbus_serve_max_reply() */
	uint64_t n;  /* requests handled */
	bool stop;   /* SIGINT or SIGTERM came */
	int failure; /* an exit status that ends serving, or 0 */
};

/* One line on standard error, for what serving goes on after. */
__attribute__((format(printf, 1, 2))) static void note(const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "shmbus: reply: %s\n", line);
}

/* ---- options ----------------------------------------------------------- */

enum {
	OPT_COUNT = 1300,
	OPT_EXEC_TIMEOUT,
};

/*
 * --exec takes the rest of the command line as COMMAND and its ARGs: they
 * are cut off before getopt, which would otherwise take an ARG such as -c
 * for an option of ours. An argument after "--" is an operand, never
 * --exec. Returns the new argc.
 */
static int cut_exec(int argc, char **argv, struct reply_opts *o)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			break;
		}
		if (strcmp(argv[i], "--exec") == 0 ||
		    strcmp(argv[i], "-e") == 0) {
			o->exec_argv = &argv[i + 1];
			return i;
		}
	}
	return argc;
}

static int reply_option(struct reply_opts *o, int c)
{
	switch (c) {
	case OPT_COUNT:
		return sb_cli_parse_u64("reply", "--count", optarg, 1,
					UINT64_MAX, &o->count);
	case OPT_EXEC_TIMEOUT:
		if (sb_cli_parse_timeout_ms("reply", "--exec-timeout", optarg,
					    &o->exec_timeout_ms) != 0) {
			return SB_EXIT_USAGE;
		}
		return o->exec_timeout_ms > 0
			   ? 0
			   : sb_cli_fail(SB_EXIT_USAGE, "reply",
					 "--exec-timeout must be more than 0");
	case 'v':
		o->verbose = true;
		return 0;
	default:
		return SB_EXIT_USAGE;
	}
}

/* Parses the options and operands; returns -1 to go on, else the exit
 * status. */
static int parse_reply(int argc, char **argv, struct reply_opts *o)
{
	static const struct option options[] = {
	    {"count", required_argument, NULL, OPT_COUNT},
	    {"exec-timeout", required_argument, NULL, OPT_EXEC_TIMEOUT},
	    {"verbose", no_argument, NULL, 'v'},
	    SB_CLI_COMMON_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	int done = -1, c;

	argc = cut_exec(argc, argv, o);
	opterr = 0;
	while (done < 0 &&
	       (c = getopt_long(argc, argv, ":hv", options, NULL)) != -1) {
		if (sb_cli_common_option("reply", c, argv, sb_cli_reply_usage,
					 &done)) {
			continue;
		}
		done = reply_option(o, c);
		done = done == 0 ? -1 : done;
	}
	if (done >= 0) {
		return done;
	}
	if (optind >= argc || argc - optind > 2) {
		return sb_cli_fail(SB_EXIT_USAGE, "reply",
				   "%s (try 'shmbus reply --help')",
				   optind >= argc ? "no SERVICE given"
						  : "one SERVICE and one "
						    "MESSAGE at most");
	}
	o->service = argv[optind];
	o->message = argc - optind == 2 ? argv[optind + 1] : NULL;
	if (o->exec_argv != NULL && o->exec_argv[0] == NULL) {
		return sb_cli_fail(SB_EXIT_USAGE, "reply",
				   "--exec needs a COMMAND");
	}
	if (o->exec_argv != NULL && o->message != NULL) {
		return sb_cli_fail(SB_EXIT_USAGE, "reply",
				   "give a MESSAGE or --exec, not both");
	}
	return sb_cli_check_service("reply", o->service) != 0 ? SB_EXIT_USAGE
							      : -1;
}

/* ---- answering ----------------------------------------------------------- */

/* The command's words for a report: its name. */
static const char *cmd_name(const struct reply_ctx *ctx)
{
	return ctx->o->exec_argv[0];
}

/*
 * Runs --exec's command for a request of `len` bytes. Returns the answer's
 * length (in ctx->out), or -1 when there is none to send (reported), or
 * -2 when serving must end (ctx->stop or ctx->failure set).
 */
static ssize_t run_exec(struct reply_ctx *ctx, size_t len)
{
	size_t cap = shmbus_serve_max_reply(ctx->srv);
	struct sb_cli_cmd_result res;
	int r = sb_cli_run_cmd(ctx->o->exec_argv, ctx->req, len, ctx->out, cap,
			       ctx->o->exec_timeout_ms, ctx->sigfd, &res);

	if (r < 0) {
		note("request %llu: cannot run %s: %s",
		     (unsigned long long)ctx->n, cmd_name(ctx), strerror(-r));
		return -1;
	}
	switch (res.end) {
	case SB_CLI_CMD_EXITED:
		if (res.status != 0) {
			note("request %llu: %s exited with status %d (its "
			     "output of %zu bytes is the answer)",
			     (unsigned long long)ctx->n, cmd_name(ctx),
			     res.status, res.out_len);
		}
		return (ssize_t)res.out_len;
	case SB_CLI_CMD_SIGNALED:
		note("request %llu: %s was killed by signal %d; no answer",
		     (unsigned long long)ctx->n, cmd_name(ctx), res.status);
		return -1;
	case SB_CLI_CMD_TIMED_OUT:
		note("request %llu: %s did not finish within %d ms: killed; "
		     "no answer",
		     (unsigned long long)ctx->n, cmd_name(ctx),
		     ctx->o->exec_timeout_ms);
		return -1;
	case SB_CLI_CMD_TOO_LONG:
		note("request %llu: %s wrote more than the largest reply "
		     "(%zu bytes): killed; no answer",
		     (unsigned long long)ctx->n, cmd_name(ctx), cap);
		return -1;
	case SB_CLI_CMD_STOPPED:
		ctx->stop = true;
		return -2;
	case SB_CLI_CMD_EXEC_FAILED:
		ctx->failure =
		    sb_cli_fail(SB_EXIT_ERROR, "reply", "cannot run %s: %s",
				cmd_name(ctx), strerror(res.err));
		return -2;
	}
	return -1;
}

/* Answers one request of `len` bytes in ctx->req. */
static void answer(struct reply_ctx *ctx, const struct shmbus_reqref *ref,
		   size_t len)
{
	const struct reply_opts *o = ctx->o;
	const char *data = ctx->req;
	ssize_t n = (ssize_t)len;
	int r;

	ctx->n++;
	if (o->message != NULL) {
		data = o->message;
		n = (ssize_t)strlen(o->message);
	} else if (o->exec_argv != NULL) {
		data = ctx->out;
		n = run_exec(ctx, len);
	}
	if (n < 0) {
		return;
	}
	r = shmbus_reply(ctx->srv, ref, data, (size_t)n);
	if (r < 0) {
		note("request %llu: no answer sent: %s",
		     (unsigned long long)ctx->n,
		     r == -EPIPE    ? "the requester went away"
		     : r == -EAGAIN ? "the requester's reply channel is full"
				    : shmbus_strerror(r));
	} else if (o->verbose) {
		note("request %llu: %zu bytes, answered with %zd",
		     (unsigned long long)ctx->n, len, n);
	}
}

/* Handles every request waiting, until none is left or serving ends.
 * Returns 0, or the exit status of a failed receive. */
static int take_requests(struct reply_ctx *ctx)
{
	size_t cap = shmbus_serve_max_request(ctx->srv);

	while (!ctx->stop && ctx->failure == 0 &&
	       (ctx->o->count == 0 || ctx->n < ctx->o->count)) {
		struct shmbus_reqref ref;
		ssize_t len =
		    shmbus_serve_receive(ctx->srv, ctx->req, cap, &ref, 0);

		if (len == -EAGAIN) {
			return 0;
		}
		if (len < 0) {
			return sb_cli_fail_service("reply", ctx->o->service,
						   (int)len);
		}
		answer(ctx, &ref, (size_t)len);
	}
	return ctx->failure;
}

/* Waits for requests or a signal and answers them, until done. */
static int serve(struct reply_ctx *ctx)
{
	while (!ctx->stop && (ctx->o->count == 0 || ctx->n < ctx->o->count)) {
		struct pollfd p[2] = {
		    {.fd = ctx->sigfd, .events = POLLIN},
		    {.fd = shmbus_serve_fd(ctx->srv), .events = POLLIN},
		};
		int status;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR) {
				continue;
			}
			return sb_cli_fail(SB_EXIT_ERROR, "reply", "poll: %s",
					   strerror(errno));
		}
		if (p[0].revents != 0) {
			break; /* SIGINT or SIGTERM: stop */
		}
		status = take_requests(ctx);
		if (status != 0) {
			return status;
		}
	}
	return SB_EXIT_OK;
}

/* Opens the server and its buffers, then serves. */
static int open_and_serve(const struct reply_opts *o, int sigfd)
{
	struct reply_ctx ctx = {.o = o, .sigfd = sigfd};
	shmbus *bus = NULL;
	int status = sb_cli_connect("reply", &bus);
	int r;

	if (status != 0) {
		return status;
	}
	r = shmbus_serve_open(bus, o->service, &ctx.srv);
	if (r < 0) {
		shmbus_close(bus);
		return sb_cli_fail_service("reply", o->service, r);
	}
	if (o->message != NULL &&
	    strlen(o->message) > shmbus_serve_max_reply(ctx.srv)) {
		status =
		    sb_cli_fail(SB_EXIT_TOO_LARGE, "reply",
				"MESSAGE is larger than the largest "
				"reply of service \"%s\" (%zu bytes)",
				o->service, shmbus_serve_max_reply(ctx.srv));
	}
	ctx.req = malloc(shmbus_serve_max_request(ctx.srv) + 1);
	ctx.out = malloc(shmbus_serve_max_reply(ctx.srv) + 1);
	if (status == 0 && (ctx.req == NULL || ctx.out == NULL)) {
		status = sb_cli_fail(SB_EXIT_ERROR, "reply", "out of memory");
	}
	if (status == 0 && o->verbose) {
		note("serving \"%s\" (requests up to %zu bytes, replies up to "
		     "%zu)",
		     o->service, shmbus_serve_max_request(ctx.srv),
		     shmbus_serve_max_reply(ctx.srv));
	}
	if (status == 0) {
		status = serve(&ctx);
	}
	free(ctx.req);
	free(ctx.out);
	shmbus_serve_close(ctx.srv);
	shmbus_close(bus);
	return status;
}

int sb_cli_reply(int argc, char **argv)
{
	struct reply_opts o = {.exec_timeout_ms =
				   REPLY_DEFAULT_EXEC_TIMEOUT_MS};
	int status = parse_reply(argc, argv, &o);
	int sigfd;

	if (status >= 0) {
		return status;
	}
	/* A command that does not read all of its request must not kill us
	 * with SIGPIPE: the write fails with EPIPE instead. */
	signal(SIGPIPE, SIG_IGN);
	sigfd = sb_cli_stop_signals();
	if (sigfd < 0) {
		return sb_cli_fail(SB_EXIT_ERROR, "reply", "signalfd: %s",
				   strerror(-sigfd));
	}
	status = open_and_serve(&o, sigfd);
	close(sigfd);
	return status;
}
