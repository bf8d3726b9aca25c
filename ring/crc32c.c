/*
 * crc32c.c - CRC-32C, on the SSE4.2 crc32 instruction where the processor
 * has it (chosen once, at the first call), else one table lookup a byte.
 */
#include "ring/crc32c.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define CRC32C_POLY 0x82F63B78u /* 0x1EDC6F41, bit-reversed */

static uint32_t crc_table[256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void build_table(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++) {
			c = (c & 1u) != 0 ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		}
		crc_table[i] = c;
	}
}

/* The register in, the register out: no inversion here. */
static uint32_t crc_bytes_table(uint32_t c, const unsigned char *p, size_t n)
{
	pthread_once(&crc_table_once, build_table);
	while (n-- > 0) {
		c = crc_table[(c ^ *p++) & 0xFFu] ^ (c >> 8);
	}
	return c;
}

uint32_t sb_crc32c_portable(uint32_t crc, const void *buf, size_t len)
{
	return ~crc_bytes_table(~crc, buf, len);
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static inline uint64_t
crc_word_sse42(uint64_t c, const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v)); /* any alignment */
	return __builtin_ia32_crc32di(c, v);
}

/* Eight bytes an instruction, four words a turn (a record of a 64-byte
 * message is 80 bytes: two turns and two words). */
__attribute__((target("sse4.2"))) static uint32_t
crc_bytes_sse42(uint32_t crc, const unsigned char *p, size_t n)
{
	const unsigned char *end = p + n;
	uint64_t c = crc;

	for (; end - p >= 32; p += 32) {
		c = crc_word_sse42(c, p);
		c = crc_word_sse42(c, p + 8);
		c = crc_word_sse42(c, p + 16);
		c = crc_word_sse42(c, p + 24);
	}
	for (; end - p >= 8; p += 8) {
		c = crc_word_sse42(c, p);
	}
	crc = (uint32_t)c;
	for (; p < end; p++) {
		crc = __builtin_ia32_crc32qi(crc, *p);
	}
	return crc;
}

enum { CRC_UNKNOWN, CRC_TABLE, CRC_SSE42 };
static _Atomic int crc_impl = CRC_UNKNOWN;

static int choose_impl(void)
{
	int impl;

	__builtin_cpu_init();
	impl = __builtin_cpu_supports("sse4.2") ? CRC_SSE42 : CRC_TABLE;
	/* relaxed: every thread that races here stores the same value. */
	atomic_store_explicit(&crc_impl, impl, memory_order_relaxed);
	return impl;
}

uint32_t sb_crc32c(uint32_t crc, const void *buf, size_t len)
{
	int impl = atomic_load_explicit(&crc_impl, memory_order_relaxed);

	if (impl == CRC_UNKNOWN) {
		impl = choose_impl();
	}
	if (impl == CRC_SSE42) {
		return ~crc_bytes_sse42(~crc, buf, len);
	}
	return ~crc_bytes_table(~crc, buf, len);
}
#else
uint32_t sb_crc32c(uint32_t crc, const void *buf, size_t len)
{
	return sb_crc32c_portable(crc, buf, len);
}
#endif
