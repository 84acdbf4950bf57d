// problem.c: benchmark problems: canonical names, shapes, work, and the scan
// of generated trainer sources (problem.h).
#include "problem.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

Kernel problem_kernel(const Problem *p) {
  if (p->pass == PASS_BWD_WEIGHTS)
    return KERNEL_WGRAD;
  return (p->op == OP_CONV) == (p->pass == PASS_FWD) ? KERNEL_GATHER : KERNEL_SCATTER;
}

Shape problem_image(const Problem *p) { return (Shape){p->g.ic, p->g.ih, p->g.iw}; }
Shape problem_grid(const Problem *p) { return (Shape){p->g.gc, p->g.gh, p->g.gw}; }

// The op's input and output: conv reads the image and writes the grid, convT the reverse.
static Shape op_input(const Problem *p) { return p->op == OP_CONV ? problem_image(p) : problem_grid(p); }
static Shape op_output(const Problem *p) { return p->op == OP_CONV ? problem_grid(p) : problem_image(p); }

Shape problem_input(const Problem *p) { return p->pass == PASS_BWD_DATA ? op_output(p) : op_input(p); }
Shape problem_output(const Problem *p) { return p->pass == PASS_BWD_DATA ? op_input(p) : op_output(p); }
int problem_bias_channels(const Problem *p) { return op_output(p).c; }

Problem problem_at_batch(const Problem *p, int n) {
  Problem q = *p;
  q.g.n = n;
  return q;
}

// ---- names ---------------------------------------------------------------------------------------

static void append(char *name, const char *fmt, int v) {
  size_t len = strlen(name);
  snprintf(name + len, NAME_BYTES - len, fmt, v);
}

static const char *pro_token(bool bn, bool relu) { return bn ? (relu ? "bnrelu" : "bn") : relu ? "relu" : NULL; }

static void side_tokens(char *name, const char *prefix, const Side *s) {
  char fmt[32];
  if (s->cat) {
    snprintf(fmt, sizeof fmt, "+%s_cat%%d", prefix);
    append(name, fmt, s->cat);
  }
  for (int piece = 0; piece < 2; piece++) {
    const char *t = pro_token(s->bn[piece], s->relu[piece]);
    if (t) {
      snprintf(fmt, sizeof fmt, "+%s_%s%s", prefix, piece ? "b_" : "", t);
      strncat(name, fmt, NAME_BYTES - strlen(name) - 1);
    }
  }
}

void problem_name(const Problem *p, char name[NAME_BYTES]) {
  kc_problem_name(name, NAME_BYTES, p->op == OP_CONVT, (int)p->pass, &p->g);
  side_tokens(name, "in", &p->in);
  side_tokens(name, "dy", &p->dy);
  if (p->out_cat)
    append(name, "+out_cat%d", p->out_cat);
  const char *flags[] = {"+out_acc", "+out_b_acc", "+bias", "+res", "+relu", "+stats"};
  const bool on[] = {p->acc[0], p->acc[1], p->bias, p->res, p->relu, p->stats};
  for (int i = 0; i < 6; i++)
    if (on[i])
      strncat(name, flags[i], NAME_BYTES - strlen(name) - 1);
}

// Consumes the literal lit at *s.
static bool take(const char **s, const char *lit) {
  size_t n = strlen(lit);
  if (strncmp(*s, lit, n))
    return false;
  *s += n;
  return true;
}

// Consumes key and a positive integer.
static bool number(const char **s, const char *key, int *v) {
  const char *t = *s;
  if (!take(&t, key) || !isdigit((unsigned char)*t))
    return false;
  char *end;
  long x = strtol(t, &end, 10);
  if (x < 0 || x > 1 << 20)
    return false;
  *v = (int)x, *s = end;
  return true;
}

// A token in_..., dy_... for side s; false when it is not one.
static bool side_token(const char *t, const char *prefix, Side *s) {
  if (!take(&t, prefix))
    return false;
  if (number(&t, "cat", &s->cat))
    return !*t;
  int piece = take(&t, "b_");
  bool bn = take(&t, "bn"), relu = take(&t, "relu");
  s->bn[piece] = bn, s->relu[piece] = relu;
  return (bn || relu) && !*t;
}

static bool feature(const char *t, Problem *p) {
  bool *flags[] = {&p->acc[0], &p->acc[1], &p->bias, &p->res, &p->relu, &p->stats};
  const char *names[] = {"out_acc", "out_b_acc", "bias", "res", "relu", "stats"};
  for (int i = 0; i < 6; i++)
    if (!strcmp(t, names[i]))
      return *flags[i] = true;
  const char *c = t;
  return side_token(t, "in_", &p->in) || side_token(t, "dy_", &p->dy) || (number(&c, "out_cat", &p->out_cat) && !*c);
}

