// ref_grad_test.c: every reference backward against central finite
// differences of its forward, for every input that has a gradient. For an op
// the objective is L = sum(r * out) with a random weighting r, whose gradient
// the backward gives when fed dy = r; a loss is a scalar already, and L is the
// loss itself. Shapes are small and awkward: odd and even sizes, 1, 3 and 5
// channels, k 1 and 3, stride 1 and 2, TensorFlow's and explicit paddings.
#include "check.h"
#include "ref.h"

#include <string.h>

typedef struct Grad {
  const char *name;
  double *x; // the input, perturbed in place
  size_t count;
  const double *analytic;
} Grad;

// The objective at the current values of the inputs.
typedef double (*Objective)(void *ctx);

// Step h = 1e-5 max(1, |x|): with inputs of order 1, the truncation error O(h^2) and the rounding error
// O(eps |L| / h) are both near 1e-10, far below the tolerance 1e-6 + 1e-5 |fd| per element.
static void check_grad(const char *op, Objective f, void *ctx, const Grad *in, int nin) {
  for (int k = 0; k < nin; k++) {
    double max_err = 0;
    bool ok = true;
    for (size_t i = 0; i < in[k].count; i++) {
      double x0 = in[k].x[i], h = 1e-5 * fmax(1, fabs(x0));
      in[k].x[i] = x0 + h;
      double plus = f(ctx);
      in[k].x[i] = x0 - h;
      double minus = f(ctx);
      in[k].x[i] = x0;
      double fd = (plus - minus) / (2 * h), err = fabs(in[k].analytic[i] - fd);
      if (!(err <= 1e-6 + 1e-5 * fabs(fd)))
        ok = false;
      max_err = fmax(max_err, err);
    }
    report(ok, max_err, "%s: d%s", op, in[k].name);
  }
}

// ---- conv and convT --------------------------------------------------------------

typedef struct ConvCase {
  RefConv p;
  bool transposed;
  double *x, *w, *b, *r, *y;
} ConvCase;

static double conv_objective(void *ctx) {
  ConvCase *c = ctx;
  (c->transposed ? ref_convt_fwd : ref_conv_fwd)(&c->p, c->x, c->w, c->b, c->y);
  return dot(conv_out_count(&c->p), c->r, c->y);
}

static void test_conv(bool transposed, RefConv p) {
  char name[160];
  snprintf(name, sizeof name, "%s n%d %d->%d %dx%d->%dx%d k%d s%d pad %d,%d", transposed ? "convT" : "conv", p.n, p.cin,
           p.cout, p.h, p.w, p.oh, p.ow, p.k, p.stride, p.pad_top, p.pad_left);
  size_t nx = conv_in_count(&p), nw = conv_weight_count(&p), ny = conv_out_count(&p);
  ConvCase c = {.p = p, .transposed = transposed, .y = test_alloc(ny)};
  c.x = random_array(nx, -1, 1);
  c.w = random_array(nw, -1, 1);
  c.b = random_array((size_t)p.cout, -1, 1);
  c.r = random_array(ny, -1, 1);
  double *dx = test_alloc(nx), *dw = test_alloc(nw), *db = test_alloc((size_t)p.cout), *dw_alone = test_alloc(nw);
  void (*bwd)(const RefConv *, const double *, const double *, const double *, double *, double *, double *) =
      transposed ? ref_convt_bwd : ref_conv_bwd;
  bwd(&p, c.x, c.w, c.r, dx, dw, db);
  Grad in[] = {{"x", c.x, nx, dx}, {"w", c.w, nw, dw}, {"b", c.b, (size_t)p.cout, db}};
  check_grad(name, conv_objective, &c, in, 3);
  // dx and db may be skipped (NULL); dw must not change.
  bwd(&p, c.x, c.w, c.r, NULL, dw_alone, NULL);
  char what[200];
  snprintf(what, sizeof what, "%s: dw without dx and db", name);
  check_values(what, nw, dw_alone, dw, 0);
  free(c.x), free(c.w), free(c.b), free(c.r), free(c.y), free(dx), free(dw), free(db), free(dw_alone);
}

