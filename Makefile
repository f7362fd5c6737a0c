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
PKGS     := libevent libevent_openssl libcares sqlite3 libpq inih libcrypt openssl zlib \
            libcurl
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
             -Isrc -MMD -MP $(SAN_FLAGS) $(CPPFLAGS) $(CFLAGS) $(PKG_CFLAGS) \
             $(VERSION_DEFS)
LDLIBS    = $(PKG_LIBS) -lpthread
ifeq ($(SAN),1)
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT       := -O1 -g
HARDEN    := -fstack-protector-strong
endif

# The release is named in one place, the file VERSION; REV is the git
# revision of this tree (git describe), "unknown" outside a git work tree
# (a source tarball) unless given: make REV=... (make deb hands it to the
# copy it builds).  Only src/util/version.c sees them, and it is compiled
# again when either changes ($(B)/version.flags, rewritten only then).
VERSION  := $(strip $(file <VERSION))
# (safe.directory: a tree owned by another user, e.g. make check's test
# user reading root's checkout, still tells its revision; no optional
# locks: --dirty must not rewrite .git/index, as root in a user's tree)
GIT_HERE  = GIT_OPTIONAL_LOCKS=0 git -c safe.directory='$(CURDIR)' -C '$(CURDIR)'
REV       = $(eval REV := $(shell top=$$($(GIT_HERE) rev-parse \
              --show-toplevel 2>/dev/null); if [ "$$top" = '$(CURDIR)' ]; then \
              $(GIT_HERE) describe --tags --always --dirty \
              --match 'v[0-9]*'; else echo unknown; fi))$(REV)
$(B)/obj/src/util/version.o: VERSION_DEFS = -DTERN_VERSION='"$(VERSION)"' \
                                            -DTERN_REV='"$(REV)"'
$(B)/obj/src/util/version.o: $(B)/version.flags
$(B)/version.flags: FORCE
	@mkdir -p $(@D)
	@printf '%s %s\n' '$(VERSION)' '$(REV)' >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi
FORCE:
.PHONY: version deb FORCE
version:
	@echo '$(VERSION) $(REV)'

MAINS    := src/server/main.c src/cli/main.c
# libcore.a: the pure code.  A file is pure when it does no network or
# process I/O (no socket, DNS, event loop, thread pool, signal, fork/exec,
# database, nothing written to disk) and needs nothing beyond libc, inih
# (the INI syntax of conf.c) and libcrypto (hashes and signatures of
# src/mailauth).  Four things are allowed, and named here: util's log.c
# writes its diagnostic lines to stderr; misc.c and clientkey.c read the
# clock and getrandom(2); misc.c's errno-keeping close and unlink helpers
# (called by the shell only, never by a pure file); conf.c reads the one
# configuration file it is named.  That is the protocol core and the
# parsers: util, addr, smtp, mime, conf, mailauth and metrics whole (a new file
# there joins by itself), auth's SASL and throttle, queue's envelope
# codec, DSN builder, retry schedule and rate tables, the JSON
# reader (util), the text check of STATE/versions (fs/verparse.c).  A libcore
# file includes headers of modules with libcore files only, and no
# socket, process or I/O library header (scripts/lint.sh);
# the unit tests of these modules and every fuzzer link libcore.a alone,
# so nothing impure creeps in unnoticed.  libtern.a is the rest.
CORE_SRC := $(sort $(wildcard src/util/*.c src/addr/*.c src/smtp/*.c \
              src/mime/*.c src/conf/*.c src/mailauth/*.c src/milter/*.c \
              src/screen/*.c src/rate/*.c \
              src/policy/*.c src/metrics/*.c src/tlsrpt/*.c) \
              src/auth/sasl.c src/auth/throttle.c src/queue/envelope.c \
              src/queue/bounce.c src/queue/retry.c \
              src/queue/sched.c src/queue/attempt.c src/queue/dsn.c \
              src/queue/slowdown.c \
              src/queue/envjson.c src/queue/qlog.c \
              src/sts/sts.c src/fs/verparse.c \
              src/acme/acme.c src/acme/jws.c \
              src/queue/admin.c)
CORE_OBJ := $(CORE_SRC:%.c=$(B)/obj/%.o)
LIB_SRC  := $(filter-out $(MAINS) $(CORE_SRC),$(sort $(wildcard src/*/*.c)))
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/obj/%.o)
# what libcore.a may need besides libc (asked lazily, like PKG_LIBS)
CORE_PKGS   := inih libcrypto
CORE_CFLAGS = $(eval CORE_CFLAGS := $(shell pkg-config --cflags $(CORE_PKGS) 2>/dev/null))$(CORE_CFLAGS)
CORE_LIBS   = $(eval CORE_LIBS := $(shell pkg-config --libs $(CORE_PKGS) 2>/dev/null))$(CORE_LIBS)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
# The unit tests of pure modules: they link libcore.a and nothing else
# (a test of a new pure module joins this list).
CORE_UNIT := $(filter $(UNIT_BIN),$(addprefix $(B)/tests/,test_addr test_bounce test_conf \
               test_envelope test_header test_json test_mime7 test_rate \
               test_retry test_smtp_body test_smtp_client test_smtp_cmd \
               test_smtp_reply test_smtp_server test_util test_strfmt \
               test_sched test_attempt test_dsn test_envjson test_qlog test_spf test_dkim test_dmarc test_authres \
               test_arc test_srs test_inbound test_dkimsel test_dnscache test_milter test_dnsbl \
               test_policy test_slowdown test_metrics test_tlsa \
               test_sts test_versions test_tlsrpt \
               test_logfmt test_admin test_acme))
