/*
 * frame_message.c - libFuzzer target for the control-protocol decoder: the
 * input is a byte stream from a peer, cut into chunks at points the input
 * chooses, fed through the frame decoder, and every decoded payload goes
 * through the request and reply parsers and the typed getters on the fields
 * the broker and the client read. It exists because these bytes come from
 * any process that can connect to the broker's socket.
 *
 * Input layout (everything optional; a short input is all stream):
 *
 *   byte 0        bits 0-1: the decoder's maximum payload (16, 256, 4096 or
 *                 65536); bits 4-7: how many chunk-length bytes follow (n)
 *   bytes 1..n    chunk lengths, used in turn (0 reads as 1)
 *   the rest      the stream
 *
 * Oracles beyond "no crash, no sanitizer report": decoding the stream in one
 * piece and in the chosen chunks yields the same payloads and the same final
 * result (the decoder's promise that chunking never matters), every payload
 * respects the maximum, and a parsed request's id survives a round trip
 * through an error reply built and parsed again.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/frame.h"
#include "wire/message.h"
#include "wire/size.h"
#include "wire/topic_name.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* More frames than this in one input are not compared (the fuzzer's inputs
 * are far smaller than what would reach it with non-empty frames). */
#define MAX_FRAMES 4096

static const size_t MAX_PAYLOADS[4] = {16, 256, 4096, 65536};

/* A decoded frame, recorded by the one-piece pass: where it lies in the
 * stream (a frame decoded from one chunk points into it). */
struct seen {
	size_t len;
	uint64_t hash;
};

static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < n; i++) {
		h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
	}
	return h;
}

/* The broker's reads of a request's op-specific fields (daemon/ops_*.c),
 * done on whatever object arrived, whatever its op says. */
static void broker_reads(const cJSON *req)
{
	static const char *const fields[] = {
	    "op",	 "id",		"version", "name",     "topic",
	    "capacity",	 "max_message", "mode",	   "overflow", "persistent",
	    "linger_ms", "start",	"handle",  NULL};
	struct sb_msg_error err;
	const char *s;
	int64_t n;
	uint64_t size;
	bool b;
	const cJSON *item;
	char why[128];

	/* The message may reach the broker's log: one line, whatever the
	 * peer named its fields. */
	if (sb_msg_check_fields(req, fields, &err) < 0) {
		for (const char *p = err.message; *p != '\0'; p++) {
			if ((unsigned char)*p < 0x20 || *p == 0x7f) {
				abort();
			}
		}
	}
	sb_msg_get_int(req, "version", 0, SB_MSG_INT_MAX, &n, &err);
	sb_msg_get_string_opt(req, "name", NULL, &s, &err);
	if (sb_msg_get_string(req, "topic", &s, &err) == 0) {
		sb_topic_name_check(s, why, sizeof(why));
	}
	item = cJSON_GetObjectItemCaseSensitive(req, "capacity");
	if (cJSON_IsString(item)) {
		sb_size_parse(item->valuestring, &size, NULL);
	}
	sb_msg_get_int_opt(req, "max_message", 0, SB_MSG_INT_MAX, 0, &n, &err);
	sb_msg_get_string_opt(req, "mode", NULL, &s, &err);
	sb_msg_get_bool_opt(req, "persistent", false, &b, &err);
	sb_msg_get_int_opt(req, "linger_ms", 0, 3600000, 0, &n, &err);
	sb_msg_get_int(req, "handle", 0, UINT32_MAX, &n, &err);
	sb_msg_get_int(req, "handle", -SB_MSG_INT_MAX, SB_MSG_INT_MAX, &n,
		       NULL);
	sb_msg_get_object_opt(req, "config", &item, &err);
	sb_msg_type_name(req);
}

/* The client's reads of a reply's result (client/bus.c, client/conn.c). */
static void client_reads(const cJSON *res)
{
	const cJSON *limits, *notices, *op;
	int64_t n;

	sb_msg_get_int(res, "handle", 0, SB_MSG_INT_MAX, &n, NULL);
	sb_msg_get_int(res, "data_size", 1, SB_MSG_INT_MAX, &n, NULL);
	sb_msg_get_int(res, "owner", 1, UINT32_MAX, &n, NULL);
	sb_msg_get_int_opt(res, "fds", 0, 4, 0, &n, NULL);
	if (sb_msg_get_object(res, "limits", &limits, NULL) == 0) {
		sb_msg_get_int(limits, "max_frame", 64, 1 << 24, &n, NULL);
	}
	/* The hello's "notices", read as take_hello() reads them. */
	notices = cJSON_GetObjectItemCaseSensitive(res, "notices");
	if (cJSON_IsArray(notices)) {
		cJSON_ArrayForEach(op, notices)
		{
			if (cJSON_IsString(op) &&
			    strcmp(op->valuestring, "close") == 0) {
				break;
			}
		}
	}
}

