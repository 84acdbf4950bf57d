// kern_conv.c: fp32 convolution and transposed convolution on blocked
// tensors (see kern.h). Direct convolution with register tiles: an output
// block's 16 channels are a vector, an input channel's value at a pixel is
// broadcast, and a tile of up to RT output pixels of one row and OB output
// blocks (each broadcast feeds OB FMAs) accumulates in registers over every
// input channel and tap before it is stored once. Taps that fall outside the
// input read a block of zeros, so edge tiles run the same code; tiles are
// balanced along a row, each width has its own code, and tiles wholly inside
// the input get code specialised for their stride.
//
//   gather   output pixel j of a grid row reads image columns j*stride + c - pad_left.
//   scatter  the adjoint without zero insertion: the image columns of one phase
//            (s + pad_left) % stride read consecutive grid columns, so the same
//            tile serves both with its own column taps.
//   wgrad    parallel over the weights (grid block x image channels x taps), each
//            summed by one thread over (n, i, j) in order.
//
// A 1-channel output (plain layout) would waste 15 of 16 lanes, so there the
// vector runs over the input's channels instead and is summed at the end
// ("reduce" tiles). Every output value is computed by one thread in an order
// that does not depend on the thread count.
//
// Fusion (kern.h). An input piece's prologue (batch norm, relu) is applied to
// copies of the input rows that a thread reads, not per broadcast, where it
// would cost an FMA and a max for every NV FMAs of the tile (double the work
// on AVX2); a copy costs them about once per input value and output block:
// gather and scatter keep a thread's last k prologue'd input rows (Cache),
// wgrad a thread's prologue'd blocks of the current image (Copies). An
// output's epilogue (bias, residual, relu, batch-norm sums) runs on a tile's
// accumulators as they are stored.
#include "kern.h"

#include "kern_blocks.h"
#include "kern_simd.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The tile sizes the build's register file allows (kern_simd.h's vectors; a block is NV of them):
//   RT:   output pixels per gather/scatter tile, OB: output blocks per tile (OB*RT*NV accumulators, OB*NV
//         weights, 1 broadcast);
//   WACC: wgrad accumulators, in blocks (WACC*NV registers).
enum { RT = VW == 16 ? 12 : VW == 8 ? 6 : 2, OB = VW == 16 ? 2 : 1, WACC = VW == 16 ? 24 : VW == 8 ? 6 : 3 };
enum { KMAX = 16 }; // the largest kernel size (tap lists live on the stack)

#define NOINLINE static __attribute__((noinline))

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }
static int mod(int a, int m) { return ((a % m) + m) % m; }

// Rows keep their taps in arrays of KMAX.
static void check_k(const KConv *g) {
  if (g->k > KMAX) {
    fprintf(stderr, "kern_conv: kernel size %d > %d\n", g->k, KMAX);
    abort();
  }
}

// Epilogues are for single-piece outputs (kern.h).
static void check_out(KOut o) {
  if (o.b && (o.res || o.relu || o.stats)) {
    fputs("kern_conv: an epilogue on a two-piece output\n", stderr);
    abort();
  }
}

// ---- prologues -----------------------------------------------------------------------------------

// Per-block prologues of a tensor of c channels, written at `at` (kc_pros_bytes(c) of the workspace), or
// NULL when neither piece has one.
static BlockPro *block_pros(KIn t, int c, void *at) {
  if (!has_pro(t.pro_a) && !(t.b && has_pro(t.pro_b)))
    return NULL;
  BlockPro *bp = at;
  for (int cb = 0; cb < kb_blocks(c); cb++)
    bp[cb] = block_pro(t, c, cb);
  return bp;
}

// y = the prologue of `count` pixels x of a block with pixel stride PS (KB, or 1 when plain), by kern_simd.h's
// vpro. A plain pixel takes lane 0 of the same vector FMA.
INLINE void pro_pixels(const BlockPro *p, const float *x, float *y, size_t count, const int PS, const int relu) {
  vf s[NV], b[NV];
  for (int v = 0; v < NV; v++)
    s[v] = PS == KB ? vld(p->s + v * VW) : vbc(p->s[0]), b[v] = PS == KB ? vld(p->b + v * VW) : vbc(p->b[0]);
  for (size_t px = 0; px < count; px++) {
    if (PS == KB)
      for (int v = 0; v < NV; v++)
        vst(y + px * KB + v * VW, vpro(vld(x + px * KB + v * VW), s[v], b[v], true, relu));
    else
      y[px] = vpro(vbc(x[px]), s[0], b[0], true, relu)[0];
  }
}

static void pro_run(const BlockPro *p, const float *x, float *y, size_t count, int ps) {
  if (ps == 1)
    p->relu ? pro_pixels(p, x, y, count, 1, 1) : pro_pixels(p, x, y, count, 1, 0);
  else
    p->relu ? pro_pixels(p, x, y, count, KB, 1) : pro_pixels(p, x, y, count, KB, 0);
}

// A thread's prologue'd copies of the input rows that gather and scatter read: k slots of [block][iw][16]
// (plain blocks use the first iw floats), input row r in slot r % k. The rows one output row reads lie
// within k consecutive input rows, so they never share a slot, and the next output row of the thread
// (the same image and block, one row down) finds all but `stride` of them in place.
typedef struct Cache {
  float *buf; // NULL without prologues
  int image[KMAX], row[KMAX];
} Cache;

