/*
 * check_config.c - the broker's configuration: the built-in defaults, a
 * full valid file, the exact message for every kind of wrong field, the
 * topic geometry rule, and reading files that are missing, unreadable or
 * too large (the size syntax itself is check_size.c's). A failed parse
 * must leave the output untouched (ASan catches anything it leaks).
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "tests/suites.h"
#include "tests/support/testutil.h"

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)

static int parse(const char *json, struct sb_config *out, char *err,
		 size_t errlen)
{
	return sb_config_parse(json, strlen(json), "shmbusd.json", out, err,
			       errlen);
}

/* Parses `json`, which must fail with -EINVAL and exactly `expected`, and
 * must leave the output struct as it was. */
static void assert_refused(const char *json, const char *expected)
{
	struct sb_config out, before;
	char err[512];

	memset(&out, 0xa5, sizeof(out));
	before = out;
	ck_assert_int_eq(parse(json, &out, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, expected);
	ck_assert_int_eq(memcmp(&out, &before, sizeof(out)), 0);
}

START_TEST(defaults_without_a_file)
{
	struct sb_config cfg, parsed;
	char err[256] = "unchanged";

	sb_config_defaults(&cfg);
	ck_assert_ptr_null(cfg.socket_path);
	ck_assert_ptr_null(cfg.data_dir);
	ck_assert_uint_eq(cfg.socket_dir_mode, 0700);
	ck_assert_uint_eq(cfg.socket_mode, 0600);
	ck_assert_int_eq(cfg.socket_group, -1);
	ck_assert_int_eq(cfg.log_level, SB_CONFIG_LOG_INFO);
	ck_assert(cfg.auto_create);
	ck_assert_uint_eq(cfg.persist_interval_ms, 1000);
	ck_assert(cfg.persist_sync);
	ck_assert_uint_eq(cfg.limits.max_clients, 256);
	ck_assert_uint_eq(cfg.limits.max_clients_per_uid, 64);
	ck_assert_uint_eq(cfg.limits.max_topics, 1024);
	ck_assert_uint_eq(cfg.limits.max_ring_bytes, GIB);
	ck_assert_uint_eq(cfg.limits.max_topic_bytes, 256 * MIB);
	ck_assert_uint_eq(cfg.limits.max_message, 16 * MIB);
	ck_assert_uint_eq(cfg.limits.max_frame, 64 * KIB);
	ck_assert_uint_eq(cfg.limits.max_pending_bytes, MIB);
	ck_assert_uint_eq(cfg.limits.max_requests_in_flight, 64);
	ck_assert_uint_eq(cfg.limits.max_subscribers, 64);
	ck_assert_uint_eq(cfg.topic_defaults.capacity, MIB);
	ck_assert_uint_eq(cfg.topic_defaults.max_message, 64 * KIB);
	ck_assert_int_eq(cfg.topic_defaults.mode, SB_CONFIG_BROADCAST);
	ck_assert_int_eq(cfg.topic_defaults.overflow, SB_CONFIG_BLOCK);
	ck_assert_uint_eq(cfg.topic_defaults.linger_ms, 0);
	ck_assert_uint_eq(cfg.topic_defaults.max_stall_ms, 0); /* off */
	ck_assert(!cfg.topic_defaults.access.publish.restricted);
	ck_assert_uint_eq(cfg.n_topics, 0);

	/* An empty object is exactly the defaults. */
	ck_assert_int_eq(parse(" {} \n", &parsed, err, sizeof(err)), 0);
	ck_assert_str_eq(err, "");
	ck_assert_int_eq(memcmp(&parsed, &cfg, sizeof(cfg)), 0);
	sb_config_free(&parsed);
	sb_config_free(&cfg);
	sb_config_free(&cfg);
}
END_TEST

static const char full_file[] =
    "{\n"
    "  \"socket\": {\"path\": \"/run/shmbus/shmbusd.sock\",\n"
    "             \"dir_mode\": \"0750\", \"mode\": \"660\",\n"
    "             \"group\": 4294967294},\n"
    "  \"data_dir\": \"/var/lib/shmbus\",\n"
    "  \"persist_interval_ms\": 250, \"persist_sync\": false,\n"
    "  \"log_level\": \"debug\",\n"
    "  \"auto_create\": false,\n"
    "  \"limits\": {\"max_clients\": 100, \"max_clients_per_uid\": 20,\n"
    "    \"max_topics\": 10,\n"
    "    \"max_ring_bytes\": \"2GiB\", \"max_topic_bytes\": \"512MiB\",\n"
    "    \"max_message\": \"1MiB\", \"max_frame\": 131072,\n"
    "    \"max_pending_bytes\": \"4MiB\", \"max_requests_in_flight\": 8,\n"
    "    \"max_subscribers\": 16},\n"
    "  \"topic_defaults\": {\"capacity\": \"64KiB\", \"max_message\": 1024,\n"
    "    \"mode\": \"queue\", \"overflow\": \"reject\", \"linger_ms\": 500,\n"
    "    \"max_stall_ms\": 3000,\n"
    "    \"access\": {\"publish\": {\"uids\": [1000, 1001]},\n"
    "                \"admin\": {}}},\n"
    "  \"topics\": [\n"
    "    {\"name\": \"sensors/imu\", \"capacity\": \"4MiB\",\n"
    "     \"max_message\": \"1MiB\", \"mode\": \"broadcast\",\n"
    "     \"overflow\": \"overwrite\", \"persistent\": true,\n"
    "     \"linger_ms\": 0, \"max_stall_ms\": 0,\n"
    "     \"access\": {\"subscribe\": {\"gids\": [20], \"uids\": []}}},\n"
    "    {\"name\": \"jobs\"}\n"
    "  ]\n"
    "}\n";

START_TEST(full_valid_file)
{
	struct sb_config cfg;
	const struct sb_config_topic *imu, *jobs;
	char err[256];

	ck_assert_int_eq(parse(full_file, &cfg, err, sizeof(err)), 0);
	ck_assert_str_eq(cfg.socket_path, "/run/shmbus/shmbusd.sock");
	ck_assert_uint_eq(cfg.socket_dir_mode, 0750);
	ck_assert_uint_eq(cfg.socket_mode, 0660);
	ck_assert_int_eq(cfg.socket_group, 4294967294LL);
	ck_assert_str_eq(cfg.data_dir, "/var/lib/shmbus");
	ck_assert_uint_eq(cfg.persist_interval_ms, 250);
	ck_assert(!cfg.persist_sync);
	ck_assert_int_eq(cfg.log_level, SB_CONFIG_LOG_DEBUG);
	ck_assert(!cfg.auto_create);
	ck_assert_uint_eq(cfg.limits.max_clients, 100);
	ck_assert_uint_eq(cfg.limits.max_clients_per_uid, 20);
	ck_assert_uint_eq(cfg.limits.max_topics, 10);
	ck_assert_uint_eq(cfg.limits.max_ring_bytes, 2 * GIB);
	ck_assert_uint_eq(cfg.limits.max_topic_bytes, 512 * MIB);
	ck_assert_uint_eq(cfg.limits.max_message, MIB);
	ck_assert_uint_eq(cfg.limits.max_frame, 128 * KIB);
	ck_assert_uint_eq(cfg.limits.max_pending_bytes, 4 * MIB);
	ck_assert_uint_eq(cfg.limits.max_requests_in_flight, 8);
	ck_assert_uint_eq(cfg.limits.max_subscribers, 16);

	ck_assert_ptr_null(cfg.topic_defaults.name);
	ck_assert_uint_eq(cfg.topic_defaults.capacity, 64 * KIB);
	ck_assert_uint_eq(cfg.topic_defaults.max_message, 1024);
	ck_assert_int_eq(cfg.topic_defaults.mode, SB_CONFIG_QUEUE);
	ck_assert_int_eq(cfg.topic_defaults.overflow, SB_CONFIG_REJECT);
	ck_assert_uint_eq(cfg.topic_defaults.linger_ms, 500);
	ck_assert_uint_eq(cfg.topic_defaults.max_stall_ms, 3000);
	ck_assert(cfg.topic_defaults.access.publish.restricted);
	ck_assert_uint_eq(cfg.topic_defaults.access.publish.n_uids, 2);
	ck_assert_uint_eq(cfg.topic_defaults.access.publish.uids[1], 1001);
	ck_assert(!cfg.topic_defaults.access.subscribe.restricted);
	ck_assert(cfg.topic_defaults.access.admin.restricted);
	ck_assert_uint_eq(cfg.topic_defaults.access.admin.n_uids, 0);

	ck_assert_uint_eq(cfg.n_topics, 2);
	imu = &cfg.topics[0];
	ck_assert_str_eq(imu->name, "sensors/imu");
	ck_assert_uint_eq(imu->capacity, 4 * MIB);
	ck_assert_uint_eq(imu->max_message, MIB);
	ck_assert_int_eq(imu->mode, SB_CONFIG_BROADCAST);
	ck_assert_int_eq(imu->overflow, SB_CONFIG_OVERWRITE);
	ck_assert(imu->persistent);
	ck_assert_uint_eq(imu->linger_ms, 0);
	ck_assert_uint_eq(imu->max_stall_ms, 0);
	/* A topic's "access" replaces the defaults' whole. */
	ck_assert(!imu->access.publish.restricted);
	ck_assert(!imu->access.admin.restricted);
	ck_assert(imu->access.subscribe.restricted);
	ck_assert_uint_eq(imu->access.subscribe.n_gids, 1);
	ck_assert_uint_eq(imu->access.subscribe.gids[0], 20);
	ck_assert_uint_eq(imu->access.subscribe.n_uids, 0);

	/* A topic without fields inherits every default, access included. */
	jobs = &cfg.topics[1];
	ck_assert_str_eq(jobs->name, "jobs");
	ck_assert_uint_eq(jobs->capacity, 64 * KIB);
	ck_assert_uint_eq(jobs->max_message, 1024);
	ck_assert_int_eq(jobs->mode, SB_CONFIG_QUEUE);
	ck_assert_int_eq(jobs->overflow, SB_CONFIG_REJECT);
	ck_assert(!jobs->persistent);
	ck_assert_uint_eq(jobs->linger_ms, 500);
	ck_assert_uint_eq(jobs->max_stall_ms, 3000);
	ck_assert_uint_eq(jobs->access.publish.n_uids, 2);
	ck_assert_ptr_ne(jobs->access.publish.uids,
			 cfg.topic_defaults.access.publish.uids);
	ck_assert(jobs->access.admin.restricted);
	sb_config_free(&cfg);
}
END_TEST

START_TEST(origin_defaults_to_config)
{
	struct sb_config cfg;
	char err[128];

	ck_assert_int_eq(sb_config_parse("[]", 2, NULL, &cfg, err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "config: the top level must be an object (got an "
			      "array)");
	/* A NULL or zero-length error buffer is allowed. */
	ck_assert_int_eq(sb_config_parse("[]", 2, NULL, &cfg, NULL, 0),
			 -EINVAL);
	ck_assert_int_eq(sb_config_parse("[]", 2, NULL, &cfg, err, 0), -EINVAL);
}
END_TEST

START_TEST(bad_json_with_position)
{
	assert_refused("{\n  \"log_level\": \"info\",\n  oops\n}\n",
		       "shmbusd.json: invalid JSON at line 3, column 4 "
		       "(byte 28)");
	assert_refused("", "shmbusd.json: invalid JSON at line 1, column 1 "
			   "(byte 0)");
	assert_refused("{} {}", "shmbusd.json: invalid JSON at line 1, "
				"column 4 (byte 3): data after the top-level "
				"object");
	assert_refused("{\"log_level\": \"\xff\"}",
		       "shmbusd.json: invalid UTF-8 at line 1, column 16 "
		       "(byte 15)");
	assert_refused("{\"data_dir\": \"/a\\u0000b\"}",
		       "shmbusd.json: invalid JSON at line 1, column 17 "
		       "(byte 16)");
	assert_refused("\"x\"", "shmbusd.json: the top level must be an "
				"object (got \"x\")");
}
END_TEST

/* One wrong field at a time, each with its complete message. */
static const struct {
	const char *json;
	const char *message;
} wrong_fields[] = {
    {"{\"sockets\": {}}", "shmbusd.json: unknown field \"sockets\""},
    {"{\"log_level\": \"info\", \"log_level\": \"warn\"}",
     "shmbusd.json: duplicate field \"log_level\""},
    {"{\"socket\": []}", "shmbusd.json: socket: must be an object (got an "
			 "array)"},
    {"{\"socket\": {\"paht\": \"/x\"}}",
     "shmbusd.json: socket: unknown field \"paht\""},
    {"{\"socket\": {\"path\": \"run/s.sock\"}}",
     "shmbusd.json: socket.path: must be an absolute path (got "
     "\"run/s.sock\")"},
    {"{\"socket\": {\"path\": 7}}",
     "shmbusd.json: socket.path: must be an absolute path (got 7)"},
    {"{\"socket\": {\"path\": \"/"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}}",
     "shmbusd.json: socket.path: must be at most 107 bytes (the limit of "
     "a Unix socket address) (got 108)"},
    {"{\"socket\": {\"mode\": 600}}",
     "shmbusd.json: socket.mode: must be an octal string from \"0000\" to "
     "\"0777\", such as \"0700\" (got 600)"},
    {"{\"socket\": {\"dir_mode\": \"0800\"}}",
     "shmbusd.json: socket.dir_mode: must be an octal string from "
     "\"0000\" to \"0777\", such as \"0700\" (got \"0800\")"},
    {"{\"socket\": {\"dir_mode\": \"1777\"}}",
     "shmbusd.json: socket.dir_mode: must be an octal string from "
     "\"0000\" to \"0777\", such as \"0700\" (got \"1777\")"},
    {"{\"socket\": {\"dir_mode\": \"0777\"}}",
     "shmbusd.json: socket.dir_mode: must not let group or others write "
     "(got \"0777\"): they could replace the socket with their own. Use "
     "\"0755\": to reach the socket others need only search permission, "
     "and socket.mode says who may connect"},
    {"{\"socket\": {\"dir_mode\": \"0770\"}}",
     "shmbusd.json: socket.dir_mode: must not let group or others write "
     "(got \"0770\"): they could replace the socket with their own. Use "
     "\"0750\": to reach the socket others need only search permission, "
     "and socket.mode says who may connect"},
    {"{\"socket\": {\"dir_mode\": \"702\"}}",
     "shmbusd.json: socket.dir_mode: must not let group or others write "
     "(got \"0702\"): they could replace the socket with their own. Use "
     "\"0700\": to reach the socket others need only search permission, "
     "and socket.mode says who may connect"},
    {"{\"socket\": {\"mode\": \"\"}}",
     "shmbusd.json: socket.mode: must be an octal string from \"0000\" to "
     "\"0777\", such as \"0700\" (got \"\")"},
    {"{\"socket\": {\"group\": \"shmbus\"}}",
     "shmbusd.json: socket.group: must be an integer from 0 to 4294967294 "
     "(got \"shmbus\")"},
    {"{\"socket\": {\"group\": -1}}",
     "shmbusd.json: socket.group: must be an integer from 0 to 4294967294 "
     "(got -1)"},
    {"{\"socket\": {\"group\": 4294967295}}",
     "shmbusd.json: socket.group: must be an integer from 0 to 4294967294 "
     "(got 4294967295)"},
    {"{\"socket\": {\"group\": 27.5}}",
     "shmbusd.json: socket.group: must be an integer from 0 to 4294967294 "
     "(got 27.5)"},
    {"{\"data_dir\": \"var/lib\"}",
     "shmbusd.json: data_dir: must be an absolute path (got \"var/lib\")"},
    {"{\"persist_interval_ms\": 5}",
     "shmbusd.json: persist_interval_ms: must be an integer from 10 to "
     "3600000 (got 5)"},
    {"{\"persist_interval_ms\": \"1s\"}",
     "shmbusd.json: persist_interval_ms: must be an integer from 10 to "
     "3600000 (got \"1s\")"},
    {"{\"persist_sync\": 1}",
     "shmbusd.json: persist_sync: must be true or false (got 1)"},
    {"{\"log_level\": \"verbose\"}",
     "shmbusd.json: log_level: must be one of \"error\", \"warn\", "
     "\"info\", \"debug\" (got \"verbose\")"},
    {"{\"log_level\": 3}",
     "shmbusd.json: log_level: must be one of \"error\", \"warn\", "
     "\"info\", \"debug\" (got 3)"},
    {"{\"auto_create\": \"yes\"}",
     "shmbusd.json: auto_create: must be true or false (got \"yes\")"},
    {"{\"auto_create\": null}",
     "shmbusd.json: auto_create: must be true or false (got null)"},
    {"{\"limits\": 5}", "shmbusd.json: limits: must be an object (got 5)"},
    {"{\"limits\": {\"max_client\": 5}}",
     "shmbusd.json: limits: unknown field \"max_client\""},
    {"{\"limits\": {\"max_clients\": 0}}",
     "shmbusd.json: limits.max_clients: must be an integer from 1 to "
     "65536 (got 0)"},
    {"{\"limits\": {\"max_clients\": 2.5}}",
     "shmbusd.json: limits.max_clients: must be an integer from 1 to "
     "65536 (got 2.5)"},
    {"{\"limits\": {\"max_clients_per_uid\": 0}}",
     "shmbusd.json: limits.max_clients_per_uid: must be an integer from 1 "
     "to 65536 (got 0)"},
    {"{\"limits\": {\"max_clients_per_uid\": \"all\"}}",
     "shmbusd.json: limits.max_clients_per_uid: must be an integer from 1 "
     "to 65536 (got \"all\")"},
    {"{\"limits\": {\"max_clients\": 8, \"max_clients_per_uid\": 9}}",
     "shmbusd.json: limits.max_clients_per_uid: must be at most "
     "limits.max_clients = 8 (got 9)"},
    {"{\"limits\": {\"max_clients_per_uid\": 300}}",
     "shmbusd.json: limits.max_clients_per_uid: must be at most "
     "limits.max_clients = 256 (got 300, with max_clients at its default)"},
    {"{\"limits\": {\"max_topics\": \"10\"}}",
     "shmbusd.json: limits.max_topics: must be an integer from 1 to 65536 "
     "(got \"10\")"},
    {"{\"limits\": {\"max_requests_in_flight\": -1}}",
     "shmbusd.json: limits.max_requests_in_flight: must be an integer "
     "from 1 to 65536 (got -1)"},
    {"{\"limits\": {\"max_subscribers\": 1025}}",
     "shmbusd.json: limits.max_subscribers: must be an integer from 1 to "
     "1024 (got 1025)"},
    {"{\"limits\": {\"max_frame\": \"32MiB\"}}",
     "shmbusd.json: limits.max_frame: must be from 1KiB to 16MiB (got "
     "32MiB)"},
    {"{\"limits\": {\"max_frame\": 1023}}",
     "shmbusd.json: limits.max_frame: must be from 1KiB to 16MiB (got "
     "1023)"},
    {"{\"limits\": {\"max_frame\": \"1.5KiB\"}}",
     "shmbusd.json: limits.max_frame: must be a size such as 4096, "
     "\"64KiB\", \"1MiB\" or \"2GiB\" (got \"1.5KiB\")"},
    {"{\"limits\": {\"max_frame\": \"64KB\"}}",
     "shmbusd.json: limits.max_frame: KB, MB and GB are ambiguous: write "
     "KiB, MiB or GiB (got \"64KB\")"},
    {"{\"limits\": {\"max_frame\": -4096}}",
     "shmbusd.json: limits.max_frame: must be a size: a non-negative "
     "integer or a string such as \"64KiB\" (got -4096)"},
    {"{\"limits\": {\"max_frame\": true}}",
     "shmbusd.json: limits.max_frame: must be a size: a non-negative "
     "integer or a string such as \"64KiB\" (got true)"},
    {"{\"limits\": {\"max_ring_bytes\": \"99999999999999999999\"}}",
     "shmbusd.json: limits.max_ring_bytes: does not fit in 64 bits (got "
     "\"99999999999999999999\")"},
    {"{\"limits\": {\"max_ring_bytes\": \"17179869184GiB\"}}",
     "shmbusd.json: limits.max_ring_bytes: does not fit in 64 bits (got "
     "\"17179869184GiB\")"},
    {"{\"limits\": {\"max_ring_bytes\": 1e300}}",
     "shmbusd.json: limits.max_ring_bytes: does not fit in 64 bits (got "
     "1e+300)"},
    {"{\"limits\": {\"max_ring_bytes\": \"2TiB\"}}",
     "shmbusd.json: limits.max_ring_bytes: must be a size such as 4096, "
     "\"64KiB\", \"1MiB\" or \"2GiB\" (got \"2TiB\")"},
    {"{\"limits\": {\"max_ring_bytes\": \"128MiB\"}}",
     "shmbusd.json: limits.max_topic_bytes: must be at most "
     "limits.max_ring_bytes = 128MiB (got 256MiB, the default)"},
    {"{\"limits\": {\"max_ring_bytes\": \"128MiB\", \"max_topic_bytes\": "
     "\"256MiB\"}}",
     "shmbusd.json: limits.max_topic_bytes: must be at most "
     "limits.max_ring_bytes = 128MiB (got 256MiB)"},
    {"{\"limits\": {\"max_frame\": \"1MiB\"}}",
     "shmbusd.json: limits.max_pending_bytes: must be at least 2 * "
     "(limits.max_frame + 4) = 2097160 (got 1MiB, the default)"},
    {"{\"limits\": {\"max_message\": \"32KiB\"}}",
     "shmbusd.json: topic_defaults.max_message: must be at most "
     "limits.max_message = 32KiB (got 64KiB, the built-in default)"},
    {"{\"limits\": {\"max_topic_bytes\": \"512KiB\"}}",
     "shmbusd.json: topic_defaults.capacity: must be at most "
     "limits.max_topic_bytes = 512KiB (got 1MiB, the built-in default)"},
    {"{\"topic_defaults\": {\"name\": \"x\"}}",
     "shmbusd.json: topic_defaults: unknown field \"name\""},
    {"{\"topic_defaults\": {\"persistent\": true}}",
     "shmbusd.json: topic_defaults: unknown field \"persistent\""},
    {"{\"topic_defaults\": {\"capacity\": 5000}}",
     "shmbusd.json: topic_defaults.capacity: must be a power of two from "
     "4KiB to 1GiB (got 5000)"},
    {"{\"topic_defaults\": {\"capacity\": \"2KiB\"}}",
     "shmbusd.json: topic_defaults.capacity: must be a power of two from "
     "4KiB to 1GiB (got 2KiB)"},
    {"{\"topic_defaults\": {\"capacity\": \"2GiB\"}}",
     "shmbusd.json: topic_defaults.capacity: must be a power of two from "
     "4KiB to 1GiB (got 2GiB)"},
    {"{\"topic_defaults\": {\"capacity\": \"512MiB\"}}",
     "shmbusd.json: topic_defaults.capacity: must be at most "
     "limits.max_topic_bytes = 256MiB (got 512MiB)"},
    {"{\"topic_defaults\": {\"max_message\": 0}}",
     "shmbusd.json: topic_defaults.max_message: must be from 1 to "
     "capacity / 4 = 256KiB (got 0)"},
    {"{\"topic_defaults\": {\"capacity\": \"128KiB\"}}",
     "shmbusd.json: topic_defaults.max_message: must be from 1 to "
     "capacity / 4 = 32KiB (got 64KiB, the built-in default)"},
    {"{\"topic_defaults\": {\"mode\": \"fanout\"}}",
     "shmbusd.json: topic_defaults.mode: must be one of \"broadcast\", "
     "\"queue\" (got \"fanout\")"},
    {"{\"topic_defaults\": {\"linger_ms\": 86400001}}",
     "shmbusd.json: topic_defaults.linger_ms: must be an integer from 0 "
     "to 86400000 (got 86400001)"},
    {"{\"topic_defaults\": {\"max_stall_ms\": 86400001}}",
     "shmbusd.json: topic_defaults.max_stall_ms: must be an integer from 0 "
     "to 86400000 (got 86400001)"},
    {"{\"topics\": [{\"name\": \"a\", \"max_stall_ms\": -1}]}",
     "shmbusd.json: topics[0].max_stall_ms: must be an integer from 0 "
     "to 86400000 (got -1)"},
    {"{\"topics\": [{\"name\": \"a\", \"max_stall_ms\": \"1s\"}]}",
     "shmbusd.json: topics[0].max_stall_ms: must be an integer from 0 "
     "to 86400000 (got \"1s\")"},
    {"{\"topic_defaults\": {\"access\": {\"read\": {}}}}",
     "shmbusd.json: topic_defaults.access: unknown field \"read\""},
    {"{\"topic_defaults\": {\"access\": []}}",
     "shmbusd.json: topic_defaults.access: must be an object (got an "
     "array)"},
    {"{\"topic_defaults\": {\"access\": {\"admin\": true}}}",
     "shmbusd.json: topic_defaults.access.admin: must be an object (got "
     "true)"},
    {"{\"topic_defaults\": {\"access\": {\"admin\": {\"users\": []}}}}",
     "shmbusd.json: topic_defaults.access.admin: unknown field "
     "\"users\""},
    {"{\"topic_defaults\": {\"access\": {\"publish\": {\"uids\": 1000}}}}",
     "shmbusd.json: topic_defaults.access.publish.uids: must be an array "
     "of integers (got 1000)"},
    {"{\"topic_defaults\": {\"access\": {\"publish\": {\"gids\": [1, "
     "\"wheel\"]}}}}",
     "shmbusd.json: topic_defaults.access.publish.gids[1]: must be an "
     "integer from 0 to 4294967294 (got \"wheel\")"},
    {"{\"topic_defaults\": {\"access\": {\"publish\": {\"uids\": "
     "[4294967295]}}}}",
     "shmbusd.json: topic_defaults.access.publish.uids[0]: must be an "
     "integer from 0 to 4294967294 (got 4294967295)"},
    {"{\"topics\": {}}",
     "shmbusd.json: topics: must be an array of objects (got an object)"},
    {"{\"topics\": [\"imu\"]}",
     "shmbusd.json: topics[0]: must be an object (got \"imu\")"},
    {"{\"topics\": [{\"capacity\": 4096}]}",
     "shmbusd.json: topics[0]: missing field \"name\""},
    {"{\"topics\": [{\"name\": 5}]}",
     "shmbusd.json: topics[0].name: must be a string (got 5)"},
    {"{\"topics\": [{\"name\": \"a//b\"}]}",
     "shmbusd.json: topics[0].name: invalid topic name \"a//b\": has an "
     "empty segment"},
    {"{\"topics\": [{\"name\": \"a/../b\"}]}",
     "shmbusd.json: topics[0].name: invalid topic name \"a/../b\": has a "
     "\"..\" segment"},
    {"{\"topics\": [{\"name\": \"x\", \"colour\": \"red\"}]}",
     "shmbusd.json: topics[0]: unknown field \"colour\""},
    {"{\"topics\": [{\"name\": \"a\"}, {\"name\": \"b\"}, {\"name\": "
     "\"c\", \"overflow\": \"drop\"}]}",
     "shmbusd.json: topics[2].overflow: must be one of \"block\", "
     "\"overwrite\", \"reject\" (got \"drop\")"},
    {"{\"topics\": [{\"name\": \"imu\"}, {\"name\": \"b\"}, {\"name\": "
     "\"imu\"}]}",
     "shmbusd.json: topics[2].name: duplicate topic \"imu\" (also "
     "topics[0])"},
    {"{\"topics\": [{\"name\": \"a\", \"persistent\": 1}]}",
     "shmbusd.json: topics[0].persistent: must be true or false (got 1)"},
    {"{\"topics\": [{\"name\": \"a\", \"persistent\": true}]}",
     "shmbusd.json: topics[0].persistent: requires \"data_dir\" to be "
     "set"},
    {"{\"topics\": [{\"name\": \"a\", \"capacity\": \"4KiB\"}]}",
     "shmbusd.json: topics[0].max_message: must be from 1 to capacity / 4 "
     "= 1KiB (got 64KiB, inherited from topic_defaults)"},
    {"{\"topics\": [{\"name\": \"a\", \"max_message\": \"32MiB\", "
     "\"capacity\": \"256MiB\"}]}",
     "shmbusd.json: topics[0].max_message: must be at most "
     "limits.max_message = 16MiB (got 32MiB)"},
    {"{\"limits\": {\"max_topics\": 2}, \"topics\": [{\"name\": \"a\"}, "
     "{\"name\": \"b\"}, {\"name\": \"c\"}]}",
     "shmbusd.json: topics: 3 topics, more than limits.max_topics = 2"},
    {"{\"limits\": {\"max_ring_bytes\": \"1MiB\", \"max_topic_bytes\": "
     "\"1MiB\"}, \"topics\": [{\"name\": \"a\"}, {\"name\": \"b\"}]}",
     "shmbusd.json: topics: the topics need 2MiB of rings together, more "
     "than limits.max_ring_bytes = 1MiB"},
    /* Services: their own namespace, with their own rights. */
    {"{\"topic_defaults\": {\"access\": {\"serve\": {}}}}",
     "shmbusd.json: topic_defaults.access: unknown field \"serve\""},
    {"{\"services\": [{\"name\": \"a\", \"access\": {\"publish\": "
     "{}}}]}",
     "shmbusd.json: services[0].access: unknown field \"publish\""},
    {"{\"services\": [{\"access\": {}}]}",
     "shmbusd.json: services[0]: missing field \"name\""},
    {"{\"services\": [{\"name\": \"a//b\"}]}",
     "shmbusd.json: services[0].name: invalid service name \"a//b\": has "
     "an empty segment"},
    {"{\"services\": [{\"name\": \"a\"}, {\"name\": \"a\"}]}",
     "shmbusd.json: services[1]: duplicate service \"a\" (also "
     "services[0])"},
    {"{\"service_defaults\": {\"name\": \"a\"}}",
     "shmbusd.json: service_defaults: unknown field \"name\""},
    {"{\"service_defaults\": {\"capacity\": \"4KiB\"}}",
     "shmbusd.json: service_defaults.capacity: a channel's capacity must be "
     "a power of two from 4KiB to 1GiB and max_message 1 to a quarter of "
     "it (got 4096 and 65536)"},
    {"{\"services\": {}}",
     "shmbusd.json: services: must be an array of objects (got an object)"},
};

