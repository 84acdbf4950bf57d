// augment_pixels.h: augment.c's loops over every pixel, the pixel draws
// (dropout and noise) and the min-max, private to the runtime. Two objects
// include it: augment.c, built for the build's baseline, and on x86-64
// augment_avx2.c, built for AVX2, which augment.c calls where the CPU has it
// (the baseline is SSE2 there, and AVX2's vectors are twice as wide).
#ifndef CAEC_AUGMENT_PIXELS_H
#define CAEC_AUGMENT_PIXELS_H

#include "rng.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE__)
#include <immintrin.h>
#endif

// The loops run on vectors of VW floats (GCC and clang vector extensions): 8
// where the object targets AVX, else 4 (SSE on x86-64, NEON on arm64, plain
// code elsewhere). Every lane goes through the same operations whatever the
// width and the instructions, so the values are the same. Each product is
// rounded before it is summed: GCC's ISO C mode never fuses a * b + c into one
// rounding, clang's default does within an expression where the target has
// FMA, hence the pragma (neither object is built for FMA either).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
#if defined(__AVX__)
enum { VW = 8 };
#else
enum { VW = 4 };
#endif
typedef float vf __attribute__((vector_size(4 * VW)));
typedef int32_t vi __attribute__((vector_size(4 * VW)));
typedef uint32_t vu __attribute__((vector_size(4 * VW)));
// The vector helpers are inlined even without optimisation, where calls
// passing vectors through memory would make debug and sanitizer builds crawl.
#define INLINE static inline __attribute__((always_inline))

// The groups of 8 Philox blocks that n pixels take: 3 words for 2 pixels,
// in sets of 16 pixels (augment.h).
static inline uint64_t pixel_groups(uint64_t n) { return (3 * ((n + 15) / 16) + 3) / 4; }

// Loads and stores through types free of alignment and aliasing assumptions
// (a memcpy would do, but sanitizers check each one at length).
typedef float vf_any __attribute__((vector_size(4 * VW), aligned(4), may_alias));
typedef uint32_t vu_any __attribute__((vector_size(4 * VW), aligned(4), may_alias));
INLINE vf loadv(const float *p) { return *(const vf_any *)p; }
INLINE vu loaduv(const uint32_t *p) { return *(const vu_any *)p; }
INLINE void storev(float *p, vf v) { *(vf_any *)p = v; }

// Lane by lane, a where mask is set (all ones), b where it is clear.
INLINE vf selectv(vi mask, vf a, vf b) { return (vf)((mask & (vi)a) | (~mask & (vi)b)); }

// Correctly rounded, as IEEE requires of every square root.
INLINE vf sqrtv(vf x) {
#if defined(__AVX__)
  return (vf)_mm256_sqrt_ps((__m256)x);
#elif defined(__SSE__)
  return (vf)_mm_sqrt_ps((__m128)x);
#else
  for (int j = 0; j < VW; j++)
    x[j] = sqrtf(x[j]);
  return x;
#endif
}

// Lane by lane minimum and maximum of values that are not NaN.
INLINE vf minv(vf a, vf b) {
#if defined(__AVX__)
  return (vf)_mm256_min_ps((__m256)a, (__m256)b);
#elif defined(__SSE__)
  return (vf)_mm_min_ps((__m128)a, (__m128)b);
#else
  return selectv(a < b, a, b);
#endif
}
INLINE vf maxv(vf a, vf b) {
#if defined(__AVX__)
  return (vf)_mm256_max_ps((__m256)a, (__m256)b);
#elif defined(__SSE__)
  return (vf)_mm_max_ps((__m128)a, (__m128)b);
#else
  return selectv(a > b, a, b);
#endif
}

