/*
 * ops.c - the control protocol's operations (docs/protocol.md): parses each
 * request, checks the envelope, the hello-first rule and the op's fields,
 * runs the handler, and makes exactly one reply -- none for a notice (a
 * request without an id, taken for the ops that allow it), whose failure is
 * only logged. The reply, with its descriptors and what else the request
 * asks of the connection, goes back to client.c as a struct sbd_reply:
 * client.c sends it, and nothing here calls into client.c.
 */
#include "daemon/broker.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/log.h"
#include "wire/names.h"
#include "wire/size.h"
#include "wire/topic_name.h"

typedef int (*op_fn)(struct sbd_client *c, const cJSON *req,
		     struct sbd_reply *rep, struct sb_msg_error *err);

struct op {
	const char *name;
	op_fn fn;
	const char *const *fields; /* known fields, "op" and "id" included */
	bool notice; /* may come without an id, and then gets no reply */
};

static cJSON *notice_ops(void);

/* Room for a peer's string quoted into an error message. */
#define QUOTE_MAX 80

/* A peer's string as a quoted, escaped literal (at most 64 bytes of it):
 * error messages are also logged, and must stay one line of text. */
static const char *quote(const char *s, char buf[QUOTE_MAX])
{
	return sb_msg_quote(s, 64, buf, QUOTE_MAX);
}

static int oom(struct sb_msg_error *err)
{
	return sb_msg_errorf(err, -ENOMEM, "out of memory");
}

/* A result object with one item, or NULL (the item is freed then). */
static cJSON *result_with(const char *name, cJSON *item)
{
	cJSON *o = item != NULL ? cJSON_CreateObject() : NULL;

	if (o == NULL || !cJSON_AddItemToObject(o, name, item)) {
		cJSON_Delete(o);
		cJSON_Delete(item);
		return NULL;
	}
	return o;
}

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
		return oom(err);
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
		return oom(err);
	}
	c->hello_done = true;
	if (name != NULL) {
		snprintf(c->name, sizeof(c->name), "%s", name);
	}
	sbd_debug("client %" PRIu32 " said hello as \"%s\"", c->id,
		  c->name[0] != '\0' ? c->name : "(no name)");
	return 0;
}

/* Reads a topic name field and checks it with the one topic name rule. */
static int get_topic(const cJSON *req, const char **name,
		     struct sb_msg_error *err)
{
	char why[128];

	if (sb_msg_get_string(req, "topic", name, err) < 0) {
		return -EINVAL;
	}
	if (sb_topic_name_check(*name, why, sizeof(why)) < 0) {
		return sb_msg_errorf(err, -EINVAL,
				     "field \"topic\": invalid topic name: %s",
				     why);
	}
	return 0;
}

/* A size field: an integer, or a string such as "64KiB". Absent or 0:
 * `dflt`. */
static int get_size(const cJSON *req, const char *field, uint64_t dflt,
		    uint64_t *out, struct sb_msg_error *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, field);
	const char *why = NULL;
	char got[QUOTE_MAX];
	int64_t n;

	*out = dflt;
	if (cJSON_IsString(v)) {
		if (sb_size_parse(v->valuestring, out, &why) < 0) {
			return sb_msg_errorf(err, -EINVAL,
					     "field \"%s\": %s (got %s)", field,
					     why, quote(v->valuestring, got));
		}
	} else if (v != NULL) {
		if (sb_msg_get_int(req, field, 0, SB_MSG_INT_MAX, &n, err) <
		    0) {
			return -EINVAL;
		}
		*out = (uint64_t)n;
	}
	if (*out == 0) {
		*out = dflt;
	}
	return 0;
}

/* A string field that must be one of two or three names: *out is the
 * name given, or NULL when the field is absent. */
static int get_choice(const cJSON *req, const char *field,
		      const char *const *names, const char **out,
		      struct sb_msg_error *err)
{
	const char *s = NULL;
	char got[QUOTE_MAX];

	*out = NULL;
	if (sb_msg_get_string_opt(req, field, NULL, &s, err) < 0) {
		return -EINVAL;
	}
	if (s == NULL) {
		return 0;
	}
	for (int i = 0; names[i] != NULL; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = s;
			return 0;
		}
	}
	return sb_msg_errorf(err, -EINVAL,
			     "field \"%s\" must be one of \"%s\", \"%s\"%s%s%s "
			     "(got %s)",
			     field, names[0], names[1],
			     names[2] != NULL ? ", \"" : "",
			     names[2] != NULL ? names[2] : "",
			     names[2] != NULL ? "\"" : "", quote(s, got));
}

