/*
 * main.c - shmbus-bridge: flags, the two connections, the mappings, and
 * the main thread's loop over signals (TERM/INT drain and exit 0, HUP
 * reloads the configuration file) and the stats timer.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "bridge/bridge.h"

static const char usage_text[] =
    "usage: shmbus-bridge [--config FILE] [--nats URL] [--origin NAME]\n"
    "                     [--export TOPIC[=SUBJECT]]... "
    "[--import SUBJECT[=TOPIC]]...\n"
    "                     [--socket PATH] [--stats-interval TIME] "
    "[--give-up TIME]\n"
    "                     [--ca-file FILE] [--check-config] [--help] "
    "[--version]\n"
    "\n"
    "Bridges shmbus topics on this host and a NATS server or cluster.\n"
    "\n"
    "  --config FILE        JSON configuration (shmbus-bridge(1)); "
    "SIGHUP\n"
    "                       reloads it. The flags below add to it.\n"
    "  --nats URL           NATS server(s), comma-separated (default\n"
    "                       nats://127.0.0.1:4222); user:password@ "
    "works\n"
    "  --origin NAME        this host's name in subjects and headers\n"
    "                       (default: the host name up to its first "
    "'.')\n"
    "  --export TOPIC[=SUBJECT]  publish TOPIC's messages to SUBJECT\n"
    "                       (default shmbus.ORIGIN.TOPIC, '/' as '.', "
    "'.' as %2E)\n"
    "  --import SUBJECT[=TOPIC]  publish SUBJECT's messages (wildcards\n"
    "                       * and > allowed) into TOPIC (default: the "
    "topic\n"
    "                       the subject names, the inverse of the "
    "above)\n"
    "  --socket PATH        the broker's socket (default as for "
    "shmbus(1))\n"
    "  --stats-interval TIME  counters on shmbus.ORIGIN._stats and in "
    "the log\n"
    "                       this often (default 5s)\n"
    "  --give-up TIME       exit 3 when NATS or shmbusd stays "
    "unreachable\n"
    "                       this long (default: retry forever)\n"
    "  --ca-file FILE       TLS: trust the server certificates this CA "
    "signed\n"
    "  --check-config       check the configuration, print what it "
    "bridges, exit\n"
    "\n"
    "Times: 250ms, 2s, 1m, 1h; a bare number is seconds.\n"
    "Exit status: 0 stopped by SIGTERM or SIGINT after draining, 1 an "
    "error\n"
    "while running, 2 bad flags or configuration, 3 gave up (--give-up).\n"
    "Manual: shmbus-bridge(1); reference: bridge.md.\n";

enum {
	OPT_CONFIG = 1000,
	OPT_NATS,
	OPT_ORIGIN,
	OPT_EXPORT,
	OPT_IMPORT,
	OPT_SOCKET,
	OPT_STATS,
	OPT_GIVE_UP,
	OPT_CA,
	OPT_CHECK,
	OPT_HELP,
	OPT_VERSION,
};

static const struct option options[] = {
    {"config", required_argument, NULL, OPT_CONFIG},
    {"nats", required_argument, NULL, OPT_NATS},
    {"origin", required_argument, NULL, OPT_ORIGIN},
    {"export", required_argument, NULL, OPT_EXPORT},
    {"import", required_argument, NULL, OPT_IMPORT},
    {"socket", required_argument, NULL, OPT_SOCKET},
    {"stats-interval", required_argument, NULL, OPT_STATS},
    {"give-up", required_argument, NULL, OPT_GIVE_UP},
    {"ca-file", required_argument, NULL, OPT_CA},
    {"check-config", no_argument, NULL, OPT_CHECK},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static int replace(char **field, const char *value, char *err, size_t len)
{
	free(*field);
	*field = strdup(value);
	if (*field == NULL) {
		snprintf(err, len, "out of memory");
		return -1;
	}
	return 0;
}

/* One flag into `cfg`. 0, or -1 with `err`. */
static int apply_flag(struct sbb_config *cfg, int c, const char *arg, char *err,
		      size_t len)
{
	switch (c) {
	case OPT_NATS:
		return replace(&cfg->url, arg, err, len);
	case OPT_ORIGIN:
		return replace(&cfg->origin, arg, err, len);
	case OPT_SOCKET:
		return replace(&cfg->socket, arg, err, len);
	case OPT_CA:
		return replace(&cfg->ca_file, arg, err, len);
	case OPT_EXPORT:
		return sbb_config_add_export(cfg, arg, err, len);
	case OPT_IMPORT:
		return sbb_config_add_import(cfg, arg, err, len);
	case OPT_STATS:
		return sbb_parse_duration("--stats-interval", arg,
					  &cfg->stats_interval, err, len);
	case OPT_GIVE_UP:
		return sbb_parse_duration("--give-up", arg, &cfg->give_up, err,
					  len);
	default:
		return 0;
	}
}

