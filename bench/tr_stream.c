/*
 * tr_stream.c - the two kernel baselines: a Unix stream socket pair and a
 * pair of pipes. Both are byte streams, so a message is one write() of its
 * bytes and the reader reads exactly the expected length; one system call
 * per message on each side (more if the kernel splits a large one) is what
 * a program using them message by message pays, and what shmbus is for.
 */
#include "bench/transports.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * Descriptors by side: fd[side][0] is what that side reads, fd[side][1]
 * what it writes. A socket pair uses one descriptor for both directions.
 */
struct stream_shared {
	int fd[2][2];
	bool is_socket;
};

struct stream_end {
	int rfd;
	int wfd;
	bool is_socket;
};

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static void stream_destroy(void *shared)
{
	struct stream_shared *s = shared;

	if (s == NULL) {
		return;
	}
	if (s->is_socket) {
		/* fd[i][0] == fd[i][1]: close each socket once. */
		close_fd(&s->fd[0][0]);
		close_fd(&s->fd[1][0]);
	} else {
		for (int i = 0; i < 2; i++) {
			close_fd(&s->fd[i][0]);
			close_fd(&s->fd[i][1]);
		}
	}
	free(s);
}

static struct stream_shared *stream_alloc(bool is_socket)
{
	struct stream_shared *s = malloc(sizeof(*s));

	if (s == NULL) {
		return NULL;
	}
	for (int i = 0; i < 2; i++) {
		s->fd[i][0] = s->fd[i][1] = -1;
	}
	s->is_socket = is_socket;
	return s;
}

static int unix_create(const struct bench_tr_config *cfg, void **shared)
{
	struct stream_shared *s = stream_alloc(true);
	int sv[2];

	(void)cfg;
	if (s == NULL) {
		return -ENOMEM;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		int err = -errno;

		free(s);
		return err;
	}
	s->fd[BENCH_TR_SENDER][0] = s->fd[BENCH_TR_SENDER][1] = sv[0];
	s->fd[BENCH_TR_RECEIVER][0] = s->fd[BENCH_TR_RECEIVER][1] = sv[1];
	*shared = s;
	return 0;
}

static int pipe_create(const struct bench_tr_config *cfg, void **shared)
{
	struct stream_shared *s = stream_alloc(false);
	int to_receiver[2];
	int to_sender[2];
	int err;

	(void)cfg;
	if (s == NULL) {
		return -ENOMEM;
	}
	if (pipe2(to_receiver, O_CLOEXEC) < 0) {
		err = -errno;
		free(s);
		return err;
	}
	if (pipe2(to_sender, O_CLOEXEC) < 0) {
		err = -errno;
		close(to_receiver[0]);
		close(to_receiver[1]);
		free(s);
		return err;
	}
	s->fd[BENCH_TR_SENDER][0] = to_sender[0];
	s->fd[BENCH_TR_SENDER][1] = to_receiver[1];
	s->fd[BENCH_TR_RECEIVER][0] = to_receiver[0];
	s->fd[BENCH_TR_RECEIVER][1] = to_sender[1];
	*shared = s;
	return 0;
}

/*
 * Takes this side's descriptors and closes the other side's, so that a
 * peer that dies shows up here as end-of-stream or EPIPE instead of a hang.
 */
static int stream_open_end(void *shared, enum bench_tr_side side, void **end)
{
	struct stream_shared *s = shared;
	struct stream_end *e = malloc(sizeof(*e));
	int other =
	    side == BENCH_TR_SENDER ? BENCH_TR_RECEIVER : BENCH_TR_SENDER;

	if (e == NULL) {
		return -ENOMEM;
	}
	e->rfd = s->fd[side][0];
	e->wfd = s->fd[side][1];
	e->is_socket = s->is_socket;
	s->fd[side][0] = s->fd[side][1] = -1;
	if (s->is_socket) {
		close_fd(&s->fd[other][0]);
		s->fd[other][1] = -1;
	} else {
		close_fd(&s->fd[other][0]);
		close_fd(&s->fd[other][1]);
	}
	*end = e;
	return 0;
}

static int stream_send(void *end, const void *buf, size_t len)
{
	struct stream_end *e = end;
	const char *p = buf;

	while (len > 0) {
		ssize_t n;

		if (e->is_socket) {
			/* MSG_NOSIGNAL: a dead peer is -EPIPE, not SIGPIPE. */
			n = send(e->wfd, p, len, MSG_NOSIGNAL);
		} else {
			n = write(e->wfd, p, len);
		}
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A byte stream has no boundaries: read exactly cap bytes. */
static ssize_t stream_recv(void *end, void *buf, size_t cap)
{
	struct stream_end *e = end;
	char *p = buf;
	size_t got = 0;

	while (got < cap) {
		ssize_t n = read(e->rfd, p + got, cap - got);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		if (n == 0) {
			return -ECONNRESET;
		}
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static void stream_close_end(void *end)
{
	struct stream_end *e = end;

	if (e == NULL) {
		return;
	}
	if (e->is_socket) {
		close_fd(&e->rfd);
		e->wfd = -1;
	} else {
		close_fd(&e->rfd);
		close_fd(&e->wfd);
	}
	free(e);
}

const struct bench_tr_ops bench_tr_unix = {
    .name = "unix",
    .summary = "Unix stream socketpair, one write/read per message",
    .flags = BENCH_TR_LATENCY | BENCH_TR_THROUGHPUT,
    .create = unix_create,
    .open_end = stream_open_end,
    .send = stream_send,
    .recv = stream_recv,
    .close_end = stream_close_end,
    .destroy = stream_destroy,
};

const struct bench_tr_ops bench_tr_pipe = {
    .name = "pipe",
    .summary = "two pipes (one per direction), one write/read per message",
    .flags = BENCH_TR_LATENCY | BENCH_TR_THROUGHPUT,
    .create = pipe_create,
    .open_end = stream_open_end,
    .send = stream_send,
    .recv = stream_recv,
    .close_end = stream_close_end,
    .destroy = stream_destroy,
};
