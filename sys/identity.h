/*
 * identity.h - the calling thread's and process's kernel ids, cached per
 * thread and corrected in a forked child (process.c), and whether a thread
 * still lives: what locks and the solo writer record as owner.
 */
#ifndef SB_SYS_IDENTITY_H
#define SB_SYS_IDENTITY_H

#include <stdatomic.h>
#include <stdint.h>

/*
 * What sb_thread_id() reads (process.c): the id, cached per thread
 * (initial-exec TLS: one load, no __tls_get_addr), and the fork mark, a
 * page the kernel zeroes in a forked child (NULL when it cannot), so that
 * a child made without the atfork handlers finds the cache stale. Written
 * only by process.c.
 */
extern _Thread_local uint32_t sb_cached_tid
    __attribute__((tls_model("initial-exec")));
extern _Atomic(_Atomic unsigned char *) sb_fork_mark;

/* The slow path: after a fork or at a thread's first call, fills the
 * cache (one system call) and returns the id. */
uint32_t sb_thread_id_refresh(void);

/* The calling thread's kernel id, cached (corrected in a forked child).
 * Inline: the bus client asks it at each claim and commit. */
static inline uint32_t sb_thread_id(void)
{
	_Atomic unsigned char *mark =
	    atomic_load_explicit(&sb_fork_mark, memory_order_relaxed);
	uint32_t tid = sb_cached_tid;

	if (tid == 0 ||
	    (mark != NULL &&
	     atomic_load_explicit(mark, memory_order_relaxed) == 0)) {
		return sb_thread_id_refresh();
	}
	return tid;
}

/* The calling process's id, cached (corrected in a forked child). */
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

#endif
