// cu_pointwise.cuh: elementwise ops, spatial dropout and its mask, and the
// channel copies of unaligned concatenations (kern_pointwise.c's kp_*, rng.c's
// rng_dropout_mask); and what the other op headers build on: grid-stride
// loops, planes of blocked tensors and of their pieces, block-wide sums in a
// fixed order.
//
// Every op here is one launch (no stage, no workspace) of a grid-stride loop,
// a thread per value, and takes any grid: its plan is cu_plan.h's
// cu_plan_elems(values). Each value depends on one input value and uses
// kern_pointwise.c's formula, so under the emulator the results are its bits.
#ifndef CAEC_CU_POINTWISE_CUH
#define CAEC_CU_POINTWISE_CUH

#include "cu.h"

#if !defined(__CUDACC__)
#include <math.h>
#endif

// ---- grid-stride loops -------------------------------------------------------------------

// for (int64_t i = cu_first(); i < count; i += cu_step()): any grid covers any count.
CU_DEVICE int64_t cu_first(void) { return (int64_t)blockIdx.x * CU_THREADS + (int64_t)threadIdx.x; }
CU_DEVICE int64_t cu_step(void) { return (int64_t)gridDim.x * CU_THREADS; }

// ---- planes of blocked tensors ------------------------------------------------------------
//
// A plane is image i's channel block bk, [hw][16] floats; in a 1-channel tensor or piece
// (plain) it is [hw]. A two-piece tensor (KIn, KOut) keeps each piece in its own layout.

// Where image i's block bk of a tensor of c channels lives when it is split at ca (two: the
// second piece exists): sets the piece (0: a, 1: b) and its pixel stride (1 when plain), and
// returns the plane's offset in that piece.
CU_DEVICE int64_t cu_locate(bool two, int ca, int c, int hw, int i, int bk, int *piece, int *stride) {
  int b = two && bk >= ca / KB, pc = b ? c - ca : two ? ca : c;
  *piece = b;
  *stride = cu_stride_of(pc);
  if (pc == 1)
    return (int64_t)i * hw;
  return ((int64_t)i * kb_blocks(pc) + (b ? bk - ca / KB : bk)) * hw * KB;
}

CU_DEVICE const float *cu_in_plane(KIn x, int c, int hw, int i, int bk, int *stride) {
  int piece;
  int64_t off = cu_locate(x.b != 0, x.ca, c, hw, i, bk, &piece, stride);
  return (piece ? x.b : x.a) + off;
}

// The same for an output, with the piece's acc flag.
CU_DEVICE float *cu_out_plane(KOut y, int c, int hw, int i, int bk, int *stride, bool *acc) {
  int piece;
  int64_t off = cu_locate(y.b != 0, y.ca, c, hw, i, bk, &piece, stride);
  *acc = piece ? y.acc_b : y.acc_a;
  return (piece ? y.b : y.a) + off;
}

// Lane l of pixel p of a plane of the given stride; a plain piece reads as lane 0 of a block
// whose other lanes are 0.
CU_DEVICE float cu_get(const float *plane, int stride, int p, int l) {
  if (stride == KB)
    return plane[p * KB + l];
  return l == 0 ? plane[p] : 0.0f;
}

// y[i] = v, or += v when acc.
CU_DEVICE void cu_store(float *y, bool acc, int64_t i, float v) { y[i] = acc ? y[i] + v : v; }

// Stores (acc: adds) v at lane l of pixel p of a plane; a plain piece has lane 0 only.
CU_DEVICE void cu_put(float *plane, int stride, bool acc, int p, int l, float v) {
  if (stride == KB || l == 0)
    cu_store(plane, acc, stride == KB ? p * KB + l : p, v);
}

// Value e of blocks bk0 .. bk0 + nblk - 1 of every image, in memory order ([i][bk][p][lane],
// the given pixel stride). The shapes are literals in the generated kernels, so the divisions
// are multiplications.
typedef struct CuElem {
  int i, bk, p, lane;
} CuElem;

CU_DEVICE CuElem cu_elem(int64_t e, int stride, int hw, int bk0, int nblk) {
  CuElem v;
  int64_t px = e / stride, plane = px / hw;
  v.lane = (int)(e % stride);
  v.p = (int)(px % hw);
  v.i = (int)(plane / nblk);
  v.bk = bk0 + (int)(plane % nblk);
  return v;
}

// ---- block-wide sums -----------------------------------------------------------------------

