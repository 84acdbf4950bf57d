// experiment.c: caec-experiment, run as `caec experiment`: the seed's experiment in one command: train
// its configurations (seed-models.md Table A, or Table B with --no-augment)
// with the generated trainers, evaluate each on the test split, draw its
// qualitative panels, and write the seed-style results table and the pairwise
// paired t-test p-values as heatmaps. Each configuration is a trainer run in
// DIR/runs/LABEL, resumed when it exists, so an interrupted experiment goes on
// where it stopped.
#include "atomic.h"
#include "caec.h"
#include "plot.h"
#include "stats.h"
#include "trainer.h"

#include "launch.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

// Where `cmake --build` puts the five trainers; CMake sets it.
#ifndef CAEC_TRAINERS
#define CAEC_TRAINERS "build/models"
#endif

typedef struct Config {
  const char *model;
  bool dssim, l2, reduce_lr;
} Config;

// seed-models.md Table A (augmented inputs; ReduceLROnPlateau on), in its order.
static const Config table_a[] = {
    {"res_unet", false, false, true},         {"shallow_res_full_pre", false, false, true},
    {"skip_cae", false, true, true},          {"skip_cae", false, false, true},
    {"myronenko", false, false, true},        {"shallow_res_full_pre", false, true, true},
    {"res_unet", true, false, true},          {"shallow_res_full_pre", true, true, true},
    {"shallow_res_full_pre", true, false, true}, {"myronenko", true, false, true},
    {"skip_cae", true, true, true},           {"skip_cae", true, false, true},
};
// Table B (clean inputs, MSE; ReduceLROnPlateau only for full-pre with L2).
static const Config table_b[] = {
    {"skip_cae", false, false, false},         {"shallow_res_full_pre", false, false, false},
    {"shallow_res_full_pre", false, true, true}, {"shallow_res_original", false, false, false},
    {"myronenko", false, false, false},        {"myronenko", false, true, false},
};
static const double SEED_L2 = 1e-5; // kernel_regularizer=l2(1e-5)

typedef struct Options {
  const char *data, *out, *trainers, *epochs, *seed, *threads;
  double budget; // minutes for the whole experiment; 0: none
  bool no_augment;
} Options;

// What one configuration's run gave; ok is false when it has no evaluation.
typedef struct Result {
  char label[128], dir[CAEC_PATH_BYTES + 256]; // --out, /runs/ and the label
  bool ok;
  int epochs;
  double best_val, mean[CAEC_NMETRICS], sd[CAEC_NMETRICS];
  PerImage images;
} Result;

static const char experiment_help[] =
    "usage: caec experiment --data DATASET --out DIR [--epochs N] [--budget MINUTES] [--no-augment]\n"
    "            [--seed S] [--threads T] [--trainers BIN]\n\n"
    "Runs the seed's experiment with the generated trainers: the twelve configurations of its\n"
    "Table A (residual U-Net, shallow residual full-pre, skip-connection CAE and Myronenko, MSE\n"
    "and DSSIM, with and without L2 = 1e-5 as the table lists them), or with --no-augment the six\n"
    "of its Table B (clean inputs, MSE, ReduceLROnPlateau only for full-pre with L2, and the\n"
    "shallow residual model with the original block). For each: NAME train on DATASET (caedata\n"
    "prepare) into DIR/runs/LABEL (resumed when it exists), NAME eval of best.safetensors on the\n"
    "test split (DIR/runs/LABEL/eval) and NAME figures (DIR/runs/LABEL/figures). Then:\n\n"
    "  DIR/results.md, DIR/results.csv   the seed-style table: model, loss, L2, epochs, best\n"
    "                                    val loss, test MSE, DSSIM and PSNR (mean and sd)\n"
    "  DIR/pvalues.csv                   paired two-sided t-tests of every pair (caec compare)\n"
    "  DIR/pvalues_METRIC.png            their p-values as heatmaps, binned as the seed's\n\n"
    "  --epochs N        each run's epoch limit (default: the model's train section)\n"
    "  --budget MINUTES  the whole experiment's time: each run gets an equal share of what\n"
    "                    remains (NAME train --minutes)\n"
    "  --seed S, --threads T   passed to every run\n"
    "  --trainers BIN    the folder of the trainer executables (default " CAEC_TRAINERS ")\n"
    "Exit status: 0 done, 1 error (a run that failed is reported and left out), 2 bad usage,\n"
    "130 interrupted (run the same command again to go on).\n";

