/*
 * error.c - shmbus_strerror(): the table of wire/errors.h names every error
 * code the library returns, in the words of the library rather than of the
 * kernel call that happened to produce it. Codes outside the table fall
 * back to glibc's thread-safe description, so any errno a system call
 * passes through still reads sensibly.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "wire/errors.h"
#include "shmbus/map.h"

const char *shmbus_strerror(int err)
{
	const char *desc;

	if (err == INT_MIN) {
		return "unknown error code";
	}
	if (err < 0) {
		err = -err;
	}
	switch (err) {
	case 0:
		return "success";
#define SB_ERROR_CASE(code, on_wire, text)                                     \
	case code:                                                             \
		return text;
		SB_ERRNO_MAP(SB_ERROR_CASE)
#undef SB_ERROR_CASE
	default:
		break;
	}
	desc = strerrordesc_np(err);
	return desc != NULL ? desc : "unknown error code";
}
