// plot.c: PNG pictures on an RGB canvas (see plot.h).
#include "plot.h"

#include "atomic.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The printable ASCII characters ' ' to '~', 7 rows each, top first; bit 4 of a row is its left pixel.
static const unsigned char font[95][FONT_H] = {
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04}, // ' ' !
    {0x0A, 0x0A, 0x0A, 0x00, 0x00, 0x00, 0x00}, {0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A}, // " #
    {0x04, 0x0F, 0x14, 0x0E, 0x05, 0x1E, 0x04}, {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}, // $ %
    {0x0C, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0D}, {0x0C, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00}, // & '
    {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}, {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}, // ( )
    {0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00}, {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}, // * +
    {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}, {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}, // , -
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}, {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}, // . /
    {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}, {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}, // 0 1
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}, {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}, // 2 3
    {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}, {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}, // 4 5
    {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}, {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}, // 6 7
    {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}, {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}, // 8 9
    {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}, {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08}, // : ;
    {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}, {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}, // < =
    {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}, {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}, // > ?
    {0x0E, 0x11, 0x01, 0x0D, 0x15, 0x15, 0x0E}, {0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11}, // @ A
    {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}, {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}, // B C
    {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}, {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}, // D E
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}, {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}, // F G
    {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}, {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}, // H I
    {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}, {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}, // J K
    {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}, {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}, // L M
    {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}, {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}, // N O
    {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}, {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}, // P Q
    {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}, {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}, // R S
    {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}, {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}, // T U
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}, {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}, // V W
    {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}, {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}, // X Y
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}, {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E}, // Z [
    {0x00, 0x10, 0x08, 0x04, 0x02, 0x01, 0x00}, {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E}, // \ ]
    {0x04, 0x0A, 0x11, 0x00, 0x00, 0x00, 0x00}, {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}, // ^ _
    {0x08, 0x04, 0x02, 0x00, 0x00, 0x00, 0x00}, {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F}, // ` a
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E}, {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E}, // b c
    {0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F}, {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E}, // d e
    {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08}, {0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x0E}, // f g
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11}, {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E}, // h i
    {0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0C}, {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12}, // j k
    {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}, {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11}, // l m
    {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11}, {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E}, // n o
    {0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10}, {0x00, 0x00, 0x0D, 0x13, 0x0F, 0x01, 0x01}, // p q
    {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10}, {0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E}, // r s
    {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06}, {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D}, // t u
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04}, {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A}, // v w
    {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11}, {0x00, 0x00, 0x11, 0x11, 0x0F, 0x01, 0x0E}, // x y
    {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F}, {0x02, 0x04, 0x04, 0x08, 0x04, 0x04, 0x02}, // z {
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}, {0x08, 0x04, 0x04, 0x02, 0x04, 0x04, 0x08}, // | }
    {0x00, 0x00, 0x08, 0x15, 0x02, 0x00, 0x00},                                             // ~
};

static const Rgb WHITE = {255, 255, 255}, BLACK = {0, 0, 0}, GREY = {150, 150, 150}, LIGHT = {225, 225, 225};

bool canvas_new(Canvas *c, int width, int height, Rgb background) {
  *c = (Canvas){0};
  if (width < 1 || height < 1 || width > 16384 || height > 16384)
    return false;
  c->rgb = malloc((size_t)width * height * 3);
  if (!c->rgb)
    return false;
  c->width = width, c->height = height;
  canvas_rect(c, 0, 0, width, height, background);
  return true;
}

void canvas_free(Canvas *c) {
  free(c->rgb);
  *c = (Canvas){0};
}

static void put(Canvas *c, int x, int y, Rgb colour) {
  if (x < 0 || y < 0 || x >= c->width || y >= c->height)
    return;
  unsigned char *p = c->rgb + ((size_t)y * c->width + x) * 3;
  p[0] = colour.r, p[1] = colour.g, p[2] = colour.b;
}

