/*
 * ops_fields.c - what the ops' handlers share to read a request and to
 * answer it: the "topic" field (checked with the one topic name rule) and
 * the topic it names, a field that must be one of a few names, a peer's
 * string quoted for an error message, the out-of-memory error and a result
 * object of one item.
 */
#include "daemon/ops_internal.h"

#include <errno.h>
#include <string.h>

#include "wire/topic_name.h"

const char *sbd_ops_quote(const char *s, char buf[SBD_OPS_QUOTE_MAX])
{
	return sb_msg_quote(s, 64, buf, SBD_OPS_QUOTE_MAX);
}

int sbd_ops_oom(struct sb_msg_error *err)
{
	return sb_msg_errorf(err, -ENOMEM, "out of memory");
}

cJSON *sbd_ops_result_with(const char *name, cJSON *item)
{
	cJSON *o = item != NULL ? cJSON_CreateObject() : NULL;

	if (o == NULL || !cJSON_AddItemToObject(o, name, item)) {
		cJSON_Delete(o);
		cJSON_Delete(item);
		return NULL;
	}
	return o;
}

int sbd_ops_get_topic(const cJSON *req, const char **name,
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

int sbd_ops_get_choice(const cJSON *req, const char *field,
		       const char *const *names, const char **out,
		       struct sb_msg_error *err)
{
	const char *s = NULL;
	char got[SBD_OPS_QUOTE_MAX];

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
	return sb_msg_errorf(
	    err, -EINVAL,
	    "field \"%s\" must be one of \"%s\", \"%s\"%s%s%s "
	    "(got %s)",
	    field, names[0], names[1], names[2] != NULL ? ", \"" : "",
	    names[2] != NULL ? names[2] : "", names[2] != NULL ? "\"" : "",
	    sbd_ops_quote(s, got));
}

int sbd_ops_find_topic(struct sbd_client *c, const cJSON *req,
		       struct sbd_topic **t, struct sb_msg_error *err)
{
	const char *name;

	if (sbd_ops_get_topic(req, &name, err) < 0) {
		return -EINVAL;
	}
	*t = sbd_topic_find(c->broker, name);
	if (*t == NULL) {
		return sb_msg_errorf(err, -ENOENT, "no such topic \"%s\"",
				     name);
	}
	return 0;
}
