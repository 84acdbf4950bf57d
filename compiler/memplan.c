// memplan.c: static memory planning over the whole step. Parameters, their
// gradients and the optimizer state are laid out one after another (they
// live across steps). Each program's activations and scratch buffers live from
// the first kernel that uses them to the last; two buffers share bytes only
// when those intervals are disjoint, so no kernel ever reads and writes the
// same memory through two names. Placement is greedy by size (Glow, TVM's
// USMP): largest first, at the lowest offset free over its lifetime. Both
// programs run one at a time, so they share the planned arenas. Without
// planning every buffer gets bytes of its own (the reference for the
// bitwise planned-vs-unplanned test).
#include "caec.h"

#include <stdlib.h>
#include <string.h>

static int64_t align(int64_t v) { return (v + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN; }

static void liveness(Step *s) {
  for (int i = 0; i < s->nbufs; i++)
    s->bufs[i].first = s->bufs[i].last = -1;
  for (int k = 0; k < s->nkerns; k++) {
    const Kern *kn = &s->kerns[k];
    int use[] = {kn->in.a, kn->in.b, kn->in2.a, kn->in2.b, kn->out.a, kn->out.b, kn->p[0], kn->p[1], kn->p[2],
                 kn->p[3], kn->p[4], kn->p[5], kn->aux[0], kn->aux[1], kn->work};
    for (size_t u = 0; u < sizeof use / sizeof *use; u++) {
      if (use[u] < 0)
        continue;
      Buf *b = &s->bufs[use[u]];
      if (b->first < 0)
        b->first = k;
      b->last = k;
    }
  }
}

static const Step *sort_step; // qsort has no context argument
static int by_size(const void *pa, const void *pb) {
  const Buf *a = &sort_step->bufs[*(const int *)pa], *b = &sort_step->bufs[*(const int *)pb];
  if (a->bytes != b->bytes)
    return a->bytes < b->bytes ? 1 : -1;
  return *(const int *)pa - *(const int *)pb;
}

static bool same_time(const Buf *a, const Buf *b) { return a->first <= b->last && b->first <= a->last; }

static int by_offset(const void *pa, const void *pb) {
  const Buf *a = *(const Buf *const *)pa, *b = *(const Buf *const *)pb;
  return (a->offset > b->offset) - (a->offset < b->offset);
}

// Places the used buffers of one program in one arena; returns the arena's size.
static int64_t place(Step *s, int prog, ArenaId arena, bool plan) {
  int *order = xmalloc(sizeof(int) * (size_t)s->nbufs), n = 0;
  for (int i = 0; i < s->nbufs; i++)
    if (s->bufs[i].prog == prog && s->bufs[i].arena == arena && s->bufs[i].first >= 0)
      order[n++] = i;
  sort_step = s;
  qsort(order, (size_t)n, sizeof *order, by_size);
  const Buf **live = xmalloc(sizeof(Buf *) * (size_t)(n ? n : 1));
  int64_t size = 0;
  for (int i = 0; i < n; i++) {
    Buf *b = &s->bufs[order[i]];
    b->offset = size;
    if (plan) { // the lowest gap, among the placed buffers live at the same time, that b fits in
      int m = 0;
      for (int j = 0; j < i; j++)
        if (same_time(b, &s->bufs[order[j]]))
          live[m++] = &s->bufs[order[j]];
      qsort(live, (size_t)m, sizeof *live, by_offset);
      int64_t at = 0;
      for (int j = 0; j < m && live[j]->offset < at + align(b->bytes); j++)
        at = live[j]->offset + align(live[j]->bytes) > at ? live[j]->offset + align(live[j]->bytes) : at;
      b->offset = at;
    }
    size = b->offset + align(b->bytes) > size ? b->offset + align(b->bytes) : size;
  }
  free(live);
  // The lower bound: the most bytes live at once.
  for (int k = s->prog_start[prog]; k < s->prog_start[prog + 1]; k++) {
    int64_t live = 0;
    for (int i = 0; i < n; i++)
      if (s->bufs[order[i]].first <= k && k <= s->bufs[order[i]].last)
        live += align(s->bufs[order[i]].bytes);
    s->max_live[arena] = live > s->max_live[arena] ? live : s->max_live[arena];
  }
  free(order);
  return size;
}

void plan_memory(Step *s, bool plan) {
  liveness(s);
  s->planned = plan;
  memset(s->arena_bytes, 0, sizeof s->arena_bytes);
  memset(s->max_live, 0, sizeof s->max_live);
  for (int i = 0; i < s->nbufs; i++) {
    Buf *b = &s->bufs[i];
    if (b->prog < 0 && b->arena != AR_IO) {
      b->offset = s->arena_bytes[b->arena];
      s->arena_bytes[b->arena] += align(b->bytes);
      s->max_live[b->arena] = s->arena_bytes[b->arena];
    }
  }
  for (int prog = 0; prog < PROG_COUNT; prog++)
    for (ArenaId a = AR_ACTS; a <= AR_SCRATCH; a++) {
      int64_t size = place(s, prog, a, plan);
      s->arena_bytes[a] = size > s->arena_bytes[a] ? size : s->arena_bytes[a];
    }
}

static const char *const arena_names[AR_COUNT] = {"params", "grads", "optim", "acts", "scratch", "io"};

void print_memory(FILE *out, const Step *s) {
  int64_t total = 0, live = 0;
  char b1[32], b2[32];
  for (int a = 0; a < AR_IO; a++) {
    fprintf(out, "  arena %-8s %14s bytes", arena_names[a], with_commas(b1, s->arena_bytes[a]));
    if (a >= AR_ACTS)
      fprintf(out, "   (max live %s)", with_commas(b2, s->max_live[a]));
    fputc('\n', out);
    total += s->arena_bytes[a];
    live += s->max_live[a];
  }
  fprintf(out, "memory: %s bytes in arenas at batch %d, max live %s, ratio %.2f%s\n", with_commas(b1, total),
          s->batch, with_commas(b2, live), total ? (double)live / (double)total : 1.0,
          s->planned ? "" : " (unplanned)");
}

void print_fusion(FILE *out, const Step *s) {
  static const char *const progs[PROG_COUNT] = {"train_step", "forward"};
  for (int p = 0; p < PROG_COUNT; p++) {
    fprintf(out, "%s: %d kernels\n", progs[p], s->prog_start[p + 1] - s->prog_start[p]);
    for (int k = s->prog_start[p]; k < s->prog_start[p + 1]; k++) {
      const Kern *kn = &s->kerns[k];
      Loc at = s->g->nodes[kn->node].loc;
      fprintf(out, "  k%-4d %-14s %s:%d: %s\n", k - s->prog_start[p], kern_name(kn), at.src->path, at.line,
              kn->covers);
    }
  }
}
