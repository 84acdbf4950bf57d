// kern_simd.h: the native fp32 vector of the build, for the CPU kernels. A
// channel block (16 lanes, KB) is NV vectors of VW lanes: one on AVX-512,
// two on AVX2, four in portable C. GCC contracts a*b+c only with
// -ffp-contract=fast, which ISO C mode turns off, hence the FMA intrinsics.
#ifndef CAEC_KERN_SIMD_H
#define CAEC_KERN_SIMD_H

#include "kern_types.h"

#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
typedef float vf __attribute__((vector_size(64)));
enum { VW = 16 };
static inline vf vfma(vf a, vf b, vf c) { return (vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c); }
static inline vf vbc(float x) { return (vf)_mm512_set1_ps(x); }
static inline vf vmax0(vf a) { return (vf)_mm512_max_ps((__m512)a, _mm512_setzero_ps()); }
typedef double vd __attribute__((vector_size(64)));
static inline void vcvt(vf a, vd *lo, vd *hi) {
  *lo = (vd)_mm512_cvtps_pd(_mm512_castps512_ps256((__m512)a));
  *hi = (vd)_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd((__m512)a), 1)));
}
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
typedef float vf __attribute__((vector_size(32)));
enum { VW = 8 };
static inline vf vfma(vf a, vf b, vf c) { return (vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c); }
static inline vf vbc(float x) { return (vf)_mm256_set1_ps(x); }
static inline vf vmax0(vf a) { return (vf)_mm256_max_ps((__m256)a, _mm256_setzero_ps()); }
typedef double vd __attribute__((vector_size(32)));
static inline void vcvt(vf a, vd *lo, vd *hi) {
  *lo = (vd)_mm256_cvtps_pd(_mm256_castps256_ps128((__m256)a));
  *hi = (vd)_mm256_cvtps_pd(_mm256_extractf128_ps((__m256)a, 1));
}
#else
typedef float vf __attribute__((vector_size(16)));
enum { VW = 4 };
static inline vf vfma(vf a, vf b, vf c) { return a * b + c; }
static inline vf vbc(float x) { return (vf){x, x, x, x}; }
typedef int vi __attribute__((vector_size(16)));
static inline vf vmax0(vf a) { return (vf)((vi)(a > 0) & (vi)a); }
typedef double vd __attribute__((vector_size(16)));
static inline void vcvt(vf a, vd *lo, vd *hi) { *lo = (vd){a[0], a[1]}, *hi = (vd){a[2], a[3]}; }
#endif
// vmax0: max(a, 0) per lane, with NaN -> 0 like the scalar !(y > 0) ? 0 : y. vd: VW/2 doubles, and vcvt a
// vector's lanes in double, lower and upper half (GCC compiles generic double vectors of a whole vector's
// lanes, and their conversion, very slowly).
enum { NV = KB / VW };

#define INLINE static inline __attribute__((always_inline))

// memcpy keeps loads and stores free of alignment and aliasing assumptions; it compiles to vmovups.
INLINE vf vld(const float *p) {
  vf v;
  memcpy(&v, p, sizeof v);
  return v;
}
INLINE void vst(float *p, vf v) { memcpy(p, &v, sizeof v); }

// A block prologue on a vector (kern_blocks.h's BlockPro): x * scale + shift when on, then relu when asked.
// Every convolution kernel applies prologues through this one function, so all see the same bits.
INLINE vf vpro(vf x, vf scale, vf shift, bool on, bool relu) {
  x = on ? vfma(x, scale, shift) : x;
  return on && relu ? vmax0(x) : x;
}

#endif
