// test_split.c: the demographics reader and the stratified split. The real
// IXI spreadsheet and volume list (the folder given as argv[1]), synthetic
// spreadsheets with each quirk, mutated and random bytes, and the manifest
// written to a temporary folder and read back.
#include "rng.h"
#include "../testutil.h"
#include "split.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


// Writes text to a file in dir and reads it as demographics.
static int demo_text(const char *name, const char *text, Demographics *d, char *err) {
  char *path = path_in_dir(name);
  spit(path, text, strlen(text));
  return demo_read(path, d, err, 256);
}

static int same_rows(const Demographics *a, const Demographics *b) {
  if (a->count != b->count)
    return 0;
  for (int i = 0; i < a->count; i++) {
    const DemoRow *x = &a->rows[i], *y = &b->rows[i];
    int same_age = x->age == y->age || (isnan(x->age) && isnan(y->age));
    if (x->id != y->id || x->sex != y->sex || x->ethnic != y->ethnic || !same_age)
      return 0;
  }
  return 1;
}

// ---- the real IXI data -------------------------------------------------------------

// The 18 volumes the seed left out of stratification (15 without a row, 3 without AGE).
static const int seed_unstratified[18] = {81,  88,  117, 228, 333, 337, 340, 341, 345,
                                          347, 435, 457, 589, 623, 637, 638, 643, 661};

// Reads t1_volumes.tsv: name, slices, kept slices, ...; the weight is the kept
// slices, the ones a trainer sees. Names point into *text.
static int read_volumes(const char *path, SplitVolume *v, int max, char **text) {
  *text = slurp(path, NULL);
  if (!*text)
    return -1;
  int n = 0;
  char *save, *line = strtok_r(*text, "\n", &save); // the header
  while ((line = strtok_r(NULL, "\n", &save)) && n < max) {
    char *tab1 = strchr(line, '\t'), *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
    if (!tab2)
      return -1;
    *tab1 = '\0';
    v[n] = (SplitVolume){.name = line, .id = ixi_id_from_name(line), .slices = atoll(tab2 + 1)};
    n++;
  }
  return n;
}

static int write_split(const SplitVolume *v, int n, const Demographics *d, SplitOptions opt, const char *name,
                       Split *s) {
  char err[256];
  int rc = split_make(v, n, d, &opt, s, err, sizeof err);
  CHECK(rc == 0, "split_make: %s", err);
  if (!rc) {
    rc = split_write_manifest(path_in_dir(name), s, err, sizeof err);
    CHECK(rc == 0, "split_write_manifest: %s", err);
  }
  return rc;
}

static int contains(const int *a, int n, int x) {
  for (int i = 0; i < n; i++)
    if (a[i] == x)
      return 1;
  return 0;
}

