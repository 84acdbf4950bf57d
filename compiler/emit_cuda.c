// emit_cuda.c: the step programs -> a CUDA trainer, from the same kernels,
// fusion decisions and memory plan as the C back end. For model NAME it writes
//   NAME.h   the interface, as for C;
//   NAME.cu  one CU_KERNEL per launch: the .cae line it comes from, its
//            buffers with their shapes and arena offsets, and a call of a device
//            op of runtime/cuda/cu_kern.cuh with literal shapes. nvcc compiles it for
//            the GPU, a C compiler for the emulator (and NVRTC in tests/cuda);
//   NAME.c   the host side: the two programs as tables of launches (kernel,
//            grid), run by runtime/cuda/cu_host.c, and the CaecModel.
// An op of several launches (a reduction and its second stage) is one kernel
// per stage, named _s0, _s1, ...
#include "caec.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

// The device pointer of buffer id as the kernel's parameter `name` sees it.
static void emit_buffer(FILE *out, const Step *s, const Kern *k, int r, int id, const char *name) {
  const Buf *b = &s->bufs[id];
  const char *type = emit_buf_type(b), *cst = emit_writes(k, r) ? "" : "const ";
  char where[96];
  if (k->kind == K_LOSS && r == R_IN2) // the clean image when the caller gives one, else x
    snprintf(where, sizeof where, "A.target");
  else if (b->arena == AR_IO)
    snprintf(where, sizeof where, id == s->param_buf[AR_IO] ? "A.x" : "A.y");
  else if (b->arena == AR_ACTS || b->arena == AR_SCRATCH)
    snprintf(where, sizeof where, "(%s%s *)(A.%s + %lld)", cst, type, b->arena == AR_ACTS ? "acts" : "scratch",
             (long long)b->offset);
  else
    snprintf(where, sizeof where, "A.%s + %lld",
             b->arena == AR_PARAMS ? "params" : b->arena == AR_GRADS ? "grads" : "optim", (long long)b->offset / 4);
  fprintf(out, "  %s%s *%s = %s; // %s\n", cst, type, name, where, b->shape);
}

// Does the identifier name occur in text?
static bool mentions(const char *text, const char *name) {
  size_t len = strlen(name);
  for (const char *p = strstr(text, name); p; p = strstr(p + 1, name)) {
    bool before = p > text && (p[-1] == '_' || isalnum((unsigned char)p[-1]));
    bool after = p[len] == '_' || isalnum((unsigned char)p[len]);
    if (!before && !after)
      return true;
  }
  return false;
}

// One launch of kernel idx: the buffers its call uses, then the call for this stage.
static CuPlan emit_launch_body(FILE *out, const Step *s, int idx, int stage) {
  const Kern *k = &s->kerns[idx];
  char *body;
  size_t len;
  FILE *m = emit_memstream(&body, &len);
  CuPlan plan = emit_body(&(Emit){.out = m, .s = s, .cuda = true, .stage = stage}, k);
  fclose(m);
  int buf[R_COUNT], second[R_COUNT];
  emit_role_bufs(k, buf, second);
  for (int r = 0; r < R_COUNT; r++) {
    const char *name = emit_role(k, r);
    if (!name || buf[r] < 0 || r == R_WORK) // the C kernels' workspace
      continue;
    if (mentions(body, name))
      emit_buffer(out, s, k, r, buf[r], name);
    char b[64];
    snprintf(b, sizeof b, "%s_b", name);
    if (second[r] >= 0 && mentions(body, b))
      emit_buffer(out, s, k, r, second[r], b);
  }
  fputs(body, out);
  free(body);
  return plan;
}