// buf: the thread's slice of the workspace (kc_conv_work), or NULL without prologues.
static Cache cache_new(float *buf) {
  Cache c = {.buf = buf};
  for (int s = 0; s < KMAX; s++)
    c.image[s] = c.row[s] = -1;
  return c;
}

// ---- gather and scatter: one output row in tiles of RT pixels ---------------------------------

// One output block of a row: its weights, where it writes, its bias and epilogue.
typedef struct Dst {
  const float *w;   // packed weights of the output block: [in channel (or block)][k][k][16]
  float *out;       // the output row
  int ops;          // output pixel stride (16, or 1 when plain)
  bool acc;         // add to the output instead of assigning it
  float bias[KB];   // of the output block's channels, 0 past them
  const float *res; // epilogue: the residual's row (NULL: none), laid out as out
  double *stat;     // epilogue: [2][16] sums and sums of squares of the values stored (NULL: none)
} Dst;

// What the tiles of one output row share: its input, taps and up to OB output blocks.
typedef struct Row {
  KIn in;
  const BlockPro *pro;         // the input blocks' prologues (NULL: none); blocks that have one are read
  const float *cache;          // from their copies in Cache.buf
  int ic, ih, iw, n;           // input channels and size; the image of the batch
  int k;
  int nra, ra[KMAX], rr[KMAX]; // row taps: weight row, input row
  int nt, wc[KMAX], off[KMAX]; // column taps: weight column, input column relative to a pixel's base
  int ostep;                   // output columns between tile pixels
  bool relu;                   // epilogue: relu before the store
  int nd;                      // output blocks
  Dst d[OB];
} Row;

// Row tap ia of input block b (pixel stride PS) in `plane`, or its prologue'd copy.
INLINE const float *in_row(const Row *r, const float *plane, int b, int ia, const int PS) {
  if (r->pro && r->pro[b].on)
    return r->cache + ((size_t)(r->rr[ia] % r->k) * (size_t)kb_blocks(r->ic) + (size_t)b) * (size_t)r->iw * KB;
  return plane + (size_t)r->rr[ia] * (size_t)r->iw * PS;
}

// Fills the cache slots of the row's input rows that hold other rows.
static void cache_rows(Row *r, Cache *c) {
  if (!r->pro)
    return;
  const size_t hw = (size_t)r->ih * (size_t)r->iw;
  for (int ia = 0; ia < r->nra; ia++) {
    const int slot = r->rr[ia] % r->k;
    if (c->image[slot] == r->n && c->row[slot] == r->rr[ia])
      continue;
    for (int b = 0; b < kb_blocks(r->ic); b++)
      if (r->pro[b].on) {
        int ps;
        const float *plane = in_plane(r->in, r->ic, r->n, b, hw, &ps);
        pro_run(&r->pro[b], plane + (size_t)r->rr[ia] * (size_t)r->iw * (size_t)ps,
                c->buf + ((size_t)slot * (size_t)kb_blocks(r->ic) + (size_t)b) * (size_t)r->iw * KB, (size_t)r->iw, ps);
      }
    c->image[slot] = r->n, c->row[slot] = r->rr[ia];
  }
  r->cache = c->buf;
}

static const float zeros[KB]; // read in place of taps that fall outside the input

// The input pixels that the R tile pixels read through column tap t of a row, zeros where a tap falls
// outside the input or a pixel is past m. `inside` tiles are full and wholly inside: pixel p reads at a
// constant offset from the first, so the broadcasts of a tile address from one base register.
INLINE void tap_pixels(const Row *r, const float *row, int t, int col0, int m, const float *xp[RT], const int R,
                       const int inside, const int istep, const int PS) {
  const float *base = row + (ptrdiff_t)(col0 + r->off[t]) * PS;
  for (int p = 0; p < R; p++) {
    int col = col0 + p * istep + r->off[t];
    xp[p] = inside || (p < m && col >= 0 && col < r->iw) ? base + p * istep * PS : zeros;
  }
}

// Accumulates input block b (pixel stride PS) into a tile of NB output blocks by broadcasts: each input
// channel's value times each output block's weight vector, so that a broadcast feeds NB*NV FMAs. In reduce
// tiles only plain (1-channel) blocks come here; their weights are per block, and only lane 0 is nonzero.
INLINE void bcast_block(const Row *r, vf acc[OB][RT][NV], int b, const float *plane, int nq, int col0, int m,
                        const int R, const int NB, const int inside, const int istep, const int reduce, const int PS) {
  const size_t k = (size_t)r->k, wq = k * k * KB; // floats between the weights of consecutive input channels
  for (int ia = 0; ia < r->nra; ia++) {
    const float *row = in_row(r, plane, b, ia, PS);
    for (int t = 0; t < r->nt; t++) {
      const float *xp[RT];
      tap_pixels(r, row, t, col0, m, xp, R, inside, istep, PS);
      const size_t tap = (((reduce ? (size_t)b : (size_t)b * KB) * k + (size_t)r->ra[ia]) * k + (size_t)r->wc[t]) * KB;
      for (int q = 0; q < nq; q++) {
        vf wv[OB][NV];
        for (int d = 0; d < NB; d++)
          for (int v = 0; v < NV; v++)
            wv[d][v] = vld(r->d[d].w + tap + (size_t)q * wq + v * VW);
        for (int p = 0; p < R; p++) {
          vf x = vbc(xp[p][q]);
          for (int d = 0; d < NB; d++)
            for (int v = 0; v < NV; v++)
              acc[d][p][v] = vfma(x, wv[d][v], acc[d][p][v]);
        }
      }
    }
  }
}

