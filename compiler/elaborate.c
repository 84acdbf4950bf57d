// elaborate.c: AST -> layer graph. Evaluates the model body statement by
// statement, expands blocks (each instance in a scope of its own), binds op
// arguments, names every layer, and asks shapes.c for each layer's shape.
//
// Layer names are the PyTorch state_dict prefixes of the layers' parameters:
// a statement `s = ...` that applies one op or block names it `s`; with more,
// each is `s.KIND` (`s.KIND1`, `s.KIND2`, ... when a kind repeats); a block
// instance's statements are named inside the instance (`rb1.h.conv1`); a
// `return` chain is named as the instance itself, or `output` in the model.
#include "caec.h"

#include <math.h>
#include <string.h>

typedef enum { V_ERROR, V_TENSOR, V_INT, V_FLOAT, V_BOOL, V_SYMBOL, V_TUPLE } ValKind;

typedef struct Value {
  ValKind kind;
  int64_t i;        // V_INT, V_BOOL
  double f;         // V_FLOAT
  int node;         // V_TENSOR
  const char *sym;  // V_SYMBOL: a keyword value such as `same`
  struct Value *elems;
  int nelems;
} Value;

static const Value ERR = {V_ERROR, 0, 0, 0, NULL, NULL, 0};

typedef struct Binding {
  const char *name;
  Loc loc;
  Value v;
  bool used, is_param;
  struct Binding *next;
} Binding;

typedef struct Scope {
  Binding *names;
  Block *block;        // NULL for the model
  const char *prefix;  // dotted name of this instance; "" for the model
  struct Scope *caller;
  int depth;
  bool returned;
  Value result;
  Loc result_loc;
} Scope;

// Layer naming inside one statement (see the top of the file).
typedef struct Naming {
  const char *prefix;
  int calls;            // calls in the statement (a repeat counts as two)
  const char *kinds[32];
  int count[32], next[32], nkinds;
} Naming;

typedef struct Elab {
  Ctx *c;
  Program *prog;
  Graph *g;
  Naming *naming;
  const char **names; // open-addressing set of layer names
  int *name_node;
  int names_cap;
  bool too_large;
  int depth; // of eval's recursion
  int instances;
  int64_t steps;
} Elab;

typedef enum { X_ANY, X_TENSOR, X_INT, X_FLOAT, X_BOOL, X_PAD } Expect;

static Value eval(Elab *E, Scope *sc, Expr *e, Expect want);
static void elab_stmts(Elab *E, Scope *sc, Stmt *s);

static const char *kind_name(ValKind k) {
  static const char *names[] = {"an error", "a tensor", "an integer", "a number", "a boolean", "a keyword", "a tuple"};
  return names[k];
}

// ---- scopes -----------------------------------------------------------------

static Binding *lookup(Scope *sc, const char *name) {
  for (Binding *b = sc->names; b; b = b->next)
    if (!strcmp(b->name, name))
      return b;
  return NULL;
}

static void bind(Elab *E, Scope *sc, const char *name, Loc loc, Value v, bool is_param) {
  Binding *old = lookup(sc, name);
  if (old) {
    error_at(E->c, loc, "redefinition of '%s'", name);
    note_at(E->c, old->loc, "'%s' was first defined here", name);
    return;
  }
  Binding *b = arena_alloc(E->c->arena, sizeof *b);
  *b = (Binding){name, loc, v, false, is_param, sc->names};
  sc->names = b;
}

// "Did you mean" hints: the closest candidate, if it is close for its length.
typedef struct Hint {
  const char *name, *best;
  int best_d;
} Hint;

static Hint hint_for(const char *name) { return (Hint){name, NULL, strlen(name) >= 6 ? 3 : 2}; }

static void hint_try(Hint *h, const char *candidate) {
  int d = edit_distance(h->name, candidate);
  if (d < h->best_d)
    h->best_d = d, h->best = candidate;
}

static void hint_note(Elab *E, Hint *h, Loc at) {
  if (h->best)
    note_at(E->c, at, "did you mean '%s'?", h->best);
}

static void warn_unused(Elab *E, Scope *sc) {
  Binding *list[256];
  int n = 0;
  for (Binding *b = sc->names; b && n < 256; b = b->next)
    if (!b->used && (!b->is_param || b->v.kind == V_TENSOR))
      list[n++] = b;
  for (int i = n - 1; i >= 0; i--) // in source order
    warning_at(E->c, list[i]->loc, "%s '%s' is never used", list[i]->is_param ? "parameter" : "tensor",
               list[i]->name);
}

// ---- layer names ----------------------------------------------------------------

