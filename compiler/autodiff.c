// autodiff.c: the layer graph -> the step programs, as lists of kernels over
// buffers.
//
// PROG_TRAIN is one training step: the forward pass in training mode, the
// loss and its gradient, the backward pass, and the optimizer update.
// PROG_FORWARD is the inference forward (batch norm on running statistics,
// no dropout). Each op is lowered by the rules its family in ops.h names
// (lower_FAMILY, adjoint_FAMILY; lowering[]): the backward is reverse-mode
// autodiff with one adjoint rule per family, applied to the kernels fusion.c
// chose.
//
// Gradients of activations are never zeroed: each tensor's contributions are
// counted statically, the first (in backward order) assigns and the rest add.
// A tensor whose gradient has a single contribution that is a plain copy (a
// residual add's backward) shares the buffer instead of copying.
//
// The fields of a Kern, by kind (p: parameter-side buffers, in the slots caec.h's KP_* name; aux: statistics):
//   PACK_*      in = canonical weights, out = packed weights
//   GATHER      in = image, out = grid, p0 = packed w, p1 = bias (conv forward, convT data gradient)
//   SCATTER     in = grid, out = image, p0 = packed w, p1 = bias (conv data gradient, convT forward)
//   WGRAD       in = grid, in2 = image, p0 = dw, p1 = db; grid_bias: the bias belongs to the grid
//               (GATHER, SCATTER, WGRAD: p2..p5 = scale and shift of the prologue of the view read
//               through one, pieces a and b; GATHER, SCATTER: in2 = the residual, aux0 = the sums)
//   BN_SUMS     in = sums (BN_STATS: x); BN_COEFFS: none; p0..p3 as BN_*, p4, p5 = scale, shift
//   BN_*, GN*   in = x, out = y (or dx), in2 = dy; p0..p3 = gamma, beta, running mean, running var
//               (the backward: p2, p3 = dgamma, dbeta); aux = mean, invstd; relu: fused relu
//   ACT, ADD    in (, in2) -> out; ACT_BWD: in = the x or y its row says (ops.h), in2 = dy, out = dx
//   COPY, SPLIT in = dy, out = dx (SPLIT: channels from `piece`); CONCAT: in -> out at `piece`
//   DROPOUT_*   aux0 = keep mask; DROPOUT: in -> out
//   LOSS        in = y (sigmoid: the logits z), in2 = target x, out = the gradient, p0 = y when sigmoid
//   L2_LOSS     reads the flagged kernels; UPDATE: p0 = w, p1 = grad, p2 = optimizer state
#include "caec.h"

#include <stdlib.h>
#include <string.h>

typedef struct Builder {
  Arena *arena;
  Step *s;
  const Graph *g;
  int prog;
  bool training;
  View *act;      // per node: its output tensor
  View *grad;     // per node: its output's gradient (a == -1: none yet)
  int *total;     // per node: contributions its gradient receives
  int *seen;      // per node: contributions made so far
  bool *needs;    // per node: depends on a trainable parameter
  int *pack[2];   // per node: packed weights for gather and scatter, -1 until made
  int *fwd;       // per node: its forward kernel in this program (the one that saves statistics or masks)
  int *sums;      // per node: the batch-norm sums its writer's epilogue made in this program, -1: none
} Builder;

static const View NO_VIEW = {-1, -1, 0, {-1, -1}, {-1, -1}, {false, false}};

const char *kern_name(const Kern *k) {
  static const char *const names[K_COUNT] = {
      "pack_gather", "pack_scatter", "gather", "scatter", "wgrad", "bn_train", "bn_eval", "bn_bwd", "gn", "gn_bwd",
      "bn_sums", "bn_stats", "bn_coeffs", NULL, NULL, "add", "copy", "dropout_mask", "dropout", "concat", "split",
      "loss", "l2_loss", "update"}; // K_ACT and K_ACT_BWD are named after their activation
  return k->kind == K_ACT ? op_name(k->act) : k->kind == K_ACT_BWD ? op_info(k->act)->bwd_name : names[k->kind];
}

char *buf_ident(Arena *a, const char *prefix, const char *name) {
  char *s = arena_printf(a, "%s%s", prefix, name);
  for (char *p = s; *p; p++)
    if (*p == '.')
      *p = '_';
  return s;
}

