/*
 * main.c - the `shmbus` command: finds the subcommand, handles the options
 * every subcommand shares (--socket, --help), and turns failures into the
 * one-line report and exit status that the help documents, so that every
 * subcommand fails the same way and scripts can rely on the status.
 */
#include <stdio.h>
#include <string.h>

#include "wire/version.h"
#include "tools/cli.h"

/* One subcommand: its name, entry point and help text. */
struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary; /* one line for `shmbus --help` */
	const char *usage;   /* the whole `shmbus NAME --help` text */
};

/* Every subcommand, ended by an entry with a NULL name. */
static const struct command commands[] = {
    {"pub", sb_cli_pub, "publish messages (arguments, stdin lines or a file)",
     sb_cli_pub_usage},
    {"sub", sb_cli_sub, "print the messages of a topic", sb_cli_sub_usage},
    {"ls", sb_cli_ls, "list the topics", sb_cli_ls_usage},
    {"stat", sb_cli_stat, "counters of topics and their subscribers",
     sb_cli_stat_usage},
    {"top", sb_cli_top, "live message and byte rates of every topic",
     sb_cli_top_usage},
    {"create", sb_cli_create, "create a topic with chosen settings",
     sb_cli_create_usage},
    {"rm", sb_cli_rm, "remove a topic", sb_cli_rm_usage},
    {"evict", sb_cli_evict, "remove a subscriber that stopped reading",
     sb_cli_evict_usage},
    {"bench", sb_cli_bench, "measure rates and latency through a topic",
     sb_cli_bench_usage},
    {"req", sb_cli_req, "send a request to a service and print the reply",
     sb_cli_req_usage},
    {"reply", sb_cli_reply,
     "serve a service: answer requests (a message, echo, or a command)",
     sb_cli_reply_usage},
    {NULL, NULL, NULL, NULL},
};

static void usage(FILE *out)
{
	fputs("usage: shmbus [--socket PATH] COMMAND [ARGS...]\n"
	      "       shmbus --help | --version | help COMMAND\n"
	      "\n"
	      "The command line of the shmbus message bus: publish, "
	      "subscribe and inspect\n"
	      "topics, send requests to services and serve them, through "
	      "a running broker\n"
	      "(shmbusd).\n"
	      "\n"
	      "Commands:\n",
	      out);
	for (const struct command *c = commands; c->name != NULL; c++) {
		fprintf(out, "  %-8s %s\n", c->name, c->summary);
	}
	fputs("\n"
	      "Every command takes --help and --socket PATH. Without "
	      "--socket the broker\n"
	      "is found at $SHMBUS_SOCKET, else "
	      "$XDG_RUNTIME_DIR/shmbus/shmbusd.sock, else\n"
	      "/tmp/shmbus-$UID/shmbusd.sock.\n"
	      "\n"
	      "Exit status:\n"
	      "  0  success (and `sub`/`top`/`reply` ended by SIGINT or "
	      "SIGTERM)\n"
	      "  1  any other failure at run time\n"
	      "  2  bad usage: unknown option, bad argument, topic name "
	      "or size, or\n"
	      "     a setting the broker refuses as invalid\n"
	      "  3  no broker is listening on the socket\n"
	      "  4  no such topic (or service)\n"
	      "  5  permission denied (the socket, or the topic's or "
	      "service's access rules)\n"
	      "  6  timed out (sub --timeout before --count messages, req "
	      "--timeout before\n"
	      "     the reply, or a broker that did not answer in time)\n"
	      "  7  the topic was full (pub: after --timeout, or at once "
	      "with --timeout 0\n"
	      "     or the reject policy)\n"
	      "  8  a message, line, file or frame is larger than the "
	      "topic's max_message\n"
	      "     (or a request or reply larger than the service's)\n"
	      "  9  req: no server serves the service (no responders)\n"
	      "  10 req: the server went away (died) before it answered\n"
	      "  130, 143  pub ended by SIGINT or SIGTERM (sub, top and "
	      "reply exit 0)\n"
	      "On failure one line on stderr says what failed and why: "
	      "shmbus: WHAT: WHY\n",
	      out);
}

/* ---- dispatch ---------------------------------------------------------- */

static const struct command *find(const char *name)
{
	for (const struct command *c = commands; c->name != NULL; c++) {
		if (strcmp(c->name, name) == 0) {
			return c;
		}
	}
	return NULL;
}

/* `shmbus help [COMMAND]`. */
static int help(int argc, char **argv)
{
	const struct command *c;

	if (argc < 2) {
		usage(stdout);
		return SB_EXIT_OK;
	}
	if (argc > 2) {
		return sb_cli_fail(SB_EXIT_USAGE, "help",
				   "one command at a time (got %d)", argc - 1);
	}
	c = find(argv[1]);
	if (c == NULL) {
		return sb_cli_fail(SB_EXIT_USAGE, "help",
				   "unknown command \"%s\" (try 'shmbus "
				   "--help')",
				   argv[1]);
	}
	fputs(c->usage, stdout);
	return SB_EXIT_OK;
}

int main(int argc, char **argv)
{
	const struct command *c;
	int i = 1;

	/* Options before the command: the shared ones and the command's own
	 * --help/--version. */
	while (i < argc && argv[i][0] == '-') {
		const char *a = argv[i];

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return SB_EXIT_OK;
		}
		if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
			printf("shmbus %s\n", SB_VERSION);
			return SB_EXIT_OK;
		}
		if (strcmp(a, "--socket") == 0 && i + 1 < argc) {
			sb_cli_socket = argv[i + 1];
			i += 2;
			continue;
		}
		if (strncmp(a, "--socket=", 9) == 0) {
			sb_cli_socket = a + 9;
			i++;
			continue;
		}
		if (strcmp(a, "--socket") == 0) {
			return sb_cli_fail(SB_EXIT_USAGE, a, "needs a value");
		}
		return sb_cli_fail(SB_EXIT_USAGE, a,
				   "unknown option (try 'shmbus --help')");
	}
	if (i >= argc) {
		return sb_cli_fail(SB_EXIT_USAGE, "usage",
				   "no command given (try 'shmbus --help')");
	}
	if (strcmp(argv[i], "help") == 0) {
		return help(argc - i, argv + i);
	}
	c = find(argv[i]);
	if (c == NULL) {
		return sb_cli_fail(SB_EXIT_USAGE, argv[i],
				   "unknown command (try 'shmbus --help')");
	}
	return c->run(argc - i, argv + i);
}
