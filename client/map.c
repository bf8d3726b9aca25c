/*
 * map.c - the mapping layer: the Win32 file-mapping model (CreateFileMapping,
 * OpenFileMapping, MapViewOfFile, AccessData) on Linux descriptors, mmap and
 * flock. Every mapping owns one descriptor so that files, private memory and
 * named shared memory are viewed, flushed and locked the same way. This
 * file makes, opens and closes mapping objects; the lock is map_lock.c's,
 * views are map_view.c's.
 */
#include "client/map_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "sys/barrier.h"
#include "sys/deadline.h"
#include "sys/futex.h"
#include "sys/identity.h"

/* "/" + name + NUL: the form shm_open() wants. */
#define SHM_PATH_SIZE (1 + SHMBUS_MAP_NAME_MAX + 1)

/*
 * Checks a mapping name and writes the shm_open() path for it. A Win32
 * mapping name has no directory structure, so after one optional leading
 * '/' there must be 1..SHMBUS_MAP_NAME_MAX characters without '/', and "."
 * and ".." (which name directories in /dev/shm) are refused.
 */
static int shm_path(const char *name, char *path)
{
	size_t len;

	if (name == NULL) {
		return -EINVAL;
	}
	if (name[0] == '/') {
		name++;
	}
	len = strnlen(name, SHMBUS_MAP_NAME_MAX + 1);
	if (len == 0 || len > SHMBUS_MAP_NAME_MAX) {
		return -EINVAL;
	}
	if (memchr(name, '/', len) != NULL || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0) {
		return -EINVAL;
	}
	path[0] = '/';
	memcpy(path + 1, name, len + 1);
	return 0;
}

/*
 * Validates the flags of shmbus_map_file() / shmbus_map_shared(). CREATE
 * and TRUNCATE need WRITE: a created or emptied object has to be sized,
 * which a read-only descriptor cannot do. EXCL only means something with
 * CREATE.
 */
static int check_open_flags(unsigned flags, unsigned *access)
{
	if ((flags & ~OPEN_MASK) != 0) {
		return -EINVAL;
	}
	*access = one_access(flags);
	if (*access == 0) {
		return -EINVAL;
	}
	if ((flags & (SHMBUS_MAP_CREATE | SHMBUS_MAP_TRUNCATE)) != 0 &&
	    *access != SHMBUS_ACCESS_WRITE) {
		return -EINVAL;
	}
	if ((flags & SHMBUS_MAP_EXCL) != 0 &&
	    (flags & SHMBUS_MAP_CREATE) == 0) {
		return -EINVAL;
	}
	return 0;
}

/* READ and COPY mappings get a read-only descriptor: a private write never
 * reaches the object, so it needs no write permission on it. */
static int open_mode(unsigned access)
{
	return access == SHMBUS_ACCESS_WRITE ? O_RDWR : O_RDONLY;
}

/*
 * Allocates every page of [0, size) so that a later access finds memory
 * instead of raising SIGBUS. posix_fallocate() returns the error number
 * rather than setting errno.
 */
static int commit(int fd, uint64_t size)
{
	int rc = posix_fallocate(fd, 0, (off_t)size);

	return -rc;
}

/* Wraps `fd` in a new mapping. On failure the caller still owns `fd`. */
static int map_new(int fd, unsigned access, shmbus_map **out)
{
	pthread_mutexattr_t attr;
	shmbus_map *map;
	int rc;

	map = calloc(1, sizeof(*map));
	if (map == NULL) {
		return -ENOMEM;
	}
	rc = pthread_mutex_init(&map->views_mutex, NULL);
	if (rc != 0) {
		free(map);
		return -rc;
	}
	/* Error-checking, so that a thread re-locking gets EDEADLK and an
	 * unlock by a thread that does not hold it gets EPERM. */
	rc = pthread_mutexattr_init(&attr);
	if (rc == 0) {
		rc = pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
		if (rc == 0) {
			rc = pthread_mutex_init(&map->lock_mutex, &attr);
		}
		pthread_mutexattr_destroy(&attr);
	}
	if (rc != 0) {
		pthread_mutex_destroy(&map->views_mutex);
		free(map);
		return -rc;
	}
	map->fd = fd;
	map->access = access;
	map->lock_fd = -1;
	map->lock_pid = 0;
	atomic_init(&map->lock_owner, 0);
	*out = map;
	return 0;
}

