// atomic.h: files written all or nothing. A writer writes to a temporary file
// in the target's folder (rename is atomic only within one file system); the
// commit syncs it, renames it over the target and syncs the folder, so a crash,
// a full disk or an error leaves an existing file as it was.
#ifndef CAEC_ATOMIC_H
#define CAEC_ATOMIC_H

#include <stddef.h>
#include <stdio.h>

// The bytes of a path that caec, its tools and the trainers build (a folder and
// a file name), PATH_MAX's.
enum { CAEC_PATH_BYTES = 4096 };

typedef struct AtomicFile {
  FILE *f;          // write here
  char *tmp;        // its name
  const char *path; // the target
} AtomicFile;

// 0, or -1 with "PATH: cannot create a temporary file next to it: REASON" in err.
int atomic_open(AtomicFile *a, const char *path, char *err, size_t errlen);
// Finishes the file. write_error is the errno of a failed write the caller saw, or 0. Returns 0, or -1
// with "PATH: cannot write TMP: REASON" or "PATH: cannot rename TMP over it: REASON" in err, after
// removing the temporary file.
int atomic_commit(AtomicFile *a, int write_error, char *err, size_t errlen);

#endif
