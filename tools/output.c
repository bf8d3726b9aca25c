/*
 * output.c - how `shmbus` shows things: messages as text, escaped, hex or
 * raw; sizes and rates for people; aligned tables; and tolerant readers of
 * the broker's JSON replies for display. One place, so that every
 * subcommand prints the same way.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

/* ---- reading replies --------------------------------------------------- */

uint64_t sb_cli_json_u64(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	/* The protocol keeps integers within 2^53, which a double holds. */
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 ||
	    v->valuedouble > 9007199254740991.0) {
		return 0;
	}
	return (uint64_t)v->valuedouble;
}

const char *sb_cli_json_str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(v) ? v->valuestring : "?";
}

int sb_cli_json_bool(const cJSON *obj, const char *key)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

int sb_cli_print_json(const char *cmd, const cJSON *json)
{
	char *text = cJSON_Print(json);

	if (text == NULL) {
		return sb_cli_fail(SB_EXIT_ERROR, cmd, "out of memory");
	}
	puts(text);
	cJSON_free(text);
	return 0;
}

/* ---- messages ---------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (n bytes left) that encodes no
 * control character, or 0. */
static size_t text_char(const unsigned char *p, size_t n)
{
	uint32_t cp;
	size_t len;

	if (p[0] < 0x80) {
		return (p[0] >= 0x20 && p[0] != 0x7f) || p[0] == '\t' ? 1 : 0;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1fu;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0fu;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07u;
	} else {
		return 0;
	}
	if (n < len) {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80) {
			return 0;
		}
		cp = cp << 6 | (p[i] & 0x3fu);
	}
	/* Overlong forms, surrogates, beyond U+10FFFF, and the C1 controls
	 * (which terminals act on) are not text. */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ||
	    (cp >= 0x80 && cp <= 0x9f)) {
		return 0;
	}
	return len;
}

bool sb_cli_is_text(const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len;) {
		size_t n = text_char(p + i, len - i);

		if (n == 0) {
			return false;
		}
		i += n;
	}
	return true;
}

/* Writes `len` bytes C-escaped: printable ASCII as is, \\, \n, \r, \t,
 * and \xHH for every other byte. */
static void put_escaped(FILE *out, const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		switch (p[i]) {
		case '\\':
			fputs("\\\\", out);
			break;
		case '\n':
			fputs("\\n", out);
			break;
		case '\r':
			fputs("\\r", out);
			break;
		case '\t':
			fputs("\\t", out);
			break;
		default:
			if (p[i] >= 0x20 && p[i] < 0x7f) {
				putc(p[i], out);
			} else {
				fprintf(out, "\\x%02x", p[i]);
			}
			break;
		}
	}
}

void sb_cli_put_payload(FILE *out, const void *data, size_t len,
			enum sb_cli_format format)
{
	const unsigned char *p = data;

	switch (format) {
	case SB_CLI_RAW:
		if (len > 0) {
			fwrite(p, 1, len, out);
		}
		break;
	case SB_CLI_HEX:
		for (size_t i = 0; i < len; i++) {
			fprintf(out, "%02x", p[i]);
		}
		break;
	case SB_CLI_TEXT:
		if (sb_cli_is_text(p, len)) {
			if (len > 0) {
				fwrite(p, 1, len, out);
			}
		} else {
			put_escaped(out, p, len);
		}
		break;
	}
}

/* ---- sizes and rates --------------------------------------------------- */

const char *sb_cli_human_size(double bytes, char *buf, size_t buflen)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
	double v = bytes;
	int u = -1;

	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	if (u < 0) {
		snprintf(buf, buflen, "%.0f", bytes);
	} else if (v == (double)(uint64_t)v) {
		snprintf(buf, buflen, "%.0f%s", v, units[u]);
	} else {
		snprintf(buf, buflen, "%.1f%s", v, units[u]);
	}
	return buf;
}

const char *sb_cli_human_rate(double per_second, char *buf, size_t buflen)
{
	char n[32];

	if (per_second < 0) {
		snprintf(buf, buflen, "-");
	} else {
		snprintf(buf, buflen, "%s/s",
			 sb_cli_human_size(per_second, n, sizeof(n)));
	}
	return buf;
}

/* A topic's fill: what it holds as a share of its capacity, or "-" for a
 * broadcast topic without subscribers, which keeps nothing for anyone
 * (its ring only holds what new subscribers will never read). */
const char *sb_cli_fill(const char *mode, uint64_t subscribers, uint64_t used,
			uint64_t capacity, char *buf, size_t buflen)
{
	if (strcmp(mode, "broadcast") == 0 && subscribers == 0) {
		snprintf(buf, buflen, "-");
	} else {
		snprintf(buf, buflen, "%.0f%%",
			 capacity > 0 ? 100.0 * (double)used / (double)capacity
				      : 0.0);
	}
	return buf;
}

/* ---- tables ------------------------------------------------------------ */

void sb_cli_table_init(struct sb_cli_table *t, int ncols)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols < SB_CLI_TABLE_COLS ? ncols : SB_CLI_TABLE_COLS;
}

int sb_cli_table_add(struct sb_cli_table *t, const char *const *cells)
{
	size_t base = t->nrows * (size_t)t->ncols;

	if (t->nrows == t->cap) {
		size_t cap = t->cap == 0 ? 16 : t->cap * 2;
		char **grown =
		    realloc(t->cells, cap * (size_t)t->ncols * sizeof(char *));

		if (grown == NULL) {
			return -ENOMEM;
		}
		t->cells = grown;
		t->cap = cap;
	}
	for (int i = 0; i < t->ncols; i++) {
		t->cells[base + (size_t)i] = strdup(cells[i]);
		if (t->cells[base + (size_t)i] == NULL) {
			while (i-- > 0) {
				free(t->cells[base + (size_t)i]);
			}
			return -ENOMEM;
		}
	}
	t->nrows++;
	return 0;
}

void sb_cli_table_print(struct sb_cli_table *t, FILE *out, int indent)
{
	size_t width[SB_CLI_TABLE_COLS] = {0};

	for (size_t r = 0; r < t->nrows; r++) {
		for (int c = 0; c < t->ncols; c++) {
			size_t n =
			    strlen(t->cells[r * (size_t)t->ncols + (size_t)c]);

			width[c] = n > width[c] ? n : width[c];
		}
	}
	for (size_t r = 0; r < t->nrows; r++) {
		fprintf(out, "%*s", indent, "");
		for (int c = 0; c < t->ncols; c++) {
			const char *cell =
			    t->cells[r * (size_t)t->ncols + (size_t)c];
			int w = (int)width[c];

			if (c == t->ncols - 1 && !t->right[c]) {
				fputs(cell, out); /* no trailing blanks */
			} else if (t->right[c]) {
				fprintf(out, "%*s", w, cell);
			} else {
				fprintf(out, "%-*s", w, cell);
			}
			fputs(c == t->ncols - 1 ? "\n" : "  ", out);
		}
	}
	sb_cli_table_fini(t);
}

void sb_cli_table_fini(struct sb_cli_table *t)
{
	for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++) {
		free(t->cells[i]);
	}
	free(t->cells);
	t->cells = NULL;
	t->nrows = 0;
	t->cap = 0;
}