static int new_buf(Builder *b, const char *name, const char *shape, ArenaId arena, int prog, int64_t bytes) {
  Step *s = b->s;
  Buf *buf = ARENA_PUSH(b->arena, s->bufs, s->nbufs, s->bufs_cap);
  *buf = (Buf){name, shape, arena, prog, bytes, -1, -1, 0};
  return s->nbufs - 1;
}

// A buffer for a [batch, shape] activation, blocked as kern.h says.
static int tensor_buf(Builder *b, const char *prefix, int node, ArenaId arena) {
  const Node *n = &b->g->nodes[node];
  Shape sh = n->shape;
  const char *shape = arena_printf(b->arena, "[%d,%d,%d,%d] %s", b->s->batch, sh.c, sh.h, sh.w,
                                   sh.c == 1 ? "plain" : "NCHW16c");
  return new_buf(b, buf_ident(b->arena, prefix, n->name), shape, arena, b->prog,
                 (int64_t)kb_elems(b->s->batch, sh.c, sh.h, sh.w) * 4);
}

static Kern *kern(Builder *b, KernKind kind, int node, const char *covers) {
  Step *s = b->s;
  Kern *k = ARENA_PUSH(b->arena, s->kerns, s->nkerns, s->kerns_cap);
  *k = (Kern){.kind = kind, .node = node, .covers = covers, .in = NO_VIEW, .in2 = NO_VIEW, .out = NO_VIEW,
              .p = {-1, -1, -1, -1, -1, -1}, .aux = {-1, -1}, .work = -1, .param = -1};
  return k;
}

static View one(int buf) {
  View v = NO_VIEW;
  v.a = buf;
  return v;
}


// The tensor a node's output is: an absorbed relu's output is its absorber's.
static int out_node(const Builder *b, int i) { return b->s->fused[i].out; }

// The pieces of input k of node i: one tensor, or the two of a concatenation kept as a view.
static int pieces(const Builder *b, int i, int k, int piece[2]) {
  int t = graph_resolve(b->g, b->g->nodes[i].in[k]);
  if (!b->s->fused[t].view) {
    piece[0] = t;
    return 1;
  }
  piece[0] = graph_resolve(b->g, b->g->nodes[t].in[0]);
  piece[1] = graph_resolve(b->g, b->g->nodes[t].in[1]);
  return 2;
}

static int param_of(const Builder *b, int node, ParamRole role, int arena) {
  const Node *n = &b->g->nodes[node];
  for (int j = 0; j < n->nparams; j++)
    if (b->g->params[n->first_param + j].role == role)
      return b->s->param_buf[arena] + n->first_param + j;
  return -1;
}

// Is node i a kernel of its own (not folded into another, not a view or an alias)?
static bool is_kernel(const Builder *b, int i) {
  const Node *n = &b->g->nodes[i];
  const Fused *f = &b->s->fused[i];
  return n->op != OP_INPUT && !op_fuses(n->op, F_ALIAS) && f->absorbed_by < 0 && !f->view;
}

static void count_contributions(Builder *b) {
  const Graph *g = b->g;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = &g->nodes[i];
    b->needs[i] = n->op != OP_INPUT && n->nparams > 0;
    for (int k = 0; k < n->nin; k++)
      b->needs[i] = b->needs[i] || b->needs[n->in[k]];
  }
  for (int i = 0; i < g->nnodes; i++) {
    if (!is_kernel(b, i))
      continue;
    for (int k = 0; k < g->nodes[i].nin; k++) {
      int piece[2], np = pieces(b, i, k, piece);
      for (int j = 0; j < np; j++)
        b->total[piece[j]] += b->needs[piece[j]];
    }
  }
}

// ---- forward ---------------------------------------------------------------------

