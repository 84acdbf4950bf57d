// kern_wino.c: Winograd F(4x4, 3x3) (Lavin and Gray, 2016) for the 3x3
// stride-1 convolutions that keep their size (pad 1), on blocked tensors.
// A 4x4 output tile takes 36 multiplications per channel pair instead of 144:
//
//   Y = A^T [ (G w G^T) (.) (B^T d B) ] A     d: the 6x6 input patch, w: 3x3 weights
//
// so the work is a batched GEMM, one per position xi of the 6x6 transformed
// tile: M[xi][tile][out] = sum over in of V[xi][tile][in] * U[xi][in][out].
// A chunk is a few whole tile rows of one image (sized to stay in L2): its
// input tiles are transformed into V, multiplied into M, and M is transformed
// back into the output rows, where the epilogue (bias, residual, relu, add or
// assign, batch-norm sums) runs. Each output value and each row's sums come
// from one chunk, computed by one thread in a fixed order: bitwise the same
// for any thread count. The results round differently from the direct kernels
// (the transforms), within the same tolerance against the reference.
//
// scatter (conv's data gradient) is the same correlation with the weights
// turned 180 degrees and their channel roles swapped, so kw_pack_scatter
// packs those and both directions run one kernel.
#include "kern.h"

#include "kern_blocks.h"
#include "kern_simd.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>


// The GEMM's register tile: WRT tiles x WOB output blocks of accumulators.
// (Macros, not enums: the switch below instantiates the tiles the build has registers for.)
#if defined(__AVX512F__)
#define WOB 2
#define WRT 14
#elif defined(__AVX2__) && defined(__FMA__)
#define WOB 1
#define WRT 6
#else
#define WOB 1
#define WRT 2
#endif
enum { XI = 36 };
_Static_assert(WOB <= KW_OBS, "kern_work.h sizes M for KW_OBS out blocks");