void canvas_rect(Canvas *c, int x, int y, int w, int h, Rgb colour) {
  for (int j = y < 0 ? 0 : y; j < y + h && j < c->height; j++)
    for (int i = x < 0 ? 0 : x; i < x + w && i < c->width; i++)
      put(c, i, j, colour);
}

void canvas_line(Canvas *c, int x0, int y0, int x1, int y1, Rgb colour) {
  // Bresenham's: every step moves one pixel along the longer axis.
  int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, e = dx + dy;
  for (;;) {
    put(c, x0, y0, colour);
    if (x0 == x1 && y0 == y1)
      return;
    int e2 = 2 * e;
    if (e2 >= dy)
      e += dy, x0 += sx;
    if (e2 <= dx)
      e += dx, y0 += sy;
  }
}

void canvas_image(Canvas *c, int x, int y, const float *img, int h, int w, int zoom, float lo, float hi,
                  bool colour) {
  double scale = hi > lo ? 1.0 / ((double)hi - lo) : 0.0;
  for (int r = 0; r < h; r++)
    for (int q = 0; q < w; q++) {
      double t = (img[(size_t)r * w + q] - lo) * scale;
      t = t > 0 ? (t < 1 ? t : 1) : 0; // NaN fails the first test: 0
      unsigned char g = (unsigned char)lround(255 * t);
      canvas_rect(c, x + q * zoom, y + r * zoom, zoom, zoom, colour ? colour_scale(t) : (Rgb){g, g, g});
    }
}

void canvas_text(Canvas *c, int x, int y, int scale, Rgb colour, const char *s) {
  for (; *s; s++, x += FONT_ADVANCE * scale) {
    unsigned char ch = (unsigned char)*s;
    const unsigned char *glyph = font[(ch >= ' ' && ch <= '~' ? ch : '?') - ' '];
    for (int r = 0; r < FONT_H; r++)
      for (int q = 0; q < FONT_W; q++)
        if (glyph[r] >> (FONT_W - 1 - q) & 1)
          canvas_rect(c, x + q * scale, y + r * scale, scale, scale, colour);
  }
}

int text_width(const char *s, int scale) {
  size_t n = strlen(s);
  return n ? (int)(n * FONT_ADVANCE - 1) * scale : 0;
}

Rgb colour_scale(double t) {
  // Viridis at nine evenly spaced stops, linearly interpolated.
  static const unsigned char stop[9][3] = {{68, 1, 84},    {71, 44, 122},  {59, 81, 139},
                                           {44, 113, 142}, {33, 144, 141}, {39, 173, 129},
                                           {92, 200, 99},  {170, 220, 50}, {253, 231, 37}};
  t = t > 0 ? (t < 1 ? t : 1) : 0; // NaN: 0
  double f = t * 8;
  int i = f >= 8 ? 7 : (int)f;
  f -= i;
  unsigned char rgb[3];
  for (int k = 0; k < 3; k++)
    rgb[k] = (unsigned char)lround(stop[i][k] + f * (stop[i + 1][k] - stop[i][k]));
  return (Rgb){rgb[0], rgb[1], rgb[2]};
}

int canvas_write_png(const Canvas *c, const char *path, char *err, size_t errlen) {
  AtomicFile a;
  if (atomic_open(&a, path, err, errlen))
    return -1;
  png_image png = {.version = PNG_IMAGE_VERSION, .width = (png_uint_32)c->width,
                   .height = (png_uint_32)c->height, .format = PNG_FORMAT_RGB};
  int ok = png_image_write_to_stdio(&png, a.f, 0, c->rgb, 0, NULL);
  if (!ok) // libpng's reason is the better message; the commit then only removes the temporary file
    snprintf(err, errlen, "%s: cannot write the PNG: %s", path, png.message);
  png_image_free(&png);
  char commit_err[1024];
  if (atomic_commit(&a, ok ? 0 : EIO, commit_err, sizeof commit_err)) {
    if (ok)
      snprintf(err, errlen, "%s", commit_err);
    return -1;
  }
  return ok ? 0 : -1;
}