static const char *covers(Builder *b, int i) {
  const Node *n = &b->g->nodes[i];
  int o = out_node(b, i);
  if (o != i && !op_fuses(n->op, F_EPILOGUE))
    return arena_printf(b->arena, "%s (%s) + %s (%s)", n->name, op_name(n->op), b->g->nodes[o].name,
                        op_name(b->g->nodes[o].op));
  if (op_fuses(n->op, F_EPILOGUE)) {
    const char *what = arena_printf(b->arena, "%s (%s)%s", n->name, op_name(n->op), n->bias ? " + bias" : "");
    int add = b->s->fused[i].res_add;
    if (add >= 0)
      what = arena_printf(b->arena, "%s + %s (add)", what, b->g->nodes[add].name);
    if (add >= 0 && b->s->fused[add].out != add)
      what = arena_printf(b->arena, "%s + %s (%s)", what, b->g->nodes[b->s->fused[add].out].name,
                          op_name(b->g->nodes[b->s->fused[add].out].op));
    return what;
  }
  return arena_printf(b->arena, "%s (%s)", n->name, op_name(n->op));
}

// Two tensors as the pieces of one view, each with its prologue.
static View concat_view(const Builder *b, int p0, int p1) {
  View v = b->act[p0], w = b->act[p1];
  v.b = w.a;
  v.ca = b->g->nodes[p0].shape.c;
  v.scale[1] = w.scale[0], v.shift[1] = w.shift[0], v.relu[1] = w.relu[0];
  return v;
}

static View input_view(Builder *b, int i, int k) {
  int piece[2], np = pieces(b, i, k, piece);
  return np == 1 ? b->act[piece[0]] : concat_view(b, piece[0], piece[1]);
}

// A convolution kernel reads view v through its prologue: the coefficient buffers become arguments.
static void read_through(Kern *k, View v) {
  if (v.scale[0] >= 0)
    k->p[KP_SCALE_A] = v.scale[0], k->p[KP_SHIFT_A] = v.shift[0];
  if (v.scale[1] >= 0)
    k->p[KP_SCALE_B] = v.scale[1], k->p[KP_SHIFT_B] = v.shift[1];
}

static int packed(Builder *b, int i, int scatter) {
  if (b->pack[scatter][i] < 0) {
    const Node *n = &b->g->nodes[i];
    KConv geom = conv_geom(b->g, b->s->batch, i);
    // Room for both layouts when the C kernels transform the weights: the CUDA back end, which shares
    // the plan, packs them for its direct kernels.
    const ConvVariant v = conv_variant(b->s, i, scatter ? K_PACK_SCATTER : K_PACK_GATHER);
    size_t direct = kc_packed_floats(&geom), wino = kw_packed_floats(&geom);
    int64_t floats = (int64_t)(v == CV_WINO && wino > direct ? wino : direct);
    b->pack[scatter][i] = new_buf(b, buf_ident(b->arena, scatter ? "ws_" : "wg_", n->name),
                                  arena_printf(b->arena, "[%d,%d,%d,%d] packed for %s%s", geom.gc, geom.ic, n->k, n->k,
                                               scatter ? "scatter" : "gather", v == CV_WINO ? " (Winograd)" : ""),
                                  AR_SCRATCH, b->prog, floats * 4);
    Kern *k = kern(b, scatter ? K_PACK_SCATTER : K_PACK_GATHER, i, arena_printf(b->arena, "%s weights", n->name));
    k->variant = v;
    k->in = one(param_of(b, i, P_WEIGHT, 0));
    k->out = one(b->pack[scatter][i]);
  }
  return b->pack[scatter][i];
}

// The output buffer of node i: the caller's y when its tensor is the model's output.
static int output_buf(Builder *b, int i) {
  int o = out_node(b, i);
  int buf = o == b->g->output ? b->s->param_buf[AR_IO] + 1 : tensor_buf(b, "a_", o, AR_ACTS);
  b->act[i] = b->act[o] = one(buf);
  return buf;
}

static int stats_buf(Builder *b, const char *prefix, int i, int count) {
  return new_buf(b, buf_ident(b->arena, prefix, b->g->nodes[i].name), arena_printf(b->arena, "[%d] f32", count),
                 AR_SCRATCH, b->prog, count * 4);
}

