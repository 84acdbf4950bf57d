// cu_conv.cuh: the convolution ops of the CUDA back end, with kern_conv.c's
// semantics (kern.h, kern_types.h): weight packing, gather, scatter and the
// weight gradient, on NCHW16c tensors in one or two pieces with their
// prologues, and gather's and scatter's epilogues (KOut.stats is not read: the
// code generator follows these ops with a row-sums op).
//
// All three are implicit GEMMs on one block tile of 4096 outputs, 256 threads
// of 4 x 4 fp32 accumulators, that steps through K 16 columns at a time
// through shared memory, double-buffered: each step's operands are fetched
// into registers while the previous step's are multiplied, so one barrier a
// step suffices. No atomics: each output is summed by one thread (or by fixed
// groups and chunks, added in a fixed order), so results are bitwise the same
// from run to run.
//
//   gather   [n*gh*gw grid pixels] x [gc]  = image taps [.. x ic*k*k] . w
//   scatter  [n*ih*iw image pixels] x [ic] = grid taps [.. x gc*k*k] . w
//            image pixels in stride x stride phases (one per grid.z), so that a
//            tile's pixels share their taps and K holds only the taps that hit.
//   wgrad    [gc] x [ic*k*k] = grid^T . image taps over K = n*gh*gw pixels, split
//            into chunks whose partial tiles a second stage sums in order.
//
// K columns of a tensor read through taps (CcSrc): (tap, channel block, lane),
// a step being one 16-channel block at one tap; or, for a plain 1-channel
// tensor, the taps themselves, 16 to a step. Taps outside the tensor, lanes
// past its channels and columns past the taps read 0. Prologues are applied as
// values are fetched, so padding taps read 0 after them (zero padding of the
// prologue'd tensor).
//
// Tile shapes follow the output channels (16 per block): gather and scatter
// tiles are [TM pixels] x [TN channels] with TN the smallest of 16, 32, 64
// that covers them (TM = 4096 / TN); a 1-channel output (the last layer) is a
// dot product per pixel instead (cc_conv1). wgrad tiles are [TM grid channels]
// x [TN image columns], TM likewise (4 for a 1-channel grid), TN up to 256;
// where dw is small (first and last layers) the tile shrinks and the threads
// split each K step (cc_wtile).
#ifndef CAEC_CU_CONV_CUH
#define CAEC_CU_CONV_CUH

#include "cu.h"

#if !defined(__CUDACC__)
#include <math.h> // fmaf (a builtin for nvcc and NVRTC)
#endif

enum {
  CC_BUF = CC_KS * (256 + 16 + 8), // floats of one buffer: [16][TM + 4] then [16][TN + 4], TM + TN <= 272
};

// A kernel's shared memory: the double-buffered tiles and a block's partial sums (doubles).
CU_STATIC_ASSERT((2 * CC_BUF + 2 * CU_THREADS) * 4 <= CU_STATIC_SHARED_MAX, "conv tiles exceed static shared memory");

// Shared tiles are read 4 floats at a time; 16-byte alignment lets nvcc use vector loads. The product's K
// loop is unrolled (nvcc leaves it rolled otherwise; C compilers need no hint).
#if defined(__CUDACC__)
#define CC_ALIGN __align__(16)
#define CC_UNROLL _Pragma("unroll")
#else
#define CC_ALIGN
#define CC_UNROLL
#endif

// ---- tensors ----------------------------------------------------------------------------------

// Block cb of image n of a tensor of c channels and hw pixels, in one or two pieces.
typedef struct CcPlane {
  const float *p; // [hw][16], or [hw] when the piece is plain
  int ps;         // pixel stride: 16, or 1 when plain
  int lanes;      // channels of the block; lanes past them read 0
  int first;      // lane 0 as a channel of its piece (the index into pro's arrays)
  KPro pro;
} CcPlane;

