/*
 * msgout.c - how `shmbus sub` writes each message: a line of text (or hex)
 * with an optional receive time and topic before it, a line made from a
 * --format string, one JSON object a line, the bytes as they are, or
 * length-prefixed frames that `shmbus pub --framed` reads back.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "tools/cli.h"

/* Room for "2026-12-05T13:20:24.123456Z" and then some. */
#define ISO_TIME_MAX 64

/* A receive time as "2026-12-05T13:20:24.123456Z": UTC, microseconds. */
static const char *iso_time(const struct timespec *ts, char *buf, size_t n)
{
	struct tm tm;
	char day[32];

	gmtime_r(&ts->tv_sec, &tm);
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, n, "%s.%06dZ", day, (int)(ts->tv_nsec / 1000 % 1000000));
	return buf;
}

static void put_iso_time(FILE *out, const struct timespec *ts)
{
	char buf[ISO_TIME_MAX];

	fputs(iso_time(ts, buf, sizeof(buf)), out);
}

/* The bytes as lowercase hex digits, in a malloc'd string (or NULL). */
static char *hex_string(const unsigned char *p, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	char *s = malloc(2 * len + 1);

	if (s != NULL) {
		for (size_t i = 0; i < len; i++) {
			s[2 * i] = digits[p[i] >> 4];
			s[2 * i + 1] = digits[p[i] & 15];
		}
		s[2 * len] = '\0';
	}
	return s;
}

/* The bytes as a NUL-terminated string (text only: no NUL inside). */
static char *text_string(const void *p, size_t len)
{
	char *s = malloc(len + 1);

	if (s != NULL) {
		memcpy(s, p, len);
		s[len] = '\0';
	}
	return s;
}

/* The character a --format escape stands for, or 0 for an unknown one. */
static char format_escape(char c)
{
	switch (c) {
	case 'n':
		return '\n';
	case 't':
		return '\t';
	case '\\':
		return '\\';
	default:
		return 0;
	}
}

int sb_cli_format_check(const char *format, char *why, size_t whylen)
{
	for (const char *p = format; *p != '\0'; p++) {
		if (*p == '\\' && format_escape(p[1]) == 0) {
			snprintf(why, whylen,
				 "unknown escape \"\\%c\" (\\n, \\t and \\\\ "
				 "are known)",
				 p[1] != '\0' ? p[1] : ' ');
			return -EINVAL;
		}
		if (*p == '%' &&
		    strchr("tplxsTUWP%", p[1] == '\0' ? '?' : p[1]) == NULL) {
			snprintf(
			    why, whylen,
			    "unknown field \"%%%c\" (known: %%t topic, %%p "
			    "payload, %%x hex, %%l length, %%s seq, %%T "
			    "and %%U receive time, %%W publish time, %%P "
			    "publisher, %%%% a %%)",
			    p[1] != '\0' ? p[1] : ' ');
			return -EINVAL;
		}
		if (*p == '\\' || *p == '%') {
			p++;
		}
	}
	return 0;
}

/* Writes one --format field of `m`. */
static void put_field(FILE *out, char field, const struct sb_cli_msg *m)
{
	switch (field) {
	case 't':
		fputs(m->topic, out);
		break;
	case 'p':
		sb_cli_put_payload(out, m->data, m->len, SB_CLI_TEXT);
		break;
	case 'x':
		sb_cli_put_payload(out, m->data, m->len, SB_CLI_HEX);
		break;
	case 'l':
		fprintf(out, "%zu", m->len);
		break;
	case 's':
		fprintf(out, "%llu", (unsigned long long)m->seq);
		break;
	case 'T':
		put_iso_time(out, &m->received);
		break;
	case 'U':
		fprintf(out, "%lld.%09ld", (long long)m->received.tv_sec,
			m->received.tv_nsec);
		break;
	case 'W':
		if (m->has_meta) {
			put_iso_time(out, &m->published);
		} else {
			putc('-', out);
		}
		break;
	case 'P':
		if (m->has_meta) {
			fprintf(out, "%llu", (unsigned long long)m->publisher);
		} else {
			putc('-', out);
		}
		break;
	default:
		putc(field, out); /* %% */
		break;
	}
}

