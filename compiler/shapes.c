// shapes.c: the op table and, per op, the shape rule, the parameters (PyTorch
// names and layouts) and the forward FLOPs. Every size is checked against the
// limits of caec.h with overflow-safe arithmetic before it is used.
#include "caec.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define AT(field) offsetof(Node, field)
// The arguments of ops.h's OP rows, by ID.
#define ARGS_CONV                                                                                   \
  {{"out", A_INT, true, 0, AT(out_ch)}, {"k", A_INT, true, 0, AT(k)},                               \
   {"stride", A_INT, false, 1, AT(stride)}, {"pad", A_PAD, false, PAD_SAME, AT(pad_mode)},         \
   {"bias", A_BOOL, false, 1, AT(bias)}, {"l2", A_BOOL, false, 0, AT(l2)}}
#define ARGS_CONVT ARGS_CONV
// Keras BatchNormalization defaults (the seed models are Keras models).
#define ARGS_BN {{"eps", A_FLOAT, false, 1e-3, AT(eps)}, {"momentum", A_FLOAT, false, 0.99, AT(momentum)}}
#define ARGS_GN {{"groups", A_INT, true, 0, AT(groups)}, {"eps", A_FLOAT, false, 1e-5, AT(eps)}}
#define ARGS_ADD {{0}}
#define ARGS_CONCAT {{0}}
#define ARGS_SPATIAL_DROPOUT {{"rate", A_FLOAT, true, 0, AT(rate)}}
#define ARGS_IDENTITY {{0}}
// An ACT row's argument and the saved tensor its adjoint reads.
#define ACT_ARGS_ALPHA {{"alpha", A_FLOAT, true, 0, AT(alpha)}}
#define ACT_ARGS_NO_ALPHA {{0}}
#define HAS_ALPHA true
#define HAS_NO_ALPHA false
#define SAVED_X true
#define SAVED_Y false

typedef bool ShapeRule(Ctx *c, Graph *g, Node *n, Shape in);
static ShapeRule shape_conv, shape_norm, shape_join, shape_dropout, shape_same, shape_act;

