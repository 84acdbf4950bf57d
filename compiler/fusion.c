// fusion.c: which layers share a kernel, decided on the layer graph before
// autodiff so that the forward and backward kernels agree on it:
//   - bn or gn followed by its only consumer relu: one normalisation kernel
//     writes relu(norm(x)), and its backward recomputes the mask from x;
//   - add followed by its only consumer relu: one kernel;
//   - a two-piece concatenation whose first piece fills whole 16-channel
//     blocks and whose consumers all read through a two-pointer view (conv,
//     convT, bn, gn) is never copied, in the forward or the backward;
//   - the model's final sigmoid is computed by the loss kernel in training,
//     which also writes the gradient of the logits.
// The convolution kernels add the bias in their epilogue, and the weight
// gradient kernel computes the bias gradient; that needs no decision here.
#include "caec.h"
#include "kern.h"

static bool reads_views(OpKind op) { return op == OP_CONV || op == OP_CONVT || op == OP_BN || op == OP_GN; }

// The only consumer of node i, or -1.
static int only_consumer(const Graph *g, int i) {
  if (g->nodes[i].uses != 1 || i == g->output)
    return -1;
  for (int j = i + 1; j < g->nnodes; j++)
    for (int k = 0; k < g->nodes[j].nin; k++)
      if (g->nodes[j].in[k] == i)
        return j;
  return -1;
}

static bool concat_as_view(const Graph *g, int i) {
  const Node *n = &g->nodes[i];
  if (n->nin != 2 || i == g->output)
    return false;
  Shape a = g->nodes[n->in[0]].shape, b = g->nodes[n->in[1]].shape;
  if (a.c == 1 || b.c == 1 || a.c % KB) // 1-channel tensors are not blocked
    return false;
  for (int j = i + 1; j < g->nnodes; j++)
    for (int k = 0; k < g->nodes[j].nin; k++)
      if (g->nodes[j].in[k] == i && !reads_views(g->nodes[j].op))
        return false;
  return true;
}

void fuse(Arena *a, Step *s) {
  const Graph *g = s->g;
  s->absorbed_by = arena_alloc(a, sizeof(int) * (size_t)g->nnodes);
  s->fused_out = arena_alloc(a, sizeof(int) * (size_t)g->nnodes);
  s->view = arena_alloc(a, sizeof(bool) * (size_t)g->nnodes);
  for (int i = 0; i < g->nnodes; i++)
    s->absorbed_by[i] = -1, s->fused_out[i] = i;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = &g->nodes[i];
    int next = only_consumer(g, i);
    if ((n->op == OP_BN || n->op == OP_GN || n->op == OP_ADD) && next >= 0 && g->nodes[next].op == OP_RELU)
      s->absorbed_by[next] = i, s->fused_out[i] = next;
    if (n->op == OP_CONCAT)
      s->view[i] = concat_as_view(g, i);
  }
  const Node *out = &g->nodes[g->output];
  s->sigmoid_loss = out->op == OP_SIGMOID && out->in[0] != g->input && g->nodes[out->in[0]].uses == 1;
}
