// split.h: the volume-level train/validation/test split, stratified by the
// subjects' age group, sex and ethnicity from IXI's demographics spreadsheet.
//
// Slices of one volume are near copies of their neighbours, so every set holds
// whole volumes: no volume contributes slices to two sets. The seed thesis
// split its test set this way but drew validation per slice, unseeded; here
// both are per volume and deterministic for a seed, and the seed's per-slice
// validation is available only on request (SPLIT_VALIDATION_BY_SLICE).
//
// Functions that can fail return 0 on success and -1 with one line in err
// (truncated to errlen) that starts with the file's name where there is one.
#ifndef CAEC_SPLIT_H
#define CAEC_SPLIT_H

#include <stdint.h>
#include <stdio.h>

// ---- the demographics spreadsheet ------------------------------------------------

// The spreadsheet is untrusted input: lines (records) and row counts are bounded.
enum {
  DEMO_MAX_LINE = 4096,    // bytes per record; a longer one is a garbage row
  DEMO_MAX_FIELDS = 256,   // columns in the header
  DEMO_MAX_ROWS = 100000,  // records after the header; more is an error
  DEMO_REPORTED = 5,       // garbage rows kept with their line number for reports
};

// One subject. Values that are empty or not numbers read as missing.
typedef struct DemoRow {
  int id;       // IXI_ID, 1 to 999999
  int sex;      // "SEX_ID (1=m, 2=f)" as written; 0 when missing
  int ethnic;   // ETHNIC_ID as written (IXI uses 0 to 6); -1 when missing
  double age;   // AGE in years; NaN when missing or outside [0, 150)
  int line;     // where the row starts in the file, from 1 (the header)
} DemoRow;

// An IXI_ID with several rows. They are identical when sex, ethnicity and age
// agree (IXI has one exact copy); otherwise the first complete row is kept (one
// with sex 1 or 2, an ethnicity and an age), or the first row when none is.
typedef struct DemoDup {
  int id;
  int rows;       // how many rows have this id
  int identical;  // 1 when all rows agree on sex, ethnicity and age
  int kept_line;  // the row kept
} DemoDup;

typedef struct Demographics {
  DemoRow *rows;  // one per IXI_ID, sorted by id
  int count;
  DemoDup *dups;  // sorted by id
  int ndups;
  int garbage;    // rows skipped: IXI_ID not a number, wrong field count, bad quoting, too long
  int garbage_line[DEMO_REPORTED];        // the first few of them
  const char *garbage_why[DEMO_REPORTED]; // and why (static strings)
} Demographics;

// Reads a CSV or TSV file: the separator is whichever of ',' and '\t' the
// header line has more of outside quotes; quoting is RFC 4180 ("a, b" and ""
// inside quotes); CRLF or LF line ends; a UTF-8 byte order mark is skipped.
// The columns IXI_ID, "SEX_ID (1=m, 2=f)", ETHNIC_ID and AGE are found by
// name in any order; other columns are ignored. Blank lines are skipped.
int demo_read(const char *path, Demographics *d, char *err, size_t errlen);
void demo_free(Demographics *d);
// The subject's row, or NULL.
const DemoRow *demo_find(const Demographics *d, int id);
// Prints the garbage rows and the duplicate IDs with what was done about them.
void demo_report(FILE *f, const Demographics *d);

// The subject ID in an IXI file name such as "IXI002-Guys-0828-T1" (2): "IXI"
// and 1 to 6 digits, then anything but a digit. Any folder before the name is
// skipped. Returns -1 for other names.
int ixi_id_from_name(const char *name);

// ---- strata ------------------------------------------------------------------------

typedef enum { SET_TRAIN, SET_VAL, SET_TEST } SplitSet;
// Age groups: young < 25 <= adult < 65 <= elderly (the seed left exactly 25 out).
typedef enum { AGE_YOUNG, AGE_ADULT, AGE_ELDERLY } AgeGroup;
typedef enum { SEX_MALE, SEX_FEMALE } Sex;
// IXI's ETHNIC_ID 1 is White; the seed put every other code (0, 2 to 6) in one group.
typedef enum { ETHNIC_WHITE, ETHNIC_OTHER } EthnicGroup;

// Why a volume has no stratum; such volumes go to training.
typedef enum { META_OK, META_NO_ROW, META_NO_AGE, META_BAD_SEX, META_NO_ETHNIC } MetaProblem;

const char *split_set_name(SplitSet s);      // "train", "val", "test"
const char *meta_problem_text(MetaProblem m); // "no demographics row", ...

// ---- the split ---------------------------------------------------------------------

typedef enum {
  // Test and validation are disjoint sets of whole volumes (the default).
  SPLIT_BY_VOLUME,
  // The seed's scheme, for reproducing its numbers: test by volume, no volume
  // in validation, and Split.val_slice_fraction of the training volumes'
  // slices drawn one by one for validation by the loader. Neighbouring slices
  // of one volume then land in both training and validation, so validation
  // loss measures memorisation as much as generalisation.
  SPLIT_VALIDATION_BY_SLICE,
} SplitMode;

typedef struct SplitOptions {
  uint64_t seed;
  double test_fraction;  // of the volumes with a stratum
  double val_fraction;   // of those left after test
  SplitMode mode;
} SplitOptions;

#define SPLIT_DEFAULTS ((SplitOptions){.seed = 1, .test_fraction = 0.08, .val_fraction = 0.15, .mode = SPLIT_BY_VOLUME})

// A volume to split: its name (the manifest's key), subject ID and weight (its
// slice count, for reporting slice shares).
typedef struct SplitVolume {
  const char *name;
  int id;
  int64_t slices;
} SplitVolume;

typedef struct SplitEntry {
  char *name;
  int id;
  int64_t slices;
  SplitSet set;
  int age, sex, ethnic;  // AgeGroup, Sex, EthnicGroup; -1 where unknown
  MetaProblem problem;   // META_OK when all three are known
} SplitEntry;

typedef struct Split {
  SplitEntry *v;       // sorted by id
  int count;
  int stratified;      // volumes with a stratum (problem == META_OK)
  int n[3];            // volumes per set
  SplitOptions opt;
  double val_slice_fraction; // SPLIT_VALIDATION_BY_SLICE: opt.val_fraction; otherwise 0
} Split;

// Splits volumes (IDs unique and positive; the input order does not matter).
// Within each of the 12 strata cells (age group x sex x ethnic group) the
// volumes are ordered by a random key drawn from (seed, their ID); test takes
// the first of each cell, validation the next. The cells' counts are
// apportioned by largest remainder so that the totals are exactly
// round(test_fraction * stratified) and round(val_fraction * the rest), and
// each cell's shares are within one volume of the fractions. Volumes without a
// stratum all go to training.
int split_make(const SplitVolume *vols, int n, const Demographics *d, const SplitOptions *opt, Split *s, char *err,
               size_t errlen);
void split_free(Split *s);

// Writes the TSV manifest, one row per volume in ID order under the header
//   name  id  set  age_group  sex  ethnicity  slices
// with set train/val/test, age_group young/adult/elderly, sex m/f, ethnicity
// white/other, and "unknown" where a value is. Atomic: a temporary file next to
// path is written, synced and renamed over it.
int split_write_manifest(const char *path, const Split *s, char *err, size_t errlen);
// Prints per set (and for the whole) the volumes, the slices and the share of
// each age group, sex and ethnic group among its stratified volumes, then the
// volumes that have no stratum and why.
void split_report(FILE *f, const Split *s);

#endif