static void count_calls(Naming *nm, Expr *e, int depth) {
  if (!e || depth > MAX_EXPR_DEPTH) // eval reports the depth
    return;
  count_calls(nm, e->input, depth + 1);
  count_calls(nm, e->lhs, depth + 1);
  count_calls(nm, e->rhs, depth + 1);
  for (int i = 0; i < e->nargs; i++)
    count_calls(nm, e->args[i].value, depth + 1);
  if (e->kind != E_CALL || !e->name)
    return;
  int times = e->repeat ? 2 : 1;
  nm->calls += times;
  for (int i = 0; i < nm->nkinds; i++)
    if (!strcmp(nm->kinds[i], e->name)) {
      nm->count[i] += times;
      return;
    }
  if (nm->nkinds < 32) {
    nm->kinds[nm->nkinds] = e->name;
    nm->count[nm->nkinds++] = times;
  }
}

static Naming naming_for(const char *prefix, Expr *value) {
  Naming nm = {.prefix = prefix};
  count_calls(&nm, value, 0);
  return nm;
}

static const char *layer_name(Elab *E, const char *kind) {
  Naming *nm = E->naming;
  if (nm->calls <= 1)
    return nm->prefix;
  for (int i = 0; i < nm->nkinds; i++)
    if (!strcmp(nm->kinds[i], kind)) {
      if (nm->count[i] == 1)
        return arena_printf(E->c->arena, "%s.%s", nm->prefix, kind);
      return arena_printf(E->c->arena, "%s.%s%d", nm->prefix, kind, ++nm->next[i]);
    }
  return arena_printf(E->c->arena, "%s.%s", nm->prefix, kind); // more than 32 kinds in one statement
}

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603u;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211u;
  return h;
}

// Records a layer name; false (after an error) if another layer has it.
static bool claim_name(Elab *E, const char *name, Loc loc, int node) {
  if (E->names_cap < 2 * (E->g->nnodes + 1)) {
    int cap = E->names_cap ? E->names_cap * 2 : 256;
    const char **names = arena_alloc(E->c->arena, sizeof *names * (size_t)cap);
    int *ids = arena_alloc(E->c->arena, sizeof *ids * (size_t)cap);
    for (int i = 0; i < E->names_cap; i++)
      if (E->names[i]) {
        size_t j = hash_str(E->names[i]) & (size_t)(cap - 1);
        while (names[j])
          j = (j + 1) & (size_t)(cap - 1);
        names[j] = E->names[i];
        ids[j] = E->name_node[i];
      }
    E->names = names, E->name_node = ids, E->names_cap = cap;
  }
  size_t j = hash_str(name) & (size_t)(E->names_cap - 1);
  for (; E->names[j]; j = (j + 1) & (size_t)(E->names_cap - 1))
    if (!strcmp(E->names[j], name)) {
      error_at(E->c, loc, "two layers are both named '%s'; rename a statement", name);
      note_at(E->c, E->g->nodes[E->name_node[j]].loc, "the other layer named '%s' comes from here", name);
      return false;
    }
  E->names[j] = name;
  E->name_node[j] = node;
  return true;
}

// ---- graph building ---------------------------------------------------------

static Node *new_node(Elab *E, OpKind op, const char *name, Loc loc) {
  Graph *g = E->g;
  if (g->nnodes >= MAX_NODES) {
    if (!E->too_large)
      error_at(E->c, loc, "the model is too large: more than %d layers", MAX_NODES);
    E->too_large = true;
    return NULL;
  }
  Node *n = ARENA_PUSH(E->c->arena, g->nodes, g->nnodes, g->nodes_cap);
  n->id = g->nnodes - 1;
  n->op = op;
  n->name = name;
  n->loc = loc;
  return n;
}

// Adds a node whose inputs and attributes are set; runs shape inference.
static Value finish_node(Elab *E, Node *n) {
  for (int i = 0; i < n->nin; i++)
    E->g->nodes[n->in[i]].uses++;
  if (!claim_name(E, n->name, n->loc, n->id) || !shape_node(E->c, E->g, n))
    return ERR;
  return (Value){.kind = V_TENSOR, .node = n->id};
}

// ---- values ------------------------------------------------------------------

static bool is_a(Value v, Expect want) {
  switch (want) {
  case X_ANY: return true;
  case X_TENSOR: return v.kind == V_TENSOR;
  case X_INT: return v.kind == V_INT;
  case X_FLOAT: return v.kind == V_INT || v.kind == V_FLOAT;
  case X_BOOL: return v.kind == V_BOOL;
  case X_PAD: return v.kind == V_INT || v.kind == V_SYMBOL || v.kind == V_TUPLE;
  }
  return false;
}

static const char *expect_name(Expect want) {
  static const char *names[] = {"a value", "a tensor", "an integer", "a number", "a boolean",
                                "padding (same, valid, P, (BEFORE, AFTER) or (TOP, BOTTOM, LEFT, RIGHT))"};
  return names[want];
}

static double num(Value v) { return v.kind == V_FLOAT ? v.f : (double)v.i; }

