// emit_c_train.c: the bodies of the loss (with its gradient, the model's final
// sigmoid fused in when fusion.c chose so), the L2 penalty, and the optimizer
// update of one parameter. The loss and optimizer are chosen at run time from
// the step's settings; the train section gives their defaults.
#include "caec.h"

void emit_train(FILE *out, const Step *s, const Kern *k) {
  const Graph *g = s->g;
  Shape sh = g->nodes[g->output].shape;
  switch (k->kind) {
  case K_LOSS:
    fprintf(out, "  enum { N = %d, H = %d, W = %d };\n", s->batch, sh.h, sh.w);
    if (k->flag)
      fprintf(out, "  return h->loss == CAEC_MSE ? kl_mse_sigmoid(N, H * W, z, target, y_out, dz)\n"
                   "                             : kl_dssim_sigmoid(N, H, W, z, target, y_out, dz);\n");
    else
      fprintf(out, "  return h->loss == CAEC_MSE ? kl_mse(N, H * W, y, target, dy) : kl_dssim(N, H, W, y, target, dy);\n");
    return;
  case K_L2_LOSS:
    fprintf(out, "  if (h->l2 == 0)\n    return 0;\n  double sum = 0;\n");
    for (int p = 0; p < g->nparams; p++)
      if (g->params[p].l2)
        fprintf(out, "  sum += ko_sumsq(%lld, params + %lld); // %s\n", (long long)g->params[p].numel,
                (long long)s->bufs[s->param_buf[AR_PARAMS] + p].offset / 4, g->params[p].name);
    fprintf(out, "  return h->l2 * sum;\n");
    return;
  default: // K_UPDATE
    fprintf(out, "  caec_update(h, step, %lld, %s, w, g, opt);\n", (long long)g->params[k->param].numel,
            g->params[k->param].l2 ? "true" : "false");
    return;
  }
}
