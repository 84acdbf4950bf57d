// cu_plan.h: the launch plans of the CUDA back end's ops, what caec needs of
// them at compile time without their device code: each op's grids per stage
// and workspace (CuPlan), and the shapes that its plan and its kernels both
// compute (tiles, chunks, parts of a reduction). It compiles as C, as CUDA C++
// and under NVRTC (no standard headers); the shapes are host and device
// functions, the plans host code only.
#ifndef CAEC_CU_PLAN_H
#define CAEC_CU_PLAN_H

#if defined(__CUDACC_RTC__)
typedef long long int64_t;
typedef unsigned long long uint64_t;
typedef unsigned int uint32_t;
typedef unsigned char uint8_t;
#else
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#endif

#include "kern_types.h"

enum { CU_THREADS = 256, CU_MAX_STAGES = 4, CU_MAX_GRID_X = 2147483647, CU_MAX_GRID_YZ = 65535 };

// The launches of one op: grid sizes per stage, and the workspace.
typedef struct CuPlan {
  int stages;
  unsigned grid[CU_MAX_STAGES][3];
  int64_t work_bytes;
} CuPlan;

#if defined(__CUDACC__)
#define CU_SHAPE static __host__ __device__ __forceinline__
#else
#define CU_SHAPE static inline
#endif

#if !defined(__CUDACC__)
// A plan of one stage over `blocks` blocks (grid-stride loops past the largest grid).
static inline CuPlan cu_plan1(int64_t blocks, int64_t work_bytes) {
  CuPlan p = {1, {{1, 1, 1}}, work_bytes};
  p.grid[0][0] = (unsigned)(blocks < 1 ? 1 : blocks > 65536 ? 65536 : blocks);
  return p;
}
// An elementwise op over count values, one per thread, in a grid-stride loop.
static inline CuPlan cu_plan_elems(int64_t count) { return cu_plan1((count + CU_THREADS - 1) / CU_THREADS, 0); }
// Ops whose blocks each have their own share of the work: stage s runs blocks[s] blocks (at
// least 1, no cap), and the workspace.
static inline CuPlan cu_plan_grids(int stages, const int64_t *blocks, int64_t work_bytes) {
  CuPlan p = cu_plan1(1, work_bytes);
  p.stages = stages;
  for (int s = 0; s < stages; s++) {
    p.grid[s][0] = (unsigned)(blocks[s] < 1 ? 1 : blocks[s]);
    p.grid[s][1] = p.grid[s][2] = 1;
  }
  return p;
}
#endif

// ---- convolutions (cu_conv.cuh) ---------------------------------------------------------------

// wgrad's split of K aims at CC_TARGET_BLOCKS blocks. Plans are made when caec compiles a model (grids
// in the launch table, the chunk count folded into each kernel), before any device is known, so this is
// a compile-time target and no property of the device that runs it: about 3 waves of 2-3 blocks per SM
// on the largest GPU caec targets (sm_90: 132 SMs on an H100 SXM). A GPU with fewer SMs runs the same
// split in more waves. Splitting by cudaDevAttrMultiProcessorCount needs plans made at start-up.
enum {
  CC_KS = 16,                  // K columns per step
  CC_TILE = 4096,              // outputs per tile: 256 threads x 4 x 4
  CC_TARGET_BLOCKS = 8 * 132,  // wgrad: the blocks the split aims at (above)
  CC_MIN_STEPS = 16,           // wgrad: the fewest K steps a chunk is worth
  CC_WORK_FLOATS = 1 << 22,    // wgrad: a bound on the partial tiles' workspace (16 MiB)
};

// Tile shapes: the smallest of 16, 32, 64 covering `cols`, and the other side (4096 / it).
CU_SHAPE int cc_narrow(int cols) { return cols <= 16 ? 16 : cols <= 32 ? 32 : 64; }

