/*
 * cli.h - what the `shmbus` command's files share: exit statuses, the
 * one-line error report, option parsing helpers, the connection to the
 * broker with its errors turned into advice, and output helpers (sizes,
 * rates, message bytes). Prefix: sb_cli_. Each subcommand lives in its own
 * file (pub.c, sub.c, topics.c, stat.c, bench.c, req.c, reply.c) and is
 * dispatched by main.c; what they share is in common.c, output.c, input.c
 * and runcmd.c, which call no subcommand.
 */
#ifndef SB_TOOLS_CLI_H
#define SB_TOOLS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include <cJSON.h>

#include "shmbus/shmbus.h"

/* A raw reply (client/request.h): only the files that send raw requests
 * (common.c, stat.c, topics.c) include that header. */
struct sb_client_reply;

/*
 * Exit statuses, documented in `shmbus --help`. Scripts can tell "the bus
 * is not running" and "that topic does not exist" from other failures.
 */
enum {
	SB_EXIT_OK = 0,
	SB_EXIT_ERROR = 1,     /* anything else that went wrong at run time */
	SB_EXIT_USAGE = 2,     /* bad option, argument, topic name or size */
	SB_EXIT_NO_BROKER = 3, /* nobody listens on the socket */
	SB_EXIT_NO_TOPIC = 4,  /* the topic does not exist */
	SB_EXIT_DENIED = 5,    /* the socket or the topic's rules refuse us */
	SB_EXIT_TIMEOUT = 6,   /* --timeout expired before the work was done */
	SB_EXIT_FULL = 7,      /* the topic was full: --timeout expired, or
				* no wait (--timeout 0, the reject policy) */
	SB_EXIT_TOO_LARGE = 8, /* a message over the topic's max_message */
	SB_EXIT_NO_SERVER = 9, /* req: the service has no server */
	SB_EXIT_SERVER_GONE = 10, /* req: the server went away holding it */
};

/* The subcommands' entry points: argv[0] is the subcommand's name. */
int sb_cli_pub(int argc, char **argv);
int sb_cli_sub(int argc, char **argv);
int sb_cli_ls(int argc, char **argv);
int sb_cli_stat(int argc, char **argv);
int sb_cli_top(int argc, char **argv);
int sb_cli_create(int argc, char **argv);
int sb_cli_rm(int argc, char **argv);
int sb_cli_evict(int argc, char **argv);
int sb_cli_bench(int argc, char **argv);
int sb_cli_req(int argc, char **argv);
int sb_cli_reply(int argc, char **argv);

/* Help texts, kept beside each command's code. */
extern const char sb_cli_pub_usage[], sb_cli_sub_usage[], sb_cli_ls_usage[],
    sb_cli_stat_usage[], sb_cli_top_usage[], sb_cli_create_usage[],
    sb_cli_rm_usage[], sb_cli_evict_usage[], sb_cli_bench_usage[],
    sb_cli_req_usage[], sb_cli_reply_usage[];

/* ---- errors (common.c) ------------------------------------------------- */

/*
 * Prints "shmbus: WHAT: WHY" (WHY from the format) as one line on stderr
 * and returns `status`, so that callers can `return sb_cli_fail(...)`.
 */
__attribute__((format(printf, 3, 4))) int
sb_cli_fail(int status, const char *what, const char *fmt, ...);

/* The exit status that suits a negative errno from the bus or broker. */
int sb_cli_status(int err);

/*
 * Reports a failed broker request or bus call on `topic` (may be NULL)
 * with the broker's own message when it gave one (`why`, may be NULL),
 * else words for the errno. Returns the matching exit status.
 */
int sb_cli_fail_errno(const char *what, const char *topic, int err,
		      const char *why);

/* The same for a call on a request/reply `service`: its own words for a
 * missing service, a refused right, no server, a server that went away. */
int sb_cli_fail_service(const char *what, const char *service, int err);

/* ---- options (common.c) ------------------------------------------------ */

/*
 * The long options every subcommand takes, to append to its own table:
 * --socket PATH and --help. Their codes are below.
 */
