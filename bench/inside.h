// inside.h: included first (-include) into a generated trainer's source, it
// times every convolution kernel call (kc_gather, kc_scatter, kc_wgrad, and the
// Winograd kw_gather and kw_scatter) inside the training step, wall clock, and
// prints their total when the program ends:
//   inside: CALLS kernel calls, MS ms
// Each call site's first call (the warm-up step's) is left out, so that `bench
// --steps N` gives N steps' worth. bench.py sets it against the kernels timed
// alone (bench/README.md, "res_unet's kernels inside its step").
#ifndef CAEC_BENCH_INSIDE_H
#define CAEC_BENCH_INSIDE_H

#include "kern.h"
#include "trainer.h" // caec_now

#include <stdio.h>

static double inside_seconds;
static long inside_calls;

__attribute__((destructor)) static void inside_report(void) {
  printf("inside: %ld kernel calls, %.3f ms\n", inside_calls, 1e3 * inside_seconds);
}

#define CAEC_INSIDE(call)                                                                                              \
  do {                                                                                                                 \
    static bool seen_;                                                                                                 \
    const double t0_ = caec_now();                                                                                     \
    call;                                                                                                              \
    if (seen_)                                                                                                         \
      inside_seconds += caec_now() - t0_, inside_calls++;                                                              \
    seen_ = true;                                                                                                      \
  } while (0)
#define kc_gather(...) CAEC_INSIDE((kc_gather)(__VA_ARGS__))
#define kc_scatter(...) CAEC_INSIDE((kc_scatter)(__VA_ARGS__))
#define kc_wgrad(...) CAEC_INSIDE((kc_wgrad)(__VA_ARGS__))
#define kw_gather(...) CAEC_INSIDE((kw_gather)(__VA_ARGS__))
#define kw_scatter(...) CAEC_INSIDE((kw_scatter)(__VA_ARGS__))

#endif
