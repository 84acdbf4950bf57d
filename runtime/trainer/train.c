// train.c: the `train` command, the seed's training protocol
// (seed-models.md section 5) over a generated model: epochs of shuffled,
// corrupted training batches from the slice cache, a validation pass, and
// Keras's ModelCheckpoint (save_best_only), EarlyStopping and
// ReduceLROnPlateau on val_loss. Everything a run has done lives in its
// checkpoints (the arenas, the step counter, the callbacks' counters), and
// every batch is a function of (seed, epoch, batch), so an interrupted run
// resumed from RUN/last.safetensors continues bit for bit as if never stopped.
#include "atomic.h"
#include "kern.h"
#include "loader.h"
#include "plot.h"
#include "trainer.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { AHEAD = 4, PRECISE_BN = 8 };
static const char *const LOG_HEADER = "epoch,loss,val_loss,val_mse,val_dssim,val_psnr,lr,seconds\n";
static const char *const OPTIM_TENSOR = "optimizer.state"; // the optim arena, whole

typedef struct TrainOptions {
  CaecStepArgs step; // --out (RUN), --loss, --l2, --optimizer, --lr, --seed
  const char *data;
  int epochs, threads; // 0: the schedule's; OpenMP's default
  double minutes;      // a time budget for this invocation; 0: none
  int precise_bn;      // batches for the batch-norm statistics; -1: the default
  bool resume, no_augment, no_reduce_lr, augment_given;
  AugmentParams augment; // the corruption's options (augment_set's)
} TrainOptions;

// What a run is and has done, besides the arenas: the checkpoints' metadata.
typedef struct RunState {
  int64_t loss, optimizer, augment; // a CaecLoss, a CaecOptim, 0 or 1: fixed for the run
  int64_t reduce_lr;                // 0 or 1: ReduceLROnPlateau as the model says, or off; fixed too
  int64_t precise_bn;               // batches that re-estimate the running statistics per epoch; fixed too
  int64_t aug_diagonal;             // the corruption's options (augment.h), fixed too
  double aug_flip_lr, aug_flip_ud, aug_rotate, aug_gamma, aug_bias;
  uint64_t seed;
  double l2;
  int64_t step;       // optimizer steps (CaecState's)
  int64_t epoch;      // epochs finished
  int64_t batch;      // training batches done in epoch `epoch` (when interrupted)
  double loss_sum;    // their losses' sum
  double seconds;     // their time
  double lr;          // the current learning rate, float32 as in Keras
  double best;        // the lowest val_loss (ModelCheckpoint's, strict)
  int64_t best_epoch; // -1: none yet
  double es_best, rl_best; // the callbacks' references: improved on by more than their min_delta
  int64_t es_wait, rl_wait;
  int64_t stopped;    // 1: early stopping ended the run
} RunState;

typedef struct Field {
  const char *key;
  char type; // 'i' int64_t, 'u' uint64_t, 'd' double
  size_t offset;
} Field;
#define FIELD(type, name) {#name, type, offsetof(RunState, name)}
static const Field fields[] = {
    FIELD('i', loss),     FIELD('i', optimizer), FIELD('i', augment),  FIELD('u', seed),
    FIELD('d', l2),       FIELD('i', step),      FIELD('i', epoch),    FIELD('i', batch),
    FIELD('d', loss_sum), FIELD('d', seconds),   FIELD('d', lr),       FIELD('d', best),
    FIELD('i', best_epoch), FIELD('d', es_best), FIELD('d', rl_best),  FIELD('i', es_wait),
    FIELD('i', rl_wait),  FIELD('i', stopped),   FIELD('i', reduce_lr), FIELD('i', precise_bn),
    FIELD('i', aug_diagonal), FIELD('d', aug_flip_lr), FIELD('d', aug_flip_ud), FIELD('d', aug_rotate),
    FIELD('d', aug_gamma), FIELD('d', aug_bias),
};
enum { NFIELDS = sizeof fields / sizeof *fields };

typedef struct Run {
  const CaecModel *m;
  TrainOptions o;
  CaecSchedule sc; // min_deltas resolved
  CaecHyper h;
  RunState r;
  CaecState s;
  SliceCache cache;
  Loader *train, *val;
  int64_t steps; // training batches per epoch: whole ones only
  float *x, *t;               // the batch the loader lends (loader_next)
  float *y;
  double *mse, *dssim, *psnr; // per image of a batch
  StTensor *ts;               // the checkpoint's tensors
  char *log;                  // log.csv's text
  size_t log_len, log_cap;
  char last[CAEC_PATH_BYTES], best[CAEC_PATH_BYTES], log_path[CAEC_PATH_BYTES], plot_path[CAEC_PATH_BYTES];
} Run;

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
  (void)sig;
  interrupted = 1;
}