// U [xi][out block][in channel, padded to blocks][16 out lanes] (kw_packed_floats), for the out and in
// channels of the direction: gather reads the image (in = ic), scatter the grid (in = gc) with w turned
// 180 degrees.
// G, of U = G w G^T (6 x 3).
static const double G[6][3] = {{1.0 / 4, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                               {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};

static void pack(const KConv *g, const float *w, float *u, bool scatter) {
  const int oc = scatter ? g->ic : g->gc, inc = scatter ? g->gc : g->ic;
  const int ob_n = kb_blocks(oc), inp = kb_blocks(inc) * KB;
  for (int o = 0; o < ob_n * KB; o++)
    for (int q = 0; q < inp; q++) {
      double t[3][3] = {{0}}, gt[6][3], x[6][6];
      if (o < oc && q < inc)
        for (int a = 0; a < 3; a++)
          for (int b = 0; b < 3; b++)
            t[a][b] = scatter ? w[((size_t)q * g->ic + o) * 9 + (2 - a) * 3 + (2 - b)]
                              : w[((size_t)o * g->ic + q) * 9 + a * 3 + b];
      for (int i = 0; i < 6; i++)
        for (int b = 0; b < 3; b++)
          gt[i][b] = G[i][0] * t[0][b] + G[i][1] * t[1][b] + G[i][2] * t[2][b];
      for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++)
          x[i][j] = gt[i][0] * G[j][0] + gt[i][1] * G[j][1] + gt[i][2] * G[j][2];
      for (int xi = 0; xi < XI; xi++)
        u[(((size_t)xi * ob_n + o / KB) * inp + q) * KB + o % KB] = (float)x[xi / 6][xi % 6];
    }
}

void kw_pack_gather(const KConv *g, const float *w, float *u) { pack(g, w, u, false); }
void kw_pack_scatter(const KConv *g, const float *w, float *u) { pack(g, w, u, true); }

// ---- the pieces of a chunk ----------------------------------------------------------------------

// What a chunk's stages share: one image's tile rows [tr0, tr1) of a c x h x w output.
typedef struct Chunk {
  KIn in;
  KOut out;
  int ic, oc, h, w, n; // channels in and out, the size, the image
  int tx, tr0, tr1;    // tiles per row, the chunk's tile rows
  int tiles;           // (tr1 - tr0) * tx
  float *v, *m;        // V [xi][in block][tiles][16], M [xi][out block - ob0 < WOB][tiles][16] (a group of
  size_t vxs, mxs;     // out blocks at a time), xi planes vxs and mxs floats apart (kern_work.h's kw_chunk)
} Chunk;

// B^T x for the 6 values x[0], x[s], ..., x[5s] in place (one lane-wise vector each).
INLINE void bt6(vf *x, int s) {
  vf d0 = x[0], d1 = x[s], d2 = x[2 * s], d3 = x[3 * s], d4 = x[4 * s], d5 = x[5 * s];
  vf f = vbc(4.0f), fv = vbc(-5.0f), two = vbc(2.0f);
  x[0] = vfma(f, d0, vfma(fv, d2, d4));
  x[s] = vfma(vbc(-4.0f), d1 + d2, d3 + d4);
  x[2 * s] = vfma(f, d1 - d2, d4 - d3);
  x[3 * s] = vfma(two, d3 - d1, d4 - d2);
  x[4 * s] = vfma(two, d1 - d3, d4 - d2);
  x[5 * s] = vfma(f, d1, vfma(fv, d3, d5));
}

// A^T x for 6 values, into 4 at y[0], y[s], y[2s], y[3s].
INLINE void at6(const vf *x, int xs, vf *y, int s) {
  vf m0 = x[0], m1 = x[xs], m2 = x[2 * xs], m3 = x[3 * xs], m4 = x[4 * xs], m5 = x[5 * xs];
  vf p12 = m1 + m2, d12 = m1 - m2, p34 = m3 + m4, d34 = m3 - m4;
  y[0] = m0 + p12 + p34;
  y[s] = vfma(vbc(2.0f), d34, d12);
  y[2 * s] = vfma(vbc(4.0f), p34, p12);
  y[3 * s] = vfma(vbc(8.0f), d34, d12) + m5;
}

// V of input block b for tile t: the 6x6 patch at (y0, x0) = (4 tr - 1, 4 tc - 1) through the prologue
// (PRO: 0 none, 1 affine, 2 affine and relu), zero outside the image. The fields a loop needs are locals:
// vst's memcpy may alias anything, so the compiler would reload them after every store.
INLINE void tile_in(const Chunk *c, const float *plane, const BlockPro *p, int b, int t, int y0, int x0,
                    const int inside, const int PRO) {
  const int h = c->h, w = c->w;
  const size_t vxs = c->vxs;
  // The patch rows [i0, i1) and columns [j0, j1) that lie inside.
  const int i0 = inside || y0 >= 0 ? 0 : -y0, i1 = inside || y0 + 6 <= h ? 6 : h - y0;
  const int j0 = inside || x0 >= 0 ? 0 : -x0, j1 = inside || x0 + 6 <= w ? 6 : w - x0;
  float *vt = c->v + ((size_t)b * (size_t)c->tiles + (size_t)t) * KB;
  const float *pt = plane + ((ptrdiff_t)y0 * w + x0) * KB;
  for (int v = 0; v < NV; v++) {
    vf d[36];
    const vf s = vld(p->s + v * VW), sh = vld(p->b + v * VW);
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++) {
#pragma GCC unroll 6
      for (int j = 0; j < 6; j++) {
        vf e = (vf){0};
        if (inside || (i >= i0 && i < i1 && j >= j0 && j < j1)) {
          e = vld(pt + ((ptrdiff_t)i * w + j) * KB + v * VW);
          e = vpro(e, s, sh, PRO > 0, PRO == 2);
        }
        d[i * 6 + j] = e;
      }
      bt6(d + i * 6, 1);
    }
#pragma GCC unroll 6
    for (int j = 0; j < 6; j++)
      bt6(d + j, 6);
#pragma GCC unroll 36
    for (int xi = 0; xi < XI; xi++)
      vst(vt + (size_t)xi * vxs + v * VW, d[xi]);
  }
}

