// brainmask.h: classical 3D brain extraction of T1 MRI, and the seed's rules
// for choosing the slices worth training on.
//
// The seed thesis kept a sagittal slice when a pretrained network (DeepBrain)
// found more than 3000 brain pixels of 256x256 in it. brain_mask does without
// a network: thresholds from the volume's own histogram, morphology in mm (so
// any voxel size works), the largest connected component, closing and hole
// filling. The seed also tried two statistics of the raw slices, the count and
// the mean of the nonzero pixels, cut at a low threshold; those are here too.
//
// Volumes are plain float arrays, i fastest: index = i + nx*(j + ny*k).
#ifndef CAEC_BRAINMASK_H
#define CAEC_BRAINMASK_H

#include <stddef.h>

// Writes mask[v] = 1 for brain voxels (tissue and the CSF inside the brain's
// outer surface), 0 elsewhere. Any intensity scale works, and any voxel size
// from 0.1 mm to 1 m; non-finite values count as background. Returns 0, or -1
// with one line in err and an all-zero mask (left alone when a dim is below 1)
// when there is no brain to find: bad geometry, no contrast, nothing thick
// enough to be a brain.
int brain_mask(const float *vol, const int dim[3], const double voxel_mm[3], unsigned char *mask, char *err,
               size_t errlen);

// Per-slice statistics across voxel axis `axis` (0, 1 or 2): the arrays have
// dim[axis] entries, one for each slice normal to that axis.
// count[s]: the mask voxels of slice s.
void slice_mask_count(const unsigned char *mask, const int dim[3], int axis, double *count);
// count[s]: the nonzero (and finite) voxels of slice s; mean[s]: their mean, 0 when there are none.
void slice_nonzero(const float *vol, const int dim[3], int axis, double *count, double *mean);

// Low cut-offs for a set of values (the slices of a volume or of a data set); a
// slice is kept when its value is >= the cut-off. Quartiles interpolate
// linearly between order statistics and sd divides by n - 1, as pandas does.
typedef enum {
  SLICE_CUT_Q1,      // the first quartile, the seed's choice for both statistics
  SLICE_CUT_TUKEY,   // Q1 - 1.5 IQR, Tukey's lower fence
  SLICE_CUT_3SD,     // mean - 3 sd
} SliceCut;

// The cut-off for n values; sd is 0 for one value, and the cut-off NaN (which
// keeps nothing) for none, or when out of memory.
double slice_cutoff(const double *value, size_t n, SliceCut cut);
// keep[s] = value[s] >= cutoff; returns how many are kept.
size_t slice_keep(const double *value, size_t n, double cutoff, unsigned char *keep);

// The seed's brain-area rule: more than 3000 brain pixels of 256x256, scaled to
// the slice's real size: count > 3000 * pixels / 65536 (strictly greater).
int slice_has_brain(double count, double pixels);

#endif
