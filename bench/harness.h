// harness.h: what the benchmark's C programs share: a clock, the timing
// protocol (warm-up, repeats, median and min, optional cold caches), fast
// random fill, and the raw CSV row that bench/bench.py collects.
//
// Raw rows (bench/report.py derives rates, GFLOP/s, GB/s and shares from them):
//   section,name,impl,threads,batch,size,median,min,unit,flops,bytes,items,note
// median and min are in `unit` (ms for times); flops, bytes and items count
// one run (items: images or slices), 0 where they do not apply.
#ifndef CAEC_BENCH_HARNESS_H
#define CAEC_BENCH_HARNESS_H

#include "trainer.h" // caec_now

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>


typedef struct Timing {
  double median, min; // seconds
  int runs;
} Timing;

// How a measurement repeats: `warmup` untimed runs, then at least `reps` timed
// ones and more until `min_seconds` have passed (small kernels get more runs,
// so their median is not one scheduler hiccup), at most 1000. cold: the
// last-level cache is flushed before every timed run (outside the time).
typedef struct Protocol {
  int warmup, reps;
  double min_seconds;
  bool cold;
} Protocol;

Timing bench_time(const Protocol *p, void (*run)(void *), void *arg);

// Writes past the last-level cache, so the next run starts from memory.
void bench_flush_cache(void);

// x[i] uniform in [lo, hi), from a counter-based hash of (seed, i): the same
// values for any thread count, and fast enough for tensors of 10^8 floats.
void bench_fill(float *x, size_t count, uint64_t seed, float lo, float hi);

// 64-byte aligned, zeroed; exits with a message when out of memory.
void *bench_alloc(size_t bytes);

// OpenMP's thread count (the benchmark sets it with OMP_NUM_THREADS).
int bench_threads(void);

typedef struct Row {
  const char *section, *name, *impl;
  int threads, batch, size;
  double median, min; // in unit
  const char *unit;
  double flops, bytes, items;
  const char *note;
} Row;

void bench_header(void);
void bench_row(const Row *r);
// A Row from a Timing, its times in ms.
Row bench_ms_row(const char *section, const char *name, const char *impl, Timing t);

#endif