static void test_real(const char *data) {
  char path[512], err[256];
  Demographics d;
  snprintf(path, sizeof path, "%s/IXI.csv", data);
  CHECK(demo_read(path, &d, err, sizeof err) == 0, "%s", err);
  printf("== the real IXI data\n");
  demo_report(stdout, &d);
  // 619 rows, 593 IDs: 26 duplicated, one pair (447) an exact copy; in the
  // others the first row is the complete one, and 219 and 328 disagree.
  CHECK(d.count == 593 && d.ndups == 26 && d.garbage == 0, "%d subjects, %d duplicates, %d garbage", d.count,
        d.ndups, d.garbage);
  for (int i = 0; i < d.ndups; i++) {
    const DemoDup *u = &d.dups[i];
    CHECK(u->rows == 2 && u->identical == (u->id == 447), "duplicate %d", u->id);
    if (u->id == 219 || u->id == 328)
      CHECK(u->kept_line == (u->id == 219 ? 197 : 301), "duplicate %d kept line %d", u->id, u->kept_line);
  }
  const DemoRow *r328 = demo_find(&d, 328);
  CHECK(r328 && r328->sex == 2 && r328->ethnic == 1, "IXI 328 keeps its complete first row");

  SplitVolume vols[600];
  char *text;
  snprintf(path, sizeof path, "%s/t1_volumes.tsv", data);
  int n = read_volumes(path, vols, 600, &text);
  CHECK(n == 581, "%d volumes in t1_volumes.tsv", n);
  int bad_ids = 0;
  for (int i = 0; i < n; i++)
    bad_ids += vols[i].id <= 0;
  CHECK(bad_ids == 0, "%d names without an IXI id", bad_ids);

  Split s, again, other;
  if (write_split(vols, n, &d, SPLIT_DEFAULTS, "seed1.tsv", &s)) {
    demo_free(&d);
    free(text);
    return;
  }
  split_report(stdout, &s);

  // Every volume once, in one set.
  int unique = 1;
  for (int i = 1; i < s.count; i++)
    unique &= s.v[i].id > s.v[i - 1].id;
  CHECK(unique && s.count == n && s.n[SET_TRAIN] + s.n[SET_VAL] + s.n[SET_TEST] == n, "volumes in more than one set");

  // The volumes without a stratum: exactly the seed's 18, all in train.
  int no_row = 0, no_age = 0, other_problem = 0, listed = 0, in_train = 0;
  for (int i = 0; i < s.count; i++) {
    const SplitEntry *e = &s.v[i];
    if (e->problem == META_OK)
      continue;
    no_row += e->problem == META_NO_ROW;
    no_age += e->problem == META_NO_AGE;
    other_problem += e->problem != META_NO_ROW && e->problem != META_NO_AGE;
    listed += contains(seed_unstratified, 18, e->id);
    in_train += e->set == SET_TRAIN;
  }
  CHECK(no_row == 15 && no_age == 3 && other_problem == 0 && listed == 18 && in_train == 18,
        "without a stratum: %d no row, %d no age, %d other problems, %d of the seed's 18, %d in train", no_row, no_age,
        other_problem, listed, in_train);
  CHECK(s.stratified == 563, "%d stratified", s.stratified);

  // Test is 8% of the stratified volumes, validation 15% of the rest, and each
  // of the 12 cells is within one volume of those shares.
  CHECK(fabs(s.n[SET_TEST] - 0.08 * 563) <= 1, "%d test volumes", s.n[SET_TEST]);
  CHECK(fabs(s.n[SET_VAL] - 0.15 * (563 - s.n[SET_TEST])) <= 1, "%d validation volumes", s.n[SET_VAL]);
  int size[12] = {0}, test[12] = {0}, val[12] = {0};
  int whole[7] = {0}, in_set[3][7] = {{0}}, stratified_in[3] = {0};
  for (int i = 0; i < s.count; i++) {
    const SplitEntry *e = &s.v[i];
    if (e->problem != META_OK)
      continue;
    int cell = (e->age * 2 + e->sex) * 2 + e->ethnic;
    size[cell]++;
    test[cell] += e->set == SET_TEST;
    val[cell] += e->set == SET_VAL;
    const int group[3] = {e->age, 3 + e->sex, 5 + e->ethnic};
    stratified_in[e->set]++;
    for (int g = 0; g < 3; g++) {
      whole[group[g]]++;
      in_set[e->set][group[g]]++;
    }
  }
  for (int c = 0; c < 12; c++) {
    CHECK(fabs(test[c] - 0.08 * size[c]) < 1, "cell %d: %d of %d in test", c, test[c], size[c]);
    CHECK(fabs(val[c] - 0.15 * (size[c] - test[c])) < 1, "cell %d: %d of %d in val", c, val[c], size[c] - test[c]);
  }
  // The seed's shares of the whole (its duplicates dropped, keeping the first
  // row): young 7.5%, adult 73.4%, elderly 19.2%, male 44.4%, female 55.6%,
  // white 80.1%, other 19.9%. Each set is within 3 points of them.
  static const double seed_share[7] = {7.5, 73.4, 19.2, 44.4, 55.6, 80.1, 19.9};
  for (int g = 0; g < 7; g++) {
    double share = 100.0 * whole[g] / 563;
    CHECK(fabs(share - seed_share[g]) < 0.05, "group %d: %.2f%% of the whole, the seed had %.1f%%", g, share,
          seed_share[g]);
    for (int set = 0; set < 3; set++) {
      double in = 100.0 * in_set[set][g] / stratified_in[set];
      CHECK(fabs(in - share) < 3, "group %d: %.1f%% in %s, %.1f%% of the whole", g, in, split_set_name(set), share);
    }
  }

  // The same seed gives the same manifest whatever the input order; another seed another one.
  for (int i = n - 1; i > 0; i--) {
    int j = (int)(rng_bits(7, 0, (uint64_t)i) % (uint64_t)(i + 1));
    SplitVolume t = vols[i];
    vols[i] = vols[j];
    vols[j] = t;
  }
  SplitOptions opt = SPLIT_DEFAULTS;
  write_split(vols, n, &d, opt, "seed1_shuffled.tsv", &again);
  opt.seed = 2;
  write_split(vols, n, &d, opt, "seed2.tsv", &other);
  char *m1 = slurp(path_in_dir("seed1.tsv"), NULL), *m1s = slurp(path_in_dir("seed1_shuffled.tsv"), NULL),
       *m2 = slurp(path_in_dir("seed2.tsv"), NULL);
  CHECK(m1 && m1s && m2 && !strcmp(m1, m1s), "the same seed on shuffled input gives another manifest");
  CHECK(m1 && m2 && strcmp(m1, m2), "seeds 1 and 2 give the same manifest");
  printf("seed 2: train %d, val %d, test %d\n", other.n[SET_TRAIN], other.n[SET_VAL], other.n[SET_TEST]);
  split_free(&again);
  split_free(&other);

  // The seed's leaky scheme: the same test set, no volume in validation.
  opt = SPLIT_DEFAULTS;
  opt.mode = SPLIT_VALIDATION_BY_SLICE;
  CHECK(split_make(vols, n, &d, &opt, &other, err, sizeof err) == 0, "%s", err);
  int same_test = other.count == s.count;
  for (int i = 0; same_test && i < s.count; i++)
    same_test = (s.v[i].set == SET_TEST) == (other.v[i].set == SET_TEST);
  CHECK(same_test && other.n[SET_VAL] == 0 && other.val_slice_fraction == 0.15, "validation by slice");
  split_report(stdout, &other);
  split_free(&other);

  free(m1);
  free(m1s);
  free(m2);
  split_free(&s);
  demo_free(&d);
  free(text);
}

