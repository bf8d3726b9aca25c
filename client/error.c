/*
 * error.c - shmbus_strerror(): one table names every error code the library
 * returns, in the words of the library rather than of the kernel call that
 * happened to produce it. Codes outside the table fall back to glibc's
 * thread-safe description, so any errno a system call passes through still
 * reads sensibly.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "shmbus/map.h"

/* The codes the library itself returns, with what they mean here. */
#define SB_ERRORS(X)                                                           \
	X(EINVAL, "invalid argument")                                          \
	X(ENOENT, "no such mapping, file, topic or broker socket")             \
	X(EEXIST, "already exists")                                            \
	X(EACCES, "permission denied")                                         \
	X(EPERM, "operation not permitted (lock not held, or the broker or "   \
		 "its memory belongs to an untrusted user)")                   \
	X(ENOMEM, "out of memory or address space")                            \
	X(ENOSPC, "no space left for the mapping")                             \
	X(ERANGE, "offset or length outside the mapping or view")              \
	X(ETIMEDOUT, "timed out")                                              \
	X(EAGAIN, "would block (ring full or empty)")                          \
	X(EMSGSIZE, "message too large for the topic or buffer")               \
	X(EPROTO, "protocol error")                                            \
	X(ECONNRESET, "connection to the broker lost")                         \
	X(ECONNREFUSED, "no broker is listening")                              \
	X(EBADF, "bad descriptor")                                             \
	X(EDEADLK, "lock already held by this mapping")                        \
	X(EBADMSG, "corrupted shared memory (bad record or header)")           \
	X(EOWNERDEAD, "previous lock holder died")                             \
	X(ENOTRECOVERABLE, "shared state is not recoverable")                  \
	X(EBUSY, "resource busy")                                              \
	X(EMFILE, "too many open descriptors")                                 \
	X(ENAMETOOLONG, "name too long")                                       \
	X(EISDIR, "is a directory")                                            \
	X(EOVERFLOW, "value too large")                                        \
	X(ENOTCONN, "not connected to the broker")                             \
	X(EPIPE, "peer closed the connection")                                 \
	X(ENODEV, "the object cannot be mapped")                               \
	X(EUSERS, "too many subscribers or clients")                           \
	X(ENOTSUP, "not supported")                                            \
	X(EROFS, "topic is read-only: only subscribers handed it back")        \
	X(EFBIG, "topic larger than the broker may create (file size limit)")  \
	X(ELOOP, "a symlink where the broker's file should be")                \
	X(ENFILE, "too many open descriptors in the system")                   \
	X(EIO, "input/output error")                                           \
	X(EIDRM, "subscriber evicted by the broker (shmbus evict or "          \
		 "max_stall_ms): close it and subscribe again")

const char *shmbus_strerror(int err)
{
	const char *desc;

	if (err == INT_MIN) {
		return "unknown error code";
	}
	if (err < 0) {
		err = -err;
	}
	switch (err) {
	case 0:
		return "success";
#define SB_ERROR_CASE(code, text)                                              \
	case code:                                                             \
		return text;
		SB_ERRORS(SB_ERROR_CASE)
#undef SB_ERROR_CASE
	default:
		break;
	}
	desc = strerrordesc_np(err);
	return desc != NULL ? desc : "unknown error code";
}