// The optimizer updates of a program's parameters (kernels first..last, all K_UPDATE), in one
// launch: a table of the parameters, and cu_update over all their values.
static CuPlan update_body(FILE *m, const Step *s, int first, int last, const char *name) {
  int n = last - first + 1;
  fprintf(m, "// The optimizer update of %d parameters, with their L2 terms, in one launch.\n", n);
  fprintf(m, "CU_KERNEL(%s) {\n  // Per parameter: its first value in the launch, count; offsets in floats into "
             "params, grads\n  // and optim; in the L2 term.\n  static const CuParamSpan spans[%d] = {\n", name, n);
  int64_t total = 0;
  for (int i = first; i <= last; i++) {
    const Kern *k = &s->kerns[i];
    const Param *p = &s->g->params[k->param];
    fprintf(m, "      {%lld, %lld, %lld, %lld, %lld, %d}, // %s %s\n", (long long)total, (long long)p->numel,
            (long long)s->bufs[k->p[KP_PARAM]].offset / 4, (long long)s->bufs[k->p[KP_GRAD]].offset / 4,
            (long long)s->bufs[k->p[KP_OPTIM]].offset / 4, p->l2, p->name, s->bufs[k->p[KP_PARAM]].shape);
    total += p->numel;
  }
  fprintf(m, "  };\n  cu_update(A.hyper, A.params, A.grads, A.optim, %d, spans);\n}\n\n", n);
  return cu_plan_elems(total);
}

// The source of kernel idx (of kernels idx..last when they are a program's updates), for comparison
// and output; its plan in *plan.
static char *kernel_text(const Step *s, int idx, int last, int stage, const char *name, CuPlan *plan) {
  char *text;
  size_t len;
  FILE *m = emit_memstream(&text, &len);
  if (s->kerns[idx].kind == K_UPDATE) {
    *plan = update_body(m, s, idx, last, name);
  } else {
    emit_source_line(m, s, &s->kerns[idx]);
    fprintf(m, "CU_KERNEL(%s) {\n", name);
    *plan = emit_launch_body(m, s, idx, stage);
    fprintf(m, "}\n\n");
  }
  fclose(m);
  return text;
}

typedef struct Launch {
  const char *fn;    // its kernel (shared by identical launches of the two programs)
  unsigned grid[3];
  int kern;
} Launch;

typedef struct Launches {
  Launch *items;
  int n, cap;
  const char **kernels; // the distinct kernels, in the order of NAME.cu
  int nkernels, kernels_cap;
  int64_t work_bytes;   // the most any op needs
} Launches;

// The kernels into out (each distinct one once) and the launches of both programs.
static Launches emit_kernels(FILE *out, Arena *a, const Step *s) {
  Launches ls = {0};
  typedef struct Seen { char *text; const char *fn; } Seen; // the kernels emitted, by their text without a name
  Seen *seen = NULL;
  int nseen = 0, cap = 0;
  for (int idx = 0; idx < s->nkerns; idx++) {
    // A program's parameter updates are one launch, made at the first of them.
    int prog = idx >= s->prog_start[PROG_FORWARD], last = idx;
    bool update = s->kerns[idx].kind == K_UPDATE;
    if (update && idx > s->prog_start[prog] && s->kerns[idx - 1].kind == K_UPDATE)
      continue;
    while (update && last + 1 < s->prog_start[prog + 1] && s->kerns[last + 1].kind == K_UPDATE)
      last++;
    CuPlan plan = {.stages = 1};
    for (int stage = 0; stage < plan.stages; stage++) {
      char *text = kernel_text(s, idx, last, stage, "", &plan);
      if (plan.work_bytes > ls.work_bytes)
        ls.work_bytes = plan.work_bytes;
      const char *fn = NULL;
      for (int j = 0; j < nseen && !fn; j++)
        if (!strcmp(seen[j].text, text))
          fn = seen[j].fn;
      if (!fn) {
        const char *base = emit_kern_name(a, s, idx);
        fn = plan.stages > 1 ? arena_printf(a, "%s_s%d", base, stage) : base;
        char *named = kernel_text(s, idx, last, stage, fn, &plan);
        fputs(named, out);
        free(named);
        *ARENA_PUSH(a, seen, nseen, cap) = (Seen){arena_strndup(a, text, strlen(text)), fn};
        *ARENA_PUSH(a, ls.kernels, ls.nkernels, ls.kernels_cap) = fn;
      }
      free(text);
      Launch *l = ARENA_PUSH(a, ls.items, ls.n, ls.cap);
      *l = (Launch){fn, {plan.grid[stage][0], plan.grid[stage][1], plan.grid[stage][2]}, idx};
    }
  }
  return ls;
}

