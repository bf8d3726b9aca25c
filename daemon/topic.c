/*
 * topic.c - the broker's topic registry and each topic's shared memory: two
 * sealed memfds (a persistent topic's data loaded from, and written back to,
 * its file in data_dir: persist.c), formatted as a ring, a read-only
 * descriptor for subscribers,
 * references held by client handles, and the linger timer that removes an
 * unused implicit topic; and topics handed back by clients after a broker
 * restart (topic_adopt), whose descriptors are checked as untrusted input
 * before they are registered. Also the JSON views of a topic for list and
 * stat.
 */
#include "daemon/broker.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/log.h"
#include "wire/names.h"
#include "wire/topic_name.h"

/* Every topic name fits the ring header's name field with its NUL. */
static_assert(SB_TOPIC_NAME_MAX < SB_RING_NAME_SIZE, "topic name field");

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
static const struct sb_config_access *topic_access(const struct sbd_broker *b,
						   const char *name)
{
	const struct sb_config_topic *t = sbd_config_topic(b, name);

	return t != NULL ? &t->access : &b->cfg.topic_defaults.access;
}

bool sbd_topic_rule_allows(const struct sbd_client *c, const char *topic,
			   const char *what)
{
	const struct sb_config_access *a = topic_access(c->broker, topic);
	const struct sb_config_rule *rule =
	    strcmp(what, "publish") == 0     ? &a->publish
	    : strcmp(what, "subscribe") == 0 ? &a->subscribe
					     : &a->admin;

	return sb_config_rule_allows(rule, c->cred.uid, c->cred.gids,
				     c->cred.n_gids);
}

