// plot.h: the pictures caec and the trainers write, as PNG files: an RGB canvas
// with the few primitives their figures need (grey images, rectangles, lines,
// text in a built-in 5x7 font, a colour scale), and the two charts built on it
// (curves over epochs, a labelled heatmap). libpng encodes; files are written
// atomically (atomic.h), so a failed write leaves an older picture intact.
#ifndef CAEC_PLOT_H
#define CAEC_PLOT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct Rgb {
  unsigned char r, g, b;
} Rgb;

typedef struct Canvas {
  int width, height;
  unsigned char *rgb; // [height][width][3], row 0 at the top
} Canvas;

enum { FONT_W = 5, FONT_H = 7, FONT_ADVANCE = 6 }; // a glyph's pixels and the pen's step, at scale 1

// False when out of memory or the size is not in 1..16384.
bool canvas_new(Canvas *c, int width, int height, Rgb background);
void canvas_free(Canvas *c);
// Everything clips to the canvas.
void canvas_rect(Canvas *c, int x, int y, int w, int h, Rgb colour);
void canvas_line(Canvas *c, int x0, int y0, int x1, int y1, Rgb colour);
// img [h][w] with its top-left corner at (x, y), each pixel zoom x zoom: grey levels from lo (black) to
// hi (white), or with colour the colour scale below (clamped; NaN as lo).
void canvas_image(Canvas *c, int x, int y, const float *img, int h, int w, int zoom, float lo, float hi,
                  bool colour);
// ASCII text (other bytes as '?') with its top-left corner at (x, y), each font pixel scale x scale.
void canvas_text(Canvas *c, int x, int y, int scale, Rgb colour, const char *s);
int text_width(const char *s, int scale);
// A colour for t in [0, 1] (clamped) on a perceptually ordered scale, dark blue to yellow (viridis).
Rgb colour_scale(double t);
// 0, or -1 with "PATH: reason" in err.
int canvas_write_png(const Canvas *c, const char *path, char *err, size_t errlen);

// A curve: y[0..n) at x = 0..n-1; non-finite values leave gaps.
typedef struct PlotSeries {
  const char *label;
  const double *y;
  int n;
  Rgb colour;
} PlotSeries;

// A chart of the series against their index, on a log10 y axis when log_y (the
// positive values only), with a title, axis labels and a legend; 0, or -1 with
// the reason in err.
int plot_curves(const char *path, const char *title, const char *xlabel, const PlotSeries *s, int count, bool log_y,
                char *err, size_t errlen);

// An n x n matrix as coloured cells: cell (i, j) shaded by shade[i*n + j] in
// [0, 1] on the colour scale (NaN: an empty cell) and labelled with text[i*n + j]
// (NULL: none); rows and columns labelled by labels; under the matrix a legend
// of keys swatches, key_shade[k] named key_text[k]. 0, or -1 with the reason in err.
int plot_heatmap(const char *path, const char *title, const char *const *labels, int n, const double *shade,
                 const char *const *text, int keys, const double *key_shade, const char *const *key_text, char *err,
                 size_t errlen);

#endif
