/*
 * map.c - the mapping layer: the Win32 file-mapping model (CreateFileMapping,
 * OpenFileMapping, MapViewOfFile, AccessData) on Linux descriptors, mmap and
 * flock. Every mapping owns one descriptor so that files, private memory and
 * named shared memory are viewed, flushed and locked the same way.
 */
#include "shmbus/map.h"

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

#define ACCESS_MASK                                                            \
	(SHMBUS_ACCESS_READ | SHMBUS_ACCESS_WRITE | SHMBUS_ACCESS_COPY)
#define OPEN_MASK                                                              \
	(ACCESS_MASK | SHMBUS_MAP_CREATE | SHMBUS_MAP_EXCL |                   \
	 SHMBUS_MAP_TRUNCATE)
#define HINT_MASK (SHMBUS_VIEW_SEQUENTIAL | SHMBUS_VIEW_RANDOM)
#define VIEW_MASK (ACCESS_MASK | HINT_MASK)

/* "/" + name + NUL: the form shm_open() wants. */
#define SHM_PATH_SIZE (1 + SHMBUS_MAP_NAME_MAX + 1)

/* The lock's polling back-off: short first naps so an uncontended hand-over
 * is quick, capped so a long wait costs little CPU. In nanoseconds. */
#define BACKOFF_FIRST_NS 20000L
#define BACKOFF_MAX_NS	 2000000L

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

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

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

/* Exactly one of READ, WRITE, COPY in `flags`: returns it, or 0. */
static unsigned one_access(unsigned flags)
{
	unsigned access = flags & ACCESS_MASK;

	if (access == SHMBUS_ACCESS_READ || access == SHMBUS_ACCESS_WRITE ||
	    access == SHMBUS_ACCESS_COPY) {
		return access;
	}
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

/* Does the calling thread hold `map`'s lock? See lock_owner. */
static bool lock_held_here(const shmbus_map *map)
{
	return atomic_load_explicit(&map->lock_owner, memory_order_relaxed) ==
	       gettid();
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

/*
 * The common part of shmbus_view_map() and shmbus_view_map_at(): `address`
 * is NULL to let the kernel choose.
 */
static int view_map(shmbus_map *map, uint64_t offset, size_t length,
		    unsigned access, void *address, shmbus_view **out)
{
	unsigned kind = one_access(access);
	unsigned hint = access & HINT_MASK;
	struct shmbus_view *view;
	size_t page = page_size();
	int prot = PROT_READ;
	int mflags = MAP_SHARED;
	uint64_t size;
	size_t delta;
	size_t span;
	void *want = NULL;
	void *base;
	struct stat st;

	if (map == NULL || out == NULL || (access & ~VIEW_MASK) != 0 ||
	    kind == 0 || hint == HINT_MASK) {
		return -EINVAL;
	}
	if (kind == SHMBUS_ACCESS_WRITE && map->access != SHMBUS_ACCESS_WRITE) {
		return -EACCES;
	}
	/* Checked against the object's size now, so that a view never
	 * reaches past the end (where an access would raise SIGBUS). */
	if (fstat(map->fd, &st) < 0) {
		return -errno;
	}
	size = (uint64_t)st.st_size;
	if (offset >= size) {
		return -ERANGE;
	}
	if (length == 0) {
		if (size - offset > SIZE_MAX) {
			return -ENOMEM;
		}
		length = (size_t)(size - offset);
	} else if ((uint64_t)length > size - offset) {
		return -ERANGE;
	}
	delta = (size_t)(offset % page);
	if (length > SIZE_MAX - delta) {
		return -ENOMEM;
	}
	span = length + delta;
	if (address != NULL) {
		if ((uintptr_t)address % page != delta) {
			return -EINVAL;
		}
		want = (unsigned char *)address - delta;
		mflags |= MAP_FIXED_NOREPLACE;
	}
	if (kind == SHMBUS_ACCESS_WRITE) {
		prot |= PROT_WRITE;
	} else if (kind == SHMBUS_ACCESS_COPY) {
		prot |= PROT_WRITE;
		mflags = (mflags & ~MAP_SHARED) | MAP_PRIVATE;
	}
	base = mmap(want, span, prot, mflags, map->fd, (off_t)(offset - delta));
	if (base == MAP_FAILED) {
		return -errno;
	}
	/* Kernels before 4.17 ignore MAP_FIXED_NOREPLACE and treat the
	 * address as a hint; a view somewhere else is not what was asked. */
	if (want != NULL && base != want) {
		munmap(base, span);
		return -EEXIST;
	}
	if (hint != 0) {
		int advice = hint == SHMBUS_VIEW_SEQUENTIAL ? MADV_SEQUENTIAL
							    : MADV_RANDOM;

		if (madvise(base, span, advice) < 0) {
			int rc = -errno;

			munmap(base, span);
			return rc;
		}
	}
	view = calloc(1, sizeof(*view));
	if (view == NULL) {
		munmap(base, span);
		return -ENOMEM;
	}
	view->map = map;
	view->base = base;
	view->span = span;
	view->data = (unsigned char *)base + delta;
	view->length = length;
	pthread_mutex_lock(&map->views_mutex);
	view->next = map->views;
	if (map->views != NULL) {
		map->views->prev = view;
	}
	map->views = view;
	pthread_mutex_unlock(&map->views_mutex);
	*out = view;
	return 0;
}

int shmbus_view_map(shmbus_map *map, uint64_t offset, size_t length,
		    unsigned access, shmbus_view **out)
{
	return view_map(map, offset, length, access, NULL, out);
}

int shmbus_view_map_at(shmbus_map *map, uint64_t offset, size_t length,
		       unsigned access, void *address, shmbus_view **out)
{
	if (address == NULL) {
		return -EINVAL;
	}
	return view_map(map, offset, length, access, address, out);
}

void *shmbus_view_data(const shmbus_view *view)
{
	return view == NULL ? NULL : view->data;
}

size_t shmbus_view_size(const shmbus_view *view)
{
	return view == NULL ? 0 : view->length;
}

int shmbus_view_flush(shmbus_view *view, size_t offset, size_t length)
{
	unsigned char *start;
	unsigned char *first;
	size_t page = page_size();

	if (view == NULL) {
		return -EINVAL;
	}
	if (offset >= view->length) {
		return -ERANGE;
	}
	if (length == 0) {
		length = view->length - offset;
	} else if (length > view->length - offset) {
		return -ERANGE;
	}
	/* msync() wants a page-aligned start; the view's base is aligned and
	 * at or before data, so rounding down stays inside the mapping. */
	start = view->data + offset;
	first = start - ((uintptr_t)start % page);
	if (msync(first, (size_t)(start + length - first), MS_SYNC) < 0) {
		return -errno;
	}
	return 0;
}

int shmbus_view_unmap(shmbus_view *view)
{
	shmbus_map *map;

	if (view == NULL) {
		return -EINVAL;
	}
	map = view->map;
	pthread_mutex_lock(&map->views_mutex);
	if (view->prev != NULL) {
		view->prev->next = view->next;
	} else {
		map->views = view->next;
	}
	if (view->next != NULL) {
		view->next->prev = view->prev;
	}
	pthread_mutex_unlock(&map->views_mutex);
	munmap(view->base, view->span);
	free(view);
	return 0;
}
