#include "MallocCounter.h"
#include <stddef.h>
#include <errno.h>

#if defined(__GLIBC__)
#include <stdatomic.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static atomic_int counting = 0;
static atomic_llong allocations = 0;

static inline void note(void) {
    if (atomic_load_explicit(&counting, memory_order_relaxed)) atomic_fetch_add(&allocations, 1);
}

void *malloc(size_t n) { note(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { note(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { note(); return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
void *memalign(size_t al, size_t n) { note(); return __libc_memalign(al, n); }
void *aligned_alloc(size_t al, size_t n) { note(); return __libc_memalign(al, n); }
int posix_memalign(void **out, size_t al, size_t n) {
    note();
    void *p = __libc_memalign(al, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

void ls_malloc_counter_start(void) { atomic_store(&allocations, 0); atomic_store(&counting, 1); }
int64_t ls_malloc_counter_stop(void) { atomic_store(&counting, 0); return atomic_load(&allocations); }
int ls_malloc_counter_available(void) { return 1; }
#else
void ls_malloc_counter_start(void) {}
int64_t ls_malloc_counter_stop(void) { return 0; }
int ls_malloc_counter_available(void) { return 0; }
#endif
