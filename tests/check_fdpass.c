/*
 * check_fdpass.c - descriptor passing over a socketpair: what is sent
 * arrives as the same objects, close-on-exec; what is beyond the receiver's
 * limit or in a cut-off control message is closed, never leaked; control
 * data that is not descriptors is never taken for descriptors.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wire/fdpass.h"
#include "tests/suites.h"

/* How many descriptors this process has open. */
static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d) != NULL) {
		n++;
	}
	closedir(d);
	return n;
}

static void make_pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
}

/* `n` eventfds, each a distinct object to recognise on arrival. */
static void make_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		fds[i] = eventfd(0, EFD_CLOEXEC);
		ck_assert_int_ge(fds[i], 0);
	}
}

static void close_all(const int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		close(fds[i]);
	}
}

/* `got` is another descriptor of the object `sent` is, and close-on-exec. */
static void assert_same_object(int sent, int got)
{
	struct stat a, b;

	ck_assert_int_ne(sent, got);
	ck_assert_int_eq(fstat(sent, &a), 0);
	ck_assert_int_eq(fstat(got, &b), 0);
	ck_assert(a.st_dev == b.st_dev && a.st_ino == b.st_ino);
	ck_assert_int_ne(fcntl(got, F_GETFD) & FD_CLOEXEC, 0);
}

static struct sb_fdpass_in receiver(int *fds, int max, int room)
{
	struct sb_fdpass_in in = {.fds = fds, .max = max, .room = room};

	return in;
}

START_TEST(zero_one_and_max_descriptors_arrive)
{
	static const int counts[] = {0, 1, SB_FDPASS_MAX};

	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		int n = counts[c];
		int sv[2], sent[SB_FDPASS_MAX], got[SB_FDPASS_MAX];
		struct sb_fdpass_in in =
		    receiver(got, SB_FDPASS_MAX, SB_FDPASS_MAX);
		char buf[8];

		make_pair(sv);
		make_fds(sent, n);
		ck_assert_int_eq(sb_fdpass_send(sv[0], "hello", 5, sent, n), 5);
		ck_assert_int_eq(sb_fdpass_recv(sv[1], buf, sizeof(buf), &in),
				 5);
		ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
		ck_assert_int_eq(in.n, n);
		ck_assert_int_eq(in.extra, 0);
		ck_assert(!in.truncated);
		for (int i = 0; i < n; i++) {
			assert_same_object(sent[i], got[i]);
		}
		close_all(got, in.n);
		close_all(sent, n);
		close_all(sv, 2);
	}
}
END_TEST

START_TEST(descriptors_accumulate_across_receives)
{
	int sv[2], sent[2], got[SB_FDPASS_MAX];
	struct sb_fdpass_in in = receiver(got, SB_FDPASS_MAX, SB_FDPASS_MAX);
	char c;

	make_pair(sv);
	make_fds(sent, 2);
	ck_assert_int_eq(sb_fdpass_send(sv[0], "a", 1, &sent[0], 1), 1);
	ck_assert_int_eq(sb_fdpass_recv(sv[1], &c, 1, &in), 1);
	ck_assert_int_eq(sb_fdpass_send(sv[0], "b", 1, &sent[1], 1), 1);
	ck_assert_int_eq(sb_fdpass_recv(sv[1], &c, 1, &in), 1);
	ck_assert_int_eq(in.n, 2);
	assert_same_object(sent[0], got[0]);
	assert_same_object(sent[1], got[1]);
	close_all(got, 2);
	close_all(sent, 2);
	close_all(sv, 2);
}
END_TEST

START_TEST(sending_too_many_sends_nothing)
{
	int sv[2], fds[SB_FDPASS_MAX + 1], got[SB_FDPASS_MAX];
	struct sb_fdpass_in in = receiver(got, SB_FDPASS_MAX, SB_FDPASS_MAX);
	char c;

	make_pair(sv);
	make_fds(fds, SB_FDPASS_MAX + 1);
	ck_assert_int_eq(sb_fdpass_send(sv[0], "x", 1, fds, SB_FDPASS_MAX + 1),
			 -EINVAL);
	ck_assert_int_eq(sb_fdpass_send(sv[0], "x", 1, fds, -1), -EINVAL);
	ck_assert_int_eq(sb_fdpass_recv(sv[1], &c, 1, &in), -EAGAIN);
	ck_assert_int_eq(in.n, 0);
	close_all(fds, SB_FDPASS_MAX + 1);
	close_all(sv, 2);
}
END_TEST

