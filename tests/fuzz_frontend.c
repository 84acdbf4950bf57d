// fuzz_frontend.c: the whole front end (lexer, parser, elaboration, shapes,
// printers) on arbitrary bytes, then the lowering to a training step (fusion,
// autodiff, memory plan) of the graphs that can be trainers. Beyond the
// sanitizers it checks that a successful compile reports no error and yields
// a well-formed SSA graph, and that planned buffers never share bytes while
// both are live.
#include "caec.h"

#include <stdlib.h>

static void check_graph(const Graph *g) {
  if (g->nnodes < 2 || g->input != 0 || g->output != g->nnodes - 1)
    abort();
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = &g->nodes[i];
    if (n->id != i || n->shape.c < 1 || n->shape.h < 1 || n->shape.w < 1)
      abort();
    for (int j = 0; j < n->nin; j++)
      if (n->in[j] < 0 || n->in[j] >= i)
        abort();
    for (int j = 0; j < n->nparams; j++)
      if (g->params[n->first_param + j].node != i)
        abort();
  }
}

static void check_plan(const Step *s) {
  for (int i = 0; i < s->nbufs; i++)
    for (int j = i + 1; j < s->nbufs; j++) {
      const Buf *a = &s->bufs[i], *b = &s->bufs[j];
      if (a->arena == b->arena && a->prog == b->prog && a->prog >= 0 && a->first >= 0 && b->first >= 0 &&
          a->first <= b->last && b->first <= a->last && a->offset < b->offset + b->bytes &&
          b->offset < a->offset + a->bytes)
        abort();
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  static FILE *sink;
  if (!sink && !(sink = fopen("/dev/null", "w")))
    abort();
  Ctx ctx = {.arena = arena_new(), .err = sink, .no_imports = true};
  Source *src = source_from_memory(&ctx, "fuzz.cae", (const char *)data, size);
  Graph *g = compile_source(&ctx, src);
  if (g) {
    if (ctx.errors)
      abort();
    check_graph(g);
    print_table(sink, ctx.arena, g);
    print_ir(sink, ctx.arena, g);
    print_dot(sink, ctx.arena, g);
    if (reconstructs(g) && g->nnodes <= 500) { // bigger graphs: slow to check pairwise, not different
      Step *s = build_step(ctx.arena, g, 2, false, NULL);
      plan_memory(s, true);
      check_plan(s);
      print_fusion(sink, s);
      print_memory(sink, s);
    }
  } else if (!ctx.errors) {
    abort(); // a failed compile must say why
  }
  arena_free(ctx.arena);
  return 0;
}