CU_DEVICE CcPlane cc_plane(const KIn *t, int c, int64_t hw, int n, int cb) {
  CcPlane pl;
  const int nba = t->b ? t->ca / KB : kb_blocks(c); // blocks of piece a
  const bool in_a = cb < nba;
  const int pc = in_a ? (t->b ? t->ca : c) : c - t->ca; // the piece's channels
  const int lb = in_a ? cb : cb - nba;                  // the block within the piece
  pl.ps = pc == 1 ? 1 : KB;
  pl.p = (in_a ? t->a : t->b) + ((int64_t)n * kb_blocks(pc) + lb) * hw * pl.ps;
  pl.lanes = pc - lb * KB < KB ? pc - lb * KB : KB;
  pl.first = lb * KB;
  pl.pro = in_a ? t->pro_a : t->pro_b;
  return pl;
}

// The prologue: scale * x + shift in one rounding, as kern_conv.c's (the batch norm's shift nearly cancels
// scale * x around the mean, where a second rounding would matter), then relu (NaN -> 0, as its max).
CU_DEVICE float cc_pro(KPro p, int ch, float x) {
  if (p.scale)
    x = fmaf(x, p.scale[ch], p.shift[ch]);
  return p.relu && !(x > 0.0f) ? 0.0f : x;
}

// Where output channel ch of pixel (y, x) of image n lives.
typedef struct CcDst {
  float *p;    // the piece
  int64_t at;  // the offset there (and in res, for a single piece)
  bool plain;  // a plain piece: only lane 0 exists
  bool pad;    // a padding lane (a channel past the piece's)
  bool acc;    // the piece accumulates
} CcDst;

CU_DEVICE CcDst cc_dst(const KOut *t, int c, int h, int w, int n, int y, int x, int ch) {
  CcDst d;
  const int nba = t->b ? t->ca / KB : kb_blocks(c), cb = ch / KB;
  const bool in_a = cb < nba;
  const int pc = in_a ? (t->b ? t->ca : c) : c - t->ca, lb = in_a ? cb : cb - nba;
  d.plain = pc == 1;
  d.at = (((int64_t)n * kb_blocks(pc) + lb) * h * w + (int64_t)y * w + x) * (d.plain ? 1 : KB) + ch % KB;
  d.pad = lb * KB + ch % KB >= pc;
  d.acc = in_a ? t->acc_a : t->acc_b;
  d.p = in_a ? t->a : t->b;
  return d;
}

// A tensor read through taps: pixel base (y, x) and tap t read (y + tstep * (t / tcols), x + tstep * (t % tcols)).
// Its columns: (t * blocks + cb) * 16 + lane, or t when plain (c == 1).
typedef struct CcSrc {
  KIn t;
  int c, h, w, blocks;
  int taps, tcols, tstep;
} CcSrc;

CU_DEVICE CcSrc cc_src(KIn t, int c, int h, int w, int taps, int tcols, int tstep) {
  CcSrc s;
  s.t = t, s.c = c, s.h = h, s.w = w, s.blocks = kb_blocks(c);
  s.taps = taps, s.tcols = tcols > 0 ? tcols : 1, s.tstep = tstep;
  return s;
}

// Columns col4 .. col4 + 3 (col4 % 4 == 0) of the pixel with base (y, x) in image n (n < 0: none, all 0).
CU_DEVICE void cc_fetch4(const CcSrc *s, int n, int y, int x, int col4, float v[4]) {
  for (int l = 0; l < 4; l++)
    v[l] = 0.0f;
  if (n < 0)
    return;
  const int64_t hw = (int64_t)s->h * s->w;
  if (s->c == 1) { // four taps of the one channel
    const CcPlane pl = cc_plane(&s->t, 1, hw, n, 0);
    for (int l = 0; l < 4; l++) {
      const int t = col4 + l, yy = y + s->tstep * (t / s->tcols), xx = x + s->tstep * (t % s->tcols);
      if (t < s->taps && yy >= 0 && yy < s->h && xx >= 0 && xx < s->w)
        v[l] = cc_pro(pl.pro, 0, pl.p[yy * s->w + xx]);
    }
    return;
  }
  // Four lanes of one block at one tap.
  const int t = col4 / (KB * s->blocks), cb = col4 / KB % s->blocks, lane = col4 % KB;
  const int yy = y + s->tstep * (t / s->tcols), xx = x + s->tstep * (t % s->tcols);
  if (t >= s->taps || yy < 0 || yy >= s->h || xx < 0 || xx >= s->w)
    return;
  const CcPlane pl = cc_plane(&s->t, s->c, hw, n, cb);
  const float *px = pl.p + ((int64_t)yy * s->w + xx) * pl.ps;
  for (int l = 0; l < 4; l++)
    if (lane + l < pl.lanes)
      v[l] = cc_pro(pl.pro, pl.first + lane + l, px[lane + l]);
}