// The sum of v over the block's threads whose indices agree mod lanes (1 or 16), added pairwise
// by a fixed tree in shared memory; every thread gets its lane's sum. Every thread of the block
// must call it.
CU_DEVICE double cu_block_sum(double v, int lanes) {
  CU_SHARED double sh[CU_THREADS];
  int t = (int)threadIdx.x;
  sh[t] = v;
  CU_SYNC();
  for (int half = CU_THREADS / 2; half >= lanes; half /= 2) {
    if (t < half)
      sh[t] += sh[t + half];
    CU_SYNC();
  }
  double sum = sh[t % lanes];
  CU_SYNC(); // before a next call overwrites sh
  return sum;
}

// ---- elementwise ops ------------------------------------------------------------------------
//
// x, y, a, b, dy, dx: count floats of whole tensors (padding lanes included; they stay 0). As in
// kern_pointwise.c, ops that know only `count` cannot split a two-piece output: they write dx.a
// (with acc_a).

// Leaky relu's factor applied to v: v where x > 0, alpha v elsewhere; written as the sum of
// both sides (kp_leaky_relu's formula) so that each side is exact and a negative x gives +0.
// The forward has v = x, the backward v = dy.
CU_DEVICE float cu_leaky(float alpha, float x, float v) { return (x > 0 ? v : 0.0f) + alpha * (x > 0 ? 0.0f : v); }

CU_DEVICE void cu_leaky_relu(int64_t count, float alpha, const float *x, float *y) {
  for (int64_t i = cu_first(); i < count; i += cu_step())
    y[i] = cu_leaky(alpha, x[i], x[i]);
}

CU_DEVICE void cu_relu(int64_t count, const float *x, float *y) { cu_leaky_relu(count, 0, x, y); }

// The mask is x > 0 (relu's backward passes its output, which is > 0 exactly where its input is).
CU_DEVICE void cu_leaky_relu_bwd(int64_t count, float alpha, const float *x, const float *dy, KOut dx) {
  for (int64_t i = cu_first(); i < count; i += cu_step())
    cu_store(dx.a, dx.acc_a, i, cu_leaky(alpha, x[i], dy[i]));
}

CU_DEVICE void cu_relu_bwd(int64_t count, const float *y, const float *dy, KOut dx) {
  cu_leaky_relu_bwd(count, 0, y, dy, dx);
}

// exp of a non-positive argument only, so that neither branch overflows.
CU_DEVICE float cu_sigmoid1(float x) {
  float e = expf(-fabsf(x));
  return (x >= 0 ? 1.0f : e) / (1 + e);
}

CU_DEVICE void cu_sigmoid(int64_t count, const float *x, float *y) {
  for (int64_t i = cu_first(); i < count; i += cu_step())
    y[i] = cu_sigmoid1(x[i]);
}

CU_DEVICE void cu_sigmoid_bwd(int64_t count, const float *y, const float *dy, KOut dx) {
  for (int64_t i = cu_first(); i < count; i += cu_step())
    cu_store(dx.a, dx.acc_a, i, y[i] * (1 - y[i]) * dy[i]);
}

CU_DEVICE void cu_tanh(int64_t count, const float *x, float *y) {
  for (int64_t i = cu_first(); i < count; i += cu_step())
    y[i] = tanhf(x[i]);
}

CU_DEVICE void cu_tanh_bwd(int64_t count, const float *y, const float *dy, KOut dx) {
  for (int64_t i = cu_first(); i < count; i += cu_step())
    cu_store(dx.a, dx.acc_a, i, (1 - y[i] * y[i]) * dy[i]);
}

// y = a + b, then relu when asked.
CU_DEVICE void cu_add(int64_t count, const float *a, const float *b, bool relu, float *y) {
  for (int64_t i = cu_first(); i < count; i += cu_step()) {
    float v = a[i] + b[i];
    y[i] = relu && !(v > 0) ? 0.0f : v;
  }
}

// dx (=|+=) dy: a gradient that caec could not alias.
CU_DEVICE void cu_copy(int64_t count, const float *dy, KOut dx) {
  for (int64_t i = cu_first(); i < count; i += cu_step())
    cu_store(dx.a, dx.acc_a, i, dy[i]);
}

// ---- spatial dropout --------------------------------------------------------------------------

// Philox4x32-10 (rng.c's philox4x32): the block of counter c under key (k0, k1), in place.
CU_DEVICE void cu_philox(uint32_t k0, uint32_t k1, uint32_t c[4]) {
  for (int round = 0; round < 10; round++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c[0], p1 = (uint64_t)0xCD9E8D57u * c[2];
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c[1] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c[3] ^ k1;
    c[1] = (uint32_t)p1;
    c[3] = (uint32_t)p0;
    c[0] = n0;
    c[2] = n2;
    k0 += 0x9E3779B9u; // the Weyl sequence of the key schedule
    k1 += 0xBB67AE85u;
  }
}

