// augment.c: the seed's input corruption (see augment.h).
#include "augment.h"

#include "rng.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE__)
#include <immintrin.h>
#endif

// The pixel draws and the min-max scan run on vectors of VW floats (GCC and
// clang vector extensions): 8 where the build targets AVX, else 4 (SSE on
// x86-64, NEON on arm64, plain code elsewhere). Every lane goes through the
// same operations whatever the width and the instructions, so the values are
// the same. Each product is rounded before it is summed: GCC's ISO C mode
// never fuses a * b + c into one rounding, clang's default does within an
// expression where the target has FMA, hence the pragma.
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

AugmentParams augment_defaults(void) {
  return (AugmentParams){.enabled = 1,
                         .drop_max = 0.04,
                         .noise_max = 0.04,
                         .cutout_p = 0.2,
                         .cutout_min = 10,
                         .cutout_max = 29,
                         .offset_min = 10,
                         .offset_max = 99,
                         .cutout_diagonal = 1,
                         .blur_p = 0.1,
                         .blur_sigma = 0.6,
                         .gamma_max = 1.0}; // the optional steps off: the seed's corruption
}

AugmentParams augment_scaled(AugmentParams p, int size) {
  double f = size / 128.0;
  p.cutout_min = (int)lround(p.cutout_min * f), p.cutout_max = (int)lround(p.cutout_max * f);
  p.offset_min = (int)lround(p.offset_min * f), p.offset_max = (int)lround(p.offset_max * f);
  return p;
}

AugmentParams augment_for_size(int size) { return augment_scaled(augment_defaults(), size); }

// The groups of 8 Philox blocks that n pixels take: 3 words for 2 pixels,
// in sets of 16 pixels (augment.h).
static uint64_t pixel_groups(uint64_t n) { return (3 * ((n + 15) / 16) + 3) / 4; }

const char AUGMENT_OPTIONS_HELP[] =
    "  --cutout diagonal|anywhere  the cutout's centre: on the diagonal as the seed's (default), or uniform\n"
    "  --flip-lr P, --flip-ud P    left-right and up-down flips, each with probability P (default 0)\n"
    "  --rotate DEG                rotations by up to DEG degrees, 0 to 45 (default 0)\n"
    "  --gamma G                   gamma correction by 1/G to G, G from 1 (none, the default) to 3\n"
    "  --bias B                    a smooth multiplicative bias field, coefficients up to B (0 to 0.2)\n";

int augment_set(AugmentParams *p, const char *name, const char *value, char *err, size_t errlen) {
  static const struct {
    const char *name;
    double lo, hi;
    size_t offset;
  } steps[] = {{"flip-lr", 0, 1, offsetof(AugmentParams, flip_lr_p)},
               {"flip-ud", 0, 1, offsetof(AugmentParams, flip_ud_p)},
               {"rotate", 0, 45, offsetof(AugmentParams, rotate_max_deg)},
               {"gamma", 1, 3, offsetof(AugmentParams, gamma_max)},
               {"bias", 0, 0.2, offsetof(AugmentParams, bias_max)}};
  size_t k = 0, n = sizeof steps / sizeof *steps;
  while (k < n && strcmp(name, steps[k].name))
    k++;
  if (k == n && strcmp(name, "cutout"))
    return 1;
  if (!value) {
    snprintf(err, errlen, "--%s needs a value", name);
    return -1;
  }
  if (k == n) {
    if (strcmp(value, "diagonal") && strcmp(value, "anywhere")) {
      snprintf(err, errlen, "--cutout must be diagonal or anywhere, not '%s'", value);
      return -1;
    }
    p->cutout_diagonal = !strcmp(value, "diagonal");
    return 0;
  }
  char *end;
  double v = strtod(value, &end);
  if (end == value || *end || !(v >= steps[k].lo && v <= steps[k].hi)) {
    snprintf(err, errlen, "--%s wants a number from %g to %g, not '%s'", name, steps[k].lo, steps[k].hi, value);
    return -1;
  }
  *(double *)((char *)p + steps[k].offset) = v;
  return 0;
}

