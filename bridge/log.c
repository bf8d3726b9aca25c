/*
 * log.c - the bridge's log: one line per event on stderr, as shmbusd's
 *   2026-12-05T17:45:01.123Z shmbus-bridge[4242] INFO: message
 * so that a supervisor's journal reads both the same way.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "bridge/bridge.h"

void sbb_log(const char *level, const char *fmt, ...)
{
	int saved = errno;
	struct timespec ts;
	struct tm tm;
	char when[32], line[2048];
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One fprintf: the line is written whole even from several threads. */
	fprintf(stderr, "%s.%03ldZ shmbus-bridge[%ld] %s: %s\n", when,
		ts.tv_nsec / 1000000, (long)getpid(), level, line);
	errno = saved;
}
