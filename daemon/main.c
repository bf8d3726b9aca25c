/*
 * main.c - shmbusd's command line: flags, the config file (or built-in
 * defaults), the socket path, then the broker. Exit status: 0 after a clean
 * shutdown, 1 when the broker cannot run (socket in use, no memory), 2 for
 * an invalid config file, 64 for bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/broker.h"
#include "daemon/log.h"

#define EXIT_RUNTIME 1
#define EXIT_CONFIG  2
#define EXIT_USAGE   64

static const char USAGE[] =
    "usage: shmbusd [--config FILE] [--socket PATH] [--socket-mode MODE]\n"
    "               [--socket-group GROUP] [--foreground]\n"
    "               [--log-level error|warn|info|debug] [--help] "
    "[--version]\n"
    "\n"
    "The shmbus broker. It always runs in the foreground and logs to\n"
    "stderr; let a supervisor (systemd, runit, a terminal) daemonise it.\n"
    "\n"
    "  --config FILE    JSON configuration (shmbusd(8), CONFIGURATION);\n"
    "                   without it, built-in defaults. SIGHUP reloads it.\n"
    "  --socket PATH    listen here (wins over socket.path in the file);\n"
    "                   default $SHMBUS_SOCKET, else\n"
    "                   $XDG_RUNTIME_DIR/shmbus/shmbusd.sock, else\n"
    "                   /tmp/shmbus-$UID/shmbusd.sock\n"
    "  --socket-mode MODE  the socket's permissions, octal (\"0660\": its\n"
    "                   group may connect); wins over socket.mode;\n"
    "                   default 0600\n"
    "  --socket-group GROUP  the socket's group, a name or a gid (wins\n"
    "                   over socket.group); default the broker's group\n"
    "  --foreground     accepted for compatibility: always the case\n"
    "  --log-level L    error, warn, info (default) or debug; wins over\n"
    "                   the file\n"
    "  --help           this text\n"
    "  --version        the broker's version\n"
    "\n"
    "Manual: shmbusd(8). Every field of the file: config.md in the\n"
    "documentation directory (PREFIX/share/doc/shmbus/config.md).\n";

static int parse_level(const char *s)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};

	for (int i = 0; i < 4; i++) {
		if (strcmp(s, names[i]) == 0) {
			return i;
		}
	}
	return -1;
}

/* Permission bits as octal digits ("0660", "660"), at most 0777, as
 * socket.mode in the file; -1 otherwise. */
static int64_t parse_mode(const char *s)
{
	int64_t mode = 0;
	size_t n = 0;

	for (; s[n] >= '0' && s[n] <= '7' && n < 5; n++) {
		mode = mode * 8 + (s[n] - '0');
	}
	return n > 0 && n <= 4 && s[n] == '\0' && mode <= 0777 ? mode : -1;
}

/* A group name, or a decimal gid (0 to 4294967294, as socket.group in the
 * file); -1 for an unknown name or a bad number. */
static int64_t parse_group(const char *s)
{
	struct group gr, *found = NULL;
	char buf[16384];
	char *end;
	unsigned long long v;

	if (s[0] >= '0' && s[0] <= '9') {
		errno = 0;
		v = strtoull(s, &end, 10);
		return errno == 0 && *end == '\0' && v <= 4294967294ull
			   ? (int64_t)v
			   : -1;
	}
	if (s[0] == '\0' || getgrnam_r(s, &gr, buf, sizeof(buf), &found) != 0 ||
	    found == NULL) {
		return -1;
	}
	return (int64_t)found->gr_gid;
}

/* One line naming the flag and the problem, then the hint. */
static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "shmbusd: %s \"%s\" (see shmbusd --help)\n", what, arg);
	return EXIT_USAGE;
}

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, struct sbd_broker *b)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"socket", required_argument, NULL, 's'},
	    {"foreground", no_argument, NULL, 'f'},
	    {"log-level", required_argument, NULL, 'l'},
	    {"socket-mode", required_argument, NULL, 'm'},
	    {"socket-group", required_argument, NULL, 'g'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			b->config_path = optarg;
			break;
		case 's':
			b->flag_socket = optarg;
			break;
		case 'f':
			break;
		case 'l':
			b->flag_log_level = parse_level(optarg);
			if (b->flag_log_level < 0) {
				return usage_error(
				    "--log-level: must be error, "
				    "warn, info or debug, got",
				    optarg);
			}
			break;
		case 'm':
			b->flag_socket_mode = parse_mode(optarg);
			if (b->flag_socket_mode < 0) {
				return usage_error(
				    "--socket-mode: must be octal digits from "
				    "0000 to 0777, such as 0660, got",
				    optarg);
			}
			break;
		case 'g':
			b->flag_socket_group = parse_group(optarg);
			if (b->flag_socket_group < 0) {
				return usage_error(
				    "--socket-group: must be a known group "
				    "name or a gid from 0 to 4294967294, got",
				    optarg);
			}
			break;
		case 'h':
			fputs(USAGE, stdout);
			return 0;
		case 'V':
			printf("shmbusd %s (protocol %d)\n", SBD_VERSION,
			       SB_MSG_PROTOCOL_VERSION);
			return 0;
		default:
			return usage_error("unknown option or missing "
					   "value:",
					   argv[optind - 1]);
		}
	}
	if (optind < argc) {
		return usage_error("unexpected argument", argv[optind]);
	}
	return -1;
}

static int load_config(struct sbd_broker *b)
{
	char err[512];

	if (b->config_path == NULL) {
		sb_config_defaults(&b->cfg);
	} else if (sb_config_load_file(b->config_path, &b->cfg, err,
				       sizeof(err)) < 0) {
		fprintf(stderr, "shmbusd: %s\n", err);
		return EXIT_CONFIG;
	}
	sbd_broker_apply_flags(b, &b->cfg);
	return -1;
}

int main(int argc, char **argv)
{
	static struct sbd_broker broker; /* large: its read buffer */
	struct sbd_broker *b = &broker;
	int r;

	b->flag_log_level = -1;
	b->flag_socket_mode = -1;
	b->flag_socket_group = -1;
	r = parse_args(argc, argv, b);
	if (r < 0) {
		r = load_config(b);
	}
	if (r >= 0) {
		return r;
	}
	r = sbd_broker_socket_path(b, &b->cfg, b->socket_path,
				   sizeof(b->socket_path));
	if (r < 0) {
		fprintf(stderr, "shmbusd: socket path: %s (at most %d bytes)\n",
			strerror(-r), SB_SOCKET_PATH_MAX);
		sb_config_free(&b->cfg);
		return b->flag_socket != NULL ? EXIT_USAGE : EXIT_RUNTIME;
	}
	r = sbd_broker_run(b);
	sb_config_free(&b->cfg);
	return r;
}
