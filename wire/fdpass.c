/*
 * fdpass.c - descriptor passing (SCM_RIGHTS) for the broker and the
 * client: see fdpass.h.
 */
#include "wire/fdpass.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A control buffer aligned for struct cmsghdr, as CMSG_FIRSTHDR wants. */
union control {
	struct cmsghdr align;
	char buf[CMSG_SPACE(sizeof(int) * SB_FDPASS_ROOM_MAX)];
};

ssize_t sb_fdpass_send(int sock, const void *buf, size_t len, const int *fds,
		       int nfds)
{
	union control control;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (nfds < 0 || nfds > SB_FDPASS_MAX) {
		return -EINVAL;
	}
	if (nfds > 0) {
		struct cmsghdr *cm;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	n = sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	return n < 0 ? -errno : n;
}

/* Keeps the SCM_RIGHTS descriptors of one recvmsg in `in`, closing those
 * beyond in->max. */
static void collect(struct msghdr *mh, struct sb_fdpass_in *in)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm != NULL;
	     cm = CMSG_NXTHDR(mh, cm)) {
		size_t n;

		if (cm->cmsg_level != SOL_SOCKET ||
		    cm->cmsg_type != SCM_RIGHTS) {
			continue;
		}
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(fd));
			if (in->n < in->max) {
				in->fds[in->n++] = fd;
			} else {
				close(fd);
				in->extra++;
			}
		}
	}
}

/* Closes what a cut-off control message brought: those kept since
 * `before`. The kernel already dropped the ones that did not fit. */
static void drop_truncated(struct sb_fdpass_in *in, int before)
{
	while (in->n > before) {
		close(in->fds[--in->n]);
	}
	in->truncated = true;
}

ssize_t sb_fdpass_recv(int sock, void *buf, size_t len, struct sb_fdpass_in *in)
{
	union control control;
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	int before = in->n;
	ssize_t n;

	in->truncated = false;
	if (in->room < in->max || in->room > SB_FDPASS_ROOM_MAX) {
		return -EINVAL;
	}
	mh.msg_control = control.buf;
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)in->room);
	n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0) {
		return -errno;
	}
	collect(&mh, in);
	if ((mh.msg_flags & MSG_CTRUNC) != 0) {
		drop_truncated(in, before);
	}
	return n;
}
