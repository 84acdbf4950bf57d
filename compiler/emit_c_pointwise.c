// emit_c_pointwise.c: the bodies of the elementwise kernels (activations,
// add, gradient copies, spatial dropout, and the concatenation pieces copied
// when a concatenation cannot stay a two-pointer view).
#include "caec.h"

// An activation's call as ops.h names it, up to its tensors: "  kp_NAME(count, [alpha, ]" or NAME_bwd.
static void act_call(const Emit *e, const Kern *k, int64_t count) {
  const OpInfo *act = op_info(k->act);
  char name[64];
  snprintf(name, sizeof name, "kp_%s", k->kind == K_ACT ? act->name : act->bwd_name);
  emit_call(e, name, false);
  fprintf(e->out, "%lld, ", (long long)count);
  if (act->alpha)
    fprintf(e->out, "%.9gf, ", e->s->g->nodes[k->node].alpha);
}

CuPlan emit_pointwise(const Emit *e, const Kern *k) {
  FILE *out = e->out;
  const Node *n = &e->s->g->nodes[k->node];
  Shape sh = n->shape;
  int N = e->s->batch;
  int64_t count = emit_count(e->s, k->node);
  const char *h = emit_hyper(e);
  CuPlan elems = cu_plan_elems(count);
  switch (k->kind) {
  case K_ACT:
    act_call(e, k, count);
    fprintf(out, "x, y);\n");
    return elems;
  case K_ADD:
    emit_call(e, "kp_add", false);
    fprintf(out, "%lld, a, b, %s, y);\n", (long long)count, k->relu ? "true" : "false");
    return elems;
  case K_DROPOUT_MASK:
    if (e->cuda)
      fprintf(out, "  cu_dropout_mask(A.hyper->seed, %d, A.hyper->step", k->node);
    else
      fprintf(out, "  rng_dropout_mask(h->seed, %d, step", k->node);
    fprintf(out, ", %d * %d, %sdropout ? %.9g : 0, keep);\n", N, sh.c, h, n->rate);
    return cu_plan_elems((int64_t)N * sh.c);
  case K_DROPOUT:
    emit_call(e, "kp_dropout", false);
    fprintf(out, "%d, %d, %d * %d, %sdropout ? %.9gf : 0.0f, keep, x, ", N, sh.c, sh.h, sh.w, h, n->rate);
    emit_kout(e, k, "y");
    fprintf(out, ");\n");
    return elems;
  case K_CONCAT:
  case K_SPLIT: {
    // The piece is the input whose channels start at k->piece.
    int c_piece = 0;
    for (int j = 0, offset = 0; j < n->nin; offset += e->s->g->nodes[n->in[j]].shape.c, j++)
      if (offset == k->piece)
        c_piece = e->s->g->nodes[n->in[j]].shape.c;
    bool concat = k->kind == K_CONCAT;
    emit_call(e, concat ? "kp_concat_piece" : "kp_split_piece", false);
    fprintf(out, "%d, %d * %d, %d, %d, %d, %s, ", N, sh.h, sh.w, c_piece, sh.c, k->piece, concat ? "x" : "dy");
    if (concat)
      fprintf(out, "y");
    else
      emit_kout(e, k, "dx");
    fprintf(out, ");\n");
    return elems;
  }
  default: // the backwards: an activation's, or the gradient copy of an add
    if (k->kind == K_COPY) {
      emit_call(e, "kp_copy", false);
      fprintf(out, "%lld, dy, ", (long long)count);
    } else {
      act_call(e, k, count);
      fprintf(out, "%s, dy, ", emit_role(k, R_IN));
    }
    emit_kout(e, k, "dx");
    fprintf(out, ");\n");
    return elems;
  }
}
