/*
 * topic_name.c - validation of topic names (the rule is stated in
 * topic_name.h). Only ASCII ranges are tested, never <ctype.h>, so the
 * answer cannot depend on the process's locale.
 */
#include "wire/topic_name.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static bool allowed_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
	       c == '/';
}

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

int sb_topic_name_check(const char *name, char *why, size_t whylen)
{
	size_t len, seg_start = 0;

	if (name == NULL || name[0] == '\0') {
		return refuse(why, whylen, "must not be empty");
	}
	len = strnlen(name, SB_TOPIC_NAME_MAX + 1);
	if (len > SB_TOPIC_NAME_MAX) {
		return refuse(why, whylen, "is longer than %d characters",
			      SB_TOPIC_NAME_MAX);
	}
	for (size_t i = 0; i < len; i++) {
		if (!allowed_char(name[i])) {
			return refuse(why, whylen,
				      "has a character other than letters, "
				      "digits, '.', '_', '-', '/' (byte 0x%02x "
				      "at position %zu)",
				      (unsigned char)name[i], i);
		}
	}
	for (size_t i = 0; i <= len; i++) {
		size_t seg_len;

		if (i < len && name[i] != '/') {
			continue;
		}
		seg_len = i - seg_start;
		if (seg_len == 0) {
			return refuse(why, whylen, "has an empty segment");
		}
		if (seg_len == 1 && name[seg_start] == '.') {
			return refuse(why, whylen, "has a \".\" segment");
		}
		if (seg_len == 2 && name[seg_start] == '.' &&
		    name[seg_start + 1] == '.') {
			return refuse(why, whylen, "has a \"..\" segment");
		}
		seg_start = i + 1;
	}
	return 0;
}

bool sb_topic_name_valid(const char *name)
{
	return sb_topic_name_check(name, NULL, 0) == 0;
}

/* ---- patterns ------------------------------------------------------------ */

/* Whether the level [s, s + n) is a wildcard: 1 for one level ("*" or
 * MQTT's "+"), 2 for the rest ("> " or MQTT's "#"), 0 for a plain one. */
static int wildcard(const char *s, size_t n)
{
	if (n != 1) {
		return 0;
	}
	return s[0] == '*' || s[0] == '+'   ? 1
	       : s[0] == '>' || s[0] == '#' ? 2
					    : 0;
}

int sb_topic_pattern_check(const char *pattern, char *why, size_t whylen)
{
	char plain[SB_TOPIC_NAME_MAX + 1];
	size_t len, start = 0;

	if (pattern == NULL || pattern[0] == '\0') {
		return refuse(why, whylen, "must not be empty");
	}
	len = strnlen(pattern, SB_TOPIC_NAME_MAX + 1);
	if (len > SB_TOPIC_NAME_MAX) {
		return refuse(why, whylen, "is longer than %d characters",
			      SB_TOPIC_NAME_MAX);
	}
	/* Each wildcard level stands for a plain one ("x") in the name
	 * check, which then judges everything else. */
	memcpy(plain, pattern, len + 1);
	for (size_t i = 0; i <= len; i++) {
		int w;

		if (i < len && pattern[i] != '/') {
			continue;
		}
		w = wildcard(pattern + start, i - start);
		if (w == 2 && i != len) {
			return refuse(why, whylen,
				      "has '%c' before its last level (it "
				      "stands for all the levels after it)",
				      pattern[start]);
		}
		if (w != 0) {
			plain[start] = 'x';
		}
		start = i + 1;
	}
	return sb_topic_name_check(plain, why, whylen);
}

bool sb_topic_is_pattern(const char *s)
{
	size_t start = 0, len = strlen(s);

	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '/') {
			if (wildcard(s + start, i - start) != 0) {
				return true;
			}
			start = i + 1;
		}
	}
	return false;
}

bool sb_topic_pattern_match(const char *pattern, const char *name)
{
	const char *p = pattern, *n = name;

	for (;;) {
		size_t pl = strcspn(p, "/"), nl = strcspn(n, "/");
		int w = wildcard(p, pl);

		if (w == 2) {
			return *n != '\0'; /* one level or more */
		}
		if (*n == '\0' ||
		    (w == 0 && (pl != nl || memcmp(p, n, pl) != 0))) {
			return false;
		}
		p += pl;
		n += nl;
		if (*p == '\0' || *n == '\0') {
			return *p == '\0' && *n == '\0';
		}
		p++;
		n++;
	}
}
