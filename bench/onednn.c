// onednn.c: problems on oneDNN's C API (onednn.h). Without oneDNN at build
// time (CAEC_HAVE_DNNL undefined) every problem reports "not built".
#include "onednn.h"

#include <stdio.h>
#include <stdlib.h>

Problem onednn_fused(const Problem *p) {
  Problem q = *p;
  q.stats = false, q.out_cat = 0;
  // One sum post-op: a residual, or else an accumulation of the whole output.
  bool acc = p->pass == PASS_FWD && !p->res && p->acc[0] && (!p->out_cat || p->acc[1]);
  q.acc[0] = acc, q.acc[1] = false;
  if (p->pass != PASS_FWD)
    q.res = q.relu = false;
  return q;
}

#ifdef CAEC_HAVE_DNNL

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>

enum { MAX_ARGS = 4 };

// One argument of the primitive: its memory in the layout oneDNN chose, and
// where the canonical values come from (inputs, a preloaded dst) or go (outputs).
typedef struct Arg {
  int id;             // DNNL_ARG_*
  dnnl_query_t query; // of its memory descriptor
  int index;
  const float *from;     // canonical values loaded before the runs, or NULL
  dnnl_format_tag_t tag; // their layout
  bool output;
  dnnl_memory_t mem;
} Arg;

struct Onednn {
  Problem q;
  dnnl_primitive_desc_t pd;
  dnnl_primitive_t prim;
  Arg args[MAX_ARGS];
  int nargs;
};

static dnnl_engine_t engine;
static dnnl_stream_t stream;

// Records a failure in why; true when st is one.
static bool failed(dnnl_status_t st, const char *what, char *why, size_t size) {
  if (st != dnnl_success)
    snprintf(why, size, "oneDNN rejects it (%s: %s)", what, dnnl_status2str(st));
  return st != dnnl_success;
}

// The op as oneDNN sees it: src to dst (conv: image to grid; deconvolution: grid to image),
// weights [dst c][src c][k][k], and the padding on each side.
typedef struct Dims {
  dnnl_dims_t src, dst, w, bias, strides, pad_l, pad_r;
} Dims;

static Dims dims_of(const Problem *p) {
  const KConv *g = &p->g;
  const Shape s = p->op == OP_CONV ? problem_image(p) : problem_grid(p);
  const Shape d = p->op == OP_CONV ? problem_grid(p) : problem_image(p);
  // The far side pads what the last window reaches past the image.
  return (Dims){
      {g->n, s.c, s.h, s.w},
      {g->n, d.c, d.h, d.w},
      {d.c, s.c, g->k, g->k},
      {d.c},
      {g->stride, g->stride},
      {g->pad_top, g->pad_left},
      {(g->gh - 1) * g->stride + g->k - g->ih - g->pad_top, (g->gw - 1) * g->stride + g->k - g->iw - g->pad_left}};
}

// The descriptor of pass on p's op, every layout left to oneDNN.
static dnnl_status_t op_desc(const Problem *p, Pass pass, dnnl_convolution_desc_t *desc) {
  const Dims x = dims_of(p);
  dnnl_memory_desc_t src, dst, w, b;
  dnnl_memory_desc_init_by_tag(&src, 4, x.src, dnnl_f32, dnnl_format_tag_any);
  dnnl_memory_desc_init_by_tag(&dst, 4, x.dst, dnnl_f32, dnnl_format_tag_any);
  dnnl_memory_desc_init_by_tag(&w, 4, x.w, dnnl_f32, dnnl_format_tag_any);
  dnnl_memory_desc_init_by_tag(&b, 1, x.bias, dnnl_f32, dnnl_x);
  const dnnl_memory_desc_t *bias = p->bias ? &b : NULL;
  const bool conv = p->op == OP_CONV;
  const dnnl_alg_kind_t alg = conv ? dnnl_convolution_auto : dnnl_deconvolution_direct;
  switch (pass) {
  case PASS_FWD:
    return (conv ? dnnl_convolution_forward_desc_init : dnnl_deconvolution_forward_desc_init)(
        desc, dnnl_forward_training, alg, &src, &w, bias, &dst, x.strides, x.pad_l, x.pad_r);
  case PASS_BWD_DATA:
    return (conv ? dnnl_convolution_backward_data_desc_init
                 : dnnl_deconvolution_backward_data_desc_init)(desc, alg, &src, &w, &dst, x.strides, x.pad_l, x.pad_r);
  case PASS_BWD_WEIGHTS:
    return (conv ? dnnl_convolution_backward_weights_desc_init : dnnl_deconvolution_backward_weights_desc_init)(
        desc, alg, &src, &w, bias, &dst, x.strides, x.pad_l, x.pad_r);
  }
  return dnnl_invalid_arguments;
}

