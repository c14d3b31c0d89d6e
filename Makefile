# llama2-chat: build, test and benchmark.
#
#   make            build ./llama2-chat (installs missing Debian packages first)
#   make check      build and run every libcheck suite
#   make check SANITIZE=1   the same under ASan + UBSan
#   make bench      benchmarks (writes synthetic models under bench/ when missing)
#   make PORTABLE=1 no -march=native
#
# Objects live in build/<variant>/ so that plain, sanitized and portable builds
# never mix.  Every warning is an error when CI=true or WERROR=1.

CC      ?= cc
PKGS    := ncursesw sqlite3 jansson check libpcre2-8 libcurl
DEBS    := build-essential pkg-config libncursesw5-dev libsqlite3-dev libjansson-dev check tmux libpcre2-dev \
           libcurl4-openssl-dev

VARIANT := release
OPT     := -O3
ARCH    := -march=native
ifeq ($(PORTABLE),1)
  ARCH    :=
  VARIANT := portable
endif
ifeq ($(SANITIZE),1)
  OPT     := -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
  VARIANT := $(VARIANT)-san
endif
ifeq ($(DEBUG),1)
  OPT     := -O0
  VARIANT := $(VARIANT)-debug
endif
# The flag has its own name: WERROR=1 given to make overrides any variable
# called WERROR, and the 1 would reach the compiler.
WERRFLAG :=
ifeq ($(CI),true)
  WERRFLAG := -Werror
endif
# WERROR=1 on the command line would otherwise reach cc as the word "1".
ifeq ($(WERROR),1)
  WERRFLAG := -Werror
endif

B := build/$(VARIANT)

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs ncursesw sqlite3 jansson libpcre2-8 libcurl 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)

CFLAGS  ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE -g $(OPT) $(ARCH) -fopenmp -pthread \
           -Wall -Wextra -Wshadow -Wmissing-prototypes -Wno-unused-parameter $(WERRFLAG) \
           -I. $(PKG_CFLAGS)
LDLIBS  += $(PKG_LIBS) -fopenmp -pthread -lm

