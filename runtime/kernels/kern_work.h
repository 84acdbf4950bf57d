// kern_work.h: the scratch memory of the fast C kernels (kern.h), and its sizes,
// which caec plans with. No kernel allocates: each takes a KWork, of two parts.
//   shared   bytes its threads share, a buffer that caec places in the scratch
//            arena, live at that kernel alone (NULL when it needs none);
//   threads  the trainer's per-thread region, allocated once at start-up:
//            `count` slices of `bytes`, as many as the largest kernel needs
//            (the model's thread_work_bytes); thread t of a kernel's team uses slice t.
// The k*_work functions give both sizes for a kernel's arguments; each part is
// made of pieces of KWORK_ALIGN-rounded sizes, laid out as the kernel's file says.
#ifndef CAEC_KERN_WORK_H
#define CAEC_KERN_WORK_H

#include "kern_types.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct KThreads {
  unsigned char *base; // count slices of bytes
  size_t bytes;
  int count;
} KThreads;

typedef struct KWork {
  void *shared;
  KThreads threads;
} KWork;

typedef struct KWorkSize {
  size_t shared, thread; // bytes
} KWorkSize;

enum { KWORK_ALIGN = 64 };

static inline size_t kwork_round(size_t bytes) { return (bytes + KWORK_ALIGN - 1) / KWORK_ALIGN * KWORK_ALIGN; }

// kern_conv.c's per-block prologue (BlockPro: 16 scales, 16 shifts and two flags), bytes.
enum { KC_PRO_BYTES = 2 * KB * 4 + 4 };

static inline size_t kc_pros_bytes(int c) { return kwork_round((size_t)kb_blocks(c) * KC_PRO_BYTES); }

// gather (scatter: false) or scatter of g, whose input has a prologue (pro): the input blocks' prologues,
// shared, and per thread its k prologue'd input rows (kern_conv.c's Cache).
static inline KWorkSize kc_conv_work(const KConv *g, bool scatter, bool pro) {
  const int ic = scatter ? g->gc : g->ic, iw = scatter ? g->gw : g->iw;
  if (!pro)
    return (KWorkSize){0, 0};
  size_t rows = (size_t)g->k * (size_t)kb_blocks(ic) * (size_t)iw * KB * 4;
  return (KWorkSize){kc_pros_bytes(ic), kwork_round(rows)};
}

// A thread's prologue'd copies of one tensor's blocks of an image (kern_conv.c's Copies): the blocks, then
// the image each holds.
static inline size_t kc_copies_bytes(int c, int h, int w) {
  return kwork_round((size_t)kb_blocks(c) * (size_t)h * (size_t)w * KB * 4) +
         kwork_round((size_t)kb_blocks(c) * sizeof(int));
}

// wgrad of g, with prologues on the grid (grid_pro) or the image (image_pro): the accumulators
// [grid block][image channel][k][k][16] and both prologues, shared; per thread the copies of the
// tensors that have a prologue (the bias's row copy reuses them).
static inline KWorkSize kc_wgrad_work(const KConv *g, bool grid_pro, bool image_pro) {
  size_t acc = (size_t)kb_blocks(g->gc) * (size_t)kb_blocks(g->ic) * KB * (size_t)g->k * (size_t)g->k * KB * 4;
  return (KWorkSize){kwork_round(acc) + kc_pros_bytes(g->gc) + kc_pros_bytes(g->ic),
                     (grid_pro ? kc_copies_bytes(g->gc, g->gh, g->gw) : 0) +
                         (image_pro ? kc_copies_bytes(g->ic, g->ih, g->iw) : 0)};
}