# The tests that drive the durable steps through fs/file.c's fault
# hook: they link the fault builds of file.c and logspool.c ($(B)/fault/,
# as ternd-fault does) ahead of the archives, so the archives' own
# file.o and logspool.o are never used.
FAULT_UNIT := $(filter $(UNIT_BIN),$(addprefix $(B)/tests/,test_file test_maildir test_spool test_logspool))
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=build-fuzz/%)

PY       := /usr/bin/python3
FUZZ_SECONDS ?= 30

.SECONDARY:
.PHONY: all check asan fuzz fuzz-long lint run bench deps unit e2e clean install crashtest \
        crashstate core-src
all: $(B)/ternd $(B)/tern

$(B)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# Each archive is made afresh from its member list, and again when the
# Makefile changes: a file that moved from one archive to the other must
# not linger as a stale member of the first (libtern.a is searched first).
$(B)/libcore.a: $(CORE_OBJ) Makefile
	@rm -f $@
	ar rcs $@ $(filter %.o,$^)

# libcore.a links whole into a program with nothing but its libraries:
# every symbol a pure file needs is in libcore.a, libc, inih or libcrypto
# (made by `make unit`; a pure file that calls into the shell fails here).
$(B)/libcore-alone: $(B)/libcore.a
	printf 'int main(void);\nint main(void) { return 0; }\n' | \
	  $(CC) $(SAN_FLAGS) -o $@ -x c - -x none -Wl,--whole-archive $< -Wl,--no-whole-archive $(CORE_LIBS)

# libcore's sources, one a line: scripts/lint.sh checks what they include
core-src:
	@printf '%s\n' $(CORE_SRC)

$(B)/libtern.a: $(LIB_OBJ) Makefile
	@rm -f $@
	ar rcs $@ $(filter %.o,$^)

# Every program links libtern.a before libcore.a (the shell calls the
# core, never the other way round).
LIBS := $(B)/libtern.a $(B)/libcore.a

