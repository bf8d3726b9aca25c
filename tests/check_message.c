/*
 * check_message.c - the request/reply envelope: well-formed messages round
 * trip through frames, a request with no "id" member is a notice, every
 * malformed request is refused with -EPROTO and the exact message (echoing
 * the id when it was readable), error codes travel as names, and the field
 * getters name the field they reject.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/suites.h"
#include "wire/frame.h"
#include "wire/message.h"

/* Parses `text` as a request that must be refused with `message`. */
static void assert_bad_request(const char *text, size_t len,
			       const char *message, bool has_id, uint64_t id)
{
	struct sb_msg_request req;
	struct sb_msg_error err = {0};

	ck_assert_int_eq(sb_msg_parse_request(text, len, &req, &err), -EPROTO);
	ck_assert_int_eq(err.code, -EPROTO);
	ck_assert_str_eq(err.message, message);
	ck_assert_ptr_null(req.root);
	ck_assert_int_eq(req.has_id, has_id);
	if (has_id) {
		ck_assert_uint_eq(req.id, id);
	}
	sb_msg_request_fini(&req);
}

#define BAD(text, message, has_id, id)                                         \
	assert_bad_request((text), strlen(text), (message), (has_id), (id))

START_TEST(valid_request)
{
	static const char text[] = "{\"op\":\"topic.create\",\"id\":42,"
				   "\"name\":\"imu\"} \r\n\t";
	struct sb_msg_request req;
	struct sb_msg_error err = {0};
	const char *name;

	/* Not NUL-terminated: the length bounds the parse. */
	ck_assert_int_eq(
	    sb_msg_parse_request(text, sizeof(text) - 1, &req, &err), 0);
	ck_assert_str_eq(req.op, "topic.create");
	ck_assert(req.has_id);
	ck_assert(!req.notice);
	ck_assert_uint_eq(req.id, 42);
	ck_assert_int_eq(sb_msg_get_string(req.root, "name", &name, &err), 0);
	ck_assert_str_eq(name, "imu");
	sb_msg_request_fini(&req);
	sb_msg_request_fini(&req);
}
END_TEST

/* No "id" member and a good op: a notice, which the caller may refuse. */
START_TEST(notice_has_no_id)
{
	static const char text[] = "{\"op\":\"close\",\"handle\":3}";
	struct sb_msg_request req;
	struct sb_msg_error err = {0};
	int64_t handle;

	ck_assert_int_eq(
	    sb_msg_parse_request(text, sizeof(text) - 1, &req, &err), 0);
	ck_assert(req.notice);
	ck_assert(!req.has_id);
	ck_assert_str_eq(req.op, "close");
	ck_assert_int_eq(
	    sb_msg_get_int(req.root, "handle", 0, 100, &handle, &err), 0);
	ck_assert_int_eq(handle, 3);
	sb_msg_request_fini(&req);
	/* Without a good op it is a request missing its id, as before. */
	BAD("{}", "missing field \"id\"", false, 0);
	BAD("{\"op\":1}", "missing field \"id\"", false, 0);
	BAD("{\"op\":\"\"}", "missing field \"id\"", false, 0);
	BAD("{\"OP\":\"close\",\"handle\":3}", "missing field \"id\"", false,
	    0);
	/* An "id" present but broken is never taken for a notice. */
	BAD("{\"op\":\"close\",\"id\":null,\"handle\":3}",
	    "field \"id\" must be an integer (got null)", false, 0);
	BAD("{\"op\":\"close\",\"ID\":1,\"id\":\"1\"}",
	    "field \"id\" must be an integer (got string)", false, 0);
}
END_TEST

START_TEST(id_limits)
{
	struct sb_msg_request req;
	const char *text = "{\"op\":\"x\",\"id\":9007199254740991}";

	ck_assert_int_eq(sb_msg_parse_request(text, strlen(text), &req, NULL),
			 0);
	ck_assert_uint_eq(req.id, 9007199254740991ULL);
	sb_msg_request_fini(&req);
	text = "{\"id\":0,\"op\":\"x\"}";
	ck_assert_int_eq(sb_msg_parse_request(text, strlen(text), &req, NULL),
			 0);
	ck_assert_uint_eq(req.id, 0);
	sb_msg_request_fini(&req);
}
END_TEST

