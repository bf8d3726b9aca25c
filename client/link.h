/*
 * link.h - one socket to one broker (link.c), as the connection (conn.c)
 * and its watcher (reconnect.c) use it. A link is owned by one thread at a
 * time: the connection's lock guards the installed one, and a link being
 * built for a reconnection is the watcher's alone until it is installed.
 * Prefix: sb_link_. Not installed.
 */
#ifndef SB_CLIENT_LINK_H
#define SB_CLIENT_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cJSON.h>

#include "client/bus_internal.h"
#include "wire/frame.h"

/* Read buffer per connection; replies are small, larger ones are gathered
 * by the decoder. */
#define RBUF_SIZE 16384

/* One socket to one broker, and the request state that goes with it. A
 * reconnection builds a new link privately (connect and hello without the
 * bus lock), then installs it under the lock. */
struct link {
	int fd;
	int stop_fd; /* the bus's eventfd: a reply wait ends when it fires */
	uid_t broker_uid; /* the listener's uid (SO_PEERCRED), trusted */
	uint64_t next_id;
	size_t max_frame;  /* the broker's limits.max_frame */
	bool close_notice; /* the broker takes close as a notice (hello) */
	struct sb_frame_decoder dec;
	const char *in; /* input received but not yet decoded, in rbuf */
	size_t inlen;
	char rbuf[RBUF_SIZE];
};

/* Connects to `path` (NULL: the default socket), checks who listens and
 * says hello as `name`, with replies waited for at most `timeout_ms` and
 * cut short when `stop_fd` fires. Returns 0 with *out, the hello result
 * and our owner token set, or an error. */
int sb_link_open(const char *path, const char *name, int stop_fd,
		 int timeout_ms, struct link **out, cJSON **hello_out,
		 uint32_t *client_id);

/* Closes the socket and frees `ln` (NULL is fine). */
void sb_link_free(struct link *ln);

/* Sends `op` with `req` (a notice when `id` is NULL); see link.c. */
int sb_link_send(struct link *ln, const char *op, cJSON *req, uint64_t *id,
		 const int *fds, int nfds, int timeout_ms, int *conn_err);

/* Sends one request and reads its reply; see link.c. */
int sb_link_call(struct link *ln, const char *op, cJSON *req, const int *fds,
		 int nfds, int timeout_ms, struct sb_client_reply *rep,
		 int *conn_err);

/* Reads the next frame as a JSON object: an event, which has no id (a
 * watch's own link reads nothing else). Returns 0 with *out (the caller's
 * to delete), -EAGAIN (timeout_ms 0 and nothing there), -ETIMEDOUT,
 * -ECONNRESET (the broker went away) or -EPROTO. */
int sb_link_read_event(struct link *ln, int timeout_ms, cJSON **out);

#endif
