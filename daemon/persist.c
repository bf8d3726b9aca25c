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
 *   1. snapshot: read writer_tail, then writer_oldest (a record boundary,
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
	const struct sb_ring_header *hdr = t->shm_data;
	/* relaxed: nobody else maps the memory before it is handed out. */
	uint64_t tail =
	    atomic_load_explicit(&hdr->writer_tail, memory_order_relaxed);
	uint64_t oldest =
	    atomic_load_explicit(&hdr->writer_oldest, memory_order_relaxed);

	t->file.known = oldest <= tail && tail - oldest <= t->ring.capacity;
	t->file.tail = tail;
	t->file.oldest = oldest;
	t->file.next_seq =
	    atomic_load_explicit(&hdr->writer_next_seq, memory_order_relaxed);
}

/* ---- the write-back ------------------------------------------------------ */

/* A copy of the ring as it will go to the file. */
struct snapshot {
	uint64_t oldest; /* first record counted */
	uint64_t tail;	 /* end of the records counted */
	uint64_t next_seq;
	uint64_t from;	 /* first position copied into `bytes` */
	uint64_t copied; /* bytes copied: positions [from, from + copied) */
	unsigned char *bytes;
};

/* Copies positions [from, from + len) of the ring's data area. */
static void copy_span(const struct sb_ring *ring, uint64_t from, uint64_t len,
		      unsigned char *out)
{
	uint64_t off = from & ring->mask;
	uint64_t first =
	    len < ring->capacity - off ? len : ring->capacity - off;

	memcpy(out, ring->shm_data + off, first);
	memcpy(out + first, ring->shm_data, len - first);
}

/* One record of the copy at position `pos`: its end, or 0 if it does not
 * parse (the rules of record_at() in ring.c). */
static uint64_t record_end(const struct sb_ring *ring, const struct snapshot *s,
			   uint64_t pos, uint64_t limit, uint32_t *type,
			   uint64_t *seq)
{
	uint64_t room = ring->capacity - (pos & ring->mask);
	struct sb_ring_record h;
	uint64_t size;

	if ((pos & (SB_RING_RECORD_ALIGN - 1)) != 0 ||
	    limit - pos < SB_RING_RECORD_HEADER) {
		return 0;
	}
	memcpy(&h, s->bytes + (pos - s->from), sizeof(h));
	if (h.type == SB_REC_PAD && h.len == room - SB_RING_RECORD_HEADER) {
		size = room;
	} else if (h.type == SB_REC_DATA && h.len <= ring->max_message) {
		size = sb_ring_record_size(ring, h.len);
		if (size > room) {
			return 0;
		}
	} else {
		return 0;
	}
	if (limit - pos < size) {
		return 0;
	}
	*type = h.type;
	*seq = h.seq;
	return pos + size;
}

/*
 * Walks the copied records from `start` to s->tail, each DATA record's seq
 * at least `floor` and above the one before: next_seq follows the newest,
 * and the snapshot ends before the first record that breaks these rules (a
 * publisher wrote garbage). Returns how many bytes it cut.
 */
static uint64_t walk_copy(const struct sb_ring *ring, struct snapshot *s,
			  uint64_t start, uint64_t floor)
{
	uint64_t pos = start, seq, end;
	uint32_t type;
	bool seen = false;

	while (pos < s->tail) {
		end = record_end(ring, s, pos, s->tail, &type, &seq);
		if (end == 0 || (type == SB_REC_DATA && seq < floor)) {
			break;
		}
		if (type == SB_REC_DATA) {
			floor = seq + 1;
			seen = true;
		}
		pos = end;
	}
	if (seen) {
		s->next_seq = floor;
	}
	end = s->tail;
	s->tail = pos;
	return end - pos;
}

/* Positions that a ring's honest writers can have. */
static bool sane(const struct sb_ring *ring, uint64_t oldest, uint64_t tail)
{
	return oldest <= tail && tail - oldest <= ring->capacity &&
	       ((oldest | tail) & (SB_RING_RECORD_ALIGN - 1)) == 0;
}

/*
 * Step 1 of the write-back (see the top of this file). Returns 0, -EAGAIN
 * (writers lapped the copy: try again later), -EBADMSG (positions no
 * honest writer leaves) or -ENOMEM.
 */
