/*
 * ops_services.c - the ops of request and reply (docs/protocol.md,
 * "Request and reply"): serve_open, serve_channel, serve_close,
 * request_open, request_channel, request_close. The registry and the
 * channels' memory are services.c's; here the fields are read, the rights
 * checked, and each reply gets its own copies of the descriptors it
 * carries (read-only ones where the receiver must only read).
 */
#include "daemon/ops_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "daemon/log.h"
#include "wire/topic_name.h"

/* Reads the "service" field: a name under the topic name rules. */
static int get_service(const cJSON *req, const char **name,
		       struct sb_msg_error *err)
{
	char why[128];

	if (sb_msg_get_string(req, "service", name, err) < 0) {
		return -EINVAL;
	}
	if (sb_topic_name_check(*name, why, sizeof(why)) < 0) {
		return sb_msg_errorf(err, -EINVAL,
				     "field \"service\": invalid service "
				     "name: %s",
				     why);
	}
	return 0;
}

/* Appends to the reply a copy of `fd`: read-write (a duplicate) or a
 * read-only reopening. The copies are the reply's (own_fds). */
static int add_fd(struct sbd_reply *rep, int fd, bool read_only)
{
	int copy = read_only ? sbd_reopen_read_only(fd)
			     : fcntl(fd, F_DUPFD_CLOEXEC, 0);

	if (copy < 0) {
		return read_only ? copy : -errno;
	}
	rep->own_fds = true;
	rep->fds[rep->nfds++] = copy;
	return 0;
}

static int no_fds(struct sb_msg_error *err, int r)
{
	return sb_msg_errorf(err, r == -EMFILE || r == -ENFILE ? r : -ENOMEM,
			     "cannot copy a descriptor: %s", strerror(-r));
}

/* The geometry both ends need, and how many descriptors follow. */
static bool add_geometry(cJSON *r, const struct sbd_service *svc, int nfds)
{
	return sb_msg_add_int(r, "capacity", (int64_t)svc->capacity) &&
	       sb_msg_add_int(r, "max_message", svc->max_message) &&
	       sb_msg_add_int(r, "fds", nfds);
}

int sbd_ops_serve_open(struct sbd_client *c, const cJSON *req,
		       struct sbd_reply *rep, struct sb_msg_error *err)
{
	struct sbd_service *svc;
	struct sbd_server *srv;
	const char *name;
	int r;

	if (get_service(req, &name, err) < 0 ||
	    sbd_service_check_rule(c, name, "serve", err) < 0 ||
	    sbd_service_get(c->broker, name, &svc, err) < 0 ||
	    sbd_server_add(c, svc, &srv, err) < 0) {
		return err->code;
	}
	rep->result = cJSON_CreateObject();
	if (rep->result == NULL ||
	    !sb_msg_add_int(rep->result, "server", srv->id) ||
	    !add_geometry(rep->result, svc, 2)) {
		sbd_server_remove(srv);
		return sbd_ops_oom(err);
	}
	r = add_fd(rep, srv->page_fd, true);
	if (r == 0) {
		r = add_fd(rep, srv->efd, false);
	}
	if (r < 0) {
		sbd_server_remove(srv);
		return no_fds(err, r);
	}
	sbd_debug("client %" PRIu32 ": server %" PRIu32 " of \"%s\"", c->id,
		  srv->id, name);
	return 0;
}

int sbd_ops_request_open(struct sbd_client *c, const cJSON *req,
			 struct sbd_reply *rep, struct sb_msg_error *err)
{
	struct sbd_service *svc;
	struct sbd_requester *rq;
	const char *name;
	int r;

	if (get_service(req, &name, err) < 0 ||
	    sbd_service_check_rule(c, name, "request", err) < 0 ||
	    sbd_service_get(c->broker, name, &svc, err) < 0 ||
	    sbd_requester_add(c, svc, &rq, err) < 0) {
		return err->code;
	}
	rep->result = cJSON_CreateObject();
	if (rep->result == NULL ||
	    !sb_msg_add_int(rep->result, "requester", rq->id) ||
	    !add_geometry(rep->result, svc, 1)) {
		sbd_requester_remove(rq);
		return sbd_ops_oom(err);
	}
	r = add_fd(rep, svc->page_fd, true);
	if (r < 0) {
		sbd_requester_remove(rq);
		return no_fds(err, r);
	}
	return 0;
}

/* The result of request_channel and serve_channel: the channel's id,
 * whether more wait, and five descriptors in the receiver's order: its own
 * segment (read-write), the other's (read-only), the state page
 * (read-only), the eventfd it writes to wake the other, the one it sleeps
 * on. `ch` NULL: none, no descriptors. */
static int chan_result(const struct sbd_chan *ch, bool server, bool more,
		       struct sbd_reply *rep, struct sb_msg_error *err)
{
	int r = 0;