// A batch norm that its consumers apply: only its statistics (from the sums of
// its input's writer when there are some) and the coefficients of their prologue.
static void norm_for_consumers(Builder *b, int i) {
  const Graph *g = b->g;
  const Node *n = &g->nodes[i];
  int x = graph_resolve(g, n->in[0]);
  KernKind kind = !b->training ? K_BN_COEFFS : b->sums[x] >= 0 ? K_BN_SUMS : K_BN_STATS;
  Kern *k = kern(b, kind, i, arena_printf(b->arena, "%s statistics, applied by its consumers", covers(b, i)));
  b->fwd[i] = b->s->nkerns - 1;
  ParamRole roles[4] = {P_WEIGHT, P_BIAS, P_RUNNING_MEAN, P_RUNNING_VAR};
  for (int j = 0; j < 4; j++)
    k->p[j] = param_of(b, i, roles[j], 0);
  k->p[KP_SCALE] = stats_buf(b, "scale_", i, n->shape.c);
  k->p[KP_SHIFT] = stats_buf(b, "shift_", i, n->shape.c);
  if (kind != K_BN_COEFFS) {
    k->in = kind == K_BN_SUMS ? one(b->sums[x]) : b->act[x];
    k->aux[0] = stats_buf(b, "mean_", i, n->shape.c);
    k->aux[1] = stats_buf(b, "invstd_", i, n->shape.c);
  }
  View v = b->act[x];
  v.scale[0] = k->p[KP_SCALE], v.shift[0] = k->p[KP_SHIFT], v.relu[0] = out_node(b, i) != i;
  b->act[i] = b->act[out_node(b, i)] = v;
}

// A kernel that computes node i from its inputs (the forward kernel its adjoint finds); the
// lowering adds what its family needs and then the output buffer.
static Kern *node_kern(Builder *b, int i, KernKind kind) {
  const Node *n = &b->g->nodes[i];
  Kern *k = kern(b, kind, i, covers(b, i));
  k->act = n->op;
  b->fwd[i] = b->s->nkerns - 1;
  k->in = input_view(b, i, 0);
  if (n->nin > 1)
    k->in2 = input_view(b, i, 1);
  k->relu = out_node(b, i) != i;
  return k;
}

// The forward lowerings, one per family of ops.h: each leaves node i's tensor in b->act[i].
static void lower_input(Builder *b, int i) { b->act[i] = one(b->s->param_buf[AR_IO]); }

static void lower_identity(Builder *b, int i) { b->act[i] = b->act[b->g->nodes[i].in[0]]; }

static void lower_dropout(Builder *b, int i) {
  const Node *n = &b->g->nodes[i];
  if (!b->training) {
    b->act[i] = b->act[n->in[0]];
    return;
  }
  Kern *k = kern(b, K_DROPOUT_MASK, i, arena_printf(b->arena, "%s mask", n->name));
  k->aux[0] = new_buf(b, buf_ident(b->arena, "keep_", n->name), arena_printf(b->arena, "[%d,%d] u8", b->s->batch, n->shape.c),
                      AR_SCRATCH, b->prog, (int64_t)b->s->batch * n->shape.c);
  int keep = k->aux[0];
  b->fwd[i] = b->s->nkerns - 1;
  k = kern(b, K_DROPOUT, i, covers(b, i));
  k->aux[0] = keep;
  k->in = b->act[n->in[0]];
  k->out = one(output_buf(b, i));
}

static void lower_concat(Builder *b, int i) {
  const Graph *g = b->g;
  const Node *n = &g->nodes[i];
  if (b->s->fused[i].view) {
    b->act[i] = concat_view(b, graph_resolve(g, n->in[0]), graph_resolve(g, n->in[1]));
    return;
  }
  int y = output_buf(b, i), offset = 0;
  for (int j = 0; j < n->nin; j++) {
    Kern *k = kern(b, K_CONCAT, i, covers(b, i));
    k->in = b->act[n->in[j]];
    k->out = one(y);
    k->piece = offset;
    offset += g->nodes[n->in[j]].shape.c;
  }
}

static void lower_act(Builder *b, int i) {
  if (b->s->fused[i].absorbed_by >= 0) // a relu that its producer's kernel applies
    return;
  if (b->training && b->s->sigmoid_loss && i == b->g->output) { // the loss kernel computes it
    output_buf(b, i);
    return;
  }
  Kern *k = node_kern(b, i, K_ACT);
  k->out = one(output_buf(b, i));
}

