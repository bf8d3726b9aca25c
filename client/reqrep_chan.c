/*
 * reqrep_chan.c - a request/reply channel on the library's side
 * (reqrep.h): checking and mapping what the broker grants, committing with
 * a wake-up, and the sleep on a party's eventfds.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/bus_internal.h"
#include "client/reqrep.h"
#include "sys/barrier.h"

/* The five descriptors of a channel reply, in the broker's order. */
enum { FD_OWN, FD_PEER, FD_STATE, FD_WAKE, FD_SLEEP, FD_COUNT };

int sb_rr_geometry(const struct sb_client_reply *rep, uint64_t *capacity,
		   uint32_t *max_message)
{
	int64_t cap, max;

	if (sb_msg_get_int(rep->msg.result, "capacity", SB_CHAN_MIN_CAPACITY,
			   SB_CHAN_MAX_CAPACITY, &cap, NULL) < 0 ||
	    sb_msg_get_int(rep->msg.result, "max_message", 1, UINT32_MAX, &max,
			   NULL) < 0 ||
	    sb_chan_segment_size((uint64_t)cap, (uint64_t)max) == 0) {
		return -EPROTO;
	}
	*capacity = (uint64_t)cap;
	*max_message = (uint32_t)max;
	return 0;
}

/* The memory descriptors (the first `n`) must be the broker's sealed
 * memfds of at least `size` bytes each (sizes[i]). */
static int check_memory(const struct sb_client_reply *rep, int n,
			const size_t *sizes)
{
	struct sb_client_reply mem = *rep; /* a view: not finished */
	int r;

	mem.nfds = n;
	r = sb_client_check_memory(&mem);
	for (int i = 0; r == 0 && i < n; i++) {
		struct stat st;

		if (fstat(rep->fds[i], &st) < 0) {
			r = -errno;
		} else if (st.st_size < 0 || (uint64_t)st.st_size < sizes[i]) {
			r = -EPROTO;
		}
	}
	return r;
}