START_TEST(each_wrong_field_has_its_message)
{
	assert_refused(wrong_fields[_i].json, wrong_fields[_i].message);
}
END_TEST

/* "checksum": unset means on for persistent topics only; a value in
 * topic_defaults is inherited; a topic's own wins. */
START_TEST(checksum_setting)
{
	static const char json[] =
	    "{\"data_dir\": \"/var/lib/shmbus\",\n"
	    " \"topics\": [{\"name\": \"plain\"},\n"
	    "  {\"name\": \"kept\", \"persistent\": true},\n"
	    "  {\"name\": \"kept-fast\", \"persistent\": true,"
	    " \"checksum\": false},\n"
	    "  {\"name\": \"checked\", \"checksum\": true}]}";
	static const char json_defaults[] =
	    "{\"topic_defaults\": {\"checksum\": true},"
	    " \"topics\": [{\"name\": \"a\"},"
	    " {\"name\": \"b\", \"checksum\": false}]}";
	struct sb_config cfg;
	char err[256];

	sb_config_defaults(&cfg);
	ck_assert_int_eq(cfg.topic_defaults.checksum, SB_CONFIG_CHECKSUM_AUTO);
	ck_assert(!sb_config_topic_checksum(&cfg.topic_defaults));
	ck_assert_int_eq(parse(json, &cfg, err, sizeof(err)), 0);
	ck_assert(!sb_config_topic_checksum(&cfg.topics[0]));
	ck_assert(sb_config_topic_checksum(&cfg.topics[1]));
	ck_assert(!sb_config_topic_checksum(&cfg.topics[2]));
	ck_assert(sb_config_topic_checksum(&cfg.topics[3]));
	sb_config_free(&cfg);
	ck_assert_int_eq(parse(json_defaults, &cfg, err, sizeof(err)), 0);
	ck_assert(sb_config_topic_checksum(&cfg.topic_defaults));
	ck_assert(sb_config_topic_checksum(&cfg.topics[0]));
	ck_assert(!sb_config_topic_checksum(&cfg.topics[1]));
	sb_config_free(&cfg);
	assert_refused("{\"topics\": [{\"name\": \"a\", \"checksum\": 1}]}",
		       "shmbusd.json: topics[0].checksum: must be true or "
		       "false (got 1)");
	assert_refused("{\"topic_defaults\": {\"checksum\": \"yes\"}}",
		       "shmbusd.json: topic_defaults.checksum: must be true "
		       "or false (got \"yes\")");
}
END_TEST

