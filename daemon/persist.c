/*
 * persist.c - a persistent topic's file in data_dir. Clients never see the
 * file: the topic's data segment is a sealed memfd like any other topic's,
 * loaded from the file when the topic is created and written back to it by
 * the broker (every persist_interval_ms, at the last close, when the topic
 * is deleted and at a clean shutdown). So no client can truncate the file
 * under a mapping (SIGBUS) and a restarted broker never puts a second
 * control segment on memory old clients still write: they hand back their
 * memfd, which either becomes the topic (and is written back from then
 * on) or is refused and lives on apart.
 *
 * The write-back copies what changed while publishers keep writing, and
 * must leave a file that is a valid ring at every moment a broker may die:
 *
 *   1. snapshot: read the tail, then the oldest position (a record boundary,
 *      at most one capacity behind that tail), copy the bytes from where
 *      the file ends (or from oldest) up to the tail, then read oldest
 *      again; what a writer reclaimed meanwhile may be torn in the copy,
 *      so the snapshot's ring starts at the larger oldest (the seqlock
 *      pattern readers of the overwrite policy use). Its records are
 *      walked: next_seq comes from the newest one, and a record that does
 *      not parse (a publisher wrote garbage) ends the snapshot there.
 *   2. if writing the copy will overwrite records the file's header still
 *      counts, a header that no longer counts them goes out first;
 *   3. the copied records, then the header that counts them.
 * The header's positions (tail, oldest, next_seq) lie in its first 512
 * bytes and the header is one aligned page, so each header write replaces
 * the file's view at once; data never lands in a range the file's current
 * header counts. A broker killed between any two writes leaves the file
 * holding the previous or the next valid ring, never torn records: the
 * page cache keeps the order of our writes for a killed process. With
 * persist_sync (the default), an fdatasync before and after the records
 * keeps that order on the disk too, so a power loss does the same.
 */
#include "daemon/broker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/log.h"
#include "wire/topic_name.h"

/*
 * Writes the file name of a persistent topic: the topic name with every
 * byte outside [A-Za-z0-9._-] written as %XX, so "a/b" is "a%2Fb" and no
 * topic name can leave data_dir or collide with another.
 */
static void encode_name(const char *name, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)name;
	     *p != '\0' && n + 4 < cap; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
		    *p == '-') {
			out[n++] = (char)*p;
		} else {
			out[n++] = '%';
			out[n++] = hex[*p >> 4];
			out[n++] = hex[*p & 15];
		}
	}
	out[n] = '\0';
}

static void file_path(const struct sbd_topic *t, char *path, size_t cap)
{
	char enc[SB_TOPIC_NAME_MAX * 3 + 1];

	encode_name(t->name, enc, sizeof(enc));
	snprintf(path, cap, "%s/%s", t->broker->cfg.data_dir, enc);
}

/* Sizes the file and allocates every block of it, so that writing back in
 * place never needs new space (no ENOSPC after creation, on file systems
 * that overwrite in place). */
static int commit_file(int fd, uint64_t size, const char *path)
{
	int r;

	if (ftruncate(fd, (off_t)size) < 0) {
		r = -errno;
		sbd_error("ftruncate(%s): %s", path, strerror(-r));
		return r;
	}
	r = posix_fallocate(fd, 0, (off_t)size);
	if (r != 0) {
		sbd_error("posix_fallocate(%s, %" PRIu64 " bytes): %s", path,
			  size, strerror(r));
		return -r;
	}
	return 0;
}

/* Takes the file for this broker alone: another broker with the same
 * data_dir writing it back too would mix two rings in one file. */
static int lock_file(int fd, const char *path, const char *topic)
{
	if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
		return 0;
	}
	if (errno == EWOULDBLOCK) {
		sbd_error("%s (topic \"%s\") is in use by another broker "
			  "with the same data_dir",
			  path, topic);
		return -EBUSY;
	}
	sbd_error("flock(%s): %s", path, strerror(errno));
	return -errno;
}

