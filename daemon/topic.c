/*
 * topic.c - the broker's topic registry and each topic's shared memory: two
 * sealed memfds (or, for a persistent topic, a file in data_dir for the
 * data), formatted as a ring, a read-only descriptor for subscribers,
 * references held by client handles, and the linger timer that removes an
 * unused implicit topic. Also the JSON views of a topic for list and stat.
 */
#include "daemon/broker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/log.h"
#include "proto/topic_name.h"

#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

static uint32_t ring_mode(enum sb_config_mode m)
{
	return m == SB_CONFIG_QUEUE ? SB_RING_QUEUE : SB_RING_BROADCAST;
}

static uint32_t ring_overflow(enum sb_config_overflow o)
{
	switch (o) {
	case SB_CONFIG_OVERWRITE:
		return SB_RING_OVERWRITE;
	case SB_CONFIG_REJECT:
		return SB_RING_REJECT;
	case SB_CONFIG_BLOCK:
		break;
	}
	return SB_RING_BLOCK;
}

static const char *mode_name(uint32_t mode)
{
	return mode == SB_RING_QUEUE ? "queue" : "broadcast";
}

static const char *overflow_name(uint32_t overflow)
{
	switch (overflow) {
	case SB_RING_OVERWRITE:
		return "overwrite";
	case SB_RING_REJECT:
		return "reject";
	default:
		return "block";
	}
}

struct sbd_topic *sbd_topic_find(struct sbd_broker *b, const char *name)
{
	for (struct sbd_topic *t = b->topics; t != NULL; t = t->next) {
		if (strcmp(t->name, name) == 0) {
			return t;
		}
	}
	return NULL;
}

const struct sb_config_topic *sbd_config_topic(const struct sbd_broker *b,
					       const char *name)
{
	for (size_t i = 0; i < b->cfg.n_topics; i++) {
		if (strcmp(b->cfg.topics[i].name, name) == 0) {
			return &b->cfg.topics[i];
		}
	}
	return NULL;
}

/* Predeclared topics use their own rules, every other topic the defaults'.
 * Looked up at each check, so a reload applies new rules at once. */
const struct sb_config_access *sbd_topic_access(const struct sbd_broker *b,
						const char *name)
{
	const struct sb_config_topic *t = sbd_config_topic(b, name);

	return t != NULL ? &t->access : &b->cfg.topic_defaults.access;
}

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

/* A sealed memfd of `size` bytes named "shmbus:<topic>". */
static int make_memfd(const char *topic, uint64_t size, const char *what,
		      int *out)
{
	char name[256];
	int fd, r;

	snprintf(name, sizeof(name), "shmbus:%s", topic);
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

static int map_fd(int fd, uint64_t size, const char *what, const char *topic,
		  void **out)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED) {
		int r = -errno;

		sbd_error("mmap(%s of topic \"%s\"): %s", what, topic,
			  strerror(-r));
		return r;
	}
	*out = p;
	return 0;
}

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

static int open_persistent(struct sbd_topic *t, bool *existed)
{
	char enc[SB_TOPIC_NAME_MAX * 3 + 1];
	char path[PATH_MAX];
	struct stat st;
	int fd, r;

	encode_name(t->name, enc, sizeof(enc));
	snprintf(path, sizeof(path), "%s/%s", t->broker->cfg.data_dir, enc);
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
	*existed = (uint64_t)st.st_size == t->data_size;
	/* Allocate even a file of the right size: it may be sparse (a
	 * copy, or a failed attempt on a full disk), and mapping holes that
	 * the file system cannot fill raises SIGBUS at the first touch. */
	r = commit_size(fd, t->data_size, path, t->name);
	if (r < 0) {
		/* A file we sized but could not fill would pass for an
		 * existing ring next time: leave nothing behind. */
		if (st.st_size == 0 && ftruncate(fd, 0) < 0) {
			sbd_warn("ftruncate(%s, 0): %s", path, strerror(errno));
		}
		close(fd);
		return r;
	}
	t->data_fd = fd;
	return 0;
}