// The same for a reduce tile's blocked input: the lanes are input channels, summed when the tile is stored.
INLINE void reduce_block(const Row *r, vf acc[RT][NV], int b, const float *plane, int col0, int m, const int R,
                         const int inside, const int istep) {
  const int k = r->k;
  for (int ia = 0; ia < r->nra; ia++) {
    const float *row = in_row(r, plane, b, ia, KB);
    for (int t = 0; t < r->nt; t++) {
      const float *xp[RT];
      tap_pixels(r, row, t, col0, m, xp, R, inside, istep, KB);
      const float *wt = r->d[0].w + (((size_t)b * (size_t)k + (size_t)r->ra[ia]) * (size_t)k + (size_t)r->wc[t]) * KB;
      vf wv[NV];
      for (int v = 0; v < NV; v++)
        wv[v] = vld(wt + v * VW);
      for (int p = 0; p < R; p++)
        for (int v = 0; v < NV; v++)
          acc[p][v] = vfma(vld(xp[p] + v * VW), wv[v], acc[p][v]);
    }
  }
}

// The epilogue of an output pixel at offset `at` of the row: v = acc + bias (+ res), relu, then assigned or
// added; the row's sums are of the value stored (old + v when adding), as the next batch norm sees it.
static inline void store1(const Row *r, const Dst *d, size_t at, float y) {
  float *o = d->out + at;
  y += d->bias[0];
  if (d->res)
    y += d->res[at];
  if (r->relu && !(y > 0))
    y = 0;
  *o = d->acc ? *o + y : y;
  if (d->stat)
    d->stat[0] += *o, d->stat[KB] += (double)*o * *o;
}

// Stores a tile's m pixels of output block d. Their sums stay in registers, each lane summed in pixel order:
// 2 vector conversions, adds and multiplies a pixel instead of 32 scalar double operations.
INLINE void store_blocks(const Row *r, const Dst *d, int ocol0, const vf acc[RT][NV], int m) {
  enum { H = VW / 2 }; // lanes of a vd
  vd sum[2 * NV] = {0}, sq[2 * NV] = {0}; // zeros only quiet maybe-uninitialized: read only when stat
  const bool stat = d->stat != NULL;
  if (stat)
    for (int h = 0; h < 2 * NV; h++)
      memcpy(&sum[h], d->stat + h * H, sizeof sum[h]), memcpy(&sq[h], d->stat + KB + h * H, sizeof sq[h]);
  for (int p = 0; p < m; p++) {
    const size_t at = (size_t)(ocol0 + p * r->ostep) * KB;
    float *o = d->out + at;
    for (int v = 0; v < NV; v++) {
      vf y = acc[p][v] + vld(d->bias + v * VW);
      if (d->res)
        y += vld(d->res + at + v * VW);
      if (r->relu)
        y = vmax0(y);
      if (d->acc)
        y = vld(o + v * VW) + y;
      vst(o + v * VW, y);
      if (stat) {
        vd lo, hi;
        vcvt(y, &lo, &hi);
        sum[2 * v] += lo, sq[2 * v] += lo * lo;
        sum[2 * v + 1] += hi, sq[2 * v + 1] += hi * hi;
      }
    }
  }
  if (stat)
    for (int h = 0; h < 2 * NV; h++)
      memcpy(d->stat + h * H, &sum[h], sizeof sum[h]), memcpy(d->stat + KB + h * H, &sq[h], sizeof sq[h]);
}

// The epilogue of a tile's m pixels and nb output blocks. One function for all tiles, which pass their
// accumulators in memory: inlined, each tile would get a copy of its loops for every combination of the
// epilogue's flags (the compiler unswitches them), which made this file slow to compile.
NOINLINE void store_tile(const Row *r, int ocol0, int m, int nb, bool reduce, const vf acc[OB][RT][NV]) {
  for (int d = 0; d < nb; d++) {
    const Dst *o = &r->d[d];
    if (o->ops == KB) {
      store_blocks(r, o, ocol0, acc[d], m);
      continue;
    }
    for (int p = 0; p < m; p++) { // plain: lane 0, or a reduce tile's lanes summed in a fixed order
      float y = acc[d][p][0][0];
      if (reduce) {
        vf s = acc[d][p][0];
        for (int v = 1; v < NV; v++)
          s += acc[d][p][v];
        y = s[0];
        for (int l = 1; l < VW; l++)
          y += s[l];
      }
      store1(r, o, (size_t)(ocol0 + p * r->ostep), y);
    }
  }
}

