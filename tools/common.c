/*
 * common.c - what every `shmbus` subcommand shares: the one-line report
 * and the exit status for a failure, the options every subcommand takes
 * and the parsers of option values, and the connection to the broker with
 * its errors turned into advice. main.c only dispatches; the subcommands
 * and main.c call in here, and nothing here calls back into them.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client/request.h"
#include "wire/duration.h"
#include "wire/size.h"
#include "wire/sockpath.h"
#include "wire/topic_name.h"
#include "tools/cli.h"

/* ---- errors ------------------------------------------------------------ */

int sb_cli_fail(int status, const char *what, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	/* Anything already printed goes out first, so the report follows it
	 * when both streams go to one terminal or file. */
	fflush(stdout);
	fprintf(stderr, "shmbus: %s: %s\n", what, why);
	return status;
}

int sb_cli_status(int err)
{
	switch (err) {
	case 0:
		return SB_EXIT_OK;
	case -ENOENT:
		return SB_EXIT_NO_TOPIC;
	case -EACCES:
	case -EPERM:
		return SB_EXIT_DENIED;
	case -ETIMEDOUT:
		return SB_EXIT_TIMEOUT;
	case -EMSGSIZE:
		return SB_EXIT_TOO_LARGE;
	case -EHOSTUNREACH:
		return SB_EXIT_NO_SERVER;
	case -ECONNABORTED:
		return SB_EXIT_SERVER_GONE;
	case -EINVAL:
		/* The broker refused a setting or name we passed on. */
		return SB_EXIT_USAGE;
	default:
		return SB_EXIT_ERROR;
	}
}

int sb_cli_fail_errno(const char *what, const char *topic, int err,
		      const char *why)
{
	int status = sb_cli_status(err);

	if (why != NULL && why[0] != '\0') {
		return sb_cli_fail(status, what, "%s", why);
	}
	switch (err) {
	case -ENOENT:
		if (topic != NULL) {
			return sb_cli_fail(status, what, "no such topic \"%s\"",
					   topic);
		}
		break;
	case -EPERM:
		/* Only the library says EPERM without a message: the
		 * broker's memory failed its checks (conn.c). */
		if (topic != NULL) {
			return sb_cli_fail(status, what,
					   "topic \"%s\": the broker handed "
					   "over memory that is not its own "
					   "(not sealed, or owned by another "
					   "uid); refusing to map it",
					   topic);
		}
		break;
	case -EACCES:
		if (topic != NULL) {
			return sb_cli_fail(status, what,
					   "permission denied: the access "
					   "rules of topic \"%s\" refuse uid "
					   "%lu",
					   topic, (unsigned long)getuid());
		}
		break;
	case -ECONNRESET:
		return sb_cli_fail(status, what,
				   "the broker closed the connection");
	default:
		break;
	}
	if (topic != NULL) {
		return sb_cli_fail(status, what, "topic \"%s\": %s", topic,
				   shmbus_strerror(err));
	}
	return sb_cli_fail(status, what, "%s", shmbus_strerror(err));
}

int sb_cli_fail_service(const char *what, const char *service, int err)
{
	int status = sb_cli_status(err);

	switch (err) {
	case -ENOENT:
		return sb_cli_fail(status, what,
				   "no such service \"%s\" (the broker "
				   "creates none on demand: auto_create is "
				   "off and its config does not list it)",
				   service);
	case -EACCES:
		return sb_cli_fail(status, what,
				   "permission denied: the access rules of "
				   "service \"%s\" refuse uid %lu",
				   service, (unsigned long)getuid());
	case -EHOSTUNREACH:
		return sb_cli_fail(status, what,
				   "no server serves \"%s\" (start one with "
				   "'shmbus reply %s')",
				   service, service);
	case -ECONNABORTED:
		return sb_cli_fail(status, what,
				   "the server of \"%s\" went away before it "
				   "answered",
				   service);
	case -ENOTSUP:
		return sb_cli_fail(status, what,
				   "this broker has no request/reply "
				   "(service \"%s\")",
				   service);
	case -ECONNRESET:
		return sb_cli_fail(status, what,
				   "the broker closed the connection");
	default:
		return sb_cli_fail(status, what, "service \"%s\": %s", service,
				   shmbus_strerror(err));
	}
}

/* ---- options ----------------------------------------------------------- */

const char *sb_cli_socket;

int sb_cli_common_option(const char *cmd, int c, char **argv,
			 const char *usage_text, int *done)
{
	switch (c) {
	case SB_CLI_OPT_SOCKET:
		sb_cli_socket = optarg;
		return 1;
	case SB_CLI_OPT_HELP:
		fputs(usage_text, stdout);
		*done = SB_EXIT_OK;
		return 1;
	case ':':
		*done = sb_cli_fail(SB_EXIT_USAGE, cmd,
				    "option %s needs a value (try 'shmbus "
				    "%s --help')",
				    argv[optind - 1], cmd);
		return 1;
	case '?':
		if (optopt != 0) {
			*done = sb_cli_fail(SB_EXIT_USAGE, cmd,
					    "unknown option -%c (try 'shmbus "
					    "%s --help')",
					    optopt, cmd);
		} else {
			*done = sb_cli_fail(SB_EXIT_USAGE, cmd,
					    "unknown option %s (try 'shmbus "
					    "%s --help')",
					    argv[optind - 1], cmd);
		}
		return 1;
	default:
		return 0;
	}
}

