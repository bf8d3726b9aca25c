/*
 * check_frame.c - the control protocol's framing: frames survive any split
 * of the byte stream, bad headers are refused from the header alone (before
 * any allocation), errors are sticky, and truncated streams are noticed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/suites.h"
#include "tests/support/testutil.h"
#include "wire/frame.h"

/* Collected output of a decoding run. */
struct collected {
	size_t count;
	char data[4096];
	size_t used;
	size_t lens[32];
};

/* Feeds one chunk, appending every completed frame to `c`. */
static int feed(struct sb_frame_decoder *dec, const char *chunk, size_t len,
		struct collected *c)
{
	const char *frame;
	size_t flen;
	int r;

	while ((r = sb_frame_decoder_next(dec, &chunk, &len, &frame, &flen)) ==
	       1) {
		ck_assert_uint_lt(c->count, 32);
		ck_assert_uint_le(c->used + flen, sizeof(c->data));
		memcpy(c->data + c->used, frame, flen);
		c->used += flen;
		c->lens[c->count++] = flen;
	}
	if (r == 0) {
		ck_assert_uint_eq(len, 0);
	}
	return r;
}

/* Three frames of 1, 7 and 40 bytes back to back; returns the stream size. */
static size_t three_frames(char *out, size_t cap)
{
	static const char *payloads[] = {
	    "1",
	    "{\"a\":1}",
	    "{\"op\":\"hello\",\"id\":1,\"client\":\"t-01234\"}",
	};
	size_t used = 0;

	for (size_t i = 0; i < 3; i++) {
		ssize_t n = sb_frame_encode(payloads[i], strlen(payloads[i]),
					    64, out + used, cap - used);
		ck_assert_int_gt(n, 0);
		used += (size_t)n;
	}
	return used;
}

static void assert_three(const struct collected *c)
{
	ck_assert_uint_eq(c->count, 3);
	ck_assert_uint_eq(c->lens[0], 1);
	ck_assert_uint_eq(c->lens[1], 7);
	ck_assert_uint_eq(c->lens[2], 40);
	ck_assert_int_eq(memcmp(c->data,
				"1{\"a\":1}{\"op\":\"hello\",\"id\":1,"
				"\"client\":\"t-01234\"}",
				48),
			 0);
}

START_TEST(worked_example_encodes_as_documented)
{
	static const unsigned char expect[] = {0x00, 0x00, 0x00, 0x07, '{', '"',
					       'a',  '"',  ':',	 '1',  '}'};
	char out[16];

	ck_assert_int_eq(sb_frame_encode("{\"a\":1}", 7, 64, out, sizeof(out)),
			 11);
	ck_assert_int_eq(memcmp(out, expect, sizeof(expect)), 0);
}
END_TEST

START_TEST(several_frames_in_one_chunk)
{
	struct sb_frame_decoder dec;
	struct collected c = {0};
	char stream[128];
	size_t n = three_frames(stream, sizeof(stream));

	ck_assert_int_eq(sb_frame_decoder_init(&dec, 64), 0);
	ck_assert_int_eq(feed(&dec, stream, n, &c), 0);
	assert_three(&c);
	ck_assert_int_eq(sb_frame_decoder_eof(&dec), 0);
	/* Nothing was split, so nothing was gathered or allocated. */
	ck_assert_ptr_null(dec.buf);
	sb_frame_decoder_fini(&dec);
}
END_TEST

START_TEST(frame_in_one_chunk_is_not_copied)
{
	struct sb_frame_decoder dec;
	char stream[32];
	const char *in = stream, *frame = NULL;
	size_t inlen, flen = 0;

	inlen = (size_t)sb_frame_encode("{}", 2, 64, stream, sizeof(stream));
	ck_assert_int_eq(sb_frame_decoder_init(&dec, 64), 0);
	ck_assert_int_eq(
	    sb_frame_decoder_next(&dec, &in, &inlen, &frame, &flen), 1);
	ck_assert_ptr_eq(frame, stream + 4);
	ck_assert_uint_eq(flen, 2);
	ck_assert_uint_eq(inlen, 0);
	sb_frame_decoder_fini(&dec);
}
END_TEST

