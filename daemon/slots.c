/*
 * slots.c - each subscriber's slot segment. A broker's topic keeps every
 * subscriber's slot (its cursor, counters and state) in a sealed memfd of
 * its own, made here at sub_open and given to that subscriber alone
 * read-write, so that no subscriber can write another's slot. Writers get
 * read-only descriptors of all of them on request (op slots), when the
 * ring's slot generation tells them the set changed; the broker records the
 * set in the ring's header (sb_ring_slot_publish()) so that a broker restarted
 * under live clients knows which subscribers may still hand their slot back.
 * docs/shm-layout.md describes the protocol.
 */
#include "daemon/broker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/log.h"

/* Appends `v` to the JSON array `arr`; false when out of memory. */
static bool array_add(cJSON *arr, uint32_t v)
{
	cJSON *n = cJSON_CreateNumber(v);

	return n != NULL && cJSON_AddItemToArray(arr, n);
}

/* A slot in use: held by a subscriber's handle, or recorded by an earlier
 * broker and awaiting its subscriber's hand-back. */
static bool slot_taken(const struct sbd_slot *s)
{
	return s->fd >= 0 || s->pending;
}

/* Forgets slot `i`: the broker's mapping and descriptor go, and writers
 * learn the set changed. The reader's own mapping is untouched. */
static void slot_drop(struct sbd_topic *t, uint32_t i)
{
	struct sbd_slot *s = &t->slots[i];

	pthread_mutex_lock(&t->slot_map.lock);
	t->slot_map.slots[i] = NULL;
	pthread_mutex_unlock(&t->slot_map.lock);
	if (s->mem != NULL) {
		/* Before writers and consumers stop seeing the slot (the
		 * generation bump below). */
		sb_ring_keep_claim(&t->ring, s->mem);
		munmap(s->mem, SB_RING_SLOT_SEGMENT_SIZE);
	}
	if (s->fd >= 0) {
		close(s->fd);
	}
	if (s->pending) {
		t->slots_pending--;
	}
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	(void)sb_ring_slot_publish(&t->ring, i, 0);
}

int sbd_slots_init(struct sbd_topic *t, uint64_t now)
{
	uint32_t n = t->ring.slot_count;

	t->slots = calloc(n, sizeof(*t->slots));
	t->slot_map.slots = calloc(n, sizeof(*t->slot_map.slots));
	if (t->slots == NULL || t->slot_map.slots == NULL ||
	    pthread_mutex_init(&t->slot_map.lock, NULL) != 0) {
		free(t->slots);
		free(t->slot_map.slots);
		t->slots = NULL;
		t->slot_map.slots = NULL;
		return -ENOMEM;
	}
	t->slot_map.count = n;
	t->slot_map.current = 1;
	for (uint32_t i = 0; i < n; i++) {
		t->slots[i].fd = -1;
		/* Recorded by the broker that made the ring: its subscriber
		 * may hand the slot back (sbd_slot_adopt) until the grace
		 * period ends. A new ring records none. */
		if (sb_ring_slot_recorded(&t->ring, i)) {
			t->slots[i].pending = true;
			t->slot_map.slots[i] = SB_RING_SLOT_HOLD;
			t->slots_pending++;
		}
	}
	t->slots_since = now;
	sb_ring_set_slot_map(&t->ring, &t->slot_map);
	return 0;
}

void sbd_slots_fini(struct sbd_topic *t)
{
	if (t->slots == NULL) {
		return;
	}
	for (uint32_t i = 0; i < t->slot_map.count; i++) {
		struct sbd_slot *s = &t->slots[i];

		if (s->mem != NULL) {
			munmap(s->mem, SB_RING_SLOT_SEGMENT_SIZE);
		}
		if (s->fd >= 0) {
			close(s->fd);
		}
	}
	pthread_mutex_destroy(&t->slot_map.lock);
	free(t->slots);
	free(t->slot_map.slots);
	t->slots = NULL;
	t->slot_map.slots = NULL;
}

/* The memfd name suffix of slot `i`: ':' is in no topic name, so it
 * tells slot segments apart, and the index binds a segment to its slot. */
