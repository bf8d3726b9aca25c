# shmbus build. `make` builds libshmbus (static and shared); `make test` runs
# every Check test twice, plain and under AddressSanitizer+UBSan, then the
# fuzz targets briefly (`make fuzz` runs them longer); `make run`
# starts the broker. Objects go to build/<variant>/ so the two builds never mix.

# Sub-makes (make test's variants, fuzz targets, installation) compile on
# every CPU unless the caller said how many jobs (-j). GNU make applies a -j
# set here to the makes it starts, not to itself.
ifeq ($(MAKELEVEL)$(filter -j%,$(MAKEFLAGS)),0)
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 1)
endif

VARIANT ?= plain
B := build/$(VARIANT)

CC ?= cc
PKGS := libcjson
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
UV_CFLAGS := $(shell pkg-config --cflags libuv 2>/dev/null)
UV_LIBS := $(shell pkg-config --libs libuv 2>/dev/null)
NATS_CFLAGS := $(shell pkg-config --cflags libnats 2>/dev/null)
NATS_LIBS := $(shell pkg-config --libs libnats 2>/dev/null)
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

# libshmbus, one folder per concern (docs/architecture.md): the platform
# layer, the topic ring, the control protocol's wire format, the client.
SYS_SRCS := $(wildcard sys/*.c)
RING_SRCS := $(wildcard ring/*.c)
WIRE_SRCS := $(wildcard wire/*.c)
CLIENT_SRCS := $(wildcard client/*.c)
LIB_SRCS := $(SYS_SRCS) $(RING_SRCS) $(WIRE_SRCS) $(CLIENT_SRCS)
CONFIG_SRCS := $(wildcard config/*.c)
DAEMON_SRCS := $(wildcard daemon/*.c)
TOOL_SRCS := $(wildcard tools/*.c)
BRIDGE_SRCS := $(wildcard bridge/*.c)
# The crash matrix is a program of its own (tests/check_crash.c runs it);
# the helpers in tests/support/ go into both it and the runner.
CRASH_SRC := tests/crash_matrix.c
TEST_SUPPORT_SRCS := $(wildcard tests/support/*.c)
TEST_SRCS := $(filter-out $(CRASH_SRC),$(wildcard tests/*.c)) \
             $(TEST_SUPPORT_SRCS)
# bench/*.c make shmbus-bench, except the programs of their own (one file
# each, with their own main): bench/fanout_cost.c is build/<variant>/fanout-cost,
# bench/bridge_bench.c build/<variant>/bridge-bench (it links cnats),
# bench/reqrep_bench.c build/<variant>/reqrep-bench.
BENCH_PROG_SRCS := bench/fanout_cost.c bench/spin_pair.c bench/bridge_bench.c \
                   bench/reqrep_bench.c
BENCH_SRCS := $(filter-out $(BENCH_PROG_SRCS),$(wildcard bench/*.c))
EXAMPLE_SRCS := $(wildcard examples/*.c)

LIB_OBJS := $(LIB_SRCS:%.c=$(B)/%.o)
CONFIG_OBJS := $(CONFIG_SRCS:%.c=$(B)/%.o)
DAEMON_OBJS := $(DAEMON_SRCS:%.c=$(B)/%.o)
TOOL_OBJS := $(TOOL_SRCS:%.c=$(B)/%.o)
BRIDGE_OBJS := $(BRIDGE_SRCS:%.c=$(B)/%.o)
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
BRIDGE := $(B)/shmbus-bridge
BENCH := $(B)/shmbus-bench
CRASH := $(B)/crash-matrix
CRASH_OBJS := $(B)/tests/crash_matrix.o \
              $(TEST_SUPPORT_SRCS:%.c=$(B)/%.o)
SOAK_ROUNDS ?= 2000
FANOUT_COST := $(B)/fanout-cost
SPIN_PAIR := $(B)/spin-pair
BRIDGE_BENCH := $(B)/bridge-bench
REQREP_BENCH := $(B)/reqrep-bench

.PHONY: all lib examples test check-variant check-install python-test run bench \
        bench-smoke \
        clean deps format install soak fuzz fuzz-short fuzz-build fuzz-deps \
        fuzz-seeds fuzz-seeds-check format-check format-deps

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
# The interpreter the Python binding is tested with: Debian's.
PYTHON ?= /usr/bin/python3
# The Python package (python/shmbus) goes where Debian's python3 looks:
# /usr/lib/python3/dist-packages for PREFIX=/usr, and for any other PREFIX
# (/usr/local above all) PREFIX/lib/python3.X/dist-packages, X being
# $(PYTHON)'s minor version; without that interpreter, python3 alone.
ifeq ($(origin PYTHONDIR),undefined)
ifeq ($(PREFIX),/usr)
PYTHONDIR := /usr/lib/python3/dist-packages
else
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
PYTHONDIR := $(PREFIX)/lib/python$(or $(PYTHON_VERSION),3)/dist-packages
endif
endif

all: lib $(if $(DAEMON_SRCS),$(SHMBUSD)) $(if $(TOOL_SRCS),$(SHMBUS)) \
     $(if $(BRIDGE_SRCS),$(BRIDGE)) examples

lib: $(LIB_A) $(LIB_SO)

examples: $(EXAMPLES)

deps:
	@sh scripts/install-deps.sh

# First the arrows between folders (scripts/check-deps.sh) and the format
# (clang-format, .clang-format). Then the whole
# suite, twice: plain, then with AddressSanitizer and UBSan. Any failure,
# sanitizer report or leak makes the run (and so CI) fail. Then a
# 10-second run of each fuzz target (docs/fuzzing.md) and a check of the
# seed generator, once the installation (what a user gets from `make
# install`), and the benchmark's smoke check: every transport moves its
# messages intact (no figure is looked at; the timed runs stay outside the
# tests). The Python binding's suite (python-test) runs after the plain
# pass.
test: deps
	sh scripts/check-deps.sh
	$(MAKE) --no-print-directory format-check
	$(MAKE) --no-print-directory VARIANT=plain check-variant
	$(MAKE) --no-print-directory python-test
	$(MAKE) --no-print-directory VARIANT=asan check-variant
	$(MAKE) --no-print-directory fuzz-short
	$(MAKE) --no-print-directory fuzz-seeds-check
	$(MAKE) --no-print-directory VARIANT=plain check-install
	$(MAKE) --no-print-directory VARIANT=plain bench-smoke

bench-smoke: bench
	sh bench/smoke.sh

# The examples are prerequisites so that both variants compile them.
check-variant: $(RUNNER) $(if $(DAEMON_SRCS),$(SHMBUSD)) \
               $(if $(TOOL_SRCS),$(SHMBUS)) $(if $(BRIDGE_SRCS),$(BRIDGE)) \
               $(EXAMPLES) $(CRASH)
	SHMBUS_TEST_BINDIR=$(CURDIR)/$(B) \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allow_user_segv_handler=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	$(RUNNER)

# The Python binding (python/shmbus) with pytest under Debian's python3,
# against the plain build of the library, broker and command line (the
# tests start their own brokers; python/README.md).
python-test:
	$(MAKE) --no-print-directory VARIANT=plain all
	SHMBUS_TEST_BINDIR=$(CURDIR)/build/plain $(PYTHON) -m pytest -q \
	    -p no:cacheprovider python/tests

# Installs into a temporary DESTDIR, builds examples against the installed
# files with pkg-config and runs them against the installed broker.
check-install:
	MAKE="$(MAKE)" sh tests/install_test.sh

# The crash matrix with many kills per scenario (outside CI): plain build,
# SOAK_ROUNDS kills of each data-path kind, a tenth as many broker kills.
soak: deps $(SHMBUSD) $(CRASH)
	SHMBUS_TEST_BINDIR=$(CURDIR)/$(B) $(CRASH) --rounds $(SOAK_ROUNDS)

run: deps $(SHMBUSD)
	$(SHMBUSD) --foreground $(ARGS)

# shmbus-bench starts the shmbusd next to it for its control-plane section;
# fanout-cost is what bench/instructions.sh runs under callgrind;
# bridge-bench runs the shmbusd and shmbus-bridge next to it; reqrep-bench
# the shmbusd.
bench: deps $(BENCH) $(SHMBUSD) $(FANOUT_COST) $(SPIN_PAIR) $(REQREP_BENCH) \
       $(if $(BRIDGE_SRCS),$(BRIDGE) $(BRIDGE_BENCH))
	@echo "built $(BENCH); run it with: $(BENCH) --help"

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) \
	      $(if $(filter daemon/% examples/uv_%,$<),$(UV_CFLAGS)) \
	      $(if $(filter bridge/% tests/% bench/bridge_bench.c,$<),$(NATS_CFLAGS)) \
	      $(if $(filter tests/%,$<),$(CHECK_CFLAGS)) -c $< -o $@

$(LIB_A): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIB_SO): $(LIB_OBJS)
	$(CC) -shared -Wl,-soname,libshmbus.so.0 -Wl,-z,defs $(LDFLAGS_ALL) \
	      -o $@ $^ $(PKG_LIBS) $(LIBS_SYS)

# Installs what a user of the bus needs: headers, both libraries (the shared
# one under its soname), pkg-config data, the programs, man pages, the
# documents they name (INSTALL_DOCS), an example config, a systemd unit and
# the sysusers.d entry of the user it runs as, and the Python package in
# PYTHONDIR with where the library went (_installed.py: LIBDIR, and LIBDIR
# relative to the package, which a staged copy finds too). PREFIX and
# DESTDIR as usual.
INSTALL_DOCS := docs/config.md docs/operations.md docs/protocol.md docs/bridge.md
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d

install: all
	install -d $(DESTDIR)$(INCLUDEDIR)/shmbus $(DESTDIR)$(LIBDIR)/pkgconfig \
	           $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(DOCDIR) \
	           $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR)
	install -m 0644 include/shmbus/*.h $(DESTDIR)$(INCLUDEDIR)/shmbus/
	install -m 0644 $(LIB_A) $(DESTDIR)$(LIBDIR)/libshmbus.a
	install -m 0755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/libshmbus.so.$(VERSION)
	ln -sf libshmbus.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libshmbus.so.0
	ln -sf libshmbus.so.0 $(DESTDIR)$(LIBDIR)/libshmbus.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' dist/shmbus.pc.in \
	    > $(DESTDIR)$(LIBDIR)/pkgconfig/shmbus.pc
	sed -e 's|@SBINDIR@|$(SBINDIR)|' -e 's|@DOCDIR@|$(DOCDIR)|' \
	    dist/shmbusd.service.in > $(DESTDIR)$(UNITDIR)/shmbusd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/shmbusd.service
	sed -e 's|@BINDIR@|$(BINDIR)|' -e 's|@DOCDIR@|$(DOCDIR)|' \
	    dist/shmbus-bridge.service.in \
	    > $(DESTDIR)$(UNITDIR)/shmbus-bridge.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/shmbus-bridge.service
	install -m 0644 dist/shmbus.sysusers $(DESTDIR)$(SYSUSERSDIR)/shmbus.conf
	install -m 0644 dist/shmbusd.example.json \
	    dist/shmbus-bridge.example.json $(INSTALL_DOCS) \
	    $(DESTDIR)$(DOCDIR)/
	$(if $(DAEMON_SRCS),install -m 0755 $(SHMBUSD) $(DESTDIR)$(SBINDIR)/)
	$(if $(TOOL_SRCS),install -m 0755 $(SHMBUS) $(DESTDIR)$(BINDIR)/)
	$(if $(BRIDGE_SRCS),install -m 0755 $(BRIDGE) $(DESTDIR)$(BINDIR)/)
	for page in $(wildcard man/*.[0-9]); do \
	    sect=$${page##*.}; install -d $(DESTDIR)$(MANDIR)/man$$sect; \
	    install -m 0644 $$page $(DESTDIR)$(MANDIR)/man$$sect/; done
	install -d $(DESTDIR)$(PYTHONDIR)/shmbus
	install -m 0644 $(filter-out %/_installed.py,$(wildcard python/shmbus/*.py)) \
	    python/shmbus/py.typed $(DESTDIR)$(PYTHONDIR)/shmbus/
	rel=$$(realpath -m --relative-to='$(PYTHONDIR)/shmbus' '$(LIBDIR)') && \
	printf '%s\n' '"""Written by make install: where libshmbus went."""' \
	    'LIBDIR = "$(LIBDIR)"' "LIBDIR_RELATIVE = \"$$rel\"" \
	    > $(DESTDIR)$(PYTHONDIR)/shmbus/_installed.py
	chmod 0644 $(DESTDIR)$(PYTHONDIR)/shmbus/_installed.py

$(CONFIG_A): $(CONFIG_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SHMBUSD): $(DAEMON_OBJS) $(CONFIG_LINK) $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $(DAEMON_OBJS) $(CONFIG_LINK) $(LIB_A) \
	      $(UV_LIBS) $(PKG_LIBS) $(LIBS_SYS)

$(SHMBUS): $(TOOL_OBJS) $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $(TOOL_OBJS) $(LIB_A) $(PKG_LIBS) $(LIBS_SYS)

$(BRIDGE): $(BRIDGE_OBJS) $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $(BRIDGE_OBJS) $(LIB_A) $(NATS_LIBS) \
	      $(PKG_LIBS) $(LIBS_SYS)

$(RUNNER): $(TEST_OBJS) $(CONFIG_LINK) $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $(TEST_OBJS) $(CONFIG_LINK) $(LIB_A) \
	      $(CHECK_LIBS) $(NATS_LIBS) $(PKG_LIBS) $(LIBS_SYS)

$(CRASH): $(CRASH_OBJS) $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $(CRASH_OBJS) $(LIB_A) $(CHECK_LIBS) \
	      $(PKG_LIBS) $(LIBS_SYS)

$(filter-out $(UV_EXAMPLES),$(EXAMPLES)): $(B)/examples/%: \
    $(B)/examples/%.o $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(LIB_A) $(PKG_LIBS) $(LIBS_SYS)

$(UV_EXAMPLES): $(B)/examples/%: $(B)/examples/%.o $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(LIB_A) $(UV_LIBS) $(PKG_LIBS) \
	      $(LIBS_SYS)

$(BENCH): $(BENCH_OBJS) $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $(BENCH_OBJS) $(LIB_A) $(PKG_LIBS) \
	      $(LIBS_SYS) -lm

# ---- fuzzing (docs/fuzzing.md) ----------------------------------------
# libFuzzer targets in fuzz/, built by clang with ASan and UBSan into
# build/fuzz/ (their own tree: the instrumentation differs from every
# variant's). `make fuzz` runs each for FUZZ_SECONDS from a scratch copy of
# fuzz/corpus/<target>/; `make fuzz-short` is the 10-second run `make test`
# does. Each target is TARGET:MAX_LEN (ring_attach: two segments, 12288
# bytes, plus a script of up to 65).
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_B := build/fuzz
FUZZ_TARGETS := frame_message:8192 ring_attach:12353 config:8192 \
                chan_read:4112
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all \
            -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -O1 -g -MMD -MP -Iinclude -I. \
               $(PKG_CFLAGS) $(FUZZ_SAN)
# The code under test gets coverage instrumentation without libFuzzer's
# main; only the final link adds it.
FUZZ_LIB_SRCS := $(SYS_SRCS) $(RING_SRCS) $(WIRE_SRCS) $(CONFIG_SRCS)
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:%.c=$(FUZZ_B)/obj/%.o)
FUZZ_BINS := $(foreach t,$(FUZZ_TARGETS),$(FUZZ_B)/$(firstword $(subst :, ,$(t))))

fuzz-deps:
	@sh scripts/install-deps.sh fuzz

fuzz-build: fuzz-deps
	$(MAKE) --no-print-directory $(FUZZ_BINS)

fuzz: fuzz-build
	sh scripts/fuzz.sh $(FUZZ_B) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-short: fuzz-build
	sh scripts/fuzz.sh $(FUZZ_B) 10 $(FUZZ_TARGETS)

# Rewrites fuzz/corpus/ring_attach/ (or FUZZ_SEEDS_DIR) with rings made by
# the ring code itself (fuzz/gen_ring_seeds.c); the result is committed.
FUZZ_SEEDS_DIR ?= fuzz/corpus/ring_attach
fuzz-seeds: fuzz-deps
	@mkdir -p $(FUZZ_B) $(FUZZ_SEEDS_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $(FUZZ_B)/gen_ring_seeds \
	      fuzz/gen_ring_seeds.c $(SYS_SRCS) $(RING_SRCS) $(LIBS_SYS)
	$(FUZZ_B)/gen_ring_seeds $(FUZZ_SEEDS_DIR)

# What make test asks of the seed generator, without touching the
# committed corpus: it builds and writes its seeds into a temporary
# directory, each of them is in the committed corpus under the same name
# (a new seed was committed), and ring_attach runs each once cleanly.
fuzz-seeds-check: fuzz-build
	@d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT && \
	$(MAKE) --no-print-directory FUZZ_SEEDS_DIR=$$d fuzz-seeds && \
	test -n "$$(ls $$d)" && \
	for f in $$(ls $$d); do \
	    test -f fuzz/corpus/ring_attach/$$f || \
	    { echo "fuzz-seeds-check: seed $$f is not committed" \
	           "(run make fuzz-seeds)" >&2; exit 1; }; done && \
	$(FUZZ_B)/ring_attach -runs=0 $$d

$(FUZZ_B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_B)/%: $(FUZZ_B)/obj/fuzz/%.o $(FUZZ_LIB_OBJS)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS) \
	      $(LIBS_SYS)

$(FANOUT_COST): $(B)/bench/fanout_cost.o $(B)/bench/broker.o $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) $(LIBS_SYS)

$(SPIN_PAIR): $(B)/bench/spin_pair.o $(B)/bench/broker.o $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) $(LIBS_SYS)

$(REQREP_BENCH): $(B)/bench/reqrep_bench.o $(B)/bench/broker.o \
                 $(B)/bench/stats.o $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) $(LIBS_SYS) -lm

$(BRIDGE_BENCH): $(B)/bench/bridge_bench.o $(B)/bench/stats.o $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(NATS_LIBS) $(PKG_LIBS) $(LIBS_SYS) -lm

# Every C file and header of the tree, formatted by .clang-format with the
# clang-format Debian ships; `make format` rewrites them, `make
# format-check` (part of make test) fails on any difference.
FORMAT_FILES = $(shell find . -path ./build -prune -o -name '*.[ch]' -print)

format-deps:
	@sh scripts/install-deps.sh format

format: format-deps
	@clang-format -i $(FORMAT_FILES)
	@echo "clang-format: $(words $(FORMAT_FILES)) files formatted"

format-check: format-deps
	@clang-format --dry-run --Werror $(FORMAT_FILES)
	@echo "clang-format: $(words $(FORMAT_FILES)) files as formatted"

clean:
	rm -rf build

-include $(shell find build/$(VARIANT) $(FUZZ_B) -name '*.d' 2>/dev/null)
