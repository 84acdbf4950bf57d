// split.c: the demographics reader and the stratified split (see split.h).
//
// Reading: one record per line, read into a fixed buffer, so a line's length
// and the row count bound all work and memory whatever the bytes; a record
// that does not parse is counted and skipped, never fatal. Duplicate IDs are
// resolved after reading, when all their rows are known.
//
// Splitting: a volume's place in its stratum cell comes from one random draw
// keyed by (seed, its ID), so the split depends on neither the input order nor
// the other volumes' draws.
#include "split.h"

#include "atomic.h"
#include "errors.h"
#include "rng.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NCELLS = 12, ID_MAX = 999999 };
// The split's draws: the shuffle purpose, a stream of its own ("splt"), and
// the volume's IXI ID as the index.
static const uint32_t SPLIT_STREAM = 0x73706c74;

// ---- records ---------------------------------------------------------------------

// Reads one line into buf (DEMO_MAX_LINE + 1 bytes) without its LF or CRLF and
// advances *line. Returns 0, or -1 at the end of the file; *why is set when the
// line cannot be a record (too long: the rest of the line is consumed unread).
static int read_line(FILE *f, char *buf, int *line, const char **why) {
  size_t len = 0;
  int c;
  *why = NULL;
  while ((c = getc(f)) != EOF && c != '\n') {
    if (len < DEMO_MAX_LINE)
      buf[len++] = (char)c;
    else
      *why = "line too long";
    if (c == '\0')
      *why = "NUL byte";
  }
  if (c == EOF && len == 0 && !*why)
    return -1;
  if (len && buf[len - 1] == '\r')
    len--;
  buf[len] = '\0';
  (*line)++;
  return 0;
}

// Splits a line in place into fields at sep, removing RFC 4180 quotes ("a, b",
// "" for a quote inside). Returns the number of fields (field[] keeps the first
// max), or -1 with *why for bad quoting. Fields cannot span lines.
static int split_fields(char *s, char sep, char **field, int max, const char **why) {
  for (int n = 0;; s++) {
    char *start = s, *out = s;
    if (*s == '"') {
      for (s++;; s++) {
        if (!*s) {
          *why = "unterminated quote";
          return -1;
        }
        if (*s == '"' && *++s != '"')
          break;
        *out++ = *s;
      }
      if (*s && *s != sep) {
        *why = "text after a closing quote";
        return -1;
      }
    } else {
      while (*s && *s != sep)
        out = ++s;
    }
    char end = *s;
    *out = '\0';
    if (n < max)
      field[n] = start;
    n++;
    if (!end)
      return n;
  }
}

// A number with optional spaces around it; 0 for an empty or malformed field.
static int parse_number(const char *s, double *x) {
  char *end;
  while (*s == ' ')
    s++;
  if (!*s)
    return 0;
  *x = strtod(s, &end);
  while (end != s && *end == ' ')
    end++;
  return end != s && !*end && isfinite(*x);
}

// An integer code in [lo, hi]; Excel may write it as 2.0.
static int parse_code(const char *s, int lo, int hi, int *v) {
  double x;
  if (!parse_number(s, &x) || x != floor(x) || x < lo || x > hi)
    return 0;
  *v = (int)x;
  return 1;
}

// ---- the demographics spreadsheet ------------------------------------------------

enum { COL_ID, COL_SEX, COL_ETHNIC, COL_AGE, NCOLS };
static const char *const column_names[NCOLS] = {"IXI_ID", "SEX_ID (1=m, 2=f)", "ETHNIC_ID", "AGE"};

static void garbage(Demographics *d, int line, const char *why) {
  if (d->garbage < DEMO_REPORTED) {
    d->garbage_line[d->garbage] = line;
    d->garbage_why[d->garbage] = why;
  }
  d->garbage++;
}

static int complete(const DemoRow *r) { return (r->sex == 1 || r->sex == 2) && r->ethnic >= 0 && !isnan(r->age); }

