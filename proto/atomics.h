/*
 * atomics.h - the few primitives every shared-memory path uses, kept in one
 * place: a CPU pause for spin loops and the futex calls used to sleep on a
 * 32-bit word in shared memory. Memory orders themselves are written at each
 * use, with a comment naming the operation they pair with.
 */
#ifndef SB_ATOMICS_H
#define SB_ATOMICS_H

#include <assert.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");
static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");

/* Tells the CPU we are spinning (saves power, frees the sibling thread). */
static inline void sb_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

/*
 * Asks for the cache line at `p` in a state we can write, without waiting
 * for it: a later store then does not sit in the store buffer behind a
 * transfer from another core. (A no-op on processors without PREFETCHW.)
 */
static inline void sb_prefetch_for_write(const void *p)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ __volatile__("prefetchw %0" : : "m"(*(const char *)p));
#else
	__builtin_prefetch(p, 1, 3);
#endif
}

/*
 * The asymmetric fence (fence.c). sb_fence_init() registers the process
 * once; after it, sb_fence_cheap_ok() says whether this process may use
 * only a compiler barrier on the hot side of a Dekker pair, and
 * sb_fence_heavy() is the other side: a full barrier in every registered
 * process (or only here, when the kernel cannot do that, in which case no
 * process is registered and every hot side uses full fences).
 */
void sb_fence_init(void);
int sb_fence_cheap_ok(void);
int sb_fence_heavy(void); /* 0, or < 0: only a full fence of our own */

/* The calling thread's and process's kernel ids, cached (reset in a
 * forked child). */
uint32_t sb_thread_id(void);
uint32_t sb_process_id(void);

/* Both ids at once, and sb_fence_cheap_ok()'s answer as the return value:
 * what the solo path asks on every publish, in one call. */
struct sb_self {
	uint32_t tid;
	uint32_t pid;
};
int sb_self(struct sb_self *me);

/* 0 when thread `tid` of process `pid` does not exist (or cannot). */
int sb_thread_alive(uint32_t pid, uint32_t tid);

/*
 * Sleeps while *word == expected, until woken or `deadline` (CLOCK_MONOTONIC,
 * NULL = forever) passes. The futex is shared (not FUTEX_PRIVATE) because
 * sleepers and wakers are different processes. Returns 0 when woken or when
 * the word had already changed, -ETIMEDOUT, -EINTR, or another -errno
 * (-EFAULT if the word is not mapped).
 */
int sb_futex_wait(_Atomic uint32_t *word, uint32_t expected,
                  const struct timespec *deadline);

/* Wakes up to `count` sleepers on `word`. */
void sb_futex_wake(_Atomic uint32_t *word, int count);

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
