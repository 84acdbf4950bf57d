// tune.c: `caec tune FILE.cae [-o TUNING] [--batch B] [--size S] [--min-seconds S]`.
// caec compiles the model into a temporary folder; every convolution there
// that more than one of caec's algorithms can compute is checked and timed
// with each (kernels.c's tune_problems, the bench harness's protocol) on this
// machine's threads; the winners go to TUNING (default NAME.tune), keyed by
// canonical problem and CPU model, for `caec build --tuning TUNING`
// (compiler/tuning.c reads the format).
#include "tune.h"

#include "atomic.h"
#include "cpu.h"
#include "launch.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int tune_usage(const char *fmt, const char *arg) {
  fputs("caec tune: error: ", stderr);
  fprintf(stderr, fmt, arg);
  fputs(" (see 'caec tune --help')\n", stderr);
  return 2;
}

static const char help[] =
    "usage: caec tune [--batch B] [--size S] [--min-seconds S] FILE.cae [-o TUNING]\n\n"
    "Times caec's algorithms (direct, and Winograd where it applies) of every convolution\n"
    "kernel of the model's training step on this machine, at OMP_NUM_THREADS, each checked\n"
    "against the naive reference first, and writes the faster per problem to TUNING\n"
    "(default NAME.tune) with this CPU's model name, for `caec build --tuning TUNING`.\n\n"
    "  --batch B, --size S   as for caec compile\n"
    "  --min-seconds S       time each candidate at least S seconds (default 0.2)\n";

// The NAME.c that caec compile wrote into dir.
static bool find_source(const char *dir, char *path, size_t size) {
  DIR *d = opendir(dir);
  bool found = false;
  for (struct dirent *e; d && !found && (e = readdir(d));) {
    size_t n = strlen(e->d_name);
    if (n > 2 && !strcmp(e->d_name + n - 2, ".c"))
      found = snprintf(path, size, "%s/%s", dir, e->d_name) < (int)size;
  }
  if (d)
    closedir(d);
  return found;
}

static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  char path[CAEC_PATH_BYTES];
  for (struct dirent *e; d && (e = readdir(d));)
    if (e->d_name[0] != '.' && snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path)
      unlink(path);
  if (d)
    closedir(d);
  rmdir(dir);
}

static bool write_tuning(const char *path, const char *cae, const Tuned *t, int n) {
  char err[CAEC_PATH_BYTES + 256];
  AtomicFile a;
  if (atomic_open(&a, path, err, sizeof err))
    return fprintf(stderr, "caec tune: error: %s\n", err), false;
  fprintf(a.f, "# caec tune %s: the faster algorithm per convolution, then each one's ms per step\ncpu %s\n", cae,
          cpu_model());
  for (int i = 0; i < n; i++)
    fprintf(a.f, "%s %s %.3f direct %.3f winograd\n", t[i].name, t[i].ms[1] < t[i].ms[0] ? "winograd" : "direct",
            t[i].ms[0], t[i].ms[1]);
  int werr = ferror(a.f) ? EIO : 0;
  if (atomic_commit(&a, werr, err, sizeof err))
    return fprintf(stderr, "caec tune: error: %s\n", err), false;
  return true;
}

int tune_command(int argc, char **argv) {
  const char *cae = NULL, *out = NULL, *batch = NULL, *size = NULL;
  Protocol protocol = {1, 5, 0.2, false};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help"))
      return fputs(help, stdout), 0;
    if ((!strcmp(a, "-o") || !strcmp(a, "--batch") || !strcmp(a, "--size") || !strcmp(a, "--min-seconds")) && !v)
      return tune_usage("option '%s' needs a value", a);
    if (!strcmp(a, "-o"))
      out = argv[++i];
    else if (!strcmp(a, "--batch"))
      batch = argv[++i];
    else if (!strcmp(a, "--size"))
      size = argv[++i];
    else if (!strcmp(a, "--min-seconds")) {
      char *end;
      protocol.min_seconds = strtod(argv[++i], &end);
      if (*end || !(protocol.min_seconds >= 0 && protocol.min_seconds <= 60))
        return tune_usage("--min-seconds must be a number of seconds in [0, 60], not '%s'", argv[i]);
    } else if (a[0] == '-')
      return tune_usage("unknown option '%s'", a);
    else if (cae)
      return tune_usage("unexpected argument '%s' (one model at a time)", a);
    else
      cae = a;
  }
  if (!cae)
    return tune_usage("needs a FILE.cae%s", "");
  // caec compile, from beside this program, into a temporary folder.
  char self[CAEC_PATH_BYTES], caec[CAEC_PATH_BYTES + 8], tmp[] = "/tmp/caec-tune-XXXXXX", src[CAEC_PATH_BYTES];
  snprintf(self, sizeof self, "%s", argv[0]);
  snprintf(caec, sizeof caec, "%s/caec", dirname(self));
  if (!mkdtemp(tmp))
    return fprintf(stderr, "caec tune: error: cannot create a temporary folder: %s\n", strerror(errno)), 1;
  char *cmd[12] = {caec, "compile", (char *)cae, "-o", tmp};
  int nc = 5;
  if (batch)
    cmd[nc++] = "--batch", cmd[nc++] = (char *)batch;
  if (size)
    cmd[nc++] = "--size", cmd[nc++] = (char *)size;
  int rc = launch(cmd);
  FoundList list = {0};
  double flops;
  bool ok = rc == 0 && find_source(tmp, src, sizeof src) && problem_scan(src, &list, &flops);
  if (rc)
    fprintf(stderr, "caec tune: error: %s compile %s failed (%d)\n", caec, cae, rc);
  remove_dir(tmp);
  Tuned *tuned = ok ? calloc((size_t)list.count + 1, sizeof *tuned) : NULL;
  int n = ok ? tune_problems(&list, &protocol, 2, tuned) : -1;
  found_free(&list);
  if (n >= 0) {
    char model[64], path[CAEC_PATH_BYTES];
    problem_model_of(src, model, sizeof model);
    snprintf(path, sizeof path, "%s.tune", model);
    for (int i = 0; i < n; i++)
      printf("%-60s direct %9.3f ms  winograd %9.3f ms  -> %s\n", tuned[i].name, tuned[i].ms[0], tuned[i].ms[1],
             tuned[i].ms[1] < tuned[i].ms[0] ? "winograd" : "direct");
    ok = write_tuning(out ? out : path, cae, tuned, n);
    if (ok)
      printf("wrote %s (%d convolution%s with a choice)\n", out ? out : path, n, n == 1 ? "" : "s");
  }
  free(tuned);
  return ok && n >= 0 ? 0 : 1;
}