// ---- charts ---------------------------------------------------------------------------

// A round tick spacing (1, 2 or 5 times a power of ten) giving about five ticks over range.
static double tick_step(double range) {
  double raw = range / 5, mag = pow(10, floor(log10(raw))), norm = raw / mag;
  return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
}

static int fail_memory(const char *path, char *err, size_t errlen) {
  snprintf(err, errlen, "%s: out of memory", path);
  return -1;
}

enum { CHART_W = 760, CHART_H = 460, LEFT = 80, RIGHT = 24, TOP = 44, BOTTOM = 56 };

int plot_curves(const char *path, const char *title, const char *xlabel, const PlotSeries *s, int count, bool log_y,
                char *err, size_t errlen) {
  // The y range over the plottable values, in axis units (log10 when log_y).
  double lo = INFINITY, hi = -INFINITY;
  int n = 1;
  for (int k = 0; k < count; k++) {
    n = s[k].n > n ? s[k].n : n;
    for (int i = 0; i < s[k].n; i++) {
      double v = s[k].y[i];
      if (isfinite(v) && (!log_y || v > 0)) {
        v = log_y ? log10(v) : v;
        lo = v < lo ? v : lo, hi = v > hi ? v : hi;
      }
    }
  }
  if (lo > hi)
    lo = 0, hi = 1;
  if (hi - lo < 1e-12 * (fabs(hi) + 1)) // one value: a band around it
    lo -= 0.5, hi += 0.5;
  double pad = 0.05 * (hi - lo);
  lo -= pad, hi += pad;
  Canvas c;
  if (!canvas_new(&c, CHART_W, CHART_H, WHITE))
    return fail_memory(path, err, errlen);
  int pw = CHART_W - LEFT - RIGHT, ph = CHART_H - TOP - BOTTOM;
  double xmax = n > 1 ? n - 1 : 1;
#define PX(x) (LEFT + (int)lround((x) / xmax * pw))
#define PY(v) (TOP + ph - (int)lround(((v) - lo) / (hi - lo) * ph))
  char label[64];
  double step = tick_step(hi - lo);
  for (double t = ceil(lo / step) * step; t <= hi; t += step) {
    canvas_line(&c, LEFT, PY(t), LEFT + pw, PY(t), LIGHT);
    snprintf(label, sizeof label, "%.3g", log_y ? pow(10, t) : fabs(t) < step * 1e-9 ? 0.0 : t);
    canvas_text(&c, LEFT - 6 - text_width(label, 1), PY(t) - FONT_H / 2, 1, BLACK, label);
  }
  double xstep = n > 1 ? fmax(1, round(tick_step(xmax))) : 1;
  for (double t = 0; t <= xmax; t += xstep) {
    canvas_line(&c, PX(t), TOP + ph, PX(t), TOP + ph + 4, BLACK);
    snprintf(label, sizeof label, "%g", t);
    canvas_text(&c, PX(t) - text_width(label, 1) / 2, TOP + ph + 8, 1, BLACK, label);
  }
  canvas_line(&c, LEFT, TOP, LEFT, TOP + ph, BLACK);
  canvas_line(&c, LEFT, TOP + ph, LEFT + pw, TOP + ph, BLACK);
  for (int k = 0; k < count; k++) {
    int have = 0, px = 0, py = 0;
    for (int i = 0; i < s[k].n; i++) {
      double v = s[k].y[i];
      if (!isfinite(v) || (log_y && v <= 0)) {
        have = 0;
        continue;
      }
      int x = PX(i), y = PY(log_y ? log10(v) : v);
      for (int d = 0; d < 2; d++) // two pixels thick
        if (have)
          canvas_line(&c, px, py + d, x, y + d, s[k].colour);
      canvas_rect(&c, x - 2, y - 2, 5, 5, s[k].colour);
      have = 1, px = x, py = y;
    }
    int ly = TOP + 8 + 14 * k, lx = LEFT + pw - 150;
    canvas_rect(&c, lx, ly + 2, 16, 3, s[k].colour);
    canvas_text(&c, lx + 22, ly, 1, BLACK, s[k].label);
  }
#undef PX
#undef PY
  canvas_text(&c, (CHART_W - text_width(title, 2)) / 2, 12, 2, BLACK, title);
  canvas_text(&c, LEFT + (pw - text_width(xlabel, 1)) / 2, CHART_H - 22, 1, BLACK, xlabel);
  if (log_y)
    canvas_text(&c, 8, TOP - 14, 1, GREY, "(log scale)");
  int rc = canvas_write_png(&c, path, err, errlen);
  canvas_free(&c);
  return rc;
}

