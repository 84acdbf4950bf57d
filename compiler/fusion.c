// fusion.c: which layers share a kernel, decided on the layer graph before
// autodiff so that the forward and backward kernels agree on it. What an op
// allows is its row's FUSE flags (ops.h); the rules:
//   - an F_ACT_OUT op (bn, gn, add) whose only consumer is the F_INTO_OUT
//     activation (relu): one kernel writes relu(op(x)), and its backward
//     recomputes the mask;
//   - an F_AS_VIEW op (a two-piece concatenation) whose first piece fills
//     whole 16-channel blocks and whose consumers all read F_VIEW_IN (conv,
//     convT, bn, gn) is never copied, in the forward or the backward;
//   - an F_PROLOGUE op (batch norm, with its relu) whose consumers are all
//     F_EPILOGUE (convolutions) is never written: they apply it as they load
//     their input, from statistics that the convolution writing its input
//     summed in its epilogue when there is one;
//   - an F_RESIDUAL op (add) whose later input is an F_EPILOGUE op used only
//     there is computed in that epilogue (residual add, and its relu);
//   - the model's last op, when F_INTO_LOSS (sigmoid), is computed by the
//     loss kernel in training, which also writes the gradient of the logits.
// The convolution kernels add the bias in their epilogue, and the weight
// gradient kernel computes the bias gradient; that needs no decision here.
#include "caec.h"
#include "kern.h"

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

// Does every consumer of tensor t (through aliases) have one of the flags,
// with concatenations kept as views looked through when through_views?
static bool consumers_all(const Step *s, int t, unsigned flags, bool through_views) {
  const Graph *g = s->g;
  if (t == g->output)
    return false;
  for (int j = t + 1; j < g->nnodes; j++)
    for (int k = 0; k < g->nodes[j].nin; k++) {
      if (g->nodes[j].in[k] != t)
        continue;
      OpKind op = g->nodes[j].op;
      if (op_fuses(op, F_ALIAS) || (through_views && s->fused[j].view)) {
        if (!consumers_all(s, j, flags, through_views))
          return false;
      } else if (!op_fuses(op, flags)) {
        return false;
      }
    }
  return true;
}

static bool as_view(const Step *s, int i) {
  const Graph *g = s->g;
  const Node *n = &g->nodes[i];
  if (n->nin != 2)
    return false;
  Shape a = g->nodes[n->in[0]].shape, b = g->nodes[n->in[1]].shape;
  if (a.c == 1 || b.c == 1 || a.c % KB) // 1-channel tensors are not blocked
    return false;
  return consumers_all(s, i, F_VIEW_IN, false);
}

void fuse(Arena *a, Step *s) {
  const Graph *g = s->g;
  size_t n = (size_t)g->nnodes;
  s->fused = arena_alloc(a, sizeof(Fused) * n);
  for (int i = 0; i < g->nnodes; i++)
    s->fused[i] = (Fused){.absorbed_by = -1, .out = i, .res_add = -1};
  for (int i = 0; i < g->nnodes; i++) {
    OpKind op = g->nodes[i].op;
    int next = only_consumer(g, i);
    if (op_fuses(op, F_ACT_OUT) && next >= 0 && op_fuses(g->nodes[next].op, F_INTO_OUT))
      s->fused[next].absorbed_by = i, s->fused[i].out = next;
    if (op_fuses(op, F_AS_VIEW))
      s->fused[i].view = as_view(s, i);
  }
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = &g->nodes[i];
    if (op_fuses(n->op, F_PROLOGUE) && !op_fuses(g->nodes[graph_resolve(g, n->in[0])].op, F_AS_VIEW))
      s->fused[i].prologue = consumers_all(s, s->fused[i].out, F_EPILOGUE, true);
    if (op_fuses(n->op, F_RESIDUAL)) {
      int p = graph_resolve(g, n->in[0]), q = graph_resolve(g, n->in[1]), c = p > q ? p : q;
      if (p != q && op_fuses(g->nodes[c].op, F_EPILOGUE) && g->nodes[c].uses == 1 && c != g->input) {
        s->fused[c].res_add = i;
        s->fused[c].out = s->fused[i].out;
      }
    }
  }
  // Sums for a prologue's batch norm, where a convolution writes its input.
  for (int i = 0; i < g->nnodes; i++) {
    if (!s->fused[i].prologue)
      continue;
    int t = graph_resolve(g, g->nodes[i].in[0]);
    for (int c = 0; c < g->nnodes; c++)
      if (op_fuses(g->nodes[c].op, F_EPILOGUE) && s->fused[c].out == t)
        s->fused[t].sums = true;
  }
  const Node *out = &g->nodes[g->output];
  s->sigmoid_loss = op_fuses(out->op, F_INTO_LOSS) && out->in[0] != g->input && g->nodes[out->in[0]].uses == 1;
}