// ---- synthetic spreadsheets ------------------------------------------------------

// Every age boundary, ethnicity codes 0 to 6, and rows without a usable stratum.
static const char base_csv[] = "IXI_ID,\"SEX_ID (1=m, 2=f)\",HEIGHT,ETHNIC_ID,AGE\n"
                               "1,1,170,1,24.99\n"
                               "2,2,160,2,25.0\n"
                               "3,1,0,0,64.999\n"
                               "4,2,0,3,65.0\n"
                               "5,1,0,4,30\n"
                               "6,2,0,5,40\n"
                               "7,1,0,6,50\n"
                               "8,3,0,1,50\n"
                               "9,1,0,,50\n"
                               "10,1,0,1,\n"
                               "11,2,0,1,abc\n";
static const char base_tsv[] = "IXI_ID\tSEX_ID (1=m, 2=f)\tHEIGHT\tETHNIC_ID\tAGE\n"
                               "1\t1\t170\t1\t24.99\n"
                               "2\t2\t160\t2\t25.0\n"
                               "3\t1\t0\t0\t64.999\n"
                               "4\t2\t0\t3\t65.0\n"
                               "5\t1\t0\t4\t30\n"
                               "6\t2\t0\t5\t40\n"
                               "7\t1\t0\t6\t50\n"
                               "8\t3\t0\t1\t50\n"
                               "9\t1\t0\t\t50\n"
                               "10\t1\t0\t1\t\n"
                               "11\t2\t0\t1\tabc\n";