int plot_heatmap(const char *path, const char *title, const char *const *labels, int n, const double *shade,
                 const char *const *text, int keys, const double *key_shade, const char *const *key_text, char *err,
                 size_t errlen) {
  // Rows are labelled "k  label" on the left, columns by k alone on top, so long labels need no rotation.
  enum { CELL = 56, MARGIN = 16, TOP = 70 };
  int label_w = 0;
  char line[256];
  for (int i = 0; i < n; i++) {
    snprintf(line, sizeof line, "%2d  %s", i + 1, labels[i]);
    int w = text_width(line, 1);
    label_w = w > label_w ? w : label_w;
  }
  int legend_w = 0;
  for (int k = 0; k < keys; k++)
    legend_w += 20 + text_width(key_text[k], 1) + 16;
  int left = MARGIN + label_w + 10, width = left + n * CELL + MARGIN, height = TOP + n * CELL + 44;
  int wanted = 2 * MARGIN + (text_width(title, 2) > legend_w ? text_width(title, 2) : legend_w);
  Canvas c;
  if (!canvas_new(&c, width > wanted ? width : wanted, height, WHITE))
    return fail_memory(path, err, errlen);
  canvas_text(&c, MARGIN, 14, 2, BLACK, title);
  for (int i = 0; i < n; i++) {
    snprintf(line, sizeof line, "%2d  %s", i + 1, labels[i]);
    canvas_text(&c, MARGIN, TOP + i * CELL + (CELL - FONT_H) / 2, 1, BLACK, line);
    snprintf(line, sizeof line, "%d", i + 1);
    canvas_text(&c, left + i * CELL + (CELL - text_width(line, 1)) / 2, TOP - 14, 1, BLACK, line);
    for (int j = 0; j < n; j++) {
      double t = shade[(size_t)i * n + j];
      const char *cell = text ? text[(size_t)i * n + j] : NULL;
      int x = left + j * CELL, y = TOP + i * CELL;
      Rgb fill = isnan(t) ? LIGHT : colour_scale(t);
      canvas_rect(&c, x, y, CELL - 1, CELL - 1, fill);
      // Dark text on the light end of the scale, white on the dark end.
      Rgb ink = fill.r * 299 + fill.g * 587 + fill.b * 114 > 140000 ? BLACK : WHITE;
      if (cell)
        canvas_text(&c, x + (CELL - text_width(cell, 1)) / 2, y + (CELL - FONT_H) / 2, 1, ink, cell);
    }
  }
  for (int k = 0, x = MARGIN; k < keys; k++) {
    canvas_rect(&c, x, TOP + n * CELL + 14, 14, 11, colour_scale(key_shade[k]));
    canvas_text(&c, x + 20, TOP + n * CELL + 16, 1, BLACK, key_text[k]);
    x += 20 + text_width(key_text[k], 1) + 16;
  }
  int rc = canvas_write_png(&c, path, err, errlen);
  canvas_free(&c);
  return rc;
}
