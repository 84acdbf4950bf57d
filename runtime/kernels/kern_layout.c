// kern_layout.c: canonical NCHW <-> channel-blocked NCHW16c. A 1-channel
// tensor is stored plain in both layouts, so converting it is a copy.
#include "kern.h"

#include <string.h>

void kb_to_blocked(int n, int c, int hw, const float *x, float *xb) {
  if (c == 1) {
    memcpy(xb, x, sizeof *x * (size_t)n * (size_t)hw);
    return;
  }
  int nb = kb_blocks(c);
#pragma omp parallel for schedule(static)
  for (int ib = 0; ib < n * nb; ib++) {
    int i = ib / nb, c0 = ib % nb * KB, lanes = c - c0 < KB ? c - c0 : KB;
    const float *src = x + ((size_t)i * (size_t)c + (size_t)c0) * (size_t)hw;
    float *dst = xb + (size_t)ib * (size_t)hw * KB;
    for (int p = 0; p < hw; p++)
      for (int l = 0; l < KB; l++)
        dst[(size_t)p * KB + (size_t)l] = l < lanes ? src[(size_t)l * (size_t)hw + (size_t)p] : 0.0f;
  }
}

void kb_from_blocked(int n, int c, int hw, const float *xb, float *x) {
  if (c == 1) {
    memcpy(x, xb, sizeof *x * (size_t)n * (size_t)hw);
    return;
  }
  int nb = kb_blocks(c);
#pragma omp parallel for schedule(static)
  for (int ib = 0; ib < n * nb; ib++) {
    int i = ib / nb, c0 = ib % nb * KB, lanes = c - c0 < KB ? c - c0 : KB;
    const float *src = xb + (size_t)ib * (size_t)hw * KB;
    float *dst = x + ((size_t)i * (size_t)c + (size_t)c0) * (size_t)hw;
    for (int l = 0; l < lanes; l++)
      for (int p = 0; p < hw; p++)
        dst[(size_t)l * (size_t)hw + (size_t)p] = src[(size_t)p * KB + (size_t)l];
  }
}