static void lower_add(Builder *b, int i) {
  const Graph *g = b->g;
  const Node *n = &g->nodes[i];
  if (b->s->fused[graph_resolve(g, n->in[0])].res_add == i || b->s->fused[graph_resolve(g, n->in[1])].res_add == i)
    return; // computed by the epilogue of its later input's convolution
  Kern *k = node_kern(b, i, K_ADD);
  k->out = one(output_buf(b, i));
}

static void lower_norm(Builder *b, int i) {
  const Node *n = &b->g->nodes[i];
  if (b->s->fused[i].prologue) {
    norm_for_consumers(b, i);
    return;
  }
  KernKind kind = n->op == OP_GN ? K_GN : b->training ? K_BN_TRAIN : K_BN_EVAL;
  Kern *k = node_kern(b, i, kind);
  ParamRole roles[4] = {P_WEIGHT, P_BIAS, P_RUNNING_MEAN, P_RUNNING_VAR};
  for (int j = 0; j < 4; j++)
    k->p[j] = param_of(b, i, roles[j], 0);
  if (kind != K_BN_EVAL) {
    int stats = n->op == OP_BN ? n->shape.c : b->s->batch * n->groups;
    k->aux[0] = stats_buf(b, "mean_", i, stats);
    k->aux[1] = stats_buf(b, "invstd_", i, stats);
  }
  k->out = one(output_buf(b, i));
}

static void lower_conv(Builder *b, int i) {
  const Graph *g = b->g;
  const Node *n = &g->nodes[i];
  int w = packed(b, i, n->op == OP_CONVT);
  Kern *k = node_kern(b, i, n->op == OP_CONV ? K_GATHER : K_SCATTER);
  k->p[KP_W] = w;
  k->variant = conv_variant(b->s, i, k->kind);
  k->p[KP_BIAS] = param_of(b, i, P_BIAS, 0);
  read_through(k, k->in);
  int add = b->s->fused[i].res_add;
  k->relu = add >= 0 && b->s->fused[add].out != add;
  if (add >= 0) { // the residual: the add's other input
    int p = graph_resolve(g, g->nodes[add].in[0]);
    k->in2 = b->act[p == i ? graph_resolve(g, g->nodes[add].in[1]) : p];
  }
  int t = out_node(b, i);
  if (b->training && b->s->fused[t].sums) {
    Shape sh = g->nodes[t].shape;
    int64_t parts = (int64_t)b->s->batch * sh.h;
    b->sums[t] = k->aux[0] = new_buf(b, buf_ident(b->arena, "sums_", g->nodes[t].name),
                                     arena_printf(b->arena, "[%lld,2,%d] f64", (long long)parts, kb_blocks(sh.c) * KB),
                                     AR_SCRATCH, b->prog, parts * 2 * kb_blocks(sh.c) * KB * 8);
  }
  k->out = one(output_buf(b, i));
}

// ---- backward --------------------------------------------------------------------

// Where the gradient of tensor t goes next, and whether that adds.
static int gradient_of(Builder *b, int t, bool *acc) {
  if (!b->needs[t]) { // e.g. the model's input inside a concatenation: computed, never read
    *acc = false;
    return tensor_buf(b, "discard_", t, AR_SCRATCH);
  }
  *acc = b->seen[t]++ > 0;
  if (b->grad[t].a < 0)
    b->grad[t] = one(tensor_buf(b, "g_", t, AR_SCRATCH));
  return b->grad[t].a;
}

// The gradient view that receives input k of node i's contribution.
static void input_grad(Builder *b, Kern *k, int i, int in) {
  int piece[2], np = pieces(b, i, in, piece);
  k->out.a = gradient_of(b, piece[0], &k->acc_a);
  if (np == 2) {
    k->out.b = gradient_of(b, piece[1], &k->acc_b);
    k->out.ca = b->g->nodes[piece[0]].shape.c;
  }
}

// The forward kernel that node i made in this program (for the statistics or the mask it saved).
static const Kern *forward_kern(const Builder *b, int i) { return &b->s->kerns[b->fwd[i]]; }

