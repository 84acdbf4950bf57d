// fusion.c: which layers share a kernel, decided on the layer graph before
// autodiff so that the forward and backward kernels agree on it:
//   - bn or gn followed by its only consumer relu: one normalisation kernel
//     writes relu(norm(x)), and its backward recomputes the mask from x;
//   - add followed by its only consumer relu: one kernel;
//   - a two-piece concatenation whose first piece fills whole 16-channel
//     blocks and whose consumers all read through a two-pointer view (conv,
//     convT, bn, gn) is never copied, in the forward or the backward;
//   - a batch norm (and its relu) whose consumers are all convolutions is
//     never written: they apply it as they load their input (the prologue),
//     from statistics that the convolution writing its input summed in its
//     epilogue when there is one;
//   - an add whose later input is a convolution used only there is computed
//     in that convolution's epilogue (residual add, and its relu);
//   - the model's final sigmoid is computed by the loss kernel in training,
//     which also writes the gradient of the logits.
// The convolution kernels add the bias in their epilogue, and the weight
// gradient kernel computes the bias gradient; that needs no decision here.
#include "caec.h"
#include "kern.h"

static bool is_conv(OpKind op) { return op == OP_CONV || op == OP_CONVT; }

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

static int resolve(const Graph *g, int i) {
  while (g->nodes[i].op == OP_IDENTITY)
    i = g->nodes[i].in[0];
  return i;
}

// Does every consumer of tensor t (through identities) satisfy ok, with
// concatenations kept as views looked through when through_views?
static bool consumers_all(const Step *s, int t, bool (*ok)(OpKind), bool through_views) {
  const Graph *g = s->g;
  if (t == g->output)
    return false;
  for (int j = t + 1; j < g->nnodes; j++)
    for (int k = 0; k < g->nodes[j].nin; k++) {
      if (g->nodes[j].in[k] != t)
        continue;
      OpKind op = g->nodes[j].op;
      if (op == OP_IDENTITY || (op == OP_CONCAT && through_views && s->fused[j].view)) {
        if (!consumers_all(s, j, ok, through_views))
          return false;
      } else if (!ok(op)) {
        return false;
      }
    }
  return true;
}

static bool reads_views(OpKind op) { return is_conv(op) || op == OP_BN || op == OP_GN; }

static bool concat_as_view(const Step *s, int i) {
  const Graph *g = s->g;
  const Node *n = &g->nodes[i];
  if (n->nin != 2)
    return false;
  Shape a = g->nodes[n->in[0]].shape, b = g->nodes[n->in[1]].shape;
  if (a.c == 1 || b.c == 1 || a.c % KB) // 1-channel tensors are not blocked
    return false;
  return consumers_all(s, i, reads_views, false);
}

void fuse(Arena *a, Step *s) {
  const Graph *g = s->g;
  size_t n = (size_t)g->nnodes;
  s->fused = arena_alloc(a, sizeof(Fused) * n);
  for (int i = 0; i < g->nnodes; i++)
    s->fused[i] = (Fused){.absorbed_by = -1, .out = i, .res_add = -1};
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = &g->nodes[i];
    int next = only_consumer(g, i);
    if ((n->op == OP_BN || n->op == OP_GN || n->op == OP_ADD) && next >= 0 && g->nodes[next].op == OP_RELU)
      s->fused[next].absorbed_by = i, s->fused[i].out = next;
    if (n->op == OP_CONCAT)
      s->fused[i].view = concat_as_view(s, i);
  }
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = &g->nodes[i];
    if (n->op == OP_BN && g->nodes[resolve(g, n->in[0])].op != OP_CONCAT)
      s->fused[i].prologue = consumers_all(s, s->fused[i].out, is_conv, true);
    if (n->op == OP_ADD) {
      int p = resolve(g, n->in[0]), q = resolve(g, n->in[1]), c = p > q ? p : q;
      if (p != q && is_conv(g->nodes[c].op) && g->nodes[c].uses == 1 && c != g->input) {
        s->fused[c].res_add = i;
        s->fused[c].out = s->fused[i].out;
      }
    }
  }
  // Sums for a prologue's batch norm, where a convolution writes its input.
  for (int i = 0; i < g->nnodes; i++) {
    if (!s->fused[i].prologue)
      continue;
    int t = resolve(g, g->nodes[i].in[0]);
    for (int c = 0; c < g->nnodes; c++)
      if (is_conv(g->nodes[c].op) && s->fused[c].out == t)
        s->fused[t].sums = true;
  }
  const Node *out = &g->nodes[g->output];
  s->sigmoid_loss = out->op == OP_SIGMOID && out->in[0] != g->input && g->nodes[out->in[0]].uses == 1;
}