// The model's schedule, with the min_deltas that it leaves to the loss.
static CaecSchedule schedule(const CaecModel *m, CaecLoss loss) {
  CaecSchedule sc = m->schedule;
  if (sc.es_min_delta < 0)
    sc.es_min_delta = caec_es_min_delta(loss);
  if (sc.rl_min_delta < 0)
    sc.rl_min_delta = caec_rl_min_delta(loss);
  return sc;
}

static void usage(const CaecModel *m) {
  CaecSchedule sc = schedule(m, m->defaults.loss);
  const CaecHyper *d = &m->defaults;
  printf("usage: %s train --data DATASET --out RUN [--loss mse|dssim] [--l2 V] [--epochs N] [--lr X]\n"
         "            [--optimizer rmsprop|adam|sgd] [--seed S] [--threads T] [--minutes M] [--resume]\n"
         "            [--no-augment] [--no-reduce-lr] [--precise-bn B] [corruption options]\n\n"
         "Trains model '%s' with the seed's protocol on DATASET/slices.bin (caedata prepare), whose\n"
         "slices must be %dx%d. Each epoch trains on the training set, shuffled, each input corrupted\n"
         "by the seed's augmentation (scaled to the image size; --no-augment: clean) and its clean\n"
         "slice as the target, in batches of %d (compiled in). The last incomplete batch is dropped\n"
         "(Keras would train on it) so that every step's batch-norm statistics see %d images. Then\n"
         "the validation set, clean, goes through inference (batch norm on the running statistics):\n"
         "val_loss is the mean per-image loss, without the L2 term. Watching val_loss as Keras does:\n"
         "the best weights are kept (ModelCheckpoint); EarlyStopping %s (patience %d, min_delta %g\n"
         "for %s); ReduceLROnPlateau %s (factor %g, patience %d, min_lr %g, min_delta %g, cooldown 0;\n"
         "--no-reduce-lr: off, as the seed's runs without augmentation).\n"
         "Before each validation the batch norms' running statistics are re-estimated with the epoch's\n"
         "weights as the mean of their statistics over the epoch's first B training batches (B = %d;\n"
         "PreciseBN, Wu and Johnson 2021): Keras's moving averages (momentum 0.99) trail the weights by\n"
         "about a hundred steps, which costs short runs most of their validation quality. --precise-bn 0\n"
         "keeps Keras's moving averages alone, as the seed had them.\n\n"
         "RUN/log.csv           per epoch (from 0): epoch,loss,val_loss,val_mse,val_dssim,val_psnr,lr,seconds\n"
         "                      loss: the mean training loss, L2 term included; lr: the epoch's\n"
         "RUN/loss.png          loss and val_loss per epoch (log scale), redrawn after each epoch\n"
         "RUN/last.safetensors  the state after the last epoch: the parameters, the optimizer state\n"
         "                      ('%s') and the run's counters (metadata); --resume continues from it\n"
         "RUN/best.safetensors  the same at the epoch of the lowest val_loss: the run's result\n\n"
         "Defaults (the model's train section): --loss %s, --l2 %g, --optimizer %s, --lr %g, --seed %llu,\n"
         "--epochs %d. --resume keeps the run's loss, l2, optimizer, seed, augmentation, plateau rule and\n"
         "--precise-bn (giving others is an error); --lr replaces its current learning rate, --epochs\n"
         "its limit.\n"
         "--minutes M: a time budget; no epoch starts that would end after it, judged by the last one's\n"
         "time (the run stays resumable; which epoch it stops after depends on the machine's speed).\n"
         "--threads T: OpenMP threads for the kernels (default OMP_NUM_THREADS or all cores), a quarter\n"
         "of them (1 to %d) preparing batches; the results are the same for any T.\n"
         "Ctrl-C stops after the current step and saves RUN/last.safetensors (exit status 130).\n"
         "Exit status: 0 done, 1 error (a non-finite training loss leaves the checkpoints at the last\n"
         "good state), 2 bad usage, 130 interrupted.\n",
         m->name, m->name, m->height, m->width, m->batch, m->batch, sc.early_stopping ? "on" : "off",
         sc.es_patience, sc.es_min_delta, caec_loss_name(d->loss), sc.reduce_lr ? "on" : "off",
         sc.rl_factor, sc.rl_patience, sc.rl_min_lr, sc.rl_min_delta, PRECISE_BN, OPTIM_TENSOR,
         caec_loss_name(d->loss), d->l2, caec_optim_name(d->optimizer), d->lr,
         (unsigned long long)d->seed, sc.epochs, CAEC_MAX_LOADER_THREADS);
  printf("\nThe corruption's options (the seed's corruption by default; the optional steps act after it):\n%s",
         AUGMENT_OPTIONS_HELP);
}