// The same subjects with a byte order mark, CRLF, columns reordered, extra
// quoted columns with commas and quotes inside, and quoted numbers.
static const char reordered_csv[] = "\xEF\xBB\xBF" "AGE,NOTE,ETHNIC_ID,\"SEX_ID (1=m, 2=f)\",SITE,IXI_ID\r\n"
                                    "24.99,\"London, \"\"Guys\"\"\",1,1,HH,1\r\n"
                                    "\"25.0\",,2,2,\"a,b,c\",2\r\n"
                                    "64.999,x,0,1,IOP,3\r\n"
                                    "65.0,\"\",3,2,IOP,\"4\"\r\n"
                                    "30,,4,1,,5\r\n"
                                    "40,,5,2,,6\r\n"
                                    "50,,6,1,,7\r\n"
                                    "50,,1,3,,8\r\n"
                                    "50,,,1,,9\r\n"
                                    ",,1,1,,10\r\n"
                                    "abc,,1,2,,11\r\n";

static void test_quirks(void) {
  char err[256];
  Demographics csv, tsv, reordered, d;
  CHECK(demo_text("base.csv", base_csv, &csv, err) == 0, "%s", err);
  CHECK(demo_text("base.tsv", base_tsv, &tsv, err) == 0, "%s", err);
  CHECK(demo_text("reordered.csv", reordered_csv, &reordered, err) == 0, "%s", err);
  CHECK(csv.count == 11 && csv.garbage == 0 && csv.ndups == 0, "base.csv: %d rows", csv.count);
  CHECK(same_rows(&csv, &tsv), "CSV and TSV differ");
  CHECK(same_rows(&csv, &reordered), "reordered columns, quotes and CRLF change the rows");
  const DemoRow *r = demo_find(&csv, 9);
  CHECK(r && r->ethnic == -1 && r->age == 50 && r->line == 10, "row 9");
  r = demo_find(&csv, 11);
  CHECK(r && r->sex == 2 && isnan(r->age), "row 11");
  CHECK(!demo_find(&csv, 12), "no row 12");

  // Strata: ages 25.0 and 65.0 open the adult and elderly groups, codes other than 1 are "other".
  SplitVolume v[12];
  char names[12][24];
  for (int i = 0; i < 12; i++) {
    snprintf(names[i], sizeof names[i], "IXI%03d-Guys-0001-T1", 12 - i); // reversed on purpose
    v[i] = (SplitVolume){names[i], 12 - i, 100 + i};
  }
  Split s;
  SplitOptions opt = SPLIT_DEFAULTS;
  CHECK(split_make(v, 12, &csv, &opt, &s, err, sizeof err) == 0, "%s", err);
  static const int age[12] = {AGE_YOUNG, AGE_ADULT, AGE_ADULT, AGE_ELDERLY, AGE_ADULT, AGE_ADULT, AGE_ADULT,
                              AGE_ADULT, AGE_ADULT, -1, -1, -1};
  static const int ethnic[12] = {0, 1, 1, 1, 1, 1, 1, 0, -1, 0, 0, -1};
  static const MetaProblem problem[12] = {META_OK, META_OK, META_OK, META_OK, META_OK, META_OK, META_OK,
                                          META_BAD_SEX, META_NO_ETHNIC, META_NO_AGE, META_NO_AGE, META_NO_ROW};
  for (int i = 0; i < 12; i++) {
    const SplitEntry *e = &s.v[i];
    CHECK(e->id == i + 1 && e->age == age[i] && e->ethnic == ethnic[i] && e->problem == problem[i],
          "IXI %d: age group %d, ethnic group %d, problem %d", e->id, e->age, e->ethnic, e->problem);
    if (e->problem != META_OK)
      CHECK(e->set == SET_TRAIN, "IXI %d without a stratum is in %s", e->id, split_set_name(e->set));
  }
  // 7 stratified: test round(0.56) = 1, validation round(0.9) = 1.
  CHECK(s.stratified == 7 && s.n[SET_TEST] == 1 && s.n[SET_VAL] == 1, "%d stratified, %d test, %d val",
        s.stratified, s.n[SET_TEST], s.n[SET_VAL]);
  split_free(&s);

  // Errors: a missing column names the file and the column, and so on.
  static const struct {
    const char *text, *message;
  } bad[] = {
      {"IXI_ID,\"SEX_ID (1=m, 2=f)\",AGE\n1,1,30\n", "bad.csv:1: header: no column \"ETHNIC_ID\""},
      {"IXI_ID;SEX_ID;ETHNIC_ID;AGE\n", "bad.csv:1: header: no column \"IXI_ID\""},
      {"IXI_ID,\"SEX_ID (1=m, 2=f)\",AGE,ETHNIC_ID,AGE\n", "bad.csv:1: header: column \"AGE\" appears twice"},
      {"IXI_ID,\"SEX_ID (1=m, 2=f),AGE,ETHNIC_ID\n", "bad.csv:1: header: unterminated quote"},
      {"", "bad.csv: empty file, expected a header line"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = demo_text("bad.csv", bad[i].text, &d, err);
    const char *msg = strstr(err, "bad.csv");
    CHECK(rc == -1 && msg && !strcmp(msg, bad[i].message) && d.count == 0, "case %zu: got \"%s\"", i, err);
  }
  CHECK(demo_read(path_in_dir("missing.csv"), &d, err, sizeof err) == -1 && strstr(err, "missing.csv: cannot open"),
        "%s", err);

  // Garbage rows are skipped and counted, the first few with their line.
  char garbage_csv[8192] = "IXI_ID,\"SEX_ID (1=m, 2=f)\",ETHNIC_ID,AGE\n"
                           "abc,1,1,30\n"        // 2: not a number
                           "5,1,1\n"             // 3: too few fields
                           "\"6,1,1,30\n"        // 4: unterminated quote
                           "7,1,1,30,extra\n"    // 5: too many
                           "\n"                  // 6: blank, skipped
                           "0,1,1,30\n"          // 7: ID 0
                           "8,1,1,30\n"          // 8
                           "\"9\"x,1,1,30\n";    // 9: text after a quote
  size_t len = strlen(garbage_csv);
  memset(garbage_csv + len, 'x', DEMO_MAX_LINE + 1); // 10: too long
  strcpy(garbage_csv + len + DEMO_MAX_LINE + 1, "\n10,2,1,40\n1000000,1,1,30");
  CHECK(demo_text("garbage.csv", garbage_csv, &d, err) == 0, "%s", err);
  static const int lines[DEMO_REPORTED] = {2, 3, 4, 5, 7};
  CHECK(d.count == 2 && d.rows[0].id == 8 && d.rows[1].id == 10 && d.rows[1].line == 11 && d.garbage == 8,
        "garbage: %d rows, %d garbage", d.count, d.garbage);
  for (int i = 0; i < DEMO_REPORTED; i++)
    CHECK(d.garbage_line[i] == lines[i], "garbage %d at line %d", i, d.garbage_line[i]);
  demo_report(stdout, &d);
  demo_free(&d);

  // Duplicates: identical rows collapse; otherwise the first complete row wins.
  static const char dups_csv[] = "IXI_ID,\"SEX_ID (1=m, 2=f)\",ETHNIC_ID,AGE\n"
                                 "20,1,1,30\n" // 2
                                 "21,2,1,\n"   // 3: no age
                                 "20,1,1,30\n" // 4: identical
                                 "21,1,0,41\n" // 5: complete, kept
                                 "22,1,1,50\n" // 6: kept
                                 "22,2,1,51\n" // 7
                                 "23,,1,\n"    // 8: neither is complete, the first is kept
                                 "23,1,,\n"    // 9
                                 "20,1,1,30\n";
  CHECK(demo_text("dups.csv", dups_csv, &d, err) == 0, "%s", err);
  static const DemoDup want[4] = {{20, 3, 1, 2}, {21, 2, 0, 5}, {22, 2, 0, 6}, {23, 2, 0, 8}};
  CHECK(d.count == 4 && d.ndups == 4, "%d rows, %d duplicates", d.count, d.ndups);
  for (int i = 0; i < d.ndups && i < 4; i++)
    CHECK(!memcmp(&d.dups[i], &want[i], sizeof want[i]), "duplicate %d: %d rows, identical %d, kept line %d",
          d.dups[i].id, d.dups[i].rows, d.dups[i].identical, d.dups[i].kept_line);
  r = demo_find(&d, 21);
  CHECK(r && r->sex == 1 && r->ethnic == 0 && r->age == 41, "IXI 21 keeps its complete row");
  demo_report(stdout, &d);
  demo_free(&d);

  // Row limit.
  size_t cap = 64 + (size_t)(DEMO_MAX_ROWS + 1) * 20;
  char *many = malloc(cap);
  size_t at = (size_t)snprintf(many, cap, "IXI_ID,ETHNIC_ID,AGE,\"SEX_ID (1=m, 2=f)\"\n");
  for (int i = 1; i <= DEMO_MAX_ROWS + 1; i++)
    at += (size_t)snprintf(many + at, cap - at, "%d,1,30,1\n", i);
  CHECK(demo_text("many.csv", many, &d, err) == -1 && strstr(err, "more than 100000 rows"), "%s", err);
  free(many);

  demo_free(&csv);
  demo_free(&tsv);
  demo_free(&reordered);
}

// Mutated and random bytes: the reader must never crash, and what it accepts
// must be well formed.
static void test_bytes(void) {
  char err[256], buf[sizeof reordered_csv + 64];
  int accepted = 0, sane = 1;
  for (uint64_t t = 0; t < 2000; t++) {
    size_t len;
    if (t % 4 == 3) { // random bytes
      len = rng_bits(3, t, 0) % sizeof buf;
      for (size_t i = 0; i < len; i++)
        buf[i] = (char)rng_bits(3, t, i + 1);
    } else { // a few bytes of a valid file changed to bytes that matter to the parser
      static const char special[] = ",\t\"\r\n\0 0123456789.-e";
      len = sizeof reordered_csv - 1;
      memcpy(buf, reordered_csv, len);
      for (int k = 0; k < 1 + (int)(t % 6); k++) {
        uint64_t r = rng_bits(4, t, (uint64_t)k);
        buf[r % len] = r >> 32 & 1 ? special[(r >> 40) % (sizeof special - 1)] : (char)(r >> 48);
      }
    }
    spit(path_in_dir("bytes.csv"), buf, len);
    Demographics d;
    if (demo_read(path_in_dir("bytes.csv"), &d, err, sizeof err) == 0) {
      accepted++;
      for (int i = 0; i < d.count; i++)
        sane &= d.rows[i].id >= 1 && (i == 0 || d.rows[i].id > d.rows[i - 1].id) &&
                (isnan(d.rows[i].age) || (d.rows[i].age >= 0 && d.rows[i].age < 150));
      demo_free(&d);
    }
  }
  CHECK(sane, "an accepted file has bad rows");
  CHECK(accepted > 100, "only %d of 2000 mutated files accepted", accepted);
}

static void test_names_and_options(void) {
  static const struct {
    const char *name;
    int id;
  } cases[] = {{"IXI002-Guys-0828-T1", 2}, {"IXI662-Guys-1120-T1", 662},   {"/data/IXI013-HH-1212-T1.nii.gz", 13},
               {"IXI1234567-X", -1},       {"IXI-Guys", -1},               {"IXI", -1},
               {"ixi002-Guys", -1},        {"data/IXI000-X", -1},          {"IXI42", 42}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    CHECK(ixi_id_from_name(cases[i].name) == cases[i].id, "%s -> %d", cases[i].name, ixi_id_from_name(cases[i].name));

  char err[256];
  Demographics none = {0};
  Split s;
  SplitOptions opt = SPLIT_DEFAULTS;
  CHECK(split_make(NULL, 0, &none, &opt, &s, err, sizeof err) == 0 && s.count == 0, "an empty split: %s", err);
  split_free(&s);
  SplitVolume two[2] = {{"IXI002-a", 2, 10}, {"IXI002-b", 2, 10}};
  CHECK(split_make(two, 2, &none, &opt, &s, err, sizeof err) == -1 &&
            !strcmp(err, "split: volumes IXI002-a and IXI002-b have the same ID 2"), "%s", err);
  two[1] = (SplitVolume){"IXI003\tb", 3, 10};
  CHECK(split_make(two, 2, &none, &opt, &s, err, sizeof err) == -1 && strstr(err, "volume 1 (IXI003"), "%s", err);
  opt.test_fraction = 1;
  CHECK(split_make(two, 1, &none, &opt, &s, err, sizeof err) == -1 && strstr(err, "fractions"), "%s", err);
  opt.test_fraction = NAN;
  CHECK(split_make(two, 1, &none, &opt, &s, err, sizeof err) == -1 && strstr(err, "fractions"), "%s", err);
}

// ---- the manifest ------------------------------------------------------------------

static void test_manifest(void) {
  char err[256];
  Demographics d;
  CHECK(demo_text("m.csv", base_csv, &d, err) == 0, "%s", err);
  SplitVolume v[12];
  char names[12][24];
  for (int i = 0; i < 12; i++) {
    snprintf(names[i], sizeof names[i], "IXI%03d-HH-0001-T1", i + 1);
    v[i] = (SplitVolume){names[i], i + 1, 150 - i};
  }
  Split s;
  const char *path = path_in_dir("manifest.tsv");
  spit(path, "old contents\n", 13); // replaced atomically
  SplitOptions opt = SPLIT_DEFAULTS;
  CHECK(split_make(v, 12, &d, &opt, &s, err, sizeof err) == 0, "%s", err);
  CHECK(split_write_manifest(path, &s, err, sizeof err) == 0, "%s", err);
  CHECK(leftover_temps() == 0, "temporary files left behind");

  // Read it back: the header, then each volume in ID order.
  char *text = slurp(path, NULL), *save, *line = text ? strtok_r(text, "\n", &save) : NULL;
  CHECK(line && !strcmp(line, "name\tid\tset\tage_group\tsex\tethnicity\tslices"), "header %s", line ? line : "");
  static const char *const age_names[] = {"young", "adult", "elderly"}, *const sex_names[] = {"m", "f"},
                           *const ethnic_names[] = {"white", "other"};
  int rows = 0;
  while (line && (line = strtok_r(NULL, "\n", &save))) {
    char name[64], set[8], age[16], sex[16], ethnic[16];
    int id;
    long long slices;
    int k = sscanf(line, "%63[^\t]\t%d\t%7[^\t]\t%15[^\t]\t%15[^\t]\t%15[^\t]\t%lld", name, &id, set, age, sex,
                   ethnic, &slices);
    const SplitEntry *e = rows < s.count ? &s.v[rows] : NULL;
    CHECK(k == 7 && e && !strcmp(name, e->name) && id == e->id && !strcmp(set, split_set_name(e->set)) &&
              !strcmp(age, e->age < 0 ? "unknown" : age_names[e->age]) &&
              !strcmp(sex, e->sex < 0 ? "unknown" : sex_names[e->sex]) &&
              !strcmp(ethnic, e->ethnic < 0 ? "unknown" : ethnic_names[e->ethnic]) && slices == e->slices,
          "manifest row %d: %s", rows + 2, line);
    rows++;
  }
  CHECK(rows == 12, "%d rows in the manifest", rows);
  free(text);

  // A folder that does not exist: an error naming the file, and nothing written.
  CHECK(split_write_manifest(path_in_dir("no/such/manifest.tsv"), &s, err, sizeof err) == -1 &&
            strstr(err, "no/such/manifest.tsv: cannot create a temporary file"), "%s", err);
  split_free(&s);
  demo_free(&d);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DATA_FOLDER (with IXI.csv and t1_volumes.tsv)\n", argv[0]);
    return 2;
  }
  make_dir("caec_split");
  test_real(argv[1]);
  test_quirks();
  test_bytes();
  test_names_and_options();
  test_manifest();

  return finish();
}
