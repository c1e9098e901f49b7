# wsgw — build, test, fuzz and benchmark.  `make help` lists the targets.
#
# Layout of build/: obj/ (normal build, -O2), asan/ (ASan+UBSan build of the
# same sources, used by `make test`), fuzz/ (clang libFuzzer targets).

CC       ?= gcc
CLANG    ?= clang
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wpointer-arith -Wvla -Wformat=2
CSTD     := -std=c11 -D_GNU_SOURCE
OPT      ?= -O2 -g
# Each folder compiles with the include paths of what it may use, so a
# layering violation is a compile error (docs/architecture.md):
#   lib/               nothing of ours
#   proto/             lib/
#   backplane/         lib/
#   gateway/wire/      lib/ proto/                    pure codecs
#   gateway/core/      lib/ proto/ wire/              the transport: names no feature
#   gateway/features/  lib/ proto/ backplane/ wire/ core/
#   gateway/           everything (the binary's main, run, master, the wiring)
# tests/ and examples/ see everything.  tests/check_layers.py checks the
# same rules on the #include lines (make check-layers, part of make test).
INC_lib              := -Ilib
INC_proto            := -Ilib -Iproto
INC_backplane        := -Ilib -Ibackplane
INC_gateway/wire     := -Ilib -Iproto -Igateway/wire
INC_gateway/core     := -Ilib -Iproto -Igateway/wire -Igateway/core
INC_gateway/features := -Ilib -Iproto -Ibackplane -Igateway/wire -Igateway/core -Igateway/features
INC_gateway          := $(INC_gateway/features) -Igateway
INC_ALL              := $(INC_gateway)
# The include paths of the folder a source file sits in: the deepest of
# gateway/<sub>/ or <top>/ that has rules (everything for files outside
# the layers).
inc_of = $(or $(INC_$(word 1,$(subst /, ,$(1)))/$(word 2,$(subst /, ,$(1)))),$(INC_$(firstword $(subst /, ,$(1)))),$(INC_ALL))
CFLAGS   := $(CSTD) $(WARN) $(OPT) -MMD -MP
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
PROTO_LIBS := -lssl -lcrypto -lz
GW_LIBS  := -lev -lhiredis $(PROTO_LIBS) -lm -pthread

