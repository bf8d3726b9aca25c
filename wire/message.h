/*
 * message.h - the control protocol's request/reply envelope over cJSON, the
 * table that carries error codes as errno names, and typed field getters
 * that name the offending field, so that every op handler in the broker and
 * every reply reader in the client validates the same way. Prefix: sb_msg_.
 *
 * Request: {"op": "topic_create", "id": 7, ...op-specific fields...}
 * Reply:   {"id": 7, "result": {...}}
 *      or: {"id": 7, "error": {"code": "ENOENT", "message": "no such topic"}}
 * An error reply to a request whose id could not be read carries "id": null.
 * Notice:  {"op": "close", "handle": 3}: a request without an "id" member,
 *          which gets no reply at all; the broker says in its hello reply
 *          which ops it takes this way (docs/protocol.md, "Notices").
 *
 * Every function is reentrant; threads may parse concurrently (cJSON also
 * records a failed parse in a global of its own, which nothing here reads).
 */
#ifndef SB_WIRE_MESSAGE_H
#define SB_WIRE_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cJSON.h>

/* The control protocol's version, said in hello by both sides
 * (docs/protocol.md). */
#define SB_MSG_PROTOCOL_VERSION 1

/* Largest request id: the largest integer a JSON number (an IEEE double in
 * most peers) holds exactly, 2^53 - 1. */
#define SB_MSG_ID_MAX 9007199254740991LL

/* Integer fields are limited to +-SB_MSG_INT_MAX for the same reason. */
#define SB_MSG_INT_MAX 9007199254740991LL

/* Size of the message buffer in struct sb_msg_error, NUL included. */
#define SB_MSG_ERROR_MAX 256

/* What went wrong, ready to travel in an error reply. */
struct sb_msg_error {
	int code; /* negative errno */
	char message[SB_MSG_ERROR_MAX];
};

/* A parsed request. `op` points into `root`, which the request owns. */
struct sb_msg_request {
	cJSON *root;	/* the whole request object, or NULL after failure */
	const char *op; /* non-empty */
	uint64_t id;	/* valid if has_id */
	bool has_id;	/* the id was readable, even if the request was not */
	bool notice;	/* parsed, with no "id" member: wants no reply */
};

/* A parsed reply; `result` and `message` point into `root`. */
struct sb_msg_reply {
	cJSON *root;
	uint64_t id;	     /* valid if has_id */
	bool has_id;	     /* false: the peer sent "id": null */
	const cJSON *result; /* the result object, or NULL on an error reply */
	int code;	     /* 0, or the error as a negative errno */
	const char *message; /* the error's message, or NULL */
};

/*
 * Fills `err` (which may be NULL) with `code` and a printf-style message,
 * truncated to fit. Returns `code`, so handlers can `return
 * sb_msg_errorf(err, -EINVAL, ...)`.
 */
__attribute__((format(printf, 3, 4))) int
sb_msg_errorf(struct sb_msg_error *err, int code, const char *fmt, ...);

/*
 * The errno name of a negative errno ("ENOENT" for -ENOENT), or NULL if the
 * code is not in the protocol's table.
 */
const char *sb_msg_errno_name(int err);

/*
 * The negative errno for an errno name from a peer, or -EPROTO for a name
 * that is NULL or not in the table (a peer cannot make us return a code we
 * do not know).
 */
int sb_msg_errno_from_name(const char *name);

/*
 * Parses a request payload of `len` bytes (not NUL-terminated). The text
 * must be valid UTF-8 JSON holding one object, with no raw control
 * characters and no "\u0000" in strings (so every string is a faithful C
 * string), and nothing but whitespace after the object.
 *
 * Returns 0 with *req filled (free it with sb_msg_request_fini()), or
 * -EPROTO with err->message saying what was wrong: "invalid JSON at byte 17"
 * (the 0-based offset where cJSON gave up), "invalid UTF-8 at byte 3", "request
 * must be a JSON object", "missing field \"id\"", "field \"id\" must be an
 * integer (got string)", "field \"id\" must be from 0 to 9007199254740991 (got
 * -1)", "missing field \"op\"", "field \"op\" must be a non-empty string".
 *
 * An object with a valid "op" and no "id" member at all is a notice: it
 * parses (0) with req->notice set and req->has_id false, and the caller
 * decides whether that op may come without an id. Without a valid "op" a
 * missing id is still "missing field \"id\"", as is any "id" present but
 * not an integer in range ("id": null included): a notice is never a
 * request with a broken id.
 * cJSON running out of memory looks like invalid JSON (it does not tell
 * the two apart) and is reported as such. On failure req->root is NULL and
 * req->has_id/req->id are set whenever the id was readable, so the reply can
 * echo it.
 */
int sb_msg_parse_request(const char *payload, size_t len,
			 struct sb_msg_request *req, struct sb_msg_error *err);

/* Frees what sb_msg_parse_request() allocated; safe to call twice. */
void sb_msg_request_fini(struct sb_msg_request *req);

/*
 * Adds the integer field `name` to `obj`, printed exactly. cJSON prints a
 * number with 15 significant digits whenever that reads back "equal" within a
 * relative epsilon, which silently rounds integers above 10^15
 * (9007199254740991 would travel as 9.00719925474099e+15); so every integer
 * the protocol sends goes through here as raw decimal digits. Returns the
 * new item, or NULL if out of memory or |v| > SB_MSG_INT_MAX.
 */
