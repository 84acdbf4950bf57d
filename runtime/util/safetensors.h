// safetensors.h: reading and writing safetensors files, the format PyTorch and
// Hugging Face use for weights (https://huggingface.co/docs/safetensors):
//
//   u64 N (little-endian) | N bytes of JSON header | data buffer
//
// The header maps each tensor name to {"dtype", "shape", "data_offsets":
// [begin, end]} (offsets into the data buffer) plus an optional
// "__metadata__" object of strings. Tensor data is little-endian, row-major.
//
// Files are untrusted input: the reader checks every field, and that the
// tensors tile the data buffer exactly, before it trusts an offset. Every
// error is one line that starts with the file's name. Functions that can fail
// return 0 on success and -1 with the message in err (truncated to errlen).
#ifndef CAEC_SAFETENSORS_H
#define CAEC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

enum { ST_MAX_DIMS = 8 };
#define ST_MAX_HEADER ((uint64_t)100000000) // bytes of JSON, as the reference implementation allows

// The dtypes our parameter tables use; files with others are rejected.
typedef enum StDtype { ST_F32, ST_F64, ST_I64, ST_U8 } StDtype;

typedef struct StTensor {
  const char *name;     // UTF-8, no NUL inside
  StDtype dtype;
  int ndim;             // 0 (a scalar) to ST_MAX_DIMS
  int64_t shape[ST_MAX_DIMS];
  size_t nbytes;        // product(shape) * st_dtype_size(dtype)
  void *data;           // read: never NULL, aligned for dtype; write: may be NULL when nbytes == 0
  uint64_t offset;      // read: where the tensor starts in the file's data buffer; ignored by writes
} StTensor;

typedef struct StMeta {
  const char *key, *value;
} StMeta;

// A file read into memory. It owns every string and all tensor data; tensors
// and metadata are in the order of the file's header.
typedef struct StFile {
  StTensor *tensors;
  int count;
  StMeta *meta;         // the "__metadata__" entries
  int nmeta;
  char *strings;        // storage of the names, keys and values
  unsigned char *data;  // storage of the tensor data
} StFile;

size_t st_dtype_size(StDtype dtype);
const char *st_dtype_name(StDtype dtype); // "F32", ...

// Parses a whole file held in memory. path names the file in messages (NULL
// for "<memory>"). The tensor data is copied, so buf may go away afterwards.
int st_parse(const unsigned char *buf, size_t len, const char *path, StFile *out, char *err, size_t errlen);
// Reads and parses a file; the data is read straight into its final place.
int st_read(const char *path, StFile *out, char *err, size_t errlen);
// Frees what st_parse or st_read allocated and zeroes *f; safe on a zeroed StFile.
void st_free(StFile *f);

// Linear searches; NULL when absent.
const StTensor *st_find(const StFile *f, const char *name);
const char *st_meta(const StFile *f, const char *key);

// Writes tensors, in the given order, and metadata: meta_kv is NULL or a
// NULL-terminated list key0, value0, key1, value1, ..., NULL. The write is
// atomic: a temporary file in the same folder is written, synced and renamed
// over path, so on any failure an existing file at path stays as it was.
// path names the file in messages too.
int st_write(const char *path, const StTensor *tensors, int count, const char *const *meta_kv, char *err,
             size_t errlen);
// The same bytes as st_write, in one malloc'd buffer the caller frees.
int st_encode(const StTensor *tensors, int count, const char *const *meta_kv, unsigned char **out, size_t *outlen,
              char *err, size_t errlen);

#endif
