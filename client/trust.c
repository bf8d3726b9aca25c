/*
 * trust.c - whom the client takes for its broker, and whose memory it
 * maps: whoever listens on the socket is trusted only when it runs as a
 * user the client trusts (itself, root, $SHMBUS_BROKER_USER), and memory
 * it hands over only when that user owns it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/bus_internal.h"

/* Longest buffer getpwnam_r may ask for before we give up on the name. */
#define PW_BUF_MAX (1024 * 1024)

/* A uid written in decimal: 1, or 0 when `s` is not all digits. */
static int parse_uid(const char *s, uid_t *uid)
{
	unsigned long long v = 0;
	size_t n = 0;

	for (; s[n] >= '0' && s[n] <= '9'; n++) {
		v = v * 10 + (unsigned)(s[n] - '0');
		if (v >= (uid_t)-1) {
			return 0; /* (uid_t)-1 is "no user"; more is nonsense */
		}
	}
	if (n == 0 || s[n] != '\0') {
		return 0;
	}
	*uid = (uid_t)v;
	return 1;
}

static int lookup_user(const char *name, uid_t *uid)
{
	struct passwd pw, *found = NULL;
	size_t len = 16384;
	char *buf = NULL;
	int r;

	do {
		char *bigger = realloc(buf, len);

		if (bigger == NULL) {
			free(buf);
			return -ENOMEM;
		}
		buf = bigger;
		r = getpwnam_r(name, &pw, buf, len, &found);
		len *= 2;
	} while (r == ERANGE && len <= PW_BUF_MAX);
	if (r == 0 && found != NULL) {
		*uid = pw.pw_uid;
	}
	free(buf);
	return r == 0 && found != NULL ? 0 : -EINVAL;
}

int sb_client_broker_user(uid_t *uid)
{
	/* secure_getenv: a set-user-ID program must not let its caller
	 * choose whom it trusts. */
	const char *v = secure_getenv("SHMBUS_BROKER_USER");
	int r;

	if (v == NULL || v[0] == '\0') {
		return 0;
	}
	if (parse_uid(v, uid)) {
		return 1;
	}
	r = lookup_user(v, uid);
	return r < 0 ? r : 1;
}

/*
 * Whoever listens on the socket gets our topics' memory on reconnection
 * and could feed us memory of its own: it must run as our own user, root,
 * or the user $SHMBUS_BROKER_USER names. The kernel reports the uid that
 * created the listener (SO_PEERCRED), whatever the peer says. Returns 0
 * with *uid set, or -EPERM.
 */
int sb_client_check_broker(int fd, uid_t *uid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uid_t named;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		return -errno;
	}
	if (cred.uid != geteuid() && cred.uid != 0 &&
	    (sb_client_broker_user(&named) != 1 || named != cred.uid)) {
		return -EPERM;
	}
	*uid = cred.uid;
	return 0;
}

/*
 * Memory from the broker must be the broker's: owned by its uid (so that
 * no other user formatted it and handed it in, see topic_adopt) and, when
 * it is a memfd (linked nowhere), sealed against shrinking and growing, so
 * that nobody can make our mapping of it fault. Checked before the size:
 * only a seal keeps the size true after the check. A persistent topic's
 * data is a file in the broker's data_dir (linked): it cannot carry seals,
 * and only its owner is checked.
 */
int sb_client_check_memory(const struct sb_client_reply *rep)
{
	const int both = F_SEAL_SHRINK | F_SEAL_GROW;

	for (int i = 0; i < rep->nfds; i++) {
		struct stat st;
		int seals;

		if (fstat(rep->fds[i], &st) < 0) {
			return -errno;
		}
		if (st.st_uid != rep->broker_uid) {
			return -EPERM;
		}
		if (st.st_nlink != 0) {
			continue;
		}
		seals = fcntl(rep->fds[i], F_GET_SEALS);
		if (seals < 0 || (seals & both) != both) {
			return -EPERM;
		}
	}
	return 0;
}
