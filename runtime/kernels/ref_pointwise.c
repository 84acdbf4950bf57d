// ref_pointwise.c: activations, add, concat and spatial dropout.
#include "ref.h"

#include <math.h>
#include <string.h>

void ref_relu_fwd(size_t count, const double *x, double *y) {
  for (size_t i = 0; i < count; i++)
    y[i] = x[i] > 0 ? x[i] : 0;
}

void ref_relu_bwd(size_t count, const double *y, const double *dy, double *dx) {
  for (size_t i = 0; i < count; i++)
    dx[i] = y[i] > 0 ? dy[i] : 0;
}

void ref_leaky_relu_fwd(size_t count, double alpha, const double *x, double *y) {
  for (size_t i = 0; i < count; i++)
    y[i] = x[i] > 0 ? x[i] : alpha * x[i];
}

void ref_leaky_relu_bwd(size_t count, double alpha, const double *x, const double *dy, double *dx) {
  for (size_t i = 0; i < count; i++)
    dx[i] = x[i] > 0 ? dy[i] : alpha * dy[i];
}

// exp of a non-positive argument only, so that neither branch overflows.
void ref_sigmoid_fwd(size_t count, const double *x, double *y) {
  for (size_t i = 0; i < count; i++) {
    double e = exp(-fabs(x[i]));
    y[i] = x[i] >= 0 ? 1 / (1 + e) : e / (1 + e);
  }
}

void ref_sigmoid_bwd(size_t count, const double *y, const double *dy, double *dx) {
  for (size_t i = 0; i < count; i++)
    dx[i] = y[i] * (1 - y[i]) * dy[i];
}

void ref_tanh_fwd(size_t count, const double *x, double *y) {
  for (size_t i = 0; i < count; i++)
    y[i] = tanh(x[i]);
}

void ref_tanh_bwd(size_t count, const double *y, const double *dy, double *dx) {
  for (size_t i = 0; i < count; i++)
    dx[i] = (1 - y[i] * y[i]) * dy[i];
}

void ref_add_fwd(size_t count, const double *a, const double *b, double *y) {
  for (size_t i = 0; i < count; i++)
    y[i] = a[i] + b[i];
}

static int total_channels(int nin, const int *cs) {
  int c = 0;
  for (int k = 0; k < nin; k++)
    c += cs[k];
  return c;
}

// Image i of input k is one block of cs[k]*hw values in both tensors, so concat and its backward copy blocks.
void ref_concat_fwd(int n, int hw, int nin, const int *cs, const double *const *xs, double *y) {
  int c = total_channels(nin, cs);
  for (int i = 0; i < n; i++)
    for (int k = 0, c0 = 0; k < nin; c0 += cs[k], k++)
      memcpy(y + ((size_t)i * (size_t)c + (size_t)c0) * (size_t)hw, xs[k] + (size_t)i * (size_t)cs[k] * (size_t)hw,
             sizeof *y * (size_t)cs[k] * (size_t)hw);
}

void ref_concat_bwd(int n, int hw, int nin, const int *cs, const double *dy, double *const *dxs) {
  int c = total_channels(nin, cs);
  for (int i = 0; i < n; i++)
    for (int k = 0, c0 = 0; k < nin; c0 += cs[k], k++)
      memcpy(dxs[k] + (size_t)i * (size_t)cs[k] * (size_t)hw, dy + ((size_t)i * (size_t)c + (size_t)c0) * (size_t)hw,
             sizeof *dy * (size_t)cs[k] * (size_t)hw);
}

void ref_spatial_dropout(int n, int c, int hw, double rate, const uint8_t *keep, const double *x, double *y) {
  for (size_t nc = 0; nc < (size_t)n * (size_t)c; nc++)
    for (size_t i = 0; i < (size_t)hw; i++)
      y[nc * (size_t)hw + i] = keep[nc] ? x[nc * (size_t)hw + i] / (1 - rate) : 0;
}