KConv conv_geom(const Graph *g, int batch, int node) {
  const Node *n = &g->nodes[node];
  Shape x = g->nodes[n->in[0]].shape, y = n->shape;
  Shape grid = n->op == OP_CONV ? y : x, image = n->op == OP_CONV ? x : y;
  return (KConv){batch, grid.c, grid.h, grid.w, image.c, image.h, image.w, n->k, n->stride, n->pad[0], n->pad[2]};
}

static const char *backward_what(Builder *b, int i) { return arena_printf(b->arena, "%s backward", covers(b, i)); }

// The adjoints, one per family of ops.h: each adds node i's contribution to its inputs' gradients
// (and its parameters'), from dy, the gradient of the tensor its kernel wrote.
static void adjoint_conv(Builder *b, int i, View dy) {
  const Node *n = &b->g->nodes[i];
  bool convt = n->op == OP_CONVT;
  View x = input_view(b, i, 0);
  Kern *k = kern(b, K_WGRAD, i, arena_printf(b->arena, "%s (%s) weight%s gradient", n->name, op_name(n->op),
                                             n->bias ? " and bias" : ""));
  k->in = convt ? x : dy;
  k->in2 = convt ? dy : x;
  read_through(k, x);
  k->p[KP_W] = param_of(b, i, P_WEIGHT, AR_GRADS);
  k->p[KP_BIAS] = param_of(b, i, P_BIAS, AR_GRADS);
  k->grid_bias = !convt;
  k->variant = conv_variant(b->s, i, K_WGRAD);
  if (!b->needs[graph_resolve(b->g, n->in[0])])
    return; // the first layer: nothing needs the gradient of the model's input
  int w = packed(b, i, !convt);
  k = kern(b, convt ? K_GATHER : K_SCATTER, i, arena_printf(b->arena, "%s (%s) data gradient", n->name, op_name(n->op)));
  k->in = dy;
  k->p[KP_W] = w;
  k->variant = conv_variant(b->s, i, k->kind);
  input_grad(b, k, i, 0);
}

static void adjoint_norm(Builder *b, int i, View dy) {
  Kern *k = kern(b, b->g->nodes[i].op == OP_BN ? K_BN_BWD : K_GN_BWD, i, backward_what(b, i));
  k->in = input_view(b, i, 0);
  k->in2 = dy;
  k->p[KP_GAMMA] = param_of(b, i, P_WEIGHT, 0);
  k->p[KP_BETA] = param_of(b, i, P_BIAS, 0);
  k->p[KP_DGAMMA] = param_of(b, i, P_WEIGHT, AR_GRADS);
  k->p[KP_DBETA] = param_of(b, i, P_BIAS, AR_GRADS);
  memcpy(k->aux, forward_kern(b, i)->aux, sizeof k->aux);
  k->relu = out_node(b, i) != i;
  input_grad(b, k, i, 0);
}

static void adjoint_add(Builder *b, int i, View dy) {
  const Graph *g = b->g;
  const Node *n = &g->nodes[i];
  const char *what = backward_what(b, i);
  int o = out_node(b, i), gbuf = dy.a;
  Kern *k;
  if (o != i) { // the fused relu: its mask first, then the same gradient for both inputs
    gbuf = tensor_buf(b, "g_", i, AR_SCRATCH);
    k = kern(b, K_ACT_BWD, i, what);
    k->act = g->nodes[o].op;
    k->in = b->act[o];
    k->in2 = dy;
    k->out = one(gbuf);
  }
  for (int j = 0; j < n->nin; j++) {
    int t = graph_resolve(g, n->in[j]);
    if (!b->needs[t])
      continue;
    if (b->total[t] == 1 && b->grad[t].a < 0) { // the only contribution: share the buffer
      b->grad[t] = one(gbuf);
      b->seen[t]++;
      continue;
    }
    k = kern(b, K_COPY, i, what);
    k->in = one(gbuf);
    input_grad(b, k, i, j);
  }
}

static void adjoint_concat(Builder *b, int i, View dy) {
  const Graph *g = b->g;
  const Node *n = &g->nodes[i];
  const char *what = backward_what(b, i);
  int offset = 0;
  for (int j = 0; j < n->nin; j++) {
    int t = graph_resolve(g, n->in[j]);
    if (b->needs[t]) {
      Kern *k = kern(b, K_SPLIT, i, what);
      k->in = dy;
      k->piece = offset;
      input_grad(b, k, i, j);
    }
    offset += g->nodes[t].shape.c;
  }
}