#define SB_CLI_OPT_SOCKET 1000
#define SB_CLI_OPT_HELP	  'h'
#define SB_CLI_COMMON_OPTIONS                                                  \
	{"socket", required_argument, NULL, SB_CLI_OPT_SOCKET},                \
	{                                                                      \
		"help", no_argument, NULL, SB_CLI_OPT_HELP                     \
	}

/* Set by `shmbus --socket PATH CMD` or a subcommand's --socket. */
extern const char *sb_cli_socket;

/*
 * Handles what getopt_long() returned for the options every subcommand
 * shares and for parse errors: --socket, --help (prints `usage` on stdout
 * and sets *done to SB_EXIT_OK), unknown options and missing arguments
 * (report, *done = SB_EXIT_USAGE). Returns 1 when it handled `c`, 0 when
 * the caller should. Call getopt_long() with an option string that starts
 * with ':' so that a missing argument is told from an unknown option.
 */
int sb_cli_common_option(const char *cmd, int c, char **argv, const char *usage,
			 int *done);

/*
 * Parses a whole decimal number from `text` into [min, max]. Returns 0, or
 * reports "CMD: OPTION: ..." and returns SB_EXIT_USAGE.
 */
int sb_cli_parse_u64(const char *cmd, const char *option, const char *text,
		     uint64_t min, uint64_t max, uint64_t *out);

/* Parses a size such as "64KiB" (wire/size.h); reports as above. */
int sb_cli_parse_size(const char *cmd, const char *option, const char *text,
		      uint64_t *out);

/* Parses a positive, finite decimal number such as "0.5". */
int sb_cli_parse_positive(const char *cmd, const char *option, const char *text,
			  double *out);

/*
 * Parses a duration: a number with a unit, ms, s, m or h ("250ms", "1.5s",
 * "2m"); a bare number is seconds, everywhere. Fractions allowed, negative
 * and non-finite values not. Sets *seconds; reports as above.
 */
int sb_cli_parse_duration(const char *cmd, const char *option, const char *text,
			  double *seconds);

/* The same for a wait in milliseconds (a library timeout): at most
 * INT_MAX ms, rounded up so that a short wait is not 0 (no wait). */
int sb_cli_parse_timeout_ms(const char *cmd, const char *option,
			    const char *text, int *ms);

/* Appends `arg` (not copied) to the array *v of *n strings, for options
 * given more than once. Returns 0, or reports and returns the status. */
int sb_cli_append_arg(const char *cmd, const char ***v, size_t *n,
		      const char *arg);

/* Checks a topic name locally, so that a bad one is a usage error with the
 * reason ("has an empty segment"). Returns 0 or SB_EXIT_USAGE. */
int sb_cli_check_topic(const char *cmd, const char *topic);

/* The same for a service name (the topic name rules, its own words). */
int sb_cli_check_service(const char *cmd, const char *service);

/* Takes the one operand left after getopt (argv[optind]) as a topic name
 * and checks it. Returns 0, or SB_EXIT_USAGE with the reason printed (no
 * TOPIC, more than one, a bad name). */
int sb_cli_one_topic(const char *cmd, int argc, char **argv,
		     const char **topic);

/* ---- the broker (common.c) --------------------------------------------- */

/*
 * Connects to the broker at sb_cli_socket (NULL: the default path) as
 * "shmbus-CMD". On failure reports why, with advice on starting a broker
 * when there is none, and returns the exit status; returns 0 on success.
 */
int sb_cli_connect(const char *cmd, shmbus **bus);

/*
 * Sends `op` with `req` (owned, may be NULL for no fields). On success
 * returns 0 with `rep` holding the reply; otherwise reports the error on
 * `topic` (may be NULL) and returns the exit status. Call
 * sb_client_reply_fini() in every case.
 */
int sb_cli_request(const char *cmd, shmbus *bus, const char *op,
		   const char *topic, cJSON *req, struct sb_client_reply *rep);

/* sb_cli_request() for a listing op that pages: every page is fetched and
 * `arrays` (NULL-terminated names) hold all their entries
 * (sb_client_call_all). */