// ---- the tile ----------------------------------------------------------------------------------

// acc[i][j] += sum over k in [k0, k0 + kn) of A[k][ty*4 + i] * B[k][tx*4 + j]: A [16][lda], B [16][ldb]. (The
// loop counts from 0 so that nvcc sees its trip count where k0 depends on the thread.)
CU_DEVICE void cc_mma(const float *A, int lda, const float *B, int ldb, int k0, int kn, int ty, int tx,
                      float acc[4][4]) {
  CC_UNROLL
  for (int kk = 0; kk < kn; kk++) {
    const int k = k0 + kk;
    float a[4], b[4];
    for (int i = 0; i < 4; i++)
      a[i] = A[k * lda + ty * 4 + i];
    for (int j = 0; j < 4; j++)
      b[j] = B[k * ldb + tx * 4 + j];
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 4; j++)
        acc[i][j] += a[i] * b[j];
  }
}

// ---- weight packing ------------------------------------------------------------------------------
//
// The B operand of gather and scatter, rows by K column and output channels contiguous (coalesced tile loads):
//   gather  wp[(tap * ic + q) * 16*blocks(gc) + o]
//   scatter wp[(tap * gc + o) * 16*blocks(ic) + q]
// with tap = ky * k + kx and 0 past the output channels: as many floats as kern_conv.c's broadcast packings.

// Canonical w [gc][ic][k][k] packed for gather (grid_out) or scatter; a grid-stride loop.
CU_DEVICE void cc_pack(const KConv *g, const float *w, float *wp, bool grid_out) {
  const int kk = g->k * g->k, oc = grid_out ? g->gc : g->ic, inc = grid_out ? g->ic : g->gc;
  const int ld = KB * kb_blocks(oc);
  const int64_t total = (int64_t)kk * inc * ld;
  for (int64_t e = (int64_t)blockIdx.x * CU_THREADS + threadIdx.x; e < total; e += (int64_t)gridDim.x * CU_THREADS) {
    const int o = (int)(e % ld), q = (int)(e / ld % inc), tap = (int)(e / ld / inc);
    const int gch = grid_out ? o : q, ich = grid_out ? q : o;
    wp[e] = o < oc ? w[((int64_t)gch * g->ic + ich) * kk + tap] : 0.0f;
  }
}

CU_DEVICE void cu_pack_gather(const KConv *g, const float *w, float *wp) { cc_pack(g, w, wp, true); }
CU_DEVICE void cu_pack_scatter(const KConv *g, const float *w, float *wp) { cc_pack(g, w, wp, false); }

// ---- gather and scatter ----------------------------------------------------------------------------
//
// out [n*HH*WW pixels] x [oc] = in's taps . packed weights. Output pixel m is (image m / (HH*WW), ii, jj) of
// its phase, at (oy0 + ii*ostep, ox0 + jj*ostep) if ii < vh and jj < vw; its taps read `in` from the base
// (by0 + ii*bstep, bx0 + jj*bstep); K column (tap t, channel ch) has packed row wtap(t) * in.c + ch with
// wtap(t) = (ky0 + kstep * (t / tcols)) * k + kx0 + kstep * (t % tcols).
typedef struct CcConv {
  CcSrc in;
  const float *wp;
  int ldw, k, ky0, kx0, kstep; // ldw: floats per packed row (16 * blocks(oc))
  KOut out;
  int oc, oh, ow;
  const float *bias;
  int n, HH, WW, vh, vw, oy0, ox0, ostep, by0, bx0, bstep;
} CcConv;

