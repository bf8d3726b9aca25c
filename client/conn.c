/*
 * conn.c - the bus client's connection to the broker: connect (link.c) and
 * its watcher thread (reconnect.c), then synchronous requests on the
 * current link, one at a time under a mutex. The connection is reference
 * counted so that publishers and subscribers can outlive shmbus_close().
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "client/conn_internal.h"
#include "wire/sockpath.h"

const cJSON *sb_client_hello(const shmbus *bus)
{
	return bus != NULL ? bus->hello : NULL;
}

uint32_t sb_client_id(shmbus *bus)
{
	uint32_t id;

	pthread_mutex_lock(&bus->lock);
	id = bus->client_id;
	pthread_mutex_unlock(&bus->lock);
	return id;
}

void sb_client_ref(shmbus *bus)
{
	/* relaxed: taking a reference needs no ordering; the caller already
	 * holds one, so the object cannot go away meanwhile. */
	atomic_fetch_add_explicit(&bus->refs, 1, memory_order_relaxed);
}

static void destroy(shmbus *bus)
{
	sb_conn_stop_watcher(bus);
	sb_link_free(bus->link);
	if (bus->stop_fd >= 0) {
		close(bus->stop_fd);
	}
	cJSON_Delete(bus->hello);
	sb_linger_fini(&bus->linger);
	pthread_mutex_destroy(&bus->lock);
	free(bus);
}

void sb_client_unref(shmbus *bus)
{
	/* acq_rel: release orders this holder's use of the connection before
	 * the drop; the last holder's acquire sees every other holder's use
	 * before it frees the object (pairs with the other drops). */
	if (atomic_fetch_sub_explicit(&bus->refs, 1, memory_order_acq_rel) ==
	    1) {
		destroy(bus);
	}
}

int sb_client_usable(shmbus *bus)
{
	int ok;

	pthread_mutex_lock(&bus->lock);
	ok = bus->error == 0 && bus->link != NULL;
	pthread_mutex_unlock(&bus->lock);
	return ok;
}

struct sb_linger *sb_client_linger(shmbus *bus)
{
	return &bus->linger;
}

uint64_t sb_client_reconnects(shmbus *bus)
{
	uint64_t n;

	pthread_mutex_lock(&bus->lock);
	n = bus->reconnects;
	pthread_mutex_unlock(&bus->lock);
	return n;
}

/* A request on the installed link, with bus->lock held. */
int sb_conn_call_locked(shmbus *bus, const char *op, cJSON *req, const int *fds,
			int nfds, struct sb_client_reply *rep)
{
	int conn_err, r;

	if (bus->error != 0 || bus->link == NULL) {
		return -ECONNRESET;
	}
	rep->gen = bus->gen;
	rep->broker_uid = bus->link->broker_uid;
	r = sb_link_call(bus->link, op, req, fds, nfds,
			 SB_CLIENT_REPLY_TIMEOUT_MS, rep, &conn_err);
	if (conn_err) {
		bus->error = r;
	}
	return r;
}

int sb_client_call(shmbus *bus, const char *op, cJSON *req,
		   struct sb_client_reply *rep)
{
	int r;

	if (rep != NULL) {
		sb_client_reply_init(rep);
	}
	if (bus == NULL || op == NULL || req == NULL || rep == NULL ||
	    !cJSON_IsObject(req)) {
		cJSON_Delete(req);
		return -EINVAL;
	}
	pthread_mutex_lock(&bus->lock);
	r = sb_conn_call_locked(bus, op, req, NULL, 0, rep);
	pthread_mutex_unlock(&bus->lock);
	cJSON_Delete(req);
	return r;
}

int sb_client_topic_call(shmbus *bus, const struct sb_client_topic *t,
			 const char *op, cJSON *req,
			 struct sb_client_reply *rep)
{
	int r = -ENOTCONN;

	sb_client_reply_init(rep);
	if (req == NULL) {
		return -ENOMEM;
	}
	pthread_mutex_lock(&bus->lock);
	if (t->handle >= 0) {
		r = sb_msg_add_int(req, "handle", t->handle) != NULL
			? sb_conn_call_locked(bus, op, req, NULL, 0, rep)
			: -ENOMEM;
	}
	pthread_mutex_unlock(&bus->lock);
	cJSON_Delete(req);
	return r;
}

/* Our name for hello: the caller's, checked, or the program's, made
 * acceptable (printable ASCII, 1..64 characters). */
static int client_name(const char *given, char *out, size_t outlen)
{
	const char *src = given != NULL ? given : program_invocation_short_name;
	size_t n = 0;

	for (; src != NULL && src[n] != '\0'; n++) {
		unsigned char c = (unsigned char)src[n];

		if (given != NULL &&
		    (c < 0x20 || c > 0x7e || n >= NAME_MAX_LEN)) {
			return -EINVAL;
		}
		if (n + 1 >= outlen || n >= NAME_MAX_LEN) {
			break;
		}
		out[n] = (c < 0x20 || c > 0x7e) ? '?' : (char)c;
	}
	if (n == 0) {
		if (given != NULL) {
			return -EINVAL;
		}
		snprintf(out, outlen, "shmbus");
		return 0;
	}
	out[n] = '\0';
	return 0;
}

int shmbus_connect(const char *socket_path, const char *client_name_arg,
		   shmbus **out)
{
	shmbus *bus;
	int r;

	if (out == NULL) {
		return -EINVAL;
	}
	*out = NULL;
	bus = calloc(1, sizeof(*bus));
	if (bus == NULL) {
		return -ENOMEM;
	}
	bus->stop_fd = -1;
	r = client_name(client_name_arg, bus->name, sizeof(bus->name));
	if (r < 0) {
		free(bus);
		return r;
	}
	if (socket_path == NULL) {
		r = sb_socket_default_path(bus->path, sizeof(bus->path));
	} else if (strlen(socket_path) >= sizeof(bus->path)) {
		r = -ENAMETOOLONG;
	} else {
		memcpy(bus->path, socket_path, strlen(socket_path) + 1);
	}
	if (r < 0) {
		free(bus);
		return r;
	}
	atomic_init(&bus->refs, 1);
	bus->owner_pid = getpid();
	r = pthread_mutex_init(&bus->lock, NULL);
	if (r != 0) {
		free(bus);
		return -r;
	}
	r = sb_linger_init(&bus->linger);
	if (r < 0) {
		pthread_mutex_destroy(&bus->lock);
		free(bus);
		return r;
	}
	bus->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (bus->stop_fd < 0) {
		r = -errno;
	}
	if (r == 0) {
		r = sb_link_open(bus->path, bus->name, bus->stop_fd,
				 SB_CLIENT_REPLY_TIMEOUT_MS, &bus->link,
				 &bus->hello, &bus->client_id);
	}
	if (r == 0) {
		bus->gen = 1;
		r = sb_conn_start_watcher(bus);
	}
	if (r < 0) {
		destroy(bus);
		return r;
	}
	*out = bus;
	return 0;
}

int shmbus_close(shmbus *bus)
{
	if (bus == NULL) {
		return -EINVAL;
	}
	sb_client_unref(bus);
	return 0;
}
