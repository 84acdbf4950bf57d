// emit_c_norm.c: the bodies of the batch-norm and group-norm kernels, a
// following relu fused in (the backward recomputes its mask from x), and of
// the statistics of a batch norm that its consumers apply as they load.
#include "caec.h"

void emit_norm(FILE *out, const Step *s, const Kern *k) {
  const Node *n = &s->g->nodes[k->node];
  Shape sh = n->shape;
  const char *relu = k->relu ? "true" : "false";
  fprintf(out, "  enum { N = %d, C = %d, HW = %d * %d };\n", s->batch, sh.c, sh.h, sh.w);
  switch (k->kind) {
  case K_BN_TRAIN:
    fprintf(out, "  kn_bn_train(N, C, HW, %.9gf, %.9gf, ", n->eps, n->momentum);
    emit_kin(out, k->in, "x");
    fprintf(out, ", gamma, beta, running_mean, running_var, mean, invstd, %s, y);\n", relu);
    break;
  case K_BN_EVAL:
    fprintf(out, "  kn_bn_eval(N, C, HW, %.9gf, ", n->eps);
    emit_kin(out, k->in, "x");
    fprintf(out, ", gamma, beta, running_mean, running_var, %s, y);\n", relu);
    break;
  case K_BN_SUMS:
    fprintf(out, "  kn_bn_from_sums(C, N * %d, (int64_t)N * HW, sums, %.9gf, %.9gf, gamma, beta, running_mean, "
                 "running_var, mean, invstd, scale, shift);\n", sh.h, n->eps, n->momentum);
    break;
  case K_BN_STATS:
    fprintf(out, "  kn_bn_stats(N, C, HW, %.9gf, %.9gf, ", n->eps, n->momentum);
    emit_kin(out, k->in, "x");
    fprintf(out, ", gamma, beta, running_mean, running_var, mean, invstd, scale, shift);\n");
    break;
  case K_BN_COEFFS:
    fprintf(out, "  kn_bn_eval_coeffs(C, %.9gf, gamma, beta, running_mean, running_var, scale, shift);\n", n->eps);
    break;
  case K_GN:
    fprintf(out, "  kn_gn_fwd(N, C, HW, %d, %.9gf, ", n->groups, n->eps);
    emit_kin(out, k->in, "x");
    fprintf(out, ", gamma, beta, mean, invstd, %s, y);\n", relu);
    break;
  default: // K_BN_BWD, K_GN_BWD
    if (k->kind == K_BN_BWD)
      fprintf(out, "  kn_bn_bwd(N, C, HW, ");
    else
      fprintf(out, "  kn_gn_bwd(N, C, HW, %d, ", n->groups);
    emit_kin(out, k->in, "x");
    fprintf(out, ", gamma, beta, mean, invstd, %s, dy, dgamma, dbeta, ", relu);
    emit_kout(out, k, "dx");
    fprintf(out, ");\n");
    break;
  }
}