// -1: go on; otherwise the exit status.
static int parse_options(const CaecModel *m, int argc, char **argv, TrainOptions *o) {
  static const char *const step_options[] = {"--out", "--loss", "--l2", "--optimizer", "--lr", "--seed", NULL};
  *o = (TrainOptions){.step = CAEC_STEP_ARGS_INIT, .precise_bn = -1, .augment = augment_defaults()};
  const CaecOption options[] = {
      {"--resume", CAEC_OPT_FLAG, &o->resume, 0, 0, NULL, NULL},
      {"--no-augment", CAEC_OPT_FLAG, &o->no_augment, 0, 0, NULL, NULL},
      {"--no-reduce-lr", CAEC_OPT_FLAG, &o->no_reduce_lr, 0, 0, NULL, NULL},
      {"--precise-bn", CAEC_OPT_INT, &o->precise_bn, 0, 100000, NULL, NULL},
      {"--minutes", CAEC_OPT_REAL, &o->minutes, 0, 1000000, NULL, NULL},
      {"--data", CAEC_OPT_TEXT, &o->data, 0, 0, NULL, NULL},
      {"--epochs", CAEC_OPT_INT, &o->epochs, 1, 1000000, NULL, NULL},
      {"--threads", CAEC_OPT_INT, &o->threads, 1, 1024, NULL, NULL},
  };
  const CaecCommandLine c = {.command = "train", .step = step_options, .options = options, .noptions = 8,
                             .augment = &o->augment, .augment_given = &o->augment_given, .usage = usage,
                             .required = {&o->data, &o->step.out}, .needs = "--data DATASET and --out RUN",
                             .model_seed = true};
  return caec_parse_command(m, &c, argc, argv, &o->step);
}

// ---- checkpoints ---------------------------------------------------------------------

static bool save(Run *R, const char *path) {
  const CaecModel *m = R->m;
  for (int p = 0; p < m->nparams; p++)
    R->ts[p] = caec_param_tensor(&m->params[p], m->params[p].name, R->s.params + m->params[p].offset);
  size_t optim_floats = (size_t)m->arena_bytes[2] / sizeof(float);
  R->ts[m->nparams] = (StTensor){.name = OPTIM_TENSOR, .dtype = ST_F32, .ndim = 1, .shape = {(int64_t)optim_floats},
                                 .nbytes = optim_floats * sizeof(float), .data = R->s.optim};
  R->r.step = R->s.step;
  // %.17g and strtod round-trip every double, so a resumed run gets the same bits.
  char values[NFIELDS][32];
  const char *meta[2 * NFIELDS + 1];
  for (int f = 0; f < NFIELDS; f++) {
    const void *v = (const char *)&R->r + fields[f].offset;
    if (fields[f].type == 'i')
      snprintf(values[f], sizeof values[f], "%lld", (long long)*(const int64_t *)v);
    else if (fields[f].type == 'u')
      snprintf(values[f], sizeof values[f], "%llu", (unsigned long long)*(const uint64_t *)v);
    else
      snprintf(values[f], sizeof values[f], "%.17g", *(const double *)v);
    meta[2 * f] = fields[f].key, meta[2 * f + 1] = values[f];
  }
  meta[2 * NFIELDS] = NULL;
  return caec_write(m, path, R->ts, m->nparams + 1, meta);
}