// The forward epilogue as post-ops: sum (a residual preloaded into dst), relu, then sum (an accumulation).
static dnnl_primitive_attr_t post_ops(const Problem *q) {
  dnnl_primitive_attr_t attr;
  dnnl_post_ops_t ops;
  dnnl_primitive_attr_create(&attr);
  dnnl_post_ops_create(&ops);
  if (q->res)
    dnnl_post_ops_append_sum(ops, 1.0f);
  if (q->relu)
    dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
  if (q->acc[0])
    dnnl_post_ops_append_sum(ops, 1.0f);
  dnnl_primitive_attr_set_post_ops(attr, ops);
  dnnl_post_ops_destroy(ops);
  return attr;
}

// The arguments of q's pass and where their values come from.
static int arg_specs(const Problem *q, const Data *d, Arg *a) {
  const dnnl_format_tag_t wtag = q->op == OP_CONV ? dnnl_oihw : dnnl_iohw; // our weights are [grid c][image c]
  int n = 0;
  switch (q->pass) {
  case PASS_FWD:
    a[n++] = (Arg){DNNL_ARG_SRC, dnnl_query_src_md, 0, d->in_eff, dnnl_nchw, false, NULL};
    a[n++] = (Arg){DNNL_ARG_WEIGHTS, dnnl_query_weights_md, 0, d->w, wtag, false, NULL};
    if (q->bias)
      a[n++] = (Arg){DNNL_ARG_BIAS, dnnl_query_weights_md, 1, d->bias, dnnl_x, false, NULL};
    a[n++] =
        (Arg){DNNL_ARG_DST, dnnl_query_dst_md, 0, q->res ? d->res : q->acc[0] ? d->old : NULL, dnnl_nchw, true, NULL};
    break;
  case PASS_BWD_DATA:
    a[n++] = (Arg){DNNL_ARG_DIFF_DST, dnnl_query_diff_dst_md, 0, d->in_eff, dnnl_nchw, false, NULL};
    a[n++] = (Arg){DNNL_ARG_WEIGHTS, dnnl_query_weights_md, 0, d->w, wtag, false, NULL};
    a[n++] = (Arg){DNNL_ARG_DIFF_SRC, dnnl_query_diff_src_md, 0, NULL, dnnl_nchw, true, NULL};
    break;
  case PASS_BWD_WEIGHTS:
    a[n++] = (Arg){DNNL_ARG_SRC, dnnl_query_src_md, 0, d->in_eff, dnnl_nchw, false, NULL};
    a[n++] = (Arg){DNNL_ARG_DIFF_DST, dnnl_query_diff_dst_md, 0, d->dy_eff, dnnl_nchw, false, NULL};
    a[n++] = (Arg){DNNL_ARG_DIFF_WEIGHTS, dnnl_query_diff_weights_md, 0, NULL, wtag, true, NULL};
    if (q->bias)
      a[n++] = (Arg){DNNL_ARG_DIFF_BIAS, dnnl_query_diff_weights_md, 1, NULL, dnnl_x, true, NULL};
    break;
  }
  return n;
}

// Copies between a canonical buffer and an argument's memory, in either direction.
static dnnl_status_t reorder(const Arg *a, const float *canonical, bool to_canonical) {
  const dnnl_memory_desc_t *md;
  dnnl_memory_get_memory_desc(a->mem, &md);
  dnnl_memory_desc_t user;
  dnnl_memory_t um = NULL;
  dnnl_primitive_desc_t rpd = NULL;
  dnnl_primitive_t r = NULL;
  dnnl_status_t st = dnnl_memory_desc_init_by_tag(&user, md->ndims, md->dims, dnnl_f32, a->tag);
  if (st == dnnl_success)
    st = dnnl_memory_create(&um, &user, engine, (void *)canonical);
  if (st == dnnl_success)
    st = dnnl_reorder_primitive_desc_create(&rpd, to_canonical ? md : &user, engine, to_canonical ? &user : md, engine,
                                            NULL);
  if (st == dnnl_success)
    st = dnnl_primitive_create(&r, rpd);
  if (st == dnnl_success) {
    dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, to_canonical ? a->mem : um}, {DNNL_ARG_TO, to_canonical ? um : a->mem}};
    st = dnnl_primitive_execute(r, stream, 2, args);
  }
  if (st == dnnl_success)
    st = dnnl_stream_wait(stream);
  dnnl_primitive_destroy(r), dnnl_primitive_desc_destroy(rpd), dnnl_memory_destroy(um);
  return st;
}