static Value eval_binary(Elab *E, Scope *sc, Expr *e) {
  Value a = eval(E, sc, e->lhs, X_ANY);
  if (e->kind == E_UNARY) {
    if (a.kind == V_ERROR)
      return ERR;
    if (e->op == OP_NOT_ && a.kind == V_BOOL)
      return (Value){.kind = V_BOOL, .i = !a.i};
    if (e->op == OP_NEG_ && a.kind == V_INT && a.i != INT64_MIN)
      return (Value){.kind = V_INT, .i = -a.i};
    if (e->op == OP_NEG_ && a.kind == V_FLOAT)
      return (Value){.kind = V_FLOAT, .f = -a.f};
    error_at(E->c, e->loc, "'%s' cannot apply to %s", e->op == OP_NOT_ ? "not" : "-", kind_name(a.kind));
    return ERR;
  }
  Value b = eval(E, sc, e->rhs, X_ANY);
  if (a.kind == V_ERROR || b.kind == V_ERROR)
    return ERR;
  static const char *sym[] = {"+", "-", "*", "/", "==", "!=", "<", "<=", ">", ">=", "and", "or"};
  if (e->op == OP_AND_ || e->op == OP_OR_) {
    if (a.kind == V_BOOL && b.kind == V_BOOL)
      return (Value){.kind = V_BOOL, .i = e->op == OP_AND_ ? a.i && b.i : a.i || b.i};
  } else if (a.kind == V_BOOL && b.kind == V_BOOL && (e->op == OP_EQ_ || e->op == OP_NE_)) {
    return (Value){.kind = V_BOOL, .i = (a.i == b.i) == (e->op == OP_EQ_)};
  } else if (a.kind == V_INT && b.kind == V_INT) {
    int64_t r = 0;
    bool ok = true;
    switch (e->op) {
    case OP_ADD_: ok = add_ok(a.i, b.i, &r); break;
    case OP_SUB_: ok = !__builtin_sub_overflow(a.i, b.i, &r); break;
    case OP_MUL_: ok = mul_ok(a.i, b.i, &r); break;
    case OP_DIV_:
      if (b.i == 0 || (a.i == INT64_MIN && b.i == -1)) {
        error_at(E->c, e->loc, "division by %lld", (long long)b.i);
        return ERR;
      }
      if (a.i % b.i) {
        error_at(E->c, e->loc, "%lld / %lld leaves a remainder (integer division must be exact)", (long long)a.i,
                 (long long)b.i);
        return ERR;
      }
      r = a.i / b.i;
      break;
    default:
      return (Value){.kind = V_BOOL,
                     .i = e->op == OP_EQ_ ? a.i == b.i : e->op == OP_NE_ ? a.i != b.i : e->op == OP_LT_ ? a.i < b.i
                          : e->op == OP_LE_ ? a.i <= b.i : e->op == OP_GT_ ? a.i > b.i : a.i >= b.i};
    }
    if (!ok) {
      error_at(E->c, e->loc, "integer overflow in '%s'", sym[e->op]);
      return ERR;
    }
    return (Value){.kind = V_INT, .i = r};
  } else if (is_a(a, X_FLOAT) && is_a(b, X_FLOAT)) {
    double x = num(a), y = num(b), r;
    switch (e->op) {
    case OP_ADD_: r = x + y; break;
    case OP_SUB_: r = x - y; break;
    case OP_MUL_: r = x * y; break;
    case OP_DIV_: r = x / y; break;
    default:
      return (Value){.kind = V_BOOL,
                     .i = e->op == OP_EQ_ ? x == y : e->op == OP_NE_ ? x != y : e->op == OP_LT_ ? x < y
                          : e->op == OP_LE_ ? x <= y : e->op == OP_GT_ ? x > y : x >= y};
    }
    if (!isfinite(r)) {
      error_at(E->c, e->loc, "'%s' gives a non-finite number", sym[e->op]);
      return ERR;
    }
    return (Value){.kind = V_FLOAT, .f = r};
  }
  error_at(E->c, e->loc, "'%s' cannot combine %s and %s", sym[e->op], kind_name(a.kind), kind_name(b.kind));
  return ERR;
}