START_TEST(split_at_every_byte_position)
{
	char stream[128];
	size_t n = three_frames(stream, sizeof(stream));

	for (size_t i = 0; i <= n; i++) {
		for (size_t j = i; j <= n; j++) {
			struct sb_frame_decoder dec;
			struct collected c = {0};

			ck_assert_int_eq(sb_frame_decoder_init(&dec, 64), 0);
			ck_assert_int_eq(feed(&dec, stream, i, &c), 0);
			ck_assert_int_eq(feed(&dec, stream + i, j - i, &c), 0);
			ck_assert_int_eq(feed(&dec, stream + j, n - j, &c), 0);
			assert_three(&c);
			ck_assert_int_eq(sb_frame_decoder_eof(&dec), 0);
			/* The gathering buffer never exceeds the maximum. */
			ck_assert_uint_le(dec.cap, 64);
			sb_frame_decoder_fini(&dec);
		}
	}
}
END_TEST

START_TEST(one_byte_at_a_time)
{
	struct sb_frame_decoder dec;
	struct collected c = {0};
	char stream[128];
	size_t n = three_frames(stream, sizeof(stream));

	ck_assert_int_eq(sb_frame_decoder_init(&dec, 40), 0);
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(feed(&dec, stream + i, 1, &c), 0);
	}
	assert_three(&c);
	/* A payload of exactly the maximum is accepted. */
	ck_assert_uint_eq(dec.cap, 40);
	sb_frame_decoder_fini(&dec);
}
END_TEST

START_TEST(big_gathering_buffer_is_released)
{
	size_t len = 100 * 1024;
	char *stream = malloc(len + 4);
	struct sb_frame_decoder dec;
	const char *in, *frame;
	size_t inlen, flen;

	ck_assert_ptr_nonnull(stream);
	memset(stream + 4, 'x', len);
	ck_assert_int_eq(sb_frame_header(len, len, (unsigned char *)stream), 0);
	ck_assert_int_eq(sb_frame_decoder_init(&dec, len), 0);
	in = stream;
	inlen = 1000;
	ck_assert_int_eq(
	    sb_frame_decoder_next(&dec, &in, &inlen, &frame, &flen), 0);
	inlen = len + 4 - 1000;
	ck_assert_int_eq(
	    sb_frame_decoder_next(&dec, &in, &inlen, &frame, &flen), 1);
	ck_assert_uint_eq(flen, len);
	ck_assert_ptr_eq(frame, dec.buf);
	/* The next call releases the frame; a big buffer is not kept. */
	ck_assert_int_eq(
	    sb_frame_decoder_next(&dec, &in, &inlen, &frame, &flen), 0);
	ck_assert_ptr_null(dec.buf);
	sb_frame_decoder_fini(&dec);
	free(stream);
}
END_TEST

/* An empty chunk (read() returned nothing new) needs input, harmlessly,
 * even with a NULL pointer, and leaves a half-read header intact. */
START_TEST(empty_chunk_needs_input)
{
	struct sb_frame_decoder dec;
	const char *in = NULL, *payload;
	const char frame[] = {0, 0, 0, 2, '{', '}'};
	size_t inlen = 0, len;

	ck_assert_int_eq(sb_frame_decoder_init(&dec, 64), 0);
	ck_assert_int_eq(
	    sb_frame_decoder_next(&dec, &in, &inlen, &payload, &len), 0);
	in = frame;
	inlen = 2;
	ck_assert_int_eq(
	    sb_frame_decoder_next(&dec, &in, &inlen, &payload, &len), 0);
	in = NULL;
	inlen = 0;
	ck_assert_int_eq(
	    sb_frame_decoder_next(&dec, &in, &inlen, &payload, &len), 0);
	in = frame + 2;
	inlen = 4;
	ck_assert_int_eq(
	    sb_frame_decoder_next(&dec, &in, &inlen, &payload, &len), 1);
	ck_assert_uint_eq(len, 2);
	ck_assert_int_eq(memcmp(payload, "{}", 2), 0);
	sb_frame_decoder_fini(&dec);
}
END_TEST

START_TEST(zero_length_is_a_protocol_error_and_sticks)
{
	static const char bad[] = {0, 0, 0, 0};
	struct sb_frame_decoder dec;
	struct collected c = {0};
	char good[16];
	size_t n = (size_t)sb_frame_encode("{}", 2, 64, good, sizeof(good));

	ck_assert_int_eq(sb_frame_decoder_init(&dec, 64), 0);
	ck_assert_int_eq(feed(&dec, bad, sizeof(bad), &c), -EPROTO);
	/* The stream cannot be resynchronised: good input changes nothing. */
	ck_assert_int_eq(feed(&dec, good, n, &c), -EPROTO);
	ck_assert_int_eq(sb_frame_decoder_eof(&dec), -EPROTO);
	ck_assert_uint_eq(c.count, 0);
	sb_frame_decoder_fini(&dec);
}
END_TEST