/* Keeps a persisted ring whose header checks out with our geometry. */
static bool reuse_ring(struct sbd_topic *t)
{
	const struct sb_ring_header *hdr = t->shm_data;
	uint64_t oldest =
	    atomic_load_explicit(&hdr->writer_oldest, memory_order_relaxed);

	/* relaxed: no other process maps the file before we hand it out. */
	if (sb_ring_format_ctl(t->shm_ctl, t->ctl_size, &t->geo, oldest) < 0 ||
	    sb_ring_attach(&t->ring, t->shm_data, t->data_size, t->shm_ctl,
			   t->ctl_size) < 0) {
		return false;
	}
	return t->ring.capacity == t->geo.capacity &&
	       t->ring.max_message == t->geo.max_message &&
	       t->ring.slot_count == t->geo.slot_count &&
	       t->ring.mode == t->geo.mode &&
	       t->ring.overflow == t->geo.overflow;
}

static int format_ring(struct sbd_topic *t, bool existed)
{
	int r;

	if (existed && reuse_ring(t)) {
		sbd_info("topic \"%s\": reusing its persisted ring", t->name);
		return 0;
	}
	if (existed) {
		sbd_warn("topic \"%s\": persisted ring does not match, "
			 "formatting it anew",
			 t->name);
	}
	r = sb_ring_format(t->shm_data, t->data_size, t->shm_ctl, t->ctl_size,
			   &t->geo);
	if (r == 0) {
		r = sb_ring_attach(&t->ring, t->shm_data, t->data_size,
				   t->shm_ctl, t->ctl_size);
	}
	if (r < 0) {
		sbd_error("sb_ring_format(topic \"%s\"): %s", t->name,
			  strerror(-r));
	}
	return r;
}

/*
 * The subscribers' descriptor: a read-only reopening of the data segment.
 * Then the memfd's mode drops to 0400, so that a subscriber cannot reopen
 * its own descriptor for writing through /proc (root can; a persistent
 * file keeps 0600, and only the broker's user may open it anyway).
 */
static int make_readonly_fd(struct sbd_topic *t)
{
	char path[64];
	int r;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", t->data_fd);
	t->ro_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (t->ro_fd < 0) {
		r = -errno;
		sbd_error("open(%s, topic \"%s\"): %s", path, t->name,
			  strerror(-r));
		return r;
	}
	if (!t->persistent && fchmod(t->data_fd, 0400) < 0) {
		r = -errno;
		sbd_error("fchmod(data of topic \"%s\"): %s", t->name,
			  strerror(-r));
		return r;
	}
	return 0;
}

