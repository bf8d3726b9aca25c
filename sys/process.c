/*
 * fence.c - the asymmetric fence: a cheap side that only keeps the
 * compiler from reordering, and a heavy side that makes every thread of
 * every registered process execute a full barrier (membarrier(2),
 * MEMBARRIER_CMD_GLOBAL_EXPEDITED). The ring uses it for its Dekker pairs
 * whose one side runs on every message (a publish, a read) and whose other
 * side runs only before someone sleeps or takes over a writer: the hot side
 * then pays nothing, and the rare side one system call.
 *
 * A process may take the cheap side only when it registered with the
 * kernel (sb_fence_cheap_ok()); otherwise it uses full fences itself, so a
 * kernel without membarrier costs speed, never correctness.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sys/barrier.h"
#include "sys/identity.h"

static _Atomic int registered; /* this process: cheap side allowed */
static _Atomic int heavy_ok;   /* the kernel has GLOBAL_EXPEDITED */
static pthread_once_t once = PTHREAD_ONCE_INIT;
/* initial-exec: read at every publish, and the default model of a shared
 * library calls __tls_get_addr for each read. The cost is a few bytes of
 * the static TLS that glibc keeps spare for libraries loaded by dlopen. */
_Thread_local uint32_t sb_cached_tid __attribute__((tls_model("initial-exec")));
static _Atomic uint32_t cached_pid;
/* A page the kernel zeroes in any forked child (MADV_WIPEONFORK), holding
 * 1: a child made without pthread_atfork handlers (_Fork(), a raw fork or
 * clone) would otherwise go on with its parent's ids above, and could
 * take its parent's solo path. NULL when the kernel lacks the advice. */
_Atomic(_Atomic unsigned char *) sb_fork_mark;

static long membarrier(int cmd)
{
	return syscall(__NR_membarrier, cmd, 0, 0);
}

static void register_process(void)
{
	long cmds = membarrier(MEMBARRIER_CMD_QUERY);
	int ok = cmds > 0 && (cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0 &&
		 (cmds & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0;

	atomic_store(&heavy_ok, ok);
	atomic_store(
	    &registered,
	    ok && membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0);
}

/* A forked child is a new process: register it (the kernel may or may not
 * carry the registration over), and forget the parent's thread id. */
static void after_fork_in_child(void)
{
	_Atomic unsigned char *mark =
	    atomic_load_explicit(&sb_fork_mark, memory_order_relaxed);

	sb_cached_tid = 0;
	atomic_store(&cached_pid, 0);
	register_process();
	if (mark != NULL) { /* done: check_fork_mark() need not redo it */
		atomic_store_explicit(mark, 1, memory_order_relaxed);
	}
}

/* A zero mark means a fork the atfork handler did not see (_Fork(), a raw
 * fork or clone): cache nothing from before it. */
static void check_fork_mark(void)
{
	_Atomic unsigned char *mark =
	    atomic_load_explicit(&sb_fork_mark, memory_order_relaxed);

	if (mark != NULL &&
	    atomic_load_explicit(mark, memory_order_relaxed) == 0) {
		after_fork_in_child();
	}
}

static void init_once(void)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p != MAP_FAILED && madvise(p, (size_t)page, MADV_WIPEONFORK) == 0) {
		atomic_store((_Atomic unsigned char *)p, 1);
		atomic_store(&sb_fork_mark, (_Atomic unsigned char *)p);
	} else if (p != MAP_FAILED) {
		munmap(p, (size_t)page);
	}
	register_process();
	pthread_atfork(NULL, NULL, after_fork_in_child);
}

void sb_fence_init(void)
{
	pthread_once(&once, init_once);
}

int sb_fence_cheap_ok(void)
{
	return atomic_load_explicit(&registered, memory_order_relaxed);
}

int sb_fence_heavy(void)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (!atomic_load_explicit(&heavy_ok, memory_order_relaxed)) {
		return -ENOSYS;
	}
	for (;;) {
		if (membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0) {
			return 0;
		}
		if (errno != ENOMEM && errno != EINTR) {
			break;
		}
	}
	/* Refused (a seccomp filter installed after start-up, say): from
	 * now on this process says so at once. */
	atomic_store_explicit(&heavy_ok, 0, memory_order_relaxed);
	return -errno;
}

uint32_t sb_thread_id_refresh(void)
{
	check_fork_mark();
	if (sb_cached_tid == 0) {
		sb_cached_tid = (uint32_t)syscall(SYS_gettid);
	}
	return sb_cached_tid;
}

/* The process id, cached; the caller has checked the fork mark. */
static uint32_t process_id_cached(void)
{
	uint32_t pid = atomic_load_explicit(&cached_pid, memory_order_relaxed);

	if (pid == 0) {
		pid = (uint32_t)getpid();
		atomic_store_explicit(&cached_pid, pid, memory_order_relaxed);
	}
	return pid;
}

int sb_self(struct sb_self *me)
{
	me->tid = sb_thread_id_refresh(); /* checks the fork mark */
	me->pid = process_id_cached();
	return atomic_load_explicit(&registered, memory_order_relaxed);
}

uint32_t sb_process_id(void)
{
	check_fork_mark();
	return process_id_cached();
}

/* 1 when /proc says the thread has exited but was not reaped yet (a
 * zombie still answers signal 0). Unknown counts as running. */
static int thread_is_zombie(uint32_t pid, uint32_t tid)
{
	char path[64], buf[512];
	const char *state;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%u/task/%u/stat", pid, tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return errno == ENOENT ? -1 : 0; /* -1: no entry */
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		return 0;
	}
	buf[n] = '\0';
	/* "tid (comm) S ...": the comm may hold ')', so take the last. */
	state = strrchr(buf, ')');
	return state != NULL && state[1] == ' ' &&
	       (state[2] == 'Z' || state[2] == 'X');
}

int sb_thread_alive(uint32_t pid, uint32_t tid)
{
	if (pid == 0 || tid == 0 || pid > INT_MAX || tid > INT_MAX) {
		return 0; /* not an id a live thread can have */
	}
	/* Signal 0 checks existence only. Only ESRCH says "no such
	 * thread"; any other refusal (EPERM, a seccomp filter's errno)
	 * means it may well exist. */
	if (syscall(SYS_tgkill, (pid_t)pid, (pid_t)tid, 0) != 0 &&
	    errno == ESRCH) {
		return 0;
	}
	switch (thread_is_zombie(pid, tid)) {
	case 0:
		return 1;
	case 1:
		return 0;
	default:
		break;
	}
	/* No /proc entry: it exited since tgkill, or /proc hides it from us
	 * (hidepid, no /proc, another pid namespace's /proc). Only a second
	 * ESRCH tells the two apart; a zombie has an entry. */
	return !(syscall(SYS_tgkill, (pid_t)pid, (pid_t)tid, 0) != 0 &&
		 errno == ESRCH);
}
