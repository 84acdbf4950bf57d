// test_safetensors.c: the safetensors reader and writer. Round trips of every
// dtype through memory and through files, a corpus of malformed files with the
// message each must produce (through st_parse and st_read alike), the writer's
// checks of its input, and atomic replacement of an existing file.
#include "safetensors.h"
#include "../testutil.h"

#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>


// A file with this header and datalen bytes of data (i * 7 mod 256).
static unsigned char *make_file(const char *json, size_t datalen, size_t *len) {
  size_t n = strlen(json);
  *len = 8 + n + datalen;
  unsigned char *buf = malloc(*len + 1);
  for (int i = 0; i < 8; i++)
    buf[i] = (unsigned char)((uint64_t)n >> 8 * i);
  memcpy(buf + 8, json, n);
  for (size_t i = 0; i < datalen; i++)
    buf[8 + n + i] = (unsigned char)(i * 7);
  return buf;
}

static bool same_tensor(const StTensor *a, const StTensor *b) {
  if (strcmp(a->name, b->name) || a->dtype != b->dtype || a->ndim != b->ndim || a->nbytes != b->nbytes)
    return false;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d])
      return false;
  return a->nbytes == 0 || !memcmp(a->data, b->data, a->nbytes);
}

// ---- round trips -------------------------------------------------------------

static void check_file_matches(const char *what, const StFile *f, const StTensor *ts, int n,
                               const char *const *meta) {
  CHECK(f->count == n, "%s: %d tensors, want %d", what, f->count, n);
  for (int i = 0; i < n && i < f->count; i++) {
    const StTensor *t = &f->tensors[i];
    CHECK(same_tensor(t, &ts[i]), "%s: tensor %d ('%s') differs", what, i, ts[i].name);
    CHECK(t->data && (uintptr_t)t->data % st_dtype_size(t->dtype) == 0, "%s: tensor %d misaligned", what, i);
    CHECK(st_find(f, ts[i].name) == t, "%s: st_find('%s')", what, ts[i].name);
  }
  int nmeta = 0;
  for (; meta && meta[2 * nmeta]; nmeta++) {
    const char *v = st_meta(f, meta[2 * nmeta]);
    CHECK(v && !strcmp(v, meta[2 * nmeta + 1]), "%s: metadata '%s'", what, meta[2 * nmeta]);
  }
  CHECK(f->nmeta == nmeta, "%s: %d metadata entries, want %d", what, f->nmeta, nmeta);
  CHECK(!st_find(f, "absent") && !st_meta(f, "absent"), "%s: lookups of absent names", what);
}

static void test_round_trip(void) {
  float w[2][3] = {{1.5f, -2.25f, 3e-8f}, {-0.0f, 1e30f, 7}};
  double v[4] = {0.1, -1e300, 5e-324, 2};
  int64_t step = -9007199254740993;
  unsigned char mask[5] = {0, 1, 127, 128, 255};
  StTensor ts[] = {
      {.name = "enc.conv1.weight", .dtype = ST_F32, .ndim = 2, .shape = {2, 3}, .nbytes = sizeof w, .data = w},
      {.name = "bn.running_var", .dtype = ST_F64, .ndim = 1, .shape = {4}, .nbytes = sizeof v, .data = v},
      {.name = "step", .dtype = ST_I64, .ndim = 0, .nbytes = 8, .data = &step}, // a 0-d scalar, shape []
      {.name = "d\xc3\xa9" "codeur.\xe2\x86\x92.\xf0\x9f\xa7\xa0", .dtype = ST_U8, .ndim = 1, .shape = {5},
       .nbytes = 5, .data = mask},
      {.name = "quote\"back\\slash\nnewline", .dtype = ST_U8, .ndim = 1, .shape = {3}, .nbytes = 3, .data = mask},
      {.name = "empty", .dtype = ST_F32, .ndim = 2, .shape = {0, 3}, .nbytes = 0, .data = NULL},
      {.name = "", .dtype = ST_F64, .ndim = 1, .shape = {1}, .nbytes = 8, .data = v}, // misaligned after U8s
  };
  int n = sizeof ts / sizeof *ts;
  const char *meta[] = {"format", "pt", "note", "tab\there, \xc3\xa9, \"quoted\"", NULL};
  const char *no_meta[] = {NULL};
  const char *const *metas[] = {NULL, no_meta, meta};
  char err[512];
  for (int m = 0; m < 3; m++) {
    unsigned char *buf;
    size_t len;
    StFile f;
    int rc = st_encode(ts, n, metas[m], &buf, &len, err, sizeof err);
    CHECK(rc == 0, "st_encode: %s", err);
    if (rc)
      continue;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
      hlen = hlen << 8 | buf[i];
    CHECK(hlen % 8 == 0 && buf[8] == '{' && buf[8 + hlen - 1] != '\0', "header length %llu not padded",
          (unsigned long long)hlen);
    CHECK(len == 8 + hlen + sizeof w + sizeof v + 8 + 5 + 3 + 8, "file length %zu", len);
    CHECK(st_parse(buf, len, "mem", &f, err, sizeof err) == 0, "st_parse: %s", err);
    check_file_matches("memory", &f, ts, n, metas[m]);
    st_free(&f);

    const char *path = path_in_dir("round.safetensors");
    CHECK(st_write(path, ts, n, metas[m], err, sizeof err) == 0, "st_write: %s", err);
    size_t flen;
    unsigned char *fbuf = slurp(path, &flen);
    CHECK(fbuf && flen == len && !memcmp(fbuf, buf, len), "st_write and st_encode give different bytes");
    CHECK(st_read(path, &f, err, sizeof err) == 0, "st_read: %s", err);
    check_file_matches("file", &f, ts, n, metas[m]);
    st_free(&f);
    free(fbuf);
    free(buf);
  }
  CHECK(leftover_temps() == 0, "temporary files left behind");
}

