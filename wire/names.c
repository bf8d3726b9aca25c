/*
 * names.c - the one table of the names of topic modes and overflow
 * policies (names.h).
 */
#include "wire/names.h"

#include <stddef.h>
#include <string.h>

/* names[v - 1] is the name of value v. */
const char *const sb_mode_names[] = {"broadcast", "queue", NULL};
const char *const sb_overflow_names[] = {"block", "overwrite", "reject", NULL};

/* Names in a NULL-terminated list, the NULL not counted. */
#define COUNT(names) (sizeof(names) / sizeof((names)[0]) - 1)

static const char *name_of(const char *const *names, size_t count, unsigned v)
{
	return v >= 1 && v <= count ? names[v - 1] : NULL;
}

static unsigned value_of(const char *const *names, const char *name)
{
	for (unsigned i = 0; name != NULL && names[i] != NULL; i++) {
		if (strcmp(name, names[i]) == 0) {
			return i + 1;
		}
	}
	return 0;
}

const char *sb_mode_name(unsigned mode)
{
	return name_of(sb_mode_names, COUNT(sb_mode_names), mode);
}

const char *sb_overflow_name(unsigned overflow)
{
	return name_of(sb_overflow_names, COUNT(sb_overflow_names), overflow);
}

enum sb_mode sb_mode_parse(const char *name)
{
	return (enum sb_mode)value_of(sb_mode_names, name);
}

enum sb_overflow sb_overflow_parse(const char *name)
{
	return (enum sb_overflow)value_of(sb_overflow_names, name);
}