INLINE void block_in(const Chunk *c, const float *plane, const BlockPro *p, int b, const int PRO) {
  for (int t = 0; t < c->tiles; t++) {
    const int y0 = (c->tr0 + t / c->tx) * 4 - 1, x0 = t % c->tx * 4 - 1;
    if (y0 >= 0 && y0 + 6 <= c->h && x0 >= 0 && x0 + 6 <= c->w)
      tile_in(c, plane, p, b, t, y0, x0, 1, PRO);
    else
      tile_in(c, plane, p, b, t, y0, x0, 0, PRO);
  }
}

// V of input block b (`plane`, prologue p) for every tile of the chunk.
static void chunk_in_block(const Chunk *c, const float *plane, const BlockPro *p, int b) {
  if (!p->on)
    block_in(c, plane, p, b, 0);
  else if (!p->relu)
    block_in(c, plane, p, b, 1);
  else
    block_in(c, plane, p, b, 2);
}

static void chunk_in(const Chunk *c) {
  const size_t hw = (size_t)c->h * (size_t)c->w;
  for (int b = 0; b < kb_blocks(c->ic); b++) {
    int ps; // 16: the pieces are blocked (kw_fits)
    const BlockPro p = block_pro(c->in, c->ic, b);
    chunk_in_block(c, in_plane(c->in, c->ic, c->n, b, hw, &ps), &p, b);
  }
}

// M[xi][0 .. OW)[t0 .. t0 + R) = sum over the in channels of V[xi][.][t0 ..] * U[xi][ob ..].
INLINE void gemm_tile(const Chunk *c, const float *u, int xi, int ob, int t0, const int R, const int OW) {
  const int ib = kb_blocks(c->ic), ob_n = kb_blocks(c->oc);
  const size_t ubs = (size_t)ib * KB * KB, tb = (size_t)c->tiles * KB; // U floats per out block; per V or M block
  vf acc[WRT][WOB][NV];
  for (int p = 0; p < R; p++)
    for (int o = 0; o < OW; o++)
      for (int v = 0; v < NV; v++)
        acc[p][o][v] = (vf){0};
  const float *ux = u + ((size_t)xi * ob_n + ob) * ubs;
  for (int b = 0; b < ib; b++) {
    const float *vb = c->v + (size_t)xi * c->vxs + (size_t)b * tb + (size_t)t0 * KB, *ub = ux + (size_t)b * KB * KB;
#pragma GCC unroll 16
    for (int q = 0; q < KB; q++) {
      vf wv[WOB][NV];
      for (int o = 0; o < OW; o++)
        for (int v = 0; v < NV; v++)
          wv[o][v] = vld(ub + (size_t)o * ubs + q * KB + v * VW);
      for (int p = 0; p < R; p++) {
        const vf x = vbc(vb[p * KB + q]);
        for (int o = 0; o < OW; o++)
          for (int v = 0; v < NV; v++)
            acc[p][o][v] = vfma(x, wv[o][v], acc[p][o][v]);
      }
    }
  }
  for (int o = 0; o < OW; o++)
    for (int p = 0; p < R; p++)
      for (int v = 0; v < NV; v++)
        vst(c->m + (size_t)xi * c->mxs + (size_t)o * tb + (size_t)(t0 + p) * KB + v * VW, acc[p][o][v]);
}

// One register tile of R tiles (R known at compile time from the switch) and OW out blocks.
#define GEMM_CASE(R)                                                                                                   \
  case R:                                                                                                              \
    ow == WOB ? gemm_tile(c, u, xi, ob, t0, R, WOB) : gemm_tile(c, u, xi, ob, t0, R, 1);                              \
    break;

