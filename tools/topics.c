/*
 * topics.c - `shmbus ls`, `shmbus create`, `shmbus rm` and `shmbus evict`:
 * list the broker's topics, create one with chosen settings, remove one,
 * remove a subscriber from one. They talk
 * to the broker with raw requests (sb_client_call) rather than the public
 * API so that the broker's own explanation of a refusal ("field
 * \"capacity\" must be a power of two") reaches the user.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "client/request.h"
#include "wire/message.h"
#include "wire/names.h"
#include "wire/size.h"
#include "tools/cli.h"

const char sb_cli_ls_usage[] =
    "usage: shmbus ls [--json] [--socket PATH]\n"
    "\n"
    "Lists the broker's topics, sorted by name: mode, overflow policy, "
    "ring\n"
    "capacity, largest message (MAX_MSG), bytes held now (USED) and as a "
    "share\n"
    "of the capacity (FILL; - for a broadcast topic without subscribers, "
    "which\n"
    "keeps nothing for anyone), publishers and subscribers attached, "
    "messages\n"
    "published since the topic was created. Any number of topics: the "
    "list is\n"
    "fetched from the broker page by page.\n"
    "\n"
    "  --json          print the broker's topic_list result as JSON\n"
    "  --socket PATH   the broker's socket\n"
    "  --help          this text\n";

const char sb_cli_create_usage[] =
    "usage: shmbus create [options] TOPIC\n"
    "\n"
    "Creates TOPIC explicitly: it stays until shmbus rm, even unused. "
    "Settings\n"
    "left out take the broker's topic_defaults.\n"
    "\n"
    "  --capacity SIZE     ring bytes, a power of two from 4KiB to 1GiB\n"
    "  --max-message SIZE  largest message, at most capacity / 4\n"
    "  --mode M            broadcast (every subscriber sees every "
    "message) or\n"
    "                      queue (each message goes to one subscriber)\n"
    "  --overflow P        when the ring is full: block (wait for the "
    "slowest\n"
    "                      reader), overwrite (drop the oldest), reject "
    "(fail)\n"
    "  --persistent        keep the ring in a file in the broker's "
    "data_dir\n"
    "  --metadata          each message carries its publish time and "
    "its\n"
    "                      publisher's id (16 bytes of max_message; sub "
    "-F %W %P)\n"
    "  --max-stall-ms MS   evict a subscriber whose position has not "
    "moved for\n"
    "                      MS milliseconds while it had messages to read "
    "(0: never)\n"
    "  --socket PATH       the broker's socket\n"
    "  --help              this text\n"
    "\n"
    "SIZE is a number of bytes with an optional unit: 4096, 64KiB, 1MiB, "
    "1GiB.\n";

const char sb_cli_evict_usage[] =
    "usage: shmbus evict [--socket PATH] TOPIC SLOT\n"
    "\n"
    "Removes the subscriber in slot SLOT of TOPIC (the SLOT column of "
    "shmbus stat),\n"
    "for a subscriber that stopped reading and holds publishers back. "
    "Its slot\n"
    "is freed at once and waiting publishers go on; the subscriber's next "
    "receive\n"
    "fails with \"subscriber evicted\" (EIDRM). Needs the topic's admin "
    "right.\n"
    "Exit status 2 when SLOT is not a slot of TOPIC, 4 when TOPIC does "
    "not exist\n"
    "or SLOT holds no subscriber, 5 without the admin right.\n"
    "\n"
    "  --socket PATH   the broker's socket\n"
    "  --help          this text\n";

const char sb_cli_rm_usage[] =
    "usage: shmbus rm [--socket PATH] TOPIC\n"
    "\n"
    "Removes the name TOPIC. Publishers and subscribers that have it open "
    "keep\n"
    "working until they close it; the memory goes with the last of them.\n"
    "Exit status 4 when there is no such topic.\n"
    "\n"
    "  --socket PATH   the broker's socket\n"
    "  --help          this text\n";

/* Parses the shared options, and --json when `json` is not NULL. Returns
 * -1 to go on, else the exit status. */
