// workspace.c: the scratch of the C kernels (runtime/kernels/kern_work.h), planned
// like every other buffer. A kernel's shared part becomes a scratch buffer of
// its own, live at that kernel alone, so memplan.c lets workspaces of different
// kernels (and dead activations) share bytes; the per-thread part is one region
// of the largest kernel's size per thread, which the trainer allocates once for
// the threads it runs (the model's thread_work_bytes).
#include "caec.h"

static bool has_prologue(View v) { return v.scale[0] >= 0 || v.relu[0] || v.scale[1] >= 0 || v.relu[1]; }

// The L2 term needs its chunks' sums only when some kernel is flagged.
bool kern_takes_work(const Kern *k) {
  switch (k->kind) {
  case K_GATHER: case K_SCATTER: case K_WGRAD: case K_BN_TRAIN: case K_BN_EVAL: case K_BN_BWD: case K_GN:
  case K_GN_BWD: case K_BN_SUMS: case K_BN_STATS: case K_LOSS:
    return true;
  case K_L2_LOSS:
    return k->work >= 0;
  default:
    return false;
  }
}

// The workspace of kernel k, as its kern.h entry point states it.
static KWorkSize kern_work(const Step *s, const Kern *k) {
  const Graph *g = s->g;
  const Node *n = &g->nodes[k->node];
  KWorkSize none = {0, 0};
  switch (k->kind) {
  case K_GATHER: case K_SCATTER: {
    KConv geom = conv_geom(g, s->batch, k->node);
    return k->variant == CV_WINO ? kw_conv_work(&geom, k->kind == K_SCATTER)
                                 : kc_conv_work(&geom, k->kind == K_SCATTER, has_prologue(k->in));
  }
  case K_WGRAD: {
    KConv geom = conv_geom(g, s->batch, k->node);
    return k->variant == CV_WINO ? kw_wgrad_work(&geom)
                                 : kc_wgrad_work(&geom, has_prologue(k->in), has_prologue(k->in2));
  }
  case K_BN_SUMS:
    return kn_work(0, n->shape.c, 0, 0, false);
  case K_BN_TRAIN: case K_BN_EVAL: case K_BN_BWD: case K_GN: case K_GN_BWD: case K_BN_STATS: {
    bool gn = k->kind == K_GN || k->kind == K_GN_BWD;
    return kn_work(s->batch, n->shape.c, n->shape.h * n->shape.w, gn ? n->groups : 0, k->in.b >= 0 || k->out.b >= 0);
  }
  case K_LOSS: {
    Shape out = g->nodes[g->output].shape;
    return kl_loss_work(s->batch, out.h, out.w);
  }
  case K_L2_LOSS:
    for (int p = 0; p < g->nparams; p++) {
      size_t bytes = g->params[p].l2 ? ko_sumsq_work((size_t)g->params[p].numel).shared : 0;
      none.shared = bytes > none.shared ? bytes : none.shared;
    }
    return none;
  default:
    return none;
  }
}

void plan_workspaces(Arena *a, Step *s) {
  s->thread_work = 0;
  for (int i = 0; i < s->nkerns; i++) {
    Kern *k = &s->kerns[i];
    KWorkSize w = kern_work(s, k);
    if ((int64_t)w.thread > s->thread_work)
      s->thread_work = (int64_t)w.thread;
    if (!w.shared)
      continue;
    Buf *b = ARENA_PUSH(a, s->bufs, s->nbufs, s->bufs_cap);
    char *name = buf_ident(a, arena_printf(a, "work_%s_", kern_name(k)), s->g->nodes[k->node].name);
    int prog = i >= s->prog_start[PROG_FORWARD] ? PROG_FORWARD : PROG_TRAIN;
    *b = (Buf){name, arena_printf(a, "[%zu] bytes", w.shared), AR_SCRATCH, prog, (int64_t)w.shared, -1, -1, 0};
    k->work = s->nbufs - 1;
  }
}