/* "metadata": off unless set; inherited from topic_defaults; a topic's
 * own wins; only true or false. */
START_TEST(metadata_setting)
{
	static const char json[] = "{\"topic_defaults\": {\"metadata\": true},"
				   " \"topics\": [{\"name\": \"a\"},"
				   " {\"name\": \"b\", \"metadata\": false}]}";
	struct sb_config cfg;
	char err[256];

	sb_config_defaults(&cfg);
	ck_assert(!cfg.topic_defaults.metadata);
	ck_assert_int_eq(parse(json, &cfg, err, sizeof(err)), 0);
	ck_assert(cfg.topic_defaults.metadata);
	ck_assert(cfg.topics[0].metadata);
	ck_assert(!cfg.topics[1].metadata);
	sb_config_free(&cfg);
	assert_refused("{\"topics\": [{\"name\": \"a\", \"metadata\": 1}]}",
		       "shmbusd.json: topics[0].metadata: must be true or "
		       "false (got 1)");
}
END_TEST

START_TEST(geometry_rule)
{
	struct sb_config cfg;
	const char *field = NULL;
	char why[160];

	sb_config_defaults(&cfg);
	ck_assert_int_eq(sb_config_check_geometry(4 * KIB, 1 * KIB, &cfg.limits,
						  &field, why, sizeof(why)),
			 0);
	ck_assert_int_eq(sb_config_check_geometry(256 * MIB, 16 * MIB,
						  &cfg.limits, &field, why,
						  sizeof(why)),
			 0);
	ck_assert_int_eq(sb_config_check_geometry(3 * 4096, 1, &cfg.limits,
						  &field, why, sizeof(why)),
			 -EINVAL);
	ck_assert_str_eq(field, "capacity");
	ck_assert_str_eq(why, "must be a power of two from 4KiB to 1GiB (got "
			      "12KiB)");
	ck_assert_int_eq(
	    sb_config_check_geometry(0, 1, &cfg.limits, &field, NULL, 0),
	    -EINVAL);
	ck_assert_str_eq(field, "capacity");
	ck_assert_int_eq(sb_config_check_geometry(4 * KIB, 1 * KIB + 1,
						  &cfg.limits, &field, why,
						  sizeof(why)),
			 -EINVAL);
	ck_assert_str_eq(field, "max_message");
	ck_assert_str_eq(why, "must be from 1 to capacity / 4 = 1KiB (got "
			      "1025)");
}
END_TEST

