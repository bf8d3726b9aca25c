/*
 * errors.h - the one list of error codes shmbus gives a meaning to: for
 * each, whether it travels in the control protocol's envelope (by name,
 * wire/message.c) and what it means to a user of the library
 * (shmbus_strerror(), client/error.c). One list, so that a code the broker
 * can send always has a text, and a text never names a code the wire drops.
 * X(code, on_wire, text); on_wire 1: named in replies (docs/protocol.md,
 * "Error codes"). A code missing here reaches the other side of the socket
 * as -EPROTO (incoming) or "EIO" (outgoing), and shmbus_strerror() falls
 * back to glibc's description.
 */
#ifndef SB_WIRE_ERRORS_H
#define SB_WIRE_ERRORS_H

#define SB_ERRNO_MAP(X)                                                        \
	X(EINVAL, 1, "invalid argument")                                       \
	X(ENOENT, 1, "no such mapping, file, topic or broker socket")          \
	X(EEXIST, 1, "already exists")                                         \
	X(EACCES, 1, "permission denied")                                      \
	X(EPERM, 1,                                                            \
	  "operation not permitted (lock not held, or the broker or its "      \
	  "memory belongs to an untrusted user)")                              \
	X(ENOMEM, 1, "out of memory or address space")                         \
	X(ENOSPC, 1, "no space left for the mapping")                          \
	X(ERANGE, 1, "offset or length outside the mapping or view")           \
	X(ETIMEDOUT, 1, "timed out")                                           \
	X(EAGAIN, 1, "would block (ring full or empty)")                       \
	X(EMSGSIZE, 1, "message too large for the topic or buffer")            \
	X(EPROTO, 1, "protocol error")                                         \
	X(EBUSY, 1, "resource busy")                                           \
	X(EMFILE, 1, "too many open descriptors")                              \
	X(ENFILE, 1, "too many open descriptors in the system")                \
	X(EUSERS, 1, "too many subscribers or clients")                        \
	X(ENOTSUP, 1, "not supported")                                         \
	X(EBADMSG, 1, "corrupted shared memory (bad record or header)")        \
	X(EOVERFLOW, 1, "value too large")                                     \
	X(ENAMETOOLONG, 1, "name too long")                                    \
	X(EIO, 1, "input/output error")                                        \
	X(EBADF, 1, "bad descriptor")                                          \
	X(EDEADLK, 1, "lock already held by this mapping")                     \
	X(EOWNERDEAD, 1, "previous lock holder died")                          \
	X(ENOTRECOVERABLE, 1, "shared state is not recoverable")               \
	X(EISDIR, 1, "is a directory")                                         \
	X(ENOTDIR, 1,                                                          \
	  "not a directory (a path component, or the socket's directory)")     \
	X(EROFS, 1, "topic is read-only: only subscribers handed it back")     \
	X(EFBIG, 1,                                                            \
	  "topic larger than the broker may create (file size "                \
	  "limit)")                                                            \
	X(ELOOP, 1, "a symlink where the broker's file should be")             \
	X(EDQUOT, 1, "disk quota exceeded (a persistent topic's file)")        \
	X(ENODEV, 1, "the object cannot be mapped")                            \
	X(ECONNRESET, 1, "connection to the broker lost")                      \
	X(ECONNREFUSED, 1, "no broker is listening")                           \
	X(ENOTCONN, 1, "not connected to the broker")                          \
	X(EPIPE, 1, "peer closed the connection")                              \
	X(ESTALE, 1,                                                           \
	  "no longer valid: a held message was overwritten or taken by "       \
	  "another consumer, or a subscriber's slot is no longer awaited")     \
	X(EHOSTUNREACH, 1, "no server serves the service (no responders)")     \
	X(ECONNABORTED, 0,                                                     \
	  "the server holding the request went away before it answered")       \
	X(EIDRM, 0,                                                            \
	  "subscriber evicted by the broker (shmbus evict or max_stall_ms): "  \
	  "close it and subscribe again")

#endif
