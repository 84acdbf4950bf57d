// augment.c: the seed's input corruption (see augment.h).
#include "augment.h"

#include "resize.h"
#include "rng.h"

#include <math.h>
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

AugmentParams augment_for_size(int size) {
  AugmentParams p = augment_defaults();
  double f = size / 128.0;
  p.cutout_min = (int)lround(p.cutout_min * f), p.cutout_max = (int)lround(p.cutout_max * f);
  p.offset_min = (int)lround(p.offset_min * f), p.offset_max = (int)lround(p.offset_max * f);
  return p;
}

// The first RNG index of a sample (augment.h gives the layout).
static uint64_t sample_base(uint64_t sample, int h, int w) {
  return sample * (AUGMENT_SLOTS + ((uint64_t)h * w + 1) / 2);
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

void augment_dropout_noise(float *x, size_t n, double r_drop, double r_noise, uint64_t seed, uint64_t stream,
                           uint64_t index) {
  // One Philox block serves two pixels: rng_uniform would spend a block per
  // draw, three per pixel with Box-Muller, and the blocks are most of the cost.
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  const uint32_t drop = (uint32_t)(r_drop * 4294967296.0); // a pixel drops when its word is below
  const float scale = (float)(1.0 / (1.0 - r_drop)), sd = (float)r_noise;
  for (size_t i = 0; i < n; i += 2) {
    uint64_t c = index + i / 2;
    const uint32_t ctr[4] = {(uint32_t)c, (uint32_t)(c >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
    uint32_t r[4];
    philox4x32(key, ctr, r);
    float a = ((float)(r[2] >> 8) + 0.5f) * 0x1p-24f; // in (0, 1): its log is finite
    float b = (float)(r[3] >> 8) * 0x1p-24f;
    float radius = sd * sqrtf(-2.0f * logf(a)), angle = 6.2831853f * b;
    x[i] = (r[0] < drop ? 0.0f : x[i] * scale) + radius * cosf(angle);
    if (i + 1 < n)
      x[i + 1] = (r[1] < drop ? 0.0f : x[i + 1] * scale) + radius * sinf(angle);
  }
}

void augment_cutout(float *x, int h, int w, int row, int col, int half) {
  int r0 = row - half > 0 ? row - half : 0, r1 = row + half < h ? row + half : h;
  int c0 = col - half > 0 ? col - half : 0, c1 = col + half < w ? col + half : w;
  for (int r = r0; r < r1; r++)
    for (int c = c0; c < c1; c++)
      x[(size_t)r * w + c] = 0.0f;
}

// One pass of the 1-D kernel (edge, centre, edge) over n values spaced stride
// apart, in place. Reflect padding without repeating the edge: x[-1] is x[1]
// and x[n] is x[n-2]; a single value has nothing to reflect and stays.
static void blur_line(float *x, int n, size_t stride, float edge, float centre) {
  if (n < 2)
    return;
  float prev = x[stride]; // the old x[i-1]
  for (int i = 0; i < n; i++) {
    float cur = x[i * stride], next = i + 1 < n ? x[(i + 1) * stride] : prev;
    x[i * stride] = edge * (prev + next) + centre * cur;
    prev = cur;
  }
}

void augment_blur(float *x, int h, int w, double sigma) {
  // The 2-D kernel exp(-(dx^2 + dy^2) / (2 sigma^2)), normalised, is the outer
  // product of this normalised 1-D one, so two 1-D passes apply it.
  double e = exp(-1.0 / (2.0 * sigma * sigma)), sum = 1.0 + 2.0 * e;
  float edge = (float)(e / sum), centre = (float)(1.0 / sum);
  for (int r = 0; r < h; r++)
    blur_line(x + (size_t)r * w, w, 1, edge, centre);
  for (int c = 0; c < w; c++)
    blur_line(x + c, h, (size_t)w, edge, centre);
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
  if (out != clean)
    memcpy(out, clean, n * sizeof *out);
  AugmentDraws d = {.gamma = 1.0}; // disabled: every step its identity
  if (p->enabled) {
    d = augment_draws(p, seed, epoch, sample, h, w);
    augment_dropout_noise(out, n, d.r_drop, d.r_noise, seed, rng_stream(RNG_AUGMENT, epoch),
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
      minmax01(out, n);
      augment_gamma(out, n, d.gamma);
    }
    if (p->bias_max > 0)
      augment_bias(out, h, w, d.bias);
    minmax01(out, n);
  }
  if (drawn)
    *drawn = d;
}
