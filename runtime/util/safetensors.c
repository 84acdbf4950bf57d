// safetensors.c: the safetensors reader and writer (see safetensors.h).
//
// Reading: the header is parsed by a small recursive-descent parser for the
// only JSON shape the format has (an object of objects of strings, integers
// and arrays of integers), so no value ever nests deeper than three levels.
// Every string is decoded into one block the size of the header, and the
// tensor data into one block sized by the header's offsets after they are
// checked against the file's size: input bounds every allocation.
//
// Writing: the header is built in memory, then the header and the tensors go
// to a temporary file that is synced and renamed over the target.
#include "safetensors.h"

#include "atomic.h"
#include "errors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c copies tensor data as is, so it needs a little-endian machine"
#endif

enum { NDTYPES = ST_U8 + 1 };
static const char *const dtype_names[NDTYPES] = {[ST_F32] = "F32", [ST_F64] = "F64", [ST_I64] = "I64", [ST_U8] = "U8"};
static const size_t dtype_sizes[NDTYPES] = {[ST_F32] = 4, [ST_F64] = 8, [ST_I64] = 8, [ST_U8] = 1};

size_t st_dtype_size(StDtype dtype) { return (unsigned)dtype < NDTYPES ? dtype_sizes[dtype] : 0; }
const char *st_dtype_name(StDtype dtype) { return (unsigned)dtype < NDTYPES ? dtype_names[dtype] : "?"; }

// ---- messages ------------------------------------------------------------------

// A name as messages show it. Names come from untrusted files: control
// characters, which would break the one-line message, become '?', and long
// names are cut at a UTF-8 character boundary.
typedef struct Shown {
  char s[100];
} Shown;

static Shown show(const char *name) {
  Shown r;
  size_t n = 0, max = sizeof r.s - 4;
  for (; name[n] && n < max; n++)
    r.s[n] = (unsigned char)name[n] < 0x20 || name[n] == 0x7f ? '?' : name[n];
  if (name[n]) {
    while (n > 0 && ((unsigned char)name[n] & 0xC0) == 0x80) // name[n] continues a character: cut before it
      n--;
    memcpy(r.s + n, "...", 3);
    n += 3;
  }
  r.s[n] = 0;
  return r;
}

// "[32,1,3,3]"
static char *format_shape(char buf[200], const int64_t *shape, int ndim) {
  int n = snprintf(buf, 200, "[");
  for (int i = 0; i < ndim; i++)
    n += snprintf(buf + n, 200 - (size_t)n, "%s%" PRId64, i ? "," : "", shape[i]); // at most 8*21 chars
  snprintf(buf + n, 200 - (size_t)n, "]");
  return buf;
}

// ---- helpers shared by reading and writing ---------------------------------------

static uint64_t get_le64(const unsigned char *b) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | b[i];
  return v;
}

static void put_le64(unsigned char *b, uint64_t v) {
  for (int i = 0; i < 8; i++)
    b[i] = (unsigned char)(v >> 8 * i);
}

// The byte size of a tensor of this shape; false when it does not fit in an int64_t.
static bool shape_bytes(const int64_t *shape, int ndim, StDtype dtype, uint64_t *bytes) {
  uint64_t n = st_dtype_size(dtype);
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0 || __builtin_mul_overflow(n, (uint64_t)shape[i], &n))
      return false;
  *bytes = n;
  return n <= INT64_MAX;
}

// Length of the UTF-8 sequence at s (n > 0 bytes available), 0 when it is not
// valid UTF-8: overlong forms, surrogates and code points past U+10FFFF are not (RFC 3629).
static int utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0], lo = 0x80, hi = 0xBF; // lo, hi: the range of the second byte
  int len;
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    lo = c == 0xE0 ? 0xA0 : lo;
    hi = c == 0xED ? 0x9F : hi;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    lo = c == 0xF0 ? 0x90 : lo;
    hi = c == 0xF4 ? 0x8F : hi;
  } else {
    return 0;
  }
  if (n < (size_t)len || s[1] < lo || s[1] > hi)
    return 0;
  for (int i = 2; i < len; i++)
    if ((s[i] & 0xC0) != 0x80)
      return 0;
  return len;
}