// The first RNG index of a sample (augment.h gives the layout).
static uint64_t sample_base(uint64_t sample, int h, int w) {
  return sample * (AUGMENT_SLOTS + pixel_groups((uint64_t)h * w) * 8);
}

// An integer uniform on lo..hi from u in [0, 1).
static int uniform_int(double u, int lo, int hi) { return lo + (int)(u * ((double)hi - lo + 1)); }

AugmentDraws augment_draws(const AugmentParams *p, uint64_t seed, uint32_t epoch, uint64_t sample, int h, int w) {
  uint64_t stream = rng_stream(RNG_AUGMENT, epoch);
  uint64_t base = sample_base(sample, h, w);
  AugmentDraws d = {0};
  d.r_drop = p->drop_max * rng_uniform(seed, stream, base + 0);
  d.r_noise = p->noise_max * rng_uniform(seed, stream, base + 1);
  if (rng_uniform(seed, stream, base + 2) < p->cutout_p) {
    d.cutout = 1;
    d.cut_size = uniform_int(rng_uniform(seed, stream, base + 4), p->cutout_min, p->cutout_max);
    d.cut_half = d.cut_size / 2;
    if (p->cutout_diagonal) {
      d.cut_row = d.cut_col = uniform_int(rng_uniform(seed, stream, base + 5), p->offset_min, p->offset_max);
    } else {
      d.cut_row = uniform_int(rng_uniform(seed, stream, base + 5), 0, h - 1);
      d.cut_col = uniform_int(rng_uniform(seed, stream, base + 6), 0, w - 1);
    }
  }
  d.blurred = rng_uniform(seed, stream, base + 3) < p->blur_p;
  // The optional steps draw only when on, so that what d reports for an off
  // step is its identity; a draw's slot is fixed either way.
  d.flip_lr = p->flip_lr_p > 0 && rng_uniform(seed, stream, base + 7) < p->flip_lr_p;
  d.flip_ud = p->flip_ud_p > 0 && rng_uniform(seed, stream, base + 8) < p->flip_ud_p;
  if (p->rotate_max_deg > 0)
    d.angle_deg = p->rotate_max_deg * (2.0 * rng_uniform(seed, stream, base + 9) - 1.0);
  d.gamma = 1.0;
  if (p->gamma_max > 1) {
    double l = log(p->gamma_max);
    d.gamma = exp(l * (2.0 * rng_uniform(seed, stream, base + 10) - 1.0));
  }
  if (p->bias_max > 0)
    for (int k = 0; k < 5; k++)
      d.bias[k] = p->bias_max * (2.0 * rng_uniform(seed, stream, base + 11 + (uint64_t)k) - 1.0);
  return d;
}

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

void augment_dropout_noise(float *x, size_t n, double r_drop, double r_noise, uint64_t seed, uint64_t stream,
                           uint64_t index) {
  dropout_noise(x, x, n, r_drop, r_noise, seed, stream, index);
}

void augment_cutout(float *x, int h, int w, int row, int col, int half) {
  int r0 = row - half > 0 ? row - half : 0, r1 = row + half < h ? row + half : h;
  int c0 = col - half > 0 ? col - half : 0, c1 = col + half < w ? col + half : w;
  for (int r = r0; r < r1; r++)
    for (int c = c0; c < c1; c++)
      x[(size_t)r * w + c] = 0.0f;
}

enum { SEGMENT = 256 }; // columns a blur pass holds in its stack buffers at a time