static void slot_suffix(uint32_t i, char *out, size_t len)
{
	snprintf(out, len, ":slot:%" PRIu32, i);
}

/* Takes slot `i` for `h` with the segment `fd` (taken), mapped read-write
 * here, and tells writers. */
static int slot_enter(struct sbd_topic *t, uint32_t i, int fd,
		      struct sbd_handle *h)
{
	struct sbd_slot *s = &t->slots[i];
	void *mem = mmap(NULL, SB_RING_SLOT_SEGMENT_SIZE,
			 PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (mem == MAP_FAILED) {
		int r = -errno;

		close(fd);
		return r;
	}
	if (s->pending) {
		s->pending = false;
		t->slots_pending--;
	}
	s->fd = fd;
	s->mem = mem;
	s->handle = h;
	h->slot = (int32_t)i;
	pthread_mutex_lock(&t->slot_map.lock);
	t->slot_map.slots[i] = mem;
	pthread_mutex_unlock(&t->slot_map.lock);
	return sb_ring_slot_publish(&t->ring, i, 1);
}

int sbd_slot_open(struct sbd_topic *t, struct sbd_handle *h,
		  struct sb_msg_error *err)
{
	char suffix[32];
	uint32_t i;
	int fd, r;

	for (i = 0; i < t->slot_map.count && slot_taken(&t->slots[i]); i++) {
	}
	if (i == t->slot_map.count) {
		return sb_msg_errorf(err, -EUSERS,
				     "topic \"%s\" has no free subscriber slot "
				     "(limits.max_subscribers is %" PRIu32 ")",
				     t->name, t->slot_map.count);
	}
	slot_suffix(i, suffix, sizeof(suffix));
	r = sbd_memfd(t->name, suffix, SB_RING_SLOT_SEGMENT_SIZE,
		      "slot segment", &fd);
	/* Read-only for everyone but through the descriptors already open
	 * read-write (ours, then the subscriber's): a publisher of another
	 * uid cannot reopen its read-only one for writing. */
	if (r == 0 && fchmod(fd, 0400) < 0) {
		r = -errno;
		close(fd);
	}
	if (r == 0) {
		r = slot_enter(t, i, fd, h);
	}
	if (r < 0) {
		return sb_msg_errorf(err, r,
				     "cannot make a slot of topic "
				     "\"%s\": %s",
				     t->name, strerror(-r));
	}
	return (int)i;
}

void sbd_slot_close(struct sbd_topic *t, struct sbd_handle *h)
{
	int32_t i = h->slot;

	if (i < 0 || (uint32_t)i >= t->slot_map.count ||
	    t->slots[i].handle != h) {
		return;
	}
	/* Frees it in the ring too if its reader did not (a client that
	 * died, or closed its connection first): writers stop waiting. */
	if (sb_ring_slot_reap(&t->ring, (uint32_t)i) == 0) {
		sbd_info("freed slot %" PRId32 " of topic \"%s\": its "
			 "subscriber's connection closed with it in use",
			 i, t->name);
	}
	slot_drop(t, (uint32_t)i);
	h->slot = -1;
}

void sbd_slot_forget(struct sbd_topic *t, uint32_t i)
{
	if (i < t->slot_map.count && t->slots[i].fd >= 0) {
		if (t->slots[i].handle != NULL) {
			t->slots[i].handle->slot = -1;
		}
		slot_drop(t, i);
	}
}

uint32_t sbd_slot_client(const struct sbd_topic *t, uint32_t i)
{
	const struct sbd_handle *h =
	    i < t->slot_map.count ? t->slots[i].handle : NULL;

	return h != NULL ? h->client_id : 0;
}

/* 0 when `fd` is the broker-made segment of slot `i` of `t`, in use: a
 * sealed read-write memfd of SB_RING_SLOT_SEGMENT_SIZE bytes of this uid,
 * made for that very slot (its name), whose reader has not freed it. */
static int check_handed_slot(const struct sbd_topic *t, uint32_t i, int fd)
{
	char path[64], got[320], name[300], want[320], suffix[32];
	int seals = fcntl(fd, F_GET_SEALS);
	int fl = fcntl(fd, F_GETFL);
	struct stat st;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, got, sizeof(got) - 1);
	got[n > 0 ? n : 0] = '\0';
	slot_suffix(i, suffix, sizeof(suffix));
	sbd_memfd_name(t->name, suffix, name, sizeof(name));
	/* What /proc says of a memfd. */
	snprintf(want, sizeof(want), "/memfd:%s (deleted)", name);
	if (seals < 0 ||
	    (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) !=
		(F_SEAL_SHRINK | F_SEAL_GROW) ||
	    fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || st.st_size != SB_RING_SLOT_SEGMENT_SIZE ||
	    fl < 0 || (fl & O_ACCMODE) != O_RDWR || strcmp(got, want) != 0 ||
	    sb_ring_slot_segment_in_use(fd) != 1) {
		return -EPERM;
	}
	return 0;
}