COMMON_SRC  := $(wildcard common/*.c)
ENGINE_SRC  := $(wildcard engine/*.c)
STORAGE_SRC := $(wildcard storage/*.c)
UI_SRC      := $(wildcard ui/*.c)
APP_SRC     := $(filter-out app/main.c,$(wildcard app/*.c))
TEST_SRC    := $(wildcard tests/check_*.c)

LIB_OBJ  := $(patsubst %.c,$(B)/%.o,$(COMMON_SRC) $(ENGINE_SRC) $(STORAGE_SRC) $(UI_SRC) $(APP_SRC))
TEST_OBJ := $(patsubst %.c,$(B)/%.o,$(TEST_SRC) tests/testutil.c tests/remote_peer.c)

.PHONY: all deps check bench clean fuzz
.DEFAULT_GOAL := all

all: deps
	@$(MAKE) --no-print-directory llama2-chat

# Fresh Debian machine: install what is missing (as root, or through sudo), or
# stop and print the exact command.
deps:
	@missing=""; \
	command -v pkg-config >/dev/null 2>&1 && pkg-config --exists $(PKGS) 2>/dev/null || missing=1; \
	command -v tmux >/dev/null 2>&1 || missing=1; \
	command -v cc >/dev/null 2>&1 || missing=1; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing: $(DEBS)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBS) >/dev/null || exit 1; \
	  elif command -v sudo >/dev/null 2>&1; then echo "installing with sudo: $(DEBS)"; \
	    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBS) >/dev/null || exit 1; \
	  else echo "missing packages; run: apt-get install -y $(DEBS)"; exit 1; fi; \
	fi

# The binary is built in build/<variant> and copied for the plain build.
$(B)/llama2-chat: $(B)/app/main.o $(LIB_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

llama2-chat: $(B)/llama2-chat
	cp $< $@.tmp && mv -f $@.tmp $@

# The AVX2 kernels are measured as an AVX2-only CPU runs them, whatever -march says
# (clang spells the flags the same).
$(B)/engine/gemm_avx2.o $(B)/engine/quant_avx2.o $(B)/engine/attn_flash_avx2.o: CFLAGS += -mno-avx512f -mno-avxvnni

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# Suites are discovered: every tests/check_*.c that defines x_suite(void)
# (the definition's line, "Suite *x_suite(void)" or "x_suite(void)" under
# "Suite *", without a semicolon).
$(B)/tests/suites.h: $(TEST_SRC)
	@mkdir -p $(dir $@)
	@sed -n -e 's/^Suite \*\([a-z0-9_]*\)_suite(void)$$/SUITE(\1)/p' \
	    -e 's/^\([a-z0-9_]*\)_suite(void)$$/SUITE(\1)/p' $(TEST_SRC) > $@.tmp && mv $@.tmp $@

$(B)/tests/check_main.o: tests/check_main.c $(B)/tests/suites.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(B)/tests -c -o $@ $<

$(B)/check_llama2: $(B)/tests/check_main.o $(TEST_OBJ) $(LIB_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

check: deps
	@$(MAKE) --no-print-directory $(B)/check_llama2 $(B)/llama2-chat
	LLAMA2_CHAT_BIN=$(abspath $(B)/llama2-chat) ASAN_OPTIONS=detect_leaks=1 $(B)/check_llama2

clean:
	rm -rf build llama2-chat

-include $(shell find build -name '*.d' 2>/dev/null)

# Benchmarks: bench/run.sh makes the synthetic models when missing and
# prints the tables (BENCH_QUICK=1: the 1.1B shape only).
BENCH_ENGINE := $(patsubst %.c,$(B)/%.o,$(COMMON_SRC) $(ENGINE_SRC) $(STORAGE_SRC))
$(B)/mkmodel: bench/mkmodel.c $(BENCH_ENGINE)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
$(B)/bench_chat: bench/bench_chat.c $(BENCH_ENGINE)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
$(B)/bench_db: bench/bench_db.c $(BENCH_ENGINE)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
$(B)/bwprobe: bench/bwprobe.c
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
# Not part of `make bench`: it drops a file from the page cache (see its top).
$(B)/prefetch_cold: bench/prefetch_cold.c $(BENCH_ENGINE)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
# Not part of `make bench` either: the decode kernels' one-stream rate (see its top).
$(B)/kstream: bench/kstream.c $(BENCH_ENGINE)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

bench: deps
	@$(MAKE) --no-print-directory llama2-chat $(B)/mkmodel $(B)/bench_chat $(B)/bench_db $(B)/bwprobe
	B=$(B) bench/run.sh

# Build and run one suite against chosen sources, apart from the rest of the
# tree (for developing a module while other modules are half-written):
#   make unit SUITE=quant SRCS="engine/quant.c engine/quant_simd.c engine/quant_avx2.c ..."
unit:
	@mkdir -p build/unit-$(SUITE)
	@echo "SUITE($(SUITE))" > build/unit-$(SUITE)/suites.h
	$(CC) $(CFLAGS) -Ibuild/unit-$(SUITE) -o build/unit-$(SUITE)/run tests/check_main.c tests/testutil.c tests/check_$(SUITE).c $(SRCS) $(LDLIBS) $(CHECK_LIBS)
	build/unit-$(SUITE)/run

# ---- fuzzing (libFuzzer; clang from Debian) ------------------------------
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="gguf l2c"]
# builds build/fuzz/fuzz-<target> (tests/fuzz/targets.c under ASan + UBSan)
# and runs each for FUZZ_SECONDS from build/fuzz/corpus-<target>/, seeded at
# run time from tiny models and golden texts (tests/fuzz/mkseeds), the
# fixture models, tests/fuzz/seeds/<target>/ and tests/fuzz/regress/<target>/.
# A crash is written to build/fuzz/crash-<target>/; fix it and keep the
# input under tests/fuzz/regress/<target>/ (check_regress replays them all).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= gguf l2c tok_encode tok_decode dialog import input
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -g -O1 $(ARCH) -fopenmp -pthread -fno-omit-frame-pointer \
                -fsanitize=address,undefined -fno-sanitize-recover=all -I. $(PKG_CFLAGS)
FZ           := build/fuzz
FUZZ_OBJ     := $(patsubst %.c,$(FZ)/obj/%.o,$(COMMON_SRC) $(ENGINE_SRC) $(STORAGE_SRC) ui/input.c ui/wrap.c \
                app/dialog.c tests/fuzz/targets.c)

$(FZ)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FZ)/fuzz-%: tests/fuzz/fuzz_main.c $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -DFUZZ_TARGET=fuzz_$* -o $@ $^ $(LDLIBS)

$(FZ)/mkseeds: tests/fuzz/mkseeds.c $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $^ $(LDLIBS)

fuzz-build: $(addprefix $(FZ)/fuzz-,$(FUZZ_TARGETS)) $(FZ)/mkseeds

fuzz: deps
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || { echo "fuzz: $(FUZZ_CC) not found (apt-get install clang)"; exit 1; }
	@$(MAKE) --no-print-directory fuzz-build
	@fx=$${LLAMA2_CHAT_FIXTURES:-../shared}; fail=0; \
	ASAN_OPTIONS=detect_leaks=1 $(FZ)/mkseeds $(FZ) $$fx || exit 1; \
	for t in $(FUZZ_TARGETS); do \
	  c=$(FZ)/corpus-$$t; mkdir -p $$c $(FZ)/crash-$$t; \
	  for d in tests/fuzz/seeds/$$t tests/fuzz/regress/$$t; do \
	    [ -d $$d ] && find $$d -type f -exec cp {} $$c/ \; ; done; \
	  case $$t in \
	    gguf) [ -d $$fx/models ] && find $$fx/models -name '*.gguf' -size -2500k -exec cp {} $$c/ \; ;; \
	    l2c) [ -d $$fx/models ] && find $$fx/models -name 'stories*.bin' -exec cp {} $$c/ \; ;; \
	  esac; \
	  echo "fuzz $$t: $(FUZZ_SECONDS) s"; \
	  OMP_NUM_THREADS=1 $(FZ)/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -timeout=30 -print_final_stats=1 \
	    -artifact_prefix=$(FZ)/crash-$$t/ $$c 2>$(FZ)/log-$$t.txt || { fail=1; echo "fuzz $$t: FAILED, see $(FZ)/log-$$t.txt"; }; \
	  grep -E '^(stat::number_of_executed_units|stat::new_units_added|Done)' $(FZ)/log-$$t.txt | tr '\n' ' '; echo; \
	done; exit $$fail

.PHONY: fuzz-build

# valgrind memcheck (tests/check_valgrind.c) on a binary valgrind can run:
# -march=native may emit AVX-512, which valgrind cannot execute, so this
# builds the PORTABLE=1 binary and runs the valgrind suite against it.
# (Plain make check runs the suite too when build/portable/llama2-chat
# exists, and skips it, counted, when the native binary cannot be run.)
check-valgrind: deps
	@$(MAKE) --no-print-directory PORTABLE=1 build/portable/llama2-chat
	@$(MAKE) --no-print-directory $(B)/check_llama2 $(B)/llama2-chat
	LLAMA2_CHAT_BIN=$(abspath $(B)/llama2-chat) LLAMA2_CHAT_VALGRIND_BIN=$(abspath build/portable/llama2-chat) \
	    CK_RUN_SUITE=valgrind $(B)/check_llama2

.PHONY: check-valgrind
