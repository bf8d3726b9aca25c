/*
 * import.c - one NATS subscription per import mapping. The client library
 * delivers its messages on one thread of its own, in order; that thread
 * publishes each into its shmbus topic (opened on first use, created with
 * metadata when missing) and keeps the per-stream sequence numbers that
 * reveal messages NATS lost (docs/bridge.md, "Order and loss").
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/bridge.h"
#include "wire/subject.h"
#include "wire/topic_name.h"

/* Messages NATS holds for a subscription before it drops (a slow
 * consumer): more than the library's default, since a full topic can hold
 * the delivery thread for publish_timeout. */
#define PENDING_MSGS  262144
#define PENDING_BYTES (256 * 1024 * 1024)

/* What one import tracks at most, whatever its publishers send: topics
 * (with their pubs) and streams (origin, run and subject, each with its
 * last sequence number). Past these, a new topic is counted as failed and
 * a new stream is not checked for gaps (counted as untracked). */
#define TOPICS_MAX  65536
#define STREAMS_MAX 65536

/* At most this many log lines per import and kind of trouble. */
#define LOG_MAX 10

bool sbb_exports_topic(struct sbb_bridge *br, const char *topic)
{
	bool found = false;

	pthread_mutex_lock(&br->maps_lock);
	for (size_t i = 0; i < br->nexports && !found; i++) {
		found = strcmp(br->exports[i]->topic, topic) == 0;
	}
	pthread_mutex_unlock(&br->maps_lock);
	return found;
}

/* Remembers a publisher id as this bridge's (see sbb_is_own_publisher). */
static void note_own_id(struct sbb_bridge *br, uint64_t id)
{
	size_t n;

	if (id == 0 || sbb_is_own_publisher(br, id)) {
		return;
	}
	/* Only delivery threads add, rarely (a new connection's first pub);
	 * the slot is written before the count that makes it visible. */
	pthread_mutex_lock(&br->maps_lock);
	n = atomic_load(&br->n_own);
	atomic_store_explicit(&br->own_ids[n % SBB_OWN_IDS], id,
			      memory_order_relaxed);
	atomic_store_explicit(&br->n_own, n + 1, memory_order_release);
	pthread_mutex_unlock(&br->maps_lock);
}

int sbb_topic_create_if_missing(struct sbb_bridge *br, const char *topic)
{
	struct shmbus_topic_config cfg = {.metadata = 1};
	int r = shmbus_topic_create(br->bus, topic, &cfg);

	return r == -EEXIST ? 0 : r;
}

/* Opens `topic` to publish, creating it with metadata when it does not
 * exist (so that the bridge's exporter can tell the messages it imports).
 * Created before the open: a broker that creates a missing topic on open
 * (auto_create, the default) makes it with its defaults, without. */
static int open_pub(struct sbb_import *im, const char *topic, shmbus_pub **pub)
{
	int r;

	/* -EEXIST is the usual answer; another refusal (a rule, a limit)
	 * leaves it to the open, which may still find or make the topic. */
	(void)sbb_topic_create_if_missing(im->br, topic);
	r = shmbus_pub_open(im->br->bus, topic, pub);
	if (r < 0) {
		return r;
	}
	if (shmbus_pub_id(*pub) == 0 && sbb_exports_topic(im->br, topic)) {
		/* Without metadata its own imports would be exported again,
		 * under this origin: a loop. */
		shmbus_pub_close(*pub);
		*pub = NULL;
		return -ELOOP;
	}
	note_own_id(im->br, shmbus_pub_id(*pub));
	return 0;
}

__attribute__((format(printf, 3, 4))) static void
warn_limited(struct sbb_import *im, _Atomic uint64_t *count, const char *fmt,
	     ...)
{
	if (atomic_fetch_add(count, 1) < LOG_MAX) {
		char line[1024];
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(line, sizeof(line), fmt, ap);
		va_end(ap);
		sbb_warn("import %s: %s", im->subject, line);
	}
}

/* An import's way into one topic: its pub, or why there is none and when
 * to try again (a refusal is not asked of the broker for every message). */
struct topic_out {
	shmbus_pub *pub;
	int64_t retry_ms;
	int err; /* the last refusal */
};

#define RETRY_MS 1000