static bool valid_utf8(const char *s) {
  size_t n = strlen(s);
  for (size_t i = 0, k; i < n; i += k)
    if (!(k = (size_t)utf8_len((const unsigned char *)s + i, n - i)))
      return false;
  return true;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

// Sorts names and returns one that occurs twice, or NULL.
static const char *find_duplicate(const char **names, int n) {
  qsort(names, (size_t)n, sizeof *names, cmp_names);
  for (int i = 1; i < n; i++)
    if (!strcmp(names[i - 1], names[i]))
      return names[i];
  return NULL;
}

// Makes room for one more item in an array of *cap items: the new array, or
// NULL when out of memory (the old one intact).
static void *grow(void *items, int *cap, size_t size) {
  int ncap = *cap ? 2 * *cap : 16; // the header's size bounds the counts far below INT_MAX
  void *p = realloc(items, (size_t)ncap * size);
  if (p)
    *cap = ncap;
  return p;
}

// ---- the header parser ---------------------------------------------------------------

typedef struct Parser {
  const unsigned char *s; // the header's JSON, not NUL-terminated
  size_t n, pos;
  char *strings;          // decoded strings, each NUL-terminated; n + 1 bytes always suffice
  size_t used;
  const char *path;
  char *err;
  size_t errlen;
} Parser;

static int peek(const Parser *p) { return p->pos < p->n ? p->s[p->pos] : -1; }

static void skip_ws(Parser *p) {
  for (int c; (c = peek(p)) == ' ' || c == '\t' || c == '\n' || c == '\r';)
    p->pos++;
}

// A JSON syntax error, placed by its offset in the file (the header starts at byte 8).
__attribute__((format(printf, 2, 3))) static int jfail(Parser *p, const char *fmt, ...) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "bad header JSON at byte %zu: ", 8 + p->pos);
  va_list ap;
  va_start(ap, fmt);
  err_vfail(p->err, p->errlen, p->path, prefix, fmt, ap);
  va_end(ap);
  return -1;
}

// An error in one tensor's entry.
__attribute__((format(printf, 3, 4))) static int tfail(Parser *p, const char *name, const char *fmt, ...) {
  char prefix[sizeof(Shown) + 16];
  snprintf(prefix, sizeof prefix, "tensor '%s': ", show(name).s);
  va_list ap;
  va_start(ap, fmt);
  err_vfail(p->err, p->errlen, p->path, prefix, fmt, ap);
  va_end(ap);
  return -1;
}

static int oom(Parser *p) { return err_fail(p->err, p->errlen, p->path, "out of memory"); }

// What is at the current position, for "expected X, found Y".
static Shown found(const Parser *p) {
  Shown r;
  int c = peek(p);
  const char *what = c < 0 ? "the end of the header" : c == '"' ? "a string" : c == '{' ? "an object"
                     : c == '[' ? "an array" : c == '-' || (c >= '0' && c <= '9') ? "a number" : NULL;
  static const char *const words[] = {"true", "false", "null"};
  for (int i = 0; i < 3 && !what; i++)
    if (p->n - p->pos >= strlen(words[i]) && !memcmp(p->s + p->pos, words[i], strlen(words[i])))
      what = words[i];
  if (what)
    snprintf(r.s, sizeof r.s, "%s", what);
  else if (c > 0x20 && c < 0x7f)
    snprintf(r.s, sizeof r.s, "'%c'", c);
  else
    snprintf(r.s, sizeof r.s, "byte 0x%02x", (unsigned)c);
  return r;
}

static int expected(Parser *p, const char *what) { return jfail(p, "expected %s, found %s", what, found(p).s); }

static int expect(Parser *p, char c, const char *what) {
  skip_ws(p);
  if (peek(p) != c)
    return expected(p, what);
  p->pos++;
  return 0;
}

static int hex4(Parser *p, uint32_t *cp) {
  *cp = 0;
  for (int i = 0; i < 4; i++, p->pos++) {
    int c = peek(p), d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0)
      return jfail(p, "\\u needs four hex digits");
    *cp = *cp << 4 | (uint32_t)d;
  }
  return 0;
}

