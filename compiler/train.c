// train.c: the `train` section. Every setting has the seed's default
// (seed-models.md section 5: Keras RMSprop, batch 32, 100 epochs, early
// stopping and LR-on-plateau on val_loss); the trainer's flags override them.
#include "caec.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

void train_defaults(TrainConfig *t) {
  *t = (TrainConfig){
      .loss = CAEC_MSE,
      .optimizer = CAEC_RMSPROP,
      .lr = 1e-3, .rho = 0.9, .eps = 1e-7, .beta1 = 0.9, .beta2 = 0.999, .momentum = 0.9,
      .batch = 32, .epochs = 100, .l2 = 0, .seed = 0,
      .early_stopping = true, .es_patience = 20, .es_min_delta = NAN, .es_restore_best = true,
      .reduce_lr = true, .rl_factor = 0.2, .rl_patience = 4, .rl_min_lr = 1e-7, .rl_min_delta = NAN,
  };
}

typedef enum { K_INT, K_REAL, K_BOOL, K_DELTA } KeyType; // K_DELTA: a number or `auto`

typedef struct Key {
  const char *name;
  KeyType type;
  size_t offset;
  double lo, hi;
} Key;

#define F(field) offsetof(TrainConfig, field)
static const Key top_keys[] = {
    {"batch", K_INT, F(batch), 1, 65536},
    {"epochs", K_INT, F(epochs), 1, 100000},
    {"l2", K_REAL, F(l2), 0, 1},
    {"seed", K_INT, F(seed), 0, 9007199254740992.0},
    {0},
};
static const Key rmsprop_keys[] = {
    {"lr", K_REAL, F(lr), 0, 10}, {"rho", K_REAL, F(rho), 0, 1}, {"eps", K_REAL, F(eps), 0, 1}, {0}};
static const Key adam_keys[] = {{"lr", K_REAL, F(lr), 0, 10},      {"beta1", K_REAL, F(beta1), 0, 1},
                                {"beta2", K_REAL, F(beta2), 0, 1}, {"eps", K_REAL, F(eps), 0, 1}, {0}};
static const Key sgd_keys[] = {{"lr", K_REAL, F(lr), 0, 10}, {"momentum", K_REAL, F(momentum), 0, 1}, {0}};
static const Key es_keys[] = {{"patience", K_INT, F(es_patience), 0, 100000},
                              {"min_delta", K_DELTA, F(es_min_delta), 0, 1},
                              {"restore_best", K_BOOL, F(es_restore_best), 0, 1},
                              {0}};
static const Key rl_keys[] = {{"factor", K_REAL, F(rl_factor), 0, 1},
                              {"patience", K_INT, F(rl_patience), 0, 100000},
                              {"min_lr", K_REAL, F(rl_min_lr), 0, 10},
                              {"min_delta", K_DELTA, F(rl_min_delta), 0, 1},
                              {0}};

static const char *word(Expr *e) { return e->kind == E_NAME ? e->name : NULL; }

static bool set_key(Ctx *c, TrainConfig *t, const Key *k, Expr *e) {
  char *field = (char *)t + k->offset;
  if (k->type == K_BOOL) {
    if (e->kind != E_BOOL) {
      error_at(c, e->loc, "'%s' must be true or false", k->name);
      return false;
    }
    *(bool *)field = e->ival != 0;
    return true;
  }
  if (k->type == K_DELTA && word(e) && !strcmp(word(e), "auto")) {
    *(double *)field = NAN;
    return true;
  }
  bool neg = e->kind == E_UNARY && e->op == OP_NEG_;
  Expr *lit = neg ? e->lhs : e;
  if (lit->kind != E_INT && !(lit->kind == E_FLOAT && k->type != K_INT)) {
    error_at(c, e->loc, "'%s' must be %s", k->name,
             k->type == K_INT ? "an integer" : k->type == K_DELTA ? "a number or auto" : "a number");
    return false;
  }
  double v = lit->kind == E_INT ? (double)lit->ival : lit->fval;
  v = neg ? -v : v;
  if (!(v >= k->lo && v <= k->hi)) {
    error_at(c, e->loc, "'%s' must be in [%g, %g], got %g", k->name, k->lo, k->hi, v);
    return false;
  }
  if (k->type == K_INT && k->offset == F(seed))
    t->seed = (uint64_t)lit->ival;
  else if (k->type == K_INT)
    *(int *)field = (int)v;
  else
    *(double *)field = v;
  return true;
}

