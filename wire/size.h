/*
 * size.h - sizes written for people ("4096", "64KiB", "1GiB"): one parser
 * and one formatter shared by the broker's configuration, its topic_create
 * handler and the command line, so that every place accepts and prints the
 * same spellings.
 */
#ifndef SB_WIRE_SIZE_H
#define SB_WIRE_SIZE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parses a size written as a string: decimal digits with an optional unit
 * B, KiB, MiB or GiB (case-sensitive, no space), e.g. "4096", "64KiB".
 * KB/MB/GB are refused because readers disagree on whether they mean 1000
 * or 1024. Returns 0 with *out set, or -EINVAL (bad syntax) or -EOVERFLOW
 * (does not fit in 64 bits) with *out untouched and *why (may be NULL) set
 * to a static explanation. Thread-safe.
 */
int sb_size_parse(const char *text, uint64_t *out, const char **why);

/*
 * Formats a size the way sb_size_parse() reads it: with the largest binary
 * unit that divides it exactly ("64KiB", "1GiB"), else in bytes ("4097").
 * Returns `buf`.
 */
const char *sb_size_format(uint64_t size, char *buf, size_t buflen);

#endif
