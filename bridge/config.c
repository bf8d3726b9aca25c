/*
 * config.c - the bridge's configuration: a JSON file (docs/bridge.md,
 * "Configuration") and the flags of the simple case, checked as a whole so
 * that a bad one is refused with the field named before anything starts.
 */
#include <cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge/bridge.h"
#include "wire/duration.h"
#include "wire/size.h"
#include "wire/subject.h"
#include "wire/topic_name.h"

/* The largest configuration file read. */
#define CONFIG_MAX (1024 * 1024)

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t len,
						      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}

void sbb_config_defaults(struct sbb_config *cfg)
{
	*cfg = (struct sbb_config){
	    .reconnect_buffer = 8u << 20,
	    .stats_interval = 5,
	    .publish_timeout = 1,
	};
}

void sbb_config_free(struct sbb_config *cfg)
{
	char **strings[] = {&cfg->socket,  &cfg->origin,    &cfg->url,
			    &cfg->user,	   &cfg->password,  &cfg->token,
			    &cfg->ca_file, &cfg->cert_file, &cfg->key_file};

	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		free(*strings[i]);
	}
	for (size_t i = 0; i < cfg->nexports; i++) {
		free(cfg->exports[i].topic);
		free(cfg->exports[i].subject);
	}
	for (size_t i = 0; i < cfg->nimports; i++) {
		free(cfg->imports[i].subject);
		free(cfg->imports[i].topic);
	}
	free(cfg->exports);
	free(cfg->imports);
	sbb_config_defaults(cfg);
}

int sbb_parse_duration(const char *what, const char *text, double *seconds,
		       char *err, size_t errlen)
{
	if (sb_duration_parse(text, seconds) < 0) {
		return fail(err, errlen,
			    "%s must be a duration such as 250ms, 2s, 1.5m "
			    "or 1h; a bare number is seconds (got \"%s\")",
			    what, text);
	}
	return 0;
}

int sbb_parse_size(const char *what, const char *text, uint64_t *bytes,
		   char *err, size_t errlen)
{
	const char *why = NULL;

	if (sb_size_parse(text, bytes, &why) < 0) {
		return fail(err, errlen, "%s: %s (got \"%s\")", what, why,
			    text);
	}
	return 0;
}

/* Appends one mapping; the strings are copied. */
static int add_export(struct sbb_config *cfg, const char *topic,
		      const char *subject)
{
	struct sbb_export_map *v =
	    realloc(cfg->exports, (cfg->nexports + 1) * sizeof(*v));

	if (v == NULL) {
		return -1;
	}
	cfg->exports = v;
	v[cfg->nexports] = (struct sbb_export_map){
	    strdup(topic), subject != NULL ? strdup(subject) : NULL};
	if (v[cfg->nexports].topic == NULL ||
	    (subject != NULL && v[cfg->nexports].subject == NULL)) {
		free(v[cfg->nexports].topic);
		free(v[cfg->nexports].subject);
		return -1;
	}
	cfg->nexports++;
	return 0;
}

static int add_import(struct sbb_config *cfg, const char *subject,
		      const char *topic)
{
	struct sbb_import_map *v =
	    realloc(cfg->imports, (cfg->nimports + 1) * sizeof(*v));

	if (v == NULL) {
		return -1;
	}
	cfg->imports = v;
	v[cfg->nimports] = (struct sbb_import_map){
	    strdup(subject), topic != NULL ? strdup(topic) : NULL};
	if (v[cfg->nimports].subject == NULL ||
	    (topic != NULL && v[cfg->nimports].topic == NULL)) {
		free(v[cfg->nimports].subject);
		free(v[cfg->nimports].topic);
		return -1;
	}
	cfg->nimports++;
	return 0;
}

/* Splits "A=B" into A and B (NULL without '='); *a must be freed. */
static int split_pair(const char *arg, char **a, const char **b)
{
	const char *eq = strchr(arg, '=');

	*a = eq != NULL ? strndup(arg, (size_t)(eq - arg)) : strdup(arg);
	*b = eq != NULL ? eq + 1 : NULL;
	return *a != NULL ? 0 : -1;
}

int sbb_config_add_export(struct sbb_config *cfg, const char *arg, char *err,
			  size_t errlen)
{
	const char *subject;
	char *topic;
	int r;

	if (split_pair(arg, &topic, &subject) < 0) {
		return fail(err, errlen, "out of memory");
	}
	r = add_export(cfg, topic, subject);
	free(topic);
	return r < 0 ? fail(err, errlen, "out of memory") : 0;
}

