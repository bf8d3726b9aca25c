/*
 * log.c - stderr log lines with timestamp, pid and level (see log.h). One
 * fprintf per line, so that lines from a forked child never interleave
 * mid-line with ours.
 */
#include "daemon/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static enum sb_config_log_level max_level = SB_CONFIG_LOG_INFO;

void sbd_log_set_level(enum sb_config_log_level level)
{
	max_level = level;
}

const char *sbd_log_level_name(enum sb_config_log_level level)
{
	switch (level) {
	case SB_CONFIG_LOG_ERROR:
		return "error";
	case SB_CONFIG_LOG_WARN:
		return "warn";
	case SB_CONFIG_LOG_INFO:
		return "info";
	case SB_CONFIG_LOG_DEBUG:
		return "debug";
	}
	return "?";
}

static const char *upper_name(enum sb_config_log_level level)
{
	switch (level) {
	case SB_CONFIG_LOG_ERROR:
		return "ERROR";
	case SB_CONFIG_LOG_WARN:
		return "WARN";
	case SB_CONFIG_LOG_INFO:
		return "INFO";
	case SB_CONFIG_LOG_DEBUG:
		return "DEBUG";
	}
	return "?";
}

void sbd_log(enum sb_config_log_level level, const char *fmt, ...)
{
	int saved = errno;
	char msg[1024];
	char stamp[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	if (level > max_level) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ shmbusd[%ld] %s: %s\n", stamp,
		ts.tv_nsec / 1000000, (long)getpid(), upper_name(level), msg);
	errno = saved;
}