int sb_cli_request_all(const char *cmd, shmbus *bus, const char *op,
		       const char *topic, cJSON *req, const char *const *arrays,
		       struct sb_client_reply *rep);

/* The arrays topic_list and topic_stat page, for sb_cli_request_all(). */
extern const char *const sb_cli_list_arrays[];
extern const char *const sb_cli_stat_arrays[];

/*
 * Blocks SIGINT and SIGTERM and returns a signalfd that reads them, so
 * that a command's wait (for messages, for the next sample) also waits for
 * them and the command can close its handles properly: the broker then
 * frees its subscriber slot at once. Call before any thread starts (a
 * subscriber's watcher thread inherits the mask). Returns the descriptor
 * or -errno.
 */
int sb_cli_stop_signals(void);

/* ---- reading input (input.c) ------------------------------------------ */

/* Reads up to `len` bytes, less only at the end of input. Returns the
 * count or -errno. */
ssize_t sb_cli_read_full(int fd, void *buf, size_t len);

/* Opens `path` for reading ("-" is standard input), and closes it. */
int sb_cli_open_input(const char *path);
void sb_cli_close_input(int fd);

/* "standard input" for "-", else `path`: for reports. */
const char *sb_cli_input_name(const char *path);

/*
 * Reads all of `path` ("-": standard input) as one message of at most
 * `max` bytes, reading one byte past `max` at most. Returns 0 with *buf
 * (malloc'd, free it) and *len, -EFBIG when the input is longer than
 * `max`, or -errno. Reports nothing.
 */
int sb_cli_read_message(const char *path, size_t max, char **buf, size_t *len);

/* ---- running a command for a request (runcmd.c) ------------------------ */

/* How a command run for a request ended. */
enum sb_cli_cmd_end {
	SB_CLI_CMD_EXITED,     /* it exited (status in `status`) */
	SB_CLI_CMD_SIGNALED,   /* a signal it did not get from us killed it */
	SB_CLI_CMD_TIMED_OUT,  /* killed: still running at the deadline */
	SB_CLI_CMD_TOO_LONG,   /* killed: its output went over the bound */
	SB_CLI_CMD_STOPPED,    /* killed: SIGINT or SIGTERM came on sigfd */
	SB_CLI_CMD_EXEC_FAILED /* it could not be started (errno in `err`) */
};

struct sb_cli_cmd_result {
	enum sb_cli_cmd_end end;
	int status; /* exit status (EXITED) or signal number (SIGNALED) */
	int err;    /* errno of a failed start */
	size_t out_len;
};

/*
 * Runs argv[0] (found on $PATH as execvp does; no shell) in a process
 * group of its own with `in` (in_len bytes) on its standard input and its
 * standard output captured into `out`, at most `out_cap` bytes; its
 * standard error is ours. The request is data written to a pipe, never
 * part of a command line. Waits until the command has exited and closed
 * its output, at most `timeout_ms`; the group is killed (SIGKILL) at the
 * deadline, when the output goes over `out_cap`, or when `sigfd` (-1:
 * none) becomes readable. Returns 0 with *res filled, or -errno when a
 * pipe or the fork failed.
 */
int sb_cli_run_cmd(char *const argv[], const void *in, size_t in_len, void *out,
		   size_t out_cap, int timeout_ms, int sigfd,
		   struct sb_cli_cmd_result *res);

/* ---- reading replies (output.c) ---------------------------------------- */

/* The non-negative integer `key` of `obj`, or 0 when it is missing, not a
 * number or negative: display code shows what the broker sent. */
uint64_t sb_cli_json_u64(const cJSON *obj, const char *key);

/* The string `key` of `obj`, or "?" when missing or not a string. */
const char *sb_cli_json_str(const cJSON *obj, const char *key);

/* 1 when `key` of `obj` is true, 0 otherwise. */
int sb_cli_json_bool(const cJSON *obj, const char *key);

/* Prints `json` (not owned) indented, with a newline. Returns 0 or the
 * exit status after reporting. */
int sb_cli_print_json(const char *cmd, const cJSON *json);

/* ---- output (output.c) ------------------------------------------------- */