/* Settings for topic_create: the request's fields over topic_defaults. */
static int create_settings(struct sbd_broker *b, const cJSON *req,
			   struct sb_config_topic *s, struct sb_msg_error *err)
{
	const struct sb_config_topic *d = &b->cfg.topic_defaults;
	const char *mode, *overflow;
	int64_t linger, max_stall;
	uint64_t msg_dflt;

	*s = *d; /* shares the defaults' access rules; nothing is freed */
	if (get_size(req, "capacity", d->capacity, &s->capacity, err) < 0) {
		return -EINVAL;
	}
	/* An unset max_message follows a smaller capacity down. */
	msg_dflt =
	    d->max_message < s->capacity / 4 ? d->max_message : s->capacity / 4;
	if (get_size(req, "max_message", msg_dflt, &s->max_message, err) < 0 ||
	    get_choice(req, "mode", sb_mode_names, &mode, err) < 0 ||
	    get_choice(req, "overflow", sb_overflow_names, &overflow, err) <
		0 ||
	    sb_msg_get_bool_opt(req, "persistent", false, &s->persistent, err) <
		0 ||
	    sb_msg_get_bool_opt(req, "metadata", d->metadata, &s->metadata,
				err) < 0 ||
	    sb_msg_get_int_opt(req, "linger_ms", 0, SB_CONFIG_LINGER_MS_MAX,
			       d->linger_ms, &linger, err) < 0 ||
	    sb_msg_get_int_opt(req, "max_stall_ms", 0,
			       SB_CONFIG_MAX_STALL_MS_MAX, d->max_stall_ms,
			       &max_stall, err) < 0) {
		return -EINVAL;
	}
	s->mode = mode != NULL ? sb_mode_parse(mode) : d->mode;
	s->overflow =
	    overflow != NULL ? sb_overflow_parse(overflow) : d->overflow;
	s->linger_ms = (uint32_t)linger;
	s->max_stall_ms = (uint32_t)max_stall;
	return 0;
}

static int op_topic_create(struct sbd_client *c, const cJSON *req,
			   struct sbd_reply *rep, struct sb_msg_error *err)
{
	struct sb_config_topic s;
	struct sbd_topic *t;
	const char *name;

	if (get_topic(req, &name, err) < 0 ||
	    create_settings(c->broker, req, &s, err) < 0 ||
	    sbd_topic_check_rule(c, name, "admin", err) < 0 ||
	    sbd_topic_create(c->broker, name, &s, true, &t, err) < 0) {
		return err->code;
	}
	rep->result = result_with("topic", sbd_topic_info(t));
	return rep->result != NULL ? 0 : oom(err);
}

/* The named topic, or -ENOENT. */
static int find_topic(struct sbd_client *c, const cJSON *req,
		      struct sbd_topic **t, struct sb_msg_error *err)
{
	const char *name;

	if (get_topic(req, &name, err) < 0) {
		return -EINVAL;
	}
	*t = sbd_topic_find(c->broker, name);
	if (*t == NULL) {
		return sb_msg_errorf(err, -ENOENT, "no such topic \"%s\"",
				     name);
	}
	return 0;
}

static int op_topic_delete(struct sbd_client *c, const cJSON *req,
			   struct sbd_reply *rep, struct sb_msg_error *err)
{
	struct sbd_topic *t;

	(void)rep;
	if (find_topic(c, req, &t, err) < 0 ||
	    sbd_topic_check_rule(c, t->name, "admin", err) < 0) {
		return err->code;
	}
	sbd_topic_unname(t);
	return 0;
}

/* ---- paging (protocol.md, "Paging") ------------------------------------ */

/* The optional "limit": most entries in one page. */
static int get_limit(const cJSON *req, int64_t *limit, struct sb_msg_error *err)
{
	return sb_msg_get_int_opt(req, "limit", 1, SB_MSG_INT_MAX,
				  SB_MSG_INT_MAX, limit, err);
}

/* A page that took nothing though entries were left: one entry alone
 * would not fit in a frame. Returns 0 when the page is good. */
static int check_progress(const struct sbd_page *p, struct sb_msg_error *err)
{
	if (p->taken == 0 && p->more) {
		return sb_msg_errorf(err, -EMSGSIZE,
				     "one entry is larger than "
				     "limits.max_frame allows");
	}
	return 0;
}

static int by_topic_name(const void *a, const void *b)
{
	const struct sbd_topic *x = *(const struct sbd_topic *const *)a;
	const struct sbd_topic *y = *(const struct sbd_topic *const *)b;

	return strcmp(x->name, y->name);
}

