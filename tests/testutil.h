// testutil.h: what the C test programs share: the CHECK tally that ends with
// the line "N passed, M failed", a fresh temporary folder for the files a test
// writes, whole-file reads and writes, and the kernel tests' tolerance check.
#ifndef CAEC_TESTUTIL_H
#define CAEC_TESTUTIL_H

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int passed, failed;
static char dir[64]; // the temporary folder

#define CHECK(cond, ...)                                                                                          \
  do {                                                                                                            \
    if (cond) {                                                                                                   \
      passed++;                                                                                                   \
    } else {                                                                                                      \
      failed++;                                                                                                   \
      fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);                                                       \
      fprintf(stderr, __VA_ARGS__);                                                                               \
      fputc('\n', stderr);                                                                                        \
    }                                                                                                             \
  } while (0)

// NAME in the temporary folder; the last four results stay valid.
static inline char *path_in_dir(const char *name) {
  static char buf[4][512];
  static int next;
  char *p = buf[next++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", dir, name);
  return p;
}

// Makes the temporary folder, under $TMPDIR or /tmp.
static inline void make_dir(const char *prefix) {
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/%s_XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp", prefix);
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    exit(2);
  }
}

// Removes a folder and everything in it.
static inline void remove_folder(const char *path) {
  DIR *d = opendir(path);
  char p[1024];
  for (struct dirent *e; d && (e = readdir(d));)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      if (snprintf(p, sizeof p, "%s/%s", path, e->d_name) < (int)sizeof p && unlink(p))
        remove_folder(p);
    }
  if (d)
    closedir(d);
  rmdir(path);
}

// The exit status that ctest reports as a skip (SKIP_RETURN_CODE): a test
// whose dependency is missing says why and returns it, never passes.
enum { TEST_SKIPPED = 77 };

// Removes the temporary folder and prints the tally; returns main's exit status.
static inline int finish(void) {
  remove_folder(dir);
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}

static inline void spit(const char *path, const void *buf, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(buf, 1, len, f) != len || fclose(f)) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(2);
  }
}

// The whole file with a NUL after it (so text reads as a string), its length in *len when len is not NULL;
// NULL when it cannot be read.
static inline void *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  if (buf) {
    buf[n] = '\0';
    if (len)
      *len = (size_t)n;
  }
  fclose(f);
  return buf;
}

// Whether the file starts with PNG's signature.
static inline int is_png(const char *path) {
  size_t len;
  char *data = slurp(path, &len);
  int ok = data && len > 8 && !memcmp(data, "\x89PNG\r\n\x1a\n", 8);
  free(data);
  return ok;
}

// Whether two files hold the same bytes (and both can be read).
static inline int same_bytes(const char *a, const char *b) {
  size_t na = 0, nb = 0;
  char *x = slurp(a, &na), *y = slurp(b, &nb);
  int same = x && y && na == nb && !memcmp(x, y, na);
  free(x);
  free(y);
  return same;
}

// Starts exe with argv (argv[0] first, NULL-terminated), its standard output going to the file NAME in
// the temporary folder and its standard error there too, or to ERR_NAME when not NULL; returns the
// child's pid. (Not through path_in_dir: callers may be passing its rotating results as arguments.)
static inline pid_t spawn2(const char *exe, char *const *argv, const char *name, const char *err_name) {
  char out[1024], err[1024];
  snprintf(out, sizeof out, "%s/%s", dir, name);
  snprintf(err, sizeof err, "%s/%s", dir, err_name ? err_name : name);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    FILE *f = freopen(out, "w", stdout);
    if (!f || (err_name ? !freopen(err, "w", stderr) : dup2(fileno(stdout), 2) < 0))
      _exit(125);
    execv(exe, argv);
    _exit(126);
  }
  return pid;
}

static inline pid_t spawn(const char *exe, char *const *argv, const char *name) {
  return spawn2(exe, argv, name, NULL);
}

// Starts exe with `first` (unless NULL) and then args (NULL-terminated) as its
// arguments, its output going to out.txt in the temporary folder; its pid.
static inline pid_t start_program(const char *exe, const char *first, const char *const *args) {
  char *argv[40] = {(char *)exe};
  int n = 1;
  if (first)
    argv[n++] = (char *)first;
  for (; n < 39 && *args; args++)
    argv[n++] = (char *)*args;
  argv[n] = NULL;
  return spawn(exe, argv, "out.txt");
}

// Waits for pid: its exit status, 128 + the signal that ended it, or -1.
static inline int exit_status(pid_t pid) {
  int st;
  if (waitpid(pid, &st, 0) != pid)
    return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// What the last program started wrote (out.txt), as a string.
static inline char *output(void) {
  static char *text;
  free(text);
  text = slurp(path_in_dir("out.txt"), NULL);
  return text ? text : "";
}

// Temporary files that atomic writes left behind in the folder.
static inline int leftover_temps(void) {
  int n = 0;
  DIR *d = opendir(dir);
  for (struct dirent *e; d && (e = readdir(d));)
    n += strstr(e->d_name, ".tmp.") != NULL;
  if (d)
    closedir(d);
  return n;
}

// max |got - want| <= tol * max |want| over the array (NaN fails).
static inline void close_arrays(const char *what, size_t count, const double *got, const double *want, double tol) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < count; i++) {
    double e = fabs(got[i] - want[i]);
    err = e > err || e != e ? e : err;
    scale = fmax(scale, fabs(want[i]));
  }
  CHECK(err <= tol * (scale > 0 ? scale : 1), "%s: max abs err %.3g, largest value %.3g, tol %.1g", what, err, scale,
        tol);
}

// A uniform double in [0, 1) with 53 random bits from *state (SplitMix64): reproducible test inputs.
static inline double test_uniform(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  z ^= z >> 31;
  return (double)(z >> 11) * 0x1p-53;
}

// TensorFlow's 'same' padding before the image: half the total, rounded down.
static inline int same_pad(int in, int out, int k, int s) {
  int total = (out - 1) * s + k - in;
  return total > 0 ? total / 2 : 0;
}

#endif