B := build
# lib/ (the ground floor) and proto/ make libwsproto.a: the load generator
# links it without the gateway.
PROTO_SRC := $(wildcard lib/*.c) $(wildcard proto/*.c)
PROTO_OBJ := $(PROTO_SRC:%.c=$(B)/obj/%.o)
PROTO_ASAN_OBJ := $(PROTO_SRC:%.c=$(B)/asan/%.o)
# gateway/ minus the binary's main(): a library that tests link against.
# backplane/ (Redis, no WebSocket) is linked into the same library.
GW_SRC    := $(filter-out gateway/main.c,$(wildcard gateway/*.c gateway/*/*.c)) $(wildcard backplane/*.c)
GW_OBJ    := $(GW_SRC:%.c=$(B)/obj/%.o) $(B)/obj/gen/client_js.o
GW_ASAN_OBJ := $(GW_SRC:%.c=$(B)/asan/%.o) $(B)/asan/gen/client_js.o
CLIENT_JS := clients/js/wsgw.js
EXAMPLES  := $(patsubst examples/%.c,$(B)/examples/%,$(wildcard examples/*.c))
LIBS      := $(B)/libwsgw.a $(B)/libwsproto.a
LIBS_ASAN := $(B)/libwsgw-asan.a $(B)/libwsproto-asan.a

UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(B)/obj/tests/%)
UNIT_ASAN := $(UNIT_SRC:tests/unit/%.c=$(B)/asan/tests/%)

FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=%)
FUZZ_REPLAY := $(FUZZ_NAMES:%=$(B)/asan/replay/%)
# The same replay built by clang: its UBSan checks what gcc's does not (a
# NULL + 0 in ws_utf8 was found that way), so make test runs both.
FUZZ_REPLAY_CLANG := $(FUZZ_NAMES:%=$(B)/clang/replay/%)
FUZZ_BIN  := $(FUZZ_NAMES:%=$(B)/fuzz/fuzz_%)
FUZZ_SECONDS ?= 60

# `make -j test` must not compile before `deps` has installed the headers
# and libraries: when a goal that runs deps is requested, every rule that
# compiles waits for it (order-only: deps never makes a file out of date).
# A plain `make` does not run deps, as before.
DEPS_GOALS := deps run cluster test test-js fuzz bench bench-compare soak
WAIT_DEPS := $(if $(filter $(DEPS_GOALS),$(MAKECMDGOALS)),| deps)

.PHONY: check-layers all run cluster cluster-stop test unit integration test-js fuzz fuzz-build fuzz-merge bench-proto bench bench-compare soak deps clean help
all: $(B)/wsgw $(EXAMPLES) $(LIBS) $(UNIT_BIN) $(B)/bench/loadgen

help:
	@echo "make            build everything (-Wall -Wextra -Werror)"
	@echo "make run        the gateway on :8080 serving the demo chat (clients/demo)"
	@echo "make cluster    Redis + 3 gateways + HAProxy on 127.0.0.1:8080 (make cluster-stop)"
	@echo "make test       unit tests (normal + ASan/UBSan), fuzz-corpus replay, integration (pytest), Node tests"
	@echo "make check-layers  the folder layering rules (docs/architecture.md), also run by make test"
	@echo "make test-js    the Node tests only (clients/js, the demo page in Chromium)"
	@echo "make fuzz       run each libFuzzer target for FUZZ_SECONDS (default 60)"
	@echo "make bench-proto  parse+unmask+UTF-8 throughput of proto/"
	@echo "make bench      build/wsgw under load from build/bench/loadgen (~2 min)"
	@echo "make bench-compare  wsgw beside a C ceiling, Bun, Node ws, Socket.IO (~15 min)"
	@echo "make soak       build/wsgw under load and faults for SOAK_SECONDS (default 600), with delivery accounting"
	@echo "make deps       install missing Debian packages and the npm packages of tests/js"

# ---- proto library --------------------------------------------------------
$(B)/obj/%.o: %.c $(WAIT_DEPS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(call inc_of,$*) -c $< -o $@
$(B)/asan/%.o: %.c $(WAIT_DEPS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(call inc_of,$*) $(SANFLAGS) -O1 -c $< -o $@

$(B)/libwsproto.a: $(PROTO_OBJ)
	rm -f $@ && ar rcs $@ $^
$(B)/libwsproto-asan.a: $(PROTO_ASAN_OBJ)
	rm -f $@ && ar rcs $@ $^
$(B)/libwsgw.a: $(GW_OBJ)
	rm -f $@ && ar rcs $@ $^
$(B)/libwsgw-asan.a: $(GW_ASAN_OBJ)
	rm -f $@ && ar rcs $@ $^

# The JavaScript client is embedded in the binary: no file to deploy beside it.
$(B)/gen/client_js.c: $(CLIENT_JS)
	@mkdir -p $(@D)
	@{ echo '/* generated from $(CLIENT_JS) by the Makefile */'; \
	   echo '#include <stddef.h>'; \
	   echo 'const unsigned char wsgw_client_js[] = {'; \
	   od -An -v -tx1 $< | sed 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	   echo '0x00 };'; \
	   echo "const size_t wsgw_client_js_len = sizeof wsgw_client_js - 1;"; } > $@
