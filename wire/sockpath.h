/*
 * sockpath.h - where the broker listens when nobody says otherwise. The
 * broker and every client compute it with this one function, so they agree:
 * $SHMBUS_SOCKET, else $XDG_RUNTIME_DIR/shmbus/shmbusd.sock, else
 * /tmp/shmbus-$UID/shmbusd.sock.
 */
#ifndef SB_SOCKPATH_H
#define SB_SOCKPATH_H

#include <stddef.h>

/* Longest socket path: what fits in sockaddr_un.sun_path with its NUL. */
#define SB_SOCKET_PATH_MAX 107

/* Writes the default socket path into `buf`. Returns 0, -EINVAL (NULL), or
 * -ENAMETOOLONG when the path would not fit a Unix socket address. */
int sb_socket_default_path(char *buf, size_t len);

#endif