/*
 * The configuration the command line gives: the file first (--config,
 * wherever it is), then the flags in order. Run at start and again on
 * SIGHUP, so that a reload keeps the flags. Returns 0, 1 for --help or
 * --version (printed), or -1 with `err`.
 */
static int load_config(int argc, char **argv, struct sbb_config *cfg,
		       const char **path, char *err, size_t len)
{
	int c;

	sbb_config_defaults(cfg);
	*path = NULL;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		if (c == OPT_HELP || c == OPT_VERSION) {
			fputs(c == OPT_HELP ? usage_text
					    : "shmbus-bridge 0.1.0\n",
			      stdout);
			return 1;
		}
		if (c == '?' || c == ':') {
			snprintf(err, len, "%s \"%s\" (see --help)",
				 c == '?' ? "unknown option"
					  : "a value is missing after",
				 argv[optind - 1]);
			return -1;
		}
		if (c == OPT_CONFIG) {
			*path = optarg;
		}
	}
	if (optind < argc) {
		snprintf(err, len, "unexpected argument \"%s\" (see --help)",
			 argv[optind]);
		return -1;
	}
	if (*path != NULL && sbb_config_load(*path, cfg, err, len) < 0) {
		return -1;
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		if (apply_flag(cfg, c, optarg, err, len) < 0) {
			return -1;
		}
	}
	return sbb_config_finish(cfg, err, len);
}

static void make_run_id(char run[17])
{
	unsigned long long x = 0;
	FILE *f = fopen("/dev/urandom", "r");

	if (f == NULL || fread(&x, sizeof(x), 1, f) != 1) {
		x = (unsigned long long)time(NULL) ^
		    ((unsigned long long)getpid() << 32);
	}
	if (f != NULL) {
		fclose(f);
	}
	snprintf(run, 17, "%016llx", x);
}

/* ---- the mappings ----------------------------------------------------- */

static bool same_export(const struct sbb_export *e,
			const struct sbb_export_map *m)
{
	return strcmp(e->topic, m->topic) == 0 &&
	       strcmp(e->subject, m->subject) == 0;
}

static bool same_import(const struct sbb_import *im,
			const struct sbb_import_map *m)
{
	return strcmp(im->subject, m->subject) == 0 &&
	       (im->topic == NULL
		    ? m->topic == NULL
		    : m->topic != NULL && strcmp(im->topic, m->topic) == 0);
}

/* The exports `cfg` asks for: the running ones kept, the others started.
 * A mapping that cannot start is logged and left out. */
static struct sbb_export **next_exports(struct sbb_bridge *br,
					const struct sbb_config *cfg, size_t *n)
{
	struct sbb_export **v = calloc(cfg->nexports + 1, sizeof(*v));

	*n = 0;
	for (size_t i = 0; v != NULL && i < cfg->nexports; i++) {
		struct sbb_export *e = NULL;

		for (size_t j = 0; j < br->nexports && e == NULL; j++) {
			if (same_export(br->exports[j], &cfg->exports[i])) {
				e = br->exports[j];
			}
		}
		if (e == NULL &&
		    sbb_export_start(br, &cfg->exports[i], &e) < 0) {
			sbb_error("export %s: cannot start its thread",
				  cfg->exports[i].topic);
			continue;
		}
		v[(*n)++] = e;
	}
	return v;
}

