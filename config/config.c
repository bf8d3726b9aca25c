/*
 * config.c - defaults, parsing and validation of the broker's JSON
 * configuration (schema in docs/config.md). Parsing builds a complete new
 * struct and hands it over only when everything is valid, so a bad file on
 * reload leaves the running configuration alone; every message starts with
 * the origin and the field path.
 */
#include "config/config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cJSON.h>

#include "wire/message.h"
#include "ring/chan.h"
#include "ring/ring.h"
#include "wire/size.h"
#include "wire/topic_name.h"

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)
#define TIB (UINT64_C(1) << 40)

/* Longest field path in a message, e.g. "topics[65535].access.admin.gids[9]".
 */
#define PATH_LEN 96

/* Longest socket path: sun_path holds it with its terminating NUL. */
#define SOCKET_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

/* Longest data directory, leaving room under PATH_MAX for topic files. */
#define DATA_DIR_MAX 3800

#define ID_MAX 4294967294u /* (uid_t)-1 means "no user" */

/* persist_interval_ms: from 10 ms to one hour. */
#define PERSIST_INTERVAL_MIN 10
#define PERSIST_INTERVAL_MAX 3600000

/* Where messages go while one text is being parsed. */
struct ctx {
	const char *origin;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 3, 4))) static int
fail(const struct ctx *c, const char *path, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	if (c->err == NULL || c->errlen == 0) {
		return -EINVAL;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (path[0] != '\0') {
		snprintf(c->err, c->errlen, "%s: %s: %s", c->origin, path, msg);
	} else {
		snprintf(c->err, c->errlen, "%s: %s", c->origin, msg);
	}
	return -EINVAL;
}

static int out_of_memory(const struct ctx *c)
{
	fail(c, "", "out of memory");
	return -ENOMEM;
}

/*
 * Field paths are short by construction (the longest is about
 * "topics[65535].access.subscribe.uids[524287]"), so they always fit; the
 * return values are checked to say so to the compiler and to a reader.
 */
static void join(char *out, const char *parent, const char *key)
{
	int n;

	if (parent[0] != '\0') {
		n = snprintf(out, PATH_LEN, "%s.%s", parent, key);
	} else {
		n = snprintf(out, PATH_LEN, "%s", key);
	}
	assert(n >= 0 && n < PATH_LEN);
	(void)n;
}

static void join_index(char *out, const char *parent, size_t i)
{
	int n = snprintf(out, PATH_LEN, "%s[%zu]", parent, i);

	assert(n >= 0 && n < PATH_LEN);
	(void)n;
}

/* Writes a short rendering of a JSON value for "(got ...)". */
static const char *describe(const cJSON *v, char *buf, size_t buflen)
{
	if (cJSON_IsString(v)) {
		/* Escaped: a value holding "\n" must not split the one-line
		 * message (found by fuzz/config.c). */
		sb_msg_quote(v->valuestring, 40, buf, buflen);
	} else if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;

		if (d > -9.0e15 && d < 9.0e15 && (double)(int64_t)d == d) {
			snprintf(buf, buflen, "%" PRId64, (int64_t)d);
		} else {
			snprintf(buf, buflen, "%g", d);
		}
	} else if (cJSON_IsBool(v)) {
		snprintf(buf, buflen, "%s", cJSON_IsTrue(v) ? "true" : "false");
	} else if (cJSON_IsNull(v)) {
		snprintf(buf, buflen, "null");
	} else if (cJSON_IsArray(v)) {
		snprintf(buf, buflen, "an array");
	} else {
		snprintf(buf, buflen, "an object");
	}
	return buf;
}

static int check_fields(const struct ctx *c, const cJSON *obj, const char *path,
			const char *const *known)
{
	struct sb_msg_error e;

	if (sb_msg_check_fields(obj, known, &e) < 0) {
		return fail(c, path, "%s", e.message);
	}
	return 0;
}

static int expect_object(const struct ctx *c, const cJSON *v, const char *path)
{
	char got[64];

	if (!cJSON_IsObject(v)) {
		return fail(c, path, "must be an object (got %s)",
			    describe(v, got, sizeof(got)));
	}
	return 0;
}

/* The "name" field of a topic or a service (`what`): present, a string,
 * and a valid name; a copy goes to *out. */
static int get_name(const struct ctx *c, const cJSON *obj, const char *path,
		    const char *what, char **out)
{
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(obj, "name");
	char fpath[PATH_LEN], got[64], why[160];

	join(fpath, path, "name");
	if (name == NULL) {
		return fail(c, path, "missing field \"name\"");
	}
	if (!cJSON_IsString(name)) {
		return fail(c, fpath, "must be a string (got %s)",
			    describe(name, got, sizeof(got)));
	}
	if (sb_topic_name_check(name->valuestring, why, sizeof(why)) < 0) {
		return fail(c, fpath, "invalid %s name %s: %s", what,
			    describe(name, got, sizeof(got)), why);
	}
	*out = strdup(name->valuestring);
	return *out == NULL ? out_of_memory(c) : 0;
}

/* An integer within [min, max]; one message for every way to miss. */
static int to_uint(const struct ctx *c, const cJSON *v, const char *path,
		   uint64_t min, uint64_t max, uint64_t *out)
{
	char got[64];
	double d = cJSON_IsNumber(v) ? v->valuedouble : -1.0;

	if (!cJSON_IsNumber(v) || !(d >= (double)min && d <= (double)max) ||
	    (double)(uint64_t)d != d) {
		return fail(c, path,
			    "must be an integer from %" PRIu64 " to %" PRIu64
			    " (got %s)",
			    min, max, describe(v, got, sizeof(got)));
	}
	*out = (uint64_t)d;
	return 0;
}

