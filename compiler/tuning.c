// tuning.c: the files of `caec tune`, which `caec build --tuning FILE` reads:
//
//   # caec tune models/res_unet.cae: ...
//   cpu AMD EPYC
//   conv_fwd_mb32_ic64oc64_ih32oh32_k3s1p1 winograd 14.600 direct 4.210 winograd
//
// after the cpu line, one line per convolution with more than one algorithm:
// its canonical name (kern_types.h's kc_problem_name), the winner, then each
// candidate's milliseconds per step (for the reader; build reads the winner).
// A file tuned on another CPU model is not used: the cost model decides.
#include "caec.h"
#include "cpu.h"

#include <errno.h>
#include <string.h>

static const char *const variant_names[] = {[CV_DIRECT] = "direct", [CV_WINO] = "winograd"};

const char *conv_variant_name(ConvVariant v) { return variant_names[v]; }

static bool variant_of(const char *name, ConvVariant *v) {
  for (int i = 0; i < (int)(sizeof variant_names / sizeof *variant_names); i++)
    if (!strcmp(name, variant_names[i]))
      return *v = (ConvVariant)i, true;
  return false;
}

Tuning *tuning_read(Ctx *c, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(c->err, "%s: error: cannot read the tuning file: %s\n", path, strerror(errno));
    return NULL;
  }
  Tuning *t = arena_alloc(c->arena, sizeof *t);
  char line[512];
  bool ok = true, have_cpu = false;
  for (int n = 1; ok && fgets(line, sizeof line, f); n++) {
    char name[256], variant[32];
    line[strcspn(line, "\n")] = 0;
    if (!line[strspn(line, " \t")] || line[strspn(line, " \t")] == '#')
      continue;
    if (!strncmp(line, "cpu ", 4)) {
      t->cpu = arena_strndup(c->arena, line + 4, strlen(line + 4));
      have_cpu = true;
    } else if (!have_cpu || sscanf(line, "%255s %31s", name, variant) != 2) {
      fprintf(c->err, "%s:%d: error: expected %s\n", path, n,
              have_cpu ? "'PROBLEM ALGORITHM [TIMES]'" : "'cpu MODEL' before the problems");
      ok = false;
    } else {
      TuningEntry *e = ARENA_PUSH(c->arena, t->entries, t->n, t->cap);
      e->name = arena_strndup(c->arena, name, strlen(name));
      if (!variant_of(variant, &e->variant)) {
        fprintf(c->err, "%s:%d: error: unknown algorithm '%s' (direct or winograd)\n", path, n, variant);
        ok = false;
      }
    }
  }
  if (ok && ferror(f)) {
    fprintf(c->err, "%s: error: cannot read the tuning file: %s\n", path, strerror(errno));
    ok = false;
  }
  fclose(f);
  if (ok && !have_cpu) {
    fprintf(c->err, "%s: error: not a tuning file: no 'cpu MODEL' line\n", path);
    ok = false;
  }
  if (ok && strcmp(t->cpu, cpu_model())) {
    fprintf(c->err, "%s: warning: tuned on '%s', not this machine's '%s': the cost model decides\n", path, t->cpu,
            cpu_model());
    t->n = 0;
  }
  return ok ? t : NULL;
}

bool tuning_find(const Tuning *t, const char *name, ConvVariant *v) {
  for (int i = 0; t && i < t->n; i++)
    if (!strcmp(t->entries[i].name, name))
      return *v = t->entries[i].variant, true;
  return false;
}
