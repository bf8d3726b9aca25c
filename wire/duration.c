/*
 * duration.c - the duration parser (duration.h).
 */
#include "wire/duration.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Seconds per unit of a duration suffix, or 0 for an unknown suffix. */
static double duration_unit(const char *suffix)
{
	static const struct {
		const char *name;
		double seconds;
	} units[] = {{"", 1}, {"ms", 1e-3}, {"s", 1}, {"m", 60}, {"h", 3600}};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(suffix, units[i].name) == 0) {
			return units[i].seconds;
		}
	}
	return 0;
}

int sb_duration_parse(const char *text, double *seconds)
{
	char *end;
	double v, unit;

	if (text == NULL || text[0] == '-' || isspace((unsigned char)text[0])) {
		return -EINVAL;
	}
	errno = 0;
	v = strtod(text, &end);
	unit = end == text ? 0 : duration_unit(end);
	if (unit == 0 || errno != 0 || !isfinite(v) || v < 0 ||
	    !isfinite(v * unit)) {
		return -EINVAL;
	}
	*seconds = v * unit;
	return 0;
}