#define OP_ROW(id, name, lo, hi, rule, family, fuse) \
  {#name, OP_##id, lo, hi, ARGS_##id, shape_##rule, fuse, false, false, false, 0, NULL},
#define ACT_ROW(id, name, flops, saved, alpha, fuse) \
  {#name, OP_##id, 1, 1, ACT_ARGS_##alpha, shape_act, fuse, true, SAVED_##saved, HAS_##alpha, flops, #name "_bwd"},
static const OpInfo ops[] = {CAEC_OPS(OP_ROW, ACT_ROW)};

const OpInfo *op_table(int *n) {
  *n = (int)(sizeof ops / sizeof *ops);
  return ops;
}

const OpInfo *op_lookup(const char *name) {
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
    if (!strcmp(ops[i].name, name))
      return &ops[i];
  return NULL;
}

_Static_assert(sizeof ops / sizeof *ops == OP_COUNT - 1, "one row per OpKind but OP_INPUT");
const OpInfo *op_info(OpKind op) { return &ops[op - 1]; } // the rows are in OpKind's order

bool op_fuses(OpKind op, unsigned flags) { return op != OP_INPUT && (op_info(op)->fuse & flags); }

const char *op_name(OpKind op) { return op == OP_INPUT ? "input" : op_info(op)->name; }

char *shape_str(Arena *a, const Graph *g, Shape s) {
  if (g->batch)
    return arena_printf(a, "[%d,%d,%d,%d]", g->batch, s.c, s.h, s.w);
  return arena_printf(a, "[%s,%d,%d,%d]", g->batch_name, s.c, s.h, s.w);
}

static bool add_param(Ctx *c, Graph *g, Node *n, const char *suffix, ParamRole role, bool trainable, int ndim,
                      const int *dims) {
  int64_t numel = 1;
  for (int i = 0; i < ndim; i++)
    if (!mul_ok(numel, dims[i], &numel) || numel > MAX_TENSOR_ELEMS) {
      error_at(c, n->loc, "%s '%s' would have more than 2^31 parameters", op_name(n->op), n->name);
      return false;
    }
  if (!n->nparams)
    n->first_param = g->nparams;
  n->nparams++;
  Param *p = ARENA_PUSH(c->arena, g->params, g->nparams, g->params_cap);
  *p = (Param){arena_printf(c->arena, "%s.%s", n->name, suffix), n->id, role, ndim, {0}, numel, trainable,
               role == P_WEIGHT && n->l2};
  memcpy(p->dims, dims, sizeof(int) * (size_t)ndim);
  return true;
}

static const char *dim_name(int axis) { return axis == 0 ? "height" : "width"; }

// Resolves padding along one spatial axis of size `in` and returns the output
// size, or -1 after an error.
static int conv_axis(Ctx *c, Node *n, int axis, int in) {
  int k = n->k, s = n->stride, *before = &n->pad[2 * axis], *after = &n->pad[2 * axis + 1];
  if (n->op == OP_CONV && n->pad_mode == PAD_SAME && in % s) {
    error_at(c, n->loc, "stride %d does not divide the input %s %d (pad=same needs an exact multiple)", s,
             dim_name(axis), in);
    return -1;
  }
  if (n->op == OP_CONV) {
    if (n->pad_mode == PAD_SAME) {
      int total = (in / s - 1) * s + k - in;
      total = total > 0 ? total : 0;
      *before = total / 2;
      *after = total - *before;
    } else if (n->pad_mode == PAD_VALID) {
      *before = *after = 0;
    }
    int span = in + *before + *after - k;
    if (span < 0) {
      error_at(c, n->loc, "kernel %d is larger than the padded input %s %d", k, dim_name(axis), in + *before + *after);
      return -1;
    }
    return span / s + 1; // rows the stride cannot reach are dropped, as in TensorFlow and PyTorch
  }
  // Transposed conv: every input pixel scatters a k x k patch at stride s; the
  // full output is then cropped.
  int full = (in - 1) * s + k;
  if (n->pad_mode == PAD_SAME) {
    int total = full - in * s;
    if (total < 0) {
      error_at(c, n->loc, "convT with pad=same needs a kernel at least as large as the stride (k=%d, stride=%d)", k, s);
      return -1;
    }
    *before = total / 2;
    *after = total - *before;
  } else if (n->pad_mode == PAD_VALID) {
    *before = *after = 0;
  }
  int out = full - *before - *after;
  if (out < 1) {
    error_at(c, n->loc, "convT crops %d from a full output %s of %d, leaving nothing", *before + *after,
             dim_name(axis), full);
    return -1;
  }
  return out;
}

static bool check_range(Ctx *c, Node *n, const char *what, int64_t v, int64_t lo, int64_t hi) {
  if (v >= lo && v <= hi)
    return true;
  error_at(c, n->loc, "%s %s must be in [%lld, %lld], got %lld", op_name(n->op), what, (long long)lo, (long long)hi,
           (long long)v);
  return false;
}

static bool check_real(Ctx *c, Node *n, const char *what, double v, double lo, double hi, bool hi_open) {
  if (isfinite(v) && v >= lo && (hi_open ? v < hi : v <= hi))
    return true;
  error_at(c, n->loc, "%s %s must be in [%g, %g%c, got %g", op_name(n->op), what, lo, hi, hi_open ? ')' : ']', v);
  return false;
}

static bool shape_conv(Ctx *c, Graph *g, Node *n, Shape in) {
  if (!check_range(c, n, "out", n->out_ch, 1, MAX_DIM) || !check_range(c, n, "k", n->k, 1, MAX_KERNEL) ||
      !check_range(c, n, "stride", n->stride, 1, MAX_STRIDE))
    return false;
  if (n->op == OP_CONV && n->pad_mode == PAD_EXPLICIT) // padding a whole kernel adds only zeros
    for (int i = 0; i < 4; i++)
      if (n->pad[i] < 0 || n->pad[i] >= n->k) {
        error_at(c, n->loc, "%s padding %d must be in [0, %d] for kernel %d", op_name(n->op), n->pad[i], n->k - 1,
                 n->k);
        return false;
      }
  int oh = conv_axis(c, n, 0, in.h);
  if (oh < 0)
    return false;
  int ow = conv_axis(c, n, 1, in.w);
  if (ow < 0)
    return false;
  n->shape = (Shape){n->out_ch, oh, ow};
  // Forward MACs: conv visits every output pixel, convT every input pixel.
  int64_t pixels = n->op == OP_CONV ? (int64_t)oh * ow : (int64_t)in.h * in.w;
  n->flops = 2 * (int64_t)n->k * n->k * in.c * n->out_ch * pixels + (n->bias ? (int64_t)n->out_ch * oh * ow : 0);
  int w_conv[4] = {n->out_ch, in.c, n->k, n->k}, w_convt[4] = {in.c, n->out_ch, n->k, n->k};
  if (!add_param(c, g, n, "weight", P_WEIGHT, true, 4, n->op == OP_CONV ? w_conv : w_convt))
    return false;
  return !n->bias || add_param(c, g, n, "bias", P_BIAS, true, 1, &n->out_ch);
}

static bool shape_norm(Ctx *c, Graph *g, Node *n, Shape in) {
  if (!check_real(c, n, "eps", n->eps, 1e-12, 1, false))
    return false;
  if (n->op == OP_BN && !check_real(c, n, "momentum", n->momentum, 0, 1, true))
    return false;
  if (n->op == OP_GN) {
    if (!check_range(c, n, "groups", n->groups, 1, in.c))
      return false;
    if (in.c % n->groups) {
      error_at(c, n->loc, "gn groups %d does not divide the %d channels", n->groups, in.c);
      return false;
    }
  }
  n->shape = in;
  n->flops = 2 * (int64_t)in.c * in.h * in.w;
  bool ok = add_param(c, g, n, "weight", P_WEIGHT, true, 1, &in.c) && add_param(c, g, n, "bias", P_BIAS, true, 1, &in.c);
  if (ok && n->op == OP_BN)
    ok = add_param(c, g, n, "running_mean", P_RUNNING_MEAN, false, 1, &in.c) &&
         add_param(c, g, n, "running_var", P_RUNNING_VAR, false, 1, &in.c);
  return ok;
}

static bool shape_join(Ctx *c, Graph *g, Node *n, Shape in) {
  Shape first = in, out = first;
  for (int i = 1; i < n->nin; i++) {
    Shape s = g->nodes[n->in[i]].shape;
    bool ok = n->op == OP_ADD ? s.c == first.c && s.h == first.h && s.w == first.w : s.h == first.h && s.w == first.w;
    if (!ok) {
      error_at(c, n->loc, n->op == OP_ADD ? "add needs tensors of one shape, got %s and %s"
                                          : "concat joins channels, so heights and widths must match: %s and %s",
               shape_str(c->arena, g, first), shape_str(c->arena, g, s));
      return false;
    }
    if (n->op == OP_CONCAT)
      out.c += s.c;
  }
  if (out.c > MAX_DIM) {
    error_at(c, n->loc, "concat gives %d channels, more than the limit %d", out.c, MAX_DIM);
    return false;
  }
  n->shape = out;
  n->flops = n->op == OP_ADD ? (int64_t)(n->nin - 1) * first.c * first.h * first.w : 0;
  return true;
}

static int64_t elems_of(Shape s) { return (int64_t)s.c * s.h * s.w; }

static bool shape_dropout(Ctx *c, Graph *g, Node *n, Shape in) {
  (void)g;
  n->shape = in;
  n->flops = elems_of(in);
  return check_real(c, n, "rate", n->rate, 0, 1, true);
}

static bool shape_same(Ctx *c, Graph *g, Node *n, Shape in) {
  (void)c, (void)g;
  n->shape = in;
  return true;
}

static bool shape_act(Ctx *c, Graph *g, Node *n, Shape in) {
  (void)g;
  n->shape = in;
  n->flops = op_info(n->op)->act_flops * elems_of(in);
  return !op_info(n->op)->alpha || check_real(c, n, "alpha", n->alpha, 0, 1, false);
}

bool shape_node(Ctx *c, Graph *g, Node *n) {
  Shape in = n->nin ? g->nodes[n->in[0]].shape : n->shape;
  if (n->op != OP_INPUT && !op_info(n->op)->shape(c, g, n, in))
    return false;
  int64_t out_elems;
  if (n->shape.h > MAX_DIM || n->shape.w > MAX_DIM ||
      !mul_ok((int64_t)n->shape.c * n->shape.h, n->shape.w, &out_elems) || out_elems > MAX_TENSOR_ELEMS) {
    error_at(c, n->loc, "%s%s %s is too large (limits: %d per dimension, 2^31 values per image)", op_name(n->op),
             n->op == OP_INPUT ? "" : " output", shape_str(c->arena, g, n->shape), MAX_DIM);
    return false;
  }
  n->bytes = 4 * out_elems; // at most 16 inputs of at most 2^31 values: no overflow
  for (int i = 0; i < n->nin; i++) {
    Shape s = g->nodes[n->in[i]].shape;
    n->bytes += 4 * (int64_t)s.c * s.h * s.w;
  }
  return true;
}
