// testwork.h: the workspace of one kernel call, for the tests that call the C
// kernels themselves: the size its kern_work.h function states, for OpenMP's
// threads at the call, so that AddressSanitizer sees a kernel that uses more.
// It lives until the next call (one kernel call at a time).
#ifndef CAEC_TESTWORK_H
#define CAEC_TESTWORK_H

#include "kern.h"

static inline KWork work_of(KWorkSize need) {
  static KWork w;
  kwork_free(&w);
  w = kwork_alloc(need);
  return w;
}

#endif
