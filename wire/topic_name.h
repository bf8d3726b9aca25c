/*
 * topic_name.h - the one rule for valid topic names, shared by the client
 * (to refuse a bad name before asking the broker), the broker's protocol
 * handlers and the configuration parser, so that all three agree.
 */
#ifndef SB_WIRE_TOPIC_NAME_H
#define SB_WIRE_TOPIC_NAME_H

#include <stdbool.h>
#include <stddef.h>

/* Longest valid topic name, in bytes (all valid characters are ASCII). */
#define SB_TOPIC_NAME_MAX 200

/*
 * Checks `name` (NUL-terminated; NULL is invalid): 1 to SB_TOPIC_NAME_MAX
 * characters of ASCII letters, digits and `.`, `_`, `-`, `/`; split on `/`,
 * no segment is empty, "." or "..". The "." segment is refused too (beyond
 * the design's rule) because "a/./b" would otherwise name the same file as
 * "a/b" under the broker's data directory.
 *
 * Returns 0, or -EINVAL with a short description of the first problem
 * written to `why` (e.g. `has an empty segment`) if why is not NULL.
 * Thread-safe.
 */
int sb_topic_name_check(const char *name, char *why, size_t whylen);

/* sb_topic_name_check() without the description. */
bool sb_topic_name_valid(const char *name);

/*
 * Patterns name several topics: levels (split on `/`) that are "*" match
 * any one level, and a last level ">" matches one level or more, as in
 * NATS; MQTT's "+" and "#" are taken as the same ("#" too needs at least
 * one level: "a/#" does not match "a"). None of these characters can be in
 * a topic name, so a pattern without them is a plain name. Checks
 * `pattern` as sb_topic_name_check() does a name; -EINVAL with `why`.
 */
int sb_topic_pattern_check(const char *pattern, char *why, size_t whylen);

/* Whether `s` has a wildcard level (it may still be invalid). */
bool sb_topic_is_pattern(const char *s);

/* Whether the valid name `name` matches the valid pattern `pattern`. */
bool sb_topic_pattern_match(const char *pattern, const char *name);

#endif
