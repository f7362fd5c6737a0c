# tern: one non-recursive Makefile.  See README.md for the two commands
# that matter (make run, make check) and docs/ for the rest.
#
#   make            build/ternd and build/tern
#   make check      installs missing packages, builds, runs unit + e2e tests
#   make asan       the same suite with everything built under ASan+UBSan
#   make fuzz       every libFuzzer harness for FUZZ_SECONDS (default 30)
#   make lint       clang-format check, banned functions, cppcheck
#   make run        build and start ternd on the embedded defaults
#   make bench      benchmarks (never part of check)
#   make crashstate every power-cut state of recorded runs, checked (docs/queue.md)

B        ?= build
CC       ?= cc
PKGS     := libevent libevent_openssl libcares sqlite3 libpq inih libcrypt openssl
WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wpointer-arith -Wcast-qual -Wformat=2 -Wno-format-nonliteral
HARDEN   := -fstack-protector-strong -D_FORTIFY_SOURCE=2
OPT      ?= -O2 -g
CFLAGS   ?=
WERROR   ?= -Werror
# pkg-config runs when a compile or link first needs its answer, not when
# the Makefile is read: on a fresh machine `make run` installs the packages
# (scripts/deps.sh) before anything asks for their flags.  Each is asked
# once per make (the eval caches the answer).
PKG_CFLAGS = $(eval PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null))$(PKG_CFLAGS)
PKG_LIBS   = $(eval PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null))$(PKG_LIBS)
ALL_CFLAGS = -std=c17 -D_GNU_SOURCE $(OPT) $(WARN) $(WERROR) $(HARDEN) \
             -Isrc -MMD -MP $(SAN_FLAGS) $(CFLAGS) $(PKG_CFLAGS)
LDLIBS    = $(PKG_LIBS) -lpthread
ifeq ($(SAN),1)
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT       := -O1 -g
HARDEN    := -fstack-protector-strong
endif

