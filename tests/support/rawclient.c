/*
 * rawclient.c - see rawclient.h.
 */
#include "tests/support/rawclient.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "wire/message.h"

int sbt_rc_connect(struct sbt_rc *c, const char *path, int timeout_ms)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};

	memset(c, 0, sizeof(*c));
	if (strlen(path) >= sizeof(addr.sun_path)) {
		c->fd = -1;
		return -ENAMETOOLONG;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		return -errno;
	}
	if (timeout_ms > 0) {
		setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int r = -errno;

		close(c->fd);
		c->fd = -1;
		return r;
	}
	return 0;
}

int sbt_rc_hello(struct sbt_rc *c, const char *path, const char *name)
{
	int r = sbt_rc_connect(c, path, 5000);

	if (r == 0) {
		r = sbt_rc_call(c,
				"{\"op\":\"hello\",\"id\":1,\"version\":1,"
				"\"name\":\"%s\"}",
				name);
	}
	return r;
}

static void drop_reply(struct sbt_rc *c)
{
	for (int i = 0; i < c->nfds; i++) {
		close(c->fds[i]);
	}
	c->nfds = 0;
	cJSON_Delete(c->reply);
	c->reply = NULL;
}

int sbt_rc_hello_or_refusal(struct sbt_rc *c, const char *path)
{
	int r = sbt_rc_connect(c, path, 5000);

	if (r == 0) {
		/* A refusal may close the connection before the hello
		 * arrives (EPIPE here): it is still there to read. */
		sbt_rc_send(c, "{\"op\":\"hello\",\"id\":1,\"version\":1}");
		r = sbt_rc_recv(c);
	}
	return r < 0 ? r : sbt_rc_code(c);
}

void sbt_rc_close(struct sbt_rc *c)
{
	drop_reply(c);
	if (c->fd >= 0) {
		close(c->fd);
	}
	c->fd = -1;
}

int sbt_rc_send_raw(struct sbt_rc *c, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int sbt_rc_send(struct sbt_rc *c, const char *json)
{
	size_t len = strlen(json);
	unsigned char hdr[4] = {(unsigned char)(len >> 24),
				(unsigned char)(len >> 16),
				(unsigned char)(len >> 8), (unsigned char)len};
	int r = sbt_rc_send_raw(c, hdr, sizeof(hdr));

	return r < 0 ? r : sbt_rc_send_raw(c, json, len);
}

int sbt_rc_send_fds(struct sbt_rc *c, const char *json, const int *fds,
		    int nfds)
{
	size_t len = strlen(json);
	unsigned char hdr[4] = {(unsigned char)(len >> 24),
				(unsigned char)(len >> 16),
				(unsigned char)(len >> 8), (unsigned char)len};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} control;
	/* The whole frame in one sendmsg, so that the broker reads the
	 * request with its descriptors at once. */
	struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)json, len}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
	struct cmsghdr *cm;
	ssize_t n;

	if (nfds < 0 || nfds > 4) {
		return -EINVAL;
	}
	if (nfds > 0) {
		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	do {
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		return -errno;
	}
	if ((size_t)n < sizeof(hdr)) {
		int r = sbt_rc_send_raw(c, hdr + n, sizeof(hdr) - (size_t)n);

		return r < 0 ? r : sbt_rc_send_raw(c, json, len);
	}
	n -= (ssize_t)sizeof(hdr);
	return sbt_rc_send_raw(c, json + n, len - (size_t)n);
}