START_TEST(access_rules)
{
	static const uint32_t staff[] = {50, 100};
	struct sb_config cfg;
	const struct sb_config_access *a;
	char err[256];

	ck_assert_int_eq(
	    parse("{\"topic_defaults\": {\"access\": {"
		  "\"publish\": {\"uids\": [1000], \"gids\": [50]},"
		  "\"admin\": {}}}}",
		  &cfg, err, sizeof(err)),
	    0);
	a = &cfg.topic_defaults.access;
	/* Absent rule: anyone. */
	ck_assert(sb_config_rule_allows(&a->subscribe, 4242, NULL, 0));
	/* Empty rule: root only. */
	ck_assert(sb_config_rule_allows(&a->admin, 0, NULL, 0));
	ck_assert(!sb_config_rule_allows(&a->admin, 1000, staff, 2));
	/* Listed uid, or membership of a listed group (any of the peer's). */
	ck_assert(sb_config_rule_allows(&a->publish, 1000, NULL, 0));
	ck_assert(sb_config_rule_allows(&a->publish, 1001, staff, 2));
	ck_assert(!sb_config_rule_allows(&a->publish, 1001, staff + 1, 1));
	sb_config_free(&cfg);
}
END_TEST

START_TEST(service_settings_and_rules)
{
	struct sb_config cfg;
	const struct sb_config_service *s;
	char err[256];

	ck_assert_int_eq(
	    parse("{\"service_defaults\": {\"capacity\": \"1MiB\", "
		  "\"access\": {\"request\": {\"uids\": [7]}}},"
		  " \"services\": [{\"name\": \"calc/add\", "
		  "\"max_message\": 100, \"access\": {\"serve\": {}}},"
		  " {\"name\": \"calc/mul\"}]}",
		  &cfg, err, sizeof(err)),
	    0);
	ck_assert_uint_eq(cfg.service_defaults.capacity, 1 * MIB);
	ck_assert_uint_eq(cfg.service_defaults.max_message, 64 * KIB);
	ck_assert_uint_eq(cfg.n_services, 2);
	s = &cfg.services[0];
	ck_assert_str_eq(s->name, "calc/add");
	ck_assert_uint_eq(s->capacity, 1 * MIB); /* inherited */
	ck_assert_uint_eq(s->max_message, 100);
	/* Its own access replaces the default whole. */
	ck_assert(!sb_config_rule_allows(&s->access.serve, 7, NULL, 0));
	ck_assert(sb_config_rule_allows(&s->access.request, 8, NULL, 0));
	s = &cfg.services[1];
	ck_assert(sb_config_rule_allows(&s->access.request, 7, NULL, 0));
	ck_assert(!sb_config_rule_allows(&s->access.request, 8, NULL, 0));
	ck_assert(sb_config_rule_allows(&s->access.serve, 8, NULL, 0));
	sb_config_free(&cfg);
}
END_TEST

