// cache.h: the slice cache, one file per data set (DATASET/slices.bin) that
// trainers map into memory: every kept slice, already preprocessed to the
// model's size, as 16-bit values of [0, 1] (x * 65535, rounded), so the whole
// IXI set (about 59,000 slices of 128 x 128) takes 1.9 GB.
//
// Layout, all integers little-endian:
//   header   64 bytes: magic "CAECSLC\n", u32 version, u32 height, u32 width,
//            u32 volumes, u64 slices, then zeros;
//   pixels   slices x height x width u16, row-major, grouped by volume in
//            volume order;
//   volumes  per volume: u32 split set (split.h's SplitSet), u32 kept slices;
//   slices   per slice: u32 volume, u32 slice index in the volume's plane.
// The pixels come first so that a writer streams them and writes the small
// tables, known only at the end, after them; the pixels start 64 bytes in, so
// they are aligned for any vector load.
#ifndef CAEC_CACHE_H
#define CAEC_CACHE_H

#include "atomic.h"
#include "split.h"

#include <stddef.h>
#include <stdint.h>

enum { CACHE_VERSION = 1, CACHE_HEADER_BYTES = 64, CACHE_MAX_SIZE = 4096 };

typedef struct SliceCache {
  const unsigned char *map; // the whole file, read-only
  size_t bytes;
  int height, width, volumes;
  int64_t count;            // slices
  int64_t set_count[3];     // slices per SplitSet
  const unsigned char *pixels, *volume_table, *slice_table;
} SliceCache;

// Maps and validates a cache: the magic, the version, sizes that match the
// file's length exactly, and tables that agree with each other, so that no
// later access can read out of bounds. 0, or -1 with "PATH: PROBLEM" in err.
int cache_open(const char *path, SliceCache *c, char *err, size_t errlen);
void cache_close(SliceCache *c);

int64_t cache_count(const SliceCache *c, SplitSet set);
// Slice i's volume (an index into the manifest's volumes), its slice index in
// that volume and its split set; 0 <= i < count.
int cache_volume_of(const SliceCache *c, int64_t i);
int cache_slice_of(const SliceCache *c, int64_t i);
SplitSet cache_set_of(const SliceCache *c, int64_t i);
// Writes slice i as height x width floats in [0, 1].
void cache_decode(const SliceCache *c, int64_t i, float *out);

// Writing: volumes are added in order, each with its kept slices; the split
// sets come at the end. Nothing appears at path until cache_commit succeeds.
typedef struct CacheWriter {
  AtomicFile file;
  int height, width, volumes;
  int64_t count, volume_capacity, slice_capacity;
  uint32_t *kept;        // per volume
  uint32_t *slice_index; // per slice
  int error;             // errno of the first failed write
  unsigned char *row;    // one slice's bytes
} CacheWriter;

// 0, or -1 with the reason in err.
int cache_create(CacheWriter *w, const char *path, int height, int width, char *err, size_t errlen);
// Appends a volume's kept slices: n images of height x width floats in [0, 1]
// (others are clamped) and their slice indices. A failure (a write error, out
// of memory) is kept for cache_commit to report.
void cache_add_volume(CacheWriter *w, const float *slices, const int *index, int n);
// Writes the tables with set[v] for each volume added and puts the file in
// place; 0, or -1 with the reason in err. Frees the writer either way.
int cache_commit(CacheWriter *w, const SplitSet *set, char *err, size_t errlen);
// Drops the file being written.
void cache_abort(CacheWriter *w);

#endif
