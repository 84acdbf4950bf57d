// data.c: a problem's canonical tensors and its naive reference (data.h).
#include "data.h"

#include "harness.h"
#include "ref.h"

#include <math.h>
#include <stdlib.h>

static size_t count(int n, Shape s) { return (size_t)n * (size_t)s.c * (size_t)s.h * (size_t)s.w; }
static bool is_wgrad(const Problem *p) { return problem_kernel(p) == KERNEL_WGRAD; }

static float *random_floats(size_t n, uint64_t seed, float lo, float hi) {
  float *x = bench_alloc(n * sizeof *x);
  bench_fill(x, n, seed, lo, hi);
  return x;
}

// y = x through side s's prologues, as the kernels compute them: one fp32 FMA, then relu.
static float *prologue(int n, Shape sh, const Side *s, const float *scale, const float *shift, const float *x) {
  float *y = bench_alloc(count(n, sh) * sizeof *y);
  const size_t hw = (size_t)sh.h * (size_t)sh.w;
  for (int i = 0; i < n; i++)
    for (int ch = 0; ch < sh.c; ch++) {
      const int piece = s->cat && ch >= s->cat;
      const size_t at = ((size_t)i * (size_t)sh.c + (size_t)ch) * hw;
      for (size_t q = 0; q < hw; q++) {
        float v = s->bn[piece] ? fmaf(x[at + q], scale[ch], shift[ch]) : x[at + q];
        y[at + q] = s->relu[piece] && !(v > 0) ? 0.0f : v;
      }
    }
  return y;
}

Data data_new(const Problem *p, uint64_t seed) {
  const KConv *g = &p->g;
  const Shape in = problem_input(p), out = problem_output(p);
  Data d = {.p = *p};
  d.in = random_floats(count(g->n, in), seed, -1, 1);
  d.in_scale = random_floats((size_t)in.c, seed + 1, 0.5f, 1.5f);
  d.in_shift = random_floats((size_t)in.c, seed + 2, -0.5f, 0.5f);
  d.in_eff = prologue(g->n, in, &p->in, d.in_scale, d.in_shift, d.in);
  const float limit = 1.0f / sqrtf((float)(g->ic * g->k * g->k)); // outputs of the inputs' size
  d.w = random_floats((size_t)g->gc * (size_t)g->ic * (size_t)(g->k * g->k), seed + 3, -limit, limit);
  if (is_wgrad(p)) {
    d.dy = random_floats(count(g->n, out), seed + 4, -1, 1);
    d.dy_scale = random_floats((size_t)out.c, seed + 5, 0.5f, 1.5f);
    d.dy_shift = random_floats((size_t)out.c, seed + 6, -0.5f, 0.5f);
    d.dy_eff = prologue(g->n, out, &p->dy, d.dy_scale, d.dy_shift, d.dy);
    return d;
  }
  if (p->bias)
    d.bias = random_floats((size_t)problem_bias_channels(p), seed + 7, -0.5f, 0.5f);
  if (p->res)
    d.res = random_floats(count(g->n, out), seed + 8, -1, 1);
  if (p->acc[0] || p->acc[1])
    d.old = random_floats(count(g->n, out), seed + 9, -1, 1);
  return d;
}

void data_free(Data *d) {
  float *all[] = {d->in,     d->dy,     d->in_scale, d->in_shift, d->dy_scale, d->dy_shift,
                  d->in_eff, d->dy_eff, d->w,        d->bias,     d->res,      d->old};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    free(all[i]);
  *d = (Data){0};
}

Result result_new(const Problem *p) {
  Result r = {0};
  const KConv *g = &p->g;
  if (is_wgrad(p)) {
    r.dw = bench_alloc(sizeof(float) * (size_t)g->gc * (size_t)g->ic * (size_t)(g->k * g->k));
    r.db = bench_alloc(sizeof(float) * (size_t)problem_bias_channels(p));
    return r;
  }
  const Shape out = problem_output(p);
  r.out = bench_alloc(sizeof(float) * count(g->n, out));
  if (p->stats)
    r.sum = bench_alloc(sizeof(double) * (size_t)out.c), r.sumsq = bench_alloc(sizeof(double) * (size_t)out.c);
  return r;
}

void result_free(Result *r) {
  free(r->out), free(r->sum), free(r->sumsq), free(r->dw), free(r->db);
  *r = (Result){0};
}

// ---- the reference -------------------------------------------------------------------------------

static double *to_double(const float *x, size_t n) {
  double *y = bench_alloc(n * sizeof *y);
  for (size_t i = 0; i < n; i++)
    y[i] = x[i];
  return y;
}