$(B)/obj/gen/client_js.o: $(B)/gen/client_js.c $(WAIT_DEPS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(INC_ALL) -c $< -o $@
$(B)/asan/gen/client_js.o: $(B)/gen/client_js.c $(WAIT_DEPS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(INC_ALL) $(SANFLAGS) -c $< -o $@

# ---- binaries ---------------------------------------------------------------
$(B)/wsgw: gateway/main.c $(LIBS) $(WAIT_DEPS)
	$(CC) $(CFLAGS) $(INC_ALL) $< $(LIBS) $(GW_LIBS) -o $@
$(B)/wsgw-asan: gateway/main.c $(LIBS_ASAN) $(WAIT_DEPS)
	$(CC) $(CFLAGS) $(INC_ALL) $(SANFLAGS) -O1 $< $(LIBS_ASAN) $(GW_LIBS) -o $@
$(B)/examples/%: examples/%.c $(LIBS) $(WAIT_DEPS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(INC_ALL) $< $(LIBS) $(GW_LIBS) -o $@
$(B)/examples-asan/%: examples/%.c $(LIBS_ASAN) $(WAIT_DEPS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(INC_ALL) $(SANFLAGS) -O1 $< $(LIBS_ASAN) $(GW_LIBS) -o $@

run: deps $(B)/wsgw
	$(B)/wsgw --listen 0.0.0.0:8080 --static-dir clients/demo $(RUN_FLAGS)

# Redis, three gateways and HAProxy on 127.0.0.1 (deploy/local-cluster).
cluster: deps $(B)/wsgw
	deploy/local-cluster start $(CLUSTER_FLAGS)
cluster-stop:
	deploy/local-cluster stop $(CLUSTER_FLAGS)

# ---- unit tests -----------------------------------------------------------
$(B)/obj/tests/%: tests/unit/%.c tests/unit/test.h $(LIBS) $(WAIT_DEPS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(INC_ALL) -Itests/unit $< $(LIBS) $(GW_LIBS) -o $@
$(B)/asan/tests/%: tests/unit/%.c tests/unit/test.h $(LIBS_ASAN) $(WAIT_DEPS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(INC_ALL) $(SANFLAGS) -O1 -Itests/unit $< $(LIBS_ASAN) $(GW_LIBS) -o $@

# ---- fuzz targets: replay (gcc + sanitizers) and libFuzzer (clang) ---------
$(B)/asan/replay/%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(LIBS_ASAN) $(WAIT_DEPS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(INC_ALL) $(SANFLAGS) -O1 $< tests/fuzz/replay.c $(LIBS_ASAN) $(GW_LIBS) -o $@
# clang builds the library sources once per flavour — libFuzzer coverage
# (fuzz/obj) and plain ASan+UBSan for the clang replay (clang/obj) — and
# every target links them, instead of compiling all sources per target.
CLANG_SRC  := $(PROTO_SRC) $(GW_SRC) $(B)/gen/client_js.c
CLANG_FLAGS := $(CSTD) $(WARN) -Wno-unused-command-line-argument -O1 -g -MMD -MP
FUZZ_SAN   := -fsanitize=address,undefined -fno-sanitize-recover=undefined
REPLAY_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_LIB_OBJ   := $(patsubst %.c,$(B)/fuzz/obj/%.o,$(patsubst $(B)/%,%,$(CLANG_SRC)))
REPLAY_LIB_OBJ := $(patsubst %.c,$(B)/clang/obj/%.o,$(patsubst $(B)/%,%,$(CLANG_SRC)))
$(B)/fuzz/obj/gen/%.o: $(B)/gen/%.c $(WAIT_DEPS)
	@mkdir -p $(@D)
	$(CLANG) $(CLANG_FLAGS) $(INC_ALL) -fsanitize=fuzzer-no-link $(FUZZ_SAN) -c $< -o $@
$(B)/fuzz/obj/%.o: %.c $(WAIT_DEPS)
	@mkdir -p $(@D)
	$(CLANG) $(CLANG_FLAGS) $(call inc_of,$*) -fsanitize=fuzzer-no-link $(FUZZ_SAN) -c $< -o $@
$(B)/clang/obj/gen/%.o: $(B)/gen/%.c $(WAIT_DEPS)
	@mkdir -p $(@D)
	$(CLANG) $(CLANG_FLAGS) $(INC_ALL) $(REPLAY_SAN) -c $< -o $@
$(B)/clang/obj/%.o: %.c $(WAIT_DEPS)
	@mkdir -p $(@D)
	$(CLANG) $(CLANG_FLAGS) $(call inc_of,$*) $(REPLAY_SAN) -c $< -o $@
$(B)/fuzz/libwsgw-fuzz.a: $(FUZZ_LIB_OBJ)
	rm -f $@ && ar rcs $@ $^
$(B)/clang/libwsgw-clang.a: $(REPLAY_LIB_OBJ)
	rm -f $@ && ar rcs $@ $^
$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(B)/fuzz/libwsgw-fuzz.a $(WAIT_DEPS)
	@mkdir -p $(@D)
	$(CLANG) $(CLANG_FLAGS) $(INC_ALL) -fsanitize=fuzzer $(FUZZ_SAN) $< $(B)/fuzz/libwsgw-fuzz.a $(GW_LIBS) -o $@
$(B)/clang/replay/%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(B)/clang/libwsgw-clang.a $(WAIT_DEPS)
	@mkdir -p $(@D)
	$(CLANG) $(CLANG_FLAGS) $(INC_ALL) $(REPLAY_SAN) $< tests/fuzz/replay.c $(B)/clang/libwsgw-clang.a $(GW_LIBS) -o $@

fuzz-build: $(FUZZ_BIN)
# Every target runs for FUZZ_SECONDS whatever the others found; the run
# fails, naming each crashing target and the input it saved under
# $(B)/fuzz/artifacts-NAME/, when any of them did (tests/fuzz/run-fuzz.sh).
fuzz: deps $(FUZZ_BIN)
	@tests/fuzz/run-fuzz.sh --seconds $(FUZZ_SECONDS) --out $(B)/fuzz $(FUZZ_BIN)
# Merges what `make fuzz` found (build/fuzz/corpus-NAME) into the corpora
# under tests/: only inputs that reach new edges (-use_counters=0: hit
# counts would add hundreds per target).  A failed merge stops it.
fuzz-merge: $(FUZZ_BIN)
	@for n in $(FUZZ_NAMES); do \
	  mkdir -p $(B)/fuzz/corpus-$$n; \
	  $(B)/fuzz/fuzz_$$n -merge=1 -use_counters=0 tests/fuzz/corpus/$$n $(B)/fuzz/corpus-$$n \
	    > $(B)/fuzz/merge-$$n.log 2>&1 || { echo "fuzz-merge $$n failed: $(B)/fuzz/merge-$$n.log"; exit 1; }; \
	  echo "$$n: $$(tail -n 1 $(B)/fuzz/merge-$$n.log)"; done

# ---- test -----------------------------------------------------------------
# The folder rules (lib < proto, backplane < gateway) on the #include lines;
# the build enforces them too, with per-folder include paths (INC_*).
check-layers:
	@/usr/bin/python3 tests/check_layers.py
unit: $(UNIT_BIN) $(UNIT_ASAN) $(FUZZ_REPLAY) $(FUZZ_REPLAY_CLANG)
# Integration tests run the ASan+UBSan build of the gateway: every one of
# them is also a memory test (conftest.py fails on a sanitizer report).
INTEGRATION_BINS := $(B)/wsgw-asan $(B)/wsgw $(EXAMPLES) $(B)/examples-asan/echo $(B)/bench/loadgen
PYTEST_ARGS ?= tests/integration
# Node tests (node --test): clients/js/wsgw.js over `ws`, and the demo page in
# headless Chromium, against the same ASan binaries and real redis-servers.
NODE_TESTS ?= $(wildcard tests/js/*.test.mjs)
NODE_TEST_FLAGS := --test-concurrency=1 --test-timeout=120000
test: deps unit $(INTEGRATION_BINS)
	@echo "== unit tests (-O2), unit tests (ASan+UBSan), fuzz corpus replay (ASan+UBSan)"
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  NODE_TEST_FLAGS="$(NODE_TEST_FLAGS)" tests/run-all.sh "/usr/bin/python3 tests/check_layers.py --selftest" \
	  $(UNIT_BIN) $(UNIT_ASAN) \
	  $(foreach n,$(FUZZ_NAMES),"$(B)/asan/replay/$(n) $(n) tests/fuzz/corpus/$(n)") \
	  $(foreach n,$(FUZZ_NAMES),"$(B)/clang/replay/$(n) clang-$(n) tests/fuzz/corpus/$(n)") \
	  -- $(PYTEST_ARGS) --node $(NODE_TESTS)
integration: $(INTEGRATION_BINS)
	/usr/bin/python3 -m pytest -p no:cacheprovider -q $(PYTEST_ARGS)
test-js: deps $(INTEGRATION_BINS)
	node --test $(NODE_TEST_FLAGS) $(NODE_TESTS)

# ---- benchmarks -------------------------------------------------------------
# Linked against the same libwsproto.a (-O2, no -march) that build/wsgw is
# built from, so the figures describe the code users run.
$(B)/bench/bench_proto: tests/bench/bench_proto.c $(B)/libwsproto.a $(WAIT_DEPS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(INC_ALL) $< $(B)/libwsproto.a $(PROTO_LIBS) -o $@
bench-proto: $(B)/bench/bench_proto
	$(B)/bench/bench_proto
# The raw-write ceiling bench-compare measures wsgw against: one epoll
# loop writing pre-framed bytes, no JSON, no rooms (tests/bench/peers/).
$(B)/bench/ceiling: tests/bench/peers/ceiling.c $(WAIT_DEPS)
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) -O2 -g $< -lssl -lcrypto -o $@

# The load generator: one process, one epoll loop, many WebSocket clients
# built on proto/ (tests/bench/loadgen.c).  -O2 like build/wsgw.
# TLS (wss://) is OpenSSL, permessage-deflate is proto/'s inflater over zlib:
# both in PROTO_LIBS.
LOADGEN_SRC := $(wildcard tests/bench/loadgen.c tests/bench/lg_*.c)
$(B)/bench/loadgen: $(LOADGEN_SRC) $(wildcard tests/bench/lg_*.h) $(B)/libwsproto.a $(WAIT_DEPS)
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) -O2 -g $(INC_proto) $(LOADGEN_SRC) $(B)/libwsproto.a $(PROTO_LIBS) -o $@
# Starts build/wsgw, runs every scenario against it, prints a table
# (docs/performance.md).  Not part of `make test`: it measures, it takes
# minutes, and its numbers depend on the machine.
bench: deps $(B)/wsgw $(B)/bench/loadgen
	tests/bench/run-bench.sh

# wsgw side by side with a raw-write C ceiling, Bun, Node ws and Socket.IO
# (installed from npm into a cache outside the tree), one table with
# ratios and the issue-8 targets (docs/performance.md).  ~15 minutes.
bench-compare: deps $(B)/wsgw $(B)/bench/loadgen $(B)/bench/ceiling
	tests/bench/compare.sh

# ---- soak -------------------------------------------------------------------
# A master and 2 workers, a redis-server, 2000 connections (normal clients
# and misbehaving ones) for SOAK_SECONDS, Redis and a worker killed on a
# schedule; every accepted message accounted for, RSS and fds sampled
# (tests/soak/soak.py; docs/performance.md, "Soak test").  Not part of
# `make test`, which runs a 40 s version against the ASan build
# (tests/integration/test_soak_short.py).  SOAK_CONNS, SOAK_SEED, WSGW_BIN ...
# pass through the environment; logs in build/soak/.
SOAK_SECONDS ?= 600
soak: deps $(B)/wsgw
	SOAK_SECONDS=$(SOAK_SECONDS) /usr/bin/python3 tests/soak/soak.py

# ---- dependencies -----------------------------------------------------------
DEB_PKGS := build-essential libev-dev libhiredis-dev libssl-dev zlib1g-dev \
            clang libclang-rt-14-dev redis-server python3-websockets python3-pytest python3-redis \
            openssl iproute2 iptables procps chromium haproxy docker-compose
# Node and npm count as present when their commands are there too: a Node
# package from elsewhere (NodeSource's nodejs bundles npm) must not be
# "completed" with Debian's npm, which depends on Debian's nodejs.
CMD_PKGS := nodejs:node npm:npm
# npm packages of the Node tests (tests/js/package-lock.json: ws, playwright-core),
# installed again when node_modules is missing or the lock file changed.
# playwright-core drives Debian's /usr/bin/chromium: it never downloads a browser.
JS_STAMP := tests/js/node_modules/.installed
# A package counts as installed only in dpkg's "installed" state: `dpkg -s`
# also succeeds for one removed but not purged ("deinstall ok config-files"),
# whose headers and libraries are gone.  One dpkg-query for all of them
# keeps this fast when everything is there.
DEPS_QUERY = dpkg-query -W -f='$${Package} $${Status}\n' $(DEB_PKGS) $(foreach pc,$(CMD_PKGS),$(firstword $(subst :, ,$(pc)))) 2>/dev/null | \
	  awk '$$3 == "ok" && $$4 == "installed" && ($$2 == "install" || $$2 == "hold") { print $$1 }'
deps:
	@ok=$$($(DEPS_QUERY)); has() { printf '%s\n' "$$ok" | grep -qxF "$$1"; }; \
	missing=$$(for p in $(DEB_PKGS); do has $$p || echo $$p; done; \
	  for pc in $(CMD_PKGS); do p=$${pc%%:*}; c=$${pc#*:}; \
	    has $$p || command -v $$c >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@if [ ! -f $(JS_STAMP) ] || [ tests/js/package-lock.json -nt $(JS_STAMP) ]; then \
	  echo "installing tests/js npm packages (npm ci)"; \
	  cd tests/js && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null \
	    && touch node_modules/.installed; \
	fi

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