$(B)/ternd: $(B)/obj/src/server/main.o $(LIBS)
	$(CC) $(SAN_FLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# ternd with the test-only fault hooks of the durable steps (fault.c);
# its objects come first, so the linker takes them over the archives'
# (an archive member is only pulled in for a symbol still undefined, in
# libtern.a or libcore.a alike).
FAULT_SRC := src/server/main.c src/server/fault.c src/store/store.c \
             src/server/control.c src/fs/file.c src/queue/logspool.c
$(B)/fault/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DTERN_FAULT_INJECTION -c $< -o $@

$(B)/ternd-fault: $(FAULT_SRC:%.c=$(B)/fault/%.o) $(LIBS)
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

$(B)/ternd-plant: $(B)/obj/src/server/main.o $(PLANT_SRC:%.c=$(B)/plant/%.o) $(LIBS)
	$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

$(B)/tern: $(B)/obj/src/cli/main.o $(LIBS)
	$(CC) $(SAN_FLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests: a pure module's test links libcore.a alone; the fault-hook
# tests put the fault build of fs/file.c first; the rest link both.
$(CORE_UNIT): $(B)/tests/%: $(B)/obj/tests/unit/%.o $(B)/libcore.a
	@mkdir -p $(@D)
	$(CC) $(SAN_FLAGS) -o $@ $^ $(CORE_LIBS)

$(FAULT_UNIT): $(B)/tests/%: $(B)/obj/tests/unit/%.o $(B)/fault/src/fs/file.o \
    $(B)/fault/src/queue/logspool.o $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/%: $(B)/obj/tests/unit/%.o $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

deps:
	@scripts/deps.sh

unit: $(UNIT_BIN) $(B)/libcore-alone

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

# Fuzzers: libcore's sources compiled again for libFuzzer (coverage
# without libFuzzer's main, ASan, UBSan) into build-fuzz/libcore.a; each
# harness is one object linked against it.  The .d files keep a harness
# rebuilt when a source or header it reaches changes.
FUZZ_CC     := clang
FUZZ_CFLAGS := -std=c17 -D_GNU_SOURCE -g -O1 -Isrc -MMD -MP \
               -fsanitize=fuzzer-no-link,address,undefined
build-fuzz/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(CORE_CFLAGS) -c $< -o $@

build-fuzz/libcore.a: $(CORE_SRC:%.c=build-fuzz/obj/%.o) Makefile
	@rm -f $@
	ar rcs $@ $(filter %.o,$^)

$(FUZZ_BIN): build-fuzz/%: build-fuzz/obj/fuzz/%.o build-fuzz/libcore.a
	$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $@ $^ $(CORE_LIBS)

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
	@$(MAKE) --no-print-directory all $(B)/bench/limit
	@bench/run.sh

# bench/limit: the machine's ceiling for tern's work (durable Maildir
# files, log appends, loopback round trip); bench/run.sh runs it first.
# Needs only libc and pthreads.
$(B)/bench/limit: bench/limit.c
	@mkdir -p $(@D)
	$(CC) -std=c17 -D_GNU_SOURCE $(OPT) $(WARN) $(WERROR) $(HARDEN) -o $@ $< -lpthread

# make deb: the Debian packages tern and tern-sendmail (docs/packaging.md)
# into $(DEB_DIR), built by dpkg-buildpackage in a copy of the tree there
# (the tracked and new files, as git lists them), so the developer's
# build/ and the tree itself get nothing; run as a user, it builds under
# fakeroot.  The copy has no .git: REV goes with it.
DEB_DIR  ?= build-deb
deb: deps
	@set -e; dst='$(abspath $(DEB_DIR))'; src="$$dst/src/tern-$(VERSION)"; \
	rm -rf "$$dst/src"; mkdir -p "$$src"; \
	if $(GIT_HERE) rev-parse --git-dir >/dev/null 2>&1; then \
	  $(GIT_HERE) ls-files -z -co --exclude-standard | \
	    tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C "$$src" -xf -; \
	else \
	  tar --exclude=./.git --exclude='./build*' --exclude=./var -cf - . | \
	    tar -C "$$src" -xf -; \
	fi; \
	cd "$$src" && TERN_REV='$(REV)' dpkg-buildpackage -us -uc -b; \
	mv -f "$$dst"/src/*.deb "$$dst"/src/*.buildinfo "$$dst"/src/*.changes "$$dst"/; \
	ls -l "$$dst"/*.deb

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

# 500 SIGKILLs under load in each mode (KILLS=N), on the log (the
# default) and on the queue of files; nothing acknowledged may be lost.
# (A short run of each is part of make check.)
crashtest: deps
	@$(MAKE) --no-print-directory all
	@$(PY) tests/crash/crashtest.py --kills $${KILLS:-500} --mode local
	@$(PY) tests/crash/crashtest.py --kills $${KILLS:-500} --mode relay
	@$(PY) tests/crash/crashtest.py --kills $${KILLS:-500} --mode local --file-spool
	@$(PY) tests/crash/crashtest.py --kills $${KILLS:-500} --mode relay --file-spool

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
	@$(PY) tests/crashstate/crashstate.py --ternd $(B)/ternd --file-spool \
	  --shim $(B)/crashstate/shim.so --limit $(CRASHSTATE_LIMIT) --sample $(CRASHSTATE_SAMPLE)
	@$(PY) tests/crashstate/crashstate.py --ternd $(B)/ternd-plant \
	  --shim $(B)/crashstate/shim.so --limit $(CRASHSTATE_LIMIT) --sample $(CRASHSTATE_SAMPLE) \
	  --expect-violations

compile_commands.json:
	bear -- $(MAKE) -B all unit

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(B)/obj $(B)/fault $(B)/plant build-fuzz/obj -name '*.d' 2>/dev/null)
