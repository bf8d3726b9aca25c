/*
 * link.c - the bridge's one NATS connection: its options (servers,
 * credentials, TLS, the reconnect buffer) and the callbacks that keep the
 * link state the main loop and the counters read. Reconnecting is the
 * client library's: forever, with its buffer holding what is published
 * meanwhile; the main loop decides when to give up (--give-up).
 */
#include <string.h>
#include <time.h>

#include "bridge/bridge.h"

int64_t sbb_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void mark_up(struct sbb_bridge *br, natsConnection *nc)
{
	char url[256] = "";

	atomic_store(&br->max_payload, natsConnection_GetMaxPayload(nc));
	atomic_store(&br->down_since_ms, 0);
	atomic_store(&br->connected, true);
	natsConnection_GetConnectedUrl(nc, url, sizeof(url));
	sbb_info("connected to NATS at %s (max_payload %lld)", url,
		 (long long)atomic_load(&br->max_payload));
}

static void on_connected(natsConnection *nc, void *closure)
{
	mark_up(closure, nc);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	struct sbb_bridge *br = closure;

	atomic_fetch_add(&br->reconnects, 1);
	mark_up(br, nc);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
	struct sbb_bridge *br = closure;
	int64_t zero = 0;

	(void)nc;
	atomic_store(&br->connected, false);
	if (atomic_load(&br->closing)) {
		return; /* the bridge's own close, after draining */
	}
	atomic_fetch_add(&br->disconnects, 1);
	atomic_compare_exchange_strong(&br->down_since_ms, &zero, sbb_now_ms());
	sbb_warn("disconnected from NATS; reconnecting, publishing into a "
		 "%llu-byte buffer meanwhile",
		 (unsigned long long)br->cfg.reconnect_buffer);
}

/* The library closes the connection for good when it stops reconnecting
 * (after the same authorization error twice, or at once when a first
 * connect was refused): nothing reconnects after that, which deserves a
 * line, unless the bridge is closing it itself. */
static void on_closed(natsConnection *nc, void *closure)
{
	struct sbb_bridge *br = closure;
	const char *last = NULL;
	natsStatus s;

	atomic_store(&br->connected, false);
	if (atomic_load(&br->closing)) {
		return;
	}
	s = natsConnection_GetLastError(nc, &last);
	if (last == NULL || last[0] == '\0' ||
	    strcmp(last, natsStatus_GetText(s)) == 0) {
		last = natsStatus_GetText(s);
	}
	sbb_error("NATS at %s: the client library stopped reconnecting (%s)",
		  br->cfg.url, last);
}

/* Asynchronous errors: a slow consumer (counted per import, from the
 * subscription's dropped count) or a permission refused by the server. */
static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus s,
		     void *closure)
{
	struct sbb_bridge *br = closure;
	const char *last = NULL;

	(void)sub;
	if (atomic_fetch_add(&br->async_errors, 1) < 10) {
		natsConnection_GetLastError(nc, &last);
		sbb_warn("NATS: %s%s%s", natsStatus_GetText(s),
			 last != NULL ? ": " : "", last != NULL ? last : "");
	}
}

/* One step of setting options; `what` names it for the error. */
static int step(natsStatus s, const char *what, char *err, size_t len)
{
	if (s != NATS_OK) {
		snprintf(err, len, "NATS %s: %s", what, natsStatus_GetText(s));
		return -1;
	}
	return 0;
}

static int set_credentials(natsOptions *o, const struct sbb_config *c,
			   char *err, size_t len)
{
	if (c->user != NULL &&
	    step(natsOptions_SetUserInfo(
		     o, c->user, c->password != NULL ? c->password : ""),
		 "user", err, len) < 0) {
		return -1;
	}
	if (c->token != NULL &&
	    step(natsOptions_SetToken(o, c->token), "token", err, len) < 0) {
		return -1;
	}
	if (c->ca_file == NULL) {
		return 0;
	}
	if (step(natsOptions_SetSecure(o, true), "TLS", err, len) < 0 ||
	    step(natsOptions_LoadCATrustedCertificates(o, c->ca_file),
		 c->ca_file, err, len) < 0) {
		return -1;
	}
	if (c->cert_file != NULL && step(natsOptions_LoadCertificatesChain(
					     o, c->cert_file, c->key_file),
					 c->cert_file, err, len) < 0) {
		return -1;
	}
	return 0;
}