static void test_convs(void) {
  // {n, cin, h, w, cout, oh, ow, k, stride, pad_top, pad_left}
  static const RefConv convs[] = {
      {2, 3, 7, 7, 5, 7, 7, 3, 1, 1, 1}, // same, stride 1
      {2, 1, 8, 6, 3, 4, 3, 3, 2, 0, 0}, // TensorFlow same, stride 2: 0 before, 1 after
      {2, 5, 8, 6, 1, 4, 3, 1, 2, 0, 0}, // 1x1 shortcut, stride 2
      {2, 3, 7, 7, 3, 5, 5, 3, 1, 0, 0}, // valid
      {2, 3, 7, 7, 5, 4, 4, 3, 2, 1, 1}, // explicit symmetric padding 1, stride 2 on an odd size
      {2, 5, 7, 6, 3, 7, 6, 1, 1, 0, 0}, // 1x1
      {2, 3, 8, 6, 1, 4, 3, 3, 2, 1, 1}, // PyTorch's padding=1, stride 2 on an even size: the last row unused
  };
  // convT's pad_* crop the full output (h-1)*stride + k.
  static const RefConv convts[] = {
      {2, 5, 4, 3, 3, 8, 6, 3, 2, 0, 0}, // TensorFlow same, stride 2: full 9x7 cropped by 1 at the end
      {2, 3, 7, 7, 1, 7, 7, 3, 1, 1, 1}, // same, stride 1
      {2, 1, 4, 3, 5, 8, 6, 1, 2, 0, 0}, // k 1 stride 2: full 7x5, the last row and column get only the bias
      {2, 3, 4, 4, 3, 7, 7, 3, 2, 1, 1}, // explicit crop 1 on each side (PyTorch padding=1)
      {2, 3, 5, 5, 5, 7, 7, 3, 1, 0, 0}, // valid: the full output
  };
  for (size_t i = 0; i < sizeof convs / sizeof *convs; i++)
    test_conv(false, convs[i]);
  for (size_t i = 0; i < sizeof convts / sizeof *convts; i++)
    test_conv(true, convts[i]);
}

// ---- batch norm and group norm --------------------------------------------------------

typedef struct NormCase {
  int n, c, hw, groups; // groups 0: batch norm
  double *x, *gamma, *beta, *r, *y, *mean, *invstd, *running_mean, *running_var;
} NormCase;

static double norm_objective(void *ctx) {
  NormCase *c = ctx;
  if (c->groups)
    ref_gn_fwd(c->n, c->c, c->hw, c->groups, 1e-5, c->x, c->gamma, c->beta, c->y, c->mean, c->invstd);
  else
    ref_bn_fwd_train(c->n, c->c, c->hw, 1e-3, 0.99, c->x, c->gamma, c->beta, c->running_mean, c->running_var, c->y,
                     c->mean, c->invstd);
  return dot((size_t)c->n * (size_t)c->c * (size_t)c->hw, c->r, c->y);
}

static void test_norm(int n, int c, int h, int w, int groups) {
  char name[96];
  if (groups)
    snprintf(name, sizeof name, "gn n%d c%d %dx%d groups %d", n, c, h, w, groups);
  else
    snprintf(name, sizeof name, "bn train n%d c%d %dx%d", n, c, h, w);
  int hw = h * w, nstat = groups ? n * groups : c;
  size_t count = (size_t)n * (size_t)c * (size_t)hw;
  NormCase nc = {.n = n, .c = c, .hw = hw, .groups = groups};
  nc.x = random_array(count, -2, 3);
  nc.gamma = random_array((size_t)c, -1.5, 1.5);
  nc.beta = random_array((size_t)c, -1, 1);
  nc.r = random_array(count, -1, 1);
  nc.y = test_alloc(count);
  nc.mean = test_alloc((size_t)nstat);
  nc.invstd = test_alloc((size_t)nstat);
  nc.running_mean = test_alloc((size_t)c);
  nc.running_var = test_alloc((size_t)c);
  double *dx = test_alloc(count), *dgamma = test_alloc((size_t)c), *dbeta = test_alloc((size_t)c);
  norm_objective(&nc); // fills mean and invstd for the backward
  if (groups)
    ref_gn_bwd(n, c, hw, groups, nc.x, nc.gamma, nc.mean, nc.invstd, nc.r, dx, dgamma, dbeta);
  else
    ref_bn_bwd(n, c, hw, nc.x, nc.gamma, nc.mean, nc.invstd, nc.r, dx, dgamma, dbeta);
  Grad in[] = {{"x", nc.x, count, dx}, {"gamma", nc.gamma, (size_t)c, dgamma}, {"beta", nc.beta, (size_t)c, dbeta}};
  check_grad(name, norm_objective, &nc, in, 3);
  free(nc.x), free(nc.gamma), free(nc.beta), free(nc.r), free(nc.y), free(nc.mean), free(nc.invstd);
  free(nc.running_mean), free(nc.running_var), free(dx), free(dgamma), free(dbeta);
}

