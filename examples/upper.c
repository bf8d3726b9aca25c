/*
 * upper.c - request and reply in a few lines: "upper serve" answers each
 * request to the service "demo/upper" with its text in capitals; "upper
 * ask TEXT" sends TEXT and prints the answer. Run several servers: the
 * requests are shared among them; kill one while it is busy and its
 * requesters get -ECONNABORTED at once, not at their timeout.
 *
 * usage: upper serve | upper ask TEXT
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <shmbus/shmbus.h>

#define SERVICE "demo/upper"

static int serve(shmbus *bus)
{
	struct shmbus_reqref ref;
	shmbus_server *srv;
	char buf[65536];
	ssize_t n;
	int r = shmbus_serve_open(bus, SERVICE, &srv);

	if (r < 0) {
		fprintf(stderr, "serve: %s\n", shmbus_strerror(r));
		return 1;
	}
	while ((n = shmbus_serve_receive(srv, buf, sizeof(buf), &ref, -1)) >=
	       0) {
		for (ssize_t i = 0; i < n; i++) {
			buf[i] = (char)toupper((unsigned char)buf[i]);
		}
		/* Never waits: a requester that went away is -EPIPE. */
		r = shmbus_reply(srv, &ref, buf, (size_t)n);
		if (r < 0) {
			fprintf(stderr, "reply: %s\n", shmbus_strerror(r));
		}
	}
	fprintf(stderr, "receive: %s\n", shmbus_strerror((int)n));
	shmbus_serve_close(srv);
	return 1;
}

static int ask(shmbus *bus, const char *text)
{
	char out[65536];
	ssize_t n = shmbus_request(bus, SERVICE, text, strlen(text), out,
				   sizeof(out), 1000);

	if (n < 0) {
		/* -EHOSTUNREACH: nobody serves it; -ETIMEDOUT: no answer. */
		fprintf(stderr, "%s: %s\n", SERVICE, shmbus_strerror((int)n));
		return 1;
	}
	printf("%.*s\n", (int)n, out);
	return 0;
}

int main(int argc, char **argv)
{
	shmbus *bus;
	int r;

	if (!(argc == 2 && strcmp(argv[1], "serve") == 0) &&
	    !(argc == 3 && strcmp(argv[1], "ask") == 0)) {
		fputs("usage: upper serve | upper ask TEXT\n", stderr);
		return 2;
	}
	r = shmbus_connect(NULL, "upper", &bus);
	if (r < 0) {
		fprintf(stderr, "connect: %s\n", shmbus_strerror(r));
		return 1;
	}
	r = argc == 2 ? serve(bus) : ask(bus, argv[2]);
	shmbus_close(bus);
	return r;
}
