// emit_c.c: the step programs -> C source. For model NAME it writes NAME.h,
// the model's interface (parameter table, arena sizes, entry points), and
// NAME.c: one small function per kernel, with literal shapes, the .cae line it
// comes from and what it computes, calling the fast kernels of runtime/kernels/kern.h;
// then the two programs, which name every buffer with its shape and its place
// in the arenas; then the CaecModel that runtime/trainer/trainer.c drives. The bodies
// of the kernels are printed by one file per op family (emit_c_*.c).
#include "atomic.h"
#include "caec.h"

#include <errno.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

// The names a kernel's buffers go by inside its function, by Kern field:
// in, in2, out, p0..p5, aux0, aux1 (the workspace, Kern.work, is "work" for every kind).
static const char *const roles[K_COUNT][R_COUNT] = {
    [K_PACK_GATHER] = {"w", NULL, "wp"},
    [K_PACK_SCATTER] = {"w", NULL, "wp"},
    [K_GATHER] = {"image", "res", "grid", "wp", "bias", "scale_a", "shift_a", "scale_b", "shift_b", "sums"},
    [K_SCATTER] = {"grid", "res", "image", "wp", "bias", "scale_a", "shift_a", "scale_b", "shift_b", "sums"},
    [K_WGRAD] = {"grid", "image", NULL, "dw", "db", "scale_a", "shift_a", "scale_b", "shift_b"},
    [K_BN_TRAIN] = {"x", NULL, "y", "gamma", "beta", "running_mean", "running_var", NULL, NULL, "mean", "invstd"},
    [K_BN_EVAL] = {"x", NULL, "y", "gamma", "beta", "running_mean", "running_var"},
    [K_BN_BWD] = {"x", "dy", "dx", "gamma", "beta", "dgamma", "dbeta", NULL, NULL, "mean", "invstd"},
    [K_GN] = {"x", NULL, "y", "gamma", "beta", NULL, NULL, NULL, NULL, "mean", "invstd"},
    [K_GN_BWD] = {"x", "dy", "dx", "gamma", "beta", "dgamma", "dbeta", NULL, NULL, "mean", "invstd"},
    [K_BN_SUMS] = {"sums", NULL, NULL, "gamma", "beta", "running_mean", "running_var", "scale", "shift", "mean",
                   "invstd"},
    [K_BN_STATS] = {"x", NULL, NULL, "gamma", "beta", "running_mean", "running_var", "scale", "shift", "mean",
                    "invstd"},
    [K_BN_COEFFS] = {NULL, NULL, NULL, "gamma", "beta", "running_mean", "running_var", "scale", "shift"},
    [K_ACT] = {"x", NULL, "y"},
    [K_ACT_BWD] = {"y", "dy", "dx"}, // or x, as the activation's row says
    [K_ADD] = {"a", "b", "y"},
    [K_COPY] = {"dy", NULL, "dx"},
    [K_DROPOUT_MASK] = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "keep"},
    [K_DROPOUT] = {"x", NULL, "y", NULL, NULL, NULL, NULL, NULL, NULL, "keep"},
    [K_CONCAT] = {"x", NULL, "y"},
    [K_SPLIT] = {"dy", NULL, "dx"},
    [K_LOSS] = {"y", "target", "dy", "y_out"},
    [K_L2_LOSS] = {NULL},
    [K_UPDATE] = {NULL, NULL, NULL, "w", "g", "opt"},
};

const char *emit_role(const Kern *k, int r) {
  if (r == R_WORK)
    return k->work >= 0 ? "work" : NULL;
  if (k->kind == K_LOSS && k->sigmoid) // the sigmoid is fused: the loss reads logits
    return r == R_IN ? "z" : r == R_OUT ? "dz" : roles[K_LOSS][r];
  if (k->kind == K_ACT_BWD && r == R_IN && op_info(k->act)->grad_from_x)
    return "x";
  return roles[k->kind][r];
}

// The buffers of a kernel's roles; views contribute their second piece as ROLE_b.
void emit_role_bufs(const Kern *k, int buf[R_COUNT], int second[R_COUNT]) {
  const View *v[3] = {&k->in, &k->in2, &k->out};
  for (int r = 0; r < 3; r++)
    buf[r] = v[r]->a, second[r] = v[r]->b;
  for (int r = 0; r < KP_COUNT; r++)
    buf[R_P0 + r] = k->p[r], second[R_P0 + r] = -1;
  for (int r = 0; r < 2; r++)
    buf[R_AUX0 + r] = k->aux[r], second[R_AUX0 + r] = -1;
  buf[R_WORK] = k->work, second[R_WORK] = -1;
}