static void say_refused(struct sbb_import *im, const char *name, int r)
{
	if (r == -ELOOP) {
		warn_limited(im, &im->n.loop_unsafe,
			     "topic \"%s\" is exported by this bridge and "
			     "has no metadata, so imports into it would be "
			     "exported again; recreate it with metadata "
			     "(shmbus create --metadata %s)",
			     name, name);
	} else {
		warn_limited(im, &im->n.no_topic, "topic \"%s\": %s", name,
			     strerror(-r));
	}
}

/* The pub for a message's topic; NULL (counted) when there is none. */
static shmbus_pub *pub_for(struct sbb_import *im, natsMsg *msg)
{
	char topic[SB_TOPIC_NAME_MAX + 1], why[320];
	const char *name = im->topic;
	struct topic_out *out;
	void **slot;
	int r;

	if (name == NULL) {
		if (sb_subject_to_topic(natsMsg_GetSubject(msg), topic,
					sizeof(topic), why, sizeof(why)) < 0) {
			warn_limited(im, &im->n.bad_subject,
				     "subject \"%s\" names no topic: %s",
				     natsMsg_GetSubject(msg), why);
			return NULL;
		}
		name = topic;
	}
	out = name == im->topic ? im->fixed : NULL;
	if (out == NULL) {
		slot = sbb_strmap_slot(&im->pubs, name);
		if (slot != NULL && *slot == NULL) {
			*slot = calloc(1, sizeof(struct topic_out));
		}
		if (slot == NULL || *slot == NULL) {
			atomic_fetch_add(&im->n.failed, 1);
			return NULL;
		}
		out = *slot;
		if (name == im->topic) {
			/* Its one entry: not looked up for every message. */
			im->fixed = out;
		}
	}
	if (out->pub == NULL && sbb_now_ms() >= out->retry_ms) {
		r = open_pub(im, name, &out->pub);
		if (r < 0) {
			out->retry_ms = sbb_now_ms() + RETRY_MS;
			say_refused(im, name, r);
			return NULL;
		}
	}
	if (out->pub == NULL) {
		/* Refused less than RETRY_MS ago: counted as it was then. */
		atomic_fetch_add(
		    out->retry_ms != 0 ? &im->n.no_topic : &im->n.failed, 1);
	}
	return out->pub;
}

/* "a b c" into `key` (`cap` bytes), cut short as snprintf would: what
 * snprintf cost here was an eighth of a message's instructions. */
static void join3(char *key, size_t cap, const char *a, const char *b,
		  const char *c)
{
	const char *part[3] = {a, b, c};
	size_t n = 0;

	for (size_t i = 0; i < 3; i++) {
		size_t len = strlen(part[i]);

		if (i > 0 && n + 1 < cap) {
			key[n++] = ' ';
		}
		if (len > cap - 1 - n) {
			len = cap - 1 - n;
		}
		memcpy(key + n, part[i], len);
		n += len;
	}
	key[n] = '\0';
}

/* Compares the stream's sequence number with the last one seen: a jump is
 * messages lost on the way (gaps), a step back a reordering. */
static void check_sequence(struct sbb_import *im, natsMsg *msg,
			   const char *origin)
{
	const char *run = NULL, *seq_text = NULL;
	char key[SB_SUBJECT_MAX + 128], *end;
	uint64_t seq, last;
	void **slot;

	if (natsMsgHeader_Get(msg, SBB_HDR_RUN, &run) != NATS_OK ||
	    natsMsgHeader_Get(msg, SBB_HDR_SEQ, &seq_text) != NATS_OK) {
		return;
	}
	seq = strtoull(seq_text, &end, 10);
	if (*end != '\0' || seq == 0) {
		return;
	}
	join3(key, sizeof(key), origin, run, natsMsg_GetSubject(msg));
	slot = sbb_strmap_slot(&im->seqs, key);
	if (slot == NULL) {
		atomic_fetch_add(&im->n.untracked, 1);
		return;
	}
	last = (uint64_t)(uintptr_t)*slot;
	if (last != 0 && seq > last + 1) {
		atomic_fetch_add(&im->n.gaps, seq - last - 1);
	} else if (last != 0 && seq <= last) {
		atomic_fetch_add(&im->n.reordered, 1);
		return;
	}
	*slot = (void *)(uintptr_t)seq;
}

