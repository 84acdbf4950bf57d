// interp.c: the reference interpreter. Runs any graph's training step (forward,
// loss, backward, optimizer update) with the naive double-precision kernels of
// runtime/kernels/ref.h. It is the oracle that generated trainers and the PyTorch
// cross-check are compared with, so it favours obviousness over speed: every
// tensor has its own buffer, and gradients are zeroed and accumulated.
#include "caec.h"
#include "ref.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct Interp {
  const Graph *g;
  int batch;
  double **act, **grad;      // per node: output and its gradient, [batch, c, h, w]
  double **mean, **invstd;   // per norm node: statistics saved for the backward
  uint8_t **keep;            // per dropout node: the channel mask of this step
  double *rate;              // per dropout node: the rate applied this step (0 when off)
  double **param, **pgrad;   // per parameter
  double **opt1, **opt2;     // per parameter: optimizer state (RMSprop ms; Adam m, v; SGD velocity)
  double *scratch;           // the largest activation: one input gradient before it is accumulated
  int64_t step;              // optimizer steps taken
  bool training, dropout;    // this forward's interp_forward arguments
  uint64_t seed;
};

static size_t elems(const Interp *in, int node) {
  Shape s = in->g->nodes[node].shape;
  return (size_t)in->batch * s.c * s.h * s.w;
}

Interp *interp_new(const Graph *g, int batch) {
  Interp *in = xcalloc(1, sizeof *in);
  in->g = g;
  in->batch = batch;
  in->act = xcalloc((size_t)g->nnodes, sizeof(double *));
  in->grad = xcalloc((size_t)g->nnodes, sizeof(double *));
  in->mean = xcalloc((size_t)g->nnodes, sizeof(double *));
  in->invstd = xcalloc((size_t)g->nnodes, sizeof(double *));
  in->keep = xcalloc((size_t)g->nnodes, sizeof(uint8_t *));
  in->rate = xcalloc((size_t)g->nnodes, sizeof(double));
  size_t largest = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = &g->nodes[i];
    size_t count = elems(in, i);
    largest = count > largest ? count : largest;
    in->act[i] = xcalloc(count, sizeof(double));
    in->grad[i] = xcalloc(count, sizeof(double));
    size_t stats = n->op == OP_BN ? (size_t)n->shape.c : n->op == OP_GN ? (size_t)batch * n->groups : 0;
    if (stats) {
      in->mean[i] = xcalloc(stats, sizeof(double));
      in->invstd[i] = xcalloc(stats, sizeof(double));
    }
    if (n->op == OP_SPATIAL_DROPOUT)
      in->keep[i] = xcalloc((size_t)batch * n->shape.c, 1);
  }
  in->scratch = xcalloc(largest, sizeof(double));
  in->param = xcalloc((size_t)g->nparams, sizeof(double *));
  in->pgrad = xcalloc((size_t)g->nparams, sizeof(double *));
  in->opt1 = xcalloc((size_t)g->nparams, sizeof(double *));
  in->opt2 = xcalloc((size_t)g->nparams, sizeof(double *));
  for (int p = 0; p < g->nparams; p++) {
    size_t count = (size_t)g->params[p].numel;
    in->param[p] = xcalloc(count, sizeof(double));
    in->pgrad[p] = xcalloc(count, sizeof(double));
    in->opt1[p] = xcalloc(count, sizeof(double));
    in->opt2[p] = xcalloc(count, sizeof(double));
  }
  return in;
}

void interp_free(Interp *in) {
  if (!in)
    return;
  for (int i = 0; i < in->g->nnodes; i++) {
    free(in->act[i]);
    free(in->grad[i]);
    free(in->mean[i]);
    free(in->invstd[i]);
    free(in->keep[i]);
  }
  for (int p = 0; p < in->g->nparams; p++) {
    free(in->param[p]);
    free(in->pgrad[p]);
    free(in->opt1[p]);
    free(in->opt2[p]);
  }
  void *arrays[] = {in->act, in->grad, in->mean, in->invstd, in->keep, in->rate, in->param, in->pgrad, in->opt1, in->opt2,
                    in->scratch};
  for (size_t i = 0; i < sizeof arrays / sizeof *arrays; i++)
    free(arrays[i]);
  free(in);
}

double *interp_param(Interp *in, int p) { return in->param[p]; }
double *interp_param_grad(Interp *in, int p) { return in->pgrad[p]; }
const double *interp_output(const Interp *in) { return in->act[in->g->output]; }