static int get_uint(const struct ctx *c, const cJSON *obj, const char *parent,
		    const char *key, uint64_t min, uint64_t max, uint64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	char path[PATH_LEN];

	if (v == NULL) {
		return 0;
	}
	join(path, parent, key);
	return to_uint(c, v, path, min, max, out);
}

static int get_u32(const struct ctx *c, const cJSON *obj, const char *parent,
		   const char *key, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v = *out;
	int r = get_uint(c, obj, parent, key, min, max, &v);

	*out = (uint32_t)v;
	return r;
}

/* A size: a non-negative integer, or a string with an optional unit. */
static int to_size(const struct ctx *c, const cJSON *v, const char *path,
		   uint64_t min, uint64_t max, uint64_t *out)
{
	char got[64], lo[32], hi[32], val[32];
	const char *why;
	uint64_t size;

	if (cJSON_IsString(v)) {
		if (sb_size_parse(v->valuestring, &size, &why) < 0) {
			return fail(c, path, "%s (got %s)", why,
				    describe(v, got, sizeof(got)));
		}
	} else if (cJSON_IsNumber(v) && v->valuedouble >= 0 &&
		   v->valuedouble < 9.0e18 &&
		   (double)(uint64_t)v->valuedouble == v->valuedouble) {
		size = (uint64_t)v->valuedouble;
	} else if (cJSON_IsNumber(v) && v->valuedouble >= 9.0e18) {
		return fail(c, path, "does not fit in 64 bits (got %s)",
			    describe(v, got, sizeof(got)));
	} else {
		return fail(c, path,
			    "must be a size: a non-negative integer or a "
			    "string such as \"64KiB\" (got %s)",
			    describe(v, got, sizeof(got)));
	}
	if (size < min || size > max) {
		return fail(c, path, "must be from %s to %s (got %s)",
			    sb_size_format(min, lo, sizeof(lo)),
			    sb_size_format(max, hi, sizeof(hi)),
			    sb_size_format(size, val, sizeof(val)));
	}
	*out = size;
	return 0;
}

static int get_size(const struct ctx *c, const cJSON *obj, const char *parent,
		    const char *key, uint64_t min, uint64_t max, uint64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	char path[PATH_LEN];

	if (v == NULL) {
		return 0;
	}
	join(path, parent, key);
	return to_size(c, v, path, min, max, out);
}

static int get_bool(const struct ctx *c, const cJSON *obj, const char *parent,
		    const char *key, bool *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	char path[PATH_LEN], got[64];

	if (v == NULL) {
		return 0;
	}
	if (!cJSON_IsBool(v)) {
		join(path, parent, key);
		return fail(c, path, "must be true or false (got %s)",
			    describe(v, got, sizeof(got)));
	}
	*out = cJSON_IsTrue(v);
	return 0;
}

/* "checksum": true or false; absent leaves *out as it is (inherited, or
 * SB_CONFIG_CHECKSUM_AUTO). */
static int get_checksum(const struct ctx *c, const cJSON *obj,
			const char *parent, enum sb_config_checksum *out)
{
	bool on = false;
	int r;

	if (cJSON_GetObjectItemCaseSensitive(obj, "checksum") == NULL) {
		return 0;
	}
	r = get_bool(c, obj, parent, "checksum", &on);
	if (r == 0) {
		*out = on ? SB_CONFIG_CHECKSUM_ON : SB_CONFIG_CHECKSUM_OFF;
	}
	return r;
}

/* One of `names` (NULL-terminated); stores its index. */
static int get_enum(const struct ctx *c, const cJSON *obj, const char *parent,
		    const char *key, const char *const *names, int *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	char path[PATH_LEN], got[64], list[128] = "";
	size_t used = 0;

	if (v == NULL) {
		return 0;
	}
	for (int i = 0; names[i] != NULL; i++) {
		if (cJSON_IsString(v) &&
		    strcmp(v->valuestring, names[i]) == 0) {
			*out = i;
			return 0;
		}
		used +=
		    (size_t)snprintf(list + used, sizeof(list) - used,
				     "%s\"%s\"", i > 0 ? ", " : "", names[i]);
	}
	join(path, parent, key);
	return fail(c, path, "must be one of %s (got %s)", list,
		    describe(v, got, sizeof(got)));
}

/* Permission bits as an octal string ("0700"): a JSON number would be
 * read as decimal, which is never what a mode means. */
static int get_mode(const struct ctx *c, const cJSON *obj, const char *parent,
		    const char *key, uint32_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	char path[PATH_LEN], got[64];
	uint32_t mode = 0;
	size_t n = 0;

	if (v == NULL) {
		return 0;
	}
	if (cJSON_IsString(v)) {
		const char *s = v->valuestring;

		for (; s[n] >= '0' && s[n] <= '7' && n < 5; n++) {
			mode = mode * 8 + (uint32_t)(s[n] - '0');
		}
		if (n > 0 && n <= 4 && s[n] == '\0' && mode <= 0777) {
			*out = mode;
			return 0;
		}
	}
	join(path, parent, key);
	return fail(c, path,
		    "must be an octal string from \"0000\" to \"0777\", such "
		    "as \"0700\" (got %s)",
		    describe(v, got, sizeof(got)));
}

/* An absolute path of at most `max` bytes, copied into *out. */
static int get_path(const struct ctx *c, const cJSON *obj, const char *parent,
		    const char *key, size_t max, const char *limit_why,
		    char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	char path[PATH_LEN], got[64];
	size_t len;

	if (v == NULL) {
		return 0;
	}
	join(path, parent, key);
	if (!cJSON_IsString(v) || v->valuestring[0] != '/') {
		return fail(c, path, "must be an absolute path (got %s)",
			    describe(v, got, sizeof(got)));
	}
	len = strlen(v->valuestring);
	if (len > max) {
		return fail(c, path, "must be at most %zu bytes%s (got %zu)",
			    max, limit_why, len);
	}
	free(*out);
	*out = strdup(v->valuestring);
	if (*out == NULL) {
		return out_of_memory(c);
	}
	return 0;
}