int sbb_config_add_import(struct sbb_config *cfg, const char *arg, char *err,
			  size_t errlen)
{
	const char *topic;
	char *subject;
	int r;

	if (split_pair(arg, &subject, &topic) < 0) {
		return fail(err, errlen, "out of memory");
	}
	r = add_import(cfg, subject, topic);
	free(subject);
	return r < 0 ? fail(err, errlen, "out of memory") : 0;
}

/* ---- the file --------------------------------------------------------- */

/* Where a field is: the file, and the path to the object holding it
 * ("", "nats.", "export[2]."). */
struct where {
	const char *file;
	const char *prefix;
};

static int bad(const struct where *w, const char *name, char *err, size_t len,
	       const char *what)
{
	return fail(err, len, "%s: field \"%s%s\" %s", w->file, w->prefix, name,
		    what);
}

/* Checks that `obj`'s members are all among `known` (NULL-terminated). */
static int only_known(const cJSON *obj, const char *const *known,
		      const struct where *w, char *err, size_t len)
{
	const cJSON *item;

	cJSON_ArrayForEach(item, obj)
	{
		size_t i = 0;

		while (known[i] != NULL &&
		       strcmp(known[i], item->string) != 0) {
			i++;
		}
		if (known[i] == NULL) {
			return fail(err, len, "%s: unknown field \"%s%s\"",
				    w->file, w->prefix, item->string);
		}
	}
	return 0;
}

static int get_string(const cJSON *obj, const char *name, const struct where *w,
		      char **out, char *err, size_t len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (v == NULL) {
		return 0;
	}
	if (!cJSON_IsString(v) || v->valuestring[0] == '\0') {
		return bad(w, name, err, len, "must be a non-empty string");
	}
	free(*out);
	*out = strdup(v->valuestring);
	return *out != NULL ? 0 : fail(err, len, "out of memory");
}

/* A duration: a string as the flags take, or a number of seconds. */
static int get_duration(const cJSON *obj, const char *name,
			const struct where *w, double *out, char *err,
			size_t len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (v == NULL || (cJSON_IsNumber(v) && v->valuedouble >= 0 &&
			  (*out = v->valuedouble, 1))) {
		return 0;
	}
	if (!cJSON_IsString(v) || sb_duration_parse(v->valuestring, out) < 0) {
		return bad(w, name, err, len,
			   "must be a duration such as \"250ms\", \"2s\", "
			   "\"1m\", or a number of seconds");
	}
	return 0;
}

/* A size: a string such as "8MiB", or a number of bytes. */
static int get_size(const cJSON *obj, const char *name, const struct where *w,
		    uint64_t *out, char *err, size_t len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (v == NULL) {
		return 0;
	}
	if (cJSON_IsNumber(v) && v->valuedouble >= 0 &&
	    v->valuedouble < 18446744073709551616.0) {
		*out = (uint64_t)v->valuedouble;
		return 0;
	}
	if (!cJSON_IsString(v) ||
	    sb_size_parse(v->valuestring, out, NULL) < 0) {
		return bad(w, name, err, len,
			   "must be a size such as \"8MiB\" or a number of "
			   "bytes");
	}
	return 0;
}

static int load_nats(const cJSON *nats, struct sbb_config *cfg,
		     const char *file, char *err, size_t len)
{
	static const char *const known[] = {
	    "url",	"user",	   "password",
	    "token",	"ca_file", "cert_file",
	    "key_file", "give_up", "reconnect_buffer",
	    NULL};
	const struct where w = {file, "nats."};
	struct {
		const char *name;
		char **out;
	} strings[] = {
	    {"url", &cfg->url},		  {"user", &cfg->user},
	    {"password", &cfg->password}, {"token", &cfg->token},
	    {"ca_file", &cfg->ca_file},	  {"cert_file", &cfg->cert_file},
	    {"key_file", &cfg->key_file}};

	if (!cJSON_IsObject(nats)) {
		return bad(&(struct where){file, ""}, "nats", err, len,
			   "must be an object");
	}
	if (only_known(nats, known, &w, err, len) < 0) {
		return -1;
	}
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		if (get_string(nats, strings[i].name, &w, strings[i].out, err,
			       len) < 0) {
			return -1;
		}
	}
	if (get_duration(nats, "give_up", &w, &cfg->give_up, err, len) < 0 ||
	    get_size(nats, "reconnect_buffer", &w, &cfg->reconnect_buffer, err,
		     len) < 0) {
		return -1;
	}
	return 0;
}