// Keras's defaults: Glorot-uniform kernels, zero biases, batch-norm gamma 1,
// beta 0, moving mean 0, moving variance 1. Each parameter draws from its own
// stream, so adding a layer does not change the others' initial values.
void interp_init(Interp *in, uint64_t seed) {
  const Graph *g = in->g;
  for (int p = 0; p < g->nparams; p++) {
    const Param *pr = &g->params[p];
    const Node *n = &g->nodes[pr->node];
    double fill = pr->role == P_RUNNING_VAR || (pr->role == P_WEIGHT && (n->op == OP_BN || n->op == OP_GN)) ? 1 : 0;
    bool kernel = pr->role == P_WEIGHT && (n->op == OP_CONV || n->op == OP_CONVT);
    // Fans as Keras computes them: channels times the receptive field.
    double fans = kernel ? (double)(pr->dims[0] + pr->dims[1]) * pr->dims[2] * pr->dims[3] : 1;
    double limit = sqrt(6.0 / fans);
    for (int64_t i = 0; i < pr->numel; i++)
      in->param[p][i] = kernel ? rng_glorot(seed, (uint32_t)p, (uint64_t)i, limit) : fill;
    memset(in->opt1[p], 0, sizeof(double) * (size_t)pr->numel);
    memset(in->opt2[p], 0, sizeof(double) * (size_t)pr->numel);
  }
  in->step = 0;
}

static RefConv conv_shape(const Interp *in, const Node *n) {
  Shape x = in->g->nodes[n->in[0]].shape;
  return (RefConv){in->batch, x.c, x.h, x.w, n->shape.c, n->shape.h, n->shape.w, n->k, n->stride, n->pad[0], n->pad[2]};
}

// The param of node n with the given role, or NULL.
static double *node_param(Interp *in, const Node *n, ParamRole role, bool grad) {
  for (int j = 0; j < n->nparams; j++)
    if (in->g->params[n->first_param + j].role == role)
      return (grad ? in->pgrad : in->param)[n->first_param + j];
  return NULL;
}

static int *channel_counts(const Interp *in, const Node *n, int *buf) {
  for (int j = 0; j < n->nin; j++)
    buf[j] = in->g->nodes[n->in[j]].shape.c;
  return buf;
}

// The reference kernels, one pair per family of ops.h. The forward computes
// node i's output from its inputs'; the backward its inputs' gradients from its
// own, and says whether it left input 0's in scratch for the caller to add.
static void interp_conv_fwd(Interp *in, int i) {
  const Node *n = &in->g->nodes[i];
  RefConv p = conv_shape(in, n);
  (n->op == OP_CONV ? ref_conv_fwd : ref_convt_fwd)(&p, in->act[n->in[0]], node_param(in, n, P_WEIGHT, false),
                                                     node_param(in, n, P_BIAS, false), in->act[i]);
}

static bool interp_conv_bwd(Interp *in, int i) {
  const Node *n = &in->g->nodes[i];
  RefConv p = conv_shape(in, n);
  (n->op == OP_CONV ? ref_conv_bwd : ref_convt_bwd)(&p, in->act[n->in[0]], node_param(in, n, P_WEIGHT, false),
                                                     in->grad[i], in->scratch, node_param(in, n, P_WEIGHT, true),
                                                     node_param(in, n, P_BIAS, true));
  return true;
}

static void interp_norm_fwd(Interp *in, int i) {
  const Node *n = &in->g->nodes[i];
  const double *a = in->act[n->in[0]];
  int hw = n->shape.h * n->shape.w;
  if (n->op == OP_GN)
    ref_gn_fwd(in->batch, n->shape.c, hw, n->groups, n->eps, a, node_param(in, n, P_WEIGHT, false),
               node_param(in, n, P_BIAS, false), in->act[i], in->mean[i], in->invstd[i]);
  else if (in->training)
    ref_bn_fwd_train(in->batch, n->shape.c, hw, n->eps, n->momentum, a, node_param(in, n, P_WEIGHT, false),
                     node_param(in, n, P_BIAS, false), node_param(in, n, P_RUNNING_MEAN, false),
                     node_param(in, n, P_RUNNING_VAR, false), in->act[i], in->mean[i], in->invstd[i]);
  else
    ref_bn_fwd_eval(in->batch, n->shape.c, hw, n->eps, a, node_param(in, n, P_WEIGHT, false),
                    node_param(in, n, P_BIAS, false), node_param(in, n, P_RUNNING_MEAN, false),
                    node_param(in, n, P_RUNNING_VAR, false), in->act[i]);
}

