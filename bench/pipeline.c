// pipeline.c: the data pipeline's throughput, slices per second, to set next
// to what a trainer consumes. A synthetic slice cache (runtime/data/cache.h's
// writer; smooth ellipses with noise) of `batches` batches is read by the
// runtime's loader (runtime/data/loader.h: background threads that decode each
// slice and corrupt it with the seed's augmentation) with a consumer that
// does nothing, so each epoch's time is the loader's alone:
//   loader_augment  the training input: decode + augmentation (the default)
//   loader_clean    decode only (validation batches)
// usage: pipeline [--size S] [--batch B] [--batches K] [--threads LIST] [--reps R]
// Defaults: 128, 32, 16, "1,2" (loader threads), 3 epochs timed after one.
#include "harness.h"
#include "loader.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct Options {
  int size, batch, batches, reps;
  char threads[64];
} Options;

// A brain-like slice: an ellipse of smooth texture on a dark background, plus noise.
static void synth_slice(int size, int index, float *x) {
  bench_fill(x, (size_t)size * (size_t)size, (uint64_t)index, 0.0f, 0.05f);
  const double c = (size - 1) / 2.0, ry = 0.42 * size, rx = 0.34 * size;
  for (int i = 0; i < size; i++)
    for (int j = 0; j < size; j++) {
      double u = (j - c) / rx, v = (i - c) / ry;
      if (u * u + v * v < 1)
        x[i * size + j] += (float)(0.6 + 0.3 * sin(0.2 * i + 0.05 * index) * cos(0.15 * j));
    }
}

// Writes count slices in 4 training volumes to path; false after a message.
static bool write_cache(const char *path, int size, int count) {
  enum { VOLUMES = 4 };
  char err[512];
  CacheWriter w;
  if (cache_create(&w, path, size, size, err, sizeof err))
    return fprintf(stderr, "pipeline: %s\n", err), false;
  const int per = (count + VOLUMES - 1) / VOLUMES;
  float *slices = bench_alloc(sizeof *slices * (size_t)per * (size_t)size * (size_t)size);
  int *index = bench_alloc(sizeof *index * (size_t)per);
  for (int v = 0, done = 0; v < VOLUMES; v++) {
    int n = count - done < per ? count - done : per;
    for (int s = 0; s < n; s++)
      synth_slice(size, done + s, slices + (size_t)s * (size_t)size * (size_t)size), index[s] = s;
    cache_add_volume(&w, slices, index, n);
    done += n;
  }
  free(slices), free(index);
  const SplitSet sets[VOLUMES] = {SET_TRAIN, SET_TRAIN, SET_TRAIN, SET_TRAIN};
  if (cache_commit(&w, sets, err, sizeof err))
    return fprintf(stderr, "pipeline: %s\n", err), false;
  return true;
}

typedef struct Epochs {
  Loader *loader;
  uint32_t epoch;
} Epochs;

// One epoch, every batch taken as soon as it is ready.
static void epoch_run(void *arg) {
  Epochs *e = arg;
  loader_start(e->loader, e->epoch++, 0);
  float *x, *t;
  while (loader_next(e->loader, &x, &t) > 0)
    ;
}

static bool measure(const Options *o, const SliceCache *cache, int threads, bool augment) {
  AugmentParams aug = augment_for_size(o->size);
  aug.enabled = augment;
  LoaderConfig config = {cache, SET_TRAIN, o->batch, 1, true, aug, threads, 4};
  Epochs e = {loader_new(&config), 0};
  if (!e.loader)
    return fputs("pipeline: cannot start the loader\n", stderr), false;
  Timing t = bench_time(&(Protocol){1, o->reps, 0, false}, epoch_run, &e);
  Row r = bench_ms_row("pipeline", augment ? "loader_augment" : "loader_clean", "runtime", t);
  r.threads = threads, r.batch = o->batch, r.size = o->size;
  r.items = (double)o->batch * o->batches;
  char note[96];
  snprintf(note, sizeof note, "one epoch of %d batches; threads: the loader's", o->batches);
  r.note = note;
  bench_row(&r);
  loader_free(e.loader);
  return true;
}

static int usage(void) {
  fputs("usage: pipeline [--size S] [--batch B] [--batches K] [--threads LIST] [--reps R]\n", stderr);
  return 2;
}

static int *int_option(Options *o, const char *a) {
  return !strcmp(a, "--size")      ? &o->size
         : !strcmp(a, "--batch")   ? &o->batch
         : !strcmp(a, "--batches") ? &o->batches
         : !strcmp(a, "--reps")    ? &o->reps
                                   : NULL;
}

int main(int argc, char **argv) {
  Options o = {128, 32, 16, 3, "1,2"};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[++i] : NULL;
    int *field = int_option(&o, a);
    if (field && v && (*field = atoi(v)) > 0)
      continue;
    if (field || !v || strcmp(a, "--threads") || strlen(v) >= sizeof o.threads)
      return usage();
    strcpy(o.threads, v);
  }
  const char *tmp = getenv("TMPDIR");
  char dir[512], path[600], err[512];
  snprintf(dir, sizeof dir, "%s/caec_pipeline_XXXXXX", tmp ? tmp : "/tmp");
  if (!mkdtemp(dir))
    return perror("pipeline: mkdtemp"), 1;
  snprintf(path, sizeof path, "%s/slices.bin", dir);
  SliceCache cache;
  bool ok = write_cache(path, o.size, o.batch * o.batches);
  if (ok && cache_open(path, &cache, err, sizeof err))
    ok = false, fprintf(stderr, "pipeline: %s\n", err);
  if (ok) {
    bench_header();
    for (char *t = strtok(o.threads, ","); t && ok; t = strtok(NULL, ","))
      ok = atoi(t) > 0 && measure(&o, &cache, atoi(t), true) && measure(&o, &cache, atoi(t), false);
    cache_close(&cache);
  }
  unlink(path), rmdir(dir);
  return ok ? 0 : 1;
}