/* Whether the message is to be dropped before publishing: a counter
 * report, or one of this bridge's own exports. Checks its sequence. */
static bool skip(struct sbb_import *im, natsMsg *msg)
{
	const char *origin = NULL, *stats = NULL;

	if (natsMsgHeader_Get(msg, SBB_HDR_STATS, &stats) == NATS_OK) {
		atomic_fetch_add(&im->n.stats, 1);
		return true;
	}
	if (natsMsgHeader_Get(msg, SBB_HDR_ORIGIN, &origin) != NATS_OK) {
		return false; /* a plain NATS publisher's */
	}
	if (strcmp(origin, im->br->cfg.origin) == 0) {
		atomic_fetch_add(&im->n.own_origin, 1);
		return true;
	}
	check_sequence(im, msg, origin);
	return false;
}

static void deliver(struct sbb_import *im, natsMsg *msg)
{
	int len = natsMsg_GetDataLength(msg);
	shmbus_pub *pub;
	int r;

	if (skip(im, msg) || (pub = pub_for(im, msg)) == NULL) {
		return;
	}
	if ((size_t)len > shmbus_pub_max_message(pub)) {
		warn_limited(im, &im->n.too_big,
			     "a message of %d bytes on \"%s\" is over its "
			     "topic's max_message (%zu); dropped",
			     len, natsMsg_GetSubject(msg),
			     shmbus_pub_max_message(pub));
		return;
	}
	r = shmbus_publish(pub, natsMsg_GetData(msg), (size_t)len,
			   (int)(im->br->cfg.publish_timeout * 1000));
	if (r == 0) {
		atomic_fetch_add(&im->n.delivered, 1);
	} else if (r == -EAGAIN || r == -ETIMEDOUT) {
		atomic_fetch_add(&im->n.full, 1);
	} else {
		warn_limited(im, &im->n.failed, "publish: %s", strerror(-r));
	}
}

static void on_message(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
		       void *closure)
{
	struct sbb_import *im = closure;

	(void)nc;
	(void)sub;
	atomic_fetch_add(&im->n.received, 1);
	deliver(im, msg);
	natsMsg_Destroy(msg);
}

int sbb_import_start(struct sbb_bridge *br, const struct sbb_import_map *m,
		     struct sbb_import **out)
{
	struct sbb_import *im = calloc(1, sizeof(*im));
	natsStatus s;

	if (im == NULL) {
		return -ENOMEM;
	}
	im->br = br;
	im->pubs.max = TOPICS_MAX;
	im->seqs.max = STREAMS_MAX;
	im->subject = strdup(m->subject);
	im->topic = m->topic != NULL ? strdup(m->topic) : NULL;
	if (im->subject == NULL || (m->topic != NULL && im->topic == NULL)) {
		goto nomem;
	}
	s = natsConnection_Subscribe(&im->sub, br->nc, im->subject, on_message,
				     im);
	if (s == NATS_OK) {
		s = natsSubscription_SetPendingLimits(im->sub, PENDING_MSGS,
						      PENDING_BYTES);
	}
	if (s != NATS_OK) {
		sbb_error("import %s: subscribe: %s", im->subject,
			  natsStatus_GetText(s));
		natsSubscription_Destroy(im->sub);
		free(im->subject);
		free(im->topic);
		free(im);
		return -EIO;
	}
	*out = im;
	return 0;
nomem:
	free(im->subject);
	free(im->topic);
	free(im);
	return -ENOMEM;
}

static void close_out(void *value)
{
	struct topic_out *out = value;

	if (out != NULL && out->pub != NULL) {
		shmbus_pub_close(out->pub);
	}
	free(out);
}

void sbb_import_stop(struct sbb_import *im)
{
	/* Drain: NATS stops sending, and what it has sent is delivered;
	 * then the delivery thread is done with the tables. */
	if (natsSubscription_Drain(im->sub) == NATS_OK) {
		natsSubscription_WaitForDrainCompletion(im->sub, 5000);
	} else {
		natsSubscription_Unsubscribe(im->sub);
	}
}

void sbb_import_free(struct sbb_import *im)
{
	natsSubscription_Destroy(im->sub);
	sbb_strmap_free(&im->pubs, close_out);
	sbb_strmap_free(&im->seqs, NULL);
	free(im->subject);
	free(im->topic);
	free(im);
}