START_TEST(invalid_json)
{
	BAD("{\"op\": \"hello\", x}", "invalid JSON at byte 17", false, 0);
	BAD("{\"op\": \"hello\", \"id\": 1", "invalid JSON at byte 22", false,
	    0);
	BAD("", "invalid JSON at byte 0", false, 0);
	BAD("   ", "invalid JSON at byte 2", false, 0);
	BAD("{\"op\":\"a\",\"id\":1} x",
	    "invalid JSON at byte 18: data after the request", false, 0);
	BAD("{\"op\":\"a\",\"id\":1}{}",
	    "invalid JSON at byte 17: data after the request", false, 0);
	/* The length bounds the parse even when valid JSON follows it. */
	assert_bad_request("{\"op\":\"a\",\"id\":1}", 10,
			   "invalid JSON at byte 9", false, 0);
}
END_TEST

START_TEST(invalid_text)
{
	static const char nul[] = "{\"op\":\"a\",\0\"id\":1}";

	BAD("{\"op\":\"a\xff\",\"id\":1}", "invalid UTF-8 at byte 8", false, 0);
	/* Overlong '/', a UTF-16 surrogate, a code point above U+10FFFF, a
	 * truncated sequence. */
	BAD("{\"op\":\"\xc0\xaf\",\"id\":1}", "invalid UTF-8 at byte 7", false,
	    0);
	BAD("{\"op\":\"\xed\xa0\x80\",\"id\":1}", "invalid UTF-8 at byte 7",
	    false, 0);
	BAD("{\"op\":\"\xf4\x90\x80\x80\",\"id\":1}", "invalid UTF-8 at byte 7",
	    false, 0);
	BAD("{\"op\":\"\xe2\x82\"}", "invalid UTF-8 at byte 7", false, 0);
	/* A raw NUL, which cJSON would skip as whitespace. */
	assert_bad_request(nul, sizeof(nul) - 1, "invalid JSON at byte 10",
			   false, 0);
	/* A raw control character inside a string. */
	BAD("{\"op\":\"a\tb\",\"id\":1}", "invalid JSON at byte 8", false, 0);
	/* \u0000 would cut the C string short. */
	BAD("{\"op\":\"a\\u0000\",\"id\":1}", "invalid JSON at byte 8", false,
	    0);
}
END_TEST

START_TEST(valid_text_edge_cases)
{
	/* Multibyte UTF-8, an escaped backslash before "u0000" (a literal
	 * text, not an escape), and a tab between tokens. */
	static const char text[] = "{\"op\":\"caf\xc3\xa9\xf0\x9f\x98\x80\","
				   "\t\"id\":1,\"s\":\"\\\\u0000\"}";
	struct sb_msg_request req;
	const char *s;

	ck_assert_int_eq(
	    sb_msg_parse_request(text, sizeof(text) - 1, &req, NULL), 0);
	ck_assert_str_eq(req.op, "caf\xc3\xa9\xf0\x9f\x98\x80");
	ck_assert_int_eq(sb_msg_get_string(req.root, "s", &s, NULL), 0);
	ck_assert_str_eq(s, "\\u0000");
	sb_msg_request_fini(&req);
}
END_TEST

START_TEST(not_an_object)
{
	BAD("[1]", "request must be a JSON object (got array)", false, 0);
	BAD("\"op\"", "request must be a JSON object (got string)", false, 0);
	BAD("7", "request must be a JSON object (got number)", false, 0);
	BAD("null", "request must be a JSON object (got null)", false, 0);
}
END_TEST

START_TEST(bad_op_echoes_the_id)
{
	BAD("{\"id\":5}", "missing field \"op\"", true, 5);
	BAD("{\"op\":1,\"id\":6}", "field \"op\" must be a non-empty string",
	    true, 6);
	BAD("{\"op\":\"\",\"id\":7}", "field \"op\" must be a non-empty string",
	    true, 7);
	BAD("{\"op\":null,\"id\":8}", "field \"op\" must be a non-empty string",
	    true, 8);
	/* "op" and "id" are case-sensitive. */
	BAD("{\"OP\":\"x\",\"id\":9}", "missing field \"op\"", true, 9);
}
END_TEST