static int agree(const DemoRow *a, const DemoRow *b) {
  return a->sex == b->sex && a->ethnic == b->ethnic && (a->age == b->age || (isnan(a->age) && isnan(b->age)));
}

static int by_id_then_line(const void *pa, const void *pb) {
  const DemoRow *a = pa, *b = pb;
  return a->id != b->id ? (a->id > b->id) - (a->id < b->id) : (a->line > b->line) - (a->line < b->line);
}

// Sorts the rows and keeps one per ID, recording each duplicate.
static int collapse_duplicates(Demographics *d) {
  if (!d->count)
    return 0;
  qsort(d->rows, (size_t)d->count, sizeof *d->rows, by_id_then_line);
  if (!(d->dups = malloc((size_t)d->count * sizeof *d->dups)))
    return -1;
  int out = 0;
  for (int i = 0, j; i < d->count; i = j) {
    const DemoRow *kept = NULL;
    int identical = 1;
    for (j = i; j < d->count && d->rows[j].id == d->rows[i].id; j++) {
      identical &= agree(&d->rows[i], &d->rows[j]);
      if (!kept && complete(&d->rows[j]))
        kept = &d->rows[j];
    }
    kept = kept ? kept : &d->rows[i];
    if (j - i > 1)
      d->dups[d->ndups++] = (DemoDup){.id = kept->id, .rows = j - i, .identical = identical, .kept_line = kept->line};
    d->rows[out++] = *kept;
  }
  d->count = out;
  return 0;
}

// Reads the header: the separator and the index of each needed column.
static int read_header(FILE *f, const char *path, char *buf, int *line, char *sep, int col[NCOLS], int *nfields,
                       char *err, size_t errlen) {
  const char *why;
  if (read_line(f, buf, line, &why))
    return err_fail(err, errlen, NULL, "%s: empty file, expected a header line", path);
  if (why)
    return err_fail(err, errlen, NULL, "%s:1: header: %s", path, why);
  char *s = buf;
  if (!strncmp(s, "\xEF\xBB\xBF", 3)) // the UTF-8 byte order mark spreadsheets write
    s += 3;
  int commas = 0, tabs = 0, quoted = 0;
  for (const char *p = s; *p; p++) {
    quoted ^= *p == '"';
    commas += !quoted && *p == ',';
    tabs += !quoted && *p == '\t';
  }
  *sep = tabs > commas ? '\t' : ',';
  char *field[DEMO_MAX_FIELDS];
  int n = split_fields(s, *sep, field, DEMO_MAX_FIELDS, &why);
  if (n < 0)
    return err_fail(err, errlen, NULL, "%s:1: header: %s", path, why);
  if (n > DEMO_MAX_FIELDS)
    return err_fail(err, errlen, NULL, "%s:1: header: more than %d columns", path, DEMO_MAX_FIELDS);
  for (int c = 0; c < NCOLS; c++) {
    col[c] = -1;
    for (int i = 0; i < n; i++) {
      if (strcmp(field[i], column_names[c]))
        continue;
      if (col[c] >= 0)
        return err_fail(err, errlen, NULL, "%s:1: header: column \"%s\" appears twice", path, column_names[c]);
      col[c] = i;
    }
    if (col[c] < 0)
      return err_fail(err, errlen, NULL, "%s:1: header: no column \"%s\"", path, column_names[c]);
  }
  *nfields = n;
  return 0;
}