static int parse(int argc, char **argv, Options *o) {
  *o = (Options){.trainers = CAEC_TRAINERS};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(experiment_help, stdout);
      return 0;
    }
    if (!strcmp(a, "--no-augment")) {
      o->no_augment = true;
      continue;
    }
    static const char *const valued[] = {"--data", "--out", "--trainers", "--epochs", "--seed", "--threads",
                                         "--budget"};
    const char **slot[] = {&o->data, &o->out, &o->trainers, &o->epochs, &o->seed, &o->threads, NULL};
    size_t k = 0;
    while (k < sizeof valued / sizeof *valued && strcmp(a, valued[k]))
      k++;
    if (k == sizeof valued / sizeof *valued)
      return usage_error("experiment", a[0] == '-' ? "unknown option '%s'" : "unexpected argument '%s'", a);
    if (++i >= argc)
      return usage_error("experiment", "option '%s' needs a value", a);
    if (slot[k]) {
      *slot[k] = argv[i]; // the trainers check their own values
      continue;
    }
    char *end;
    o->budget = strtod(argv[i], &end);
    if (!*argv[i] || *end || !(o->budget > 0 && o->budget <= 1e6))
      return usage_error("experiment", "--budget must be a number of minutes in (0, 1000000], not '%s'", argv[i]);
  }
  if (!o->data || !o->out)
    return usage_error("experiment", "needs --data DATASET and --out DIR");
  return -1;
}

static bool make_folder(const char *path) {
  struct stat st;
  if (!mkdir(path, 0777) || (errno == EEXIST && !stat(path, &st) && S_ISDIR(st.st_mode)))
    return true;
  return fail("experiment", "cannot make the folder %s: %s", path, strerror(errno)), false;
}

// Runs argv (argv[0] a path) and waits: its exit status, 128 + a signal that killed it, or -1 when it cannot start.
static int run(char *const argv[]) {
  printf("\n$");
  for (int i = 0; argv[i]; i++)
    printf(" %s", argv[i]);
  printf("\n");
  // A trainer saves its run and exits 130 on Ctrl-C; the experiment stops after it.
  int rc = launch(argv);
  if (rc < 0)
    fail("experiment", "cannot run %s: %s", argv[0], strerror(errno));
  return rc;
}

// The lowest val_loss of RUN/log.csv and its rows; false when it has none.
static bool read_log(const char *dir, double *best, int *epochs) {
  char path[CAEC_PATH_BYTES + 512], line[1024];
  snprintf(path, sizeof path, "%s/log.csv", dir);
  FILE *f = fopen(path, "r");
  *best = INFINITY, *epochs = 0;
  for (bool header = true; f && fgets(line, sizeof line, f); header = false) {
    char *comma = strchr(line, ',');
    comma = comma ? strchr(comma + 1, ',') : NULL; // epoch,loss,val_loss
    if (header || !comma)
      continue;
    double v = strtod(comma + 1, NULL);
    *best = v < *best ? v : *best;
    ++*epochs;
  }
  if (f)
    fclose(f);
  return *epochs > 0;
}

// eval's summary: the means and sds of the three metrics.
static bool read_summary(const char *dir, Result *r) {
  char path[CAEC_PATH_BYTES + 512], line[1024];
  snprintf(path, sizeof path, "%s/eval/summary.csv", dir);
  FILE *f = fopen(path, "r");
  bool ok = f && fgets(line, sizeof line, f) && fgets(line, sizeof line, f);
  char *p = line;
  for (int comma = 0; ok && comma < 4; comma++) // split,corrupt,seed,n,
    ok = (p = strchr(p, ',')) != NULL, p += ok;
  for (int k = 0; ok && k < CAEC_NMETRICS; k++) {
    char *end;
    r->mean[k] = strtod(p, &end);
    r->sd[k] = strtod(end + (*end == ','), &p);
    ok = p != end && (*p == ',' || *p == '\n');
    p += *p == ',';
  }
  if (f)
    fclose(f);
  return ok;
}