bool emit_writes(const Kern *k, int r) {
  if (r == R_OUT || r == R_WORK)
    return true;
  switch (k->kind) {
  case K_GATHER: case K_SCATTER: return r == R_AUX0;
  case K_WGRAD: return r == R_P0 + KP_W || r == R_P0 + KP_BIAS;
  case K_BN_TRAIN: return r == R_P0 + KP_RUNNING_MEAN || r == R_P0 + KP_RUNNING_VAR || r >= R_AUX0;
  case K_BN_SUMS: case K_BN_STATS: return r >= R_P0 + KP_RUNNING_MEAN;
  case K_BN_COEFFS: return r >= R_P0 + KP_SCALE;
  case K_BN_BWD: case K_GN_BWD: return r == R_P0 + KP_DGAMMA || r == R_P0 + KP_DBETA;
  case K_GN: case K_DROPOUT_MASK: return r >= R_AUX0;
  case K_LOSS: return r == R_P0 + KP_Y_OUT;
  case K_UPDATE: return true;
  default: return false;
  }
}

const char *emit_buf_type(const Buf *b) {
  return !strncmp(b->name, "keep_", 5)   ? "uint8_t"
         : !strncmp(b->name, "sums_", 5) ? "double"
         : !strncmp(b->name, "work_", 5) ? "unsigned char"
                                         : "float";
}

static bool has_hyper(const Kern *k) {
  return k->kind == K_LOSS || k->kind == K_L2_LOSS || k->kind == K_DROPOUT_MASK || k->kind == K_DROPOUT ||
         k->kind == K_UPDATE;
}

// A kernel function's parameter list (declare) or a call's arguments: the step's
// per-thread workspace and the step's settings where the kind needs them, then each role's buffer and its
// second piece (ROLE_b).
static void emit_args(FILE *out, const Step *s, const Kern *k, bool declare) {
  int buf[R_COUNT], second[R_COUNT];
  emit_role_bufs(k, buf, second);
  const char *sep = "";
  if (kern_takes_work(k))
    fprintf(out, declare ? "KThreads th" : "s->work"), sep = ", ";
  if (has_hyper(k))
    fprintf(out, declare ? "%sconst CaecHyper *h" : "%sh", sep), sep = ", ";
  if (k->kind == K_DROPOUT_MASK || k->kind == K_UPDATE)
    fprintf(out, declare ? ", int64_t step" : ", s->step");
  if (k->kind == K_L2_LOSS)
    fprintf(out, declare ? ", const float *restrict params" : ", s->params");
  for (int r = 0; r < R_COUNT; r++)
    for (int piece = 0; piece < 2 && emit_role(k, r); piece++) {
      int id = piece ? second[r] : buf[r];
      if (id < 0)
        continue;
      const Buf *b = &s->bufs[id];
      if (declare)
        fprintf(out, "%s%s%s *restrict %s%s", sep, emit_writes(k, r) ? "" : "const ", emit_buf_type(b), emit_role(k, r),
                piece ? "_b" : "");
      else if (k->kind == K_LOSS && r == R_IN2) // denoising: the clean image when the caller gives one
        fprintf(out, "%ss->target ? s->target : %s", sep, b->name);
      else
        fprintf(out, "%s%s", sep, b->name);
      sep = ", ";
    }
}

const char *emit_kern_name(Arena *a, const Step *s, int idx) {
  int prog = idx >= s->prog_start[PROG_FORWARD];
  return arena_printf(a, "%s%d_%s", prog ? "f" : "t", idx - s->prog_start[prog], kern_name(&s->kerns[idx]));
}

void emit_source_line(FILE *out, const Step *s, const Kern *k) {
  const Node *n = &s->g->nodes[k->node];
  int buf[R_COUNT], second[R_COUNT];
  emit_role_bufs(k, buf, second);
  fprintf(out, "// %s:%d: %s\n", n->loc.src ? n->loc.src->path : "?", n->loc.line, k->covers);
  for (int r = 0; r < R_WORK; r++)
    if (buf[r] >= 0 && roles[k->kind][r])
      fprintf(out, "//   %-12s %s%s%s\n", emit_role(k, r), s->bufs[buf[r]].shape, second[r] >= 0 ? " + " : "",
              second[r] >= 0 ? s->bufs[second[r]].shape : "");
}