// Image, phase row and column of tile pixel m; -1 where it has none.
CU_DEVICE int cc_pixel(const CcConv *cv, int64_t m, int *ii, int *jj) {
  const int64_t per = (int64_t)cv->HH * cv->WW;
  const int n = (int)(m / per), r = (int)(m % per);
  *ii = r / cv->WW, *jj = r % cv->WW;
  return n < cv->n && *ii < cv->vh && *jj < cv->vw ? n : -1;
}

// Weight of K column kc of step `step` for output column col.
CU_DEVICE float cc_weight(const CcConv *cv, int step, int kc, int col) {
  const CcSrc *s = &cv->in;
  const int t = s->c == 1 ? step * CC_KS + kc : step / s->blocks, ch = s->c == 1 ? 0 : step % s->blocks * KB + kc;
  if (t >= s->taps || ch >= s->c || col >= cv->ldw)
    return 0.0f;
  const int wt = (cv->ky0 + cv->kstep * (t / s->tcols)) * cv->k + cv->kx0 + cv->kstep * (t % s->tcols);
  return cv->wp[((int64_t)wt * s->c + ch) * cv->ldw + col];
}

// The epilogue of output pixel m, channel o, whose sum is v: + bias, + res, relu, then stored or added.
// Padding lanes are assigned 0 (or left, when adding).
CU_DEVICE void cc_put(const CcConv *cv, int64_t m, int o, float v) {
  int ii, jj;
  const int n = cc_pixel(cv, m, &ii, &jj);
  if (n < 0 || o >= cv->ldw)
    return;
  const CcDst d = cc_dst(&cv->out, cv->oc, cv->oh, cv->ow, n, cv->oy0 + ii * cv->ostep, cv->ox0 + jj * cv->ostep, o);
  if (d.pad) { // a padding lane (none past a plain piece's one channel)
    if (!d.plain && !d.acc)
      d.p[d.at] = 0.0f;
    return;
  }
  v += cv->bias ? cv->bias[o] : 0.0f;
  if (cv->out.res)
    v += cv->out.res[d.at];
  if (cv->out.relu && !(v > 0.0f))
    v = 0.0f;
  d.p[d.at] = d.acc ? d.p[d.at] + v : v;
}

// One tile: pixels m0 + [0, TM) x output channels n0 + [0, TN). Each thread fetches, per step, lanes
// (t%4)*4 .. +3 of the step's 16 columns for pixels t/4 + 64r (A, stored transposed: [16][TM + 4]) and K rows
// t/TN + (256/TN) e of weight column t%TN (B: [16][TN + 4]); it accumulates pixels ty*4 .. +3 of channels
// tx*4 .. +3.
CU_DEVICE void cc_conv(const CcConv *cv) {
  CU_SHARED CC_ALIGN float sm[2 * CC_BUF];
  const int t = (int)threadIdx.x, TN = cc_narrow(cv->ldw), TM = CC_TILE / TN, NT = TN / 4;
  const int lda = TM + 4, ldb = TN + 4, ty = t / NT, tx = t % NT;
  const int64_t m0 = (int64_t)blockIdx.x * TM;
  const int n0 = (int)blockIdx.y * TN;
  const int steps = cv->in.c == 1 ? (cv->in.taps + CC_KS - 1) / CC_KS : cv->in.taps * cv->in.blocks;
  // The thread's A pixels: image and base position.
  int pn[4], py[4], px[4];
  for (int r = 0; r < TM / 64; r++) {
    int ii, jj;
    pn[r] = cc_pixel(cv, m0 + t / 4 + 64 * r, &ii, &jj);
    py[r] = cv->by0 + ii * cv->bstep, px[r] = cv->bx0 + jj * cv->bstep;
  }
  float acc[4][4], ra[16], rb[4];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      acc[i][j] = 0.0f;
  for (int s = 0; s <= steps; s++) {
    // Fetch step s (none past the last), multiply step s - 1, stash step s.
    if (s < steps) {
      for (int r = 0; r < TM / 64; r++)
        cc_fetch4(&cv->in, pn[r], py[r], px[r], s * CC_KS + t % 4 * 4, ra + 4 * r);
      for (int e = 0; e < TN / 16; e++)
        rb[e] = cc_weight(cv, s, t / TN + CU_THREADS / TN * e, n0 + t % TN);
    }
    if (s > 0) {
      const float *A = sm + (s - 1) % 2 * CC_BUF;
      cc_mma(A, lda, A + CC_KS * lda, ldb, 0, CC_KS, ty, tx, acc);
    }
    if (s < steps) {
      float *A = sm + s % 2 * CC_BUF, *B = A + CC_KS * lda;
      for (int r = 0; r < TM / 64; r++)
        for (int l = 0; l < 4; l++)
          A[(t % 4 * 4 + l) * lda + t / 4 + 64 * r] = ra[4 * r + l];
      for (int e = 0; e < TN / 16; e++)
        B[(t / TN + CU_THREADS / TN * e) * ldb + t % TN] = rb[e];
    }
    CU_SYNC();
  }
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      cc_put(cv, m0 + ty * 4 + i, n0 + tx * 4 + j, acc[i][j]);
}

