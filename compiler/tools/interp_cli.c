// interp_cli.c: caec-interp, run as `caec interp`: the reference interpreter behind the same
// `init` and `step` commands as the generated trainers, so that the same
// checks (the PyTorch cross-check first) run against both. Weights, batches
// and results are safetensors files, named and laid out as the front end says.
#include "caec.h"
#include "safetensors.h"
#include "trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct Options {
  const char *cae, *action;
  CaecStepArgs step; // the options the trainers share
  int size;
  bool f64;
} Options;

static const char usage_text[] =
    "usage: caec interp FILE.cae init [--seed S] [--f64] [--size S] --out W.safetensors\n"
    "       caec interp FILE.cae step --weights W.safetensors --batch X.safetensors --out S.safetensors\n"
    "                             [--loss mse|dssim] [--l2 V] [--seed S] [--no-dropout] [--update] [--size S]\n"
    "                             [--steps K] [--optimizer rmsprop|adam|sgd] [--lr X]\n\n"
    "Runs the model on the reference interpreter (naive kernels, double precision).\n"
    "init writes freshly initialised parameters (Keras's initialisers; float32, or\n"
    "float64 with --f64). step runs one training step on the batch 'x' ([N,C,H,W];\n"
    "the target is x) and writes the output 'y', the scalar 'loss' and 'grad.NAME'\n"
    "for every trainable parameter, in the weights' dtype; with --update also every\n"
    "parameter after the optimizer step of the model's train section. --loss,\n"
    "--l2, --optimizer and --lr override the train section; --no-dropout turns spatial\n"
    "dropout off.\n"
    "--steps K (with --update) runs K steps on the batch and writes the last one's\n"
    "results.\n"
    "--size S runs the same architecture on S x S inputs instead of the declared size.\n";

static int parse_options(int argc, char **argv, Options *o) {
  int positional = 0;
  o->step = (CaecStepArgs)CAEC_STEP_ARGS_INIT;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int taken = caec_step_arg("caec interp", argc, argv, &i, &o->step);
    if (taken == 2)
      return 2;
    if (taken)
      continue;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(usage_text, stdout);
      return 0;
    } else if (!strcmp(a, "--f64")) {
      o->f64 = true;
    } else if (!strcmp(a, "--size")) {
      char *end = NULL;
      long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
      if (!end || *end || v < 1 || v > MAX_DIM)
        return usage_error("interp", "--size must be an integer in [1, %d], not '%s'", MAX_DIM,
                           i + 1 < argc ? argv[i + 1] : "");
      o->size = (int)v;
      i++;
    } else if (a[0] == '-') {
      return usage_error("interp", "unknown option '%s'", a);
    } else if (positional == 0) {
      o->cae = a, positional++;
    } else if (positional == 1) {
      o->action = a, positional++;
    } else {
      return usage_error("interp", "unexpected argument '%s'", a);
    }
  }
  const CaecStepArgs *s = &o->step;
  if (!o->cae || !o->action)
    return usage_error("interp", "needs FILE.cae and an action, init or step");
  if (strcmp(o->action, "init") && strcmp(o->action, "step"))
    return usage_error("interp", "unknown action '%s' (init or step)", o->action);
  if (!s->out)
    return usage_error("interp", "needs --out");
  if (!strcmp(o->action, "step") && (!s->weights || !s->batch))
    return usage_error("interp", "step needs --weights and --batch");
  if (s->steps > 1 && !s->update)
    return usage_error("interp", "--steps needs --update");
  return -1;
}

// Tensors to write, converted from doubles to the chosen dtype.
typedef struct Tensors {
  StTensor *items;
  int count;
  bool f64;
} Tensors;

static void add_tensor(Tensors *ts, const char *name, int ndim, const int64_t *shape, const double *v) {
  StTensor t = {.name = name, .dtype = ts->f64 ? ST_F64 : ST_F32, .ndim = ndim};
  size_t count = 1;
  for (int d = 0; d < ndim; d++)
    count *= (size_t)(t.shape[d] = shape[d]);
  t.nbytes = count * (ts->f64 ? 8 : 4);
  t.data = xmalloc(t.nbytes);
  for (size_t i = 0; i < count; i++)
    if (ts->f64)
      ((double *)t.data)[i] = v[i];
    else
      ((float *)t.data)[i] = (float)v[i];
  ts->items[ts->count++] = t;
}

static void add_param(Tensors *ts, const Param *p, const char *name, const double *v) {
  int64_t shape[4];
  for (int d = 0; d < p->ndim; d++)
    shape[d] = p->dims[d];
  add_tensor(ts, name, p->ndim, shape, v);
}

// Writes the tensors (when ok) and frees them; false after a message.
static bool write_tensors(const char *path, Tensors *ts, bool ok) {
  char err[512];
  const char *meta[] = {"format", "pt", "producer", "caec " CAEC_VERSION " interp", NULL};
  if (ok && st_write(path, ts->items, ts->count, meta, err, sizeof err) != 0) {
    fail("interp", "%s", err);
    ok = false;
  }
  for (int i = 0; i < ts->count; i++)
    free(ts->items[i].data);
  free(ts->items);
  return ok;
}

