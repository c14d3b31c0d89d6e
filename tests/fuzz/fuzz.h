/*
 * fuzz.h: the fuzz targets' entry points.  Each takes one input of any
 * bytes and returns 0; a bug shows up as a crash, a sanitizer report or an
 * abort() from a broken invariant.  targets.c defines them; fuzz_main.c
 * turns one of them into a libFuzzer binary (clang, make fuzz), and
 * tests/check_regress.c replays every file under tests/fuzz/regress/<name>/
 * through the same functions in the normal build.
 *
 * Fixtures (the tokenizer, a GGUF vocabulary) are found through
 * $LLAMA2_CHAT_FIXTURES (default ../shared) and loaded once per process.
 */
#ifndef TESTS_FUZZ_FUZZ_H
#define TESTS_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>

typedef int (*fuzz_fn)(const uint8_t *data, size_t size);

int fuzz_gguf(const uint8_t *data, size_t size);       /* engine_open + a decode, GGUF bytes */
int fuzz_l2c(const uint8_t *data, size_t size);        /* the same, llama2.c checkpoint bytes */
int fuzz_tok_encode(const uint8_t *data, size_t size); /* encode any bytes, decode them back */
int fuzz_tok_decode(const uint8_t *data, size_t size); /* decode any int32 id sequence */
int fuzz_dialog(const uint8_t *data, size_t size);     /* dialog_parse + chat_render */
int fuzz_import(const uint8_t *data, size_t size);     /* import_conv + insert + export again */
int fuzz_input(const uint8_t *data, size_t size);      /* the line editor under key sequences */

struct fuzz_target {
	const char *name;
	fuzz_fn fn;
	int needs_fixtures;
};
/* Every target, ended by a NULL name. */
extern const struct fuzz_target fuzz_targets[];

#endif
