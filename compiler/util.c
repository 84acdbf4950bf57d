// util.c: the arena every compilation allocates from, and small helpers.
#include "caec.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct Chunk {
  struct Chunk *next;
  size_t used, cap;
  _Alignas(16) unsigned char data[];
} Chunk;

struct Arena {
  Chunk *head;
};

enum { CHUNK_BYTES = 64 << 10 };

void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fputs("caec: out of memory\n", stderr);
    exit(2);
  }
  return p;
}

void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) {
    fputs("caec: out of memory\n", stderr);
    exit(2);
  }
  return p;
}

Arena *arena_new(void) {
  Arena *a = xmalloc(sizeof *a);
  a->head = NULL;
  return a;
}

void arena_free(Arena *a) {
  if (!a)
    return;
  for (Chunk *c = a->head, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  free(a);
}

void *arena_alloc(Arena *a, size_t size) {
  size = (size + 15) & ~(size_t)15;
  Chunk *c = a->head;
  if (!c || c->cap - c->used < size) {
    size_t cap = size > CHUNK_BYTES ? size : CHUNK_BYTES;
    c = xmalloc(sizeof *c + cap);
    c->cap = cap;
    c->used = 0;
    c->next = a->head;
    a->head = c;
  }
  void *p = c->data + c->used;
  c->used += size;
  memset(p, 0, size);
  return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n) {
  char *p = arena_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *arena_printf(Arena *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *p = arena_alloc(a, (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return p;
}

void arena_grow(Arena *a, void **items, int n, int *cap, size_t elem) {
  if (n < *cap)
    return;
  int ncap = *cap ? *cap * 2 : 8;
  void *p = arena_alloc(a, (size_t)ncap * elem);
  if (n)
    memcpy(p, *items, (size_t)n * elem);
  *items = p;
  *cap = ncap;
}

bool mul_ok(int64_t a, int64_t b, int64_t *out) { return !__builtin_mul_overflow(a, b, out); }
bool add_ok(int64_t a, int64_t b, int64_t *out) { return !__builtin_add_overflow(a, b, out); }

// Levenshtein distance, for "did you mean" hints; names are short.
int edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 63 || lb > 63)
    return 99;
  int d[64][64];
  for (size_t i = 0; i <= la; i++)
    d[i][0] = (int)i;
  for (size_t j = 0; j <= lb; j++)
    d[0][j] = (int)j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      int sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
      d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
    }
  return d[la][lb];
}

const char *with_commas(char buf[32], int64_t v) {
  char digits[24];
  unsigned long long mag = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
  int n = snprintf(digits, sizeof digits, "%llu", mag);
  char *p = buf;
  if (v < 0)
    *p++ = '-';
  for (int i = 0; i < n; i++) {
    if (i && (n - i) % 3 == 0)
      *p++ = ',';
    *p++ = digits[i];
  }
  *p = 0;
  return buf;
}

static void report(const char *cmd, const char *fmt, va_list ap) {
  fprintf(stderr, "caec%s%s: error: ", cmd ? " " : "", cmd ? cmd : "");
  vfprintf(stderr, fmt, ap);
}

int usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report(cmd, fmt, ap);
  va_end(ap);
  fprintf(stderr, " (see 'caec%s%s --help')\n", cmd ? " " : "", cmd ? cmd : "");
  return 2;
}

int fail(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report(cmd, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return 1;
}

bool exe_dir(char *dir, size_t len) {
  ssize_t n = readlink("/proc/self/exe", dir, len);
  if (n <= 0 || (size_t)n >= len)
    return false;
  dir[n] = 0;
  char *slash = strrchr(dir, '/');
  if (!slash)
    return false;
  *slash = 0;
  return true;
}
