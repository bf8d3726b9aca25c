/*
 * conn_internal.h - the inside of a connection (struct shmbus), shared by
 * the files that make it up: conn.c (the object, requests, connect),
 * topic_handles.c (open topics and their handles) and reconnect.c (the
 * watcher thread). Prefix: sb_conn_. Not installed.
 */
#ifndef SB_CLIENT_CONN_INTERNAL_H
#define SB_CLIENT_CONN_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include <cJSON.h>

#include "client/bus_internal.h"
#include "client/link.h"
#include "client/linger.h"
#include "wire/sockpath.h"

/* Longest client name the protocol accepts. */
#define NAME_MAX_LEN 64

struct shmbus {
	pthread_mutex_t lock;  /* one request at a time; guards all below */
	_Atomic unsigned refs; /* the user's, plus one per pub and sub */
	struct link *link;     /* NULL while disconnected */
	int error;	       /* 0, or the connection error that ended it */
	uint64_t gen;	       /* bumped at each (re)connection */
	uint64_t reconnects;
	uint32_t client_id; /* our owner token on the current connection */
	cJSON *hello;	    /* the hello reply's result */
	struct sb_client_topic *topics; /* open pubs and subs */
	struct sb_linger linger;	/* closed topics' mappings (own lock) */

	/* Set once at connect, read-only afterwards. */
	char path[SB_SOCKET_PATH_MAX + 1];
	char name[NAME_MAX_LEN + 1];
	pid_t owner_pid; /* the process whose watcher thread this is */
	int stop_fd;	 /* eventfd: tells the watcher to end */
	int watching;	 /* the watcher thread was started */
	pthread_t watcher;
};

/* A request on the installed link, with bus->lock held (conn.c). */
int sb_conn_call_locked(shmbus *bus, const char *op, cJSON *req, const int *fds,
			int nfds, struct sb_client_reply *rep);

/* Hands `t` back to the broker of the current link, with bus->lock held
 * (topic_handles.c). */
int sb_conn_adopt_locked(shmbus *bus, struct sb_client_topic *t);

/* Starts the connection's watcher thread; stops and joins it, if this
 * process started it (reconnect.c). */
int sb_conn_start_watcher(shmbus *bus);
void sb_conn_stop_watcher(shmbus *bus);

#endif
