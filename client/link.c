/*
 * link.c - one socket to one broker: connecting and saying hello (after
 * checking who listens, trust.c), then requests and their replies. Each
 * reply is read with recvmsg through the frame decoder, so that the
 * descriptors it carries (SCM_RIGHTS, wire/fdpass.c) are collected and
 * never leaked; close may go as a notice, which has no reply to wait for.
 * A link knows nothing of the connection (conn.c) that installs it.
 */
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client/link.h"
#include "sys/barrier.h"
#include "sys/deadline.h"
#include "wire/fdpass.h"
#include "wire/sockpath.h"

/* Frame limit for the hello exchange, before the broker told us its own:
 * the largest max_frame its configuration allows. */
#define HELLO_MAX_FRAME (16u * 1024 * 1024)
#define MIN_MAX_FRAME	1024u

/* Room for more descriptors than a reply may carry, so that a few extra
 * ones are received (and closed) rather than truncated. */
#define CMSG_FDS (SB_CLIENT_MAX_FDS * 2)
static_assert(CMSG_FDS <= SB_FDPASS_ROOM_MAX, "a reply's descriptors fit");
static_assert(SB_CLIENT_MAX_FDS <= SB_FDPASS_MAX, "a request's too");

void sb_client_reply_init(struct sb_client_reply *rep)
{
	memset(rep, 0, sizeof(*rep));
	for (int i = 0; i < SB_CLIENT_MAX_FDS; i++) {
		rep->fds[i] = -1;
	}
	rep->broker_uid = (uid_t)-1;
}

static void close_fds(struct sb_client_reply *rep)
{
	for (int i = 0; i < rep->nfds; i++) {
		if (rep->fds[i] >= 0) {
			close(rep->fds[i]);
			rep->fds[i] = -1;
		}
	}
	rep->nfds = 0;
}

void sb_client_reply_fini(struct sb_client_reply *rep)
{
	if (rep == NULL) {
		return;
	}
	close_fds(rep);
	sb_msg_reply_fini(&rep->msg);
}

static struct link *link_new(int stop_fd)
{
	struct link *ln = calloc(1, sizeof(*ln));

	if (ln == NULL) {
		return NULL;
	}
	ln->fd = -1;
	ln->stop_fd = stop_fd;
	ln->next_id = 1;
	ln->max_frame = HELLO_MAX_FRAME;
	ln->in = ln->rbuf;
	if (sb_frame_decoder_init(&ln->dec, HELLO_MAX_FRAME) < 0) {
		free(ln);
		return NULL;
	}
	return ln;
}

void sb_link_free(struct link *ln)
{
	if (ln == NULL) {
		return;
	}
	if (ln->fd >= 0) {
		close(ln->fd);
	}
	sb_frame_decoder_fini(&ln->dec);
	free(ln);
}

/*
 * Waits until `ln`'s socket takes more bytes, for at most `w`'s timeout.
 * Returns 0, -ETIMEDOUT, -ECANCELED (stop_fd fired) or -errno.
 */
static int await_output(const struct link *ln, struct sb_wait *w)
{
	struct pollfd pfd[2] = {{.fd = ln->fd, .events = POLLOUT},
				{.fd = ln->stop_fd, .events = POLLIN}};
	const struct timespec *deadline = sb_wait_deadline(w);

	for (;;) {
		long long left = sb_deadline_remaining_ns(deadline);
		int r;

		if (left == 0) {
			return -ETIMEDOUT;
		}
		r = poll(pfd, 2, (int)((left + 999999) / 1000000));
		if (r < 0 && errno != EINTR) {
			return -errno;
		}
		if (r > 0) {
			return (pfd[1].revents & POLLIN) != 0 ? -ECANCELED : 0;
		}
	}
}

/*
 * Sends all of `buf` on `ln`, with `nfds` descriptors (SCM_RIGHTS) on its
 * first byte, waiting at most `timeout_ms` (> 0) for room in the socket: a
 * broker that stopped reading cannot hold a sender for ever, which matters
 * for notices, sent with no reply to wait for. A peer that went away is
 * -ECONNRESET; -ETIMEDOUT, -ECANCELED as for await_output().
 */