static void test_norms(void) {
  test_norm(2, 1, 7, 7, 0);
  test_norm(2, 3, 8, 6, 0);
  test_norm(2, 5, 7, 7, 0);
  test_norm(2, 6, 7, 7, 1);
  test_norm(2, 6, 8, 6, 2);
  test_norm(2, 6, 7, 7, 6);
  test_norm(2, 5, 8, 6, 5);
  test_norm(2, 3, 7, 7, 1);
  test_norm(2, 1, 8, 6, 1);
}

// ---- activations, concat, spatial dropout ---------------------------------------------

#define LEAKY_ALPHA 0.2

typedef struct Unary {
  size_t count;
  double *x, *r, *y;
} Unary;

static double relu_objective(void *ctx) {
  Unary *u = ctx;
  ref_relu_fwd(u->count, u->x, u->y);
  return dot(u->count, u->r, u->y);
}

static double leaky_relu_objective(void *ctx) {
  Unary *u = ctx;
  ref_leaky_relu_fwd(u->count, LEAKY_ALPHA, u->x, u->y);
  return dot(u->count, u->r, u->y);
}

static double sigmoid_objective(void *ctx) {
  Unary *u = ctx;
  ref_sigmoid_fwd(u->count, u->x, u->y);
  return dot(u->count, u->r, u->y);
}

static double tanh_objective(void *ctx) {
  Unary *u = ctx;
  ref_tanh_fwd(u->count, u->x, u->y);
  return dot(u->count, u->r, u->y);
}

static void test_activations(void) {
  size_t count = 2 * 3 * 7 * 7;
  Unary u = {count, test_alloc(count), random_array(count, -1, 1), test_alloc(count)};
  double *dx = test_alloc(count);
  for (size_t i = 0; i < count; i++)
    u.x[i] = away_from_zero(0.05, 4); // the step never crosses the kink at 0
  Grad in = {"x", u.x, count, dx};

  ref_relu_fwd(count, u.x, u.y);
  ref_relu_bwd(count, u.y, u.r, dx);
  check_grad("relu", relu_objective, &u, &in, 1);
  ref_leaky_relu_bwd(count, LEAKY_ALPHA, u.x, u.r, dx);
  check_grad("leaky_relu alpha 0.2", leaky_relu_objective, &u, &in, 1);
  ref_sigmoid_fwd(count, u.x, u.y);
  ref_sigmoid_bwd(count, u.y, u.r, dx);
  check_grad("sigmoid", sigmoid_objective, &u, &in, 1);
  ref_tanh_fwd(count, u.x, u.y);
  ref_tanh_bwd(count, u.y, u.r, dx);
  check_grad("tanh", tanh_objective, &u, &in, 1);
  free(u.x), free(u.r), free(u.y), free(dx);
}

enum { NCAT = 3 };

typedef struct ConcatCase {
  int n, hw, cs[NCAT];
  double *xs[NCAT], *r, *y;
} ConcatCase;

static double concat_objective(void *ctx) {
  ConcatCase *c = ctx;
  ref_concat_fwd(c->n, c->hw, NCAT, c->cs, (const double *const *)c->xs, c->y);
  return dot((size_t)c->n * (size_t)(c->cs[0] + c->cs[1] + c->cs[2]) * (size_t)c->hw, c->r, c->y);
}

