/*
 * fuzz_target.h - the libFuzzer entry point every fuzz target defines.
 */
#ifndef OUTBOX_TESTS_FUZZ_TARGET_H
#define OUTBOX_TESTS_FUZZ_TARGET_H

#include <stddef.h>
#include <stdint.h>

/*
 * Runs one input of size bytes through the code under test and checks its
 * invariants, calling abort() on a violation so libFuzzer reports it. Always
 * returns 0 (libFuzzer reserves other values).
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