static void adjoint_dropout(Builder *b, int i, View dy) {
  Kern *k = kern(b, K_DROPOUT, i, backward_what(b, i));
  k->aux[0] = forward_kern(b, i)->aux[0];
  k->in = dy;
  input_grad(b, k, i, 0);
}

// From the tensor the activation's row saves.
static void adjoint_act(Builder *b, int i, View dy) {
  OpKind op = b->g->nodes[i].op;
  Kern *k = kern(b, K_ACT_BWD, i, backward_what(b, i));
  k->act = op;
  k->in = op_info(op)->grad_from_x ? input_view(b, i, 0) : b->act[i];
  k->in2 = dy;
  input_grad(b, k, i, 0);
}

// Each op's lowering and adjoint, named by its family in ops.h. An identity is
// an alias of its input (resolve), never a kernel: it has no adjoint.
#define adjoint_identity NULL
#define LOWERING_OP(id, name, lo, hi, shape, family, fuse) [OP_##id] = {lower_##family, adjoint_##family},
#define LOWERING_ACT(id, ...) [OP_##id] = {lower_act, adjoint_act},
static const struct {
  void (*lower)(Builder *b, int i);
  void (*adjoint)(Builder *b, int i, View dy);
} lowering[OP_COUNT] = {[OP_INPUT] = {lower_input, NULL}, CAEC_OPS(LOWERING_OP, LOWERING_ACT)};

static void backward_node(Builder *b, int i) {
  const Graph *g = b->g;
  const Node *n = &g->nodes[i];
  int o = b->s->fused[i].res_add >= 0 ? i : out_node(b, i); // a residual conv's own output gradient: the add's
  View dy = b->grad[o];
  if (!is_kernel(b, i) || dy.a < 0 || (!n->nparams && !b->needs[graph_resolve(g, n->in[0])] &&
                                       (n->nin < 2 || !b->needs[graph_resolve(g, n->in[1])])))
    return;
  lowering[n->op].adjoint(b, i, dy);
}

// ---- the programs ----------------------------------------------------------------

static void loss(Builder *b) {
  const Graph *g = b->g;
  int out = g->output;
  Kern *k = kern(b, K_LOSS, out, b->s->sigmoid_loss ? arena_printf(b->arena, "%s (sigmoid) + loss + gradient",
                                                                     g->nodes[out].name)
                                                    : "loss + gradient");
  k->in2 = one(b->s->param_buf[AR_IO]);
  k->sigmoid = b->s->sigmoid_loss;
  if (k->sigmoid) {
    int z = graph_resolve(g, g->nodes[out].in[0]);
    k->in = b->act[z];
    k->p[KP_Y_OUT] = b->act[out].a;
    k->out.a = gradient_of(b, z, &k->acc_a);
  } else {
    k->in = b->act[out];
    k->out.a = gradient_of(b, out, &k->acc_a);
  }
  for (int p = 0; p < g->nparams; p++)
    if (g->params[p].l2) {
      kern(b, K_L2_LOSS, out, "L2 penalty of the flagged kernels");
      break;
    }
}

static void program(Builder *b, int prog) {
  const Graph *g = b->g;
  b->prog = prog;
  b->training = prog == PROG_TRAIN;
  size_t n = (size_t)g->nnodes;
  for (size_t i = 0; i < n; i++)
    b->grad[i] = NO_VIEW, b->sums[i] = -1;
  memset(b->seen, 0, sizeof(int) * n);
  memset(b->pack[0], 0xff, sizeof(int) * n);
  memset(b->pack[1], 0xff, sizeof(int) * n);
  b->s->prog_start[prog] = b->s->nkerns;
  for (int i = 0; i < g->nnodes; i++)
    lowering[g->nodes[i].op].lower(b, i);
  if (!b->training)
    return;
  loss(b);
  for (int i = g->output; i > 0; i--)
    backward_node(b, i);
  for (int p = 0; p < g->nparams; p++)
    if (g->params[p].trainable) {
      Kern *k = kern(b, K_UPDATE, g->params[p].node, arena_printf(b->arena, "%s update", g->params[p].name));
      k->param = p;
      k->p[KP_PARAM] = b->s->param_buf[AR_PARAMS] + p;
      k->p[KP_GRAD] = b->s->param_buf[AR_GRADS] + p;
      k->p[KP_OPTIM] = b->s->param_buf[AR_OPTIM] + p;
    }
}

