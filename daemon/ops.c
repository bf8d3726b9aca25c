/*
 * ops.c - the control protocol's dispatch (docs/protocol.md): parses each
 * request, checks the envelope, the hello-first rule and the op's fields
 * against the table of ops, runs the op's handler, and makes exactly one
 * reply -- none for a notice (a request without an id, taken for the ops
 * that allow it), whose failure is only logged. The reply, with its
 * descriptors and what else the request asks of the connection, goes back
 * to client.c as a struct sbd_reply: client.c sends it, and nothing in the
 * ops calls into client.c. The session's own ops are here too: hello, which
 * the dispatch lets nothing precede and whose reply lists the table's
 * notice ops, and ping. The other ops' handlers are in ops_topics.c,
 * ops_handles.c and ops_adopt.c (ops_internal.h).
 */
#include "daemon/ops_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon/log.h"

typedef int (*op_fn)(struct sbd_client *c, const cJSON *req,
		     struct sbd_reply *rep, struct sb_msg_error *err);

struct op {
	const char *name;
	op_fn fn;
	const char *const *fields; /* known fields, "op" and "id" included */
	bool notice; /* may come without an id, and then gets no reply */
};

static cJSON *notice_ops(void);

static bool printable(const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s < 0x20 || *s > 0x7e) {
			return false;
		}
	}
	return true;
}

static int op_hello(struct sbd_client *c, const cJSON *req,
		    struct sbd_reply *rep, struct sb_msg_error *err)
{
	const struct sb_config_limits *lim = &c->broker->cfg.limits;
	const char *name = NULL;
	int64_t version;
	cJSON *r, *limits;

	if (sb_msg_get_int(req, "version", 0, SB_MSG_INT_MAX, &version, err) <
		0 ||
	    sb_msg_get_string_opt(req, "name", NULL, &name, err) < 0) {
		return -EINVAL;
	}
	if (name != NULL &&
	    (strlen(name) < 1 || strlen(name) > 64 || !printable(name))) {
		return sb_msg_errorf(err, -EINVAL,
				     "field \"name\" must be 1 to 64 printable "
				     "characters");
	}
	if (version != SB_MSG_PROTOCOL_VERSION) {
		rep->close_after = true;
		return sb_msg_errorf(err, -EPROTO,
				     "protocol version %" PRId64
				     " not supported; this broker speaks %d",
				     version, SB_MSG_PROTOCOL_VERSION);
	}
	r = cJSON_CreateObject();
	limits = cJSON_CreateObject();
	if (r == NULL || limits == NULL ||
	    !cJSON_AddItemToObject(r, "limits", limits)) {
		cJSON_Delete(r);
		cJSON_Delete(limits);
		return sbd_ops_oom(err);
	}
	rep->result = r;
	if (!sb_msg_add_int(r, "version", SB_MSG_PROTOCOL_VERSION) ||
	    !cJSON_AddStringToObject(r, "broker", "shmbusd " SBD_VERSION) ||
	    !sb_msg_add_int(r, "pid", getpid()) ||
	    !sb_msg_add_int(r, "client", c->id) ||
	    !sb_msg_add_int(limits, "max_frame", (int64_t)lim->max_frame) ||
	    !sb_msg_add_int(limits, "max_message", (int64_t)lim->max_message) ||
	    !sb_msg_add_int(limits, "max_topic_bytes",
			    (int64_t)lim->max_topic_bytes) ||
	    !cJSON_AddItemToObject(r, "notices", notice_ops())) {
		return sbd_ops_oom(err);
	}
	c->hello_done = true;
	if (name != NULL) {
		snprintf(c->name, sizeof(c->name), "%s", name);
	}
	sbd_debug("client %" PRIu32 " said hello as \"%s\"", c->id,
		  c->name[0] != '\0' ? c->name : "(no name)");
	return 0;
}

static int op_ping(struct sbd_client *c, const cJSON *req,
		   struct sbd_reply *rep, struct sb_msg_error *err)
{
	(void)c;
	(void)req;
	(void)rep;
	(void)err;
	return 0;
}

#define ENVELOPE "op", "id"