int sbd_slot_adopt(struct sbd_topic *t, struct sbd_handle *h, int64_t index,
		   int fd, struct sb_msg_error *err)
{
	if (index < 0 || index >= (int64_t)t->slot_map.count ||
	    !t->slots[index].pending) {
		close(fd);
		return sb_msg_errorf(err, -ESTALE,
				     "slot %" PRId64 " of topic \"%s\" is not "
				     "one this broker waits for",
				     index, t->name);
	}
	if (check_handed_slot(t, (uint32_t)index, fd) < 0) {
		close(fd);
		return sb_msg_errorf(err, -EPERM,
				     "the slot descriptor is not the segment "
				     "of slot %" PRId64 " of topic \"%s\" in "
				     "use (a read-write sealed memfd of %u "
				     "bytes that a broker of this user made "
				     "for it)",
				     index, t->name, SB_RING_SLOT_SEGMENT_SIZE);
	}
	return slot_enter(t, (uint32_t)index, fd, h) < 0
		   ? sb_msg_errorf(err, -ENOMEM, "cannot map the slot")
		   : 0;
}

void sbd_slots_sweep(struct sbd_topic *t, uint64_t now)
{
	uint32_t n = 0;

	if (t->slots_pending == 0 || now - t->slots_since < SBD_SLOT_GRACE_MS) {
		return;
	}
	for (uint32_t i = 0; i < t->slot_map.count; i++) {
		if (t->slots[i].pending) {
			slot_drop(t, i);
			n++;
		}
	}
	sbd_info("topic \"%s\": %" PRIu32 " slot(s) of the previous broker "
		 "were not handed back within %d ms: writers no longer wait "
		 "for them",
		 t->name, n, SBD_SLOT_GRACE_MS);
}

cJSON *sbd_slots_page(const struct sbd_topic *t, uint32_t from, int *fds,
		      int *nfds)
{
	cJSON *res = cJSON_CreateObject();
	cJSON *mapped = cJSON_AddArrayToObject(res, "slots");
	cJSON *pending = cJSON_AddArrayToObject(res, "pending");
	uint32_t i;

	*nfds = 0;
	if (mapped == NULL || pending == NULL ||
	    !sb_msg_add_int(
		res, "gen",
		(int64_t)(sb_ring_slot_gen(&t->ring) & SB_MSG_INT_MAX))) {
		goto fail;
	}
	for (i = from; i < t->slot_map.count && *nfds < SBD_SLOTS_PAGE; i++) {
		const struct sbd_slot *s = &t->slots[i];
		int fd;

		if (s->pending && !array_add(pending, i)) {
			goto fail;
		}
		if (s->fd < 0) {
			continue;
		}
		fd = sbd_reopen_read_only(s->fd);
		if (fd < 0) {
			sbd_error("reopening slot %" PRIu32 " of topic \"%s\" "
				  "read-only: %s",
				  i, t->name, strerror(-fd));
			goto fail;
		}
		fds[(*nfds)++] = fd;
		if (!array_add(mapped, i)) {
			goto fail;
		}
	}
	if ((i < t->slot_map.count && !sb_msg_add_int(res, "next", i)) ||
	    !sb_msg_add_int(res, "fds", *nfds)) {
		goto fail;
	}
	return res;
fail:
	for (int k = 0; k < *nfds; k++) {
		close(fds[k]);
	}
	*nfds = 0;
	cJSON_Delete(res);
	return NULL;
}
