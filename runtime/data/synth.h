// synth.h: an IXI-like cohort synthesised from one real T1 scan (Colin27,
// Debian's mricron-data), the default data set where IXI cannot be downloaded.
//
// Each subject is the template seen through its own random anatomy and
// scanner: a smooth deformation (a global scaling, rotation and shift, and a
// cubic B-spline displacement field of a few mm), a contrast change (gamma and
// gain), a smooth multiplicative bias field and Rician noise, resampled
// trilinearly onto IXI's T1 grid and stored as IXI stores it (int16, voxel axes
// towards P, S and R; see the reference notes on IXI). Everything a subject
// gets comes from Philox streams keyed by (seed, subject), so its volume is the
// same bytes whatever the subject count and the thread count.
#ifndef CAEC_SYNTH_H
#define CAEC_SYNTH_H

#include "volume.h"

#include <stddef.h>
#include <stdint.h>

// IXI's T1 grid: 256 x 256 x 150 voxels of 0.9375 x 0.9375 x 1.2 mm, axes A to P, I to S, L to R.
enum { SYNTH_NI = 256, SYNTH_NJ = 256, SYNTH_NK = 150 };
extern const double synth_voxel_mm[3];

// Subject k is IXI(SYNTH_FIRST_ID + k): beyond IXI's IDs (2 to 662), so never taken for a real subject.
enum { SYNTH_FIRST_ID = 900, SYNTH_MAX_SUBJECTS = 9000 };

// The template, with what synthesis needs from it.
typedef struct SynthTemplate {
  // Its voxels, their axes reordered to run as near as they can to a subject's i, j and k (towards A or P,
  // S or I, R or L), so that resampling a subject walks them in memory order, and a border of zeros added.
  float *data;
  int dim[3];          // with the border
  double to_vox[4][4]; // world mm -> voxel of data
  double center[3];    // the centre of its field of view, world mm: every subject's centre too
  double wm;           // its white-matter intensity: the 80th percentile of the positive voxels
} SynthTemplate;

// One subject: IXI name and demographics, and the parameters of its synthesis.
typedef struct SynthSubject {
  int index, id;     // k and SYNTH_FIRST_ID + k
  const char *site;  // "Guys", "HH" or "IOP", in IXI's proportions
  int number;        // the 4-digit scan number of the name
  int sex;           // 1 male, 2 female (IXI's SEX_ID)
  int ethnic;        // IXI's ETHNIC_ID: 1 (White) for 80%, else 3 to 6
  double age;        // years, uniform in [20, 86)
  double scale[3];   // subject size over the template's along x, y, z (Colin27 is MNI-sized, larger than most)
  double angle[3];   // rotation about x (pitch), y (roll), z (yaw), degrees
  double shift[3];   // mm
  double gamma;      // contrast: intensity (x / wm)^gamma ...
  double gain;       // ... times gain: the white matter's intensity in the output
  double noise;      // Rician noise sd as a fraction of gain
} SynthSubject;

// Reads the template; 0, or -1 with one line naming the file and the problem in err.
int synth_template(const char *path, SynthTemplate *t, char *err, size_t errlen);
void synth_template_free(SynthTemplate *t);

// Subject k's name, demographics and parameters, drawn from (seed, k).
SynthSubject synth_subject(uint64_t seed, int k);
// "IXI900-Guys-0123-T1.nii.gz" into name (at least 32 bytes).
void synth_file_name(const SynthSubject *s, char *name, size_t len);

// The subject's volume: SYNTH_NI * SYNTH_NJ * SYNTH_NK int16 values, i fastest, on `threads` OpenMP threads
// (the values do not depend on it). 0, or -1 when out of memory.
int synth_volume(const SynthTemplate *t, const SynthSubject *s, uint64_t seed, int threads, int16_t *out);

// The voxel-to-world matrix of every subject's volume (RAS+ mm).
void synth_to_ras(const SynthTemplate *t, double m[4][4]);

// Writes the volume as a gzipped NIfTI-1 file, atomically, with the sform and qform of synth_to_ras and
// `descrip` (at most 79 characters) in the header. 0, or -1 with one line in err.
int synth_write(const char *path, const SynthTemplate *t, const int16_t *vol, const char *descrip, char *err,
                size_t errlen);

#endif
