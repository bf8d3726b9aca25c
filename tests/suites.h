/*
 * suites.h - the list of Check suites the runner executes. A module's tests
 * live in tests/check_<module>.c and export <module>_suite(); adding the
 * module to SB_TEST_SUITES is what registers it.
 */
#ifndef SB_TEST_SUITES_H
#define SB_TEST_SUITES_H

#include <check.h>

/* One suite per line, so that adding one never conflicts with another. */
#define SB_TEST_SUITES(X)                                                      \
	X(error)                                                               \
	X(map)                                                                 \
	X(ring)                                                                \
	X(ring_mp)                                                             \
	X(ring_wait)                                                           \
	X(checksum)                                                            \
	X(solo)                                                                \
	X(waiters)                                                             \
	X(shm_lock)                                                            \
	X(hostile)                                                             \
	X(persist)                                                             \
	X(access)                                                              \
	X(inflight)                                                            \
	X(evict)                                                               \
	X(crash)                                                               \
	X(sockpath)                                                            \
	X(sockdir)                                                             \
	X(frame)                                                               \
	X(fdpass)                                                              \
	X(topic_name)                                                          \
	X(subject)                                                             \
	X(message)                                                             \
	X(fuzz_regressions)                                                    \
	X(config)                                                              \
	X(size)                                                                \
	X(broker)                                                              \
	X(bus)                                                                 \
	X(linger)                                                              \
	X(cli)                                                                 \
	X(restart)                                                             \
	X(adopt)                                                               \
	X(tamper)                                                              \
	X(stats)                                                               \
	X(watch)                                                               \
	X(bridge)                                                              \
	X(bridge_faults)                                                       \
	X(reqrep)

#define SB_DECLARE_SUITE(name) Suite *name##_suite(void);
SB_TEST_SUITES(SB_DECLARE_SUITE)
#undef SB_DECLARE_SUITE

#endif