static Value eval_name(Elab *E, Scope *sc, Expr *e, Expect want) {
  Binding *b = lookup(sc, e->name);
  if (b) {
    b->used = true;
    return b->v;
  }
  if (want == X_PAD || want == X_ANY) // keyword values; their meaning is checked where used
    if (!strcmp(e->name, "same") || !strcmp(e->name, "valid"))
      return (Value){.kind = V_SYMBOL, .sym = e->name};
  if (op_lookup(e->name)) {
    error_at(E->c, e->loc, "'%s' is an op: apply it to a tensor, as in 'x -> %s'", e->name, e->name);
    return ERR;
  }
  for (int i = 0; i < E->prog->nblocks; i++)
    if (!strcmp(E->prog->blocks[i]->name, e->name)) {
      error_at(E->c, e->loc, "'%s' is a block: apply it to a tensor, as in 'x -> %s(...)'", e->name, e->name);
      return ERR;
    }
  error_at(E->c, e->loc, "undefined name '%s'", e->name);
  Hint h = hint_for(e->name);
  for (Binding *b = sc->names; b; b = b->next)
    hint_try(&h, b->name);
  if (want == X_PAD) {
    hint_try(&h, "same");
    hint_try(&h, "valid");
  }
  hint_note(E, &h, e->loc);
  return ERR;
}

// ---- calls: ops and blocks ------------------------------------------------------

static Block *find_block(Elab *E, const char *name) {
  for (int i = 0; i < E->prog->nblocks; i++)
    if (!strcmp(E->prog->blocks[i]->name, name))
      return E->prog->blocks[i];
  return NULL;
}

static void unknown_op(Elab *E, Expr *e) {
  error_at(E->c, e->loc, "unknown op or block '%s'", e->name);
  Hint h = hint_for(e->name);
  int n;
  const OpInfo *ops = op_table(&n);
  for (int i = 0; i < n; i++)
    hint_try(&h, ops[i].name);
  for (int i = 0; i < E->prog->nblocks; i++)
    hint_try(&h, E->prog->blocks[i]->name);
  hint_note(E, &h, e->loc);
}

static bool set_pad(Elab *E, Node *n, Value v, Loc at) {
  if (v.kind == V_SYMBOL) { // eval_name makes symbols of `same` and `valid` only
    n->pad_mode = strcmp(v.sym, "same") ? PAD_VALID : PAD_SAME;
    return true;
  }
  int64_t p[4];
  if (v.kind == V_INT)
    p[0] = p[1] = p[2] = p[3] = v.i;
  else if (v.kind == V_TUPLE && (v.nelems == 2 || v.nelems == 4)) {
    for (int i = 0; i < 4; i++) {
      Value el = v.elems[v.nelems == 2 ? i % 2 : i];
      if (el.kind != V_INT) {
        error_at(E->c, at, "padding values must be integers, got %s", kind_name(el.kind));
        return false;
      }
      p[i] = el.i;
    }
  } else {
    error_at(E->c, at, "padding must be same, valid, P, (BEFORE, AFTER) or (TOP, BOTTOM, LEFT, RIGHT)");
    return false;
  }
  for (int i = 0; i < 4; i++) {
    if (p[i] < 0 || p[i] > MAX_KERNEL) {
      error_at(E->c, at, "padding %lld is out of range [0, %d]", (long long)p[i], MAX_KERNEL);
      return false;
    }
    n->pad[i] = (int)p[i];
  }
  n->pad_mode = PAD_EXPLICIT;
  return true;
}

static bool set_arg(Elab *E, Node *n, const OpArg *spec, Value v, Loc at) {
  char *field = (char *)n + spec->offset;
  switch (spec->type) {
  case A_INT:
    if (v.i < INT32_MIN || v.i > INT32_MAX) { // shapes.c checks the op's own range
      error_at(E->c, at, "%s %s = %lld is out of range", op_name(n->op), spec->key, (long long)v.i);
      return false;
    }
    *(int *)field = (int)v.i;
    return true;
  case A_FLOAT: *(double *)field = num(v); return true;
  case A_BOOL: *(bool *)field = v.i != 0; return true;
  case A_PAD: return set_pad(E, n, v, at);
  }
  return false;
}

static Expect expect_of(ArgType t) {
  return t == A_INT ? X_INT : t == A_FLOAT ? X_FLOAT : t == A_BOOL ? X_BOOL : X_PAD;
}

static Value check_type(Elab *E, Value v, Expect want, Loc at, const char *what, const char *of) {
  if (v.kind == V_ERROR || is_a(v, want))
    return v;
  error_at(E->c, at, "%s of '%s' must be %s, got %s", what, of, expect_name(want), kind_name(v.kind));
  return ERR;
}

// A call's parameters: an op's input tensors (positional only) and arguments,
// or a block's parameters.
typedef struct Slot {
  const char *name; // NULL: positional only
  Expect want;
} Slot;

enum { MAX_SLOTS = 64 };