/* Writes `len` bytes of `data` to a new file `name` in `dir`. */
static char *write_file(const char *dir, const char *name, const char *data,
			size_t len)
{
	char *path;

	ck_assert_int_gt(asprintf(&path, "%s/%s", dir, name), 0);
	ck_assert_int_eq(sbt_write_file(path, data, len), 0);
	return path;
}

START_TEST(load_valid_file)
{
	char *dir = sbt_tempdir();
	char *path = write_file(dir, "ok.json", full_file, strlen(full_file));
	struct sb_config cfg;
	char err[256];

	ck_assert_int_eq(sb_config_load_file(path, &cfg, err, sizeof(err)), 0);
	ck_assert_str_eq(err, "");
	ck_assert_uint_eq(cfg.n_topics, 2);
	sb_config_free(&cfg);
	free(path);

	/* Messages from a file name the file. */
	path = write_file(dir, "bad.json", "{\"log_level\": 1}", 16);
	ck_assert_int_eq(sb_config_load_file(path, &cfg, err, sizeof(err)),
			 -EINVAL);
	ck_assert_ptr_eq(strstr(err, path), err);
	ck_assert_ptr_nonnull(strstr(err, ": log_level: must be one of"));
	free(path);
	sbt_rmtree(dir);
}
END_TEST