static int make_segments(struct sbd_topic *t)
{
	bool existed = false;
	int r;

	r = make_memfd(t->name, t->ctl_size, "control segment", &t->ctl_fd);
	if (r == 0) {
		r = t->persistent ? open_persistent(t, &existed)
				  : make_memfd(t->name, t->data_size,
					       "data segment", &t->data_fd);
	}
	if (r == 0) {
		r = map_fd(t->ctl_fd, t->ctl_size, "control segment", t->name,
			   &t->shm_ctl);
	}
	if (r == 0) {
		r = map_fd(t->data_fd, t->data_size, "data segment", t->name,
			   &t->shm_data);
	}
	if (r == 0) {
		r = format_ring(t, existed);
	}
	if (r == 0) {
		r = make_readonly_fd(t);
	}
	return r;
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static void release_memory(struct sbd_topic *t)
{
	if (t->shm_data != NULL) {
		munmap(t->shm_data, t->data_size);
		t->shm_data = NULL;
	}
	if (t->shm_ctl != NULL) {
		munmap(t->shm_ctl, t->ctl_size);
		t->shm_ctl = NULL;
	}
	close_fd(&t->data_fd);
	close_fd(&t->ro_fd);
	close_fd(&t->ctl_fd);
}

static void on_topic_closed(uv_handle_t *h)
{
	struct sbd_topic *t = h->data;

	free(t->name);
	free(t);
}

/* Frees the memory now and the struct once its timer has closed. */
static void topic_destroy(struct sbd_topic *t)
{
	struct sbd_broker *b = t->broker;

	sbd_debug("topic \"%s\": memory released", t->name);
	release_memory(t);
	b->n_topics--;
	b->ring_bytes -= t->geo.capacity;
	uv_close((uv_handle_t *)&t->linger, on_topic_closed);
}

static int check_limits(struct sbd_broker *b, const char *name,
			const struct sb_config_topic *s,
			struct sb_msg_error *err)
{
	const struct sb_config_limits *lim = &b->cfg.limits;
	const char *field = NULL;
	char why[SB_TOPIC_NAME_MAX + 64];

	if (sb_topic_name_check(name, why, sizeof(why)) < 0) {
		return sb_msg_errorf(err, -EINVAL, "invalid topic name: %s",
				     why);
	}
	if (sbd_topic_find(b, name) != NULL) {
		return sb_msg_errorf(err, -EEXIST, "topic \"%s\" exists", name);
	}
	if (sb_config_check_geometry(s->capacity, s->max_message, lim, &field,
				     why, sizeof(why)) < 0) {
		return sb_msg_errorf(err, -EINVAL, "field \"%s\" %s", field,
				     why);
	}
	if (s->persistent && b->cfg.data_dir == NULL) {
		return sb_msg_errorf(err, -EINVAL,
				     "field \"persistent\": the broker has no "
				     "data_dir");
	}
	if (b->n_topics >= lim->max_topics) {
		return sb_msg_errorf(err, -ENOSPC,
				     "limits.max_topics (%" PRIu32 ") reached",
				     lim->max_topics);
	}
	if (s->capacity > lim->max_ring_bytes - b->ring_bytes) {
		return sb_msg_errorf(err, -ENOSPC,
				     "limits.max_ring_bytes (%" PRIu64
				     ") reached: %" PRIu64 " in use",
				     lim->max_ring_bytes, b->ring_bytes);
	}
	return 0;
}

static struct sbd_topic *topic_alloc(struct sbd_broker *b, const char *name,
				     const struct sb_config_topic *s)
{
	struct sbd_topic *t = calloc(1, sizeof(*t));

	if (t == NULL || (t->name = strdup(name)) == NULL) {
		free(t);
		return NULL;
	}
	t->broker = b;
	t->geo.capacity = s->capacity;
	t->geo.max_message = (uint32_t)s->max_message;
	t->geo.slot_count = b->cfg.limits.max_subscribers;
	t->geo.mode = ring_mode(s->mode);
	t->geo.overflow = ring_overflow(s->overflow);
	t->linger_ms = s->linger_ms;
	t->persistent = s->persistent;
	t->data_fd = t->ro_fd = t->ctl_fd = -1;
	return t;
}

int sbd_topic_create(struct sbd_broker *b, const char *name,
		     const struct sb_config_topic *settings, bool is_explicit,
		     struct sbd_topic **out, struct sb_msg_error *err)
{
	struct sbd_topic *t;
	int r = check_limits(b, name, settings, err);

	if (r < 0) {
		return r;
	}
	t = topic_alloc(b, name, settings);
	if (t == NULL) {
		return sb_msg_errorf(err, -ENOMEM, "out of memory");
	}
	r = sb_ring_layout(&t->geo, &t->data_size, &t->ctl_size);
	if (r == 0) {
		r = make_segments(t);
	}
	if (r < 0) {
		release_memory(t);
		free(t->name);
		free(t);
		return sb_msg_errorf(err, r, "cannot create topic \"%s\": %s",
				     name, strerror(-r));
	}
	uv_timer_init(b->loop, &t->linger);
	t->linger.data = t;
	t->is_explicit = is_explicit;
	t->named = true;
	t->next = b->topics;
	b->topics = t;
	b->n_topics++;
	b->ring_bytes += t->geo.capacity;
	sbd_info("topic \"%s\" created (%s, %s, capacity %" PRIu64
		 ", max_message %" PRIu32 "%s)",
		 name, mode_name(t->geo.mode), overflow_name(t->geo.overflow),
		 t->geo.capacity, t->geo.max_message,
		 is_explicit ? "" : ", implicit");
	*out = t;
	return 0;
}

/* Removes the name from the registry; frees the topic if unused. */
void sbd_topic_unname(struct sbd_topic *t)
{
	struct sbd_topic **p = &t->broker->topics;

	while (*p != NULL && *p != t) {
		p = &(*p)->next;
	}
	if (*p == t) {
		*p = t->next;
	}
	t->next = NULL;
	t->named = false;
	if (t->lingering) {
		uv_timer_stop(&t->linger);
		t->lingering = false;
	}
	sbd_info("topic \"%s\" removed", t->name);
	if (t->refs == 0) {
		topic_destroy(t);
	}
}

static void on_linger_end(uv_timer_t *timer)
{
	struct sbd_topic *t = timer->data;

	t->lingering = false;
	if (t->refs == 0 && t->named) {
		sbd_topic_unname(t);
	}
}

void sbd_topic_ref(struct sbd_topic *t)
{
	t->refs++;
	if (t->lingering) {
		uv_timer_stop(&t->linger);
		t->lingering = false;
	}
}

void sbd_topic_unref(struct sbd_topic *t)
{
	if (--t->refs > 0) {
		return;
	}
	if (!t->named) {
		topic_destroy(t);
	} else if (!t->is_explicit && t->linger_ms == 0) {
		sbd_topic_unname(t);
	} else if (!t->is_explicit) {
		t->lingering = true;
		uv_timer_start(&t->linger, on_linger_end, t->linger_ms, 0);
	}
}

/* Creates the config's predeclared topics that do not exist yet. */
int sbd_topic_predeclare(struct sbd_broker *b)
{
	struct sb_msg_error err;
	struct sbd_topic *t;
	int failed = 0;

	for (size_t i = 0; i < b->cfg.n_topics; i++) {
		const struct sb_config_topic *s = &b->cfg.topics[i];

		if (sbd_topic_find(b, s->name) != NULL) {
			continue;
		}
		if (sbd_topic_create(b, s->name, s, true, &t, &err) < 0) {
			sbd_error("predeclared topic \"%s\": %s", s->name,
				  err.message);
			failed = err.code;
		}
	}
	return failed;
}

/* At shutdown: every handle is gone, so unnaming frees each topic. */
void sbd_topic_free_all(struct sbd_broker *b)
{
	while (b->topics != NULL) {
		sbd_topic_unname(b->topics);
	}
}

cJSON *sbd_topic_info(const struct sbd_topic *t)
{
	const struct sb_ring_header *hdr = t->shm_data;
	/* relaxed: statistics, read at one moment by the broker only. */
	uint64_t tail =
	    atomic_load_explicit(&hdr->writer_tail, memory_order_relaxed);
	uint64_t oldest =
	    atomic_load_explicit(&hdr->writer_oldest, memory_order_relaxed);
	uint64_t published =
	    atomic_load_explicit(&hdr->stat_published, memory_order_relaxed);
	cJSON *o = cJSON_CreateObject();

	if (o == NULL || !cJSON_AddStringToObject(o, "name", t->name) ||
	    !cJSON_AddStringToObject(o, "mode", mode_name(t->geo.mode)) ||
	    !cJSON_AddStringToObject(o, "overflow",
				     overflow_name(t->geo.overflow)) ||
	    !sb_msg_add_int(o, "capacity", (int64_t)t->geo.capacity) ||
	    !sb_msg_add_int(o, "max_message", t->geo.max_message) ||
	    !sb_msg_add_int(o, "slots", t->geo.slot_count) ||
	    !cJSON_AddBoolToObject(o, "persistent", t->persistent) ||
	    !cJSON_AddBoolToObject(o, "explicit", t->is_explicit) ||
	    !sb_msg_add_int(o, "publishers", t->publishers) ||
	    !sb_msg_add_int(o, "subscribers", t->subscribers) ||
	    !sb_msg_add_int(o, "published",
			    (int64_t)(published & SB_MSG_INT_MAX)) ||
	    !sb_msg_add_int(o, "used_bytes",
			    tail >= oldest && tail - oldest <= t->geo.capacity
				? (int64_t)(tail - oldest)
				: 0)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* A counter from shared memory, clipped to what the protocol carries. */
static int64_t counter(const _Atomic uint64_t *p)
{
	/* relaxed: statistics only. */
	return (int64_t)(atomic_load_explicit(p, memory_order_relaxed) &
			 SB_MSG_INT_MAX);
}

static cJSON *header_stats(const struct sbd_topic *t)
{
	const struct sb_ring_header *hdr = t->shm_data;
	/* How many writers wait for room in the ring now (block policy). */
	uint32_t blocked = sb_ring_blocked_writers(&t->ring);
	cJSON *o = cJSON_CreateObject();

	if (o == NULL ||
	    !sb_msg_add_int(o, "published", counter(&hdr->stat_published)) ||
	    !sb_msg_add_int(o, "bytes", counter(&hdr->stat_bytes)) ||
	    !sb_msg_add_int(o, "rejected", counter(&hdr->stat_rejected)) ||
	    !sb_msg_add_int(o, "waits", counter(&hdr->stat_waits)) ||
	    !sb_msg_add_int(o, "recoveries", counter(&hdr->stat_recoveries)) ||
	    !sb_msg_add_int(o, "blocked_writers", blocked)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* tail - pos, or 0 when a corrupted position lies outside the ring. */
static int64_t lag(uint64_t tail, uint64_t pos, uint64_t capacity)
{
	return pos <= tail && tail - pos <= capacity ? (int64_t)(tail - pos)
						     : 0;
}

static cJSON *slot_stat(const struct sbd_topic *t, uint32_t i, uint64_t tail)
{
	const struct sb_ring_slot *s = &t->ring.shm_slots[i];
	uint64_t cursor =
	    t->geo.mode == SB_RING_QUEUE
		? atomic_load_explicit(&t->ring.shm_ctl->queue_cursor,
				       memory_order_relaxed)
		: atomic_load_explicit(&s->sub_cursor, memory_order_relaxed);
	cJSON *o = cJSON_CreateObject();

	/* relaxed loads: a snapshot for people, not a synchronisation. */
	if (o == NULL || !sb_msg_add_int(o, "slot", i) ||
	    !sb_msg_add_int(
		o, "pid",
		atomic_load_explicit(&s->slot_pid, memory_order_relaxed)) ||
	    !sb_msg_add_int(
		o, "client",
		atomic_load_explicit(&s->slot_owner, memory_order_relaxed)) ||
	    !sb_msg_add_int(o, "received", counter(&s->sub_received)) ||
	    !sb_msg_add_int(o, "lost", counter(&s->sub_lost)) ||
	    !sb_msg_add_int(o, "lag_bytes",
			    lag(tail, cursor, t->geo.capacity)) ||
	    !cJSON_AddBoolToObject(
		o, "sleeping",
		atomic_load_explicit(&s->sub_sleeping, memory_order_relaxed) >
		    0)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static cJSON *slots_stat(const struct sbd_topic *t, uint64_t tail)
{
	cJSON *arr = cJSON_CreateArray();

	for (uint32_t i = 0; arr != NULL && i < t->geo.slot_count; i++) {
		uint32_t state = atomic_load_explicit(
		    &t->ring.shm_slots[i].slot_state, memory_order_acquire);
		cJSON *s;

		/* acquire: pairs with the release CAS of slot_state in
		 * sb_ring_reader_open_owned(), which wrote pid and owner. */
		if ((state & 1u) == 0) {
			continue;
		}
		s = slot_stat(t, i, tail);
		if (s == NULL || !cJSON_AddItemToArray(arr, s)) {
			cJSON_Delete(s);
			cJSON_Delete(arr);
			return NULL;
		}
	}
	return arr;
}

static cJSON *queue_stat(const struct sbd_topic *t, uint64_t tail)
{
	const struct sb_ring_ctl *ctl = t->ring.shm_ctl;
	cJSON *o = cJSON_CreateObject();
	uint64_t cursor =
	    atomic_load_explicit(&ctl->queue_cursor, memory_order_relaxed);

	if (o == NULL ||
	    !sb_msg_add_int(o, "lag_bytes",
			    lag(tail, cursor, t->geo.capacity)) ||
	    !sb_msg_add_int(o, "lost", counter(&ctl->queue_lost))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

cJSON *sbd_topic_stat(const struct sbd_topic *t)
{
	const struct sb_ring_header *hdr = t->shm_data;
	uint64_t tail =
	    atomic_load_explicit(&hdr->writer_tail, memory_order_relaxed);
	cJSON *o = cJSON_CreateObject();
	cJSON *parts[4] = {
	    sbd_topic_info(t), header_stats(t), slots_stat(t, tail),
	    t->geo.mode == SB_RING_QUEUE ? queue_stat(t, tail) : NULL};
	const char *names[4] = {"topic", "stats", "subscribers", "queue"};
	int n = t->geo.mode == SB_RING_QUEUE ? 4 : 3;
	bool ok = o != NULL;

	for (int i = 0; i < 4; i++) {
		if (i < n && ok && parts[i] != NULL &&
		    cJSON_AddItemToObject(o, names[i], parts[i])) {
			continue; /* o owns it now */
		}
		if (i < n) {
			ok = false;
		}
		cJSON_Delete(parts[i]);
	}
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}