// Copies a float tensor of the expected shape into v; false after a message.
static bool read_tensor(const char *path, const StTensor *t, const char *name, int ndim, const int64_t *shape,
                        double *v) {
  if (!t) {
    return fail("interp", "%s: no tensor '%s'", path, name), false;
  }
  bool same = t->ndim == ndim && (t->dtype == ST_F32 || t->dtype == ST_F64);
  for (int d = 0; same && d < ndim; d++)
    same = t->shape[d] == shape[d];
  if (!same) {
    fprintf(stderr, "caec interp: error: %s: tensor '%s' is not F32/F64 of the model's shape [", path, name);
    for (int d = 0; d < ndim; d++)
      fprintf(stderr, "%s%lld", d ? "," : "", (long long)shape[d]);
    fputs("]\n", stderr);
    return false;
  }
  size_t count = t->nbytes / (t->dtype == ST_F64 ? 8 : 4);
  for (size_t i = 0; i < count; i++)
    v[i] = t->dtype == ST_F64 ? ((const double *)t->data)[i] : ((const float *)t->data)[i];
  return true;
}

static int init(const Options *o, const Graph *g) {
  Interp *in = interp_new(g, 1);
  interp_init(in, o->step.seed);
  Tensors ts = {xmalloc(sizeof(StTensor) * (size_t)g->nparams), 0, o->f64};
  for (int p = 0; p < g->nparams; p++)
    add_param(&ts, &g->params[p], g->params[p].name, interp_param(in, p));
  bool ok = write_tensors(o->step.out, &ts, true);
  interp_free(in);
  return ok ? 0 : 1;
}

// Runs the step on a loaded interpreter and writes its results.
static bool step(Ctx *c, const Options *o, const Graph *g, Interp *in, const double *x, const int64_t *xshape,
                 bool f64) {
  TrainConfig t = g->train;
  const CaecStepArgs *a = &o->step;
  if (a->loss >= 0)
    t.loss = (CaecLoss)a->loss;
  if (a->optimizer >= 0)
    t.optimizer = (CaecOptim)a->optimizer;
  if (a->lr >= 0)
    t.lr = a->lr;
  if (a->l2 >= 0)
    t.l2 = a->l2;
  for (int i = 1; i < a->steps; i++) { // the steps before the one reported
    interp_forward(in, x, true, !a->no_dropout, a->seed);
    interp_loss(in, x, t.loss, t.l2);
    interp_backward(in, t.l2);
    interp_update(in, &t);
  }
  interp_forward(in, x, true, !a->no_dropout, a->seed);
  double loss = interp_loss(in, x, t.loss, t.l2);
  interp_backward(in, t.l2);
  if (!isfinite(loss)) {
    return fail("interp", "the loss is not finite (%g)", loss), false;
  }
  // Output, loss and gradients describe the step before the update.
  Tensors ts = {xmalloc(sizeof(StTensor) * (size_t)(2 + 2 * g->nparams)), 0, f64};
  add_tensor(&ts, "y", 4, xshape, interp_output(in));
  add_tensor(&ts, "loss", 0, NULL, &loss);
  for (int p = 0; p < g->nparams; p++)
    if (g->params[p].trainable)
      add_param(&ts, &g->params[p], arena_printf(c->arena, "grad.%s", g->params[p].name), interp_param_grad(in, p));
  if (a->update) {
    interp_update(in, &t);
    for (int p = 0; p < g->nparams; p++)
      add_param(&ts, &g->params[p], g->params[p].name, interp_param(in, p));
  }
  return write_tensors(a->out, &ts, true);
}

static int run_step(Ctx *c, const Options *o, const Graph *g) {
  StFile weights = {0}, batch = {0};
  char err[512];
  if (st_read(o->step.batch, &batch, err, sizeof err) || st_read(o->step.weights, &weights, err, sizeof err)) {
    st_free(&batch);
    return fail("interp", "%s", err);
  }
  Shape s = g->nodes[g->input].shape;
  const StTensor *xt = st_find(&batch, "x");
  int n = xt && xt->ndim == 4 && xt->shape[0] >= 1 && xt->shape[0] <= 4096 ? (int)xt->shape[0] : 0;
  int64_t xshape[4] = {n, s.c, s.h, s.w};
  if (!n) {
    fprintf(stderr, "caec interp: error: %s: needs a tensor 'x' of shape [N,%d,%d,%d] with 1 <= N <= 4096\n",
            o->step.batch, s.c, s.h, s.w);
    st_free(&batch), st_free(&weights);
    return 1;
  }
  Interp *in = interp_new(g, n);
  double *x = xmalloc(sizeof(double) * (size_t)n * s.c * s.h * s.w);
  bool ok = read_tensor(o->step.batch, xt, "x", 4, xshape, x), f64 = false;
  for (int p = 0; p < g->nparams && ok; p++) {
    const Param *pr = &g->params[p];
    int64_t shape[4];
    for (int d = 0; d < pr->ndim; d++)
      shape[d] = pr->dims[d];
    const StTensor *t = st_find(&weights, pr->name);
    ok = read_tensor(o->step.weights, t, pr->name, pr->ndim, shape, interp_param(in, p));
    f64 = f64 || t->dtype == ST_F64;
  }
  ok = ok && step(c, o, g, in, x, xshape, f64);
  free(x);
  interp_free(in);
  st_free(&batch);
  st_free(&weights);
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  Options o = {0};
  int rc = parse_options(argc, argv, &o);
  if (rc >= 0)
    return rc;
  Ctx ctx = {.arena = arena_new(), .err = stderr, .input_size = o.size};
  Graph *g = compile_file(&ctx, o.cae);
  rc = !g ? 1 : strcmp(o.action, "init") ? run_step(&ctx, &o, g) : init(&o, g);
  arena_free(ctx.arena);
  return rc;
}