static bool interp_norm_bwd(Interp *in, int i) {
  const Node *n = &in->g->nodes[i];
  const double *a = in->act[n->in[0]];
  int hw = n->shape.h * n->shape.w;
  if (n->op == OP_BN)
    ref_bn_bwd(in->batch, n->shape.c, hw, a, node_param(in, n, P_WEIGHT, false), in->mean[i], in->invstd[i],
               in->grad[i], in->scratch, node_param(in, n, P_WEIGHT, true), node_param(in, n, P_BIAS, true));
  else
    ref_gn_bwd(in->batch, n->shape.c, hw, n->groups, a, node_param(in, n, P_WEIGHT, false), in->mean[i], in->invstd[i],
               in->grad[i], in->scratch, node_param(in, n, P_WEIGHT, true), node_param(in, n, P_BIAS, true));
  return true;
}

// An activation's kernels are named after its row; its adjoint reads the tensor the row saves.
static void interp_act_fwd(Interp *in, int i) {
  const Node *n = &in->g->nodes[i];
  const double *a = in->act[n->in[0]];
  double *y = in->act[i];
  size_t count = elems(in, i);
  switch (n->op) {
#define ACT_FWD(id, name, flops, saved, alpha, fuse) \
  case OP_##id: ref_##name##_fwd(count, alpha##_ARG(n) a, y); break;
    CAEC_OPS(CAEC_OP_SKIP, ACT_FWD)
  default: break;
  }
}

static bool interp_act_bwd(Interp *in, int i) {
  const Node *n = &in->g->nodes[i];
  const double *saved_act = op_info(n->op)->grad_from_x ? in->act[n->in[0]] : in->act[i], *dy = in->grad[i];
  size_t count = elems(in, i);
  switch (n->op) {
#define ACT_BWD(id, name, flops, saved, alpha, fuse) \
  case OP_##id: ref_##name##_bwd(count, alpha##_ARG(n) saved_act, dy, in->scratch); break;
    CAEC_OPS(CAEC_OP_SKIP, ACT_BWD)
  default: break;
  }
  return true;
}

static void interp_add_fwd(Interp *in, int i) {
  const Node *n = &in->g->nodes[i];
  ref_add_fwd(elems(in, i), in->act[n->in[0]], in->act[n->in[1]], in->act[i]);
}

// Adds the scratch gradient into node `to`'s gradient.
static void accumulate(Interp *in, int to) {
  size_t count = elems(in, to);
  for (size_t j = 0; j < count; j++)
    in->grad[to][j] += in->scratch[j];
}

// dy, unchanged, to every input.
static bool interp_add_bwd(Interp *in, int i) {
  const Node *n = &in->g->nodes[i];
  for (int j = 0; j < n->nin; j++) {
    memcpy(in->scratch, in->grad[i], elems(in, i) * sizeof(double));
    accumulate(in, n->in[j]);
  }
  return false;
}

static void interp_concat_fwd(Interp *in, int i) {
  const Node *n = &in->g->nodes[i];
  int cs[16];
  const double *xs[16];
  for (int j = 0; j < n->nin; j++)
    xs[j] = in->act[n->in[j]];
  ref_concat_fwd(in->batch, n->shape.h * n->shape.w, n->nin, channel_counts(in, n, cs), xs, in->act[i]);
}

static bool interp_concat_bwd(Interp *in, int i) {
  const Node *n = &in->g->nodes[i];
  int cs[16];
  double *dxs[16];
  channel_counts(in, n, cs);
  double *next = in->scratch;
  for (int j = 0; j < n->nin; j++) // the pieces one after another in scratch: together they are dy's size
    dxs[j] = next, next += elems(in, n->in[j]);
  ref_concat_bwd(in->batch, n->shape.h * n->shape.w, n->nin, cs, in->grad[i], dxs);
  for (int j = 0; j < n->nin; j++) {
    size_t piece = elems(in, n->in[j]);
    for (size_t k = 0; k < piece; k++)
      in->grad[n->in[j]][k] += dxs[j][k];
  }
  return false;
}