int sb_cli_parse_u64(const char *cmd, const char *option, const char *text,
		     uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 ||
	    v < min || v > max) {
		return sb_cli_fail(SB_EXIT_USAGE, cmd,
				   "%s must be a whole number from %llu to "
				   "%llu (got \"%s\")",
				   option, (unsigned long long)min,
				   (unsigned long long)max, text);
	}
	*out = v;
	return 0;
}

int sb_cli_parse_size(const char *cmd, const char *option, const char *text,
		      uint64_t *out)
{
	const char *why = NULL;

	if (sb_size_parse(text, out, &why) < 0) {
		return sb_cli_fail(SB_EXIT_USAGE, cmd, "%s: %s (got \"%s\")",
				   option, why, text);
	}
	return 0;
}

int sb_cli_parse_positive(const char *cmd, const char *option, const char *text,
			  double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (end == text || *end != '\0' || errno != 0 || !isfinite(v) ||
	    v <= 0) {
		return sb_cli_fail(SB_EXIT_USAGE, cmd,
				   "%s must be a positive number (got \"%s\")",
				   option, text);
	}
	*out = v;
	return 0;
}

int sb_cli_parse_duration(const char *cmd, const char *option, const char *text,
			  double *seconds)
{
	if (sb_duration_parse(text, seconds) < 0) {
		return sb_cli_fail(SB_EXIT_USAGE, cmd,
				   "%s must be a duration such as 250ms, 2s, "
				   "1.5m or 1h; a bare number is seconds "
				   "(got \"%s\")",
				   option, text);
	}
	return 0;
}

int sb_cli_parse_timeout_ms(const char *cmd, const char *option,
			    const char *text, int *ms)
{
	double s;
	int status = sb_cli_parse_duration(cmd, option, text, &s);

	if (status != 0) {
		return status;
	}
	if (s * 1000 > INT_MAX) {
		return sb_cli_fail(SB_EXIT_USAGE, cmd,
				   "%s: at most %d ms (about 24 days; got "
				   "\"%s\")",
				   option, INT_MAX, text);
	}
	*ms = (int)(s * 1000);
	if ((double)*ms < s * 1000) {
		(*ms)++; /* rounded up: 0.1ms waits, 0 would not */
	}
	return 0;
}

int sb_cli_append_arg(const char *cmd, const char ***v, size_t *n,
		      const char *arg)
{
	const char **grown = realloc(*v, (*n + 1) * sizeof(*grown));

	if (grown == NULL) {
		return sb_cli_fail(SB_EXIT_ERROR, cmd, "out of memory");
	}
	*v = grown;
	(*v)[(*n)++] = arg;
	return 0;
}

/* Services are named by the topic name rules, in a namespace of their
 * own: one check, with the kind of name in the report. */
static int check_name(const char *cmd, const char *kind, const char *name)
{
	char why[128];

	if (sb_topic_name_check(name, why, sizeof(why)) < 0) {
		return sb_cli_fail(SB_EXIT_USAGE, cmd,
				   "bad %s name \"%s\": %s (names are "
				   "letters, digits and . _ - / segments)",
				   kind, name, why);
	}
	return 0;
}

int sb_cli_check_topic(const char *cmd, const char *topic)
{
	return check_name(cmd, "topic", topic);
}

int sb_cli_check_service(const char *cmd, const char *service)
{
	return check_name(cmd, "service", service);
}

int sb_cli_one_topic(const char *cmd, int argc, char **argv, const char **topic)
{
	if (optind != argc - 1) {
		return sb_cli_fail(
		    SB_EXIT_USAGE, cmd, "%s (try 'shmbus %s --help')",
		    optind >= argc ? "no TOPIC given" : "one TOPIC only", cmd);
	}
	*topic = argv[optind];
	return sb_cli_check_topic(cmd, *topic);
}

/* ---- the broker -------------------------------------------------------- */

/* The uid that listens on `path` (SO_PEERCRED), or -1 if unknown. */
static long long listener_uid(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct ucred cred;
	socklen_t len = sizeof(cred);
	long long uid = -1;
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		return -1;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 &&
	    connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
		uid = cred.uid;
	}
	if (fd >= 0) {
		close(fd);
	}
	return uid;
}

/* shmbus_connect said -EPERM: whoever listens at `path` is not a user
 * this client trusts as its broker. Says who it is and how to trust it. */
