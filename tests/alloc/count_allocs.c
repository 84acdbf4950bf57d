// count_allocs.c: no allocation inside a training step or an inference forward.
// It drives the model linked in (caec_main_model): a step and a forward first,
// then steps with every loss and optimizer, dropout on, and forwards, while it
// counts every allocation and free that the generated program and the runtime
// make: there must be none.
//
// Counting. The program is linked with --wrap for malloc, calloc, realloc,
// free, posix_memalign, aligned_alloc and memalign (CMakeLists.txt), so every
// call of them in the generated source and the runtime's static libraries
// comes here first and then goes on to the real one (AddressSanitizer's, in
// the sanitizer build). OpenMP's own bookkeeping inside libgomp is not ours
// and not counted.
#include "trainer.h"
#include "testutil.h"

#include <stdatomic.h>

static atomic_bool counting;
static atomic_long allocs, frees;

static void count(atomic_long *n) {
  if (atomic_load(&counting))
    atomic_fetch_add(n, 1);
}

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void __real_free(void *p);
int __real_posix_memalign(void **p, size_t alignment, size_t size);
void *__real_aligned_alloc(size_t alignment, size_t size);
void *__real_memalign(size_t alignment, size_t size);

void *__wrap_malloc(size_t size) {
  count(&allocs);
  return __real_malloc(size);
}
void *__wrap_calloc(size_t n, size_t size) {
  count(&allocs);
  return __real_calloc(n, size);
}
void *__wrap_realloc(void *p, size_t size) {
  count(&allocs);
  return __real_realloc(p, size);
}
void __wrap_free(void *p) {
  if (p)
    count(&frees);
  __real_free(p);
}
int __wrap_posix_memalign(void **p, size_t alignment, size_t size) {
  count(&allocs);
  return __real_posix_memalign(p, alignment, size);
}
void *__wrap_aligned_alloc(size_t alignment, size_t size) {
  count(&allocs);
  return __real_aligned_alloc(alignment, size);
}
void *__wrap_memalign(size_t alignment, size_t size) {
  count(&allocs);
  return __real_memalign(alignment, size);
}

extern const CaecModel *const caec_main_model;

int main(void) {
  const CaecModel *m = caec_main_model;
  CaecState s;
  CHECK(caec_state_new(m, &s), "%s: the state", m->name);
  caec_init(m, &s, 7);
  size_t pixels = (size_t)m->batch * (size_t)m->height * (size_t)m->width;
  float *x = malloc(pixels * sizeof *x), *y = malloc(pixels * sizeof *y);
  for (size_t i = 0; i < pixels; i++)
    x[i] = (float)(i * 37 % 101) / 100.0f;
  CaecHyper h = m->defaults;
  h.dropout = h.update = true;
  m->train_step(&s, &h, x, y);
  m->forward(&s, x, y);

  atomic_store(&counting, true);
  int steps = 0, forwards = 0;
  for (int loss = 0; loss < CAEC_NLOSSES; loss++)
    for (int optim = 0; optim < CAEC_NOPTIMS; optim++) {
      h.loss = (CaecLoss)loss, h.optimizer = (CaecOptim)optim;
      for (int k = 0; k < 2; k++, steps++)
        m->train_step(&s, &h, x, y);
      for (int k = 0; k < 2; k++, forwards++)
        m->forward(&s, x, y);
    }
  atomic_store(&counting, false);
  CHECK(allocs == 0 && frees == 0, "%s: %ld allocations and %ld frees in %d training steps and %d forwards",
        m->name, (long)allocs, (long)frees, steps, forwards);

  // The counter counts: one allocation and one free, through a pointer the compiler cannot elide.
  atomic_store(&allocs, 0), atomic_store(&frees, 0);
  atomic_store(&counting, true);
  void *volatile p = malloc(16);
  free(p);
  atomic_store(&counting, false);
  CHECK(allocs == 1 && frees == 1, "the counter saw %ld allocations and %ld frees of 1", (long)allocs, (long)frees);

  free(x), free(y);
  caec_state_free(m, &s);
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}
