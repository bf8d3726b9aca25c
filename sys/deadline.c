/*
 * deadline.c - the timeout arithmetic shared by every blocking call in the
 * library.
 */
#include <time.h>

#include "sys/deadline.h"

const struct timespec *sb_deadline_init(int timeout_ms,
					struct timespec *deadline)
{
	if (timeout_ms < 0) {
		return NULL;
	}
	clock_gettime(CLOCK_MONOTONIC, deadline);
	deadline->tv_sec += timeout_ms / 1000;
	deadline->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline->tv_nsec >= 1000000000L) {
		deadline->tv_sec++;
		deadline->tv_nsec -= 1000000000L;
	}
	return deadline;
}

long long sb_deadline_remaining_ns(const struct timespec *deadline)
{
	struct timespec now;
	long long ns;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (long long)(deadline->tv_sec - now.tv_sec) * 1000000000LL +
	     (deadline->tv_nsec - now.tv_nsec);
	return ns > 0 ? ns : 0;
}

int sb_deadline_passed(const struct timespec *deadline)
{
	return deadline != NULL && sb_deadline_remaining_ns(deadline) == 0;
}

const struct timespec *sb_wait_deadline(struct sb_wait *w)
{
	if (w->timeout_ms < 0) {
		return NULL;
	}
	if (!w->started) {
		sb_deadline_init(w->timeout_ms, &w->deadline);
		w->started = 1;
	}
	return &w->deadline;
}
