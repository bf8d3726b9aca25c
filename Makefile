# shmbus build. `make` builds libshmbus (static and shared); `make test` runs
# every Check test twice, plain and under AddressSanitizer+UBSan; `make run`
# starts the broker. Objects go to build/<variant>/ so the two builds never mix.

VARIANT ?= plain
B := build/$(VARIANT)

CC ?= cc
PKGS := libcjson
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
UV_CFLAGS := $(shell pkg-config --cflags libuv 2>/dev/null)
UV_LIBS := $(shell pkg-config --libs libuv 2>/dev/null)
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wformat=2 -Wvla -Werror
CFLAGS_COMMON := -std=c11 -D_GNU_SOURCE $(WARN) -O2 -g -MMD -MP \
                 -fvisibility=hidden -fPIC -Iinclude -I. $(PKG_CFLAGS)
ifeq ($(VARIANT),asan)
SAN := -fsanitize=address,undefined -fno-sanitize-recover=all \
       -fno-omit-frame-pointer
else ifeq ($(VARIANT),tsan)
SAN := -fsanitize=thread -fno-omit-frame-pointer -Wno-tsan
endif
CFLAGS_ALL := $(CFLAGS_COMMON) $(SAN) $(CFLAGS)
LDFLAGS_ALL := $(SAN) $(LDFLAGS)
LIBS_SYS := -lpthread

