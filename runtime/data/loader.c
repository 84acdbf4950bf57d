// loader.c: background batch preparation (see loader.h). Workers claim the
// epoch's batches in order and fill a ring of `ahead` + 1 slots; the trainer
// borrows them in order, one at a time, so that `ahead` batches are prepared
// while it works on one. A batch's content is a pure function of (seed,
// epoch, batch), so the scheduling never changes what the trainer sees.
#include "loader.h"
#include "rng.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct Slot {
  int64_t batch; // the batch it holds or is being filled with; -1: free
  bool ready;
  int images;
  float *x, *t;
} Slot;

struct Loader {
  LoaderConfig c;
  int64_t count, batches, *perm;
  size_t pixels;          // per image
  uint32_t epoch;
  int64_t next_claim;     // the next batch a worker takes
  int64_t next_take;      // the next batch the trainer takes
  uint64_t generation;    // bumped by loader_start: workers drop work of an older epoch
  bool stop;
  Slot *slots;            // nslots = ahead + 1
  int nslots;
  Slot *lent;             // the batch loader_next last lent, until the next call; NULL: none
  pthread_t *threads;
  int nthreads;
  pthread_mutex_t lock;
  pthread_cond_t changed;
};

void loader_order(const SliceCache *cache, SplitSet set, uint64_t seed, uint32_t epoch, bool shuffle, int64_t *perm) {
  int64_t n = 0;
  for (int64_t i = 0; i < cache->count; i++)
    if (cache_set_of(cache, i) == set)
      perm[n++] = i;
  // Fisher-Yates with one draw per position, so the order depends only on (seed, epoch).
  for (int64_t i = n - 1; shuffle && i > 0; i--) {
    int64_t j = (int64_t)(rng_uniform(seed, rng_stream(RNG_SHUFFLE, epoch), (uint64_t)i) * (double)(i + 1));
    int64_t tmp = perm[i];
    perm[i] = perm[j];
    perm[j] = tmp;
  }
}

// Batch b of the current epoch into slot s (outside the lock: the slot is this worker's until ready).
static void fill(Loader *l, Slot *s, int64_t b, uint32_t epoch) {
  int64_t first = b * l->c.batch, last = first + l->c.batch < l->count ? first + l->c.batch : l->count;
  const SliceCache *c = l->c.cache;
  for (int64_t i = first; i < last; i++) {
    float *t = s->t + (size_t)(i - first) * l->pixels, *x = s->x + (size_t)(i - first) * l->pixels;
    cache_decode(c, l->perm[i], t);
    augment_image(&l->c.augment, l->c.seed, epoch, (uint64_t)l->perm[i], c->height, c->width, t, x, NULL);
  }
  s->images = (int)(last - first);
}

static void *worker(void *arg) {
  Loader *l = arg;
  pthread_mutex_lock(&l->lock);
  for (;;) {
    // Claim the next batch once its slot is free (the trainer is done with the batch `ahead` + 1 before it).
    Slot *s = NULL;
    while (!l->stop && (l->next_claim >= l->batches ||
                        (s = &l->slots[l->next_claim % l->nslots])->batch >= 0))
      pthread_cond_wait(&l->changed, &l->lock);
    if (l->stop)
      break;
    int64_t b = l->next_claim++;
    uint64_t generation = l->generation;
    uint32_t epoch = l->epoch;
    s->batch = b;
    s->ready = false;
    pthread_mutex_unlock(&l->lock);
    fill(l, s, b, epoch);
    pthread_mutex_lock(&l->lock);
    if (generation == l->generation)
      s->ready = true;
    else
      s->batch = -1; // loader_start moved on while this was being filled
    pthread_cond_broadcast(&l->changed);
  }
  pthread_mutex_unlock(&l->lock);
  return NULL;
}