/* The broker's answer to a bad request: it must parse back as a reply
 * carrying the same id and code. */
static void error_round_trip(const struct sb_msg_request *req,
			     const struct sb_msg_error *err)
{
	struct sb_msg_reply rep;
	cJSON *msg;
	char *frame = NULL;
	ssize_t n;

	msg = sb_msg_reply_error(req->has_id, req->id, err->code, err->message);
	if (msg == NULL) {
		return;
	}
	n = sb_msg_to_frame(msg, 1 << 20, &frame);
	cJSON_Delete(msg);
	if (n < 0) {
		return;
	}
	if (sb_msg_parse_reply(frame + SB_FRAME_HEADER_SIZE,
			       (size_t)n - SB_FRAME_HEADER_SIZE, &rep,
			       NULL) != 0 ||
	    rep.has_id != req->has_id || (rep.has_id && rep.id != req->id) ||
	    rep.code != err->code) {
		abort();
	}
	sb_msg_reply_fini(&rep);
	free(frame);
}

static void handle_payload(const char *p, size_t len)
{
	struct sb_msg_request req;
	struct sb_msg_reply rep;
	struct sb_msg_error err;

	err.code = 0;
	err.message[0] = '\0';
	if (sb_msg_parse_request(p, len, &req, &err) == 0) {
		/* A request has an id; a notice has none, not even null. */
		if (req.root == NULL || req.op == NULL || req.op[0] == '\0' ||
		    req.has_id == req.notice ||
		    (req.notice && cJSON_GetObjectItemCaseSensitive(
				       req.root, "id") != NULL)) {
			abort();
		}
		broker_reads(req.root);
	} else {
		if (req.root != NULL || err.code != -EPROTO ||
		    memchr(err.message, '\0', sizeof(err.message)) == NULL) {
			abort();
		}
		error_round_trip(&req, &err);
	}
	sb_msg_request_fini(&req);

	if (sb_msg_parse_reply(p, len, &rep, &err) == 0) {
		if (rep.result != NULL) {
			client_reads(rep.result);
		} else if (rep.code >= 0 || rep.message == NULL) {
			abort();
		}
	} else if (rep.root != NULL) {
		abort();
	}
	sb_msg_reply_fini(&rep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct seen frames[MAX_FRAMES];
	struct sb_frame_decoder dec;
	const uint8_t *cuts = NULL;
	size_t ncuts = 0, max, nframes = 0, checked = 0;
	const char *stream, *in, *payload;
	size_t stream_len, inlen, len;
	int whole_r, r;

	if (size == 0) {
		return 0;
	}
	max = MAX_PAYLOADS[data[0] & 3];
	ncuts = data[0] >> 4;
	if (ncuts > size - 1) {
		ncuts = size - 1;
	}
	cuts = data + 1;
	stream = (const char *)data + 1 + ncuts;
	stream_len = size - 1 - ncuts;

	/* Pass 1: the whole stream as one chunk. */
	if (sb_frame_decoder_init(&dec, max) != 0) {
		abort();
	}
	in = stream;
	inlen = stream_len;
	while ((r = sb_frame_decoder_next(&dec, &in, &inlen, &payload, &len)) ==
	       1) {
		if (len == 0 || len > max) {
			abort();
		}
		if (nframes < MAX_FRAMES) {
			frames[nframes].len = len;
			frames[nframes].hash = fnv1a(payload, len);
		}
		nframes++;
		handle_payload(payload, len);
	}
	whole_r = r == 0 ? sb_frame_decoder_eof(&dec) : r;
	if (r < 0 &&
	    sb_frame_decoder_next(&dec, &in, &inlen, &payload, &len) != r) {
		abort(); /* errors are sticky */
	}
	sb_frame_decoder_fini(&dec);

	/* Pass 2: the same stream in the input's chunks; same frames. */
	sb_frame_decoder_init(&dec, max);
	r = 0;
	for (size_t off = 0, k = 0; off < stream_len && r >= 0; k++) {
		size_t chunk = ncuts != 0 ? cuts[k % ncuts] : 1;

		if (chunk == 0) {
			chunk = 1;
		}
		if (chunk > stream_len - off) {
			chunk = stream_len - off;
		}
		in = stream + off;
		inlen = chunk;
		off += chunk;
		while ((r = sb_frame_decoder_next(&dec, &in, &inlen, &payload,
						  &len)) == 1) {
			if (checked < MAX_FRAMES &&
			    (frames[checked].len != len ||
			     frames[checked].hash != fnv1a(payload, len))) {
				abort();
			}
			checked++;
		}
		if (r == 0 && inlen != 0) {
			abort(); /* 0 promises the chunk was used up */
		}
	}
	if (r == 0) {
		r = sb_frame_decoder_eof(&dec);
	}
	if (checked != nframes || r != whole_r) {
		abort();
	}
	sb_frame_decoder_fini(&dec);
	return 0;
}