// Output pixels ocol0 + p*ostep (p < m <= R) of the row's NB output blocks, whose taps read input columns
// col0 + p*istep + off[t].
INLINE void tile(const Row *r, int col0, int ocol0, int m, const int R, const int NB, const int inside,
                 const int istep, const int reduce) {
  vf acc[OB][RT][NV];
  for (int d = 0; d < NB; d++)
    for (int p = 0; p < R; p++)
      for (int v = 0; v < NV; v++)
        acc[d][p][v] = (vf){0};
  const size_t hw = (size_t)r->ih * (size_t)r->iw;
  for (int b = 0; b < kb_blocks(r->ic); b++) {
    int ps;
    const float *plane = in_plane(r->in, r->ic, r->n, b, hw, &ps);
    if (ps == 1)
      bcast_block(r, acc, b, plane, 1, col0, m, R, NB, inside, istep, reduce, 1);
    else if (reduce)
      reduce_block(r, acc[0], b, plane, col0, m, R, inside, istep);
    else
      bcast_block(r, acc, b, plane, block_channels(r->ic, b), col0, m, R, NB, inside, istep, 0, KB);
  }
  store_tile(r, ocol0, m, NB, reduce, acc);
}

// Tiles of R pixels and NB output blocks (reduce tiles: one output); those inside the input get code
// specialised for stride 1 and, but for reduce tiles (1-channel outputs, rarely strided), stride 2.
INLINE void tile_r(const Row *r, int col0, int ocol0, int m, bool inside, int istep, const int reduce, const int R,
                   const int NB) {
  if (inside && istep == 1)
    tile(r, col0, ocol0, m, R, NB, 1, 1, reduce);
  else if (inside && istep == 2 && !reduce)
    tile(r, col0, ocol0, m, R, NB, 1, 2, reduce);
  else
    tile(r, col0, ocol0, m, R, NB, 0, istep, reduce);
}