static int parse_simple(const char *cmd, int argc, char **argv,
			const char *usage, int *json)
{
	static const struct option with_json[] = {
	    {"json", no_argument, NULL, 'j'},
	    SB_CLI_COMMON_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	int done = -1, c;

	opterr = 0;
	while (done < 0 &&
	       (c = getopt_long(argc, argv, ":h",
				json != NULL ? with_json : with_json + 1,
				NULL)) != -1) {
		if (sb_cli_common_option(cmd, c, argv, usage, &done)) {
			continue;
		}
		if (c == 'j' && json != NULL) {
			*json = 1;
		}
	}
	return done;
}

/* ---- ls ---------------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a;
	const cJSON *y = *(const cJSON *const *)b;

	return strcmp(sb_cli_json_str(x, "name"), sb_cli_json_str(y, "name"));
}

/* Prints the table of `topics` (a JSON array of TOPIC_INFO). */
static int print_topics(const cJSON *topics)
{
	static const char *const header[] = {
	    "TOPIC", "MODE", "OVERFLOW", "CAPACITY", "MAX_MSG",
	    "USED",  "FILL", "PUBS",	 "SUBS",     "PUBLISHED"};
	int n = cJSON_GetArraySize(topics), i = 0;
	const cJSON **sorted = calloc((size_t)n + 1, sizeof(*sorted));
	struct sb_cli_table t;
	const cJSON *it;
	int r;

	if (sorted == NULL) {
		return sb_cli_fail(SB_EXIT_ERROR, "ls", "out of memory");
	}
	cJSON_ArrayForEach(it, topics)
	{
		if (cJSON_IsObject(it) && i < n) {
			sorted[i++] = it;
		}
	}
	qsort(sorted, (size_t)i, sizeof(*sorted), by_name);
	sb_cli_table_init(&t, 10);
	for (int c = 3; c < 10; c++) {
		t.right[c] = 1;
	}
	r = sb_cli_table_add(&t, header);
	for (int k = 0; r == 0 && k < i; k++) {
		const cJSON *o = sorted[k];
		uint64_t cap = sb_cli_json_u64(o, "capacity");
		uint64_t used = sb_cli_json_u64(o, "used_bytes");
		uint64_t nsubs = sb_cli_json_u64(o, "subscribers");
		char capacity[32], maxmsg[32], usedb[32], fill[16], pubs[24],
		    subs[24], published[24];
		const char *row[10] = {sb_cli_json_str(o, "name"),
				       sb_cli_json_str(o, "mode"),
				       sb_cli_json_str(o, "overflow"),
				       capacity,
				       maxmsg,
				       usedb,
				       fill,
				       pubs,
				       subs,
				       published};

		sb_size_format(cap, capacity, sizeof(capacity));
		sb_size_format(sb_cli_json_u64(o, "max_message"), maxmsg,
			       sizeof(maxmsg));
		sb_cli_human_size((double)used, usedb, sizeof(usedb));
		sb_cli_fill(row[1], nsubs, used, cap, fill, sizeof(fill));
		snprintf(pubs, sizeof(pubs), "%llu",
			 (unsigned long long)sb_cli_json_u64(o, "publishers"));
		snprintf(subs, sizeof(subs), "%llu", (unsigned long long)nsubs);
		snprintf(published, sizeof(published), "%llu",
			 (unsigned long long)sb_cli_json_u64(o, "published"));
		r = sb_cli_table_add(&t, row);
	}
	free(sorted);
	if (r < 0) {
		sb_cli_table_fini(&t);
		return sb_cli_fail(SB_EXIT_ERROR, "ls", "out of memory");
	}
	sb_cli_table_print(&t, stdout, 0);
	return 0;
}

int sb_cli_ls(int argc, char **argv)
{
	struct sb_client_reply rep;
	shmbus *bus = NULL;
	int json = 0;
	int status = parse_simple("ls", argc, argv, sb_cli_ls_usage, &json);
	const cJSON *topics;

	if (status >= 0) {
		return status;
	}
	if (optind < argc) {
		return sb_cli_fail(SB_EXIT_USAGE, "ls",
				   "unexpected argument \"%s\"", argv[optind]);
	}
	status = sb_cli_connect("ls", &bus);
	if (status != 0) {
		return status;
	}
	status = sb_cli_request_all("ls", bus, "topic_list", NULL, NULL,
				    sb_cli_list_arrays, &rep);
	if (status == 0) {
		topics =
		    cJSON_GetObjectItemCaseSensitive(rep.msg.result, "topics");
		if (!cJSON_IsArray(topics)) {
			status = sb_cli_fail(SB_EXIT_ERROR, "ls",
					     "the broker's reply has no "
					     "topics array");
		} else if (json) {
			status = sb_cli_print_json("ls", rep.msg.result);
		} else {
			status = print_topics(topics);
		}
	}
	sb_client_reply_fini(&rep);
	shmbus_close(bus);
	return status;
}

/* ---- create ------------------------------------------------------------ */

/* Adds a size to the request, refusing what JSON cannot carry exactly. */
static int add_size(cJSON *req, const char *field, const char *option,
		    uint64_t v)
{
	if (v > (uint64_t)SB_MSG_INT_MAX) {
		return sb_cli_fail(SB_EXIT_USAGE, "create", "%s is too large",
				   option);
	}
	if (sb_msg_add_int(req, field, (int64_t)v) == NULL) {
		return sb_cli_fail(SB_EXIT_ERROR, "create", "out of memory");
	}
	return 0;
}

/* Checks `value` against `allowed` (NULL-terminated) and adds it. */
static int add_choice(cJSON *req, const char *field, const char *value,
		      const char *const *allowed)
{
	for (int i = 0; allowed[i] != NULL; i++) {
		if (strcmp(value, allowed[i]) != 0) {
			continue;
		}
		if (cJSON_AddStringToObject(req, field, value) == NULL) {
			return sb_cli_fail(SB_EXIT_ERROR, "create",
					   "out of memory");
		}
		return 0;
	}
	return sb_cli_fail(SB_EXIT_USAGE, "create",
			   "--%s must be %s or %s%s%s (got \"%s\")", field,
			   allowed[0], allowed[1], allowed[2] ? " or " : "",
			   allowed[2] ? allowed[2] : "", value);
}

/* Reads create's options into `req`. Returns -1 to go on, else the exit
 * status. */
static int create_options(int argc, char **argv, cJSON *req)
{
	static const struct option options[] = {
	    {"capacity", required_argument, NULL, 'c'},
	    {"max-message", required_argument, NULL, 'm'},
	    {"mode", required_argument, NULL, 'M'},
	    {"overflow", required_argument, NULL, 'o'},
	    {"persistent", no_argument, NULL, 'p'},
	    {"metadata", no_argument, NULL, 'D'},
	    {"max-stall-ms", required_argument, NULL, 's'},
	    SB_CLI_COMMON_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	int done = -1, c;
	uint64_t v;

	opterr = 0;
	while (done < 0 &&
	       (c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		if (sb_cli_common_option("create", c, argv, sb_cli_create_usage,
					 &done)) {
			continue;
		}
		switch (c) {
		case 'c':
			done = sb_cli_parse_size("create", "--capacity", optarg,
						 &v);
			done = done != 0
				   ? done
				   : add_size(req, "capacity", "--capacity", v);
			break;
		case 'm':
			done = sb_cli_parse_size("create", "--max-message",
						 optarg, &v);
			done = done != 0 ? done
					 : add_size(req, "max_message",
						    "--max-message", v);
			break;
		case 'M':
			done = add_choice(req, "mode", optarg, sb_mode_names);
			break;
		case 'o':
			done = add_choice(req, "overflow", optarg,
					  sb_overflow_names);
			break;
		case 'p':
		case 'D':
			done = cJSON_AddTrueToObject(
				   req, c == 'p' ? "persistent" : "metadata") !=
				       NULL
				   ? 0
				   : sb_cli_fail(SB_EXIT_ERROR, "create",
						 "out of memory");
			break;
		case 's':
			done = sb_cli_parse_u64("create", "--max-stall-ms",
						optarg, 0, 86400000, &v);
			done = done != 0 ? done
					 : add_size(req, "max_stall_ms",
						    "--max-stall-ms", v);
			break;
		}
		done = done == 0 ? -1 : done;
	}
	return done;
}

int sb_cli_create(int argc, char **argv)
{
	struct sb_client_reply rep;
	cJSON *req = cJSON_CreateObject();
	const cJSON *info;
	const char *topic = NULL;
	shmbus *bus = NULL;
	char cap[32], maxm[32];
	int status;

	if (req == NULL) {
		return sb_cli_fail(SB_EXIT_ERROR, "create", "out of memory");
	}
	status = create_options(argc, argv, req);
	if (status >= 0) {
		cJSON_Delete(req);
		return status; /* --help, or a bad option */
	}
	status = sb_cli_one_topic("create", argc, argv, &topic);
	if (status == 0 &&
	    cJSON_AddStringToObject(req, "topic", topic) == NULL) {
		status = sb_cli_fail(SB_EXIT_ERROR, "create", "out of memory");
	}
	if (status == 0) {
		status = sb_cli_connect("create", &bus);
	}
	if (status != 0) {
		cJSON_Delete(req);
		return status;
	}
	status =
	    sb_cli_request("create", bus, "topic_create", topic, req, &rep);
	if (status == 0) {
		info =
		    cJSON_GetObjectItemCaseSensitive(rep.msg.result, "topic");
		printf("created topic \"%s\": %s, %s, capacity %s, max message "
		       "%s%s%s\n",
		       topic, sb_cli_json_str(info, "mode"),
		       sb_cli_json_str(info, "overflow"),
		       sb_size_format(sb_cli_json_u64(info, "capacity"), cap,
				      sizeof(cap)),
		       sb_size_format(sb_cli_json_u64(info, "max_message"),
				      maxm, sizeof(maxm)),
		       sb_cli_json_bool(info, "persistent") ? ", persistent"
							    : "",
		       sb_cli_json_bool(info, "metadata") ? ", metadata" : "");
	}
	sb_client_reply_fini(&rep);
	shmbus_close(bus);
	return status;
}

/* ---- rm ---------------------------------------------------------------- */

int sb_cli_rm(int argc, char **argv)
{
	struct sb_client_reply rep;
	shmbus *bus = NULL;
	const char *topic;
	cJSON *req;
	int status = parse_simple("rm", argc, argv, sb_cli_rm_usage, NULL);

	if (status >= 0) {
		return status;
	}
	status = sb_cli_one_topic("rm", argc, argv, &topic);
	if (status == 0) {
		status = sb_cli_connect("rm", &bus);
	}
	if (status != 0) {
		return status;
	}
	req = sb_client_topic_request(topic);
	if (req == NULL) {
		shmbus_close(bus);
		return sb_cli_fail(SB_EXIT_ERROR, "rm", "out of memory");
	}
	status = sb_cli_request("rm", bus, "topic_delete", topic, req, &rep);
	if (status == 0) {
		printf("removed topic \"%s\"\n", topic);
	}
	sb_client_reply_fini(&rep);
	shmbus_close(bus);
	return status;
}

/* ---- evict ------------------------------------------------------------- */

/* The sub_evict request for TOPIC SLOT, or the exit status. */
static int evict_request(int argc, char **argv, const char **topic, cJSON **req)
{
	uint64_t slot;
	int status;

	if (argc - optind != 2) {
		return sb_cli_fail(SB_EXIT_USAGE, "evict",
				   "TOPIC and SLOT expected (try 'shmbus "
				   "evict --help')");
	}
	*topic = argv[optind];
	status = sb_cli_check_topic("evict", *topic);
	if (status == 0) {
		status = sb_cli_parse_u64("evict", "SLOT", argv[optind + 1], 0,
					  UINT32_MAX, &slot);
	}
	if (status != 0) {
		return status;
	}
	*req = sb_client_topic_request(*topic);
	if (*req == NULL ||
	    sb_msg_add_int(*req, "slot", (int64_t)slot) == NULL) {
		cJSON_Delete(*req);
		*req = NULL;
		return sb_cli_fail(SB_EXIT_ERROR, "evict", "out of memory");
	}
	return 0;
}

int sb_cli_evict(int argc, char **argv)
{
	struct sb_client_reply rep;
	shmbus *bus = NULL;
	const char *topic = NULL;
	cJSON *req = NULL;
	int status =
	    parse_simple("evict", argc, argv, sb_cli_evict_usage, NULL);

	if (status >= 0) {
		return status;
	}
	status = evict_request(argc, argv, &topic, &req);
	if (status == 0) {
		status = sb_cli_connect("evict", &bus);
	}
	if (status != 0) {
		cJSON_Delete(req);
		return status;
	}
	status = sb_cli_request("evict", bus, "sub_evict", topic, req, &rep);
	if (status == 0) {
		printf(
		    "evicted the subscriber in slot %llu of topic \"%s\" "
		    "(pid %llu)\n",
		    (unsigned long long)sb_cli_json_u64(rep.msg.result, "slot"),
		    topic,
		    (unsigned long long)sb_cli_json_u64(rep.msg.result, "pid"));
	}
	sb_client_reply_fini(&rep);
	shmbus_close(bus);
	return status;
}
