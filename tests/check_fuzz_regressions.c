/*
 * check_fuzz_regressions.c - the fuzz targets' inputs that matter, replayed
 * through the same entry points in every `make test` (plain and under
 * ASan+UBSan), with the exact result each must give. Every crash the fuzzers
 * find lands here with its bytes; until one does, the suite carries the
 * hand-made seeds that drive each decoder's error paths, so a change that
 * alters an error code or a message is caught without running a fuzzer.
 * The same bytes live in fuzz/corpus/<target>/ (docs/fuzzing.md).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "config/config.h"
#include "ring/ring.h"
#include "ring/ring_layout.h"
#include "tests/suites.h"
#include "wire/frame.h"
#include "wire/message.h"

/* ---- frames: fuzz/corpus/frame_message/bad-* -------------------------- */

/* Decodes `len` bytes in one chunk with maximum payload `max`; returns the
 * first error, else the end-of-stream verdict; *frames counts the frames. */
static int decode_all(const void *bytes, size_t len, size_t max, size_t *frames)
{
	struct sb_frame_decoder dec;
	const char *in = bytes, *p;
	size_t inlen = len, plen;
	int r;

	ck_assert_int_eq(sb_frame_decoder_init(&dec, max), 0);
	*frames = 0;
	while ((r = sb_frame_decoder_next(&dec, &in, &inlen, &p, &plen)) == 1) {
		(*frames)++;
	}
	if (r == 0) {
		r = sb_frame_decoder_eof(&dec);
	} else {
		/* Sticky: the stream cannot be resynchronised. */
		ck_assert_int_eq(
		    sb_frame_decoder_next(&dec, &in, &inlen, &p, &plen), r);
	}
	sb_frame_decoder_fini(&dec);
	return r;
}