	rep->result = cJSON_CreateObject();
	if (rep->result == NULL ||
	    !cJSON_AddBoolToObject(rep->result, "more", more) ||
	    (ch == NULL && !sb_msg_add_int(rep->result, "fds", 0)) ||
	    (ch != NULL &&
	     (!sb_msg_add_int(rep->result, "channel", (int64_t)ch->id) ||
	      !add_geometry(rep->result, ch->srv->svc, 5)))) {
		return sbd_ops_oom(err);
	}
	if (ch == NULL) {
		return 0;
	}
	r = add_fd(rep, server ? ch->rep_fd : ch->req_fd, false);
	if (r == 0) {
		r = add_fd(rep, server ? ch->req_fd : ch->rep_fd, true);
	}
	if (r == 0) {
		r = add_fd(rep, ch->st_fd, true);
	}
	if (r == 0) {
		r = add_fd(rep, server ? ch->to_requester : ch->to_server,
			   false);
	}
	if (r == 0) {
		r = add_fd(rep, server ? ch->to_server : ch->to_requester,
			   false);
	}
	return r < 0 ? no_fds(err, r) : 0;
}

static int get_id(const cJSON *req, const char *field, uint32_t *id,
		  struct sb_msg_error *err)
{
	int64_t v;

	if (sb_msg_get_int(req, field, 0, UINT32_MAX, &v, err) < 0) {
		return -EINVAL;
	}
	*id = (uint32_t)v;
	return 0;
}

/*
 * request_channel: a requester asks for a channel to a server of its
 * service it has none with (after the service's page said the set of
 * servers changed, or at its first request). One per reply, "more" when
 * another server still lacks one; none (no descriptors) when it has them
 * all.
 */
int sbd_ops_request_channel(struct sbd_client *c, const cJSON *req,
			    struct sbd_reply *rep, struct sb_msg_error *err)
{
	struct sbd_requester *rq;
	struct sbd_chan *ch;
	uint32_t id;
	bool more = false;

	if (get_id(req, "requester", &id, err) < 0) {
		return -EINVAL;
	}
	rq = sbd_requester_find(c, id);
	if (rq == NULL) {
		return sb_msg_errorf(
		    err, -ENOENT, "no requester %" PRIu32 " on this connection",
		    id);
	}
	if (sbd_chan_make(rq, &ch, err) < 0) {
		return err->code;
	}
	if (ch != NULL) {
		for (const struct sbd_server *s = rq->svc->servers; s != NULL;
		     s = s->next) {
			const struct sbd_chan *x = rq->chans;

			while (x != NULL && x->srv != s) {
				x = x->rnext;
			}
			more = more || x == NULL;
		}
	}
	return chan_result(ch, false, more, rep, err);
}

/*
 * serve_channel: a server asks for its next channel after its page said
 * it was given one (one per reply, "more" when others wait). The broker
 * keeps no copy of the segments once the server has its end: both ends
 * hold them then.
 */
int sbd_ops_serve_channel(struct sbd_client *c, const cJSON *req,
			  struct sbd_reply *rep, struct sb_msg_error *err)
{
	struct sbd_server *srv;
	struct sbd_chan *ch;
	uint32_t id;
	int r;

	if (get_id(req, "server", &id, err) < 0) {
		return -EINVAL;
	}
	srv = sbd_server_find(c, id);
	if (srv == NULL) {
		return sb_msg_errorf(err, -ENOENT,
				     "no server %" PRIu32 " on this connection",
				     id);
	}
	ch = sbd_chan_next_for_server(srv);
	if (ch == NULL) {
		return chan_result(NULL, true, false, rep, err);
	}
	ch->server_has = true; /* for "more" */
	r = chan_result(ch, true, sbd_server_has_new(srv), rep, err);
	ch->server_has = false;
	if (r == 0) {
		sbd_chan_given_to_server(ch);
	}
	return r;
}

int sbd_ops_serve_close(struct sbd_client *c, const cJSON *req,
			struct sbd_reply *rep, struct sb_msg_error *err)
{
	struct sbd_server *srv;
	uint32_t id;

	(void)rep;
	if (get_id(req, "server", &id, err) < 0) {
		return -EINVAL;
	}
	srv = sbd_server_find(c, id);
	if (srv == NULL) {
		return sb_msg_errorf(err, -ENOENT,
				     "no server %" PRIu32 " on this connection",
				     id);
	}
	sbd_server_remove(srv);
	return 0;
}

int sbd_ops_request_close(struct sbd_client *c, const cJSON *req,
			  struct sbd_reply *rep, struct sb_msg_error *err)
{
	struct sbd_requester *rq;
	uint32_t id;

	(void)rep;
	if (get_id(req, "requester", &id, err) < 0) {
		return -EINVAL;
	}
	rq = sbd_requester_find(c, id);
	if (rq == NULL) {
		return sb_msg_errorf(
		    err, -ENOENT, "no requester %" PRIu32 " on this connection",
		    id);
	}
	sbd_requester_remove(rq);
	return 0;
}
