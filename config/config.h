/*
 * config.h - the broker's configuration: built-in defaults, and a pure
 * parser from JSON text to a validated struct, so that the broker runs with
 * no file at all and a bad file (at start or on SIGHUP) is refused with a
 * message naming the file, the field and the problem. Reading the file is a
 * thin wrapper. docs/config.md describes every field.
 */
#ifndef SB_CONFIG_CONFIG_H
#define SB_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/names.h"

/* Largest configuration file sb_config_load_file() reads. */
#define SB_CONFIG_FILE_MAX (1024 * 1024)

enum sb_config_log_level {
	SB_CONFIG_LOG_ERROR,
	SB_CONFIG_LOG_WARN,
	SB_CONFIG_LOG_INFO,
	SB_CONFIG_LOG_DEBUG,
};

/* A topic's mode and overflow policy are the protocol's, with its one
 * numbering (wire/names.h); these are their names in the config's terms. */
#define SB_CONFIG_BROADCAST SB_MODE_BROADCAST
#define SB_CONFIG_QUEUE	    SB_MODE_QUEUE
#define SB_CONFIG_BLOCK	    SB_OVERFLOW_BLOCK
#define SB_CONFIG_OVERWRITE SB_OVERFLOW_OVERWRITE
#define SB_CONFIG_REJECT    SB_OVERFLOW_REJECT

/* Whether a topic's records carry checksums (docs/shm-layout.md). */
enum sb_config_checksum {
	SB_CONFIG_CHECKSUM_AUTO, /* unset: on for persistent topics only */
	SB_CONFIG_CHECKSUM_ON,
	SB_CONFIG_CHECKSUM_OFF,
};

/*
 * Who may do one thing. Not restricted (the rule was absent): anyone who
 * can connect to the socket. Restricted: root, plus the listed uids, plus
 * members of the listed gids; an empty restricted rule admits root only.
 */
struct sb_config_rule {
	bool restricted;
	uint32_t *uids;
	size_t n_uids;
	uint32_t *gids;
	size_t n_gids;
};

struct sb_config_access {
	struct sb_config_rule publish;
	struct sb_config_rule subscribe;
	struct sb_config_rule admin;
	/* A service's rules (request/reply); a topic has none of these. */
	struct sb_config_rule serve;
	struct sb_config_rule request;
};

/* The largest linger_ms and max_stall_ms a topic may have (in the config
 * and in topic_create alike): a day. */
#define SB_CONFIG_LINGER_MS_MAX	   86400000
#define SB_CONFIG_MAX_STALL_MS_MAX 86400000

/* A predeclared topic, or (with name NULL) the defaults for new topics. */
struct sb_config_topic {
	char *name;	      /* NULL in topic_defaults */
	uint64_t capacity;    /* ring bytes: a power of two */
	uint64_t max_message; /* largest message, <= capacity / 4 */
	enum sb_mode mode;
	enum sb_overflow overflow;
	bool persistent;    /* a file in data_dir; always false in defaults */
	uint32_t linger_ms; /* keep an unused topic this long before removal */
	/* Evict a subscriber whose position has not moved for this long while
	 * it had messages to read (broadcast, block or reject); 0: never. */
	uint32_t max_stall_ms;
	enum sb_config_checksum checksum;
	/* Each message carries its publish time and publisher's id. */
	bool metadata;
	struct sb_config_access access;
};

/* A predeclared service, or (with name NULL) the defaults for services
 * made on demand: the geometry of each channel direction and who may
 * serve and request (docs/config.md, "Services"). */
struct sb_config_service {
	char *name;	      /* NULL in service_defaults */
	uint64_t capacity;    /* each channel ring's bytes: a power of two */
	uint64_t max_message; /* largest request or reply, <= capacity / 4 */
	struct sb_config_access access; /* serve and request only */
};

struct sb_config_limits {
	uint32_t max_clients;
	uint32_t max_clients_per_uid; /* connections of one uid */
	uint32_t max_topics;
	uint64_t max_ring_bytes;  /* all rings together */
	uint64_t max_topic_bytes; /* one ring */
	uint64_t max_message;
	uint64_t max_frame;	    /* control-protocol payload */
	uint64_t max_pending_bytes; /* per client, inbound plus outbound */
	uint32_t max_requests_in_flight;
	uint32_t max_subscribers; /* per topic */
};