// Reads RUN/last.safetensors into the state and R->r; false after a message.
static bool restore(Run *R) {
  const CaecModel *m = R->m;
  StFile f = {0};
  char err[512];
  if (st_read(R->last, &f, err, sizeof err))
    return caec_fail(m, "%s", err), false;
  bool ok = caec_load_params(m, R->last, &f, &R->s);
  const StTensor *opt = st_find(&f, OPTIM_TENSOR);
  if (ok && (!opt || opt->dtype != ST_F32 || opt->nbytes != (size_t)m->arena_bytes[2] / 4 * 4)) {
    fprintf(stderr, "%s: error: %s: needs the optimizer state '%s' of this model (F32, %lld values)\n", m->name,
            R->last, OPTIM_TENSOR, (long long)m->arena_bytes[2] / 4);
    ok = false;
  }
  if (ok && opt->nbytes)
    memcpy(R->s.optim, opt->data, opt->nbytes);
  for (int i = 0; ok && i < NFIELDS; i++) {
    const char *text = st_meta(&f, fields[i].key);
    void *v = (char *)&R->r + fields[i].offset;
    char *end = NULL;
    errno = 0;
    if (text && fields[i].type == 'i')
      *(int64_t *)v = strtoll(text, &end, 10);
    else if (text && fields[i].type == 'u')
      *(uint64_t *)v = strtoull(text, &end, 10);
    else if (text)
      *(double *)v = strtod(text, &end);
    if (!text || !*text || *end || errno) {
      fprintf(stderr, "%s: error: %s: not a checkpoint of train (metadata '%s' missing or bad)\n", m->name,
              R->last, fields[i].key);
      ok = false;
    }
  }
  st_free(&f);
  R->s.step = R->r.step;
  return ok;
}

// A resumed run keeps its settings: each option given must agree with them.
// The run's corruption, from the seed's and its options.
static AugmentParams run_augment(const RunState *r) {
  AugmentParams p = augment_defaults();
  p.enabled = (int)r->augment, p.cutout_diagonal = (int)r->aug_diagonal;
  p.flip_lr_p = r->aug_flip_lr, p.flip_ud_p = r->aug_flip_ud, p.rotate_max_deg = r->aug_rotate;
  p.gamma_max = r->aug_gamma, p.bias_max = r->aug_bias;
  return p;
}

static void set_augment(RunState *r, const AugmentParams *p) {
  r->aug_diagonal = p->cutout_diagonal, r->aug_flip_lr = p->flip_lr_p, r->aug_flip_ud = p->flip_ud_p;
  r->aug_rotate = p->rotate_max_deg, r->aug_gamma = p->gamma_max, r->aug_bias = p->bias_max;
}

// Whether the options given describe the run's corruption.
static bool same_augment(const Run *R) {
  RunState given = R->r;
  set_augment(&given, &R->o.augment);
  return !memcmp(&given, &R->r, sizeof given);
}

static bool same_settings(Run *R) {
  const CaecStepArgs *a = &R->o.step;
  const RunState *r = &R->r;
  const char *differs = a->loss >= 0 && a->loss != r->loss                ? "--loss"
                        : a->optimizer >= 0 && a->optimizer != r->optimizer ? "--optimizer"
                        : a->l2 >= 0 && a->l2 != r->l2                      ? "--l2"
                        : a->seed_given && a->seed != r->seed             ? "--seed"
                        : R->o.no_augment && r->augment                     ? "--no-augment"
                        : R->o.no_reduce_lr && r->reduce_lr                 ? "--no-reduce-lr"
                        : R->o.precise_bn >= 0 && R->o.precise_bn != r->precise_bn ? "--precise-bn"
                        : R->o.augment_given && !same_augment(R)             ? "the corruption's options"
                                                                            : NULL;
  if (differs)
    fprintf(stderr, "%s: error: %s: the run was started with other settings than %s: resume without it\n",
            R->m->name, R->last, differs);
  return !differs;
}

// ---- log.csv -------------------------------------------------------------------------

static bool log_append(Run *R, const char *text) {
  size_t n = strlen(text);
  if (R->log_len + n + 1 > R->log_cap) {
    size_t cap = 2 * (R->log_len + n + 1);
    char *grown = realloc(R->log, cap);
    if (!grown)
      return caec_fail(R->m, "%s", "out of memory"), false;
    R->log = grown, R->log_cap = cap;
  }
  memcpy(R->log + R->log_len, text, n + 1);
  R->log_len += n;
  return true;
}

// The header, then the rows of a resumed run's epochs: those of its log.csv
// before the checkpoint's epoch (a crash may have logged an epoch it did not save).
static bool log_start(Run *R) {
  if (!log_append(R, LOG_HEADER))
    return false;
  FILE *f = R->o.resume ? fopen(R->log_path, "r") : NULL;
  char line[1024];
  bool ok = true;
  for (bool header = true; f && ok && fgets(line, sizeof line, f); header = false)
    if (!header && strtoll(line, NULL, 10) < R->r.epoch)
      ok = log_append(R, line);
  if (f)
    fclose(f);
  return ok;
}

