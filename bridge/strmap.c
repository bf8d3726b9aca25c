/*
 * strmap.c - a string-keyed table with open addressing (FNV-1a, linear
 * probing), kept under 3/4 full. Only inserted into and freed whole: the
 * bridge's tables (an import's pubs by topic, the last sequence number of
 * each stream) only grow while a mapping lives.
 */
#include <stdlib.h>
#include <string.h>

#include "bridge/bridge.h"

struct sbb_strmap_entry {
	char *key; /* NULL: empty */
	void *value;
};

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s != '\0'; s++) {
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	}
	return h;
}

static struct sbb_strmap_entry *find(struct sbb_strmap_entry *v, size_t cap,
				     const char *key)
{
	size_t i = (size_t)(hash(key) & (cap - 1));

	while (v[i].key != NULL && strcmp(v[i].key, key) != 0) {
		i = (i + 1) & (cap - 1);
	}
	return &v[i];
}

static int grow(struct sbb_strmap *m)
{
	size_t cap = m->cap != 0 ? m->cap * 2 : 16;
	struct sbb_strmap_entry *v = calloc(cap, sizeof(*v));

	if (v == NULL) {
		return -1;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (m->v[i].key != NULL) {
			*find(v, cap, m->v[i].key) = m->v[i];
		}
	}
	free(m->v);
	m->v = v;
	m->cap = cap;
	return 0;
}

void **sbb_strmap_slot(struct sbb_strmap *m, const char *key)
{
	struct sbb_strmap_entry *e;

	if ((m->n + 1) * 4 > m->cap * 3 && grow(m) < 0) {
		return NULL;
	}
	e = find(m->v, m->cap, key);
	if (e->key == NULL && m->n >= m->max) {
		return NULL;
	}
	if (e->key == NULL) {
		e->key = strdup(key);
		if (e->key == NULL) {
			return NULL;
		}
		e->value = NULL;
		m->n++;
	}
	return &e->value;
}

void sbb_strmap_free(struct sbb_strmap *m, void (*fn)(void *value))
{
	for (size_t i = 0; i < m->cap; i++) {
		if (m->v[i].key != NULL) {
			if (fn != NULL) {
				fn(m->v[i].value);
			}
			free(m->v[i].key);
		}
	}
	free(m->v);
	*m = (struct sbb_strmap){0};
}
