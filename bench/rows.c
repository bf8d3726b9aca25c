/*
 * rows.c - the table of measured rows (rows.h).
 */
#include "bench/rows.h"

#include <stdlib.h>
#include <string.h>

struct bench_row *bench_rows_push(struct bench_rows *rows)
{
	if (rows->n == rows->cap) {
		int cap = rows->cap != 0 ? rows->cap * 2 : 64;
		struct bench_row *v =
		    realloc(rows->v, (size_t)cap * sizeof(*v));

		if (v == NULL) {
			return NULL;
		}
		rows->v = v;
		rows->cap = cap;
	}
	memset(&rows->v[rows->n], 0, sizeof(rows->v[0]));
	return &rows->v[rows->n++];
}

void bench_rows_free(struct bench_rows *rows)
{
	free(rows->v);
	rows->v = NULL;
	rows->n = 0;
	rows->cap = 0;
}