// Binds a call's arguments to slots: the chained input to slot 0, then the
// positional arguments in order, then the named ones. Reports every problem
// and returns false if there was any.
static bool bind_args(Elab *E, Scope *sc, Expr *e, const Slot *slots, int nslots, bool has_input, Value input,
                      Value *vals, Loc *locs, bool *given) {
  bool ok = true;
  int next = 0;
  if (has_input) {
    vals[0] = input;
    locs[0] = e->loc;
    given[0] = true;
    next = 1;
    ok = input.kind != V_ERROR;
  }
  for (int i = 0; i < e->nargs; i++) {
    Arg *a = &e->args[i];
    int k;
    if (!a->key) {
      if (i > 0 && e->args[i - 1].key) {
        error_at(E->c, a->loc, "positional argument after a named one in '%s'", e->name);
        ok = false;
        continue;
      }
      if ((k = next++) >= nslots) {
        error_at(E->c, a->loc, "too many arguments for '%s'", e->name);
        eval(E, sc, a->value, X_ANY); // still check it, and count its names as used
        ok = false;
        continue;
      }
    } else {
      for (k = 0; k < nslots && !(slots[k].name && !strcmp(slots[k].name, a->key)); k++)
        ;
      if (k == nslots) {
        char keys[256] = "";
        for (int j = 0; j < nslots; j++)
          if (slots[j].name)
            snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s%s", keys[0] ? ", " : "", slots[j].name);
        error_at(E->c, a->loc, "unknown argument '%s' for '%s' (%s%s)", a->key, e->name,
                 keys[0] ? "it takes " : "it takes no named arguments", keys);
        eval(E, sc, a->value, X_ANY);
        ok = false;
        continue;
      }
      if (given[k]) {
        error_at(E->c, a->loc, "argument '%s' of '%s' is given twice", a->key, e->name);
        ok = false;
        continue;
      }
    }
    vals[k] = check_type(E, eval(E, sc, a->value, slots[k].want), slots[k].want, a->loc,
                         slots[k].name ? slots[k].name : "input", e->name);
    locs[k] = a->loc;
    given[k] = true;
    ok = ok && vals[k].kind != V_ERROR;
  }
  return ok;
}

static Value apply_op(Elab *E, Scope *sc, Expr *e, const OpInfo *info, Value input, bool has_input) {
  Slot slots[MAX_SLOTS];
  int nslots = 0;
  while (nslots < info->max_in)
    slots[nslots++] = (Slot){NULL, X_TENSOR};
  for (const OpArg *spec = info->args; spec < info->args + 6 && spec->key; spec++)
    slots[nslots++] = (Slot){spec->key, expect_of(spec->type)};
  Value vals[MAX_SLOTS];
  Loc locs[MAX_SLOTS];
  bool given[MAX_SLOTS] = {0};
  bool ok = bind_args(E, sc, e, slots, nslots, has_input, input, vals, locs, given);
  int nin = 0;
  while (nin < info->max_in && given[nin])
    nin++;
  if (nin < info->min_in && ok) {
    error_at(E->c, e->loc, "'%s' needs %d input tensor%s, got %d", info->name, info->min_in,
             info->min_in > 1 ? "s" : "", nin);
    ok = false;
  }
  for (int k = info->max_in; k < nslots; k++)
    if (!given[k] && info->args[k - info->max_in].required) {
      error_at(E->c, e->loc, "'%s' is missing its argument '%s'", info->name, slots[k].name);
      ok = false;
    }
  if (!ok)
    return ERR;
  Node *n = new_node(E, info->op, layer_name(E, info->name), e->loc);
  if (!n)
    return ERR;
  n->in = arena_alloc(E->c->arena, sizeof(int) * (size_t)nin);
  for (int i = 0; i < nin; i++)
    n->in[i] = vals[i].node;
  n->nin = nin;
  for (int k = info->max_in; k < nslots; k++) {
    const OpArg *spec = &info->args[k - info->max_in];
    Value def = spec->type == A_FLOAT ? (Value){.kind = V_FLOAT, .f = spec->def}
                : spec->type == A_BOOL ? (Value){.kind = V_BOOL, .i = spec->def != 0}
                : spec->type == A_PAD  ? (Value){.kind = V_SYMBOL, .sym = spec->def == PAD_SAME ? "same" : "valid"}
                                       : (Value){.kind = V_INT, .i = (int64_t)spec->def};
    if (!set_arg(E, n, spec, given[k] ? vals[k] : def, given[k] ? locs[k] : e->loc))
      return ERR;
  }
  return finish_node(E, n);
}

static bool on_stack(Scope *sc, Block *b) {
  for (; sc; sc = sc->caller)
    if (sc->block == b)
      return true;
  return false;
}

