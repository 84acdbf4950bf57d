// atomic.c: all-or-nothing file writes (see atomic.h).
#include "atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int atomic_open(AtomicFile *a, const char *path, char *err, size_t errlen) {
  *a = (AtomicFile){.path = path};
  size_t len = strlen(path) + sizeof ".tmp.XXXXXX";
  a->tmp = malloc(len);
  if (!a->tmp) {
    snprintf(err, errlen, "%s: out of memory", path);
    return -1;
  }
  snprintf(a->tmp, len, "%s.tmp.XXXXXX", path);
  int fd = mkstemp(a->tmp);
  if (fd >= 0 && (fchmod(fd, 0644) || !(a->f = fdopen(fd, "wb")))) { // mkstemp makes files private
    int e = errno;
    close(fd);
    unlink(a->tmp);
    errno = e;
    fd = -1;
  }
  if (fd < 0) {
    snprintf(err, errlen, "%s: cannot create a temporary file next to it: %s", path, strerror(errno));
    free(a->tmp);
    a->tmp = NULL;
    return -1;
  }
  return 0;
}

// Makes the rename durable. Best effort: some file systems refuse to sync a
// folder, and the new file is in place already, so failures are not reported.
static void sync_folder(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  free(dir);
}

int atomic_commit(AtomicFile *a, int write_error, char *err, size_t errlen) {
  int e = write_error;
  if (!e && (fflush(a->f) || ferror(a->f) || fsync(fileno(a->f))))
    e = errno ? errno : EIO;
  if (fclose(a->f) && !e) // close can report a delayed write error (NFS)
    e = errno ? errno : EIO;
  int rc = -1;
  if (e)
    snprintf(err, errlen, "%s: cannot write %s: %s", a->path, a->tmp, strerror(e));
  else if (rename(a->tmp, a->path))
    snprintf(err, errlen, "%s: cannot rename %s over it: %s", a->path, a->tmp, strerror(errno));
  else
    rc = 0;
  if (rc)
    unlink(a->tmp);
  else
    sync_folder(a->path);
  free(a->tmp);
  *a = (AtomicFile){0};
  return rc;
}