int sbd_topic_check_rule(const struct sbd_client *c, const char *topic,
			 const char *what, struct sb_msg_error *err)
{
	if (sbd_topic_rule_allows(c, topic, what)) {
		return 0;
	}
	sbd_info("client %" PRIu32 " (uid %lu): %s on topic \"%s\" refused",
		 c->id, (unsigned long)c->cred.uid, what, topic);
	return sb_msg_errorf(err, -EACCES,
			     "the %s rule of topic \"%s\" refuses uid %lu",
			     what, topic, (unsigned long)c->cred.uid);
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

/* Cuts a persisted ring back to its last intact record (ring.h), saying
 * what was dropped. false: its positions are beyond repair. */
static bool verify_ring(struct sbd_topic *t)
{
	struct sb_ring_verify_report v;

	if (sb_ring_verify_truncate(&t->ring, &v) < 0) {
		return false;
	}
	if (v.dropped_bytes != 0 || v.dropped != 0) {
		sbd_warn("topic \"%s\": persisted ring damaged at position "
			 "%" PRIu64 ": dropped %" PRIu64 " records (%" PRIu64
			 " bytes), kept %" PRIu64,
			 t->name, v.bad_pos, v.dropped, v.dropped_bytes,
			 v.kept);
	}
	if (((t->ring.flags ^ t->geo.flags) & SB_RING_FLAG_METADATA) != 0) {
		sbd_warn("topic \"%s\": the persisted ring keeps messages %s "
			 "metadata, as it was formatted; delete the file to "
			 "change that",
			 t->name,
			 (t->ring.flags & SB_RING_FLAG_METADATA) != 0
			     ? "with"
			     : "without");
	}
	if (((t->ring.flags ^ t->geo.flags) & SB_RING_FLAG_CHECKSUM) != 0) {
		sbd_warn("topic \"%s\": the persisted ring keeps records %s "
			 "checksums, as it was formatted; delete the file to "
			 "change that",
			 t->name,
			 (t->ring.flags & SB_RING_FLAG_CHECKSUM) != 0
			     ? "with"
			     : "without");
	}
	return true;
}

/* Keeps a ring loaded from the topic's file whose header checks out with
 * our geometry. */
static bool reuse_ring(struct sbd_topic *t)
{
	if (sb_ring_reformat_ctl(t->shm_data, t->shm_ctl, t->ctl_size,
				 &t->geo) < 0 ||
	    sb_ring_attach(&t->ring, t->shm_data, t->data_size, t->shm_ctl,
			   t->ctl_size) < 0) {
		return false;
	}
	return t->ring.capacity == t->geo.capacity &&
	       t->ring.max_message == t->geo.max_message &&
	       t->ring.slot_count == t->geo.slot_count &&
	       t->ring.mode == t->geo.mode &&
	       t->ring.overflow == t->geo.overflow && verify_ring(t);
}

/* The ring's header names the topic (docs/shm-layout.md): a broker taking
 * the ring back later (topic_adopt) checks that it is this topic's. */
static int name_ring(struct sbd_topic *t)
{
	int r = sb_ring_set_name(t->shm_data, t->name);

	if (r < 0) {
		sbd_error("sb_ring_set_name(topic \"%s\"): %s", t->name,
			  strerror(-r));
	}
	return r;
}

static int format_ring(struct sbd_topic *t, bool existed)
{
	int r;

	if (existed && reuse_ring(t)) {
		sbd_info("topic \"%s\": reusing its persisted ring", t->name);
		sbd_persist_loaded(t);
		/* A file from before rings were named gets its name now:
		 * its path in data_dir already says whose it is. */
		return name_ring(t);
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
		return r;
	}
	return name_ring(t);
}

/*
 * The subscribers' descriptor: a read-only reopening of the data segment.
 * Then the memfd's mode drops to 0400, so that a subscriber cannot reopen
 * its own descriptor for writing through /proc (root can).
 */
static int make_readonly_fd(struct sbd_topic *t)
{
	int r = sbd_reopen_read_only(t->data_fd);

	if (r < 0) {
		sbd_error("reopening the data segment of topic \"%s\" "
			  "read-only: %s",
			  t->name, strerror(-r));
		return r;
	}
	t->ro_fd = r;
	if (fchmod(t->data_fd, 0400) < 0) {
		r = -errno;
		sbd_error("fchmod(data of topic \"%s\"): %s", t->name,
			  strerror(-r));
		return r;
	}
	return 0;
}

/* Records which memory this topic is, so that a client handing a topic
 * back after a reconnection is matched to it (device and inode). */
static int note_identity(struct sbd_topic *t)
{
	struct stat ds, cs;

	if (fstat(t->ro_fd, &ds) < 0 || fstat(t->ctl_fd, &cs) < 0) {
		int r = -errno;

		sbd_error("fstat(topic \"%s\"): %s", t->name, strerror(-r));
		return r;
	}
	t->data_dev = ds.st_dev;
	t->data_ino = ds.st_ino;
	t->ctl_dev = cs.st_dev;
	t->ctl_ino = cs.st_ino;
	return 0;
}

/* A persistent topic's data is a memfd too, loaded from its file: clients
 * never get the file (persist.c says why). */
static int make_segments(struct sbd_topic *t)
{
	bool existed = false;
	int r;

	r = sbd_memfd(t->name, "", t->ctl_size, "control segment", &t->ctl_fd);
	if (r == 0 && t->persistent) {
		r = sbd_persist_open(t, &existed);
	}
	if (r == 0) {
		r = sbd_memfd(t->name, "", t->data_size, "data segment",
			      &t->data_fd);
	}
	if (r == 0) {
		r = map_fd(t->ctl_fd, t->ctl_size, "control segment", t->name,
			   &t->shm_ctl);
	}
	if (r == 0) {
		r = map_fd(t->data_fd, t->data_size, "data segment", t->name,
			   &t->shm_data);
	}
	if (r == 0 && existed) {
		r = sbd_persist_load(t);
	}
	if (r == 0) {
		r = format_ring(t, existed);
	}
	if (r == 0) {
		/* A ring formatted anew goes to the file at once (a failure
		 * is logged, and the next write-back tries again). */
		(void)sbd_persist_write_back(t);
	}
	if (r == 0) {
		r = make_readonly_fd(t);
	}
	if (r == 0) {
		r = note_identity(t);
	}
	if (r == 0) {
		r = sbd_slots_init(t, uv_now(t->broker->loop));
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
	sbd_slots_fini(t);
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
	close_fd(&t->file_fd);
}

static void topic_free(struct sbd_topic *t)
{
	free(t->stall);
	free(t->name);
	free(t);
}

static void on_topic_closed(uv_handle_t *h)
{
	topic_free(h->data);
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
	/* One numbering for the config, the protocol and the ring's header
	 * (wire/names.h). */
	t->geo.mode = s->mode;
	t->geo.overflow = s->overflow;
	t->geo.flags =
	    (sb_config_topic_checksum(s) ? SB_RING_FLAG_CHECKSUM : 0) |
	    (s->metadata ? SB_RING_FLAG_METADATA : 0);
	t->geo.slot_home = SB_RING_SLOTS_SEGMENTS;
	t->linger_ms = s->linger_ms;
	t->max_stall_ms = s->max_stall_ms;
	t->persistent = s->persistent;
	t->data_fd = t->ro_fd = t->ctl_fd = t->file_fd = -1;
	return t;
}

/* The sweep's record of each slot, once geo.slot_count is final. */
static int alloc_stall(struct sbd_topic *t)
{
	t->stall = calloc(t->geo.slot_count, sizeof(*t->stall));
	return t->stall != NULL ? 0 : -ENOMEM;
}

/* Names a topic whose memory is ready. */
static void enter_registry(struct sbd_broker *b, struct sbd_topic *t,
			   bool is_explicit)
{
	uv_timer_init(b->loop, &t->linger);
	t->linger.data = t;
	t->is_explicit = is_explicit;
	t->named = true;
	t->next = b->topics;
	b->topics = t;
	b->n_topics++;
	b->ring_bytes += t->geo.capacity;
	sbd_client_topic_event(b, t->name, true);
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
		r = alloc_stall(t);
	}
	if (r == 0) {
		r = make_segments(t);
	}
	if (r < 0) {
		release_memory(t);
		topic_free(t);
		return sb_msg_errorf(err, r, "cannot create topic \"%s\": %s",
				     name, strerror(-r));
	}
	enter_registry(b, t, is_explicit);
	sbd_info("topic \"%s\" created (%s, %s, capacity %" PRIu64
		 ", max_message %" PRIu32 "%s)",
		 name, sb_mode_name(t->geo.mode),
		 sb_overflow_name(t->geo.overflow), t->geo.capacity,
		 t->geo.max_message, is_explicit ? "" : ", implicit");
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
	sbd_client_topic_event(t->broker, t->name, false);
	/* Its last state goes to the file, which it lets go of: a topic of
	 * the same name created next loads it from there. */
	sbd_persist_close(t);
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
	(void)sbd_persist_write_back(t);
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

/* ---- topics handed back after a broker restart (topic_adopt) ---------- */

#define SIZE_SEALS (F_SEAL_SHRINK | F_SEAL_GROW)

/*
 * Checks one received descriptor. A memfd (every segment, a persistent
 * topic's data too) must first be sealed against shrinking and growing:
 * only then is its size read, so the size the broker maps is the size it
 * keeps and no mapping of it can raise SIGBUS (read before the seals, a
 * size could still shrink before they were added). A memfd must also
 * belong to the broker's own uid, as every memfd a broker makes does: a
 * peer of another uid cannot hand in memory it formatted itself. Then a
 * regular file, opened with the access we need. Fills *st. Returns 0,
 * -EPERM (not sealed, not the broker's) or -EBADF.
 */
static int check_segment(int fd, const char *what, bool need_write,
			 struct stat *st, struct sb_msg_error *err)
{
	int fl, seals = fcntl(fd, F_GET_SEALS);

	if (seals < 0 || (seals & SIZE_SEALS) != SIZE_SEALS) {
		return sb_msg_errorf(err, -EPERM,
				     "the %s descriptor is not a memfd sealed "
				     "against shrinking and growing",
				     what);
	}
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		return sb_msg_errorf(err, -EBADF,
				     "the %s descriptor is not a regular file",
				     what);
	}
	if (st->st_uid != geteuid()) {
		return sb_msg_errorf(err, -EPERM,
				     "the %s memfd belongs to uid %lu, not to "
				     "the broker's uid %lu: only memory a "
				     "broker of this user made is taken back",
				     what, (unsigned long)st->st_uid,
				     (unsigned long)geteuid());
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (need_write && (fl & O_ACCMODE) != O_RDWR)) {
		return sb_msg_errorf(err, -EBADF,
				     "the %s descriptor is not open for "
				     "reading and writing",
				     what);
	}
	return 0;
}

/* The received segments of one adoption, checked and mapped. */
struct adopted {
	int data_fd; /* read-write, or -1 */
	int ro_fd;   /* read-only: received, or reopened from data_fd */
	int ctl_fd;
	struct stat dst, cst;
	void *shm_data; /* the broker writes only the slot records in it */
	void *shm_ctl;
	uint64_t data_size, ctl_size;
	struct sb_ring ring;
};

static void adopted_fini(struct adopted *m)
{
	if (m->shm_data != NULL) {
		munmap(m->shm_data, m->data_size);
	}
	if (m->shm_ctl != NULL) {
		munmap(m->shm_ctl, m->ctl_size);
	}
	close_fd(&m->data_fd);
	close_fd(&m->ro_fd);
	close_fd(&m->ctl_fd);
}

/*
 * The name in the ring's header, written by the broker that created the
 * ring, must be the requested one: copied out once (a publisher can write
 * the header), then compared whole.
 */
static int check_ring_name(const struct sbd_adopt *a, const struct adopted *m,
			   struct sb_msg_error *err)
{
	char stored[SB_RING_NAME_SIZE];
	char quoted[80];

	if (sb_ring_name(m->shm_data, stored) < 0) {
		return sb_msg_errorf(err, -EPERM,
				     "the ring's topic name field holds no "
				     "name (no NUL in its %u bytes)",
				     SB_RING_NAME_SIZE);
	}
	if (stored[0] == '\0') {
		return sb_msg_errorf(err, -EPERM,
				     "the ring carries no topic name: it was "
				     "made by a broker from before rings were "
				     "named, or not by a broker; open the "
				     "topic anew");
	}
	if (strcmp(stored, a->name) != 0) {
		return sb_msg_errorf(
		    err, -EPERM, "the ring was made for topic %s, not \"%s\"",
		    sb_msg_quote(stored, 64, quoted, sizeof(quoted)), a->name);
	}
	return 0;
}

/*
 * A read-write descriptor of the memfd `fd`, which is ours (check_segment()
 * saw our uid): its mode goes to 0600 for the reopening and back to 0400.
 * For a ring handed back by subscribers only, whose header the broker must
 * still write (the slot records, slots.c). Returns it, or -errno.
 */
static int reopen_writable(int fd)
{
	char path[64];
	int rw, r = 0;

	if (fchmod(fd, 0600) < 0) {
		return -errno;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	rw = open(path, O_RDWR | O_CLOEXEC);
	if (rw < 0) {
		r = -errno;
	}
	(void)fchmod(fd, 0400);
	return rw >= 0 ? rw : r;
}

/* Maps the handed-back data segment read-write for the broker itself
 * (clients keep getting the descriptors they got before). */
static int map_adopted_data(struct adopted *m, struct sb_msg_error *err)
{
	int fd = m->data_fd >= 0 ? m->data_fd : reopen_writable(m->ro_fd);

	if (fd < 0) {
		return sb_msg_errorf(err, fd,
				     "reopening the data segment for writing: "
				     "%s",
				     strerror(-fd));
	}
	m->shm_data =
	    mmap(NULL, m->data_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (fd != m->data_fd) {
		close(fd);
	}
	if (m->shm_data == MAP_FAILED) {
		m->shm_data = NULL;
		return sb_msg_errorf(err, -errno, "mmap(data segment): %s",
				     strerror(errno));
	}
	return 0;
}

/* Checks sizes, maps both segments and attaches the ring (which checks
 * magic, version, readiness and geometry), then holds the ring to the
 * settings the client claimed and to the topic's name. The sizes are
 * final: check_segment() saw the seals before it read them. */
static int map_adopted(struct sbd_adopt *a, struct adopted *m,
		       struct sb_msg_error *err)
{
	uint64_t max_ctl;
	struct sb_ring_config most = a->geo;
	int r;

	most.slot_count = SB_RING_MAX_SLOTS;
	if (sb_ring_layout(&most, &m->data_size, &max_ctl) < 0) {
		return sb_msg_errorf(err, -EINVAL, "invalid geometry");
	}
	if ((uint64_t)m->dst.st_size != m->data_size) {
		return sb_msg_errorf(err, -EBADMSG,
				     "the data segment has %lld bytes; "
				     "capacity %" PRIu64 " needs %" PRIu64,
				     (long long)m->dst.st_size, a->geo.capacity,
				     m->data_size);
	}
	if ((uint64_t)m->cst.st_size < sb_ring_min_ctl_size() ||
	    (uint64_t)m->cst.st_size > max_ctl) {
		return sb_msg_errorf(err, -EBADMSG,
				     "the control segment has %lld bytes",
				     (long long)m->cst.st_size);
	}
	m->ctl_size = (uint64_t)m->cst.st_size;
	r = map_adopted_data(m, err);
	if (r < 0) {
		return r;
	}
	m->shm_ctl = mmap(NULL, m->ctl_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			  m->ctl_fd, 0);
	if (m->shm_ctl == MAP_FAILED) {
		m->shm_ctl = NULL;
		return sb_msg_errorf(err, -errno, "mmap(control segment): %s",
				     strerror(errno));
	}
	r = sb_ring_attach(&m->ring, m->shm_data, m->data_size, m->shm_ctl,
			   m->ctl_size);
	if (r < 0) {
		return sb_msg_errorf(err, r == -EPROTO ? -EPROTO : -EBADMSG,
				     "the segments do not hold a shmbus ring: "
				     "%s",
				     strerror(-r));
	}
	if (m->ring.slot_home != SB_RING_SLOTS_SEGMENTS) {
		return sb_msg_errorf(err, -EPROTO,
				     "the ring keeps its subscriber slots in "
				     "its control segment, which no broker "
				     "makes");
	}
	if (m->ring.capacity != a->geo.capacity ||
	    m->ring.max_message != a->geo.max_message ||
	    m->ring.mode != a->geo.mode ||
	    m->ring.overflow != a->geo.overflow ||
	    m->ring.ctl_size != m->ctl_size) {
		return sb_msg_errorf(err, -EBADMSG,
				     "the ring's geometry differs from the "
				     "request's");
	}
	return check_ring_name(a, m, err);
}

/* The read-only descriptor for subscribers, as at creation; the memfd's
 * mode is 0400 already, set by the broker that made it. */
static int reopen_readonly(struct adopted *m, struct sb_msg_error *err)
{
	int r = sbd_reopen_read_only(m->data_fd);

	if (r < 0) {
		return sb_msg_errorf(err, r,
				     "reopening the data segment read-only: %s",
				     strerror(-r));
	}
	m->ro_fd = r;
	return 0;
}

/*
 * Takes both of the request's descriptors at once, so that every return
 * from here on closes both (adopted_fini), then checks them (see
 * check_segment). A persistent topic's data is a sealed memfd too:
 * clients never hold its file.
 */
static int take_segments(struct sbd_adopt *a, struct adopted *m,
			 struct sb_msg_error *err)
{
	int data_fd = a->data_fd;
	int r;

	m->ctl_fd = a->ctl_fd;
	if (a->writable) {
		m->data_fd = data_fd;
	} else {
		m->ro_fd = data_fd;
	}
	a->ctl_fd = a->data_fd = -1;
	r = check_segment(m->ctl_fd, "control", true, &m->cst, err);
	if (r == 0) {
		r = check_segment(data_fd, "data", a->writable, &m->dst, err);
	}
	if (r == 0 && m->ro_fd < 0) {
		r = reopen_readonly(m, err);
	}
	return r;
}

/* The same memory as `t` (both segments)? */
static bool same_memory(const struct sbd_topic *t, const struct adopted *m)
{
	return t->data_dev == m->dst.st_dev && t->data_ino == m->dst.st_ino &&
	       t->ctl_dev == m->cst.st_dev && t->ctl_ino == m->cst.st_ino;
}

/* A second client hands back a topic we know: keep what it adds (a
 * writable descriptor where we had none). */
static void join(struct sbd_topic *t, struct adopted *m, const char **how)
{
	*how = "joined";
	if (t->data_fd < 0 && m->data_fd >= 0) {
		t->data_fd = m->data_fd;
		m->data_fd = -1;
		*how = "upgraded";
		sbd_info("topic \"%s\": writable again (a publisher handed it "
			 "back)",
			 t->name);
	}
}

/*
 * The right a hand-back needs beyond the open's (publish or subscribe,
 * which ops_adopt.c checks first), by what it would do: joining the memory
 * the topic has needs nothing more; registering a name this broker does
 * not know creates a topic (admin); putting other memory in place of a
 * topic nobody has opened yet (predeclared, or created and closed) chooses
 * what its publishers and subscribers will share (publish). Other memory
 * under a name in use is refused outright.
 */
static int check_adopt_right(const struct sbd_adopt *a,
			     const struct sbd_topic *old,
			     const struct adopted *m, struct sb_msg_error *err)
{
	struct sb_msg_error why;

	if (old != NULL && same_memory(old, m)) {
		return 0;
	}
	if (old != NULL && (old->handed_out || old->refs > 0)) {
		return sb_msg_errorf(err, -EEXIST,
				     "topic \"%s\" exists with other memory",
				     a->name);
	}
	if (sbd_topic_check_rule(a->client, a->name,
				 old == NULL ? "admin" : "publish",
				 &why) == 0) {
		return 0;
	}
	return sb_msg_errorf(err, why.code, "%s: %s",
			     old == NULL ? "registering a topic this broker "
					   "does not know needs the admin right"
					 : "replacing the memory of a topic "
					   "nobody has opened yet needs the "
					   "publish right",
			     why.message);
}

int sbd_topic_adopt(struct sbd_broker *b, struct sbd_adopt *a,
		    struct sbd_topic **out, const char **how,
		    struct sb_msg_error *err)
{
	const struct sb_config_topic *cfg_t = sbd_config_topic(b, a->name);
	struct sb_config_topic s =
	    cfg_t != NULL ? *cfg_t : b->cfg.topic_defaults;
	struct sbd_topic *old = sbd_topic_find(b, a->name);
	struct adopted m;
	struct sbd_topic *t;
	int r;

	memset(&m, 0, sizeof(m));
	m.data_fd = m.ro_fd = m.ctl_fd = -1;
	r = take_segments(a, &m, err);
	if (r == 0) {
		r = check_adopt_right(a, old, &m, err);
	}
	if (r == 0) {
		r = map_adopted(a, &m, err);
	}
	if (r < 0) {
		adopted_fini(&m);
		return r;
	}
	if (old != NULL && same_memory(old, &m)) {
		join(old, &m, how);
		adopted_fini(&m);
		*out = old;
		return 0;
	}
	if (old != NULL) {
		/* Created here (predeclared, or opened and closed) but never
		 * handed to anyone: the stream clients already share wins. */
		sbd_info("topic \"%s\": replaced by the memory its clients "
			 "handed back",
			 a->name);
		sbd_topic_unname(old);
		*how = "replaced";
	} else {
		*how = "registered";
	}
	s.capacity = m.ring.capacity;
	s.max_message = m.ring.max_message;
	s.persistent = cfg_t != NULL ? cfg_t->persistent : a->persistent;
	r = check_limits(b, a->name, &s, err);
	t = r == 0 ? topic_alloc(b, a->name, &s) : NULL;
	if (t != NULL) {
		t->geo.slot_count = m.ring.slot_count;
		if (alloc_stall(t) < 0) {
			topic_free(t);
			t = NULL;
		}
	}
	if (t == NULL) {
		adopted_fini(&m);
		return r < 0 ? r : sb_msg_errorf(err, -ENOMEM, "out of memory");
	}
	t->data_size = m.data_size;
	r = t->persistent ? sbd_persist_open(t, &(bool){false}) : 0;
	if (r < 0) {
		free(t->name);
		free(t);
		adopted_fini(&m);
		return sb_msg_errorf(err, r,
				     "cannot open the file of persistent "
				     "topic \"%s\": %s",
				     a->name, strerror(-r));
	}
	t->geo.capacity = m.ring.capacity;
	t->geo.max_message = m.ring.max_message;
	t->geo.mode = m.ring.mode;
	t->geo.overflow = m.ring.overflow;
	t->data_fd = m.data_fd;
	t->ro_fd = m.ro_fd;
	t->ctl_fd = m.ctl_fd;
	t->shm_data = m.shm_data;
	t->shm_ctl = m.shm_ctl;
	t->data_size = m.data_size;
	t->ctl_size = m.ctl_size;
	t->ring = m.ring;
	t->data_dev = m.dst.st_dev;
	t->data_ino = m.dst.st_ino;
	t->ctl_dev = m.cst.st_dev;
	t->ctl_ino = m.cst.st_ino;
	t->adopted = true;
	if (sbd_slots_init(t, uv_now(b->loop)) < 0) {
		release_memory(t);
		topic_free(t);
		return sb_msg_errorf(err, -ENOMEM, "out of memory");
	}
	enter_registry(b, t, a->is_explicit || cfg_t != NULL);
	sbd_info("topic \"%s\" handed back (%s, %s, capacity %" PRIu64
		 ", max_message %" PRIu32 "%s)",
		 t->name, sb_mode_name(t->geo.mode),
		 sb_overflow_name(t->geo.overflow), t->geo.capacity,
		 t->geo.max_message,
		 t->data_fd >= 0 ? "" : ", read-only: no publisher yet");
	/* The memory its clients share is the topic now: the file gets it
	 * whole (the file's own ring was never handed out here). */
	(void)sbd_persist_write_back(t);
	*out = t;
	return 0;
}

/* A counter from shared memory, clipped to what the protocol carries. */
static int64_t counter(uint64_t v)
{
	return (int64_t)(v & SB_MSG_INT_MAX);
}

cJSON *sbd_topic_info(const struct sbd_topic *t)
{
	struct sb_ring_stats st;
	cJSON *o = cJSON_CreateObject();

	sb_ring_stats(&t->ring, &st);

	if (o == NULL || !cJSON_AddStringToObject(o, "name", t->name) ||
	    !cJSON_AddStringToObject(o, "mode", sb_mode_name(t->geo.mode)) ||
	    !cJSON_AddStringToObject(o, "overflow",
				     sb_overflow_name(t->geo.overflow)) ||
	    !sb_msg_add_int(o, "capacity", (int64_t)t->geo.capacity) ||
	    !sb_msg_add_int(o, "max_message", t->geo.max_message) ||
	    !sb_msg_add_int(o, "slots", t->geo.slot_count) ||
	    !sb_msg_add_int(o, "max_stall_ms", t->max_stall_ms) ||
	    !cJSON_AddBoolToObject(o, "persistent", t->persistent) ||
	    !cJSON_AddBoolToObject(
		o, "metadata", (t->ring.flags & SB_RING_FLAG_METADATA) != 0) ||
	    !cJSON_AddBoolToObject(o, "explicit", t->is_explicit) ||
	    !sb_msg_add_int(o, "publishers", t->publishers) ||
	    !sb_msg_add_int(o, "subscribers", t->subscribers) ||
	    !sb_msg_add_int(o, "published", counter(st.published)) ||
	    !sb_msg_add_int(o, "used_bytes", counter(st.used_bytes))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static cJSON *header_stats(const struct sbd_topic *t)
{
	struct sb_ring_stats st;
	cJSON *o = cJSON_CreateObject();

	sb_ring_stats(&t->ring, &st);
	if (o == NULL ||
	    !sb_msg_add_int(o, "published", counter(st.published)) ||
	    !sb_msg_add_int(o, "bytes", counter(st.bytes)) ||
	    !sb_msg_add_int(o, "rejected", counter(st.rejected)) ||
	    !sb_msg_add_int(o, "waits", counter(st.waits)) ||
	    !sb_msg_add_int(o, "recoveries", counter(st.recoveries)) ||
	    !sb_msg_add_int(o, "blocked_writers", st.blocked_writers) ||
	    !sb_msg_add_int(o, "evictions",
			    (int64_t)(t->evictions & SB_MSG_INT_MAX))) {
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

/* How long slot `v` has stood still with messages to read, as far as the
 * sweep has seen (0 if it moved since, or had nothing to read). */
static uint64_t stalled_ms(const struct sbd_stall *st,
			   const struct sb_ring_slot_view *v, uint64_t now)
{
	if (!st->stuck || st->state != v->state ||
	    st->position != v->position || now < st->since) {
		return 0;
	}
	return now - st->since;
}

/* The connected client whose id is `id`, or NULL. */
static const struct sbd_client *find_client(const struct sbd_broker *b,
					    uint32_t id)
{
	for (const struct sbd_client *c = b->clients; c != NULL; c = c->next) {
		if (c->id == id) {
			return c;
		}
	}
	return NULL;
}

/* Adds "name": the name client `id` gave in hello, if it is connected and
 * gave one. Returns false when out of memory. */
static bool add_client_name(cJSON *o, const struct sbd_broker *b, uint32_t id)
{
	const struct sbd_client *c = find_client(b, id);

	return c == NULL || c->name[0] == '\0' ||
	       cJSON_AddStringToObject(o, "name", c->name) != NULL;
}

static cJSON *slot_stat(const struct sbd_topic *t, uint32_t i,
			const struct sb_ring_slot_view *v, uint64_t tail)
{
	uint64_t stalled = stalled_ms(&t->stall[i], v, uv_now(t->broker->loop));
	uint32_t client = sbd_slot_client(t, i);
	cJSON *o = cJSON_CreateObject();

	if (o == NULL || !sb_msg_add_int(o, "slot", i) ||
	    !sb_msg_add_int(o, "pid", v->pid) ||
	    !sb_msg_add_int(o, "client", client) ||
	    !add_client_name(o, t->broker, client) ||
	    !sb_msg_add_int(o, "received", counter(v->received)) ||
	    !sb_msg_add_int(o, "lost", counter(v->lost)) ||
	    !sb_msg_add_int(o, "lag_bytes",
			    lag(tail, v->position, t->geo.capacity)) ||
	    !sb_msg_add_int(o, "stalled_ms", counter(stalled)) ||
	    !cJSON_AddBoolToObject(o, "sleeping", v->sleeping)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* The printed size of a topic_stat "next" at most:
 * {"subscriber":2147483647} or {"publisher":4294967295}. */
#define NEXT_COST 32

/* The subscribers after slot `after` that fit in `page`, and the last
 * slot listed in *last. */
static cJSON *slots_stat(const struct sbd_topic *t, uint64_t tail,
			 int64_t after, struct sbd_page *page, int64_t *last)
{
	cJSON *arr = cJSON_CreateArray();
	struct sb_ring_slot_view v;

	for (uint32_t i = (uint32_t)(after + 1);
	     arr != NULL && sb_ring_slot_next(&t->ring, &i, &v); i++) {
		cJSON *s = slot_stat(t, i, &v, tail);

		if (s != NULL && !sbd_page_fits(page, s, NEXT_COST)) {
			cJSON_Delete(s);
			break;
		}
		if (s == NULL || !cJSON_AddItemToArray(arr, s)) {
			cJSON_Delete(s);
			cJSON_Delete(arr);
			return NULL;
		}
		*last = i;
	}
	return arr;
}

/* How many publisher handles client `c` holds on `t`. */
static unsigned pub_handles(const struct sbd_client *c,
			    const struct sbd_topic *t)
{
	unsigned n = 0;

	for (const struct sbd_handle *h = c->handles.head; h != NULL;
	     h = h->next) {
		n += !h->sub && h->topic == t;
	}
	return n;
}

/* One publishing client: its number, name, pid and handles on the topic. */
static cJSON *publisher_stat(const struct sbd_client *c, unsigned handles)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL || !sb_msg_add_int(o, "client", c->id) ||
	    !add_client_name(o, c->broker, c->id) ||
	    !sb_msg_add_int(o, "pid", c->cred.pid) ||
	    !sb_msg_add_int(o, "handles", handles)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static int by_client_id(const void *a, const void *b)
{
	uint32_t x = (*(const struct sbd_client *const *)a)->id;
	uint32_t y = (*(const struct sbd_client *const *)b)->id;

	return x < y ? -1 : x > y;
}

/* The clients after id `after` that publish on `t`, by id, in a malloc'd
 * array of *n; NULL with *n 0 when none, or when out of memory (*n -1). */
static const struct sbd_client **publishing_clients(const struct sbd_topic *t,
						    int64_t after, int *n)
{
	const struct sbd_client **v;
	int count = 0;

	*n = 0;
	if (t->publishers == 0) {
		return NULL;
	}
	for (const struct sbd_client *c = t->broker->clients; c != NULL;
	     c = c->next) {
		count++;
	}
	v = calloc((size_t)count + 1, sizeof(*v));
	if (v == NULL) {
		*n = -1;
		return NULL;
	}
	for (const struct sbd_client *c = t->broker->clients; c != NULL;
	     c = c->next) {
		if ((int64_t)c->id > after && pub_handles(c, t) > 0) {
			v[(*n)++] = c;
		}
	}
	qsort(v, (size_t)*n, sizeof(*v), by_client_id);
	return v;
}

/* The publishing clients after client `after` that fit in `page`, and the
 * last one listed in *last. */
static cJSON *publishers_stat(const struct sbd_topic *t, int64_t after,
			      struct sbd_page *page, int64_t *last)
{
	int n;
	const struct sbd_client **v = publishing_clients(t, after, &n);
	cJSON *arr = n >= 0 ? cJSON_CreateArray() : NULL;

	for (int i = 0; arr != NULL && i < n; i++) {
		cJSON *p = publisher_stat(v[i], pub_handles(v[i], t));

		if (p != NULL && !sbd_page_fits(page, p, NEXT_COST)) {
			cJSON_Delete(p);
			break;
		}
		if (p == NULL || !cJSON_AddItemToArray(arr, p)) {
			cJSON_Delete(p);
			cJSON_Delete(arr);
			arr = NULL;
			break;
		}
		*last = v[i]->id;
	}
	free(v);
	return arr;
}

static cJSON *queue_stat(const struct sb_ring_stats *st, uint64_t capacity)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL ||
	    !sb_msg_add_int(o, "lag_bytes",
			    lag(st->tail, st->queue_position, capacity)) ||
	    !sb_msg_add_int(o, "lost", counter(st->queue_lost))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* Adds `item` (taken, freed on failure) to `o` under `name`. */
static bool add_part(cJSON *o, const char *name, cJSON *item)
{
	if (item == NULL || !cJSON_AddItemToObject(o, name, item)) {
		cJSON_Delete(item);
		return false;
	}
	return true;
}

/* Adds "next", the cursor of the last entry listed (protocol.md). */
static bool add_next(cJSON *o, bool publisher, int64_t id)
{
	cJSON *next = cJSON_CreateObject();

	if (next == NULL ||
	    !sb_msg_add_int(next, publisher ? "publisher" : "subscriber", id)) {
		cJSON_Delete(next);
		return false;
	}
	return add_part(o, "next", next);
}

/* Adds the page's "subscribers" and "publishers", from `from` on. */
static bool add_listings(cJSON *o, const struct sbd_topic *t, uint64_t tail,
			 struct sbd_stat_cursor from, struct sbd_page *page)
{
	int64_t last_sub = from.publisher ? INT32_MAX : from.id;
	int64_t last_pub = -1;
	bool ok = add_part(o, "subscribers",
			   from.publisher
			       ? cJSON_CreateArray()
			       : slots_stat(t, tail, from.id, page, &last_sub));

	if (ok && from.publisher) {
		last_pub = from.id;
	}
	if (ok) {
		/* A full page lists no publisher: it ends with "more". */
		ok = add_part(
		    o, "publishers",
		    page->more ? cJSON_CreateArray()
			       : publishers_stat(t, last_pub, page, &last_pub));
	}
	if (ok && page->more) {
		bool on_pubs = from.publisher || last_pub >= 0;

		ok = add_next(o, on_pubs, on_pubs ? last_pub : last_sub);
	}
	return ok;
}

cJSON *sbd_topic_stat(const struct sbd_topic *t, struct sbd_stat_cursor from,
		      int64_t limit, size_t max_frame, struct sbd_page *page)
{
	struct sb_ring_stats st;
	cJSON *o = cJSON_CreateObject();
	bool ok;

	sbd_page_init(page, 0, 0, 0);
	sb_ring_stats(&t->ring, &st);
	ok = o != NULL && add_part(o, "topic", sbd_topic_info(t)) &&
	     add_part(o, "stats", header_stats(t)) &&
	     (t->geo.mode != SB_RING_QUEUE ||
	      add_part(o, "queue", queue_stat(&st, t->geo.capacity)));
	if (ok) {
		/* The page gets what the fixed part leaves of the frame. */
		sbd_page_init(page, max_frame, sbd_page_printed(o), limit);
		ok = add_listings(o, t, st.tail, from, page);
	}
	if (!ok || !cJSON_AddBoolToObject(o, "more", page->more)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* ---- evicting subscribers ---------------------------------------------- */

/*
 * Evicts the subscriber in `slot` if the slot is still in `state`: frees it
 * in the ring (writers blocked behind it go on; the reader's next receive
 * fails with EIDRM), counts it, forgets the sweep's record of it and logs
 * who it was and `why` ("by client 5 (...)"). Returns 0, -EINVAL (no such
 * slot) or -ENOENT (free, or another reader's by now).
 */
int sbd_topic_evict(struct sbd_topic *t, uint32_t slot, uint32_t state,
		    const char *why)
{
	const struct sbd_client *c;
	struct sb_ring_slot_view v;
	uint32_t owner = sbd_slot_client(t, slot);
	int r = sb_ring_slot_view(&t->ring, slot, &v);

	if (r < 0) {
		return r;
	}
	if (v.state != state) {
		return -ENOENT;
	}
	r = sb_ring_slot_evict(&t->ring, slot, state);
	if (r < 0) {
		return r;
	}
	/* Writers stop waiting for it even if it writes its slot back. */
	sbd_slot_forget(t, slot);
	t->evictions++;
	memset(&t->stall[slot], 0, sizeof(t->stall[slot]));
	c = find_client(t->broker, owner);
	sbd_warn("topic \"%s\": subscriber in slot %" PRIu32 " (pid %" PRIu32
		 ", client %" PRIu32 " %s%s%s) evicted %s",
		 t->name, slot, v.pid, owner, c != NULL ? "\"" : "",
		 c == NULL	      ? "not connected"
		 : c->name[0] != '\0' ? c->name
				      : "no name",
		 c != NULL ? "\"" : "", why);
	return 0;
}

/* Notes where slot `v` stands at `now`: still at the same position with
 * `unread` bytes to read (stuck since the first sweep that saw it so), or
 * moved, caught up, or freed (not stuck). */
static void stall_note(struct sbd_stall *st, const struct sb_ring_slot_view *v,
		       uint64_t unread, uint64_t now)
{
	if (st->state != v->state || st->position != v->position) {
		st->state = v->state;
		st->position = v->position;
		st->stuck = false;
	}
	if (!v->in_use || unread == 0) {
		st->stuck = false;
	} else if (!st->stuck) {
		st->stuck = true;
		st->since = now;
	}
}

/* A subscriber holds writers back only in a broadcast topic that does not
 * overwrite: a queue's consumers share one cursor, and no one slot of it
 * holds writers. */
static bool may_evict(const struct sbd_topic *t)
{
	return t->max_stall_ms > 0 && t->geo.mode == SB_RING_BROADCAST &&
	       t->geo.overflow != SB_RING_OVERWRITE;
}

static void sweep_topic(struct sbd_topic *t, uint64_t now)
{
	struct sb_ring_stats rs;
	struct sb_ring_slot_view v;
	char why[200];

	/* A snapshot; a stale tail only delays an eviction. */
	sb_ring_stats(&t->ring, &rs);
	for (uint32_t i = 0; i < t->geo.slot_count; i++) {
		struct sbd_stall *st = &t->stall[i];
		int64_t unread;

		if (sb_ring_slot_view(&t->ring, i, &v) < 0) {
			continue;
		}
		unread = lag(rs.tail, v.position, t->geo.capacity);
		stall_note(st, &v, (uint64_t)unread, now);
		if (!may_evict(t) || !st->stuck ||
		    now - st->since < t->max_stall_ms) {
			continue;
		}
		snprintf(why, sizeof(why),
			 "by max_stall_ms (%" PRIu32 "): its position has not "
			 "moved for %" PRIu64 " ms with %" PRId64
			 " bytes to read",
			 t->max_stall_ms, now - st->since, unread);
		sbd_topic_evict(t, i, v.state, why);
	}
}

/*
 * Once a second (broker.c): notes where every subscriber of every named
 * topic stands, and evicts those stalled past their topic's max_stall_ms.
 * A topic without subscriber handles is skipped: it costs nothing then.
 */
void sbd_topic_sweep(struct sbd_broker *b)
{
	uint64_t now = uv_now(b->loop);

	for (struct sbd_topic *t = b->topics; t != NULL; t = t->next) {
		if (t->subscribers > 0) {
			sweep_topic(t, now);
		}
		sbd_slots_sweep(t, now);
	}
}