START_TEST(descriptors_beyond_the_limit_are_closed)
{
	int sv[2], sent[SB_FDPASS_MAX], got[2], before;
	struct sb_fdpass_in in = receiver(got, 2, SB_FDPASS_ROOM_MAX);
	char c;

	make_pair(sv);
	make_fds(sent, SB_FDPASS_MAX);
	ck_assert_int_eq(sb_fdpass_send(sv[0], "x", 1, sent, SB_FDPASS_MAX), 1);
	before = open_fds();
	ck_assert_int_eq(sb_fdpass_recv(sv[1], &c, 1, &in), 1);
	ck_assert(!in.truncated);
	ck_assert_int_eq(in.n, 2);
	ck_assert_int_eq(in.extra, SB_FDPASS_MAX - 2);
	/* Only the two kept ones are open: the rest were closed. */
	ck_assert_int_eq(open_fds(), before + 2);
	assert_same_object(sent[0], got[0]);
	assert_same_object(sent[1], got[1]);
	close_all(got, 2);
	close_all(sent, SB_FDPASS_MAX);
	close_all(sv, 2);
}
END_TEST

START_TEST(a_cut_off_control_message_closes_what_it_brought)
{
	int sv[2], sent[SB_FDPASS_MAX], got[SB_FDPASS_MAX], before;
	struct sb_fdpass_in in = receiver(got, 2, 2);
	char c;

	make_pair(sv);
	make_fds(sent, SB_FDPASS_MAX);
	/* One kept from an earlier message stays kept. */
	ck_assert_int_eq(sb_fdpass_send(sv[0], "a", 1, sent, 1), 1);
	ck_assert_int_eq(sb_fdpass_recv(sv[1], &c, 1, &in), 1);
	ck_assert_int_eq(in.n, 1);
	/* Four where the receive has room for two: the kernel delivers
	 * two and cuts the rest off. */
	ck_assert_int_eq(sb_fdpass_send(sv[0], "b", 1, sent, SB_FDPASS_MAX), 1);
	before = open_fds();
	ck_assert_int_eq(sb_fdpass_recv(sv[1], &c, 1, &in), 1);
	ck_assert(in.truncated);
	ck_assert_int_eq(in.n, 1);
	ck_assert_int_eq(open_fds(), before);
	assert_same_object(sent[0], got[0]);
	/* The flag speaks of the last receive only. */
	ck_assert_int_eq(sb_fdpass_send(sv[0], "c", 1, NULL, 0), 1);
	ck_assert_int_eq(sb_fdpass_recv(sv[1], &c, 1, &in), 1);
	ck_assert(!in.truncated);
	close_all(got, in.n);
	close_all(sent, SB_FDPASS_MAX);
	close_all(sv, 2);
}
END_TEST

START_TEST(credentials_are_not_taken_for_descriptors)
{
	int sv[2], got[SB_FDPASS_MAX], on = 1, before;
	struct sb_fdpass_in in = receiver(got, SB_FDPASS_MAX, SB_FDPASS_MAX);
	char c;

	make_pair(sv);
	/* The kernel then attaches SCM_CREDENTIALS (pid, uid, gid: three
	 * ints) to what the receiver gets. */
	ck_assert_int_eq(
	    setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)), 0);
	ck_assert_int_eq(sb_fdpass_send(sv[0], "x", 1, NULL, 0), 1);
	before = open_fds();
	ck_assert_int_eq(sb_fdpass_recv(sv[1], &c, 1, &in), 1);
	ck_assert(!in.truncated);
	ck_assert_int_eq(in.n, 0);
	ck_assert_int_eq(in.extra, 0);
	ck_assert_int_eq(open_fds(), before);
	close_all(sv, 2);
}
END_TEST

START_TEST(bad_room_and_end_of_stream)
{
	int sv[2], got[SB_FDPASS_MAX];
	struct sb_fdpass_in small = receiver(got, 2, 1);
	struct sb_fdpass_in big = receiver(got, 2, SB_FDPASS_ROOM_MAX + 1);
	struct sb_fdpass_in in = receiver(got, 2, 2);
	char c;

	make_pair(sv);
	ck_assert_int_eq(sb_fdpass_recv(sv[1], &c, 1, &small), -EINVAL);
	ck_assert_int_eq(sb_fdpass_recv(sv[1], &c, 1, &big), -EINVAL);
	close(sv[0]);
	ck_assert_int_eq(sb_fdpass_recv(sv[1], &c, 1, &in), 0);
	ck_assert_int_eq(sb_fdpass_recv(-1, &c, 1, &in), -EBADF);
	close(sv[1]);
}
END_TEST

Suite *fdpass_suite(void)
{
	Suite *s = suite_create("fdpass");
	TCase *tc = tcase_create("socketpair");

	tcase_add_test(tc, zero_one_and_max_descriptors_arrive);
	tcase_add_test(tc, descriptors_accumulate_across_receives);
	tcase_add_test(tc, sending_too_many_sends_nothing);
	tcase_add_test(tc, descriptors_beyond_the_limit_are_closed);
	tcase_add_test(tc, a_cut_off_control_message_closes_what_it_brought);
	tcase_add_test(tc, credentials_are_not_taken_for_descriptors);
	tcase_add_test(tc, bad_room_and_end_of_stream);
	suite_add_tcase(s, tc);
	return s;
}
