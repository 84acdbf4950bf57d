// emit_c_pointwise.c: the bodies of the elementwise kernels (activations,
// add, gradient copies, spatial dropout, and the concatenation pieces copied
// when a concatenation cannot stay a two-pointer view).
#include "caec.h"

void emit_pointwise(FILE *out, const Step *s, const Kern *k) {
  const Node *n = &s->g->nodes[k->node];
  Shape sh = n->shape;
  int64_t count = emit_count(s, k->node);
  switch (k->kind) {
  case K_RELU: fprintf(out, "  kp_relu(%lld, x, y);\n", (long long)count); return;
  case K_LEAKY: fprintf(out, "  kp_leaky_relu(%lld, %.9gf, x, y);\n", (long long)count, n->alpha); return;
  case K_SIGMOID: fprintf(out, "  kp_sigmoid(%lld, x, y);\n", (long long)count); return;
  case K_ADD: fprintf(out, "  kp_add(%lld, a, b, %s, y);\n", (long long)count, k->relu ? "true" : "false"); return;
  case K_DROPOUT_MASK:
    fprintf(out, "  rng_dropout_mask(h->seed, %d, step, %d * %d, h->dropout ? %.9g : 0, keep);\n", k->node,
            s->batch, sh.c, n->rate);
    return;
  case K_DROPOUT:
    fprintf(out, "  kp_dropout(%d, %d, %d * %d, h->dropout ? %.9gf : 0.0f, keep, x, ", s->batch, sh.c, sh.h, sh.w,
            n->rate);
    emit_kout(out, k, "y");
    fprintf(out, ");\n");
    return;
  case K_CONCAT:
  case K_SPLIT: {
    // The piece is the input whose channels start at k->piece.
    int c_piece = 0;
    for (int j = 0, offset = 0; j < n->nin; offset += s->g->nodes[n->in[j]].shape.c, j++)
      if (offset == k->piece)
        c_piece = s->g->nodes[n->in[j]].shape.c;
    if (k->kind == K_CONCAT) {
      fprintf(out, "  kp_concat_piece(%d, %d * %d, %d, %d, %d, x, y);\n", s->batch, sh.h, sh.w, c_piece, sh.c,
              k->piece);
    } else {
      fprintf(out, "  kp_split_piece(%d, %d * %d, %d, %d, %d, dy, ", s->batch, sh.h, sh.w, c_piece, sh.c, k->piece);
      emit_kout(out, k, "dx");
      fprintf(out, ");\n");
    }
    return;
  }
  default: // the backwards: relu, leaky relu, sigmoid, copy
    if (k->kind == K_COPY)
      fprintf(out, "  kp_copy(%lld, dy, ", (long long)count);
    else if (k->kind == K_LEAKY_BWD)
      fprintf(out, "  kp_leaky_relu_bwd(%lld, %.9gf, x, dy, ", (long long)count, n->alpha);
    else
      fprintf(out, "  kp_%s(%lld, y, dy, ", k->kind == K_RELU_BWD ? "relu_bwd" : "sigmoid_bwd", (long long)count);
    emit_kout(out, k, "dx");
    fprintf(out, ");\n");
    return;
  }
}