static void gemm_any(const Chunk *c, const float *u, int xi, int ob, int t0, int r, int ow) {
  switch (r) {
#if WRT >= 14
    GEMM_CASE(14) GEMM_CASE(13) GEMM_CASE(12) GEMM_CASE(11) GEMM_CASE(10) GEMM_CASE(9) GEMM_CASE(8) GEMM_CASE(7)
#endif
#if WRT >= 6
    GEMM_CASE(6) GEMM_CASE(5) GEMM_CASE(4) GEMM_CASE(3)
#endif
    GEMM_CASE(2) GEMM_CASE(1)
  default:
    abort();
  }
}
#undef GEMM_CASE

// M of the out blocks [ob, ob + ow), in balanced register tiles along the chunk's tiles.
static void chunk_gemm(const Chunk *c, const float *u, int ob, int ow) {
  const int groups = (c->tiles + WRT - 1) / WRT;
  for (int xi = 0; xi < XI; xi++)
    for (int gi = 0; gi < groups; gi++) {
      const int t0 = (int)((long)c->tiles * gi / groups), t1 = (int)((long)c->tiles * (gi + 1) / groups);
      gemm_any(c, u, xi, ob, t0, t1 - t0, ow);
    }
}

// Out block ob (M's o-th) of every tile: A^T M A, then the epilogue, then the rows' batch-norm sums.
static void chunk_out(const Chunk *c, int ob, int o, const float *bias) {
  const int ob_n = kb_blocks(c->oc);
  const size_t hw = (size_t)c->h * (size_t)c->w;
  bool acc;
  int ps;
  float *plane = out_plane(c->out, c->oc, c->n, ob, hw, &ps, &acc);
  const float *res = c->out.res ? c->out.res + (plane - c->out.a) : NULL; // a single piece: the same offset
  float bl[KB];
  for (int l = 0; l < KB; l++)
    bl[l] = bias && ob * KB + l < c->oc ? bias[ob * KB + l] : 0.0f;
  const int h = c->h, w = c->w;
  const size_t mxs = c->mxs;
  const bool relu = c->out.relu;
  for (int t = 0; t < c->tiles; t++) {
    const int y0 = (c->tr0 + t / c->tx) * 4, x0 = t % c->tx * 4;
    const int ni = h - y0 < 4 ? h - y0 : 4, nj = w - x0 < 4 ? w - x0 : 4; // the tile's pixels inside
    const float *mt = c->m + ((size_t)o * (size_t)c->tiles + (size_t)t) * KB;
    // The next tile's 36 lines of M, from 36 planes that the hardware prefetcher does not follow.
    if (t + 1 < c->tiles)
#pragma GCC unroll 36
      for (int xi = 0; xi < XI; xi++)
        __builtin_prefetch(mt + (size_t)xi * mxs + KB);
    for (int v = 0; v < NV; v++) {
      vf a[24], y[16];
#pragma GCC unroll 6
      for (int j = 0; j < 6; j++) { // columns: 6 rows into 4
        vf col[6];
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++)
          col[i] = vld(mt + (size_t)(i * 6 + j) * mxs + v * VW);
        at6(col, 1, a + j, 6);
      }
#pragma GCC unroll 4
      for (int i = 0; i < 4; i++) // rows: 6 columns into 4
        at6(a + i * 6, 1, y + i * 4, 1);
      const vf b = vld(bl + v * VW);
      for (int i = 0; i < ni; i++)
        for (int j = 0; j < nj; j++) {
          const size_t at = ((size_t)(y0 + i) * (size_t)w + (size_t)(x0 + j)) * KB + v * VW;
          vf e = y[i * 4 + j] + b;
          if (res)
            e += vld(res + at);
          if (relu)
            e = vmax0(e);
          vst(plane + at, acc ? vld(plane + at) + e : e);
        }
    }
  }
  if (!c->out.stats)
    return;
  // Each row's sums of the values stored, left to right, in double (stats' layout: kern_types.h), in
  // double vectors: each lane's order is that of a scalar loop.
  const size_t width = (size_t)KB * (size_t)ob_n;
  for (int r = c->tr0 * 4; r < c->tr1 * 4 && r < c->h; r++) {
    vd s[2 * NV] = {{0}}, s2[2 * NV] = {{0}};
    for (int x = 0; x < c->w; x++)
      for (int v = 0; v < NV; v++) {
        vd lo, hi;
        vcvt(vld(plane + ((size_t)r * (size_t)c->w + (size_t)x) * KB + v * VW), &lo, &hi);
        s[2 * v] += lo, s[2 * v + 1] += hi, s2[2 * v] += lo * lo, s2[2 * v + 1] += hi * hi;
      }
    double *st = c->out.stats + ((size_t)c->n * (size_t)c->h + (size_t)r) * 2 * width + (size_t)ob * KB;
    memcpy(st, s, sizeof s);
    memcpy(st + width, s2, sizeof s2);
  }
}