// The body of a kernel, by op family.
CuPlan emit_body(const Emit *e, const Kern *k) {
  switch (k->kind) {
  case K_PACK_GATHER: case K_PACK_SCATTER: case K_GATHER: case K_SCATTER: case K_WGRAD:
    return emit_conv(e, k);
  case K_BN_TRAIN: case K_BN_EVAL: case K_BN_BWD: case K_GN: case K_GN_BWD: case K_BN_SUMS: case K_BN_STATS:
  case K_BN_COEFFS:
    return emit_norm(e, k);
  case K_LOSS: case K_L2_LOSS: case K_UPDATE:
    return emit_train(e, k);
  default:
    return emit_pointwise(e, k);
  }
}

// The kernel's function: its comment, signature and body.
static void emit_kernel(FILE *out, const Step *s, int idx, const char *name) {
  const Kern *k = &s->kerns[idx];
  emit_source_line(out, s, k);
  bool is_loss = k->kind == K_LOSS || k->kind == K_L2_LOSS;
  fprintf(out, "static %s %s(", is_loss ? "double" : "void", name);
  emit_args(out, s, k, true);
  fprintf(out, ") {\n");
  emit_body(&(Emit){.out = out, .s = s}, k);
  fprintf(out, "}\n\n");
}

static const char *arena_base[AR_COUNT] = {"s->params", "s->grads", "s->optim", "s->acts", "s->scratch", NULL};

// A program's buffer declarations, then its kernel calls.
static void emit_program(FILE *out, const Step *s, int prog, Arena *a, const char *const *fn) {
  if (prog == PROG_TRAIN)
    fprintf(out, "// One training step: forward (training mode), loss, backward, optimizer update.\n"
                 "static double train_step(CaecState *s, const CaecHyper *h, const float *restrict x, "
                 "float *restrict y) {\n");
  else
    fprintf(out, "// Inference: batch norm on the running statistics, no dropout.\n"
                 "static void forward(CaecState *s, const float *restrict x, float *restrict y) {\n");
  bool *used = arena_alloc(a, (size_t)s->nbufs);
  for (int k = s->prog_start[prog]; k < s->prog_start[prog + 1]; k++) {
    int buf[R_COUNT], second[R_COUNT];
    emit_role_bufs(&s->kerns[k], buf, second);
    for (int r = 0; r < R_COUNT; r++) {
      if (buf[r] >= 0)
        used[buf[r]] = true;
      if (second[r] >= 0)
        used[second[r]] = true;
    }
  }
  for (int i = 0; i < s->nbufs; i++) {
    const Buf *b = &s->bufs[i];
    if (!used[i] || b->arena == AR_IO)
      continue;
    const char *type = emit_buf_type(b);
    if (b->arena == AR_ACTS || b->arena == AR_SCRATCH)
      fprintf(out, "  %s *%s = (%s *)(%s + %lld); // %s\n", type, b->name, type, arena_base[b->arena],
              (long long)b->offset, b->shape);
    else // the persistent arenas are float arrays
      fprintf(out, "  float *%s = %s + %lld; // %s\n", b->name, arena_base[b->arena], (long long)b->offset / 4,
              b->shape);
  }
  if (prog == PROG_TRAIN)
    fprintf(out, "  double loss = 0;\n");
  for (int k = s->prog_start[prog]; k < s->prog_start[prog + 1]; k++) {
    const Kern *kn = &s->kerns[k];
    if (kn->kind == K_UPDATE && (k == s->prog_start[prog] || kn[-1].kind != K_UPDATE))
      fprintf(out, "  if (h->update)\n    s->step++;\n");
    fprintf(out, "  %s%s(", kn->kind == K_LOSS || kn->kind == K_L2_LOSS ? "loss += " : "", fn[k]);
    emit_args(out, s, kn, false);
    fprintf(out, ");\n");
  }
  fprintf(out, prog == PROG_TRAIN ? "  return loss;\n}\n\n" : "}\n\n");
}

