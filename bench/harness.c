// harness.c: timing, filling and CSV output for the benchmark programs (harness.h).
#include "harness.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

enum { MAX_RUNS = 1000 };

Timing bench_time(const Protocol *p, void (*run)(void *), void *arg) {
  static double secs[MAX_RUNS];
  for (int i = 0; i < p->warmup; i++)
    run(arg);
  double total = 0;
  int n = 0;
  while (n < MAX_RUNS && (n < p->reps || total < p->min_seconds)) {
    if (p->cold)
      bench_flush_cache();
    double t0 = caec_now();
    run(arg);
    secs[n] = caec_now() - t0;
    total += secs[n++];
  }
  qsort(secs, (size_t)n, sizeof *secs, by_value);
  return (Timing){n % 2 ? secs[n / 2] : 0.5 * (secs[n / 2 - 1] + secs[n / 2]), secs[0], n};
}

// 64 MiB: several times any last-level cache this runs on (the EPYC's is 8 MiB per core complex).
enum { FLUSH_FLOATS = 16 << 20 };

void bench_flush_cache(void) {
  static float *buf;
  if (!buf)
    buf = bench_alloc(sizeof *buf * FLUSH_FLOATS);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < FLUSH_FLOATS; i++)
    buf[i] += 1.0f;
}

// splitmix64's finaliser: a good hash of a counter.
static uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void bench_fill(float *x, size_t count, uint64_t seed, float lo, float hi) {
  const uint64_t base = mix(seed + 0x9e3779b97f4a7c15ull);
  const float scale = (hi - lo) / 16777216.0f; // 24 random bits
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < count; i++)
    x[i] = lo + scale * (float)(mix(base + i) >> 40);
}

void *bench_alloc(size_t bytes) {
  size_t rounded = (bytes + 63) / 64 * 64;
  void *p = aligned_alloc(64, rounded ? rounded : 64);
  if (!p) {
    fprintf(stderr, "bench: out of memory (%zu bytes)\n", bytes);
    exit(1);
  }
  return memset(p, 0, rounded ? rounded : 64);
}

int bench_threads(void) { return omp_get_max_threads(); }

// A CSV field, quoted when it holds a comma or a quote.
static void field(const char *s) {
  if (!strpbrk(s, ",\"\n")) {
    fputs(s, stdout);
    return;
  }
  putchar('"');
  for (; *s; s++) {
    if (*s == '"')
      putchar('"');
    putchar(*s == '\n' ? ' ' : *s);
  }
  putchar('"');
}

void bench_header(void) { puts("section,name,impl,threads,batch,size,median,min,unit,flops,bytes,items,note"); }

void bench_row(const Row *r) {
  const char *text[] = {r->section, r->name, r->impl};
  for (int i = 0; i < 3; i++)
    field(text[i]), putchar(',');
  printf("%d,%d,%d,%.6g,%.6g,", r->threads, r->batch, r->size, r->median, r->min);
  field(r->unit);
  printf(",%.6g,%.6g,%.6g,", r->flops, r->bytes, r->items);
  field(r->note ? r->note : "");
  putchar('\n');
  fflush(stdout);
}

Row bench_ms_row(const char *section, const char *name, const char *impl, Timing t) {
  return (Row){.section = section,
               .name = name,
               .impl = impl,
               .threads = bench_threads(),
               .median = 1e3 * t.median,
               .min = 1e3 * t.min,
               .unit = "ms"};
}