void sb_config_defaults(struct sb_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->socket_dir_mode = 0700;
	cfg->socket_mode = 0600;
	cfg->socket_group = -1;
	cfg->log_level = SB_CONFIG_LOG_INFO;
	cfg->auto_create = true;
	cfg->persist_interval_ms = 1000;
	cfg->persist_sync = true;
	cfg->limits.max_clients = 256;
	/* A quarter of max_clients: one uid cannot take every place. */
	cfg->limits.max_clients_per_uid = 64;
	cfg->limits.max_topics = 1024;
	cfg->limits.max_ring_bytes = 1 * GIB;
	cfg->limits.max_topic_bytes = 256 * MIB;
	cfg->limits.max_message = 16 * MIB;
	cfg->limits.max_frame = 64 * KIB;
	cfg->limits.max_pending_bytes = 1 * MIB;
	cfg->limits.max_requests_in_flight = 64;
	cfg->limits.max_subscribers = 64;
	cfg->topic_defaults.capacity = 1 * MIB;
	cfg->topic_defaults.max_message = 64 * KIB;
	cfg->topic_defaults.mode = SB_CONFIG_BROADCAST;
	cfg->topic_defaults.overflow = SB_CONFIG_BLOCK;
	cfg->topic_defaults.linger_ms = 0;
	cfg->topic_defaults.checksum = SB_CONFIG_CHECKSUM_AUTO;
	cfg->service_defaults.capacity = 256 * KIB;
	cfg->service_defaults.max_message = 64 * KIB;
}

static void rule_free(struct sb_config_rule *r)
{
	free(r->uids);
	free(r->gids);
	memset(r, 0, sizeof(*r));
}

static void access_free(struct sb_config_access *a)
{
	rule_free(&a->publish);
	rule_free(&a->subscribe);
	rule_free(&a->admin);
	rule_free(&a->serve);
	rule_free(&a->request);
}

static void topic_free(struct sb_config_topic *t)
{
	free(t->name);
	t->name = NULL;
	access_free(&t->access);
}

void sb_config_free(struct sb_config *cfg)
{
	free(cfg->socket_path);
	free(cfg->data_dir);
	topic_free(&cfg->topic_defaults);
	for (size_t i = 0; i < cfg->n_topics; i++) {
		topic_free(&cfg->topics[i]);
	}
	free(cfg->topics);
	free(cfg->service_defaults.name);
	access_free(&cfg->service_defaults.access);
	for (size_t i = 0; i < cfg->n_services; i++) {
		free(cfg->services[i].name);
		access_free(&cfg->services[i].access);
	}
	free(cfg->services);
	memset(cfg, 0, sizeof(*cfg));
}

static int copy_ids(uint32_t **dst, const uint32_t *src, size_t n)
{
	*dst = NULL;
	if (n == 0) {
		return 0;
	}
	*dst = malloc(n * sizeof(**dst));
	if (*dst == NULL) {
		return -ENOMEM;
	}
	memcpy(*dst, src, n * sizeof(**dst));
	return 0;
}

static int rule_copy(struct sb_config_rule *dst,
		     const struct sb_config_rule *src)
{
	*dst = *src;
	dst->uids = NULL;
	dst->gids = NULL;
	if (copy_ids(&dst->uids, src->uids, src->n_uids) < 0 ||
	    copy_ids(&dst->gids, src->gids, src->n_gids) < 0) {
		return -ENOMEM;
	}
	return 0;
}

/* Deep copy; on failure `dst` holds what was copied, for the caller to
 * free with the rest. */
static int access_copy(struct sb_config_access *dst,
		       const struct sb_config_access *src)
{
	memset(dst, 0, sizeof(*dst));
	if (rule_copy(&dst->publish, &src->publish) < 0 ||
	    rule_copy(&dst->subscribe, &src->subscribe) < 0 ||
	    rule_copy(&dst->admin, &src->admin) < 0 ||
	    rule_copy(&dst->serve, &src->serve) < 0 ||
	    rule_copy(&dst->request, &src->request) < 0) {
		return -ENOMEM;
	}
	return 0;
}

static int parse_ids(const struct ctx *c, const cJSON *obj, const char *parent,
		     const char *key, uint32_t **out, size_t *n_out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	char path[PATH_LEN], item_path[PATH_LEN], got[64];
	const cJSON *item;
	size_t n = 0;
	int r;

	if (v == NULL) {
		return 0;
	}
	join(path, parent, key);
	if (!cJSON_IsArray(v)) {
		return fail(c, path, "must be an array of integers (got %s)",
			    describe(v, got, sizeof(got)));
	}
	n = (size_t)cJSON_GetArraySize(v);
	if (n == 0) {
		return 0;
	}
	*out = calloc(n, sizeof(**out));
	if (*out == NULL) {
		return out_of_memory(c);
	}
	n = 0;
	cJSON_ArrayForEach(item, v)
	{
		uint64_t id;

		join_index(item_path, path, n);
		r = to_uint(c, item, item_path, 0, ID_MAX, &id);
		if (r < 0) {
			return r;
		}
		(*out)[n++] = (uint32_t)id;
		*n_out = n;
	}
	return 0;
}

static int parse_rule(const struct ctx *c, const cJSON *access,
		      const char *parent, const char *key,
		      struct sb_config_rule *rule)
{
	static const char *const known[] = {"uids", "gids", NULL};
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(access, key);
	char path[PATH_LEN];
	int r;