static struct sbb_import **next_imports(struct sbb_bridge *br,
					const struct sbb_config *cfg, size_t *n)
{
	struct sbb_import **v = calloc(cfg->nimports + 1, sizeof(*v));

	*n = 0;
	for (size_t i = 0; v != NULL && i < cfg->nimports; i++) {
		struct sbb_import *im = NULL;

		for (size_t j = 0; j < br->nimports && im == NULL; j++) {
			if (same_import(br->imports[j], &cfg->imports[i])) {
				im = br->imports[j];
			}
		}
		if (im == NULL &&
		    sbb_import_start(br, &cfg->imports[i], &im) < 0) {
			continue; /* logged */
		}
		v[(*n)++] = im;
	}
	return v;
}

static bool holds(void *const *v, size_t n, const void *p)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i] == p) {
			return true;
		}
	}
	return false;
}

/* Stops and frees the mappings of `old` that are not in `now`. */
static void retire(struct sbb_export **old_ex, size_t old_nex,
		   struct sbb_import **old_im, size_t old_nim,
		   struct sbb_export *const *ex, size_t nex,
		   struct sbb_import *const *im, size_t nim)
{
	for (size_t j = 0; j < old_nim; j++) {
		if (!holds((void *const *)im, nim, old_im[j])) {
			sbb_import_stop(old_im[j]);
			sbb_import_free(old_im[j]);
		}
	}
	for (size_t j = 0; j < old_nex; j++) {
		if (!holds((void *const *)ex, nex, old_ex[j])) {
			sbb_export_stop(old_ex[j], SBB_DRAIN);
			sbb_export_free(old_ex[j]);
		}
	}
}

/*
 * Brings the running mappings to those of `cfg`: keeps the ones in both
 * (their counters and positions go on), starts the new ones, and stops
 * the others (draining them) once they are out of the tables, since an
 * import's delivery thread takes maps_lock.
 */
static int apply_maps(struct sbb_bridge *br, const struct sbb_config *cfg)
{
	size_t nex, nim, old_nex = br->nexports, old_nim = br->nimports;
	struct sbb_export **ex = next_exports(br, cfg, &nex);
	struct sbb_import **im = next_imports(br, cfg, &nim);
	struct sbb_export **old_ex = br->exports;
	struct sbb_import **old_im = br->imports;

	if (ex == NULL || im == NULL) {
		free(ex);
		free(im);
		return -ENOMEM;
	}
	pthread_mutex_lock(&br->maps_lock);
	br->exports = ex;
	br->nexports = nex;
	br->imports = im;
	br->nimports = nim;
	pthread_mutex_unlock(&br->maps_lock);
	retire(old_ex, old_nex, old_im, old_nim, ex, nex, im, nim);
	free(old_ex);
	free(old_im);
	return 0;
}

/* ---- reload ----------------------------------------------------------- */

/* Settings a reload cannot change without reconnecting: kept, and said. */
static void keep_connection_settings(const struct sbb_config *now,
				     struct sbb_config *next)
{
	struct {
		const char *name;
		char *const *old;
		char **new;
	} s[] = {
	    {"origin", &now->origin, &next->origin},
	    {"socket", &now->socket, &next->socket},
	    {"nats.url", &now->url, &next->url},
	    {"nats.user", &now->user, &next->user},
	    {"nats.password", &now->password, &next->password},
	    {"nats.token", &now->token, &next->token},
	    {"nats.ca_file", &now->ca_file, &next->ca_file},
	    {"nats.cert_file", &now->cert_file, &next->cert_file},
	    {"nats.key_file", &now->key_file, &next->key_file},
	};

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		const char *a = *s[i].old, *b = *s[i].new;

		if ((a == NULL) != (b == NULL) ||
		    (a != NULL && strcmp(a, b) != 0)) {
			sbb_warn("reload: %s changed; it takes effect when the "
				 "bridge restarts",
				 s[i].name);
		}
		free(*s[i].new);
		*s[i].new = *s[i].old != NULL ? strdup(*s[i].old) : NULL;
	}
}

