/*
 * broker.c - the broker's life: listen, create the predeclared topics, run
 * the libuv loop, and react to signals: SIGTERM/SIGINT shut down cleanly
 * (stop accepting, close clients, free topics, remove the socket file,
 * close the loop), SIGHUP reloads the config file, keeping the old one if
 * the new one is invalid.
 * A timer writes persistent topics back to their files (persist.c).
 */
#include "daemon/broker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <inttypes.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "daemon/log.h"

#define SWEEP_INTERVAL_MS 1000

int sbd_broker_socket_path(const struct sbd_broker *b,
			   const struct sb_config *cfg, char *buf, size_t len)
{
	const char *p =
	    b->flag_socket != NULL ? b->flag_socket : cfg->socket_path;

	if (p == NULL) {
		return sb_socket_default_path(buf, len);
	}
	if (strlen(p) > SB_SOCKET_PATH_MAX || strlen(p) >= len) {
		return -ENAMETOOLONG;
	}
	memcpy(buf, p, strlen(p) + 1);
	return 0;
}

/* Command-line flags win over the file, at start and on every reload. */
void sbd_broker_apply_flags(struct sbd_broker *b, struct sb_config *cfg)
{
	if (b->flag_log_level >= 0) {
		cfg->log_level = (enum sb_config_log_level)b->flag_log_level;
	}
	if (b->flag_socket_mode >= 0) {
		cfg->socket_mode = (uint32_t)b->flag_socket_mode;
	}
	if (b->flag_socket_group >= 0) {
		cfg->socket_group = b->flag_socket_group;
	}
}

/*
 * The descriptors the broker may have in flight to clients (client.c says
 * what that means and how they are counted). The kernel refuses a sendmsg
 * with descriptors once the broker's uid has more than RLIMIT_NOFILE in
 * flight, counting those of every process of that uid; the same number
 * bounds the broker's own table (topics, clients, the copies of queued
 * grants). Half of it for descriptors in flight leaves the other half to
 * the table and to other processes of our uid.
 */
static void set_fd_budget(struct sbd_broker *b)
{
	uint64_t half = b->nofile / 2;

	if (half < SBD_OUT_FDS) {
		half = SBD_OUT_FDS; /* one grant can always go */
	}
	b->fds_budget = half > UINT32_MAX / 2 ? UINT32_MAX / 2 : (uint32_t)half;
}

/* Logs the bounds; warns when max_clients leaves too small a share. */
static void log_fd_bounds(const struct sbd_broker *b)
{
	uint32_t share = b->fds_budget / b->cfg.limits.max_clients;

	sbd_info("descriptors in flight to clients: at most %" PRIu32
		 ", %" PRIu32 " per client",
		 b->fds_budget, sbd_client_fds_bound(b));
	if (share < SBD_OUT_FDS) {
		sbd_warn("limits.max_clients (%" PRIu32 ") is too many for "
			 "the descriptor limit (RLIMIT_NOFILE %" PRIu64 "): "
			 "clients that leave replies unread can make others "
			 "wait; raise the limit to at least %" PRIu64
			 " or lower max_clients",
			 b->cfg.limits.max_clients, b->nofile,
			 (uint64_t)b->cfg.limits.max_clients * SBD_OUT_FDS * 2);
	}
}

/* Raises the soft descriptor limit to the hard one: descriptors are the
 * broker's to use, and the limit also bounds those in flight. */
static void raise_nofile(struct sbd_broker *b)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		sbd_warn("getrlimit(RLIMIT_NOFILE): %s; assuming 1024",
			 strerror(errno));
		rl.rlim_cur = rl.rlim_max = 1024;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t soft = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0) {
			sbd_info("descriptor limit (RLIMIT_NOFILE) raised "
				 "from %" PRIu64 " to the hard limit %" PRIu64,
				 (uint64_t)soft, (uint64_t)rl.rlim_max);
		} else {
			sbd_warn("raising the descriptor limit "
				 "(RLIMIT_NOFILE) from %" PRIu64 " to %" PRIu64
				 ": %s; keeping %" PRIu64,
				 (uint64_t)soft, (uint64_t)rl.rlim_max,
				 strerror(errno), (uint64_t)soft);
			rl.rlim_cur = soft;
		}
	} else {
		sbd_info("descriptor limit (RLIMIT_NOFILE): %" PRIu64,
			 (uint64_t)rl.rlim_cur);
	}
	b->nofile = (uint64_t)rl.rlim_cur;
	set_fd_budget(b);
}

static void reload(struct sbd_broker *b)
{
	struct sb_config fresh;
	char err[512];
	char path[SB_SOCKET_PATH_MAX + 1];

	if (b->config_path == NULL) {
		sbd_info("SIGHUP: no config file to reload (started without "
			 "--config)");
		return;
	}
	if (sb_config_load_file(b->config_path, &fresh, err, sizeof(err)) < 0) {
		sbd_error("SIGHUP: %s; keeping the previous configuration",
			  err);
		return;
	}
	sbd_broker_apply_flags(b, &fresh);
	if (sbd_broker_socket_path(b, &fresh, path, sizeof(path)) == 0 &&
	    strcmp(path, b->socket_path) != 0) {
		sbd_warn("SIGHUP: socket path changed to %s; it takes effect "
			 "when the broker restarts (still on %s)",
			 path, b->socket_path);
	}
	sb_config_free(&b->cfg);
	b->cfg = fresh;
	sbd_log_set_level(b->cfg.log_level);
	uv_timer_set_repeat(&b->persist, b->cfg.persist_interval_ms);
	sbd_topic_predeclare(b);
	sbd_info("SIGHUP: configuration reloaded from %s", b->config_path);
	log_fd_bounds(b);
}

