/*
 * ops_handles.c - the ops on a connection's handles: pub_open and sub_open
 * (the topic created implicitly if auto_create allows; the reply carries
 * the topic's descriptors and a subscriber's slot segment), close, slots
 * (the slot segments a publisher or queue consumer reads) and sub_evict
 * (an admin frees a subscriber's slot). The open's result is topic_adopt's
 * too (ops_adopt.c).
 */
#include "daemon/ops_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "daemon/log.h"

/* Finds the topic for pub_open/sub_open, creating it implicitly if the
 * broker's auto_create allows. */
static int open_topic(struct sbd_client *c, const char *name,
		      struct sbd_topic **t, struct sb_msg_error *err)
{
	struct sbd_broker *b = c->broker;
	const struct sb_config_topic *s = sbd_config_topic(b, name);

	*t = sbd_topic_find(b, name);
	if (*t != NULL) {
		return 0;
	}
	if (!b->cfg.auto_create) {
		return sb_msg_errorf(
		    err, -ENOENT, "no such topic \"%s\" (auto_create is off)",
		    name);
	}
	/* A predeclared topic that was deleted comes back with its own
	 * settings, but implicitly: the config declares it, the open does
	 * not. */
	return sbd_topic_create(b, name, s != NULL ? s : &b->cfg.topic_defaults,
				false, t, err);
}

/* For a publisher: the slot segments' generation and how many are in use,
 * so that it knows whether it must ask for them (op slots) before it
 * first reclaims. */
static bool add_slot_set(cJSON *r, const struct sbd_topic *t)
{
	uint32_t in_use = 0;

	for (uint32_t i = 0; i < t->slot_map.count; i++) {
		in_use += t->slot_map.slots[i] != NULL;
	}
	return sb_msg_add_int(
		   r, "slot_gen",
		   (int64_t)(sb_ring_slot_gen(&t->ring) & SB_MSG_INT_MAX)) &&
	       sb_msg_add_int(r, "slots_in_use", in_use);
}

cJSON *sbd_ops_open_result(const struct sbd_handle *h, int nfds)
{
	const struct sbd_topic *t = h->topic;
	cJSON *r = sbd_ops_result_with("topic", sbd_topic_info(t));

	if (r == NULL || !sb_msg_add_int(r, "handle", h->id) ||
	    (h->slot >= 0 && !sb_msg_add_int(r, "slot", h->slot)) ||
	    (!h->sub && !add_slot_set(r, t)) ||
	    !sb_msg_add_int(r, "data_size", (int64_t)t->data_size) ||
	    !sb_msg_add_int(r, "ctl_size", (int64_t)t->ctl_size) ||
	    !sb_msg_add_int(r, "fds", nfds)) {
		cJSON_Delete(r);
		return NULL;
	}
	return r;
}

static int open_handle(struct sbd_client *c, const cJSON *req, bool sub,
		       struct sbd_reply *rep, struct sb_msg_error *err)
{
	struct sbd_topic *t;
	struct sbd_handle *h;
	const char *name;

	if (sbd_ops_get_topic(req, &name, err) < 0 ||
	    sbd_topic_check_rule(c, name, sub ? "subscribe" : "publish", err) <
		0) {
		return err->code;
	}
	if (c->handles.count >= SBD_MAX_HANDLES_PER_CLIENT) {
		return sb_msg_errorf(err, -EMFILE,
				     "this connection holds %d handles already",
				     SBD_MAX_HANDLES_PER_CLIENT);
	}
	if (open_topic(c, name, &t, err) < 0) {
		return err->code;
	}
	if (!sub && t->data_fd < 0) {
		return sb_msg_errorf(err, -EROFS,
				     "topic \"%s\" was handed back by "
				     "subscribers only: nobody can publish on "
				     "it until a publisher reconnects",
				     name);
	}
	h = sbd_handle_add(&c->handles, t, sub);
	if (h != NULL && sub && sbd_slot_open(t, h, err) < 0) {
		sbd_handle_close(&c->handles, h->id);
		return err->code;
	}
	rep->result = h != NULL ? sbd_ops_open_result(h, sub ? 3 : 2) : NULL;
	if (rep->result == NULL) {
		if (h != NULL) {
			sbd_handle_close(&c->handles, h->id);
		} else if (t->refs == 0 && !t->is_explicit) {
			sbd_topic_unname(t);
		}
		return sbd_ops_oom(err);
	}
	rep->fds[0] = sub ? t->ro_fd : t->data_fd;
	rep->fds[1] = t->ctl_fd;
	rep->nfds = 2;
	if (sub) {
		rep->fds[rep->nfds++] = t->slots[h->slot].fd;
	}
	t->handed_out = true;
	sbd_debug("client %" PRIu32 ": %s handle %" PRIu32 " on topic \"%s\"",
		  c->id, sub ? "sub" : "pub", h->id, name);
	return 0;
}

int sbd_ops_pub_open(struct sbd_client *c, const cJSON *req,
		     struct sbd_reply *rep, struct sb_msg_error *err)
{
	return open_handle(c, req, false, rep, err);
}