	if (v == NULL) {
		return 0;
	}
	join(path, parent, key);
	r = expect_object(c, v, path);
	if (r == 0) {
		r = check_fields(c, v, path, known);
	}
	if (r < 0) {
		return r;
	}
	rule->restricted = true;
	r = parse_ids(c, v, path, "uids", &rule->uids, &rule->n_uids);
	if (r == 0) {
		r = parse_ids(c, v, path, "gids", &rule->gids, &rule->n_gids);
	}
	return r;
}

/* A present "access" replaces the inherited one whole: inside it, an
 * absent rule means anyone, as it does everywhere else. `known` names the
 * rules the object may have (a topic's or a service's). */
static int parse_access(const struct ctx *c, const cJSON *obj,
			const char *parent, struct sb_config_access *a,
			const char *const *known)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "access");
	char path[PATH_LEN];
	int r;

	if (v == NULL) {
		return 0;
	}
	join(path, parent, "access");
	r = expect_object(c, v, path);
	if (r == 0) {
		r = check_fields(c, v, path, known);
	}
	if (r < 0) {
		return r;
	}
	access_free(a);
	r = parse_rule(c, v, path, "publish", &a->publish);
	if (r == 0) {
		r = parse_rule(c, v, path, "subscribe", &a->subscribe);
	}
	if (r == 0) {
		r = parse_rule(c, v, path, "admin", &a->admin);
	}
	if (r == 0) {
		r = parse_rule(c, v, path, "serve", &a->serve);
	}
	if (r == 0) {
		r = parse_rule(c, v, path, "request", &a->request);
	}
	return r;
}

static const char *const TOPIC_RIGHTS[] = {"publish", "subscribe", "admin",
					   NULL};
static const char *const SERVICE_RIGHTS[] = {"serve", "request", NULL};

/*
 * The ring geometry rule belongs to sb_ring_layout() (ring/ring.c); the
 * config asks it rather than keeping its own copy of the numbers, so the
 * two can never disagree. Slot count, mode and overflow are set to values
 * the ring always accepts: only capacity and max_message are in question.
 */
static bool ring_accepts(uint64_t capacity, uint64_t max_message)
{
	struct sb_ring_config rc = {
	    .capacity = capacity,
	    .max_message = (uint32_t)max_message,
	    .slot_count = 1,
	    .mode = SB_RING_BROADCAST,
	    .overflow = SB_RING_BLOCK,
	};
	uint64_t data_size, ctl_size;

	return max_message <= UINT32_MAX &&
	       sb_ring_layout(&rc, &data_size, &ctl_size) == 0;
}

/* The largest max_message the ring accepts for a valid `capacity`, found
 * by bisection (only on the error path, to word the message). */
static uint64_t largest_message(uint64_t capacity)
{
	uint64_t lo = 0, hi = capacity;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo + 1) / 2;

		if (ring_accepts(capacity, mid)) {
			lo = mid;
		} else {
			hi = mid - 1;
		}
	}
	return lo;
}

__attribute__((format(printf, 5, 6))) static int blame(const char **field,
						       const char *name,
						       char *why, size_t whylen,
						       const char *fmt, ...)
{
	va_list ap;

	*field = name;
	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

int sb_config_check_geometry(uint64_t capacity, uint64_t max_message,
			     const struct sb_config_limits *limits,
			     const char **field, char *why, size_t whylen)
{
	char a[32], b[32], d[32];
	uint64_t msg_max;

	sb_size_format(capacity, a, sizeof(a));
	if (!ring_accepts(capacity, 0)) {
		return blame(field, "capacity", why, whylen,
			     "must be a power of two from %s to %s (got %s)",
			     sb_size_format(SB_RING_MIN_CAPACITY, b, sizeof(b)),
			     sb_size_format(SB_RING_MAX_CAPACITY, d, sizeof(d)),
			     a);
	}
	if (capacity > limits->max_topic_bytes) {
		return blame(
		    field, "capacity", why, whylen,
		    "must be at most limits.max_topic_bytes = %s "
		    "(got %s)",
		    sb_size_format(limits->max_topic_bytes, b, sizeof(b)), a);
	}
	sb_size_format(max_message, d, sizeof(d));
	if (max_message < 1 || !ring_accepts(capacity, max_message)) {
		msg_max = largest_message(capacity);
		return blame(field, "max_message", why, whylen,
			     "must be from 1 to capacity / %" PRIu64
			     " = %s (got %s)",
			     msg_max > 0 ? capacity / msg_max : 0,
			     sb_size_format(msg_max, b, sizeof(b)), d);
	}
	if (max_message > limits->max_message) {
		return blame(field, "max_message", why, whylen,
			     "must be at most limits.max_message = %s (got %s)",
			     sb_size_format(limits->max_message, b, sizeof(b)),
			     d);
	}
	return 0;
}

/* ", the default" when `key` was not written in `obj`: a limit the user
 * never set can still conflict with one they did. */
static bool written(const cJSON *obj, const char *key)
{
	return obj != NULL &&
	       cJSON_GetObjectItemCaseSensitive(obj, key) != NULL;
}

static const char *default_note(const cJSON *obj, const char *key,
				const char *note)
{
	return written(obj, key) ? "" : note;
}

static int parse_socket(const struct ctx *c, const cJSON *root,
			struct sb_config *cfg)
{
	static const char *const known[] = {"path", "dir_mode", "mode", "group",
					    NULL};
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "socket");
	int r;

	if (v == NULL) {
		return 0;
	}
	r = expect_object(c, v, "socket");
	if (r == 0) {
		r = check_fields(c, v, "socket", known);
	}
	if (r == 0) {
		r = get_path(c, v, "socket", "path", SOCKET_PATH_MAX,
			     " (the limit of a Unix socket address)",
			     &cfg->socket_path);
	}
	if (r == 0) {
		r = get_mode(c, v, "socket", "dir_mode", &cfg->socket_dir_mode);
	}
	if (r == 0 && (cfg->socket_dir_mode & 022) != 0) {
		/* The broker refuses such a directory at start anyway: say so
		 * here, where the mistake is. */
		r = fail(c, "socket.dir_mode",
			 "must not let group or others write (got \"%04o\"): "
			 "they could replace the socket with their own. Use "
			 "\"%04o\": to reach the socket others need only "
			 "search permission, and socket.mode says who may "
			 "connect",
			 (unsigned)cfg->socket_dir_mode,
			 (unsigned)(cfg->socket_dir_mode & ~022u));
	}
	if (r == 0) {
		r = get_mode(c, v, "socket", "mode", &cfg->socket_mode);
	}
	if (r == 0 && cJSON_GetObjectItemCaseSensitive(v, "group") != NULL) {
		uint64_t gid = 0;

		r = get_uint(c, v, "socket", "group", 0, ID_MAX, &gid);
		cfg->socket_group = r == 0 ? (int64_t)gid : cfg->socket_group;
	}
	return r;
}

