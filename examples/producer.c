/*
 * producer.c - the smallest useful shmbus publisher: connects to the broker,
 * opens a topic and publishes COUNT numbered text messages. It shows the
 * publishing half of the bus API and how to report its errors.
 *
 * usage: producer [TOPIC [COUNT]]   (defaults: "demo", 10)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmbus/shmbus.h>

static const char usage[] =
    "usage: producer [TOPIC [COUNT]]\n"
    "Publishes COUNT numbered messages (default 10) to TOPIC (default "
    "demo).\n";

/* COUNT as a whole number >= 1, or -1. */
static long parse_count(const char *s)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && n >= 1 ? n : -1;
}

/* Says what was wrong, then how to use the program: exit status 2. */
static int bad_usage(const char *what, const char *arg)
{
	fprintf(stderr, "producer: %s '%s'\n%s", what, arg, usage);
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
		return bad_usage("COUNT must be a whole number >= 1, not",
				 argv[2]);
	}
	return -1;
}

int main(int argc, char **argv)
{
	const char *topic = "demo";
	long count = 10;
	int r = parse_args(argc, argv, &topic, &count);
	shmbus *bus = NULL;
	shmbus_pub *pub = NULL;

	if (r >= 0) {
		return r;
	}
	/* NULL: the socket every shmbus program agrees on ($SHMBUS_SOCKET,
	 * else $XDG_RUNTIME_DIR/shmbus/shmbusd.sock, else /tmp/shmbus-$UID). */
	r = shmbus_connect(NULL, "producer", &bus);
	if (r < 0) {
		fprintf(stderr, "producer: connect: %s\n", shmbus_strerror(r));
		return 1;
	}
	/* A missing topic is created with the broker's defaults. */
	r = shmbus_pub_open(bus, topic, &pub);
	if (r < 0) {
		fprintf(stderr, "producer: open \"%s\": %s\n", topic,
			shmbus_strerror(r));
		shmbus_close(bus);
		return 1;
	}
	for (long i = 1; i <= count && r == 0; i++) {
		char msg[64];
		int len = snprintf(msg, sizeof(msg), "message %ld", i);

		/* Wait up to one second if the ring is full (block policy). */
		r = shmbus_publish(pub, msg, (size_t)len, 1000);
		if (r < 0) {
			fprintf(stderr, "producer: publish #%ld: %s\n", i,
				shmbus_strerror(r));
		}
	}
	if (r == 0) {
		printf("published %ld message%s to \"%s\"\n", count,
		       count == 1 ? "" : "s", topic);
	}
	shmbus_pub_close(pub);
	shmbus_close(bus);
	return r == 0 ? 0 : 1;
}