/* How a message's bytes are shown. */
enum sb_cli_format {
	SB_CLI_TEXT, /* text as is, anything else escaped C-style */
	SB_CLI_HEX,  /* lowercase hex digits */
	SB_CLI_RAW,  /* the bytes as they are */
};

/* Writes a message's bytes to `out` in `format`, with nothing added. */
void sb_cli_put_payload(FILE *out, const void *data, size_t len,
			enum sb_cli_format format);

/* ---- writing messages (msgout.c) ---------------------------------------- */

/* One message as `shmbus sub` received it. */
struct sb_cli_msg {
	const char *topic;
	const void *data;
	size_t len;
	uint64_t seq;		   /* the topic's sequence number */
	struct timespec received;  /* CLOCK_REALTIME */
	bool has_meta;		   /* a topic with metadata: the two below */
	struct timespec published; /* as the publisher said */
	uint64_t publisher;	   /* as the publisher said */
};

enum sb_cli_style {
	SB_CLI_STYLE_LINE, /* the payload, after the time and topic if asked */
	SB_CLI_STYLE_FORMAT, /* the --format string */
	SB_CLI_STYLE_JSON,   /* one JSON object a line */
	SB_CLI_STYLE_FRAMED, /* 4-byte big-endian length, then the bytes */
};

/* How `shmbus sub` writes messages. */
/* The time `sub --timestamp` prints before a message. */
enum sb_cli_stamp {
	SB_CLI_STAMP_NONE,
	SB_CLI_STAMP_RECEIVE, /* when this process received it */
	SB_CLI_STAMP_PUBLISH, /* as the publisher said; "-" without metadata */
};

struct sb_cli_out {
	enum sb_cli_style style;
	enum sb_cli_format payload; /* SB_CLI_STYLE_LINE */
	const char *format;	    /* SB_CLI_STYLE_FORMAT, checked */
	bool print_topic;	    /* line: "TOPIC " first */
	enum sb_cli_stamp stamp;    /* line: a time first, or none */
	bool newline;		    /* a newline after each message */
};

/*
 * Checks a --format string: fields %t %p %x %l %s %T %U %W %P %%, escapes \n
 * \t \\. Returns 0, or -EINVAL with the reason in `why`.
 */
int sb_cli_format_check(const char *format, char *why, size_t whylen);

/* Writes `m` as `o` says and flushes. Returns 0 or -errno. */
int sb_cli_write_message(FILE *out, const struct sb_cli_out *o,
			 const struct sb_cli_msg *m);

/* 1 when `data` is UTF-8 with no control characters but tab. */
bool sb_cli_is_text(const void *data, size_t len);

/* "64KiB", "1.5MiB", "512": sizes for tables, one decimal at most. */
const char *sb_cli_human_size(double bytes, char *buf, size_t buflen);

/* The same for a rate; a negative rate (unknown) prints as "-". */
const char *sb_cli_human_rate(double per_second, char *buf, size_t buflen);

/* "42%": what a topic holds as a share of its capacity; "-" for a
 * broadcast topic with no subscriber (`mode` as the broker names it). */
const char *sb_cli_fill(const char *mode, uint64_t subscribers, uint64_t used,
			uint64_t capacity, char *buf, size_t buflen);

/*
 * A table printed with its columns aligned: add the header, then rows of
 * `ncols` cells (copied), then print.
 */
#define SB_CLI_TABLE_COLS 12
struct sb_cli_table {
	int ncols;
	size_t nrows;
	size_t cap;
	char **cells;		      /* nrows * ncols strings */
	int right[SB_CLI_TABLE_COLS]; /* 1: column aligned right (numbers) */
};

void sb_cli_table_init(struct sb_cli_table *t, int ncols);

/* Adds one row of `ncols` strings. Returns 0 or -ENOMEM. */
int sb_cli_table_add(struct sb_cli_table *t, const char *const *cells);

/* Prints the rows with `indent` spaces before each, then frees them. */
void sb_cli_table_print(struct sb_cli_table *t, FILE *out, int indent);

/* Frees what the table holds; safe after sb_cli_table_print(). */
void sb_cli_table_fini(struct sb_cli_table *t);

#endif