/* Regular files only: a directory is -EISDIR, and a FIFO or device cannot
 * be sized or mapped the way the contract promises. */
static int check_regular(const struct stat *st)
{
	if (S_ISDIR(st->st_mode)) {
		return -EISDIR;
	}
	if (!S_ISREG(st->st_mode)) {
		return -ENODEV;
	}
	return 0;
}

/*
 * Opens `path` (a file, or with `shm` a shm_open() name), creating it only
 * when asked. The object is first opened without O_CREAT so that we know
 * whether we created it: a failure later must remove what we created, and
 * must not create an empty object when the size is 0. *created says which.
 */
static int open_object(const char *path, bool shm, int oflags, unsigned flags,
		       uint64_t size, bool *created)
{
	int fd;

	*created = false;
	for (;;) {
		if ((flags & SHMBUS_MAP_EXCL) == 0) {
			fd = shm ? shm_open(path, oflags, 0)
				 : open(path, oflags);
			if (fd >= 0) {
				return fd;
			}
			if (errno != ENOENT ||
			    (flags & SHMBUS_MAP_CREATE) == 0) {
				return -errno;
			}
		}
		/* A new object of size 0 would be empty, which no view can
		 * map: refuse before anything is created. */
		if (size == 0) {
			return -EINVAL;
		}
		fd = shm ? shm_open(path, oflags | O_CREAT | O_EXCL, 0600)
			 : open(path, oflags | O_CREAT | O_EXCL, 0600);
		if (fd >= 0) {
			*created = true;
			return fd;
		}
		if (errno != EEXIST || (flags & SHMBUS_MAP_EXCL) != 0) {
			return -errno;
		}
		/* Someone else created it between our two opens: use theirs. */
	}
}

int shmbus_map_file(const char *path, uint64_t size, unsigned flags,
		    shmbus_map **out)
{
	unsigned access;
	struct stat st;
	bool created;
	int fd;
	int rc;

	if (path == NULL || out == NULL || size > INT64_MAX) {
		return -EINVAL;
	}
	rc = check_open_flags(flags, &access);
	if (rc != 0) {
		return rc;
	}
	if (size == 0 && (flags & SHMBUS_MAP_TRUNCATE) != 0) {
		return -EINVAL; /* the result would be an empty file */
	}
	/* O_NONBLOCK so that opening a FIFO by mistake cannot hang; it is
	 * cleared again below once we know the file is regular. */
	fd = open_object(path, false,
			 open_mode(access) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
			 flags, size, &created);
	if (fd < 0) {
		return fd;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto fail;
	}
	rc = check_regular(&st);
	if (rc != 0) {
		goto fail;
	}
	if (fcntl(fd, F_SETFL, 0) < 0) {
		rc = -errno;
		goto fail;
	}
	if ((flags & SHMBUS_MAP_TRUNCATE) != 0 && st.st_size > 0) {
		if (ftruncate(fd, 0) < 0) {
			rc = -errno;
			goto fail;
		}
		st.st_size = 0;
	}
	if (size > (uint64_t)st.st_size) {
		if (access != SHMBUS_ACCESS_WRITE) {
			rc = -EACCES;
			goto fail;
		}
		/* Sparse on purpose: a view deep inside a huge file must not
		 * need the disk space of everything before it. */
		if (ftruncate(fd, (off_t)size) < 0) {
			rc = -errno;
			goto fail;
		}
	} else if (st.st_size == 0) {
		rc = -EINVAL;
		goto fail;
	}
	rc = map_new(fd, access, out);
	if (rc != 0) {
		goto fail;
	}
	return 0;

fail:
	close(fd);
	if (created) {
		unlink(path);
	}
	return rc;
}

/*
 * Committing more than the machine has in RAM and swap cannot succeed, and
 * a memfd (unlike a sized tmpfs mount) has no limit that makes the kernel
 * refuse it early: it would fill memory page by page until the OOM killer
 * stepped in. Refuse such sizes at once.
 */
static bool exceeds_memory(uint64_t size)
{
	struct sysinfo si;
	uint64_t total;

	if (sysinfo(&si) < 0) {
		return false;
	}
	total = ((uint64_t)si.totalram + (uint64_t)si.totalswap) *
		(uint64_t)si.mem_unit;
	return size > total;
}