// kern_wino.c's chunks of g's gather (scatter: false) or scatter: whole tile rows of one image, as many
// as keep V [36][in blocks][tiles][16] and M [36][KW_OBS out blocks][tiles][16] within KW_CHUNK_BYTES
// (about half an L2 cache), at least one. Their 36 planes are an odd number of 64-byte lines apart, so
// that a tile's 36 values fall in different L1 sets (a multiple of 4 KiB would put them in one or two).
enum { KW_OBS = 2, KW_CHUNK_BYTES = 512 * 1024 }; // KW_OBS: the most out blocks of a register tile
typedef struct KwChunk {
  int tx, ty, rows;  // tiles per row, tile rows, tile rows per chunk
  size_t vxs, mxs;   // floats between the planes of V, of M
} KwChunk;
static inline size_t kw_xi_stride(int blocks, int tiles) { return (((size_t)blocks * (size_t)tiles) | 1) * KB; }
static inline KwChunk kw_chunk(const KConv *g, bool scatter) {
  const int ib = kb_blocks(scatter ? g->gc : g->ic), tx = (g->gw + 3) / 4, ty = (g->gh + 3) / 4;
  const size_t tile_bytes = (size_t)36 * KB * 4 * (size_t)(ib + KW_OBS);
  int rows = (int)(KW_CHUNK_BYTES / tile_bytes / (size_t)tx);
  rows = rows < 1 ? 1 : rows > ty ? ty : rows;
  return (KwChunk){tx, ty, rows, kw_xi_stride(ib, rows * tx), kw_xi_stride(KW_OBS, rows * tx)};
}
// Per thread its chunk's V and M.
static inline KWorkSize kw_conv_work(const KConv *g, bool scatter) {
  const KwChunk c = kw_chunk(g, scatter);
  return (KWorkSize){0, kwork_round((size_t)36 * (c.vxs + c.mxs) * 4)};
}

// kern_wino.c's weight gradient of g: shared, W^ [36][in channels, padded][out blocks][16], one image's
// V [36][image blocks][tiles][16] and T [36][grid blocks][tiles][16] (planes kw_xi_stride apart), and the
// grid's and image's prologues; per thread a row of the bias's tensor through its prologue.
static inline KWorkSize kw_wgrad_work(const KConv *g) {
  const int tiles = (g->gw + 3) / 4 * ((g->gh + 3) / 4), gb = kb_blocks(g->gc), ib = kb_blocks(g->ic);
  const size_t what = (size_t)36 * (size_t)ib * KB * (size_t)gb * KB * 4;
  const size_t vt = (size_t)36 * (kw_xi_stride(ib, tiles) + kw_xi_stride(gb, tiles)) * 4;
  return (KWorkSize){kwork_round(what) + kwork_round(vt) + kc_pros_bytes(g->gc) + kc_pros_bytes(g->ic),
                     kwork_round((size_t)(g->gw > g->iw ? g->gw : g->iw) * KB * 4)};
}

// Any norm kernel of kern_norm.c on n images of c channels of hw pixels (groups: 0 for batch norm; n and hw
// 0 for kn_bn_from_sums), two_pieces when x or dx is a concatenation: the per-plane partials [2][n*c]
// (double) and the per-set or per-channel values [2][max(c, sets)] (double), shared; per thread the
// blocked planes that a concatenation's plain piece goes through.
static inline KWorkSize kn_work(int n, int c, int hw, int groups, bool two_pieces) {
  size_t sets = groups ? (size_t)n * (size_t)groups : (size_t)c, per = sets > (size_t)c ? sets : (size_t)c;
  return (KWorkSize){kwork_round(2 * (size_t)n * (size_t)c * 8) + kwork_round(2 * per * 8),
                     two_pieces ? kwork_round(2 * (size_t)hw * KB * 4) : 0};
}

// The losses of kern_loss.c on n images of h x w: the images' losses, shared; per thread SSIM's
// workspace of one image (doubles; kl_mse needs none, but the loss is chosen at run time).
enum { KL_WIN = 11 }; // tf.image.ssim's filter_size
static inline size_t kl_ssim_doubles(int h, int w) {
  size_t oh = (size_t)h - KL_WIN + 1, ow = (size_t)w - KL_WIN + 1;
  return 5 * (size_t)h * ow + 5 * oh * ow + 5 * (size_t)w + 3 * (oh + 2 * (KL_WIN - 1)) * ow + 6 * (size_t)w +
         3 * KL_WIN;
}
static inline KWorkSize kl_loss_work(int n, int h, int w) {
  bool ssim = h >= KL_WIN && w >= KL_WIN;
  return (KWorkSize){kwork_round((size_t)n * 8), ssim ? kwork_round(kl_ssim_doubles(h, w) * 8) : 0};
}

// ko_sumsq of count values: a double per chunk of KO_CHUNK values, shared.
enum { KO_CHUNK = 4096 };
static inline KWorkSize ko_sumsq_work(size_t count) {
  size_t chunks = (count + KO_CHUNK - 1) / KO_CHUNK;
  return (KWorkSize){kwork_round((chunks ? chunks : 1) * 8), 0};
}

#endif
