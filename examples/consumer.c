/*
 * consumer.c - the smallest useful shmbus subscriber: opens a topic, prints
 * every message it receives, and on the way out says how many messages it
 * lost (overwritten before it read them). It shows the receiving half of
 * the bus API, with a timeout so that Ctrl-C is noticed.
 *
 * usage: consumer [TOPIC [COUNT]]   (defaults: "demo", 0 = until Ctrl-C)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmbus/shmbus.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static const char usage[] =
    "usage: consumer [TOPIC [COUNT]]\n"
    "Prints each message published to TOPIC (default demo) until COUNT have\n"
    "arrived (default 0: until Ctrl-C), then how many were lost.\n";

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
	fprintf(stderr, "consumer: %s '%s'\n%s", what, arg, usage);
	return 2;
}

/*
 * Reads [TOPIC [COUNT]] into *topic and *count. Returns -1 to go on, or
 * the status to exit with: 0 after --help, 2 after a bad argument.
 */
static int parse_args(int argc, char **argv, const char **topic, long *count)
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
	if (argc > 2 && (*count = parse_count(argv[2])) < 0) {
		return bad_usage("COUNT must be a whole number >= 0, not",
				 argv[2]);
	}
	return -1;
}

int main(int argc, char **argv)
{
	const char *topic = "demo";
	long count = 0;
	int r = parse_args(argc, argv, &topic, &count);
	long received = 0;
	char buf[65536]; /* the broker's default max_message */
	shmbus *bus = NULL;
	shmbus_sub *sub = NULL;

	if (r >= 0) {
		return r;
	}
	setvbuf(stdout, NULL, _IOLBF, 0); /* each line out at once */
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	r = shmbus_connect(NULL, "consumer", &bus);
	if (r < 0) {
		fprintf(stderr, "consumer: connect: %s\n", shmbus_strerror(r));
		return 1;
	}
	r = shmbus_sub_open(bus, topic, SHMBUS_START_LATEST, &sub);
	if (r < 0) {
		fprintf(stderr, "consumer: open \"%s\": %s\n", topic,
			shmbus_strerror(r));
		shmbus_close(bus);
		return 1;
	}
	printf("waiting on \"%s\"\n", topic);
	while (!stop && (count == 0 || received < count)) {
		/* Wake up twice a second to look at the stop flag. */
		ssize_t n = shmbus_receive(sub, buf, sizeof(buf), 500);

		if (n == -ETIMEDOUT) {
			continue;
		}
		if (n < 0) {
			fprintf(stderr, "consumer: receive: %s\n",
				shmbus_strerror((int)n));
			break;
		}
		received++;
		printf("%.*s\n", (int)n, buf);
	}
	printf("received %ld, lost %llu\n", received,
	       (unsigned long long)shmbus_sub_lost(sub));
	shmbus_sub_close(sub);
	shmbus_close(bus);
	return count == 0 || received == count ? 0 : 1;
}