static const char *const F_HELLO[] = {ENVELOPE, "version", "name", NULL};
static const char *const F_CREATE[] = {
    ENVELOPE,	    "topic",	"capacity",   "max_message",
    "mode",	    "overflow", "persistent", "linger_ms",
    "max_stall_ms", "metadata", NULL};
static const char *const F_TOPIC[] = {ENVELOPE, "topic", NULL};
static const char *const F_NONE[] = {ENVELOPE, NULL};
static const char *const F_LIST[] = {ENVELOPE, "after", "limit", NULL};
static const char *const F_STAT[] = {ENVELOPE, "topic", "after", "limit", NULL};
static const char *const F_SUB[] = {ENVELOPE, "topic", "start", NULL};
static const char *const F_CLOSE[] = {ENVELOPE, "handle", NULL};
static const char *const F_EVICT[] = {ENVELOPE, "topic", "slot", NULL};
static const char *const F_ADOPT[] = {
    ENVELOPE,	   "topic",	 "access",   "mode", "overflow", "capacity",
    "max_message", "persistent", "explicit", "fds",  "slot",	 NULL};
static const char *const F_SLOTS[] = {ENVELOPE, "handle", "from", NULL};
static const char *const F_WATCH[] = {ENVELOPE, "pattern", NULL};
static const char *const F_SERVICE[] = {ENVELOPE, "service", NULL};
static const char *const F_SERVER[] = {ENVELOPE, "server", NULL};
static const char *const F_REQUESTER[] = {ENVELOPE, "requester", NULL};

/*
 * Only close may come as a notice: its reply carries nothing a client needs
 * (the one error, an unknown handle, is a client bug), and it is half of
 * every topic open+close. Any other op without an id still gets the
 * "missing field \"id\"" error, as before notices existed.
 */
static const struct op OPS[] = {
    {"hello", op_hello, F_HELLO, false},
    {"topic_create", sbd_ops_topic_create, F_CREATE, false},
    {"topic_delete", sbd_ops_topic_delete, F_TOPIC, false},
    {"topic_list", sbd_ops_topic_list, F_LIST, false},
    {"topic_stat", sbd_ops_topic_stat, F_STAT, false},
    {"topic_watch", sbd_ops_topic_watch, F_WATCH, false},
    {"pub_open", sbd_ops_pub_open, F_TOPIC, false},
    {"sub_open", sbd_ops_sub_open, F_SUB, false},
    {"close", sbd_ops_close, F_CLOSE, true},
    {"topic_adopt", sbd_ops_topic_adopt, F_ADOPT, false},
    {"sub_evict", sbd_ops_sub_evict, F_EVICT, false},
    {"slots", sbd_ops_slots, F_SLOTS, false},
    {"ping", op_ping, F_NONE, false},
    {"serve_open", sbd_ops_serve_open, F_SERVICE, false},
    {"serve_channel", sbd_ops_serve_channel, F_SERVER, false},
    {"serve_close", sbd_ops_serve_close, F_SERVER, false},
    {"request_open", sbd_ops_request_open, F_SERVICE, false},
    {"request_channel", sbd_ops_request_channel, F_REQUESTER, false},
    {"request_close", sbd_ops_request_close, F_REQUESTER, false},
};

/* The hello reply's "notices": the names of the ops that may come as a
 * notice, so that a client never sends one to a broker that would answer
 * it with an error the client is not waiting for. NULL if out of memory. */
static cJSON *notice_ops(void)
{
	cJSON *arr = cJSON_CreateArray();

	for (size_t i = 0; arr != NULL && i < sizeof(OPS) / sizeof(OPS[0]);
	     i++) {
		if (OPS[i].notice &&
		    !cJSON_AddItemToArray(arr,
					  cJSON_CreateString(OPS[i].name))) {
			cJSON_Delete(arr);
			arr = NULL;
		}
	}
	return arr;
}

static const struct op *find_op(const char *name)
{
	for (size_t i = 0; i < sizeof(OPS) / sizeof(OPS[0]); i++) {
		if (strcmp(OPS[i].name, name) == 0) {
			return &OPS[i];
		}
	}
	return NULL;
}

