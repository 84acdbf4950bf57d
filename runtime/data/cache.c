// cache.c: the memory-mapped slice cache (see cache.h).
//
// The file is untrusted on reading: every size in the header is checked
// against the file's length before anything is multiplied by it, and the
// tables are checked once at open, so the accessors need no checks.
#include "cache.h"

#include "errors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char MAGIC[8] = {'C', 'A', 'E', 'C', 'S', 'L', 'C', '\n'};
enum { VOLUME_RECORD = 8, SLICE_RECORD = 8, MAX_VOLUMES = 1 << 24 };

static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const unsigned char *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }
static void put32(unsigned char *p, uint32_t x) {
  for (int b = 0; b < 4; b++)
    p[b] = (unsigned char)(x >> 8 * b);
}
static void put64(unsigned char *p, uint64_t x) {
  put32(p, (uint32_t)x);
  put32(p + 4, (uint32_t)(x >> 32));
}

// ---- reading -----------------------------------------------------------------------

// Checks the header against the file's length and the tables against each other.
static int validate(SliceCache *c, const char *path, char *err, size_t errlen) {
  const unsigned char *h = c->map;
  if (c->bytes < CACHE_HEADER_BYTES || memcmp(h, MAGIC, sizeof MAGIC))
    return err_fail(err, errlen, NULL, "%s: not a slice cache (no caedata header)", path);
  uint32_t version = get32(h + 8), height = get32(h + 12), width = get32(h + 16), volumes = get32(h + 20);
  uint64_t count = get64(h + 24);
  if (version != CACHE_VERSION)
    return err_fail(err, errlen, NULL, "%s: cache version %u, this build reads version %d: run caedata prepare again", path,
                version, CACHE_VERSION);
  if (height < 1 || height > CACHE_MAX_SIZE || width < 1 || width > CACHE_MAX_SIZE || volumes > MAX_VOLUMES)
    return err_fail(err, errlen, NULL, "%s: corrupt header (slices of %ux%u, %u volumes)", path, height, width, volumes);
  // Bounded by the file's length first, so that the products below cannot overflow.
  uint64_t per_slice = (uint64_t)height * width * 2 + SLICE_RECORD, body = c->bytes - CACHE_HEADER_BYTES;
  if (count > body / per_slice ||
      body != count * per_slice + (uint64_t)volumes * VOLUME_RECORD)
    return err_fail(err, errlen, NULL, "%s: truncated or corrupt: %zu bytes, but the header says %llu slices of %ux%u in %u "
                "volumes", path, c->bytes, (unsigned long long)count, height, width, volumes);
  c->height = (int)height, c->width = (int)width, c->volumes = (int)volumes, c->count = (int64_t)count;
  c->pixels = h + CACHE_HEADER_BYTES;
  c->volume_table = c->pixels + count * height * width * 2;
  c->slice_table = c->volume_table + (size_t)volumes * VOLUME_RECORD;
  uint64_t at = 0; // slices are grouped by volume, in volume order
  for (uint32_t v = 0; v < volumes; v++) {
    uint32_t set = get32(c->volume_table + v * VOLUME_RECORD), kept = get32(c->volume_table + v * VOLUME_RECORD + 4);
    if (set > SET_TEST || kept > count - at)
      return err_fail(err, errlen, NULL, "%s: corrupt volume table at volume %u", path, v);
    for (uint64_t i = at; i < at + kept; i++)
      if (get32(c->slice_table + i * SLICE_RECORD) != v || get32(c->slice_table + i * SLICE_RECORD + 4) > INT32_MAX)
        return err_fail(err, errlen, NULL, "%s: corrupt slice table at slice %llu", path, (unsigned long long)i);
    c->set_count[set] += kept;
    at += kept;
  }
  if (at != count)
    return err_fail(err, errlen, NULL, "%s: corrupt: the volumes hold %llu slices, the header says %llu", path,
                (unsigned long long)at, (unsigned long long)count);
  return 0;
}

int cache_open(const char *path, SliceCache *c, char *err, size_t errlen) {
  *c = (SliceCache){0};
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st)) {
    int e = errno;
    if (fd >= 0)
      close(fd);
    return err_fail(err, errlen, NULL, "%s: cannot open: %s", path, strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return err_fail(err, errlen, NULL, "%s: not a regular file", path);
  }
  c->bytes = (size_t)st.st_size;
  void *map = c->bytes ? mmap(NULL, c->bytes, PROT_READ, MAP_SHARED, fd, 0) : NULL;
  int e = errno;
  close(fd); // the mapping keeps the file
  if (map == MAP_FAILED) {
    *c = (SliceCache){0};
    return err_fail(err, errlen, NULL, "%s: cannot map: %s", path, strerror(e));
  }
  c->map = map;
  if (!c->map || validate(c, path, err, errlen)) {
    if (!c->map)
      err_fail(err, errlen, NULL, "%s: empty file, not a slice cache", path);
    cache_close(c);
    return -1;
  }
  return 0;
}

void cache_close(SliceCache *c) {
  if (c->map)
    munmap((void *)c->map, c->bytes);
  *c = (SliceCache){0};
}

int64_t cache_count(const SliceCache *c, SplitSet set) { return (unsigned)set <= SET_TEST ? c->set_count[set] : 0; }

int cache_volume_of(const SliceCache *c, int64_t i) { return (int)get32(c->slice_table + i * SLICE_RECORD); }