// A 1-channel output (plain; the last layer's conv and convT): a 16-channel tile would be 15/16 zero columns,
// so each output pixel is a dot product over K. Thread t takes pixel blockIdx.x * 64 + t/4 and columns
// (t%4)*4 .. +3 of every step (a pixel's 16 lanes: coalesced), and a pixel's four partial sums are added in
// order. Grid: x pixels / 64, z phases.
CU_DEVICE void cc_conv1(const CcConv *cv) {
  CU_SHARED float part[CU_THREADS];
  const int t = (int)threadIdx.x, kc = t % 4 * 4;
  const int64_t m = (int64_t)blockIdx.x * (CU_THREADS / 4) + t / 4;
  const int steps = cv->in.c == 1 ? (cv->in.taps + CC_KS - 1) / CC_KS : cv->in.taps * cv->in.blocks;
  int ii, jj;
  const int n = cc_pixel(cv, m, &ii, &jj), y = cv->by0 + ii * cv->bstep, x = cv->bx0 + jj * cv->bstep;
  float sum = 0.0f;
  for (int s = 0; s < steps && n >= 0; s++) {
    float v[4];
    cc_fetch4(&cv->in, n, y, x, s * CC_KS + kc, v);
    for (int l = 0; l < 4; l++)
      sum += v[l] * cc_weight(cv, s, kc + l, 0);
  }
  part[t] = sum;
  CU_SYNC();
  if (t % 4 == 0)
    cc_put(cv, m, 0, part[t] + part[t + 1] + part[t + 2] + part[t + 3]);
}

// grid [n][gc][gh][gw] = image taps . w (+ bias[gc]): grid pixel (i, j) reads image (i*s - pad_top + ky, ...).
// Grid: x pixel tiles, y channel tiles.
CU_DEVICE void cu_gather(const KConv *g, KIn image, const float *wp, const float *bias, KOut grid) {
  CcConv cv;
  cv.in = cc_src(image, g->ic, g->ih, g->iw, g->k * g->k, g->k, 1);
  cv.wp = wp, cv.ldw = KB * kb_blocks(g->gc), cv.k = g->k, cv.ky0 = 0, cv.kx0 = 0, cv.kstep = 1;
  cv.out = grid, cv.oc = g->gc, cv.oh = g->gh, cv.ow = g->gw, cv.bias = bias;
  cv.n = g->n, cv.HH = g->gh, cv.WW = g->gw, cv.vh = g->gh, cv.vw = g->gw;
  cv.oy0 = 0, cv.ox0 = 0, cv.ostep = 1;
  cv.by0 = -g->pad_top, cv.bx0 = -g->pad_left, cv.bstep = g->stride;
  if (g->gc == 1)
    cc_conv1(&cv);
  else
    cc_conv(&cv);
}