static int send_all(const struct link *ln, const char *buf, size_t len,
		    const int *fds, int nfds, int timeout_ms)
{
	/* The clock is read only if the socket is ever full. */
	struct sb_wait w = sb_wait_start(timeout_ms);

	while (len > 0) {
		/* MSG_NOSIGNAL (sb_fdpass_send): a dead broker must not kill
		 * us with SIGPIPE. */
		ssize_t n = sb_fdpass_send(ln->fd, buf, len, fds, nfds);

		if (n < 0) {
			int r;

			if (n == -EINTR) {
				continue;
			}
			if (n == -EPIPE || n == -ECONNRESET) {
				return -ECONNRESET;
			}
			if (n != -EAGAIN) {
				return (int)n;
			}
			r = await_output(ln, &w);
			if (r < 0) {
				return r;
			}
			continue;
		}
		/* The descriptors went with the first bytes sent. */
		nfds = 0;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* recvmsg attempts (one system call each) before a reply wait sleeps in
 * poll. */
#define REPLY_SPINS 50

/*
 * Waits until the socket may have input: at once for the first
 * REPLY_SPINS `tries` (a reply usually comes within microseconds, and going
 * to sleep and being woken costs tens of them on a virtual machine), then
 * in poll. Returns 0, -ETIMEDOUT, -ECANCELED (stop_fd fired) or -errno.
 */
static int await_input(const struct link *ln, const struct timespec *deadline,
		       long long tries)
{
	struct pollfd pfd[2] = {{.fd = ln->fd, .events = POLLIN},
				{.fd = ln->stop_fd, .events = POLLIN}};

	for (;;) {
		long long left = sb_deadline_remaining_ns(deadline);
		int r;

		if (left == 0) {
			return -ETIMEDOUT;
		}
		if (tries < REPLY_SPINS) {
			return 0;
		}
		r = poll(pfd, 2, (int)((left + 999999) / 1000000));
		if (r < 0 && errno != EINTR) {
			return -errno;
		}
		if (r > 0) {
			return (pfd[1].revents & POLLIN) != 0 ? -ECANCELED : 0;
		}
	}
}

/* Receives the next chunk into ln->rbuf, with its descriptors. Returns 0,
 * -ECONNRESET (end of stream), -ETIMEDOUT, -EPROTO (descriptors cut off),
 * -ECANCELED (the connection is being closed: its stop_fd fired). */
static int recv_chunk(struct link *ln, const struct timespec *deadline,
		      struct sb_client_reply *rep, int *extra)
{
	struct sb_fdpass_in in = {
	    .fds = rep->fds, .max = SB_CLIENT_MAX_FDS, .room = CMSG_FDS};
	ssize_t n;
	int r;

	for (long long tries = 0;; tries++) {
		r = await_input(ln, deadline, tries);
		if (r < 0) {
			return r;
		}
		/* Close-on-exec (sb_fdpass_recv): descriptors must not leak
		 * into a child that another thread execs meanwhile. */
		in.n = rep->nfds;
		in.extra = *extra;
		n = sb_fdpass_recv(ln->fd, ln->rbuf, sizeof(ln->rbuf), &in);
		rep->nfds = in.n;
		*extra = in.extra;
		if (n < 0) {
			if (n == -EINTR || n == -EAGAIN) {
				sb_cpu_relax();
				continue;
			}
			return (int)n;
		}
		if (in.truncated) {
			return -EPROTO;
		}
		if (n == 0) {
			return -ECONNRESET;
		}
		ln->in = ln->rbuf;
		ln->inlen = (size_t)n;
		return 0;
	}
}

/* Reads the next frame's payload (pointing into ln->rbuf or the decoder's
 * buffer, valid until the next read). Returns 0 or a connection error. */
static int next_frame(struct link *ln, const struct timespec *deadline,
		      struct sb_client_reply *rep, int *extra,
		      const char **payload, size_t *len)
{
	int r;

	for (;;) {
		/* Decode only when there is input: the decoder is never
		 * handed an empty (possibly NULL) chunk. */
		if (ln->inlen > 0) {
			r = sb_frame_decoder_next(&ln->dec, &ln->in, &ln->inlen,
						  payload, len);
			if (r < 0) {
				/* A frame over the limit or of length 0: the
				 * broker broke the framing rules. */
				return r == -ENOMEM ? r : -EPROTO;
			}
			if (r == 1) {
				return 0;
			}
		}
		/* A stream cut inside a frame is still the broker going
		 * away, as far as the caller can tell. */
		r = recv_chunk(ln, deadline, rep, extra);
		if (r < 0) {
			return r;
		}
	}
}

/* Reads frames until the reply to `id`. Returns 0 with rep->msg parsed
 * (an error reply included), or a connection error. */
static int read_reply(struct link *ln, uint64_t id, int timeout_ms,
		      struct sb_client_reply *rep, int *extra)
{
	struct timespec dl;
	const struct timespec *deadline = sb_deadline_init(timeout_ms, &dl);
	const char *payload;
	size_t len;
	int r = next_frame(ln, deadline, rep, extra, &payload, &len);

	if (r < 0) {
		return r;
	}
	if (sb_msg_parse_reply(payload, len, &rep->msg, NULL) < 0) {
		return -EPROTO;
	}
	if (!rep->msg.has_id && rep->msg.code != 0) {
		/* "id": null: the broker's last word on this connection,
		 * which it closes (a refused connection: EUSERS; a broken
		 * frame: EPROTO, EMSGSIZE). Its code says why. */
		return rep->msg.code;
	}
	if (!rep->msg.has_id || rep->msg.id != id) {
		/* A reply to something we did not ask: the stream is out
		 * of step. */
		return -EPROTO;
	}
	return 0;
}

/* Checks the descriptors against the reply's "fds" count. */
static int check_fds(struct sb_client_reply *rep, int extra)
{
	int64_t want = 0;

	if (rep->msg.code != 0) {
		close_fds(rep);
		return extra == 0 ? 0 : -EPROTO;
	}
	if (sb_msg_get_int_opt(rep->msg.result, "fds", 0, SB_CLIENT_MAX_FDS, 0,
			       &want, NULL) < 0 ||
	    extra != 0 || want != rep->nfds) {
		close_fds(rep);
		return -EPROTO;
	}
	return 0;
}

/*
 * A transport failure on `ln`: no more requests travel on this socket.
 * Shutting it down lets the broker see the end now and release what we
 * held, and lets the watcher thread notice (POLLHUP) and reconnect.
 */
static void link_fail(struct link *ln)
{
	shutdown(ln->fd, SHUT_RDWR);
}

/* How long to look for the broker's last word on a closed connection: it
 * is already in the socket, or never comes (end of file at once). */
#define LAST_WORD_TIMEOUT_MS 100

static int read_reply(struct link *ln, uint64_t id, int timeout_ms,
		      struct sb_client_reply *rep, int *extra);

/*
 * The broker closed the connection as we sent: a refusal it sent first
 * ("id": null, EUSERS when it takes no more clients of our uid or at
 * all) says why, better than `err`. Returns its code, or `err`.
 */
static int last_word(struct link *ln, int err)
{
	struct sb_client_reply rep;
	int extra = 0;
	int r;

	sb_client_reply_init(&rep);
	r = read_reply(ln, 0, LAST_WORD_TIMEOUT_MS, &rep, &extra);
	if (r < 0 && !rep.msg.has_id && rep.msg.code == r) {
		err = r;
	}
	sb_client_reply_fini(&rep);
	return err;
}

/*
 * Adds "op" (and "id" unless id is NULL: a notice) to `req`, frames it and
 * sends it on `ln` with `nfds` descriptors. Returns 0 with *id set to the
 * request's id, a local error with nothing sent (the connection is still
 * fine), or a transport error with *conn_err set to 1 and the link failed.
 */
int sb_link_send(struct link *ln, const char *op, cJSON *req, uint64_t *id,
		 const int *fds, int nfds, int timeout_ms, int *conn_err)
{
	char *frame = NULL;
	ssize_t flen;
	int r;

	*conn_err = 0;
	if (cJSON_AddStringToObject(req, "op", op) == NULL) {
		return -ENOMEM;
	}
	if (id != NULL) {
		*id = ln->next_id++;
		if (sb_msg_add_int(req, "id", (int64_t)*id) == NULL) {
			return -ENOMEM;
		}
	}
	if (nfds > 0) {
		if (sb_msg_add_int(req, "fds", nfds) == NULL) {
			return -ENOMEM;
		}
	}
	flen = sb_msg_to_frame(req, ln->max_frame, &frame);
	if (flen < 0) {
		/* Nothing was sent: the connection is still fine. */
		return (int)flen;
	}
	r = send_all(ln, frame, (size_t)flen, fds, nfds, timeout_ms);
	free(frame);
	if (r == -ECONNRESET) {
		r = last_word(ln, r);
	}
	if (r < 0) {
		*conn_err = 1;
		link_fail(ln);
	}
	return r;
}

/*
 * Sends one request on `ln` (with `nfds` descriptors) and reads its reply.
 * The caller owns `ln` exclusively: the bus lock for the installed link,
 * or a link not installed yet. Returns the reply's code (0 or the error it
 * names), or a connection error (negative, with *conn_err set to 1).
 */
int sb_link_call(struct link *ln, const char *op, cJSON *req, const int *fds,
		 int nfds, int timeout_ms, struct sb_client_reply *rep,
		 int *conn_err)
{
	uint64_t id;
	int extra = 0;
	int r;

	r = sb_link_send(ln, op, req, &id, fds, nfds, timeout_ms, conn_err);
	if (r < 0) {
		return r;
	}
	/* The broker answers a connection's requests in order and sends
	 * nothing for a notice, so the next frame is this request's reply. */
	r = read_reply(ln, id, timeout_ms, rep, &extra);
	if (r == 0) {
		r = check_fds(rep, extra);
	}
	if (r < 0) {
		close_fds(rep);
		*conn_err = 1;
		link_fail(ln);
		return r;
	}
	return rep->msg.code;
}

static int open_socket(const char *path, int *fd_out)
{
	struct sockaddr_un addr;
	char def[SB_SOCKET_PATH_MAX + 1];
	int fd, r;

	if (path == NULL) {
		r = sb_socket_default_path(def, sizeof(def));
		if (r < 0) {
			return r;
		}
		path = def;
	}
	if (path[0] == '\0') {
		return -EINVAL;
	}
	if (strlen(path) >= sizeof(addr.sun_path)) {
		return -ENAMETOOLONG;
	}
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	memcpy(addr.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return -errno;
	}
	while (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		if (errno == EINTR) {
			continue;
		}
		r = -errno;
		close(fd);
		return r;
	}
	*fd_out = fd;
	return 0;
}

/* Whether the hello result's "notices" names `op`: 1, 0 (not named, or no
 * "notices" at all: a broker from before notices), or -EPROTO when it is
 * not an array of strings. */
static int takes_notice(const cJSON *result, const char *op)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(result, "notices");
	const cJSON *item;
	int found = 0;

	if (list == NULL) {
		return 0;
	}
	if (!cJSON_IsArray(list)) {
		return -EPROTO;
	}
	cJSON_ArrayForEach(item, list)
	{
		if (!cJSON_IsString(item)) {
			return -EPROTO;
		}
		found |= strcmp(item->valuestring, op) == 0;
	}
	return found;
}

/* Checks the hello result, duplicates it into *out and sets the link's
 * frame limit and notices to the broker's. */
static int take_hello(struct link *ln, const cJSON *result, cJSON **out,
		      uint32_t *client_id)
{
	const cJSON *limits;
	int64_t version, max_frame, client = 0;
	int notice = takes_notice(result, "close");

	if (sb_msg_get_int(result, "version", 0, SB_MSG_INT_MAX, &version,
			   NULL) < 0 ||
	    version != SB_MSG_PROTOCOL_VERSION ||
	    sb_msg_get_object(result, "limits", &limits, NULL) < 0 ||
	    sb_msg_get_int(limits, "max_frame", MIN_MAX_FRAME, HELLO_MAX_FRAME,
			   &max_frame, NULL) < 0 ||
	    sb_msg_get_int_opt(result, "client", 0, UINT32_MAX, 0, &client,
			       NULL) < 0 ||
	    notice < 0) {
		return -EPROTO;
	}
	*out = cJSON_Duplicate(result, 1);
	if (*out == NULL) {
		return -ENOMEM;
	}
	*client_id = (uint32_t)client;
	ln->max_frame = (size_t)max_frame;
	ln->close_notice = notice == 1;
	/* From now on replies are held to the broker's own limit. Swap the
	 * decoder only on a frame boundary with nothing pending (always the
	 * case: the broker sends nothing unasked, and events only after a
	 * topic_watch). */
	if (ln->inlen == 0) {
		sb_frame_decoder_fini(&ln->dec);
		if (sb_frame_decoder_init(&ln->dec, ln->max_frame) < 0) {
			return -EPROTO;
		}
	}
	return 0;
}

/* Connects a new link and says hello on it. Returns 0 with *out set (and
 * the hello result and our owner token), or an error. */
int sb_link_open(const char *path, const char *name, int stop_fd,
		 int timeout_ms, struct link **out, cJSON **hello_out,
		 uint32_t *client_id)
{
	struct sb_client_reply rep;
	struct link *ln = link_new(stop_fd);
	cJSON *req = cJSON_CreateObject();
	int conn_err, r;

	sb_client_reply_init(&rep);
	r = ln == NULL || req == NULL ? -ENOMEM : 0;
	if (r == 0 &&
	    (sb_msg_add_int(req, "version", SB_MSG_PROTOCOL_VERSION) == NULL ||
	     cJSON_AddStringToObject(req, "name", name) == NULL)) {
		r = -ENOMEM;
	}
	if (r == 0) {
		r = open_socket(path, &ln->fd);
	}
	if (r == 0) {
		/* Before a word is sent: not even hello goes to a stranger. */
		r = sb_client_check_broker(ln->fd, &ln->broker_uid);
	}
	if (r == 0) {
		r = sb_link_call(ln, "hello", req, NULL, 0, timeout_ms, &rep,
				 &conn_err);
	}
	if (r == 0) {
		r = take_hello(ln, rep.msg.result, hello_out, client_id);
	}
	sb_client_reply_fini(&rep);
	cJSON_Delete(req);
	if (r < 0) {
		sb_link_free(ln);
		return r;
	}
	*out = ln;
	return 0;
}

/* Bound on the rest of a frame that has begun to arrive, for a read that
 * would not wait: the broker writes whole frames. */
#define FRAME_REST_MS 1000

int sb_link_read_event(struct link *ln, int timeout_ms, cJSON **out)
{
	struct pollfd pfd = {.fd = ln->fd, .events = POLLIN};
	struct sb_client_reply rep;
	struct timespec dl;
	const char *payload;
	size_t len;
	int extra = 0;
	int r;

	if (timeout_ms == 0) {
		/* Nothing buffered and nothing readable: nothing to take.
		 * Else a frame is there or coming, and is read whole. */
		if (ln->inlen == 0 && poll(&pfd, 1, 0) == 0) {
			return -EAGAIN;
		}
		timeout_ms = FRAME_REST_MS;
	}
	sb_client_reply_init(&rep);
	r = next_frame(ln, sb_deadline_init(timeout_ms, &dl), &rep, &extra,
		       &payload, &len);
	/* Events carry no descriptors: any that came are closed. */
	sb_client_reply_fini(&rep);
	if (r < 0) {
		return r;
	}
	*out = cJSON_ParseWithLength(payload, len);
	if (*out == NULL || !cJSON_IsObject(*out)) {
		cJSON_Delete(*out);
		*out = NULL;
		return -EPROTO;
	}
	return 0;
}
