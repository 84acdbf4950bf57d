// emit_c_conv.c: the bodies of the convolution kernels. One geometry (kern.h's
// KConv: the grid is conv's output and convT's input) serves conv and convT,
// forward and backward: gather is conv's forward and convT's data gradient,
// scatter the reverse, and wgrad both ops' weight and bias gradients.
#include "caec.h"

void emit_conv(FILE *out, const Step *s, const Kern *k) {
  KConv g = conv_geom(s->g, s->batch, k->node);
  fprintf(out,
          "  // n; grid c, h, w; image c, h, w; k, stride, pad top, pad left\n"
          "  static const KConv g = {%d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d};\n",
          g.n, g.gc, g.gh, g.gw, g.ic, g.ih, g.iw, g.k, g.stride, g.pad_top, g.pad_left);
  const char *bias = k->p[1] >= 0 ? "bias" : "NULL";
  switch (k->kind) {
  case K_PACK_GATHER:
  case K_PACK_SCATTER:
    fprintf(out, "  kc_pack_%s(&g, w, wp);\n", k->kind == K_PACK_GATHER ? "gather" : "scatter");
    break;
  case K_GATHER:
  case K_SCATTER: {
    bool gather = k->kind == K_GATHER;
    fprintf(out, "  kc_%s(&g, ", gather ? "gather" : "scatter");
    emit_kin(out, k->in, gather ? "image" : "grid");
    fprintf(out, ", wp, %s, ", bias);
    emit_kout(out, k, gather ? "grid" : "image");
    fprintf(out, ");\n");
    break;
  }
  default: // K_WGRAD
    fprintf(out, "  kc_wgrad(&g, ");
    emit_kin(out, k->in, "grid");
    fprintf(out, ", ");
    emit_kin(out, k->in2, "image");
    fprintf(out, ", dw, %s, %s);\n", k->p[1] >= 0 ? "db" : "NULL", k->flag ? "true" : "false");
    break;
  }
}