/* Reads exactly `len` bytes; the first recvmsg may carry descriptors. */
static int recv_exact(struct sbt_rc *c, void *buf, size_t len, int take_fds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * SBT_RC_MAX_FDS)];
	size_t got = 0;

	while (got < len) {
		struct iovec iov = {(char *)buf + got, len - got};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n;

		if (take_fds && got == 0) {
			mh.msg_control = cbuf;
			mh.msg_controllen = sizeof(cbuf);
		}
		n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		}
		if (n == 0) {
			return -ECONNRESET;
		}
		for (struct cmsghdr *cm =
			 mh.msg_control != NULL ? CMSG_FIRSTHDR(&mh) : NULL;
		     cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level == SOL_SOCKET &&
			    cm->cmsg_type == SCM_RIGHTS) {
				int k = (int)((cm->cmsg_len - CMSG_LEN(0)) /
					      sizeof(int));

				k = k > SBT_RC_MAX_FDS ? SBT_RC_MAX_FDS : k;
				memcpy(c->fds, CMSG_DATA(cm),
				       sizeof(int) * (size_t)k);
				c->nfds = k;
			}
		}
		got += (size_t)n;
	}
	return 0;
}

int sbt_rc_recv(struct sbt_rc *c)
{
	unsigned char hdr[4];
	uint32_t len;
	char *buf;
	int r;

	drop_reply(c);
	r = recv_exact(c, hdr, sizeof(hdr), 1);
	if (r < 0) {
		return r;
	}
	len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
	      (uint32_t)hdr[2] << 8 | hdr[3];
	if (len > (16u << 20)) {
		return -EMSGSIZE;
	}
	buf = malloc(len + 1);
	if (buf == NULL) {
		return -ENOMEM;
	}
	r = recv_exact(c, buf, len, 0);
	if (r == 0) {
		c->reply = cJSON_ParseWithLength(buf, len);
		r = c->reply != NULL ? 0 : -EBADMSG;
	}
	free(buf);
	return r;
}

int sbt_rc_call(struct sbt_rc *c, const char *fmt, ...)
{
	char json[4096];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(json, sizeof(json), fmt, ap);
	va_end(ap);
	r = sbt_rc_send(c, json);
	if (r == 0) {
		r = sbt_rc_recv(c);
	}
	return r < 0 ? r : sbt_rc_code(c);
}

int sbt_rc_code(const struct sbt_rc *c)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(c->reply, "error");

	if (e == NULL) {
		return 0;
	}
	return sb_msg_errno_from_name(
	    cJSON_GetStringValue(cJSON_GetObjectItem(e, "code")));
}

const char *sbt_rc_message(const struct sbt_rc *c)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(c->reply, "error");
	const char *m = cJSON_GetStringValue(
	    cJSON_GetObjectItemCaseSensitive(e, "message"));

	return m != NULL ? m : "(no error)";
}

const cJSON *sbt_rc_result(const struct sbt_rc *c)
{
	return cJSON_GetObjectItemCaseSensitive(c->reply, "result");
}

int64_t sbt_rc_int(const struct sbt_rc *c, const char *path, int64_t dflt)
{
	const cJSON *v = sbt_rc_result(c);
	char part[64];

	while (v != NULL && *path != '\0') {
		size_t n = strcspn(path, ".");

		if (n >= sizeof(part)) {
			return dflt;
		}
		memcpy(part, path, n);
		part[n] = '\0';
		v = cJSON_GetObjectItemCaseSensitive(v, part);
		path += n + (path[n] == '.');
	}
	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : dflt;
}