static void *map(int fd, size_t size, int prot)
{
	void *p = mmap(NULL, size, prot, MAP_SHARED | MAP_POPULATE, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int map_page(int fd, const struct sb_chan_page **page)
{
	void *p = map(fd, SB_CHAN_PAGE_SIZE, PROT_READ);

	if (p == NULL) {
		return -errno;
	}
	*page = p;
	return 0;
}

int sb_rr_take_page(const struct sb_client_reply *rep,
		    const struct sb_chan_page **page)
{
	const size_t size = SB_CHAN_PAGE_SIZE;
	int r = rep->nfds >= 1 ? check_memory(rep, 1, &size) : -EPROTO;

	return r < 0 ? r : map_page(rep->fds[0], page);
}

void sb_rr_unmap_page(const struct sb_chan_page *page)
{
	if (page != NULL) {
		munmap((void *)page, SB_CHAN_PAGE_SIZE);
	}
}

int sb_rr_epoll(void)
{
	int fd = epoll_create1(EPOLL_CLOEXEC);

	return fd >= 0 ? fd : -errno;
}

int sb_rr_epoll_add(int epfd, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int map_chan(struct sb_client_reply *rep, struct sb_rr_chan *ch,
		    uint64_t capacity, uint32_t max_message)
{
	int64_t id;

	if (sb_msg_get_int(rep->msg.result, "channel", 1, SB_MSG_INT_MAX, &id,
			   NULL) < 0) {
		return -EPROTO;
	}
	ch->id = (uint64_t)id;
	ch->own = map(rep->fds[FD_OWN], ch->seg_size, PROT_READ | PROT_WRITE);
	ch->peer = map(rep->fds[FD_PEER], ch->seg_size, PROT_READ);
	if (ch->own == NULL || ch->peer == NULL ||
	    map_page(rep->fds[FD_STATE], &ch->state) < 0) {
		return -ENOMEM;
	}
	return sb_chan_end_init(&ch->end, ch->own, ch->peer, capacity,
				max_message);
}

int sb_rr_chan_open(struct sb_client_reply *rep, int epfd,
		    struct sb_rr_chan **out)
{
	uint64_t capacity;
	uint32_t max_message;
	struct sb_rr_chan *ch;
	size_t sizes[3];
	int r;

	if (rep->nfds != FD_COUNT ||
	    sb_rr_geometry(rep, &capacity, &max_message) < 0) {
		return -EPROTO;
	}
	sizes[FD_OWN] = sizes[FD_PEER] =
	    sb_chan_segment_size(capacity, max_message);
	sizes[FD_STATE] = SB_CHAN_PAGE_SIZE;
	r = check_memory(rep, 3, sizes);
	if (r < 0) {
		return r;
	}
	ch = calloc(1, sizeof(*ch));
	if (ch == NULL) {
		return -ENOMEM;
	}
	ch->seg_size = sizes[FD_OWN];
	ch->wake_fd = ch->sleep_fd = -1;
	r = map_chan(rep, ch, capacity, max_message);
	if (r == 0) {
		r = sb_rr_epoll_add(epfd, rep->fds[FD_SLEEP]);
	}
	if (r < 0) {
		sb_rr_chan_close(ch, -1);
		return r;
	}
	ch->wake_fd = rep->fds[FD_WAKE];
	ch->sleep_fd = rep->fds[FD_SLEEP];
	rep->fds[FD_WAKE] = rep->fds[FD_SLEEP] = -1;
	*out = ch;
	return 0;
}

void sb_rr_chan_close(struct sb_rr_chan *ch, int epfd)
{
	if (ch == NULL) {
		return;
	}
	if (ch->own != NULL) {
		munmap(ch->own, ch->seg_size);
	}
	if (ch->peer != NULL) {
		munmap(ch->peer, ch->seg_size);
	}
	sb_rr_unmap_page(ch->state);
	if (ch->sleep_fd >= 0) {
		if (epfd >= 0) {
			epoll_ctl(epfd, EPOLL_CTL_DEL, ch->sleep_fd, NULL);
		}
		close(ch->sleep_fd);
	}
	if (ch->wake_fd >= 0) {
		close(ch->wake_fd);
	}
	free(ch);
}

uint32_t sb_rr_chan_state(const struct sb_rr_chan *ch)
{
	/* Pairs with the broker's release store: what the other end wrote
	 * before it went is visible once its going is. */
	return atomic_load_explicit(&ch->state->state, memory_order_acquire);
}

void sb_rr_chan_commit(struct sb_rr_chan *ch)
{
	uint64_t one = 1;

	if (sb_chan_commit(&ch->end) &&
	    write(ch->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, so the peer is woken anyway;
		 * a descriptor the peer broke only fails its own channel. */
	}
}

/* Clears the eventfds of `epfd` that are readable: wakes already taken
 * in, since the caller looks at everything after this. */
static void clear_wakes(int epfd)
{
	struct epoll_event evs[16];
	uint64_t count;
	int got = epoll_wait(epfd, evs, 16, 0);

	for (int i = 0; i < got; i++) {
		if (read(evs[i].data.fd, &count, sizeof(count)) < 0) {
			/* EAGAIN: cleared already. */
		}
	}
}

static bool page_news(const struct sb_rr_party *p)
{
	/* Pairs with the broker's release increment. */
	return p->page_wakes &&
	       atomic_load_explicit(&p->page->gen, memory_order_acquire) !=
		   p->known_gen;
}

/* Whether a live channel has records to read or a new state: plain
 * loads, no marks. */
static bool chan_news(const struct sb_rr_party *p)
{
	for (size_t i = 0; i < p->n; i++) {
		if (!p->v[i]->dead &&
		    (sb_chan_pending(&p->v[i]->end) ||
		     sb_rr_chan_state(p->v[i]) != SB_CHAN_OPEN)) {
			return true;
		}
	}
	return false;
}

bool sb_rr_arm(struct sb_rr_party *p)
{
	clear_wakes(p->epfd);
	for (size_t i = 0; i < p->n; i++) {
		if (!p->v[i]->dead) {
			sb_chan_set_sleeping(&p->v[i]->end, true);
		}
	}
	return chan_news(p) || page_news(p);
}

void sb_rr_disarm(struct sb_rr_party *p)
{
	for (size_t i = 0; i < p->n; i++) {
		if (!p->v[i]->dead) {
			sb_chan_set_sleeping(&p->v[i]->end, false);
		}
	}
}

/* Milliseconds to wait for `w`: -1 forever, rounded up. */
static int wait_ms(struct sb_wait *w)
{
	const struct timespec *dl = sb_wait_deadline(w);
	long long ns;

	if (dl == NULL) {
		return -1;
	}
	ns = sb_deadline_remaining_ns(dl);
	return ns > 0 ? (int)((ns + 999999) / 1000000) : 0;
}

/*
 * Polls for news a few microseconds before sleeping, as a topic reader
 * does (ring->spin): an answer that comes that soon costs no sleep and
 * wake-up, whose system calls are most of a round trip otherwise. The
 * budget is in looks at a channel, so a server of many requesters spins
 * no longer than one of a few. Kept short: when processes outnumber CPUs
 * a longer spin takes the CPU the peer needs to answer (bench/README.md,
 * reqrep-bench 4 x 4).
 */
#define SPIN_LOOKS 400

static bool spin_for_news(const struct sb_rr_party *p)
{
	for (size_t k = 0; k < SPIN_LOOKS / (p->n + 1); k++) {
		if (chan_news(p) || page_news(p)) {
			return true;
		}
		sb_cpu_relax();
	}
	return false;
}

int sb_rr_sleep(struct sb_rr_party *p, struct sb_wait *w)
{
	struct epoll_event ev;

	(void)sb_wait_deadline(w); /* the wait's clock starts now */
	if (!spin_for_news(p)) {
		if (!sb_rr_arm(p)) {
			(void)epoll_wait(p->epfd, &ev, 1, wait_ms(w));
		}
		sb_rr_disarm(p);
	}
	/* Checked whether or not there was news: a peer that keeps making
	 * news (a hostile one writing records nobody waits for) must not
	 * keep the caller past its deadline. */
	return sb_deadline_passed(sb_wait_deadline(w)) ? -ETIMEDOUT : 0;
}