START_TEST(over_max_is_refused)
{
	struct sb_frame_decoder dec;
	struct collected c = {0};
	char stream[128];

	ck_assert_int_eq(sb_frame_encode("{\"a\":1}", 7, 64, stream, 128), 11);
	ck_assert_int_eq(sb_frame_decoder_init(&dec, 6), 0);
	ck_assert_int_eq(feed(&dec, stream, 11, &c), -EMSGSIZE);
	ck_assert_int_eq(feed(&dec, stream, 11, &c), -EMSGSIZE);
	ck_assert_uint_eq(c.count, 0);
	ck_assert_ptr_null(dec.buf);
	sb_frame_decoder_fini(&dec);
}
END_TEST

START_TEST(huge_length_refused_from_header_alone)
{
	static const char hdr[] = {(char)0xff, (char)0xff, (char)0xff,
				   (char)0xff};
	struct sb_frame_decoder dec;
	struct collected c = {0};

	/* Whole header at once. */
	ck_assert_int_eq(sb_frame_decoder_init(&dec, 64 * 1024), 0);
	ck_assert_int_eq(feed(&dec, hdr, 4, &c), -EMSGSIZE);
	ck_assert_ptr_null(dec.buf);
	ck_assert_uint_eq(dec.cap, 0);
	sb_frame_decoder_fini(&dec);

	/* Header trickled in: refused on its fourth byte, nothing allocated. */
	ck_assert_int_eq(sb_frame_decoder_init(&dec, 64 * 1024), 0);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_eq(feed(&dec, hdr + i, 1, &c), 0);
	}
	ck_assert_int_eq(feed(&dec, hdr + 3, 1, &c), -EMSGSIZE);
	ck_assert_ptr_null(dec.buf);
	sb_frame_decoder_fini(&dec);
}
END_TEST

START_TEST(truncated_stream_is_reported_at_eof)
{
	char stream[128];
	size_t n = three_frames(stream, sizeof(stream));

	/* Cut anywhere that is not a frame boundary: EOF must say -EPROTO. */
	for (size_t cut = 0; cut <= n; cut++) {
		struct sb_frame_decoder dec;
		struct collected c = {0};
		int boundary = cut == 0 || cut == 5 || cut == 16 || cut == n;

		ck_assert_int_eq(sb_frame_decoder_init(&dec, 64), 0);
		ck_assert_int_eq(feed(&dec, stream, cut, &c), 0);
		ck_assert_int_eq(sb_frame_decoder_eof(&dec),
				 boundary ? 0 : -EPROTO);
		sb_frame_decoder_fini(&dec);
	}
}
END_TEST

START_TEST(init_rejects_bad_maximum)
{
	struct sb_frame_decoder dec;

	ck_assert_int_eq(sb_frame_decoder_init(&dec, 0), -EINVAL);
	ck_assert_int_eq(
	    sb_frame_decoder_init(&dec, (size_t)SB_FRAME_MAX_PAYLOAD + 1),
	    -EINVAL);
	ck_assert_int_eq(sb_frame_decoder_init(&dec, SB_FRAME_MAX_PAYLOAD), 0);
	sb_frame_decoder_fini(&dec);
	/* fini twice is harmless. */
	sb_frame_decoder_fini(&dec);
}
END_TEST