// Files from other writers: escapes, whitespace, offsets in another order than
// the header, empty tensors sharing an offset, data that needs realigning.
static void test_valid_inputs(void) {
  char err[512];
  StFile f;
  size_t len;
  unsigned char *buf = make_file("{\"\\u00e9\\u20AC\\ud83d\\ude00\\/\\\"\\\\\\n\\t\":"
                                 "{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}",
                                 1, &len);
  CHECK(st_parse(buf, len, "esc", &f, err, sizeof err) == 0, "escapes: %s", err);
  CHECK(f.count == 1 && !strcmp(f.tensors[0].name, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80/\"\\\n\t"),
        "escapes decoded wrongly");
  st_free(&f);
  free(buf);

  buf = make_file(" \t\r\n{ \"a\" : { \"data_offsets\" : [ 0 , 2 ] , \"shape\" : [ 2 ] , \"dtype\" : \"U8\" } , "
                  "\"__metadata__\" : { } }  \n ", 2, &len);
  CHECK(st_parse(buf, len, "ws", &f, err, sizeof err) == 0 && f.count == 1 && f.nmeta == 0, "whitespace: %s", err);
  st_free(&f);
  free(buf);

  buf = make_file("{\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
                  "\"e1\":{\"dtype\":\"F64\",\"shape\":[0],\"data_offsets\":[3,3]},"
                  "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[3,7]},"
                  "\"e2\":{\"dtype\":\"I64\",\"shape\":[2,0],\"data_offsets\":[3,3]}}",
                  7, &len);
  CHECK(st_parse(buf, len, "order", &f, err, sizeof err) == 0, "offset order: %s", err);
  if (f.count == 4) {
    const StTensor *a = st_find(&f, "a");
    CHECK(!strcmp(f.tensors[0].name, "b") && !strcmp(f.tensors[3].name, "e2"), "not in header order");
    CHECK(a && a->offset == 3 && (uintptr_t)a->data % 4 == 0 && !memcmp(a->data, buf + len - 4, 4),
          "misaligned F32 not copied to an aligned place");
  }
  st_free(&f);
  free(buf);

  buf = make_file("{}      ", 0, &len);
  CHECK(st_parse(buf, len, "empty", &f, err, sizeof err) == 0 && f.count == 0, "empty file: %s", err);
  st_free(&f);
  st_free(&f); // st_free on a zeroed StFile is harmless
  free(buf);
}

// ---- malformed files -------------------------------------------------------------

// The message for buf must contain want, start with the path and be one line,
// and st_read must say the same of the same bytes in a file.
static void expect_error(const unsigned char *buf, size_t len, const char *want) {
  char err[512], err2[512], want2[600];
  StFile f;
  int rc = st_parse(buf, len, "bad.safetensors", &f, err, sizeof err);
  CHECK(rc == -1 && f.count == 0 && !f.tensors, "accepted, want error '%s'", want);
  if (rc != -1)
    return st_free(&f);
  CHECK(strstr(err, want) && !strncmp(err, "bad.safetensors: ", 17) && !strchr(err, '\n'),
        "message\n    %s\n  does not contain\n    %s", err, want);
  const char *path = path_in_dir("bad.safetensors");
  spit(path, buf, len);
  snprintf(want2, sizeof want2, "%s%s", path, err + strlen("bad.safetensors"));
  CHECK(st_read(path, &f, err2, sizeof err2) == -1 && !strcmp(err2, want2), "st_read says\n    %s\n  not\n    %s",
        err2, want2);
}