Loader *loader_new(const LoaderConfig *config) {
  if (config->batch < 1 || config->threads < 1 || config->ahead < 1 || cache_count(config->cache, config->set) < 1)
    return NULL;
  Loader *l = calloc(1, sizeof *l);
  if (!l)
    return NULL;
  l->c = *config;
  l->count = cache_count(config->cache, config->set);
  l->batches = (l->count + config->batch - 1) / config->batch;
  l->pixels = (size_t)config->cache->height * (size_t)config->cache->width;
  l->perm = malloc(sizeof(int64_t) * (size_t)l->count);
  l->nslots = config->ahead + 1;
  l->slots = calloc((size_t)l->nslots, sizeof(Slot));
  l->threads = calloc((size_t)config->threads, sizeof(pthread_t));
  bool ok = l->perm && l->slots && l->threads;
  for (int i = 0; ok && i < l->nslots; i++) {
    l->slots[i].batch = -1;
    l->slots[i].x = malloc(sizeof(float) * l->pixels * (size_t)config->batch);
    l->slots[i].t = malloc(sizeof(float) * l->pixels * (size_t)config->batch);
    ok = l->slots[i].x && l->slots[i].t;
  }
  pthread_mutex_init(&l->lock, NULL);
  pthread_cond_init(&l->changed, NULL);
  l->next_claim = l->batches; // nothing to do before loader_start
  for (int i = 0; ok && i < config->threads; i++)
    ok = pthread_create(&l->threads[i], NULL, worker, l) == 0 && ++l->nthreads;
  if (!ok) {
    loader_free(l);
    return NULL;
  }
  return l;
}

void loader_free(Loader *l) {
  if (!l)
    return;
  pthread_mutex_lock(&l->lock);
  l->stop = true;
  pthread_cond_broadcast(&l->changed);
  pthread_mutex_unlock(&l->lock);
  for (int i = 0; i < l->nthreads; i++)
    pthread_join(l->threads[i], NULL);
  pthread_mutex_destroy(&l->lock);
  pthread_cond_destroy(&l->changed);
  for (int i = 0; l->slots && i < l->nslots; i++) {
    free(l->slots[i].x);
    free(l->slots[i].t);
  }
  free(l->slots);
  free(l->threads);
  free(l->perm);
  free(l);
}

void loader_start(Loader *l, uint32_t epoch, int64_t first) {
  pthread_mutex_lock(&l->lock);
  // Batches still being filled belong to the old epoch: their workers drop them (generation),
  // and no worker claims another until the new epoch is set up. The ready ones, the lent one
  // among them, are dropped here.
  l->generation++;
  l->next_claim = l->batches;
  for (int i = 0; i < l->nslots; i++)
    if (l->slots[i].ready)
      l->slots[i].batch = -1, l->slots[i].ready = false;
  l->lent = NULL;
  // Wait for in-flight fills to finish so that no worker writes a slot the new epoch reuses.
  for (bool busy = true; busy;) {
    busy = false;
    for (int i = 0; i < l->nslots; i++)
      busy = busy || l->slots[i].batch >= 0;
    if (busy)
      pthread_cond_wait(&l->changed, &l->lock);
  }
  l->epoch = epoch;
  loader_order(l->c.cache, l->c.set, l->c.seed, epoch, l->c.shuffle, l->perm);
  l->next_claim = l->next_take = first < 0 ? 0 : first > l->batches ? l->batches : first;
  pthread_cond_broadcast(&l->changed);
  pthread_mutex_unlock(&l->lock);
}

int loader_next(Loader *l, float **x, float **t) {
  pthread_mutex_lock(&l->lock);
  if (l->lent) { // the trainer is done with it: a worker may fill it again
    l->lent->batch = -1, l->lent->ready = false, l->lent = NULL;
    pthread_cond_broadcast(&l->changed);
  }
  if (l->next_take >= l->batches) {
    pthread_mutex_unlock(&l->lock);
    return 0;
  }
  Slot *s = &l->slots[l->next_take % l->nslots];
  while (!(s->ready && s->batch == l->next_take))
    pthread_cond_wait(&l->changed, &l->lock);
  l->lent = s; // still ready, so no worker claims it
  l->next_take++;
  *x = s->x, *t = s->t;
  int images = s->images;
  pthread_mutex_unlock(&l->lock);
  return images;
}
