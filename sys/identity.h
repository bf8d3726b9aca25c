/*
 * identity.h - the calling thread's and process's kernel ids, cached per
 * thread and corrected in a forked child (process.c), and whether a thread
 * still lives: what locks and the solo writer record as owner.
 */
#ifndef SB_SYS_IDENTITY_H
#define SB_SYS_IDENTITY_H

#include <stdint.h>

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

#endif