START_TEST(load_missing_file)
{
	struct sb_config cfg;
	char err[256];

	ck_assert_int_eq(sb_config_load_file("/nonexistent/shmbusd.json", &cfg,
					     err, sizeof(err)),
			 -ENOENT);
	ck_assert_str_eq(err, "/nonexistent/shmbusd.json: cannot open: No "
			      "such file or directory");
}
END_TEST

START_TEST(load_directory)
{
	char *dir = sbt_tempdir();
	struct sb_config cfg;
	char err[256], expect[300];

	ck_assert_int_eq(sb_config_load_file(dir, &cfg, err, sizeof(err)),
			 -EISDIR);
	snprintf(expect, sizeof(expect), "%s: is a directory", dir);
	ck_assert_str_eq(err, expect);
	sbt_rmtree(dir);
}
END_TEST

/*
 * An unreadable file. Root reads any file, so when the suite runs as root
 * a child process drops to an unprivileged user first.
 */
START_TEST(load_unreadable_file)
{
	char *dir = sbt_tempdir();
	char *path = write_file(dir, "secret.json", "{}", 2);
	pid_t pid;

	ck_assert_int_eq(chmod(path, 0), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct sb_config cfg;
		char err[256], expect[300];
		int r;

		if (geteuid() == 0) {
			const struct passwd *pw = getpwnam("nobody");
			uid_t uid = pw != NULL ? pw->pw_uid : 65534;

			/* The child must reach the file through the
			 * directory as that user too. */
			if (chmod(dir, 0755) != 0 || setgid(uid) != 0 ||
			    setuid(uid) != 0) {
				_exit(2);
			}
		}
		r = sb_config_load_file(path, &cfg, err, sizeof(err));
		snprintf(expect, sizeof(expect),
			 "%s: cannot open: Permission denied", path);
		_exit(r == -EACCES && strcmp(err, expect) == 0 ? 0 : 1);
	}
	ck_assert_int_eq(sbt_wait(pid), 0);
	free(path);
	sbt_rmtree(dir);
}
END_TEST

