// xsmm.c: problems on LIBXSMM's convolution layers (xsmm.h). Without LIBXSMM
// at build time (CAEC_HAVE_LIBXSMM undefined) every problem reports "not built".
#include "xsmm.h"

#include <stdio.h>
#include <stdlib.h>

Problem xsmm_computes(const Problem *p) {
  Problem q = *p;
  q.bias = q.res = q.relu = q.stats = false;
  q.out_cat = 0, q.acc[0] = q.acc[1] = false;
  return q;
}

#ifdef CAEC_HAVE_LIBXSMM

#include "harness.h"

#include <libxsmm.h>
#include <omp.h>
#include <string.h>

// One axis of the image: its size and the padding on each side (hi is what the last window reaches past
// the image, negative when it stops short). LIBXSMM pads both sides by pad; the zero rows or columns the
// rest needs are stored in the image buffer, whose extent is size + lo + hi.
typedef struct Axis {
  int size, lo, hi, pad;
} Axis;

static Axis axis(int size, int lo, int grid, int stride, int k) {
  Axis a = {size, lo, (grid - 1) * stride + k - size - lo, 0};
  a.pad = a.lo < a.hi ? a.lo : a.hi;
  a.pad = a.pad > 0 ? a.pad : 0;
  return a;
}

static int extent(Axis a) { return a.size + a.lo + a.hi; }

// A tensor of the layer in LIBXSMM's layout.
typedef struct Tensor {
  libxsmm_dnn_tensor_type type;
  libxsmm_dnn_tensor *t;
  void *mem;
} Tensor;

struct Xsmm {
  Problem q;
  libxsmm_dnn_compute_kind kind;
  int threads;
  Axis rows, cols; // of the image
  libxsmm_dnn_layer *layer;
  Tensor image, grid, filter;
  void *scratch;
};

// Records a failure in why; true when st is one (LIBXSMM's warnings, below its errors, are not).
static bool failed(libxsmm_dnn_err_t st, const char *what, char *why, size_t size) {
  if (st >= LIBXSMM_DNN_ERR_GENERAL)
    snprintf(why, size, "LIBXSMM rejects it (%s: %s)", what, libxsmm_dnn_get_error(st));
  return st >= LIBXSMM_DNN_ERR_GENERAL;
}

// Copies nc planes of h x w (x) into planes of hb x wb (buf, zeroed) at row top and column left, dropping
// what falls outside; or back (to_buf false), zeros where x falls outside buf.
static void place(size_t nc, int h, int w, float *x, int hb, int wb, int top, int left, float *buf, bool to_buf) {
  for (size_t i = 0; i < nc; i++)
    for (int r = 0; r < h; r++)
      for (int s = 0; s < w; s++) {
        const int rb = r + top, sb = s + left;
        const bool inside = rb >= 0 && rb < hb && sb >= 0 && sb < wb;
        float *b = buf + (i * (size_t)hb + (size_t)(inside ? rb : 0)) * (size_t)wb + (size_t)(inside ? sb : 0);
        float *v = x + (i * (size_t)h + (size_t)r) * (size_t)w + (size_t)s;
        if (to_buf && inside)
          *b = *v;
        else if (!to_buf)
          *v = inside ? *b : 0.0f;
      }
}

// Where a canonical activation sits in its LIBXSMM buffer (NCHW with the buffer's rim).
typedef struct Frame {
  size_t nc;
  int h, w, hb, wb, top, left;
} Frame;

static Frame image_frame(const Xsmm *x) {
  const KConv *g = &x->q.g;
  return (Frame){(size_t)g->n * (size_t)g->ic, g->ih, g->iw, extent(x->rows), extent(x->cols), x->rows.lo, x->cols.lo};
}

static Frame grid_frame(const Xsmm *x) {
  const KConv *g = &x->q.g;
  const int ph = x->rows.pad, pw = x->cols.pad;
  return (Frame){(size_t)g->n * (size_t)g->gc, g->gh, g->gw, g->gh + 2 * ph, g->gw + 2 * pw, ph, pw};
}

