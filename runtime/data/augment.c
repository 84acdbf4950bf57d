// augment.c: the seed's input corruption (see augment.h).
#include "augment.h"
#include "augment_pixels.h"

#include "rng.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

// The pixel loops (augment_pixels.h) of the AVX2 object where CMake built it
// (x86-64) and the CPU has AVX2, else the baseline's: the same values either way.
static bool use_avx2(void) {
#if defined(CAEC_AUGMENT_AVX2)
  return __builtin_cpu_supports("avx2");
#else
  return false;
#endif
}

static void pixels_dropout_noise(const float *src, float *dst, size_t n, double r_drop, double r_noise, uint64_t seed,
                                 uint64_t stream, uint64_t index) {
  if (use_avx2())
    augment_dropout_noise_avx2(src, dst, n, r_drop, r_noise, seed, stream, index);
  else
    dropout_noise(src, dst, n, r_drop, r_noise, seed, stream, index);
}

static void pixels_renormalise(float *x, size_t n) {
  if (use_avx2())
    augment_renormalise_avx2(x, n);
  else
    renormalise(x, n);
}

void augment_dropout_noise(float *x, size_t n, double r_drop, double r_noise, uint64_t seed, uint64_t stream,
                           uint64_t index) {
  pixels_dropout_noise(x, x, n, r_drop, r_noise, seed, stream, index);
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
    pixels_dropout_noise(clean, out, n, d.r_drop, d.r_noise, seed, rng_stream(RNG_AUGMENT, epoch),
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
      pixels_renormalise(out, n);
      augment_gamma(out, n, d.gamma);
    }
    if (p->bias_max > 0)
      augment_bias(out, h, w, d.bias);
    pixels_renormalise(out, n);
  }
  if (drawn)
    *drawn = d;
}
