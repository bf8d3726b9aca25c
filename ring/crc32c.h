/*
 * crc32c.h - CRC-32C (Castagnoli, the polynomial 0x1EDC6F41, reflected
 * 0x82F63B78), the checksum of records in a checksummed topic
 * (docs/shm-layout.md). On x86 it runs on the SSE4.2 crc32 instruction when
 * the processor has it, else on a table; both give the same values.
 */
#ifndef SB_RING_CRC32C_H
#define SB_RING_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * The CRC-32C of `len` bytes at `buf`, continuing from `crc`, the value
 * returned for the bytes before them (0 to start): the standard CRC with
 * the register set to all ones before and inverted after, so
 * sb_crc32c(0, "123456789", 9) == 0xE3069283, and the CRC of a buffer
 * taken in two pieces equals the CRC of the whole. Thread-safe.
 */
uint32_t sb_crc32c(uint32_t crc, const void *buf, size_t len);

/* The table implementation, whatever the processor: for tests. */
uint32_t sb_crc32c_portable(uint32_t crc, const void *buf, size_t len);

#endif