// image [n][ic][ih][iw] = sum of grid * w over the taps that hit (+ bias[ic]). Image pixel y = ry + ii*s of
// phase ry (blockIdx.z / s) is hit by kernel rows ky = phy + a*s, phy = (ry + pad_top) mod s, from grid rows
// i = (y + pad_top - ky) / s = ii + (ry + pad_top - phy) / s - a; columns likewise (rx = blockIdx.z % s).
// Grid: x pixel tiles (of ceil(ih/s) x ceil(iw/s) per image), y channel tiles, z phases.
CU_DEVICE void cu_scatter(const KConv *g, KIn grid, const float *wp, const float *bias, KOut image) {
  const int s = g->stride, ry = (int)blockIdx.z / s, rx = (int)blockIdx.z % s;
  const int phy = ((ry + g->pad_top) % s + s) % s, phx = ((rx + g->pad_left) % s + s) % s;
  const int ny = phy < g->k ? (g->k - 1 - phy) / s + 1 : 0, nx = phx < g->k ? (g->k - 1 - phx) / s + 1 : 0;
  CcConv cv;
  cv.in = cc_src(grid, g->gc, g->gh, g->gw, ny * nx, nx, -1);
  cv.wp = wp, cv.ldw = KB * kb_blocks(g->ic), cv.k = g->k, cv.ky0 = phy, cv.kx0 = phx, cv.kstep = s;
  cv.out = image, cv.oc = g->ic, cv.oh = g->ih, cv.ow = g->iw, cv.bias = bias;
  cv.n = g->n, cv.HH = (g->ih + s - 1) / s, cv.WW = (g->iw + s - 1) / s;
  cv.vh = ry < g->ih ? (g->ih - ry + s - 1) / s : 0, cv.vw = rx < g->iw ? (g->iw - rx + s - 1) / s : 0;
  cv.oy0 = ry, cv.ox0 = rx, cv.ostep = s;
  cv.by0 = (ry + g->pad_top - phy) / s, cv.bx0 = (rx + g->pad_left - phx) / s, cv.bstep = 1;
  if (g->ic == 1)
    cc_conv1(&cv);
  else
    cc_conv(&cv);
}

// ---- weight gradient --------------------------------------------------------------------------------
//
// dw^T as a GEMM: [grid channel columns] x [image columns (tap, channel)] over K = the grid's pixels, 16 a
// step: `rows` x `cols` of one image's grid (one row of up to 16 columns, or whole rows of narrower grids).
// Stage 0: block x < tiles_m * tiles_n sums its tile over chunk y's steps into part[y] ([chunks][mp][np],
// the padded GEMM); block x = tiles sums chunk y's rows of the db tensor into dbp[y] ([chunks][dbw] doubles).
// Stage 1: one thread per element of the padded GEMM (and of db) adds the chunks in order. The tiles and
// the chunks: cu_plan.h's CcWShape.

// Image and grid position of pixel pp of K step s; -1 where it has none.
CU_DEVICE int cc_wpixel(const KConv *g, const CcWShape *ws, int s, int pp, int *i, int *j) {
  const int per = ws->sh * ws->sw, n = s / per, r = s % per;
  *i = r / ws->sw * ws->rows + pp / ws->cols, *j = r % ws->sw * ws->cols + pp % ws->cols;
  return pp < ws->rows * ws->cols && *i < g->gh && *j < g->gw ? n : -1;
}