// The op's geometry from its input and output shapes.
static KConv geometry(Op op, int n, Shape in, Shape out, int k, int s, int pt, int pl) {
  Shape image = op == OP_CONV ? in : out, grid = op == OP_CONV ? out : in;
  return (KConv){n, grid.c, grid.h, grid.w, image.c, image.h, image.w, k, s, pt, pl};
}

// A second piece, and its prologue, only when split; a split on a block boundary.
static bool valid_side(const Side *s, int c) {
  return s->cat ? s->cat % KB == 0 && s->cat < c : !s->bn[1] && !s->relu[1];
}

// What the runtime's kernels accept (kern.h).
static bool valid(const Problem *p) {
  const KConv *g = &p->g;
  const bool wgrad = problem_kernel(p) == KERNEL_WGRAD, epilogue = p->res || p->relu || p->stats;
  if (g->n < 1 || g->gc < 1 || g->ic < 1 || g->gh < 1 || g->gw < 1 || g->ih < 1 || g->iw < 1 || g->k < 1 || g->k > 16 ||
      g->stride < 1)
    return false;
  if (!valid_side(&p->in, problem_input(p).c) || (p->out_cat && (p->out_cat % KB || p->out_cat >= problem_output(p).c)))
    return false;
  if (wgrad)
    return valid_side(&p->dy, problem_output(p).c) && !p->out_cat && !p->acc[0] && !p->acc[1] && !epilogue;
  const Side *dy = &p->dy;
  const bool no_dy = !dy->cat && !dy->bn[0] && !dy->bn[1] && !dy->relu[0] && !dy->relu[1];
  return no_dy && !(p->out_cat && epilogue) && !(p->acc[1] && !p->out_cat);
}

bool problem_parse(const char *name, Problem *p) {
  *p = (Problem){0};
  const char *s = name;
  int op = take(&s, "convt_") ? OP_CONVT : take(&s, "conv_") ? OP_CONV : -1;
  int pass = take(&s, "fwd_")           ? PASS_FWD
             : take(&s, "bwd_data_")    ? PASS_BWD_DATA
             : take(&s, "bwd_weights_") ? PASS_BWD_WEIGHTS
                                        : -1;
  int n = 0, k = 0, st = 0, pt = 0;
  Shape in = {0}, out = {0};
  bool ok = op >= 0 && pass >= 0 && number(&s, "mb", &n) && number(&s, "_ic", &in.c) && number(&s, "oc", &out.c) &&
            number(&s, "_ih", &in.h);
  in.w = in.h; // widths and the left padding are optional: square images, symmetric padding
  if (ok)
    number(&s, "iw", &in.w);
  ok = ok && number(&s, "oh", &out.h);
  out.w = out.h;
  if (ok)
    number(&s, "ow", &out.w);
  ok = ok && number(&s, "_k", &k) && number(&s, "s", &st) && number(&s, "p", &pt);
  int pl = pt;
  if (ok)
    number(&s, "x", &pl);
  p->op = (Op)op, p->pass = (Pass)pass;
  p->g = geometry(p->op, n, in, out, k, st, pt, pl);
  while (ok && *s) {
    char token[NAME_BYTES];
    size_t len = strcspn(s + 1, "+");
    ok = *s == '+' && len < sizeof token;
    if (ok) {
      memcpy(token, s + 1, len), token[len] = 0;
      ok = feature(token, p);
      s += 1 + len;
    }
  }
  char canonical[NAME_BYTES];
  if (ok && valid(p))
    problem_name(p, canonical);
  if (!ok || !valid(p) || strcmp(canonical, name)) {
    fprintf(stderr, "kernels: '%s' is not a problem name%s%s (bench/README.md)\n", name,
            ok && valid(p) ? "; its canonical form is " : "", ok && valid(p) ? canonical : "");
    return false;
  }
  return true;
}

// ---- work ----------------------------------------------------------------------------------------

// (grid position, tap) pairs of one dimension whose image position lies inside the image.
static double taps(int grid, int image, int k, int stride, int pad) {
  long count = 0;
  for (int i = 0; i < grid; i++)
    for (int a = 0; a < k; a++) {
      int r = i * stride + a - pad;
      count += r >= 0 && r < image;
    }
  return (double)count;
}

double problem_flops(const Problem *p) {
  const KConv *g = &p->g;
  return 2.0 * g->n * g->gc * g->ic * taps(g->gh, g->ih, g->k, g->stride, g->pad_top) *
         taps(g->gw, g->iw, g->k, g->stride, g->pad_left);
}

static double floats(int n, Shape s) { return (double)n * s.c * s.h * s.w; }