static int parse_limits(const struct ctx *c, const cJSON *root,
			struct sb_config_limits *l)
{
	static const char *const known[] = {
	    "max_clients",
	    "max_clients_per_uid",
	    "max_topics",
	    "max_ring_bytes",
	    "max_topic_bytes",
	    "max_message",
	    "max_frame",
	    "max_pending_bytes",
	    "max_requests_in_flight",
	    "max_subscribers",
	    NULL,
	};
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "limits");
	const char *p = "limits";
	char a[32], b[32];
	uint64_t need;
	int r = 0;

	if (v != NULL) {
		r = expect_object(c, v, p);
		if (r == 0) {
			r = check_fields(c, v, p, known);
		}
		if (r < 0) {
			return r;
		}
	}
	/* Without the object every getter finds nothing and keeps the
	 * default, but the cross-checks below still run. */
	if ((r = get_u32(c, v, p, "max_clients", 1, 65536, &l->max_clients)) <
		0 ||
	    (r = get_u32(c, v, p, "max_clients_per_uid", 1, 65536,
			 &l->max_clients_per_uid)) < 0 ||
	    (r = get_u32(c, v, p, "max_topics", 1, 65536, &l->max_topics)) <
		0 ||
	    (r = get_size(c, v, p, "max_ring_bytes", 4 * KIB, 1 * TIB,
			  &l->max_ring_bytes)) < 0 ||
	    (r = get_size(c, v, p, "max_topic_bytes", 4 * KIB, 1 * GIB,
			  &l->max_topic_bytes)) < 0 ||
	    (r = get_size(c, v, p, "max_message", 1, 256 * MIB,
			  &l->max_message)) < 0 ||
	    (r = get_size(c, v, p, "max_frame", 1 * KIB, 16 * MIB,
			  &l->max_frame)) < 0 ||
	    (r = get_size(c, v, p, "max_pending_bytes", 4 * KIB, 1 * GIB,
			  &l->max_pending_bytes)) < 0 ||
	    (r = get_u32(c, v, p, "max_requests_in_flight", 1, 65536,
			 &l->max_requests_in_flight)) < 0 ||
	    (r = get_u32(c, v, p, "max_subscribers", 1, 1024,
			 &l->max_subscribers)) < 0) {
		return r;
	}
	/* Only when written: the default above a small max_clients simply
	 * never comes into play. */
	if (l->max_clients_per_uid > l->max_clients &&
	    written(v, "max_clients_per_uid")) {
		return fail(c, "limits.max_clients_per_uid",
			    "must be at most limits.max_clients = %" PRIu32
			    " (got %" PRIu32 "%s)",
			    l->max_clients, l->max_clients_per_uid,
			    default_note(v, "max_clients",
					 ", with "
					 "max_clients at "
					 "its default"));
	}
	if (l->max_topic_bytes > l->max_ring_bytes) {
		return fail(
		    c, "limits.max_topic_bytes",
		    "must be at most limits.max_ring_bytes = %s (got "
		    "%s%s)",
		    sb_size_format(l->max_ring_bytes, a, sizeof(a)),
		    sb_size_format(l->max_topic_bytes, b, sizeof(b)),
		    default_note(v, "max_topic_bytes", ", the default"));
	}
	/* One whole frame in each direction must fit in a client's budget,
	 * or a client could be stuck with a request it may never send. */
	need = 2 * (l->max_frame + 4);
	if (l->max_pending_bytes < need) {
		return fail(
		    c, "limits.max_pending_bytes",
		    "must be at least 2 * (limits.max_frame + 4) = %s "
		    "(got %s%s)",
		    sb_size_format(need, a, sizeof(a)),
		    sb_size_format(l->max_pending_bytes, b, sizeof(b)),
		    default_note(v, "max_pending_bytes", ", the default"));
	}
	return 0;
}

static int check_topic_geometry(const struct ctx *c, const cJSON *obj,
				const char *path, const struct sb_config *cfg,
				const struct sb_config_topic *t)
{
	char why[160], fpath[PATH_LEN];
	const char *field, *note;
	size_t len;

	if (sb_config_check_geometry(t->capacity, t->max_message, &cfg->limits,
				     &field, why, sizeof(why)) == 0) {
		return 0;
	}
	join(fpath, path, field);
	note =
	    default_note(obj, field,
			 t->name == NULL ? ", the built-in default"
					 : ", inherited from topic_defaults");
	/* `why` ends with "(got VALUE)": the note goes inside, after the
	 * value it explains. */
	len = strlen(why);
	if (note[0] != '\0' && len > 0 && why[len - 1] == ')') {
		why[len - 1] = '\0';
		return fail(c, fpath, "%s%s)", why, note);
	}
	return fail(c, fpath, "%s", why);
}