// Stage 0's tile: rows o0 + [0, TM) (grid columns) x columns n0 + [0, TN) (image columns) over chunk c. Per
// step, A [16 pixels][TM + 4] is fetched by threads t < 4 TM, four columns each: (t%4)*4 .. +3 of column
// group t/64 of pixel t/4 % 16 (or, for TM = 4, columns 0 .. 3 of pixel t); B [16][TN + 4] likewise by threads
// t + 256r < 4 TN, groups t/64 + 4r. Thread group g (of TM TN / 16 threads) multiplies pixels
// [g, g + 1) * 16 / groups of each step, its thread u accumulating rows (u / (TN/4))*4 .. +3 and columns
// (u % (TN/4))*4 .. +3.
CU_DEVICE void cc_wtile(const KConv *g, const CcWShape *ws, const CcSrc *gs, const CcSrc *is, float *part) {
  CU_SHARED CC_ALIGN float sm[2 * CC_BUF];
  const int t = (int)threadIdx.x, TM = ws->tm, TN = ws->tn, lda = TM + 4, ldb = TN + 4;
  const int o0 = (int)blockIdx.x % ws->tiles_m * TM, n0 = (int)blockIdx.x / ws->tiles_m * TN, c = (int)blockIdx.y;
  const int s0 = (int)((int64_t)ws->steps * c / ws->chunks), s1 = (int)((int64_t)ws->steps * (c + 1) / ws->chunks);
  // A's and B's pixels, columns and column groups for this thread.
  const int qa = (TM < KB ? TM : KB) / 4, ppa = t / qa % CC_KS, cola = (t / (CC_KS * qa)) * KB + t % qa * 4;
  const int ppb = t / 4 % CC_KS, colb = t / 64 * KB + t % 4 * 4;
  // (group 0 is spelled out for a single group: nvcc cannot tell that t / 256 is 0, and unrolls the product
  // only where k0 is known.)
  const int group = ws->groups > 1 ? t / (TM * TN / CC_KS) : 0, u = t % (TM * TN / CC_KS);
  const int ty = u / (TN / 4), tx = u % (TN / 4), kn = CC_KS / ws->groups, k0 = group * kn;
  float acc[4][4], ra[4], rb[16];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      acc[i][j] = 0.0f;
  for (int s = s0; s <= s1; s++) {
    if (s < s1) {
      int i, j, n = cc_wpixel(g, ws, s, ppa, &i, &j);
      cc_fetch4(gs, t < 4 * TM ? n : -1, i, j, o0 + cola, ra); // threads past A's fetch zeros
      n = cc_wpixel(g, ws, s, ppb, &i, &j);
      for (int r = 0; r < (TN + 63) / 64; r++)
        cc_fetch4(is, t + CU_THREADS * r < 4 * TN ? n : -1, i * g->stride - g->pad_top, j * g->stride - g->pad_left,
                  n0 + colb + 4 * KB * r, rb + 4 * r);
    }
    if (s > s0) {
      const float *A = sm + (s - 1) % 2 * CC_BUF;
      cc_mma(A, lda, A + CC_KS * lda, ldb, k0, kn, ty, tx, acc);
    }
    if (s < s1) {
      float *A = sm + s % 2 * CC_BUF, *B = A + CC_KS * lda;
      for (int l = 0; l < 4 && t < 4 * TM; l++)
        A[ppa * lda + cola + l] = ra[l];
      for (int r = 0; r < (TN + 63) / 64; r++)
        for (int l = 0; l < 4 && t + CU_THREADS * r < 4 * TN; l++)
          B[ppb * ldb + colb + 4 * KB * r + l] = rb[4 * r + l];
    }
    CU_SYNC();
  }
  // The groups' tiles [groups][TM][TN], over the operands (all read: the loop ends at a barrier), added in order.
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      sm[(group * TM + ty * 4 + i) * TN + tx * 4 + j] = acc[i][j];
  CU_SYNC();
  for (int e = t; e < TM * TN; e += CU_THREADS) {
    float sum = 0.0f;
    for (int q = 0; q < ws->groups; q++)
      sum += sm[q * TM * TN + e];
    part[((int64_t)c * ws->mp + o0 + e / TN) * ws->np + n0 + e % TN] = sum;
  }
}

