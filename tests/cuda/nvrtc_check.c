// nvrtc_check: compiles a generated NAME.cu with NVRTC (which a trainer could
// do at start-up) for each architecture given; NVRTC needs no GPU. Prints NVRTC's
// log and exits 1 when a compile fails.
//   nvrtc_check INCLUDE_DIR FILE.cu ARCH...   (ARCH: compute_80, compute_90, ...)
#include <nvrtc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_all(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *text = NULL;
  size_t n = 0, cap = 0, got;
  char chunk[65536];
  while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (n + got + 1 > cap) {
      cap = 2 * (n + got + 1);
      char *grown = realloc(text, cap);
      if (!grown) {
        free(text);
        fclose(f);
        return NULL;
      }
      text = grown;
    }
    memcpy(text + n, chunk, got);
    n += got;
  }
  fclose(f);
  if (text)
    text[n] = 0;
  return text;
}

// includes: directories separated by ':', each an -I option.
static int compile(const char *includes, const char *path, const char *source, const char *arch) {
  enum { MAX_INCLUDES = 8 };
  char inc[MAX_INCLUDES][4096], gpu[64];
  const char *opts[MAX_INCLUDES + 2];
  int nopts = 0;
  snprintf(gpu, sizeof gpu, "--gpu-architecture=%s", arch);
  opts[nopts++] = gpu;
  opts[nopts++] = "--std=c++17";
  for (const char *p = includes; *p && nopts < MAX_INCLUDES + 2; p += strcspn(p, ":"), p += *p == ':') {
    snprintf(inc[nopts - 2], sizeof inc[0], "-I%.*s", (int)strcspn(p, ":"), p);
    opts[nopts] = inc[nopts - 2];
    nopts++;
  }
  nvrtcProgram prog;
  if (nvrtcCreateProgram(&prog, source, path, 0, NULL, NULL) != NVRTC_SUCCESS) {
    fprintf(stderr, "nvrtc_check: %s: cannot create the program\n", path);
    return 1;
  }
  nvrtcResult r = nvrtcCompileProgram(prog, nopts, opts);
  size_t log_size = 0, ptx_size = 0;
  nvrtcGetProgramLogSize(prog, &log_size);
  char *log = malloc(log_size + 1);
  if (log && nvrtcGetProgramLog(prog, log) == NVRTC_SUCCESS && log_size > 1)
    fprintf(stderr, "%s", log);
  free(log);
  if (r == NVRTC_SUCCESS)
    nvrtcGetPTXSize(prog, &ptx_size);
  nvrtcDestroyProgram(&prog);
  if (r != NVRTC_SUCCESS) {
    fprintf(stderr, "nvrtc_check: %s: %s fails: %s\n", path, arch, nvrtcGetErrorString(r));
    return 1;
  }
  printf("%s: %s: %zu bytes of PTX\n", path, arch, ptx_size);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: nvrtc_check INCLUDE_DIR[:DIR...] FILE.cu ARCH...\n");
    return 2;
  }
  char *source = read_all(argv[2]);
  if (!source) {
    fprintf(stderr, "nvrtc_check: cannot read '%s'\n", argv[2]);
    return 1;
  }
  int failed = 0;
  for (int i = 3; i < argc; i++)
    failed |= compile(argv[1], argv[2], source, argv[i]);
  free(source);
  return failed;
}
