// loader.h: training batches from the slice cache, prepared ahead of the
// trainer by background threads. Each epoch visits one split set's slices in
// an order drawn from the counter-based RNG at (seed, epoch); each input is
// the clean slice corrupted by the seed's augmentation at (seed, epoch, slice),
// and the target is the clean slice. So batch b of epoch e depends only on
// (seed, e, b): the same for any number of threads, and a resumed run gets the
// batches it would have had.
#ifndef CAEC_LOADER_H
#define CAEC_LOADER_H

#include "augment.h"
#include "cache.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct LoaderConfig {
  const SliceCache *cache;
  SplitSet set;
  int batch;             // images per batch
  uint64_t seed;
  bool shuffle;          // false: the cache's order (validation, evaluation)
  AugmentParams augment; // .enabled = 0: inputs are the clean slices
  int threads;           // background threads, >= 1
  int ahead;             // batches prepared ahead of the one lent out, >= 1
} LoaderConfig;

typedef struct Loader Loader;

// NULL when out of memory or the configuration is invalid (batch < 1, an empty set).
Loader *loader_new(const LoaderConfig *config);
void loader_free(Loader *l);
// Starts epoch `epoch` at batch `first` (0, or where a resumed run stopped).
void loader_start(Loader *l, uint32_t epoch, int64_t first);
// Waits for the next batch of the epoch and lends it, without a copy: *x
// (inputs) and *t (targets), each [batch][height][width] with room for a whole
// batch, the caller's to read and write until its next loader_next or
// loader_start. Returns its images, 0 after the last (*x and *t untouched).
int loader_next(Loader *l, float **x, float **t);

// The epoch's order: perm[i] is the cache index of the set's i-th slice.
// Exposed for tests; count is cache_count(set).
void loader_order(const SliceCache *cache, SplitSet set, uint64_t seed, uint32_t epoch, bool shuffle, int64_t *perm);

#endif