/* The named topics sorted by name, in a malloc'd array of *n (NULL and 0
 * when there are none), or -ENOMEM. */
static int sorted_topics(struct sbd_broker *b, struct sbd_topic ***out,
			 size_t *n)
{
	size_t count = 0, i = 0;

	for (struct sbd_topic *t = b->topics; t != NULL; t = t->next) {
		count++;
	}
	*out = NULL;
	*n = 0;
	if (count == 0) {
		return 0;
	}
	*out = malloc(count * sizeof(**out));
	if (*out == NULL) {
		return -ENOMEM;
	}
	for (struct sbd_topic *t = b->topics; t != NULL; t = t->next) {
		(*out)[i++] = t;
	}
	qsort(*out, count, sizeof(**out), by_topic_name);
	*n = count;
	return 0;
}

/* The optional "after" of topic_list: a valid topic name, which need not
 * exist (it may have been removed since the page that named it). */
static int get_after_name(const cJSON *req, const char **after,
			  struct sb_msg_error *err)
{
	char why[128];

	if (sb_msg_get_string_opt(req, "after", NULL, after, err) < 0) {
		return -EINVAL;
	}
	if (*after != NULL && sb_topic_name_check(*after, why, sizeof(why))) {
		return sb_msg_errorf(err, -EINVAL,
				     "field \"after\": invalid topic name: %s",
				     why);
	}
	return 0;
}

/* Fills `arr` with the infos of the sorted topics after `after` that fit
 * in `page`; *last is the last one listed. Returns 0 or -ENOMEM. */
static int list_page(struct sbd_topic **v, size_t n, const char *after,
		     cJSON *arr, struct sbd_page *page, const char **last)
{
	for (size_t i = 0; i < n; i++) {
		cJSON *info;

		if (after != NULL && strcmp(v[i]->name, after) <= 0) {
			continue;
		}
		info = sbd_topic_info(v[i]);
		if (info != NULL &&
		    !sbd_page_fits(page, info, strlen(v[i]->name) + 2)) {
			cJSON_Delete(info);
			return 0;
		}
		if (info == NULL || !cJSON_AddItemToArray(arr, info)) {
			cJSON_Delete(info);
			return -ENOMEM;
		}
		*last = v[i]->name;
	}
	return 0;
}

/* The reply's result: the page's topics, "more" and "next". NULL when out
 * of memory. */
static cJSON *list_result(struct sbd_topic **sorted, size_t n,
			  const char *after, struct sbd_page *page)
{
	const char *last = NULL;
	cJSON *arr = cJSON_CreateArray();
	cJSON *res;

	if (arr == NULL || list_page(sorted, n, after, arr, page, &last) < 0) {
		cJSON_Delete(arr);
		return NULL;
	}
	res = result_with("topics", arr);
	if (res == NULL || !cJSON_AddBoolToObject(res, "more", page->more) ||
	    (last != NULL && page->more &&
	     !cJSON_AddStringToObject(res, "next", last))) {
		cJSON_Delete(res);
		return NULL;
	}
	return res;
}

static int op_topic_list(struct sbd_client *c, const cJSON *req,
			 struct sbd_reply *rep, struct sb_msg_error *err)
{
	struct sbd_topic **sorted;
	struct sbd_page page;
	const char *after;
	int64_t limit;
	size_t n;

	if (get_after_name(req, &after, err) < 0 ||
	    get_limit(req, &limit, err) < 0) {
		return -EINVAL;
	}
	if (sorted_topics(c->broker, &sorted, &n) < 0) {
		return oom(err);
	}
	sbd_page_init(&page, c->broker->cfg.limits.max_frame, 0, limit);
	rep->result = list_result(sorted, n, after, &page);
	free(sorted);
	if (rep->result == NULL) {
		return oom(err);
	}
	return check_progress(&page, err);
}

/* topic_stat's optional "after": the "next" of the previous page,
 * {"subscriber": SLOT} or {"publisher": CLIENT}. */
static int get_stat_cursor(const cJSON *req, struct sbd_stat_cursor *from,
			   struct sb_msg_error *err)
{
	static const char *const fields[] = {"subscriber", "publisher", NULL};
	const cJSON *after;
	int64_t sub, pub;

