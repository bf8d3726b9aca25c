/*
 * frame.c - the control protocol's length-prefixed framing (see frame.h for
 * the wire format). The decoder validates each 4-byte header before it
 * allocates anything, so a hostile peer cannot make the broker allocate more
 * than the configured maximum per connection.
 */
#include "wire/frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * A gathering buffer larger than this is freed once its frame has been
 * handed out: an idle connection that once received one big split frame
 * should not keep that memory for the rest of its life.
 */
#define KEEP_BUFFER_MAX (64 * 1024)

int sb_frame_decoder_init(struct sb_frame_decoder *dec, size_t max_payload)
{
	memset(dec, 0, sizeof(*dec));
	if (max_payload == 0 || max_payload > SB_FRAME_MAX_PAYLOAD) {
		return -EINVAL;
	}
	dec->max = max_payload;
	return 0;
}

void sb_frame_decoder_fini(struct sb_frame_decoder *dec)
{
	free(dec->buf);
	dec->buf = NULL;
	dec->cap = 0;
}

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

static uint32_t load_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int fail(struct sb_frame_decoder *dec, int err)
{
	dec->error = err;
	return err;
}

/* Validates a complete header; on success the decoder expects the payload. */
static int accept_header(struct sb_frame_decoder *dec, const unsigned char *h)
{
	uint32_t len = load_be32(h);

	if (len == 0) {
		return fail(dec, -EPROTO);
	}
	if (len > dec->max) {
		return fail(dec, -EMSGSIZE);
	}
	dec->hdr_have = 0;
	dec->want = len;
	dec->have = 0;
	return 0;
}

/* Makes room for the whole current payload; `want` is already <= max. */
static int reserve(struct sb_frame_decoder *dec)
{
	char *nbuf;

	if (dec->cap >= dec->want) {
		return 0;
	}
	/* Nothing gathered yet, so there is nothing to carry over: a plain
	 * malloc avoids realloc's copy. */
	nbuf = malloc(dec->want);
	if (nbuf == NULL) {
		return fail(dec, -ENOMEM);
	}
	free(dec->buf);
	dec->buf = nbuf;
	dec->cap = dec->want;
	return 0;
}

int sb_frame_decoder_next(struct sb_frame_decoder *dec, const char **in,
			  size_t *inlen, const char **payload, size_t *len)
{
	size_t n;
	int err;

	if (dec->error != 0) {
		return dec->error;
	}
	/* Between frames the buffer holds at most the frame handed out by the
	 * previous call, which the caller has now released. */
	if (dec->want == 0 && dec->hdr_have == 0 &&
	    dec->cap > KEEP_BUFFER_MAX) {
		sb_frame_decoder_fini(dec);
	}

	if (dec->want == 0) {
		if (dec->hdr_have == 0 && *inlen >= SB_FRAME_HEADER_SIZE) {
			err = accept_header(dec, (const unsigned char *)*in);
			if (err < 0) {
				return err;
			}
			*in += SB_FRAME_HEADER_SIZE;
			*inlen -= SB_FRAME_HEADER_SIZE;
		} else {
			n = min_size(SB_FRAME_HEADER_SIZE - dec->hdr_have,
				     *inlen);
			if (n == 0) {
				return 0; /* empty chunk: nothing to take */
			}
			memcpy(dec->hdr + dec->hdr_have, *in, n);
			dec->hdr_have += (unsigned)n;
			*in += n;
			*inlen -= n;
			if (dec->hdr_have < SB_FRAME_HEADER_SIZE) {
				return 0;
			}
			err = accept_header(dec, dec->hdr);
			if (err < 0) {
				return err;
			}
		}
	}

	/* The common case: the whole payload is in this chunk. */
	if (dec->have == 0 && *inlen >= dec->want) {
		*payload = *in;
		*len = dec->want;
		*in += dec->want;
		*inlen -= dec->want;
		dec->want = 0;
		return 1;
	}

	if (*inlen == 0) {
		return 0;
	}
	err = reserve(dec);
	if (err < 0) {
		return err;
	}
	n = min_size(dec->want - dec->have, *inlen);
	memcpy(dec->buf + dec->have, *in, n);
	dec->have += n;
	*in += n;
	*inlen -= n;
	if (dec->have < dec->want) {
		return 0;
	}
	*payload = dec->buf;
	*len = dec->want;
	dec->want = 0;
	dec->have = 0;
	return 1;
}

int sb_frame_decoder_eof(const struct sb_frame_decoder *dec)
{
	if (dec->error != 0) {
		return dec->error;
	}
	if (dec->want != 0 || dec->hdr_have != 0) {
		return -EPROTO;
	}
	return 0;
}

int sb_frame_header(size_t len, size_t max_payload,
		    unsigned char hdr[SB_FRAME_HEADER_SIZE])
{
	if (len == 0) {
		return -EINVAL;
	}
	if (len > max_payload || len > SB_FRAME_MAX_PAYLOAD) {
		return -EMSGSIZE;
	}
	hdr[0] = (unsigned char)(len >> 24);
	hdr[1] = (unsigned char)(len >> 16);
	hdr[2] = (unsigned char)(len >> 8);
	hdr[3] = (unsigned char)len;
	return 0;
}

ssize_t sb_frame_encode(const char *json, size_t len, size_t max_payload,
			char *out, size_t cap)
{
	unsigned char hdr[SB_FRAME_HEADER_SIZE];
	int err = sb_frame_header(len, max_payload, hdr);

	if (err < 0) {
		return err;
	}
	if (cap < SB_FRAME_HEADER_SIZE || cap - SB_FRAME_HEADER_SIZE < len) {
		return -ENOSPC;
	}
	memcpy(out, hdr, SB_FRAME_HEADER_SIZE);
	memcpy(out + SB_FRAME_HEADER_SIZE, json, len);
	return (ssize_t)(len + SB_FRAME_HEADER_SIZE);
}

ssize_t sb_frame_encode_alloc(const char *json, size_t len, size_t max_payload,
			      char **out)
{
	unsigned char hdr[SB_FRAME_HEADER_SIZE];
	int err = sb_frame_header(len, max_payload, hdr);
	char *buf;

	*out = NULL;
	if (err < 0) {
		return err;
	}
	buf = malloc(len + SB_FRAME_HEADER_SIZE);
	if (buf == NULL) {
		return -ENOMEM;
	}
	memcpy(buf, hdr, SB_FRAME_HEADER_SIZE);
	memcpy(buf + SB_FRAME_HEADER_SIZE, json, len);
	*out = buf;
	return (ssize_t)(len + SB_FRAME_HEADER_SIZE);
}
