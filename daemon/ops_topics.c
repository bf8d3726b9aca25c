/*
 * ops_topics.c - the ops on the topic registry: topic_create (its fields
 * over the config's topic_defaults), topic_delete, topic_list and
 * topic_stat (each reply one page within max_frame: protocol.md, "Paging"),
 * and topic_watch (a pattern whose topics' creation and removal the client
 * is told of).
 */
#include "daemon/ops_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/names.h"
#include "wire/size.h"
#include "wire/topic_name.h"

/* A size field: an integer, or a string such as "64KiB". Absent or 0:
 * `dflt`. */
static int get_size(const cJSON *req, const char *field, uint64_t dflt,
		    uint64_t *out, struct sb_msg_error *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, field);
	const char *why = NULL;
	char got[SBD_OPS_QUOTE_MAX];
	int64_t n;

	*out = dflt;
	if (cJSON_IsString(v)) {
		if (sb_size_parse(v->valuestring, out, &why) < 0) {
			return sb_msg_errorf(
			    err, -EINVAL, "field \"%s\": %s (got %s)", field,
			    why, sbd_ops_quote(v->valuestring, got));
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
	    sbd_ops_get_choice(req, "mode", sb_mode_names, &mode, err) < 0 ||
	    sbd_ops_get_choice(req, "overflow", sb_overflow_names, &overflow,
			       err) < 0 ||
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

int sbd_ops_topic_create(struct sbd_client *c, const cJSON *req,
			 struct sbd_reply *rep, struct sb_msg_error *err)
{
	struct sb_config_topic s;
	struct sbd_topic *t;
	const char *name;

	if (sbd_ops_get_topic(req, &name, err) < 0 ||
	    create_settings(c->broker, req, &s, err) < 0 ||
	    sbd_topic_check_rule(c, name, "admin", err) < 0 ||
	    sbd_topic_create(c->broker, name, &s, true, &t, err) < 0) {
		return err->code;
	}
	rep->result = sbd_ops_result_with("topic", sbd_topic_info(t));
	return rep->result != NULL ? 0 : sbd_ops_oom(err);
}

int sbd_ops_topic_delete(struct sbd_client *c, const cJSON *req,
			 struct sbd_reply *rep, struct sb_msg_error *err)
{
	struct sbd_topic *t;

	(void)rep;
	if (sbd_ops_find_topic(c, req, &t, err) < 0 ||
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
	res = sbd_ops_result_with("topics", arr);
	if (res == NULL || !cJSON_AddBoolToObject(res, "more", page->more) ||
	    (last != NULL && page->more &&
	     !cJSON_AddStringToObject(res, "next", last))) {
		cJSON_Delete(res);
		return NULL;
	}
	return res;
}

int sbd_ops_topic_list(struct sbd_client *c, const cJSON *req,
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
		return sbd_ops_oom(err);
	}
	sbd_page_init(&page, c->broker->cfg.limits.max_frame, 0, limit);
	rep->result = list_result(sorted, n, after, &page);
	free(sorted);
	if (rep->result == NULL) {
		return sbd_ops_oom(err);
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

int sbd_ops_topic_stat(struct sbd_client *c, const cJSON *req,
		       struct sbd_reply *rep, struct sb_msg_error *err)
{
	struct sbd_stat_cursor from;
	struct sbd_topic *t;
	struct sbd_page page;
	int64_t limit;

	if (get_stat_cursor(req, &from, err) < 0 ||
	    get_limit(req, &limit, err) < 0 ||
	    sbd_ops_find_topic(c, req, &t, err) < 0) {
		return err->code;
	}
	rep->result = sbd_topic_stat(t, from, limit,
				     c->broker->cfg.limits.max_frame, &page);
	if (rep->result == NULL) {
		return sbd_ops_oom(err);
	}
	return check_progress(&page, err);
}

/*
 * Adds a pattern whose topics' creation and removal the client is told of
 * from now on (events: docs/protocol.md). The topics that match already
 * follow the reply as "topics" events (client.c), in the same turn of the
 * loop, so that none can be created or removed between them unseen.
 */
int sbd_ops_topic_watch(struct sbd_client *c, const cJSON *req,
			struct sbd_reply *rep, struct sb_msg_error *err)
{
	char why[128], got[SBD_OPS_QUOTE_MAX];
	const char *pattern;
	char *copy;

	if (sb_msg_get_string(req, "pattern", &pattern, err) < 0) {
		return -EINVAL;
	}
	if (sb_topic_pattern_check(pattern, why, sizeof(why)) < 0) {
		return sb_msg_errorf(err, -EINVAL, "field \"pattern\": %s %s",
				     sbd_ops_quote(pattern, got), why);
	}
	if (c->n_watches == SBD_MAX_WATCHES) {
		return sb_msg_errorf(err, -ENOSPC,
				     "a connection watches %d patterns at "
				     "most",
				     SBD_MAX_WATCHES);
	}
	copy = strdup(pattern);
	rep->result =
	    sbd_ops_result_with("pattern", cJSON_CreateString(pattern));
	if (copy == NULL || rep->result == NULL) {
		free(copy);
		return sbd_ops_oom(err);
	}
	c->watches[c->n_watches++] = copy;
	rep->list_watch = copy;
	return 0;
}