int sbd_ops_sub_open(struct sbd_client *c, const cJSON *req,
		     struct sbd_reply *rep, struct sb_msg_error *err)
{
	static const char *const starts[] = {"latest", "earliest", NULL};
	const char *start;

	/* The client takes its slot itself; `start` is checked here so that
	 * a typo fails before anything is granted. */
	if (sbd_ops_get_choice(req, "start", starts, &start, err) < 0) {
		return -EINVAL;
	}
	return open_handle(c, req, true, rep, err);
}

int sbd_ops_close(struct sbd_client *c, const cJSON *req, struct sbd_reply *rep,
		  struct sb_msg_error *err)
{
	int64_t id;

	(void)rep;
	if (sb_msg_get_int(req, "handle", 0, UINT32_MAX, &id, err) < 0) {
		return -EINVAL;
	}
	if (sbd_handle_close(&c->handles, (uint32_t)id) < 0) {
		return sb_msg_errorf(err, -ENOENT,
				     "no handle %" PRId64 " on this connection",
				     id);
	}
	return 0;
}

/*
 * slots: a publisher asks for the topic's slot segments, read-only, after
 * the ring's slot generation told it the set changed (docs/protocol.md). One
 * page of at most SBD_SLOTS_PAGE segments from index "from" on.
 */
int sbd_ops_slots(struct sbd_client *c, const cJSON *req, struct sbd_reply *rep,
		  struct sb_msg_error *err)
{
	const struct sbd_handle *h;
	int64_t id, from;

	if (sb_msg_get_int(req, "handle", 0, UINT32_MAX, &id, err) < 0 ||
	    sb_msg_get_int_opt(req, "from", 0, SB_RING_MAX_SLOTS, 0, &from,
			       err) < 0) {
		return -EINVAL;
	}
	h = sbd_handle_find(&c->handles, (uint32_t)id);
	if (h == NULL) {
		return sb_msg_errorf(err, -ENOENT,
				     "no handle %" PRId64 " on this connection",
				     id);
	}
	if (h->sub && h->topic->geo.mode != SB_RING_QUEUE) {
		/* Writers read the cursors, queue consumers each other's
		 * claims; a broadcast subscriber gets no descriptor of
		 * another's slot. */
		return sb_msg_errorf(err, -EACCES,
				     "handle %" PRId64 " is a broadcast "
				     "subscriber's: slots is for publishers "
				     "and queue consumers",
				     id);
	}
	rep->result =
	    sbd_slots_page(h->topic, (uint32_t)from, rep->fds, &rep->nfds);
	rep->own_fds = true;
	return rep->result != NULL ? 0 : sbd_ops_oom(err);
}

/*
 * sub_evict: an admin of the topic removes the subscriber in one slot (a
 * reader that stopped reading holds block-mode writers back). The slot is
 * freed in the ring and the reader's next receive fails with EIDRM; its
 * handle here stays until its client closes it.
 */
int sbd_ops_sub_evict(struct sbd_client *c, const cJSON *req,
		      struct sbd_reply *rep, struct sb_msg_error *err)
{
	struct sb_ring_slot_view v;
	struct sbd_topic *t;
	char why[160];
	uint32_t client;
	int64_t slot;

	if (sb_msg_get_int(req, "slot", 0, UINT32_MAX, &slot, err) < 0 ||
	    sbd_ops_find_topic(c, req, &t, err) < 0 ||
	    sbd_topic_check_rule(c, t->name, "admin", err) < 0) {
		return err->code;
	}
	if (slot >= t->geo.slot_count) {
		return sb_msg_errorf(err, -EINVAL,
				     "field \"slot\": topic \"%s\" has slots 0 "
				     "to %" PRIu32 " (got %" PRId64 ")",
				     t->name, t->geo.slot_count - 1, slot);
	}
	if (sb_ring_slot_view(&t->ring, (uint32_t)slot, &v) < 0) {
		v.state = 0; /* no segment: nobody there */
	}
	snprintf(why, sizeof(why),
		 "by client %" PRIu32 " (uid %lu, pid %ld, \"%s\")", c->id,
		 (unsigned long)c->cred.uid, (long)c->cred.pid,
		 c->name[0] != '\0' ? c->name : "no name");
	client = sbd_slot_client(t, (uint32_t)slot);
	if (!v.in_use || sbd_topic_evict(t, (uint32_t)slot, v.state, why) < 0) {
		return sb_msg_errorf(err, -ENOENT,
				     "slot %" PRId64 " of topic \"%s\" holds "
				     "no subscriber",
				     slot, t->name);
	}
	rep->result = cJSON_CreateObject();
	if (rep->result == NULL || !sb_msg_add_int(rep->result, "slot", slot) ||
	    !sb_msg_add_int(rep->result, "pid", v.pid) ||
	    !sb_msg_add_int(rep->result, "client", client)) {
		return sbd_ops_oom(err);
	}
	return 0;
}