static Value apply_block(Elab *E, Scope *sc, Expr *e, Block *b, Value input, bool has_input) {
  b->uses++;
  if (++E->instances > MAX_INSTANCES) {
    if (!E->too_large)
      error_at(E->c, e->loc, "the model is too large: more than %d block instances", MAX_INSTANCES);
    E->too_large = true;
    return ERR;
  }
  if (on_stack(sc, b)) {
    error_at(E->c, e->loc, "block '%s' instantiates itself (recursion is not allowed)", b->name);
    return ERR;
  }
  if (sc->depth + 1 > MAX_BLOCK_DEPTH) {
    error_at(E->c, e->loc, "blocks nest deeper than %d", MAX_BLOCK_DEPTH);
    return ERR;
  }
  if (b->nparams > MAX_SLOTS) {
    error_at(E->c, b->loc, "block '%s' has more than %d parameters", b->name, MAX_SLOTS);
    return ERR;
  }
  if (has_input && (!b->nparams || b->params[0].type != T_TENSOR)) {
    error_at(E->c, e->loc, "block '%s' cannot take a chained input: its first parameter is not a tensor", b->name);
    return ERR;
  }
  static const Expect of_type[] = {X_TENSOR, X_INT, X_FLOAT, X_BOOL};
  Slot slots[MAX_SLOTS];
  for (int k = 0; k < b->nparams; k++)
    slots[k] = (Slot){b->params[k].name, of_type[b->params[k].type]};
  Value vals[MAX_SLOTS];
  Loc locs[MAX_SLOTS];
  bool given[MAX_SLOTS] = {0};
  bool ok = bind_args(E, sc, e, slots, b->nparams, has_input, input, vals, locs, given);
  Scope inner = {.block = b, .prefix = layer_name(E, b->name), .caller = sc, .depth = sc->depth + 1};
  for (int k = 0; k < b->nparams; k++) {
    BlockParam *p = &b->params[k];
    if (!given[k] && p->def) {
      vals[k] = check_type(E, eval(E, &inner, p->def, slots[k].want), slots[k].want, p->loc, p->name, b->name);
      given[k] = vals[k].kind != V_ERROR;
    }
    if (!given[k]) {
      error_at(E->c, e->loc, "block '%s' is missing its argument '%s'", b->name, p->name);
      ok = false;
      continue;
    }
    if (p->type == T_FLOAT && vals[k].kind == V_INT) // an int argument to a float parameter widens
      vals[k] = (Value){.kind = V_FLOAT, .f = (double)vals[k].i};
    bind(E, &inner, p->name, p->loc, vals[k], true);
  }
  if (!ok)
    return ERR;
  int errors = E->c->errors;
  Naming *outer = E->naming;
  elab_stmts(E, &inner, b->body);
  E->naming = outer;
  if (!inner.returned && E->c->errors == errors)
    error_at(E->c, b->loc, "block '%s' ends without 'return'", b->name);
  if (E->c->errors > errors)
    note_at(E->c, e->loc, "in block '%s' instantiated here", b->name);
  warn_unused(E, &inner);
  if (inner.returned && inner.result.kind != V_TENSOR && inner.result.kind != V_ERROR) {
    error_at(E->c, inner.result_loc, "block '%s' returns %s, not a tensor", b->name, kind_name(inner.result.kind));
    return ERR;
  }
  return inner.returned ? inner.result : ERR;
}

static Value eval_call(Elab *E, Scope *sc, Expr *e) {
  bool has_input = e->input != NULL;
  Value input = has_input ? eval(E, sc, e->input, X_TENSOR) : ERR;
  if (has_input && input.kind != V_TENSOR && input.kind != V_ERROR) {
    error_at(E->c, e->loc, "'%s' is applied to %s; '->' chains tensors", e->name, kind_name(input.kind));
    input = ERR;
  }
  int64_t times = 1;
  if (e->repeat) {
    Value r = eval(E, sc, e->repeat, X_INT);
    if (r.kind != V_INT || r.i < 1 || r.i > MAX_REPEAT) {
      if (r.kind != V_ERROR)
        error_at(E->c, e->repeat->loc, "a repeat count must be an integer in [1, %d]", MAX_REPEAT);
      return ERR;
    }
    times = r.i;
  }
  const OpInfo *info = op_lookup(e->name);
  Block *b = info ? NULL : find_block(E, e->name);
  if (!info && !b) {
    unknown_op(E, e);
    return ERR;
  }
  Value v = input;
  for (int64_t i = 0; i < times; i++) {
    v = info ? apply_op(E, sc, e, info, v, has_input || i > 0) : apply_block(E, sc, e, b, v, has_input || i > 0);
    if (v.kind == V_ERROR)
      break;
  }
  return v;
}

static Value eval_expr(Elab *E, Scope *sc, Expr *e, Expect want);

// Chains and operators nest the AST as deep as the source is long; bound the
// recursion rather than trust the stack.
static Value eval(Elab *E, Scope *sc, Expr *e, Expect want) {
  if (E->depth >= MAX_EXPR_DEPTH) {
    error_at(E->c, e->loc, "expression is too long or nests too deeply (limit %d)", MAX_EXPR_DEPTH);
    return ERR;
  }
  if (E->too_large || ++E->steps > MAX_EVAL_STEPS) {
    if (!E->too_large)
      error_at(E->c, e->loc, "the model is too large: elaborating it takes more than %d steps", MAX_EVAL_STEPS);
    E->too_large = true;
    return ERR;
  }
  E->depth++;
  Value v = eval_expr(E, sc, e, want);
  E->depth--;
  return v;
}

