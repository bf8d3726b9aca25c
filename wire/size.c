/*
 * size.c - see size.h: the one parser and formatter of sizes such as
 * "64KiB", used by the configuration, the broker and the command line.
 */
#include "wire/size.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)

const char *sb_size_format(uint64_t size, char *buf, size_t buflen)
{
	static const struct {
		uint64_t unit;
		const char *name;
	} units[] = {{GIB, "GiB"}, {MIB, "MiB"}, {KIB, "KiB"}};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (size != 0 && size % units[i].unit == 0) {
			snprintf(buf, buflen, "%" PRIu64 "%s",
				 size / units[i].unit, units[i].name);
			return buf;
		}
	}
	snprintf(buf, buflen, "%" PRIu64, size);
	return buf;
}

int sb_size_parse(const char *text, uint64_t *out, const char **why)
{
	static const char syntax[] =
	    "must be a size such as 4096, \"64KiB\", \"1MiB\" or \"2GiB\"";
	static const struct {
		const char *name;
		unsigned shift;
	} units[] = {{"", 0}, {"B", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}};
	static const char *const ambiguous[] = {"KB", "kB", "MB", "GB"};
	const char *p = text;
	uint64_t v = 0;
	const char *dummy;

	if (why == NULL) {
		why = &dummy;
	}
	if (*p < '0' || *p > '9') {
		*why = syntax;
		return -EINVAL;
	}
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned digit = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - digit) / 10) {
			*why = "does not fit in 64 bits";
			return -EOVERFLOW;
		}
		v = v * 10 + digit;
	}
	for (size_t i = 0; i < sizeof(ambiguous) / sizeof(ambiguous[0]); i++) {
		if (strcmp(p, ambiguous[i]) == 0) {
			*why = "KB, MB and GB are ambiguous: write KiB, MiB or "
			       "GiB";
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].name) != 0) {
			continue;
		}
		if (v > (UINT64_MAX >> units[i].shift)) {
			*why = "does not fit in 64 bits";
			return -EOVERFLOW;
		}
		*out = v << units[i].shift;
		return 0;
	}
	*why = syntax;
	return -EINVAL;
}