// ---- the kernel ------------------------------------------------------------------------------------

static void wino(const KConv *g, bool scatter, KIn in, const float *u, const float *bias, KOut out, KWork work) {
  const int ic = scatter ? g->gc : g->ic, oc = scatter ? g->ic : g->gc, h = g->gh, w = g->gw;
  if (!kw_fits(g) || (in.b && ic - in.ca < 2) || (out.b && (out.res || out.relu || out.stats || oc - out.ca < 2))) {
    fputs("kern_wino: not a same-size 3x3 stride-1 blocked convolution with a single-piece epilogue\n", stderr);
    abort();
  }
  const KwChunk k = kw_chunk(g, scatter);
  const int per_image = (k.ty + k.rows - 1) / k.rows;
  const size_t bytes = kw_conv_work(g, scatter).thread;
#pragma omp parallel num_threads(kwork_team(work))
  {
    float *v = (float *)kwork_mine(work, bytes);
#pragma omp for schedule(static)
    for (int ch = 0; ch < g->n * per_image; ch++) {
      const int tr0 = ch % per_image * k.rows, tr1 = tr0 + k.rows < k.ty ? tr0 + k.rows : k.ty;
      const Chunk c = {.in = in, .out = out, .ic = ic, .oc = oc, .h = h, .w = w, .n = ch / per_image, .tx = k.tx,
                       .tr0 = tr0, .tr1 = tr1, .tiles = (tr1 - tr0) * k.tx, .v = v, .m = v + XI * k.vxs,
                       .vxs = k.vxs, .mxs = k.mxs};
      chunk_in(&c);
      // A group of out blocks at a time, whose M is still in cache for the output transform.
      for (int ob = 0; ob < kb_blocks(oc); ob += WOB) {
        const int ow = kb_blocks(oc) - ob < WOB ? kb_blocks(oc) - ob : WOB;
        chunk_gemm(&c, u, ob, ow);
        for (int o = 0; o < ow; o++)
          chunk_out(&c, ob + o, o, bias);
      }
    }
  }
}

void kw_gather(const KConv *g, KIn image, const float *u, const float *bias, KOut grid, KWork work) {
  wino(g, false, image, u, bias, grid, work);
}

void kw_scatter(const KConv *g, KIn grid, const float *u, const float *bias, KOut image, KWork work) {
  wino(g, true, grid, u, bias, image, work);
}

// ---- the weight gradient ---------------------------------------------------------------------------
//
// As Y = A^T [U (.) V] A with U = G w G^T, the weight gradient is dw = G^T W^ G with
// W^ = sum over tiles of V (.) (A dY A^T): V of the image's 6x6 patches as in the forward, T = A dY A^T of
// the grid's 4x4 tiles. Image by image, the threads transform the image's tiles (a block each), then each
// adds a fixed share of W^'s (xi, image block, grid block) units over the image's tiles in order, so every
// entry is summed by one thread, images then tiles in order, for any thread count.

