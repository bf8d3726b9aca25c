/*
 * server.c - the broker's listening socket: the directory it lives in
 * (created with dir_mode, never through a symlink, and refused unless it is
 * the broker's own and writable by nobody else), a stale socket file
 * left by a dead broker (replaced) versus a live broker (refused), bind
 * with the socket's mode, and accepting clients, surviving a descriptor
 * shortage with a reserve descriptor.
 */
#include "daemon/broker.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/log.h"

#define BACKLOG		   128
#define ACCEPTS_PER_WAKEUP 64

/* Says what is at `dir` when it could not be opened as a directory. */
static int refuse_non_dir(const char *dir, int err)
{
	struct stat st;

	if (lstat(dir, &st) == 0 && S_ISLNK(st.st_mode)) {
		sbd_error("socket directory %s: is a symlink; refusing to "
			  "follow it",
			  dir);
		return -ENOTDIR;
	}
	if (err == ENOTDIR || err == ELOOP) {
		sbd_error("socket directory %s: is not a directory", dir);
		return -ENOTDIR;
	}
	sbd_error("open(socket directory %s): %s", dir, strerror(err));
	return -err;
}

/*
 * Whoever can write the socket's directory can replace the socket with a
 * listener of their own, which clients would then hand their memory to:
 * the directory must be the broker's own and writable by nobody else.
 * `st` is the directory as opened (never through a symlink).
 */
static int check_dir_is_ours(const char *dir, const struct stat *st)
{
	uid_t me = geteuid();
	unsigned mode = (unsigned)(st->st_mode & 07777);

	if (st->st_uid != me) {
		sbd_error(
		    "socket directory %s is owned by uid %lu (mode %04o), "
		    "not by this broker's uid %lu: its owner could "
		    "replace the socket. Remove it (the broker then "
		    "creates it), chown it to uid %lu, or choose another "
		    "socket path",
		    dir, (unsigned long)st->st_uid, mode, (unsigned long)me,
		    (unsigned long)me);
		return -EPERM;
	}
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		sbd_error("socket directory %s (owner uid %lu) has mode %04o: "
			  "group or others may write it and replace the "
			  "socket. Run 'chmod go-w %s', or choose another "
			  "socket path",
			  dir, (unsigned long)st->st_uid, mode, dir);
		return -EPERM;
	}
	return 0;
}

/*
 * Creates the socket's directory with `mode` if missing, then opens it
 * without following a symlink and checks that it is the broker's (see
 * check_dir_is_ours). The mode is set through the open descriptor, so
 * nothing swapped in at the path meanwhile can be changed instead.
 */
static int ensure_dir(const char *sock_path, uint32_t mode)
{
	char copy[SB_SOCKET_PATH_MAX + 1];
	const char *dir;
	struct stat st;
	bool created;
	int fd, r;

	snprintf(copy, sizeof(copy), "%s", sock_path);
	dir = dirname(copy);
	created = mkdir(dir, (mode_t)mode) == 0;
	if (!created && errno != EEXIST) {
		sbd_error("mkdir(%s): %s", dir, strerror(errno));
		return -errno;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		return refuse_non_dir(dir, errno);
	}
	/* mkdir applied the umask; the configured mode is what we want. */
	r = created && fchmod(fd, (mode_t)mode) < 0 ? -errno : 0;
	if (r == 0 && fstat(fd, &st) < 0) {
		r = -errno;
	}
	close(fd);
	if (r < 0) {
		sbd_error("socket directory %s: %s", dir, strerror(-r));
		return r;
	}
	r = check_dir_is_ours(dir, &st);
	if (r == 0 && created) {
		sbd_info("created socket directory %s (mode %04o)", dir,
			 (unsigned)mode);
	}
	return r;
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

/*
 * Gives the socket file socket.group (--socket-group), when set and not
 * already its group, so that socket.mode's group bits admit that group's
 * members. Not through the descriptor (fchown of a socket changes the
 * socket, not its file) and never following a symlink; the directory is
 * the broker's alone (ensure_dir), so nobody else can swap the file, and
 * the lstat after proves the file is still the one bound. A broker that
 * is not root may only choose a group it belongs to.
 */
static int set_group(const struct sbd_broker *b, const char *path,
		     struct stat *st)
{
	gid_t gid = (gid_t)b->cfg.socket_group;
	struct stat now;

	if (b->cfg.socket_group < 0 || st->st_gid == gid) {
		return 0;
	}
	if (fchownat(AT_FDCWD, path, (uid_t)-1, gid, AT_SYMLINK_NOFOLLOW) < 0) {
		int err = errno;

		sbd_error("chown(%s, group %lu): %s%s", path,
			  (unsigned long)gid, strerror(err),
			  err == EPERM ? " (a broker that is not root may "
					 "only give the socket a group it "
					 "is a member of)"
				       : "");
		unlink(path); /* still the one bound: see above */
		return -err;
	}
	if (lstat(path, &now) < 0 || now.st_dev != st->st_dev ||
	    now.st_ino != st->st_ino || now.st_gid != gid) {
		/* Not ours any more: not ours to unlink either. */
		sbd_error("%s changed while its group was set; refusing to "
			  "start",
			  path);
		return -EEXIST;
	}
	*st = now;
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
	/* bind creates the file with 0777 & ~umask: the umask alone gives it
	 * `mode`. No chmod(path) afterwards: it would follow a symlink
	 * swapped in at the path after bind; and on Linux fchmod of a socket
	 * descriptor changes the socket, not its file. The broker has one
	 * thread here, so the process-wide umask is ours to borrow. */
	old = umask(0777 & ~mode);
	r = bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 ? 0 : -errno;
	umask(old);
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
	if (!S_ISSOCK(st.st_mode)) {
		/* Replaced between bind and lstat: not ours to unlink. */
		sbd_error("%s was replaced by another file right after bind; "
			  "refusing to start",
			  path);
		close(fd);
		return -EEXIST;
	}
	r = set_group(b, path, &st);
	if (r < 0) {
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
	b->socket_gid = st.st_gid;
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
	sbd_info("listening on %s (mode %04o, group %lu)", b->socket_path,
		 (unsigned)b->cfg.socket_mode, (unsigned long)b->socket_gid);
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