// The weight gradient as a GEMM: grid^T . image taps over K = n*gh*gw pixels, in steps of 16 pixels
// (rows x cols of a grid image), split into chunks whose partial tiles a second stage sums in order.
// The first and last layers' dw are small (16 x 9 for a 3x3 conv of a 1-channel image, 1 x 144 for one to a
// 1-channel grid): their tiles shrink to TM x TN of 256 to 2048 outputs, down to TM = 4 for a plain grid, and
// the block's threads form groups = 4096 / (TM TN) groups, each multiplying its share of a step's 16 pixels
// into a tile of its own; the groups' tiles are added in order at the end.
typedef struct CcWShape {
  int tm, tn, groups, tiles_m, tiles_n, mp, np; // the tile, its thread groups, the tiles, the padded GEMM
  int rows, cols, sh, sw, steps;                // pixels per step; steps per image (rows, columns); steps in all
  int chunks;                                   // the split of K
  int dbw;                                      // the db partials' width: 16 * blocks of the wider tensor
  int64_t dbo;                                  // where they start in the workspace, in doubles
} CcWShape;

// The shape of g's weight gradient (the plan function and both stages compute it alike).
CU_SHAPE CcWShape cc_wshape(const KConv *g) {
  CcWShape ws;
  const int gcols = g->gc == 1 ? 1 : KB * kb_blocks(g->gc);
  const int icols = g->ic == 1 ? g->k * g->k : g->k * g->k * KB * kb_blocks(g->ic);
  // TN: the columns rounded up to a power of two, at least a tile of 256, at most one of 4096 or B's 256 columns
  // (no loop: nvcc folds these shapes to constants, and does not evaluate loops that double).
  ws.tm = gcols == 1 ? 4 : cc_narrow(gcols);
  const int tn = icols <= 16 ? 16 : icols <= 32 ? 32 : icols <= 64 ? 64 : icols <= 128 ? 128 : 256;
  const int lo = 256 / ws.tm, hi = CC_TILE / ws.tm < 256 ? CC_TILE / ws.tm : 256;
  ws.tn = tn < lo ? lo : tn > hi ? hi : tn;
  ws.groups = CC_TILE / (ws.tm * ws.tn);
  ws.tiles_m = (gcols + ws.tm - 1) / ws.tm, ws.tiles_n = (icols + ws.tn - 1) / ws.tn;
  ws.mp = ws.tiles_m * ws.tm, ws.np = ws.tiles_n * ws.tn;
  ws.cols = g->gw < CC_KS ? g->gw : CC_KS, ws.rows = CC_KS / ws.cols;
  ws.sh = (g->gh + ws.rows - 1) / ws.rows, ws.sw = (g->gw + ws.cols - 1) / ws.cols;
  ws.steps = g->n * ws.sh * ws.sw;
  // Chunks for CC_TARGET_BLOCKS blocks, each of at least CC_MIN_STEPS steps, their tiles within CC_WORK_FLOATS.
  const int tiles = ws.tiles_m * ws.tiles_n;
  const int64_t tile_floats = (int64_t)ws.mp * ws.np;
  int chunks = (CC_TARGET_BLOCKS + tiles - 1) / tiles;
  if (chunks > ws.steps / CC_MIN_STEPS)
    chunks = ws.steps / CC_MIN_STEPS;
  if (chunks > CC_WORK_FLOATS / tile_floats)
    chunks = (int)(CC_WORK_FLOATS / tile_floats);
  if (chunks > CU_MAX_GRID_YZ)
    chunks = CU_MAX_GRID_YZ;
  ws.chunks = chunks < 1 ? 1 : chunks;
  ws.dbw = KB * (kb_blocks(g->gc) > kb_blocks(g->ic) ? kb_blocks(g->gc) : kb_blocks(g->ic));
  ws.dbo = ((int64_t)ws.chunks * tile_floats + 1) / 2; // floats rounded up to whole doubles
  return ws;
}

#if !defined(__CUDACC__)
static inline CuPlan cu_pack_plan(const KConv *g) {
  return cu_plan1((int64_t)((kc_packed_floats(g) + CU_THREADS - 1) / CU_THREADS), 0);
}

// Pixels per block: a tile's, or cc_conv1's 64 for a 1-channel output.
static inline int cc_tile_pixels(int oc) { return oc == 1 ? CU_THREADS / 4 : CC_TILE / cc_narrow(KB * kb_blocks(oc)); }

