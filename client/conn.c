/*
 * conn.c - the bus client's connection to the broker: connect and hello,
 * then synchronous requests, one at a time under a mutex, each reply read
 * with recvmsg through the frame decoder so that the descriptors it carries
 * (SCM_RIGHTS) are collected and never leaked; and close sent as a notice,
 * which has no reply to wait for. The connection is reference counted so
 * that publishers and subscribers can outlive shmbus_close(). Whoever
 * listens on the socket is trusted only when it runs as a user the client
 * trusts, and memory it hands over only when that user owns it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client/bus_internal.h"
#include "sys/barrier.h"
#include "sys/deadline.h"
#include "sys/futex.h"
#include "sys/identity.h"
#include "wire/frame.h"
#include "wire/names.h"
#include "wire/sockpath.h"

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

struct shmbus {
	pthread_mutex_t lock;  /* one request at a time; guards all below */
	_Atomic unsigned refs; /* the user's, plus one per pub and sub */
	struct link *link;     /* NULL while disconnected */
	int error;	       /* 0, or the connection error that ended it */
	uint64_t gen;	       /* bumped at each (re)connection */
	uint64_t reconnects;
	uint32_t client_id; /* our owner token on the current connection */
	cJSON *hello;	    /* the hello reply's result */
	struct sb_client_topic *topics; /* open pubs and subs */
	struct sb_linger linger; /* closed topics' mappings (own lock) */

	/* Set once at connect, read-only afterwards. */
	char path[SB_SOCKET_PATH_MAX + 1];
	char name[NAME_MAX_LEN + 1];
	pid_t owner_pid; /* the process whose watcher thread this is */
	int stop_fd;	 /* eventfd: tells the watcher to end */
	int watching;	 /* the watcher thread was started */
	pthread_t watcher;
};

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

static void link_free(struct link *ln)
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

static void stop_watcher(shmbus *bus)
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