void emit_call(const Emit *e, const char *c_name, bool staged) {
  if (!e->cuda)
    fprintf(e->out, "  %s(", c_name);
  else if (staged)
    fprintf(e->out, "  cu_%s(%d, A.work, ", strchr(c_name, '_') + 1, e->stage);
  else
    fprintf(e->out, "  cu_%s(", strchr(c_name, '_') + 1);
}

const char *emit_hyper(const Emit *e) { return e->cuda ? "A.hyper->" : "h->"; }

const char *emit_work(const Emit *e, const Kern *k) {
  return e->cuda ? "" : k->work >= 0 ? ", (KWork){work, th}" : ", (KWork){NULL, th}";
}

// A view's prologue arguments are named scale_a, shift_a (scale_b, shift_b): a kernel reads one view through one.
// C takes compound literals; CUDA C++ has none, so device code builds the value with cu.h's cu_in and cu_pro.
void emit_kin(const Emit *e, View v, const char *name) {
  FILE *out = e->out;
  char b[64];
  snprintf(b, sizeof b, v.b >= 0 ? "%s_b" : "NULL", name);
  if (e->cuda)
    fprintf(out, "cu_in(%s, %s, %d", name, b, v.b >= 0 ? v.ca : 0);
  else if (v.b >= 0)
    fprintf(out, "(KIn){.a = %s, .b = %s, .ca = %d", name, b, v.ca);
  else
    fprintf(out, "(KIn){.a = %s", name);
  for (int p = 0; p < 2; p++) {
    bool on = v.scale[p] >= 0 || v.relu[p];
    const char *scale = v.scale[p] >= 0 ? (p ? "scale_b" : "scale_a") : "NULL";
    const char *shift = v.scale[p] >= 0 ? (p ? "shift_b" : "shift_a") : "NULL";
    const char *relu = v.relu[p] ? "true" : "false";
    if (e->cuda)
      fprintf(out, on ? ", cu_pro(%s, %s, %s)" : ", CU_NO_PRO", scale, shift, relu);
    else if (on)
      fprintf(out, ", .pro_%c = {%s, %s, %s}", "ab"[p], scale, shift, relu);
  }
  fprintf(out, e->cuda ? ")" : "}");
}

// The CUDA kernels leave KOut.stats to a row-sums op of their own (emit_c_conv.c).
void emit_kout(const Emit *e, const Kern *k, const char *name) {
  FILE *out = e->out;
  bool conv = k->kind == K_GATHER || k->kind == K_SCATTER;
  const char *res = conv && k->in2.a >= 0 ? "res" : "NULL";
  bool relu = conv && k->relu;
  if (e->cuda) {
    fprintf(out, "cu_out(%s, ", name);
    fprintf(out, k->out.b >= 0 ? "%s_b, %d, " : "NULL, 0, ", name, k->out.ca);
    fprintf(out, "%s, %s, %s, %s)", k->acc_a ? "true" : "false", k->acc_b ? "true" : "false", res,
            relu ? "true" : "false");
    return;
  }
  fprintf(out, "(KOut){.a = %s", name);
  if (k->out.b >= 0)
    fprintf(out, ", .b = %s_b, .ca = %d", name, k->out.ca);
  if (k->acc_a)
    fprintf(out, ", .acc_a = true");
  if (k->acc_b)
    fprintf(out, ", .acc_b = true");
  if (conv && k->in2.a >= 0)
    fprintf(out, ", .res = res");
  if (relu)
    fprintf(out, ", .relu = true");
  if (conv && k->aux[0] >= 0)
    fprintf(out, ", .stats = sums");
  fprintf(out, "}");
}

int64_t emit_count(const Step *s, int node) {
  Shape sh = s->g->nodes[node].shape;
  return (int64_t)kb_elems(s->batch, sh.c, sh.h, sh.w);
}

// ---- the files ---------------------------------------------------------------------

void emit_provenance(FILE *out, const EmitFile *f, const char *what) {
  fprintf(out, "// %s: %s of model '%s' from %s.\n// Generated by caec %s: %s\n// Do not edit: change the "
               ".cae file and run caec again.\n",
          f->file, what, f->s->g->model_name, f->s->g->src->path, CAEC_VERSION, f->command);
}