int shmbus_map_memory(uint64_t size, shmbus_map **out)
{
	int fd;
	int rc;

	if (out == NULL || size == 0 || size > INT64_MAX) {
		return -EINVAL;
	}
	if (exceeds_memory(size)) {
		return -ENOMEM;
	}
	fd = memfd_create("shmbus-memory", MFD_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	rc = commit(fd, size);
	if (rc == 0) {
		rc = map_new(fd, SHMBUS_ACCESS_WRITE, out);
	}
	if (rc != 0) {
		close(fd);
	}
	return rc;
}

int shmbus_map_shared(const char *name, uint64_t size, unsigned flags,
		      shmbus_map **out)
{
	char path[SHM_PATH_SIZE];
	unsigned access;
	struct stat st;
	bool created;
	int fd;
	int rc;

	if (out == NULL || size > INT64_MAX) {
		return -EINVAL;
	}
	rc = shm_path(name, path);
	if (rc != 0) {
		return rc;
	}
	rc = check_open_flags(flags, &access);
	if (rc != 0) {
		return rc;
	}
	if (size == 0 && (flags & SHMBUS_MAP_TRUNCATE) != 0) {
		return -EINVAL;
	}
	fd = open_object(path, true, open_mode(access) | O_CLOEXEC, flags, size,
			 &created);
	if (fd < 0) {
		return fd;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto fail;
	}
	if ((flags & SHMBUS_MAP_TRUNCATE) != 0 && st.st_size > 0) {
		if (ftruncate(fd, 0) < 0) {
			rc = -errno;
			goto fail;
		}
		st.st_size = 0;
	}
	if (size > (uint64_t)st.st_size) {
		if (access != SHMBUS_ACCESS_WRITE) {
			rc = -EACCES;
			goto fail;
		}
		rc = commit(fd, size);
		if (rc != 0) {
			goto fail;
		}
	} else if (st.st_size == 0) {
		rc = -EINVAL;
		goto fail;
	}
	rc = map_new(fd, access, out);
	if (rc != 0) {
		goto fail;
	}
	return 0;

fail:
	close(fd);
	if (created) {
		shm_unlink(path);
	}
	return rc;
}

int shmbus_map_open(const char *name, unsigned access, shmbus_map **out)
{
	char path[SHM_PATH_SIZE];
	int fd;
	int rc;

	if (out == NULL || (access & ~ACCESS_MASK) != 0 ||
	    one_access(access) == 0) {
		return -EINVAL;
	}
	rc = shm_path(name, path);
	if (rc != 0) {
		return rc;
	}
	fd = shm_open(path, open_mode(access) | O_CLOEXEC, 0);
	if (fd < 0) {
		return -errno;
	}
	rc = map_new(fd, access, out);
	if (rc != 0) {
		close(fd);
	}
	return rc;
}

int shmbus_map_unlink(const char *name)
{
	char path[SHM_PATH_SIZE];
	int rc = shm_path(name, path);

	if (rc != 0) {
		return rc;
	}
	return shm_unlink(path) < 0 ? -errno : 0;
}

int shmbus_map_close(shmbus_map *map)
{
	struct shmbus_view *view;
	struct shmbus_view *next;

	if (map == NULL) {
		return -EINVAL;
	}
	pthread_mutex_lock(&map->views_mutex);
	view = map->views;
	map->views = NULL;
	pthread_mutex_unlock(&map->views_mutex);
	for (; view != NULL; view = next) {
		next = view->next;
		munmap(view->base, view->span);
		free(view);
	}
	if (lock_held_here(map)) {
		flock(map->lock_fd, LOCK_UN);
		atomic_store_explicit(&map->lock_owner, 0,
				      memory_order_relaxed);
		pthread_mutex_unlock(&map->lock_mutex);
	}
	/* In a child that inherited the mapping this may be the parent's
	 * lock description; closing our copy of it leaves the parent's
	 * lock alone. */
	if (map->lock_fd >= 0) {
		close(map->lock_fd);
	}
	close(map->fd);
	pthread_mutex_destroy(&map->lock_mutex);
	pthread_mutex_destroy(&map->views_mutex);
	free(map);
	return 0;
}

int64_t shmbus_map_size(const shmbus_map *map)
{
	struct stat st;

	if (map == NULL) {
		return -EINVAL;
	}
	if (fstat(map->fd, &st) < 0) {
		return -errno;
	}
	return (int64_t)st.st_size;
}

int shmbus_map_fd(const shmbus_map *map)
{
	return map == NULL ? -EINVAL : map->fd;
}