// Rows wider than RT split into tiles of more than RT/2 pixels, and each of those widths RT - i has its own
// code, so that no tile of them computes pixels it does not store; narrower rows run as partial RT tiles.
// One function per width and kind keeps functions small enough for the compiler's time.
typedef void TileFn(const Row *r, int col0, int ocol0, int m, bool inside, int istep);
#define TILE_OF(I)                                                                                               \
  enum { R_##I = RT - (I) > 0 ? RT - (I) : 1 };                                                                  \
  NOINLINE void tile_reduce_##I(const Row *r, int col0, int ocol0, int m, bool inside, int istep) {             \
    tile_r(r, col0, ocol0, m, inside, istep, 1, R_##I, 1);                                                       \
  }                                                                                                              \
  NOINLINE void tile_one_##I(const Row *r, int col0, int ocol0, int m, bool inside, int istep) {                \
    tile_r(r, col0, ocol0, m, inside, istep, 0, R_##I, 1);                                                       \
  }                                                                                                              \
  NOINLINE void tile_ob_##I(const Row *r, int col0, int ocol0, int m, bool inside, int istep) {                 \
    tile_r(r, col0, ocol0, m, inside, istep, 0, R_##I, OB);                                                      \
  }
TILE_OF(0)
TILE_OF(1)
TILE_OF(2)
TILE_OF(3)
TILE_OF(4)
TILE_OF(5)
#undef TILE_OF
// [kind: reduce, one block, OB blocks][RT - width]
static TileFn *const tiles_of[3][6] = {
    {tile_reduce_0, tile_reduce_1, tile_reduce_2, tile_reduce_3, tile_reduce_4, tile_reduce_5},
    {tile_one_0, tile_one_1, tile_one_2, tile_one_3, tile_one_4, tile_one_5},
    {tile_ob_0, tile_ob_1, tile_ob_2, tile_ob_3, tile_ob_4, tile_ob_5}};
_Static_assert(6 >= (RT + 1) / 2, "a tile function per width over RT/2");

static void tile_any(const Row *r, int col0, int ocol0, int m, bool inside, int istep, bool reduce) {
  const int kind = reduce ? 0 : r->nd == OB ? 2 : 1;
  if (2 * m > RT)
    tiles_of[kind][RT - m](r, col0, ocol0, m, inside, istep);
  else // partial tiles: tiles_of[kind][0] computes RT pixels, so it must not take them as inside
    tiles_of[kind][0](r, col0, ocol0, m, false, istep);
}

// A row of `cols` tile pixels split into the fewest tiles of balanced sizes (at most RT, differing by 1).
static int tile_start(int cols, int tiles, int i) { return (int)((long)cols * i / tiles); }

// Output block ob's part of a Row: its weights, where it writes, its bias and epilogue; stat: its sums, zeroed.
static void row_output(Dst *d, KOut out, int oc, int oh, int ow, int n, int ob, int orow, const float *bias,
                       bool reduce, double stat[2 * KB]) {
  bool acc;
  float *plane = out_plane(out, oc, n, ob, (size_t)oh * (size_t)ow, &d->ops, &acc);
  d->out = plane + (size_t)orow * (size_t)ow * (size_t)d->ops;
  d->acc = acc;
  for (int l = 0; l < KB; l++)
    d->bias[l] = bias && (reduce ? l == 0 : ob * KB + l < oc) ? bias[reduce ? 0 : ob * KB + l] : 0.0f;
  d->res = out.res ? out.res + (d->out - out.a) : NULL; // a single piece: the same offset
  memset(stat, 0, 2 * KB * sizeof *stat);
  d->stat = out.stats ? stat : NULL;
}

// Block ob's sums into the output's stats, [image][row][sum, sum of squares][channel]: the block's 16
// channels (for a plain output, channel 0 and 15 zeros).
static void row_stats(const Dst *d, KOut out, int oc, int oh, int n, int ob, int orow) {
  if (!d->stat)
    return;
  const size_t width = (size_t)KB * (size_t)kb_blocks(oc), at = ((size_t)n * (size_t)oh + (size_t)orow) * 2 * width;
  for (int l = 0; l < KB; l++) {
    out.stats[at + (size_t)ob * KB + (size_t)l] = d->stat[l];
    out.stats[at + width + (size_t)ob * KB + (size_t)l] = d->stat[KB + l];
  }
}

// Whether an output of oc channels from an input of inc channels uses reduce tiles (and their packing).
static bool reduces(int oc, int inc) { return oc == 1 && inc > 1; }

// Output row i of a convolution: input rows i*stride + a - pad_top through the row taps a, and per tile of
// RT output columns j, input columns j*stride + c - pad_left through the column taps c.
static void gather_row(Row *r, Cache *cache, const KConv *g, int i, bool reduce) {
  const int st = g->stride;
  for (int a = 0; a < g->k; a++) {
    int ir = i * st + a - g->pad_top;
    if (ir >= 0 && ir < g->ih)
      r->ra[r->nra] = a, r->rr[r->nra++] = ir;
  }
  cache_rows(r, cache);
  for (int c = 0; c < g->k; c++)
    r->wc[c] = c, r->off[c] = c;
  r->nt = g->k;
  const int tiles = (g->gw + RT - 1) / RT;
  for (int ti = 0; ti < tiles; ti++) {
    int j0 = tile_start(g->gw, tiles, ti), m = tile_start(g->gw, tiles, ti + 1) - j0, col0 = j0 * st - g->pad_left;
    bool inside = col0 >= 0 && col0 + (m - 1) * st + g->k - 1 < g->iw;
    tile_any(r, col0, j0, m, inside, st, reduce);
  }
}

// Output row r0 of a transposed convolution: the grid rows i with i*stride + a - pad_top = r0 (consecutive
// rows, as the cache wants), and per column phase, the tiles of the columns that share their taps.
static void scatter_row(Row *r, Cache *cache, const KConv *g, int r0, bool reduce) {
  const int st = g->stride;
  for (int a = mod(r0 + g->pad_top, st); a < g->k; a += st) {
    int num = r0 + g->pad_top - a;
    if (num >= 0 && num / st < g->gh)
      r->ra[r->nra] = a, r->rr[r->nra++] = num / st;
  }
  cache_rows(r, cache);
  // Image columns s of phase ph = (s + pad_left) % stride, taken as s = sf + m*stride, read grid columns
  // jb + m - t through the taps c = ph + t*stride.
  for (int ph = 0; ph < st; ph++) {
    int sf = mod(ph - g->pad_left, st);
    if (sf >= g->iw)
      continue;
    int cols = (g->iw - sf + st - 1) / st, jb = (sf + g->pad_left - ph) / st;
    r->nt = 0;
    for (int c = ph; c < g->k; c += st)
      r->wc[r->nt] = c, r->off[r->nt] = -r->nt, r->nt++;
    const int tiles = (cols + RT - 1) / RT;
    for (int ti = 0; ti < tiles; ti++) {
      int m0 = tile_start(cols, tiles, ti), m = tile_start(cols, tiles, ti + 1) - m0, col0 = jb + m0;
      bool inside = col0 - (r->nt - 1) >= 0 && col0 + m - 1 < g->gw;
      tile_any(r, col0, sf + m0 * st, m, inside, 1, reduce);
    }
  }
}

// Both directions of g, row by output row: gather reads the image and writes the grid, scatter the reverse.
static void conv_rows(const KConv *g, bool scatter, KIn in, const float *wp, const float *bias, KOut out, KWork work) {
  check_k(g);
  check_out(out);
  const int ic = scatter ? g->gc : g->ic, ih = scatter ? g->gh : g->ih, iw = scatter ? g->gw : g->iw;
  const int oc = scatter ? g->ic : g->gc, oh = scatter ? g->ih : g->gh, ow = scatter ? g->iw : g->gw;
  const bool reduce = reduces(oc, ic);
  const size_t wob = (size_t)ic * (size_t)g->k * (size_t)g->k * KB; // packed floats per output block
  const int nob = kb_blocks(oc);
  BlockPro *pro = block_pros(in, ic, work.shared);
  const size_t cache_bytes = kc_conv_work(g, scatter, pro != NULL).thread;
#pragma omp parallel num_threads(kwork_team(work))
  {
    Cache cache = cache_new((float *)kwork_mine(work, cache_bytes));
#pragma omp for collapse(3) schedule(static)
    for (int n = 0; n < g->n; n++)
      for (int og = 0; og < (nob + OB - 1) / OB; og++)
        for (int row = 0; row < oh; row++) {
          Row r = {.in = in, .pro = pro, .ic = ic, .ih = ih, .iw = iw, .n = n, .k = g->k,
                   .ostep = scatter ? g->stride : 1, .relu = out.relu, .nd = imin(OB, nob - og * OB)};
          double stat[OB][2 * KB];
          for (int d = 0; d < r.nd; d++) {
            r.d[d].w = wp + (reduce ? 0 : (size_t)(og * OB + d) * wob);
            row_output(&r.d[d], out, oc, oh, ow, n, og * OB + d, row, bias, reduce, stat[d]);
          }
          (scatter ? scatter_row : gather_row)(&r, &cache, g, row, reduce);
          for (int d = 0; d < r.nd; d++)
            row_stats(&r.d[d], out, oc, oh, n, og * OB + d, row);
        }
  }
}

void kc_gather(const KConv *g, KIn image, const float *wp, const float *bias, KOut grid, KWork work) {
  conv_rows(g, false, image, wp, bias, grid, work);
}

void kc_scatter(const KConv *g, KIn grid, const float *wp, const float *bias, KOut image, KWork work) {
  conv_rows(g, true, grid, wp, bias, image, work);
}

// ---- packing ----------------------------------------------------------------------------------

// Packs w [gc][ic][k][k] with out-channels (the vector lanes) of oc and in-channels of inc; `grid_out` says
// which of gc/ic is the output. Broadcast tiles read [out block][in channel][k][k][16 out lanes], reduce
// tiles (1 output channel) [in block][k][k][16 in lanes]; lanes past the channels are 0.
static void pack(const KConv *g, const float *w, float *wp, bool grid_out) {
  const int k = g->k, kk = k * k, oc = grid_out ? g->gc : g->ic, inc = grid_out ? g->ic : g->gc;
  // Element (out channel o, in channel q, tap) of the canonical weights.
#define W(o, q, tap) w[((size_t)(grid_out ? (o) : (q)) * (size_t)g->ic + (size_t)(grid_out ? (q) : (o))) * kk + (tap)]
  if (reduces(oc, inc)) {
    for (int b = 0; b < kb_blocks(inc); b++)
      for (int tap = 0; tap < kk; tap++)
        for (int l = 0; l < KB; l++)
          wp[((size_t)b * kk + tap) * KB + l] = b * KB + l < inc ? W(0, b * KB + l, tap) : 0.0f;
  } else {
    for (int ob = 0; ob < kb_blocks(oc); ob++)
      for (int q = 0; q < inc; q++)
        for (int tap = 0; tap < kk; tap++)
          for (int l = 0; l < KB; l++)
            wp[(((size_t)ob * inc + q) * kk + tap) * KB + l] = ob * KB + l < oc ? W(ob * KB + l, q, tap) : 0.0f;
  }
#undef W
}

void kc_pack_gather(const KConv *g, const float *w, float *wp) { pack(g, w, wp, true); }
void kc_pack_scatter(const KConv *g, const float *w, float *wp) { pack(g, w, wp, false); }

// ---- weight gradient -----------------------------------------------------------------------------
//
// A task owns dw for one grid block (16 lanes), QT image channels, one kernel row a and KC kernel columns
// from c0, and keeps them in WACC accumulators. The batch is the outer loop: for each image every task adds
// its pixels (i, j) in order to its accumulators, saved between images in `buf` laid out
// [grid block][image channel][k][k][16 grid lanes]. Going image by image keeps one image's blocks in cache
// while a thread's tasks on them run.

typedef struct WG {
  const KConv *g;
  const float *gp, *ip; // grid and image blocks of the current image
  int gps, ips;         // their pixel strides
  float *buf;           // accumulators of the task's first (q, c), [q][..][c][16] with strides qs, 16
  size_t qs;
  int q0, a, c0; // first image lane in the block, kernel row, first kernel column
} WG;

// The grid columns [*jlo, *jhi) that read only inside the image with every column tap c0..c0+KC-1.
INLINE void inner_columns(const WG *t, const int KC, int *jlo, int *jhi) {
  const KConv *g = t->g;
  const int st = g->stride, lo = g->pad_left - t->c0, hi = g->iw - t->c0 - KC + g->pad_left;
  *jlo = imin(g->gw, lo > 0 ? (lo + st - 1) / st : 0);
  *jhi = imax(*jlo, imin(g->gw, hi >= 0 ? hi / st + 1 : 0));
}

// Grid-lane tasks: vector over the grid block's lanes (lane 0 alone for a plain grid block), broadcasts of
// QT image channels (1 when the image block is plain).
INLINE void wg_grid(const WG *t, const int KC, const int QT, const int GPS, const int IPS) {
  const KConv *g = t->g;
  vf acc[WACC][NV];
  for (int q = 0; q < QT; q++)
    for (int c = 0; c < KC; c++)
      for (int v = 0; v < NV; v++)
        acc[q * KC + c][v] = vld(t->buf + q * t->qs + (size_t)c * KB + v * VW);
  const int st = g->stride;
  int jlo, jhi;
  inner_columns(t, KC, &jlo, &jhi);
  for (int i = 0; i < g->gh; i++) {
    int ir = i * st + t->a - g->pad_top;
    if (ir < 0 || ir >= g->ih)
      continue;
    const float *grow = t->gp + (size_t)i * g->gw * GPS, *irow = t->ip + (size_t)ir * g->iw * IPS + t->q0;
    for (int j = 0; j < g->gw; j++) {
      const bool edge = j < jlo || j >= jhi;
      vf gv[NV];
      for (int v = 0; v < NV; v++)
        gv[v] = GPS == KB ? vld(grow + (size_t)j * KB + v * VW) : (vf){0};
      if (GPS != KB)
        gv[0][0] = grow[j];
      for (int c = 0; c < KC; c++) {
        int s = j * st + t->c0 + c - g->pad_left;
        if (edge && (s < 0 || s >= g->iw))
          continue;
        for (int q = 0; q < QT; q++) {
          vf x = vbc(irow[(size_t)s * IPS + q]);
          for (int v = 0; v < NV; v++)
            acc[q * KC + c][v] = vfma(x, gv[v], acc[q * KC + c][v]);
        }
      }
    }
  }
  for (int q = 0; q < QT; q++)
    for (int c = 0; c < KC; c++)
      for (int v = 0; v < NV; v++)
        vst(t->buf + q * t->qs + (size_t)c * KB + v * VW, acc[q * KC + c][v]);
}

// Image-lane tasks, for a plain grid (1 grid channel) and a blocked image: vector over the image block's
// lanes, broadcasts of the grid. Their dw is lane 0 of buf for each image channel.
INLINE void wg_image(const WG *t, const int KC) {
  const KConv *g = t->g;
  vf acc[WACC][NV];
  float lanes[KB];
  for (int c = 0; c < KC; c++) {
    for (int l = 0; l < KB; l++)
      lanes[l] = t->buf[l * t->qs + (size_t)c * KB];
    for (int v = 0; v < NV; v++)
      acc[c][v] = vld(lanes + v * VW);
  }
  const int st = g->stride;
  int jlo, jhi;
  inner_columns(t, KC, &jlo, &jhi);
  for (int i = 0; i < g->gh; i++) {
    int ir = i * st + t->a - g->pad_top;
    if (ir < 0 || ir >= g->ih)
      continue;
    const float *grow = t->gp + (size_t)i * g->gw, *irow = t->ip + (size_t)ir * g->iw * KB;
    for (int j = 0; j < g->gw; j++) {
      const bool edge = j < jlo || j >= jhi;
      vf x = vbc(grow[j]);
      for (int c = 0; c < KC; c++) {
        int s = j * st + t->c0 + c - g->pad_left;
        if (edge && (s < 0 || s >= g->iw))
          continue;
        for (int v = 0; v < NV; v++)
          acc[c][v] = vfma(x, vld(irow + (size_t)s * KB + v * VW), acc[c][v]);
      }
    }
  }
  for (int c = 0; c < KC; c++) {
    for (int v = 0; v < NV; v++)
      vst(lanes + v * VW, acc[c][v]);
    for (int l = 0; l < KB; l++)
      t->buf[l * t->qs + (size_t)c * KB] = lanes[l];
  }
}

// Image channels per grid-lane task for KC column taps: a power of two, so tasks tile a block exactly.
INLINE int qt_of(int kc) {
  const int fit = WACC / kc;
  return fit >= 16 ? 16 : fit >= 8 ? 8 : fit >= 4 ? 4 : fit >= 2 ? 2 : 1;
}

// A thread's prologue'd copies of the grid's or the image's blocks, [block][hw][16], each made when one of
// its tasks first reads the block of an image. Consecutive tasks share blocks, so a thread copies a block
// once per image; threads whose tasks share a block each copy it, which costs less than a barrier per image.
typedef struct Copies {
  float *buf; // NULL without prologues
  int *image; // [block]: the image whose block the copy holds, -1 none
} Copies;

// The copies of a tensor of c channels (h x w) at `at` in the thread's slice (kc_copies_bytes), when it has
// prologues; *at moves past them.
static Copies copies_new(const BlockPro *pro, int c, int h, int w, unsigned char **at) {
  Copies cp = {NULL, NULL};
  if (pro) {
    const int blocks = kb_blocks(c);
    cp.buf = (float *)*at;
    cp.image = (int *)(*at + kwork_round((size_t)blocks * (size_t)h * (size_t)w * KB * sizeof(float)));
    for (int b = 0; b < blocks; b++)
      cp.image[b] = -1;
    *at += kc_copies_bytes(c, h, w);
  }
  return cp;
}

// Image n's block cb (`plane`, pixel stride ps) as the tasks read it: through its prologue if it has one.
static const float *pro_plane(const BlockPro *pro, Copies *c, int n, int cb, size_t hw, const float *plane, int ps) {
  if (!pro || !pro[cb].on)
    return plane;
  float *copy = c->buf + (size_t)cb * hw * KB;
  if (c->image[cb] != n) {
    pro_run(&pro[cb], plane, copy, hw, ps);
    c->image[cb] = n;
  }
  return copy;
}

// One task with KC known at compile time; which kind follows from the blocks' layouts.
INLINE void wg_task(const WG *t, const int KC) {
  if (t->gps == KB && t->ips == KB)
    wg_grid(t, KC, qt_of(KC), KB, KB);
  else if (t->gps == KB && t->ips == 1)
    wg_grid(t, KC, 1, KB, 1);
  else if (t->gps == 1 && t->ips == KB)
    wg_image(t, KC);
  else
    wg_grid(t, KC, 1, 1, 1);
}

void kc_bias_rows(KIn x, int n, int c, int h, int w, const BlockPro *pro, float *copy, float *db) {
#pragma omp for schedule(static)
  for (int cb = 0; cb < kb_blocks(c); cb++) {
    double sum[KB] = {0};
    for (int i = 0; i < n; i++) {
      int ps;
      const float *plane = in_plane(x, c, i, cb, (size_t)h * w, &ps);
      for (int y = 0; y < h; y++) {
        const float *row = plane + (size_t)y * w * ps;
        if (pro && pro[cb].on)
          pro_run(&pro[cb], row, copy, (size_t)w, ps), row = copy;
        vf rs[NV] = {0};
        for (int j = 0; j < w; j++) {
          const float *px = row + (size_t)j * ps;
          if (ps == KB)
            for (int v = 0; v < NV; v++)
              rs[v] += vld(px + v * VW);
          else
            rs[0][0] += *px;
        }
        for (int l = 0; l < KB; l++)
          sum[l] += rs[l / VW][l % VW];
      }
    }
    for (int l = 0; l < block_channels(c, cb); l++)
      db[cb * KB + l] = (float)sum[l];
  }
}

void kc_wgrad(const KConv *g, KIn grid, KIn image, float *dw, float *db, bool bias_of_grid, KWork work) {
  const int k = g->k, gcb = kb_blocks(g->gc), icb = kb_blocks(g->ic);
  // Column taps per task: all k where their accumulators fit, else one.
  const int kc = (k == 3 || k == 5) && qt_of(k) * k <= WACC ? k : 1;
  // A plain grid or image has one task per block (see below), so no idle tasks unbalance the threads.
  const int qt = qt_of(kc), nqt = g->gc > 1 && g->ic > 1 ? KB / qt : 1, ncg = k / kc;
  const size_t ggs = (size_t)g->gh * g->gw, igs = (size_t)g->ih * g->iw, qs = (size_t)k * k * KB;
  const int ntask = gcb * icb * nqt * k * ncg;
  // The shared workspace: the accumulators, zeroed, then the grid's and the image's prologues.
  const size_t acc_bytes = (size_t)gcb * icb * KB * qs * sizeof(float);
  float *buf = work.shared;
  memset(buf, 0, acc_bytes);
  unsigned char *pros = (unsigned char *)work.shared + kwork_round(acc_bytes);
  BlockPro *gpro = block_pros(grid, g->gc, pros), *ipro = block_pros(image, g->ic, pros + kc_pros_bytes(g->gc));
  const size_t copies_bytes = kc_wgrad_work(g, gpro != NULL, ipro != NULL).thread;
#pragma omp parallel num_threads(kwork_team(work))
  {
    // Each thread takes a fixed range of tasks through the whole batch, with no barrier between images.
    const int nth = omp_get_num_threads(), me = omp_get_thread_num();
    const int first = (int)((long)ntask * me / nth), last = (int)((long)ntask * (me + 1) / nth);
    unsigned char *mine = kwork_mine(work, copies_bytes);
    Copies gcp = copies_new(gpro, g->gc, g->gh, g->gw, &mine), icp = copies_new(ipro, g->ic, g->ih, g->iw, &mine);
    for (int n = 0; n < g->n; n++) {
      for (int task = first; task < last; task++) {
        // task = (((ob * icb + ib) * nqt + iq) * k + a) * ncg + cg: consecutive tasks share the blocks.
        int cg = task % ncg, a = task / ncg % k, iq = task / ncg / k % nqt, ib = task / ncg / k / nqt % icb,
            ob = task / ncg / k / nqt / icb;
        WG t = {.g = g, .qs = qs, .a = a, .c0 = cg * kc};
        t.gp = in_plane(grid, g->gc, n, ob, ggs, &t.gps);
        t.ip = in_plane(image, g->ic, n, ib, igs, &t.ips);
        // Plain blocks and image-lane tasks have one task per block: the first.
        int tq = t.gps == KB && t.ips == KB ? qt : KB;
        if (iq * tq >= block_channels(g->ic, ib))
          continue;
        t.gp = pro_plane(gpro, &gcp, n, ob, ggs, t.gp, t.gps);
        t.ip = pro_plane(ipro, &icp, n, ib, igs, t.ip, t.ips);
        t.q0 = iq * tq;
        t.buf = buf + (((size_t)ob * icb * KB + (size_t)ib * KB + t.q0) * k + a) * k * KB + (size_t)t.c0 * KB;
        if (kc == 3)
          wg_task(&t, 3);
        else if (WACC >= 5 && kc == 5)
          wg_task(&t, 5);
        else
          wg_task(&t, 1);
      }
    }
#pragma omp barrier
    // dw from the accumulators; db as per-row vector sums added into doubles in a fixed order.
#pragma omp for schedule(static)
    for (int o = 0; o < g->gc; o++)
      for (int q = 0; q < g->ic; q++)
        for (int tap = 0; tap < k * k; tap++)
          dw[((size_t)o * g->ic + q) * k * k + tap] =
              buf[(((size_t)(o / KB) * icb * KB + q) * k * k + tap) * KB + o % KB];
    if (db) // a prologue'd row in the thread's copies of that tensor, which the tasks are done with
      kc_bias_rows(bias_of_grid ? grid : image, g->n, bias_of_grid ? g->gc : g->ic, bias_of_grid ? g->gh : g->ih,
                   bias_of_grid ? g->gw : g->iw, bias_of_grid ? gpro : ipro, (bias_of_grid ? gcp : icp).buf, db);
  }
}