#define T(dtype, shape, offsets) "{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offsets "}"

static const struct {
  const char *json;
  size_t datalen;
  const char *want;
} bad_headers[] = {
    // bad JSON
    {"", 0, "bad header JSON at byte 8: expected '{' to open the header, found the end of the header"},
    {"[]", 0, "expected '{' to open the header, found an array"},
    {"{\"a\":" T("F32", "[1]", "[0,4]"), 4, "expected ',' or '}', found the end of the header"},
    {"{\"a\" {}}", 0, "bad header JSON at byte 13: expected ':' after the key, found an object"},
    {"{\"abc", 0, "unterminated string"},
    {"{\"a\":" T("F32", "[1]", "[0,4]") ",}", 4, "expected a string, found '}'"},
    {"{\"a\":true}", 0, "expected an object for the tensor, found true"},
    {"{\"a\":null}", 0, "found null"},
    {"{\"a\":" T("F32", "[1.5]", "[0,4]") "}", 4, "numbers must be integers, without a fraction or an exponent"},
    {"{\"a\":" T("F32", "[1e3]", "[0,4]") "}", 4, "numbers must be integers"},
    {"{\"a\":" T("F32", "[-1]", "[0,4]") "}", 4, "negative numbers are not allowed"},
    {"{\"a\":" T("F32", "[01]", "[0,4]") "}", 4, "integers must not have leading zeros"},
    {"{\"a\":" T("F32", "[99999999999999999999]", "[0,4]") "}", 4, "integer too large"},
    {"{\"a\":" T("F32", "[[1]]", "[0,4]") "}", 4, "expected a non-negative integer, found an array"},
    {"{\"a\":" T("F32", "[1 2]", "[0,4]") "}", 4, "expected ',' or ']', found a number"},
    {"{\"a\":" T("F32", "{}", "[0,4]") "}", 4, "expected an array for \"shape\", found an object"},
    {"{\"\\q\":{}}", 0, "unknown escape '\\q'"},
    {"{\"\\\n\":{}}", 0, "unknown escape: '\\' before byte 0x0a"}, // the message stays one line
    {"{\"\\u12\":{}}", 0, "\\u needs four hex digits"},
    {"{\"\\ud800\\u12\":{}}", 0, "\\u needs four hex digits"},
    {"{\"a\\", 0, "unterminated string"},
    {"{\"\\ud800\":{}}", 0, "unpaired surrogate \\uD800"},
    {"{\"\\ud800\\u0041\":{}}", 0, "unpaired surrogate \\uD800"},
    {"{\"\\udc00x\":{}}", 0, "unpaired surrogate \\uDC00"},
    {"{\"a\\u0000b\":{}}", 0, "\\u0000 in a string"},
    {"{\"\xff\":{}}", 0, "invalid UTF-8 in a string"},
    {"{\"\xc0\x80\":{}}", 0, "invalid UTF-8"},     // an overlong NUL
    {"{\"\xed\xa0\x80\":{}}", 0, "invalid UTF-8"}, // an encoded surrogate
    {"{\"\xe2\x82\":{}}", 0, "invalid UTF-8"},     // cut short
    {"{\"a\x01\":{}}", 0, "control character 0x01 in a string"},
    {"{} x", 0, "'x' after the header's closing '}'"},
    // missing, unknown and repeated keys
    {"{\"a\":{}}", 0, "bad.safetensors: tensor 'a': missing key 'dtype'"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "tensor 'a': missing key 'data_offsets'"},
    {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "tensor 'a': missing key 'shape'"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"foo\":1}}", 4, "tensor 'a': unknown key 'foo'"},
    {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     "tensor 'a': key 'dtype' appears twice"},
    {"{\"a\":" T("F32", "[1]", "[0,4]") ",\"a\":" T("F32", "[1]", "[4,8]") "}", 8, "tensor 'a' appears twice"},
    // dtypes
    {"{\"a\":" T("F16", "[2]", "[0,4]") "}", 4, "tensor 'a': unsupported dtype 'F16' (F32, F64, I64 and U8 are"},
    {"{\"a\":" T("f32", "[1]", "[0,4]") "}", 4, "unsupported dtype 'f32'"},
    {"{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "expected a string, found a number"},
    {"{\"a\\nb\":" T("BF16", "[1]", "[0,2]") "}", 2, "tensor 'a?b': unsupported dtype 'BF16'"},
    // metadata
    {"{\"__metadata__\":{\"a\":1}}", 0, "expected a string, found a number"},
    {"{\"__metadata__\":[]}", 0, "expected an object for \"__metadata__\", found an array"},
    {"{\"__metadata__\":{\"a\":\"x\",\"a\":\"y\"}}", 0, "metadata key 'a' appears twice"},
    {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, "\"__metadata__\" appears twice"},
    // shapes and offsets
    {"{\"conv1.weight\":" T("F32", "[32,1,3,3]", "[0,12]") "}", 12,
     "bad.safetensors: tensor 'conv1.weight': data_offsets [0, 12) do not match shape [32,1,3,3] of F32 (1152 bytes)"},
    {"{\"a\":" T("F32", "[4294967296,4294967296,8]", "[0,0]") "}", 0,
     "tensor 'a': shape [4294967296,4294967296,8] of F32 is too large: its byte size overflows int64"},
    {"{\"a\":" T("F64", "[4611686018427387904]", "[0,0]") "}", 0, "overflows int64"},
    {"{\"a\":" T("F32", "[3458764513820540928]", "[0,0]") "}", 0, "overflows int64"}, // 1.5 * 2^63 bytes
    {"{\"a\":" T("U8", "[9223372036854775808]", "[0,0]") "}", 0, "dimension 9223372036854775808 is too large"},
    {"{\"a\":" T("U8", "[1,1,1,1,1,1,1,1,1]", "[0,1]") "}", 1, "tensor 'a': shape has more than 8 dimensions"},
    {"{\"a\":" T("U8", "[4]", "[8,4]") "}", 8, "data_offsets [8, 4) end before they begin"},
    {"{\"a\":" T("U8", "[4]", "[0,4,4]") "}", 4, "tensor 'a': data_offsets must be [begin, end]"},
    {"{\"a\":" T("U8", "[4]", "[4]") "}", 4, "data_offsets must be [begin, end]"},
    {"{\"a\":" T("F32", "[1]", "[0,4]") "}", 2, "data_offsets [0, 4) run past the end of the data (2 bytes)"},
    {"{\"a\":" T("F32", "[2]", "[0,8]") ",\"b\":" T("F32", "[2]", "[4,12]") "}", 12,
     "tensor 'b': data_offsets [4, 12) overlap tensor 'a' [0, 8)"},
    {"{\"a\":" T("F32", "[2]", "[0,8]") ",\"b\":" T("F32", "[0]", "[4,4]") "}", 8, "overlap tensor 'a' [0, 8)"},
    {"{\"a\":" T("F32", "[1]", "[0,4]") ",\"b\":" T("F32", "[1]", "[8,12]") "}", 12,
     "tensor 'b': data_offsets [8, 12) leave a gap: bytes [4, 8) of the data belong to no tensor"},
    {"{\"a\":" T("F32", "[1]", "[4,8]") "}", 8, "leave a gap: bytes [0, 4)"},
    {"{\"a\":" T("F32", "[1]", "[0,4]") "}", 8,
     "4 trailing bytes after the last tensor's data (8 bytes of data, tensors cover 4)"},
    {"{}", 3, "3 trailing bytes after the last tensor's data"},
};

static void test_malformed(void) {
  for (size_t i = 0; i < sizeof bad_headers / sizeof *bad_headers; i++) {
    size_t len;
    unsigned char *buf = make_file(bad_headers[i].json, bad_headers[i].datalen, &len);
    expect_error(buf, len, bad_headers[i].want);
    free(buf);
  }
  // A header with an embedded NUL, which the table's strings cannot hold.
  unsigned char nul[8 + 6] = {6, 0, 0, 0, 0, 0, 0, 0, '{', '}', 0, ' ', ' ', ' '};
  expect_error(nul, sizeof nul, "byte 0x00 after the header's closing '}'");

  // The length prefix.
  unsigned char raw[32] = {0};
  expect_error(raw, 0, "file is 0 bytes, too short for the 8-byte header length");
  raw[0] = 0x10;
  expect_error(raw, 3, "file is 3 bytes, too short for the 8-byte header length");
  raw[0] = 64;
  expect_error(raw, 18, "header length 64 runs past the end of the file (10 bytes follow the length)");
  raw[0] = 11; // one byte past: the bound is exact
  expect_error(raw, 18, "header length 11 runs past the end of the file (10 bytes follow the length)");
  raw[0] = 0, raw[5] = 1; // 2^40
  expect_error(raw, 18, "header length 1099511627776 is over the limit of 100000000 bytes");
  memset(raw, 0xff, 8);
  expect_error(raw, 18, "header length 18446744073709551615 is over the limit");

  // Long names are cut in messages.
  char json[1000], err[512];
  snprintf(json, sizeof json, "{\"%0300d\":" T("F16", "[1]", "[0,2]") "}", 0);
  size_t len;
  unsigned char *buf = make_file(json, 2, &len);
  StFile f;
  CHECK(st_parse(buf, len, "long", &f, err, sizeof err) == -1 && strstr(err, "000...': unsupported dtype") &&
            strlen(err) < 200, "long name: %s", err);
  free(buf);
  // ... at a character boundary: 'x' and 300 two-byte characters, so that the limit falls inside one.
  char name[700] = "x";
  for (int i = 0; i < 300; i++)
    strcat(name, "\xc3\xa9");
  snprintf(json, sizeof json, "{\"%s\":" T("F16", "[1]", "[0,2]") "}", name);
  buf = make_file(json, 2, &len);
  CHECK(st_parse(buf, len, "long", &f, err, sizeof err) == -1 && strstr(err, "\xc3\xa9...': unsupported dtype"),
        "long UTF-8 name: %s", err);
  CHECK(st_parse(buf, len, "long", &f, NULL, 0) == -1, "no room for the message");
  free(buf);

  CHECK(st_read(path_in_dir("missing.safetensors"), &f, err, sizeof err) == -1 &&
            strstr(err, "missing.safetensors: cannot open: No such file or directory"), "missing: %s", err);
  CHECK(st_read(dir, &f, err, sizeof err) == -1 && strstr(err, ": not a regular file"), "folder: %s", err);
}

// ---- writing -----------------------------------------------------------------------------

static void expect_write_error(const StTensor *ts, int n, const char *const *meta, const char *want) {
  char err[512];
  const char *path = path_in_dir("never.safetensors");
  CHECK(st_write(path, ts, n, meta, err, sizeof err) == -1 && strstr(err, want) && strstr(err, path),
        "write error\n    %s\n  does not contain\n    %s", err, want);
  CHECK(access(path, F_OK) != 0, "a failed write created %s", path);
}

static void test_write_checks(void) {
  float x[3] = {1, 2, 3};
  StTensor a = {.name = "w", .dtype = ST_F32, .ndim = 1, .shape = {3}, .nbytes = 12, .data = x};
  StTensor two[2] = {a, a};
  expect_write_error(two, 2, NULL, "tensor 'w' appears twice");
  StTensor t = a;
  t.nbytes = 8;
  expect_write_error(&t, 1, NULL, "tensor 'w': nbytes 8 do not match shape [3] of F32 (12 bytes)");
  t = a, t.ndim = 9;
  expect_write_error(&t, 1, NULL, "tensor 'w': ndim 9 is not in [0, 8]");
  t = a, t.shape[0] = -1;
  expect_write_error(&t, 1, NULL, "tensor 'w': bad shape [-1]");
  t = a, t.dtype = (StDtype)7;
  expect_write_error(&t, 1, NULL, "tensor 'w': bad dtype 7");
  t = a, t.data = NULL;
  expect_write_error(&t, 1, NULL, "tensor 'w': data is NULL");
  t = a, t.name = "__metadata__";
  expect_write_error(&t, 1, NULL, "tensor '__metadata__': the name is reserved for metadata");
  t = a, t.name = "\xff";
  expect_write_error(&t, 1, NULL, "tensor 0: name is not valid UTF-8");
  t = a, t.name = NULL;
  expect_write_error(&t, 1, NULL, "tensor 0: name is NULL");
  expect_write_error(&a, -1, NULL, "bad tensor list");
  const char *odd[] = {"k", NULL, NULL};
  expect_write_error(&a, 1, odd, "metadata key 'k' has no value");
  const char *dup[] = {"k", "1", "j", "2", "k", "3", NULL};
  expect_write_error(&a, 1, dup, "metadata key 'k' appears twice");
  const char *bad[] = {"k", "\xc3", NULL};
  expect_write_error(&a, 1, bad, "metadata key 'k': not valid UTF-8");
  // Tensors that share memory can add up past 2^64 bytes; their data is never read.
  StTensor huge[4];
  for (int i = 0; i < 4; i++)
    huge[i] = (StTensor){.name = (const char *[]){"h0", "h1", "h2", "h3"}[i], .dtype = ST_U8, .ndim = 1,
                         .shape = {(int64_t)1 << 62}, .nbytes = (size_t)1 << 62, .data = x};
  expect_write_error(huge, 4, NULL, "the tensors' total size overflows 64 bits");
  CHECK(!strcmp(st_dtype_name(ST_I64), "I64") && st_dtype_size(ST_F64) == 8 && !strcmp(st_dtype_name((StDtype)9), "?"),
        "dtype names and sizes");
}

// A failed write leaves an existing file as it was; a successful one replaces it.
static void test_atomic(void) {
  char err[512];
  float v1[2] = {1, 2}, v2[3] = {4, 5, 6};
  StTensor t1 = {.name = "w", .dtype = ST_F32, .ndim = 1, .shape = {2}, .nbytes = 8, .data = v1};
  StTensor t2 = {.name = "w", .dtype = ST_F32, .ndim = 1, .shape = {3}, .nbytes = 12, .data = v2};
  const char *path = path_in_dir("atomic.safetensors");
  CHECK(st_write(path, &t1, 1, NULL, err, sizeof err) == 0, "first write: %s", err);
  size_t len1, len;
  unsigned char *old = slurp(path, &len1), *now;

  const char *nodir = path_in_dir("no_such_folder/atomic.safetensors");
  CHECK(st_write(nodir, &t2, 1, NULL, err, sizeof err) == -1 &&
            strstr(err, "no_such_folder/atomic.safetensors: cannot create a temporary file next to it: No such file"),
        "write into a missing folder: %s", err);

  // A write that fails half-way: the file size limit stops it (EFBIG) after
  // the header, as a full disk (ENOSPC) would. The tests run as root, so a
  // read-only folder would not stop them.
  size_t big_n = 1 << 18;
  float *big = calloc(big_n, sizeof *big);
  StTensor tb = {.name = "w", .dtype = ST_F32, .ndim = 1, .shape = {(int64_t)big_n}, .nbytes = big_n * 4, .data = big};
  struct rlimit saved, small;
  getrlimit(RLIMIT_FSIZE, &saved);
  small = saved;
  small.rlim_cur = 4096;
  signal(SIGXFSZ, SIG_IGN); // so that the write fails with EFBIG instead of killing us
  if (setrlimit(RLIMIT_FSIZE, &small) == 0) {
    int rc = st_write(path, &tb, 1, NULL, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &saved);
    CHECK(rc == -1 && strstr(err, "atomic.safetensors: cannot write ") && strstr(err, "File too large"),
          "write past the size limit: %s", err);
  } else {
    fprintf(stderr, "note: cannot lower RLIMIT_FSIZE; skipping the half-way failure\n");
  }
  free(big);
  now = slurp(path, &len);
  CHECK(now && len == len1 && !memcmp(now, old, len), "a failed write changed the old file");
  CHECK(leftover_temps() == 0, "a failed write left its temporary file");
  free(now);

  CHECK(st_write(path, &t2, 1, NULL, err, sizeof err) == 0, "overwrite: %s", err);
  StFile f;
  CHECK(st_read(path, &f, err, sizeof err) == 0 && f.count == 1 && same_tensor(&f.tensors[0], &t2),
        "overwrite did not replace the file: %s", err);
  st_free(&f);
  struct stat st;
  CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644, "mode %o", (unsigned)st.st_mode & 0777);
  CHECK(leftover_temps() == 0, "temporary files left behind");
  free(old);

  // A failed rename (over a folder) removes the temporary file.
  const char *sub = path_in_dir("folder.safetensors");
  mkdir(sub, 0755);
  CHECK(st_write(sub, &t2, 1, NULL, err, sizeof err) == -1 && strstr(err, "folder.safetensors: cannot rename ") &&
            strstr(err, "over it: Is a directory"), "rename over a folder: %s", err);
  CHECK(leftover_temps() == 0, "a failed rename left its temporary file");
  rmdir(sub);
}

int main(void) {
  make_dir("caec_st");
  test_round_trip();
  test_valid_inputs();
  test_malformed();
  test_write_checks();
  test_atomic();
  return finish();
}
