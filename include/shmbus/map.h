/*
 * shmbus/map.h - memory-mapped files, the Linux form of the Win32
 * file-mapping model (CreateFileMapping, OpenFileMapping, MapViewOfFile).
 * Usable on its own; the message bus (shmbus.h) is built on top of it.
 *
 * A mapping (shmbus_map) is the mapping object: a persisted file, private
 * memory or named shared memory, always backed by one descriptor. Bytes are
 * reached through views (shmbus_view): windows of the mapping at any offset
 * and length. Several views of one mapping, in one process or many, see the
 * same bytes (copy-on-write views excepted).
 *
 * Errors: every fallible function returns 0 (or a size) on success and a
 * negative errno value on failure; shmbus_strerror() names each one. No
 * global error state is set.
 *
 * Threads: a mapping and its views may be used from several threads; the
 * list of views is guarded internally. shmbus_map_close() must not race with
 * any other call on the same mapping or its views.
 */
#ifndef SHMBUS_MAP_H
#define SHMBUS_MAP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SHMBUS_API __attribute__((visibility("default")))
#else
#define SHMBUS_API
#endif

/* Access: what a mapping is opened for, and what a view may do. */
#define SHMBUS_ACCESS_READ  0x0001u /* PAGE_READONLY: writes fault */
#define SHMBUS_ACCESS_WRITE 0x0002u /* PAGE_READWRITE: implies read */
#define SHMBUS_ACCESS_COPY  0x0004u /* FILE_MAP_COPY: private writes */

/* Creation, for shmbus_map_file() and shmbus_map_shared(). CREATE and
 * TRUNCATE need SHMBUS_ACCESS_WRITE (the object must then be sized). */
#define SHMBUS_MAP_CREATE   0x0100u /* create when missing */
#define SHMBUS_MAP_EXCL	    0x0200u /* with CREATE: fail if it exists */
#define SHMBUS_MAP_TRUNCATE 0x0400u /* empty an existing object first */

/* Access-pattern hints for a view (madvise), or-ed into a view's access. */
#define SHMBUS_VIEW_SEQUENTIAL 0x1000u /* stream access view */
#define SHMBUS_VIEW_RANDOM     0x2000u /* random access view */

/* Longest name for shmbus_map_shared() / shmbus_map_open(), leading '/'
 * not counted. */
#define SHMBUS_MAP_NAME_MAX 250

typedef struct shmbus_map shmbus_map;
typedef struct shmbus_view shmbus_view;

/*
 * Opens (or with SHMBUS_MAP_CREATE creates, mode 0600) the disk file `path`
 * and makes it a persisted mapping. `flags`: exactly one access (READ, WRITE
 * or COPY) or-ed with CREATE, EXCL, TRUNCATE. When `size` is larger than the
 * file the file grows to `size` (sparse, needs WRITE); a smaller `size`
 * never shrinks it; `size` 0 means the file's own size. Writes through a
 * view reach the file: other processes mapping it see them at once (and so
 * does read(), through the page cache); shmbus_view_flush() makes them
 * durable. READ and COPY open the file read-only. A file this call created
 * is removed again if the call then fails.
 * Returns 0 and sets *out, or: -EINVAL (NULL argument, unknown flag, not
 * exactly one access, CREATE or TRUNCATE without WRITE, EXCL without
 * CREATE, `size` above INT64_MAX, a result that would be empty: a missing
 * or existing empty file with size 0, TRUNCATE with size 0), -EACCES
 * (growing a mapping opened without WRITE, or the file's permissions),
 * -ENOENT (missing and no CREATE), -EEXIST (EXCL and it exists), -EISDIR,
 * -ENODEV (not a regular file: FIFO, device), -ENOMEM, -EFBIG (larger than
 * the file system allows), or another errno from open/ftruncate/fstat.
 */
SHMBUS_API int shmbus_map_file(const char *path, uint64_t size, unsigned flags,
			       shmbus_map **out);

/*
 * Private memory of `size` bytes (> 0), zero-filled and committed up front:
 * an anonymous memfd no other process can name (a forked child inherits it
 * and shares its bytes). Views of it share bytes with each other; it is
 * always writable. Returns 0 and sets *out, or -EINVAL (NULL `out`, size 0
 * or above INT64_MAX), -ENOMEM (more than RAM plus swap, refused at once;
 * or the commit failed), -ENOSPC.
 */
SHMBUS_API int shmbus_map_memory(uint64_t size, shmbus_map **out);

/*
 * Named, non-persisted shared memory (POSIX shm): the name `name` looks like
 * a Win32 mapping name ("MyFileMappingObject"; a leading '/' is accepted and
 * names the same object). `flags` as for shmbus_map_file(). A new object is
 * created mode 0600 and is `size` bytes, committed up front so a later
 * access cannot SIGBUS; an existing smaller one grows (and is committed
 * whole); a larger one is left as it is. An object this call created is
 * unlinked again if the call then fails.
 * Returns 0 and sets *out, or: -EINVAL (bad name: NULL, empty, "." or "..",
 * longer than SHMBUS_MAP_NAME_MAX, a '/' after the first character; size 0
 * for a new or emptied object, or an existing empty one; flags as for
 * shmbus_map_file()), -ENOENT (missing and no CREATE), -EEXIST (EXCL and it
 * exists), -EACCES (permissions, or growing without WRITE), -ENOSPC (more
 * than /dev/shm can hold), -ENOMEM.
 */
SHMBUS_API int shmbus_map_shared(const char *name, uint64_t size,
				 unsigned flags, shmbus_map **out);