START_TEST(load_too_large_file)
{
	char *dir = sbt_tempdir();
	char *data = malloc(SB_CONFIG_FILE_MAX + 1);
	char *path;
	struct sb_config cfg;
	char err[256], expect[300];

	ck_assert_ptr_nonnull(data);
	/* Exactly the limit: a valid object padded with spaces is read. */
	memset(data, ' ', SB_CONFIG_FILE_MAX + 1);
	data[0] = '{';
	data[SB_CONFIG_FILE_MAX - 1] = '}';
	path = write_file(dir, "max.json", data, SB_CONFIG_FILE_MAX);
	ck_assert_int_eq(sb_config_load_file(path, &cfg, err, sizeof(err)), 0);
	sb_config_free(&cfg);
	free(path);

	/* One byte more is refused before it is parsed. */
	path = write_file(dir, "big.json", data, SB_CONFIG_FILE_MAX + 1);
	ck_assert_int_eq(sb_config_load_file(path, &cfg, err, sizeof(err)),
			 -EFBIG);
	snprintf(expect, sizeof(expect),
		 "%s: is larger than 1048576 bytes (1MiB)", path);
	ck_assert_str_eq(err, expect);
	free(path);
	free(data);
	sbt_rmtree(dir);
}
END_TEST

/* The example in docs/config.md is a valid file: the docs cannot drift
 * from the parser unnoticed. The runner starts in the source tree. */
