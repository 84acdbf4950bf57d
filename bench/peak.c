// peak.c: the machine's measured peaks, the roofline every other number is
// read against.
//   fma           independent FMA chains in registers, on every OpenMP thread:
//                 fp32 FLOP/s (one FMA = 2 FLOPs per lane), the vector width
//                 of the build (AVX-512, AVX2 or portable mul+add);
//   stream_copy   b[i] = a[i]          over arrays far larger than the caches:
//   stream_triad  a[i] = b[i] + s c[i] bytes/s, counted as STREAM does (no
//                 write-allocate traffic).
// usage: peak [--mib M] [--smoke]   (threads: OMP_NUM_THREADS; raw CSV rows on stdout)
// M: MiB per stream array (default 128); --smoke: short runs on small arrays.
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
typedef float vf __attribute__((vector_size(64)));
static const char isa[] = "avx512";
static inline vf vfma(vf a, vf b, vf c) { return (vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c); }
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
typedef float vf __attribute__((vector_size(32)));
static const char isa[] = "avx2";
static inline vf vfma(vf a, vf b, vf c) { return (vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c); }
#else
typedef float vf __attribute__((vector_size(16)));
static const char isa[] = "portable";
static inline vf vfma(vf a, vf b, vf c) { return a * b + c; }
#endif

// Chains: more than FMA latency x FMA units on any x86 core (Zen 1: 5 x 1 for 256 bits;
// Skylake-X: 4 x 2), few enough to stay in the 16 registers of AVX2.
enum { VW = sizeof(vf) / sizeof(float), CHAINS = 12 };

static volatile float sink; // keeps the chains' results alive

typedef struct FmaJob {
  long iters;
} FmaJob;

static void fma_run(void *arg) {
  const long iters = ((const FmaJob *)arg)->iters;
#pragma omp parallel
  {
    vf acc[CHAINS], m = (vf){0} + 0.9999999f, a = (vf){0} + 1e-7f; // a fixed point near 1: no denormals
    for (int c = 0; c < CHAINS; c++)
      acc[c] = (vf){0} + (float)c;
    for (long i = 0; i < iters; i++)
      for (int c = 0; c < CHAINS; c++)
        acc[c] = vfma(acc[c], m, a);
    float s = 0;
    for (int c = 0; c < CHAINS; c++)
      for (int l = 0; l < VW; l++)
        s += acc[c][l];
#pragma omp atomic
    sink += s;
  }
}

typedef struct StreamJob {
  float *a, *b, *c;
  size_t n;
  bool triad;
} StreamJob;

static void stream_run(void *arg) {
  const StreamJob *j = arg;
  float *restrict a = j->a, *restrict b = j->b;
  const float *restrict c = j->c;
  if (j->triad) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < j->n; i++)
      a[i] = b[i] + 3.0f * c[i];
  } else {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < j->n; i++)
      b[i] = a[i];
  }
}

// Each thread first touches the part of the arrays it streams (the same static schedule).
static float *first_touch(size_t n, float value) {
  float *x = bench_alloc(n * sizeof *x);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++)
    x[i] = value;
  return x;
}

static void report(const char *name, const char *impl, Timing t, double flops, double bytes, const char *note) {
  Row r = bench_ms_row("peak", name, impl, t);
  r.flops = flops, r.bytes = bytes, r.note = note;
  bench_row(&r);
}

int main(int argc, char **argv) {
  long mib = 128;
  bool smoke = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--smoke"))
      smoke = true;
    else if (!strcmp(argv[i], "--mib") && i + 1 < argc)
      mib = atol(argv[++i]);
    else
      mib = 0;
  }
  if (mib < 1)
    return fprintf(stderr, "usage: peak [--mib M] [--smoke]\n"), 2;
  if (smoke)
    mib = 8;
  bench_header();
  const int threads = bench_threads();
  FmaJob fj = {smoke ? 1L << 18 : 1L << 24};
  Protocol fp = {1, smoke ? 2 : 7, 0, false};
  char note[96];
  snprintf(note, sizeof note, "%d chains of %d lanes", CHAINS, VW);
  report("fma", isa, bench_time(&fp, fma_run, &fj), 2.0 * VW * CHAINS * (double)fj.iters * threads, 0, note);

  size_t n = (size_t)mib << 18; // floats per array
  StreamJob sj = {first_touch(n, 1.0f), first_touch(n, 2.0f), first_touch(n, 0.5f), n, false};
  Protocol sp = {1, smoke ? 2 : 10, 0, false};
  snprintf(note, sizeof note, "%ld MiB arrays", mib);
  report("stream_copy", "c", bench_time(&sp, stream_run, &sj), 0, 2.0 * sizeof(float) * (double)n, note);
  sj.triad = true;
  report("stream_triad", "c", bench_time(&sp, stream_run, &sj), 2.0 * (double)n, 3.0 * sizeof(float) * (double)n, note);
  free(sj.a), free(sj.b), free(sj.c);
  return 0;
}