// The 1-D kernel (edge, centre, edge) along each row of h x w, in place.
// Reflect padding without repeating the edge: x[-1] is x[1] and x[w] is
// x[w-2]; a single column has nothing to reflect and stays. Segments go
// through a buffer of their old values, with one more on either side, so
// that the loop over them has no dependence from one column to the next.
static void blur_rows(float *x, int h, int w, float edge, float centre) {
  if (w < 2)
    return;
  float old[SEGMENT + 2];
  for (int r = 0; r < h; r++) {
    float *row = x + (size_t)r * w;
    float left = row[1]; // the old value left of the segment
    for (int s = 0; s < w; s += SEGMENT) {
      int len = w - s < SEGMENT ? w - s : SEGMENT;
      old[0] = left;
      memcpy(old + 1, row + s, (size_t)len * sizeof *old);
      old[len + 1] = s + len < w ? row[s + len] : old[len - 1]; // x[w-2], old even when the segment is one column
      left = old[len];
      for (int c = 0; c < len; c++)
        row[s + c] = edge * (old[c] + old[c + 2]) + centre * old[c + 1];
    }
  }
}

// The same along each column, a row of a segment at a time: the old rows
// above and at r in buffers, the one below still in x (row h reflects to the
// old row h - 2, the one above).
static void blur_columns(float *x, int h, int w, float edge, float centre) {
  if (h < 2)
    return;
  float buf[2][SEGMENT];
  for (int s = 0; s < w; s += SEGMENT) {
    int len = w - s < SEGMENT ? w - s : SEGMENT;
    float *above = buf[0], *here = buf[1];
    memcpy(above, x + (size_t)w + s, (size_t)len * sizeof *above); // row -1 reflects to row 1
    for (int r = 0; r < h; r++) {
      float *row = x + (size_t)r * w + s;
      const float *below = r + 1 < h ? row + w : above;
      memcpy(here, row, (size_t)len * sizeof *here);
      for (int c = 0; c < len; c++)
        row[c] = edge * (above[c] + below[c]) + centre * here[c];
      float *t = above;
      above = here, here = t;
    }
  }
}

void augment_blur(float *x, int h, int w, double sigma) {
  // The 2-D kernel exp(-(dx^2 + dy^2) / (2 sigma^2)), normalised, is the outer
  // product of this normalised 1-D one, so two 1-D passes apply it.
  double e = exp(-1.0 / (2.0 * sigma * sigma)), sum = 1.0 + 2.0 * e;
  float edge = (float)(e / sum), centre = (float)(1.0 / sum);
  blur_rows(x, h, w, edge, centre);
  blur_columns(x, h, w, edge, centre);
}

void augment_flip(float *x, int h, int w, int lr, int ud) {
  if (lr)
    for (int r = 0; r < h; r++) {
      float *row = x + (size_t)r * w;
      for (int a = 0, b = w - 1; a < b; a++, b--) {
        float t = row[a];
        row[a] = row[b], row[b] = t;
      }
    }
  if (ud)
    for (int a = 0, b = h - 1; a < b; a++, b--) {
      float *ra = x + (size_t)a * w, *rb = x + (size_t)b * w;
      for (int c = 0; c < w; c++) {
        float t = ra[c];
        ra[c] = rb[c], rb[c] = t;
      }
    }
}

// src at (r, c), zero outside the image: the rotation's fill.
static float pixel_or_zero(const float *src, int h, int w, int r, int c) {
  return r >= 0 && r < h && c >= 0 && c < w ? src[(size_t)r * w + c] : 0.0f;
}