	from->publisher = false;
	from->id = -1;
	if (sb_msg_get_object_opt(req, "after", &after, err) < 0) {
		return -EINVAL;
	}
	if (after == NULL) {
		return 0;
	}
	if (sb_msg_check_fields(after, fields, err) < 0 ||
	    sb_msg_get_int_opt(after, "subscriber", 0, INT32_MAX, -1, &sub,
			       err) < 0 ||
	    sb_msg_get_int_opt(after, "publisher", 0, UINT32_MAX, -1, &pub,
			       err) < 0) {
		/* Name the outer field too: "field \"after\": field ..." */
		char inner[sizeof(err->message)];

		snprintf(inner, sizeof(inner), "%s", err->message);
		return sb_msg_errorf(err, -EINVAL, "field \"after\": %s",
				     inner);
	}
	if ((sub < 0) == (pub < 0)) {
		return sb_msg_errorf(err, -EINVAL,
				     "field \"after\" must have one of "
				     "\"subscriber\" and \"publisher\"");
	}
	from->publisher = pub >= 0;
	from->id = pub >= 0 ? pub : sub;
	return 0;
}

/*
 * Adds a pattern whose topics' creation and removal the client is told of
 * from now on (events: docs/protocol.md). The topics that match already
 * follow the reply as "topics" events (client.c), in the same turn of the
 * loop, so that none can be created or removed between them unseen.
 */
static int op_topic_watch(struct sbd_client *c, const cJSON *req,
			  struct sbd_reply *rep, struct sb_msg_error *err)
{
	char why[128], got[QUOTE_MAX];
	const char *pattern;
	char *copy;

	if (sb_msg_get_string(req, "pattern", &pattern, err) < 0) {
		return -EINVAL;
	}
	if (sb_topic_pattern_check(pattern, why, sizeof(why)) < 0) {
		return sb_msg_errorf(err, -EINVAL, "field \"pattern\": %s %s",
				     quote(pattern, got), why);
	}
	if (c->n_watches == SBD_MAX_WATCHES) {
		return sb_msg_errorf(err, -ENOSPC,
				     "a connection watches %d patterns at "
				     "most",
				     SBD_MAX_WATCHES);
	}
	copy = strdup(pattern);
	rep->result = result_with("pattern", cJSON_CreateString(pattern));
	if (copy == NULL || rep->result == NULL) {
		free(copy);
		return oom(err);
	}
	c->watches[c->n_watches++] = copy;
	rep->list_watch = copy;
	return 0;
}

static int op_topic_stat(struct sbd_client *c, const cJSON *req,
			 struct sbd_reply *rep, struct sb_msg_error *err)
{
	struct sbd_stat_cursor from;
	struct sbd_topic *t;
	struct sbd_page page;
	int64_t limit;

	if (get_stat_cursor(req, &from, err) < 0 ||
	    get_limit(req, &limit, err) < 0 ||
	    find_topic(c, req, &t, err) < 0) {
		return err->code;
	}
	rep->result = sbd_topic_stat(t, from, limit,
				     c->broker->cfg.limits.max_frame, &page);
	if (rep->result == NULL) {
		return oom(err);
	}
	return check_progress(&page, err);
}

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