void emit_header(FILE *out, const EmitFile *f) {
  const Step *s = f->s;
  const Graph *g = s->g;
  emit_provenance(out, f, "the interface");
  fprintf(out, "#ifndef CAEC_MODEL_%s_H\n#define CAEC_MODEL_%s_H\n\n#include \"trainer.h\"\n\n", g->model_name,
          g->model_name);
  Shape in = g->nodes[g->input].shape;
  fprintf(out, "// Batches x and outputs y are [%d,1,%d,%d] float32 (the shapes are compiled in).\n", s->batch,
          in.h, in.w);
  fprintf(out, "// Arenas (bytes, 64-byte aligned)%s:\n", s->planned ? "" : ", unplanned: every buffer on its own");
  static const char *const names[5] = {"params", "grads", "optim", "acts", "scratch"};
  for (int a = 0; a < 5; a++)
    fprintf(out, "//   %-8s %lld\n", names[a], (long long)s->arena_bytes[a]);
  if (!f->cuda) // the CUDA kernels have theirs in the device state
    fprintf(out, "// The kernels' workspace per thread (bytes): %lld\n", (long long)s->thread_work);
  fprintf(out, "// Parameters: name, shape, offset in floats into params (and grads).\n");
  for (int p = 0; p < g->nparams; p++) {
    const Buf *b = &s->bufs[s->param_buf[AR_PARAMS] + p];
    fprintf(out, "//   %-32s %-16s %lld%s\n", g->params[p].name, b->shape, (long long)b->offset / 4,
            g->params[p].trainable ? "" : " (running statistic)");
  }
  fprintf(out, "extern const CaecModel %s_model;\n\n#endif\n", g->model_name);
}

