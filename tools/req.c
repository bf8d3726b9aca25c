/*
 * req.c - `shmbus req`: sends a request to a service and prints the reply,
 * like `nats req`. The request is an argument, a file or all of standard
 * input (bounded by the service's largest request, never read whole past
 * it); --count asks again with the same requester. No server, a server
 * that went away and no answer in time are three exit statuses of their
 * own, so that a script can tell them apart.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

/* What --timeout is when not given. */
#define REQ_DEFAULT_TIMEOUT_MS 5000

const char sb_cli_req_usage[] =
    "usage: shmbus req [options] SERVICE [MESSAGE]\n"
    "\n"
    "Sends MESSAGE as a request to a server of SERVICE (see 'shmbus "
    "reply') and\n"
    "prints the reply on standard output. Without MESSAGE, all of "
    "standard input\n"
    "(or --file) is the request. The reply is printed as it is, then a "
    "newline\n"
    "unless it ends with one (--raw: nothing added).\n"
    "\n"
    "  -f, --file PATH       send the file's bytes as the request (- is "
    "standard\n"
    "                        input)\n"
    "      --count N         send the request N times, printing each "
    "reply\n"
    "                        (default 1)\n"
    "      --timeout TIME    wait at most TIME for each reply (250ms, 2s, "
    "1m; a\n"
    "                        bare number is seconds; default 5s)\n"
    "      --raw             print each reply's bytes with nothing added\n"
    "      --socket PATH     the broker's socket\n"
    "  -h, --help            this text\n"
    "\n"
    "A request larger than the service's largest (its max_message) is "
    "refused\n"
    "before anything is sent, without reading the rest of the input. Put "
    "--\n"
    "before a MESSAGE that starts with '-'. Exit status: 0 when every "
    "request was\n"
    "answered; 4 no such service (the broker creates none on demand); "
    "5 the\n"
    "service's rules refuse the request right; 6 no reply within "
    "--timeout; 8 the\n"
    "request (or a reply) is too large; 9 no server serves the service; "
    "10 the\n"
    "server went away (died) before it answered; see shmbus --help for "
    "the others.\n";

struct req_opts {
	const char *service;
	const char *file; /* -f; NULL with no MESSAGE: standard input */
	uint64_t count;
	int timeout_ms;
	bool raw;
};

enum {
	OPT_COUNT = 1200,
	OPT_TIMEOUT,
	OPT_RAW,
};

static int req_option(struct req_opts *o, int c)
{
	switch (c) {
	case 'f':
		o->file = optarg;
		return 0;
	case OPT_COUNT:
		return sb_cli_parse_u64("req", "--count", optarg, 1, UINT64_MAX,
					&o->count);
	case OPT_TIMEOUT:
		if (sb_cli_parse_timeout_ms("req", "--timeout", optarg,
					    &o->timeout_ms) != 0) {
			return SB_EXIT_USAGE;
		}
		if (o->timeout_ms == 0) {
			return sb_cli_fail(SB_EXIT_USAGE, "req",
					   "--timeout must be more than 0 "
					   "(a reply takes some time)");
		}
		return 0;
	case OPT_RAW:
		o->raw = true;
		return 0;
	default:
		return SB_EXIT_USAGE;
	}
}

/* Parses the options; returns -1 to go on, else the exit status. */
static int parse_req(int argc, char **argv, struct req_opts *o)
{
	static const struct option options[] = {
	    {"file", required_argument, NULL, 'f'},
	    {"count", required_argument, NULL, OPT_COUNT},
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},
	    {"raw", no_argument, NULL, OPT_RAW},
	    SB_CLI_COMMON_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	int done = -1, c;

	opterr = 0;
	while (done < 0 &&
	       (c = getopt_long(argc, argv, ":hf:", options, NULL)) != -1) {
		if (sb_cli_common_option("req", c, argv, sb_cli_req_usage,
					 &done)) {
			continue;
		}
		done = req_option(o, c);
		done = done == 0 ? -1 : done;
	}
	return done;
}

/* Reports a request over the service's largest. */
static int too_large(const char *service, const char *what, size_t max)
{
	return sb_cli_fail(SB_EXIT_TOO_LARGE, "req",
			   "%s is larger than the largest request of service "
			   "\"%s\" (%zu bytes)",
			   what, service, max);
}

