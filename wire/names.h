/*
 * names.h - the protocol's names of a topic's mode and overflow policy
 * ("broadcast", "queue"; "block", "overwrite", "reject"), with the one
 * numbering every part of shmbus uses for them: that of the public API
 * (SHMBUS_BROADCAST ... in include/shmbus/shmbus.h) and of the ring's
 * header (SB_RING_BROADCAST ... in ring/ring.h). client/bus.c, which sees
 * all three, checks that they agree, so converting between them is a cast. 0 is
 * no mode or policy (unset, or not a name).
 */
#ifndef SB_WIRE_NAMES_H
#define SB_WIRE_NAMES_H

enum sb_mode {
	SB_MODE_BROADCAST = 1, /* every subscriber sees every message */
	SB_MODE_QUEUE = 2,     /* each message goes to one subscriber */
};

enum sb_overflow {
	SB_OVERFLOW_BLOCK = 1,	   /* the writer waits for the slowest reader */
	SB_OVERFLOW_OVERWRITE = 2, /* slow readers lose the oldest messages */
	SB_OVERFLOW_REJECT = 3,	   /* publishing into a full ring fails */
};

/* Every name, in the order of their values and NULL-terminated, for
 * parsers that take a list and for messages that list the choices. */
extern const char *const sb_mode_names[];
extern const char *const sb_overflow_names[];

/* The name of a value, or NULL when it is none of them. */
const char *sb_mode_name(unsigned mode);
const char *sb_overflow_name(unsigned overflow);

/* The value of a name, or 0 when it is none of them (NULL included). */
enum sb_mode sb_mode_parse(const char *name);
enum sb_overflow sb_overflow_parse(const char *name);

#endif
