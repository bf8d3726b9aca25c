/*
 * uv_consumer.c - a subscriber inside a libuv event loop: the loop polls the
 * descriptor from shmbus_sub_fd(), which is readable while messages wait,
 * and each readable event drains the topic without waiting: how a program
 * with its own event loop receives from shmbus.
 * usage: uv_consumer [TOPIC [COUNT]]   (defaults: "demo", 0 = until Ctrl-C)
 */
#define _POSIX_C_SOURCE 200809L /* <uv.h> needs POSIX types under -std=c11 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmbus/shmbus.h>
#include <uv.h>

static shmbus_sub *sub;
static long count, received;
static uv_poll_t poller;
static uv_signal_t sigint;

static void stop_loop(void)
{
	uv_close((uv_handle_t *)&poller, NULL);
	uv_close((uv_handle_t *)&sigint, NULL);
}

/* Readable: take every waiting message with timeout 0. The descriptor stays
 * readable until a receive finds the topic empty (-EAGAIN). */
static void on_readable(uv_poll_t *handle, int status, int events)
{
	char buf[65536];
	ssize_t n;

	(void)handle;
	(void)events;
	if (status < 0) {
		fprintf(stderr, "uv_consumer: poll: %s\n", uv_strerror(status));
		stop_loop();
		return;
	}
	while ((n = shmbus_receive(sub, buf, sizeof(buf), 0)) >= 0) {
		printf("%.*s\n", (int)n, buf);
		if (++received == count) {
			stop_loop();
			return;
		}
	}
	if (n != -EAGAIN) {
		fprintf(stderr, "uv_consumer: receive: %s\n",
			shmbus_strerror((int)n));
		stop_loop();
	}
}

static void on_sigint(uv_signal_t *handle, int signum)
{
	(void)handle;
	(void)signum;
	stop_loop();
}

static const char usage[] =
    "usage: uv_consumer [TOPIC [COUNT]]\n"
    "Prints each message published to TOPIC (default demo), from a libuv\n"
    "loop, until COUNT have arrived (default 0: until Ctrl-C).\n";

/* COUNT as a whole number >= 0 (0: until Ctrl-C), or -1. */
static long parse_count(const char *s)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && n >= 0 ? n : -1;
}

/* Says what was wrong, then how to use the program: exit status 2. */
static int bad_usage(const char *what, const char *arg)
{
	fprintf(stderr, "uv_consumer: %s '%s'\n%s", what, arg, usage);
	return 2;
}

/*
 * Reads [TOPIC [COUNT]] into *topic and *stop_after. Returns -1 to go on, or
 * the status to exit with: 0 after --help, 2 after a bad argument.
 */
static int parse_args(int argc, char **argv, const char **topic,
		      long *stop_after)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		}
	}
	if (argc > 1 && argv[1][0] == '-') {
		return bad_usage("unknown option", argv[1]);
	}
	if (argc > 3) {
		return bad_usage("unexpected argument", argv[3]);
	}
	if (argc > 1) {
		*topic = argv[1];
	}
	if (argc > 2 && (*stop_after = parse_count(argv[2])) < 0) {
		return bad_usage("COUNT must be a whole number >= 0, not",
				 argv[2]);
	}
	return -1;
}

int main(int argc, char **argv)
{
	const char *topic = "demo";
	int r = parse_args(argc, argv, &topic, &count);
	uv_loop_t *loop;
	shmbus *bus = NULL;
	int fd;

	if (r >= 0) {
		return r;
	}
	loop = uv_default_loop();
	setvbuf(stdout, NULL, _IOLBF, 0); /* each line out at once */
	r = shmbus_connect(NULL, "uv_consumer", &bus);
	if (r < 0) {
		fprintf(stderr, "uv_consumer: connect: %s\n",
			shmbus_strerror(r));
		return 1;
	}
	r = shmbus_sub_open(bus, topic, SHMBUS_START_LATEST, &sub);
	shmbus_close(bus); /* the subscriber keeps the connection it needs */
	fd = r < 0 ? r : shmbus_sub_fd(sub);
	if (fd < 0) {
		fprintf(stderr, "uv_consumer: \"%s\": %s\n", topic,
			shmbus_strerror(fd));
		if (sub != NULL) {
			shmbus_sub_close(sub);
		}
		return 1;
	}
	uv_poll_init(loop, &poller, fd);
	uv_poll_start(&poller, UV_READABLE, on_readable);
	uv_signal_init(loop, &sigint);
	uv_signal_start(&sigint, on_sigint, SIGINT);
	printf("waiting on \"%s\"\n", topic);
	uv_run(loop, UV_RUN_DEFAULT); /* returns once both handles closed */
	printf("received %ld, lost %llu\n", received,
	       (unsigned long long)shmbus_sub_lost(sub));
	shmbus_sub_close(sub);
	return uv_loop_close(loop) == 0 ? 0 : 1;
}