/* The request's bytes: the MESSAGE operand, or the file (standard input
 * when neither is given), read up to `max` bytes. Returns 0 with *msg
 * (malloc'd) and *len, or the exit status after reporting. */
static int request_bytes(const struct req_opts *o, const char *message,
			 size_t max, char **msg, size_t *len)
{
	const char *path = o->file != NULL ? o->file : "-";
	int r;

	if (message != NULL) {
		*len = strlen(message);
		if (*len > max) {
			return too_large(o->service, "the MESSAGE", max);
		}
		*msg = strdup(message);
		return *msg != NULL
			   ? 0
			   : sb_cli_fail(SB_EXIT_ERROR, "req", "out of memory");
	}
	r = sb_cli_read_message(path, max, msg, len);
	if (r == -EFBIG) {
		return too_large(o->service, sb_cli_input_name(path), max);
	}
	if (r < 0) {
		return sb_cli_fail(SB_EXIT_ERROR, "req", "%s: %s",
				   sb_cli_input_name(path), strerror(-r));
	}
	return 0;
}

/* Prints one reply as --raw says. Returns 0 or the exit status. */
static int print_reply(const struct req_opts *o, const char *reply, size_t len)
{
	fwrite(reply, 1, len, stdout);
	if (!o->raw && (len == 0 || reply[len - 1] != '\n')) {
		putchar('\n');
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		return sb_cli_fail(SB_EXIT_ERROR, "req",
				   "writing the reply: %s", strerror(errno));
	}
	return 0;
}

/* Sends the request o->count times and prints each reply. */
static int ask(const struct req_opts *o, shmbus_requester *rq, const char *msg,
	       size_t len)
{
	size_t cap = shmbus_requester_max_reply(rq);
	char *reply = malloc(cap > 0 ? cap : 1);
	int status = 0;

	if (reply == NULL) {
		return sb_cli_fail(SB_EXIT_ERROR, "req", "out of memory");
	}
	for (uint64_t i = 0; status == 0 && i < o->count; i++) {
		ssize_t n =
		    shmbus_call(rq, msg, len, reply, cap, o->timeout_ms);

		if (n == -ETIMEDOUT) {
			status = sb_cli_fail(SB_EXIT_TIMEOUT, "req",
					     "no reply from \"%s\" within %d "
					     "ms",
					     o->service, o->timeout_ms);
		} else if (n == -EAGAIN) {
			status = sb_cli_fail(SB_EXIT_FULL, "req",
					     "every server of \"%s\" has its "
					     "channel full",
					     o->service);
		} else if (n < 0) {
			status = sb_cli_fail_service("req", o->service, (int)n);
		} else {
			status = print_reply(o, reply, (size_t)n);
		}
	}
	free(reply);
	return status;
}

static int open_and_ask(const struct req_opts *o, const char *message)
{
	shmbus_requester *rq = NULL;
	shmbus *bus = NULL;
	char *msg = NULL;
	size_t len = 0;
	int status = sb_cli_connect("req", &bus);
	int r;

	if (status != 0) {
		return status;
	}
	r = shmbus_requester_open(bus, o->service, &rq);
	if (r < 0) {
		shmbus_close(bus);
		return sb_cli_fail_service("req", o->service, r);
	}
	status = request_bytes(o, message, shmbus_requester_max_request(rq),
			       &msg, &len);
	if (status == 0) {
		status = ask(o, rq, msg, len);
	}
	free(msg);
	shmbus_requester_close(rq);
	shmbus_close(bus);
	return status;
}

int sb_cli_req(int argc, char **argv)
{
	struct req_opts o = {.count = 1, .timeout_ms = REQ_DEFAULT_TIMEOUT_MS};
	const char *message = NULL;
	int status = parse_req(argc, argv, &o);

	if (status >= 0) {
		return status;
	}
	if (optind >= argc || argc - optind > 2) {
		return sb_cli_fail(SB_EXIT_USAGE, "req",
				   "%s (try 'shmbus req --help')",
				   optind >= argc ? "no SERVICE given"
						  : "one SERVICE and one "
						    "MESSAGE at most");
	}
	o.service = argv[optind];
	if (argc - optind == 2) {
		message = argv[optind + 1];
	}
	if (message != NULL && o.file != NULL) {
		return sb_cli_fail(SB_EXIT_USAGE, "req",
				   "give a MESSAGE or --file, not both");
	}
	status = sb_cli_check_service("req", o.service);
	return status != 0 ? status : open_and_ask(&o, message);
}
