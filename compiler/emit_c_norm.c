// emit_c_norm.c: the bodies of the batch-norm and group-norm kernels, a
// following relu fused in (the backward recomputes its mask from x), and of
// the statistics of a batch norm that its consumers apply as they load.
#include "caec.h"

CuPlan emit_norm(const Emit *e, const Kern *k) {
  FILE *out = e->out;
  const Node *n = &e->s->g->nodes[k->node];
  Shape sh = n->shape;
  int N = e->s->batch, C = sh.c, HW = sh.h * sh.w;
  const char *relu = k->relu ? "true" : "false";
  fprintf(out, "  enum { N = %d, C = %d, HW = %d * %d };\n", N, C, sh.h, sh.w);
  switch (k->kind) {
  case K_BN_TRAIN:
    emit_call(e, "kn_bn_train", true);
    fprintf(out, "N, C, HW, %.9gf, %.9gf, ", n->eps, n->momentum);
    emit_kin(e, k->in, "x");
    fprintf(out, ", gamma, beta, running_mean, running_var, mean, invstd, %s, y%s);\n", relu, emit_work(e, k));
    return cu_bn_train_plan(N, C, HW);
  case K_BN_EVAL:
    emit_call(e, "kn_bn_eval", false);
    fprintf(out, "N, C, HW, %.9gf, ", n->eps);
    emit_kin(e, k->in, "x");
    fprintf(out, ", gamma, beta, running_mean, running_var, %s, y%s);\n", relu, emit_work(e, k));
    return cu_bn_eval_plan(N, C, HW);
  case K_BN_SUMS:
    emit_call(e, "kn_bn_from_sums", false);
    fprintf(out, "C, N * %d, (int64_t)N * HW, sums, %.9gf, %.9gf, gamma, beta, running_mean, running_var, mean, "
                 "invstd, scale, shift%s);\n", sh.h, n->eps, n->momentum, emit_work(e, k));
    return cu_bn_from_sums_plan(C, N * sh.h);
  case K_BN_STATS:
    emit_call(e, "kn_bn_stats", true);
    fprintf(out, "N, C, HW, %.9gf, %.9gf, ", n->eps, n->momentum);
    emit_kin(e, k->in, "x");
    fprintf(out, ", gamma, beta, running_mean, running_var, mean, invstd, scale, shift%s);\n", emit_work(e, k));
    return cu_bn_stats_plan(N, C, HW);
  case K_BN_COEFFS:
    emit_call(e, "kn_bn_eval_coeffs", false);
    fprintf(out, "C, %.9gf, gamma, beta, running_mean, running_var, scale, shift);\n", n->eps);
    return cu_bn_eval_coeffs_plan(C);
  case K_GN:
    emit_call(e, "kn_gn_fwd", true);
    fprintf(out, "N, C, HW, %d, %.9gf, ", n->groups, n->eps);
    emit_kin(e, k->in, "x");
    fprintf(out, ", gamma, beta, mean, invstd, %s, y%s);\n", relu, emit_work(e, k));
    return cu_gn_fwd_plan(N, C, HW, n->groups);
  default: { // K_BN_BWD, K_GN_BWD
    bool bn = k->kind == K_BN_BWD;
    emit_call(e, bn ? "kn_bn_bwd" : "kn_gn_bwd", true);
    fprintf(out, "N, C, HW, ");
    if (!bn)
      fprintf(out, "%d, ", n->groups);
    emit_kin(e, k->in, "x");
    fprintf(out, ", gamma, beta, mean, invstd, %s, dy, dgamma, dbeta, ", relu);
    emit_kout(e, k, "dx");
    fprintf(out, "%s);\n", emit_work(e, k));
    return bn ? cu_bn_bwd_plan(N, C, HW) : cu_gn_bwd_plan(N, C, HW, n->groups);
  }
  }
}