bool reconstructs(const Graph *g) {
  Shape in = g->nodes[g->input].shape, out = g->nodes[g->output].shape;
  return in.c == 1 && out.c == 1 && in.h == out.h && in.w == out.w;
}

static const Step *sort_step; // qsort has no context argument
static int by_name(const void *pa, const void *pb) {
  int a = *(const int *)pa, b = *(const int *)pb, c = strcmp(sort_step->bufs[a].name, sort_step->bufs[b].name);
  return c ? c : a - b;
}

// Layers a.b and a_b both make C names a_b: the later of equal names gets its buffer number appended.
static void unique_names(Arena *a, Step *s) {
  int *order = xmalloc(sizeof(int) * (size_t)s->nbufs);
  for (int i = 0; i < s->nbufs; i++)
    order[i] = i;
  sort_step = s;
  qsort(order, (size_t)s->nbufs, sizeof *order, by_name);
  for (int i = s->nbufs - 1; i > 0; i--)
    if (!strcmp(s->bufs[order[i]].name, s->bufs[order[i - 1]].name))
      s->bufs[order[i]].name = arena_printf(a, "%s_%d", s->bufs[order[i]].name, order[i]);
  free(order);
}

Step *build_step(Arena *a, const Graph *g, int batch, bool conv_direct, const Tuning *tuning) {
  Step *s = arena_alloc(a, sizeof *s);
  s->g = g;
  s->batch = batch;
  s->conv_direct = conv_direct;
  s->tuning = tuning;
  fuse(a, s);
  Builder b = {a, s, g, 0, false, NULL, NULL, NULL, NULL, NULL, {NULL, NULL}, NULL, NULL};
  size_t n = (size_t)g->nnodes;
  b.act = arena_alloc(a, sizeof(View) * n);
  b.grad = arena_alloc(a, sizeof(View) * n);
  b.total = arena_alloc(a, sizeof(int) * n);
  b.seen = arena_alloc(a, sizeof(int) * n);
  b.needs = arena_alloc(a, sizeof(bool) * n);
  b.pack[0] = arena_alloc(a, sizeof(int) * n);
  b.pack[1] = arena_alloc(a, sizeof(int) * n);
  b.fwd = arena_alloc(a, sizeof(int) * n);
  b.sums = arena_alloc(a, sizeof(int) * n);
  // The persistent buffers: one per parameter in each of params, grads and optim; then x and y.
  static const char *const prefix[3] = {"w_", "dw_", "opt_"};
  for (int arena = AR_PARAMS; arena <= AR_OPTIM; arena++) {
    s->param_buf[arena] = s->nbufs;
    for (int p = 0; p < g->nparams; p++) {
      const Param *pr = &g->params[p];
      char *shape = arena_printf(a, "[%d", pr->dims[0]);
      for (int d = 1; d < pr->ndim; d++)
        shape = arena_printf(a, "%s,%d", shape, pr->dims[d]);
      // Adam keeps two moments; RMSprop and SGD use the first half.
      int64_t bytes = pr->numel * 4 * (arena == AR_OPTIM ? 2 : 1);
      new_buf(&b, buf_ident(a, prefix[arena], pr->name), arena_printf(a, "%s]", shape), (ArenaId)arena, -1, bytes);
    }
  }
  Shape in = g->nodes[g->input].shape;
  const char *io = arena_printf(a, "[%d,%d,%d,%d] plain", batch, in.c, in.h, in.w);
  s->param_buf[AR_IO] = new_buf(&b, "x", io, AR_IO, -1, 0);
  new_buf(&b, "y", io, AR_IO, -1, 0);
  count_contributions(&b);
  program(&b, PROG_TRAIN);
  program(&b, PROG_FORWARD);
  s->prog_start[PROG_COUNT] = s->nkerns;
  plan_workspaces(a, s);
  unique_names(a, s);
  return s;
}
