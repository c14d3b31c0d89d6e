/*
 * fuzz_main.c: one libFuzzer binary per target: built with
 * -DFUZZ_TARGET=fuzz_<name> (see the fuzz rules at the end of the Makefile).
 */
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return FUZZ_TARGET(data, size);
}