START_TEST(frame_of_length_zero_is_eproto)
{
	static const unsigned char in[] = {0, 0, 0, 0};
	size_t n;

	ck_assert_int_eq(decode_all(in, sizeof(in), 4096, &n), -EPROTO);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(frame_over_the_maximum_is_emsgsize_from_the_header)
{
	/* "bad-too-long": a 26-byte payload against a maximum of 16; only
	 * the 4 header bytes are needed to refuse it. */
	static const unsigned char in[] = {0, 0, 0, 26, '{'};
	size_t n;

	ck_assert_int_eq(decode_all(in, sizeof(in), 16, &n), -EMSGSIZE);
	ck_assert_int_eq(decode_all(in, 4, 16, &n), -EMSGSIZE);
}
END_TEST

START_TEST(truncated_frame_is_eproto_at_eof)
{
	static const char in[] = "\0\0\0\x14{\"op\":\"ping\",\"id";
	size_t n;

	ck_assert_int_eq(decode_all(in, sizeof(in) - 1, 4096, &n), -EPROTO);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(decode_all(in, 2, 4096, &n), -EPROTO);
}
END_TEST

/* ---- requests and replies: the payloads of the frame_message seeds ----- */

/* Parses `text` as a request that must fail with -EPROTO and `message`. */
static void request_fails(const char *text, const char *message, int has_id)
{
	struct sb_msg_request req;
	struct sb_msg_error err = {0, ""};

	ck_assert_int_eq(sb_msg_parse_request(text, strlen(text), &req, &err),
			 -EPROTO);
	ck_assert_int_eq(err.code, -EPROTO);
	ck_assert_str_eq(err.message, message);
	ck_assert_ptr_null(req.root);
	ck_assert_int_eq(req.has_id, has_id);
	sb_msg_request_fini(&req);
}

START_TEST(request_text_errors_name_the_byte)
{
	request_fails("{\"op\":\"ping\",\"id\":1", "invalid JSON at byte 18",
		      0);
	request_fails("{\"op\":\"ping\",\"id\":1} x",
		      "invalid JSON at byte 21: data after the request", 0);
	request_fails("{\"op\":\"p\xc0\xafng\",\"id\":1}",
		      "invalid UTF-8 at byte 8", 0);
	request_fails("{\"op\":\"\\u0000\",\"id\":1}", "invalid JSON at byte 7",
		      0);
	request_fails("[1,2]", "request must be a JSON object (got array)", 0);
}
END_TEST

START_TEST(request_envelope_errors_are_eproto)
{
	request_fails("{\"op\":\"ping\",\"id\":-1}",
		      "field \"id\" must be from 0 to 9007199254740991 (got "
		      "-1)",
		      0);
	request_fails("{\"op\":\"ping\",\"id\":1.5}",
		      "field \"id\" must be an integer (got 1.5)", 0);
	request_fails("{\"op\":\"ping\",\"id\":9007199254740992}",
		      "field \"id\" must be from 0 to 9007199254740991 (got "
		      "9007199254740992)",
		      0);
	request_fails("{\"op\":\"ping\",\"id\":\"7\"}",
		      "field \"id\" must be an integer (got string)", 0);
	request_fails("{\"id\":1}", "missing field \"op\"", 1);
	request_fails("{\"op\":\"\",\"id\":2}",
		      "field \"op\" must be a non-empty string", 1);
	request_fails("{\"op\":3,\"id\":3}",
		      "field \"op\" must be a non-empty string", 1);
}
END_TEST

/* Parses `text` as a reply that must be refused with `message`. */
static void reply_fails(const char *text, const char *message)
{
	struct sb_msg_reply rep;
	struct sb_msg_error err = {0, ""};

	ck_assert_int_eq(sb_msg_parse_reply(text, strlen(text), &rep, &err),
			 -EPROTO);
	ck_assert_int_eq(err.code, -EPROTO);
	ck_assert_str_eq(err.message, message);
	ck_assert_ptr_null(rep.root);
	sb_msg_reply_fini(&rep);
}

START_TEST(malformed_replies_are_eproto)
{
	reply_fails("{\"id\":1,\"result\":{},\"error\":{}}",
		    "reply must have exactly one of \"result\" and \"error\"");
	reply_fails("{\"id\":1,\"error\":{\"code\":5,\"message\":\"x\"}}",
		    "field \"code\" must be a string (got number)");
	reply_fails("{\"id\":1,\"result\":[]}",
		    "field \"result\" must be an object (got array)");
}
END_TEST

/* "fields-wrong-types": a parseable request whose every field is wrong, read
 * with the getters the broker uses. */
START_TEST(wrong_field_types_are_einval_naming_the_field)
{
	static const char text[] =
	    "{\"op\":\"topic_create\",\"id\":9,\"topic\":\"../x\","
	    "\"capacity\":\"12QiB\",\"persistent\":\"yes\","
	    "\"linger_ms\":1e300,\"handle\":null,\"bogus\":1}";
	static const char *const known[] = {
	    "op",	  "id",	       "topic",	 "capacity",
	    "persistent", "linger_ms", "handle", NULL};
	struct sb_msg_request req;
	struct sb_msg_error err = {0, ""};
	const cJSON *obj;
	int64_t n;
	bool b;

	ck_assert_int_eq(sb_msg_parse_request(text, strlen(text), &req, &err),
			 0);
	ck_assert_str_eq(req.op, "topic_create");
	ck_assert_int_eq(sb_msg_check_fields(req.root, known, &err), -EINVAL);
	ck_assert_str_eq(err.message, "unknown field \"bogus\"");
	ck_assert_int_eq(
	    sb_msg_get_bool_opt(req.root, "persistent", false, &b, &err),
	    -EINVAL);
	ck_assert_str_eq(err.message,
			 "field \"persistent\" must be true or false (got "
			 "string)");
	ck_assert_int_eq(
	    sb_msg_get_int_opt(req.root, "linger_ms", 0, 1000, 0, &n, &err),
	    -EINVAL);
	ck_assert_str_eq(err.message,
			 "field \"linger_ms\" must be from 0 to 1000 (got "
			 "1e+300)");
	ck_assert_int_eq(sb_msg_get_int(req.root, "handle", 0, 10, &n, &err),
			 -EINVAL);
	ck_assert_str_eq(err.message,
			 "field \"handle\" must be an integer (got null)");
	ck_assert_int_eq(sb_msg_get_object(req.root, "topic", &obj, &err),
			 -EINVAL);
	ck_assert_str_eq(err.message,
			 "field \"topic\" must be an object (got string)");
	ck_assert_int_eq(sb_msg_get_int(req.root, "missing", 0, 1, &n, &err),
			 -EINVAL);
	ck_assert_str_eq(err.message, "missing field \"missing\"");
	sb_msg_request_fini(&req);
}
END_TEST

/* ---- configuration: fuzz/corpus/config/bad-* --------------------------- */

/* Parses `text`, which must be refused with -EINVAL and exactly `message`;
 * the output must be untouched. */
static void config_fails(const char *text, const char *message)
{
	struct sb_config cfg;
	char err[512];

	memset(&cfg, 0x5a, sizeof(cfg));
	ck_assert_int_eq(sb_config_parse(text, strlen(text), "fuzz.json", &cfg,
					 err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, message);
	for (size_t i = 0; i < sizeof(cfg); i++) {
		ck_assert_uint_eq(((unsigned char *)&cfg)[i], 0x5a);
	}
}

START_TEST(config_seed_errors_name_the_field)
{
	config_fails(
	    "{\"limits\": {\"max_frame\": \"64KB\"}}",
	    "fuzz.json: limits.max_frame: KB, MB and GB are ambiguous: "
	    "write KiB, MiB or GiB (got \"64KB\")");
	config_fails("{\"topics\": [{\"name\": \"x\"}, {\"name\": \"x\"}]}",
		     "fuzz.json: topics[1].name: duplicate topic \"x\" (also "
		     "topics[0])");
	config_fails("{\"topics\": [{\"name\": \"a//b\", \"capacity\": "
		     "\"5KiB\"}]}",
		     "fuzz.json: topics[0].name: invalid topic name \"a//b\": "
		     "has an empty segment");
	config_fails("{\"topics\": [{\"name\": \"ab\", \"capacity\": "
		     "\"5KiB\"}]}",
		     "fuzz.json: topics[0].capacity: must be a power of two "
		     "from 4KiB to 1GiB (got 5KiB)");
	config_fails("{\"socket\": {\"mode\": \"0999\"}, \"nope\": 1}",
		     "fuzz.json: unknown field \"nope\"");
	config_fails("{\"socket\": {\"mode\": \"0999\"}}",
		     "fuzz.json: socket.mode: must be an octal string from "
		     "\"0000\" to \"0777\", such as \"0700\" (got \"0999\")");
	config_fails("{\"log_level\": \"loud\"\n  ,\"data_dir\": \"relative\"}",
		     "fuzz.json: data_dir: must be an absolute path (got "
		     "\"relative\")");
	config_fails("{\"topics\": [{\"name\": \"q\", \"mode\": \"queue\", "
		     "\"overflow\": \"drop\"}]} trailing",
		     "fuzz.json: invalid JSON at line 1, column 66 (byte 65): "
		     "data after the top-level object");
	config_fails("{\"topics\": [{\"name\": \"q\", \"mode\": \"queue\", "
		     "\"overflow\": \"drop\"}]}",
		     "fuzz.json: topics[0].overflow: must be one of \"block\", "
		     "\"overwrite\", \"reject\" (got \"drop\")");
	config_fails("{\n\"a\": \"\xc3\x28\"}",
		     "fuzz.json: invalid UTF-8 at line 2, column 7 (byte 8)");
	config_fails("[1, 2",
		     "fuzz.json: invalid JSON at line 1, column 5 (byte 4)");
}
END_TEST

/*
 * Found by fuzz/config.c in its first 60-second run (crash input
 * fuzz/corpus/config/regress-newline-in-string, the 5 bytes below): a
 * string value holding an escaped newline was copied raw into the error
 * message, which config.h promises is one line (and which the broker logs).
 * Fixed by quoting every string a message shows with sb_msg_quote().
 */
START_TEST(config_string_with_newline_stays_on_one_line)
{
	static const char in[] = {'\n', '"', '\\', 'n', '"'};
	struct sb_config cfg;
	char err[512];

	ck_assert_int_eq(sb_config_parse(in, sizeof(in), "fuzz.json", &cfg, err,
					 sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "fuzz.json: the top level must be an object (got "
			      "\"\\n\")");
	config_fails(
	    "{\"topics\":[{\"name\":\"a\\u001b\\\\\\\"b\\t\\u00e9"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}]}",
	    "fuzz.json: topics[0].name: invalid topic name "
	    "\"a\\u001b\\\\\\\"b\\t\xc3\xa9"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"...: has a character "
	    "other than letters, digits, '.', '_', '-', '/' (byte 0x1b "
	    "at position 1)");
}
END_TEST

