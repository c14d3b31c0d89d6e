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
PKGS    := ncursesw sqlite3 jansson check
DEBS    := build-essential pkg-config libncursesw5-dev libsqlite3-dev libjansson-dev check tmux

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
WERROR :=
ifeq ($(CI),true)
  WERROR := -Werror
endif
ifeq ($(WERROR),1)
  WERROR := -Werror
endif

B := build/$(VARIANT)

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs ncursesw sqlite3 jansson 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)

CFLAGS  ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE -g $(OPT) $(ARCH) -fopenmp -pthread \
           -Wall -Wextra -Wshadow -Wmissing-prototypes -Wno-unused-parameter $(WERROR) \
           -I. $(PKG_CFLAGS)
LDLIBS  += $(PKG_LIBS) -fopenmp -pthread -lm

ENGINE_SRC  := $(wildcard engine/*.c)
STORAGE_SRC := $(wildcard storage/*.c)
UI_SRC      := $(wildcard ui/*.c)
APP_SRC     := $(filter-out app/main.c,$(wildcard app/*.c))
TEST_SRC    := $(wildcard tests/check_*.c)

LIB_OBJ  := $(patsubst %.c,$(B)/%.o,$(ENGINE_SRC) $(STORAGE_SRC) $(UI_SRC) $(APP_SRC))
TEST_OBJ := $(patsubst %.c,$(B)/%.o,$(TEST_SRC) tests/testutil.c)

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
	cp $< $@

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

# Build and run one suite against chosen sources, apart from the rest of the
# tree (for developing a module while other modules are half-written):
#   make unit SUITE=quant SRCS="engine/quant.c engine/quant_simd.c"
unit:
	@mkdir -p build/unit-$(SUITE)
	@echo "SUITE($(SUITE))" > build/unit-$(SUITE)/suites.h
	$(CC) $(CFLAGS) -Ibuild/unit-$(SUITE) -o build/unit-$(SUITE)/run tests/check_main.c tests/testutil.c tests/check_$(SUITE).c $(SRCS) $(LDLIBS) $(CHECK_LIBS)
	build/unit-$(SUITE)/run
