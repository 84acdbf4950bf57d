// resize.h: a slice as the models see it: min-max normalised to [0, 1] and
// resized bilinearly to the model's input size, as the seed's tf.image.resize
// did it (TensorFlow 2's default: bilinear, half-pixel centres, no antialias;
// PyTorch's interpolate(mode='bilinear', align_corners=False) is the same).
//
// Images are h rows by w columns of floats, row-major, every size >= 1.
#ifndef CAEC_RESIZE_H
#define CAEC_RESIZE_H

#include <stddef.h>

// (x - min) / (max - min) in place, for n finite values; a constant image
// (or n == 0) becomes zeros, so the result is in [0, 1] and never NaN.
void minmax01(float *img, size_t n);

// Bilinear resize of in (in_h x in_w) to out (out_h x out_w), with half-pixel
// centres: output pixel y samples source row (y + 0.5) * in_h / out_h - 0.5,
// clamped to the edge rows, and the same for columns. Equal sizes copy. 0 on
// success, -1 when out of memory.
int resize_bilinear(const float *in, int in_h, int in_w, float *out, int out_h, int out_w);

// The seed's preprocessing of one slice: min-max, resize, min-max (resize.c
// says why this order). slice (h x w) is normalised in place, as scratch; out
// gets out_h x out_w values in [0, 1]. 0 on success, -1 when out of memory.
int slice_prepare(float *slice, int h, int w, float *out, int out_h, int out_w);

#endif