static int read_rows(FILE *f, const char *path, Demographics *d, char *err, size_t errlen) {
  char buf[DEMO_MAX_LINE + 1], sep = ',', *field[DEMO_MAX_FIELDS];
  int line = 0, col[NCOLS], nfields = 0, cap = 0, records = 0;
  const char *why;
  if (read_header(f, path, buf, &line, &sep, col, &nfields, err, errlen))
    return -1;
  while (!read_line(f, buf, &line, &why)) {
    if (!why && !buf[0])
      continue; // a blank line
    if (++records > DEMO_MAX_ROWS)
      return err_fail(err, errlen, NULL, "%s:%d: more than %d rows", path, line, DEMO_MAX_ROWS);
    int n = why ? -1 : split_fields(buf, sep, field, DEMO_MAX_FIELDS, &why);
    DemoRow r = {.line = line, .sex = 0, .ethnic = -1, .age = NAN};
    if (n < 0) {
      garbage(d, line, why);
    } else if (n != nfields) {
      garbage(d, line, "wrong number of fields");
    } else if (!parse_code(field[col[COL_ID]], 1, ID_MAX, &r.id)) {
      garbage(d, line, "IXI_ID is not a number from 1 to 999999");
    } else {
      parse_code(field[col[COL_SEX]], 0, ID_MAX, &r.sex); // codes are small integers, like IDs
      parse_code(field[col[COL_ETHNIC]], 0, ID_MAX, &r.ethnic);
      if (!parse_number(field[col[COL_AGE]], &r.age) || r.age < 0 || r.age >= 150)
        r.age = NAN;
      if (d->count == cap) {
        cap = cap ? 2 * cap : 1024;
        DemoRow *p = realloc(d->rows, (size_t)cap * sizeof *p);
        if (!p)
          return err_fail(err, errlen, NULL, "%s: out of memory", path);
        d->rows = p;
      }
      d->rows[d->count++] = r;
    }
  }
  if (ferror(f))
    return err_fail(err, errlen, NULL, "%s: read error", path);
  if (collapse_duplicates(d))
    return err_fail(err, errlen, NULL, "%s: out of memory", path);
  return 0;
}

int demo_read(const char *path, Demographics *d, char *err, size_t errlen) {
  *d = (Demographics){0};
  FILE *f = fopen(path, "rb");
  if (!f)
    return err_fail(err, errlen, NULL, "%s: cannot open: %s", path, strerror(errno));
  int rc = read_rows(f, path, d, err, errlen);
  fclose(f);
  if (rc)
    demo_free(d);
  return rc;
}

void demo_free(Demographics *d) {
  free(d->rows);
  free(d->dups);
  *d = (Demographics){0};
}

static int cmp_id(const void *key, const void *row) {
  int a = *(const int *)key, b = ((const DemoRow *)row)->id;
  return (a > b) - (a < b);
}

const DemoRow *demo_find(const Demographics *d, int id) {
  return d->count ? bsearch(&id, d->rows, (size_t)d->count, sizeof *d->rows, cmp_id) : NULL;
}

void demo_report(FILE *f, const Demographics *d) {
  fprintf(f, "demographics: %d subjects, %d duplicate IDs, %d garbage rows skipped\n", d->count, d->ndups,
          d->garbage);
  for (int i = 0; i < d->garbage && i < DEMO_REPORTED; i++)
    fprintf(f, "  garbage row at line %d: %s\n", d->garbage_line[i], d->garbage_why[i]);
  if (d->garbage > DEMO_REPORTED)
    fprintf(f, "  ... and %d more garbage rows\n", d->garbage - DEMO_REPORTED);
  for (int i = 0; i < d->ndups; i++) {
    const DemoDup *u = &d->dups[i];
    const DemoRow *r = demo_find(d, u->id);
    fprintf(f, "  IXI_ID %d: %d rows, %s; kept line %d (sex %d, ethnicity %d, age %.2f)\n", u->id, u->rows,
            u->identical ? "identical" : "conflicting", u->kept_line, r->sex, r->ethnic, r->age);
  }
}

int ixi_id_from_name(const char *name) {
  const char *slash = strrchr(name, '/');
  const char *s = slash ? slash + 1 : name;
  if (strncmp(s, "IXI", 3))
    return -1;
  int id = 0, digits = 0;
  for (s += 3; *s >= '0' && *s <= '9'; s++, digits++)
    if (digits < 6)
      id = id * 10 + (*s - '0');
  return digits >= 1 && digits <= 6 && id > 0 ? id : -1;
}