/* Runs one parsed request. Returns 0 with *rep filled, or the error. */
static int run(struct sbd_client *c, const struct sb_msg_request *req,
	       struct sbd_reply *rep, struct sb_msg_error *err)
{
	const struct op *op = find_op(req->op);
	char got[SBD_OPS_QUOTE_MAX];

	if (op == NULL) {
		return sb_msg_errorf(err, -ENOTSUP, "unknown op %s",
				     sbd_ops_quote(req->op, got));
	}
	if (!c->hello_done && op->fn != op_hello) {
		return sb_msg_errorf(err, -EPROTO,
				     "the first request must be \"hello\" "
				     "(got %s)",
				     sbd_ops_quote(req->op, got));
	}
	if (c->hello_done && op->fn == op_hello) {
		return sb_msg_errorf(err, -EPROTO,
				     "\"hello\" was already done");
	}
	if (sb_msg_check_fields(req->root, op->fields, err) < 0) {
		return -EINVAL;
	}
	return op->fn(c, req->root, rep, err);
}

/*
 * Runs a notice: nothing is sent back, whatever happens. A failure is
 * logged instead, at warn level the first time on a connection (the client
 * has a bug, and nobody else will tell) and at debug level after that, so
 * that a client cannot flood the log: notices, having no replies, are not
 * held back by max_requests_in_flight.
 */
static void run_notice(struct sbd_client *c, struct sbd_reply *rep)
{
	const struct sb_msg_request *req = &rep->req;
	struct sb_msg_error err = {0, ""};
	char got[SBD_OPS_QUOTE_MAX];

	rep->no_reply = true;
	if (run(c, req, rep, &err) == 0) {
		sbd_debug("client %" PRIu32 ": notice %s done", c->id,
			  sbd_ops_quote(req->op, got));
	} else if (!c->notice_warned) {
		c->notice_warned = true;
		sbd_warn("client %" PRIu32 " (pid %ld): notice %s failed, and "
			 "notices get no reply: %s (further failed notices "
			 "of this client are logged at debug level)",
			 c->id, (long)c->cred.pid, sbd_ops_quote(req->op, got),
			 err.message);
	} else {
		sbd_debug("client %" PRIu32 ": notice %s failed: %s", c->id,
			  sbd_ops_quote(req->op, got), err.message);
	}
	cJSON_Delete(rep->result);
	rep->result = NULL;
}

static void close_own_fds(struct sbd_reply *rep)
{
	for (int i = 0; rep->own_fds && i < rep->nfds; i++) {
		close(rep->fds[i]);
	}
	rep->own_fds = false;
}

void sbd_ops_run(struct sbd_client *c, const char *payload, size_t len,
		 struct sbd_reply *rep)
{
	struct sb_msg_request *req = &rep->req;
	struct sb_msg_error err = {0, ""};
	char got[SBD_OPS_QUOTE_MAX];
	const struct op *op;
	int r;

	memset(rep, 0, sizeof(*rep));
	r = sb_msg_parse_request(payload, len, req, &err);
	if (r == 0 && req->notice) {
		op = find_op(req->op);
		if (op != NULL && op->notice) {
			run_notice(c, rep);
			return;
		}
		/* Not an op that may come without an id: the envelope error
		 * it always got, with "id": null. */
		r = sb_msg_errorf(&err, -EPROTO, "missing field \"id\"");
	}
	if (r == 0) {
		r = run(c, req, rep, &err);
	}
	if (r == 0) {
		rep->msg = sb_msg_reply_result(req->id, rep->result);
	} else {
		sbd_debug("client %" PRIu32 ": %s: %s", c->id,
			  req->op != NULL ? sbd_ops_quote(req->op, got)
					  : "request",
			  err.message);
		cJSON_Delete(rep->result);
		close_own_fds(rep);
		rep->nfds = 0;
		rep->msg =
		    sb_msg_reply_error(req->has_id, req->id, r, err.message);
	}
	rep->result = NULL;
}

void sbd_ops_reply_fini(struct sbd_reply *rep)
{
	cJSON_Delete(rep->msg);
	rep->msg = NULL;
	close_own_fds(rep);
	rep->nfds = 0;
	sb_msg_request_fini(&rep->req);
}
