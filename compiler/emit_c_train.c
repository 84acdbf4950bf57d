// emit_c_train.c: the bodies of the loss (with its gradient, the model's final
// sigmoid fused in when fusion.c chose so), the L2 penalty, and the optimizer
// update of one parameter. The loss and optimizer are chosen at run time from
// the step's settings; the train section gives their defaults.
//
// CUDA kernels return nothing: the loss goes to A.loss[0], the sum of squares
// of the flagged kernels to A.loss[1], and the host adds l2 times the second
// to the first, as the C step does.
#include "caec.h"

CuPlan emit_train(const Emit *e, const Kern *k) {
  FILE *out = e->out;
  const Step *s = e->s;
  const Graph *g = s->g;
  Shape sh = g->nodes[g->output].shape;
  switch (k->kind) {
  case K_LOSS:
    fprintf(out, "  enum { N = %d, H = %d, W = %d };\n", s->batch, sh.h, sh.w);
    if (e->cuda) {
      emit_call(e, "kl_loss", true);
      fprintf(out, "A.hyper->loss, %s, N, H, W, %s, target, %s, %s, A.loss);\n", k->sigmoid ? "true" : "false",
              k->sigmoid ? "z" : "y", k->sigmoid ? "y_out" : "NULL", k->sigmoid ? "dz" : "dy");
    } else if (k->sigmoid) {
      fprintf(out, "  return h->loss == CAEC_MSE ? kl_mse_sigmoid(N, H * W, z, target, y_out, dz%s)\n"
                   "                             : kl_dssim_sigmoid(N, H, W, z, target, y_out, dz%s);\n",
              emit_work(e, k), emit_work(e, k));
    } else {
      fprintf(out, "  return h->loss == CAEC_MSE ? kl_mse(N, H * W, y, target, dy%s)\n"
                   "                             : kl_dssim(N, H, W, y, target, dy%s);\n",
              emit_work(e, k), emit_work(e, k));
    }
    return cu_loss_plan(s->batch, sh.h, sh.w);
  case K_L2_LOSS: {
    int64_t total = 0;
    int nflagged = 0;
    for (int p = 0; p < g->nparams; p++)
      nflagged += g->params[p].l2;
    if (e->cuda)
      fprintf(out, "  // The flagged kernels: offset and count in floats into params.\n"
                   "  static const int64_t ranges[%d][2] = {\n", nflagged ? nflagged : 1);
    else
      fprintf(out, "  if (h->l2 == 0)\n    return 0;\n  double sum = 0;\n");
    for (int p = 0; p < g->nparams; p++) {
      if (!g->params[p].l2)
        continue;
      long long numel = g->params[p].numel, offset = s->bufs[s->param_buf[AR_PARAMS] + p].offset / 4;
      total += numel;
      if (e->cuda)
        fprintf(out, "      {%lld, %lld}, // %s\n", offset, numel, g->params[p].name);
      else
        fprintf(out, "  sum += ko_sumsq(%lld, params + %lld%s); // %s\n", numel, offset, emit_work(e, k),
                g->params[p].name);
    }
    if (e->cuda) {
      if (!nflagged)
        fprintf(out, "      {0, 0},\n");
      fprintf(out, "  };\n");
      emit_call(e, "ko_l2_sumsq", true);
      fprintf(out, "A.params, %d, ranges, A.loss + 1);\n", nflagged);
    } else {
      fprintf(out, "  return h->l2 * sum;\n");
    }
    return cu_l2_sumsq_plan(total);
  }
  default: // K_UPDATE (C; emit_cuda.c fuses a program's updates into one launch)
    fprintf(out, "  caec_update(h, step, %lld, %s, w, g, opt);\n", (long long)g->params[k->param].numel,
            g->params[k->param].l2 ? "true" : "false");
    return cu_plan_elems(g->params[k->param].numel);
  }
}
