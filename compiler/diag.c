// diag.c: compiler-style diagnostics (FILE:LINE:COL: error: message, the
// source line, a caret) and reading source files safely.
#include "caec.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

struct Diag {
  const Source *src;
  int line, col;
  const char *kind;
  const char *msg;
};

// Long lines are shown as a window around the column.
static void print_source_line(FILE *out, Loc at) {
  enum { WINDOW = 120 };
  const char *p = at.src->text, *end = p + at.src->len;
  for (int line = 1; line < at.line && p < end; p++)
    if (*p == '\n')
      line++;
  const char *eol = p;
  while (eol < end && *eol != '\n')
    eol++;
  const char *from = p, *to = eol;
  if (eol - p > WINDOW) {
    from = at.col > WINDOW / 2 ? p + at.col - 1 - WINDOW / 2 : p;
    to = eol - from > WINDOW ? from + WINDOW : eol;
  }
  fputs(from > p ? "  ..." : "  ", out);
  for (const char *q = from; q < to; q++) {
    unsigned char ch = (unsigned char)*q;
    fputc(ch == '\t' || (ch >= 0x20 && ch != 0x7f) ? ch : '?', out);
  }
  fputs(to < eol ? "...\n  " : "\n  ", out);
  if (from > p)
    fputs("   ", out);
  for (const char *q = from; q < p + at.col - 1 && q < to; q++)
    fputc(*q == '\t' ? '\t' : ' ', out);
  fputs("^\n", out);
}

// Block bodies are elaborated once per instance; the same problem in every
// instance is reported once.
static bool already_seen(Ctx *c, Loc at, const char *kind, const char *msg) {
  for (int i = 0; i < c->nseen; i++) {
    Diag *d = &c->seen[i];
    if (d->src == at.src && d->line == at.line && d->col == at.col && !strcmp(d->kind, kind) &&
        !strcmp(d->msg, msg))
      return true;
  }
  Diag *d = ARENA_PUSH(c->arena, c->seen, c->nseen, c->seen_cap);
  *d = (Diag){at.src, at.line, at.col, kind, msg};
  return false;
}

static void report(Ctx *c, Loc at, const char *kind, const char *fmt, va_list ap) {
  char buf[512];
  vsnprintf(buf, sizeof buf, fmt, ap);
  bool is_note = !strcmp(kind, "note");
  if (!is_note && already_seen(c, at, kind, arena_strndup(c->arena, buf, strlen(buf))))
    return;
  if (c->errors > MAX_ERRORS)
    return;
  if (at.src && at.line > 0)
    fprintf(c->err, "%s:%d:%d: %s: %s\n", at.src->path, at.line, at.col, kind, buf);
  else if (at.src)
    fprintf(c->err, "%s: %s: %s\n", at.src->path, kind, buf);
  else
    fprintf(c->err, "caec: %s: %s\n", kind, buf);
  if (at.src && at.line > 0)
    print_source_line(c->err, at);
}

void error_at(Ctx *c, Loc at, const char *fmt, ...) {
  if (c->errors > MAX_ERRORS)
    return;
  va_list ap;
  va_start(ap, fmt);
  int before = c->nseen;
  report(c, at, "error", fmt, ap);
  va_end(ap);
  if (c->nseen == before)
    return; // a repeat
  if (++c->errors > MAX_ERRORS)
    fprintf(c->err, "caec: too many errors, stopping\n");
}

void warning_at(Ctx *c, Loc at, const char *fmt, ...) {
  if (c->warnings >= MAX_WARNINGS)
    return;
  va_list ap;
  va_start(ap, fmt);
  int before = c->nseen;
  report(c, at, c->werror ? "error" : "warning", fmt, ap);
  va_end(ap);
  if (c->nseen == before)
    return;
  if (c->werror)
    c->errors++;
  else
    c->warnings++;
}

void note_at(Ctx *c, Loc at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report(c, at, "note", fmt, ap);
  va_end(ap);
}

Source *source_from_memory(Ctx *c, const char *path, const char *data, size_t len) {
  Source *s = arena_alloc(c->arena, sizeof *s);
  s->path = arena_strndup(c->arena, path, strlen(path));
  s->text = arena_strndup(c->arena, data, len);
  s->len = len;
  return s;
}

Source *source_read(Ctx *c, const char *path, Loc from) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    error_at(c, from, "cannot open '%s': %s", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    error_at(c, from, "'%s' is not a regular file", path);
    fclose(f);
    return NULL;
  }
  if (st.st_size > MAX_SOURCE_BYTES) {
    error_at(c, from, "'%s' is too large for a model description (%lld bytes, limit %d)", path,
             (long long)st.st_size, MAX_SOURCE_BYTES);
    fclose(f);
    return NULL;
  }
  char *buf = arena_alloc(c->arena, (size_t)st.st_size + 1);
  size_t n = fread(buf, 1, (size_t)st.st_size, f);
  bool bad = ferror(f);
  fclose(f);
  if (bad) {
    error_at(c, from, "cannot read '%s'", path);
    return NULL;
  }
  Source *s = arena_alloc(c->arena, sizeof *s);
  s->path = arena_strndup(c->arena, path, strlen(path));
  s->text = buf;
  s->len = n;
  return s;
}