/* "export" or "import": an array of objects with two string fields, the
 * first required. */
static int load_maps(const cJSON *arr, const char *name, const char *first,
		     const char *second, struct sbb_config *cfg,
		     const char *file, char *err, size_t len)
{
	const char *const known[] = {first, second, NULL};
	const cJSON *item;
	size_t i = 0;

	if (!cJSON_IsArray(arr)) {
		return bad(&(struct where){file, ""}, name, err, len,
			   "must be an array of objects");
	}
	cJSON_ArrayForEach(item, arr)
	{
		char prefix[48], *a = NULL, *b = NULL;
		struct where w = {file, prefix};
		int r;

		snprintf(prefix, sizeof(prefix), "%s[%zu].", name, i++);
		if (!cJSON_IsObject(item)) {
			prefix[strlen(prefix) - 1] = '\0';
			return bad(&(struct where){file, ""}, prefix, err, len,
				   "must be an object");
		}
		if (only_known(item, known, &w, err, len) < 0 ||
		    get_string(item, first, &w, &a, err, len) < 0 ||
		    get_string(item, second, &w, &b, err, len) < 0) {
			free(a);
			return -1;
		}
		if (a == NULL) {
			free(b);
			return bad(&w, first, err, len, "is missing");
		}
		r = strcmp(name, "export") == 0 ? add_export(cfg, a, b)
						: add_import(cfg, a, b);
		free(a);
		free(b);
		if (r < 0) {
			return fail(err, len, "out of memory");
		}
	}
	return 0;
}

static int load_root(const cJSON *root, struct sbb_config *cfg,
		     const char *file, char *err, size_t len)
{
	static const char *const known[] = {
	    "origin",	       "socket", "nats",   "stats_interval",
	    "publish_timeout", "export", "import", NULL};
	const struct where w = {file, ""};
	const cJSON *nats = cJSON_GetObjectItemCaseSensitive(root, "nats");
	const cJSON *exp = cJSON_GetObjectItemCaseSensitive(root, "export");
	const cJSON *imp = cJSON_GetObjectItemCaseSensitive(root, "import");

	if (!cJSON_IsObject(root)) {
		return fail(err, len, "%s: must hold one JSON object", file);
	}
	if (only_known(root, known, &w, err, len) < 0 ||
	    get_string(root, "origin", &w, &cfg->origin, err, len) < 0 ||
	    get_string(root, "socket", &w, &cfg->socket, err, len) < 0 ||
	    get_duration(root, "stats_interval", &w, &cfg->stats_interval, err,
			 len) < 0 ||
	    get_duration(root, "publish_timeout", &w, &cfg->publish_timeout,
			 err, len) < 0) {
		return -1;
	}
	if (nats != NULL && load_nats(nats, cfg, file, err, len) < 0) {
		return -1;
	}
	if (exp != NULL && load_maps(exp, "export", "topic", "subject", cfg,
				     file, err, len) < 0) {
		return -1;
	}
	if (imp != NULL && load_maps(imp, "import", "subject", "topic", cfg,
				     file, err, len) < 0) {
		return -1;
	}
	return 0;
}

int sbb_config_load(const char *path, struct sbb_config *cfg, char *err,
		    size_t errlen)
{
	char *text = malloc(CONFIG_MAX + 1);
	FILE *f = fopen(path, "r");
	cJSON *root = NULL;
	size_t n = 0;
	int r = -1;

	if (f == NULL || text == NULL) {
		fail(err, errlen, "%s: %s", path,
		     f == NULL ? strerror(errno) : "out of memory");
		goto out;
	}
	n = fread(text, 1, CONFIG_MAX + 1, f);
	if (n > CONFIG_MAX) {
		fail(err, errlen, "%s: larger than %d bytes", path, CONFIG_MAX);
		goto out;
	}
	root = cJSON_ParseWithLength(text, n);
	if (root == NULL) {
		const char *at = cJSON_GetErrorPtr();

		fail(err, errlen, "%s: not valid JSON (near byte %td)", path,
		     at != NULL ? at - text : (ptrdiff_t)0);
		goto out;
	}
	r = load_root(root, cfg, path, err, errlen);
out:
	cJSON_Delete(root);
	free(text);
	if (f != NULL) {
		fclose(f);
	}
	return r;
}