// The primitive descriptor of q's pass (the forward one is a backward pass's hint).
static dnnl_status_t make_pd(const Problem *q, dnnl_primitive_desc_t *pd) {
  dnnl_convolution_desc_t fwd, desc;
  dnnl_primitive_desc_t hint = NULL;
  dnnl_primitive_attr_t attr = post_ops(q);
  dnnl_status_t st = op_desc(q, PASS_FWD, &fwd);
  if (st == dnnl_success && q->pass != PASS_FWD)
    st = dnnl_primitive_desc_create(&hint, &fwd, NULL, engine, NULL);
  if (st == dnnl_success)
    st = op_desc(q, q->pass, &desc);
  if (st == dnnl_success)
    st = dnnl_primitive_desc_create(pd, &desc, attr, engine, hint);
  dnnl_primitive_desc_destroy(hint), dnnl_primitive_attr_destroy(attr);
  return st;
}

Onednn *onednn_new(const Data *d, char *why, size_t size) {
  if (!engine && (failed(dnnl_engine_create(&engine, dnnl_cpu, 0), "engine", why, size) ||
                  failed(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags), "stream", why, size)))
    return NULL;
  Onednn *o = calloc(1, sizeof *o);
  if (!o)
    return snprintf(why, size, "out of memory"), NULL;
  o->q = onednn_fused(&d->p);
  o->nargs = arg_specs(&o->q, d, o->args);
  bool bad = failed(make_pd(&o->q, &o->pd), "primitive descriptor", why, size) ||
             failed(dnnl_primitive_create(&o->prim, o->pd), "primitive", why, size);
  for (int i = 0; i < o->nargs && !bad; i++) {
    Arg *a = &o->args[i];
    bad = failed(dnnl_memory_create(&a->mem, dnnl_primitive_desc_query_md(o->pd, a->query, a->index), engine,
                                    DNNL_MEMORY_ALLOCATE),
                 "memory", why, size) ||
          (a->from && failed(reorder(a, a->from, false), "reorder", why, size));
  }
  if (bad) {
    onednn_free(o);
    return NULL;
  }
  return o;
}

void onednn_run(void *arg) {
  Onednn *o = arg;
  dnnl_exec_arg_t args[MAX_ARGS];
  for (int i = 0; i < o->nargs; i++)
    args[i] = (dnnl_exec_arg_t){o->args[i].id, o->args[i].mem};
  if (dnnl_primitive_execute(o->prim, stream, o->nargs, args) != dnnl_success ||
      dnnl_stream_wait(stream) != dnnl_success) {
    fputs("kernels: oneDNN failed to execute a primitive it created\n", stderr);
    exit(1);
  }
}

void onednn_result(Onednn *o, Result *r) {
  // Outputs in arg_specs' order: the tensor, or dw then db.
  float *dest[] = {r->out ? r->out : r->dw, r->db};
  for (int i = 0, k = 0; i < o->nargs; i++)
    if (o->args[i].output && reorder(&o->args[i], dest[k++], true) != dnnl_success) {
      fputs("kernels: oneDNN cannot reorder its result\n", stderr);
      exit(1);
    }
}

const char *onednn_impl(const Onednn *o) {
  const char *impl = "?";
  dnnl_primitive_desc_query(o->pd, dnnl_query_impl_info_str, 0, (void *)&impl);
  return impl;
}

void onednn_free(Onednn *o) {
  if (!o)
    return;
  for (int i = 0; i < o->nargs; i++)
    dnnl_memory_destroy(o->args[i].mem);
  dnnl_primitive_destroy(o->prim), dnnl_primitive_desc_destroy(o->pd);
  free(o);
}

const char *onednn_version(void) {
  static char text[48];
  const dnnl_version_t *v = dnnl_version();
  snprintf(text, sizeof text, "oneDNN %d.%d.%d", v->major, v->minor, v->patch);
  return text;
}

#else

Onednn *onednn_new(const Data *d, char *why, size_t size) {
  (void)d;
  snprintf(why, size, "not built");
  return NULL;
}

void onednn_run(void *o) { (void)o; }
void onednn_result(Onednn *o, Result *r) { (void)o, (void)r; }
const char *onednn_impl(const Onednn *o) { return (void)o, ""; }
void onednn_free(Onednn *o) { (void)o; }
const char *onednn_version(void) { return "not built"; }

#endif