MAINS    := src/server/main.c src/cli/main.c
LIB_SRC  := $(filter-out $(MAINS),$(sort $(wildcard src/*/*.c)))
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/obj/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=build-fuzz/%)
# the parsers the fuzzers reach: pure modules only, no libraries needed
FUZZ_LIB := $(sort $(wildcard src/util/*.c src/addr/*.c src/smtp/*.c src/mailauth/*.c))

PY       := /usr/bin/python3
FUZZ_SECONDS ?= 30

.SECONDARY:
.PHONY: all check asan fuzz fuzz-long lint run bench deps unit e2e clean install crashtest \
        crashstate
all: $(B)/ternd $(B)/tern

$(B)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(B)/libtern.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/ternd: $(B)/obj/src/server/main.o $(B)/libtern.a
	$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

# ternd with the test-only fault hooks of the durable steps (fault.c);
# its objects come first, so the linker takes them over libtern.a's.
FAULT_SRC := src/server/main.c src/server/fault.c src/server/inject.c \
             src/server/control.c src/store/file.c
$(B)/fault/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DTERN_FAULT_INJECTION -c $< -o $@

$(B)/ternd-fault: $(FAULT_SRC:%.c=$(B)/fault/%.o) $(B)/libtern.a
	$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

# The crash-state checker (tests/crashstate): the LD_PRELOAD recorder, and
# ternd with one fsync planted away (the fsync of new/ after the link of a
# lone delivery) to show that the checker catches a missing fsync.  The
# shim is never built with sanitizers: it is preloaded into ternd.
CRASHSTATE_BIN := $(B)/crashstate/shim.so $(B)/ternd-plant
$(B)/crashstate/shim.so: tests/crashstate/shim.c
	@mkdir -p $(@D)
	$(CC) -std=c17 -D_GNU_SOURCE -O2 -g $(WARN) $(WERROR) -U_FORTIFY_SOURCE \
	  -fPIC -shared -o $@ $< -ldl -lpthread

PLANT_SRC := src/deliver/maildir.c
$(B)/plant/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DTERN_CRASHSTATE_PLANT_NOFSYNC -c $< -o $@

$(B)/ternd-plant: $(B)/obj/src/server/main.o $(PLANT_SRC:%.c=$(B)/plant/%.o) $(B)/libtern.a
	$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

$(B)/tern: $(B)/obj/src/cli/main.o $(B)/libtern.a
	$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/%: $(B)/obj/tests/unit/%.o $(B)/libtern.a
	@mkdir -p $(@D)
	$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

deps:
	@scripts/deps.sh

unit: $(UNIT_BIN)

# The whole suite; ends with "N passed, N failed".
check: deps
	@$(MAKE) --no-print-directory all unit $(B)/ternd-fault $(CRASHSTATE_BIN)
	@$(PY) tests/run.py --build $(B)

asan: deps
	@$(MAKE) --no-print-directory B=build-asan SAN=1 all unit build-asan/ternd-fault \
	  build-asan/crashstate/shim.so build-asan/ternd-plant
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(PY) tests/run.py --build build-asan

# some harnesses #include the .c file of a module outside FUZZ_LIB
build-fuzz/%: fuzz/%.c $(wildcard src/*/*.c src/*/*.h)
	@mkdir -p $(@D)
	clang -std=c17 -D_GNU_SOURCE -g -O1 -Isrc -fsanitize=fuzzer,address,undefined \
	  -o $@ $< $(FUZZ_LIB) -linih

fuzz: deps
	@$(MAKE) --no-print-directory $(FUZZ_BIN)
	@scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

# a campaign: each harness FUZZ_LONG_SECONDS, FUZZ_JOBS at once, corpora kept
# in build-fuzz/corpus so successive runs add up; totals in campaign.log.
# FUZZ_LONG_CPU=N instead: runs of at most 900 s until campaign.log holds
# N CPU seconds per harness (re-run the same command to finish a campaign)
FUZZ_LONG_SECONDS ?= 3600
fuzz-long: deps
	@$(MAKE) --no-print-directory $(FUZZ_BIN)
	@FUZZ_CORPUS=$(CURDIR)/build-fuzz/corpus FUZZ_JOBS=$${FUZZ_JOBS:-$$(nproc)} \
	  FUZZ_LOG=$(CURDIR)/build-fuzz/campaign.log FUZZ_CPU_TARGET=$(FUZZ_LONG_CPU) \
	  scripts/fuzz.sh $(if $(FUZZ_LONG_CPU),900,$(FUZZ_LONG_SECONDS)) $(FUZZ_BIN)

lint: deps
	@scripts/lint.sh

# deps first, then the build in a sub-make: with -j a plain prerequisite
# list would start compiling before the packages are installed.
run: deps
	@$(MAKE) --no-print-directory all
	@scripts/run.sh $(B)

bench: deps
	@$(MAKE) --no-print-directory all
	@bench/run.sh

PREFIX   ?= /usr/local
# SENDMAIL_LINKS=1 also makes sendmail and mailq (sbin and bin) links to
# tern, so cron, git send-email, PHP mail() and friends use it.
install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin \
	  $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 755 $(B)/ternd $(DESTDIR)$(PREFIX)/sbin/ternd
	install -m 755 $(B)/tern $(DESTDIR)$(PREFIX)/bin/tern
	install -m 644 docs/man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 docs/man/*.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/share/doc/tern
	sed 's|@SBINDIR@|$(PREFIX)/sbin|g' contrib/tern.service.in \
	  >$(DESTDIR)$(PREFIX)/lib/systemd/system/tern.service
	install -m 644 contrib/tern.conf $(DESTDIR)$(PREFIX)/share/doc/tern/tern.conf.example
	if [ -z "$(DESTDIR)" ] && [ ! -e /etc/tern/tern.conf ]; then \
	  install -d /etc/tern && install -m 644 contrib/tern.conf /etc/tern/tern.conf; fi
	if [ "$(SENDMAIL_LINKS)" = 1 ]; then \
	  ln -sf $(PREFIX)/bin/tern $(DESTDIR)$(PREFIX)/sbin/sendmail; \
	  ln -sf $(PREFIX)/bin/tern $(DESTDIR)$(PREFIX)/bin/mailq; \
	fi

# 500 SIGKILLs under load in each mode (KILLS=N); nothing acknowledged may
# be lost.  (A short run of each is part of make check.)
crashtest: deps
	@$(MAKE) --no-print-directory all
	@$(PY) tests/crash/crashtest.py --kills $${KILLS:-500} --mode local
	@$(PY) tests/crash/crashtest.py --kills $${KILLS:-500} --mode relay

# Record each scenario, replay every power-cut state (CRASHSTATE_LIMIT
# states per crash point enumerated, else CRASHSTATE_SAMPLE drawn), run
# recovery on each: no violation allowed.  Then the planted-bug build:
# violations required.
CRASHSTATE_LIMIT  ?= 256
CRASHSTATE_SAMPLE ?= 64
crashstate: deps
	@$(MAKE) --no-print-directory all $(CRASHSTATE_BIN)
	@$(PY) tests/crashstate/crashstate.py --ternd $(B)/ternd \
	  --shim $(B)/crashstate/shim.so --limit $(CRASHSTATE_LIMIT) --sample $(CRASHSTATE_SAMPLE)
	@$(PY) tests/crashstate/crashstate.py --ternd $(B)/ternd-plant \
	  --shim $(B)/crashstate/shim.so --limit $(CRASHSTATE_LIMIT) --sample $(CRASHSTATE_SAMPLE) \
	  --expect-violations

compile_commands.json:
	bear -- $(MAKE) -B all unit

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(B)/obj $(B)/fault $(B)/plant -name '*.d' 2>/dev/null)
