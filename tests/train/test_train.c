// test_train.c: the trainer's train command (argv[1], tiny.cae's trainer at
// batch 4) on small slice caches written here: a run's files, a falling loss,
// bit-exact resumption (after --epochs and after Ctrl-C), the same weights for
// any thread count, a diverging run stopped with its last checkpoint intact,
// and the messages for bad input.
#include "cache.h"
#include "safetensors.h"
#include "testcache.h"

#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>

enum { H = 16, W = 16, PER_VOLUME = 10 };
static const char *trainer;

// Starts `trainer train ARGS...` (NULL-terminated) with its output in the test folder's out.txt.
static pid_t start(const char *const *args) { return start_program(trainer, "train", args); }

// Runs the trainer to its end: the exit status; its output stays in out.txt.
#define TRAIN(...) exit_status(start((const char *[]){__VA_ARGS__, NULL}))

static char *file_in(const char *run, const char *name) {
  static char buf[4][4352];
  static int next;
  char *p = buf[next++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", run, name);
  return p;
}

// Two checkpoints hold the same tensors, bit for bit, and the same metadata but the time.
static bool same_state(const char *a, const char *b) {
  StFile fa = {0}, fb = {0};
  char err[512];
  bool same = st_read(a, &fa, err, sizeof err) == 0 && st_read(b, &fb, err, sizeof err) == 0;
  CHECK(same, "%s", err);
  same = same && fa.count == fb.count && fa.nmeta == fb.nmeta && fa.count > 1;
  for (int i = 0; same && i < fa.count; i++) {
    const StTensor *t = st_find(&fb, fa.tensors[i].name);
    same = t && t->nbytes == fa.tensors[i].nbytes && !memcmp(t->data, fa.tensors[i].data, t->nbytes);
    if (!same)
      fprintf(stderr, "%s and %s differ in '%s'\n", a, b, fa.tensors[i].name);
  }
  for (int i = 0; same && i < fa.nmeta; i++) {
    const char *v = st_meta(&fb, fa.meta[i].key);
    same = !strcmp(fa.meta[i].key, "seconds") || (v && !strcmp(v, fa.meta[i].value));
    if (!same)
      fprintf(stderr, "%s and %s differ in metadata '%s'\n", a, b, fa.meta[i].key);
  }
  st_free(&fa), st_free(&fb);
  return same;
}

// log.csv's rows without the time column; the number of rows in *rows.
static char *log_without_time(const char *run, int *rows) {
  char *text = slurp(file_in(run, "log.csv"), NULL);
  *rows = -1; // the header
  if (!text)
    return NULL;
  char *out = text;
  for (char *p = text; *p; p++) {
    if (*p == '\n') {
      char *cut = out;
      while (cut > text && cut[-1] != ',' && cut[-1] != '\n')
        cut--;
      out = cut, ++*rows;
    }
    *out++ = *p;
  }
  *out = '\0';
  return text;
}

// Column col (0: epoch) of row `row` of a run's log.csv.
static double log_value(const char *run, int row, int col) {
  char *text = slurp(file_in(run, "log.csv"), NULL), *p = text;
  for (int r = -1; p && r < row; r++)
    p = strchr(p, '\n'), p = p ? p + 1 : NULL;
  for (int c = 0; p && c < col; c++)
    p = strchr(p, ','), p = p ? p + 1 : NULL;
  double v = p ? strtod(p, NULL) : NAN;
  free(text);
  return v;
}

// Rewrites a checkpoint with every value NaN (one NaN weight may never reach
// the loss: a ReLU turns NaN into 0).
static void poison(const char *path) {
  StFile f = {0};
  char err[512];
  const char *meta[2 * 64 + 1] = {NULL};
  CHECK(st_read(path, &f, err, sizeof err) == 0 && f.nmeta <= 64, "%s", err);
  for (int i = 0; i < f.nmeta && i < 64; i++)
    meta[2 * i] = f.meta[i].key, meta[2 * i + 1] = f.meta[i].value;
  for (int t = 0; t < f.count; t++)
    for (size_t i = 0; f.tensors[t].dtype == ST_F32 && i < f.tensors[t].nbytes / sizeof(float); i++)
      ((float *)f.tensors[t].data)[i] = NAN;
  CHECK(st_write(path, f.tensors, f.count, meta, err, sizeof err) == 0, "%s", err);
  st_free(&f);
}

static void remove_run(const char *run) {
  static const char *const files[] = {"log.csv", "last.safetensors", "best.safetensors"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++)
    unlink(file_in(run, files[i]));
  rmdir(run);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: test_train TRAINER\n");
    return 2;
  }
  trainer = argv[1];
  make_dir("train");
  SplitSet sets[6] = {SET_TRAIN, SET_TRAIN, SET_VAL, SET_TRAIN, SET_TEST, SET_TRAIN}; // 40 training slices: 10 steps
  const char *data = blob_data_set("data", H, sets, 6, PER_VOLUME);
  char runs[8][512], missing[512];
  for (int i = 0; i < 8; i++)
    snprintf(runs[i], sizeof runs[i], "%s/run%d", dir, i);
  snprintf(missing, sizeof missing, "%s/missing", dir);
  const char *straight = runs[0], *resumed = runs[1], *threads2 = runs[2];

  // Three epochs straight, on one thread: the files, a falling loss.
  CHECK(TRAIN("--data", data, "--out", straight, "--epochs", "3", "--seed", "5", "--threads", "1") == 0, "train: %s",
        output());
  int rows;
  free(log_without_time(straight, &rows));
  CHECK(rows == 3, "log.csv has %d rows", rows);
  char *log = slurp(file_in(straight, "log.csv"), NULL);
  CHECK(log && !strncmp(log, "epoch,loss,val_loss,val_mse,val_dssim,val_psnr,lr,seconds\n", 58), "log.csv header");
  free(log);
  CHECK(log_value(straight, 2, 0) == 2, "the last row is epoch 2");
  CHECK(log_value(straight, 2, 1) < 0.8 * log_value(straight, 0, 1), "the loss falls: %g -> %g",
        log_value(straight, 0, 1), log_value(straight, 2, 1));
  CHECK(fabs(log_value(straight, 0, 6) - 1e-3) < 1e-10, "the seed's learning rate");
  CHECK(log_value(straight, 0, 2) == log_value(straight, 0, 3), "val_loss is val_mse for the mse loss");
  CHECK(access(file_in(straight, "last.safetensors"), F_OK) == 0, "last.safetensors");
  CHECK(access(file_in(straight, "best.safetensors"), F_OK) == 0, "best.safetensors");
  CHECK(strstr(output(), "best val_loss"), "the summary: %s", output());
  CHECK(is_png(file_in(straight, "loss.png")), "loss.png");

  // PreciseBN: the same training, and running statistics re-estimated from the
  // epoch's batches beat Keras's moving averages, which after 10 steps at
  // momentum 0.99 are still 90% their initial values.
  const char *keras = runs[6], *precise = runs[7];
  CHECK(TRAIN("--data", data, "--out", keras, "--epochs", "1", "--seed", "5", "--precise-bn", "0") == 0, "%s",
        output());
  CHECK(TRAIN("--data", data, "--out", precise, "--epochs", "1", "--seed", "5", "--precise-bn", "4") == 0, "%s",
        output());
  CHECK(log_value(keras, 0, 1) == log_value(precise, 0, 1), "the same training loss: %g, %g", log_value(keras, 0, 1),
        log_value(precise, 0, 1));
  CHECK(log_value(precise, 0, 2) < 0.75 * log_value(keras, 0, 2), "val_loss: %g with PreciseBN, %g without",
        log_value(precise, 0, 2), log_value(keras, 0, 2));
  CHECK(TRAIN("--data", data, "--out", keras, "--epochs", "2", "--resume", "--precise-bn", "3") == 1 &&
            strstr(output(), "other settings than --precise-bn"),
        "resumed with another --precise-bn: %s", output());
  remove_run(keras), remove_run(precise);

  // The optional corruption steps: kept in the run, which resumes with them.
  CHECK(TRAIN("--data", data, "--out", keras, "--epochs", "1", "--cutout", "anywhere", "--flip-lr", "0.5",
              "--rotate", "10", "--gamma", "1.5", "--bias", "0.1") == 0,
        "the optional steps: %s", output());
  StFile aug = {0};
  char aug_err[512];
  CHECK(st_read(file_in(keras, "last.safetensors"), &aug, aug_err, sizeof aug_err) == 0, "%s", aug_err);
  CHECK(st_meta(&aug, "aug_rotate") && atof(st_meta(&aug, "aug_rotate")) == 10 && st_meta(&aug, "aug_diagonal") &&
            !strcmp(st_meta(&aug, "aug_diagonal"), "0"),
        "the run's corruption in its checkpoint");
  st_free(&aug);
  CHECK(TRAIN("--data", data, "--out", keras, "--epochs", "2", "--resume", "--rotate", "10", "--flip-lr", "0.5",
              "--cutout", "anywhere", "--gamma", "1.5", "--bias", "0.1") == 0,
        "resumed with the same options: %s", output());
  CHECK(TRAIN("--data", data, "--out", keras, "--epochs", "3", "--resume", "--rotate", "5") == 1 &&
            strstr(output(), "the corruption's options"),
        "resumed with another rotation: %s", output());
  remove_run(keras);

  // A time budget: no epoch starts that would end after it.
  CHECK(TRAIN("--data", data, "--out", keras, "--epochs", "50", "--minutes", "0.0001") == 0 &&
            strstr(output(), "budget"),
        "--minutes: %s", output());
  free(log_without_time(keras, &rows));
  CHECK(rows == 1, "--minutes: %d epochs, not 1", rows);
  remove_run(keras);

  // Two epochs, then one more with --resume: the same state, bit for bit.
  CHECK(TRAIN("--data", data, "--out", resumed, "--epochs", "2", "--seed", "5", "--threads", "1") == 0, "%s",
        output());
  CHECK(TRAIN("--data", data, "--out", resumed, "--epochs", "3", "--resume", "--threads", "1") == 0, "resume: %s",
        output());
  CHECK(same_state(file_in(straight, "last.safetensors"), file_in(resumed, "last.safetensors")),
        "2 epochs + 1 resumed = 3 epochs");
  char *l1 = log_without_time(straight, &rows), *l2 = log_without_time(resumed, &rows);
  CHECK(l1 && l2 && !strcmp(l1, l2), "the same log:\n%s\n%s", l1, l2);
  free(l1), free(l2);
  CHECK(TRAIN("--data", data, "--out", resumed, "--epochs", "3", "--resume") == 0, "%s", output());
  CHECK(strstr(output(), "nothing to do"), "a finished run: %s", output());

  // Two threads for the kernels (and the loader): the same weights.
  CHECK(TRAIN("--data", data, "--out", threads2, "--epochs", "3", "--seed", "5", "--threads", "2") == 0, "%s",
        output());
  CHECK(same_state(file_in(straight, "last.safetensors"), file_in(threads2, "last.safetensors")), "1 vs 2 threads");

  // Ctrl-C once the first epoch is saved, likely mid-epoch (epochs of 75
  // steps): exit 130 with last.safetensors saved, then resumed to the end of
  // the next epoch: the same as straight.
  const char *stopped = runs[3], *reference = runs[4];
  SplitSet many[32];
  for (int i = 0; i < 32; i++)
    many[i] = i == 0 ? SET_VAL : SET_TRAIN;
  const char *longer = blob_data_set("long", H, many, 31, PER_VOLUME);
  pid_t pid = start((const char *[]){"--data", longer, "--out", stopped, "--epochs", "1000", "--seed", "7", NULL});
  for (int i = 0; i < 60000 && access(file_in(stopped, "last.safetensors"), F_OK); i++)
    usleep(1000);
  usleep(20000); // into epoch 1 (either way the resumed run must match)
  kill(pid, SIGINT);
  CHECK(exit_status(pid) == 130, "Ctrl-C: exit 130: %s", output());
  CHECK(strstr(output(), "interrupted"), "Ctrl-C message: %s", output());
  StFile f = {0};
  char err[512];
  CHECK(st_read(file_in(stopped, "last.safetensors"), &f, err, sizeof err) == 0, "%s", err);
  const char *epoch = st_meta(&f, "epoch"), *batch = st_meta(&f, "batch");
  char until[32];
  snprintf(until, sizeof until, "%d", (epoch ? atoi(epoch) : 0) + 1);
  printf("interrupted at epoch %s, batch %s\n", epoch ? epoch : "?", batch ? batch : "?");
  st_free(&f);
  CHECK(TRAIN("--data", longer, "--out", stopped, "--epochs", until, "--resume") == 0, "%s", output());
  CHECK(TRAIN("--data", longer, "--out", reference, "--epochs", until, "--seed", "7") == 0, "%s", output());
  CHECK(same_state(file_in(reference, "last.safetensors"), file_in(stopped, "last.safetensors")),
        "interrupted and resumed = straight");

  // SIGKILL, which no handler sees, after the first checkpoint: the last one
  // is whole (written to a temporary file and renamed), and the run resumed
  // from it matches a straight one.
  char killed[512], killed_ref[512];
  snprintf(killed, sizeof killed, "%s", path_in_dir("killed"));
  snprintf(killed_ref, sizeof killed_ref, "%s", path_in_dir("killed_ref"));
  pid = start((const char *[]){"--data", longer, "--out", killed, "--epochs", "1000", "--seed", "7", NULL});
  for (int i = 0; i < 60000 && access(file_in(killed, "last.safetensors"), F_OK); i++)
    usleep(1000);
  usleep(30000);
  kill(pid, SIGKILL);
  CHECK(exit_status(pid) == 128 + SIGKILL, "SIGKILL: %s", output());
  CHECK(st_read(file_in(killed, "last.safetensors"), &f, err, sizeof err) == 0, "after SIGKILL: %s", err);
  epoch = st_meta(&f, "epoch");
  snprintf(until, sizeof until, "%d", (epoch ? atoi(epoch) : 0) + 1);
  st_free(&f);
  CHECK(TRAIN("--data", longer, "--out", killed, "--epochs", until, "--resume") == 0, "%s", output());
  CHECK(TRAIN("--data", longer, "--out", killed_ref, "--epochs", until, "--seed", "7") == 0, "%s", output());
  CHECK(same_state(file_in(killed_ref, "last.safetensors"), file_in(killed, "last.safetensors")),
        "killed and resumed = straight");
  remove_folder(killed), remove_folder(killed_ref);

  // A diverged run, made reliably by a NaN weight in its checkpoint: exit 1
  // at the first step, the checkpoint and the log as they were.
  const char *diverged = runs[5];
  CHECK(TRAIN("--data", data, "--out", diverged, "--epochs", "1") == 0, "%s", output());
  poison(file_in(diverged, "last.safetensors"));
  size_t before_len, after_len;
  char *before = slurp(file_in(diverged, "last.safetensors"), &before_len);
  char *log_before = slurp(file_in(diverged, "log.csv"), NULL);
  CHECK(TRAIN("--data", data, "--out", diverged, "--epochs", "2", "--resume") == 1, "%s", output());
  CHECK(strstr(output(), "not finite"), "non-finite loss message: %s", output());
  char *after = slurp(file_in(diverged, "last.safetensors"), &after_len), *log_after = slurp(file_in(diverged, "log.csv"), NULL);
  CHECK(before && after && before_len == after_len && !memcmp(before, after, before_len), "last.safetensors kept");
  CHECK(log_before && log_after && !strcmp(log_before, log_after), "log.csv kept");
  free(before), free(after), free(log_before), free(log_after);

  // Bad input: one clear message each.
  const char *other = runs[6];
  SplitSet no_val[3] = {SET_TRAIN, SET_TRAIN, SET_TEST};
  const char *big = blob_data_set("big", 2 * H, sets, 6, PER_VOLUME);
  const char *noval = blob_data_set("noval", H, no_val, 3, PER_VOLUME);
  struct {
    int rc;
    const char *expect, *args[8];
  } bad[] = {
      {2, "needs --data DATASET and --out RUN", {"--data", data}},
      {2, "--epochs must be", {"--data", data, "--out", other, "--epochs", "0"}},
      {2, "--loss must be mse or dssim", {"--data", data, "--out", other, "--loss", "mae"}},
      {2, "unknown option '--weights'", {"--data", data, "--out", other, "--weights", "w"}},
      {2, "needs a value", {"--data", data, "--out"}},
      {1, "missing/slices.bin", {"--data", missing, "--out", other}},
      {1, "holds 32x32 slices; this trainer takes 16x16", {"--data", big, "--out", other}},
      {1, "0 validation slices", {"--data", noval, "--out", other}},
      {1, "add --resume", {"--data", data, "--out", straight}},
      {1, "does not exist", {"--data", data, "--out", runs[7], "--resume"}},
      {1, "other settings than --loss", {"--data", data, "--out", straight, "--resume", "--loss", "dssim"}},
      {1, "other settings than --no-reduce-lr", {"--data", data, "--out", straight, "--resume", "--no-reduce-lr"}},
      {2, "--precise-bn must be", {"--data", data, "--out", other, "--precise-bn", "-1"}},
      {2, "--minutes must be", {"--data", data, "--out", other, "--minutes", "0"}},
      {2, "--rotate wants a number from 0 to 45", {"--data", data, "--out", other, "--rotate", "90"}},
      {2, "--cutout must be diagonal or anywhere", {"--data", data, "--out", other, "--cutout", "corner"}},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int rc = exit_status(start(bad[i].args));
    CHECK(rc == bad[i].rc && strstr(output(), bad[i].expect), "case %zu: rc %d, output: %s", i, rc, output());
  }
  CHECK(TRAIN("--help") == 0 && strstr(output(), "--resume"), "train --help: %s", output());

  for (int i = 0; i < 8; i++)
    remove_run(runs[i]);
  static const char *const sets_dirs[] = {"data", "big", "noval", "long"};
  for (size_t i = 0; i < 4; i++) {
    unlink(file_in(path_in_dir(sets_dirs[i]), "slices.bin"));
    rmdir(path_in_dir(sets_dirs[i]));
  }
  return finish();
}