struct sb_config {
	/* NULL: the standard path every client also computes
	 * ($SHMBUS_SOCKET, $XDG_RUNTIME_DIR/shmbus/shmbusd.sock,
	 * /tmp/shmbus-$UID/shmbusd.sock). */
	char *socket_path;
	uint32_t socket_dir_mode; /* permission bits, 0..0777 */
	uint32_t socket_mode;
	/* The group the socket file gets (a gid), so that socket_mode's group
	 * bits admit its members; -1: the broker's own (effective) group. */
	int64_t socket_group;
	/* NULL: no data directory, so no persistent topics. */
	char *data_dir;
	/* How often the broker writes persistent topics back to their files
	 * (also at the last close, at delete and at a clean shutdown). */
	uint32_t persist_interval_ms;
	bool persist_sync; /* fdatasync between the steps of a write-back */
	enum sb_config_log_level log_level;
	bool auto_create; /* opening a missing topic creates it */
	struct sb_config_limits limits;
	struct sb_config_topic topic_defaults;
	struct sb_config_topic *topics;
	size_t n_topics;
	struct sb_config_service service_defaults;
	struct sb_config_service *services;
	size_t n_services;
};

/*
 * Fills `cfg` with the built-in defaults. Allocates nothing; calling
 * sb_config_free() on the result is allowed and harmless.
 */
void sb_config_defaults(struct sb_config *cfg);

/*
 * Parses `len` bytes of JSON `text` (need not be NUL-terminated) on top of
 * the built-in defaults. `origin` (a file name, or NULL for "config")
 * starts every message.
 *
 * Returns 0 with *out replaced by the new configuration (the caller owns
 * it and frees it with sb_config_free(); whatever *out held before is not
 * freed, so a reload can parse into a fresh struct and swap). On failure
 * *out is untouched, nothing leaks, and `err` (errlen bytes, may be NULL)
 * holds one line such as
 *   shmbusd.json: topics[2].overflow: must be one of "block", "overwrite",
 *   "reject" (got "drop")
 * Errors: -EINVAL (the text is not a valid configuration), -ENOMEM.
 */
int sb_config_parse(const char *text, size_t len, const char *origin,
		    struct sb_config *out, char *err, size_t errlen);

/*
 * Reads the file at `path` (at most SB_CONFIG_FILE_MAX bytes) and parses it
 * with `path` as the origin. Returns 0, or a negative errno with a message
 * in `err`: -ENOENT, -EACCES, ... (cannot open or read, errno passed
 * through), -EISDIR, -EFBIG (larger than SB_CONFIG_FILE_MAX), or what
 * sb_config_parse() returns.
 */
int sb_config_load_file(const char *path, struct sb_config *out, char *err,
			size_t errlen);

/* Frees everything `cfg` owns and zeroes it. Safe to call twice. */
void sb_config_free(struct sb_config *cfg);

/*
 * The ring geometry rule for the config parser and the broker's
 * topic_create handler: what sb_ring_layout() accepts (the one place the
 * ring's limits live: capacity a power of two from 4KiB to 1GiB, max_message
 * up to capacity / 4), plus max_message >= 1, capacity at most
 * limits->max_topic_bytes and max_message at most limits->max_message.
 *
 * Returns 0, or -EINVAL with *field set to "capacity" or "max_message" (the
 * one to blame) and `why` (whylen bytes, may be NULL) saying what is wrong.
 */
int sb_config_check_geometry(uint64_t capacity, uint64_t max_message,
			     const struct sb_config_limits *limits,
			     const char **field, char *why, size_t whylen);

/* Whether topic `t` gets checksummed records: as set, else (unset) when
 * it is persistent, where a damaged file must not be taken for messages. */
bool sb_config_topic_checksum(const struct sb_config_topic *t);

/* Sizes ("64KiB") are parsed and printed by wire/size.h. */

/*
 * Whether a peer with user `uid` and groups `gids` (primary and
 * supplementary, n_gids of them) passes `rule`.
 */
bool sb_config_rule_allows(const struct sb_config_rule *rule, uint32_t uid,
			   const uint32_t *gids, size_t n_gids);

#endif