/* Fields of topic_defaults (t->name NULL) or of one predeclared topic. */
static int parse_topic(const struct ctx *c, const cJSON *obj, const char *path,
		       const struct sb_config *cfg, struct sb_config_topic *t,
		       bool is_default)
{
	static const char *const known_default[] = {
	    "capacity", "max_message",	"mode",	    "overflow", "linger_ms",
	    "access",	"max_stall_ms", "checksum", "metadata", NULL,
	};
	static const char *const known_topic[] = {
	    "name",	    "capacity",	 "max_message", "mode",
	    "overflow",	    "linger_ms", "persistent",	"access",
	    "max_stall_ms", "checksum",	 "metadata",	NULL,
	};
	int r, mode = -1, overflow = -1; /* indexes of the names given */

	r = expect_object(c, obj, path);
	if (r == 0) {
		r = check_fields(c, obj, path,
				 is_default ? known_default : known_topic);
	}
	if (r < 0) {
		return r;
	}
	if (!is_default) {
		r = get_name(c, obj, path, "topic", &t->name);
		if (r < 0) {
			return r;
		}
		r = get_bool(c, obj, path, "persistent", &t->persistent);
		if (r < 0) {
			return r;
		}
	}
	/* Sizes take any value here: the geometry rule below says what a
	 * ring can be, in one message. */
	if ((r = get_size(c, obj, path, "capacity", 0, UINT64_MAX,
			  &t->capacity)) < 0 ||
	    (r = get_size(c, obj, path, "max_message", 0, UINT64_MAX,
			  &t->max_message)) < 0 ||
	    (r = get_enum(c, obj, path, "mode", sb_mode_names, &mode)) < 0 ||
	    (r = get_enum(c, obj, path, "overflow", sb_overflow_names,
			  &overflow)) < 0 ||
	    (r = get_u32(c, obj, path, "linger_ms", 0, SB_CONFIG_LINGER_MS_MAX,
			 &t->linger_ms)) < 0 ||
	    (r = get_u32(c, obj, path, "max_stall_ms", 0,
			 SB_CONFIG_MAX_STALL_MS_MAX, &t->max_stall_ms)) < 0 ||
	    (r = get_checksum(c, obj, path, &t->checksum)) < 0 ||
	    (r = get_bool(c, obj, path, "metadata", &t->metadata)) < 0 ||
	    (r = parse_access(c, obj, path, &t->access, TOPIC_RIGHTS)) < 0) {
		return r;
	}
	if (mode >= 0) {
		t->mode = sb_mode_parse(sb_mode_names[mode]);
	}
	if (overflow >= 0) {
		t->overflow = sb_overflow_parse(sb_overflow_names[overflow]);
	}
	return check_topic_geometry(c, obj, path, cfg, t);
}

static int compare_names(const void *a, const void *b)
{
	const struct sb_config_topic *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/* Sorting finds duplicates in O(n log n): a file may list thousands. */
static int check_duplicates(const struct ctx *c, const struct sb_config *cfg)
{
	struct sb_config_topic **by_name;
	char path[PATH_LEN];
	int r = 0;

	by_name = malloc(cfg->n_topics * sizeof(*by_name));
	if (by_name == NULL) {
		return out_of_memory(c);
	}
	for (size_t i = 0; i < cfg->n_topics; i++) {
		by_name[i] = &cfg->topics[i];
	}
	qsort(by_name, cfg->n_topics, sizeof(*by_name), compare_names);
	for (size_t i = 1; i < cfg->n_topics && r == 0; i++) {
		size_t x = (size_t)(by_name[i - 1] - cfg->topics);
		size_t y = (size_t)(by_name[i] - cfg->topics);

		if (strcmp(by_name[i - 1]->name, by_name[i]->name) != 0) {
			continue;
		}
		/* qsort is not stable: name the later entry as the
		 * duplicate of the earlier one. */
		snprintf(path, sizeof(path), "topics[%zu].name", x > y ? x : y);
		r = fail(c, path, "duplicate topic \"%s\" (also topics[%zu])",
			 by_name[i]->name, x < y ? x : y);
	}
	free(by_name);
	return r;
}

static int parse_topics(const struct ctx *c, const cJSON *root,
			struct sb_config *cfg)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "topics");
	const cJSON *item;
	char path[PATH_LEN], fpath[PATH_LEN], got[64], a[32], b[32];
	uint64_t total = 0;
	size_t n;
	int r;

	if (v == NULL) {
		return 0;
	}
	if (!cJSON_IsArray(v)) {
		return fail(c, "topics", "must be an array of objects (got %s)",
			    describe(v, got, sizeof(got)));
	}
	n = (size_t)cJSON_GetArraySize(v);
	if (n > cfg->limits.max_topics) {
		return fail(
		    c, "topics",
		    "%zu topics, more than limits.max_topics = %" PRIu32, n,
		    cfg->limits.max_topics);
	}
	if (n == 0) {
		return 0;
	}
	cfg->topics = calloc(n, sizeof(*cfg->topics));
	if (cfg->topics == NULL) {
		return out_of_memory(c);
	}
	cJSON_ArrayForEach(item, v)
	{
		struct sb_config_topic *t = &cfg->topics[cfg->n_topics++];

		join_index(path, "topics", cfg->n_topics - 1);
		*t = cfg->topic_defaults;
		t->name = NULL;
		if (access_copy(&t->access, &cfg->topic_defaults.access) < 0) {
			return out_of_memory(c);
		}
		r = parse_topic(c, item, path, cfg, t, false);
		if (r < 0) {
			return r;
		}
		if (t->persistent && cfg->data_dir == NULL) {
			join(fpath, path, "persistent");
			return fail(c, fpath,
				    "requires \"data_dir\" to be set");
		}
		total += t->capacity;
	}
	r = check_duplicates(c, cfg);
	if (r < 0) {
		return r;
	}
	/* Predeclared topics may all exist at once. */
	if (total > cfg->limits.max_ring_bytes) {
		return fail(
		    c, "topics",
		    "the topics need %s of rings together, more than "
		    "limits.max_ring_bytes = %s",
		    sb_size_format(total, a, sizeof(a)),
		    sb_size_format(cfg->limits.max_ring_bytes, b, sizeof(b)));
	}
	return 0;
}