// ---- strata ------------------------------------------------------------------------

const char *split_set_name(SplitSet s) {
  static const char *const names[] = {"train", "val", "test"};
  return (unsigned)s < 3 ? names[s] : "?";
}

const char *meta_problem_text(MetaProblem m) {
  static const char *const text[] = {"ok", "no demographics row", "AGE missing or invalid", "SEX_ID not 1 or 2",
                                     "ETHNIC_ID missing"};
  return (unsigned)m < 5 ? text[m] : "?";
}

static const char *const age_names[] = {"young", "adult", "elderly"};
static const char *const sex_names[] = {"m", "f"};
static const char *const ethnic_names[] = {"white", "other"};

// Fills in e's strata from its subject's row (NULL when there is none).
static void classify(SplitEntry *e, const DemoRow *r) {
  e->age = e->sex = e->ethnic = -1;
  if (!r) {
    e->problem = META_NO_ROW;
    return;
  }
  if (!isnan(r->age))
    e->age = r->age < 25 ? AGE_YOUNG : r->age < 65 ? AGE_ADULT : AGE_ELDERLY;
  if (r->sex == 1 || r->sex == 2)
    e->sex = r->sex == 1 ? SEX_MALE : SEX_FEMALE;
  if (r->ethnic >= 0)
    e->ethnic = r->ethnic == 1 ? ETHNIC_WHITE : ETHNIC_OTHER;
  e->problem = e->age < 0 ? META_NO_AGE : e->sex < 0 ? META_BAD_SEX : e->ethnic < 0 ? META_NO_ETHNIC : META_OK;
}

// ---- the split ---------------------------------------------------------------------

// Splits round(frac * the sum of n) over the cells in proportion to n: each
// cell gets the floor of its quota, and the units left go one each to the
// largest remainders (ties to the lower cell, for determinism).
static void apportion(const int n[NCELLS], double frac, int out[NCELLS]) {
  double rem[NCELLS];
  int total = 0, given = 0;
  for (int c = 0; c < NCELLS; c++) {
    double quota = frac * n[c];
    out[c] = (int)quota;
    rem[c] = quota - out[c];
    given += out[c];
    total += n[c];
  }
  for (long want = lround(frac * total); given < want; given++) {
    int best = -1;
    for (int c = 0; c < NCELLS; c++)
      if (out[c] < n[c] && rem[c] >= 0 && (best < 0 || rem[c] > rem[best]))
        best = c;
    if (best < 0)
      break;
    out[best]++;
    rem[best] = -1;
  }
}

typedef struct Draw {
  int cell;
  uint64_t key;
  SplitEntry *e;
} Draw;

static int by_cell_then_key(const void *pa, const void *pb) {
  const Draw *a = pa, *b = pb;
  if (a->cell != b->cell)
    return (a->cell > b->cell) - (a->cell < b->cell);
  if (a->key != b->key)
    return (a->key > b->key) - (a->key < b->key);
  return (a->e->id > b->e->id) - (a->e->id < b->e->id);
}

static int by_id(const void *pa, const void *pb) {
  const SplitEntry *a = pa, *b = pb;
  return (a->id > b->id) - (a->id < b->id);
}