int sbd_persist_open(struct sbd_topic *t, bool *existed)
{
	char path[PATH_MAX];
	struct stat st;
	int fd, r;

	file_path(t, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || fstat(fd, &st) < 0) {
		r = -errno;
		sbd_error("open(%s, topic \"%s\"): %s", path, t->name,
			  strerror(-r));
		if (fd >= 0) {
			close(fd);
		}
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		sbd_error("open(%s, topic \"%s\"): not a regular file", path,
			  t->name);
		close(fd);
		return -EINVAL;
	}
	r = lock_file(fd, path, t->name);
	if (r < 0) {
		close(fd);
		return r;
	}
	*existed = (uint64_t)st.st_size == t->data_size;
	/* Allocate even a file of the right size: it may be sparse (a
	 * copy, or a failed attempt on a full disk). */
	r = commit_file(fd, t->data_size, path);
	if (r < 0) {
		/* A file we sized but could not fill would pass for an
		 * existing ring next time: leave nothing behind. */
		if (st.st_size == 0 && ftruncate(fd, 0) < 0) {
			sbd_warn("ftruncate(%s, 0): %s", path, strerror(errno));
		}
		close(fd);
		return r;
	}
	t->file_fd = fd;
	t->file.known = false;
	return 0;
}

int sbd_persist_load(struct sbd_topic *t)
{
	unsigned char *p = t->shm_data;
	uint64_t done = 0;

	while (done < t->data_size) {
		ssize_t n = pread(t->file_fd, p + done, t->data_size - done,
				  (off_t)done);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			int r = n < 0 ? -errno : -EIO;

			sbd_error(
			    "reading the file of topic \"%s\": %s", t->name,
			    n < 0 ? strerror(-r) : "shorter than expected");
			return r;
		}
		done += (uint64_t)n;
	}
	return 0;
}

void sbd_persist_loaded(struct sbd_topic *t)
{
	struct sb_ring_positions p;

	/* Nobody else maps the memory before it is handed out. */
	sb_ring_header_positions(t->shm_data, &p);
	t->file.known =
	    p.oldest <= p.tail && p.tail - p.oldest <= t->ring.capacity;
	t->file.tail = p.tail;
	t->file.oldest = p.oldest;
	t->file.next_seq = p.next_seq;
}

/* ---- the write-back ------------------------------------------------------ */

/*
 * Step 1 of the write-back (see the top of this file). Returns 0, -EAGAIN
 * (writers lapped the copy: try again later), -EBADMSG (positions no
 * honest writer leaves) or -ENOMEM.
 */
static int take_snapshot(struct sbd_topic *t, struct sb_ring_snapshot *s)
{
	struct sb_ring_positions held = {.oldest = t->file.oldest,
					 .tail = t->file.tail,
					 .next_seq = t->file.next_seq};
	int r =
	    sb_ring_snapshot_take(&t->ring, t->file.known ? &held : NULL, s);

	if (r == 0 && s->cut > 0 && !t->persist_warned) {
		sbd_warn("topic \"%s\": %" PRIu64 " bytes of records that do "
			 "not parse are left out of its file",
			 t->name, s->cut);
		t->persist_warned = true;
	}
	return r;
}

/* pwrite until done. */
static int write_all(int fd, const void *buf, uint64_t len, uint64_t off)
{
	const unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			return n < 0 ? -errno : -EIO;
		}
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* The file's header page for a ring of these positions (the geometry is
 * the broker's own, never what a publisher may have written in the
 * memory's header). */
static int write_header(struct sbd_topic *t, uint64_t oldest, uint64_t tail,
			uint64_t next_seq)
{
	struct sb_ring_positions p = {
	    .oldest = oldest, .tail = tail, .next_seq = next_seq};
	unsigned char page[SB_RING_HEADER_SIZE];

	if (sb_ring_header_image(&t->ring, t->name, t->ctl_size, &p, page) <
	    0) {
		return -EINVAL;
	}
	return write_all(t->file_fd, page, sizeof(page), 0);
}

/* Makes what was written so far durable before what depends on it. */
static int sync_file(struct sbd_topic *t)
{
	if (!t->broker->cfg.persist_sync) {
		return 0;
	}
	return fdatasync(t->file_fd) < 0 ? -errno : 0;
}

