/*
 * map_internal.h - the mapping object and its views (struct shmbus_map,
 * struct shmbus_view), shared by the files of the mapping layer: map.c
 * (creating, opening and closing mappings), map_lock.c (the lock) and
 * map_view.c (views). Not installed.
 */
#ifndef SB_CLIENT_MAP_INTERNAL_H
#define SB_CLIENT_MAP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <unistd.h>

#include "shmbus/map.h"
#include "sys/identity.h"

#define ACCESS_MASK                                                            \
	(SHMBUS_ACCESS_READ | SHMBUS_ACCESS_WRITE | SHMBUS_ACCESS_COPY)
#define OPEN_MASK                                                              \
	(ACCESS_MASK | SHMBUS_MAP_CREATE | SHMBUS_MAP_EXCL |                   \
	 SHMBUS_MAP_TRUNCATE)
#define HINT_MASK (SHMBUS_VIEW_SEQUENTIAL | SHMBUS_VIEW_RANDOM)
#define VIEW_MASK (ACCESS_MASK | HINT_MASK)

struct shmbus_view {
	shmbus_map *map;
	struct shmbus_view *prev;
	struct shmbus_view *next;
	void *base;	     /* page-aligned start of the mmap */
	size_t span;	     /* bytes mapped from base */
	unsigned char *data; /* the byte at the view's offset */
	size_t length;	     /* bytes the caller asked for */
};

struct shmbus_map {
	int fd;		 /* the one descriptor: file, memfd or shm */
	unsigned access; /* SHMBUS_ACCESS_READ, _WRITE or _COPY */

	pthread_mutex_t views_mutex; /* guards views */
	struct shmbus_view *views;

	/*
	 * The lock. lock_mutex (error-checking) serialises the threads of this
	 * process that share the mapping; lock_fd is this process's own open
	 * file description of the object, which carries the flock() that
	 * excludes other processes. lock_fd and lock_pid are only touched with
	 * lock_mutex held.
	 */
	pthread_mutex_t lock_mutex;
	int lock_fd;
	pid_t lock_pid; /* the process that opened lock_fd */
	/*
	 * Thread id of the holder, 0 when free. Written only by the holder
	 * (with lock_mutex held) and compared only against the reader's own id
	 * to answer "do I hold it?", so relaxed is enough: a thread always sees
	 * its own last store, and no other thread ever stores its id.
	 */
	_Atomic pid_t lock_owner;
};

/* Exactly one of READ, WRITE, COPY in `flags`: returns it, or 0. */
static inline unsigned one_access(unsigned flags)
{
	unsigned access = flags & ACCESS_MASK;

	if (access == SHMBUS_ACCESS_READ || access == SHMBUS_ACCESS_WRITE ||
	    access == SHMBUS_ACCESS_COPY) {
		return access;
	}
	return 0;
}

/* Does the calling thread hold `map`'s lock? See lock_owner. */
static inline bool lock_held_here(const shmbus_map *map)
{
	return atomic_load_explicit(&map->lock_owner, memory_order_relaxed) ==
	       gettid();
}

#endif
