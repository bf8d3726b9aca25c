/*
 * ops_adopt.c - topic_adopt: a client hands back a topic it holds open,
 * after the broker it opened it with went away. Here the request's claims
 * are read, its descriptors taken and the rules of an open applied;
 * topic.c checks the claims against the ring and the registry
 * (sbd_topic_adopt()), slots.c takes a subscriber's slot back.
 */
#include "daemon/ops_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "daemon/log.h"
#include "wire/names.h"

/* The settings a topic_adopt claims (with `nfds` descriptors); the ring
 * itself must agree. */
static int adopt_settings(const cJSON *req, int nfds, struct sbd_adopt *a,
			  struct sb_msg_error *err)
{
	static const char *const access[] = {"subscribe", "publish", NULL};
	int64_t capacity, max_message, fds;
	const char *mode, *overflow, *acc;

	if (sbd_ops_get_choice(req, "access", access, &acc, err) < 0 ||
	    sbd_ops_get_choice(req, "mode", sb_mode_names, &mode, err) < 0 ||
	    sbd_ops_get_choice(req, "overflow", sb_overflow_names, &overflow,
			       err) < 0 ||
	    sb_msg_get_int(req, "capacity", 1, SB_MSG_INT_MAX, &capacity, err) <
		0 ||
	    sb_msg_get_int(req, "max_message", 0, UINT32_MAX, &max_message,
			   err) < 0 ||
	    sb_msg_get_int(req, "fds", nfds, nfds, &fds, err) < 0 ||
	    sb_msg_get_bool_opt(req, "persistent", false, &a->persistent, err) <
		0 ||
	    sb_msg_get_bool_opt(req, "explicit", false, &a->is_explicit, err) <
		0) {
		return -EINVAL;
	}
	if (acc == NULL || mode == NULL || overflow == NULL) {
		return sb_msg_errorf(err, -EINVAL,
				     "fields \"access\", \"mode\" and "
				     "\"overflow\" are required");
	}
	a->writable = strcmp(acc, "publish") == 0;
	a->geo.capacity = (uint64_t)capacity;
	a->geo.max_message = (uint32_t)max_message;
	a->geo.slot_count = 1;
	/* The ring's numbering is the protocol's (wire/names.h). */
	a->geo.mode = sb_mode_parse(mode);
	a->geo.overflow = sb_overflow_parse(overflow);
	return 0;
}

static void close_adopt_fds(struct sbd_adopt *a)
{
	if (a->data_fd >= 0) {
		close(a->data_fd);
	}
	if (a->ctl_fd >= 0) {
		close(a->ctl_fd);
	}
}

/* Takes the first `n` descriptors that came with the request: they are
 * the op's from here on (client.c forgets them). 0, or -EINVAL when fewer
 * came. */
static int take_in_fds(const struct sbd_client *c, struct sbd_reply *rep,
		       int *fds, int n)
{
	if (c->n_in_fds < n) {
		return -EINVAL;
	}
	memcpy(fds, c->in_fds, sizeof(int) * (size_t)n);
	rep->in_taken = n;
	return 0;
}

/*
 * topic_adopt: a client hands back a topic it holds open, after the broker
 * it opened it with went away. The two descriptors come with the request;
 * they are taken first so that every path closes or keeps them. The rules
 * apply as to an open: "publish" needs the publish rule, "subscribe" the
 * subscribe rule; "explicit" is honoured only under the admin rule. What
 * the hand-back would do to the registry may need more (the admin rule to
 * register a name, the publish rule to replace a topic's memory): topic.c
 * checks that once it knows, through sbd_topic_check_rule().
 */
int sbd_ops_topic_adopt(struct sbd_client *c, const cJSON *req,
			struct sbd_reply *rep, struct sb_msg_error *err)
{
	struct sbd_adopt a;
	struct sbd_topic *t;
	struct sbd_handle *h;
	const char *how = "joined";
	struct sb_msg_error ignored;
	int64_t slot = -1;
	int fds[3] = {-1, -1, -1};
	int nfds, r;

	memset(&a, 0, sizeof(a));
	a.data_fd = a.ctl_fd = -1;
	a.client = c;
	/* A subscriber hands back its slot segment too, and says which. */
	r = sb_msg_get_int_opt(req, "slot", 0, SB_RING_MAX_SLOTS - 1, -1, &slot,
			       err);
	nfds = slot >= 0 ? 3 : 2;
	if (r < 0) {
		/* Not knowing how many it carries, none may be left for
		 * the next request. */
		rep->in_close = true;
		return r;
	}
	if (take_in_fds(c, rep, fds, nfds) < 0) {
		return sb_msg_errorf(err, -EINVAL,
				     "topic_adopt carries %d descriptors "
				     "(data, control%s); got %d",
				     nfds, nfds == 3 ? ", slot" : "",
				     c->n_in_fds);
	}
	a.data_fd = fds[0];
	a.ctl_fd = fds[1];
	r = sbd_ops_get_topic(req, &a.name, err);
	if (r == 0) {
		r = adopt_settings(req, nfds, &a, err);
	}
	if (r == 0 && (slot >= 0) == a.writable) {
		r = sb_msg_errorf(err, -EINVAL,
				  "field \"slot\" comes with \"access\": "
				  "\"subscribe\", and only then");
	}
	if (r == 0) {
		r = sbd_topic_check_rule(
		    c, a.name, a.writable ? "publish" : "subscribe", err);
	}
	if (r == 0 && c->handles.count >= SBD_MAX_HANDLES_PER_CLIENT) {
		r = sb_msg_errorf(err, -EMFILE,
				  "this connection holds %d handles already",
				  SBD_MAX_HANDLES_PER_CLIENT);
	}
	if (r < 0) {
		close_adopt_fds(&a);
		if (fds[2] >= 0) {
			close(fds[2]);
		}
		return err->code;
	}
	if (a.is_explicit &&
	    sbd_topic_check_rule(c, a.name, "admin", &ignored) < 0) {
		a.is_explicit = false;
	}
	/* From here sbd_topic_adopt() owns the descriptors. */
	r = sbd_topic_adopt(c->broker, &a, &t, &how, err);
	h = r == 0 ? sbd_handle_add(&c->handles, t, !a.writable) : NULL;
	if (r == 0 && h == NULL) {
		r = sbd_ops_oom(err);
	}
	if (r == 0 && slot >= 0) {
		r = sbd_slot_adopt(t, h, slot, fds[2], err);
		fds[2] = -1;
	}
	if (fds[2] >= 0) {
		close(fds[2]);
	}
	if (r < 0) {
		sbd_warn("client %" PRIu32 " (pid %ld): topic_adopt \"%s\" "
			 "refused: %s",
			 c->id, (long)c->cred.pid, a.name, err->message);
		if (h != NULL) {
			sbd_handle_close(&c->handles, h->id);
		}
		return err->code;
	}
	rep->result = sbd_ops_open_result(h, 0);
	if (rep->result == NULL ||
	    !cJSON_AddStringToObject(rep->result, "adopted", how)) {
		sbd_handle_close(&c->handles, h->id);
		return sbd_ops_oom(err);
	}
	sbd_debug("client %" PRIu32 ": topic \"%s\" %s, %s handle %" PRIu32,
		  c->id, a.name, how, a.writable ? "pub" : "sub", h->id);
	return 0;
}