static Value eval_expr(Elab *E, Scope *sc, Expr *e, Expect want) {
  switch (e->kind) {
  case E_NAME: return eval_name(E, sc, e, want);
  case E_INT: return (Value){.kind = V_INT, .i = e->ival};
  case E_FLOAT: return (Value){.kind = V_FLOAT, .f = e->fval};
  case E_BOOL: return (Value){.kind = V_BOOL, .i = e->ival};
  case E_CALL: return eval_call(E, sc, e);
  case E_BINARY:
  case E_UNARY: return eval_binary(E, sc, e);
  case E_TUPLE: {
    Value t = {.kind = V_TUPLE, .nelems = e->nargs};
    t.elems = arena_alloc(E->c->arena, sizeof(Value) * (size_t)e->nargs);
    for (int i = 0; i < e->nargs; i++)
      if ((t.elems[i] = eval(E, sc, e->args[i].value, X_ANY)).kind == V_ERROR)
        return ERR;
    return t;
  }
  }
  return ERR;
}

// ---- statements ---------------------------------------------------------------

static void elab_input(Elab *E, Scope *sc, Stmt *s) {
  Graph *g = E->g;
  if (sc->block) {
    error_at(E->c, s->loc, "'input' belongs in the model, not in a block (blocks take inputs as parameters)");
    return;
  }
  if (g->input >= 0) {
    error_at(E->c, s->loc, "a model has one input; '%s' is a second", s->name);
    return;
  }
  if (!s->dims[3])
    return; // wrong count, reported by the parser
  Expr *nb = s->dims[0];
  if (nb->kind == E_NAME && !lookup(sc, nb->name)) {
    g->batch = 0;
    g->batch_name = nb->name;
  } else {
    Value v = eval(E, sc, nb, X_INT);
    if (v.kind != V_INT || v.i < 1 || v.i > 1 << 20) {
      if (v.kind != V_ERROR)
        error_at(E->c, nb->loc, "the batch must be a name (symbolic) or an integer in [1, %d]", 1 << 20);
      return;
    }
    g->batch = (int)v.i;
  }
  int dims[3];
  static const char *what[] = {"channels", "height", "width"};
  for (int i = 0; i < 3; i++) {
    Value v = eval(E, sc, s->dims[i + 1], X_INT);
    if (v.kind != V_INT || v.i < 1 || v.i > MAX_DIM) {
      if (v.kind != V_ERROR)
        error_at(E->c, s->dims[i + 1]->loc, "input %s must be an integer in [1, %d]", what[i], MAX_DIM);
      return;
    }
    dims[i] = (int)v.i;
  }
  if (E->c->input_size)
    dims[1] = dims[2] = E->c->input_size;
  Node *n = new_node(E, OP_INPUT, s->name, s->loc);
  n->shape = (Shape){dims[0], dims[1], dims[2]};
  Value v = finish_node(E, n);
  if (v.kind == V_TENSOR)
    g->input = n->id;
  bind(E, sc, s->name, s->loc, v, false);
}

static void elab_stmts(Elab *E, Scope *sc, Stmt *s) {
  for (; s; s = s->next) {
    if (sc->returned) {
      error_at(E->c, s->loc, "statement after 'return' is never reached");
      return;
    }
    switch (s->kind) {
    case S_INPUT:
      elab_input(E, sc, s);
      break;
    case S_ASSIGN: {
      Binding *old = lookup(sc, s->name);
      if (old) {
        error_at(E->c, s->loc, "redefinition of '%s'", s->name);
        note_at(E->c, old->loc, "'%s' was first defined here", s->name);
        break;
      }
      const char *prefix = sc->block ? arena_printf(E->c->arena, "%s.%s", sc->prefix, s->name) : s->name;
      Naming nm = naming_for(prefix, s->value);
      E->naming = &nm;
      Value v = eval(E, sc, s->value, X_ANY);
      bind(E, sc, s->name, s->loc, v, false);
      break;
    }
    case S_RETURN: {
      Naming nm = naming_for(sc->block ? sc->prefix : "output", s->value);
      E->naming = &nm;
      sc->result = eval(E, sc, s->value, X_TENSOR);
      sc->result_loc = s->loc;
      sc->returned = true;
      break;
    }
    case S_IF: {
      Value cond = eval(E, sc, s->cond, X_BOOL);
      if (cond.kind != V_BOOL) {
        if (cond.kind != V_ERROR)
          error_at(E->c, s->cond->loc, "an 'if' condition must be a boolean, got %s", kind_name(cond.kind));
        break;
      }
      elab_stmts(E, sc, cond.i ? s->then_body : s->else_body);
      break;
    }
    }
    if (E->too_large || E->c->errors > MAX_ERRORS)
      return;
  }
}