// Assigns the stratified volumes to sets, cell by cell.
static int assign(Split *s) {
  Draw *draw = malloc((size_t)(s->stratified ? s->stratified : 1) * sizeof *draw);
  if (!draw)
    return -1;
  int n = 0, size[NCELLS] = {0}, test[NCELLS], rest[NCELLS], val[NCELLS] = {0};
  for (int i = 0; i < s->count; i++) {
    SplitEntry *e = &s->v[i];
    if (e->problem != META_OK)
      continue;
    int cell = (e->age * 2 + e->sex) * 2 + e->ethnic;
    uint64_t key = rng_bits(s->opt.seed, rng_stream(RNG_SHUFFLE, SPLIT_STREAM), (uint64_t)e->id);
    draw[n++] = (Draw){cell, key, e};
    size[cell]++;
  }
  qsort(draw, (size_t)n, sizeof *draw, by_cell_then_key);
  apportion(size, s->opt.test_fraction, test);
  for (int c = 0; c < NCELLS; c++)
    rest[c] = size[c] - test[c];
  if (s->opt.mode == SPLIT_BY_VOLUME)
    apportion(rest, s->opt.val_fraction, val);
  for (int i = 0, at = 0; i < n; i++, at++) {
    int c = draw[i].cell;
    if (i > 0 && c != draw[i - 1].cell)
      at = 0;
    draw[i].e->set = at < test[c] ? SET_TEST : at < test[c] + val[c] ? SET_VAL : SET_TRAIN;
  }
  free(draw);
  return 0;
}

int split_make(const SplitVolume *vols, int n, const Demographics *d, const SplitOptions *opt, Split *s, char *err,
               size_t errlen) {
  *s = (Split){.opt = *opt};
  if (!(opt->test_fraction >= 0 && opt->test_fraction < 1 && opt->val_fraction >= 0 && opt->val_fraction < 1))
    return err_fail(err, errlen, NULL, "split: fractions must be in [0, 1), got test %g and validation %g", opt->test_fraction,
                opt->val_fraction);
  if (opt->mode != SPLIT_BY_VOLUME && opt->mode != SPLIT_VALIDATION_BY_SLICE)
    return err_fail(err, errlen, NULL, "split: unknown mode %d", (int)opt->mode);
  if (n < 0)
    return err_fail(err, errlen, NULL, "split: %d volumes", n);
  if (!(s->v = calloc(n ? (size_t)n : 1, sizeof *s->v)))
    return err_fail(err, errlen, NULL, "split: out of memory for %d volumes", n);
  s->count = n;
  for (int i = 0; i < n; i++) {
    const SplitVolume *in = &vols[i];
    if (!in->name || strpbrk(in->name, "\t\r\n") || in->id <= 0 || in->slices < 0) {
      split_free(s);
      return err_fail(err, errlen, NULL, "split: volume %d (%s): needs a name without tabs or line breaks, an ID > 0 and "
                  "slices >= 0", i, in->name ? in->name : "no name");
    }
    if (!(s->v[i].name = strdup(in->name))) {
      split_free(s);
      return err_fail(err, errlen, NULL, "split: out of memory");
    }
    s->v[i].id = in->id;
    s->v[i].slices = in->slices;
  }
  qsort(s->v, (size_t)n, sizeof *s->v, by_id);
  for (int i = 0; i < n; i++) {
    if (i > 0 && s->v[i].id == s->v[i - 1].id) {
      err_fail(err, errlen, NULL, "split: volumes %s and %s have the same ID %d", s->v[i - 1].name, s->v[i].name, s->v[i].id);
      split_free(s);
      return -1;
    }
    classify(&s->v[i], demo_find(d, s->v[i].id));
    s->stratified += s->v[i].problem == META_OK;
  }
  if (assign(s)) {
    split_free(s);
    return err_fail(err, errlen, NULL, "split: out of memory");
  }
  for (int i = 0; i < n; i++)
    s->n[s->v[i].set]++;
  s->val_slice_fraction = opt->mode == SPLIT_VALIDATION_BY_SLICE ? opt->val_fraction : 0;
  return 0;
}

void split_free(Split *s) {
  for (int i = 0; i < s->count; i++)
    free(s->v[i].name);
  free(s->v);
  *s = (Split){0};
}

static const char *name_or_unknown(const char *const *names, int i) { return i >= 0 ? names[i] : "unknown"; }

