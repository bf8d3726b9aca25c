/*
 * frame.h - framing of the control protocol on a stream Unix socket: each
 * frame is a 4-byte big-endian payload length followed by that many bytes of
 * UTF-8 JSON. Both the broker (libuv) and the blocking client decode with the
 * same incremental decoder, so the wire rules live in exactly one place.
 *
 * Wire format, with a worked example (the 7-byte payload {"a":1}):
 *
 *     0        4                     4+len
 *     +--------+----------------------+
 *     | len BE | payload (JSON text)  |     len: 1 .. max, never 0
 *     +--------+----------------------+
 *     00 00 00 07 7b 22 61 22 3a 31 7d
 */
#ifndef SB_WIRE_FRAME_H
#define SB_WIRE_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Size of the length prefix. */
#define SB_FRAME_HEADER_SIZE 4

/* Largest payload the 32-bit length prefix can describe. */
#define SB_FRAME_MAX_PAYLOAD UINT32_MAX

/*
 * Incremental frame decoder. It consumes the caller's input chunks in place:
 * a frame that lies wholly inside one chunk is handed out as a pointer into
 * that chunk (no copy); only a frame split across chunks is gathered into
 * the decoder's own buffer, which is sized from the validated header and so
 * never exceeds the maximum payload. Every input byte is copied at most once,
 * whatever the chunk boundaries.
 *
 * The fields are public only so that the struct can be embedded (one per
 * connection); treat them as private.
 *
 * Use from a libuv read callback (the chunk is libuv's buffer):
 *
 *     const char *in = buf->base, *frame;
 *     size_t inlen = (size_t)nread, framelen;
 *     while ((r = sb_frame_decoder_next(&c->dec, &in, &inlen,
 *                                       &frame, &framelen)) == 1) {
 *             handle(c, frame, framelen);
 *     }
 *     if (r < 0) { close the connection }
 *
 * Use from a blocking client (a read buffer kept with the decoder; leftover
 * input stays there for the next call):
 *
 *     for (;;) {
 *             r = sb_frame_decoder_next(&dec, &in, &inlen, &frame, &len);
 *             if (r != 0) { return r; }            (a frame, or an error)
 *             n = read(fd, rbuf, sizeof(rbuf));
 *             if (n == 0) { return sb_frame_decoder_eof(&dec); }
 *             in = rbuf; inlen = (size_t)n;
 *     }
 *
 * Not thread-safe: one decoder belongs to one connection's reader.
 */
struct sb_frame_decoder {
	size_t max;	   /* largest accepted payload */
	int error;	   /* 0, or the sticky negative errno */
	unsigned hdr_have; /* header bytes gathered so far (0..4) */
	unsigned char hdr[SB_FRAME_HEADER_SIZE];
	size_t want; /* payload length of the current frame, 0 in header */
	size_t have; /* payload bytes gathered into buf so far */
	char *buf;   /* gathering buffer for split frames, or NULL */
	size_t cap;  /* allocated size of buf (<= max) */
};

/*
 * Prepares `dec` to accept payloads of 1..max_payload bytes. Allocates
 * nothing (the buffer comes only when a split frame needs it).
 * Returns 0, or -EINVAL if max_payload is 0 or above SB_FRAME_MAX_PAYLOAD.
 */
int sb_frame_decoder_init(struct sb_frame_decoder *dec, size_t max_payload);

/* Frees the decoder's buffer. Safe on a zeroed or already-finished decoder. */
void sb_frame_decoder_fini(struct sb_frame_decoder *dec);

/*
 * Consumes input from *in (*inlen bytes; advanced past what was consumed)
 * until one frame is complete.
 *
 * Returns 1 with *payload and *len set to the frame's payload (never
 * NUL-terminated). The pointer is into the caller's chunk or into the
 * decoder, and stays valid until the next call on this decoder or until the
 * caller reuses the chunk, whichever comes first. Unconsumed input remains
 * in *in / *inlen: call again to get the next frame.
 *
 * Returns 0 when the input is used up without completing a frame (any
 * partial frame is kept in the decoder; *inlen is then 0).
 *
 * Errors, which are sticky (every later call returns the same code, because
 * the stream can no longer be resynchronised and must be closed):
 *   -EPROTO    a header declares a length of 0;
 *   -EMSGSIZE  a header declares more than the maximum payload; detected
 *              from the 4 header bytes alone, before any allocation;
 *   -ENOMEM    the buffer for a split frame could not be allocated.
 */
int sb_frame_decoder_next(struct sb_frame_decoder *dec, const char **in,
			  size_t *inlen, const char **payload, size_t *len);

/*
 * Tells the decoder the peer closed the stream. Returns 0 if the stream
 * ended on a frame boundary, -EPROTO if a frame was cut short (truncated
 * input), or the sticky error.
 */
int sb_frame_decoder_eof(const struct sb_frame_decoder *dec);

/*
 * Writes the header for a payload of `len` bytes into `hdr`: for writing
 * the header and the payload as two buffers (writev, uv_write) without
 * copying the payload. Returns 0, -EINVAL if len is 0 (the protocol forbids
 * empty frames), or -EMSGSIZE if len > max_payload.
 */
int sb_frame_header(size_t len, size_t max_payload,
		    unsigned char hdr[SB_FRAME_HEADER_SIZE]);

/*
 * Encodes `json` (`len` bytes) as a frame into the caller's buffer `out` of
 * `cap` bytes. Returns the frame size (len + 4), or -EINVAL (len is 0),
 * -EMSGSIZE (len > max_payload), -ENOSPC (cap < len + 4; nothing written).
 */
ssize_t sb_frame_encode(const char *json, size_t len, size_t max_payload,
			char *out, size_t cap);

/*
 * As sb_frame_encode(), into a malloc'd buffer stored in *out (the caller
 * frees it). Returns the frame size, or -EINVAL, -EMSGSIZE, -ENOMEM; *out is
 * NULL on failure.
 */
ssize_t sb_frame_encode_alloc(const char *json, size_t len, size_t max_payload,
			      char **out);

#endif
