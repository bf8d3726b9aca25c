/*
 * ops_internal.h - what the files of the control protocol's ops share:
 * ops.c (the dispatch, hello and ping) calls the handlers in ops_topics.c,
 * ops_handles.c and ops_adopt.c, and these read the request's common fields
 * and make their errors with ops_fields.c. Prefix: sbd_ops_. Only the ops'
 * files include it; the rest of the broker calls sbd_ops_run() (broker.h).
 */
#ifndef SBD_OPS_INTERNAL_H
#define SBD_OPS_INTERNAL_H

#include "daemon/broker.h"

/*
 * The handlers, one per op (docs/protocol.md), called by ops.c once the
 * envelope, the hello-first rule and the op's fields are checked: 0 with
 * rep->result (and what else the op asks of the connection) filled, or a
 * negative errno with err filled.
 */
/* ops_topics.c */
int sbd_ops_topic_create(struct sbd_client *c, const cJSON *req,
			 struct sbd_reply *rep, struct sb_msg_error *err);
int sbd_ops_topic_delete(struct sbd_client *c, const cJSON *req,
			 struct sbd_reply *rep, struct sb_msg_error *err);
int sbd_ops_topic_list(struct sbd_client *c, const cJSON *req,
		       struct sbd_reply *rep, struct sb_msg_error *err);
int sbd_ops_topic_stat(struct sbd_client *c, const cJSON *req,
		       struct sbd_reply *rep, struct sb_msg_error *err);
int sbd_ops_topic_watch(struct sbd_client *c, const cJSON *req,
			struct sbd_reply *rep, struct sb_msg_error *err);
/* ops_handles.c */
int sbd_ops_pub_open(struct sbd_client *c, const cJSON *req,
		     struct sbd_reply *rep, struct sb_msg_error *err);
int sbd_ops_sub_open(struct sbd_client *c, const cJSON *req,
		     struct sbd_reply *rep, struct sb_msg_error *err);
int sbd_ops_close(struct sbd_client *c, const cJSON *req, struct sbd_reply *rep,
		  struct sb_msg_error *err);
int sbd_ops_slots(struct sbd_client *c, const cJSON *req, struct sbd_reply *rep,
		  struct sb_msg_error *err);
int sbd_ops_sub_evict(struct sbd_client *c, const cJSON *req,
		      struct sbd_reply *rep, struct sb_msg_error *err);
/* ops_adopt.c */
int sbd_ops_topic_adopt(struct sbd_client *c, const cJSON *req,
			struct sbd_reply *rep, struct sb_msg_error *err);

/* ops_services.c */
int sbd_ops_serve_open(struct sbd_client *c, const cJSON *req,
		       struct sbd_reply *rep, struct sb_msg_error *err);
int sbd_ops_serve_channel(struct sbd_client *c, const cJSON *req,
			  struct sbd_reply *rep, struct sb_msg_error *err);
int sbd_ops_serve_close(struct sbd_client *c, const cJSON *req,
			struct sbd_reply *rep, struct sb_msg_error *err);
int sbd_ops_request_open(struct sbd_client *c, const cJSON *req,
			 struct sbd_reply *rep, struct sb_msg_error *err);
int sbd_ops_request_channel(struct sbd_client *c, const cJSON *req,
			    struct sbd_reply *rep, struct sb_msg_error *err);
int sbd_ops_request_close(struct sbd_client *c, const cJSON *req,
			  struct sbd_reply *rep, struct sb_msg_error *err);

/* ops_handles.c: the result of an open, pub_open's, sub_open's or
 * topic_adopt's (its topic, its handle, the sizes, `nfds` descriptors), or
 * NULL when out of memory. */
cJSON *sbd_ops_open_result(const struct sbd_handle *h, int nfds);

/* ---- ops_fields.c ---------------------------------------------------- */

/* Room for a peer's string quoted into an error message. */
#define SBD_OPS_QUOTE_MAX 80

/* A peer's string as a quoted, escaped literal (at most 64 bytes of it):
 * error messages are also logged, and must stay one line of text. */
const char *sbd_ops_quote(const char *s, char buf[SBD_OPS_QUOTE_MAX]);
/* Fills err with the out-of-memory error, and returns it (-ENOMEM). */
int sbd_ops_oom(struct sb_msg_error *err);
/* A result object with one item, or NULL (the item is freed then). */
cJSON *sbd_ops_result_with(const char *name, cJSON *item);
/* Reads the "topic" field and checks it with the one topic name rule. */
int sbd_ops_get_topic(const cJSON *req, const char **name,
		      struct sb_msg_error *err);
/* A string field that must be one of two or three names (`names`, NULL
 * ended): *out is the name given, or NULL when the field is absent. */
int sbd_ops_get_choice(const cJSON *req, const char *field,
		       const char *const *names, const char **out,
		       struct sb_msg_error *err);
/* The topic the "topic" field names, or -ENOENT. */
int sbd_ops_find_topic(struct sbd_client *c, const cJSON *req,
		       struct sbd_topic **t, struct sb_msg_error *err);

#endif
