/*
 * reconnect.c - surviving a broker restart: each connection's watcher
 * thread notices the broker hang up, drops the link, reconnects with
 * jittered back-off and, under the lock, installs the new link and hands
 * every open topic back (topic_handles.c).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "client/conn_internal.h"

void sb_conn_stop_watcher(shmbus *bus)
{
	uint64_t one = 1;

	if (!bus->watching) {
		return;
	}
	/* A child of a fork has no watcher thread: only the process that
	 * started it may join it. */
	if (getpid() == bus->owner_pid) {
		while (write(bus->stop_fd, &one, sizeof(one)) < 0 &&
		       errno == EINTR) {
		}
		pthread_join(bus->watcher, NULL);
	}
	bus->watching = 0;
}

/* Forgets the current link: requests fail at once from now on, until a
 * reconnection. Only the watcher calls this. */
static void drop_link(shmbus *bus)
{
	struct link *ln;

	pthread_mutex_lock(&bus->lock);
	if (bus->error == 0) {
		bus->error = -ECONNRESET;
	}
	ln = bus->link;
	bus->link = NULL;
	for (struct sb_client_topic *t = bus->topics; t != NULL; t = t->next) {
		t->handle = -1;
	}
	pthread_mutex_unlock(&bus->lock);
	sb_link_free(ln);
}

/* Connects, says hello and, under the lock, installs the link and hands
 * every open topic back. Returns 0 or the error that ended the attempt. */
static int reconnect(shmbus *bus)
{
	struct link *ln;
	cJSON *hello;
	uint32_t client_id;
	int r = sb_link_open(bus->path, bus->name, bus->stop_fd,
			     SB_CLIENT_RECONNECT_TIMEOUT_MS, &ln, &hello,
			     &client_id);

	if (r < 0) {
		return r;
	}
	pthread_mutex_lock(&bus->lock);
	cJSON_Delete(bus->hello);
	bus->hello = hello;
	bus->link = ln;
	bus->error = 0;
	bus->gen++;
	bus->reconnects++;
	bus->client_id = client_id;
	for (struct sb_client_topic *t = bus->topics; t != NULL; t = t->next) {
		/* A refusal (a conflicting topic, a rule) leaves this topic
		 * without a handle; a connection error ends the round, and
		 * the watcher sees the shut-down socket and starts again. */
		(void)sb_conn_adopt_locked(bus, t);
		if (bus->error != 0) {
			r = bus->error;
			break;
		}
	}
	pthread_mutex_unlock(&bus->lock);
	return r;
}

/* A wait of about `ms`, jittered to between half and all of it. */
static int jitter(unsigned ms, uint32_t *seed)
{
	/* xorshift32: cheap, and each connection has its own state. */
	uint32_t x = *seed;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*seed = x;
	return (int)(ms / 2 + x % (ms / 2 + 1));
}

/*
 * The watcher thread, one per connection. While connected it sleeps in
 * poll on the socket for a hang-up (POLLRDHUP: the broker sends nothing
 * unasked, and replies, which only raise POLLIN, are read by the caller of
 * the request) and on stop_fd. On a hang-up it drops the link and retries
 * with back-off until a broker answers, then hands the open topics back.
 * It never takes part in publishing or receiving.
 */
static void *watch_main(void *arg)
{
	shmbus *bus = arg;
	unsigned delay = SB_CLIENT_BACKOFF_MIN_MS;
	uint32_t seed = (uint32_t)getpid() * 2654435761u ^
			(uint32_t)(uintptr_t)bus ^ (uint32_t)time(NULL);

	if (seed == 0) {
		seed = 1;
	}
	for (;;) {
		struct pollfd pfd[2] = {{.fd = bus->stop_fd, .events = POLLIN},
					{.fd = -1, .events = POLLRDHUP}};
		int timeout = -1;
		int r;

		/* Only this thread replaces bus->link, so reading it here
		 * without the lock is safe. */
		if (bus->link != NULL) {
			pfd[1].fd = bus->link->fd;
		} else {
			timeout = jitter(delay, &seed);
		}
		r = poll(pfd, 2, timeout);
		if (r < 0 && errno != EINTR) {
			break;
		}
		if ((pfd[0].revents & POLLIN) != 0) {
			break;
		}
		if (pfd[1].fd >= 0 && pfd[1].revents != 0) {
			drop_link(bus);
			delay = SB_CLIENT_BACKOFF_MIN_MS;
			continue;
		}
		if (bus->link != NULL || r != 0) {
			continue;
		}
		r = reconnect(bus);
		if (r == -ECANCELED) {
			break;
		}
		if (r < 0 && bus->link == NULL) {
			delay = delay * 2 > SB_CLIENT_BACKOFF_MAX_MS
				    ? SB_CLIENT_BACKOFF_MAX_MS
				    : delay * 2;
		} else {
			delay = SB_CLIENT_BACKOFF_MIN_MS;
		}
	}
	return NULL;
}

int sb_conn_start_watcher(shmbus *bus)
{
	sigset_t all, old;
	int r;

	/* The watcher takes no signals: they belong to the application. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&bus->watcher, NULL, watch_main, bus);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		return -r;
	}
	bus->watching = 1;
	return 0;
}