/* Fields of service_defaults (s->name NULL) or of one predeclared
 * service. */
static int parse_service(const struct ctx *c, const cJSON *obj,
			 const char *path, const struct sb_config *cfg,
			 struct sb_config_service *s, bool is_default)
{
	static const char *const known_default[] = {"capacity", "max_message",
						    "access", NULL};
	static const char *const known_service[] = {
	    "name", "capacity", "max_message", "access", NULL};
	char fpath[PATH_LEN];
	int r;

	r = expect_object(c, obj, path);
	if (r == 0) {
		r = check_fields(c, obj, path,
				 is_default ? known_default : known_service);
	}
	if (r < 0) {
		return r;
	}
	if (!is_default) {
		r = get_name(c, obj, path, "service", &s->name);
		if (r < 0) {
			return r;
		}
	}
	if ((r = get_size(c, obj, path, "capacity", 0, UINT64_MAX,
			  &s->capacity)) < 0 ||
	    (r = get_size(c, obj, path, "max_message", 0, UINT64_MAX,
			  &s->max_message)) < 0 ||
	    (r = parse_access(c, obj, path, &s->access, SERVICE_RIGHTS)) < 0) {
		return r;
	}
	if (sb_chan_segment_size(s->capacity, s->max_message) == 0) {
		join(fpath, path, "capacity");
		return fail(c, fpath,
			    "a channel's capacity must be a power of two from "
			    "4KiB to 1GiB and max_message 1 to a quarter of it "
			    "(got %" PRIu64 " and %" PRIu64 ")",
			    s->capacity, s->max_message);
	}
	if (s->max_message > cfg->limits.max_message) {
		join(fpath, path, "max_message");
		return fail(c, fpath,
			    "must be at most limits.max_message (got %" PRIu64
			    ")",
			    s->max_message);
	}
	return 0;
}

static int parse_services(const struct ctx *c, const cJSON *root,
			  struct sb_config *cfg)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "services");
	const cJSON *d =
	    cJSON_GetObjectItemCaseSensitive(root, "service_defaults");
	const cJSON *item;
	char path[PATH_LEN], got[64];
	int r;

	r = d != NULL ? parse_service(c, d, "service_defaults", cfg,
				      &cfg->service_defaults, true)
		      : 0;
	if (r < 0 || v == NULL) {
		return r;
	}
	if (!cJSON_IsArray(v)) {
		return fail(c, "services",
			    "must be an array of objects (got %s)",
			    describe(v, got, sizeof(got)));
	}
	cfg->services =
	    calloc((size_t)cJSON_GetArraySize(v) + 1, sizeof(*cfg->services));
	if (cfg->services == NULL) {
		return out_of_memory(c);
	}
	cJSON_ArrayForEach(item, v)
	{
		struct sb_config_service *s = &cfg->services[cfg->n_services++];

		join_index(path, "services", cfg->n_services - 1);
		*s = cfg->service_defaults;
		s->name = NULL;
		if (access_copy(&s->access, &cfg->service_defaults.access) <
		    0) {
			return out_of_memory(c);
		}
		r = parse_service(c, item, path, cfg, s, false);
		if (r < 0) {
			return r;
		}
		for (size_t i = 0; i + 1 < cfg->n_services; i++) {
			if (strcmp(cfg->services[i].name, s->name) == 0) {
				return fail(c, path,
					    "duplicate service \"%s\" (also "
					    "services[%zu])",
					    s->name, i);
			}
		}
	}
	return 0;
}

static int parse_root(const struct ctx *c, const cJSON *root,
		      struct sb_config *cfg)
{
	static const char *const known[] = {
	    "socket",		"data_dir",	  "persist_interval_ms",
	    "persist_sync",	"log_level",	  "auto_create",
	    "limits",		"topic_defaults", "topics",
	    "service_defaults", "services",	  NULL,
	};
	static const char *const levels[] = {"error", "warn", "info", "debug",
					     NULL};
	const cJSON *defaults;
	char got[64];
	int level = (int)cfg->log_level;
	int r;

	if (!cJSON_IsObject(root)) {
		return fail(c, "", "the top level must be an object (got %s)",
			    describe(root, got, sizeof(got)));
	}
	/* Order matters: limits before the topic rules they bound, and
	 * data_dir and topic_defaults before the topics that use them. */
	if ((r = check_fields(c, root, "", known)) < 0 ||
	    (r = parse_socket(c, root, cfg)) < 0 ||
	    (r = get_path(c, root, "", "data_dir", DATA_DIR_MAX, "",
			  &cfg->data_dir)) < 0 ||
	    (r = get_u32(c, root, "", "persist_interval_ms",
			 PERSIST_INTERVAL_MIN, PERSIST_INTERVAL_MAX,
			 &cfg->persist_interval_ms)) < 0 ||
	    (r = get_bool(c, root, "", "persist_sync", &cfg->persist_sync)) <
		0 ||
	    (r = get_enum(c, root, "", "log_level", levels, &level)) < 0 ||
	    (r = get_bool(c, root, "", "auto_create", &cfg->auto_create)) < 0 ||
	    (r = parse_limits(c, root, &cfg->limits)) < 0) {
		return r;
	}
	cfg->log_level = (enum sb_config_log_level)level;
	defaults = cJSON_GetObjectItemCaseSensitive(root, "topic_defaults");
	if (defaults != NULL) {
		r = parse_topic(c, defaults, "topic_defaults", cfg,
				&cfg->topic_defaults, true);
	} else {
		/* Changed limits can rule out the built-in defaults. */
		r = check_topic_geometry(c, NULL, "topic_defaults", cfg,
					 &cfg->topic_defaults);
	}
	if (r < 0) {
		return r;
	}
	r = parse_topics(c, root, cfg);
	if (r == 0) {
		r = parse_services(c, root, cfg);
	}
	return r;
}

