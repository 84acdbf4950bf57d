// test_experiment.c: `caec compare` and `caec experiment` (argv[1] caec,
// argv[2] the folder of the five seed models' trainers at batch 2, 32x32,
// argv[3] stats_oracle.py). compare: p-values against the t distribution's
// closed forms for 1 and 2 degrees of freedom, and its messages. experiment:
// both of the seed's tables on a small cache, every file it promises, every
// number of its tables against SciPy (stats_oracle.py), resumption with more
// epochs, and bad usage.
#include "safetensors.h"
#include "testcache.h"

#include <sys/wait.h>

enum { SIZE = 32, PER_VOLUME = 4 };
static const char *caec, *trainers, *oracle;

// Runs `caec ARGS...` with its output in out.txt; its exit status.
#define RUN(...) exit_status(start_program(caec, NULL, (const char *[]){__VA_ARGS__, NULL}))

// Writes NAME/per_image.csv with the same values d[i] + base in every metric column.
static const char *per_image(const char *name, int n, const double *d, double base, int first_index) {
  static char folders[4][512];
  static int next;
  char *folder = folders[next++ % 4], file[600], text[4096];
  snprintf(folder, sizeof folders[0], "%s", path_in_dir(name));
  mkdir(folder, 0777);
  int len = snprintf(text, sizeof text, "index,volume,slice,mse,dssim,psnr\n");
  for (int i = 0; i < n; i++) {
    double v = d[i] + base;
    len += snprintf(text + len, sizeof text - (size_t)len, "%d,0,%d,%.17g,%.17g,%.17g\n", first_index + i, i, v, v, v);
  }
  snprintf(file, sizeof file, "%s/per_image.csv", folder);
  spit(file, text, (size_t)len);
  return folder;
}

static int count_lines(const char *path) {
  char *text = slurp(path, NULL);
  int n = 0;
  for (char *p = text; p && *p; p++)
    n += *p == '\n';
  free(text);
  return text ? n : -1;
}

static void test_compare(void) {
  // d = A - B: {1, 2, 3} has mean 2, sd 1, t = 2 sqrt(3) with 2 df, where
  // p = 1 - |t| / sqrt(2 + t^2) = 0.074180; {1, 3}: t = 2 with 1 df, where
  // p = 1 - (2 / pi) atan(|t|) = 0.29517.
  const double zero[3] = {0, 0, 0}, three[3] = {1, 2, 3}, two[2] = {1, 3};
  const char *b3 = per_image("b3", 3, zero, 0.5, 0), *a3 = per_image("a3", 3, three, 0.5, 0);
  CHECK(RUN("compare", a3, b3) == 0 && strstr(output(), " 0.0741799\n"), "compare, 2 df: %s", output());
  CHECK(strstr(output(), " 3.4641 ") && strstr(output(), "3 paired images"), "t = 2 sqrt(3): %s", output());
  CHECK(RUN("compare", b3, a3) == 0 && strstr(output(), " -3.4641 ") && strstr(output(), " 0.0741799\n"),
        "B - A: t = -2 sqrt(3): %s", output());
  const char *b2 = per_image("b2", 2, zero, 0.5, 0), *a2 = per_image("a2", 2, two, 0.5, 0);
  CHECK(RUN("compare", a2, b2) == 0 && strstr(output(), " 0.295167\n"), "compare, 1 df: %s", output());
  CHECK(RUN("compare", b3, b3) == 0 && strstr(output(), " 1\n"), "identical runs: p = 1: %s", output());

  const char *other = per_image("other", 3, three, 0.5, 7);
  CHECK(RUN("compare", a3, other) == 1 && strstr(output(), "do not list the same slices"), "other slices: %s",
        output());
  CHECK(RUN("compare", a3, path_in_dir("none")) == 1 && strstr(output(), "no per_image.csv"), "no file: %s",
        output());
  const char *bad = per_image("bad", 3, three, 0.5, 0);
  char file[600];
  snprintf(file, sizeof file, "%s/per_image.csv", bad);
  const char *nan_row = "index,volume,slice,mse,dssim,psnr\n0,0,0,1,2,3\n1,0,1,nan,2,3\n";
  spit(file, nan_row, strlen(nan_row));
  CHECK(RUN("compare", a3, bad) == 1 && strstr(output(), "per_image.csv:3: not a row"), "a bad row: %s", output());
  spit(file, "idx,volume\n", 11);
  CHECK(RUN("compare", a3, bad) == 1 && strstr(output(), "per_image.csv:1: the header"), "a bad header: %s",
        output());
  CHECK(RUN("compare", a3) == 2 && strstr(output(), "needs two runs"), "one run: %s", output());
  CHECK(RUN("compare", a3, b3, b2) == 2 && strstr(output(), "a third run"), "three runs: %s", output());
}