/* A line made from the --format string (checked beforehand). */
static void put_formatted(FILE *out, const char *format,
			  const struct sb_cli_msg *m)
{
	for (const char *p = format; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0') {
			putc(format_escape(*++p), out);
		} else if (*p == '%' && p[1] != '\0') {
			put_field(out, *++p, m);
		} else {
			putc(*p, out);
		}
	}
}

/* One JSON object: the payload as a string when it is text, else as hex. */
static int put_json(FILE *out, const struct sb_cli_msg *m)
{
	bool text = sb_cli_is_text(m->data, m->len);
	char *payload =
	    text ? text_string(m->data, m->len) : hex_string(m->data, m->len);
	cJSON *o = cJSON_CreateObject();
	char when[ISO_TIME_MAX], pub_when[ISO_TIME_MAX];
	char *line = NULL;

	if (payload != NULL && o != NULL &&
	    cJSON_AddStringToObject(o, "topic", m->topic) != NULL &&
	    cJSON_AddNumberToObject(o, "seq", (double)m->seq) != NULL &&
	    cJSON_AddStringToObject(
		o, "received", iso_time(&m->received, when, sizeof(when))) !=
		NULL &&
	    cJSON_AddNumberToObject(o, "length", (double)m->len) != NULL &&
	    (!m->has_meta ||
	     (cJSON_AddStringToObject(o, "published",
				      iso_time(&m->published, pub_when,
					       sizeof(pub_when))) != NULL &&
	      cJSON_AddNumberToObject(o, "publisher", (double)m->publisher) !=
		  NULL)) &&
	    cJSON_AddStringToObject(o, text ? "payload" : "payload_hex",
				    payload) != NULL) {
		line = cJSON_PrintUnformatted(o);
	}
	free(payload);
	cJSON_Delete(o);
	if (line == NULL) {
		return -ENOMEM;
	}
	fprintf(out, "%s\n", line);
	cJSON_free(line);
	return 0;
}

/* A frame: the length as 4 bytes, most significant first, then the bytes. */
static void put_frame(FILE *out, const struct sb_cli_msg *m)
{
	unsigned char len[4] = {
	    (unsigned char)(m->len >> 24), (unsigned char)(m->len >> 16),
	    (unsigned char)(m->len >> 8), (unsigned char)m->len};

	fwrite(len, 1, sizeof(len), out);
	sb_cli_put_payload(out, m->data, m->len, SB_CLI_RAW);
}

/* Text or hex, after a time and the topic when asked for. */
static void put_line(FILE *out, const struct sb_cli_out *o,
		     const struct sb_cli_msg *m)
{
	if (o->stamp != SB_CLI_STAMP_NONE) {
		put_field(out, o->stamp == SB_CLI_STAMP_PUBLISH ? 'W' : 'T', m);
		putc(' ', out);
	}
	if (o->print_topic) {
		fprintf(out, "%s ", m->topic);
	}
	sb_cli_put_payload(out, m->data, m->len, o->payload);
}

int sb_cli_write_message(FILE *out, const struct sb_cli_out *o,
			 const struct sb_cli_msg *m)
{
	int r = 0;

	switch (o->style) {
	case SB_CLI_STYLE_LINE:
		put_line(out, o, m);
		break;
	case SB_CLI_STYLE_FORMAT:
		put_formatted(out, o->format, m);
		break;
	case SB_CLI_STYLE_JSON:
		r = put_json(out, m);
		break;
	case SB_CLI_STYLE_FRAMED:
		put_frame(out, m);
		break;
	}
	if (o->newline && r == 0) {
		putc('\n', out);
	}
	/* Each message goes out at once, so a pipe sees it live. */
	if (r == 0 && (fflush(out) != 0 || ferror(out))) {
		r = errno != 0 ? -errno : -EIO;
	}
	return r;
}
