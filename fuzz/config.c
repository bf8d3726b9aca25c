/*
 * config.c - libFuzzer target for the broker's configuration parser: the
 * input is the text of a configuration file. A file is less hostile than a
 * socket peer, but the broker parses it as root at start and on every
 * SIGHUP, and a crash there takes the whole bus down.
 *
 * Oracles: no crash or sanitizer report; no leak (LeakSanitizer, on failure
 * paths too); on failure the output struct is untouched and the message is
 * one NUL-terminated line without control characters that fits its buffer,
 * whatever the buffer's size (the last input byte chooses a small size too); on
 * success the result satisfies the rules the broker relies on without checking
 * again.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "wire/topic_name.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die_if(int bad)
{
	if (bad) {
		abort();
	}
}

/* What a successful parse promises (config.h, docs/config.md). */
static void check_config(const struct sb_config *cfg)
{
	const char *field;

	die_if(cfg->socket_mode > 0777 || cfg->socket_dir_mode > 0777);
	die_if(cfg->topic_defaults.name != NULL);
	for (size_t i = 0; i < cfg->n_topics; i++) {
		const struct sb_config_topic *t = &cfg->topics[i];

		die_if(!sb_topic_name_valid(t->name));
		die_if(sb_config_check_geometry(t->capacity, t->max_message,
						&cfg->limits, &field, NULL,
						0) != 0);
		for (size_t j = 0; j < i; j++) {
			die_if(strcmp(cfg->topics[j].name, t->name) == 0);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t errlens[4] = {1, 7, 64, 512};
	struct sb_config cfg, sentinel;
	char err[512];
	size_t errlen = size != 0 ? errlens[data[size - 1] & 3] : 512;
	int r;

	memset(&sentinel, 0xa5, sizeof(sentinel));
	cfg = sentinel;
	memset(err, 'x', sizeof(err));
	r = sb_config_parse((const char *)data, size, "fuzz.json", &cfg, err,
			    errlen);
	if (r == 0) {
		check_config(&cfg);
		sb_config_free(&cfg);
		sb_config_free(&cfg); /* documented as safe twice */
		return 0;
	}
	die_if(r != -EINVAL && r != -ENOMEM);
	die_if(memcmp(&cfg, &sentinel, sizeof(cfg)) != 0);
	die_if(memchr(err, '\0', errlen) == NULL);
	for (const char *p = err; *p != '\0'; p++) {
		die_if((unsigned char)*p < 0x20 || *p == 0x7f); /* one line */
	}
	return 0;
}