cJSON *sb_msg_add_int(cJSON *obj, const char *name, int64_t v);

/*
 * Builds {"op": op, "id": id} for the client to add fields to. Returns NULL
 * if out of memory or if id > SB_MSG_ID_MAX.
 */
cJSON *sb_msg_request_new(const char *op, uint64_t id);

/*
 * Builds {"id": id, "result": result}, taking ownership of `result` (NULL
 * means an empty object). Returns NULL if out of memory (result is freed
 * then too).
 */
cJSON *sb_msg_reply_result(uint64_t id, cJSON *result);

/*
 * Builds {"id": id or null, "error": {"code": NAME, "message": message}}.
 * `code` is a negative errno; a code missing from the table travels as
 * "EIO". Returns NULL if out of memory.
 */
cJSON *sb_msg_reply_error(bool has_id, uint64_t id, int code,
			  const char *message);

/*
 * Serialises `msg` compactly and frames it (frame.h) into a malloc'd buffer
 * stored in *frame. Returns the frame size, or -EMSGSIZE (text longer than
 * max_payload) or -ENOMEM; *frame is NULL on failure.
 */
ssize_t sb_msg_to_frame(const cJSON *msg, size_t max_payload, char **frame);

/*
 * Parses a reply payload (client side), with the same text rules as
 * requests. Returns 0 with *rep filled when the reply is well formed, error
 * or not: rep->code is 0 and rep->result set on success; otherwise rep->code
 * is the negative errno named by the peer (-EPROTO if the name is unknown)
 * and rep->message its message. Returns -EPROTO with err->message set if the
 * reply is malformed ("reply must have exactly one of \"result\" and
 * \"error\"", "field \"code\" must be a string (got number)", ...); rep->root
 * is then NULL. Free with sb_msg_reply_fini().
 */
int sb_msg_parse_reply(const char *payload, size_t len,
		       struct sb_msg_reply *rep, struct sb_msg_error *err);

/* Frees what sb_msg_parse_reply() allocated; safe to call twice. */
void sb_msg_reply_fini(struct sb_msg_reply *rep);

/*
 * Typed field getters. Each looks `field` up in the object `obj`
 * (case-sensitively) and on any problem returns -EINVAL with err->message
 * naming the field: `missing field "name"`, `field "name" must be a string
 * (got number)`, `field "count" must be an integer (got 1.5)`, `field
 * "count" must be from 1 to 64 (got 100)`, `field "persistent" must be true
 * or false (got string)`, `field "config" must be an object (got array)`.
 * The _opt variants store `dflt` (or NULL) when the field is absent; a
 * present null is a type error, not an absent field. Strings and objects
 * point into `obj`. For the integer getters, min and max must lie within
 * +-SB_MSG_INT_MAX. `err` may be NULL.
 */
int sb_msg_get_string(const cJSON *obj, const char *field, const char **out,
		      struct sb_msg_error *err);
int sb_msg_get_string_opt(const cJSON *obj, const char *field, const char *dflt,
			  const char **out, struct sb_msg_error *err);
int sb_msg_get_int(const cJSON *obj, const char *field, int64_t min,
		   int64_t max, int64_t *out, struct sb_msg_error *err);
int sb_msg_get_int_opt(const cJSON *obj, const char *field, int64_t min,
		       int64_t max, int64_t dflt, int64_t *out,
		       struct sb_msg_error *err);
int sb_msg_get_bool(const cJSON *obj, const char *field, bool *out,
		    struct sb_msg_error *err);
int sb_msg_get_bool_opt(const cJSON *obj, const char *field, bool dflt,
			bool *out, struct sb_msg_error *err);
int sb_msg_get_object(const cJSON *obj, const char *field, const cJSON **out,
		      struct sb_msg_error *err);
int sb_msg_get_object_opt(const cJSON *obj, const char *field,
			  const cJSON **out, struct sb_msg_error *err);

/*
 * Refuses fields of `obj` not in `known` (a NULL-terminated list) and fields
 * given twice: -EINVAL with `unknown field "x"` or `duplicate field "x"`.
 * An op handler calls it with its own fields plus "op" and "id"; `known`
 * holds at most 64 names.
 */
int sb_msg_check_fields(const cJSON *obj, const char *const *known,
			struct sb_msg_error *err);

/*
 * Writes `s` into `buf` (buflen bytes, at least 6) for an error message as a
 * JSON string literal, quotes included: `"`, backslash and control
 * characters escaped ("\n", "\u001b"), so a message stays one line of
 * printable text whatever a peer or a file put in the string. At most `max`
 * bytes of `s` are shown, never cutting a UTF-8 sequence; `...` follows the
 * closing quote when something was left out. Returns `buf`.
 */
const char *sb_msg_quote(const char *s, size_t max, char *buf, size_t buflen);

/* Short name of a JSON value's type for messages: "string", "number", ... */
const char *sb_msg_type_name(const cJSON *item);

/*
 * Checks that `text` (`len` bytes) is text the protocol accepts before it
 * reaches cJSON: valid UTF-8 (no overlong forms, surrogates or code points
 * above U+10FFFF), no control characters other than tab, LF and CR outside
 * strings and none inside them, and no "\u0000" escape. Returns 0, or
 * -EPROTO with *bad_at set to the offending 0-based byte offset and *what to
 * "UTF-8" or "JSON". Exposed for the configuration parser.
 */
int sb_msg_check_text(const char *text, size_t len, size_t *bad_at,
		      const char **what);

#endif
