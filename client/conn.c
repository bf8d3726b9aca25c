/*
 * conn.c - the bus client's connection to the broker: connect and hello,
 * then synchronous requests, one at a time under a mutex, each reply read
 * with recvmsg through the frame decoder so that the descriptors it carries
 * (SCM_RIGHTS) are collected and never leaked. The connection is reference
 * counted so that publishers and subscribers can outlive shmbus_close().
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client/bus_internal.h"
#include "proto/atomics.h"
#include "proto/frame.h"
#include "proto/sockpath.h"

/* Frame limit for the hello exchange, before the broker told us its own:
 * the largest max_frame its configuration allows. */
#define HELLO_MAX_FRAME (16u * 1024 * 1024)
#define MIN_MAX_FRAME	1024u

/* Longest client name the protocol accepts. */
#define NAME_MAX_LEN 64

/* Read buffer per connection; replies are small, larger ones are gathered
 * by the decoder. */
#define RBUF_SIZE 16384

/* Room for more descriptors than a reply may carry, so that a few extra
 * ones are received (and closed) rather than truncated. */
#define CMSG_FDS (SB_CLIENT_MAX_FDS * 2)

struct shmbus {
	pthread_mutex_t lock;  /* one request at a time; guards all below */
	_Atomic unsigned refs; /* the user's, plus one per pub and sub */
	int fd;
	int error; /* 0, or the connection error that ended it */
	uint64_t next_id;
	size_t max_frame; /* the broker's limits.max_frame */
	struct sb_frame_decoder dec;
	const char *in; /* input received but not yet decoded, in rbuf */
	size_t inlen;
	cJSON *hello; /* the hello reply's result */
	char rbuf[RBUF_SIZE];
};

void sb_client_reply_init(struct sb_client_reply *rep)
{
	memset(rep, 0, sizeof(*rep));
	for (int i = 0; i < SB_CLIENT_MAX_FDS; i++) {
		rep->fds[i] = -1;
	}
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

const cJSON *sb_client_hello(const shmbus *bus)
{
	return bus != NULL ? bus->hello : NULL;
}

void sb_client_ref(shmbus *bus)
{
	/* relaxed: taking a reference needs no ordering; the caller already
	 * holds one, so the object cannot go away meanwhile. */
	atomic_fetch_add_explicit(&bus->refs, 1, memory_order_relaxed);
}

static void destroy(shmbus *bus)
{
	if (bus->fd >= 0) {
		close(bus->fd);
	}
	sb_frame_decoder_fini(&bus->dec);
	cJSON_Delete(bus->hello);
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
	ok = bus->error == 0;
	pthread_mutex_unlock(&bus->lock);
	return ok;
}

/* Sends all of `buf`. A peer that went away is -ECONNRESET. */
static int send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		/* MSG_NOSIGNAL: a dead broker must not kill us with SIGPIPE. */
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno == EPIPE || errno == ECONNRESET) {
				return -ECONNRESET;
			}
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Keeps the SCM_RIGHTS descriptors of one recvmsg in `rep`, closing those
 * beyond SB_CLIENT_MAX_FDS and anything that is not SCM_RIGHTS data. */
static void collect_fds(struct msghdr *mh, struct sb_client_reply *rep,
			int *extra)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL;
	     c = CMSG_NXTHDR(mh, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			continue;
		}
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (rep->nfds < SB_CLIENT_MAX_FDS) {
				rep->fds[rep->nfds++] = fd;
			} else {
				close(fd);
				(*extra)++;
			}
		}
	}
}

/* Receives the next chunk into bus->rbuf, with its descriptors. Returns 0,
 * -ECONNRESET (end of stream), -ETIMEDOUT, -EPROTO (descriptors cut off). */
static int recv_chunk(shmbus *bus, const struct timespec *deadline,
		      struct sb_client_reply *rep, int *extra)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * CMSG_FDS)];
	} control;
	struct iovec iov = {.iov_base = bus->rbuf,
			    .iov_len = sizeof(bus->rbuf)};
	struct msghdr mh;
	struct pollfd pfd = {.fd = bus->fd, .events = POLLIN};
	ssize_t n;
	int r;

	for (;;) {
		long long left = sb_deadline_remaining_ns(deadline);

		if (left == 0) {
			return -ETIMEDOUT;
		}
		r = poll(&pfd, 1, (int)((left + 999999) / 1000000));
		if (r < 0 && errno != EINTR) {
			return -errno;
		}
		if (r <= 0) {
			continue;
		}
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = control.buf;
		mh.msg_controllen = sizeof(control.buf);
		/* MSG_CMSG_CLOEXEC: descriptors must not leak into a child
		 * that another thread execs meanwhile. */
		n = recvmsg(bus->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				continue;
			}
			return errno == ECONNRESET ? -ECONNRESET : -errno;
		}
		collect_fds(&mh, rep, extra);
		if ((mh.msg_flags & MSG_CTRUNC) != 0) {
			return -EPROTO;
		}
		if (n == 0) {
			return -ECONNRESET;
		}
		bus->in = bus->rbuf;
		bus->inlen = (size_t)n;
		return 0;
	}
}

/* Reads frames until the reply to `id`. Returns 0 with rep->msg parsed
 * (an error reply included), or a connection error. */