// A trainer's exit status after Ctrl-C (its own, or the signal's).
static bool interrupted(int rc) { return rc == 130 || rc == 128 + SIGINT; }

// Runs `exe command --weights weights --data data --out dir/command` (eval, figures).
static int run_weights(const char *exe, const char *command, const char *weights, const char *data,
                       const char *dir) {
  char out[CAEC_PATH_BYTES + 512];
  snprintf(out, sizeof out, "%s/%s", dir, command);
  char *argv[] = {(char *)exe, (char *)command, "--weights", (char *)weights, "--data", (char *)data, "--out",
                  out, NULL};
  return run(argv);
}

// One configuration: train (or resume), evaluate, draw; 0, or 130 when interrupted.
static int run_config(const Options *o, const Config *c, Result *r, double minutes) {
  char exe[CAEC_PATH_BYTES + 64], l2[32], budget[32], best[CAEC_PATH_BYTES + 512], last[CAEC_PATH_BYTES + 512];
  snprintf(exe, sizeof exe, "%s/%s", o->trainers, c->model);
  snprintf(l2, sizeof l2, "%g", c->l2 ? SEED_L2 : 0.0);
  snprintf(budget, sizeof budget, "%.3f", minutes);
  snprintf(best, sizeof best, "%s/best.safetensors", r->dir);
  snprintf(last, sizeof last, "%s/last.safetensors", r->dir);
  struct stat st;
  bool resume = !stat(last, &st);
  char *argv[32];
  int n = 0;
#define ARG(s) (argv[n++] = (char *)(s))
  ARG(exe), ARG("train"), ARG("--data"), ARG(o->data), ARG("--out"), ARG(r->dir), ARG("--loss");
  ARG(c->dssim ? "dssim" : "mse"), ARG("--l2"), ARG(l2);
  if (resume)
    ARG("--resume");
  if (o->no_augment)
    ARG("--no-augment");
  if (!c->reduce_lr)
    ARG("--no-reduce-lr");
  if (o->epochs)
    ARG("--epochs"), ARG(o->epochs);
  if (o->seed)
    ARG("--seed"), ARG(o->seed);
  if (o->threads)
    ARG("--threads"), ARG(o->threads);
  if (minutes > 0)
    ARG("--minutes"), ARG(budget);
  argv[n] = NULL;
#undef ARG
  int rc = run(argv);
  if (interrupted(rc))
    return 130;
  if (stat(best, &st)) {
    fprintf(stderr, "caec experiment: %s: no best.safetensors (train exited with %d): left out\n", r->label, rc);
    return 0;
  }
  if (interrupted(rc = run_weights(exe, "eval", best, o->data, r->dir)))
    return 130;
  char err[CAEC_PATH_BYTES + 256];
  r->ok = !rc && read_summary(r->dir, r) && read_log(r->dir, &r->best_val, &r->epochs) &&
          !per_image_read(r->dir, &r->images, err, sizeof err);
  if (!r->ok) {
    fprintf(stderr, "caec experiment: %s: no evaluation (eval exited with %d): left out\n", r->label, rc);
    return 0;
  }
  return interrupted(run_weights(exe, "figures", best, o->data, r->dir)) ? 130 : 0;
}

// ---- the results ------------------------------------------------------------------------

// Writes text to path atomically; false after a message.
static bool write_file(const char *path, const char *text, size_t len) {
  AtomicFile a;
  char err[2 * CAEC_PATH_BYTES + 256];
  int werr = 0;
  if (atomic_open(&a, path, err, sizeof err) == 0) {
    if (fwrite(text, 1, len, a.f) != len)
      werr = errno ? errno : EIO;
    if (atomic_commit(&a, werr, err, sizeof err) == 0)
      return true;
  }
  return fail("experiment", "%s", err), false;
}