// The escape after a backslash, appended to dst as UTF-8 (at most 4 bytes, and
// never more than the escape's own length).
static int parse_escape(Parser *p, char **dst) {
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  int c = peek(p);
  const char *e = c > 0 ? strchr(from, c) : NULL;
  if (e) {
    *(*dst)++ = to[e - from];
    p->pos++;
    return 0;
  }
  if (c != 'u')
    return c < 0 ? jfail(p, "unterminated string")
           : c > 0x20 && c < 0x7f ? jfail(p, "unknown escape '\\%c'", c)
                                  : jfail(p, "unknown escape: '\\' before byte 0x%02x", (unsigned)c);
  p->pos++;
  uint32_t cp, lo;
  if (hex4(p, &cp))
    return -1;
  if (cp >= 0xD800 && cp <= 0xDBFF) { // a high surrogate: the low half must follow
    if (p->n - p->pos < 2 || memcmp(p->s + p->pos, "\\u", 2))
      return jfail(p, "unpaired surrogate \\u%04X", (unsigned)cp);
    p->pos += 2;
    if (hex4(p, &lo))
      return -1;
    if (lo < 0xDC00 || lo > 0xDFFF)
      return jfail(p, "unpaired surrogate \\u%04X", (unsigned)cp);
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
  } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
    return jfail(p, "unpaired surrogate \\u%04X", (unsigned)cp);
  }
  if (cp == 0)
    return jfail(p, "\\u0000 in a string (names and metadata cannot hold NUL)");
  unsigned char *d = (unsigned char *)*dst;
  if (cp < 0x80) {
    *d++ = (unsigned char)cp;
  } else if (cp < 0x800) {
    *d++ = (unsigned char)(0xC0 | cp >> 6);
    *d++ = (unsigned char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *d++ = (unsigned char)(0xE0 | cp >> 12);
    *d++ = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    *d++ = (unsigned char)(0x80 | (cp & 0x3F));
  } else {
    *d++ = (unsigned char)(0xF0 | cp >> 18);
    *d++ = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    *d++ = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    *d++ = (unsigned char)(0x80 | (cp & 0x3F));
  }
  *dst = (char *)d;
  return 0;
}

// A string, decoded into p->strings. The decoded bytes never outnumber the
// encoded ones, and the NUL takes the place of the two quotes, so all the
// header's strings fit in n + 1 bytes.
static int parse_string(Parser *p, const char **out) {
  skip_ws(p);
  if (peek(p) != '"')
    return expected(p, "a string");
  p->pos++;
  char *start = p->strings + p->used, *dst = start;
  for (;;) {
    int c = peek(p);
    if (c < 0)
      return jfail(p, "unterminated string");
    if (c == '"')
      break;
    if (c < 0x20)
      return jfail(p, "control character 0x%02x in a string (it must be escaped)", (unsigned)c);
    if (c == '\\') {
      p->pos++;
      if (parse_escape(p, &dst))
        return -1;
    } else {
      int k = utf8_len(p->s + p->pos, p->n - p->pos);
      if (!k)
        return jfail(p, "invalid UTF-8 in a string");
      memcpy(dst, p->s + p->pos, (size_t)k);
      dst += k;
      p->pos += (size_t)k;
    }
  }
  p->pos++;
  *dst++ = 0;
  p->used = (size_t)(dst - p->strings);
  *out = start;
  return 0;
}

// A non-negative integer: the only numbers safetensors has.
static int parse_uint(Parser *p, uint64_t *v) {
  skip_ws(p);
  int c = peek(p);
  if (c == '-')
    return jfail(p, "negative numbers are not allowed");
  if (c < '0' || c > '9')
    return expected(p, "a non-negative integer");
  size_t start = p->pos;
  *v = 0;
  for (; (c = peek(p)) >= '0' && c <= '9'; p->pos++)
    if (__builtin_mul_overflow(*v, 10, v) || __builtin_add_overflow(*v, (uint64_t)(c - '0'), v)) {
      p->pos = start;
      return jfail(p, "integer too large");
    }
  if (p->s[start] == '0' && p->pos - start > 1) {
    p->pos = start;
    return jfail(p, "integers must not have leading zeros");
  }
  if (c == '.' || c == 'e' || c == 'E')
    return jfail(p, "numbers must be integers, without a fraction or an exponent");
  return 0;
}

// Steps through an object or array that ends with `close`: returns 1 when a
// member follows (for objects, its key is read into *key, and the ':'), 0 after
// the closing bracket, -1 on error. *count counts the members so far.
static int next_member(Parser *p, char close, int *count, const char **key) {
  skip_ws(p);
  if (peek(p) == close) {
    p->pos++;
    return 0;
  }
  if ((*count)++ > 0 && expect(p, ',', close == '}' ? "',' or '}'" : "',' or ']'"))
    return -1;
  if (key && (parse_string(p, key) || expect(p, ':', "':' after the key")))
    return -1;
  return 1;
}