int split_write_manifest(const char *path, const Split *s, char *err, size_t errlen) {
  AtomicFile out;
  if (atomic_open(&out, path, err, errlen))
    return -1;
  fprintf(out.f, "name\tid\tset\tage_group\tsex\tethnicity\tslices\n");
  for (int i = 0; i < s->count; i++) {
    const SplitEntry *e = &s->v[i];
    fprintf(out.f, "%s\t%d\t%s\t%s\t%s\t%s\t%lld\n", e->name, e->id, split_set_name(e->set),
            name_or_unknown(age_names, e->age), name_or_unknown(sex_names, e->sex),
            name_or_unknown(ethnic_names, e->ethnic), (long long)e->slices);
  }
  return atomic_commit(&out, 0, err, errlen);
}

// ---- the report --------------------------------------------------------------------

// Counts of one column of the report: a set, or every volume (set < 0).
typedef struct Tally {
  int volumes, stratified, age[3], sex[2], ethnic[2];
  int64_t slices;
} Tally;

static Tally tally(const Split *s, int set) {
  Tally t = {0};
  for (int i = 0; i < s->count; i++) {
    const SplitEntry *e = &s->v[i];
    if (set >= 0 && (int)e->set != set)
      continue;
    t.volumes++;
    t.slices += e->slices;
    if (e->problem == META_OK) {
      t.stratified++;
      t.age[e->age]++;
      t.sex[e->sex]++;
      t.ethnic[e->ethnic]++;
    }
  }
  return t;
}

static double percent(int64_t part, int64_t whole) { return whole ? 100.0 * (double)part / (double)whole : 0; }

void split_report(FILE *f, const Split *s) {
  Tally t[4] = {tally(s, -1), tally(s, SET_TRAIN), tally(s, SET_VAL), tally(s, SET_TEST)};
  fprintf(f, "split by %s, seed %llu: %d volumes, %d stratified; %d without a stratum go to train\n",
          s->opt.mode == SPLIT_BY_VOLUME ? "volume" : "volume (test) and slice (validation)",
          (unsigned long long)s->opt.seed, s->count, s->stratified, s->count - s->stratified);
  if (s->opt.mode == SPLIT_VALIDATION_BY_SLICE)
    fprintf(f, "validation: %.1f%% of the training slices, drawn one by one (leaks neighbouring slices)\n",
            100 * s->val_slice_fraction);
  fprintf(f, "%-12s %9s %9s %9s %9s\n", "", "whole", "train", "val", "test");
  fprintf(f, "%-12s", "volumes");
  for (int c = 0; c < 4; c++)
    fprintf(f, " %9d", t[c].volumes);
  fprintf(f, "\n%-12s", "slices");
  for (int c = 0; c < 4; c++)
    fprintf(f, " %9lld", (long long)t[c].slices);
  fprintf(f, "\n%-12s", "  % slices");
  for (int c = 0; c < 4; c++)
    fprintf(f, " %8.1f%%", percent(t[c].slices, t[0].slices));
  fprintf(f, "\n%-12s", "stratified");
  for (int c = 0; c < 4; c++)
    fprintf(f, " %9d", t[c].stratified);
  fprintf(f, "\n");
  // Shares of the stratified volumes of each column.
  for (int g = 0; g < 7; g++) {
    const char *label = g < 3 ? age_names[g] : g < 5 ? sex_names[g - 3] : ethnic_names[g - 5];
    fprintf(f, "%-12s", label);
    for (int c = 0; c < 4; c++) {
      int k = g < 3 ? t[c].age[g] : g < 5 ? t[c].sex[g - 3] : t[c].ethnic[g - 5];
      fprintf(f, " %8.1f%%", percent(k, t[c].stratified));
    }
    fprintf(f, "\n");
  }
  for (int i = 0; i < s->count; i++)
    if (s->v[i].problem != META_OK)
      fprintf(f, "  %s (IXI_ID %d): %s -> %s\n", s->v[i].name, s->v[i].id, meta_problem_text(s->v[i].problem),
              split_set_name(s->v[i].set));
}