static cJSON *open_result(const struct sbd_handle *h, int nfds)
{
	const struct sbd_topic *t = h->topic;
	cJSON *r = result_with("topic", sbd_topic_info(t));

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

	if (get_topic(req, &name, err) < 0 ||
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
	rep->result = h != NULL ? open_result(h, sub ? 3 : 2) : NULL;
	if (rep->result == NULL) {
		if (h != NULL) {
			sbd_handle_close(&c->handles, h->id);
		} else if (t->refs == 0 && !t->is_explicit) {
			sbd_topic_unname(t);
		}
		return oom(err);
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

static int op_pub_open(struct sbd_client *c, const cJSON *req,
		       struct sbd_reply *rep, struct sb_msg_error *err)
{
	return open_handle(c, req, false, rep, err);
}

static int op_sub_open(struct sbd_client *c, const cJSON *req,
		       struct sbd_reply *rep, struct sb_msg_error *err)
{
	static const char *const starts[] = {"latest", "earliest", NULL};
	const char *start;

	/* The client takes its slot itself; `start` is checked here so that
	 * a typo fails before anything is granted. */
	if (get_choice(req, "start", starts, &start, err) < 0) {
		return -EINVAL;
	}
	return open_handle(c, req, true, rep, err);
}

/* The settings a topic_adopt claims (with `nfds` descriptors); the ring
 * itself must agree. */
static int adopt_settings(const cJSON *req, int nfds, struct sbd_adopt *a,
			  struct sb_msg_error *err)
{
	static const char *const access[] = {"subscribe", "publish", NULL};
	int64_t capacity, max_message, fds;
	const char *mode, *overflow, *acc;

	if (get_choice(req, "access", access, &acc, err) < 0 ||
	    get_choice(req, "mode", sb_mode_names, &mode, err) < 0 ||
	    get_choice(req, "overflow", sb_overflow_names, &overflow, err) <
		0 ||
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
static int op_topic_adopt(struct sbd_client *c, const cJSON *req,
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
	r = get_topic(req, &a.name, err);
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
		r = oom(err);
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
	rep->result = open_result(h, 0);
	if (rep->result == NULL ||
	    !cJSON_AddStringToObject(rep->result, "adopted", how)) {
		sbd_handle_close(&c->handles, h->id);
		return oom(err);
	}
	sbd_debug("client %" PRIu32 ": topic \"%s\" %s, %s handle %" PRIu32,
		  c->id, a.name, how, a.writable ? "pub" : "sub", h->id);
	return 0;
}

/*
 * slots: a publisher asks for the topic's slot segments, read-only, after
 * the ring's slot generation told it the set changed (docs/protocol.md). One
 * page of at most SBD_SLOTS_PAGE segments from index "from" on.
 */
static int op_slots(struct sbd_client *c, const cJSON *req,
		    struct sbd_reply *rep, struct sb_msg_error *err)
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
	return rep->result != NULL ? 0 : oom(err);
}

/*
 * sub_evict: an admin of the topic removes the subscriber in one slot (a
 * reader that stopped reading holds block-mode writers back). The slot is
 * freed in the ring and the reader's next receive fails with EIDRM; its
 * handle here stays until its client closes it.
 */
static int op_sub_evict(struct sbd_client *c, const cJSON *req,
			struct sbd_reply *rep, struct sb_msg_error *err)
{
	struct sb_ring_slot_view v;
	struct sbd_topic *t;
	char why[160];
	uint32_t client;
	int64_t slot;

	if (sb_msg_get_int(req, "slot", 0, UINT32_MAX, &slot, err) < 0 ||
	    find_topic(c, req, &t, err) < 0 ||
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
		return oom(err);
	}
	return 0;
}

static int op_close(struct sbd_client *c, const cJSON *req,
		    struct sbd_reply *rep, struct sb_msg_error *err)
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

/*
 * Only close may come as a notice: its reply carries nothing a client needs
 * (the one error, an unknown handle, is a client bug), and it is half of
 * every topic open+close. Any other op without an id still gets the
 * "missing field \"id\"" error, as before notices existed.
 */
static const struct op OPS[] = {
    {"hello", op_hello, F_HELLO, false},
    {"topic_create", op_topic_create, F_CREATE, false},
    {"topic_delete", op_topic_delete, F_TOPIC, false},
    {"topic_list", op_topic_list, F_LIST, false},
    {"topic_stat", op_topic_stat, F_STAT, false},
    {"topic_watch", op_topic_watch, F_WATCH, false},
    {"pub_open", op_pub_open, F_TOPIC, false},
    {"sub_open", op_sub_open, F_SUB, false},
    {"close", op_close, F_CLOSE, true},
    {"topic_adopt", op_topic_adopt, F_ADOPT, false},
    {"sub_evict", op_sub_evict, F_EVICT, false},
    {"slots", op_slots, F_SLOTS, false},
    {"ping", op_ping, F_NONE, false},
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
	char got[QUOTE_MAX];

	if (op == NULL) {
		return sb_msg_errorf(err, -ENOTSUP, "unknown op %s",
				     quote(req->op, got));
	}
	if (!c->hello_done && op->fn != op_hello) {
		return sb_msg_errorf(err, -EPROTO,
				     "the first request must be \"hello\" "
				     "(got %s)",
				     quote(req->op, got));
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
	char got[QUOTE_MAX];

	rep->no_reply = true;
	if (run(c, req, rep, &err) == 0) {
		sbd_debug("client %" PRIu32 ": notice %s done", c->id,
			  quote(req->op, got));
	} else if (!c->notice_warned) {
		c->notice_warned = true;
		sbd_warn("client %" PRIu32 " (pid %ld): notice %s failed, and "
			 "notices get no reply: %s (further failed notices "
			 "of this client are logged at debug level)",
			 c->id, (long)c->cred.pid, quote(req->op, got),
			 err.message);
	} else {
		sbd_debug("client %" PRIu32 ": notice %s failed: %s", c->id,
			  quote(req->op, got), err.message);
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
	char got[QUOTE_MAX];
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
			  req->op != NULL ? quote(req->op, got) : "request",
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