static int untrusted_broker(const char *cmd, const char *path)
{
	const char *named = secure_getenv("SHMBUS_BROKER_USER");
	long long uid = listener_uid(path);
	char who[64], fix[160];
	uid_t u;

	snprintf(who, sizeof(who), uid >= 0 ? "uid %lld" : "another user", uid);
	if (named != NULL && named[0] != '\0' &&
	    sb_client_broker_user(&u) < 0) {
		snprintf(fix, sizeof(fix),
			 "SHMBUS_BROKER_USER=\"%.64s\" names no user", named);
	} else if (uid >= 0) {
		snprintf(fix, sizeof(fix),
			 "if that is your broker, set SHMBUS_BROKER_USER=%lld",
			 uid);
	} else {
		snprintf(fix, sizeof(fix),
			 "if that is your broker, set SHMBUS_BROKER_USER to "
			 "its user");
	}
	return sb_cli_fail(SB_EXIT_DENIED, cmd,
			   "%s is served by %s, which this client does not "
			   "trust as its broker (only its own uid %lu, root, "
			   "and $SHMBUS_BROKER_USER); %s",
			   path, who, (unsigned long)geteuid(), fix);
}

int sb_cli_connect(const char *cmd, shmbus **bus)
{
	char path[SB_SOCKET_PATH_MAX + 1];
	char name[64];
	int r;

	if (sb_cli_socket != NULL) {
		snprintf(path, sizeof(path), "%s", sb_cli_socket);
	} else if (sb_socket_default_path(path, sizeof(path)) < 0) {
		return sb_cli_fail(SB_EXIT_ERROR, cmd,
				   "the default socket path is too long: set "
				   "$SHMBUS_SOCKET or use --socket");
	}
	snprintf(name, sizeof(name), "shmbus-%s", cmd);
	r = shmbus_connect(sb_cli_socket, name, bus);
	switch (r) {
	case 0:
		return 0;
	case -ENOENT:
	case -ECONNREFUSED:
		return sb_cli_fail(SB_EXIT_NO_BROKER, cmd,
				   "no broker at %s (start one with "
				   "'shmbusd --socket %s', or 'make run')",
				   path, path);
	case -EACCES:
		return sb_cli_fail(SB_EXIT_DENIED, cmd,
				   "permission denied connecting to %s (see "
				   "socket.mode in the broker's config)",
				   path);
	case -EPERM:
		return untrusted_broker(cmd, path);
	case -ENAMETOOLONG:
		return sb_cli_fail(SB_EXIT_USAGE, cmd,
				   "socket path too long (at most %d bytes)",
				   SB_SOCKET_PATH_MAX);
	case -EUSERS:
		return sb_cli_fail(SB_EXIT_ERROR, cmd,
				   "too many clients: the broker at %s "
				   "refuses new connections "
				   "(limits.max_clients, or "
				   "limits.max_clients_per_uid for uid %lu, "
				   "reached)",
				   path, (unsigned long)getuid());
	default:
		return sb_cli_fail(sb_cli_status(r), cmd,
				   "cannot talk to the broker at %s: %s", path,
				   shmbus_strerror(r));
	}
}

/*
 * The broker's explanation in the command line's words: it names request
 * fields as a config file does (field "max_message"), which the user gave
 * as options (--max-message). Writes the rewritten text into `out`.
 */
static const char *in_option_words(const char *why, char *out, size_t outlen)
{
	static const char field[] = "field \"";
	size_t n = 0;

	while (*why != '\0' && n + 1 < outlen) {
		const char *end = strncmp(why, field, sizeof(field) - 1) == 0
				      ? strchr(why + sizeof(field) - 1, '"')
				      : NULL;

		if (end == NULL) {
			out[n++] = *why++;
			continue;
		}
		n += (size_t)snprintf(out + n, outlen - n, "--");
		for (why += sizeof(field) - 1; why < end && n + 1 < outlen;
		     why++) {
			out[n++] = *why == '_' ? '-' : *why;
		}
		why = end + 1;
	}
	out[n < outlen ? n : outlen - 1] = '\0';
	return out;
}

int sb_cli_request(const char *cmd, shmbus *bus, const char *op,
		   const char *topic, cJSON *req, struct sb_client_reply *rep)
{
	return sb_cli_request_all(cmd, bus, op, topic, req, NULL, rep);
}

const char *const sb_cli_list_arrays[] = {"topics", NULL};
const char *const sb_cli_stat_arrays[] = {"subscribers", "publishers", NULL};

int sb_cli_request_all(const char *cmd, shmbus *bus, const char *op,
		       const char *topic, cJSON *req, const char *const *arrays,
		       struct sb_client_reply *rep)
{
	int r;

	if (req == NULL) {
		req = cJSON_CreateObject();
	}
	if (req == NULL) {
		sb_client_reply_init(rep);
		return sb_cli_fail(SB_EXIT_ERROR, cmd, "out of memory");
	}
	r = arrays != NULL ? sb_client_call_all(bus, op, req, arrays, rep)
			   : sb_client_call(bus, op, req, rep);
	if (r == 0 && !cJSON_IsObject(rep->msg.result)) {
		r = -EPROTO;
	}
	if (r < 0) {
		char why[512];

		return sb_cli_fail_errno(
		    cmd, topic, r,
		    rep->msg.message != NULL
			? in_option_words(rep->msg.message, why, sizeof(why))
			: NULL);
	}
	return 0;
}

int sb_cli_stop_signals(void)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) {
		return -errno;
	}
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}
