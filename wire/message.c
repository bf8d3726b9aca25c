/*
 * message.c - the control protocol's JSON envelope (see message.h): parsing
 * and building requests and replies, the errno-name table, and the field
 * getters op handlers validate with. Everything from a peer is treated as
 * hostile: text is checked before cJSON sees it, every field is type-checked
 * with cJSON_Is*, and every path frees what it parsed.
 */
#include "wire/message.h"

#include "wire/errors.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/frame.h"

static const struct {
	const char *name;
	int code;
} errno_names[] = {
/* Error codes travel by name, since errno values differ between
 * architectures: the ones wire/errors.h marks for the wire. */
#define SB_MSG_ERRNO_ENTRY(e, on_wire, text) {on_wire ? #e : NULL, -(e)},
    SB_ERRNO_MAP(SB_MSG_ERRNO_ENTRY)
#undef SB_MSG_ERRNO_ENTRY
};

#define N_ERRNO_NAMES (sizeof(errno_names) / sizeof(errno_names[0]))

int sb_msg_errorf(struct sb_msg_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL) {
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return code;
}

const char *sb_msg_errno_name(int err)
{
	for (size_t i = 0; i < N_ERRNO_NAMES; i++) {
		if (errno_names[i].code == err && errno_names[i].name != NULL) {
			return errno_names[i].name;
		}
	}
	return NULL;
}

int sb_msg_errno_from_name(const char *name)
{
	if (name == NULL) {
		return -EPROTO;
	}
	for (size_t i = 0; i < N_ERRNO_NAMES; i++) {
		if (errno_names[i].name != NULL &&
		    strcmp(errno_names[i].name, name) == 0) {
			return errno_names[i].code;
		}
	}
	return -EPROTO;
}

const char *sb_msg_type_name(const cJSON *item)
{
	if (cJSON_IsString(item)) {
		return "string";
	}
	if (cJSON_IsNumber(item)) {
		return "number";
	}
	if (cJSON_IsBool(item)) {
		return "boolean";
	}
	if (cJSON_IsNull(item)) {
		return "null";
	}
	if (cJSON_IsArray(item)) {
		return "array";
	}
	if (cJSON_IsObject(item)) {
		return "object";
	}
	return "invalid";
}

const char *sb_msg_quote(const char *s, size_t max, char *buf, size_t buflen)
{
	/* Kept free for the closing quote, "..." and the NUL. */
	const size_t tail = 5;
	size_t len = strlen(s), i = 0, o = 0;

	if (buflen < tail + 1) {
		if (buflen > 0) {
			buf[0] = '\0';
		}
		return buf;
	}
	buf[o++] = '"';
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];
		const char *out = esc;
		size_t n = 1, outlen;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			outlen = 2;
		} else if (c == '\n' || c == '\r' || c == '\t') {
			esc[0] = '\\';
			esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
			outlen = 2;
		} else if (c < 0x20 || c == 0x7f) {
			outlen =
			    (size_t)snprintf(esc, sizeof(esc), "\\u%04x", c);
		} else {
			/* A whole UTF-8 sequence, or nothing of it. */
			while (i + n < len &&
			       ((unsigned char)s[i + n] & 0xc0) == 0x80) {
				n++;
			}
			out = s + i;
			outlen = n;
		}
		if (i + n > max || o + outlen > buflen - tail) {
			break;
		}
		memcpy(buf + o, out, outlen);
		o += outlen;
		i += n;
	}
	buf[o++] = '"';
	if (i < len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

/* Length of the UTF-8 sequence starting at p[0] (at most `left` bytes
 * available), or 0 if it is not a valid, shortest-form scalar value. */
static size_t utf8_sequence(const unsigned char *p, size_t left)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (p[0] < 0x80) {
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		if (p[0] == 0xe0) {
			lo = 0xa0; /* overlong below U+0800 */
		} else if (p[0] == 0xed) {
			hi = 0x9f; /* UTF-16 surrogates */
		}
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		if (p[0] == 0xf0) {
			lo = 0x90; /* overlong below U+10000 */
		} else if (p[0] == 0xf4) {
			hi = 0x8f; /* above U+10FFFF */
		}
	} else {
		return 0;
	}
	if (left < n || p[1] < lo || p[1] > hi) {
		return 0;
	}
	for (size_t i = 2; i < n; i++) {
		if (p[i] < 0x80 || p[i] > 0xbf) {
			return 0;
		}
	}
	return n;
}