static void test_concat(void) {
  ConcatCase c = {2, 8 * 6, {1, 3, 5}, {NULL}, NULL, NULL};
  size_t total = (size_t)c.n * 9 * (size_t)c.hw;
  double *dxs[NCAT];
  Grad in[NCAT];
  static const char *names[NCAT] = {"x0", "x1", "x2"};
  for (int k = 0; k < NCAT; k++) {
    size_t count = (size_t)c.n * (size_t)c.cs[k] * (size_t)c.hw;
    c.xs[k] = random_array(count, -1, 1);
    dxs[k] = test_alloc(count);
    in[k] = (Grad){names[k], c.xs[k], count, dxs[k]};
  }
  c.r = random_array(total, -1, 1);
  c.y = test_alloc(total);
  ref_concat_bwd(c.n, c.hw, NCAT, c.cs, c.r, dxs);
  check_grad("concat n2 c1+3+5 8x6", concat_objective, &c, in, NCAT);
  for (int k = 0; k < NCAT; k++)
    free(c.xs[k]), free(dxs[k]);
  free(c.r), free(c.y);
}

typedef struct DropoutCase {
  int n, c, hw;
  double rate;
  uint8_t *keep;
  double *x, *r, *y;
} DropoutCase;

static double dropout_objective(void *ctx) {
  DropoutCase *d = ctx;
  ref_spatial_dropout(d->n, d->c, d->hw, d->rate, d->keep, d->x, d->y);
  return dot((size_t)d->n * (size_t)d->c * (size_t)d->hw, d->r, d->y);
}

static void test_dropout(void) {
  int n = 2, c = 5, hw = 7 * 7;
  size_t count = (size_t)n * (size_t)c * (size_t)hw;
  uint8_t keep[2 * 5];
  for (int i = 0; i < n * c; i++)
    keep[i] = (uint8_t)(i % 3 != 1); // both kinds in each image
  DropoutCase d = {n, c, hw, 0.3, keep, random_array(count, -1, 1), random_array(count, -1, 1), test_alloc(count)};
  double *dx = test_alloc(count);
  ref_spatial_dropout(n, c, hw, d.rate, keep, d.r, dx); // the backward: the same map on dy
  check_grad("spatial_dropout rate 0.3", dropout_objective, &d, &(Grad){"x", d.x, count, dx}, 1);
  free(d.x), free(d.r), free(d.y), free(dx);
}

// ---- losses ----------------------------------------------------------------------------

// dy is the gradient's destination for the analytic call and NULL for the differences, so that both paths run.
typedef struct LossCase {
  int n, h, w;
  double *y, *t, *dy;
} LossCase;

static double mse_objective(void *ctx) {
  LossCase *l = ctx;
  return ref_mse((size_t)l->n * (size_t)l->h * (size_t)l->w, l->y, l->t, l->dy);
}

static double ssim_objective(void *ctx) {
  LossCase *l = ctx;
  return ref_ssim(l->h, l->w, l->y, l->t, l->dy);
}

static double dssim_objective(void *ctx) {
  LossCase *l = ctx;
  return ref_dssim(l->n, l->h, l->w, l->y, l->t, l->dy);
}

static void test_loss(const char *name, Objective f, int n, int h, int w) {
  size_t count = (size_t)n * (size_t)h * (size_t)w;
  // A prediction near its target, as in training, so that SSIM is far from 0 and from 1.
  LossCase l = {n, h, w, test_alloc(count), random_array(count, 0, 1), test_alloc(count)};
  for (size_t i = 0; i < count; i++)
    l.y[i] = fmin(1, fmax(0, l.t[i] + uniform(-0.2, 0.2)));
  double *dy = l.dy;
  f(&l);
  l.dy = NULL;
  char what[96];
  snprintf(what, sizeof what, "%s n%d %dx%d", name, n, h, w);
  check_grad(what, f, &l, &(Grad){"y", l.y, count, dy}, 1);
  free(l.y), free(l.t), free(dy);
}

static void test_losses(void) {
  test_loss("mse", mse_objective, 2, 8, 6);
  test_loss("ssim", ssim_objective, 1, 11, 11); // the valid map is one position
  test_loss("ssim", ssim_objective, 1, 14, 13);
  test_loss("ssim", ssim_objective, 1, 16, 12);
  test_loss("dssim", dssim_objective, 2, 13, 12);
}

int main(void) {
  test_convs();
  test_norms();
  test_activations();
  test_concat();
  test_dropout();
  test_losses();
  return summary();
}