Ref ref_new(const Data *d) {
  const Problem *p = &d->p;
  const KConv *g = &p->g;
  const Shape in = problem_input(p), out = problem_output(p);
  const size_t nw = (size_t)g->gc * (size_t)g->ic * (size_t)(g->k * g->k);
  // conv's geometry maps the image to the grid, convT's the grid to the image.
  const RefConv conv = {g->n, g->ic, g->ih, g->iw, g->gc, g->gh, g->gw, g->k, g->stride, g->pad_top, g->pad_left};
  const RefConv convt = {g->n, g->gc, g->gh, g->gw, g->ic, g->ih, g->iw, g->k, g->stride, g->pad_top, g->pad_left};
  double *x = to_double(d->in_eff, count(g->n, in)), *w = to_double(d->w, nw);
  Ref r = {0};
  if (is_wgrad(p)) {
    // dw pairs the grid with the image: conv's dy with x, convT's x with dy.
    double *dy = to_double(d->dy_eff, count(g->n, out));
    r.dw = bench_alloc(nw * sizeof *r.dw);
    double t0 = caec_now();
    ref_conv_bwd(&conv, p->op == OP_CONV ? x : dy, w, p->op == OP_CONV ? dy : x, NULL, r.dw, NULL);
    r.seconds = caec_now() - t0;
    // The bias gradient sums the gradient of the op's output, dy.
    r.db = bench_alloc(sizeof *r.db * (size_t)out.c);
    const size_t hw = (size_t)out.h * (size_t)out.w;
    for (int i = 0; i < g->n; i++)
      for (int ch = 0; ch < out.c; ch++)
        for (size_t q = 0; q < hw; q++)
          r.db[ch] += dy[((size_t)i * (size_t)out.c + (size_t)ch) * hw + q];
    free(dy);
  } else {
    double *b = p->bias ? to_double(d->bias, (size_t)out.c) : NULL;
    r.z = bench_alloc(count(g->n, out) * sizeof *r.z);
    double t0 = caec_now();
    if (problem_kernel(p) == KERNEL_GATHER)
      ref_conv_fwd(&conv, x, w, b, r.z);
    else
      ref_convt_fwd(&convt, x, w, b, r.z);
    r.seconds = caec_now() - t0;
    free(b);
  }
  free(x), free(w);
  return r;
}

void ref_free(Ref *r) {
  free(r->z), free(r->dw), free(r->db);
  *r = (Ref){0};
}

// max |got - want| / max |want| over n values; got is fp32 (gotf) or double (gotd).
static double rel_error(const float *gotf, const double *gotd, const double *want, size_t n) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < n; i++) {
    err = fmax(err, fabs((gotf ? (double)gotf[i] : gotd[i]) - want[i]));
    scale = fmax(scale, fabs(want[i]));
  }
  return err / (scale > 0 ? scale : 1);
}

static void worse(double e, const char *name, double *err, const char **worst) {
  if (e > *err || !*worst)
    *err = e, *worst = name;
}

double ref_error(const Ref *ref, const Data *d, const Problem *q, const Result *r, const char **worst) {
  const KConv *g = &q->g;
  double err = 0;
  *worst = NULL;
  if (is_wgrad(q)) {
    const size_t nw = (size_t)g->gc * (size_t)g->ic * (size_t)(g->k * g->k);
    worse(rel_error(r->dw, NULL, ref->dw, nw), "dw", &err, worst);
    if (q->bias)
      worse(rel_error(r->db, NULL, ref->db, (size_t)problem_bias_channels(q)), "db", &err, worst);
    return err;
  }
  // The epilogue (kern.h): v = z + res, relu, then stored or added; the sums are of what is stored.
  const Shape out = problem_output(q);
  const size_t hw = (size_t)out.h * (size_t)out.w, n = count(g->n, out);
  double *want = bench_alloc(n * sizeof *want), *sum = bench_alloc(sizeof *sum * (size_t)out.c),
         *sumsq = bench_alloc(sizeof *sumsq * (size_t)out.c);
  for (size_t i = 0; i < n; i++) {
    const int ch = (int)(i / hw % (size_t)out.c), piece = q->out_cat && ch >= q->out_cat;
    // z has the bias; a variant without it (LIBXSMM's) is compared to z less the bias.
    double v = ref->z[i] + (q->res ? d->res[i] : 0) - (d->bias && !q->bias ? (double)d->bias[ch] : 0);
    v = q->relu && !(v > 0) ? 0 : v;
    v += q->acc[piece] ? d->old[i] : 0;
    want[i] = v, sum[ch] += v, sumsq[ch] += v * v;
  }
  worse(rel_error(r->out, NULL, want, n), "output", &err, worst);
  if (q->stats) {
    worse(rel_error(NULL, r->sum, sum, (size_t)out.c), "batch-norm sums", &err, worst);
    worse(rel_error(NULL, r->sumsq, sumsq, (size_t)out.c), "batch-norm sums of squares", &err, worst);
  }
  free(want), free(sum), free(sumsq);
  return err;
}