int cache_slice_of(const SliceCache *c, int64_t i) { return (int)get32(c->slice_table + i * SLICE_RECORD + 4); }

SplitSet cache_set_of(const SliceCache *c, int64_t i) {
  return (SplitSet)get32(c->volume_table + (size_t)cache_volume_of(c, i) * VOLUME_RECORD);
}

void cache_decode(const SliceCache *c, int64_t i, float *out) {
  size_t n = (size_t)c->height * c->width;
  const unsigned char *p = c->pixels + (size_t)i * n * 2;
  for (size_t k = 0; k < n; k++)
    out[k] = (float)(p[2 * k] | p[2 * k + 1] << 8) * (1.0f / 65535);
}

// ---- writing -----------------------------------------------------------------------

int cache_create(CacheWriter *w, const char *path, int height, int width, char *err, size_t errlen) {
  *w = (CacheWriter){.height = height, .width = width};
  if (height < 1 || height > CACHE_MAX_SIZE || width < 1 || width > CACHE_MAX_SIZE)
    return err_fail(err, errlen, NULL, "%s: slices of %dx%d: each size must be 1 to %d", path, height, width, CACHE_MAX_SIZE);
  if (!(w->row = malloc((size_t)height * width * 2)))
    return err_fail(err, errlen, NULL, "%s: out of memory", path);
  if (atomic_open(&w->file, path, err, errlen)) {
    free(w->row);
    return -1;
  }
  // The header is written last, when the counts are known; zeros hold its place.
  unsigned char header[CACHE_HEADER_BYTES] = {0};
  if (fwrite(header, sizeof header, 1, w->file.f) != 1)
    w->error = errno ? errno : EIO;
  return 0;
}

// p grown to hold want entries of size bytes (*cap is its capacity): p itself, a new block, or NULL when out
// of memory (p is left as it was).
static void *grow(void *p, int64_t *cap, int64_t want, size_t size) {
  if (want <= *cap)
    return p;
  int64_t n = *cap ? *cap : 64;
  while (n < want)
    n *= 2;
  void *q = realloc(p, (size_t)n * size);
  if (q)
    *cap = n;
  return q;
}

void cache_add_volume(CacheWriter *w, const float *slices, const int *index, int n) {
  uint32_t *kept = grow(w->kept, &w->volume_capacity, w->volumes + 1, sizeof *w->kept);
  if (kept)
    w->kept = kept;
  uint32_t *slice_index =
      kept ? grow(w->slice_index, &w->slice_capacity, w->count + n, sizeof *w->slice_index) : NULL;
  if (!slice_index) {
    w->error = w->error ? w->error : ENOMEM;
    return;
  }
  w->slice_index = slice_index;
  size_t pixels = (size_t)w->height * w->width;
  for (int s = 0; s < n; s++) {
    const float *x = slices + (size_t)s * pixels;
    for (size_t k = 0; k < pixels; k++) {
      float v = x[k] > 0 ? (x[k] < 1 ? x[k] : 1) : 0; // NaN too goes to 0
      unsigned q = (unsigned)(v * 65535 + 0.5f);
      w->row[2 * k] = (unsigned char)q, w->row[2 * k + 1] = (unsigned char)(q >> 8);
    }
    if (!w->error && fwrite(w->row, pixels * 2, 1, w->file.f) != 1)
      w->error = errno ? errno : EIO;
    w->slice_index[w->count + s] = (uint32_t)index[s];
  }
  w->kept[w->volumes++] = (uint32_t)n;
  w->count += n;
}

static void writer_free(CacheWriter *w) {
  free(w->kept);
  free(w->slice_index);
  free(w->row);
  *w = (CacheWriter){0};
}

int cache_commit(CacheWriter *w, const SplitSet *set, char *err, size_t errlen) {
  unsigned char rec[8];
  for (int v = 0; v < w->volumes && !w->error; v++) {
    put32(rec, (uint32_t)set[v]);
    put32(rec + 4, w->kept[v]);
    if (fwrite(rec, sizeof rec, 1, w->file.f) != 1)
      w->error = errno ? errno : EIO;
  }
  for (int64_t v = 0, i = 0; v < w->volumes && !w->error; v++)
    for (uint32_t k = 0; k < w->kept[v] && !w->error; k++, i++) {
      put32(rec, (uint32_t)v);
      put32(rec + 4, w->slice_index[i]);
      if (fwrite(rec, sizeof rec, 1, w->file.f) != 1)
        w->error = errno ? errno : EIO;
    }
  unsigned char header[CACHE_HEADER_BYTES] = {0};
  memcpy(header, MAGIC, sizeof MAGIC);
  put32(header + 8, CACHE_VERSION);
  put32(header + 12, (uint32_t)w->height);
  put32(header + 16, (uint32_t)w->width);
  put32(header + 20, (uint32_t)w->volumes);
  put64(header + 24, (uint64_t)w->count);
  if (!w->error && (fseek(w->file.f, 0, SEEK_SET) || fwrite(header, sizeof header, 1, w->file.f) != 1))
    w->error = errno ? errno : EIO;
  int rc = atomic_commit(&w->file, w->error, err, errlen);
  writer_free(w);
  return rc;
}

void cache_abort(CacheWriter *w) {
  char ignored[8];
  atomic_commit(&w->file, ECANCELED, ignored, sizeof ignored);
  writer_free(w);
}
