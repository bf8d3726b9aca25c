/*
 * spin.h - the busy-wait step shared by every spinning transport in the
 * benchmark, so that they all spin the same way and the floor is measured
 * with the same loop a spinning receiver would use.
 */
#ifndef SHMBUS_BENCH_SPIN_H
#define SHMBUS_BENCH_SPIN_H

#include <sched.h>
#include <stdint.h>

/*
 * Spins after which a waiter gives up its CPU once: a thousand pause
 * steps, far above any wait on a dedicated core (a cache-line transfer,
 * the floor of bench/README.md), where the yield then costs one cheap
 * system call. It matters
 * when both sides share one CPU (--pin A,A, or one core): without it each
 * side would burn its whole time slice before the other could run.
 */
#define BENCH_SPIN_YIELD_AFTER (1u << 10)

/*
 * One step of a busy-wait: a CPU hint that we are spinning (it saves power
 * and leaves the pipeline to a sibling thread; on x86 it also avoids the
 * memory-order flush on leaving the loop), and a yield every
 * BENCH_SPIN_YIELD_AFTER steps. `spins` counts the steps of the current wait.
 */
static inline void bench_spin_step(uint32_t *spins)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
	if (++*spins >= BENCH_SPIN_YIELD_AFTER) {
		*spins = 0;
		sched_yield();
	}
}

#endif