// A y for 4 values y[0], y[ys], .. into 6 at t[0], t[s], ...
INLINE void a4(const vf *y, int ys, vf *t, int s) {
  const vf y0 = y[0], y1 = y[ys], y2 = y[2 * ys], y3 = y[3 * ys];
  const vf q02 = vfma(vbc(4.0f), y2, y0), q13 = vfma(vbc(4.0f), y3, y1);
  t[0] = y0;
  t[s] = (y0 + y2) + (y1 + y3);
  t[2 * s] = (y0 + y2) - (y1 + y3);
  t[3 * s] = vfma(vbc(2.0f), q13, q02);
  t[4 * s] = vfma(vbc(-2.0f), q13, q02);
  t[5 * s] = y3;
}

// T of grid block ob for every tile of the image (c->m, planes c->mxs apart), through its prologue.
static void block_dy(const Chunk *c, const float *plane, const BlockPro *p, int ob) {
  const int h = c->h, w = c->w;
  for (int t = 0; t < c->tiles; t++) {
    const int y0 = t / c->tx * 4, x0 = t % c->tx * 4;
    float *mt = c->m + ((size_t)ob * (size_t)c->tiles + (size_t)t) * KB;
    for (int v = 0; v < NV; v++) {
      vf y[16], a[24], d[36];
      const vf s = vld(p->s + v * VW), sh = vld(p->b + v * VW);
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
          vf e = (vf){0};
          if (y0 + i < h && x0 + j < w) {
            e = vld(plane + ((size_t)(y0 + i) * (size_t)w + (size_t)(x0 + j)) * KB + v * VW);
            e = vpro(e, s, sh, p->on, p->relu);
          }
          y[i * 4 + j] = e;
        }
      for (int j = 0; j < 4; j++) // columns: 4 rows into 6
        a4(y + j, 4, a + j, 4);
      for (int i = 0; i < 6; i++) // rows: 4 columns into 6
        a4(a + i * 4, 1, d + i * 6, 1);
      for (int xi = 0; xi < XI; xi++)
        vst(mt + (size_t)xi * c->mxs + v * VW, d[xi]);
    }
  }
}

// W^[xi][ib's 16 channels][ob][16] += sum over the image's tiles of V[xi][ib][t][q] * T[xi][ob][t].
static void wgrad_unit(const Chunk *c, float *what, int xi, int ib, int ob) {
  const int ob_n = kb_blocks(c->oc), tiles = c->tiles;
  float *wq = what + (((size_t)xi * (size_t)kb_blocks(c->ic) + (size_t)ib) * KB * (size_t)ob_n + (size_t)ob) * KB;
  const size_t qs = (size_t)ob_n * KB; // floats between W^'s rows of two image channels
  const float *vb = c->v + (size_t)xi * c->vxs + (size_t)ib * (size_t)tiles * KB;
  const float *tb = c->m + (size_t)xi * c->mxs + (size_t)ob * (size_t)tiles * KB;
  vf acc[KB][NV];
  for (int q = 0; q < KB; q++)
    for (int v = 0; v < NV; v++)
      acc[q][v] = vld(wq + (size_t)q * qs + v * VW);
  for (int t = 0; t < tiles; t++) {
    vf y[NV];
    for (int v = 0; v < NV; v++)
      y[v] = vld(tb + (size_t)t * KB + v * VW);
#pragma GCC unroll 16
    for (int q = 0; q < KB; q++) {
      const vf x = vbc(vb[(size_t)t * KB + q]);
      for (int v = 0; v < NV; v++)
        acc[q][v] = vfma(x, y[v], acc[q][v]);
    }
  }
  for (int q = 0; q < KB; q++)
    for (int v = 0; v < NV; v++)
      vst(wq + (size_t)q * qs + v * VW, acc[q][v]);
}