static inline CuPlan cu_gather_plan(const KConv *g) {
  const int tn = cc_narrow(KB * kb_blocks(g->gc)), tm = cc_tile_pixels(g->gc);
  CuPlan p = cu_plan1(1, 0);
  p.grid[0][0] = (unsigned)(((int64_t)g->n * g->gh * g->gw + tm - 1) / tm);
  p.grid[0][1] = (unsigned)((KB * kb_blocks(g->gc) + tn - 1) / tn);
  return p;
}

static inline CuPlan cu_scatter_plan(const KConv *g) {
  const int tn = cc_narrow(KB * kb_blocks(g->ic)), tm = cc_tile_pixels(g->ic), s = g->stride;
  CuPlan p = cu_plan1(1, 0);
  p.grid[0][0] = (unsigned)(((int64_t)g->n * ((g->ih + s - 1) / s) * ((g->iw + s - 1) / s) + tm - 1) / tm);
  p.grid[0][1] = (unsigned)((KB * kb_blocks(g->ic) + tn - 1) / tn);
  p.grid[0][2] = (unsigned)(s * s);
  return p;
}

// Stage 0 grid: (tiles + 1, chunks); stage 1: one thread per element of the padded GEMM and db.
static inline CuPlan cu_wgrad_plan(const KConv *g) {
  const CcWShape ws = cc_wshape(g);
  CuPlan p = cu_plan1(((int64_t)ws.mp * ws.np + ws.dbw + CU_THREADS - 1) / CU_THREADS,
                      (ws.dbo + (int64_t)ws.chunks * ws.dbw) * (int64_t)sizeof(double));
  p.stages = 2;
  p.grid[1][0] = p.grid[0][0], p.grid[1][1] = 1, p.grid[1][2] = 1;
  p.grid[0][0] = (unsigned)(ws.tiles_m * ws.tiles_n + 1), p.grid[0][1] = (unsigned)ws.chunks, p.grid[0][2] = 1;
  return p;
}
#endif

// ---- batch and group norm (cu_norm.cuh) -------------------------------------------------------
//
// Up to CU_CHUNK floats of a plane (about 64 per thread) per block: blocks enough to fill the
// GPU for large tensors, and few partial sums.
enum { CU_CHUNK = 16384 };

// The pixel stride of a tensor of c channels.
CU_SHAPE int cu_stride_of(int c) { return c == 1 ? 1 : KB; }
CU_SHAPE int cu_chunk_pixels(int c) { return CU_CHUNK / cu_stride_of(c); }
CU_SHAPE int cu_chunks(int c, int hw) { return (hw + cu_chunk_pixels(c) - 1) / cu_chunk_pixels(c); }

// The sets a norm normalises: a channel across the batch (bn), or a group of one image (gn).
typedef struct CuNorm {
  int n, c, hw;
  int groups; // 0 for batch norm
} CuNorm;

CU_SHAPE int cu_sets(const CuNorm *k) { return k->groups ? k->n * k->groups : k->c; }

// Partials per array of the workspace: [image][channel][chunk].
CU_SHAPE int64_t cu_norm_parts(const CuNorm *k) { return (int64_t)k->n * k->c * cu_chunks(k->c, k->hw); }

#if !defined(__CUDACC__)
// Stages [chunk blocks, sets (and channels for the backward), chunk blocks][0 .. stages), and the
// workspace: two arrays of partials, and g0 and gx for the backward.
static inline CuPlan cu_norm_plan(int n, int c, int hw, int groups, int stages, bool backward) {
  CuNorm k = {n, c, hw, groups};
  int64_t chunked = (int64_t)n * kb_blocks(c) * cu_chunks(c, hw), sets = cu_sets(&k);
  int64_t blocks[3] = {chunked, backward && c > sets ? c : sets, chunked};
  int64_t bytes = 2 * cu_norm_parts(&k) * (int64_t)sizeof(double) + (backward ? 2 * sets * (int64_t)sizeof(float) : 0);
  return cu_plan_grids(stages, blocks, bytes);
}

static inline CuPlan cu_bn_train_plan(int n, int c, int hw) { return cu_norm_plan(n, c, hw, 0, 3, false); }
static inline CuPlan cu_bn_stats_plan(int n, int c, int hw) { return cu_norm_plan(n, c, hw, 0, 2, false); }
static inline CuPlan cu_bn_bwd_plan(int n, int c, int hw) { return cu_norm_plan(n, c, hw, 0, 3, true); }