// Rewrites the whole file, atomically, so that it is never half written.
static bool log_write(Run *R) {
  AtomicFile a;
  char err[512];
  int werr = 0;
  if (atomic_open(&a, R->log_path, err, sizeof err) == 0) {
    if (fwrite(R->log, 1, R->log_len, a.f) != R->log_len)
      werr = errno ? errno : EIO;
    if (atomic_commit(&a, werr, err, sizeof err) == 0)
      return true;
  }
  return caec_fail(R->m, "%s", err), false;
}

// loss.png: the log's loss and val_loss columns as curves; false after a message.
static bool plot_log(Run *R) {
  enum { COLUMNS = 3 }; // epoch, loss, val_loss
  size_t rows = 0;
  for (const char *p = strchr(R->log, '\n'); p && p[1]; p = strchr(p + 1, '\n'))
    rows++;
  double *loss = malloc((rows + 1) * sizeof *loss), *val = malloc((rows + 1) * sizeof *val);
  bool ok = loss && val;
  int n = 0;
  for (const char *p = strchr(R->log, '\n'); ok && p && p[1]; p = strchr(p + 1, '\n'), n++) {
    double v[COLUMNS];
    char *end = (char *)p + 1;
    for (int k = 0; k < COLUMNS; k++)
      v[k] = strtod(end + (k > 0), &end);
    loss[n] = v[1], val[n] = v[2];
  }
  char title[256], err[CAEC_PATH_BYTES + 256];
  snprintf(title, sizeof title, "%s: loss per epoch", R->m->name);
  PlotSeries s[2] = {{"loss (training)", loss, n, {31, 119, 180}}, {"val_loss", val, n, {255, 127, 14}}};
  if (!ok)
    snprintf(err, sizeof err, "%s: out of memory", R->plot_path);
  else if (plot_curves(R->plot_path, title, "epoch", s, 2, true, err, sizeof err))
    ok = false;
  free(loss), free(val);
  return ok ? true : (caec_fail(R->m, "%s", err), false);
}

// ---- progress ------------------------------------------------------------------------

static void duration(double s, char *buf, size_t len) {
  long t = s > 0 && s < 1e8 ? lround(s) : 0;
  if (t >= 3600)
    snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
}

// After step `done` of the epoch (started at `first`, `elapsed` seconds ago): a
// bar redrawn in place on a terminal, about ten plain lines per epoch otherwise.
static void progress(const Run *R, int64_t first, int64_t done, double elapsed, int epochs) {
  static double last_draw;
  bool tty = isatty(STDERR_FILENO), end = done == R->steps;
  int64_t every = (R->steps + 9) / 10;
  if (tty ? !end && caec_now() - last_draw < 0.1 : !end && done % every)
    return;
  last_draw = caec_now();
  double rate = (double)(done - first) * R->m->batch / (elapsed > 0 ? elapsed : 1e-9);
  char eta[32], bar[21];
  duration((double)(R->steps - done) * R->m->batch / (rate > 0 ? rate : 1), eta, sizeof eta);
  for (int i = 0; i < 20; i++)
    bar[i] = i < 20 * done / R->steps ? '=' : ' ';
  bar[20] = '\0';
  fprintf(stderr, "%sepoch %lld/%d step %lld/%lld [%s] %.1f images/s loss %.6g ETA %s%s", tty ? "\r" : "",
          (long long)R->r.epoch + 1, epochs, (long long)done, (long long)R->steps, bar, rate,
          R->r.loss_sum / (double)(done ? done : 1), eta, tty ? (end ? "\n" : "\033[K") : "\n");
}

// ---- the epoch -------------------------------------------------------------------------

typedef struct Validation {
  double loss, mse, dssim, psnr; // means per image
} Validation;

// The validation set through inference; only the last batch's real images count.
static Validation validate(Run *R) {
  const CaecModel *m = R->m;
  double sum[3] = {0, 0, 0};
  int64_t count = 0;
  loader_start(R->val, 0, 0);
  for (int n; (n = loader_next(R->val, &R->x, &R->t)) > 0; count += n) {
    caec_forward_padded(m, &R->s, n, R->x, R->y);
    kl_metrics(n, m->height, m->width, R->y, R->t, R->mse, R->dssim, R->psnr);
    for (int i = 0; i < n; i++)
      sum[0] += R->mse[i], sum[1] += R->dssim[i], sum[2] += R->psnr[i];
  }
  Validation v = {0, sum[0] / (double)count, sum[1] / (double)count, sum[2] / (double)count};
  v.loss = R->h.loss == CAEC_MSE ? v.mse : v.dssim;
  return v;
}

