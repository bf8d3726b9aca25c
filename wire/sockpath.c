/*
 * sockpath.c - the default socket path (see sockpath.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "wire/sockpath.h"

int sb_socket_default_path(char *buf, size_t len)
{
	const char *env = getenv("SHMBUS_SOCKET");
	const char *runtime = getenv("XDG_RUNTIME_DIR");
	int n;

	if (buf == NULL || len == 0) {
		return -EINVAL;
	}
	if (env != NULL && env[0] != '\0') {
		n = snprintf(buf, len, "%s", env);
	} else if (runtime != NULL && runtime[0] == '/') {
		n = snprintf(buf, len, "%s/shmbus/shmbusd.sock", runtime);
	} else {
		n = snprintf(buf, len, "/tmp/shmbus-%lu/shmbusd.sock",
			     (unsigned long)getuid());
	}
	if (n < 0 || (size_t)n >= len || (size_t)n > SB_SOCKET_PATH_MAX) {
		return -ENAMETOOLONG;
	}
	return 0;
}
