/*
 * input.c - reading what a command sends from a file or standard input,
 * bounded: `pub --file` and `req` read one message whole, never more than
 * one byte past the largest the bus takes, so that an endless input costs
 * no more memory than the largest message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli.h"

ssize_t sb_cli_read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return -errno;
		}
		if (n == 0) {
			break;
		}
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int sb_cli_open_input(const char *path)
{
	if (strcmp(path, "-") == 0) {
		return STDIN_FILENO;
	}
	return open(path, O_RDONLY | O_CLOEXEC);
}

void sb_cli_close_input(int fd)
{
	if (fd != STDIN_FILENO) {
		close(fd);
	}
}

const char *sb_cli_input_name(const char *path)
{
	return strcmp(path, "-") == 0 ? "standard input" : path;
}

int sb_cli_read_message(const char *path, size_t max, char **buf, size_t *len)
{
	int fd = sb_cli_open_input(path);
	ssize_t n;
	int r = 0;

	*buf = NULL;
	if (fd < 0) {
		return -errno;
	}
	*buf = malloc(max + 1);
	if (*buf == NULL) {
		sb_cli_close_input(fd);
		return -ENOMEM;
	}
	n = sb_cli_read_full(fd, *buf, max + 1);
	if (n < 0) {
		r = (int)n;
	} else if ((size_t)n > max) {
		r = -EFBIG;
	} else {
		*len = (size_t)n;
	}
	sb_cli_close_input(fd);
	if (r < 0) {
		free(*buf);
		*buf = NULL;
	}
	return r;
}