// Keras's callbacks at the end of an epoch, in the seed's order: ModelCheckpoint
// (a strict improvement), EarlyStopping, ReduceLROnPlateau. Returns whether
// val_loss is the best so far.
static bool callbacks(Run *R, double val_loss) {
  RunState *r = &R->r;
  const CaecSchedule *sc = &R->sc;
  bool best = val_loss < r->best;
  if (best)
    r->best = val_loss, r->best_epoch = r->epoch;
  if (sc->early_stopping) {
    r->es_wait++;
    if (val_loss < r->es_best - sc->es_min_delta)
      r->es_best = val_loss, r->es_wait = 0;
    if (r->es_wait >= sc->es_patience && r->epoch > 0)
      r->stopped = 1;
  }
  if (sc->reduce_lr) {
    if (val_loss < r->rl_best - sc->rl_min_delta) {
      r->rl_best = val_loss, r->rl_wait = 0;
    } else if (++r->rl_wait >= sc->rl_patience && (float)r->lr > (float)sc->rl_min_lr) {
      double old = r->lr;
      r->lr = (float)fmax(r->lr * sc->rl_factor, sc->rl_min_lr); // Keras keeps lr in float32
      r->rl_wait = 0;
      fprintf(stderr, "%s: epoch %lld: ReduceLROnPlateau: learning rate %g -> %g\n", R->m->name,
              (long long)r->epoch, old, r->lr);
    }
  }
  return best;
}

// Replaces the batch norms' running statistics by the mean of their batch
// statistics over the epoch's first r.precise_bn training batches, with the
// current weights (PreciseBN). The training step, without the update, moves
// each running statistic from 0 to (1 - momentum) times the batch's, which
// gives the batch's back. False after a message (out of memory).
static bool precise_bn(Run *R) {
  const CaecModel *m = R->m;
  int64_t batches = R->r.precise_bn < R->steps ? R->r.precise_bn : R->steps, floats = 0;
  for (int p = 0; p < m->nparams; p++)
    floats += m->params[p].momentum > 0 ? m->params[p].numel : 0;
  if (batches == 0 || floats == 0)
    return true;
  double *sum = calloc((size_t)floats, sizeof *sum);
  if (!sum)
    return caec_fail(m, "%s", "out of memory"), false;
  CaecHyper h = R->h;
  h.update = false;
  loader_start(R->train, (uint32_t)R->r.epoch, 0);
  for (int64_t b = 0; b < batches; b++) {
    for (int p = 0; p < m->nparams; p++)
      if (m->params[p].momentum > 0)
        memset(R->s.params + m->params[p].offset, 0, sizeof(float) * (size_t)m->params[p].numel);
    loader_next(R->train, &R->x, &R->t);
    R->s.target = R->t;
    m->train_step(&R->s, &h, R->x, R->y);
    double *acc = sum;
    for (int p = 0; p < m->nparams; p++) {
      const CaecParam *pr = &m->params[p];
      float share = 1.0f - (float)pr->momentum; // the kernels' float arithmetic
      for (int64_t i = 0; pr->momentum > 0 && i < pr->numel; i++)
        *acc++ += R->s.params[pr->offset + i] / share;
    }
  }
  const double *acc = sum;
  for (int p = 0; p < m->nparams; p++)
    for (int64_t i = 0; m->params[p].momentum > 0 && i < m->params[p].numel; i++)
      R->s.params[m->params[p].offset + i] = (float)(*acc++ / (double)batches);
  free(sum);
  return true;
}

