/*
 * fdpass.h - descriptor passing on a Unix stream socket (SCM_RIGHTS), for
 * the broker and the client alike: one send that attaches descriptors to
 * its first byte, and one receive that keeps the descriptors a message
 * brings, closes the ones beyond the caller's limit and closes everything a
 * cut-off control message brought, so that none ever leaks. Both calls
 * never block (MSG_DONTWAIT): the callers wait with poll.
 */
#ifndef SB_WIRE_FDPASS_H
#define SB_WIRE_FDPASS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Most descriptors one message may carry, in either direction. */
#define SB_FDPASS_MAX 5

/* Most room one receive may leave for descriptors: beyond its `max`, a few
 * extra ones are then received (and closed) rather than cut off. */
#define SB_FDPASS_ROOM_MAX (2 * SB_FDPASS_MAX)

/*
 * Where the descriptors of a stream of receives go. `n` and `extra` carry
 * from one receive to the next (descriptors may come with any chunk of a
 * frame); the caller sets the rest once.
 */
struct sb_fdpass_in {
	int *fds;	/* kept descriptors: fds[0 .. n) */
	int n;		/* kept so far */
	int max;	/* room in fds */
	int room;	/* descriptors a receive takes: max .. ROOM_MAX */
	int extra;	/* received beyond max, and closed */
	bool truncated; /* the last receive's control data was cut off
			 * (MSG_CTRUNC); what it brought was closed */
};

/*
 * One sendmsg of `len` bytes of `buf` with `nfds` descriptors on its first
 * byte (none when nfds is 0). MSG_NOSIGNAL: a peer gone is -EPIPE, not a
 * SIGPIPE. Returns the bytes sent, -EINVAL when nfds is negative or over
 * SB_FDPASS_MAX (nothing sent), or -errno of sendmsg (-EAGAIN when full).
 */
ssize_t sb_fdpass_send(int sock, const void *buf, size_t len, const int *fds,
		       int nfds);

/*
 * One recvmsg of up to `len` bytes into `buf`. Received descriptors are
 * close-on-exec from the start (MSG_CMSG_CLOEXEC), so that none leaks into
 * a child another thread execs meanwhile. They are appended to in->fds up
 * to in->max, and closed and counted in in->extra beyond it; control
 * messages other than SCM_RIGHTS carry none and are ignored. When the
 * control data was cut off, every descriptor this receive brought is
 * closed, in->n is left as it was and in->truncated is set.
 * Returns the bytes received (0: end of stream), -EINVAL when in->room is
 * out of range, or -errno of recvmsg (-EAGAIN when there is nothing).
 */
ssize_t sb_fdpass_recv(int sock, void *buf, size_t len,
		       struct sb_fdpass_in *in);

#endif