static const Key *find_key(const Key *keys, const char *name) {
  for (; keys->name; keys++)
    if (!strcmp(keys->name, name))
      return keys;
  return NULL;
}

static void list_keys(char *buf, size_t n, const Key *keys) {
  buf[0] = 0;
  for (const Key *k = keys; k->name; k++)
    snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", k == keys ? "" : ", ", k->name);
}

// `name(key=value, ...)`: named settings of an optimizer or a callback.
static bool set_args(Ctx *c, TrainConfig *t, const Key *keys, Expr *call) {
  bool ok = true;
  for (int i = 0; i < call->nargs; i++) {
    Arg *a = &call->args[i];
    const Key *k = a->key ? find_key(keys, a->key) : NULL;
    if (!a->key) {
      error_at(c, a->loc, "settings of '%s' are named, as in '%s(%s=...)'", call->name, call->name, keys->name);
      ok = false;
    } else if (!k) {
      char list[160];
      list_keys(list, sizeof list, keys);
      error_at(c, a->loc, "'%s' has no setting '%s' (it has %s)", call->name, a->key, list);
      ok = false;
    } else {
      ok = set_key(c, t, k, a->value) && ok;
    }
  }
  return ok;
}

// `off`, `on` or `on(key=value, ...)`.
static bool set_switch(Ctx *c, TrainConfig *t, TrainItem *it, bool *flag, const Key *keys) {
  const char *w = it->value->kind == E_CALL && !it->value->input ? it->value->name : word(it->value);
  if (w && !strcmp(w, "off") && it->value->kind == E_NAME) {
    *flag = false;
    return true;
  }
  if (w && !strcmp(w, "on")) {
    *flag = true;
    return it->value->kind == E_NAME || set_args(c, t, keys, it->value);
  }
  error_at(c, it->value->loc, "'%s' must be off, on or on(...)", it->key);
  return false;
}

bool train_config(Ctx *c, Program *prog, TrainConfig *t) {
  bool ok = true;
  for (int i = 0; i < prog->ntrain; i++) {
    TrainItem *it = &prog->train[i];
    for (int j = 0; j < i; j++)
      if (!strcmp(prog->train[j].key, it->key)) {
        error_at(c, it->loc, "'%s' is set twice in the train section", it->key);
        ok = false;
      }
    Expr *v = it->value;
    if (!strcmp(it->key, "loss")) {
      const char *w = word(v);
      int l = w ? caec_loss_lookup(w) : -1;
      if (l >= 0)
        t->loss = (CaecLoss)l;
      else {
        error_at(c, v->loc, "'loss' must be mse or dssim");
        ok = false;
      }
    } else if (!strcmp(it->key, "optimizer")) {
      const char *w = v->kind == E_CALL && !v->input ? v->name : word(v);
      static const Key *const keys[CAEC_NOPTIMS] = {[CAEC_RMSPROP] = rmsprop_keys, [CAEC_ADAM] = adam_keys,
                                                    [CAEC_SGD] = sgd_keys};
      int k = w ? caec_optim_lookup(w) : -1;
      if (k < 0) {
        error_at(c, v->loc, "'optimizer' must be rmsprop, adam or sgd, optionally with settings as in rmsprop(lr=1e-3)");
        ok = false;
        continue;
      }
      t->optimizer = (CaecOptim)k;
      t->lr = caec_default_lr(t->optimizer);
      if (v->kind == E_CALL)
        ok = set_args(c, t, keys[k], v) && ok;
    } else if (!strcmp(it->key, "early_stopping")) {
      ok = set_switch(c, t, it, &t->early_stopping, es_keys) && ok;
    } else if (!strcmp(it->key, "reduce_lr")) {
      ok = set_switch(c, t, it, &t->reduce_lr, rl_keys) && ok;
    } else if (find_key(top_keys, it->key)) {
      ok = set_key(c, t, find_key(top_keys, it->key), v) && ok;
    } else {
      error_at(c, it->loc,
               "unknown train setting '%s' (settings: loss, optimizer, batch, epochs, l2, seed, early_stopping, reduce_lr)",
               it->key);
      ok = false;
    }
  }
  return ok;
}
