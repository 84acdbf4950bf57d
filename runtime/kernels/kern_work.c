// kern_work.c: a kernel's thread team and slice of its workspace (kern_work.h),
// and workspaces for the callers that run kernels outside a trainer.
#include "kern.h"

#include "errors.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kwork_team(KWork w) {
  int max = omp_get_max_threads();
  return w.threads.count > 0 && w.threads.count < max ? w.threads.count : max;
}

unsigned char *kwork_mine(KWork w, size_t bytes) {
  if (!bytes)
    return NULL;
  int me = omp_get_thread_num();
  if (me >= w.threads.count || bytes > w.threads.bytes) {
    fprintf(stderr, "kern: thread %d needs %zu bytes of workspace; it has %d slices of %zu\n", me, bytes,
            w.threads.count, w.threads.bytes);
    abort();
  }
  return w.threads.base + (size_t)me * w.threads.bytes;
}

KWork kwork_alloc(KWorkSize need) {
  int count = omp_get_max_threads();
  size_t thread = kwork_round(need.thread);
  return (KWork){need.shared ? err_calloc(need.shared, 1) : NULL,
                 {err_calloc((size_t)count, thread ? thread : 1), thread, count}};
}

void kwork_free(KWork *w) {
  free(w->shared);
  free(w->threads.base);
  memset(w, 0, sizeof *w);
}
