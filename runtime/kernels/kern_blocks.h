// kern_blocks.h: what the convolution kernels (kern_conv.c, kern_wino.c) share
// about blocked tensors in two pieces (kern_types.h's KIn, KOut) and the
// prologues of their blocks.
#ifndef CAEC_KERN_BLOCKS_H
#define CAEC_KERN_BLOCKS_H

#include "kern_types.h"
#include "kern_work.h"

#include <stddef.h>

// Offset of block cb of image n in a tensor of pc channels, and its pixel stride (16, or 1 when plain).
static inline size_t plane_at(int pc, int n, int cb, size_t hw, int *ps) {
  *ps = pc == 1 ? 1 : KB;
  return ((size_t)n * (size_t)kb_blocks(pc) + (size_t)cb) * hw * (size_t)*ps;
}

static inline const float *in_plane(KIn t, int c, int n, int cb, size_t hw, int *ps) {
  if (!t.b)
    return t.a + plane_at(c, n, cb, hw, ps);
  int nba = t.ca / KB;
  return cb < nba ? t.a + plane_at(t.ca, n, cb, hw, ps) : t.b + plane_at(c - t.ca, n, cb - nba, hw, ps);
}

static inline float *out_plane(KOut t, int c, int n, int cb, size_t hw, int *ps, bool *acc) {
  if (!t.b) {
    *acc = t.acc_a;
    return t.a + plane_at(c, n, cb, hw, ps);
  }
  int nba = t.ca / KB;
  *acc = cb < nba ? t.acc_a : t.acc_b;
  return cb < nba ? t.a + plane_at(t.ca, n, cb, hw, ps) : t.b + plane_at(c - t.ca, n, cb - nba, hw, ps);
}

static inline int block_channels(int c, int cb) { return c - cb * KB < KB ? c - cb * KB : KB; }

// The prologue of one input block, its coefficients zero past the piece's channels so that padding
// lanes stay 0 (they are 0, and 0 * 0 + 0 = 0). on: the block has a prologue.
typedef struct BlockPro {
  float s[KB], b[KB];
  bool on, relu;
} BlockPro;
_Static_assert(sizeof(BlockPro) == KC_PRO_BYTES, "kern_work.h sizes BlockPro");

static inline bool has_pro(KPro p) { return p.scale || p.relu; }

// Block cb's prologue of a tensor of c channels.
static inline BlockPro block_pro(KIn t, int c, int cb) {
  const int nba = t.b ? t.ca / KB : kb_blocks(c);
  const KPro p = cb < nba ? t.pro_a : t.pro_b;
  const int first = cb < nba ? 0 : t.ca; // the piece's first channel
  BlockPro bp = {.on = has_pro(p), .relu = p.relu};
  for (int l = 0; l < block_channels(c, cb); l++) {
    const int ch = cb * KB + l - first;
    bp.s[l] = p.scale ? p.scale[ch] : 1.0f;
    bp.b[l] = p.scale ? p.shift[ch] : 0.0f;
  }
  return bp;
}

// kern_conv.c: db = the per-channel sums of x (n images of c channels, h x w) through its blocks'
// prologues (pro, NULL: none; copy: a row of w blocked pixels of the calling thread), each summed in
// double by one thread in a fixed order. Called by a parallel region's every thread (an omp for).
void kc_bias_rows(KIn x, int n, int c, int h, int w, const BlockPro *pro, float *copy, float *db);

#endif