/* ---- the whole, checked ----------------------------------------------- */

/* The host name up to its first '.', as an origin; "localhost" if none. */
static char *default_origin(void)
{
	char host[256] = "";
	size_t n;

	if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0') {
		return strdup("localhost");
	}
	n = strcspn(host, ".");
	for (size_t i = 0; i < n; i++) {
		/* A host name may hold nothing else but letters, digits and
		 * '-', but a container's may: keep the origin a token. */
		char c = host[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_')) {
			host[i] = '_';
		}
	}
	return strndup(host,
		       n < SB_SUBJECT_ORIGIN_MAX ? n : SB_SUBJECT_ORIGIN_MAX);
}

static int check_export(struct sbb_config *cfg, size_t i, char *err, size_t len)
{
	struct sbb_export_map *m = &cfg->exports[i];
	char why[256], subject[SB_SUBJECT_MAX + 1];

	if (sb_topic_name_check(m->topic, why, sizeof(why)) < 0) {
		return fail(err, len, "export %zu: topic \"%s\" %s", i + 1,
			    m->topic, why);
	}
	if (m->subject == NULL) {
		if (sb_subject_from_topic(cfg->origin, m->topic, subject,
					  sizeof(subject)) < 0 ||
		    (m->subject = strdup(subject)) == NULL) {
			return fail(err, len,
				    "export %zu: no subject for "
				    "topic \"%s\"",
				    i + 1, m->topic);
		}
	}
	if (sb_subject_check(m->subject, false, why, sizeof(why)) < 0) {
		return fail(err, len, "export %zu: subject \"%s\" %s", i + 1,
			    m->subject, why);
	}
	snprintf(subject, sizeof(subject), "%s.%s._stats", SB_SUBJECT_PREFIX,
		 cfg->origin);
	if (strcmp(m->subject, subject) == 0) {
		return fail(err, len,
			    "export %zu: subject \"%s\" is where the bridge "
			    "publishes its counters; give topic \"%s\" "
			    "another subject (TOPIC=SUBJECT)",
			    i + 1, subject, m->topic);
	}
	for (size_t j = 0; j < i; j++) {
		if (strcmp(cfg->exports[j].topic, m->topic) == 0) {
			return fail(err, len,
				    "export %zu: topic \"%s\" is exported "
				    "twice",
				    i + 1, m->topic);
		}
	}
	return 0;
}

static int check_import(const struct sbb_config *cfg, size_t i, char *err,
			size_t len)
{
	const struct sbb_import_map *m = &cfg->imports[i];
	char why[256];

	if (sb_subject_check(m->subject, true, why, sizeof(why)) < 0) {
		return fail(err, len, "import %zu: subject \"%s\" %s", i + 1,
			    m->subject, why);
	}
	if (m->topic != NULL &&
	    sb_topic_name_check(m->topic, why, sizeof(why)) < 0) {
		return fail(err, len, "import %zu: topic \"%s\" %s", i + 1,
			    m->topic, why);
	}
	return 0;
}

int sbb_config_finish(struct sbb_config *cfg, char *err, size_t len)
{
	char why[256];

	if (cfg->origin == NULL && (cfg->origin = default_origin()) == NULL) {
		return fail(err, len, "out of memory");
	}
	if (sb_subject_origin_check(cfg->origin, why, sizeof(why)) < 0) {
		return fail(err, len, "origin \"%s\" %s", cfg->origin, why);
	}
	if (cfg->url == NULL &&
	    (cfg->url = strdup("nats://127.0.0.1:4222")) == NULL) {
		return fail(err, len, "out of memory");
	}
	if (cfg->nexports == 0 && cfg->nimports == 0) {
		return fail(err, len,
			    "nothing to bridge: give --export or --import, "
			    "or a configuration file with \"export\" or "
			    "\"import\"");
	}
	if (cfg->stats_interval < 0.1) {
		return fail(err, len,
			    "stats interval must be at least "
			    "100ms");
	}
	if ((cfg->cert_file == NULL) != (cfg->key_file == NULL)) {
		return fail(err, len,
			    "a TLS client certificate needs both "
			    "cert_file and key_file");
	}
	for (size_t i = 0; i < cfg->nexports; i++) {
		if (check_export(cfg, i, err, len) < 0) {
			return -1;
		}
	}
	for (size_t i = 0; i < cfg->nimports; i++) {
		if (check_import(cfg, i, err, len) < 0) {
			return -1;
		}
	}
	return 0;
}
