/*
 * duration.h - durations written for people ("250ms", "2s", "1.5m", "1h";
 * a bare number is seconds): one parser for the command line and the
 * bridge's configuration, so that both accept the same spellings.
 */
#ifndef SB_WIRE_DURATION_H
#define SB_WIRE_DURATION_H

/*
 * Parses `text`: a non-negative decimal number and an optional unit (ms,
 * s, m, h; none means seconds), no space. Returns 0 with *seconds set, or
 * -EINVAL with *seconds untouched. Thread-safe.
 */
int sb_duration_parse(const char *text, double *seconds);

#endif
