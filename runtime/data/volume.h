// volume.h: brain MRI volumes as the data pipeline sees them: NIfTI-1/2 files
// (.nii, .nii.gz) read through libnifti2, any datatype scaled to float, with
// the voxel-to-world orientation needed to cut canonically oriented slices.
#ifndef CAEC_VOLUME_H
#define CAEC_VOLUME_H

#include <stddef.h>

// The anatomical planes, and `auto`: the plane with the finest in-plane resolution.
typedef enum { PLANE_SAGITTAL, PLANE_CORONAL, PLANE_AXIAL, PLANE_AUTO } Plane;

typedef struct Volume {
  int dim[3];           // voxels along the file's i, j, k axes
  double voxel[3];      // mm per voxel along i, j, k
  double to_ras[4][4];  // voxel (i, j, k, 1) -> world RAS+ mm: from the sform, else the qform, else the pixdims
  float *data;          // dim[0]*dim[1]*dim[2] floats, i fastest; scl_slope and scl_inter applied
  int axis_of[3];       // axis_of[a]: the voxel axis (0..2) closest to world axis a (0 R-L, 1 A-P, 2 S-I)
  int flip_of[3];       // 1 when that voxel axis runs opposite to world axis a (towards L, P or I)
} Volume;

// Reads a volume; on failure returns -1 with one line naming the file and the problem in err, and leaves
// *v empty. Only 3D images (or 4D with one volume) of sane size are accepted.
int vol_read(const char *path, Volume *v, char *err, size_t errlen);
void vol_free(Volume *v);

// The number of slices across the plane (the voxel count along the axis normal to it), and the chosen
// plane for PLANE_AUTO.
Plane vol_plane(const Volume *v, Plane p);
int vol_slices(const Volume *v, Plane p);
// Slice s of the plane as an image of *h rows by *w columns (row-major, written to out, which holds at
// least the product of the two other dims), canonically oriented whatever the storage order:
//   sagittal: superior at the top, anterior on the left (as the seed's rotated IXI slices);
//   coronal:  superior at the top, the subject's right on the left (radiological);
//   axial:    anterior at the top, the subject's right on the left (radiological).
// Slice 0 is the subject's right (sagittal), anterior (coronal) or inferior (axial) end; the caller keeps
// 0 <= s < vol_slices(v, p).
void vol_slice(const Volume *v, Plane p, int s, float *out, int *h, int *w);
// The inverse: writes the image in (as vol_slice gives slice s) back into the voxels it came from, so that
// a volume built slice by slice lines up voxel for voxel with the file v was read from.
void vol_put_slice(Volume *v, Plane p, int s, const float *in);

#endif