// Runs epochs up to `epochs`: 0, 1 (an error, with its message) or 130 (interrupted).
static int train(Run *R, int epochs) {
  const CaecModel *m = R->m;
  RunState *r = &R->r;
  double began = caec_now(), last_epoch = 0;
  while (r->epoch < epochs && !r->stopped) {
    if (R->o.minutes > 0 && last_epoch > 0 && caec_now() - began + last_epoch > 60 * R->o.minutes) {
      printf("%s: stopping before epoch %lld: it would end after the %g-minute budget\n", m->name,
             (long long)r->epoch, R->o.minutes);
      break;
    }
    double start = caec_now() - r->seconds;
    int64_t first = r->batch;
    loader_start(R->train, (uint32_t)r->epoch, r->batch);
    while (r->batch < R->steps && !interrupted) {
      loader_next(R->train, &R->x, &R->t); // a whole batch: batch < steps
      R->s.target = R->t;
      R->h.lr = r->lr;
      double loss = m->train_step(&R->s, &R->h, R->x, R->y);
      if (!isfinite(loss)) {
        fprintf(stderr, "\n%s: error: the training loss is not finite (%g) at epoch %lld, step %lld (learning rate "
                        "%g): stopped; %s keeps the last good state\n",
                m->name, loss, (long long)r->epoch, (long long)r->batch + 1, r->lr, R->last);
        return 1;
      }
      r->loss_sum += loss;
      r->batch++;
      progress(R, first, r->batch, caec_now() - start - r->seconds, epochs);
    }
    r->seconds = caec_now() - start;
    if (interrupted) {
      fprintf(stderr, "\n%s: interrupted at epoch %lld, step %lld: saving %s\n", m->name, (long long)r->epoch,
              (long long)r->batch, R->last);
      return save(R, R->last) ? 130 : 1;
    }
    if (!precise_bn(R))
      return 1;
    Validation v = validate(R);
    double lr = r->lr, loss = r->loss_sum / (double)R->steps;
    bool best = callbacks(R, v.loss);
    char row[512];
    snprintf(row, sizeof row, "%lld,%.10g,%.10g,%.10g,%.10g,%.10g,%.9g,%.3f\n", (long long)r->epoch, loss, v.loss,
             v.mse, v.dssim, v.psnr, lr, caec_now() - start);
    fprintf(stderr, "%s: epoch %lld: loss %.6g val_loss %.6g val_mse %.6g val_dssim %.6g val_psnr %.4g lr %g %.1f s%s\n",
            m->name, (long long)r->epoch, loss, v.loss, v.mse, v.dssim, v.psnr, lr, caec_now() - start,
            best ? " (best)" : "");
    last_epoch = caec_now() - start;
    r->epoch++, r->batch = 0, r->loss_sum = 0, r->seconds = 0;
    // The log first: a crash before the checkpoint leaves a row that a resumed run drops and redoes.
    if (!log_append(R, row) || !log_write(R) || !plot_log(R) || (best && !save(R, R->best)) || !save(R, R->last))
      return 1;
  }
  if (r->stopped)
    fprintf(stderr, "%s: early stopping: no improvement of val_loss by more than %g in %d epochs\n", m->name,
            R->sc.es_min_delta, R->sc.es_patience);
  printf("%s: %lld epochs; best val_loss %.10g at epoch %lld: %s\n", m->name, (long long)r->epoch, r->best,
         (long long)r->best_epoch, R->best);
  return 0;
}

// ---- setup -------------------------------------------------------------------------------

// The data set, its sizes and sets; 0 or an exit status after a message. Before
// open_run, so that a bad data set leaves no RUN folder behind.
static int open_data(Run *R) {
  const CaecModel *m = R->m;
  char path[CAEC_PATH_BYTES];
  if (caec_open_cache(m, R->o.data, &R->cache, path, sizeof path))
    return 1;
  int64_t ntrain = cache_count(&R->cache, SET_TRAIN), nval = cache_count(&R->cache, SET_VAL);
  if (ntrain < m->batch || nval < 1) {
    fprintf(stderr, "%s: error: %s: %lld training slices (at least a batch of %d needed) and %lld validation slices "
                    "(at least 1 needed)\n",
            m->name, path, (long long)ntrain, m->batch, (long long)nval);
    return 1;
  }
  R->steps = ntrain / m->batch;
  return 0;
}

// The loaders, which draw from the run's seed and corruption (after open_run); 0 or 1 after a message.
static int start_loaders(Run *R) {
  const CaecModel *m = R->m;
  int workers = caec_loader_workers(R->o.threads);
  AugmentParams aug = augment_scaled(run_augment(&R->r), m->width);
  LoaderConfig tc = {&R->cache, SET_TRAIN, m->batch, R->r.seed, true, aug, workers, AHEAD};
  LoaderConfig vc = {&R->cache, SET_VAL, m->batch, R->r.seed, false, {.enabled = 0}, workers, AHEAD};
  R->train = loader_new(&tc);
  R->val = loader_new(&vc);
  return R->train && R->val ? 0 : caec_fail(m, "%s", "out of memory for the loaders");
}