/*
 * The same flaw on the protocol side, found by reading the code after the
 * config crash and now an oracle in fuzz/frame_message.c (input
 * fuzz/corpus/frame_message/regress-unknown-field-newline): a peer's
 * unknown field name went raw into the error message the broker logs.
 */
START_TEST(unknown_field_name_with_control_characters_is_escaped)
{
	static const char text[] = "{\"op\":\"ping\",\"id\":1,"
				   "\"a\\nb\\u001b\":1}";
	static const char *const known[] = {"op", "id", NULL};
	struct sb_msg_request req;
	struct sb_msg_error err = {0, ""};
	char buf[16];

	ck_assert_int_eq(sb_msg_parse_request(text, strlen(text), &req, &err),
			 0);
	ck_assert_int_eq(sb_msg_check_fields(req.root, known, &err), -EINVAL);
	ck_assert_str_eq(err.message, "unknown field \"a\\nb\\u001b\"");
	sb_msg_request_fini(&req);
	/* Cut to the buffer, never inside an escape or a UTF-8 sequence. */
	ck_assert_str_eq(sb_msg_quote("abcdefghijklmnop", 64, buf, sizeof(buf)),
			 "\"abcdefghij\"...");
	ck_assert_str_eq(sb_msg_quote("\xc3\xa9\xc3\xa9", 3, buf, sizeof(buf)),
			 "\"\xc3\xa9\"...");
	ck_assert_str_eq(sb_msg_quote("a\x01", 64, buf, 8), "\"a\"...");
}
END_TEST

