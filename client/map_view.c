/*
 * map_view.c - views of a mapping (MapViewOfFile on Win32): each view is
 * one mmap of a page-aligned window of the mapping's descriptor, checked
 * against the object's size first, so that it never reaches past its end.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/map_internal.h"

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
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