// A text buffer that the tables are printed into (open_memstream).
typedef struct Text {
  FILE *f;
  char *data;
  size_t len;
} Text;

static bool text_close_write(Text *t, const char *dir, const char *name) {
  char path[CAEC_PATH_BYTES + 64];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  bool ok = fclose(t->f) == 0 && write_file(path, t->data, t->len);
  free(t->data);
  return ok;
}

static const char *config_loss(const Config *c) { return c->dssim ? "DSSIM" : "MSE"; }

static bool write_tables(const Options *o, const Config *configs, const Result *r, int n) {
  Text md = {0}, csv = {0};
  md.f = open_memstream(&md.data, &md.len), csv.f = open_memstream(&csv.data, &csv.len);
  if (!md.f || !csv.f)
    return fail("experiment", "out of memory"), false;
  fprintf(md.f, "| # | model | loss | L2 | epochs | best val loss | test MSE | test DSSIM | test PSNR (dB) |\n"
                "|---:|---|---|---|---:|---:|---:|---:|---:|\n");
  fprintf(csv.f, "config,model,loss,l2,augment,reduce_lr,epochs,best_val_loss,mse_mean,mse_sd,dssim_mean,dssim_sd,"
                 "psnr_mean,psnr_sd\n");
  for (int i = 0; i < n; i++) {
    const Config *c = &configs[i];
    if (!r[i].ok) {
      fprintf(md.f, "| %d | %s | %s | %s | | failed | | | |\n", i + 1, c->model, config_loss(c), c->l2 ? "yes" : "no");
      continue;
    }
    fprintf(md.f, "| %d | %s | %s | %s | %d | %.3g | %.3g ± %.3g | %.3g ± %.3g | %.2f ± %.2f |\n", i + 1, c->model,
            config_loss(c), c->l2 ? "yes" : "no", r[i].epochs, r[i].best_val, r[i].mean[0], r[i].sd[0], r[i].mean[1],
            r[i].sd[1], r[i].mean[2], r[i].sd[2]);
    fprintf(csv.f, "%s,%s,%s,%g,%d,%d,%d,%.10g", r[i].label, c->model, c->dssim ? "dssim" : "mse",
            c->l2 ? SEED_L2 : 0.0, !o->no_augment, c->reduce_lr, r[i].epochs, r[i].best_val);
    for (int k = 0; k < CAEC_NMETRICS; k++)
      fprintf(csv.f, ",%.10g,%.10g", r[i].mean[k], r[i].sd[k]);
    fputc('\n', csv.f);
  }
  fflush(md.f);
  fwrite(md.data, 1, md.len, stdout);
  bool md_ok = text_close_write(&md, o->out, "results.md"); // both, so that neither leaks
  return text_close_write(&csv, o->out, "results.csv") && md_ok;
}

// The seed's heatmap bins of a p-value, as a shade: > 0.1, 0.05-0.1, 0.02-0.05, below 0.02, and 0.
static double p_shade(double p) { return p > 0.1 ? 1.0 : p > 0.05 ? 0.75 : p > 0.02 ? 0.5 : p > 0 ? 0.25 : 0.0; }

