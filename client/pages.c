/*
 * pages.c - a listing request (topic_list, topic_stat) sent again for
 * each page until the broker has sent them all, its arrays joined into one
 * reply (docs/protocol.md, "Paging").
 */
#include <errno.h>

#include "client/request.h"

/* The page's array `name`, moved onto the end of the same array of
 * `into`. Returns how many entries moved, or -EPROTO. */
static int append_array(cJSON *into, cJSON *page, const char *name)
{
	cJSON *to = cJSON_GetObjectItemCaseSensitive(into, name);
	cJSON *from = cJSON_GetObjectItemCaseSensitive(page, name);
	cJSON *it;
	int n = 0;

	if (!cJSON_IsArray(to) || !cJSON_IsArray(from)) {
		return -EPROTO;
	}
	while ((it = cJSON_DetachItemFromArray(from, 0)) != NULL) {
		cJSON_AddItemToArray(to, it);
		n++;
	}
	return n;
}

/* The reply's result, which this file changes (msg.result is the same
 * object, read-only). */
static cJSON *result_of(struct sb_client_reply *rep)
{
	return cJSON_GetObjectItemCaseSensitive(rep->msg.root, "result");
}

/* Moves `name` of `page` into `result` in place of its own (removed when
 * the page has none). */
static void take_field(cJSON *result, cJSON *page, const char *name)
{
	cJSON *item = cJSON_DetachItemFromObjectCaseSensitive(page, name);

	cJSON_DeleteItemFromObjectCaseSensitive(result, name);
	if (item != NULL) {
		cJSON_AddItemToObject(result, name, item);
	}
}

/* The request for the page after the one `result` ends: `tmpl` with its
 * "after" set to the result's "next". NULL with *r set on failure. */
static cJSON *next_request(const cJSON *tmpl, const cJSON *result, int *r)
{
	const cJSON *next = cJSON_GetObjectItemCaseSensitive(result, "next");
	cJSON *req, *after;

	if (!cJSON_IsString(next) && !cJSON_IsNumber(next) &&
	    !cJSON_IsObject(next)) {
		*r = -EPROTO; /* "more" without a cursor */
		return NULL;
	}
	req = cJSON_Duplicate(tmpl, 1);
	after = cJSON_Duplicate(next, 1);
	if (req == NULL || after == NULL) {
		cJSON_Delete(req);
		cJSON_Delete(after);
		*r = -ENOMEM;
		return NULL;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(req, "after");
	cJSON_AddItemToObject(req, "after", after);
	return req;
}

/* Fetches the page after the one `rep` ends with, and joins it in. */
static int fetch_next(shmbus *bus, const char *op, const cJSON *tmpl,
		      const char *const *arrays, struct sb_client_reply *rep)
{
	struct sb_client_reply page;
	cJSON *result = result_of(rep);
	cJSON *req;
	int r = 0;

	req = next_request(tmpl, result, &r);
	if (req == NULL) {
		return r;
	}
	r = sb_client_call(bus, op, req, &page);
	for (int i = 0; r >= 0 && arrays[i] != NULL; i++) {
		int n = append_array(result, result_of(&page), arrays[i]);

		r = n < 0 ? n : r + n;
	}
	/* A page that says "more" but lists nothing would loop. */
	r = r == 0 ? -EPROTO : r;
	if (r > 0) {
		take_field(result, result_of(&page), "more");
		take_field(result, result_of(&page), "next");
		r = 0;
	}
	sb_client_reply_fini(&page);
	return r;
}

int sb_client_call_all(shmbus *bus, const char *op, cJSON *req,
		       const char *const *arrays, struct sb_client_reply *rep)
{
	cJSON *tmpl = req != NULL ? cJSON_Duplicate(req, 1) : NULL;
	int r;

	if (tmpl == NULL) {
		sb_client_reply_init(rep);
		cJSON_Delete(req);
		return -ENOMEM;
	}
	r = sb_client_call(bus, op, req, rep);
	while (r == 0 && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
			     rep->msg.result, "more"))) {
		r = fetch_next(bus, op, tmpl, arrays, rep);
	}
	if (r == 0) {
		cJSON_DeleteItemFromObjectCaseSensitive(result_of(rep), "next");
	}
	cJSON_Delete(tmpl);
	return r;
}
