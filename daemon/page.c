/*
 * page.c - one page of a listing reply (topic_list's topics, topic_stat's
 * subscribers): entries are taken while their printed size fits, so that
 * the reply stays under limits.max_frame however many there are and however
 * long their names (docs/protocol.md, "Paging").
 */
#include "daemon/broker.h"

#include <string.h>

/*
 * What a reply adds around its result's fields, at most: the envelope
 * {"id":9007199254740991,"result":{...}}, the listed array's key and
 * brackets, and ,"more":false. The cursor ("next") is counted per entry.
 */
#define PAGE_ENVELOPE 128

void sbd_page_init(struct sbd_page *p, size_t max_frame, size_t fixed,
		   int64_t limit)
{
	size_t reserved = PAGE_ENVELOPE + fixed;

	p->room = max_frame > reserved ? max_frame - reserved : 0;
	p->left = limit;
	p->taken = 0;
	p->more = false;
}

size_t sbd_page_printed(const cJSON *item)
{
	char *text = cJSON_PrintUnformatted(item);
	size_t n = text != NULL ? strlen(text) : 0;

	cJSON_free(text);
	return n;
}

bool sbd_page_fits(struct sbd_page *p, const cJSON *item, size_t next_cost)
{
	size_t need = sbd_page_printed(item) + 1; /* and its comma */

	/* 8: ,"next": before the cursor */
	if (p->more || p->left <= 0 || need + next_cost + 8 > p->room) {
		p->more = true;
		return false;
	}
	p->room -= need;
	p->left--;
	p->taken++;
	return true;
}