double problem_bytes(const Problem *p) {
  const KConv *g = &p->g;
  const Shape in = problem_input(p), out = problem_output(p);
  double weights = (double)g->gc * g->ic * g->k * g->k, bias = p->bias ? problem_bias_channels(p) : 0;
  if (problem_kernel(p) == KERNEL_WGRAD)
    return 4 * (floats(g->n, in) + floats(g->n, out) + weights + bias);
  // Outputs added to are read too; a split output's pieces are added to separately.
  double out_floats = floats(g->n, out), acc_share = 0;
  for (int piece = 0; piece < 2; piece++) {
    int c0 = piece ? p->out_cat : 0, c1 = piece || !p->out_cat ? out.c : p->out_cat;
    acc_share += p->acc[piece] && c1 > c0 ? (double)(c1 - c0) / out.c : 0;
  }
  double stats = p->stats ? 8.0 * 2 * KB * kb_blocks(out.c) * g->n * out.h : 0; // doubles, per image and row
  return 4 * (floats(g->n, in) + weights + bias + out_floats * (1 + acc_share + p->res)) + stats;
}

// ---- generated sources ---------------------------------------------------------------------------

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  for (size_t got; buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
    len += got;
    if (len + 1 == cap)
      buf = realloc(buf, cap *= 2);
  }
  bool bad = ferror(f);
  fclose(f);
  if (buf)
    buf[len] = 0;
  if (bad)
    free(buf), buf = NULL;
  return buf;
}

// The arguments of the call whose '(' is at s: split at top-level commas, trimmed, copied into buf.
static int call_args(const char *s, char *buf, size_t bufsize, const char **args, int max) {
  int n = 0, depth = 0;
  size_t at = 0;
  const char *start = s + 1;
  for (const char *c = s; *c && *c != '\n'; c++) {
    depth += (*c == '(' || *c == '{') - (*c == ')' || *c == '}');
    bool end = depth == 0 || (depth == 1 && *c == ',');
    if (!end || c == s)
      continue;
    while (*start == ' ')
      start++;
    size_t len = (size_t)(c - start);
    if (n == max || at + len + 1 > bufsize)
      return -1;
    memcpy(buf + at, start, len), buf[at + len] = 0;
    args[n++] = buf + at;
    at += len + 1, start = c + 1;
    if (depth == 0)
      return n;
  }
  return -1;
}

// A KIn's pieces and prologues: (KIn){.a = x, .b = y, .ca = 32, .pro_a = {scale, shift, true}}.
static void parse_pro(const char *s, const char *key, bool *bn, bool *relu) {
  const char *p = strstr(s, key), *end = p ? strchr(p, '}') : NULL;
  if (!end)
    return;
  p += strlen(key);
  *bn = strncmp(p, "NULL", 4) != 0;
  *relu = end - p >= 4 && !strncmp(end - 4, "true", 4);
}

static int cat_of(const char *s) {
  const char *ca = strstr(s, ".ca = ");
  return strstr(s, ".b = ") && ca ? atoi(ca + 6) : 0;
}

static Side parse_kin(const char *s) {
  Side side = {.cat = cat_of(s)};
  parse_pro(s, ".pro_a = {", &side.bn[0], &side.relu[0]);
  parse_pro(s, ".pro_b = {", &side.bn[1], &side.relu[1]);
  return side;
}

static void parse_kout(const char *s, Problem *p) {
  p->out_cat = cat_of(s);
  p->acc[0] = strstr(s, ".acc_a = true"), p->acc[1] = strstr(s, ".acc_b = true");
  p->res = strstr(s, ".res = "), p->relu = strstr(s, ".relu = true"), p->stats = strstr(s, ".stats = ");
}

// The problem of a kc_* call (the line at s) on geometry g of op; false when it is not understood.
static bool parse_call(const char *s, Op op, KConv g, Problem *p) {
  char buf[1024];
  const char *args[8];
  *p = (Problem){.op = op, .g = g};
  const char *gather = strstr(s, "kc_gather("), *scatter = strstr(s, "kc_scatter("), *wgrad = strstr(s, "kc_wgrad(");
  p->wino = !gather && !scatter && !wgrad &&
            ((gather = strstr(s, "kw_gather(")) || (scatter = strstr(s, "kw_scatter(")) ||
             (wgrad = strstr(s, "kw_wgrad(")));
  const char *call = gather ? gather : scatter ? scatter : wgrad;
  int n = call ? call_args(strchr(call, '('), buf, sizeof buf, args, 8) : -1;
  if (wgrad && n == 7) {
    p->pass = PASS_BWD_WEIGHTS;
    // conv: x is the image and dy the grid; convT the reverse. The bias is the op's output's.
    p->in = parse_kin(args[op == OP_CONV ? 2 : 1]), p->dy = parse_kin(args[op == OP_CONV ? 1 : 2]);
    p->bias = strcmp(args[4], "NULL") != 0;
    return !strcmp(args[5], op == OP_CONV ? "true" : "false");
  }
  if (!call || n != 6)
    return false;
  p->pass = (gather != NULL) == (op == OP_CONV) ? PASS_FWD : PASS_BWD_DATA;
  p->in = parse_kin(args[1]);
  p->bias = strcmp(args[3], "NULL") != 0;
  parse_kout(args[4], p);
  return true;
}