START_TEST(bad_id)
{
	BAD("{\"op\":1}", "missing field \"id\"", false, 0);
	BAD("{\"op\":\"x\",\"id\":\"1\"}",
	    "field \"id\" must be an integer (got string)", false, 0);
	BAD("{\"op\":\"x\",\"id\":null}",
	    "field \"id\" must be an integer (got null)", false, 0);
	BAD("{\"op\":\"x\",\"id\":true}",
	    "field \"id\" must be an integer (got boolean)", false, 0);
	BAD("{\"op\":\"x\",\"id\":1.5}",
	    "field \"id\" must be an integer (got 1.5)", false, 0);
	BAD("{\"op\":\"x\",\"id\":-1}",
	    "field \"id\" must be from 0 to 9007199254740991 (got -1)", false,
	    0);
	BAD("{\"op\":\"x\",\"id\":9007199254740992}",
	    "field \"id\" must be from 0 to 9007199254740991 (got "
	    "9007199254740992)",
	    false, 0);
	BAD("{\"op\":\"x\",\"id\":1e300}",
	    "field \"id\" must be from 0 to 9007199254740991 (got 1e+300)",
	    false, 0);
	BAD("{\"op\":\"x\",\"id\":-1e300}",
	    "field \"id\" must be from 0 to 9007199254740991 (got -1e+300)",
	    false, 0);
}
END_TEST

START_TEST(errno_names_round_trip)
{
	static const char *const names[] = {
	    "EINVAL",	"ENOENT",  "EEXIST",	"EACCES",	"EPERM",
	    "ENOMEM",	"ENOSPC",  "ERANGE",	"ETIMEDOUT",	"EAGAIN",
	    "EMSGSIZE", "EPROTO",  "EBUSY",	"EMFILE",	"EUSERS",
	    "ENOTSUP",	"EBADMSG", "EOVERFLOW", "ENAMETOOLONG", "EIO",
	};
	static const int codes[] = {
	    EINVAL, ENOENT,    EEXIST,	EACCES,	   EPERM,	 ENOMEM, ENOSPC,
	    ERANGE, ETIMEDOUT, EAGAIN,	EMSGSIZE,  EPROTO,	 EBUSY,	 EMFILE,
	    EUSERS, ENOTSUP,   EBADMSG, EOVERFLOW, ENAMETOOLONG, EIO,
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		ck_assert_int_eq(sb_msg_errno_from_name(names[i]), -codes[i]);
		ck_assert_str_eq(sb_msg_errno_name(-codes[i]), names[i]);
	}
	ck_assert_int_eq(sb_msg_errno_from_name("EWHATEVER"), -EPROTO);
	ck_assert_int_eq(sb_msg_errno_from_name("enoent"), -EPROTO);
	ck_assert_int_eq(sb_msg_errno_from_name(""), -EPROTO);
	ck_assert_int_eq(sb_msg_errno_from_name(NULL), -EPROTO);
	ck_assert_ptr_null(sb_msg_errno_name(0));
	ck_assert_ptr_null(sb_msg_errno_name(ENOENT));
	ck_assert_ptr_null(sb_msg_errno_name(-EXDEV));
}
END_TEST

/* Frames `msg`, decodes the frame, and parses it as a reply. */
static int through_the_wire(cJSON *msg, struct sb_msg_reply *rep,
			    struct sb_msg_error *err)
{
	struct sb_frame_decoder dec;
	const char *in, *payload;
	size_t inlen, len;
	char *frame;
	ssize_t n;
	int r;

	ck_assert_ptr_nonnull(msg);
	n = sb_msg_to_frame(msg, 1024, &frame);
	cJSON_Delete(msg);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(sb_frame_decoder_init(&dec, 1024), 0);
	in = frame;
	inlen = (size_t)n;
	ck_assert_int_eq(
	    sb_frame_decoder_next(&dec, &in, &inlen, &payload, &len), 1);
	r = sb_msg_parse_reply(payload, len, rep, err);
	sb_frame_decoder_fini(&dec);
	free(frame);
	return r;
}

START_TEST(result_reply_round_trip)
{
	struct sb_msg_reply rep;
	cJSON *result = cJSON_CreateObject();
	bool flag = false;

	cJSON_AddTrueToObject(result, "created");
	ck_assert_int_eq(
	    through_the_wire(sb_msg_reply_result(SB_MSG_ID_MAX, result), &rep,
			     NULL),
	    0);
	ck_assert(rep.has_id);
	ck_assert_uint_eq(rep.id, 9007199254740991ULL);
	ck_assert_int_eq(rep.code, 0);
	ck_assert_ptr_null(rep.message);
	ck_assert_ptr_nonnull(rep.result);
	ck_assert_int_eq(sb_msg_get_bool(rep.result, "created", &flag, NULL),
			 0);
	ck_assert(flag);
	sb_msg_reply_fini(&rep);
	sb_msg_reply_fini(&rep);

	/* A NULL result becomes an empty object. */
	ck_assert_int_eq(
	    through_the_wire(sb_msg_reply_result(3, NULL), &rep, NULL), 0);
	ck_assert_ptr_null(rep.result->child);
	sb_msg_reply_fini(&rep);
}
END_TEST

