/*
 * memfd.c - the memory the broker hands out: sealed memfds, committed so
 * that a touch never raises SIGBUS, named after their topic, and read-only
 * descriptors of them. Used by topic.c (a topic's two segments) and
 * slots.c (each subscriber's slot segment).
 */
#include "daemon/broker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/log.h"

#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* Commits `size` bytes of `fd`, so that a later touch never raises SIGBUS:
 * a full tmpfs becomes ENOSPC here, in a reply, instead. */
static int commit_size(int fd, uint64_t size, const char *what,
		       const char *topic)
{
	int r;

	if (ftruncate(fd, (off_t)size) < 0) {
		r = -errno;
		sbd_error("ftruncate(%s of topic \"%s\"): %s", what, topic,
			  strerror(-r));
		return r;
	}
	r = posix_fallocate(fd, 0, (off_t)size);
	if (r != 0) {
		sbd_error("posix_fallocate(%s of topic \"%s\", %" PRIu64
			  " bytes): %s",
			  what, topic, size, strerror(r));
		return -r;
	}
	return 0;
}

void sbd_memfd_name(const char *topic, const char *suffix, char *out,
		    size_t len)
{
	snprintf(out, len, "shmbus:%s%s", topic, suffix);
}

/* A sealed memfd of `size` bytes named by sbd_memfd_name() (what
 * /proc/PID/maps shows of it). */
int sbd_memfd(const char *topic, const char *suffix, uint64_t size,
	      const char *what, int *out)
{
	char name[256];
	int fd, r;

	sbd_memfd_name(topic, suffix, name, sizeof(name));
	fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		r = -errno;
		sbd_error("memfd_create(%s of topic \"%s\"): %s", what, topic,
			  strerror(-r));
		return r;
	}
	r = commit_size(fd, size, what, topic);
	if (r == 0 && fcntl(fd, F_ADD_SEALS, SEALS) < 0) {
		r = -errno;
		sbd_error("fcntl(F_ADD_SEALS, %s of topic \"%s\"): %s", what,
			  topic, strerror(-r));
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	*out = fd;
	return 0;
}

/* A read-only descriptor of the memory `fd` is open on (reopened through
 * /proc, as a memfd has no path), or -errno. */
int sbd_reopen_read_only(int fd)
{
	char path[64];
	int ro;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	return ro >= 0 ? ro : -errno;
}