static void destroy(shmbus *bus)
{
	stop_watcher(bus);
	link_free(bus->link);
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
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * SB_CLIENT_MAX_FDS)];
	} control;
	/* The clock is read only if the socket is ever full. */
	struct sb_wait w = sb_wait_start(timeout_ms);

	while (len > 0) {
		struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n;

		if (nfds > 0) {
			struct cmsghdr *cm;

			memset(&control, 0, sizeof(control));
			mh.msg_control = control.buf;
			mh.msg_controllen =
			    CMSG_SPACE(sizeof(int) * (size_t)nfds);
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
			memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
		}
		/* MSG_NOSIGNAL: a dead broker must not kill us with SIGPIPE. */
		n = sendmsg(ln->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			int r;

			if (errno == EINTR) {
				continue;
			}
			if (errno == EPIPE || errno == ECONNRESET) {
				return -ECONNRESET;
			}
			if (errno != EAGAIN) {
				return -errno;
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

/* recvmsg attempts (~1 µs each) before a reply wait sleeps in poll. */
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
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * CMSG_FDS)];
	} control;
	struct iovec iov = {.iov_base = ln->rbuf, .iov_len = sizeof(ln->rbuf)};
	struct msghdr mh;
	ssize_t n;
	int r;

	for (long long tries = 0;; tries++) {
		r = await_input(ln, deadline, tries);
		if (r < 0) {
			return r;
		}
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = control.buf;
		mh.msg_controllen = sizeof(control.buf);
		/* MSG_CMSG_CLOEXEC: descriptors must not leak into a child
		 * that another thread execs meanwhile. */
		n = recvmsg(ln->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				sb_cpu_relax();
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
		ln->in = ln->rbuf;
		ln->inlen = (size_t)n;
		return 0;
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
	int r;

	for (;;) {
		/* Decode only when there is input: the decoder is never
		 * handed an empty (possibly NULL) chunk. */
		if (ln->inlen > 0) {
			r = sb_frame_decoder_next(&ln->dec, &ln->in, &ln->inlen,
						  &payload, &len);
			if (r < 0) {
				/* A frame over the limit or of length 0: the
				 * broker broke the framing rules. */
				return r == -ENOMEM ? r : -EPROTO;
			}
			if (r == 1) {
				break;
			}
		}
		/* A stream cut inside a frame is still the broker going
		 * away, as far as the caller can tell. */
		r = recv_chunk(ln, deadline, rep, extra);
		if (r < 0) {
			return r;
		}
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
static int link_send(struct link *ln, const char *op, cJSON *req, uint64_t *id,
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
static int link_call(struct link *ln, const char *op, cJSON *req,
		     const int *fds, int nfds, int timeout_ms,
		     struct sb_client_reply *rep, int *conn_err)
{
	uint64_t id;
	int extra = 0;
	int r;

	r = link_send(ln, op, req, &id, fds, nfds, timeout_ms, conn_err);
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

/* A request on the installed link, with bus->lock held. */
static int call_locked(shmbus *bus, const char *op, cJSON *req, const int *fds,
		       int nfds, struct sb_client_reply *rep)
{
	int conn_err, r;

	if (bus->error != 0 || bus->link == NULL) {
		return -ECONNRESET;
	}
	rep->gen = bus->gen;
	rep->broker_uid = bus->link->broker_uid;
	r = link_call(bus->link, op, req, fds, nfds, SB_CLIENT_REPLY_TIMEOUT_MS,
		      rep, &conn_err);
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
	r = call_locked(bus, op, req, NULL, 0, rep);
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
			? call_locked(bus, op, req, NULL, 0, rep)
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

/* ---- whom we take for the broker ------------------------------------- */

/* Longest buffer getpwnam_r may ask for before we give up on the name. */
#define PW_BUF_MAX (1024 * 1024)

/* A uid written in decimal: 1, or 0 when `s` is not all digits. */
static int parse_uid(const char *s, uid_t *uid)
{
	unsigned long long v = 0;
	size_t n = 0;

	for (; s[n] >= '0' && s[n] <= '9'; n++) {
		v = v * 10 + (unsigned)(s[n] - '0');
		if (v >= (uid_t)-1) {
			return 0; /* (uid_t)-1 is "no user"; more is nonsense */
		}
	}
	if (n == 0 || s[n] != '\0') {
		return 0;
	}
	*uid = (uid_t)v;
	return 1;
}

static int lookup_user(const char *name, uid_t *uid)
{
	struct passwd pw, *found = NULL;
	size_t len = 16384;
	char *buf = NULL;
	int r;

	do {
		char *bigger = realloc(buf, len);

		if (bigger == NULL) {
			free(buf);
			return -ENOMEM;
		}
		buf = bigger;
		r = getpwnam_r(name, &pw, buf, len, &found);
		len *= 2;
	} while (r == ERANGE && len <= PW_BUF_MAX);
	if (r == 0 && found != NULL) {
		*uid = pw.pw_uid;
	}
	free(buf);
	return r == 0 && found != NULL ? 0 : -EINVAL;
}

int sb_client_broker_user(uid_t *uid)
{
	/* secure_getenv: a set-user-ID program must not let its caller
	 * choose whom it trusts. */
	const char *v = secure_getenv("SHMBUS_BROKER_USER");
	int r;

	if (v == NULL || v[0] == '\0') {
		return 0;
	}
	if (parse_uid(v, uid)) {
		return 1;
	}
	r = lookup_user(v, uid);
	return r < 0 ? r : 1;
}

/*
 * Whoever listens on the socket gets our topics' memory on reconnection
 * and could feed us memory of its own: it must run as our own user, root,
 * or the user $SHMBUS_BROKER_USER names. The kernel reports the uid that
 * created the listener (SO_PEERCRED), whatever the peer says. Returns 0
 * with *uid set, or -EPERM.
 */
static int check_broker(int fd, uid_t *uid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uid_t named;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		return -errno;
	}
	if (cred.uid != geteuid() && cred.uid != 0 &&
	    (sb_client_broker_user(&named) != 1 || named != cred.uid)) {
		return -EPERM;
	}
	*uid = cred.uid;
	return 0;
}

/*
 * Memory from the broker must be the broker's: owned by its uid (so that
 * no other user formatted it and handed it in, see topic_adopt) and, when
 * it is a memfd (linked nowhere), sealed against shrinking and growing, so
 * that nobody can make our mapping of it fault. Checked before the size:
 * only a seal keeps the size true after the check. A persistent topic's
 * data is a file in the broker's data_dir (linked): it cannot carry seals,
 * and only its owner is checked.
 */
int sb_client_check_memory(const struct sb_client_reply *rep)
{
	const int both = F_SEAL_SHRINK | F_SEAL_GROW;

	for (int i = 0; i < rep->nfds; i++) {
		struct stat st;
		int seals;

		if (fstat(rep->fds[i], &st) < 0) {
			return -errno;
		}
		if (st.st_uid != rep->broker_uid) {
			return -EPERM;
		}
		if (st.st_nlink != 0) {
			continue;
		}
		seals = fcntl(rep->fds[i], F_GET_SEALS);
		if (seals < 0 || (seals & both) != both) {
			return -EPERM;
		}
	}
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
	 * case: the broker sends nothing unasked). */
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
static int link_open(const char *path, const char *name, int stop_fd,
		     int timeout_ms, struct link **out, cJSON **hello_out,
		     uint32_t *client_id)
{
	struct sb_client_reply rep;
	struct link *ln = link_new(stop_fd);
	cJSON *req = cJSON_CreateObject();
	int conn_err, r;

	sb_client_reply_init(&rep);
	r = ln == NULL || req == NULL ? -ENOMEM : 0;
	if (r == 0 && (sb_msg_add_int(req, "version",
				      SB_MSG_PROTOCOL_VERSION) == NULL ||
		       cJSON_AddStringToObject(req, "name", name) == NULL)) {
		r = -ENOMEM;
	}
	if (r == 0) {
		r = open_socket(path, &ln->fd);
	}
	if (r == 0) {
		/* Before a word is sent: not even hello goes to a stranger. */
		r = check_broker(ln->fd, &ln->broker_uid);
	}
	if (r == 0) {
		r = link_call(ln, "hello", req, NULL, 0, timeout_ms, &rep,
			      &conn_err);
	}
	if (r == 0) {
		r = take_hello(ln, rep.msg.result, hello_out, client_id);
	}
	sb_client_reply_fini(&rep);
	cJSON_Delete(req);
	if (r < 0) {
		link_free(ln);
		return r;
	}
	*out = ln;
	return 0;
}

/* ---- handing topics back to a broker ----------------------------------- */

static cJSON *adopt_request(const struct sb_client_topic *t)
{
	const struct sb_ring *ring = t->ring;
	cJSON *req = cJSON_CreateObject();

	if (req == NULL ||
	    cJSON_AddStringToObject(req, "topic", t->name) == NULL ||
	    cJSON_AddStringToObject(req, "access",
				    t->sub ? "subscribe" : "publish") == NULL ||
	    cJSON_AddStringToObject(req, "mode",
				    sb_mode_name(ring->mode)) == NULL ||
	    cJSON_AddStringToObject(req, "overflow",
				    sb_overflow_name(ring->overflow)) ==
		NULL ||
	    sb_msg_add_int(req, "capacity", (int64_t)ring->capacity) == NULL ||
	    sb_msg_add_int(req, "max_message", ring->max_message) == NULL ||
	    cJSON_AddBoolToObject(req, "persistent", t->persistent) == NULL ||
	    cJSON_AddBoolToObject(req, "explicit", t->is_explicit) == NULL) {
		cJSON_Delete(req);
		return NULL;
	}
	return req;
}

/*
 * Hands `t` to the broker of the current link (bus->lock held):
 * topic_adopt with the data and control descriptors, and a subscriber's
 * slot segment with its index. Returns 0, the broker's refusal (t keeps no
 * handle), or a connection error.
 */
static int adopt_locked(shmbus *bus, struct sb_client_topic *t)
{
	struct sb_client_reply rep;
	int fds[3] = {t->data_fd, t->ctl_fd, t->slot_fd};
	cJSON *req;
	int64_t handle;
	int r;

	t->handle = -1;
	if (t->sub && t->rd != NULL && sb_ring_reader_evicted(t->rd)) {
		/* Evicted: its slot is nobody's to hand back, and its old
		 * index may be another subscriber's by now. */
		t->last_error = -EIDRM;
		return -EIDRM;
	}
	req = adopt_request(t);
	if (req != NULL && t->sub && sb_msg_add_int(req, "slot", t->slot) == NULL) {
		cJSON_Delete(req);
		req = NULL;
	}
	if (req == NULL) {
		t->last_error = -ENOMEM;
		return -ENOMEM;
	}
	sb_client_reply_init(&rep);
	r = call_locked(bus, "topic_adopt", req, fds, t->sub ? 3 : 2, &rep);
	cJSON_Delete(req);
	if (r == 0 && sb_msg_get_int(rep.msg.result, "handle", 0, UINT32_MAX,
				     &handle, NULL) < 0) {
		r = -EPROTO;
	}
	if (r == 0) {
		t->handle = handle;
	}
	if (r == -ESTALE && t->sub && t->rd != NULL) {
		/* The broker no longer waits for our slot (we came back after
		 * its grace period): writers no longer see it, so end the
		 * subscription as an eviction would, rather than read on
		 * until overrun. */
		(void)sb_ring_reader_evict(t->rd);
	}
	t->last_error = r;
	sb_client_reply_fini(&rep);
	return r;
}

int sb_client_topic_add(shmbus *bus, struct sb_client_topic *t, int64_t handle,
			uint64_t gen)
{
	if (bus == NULL || t == NULL) {
		return -EINVAL;
	}
	pthread_mutex_lock(&bus->lock);
	t->next = bus->topics;
	bus->topics = t;
	t->last_error = 0;
	if (gen == bus->gen && bus->error == 0 && bus->link != NULL) {
		t->handle = handle;
	} else if (bus->error == 0 && bus->link != NULL) {
		/* The open was answered by a broker we have since lost, and
		 * the reconnection that followed did not know this topic
		 * yet: hand it over now. */
		(void)adopt_locked(bus, t);
	} else {
		t->handle = -1; /* the next reconnection hands it over */
	}
	pthread_mutex_unlock(&bus->lock);
	return 0;
}

/*
 * Sends close for `handle` on the installed link (bus->lock held), best
 * effort. As a notice when the broker takes one: nothing comes back, so an
 * open+close costs one round trip rather than two, and the broker's order
 * of a connection's frames still puts the close before any later request.
 * A broker from before notices gets a request and its reply is ignored. A
 * transport failure ends the link either way, as in call_locked().
 */
static void close_locked(shmbus *bus, int64_t handle)
{
	struct sb_client_reply rep;
	cJSON *req = cJSON_CreateObject();
	int conn_err, r;

	sb_client_reply_init(&rep);
	if (req != NULL && sb_msg_add_int(req, "handle", handle) != NULL) {
		if (bus->link->close_notice) {
			r = link_send(bus->link, "close", req, NULL, NULL, 0,
				      SB_CLIENT_REPLY_TIMEOUT_MS, &conn_err);
			if (conn_err) {
				bus->error = r;
			}
		} else {
			(void)call_locked(bus, "close", req, NULL, 0, &rep);
		}
	}
	cJSON_Delete(req);
	sb_client_reply_fini(&rep);
}

void sb_client_topic_remove(shmbus *bus, struct sb_client_topic *t)
{
	pthread_mutex_lock(&bus->lock);
	for (struct sb_client_topic **p = &bus->topics; *p != NULL;
	     p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			break;
		}
	}
	t->next = NULL;
	if (t->handle >= 0 && bus->error == 0 && bus->link != NULL) {
		close_locked(bus, t->handle);
	}
	t->handle = -1;
	pthread_mutex_unlock(&bus->lock);
}

void sb_client_close_handle(shmbus *bus, int64_t handle, uint64_t gen)
{
	pthread_mutex_lock(&bus->lock);
	if (handle >= 0 && gen == bus->gen && bus->error == 0 &&
	    bus->link != NULL) {
		close_locked(bus, handle);
	}
	pthread_mutex_unlock(&bus->lock);
}

/* ---- the watcher: noticing a lost broker, reconnecting ------------------ */

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
	link_free(ln);
}

/* Connects, says hello and, under the lock, installs the link and hands
 * every open topic back. Returns 0 or the error that ended the attempt. */
static int reconnect(shmbus *bus)
{
	struct link *ln;
	cJSON *hello;
	uint32_t client_id;
	int r =
	    link_open(bus->path, bus->name, bus->stop_fd,
		      SB_CLIENT_RECONNECT_TIMEOUT_MS, &ln, &hello, &client_id);

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
		(void)adopt_locked(bus, t);
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

static int start_watcher(shmbus *bus)
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
		r = link_open(bus->path, bus->name, bus->stop_fd,
			      SB_CLIENT_REPLY_TIMEOUT_MS, &bus->link,
			      &bus->hello, &bus->client_id);
	}
	if (r == 0) {
		bus->gen = 1;
		r = start_watcher(bus);
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