static int parse_metadata(Parser *p, StFile *f, int *cap) {
  if (expect(p, '{', "an object for \"__metadata__\""))
    return -1;
  const char *key;
  for (int n = 0, r; (r = next_member(p, '}', &n, &key));) {
    if (r < 0)
      return -1;
    if (f->nmeta == *cap) {
      StMeta *m = grow(f->meta, cap, sizeof *m);
      if (!m)
        return oom(p);
      f->meta = m;
    }
    StMeta *m = &f->meta[f->nmeta++];
    m->key = key;
    if (parse_string(p, &m->value))
      return -1;
  }
  return 0;
}

// One tensor's entry: {"dtype": ..., "shape": [...], "data_offsets": [begin, end]}, keys in any order.
static int parse_tensor(Parser *p, StTensor *t, uint64_t data_len) {
  static const char *const keys[3] = {"dtype", "shape", "data_offsets"};
  bool have[3] = {false, false, false};
  uint64_t off[2] = {0, 0};
  if (expect(p, '{', "an object for the tensor"))
    return -1;
  const char *key;
  for (int n = 0, r; (r = next_member(p, '}', &n, &key));) {
    if (r < 0)
      return -1;
    int k = 0;
    while (k < 3 && strcmp(key, keys[k]))
      k++;
    if (k == 3)
      return tfail(p, t->name, "unknown key '%s'", show(key).s);
    if (have[k])
      return tfail(p, t->name, "key '%s' appears twice", key);
    have[k] = true;
    if (k == 0) {
      const char *name;
      if (parse_string(p, &name))
        return -1;
      int d = 0;
      while (d < NDTYPES && strcmp(name, dtype_names[d]))
        d++;
      if (d == NDTYPES)
        return tfail(p, t->name, "unsupported dtype '%s' (F32, F64, I64 and U8 are supported)", show(name).s);
      t->dtype = (StDtype)d;
    } else {
      if (expect(p, '[', k == 1 ? "an array for \"shape\"" : "an array for \"data_offsets\""))
        return -1;
      int count = 0, max = k == 1 ? ST_MAX_DIMS : 2;
      for (int r2; (r2 = next_member(p, ']', &count, NULL));) {
        uint64_t v = 0;
        if (r2 < 0 || parse_uint(p, &v))
          return -1;
        if (count > max)
          return k == 1 ? tfail(p, t->name, "shape has more than %d dimensions", ST_MAX_DIMS)
                        : tfail(p, t->name, "data_offsets must be [begin, end]");
        if (k == 1 && v > INT64_MAX)
          return tfail(p, t->name, "dimension %" PRIu64 " is too large", v);
        if (k == 1)
          t->shape[count - 1] = (int64_t)v;
        else
          off[count - 1] = v;
      }
      if (k == 1)
        t->ndim = count;
      else if (count != 2)
        return tfail(p, t->name, "data_offsets must be [begin, end]");
    }
  }
  for (int k = 0; k < 3; k++)
    if (!have[k])
      return tfail(p, t->name, "missing key '%s'", keys[k]);

  char shape[200];
  uint64_t bytes;
  if (!shape_bytes(t->shape, t->ndim, t->dtype, &bytes))
    return tfail(p, t->name, "shape %s of %s is too large: its byte size overflows int64",
                 format_shape(shape, t->shape, t->ndim), dtype_names[t->dtype]);
  if (off[0] > off[1])
    return tfail(p, t->name, "data_offsets [%" PRIu64 ", %" PRIu64 ") end before they begin", off[0], off[1]);
  if (off[1] - off[0] != bytes)
    return tfail(p, t->name, "data_offsets [%" PRIu64 ", %" PRIu64 ") do not match shape %s of %s (%" PRIu64
                 " bytes)", off[0], off[1], format_shape(shape, t->shape, t->ndim), dtype_names[t->dtype], bytes);
  if (off[1] > data_len)
    return tfail(p, t->name, "data_offsets [%" PRIu64 ", %" PRIu64 ") run past the end of the data (%" PRIu64
                 " bytes)", off[0], off[1], data_len);
  t->offset = off[0];
  t->nbytes = (size_t)bytes; // bytes <= data_len, which is in memory or in a file we can read
  return 0;
}

typedef struct Span {
  uint64_t begin, end;
  int index;
} Span;