// -2 ln u for u = k 2^-24, k odd in [1, 2^24) and given as a float (exact):
// u = 2^e (1 + f) with 1 + f in [sqrt(1/2), sqrt(2)), and ln(1 + f) = f +
// f^2 Q(f), Q of degree 6 fitted for the least relative error on that
// interval (Lawson's iteration): 1.8e-7, 2.4e-7 with the float rounding
// (against double ln on 300,000 u; test_augment checks the normals built on
// it). The factor -2 is in the terms (Q's coefficients, -2 f, -2 ln 2): a
// power of 2, it changes no rounding, and the last multiply leaves the chain
// of dependent operations.
INLINE vf minus_two_ln(vf k) {
  static const float Q[7] = {2.016474456e-1f, -3.236100078e-1f, 3.448645175e-1f, -3.981376588e-1f,
                             4.994245768e-1f, -6.666942835e-1f, 1.000006437f}; // -2 Q, highest power first
  // Adding the bits of 1 - sqrt(1/2) to the significand carries into the
  // exponent exactly when the significand is at least sqrt(1/2); k's
  // exponent is u's plus 24.
  vu bits = (vu)k + (0x3f800000u - 0x3f3504f3u);
  vf e = __builtin_convertvector((vi)(bits >> 23) - (127 + 24), vf);
  vf f = (vf)((bits & 0x007fffffu) + 0x3f3504f3u) - 1.0f; // exact: 1 + f is within a factor 2 of 1
  // Q by Estrin's scheme: pairs of terms, then pairs of pairs, independent
  // products that overlap where Horner's would wait for each other.
  vf f2 = f * f, f4 = f2 * f2;
  vf q = (f * Q[5] + Q[6] + f2 * (f * Q[3] + Q[4])) + f4 * (f * Q[1] + Q[2] + f2 * Q[0]);
  return f * -2.0f + f2 * q + e * -1.386294365f;
}

// sin t and cos t for t in [0, pi/4], by Cephes's sinf and cosf polynomials
// (cos's in Horner's form): absolute errors below 1e-7.
INLINE void sincosv(vf t, vf *s, vf *c) {
  vf z = t * t;
  *s = ((-1.9515295891E-4f * z + 8.3321608736E-3f) * z - 1.6666654611E-1f) * z * t + t;
  *c = (((2.443315711809948E-5f * z - 1.388731625493765E-3f) * z + 4.166664568298827E-2f) * z - 0.5f) * z + 1.0f;
}

// Two normals of sd sd per lane by Box-Muller, radius sqrt(-2 ln u) and a
// uniform angle: u = (2k + 1) 2^-24 from the top 23 bits k of word a (in
// (0, 1), exact, so the radius is finite and at most 5.8); word b picks the
// angle's octant with its top three bits (two signs and whether cos and sin
// swap, which reflects the angle about 45 degrees) and the angle in it, t in
// [0, pi/4), with the rest. Within 1e-6 of the exact transform of the same u
// and angle (test_augment measures it): far below what a test of normality
// could see.
INLINE void normalsv(vu a, vu b, float sd, vf *z0, vf *z1) {
  vf radius = sqrtv(minus_two_ln(__builtin_convertvector((vi)((a >> 8) | 1u), vf))) * sd;
  vf t = __builtin_convertvector((vi)(b & 0x1fffffffu), vf) * (float)(3.14159265358979323846 / 4 * 0x1p-29);
  vf s, c;
  sincosv(t, &s, &c);
  vi swap = (vi)(b << 2) >> 31; // bit 29, spread
  vf x = selectv(swap, s, c), y = selectv(swap, c, s);
  *z0 = radius * (vf)((vu)x ^ (b & 0x80000000u)); // signs flipped in the bits, exactly
  *z1 = radius * (vf)((vu)y ^ (b << 1 & 0x80000000u));
}

// What the pixel draws of an image share: a pixel drops when its 16-bit draw
// is below drop; survivors are scaled; the noise has sd sd.
typedef struct Noise {
  int32_t drop;
  float scale, sd;
} Noise;

// The factor of each pixel from its 16-bit draw: 0 where it drops, else scale.
INLINE vf keepv(vu draw, const Noise *p) {
  vi dropped = (vi)draw < p->drop;
  return (vf)(~dropped & (vi)((vf){0} + p->scale));
}

