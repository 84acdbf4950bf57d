// testcache.h: slice caches of smooth blobs for the tests of the trainers'
// commands (they link caec_runtime): each (volume, slice) its own blob, off
// the image's centre, so the images differ and are easy to reconstruct.
#ifndef CAEC_TESTCACHE_H
#define CAEC_TESTCACHE_H

#include "cache.h"
#include "resize.h"
#include "testutil.h"

#include <math.h>
#include <sys/stat.h>

// The blob of slice s of volume v, size x size, in [0, 1] with 0 and 1 taken.
static inline void blob(int size, int s, int v, float *img) {
  double cy = size * (0.3 + 0.04 * s), cx = size * (0.3 + 0.05 * v), r = size * (0.15 + 0.01 * (s + v));
  for (int i = 0; i < size * size; i++) {
    double dy = i / size - cy, dx = i % size - cx;
    img[i] = (float)exp(-(dy * dy + dx * dx) / (2 * r * r));
  }
  minmax01(img, (size_t)size * size);
}

// Makes the folder NAME in the test folder with a slice cache (slices.bin) of
// `volumes` volumes of per_volume blobs each, volume v in set sets[v]; returns
// the folder's path (valid until four more calls).
static inline const char *blob_data_set(const char *name, int size, const SplitSet *sets, int volumes,
                                        int per_volume) {
  static char paths[4][512];
  static int next;
  char *folder = paths[next++ % 4], file[600], err[256];
  snprintf(folder, sizeof paths[0], "%s", path_in_dir(name));
  mkdir(folder, 0777);
  snprintf(file, sizeof file, "%s/slices.bin", folder);
  CacheWriter w;
  CHECK(cache_create(&w, file, size, size, err, sizeof err) == 0, "%s", err);
  float *slices = malloc(sizeof(float) * (size_t)per_volume * (size_t)(size * size));
  int *index = malloc(sizeof(int) * (size_t)per_volume);
  for (int v = 0; v < volumes; v++) {
    for (int s = 0; s < per_volume; s++)
      index[s] = s, blob(size, s, v, slices + (size_t)s * size * size);
    cache_add_volume(&w, slices, index, per_volume);
  }
  free(slices), free(index);
  CHECK(cache_commit(&w, sets, err, sizeof err) == 0, "%s", err);
  return folder;
}

#endif
