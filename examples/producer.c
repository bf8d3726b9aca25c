/*
 * producer.c - the smallest useful shmbus publisher: connects to the broker,
 * opens a topic and publishes COUNT numbered text messages. It shows the
 * publishing half of the bus API and how to report its errors.
 *
 * usage: producer [TOPIC [COUNT]]   (defaults: "demo", 10)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmbus/shmbus.h>

int main(int argc, char **argv)
{
	const char *topic = argc > 1 ? argv[1] : "demo";
	long count = argc > 2 ? strtol(argv[2], NULL, 10) : 10;
	shmbus *bus = NULL;
	shmbus_pub *pub = NULL;
	int r;

	if (count < 1) {
		fprintf(stderr, "usage: producer [TOPIC [COUNT]]\n");
		return 64;
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
