// kern_types.h: the types the fast kernels share with caec and with the CUDA
// back end (kern.h for the CPU, cu.h for the GPU): the channel-blocked layout,
// tensor pieces with their prologues and epilogues, convolution geometry, and
// the sizes of blocked tensors and packed weights.
// It must compile as C, as CUDA C++ and under NVRTC, which has no standard headers.
#ifndef CAEC_KERN_TYPES_H
#define CAEC_KERN_TYPES_H

#if !defined(__CUDACC_RTC__)
#include <stdbool.h>
#endif

#if defined(__CUDACC__)
#define KERN_HD __host__ __device__
#else
#define KERN_HD
#endif

enum { KB = 16 }; // channels per block

KERN_HD static inline int kb_blocks(int c) { return c == 1 ? 1 : (c + KB - 1) / KB; }

// A prologue applied to every value a convolution kernel reads from a tensor
// piece: v = scale[ch] * x + shift[ch] (a batch norm whose statistics are
// known), then max(v, 0) when relu. scale == NULL: no affine part. The arrays
// have one entry per channel of the piece. Taps outside the image still read
// 0 (zero padding comes after the prologue), and padding lanes stay 0.
typedef struct KPro {
  const float *scale, *shift;
  bool relu;
} KPro;

// A tensor read by a kernel: channels [0, ca) from a, [ca, c) from b (a
// concatenation that is never copied); b is NULL for a single tensor. When b
// is set, ca % 16 == 0 and both pieces are tensors of their own channel counts
// (a 1-channel piece is plain). pro_a, pro_b: the pieces' prologues, read by
// the convolution kernels only (zero-initialised: none).
typedef struct KIn {
  const float *a, *b;
  int ca;
  KPro pro_a, pro_b;
} KIn;

// A tensor written by a kernel, split the same way; acc_a/acc_b: add to the
// piece instead of assigning it. The convolution kernels gather and scatter
// (single-piece outputs only) also take an epilogue on the value v they
// compute (bias included): v += res[i] (a tensor of the output's shape), then
// max(v, 0) when relu, then store (or add); and stats, when not NULL, gets the
// batch-norm partial sums of the values stored, per image and row:
// stats[((image * rows + row) * 2 + {0: sum, 1: sum of squares}) * 16 * blocks + channel],
// in double, each summed by one thread in a fixed order.
typedef struct KOut {
  float *a, *b;
  int ca;
  bool acc_a, acc_b;
  const float *res;
  bool relu;
  double *stats;
} KOut;

// ---- convolution geometry ----
//
// As in ref_conv.c, both ops are one linear map between a "grid" tensor, whose
// pixel (i, j) owns the k x k window at (i*stride - pad_top, j*stride -
// pad_left) of an "image" tensor, with weights [grid channel][image channel][k][k]
// (the front end's layout of both conv and convT weights). conv reads the image
// and writes the grid; convT the reverse. Three kernels serve both ops:
//   gather:  grid  = sum over taps of image * w     conv forward, convT data gradient
//   scatter: image = sum over taps of grid * w      conv data gradient, convT forward
//   wgrad:   dw    = sum over pixels of grid * image, both ops' weight gradient
// Taps outside the image are skipped (zero padding; cropped convT writes).
typedef struct KConv {
  int n;
  int gc, gh, gw; // grid
  int ic, ih, iw; // image
  int k, stride, pad_top, pad_left;
} KConv;

// ---- sizes (host code: the kernels' callers, caec, the CUDA plans) ----

#if !defined(__CUDACC__)
#include <stddef.h>
#include <stdio.h>

// Floats of a blocked tensor (its padding lanes included).
static inline size_t kb_elems(int n, int c, int h, int w) {
  return (size_t)n * (size_t)h * (size_t)w * (c == 1 ? 1 : (size_t)KB * (size_t)kb_blocks(c));
}

// Floats of the packed weights that gather and scatter read, of either back end: [out block][in
// channel][k][k][16 out lanes] for the larger of the two ways round (kern_conv.c's one-output
// "reduce" packings are smaller).
static inline size_t kc_packed_floats(const KConv *g) {
  size_t gp = (size_t)kb_blocks(g->gc) * (size_t)g->ic, sp = (size_t)kb_blocks(g->ic) * (size_t)g->gc;
  return (gp > sp ? gp : sp) * (size_t)g->k * (size_t)g->k * KB;
}

// Whether the Winograd kernels (kern_wino.c, CPU only) can compute g both ways: 3x3, stride 1, the same
// size in and out (pad 1), and both channel counts blocked (a concatenated piece must be too).
static inline bool kw_fits(const KConv *g) {
  return g->k == 3 && g->stride == 1 && g->pad_top == 1 && g->pad_left == 1 && g->gh == g->ih && g->gw == g->iw &&
         g->gc > 1 && g->ic > 1;
}

// Floats of the Winograd-transformed weights of either direction: [36][out block][in block * 16][16].
static inline size_t kw_packed_floats(const KConv *g) {
  return (size_t)36 * (size_t)kb_blocks(g->gc) * (size_t)kb_blocks(g->ic) * KB * KB;
}

// The canonical name of a convolution's shape and pass (0 forward, 1 data gradient, 2 weight gradient)
// as bench's rows and caec tune's files give it, e.g. conv_fwd_mb32_ic64oc64_ih32oh32_k3s1p1: the op's
// input and output channels and sizes (the widths iw, ow only when not square), kernel, stride and
// padding (x: the left one, when it differs from the top). Truncated to size.
static inline void kc_problem_name(char *out, size_t size, bool convt, int pass, const KConv *g) {
  static const char *const passes[] = {"fwd", "bwd_data", "bwd_weights"};
  const int ic = convt ? g->gc : g->ic, ih = convt ? g->gh : g->ih, iw = convt ? g->gw : g->iw;
  const int oc = convt ? g->ic : g->gc, oh = convt ? g->ih : g->gh, ow = convt ? g->iw : g->gw;
  const bool square = ih == iw && oh == ow;
  char iws[16] = "", ows[16] = "", pads[16] = "";
  if (!square)
    snprintf(iws, sizeof iws, "iw%d", iw), snprintf(ows, sizeof ows, "ow%d", ow);
  if (g->pad_left != g->pad_top)
    snprintf(pads, sizeof pads, "x%d", g->pad_left);
  snprintf(out, size, "%s_%s_mb%d_ic%doc%d_ih%d%soh%d%s_k%ds%dp%d%s", convt ? "convt" : "conv", passes[pass], g->n, ic,
           oc, ih, iws, oh, ows, g->k, g->stride, g->pad_top, pads);
}
#endif

#endif