// "model:layer (file.cae:line)" and the op from a kernel's first comment line,
// "// models/lib/seed_blocks.cae:23: rb1.h.conv1 (conv) + bias".
static bool parse_comment(const char *line, const char *model, char *where, size_t size, Op *op) {
  const char *cae = strstr(line, ".cae:"), *paren = strstr(line, " (conv");
  if (!cae || !paren || cae > paren)
    return false;
  const char *file = cae;
  while (file > line && file[-1] != '/' && file[-1] != ' ')
    file--;
  int lineno = atoi(cae + 5);
  const char *layer = strstr(cae + 5, ": ");
  if (!layer || layer > paren)
    return false;
  layer += 2;
  *op = !strncmp(paren, " (convT)", 8) ? OP_CONVT : OP_CONV;
  snprintf(where, size, "%s:%.*s (%.*s.cae:%d)", model, (int)(paren - layer), layer, (int)(cae - file), file, lineno);
  return true;
}

void found_add(FoundList *list, const Problem *p, const char *where) {
  char name[NAME_BYTES], other[NAME_BYTES];
  problem_name(p, name);
  for (int i = 0; i < list->count; i++) {
    problem_name(&list->items[i].p, other);
    if (strcmp(name, other))
      continue;
    Found *f = &list->items[i];
    size_t len = strlen(f->where);
    if (where[0] && len + strlen(where) + 3 < WHERE_BYTES) // every call, so a model's count is its calls
      snprintf(f->where + len, WHERE_BYTES - len, "; %s", where);
    f->count++;
    return;
  }
  if (list->count == list->cap) {
    list->cap = list->cap ? 2 * list->cap : 64;
    list->items = realloc(list->items, sizeof *list->items * (size_t)list->cap);
    if (!list->items) {
      fputs("kernels: out of memory\n", stderr);
      exit(1);
    }
  }
  Found *f = &list->items[list->count++];
  f->p = *p, f->count = 1;
  snprintf(f->where, WHERE_BYTES, "%s", where);
}

void problem_model_of(const char *path, char *model, size_t size) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  snprintf(model, size, "%.*s", (int)strcspn(base, "."), base);
}

// Line `at` of text as a string in buf (longer lines cut: none that matters is); returns the next line.
static const char *copy_line(const char *at, char *buf, size_t size) {
  size_t len = strcspn(at, "\n");
  snprintf(buf, size, "%.*s", (int)(len < size ? len : size - 1), at);
  return at[len] ? at + len + 1 : at + len;
}

bool problem_scan(const char *path, FoundList *list, double *flops_per_step) {
  char *text = read_file(path);
  if (!text)
    return fprintf(stderr, "kernels: cannot read '%s'\n", path), false;
  char model[64], where[256] = "", comment[4096] = "", line[4096], call[4096];
  problem_model_of(path, model, sizeof model);
  bool train = false, ok = true;
  *flops_per_step = 0;
  int lineno = 1;
  for (const char *at = text, *next; ok && *at; at = next, lineno++) {
    next = copy_line(at, line, sizeof line);
    if (!strncmp(line, "// ", 3) && strstr(line, ".cae:"))
      memcpy(comment, line, sizeof line);
    else if (!strncmp(line, "static ", 7) && strchr(line, '('))
      train = !strncmp(line, "static void t", 13);
    KConv g;
    copy_line(next, call, sizeof call);
    const char *k = strstr(line, "static const KConv g = {");
    if (!train || !k || !strncmp(call, "  kc_pack", 9) || !strncmp(call, "  kw_pack", 9)) // not a kernel of the step
      continue;
    Op op;
    Problem p;
    ok = sscanf(k + 24, "%d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d", &g.n, &g.gc, &g.gh, &g.gw, &g.ic, &g.ih, &g.iw,
                &g.k, &g.stride, &g.pad_top, &g.pad_left) == 11 &&
         parse_comment(comment, model, where, sizeof where, &op) && parse_call(call, op, g, &p) && valid(&p);
    if (ok) {
      found_add(list, &p, where);
      *flops_per_step += problem_flops(&p);
    } else
      fprintf(stderr, "%s:%d: kernels: cannot understand this convolution call\n", path, lineno + 1);
  }
  free(text);
  return ok;
}

void found_free(FoundList *list) {
  free(list->items);
  *list = (FoundList){0};
}
