// emit_c_conv.c: the bodies of the convolution kernels. One geometry (kern.h's
// KConv: the grid is conv's output and convT's input) serves conv and convT,
// forward and backward: gather is conv's forward and convT's data gradient,
// scatter the reverse, and wgrad both ops' weight and bias gradients.
#include "caec.h"

#include <stdlib.h>

// CUDA: a gather or scatter whose output feeds a batch norm is followed by
// the row sums that the C kernels compute in their epilogue, as one more stage.
static CuPlan with_row_sums(const Emit *e, const Kern *k, CuPlan p, const KConv *g, bool gather) {
  if (k->aux[0] < 0)
    return p;
  if (p.stages == CU_MAX_STAGES) { // gather and scatter are one launch; more would leave no room
    fprintf(stderr, "caec: internal error: a convolution of %d launches has no room for its row sums\n", p.stages);
    abort();
  }
  int c = gather ? g->gc : g->ic, h = gather ? g->gh : g->ih, w = gather ? g->gw : g->iw;
  CuPlan r = cu_row_sums_plan(g->n, c, h, w);
  if (e->cuda && e->stage == p.stages)
    fprintf(e->out, "  cu_row_sums(%d, %d, %d, %d, %s, sums);\n", g->n, c, h, w, gather ? "grid" : "image");
  for (int d = 0; d < 3; d++)
    p.grid[p.stages][d] = r.grid[0][d];
  p.stages++;
  if (r.work_bytes > p.work_bytes)
    p.work_bytes = r.work_bytes;
  return p;
}

CuPlan emit_conv(const Emit *e, const Kern *k) {
  FILE *out = e->out;
  KConv g = conv_geom(e->s->g, e->s->batch, k->node);
  bool gather = k->kind == K_GATHER || k->kind == K_PACK_GATHER;
  CuPlan p = k->kind == K_PACK_GATHER || k->kind == K_PACK_SCATTER ? cu_pack_plan(&g)
             : k->kind == K_GATHER                                 ? cu_gather_plan(&g)
             : k->kind == K_SCATTER                                ? cu_scatter_plan(&g)
                                                                   : cu_wgrad_plan(&g);
  if (k->kind == K_GATHER || k->kind == K_SCATTER)
    p = with_row_sums(e, k, p, &g, gather);
  if (e->cuda && e->stage > 0 && (k->kind == K_GATHER || k->kind == K_SCATTER)) // the row sums' stage
    return p;
  fprintf(out,
          "  // n; grid c, h, w; image c, h, w; k, stride, pad top, pad left\n"
          "  %sconst KConv g = {%d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d};\n",
          e->cuda ? "" : "static ", g.n, g.gc, g.gh, g.gw, g.ic, g.ih, g.iw, g.k, g.stride, g.pad_top, g.pad_left);
  const char *bias = k->p[KP_BIAS] >= 0 ? "bias" : "NULL";
  const bool wino = !e->cuda && k->variant == CV_WINO; // kern_wino.c's kw_*, else kern_conv.c's kc_*
  switch (k->kind) {
  case K_PACK_GATHER:
  case K_PACK_SCATTER:
    emit_call(e, wino ? (gather ? "kw_pack_gather" : "kw_pack_scatter") : gather ? "kc_pack_gather" : "kc_pack_scatter",
              false);
    fprintf(out, "&g, w, wp);\n");
    break;
  case K_GATHER:
  case K_SCATTER:
    emit_call(e, wino ? (gather ? "kw_gather" : "kw_scatter") : gather ? "kc_gather" : "kc_scatter", false);
    fprintf(out, "&g, ");
    emit_kin(e, k->in, gather ? "image" : "grid");
    fprintf(out, ", wp, %s, ", bias);
    emit_kout(e, k, gather ? "grid" : "image");
    fprintf(out, "%s);\n", emit_work(e, k));
    break;
  default: // K_WGRAD
    emit_call(e, wino ? "kw_wgrad" : "kc_wgrad", true);
    fprintf(out, "&g, ");
    emit_kin(e, k->in, "grid");
    fprintf(out, ", ");
    emit_kin(e, k->in2, "image");
    fprintf(out, ", dw, %s, %s%s);\n", k->p[KP_BIAS] >= 0 ? "db" : "NULL", k->grid_bias ? "true" : "false",
            emit_work(e, k));
    break;
  }
  return p;
}
