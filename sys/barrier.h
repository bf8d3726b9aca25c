/*
 * barrier.h - what the shared-memory paths use to order their accesses
 * besides the C11 atomics themselves: a CPU pause for spin loops, a
 * prefetch for lines about to be written, and the asymmetric fence
 * (process.c). Memory orders are written at each use, each acquire or
 * release with a comment naming the access it pairs with; the pairs of the
 * ring are listed field by field in docs/shm-layout.md ("Ordering").
 */
#ifndef SB_SYS_BARRIER_H
#define SB_SYS_BARRIER_H

#include <assert.h>
#include <stdatomic.h>
#include <stdint.h>

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
 * The asymmetric fence (process.c). sb_fence_init() registers the process
 * once; after it, sb_fence_cheap_ok() says whether this process may use
 * only a compiler barrier on the hot side of a Dekker pair, and
 * sb_fence_heavy() is the other side: a full barrier in every registered
 * process (or only here, when the kernel cannot do that, in which case no
 * process is registered and every hot side uses full fences).
 */
void sb_fence_init(void);
int sb_fence_cheap_ok(void);
int sb_fence_heavy(void); /* 0, or < 0: only a full fence of our own */

#endif