/* SIGHUP: the file and flags read again; a bad one changes nothing. */
static void reload(struct sbb_bridge *br, int argc, char **argv)
{
	struct sbb_config next;
	const char *path;
	char err[512];

	if (load_config(argc, argv, &next, &path, err, sizeof(err)) != 0) {
		sbb_error("reload: %s; the running configuration stays", err);
		sbb_config_free(&next);
		return;
	}
	keep_connection_settings(&br->cfg, &next);
	if (apply_maps(br, &next) < 0) {
		sbb_error("reload: out of memory; the running configuration "
			  "stays");
		sbb_config_free(&next);
		return;
	}
	/* The running mappings hold their own copies of the names. */
	sbb_config_free(&br->cfg);
	br->cfg = next;
	sbb_info("reload: %zu exports, %zu imports", br->nexports,
		 br->nimports);
}

/* ---- the main loop ---------------------------------------------------- */

/* Connects to shmbusd, trying again every second. 0, or the exit status. */
static int connect_bus(struct sbb_bridge *br, int sigfd)
{
	int64_t start = sbb_now_ms();
	int said = 0;

	for (;;) {
		struct pollfd p = {.fd = sigfd, .events = POLLIN};
		int r =
		    shmbus_connect(br->cfg.socket, "shmbus-bridge", &br->bus);

		if (r == 0) {
			return 0;
		}
		if (r != said) {
			sbb_warn("shmbusd: %s; trying again every second",
				 strerror(-r));
			said = r;
		}
		if (r == -EACCES || r == -EPERM || r == -EINVAL ||
		    r == -ENAMETOOLONG) {
			sbb_error("shmbusd: %s: giving up", strerror(-r));
			return SBB_EXIT_ERROR;
		}
		if (br->cfg.give_up > 0 &&
		    sbb_now_ms() - start > (int64_t)(br->cfg.give_up * 1000)) {
			sbb_error("shmbusd: unreachable for %gs: giving up",
				  br->cfg.give_up);
			return SBB_EXIT_GAVE_UP;
		}
		if (poll(&p, 1, 1000) > 0) {
			return SBB_EXIT_OK; /* a signal: stop before starting */
		}
	}
}

/* Whether NATS has been out of reach for longer than --give-up. */
static bool gave_up(struct sbb_bridge *br)
{
	int64_t since = atomic_load(&br->down_since_ms);

	return br->cfg.give_up > 0 && since != 0 &&
	       sbb_now_ms() - since > (int64_t)(br->cfg.give_up * 1000);
}

/* Waits for signals and ticks; returns the exit status. */
static int serve(struct sbb_bridge *br, int sigfd, int argc, char **argv)
{
	int64_t next_stats = sbb_now_ms();

	for (;;) {
		struct pollfd p = {.fd = sigfd, .events = POLLIN};
		int64_t now = sbb_now_ms();
		struct signalfd_siginfo si;

		if (now >= next_stats) {
			sbb_stats_publish(br);
			next_stats =
			    now + (int64_t)(br->cfg.stats_interval * 1000);
		}
		if (gave_up(br)) {
			sbb_error("NATS at %s: unreachable for %gs: giving up",
				  br->cfg.url, br->cfg.give_up);
			return SBB_EXIT_GAVE_UP;
		}
		if (poll(&p, 1,
			 (int)(next_stats - now < 250 ? next_stats - now
						      : 250)) <= 0 ||
		    read(sigfd, &si, sizeof(si)) != sizeof(si)) {
			continue;
		}
		if (si.ssi_signo == SIGHUP) {
			reload(br, argc, argv);
			continue;
		}
		sbb_info("%s: draining", strsignal((int)si.ssi_signo));
		return SBB_EXIT_OK;
	}
}

/* Imports first (what NATS delivered goes into the topics), then exports
 * (what the topics hold goes out), then what the NATS client buffers; the
 * last counters include all of it. */