// The CUDA files' fill arguments: the kernels, emitted once for both files.
typedef struct CudaFile {
  EmitFile f; // first, so that the fill callbacks' EmitFile is this
  const char *kernels; // NAME.cu's kernels
  const Launches *ls;
} CudaFile;

static void emit_device(FILE *out, const EmitFile *f) {
  emit_provenance(out, f, "the CUDA kernels of the training step and inference");
  fprintf(out, "#include \"cu_kern.cuh\"\n\n");
  fputs(((const CudaFile *)f)->kernels, out);
}

static void emit_programs(FILE *out, const Step *s, const Launches *ls) {
  static const char *const what[PROG_COUNT] = {
      "One training step: forward (training mode), loss, backward, optimizer update.",
      "Inference: batch norm on the running statistics, no dropout."};
  static const char *const names[PROG_COUNT] = {"train_launches", "forward_launches"};
  for (int p = 0; p < PROG_COUNT; p++) {
    fprintf(out, "// %s\nstatic const CuLaunch %s[] = {\n", what[p], names[p]);
    for (int i = 0; i < ls->n; i++) {
      const Launch *l = &ls->items[i];
      if (l->kern < s->prog_start[p] || l->kern >= s->prog_start[p + 1])
        continue;
      const Node *n = &s->g->nodes[s->kerns[l->kern].node];
      fprintf(out, "    {\"%s\", %s, {%u, %u, %u}}, // %s:%d\n", l->fn, l->fn, l->grid[0], l->grid[1], l->grid[2],
              n->loc.src ? n->loc.src->path : "?", n->loc.line);
    }
    fprintf(out, "};\n\n");
  }
}

static void emit_host(FILE *out, const EmitFile *f) {
  const Step *s = f->s;
  emit_provenance(out, f, "the host side of the CUDA trainer");
  fprintf(out, "#include \"%s.h\"\n\n#include \"cu_host.h\"\n\n", s->g->model_name);
  const Launches *ls = ((const CudaFile *)f)->ls;
  fprintf(out, "// The kernels of %s.cu.\n", s->g->model_name);
  for (int i = 0; i < ls->nkernels; i++)
    fprintf(out, "CU_KERNEL(%s);\n", ls->kernels[i]);
  fprintf(out, "\n");
  emit_programs(out, s, ls);
  fprintf(out, "static const CuModel cuda = {\n"
               "    .train = {train_launches, sizeof train_launches / sizeof *train_launches},\n"
               "    .forward = {forward_launches, sizeof forward_launches / sizeof *forward_launches},\n"
               "    .work_bytes = %lld,\n};\n\n",
          (long long)ls->work_bytes);
  fprintf(out, "static double train_step(CaecState *s, const CaecHyper *h, const float *x, float *y) {\n"
               "  return cu_train_step(&cuda, s, h, x, y);\n}\n\n"
               "static void forward(CaecState *s, const float *x, float *y) { cu_forward(&cuda, s, x, y); }\n\n"
               "static bool state_new(const CaecModel *m, CaecState *s) { return cu_state_new(&cuda, m, s); }\n\n");
  emit_model(out, f);
}

bool emit_cuda(Ctx *c, const Step *s, const char *dir, const char *command) {
  const char *name = s->g->model_name;
  char *kernels;
  size_t len;
  FILE *m = emit_memstream(&kernels, &len);
  Launches ls = emit_kernels(m, c->arena, s);
  fclose(m);
  EmitFile h = {c, s, command, arena_printf(c->arena, "%s.h", name), true};
  CudaFile dev = {{c, s, command, arena_printf(c->arena, "%s.cu", name), true}, kernels, &ls};
  CudaFile host = {{c, s, command, arena_printf(c->arena, "%s.c", name), true}, kernels, &ls};
  bool ok = emit_write_file(c, arena_printf(c->arena, "%s/%s.h", dir, name), emit_header, &h) &&
            emit_write_file(c, arena_printf(c->arena, "%s/%s.cu", dir, name), emit_device, &dev.f) &&
            emit_write_file(c, arena_printf(c->arena, "%s/%s.c", dir, name), emit_host, &host.f);
  free(kernels);
  return ok;
}