static int64_t result_int(const struct sbt_rc *c, const char *name)
{
	const cJSON *v =
	    cJSON_GetObjectItemCaseSensitive(sbt_rc_result(c), name);

	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

static void *map_fd(int fd, uint64_t size, int prot)
{
	struct stat st;
	void *p;

	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != size) {
		return NULL;
	}
	p = mmap(NULL, size, prot, MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void unmap_slots(struct sb_ring_slot **slots, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (slots[i] != NULL && slots[i] != SB_RING_SLOT_HOLD) {
			munmap(slots[i], SB_RING_SLOT_SEGMENT_SIZE);
		}
		slots[i] = NULL;
	}
}

/* Takes one page of op slots from `from` on into `slots`; returns where
 * the next starts (count when done), or -errno. */
static int64_t slots_page(struct sbt_rc_topic *t, int64_t from)
{
	const cJSON *res, *item;
	int k = 0;
	int r = sbt_rc_call(t->rc,
			    "{\"op\":\"slots\",\"id\":77,\"handle\":%lld,"
			    "\"from\":%lld}",
			    (long long)t->handle, (long long)from);

	if (r < 0) {
		return r;
	}
	res = sbt_rc_result(t->rc);
	cJSON_ArrayForEach(item, cJSON_GetObjectItem(res, "slots"))
	{
		uint32_t i = (uint32_t)item->valuedouble;

		if (k >= t->rc->nfds || i >= t->map.count) {
			return -EPROTO;
		}
		t->map.slots[i] = map_fd(t->rc->fds[k++],
					 SB_RING_SLOT_SEGMENT_SIZE, PROT_READ);
		if (t->map.slots[i] == NULL) {
			return -EPROTO;
		}
	}
	cJSON_ArrayForEach(item, cJSON_GetObjectItem(res, "pending"))
	{
		uint32_t i = (uint32_t)item->valuedouble;

		if (i < t->map.count) {
			t->map.slots[i] = SB_RING_SLOT_HOLD;
		}
	}
	r = (int)result_int(t->rc, "next");
	return r > 0 ? r : (int64_t)t->map.count;
}

/* The publisher's refresh: maps every slot segment afresh. */
static int refresh(struct sb_ring_slot_map *map)
{
	struct sbt_rc_topic *t = map->ctx;
	int64_t next = 0;

	unmap_slots(map->slots, map->count);
	t->refreshes++;
	while (next >= 0 && next < map->count) {
		next = slots_page(t, next);
	}
	return next < 0 ? (int)next : 0;
}

int sbt_rc_map_topic(struct sbt_rc *c, int writable, struct sbt_rc_topic *t)
{
	int sub = c->nfds == 3;

	memset(t, 0, sizeof(*t));
	t->rc = c;
	t->handle = result_int(c, "handle");
	t->data_size = (uint64_t)result_int(c, "data_size");
	t->ctl_size = (uint64_t)result_int(c, "ctl_size");
	if (c->nfds < 2 || t->handle < 0) {
		return -EPROTO;
	}
	t->data = map_fd(c->fds[0], t->data_size,
			 writable ? PROT_READ | PROT_WRITE : PROT_READ);
	t->ctl = map_fd(c->fds[1], t->ctl_size, PROT_READ | PROT_WRITE);
	if (sub) {
		t->slot_index = (uint32_t)result_int(c, "slot");
		t->slot = map_fd(c->fds[2], SB_RING_SLOT_SEGMENT_SIZE,
				 PROT_READ | PROT_WRITE);
	}
	if (t->data == NULL || t->ctl == NULL || (sub && t->slot == NULL) ||
	    sb_ring_attach(&t->ring, t->data, t->data_size, t->ctl,
			   t->ctl_size) < 0) {
		sbt_rc_unmap_topic(t);
		return -EPROTO;
	}
	t->map.count = t->ring.slot_count;
	t->map.slots = calloc(t->map.count, sizeof(*t->map.slots));
	pthread_mutex_init(&t->map.lock, NULL);
	t->map.refresh = refresh;
	t->map.ctx = t;
	if (!sub) {
		sb_ring_set_slot_map(&t->ring, &t->map);
	}
	return t->map.slots != NULL ? 0 : -ENOMEM;
}

int sbt_rc_topic_reader(struct sbt_rc_topic *t, int start,
			struct sb_ring_reader *rd)
{
	return sb_ring_reader_open_slot(&t->ring, t->slot, t->slot_index, start,
					rd);
}

void sbt_rc_unmap_topic(struct sbt_rc_topic *t)
{
	if (t->map.slots != NULL) {
		unmap_slots(t->map.slots, t->map.count);
		free(t->map.slots);
		pthread_mutex_destroy(&t->map.lock);
	}
	if (t->data != NULL) {
		munmap(t->data, t->data_size);
	}
	if (t->ctl != NULL) {
		munmap(t->ctl, t->ctl_size);
	}
	if (t->slot != NULL) {
		munmap(t->slot, SB_RING_SLOT_SEGMENT_SIZE);
	}
	memset(t, 0, sizeof(*t));
}