static int make_options(struct sbb_bridge *br, natsOptions **out, char *err,
			size_t len)
{
	const struct sbb_config *c = &br->cfg;
	natsOptions *o = NULL;

	if (step(natsOptions_Create(&o), "options", err, len) < 0) {
		return -1;
	}
	if (step(natsOptions_SetURL(o, c->url), c->url, err, len) < 0 ||
	    set_credentials(o, c, err, len) < 0 ||
	    step(natsOptions_SetName(o, "shmbus-bridge"), "name", err, len) <
		0 ||
	    step(natsOptions_SetMaxReconnect(o, -1), "reconnect", err, len) <
		0 ||
	    step(natsOptions_SetReconnectWait(o, 250), "reconnect", err, len) <
		0 ||
	    step(natsOptions_SetReconnectBufSize(o, (int)c->reconnect_buffer),
		 "reconnect_buffer", err, len) < 0 ||
	    step(natsOptions_SetRetryOnFailedConnect(o, true, on_connected, br),
		 "retry", err, len) < 0 ||
	    step(natsOptions_SetReconnectedCB(o, on_reconnected, br),
		 "callback", err, len) < 0 ||
	    step(natsOptions_SetDisconnectedCB(o, on_disconnected, br),
		 "callback", err, len) < 0 ||
	    step(natsOptions_SetErrorHandler(o, on_error, br), "callback", err,
		 len) < 0 ||
	    step(natsOptions_SetClosedCB(o, on_closed, br), "callback", err,
		 len) < 0 ||
	    /* Our own exports come back on our own imports otherwise. */
	    step(natsOptions_SetNoEcho(o, true), "no echo", err, len) < 0) {
		natsOptions_Destroy(o);
		return -1;
	}
	*out = o;
	return 0;
}

int sbb_link_open(struct sbb_bridge *br, char *err, size_t len)
{
	natsOptions *o;
	natsStatus s;

	if (br->cfg.reconnect_buffer > (1u << 30)) {
		snprintf(err, len, "reconnect buffer: at most 1GiB");
		return -1;
	}
	if (make_options(br, &o, err, len) < 0) {
		return -1;
	}
	atomic_store(&br->down_since_ms, sbb_now_ms());
	/* Once without the library's retrying, which forgets why a server
	 * that answered refused (a wrong password or token, TLS) and then
	 * stops at once: that reason is worth a line. */
	s = natsOptions_SetRetryOnFailedConnect(o, false, NULL, NULL);
	if (s == NATS_OK) {
		s = natsConnection_Connect(&br->nc, o);
	}
	if (s != NATS_OK && s != NATS_NO_SERVER) {
		const char *why = nats_GetLastError(NULL);

		sbb_error("NATS at %s: %s%s%s", br->cfg.url,
			  natsStatus_GetText(s),
			  why != NULL && why[0] != '\0' ? ": " : "",
			  why != NULL ? why : "");
	}
	if (s != NATS_OK && natsOptions_SetRetryOnFailedConnect(
				o, true, on_connected, br) == NATS_OK) {
		s = natsConnection_Connect(&br->nc, o);
	}
	natsOptions_Destroy(o);
	if (s == NATS_OK) {
		mark_up(br, br->nc);
		return 0;
	}
	if (s == NATS_NOT_YET_CONNECTED) {
		/* The library goes on trying; on_connected says when. */
		sbb_warn("NATS at %s: not reachable yet; retrying",
			 br->cfg.url);
		return 0;
	}
	snprintf(err, len, "NATS at %s: %s", br->cfg.url,
		 natsStatus_GetText(s));
	return -1;
}

void sbb_link_close(struct sbb_bridge *br)
{
	if (br->nc != NULL) {
		natsConnection_Destroy(br->nc);
		br->nc = NULL;
	}
}