// RUN, and the run's state: fresh, or from RUN/last.safetensors with --resume.
static int open_run(Run *R) {
  const CaecModel *m = R->m;
  const char *out = R->o.step.out;
  if (snprintf(R->last, CAEC_PATH_BYTES, "%s/last.safetensors", out) >= CAEC_PATH_BYTES ||
      snprintf(R->best, CAEC_PATH_BYTES, "%s/best.safetensors", out) >= CAEC_PATH_BYTES ||
      snprintf(R->log_path, CAEC_PATH_BYTES, "%s/log.csv", out) >= CAEC_PATH_BYTES ||
      snprintf(R->plot_path, CAEC_PATH_BYTES, "%s/loss.png", out) >= CAEC_PATH_BYTES)
    return caec_fail(m, "--out is too long: %s", out);
  bool exists = access(R->last, F_OK) == 0;
  if (exists && !R->o.resume)
    return caec_fail(m, "%s exists: add --resume to continue that run, or choose another --out", R->last);
  if (!exists && R->o.resume)
    return caec_fail(m, "--resume: %s does not exist", R->last);
  if (caec_make_folder(m, out)) // only now: a mistaken --resume makes no folder
    return 1;
  if (R->o.resume) {
    if (!restore(R) || !same_settings(R))
      return 1;
    if (R->o.step.lr > 0)
      R->r.lr = (float)R->o.step.lr;
  } else {
    CaecHyper h = caec_step_hyper(&R->o.step, m->defaults);
    R->r = (RunState){.loss = h.loss, .optimizer = h.optimizer, .augment = !R->o.no_augment,
                      .reduce_lr = !R->o.no_reduce_lr,
                      .precise_bn = R->o.precise_bn < 0 ? PRECISE_BN : R->o.precise_bn, .seed = R->o.step.seed,
                      .l2 = h.l2, .lr = (float)h.lr, .best = INFINITY, .best_epoch = -1, .es_best = INFINITY,
                      .rl_best = INFINITY};
    set_augment(&R->r, &R->o.augment);
    caec_init(m, &R->s, R->r.seed);
  }
  // The run's settings over the model's defaults.
  R->h = m->defaults;
  R->h.loss = (CaecLoss)R->r.loss, R->h.optimizer = (CaecOptim)R->r.optimizer, R->h.l2 = R->r.l2;
  R->h.seed = R->r.seed, R->h.update = true;
  R->sc = schedule(m, R->h.loss);
  R->sc.reduce_lr = R->sc.reduce_lr && R->r.reduce_lr;
  return log_start(R) ? 0 : 1;
}

int caec_train_main(const CaecModel *m, int argc, char **argv) {
  Run *R = calloc(1, sizeof *R);
  if (!R)
    return caec_fail(m, "%s", "out of memory");
  R->m = m;
  int rc = parse_options(m, argc, argv, &R->o);
  if (rc >= 0) {
    free(R);
    return rc;
  }
  if (R->o.threads)
    omp_set_num_threads(R->o.threads);
  size_t images = (size_t)m->batch * (size_t)m->height * (size_t)m->width;
  bool state = caec_state_new(m, &R->s);
  R->y = malloc(images * sizeof(float));
  R->mse = malloc((size_t)m->batch * sizeof(double)), R->dssim = malloc((size_t)m->batch * sizeof(double));
  R->psnr = malloc((size_t)m->batch * sizeof(double));
  R->ts = malloc((size_t)(m->nparams + 1) * sizeof(StTensor));
  if (!state || !R->y || !R->mse || !R->dssim || !R->psnr || !R->ts)
    rc = caec_fail(m, "%s", "out of memory");
  if (rc < 0 && !(rc = open_data(R)) && !(rc = open_run(R)) && !(rc = start_loaders(R))) {
    int epochs = R->o.epochs ? R->o.epochs : R->sc.epochs;
    bool ended = R->r.stopped || R->r.epoch >= epochs;
    if (ended)
      fprintf(stderr, "%s: %s: the run has ended (%lld epochs%s): nothing to do\n", m->name, R->last,
              (long long)R->r.epoch, R->r.stopped ? ", early stopping" : "");
    // log.csv (its header, a resumed run's rows) before the first epoch: a RUN whose files cannot be
    // written fails now, not after an epoch's work.
    if (!ended && !log_write(R)) {
      rc = 1;
    } else {
      struct sigaction sa = {.sa_handler = on_sigint, .sa_flags = SA_RESETHAND}, old; // a second Ctrl-C kills
      sigemptyset(&sa.sa_mask);
      sigaction(SIGINT, &sa, &old);
      rc = train(R, epochs);
      sigaction(SIGINT, &old, NULL);
    }
  }
  loader_free(R->train), loader_free(R->val);
  if (R->cache.map)
    cache_close(&R->cache);
  if (state)
    caec_state_free(m, &R->s);
  free(R->y), free(R->mse), free(R->dssim), free(R->psnr), free(R->ts), free(R->log);
  free(R);
  return rc;
}