/* A syntax error, located the way an editor shows it. */
static int fail_at(const struct ctx *c, const char *text, size_t offset,
		   const char *what, const char *extra)
{
	size_t line = 1, line_start = 0;

	for (size_t i = 0; i < offset; i++) {
		if (text[i] == '\n') {
			line++;
			line_start = i + 1;
		}
	}
	return fail(c, "", "invalid %s at line %zu, column %zu (byte %zu)%s",
		    what, line, offset - line_start + 1, offset, extra);
}

int sb_config_parse(const char *text, size_t len, const char *origin,
		    struct sb_config *out, char *err, size_t errlen)
{
	struct ctx c = {origin != NULL ? origin : "config", err, errlen};
	struct sb_config tmp;
	const char *end = NULL, *what;
	size_t bad_at;
	cJSON *root;
	int r;

	if (err != NULL && errlen > 0) {
		err[0] = '\0';
	}
	if (text == NULL) {
		text = "";
		len = 0;
	}
	if (sb_msg_check_text(text, len, &bad_at, &what) < 0) {
		return fail_at(&c, text, bad_at, what, "");
	}
	/* The Opts variant reports where parsing stopped (thread-safely);
	 * trailing data is checked here, since requiring NUL termination
	 * would demand a NUL inside the length. */
	root = cJSON_ParseWithLengthOpts(text, len, &end, false);
	if (root == NULL) {
		return fail_at(&c, text, end != NULL ? (size_t)(end - text) : 0,
			       "JSON", "");
	}
	while (end < text + len &&
	       (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) {
		end++;
	}
	if (end != text + len) {
		cJSON_Delete(root);
		return fail_at(&c, text, (size_t)(end - text), "JSON",
			       ": data after the top-level object");
	}
	sb_config_defaults(&tmp);
	r = parse_root(&c, root, &tmp);
	cJSON_Delete(root);
	if (r < 0) {
		sb_config_free(&tmp);
		return r;
	}
	*out = tmp;
	return 0;
}

static const char *errno_text(int err)
{
	const char *s = strerrordesc_np(err);

	return s != NULL ? s : "unknown error";
}

/* Reads all of `fd` into a malloc'd buffer, refusing more than the limit. */
static int read_all(const struct ctx *c, int fd, char **out, size_t *len_out)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap), *nbuf;
	ssize_t n;

	if (buf == NULL) {
		return out_of_memory(c);
	}
	for (;;) {
		if (len == cap) {
			/* One byte beyond the limit is enough to know the
			 * file is too large. */
			if (cap > SB_CONFIG_FILE_MAX) {
				free(buf);
				fail(c, "", "is larger than %d bytes (1MiB)",
				     SB_CONFIG_FILE_MAX);
				return -EFBIG;
			}
			cap = cap * 2 > SB_CONFIG_FILE_MAX
				  ? (size_t)SB_CONFIG_FILE_MAX + 1
				  : cap * 2;
			nbuf = realloc(buf, cap);
			if (nbuf == NULL) {
				free(buf);
				return out_of_memory(c);
			}
			buf = nbuf;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			int e = errno;

			free(buf);
			fail(c, "", "cannot read: %s", errno_text(e));
			return -e;
		}
		if (n == 0) {
			break;
		}
		len += (size_t)n;
	}
	*out = buf;
	*len_out = len;
	return 0;
}

int sb_config_load_file(const char *path, struct sb_config *out, char *err,
			size_t errlen)
{
	struct ctx c = {path, err, errlen};
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int fd, r;

	if (err != NULL && errlen > 0) {
		err[0] = '\0';
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		fail(&c, "", "cannot open: %s", errno_text(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		fail(&c, "", "cannot stat: %s", errno_text(-r));
	} else if (S_ISDIR(st.st_mode)) {
		r = -EISDIR;
		fail(&c, "", "is a directory");
	} else {
		r = read_all(&c, fd, &text, &len);
	}
	close(fd);
	if (r < 0) {
		return r;
	}
	r = sb_config_parse(text, len, path, out, err, errlen);
	free(text);
	return r;
}

static bool has_id(const uint32_t *ids, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++) {
		if (ids[i] == id) {
			return true;
		}
	}
	return false;
}

bool sb_config_rule_allows(const struct sb_config_rule *rule, uint32_t uid,
			   const uint32_t *gids, size_t n_gids)
{
	if (!rule->restricted || uid == 0) {
		return true;
	}
	if (has_id(rule->uids, rule->n_uids, uid)) {
		return true;
	}
	for (size_t i = 0; i < n_gids; i++) {
		if (has_id(rule->gids, rule->n_gids, gids[i])) {
			return true;
		}
	}
	return false;
}

bool sb_config_topic_checksum(const struct sb_config_topic *t)
{
	switch (t->checksum) {
	case SB_CONFIG_CHECKSUM_ON:
		return true;
	case SB_CONFIG_CHECKSUM_OFF:
		return false;
	case SB_CONFIG_CHECKSUM_AUTO:
		break;
	}
	return t->persistent;
}