static inline CuPlan cu_bn_eval_plan(int n, int c, int hw) {
  int64_t blocks = (int64_t)n * kb_blocks(c) * cu_chunks(c, hw);
  return cu_plan_grids(1, &blocks, 0);
}

static inline CuPlan cu_bn_from_sums_plan(int c, int parts) {
  (void)parts;
  return cu_plan1(kb_blocks(c), 0);
}

static inline CuPlan cu_bn_eval_coeffs_plan(int c) { return cu_plan_elems(c); }

static inline CuPlan cu_gn_fwd_plan(int n, int c, int hw, int groups) {
  return cu_norm_plan(n, c, hw, groups, 3, false);
}
static inline CuPlan cu_gn_bwd_plan(int n, int c, int hw, int groups) {
  return cu_norm_plan(n, c, hw, groups, 3, true);
}

static inline CuPlan cu_row_sums_plan(int n, int c, int h, int w) {
  (void)w;
  return cu_plan_elems((int64_t)n * h * KB * kb_blocks(c));
}
#endif

// ---- the loss, sums of squares (cu_train.cuh) -------------------------------------------------

enum { CU_WIN = 11, CU_TILE = 16, CU_HALO = CU_TILE + CU_WIN - 1, CU_LOSS_CHUNK = 2048 };

typedef struct CuLoss {
  int n, h, w;
  int chunks;           // MSE: chunks per image
  int oh, ow;           // the SSIM map; 0 for images under 11 x 11 (MSE only)
  int tiles_w, tiles;   // stage 0's map tiles: per row of tiles, per image
  int ptiles_w, ptiles; // stage 1's pixel tiles
} CuLoss;

CU_SHAPE CuLoss cu_loss_geom(int n, int h, int w) {
  CuLoss g;
  g.n = n, g.h = h, g.w = w;
  g.chunks = (int)(((int64_t)h * w + CU_LOSS_CHUNK - 1) / CU_LOSS_CHUNK);
  bool ssim = h >= CU_WIN && w >= CU_WIN;
  g.oh = ssim ? h - CU_WIN + 1 : 0;
  g.ow = ssim ? w - CU_WIN + 1 : 0;
  g.tiles_w = (g.ow + CU_TILE - 1) / CU_TILE;
  g.tiles = g.tiles_w * ((g.oh + CU_TILE - 1) / CU_TILE);
  g.ptiles_w = ssim ? (w + CU_TILE - 1) / CU_TILE : 0;
  g.ptiles = g.ptiles_w * (ssim ? (h + CU_TILE - 1) / CU_TILE : 0);
  return g;
}

// The workspace: per-block partial sums (either loss's), then the three partial maps [3][n][oh][ow].
CU_SHAPE int64_t cu_loss_parts(const CuLoss *g) {
  return (int64_t)g->n * (g->chunks > g->tiles ? g->chunks : g->tiles);
}

enum { CU_SUMSQ_CHUNK = 4096 };

#if !defined(__CUDACC__)
static inline CuPlan cu_loss_plan(int n, int h, int w) {
  CuLoss g = cu_loss_geom(n, h, w);
  int64_t parts = cu_loss_parts(&g), blocks[3] = {parts, (int64_t)n * g.ptiles, 1};
  return cu_plan_grids(3, blocks, (parts + 3 * (int64_t)n * g.oh * g.ow) * (int64_t)sizeof(double));
}

// For cu_l2_sumsq over ranges of total floats, or cu_sumsq over total.
static inline CuPlan cu_sumsq_plan(int64_t total) {
  int64_t chunks = (total + CU_SUMSQ_CHUNK - 1) / CU_SUMSQ_CHUNK, blocks[2] = {chunks, 1};
  return cu_plan_grids(2, blocks, (chunks < 1 ? 1 : chunks) * (int64_t)sizeof(double));
}

static inline CuPlan cu_l2_sumsq_plan(int64_t total) { return cu_sumsq_plan(total); }
#endif

#endif