static int cmp_spans(const void *a, const void *b) {
  const Span *x = a, *y = b;
  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end)
    return x->end < y->end ? -1 : 1;
  return (x->index > y->index) - (x->index < y->index);
}

// The spec requires the tensors to tile the data buffer: sorted by offset, each
// starts where the one before ends, the first at 0 and the last at the end.
static int check_tiling(Parser *p, const StFile *f, uint64_t data_len) {
  Span *spans = malloc(((size_t)f->count + 1) * sizeof *spans);
  if (!spans)
    return oom(p);
  for (int i = 0; i < f->count; i++)
    spans[i] = (Span){f->tensors[i].offset, f->tensors[i].offset + f->tensors[i].nbytes, i};
  qsort(spans, (size_t)f->count, sizeof *spans, cmp_spans);
  uint64_t at = 0;
  int rc = 0, prev = -1;
  for (int i = 0; i < f->count && !rc; i++) {
    const Span *s = &spans[i];
    const StTensor *t = &f->tensors[s->index];
    if (s->begin < at)
      rc = tfail(p, t->name, "data_offsets [%" PRIu64 ", %" PRIu64 ") overlap tensor '%s' [%" PRIu64 ", %" PRIu64
                 ")", s->begin, s->end, show(f->tensors[spans[prev].index].name).s, spans[prev].begin, at);
    else if (s->begin > at)
      rc = tfail(p, t->name, "data_offsets [%" PRIu64 ", %" PRIu64 ") leave a gap: bytes [%" PRIu64 ", %" PRIu64
                 ") of the data belong to no tensor", s->begin, s->end, at, s->begin);
    at = s->end;
    prev = i;
  }
  if (!rc && at != data_len)
    rc = err_fail(p->err, p->errlen, p->path, "%" PRIu64 " trailing bytes after the last tensor's data (%" PRIu64
              " bytes of data, tensors cover %" PRIu64 ")", data_len - at, data_len, at);
  free(spans);
  return rc;
}

static int check_unique(Parser *p, const StFile *f) {
  int n = f->count > f->nmeta ? f->count : f->nmeta;
  const char **names = malloc(((size_t)n + 1) * sizeof *names);
  if (!names)
    return oom(p);
  const char *dup;
  int rc = 0;
  for (int i = 0; i < f->count; i++)
    names[i] = f->tensors[i].name;
  if ((dup = find_duplicate(names, f->count)))
    rc = err_fail(p->err, p->errlen, p->path, "tensor '%s' appears twice", show(dup).s);
  for (int i = 0; i < f->nmeta; i++)
    names[i] = f->meta[i].key;
  if (!rc && (dup = find_duplicate(names, f->nmeta)))
    rc = err_fail(p->err, p->errlen, p->path, "metadata key '%s' appears twice", show(dup).s);
  free(names);
  return rc;
}

// Parses the header into f: names, metadata, dtypes, shapes and offsets, all
// checked against a data buffer of data_len bytes. f->data stays NULL.
static int parse_header(Parser *p, uint64_t data_len, StFile *f) {
  if (!(f->strings = malloc(p->n + 1)))
    return oom(p);
  p->strings = f->strings;
  if (expect(p, '{', "'{' to open the header"))
    return -1;
  int tcap = 0, mcap = 0;
  bool have_meta = false;
  const char *key;
  for (int n = 0, r; (r = next_member(p, '}', &n, &key));) {
    if (r < 0)
      return -1;
    if (!strcmp(key, "__metadata__")) {
      if (have_meta)
        return jfail(p, "\"__metadata__\" appears twice");
      have_meta = true;
      if (parse_metadata(p, f, &mcap))
        return -1;
      continue;
    }
    if (f->count == tcap) {
      StTensor *t = grow(f->tensors, &tcap, sizeof *t);
      if (!t)
        return oom(p);
      f->tensors = t;
    }
    StTensor *t = &f->tensors[f->count++];
    *t = (StTensor){.name = key};
    if (parse_tensor(p, t, data_len))
      return -1;
  }
  skip_ws(p); // the padding
  if (p->pos != p->n)
    return jfail(p, "%s after the header's closing '}'", found(p).s);
  return check_unique(p, f) || check_tiling(p, f, data_len) ? -1 : 0;
}