// Stage 0's db block: the per-channel sums, in double, of rows [c*R/chunks, (c+1)*R/chunks) of the R = n*h rows
// of x (c channels, h x w, prologues applied), into dbp[c]: thread t sums lane t%16 of pixels t/16 + 16k, and
// the 16 partial sums of each lane are added in order.
CU_DEVICE void cc_wdb(const CcWShape *ws, int n, KIn x, int c, int h, int w, double *dbp) {
  CU_SHARED double red[CU_THREADS];
  const int t = (int)threadIdx.x, lane = t % KB, chunk = (int)blockIdx.y;
  const int64_t rows = (int64_t)n * h, r0 = rows * chunk / ws->chunks, r1 = rows * (chunk + 1) / ws->chunks;
  for (int cb = 0; cb < kb_blocks(c); cb++) {
    double sum = 0;
    for (int64_t p = t / KB; p < (r1 - r0) * w; p += CU_THREADS / KB) {
      const int64_t row = r0 + p / w;
      const CcPlane pl = cc_plane(&x, c, (int64_t)h * w, (int)(row / h), cb);
      if (lane < pl.lanes)
        sum += cc_pro(pl.pro, pl.first + lane, pl.p[((row % h) * w + p % w) * pl.ps + lane]);
    }
    red[t] = sum;
    CU_SYNC();
    if (t < KB) {
      double total = 0;
      for (int q = 0; q < CU_THREADS / KB; q++)
        total += red[q * KB + t];
      dbp[(int64_t)chunk * ws->dbw + cb * KB + t] = total;
    }
    CU_SYNC();
  }
}

// dw [gc][ic][k][k] = sum over grid pixels of grid * image taps (assigned); db (nullable) the per-channel sums
// of the grid (bias_of_grid) or of the image; both inputs through their prologues. Deterministic: fixed chunks,
// summed in order. Stage 0 grid: (tiles + 1, chunks); stage 1: one thread per element of the padded GEMM and db.
CU_DEVICE void cu_wgrad(int stage, void *work, const KConv *g, KIn grid, KIn image, float *dw, float *db,
                        bool bias_of_grid) {
  const CcWShape ws = cc_wshape(g);
  float *part = (float *)work;
  double *dbp = (double *)work + ws.dbo;
  if (stage == 0) {
    if ((int)blockIdx.x < ws.tiles_m * ws.tiles_n) {
      const CcSrc gs = cc_src(grid, g->gc, g->gh, g->gw, 1, 1, 0);
      const CcSrc is = cc_src(image, g->ic, g->ih, g->iw, g->k * g->k, g->k, 1);
      cc_wtile(g, &ws, &gs, &is, part);
    } else if (db) {
      if (bias_of_grid)
        cc_wdb(&ws, g->n, grid, g->gc, g->gh, g->gw, dbp);
      else
        cc_wdb(&ws, g->n, image, g->ic, g->ih, g->iw, dbp);
    }
    return;
  }
  const int kk = g->k * g->k, icols = g->ic == 1 ? 1 : KB * kb_blocks(g->ic), dbc = bias_of_grid ? g->gc : g->ic;
  const int64_t elems = (int64_t)ws.mp * ws.np;
  for (int64_t e = (int64_t)blockIdx.x * CU_THREADS + threadIdx.x; e < elems + ws.dbw;
       e += (int64_t)gridDim.x * CU_THREADS) {
    if (e < elems) {
      // Column (tap, image channel q) of grid channel o.
      const int o = (int)(e / ws.np), col = (int)(e % ws.np), tap = col / icols, q = col % icols;
      if (o >= g->gc || tap >= kk || q >= g->ic)
        continue;
      float sum = 0.0f;
      for (int c = 0; c < ws.chunks; c++)
        sum += part[(int64_t)c * elems + e];
      dw[((int64_t)o * g->ic + q) * kk + tap] = sum;
    } else if (db && e - elems < dbc) {
      double sum = 0;
      for (int c = 0; c < ws.chunks; c++)
        sum += dbp[(int64_t)c * ws.dbw + (e - elems)];
      db[e - elems] = (float)sum;
    }
  }
}

#endif