// Drops layers that do not lead to the output (their statements were already
// warned about as unused), renumbering nodes and parameters.
static void prune(Elab *E) {
  Graph *g = E->g;
  bool *live = arena_alloc(E->c->arena, (size_t)g->nnodes);
  int *new_id = arena_alloc(E->c->arena, sizeof(int) * (size_t)g->nnodes);
  live[g->output] = true;
  live[g->input] = true;
  for (int i = g->nnodes - 1; i >= 0; i--)
    if (live[i])
      for (int j = 0; j < g->nodes[i].nin; j++)
        live[g->nodes[i].in[j]] = true;
  Node *nodes = arena_alloc(E->c->arena, sizeof(Node) * (size_t)g->nnodes);
  Param *params = arena_alloc(E->c->arena, sizeof(Param) * (size_t)(g->nparams + 1));
  int nn = 0, np = 0;
  for (int i = 0; i < g->nnodes; i++) {
    if (!live[i])
      continue;
    Node n = g->nodes[i];
    new_id[i] = nn;
    n.id = nn;
    n.uses = 0;
    for (int j = 0; j < n.nin; j++)
      n.in[j] = new_id[n.in[j]];
    int first = n.first_param;
    n.first_param = np;
    for (int j = 0; j < n.nparams; j++) {
      params[np] = g->params[first + j];
      params[np++].node = nn;
    }
    nodes[nn++] = n;
  }
  for (int i = 0; i < nn; i++)
    for (int j = 0; j < nodes[i].nin; j++)
      nodes[nodes[i].in[j]].uses++;
  g->input = new_id[g->input];
  g->output = new_id[g->output];
  g->nodes = nodes, g->nnodes = nn, g->nodes_cap = g->nnodes;
  g->params = params, g->nparams = np, g->params_cap = np;
}

Graph *elaborate(Ctx *c, Program *prog) {
  int errors = c->errors;
  if (!prog->model_name) {
    error_at(c, (Loc){prog->main_src, 0, 0}, "no model found (a .cae file needs 'model NAME { ... }')");
    return NULL;
  }
  for (int i = 0; i < prog->nblocks; i++)
    if (op_lookup(prog->blocks[i]->name))
      error_at(c, prog->blocks[i]->loc, "block '%s' has the name of a built-in op", prog->blocks[i]->name);
  Graph *g = arena_alloc(c->arena, sizeof *g);
  g->model_name = prog->model_name;
  g->src = prog->model_loc.src;
  g->input = g->output = -1;
  g->batch_name = "N";
  Elab E = {.c = c, .prog = prog, .g = g};
  Scope top = {.prefix = ""};
  elab_stmts(&E, &top, prog->model_body);
  if (g->input < 0 && c->errors == errors)
    error_at(c, prog->model_loc, "model '%s' has no input: declare one as 'input x : [N, 1, 128, 128]'",
             prog->model_name);
  if (!top.returned && c->errors == errors)
    error_at(c, prog->model_loc, "model '%s' has no output: end it with 'return TENSOR'", prog->model_name);
  warn_unused(&E, &top);
  for (int i = 0; i < prog->nblocks; i++)
    if (!prog->blocks[i]->uses && !prog->blocks[i]->imported)
      warning_at(c, prog->blocks[i]->loc, "block '%s' is never used", prog->blocks[i]->name);
  if (top.returned && top.result.kind != V_TENSOR && top.result.kind != V_ERROR)
    error_at(c, top.result_loc, "model '%s' returns %s, not a tensor", prog->model_name, kind_name(top.result.kind));
  if (top.returned && top.result.kind == V_TENSOR && g->input >= 0) {
    Shape in = g->nodes[g->input].shape, out = g->nodes[top.result.node].shape;
    g->output = top.result.node;
    if (g->output == g->input)
      error_at(c, top.result_loc, "model '%s' returns its input unchanged: it has no layers", prog->model_name);
    if (in.c != out.c || in.h != out.h || in.w != out.w)
      error_at(c, top.result_loc, "the output %s differs from the input %s: an autoencoder reproduces its input",
               shape_str(c->arena, g, out), shape_str(c->arena, g, in));
  }
  train_defaults(&g->train);
  train_config(c, prog, &g->train);
  if (c->errors > errors)
    return NULL;
  prune(&E);
  return g;
}

Graph *compile_source(Ctx *c, Source *src) {
  Program *prog = arena_alloc(c->arena, sizeof *prog);
  if (!parse_source(c, prog, src, true, 0))
    return NULL;
  return elaborate(c, prog);
}

Graph *compile_file(Ctx *c, const char *path) {
  Source *src = source_read(c, path, (Loc){0});
  return src ? compile_source(c, src) : NULL;
}
