/*
 * stats.c - the bridge's counters as one JSON object (docs/bridge.md,
 * "Counters"): published on shmbus.<origin>._stats with the header
 * Shmbus-Stats (so that importers never take it for data) and logged, every
 * stats_interval and once more at exit.
 */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/bridge.h"
#include "wire/subject.h"

static void add(cJSON *o, const char *name, uint64_t v)
{
	cJSON_AddNumberToObject(o, name, (double)v);
}

static cJSON *export_json(struct sbb_export *e, uint64_t *total)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "topic", e->topic);
	cJSON_AddStringToObject(o, "subject", e->subject);
	add(o, "sent", atomic_load(&e->n.sent));
	add(o, "bytes", atomic_load(&e->n.bytes));
	add(o, "lost", atomic_load(&e->n.lost));
	add(o, "skipped_own", atomic_load(&e->n.skipped_own));
	add(o, "too_big", atomic_load(&e->n.too_big));
	add(o, "buffer_full", atomic_load(&e->n.buffer_full));
	add(o, "failed", atomic_load(&e->n.failed));
	total[0] += atomic_load(&e->n.sent);
	total[1] += atomic_load(&e->n.lost) + atomic_load(&e->n.too_big) +
		    atomic_load(&e->n.buffer_full) + atomic_load(&e->n.failed);
	return o;
}

static cJSON *import_json(struct sbb_import *im, uint64_t *total)
{
	cJSON *o = cJSON_CreateObject();
	int64_t dropped = 0;
	uint64_t not_delivered;

	natsSubscription_GetDropped(im->sub, &dropped);
	cJSON_AddStringToObject(o, "subject", im->subject);
	if (im->topic != NULL) {
		cJSON_AddStringToObject(o, "topic", im->topic);
	}
	add(o, "received", atomic_load(&im->n.received));
	add(o, "delivered", atomic_load(&im->n.delivered));
	add(o, "gaps", atomic_load(&im->n.gaps));
	add(o, "reordered", atomic_load(&im->n.reordered));
	add(o, "untracked", atomic_load(&im->n.untracked));
	add(o, "dropped", dropped > 0 ? (uint64_t)dropped : 0);
	add(o, "own_origin", atomic_load(&im->n.own_origin));
	add(o, "stats", atomic_load(&im->n.stats));
	add(o, "too_big", atomic_load(&im->n.too_big));
	add(o, "full", atomic_load(&im->n.full));
	add(o, "no_topic", atomic_load(&im->n.no_topic));
	add(o, "bad_subject", atomic_load(&im->n.bad_subject));
	add(o, "loop_unsafe", atomic_load(&im->n.loop_unsafe));
	add(o, "failed", atomic_load(&im->n.failed));
	not_delivered =
	    atomic_load(&im->n.too_big) + atomic_load(&im->n.full) +
	    atomic_load(&im->n.no_topic) + atomic_load(&im->n.bad_subject) +
	    atomic_load(&im->n.loop_unsafe) + atomic_load(&im->n.failed);
	total[2] += atomic_load(&im->n.delivered);
	/* Not `dropped`: a dropped message of a bridge's export leaves a gap
	 * in its sequence, counted in `gaps` already. */
	total[3] += not_delivered + atomic_load(&im->n.gaps);
	return o;
}

char *sbb_stats_json(struct sbb_bridge *br)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *nats = cJSON_AddObjectToObject(root, "nats");
	cJSON *exports = cJSON_AddArrayToObject(root, "export");
	cJSON *imports = cJSON_AddArrayToObject(root, "import");
	cJSON *totals = cJSON_AddObjectToObject(root, "totals");
	uint64_t total[4] = {0};
	char *text;

	cJSON_AddStringToObject(root, "origin", br->cfg.origin);
	cJSON_AddStringToObject(root, "run", br->run);
	cJSON_AddBoolToObject(nats, "connected", atomic_load(&br->connected));
	add(nats, "disconnects", atomic_load(&br->disconnects));
	add(nats, "reconnects", atomic_load(&br->reconnects));
	add(nats, "async_errors", atomic_load(&br->async_errors));
	pthread_mutex_lock(&br->maps_lock);
	for (size_t i = 0; i < br->nexports; i++) {
		cJSON_AddItemToArray(exports,
				     export_json(br->exports[i], total));
	}
	for (size_t i = 0; i < br->nimports; i++) {
		cJSON_AddItemToArray(imports,
				     import_json(br->imports[i], total));
	}
	pthread_mutex_unlock(&br->maps_lock);
	add(totals, "exported", total[0]);
	add(totals, "export_losses", total[1]);
	add(totals, "imported", total[2]);
	add(totals, "import_losses", total[3]);
	text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return text;
}

void sbb_stats_publish(struct sbb_bridge *br)
{
	char subject[SB_SUBJECT_MAX + 1];
	char *text = sbb_stats_json(br);
	natsMsg *m = NULL;

	if (text == NULL) {
		return;
	}
	sbb_info("stats %s", text);
	snprintf(subject, sizeof(subject), "%s.%s._stats", SB_SUBJECT_PREFIX,
		 br->cfg.origin);
	if (atomic_load(&br->connected) &&
	    natsMsg_Create(&m, subject, NULL, text, (int)strlen(text)) ==
		NATS_OK &&
	    natsMsgHeader_Set(m, SBB_HDR_STATS, "1") == NATS_OK &&
	    natsMsgHeader_Set(m, SBB_HDR_ORIGIN, br->cfg.origin) == NATS_OK) {
		natsConnection_PublishMsg(br->nc, m);
	}
	natsMsg_Destroy(m);
	free(text);
}