// Checks the length prefix: N bytes of header with `rest` bytes after the prefix.
static int check_header_len(uint64_t n, uint64_t rest, const char *path, char *err, size_t errlen) {
  if (n > ST_MAX_HEADER)
    return err_fail(err, errlen, path, "header length %" PRIu64 " is over the limit of %" PRIu64
                " bytes (not a safetensors file?)", n, ST_MAX_HEADER);
  if (n > rest)
    return err_fail(err, errlen, path, "header length %" PRIu64 " runs past the end of the file (%" PRIu64
                " bytes follow the length)", n, rest);
  return 0;
}

// Parses header bytes [8, 8 + n) of a file whose data buffer has data_len bytes,
// then gives every tensor its place in one block. The places are rounded up to
// 8 bytes, so the data is aligned for its dtype whatever the file's offsets.
static int parse_and_place(const unsigned char *header, uint64_t n, uint64_t data_len, const char *path,
                           StFile *out, char *err, size_t errlen) {
  Parser p = {.s = header, .n = n, .path = path, .err = err, .errlen = errlen};
  if (parse_header(&p, data_len, out))
    return -1;
  size_t total = 0; // at most data_len + 7 * count: no overflow
  for (int i = 0; i < out->count; i++)
    total += (out->tensors[i].nbytes + 7) & ~(size_t)7;
  if (!(out->data = malloc(total ? total : 1))) // 1: data pointers are never NULL
    return err_fail(err, errlen, path, "out of memory for %zu bytes of tensor data", total);
  for (size_t i = 0, at = 0; i < (size_t)out->count; i++) {
    out->tensors[i].data = out->data + at;
    at += (out->tensors[i].nbytes + 7) & ~(size_t)7;
  }
  return 0;
}

int st_parse(const unsigned char *buf, size_t len, const char *path, StFile *out, char *err, size_t errlen) {
  *out = (StFile){0};
  path = path ? path : "<memory>";
  if (len < 8)
    return err_fail(err, errlen, path, "file is %zu bytes, too short for the 8-byte header length", len);
  uint64_t n = get_le64(buf);
  if (check_header_len(n, len - 8, path, err, errlen) ||
      parse_and_place(buf + 8, n, len - 8 - n, path, out, err, errlen)) {
    st_free(out);
    return -1;
  }
  for (int i = 0; i < out->count; i++)
    memcpy(out->tensors[i].data, buf + 8 + n + out->tensors[i].offset, out->tensors[i].nbytes);
  return 0;
}

// Reads exactly n bytes at offset off.
static int read_at(int fd, void *buf, size_t n, uint64_t off, const char *path, char *err, size_t errlen) {
  for (size_t done = 0; done < n;) {
    ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return err_fail(err, errlen, path, "read error: %s", strerror(errno));
    if (r == 0)
      return err_fail(err, errlen, path, "file ended early (did it change while being read?)");
    done += (size_t)r;
  }
  return 0;
}

static int read_fd(int fd, const char *path, StFile *out, char *err, size_t errlen) {
  struct stat st;
  unsigned char prefix[8];
  if (fstat(fd, &st))
    return err_fail(err, errlen, path, "cannot stat: %s", strerror(errno));
  if (!S_ISREG(st.st_mode))
    return err_fail(err, errlen, path, "not a regular file");
  uint64_t size = (uint64_t)st.st_size;
  if (size < 8)
    return err_fail(err, errlen, path, "file is %" PRIu64 " bytes, too short for the 8-byte header length", size);
  if (read_at(fd, prefix, 8, 0, path, err, errlen))
    return -1;
  uint64_t n = get_le64(prefix);
  if (check_header_len(n, size - 8, path, err, errlen))
    return -1;
  unsigned char *header = malloc(n ? n : 1);
  if (!header)
    return err_fail(err, errlen, path, "out of memory for a header of %" PRIu64 " bytes", n);
  int rc = read_at(fd, header, n, 8, path, err, errlen);
  if (!rc)
    rc = parse_and_place(header, n, size - 8 - n, path, out, err, errlen);
  free(header); // the parsed strings live in out->strings
  for (int i = 0; i < out->count && !rc; i++)
    rc = read_at(fd, out->tensors[i].data, out->tensors[i].nbytes, 8 + n + out->tensors[i].offset, path, err, errlen);
  return rc;
}

int st_read(const char *path, StFile *out, char *err, size_t errlen) {
  *out = (StFile){0};
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return err_fail(err, errlen, path, "cannot open: %s", strerror(errno));
  int rc = read_fd(fd, path, out, err, errlen);
  close(fd);
  if (rc)
    st_free(out);
  return rc;
}

