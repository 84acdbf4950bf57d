// ops.h: every op of the .cae language, once, in the order caec lists them.
// CAEC_OPS(OP, ACT) expands each row with one of two X-macros:
//
// OP(ID, name, min inputs, max inputs, SHAPE, FAMILY): an op with rules of its
// own: its arguments (shapes.c's ARGS_ID), its shape, parameters and FLOPs (the
// rule shape_SHAPE of shapes.c, which a family of ops shares), and the rules
// of its FAMILY, which each stage reaches through a table indexed by OpKind:
// its lowering and adjoint (autodiff.c's lower_FAMILY and adjoint_FAMILY) and
// its reference kernels (interp.c's interp_FAMILY_fwd and interp_FAMILY_bwd).
// The emitters (emit_c_*.c, emit_cuda.c) follow the kernel kinds those rules
// make, and `caec ir` prints the arguments its ARGS_ID lists; fusion.c and
// graph.c's one-line summary test the op where it has a fusion or an
// attribute worth a glance. README's "Adding an op" lists the files a new op
// touches.
//
// ACT(ID, name, FLOPs per element, SAVED, ALPHA or NO_ALPHA): an elementwise
// activation y = f(x), or with ALPHA y = f(x; alpha) with alpha required and in
// [0, 1]. Its row is all the compiler needs: the argument, shape, FLOPs,
// adjoint, interpreter and both emitters follow from it. The adjoint is
// dx = dy f'(x), computed from the SAVED tensor, X (the input) or Y (the
// output, where f' is a function of y). Its kernels, by name: the reference
// ref_NAME_fwd and ref_NAME_bwd (runtime/kernels/ref.h, double), the C kernels
// kp_NAME and kp_NAME_bwd (kern.h), and the CUDA device ops cu_NAME and
// cu_NAME_bwd (runtime/cuda/cu_pointwise.cuh), called as
//   NAME(count, [alpha,] x, y)    NAME_bwd(count, [alpha,] x or y, dy, dx)
#ifndef CAEC_OPS_H
#define CAEC_OPS_H

#define CAEC_OPS(OP, ACT)                                       \
  OP(CONV, conv, 1, 1, conv, conv)                              \
  OP(CONVT, convT, 1, 1, conv, conv)                            \
  OP(BN, bn, 1, 1, norm, norm)                                  \
  OP(GN, gn, 1, 1, norm, norm)                                  \
  ACT(RELU, relu, 1, Y, NO_ALPHA)                               \
  ACT(LEAKY_RELU, leaky_relu, 1, X, ALPHA)                      \
  ACT(SIGMOID, sigmoid, 4, Y, NO_ALPHA)                         \
  ACT(TANH, tanh, 4, Y, NO_ALPHA)                               \
  OP(ADD, add, 2, 2, join, add)                                 \
  OP(CONCAT, concat, 2, 16, join, concat)                       \
  OP(SPATIAL_DROPOUT, spatial_dropout, 1, 1, dropout, dropout)  \
  OP(IDENTITY, identity, 1, 1, same, identity)

// Helpers for the expansions: OpKind's names, nothing, and a switch's case
// label for every activation.
#define CAEC_OP_ENUM(id, ...) OP_##id,
#define CAEC_OP_SKIP(...)
#define ACT_CASE(id, ...) case OP_##id:
#define ACTIVATION_CASES CAEC_OPS(CAEC_OP_SKIP, ACT_CASE)
// An activation kernel's alpha argument, when its row has one.
#define ALPHA_ARG(n) (n)->alpha,
#define NO_ALPHA_ARG(n)

#endif