// The files of an experiment of `configs` configurations in out, each run with `epochs` epochs.
static void check_experiment(const char *out, int configs, int epochs, const char *some_run) {
  char path[1024];
  int pairs = configs * (configs - 1) / 2;
  snprintf(path, sizeof path, "%s/results.csv", out);
  CHECK(count_lines(path) == configs + 1, "%s: %d lines, not %d", path, count_lines(path), configs + 1);
  snprintf(path, sizeof path, "%s/results.md", out);
  char *md = slurp(path, NULL);
  char row[16];
  snprintf(row, sizeof row, "| %d | ", configs);
  CHECK(md && strstr(md, row) && !strstr(md, "failed"), "%s: %s", path, md ? md : "missing");
  free(md);
  // Every number of results.csv, results.md and pvalues.csv from the runs' per-image rows.
  CHECK(exit_status(start_program("/usr/bin/python3", NULL, (const char *[]){oracle, "experiment", caec, out, NULL})) ==
            0,
        "%s against SciPy: %s", out, output());
  snprintf(path, sizeof path, "%s/pvalues.csv", out);
  CHECK(count_lines(path) == 1 + 3 * pairs, "%s: %d lines, not %d", path, count_lines(path), 1 + 3 * pairs);
  for (int k = 0; k < 3; k++) {
    snprintf(path, sizeof path, "%s/pvalues_%s.png", out, (const char *[]){"mse", "dssim", "psnr"}[k]);
    CHECK(is_png(path), "%s is not a PNG", path);
  }
  snprintf(path, sizeof path, "%s/runs/%s/log.csv", out, some_run);
  CHECK(count_lines(path) == epochs + 1, "%s: %d lines, not %d", path, count_lines(path), epochs + 1);
  const char *pictures[] = {"figures/figures.png", "loss.png"};
  for (int k = 0; k < 2; k++) {
    snprintf(path, sizeof path, "%s/runs/%s/%s", out, some_run, pictures[k]);
    CHECK(is_png(path), "%s is not a PNG", path);
  }
}

// The run's checkpoint says whether ReduceLROnPlateau was on.
static const char *reduce_lr_of(const char *out, const char *run_label) {
  static char value[16];
  char path[1024], err[256];
  snprintf(path, sizeof path, "%s/runs/%s/last.safetensors", out, run_label);
  StFile f = {0};
  snprintf(value, sizeof value, "?");
  if (!st_read(path, &f, err, sizeof err) && st_meta(&f, "reduce_lr"))
    snprintf(value, sizeof value, "%s", st_meta(&f, "reduce_lr"));
  st_free(&f);
  return value;
}

static void test_experiment(void) {
  const SplitSet sets[] = {SET_TRAIN, SET_TEST, SET_TRAIN, SET_VAL, SET_TRAIN};
  const char *data = blob_data_set("data", SIZE, sets, 5, PER_VOLUME);
  char out_a[512], out_b[512];
  snprintf(out_a, sizeof out_a, "%s", path_in_dir("table_a"));
  snprintf(out_b, sizeof out_b, "%s", path_in_dir("table_b"));
  CHECK(RUN("experiment", "--data", data, "--out", out_a, "--epochs", "1", "--trainers", trainers, "--threads",
            "1") == 0,
        "experiment, Table A: %s", output());
  CHECK(strstr(output(), "== experiment 12/12: skip_cae-dssim "), "the last configuration: %s", output());
  check_experiment(out_a, 12, 1, "skip_cae-dssim-l2");

  CHECK(RUN("experiment", "--data", data, "--out", out_b, "--epochs", "1", "--trainers", trainers, "--no-augment") ==
            0,
        "experiment, Table B: %s", output());
  check_experiment(out_b, 6, 1, "shallow_res_original-mse");
  // Again with a higher limit: each run resumes for one more epoch.
  CHECK(RUN("experiment", "--data", data, "--out", out_b, "--epochs", "2", "--trainers", trainers, "--no-augment") ==
            0,
        "experiment, Table B resumed: %s", output());
  CHECK(strstr(output(), "--resume"), "the second experiment resumes the runs: %s", output());
  check_experiment(out_b, 6, 2, "myronenko-mse");
  CHECK(!strcmp(reduce_lr_of(out_b, "myronenko-mse-l2"), "0") &&
            !strcmp(reduce_lr_of(out_b, "shallow_res_full_pre-mse-l2"), "1"),
        "Table B's plateau rule per run: %s, %s", reduce_lr_of(out_b, "myronenko-mse-l2"),
        reduce_lr_of(out_b, "shallow_res_full_pre-mse-l2"));

  CHECK(RUN("experiment", "--out", out_a) == 2 && strstr(output(), "needs --data"), "no --data: %s", output());
  CHECK(RUN("experiment", "--data", data, "--out", out_a, "--budget", "soon") == 2 && strstr(output(), "--budget"),
        "a bad budget: %s", output());
  CHECK(RUN("experiment", "--data", data, "--out", path_in_dir("nowhere"), "--trainers", path_in_dir("none"),
            "--epochs", "1") == 1 &&
            strstr(output(), "cannot run"),
        "no trainers: %s", output());
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: test_experiment CAEC TRAINERS STATS_ORACLE\n");
    return 2;
  }
  caec = argv[1], trainers = argv[2], oracle = argv[3];
  make_dir("caec_experiment");
  test_compare();
  test_experiment();
  return finish();
}
