/*
 * server.c - the broker's listening socket: the directory it lives in
 * (created with dir_mode, never through a symlink), a stale socket file
 * left by a dead broker (replaced) versus a live broker (refused), bind
 * with the socket's mode, and accepting clients, surviving a descriptor
 * shortage with a reserve descriptor.
 */
#include "daemon/broker.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/log.h"

#define BACKLOG		   128
#define ACCEPTS_PER_WAKEUP 64

/* Creates the socket's directory if missing; refuses a symlink or a
 * non-directory there. */
static int ensure_dir(const char *sock_path, uint32_t mode)
{
	char copy[SB_SOCKET_PATH_MAX + 1];
	const char *dir;
	struct stat st;

	snprintf(copy, sizeof(copy), "%s", sock_path);
	dir = dirname(copy);
	if (lstat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			sbd_error("socket directory %s: %s", dir,
				  S_ISLNK(st.st_mode)
				      ? "is a symlink; refusing to follow it"
				      : "is not a directory");
			return -ENOTDIR;
		}
		return 0;
	}
	if (errno != ENOENT) {
		sbd_error("lstat(%s): %s", dir, strerror(errno));
		return -errno;
	}
	if (mkdir(dir, (mode_t)mode) < 0 && errno != EEXIST) {
		sbd_error("mkdir(%s): %s", dir, strerror(errno));
		return -errno;
	}
	/* mkdir applies the umask; the configured mode is what we want. */
	if (chmod(dir, (mode_t)mode) < 0) {
		sbd_error("chmod(%s, %04o): %s", dir, (unsigned)mode,
			  strerror(errno));
		return -errno;
	}
	sbd_info("created socket directory %s (mode %04o)", dir,
		 (unsigned)mode);
	return 0;
}

static int fill_addr(struct sockaddr_un *addr, const char *path)
{
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(addr->sun_path)) {
		return -ENAMETOOLONG;
	}
	memcpy(addr->sun_path, path, strlen(path) + 1);
	return 0;
}

/* Deals with an existing file at the socket path: a live broker is
 * -EADDRINUSE; a stale socket is removed; anything else is refused. */
static int clear_stale(const char *path)
{
	struct sockaddr_un addr;
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0) {
		return errno == ENOENT ? 0 : -errno;
	}
	if (!S_ISSOCK(st.st_mode)) {
		sbd_error("%s exists and is not a socket; refusing to "
			  "replace it",
			  path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || fill_addr(&addr, path) < 0) {
		r = fd < 0 ? -errno : -ENAMETOOLONG;
		if (fd >= 0) {
			close(fd);
		}
		return r;
	}
	r = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 ? 0
								     : -errno;
	close(fd);
	if (r == 0) {
		sbd_error("another shmbusd is listening on %s", path);
		return -EADDRINUSE;
	}
	if (r != -ECONNREFUSED) {
		sbd_error("connect(%s): %s", path, strerror(-r));
		return r;
	}
	if (unlink(path) < 0) {
		sbd_error("unlink(stale socket %s): %s", path, strerror(errno));
		return -errno;
	}
	sbd_info("removed stale socket %s", path);
	return 0;
}

static int bind_listen(struct sbd_broker *b)
{
	const char *path = b->socket_path;
	mode_t mode = (mode_t)b->cfg.socket_mode;
	struct sockaddr_un addr;
	struct stat st;
	mode_t old;
	int fd, r;

	r = fill_addr(&addr, path);
	fd = r == 0 ? socket(AF_UNIX,
			     SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
		    : -1;
	if (fd < 0) {
		r = r < 0 ? r : -errno;
		sbd_error("socket(%s): %s", path, strerror(-r));
		return r;
	}
	/* The umask keeps the socket from being wider than `mode` between
	 * bind and chmod. */
	old = umask(0777 & ~mode);
	r = bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 ? 0 : -errno;
	umask(old);
	if (r == 0 && chmod(path, mode) < 0) {
		r = -errno;
	}
	if (r == 0 && listen(fd, BACKLOG) < 0) {
		r = -errno;
	}
	if (r == 0 && lstat(path, &st) < 0) {
		r = -errno;
	}
	if (r < 0) {
		sbd_error("bind/listen(%s): %s", path, strerror(-r));
		close(fd);
		return r;
	}
	r = uv_poll_init(b->loop, &b->listen_poll, fd);
	if (r < 0) {
		sbd_error("uv_poll_init(%s): %s", path, uv_strerror(r));
		unlink(path);
		close(fd);
		return r;
	}
	b->listen_poll.data = b;
	b->socket_dev = st.st_dev;
	b->socket_ino = st.st_ino;
	b->listen_fd = fd;
	return 0;
}

int sbd_server_listen(struct sbd_broker *b)
{
	int r = ensure_dir(b->socket_path, b->cfg.socket_dir_mode);

	if (r == 0) {
		r = clear_stale(b->socket_path);
	}
	if (r == 0) {
		r = bind_listen(b);
	}
	if (r < 0) {
		return r;
	}
	b->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	sbd_info("listening on %s (mode %04o)", b->socket_path,
		 (unsigned)b->cfg.socket_mode);
	return 0;
}

/* Out of descriptors: drop the reserve, take the pending connection and
 * close it at once (so it is not retried forever), then re-arm. */
static void shed_connection(struct sbd_broker *b, int err)
{
	int fd;

	sbd_warn("accept(%s): %s; refusing a connection", b->socket_path,
		 strerror(err));
	if (b->reserve_fd >= 0) {
		close(b->reserve_fd);
	}
	fd = accept4(b->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0) {
		close(fd);
	}
	b->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void on_accept(uv_poll_t *poll, int status, int events)
{
	struct sbd_broker *b = poll->data;

	(void)events;
	b->io_events++;
	if (status < 0) {
		sbd_error("poll(%s): %s", b->socket_path, uv_strerror(status));
		return;
	}
	for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
		int fd = accept4(b->listen_fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			sbd_client_accept(b, fd);
		} else if (errno == EMFILE || errno == ENFILE) {
			shed_connection(b, errno);
		} else if (errno == EINTR || errno == ECONNABORTED) {
			continue;
		} else {
			if (errno != EAGAIN) {
				sbd_error("accept(%s): %s", b->socket_path,
					  strerror(errno));
			}
			return;
		}
	}
}

int sbd_server_start(struct sbd_broker *b)
{
	int r = uv_poll_start(&b->listen_poll, UV_READABLE, on_accept);

	if (r < 0) {
		sbd_error("uv_poll_start(%s): %s", b->socket_path,
			  uv_strerror(r));
	}
	return r;
}

static void on_listen_closed(uv_handle_t *h)
{
	struct sbd_broker *b = h->data;

	close(b->listen_fd);
	b->listen_fd = -1;
}

/* Stops accepting and removes the socket file, if it is still ours. */
void sbd_server_stop(struct sbd_broker *b)
{
	struct stat st;

	if (b->listen_fd < 0) {
		return;
	}
	if (lstat(b->socket_path, &st) == 0 && st.st_dev == b->socket_dev &&
	    st.st_ino == b->socket_ino && unlink(b->socket_path) < 0) {
		sbd_warn("unlink(%s): %s", b->socket_path, strerror(errno));
	}
	uv_close((uv_handle_t *)&b->listen_poll, on_listen_closed);
	if (b->reserve_fd >= 0) {
		close(b->reserve_fd);
		b->reserve_fd = -1;
	}
}