// Creates t's buffer in the layer's layout, fills it from a canonical tensor (from; NULL: zeros), binds it.
// f: where an activation sits in its buffer; NULL for the filter, copied from KCRS.
static bool bind(Xsmm *x, Tensor *t, libxsmm_dnn_tensor_type type, const float *from, const Frame *f, char *why,
                 size_t size) {
  libxsmm_dnn_err_t st;
  t->type = type;
  libxsmm_dnn_tensor_datalayout *layout = libxsmm_dnn_create_tensor_datalayout(x->layer, type, &st);
  if (failed(st, "layout", why, size))
    return false;
  const size_t bytes = libxsmm_dnn_get_tensor_size(layout, &st);
  if (st < LIBXSMM_DNN_ERR_GENERAL) {
    t->mem = bench_alloc(bytes);
    t->t = libxsmm_dnn_link_tensor(layout, t->mem, &st);
  }
  libxsmm_dnn_destroy_tensor_datalayout(layout);
  if (failed(st, "tensor", why, size) || !t->t)
    return false;
  if (from && f) {
    float *framed = bench_alloc(sizeof(float) * f->nc * (size_t)f->hb * (size_t)f->wb);
    place(f->nc, f->h, f->w, (float *)from, f->hb, f->wb, f->top, f->left, framed, true);
    st = libxsmm_dnn_copyin_tensor(t->t, framed, LIBXSMM_DNN_TENSOR_FORMAT_NCHW);
    free(framed);
  } else if (from)
    st = libxsmm_dnn_copyin_tensor(t->t, from, LIBXSMM_DNN_TENSOR_FORMAT_KCRS);
  return !failed(st, "copy in", why, size) && !failed(libxsmm_dnn_bind_tensor(x->layer, t->t, type), "bind", why, size);
}

// The layer: conv's image to grid, padded as x->rows and x->cols say.
static libxsmm_dnn_conv_desc desc_of(const Xsmm *x) {
  const KConv *g = &x->q.g;
  libxsmm_dnn_conv_desc c = {0};
  c.N = g->n, c.C = g->ic, c.K = g->gc, c.R = c.S = g->k, c.u = c.v = g->stride;
  c.H = extent(x->rows) - 2 * x->rows.pad, c.W = extent(x->cols) - 2 * x->cols.pad;
  c.pad_h = c.pad_h_in = c.pad_h_out = x->rows.pad;
  c.pad_w = c.pad_w_in = c.pad_w_out = x->cols.pad;
  c.threads = x->threads;
  c.datatype_in = c.datatype_out = LIBXSMM_DNN_DATATYPE_F32;
  c.buffer_format = c.filter_format = LIBXSMM_DNN_TENSOR_FORMAT_LIBXSMM;
  c.algo = LIBXSMM_DNN_CONV_ALGO_DIRECT;
  c.options = LIBXSMM_DNN_CONV_OPTION_OVERWRITE;
  c.fuse_ops = LIBXSMM_DNN_CONV_FUSE_NONE;
  return c;
}

static bool make(Xsmm *x, const Data *d, char *why, size_t size) {
  const KConv *g = &x->q.g;
  const libxsmm_dnn_conv_desc c = desc_of(x);
  if ((c.H + 2 * c.pad_h - c.R) / c.u + 1 != g->gh || (c.W + 2 * c.pad_w - c.S) / c.v + 1 != g->gw)
    return snprintf(why, size, "LIBXSMM cannot express its padding"), false;
  libxsmm_dnn_err_t st;
  x->layer = libxsmm_dnn_create_conv_layer(c, &st);
  if (!x->layer || failed(st, "layer", why, size))
    return false;
  const Frame fi = image_frame(x), fg = grid_frame(x);
  const bool conv = x->q.op == OP_CONV;
  bool ok = true;
  switch (x->kind) {
  case LIBXSMM_DNN_COMPUTE_KIND_FWD:
    ok = bind(x, &x->image, LIBXSMM_DNN_REGULAR_INPUT, d->in_eff, &fi, why, size) &&
         bind(x, &x->grid, LIBXSMM_DNN_REGULAR_OUTPUT, NULL, &fg, why, size) &&
         bind(x, &x->filter, LIBXSMM_DNN_REGULAR_FILTER, d->w, NULL, why, size);
    break;
  case LIBXSMM_DNN_COMPUTE_KIND_BWD:
    ok = bind(x, &x->image, LIBXSMM_DNN_GRADIENT_INPUT, NULL, &fi, why, size) &&
         bind(x, &x->grid, LIBXSMM_DNN_GRADIENT_OUTPUT, d->in_eff, &fg, why, size) &&
         bind(x, &x->filter, LIBXSMM_DNN_REGULAR_FILTER, d->w, NULL, why, size);
    break;
  default: // UPD: dw pairs the grid with the image: conv's dy with x, convT's x with dy
    ok = bind(x, &x->image, LIBXSMM_DNN_REGULAR_INPUT, conv ? d->in_eff : d->dy_eff, &fi, why, size) &&
         bind(x, &x->grid, LIBXSMM_DNN_GRADIENT_OUTPUT, conv ? d->dy_eff : d->in_eff, &fg, why, size) &&
         bind(x, &x->filter, LIBXSMM_DNN_GRADIENT_FILTER, NULL, NULL, why, size);
    break;
  }
  if (!ok)
    return false;
  const size_t scratch = libxsmm_dnn_get_scratch_size(x->layer, LIBXSMM_DNN_COMPUTE_KIND_ALL, &st);
  if (failed(st, "scratch size", why, size))
    return false;
  x->scratch = bench_alloc(scratch ? scratch : 64);
  return !failed(libxsmm_dnn_bind_scratch(x->layer, LIBXSMM_DNN_COMPUTE_KIND_ALL, x->scratch), "scratch", why, size);
}