/*
 * OpenFileMapping: opens existing named shared memory with `access`
 * (exactly one of SHMBUS_ACCESS_READ, _WRITE or _COPY). A mapping opened for
 * READ or COPY gives read-only or copy-on-write views only. The object is
 * taken as it is: one still being created by another process may be empty
 * for a moment, and views of it then fail with -ERANGE rather than fault.
 * Returns 0 and sets *out, or -EINVAL (bad name, bad access, NULL `out`),
 * -ENOENT (no such name), -EACCES.
 */
SHMBUS_API int shmbus_map_open(const char *name, unsigned access,
			       shmbus_map **out);

/*
 * Removes the name of shared memory; mappings already open stay valid and
 * the memory goes when the last of them closes. Returns 0, -EINVAL (bad
 * name), -ENOENT, -EACCES.
 */
SHMBUS_API int shmbus_map_unlink(const char *name);

/*
 * CloseHandle: unmaps every view of `map` still mapped (their pointers become
 * invalid), releases the lock if this mapping holds it, closes the
 * descriptor and frees `map`. Returns 0, or -EINVAL for NULL.
 */
SHMBUS_API int shmbus_map_close(shmbus_map *map);

/* GetFileSize: the object's current size in bytes, or -EINVAL for NULL, or
 * a negative errno from fstat. */
SHMBUS_API int64_t shmbus_map_size(const shmbus_map *map);

/* The descriptor behind the mapping (file, shm or memfd), owned by `map`:
 * do not close it. Returns it, or -EINVAL for NULL. */
SHMBUS_API int shmbus_map_fd(const shmbus_map *map);

/*
 * AccessData: takes the mapping's cross-process lock, exclusive between all
 * mappings of the same object in any process (two mappings in one process
 * included) and between threads using the same mapping. It is flock() on a
 * description of the object private to this process, so the kernel drops it
 * when the holder dies and the next locker gets it instead of hanging; a
 * child that inherited the mapping through fork() competes for it like any
 * other process. Works on read-only mappings. Needs /proc. Limits are in
 * docs/mapping.md (e.g. anyone else flock()ing the same file takes part).
 * `timeout_ms`: 0 = try once, -1 = forever, > 0 = milliseconds.
 * Returns 0, -ETIMEDOUT (not free in time; also for 0), -EDEADLK (the
 * calling thread already holds it through this mapping), -EINVAL (NULL, or
 * a timeout below -1), or an errno from reopening the descriptor.
 */
SHMBUS_API int shmbus_map_lock(shmbus_map *map, int timeout_ms);

/* UnaccessData: releases the lock. Returns 0, -EPERM when the calling thread
 * does not hold it through this mapping, -EINVAL for NULL. */
SHMBUS_API int shmbus_map_unlock(shmbus_map *map);

/*
 * MapViewOfFile: maps `length` bytes of `map` from `offset` (any offset: the
 * page alignment is done inside; `length` 0 = to the end). `access`: exactly
 * one of SHMBUS_ACCESS_READ, _WRITE or _COPY, optionally or-ed with
 * SHMBUS_VIEW_SEQUENTIAL or SHMBUS_VIEW_RANDOM. The window is checked
 * against the object's size at this moment, so no access inside it can
 * fault at the end of the object (unless another process shrinks it). The
 * view belongs to `map` until shmbus_view_unmap() or shmbus_map_close().
 * Returns 0 and sets *out, or: -EINVAL (NULL, unknown or conflicting flags),
 * -ERANGE (the window reaches past the end of the mapping, or is empty),
 * -EACCES (a write view of a mapping opened for READ or COPY), -ENOMEM (no
 * room in the address space).
 */
SHMBUS_API int shmbus_view_map(shmbus_map *map, uint64_t offset, size_t length,
			       unsigned access, shmbus_view **out);

/*
 * MapViewOfFileEx: as shmbus_view_map(), with the view's first byte at
 * `address`. `address` must be congruent to `offset` modulo the page size.
 * Never replaces an existing mapping: returns -EEXIST when the range is in
 * use, -EINVAL when `address` is misaligned, plus the errors above.
 */
SHMBUS_API int shmbus_view_map_at(shmbus_map *map, uint64_t offset,
				  size_t length, unsigned access, void *address,
				  shmbus_view **out);

/* The view's first byte (the byte at the view's offset), or NULL for NULL. */
SHMBUS_API void *shmbus_view_data(const shmbus_view *view);

/* The view's length in bytes, or 0 for NULL. */
SHMBUS_API size_t shmbus_view_size(const shmbus_view *view);

/*
 * FlushViewOfFile: writes `length` bytes from `offset` (relative to the
 * view's first byte) back to the file and waits for it (msync MS_SYNC of
 * exactly the pages that hold them); `length` 0 = to the end of the view,
 * so 0, 0 = the whole view. On shared or private memory it succeeds and does
 * nothing harmful; a copy-on-write view's changes never reach the file.
 * Returns 0, -EINVAL (NULL), -ERANGE (offset at or past the end of the view,
 * or the range reaches past it), -EIO.
 */
SHMBUS_API int shmbus_view_flush(shmbus_view *view, size_t offset,
				 size_t length);

/* UnmapViewOfFile: unmaps and frees `view`. Returns 0 or -EINVAL. */
SHMBUS_API int shmbus_view_unmap(shmbus_view *view);

/*
 * A static, human-readable name for `err` (a negative errno returned by any
 * shmbus function; positive values are accepted too). Never NULL.
 * Thread-safe.
 */
SHMBUS_API const char *shmbus_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* SHMBUS_MAP_H */