static int read_reply(shmbus *bus, uint64_t id, struct sb_client_reply *rep,
		      int *extra)
{
	struct timespec dl;
	const struct timespec *deadline =
	    sb_deadline_init(SB_CLIENT_REPLY_TIMEOUT_MS, &dl);
	const char *payload;
	size_t len;
	int r;

	for (;;) {
		/* Decode only when there is input: the decoder is never
		 * handed an empty (possibly NULL) chunk. */
		if (bus->inlen > 0) {
			r = sb_frame_decoder_next(&bus->dec, &bus->in,
						  &bus->inlen, &payload, &len);
			if (r < 0) {
				/* A frame over the limit or of length 0: the
				 * broker broke the framing rules. */
				return r == -ENOMEM ? r : -EPROTO;
			}
			if (r == 1) {
				break;
			}
		}
		r = recv_chunk(bus, deadline, rep, extra);
		if (r == -ECONNRESET) {
			/* A stream cut inside a frame is still the broker
			 * going away, as far as the caller can tell. */
			return r;
		}
		if (r < 0) {
			return r;
		}
	}
	if (sb_msg_parse_reply(payload, len, &rep->msg, NULL) < 0) {
		return -EPROTO;
	}
	if (!rep->msg.has_id || rep->msg.id != id) {
		/* "id": null (our request was unreadable) or a reply to
		 * something we did not ask: the stream is out of step. */
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

/* Sends one request and reads its reply, with bus->lock held. */
static int call_locked(shmbus *bus, const char *op, cJSON *req,
		       struct sb_client_reply *rep)
{
	uint64_t id = bus->next_id++;
	char *frame = NULL;
	ssize_t flen;
	int extra = 0;
	int r;

	if (cJSON_AddStringToObject(req, "op", op) == NULL ||
	    sb_msg_add_int(req, "id", (int64_t)id) == NULL) {
		return -ENOMEM;
	}
	flen = sb_msg_to_frame(req, bus->max_frame, &frame);
	if (flen < 0) {
		/* Nothing was sent: the connection is still fine. */
		return (int)flen;
	}
	r = send_all(bus->fd, frame, (size_t)flen);
	free(frame);
	if (r == 0) {
		r = read_reply(bus, id, rep, &extra);
	}
	if (r == 0) {
		r = check_fds(rep, extra);
	}
	if (r < 0) {
		close_fds(rep);
		bus->error = r;
		/* The socket stays open until the last reference goes, but
		 * no more requests travel on it: shut it down so the broker
		 * sees the end now and releases what we held. */
		shutdown(bus->fd, SHUT_RDWR);
		return r;
	}
	return rep->msg.code;
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
	if (bus->error != 0) {
		r = -ECONNRESET;
	} else {
		r = call_locked(bus, op, req, rep);
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

/* Checks the hello result and keeps what we need from it. */
static int take_hello(shmbus *bus, const cJSON *result)
{
	const cJSON *limits;
	int64_t version, max_frame;

	if (sb_msg_get_int(result, "version", 0, SB_MSG_INT_MAX, &version,
			   NULL) < 0 ||
	    version != SB_CLIENT_PROTOCOL_VERSION ||
	    sb_msg_get_object(result, "limits", &limits, NULL) < 0 ||
	    sb_msg_get_int(limits, "max_frame", MIN_MAX_FRAME, HELLO_MAX_FRAME,
			   &max_frame, NULL) < 0) {
		return -EPROTO;
	}
	bus->hello = cJSON_Duplicate(result, 1);
	if (bus->hello == NULL) {
		return -ENOMEM;
	}
	bus->max_frame = (size_t)max_frame;
	/* From now on replies are held to the broker's own limit. Swap the
	 * decoder only on a frame boundary with nothing pending (always the
	 * case: the broker sends nothing unasked). */
	if (bus->inlen == 0) {
		sb_frame_decoder_fini(&bus->dec);
		if (sb_frame_decoder_init(&bus->dec, bus->max_frame) < 0) {
			return -EPROTO;
		}
	}
	return 0;
}

static int hello(shmbus *bus, const char *name)
{
	struct sb_client_reply rep;
	cJSON *req = cJSON_CreateObject();
	int r;

	if (req == NULL ||
	    sb_msg_add_int(req, "version", SB_CLIENT_PROTOCOL_VERSION) ==
		NULL ||
	    cJSON_AddStringToObject(req, "name", name) == NULL) {
		cJSON_Delete(req);
		return -ENOMEM;
	}
	r = sb_client_call(bus, "hello", req, &rep);
	if (r == 0) {
		r = take_hello(bus, rep.msg.result);
	}
	sb_client_reply_fini(&rep);
	return r;
}

int shmbus_connect(const char *socket_path, const char *client_name_arg,
		   shmbus **out)
{
	char name[NAME_MAX_LEN + 1];
	shmbus *bus;
	int r;

	if (out == NULL) {
		return -EINVAL;
	}
	*out = NULL;
	r = client_name(client_name_arg, name, sizeof(name));
	if (r < 0) {
		return r;
	}
	bus = calloc(1, sizeof(*bus));
	if (bus == NULL) {
		return -ENOMEM;
	}
	bus->fd = -1;
	bus->next_id = 1;
	bus->in = bus->rbuf;
	bus->max_frame = HELLO_MAX_FRAME;
	atomic_init(&bus->refs, 1);
	r = pthread_mutex_init(&bus->lock, NULL);
	if (r != 0) {
		free(bus);
		return -r;
	}
	r = sb_frame_decoder_init(&bus->dec, HELLO_MAX_FRAME);
	if (r == 0) {
		r = open_socket(socket_path, &bus->fd);
	}
	if (r == 0) {
		r = hello(bus, name);
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