/* ---- rings: fuzz/corpus/ring_attach/bad-* ------------------------------ */

#define RING_CAP  4096u
#define RING_DATA (SB_RING_HEADER_SIZE + RING_CAP)
#define RING_CTL  4096u

/* The target's memory: both segments fenced by PROT_NONE guard pages. */
struct fenced {
	unsigned char *base;
	unsigned char *data;
	unsigned char *ctl;
	struct sb_ring_header *hdr;
	struct sb_ring_ctl *c;
};

static void fenced_format(struct fenced *f, uint32_t mode, uint32_t overflow)
{
	struct sb_ring_config cfg = {RING_CAP, 1024, 2, mode, overflow, 0, 0};
	size_t total = 3 * 4096 + RING_DATA + RING_CTL;

	f->base = mmap(NULL, total, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(f->base, MAP_FAILED);
	f->data = f->base + 4096;
	f->ctl = f->data + RING_DATA + 4096;
	ck_assert_int_eq(mprotect(f->base, 4096, PROT_NONE), 0);
	ck_assert_int_eq(mprotect(f->data + RING_DATA, 4096, PROT_NONE), 0);
	ck_assert_int_eq(mprotect(f->ctl + RING_CTL, 4096, PROT_NONE), 0);
	ck_assert_int_eq(
	    sb_ring_format(f->data, RING_DATA, f->ctl, RING_CTL, &cfg), 0);
	f->hdr = (struct sb_ring_header *)f->data;
	f->c = (struct sb_ring_ctl *)f->ctl;
}

static void fenced_unmap(struct fenced *f)
{
	munmap(f->base, 3 * 4096 + RING_DATA + RING_CTL);
}

static int fenced_attach(struct fenced *f, struct sb_ring *ring)
{
	return sb_ring_attach(ring, f->data, RING_DATA, f->ctl, RING_CTL);
}

START_TEST(ring_identity_and_geometry_are_checked_at_attach)
{
	struct fenced f;
	struct sb_ring ring;

	fenced_format(&f, SB_RING_BROADCAST, SB_RING_BLOCK);
	ck_assert_int_eq(fenced_attach(&f, &ring), 0);
	f.hdr->ready = 0; /* "bad-not-ready" */
	ck_assert_int_eq(fenced_attach(&f, &ring), -EAGAIN);
	f.hdr->ready = SB_RING_READY;
	f.hdr->version = SB_RING_VERSION_FLAGS + 1; /* "bad-version" */
	ck_assert_int_eq(fenced_attach(&f, &ring), -EPROTO);
	f.hdr->version = SB_RING_VERSION;
	f.hdr->capacity = 8192; /* "bad-capacity": more than is mapped */
	ck_assert_int_eq(fenced_attach(&f, &ring), -EBADMSG);
	f.hdr->capacity = RING_CAP;
	f.c->slot_count = 3; /* "bad-ctl-slot-count" */
	ck_assert_int_eq(fenced_attach(&f, &ring), -EBADMSG);
	f.c->slot_count = 2;
	f.c->magic = 0;
	ck_assert_int_eq(fenced_attach(&f, &ring), -EBADMSG);
	fenced_unmap(&f);
}
END_TEST

/* "bad-positions": a valid identity over a tail that is neither aligned nor
 * within a capacity of the oldest record. */
START_TEST(ring_with_insane_positions_gives_ebadmsg)
{
	struct fenced f;
	struct sb_ring ring;
	struct sb_ring_reader rd;
	unsigned char buf[64];

	fenced_format(&f, SB_RING_BROADCAST, SB_RING_BLOCK);
	ck_assert_int_eq(fenced_attach(&f, &ring), 0);
	ck_assert_int_eq(
	    sb_ring_reader_open(&ring, SB_RING_START_EARLIEST, &rd), 0);
	f.hdr->writer_tail = RING_CAP * 3 + 8;
	f.hdr->writer_oldest = 16;
	ck_assert_int_eq(sb_ring_receive(&rd, buf, sizeof(buf), 0), -EBADMSG);
	ck_assert_int_eq(sb_ring_publish(&ring, "x", 1, 0), -EBADMSG);
	ck_assert_int_eq(sb_ring_reader_close(&rd), 0);
	fenced_unmap(&f);
}
END_TEST

Suite *fuzz_regressions_suite(void)
{
	Suite *s = suite_create("fuzz_regressions");
	TCase *tc;

	tc = tcase_create("frame");
	tcase_add_test(tc, frame_of_length_zero_is_eproto);
	tcase_add_test(tc, frame_over_the_maximum_is_emsgsize_from_the_header);
	tcase_add_test(tc, truncated_frame_is_eproto_at_eof);
	suite_add_tcase(s, tc);

	tc = tcase_create("message");
	tcase_add_test(tc, request_text_errors_name_the_byte);
	tcase_add_test(tc, request_envelope_errors_are_eproto);
	tcase_add_test(tc, malformed_replies_are_eproto);
	tcase_add_test(tc, wrong_field_types_are_einval_naming_the_field);
	suite_add_tcase(s, tc);

	tc = tcase_create("config");
	tcase_add_test(tc, config_seed_errors_name_the_field);
	tcase_add_test(tc, config_string_with_newline_stays_on_one_line);
	tcase_add_test(tc,
		       unknown_field_name_with_control_characters_is_escaped);
	suite_add_tcase(s, tc);

	tc = tcase_create("ring");
	tcase_add_test(tc, ring_identity_and_geometry_are_checked_at_attach);
	tcase_add_test(tc, ring_with_insane_positions_gives_ebadmsg);
	suite_add_tcase(s, tc);
	return s;
}
