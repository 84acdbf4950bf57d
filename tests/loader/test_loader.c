// test_loader.c: the background loader on a small cache written here: each
// epoch's order is a permutation of the set, the batches hold the clean slices
// as targets and their corruption as inputs, and the sequence of batches is
// the same for any number of threads and slots, after a restart mid-epoch and
// when resumed at a batch.
#include "loader.h"
#include "testutil.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { H = 12, W = 10, VOLUMES = 3, PER_VOLUME = 9, BATCH = 4 };

static void make_cache(const char *path) {
  CacheWriter w;
  char err[256];
  if (cache_create(&w, path, H, W, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    exit(2);
  }
  static float slices[PER_VOLUME * H * W];
  int index[PER_VOLUME];
  for (int v = 0; v < VOLUMES; v++) {
    for (int s = 0; s < PER_VOLUME; s++) {
      index[s] = s;
      for (int p = 0; p < H * W; p++) // each slice distinct
        slices[s * H * W + p] = (float)((v * 31 + s * 7 + p) % 97) / 96.0f;
    }
    cache_add_volume(&w, slices, index, PER_VOLUME);
  }
  SplitSet set[VOLUMES] = {SET_TRAIN, SET_VAL, SET_TRAIN};
  if (cache_commit(&w, set, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    exit(2);
  }
}

// The rest of the current epoch's batches into x and t, back to back; returns the number of images.
// A slow consumer gives the workers time to fill every other slot while it holds a batch, which they
// must leave alone.
static int take(Loader *l, bool slow, float *x, float *t) {
  int total = 0;
  float *bx, *bt;
  for (int n; (n = loader_next(l, &bx, &bt)) > 0; total += n) {
    if (slow)
      usleep(1000);
    memcpy(x + (size_t)total * H * W, bx, sizeof(float) * (size_t)n * H * W);
    memcpy(t + (size_t)total * H * W, bt, sizeof(float) * (size_t)n * H * W);
  }
  return total;
}

// All batches of epochs 0 and 1 of a loader, back to back; returns the number of images.
static int run(const SliceCache *c, int threads, int ahead, float *x, float *t) {
  LoaderConfig cfg = {c, SET_TRAIN, BATCH, 7, true, augment_defaults(), threads, ahead};
  Loader *l = loader_new(&cfg);
  CHECK(l != NULL, "loader_new");
  int total = 0;
  for (uint32_t e = 0; l && e < 2; e++) {
    loader_start(l, e, 0);
    total += take(l, threads > 1, x + (size_t)total * H * W, t + (size_t)total * H * W);
  }
  loader_free(l);
  return total;
}

int main(void) {
  make_dir("loader");
  make_cache(path_in_dir("slices.bin"));
  SliceCache c;
  char err[256];
  if (cache_open(path_in_dir("slices.bin"), &c, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  int64_t n = cache_count(&c, SET_TRAIN);
  CHECK(n == 2 * PER_VOLUME, "train slices %lld", (long long)n);

  // The order: a permutation of the training slices, fixed by (seed, epoch).
  int64_t p0[2 * PER_VOLUME], p1[2 * PER_VOLUME], q[2 * PER_VOLUME], plain[2 * PER_VOLUME];
  loader_order(&c, SET_TRAIN, 7, 0, true, p0);
  loader_order(&c, SET_TRAIN, 7, 0, true, q);
  loader_order(&c, SET_TRAIN, 7, 1, true, p1);
  loader_order(&c, SET_TRAIN, 7, 0, false, plain);
  CHECK(!memcmp(p0, q, sizeof p0), "the same order for the same seed and epoch");
  CHECK(memcmp(p0, p1, sizeof p0), "another order for another epoch");
  int seen[VOLUMES * PER_VOLUME] = {0};
  for (int i = 0; i < n; i++) {
    seen[p0[i]]++;
    CHECK(cache_set_of(&c, p0[i]) == SET_TRAIN, "slice %lld is not a training slice", (long long)p0[i]);
    CHECK(plain[i] == (i < PER_VOLUME ? i : i + PER_VOLUME), "unshuffled order at %d", i);
  }
  for (int i = 0; i < VOLUMES * PER_VOLUME; i++)
    CHECK(seen[i] == (cache_set_of(&c, i) == SET_TRAIN), "slice %d taken %d times", i, seen[i]);

  // Content and determinism: 1 thread with 1 slot is the reference.
  size_t size = (size_t)4 * n * H * W;
  float *x = calloc(size, sizeof(float)), *t = calloc(size, sizeof(float));
  float *x2 = calloc(size, sizeof(float)), *t2 = calloc(size, sizeof(float));
  int total = run(&c, 1, 1, x, t);
  CHECK(total == 2 * n, "two epochs give %d images", total);
  AugmentParams aug = augment_defaults();
  float clean[H * W], corrupt[H * W];
  for (int e = 0; e < 2; e++)
    for (int i = 0; i < n; i++) {
      int64_t slice = (e ? p1 : p0)[i];
      cache_decode(&c, slice, clean);
      augment_image(&aug, 7, (uint32_t)e, (uint64_t)slice, H, W, clean, corrupt, NULL);
      size_t at = ((size_t)e * n + i) * H * W;
      CHECK(!memcmp(t + at, clean, sizeof clean), "epoch %d image %d: the clean target", e, i);
      CHECK(!memcmp(x + at, corrupt, sizeof corrupt), "epoch %d image %d: the corrupted input", e, i);
    }
  int threads[] = {2, 3, 4}, ahead[] = {1, 3, 8};
  for (int k = 0; k < 3; k++) {
    memset(x2, 0, size * sizeof(float));
    CHECK(run(&c, threads[k], ahead[k], x2, t2) == total, "image count with %d threads", threads[k]);
    CHECK(!memcmp(x, x2, (size_t)total * H * W * sizeof(float)) && !memcmp(t, t2, (size_t)total * H * W * sizeof(float)),
          "%d threads, %d ahead: other batches", threads[k], ahead[k]);
  }

  // Resume at batch 2 of epoch 1, after a restart in the middle of epoch 0.
  LoaderConfig cfg = {&c, SET_TRAIN, BATCH, 7, true, aug, 3, 2};
  Loader *l = loader_new(&cfg);
  loader_start(l, 0, 0);
  float *bx, *bt;
  CHECK(loader_next(l, &bx, &bt) == BATCH, "a full first batch");
  loader_start(l, 1, 2);
  int got = take(l, false, x2, t2);
  CHECK(got == n - 2 * BATCH, "resumed epoch gives %d images", got);
  size_t from = ((size_t)n + 2 * BATCH) * H * W;
  CHECK(!memcmp(x2, x + from, (size_t)got * H * W * sizeof(float)), "the resumed batches are the originals");
  CHECK(n % BATCH == 2, "the last batch is short"); // and the resumed epoch above ended with it
  loader_free(l);

  LoaderConfig empty = {&c, SET_TEST, BATCH, 7, true, aug, 1, 1};
  CHECK(loader_new(&empty) == NULL, "no loader for an empty set");
  free(x), free(t), free(x2), free(t2);
  cache_close(&c);
  return finish();
}
