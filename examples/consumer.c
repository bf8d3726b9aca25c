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

#include <shmbus/shmbus.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	const char *topic = argc > 1 ? argv[1] : "demo";
	long count = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
	long received = 0;
	char buf[65536]; /* the broker's default max_message */
	shmbus *bus = NULL;
	shmbus_sub *sub = NULL;
	int r;

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