static void interp_dropout_fwd(Interp *in, int i) {
  const Node *n = &in->g->nodes[i];
  // Each (step, image, channel) draws once; without dropout every channel is kept, unscaled.
  bool drop = in->training && in->dropout;
  in->rate[i] = drop ? n->rate : 0;
  rng_dropout_mask(in->seed, (uint32_t)i, in->step, (size_t)in->batch * n->shape.c, in->rate[i], in->keep[i]);
  ref_spatial_dropout(in->batch, n->shape.c, n->shape.h * n->shape.w, in->rate[i], in->keep[i], in->act[n->in[0]],
                      in->act[i]);
}

static bool interp_dropout_bwd(Interp *in, int i) {
  const Node *n = &in->g->nodes[i];
  ref_spatial_dropout(in->batch, n->shape.c, n->shape.h * n->shape.w, in->rate[i], in->keep[i], in->grad[i],
                      in->scratch);
  return true;
}

static void interp_identity_fwd(Interp *in, int i) {
  memcpy(in->act[i], in->act[in->g->nodes[i].in[0]], elems(in, i) * sizeof(double));
}

#define interp_identity_bwd interp_add_bwd // dy to its input, as add does to each
#define INTERP_OP(id, name, lo, hi, shape, family, fuse) [OP_##id] = {interp_##family##_fwd, interp_##family##_bwd},
#define INTERP_ACT(id, ...) [OP_##id] = {interp_act_fwd, interp_act_bwd},
static const struct {
  void (*fwd)(Interp *in, int i);
  bool (*bwd)(Interp *in, int i);
} interp_rules[OP_COUNT] = {CAEC_OPS(INTERP_OP, INTERP_ACT)};

const double *interp_forward(Interp *in, const double *x, bool training, bool dropout, uint64_t seed) {
  const Graph *g = in->g;
  in->training = training, in->dropout = dropout, in->seed = seed;
  for (int i = 0; i < g->nnodes; i++) {
    OpKind op = g->nodes[i].op;
    if (op == OP_INPUT)
      memcpy(in->act[i], x, elems(in, i) * sizeof(double));
    else
      interp_rules[op].fwd(in, i);
  }
  return in->act[g->output];
}

double interp_loss(Interp *in, const double *target, CaecLoss loss, double l2) {
  const Graph *g = in->g;
  Shape s = g->nodes[g->output].shape;
  double *y = in->act[g->output], *dy = in->grad[g->output];
  double value = loss == CAEC_MSE ? ref_mse(elems(in, g->output), y, target, dy)
                                  : ref_dssim(in->batch, s.h, s.w, y, target, dy);
  for (int p = 0; p < g->nparams; p++)
    if (g->params[p].l2)
      for (int64_t j = 0; j < g->params[p].numel; j++)
        value += l2 * in->param[p][j] * in->param[p][j];
  return value;
}

// Back-propagates from the output gradient that interp_loss left; the
// parameter gradients are assigned (each parameter has one use) plus L2.
void interp_backward(Interp *in, double l2) {
  const Graph *g = in->g;
  for (int i = 0; i < g->output; i++)
    memset(in->grad[i], 0, elems(in, i) * sizeof(double));
  for (int i = g->output; i > 0; i--) {
    OpKind op = g->nodes[i].op;
    if (op != OP_INPUT && interp_rules[op].bwd(in, i))
      accumulate(in, g->nodes[i].in[0]);
  }
  for (int p = 0; p < g->nparams; p++)
    if (g->params[p].l2)
      for (int64_t j = 0; j < g->params[p].numel; j++)
        in->pgrad[p][j] += 2 * l2 * in->param[p][j];
}

// One optimizer step on the trainable parameters.
void interp_update(Interp *in, const TrainConfig *t) {
  in->step++;
  for (int p = 0; p < in->g->nparams; p++) {
    const Param *pr = &in->g->params[p];
    if (!pr->trainable)
      continue;
    size_t count = (size_t)pr->numel;
    switch (t->optimizer) {
    case CAEC_RMSPROP: ref_rmsprop(count, t->lr, t->rho, t->eps, in->param[p], in->pgrad[p], in->opt1[p]); break;
    case CAEC_ADAM:
      ref_adam(count, t->lr, t->beta1, t->beta2, t->eps, in->step, in->param[p], in->pgrad[p], in->opt1[p],
               in->opt2[p]);
      break;
    case CAEC_SGD: ref_sgd(count, t->lr, t->momentum, in->param[p], in->pgrad[p], in->opt1[p]); break;
    }
  }
}
