// costmodel.c: which algorithm computes each convolution of the C back end.
// Both candidates are timed by a model of one AVX-512 core, in cycles:
//   direct    one 16-lane FMA per 16 multiply-adds, at the share of peak the
//             register-tiled kernels reach (kern_conv.c);
//   winograd  F(4x4, 3x3) (kern_wino.c): per 4x4 tile a GEMM of 36 x (in
//             channels x out channels, both padded to 16) at the share of peak
//             its register tile reaches, plus the transforms of both sides, a
//             fixed cost per tile and channel block.
// The constants are kern_wino.c's and kern_conv.c's measured costs on an AMD
// Zen 4 core (bench/kernels). Where Winograd does not apply, or the build asks
// for direct kernels only, the answer is direct; where a tuning file of this
// CPU has the problem, its measured winner. The CUDA back end always uses its
// direct kernels.
#include "caec.h"

// Per pass: forward, data gradient (gather and scatter), weight gradient.
static const struct {
  int direct_percent, gemm_percent; // of the FMA peak: the direct kernel; Winograd's GEMM
  int in_cycles, out_cycles;        // Winograd's transforms per tile and block of its two sides
} costs[3] = {{70, 90, 600, 400}, {70, 90, 600, 400}, {90, 75, 600, 600}};

// The channels of a conv's input pieces fit Winograd when none is plain (1 channel).
static bool pieces_blocked(const Graph *g, int node) {
  const Node *in = &g->nodes[graph_resolve(g, g->nodes[node].in[0])];
  if (in->op != OP_CONCAT)
    return true;
  for (int k = 0; k < 2; k++)
    if (g->nodes[graph_resolve(g, in->in[k])].shape.c == 1)
      return false;
  return true;
}

ConvVariant conv_variant(const Step *s, int node, KernKind kind) {
  const KConv k = conv_geom(s->g, s->batch, node);
  if (s->conv_direct || !kw_fits(&k) || !pieces_blocked(s->g, node))
    return CV_DIRECT;
  // The pass: a conv's gather and a convT's scatter are the forward, the others the data gradient.
  const bool convt = s->g->nodes[node].op == OP_CONVT, scatter = kind == K_SCATTER || kind == K_PACK_SCATTER;
  const int pass = kind == K_WGRAD ? 2 : scatter == convt ? 0 : 1;
  char name[160];
  kc_problem_name(name, sizeof name, convt, pass, &k);
  ConvVariant tuned;
  if (tuning_find(s->tuning, name, &tuned))
    return tuned;
  const int oc = scatter ? k.ic : k.gc, ic = scatter ? k.gc : k.ic, h = k.gh, w = k.gw;
  const double macs = (double)k.n * h * w * oc * ic * 9;
  const double direct = macs / KB * 100 / costs[pass].direct_percent;
  const double tiles = (double)k.n * ((h + 3) / 4) * ((w + 3) / 4);
  const double wino = tiles * 36 * kb_blocks(ic) * kb_blocks(oc) * KB * 100 / costs[pass].gemm_percent +
                      tiles * (kb_blocks(ic) * (double)costs[pass].in_cycles +
                               kb_blocks(oc) * (double)costs[pass].out_cycles);
  return wino < direct ? CV_WINO : CV_DIRECT;
}