void st_free(StFile *f) {
  free(f->tensors);
  free(f->meta);
  free(f->strings);
  free(f->data);
  *f = (StFile){0};
}

const StTensor *st_find(const StFile *f, const char *name) {
  for (int i = 0; i < f->count; i++)
    if (!strcmp(f->tensors[i].name, name))
      return &f->tensors[i];
  return NULL;
}

const char *st_meta(const StFile *f, const char *key) {
  for (int i = 0; i < f->nmeta; i++)
    if (!strcmp(f->meta[i].key, key))
      return f->meta[i].value;
  return NULL;
}

// ---- writing -----------------------------------------------------------------------------

// A growing byte buffer; `failed` records running out of memory, checked once at the end.
typedef struct Buf {
  unsigned char *p;
  size_t len, cap;
  bool failed;
} Buf;

static void put(Buf *b, const void *s, size_t n) {
  if (b->failed)
    return;
  if (b->cap - b->len < n) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n)
      cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p) {
      b->failed = true;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

static void put_str(Buf *b, const char *s) { put(b, s, strlen(s)); }

// A JSON string. Other bytes than quote, backslash and control characters go as
// they are: the text is valid UTF-8, checked before.
static void put_json_string(Buf *b, const char *s) {
  put(b, "\"", 1);
  for (; *s; s++) {
    char esc[8];
    if (*s == '"' || *s == '\\')
      put(b, (char[2]){'\\', *s}, 2);
    else if ((unsigned char)*s < 0x20)
      put(b, esc, (size_t)snprintf(esc, sizeof esc, "\\u%04x", (unsigned)*s));
    else
      put(b, s, 1);
  }
  put(b, "\"", 1);
}

static void put_uint(Buf *b, uint64_t v) {
  char s[24];
  put(b, s, (size_t)snprintf(s, sizeof s, "%" PRIu64, v));
}

// Checks what the caller passes as thoroughly as a file, so that st_write never
// writes a file st_read would reject.
static int check_tensors(const StTensor *tensors, int count, const char *const *meta_kv, const char *path,
                         char *err, size_t errlen) {
  if (count < 0 || (count > 0 && !tensors))
    return err_fail(err, errlen, path, "bad tensor list (count %d)", count);
  for (int i = 0; i < count; i++) {
    const StTensor *t = &tensors[i];
    uint64_t bytes;
    char shape[200];
    if (!t->name || !valid_utf8(t->name))
      return err_fail(err, errlen, path, "tensor %d: name is %s", i, t->name ? "not valid UTF-8" : "NULL");
    Shown shown = show(t->name);
    const char *name = shown.s;
    if (!strcmp(t->name, "__metadata__"))
      return err_fail(err, errlen, path, "tensor '%s': the name is reserved for metadata", name);
    if ((unsigned)t->dtype >= NDTYPES)
      return err_fail(err, errlen, path, "tensor '%s': bad dtype %d", name, (int)t->dtype);
    if (t->ndim < 0 || t->ndim > ST_MAX_DIMS)
      return err_fail(err, errlen, path, "tensor '%s': ndim %d is not in [0, %d]", name, t->ndim, ST_MAX_DIMS);
    if (!shape_bytes(t->shape, t->ndim, t->dtype, &bytes))
      return err_fail(err, errlen, path, "tensor '%s': bad shape %s", name, format_shape(shape, t->shape, t->ndim));
    if (bytes != t->nbytes)
      return err_fail(err, errlen, path, "tensor '%s': nbytes %zu do not match shape %s of %s (%" PRIu64 " bytes)",
                  name, t->nbytes, format_shape(shape, t->shape, t->ndim), dtype_names[t->dtype], bytes);
    if (!t->data && t->nbytes)
      return err_fail(err, errlen, path, "tensor '%s': data is NULL", name);
  }
  int nmeta = 0;
  for (; meta_kv && meta_kv[2 * nmeta]; nmeta++) {
    const char *key = meta_kv[2 * nmeta], *value = meta_kv[2 * nmeta + 1];
    if (!value)
      return err_fail(err, errlen, path, "metadata key '%s' has no value", show(key).s);
    if (!valid_utf8(key) || !valid_utf8(value))
      return err_fail(err, errlen, path, "metadata key '%s': not valid UTF-8", show(key).s);
  }
  int n = count > nmeta ? count : nmeta;
  const char **names = malloc(((size_t)n + 1) * sizeof *names), *dup;
  if (!names)
    return err_fail(err, errlen, path, "out of memory");
  int rc = 0;
  for (int i = 0; i < count; i++)
    names[i] = tensors[i].name;
  if ((dup = find_duplicate(names, count)))
    rc = err_fail(err, errlen, path, "tensor '%s' appears twice", show(dup).s);
  for (int i = 0; i < nmeta; i++)
    names[i] = meta_kv[2 * i];
  if (!rc && (dup = find_duplicate(names, nmeta)))
    rc = err_fail(err, errlen, path, "metadata key '%s' appears twice", show(dup).s);
  free(names);
  return rc;
}

// The length prefix and the header, padded with spaces to a multiple of 8
// bytes so that the data starts 8-aligned in the file.
static int encode_header(const StTensor *tensors, int count, const char *const *meta_kv, Buf *b, const char *path,
                         char *err, size_t errlen) {
  if (check_tensors(tensors, count, meta_kv, path, err, errlen))
    return -1;
  put(b, "\0\0\0\0\0\0\0\0{", 9);
  if (meta_kv && meta_kv[0]) {
    put_str(b, "\"__metadata__\":{");
    for (int i = 0; meta_kv[i]; i += 2) {
      put_str(b, i ? "," : "");
      put_json_string(b, meta_kv[i]);
      put(b, ":", 1);
      put_json_string(b, meta_kv[i + 1]);
    }
    put_str(b, count ? "}," : "}");
  }
  uint64_t at = 0;
  for (int i = 0; i < count; i++) {
    const StTensor *t = &tensors[i];
    uint64_t begin = at;
    if (__builtin_add_overflow(at, (uint64_t)t->nbytes, &at)) // only when tensors share memory
      return err_fail(err, errlen, path, "the tensors' total size overflows 64 bits");
    put_str(b, i ? "," : "");
    put_json_string(b, t->name);
    put_str(b, ":{\"dtype\":\"");
    put_str(b, dtype_names[t->dtype]);
    put_str(b, "\",\"shape\":[");
    for (int d = 0; d < t->ndim; d++) {
      put_str(b, d ? "," : "");
      put_uint(b, (uint64_t)t->shape[d]);
    }
    put_str(b, "],\"data_offsets\":[");
    put_uint(b, begin);
    put(b, ",", 1);
    put_uint(b, at);
    put_str(b, "]}");
  }
  put(b, "}", 1);
  while (b->len % 8 && !b->failed)
    put(b, " ", 1);
  if (b->failed)
    return err_fail(err, errlen, path, "out of memory");
  if (b->len - 8 > ST_MAX_HEADER)
    return err_fail(err, errlen, path, "the header would be %zu bytes, over the limit of %" PRIu64, b->len - 8,
                ST_MAX_HEADER);
  put_le64(b->p, b->len - 8);
  return 0;
}

int st_encode(const StTensor *tensors, int count, const char *const *meta_kv, unsigned char **out, size_t *outlen,
              char *err, size_t errlen) {
  Buf b = {0};
  if (!encode_header(tensors, count, meta_kv, &b, "<memory>", err, errlen)) {
    for (int i = 0; i < count; i++)
      if (tensors[i].nbytes)
        put(&b, tensors[i].data, tensors[i].nbytes);
    if (!b.failed) {
      *out = b.p;
      *outlen = b.len;
      return 0;
    }
    err_fail(err, errlen, "<memory>", "out of memory");
  }
  free(b.p);
  return -1;
}

int st_write(const char *path, const StTensor *tensors, int count, const char *const *meta_kv, char *err,
             size_t errlen) {
  Buf b = {0};
  int rc = -1;
  AtomicFile out;
  if (!encode_header(tensors, count, meta_kv, &b, path, err, errlen) && !atomic_open(&out, path, err, errlen)) {
    int e = fwrite(b.p, 1, b.len, out.f) == b.len ? 0 : errno;
    for (int i = 0; i < count && !e; i++)
      if (tensors[i].nbytes && fwrite(tensors[i].data, 1, tensors[i].nbytes, out.f) != tensors[i].nbytes)
        e = errno;
    rc = atomic_commit(&out, e, err, errlen);
  }
  free(b.p);
  return rc;
}
