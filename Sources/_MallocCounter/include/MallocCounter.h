// _MallocCounter: counts heap allocations, for the test that a steady-state training step allocates nothing.
// Not an API. Linked only into the test executable, where its malloc family interposes the C library's for
// the whole process and forwards to glibc's own implementation.
#ifndef LAYERSPLIT_MALLOC_COUNTER_H
#define LAYERSPLIT_MALLOC_COUNTER_H
#include <stdint.h>

/// Starts counting allocations (malloc, calloc, realloc and the aligned variants) from zero.
void ls_malloc_counter_start(void);
/// Stops counting and returns how many allocations were made since the start.
int64_t ls_malloc_counter_stop(void);
/// Whether the interposition is active on this platform (glibc only).
int ls_malloc_counter_available(void);
#endif