LIB_SRCS := $(wildcard client/*.c proto/*.c)
CONFIG_SRCS := $(wildcard config/*.c)
DAEMON_SRCS := $(wildcard daemon/*.c)
TOOL_SRCS := $(wildcard tools/*.c)
TEST_SRCS := $(wildcard tests/*.c)
# bench/*.c make shmbus-bench, except the programs of their own (one file
# each, with their own main): bench/fanout_cost.c is build/<variant>/fanout-cost.
BENCH_PROG_SRCS := bench/fanout_cost.c
BENCH_SRCS := $(filter-out $(BENCH_PROG_SRCS),$(wildcard bench/*.c))
EXAMPLE_SRCS := $(wildcard examples/*.c)

LIB_OBJS := $(LIB_SRCS:%.c=$(B)/%.o)
CONFIG_OBJS := $(CONFIG_SRCS:%.c=$(B)/%.o)
DAEMON_OBJS := $(DAEMON_SRCS:%.c=$(B)/%.o)
TOOL_OBJS := $(TOOL_SRCS:%.c=$(B)/%.o)
TEST_OBJS := $(TEST_SRCS:%.c=$(B)/%.o)
BENCH_OBJS := $(BENCH_SRCS:%.c=$(B)/%.o)
# Each example is one program of one file; the uv_ ones also link libuv.
EXAMPLES := $(EXAMPLE_SRCS:%.c=$(B)/%)
UV_EXAMPLES := $(filter $(B)/examples/uv_%,$(EXAMPLES))

LIB_A := $(B)/libshmbus.a
LIB_SO := $(B)/libshmbus.so
CONFIG_A := $(B)/libsbconfig.a
CONFIG_LINK := $(if $(CONFIG_SRCS),$(CONFIG_A))
RUNNER := $(B)/tests/runner
SHMBUSD := $(B)/shmbusd
SHMBUS := $(B)/shmbus
BENCH := $(B)/shmbus-bench
FANOUT_COST := $(B)/fanout-cost

.PHONY: all lib examples test check-variant check-install run bench clean \
        deps format install

VERSION := 0.1.0
PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/shmbus
UNITDIR ?= $(PREFIX)/lib/systemd/system

all: lib $(if $(DAEMON_SRCS),$(SHMBUSD)) $(if $(TOOL_SRCS),$(SHMBUS)) \
     examples

lib: $(LIB_A) $(LIB_SO)

examples: $(EXAMPLES)

deps:
	@sh scripts/install-deps.sh

# The whole suite, twice: plain, then with AddressSanitizer and UBSan. Any
# failure, sanitizer report or leak makes the run (and so CI) fail. Then,
# once, the installation: what a user gets from `make install`.
test: deps
	$(MAKE) --no-print-directory VARIANT=plain check-variant
	$(MAKE) --no-print-directory VARIANT=asan check-variant
	$(MAKE) --no-print-directory VARIANT=plain check-install

# The examples are prerequisites so that both variants compile them.
check-variant: $(RUNNER) $(if $(DAEMON_SRCS),$(SHMBUSD)) \
               $(if $(TOOL_SRCS),$(SHMBUS)) $(EXAMPLES)
	SHMBUS_TEST_BINDIR=$(CURDIR)/$(B) \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allow_user_segv_handler=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	$(RUNNER)

# Installs into a temporary DESTDIR, builds examples against the installed
# files with pkg-config and runs them against the installed broker.
check-install:
	MAKE="$(MAKE)" sh tests/install_test.sh

run: deps $(SHMBUSD)
	$(SHMBUSD) --foreground $(ARGS)

# shmbus-bench starts the shmbusd next to it for its control-plane section;
# fanout-cost is what bench/instructions.sh runs under callgrind.
bench: deps $(BENCH) $(SHMBUSD) $(FANOUT_COST)
	@echo "built $(BENCH); run it with: $(BENCH) --help"

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) \
	      $(if $(filter daemon/% examples/uv_%,$<),$(UV_CFLAGS)) \
	      $(if $(filter tests/%,$<),$(CHECK_CFLAGS)) -c $< -o $@

$(LIB_A): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIB_SO): $(LIB_OBJS)
	$(CC) -shared -Wl,-soname,libshmbus.so.0 -Wl,-z,defs $(LDFLAGS_ALL) \
	      -o $@ $^ $(PKG_LIBS) $(LIBS_SYS)

# Installs what a user of the bus needs: headers, both libraries (the shared
# one under its soname), pkg-config data, the programs, man pages, an example
# config and a systemd unit. PREFIX and DESTDIR as usual.
install: all
	install -d $(DESTDIR)$(INCLUDEDIR)/shmbus $(DESTDIR)$(LIBDIR)/pkgconfig \
	           $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(DOCDIR) \
	           $(DESTDIR)$(UNITDIR)
	install -m 0644 include/shmbus/*.h $(DESTDIR)$(INCLUDEDIR)/shmbus/
	install -m 0644 $(LIB_A) $(DESTDIR)$(LIBDIR)/libshmbus.a
	install -m 0755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/libshmbus.so.$(VERSION)
	ln -sf libshmbus.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libshmbus.so.0
	ln -sf libshmbus.so.0 $(DESTDIR)$(LIBDIR)/libshmbus.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' dist/shmbus.pc.in \
	    > $(DESTDIR)$(LIBDIR)/pkgconfig/shmbus.pc
	sed -e 's|@SBINDIR@|$(SBINDIR)|' dist/shmbusd.service.in \
	    > $(DESTDIR)$(UNITDIR)/shmbusd.service
	install -m 0644 dist/shmbusd.example.json $(DESTDIR)$(DOCDIR)/
	$(if $(DAEMON_SRCS),install -m 0755 $(SHMBUSD) $(DESTDIR)$(SBINDIR)/)
	$(if $(TOOL_SRCS),install -m 0755 $(SHMBUS) $(DESTDIR)$(BINDIR)/)
	for page in $(wildcard man/*.[0-9]); do \
	    sect=$${page##*.}; install -d $(DESTDIR)$(MANDIR)/man$$sect; \
	    install -m 0644 $$page $(DESTDIR)$(MANDIR)/man$$sect/; done

$(CONFIG_A): $(CONFIG_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SHMBUSD): $(DAEMON_OBJS) $(CONFIG_LINK) $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $(DAEMON_OBJS) $(CONFIG_LINK) $(LIB_A) \
	      $(UV_LIBS) $(PKG_LIBS) $(LIBS_SYS)

$(SHMBUS): $(TOOL_OBJS) $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $(TOOL_OBJS) $(LIB_A) $(PKG_LIBS) $(LIBS_SYS)

$(RUNNER): $(TEST_OBJS) $(CONFIG_LINK) $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $(TEST_OBJS) $(CONFIG_LINK) $(LIB_A) \
	      $(CHECK_LIBS) $(PKG_LIBS) $(LIBS_SYS)

$(filter-out $(UV_EXAMPLES),$(EXAMPLES)): $(B)/examples/%: \
    $(B)/examples/%.o $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(LIB_A) $(PKG_LIBS) $(LIBS_SYS)

$(UV_EXAMPLES): $(B)/examples/%: $(B)/examples/%.o $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(LIB_A) $(UV_LIBS) $(PKG_LIBS) \
	      $(LIBS_SYS)

$(BENCH): $(BENCH_OBJS) $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $(BENCH_OBJS) $(LIB_A) $(PKG_LIBS) \
	      $(LIBS_SYS) -lm

$(FANOUT_COST): $(B)/bench/fanout_cost.o $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(LIB_A) $(PKG_LIBS) $(LIBS_SYS)

format:
	clang-format -i $(LIB_SRCS) $(CONFIG_SRCS) $(DAEMON_SRCS) $(TOOL_SRCS) \
	    $(TEST_SRCS) $(BENCH_SRCS) $(BENCH_PROG_SRCS) $(EXAMPLE_SRCS) \
	    $(wildcard include/shmbus/*.h */*.h)

clean:
	rm -rf build

-include $(shell find build/$(VARIANT) -name '*.d' 2>/dev/null)