START_TEST(encoder_errors)
{
	unsigned char hdr[4];
	char out[16];
	char *frame = (char *)"not null";

	ck_assert_int_eq(sb_frame_encode("", 0, 64, out, sizeof(out)), -EINVAL);
	ck_assert_int_eq(sb_frame_encode("{\"a\":1}", 7, 6, out, sizeof(out)),
			 -EMSGSIZE);
	ck_assert_int_eq(sb_frame_encode("{\"a\":1}", 7, 64, out, 10), -ENOSPC);
	ck_assert_int_eq(sb_frame_encode("{\"a\":1}", 7, 64, out, 3), -ENOSPC);
	ck_assert_int_eq(sb_frame_encode("{\"a\":1}", 7, 64, out, 11), 11);
	ck_assert_int_eq(sb_frame_header(0, 64, hdr), -EINVAL);
	ck_assert_int_eq(sb_frame_header(65, 64, hdr), -EMSGSIZE);
	ck_assert_int_eq(sb_frame_header((size_t)UINT32_MAX + 1, SIZE_MAX, hdr),
			 -EMSGSIZE);
	ck_assert_int_eq(sb_frame_header(0x01020304, SIZE_MAX, hdr), 0);
	ck_assert_int_eq(hdr[0], 1);
	ck_assert_int_eq(hdr[3], 4);

	ck_assert_int_eq(sb_frame_encode_alloc("{\"a\":1}", 7, 6, &frame),
			 -EMSGSIZE);
	ck_assert_ptr_null(frame);
	ck_assert_int_eq(sb_frame_encode_alloc("", 0, 6, &frame), -EINVAL);
	ck_assert_int_eq(sb_frame_encode_alloc("{\"a\":1}", 7, 7, &frame), 11);
	ck_assert_int_eq(memcmp(frame, "\0\0\0\7{\"a\":1}", 11), 0);
	free(frame);
}
END_TEST

/*
 * The blocking client's loop from frame.h, over a real socket with a tiny
 * read buffer, against a writer process that sends frames of many sizes in
 * odd-sized writes.
 */
START_TEST(blocking_read_loop_over_a_socket)
{
	enum { FRAMES = 200 };
	int sv[2];
	pid_t pid;
	struct sb_frame_decoder dec;
	char rbuf[7];
	const char *in = rbuf, *frame;
	size_t inlen = 0, flen;
	int got = 0;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char payload[600], out[700];

		close(sv[0]);
		for (int i = 0; i < FRAMES; i++) {
			size_t len = 1 + (size_t)(i * 37) % 599, off = 0;
			ssize_t n;

			sbt_fill_pattern(payload, len, (uint32_t)i);
			n = sb_frame_encode(payload, len, 600, out,
					    sizeof(out));
			while (off < (size_t)n) {
				size_t step = 1 + (off + (size_t)i) % 13;
				ssize_t w;

				if (step > (size_t)n - off) {
					step = (size_t)n - off;
				}
				w = write(sv[1], out + off, step);
				if (w <= 0) {
					_exit(1);
				}
				off += (size_t)w;
			}
		}
		_exit(0);
	}
	close(sv[1]);
	ck_assert_int_eq(sb_frame_decoder_init(&dec, 600), 0);
	for (;;) {
		int r = sb_frame_decoder_next(&dec, &in, &inlen, &frame, &flen);

		if (r == 1) {
			ck_assert_uint_eq(flen, 1 + (size_t)(got * 37) % 599);
			ck_assert(
			    sbt_check_pattern(frame, flen, (uint32_t)got));
			got++;
			continue;
		}
		ck_assert_int_eq(r, 0);
		ssize_t n = read(sv[0], rbuf, sizeof(rbuf));
		ck_assert_int_ge(n, 0);
		if (n == 0) {
			ck_assert_int_eq(sb_frame_decoder_eof(&dec), 0);
			break;
		}
		in = rbuf;
		inlen = (size_t)n;
	}
	ck_assert_int_eq(got, FRAMES);
	ck_assert_int_eq(sbt_wait(pid), 0);
	close(sv[0]);
	sb_frame_decoder_fini(&dec);
}
END_TEST

Suite *frame_suite(void)
{
	Suite *s = suite_create("frame");
	TCase *tc;

	tc = tcase_create("encode");
	tcase_add_test(tc, worked_example_encodes_as_documented);
	tcase_add_test(tc, encoder_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("decode");
	tcase_add_test(tc, several_frames_in_one_chunk);
	tcase_add_test(tc, frame_in_one_chunk_is_not_copied);
	tcase_add_test(tc, split_at_every_byte_position);
	tcase_add_test(tc, one_byte_at_a_time);
	tcase_add_test(tc, big_gathering_buffer_is_released);
	tcase_add_test(tc, init_rejects_bad_maximum);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_test(tc, empty_chunk_needs_input);
	tcase_add_test(tc, zero_length_is_a_protocol_error_and_sticks);
	tcase_add_test(tc, over_max_is_refused);
	tcase_add_test(tc, huge_length_refused_from_header_alone);
	tcase_add_test(tc, truncated_stream_is_reported_at_eof);
	suite_add_tcase(s, tc);

	tc = tcase_create("socket");
	tcase_add_test(tc, blocking_read_loop_over_a_socket);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}
