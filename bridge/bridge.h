/*
 * bridge.h - shmbus-bridge: shmbus topics exported to NATS subjects and
 * NATS subjects imported into shmbus topics (docs/bridge.md). One process,
 * one shmbus connection, one NATS connection:
 *
 *   config.c   the JSON file and the flags, checked
 *   export.c   one thread per exported topic: ring -> NATS
 *   import.c   one NATS subscription per import: NATS -> ring
 *   link.c     the NATS connection: options, credentials, reconnects
 *   stats.c    the counters, as JSON on shmbus.<origin>._stats and logged
 *   strmap.c   a small string-keyed table (pubs by topic, sequences)
 *   log.c      log lines on stderr
 *   main.c     flags, signals (TERM drains, HUP reloads), the stats timer
 */
#ifndef SBB_BRIDGE_H
#define SBB_BRIDGE_H

#include <nats/nats.h>
#include <pthread.h>
#include <shmbus/shmbus.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit statuses (shmbus-bridge(1)). */
enum {
	SBB_EXIT_OK = 0,
	SBB_EXIT_ERROR = 1,   /* a failure while running */
	SBB_EXIT_USAGE = 2,   /* bad flags or configuration */
	SBB_EXIT_GAVE_UP = 3, /* NATS or shmbusd unreachable for --give-up */
};

/* Headers every exported message carries (docs/bridge.md, "Headers"). */
#define SBB_HDR_ORIGIN "Shmbus-Origin"
#define SBB_HDR_RUN    "Shmbus-Run"
#define SBB_HDR_SEQ    "Shmbus-Seq"
#define SBB_HDR_STATS  "Shmbus-Stats"

/* ---- configuration (config.c) ---------------------------------------- */

struct sbb_export_map {
	char *topic;
	char *subject; /* shmbus.<origin>.<topic> unless given */
};

struct sbb_import_map {
	char *subject; /* may hold wildcards */
	char *topic;   /* NULL: each message's topic from its subject */
};

struct sbb_config {
	char *socket; /* NULL: the library's default */
	char *origin; /* a subject token; default the host name */
	char *url;    /* one or more, comma-separated */
	char *user, *password, *token;
	char *ca_file, *cert_file, *key_file; /* TLS when ca_file is set */
	uint64_t reconnect_buffer; /* bytes kept while disconnected */
	double give_up;		   /* seconds; 0: retry forever */
	double stats_interval;	   /* seconds */
	double publish_timeout;	   /* seconds, importing */
	struct sbb_export_map *exports;
	size_t nexports;
	struct sbb_import_map *imports;
	size_t nimports;
};

void sbb_config_defaults(struct sbb_config *cfg);
void sbb_config_free(struct sbb_config *cfg);

/* Reads a JSON configuration file into `cfg` (over its defaults). 0, or
 * -1 with `err` naming the file and the field. */
int sbb_config_load(const char *path, struct sbb_config *cfg, char *err,
		    size_t errlen);

/* --export TOPIC[=SUBJECT] and --import SUBJECT[=TOPIC]. 0 or -1 (err). */
int sbb_config_add_export(struct sbb_config *cfg, const char *arg, char *err,
			  size_t errlen);
int sbb_config_add_import(struct sbb_config *cfg, const char *arg, char *err,
			  size_t errlen);

/* Fills what was left to defaults (origin, export subjects) and checks the
 * whole. 0, or -1 with `err`. */
int sbb_config_finish(struct sbb_config *cfg, char *err, size_t errlen);

/* Parses a duration or size field value given as a flag. */
int sbb_parse_duration(const char *what, const char *text, double *seconds,
		       char *err, size_t errlen);
int sbb_parse_size(const char *what, const char *text, uint64_t *bytes,
		   char *err, size_t errlen);

/* ---- a string-keyed table (strmap.c) ---------------------------------- */

struct sbb_strmap {
	struct sbb_strmap_entry *v;
	size_t cap, n;
	size_t max; /* keys it takes at most (set before use) */
};

/* The value slot of `key`, made (zeroed) if absent; NULL if out of
 * memory or the table holds `max` keys already. Values are the caller's;
 * keys are copied. */
void **sbb_strmap_slot(struct sbb_strmap *m, const char *key);
/* Calls `fn` on every value, then frees the table. */
void sbb_strmap_free(struct sbb_strmap *m, void (*fn)(void *value));

/* ---- counters --------------------------------------------------------- */

struct sbb_export_counts {
	_Atomic uint64_t sent, bytes, lost, skipped_own, too_big, buffer_full,
	    failed;
};

struct sbb_import_counts {
	_Atomic uint64_t received, delivered, own_origin, stats, gaps,
	    reordered, untracked, too_big, full, no_topic, bad_subject,
	    loop_unsafe, failed;
};