void emit_model(FILE *out, const EmitFile *f) {
  const Step *s = f->s;
  const Graph *g = s->g;
  const TrainConfig *t = &g->train;
  fprintf(out, "static const CaecParam params[%d] = {\n", g->nparams);
  for (int p = 0; p < g->nparams; p++) {
    const Param *pr = &g->params[p];
    const Node *n = &g->nodes[pr->node];
    bool kernel = pr->role == P_WEIGHT && (n->op == OP_CONV || n->op == OP_CONVT);
    bool ones = pr->role == P_RUNNING_VAR || (pr->role == P_WEIGHT && !kernel);
    double fans = kernel ? (double)(pr->dims[0] + pr->dims[1]) * pr->dims[2] * pr->dims[3] : 1;
    bool running = pr->role == P_RUNNING_MEAN || pr->role == P_RUNNING_VAR;
    fprintf(out, "    {\"%s\", %d, {%d, %d, %d, %d}, %lld, %lld, %s, %.17g, %s, %s, %.17g},\n", pr->name, pr->ndim,
            pr->dims[0], pr->dims[1], pr->dims[2], pr->dims[3], (long long)pr->numel,
            (long long)s->bufs[s->param_buf[AR_PARAMS] + p].offset / 4,
            kernel ? "CAEC_GLOROT" : ones ? "CAEC_ONES" : "CAEC_ZEROS", kernel ? sqrt(6.0 / fans) : 0.0,
            pr->trainable ? "true" : "false", pr->l2 ? "true" : "false", running ? n->momentum : 0.0);
  }
  fprintf(out, "};\n\n");
  Shape in = g->nodes[g->input].shape;
  static const char *const losses[] = {CAEC_LOSSES(CAEC_KIND_SPELLING)};
  static const char *const optims[] = {CAEC_OPTIMS(CAEC_KIND_SPELLING)};
  fprintf(out, "#if CAEC_ABI != %d\n#error \"generated by caec %s for the runtime's interface version %d, and "
               "these runtime headers are of another: generate it with the caec of these headers\"\n#endif\n",
          CAEC_ABI, CAEC_VERSION, CAEC_ABI);
  fprintf(out, "const CaecModel %s_model = {\n    .abi = %d,\n", g->model_name, CAEC_ABI);
  fprintf(out, "    .name = \"%s\",\n    .source = \"%s\",\n    .caec_version = \"%s\",\n", g->model_name,
          g->src->path, CAEC_VERSION);
  fprintf(out, "    .command = \"");
  for (const char *c = f->command; *c; c++)
    fprintf(out, *c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
  fprintf(out, "\",\n    .batch = %d,\n    .height = %d,\n    .width = %d,\n    .nparams = %d,\n    .params = params,\n",
          s->batch, in.h, in.w, g->nparams);
  fprintf(out, "    .arena_bytes = {%lld, %lld, %lld, %lld, %lld},\n", (long long)s->arena_bytes[0],
          (long long)s->arena_bytes[1], (long long)s->arena_bytes[2], (long long)s->arena_bytes[3],
          (long long)s->arena_bytes[4]);
  if (!f->cuda)
    fprintf(out, "    .thread_work_bytes = %lld,\n", (long long)s->thread_work);
  fprintf(out, "    .flops = %lld,\n", (long long)graph_totals(g).flops);
  fprintf(out, "    .defaults = {%s, %s, %.17g, %.17g, %.17g, %.17g, %.17g, %.17g, %.17g, true, false, %llu},\n",
          losses[t->loss], optims[t->optimizer], t->lr, t->rho, t->eps, t->beta1,
          t->beta2, t->momentum, t->l2, (unsigned long long)t->seed);
  fprintf(out, "    .schedule = {%d, %s, %d, %.17g, %s, %.17g, %.17g, %d, %.17g},\n", t->epochs,
          t->early_stopping ? "true" : "false", t->es_patience, isnan(t->es_min_delta) ? -1 : t->es_min_delta,
          t->reduce_lr ? "true" : "false", t->rl_factor, t->rl_min_lr, t->rl_patience,
          isnan(t->rl_min_delta) ? -1 : t->rl_min_delta);
  fprintf(out, "    .forward = forward,\n    .train_step = train_step,\n");
  if (f->cuda)
    fprintf(out, "    .state_new = state_new,\n    .state_free = cu_state_free,\n    .backend = cu_backend,\n");
  fprintf(out, "};\n\n");
  fprintf(out, "// The model that trainer_main.c runs; define CAEC_NO_MAIN_MODEL to link several models.\n"
               "#ifndef CAEC_NO_MAIN_MODEL\nconst CaecModel *const caec_main_model = &%s_model;\n#endif\n",
          g->model_name);
}

static void emit_source(FILE *out, const EmitFile *f) {
  const Step *s = f->s;
  Arena *a = f->c->arena;
  emit_provenance(out, f, "the training step and inference");
  fprintf(out, "#include \"%s.h\"\n\n#include \"kern.h\"\n#include \"rng.h\"\n\n", s->g->model_name);
  // A kernel the inference forward shares with the training step (same source, name aside) is emitted once.
  const char **fn = arena_alloc(a, sizeof(char *) * (size_t)(s->nkerns ? s->nkerns : 1));
  char **text = xcalloc((size_t)(s->nkerns ? s->nkerns : 1), sizeof(char *));
  for (int k = 0; k < s->nkerns; k++) {
    size_t len;
    FILE *m = emit_memstream(&text[k], &len);
    emit_kernel(m, s, k, "");
    fclose(m);
    for (int j = 0; j < k && !fn[k]; j++)
      if (!strcmp(text[j], text[k]))
        fn[k] = fn[j];
    if (!fn[k])
      emit_kernel(out, s, k, fn[k] = emit_kern_name(a, s, k));
  }
  for (int k = 0; k < s->nkerns; k++)
    free(text[k]);
  free(text);
  for (int p = 0; p < PROG_COUNT; p++)
    emit_program(out, s, p, a, fn);
  emit_model(out, f);
}

FILE *emit_memstream(char **text, size_t *len) {
  FILE *m = open_memstream(text, len);
  if (!m) {
    fprintf(stderr, "caec: error: out of memory\n");
    exit(1);
  }
  return m;
}

bool emit_write_file(Ctx *c, const char *path, void (*fill)(FILE *, const EmitFile *), const EmitFile *arg) {
  AtomicFile a;
  char err[2 * CAEC_PATH_BYTES + 256];
  if (!atomic_open(&a, path, err, sizeof err)) {
    fill(a.f, arg);
    if (!atomic_commit(&a, ferror(a.f) ? EIO : 0, err, sizeof err))
      return true;
  }
  fprintf(c->err, "caec: error: %s\n", err);
  return false;
}

bool emit_c(Ctx *c, const Step *s, const char *dir, const char *command) {
  const char *name = s->g->model_name;
  EmitFile h = {c, s, command, arena_printf(c->arena, "%s.h", name), false};
  EmitFile src = {c, s, command, arena_printf(c->arena, "%s.c", name), false};
  return emit_write_file(c, arena_printf(c->arena, "%s/%s.h", dir, name), emit_header, &h) &&
         emit_write_file(c, arena_printf(c->arena, "%s/%s.c", dir, name), emit_source, &src);
}
