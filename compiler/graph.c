// graph.c: the layer graph's queries (totals, aliases looked through) and its
// printers: the layer table of `caec check`, the typed SSA text of `caec ir`,
// and Graphviz DOT for `caec graph`.
#include "caec.h"

#include <math.h>
#include <string.h>

Totals graph_totals(const Graph *g) {
  Totals t = {0};
  for (int i = 0; i < g->nparams; i++) {
    t.params += g->params[i].numel;
    if (g->params[i].trainable)
      t.trainable += g->params[i].numel;
    else
      t.nontrainable += g->params[i].numel;
  }
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = &g->nodes[i];
    t.flops += n->flops;
    t.act_bytes += 4 * (int64_t)n->shape.c * n->shape.h * n->shape.w;
  }
  return t;
}

int graph_resolve(const Graph *g, int i) {
  while (op_fuses(g->nodes[i].op, F_ALIAS))
    i = g->nodes[i].in[0];
  return i;
}

static int64_t node_params(const Graph *g, const Node *n) {
  int64_t s = 0;
  for (int j = 0; j < n->nparams; j++)
    s += g->params[n->first_param + j].numel;
  return s;
}

static bool has_alpha(const Node *n) { return n->op != OP_INPUT && op_info(n->op)->alpha; }

// "conv 3x3 s2" and the like: the op with the attributes that matter at a glance.
static const char *op_summary(Arena *a, const Node *n) {
  switch (n->op) {
  case OP_CONV:
  case OP_CONVT:
    return n->stride == 1 ? arena_printf(a, "%s %dx%d", op_name(n->op), n->k, n->k)
                          : arena_printf(a, "%s %dx%d s%d", op_name(n->op), n->k, n->k, n->stride);
  case OP_GN: return arena_printf(a, "gn g%d", n->groups);
  case OP_SPATIAL_DROPOUT: return arena_printf(a, "spatial_dropout %g", n->rate);
  default: return has_alpha(n) ? arena_printf(a, "%s %g", op_name(n->op), n->alpha) : op_name(n->op);
  }
}

static const char *loc_str(Arena *a, Loc l) {
  const char *slash = strrchr(l.src->path, '/');
  return arena_printf(a, "%s:%d", slash ? slash + 1 : l.src->path, l.line);
}

void print_table(FILE *out, Arena *a, const Graph *g) {
  int wname = 5;
  for (int i = 0; i < g->nnodes; i++)
    if ((int)strlen(g->nodes[i].name) > wname)
      wname = (int)strlen(g->nodes[i].name);
  fprintf(out, "model %s (%s)\n", g->model_name, g->src->path);
  fprintf(out, "%4s  %-*s  %-18s %-16s %10s  %10s  %s\n", "#", wname, "layer", "op", "output", "params",
          "MFLOP/img", "l2");
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = &g->nodes[i];
    char p[32];
    fprintf(out, "%4d  %-*s  %-18s %-16s %10s  %10.2f%s\n", i, wname, n->name, op_summary(a, n),
            shape_str(a, g, n->shape), with_commas(p, node_params(g, n)), (double)n->flops / 1e6,
            n->l2 ? "  yes" : "");
  }
  Totals t = graph_totals(g);
  char tot[32], tr[32], nt[32];
  fprintf(out, "params: %s (trainable %s, non-trainable %s)\n", with_commas(tot, t.params),
          with_commas(tr, t.trainable), with_commas(nt, t.nontrainable));
  fprintf(out, "forward: %.3f GFLOP per image, activations %.2f MiB per image\n", (double)t.flops / 1e9,
          (double)t.act_bytes / (1 << 20));
}

static void print_real(FILE *out, const char *key, double v) {
  if (isnan(v))
    fprintf(out, "%s=auto", key);
  else
    fprintf(out, "%s=%g", key, v);
}

static void print_train(FILE *out, const TrainConfig *t) {
  fprintf(out, "train loss=%s optimizer=%s(lr=%g", caec_loss_name(t->loss), caec_optim_name(t->optimizer), t->lr);
  if (t->optimizer == CAEC_RMSPROP)
    fprintf(out, ", rho=%g, eps=%g)", t->rho, t->eps);
  else if (t->optimizer == CAEC_ADAM)
    fprintf(out, ", beta1=%g, beta2=%g, eps=%g)", t->beta1, t->beta2, t->eps);
  else
    fprintf(out, ", momentum=%g)", t->momentum);
  fprintf(out, " batch=%d epochs=%d l2=%g seed=%llu\n", t->batch, t->epochs, t->l2, (unsigned long long)t->seed);
  if (t->early_stopping) {
    fprintf(out, "  early_stopping=on(patience=%d, ", t->es_patience);
    print_real(out, "min_delta", t->es_min_delta);
    fprintf(out, ", restore_best=%s)\n", t->es_restore_best ? "true" : "false");
  } else {
    fprintf(out, "  early_stopping=off\n");
  }
  if (t->reduce_lr) {
    fprintf(out, "  reduce_lr=on(factor=%g, patience=%d, min_lr=%g, ", t->rl_factor, t->rl_patience, t->rl_min_lr);
    print_real(out, "min_delta", t->rl_min_delta);
    fprintf(out, ")\n");
  } else {
    fprintf(out, "  reduce_lr=off\n");
  }
}