/* Writes the copied records from `start` on into their place in the file. */
static int write_records(struct sbd_topic *t, const struct sb_ring_snapshot *s,
			 uint64_t start)
{
	const struct sb_ring *ring = &t->ring;
	uint64_t len = s->tail - start;
	uint64_t off = start & ring->mask;
	uint64_t first =
	    len < ring->capacity - off ? len : ring->capacity - off;
	const unsigned char *p = s->bytes + (start - s->from);
	int r;

	r = write_all(t->file_fd, p, first, SB_RING_HEADER_SIZE + off);
	if (r == 0 && len > first) {
		r = write_all(t->file_fd, p + first, len - first,
			      SB_RING_HEADER_SIZE);
	}
	return r;
}

/* Steps 2 and 3 of the write-back. */
static int write_snapshot(struct sbd_topic *t, const struct sb_ring_snapshot *s)
{
	uint64_t start = s->oldest > s->from ? s->oldest : s->from;
	int r = 0;

	if (!t->file.known) {
		/* Whatever the file held: an empty ring first. */
		r = write_header(t, start, start, s->next_seq);
	} else {
		/* The file keeps counting only records at or after the
		 * snapshot's oldest: everything the copy overwrites lies
		 * more than one capacity before the new tail, so before
		 * it. */
		uint64_t keep =
		    s->oldest > t->file.oldest ? s->oldest : t->file.oldest;

		if (keep > t->file.tail) {
			keep = t->file.tail;
		}
		if (keep != t->file.oldest && start < s->tail) {
			r = write_header(t, keep, t->file.tail,
					 t->file.next_seq);
		}
	}
	if (r == 0 && start < s->tail) {
		/* Even without a new header above: the last write-back's
		 * header may still be on its way to the disk behind an
		 * older one that counts what the records below overwrite. */
		r = sync_file(t);
		if (r == 0) {
			r = write_records(t, s, start);
		}
		if (r == 0) {
			r = sync_file(t);
		}
	}
	if (r == 0) {
		r = write_header(t, s->oldest, s->tail, s->next_seq);
	}
	return r;
}

int sbd_persist_write_back(struct sbd_topic *t)
{
	struct sb_ring_positions now;
	struct sb_ring_snapshot s;
	uint64_t start_ns;
	int r;

	if (t->file_fd < 0) {
		return 0;
	}
	/* Only a hint that nothing changed since the last time. */
	sb_ring_header_positions(t->shm_data, &now);
	if (t->file.known && now.tail == t->file.tail &&
	    now.oldest == t->file.oldest) {
		return 0;
	}
	start_ns = uv_hrtime();
	r = take_snapshot(t, &s);
	if (r == 0) {
		r = write_snapshot(t, &s);
		sb_ring_snapshot_free(&s);
		if (r < 0) {
			/* The file holds one of the two valid rings written
			 * around the failure: start over from nothing. */
			t->file.known = false;
			sbd_error("writing back topic \"%s\": %s", t->name,
				  strerror(-r));
			return r;
		}
		t->file.known = true;
		t->file.oldest = s.oldest;
		t->file.tail = s.tail;
		t->file.next_seq = s.next_seq;
		sbd_debug("topic \"%s\": wrote back %" PRIu64
			  " bytes of records in %.3f ms",
			  t->name,
			  s.tail - (s.oldest > s.from ? s.oldest : s.from),
			  (double)(uv_hrtime() - start_ns) / 1e6);
		return 0;
	}
	if (r == -EBADMSG && !t->persist_warned) {
		sbd_warn("topic \"%s\": its positions are corrupted; its file "
			 "keeps the last ring written back",
			 t->name);
		t->persist_warned = true;
	} else if (r == -ENOMEM) {
		sbd_error("writing back topic \"%s\": %s", t->name,
			  strerror(-r));
	}
	return r;
}

void sbd_persist_close(struct sbd_topic *t)
{
	if (t->file_fd < 0) {
		return;
	}
	/* Writers lapping the copy make it fail: a few more tries. */
	for (int i = 0; i < 3 && sbd_persist_write_back(t) == -EAGAIN; i++) {
	}
	if (t->broker->cfg.persist_sync && fdatasync(t->file_fd) < 0) {
		sbd_error("fdatasync(file of topic \"%s\"): %s", t->name,
			  strerror(errno));
	}
	close(t->file_fd);
	t->file_fd = -1;
}

void sbd_persist_sweep(struct sbd_broker *b)
{
	for (struct sbd_topic *t = b->topics; t != NULL; t = t->next) {
		(void)sbd_persist_write_back(t);
	}
}