START_TEST(documented_example_parses)
{
	struct sb_config cfg;
	char err[512], *doc, *start, *end;
	FILE *f = fopen("docs/config.md", "r");
	size_t n;

	ck_assert_ptr_nonnull(f);
	doc = calloc(1, 65536);
	ck_assert_ptr_nonnull(doc);
	n = fread(doc, 1, 65535, f);
	fclose(f);
	ck_assert_uint_gt(n, 0);
	start = strstr(doc, "```json\n");
	ck_assert_ptr_nonnull(start);
	start += strlen("```json\n");
	end = strstr(start, "```");
	ck_assert_ptr_nonnull(end);
	ck_assert_int_eq(sb_config_parse(start, (size_t)(end - start),
					 "docs/config.md", &cfg, err,
					 sizeof(err)),
			 0);
	ck_assert_uint_eq(cfg.n_topics, 2);
	ck_assert_uint_eq(cfg.topics[0].max_message, 4096);
	ck_assert(cfg.topics[1].access.admin.restricted);
	ck_assert_uint_eq(cfg.topics[1].access.admin.n_uids, 0);
	sb_config_free(&cfg);
	free(doc);
}
END_TEST

/* The example config that `make install` ships must stay valid. */
START_TEST(shipped_example_config_is_valid)
{
	struct sb_config cfg;
	char err[512] = "";
	int r = sb_config_load_file("dist/shmbusd.example.json", &cfg, err,
				    sizeof(err));

	ck_assert_msg(r == 0, "dist/shmbusd.example.json: %s", err);
	ck_assert_uint_eq(cfg.n_topics, 2);
	ck_assert_str_eq(cfg.topics[0].name, "sensors/imu");
	sb_config_free(&cfg);
}
END_TEST

Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("valid");
	tcase_add_test(tc, defaults_without_a_file);
	tcase_add_test(tc, full_valid_file);
	tcase_add_test(tc, access_rules);
	tcase_add_test(tc, service_settings_and_rules);
	tcase_add_test(tc, documented_example_parses);
	tcase_add_test(tc, checksum_setting);
	tcase_add_test(tc, metadata_setting);
	suite_add_tcase(s, tc);

	tc = tcase_create("invalid");
	tcase_add_test(tc, origin_defaults_to_config);
	tcase_add_test(tc, bad_json_with_position);
	tcase_add_loop_test(
	    tc, each_wrong_field_has_its_message, 0,
	    (int)(sizeof(wrong_fields) / sizeof(wrong_fields[0])));
	suite_add_tcase(s, tc);

	tc = tcase_create("sizes");
	tcase_add_test(tc, geometry_rule);
	suite_add_tcase(s, tc);

	tc = tcase_create("file");
	tcase_add_test(tc, shipped_example_config_is_valid);
	tcase_add_test(tc, load_valid_file);
	tcase_add_test(tc, load_missing_file);
	tcase_add_test(tc, load_directory);
	tcase_add_test(tc, load_unreadable_file);
	tcase_add_test(tc, load_too_large_file);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}