void augment_rotate(const float *src, float *dst, int h, int w, double deg) {
  // Each output pixel samples src where the inverse rotation takes it. With
  // rows pointing down, a counterclockwise turn on screen sends the offset
  // (dy, dx) from the centre back to (dy cos + dx sin, dx cos - dy sin).
  double t = deg * (3.14159265358979323846 / 180.0), cs = cos(t), sn = sin(t);
  double cy = 0.5 * (h - 1), cx = 0.5 * (w - 1);
  for (int r = 0; r < h; r++)
    for (int c = 0; c < w; c++) {
      double dy = r - cy, dx = c - cx;
      double sy = cy + dy * cs + dx * sn, sx = cx + dx * cs - dy * sn;
      double fy = floor(sy), fx = floor(sx);
      float v = 0.0f;
      // Far outside, the int conversion below would overflow: it is zero anyway.
      if (fy >= -1 && fy < h && fx >= -1 && fx < w) {
        int r0 = (int)fy, c0 = (int)fx;
        float ay = (float)(sy - fy), ax = (float)(sx - fx);
        // A zero weight contributes exactly nothing, so a source on the grid
        // (the centre, or every pixel at 0 degrees) comes through unchanged.
        float top = (1 - ax) * pixel_or_zero(src, h, w, r0, c0) + ax * pixel_or_zero(src, h, w, r0, c0 + 1);
        float bot = (1 - ax) * pixel_or_zero(src, h, w, r0 + 1, c0) + ax * pixel_or_zero(src, h, w, r0 + 1, c0 + 1);
        v = (1 - ay) * top + ay * bot;
      }
      dst[(size_t)r * w + c] = v;
    }
}

void augment_gamma(float *x, size_t n, double gamma) {
  float g = (float)gamma;
  for (size_t i = 0; i < n; i++)
    x[i] = powf(x[i], g); // [0, 1] to [0, 1]: 0^g = 0 and 1^g = 1 for g > 0
}

void augment_bias(float *x, int h, int w, const double c[5]) {
  // u, v span [-1, 1] so that a coefficient is the field's swing at the edge,
  // whatever the image size; a single row or column sits at 0.
  for (int r = 0; r < h; r++) {
    double v = h > 1 ? 2.0 * r / (h - 1) - 1.0 : 0.0;
    for (int col = 0; col < w; col++) {
      double u = w > 1 ? 2.0 * col / (w - 1) - 1.0 : 0.0;
      double f = 1.0 + c[0] * u + c[1] * v + c[2] * u * u + c[3] * u * v + c[4] * v * v;
      x[(size_t)r * w + col] *= (float)(f > 0 ? f : 0); // a field is never negative
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

void augment_image(const AugmentParams *p, uint64_t seed, uint32_t epoch, uint64_t sample, int h, int w,
                   const float *clean, float *out, AugmentDraws *drawn) {
  size_t n = (size_t)h * w;
  AugmentDraws d = {.gamma = 1.0}; // disabled: every step its identity
  if (!p->enabled) {
    if (out != clean)
      memcpy(out, clean, n * sizeof *out);
  } else {
    d = augment_draws(p, seed, epoch, sample, h, w);
    // The first step reads clean and writes out, the copy's work.
    dropout_noise(clean, out, n, d.r_drop, d.r_noise, seed, rng_stream(RNG_AUGMENT, epoch),
                  sample_base(sample, h, w) + AUGMENT_SLOTS);
    if (d.cutout)
      augment_cutout(out, h, w, d.cut_row, d.cut_col, d.cut_half);
    if (d.blurred)
      augment_blur(out, h, w, p->blur_sigma);
    augment_flip(out, h, w, d.flip_lr, d.flip_ud);
    if (d.angle_deg != 0) {
      // The rotation reads all of its source: a copy. A failed allocation
      // aborts, since skipping the step would break the determinism.
      float *copy = malloc(n * sizeof *copy);
      if (!copy) {
        fprintf(stderr, "augment_image: out of memory for the rotation\n");
        abort();
      }
      memcpy(copy, out, n * sizeof *copy);
      augment_rotate(copy, out, h, w, d.angle_deg);
      free(copy);
    }
    if (d.gamma != 1.0) {
      renormalise(out, n);
      augment_gamma(out, n, d.gamma);
    }
    if (p->bias_max > 0)
      augment_bias(out, h, w, d.bias);
    renormalise(out, n);
  }
  if (drawn)
    *drawn = d;
}
