// kern_layout.c: canonical NCHW <-> channel-blocked NCHW16c. A 1-channel
// tensor is stored plain in both layouts, so converting it is a copy.
#include "kern.h"

#include <string.h>

// One direction or the other, block by block: the pad lanes of a last, partial block are written as zeros
// and never read back.
static void convert(int n, int c, int hw, const float *src, float *dst, bool to_blocked) {
  if (c == 1) {
    memcpy(dst, src, sizeof *src * (size_t)n * (size_t)hw);
    return;
  }
  int nb = kb_blocks(c);
#pragma omp parallel for schedule(static)
  for (int ib = 0; ib < n * nb; ib++) {
    int i = ib / nb, c0 = ib % nb * KB, lanes = c - c0 < KB ? c - c0 : KB;
    const size_t plain = ((size_t)i * (size_t)c + (size_t)c0) * (size_t)hw, blocked = (size_t)ib * (size_t)hw * KB;
    for (int l = 0; l < (to_blocked ? KB : lanes); l++)
      for (int p = 0; p < hw; p++) {
        size_t at_plain = plain + (size_t)l * (size_t)hw + (size_t)p, at_blocked = blocked + (size_t)p * KB + (size_t)l;
        if (to_blocked)
          dst[at_blocked] = l < lanes ? src[at_plain] : 0.0f;
        else
          dst[at_plain] = src[at_blocked];
      }
  }
}

void kb_to_blocked(int n, int c, int hw, const float *x, float *xb) { convert(n, c, hw, x, xb, true); }

void kb_from_blocked(int n, int c, int hw, const float *xb, float *x) { convert(n, c, hw, xb, x, false); }