void kw_wgrad(const KConv *g, KIn grid, KIn image, float *dw, float *db, bool bias_of_grid, KWork work) {
  if (!kw_fits(g) || (image.b && g->ic - image.ca < 2) || (grid.b && g->gc - grid.ca < 2)) {
    fputs("kern_wino: not a same-size 3x3 stride-1 blocked convolution\n", stderr);
    abort();
  }
  const int ib_n = kb_blocks(g->ic), ob_n = kb_blocks(g->gc), tx = (g->gw + 3) / 4, tiles = tx * ((g->gh + 3) / 4);
  const size_t what_floats = (size_t)XI * (size_t)ib_n * KB * (size_t)ob_n * KB;
  const size_t vxs = kw_xi_stride(ib_n, tiles), mxs = kw_xi_stride(ob_n, tiles), hw = (size_t)g->gh * g->gw;
  float *what = work.shared, *v = (float *)((unsigned char *)work.shared + kwork_round(what_floats * 4));
  unsigned char *pros = (unsigned char *)v + kwork_round((size_t)XI * (vxs + mxs) * 4);
  BlockPro *gpro = (BlockPro *)pros, *ipro = (BlockPro *)(pros + kc_pros_bytes(g->gc));
  for (int b = 0; b < ob_n; b++)
    gpro[b] = block_pro(grid, g->gc, b);
  for (int b = 0; b < ib_n; b++)
    ipro[b] = block_pro(image, g->ic, b);
  memset(what, 0, what_floats * 4);
  const int units = XI * ib_n * ob_n;
#pragma omp parallel num_threads(kwork_team(work))
  {
    float *row = (float *)kwork_mine(work, kw_wgrad_work(g).thread);
    for (int n = 0; n < g->n; n++) {
      const Chunk c = {.in = image, .ic = g->ic, .oc = g->gc, .h = g->gh, .w = g->gw, .n = n, .tx = tx, .tr0 = 0,
                       .tr1 = (g->gh + 3) / 4, .tiles = tiles, .v = v, .m = v + XI * vxs, .vxs = vxs, .mxs = mxs};
#pragma omp for schedule(static)
      for (int b = 0; b < ib_n + ob_n; b++) {
        int ps; // 16: blocked
        if (b < ib_n)
          chunk_in_block(&c, in_plane(image, g->ic, n, b, hw, &ps), &ipro[b], b);
        else
          block_dy(&c, in_plane(grid, g->gc, n, b - ib_n, hw, &ps), &gpro[b - ib_n], b - ib_n);
      }
#pragma omp for schedule(static)
      for (int u = 0; u < units; u++) // (xi, ib, ob), ob fastest: a thread's units share V's planes
        wgrad_unit(&c, what, u / (ib_n * ob_n), u / ob_n % ib_n, u % ob_n);
    }
    // dw = G^T W^ G per channel pair, in double.
#pragma omp for schedule(static)
    for (int o = 0; o < g->gc; o++)
      for (int q = 0; q < g->ic; q++) {
        double m[6][6], t[6][3];
        for (int xi = 0; xi < XI; xi++)
          m[xi / 6][xi % 6] =
              what[(((size_t)xi * ib_n * KB + (size_t)q) * (size_t)ob_n + (size_t)(o / KB)) * KB + o % KB];
        for (int i = 0; i < 6; i++)
          for (int b = 0; b < 3; b++)
            t[i][b] = m[i][0] * G[0][b] + m[i][1] * G[1][b] + m[i][2] * G[2][b] + m[i][3] * G[3][b] +
                      m[i][4] * G[4][b] + m[i][5] * G[5][b];
        for (int a = 0; a < 3; a++)
          for (int b = 0; b < 3; b++)
            dw[((size_t)o * g->ic + q) * 9 + a * 3 + b] =
                (float)(G[0][a] * t[0][b] + G[1][a] * t[1][b] + G[2][a] * t[2][b] + G[3][a] * t[3][b] +
                        G[4][a] * t[4][b] + G[5][a] * t[5][b]);
      }
    if (db)
      kc_bias_rows(bias_of_grid ? grid : image, g->n, bias_of_grid ? g->gc : g->ic, g->gh, g->gw,
                   bias_of_grid ? gpro : ipro, row, db);
  }
}