int sb_msg_check_text(const char *text, size_t len, size_t *bad_at,
		      const char **what)
{
	const unsigned char *p = (const unsigned char *)text;
	bool in_string = false, escaped = false;
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		size_t n = utf8_sequence(p + i, len - i);

		if (n == 0) {
			*bad_at = i;
			*what = "UTF-8";
			return -EPROTO;
		}
		/* cJSON skips every byte up to 0x20 as whitespace, NUL
		 * included, and takes raw control characters inside strings:
		 * both are invalid JSON, refused here. */
		if (c < 0x20 &&
		    (in_string || (c != '\t' && c != '\n' && c != '\r'))) {
			*bad_at = i;
			*what = "JSON";
			return -EPROTO;
		}
		if (escaped) {
			/* A \u0000 escape would end the C string early. */
			if (c == 'u' && len - i >= 5 &&
			    memcmp(p + i + 1, "0000", 4) == 0) {
				*bad_at = i - 1;
				*what = "JSON";
				return -EPROTO;
			}
			escaped = false;
		} else if (in_string && c == '\\') {
			escaped = true;
		} else if (c == '"') {
			in_string = !in_string;
		}
		i += n;
	}
	return 0;
}

/* Parses `len` bytes of JSON text that must hold exactly one object. */
static int parse_object(const char *payload, size_t len, const char *what,
			cJSON **out, struct sb_msg_error *err)
{
	const char *end = NULL, *kind;
	size_t bad_at;
	cJSON *root;

	*out = NULL;
	if (sb_msg_check_text(payload, len, &bad_at, &kind) < 0) {
		return sb_msg_errorf(err, -EPROTO, "invalid %s at byte %zu",
				     kind, bad_at);
	}
	/* The Opts variant reports where parsing stopped without touching
	 * cJSON's global error pointer; requiring NUL termination there would
	 * demand a NUL inside the length, so trailing data is checked here. */
	root = cJSON_ParseWithLengthOpts(payload, len, &end, false);
	if (root == NULL) {
		return sb_msg_errorf(err, -EPROTO, "invalid JSON at byte %zu",
				     end != NULL ? (size_t)(end - payload) : 0);
	}
	while (end < payload + len &&
	       (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) {
		end++;
	}
	if (end != payload + len) {
		cJSON_Delete(root);
		return sb_msg_errorf(err, -EPROTO,
				     "invalid JSON at byte %zu: data after the "
				     "%s",
				     (size_t)(end - payload), what);
	}
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return sb_msg_errorf(err, -EPROTO,
				     "%s must be a JSON object (got %s)", what,
				     sb_msg_type_name(root));
	}
	*out = root;
	return 0;
}

/* Checks that a number holds an integer within [min, max]. */
static int number_to_int(const cJSON *item, const char *field, int64_t min,
			 int64_t max, int64_t *out, struct sb_msg_error *err)
{
	double d;
	int64_t v;

	if (!cJSON_IsNumber(item)) {
		return sb_msg_errorf(err, -EINVAL,
				     "field \"%s\" must be an integer (got %s)",
				     field, sb_msg_type_name(item));
	}
	d = item->valuedouble;
	/* Doubles this large are all integers, but do not fit an int64_t. */
	if (!(d > -9.0e18 && d < 9.0e18)) {
		return sb_msg_errorf(err, -EINVAL,
				     "field \"%s\" must be from %" PRId64
				     " to %" PRId64 " (got %g)",
				     field, min, max, d);
	}
	v = (int64_t)d;
	if ((double)v != d) {
		return sb_msg_errorf(err, -EINVAL,
				     "field \"%s\" must be an integer (got %g)",
				     field, d);
	}
	if (v < min || v > max) {
		return sb_msg_errorf(err, -EINVAL,
				     "field \"%s\" must be from %" PRId64
				     " to %" PRId64 " (got %" PRId64 ")",
				     field, min, max, v);
	}
	*out = v;
	return 0;
}