// Pixels src[0..16) to dst[0..16) (which may be src), set s of augment.h's
// layout, from its vectors of words v[0..3): lane j gives pixels j and 8 + j
// a Box-Muller pair from v[0] and v[1], and their dropout draws from the high
// and low halves of v[2]. A dropped pixel is multiplied by 0 rather than
// replaced.
INLINE void noise16(const float *src, float *dst, const uint32_t v[3][8], const Noise *p) {
  for (int half = 0; half < 8; half += VW) {
    vu drop = loaduv(v[2] + half);
    vf z0, z1;
    normalsv(loaduv(v[0] + half), loaduv(v[1] + half), p->sd, &z0, &z1);
    vf x0 = loadv(src + half), x1 = loadv(src + 8 + half);
    storev(dst + half, x0 * keepv(drop >> 16, p) + z0);
    storev(dst + 8 + half, x1 * keepv(drop & 0xffffu, p) + z1);
  }
}

enum { CHUNK = 8 }; // sets of 16 pixels (6 groups of blocks) drawn at once

// augment_dropout_noise from src to dst (which may be src), n pixels.
static void dropout_noise(const float *src, float *dst, size_t n, double r_drop, double r_noise, uint64_t seed,
                          uint64_t stream, uint64_t index) {
  const Noise p = {.drop = (int32_t)(r_drop * 65536.0), .scale = (float)(1.0 / (1.0 - r_drop)), .sd = (float)r_noise};
  uint32_t words[3 * CHUNK][8];
  for (size_t i = 0; i < n; i += 16 * CHUNK, index += 8 * pixel_groups(16 * CHUNK)) {
    size_t left = n - i, sets = left < 16 * CHUNK ? (left + 15) / 16 : CHUNK;
    rng_blocks(seed, stream, index, pixel_groups(16 * sets), words);
    for (size_t s = 0; s < sets; s++) {
      size_t at = i + 16 * s;
      if (n - at >= 16) {
        noise16(src + at, dst + at, words + 3 * s, &p);
      } else { // the last 1..15 pixels, through a buffer a whole set fits
        float buf[16] = {0};
        memcpy(buf, src + at, (n - at) * sizeof *buf);
        noise16(buf, buf, words + 3 * s, &p);
        memcpy(dst + at, buf, (n - at) * sizeof *buf);
      }
    }
  }
}

// The lowest and highest of x[0..n), n >= 1.
static void range_of(const float *x, size_t n, float *lo, float *hi) {
  float l = x[0], h = x[0];
  size_t i = 0;
  if (n >= VW) {
    vf vl = loadv(x), vh = vl;
    for (i = VW; i + VW <= n; i += VW) {
      vf v = loadv(x + i);
      vl = minv(vl, v), vh = maxv(vh, v);
    }
    for (int j = 0; j < VW; j++)
      l = vl[j] < l ? vl[j] : l, h = vh[j] > h ? vh[j] : h;
  }
  for (; i < n; i++)
    l = x[i] < l ? x[i] : l, h = x[i] > h ? x[i] : h;
  *lo = l, *hi = h;
}

// Min-max to [0, 1] as minmax01 (resize.h) does it, in halves so that any
// finite values stay finite, but multiplying by the reciprocal of the range
// where minmax01 divides (a division per pixel costs as much as the rest of
// the step): within 2 ulps of minmax01's values. The reciprocal rounded up and
// the products capped at 1 keep the lowest value exactly 0 and the highest
// exactly 1.
static void renormalise(float *x, size_t n) {
  if (n == 0)
    return;
  float lo, hi;
  range_of(x, n, &lo, &hi);
  float range = 0.5f * hi - 0.5f * lo;
  if (range == 0)
    range = 1; // every x - lo is 0
  float inv = 1.0f / range;
  if (range * inv < 1.0f)
    inv = nextafterf(inv, INFINITY);
  const vf one = (vf){0} + 1.0f;
  size_t i = 0;
  for (; i + VW <= n; i += VW)
    storev(x + i, minv((0.5f * loadv(x + i) - 0.5f * lo) * inv, one));
  for (; i < n; i++) {
    float y = (0.5f * x[i] - 0.5f * lo) * inv;
    x[i] = y < 1.0f ? y : 1.0f;
  }
}

// The AVX2 object's entry points (augment_avx2.c): dropout_noise and renormalise.
void augment_dropout_noise_avx2(const float *src, float *dst, size_t n, double r_drop, double r_noise, uint64_t seed,
                                uint64_t stream, uint64_t index);
void augment_renormalise_avx2(float *x, size_t n);

#endif