static int take_snapshot(struct sbd_topic *t, struct snapshot *s)
{
	const struct sb_ring *ring = &t->ring;
	struct sb_ring_header *hdr = ring->shm_hdr;
	uint64_t oldest2, start, cut;
	bool incremental;

	memset(s, 0, sizeof(*s));
	/* acquire: pairs with the release store of writer_tail in
	 * commit_records(); every record before the tail is written. */
	s->tail = atomic_load_explicit(&hdr->writer_tail, memory_order_acquire);
	/* Loaded after the tail, so at most one capacity behind it. */
	s->oldest =
	    atomic_load_explicit(&hdr->writer_oldest, memory_order_acquire);
	/* For a copy without any DATA record (walk_copy). */
	s->next_seq =
	    atomic_load_explicit(&hdr->writer_next_seq, memory_order_relaxed);
	if (s->oldest > s->tail && s->oldest - s->tail <= ring->capacity) {
		return -EAGAIN;
	}
	if (!sane(ring, s->oldest, s->tail)) {
		return -EBADMSG;
	}
	/* Only what the file lacks, when the file holds this stream up to
	 * a tail the ring has not lost yet. */
	s->from = t->file.known && t->file.tail >= s->oldest &&
			  t->file.tail <= s->tail && t->file.oldest <= s->oldest
		      ? t->file.tail
		      : s->oldest;
	s->copied = s->tail - s->from;
	s->bytes = malloc(s->copied > 0 ? s->copied : 1);
	if (s->bytes == NULL) {
		return -ENOMEM;
	}
	copy_span(ring, s->from, s->copied, s->bytes);
	/* acquire fence: pairs with the release fence in reclaim(); if a
	 * byte we copied was overwritten, the oldest we load next is past
	 * it. */
	atomic_thread_fence(memory_order_acquire);
	oldest2 =
	    atomic_load_explicit(&hdr->writer_oldest, memory_order_relaxed);
	if (oldest2 > s->oldest) {
		s->oldest = oldest2;
	}
	if (s->oldest > s->tail) {
		free(s->bytes);
		s->bytes = NULL;
		return -EAGAIN;
	}
	start = s->oldest > s->from ? s->oldest : s->from;
	incremental = t->file.known && start == t->file.tail;
	if (incremental) {
		s->next_seq = t->file.next_seq;
	}
	cut = walk_copy(ring, s, start, incremental ? t->file.next_seq : 0);
	if (cut > 0 && !t->persist_warned) {
		sbd_warn("topic \"%s\": %" PRIu64 " bytes of records that do "
			 "not parse are left out of its file",
			 t->name, cut);
		t->persist_warned = true;
	}
	return 0;
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

/* The file's header page for a ring of these positions: the geometry is
 * the broker's own (never what a publisher may have written in the
 * memory's header), the statistics are the memory's. */
static int write_header(struct sbd_topic *t, uint64_t oldest, uint64_t tail,
			uint64_t next_seq)
{
	const struct sb_ring_header *live = t->ring.shm_hdr;
	struct sb_ring_header h;

	memset(&h, 0, sizeof(h));
	h.magic = SB_RING_MAGIC;
	h.version = t->ring.flags != 0 ? SB_RING_VERSION_FLAGS : SB_RING_VERSION;
	h.flags = t->ring.flags;
	h.mode = t->ring.mode;
	h.overflow = t->ring.overflow;
	h.max_message = t->ring.max_message;
	h.capacity = t->ring.capacity;
	h.slot_count = t->ring.slot_count;
	h.slot_home = t->ring.slot_home;
	h.ctl_size = t->ctl_size;
	if (sb_ring_set_name(&h, t->name) < 0) {
		return -EINVAL;
	}
	atomic_store_explicit(&h.ready, SB_RING_READY, memory_order_relaxed);
	atomic_store_explicit(&h.writer_tail, tail, memory_order_relaxed);
	atomic_store_explicit(&h.writer_oldest, oldest, memory_order_relaxed);
	atomic_store_explicit(&h.writer_next_seq, next_seq,
			      memory_order_relaxed);
	/* relaxed: statistics. */
	atomic_store_explicit(
	    &h.stat_published,
	    atomic_load_explicit(&live->stat_published, memory_order_relaxed),
	    memory_order_relaxed);
	atomic_store_explicit(
	    &h.stat_bytes,
	    atomic_load_explicit(&live->stat_bytes, memory_order_relaxed),
	    memory_order_relaxed);
	return write_all(t->file_fd, &h, sizeof(h), 0);
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
static int write_records(struct sbd_topic *t, const struct snapshot *s,
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
static int write_snapshot(struct sbd_topic *t, const struct snapshot *s)
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
	const struct sb_ring_header *hdr = t->ring.shm_hdr;
	struct snapshot s;
	uint64_t start_ns;
	int r;

	if (t->file_fd < 0) {
		return 0;
	}
	/* relaxed: only a hint that nothing changed since the last time. */
	if (t->file.known &&
	    atomic_load_explicit(&hdr->writer_tail, memory_order_relaxed) ==
		t->file.tail &&
	    atomic_load_explicit(&hdr->writer_oldest, memory_order_relaxed) ==
		t->file.oldest) {
		return 0;
	}
	start_ns = uv_hrtime();
	r = take_snapshot(t, &s);
	if (r == 0) {
		r = write_snapshot(t, &s);
		free(s.bytes);
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