START_TEST(error_reply_round_trip)
{
	struct sb_msg_reply rep;

	ck_assert_int_eq(
	    through_the_wire(
		sb_msg_reply_error(true, 9, -ENOENT, "no such topic \"imu\""),
		&rep, NULL),
	    0);
	ck_assert(rep.has_id);
	ck_assert_uint_eq(rep.id, 9);
	ck_assert_ptr_null(rep.result);
	ck_assert_int_eq(rep.code, -ENOENT);
	ck_assert_str_eq(rep.message, "no such topic \"imu\"");
	sb_msg_reply_fini(&rep);

	/* No readable id: "id": null. A code outside the table: "EIO". */
	ck_assert_int_eq(
	    through_the_wire(sb_msg_reply_error(false, 0, -EXDEV, "odd"), &rep,
			     NULL),
	    0);
	ck_assert(!rep.has_id);
	ck_assert_int_eq(rep.code, -EIO);
	sb_msg_reply_fini(&rep);
}
END_TEST

START_TEST(error_reply_text_is_as_documented)
{
	cJSON *msg = sb_msg_reply_error(true, 7, -ENOENT, "no such topic");
	char *text = cJSON_PrintUnformatted(msg);

	ck_assert_str_eq(text, "{\"id\":7,\"error\":{\"code\":\"ENOENT\","
			       "\"message\":\"no such topic\"}}");
	cJSON_free(text);
	cJSON_Delete(msg);

	msg = sb_msg_request_new("hello", 1);
	text = cJSON_PrintUnformatted(msg);
	ck_assert_str_eq(text, "{\"op\":\"hello\",\"id\":1}");
	cJSON_free(text);
	cJSON_Delete(msg);
	ck_assert_ptr_null(sb_msg_request_new("hello", 1ULL << 53));
}
END_TEST

START_TEST(integers_print_exactly)
{
	cJSON *o = cJSON_CreateObject();
	char *text;

	ck_assert_ptr_nonnull(sb_msg_add_int(o, "max", SB_MSG_INT_MAX));
	ck_assert_ptr_nonnull(sb_msg_add_int(o, "min", -SB_MSG_INT_MAX));
	ck_assert_ptr_null(sb_msg_add_int(o, "big", SB_MSG_INT_MAX + 1));
	ck_assert_ptr_null(sb_msg_add_int(o, "small", -SB_MSG_INT_MAX - 1));
	text = cJSON_PrintUnformatted(o);
	ck_assert_str_eq(text, "{\"max\":9007199254740991,"
			       "\"min\":-9007199254740991}");
	cJSON_free(text);
	cJSON_Delete(o);

	/* Ids beyond 2^53 - 1 are refused by every builder (the result
	 * passed in is freed: ASan would report the leak). */
	ck_assert_ptr_null(
	    sb_msg_reply_result(1ULL << 53, cJSON_CreateObject()));
	ck_assert_ptr_null(sb_msg_reply_error(true, UINT64_MAX, -EIO, "m"));
	ck_assert_ptr_null(sb_msg_request_new("x", UINT64_MAX));
}
END_TEST

START_TEST(unknown_error_name_is_eproto)
{
	static const char text[] =
	    "{\"id\":1,\"error\":{\"code\":\"EWHATEVER\","
	    "\"message\":\"m\"}}";
	struct sb_msg_reply rep;

	ck_assert_int_eq(sb_msg_parse_reply(text, sizeof(text) - 1, &rep, NULL),
			 0);
	ck_assert_int_eq(rep.code, -EPROTO);
	ck_assert_str_eq(rep.message, "m");
	sb_msg_reply_fini(&rep);
}
END_TEST

static void assert_bad_reply(const char *text, const char *message)
{
	struct sb_msg_reply rep;
	struct sb_msg_error err = {0};

	ck_assert_int_eq(sb_msg_parse_reply(text, strlen(text), &rep, &err),
			 -EPROTO);
	ck_assert_int_eq(err.code, -EPROTO);
	ck_assert_str_eq(err.message, message);
	ck_assert_ptr_null(rep.root);
}