// rng_dropout_mask, bit for bit: keep [count] (count = images x channels), keep[j] =
// rng_uniform(seed, rng_stream(RNG_DROPOUT = 2, node), step count + j) >= rate, with rng.c's
// key, counter and 53-bit uniform.
CU_DEVICE void cu_dropout_mask(uint64_t seed, uint32_t node, int64_t step, int64_t count, double rate,
                               uint8_t *keep) {
  const uint64_t stream = (uint64_t)2 << 32 | node;
  for (int64_t j = cu_first(); j < count; j += cu_step()) {
    uint64_t index = (uint64_t)step * (uint64_t)count + (uint64_t)j;
    uint32_t c[4] = {(uint32_t)index, (uint32_t)(index >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
    cu_philox((uint32_t)seed, (uint32_t)(seed >> 32), c);
    uint64_t bits = (uint64_t)c[0] << 32 | c[1];
    keep[j] = (double)(bits >> 11) * (1.0 / 9007199254740992.0) >= rate; // 2^-53
  }
}

// x blocked [n][c][hw], keep [n][c], y (one or two pieces) [n][c][hw]: y (=|+=) keep[i*c + ch] ?
// x / (1 - rate) : 0, as x times that factor; padding lanes get x * 0 (0), a plain piece of y
// lane 0 only. The backward is the same map (dy, dx). A thread per value of x.
CU_DEVICE void cu_dropout(int n, int c, int hw, float rate, const uint8_t *keep, const float *x, KOut y) {
  const int stride = cu_stride_of(c), nb = kb_blocks(c);
  const float scale = 1 / (1 - rate);
  for (int64_t e = cu_first(); e < (int64_t)n * nb * hw * stride; e += cu_step()) {
    CuElem v = cu_elem(e, stride, hw, 0, nb);
    int ch = v.bk * KB + v.lane, so;
    bool acc;
    float *yp = cu_out_plane(y, c, hw, v.i, v.bk, &so, &acc);
    cu_put(yp, so, acc, v.p, v.lane, x[e] * (ch < c && keep[(int64_t)v.i * c + ch] ? scale : 0.0f));
  }
}

// ---- channel copies -----------------------------------------------------------------------------

// Blocked [n][dc][hw] dst channels [d0, d0 + len) (=|+=) blocked [n][sc][hw] src channels [s0,
// s0 + len), as kern_pointwise.c's copy_channels: a thread per value of the planes of dst that
// the range touches; when the range ends dst's channels, an assigned blocked piece's padding
// lanes are written as 0 too.
CU_DEVICE void cu_copy_channels(int n, int hw, const float *src, int sc, int s0, KOut dst, int dc, int d0, int len) {
  const int first = d0 / KB, nblk = (d0 + len - 1) / KB - first + 1, stride = cu_stride_of(dc);
  for (int64_t e = cu_first(); e < (int64_t)n * nblk * hw * stride; e += cu_step()) {
    CuElem v = cu_elem(e, stride, hw, first, nblk);
    int ch = v.bk * KB + v.lane, ds;
    bool acc;
    float *d = cu_out_plane(dst, dc, hw, v.i, v.bk, &ds, &acc);
    if (ch >= d0 && ch < d0 + len) {
      int from = ch - d0 + s0;
      int64_t at = sc == 1 ? (int64_t)v.i * hw + v.p
                           : (((int64_t)v.i * kb_blocks(sc) + from / KB) * hw + v.p) * KB + from % KB;
      cu_put(d, ds, acc, v.p, v.lane, src[at]);
    } else if (ch >= dc && ds == KB && !acc && d0 + len == dc) {
      cu_put(d, ds, false, v.p, v.lane, 0.0f);
    }
  }
}

// x [n][c_from][hw] into channels [offset, offset + c_from) of y [n][c_to][hw]: the
// concatenation caec falls back to when a piece does not start on a 16-channel block.
CU_DEVICE void cu_concat_piece(int n, int hw, int c_from, int c_to, int offset, const float *x, float *y) {
  cu_copy_channels(n, hw, x, c_from, 0, cu_out(y, NULL, 0, false, false, NULL, false), c_to, offset, c_from);
}

// Its backward: dx [n][c_from][hw] (=|+=) channels [offset, offset + c_from) of dy [n][c_to][hw].
CU_DEVICE void cu_split_piece(int n, int hw, int c_from, int c_to, int offset, const float *dy, KOut dx) {
  cu_copy_channels(n, hw, dy, c_to, offset, dx, c_from, 0, c_from);
}

#endif
