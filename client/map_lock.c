/*
 * map_lock.c - the mapping's lock (AccessData on Win32): an error-checking
 * mutex for the threads of this process, and flock(2) on this process's own
 * open file description of the object for the other processes.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "client/map_internal.h"
#include "sys/deadline.h"

/* The lock's polling back-off: short first naps so an uncontended hand-over
 * is quick, capped so a long wait costs little CPU. In nanoseconds. */
#define BACKOFF_FIRST_NS 20000L
#define BACKOFF_MAX_NS	 2000000L

/*
 * Takes the process-local mutex within the timeout. The deadline is on
 * CLOCK_MONOTONIC, so setting the wall clock cannot stretch or cut a wait.
 * (GCC 12's ThreadSanitizer does not intercept pthread_mutex_clocklock and
 * then reports the matching unlock as a bogus "unlock of unlocked mutex".)
 */
static int lock_threads(shmbus_map *map, int timeout_ms,
			const struct timespec *deadline)
{
	int rc;

	if (timeout_ms == 0) {
		rc = pthread_mutex_trylock(&map->lock_mutex);
		if (rc == EBUSY) {
			rc = ETIMEDOUT;
		}
	} else if (timeout_ms < 0) {
		rc = pthread_mutex_lock(&map->lock_mutex);
	} else {
		rc = pthread_mutex_clocklock(&map->lock_mutex, CLOCK_MONOTONIC,
					     deadline);
	}
	return -rc;
}

/*
 * Makes sure this process has its own open file description of the object
 * to flock. flock() locks belong to open file descriptions, which fork()
 * shares: a child using the parent's descriptor would share the parent's
 * lock instead of competing for it, and would keep the parent's lock alive
 * after the parent died. Reopening through /proc gives a description of
 * the same object that only this process holds. Called with lock_mutex.
 */
static int own_lock_fd(shmbus_map *map)
{
	char path[32];
	pid_t pid = getpid();
	int fd;

	if (map->lock_fd >= 0 && map->lock_pid == pid) {
		return 0;
	}
	if (map->lock_fd >= 0) {
		/* Inherited through fork: the parent still has the
		 * description open, so closing our copy cannot drop the
		 * parent's lock. */
		close(map->lock_fd);
		map->lock_fd = -1;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", map->fd);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		return -errno;
	}
	map->lock_fd = fd;
	map->lock_pid = pid;
	return 0;
}

/*
 * Takes the flock. Polled rather than blocking when there is a deadline,
 * because flock() has no timeout of its own; the back-off doubles from
 * BACKOFF_FIRST_NS to BACKOFF_MAX_NS and never sleeps past the deadline.
 */
static int lock_processes(int fd, int timeout_ms,
			  const struct timespec *deadline)
{
	long backoff = BACKOFF_FIRST_NS;

	if (timeout_ms < 0) {
		while (flock(fd, LOCK_EX) < 0) {
			if (errno != EINTR) {
				return -errno;
			}
		}
		return 0;
	}
	for (;;) {
		struct timespec nap;
		long long left;

		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			return 0;
		}
		if (errno == EINTR) {
			continue;
		}
		if (errno != EWOULDBLOCK) {
			return -errno;
		}
		if (timeout_ms == 0) {
			return -ETIMEDOUT;
		}
		left = sb_deadline_remaining_ns(deadline);
		if (left == 0) {
			return -ETIMEDOUT;
		}
		if (left > backoff) {
			left = backoff;
		}
		nap.tv_sec = 0;
		nap.tv_nsec = (long)left;
		clock_nanosleep(CLOCK_MONOTONIC, 0, &nap, NULL);
		if (backoff < BACKOFF_MAX_NS) {
			backoff *= 2;
			if (backoff > BACKOFF_MAX_NS) {
				backoff = BACKOFF_MAX_NS;
			}
		}
	}
}

int shmbus_map_lock(shmbus_map *map, int timeout_ms)
{
	struct timespec deadline = {0, 0};
	int rc;

	if (map == NULL || timeout_ms < -1) {
		return -EINVAL;
	}
	/* Checked first because pthread_mutex_trylock() reports EBUSY, not
	 * EDEADLK, to the thread that already holds the mutex. */
	if (lock_held_here(map)) {
		return -EDEADLK;
	}
	if (timeout_ms > 0) {
		sb_deadline_init(timeout_ms, &deadline);
	}
	rc = lock_threads(map, timeout_ms, &deadline);
	if (rc != 0) {
		return rc;
	}
	rc = own_lock_fd(map);
	if (rc == 0) {
		rc = lock_processes(map->lock_fd, timeout_ms, &deadline);
	}
	if (rc != 0) {
		pthread_mutex_unlock(&map->lock_mutex);
		return rc;
	}
	atomic_store_explicit(&map->lock_owner, gettid(), memory_order_relaxed);
	return 0;
}

int shmbus_map_unlock(shmbus_map *map)
{
	if (map == NULL) {
		return -EINVAL;
	}
	if (!lock_held_here(map)) {
		return -EPERM;
	}
	flock(map->lock_fd, LOCK_UN);
	atomic_store_explicit(&map->lock_owner, 0, memory_order_relaxed);
	pthread_mutex_unlock(&map->lock_mutex);
	return 0;
}