Xsmm *xsmm_new(const Data *d, char *why, size_t size) {
  static bool started;
  if (!started)
    libxsmm_init(), started = true;
  Xsmm *x = bench_alloc(sizeof *x);
  x->q = xsmm_computes(&d->p);
  const KConv *g = &x->q.g;
  static const libxsmm_dnn_compute_kind kinds[] = {
      [KERNEL_GATHER] = LIBXSMM_DNN_COMPUTE_KIND_FWD,
      [KERNEL_SCATTER] = LIBXSMM_DNN_COMPUTE_KIND_BWD,
      [KERNEL_WGRAD] = LIBXSMM_DNN_COMPUTE_KIND_UPD,
  };
  x->kind = kinds[problem_kernel(&x->q)];
  x->threads = omp_get_max_threads();
  x->rows = axis(g->ih, g->pad_top, g->gh, g->stride, g->k);
  x->cols = axis(g->iw, g->pad_left, g->gw, g->stride, g->k);
  if (!make(x, d, why, size)) {
    xsmm_free(x);
    return NULL;
  }
  return x;
}

void xsmm_run(void *arg) {
  Xsmm *x = arg;
  int bad = 0;
#pragma omp parallel num_threads(x->threads) reduction(| : bad)
  bad |= libxsmm_dnn_execute_st(x->layer, x->kind, 0, omp_get_thread_num()) >= LIBXSMM_DNN_ERR_GENERAL;
  if (bad) {
    fputs("kernels: LIBXSMM failed to execute a layer it created\n", stderr);
    exit(1);
  }
}

// Copies a tensor of the layer out into a canonical one (its frame; NULL: the filter, KCRS).
static void copy_out(const Tensor *t, const Frame *f, float *to) {
  float *framed = f ? bench_alloc(sizeof(float) * f->nc * (size_t)f->hb * (size_t)f->wb) : to;
  if (libxsmm_dnn_copyout_tensor(t->t, framed, f ? LIBXSMM_DNN_TENSOR_FORMAT_NCHW : LIBXSMM_DNN_TENSOR_FORMAT_KCRS) >=
      LIBXSMM_DNN_ERR_GENERAL) {
    fputs("kernels: LIBXSMM cannot copy its result out\n", stderr);
    exit(1);
  }
  if (f) {
    place(f->nc, f->h, f->w, to, f->hb, f->wb, f->top, f->left, framed, false);
    free(framed);
  }
}

void xsmm_result(Xsmm *x, Result *r) {
  Frame fi = image_frame(x), fg = grid_frame(x);
  switch (x->kind) {
  case LIBXSMM_DNN_COMPUTE_KIND_FWD:
    copy_out(&x->grid, &fg, r->out);
    break;
  case LIBXSMM_DNN_COMPUTE_KIND_BWD:
    copy_out(&x->image, &fi, r->out);
    break;
  default:
    copy_out(&x->filter, NULL, r->dw);
    break;
  }
}

const char *xsmm_impl(const Xsmm *x) {
  static char text[64];
  (void)x;
  snprintf(text, sizeof text, "libxsmm_dnn direct, JIT for %s", libxsmm_get_target_arch());
  return text;
}

void xsmm_free(Xsmm *x) {
  if (!x)
    return;
  Tensor *all[] = {&x->image, &x->grid, &x->filter};
  for (int i = 0; i < 3; i++)
    if (all[i]->t) {
      libxsmm_dnn_release_tensor(x->layer, all[i]->type);
      libxsmm_dnn_destroy_tensor(all[i]->t);
    }
  if (x->scratch)
    libxsmm_dnn_release_scratch(x->layer, LIBXSMM_DNN_COMPUTE_KIND_ALL);
  if (x->layer)
    libxsmm_dnn_destroy_conv_layer(x->layer);
  for (int i = 0; i < 3; i++)
    free(all[i]->mem);
  free(x->scratch), free(x);
}

const char *xsmm_version(void) { return "LIBXSMM " LIBXSMM_CONFIG_VERSION; }

#else

Xsmm *xsmm_new(const Data *d, char *why, size_t size) {
  (void)d;
  snprintf(why, size, "not built");
  return NULL;
}

void xsmm_run(void *x) { (void)x; }
void xsmm_result(Xsmm *x, Result *r) { (void)x, (void)r; }
const char *xsmm_impl(const Xsmm *x) { return (void)x, ""; }
void xsmm_free(Xsmm *x) { (void)x; }
const char *xsmm_version(void) { return "not built"; }

#endif