START_TEST(malformed_replies)
{
	assert_bad_reply("[]", "reply must be a JSON object (got array)");
	assert_bad_reply("{\"result\":{}}", "missing field \"id\"");
	assert_bad_reply("{\"id\":-2,\"result\":{}}",
			 "field \"id\" must be from 0 to 9007199254740991 "
			 "(got -2)");
	assert_bad_reply("{\"id\":1}",
			 "reply must have exactly one of \"result\" and "
			 "\"error\"");
	assert_bad_reply("{\"id\":1,\"result\":{},\"error\":{}}",
			 "reply must have exactly one of \"result\" and "
			 "\"error\"");
	assert_bad_reply("{\"id\":1,\"result\":[]}",
			 "field \"result\" must be an object (got array)");
	assert_bad_reply("{\"id\":1,\"error\":\"ENOENT\"}",
			 "field \"error\" must be an object (got string)");
	assert_bad_reply("{\"id\":1,\"error\":{\"message\":\"m\"}}",
			 "missing field \"code\"");
	assert_bad_reply("{\"id\":1,\"error\":{\"code\":2,\"message\":\"m\"}}",
			 "field \"code\" must be a string (got number)");
	assert_bad_reply("{\"id\":1,\"error\":{\"code\":\"EIO\"}}",
			 "missing field \"message\"");
	assert_bad_reply("{\"id\":1,\"result\":{}} 1",
			 "invalid JSON at byte 21: data after the reply");
}
END_TEST

START_TEST(to_frame_respects_the_maximum)
{
	cJSON *msg = sb_msg_request_new("hello", 1);
	char *frame = (char *)"x";

	/* {"op":"hello","id":1} is 21 bytes. */
	ck_assert_int_eq(sb_msg_to_frame(msg, 20, &frame), -EMSGSIZE);
	ck_assert_ptr_null(frame);
	ck_assert_int_eq(sb_msg_to_frame(msg, 21, &frame), 25);
	ck_assert_int_eq(memcmp(frame, "\0\0\0\25{\"op\"", 9), 0);
	free(frame);
	cJSON_Delete(msg);
}
END_TEST

/* Runs a getter on `json` and checks its -EINVAL message. */
static cJSON *obj_of(const char *json)
{
	cJSON *o = cJSON_Parse(json);

	ck_assert_ptr_nonnull(o);
	return o;
}

#define ASSERT_EINVAL(call, msg)                                               \
	do {                                                                   \
		struct sb_msg_error e_ = {0};                                  \
		ck_assert_int_eq((call), -EINVAL);                             \
		ck_assert_int_eq(e_.code, -EINVAL);                            \
		ck_assert_str_eq(e_.message, (msg));                           \
	} while (0)

START_TEST(getters_name_the_field)
{
	cJSON *o = obj_of("{\"s\":\"v\",\"n\":7,\"f\":1.5,\"b\":true,"
			  "\"o\":{},\"a\":[],\"z\":null}");
	const char *s;
	int64_t n;
	bool b;
	const cJSON *sub;

	ASSERT_EINVAL(sb_msg_get_string(o, "x", &s, &e_),
		      "missing field \"x\"");
	ASSERT_EINVAL(sb_msg_get_string(o, "n", &s, &e_),
		      "field \"n\" must be a string (got number)");
	ASSERT_EINVAL(sb_msg_get_string_opt(o, "z", "d", &s, &e_),
		      "field \"z\" must be a string (got null)");
	ASSERT_EINVAL(sb_msg_get_int(o, "x", 0, 10, &n, &e_),
		      "missing field \"x\"");
	ASSERT_EINVAL(sb_msg_get_int(o, "s", 0, 10, &n, &e_),
		      "field \"s\" must be an integer (got string)");
	ASSERT_EINVAL(sb_msg_get_int(o, "f", 0, 10, &n, &e_),
		      "field \"f\" must be an integer (got 1.5)");
	ASSERT_EINVAL(sb_msg_get_int(o, "n", 8, 64, &n, &e_),
		      "field \"n\" must be from 8 to 64 (got 7)");
	ASSERT_EINVAL(sb_msg_get_int_opt(o, "n", -3, 6, 0, &n, &e_),
		      "field \"n\" must be from -3 to 6 (got 7)");
	ASSERT_EINVAL(sb_msg_get_bool(o, "x", &b, &e_), "missing field \"x\"");
	ASSERT_EINVAL(sb_msg_get_bool(o, "s", &b, &e_),
		      "field \"s\" must be true or false (got string)");
	ASSERT_EINVAL(sb_msg_get_bool_opt(o, "n", true, &b, &e_),
		      "field \"n\" must be true or false (got number)");
	ASSERT_EINVAL(sb_msg_get_object(o, "x", &sub, &e_),
		      "missing field \"x\"");
	ASSERT_EINVAL(sb_msg_get_object(o, "a", &sub, &e_),
		      "field \"a\" must be an object (got array)");
	ASSERT_EINVAL(sb_msg_get_object_opt(o, "b", &sub, &e_),
		      "field \"b\" must be an object (got boolean)");
	cJSON_Delete(o);
}
END_TEST