/* ---- the bridge ------------------------------------------------------- */

struct sbb_bridge;

struct sbb_export {
	struct sbb_bridge *br;
	char *topic, *subject;
	pthread_t thread;
	_Atomic int stop; /* SBB_RUN, SBB_DRAIN, SBB_STOP */
	/* Set by the watch thread when the topic's name was removed: the
	 * thread moves to what the name is now (sbb_watch_start()). */
	_Atomic int deleted;
	uint64_t seq; /* the last Shmbus-Seq sent; the thread's own */
	struct sbb_export_counts n;
};

enum { SBB_RUN, SBB_DRAIN, SBB_STOP };

struct sbb_import {
	struct sbb_bridge *br;
	char *subject, *topic;
	natsSubscription *sub;
	/* The subscription's delivery thread's own: */
	struct sbb_strmap pubs; /* topic -> shmbus_pub */
	void *fixed;		/* with a topic: its entry in pubs, once made */
	struct sbb_strmap seqs; /* "origin run subject" -> last seq */
	struct sbb_import_counts n;
};

/* The publisher ids the importer's pubs write (shmbus_pub_id()): one per
 * connection to shmbusd, so a few; kept as a ring, read without a lock. */
#define SBB_OWN_IDS 64

struct sbb_bridge {
	struct sbb_config cfg;
	const char *config_path; /* NULL: flags only; SIGHUP keeps them */
	shmbus *bus;
	natsConnection *nc;
	char run[17]; /* this process's Shmbus-Run, 16 hex digits */
	/* NATS link state, set by link.c's callbacks. */
	_Atomic bool connected;
	_Atomic bool closing;	       /* draining: a disconnect is expected */
	_Atomic int64_t down_since_ms; /* 0 while connected */
	_Atomic int64_t max_payload;
	_Atomic uint64_t reconnects, disconnects, async_errors;
	/* Mappings in force; changed only by the main thread (start, reload,
	 * drain) under `maps_lock`, which import.c takes to ask whether a
	 * topic is exported. */
	pthread_mutex_t maps_lock;
	struct sbb_export **exports;
	size_t nexports;
	struct sbb_import **imports;
	size_t nimports;
	_Atomic uint64_t own_ids[SBB_OWN_IDS];
	_Atomic size_t n_own;
	/* The thread watching topic deletions (export.c). */
	pthread_t watcher;
	bool watching;
	_Atomic bool watch_stop;
};

/* link.c */
int sbb_link_open(struct sbb_bridge *br, char *err, size_t errlen);
void sbb_link_close(struct sbb_bridge *br);
int64_t sbb_now_ms(void);

/* export.c */
int sbb_export_start(struct sbb_bridge *br, const struct sbb_export_map *m,
		     struct sbb_export **out);
/* Stops the thread (SBB_DRAIN: after what its topic holds now); its
 * counters stay readable until sbb_export_free(). */
void sbb_export_stop(struct sbb_export *e, int how);
void sbb_export_free(struct sbb_export *e);
bool sbb_is_own_publisher(struct sbb_bridge *br, uint64_t id);
/* A thread that watches topic deletions (again after shmbusd restarts)
 * and has the exports of a deleted topic open its name again. Started
 * once the mappings are; stopped before they are drained. */
int sbb_watch_start(struct sbb_bridge *br);
void sbb_watch_stop(struct sbb_bridge *br);

/* import.c */
int sbb_import_start(struct sbb_bridge *br, const struct sbb_import_map *m,
		     struct sbb_import **out);
/* Ends the subscription, draining what NATS has delivered; its counters
 * stay readable until sbb_import_free(). */
void sbb_import_stop(struct sbb_import *im);
void sbb_import_free(struct sbb_import *im);
/* Creates `topic` with metadata and the broker's other defaults unless it
 * exists (then 0, whatever its settings). 0 or a negative errno. */
int sbb_topic_create_if_missing(struct sbb_bridge *br, const char *topic);
/* Whether this bridge exports `topic` (takes maps_lock). */
bool sbb_exports_topic(struct sbb_bridge *br, const char *topic);

/* stats.c: the counters as one JSON object (caller frees with free()). */
char *sbb_stats_json(struct sbb_bridge *br);
void sbb_stats_publish(struct sbb_bridge *br);

/* log.c */
__attribute__((format(printf, 2, 3))) void sbb_log(const char *level,
						   const char *fmt, ...);
#define sbb_error(...) sbb_log("ERROR", __VA_ARGS__)
#define sbb_warn(...)  sbb_log("WARN", __VA_ARGS__)
#define sbb_info(...)  sbb_log("INFO", __VA_ARGS__)

#endif