static void drain(struct sbb_bridge *br)
{
	for (size_t i = 0; i < br->nimports; i++) {
		sbb_import_stop(br->imports[i]);
	}
	for (size_t i = 0; i < br->nexports; i++) {
		sbb_export_stop(br->exports[i], SBB_DRAIN);
	}
	if (atomic_load(&br->connected)) {
		natsConnection_FlushTimeout(br->nc, 5000);
	}
	sbb_stats_publish(br);
	if (atomic_load(&br->connected)) {
		natsConnection_FlushTimeout(br->nc, 1000);
	}
	atomic_store(&br->closing, true);
	for (size_t i = 0; i < br->nimports; i++) {
		sbb_import_free(br->imports[i]);
	}
	for (size_t i = 0; i < br->nexports; i++) {
		sbb_export_free(br->exports[i]);
	}
	br->nimports = br->nexports = 0;
}

static int block_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	/* Before any thread exists, so that every thread inherits it and
	 * only the signalfd sees them. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &set, SFD_CLOEXEC);
}

static int run(struct sbb_bridge *br, int sigfd, int argc, char **argv)
{
	char err[512];
	int status = connect_bus(br, sigfd);

	if (status != 0 || br->bus == NULL) {
		return status;
	}
	if (sbb_link_open(br, err, sizeof(err)) < 0) {
		sbb_error("%s", err);
		return SBB_EXIT_USAGE;
	}
	if (apply_maps(br, &br->cfg) < 0) {
		sbb_error("out of memory");
		return SBB_EXIT_ERROR;
	}
	if (sbb_watch_start(br) < 0) {
		sbb_warn("shmbusd: cannot start the topic watch: an exported "
			 "topic deleted and made again is not followed");
	}
	sbb_info("origin %s, %zu exports, %zu imports, NATS %s", br->cfg.origin,
		 br->nexports, br->nimports, br->cfg.url);
	status = serve(br, sigfd, argc, argv);
	sbb_watch_stop(br);
	drain(br);
	return status;
}

/* --check-config: the mappings as they would run. */
static void print_config(const struct sbb_config *cfg)
{
	printf("origin %s, NATS %s\n", cfg->origin, cfg->url);
	for (size_t i = 0; i < cfg->nexports; i++) {
		printf("export %s -> %s\n", cfg->exports[i].topic,
		       cfg->exports[i].subject);
	}
	for (size_t i = 0; i < cfg->nimports; i++) {
		printf("import %s -> %s\n", cfg->imports[i].subject,
		       cfg->imports[i].topic != NULL
			   ? cfg->imports[i].topic
			   : "(the topic each subject names)");
	}
}

static bool has_flag(int argc, char **argv, const char *flag)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], flag) == 0) {
			return true;
		}
	}
	return false;
}

int main(int argc, char **argv)
{
	static struct sbb_bridge br;
	const char *path;
	char err[512];
	int status, sigfd;

	status = load_config(argc, argv, &br.cfg, &path, err, sizeof(err));
	if (status != 0) {
		if (status < 0) {
			fprintf(stderr, "shmbus-bridge: %s\n", err);
		}
		sbb_config_free(&br.cfg);
		return status < 0 ? SBB_EXIT_USAGE : SBB_EXIT_OK;
	}
	if (has_flag(argc, argv, "--check-config")) {
		print_config(&br.cfg);
		sbb_config_free(&br.cfg);
		return SBB_EXIT_OK;
	}
	sigfd = block_signals();
	if (sigfd < 0 || nats_Open(-1) != NATS_OK) {
		fprintf(stderr, "shmbus-bridge: cannot start: %s\n",
			sigfd < 0 ? strerror(errno) : "nats_Open failed");
		return SBB_EXIT_ERROR;
	}
	pthread_mutex_init(&br.maps_lock, NULL);
	make_run_id(br.run);
	status = run(&br, sigfd, argc, argv);
	sbb_link_close(&br);
	if (br.bus != NULL) {
		shmbus_close(br.bus);
	}
	free(br.exports);
	free(br.imports);
	sbb_config_free(&br.cfg);
	nats_CloseAndWait(5000);
	close(sigfd);
	return status;
}