START_TEST(getters_read_values_and_defaults)
{
	cJSON *o = obj_of("{\"s\":\"v\",\"n\":-7,\"b\":false,\"o\":{\"k\":1}}");
	const char *s;
	int64_t n;
	bool b;
	const cJSON *sub;

	ck_assert_int_eq(sb_msg_get_string(o, "s", &s, NULL), 0);
	ck_assert_str_eq(s, "v");
	ck_assert_int_eq(sb_msg_get_string_opt(o, "x", "dflt", &s, NULL), 0);
	ck_assert_str_eq(s, "dflt");
	ck_assert_int_eq(sb_msg_get_int(o, "n", -7, -7, &n, NULL), 0);
	ck_assert_int_eq(n, -7);
	ck_assert_int_eq(sb_msg_get_int_opt(o, "x", 0, 9, 4, &n, NULL), 0);
	ck_assert_int_eq(n, 4);
	ck_assert_int_eq(sb_msg_get_bool(o, "b", &b, NULL), 0);
	ck_assert(!b);
	ck_assert_int_eq(sb_msg_get_bool_opt(o, "x", true, &b, NULL), 0);
	ck_assert(b);
	ck_assert_int_eq(sb_msg_get_object(o, "o", &sub, NULL), 0);
	ck_assert_ptr_nonnull(cJSON_GetObjectItemCaseSensitive(sub, "k"));
	ck_assert_int_eq(sb_msg_get_object_opt(o, "x", &sub, NULL), 0);
	ck_assert_ptr_null(sub);
	cJSON_Delete(o);
}
END_TEST

START_TEST(check_fields_refuses_unknown_and_duplicates)
{
	static const char *const known[] = {"op", "id", "name", NULL};
	cJSON *o = obj_of("{\"op\":\"x\",\"id\":1,\"name\":\"a\"}");

	ck_assert_int_eq(sb_msg_check_fields(o, known, NULL), 0);
	cJSON_Delete(o);
	o = obj_of("{\"op\":\"x\",\"id\":1,\"nmae\":\"a\"}");
	ASSERT_EINVAL(sb_msg_check_fields(o, known, &e_),
		      "unknown field \"nmae\"");
	cJSON_Delete(o);
	o = obj_of("{\"op\":\"x\",\"id\":1,\"op\":\"y\"}");
	ASSERT_EINVAL(sb_msg_check_fields(o, known, &e_),
		      "duplicate field \"op\"");
	cJSON_Delete(o);
}
END_TEST

Suite *message_suite(void)
{
	Suite *s = suite_create("message");
	TCase *tc;

	tc = tcase_create("request");
	tcase_add_test(tc, valid_request);
	tcase_add_test(tc, notice_has_no_id);
	tcase_add_test(tc, id_limits);
	tcase_add_test(tc, valid_text_edge_cases);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_test(tc, invalid_json);
	tcase_add_test(tc, invalid_text);
	tcase_add_test(tc, not_an_object);
	tcase_add_test(tc, bad_op_echoes_the_id);
	tcase_add_test(tc, bad_id);
	tcase_add_test(tc, malformed_replies);
	suite_add_tcase(s, tc);

	tc = tcase_create("reply");
	tcase_add_test(tc, errno_names_round_trip);
	tcase_add_test(tc, result_reply_round_trip);
	tcase_add_test(tc, error_reply_round_trip);
	tcase_add_test(tc, error_reply_text_is_as_documented);
	tcase_add_test(tc, unknown_error_name_is_eproto);
	tcase_add_test(tc, integers_print_exactly);
	tcase_add_test(tc, to_frame_respects_the_maximum);
	suite_add_tcase(s, tc);

	tc = tcase_create("getters");
	tcase_add_test(tc, getters_name_the_field);
	tcase_add_test(tc, getters_read_values_and_defaults);
	tcase_add_test(tc, check_fields_refuses_unknown_and_duplicates);
	suite_add_tcase(s, tc);
	return s;
}