// A node's arguments, in the order of its row's ARGS (shapes.c), the padding resolved.
static void print_args(FILE *out, const Node *n) {
  if (n->op == OP_INPUT)
    return;
  const OpInfo *info = op_info(n->op);
  for (const OpArg *arg = info->args; arg < info->args + 6 && arg->key; arg++) {
    const char *field = (const char *)n + arg->offset;
    switch (arg->type) {
    case A_INT: fprintf(out, " %s=%d", arg->key, *(const int *)field); break;
    case A_FLOAT: fprintf(out, " %s=%g", arg->key, *(const double *)field); break;
    case A_BOOL:
      if (*(const bool *)field)
        fprintf(out, " %s", arg->key);
      break;
    case A_PAD: fprintf(out, " %s=(%d,%d,%d,%d)", arg->key, n->pad[0], n->pad[1], n->pad[2], n->pad[3]); break;
    }
  }
}

void print_ir(FILE *out, Arena *a, const Graph *g) {
  fprintf(out, "model %s\n", g->model_name);
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = &g->nodes[i];
    fprintf(out, "%%%d %s = %s(", i, n->name, op_name(n->op));
    for (int j = 0; j < n->nin; j++)
      fprintf(out, "%s%%%d", j ? ", " : "", n->in[j]);
    fputc(')', out);
    print_args(out, n);
    fprintf(out, " : %s  # %s, %lld FLOP/img, %lld B/img\n", shape_str(a, g, n->shape), loc_str(a, n->loc),
            (long long)n->flops, (long long)n->bytes);
    for (int j = 0; j < n->nparams; j++) {
      const Param *p = &g->params[n->first_param + j];
      fprintf(out, "    param %s [", p->name);
      for (int d = 0; d < p->ndim; d++)
        fprintf(out, "%s%d", d ? "," : "", p->dims[d]);
      fprintf(out, "]%s%s\n", p->trainable ? " trainable" : "", p->l2 ? " l2" : "");
    }
  }
  fprintf(out, "output %%%d\n", g->output);
  print_train(out, &g->train);
}

void print_dot(FILE *out, Arena *a, const Graph *g) {
  fprintf(out, "digraph \"%s\" {\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\", fontsize=10];\n",
          g->model_name);
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = &g->nodes[i];
    const char *style = n->op == OP_INPUT || i == g->output ? ", style=filled, fillcolor=\"#dde8f7\""
                        : n->nparams                        ? ", style=filled, fillcolor=\"#f7ecd5\""
                                                            : "";
    fprintf(out, "  n%d [label=\"%s\\n%s\\n%s\"%s];\n", i, n->name, op_summary(a, n), shape_str(a, g, n->shape), style);
  }
  for (int i = 0; i < g->nnodes; i++)
    for (int j = 0; j < g->nodes[i].nin; j++)
      fprintf(out, "  n%d -> n%d;\n", g->nodes[i].in[j], i);
  fprintf(out, "}\n");
}

// The graph as JSON, for tools outside C (the PyTorch cross-check builds the
// same model from it). Names are identifiers and dots, so need no escaping.
// pad is the padding caec resolved; pad_mode says whether it was same, valid
// or given explicitly, so that a checker can resolve same and valid itself.
void print_json(FILE *out, Arena *a, const Graph *g) {
  (void)a;
  static const char *const pad_modes[] = {[PAD_SAME] = "same", [PAD_VALID] = "valid", [PAD_EXPLICIT] = "explicit"};
  fprintf(out, "{\n  \"model\": \"%s\",\n  \"input\": %d,\n  \"output\": %d,\n  \"nodes\": [\n", g->model_name,
          g->input, g->output);
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = &g->nodes[i];
    fprintf(out, "    {\"id\": %d, \"name\": \"%s\", \"op\": \"%s\", \"inputs\": [", i, n->name, op_name(n->op));
    for (int j = 0; j < n->nin; j++)
      fprintf(out, "%s%d", j ? ", " : "", n->in[j]);
    fprintf(out, "], \"shape\": [%d, %d, %d], \"out\": %d, \"k\": %d, \"stride\": %d, \"pad_mode\": \"%s\", ",
            n->shape.c, n->shape.h, n->shape.w, n->out_ch, n->k, n->stride, pad_modes[n->pad_mode]);
    fprintf(out, "\"pad\": [%d, %d, %d, %d], ", n->pad[0], n->pad[1], n->pad[2], n->pad[3]);
    fprintf(out, "\"eps\": %.17g, \"momentum\": %.17g, \"alpha\": %.17g, \"rate\": %.17g, \"groups\": %d}%s\n",
            n->eps, n->momentum, n->alpha, n->rate, n->groups, i + 1 < g->nnodes ? "," : "");
  }
  fprintf(out, "  ],\n  \"params\": [\n");
  static const char *roles[] = {"weight", "bias", "running_mean", "running_var"};
  for (int p = 0; p < g->nparams; p++) {
    const Param *pr = &g->params[p];
    fprintf(out, "    {\"name\": \"%s\", \"node\": %d, \"role\": \"%s\", \"trainable\": %s, \"l2\": %s, \"shape\": [",
            pr->name, pr->node, roles[pr->role], pr->trainable ? "true" : "false", pr->l2 ? "true" : "false");
    for (int d = 0; d < pr->ndim; d++)
      fprintf(out, "%s%d", d ? ", " : "", pr->dims[d]);
    fprintf(out, "]}%s\n", p + 1 < g->nparams ? "," : "");
  }
  fprintf(out, "  ]\n}\n");
}
