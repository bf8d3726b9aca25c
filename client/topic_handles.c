/*
 * topic_handles.c - the connection's register of open publishers and
 * subscribers and their handles on the current broker: registering one
 * (handing it over at once when the connection was replaced since its
 * open), handing each back to a restarted broker (topic_adopt), and
 * closing a handle, as a notice when the broker takes one.
 */
#include <errno.h>
#include <pthread.h>

#include "client/conn_internal.h"
#include "wire/names.h"

static cJSON *adopt_request(const struct sb_client_topic *t)
{
	const struct sb_ring *ring = t->ring;
	cJSON *req = cJSON_CreateObject();

	if (req == NULL ||
	    cJSON_AddStringToObject(req, "topic", t->name) == NULL ||
	    cJSON_AddStringToObject(req, "access",
				    t->sub ? "subscribe" : "publish") == NULL ||
	    cJSON_AddStringToObject(req, "mode", sb_mode_name(ring->mode)) ==
		NULL ||
	    cJSON_AddStringToObject(req, "overflow",
				    sb_overflow_name(ring->overflow)) == NULL ||
	    sb_msg_add_int(req, "capacity", (int64_t)ring->capacity) == NULL ||
	    sb_msg_add_int(req, "max_message", ring->max_message) == NULL ||
	    cJSON_AddBoolToObject(req, "persistent", t->persistent) == NULL ||
	    cJSON_AddBoolToObject(req, "explicit", t->is_explicit) == NULL) {
		cJSON_Delete(req);
		return NULL;
	}
	return req;
}

/*
 * Hands `t` to the broker of the current link (bus->lock held):
 * topic_adopt with the data and control descriptors, and a subscriber's
 * slot segment with its index. Returns 0, the broker's refusal (t keeps no
 * handle), or a connection error.
 */
int sb_conn_adopt_locked(shmbus *bus, struct sb_client_topic *t)
{
	struct sb_client_reply rep;
	int fds[3] = {t->data_fd, t->ctl_fd, t->slot_fd};
	cJSON *req;
	int64_t handle;
	int r;

	t->handle = -1;
	if (t->sub && t->rd != NULL && sb_ring_reader_evicted(t->rd)) {
		/* Evicted: its slot is nobody's to hand back, and its old
		 * index may be another subscriber's by now. */
		t->last_error = -EIDRM;
		return -EIDRM;
	}
	req = adopt_request(t);
	if (req != NULL && t->sub &&
	    sb_msg_add_int(req, "slot", t->slot) == NULL) {
		cJSON_Delete(req);
		req = NULL;
	}
	if (req == NULL) {
		t->last_error = -ENOMEM;
		return -ENOMEM;
	}
	sb_client_reply_init(&rep);
	r = sb_conn_call_locked(bus, "topic_adopt", req, fds, t->sub ? 3 : 2,
				&rep);
	cJSON_Delete(req);
	if (r == 0 && sb_msg_get_int(rep.msg.result, "handle", 0, UINT32_MAX,
				     &handle, NULL) < 0) {
		r = -EPROTO;
	}
	if (r == 0) {
		t->handle = handle;
	}
	if (r == -ESTALE && t->sub && t->rd != NULL) {
		/* The broker no longer waits for our slot (we came back after
		 * its grace period): writers no longer see it, so end the
		 * subscription as an eviction would, rather than read on
		 * until overrun. */
		(void)sb_ring_reader_evict(t->rd);
	}
	t->last_error = r;
	sb_client_reply_fini(&rep);
	return r;
}

int sb_client_topic_add(shmbus *bus, struct sb_client_topic *t, int64_t handle,
			uint64_t gen)
{
	if (bus == NULL || t == NULL) {
		return -EINVAL;
	}
	pthread_mutex_lock(&bus->lock);
	t->next = bus->topics;
	bus->topics = t;
	t->last_error = 0;
	if (gen == bus->gen && bus->error == 0 && bus->link != NULL) {
		t->handle = handle;
	} else if (bus->error == 0 && bus->link != NULL) {
		/* The open was answered by a broker we have since lost, and
		 * the reconnection that followed did not know this topic
		 * yet: hand it over now. */
		(void)sb_conn_adopt_locked(bus, t);
	} else {
		t->handle = -1; /* the next reconnection hands it over */
	}
	pthread_mutex_unlock(&bus->lock);
	return 0;
}

/*
 * Sends close for `handle` on the installed link (bus->lock held), best
 * effort. As a notice when the broker takes one: nothing comes back, so an
 * open+close costs one round trip rather than two, and the broker's order
 * of a connection's frames still puts the close before any later request.
 * A broker from before notices gets a request and its reply is ignored. A
 * transport failure ends the link either way, as in sb_conn_call_locked().
 */
static void close_locked(shmbus *bus, int64_t handle)
{
	struct sb_client_reply rep;
	cJSON *req = cJSON_CreateObject();
	int conn_err, r;

	sb_client_reply_init(&rep);
	if (req != NULL && sb_msg_add_int(req, "handle", handle) != NULL) {
		if (bus->link->close_notice) {
			r = sb_link_send(bus->link, "close", req, NULL, NULL, 0,
					 SB_CLIENT_REPLY_TIMEOUT_MS, &conn_err);
			if (conn_err) {
				bus->error = r;
			}
		} else {
			(void)sb_conn_call_locked(bus, "close", req, NULL, 0,
						  &rep);
		}
	}
	cJSON_Delete(req);
	sb_client_reply_fini(&rep);
}

void sb_client_topic_remove(shmbus *bus, struct sb_client_topic *t)
{
	pthread_mutex_lock(&bus->lock);
	for (struct sb_client_topic **p = &bus->topics; *p != NULL;
	     p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			break;
		}
	}
	t->next = NULL;
	if (t->handle >= 0 && bus->error == 0 && bus->link != NULL) {
		close_locked(bus, t->handle);
	}
	t->handle = -1;
	pthread_mutex_unlock(&bus->lock);
}

void sb_client_close_handle(shmbus *bus, int64_t handle, uint64_t gen)
{
	pthread_mutex_lock(&bus->lock);
	if (handle >= 0 && gen == bus->gen && bus->error == 0 &&
	    bus->link != NULL) {
		close_locked(bus, handle);
	}
	pthread_mutex_unlock(&bus->lock);
}
