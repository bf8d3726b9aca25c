/*
 * subject.h - how shmbus topic names become NATS subjects and back
 * (docs/bridge.md, "Subjects"): the topic's '/' levels become '.' tokens
 * after the prefix "shmbus.<origin>.", and a '.' inside a level (a topic
 * name may hold one, a subject token may not) is written "%2E". '%' cannot
 * be in a topic name, so the escape is reversible and the import side
 * (sb_subject_to_topic) is the exact inverse of the export side.
 */
#ifndef SB_WIRE_SUBJECT_H
#define SB_WIRE_SUBJECT_H

#include <stdbool.h>
#include <stddef.h>

/* The first token of every subject the bridge makes by default. */
#define SB_SUBJECT_PREFIX "shmbus"

/* Longest origin name: one subject token of letters, digits, '-', '_'. */
#define SB_SUBJECT_ORIGIN_MAX 64

/* Longest subject the bridge makes or takes (a topic of
 * SB_TOPIC_NAME_MAX characters, each '.' escaped, with the prefix). */
#define SB_SUBJECT_MAX 1024

/* Checks an origin name. 0, or -EINVAL with `why` (may be NULL). */
int sb_subject_origin_check(const char *origin, char *why, size_t whylen);

/*
 * Checks a NATS subject: non-empty tokens split on '.', of printable ASCII
 * without spaces. With `wildcards`, a token "*" and a last token ">" are
 * allowed (a subscription); without, they are refused (a publish).
 * 0, or -EINVAL with `why`.
 */
int sb_subject_check(const char *subject, bool wildcards, char *why,
		     size_t whylen);

/* "shmbus.<origin>.<topic levels, escaped>" for a valid topic name and
 * origin. 0, or -ENAMETOOLONG when it does not fit in `cap` bytes. */
int sb_subject_from_topic(const char *origin, const char *topic, char *out,
			  size_t cap);

/*
 * The topic a subject names: without its first two tokens when it starts
 * with "shmbus.<origin>." and has more, else all of it; tokens become
 * levels and "%2E" (or "%2e") a '.'. 0, or -EINVAL when the result is not
 * a valid topic name (another '%' escape, a character a topic cannot hold,
 * too long), with `why`.
 */
int sb_subject_to_topic(const char *subject, char *out, size_t cap, char *why,
			size_t whylen);

#endif
