/*
 * log.h - the broker's log: one line per event on stderr, with a UTC
 * timestamp, the program name and pid, and a level, filtered by the
 * configured level. Supervisors (systemd, a terminal, the tests) capture
 * stderr, so the broker needs no log files of its own.
 */
#ifndef SBD_LOG_H
#define SBD_LOG_H

#include "config/config.h"

/* Sets the most verbose level that is still written. */
void sbd_log_set_level(enum sb_config_log_level level);

/* The name of a level ("error", "warn", "info", "debug"). */
const char *sbd_log_level_name(enum sb_config_log_level level);

/*
 * Writes one line if `level` passes the filter:
 *   2026-11-22T02:45:01.123Z shmbusd[4242] INFO: message
 * The message should name the failing call and the object, e.g.
 * `memfd_create(topic "imu"): No space left on device`. Keeps errno.
 */
__attribute__((format(printf, 2, 3))) void
sbd_log(enum sb_config_log_level level, const char *fmt, ...);

#define sbd_error(...) sbd_log(SB_CONFIG_LOG_ERROR, __VA_ARGS__)
#define sbd_warn(...)  sbd_log(SB_CONFIG_LOG_WARN, __VA_ARGS__)
#define sbd_info(...)  sbd_log(SB_CONFIG_LOG_INFO, __VA_ARGS__)
#define sbd_debug(...) sbd_log(SB_CONFIG_LOG_DEBUG, __VA_ARGS__)

#endif