/* Reads the "id" of a request or reply; `null_ok` admits "id": null. */
static int read_id(const cJSON *root, bool null_ok, uint64_t *id, bool *has_id,
		   struct sb_msg_error *err)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, "id");
	int64_t v;
	int r;

	*has_id = false;
	if (item == NULL) {
		return sb_msg_errorf(err, -EPROTO, "missing field \"id\"");
	}
	if (null_ok && cJSON_IsNull(item)) {
		return 0;
	}
	r = number_to_int(item, "id", 0, SB_MSG_ID_MAX, &v, err);
	if (r < 0) {
		/* A bad id breaks the envelope, not just an argument. */
		if (err != NULL) {
			err->code = -EPROTO;
		}
		return -EPROTO;
	}
	*id = (uint64_t)v;
	*has_id = true;
	return 0;
}

int sb_msg_parse_request(const char *payload, size_t len,
			 struct sb_msg_request *req, struct sb_msg_error *err)
{
	const cJSON *op;
	cJSON *root;
	int r;

	memset(req, 0, sizeof(*req));
	r = parse_object(payload, len, "request", &root, err);
	if (r < 0) {
		return r;
	}
	op = cJSON_GetObjectItemCaseSensitive(root, "op");
	/* No "id" member but a good op: a notice, which wants no reply. */
	if (cJSON_GetObjectItemCaseSensitive(root, "id") == NULL &&
	    cJSON_IsString(op) && op->valuestring[0] != '\0') {
		req->root = root;
		req->op = op->valuestring;
		req->notice = true;
		return 0;
	}
	/* The id first, so that a request with a bad op still gets an error
	 * reply the client can match. */
	r = read_id(root, false, &req->id, &req->has_id, err);
	if (r < 0) {
		goto fail;
	}
	if (op == NULL) {
		r = sb_msg_errorf(err, -EPROTO, "missing field \"op\"");
		goto fail;
	}
	if (!cJSON_IsString(op) || op->valuestring[0] == '\0') {
		r = sb_msg_errorf(err, -EPROTO,
				  "field \"op\" must be a non-empty string");
		goto fail;
	}
	req->root = root;
	req->op = op->valuestring;
	return 0;

fail:
	cJSON_Delete(root);
	return r;
}

void sb_msg_request_fini(struct sb_msg_request *req)
{
	cJSON_Delete(req->root);
	req->root = NULL;
	req->op = NULL;
}

cJSON *sb_msg_add_int(cJSON *obj, const char *name, int64_t v)
{
	char digits[24];

	if (v < -SB_MSG_INT_MAX || v > SB_MSG_INT_MAX) {
		return NULL;
	}
	snprintf(digits, sizeof(digits), "%" PRId64, v);
	return cJSON_AddRawToObject(obj, name, digits);
}

/* Adds "id"; NULL if out of memory or beyond what a JSON number holds. */
static cJSON *add_id(cJSON *msg, uint64_t id)
{
	if (id > (uint64_t)SB_MSG_ID_MAX) {
		return NULL;
	}
	return sb_msg_add_int(msg, "id", (int64_t)id);
}

cJSON *sb_msg_request_new(const char *op, uint64_t id)
{
	cJSON *msg;

	msg = cJSON_CreateObject();
	if (msg == NULL || cJSON_AddStringToObject(msg, "op", op) == NULL ||
	    add_id(msg, id) == NULL) {
		cJSON_Delete(msg);
		return NULL;
	}
	return msg;
}

cJSON *sb_msg_reply_result(uint64_t id, cJSON *result)
{
	cJSON *msg = cJSON_CreateObject();

	if (result == NULL) {
		result = cJSON_CreateObject();
	}
	if (msg == NULL || result == NULL || add_id(msg, id) == NULL) {
		cJSON_Delete(msg);
		cJSON_Delete(result);
		return NULL;
	}
	/* cJSON_AddItemToObject only fails on NULL arguments, excluded above,
	 * so `result` is owned by `msg` from here on. */
	cJSON_AddItemToObject(msg, "result", result);
	return msg;
}