static void shutdown_broker(struct sbd_broker *b)
{
	if (b->stopping) {
		return;
	}
	b->stopping = true;
	sbd_server_stop(b);
	while (b->clients != NULL) {
		sbd_client_close(b->clients, "broker shutting down");
	}
	sbd_client_drains_close(b);
	sbd_topic_free_all(b);
	sbd_services_free_all(b);
	uv_close((uv_handle_t *)&b->sig_term, NULL);
	uv_close((uv_handle_t *)&b->sig_int, NULL);
	uv_close((uv_handle_t *)&b->sig_hup, NULL);
	uv_close((uv_handle_t *)&b->sweep, NULL);
	uv_close((uv_handle_t *)&b->persist, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct sbd_broker *b = h->data;

	if (signum == SIGHUP) {
		reload(b);
		return;
	}
	sbd_info("%s: shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	shutdown_broker(b);
}

static void on_sweep(uv_timer_t *t)
{
	sbd_client_sweep(t->data);
	sbd_topic_sweep(t->data);
}

static void on_persist(uv_timer_t *t)
{
	sbd_persist_sweep(t->data);
}

/* Initialised first, so that every failure path can close them alike. */
static void init_handles(struct sbd_broker *b)
{
	uv_signal_init(b->loop, &b->sig_term);
	uv_signal_init(b->loop, &b->sig_int);
	uv_signal_init(b->loop, &b->sig_hup);
	uv_timer_init(b->loop, &b->sweep);
	uv_timer_init(b->loop, &b->persist);
	b->sig_term.data = b->sig_int.data = b->sig_hup.data = b;
	b->sweep.data = b->persist.data = b;
}

/* Before the socket listens: a SIGTERM that comes while the predeclared
 * topics are made (loading a large persistent file takes a while) waits
 * for the loop, and shuts down cleanly, instead of killing the broker. */
static int start_signals(struct sbd_broker *b)
{
	int r = uv_signal_start(&b->sig_term, on_signal, SIGTERM);

	if (r == 0) {
		r = uv_signal_start(&b->sig_int, on_signal, SIGINT);
	}
	if (r == 0) {
		r = uv_signal_start(&b->sig_hup, on_signal, SIGHUP);
	}
	if (r < 0) {
		sbd_error("installing the signal handlers: %s", uv_strerror(r));
	}
	return r;
}

static int start_handles(struct sbd_broker *b)
{
	int r = uv_timer_start(&b->sweep, on_sweep, SWEEP_INTERVAL_MS,
			       SWEEP_INTERVAL_MS);

	if (r == 0) {
		r = uv_timer_start(&b->persist, on_persist,
				   b->cfg.persist_interval_ms,
				   b->cfg.persist_interval_ms);
	}
	if (r < 0) {
		sbd_error("starting the event loop's handles: %s",
			  uv_strerror(r));
		return r;
	}
	return sbd_server_start(b);
}

/*
 * After handling events the loop keeps polling (without sleeping) for
 * BUSY_POLL_NS, and again after each event it finds. A client's next
 * request usually comes within a few microseconds of our reply, and waking
 * a sleeping process costs tens of microseconds on a virtual machine (the
 * idle CPU halts): this turns a burst of requests into one wake-up. An idle
 * broker sleeps as before; a busy one spends at most this long per burst.
 */
#define BUSY_POLL_NS 50000u

/* Polls without blocking until BUSY_POLL_NS pass with no event. Returns
 * what uv_run does: 0 once no handle is left. */
static int busy_poll(struct sbd_broker *b)
{
	uint64_t until = uv_hrtime() + BUSY_POLL_NS;
	int alive = 1;

	while (alive && uv_hrtime() < until) {
		uint64_t seen = b->io_events;

		alive = uv_run(b->loop, UV_RUN_NOWAIT);
		if (b->io_events != seen) {
			until = uv_hrtime() + BUSY_POLL_NS;
		}
	}
	return alive;
}

/* Runs the loop until every handle has closed, then closes the loop. */
static int drain_loop(struct sbd_broker *b)
{
	int r;

	while (uv_run(b->loop, UV_RUN_ONCE) != 0 && busy_poll(b) != 0) {
	}
	r = uv_loop_close(b->loop);
	if (r < 0) {
		sbd_error("uv_loop_close: %s", uv_strerror(r));
		return 1;
	}
	return 0;
}

int sbd_broker_run(struct sbd_broker *b)
{
	int r;

	signal(SIGPIPE, SIG_IGN);
	/* Under an RLIMIT_FSIZE smaller than a topic, ftruncate must fail
	 * with EFBIG (a clear error for that topic), not kill the broker. */
	signal(SIGXFSZ, SIG_IGN);
	b->listen_fd = b->reserve_fd = -1;
	b->next_client_id = 0; /* the first client is 1 */
	r = uv_loop_init(&b->loop_store);
	if (r < 0) {
		sbd_error("uv_loop_init: %s", uv_strerror(r));
		return 1;
	}
	b->loop = &b->loop_store;
	sbd_log_set_level(b->cfg.log_level);
	raise_nofile(b);
	log_fd_bounds(b);
	init_handles(b);
	r = start_signals(b);
	if (r == 0) {
		r = sbd_server_listen(b);
	}
	if (r == 0) {
		r = sbd_topic_predeclare(b);
	}
	if (r == 0) {
		r = start_handles(b);
	}
	if (r < 0) {
		shutdown_broker(b);
		drain_loop(b);
		return 1;
	}
	sbd_info("shmbusd %s ready (pid %ld)", SBD_VERSION, (long)getpid());
	r = drain_loop(b);
	sbd_info("stopped");
	return r;
}