static bool write_pvalues(const Options *o, const Result *r, int n) {
  Text csv = {0};
  csv.f = open_memstream(&csv.data, &csv.len);
  double *shade = malloc(sizeof(double) * (size_t)(n * n));
  char(*cell)[16] = malloc(sizeof *cell * (size_t)(n * n));
  const char **text = malloc(sizeof *text * (size_t)(n * n)), **labels = malloc(sizeof *labels * (size_t)n);
  bool ok = csv.f && shade && cell && text && labels;
  if (ok)
    fprintf(csv.f, "a,b,metric,n,mean_diff,t,df,p\n");
  for (int i = 0; i < n; i++)
    if (labels)
      labels[i] = r[i].label;
  static const double key_shade[] = {1.0, 0.75, 0.5, 0.25, 0.0};
  static const char *const key_text[] = {"p > 0.1", "0.05-0.1", "0.02-0.05", "0-0.02", "0"};
  for (int k = 0; ok && k < CAEC_NMETRICS; k++) {
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        size_t c = (size_t)i * n + j;
        shade[c] = NAN, text[c] = NULL;
        if (i == j || !r[i].ok || !r[j].ok || !per_image_paired(&r[i].images, &r[j].images))
          continue;
        TTest t = paired_t_test(r[i].images.metric[k], r[j].images.metric[k], r[i].images.n);
        shade[c] = p_shade(t.p);
        snprintf(cell[c], sizeof cell[c], "%.2g", t.p);
        text[c] = cell[c];
        if (i < j)
          fprintf(csv.f, "%s,%s,%s,%lld,%.10g,%.10g,%.0f,%.6g\n", r[i].label, r[j].label, caec_metric_name((CaecMetric)k),
                  (long long)r[i].images.n, t.mean_diff, t.t, t.df, t.p);
      }
    char path[CAEC_PATH_BYTES + 64], title[128], err[CAEC_PATH_BYTES + 256];
    snprintf(path, sizeof path, "%s/pvalues_%s.png", o->out, caec_metric_name((CaecMetric)k));
    snprintf(title, sizeof title, "paired t-test p-values: test %s", caec_metric_name((CaecMetric)k));
    if (plot_heatmap(path, title, labels, n, shade, text, 5, key_shade, key_text, err, sizeof err)) {
      fail("experiment", "%s", err);
      ok = false;
    }
  }
  if (csv.f)
    ok = text_close_write(&csv, o->out, "pvalues.csv") && ok;
  else
    fail("experiment", "out of memory");
  free(shade), free(cell), free(text), free(labels);
  return ok;
}

int main(int argc, char **argv) {
  Options o;
  int rc = parse(argc, argv, &o);
  if (rc >= 0)
    return rc;
  const Config *configs = o.no_augment ? table_b : table_a;
  int n = o.no_augment ? (int)(sizeof table_b / sizeof *table_b) : (int)(sizeof table_a / sizeof *table_a);
  char runs[CAEC_PATH_BYTES];
  if (snprintf(runs, sizeof runs, "%s/runs", o.out) >= CAEC_PATH_BYTES - 128)
    return usage_error("experiment", "--out is too long: %s", o.out);
  if (!make_folder(o.out) || !make_folder(runs))
    return 1;
  Result *r = calloc((size_t)n, sizeof *r);
  if (!r)
    return fail("experiment", "out of memory");
  double start = caec_now();
  int failed = 0;
  for (int i = 0; i < n && rc < 0; i++) {
    const Config *c = &configs[i];
    snprintf(r[i].label, sizeof r[i].label, "%s-%s%s", c->model, c->dssim ? "dssim" : "mse", c->l2 ? "-l2" : "");
    snprintf(r[i].dir, sizeof r[i].dir, "%s/%s", runs, r[i].label);
    double left = o.budget > 0 ? (60 * o.budget - (caec_now() - start)) / 60 : 0;
    if (o.budget > 0 && left <= 0) {
      fprintf(stderr, "caec experiment: the %g-minute budget is spent: %s and the runs after it are left out\n",
              o.budget, r[i].label);
      break;
    }
    printf("\n== experiment %d/%d: %s (%s, %s, L2 %s) ==\n", i + 1, n, r[i].label, c->model, config_loss(c),
           c->l2 ? "yes" : "no");
    if (run_config(&o, c, &r[i], left / (n - i)) == 130)
      rc = 130;
    failed += !r[i].ok;
  }
  if (rc < 0) {
    printf("\n== results: %s ==\n\n", o.no_augment ? "Table B (no augmentation, MSE)" : "Table A (augmentation)");
    bool written = write_tables(&o, configs, r, n) && write_pvalues(&o, r, n);
    rc = !written || failed;
    if (written)
      printf("\nwrote %s/results.md, results.csv, pvalues.csv and pvalues_{mse,dssim,psnr}.png; runs, evaluations "
             "and figures in %s/LABEL/{,eval,figures}\n",
             o.out, runs);
  }
  for (int i = 0; i < n; i++)
    per_image_free(&r[i].images);
  free(r);
  return rc;
}