cJSON *sb_msg_reply_error(bool has_id, uint64_t id, int code,
			  const char *message)
{
	const char *name = sb_msg_errno_name(code);
	cJSON *msg = cJSON_CreateObject();
	cJSON *error;
	bool ok;

	if (msg == NULL) {
		return NULL;
	}
	ok = has_id ? add_id(msg, id) != NULL
		    : cJSON_AddNullToObject(msg, "id") != NULL;
	error = ok ? cJSON_AddObjectToObject(msg, "error") : NULL;
	if (error == NULL ||
	    cJSON_AddStringToObject(error, "code", name ? name : "EIO") ==
		NULL ||
	    cJSON_AddStringToObject(error, "message", message ? message : "") ==
		NULL) {
		cJSON_Delete(msg);
		return NULL;
	}
	return msg;
}

ssize_t sb_msg_to_frame(const cJSON *msg, size_t max_payload, char **frame)
{
	char *text = cJSON_PrintUnformatted(msg);
	ssize_t n;

	*frame = NULL;
	if (text == NULL) {
		return -ENOMEM;
	}
	n = sb_frame_encode_alloc(text, strlen(text), max_payload, frame);
	cJSON_free(text);
	return n;
}

int sb_msg_parse_reply(const char *payload, size_t len,
		       struct sb_msg_reply *rep, struct sb_msg_error *err)
{
	const cJSON *result, *error;
	const char *code, *message;
	cJSON *root;
	int r;

	memset(rep, 0, sizeof(*rep));
	r = parse_object(payload, len, "reply", &root, err);
	if (r < 0) {
		return r;
	}
	r = read_id(root, true, &rep->id, &rep->has_id, err);
	if (r < 0) {
		goto fail;
	}
	result = cJSON_GetObjectItemCaseSensitive(root, "result");
	error = cJSON_GetObjectItemCaseSensitive(root, "error");
	if ((result == NULL) == (error == NULL)) {
		r = sb_msg_errorf(err, -EPROTO,
				  "reply must have exactly one of \"result\" "
				  "and \"error\"");
		goto fail;
	}
	if (result != NULL) {
		if (!cJSON_IsObject(result)) {
			r = sb_msg_errorf(err, -EPROTO,
					  "field \"result\" must be an object "
					  "(got %s)",
					  sb_msg_type_name(result));
			goto fail;
		}
		rep->result = result;
		rep->root = root;
		return 0;
	}
	if (!cJSON_IsObject(error)) {
		r = sb_msg_errorf(err, -EPROTO,
				  "field \"error\" must be an object (got %s)",
				  sb_msg_type_name(error));
		goto fail;
	}
	if (sb_msg_get_string(error, "code", &code, err) < 0 ||
	    sb_msg_get_string(error, "message", &message, err) < 0) {
		/* A malformed reply breaks the envelope: -EPROTO. */
		if (err != NULL) {
			err->code = -EPROTO;
		}
		r = -EPROTO;
		goto fail;
	}
	rep->code = sb_msg_errno_from_name(code);
	rep->message = message;
	rep->root = root;
	return 0;

fail:
	cJSON_Delete(root);
	return r;
}

void sb_msg_reply_fini(struct sb_msg_reply *rep)
{
	cJSON_Delete(rep->root);
	memset(rep, 0, sizeof(*rep));
}

/* Looks a field up; -EINVAL naming it if it is absent. */
static int lookup(const cJSON *obj, const char *field, const cJSON **item,
		  struct sb_msg_error *err)
{
	*item = cJSON_GetObjectItemCaseSensitive(obj, field);
	if (*item == NULL) {
		return sb_msg_errorf(err, -EINVAL, "missing field \"%s\"",
				     field);
	}
	return 0;
}

int sb_msg_get_string(const cJSON *obj, const char *field, const char **out,
		      struct sb_msg_error *err)
{
	const cJSON *item;
	int r = lookup(obj, field, &item, err);

	if (r < 0) {
		return r;
	}
	if (!cJSON_IsString(item)) {
		return sb_msg_errorf(err, -EINVAL,
				     "field \"%s\" must be a string (got %s)",
				     field, sb_msg_type_name(item));
	}
	*out = item->valuestring;
	return 0;
}

