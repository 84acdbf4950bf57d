// ref_conv.c: convolution and transposed convolution. Both are one linear map
// between a "grid" tensor, whose pixel (i, j) owns the k x k window at
// (i*stride - pad_top, j*stride - pad_left) of an "image" tensor, with weights
// laid out [grid channel, image channel, k, k]. conv reads its input as the
// image and writes its output as the grid; convT goes the other way. So three
// loops serve all four kernels: gather (image to grid), scatter (grid to image,
// gather's adjoint) and the weight gradient, which pairs a grid with an image.
#include "ref.h"

#include <stdbool.h>
#include <string.h>

typedef struct Geom {
  int n;
  int gc, gh, gw; // grid: conv's output, convT's input
  int ic, ih, iw; // image: conv's input, convT's output
  int k, stride, pad_top, pad_left;
} Geom;

static Geom conv_geom(const RefConv *p) {
  return (Geom){p->n, p->cout, p->oh, p->ow, p->cin, p->h, p->w, p->k, p->stride, p->pad_top, p->pad_left};
}

static Geom convt_geom(const RefConv *p) {
  return (Geom){p->n, p->cin, p->h, p->w, p->cout, p->oh, p->ow, p->k, p->stride, p->pad_top, p->pad_left};
}

// Offset of element (a, b, c, d) of a [*, B, C, D] tensor.
static size_t at(int64_t a, int64_t b, int64_t c, int64_t d, int64_t B, int64_t C, int64_t D) {
  return (size_t)(((a * B + b) * C + c) * D + d);
}

// The image pixel (r, s) under kernel tap (a, c) of grid pixel (i, j); false where it falls outside the image
// (padding for conv, a cropped write for convT).
static bool tap(const Geom *g, int i, int j, int a, int c, int64_t *r, int64_t *s) {
  *r = (int64_t)i * g->stride + a - g->pad_top;
  *s = (int64_t)j * g->stride + c - g->pad_left;
  return *r >= 0 && *r < g->ih && *s >= 0 && *s < g->iw;
}

// grid = sum over the taps of image * weight: conv's forward, convT's data gradient.
static void gather(const Geom *g, const double *img, const double *w, double *grid) {
  for (int n = 0; n < g->n; n++)
    for (int o = 0; o < g->gc; o++)
      for (int i = 0; i < g->gh; i++)
        for (int j = 0; j < g->gw; j++) {
          double sum = 0;
          for (int q = 0; q < g->ic; q++)
            for (int a = 0; a < g->k; a++)
              for (int c = 0; c < g->k; c++) {
                int64_t r, s;
                if (tap(g, i, j, a, c, &r, &s))
                  sum += img[at(n, q, r, s, g->ic, g->ih, g->iw)] * w[at(o, q, a, c, g->ic, g->k, g->k)];
              }
          grid[at(n, o, i, j, g->gc, g->gh, g->gw)] = sum;
        }
}

// image = sum over the taps of grid * weight, the adjoint of gather: conv's data gradient, convT's forward.
static void scatter(const Geom *g, const double *grid, const double *w, double *img) {
  memset(img, 0, sizeof *img * (size_t)g->n * (size_t)g->ic * (size_t)g->ih * (size_t)g->iw);
  for (int n = 0; n < g->n; n++)
    for (int o = 0; o < g->gc; o++)
      for (int i = 0; i < g->gh; i++)
        for (int j = 0; j < g->gw; j++) {
          double v = grid[at(n, o, i, j, g->gc, g->gh, g->gw)];
          for (int q = 0; q < g->ic; q++)
            for (int a = 0; a < g->k; a++)
              for (int c = 0; c < g->k; c++) {
                int64_t r, s;
                if (tap(g, i, j, a, c, &r, &s))
                  img[at(n, q, r, s, g->ic, g->ih, g->iw)] += v * w[at(o, q, a, c, g->ic, g->k, g->k)];
              }
        }
}

// dw = sum over the taps of grid * image, for both kernels: conv pairs dy with x, convT pairs x with dy.
static void weight_grad(const Geom *g, const double *grid, const double *img, double *dw) {
  for (int o = 0; o < g->gc; o++)
    for (int q = 0; q < g->ic; q++)
      for (int a = 0; a < g->k; a++)
        for (int c = 0; c < g->k; c++) {
          double sum = 0;
          for (int n = 0; n < g->n; n++)
            for (int i = 0; i < g->gh; i++)
              for (int j = 0; j < g->gw; j++) {
                int64_t r, s;
                if (tap(g, i, j, a, c, &r, &s))
                  sum += grid[at(n, o, i, j, g->gc, g->gh, g->gw)] * img[at(n, q, r, s, g->ic, g->ih, g->iw)];
              }
          dw[at(o, q, a, c, g->ic, g->k, g->k)] = sum;
        }
}

// Bias over the output planes [n, c, hw].
static void add_bias(int n, int c, size_t hw, const double *b, double *y) {
  for (int i = 0; i < n; i++)
    for (int ch = 0; ch < c; ch++)
      for (size_t p = 0; p < hw; p++)
        y[((size_t)i * (size_t)c + (size_t)ch) * hw + p] += b[ch];
}

static void bias_grad(int n, int c, size_t hw, const double *dy, double *db) {
  for (int ch = 0; ch < c; ch++) {
    double sum = 0;
    for (int i = 0; i < n; i++)
      for (size_t p = 0; p < hw; p++)
        sum += dy[((size_t)i * (size_t)c + (size_t)ch) * hw + p];
    db[ch] = sum;
  }
}

// A convolution gathers its output from its input (the image) and scatters its input's gradient back; a
// transposed convolution is the same pair the other way round, its input being the grid.
static void forward(const RefConv *p, bool transposed, const double *x, const double *w, const double *b,
                    double *y) {
  Geom g = transposed ? convt_geom(p) : conv_geom(p);
  (transposed ? scatter : gather)(&g, x, w, y);
  if (b)
    add_bias(p->n, p->cout, (size_t)p->oh * (size_t)p->ow, b, y);
}

static void backward(const RefConv *p, bool transposed, const double *x, const double *w, const double *dy,
                     double *dx, double *dw, double *db) {
  Geom g = transposed ? convt_geom(p) : conv_geom(p);
  if (dx)
    (transposed ? gather : scatter)(&g, dy, w, dx);
  weight_grad(&g, transposed ? x : dy, transposed ? dy : x, dw);
  if (db)
    bias_grad(p->n, p->cout, (size_t)p->oh * (size_t)p->ow, dy, db);
}

void ref_conv_fwd(const RefConv *p, const double *x, const double *w, const double *b, double *y) {
  forward(p, false, x, w, b, y);
}

void ref_conv_bwd(const RefConv *p, const double *x, const double *w, const double *dy, double *dx, double *dw,
                  double *db) {
  backward(p, false, x, w, dy, dx, dw, db);
}

void ref_convt_fwd(const RefConv *p, const double *x, const double *w, const double *b, double *y) {
  forward(p, true, x, w, b, y);
}

void ref_convt_bwd(const RefConv *p, const double *x, const double *w, const double *dy, double *dx, double *dw,
                   double *db) {
  backward(p, true, x, w, dy, dx, dw, db);
}
