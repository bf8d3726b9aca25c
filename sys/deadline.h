/*
 * deadline.h - the timeout arithmetic shared by every blocking call of the
 * library (CLOCK_MONOTONIC).
 */
#ifndef SB_SYS_DEADLINE_H
#define SB_SYS_DEADLINE_H

#include <time.h>

/*
 * Deadlines. timeout_ms: 0 = do not wait, -1 = forever, > 0 = milliseconds.
 * sb_deadline_init fills *deadline and returns it, or NULL for "forever".
 */
const struct timespec *sb_deadline_init(int timeout_ms,
					struct timespec *deadline);

/* 1 when the CLOCK_MONOTONIC `deadline` has passed (NULL never passes). */
int sb_deadline_passed(const struct timespec *deadline);

/* Nanoseconds left until `deadline`, 0 when it has passed. */
long long sb_deadline_remaining_ns(const struct timespec *deadline);

/*
 * How long one call may wait. The deadline is read from the clock only when
 * the call first has to wait, so calls that find their lock free and their
 * data ready never call clock_gettime (it is measured from that moment,
 * which is within the call's first few hundred instructions).
 */
struct sb_wait {
	int timeout_ms; /* 0 = do not wait, -1 = forever */
	int started;
	struct timespec deadline;
};

static inline struct sb_wait sb_wait_start(int timeout_ms)
{
	struct sb_wait w = {.timeout_ms = timeout_ms, .started = 0};

	return w;
}

/* The deadline (NULL = forever), computed on the first call. */
const struct timespec *sb_wait_deadline(struct sb_wait *w);

#endif