int sb_msg_get_string_opt(const cJSON *obj, const char *field, const char *dflt,
			  const char **out, struct sb_msg_error *err)
{
	if (cJSON_GetObjectItemCaseSensitive(obj, field) == NULL) {
		*out = dflt;
		return 0;
	}
	return sb_msg_get_string(obj, field, out, err);
}

int sb_msg_get_int(const cJSON *obj, const char *field, int64_t min,
		   int64_t max, int64_t *out, struct sb_msg_error *err)
{
	const cJSON *item;
	int r = lookup(obj, field, &item, err);

	if (r < 0) {
		return r;
	}
	return number_to_int(item, field, min, max, out, err);
}

int sb_msg_get_int_opt(const cJSON *obj, const char *field, int64_t min,
		       int64_t max, int64_t dflt, int64_t *out,
		       struct sb_msg_error *err)
{
	if (cJSON_GetObjectItemCaseSensitive(obj, field) == NULL) {
		*out = dflt;
		return 0;
	}
	return sb_msg_get_int(obj, field, min, max, out, err);
}

int sb_msg_get_bool(const cJSON *obj, const char *field, bool *out,
		    struct sb_msg_error *err)
{
	const cJSON *item;
	int r = lookup(obj, field, &item, err);

	if (r < 0) {
		return r;
	}
	if (!cJSON_IsBool(item)) {
		return sb_msg_errorf(err, -EINVAL,
				     "field \"%s\" must be true or false (got "
				     "%s)",
				     field, sb_msg_type_name(item));
	}
	*out = cJSON_IsTrue(item);
	return 0;
}

int sb_msg_get_bool_opt(const cJSON *obj, const char *field, bool dflt,
			bool *out, struct sb_msg_error *err)
{
	if (cJSON_GetObjectItemCaseSensitive(obj, field) == NULL) {
		*out = dflt;
		return 0;
	}
	return sb_msg_get_bool(obj, field, out, err);
}

int sb_msg_get_object(const cJSON *obj, const char *field, const cJSON **out,
		      struct sb_msg_error *err)
{
	const cJSON *item;
	int r = lookup(obj, field, &item, err);

	if (r < 0) {
		return r;
	}
	if (!cJSON_IsObject(item)) {
		return sb_msg_errorf(err, -EINVAL,
				     "field \"%s\" must be an object (got %s)",
				     field, sb_msg_type_name(item));
	}
	*out = item;
	return 0;
}

int sb_msg_get_object_opt(const cJSON *obj, const char *field,
			  const cJSON **out, struct sb_msg_error *err)
{
	if (cJSON_GetObjectItemCaseSensitive(obj, field) == NULL) {
		*out = NULL;
		return 0;
	}
	return sb_msg_get_object(obj, field, out, err);
}

int sb_msg_check_fields(const cJSON *obj, const char *const *known,
			struct sb_msg_error *err)
{
	/* One bit per known field: duplicates are found in linear time even
	 * in an object of thousands of repeated keys. */
	uint64_t seen = 0;
	const cJSON *item;
	size_t n_known = 0;
	char quoted[80];

	while (known[n_known] != NULL) {
		n_known++;
	}
	/* The lists are the callers' own constants, kept within the mask. */
	assert(n_known <= 64);
	cJSON_ArrayForEach(item, obj)
	{
		const char *name = item->string != NULL ? item->string : "";
		size_t k = 0;

		while (known[k] != NULL && strcmp(known[k], name) != 0) {
			k++;
		}
		if (known[k] == NULL) {
			/* The name is the peer's: quoted, it cannot break
			 * the log line the message may end up in. */
			return sb_msg_errorf(
			    err, -EINVAL, "unknown field %s",
			    sb_msg_quote(name, 64, quoted, sizeof(quoted)));
		}
		if (seen & (UINT64_C(1) << k)) {
			return sb_msg_errorf(err, -EINVAL,
					     "duplicate field \"%s\"", name);
		}
		seen |= UINT64_C(1) << k;
	}
	return 0;
}
