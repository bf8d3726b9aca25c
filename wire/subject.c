/*
 * subject.c - topic names and NATS subjects (subject.h). ASCII only, never
 * <ctype.h>, so that the mapping cannot depend on the locale.
 */
#include "wire/subject.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wire/topic_name.h"

__attribute__((format(printf, 3, 4))) static int
refuse(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static bool origin_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int sb_subject_origin_check(const char *origin, char *why, size_t whylen)
{
	size_t len =
	    origin != NULL ? strnlen(origin, SB_SUBJECT_ORIGIN_MAX + 1) : 0;

	if (len == 0 || len > SB_SUBJECT_ORIGIN_MAX) {
		return refuse(why, whylen, "must be 1 to %d characters",
			      SB_SUBJECT_ORIGIN_MAX);
	}
	for (size_t i = 0; i < len; i++) {
		if (!origin_char(origin[i])) {
			return refuse(why, whylen,
				      "has a character other than letters, "
				      "digits, '-' and '_' (byte 0x%02x at "
				      "position %zu)",
				      (unsigned char)origin[i], i);
		}
	}
	return 0;
}

/* Checks the token subject[start, end). */
static int check_token(const char *subject, size_t start, size_t end, bool last,
		       bool wildcards, char *why, size_t whylen)
{
	size_t n = end - start;

	if (n == 0) {
		return refuse(why, whylen, "has an empty token at position %zu",
			      start);
	}
	if (n == 1 && (subject[start] == '*' || subject[start] == '>')) {
		if (!wildcards) {
			return refuse(why, whylen,
				      "has a wildcard '%c' (a subject to "
				      "publish to names one subject)",
				      subject[start]);
		}
		if (subject[start] == '>' && !last) {
			return refuse(why, whylen,
				      "has '>' before its last token");
		}
		return 0;
	}
	for (size_t i = start; i < end; i++) {
		if (subject[i] <= ' ' || subject[i] > '~' ||
		    subject[i] == '*' || subject[i] == '>') {
			return refuse(why, whylen,
				      "has a character a subject token cannot "
				      "hold (byte 0x%02x at position %zu)",
				      (unsigned char)subject[i], i);
		}
	}
	return 0;
}

int sb_subject_check(const char *subject, bool wildcards, char *why,
		     size_t whylen)
{
	size_t len = subject != NULL ? strnlen(subject, SB_SUBJECT_MAX + 1) : 0;
	size_t start = 0;

	if (len == 0 || len > SB_SUBJECT_MAX) {
		return refuse(why, whylen, "must be 1 to %d characters",
			      SB_SUBJECT_MAX);
	}
	for (size_t i = 0; i <= len; i++) {
		int r;

		if (i < len && subject[i] != '.') {
			continue;
		}
		r = check_token(subject, start, i, i == len, wildcards, why,
				whylen);
		if (r < 0) {
			return r;
		}
		start = i + 1;
	}
	return 0;
}

int sb_subject_from_topic(const char *origin, const char *topic, char *out,
			  size_t cap)
{
	int n = snprintf(out, cap, "%s.%s.", SB_SUBJECT_PREFIX, origin);
	size_t at;

	if (n < 0 || (size_t)n >= cap) {
		return -ENAMETOOLONG;
	}
	at = (size_t)n;
	for (const char *p = topic; *p != '\0'; p++) {
		const char *put = *p == '/' ? "." : *p == '.' ? "%2E" : NULL;
		size_t len = put != NULL ? strlen(put) : 1;

		if (at + len >= cap) {
			return -ENAMETOOLONG;
		}
		memcpy(out + at, put != NULL ? put : p, len);
		at += len;
	}
	out[at] = '\0';
	return 0;
}

/* Where the topic starts: after "shmbus.<token>." when more follows. */
static const char *topic_part(const char *subject)
{
	size_t plen = strlen(SB_SUBJECT_PREFIX);
	const char *origin_end;

	if (strncmp(subject, SB_SUBJECT_PREFIX, plen) != 0 ||
	    subject[plen] != '.') {
		return subject;
	}
	origin_end = strchr(subject + plen + 1, '.');
	return origin_end != NULL && origin_end[1] != '\0' ? origin_end + 1
							   : subject;
}

int sb_subject_to_topic(const char *subject, char *out, size_t cap, char *why,
			size_t whylen)
{
	const char *p = topic_part(subject);
	size_t at = 0;
	char bad[128];

	for (; *p != '\0'; p++) {
		char c = *p == '.' ? '/' : *p;

		if (*p == '%') {
			if (strncmp(p, "%2E", 3) != 0 &&
			    strncmp(p, "%2e", 3) != 0) {
				return refuse(
				    why, whylen,
				    "has a '%%' that is not \"%%2E\"");
			}
			c = '.';
			p += 2;
		}
		if (at + 1 >= cap) {
			return refuse(why, whylen,
				      "makes a topic name over %zu "
				      "characters",
				      cap - 1);
		}
		out[at++] = c;
	}
	out[at] = '\0';
	if (sb_topic_name_check(out, bad, sizeof(bad)) < 0) {
		return refuse(why, whylen, "makes topic \"%s\", which %s", out,
			      bad);
	}
	return 0;
}
